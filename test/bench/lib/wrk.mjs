// wrk.mjs -- reading the report wrk --latency prints.

// "312.45us" / "1.20ms" / "2.00s" -> microseconds.
export function wrkMicros(s) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(s.trim());
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === "us" ? 1 : m[2] === "ms" ? 1000 : 1e6);
}

export function parseWrk(out) {
  const pct = (p) => {
    const m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, "m").exec(out);
    return m ? wrkMicros(m[1]) : NaN;
  };
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const errs = /Socket errors:(.*)/.exec(out);
  return {
    p50: pct(50),
    p99: pct(99),
    rps: rps ? Number(rps[1]) : NaN,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: errs ? errs[1].trim() : "",
  };
}

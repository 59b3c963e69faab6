// fold.mjs -- `perf script` output folded into one line per distinct stack
// ("root;caller;callee count"), the input format of flame graph tools.

export function foldPerfScript(text) {
  const counts = new Map();
  for (const block of text.split(/\n\s*\n/)) {
    const lines = block.split("\n").filter((l) => l.trim());
    if (lines.length < 2) continue;
    const comm = lines[0].trim().split(/\s+/)[0];
    const frames = [];
    for (const l of lines.slice(1)) {
      // "\t    55d5c0a1b2c3 function+0x12 (/path/to/dso)"
      const m = /^\s*[0-9a-f]+\s+(.+?)\s+\(([^)]*)\)\s*$/.exec(l);
      if (!m) continue;
      let fn = m[1].replace(/\+0x[0-9a-f]+$/, "");
      if (fn === "[unknown]") fn = `[${m[2].split("/").pop()}]`;
      frames.push(fn.replace(/;/g, ":"));
    }
    if (!frames.length) continue;
    const key = [comm, ...frames.reverse()].join(";");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join("\n") + "\n";
}

// The share of samples whose stack contains a frame matching re.
export function shareOf(folded, re) {
  let all = 0, hit = 0;
  for (const line of folded.split("\n")) {
    const i = line.lastIndexOf(" ");
    if (i < 0) continue;
    const n = Number(line.slice(i + 1));
    all += n;
    if (re.test(line.slice(0, i))) hit += n;
  }
  return all ? hit / all : 0;
}

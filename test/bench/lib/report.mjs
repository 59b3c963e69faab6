// report.mjs -- the markdown report: ratios first, then the absolute numbers
// they come from, the CPU each side used, the memory run, and every
// unexpected outcome verbatim.

const GOAL_READ_RATIO = 5; // proxy point-read throughput vs Azurite's
const LEAK_GROWTH = 0.1; // RSS growth from the mark to the end worth a look
export const SATURATED = 0.9; // a process using this much of one core is the limit

export const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "-");
export const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "-");
const mb = (kb) => (Number.isFinite(kb) ? `${(kb / 1024).toFixed(1)} MiB` : "-");

const OP_NAMES = {
  read: "point read",
  query: "query page (1000 rows)",
  insert: "insert",
  upsert: "upsert (insert or replace)",
};

export function comparisonTable(rows, nameA, nameB) {
  const out = [];
  out.push(
    `| operation | **throughput** | **p50 latency** | **p99 latency** | **server CPU per op** | throughput by round | ` +
      `ops/s ${nameA} / ${nameB} | p50 ms | p99 ms | server CPU µs/op |`,
  );
  out.push("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
  for (const [op, { a, b }] of Object.entries(rows)) {
    const byRound = b.rounds.map((x, i) => ratio(x / a.rounds[i])).join(", ");
    out.push(
      `| ${OP_NAMES[op] ?? op} | **${ratio(b.opsPerSec / a.opsPerSec)}** | **${ratio(b.p50 / a.p50)}** | ` +
        `**${ratio(b.p99 / a.p99)}** | **${ratio(b.serverUsPerOp / a.serverUsPerOp)}** | ${byRound} | ` +
        `${f(a.opsPerSec)} / ${f(b.opsPerSec)} | ${f(a.p50, 2)} / ${f(b.p50, 2)} | ` +
        `${f(a.p99, 2)} / ${f(b.p99, 2)} | ${f(a.serverUsPerOp)} / ${f(b.serverUsPerOp)} |`,
    );
  }
  return out.join("\n");
}

export function cpuRows(section, rows, nameA, nameB, nproc, notes) {
  const out = [];
  for (const [op, { a, b }] of Object.entries(rows)) {
    for (const [name, s] of [[nameA, a], [nameB, b]]) {
      const flags = [];
      if (s.maxWorkerCpu >= SATURATED) flags.push("a client process saturated a core");
      if (s.machineCpu >= SATURATED * nproc) flags.push("machine saturated");
      for (const fl of flags) {
        if (!notes.has(fl)) notes.set(fl, []);
        notes.get(fl).push(`${section} ${OP_NAMES[op] ?? op} (${name})`);
      }
      out.push(
        `| ${section} | ${OP_NAMES[op] ?? op} | ${name} | ${f(s.clientCpu, 2)} | ${f(s.maxWorkerCpu, 2)} | ` +
          `${f(s.serverCpu, 2)} | ${f(s.machineCpu, 2)} of ${nproc} | ${flags.join(", ") || "-"} |`,
      );
    }
  }
  return out;
}

export function errorLines(section, rows, nameA, nameB) {
  const out = [];
  for (const [op, { a, b }] of Object.entries(rows)) {
    for (const [name, s] of [[nameA, a], [nameB, b]]) {
      if (!s.errors) continue;
      const counts = Object.entries(s.outcomes).map(([k, v]) => `${k}: ${v}`).join(", ");
      out.push(`- ${section}, ${OP_NAMES[op] ?? op}, ${name}: ${s.errors} unexpected (${counts})`);
      for (const x of s.samples) out.push(`  - \`${x.replace(/\s+/g, " ").replace(/`/g, "'")}\``);
    }
  }
  return out;
}

export function renderReport(r) {
  const e = r.env;
  const o = e.opts;
  const L = [];
  const notes = new Map(); // limit reached -> measurements
  const haveProxy = !o.azuriteOnly;
  const nameB = haveProxy ? "proxy" : "azurite (again)";

  L.push("# mtable benchmark results", "");
  L.push(`- date: ${e.date}`);
  L.push(`- command: \`${e.command}\``);
  L.push(`- machine: ${e.nproc} cpus, ${e.cpu}; node ${e.node}`);
  L.push(`- Azurite ${e.azurite} (table service, --inMemoryPersistence, --silent)`);
  if (haveProxy) L.push(`- mtable-proxy at commit ${e.commit} (${e.proxyBuild}), embedded in-memory backend`);
  L.push(
    `- load: ${o.lanes} requests in flight over keep-alive sockets, split over ${o.workers} client process(es); ` +
      `${o.seconds} s per measurement, ${o.rounds} rounds per target in alternation (A, B, A, B); ` +
      `Shared Key Lite, JSON without metadata, x-ms-version 2019-02-02`,
  );
  L.push("");
  L.push(
    "Ratios (in bold) are proxy / Azurite, or prefer_new / phase 0: for throughput above 1 is better, " +
      "for latency and server CPU per operation below 1 is better. Absolute numbers hold for this machine " +
      "at this moment only.",
    "",
  );

  if (!haveProxy) {
    L.push("## Azurite alone", "");
    L.push("Run with --azurite-only: the proxy was not measured.", "");
  }

  L.push(`## 1. ${haveProxy ? "mtable-proxy (phase use_old_hide_metadata) vs Azurite" : "Azurite"}`, "");
  L.push(comparisonTable(r.vsAzurite, "Azurite", haveProxy ? "proxy" : "azurite"), "");
  const rd = r.vsAzurite.read;
  if (haveProxy && rd) {
    const x = rd.b.opsPerSec / rd.a.opsPerSec;
    L.push(
      `Goal: proxy point-read throughput ≥ ${GOAL_READ_RATIO}× Azurite's — ` +
        `**${x >= GOAL_READ_RATIO ? "met" : "not met"}** (${ratio(x)}).`,
      "",
    );
  }
  const shapes = Object.entries(r.shapes)
    .map(([k, v]) => `${k} ${v.readBytes} B per row, ${v.pageBytes} B per page`)
    .join("; ");
  L.push(`Response sizes: ${shapes}.`, "");

  if (Object.keys(r.phase).length) {
    L.push("## 2. Protocol cost: proxy in prefer_new vs proxy in phase 0", "");
    L.push(
      "Two proxy processes hold the same rows, written in phase 0; one was then pushed through " +
        "prefer_old to prefer_new, where reads consult both tables and writes go through the new one.",
      "",
    );
    L.push(comparisonTable(r.phase, "phase 0", "prefer_new"), "");
  }

  if (r.rss) {
    const s = r.rss;
    L.push(`## 3. Proxy memory under a ${o.rssSeconds} s mixed load`, "");
    L.push(
      "The proxy in prefer_new under reads, inserts, upserts, updates, merges, deletes and partition " +
        `queries over a bounded key space (8 partitions × 128 rows), ${o.lanes} in flight; ` +
        "VmRSS sampled every second.",
      "",
    );
    L.push("| | value |", "|---|--:|");
    L.push(`| RSS before the load | ${mb(s.beforeKb)} |`);
    L.push(`| RSS at ${f(s.atMark.t, 0)} s | ${mb(s.atMark.rssKb)} |`);
    L.push(`| RSS at the end (${f(s.end.t, 0)} s) | ${mb(s.end.rssKb)} |`);
    L.push(`| max RSS | ${mb(s.maxKb)} |`);
    L.push(`| growth from ${f(s.atMark.t, 0)} s to the end | ${f(s.growth * 100, 1)}% |`);
    if (s.lateFrom)
      L.push(`| growth over the last third, ${f(s.lateFrom.t, 0)} s to the end | ${f(s.lateGrowth * 100, 1)}% |`);
    L.push(`| threads (max) | ${s.maxThreads} |`);
    L.push(`| mixed ops/s (p50 / p99 ms) | ${f(s.m.hist.n / (s.m.wallMs / 1000))} (${f(s.m.hist.percentile(0.5) / 1000, 2)} / ${f(s.m.hist.percentile(0.99) / 1000, 2)}) |`);
    L.push("");
    if (s.growth > LEAK_GROWTH)
      L.push(
        `**Possible leak:** RSS grew ${f(s.growth * 100, 1)}% from ${f(s.atMark.t, 0)} s to the end of the load` +
          (s.lateFrom ? ` (${f(s.lateGrowth * 100, 1)}% over the last third).` : "."),
        "",
      );
    else L.push(`No sign of a leak: RSS grew ${f(s.growth * 100, 1)}% (flagged above ${LEAK_GROWTH * 100}%).`, "");
    const mix = Object.entries(s.m.mix)
      .sort()
      .map(([k, v]) => `${k}: ${v}`)
      .join(", ");
    L.push(`Outcomes: ${mix}.`, "");
    L.push(`RSS every second (MiB): ${s.samples.map((x) => (x.rssKb / 1024).toFixed(1)).join(" ")}`, "");
  }

  L.push("## Client and server CPU", "");
  L.push(
    "Cores used over each measurement (1.00 = one core busy): the client processes together, the busiest " +
      "client process, the server process, and the whole machine (everything running on it, not only this " +
      "benchmark).",
    "",
  );
  L.push("| section | operation | target | client cores | busiest client process | server cores | machine cores busy | note |");
  L.push("|---|---|---|--:|--:|--:|--:|---|");
  L.push(...cpuRows("1", r.vsAzurite, "Azurite", nameB, e.nproc, notes));
  if (Object.keys(r.phase).length) L.push(...cpuRows("2", r.phase, "phase 0", "prefer_new", e.nproc, notes));
  L.push("");
  const total = 2 * (Object.keys(r.vsAzurite).length + Object.keys(r.phase).length);
  if (notes.size) {
    L.push(
      "Limits reached. Where the machine or a client process was saturated, the server under test was " +
        "not the only limit: the faster target's throughput advantage is then understated, so its " +
        "throughput ratio is a lower bound. Server CPU per operation is the figure that does not depend " +
        "on who set the pace.",
      "",
    );
    for (const [fl, where] of notes) L.push(`- ${fl}: ${where.length === total ? "every measurement" : where.join(", ")}`);
    L.push("");
  } else {
    L.push("No client process reached a full core and the machine was never saturated.", "");
  }

  L.push("## Unexpected outcomes", "");
  const errs = [
    ...errorLines("1", r.vsAzurite, "Azurite", nameB),
    ...errorLines("2", r.phase, "phase 0", "prefer_new"),
  ];
  if (r.rss && Object.keys(r.rss.m.outcomes).length) {
    const counts = Object.entries(r.rss.m.outcomes).map(([k, v]) => `${k}: ${v}`).join(", ");
    errs.push(`- 3, mixed load, prefer_new: ${counts}`);
    for (const x of r.rss.m.samples) errs.push(`  - \`${x.replace(/\s+/g, " ").replace(/`/g, "'")}\``);
  }
  for (const [name, lines] of Object.entries(r.logs)) {
    if (!lines.length) continue;
    errs.push(`- ${name} log (${lines.length} lines beyond start and stop), first ones:`);
    for (const l of lines.slice(0, 10)) errs.push(`  - \`${l.replace(/`/g, "'")}\``);
  }
  L.push(errs.length ? errs.join("\n") : "None: every request got the status it should.", "");
  return L.join("\n");
}

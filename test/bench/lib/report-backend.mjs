// report-backend.mjs -- the markdown report of backend.mjs: proxy over
// Azurite vs Azurite, backend requests per operation next to the original
// MigratingTable's, and the migrator's copy rate vs a plain copy loop.

import { SATURATED, comparisonTable, cpuRows, errorLines, f, ratio } from "./report.mjs";

export const PHASES = [
  "use_old_hide_metadata",
  "prefer_old",
  "prefer_new",
  "use_new_with_tombstones",
  "use_new_hide_metadata",
];

export const GOAL_THROUGHPUT = 0.8; // proxy (phase 0) / Azurite
export const GOAL_PREFER_NEW_WRITE = 3; // backend requests per write, partition switched
export const GOAL_COPY = 1; // migrator rows/s / plain loop rows/s

// The operations section 2 counts, in report order.
export const COUNT_OPS = [
  ["insert", "insert (new row)"],
  ["replace", "replace, If-Match: its ETag"],
  ["merge", "merge, If-Match: *"],
  ["upsert", "upsert (insert or replace) of an existing row"],
  ["delete", "delete, If-Match: *"],
  ["read", "point read"],
  ["query", "partition query (one page)"],
  ["batch", "batch of 10 inserts"],
  ["fresh", "insert, first write to a fresh partition"],
  ["coldread", "point read, partition last written in phase 0"],
  ["oldrow", "upsert of a row only old has, partition switched"],
];

// Writes whose prefer_new cost the goal is about.
const GOAL_WRITES = ["insert", "replace", "merge", "upsert", "delete", "batch"];

// The original MigratingTable (mattmccutchen/MigratingTable,
// Migration/MigratingTable.cs), its backend calls per client operation,
// [old, new] per phase, for the same scenario, counted by reading the code.
// Each IChainTable2 call is one request (a one-page query, a batch, or a
// single-entity operation). A point read is an atomic query with a
// key filter (AbstractChainTable2.ExecuteAsync); a write is a batch
// (ExecuteBatchAsync):
//   phase 0: PassthroughBatchToOldTable: 1 old.
//   phase 1: TryMarkPartitionPopulated (1 old batch, 409 once marked) +
//            the batch behind the assertion-row merge (1 old) = 2 old.
//   phase 2: EnsurePartitionSwitched reads the meta row (1 old; no cache,
//            so on every write), +1 old to insert it SWITCHED when absent;
//            EnsureAffectedRowsMigrated queries old and new (1 + 1), and
//            copies each row old has and new lacks (1 new each); then the
//            affected rows are read from new again (1) and the batch runs
//            on new (1): 2 old + 3 new on a switched partition.
//   phases 3-4: EnsurePartitionSwitched (1 old; +1 for a fresh partition,
//            even in phase 4), read new (1), batch on new (1).
//   reads: phases 1-2 query old with the filter widened to the meta row
//            (1 old) and, if SWITCHED, the whole partition in new (1 new);
//            phase 0 old only, phases 3-4 new only.
// null: the scenario does not arise in that phase (see the report).
const W = [[1, 0], [2, 0], [2, 3], [1, 2], [1, 2]];
export const ORIGINAL = {
  insert: W,
  replace: W,
  merge: W,
  upsert: W,
  delete: W,
  read: [[1, 0], [1, 0], [1, 1], [0, 1], [0, 1]],
  query: [[1, 0], [1, 0], [1, 1], [0, 1], [0, 1]],
  batch: W,
  fresh: [[1, 0], [2, 0], [3, 3], [2, 2], [2, 2]],
  coldread: [[1, 0], [1, 0], [1, 0], [0, 1], [0, 1]],
  oldrow: [null, null, [2, 4], null, null],
};

const num = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(2));
const cell = (o, n) => `${num(o)}+${num(n)}=**${num(o + n)}**`;

// Requests per operation of one counted group: { old, new, total }.
export function perOp(g) {
  return { old: g.old.total / g.n, new: g.new.total / g.n, total: (g.old.total + g.new.total) / g.n };
}

function kinds(counts, n) {
  const e = Object.entries(counts.byKind).sort();
  if (!e.length) return "-";
  return e.map(([k, v]) => `${k} ×${num(v / n)}`).join(", ");
}

function envLines(e) {
  const L = [];
  L.push(`- date: ${e.date}`);
  L.push(`- command: \`${e.command}\``);
  L.push(`- machine: ${e.nproc} cpus, ${e.cpu}; node ${e.node}`);
  L.push(`- Azurite ${e.azurite} (table service, --inMemoryPersistence, --disableTelemetry, --silent), one process per account (old, new)`);
  L.push(`- mtable-proxy at commit ${e.commit} (${e.tree}; ${e.proxyBuild}), backends: Azure connection strings to the two Azurite accounts`);
  return L;
}

function section1(r, e, L) {
  const o = e.opts;
  L.push("## 1. Proxy in phase 0 over Azurite vs Azurite directly", "");
  L.push(
    `The same client (${o.workers} processes, ${o.lanes} requests in flight over keep-alive sockets, Shared Key Lite, ` +
      `JSON without metadata) against Azurite directly and against the proxy in phase use_old_hide_metadata, whose old ` +
      `backend is that same Azurite; ${o.seconds} s per measurement, ${o.rounds} rounds in alternation (A, B, A, B). ` +
      "Point reads of 1000 rows, upserts (insert or replace, no If-Match) over 1000 rows, inserts into fresh partitions of 500. " +
      "For the proxy, server CPU is the proxy's plus Azurite's.",
    "",
  );
  L.push(comparisonTable(r.rows, "Azurite", "proxy"), "");
  L.push("Where the server CPU goes (µs per operation):", "");
  L.push("| operation | Azurite, direct | proxy | Azurite behind the proxy |", "|---|--:|--:|--:|");
  for (const [op, { a, b }] of Object.entries(r.rows))
    L.push(`| ${op} | ${f(a.serverUsPerOp)} | ${f(b.serverUsPerOpOf(0))} | ${f(b.serverUsPerOpOf(1))} |`);
  L.push("");
  const verdicts = Object.entries(r.rows).map(([op, { a, b }]) => {
    const x = b.opsPerSec / a.opsPerSec;
    return { op, x, met: x >= GOAL_THROUGHPUT };
  });
  const all = verdicts.every((v) => v.met);
  L.push(
    `Goal: throughput through the proxy ≥ ${GOAL_THROUGHPUT}× Azurite's — **${all ? "met" : "not met"}** ` +
      `(${verdicts.map((v) => `${v.op} ${ratio(v.x)}${v.met ? "" : " ✗"}`).join(", ")}).`,
    "",
  );
}

function section2(r, L) {
  const n = r.n;
  L.push("## 2. Backend requests per client operation", "");
  L.push(
    "Counted, not timed: a pass-through in front of each Azurite counts every request the proxy sends it. " +
      `Each kind of operation ran ${n} times, one at a time, in each phase; a cell is requests per operation, ` +
      "**old + new = total**, ours next to the original MigratingTable's (counted by reading its code; see the README). " +
      "Scenario per phase: a partition the proxy has already written in that phase (its first write switches it in " +
      "phases 2 and 3; in phase 1 it is marked populated) holds the rows acted on, written through the proxy in that phase; " +
      "\"fresh\" is the first write ever to a partition; \"cold\" reads a partition last written in phase 0; the last row " +
      "upserts rows written in phase 0 in a partition switched since (prefer_new only). Phase 3 was entered after the " +
      "migrator's copy (POST /admin/v1/migrate {\"until\": \"prefer_new\"}).",
    "",
  );
  const head = ["operation"];
  for (let p = 0; p < PHASES.length; p++) head.push(`${p} ours`, `${p} original`);
  L.push(`| ${head.join(" | ")} |`, `|---|${"--:|".repeat(head.length - 1)}`);
  for (const [op, name] of COUNT_OPS) {
    const cells = [name];
    for (let p = 0; p < PHASES.length; p++) {
      const g = r.phases[PHASES[p]]?.[op];
      if (g) {
        const x = perOp(g);
        cells.push(cell(x.old, x.new));
      } else cells.push("-");
      const orig = ORIGINAL[op][p];
      cells.push(orig ? cell(orig[0], orig[1]) : "-");
    }
    L.push(`| ${cells.join(" | ")} |`);
  }
  L.push("");
  const pn = r.phases.prefer_new;
  if (pn) {
    const writes = GOAL_WRITES.filter((op) => pn[op]).map((op) => ({ op, t: perOp(pn[op]).total }));
    const worst = Math.max(...writes.map((w) => w.t));
    L.push(
      `Goal: a write in prefer_new once its partition is switched costs ≤ ${GOAL_PREFER_NEW_WRITE} backend requests — ` +
        `**${worst <= GOAL_PREFER_NEW_WRITE ? "met" : "not met"}** (${writes.map((w) => `${w.op} ${num(w.t)}`).join(", ")}; ` +
        `the original: 5 for each).`,
      "",
    );
  }
  L.push("What the requests were, per operation (kind, status; a `$batch` shows its operation count and its first operation's status):", "");
  for (let p = 0; p < PHASES.length; p++) {
    const ph = r.phases[PHASES[p]];
    if (!ph) continue;
    L.push(`<details><summary>phase ${p} ${PHASES[p]}</summary>`, "");
    L.push("| operation | old | new |", "|---|---|---|");
    for (const [op, name] of COUNT_OPS) {
      const g = ph[op];
      if (g) L.push(`| ${name} | ${kinds(g.old, g.n)} | ${kinds(g.new, g.n)} |`);
    }
    L.push("", "</details>", "");
  }
  if (r.idle) L.push(`With no client request for 1 s the backends got ${r.idle.old.total} (old) and ${r.idle.new.total} (new) requests.`, "");
  const tr = Object.entries(r.transitions);
  if (tr.length) {
    L.push("Requests of the phase changes themselves (and, before phase 3, the migrator's copy of the rows written so far):", "");
    for (const [ph, d] of tr) L.push(`- to ${ph}: old ${d.old.total}, new ${d.new.total}`);
    L.push("");
  }
}

function section3(r, L) {
  L.push("## 3. Migrator copy rate vs a plain copy loop (Azurite to Azurite)", "");
  L.push(
    `${r.total} rows (${r.partitions} partitions × ${r.rowsPerPartition} rows, 5 properties each) in the old account. ` +
      "The plain loop (@azure/data-tables, in the driver process) lists every entity of the old table and writes them to a " +
      "new table in transactions of up to 100 rows of one partition, one transaction at a time. The migrator is the " +
      "proxy's, started with POST /admin/v1/migrate {\"until\": \"prefer_new\"}; it is timed from the first status that " +
      "shows it copying to the first that shows copy_done (status polled every 50 ms), which leaves out the two phase " +
      "pushes before the copy. Order: plain loop, migrator, plain loop.",
    "",
  );
  L.push(
    "| copier | rows | seconds | **rows/s** | CPU s: proxy / old Azurite / new Azurite / driver (client) | CPU ms per 1000 rows (all) |",
    "|---|--:|--:|--:|---|--:|",
  );
  for (const x of r.runs) {
    const c = x.cpu;
    const all = c.proxy + c.old + c.new + c.client;
    const client = x.kind === "sdk" ? f(c.client, 1) : `${f(c.client, 1)} (polling)`;
    L.push(
      `| ${x.label} | ${x.rows} | ${f(x.seconds, 1)}${x.kind === "migrator" ? ` (whole run ${f(x.wholeSeconds, 1)})` : ""} | ` +
        `**${f(x.rows / x.seconds)}** | ${f(c.proxy, 1)} / ${f(c.old, 1)} / ${f(c.new, 1)} / ${client} | ${f((all * 1e6) / x.rows)} |`,
    );
  }
  L.push("");
  const mig = r.runs.find((x) => x.kind === "migrator");
  const sdk = r.runs.filter((x) => x.kind === "sdk");
  if (mig && sdk.length) {
    const m = mig.rows / mig.seconds;
    const s = sdk.reduce((a, x) => a + x.rows / x.seconds, 0) / sdk.length;
    L.push(
      `Ratio migrator / plain loop: **${ratio(m / s)}** (against each plain run: ${sdk.map((x) => ratio(m / (x.rows / x.seconds))).join(", ")}). ` +
        `Goal ≥ ${GOAL_COPY}× — **${m / s >= GOAL_COPY ? "met" : "not met"}**.`,
      "",
    );
    if (!mig.copyTimed) L.push("The copy could not be told apart from the whole run in the status; the whole run was timed.", "");
    L.push(`The migrator switched ${mig.partitions} partitions.`, "");
  }
}

export function renderBackendReport(r) {
  const e = r.env;
  const L = [];
  const notes = new Map();
  L.push("# mtable benchmark results: Azure backends", "");
  L.push(...envLines(e));
  if (r.seconds) L.push(`- the run took ${f(r.seconds)} s`);
  L.push("");
  L.push(
    "Ratios come from measurements taken side by side in this run; absolute numbers hold for this machine at this moment only. " +
      "Request counts do not depend on the machine.",
    "",
  );
  if (r.s1) section1(r.s1, e, L);
  if (r.s2) section2(r.s2, L);
  if (r.s3) section3(r.s3, L);

  if (r.s1) {
    L.push("## Client and server CPU (section 1)", "");
    L.push("| section | operation | target | client cores | busiest client process | server cores | machine cores busy | note |");
    L.push("|---|---|---|--:|--:|--:|--:|---|");
    L.push(...cpuRows("1", r.s1.rows, "Azurite", "proxy", e.nproc, notes));
    L.push("");
    if (notes.size) {
      L.push(
        `Limits reached (a client process ≥ ${SATURATED} of a core, or the machine ≥ ${SATURATED * 100}% busy): the proxy, ` +
          "Azurite behind it and the client share the machine's cores, so where it was saturated the throughput ratio " +
          "says as much about the machine as about the proxy.",
        "",
      );
      for (const [fl, where] of notes) L.push(`- ${fl}: ${where.join(", ")}`);
      L.push("");
    }
  }

  L.push("## Unexpected outcomes", "");
  const errs = [];
  if (r.s1) errs.push(...errorLines("1", r.s1.rows, "Azurite", "proxy"));
  for (const [name, s] of [["section 1 proxy", r.s1], ["section 2 proxy", r.s2], ["section 3 proxy", r.s3]]) {
    const lines = s?.log ?? [];
    if (!lines.length) continue;
    errs.push(`- ${name} log (${lines.length} lines beyond start and stop), first ones:`);
    for (const l of lines.slice(0, 10)) errs.push(`  - \`${l.replace(/`/g, "'")}\``);
  }
  L.push(errs.length ? errs.join("\n") : "None: every request got the status it should, and the proxies logged nothing beyond start and stop.", "");
  return L.join("\n");
}

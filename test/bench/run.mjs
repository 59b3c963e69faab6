#!/usr/bin/env node
// run.mjs -- side-by-side benchmark of mtable-proxy (embedded in-memory
// backend) against Azurite, in one run on one machine.
//
// Absolute numbers on a shared machine move from run to run; what carries
// is the ratio of two targets measured under the same conditions. So every
// comparison here runs the same client code at the same concurrency against
// both targets in alternation (A, B, A, B), and the report leads with the
// ratios. See README.md for how to read them.
//
//   node test/bench/run.mjs [--quick] [--workers N] [--lanes N]
//                           [--seconds S] [--rounds N] [--rss-seconds S]
//                           [--proxy-bin PATH] [--azurite-only] [--out FILE]
//
// Sections:
//   1. proxy (phase use_old_hide_metadata) vs Azurite: point reads,
//      1000-row query pages, inserts;
//   2. proxy in prefer_new vs proxy in phase 0 (two proxy processes with the
//      same data, one pushed through prefer_old to prefer_new): point reads,
//      inserts -- the cost of the protocol's extra backend work;
//   3. the proxy's RSS under a mixed load over a bounded key space.
// Nothing here fails on a timing: the exit status is non-zero only when the
// benchmark could not run (a server would not start, a setup check failed).

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { TableClient, entityPath, makeEntity, partitionQuery } from "./lib/client.mjs";
import {
  checkAlive,
  describeProxyBuild,
  expectStatus,
  extraLogLines,
  gitCommit,
  pool,
  progress,
  pushPhase,
  sideBySide,
  warmUp,
} from "./lib/driver.mjs";
import { WorkerPool } from "./lib/load.mjs";
import {
  azuriteVersion,
  machine,
  memStatus,
  sleep,
  startAzurite,
  startProxy,
  stopPid,
} from "./lib/procs.mjs";
import { renderReport } from "./lib/report.mjs";

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, "../..");

// ---------------------------------------------------------------------------
// Options.

const USAGE = `usage: node test/bench/run.mjs [options]

  --quick            short run for CI: 3 s per measurement, 10 s memory run
  --workers N        client processes sharing the load (default 2)
  --lanes N          requests in flight in total (default 16)
  --seconds S        seconds per measurement (default 10, quick 3)
  --rounds N         measurements per target and operation (default 2)
  --rss-seconds S    length of the memory run (default 60, quick 10)
  --proxy-bin PATH   proxy binary (default build/proxy/mtable-proxy,
                     or $MTABLE_PROXY_BIN)
  --azurite-only     measure Azurite alone (no proxy binary needed)
  --out FILE         where to write the report (default test/bench/results.md)
`;

class UsageError extends Error {}

function parseArgs(argv) {
  const o = {
    quick: false,
    workers: 2,
    lanes: 16,
    seconds: null,
    rounds: 2,
    rssSeconds: null,
    proxyBin: process.env.MTABLE_PROXY_BIN || join(repoRoot, "build/proxy/mtable-proxy"),
    azuriteOnly: false,
    out: join(benchDir, "results.md"),
  };
  const num = (v, f) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`bad value for ${f}: ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--quick") o.quick = true;
    else if (a === "--workers") o.workers = Math.floor(num(val(), a));
    else if (a === "--lanes") o.lanes = Math.floor(num(val(), a));
    else if (a === "--seconds") o.seconds = num(val(), a);
    else if (a === "--rounds") o.rounds = Math.floor(num(val(), a));
    else if (a === "--rss-seconds") o.rssSeconds = num(val(), a);
    else if (a === "--proxy-bin") o.proxyBin = resolve(val());
    else if (a === "--azurite-only") o.azuriteOnly = true;
    else if (a === "--out") o.out = resolve(val());
    else if (a === "--help" || a === "-h") {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new UsageError(`unknown option ${a} (see --help)`);
  }
  o.seconds ??= o.quick ? 3 : 10;
  o.rssSeconds ??= o.quick ? 10 : 60;
  // The RSS baseline is taken 10 s in (3 s in a quick run), once the bounded
  // data set has filled and the allocator has its working set.
  o.rssMarkSeconds = o.quick ? 3 : 10;
  o.warmupSeconds = o.quick ? 0.5 : 1;
  return o;
}

// ---------------------------------------------------------------------------
// The data each target holds before measuring.

const TABLE = "bench";
const READ_PK = "read";
const READ_KEYS = 1000;
const PAGE_PK = "page";
const PAGE_ROWS = 1200; // more than one page of 1000
const PAGE_TOP = 1000;

const pad = (n, w = 6) => String(n).padStart(w, "0");

async function loadData(target) {
  const c = new TableClient({ host: target.host, port: target.port, concurrency: 16 });
  try {
    await expectStatus(
      c.request("POST", "Tables", { body: { TableName: TABLE }, headers: { Prefer: "return-no-content" } }),
      [201, 204],
      `${target.name}: create table`,
    );
    const jobs = [];
    for (let i = 0; i < READ_KEYS; i++) {
      const rk = `k${pad(i)}`;
      jobs.push(() =>
        expectStatus(
          c.request("POST", TABLE, { body: makeEntity(READ_PK, rk, i), headers: { Prefer: "return-no-content" } }),
          [201, 204],
          `${target.name}: insert ${READ_PK}/${rk}`,
        ),
      );
    }
    for (let i = 0; i < PAGE_ROWS; i++) {
      const rk = `r${pad(i)}`;
      jobs.push(() =>
        expectStatus(
          c.request("POST", TABLE, { body: makeEntity(PAGE_PK, rk, i), headers: { Prefer: "return-no-content" } }),
          [201, 204],
          `${target.name}: insert ${PAGE_PK}/${rk}`,
        ),
      );
    }
    await pool(16, jobs);
  } finally {
    c.close();
  }
}

// What the measured requests return is checked once per target, so the
// numbers compare like with like: a point read returns the row, a query page
// returns 1000 rows.
async function checkData(target) {
  const c = new TableClient({ host: target.host, port: target.port, concurrency: 1 });
  try {
    const r = await expectStatus(
      c.request("GET", entityPath(TABLE, READ_PK, "k000042"), { parse: true }),
      [200],
      `${target.name}: point read`,
    );
    const row = JSON.parse(r.body);
    if (row.RowKey !== "k000042" || row.Count !== 42)
      throw new Error(`${target.name}: point read returned ${r.body}`);
    const q = await expectStatus(
      c.request("GET", `${TABLE}()`, { query: partitionQuery(PAGE_PK, PAGE_TOP), parse: true }),
      [200],
      `${target.name}: query page`,
    );
    const rows = JSON.parse(q.body).value;
    if (!Array.isArray(rows) || rows.length !== PAGE_TOP)
      throw new Error(`${target.name}: query page returned ${rows?.length} rows, wanted ${PAGE_TOP}`);
    if (!q.headers["x-ms-continuation-nextpartitionkey"])
      throw new Error(`${target.name}: query page of a ${PAGE_ROWS}-row partition has no continuation`);
    return { pageBytes: q.bytes, readBytes: r.bytes };
  } finally {
    c.close();
  }
}

// ---------------------------------------------------------------------------
// Measurements.

const SPECS = {
  read: { table: TABLE, pk: READ_PK, keys: READ_KEYS },
  query: { table: TABLE, pk: PAGE_PK, top: PAGE_TOP },
  insert: { table: TABLE, pkPrefix: "ins", partitionRows: 500 },
  mixed: { table: TABLE, partitions: 8, keysPerPartition: 128 },
};

async function rssRun(workers, opts, target, all) {
  const samples = []; // { t, rssKb, threads }
  const t0 = performance.now();
  const timer = setInterval(() => {
    const m = memStatus(target.pid);
    if (m) samples.push({ t: (performance.now() - t0) / 1000, ...m });
  }, 1000);
  const before = memStatus(target.pid);
  let m;
  try {
    m = await workers.measure(target, "mixed", opts.rssSeconds * 1000, opts.lanes, SPECS.mixed, "mixed");
  } finally {
    clearInterval(timer);
  }
  checkAlive(all);
  const last = memStatus(target.pid);
  if (last) samples.push({ t: (performance.now() - t0) / 1000, ...last });
  progress("mixed (RSS)", target, m);
  const atMark = samples.reduce(
    (best, s) => (Math.abs(s.t - opts.rssMarkSeconds) < Math.abs(best.t - opts.rssMarkSeconds) ? s : best),
    samples[0],
  );
  const end = samples[samples.length - 1];
  const maxKb = Math.max(...samples.map((s) => s.rssKb));
  const growth = (end.rssKb - atMark.rssKb) / atMark.rssKb;
  // Growth over the last third of the window tells a leak (steady growth)
  // from a working set still settling (growth that slows to nothing).
  const lateFrom = samples.find((x) => x.t >= end.t - opts.rssSeconds / 3) ?? atMark;
  const lateGrowth = (end.rssKb - lateFrom.rssKb) / lateFrom.rssKb;
  return {
    lateFrom,
    lateGrowth,
    target,
    m,
    beforeKb: before?.rssKb,
    atMark,
    end,
    maxKb,
    growth,
    maxThreads: Math.max(...samples.map((s) => s.threads)),
    samples,
  };
}

// ---------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = new Date();
  const work = mkdtempSync(join(tmpdir(), "mtable-bench-"));
  const command = ["node", relative(process.cwd(), fileURLToPath(import.meta.url)) || "run.mjs", ...process.argv.slice(2)].join(" ");
  const env = {
    date: started.toISOString(),
    command,
    ...machine(),
    node: process.version,
    azurite: azuriteVersion(),
    commit: gitCommit(repoRoot),
    proxyBuild: opts.azuriteOnly ? null : describeProxyBuild(opts.proxyBin),
    opts,
  };
  process.stderr.write(
    `mtable bench: ${env.nproc} cpus (${env.cpu}), ${opts.workers} client process(es), ` +
      `${opts.lanes} requests in flight, ${opts.seconds} s x ${opts.rounds} rounds per target\n`,
  );

  const targets = [];
  let workers = null;
  let ok = false;
  try {
    const az = { ...(await startAzurite(work)), host: "127.0.0.1" };
    targets.push(az);
    let px = null;
    let pn = null;
    if (!opts.azuriteOnly) {
      px = { ...(await startProxy(opts.proxyBin, work, "proxy")), host: "127.0.0.1" };
      targets.push(px);
      pn = { ...(await startProxy(opts.proxyBin, work, "proxy-prefer_new")), host: "127.0.0.1" };
      targets.push(pn);
    }
    process.stderr.write(`servers: ${targets.map((t) => `${t.name} pid ${t.pid} port ${t.port}`).join(", ")}\n`);

    // Same data everywhere, written in phase 0; then the second proxy is
    // pushed one step at a time to prefer_new.
    for (const t of targets) await loadData(t);
    if (pn) {
      await pushPhase(pn, "prefer_old");
      await pushPhase(pn, "prefer_new");
    }
    const shapes = {};
    for (const t of targets) shapes[t.name] = await checkData(t);

    workers = new WorkerPool(opts.workers);
    const result = { env, shapes, vsAzurite: {}, phase: {}, rss: null, logs: {} };

    process.stderr.write("warm-up\n");
    await warmUp(workers, opts, targets, { read: SPECS.read, query: SPECS.query, insert: SPECS.insert });

    // Inserts last, so the rows they add do not change what reads and
    // queries run against.
    const b = px ?? az;
    process.stderr.write(`1. ${b.name} vs azurite\n`);
    for (const op of ["read", "query", "insert"]) {
      const [sa, sb] = await sideBySide(workers, opts, op, SPECS[op], az, b, targets);
      result.vsAzurite[op] = { a: sa, b: sb };
    }

    if (pn) {
      process.stderr.write("2. proxy in prefer_new vs proxy in phase 0\n");
      for (const op of ["read", "insert"]) {
        const [s0, s2] = await sideBySide(workers, opts, op, SPECS[op], px, pn, targets);
        result.phase[op] = { a: s0, b: s2 };
      }
      process.stderr.write(`3. RSS of the proxy in prefer_new under a ${opts.rssSeconds} s mixed load\n`);
      result.rss = await rssRun(workers, opts, pn, targets);
    }
    for (const t of targets) if (t !== az) result.logs[t.name] = extraLogLines(t);

    const md = renderReport(result);
    process.stdout.write(md);
    writeFileSync(opts.out, md);
    process.stderr.write(`written to ${relative(process.cwd(), opts.out)}\n`);
    ok = true;
  } finally {
    workers?.close();
    for (const t of targets.reverse()) await stopPid(t.pid);
    // Server logs are kept when something went wrong.
    if (ok) rmSync(work, { recursive: true, force: true });
    else process.stderr.write(`server logs kept in ${work}\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`mtable bench: ${e instanceof UsageError ? e.message : e.stack || e}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});

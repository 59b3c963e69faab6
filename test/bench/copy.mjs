#!/usr/bin/env node
// copy.mjs -- the migrator's copy rate with 1, 4 and 16 partitions copied at
// once (mtable-proxy --copy-parallel), Azurite to Azurite, against a plain
// copy loop written with @azure/data-tables, in one run on one machine.
//
//   node test/bench/copy.mjs [--quick] [--partitions N] [--rows N]
//                            [--parallel 1,4,16] [--sdk-inflight N]
//                            [--proxy-bin PATH]
//
// One Azurite holds the old table (loaded once). Every copy writes into a
// fresh Azurite process for the new account, so no run meets another's rows
// or a heap grown by them. Order: SDK loop, migrator at each parallelism,
// SDK loop again; the two SDK runs bracket the others, and their spread
// shows how much the machine's load moved during the run. Ratios are
// against the mean of the two. The migrator switches every partition it
// copies (a meta row in old), so those rows are deleted after each
// migrator run: every run starts from the same old table.
//
// Prints progress on stderr and a markdown report on stdout. Exits non-zero
// only when it could not measure (a server would not start, a row count was
// wrong); no timing is a failure.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { AzureNamedKeyCredential, TableClient } from "@azure/data-tables";
import { DEV_ACCOUNT, DEV_KEY, devConnectionString } from "./lib/client.mjs";
import { checkAlive, gitCommit, pool, treeState } from "./lib/driver.mjs";
import { admin, azuriteVersion, cpuSeconds, machine, sleep, startAzurite, startProxy, stopPid } from "./lib/procs.mjs";

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, "../..");
const TABLE = "copysrc";
const log = (s) => process.stderr.write(s + "\n");
const pad = (n, w) => String(n).padStart(w, "0");

const USAGE = `usage: node test/bench/copy.mjs [options]

  --quick            50 partitions x 200 rows instead of 200 x 500
  --partitions N     partitions in the old table (default 200)
  --rows N           rows per partition (default 500)
  --parallel LIST    migrator parallelisms to measure (default 1,4,16)
  --sdk-inflight N   transactions the SDK loop keeps in flight (default 4)
  --proxy-bin PATH   proxy binary (default build/proxy/mtable-proxy,
                     or $MTABLE_PROXY_BIN)
`;

function parseArgs(argv) {
  const o = {
    partitions: 200,
    rows: 500,
    parallel: [1, 4, 16],
    sdkInflight: 4,
    proxyBin: process.env.MTABLE_PROXY_BIN || join(repoRoot, "build/proxy/mtable-proxy"),
  };
  const num = (v, what) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${what}: want a positive integer, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--quick") Object.assign(o, { partitions: 50, rows: 200 });
    else if (a === "--partitions") o.partitions = num(next(), a);
    else if (a === "--rows") o.rows = num(next(), a);
    else if (a === "--parallel") o.parallel = next().split(",").map((v) => num(v, a));
    else if (a === "--sdk-inflight") o.sdkInflight = num(next(), a);
    else if (a === "--proxy-bin") o.proxyBin = resolve(next());
    else if (a === "--help" || a === "-h") {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  return o;
}

const sdkTable = (port, name = TABLE) =>
  new TableClient(`http://127.0.0.1:${port}/${DEV_ACCOUNT}`, name, new AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY), {
    allowInsecureConnection: true,
  });

const row = (pk, i) => ({
  partitionKey: pk,
  rowKey: `r${pad(i, 6)}`,
  Name: `row ${i} of ${pk}`,
  Count: i,
  Score: i + 0.5,
  Active: i % 2 === 0,
  Note: "the quick brown fox jumps over the lazy dog",
});

// Transactions of 100 rows of one partition, 8 in flight.
async function load(src, partitions, rows) {
  const jobs = [];
  for (let p = 0; p < partitions; p++) {
    const pk = `p${pad(p, 4)}`;
    for (let i = 0; i < rows; i += 100) {
      const ops = [];
      for (let j = i; j < Math.min(i + 100, rows); j++) ops.push(["create", row(pk, j)]);
      jobs.push(() => src.submitTransaction(ops));
    }
  }
  await pool(8, jobs);
}

async function countRows(t) {
  let n = 0;
  const pages = t.listEntities({ queryOptions: { select: ["RowKey"] } }).byPage({ maxPageSize: 1000 });
  for await (const page of pages) n += page.filter((e) => !e.rowKey.startsWith("_mtable_")).length;
  return n;
}

// The plain loop: list every entity of src in pages, write them to dst in
// transactions of up to 100 rows of one partition, `inflight` at a time.
// Rows of the migration protocol are not the application's and are skipped.
async function sdkCopy(src, dst, inflight) {
  const running = new Set();
  let rows = 0;
  let batch = [];
  let pk = null;
  const submit = async () => {
    const ops = batch;
    batch = [];
    const p = dst.submitTransaction(ops).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= inflight) await Promise.race(running);
  };
  for await (const page of src.listEntities().byPage({ maxPageSize: 1000 })) {
    for (const e of page) {
      if (e.rowKey.startsWith("_mtable_")) continue;
      if (batch.length === 100 || (pk !== null && e.partitionKey !== pk)) await submit();
      pk = e.partitionKey;
      const { etag, timestamp, ...plain } = e; // eslint-disable-line no-unused-vars
      batch.push(["create", plain]);
      rows++;
    }
  }
  if (batch.length) await submit();
  await Promise.all(running);
  return rows;
}

// POST /admin/v1/migrate {"until": "prefer_new"}, then polls the status
// until the copy is done; times the copy from the first status that says
// "copying" and the whole run from the POST.
async function runMigrator(proxy) {
  const t0 = performance.now();
  const r = await admin(proxy.adminPort, "POST", "/admin/v1/migrate", { until: "prefer_new" });
  if (r.status !== 202) throw new Error(`migrate: HTTP ${r.status} ${r.text}`);
  let copyStart = null;
  for (;;) {
    const s = await admin(proxy.adminPort, "GET", "/admin/v1/status");
    const now = performance.now();
    const m = s.json?.migration;
    if (!m) throw new Error(`status: HTTP ${s.status} ${s.text}`);
    if (m.state === "failed") throw new Error(`migration failed: ${s.text}`);
    if (copyStart === null && m.state === "copying") copyStart = now;
    if (m.copy_done && m.state !== "copying" && m.state !== "pushing")
      return { seconds: (now - (copyStart ?? t0)) / 1000, whole: (now - t0) / 1000, m };
    checkAlive([proxy]);
    await sleep(50);
  }
}

// The meta rows the migrator left in old (one per switched partition).
async function dropProtocolRows(src) {
  const jobs = [];
  const filter = "RowKey ge '_mtable_' and RowKey lt '_mtable`'";
  for await (const e of src.listEntities({ queryOptions: { filter, select: ["PartitionKey", "RowKey"] } }))
    jobs.push(() => src.deleteEntity(e.partitionKey, e.rowKey));
  await pool(8, jobs);
}

async function measure(opts, work, oldAz, run) {
  const newAz = await startAzurite(work, `azurite-new-${run.label.replace(/\W+/g, "-")}`);
  let proxy = null;
  try {
    await sdkTable(newAz.port).createTable();
    const dst = sdkTable(newAz.port);
    if (run.parallel)
      proxy = await startProxy(opts.proxyBin, work, `proxy-p${run.parallel}`, [
        "--old", devConnectionString(oldAz.port),
        "--new", devConnectionString(newAz.port),
        "--copy-parallel", String(run.parallel),
        "--log-level", "warn",
      ]);
    const pids = { old: oldAz.pid, new: newAz.pid, ...(proxy ? { proxy: proxy.pid } : {}) };
    const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p)]));
    const self0 = process.cpuUsage();
    log(`  ${run.label}`);
    let out;
    if (proxy) {
      const r = await runMigrator(proxy);
      out = { rows: r.m.rows_copied, seconds: r.seconds, whole: r.whole, backoffs: r.m.backoffs };
    } else {
      const t0 = performance.now();
      const rows = await sdkCopy(sdkTable(oldAz.port), dst, opts.sdkInflight);
      out = { rows, seconds: (performance.now() - t0) / 1000 };
    }
    const self = process.cpuUsage(self0);
    out.cpu = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p) - cpu0[k]]));
    out.cpu.driver = (self.user + self.system) / 1e6;
    const inNew = await countRows(dst);
    if (out.rows !== opts.total || inNew !== opts.total)
      throw new Error(`${run.label}: copied ${out.rows}, new holds ${inNew}, wanted ${opts.total}`);
    log(`    ${out.rows} rows in ${out.seconds.toFixed(1)} s: ${(out.rows / out.seconds).toFixed(0)} rows/s`);
    return { ...run, ...out };
  } finally {
    if (proxy) await stopPid(proxy.pid);
    await stopPid(newAz.pid);
    if (run.parallel) await dropProtocolRows(sdkTable(oldAz.port));
  }
}

const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : "-");
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "-");
const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "-");

function report(opts, env, results) {
  const sdk = results.filter((r) => !r.parallel);
  const base = sdk.reduce((a, r) => a + r.rows / r.seconds, 0) / sdk.length;
  const L = [
    "# Migrator copy rate vs a plain SDK copy loop",
    "",
    `${env.date}, ${env.nproc} CPUs (${env.cpu}), node ${process.version}, Azurite ${env.azurite}, ` +
      `commit ${env.commit} (${env.tree}).`,
    `${opts.partitions} partitions × ${opts.rows} rows = ${opts.total} rows; ` +
      `SDK loop with ${opts.sdkInflight} transactions in flight.`,
    "",
    "| run | seconds | rows/s | vs SDK loop | CPU s: proxy / old Azurite / new Azurite / driver |",
    "|---|--:|--:|--:|---|",
  ];
  for (const r of results) {
    const rate = r.rows / r.seconds;
    const cpu = [r.cpu.proxy, r.cpu.old, r.cpu.new, r.cpu.driver].map(f1).join(" / ");
    const whole = r.whole ? ` (whole run ${f1(r.whole)} s)` : "";
    L.push(`| ${r.label} | ${f1(r.seconds)}${whole} | ${f0(rate)} | ${ratio(rate / base)} | ${cpu} |`);
  }
  L.push("", `Ratios against the mean of the SDK runs (${f0(base)} rows/s).`, "");
  return L.join("\n");
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  opts.total = opts.partitions * opts.rows;
  const env = {
    date: new Date().toISOString(),
    ...machine(),
    azurite: azuriteVersion(),
    commit: gitCommit(repoRoot),
    tree: treeState(repoRoot),
  };
  const work = mkdtempSync(join(tmpdir(), "mtable-bench-copy-"));
  let oldAz = null;
  let ok = false;
  try {
    oldAz = await startAzurite(work, "azurite-old");
    const src = sdkTable(oldAz.port);
    await src.createTable();
    log(`loading ${opts.total} rows (${opts.partitions} partitions)`);
    const t0 = performance.now();
    await load(src, opts.partitions, opts.rows);
    const loaded = await countRows(src);
    if (loaded !== opts.total) throw new Error(`old holds ${loaded} rows, wanted ${opts.total}`);
    log(`  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const runs = [
      { label: "SDK loop (1)" },
      ...opts.parallel.map((p) => ({ label: `migrator, --copy-parallel ${p}`, parallel: p })),
      { label: "SDK loop (2)" },
    ];
    const results = [];
    for (const run of runs) results.push(await measure(opts, work, oldAz, run));
    process.stdout.write(report(opts, env, results));
    ok = true;
  } finally {
    if (oldAz) await stopPid(oldAz.pid);
    if (ok) rmSync(work, { recursive: true, force: true });
    else log(`server logs kept in ${work}`);
  }
}

main().catch((e) => {
  process.stderr.write(`copy bench: ${e.stack || e}\n`);
  process.exit(1);
});

#!/usr/bin/env node
// cleanup.mjs -- the migrator's cleanup against its copy, side by side: one
// whole migration (POST /admin/v1/migrate) of one table, Azurite to
// Azurite, timing each step from the status it shows.
//
//   node test/bench/cleanup.mjs [--partitions N] [--rows N] [--parallel N]
//                               [--runs N] [--proxy-bin PATH]
//
// One Azurite process holds the old account, another the new one (as in
// copy.mjs). The old table is loaded with transactions of 100 rows; the
// proxy then migrates it to the end. Status is polled every 50 ms: the copy
// is timed from the first "copying" to the first status past it, the
// cleanup from the first "cleaning" to the first status past it (its count
// pass included), and each server's CPU time (from /proc) is charged to
// the step it was spent in. --runs repeats the whole migration on fresh
// servers. Last, one Azurite alone is given the rows' inserts and then
// their deletes in transactions of 100, with no proxy: the CPU each costs
// it, which bounds what the copy (inserts in new) and the cleanup (deletes
// in old) can do on one Azurite process each. With --proxy-bin an older
// build can be measured the same way, for a before/after.
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
const TABLE = "cleansrc";
const log = (s) => process.stderr.write(s + "\n");
const pad = (n, w) => String(n).padStart(w, "0");

const USAGE = `usage: node test/bench/cleanup.mjs [options]

  --partitions N     partitions in the old table (default 40)
  --rows N           rows per partition (default 500)
  --parallel N       --copy-parallel of the proxy (default 4)
  --runs N           whole migrations, each on fresh servers (default 1)
  --proxy-bin PATH   proxy binary (default build/proxy/mtable-proxy,
                     or $MTABLE_PROXY_BIN)
`;

function parseArgs(argv) {
  const o = {
    partitions: 40,
    rows: 500,
    parallel: 4,
    runs: 1,
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
    if (a === "--partitions") o.partitions = num(next(), a);
    else if (a === "--rows") o.rows = num(next(), a);
    else if (a === "--parallel") o.parallel = num(next(), a);
    else if (a === "--runs") o.runs = num(next(), a);
    else if (a === "--proxy-bin") o.proxyBin = resolve(next());
    else if (a === "--help" || a === "-h") {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  return o;
}

const sdkTable = (port) =>
  new TableClient(`http://127.0.0.1:${port}/${DEV_ACCOUNT}`, TABLE, new AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY), {
    allowInsecureConnection: true,
  });

async function load(src, partitions, rows) {
  const jobs = [];
  for (let p = 0; p < partitions; p++) {
    const pk = `p${pad(p, 4)}`;
    for (let i = 0; i < rows; i += 100) {
      const ops = [];
      for (let j = i; j < Math.min(i + 100, rows); j++) {
        ops.push(["create", { partitionKey: pk, rowKey: `r${pad(j, 6)}`, Count: j, Note: "the quick brown fox" }]);
      }
      jobs.push(() => src.submitTransaction(ops));
    }
  }
  await pool(8, jobs);
}

async function countRows(t) {
  let n = 0;
  for await (const page of t.listEntities({ queryOptions: { select: ["RowKey"] } }).byPage({ maxPageSize: 1000 }))
    n += page.length;
  return n;
}

// Runs the whole migration; returns the seconds each step showed in status.
// cpu: { name: pid } of the servers whose CPU time each step is charged.
async function migrate(proxy, cpu) {
  const r = await admin(proxy.adminPort, "POST", "/admin/v1/migrate");
  if (r.status !== 202) throw new Error(`migrate: HTTP ${r.status} ${r.text}`);
  const first = {};
  const last = {};
  const cpuAt = {}; // state -> { first: {name: s}, last: {name: s} }
  const sample = () => Object.fromEntries(Object.entries(cpu).map(([k, pid]) => [k, cpuSeconds(pid)]));
  let m;
  for (;;) {
    const s = await admin(proxy.adminPort, "GET", "/admin/v1/status");
    const now = performance.now();
    m = s.json?.migration;
    if (!m) throw new Error(`status: HTTP ${s.status} ${s.text}`);
    if (m.state === "failed") throw new Error(`migration failed: ${s.text}`);
    if (first[m.state] === undefined) {
      first[m.state] = now;
      cpuAt[m.state] = { first: sample() };
    }
    for (const k of Object.keys(first))
      if (k !== m.state && last[k] === undefined && first[k] < now) {
        last[k] = now;
        cpuAt[k].last = sample();
      }
    if (m.state === "done") break;
    checkAlive([proxy]);
    await sleep(50);
  }
  const span = (k) => (first[k] !== undefined && last[k] !== undefined ? (last[k] - first[k]) / 1000 : NaN);
  const cpuOf = (k) =>
    cpuAt[k]?.last ? Object.fromEntries(Object.keys(cpu).map((n) => [n, cpuAt[k].last[n] - cpuAt[k].first[n]])) : {};
  return { copy: span("copying"), cleanup: span("cleaning"), copyCpu: cpuOf("copying"), cleanupCpu: cpuOf("cleaning"), m };
}

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "-");
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "-");
const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : "-");
const median = (xs) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

// One migration on fresh servers: loads old, migrates, checks that new
// holds every row and old none. Returns migrate()'s figures.
async function runOnce(opts, work, label) {
  const total = opts.partitions * opts.rows;
  const pids = [];
  try {
    const oldAz = await startAzurite(work, `${label}-azurite-old`);
    pids.push(oldAz.pid);
    const newAz = await startAzurite(work, `${label}-azurite-new`);
    pids.push(newAz.pid);
    const src = sdkTable(oldAz.port);
    await src.createTable();
    await sdkTable(newAz.port).createTable();
    log(`${label}: loading ${total} rows (${opts.partitions} partitions)`);
    await load(src, opts.partitions, opts.rows);
    if ((await countRows(src)) !== total) throw new Error("old does not hold the rows loaded");
    const proxy = await startProxy(opts.proxyBin, work, `${label}-proxy`, [
      "--old", devConnectionString(oldAz.port),
      "--new", devConnectionString(newAz.port),
      "--copy-parallel", String(opts.parallel),
      "--log-level", "warn",
    ]);
    pids.push(proxy.pid);
    log(`${label}: migrating`);
    const r = await migrate(proxy, { old: oldAz.pid, new: newAz.pid, proxy: proxy.pid });
    const inNew = await countRows(sdkTable(newAz.port));
    const inOld = await countRows(src);
    if (inNew !== total || inOld !== 0) throw new Error(`new holds ${inNew}, old ${inOld}; wanted ${total} and 0`);
    r.cleaned = r.m.rows_cleaned_old ?? r.m.rows_cleaned;
    log(`${label}: copy ${f2(r.copy)} s, cleanup ${f2(r.cleanup)} s, ${f2(r.cleanup / r.copy)}x`);
    return r;
  } finally {
    for (const pid of pids.reverse()) await stopPid(pid);
  }
}

// Azurite alone, no proxy: the CPU time one Azurite process spends on the
// table's rows inserted and then deleted in transactions of 100 (parallel
// as the proxy's workers), i.e. what the copy asks of new and the cleanup
// of old, whoever sends it.
async function azuriteAlone(opts, work) {
  const az = await startAzurite(work, "alone-azurite");
  try {
    const t = sdkTable(az.port);
    await t.createTable();
    const keys = [];
    const inserts = [];
    for (let p = 0; p < opts.partitions; p++) {
      const pk = `p${pad(p, 4)}`;
      for (let i = 0; i < opts.rows; i += 100) {
        const ops = [];
        for (let j = i; j < Math.min(i + 100, opts.rows); j++) {
          ops.push(["create", { partitionKey: pk, rowKey: `r${pad(j, 6)}`, Count: j, Note: "the quick brown fox" }]);
          keys.push([pk, `r${pad(j, 6)}`]);
        }
        inserts.push(() => t.submitTransaction(ops));
      }
    }
    const deletes = [];
    for (let i = 0; i < keys.length; ) {
      const pk = keys[i][0];
      const ops = [];
      for (; i < keys.length && ops.length < 100 && keys[i][0] === pk; i++)
        ops.push(["delete", { partitionKey: pk, rowKey: keys[i][1] }]);
      deletes.push(() => t.submitTransaction(ops));
    }
    let c0 = cpuSeconds(az.pid);
    await pool(opts.parallel, inserts);
    const insertCpu = cpuSeconds(az.pid) - c0;
    c0 = cpuSeconds(az.pid);
    await pool(opts.parallel, deletes);
    const deleteCpu = cpuSeconds(az.pid) - c0;
    log(`Azurite alone: inserts ${f2(insertCpu)} s CPU, deletes ${f2(deleteCpu)} s CPU`);
    return { insertCpu, deleteCpu };
  } finally {
    await stopPid(az.pid);
  }
}

function report(opts, runs, alone) {
  const total = opts.partitions * opts.rows;
  const cpu = (c) => `${f2(c.old)} / ${f2(c.new)} / ${f2(c.proxy)}`;
  const L = [
    "# Migrator cleanup vs copy",
    "",
    `${new Date().toISOString()}, ${machine().nproc} CPUs, node ${process.version}, Azurite ${azuriteVersion()}, ` +
      `commit ${gitCommit(repoRoot)} (${treeState(repoRoot)}), proxy ${opts.proxyBin}.`,
    `${opts.partitions} partitions × ${opts.rows} rows = ${total} rows, --copy-parallel ${opts.parallel}, ` +
      `${runs.length} run(s).`,
    "",
    "| run | copy s | copy rows/s | cleanup s | cleanup rows/s | cleanup ÷ copy | copy CPU s old / new / proxy | cleanup CPU s old / new / proxy |",
    "|---|--:|--:|--:|--:|--:|--:|--:|",
  ];
  runs.forEach((r, i) =>
    L.push(
      `| ${i + 1} | ${f2(r.copy)} | ${f0(r.m.rows_done / r.copy)} | ${f2(r.cleanup)} | ${f0(r.cleaned / r.cleanup)} | ` +
        `${f2(r.cleanup / r.copy)} | ${cpu(r.copyCpu)} | ${cpu(r.cleanupCpu)} |`,
    ),
  );
  const ratios = runs.map((r) => r.cleanup / r.copy);
  L.push(
    "",
    `Cleanup took ${f2(median(ratios))}× the copy's time (median of ${runs.length}; ` +
      `${ratios.map(f2).join(", ")}).`,
    "",
    `Azurite alone (one process, no proxy, ${opts.parallel} transactions of 100 in flight): ` +
      `inserting the ${total} rows took it ${f2(alone.insertCpu)} s of CPU, deleting them ` +
      `${f2(alone.deleteCpu)} s (${f2(alone.deleteCpu / alone.insertCpu)}×).`,
    "",
  );
  return L.join("\n");
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const work = mkdtempSync(join(tmpdir(), "mtable-bench-cleanup-"));
  let ok = false;
  try {
    const runs = [];
    for (let i = 0; i < opts.runs; i++) runs.push(await runOnce(opts, work, `run ${i + 1}`));
    const alone = await azuriteAlone(opts, work);
    process.stdout.write(report(opts, runs, alone));
    ok = true;
  } finally {
    if (ok) rmSync(work, { recursive: true, force: true });
    else log(`server logs kept in ${work}`);
  }
}

main().catch((e) => {
  process.stderr.write(`cleanup bench: ${e.stack || e}\n`);
  process.exit(1);
});

#!/usr/bin/env node
// cleanup.mjs -- the migrator's cleanup against its copy, side by side: one
// whole migration (POST /admin/v1/migrate) of one table, Azurite to
// Azurite, timing each step from the status it shows.
//
//   node test/bench/cleanup.mjs [--partitions N] [--rows N] [--parallel N]
//                               [--proxy-bin PATH]
//
// One Azurite process holds the old account, another the new one (as in
// copy.mjs). The old table is loaded with transactions of 100 rows; the
// proxy then migrates it to the end. Status is polled every 50 ms: the copy
// is timed from the first "copying" to the first status past it, the
// cleanup from the first "cleaning" to the first status past it (its count
// pass included). With --proxy-bin an older build can be measured the same
// way, for a before/after.
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
import { admin, azuriteVersion, machine, sleep, startAzurite, startProxy, stopPid } from "./lib/procs.mjs";

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, "../..");
const TABLE = "cleansrc";
const log = (s) => process.stderr.write(s + "\n");
const pad = (n, w) => String(n).padStart(w, "0");

const USAGE = `usage: node test/bench/cleanup.mjs [options]

  --partitions N     partitions in the old table (default 40)
  --rows N           rows per partition (default 500)
  --parallel N       --copy-parallel of the proxy (default 4)
  --proxy-bin PATH   proxy binary (default build/proxy/mtable-proxy,
                     or $MTABLE_PROXY_BIN)
`;

function parseArgs(argv) {
  const o = {
    partitions: 40,
    rows: 500,
    parallel: 4,
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
async function migrate(proxy) {
  const r = await admin(proxy.adminPort, "POST", "/admin/v1/migrate");
  if (r.status !== 202) throw new Error(`migrate: HTTP ${r.status} ${r.text}`);
  const first = {};
  const last = {};
  let m;
  for (;;) {
    const s = await admin(proxy.adminPort, "GET", "/admin/v1/status");
    const now = performance.now();
    m = s.json?.migration;
    if (!m) throw new Error(`status: HTTP ${s.status} ${s.text}`);
    if (m.state === "failed") throw new Error(`migration failed: ${s.text}`);
    first[m.state] ??= now;
    for (const k of Object.keys(first)) if (k !== m.state && last[k] === undefined && first[k] < now) last[k] = now;
    if (m.state === "done") break;
    checkAlive([proxy]);
    await sleep(50);
  }
  const span = (k) => (first[k] !== undefined && last[k] !== undefined ? (last[k] - first[k]) / 1000 : NaN);
  return { copy: span("copying"), cleanup: span("cleaning"), m };
}

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "-");
const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : "-");

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const total = opts.partitions * opts.rows;
  const work = mkdtempSync(join(tmpdir(), "mtable-bench-cleanup-"));
  const pids = [];
  let ok = false;
  try {
    const oldAz = await startAzurite(work, "azurite-old");
    pids.push(oldAz.pid);
    const newAz = await startAzurite(work, "azurite-new");
    pids.push(newAz.pid);
    const src = sdkTable(oldAz.port);
    await src.createTable();
    await sdkTable(newAz.port).createTable();
    log(`loading ${total} rows (${opts.partitions} partitions)`);
    await load(src, opts.partitions, opts.rows);
    if ((await countRows(src)) !== total) throw new Error("old does not hold the rows loaded");
    const proxy = await startProxy(opts.proxyBin, work, "proxy", [
      "--old", devConnectionString(oldAz.port),
      "--new", devConnectionString(newAz.port),
      "--copy-parallel", String(opts.parallel),
      "--log-level", "warn",
    ]);
    pids.push(proxy.pid);
    log("migrating");
    const r = await migrate(proxy);
    const inNew = await countRows(sdkTable(newAz.port));
    const inOld = await countRows(src);
    if (inNew !== total || inOld !== 0) throw new Error(`new holds ${inNew}, old ${inOld}; wanted ${total} and 0`);
    const cleaned = r.m.rows_cleaned_old ?? r.m.rows_cleaned;
    const L = [
      "# Migrator cleanup vs copy",
      "",
      `${new Date().toISOString()}, ${machine().nproc} CPUs, node ${process.version}, Azurite ${azuriteVersion()}, ` +
        `commit ${gitCommit(repoRoot)} (${treeState(repoRoot)}), proxy ${opts.proxyBin}.`,
      `${opts.partitions} partitions × ${opts.rows} rows = ${total} rows, --copy-parallel ${opts.parallel}.`,
      "",
      "| step | seconds | rows | rows/s |",
      "|---|--:|--:|--:|",
      `| copy | ${f1(r.copy)} | ${r.m.rows_done} | ${f0(r.m.rows_done / r.copy)} |`,
      `| cleanup (old emptied) | ${f1(r.cleanup)} | ${cleaned} | ${f0(cleaned / r.cleanup)} |`,
      "",
      `Cleanup took ${f1(r.cleanup / r.copy)}× the copy's time.`,
      "",
    ];
    process.stdout.write(L.join("\n"));
    ok = true;
  } finally {
    for (const pid of pids.reverse()) await stopPid(pid);
    if (ok) rmSync(work, { recursive: true, force: true });
    else log(`server logs kept in ${work}`);
  }
}

main().catch((e) => {
  process.stderr.write(`cleanup bench: ${e.stack || e}\n`);
  process.exit(1);
});

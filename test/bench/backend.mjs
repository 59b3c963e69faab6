#!/usr/bin/env node
// backend.mjs -- mtable-proxy over Azure backends (two Azurite accounts, old
// and new), in one run on one machine:
//
//   1. throughput through the proxy in phase use_old_hide_metadata against
//      Azurite directly, same client, same concurrency, in alternation:
//      point reads, upserts, inserts;
//   2. backend requests per client operation, per phase and kind of
//      operation, counted (not timed) by a pass-through in front of each
//      Azurite, next to the counts of the original MigratingTable;
//   3. the migrator's copy rate (Azurite to Azurite) against a plain copy
//      loop written with @azure/data-tables.
//
//   node test/bench/backend.mjs [--quick] [--sections 1,2,3] [--workers N]
//                               [--lanes N] [--seconds S] [--rounds N]
//                               [--ops N] [--partitions N] [--rows N]
//                               [--proxy-bin PATH] [--out FILE]
//
// Ratios come from measurements taken side by side in this run; nothing
// here fails on a timing or a count. The exit status is non-zero only when
// the benchmark could not measure (a server would not start, a setup check
// or an operation's status was wrong).

import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { AzureNamedKeyCredential, TableClient as SdkTableClient } from "@azure/data-tables";
import {
  DEV_ACCOUNT,
  DEV_KEY,
  TableClient,
  batchRequest,
  batchStatuses,
  devConnectionString,
  entityPath,
  makeEntity,
  partitionQuery,
} from "./lib/client.mjs";
import { startCounter } from "./lib/counter.mjs";
import {
  checkAlive,
  describeProxyBuild,
  expectStatus,
  extraLogLines,
  gitCommit,
  pool,
  treeState,
  pushPhase,
  sideBySide,
  warmUp,
} from "./lib/driver.mjs";
import { WorkerPool } from "./lib/load.mjs";
import { admin, azuriteVersion, cpuSeconds, machine, sleep, startAzurite, startProxy, stopPid } from "./lib/procs.mjs";
import { COUNT_OPS, PHASES, renderBackendReport } from "./lib/report-backend.mjs";

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, "../..");

// ---------------------------------------------------------------------------
// Options.

const USAGE = `usage: node test/bench/backend.mjs [options]

  --quick            short run: 3 s per measurement, 3 operations per count,
                     10 partitions x 500 rows to copy
  --sections LIST    which sections to run, e.g. 1,3 (default 1,2,3)
  --workers N        client processes sharing the load (default 2)
  --lanes N          requests in flight in total (default 16)
  --seconds S        seconds per throughput measurement (default 10, quick 3)
  --rounds N         measurements per target and operation (default 3)
  --ops N            operations of each kind per phase in section 2
                     (default 10, quick 3)
  --partitions N     partitions to copy in section 3 (default 100, quick 10)
  --rows N           rows per partition to copy (default 500)
  --proxy-bin PATH   proxy binary (default build/proxy/mtable-proxy,
                     or $MTABLE_PROXY_BIN)
  --out FILE         where to write the report
                     (default test/bench/results-backend.md)
`;

class UsageError extends Error {}

function parseArgs(argv) {
  const o = {
    quick: false,
    sections: [1, 2, 3],
    workers: 2,
    lanes: 16,
    seconds: null,
    rounds: 3,
    ops: null,
    partitions: null,
    rows: 500,
    proxyBin: process.env.MTABLE_PROXY_BIN || join(repoRoot, "build/proxy/mtable-proxy"),
    out: join(benchDir, "results-backend.md"),
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
    else if (a === "--sections") {
      o.sections = val()
        .split(",")
        .map((x) => Number(x.trim()));
      if (!o.sections.length || o.sections.some((x) => ![1, 2, 3].includes(x)))
        throw new UsageError(`--sections takes a list of 1, 2, 3`);
    } else if (a === "--workers") o.workers = Math.floor(num(val(), a));
    else if (a === "--lanes") o.lanes = Math.floor(num(val(), a));
    else if (a === "--seconds") o.seconds = num(val(), a);
    else if (a === "--rounds") o.rounds = Math.floor(num(val(), a));
    else if (a === "--ops") o.ops = Math.floor(num(val(), a));
    else if (a === "--partitions") o.partitions = Math.floor(num(val(), a));
    else if (a === "--rows") o.rows = Math.floor(num(val(), a));
    else if (a === "--proxy-bin") o.proxyBin = resolve(val());
    else if (a === "--out") o.out = resolve(val());
    else if (a === "--help" || a === "-h") {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new UsageError(`unknown option ${a} (see --help)`);
  }
  o.seconds ??= o.quick ? 3 : 10;
  o.ops ??= o.quick ? 3 : 10;
  o.partitions ??= o.quick ? 10 : 100;
  o.warmupSeconds = o.quick ? 0.5 : 1;
  return o;
}

const pad = (n, w = 6) => String(n).padStart(w, "0");
const log = (s) => process.stderr.write(s + "\n");
const azuriteArgs = (az) => devConnectionString(az.port);

// Both Azurite accounts, the old one and the new one, on free ports.
async function startAzuritePair(work, tag) {
  const oldAz = { ...(await startAzurite(work, `azurite-old-${tag}`)), host: "127.0.0.1" };
  const newAz = { ...(await startAzurite(work, `azurite-new-${tag}`)), host: "127.0.0.1" };
  return [oldAz, newAz];
}

async function createTable(c, name, what) {
  await expectStatus(
    c.request("POST", "Tables", { body: { TableName: name }, headers: { Prefer: "return-no-content" } }),
    [201, 204],
    `${what}: create table ${name}`,
  );
}

async function stopAll(list) {
  for (const t of list.splice(0).reverse()) await stopPid(t.pid);
}

// ---------------------------------------------------------------------------
// 1. Throughput: proxy (phase 0, Azure backends) vs Azurite directly.

const TABLE1 = "bench";
const SPECS1 = {
  read: { table: TABLE1, pk: "read", keys: 1000 },
  upsert: { table: TABLE1, pk: "ups", keys: 1000 },
  insert: { table: TABLE1, pkPrefix: "ins", partitionRows: 500 },
};

async function section1(opts, work, servers) {
  log("1. proxy (phase 0) over Azurite vs Azurite directly");
  const [oldAz, newAz] = await startAzuritePair(work, "s1");
  servers.push(oldAz, newAz);
  const c = new TableClient({ host: "127.0.0.1", port: oldAz.port, concurrency: 16 });
  try {
    await createTable(c, TABLE1, "azurite-old");
    const jobs = [];
    for (const pk of ["read", "ups"])
      for (let i = 0; i < 1000; i++) {
        const rk = `k${pad(i)}`;
        jobs.push(() =>
          expectStatus(
            c.request("POST", TABLE1, { body: makeEntity(pk, rk, i), headers: { Prefer: "return-no-content" } }),
            [201, 204],
            `azurite-old: insert ${pk}/${rk}`,
          ),
        );
      }
    await pool(16, jobs);
  } finally {
    c.close();
  }
  const cn = new TableClient({ host: "127.0.0.1", port: newAz.port, concurrency: 1 });
  try {
    await createTable(cn, TABLE1, "azurite-new");
  } finally {
    cn.close();
  }
  const proxy = await startProxy(opts.proxyBin, work, "proxy-s1", ["--old", azuriteArgs(oldAz), "--new", azuriteArgs(newAz)]);
  servers.push(proxy);
  // The proxy's target counts the backend it forwards to as server CPU too.
  const px = { ...proxy, host: "127.0.0.1", name: "proxy", pids: [proxy.pid, oldAz.pid] };
  const az = { ...oldAz, name: "azurite" };
  const status = await admin(proxy.adminPort, "GET", "/admin/v1/status");
  if (status.json?.phase !== "use_old_hide_metadata")
    throw new Error(`proxy-s1 is not in phase 0: ${status.text}`);

  // The same row through both paths.
  for (const t of [az, px]) {
    const tc = new TableClient({ host: "127.0.0.1", port: t.port, concurrency: 1 });
    try {
      const r = await expectStatus(tc.request("GET", entityPath(TABLE1, "read", "k000042"), { parse: true }), [200], `${t.name}: point read`);
      const row = JSON.parse(r.body);
      if (row.RowKey !== "k000042" || row.Count !== 42) throw new Error(`${t.name}: point read returned ${r.body}`);
    } finally {
      tc.close();
    }
  }

  const workers = new WorkerPool(opts.workers);
  const result = { rows: {}, log: [] };
  try {
    log("  warm-up");
    await warmUp(workers, opts, [az, px], SPECS1);
    for (const op of ["read", "upsert", "insert"]) {
      const [sa, sb] = await sideBySide(workers, opts, op, SPECS1[op], az, px, servers);
      result.rows[op] = { a: sa, b: sb };
    }
  } finally {
    workers.close();
  }
  result.log = extraLogLines(proxy);
  await stopAll(servers);
  return result;
}

// ---------------------------------------------------------------------------
// 2. Backend requests per operation, per phase.

const TABLE2 = "counted";

// One client operation through the proxy, checked: resolves the response,
// throws on a status it should not get.
async function op2(c, what, method, path, o, want) {
  const r = await c.request(method, path, { ...o, parse: true });
  if (!want.includes(r.status)) throw new Error(`${what}: HTTP ${r.status} (wanted ${want.join(" or ")}): ${r.body}`);
  return r;
}

async function section2(opts, work, servers) {
  log("2. backend requests per operation, per phase (counted)");
  const [oldAz, newAz] = await startAzuritePair(work, "s2");
  servers.push(oldAz, newAz);
  const cOld = await startCounter(oldAz.port, "old");
  const cNew = await startCounter(newAz.port, "new");
  const proxy = await startProxy(opts.proxyBin, work, "proxy-s2", [
    "--old", devConnectionString(cOld.port),
    "--new", devConnectionString(cNew.port),
  ]);
  servers.push(proxy);
  const c = new TableClient({ host: "127.0.0.1", port: proxy.port, concurrency: 1 });
  const hostPort = `127.0.0.1:${proxy.port}`;
  const N = opts.ops;
  const result = { n: N, phases: {}, idle: null, log: [], transitions: {} };
  const snap = () => ({ old: cOld.counts.snapshot(), new: cNew.counts.snapshot() });
  const diff = (s0) => ({ old: cOld.counts.since(s0.old), new: cNew.counts.since(s0.new) });
  const ins = (pk, rk, i) =>
    op2(c, `insert ${pk}/${rk}`, "POST", TABLE2, { body: makeEntity(pk, rk, i), headers: { Prefer: "return-no-content" } }, [201, 204]);
  try {
    await op2(c, "create table", "POST", "Tables", { body: { TableName: TABLE2 }, headers: { Prefer: "return-no-content" } }, [201, 204]);
    // Phase 0 data: a partition only ever read ("cold"), and one whose rows
    // are first touched in prefer_new ("oldonly").
    for (let i = 0; i < N; i++) {
      await ins("cold", `c${pad(i)}`, i);
      await ins("oldonly", `o${pad(i)}`, i);
    }
    // Nothing reaches the backends while no client calls.
    const s0 = snap();
    await sleep(1000);
    result.idle = diff(s0);

    for (let p = 0; p < PHASES.length; p++) {
      const phase = PHASES[p];
      if (p > 0) {
        const t0 = snap();
        if (phase === "use_new_with_tombstones") {
          // The copy must be done before phase 3.
          await runMigrator(proxy, "prefer_new");
        }
        await pushPhase(proxy, phase);
        result.transitions[phase] = diff(t0);
      }
      log(`  phase ${p} ${phase}`);
      result.phases[phase] = await countPhase(c, hostPort, p, N, snap, diff, ins);
    }
    checkAlive(servers);
  } finally {
    c.close();
  }
  result.log = extraLogLines(proxy);
  await stopAll(servers);
  await cOld.close();
  await cNew.close();
  return result;
}

// Every kind of operation, N times each, in phase p; returns
// op -> { old: Counts, new: Counts, n }.
async function countPhase(c, hostPort, p, N, snap, diff, ins) {
  const W = `w${p}`; // the warm partition of this phase
  const out = {};
  // Setup, not counted: the partition's first write (which switches it in
  // phases 2-3), then the rows the updates, deletes and reads act on.
  await ins(W, "seed", 0);
  const etags = {};
  for (const kind of ["rep", "mer", "ups", "del", "rd"])
    for (let i = 0; i < N; i++) {
      const r = await ins(W, `${kind}${pad(i)}`, i);
      etags[`${kind}${pad(i)}`] = r.headers.etag;
    }
  if (p === 2) await ins("oldonly", "seed", 0); // switches it; its other rows stay in old

  const counted = async (op, fn) => {
    const s0 = snap();
    for (let i = 0; i < N; i++) await fn(i);
    out[op] = { ...diff(s0), n: N };
  };
  const noContent = { Prefer: "return-no-content" };
  await counted("insert", (i) => ins(W, `new${pad(i)}`, i));
  await counted("replace", (i) => {
    const rk = `rep${pad(i)}`;
    if (!etags[rk]) throw new Error(`no ETag for ${W}/${rk}`);
    return op2(c, `replace ${W}/${rk}`, "PUT", entityPath(TABLE2, W, rk), { body: makeEntity(W, rk, i + 1000), headers: { "If-Match": etags[rk] } }, [204]);
  });
  await counted("merge", (i) => {
    const rk = `mer${pad(i)}`;
    return op2(c, `merge ${W}/${rk}`, "MERGE", entityPath(TABLE2, W, rk), { body: { Extra: `merged ${i}` }, headers: { "If-Match": "*" } }, [204]);
  });
  await counted("upsert", (i) => {
    const rk = `ups${pad(i)}`;
    return op2(c, `upsert ${W}/${rk}`, "PUT", entityPath(TABLE2, W, rk), { body: makeEntity(W, rk, i + 2000) }, [204]);
  });
  await counted("delete", (i) => {
    const rk = `del${pad(i)}`;
    return op2(c, `delete ${W}/${rk}`, "DELETE", entityPath(TABLE2, W, rk), { headers: { "If-Match": "*" } }, [204]);
  });
  await counted("read", async (i) => {
    const rk = `rd${pad(i)}`;
    const r = await op2(c, `read ${W}/${rk}`, "GET", entityPath(TABLE2, W, rk), {}, [200]);
    if (JSON.parse(r.body).RowKey !== rk) throw new Error(`read ${W}/${rk} returned ${r.body}`);
  });
  // seed + N inserted + 4N left (del rows are gone)
  const wantRows = 1 + 5 * N;
  await counted("query", async () => {
    const r = await op2(c, `query ${W}`, "GET", `${TABLE2}()`, { query: partitionQuery(W, 1000) }, [200]);
    const n = JSON.parse(r.body).value.length;
    if (n !== wantRows) throw new Error(`query of ${W} returned ${n} rows, wanted ${wantRows}`);
  });
  await counted("batch", async (i) => {
    const ops = [];
    for (let j = 0; j < 10; j++) {
      const rk = `bat${pad(i)}-${j}`;
      ops.push({ method: "POST", path: TABLE2, body: makeEntity(W, rk, j), headers: noContent });
    }
    const b = batchRequest(hostPort, ops);
    const r = await op2(c, `batch in ${W}`, "POST", "$batch", { body: b.body, headers: { "Content-Type": b.contentType } }, [202]);
    const st = batchStatuses(r.body);
    if (st.length !== 10 || st.some((s) => s >= 300)) throw new Error(`batch in ${W}: statuses ${st.join(",")}: ${r.body.slice(0, 600)}`);
  });
  await counted("fresh", (i) => ins(`f${p}x${pad(i, 3)}`, "first", i));
  await counted("coldread", (i) => op2(c, `read cold/c${pad(i)}`, "GET", entityPath(TABLE2, "cold", `c${pad(i)}`), {}, [200]));
  if (p === 2)
    await counted("oldrow", (i) => {
      const rk = `o${pad(i)}`;
      return op2(c, `upsert oldonly/${rk}`, "PUT", entityPath(TABLE2, "oldonly", rk), { body: makeEntity("oldonly", rk, i + 3000) }, [204]);
    });
  for (const op of Object.keys(out)) if (!COUNT_OPS.some(([k]) => k === op)) throw new Error(`unlisted op ${op}`);
  return out;
}

// POST /admin/v1/migrate {"until": until}, then polls the status until the
// copy is done. Returns the timeline: { t0, copyStart, copyEnd, end,
// status } in performance.now() milliseconds.
async function runMigrator(proxy, until, pollMs = 100) {
  const t0 = performance.now();
  const r = await admin(proxy.adminPort, "POST", "/admin/v1/migrate", { until });
  if (r.status !== 202) throw new Error(`migrate: HTTP ${r.status} ${r.text}`);
  let copyStart = null;
  let copyEnd = null;
  for (;;) {
    const s = await admin(proxy.adminPort, "GET", "/admin/v1/status");
    const now = performance.now();
    const m = s.json?.migration;
    if (!m) throw new Error(`status: HTTP ${s.status} ${s.text}`);
    if (m.state === "failed") throw new Error(`migration failed: ${s.text}`);
    if (copyStart === null && (m.state === "copying" || m.rows_copied > 0)) copyStart = now;
    if (m.copy_done && copyEnd === null) copyEnd = now;
    if (m.copy_done && m.state !== "copying" && m.state !== "pushing") return { t0, copyStart, copyEnd, end: now, status: s.json };
    checkAlive([proxy]);
    await sleep(pollMs);
  }
}

// ---------------------------------------------------------------------------
// 3. Copy rate: the proxy's migrator vs a plain @azure/data-tables loop.

const SRC3 = "copysrc";

function sdkTable(port, name) {
  return new SdkTableClient(`http://127.0.0.1:${port}/${DEV_ACCOUNT}`, name, new AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY), {
    allowInsecureConnection: true,
  });
}

const copyRow = (pk, i) => ({
  partitionKey: pk,
  rowKey: `r${pad(i)}`,
  Name: `row ${i} of ${pk}`,
  Count: i,
  Score: i + 0.5,
  Active: i % 2 === 0,
  Note: "the quick brown fox jumps over the lazy dog",
});

// The plain copy loop: list every entity of src, write them to dst in
// transactions of up to 100 rows of one partition, one at a time. Rows of
// the migration protocol (the partitions' meta rows, in old once the
// migrator has switched them) are not the application's and are skipped.
async function sdkCopy(src, dst) {
  let batch = [];
  let pk = null;
  let rows = 0;
  for await (const e of src.listEntities()) {
    if (e.rowKey.startsWith("_mtable_")) continue;
    if (batch.length === 100 || (pk !== null && e.partitionKey !== pk)) {
      await dst.submitTransaction(batch);
      batch = [];
    }
    pk = e.partitionKey;
    const { etag, timestamp, ...row } = e; // eslint-disable-line no-unused-vars
    batch.push(["create", row]);
    rows++;
  }
  if (batch.length) await dst.submitTransaction(batch);
  return rows;
}

async function countRows(t) {
  let n = 0;
  for await (const page of t.listEntities({ queryOptions: { select: ["RowKey"] } }).byPage({ maxPageSize: 1000 })) n += page.length;
  return n;
}

async function section3(opts, work, servers) {
  const total = opts.partitions * opts.rows;
  log(`3. copy rate: ${opts.partitions} partitions x ${opts.rows} rows`);
  const [oldAz, newAz] = await startAzuritePair(work, "s3");
  servers.push(oldAz, newAz);
  const src = sdkTable(oldAz.port, SRC3);
  await src.createTable();
  await sdkTable(newAz.port, SRC3).createTable();
  log(`  loading ${total} rows`);
  const jobs = [];
  for (let p = 0; p < opts.partitions; p++) {
    const pk = `p${pad(p, 4)}`;
    for (let i = 0; i < opts.rows; i += 100) {
      const rows = [];
      for (let j = i; j < Math.min(i + 100, opts.rows); j++) rows.push(["create", copyRow(pk, j)]);
      jobs.push(() => src.submitTransaction(rows));
    }
  }
  await pool(4, jobs);
  const loaded = await countRows(src);
  if (loaded !== total) throw new Error(`old table holds ${loaded} rows, wanted ${total}`);

  // Started after the load and before the copy targets of the plain loop
  // exist, so the proxy (which adopts the tables present at start-up) knows
  // this one table only.
  const proxy = await startProxy(opts.proxyBin, work, "proxy-s3", ["--old", azuriteArgs(oldAz), "--new", azuriteArgs(newAz)]);
  servers.push(proxy);

  const cpuOf = () => ({
    proxy: cpuSeconds(proxy.pid),
    old: cpuSeconds(oldAz.pid),
    new: cpuSeconds(newAz.pid),
    self: process.cpuUsage(),
  });
  const cpuSince = (c0) => {
    const c1 = cpuOf();
    const self = process.cpuUsage(c0.self);
    return {
      proxy: c1.proxy - c0.proxy,
      old: c1.old - c0.old,
      new: c1.new - c0.new,
      client: (self.user + self.system) / 1e6,
    };
  };
  const runs = [];
  const sdkRun = async (label, dstName) => {
    const dst = sdkTable(newAz.port, dstName);
    await dst.createTable();
    log(`  ${label}`);
    const c0 = cpuOf();
    const t0 = performance.now();
    const rows = await sdkCopy(src, dst);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSince(c0);
    const inNew = await countRows(dst);
    if (rows !== total || inNew !== total) throw new Error(`${label}: copied ${rows} rows, new table holds ${inNew}, wanted ${total}`);
    runs.push({ label, kind: "sdk", rows, seconds, cpu });
    log(`    ${rows} rows in ${seconds.toFixed(1)} s: ${(rows / seconds).toFixed(0)} rows/s`);
  };

  // A, B, A: the migrator between two runs of the plain loop, so a change
  // in the machine's load shows as a difference between the two A runs.
  await sdkRun("plain copy loop (1)", "copysdka");
  log("  migrator (POST /admin/v1/migrate {\"until\": \"prefer_new\"})");
  const c0 = cpuOf();
  const tl = await runMigrator(proxy, "prefer_new", 50);
  const cpu = cpuSince(c0);
  const copied = tl.status.migration.rows_copied;
  const inNew = await countRows(sdkTable(newAz.port, SRC3));
  if (copied !== total || inNew !== total) throw new Error(`migrator: rows_copied ${copied}, new table holds ${inNew}, wanted ${total}`);
  const copySeconds = tl.copyStart !== null && tl.copyEnd !== null ? (tl.copyEnd - tl.copyStart) / 1000 : NaN;
  runs.push({
    label: "proxy migrator",
    kind: "migrator",
    rows: copied,
    seconds: Number.isFinite(copySeconds) && copySeconds > 0 ? copySeconds : (tl.end - tl.t0) / 1000,
    wholeSeconds: (tl.end - tl.t0) / 1000,
    copyTimed: Number.isFinite(copySeconds) && copySeconds > 0,
    partitions: tl.status.migration.partitions_switched,
    cpu,
  });
  log(`    ${copied} rows; copy ${copySeconds.toFixed(1)} s, whole run ${((tl.end - tl.t0) / 1000).toFixed(1)} s`);
  await sdkRun("plain copy loop (2)", "copysdkb");
  checkAlive(servers);
  const result = { total, partitions: opts.partitions, rowsPerPartition: opts.rows, runs, log: extraLogLines(proxy) };
  await stopAll(servers);
  return result;
}

// ---------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = new Date();
  if (!existsSync(opts.proxyBin)) throw new Error(`no proxy binary at ${opts.proxyBin} (build it: ninja -C build)`);
  const work = mkdtempSync(join(tmpdir(), "mtable-bench-backend-"));
  const command = ["node", relative(process.cwd(), fileURLToPath(import.meta.url)) || "backend.mjs", ...process.argv.slice(2)].join(" ");
  // Every section runs one copy of the binary, taken now, so a rebuild
  // during the run cannot mix two builds in one report.
  const binBuilt = statSync(opts.proxyBin).mtime.toISOString();
  const buildDesc = describeProxyBuild(opts.proxyBin);
  const snapshot = join(work, "mtable-proxy");
  copyFileSync(opts.proxyBin, snapshot);
  chmodSync(snapshot, 0o755);
  opts.proxyBin = snapshot;
  const env = {
    date: started.toISOString(),
    command,
    ...machine(),
    node: process.version,
    azurite: azuriteVersion(),
    commit: gitCommit(repoRoot),
    tree: treeState(repoRoot),
    proxyBuild: `${buildDesc}, binary of ${binBuilt}`,
    opts,
  };
  log(`mtable backend bench: ${env.nproc} cpus (${env.cpu}), sections ${opts.sections.join(",")}`);
  const servers = [];
  let ok = false;
  try {
    const result = { env, s1: null, s2: null, s3: null };
    if (opts.sections.includes(1)) result.s1 = await section1(opts, work, servers);
    if (opts.sections.includes(2)) result.s2 = await section2(opts, work, servers);
    if (opts.sections.includes(3)) result.s3 = await section3(opts, work, servers);
    result.seconds = (Date.now() - started.getTime()) / 1000;
    const md = renderBackendReport(result);
    process.stdout.write(md);
    writeFileSync(opts.out, md);
    log(`written to ${relative(process.cwd(), opts.out)}`);
    ok = true;
  } finally {
    await stopAll(servers);
    if (ok) rmSync(work, { recursive: true, force: true });
    else log(`server logs kept in ${work}`);
  }
}

main().catch((e) => {
  process.stderr.write(`mtable backend bench: ${e instanceof UsageError ? e.message : e.stack || e}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});

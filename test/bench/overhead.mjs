#!/usr/bin/env node
// overhead.mjs -- what the proxy costs against what this machine can do,
// measured side by side in one run:
//
//   1. latency: a SAS point read of one entity with wrk at 1 and at 16
//      connections, against Azurite directly, through a plain TCP relay
//      (the reference hop: a few lines of node piping sockets), and through
//      mtable-proxy over that Azurite; in phase use_old_hide_metadata and,
//      after a migration, in use_new_hide_metadata (then against the new
//      account's Azurite). Reported: added p50 / p99 over direct, and the
//      16-connection throughput ratio;
//   2. embedded: mtable-proxy on its in-memory backend against nginx serving
//      the proxy's own answer as a static file, same client (wrk, 16
//      connections): a point read and a 100-row page;
//   3. copy: the migrator's copy (Azurite to Azurite) against the new
//      Azurite's own bulk-insert rate (transactions of 100 rows, many in
//      flight, straight from this process).
//
//   node test/bench/overhead.mjs [--quick] [--sections 1,2,3] [--seconds S]
//                                [--rounds N] [--profile DIR]
//                                [--proxy-bin PATH] [--baseline-bin PATH]
//                                [--out FILE]
//
// Needs wrk and nginx on the PATH (Debian: apt-get install wrk nginx-light),
// and perf for --profile (linux-perf). Prints progress on stderr and a
// markdown report on stdout. Exits non-zero only when it could not measure
// (a server would not start, a check failed, wrk saw a non-2xx answer); no
// timing is a failure.

import { execFileSync, spawn } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { AzureNamedKeyCredential, TableClient, generateTableSas } from "@azure/data-tables";
import { DEV_ACCOUNT, DEV_KEY, devConnectionString } from "./lib/client.mjs";
import { checkAlive, gitCommit, pool, pushPhase, treeState } from "./lib/driver.mjs";
import { admin, cpuSeconds, freePort, machine, sleep, startAzurite, startProxy, stopPid } from "./lib/procs.mjs";
import { foldPerfScript } from "./lib/fold.mjs";
import { parseWrk } from "./lib/wrk.mjs";

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, "../..");
const log = (s) => process.stderr.write(s + "\n");
const TABLE = "bench";

const USAGE = `usage: node test/bench/overhead.mjs [options]

  --quick            2 s per measurement, 1 round, a copy of 10,000 rows
  --sections LIST    which sections to run (default 1,2,3)
  --seconds S        seconds per wrk measurement (default 5)
  --rounds N         measurements per target, alternated (default 3)
  --copy-rows N      rows to copy in section 3 (default 40000; 100 per
                     partition)
  --profile DIR      record perf profiles of the proxy (16 connections) and
                     write perf reports and folded stacks into DIR
  --proxy-bin PATH   proxy binary (default build/proxy/mtable-proxy,
                     or $MTABLE_PROXY_BIN)
  --baseline-bin PATH  a second proxy binary (an older build) measured
                     alongside in sections 1 (phase 0) and 2
  --out FILE         also write the report there
`;

function parseArgs(argv) {
  const o = {
    quick: false,
    sections: [1, 2, 3],
    seconds: null,
    rounds: null,
    copyRows: null,
    profile: null,
    proxyBin: process.env.MTABLE_PROXY_BIN || join(repoRoot, "build/proxy/mtable-proxy"),
    baselineBin: null,
    out: null,
  };
  const num = (v, what) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${what}: want a positive number, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--quick") o.quick = true;
    else if (a === "--sections") o.sections = val().split(",").map((x) => Number(x.trim()));
    else if (a === "--seconds") o.seconds = num(val(), a);
    else if (a === "--rounds") o.rounds = Math.floor(num(val(), a));
    else if (a === "--copy-rows") o.copyRows = Math.floor(num(val(), a));
    else if (a === "--profile") o.profile = resolve(val());
    else if (a === "--proxy-bin") o.proxyBin = resolve(val());
    else if (a === "--baseline-bin") o.baselineBin = resolve(val());
    else if (a === "--out") o.out = resolve(val());
    else if (a === "--help" || a === "-h") {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${a} (see --help)`);
  }
  if (o.sections.some((x) => ![1, 2, 3].includes(x))) throw new Error("--sections takes a list of 1, 2, 3");
  o.seconds ??= o.quick ? 2 : 5;
  o.rounds ??= o.quick ? 1 : 3;
  o.copyRows ??= o.quick ? 10000 : 40000;
  return o;
}

// ---------------------------------------------------------------------------
// Helpers: the SDK for setup, wrk for load, medians.

const credential = new AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY);
const sdkTable = (port, table = TABLE) =>
  TableClient.fromConnectionString(devConnectionString(port), table, { allowInsecureConnection: true });
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

// A row of about 170 bytes of JSON without metadata.
const pointRow = () => ({
  partitionKey: "read",
  rowKey: "r0",
  Name: "point read",
  Count: 42,
  Price: 3.25,
  Flag: true,
  Note: "x".repeat(40),
});
const pageRow = (i) => ({ partitionKey: "page", rowKey: `p${String(i).padStart(4, "0")}`, Name: `row ${i}`, Count: i, Note: "y".repeat(60) });

async function loadRows(port) {
  const t = sdkTable(port);
  await t.createTable();
  await t.upsertEntity(pointRow(), "Replace");
  const ops = [];
  for (let i = 0; i < 100; i++) ops.push(["upsert", pageRow(i), "Replace"]);
  await t.submitTransaction(ops);
}

const sas = generateTableSas(TABLE, credential, {
  permissions: { query: true },
  expiresOn: new Date(Date.now() + 6 * 3600 * 1000),
});
const POINT = `/${DEV_ACCOUNT}/${TABLE}(PartitionKey='read',RowKey='r0')?${sas}`;
const PAGE = `/${DEV_ACCOUNT}/${TABLE}()?$filter=PartitionKey%20eq%20'page'&${sas}`;
const HEADERS = ["-H", "Accept: application/json;odata=nometadata", "-H", "x-ms-version: 2019-02-02"];

function get(port, path) {
  return new Promise((ok, fail) => {
    const req = http.get(
      { host: "127.0.0.1", port, path, agent: false, headers: { Accept: "application/json;odata=nometadata", "x-ms-version": "2019-02-02" } },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => ok({ status: res.statusCode, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", fail);
  });
}

function wrk(port, path, conns, seconds) {
  const threads = conns === 1 ? 1 : 2;
  return new Promise((ok, fail) => {
    const args = [`-t${threads}`, `-c${conns}`, `-d${seconds}s`, "--latency", ...HEADERS, `http://127.0.0.1:${port}${path}`];
    const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", fail);
    child.on("exit", (code) => {
      if (code !== 0) return fail(new Error(`wrk exited ${code}: ${out}`));
      const r = parseWrk(out);
      if (r.non2xx || !Number.isFinite(r.rps)) return fail(new Error(`wrk on port ${port}: ${out}`));
      ok(r);
    });
  });
}

// wrk against target t, with the CPU time the server process spent per
// request (µs; its threads included, the kernel's work for its sockets
// too) when t is a single process that does all its work itself (the
// proxy, Azurite; not nginx, whose workers are other processes).
async function wrkCpu(t, path, conns, seconds) {
  const own = t.name !== "nginx" && t.name !== "relay";
  const c0 = own ? cpuSeconds(t.pid) : NaN;
  const m = await wrk(t.port, path, conns, seconds);
  m.cpuUs = own ? ((cpuSeconds(t.pid) - c0) * 1e6) / (m.rps * seconds) : NaN;
  return m;
}

// perf record of pid while fn runs; writes DIR/name.txt (perf report) and
// DIR/name.folded (one line per stack, for flame graph tools). perf -p
// follows the threads that exist when it attaches, and the proxy starts a
// thread per connection, so it attaches once wrk has connected and stops a
// little before wrk does.
async function profiled(opts, pid, name, fn) {
  if (!opts.profile) return fn();
  mkdirSync(opts.profile, { recursive: true });
  const data = join(opts.workDir, `${name}.perf.data`);
  const running = fn();
  await sleep(400);
  const secs = Math.max(0.5, opts.seconds - 0.8).toFixed(1);
  const rec = spawn("perf", ["record", "-F", "999", "--call-graph", "dwarf,16384", "-p", String(pid), "-o", data, "--", "sleep", secs], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  await new Promise((ok) => rec.once("exit", ok));
  const r = await running;
  const report = execFileSync("perf", ["report", "-i", data, "--stdio", "--no-children", "--percent-limit", "1.5", "-g", "caller,0.5,callee,function,percent"], {
    encoding: "utf8",
    maxBuffer: 1 << 28,
    stdio: ["ignore", "pipe", "ignore"],
  });
  writeFileSync(join(opts.profile, `${name}.txt`), report);
  const script = execFileSync("perf", ["script", "-i", data], { encoding: "utf8", maxBuffer: 1 << 30, stdio: ["ignore", "pipe", "ignore"] });
  writeFileSync(join(opts.profile, `${name}.folded`), foldPerfScript(script));
  rmSync(data, { force: true });
  log(`    profile ${name} written`);
  return r;
}

// A plain TCP relay in its own node process: the reference hop.
const RELAY_JS = `
const net = require("net");
const [port, target] = process.argv.slice(1).map(Number);
net.createServer((c) => {
  c.setNoDelay(true);
  const b = net.connect(target, "127.0.0.1");
  b.setNoDelay(true);
  c.pipe(b).pipe(c);
  c.on("error", () => b.destroy());
  b.on("error", () => c.destroy());
}).listen(port, "127.0.0.1", () => console.log("up"));
`;

const children = new Set();
async function startRelay(targetPort, name) {
  const port = await freePort();
  const child = spawn(process.execPath, ["-e", RELAY_JS, String(port), String(targetPort)], { stdio: ["ignore", "pipe", "inherit"] });
  children.add(child);
  await new Promise((ok, fail) => {
    child.stdout.once("data", ok);
    child.once("exit", (c) => fail(new Error(`relay exited ${c}`)));
  });
  return { name, pid: child.pid, port, child };
}

function nginxConf(dir, port) {
  return `worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  default_type application/json;
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp;
  fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp;
  scgi_temp_path ${dir}/tmp;
  server {
    listen 127.0.0.1:${port};
    root ${dir}/www;
    location / { try_files $uri =404; }
  }
}
`;
}

async function startNginx(dir, files) {
  // nginx's workers run as nobody when started by root: the tree must be
  // readable to them.
  chmodSync(dirname(dir), 0o755);
  mkdirSync(join(dir, "www"), { recursive: true });
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, "tmp"), { recursive: true });
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, "www", name), body);
  const port = await freePort();
  writeFileSync(join(dir, "nginx.conf"), nginxConf(dir, port));
  const child = spawn("nginx", ["-c", join(dir, "nginx.conf"), "-p", dir], { stdio: ["ignore", "inherit", "inherit"] });
  children.add(child);
  for (let i = 0; i < 100; i++) {
    try {
      const r = await get(port, "/" + Object.keys(files)[0]);
      if (r.status === 200) return { name: "nginx", pid: child.pid, port, child };
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  await stopChild({ child });
  throw new Error(`nginx did not start; see ${dir}/nginx-error.log`);
}

async function stopChild(t) {
  if (!t?.child || t.child.exitCode !== null) return;
  const gone = new Promise((ok) => t.child.once("exit", ok));
  t.child.kill("SIGTERM");
  await Promise.race([gone, sleep(3000)]);
  if (t.child.exitCode === null) t.child.kill("SIGKILL");
  children.delete(t.child);
}
// SIGTERM, not SIGKILL: nginx's master stops its workers on SIGTERM only.
process.on("exit", () => {
  for (const c of children) c.exitCode === null && c.kill("SIGTERM");
});

// rounds x targets, alternated; returns name -> [wrk result per round].
async function alternate(opts, targets, path, conns, label, profileName) {
  const res = Object.fromEntries(targets.map((t) => [t.name, []]));
  for (const t of targets) await wrk(t.port, path, conns, 1); // warm-up
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of targets) {
      const run = () => wrkCpu(t, path, conns, opts.seconds);
      const m =
        profileName && t.proxy && r === opts.rounds - 1 ? await profiled(opts, t.pid, profileName, run) : await run();
      res[t.name].push(m);
      log(`    ${label} c${conns} ${t.name}: p50 ${m.p50.toFixed(0)} µs, p99 ${m.p99.toFixed(0)} µs, ${m.rps.toFixed(0)}/s`);
    }
  }
  return res;
}

const summary = (runs) => ({
  cpuUs: median(runs.map((m) => m.cpuUs)),
  p50: median(runs.map((m) => m.p50)),
  p99: median(runs.map((m) => m.p99)),
  rps: median(runs.map((m) => m.rps)),
  rounds: runs.map((m) => m.rps),
});

// ---------------------------------------------------------------------------
// 1. Latency over a direct backend.

// The whole migration, run by the proxy's migrator: copy, verify, cleanup,
// and the pushes up to use_new_hide_metadata.
async function migrateToNew(proxy) {
  const r = await admin(proxy.adminPort, "POST", "/admin/v1/migrate", { until: "use_new_hide_metadata" });
  if (r.status !== 202) throw new Error(`migrate: HTTP ${r.status} ${r.text}`);
  for (;;) {
    const s = await admin(proxy.adminPort, "GET", "/admin/v1/status");
    const m = s.json?.migration;
    if (!m) throw new Error(`status: HTTP ${s.status} ${s.text}`);
    if (m.state === "failed" || m.state === "paused") throw new Error(`migration ${m.state}: ${s.text}`);
    if (m.state === "done" && s.json.phase === "use_new_hide_metadata") return;
    checkAlive([proxy]);
    await sleep(50);
  }
}

async function sectionLatency(opts) {
  log("1. latency over Azurite");
  const oldAz = await startAzurite(opts.workDir, "azurite-old");
  const newAz = await startAzurite(opts.workDir, "azurite-new");
  const relays = [];
  let proxy = null;
  let baseline = null;
  try {
    await loadRows(oldAz.port);
    await sdkTable(newAz.port).createTable();
    const backends = ["--old", devConnectionString(oldAz.port), "--new", devConnectionString(newAz.port), "--log-level", "warn"];
    proxy = await startProxy(opts.proxyBin, opts.workDir, "proxy-azure", backends);
    Object.assign(proxy, { name: "proxy", proxy: true });
    if (opts.baselineBin) {
      baseline = await startProxy(opts.baselineBin, opts.workDir, "baseline-azure", backends);
      baseline.name = "baseline";
    }
    const out = {};
    for (const [phase, backend] of [
      ["use_old_hide_metadata", oldAz],
      ["use_new_hide_metadata", newAz],
    ]) {
      if (phase === "use_new_hide_metadata") {
        // The baseline stays in phase 0: only one proxy may migrate.
        if (baseline) await stopPid(baseline.pid);
        baseline = null;
        await migrateToNew(proxy);
      }
      const relay = await startRelay(backend.port, "relay");
      relays.push(relay);
      const direct = { ...backend, name: "direct" };
      const targets = [direct, relay, proxy, ...(baseline ? [baseline] : [])];
      const want = await get(direct.port, POINT);
      for (const t of targets) {
        const r = await get(t.port, POINT);
        if (r.status !== 200 || JSON.parse(r.body).Count !== 42)
          throw new Error(`${phase}: point read from ${t.name}: ${r.status} ${r.body}`);
      }
      if (want.status !== 200) throw new Error(`direct point read: ${want.status}`);
      log(`  ${phase}`);
      const p = phase === "use_old_hide_metadata" ? 0 : 4;
      out[phase] = {};
      for (const conns of [1, 16]) {
        const res = await alternate(opts, targets, POINT, conns, `phase ${p}`, `azure-phase${p}-c${conns}`);
        out[phase][conns] = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, summary(v)]));
      }
      checkAlive([oldAz, newAz, proxy]);
    }
    return out;
  } finally {
    for (const r of relays) await stopChild(r);
    if (proxy) await stopPid(proxy.pid);
    if (baseline) await stopPid(baseline.pid);
    await stopPid(oldAz.pid);
    await stopPid(newAz.pid);
  }
}

// ---------------------------------------------------------------------------
// 2. Embedded backend against nginx serving the same bodies.

async function sectionEmbedded(opts) {
  log("2. embedded vs nginx static");
  const proxy = await startProxy(opts.proxyBin, opts.workDir, "proxy-embedded", ["--log-level", "warn"]);
  Object.assign(proxy, { name: "proxy", proxy: true });
  let nginx = null;
  let baseline = null;
  try {
    await loadRows(proxy.port);
    if (opts.baselineBin) {
      baseline = await startProxy(opts.baselineBin, opts.workDir, "baseline-embedded", ["--log-level", "warn"]);
      baseline.name = "baseline";
      await loadRows(baseline.port);
    }
    const point = await get(proxy.port, POINT);
    const page = await get(proxy.port, PAGE);
    if (point.status !== 200 || page.status !== 200 || JSON.parse(page.body).value.length !== 100)
      throw new Error(`embedded: point ${point.status}, page ${page.status}`);
    nginx = await startNginx(join(opts.workDir, "nginx"), { point: point.body, page: page.body });
    const out = { bytes: { point: point.body.length, page: page.body.length } };
    for (const [what, path] of [
      ["point", POINT],
      ["page", PAGE],
    ]) {
      const targets = [{ ...nginx, path: `/${what}` }, { ...proxy, path }, ...(baseline ? [{ ...baseline, path }] : [])];
      const res = Object.fromEntries(targets.map((t) => [t.name, []]));
      for (const t of targets) await wrk(t.port, t.path, 16, 1); // warm-up
      for (let r = 0; r < opts.rounds; r++) {
        for (const t of targets) {
          const run = () => wrkCpu(t, t.path, 16, opts.seconds);
          const m = t.proxy && r === opts.rounds - 1 ? await profiled(opts, t.pid, `embedded-${what}-c16`, run) : await run();
          res[t.name].push(m);
          log(`    ${what} ${t.name}: ${m.rps.toFixed(0)}/s, p50 ${m.p50.toFixed(0)} µs`);
        }
      }
      out[what] = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, summary(v)]));
    }
    checkAlive([proxy]);
    return out;
  } finally {
    await stopChild(nginx);
    await stopPid(proxy.pid);
    if (baseline) await stopPid(baseline.pid);
  }
}

// ---------------------------------------------------------------------------
// 3. Copy against the backend's own bulk insert.

const copyRow = (p, i) => ({
  partitionKey: `p${String(p).padStart(5, "0")}`,
  rowKey: `r${String(i).padStart(3, "0")}`,
  Name: `row ${i}`,
  Count: i,
  Note: "z".repeat(60),
});

function batches(nrows) {
  const out = [];
  for (let p = 0; p * 100 < nrows; p++) {
    const ops = [];
    for (let i = 0; i < 100 && p * 100 + i < nrows; i++) ops.push(["create", copyRow(p, i)]);
    out.push(ops);
  }
  return out;
}

async function bulkInsert(opts, inflight) {
  const az = await startAzurite(opts.workDir, `azurite-bulk-${inflight}`);
  try {
    const t = sdkTable(az.port);
    await t.createTable();
    const all = batches(opts.copyRows);
    const t0 = performance.now();
    await pool(inflight, all.map((ops) => () => t.submitTransaction(ops)));
    const s = (performance.now() - t0) / 1000;
    return { rows: opts.copyRows, seconds: s, rate: opts.copyRows / s };
  } finally {
    await stopPid(az.pid);
  }
}

async function migratorCopy(opts, oldAz, parallel) {
  const newAz = await startAzurite(opts.workDir, `azurite-copy-${parallel}`);
  let proxy = null;
  try {
    await sdkTable(newAz.port).createTable();
    proxy = await startProxy(opts.proxyBin, opts.workDir, `proxy-copy-${parallel}`, [
      "--old", devConnectionString(oldAz.port),
      "--new", devConnectionString(newAz.port),
      "--copy-parallel", String(parallel),
      "--log-level", "warn",
    ]);
    await pushPhase(proxy, "prefer_old");
    const r = await admin(proxy.adminPort, "POST", "/admin/v1/migrate", { until: "prefer_new" });
    if (r.status !== 202) throw new Error(`migrate: HTTP ${r.status} ${r.text}`);
    let start = null;
    for (;;) {
      const s = await admin(proxy.adminPort, "GET", "/admin/v1/status");
      const now = performance.now();
      const m = s.json?.migration;
      if (!m || m.state === "failed") throw new Error(`migration: ${s.text}`);
      if (start === null && m.state === "copying") start = now;
      if (m.copy_done && m.state !== "copying" && m.state !== "pushing") {
        if (m.rows_copied !== opts.copyRows) throw new Error(`copied ${m.rows_copied}, want ${opts.copyRows}`);
        const seconds = (now - (start ?? now)) / 1000;
        return { rows: m.rows_copied, seconds, rate: m.rows_copied / seconds };
      }
      await sleep(50);
    }
  } finally {
    if (proxy) await stopPid(proxy.pid);
    await stopPid(newAz.pid);
    const t = sdkTable(oldAz.port);
    const filter = "RowKey ge '_mtable_' and RowKey lt '_mtable`'";
    const jobs = [];
    for await (const e of t.listEntities({ queryOptions: { filter, select: ["PartitionKey", "RowKey"] } }))
      jobs.push(() => t.deleteEntity(e.partitionKey, e.rowKey));
    await pool(8, jobs);
  }
}

async function sectionCopy(opts) {
  log(`3. copy of ${opts.copyRows} rows vs bulk insert`);
  const oldAz = await startAzurite(opts.workDir, "azurite-copy-old");
  try {
    const t = sdkTable(oldAz.port);
    await t.createTable();
    await pool(8, batches(opts.copyRows).map((ops) => () => t.submitTransaction(ops)));
    const runs = [];
    const order = [["bulk", 16], ["migrator", 16], ["bulk", 16]];
    for (const [kind, n] of order) {
      const r = kind === "bulk" ? await bulkInsert(opts, n) : await migratorCopy(opts, oldAz, n);
      log(`    ${kind} (${n}): ${r.rate.toFixed(0)} rows/s`);
      runs.push({ kind, n, ...r });
    }
    return runs;
  } finally {
    await stopPid(oldAz.pid);
  }
}

// ---------------------------------------------------------------------------
// The report.

const us = (x) => (Number.isFinite(x) ? `${x.toFixed(0)} µs` : "-");
// CPU per request to a tenth: the embedded point read's is about 10 µs.
const cpu = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} µs` : "-");
const r2 = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "-");
const n0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : "-");

function report(opts, env, res) {
  const L = [];
  L.push(`# Overhead against the machine's own limits`, "");
  L.push(`${env.date}, ${env.machine}, proxy ${env.commit} (${env.tree}); ${opts.rounds} round(s) × ${opts.seconds} s per target, alternated.`, "");
  L.push("Command: `node test/bench/overhead.mjs " + process.argv.slice(2).join(" ") + "`", "");
  if (res.latency) {
    L.push("## 1. SAS point read over Azurite (wrk)", "");
    L.push("| phase | conns | direct p50 / p99 | relay p50 / p99 | proxy p50 / p99 | relay adds p50 | proxy adds p50 / p99 | goal p50 | proxy / direct req/s (by round) | CPU per request: proxy / its Azurite direct |");
    L.push("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (const [phase, byConns] of Object.entries(res.latency)) {
      for (const [conns, t] of Object.entries(byConns)) {
        const d = t.direct, rl = t.relay, p = t.proxy;
        const addRelay = rl.p50 - d.p50, add = p.p50 - d.p50, add99 = p.p99 - d.p99;
        const goal = Math.max(100, 1.5 * addRelay);
        const byRound = p.rounds.map((x, i) => (x / d.rounds[i]).toFixed(2)).join(", ");
        L.push(
          `| ${phase} | ${conns} | ${us(d.p50)} / ${us(d.p99)} | ${us(rl.p50)} / ${us(rl.p99)} | ${us(p.p50)} / ${us(p.p99)} | ${us(addRelay)} | ${us(add)} / ${us(add99)} | ${conns === "1" ? (add <= goal ? "met" : "not met") + ` (≤ ${us(goal)})` : ""} | ${r2(p.rps / d.rps)} (${byRound})${conns === "16" ? (p.rps / d.rps >= 0.95 ? " met" : " not met") : ""} | ${cpu(p.cpuUs)} / ${cpu(d.cpuUs)} |`,
        );
      }
    }
    L.push("");
    const base = Object.entries(res.latency).flatMap(([phase, byConns]) =>
      Object.entries(byConns).filter(([, t]) => t.baseline).map(([conns, t]) => [phase, conns, t]),
    );
    if (base.length) {
      L.push("The baseline build (`--baseline-bin`), measured in the same rounds:", "");
      L.push("| phase | conns | baseline p50 / p99 | baseline adds p50 / p99 | this build adds p50 / p99 | baseline / direct req/s | this build / baseline req/s | proxy CPU per request: this build / baseline |");
      L.push("|---|--:|--:|--:|--:|--:|--:|--:|");
      for (const [phase, conns, t] of base)
        L.push(
          `| ${phase} | ${conns} | ${us(t.baseline.p50)} / ${us(t.baseline.p99)} | ${us(t.baseline.p50 - t.direct.p50)} / ${us(t.baseline.p99 - t.direct.p99)} | ${us(t.proxy.p50 - t.direct.p50)} / ${us(t.proxy.p99 - t.direct.p99)} | ${r2(t.baseline.rps / t.direct.rps)} | ${r2(t.proxy.rps / t.baseline.rps)} | ${cpu(t.proxy.cpuUs)} / ${cpu(t.baseline.cpuUs)} |`,
        );
      L.push("");
    }
  }
  if (res.embedded) {
    L.push("## 2. Embedded backend vs nginx static, 16 connections (wrk)", "");
    L.push("| request | body bytes | nginx req/s | proxy req/s | proxy / nginx (goal 0.8×) | nginx p50 | proxy p50 | proxy CPU per request |");
    L.push("|---|--:|--:|--:|--:|--:|--:|--:|");
    for (const what of ["point", "page"]) {
      const x = res.embedded[what];
      const ng = x.nginx, p = x.proxy;
      L.push(`| ${what === "point" ? "point read" : "100-row page"} | ${res.embedded.bytes[what]} | ${n0(ng.rps)} | ${n0(p.rps)} | ${r2(p.rps / ng.rps)} ${p.rps / ng.rps >= 0.8 ? "met" : "not met"} | ${us(ng.p50)} | ${us(p.p50)} | ${cpu(p.cpuUs)} |`);
    }
    if (res.embedded.point.baseline) {
      L.push("", "| request | baseline req/s | baseline / nginx | this build / baseline | CPU per request: this build / baseline |", "|---|--:|--:|--:|--:|");
      for (const what of ["point", "page"]) {
        const x = res.embedded[what];
        L.push(`| ${what === "point" ? "point read" : "100-row page"} | ${n0(x.baseline.rps)} | ${r2(x.baseline.rps / x.nginx.rps)} | ${r2(x.proxy.rps / x.baseline.rps)} | ${cpu(x.proxy.cpuUs)} / ${cpu(x.baseline.cpuUs)} |`);
      }
    }
    L.push("");
  }
  if (res.copy) {
    const bulk = res.copy.filter((r) => r.kind === "bulk");
    const base = bulk.reduce((s, r) => s + r.rate, 0) / bulk.length;
    L.push(`## 3. Copy of ${opts.copyRows} rows vs bulk insert into a fresh Azurite`, "");
    L.push("| run | rows/s | vs bulk insert (mean of both) |", "|---|--:|--:|");
    for (const r of res.copy)
      L.push(`| ${r.kind === "bulk" ? `bulk insert, ${r.n} transactions of 100 in flight` : `migrator, --copy-parallel ${r.n}`} | ${n0(r.rate)} | ${r2(r.rate / base)}${r.kind === "migrator" ? (r.rate / base >= 0.8 ? " met" : " not met") : ""} |`);
    L.push("");
  }
  return L.join("\n");
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  for (const tool of ["wrk", ...(opts.sections.includes(2) ? ["nginx"] : []), ...(opts.profile ? ["perf"] : [])]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      throw new Error(`${tool} is not installed (Debian: apt-get install wrk nginx-light linux-perf)`);
    }
  }
  opts.workDir = mkdtempSync(join(tmpdir(), "mtable-overhead-"));
  // A private copy, so a rebuild during the run cannot mix two builds.
  const bin = join(opts.workDir, "mtable-proxy");
  copyFileSync(opts.proxyBin, bin);
  chmodSync(bin, 0o755);
  opts.proxyBin = bin;
  const env = { date: new Date().toISOString().slice(0, 16) + " UTC", machine: ((m) => `${m.nproc} cores, ${m.cpu}`)(machine()), commit: gitCommit(repoRoot), tree: treeState(repoRoot) };
  const res = {};
  if (opts.sections.includes(1)) res.latency = await sectionLatency(opts);
  if (opts.sections.includes(2)) res.embedded = await sectionEmbedded(opts);
  if (opts.sections.includes(3)) res.copy = await sectionCopy(opts);
  const text = report(opts, env, res);
  process.stdout.write(text + "\n");
  if (opts.out) writeFileSync(opts.out, text + "\n");
  rmSync(opts.workDir, { recursive: true, force: true });
}

main().catch((e) => {
  process.stderr.write(`overhead.mjs: ${e.stack || e}\n`);
  process.exit(1);
});

#!/usr/bin/env node
// run.mjs -- a live migration, start to finish, on this machine.
//
//   node test/e2e/demo/run.mjs [--rows N] [--copy-rate N] [--keep] [--help]
//
// Starts two Azurite table services (the "old" and the "new" storage
// account), one mtable authority (the process that owns the phase, the
// migrator and the state file) and two sidecar proxies that follow it, seeds
// a table through a sidecar, runs a small checked workload on every sidecar,
// and runs `mtablectl migrate` in the foreground so its progress bar is
// visible. Then it stops the workload, counts the rows in each Azurite
// directly, runs `mtablectl verify` and prints a summary. Exit status 0 when
// every check passed, 1 otherwise, 2 for a usage error, 130 on Ctrl-C.
//
// Every process is started through test/e2e/lib/guard.mjs and stopped by PID
// when this script ends, however it ends. See README.md next to this file.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import {
  DEV_ACCOUNT, DEV_KEY, PHASES, freePort, proxyBin, proxyStatus, repoRoot, sleep, startAzurite,
  startMtable, stopAll, target,
} from "../lib/harness.mjs";
import { errorCode, serviceClient, tableClient } from "../lib/clients.mjs";

// ---------------------------------------------------------------------------
// Options.

const USAGE = `usage: node test/e2e/demo/run.mjs [--rows N] [--copy-rate N] [--keep] [--help]

Starts two Azurite accounts (old and new), an mtable authority and two
sidecar proxies on free loopback ports, seeds a table through a sidecar,
runs a checked read/write workload on both sidecars, and migrates the table
from the old account to the new one with 'mtablectl migrate' while the
workload keeps going. Prints a summary and exits 0 when nothing was lost or
read wrong, 1 otherwise.

options:
  --rows N        rows to seed before the migration (default 5000)
  --copy-rate N   the migrator copies at most N rows a second (default 1000,
                  0 = unlimited), so that the copy is visible for a few seconds
  --keep          after the summary, leave everything running until Ctrl-C and
                  print the endpoints and a connection string for your own SDK
  --help, -h      this text

environment:
  MTABLE_PROXY_BIN   proxy binary (default build/proxy/mtable-proxy)
  MTABLE_CTL_BIN     mtablectl binary (default build/tools/mtablectl/mtablectl)
`;

function usageError(msg) {
  process.stderr.write(`run.mjs: ${msg}\n\n${USAGE}`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { rows: 5000, copyRate: 1000, keep: false };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let val = null;
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 0) {
      val = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const num = (name, min) => {
      const s = val ?? argv[++i];
      if (s === undefined) usageError(`${name} needs a number`);
      if (!/^\d+$/.test(s) || Number(s) < min) usageError(`${name}: expected an integer >= ${min}, got '${s}'`);
      return Number(s);
    };
    switch (a) {
      case "--rows": o.rows = num("--rows", 1); break;
      case "--copy-rate": o.copyRate = num("--copy-rate", 0); break;
      case "--keep": o.keep = true; break;
      case "--help": case "-h": process.stdout.write(USAGE); process.exit(0); break;
      default: usageError(`unknown argument '${argv[i]}'`);
    }
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const ctlBin = process.env.MTABLE_CTL_BIN || join(repoRoot, "build/tools/mtablectl/mtablectl");
for (const [what, bin] of [["mtable-proxy", proxyBin], ["mtablectl", ctlBin]]) {
  if (!existsSync(bin)) {
    process.stderr.write(`run.mjs: ${what} not found at ${bin}; build it first: (cd build && ninja)\n`);
    process.exit(2);
  }
}

// ---------------------------------------------------------------------------
// Output.

const tty = process.stdout.isTTY;
const paint = (code) => (s) => (tty ? `\x1b[${code}m${s}\x1b[0m` : String(s));
const bold = paint("1");
const dim = paint("2");
const green = paint("32");
const red = paint("31");
const say = (s = "") => process.stdout.write(`${s}\n`);
const step = (s) => say(`${bold("==>")} ${s}`);
const rel = (p) => relative(process.cwd(), p) || p;
const connStr = (endpoint) =>
  `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};TableEndpoint=${endpoint};`;

// ---------------------------------------------------------------------------
// Shutdown: every process by PID, on success, failure, Ctrl-C or SIGTERM.

let stateDir = null;
let ctlChild = null;
let stopping = false;

async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  if (ctlChild && ctlChild.exitCode === null && ctlChild.signalCode === null) {
    try {
      process.kill(ctlChild.pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  await stopAll();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  process.exit(code);
}

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    if (stopping) {
      process.exit(130); // a second Ctrl-C: go now (the guards still stop their children)
    }
    say(`\n${sig === "SIGINT" ? "interrupted" : "terminated"}: stopping every process (a few seconds)...`);
    shutdown(130);
  });
}

// ---------------------------------------------------------------------------
// Data: seeded rows are never written again, so any read of one must give
// back exactly what was seeded.

const TABLE = "DemoOrders";
const PARTITIONS = Array.from({ length: 16 }, (_, i) => `shop${String(i).padStart(2, "0")}`);
const seedKey = (i) => ({ partitionKey: PARTITIONS[i % PARTITIONS.length], rowKey: `order${String(i).padStart(7, "0")}` });
const seedEntity = (i) => ({ ...seedKey(i), n: i, item: `item-${i % 97}`, qty: (i * 7) % 13 });
const seedIndex = (rk) => (/^order\d{7}$/.test(rk) ? Number(rk.slice(5)) : -1);

async function seedTable(t, rows) {
  const client = tableClient(t, TABLE);
  const byPk = new Map(PARTITIONS.map((pk) => [pk, []]));
  for (let i = 0; i < rows; i++) byPk.get(seedKey(i).partitionKey).push(seedEntity(i));
  const batches = [];
  for (const list of byPk.values()) {
    for (let j = 0; j < list.length; j += 100) batches.push(list.slice(j, j + 100));
  }
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      const b = batches[next++];
      await client.submitTransaction(b.map((e) => ["create", e]));
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

// ---------------------------------------------------------------------------
// The workload. Each worker owns its own rows (row keys "<app>-w<n>-k<k>")
// in the same partitions as the seeded rows, keeps a model of what they
// hold, and checks every read against it: a point read of its own row, a
// point read of a seeded row, and a query of its own rows in one partition.
// A write that fails makes that row unknown until the next successful write
// (its outcome may be either); reads of unknown rows are not judged.

const UNKNOWN = Symbol("unknown");

class Worker {
  constructor(app, n, t, stats) {
    this.app = app;
    this.prefix = `${app}-w${n}-`;
    this.client = tableClient(t, TABLE);
    this.stats = stats;
    this.model = new Map(); // "pk/rk" -> value | null (absent) | UNKNOWN
    this.keys = Array.from({ length: 24 }, (_, k) => ({
      partitionKey: PARTITIONS[(k * 5 + n * 3) % PARTITIONS.length],
      rowKey: `${this.prefix}k${String(k).padStart(2, "0")}`,
    }));
    this.counter = 0;
  }

  id(k) {
    return `${k.partitionKey}/${k.rowKey}`;
  }

  mismatch(what) {
    this.stats.mismatches++;
    if (this.stats.mismatchLog.length < 10) {
      this.stats.mismatchLog.push(`${this.app} [${currentPhase}] ${what}`);
    }
  }

  failed(op, e) {
    this.stats.errors++;
    const msg = `${op}: ${e.statusCode ?? "-"} ${errorCode(e) ?? ""} ${String(e.message).split("\n")[0].slice(0, 120)}`;
    if (this.stats.errorLog.length < 10) this.stats.errorLog.push(`${this.app} [${currentPhase}] ${msg}`);
  }

  ok(op) {
    this.stats.ops[op]++;
    this.stats.byPhase[currentPhase] = (this.stats.byPhase[currentPhase] ?? 0) + 1;
  }

  pick(list) {
    return list[Math.floor(Math.random() * list.length)];
  }

  async upsert() {
    const k = this.pick(this.keys);
    const v = `${this.prefix}${++this.counter}`;
    try {
      await this.client.upsertEntity({ ...k, v, app: this.app }, "Replace");
      this.model.set(this.id(k), v);
      this.ok("upsert");
    } catch (e) {
      this.model.set(this.id(k), UNKNOWN);
      this.failed("upsert", e);
    }
  }

  async remove() {
    const present = this.keys.filter((k) => typeof this.model.get(this.id(k)) === "string");
    if (present.length === 0) return this.upsert();
    const k = this.pick(present);
    try {
      await this.client.deleteEntity(k.partitionKey, k.rowKey);
      this.model.set(this.id(k), null);
      this.ok("delete");
    } catch (e) {
      if (e.statusCode === 404) {
        this.model.set(this.id(k), null);
        this.ok("delete");
        this.mismatch(`delete ${this.id(k)}: 404, but the row was written and not deleted`);
      } else {
        this.model.set(this.id(k), UNKNOWN);
        this.failed("delete", e);
      }
    }
  }

  async readOwn() {
    const k = this.pick(this.keys);
    const want = this.model.get(this.id(k)) ?? null;
    let got;
    try {
      got = (await this.client.getEntity(k.partitionKey, k.rowKey)).v;
    } catch (e) {
      if (e.statusCode !== 404) return this.failed("read", e);
      got = null;
    }
    this.ok("read");
    if (want !== UNKNOWN && got !== want) {
      this.mismatch(`read ${this.id(k)}: got ${JSON.stringify(got)}, last write was ${JSON.stringify(want)}`);
    }
  }

  async readSeeded() {
    if (seededRows === 0) return this.readOwn();
    const i = Math.floor(Math.random() * seededRows);
    const k = seedKey(i);
    try {
      const e = await this.client.getEntity(k.partitionKey, k.rowKey);
      this.ok("read");
      if (e.n !== i || e.item !== seedEntity(i).item) {
        this.mismatch(`read seeded ${this.id(k)}: got n=${e.n} item=${e.item}`);
      }
    } catch (e) {
      if (e.statusCode === 404) {
        this.ok("read");
        this.mismatch(`read seeded ${this.id(k)}: 404, the row is missing`);
      } else {
        this.failed("read", e);
      }
    }
  }

  async query() {
    const pk = this.pick(this.keys).partitionKey;
    const lo = this.prefix;
    const hi = this.prefix.slice(0, -1) + String.fromCharCode(this.prefix.charCodeAt(this.prefix.length - 1) + 1);
    const got = new Map();
    try {
      const it = this.client.listEntities({
        queryOptions: { filter: `PartitionKey eq '${pk}' and RowKey ge '${lo}' and RowKey lt '${hi}'` },
      });
      for await (const e of it) got.set(this.id(e), e.v);
    } catch (e) {
      return this.failed("query", e);
    }
    this.ok("query");
    for (const k of this.keys) {
      if (k.partitionKey !== pk) continue;
      const want = this.model.get(this.id(k)) ?? null;
      if (want === UNKNOWN) continue;
      const v = got.has(this.id(k)) ? got.get(this.id(k)) : null;
      if (v !== want) {
        this.mismatch(`query ${pk}: ${this.id(k)} is ${JSON.stringify(v)}, last write was ${JSON.stringify(want)}`);
      }
    }
    for (const id of got.keys()) {
      if (!this.keys.some((k) => this.id(k) === id)) this.mismatch(`query ${pk}: unexpected row ${id}`);
    }
  }

  async run(stopped) {
    while (!stopped()) {
      const r = Math.random();
      if (r < 0.35) await this.upsert();
      else if (r < 0.5) await this.remove();
      else if (r < 0.75) await this.readOwn();
      else if (r < 0.9) await this.readSeeded();
      else await this.query();
      await sleep(2); // a steady trickle, not a load test
    }
  }
}

function newStats() {
  return {
    ops: { upsert: 0, delete: 0, read: 0, query: 0 },
    byPhase: {},
    errors: 0,
    errorLog: [],
    mismatches: 0,
    mismatchLog: [],
  };
}

const totalOps = (s) => Object.values(s.ops).reduce((a, b) => a + b, 0);

// ---------------------------------------------------------------------------
// Direct reads of one Azurite account (not through any proxy).

async function readDirect(az) {
  const t = target({ name: "direct", kind: "azurite", endpoint: az.endpoint(DEV_ACCOUNT) });
  const tables = [];
  for await (const x of serviceClient(t).listTables()) tables.push(x.name);
  if (!tables.includes(TABLE)) return { exists: false, rows: [] };
  const rows = [];
  for await (const e of tableClient(t, TABLE).listEntities()) rows.push(e);
  return { exists: true, rows };
}

function runCtl(adminUrl, args, { inherit }) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("MTABLE_")) env[k] = v;
  return new Promise((ok) => {
    const p = spawn(ctlBin, ["--admin", adminUrl, ...args], {
      stdio: inherit ? ["ignore", "inherit", "inherit"] : ["ignore", "pipe", "pipe"],
      env,
    });
    ctlChild = p;
    let out = "";
    if (!inherit) {
      p.stdout.on("data", (d) => (out += d));
      p.stderr.on("data", (d) => (out += d));
    }
    p.on("error", (e) => ok({ code: 127, out: String(e) }));
    p.on("exit", (code, signal) => {
      ctlChild = null;
      ok({ code: code ?? 128, signal, out });
    });
  });
}

// ---------------------------------------------------------------------------
// The run.

let currentPhase = PHASES[0];
let seededRows = 0;
const started = [];

async function main() {
  const t0 = Date.now();
  stateDir = mkdtempSync(join(tmpdir(), "mtable-demo-"));
  const stateFile = join(stateDir, "state.json");

  step("starting two Azurite table services (in memory): the old and the new storage account");
  const azOld = await startAzurite();
  started.push(["azurite old", azOld.process]);
  const azNew = await startAzurite();
  started.push(["azurite new", azNew.process]);
  const backends = ["--old", azOld.connectionString(DEV_ACCOUNT), "--new", azNew.connectionString(DEV_ACCOUNT)];

  step("starting the mtable authority and two sidecar proxies");
  const auth = await startMtable({
    name: "authority", port: await freePort(), adminPort: await freePort(),
    args: [...backends, "--state-store", `file:${stateFile}`, "--copy-rate", String(opts.copyRate), "--proxy-id", "authority"],
  });
  started.push(["authority", auth.process]);
  const sidecars = [];
  for (const id of ["app-1", "app-2"]) {
    const px = await startMtable({
      name: id, port: await freePort(), adminPort: await freePort(),
      args: [...backends, "--config-endpoint", auth.adminUrl, "--proxy-id", id],
    });
    px.id = id;
    px.target = target({ name: id, kind: "proxy", endpoint: px.endpoint, proxy: px });
    sidecars.push(px);
    started.push([id, px.process]);
  }

  step(`creating table ${TABLE} and seeding ${opts.rows} rows through sidecar app-1`);
  const ts = Date.now();
  await serviceClient(sidecars[0].target).createTable(TABLE);
  await seedTable(sidecars[0].target, opts.rows);
  seededRows = opts.rows;
  const before = await readDirect(azOld);
  say(dim(`    ${opts.rows} rows in ${((Date.now() - ts) / 1000).toFixed(1)} s; old account now holds ${before.rows.length} rows`));

  const ctlCmd = (cmd) => `${rel(ctlBin)} --admin ${auth.adminUrl} ${cmd}`;
  const copyTime = opts.copyRate > 0 ? ` (~${Math.max(1, Math.round(opts.rows / opts.copyRate))} s at ${opts.copyRate} rows/s)` : "";
  say();
  say(bold("mtable demo: moving a live table from one storage account to another"));
  say();
  const row = (label, what, where, note) => say(`  ${label.padEnd(20)}${what.padEnd(13)}${where.padEnd(42)}${note}`);
  row("old storage account", "Azurite", azOld.endpoint(DEV_ACCOUNT), `table ${TABLE}, ${opts.rows} rows`);
  row("new storage account", "Azurite", azNew.endpoint(DEV_ACCOUNT), "empty for now");
  row("authority", "mtable-proxy", `admin ${auth.adminUrl}`, "owns the phase and the migrator");
  for (const px of sidecars) row(`sidecar ${px.id}`, "mtable-proxy", px.endpoint, `admin ${px.adminUrl}, follows the authority`);
  say(dim(`  (authority state: ${stateFile})`));
  say();
  say("  The application talks to its sidecar with the ordinary Azure Table SDK");
  say("  (@azure/data-tables here). On each sidecar a workload now runs: upserts, deletes,");
  say("  point reads and queries, each read checked against what was last written.");
  say();
  say("  'mtablectl migrate' then walks the phases, each pushed by the authority to both");
  say("  sidecars and acknowledged by them before it counts:");
  say("    use_old_hide_metadata   reads and writes go to the old account");
  say("    prefer_old              merged view; writes still go to the old account");
  say(`    prefer_new              writes go to the new account; the migrator copies${copyTime}`);
  say("    use_new_with_tombstones reads and writes go to the new account");
  say("    use_new_hide_metadata   the migrator cleans up; the old table is left empty");
  say();
  say(`  Watch from another terminal:  ${ctlCmd("status")}`);
  say();

  // The phase the workload runs under, for the per-phase counts.
  let polling = true;
  const poller = (async () => {
    while (polling) {
      try {
        currentPhase = (await proxyStatus(auth)).phase;
      } catch {
        // keep the last one
      }
      await sleep(100);
    }
  })();

  step("starting the workload: 2 workers on each sidecar");
  const stats = new Map(sidecars.map((px) => [px.id, newStats()]));
  let stop = false;
  const workers = sidecars.flatMap((px) => [0, 1].map((n) => new Worker(px.id, n, px.target, stats.get(px.id))));
  const running = Promise.all(workers.map((w) => w.run(() => stop)));
  await sleep(2000);
  const warm = [...stats.values()].reduce((a, s) => a + totalOps(s), 0);
  say(dim(`    ${warm} operations in the first 2 s, ${[...stats.values()].reduce((a, s) => a + s.mismatches, 0)} mismatches`));

  step(`running: ${ctlCmd("migrate")}`);
  const tm = Date.now();
  const mig = await runCtl(auth.adminUrl, ["migrate"], { inherit: true });
  const migrateSecs = ((Date.now() - tm) / 1000).toFixed(1);
  if (stopping) return new Promise(() => {}); // Ctrl-C during the migration: shutdown() takes over
  say(dim(`    mtablectl migrate exited ${mig.code} after ${migrateSecs} s`));

  await sleep(1500); // a little more work in the final phase
  stop = true;
  await running;
  polling = false;
  await poller;
  const finalPhase = (await proxyStatus(auth)).phase;

  step("workload stopped; reading both accounts directly and running mtablectl verify");
  const oldEnd = await readDirect(azOld);
  const newEnd = await readDirect(azNew);
  const verify = await runCtl(auth.adminUrl, ["verify"], { inherit: false });

  // Every row of the new table: the seeded rows exactly, and each worker's
  // rows as its model says.
  const problems = [];
  const seen = new Set();
  let wrongSeed = 0;
  let strays = 0;
  for (const e of newEnd.rows) {
    const i = seedIndex(e.rowKey);
    if (i >= 0 && i < opts.rows) {
      seen.add(i);
      if (e.n !== i || e.partitionKey !== seedKey(i).partitionKey) wrongSeed++;
    }
  }
  const missingSeed = opts.rows - seen.size;
  let workloadRows = 0;
  let wrongWorkload = 0;
  let unknownRows = 0;
  const byId = new Map(newEnd.rows.map((e) => [`${e.partitionKey}/${e.rowKey}`, e]));
  const owned = new Set();
  for (const w of workers) {
    for (const k of w.keys) {
      const id = w.id(k);
      owned.add(id);
      const want = w.model.get(id) ?? null;
      const got = byId.has(id) ? byId.get(id).v : null;
      if (want === UNKNOWN) {
        unknownRows++;
        if (got !== null) workloadRows++;
        continue;
      }
      if (got !== null) workloadRows++;
      if (got !== want) {
        wrongWorkload++;
        if (problems.length < 10) problems.push(`new table ${id}: ${JSON.stringify(got)}, last write ${JSON.stringify(want)}`);
      }
    }
  }
  for (const e of newEnd.rows) {
    const id = `${e.partitionKey}/${e.rowKey}`;
    if (seedIndex(e.rowKey) < 0 && !owned.has(id)) {
      strays++;
      if (problems.length < 10) problems.push(`new table: unexpected row ${id}`);
    }
  }

  const all = newStats();
  for (const s of stats.values()) {
    for (const k of Object.keys(all.ops)) all.ops[k] += s.ops[k];
    for (const [p, n] of Object.entries(s.byPhase)) all.byPhase[p] = (all.byPhase[p] ?? 0) + n;
    all.errors += s.errors;
    all.mismatches += s.mismatches;
    all.errorLog.push(...s.errorLog);
    all.mismatchLog.push(...s.mismatchLog);
  }
  const verifyOk = verify.code === 0 && /^verify\s+ok$/m.test(verify.out);
  const checks = {
    migrate: mig.code === 0 && finalPhase === PHASES[4],
    old: oldEnd.rows.length === 0,
    new: missingSeed === 0 && wrongSeed === 0 && wrongWorkload === 0 && strays === 0,
    mismatches: all.mismatches === 0,
    verify: verifyOk,
  };
  const mark = (ok) => (ok ? green("ok") : red("FAILED"));

  say();
  say(bold("summary"));
  say(`  migration: ${finalPhase}, mtablectl migrate exit ${mig.code} in ${migrateSecs} s   ${mark(checks.migrate)}`);
  say(`  old table (old Azurite, read directly): ${oldEnd.rows.length} rows${oldEnd.exists ? "" : " (table deleted)"}   ${mark(checks.old)}`);
  say(
    `  new table (new Azurite, read directly): ${newEnd.rows.length} rows = ${seen.size} seeded + ${workloadRows} written by the workload` +
      `${strays ? ` + ${strays} unexpected` : ""}   ${mark(checks.new)}`,
  );
  if (missingSeed || wrongSeed) say(red(`    seeded rows missing: ${missingSeed}, wrong: ${wrongSeed}`));
  if (unknownRows) say(dim(`    ${unknownRows} workload rows not judged (their last write failed)`));
  for (const p of problems) say(red(`    ${p}`));
  for (const [id, s] of stats) {
    const o = s.ops;
    say(`  workload ${id}: ${totalOps(s)} ok (${o.upsert} upserts, ${o.delete} deletes, ${o.read} reads, ${o.query} queries), ${s.errors} errors, ${s.mismatches} mismatches`);
  }
  say(`  workload ops by phase (sampled every 0.1 s): ${PHASES.filter((p) => all.byPhase[p]).map((p) => `${p} ${all.byPhase[p]}`).join(", ")}`);
  say(`  mismatches: ${all.mismatches}   ${mark(checks.mismatches)}`);
  for (const m of all.mismatchLog) say(red(`    ${m}`));
  if (all.errors) {
    say(`  errors (failed requests, not wrong answers): ${all.errors}`);
    for (const m of all.errorLog.slice(0, 5)) say(dim(`    ${m}`));
  }
  say(`  verify: ${verifyOk ? "ok" : "NOT OK"} (mtablectl verify exit ${verify.code})   ${mark(checks.verify)}`);
  for (const line of verify.out.trimEnd().split("\n")) say(dim(`    ${line}`));
  const pass = Object.values(checks).every(Boolean);
  say();
  say(`${pass ? green(bold("PASS")) : red(bold("FAIL"))}: ${pass ? "the table moved while it was in use; nothing lost, nothing read wrong" : "see above"} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

  if (opts.keep) {
    say();
    say(bold("everything is still running (--keep); Ctrl-C stops it all"));
    say();
    for (const px of sidecars) {
      say(`  sidecar ${px.id}: table endpoint ${px.endpoint}, admin ${px.adminUrl}`);
      say(`    ${connStr(px.endpoint)}`);
    }
    say(`  authority: table endpoint ${auth.endpoint}, admin ${auth.adminUrl}`);
    say(`  old account (Azurite, direct): ${connStr(azOld.endpoint(DEV_ACCOUNT))}`);
    say(`  new account (Azurite, direct): ${connStr(azNew.endpoint(DEV_ACCOUNT))}`);
    say(`  ${ctlCmd("status")}`);
    say(`  logs: ${started.map(([n, h]) => `${n} ${h.log}`).join(", ")}`);
    say(dim("  (the logs are removed on exit unless MTABLE_E2E_KEEP_LOGS=1)"));
    setInterval(() => {}, 1 << 30); // the servers are unref'd: keep this process up
    return;
  }
  await shutdown(pass ? 0 : 1);
}

main().catch(async (e) => {
  if (stopping) return;
  process.stderr.write(`\n${red("demo failed:")} ${e.stack || e}\n`);
  for (const [name, h] of started) {
    if (h.alive()) continue;
    process.stderr.write(`\n--- ${name} exited ${JSON.stringify(h.done)}; last lines of its log:\n${h.tail(20)}\n`);
  }
  await shutdown(1);
});

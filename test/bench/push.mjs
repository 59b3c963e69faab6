#!/usr/bin/env node
// push.mjs -- how long a phase push takes across a fleet of proxies, and
// what it costs the requests that run while it happens.
//
// One *authority* (mtable-proxy with no --config-endpoint) and N *proxies*
// (mtable-proxy --config-endpoint <authority admin URL>), real processes on
// free loopback ports, embedded memory backends. Three measurements, each
// side by side in this one run:
//
//   1. push completion: POST /admin/v1/phase until its 200, for each of the
//      four pushes of a migration (0->1, 1->2, then the copy through
//      POST /admin/v1/migrate {"until": "prefer_new"}, untimed, then 2->3,
//      3->4), over --fleets fresh fleets of 3 and of 20 proxies;
//   2. the same pushes with one proxy killed (SIGKILL) just before each: the
//      push must wait for that proxy's lease to run out, plus the margin
//      (lease/2); --kill-lease-ms (2000) keeps that short. The killed proxy
//      is replaced (same id, new ports) before the next push;
//   3. point-read latency during pushes: 3 proxies, --clients closed-loop
//      readers per proxy each reading one row through its proxy, the four
//      pushes --push-every seconds apart, over --latency-fleets fleets;
//      reads that overlapped a push window against reads that overlapped
//      *control* windows of the same lengths at quiet times (the overlap
//      rule favours slow reads, so the control has to share it), pooled and
//      window by window.
//
//   node test/bench/push.mjs [--quick] [--sections 1,2,3] [--fleets N]
//                            [--sizes 3,20] [--kill-lease-ms MS]
//                            [--clients N] [--push-every S]
//                            [--latency-fleets N] [--proxy-bin PATH]
//                            [--out FILE]
//
// Progress goes to stderr, the report (markdown) to stdout (and to --out
// when given). Nothing fails on a timing: the exit status is non-zero only
// when the benchmark could not measure (a process did not start, a push or
// a read got a status it should not have).

import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { TableClient, entityPath, makeEntity } from "./lib/client.mjs";

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, CLOCK_MONOTONIC (same in every thread)

// ---------------------------------------------------------------------------
// The load (a worker thread, so its event loop does not delay the driver's
// timing of the pushes, and the other way round).

async function loadThread({ targets, clients, path }) {
  let stop = false;
  parentPort.on("message", (m) => {
    if (m === "stop") stop = true;
  });
  const starts = [];
  const ends = [];
  const statuses = [];
  const who = [];
  const conns = targets.map((t) => new TableClient({ host: "127.0.0.1", port: t.port, concurrency: clients }));
  async function lane(ti) {
    const c = conns[ti];
    while (!stop) {
      const s = now();
      let status = 0;
      try {
        status = (await c.request("GET", path)).status;
      } catch {
        status = 0; // transport error
      }
      starts.push(s);
      ends.push(now());
      statuses.push(status);
      who.push(ti);
    }
  }
  const lanes = [];
  for (let ti = 0; ti < targets.length; ti++) for (let k = 0; k < clients; k++) lanes.push(lane(ti));
  parentPort.postMessage("started");
  await Promise.all(lanes);
  for (const c of conns) c.close();
  const f = (a) => Float64Array.from(a);
  const out = { starts: f(starts), ends: f(ends), statuses: f(statuses), who: f(who) };
  parentPort.postMessage(out, [out.starts.buffer, out.ends.buffer, out.statuses.buffer, out.who.buffer]);
}

if (!isMainThread) {
  loadThread(workerData).catch((e) => {
    throw e;
  });
} else {
  main().catch((e) => {
    process.stderr.write(`mtable push bench: ${e.usage ? e.message : e.stack || e}\n`);
    process.exit(e.usage ? 2 : 1);
  });
}

// ---------------------------------------------------------------------------
// Everything below runs in the main thread only (procs.mjs installs exit and
// signal handlers, so it is imported there, not in the load thread).

async function main() {
  const procs = await import("./lib/procs.mjs");
  const driver = await import("./lib/driver.mjs");
  const { admin, machine, sleep, startProxy, stopPid } = procs;

  const benchDir = dirname(fileURLToPath(import.meta.url));
  const repoRoot = resolve(benchDir, "../..");

  // -------------------------------------------------------------------------
  // Options.

  const USAGE = `usage: node test/bench/push.mjs [options]

  --quick              short run (about 1 minute): 2 fleets per size, one latency
                       fleet with 2 readers per proxy and pushes 2 s apart
  --sections LIST      which sections to run, e.g. 1,3 (default 1,2,3)
  --fleets N           fresh fleets per size for the push times (default 5)
  --sizes LIST         fleet sizes (default 3,20)
  --kill-lease-ms MS   lease of the fleets where a proxy is killed (default 2000)
  --clients N          closed-loop readers per proxy in the latency run (default 3)
  --push-every S       seconds between pushes in the latency run (default 3)
  --latency-fleets N   fleets (4 pushes each) in the latency run (default 5)
  --proxy-bin PATH     proxy binary (default build/proxy/mtable-proxy,
                       or $MTABLE_PROXY_BIN)
  --out FILE           also write the report there
`;
  const usage = (m) => Object.assign(new Error(m), { usage: true });
  const o = {
    quick: false,
    sections: [1, 2, 3],
    fleets: null,
    sizes: [3, 20],
    killLeaseMs: 2000,
    clients: null,
    pushEvery: null,
    latencyFleets: 5,
    proxyBin: process.env.MTABLE_PROXY_BIN || join(repoRoot, "build/proxy/mtable-proxy"),
    out: null,
  };
  const argv = process.argv.slice(2);
  const num = (v, f) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw usage(`bad value for ${f}: ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--quick") o.quick = true;
    else if (a === "--sections") o.sections = val().split(",").map((x) => Math.floor(num(x, a)));
    else if (a === "--fleets") o.fleets = Math.floor(num(val(), a));
    else if (a === "--sizes") o.sizes = val().split(",").map((x) => Math.floor(num(x, a)));
    else if (a === "--kill-lease-ms") o.killLeaseMs = Math.floor(num(val(), a));
    else if (a === "--clients") o.clients = Math.floor(num(val(), a));
    else if (a === "--push-every") o.pushEvery = num(val(), a);
    else if (a === "--latency-fleets") o.latencyFleets = Math.floor(num(val(), a));
    else if (a === "--proxy-bin") o.proxyBin = resolve(val());
    else if (a === "--out") o.out = resolve(val());
    else if (a === "--help" || a === "-h") {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw usage(`unknown option ${a} (see --help)`);
  }
  o.fleets ??= o.quick ? 2 : 5;
  o.clients ??= o.quick ? 2 : 3;
  o.pushEvery ??= o.quick ? 2 : 3;
  if (o.quick) o.latencyFleets = Math.min(o.latencyFleets, 1);
  const WARMUP_MS = 1000;
  const DEFAULT_LEASE_MS = 10000; // the proxy's default; the fleets of 1. and 3. use it

  if (!existsSync(o.proxyBin)) throw new Error(`no proxy binary at ${o.proxyBin} (build it: ninja -C build)`);
  const work = mkdtempSync(join(tmpdir(), "mtable-bench-push-"));
  // One copy of the binary for the whole run, so a rebuild meanwhile cannot
  // mix two builds.
  const binBuilt = statSync(o.proxyBin).mtime.toISOString();
  const buildDesc = driver.describeProxyBuild(o.proxyBin);
  const bin = join(work, "mtable-proxy");
  copyFileSync(o.proxyBin, bin);
  chmodSync(bin, 0o755);

  const log = (s) => process.stderr.write(s + "\n");
  const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");
  const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : "-");
  const pct = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] : NaN);
  const median = (xs) => pct([...xs].sort((a, b) => a - b), 0.5);
  const max = (xs) => (xs.length ? Math.max(...xs) : NaN);

  const PUSHES = [
    ["use_old_hide_metadata", "prefer_old"],
    ["prefer_old", "prefer_new"],
    ["prefer_new", "use_new_with_tombstones"],
    ["use_new_with_tombstones", "use_new_hide_metadata"],
  ];
  const PHASE_NO = Object.fromEntries(
    ["use_old_hide_metadata", "prefer_old", "prefer_new", "use_new_with_tombstones", "use_new_hide_metadata"].map((p, i) => [p, i]),
  );
  const stepName = ([a, b]) => `${PHASE_NO[a]}→${PHASE_NO[b]}`;

  // -------------------------------------------------------------------------
  // Fleets.

  let seq = 0;
  const live = new Set(); // every server started and not yet stopped

  // A port freePort() found free can be taken before the proxy binds it
  // (the outgoing connections of 20 proxies use the same range): start again
  // on other ports.
  async function start(label, args) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await startProxy(bin, work, `${label}-${++seq}`, args);
      } catch (e) {
        if (attempt >= 5 || !/cannot listen/.test(String(e.message))) throw e;
        log(`  ${label}: port taken, starting again`);
      }
    }
  }

  async function startAuthority(leaseMs) {
    const a = await start("authority", ["--state-store", "memory", "--lease-ms", String(leaseMs),
      "--rest-lease-ms", String(leaseMs)]);
    live.add(a);
    a.url = `http://127.0.0.1:${a.adminPort}`;
    a.leaseMs = leaseMs;
    return a;
  }

  async function startMember(auth, id) {
    const p = await start(id, ["--config-endpoint", auth.url, "--proxy-id", id]);
    p.id = id;
    live.add(p);
    return p;
  }

  async function status(auth) {
    const r = await admin(auth.adminPort, "GET", "/admin/v1/status");
    if (r.status !== 200 || !r.json) throw new Error(`authority status: HTTP ${r.status} ${r.text}`);
    return r.json;
  }

  // Until every member answers /readyz 200 and the authority lists it live
  // at its current config_version.
  async function waitLive(auth, members, timeoutMs = 30000) {
    const deadline = Date.now() + timeoutMs;
    const pending = new Set(members);
    while (pending.size) {
      await Promise.all(
        [...pending].map(async (p) => {
          const r = await admin(p.adminPort, "GET", "/readyz").catch(() => null);
          if (r?.status === 200) pending.delete(p);
        }),
      );
      if (!pending.size) break;
      driver.checkAlive([auth, ...members]);
      if (Date.now() > deadline) throw new Error(`proxies not ready after ${timeoutMs} ms: ${[...pending].map((p) => p.id)}`);
      await sleep(20);
    }
    for (;;) {
      const s = await status(auth);
      const byId = new Map(s.proxies.filter((x) => x.role === "proxy").map((x) => [x.id, x]));
      const ok = members.every((p) => byId.get(p.id)?.live && byId.get(p.id).config_version === s.config_version);
      if (ok) return s;
      driver.checkAlive([auth, ...members]);
      if (Date.now() > deadline) throw new Error(`authority does not list every proxy live: ${JSON.stringify(s.proxies)}`);
      await sleep(20);
    }
  }

  async function startFleet(n, leaseMs) {
    const t0 = now();
    const auth = await startAuthority(leaseMs);
    const members = await Promise.all(Array.from({ length: n }, (_, i) => startMember(auth, `p${i + 1}`)));
    await waitLive(auth, members);
    return { auth, members, startMs: now() - t0 };
  }

  async function stopServer(s) {
    await stopPid(s.pid);
    live.delete(s);
  }

  async function stopFleet(f) {
    await Promise.all(f.members.map(stopServer));
    await stopServer(f.auth);
  }

  // POST /admin/v1/phase, timed; throws unless 200 and the phase applied.
  async function timedPush(auth, phase) {
    const t0 = now();
    const r = await admin(auth.adminPort, "POST", "/admin/v1/phase", { phase });
    const t1 = now();
    if (r.status !== 200) throw new Error(`push ${phase}: HTTP ${r.status} ${r.text}`);
    const s = await status(auth);
    if (s.phase !== phase) throw new Error(`phase is ${s.phase} after pushing ${phase}`);
    return { t0, t1, ms: t1 - t0 };
  }

  // The copy that must precede use_new_with_tombstones (instant here: the
  // authority's memory backends hold no table).
  async function migrate(auth) {
    const r = await admin(auth.adminPort, "POST", "/admin/v1/migrate", { until: "prefer_new" });
    if (r.status !== 202) throw new Error(`migrate: HTTP ${r.status} ${r.text}`);
    const deadline = Date.now() + 30000;
    for (;;) {
      const s = await status(auth);
      const st = s.migration?.state;
      if (s.migration?.copy_done && !["pushing", "copying", "cleaning"].includes(st)) return;
      if (st === "failed") throw new Error(`migration failed: ${JSON.stringify(s.migration)}`);
      if (Date.now() > deadline) throw new Error(`migration not done after 30 s: ${JSON.stringify(s.migration)}`);
      await sleep(10);
    }
  }

  // -------------------------------------------------------------------------
  // 1. Push completion times.

  async function pushTimes(n) {
    const byStep = PUSHES.map(() => []);
    const starts = [];
    for (let k = 0; k < o.fleets; k++) {
      const f = await startFleet(n, DEFAULT_LEASE_MS);
      starts.push(f.startMs);
      try {
        for (let i = 0; i < PUSHES.length; i++) {
          if (i === 2) await migrate(f.auth);
          byStep[i].push((await timedPush(f.auth, PUSHES[i][1])).ms);
        }
        driver.checkAlive([f.auth, ...f.members]);
      } finally {
        await stopFleet(f);
      }
      log(`  ${n} proxies, fleet ${k + 1}: live after ${fmt(f.startMs, 0)} ms; pushes ${byStep.map((s) => fmt(s[k], 2)).join(", ")} ms`);
    }
    return { n, byStep, all: byStep.flat(), starts };
  }

  // -------------------------------------------------------------------------
  // 2. A push with one proxy SIGKILLed just before it.

  async function killedPushes(n) {
    const leaseMs = o.killLeaseMs;
    const marginMs = leaseMs / 2;
    const f = await startFleet(n, leaseMs);
    const samples = [];
    try {
      for (let i = 0; i < PUSHES.length; i++) {
        if (i === 2) await migrate(f.auth);
        const victim = f.members[i % f.members.length];
        const before = await status(f.auth);
        const entry = before.proxies.find((x) => x.id === victim.id);
        const tStatus = now();
        process.kill(victim.pid, "SIGKILL");
        const tKill = now();
        const push = await timedPush(f.auth, PUSHES[i][1]);
        // What the lease protocol allows: the lease the victim had left at
        // the status read, less the time to the kill, plus the margin.
        const leftAtKill = entry.lease_left_ms - (tKill - tStatus);
        samples.push({ step: stepName(PUSHES[i]), ms: push.ms, leftAtKill, expect: leftAtKill + marginMs, bound: leaseMs + marginMs });
        log(`  ${n} proxies, kill ${victim.id} then push ${stepName(PUSHES[i])}: ${fmt(push.ms, 0)} ms (lease left at kill ~${fmt(leftAtKill, 0)} ms, expected ~${fmt(leftAtKill + marginMs, 0)} ms, bound ${leaseMs + marginMs} ms)`);
        await stopServer(victim);
        // The replacement takes the victim's id, so the fleet is n again.
        const repl = await startMember(f.auth, victim.id);
        f.members[i % f.members.length] = repl;
        await waitLive(f.auth, f.members);
      }
      driver.checkAlive([f.auth, ...f.members]);
    } finally {
      await stopFleet(f);
    }
    return { n, leaseMs, marginMs, samples };
  }

  // -------------------------------------------------------------------------
  // 3. Point-read latency while pushes happen.

  const TABLE = "pushbench";
  const PK = "p";
  const RK = "r000001";
  const ROW = entityPath(TABLE, PK, RK);

  async function latencyFleet() {
    const f = await startFleet(3, DEFAULT_LEASE_MS);
    const pushes = [];
    const other = []; // windows of other admin and write activity, left out of both sets
    let data;
    try {
      // The row each reader reads, written in phase 0 through its proxy
      // (each proxy has its own memory backends).
      for (const p of f.members) {
        const c = new TableClient({ host: "127.0.0.1", port: p.port, concurrency: 1 });
        try {
          await driver.expectStatus(c.request("POST", "Tables", { body: { TableName: TABLE }, headers: { Prefer: "return-no-content" } }), [201, 204], `${p.id}: create table`);
          await driver.expectStatus(c.request("POST", TABLE, { body: makeEntity(PK, RK, 1), headers: { Prefer: "return-no-content" } }), [201, 204], `${p.id}: insert`);
          await driver.expectStatus(c.request("GET", ROW), [200], `${p.id}: read`);
        } finally {
          c.close();
        }
      }
      const w = new Worker(new URL(import.meta.url), {
        workerData: { targets: f.members.map((p) => ({ port: p.port })), clients: o.clients, path: ROW },
      });
      const result = new Promise((ok, fail) => {
        w.on("message", (m) => m !== "started" && ok(m));
        w.once("error", fail);
      });
      await once(w, "message"); // "started"
      const t0 = now();
      const at = (ms) => sleep(Math.max(0, t0 + ms - now()));
      for (let i = 0; i < PUSHES.length; i++) {
        await at(WARMUP_MS + (i + 1) * o.pushEvery * 1000);
        const p = await timedPush(f.auth, PUSHES[i][1]);
        pushes.push({ ...p, step: stepName(PUSHES[i]) });
        if (i === 1) {
          // In prefer_new, rewrite the row through each proxy so that new
          // holds it (the migrator copies the authority's backends, not the
          // proxies'), then run the copy the next push needs. Requests that
          // overlap this are left out of both sets.
          const s = now();
          for (const m of f.members) {
            const c = new TableClient({ host: "127.0.0.1", port: m.port, concurrency: 1 });
            try {
              await driver.expectStatus(c.request("PUT", ROW, { body: makeEntity(PK, RK, 2) }), [204], `${m.id}: upsert in prefer_new`);
            } finally {
              c.close();
            }
          }
          await migrate(f.auth);
          other.push({ t0: s, t1: now() });
        }
      }
      await at(WARMUP_MS + (PUSHES.length + 1) * o.pushEvery * 1000);
      const tEnd = now();
      w.postMessage("stop");
      data = await result;
      await w.terminate();
      driver.checkAlive([f.auth, ...f.members]);
      return { t0, tEnd, pushes, other, data };
    } finally {
      await stopFleet(f);
    }
  }

  // Control windows: for every push window, CONTROLS windows of the same
  // length at random quiet times of the same fleet (at least QUIET_MS away
  // from any push and from the rewrite and copy). A slow read overlaps more
  // windows than a fast one, whatever the windows are, so the overlap rule
  // by itself favours slow reads; the control group has that same bias, and
  // push vs control compares like with like.
  const CONTROLS = 25;
  const QUIET_MS = 200;

  function controlWindows({ t0, tEnd, pushes, other }) {
    const busy = [...pushes, ...other];
    const out = [];
    for (const p of pushes) {
      const d = p.t1 - p.t0;
      for (let k = 0, tries = 0; k < CONTROLS && tries < 1000 * CONTROLS; tries++) {
        const a = t0 + WARMUP_MS + Math.random() * (tEnd - t0 - WARMUP_MS - d);
        if (busy.some((w) => a < w.t1 + QUIET_MS && a + d > w.t0 - QUIET_MS)) continue;
        out.push({ t0: a, t1: a + d });
        k++;
      }
    }
    return out;
  }

  function classify(runs) {
    const inside = [];
    const control = [];
    const after = [];
    const outside = [];
    const bad = {};
    let excluded = 0;
    let total = 0;
    let slow = [];
    const overlaps = (ws, s, e) => ws.some((w) => s < w.t1 && e > w.t0);
    // Where a read ran relative to the closest push (or the rewrite and
    // copy): "during 1→2", "12 ms after 1→2", "3 ms before 2→3".
    const nearest = (ws, s, e) => {
      let best = null;
      for (const w of ws) {
        const d = s < w.t1 && e > w.t0 ? 0 : s >= w.t1 ? s - w.t1 : e - w.t0;
        if (!best || Math.abs(d) < Math.abs(best.d)) best = { d, step: w.step };
      }
      return best;
    };
    for (const [ri, run] of runs.entries()) {
      const { t0, pushes, other, data } = run;
      const controls = (run.controls = controlWindows(run));
      const marked = [...pushes, ...other.map((x) => ({ ...x, step: "the rewrite and copy" }))];
      const { starts, ends, statuses, who } = data;
      for (let i = 0; i < starts.length; i++) {
        total++;
        const s = starts[i];
        const e = ends[i];
        const lat = e - s;
        if (statuses[i] !== 200) bad[statuses[i]] = (bad[statuses[i]] ?? 0) + 1;
        if (s < t0 + WARMUP_MS || overlaps(other, s, e)) {
          excluded++;
          continue;
        }
        if (slow.length < 5 || lat > slow[slow.length - 1].lat) {
          slow.push({ lat, fleet: ri + 1, at: s - t0, who: who[i], near: nearest(marked, s, e) });
          slow = slow.sort((a, b) => b.lat - a.lat).slice(0, 5);
        }
        if (overlaps(pushes, s, e)) inside.push(lat);
        else {
          outside.push(lat);
          if (overlaps(controls, s, e)) control.push(lat);
          if (pushes.some((w) => s >= w.t1 && s < w.t1 + 100)) after.push(lat);
        }
      }
    }
    const sum = (xs) => {
      const a = Float64Array.from(xs).sort();
      return { n: a.length, p50: pct(a, 0.5), p99: pct(a, 0.99), max: a.length ? a[a.length - 1] : NaN, mean: a.reduce((x, y) => x + y, 0) / a.length };
    };
    return { inside: sum(inside), control: sum(control), after: sum(after), outside: sum(outside), bad, excluded, total, slow };
  }

  // Per window: the reads that overlapped it, their median and the slowest.
  // Pooling the reads of all windows lets one long window (a push the
  // machine held up for 100 ms) outweigh the others; counting windows does
  // not.
  function perWindow(runs, slowMs) {
    const out = { push: [], control: [] };
    for (const [ri, run] of runs.entries()) {
      const { starts, ends, who } = run.data;
      const order = Array.from(starts.keys()).sort((x, y) => starts[x] - starts[y]);
      const sortedStarts = Float64Array.from(order, (i) => starts[i]);
      let maxLat = 0;
      for (let i = 0; i < starts.length; i++) maxLat = Math.max(maxLat, ends[i] - starts[i]);
      const lowerBound = (x) => {
        let lo = 0;
        let hi = sortedStarts.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (sortedStarts[mid] < x) lo = mid + 1;
          else hi = mid;
        }
        return lo;
      };
      for (const [kind, ws] of [["push", run.pushes], ["control", run.controls]]) {
        for (const w of ws) {
          const lats = [];
          let worst = -1;
          for (let k = lowerBound(w.t0 - maxLat); k < sortedStarts.length && sortedStarts[k] < w.t1; k++) {
            const i = order[k];
            if (ends[i] <= w.t0) continue;
            lats.push(ends[i] - starts[i]);
            if (worst < 0 || ends[i] - starts[i] > ends[worst] - starts[worst]) worst = i;
          }
          const a = Float64Array.from(lats).sort();
          out[kind].push({
            fleet: ri + 1,
            step: w.step,
            ms: w.t1 - w.t0,
            n: a.length,
            p50: pct(a, 0.5),
            max: a.length ? a[a.length - 1] : NaN,
            who: worst >= 0 ? who[worst] : -1,
          });
        }
      }
    }
    const sum = (ws) => ({
      n: ws.length,
      reads: median(ws.map((w) => w.n)),
      p50: median(ws.map((w) => w.p50)),
      max: median(ws.map((w) => w.max)),
      max90: pct(ws.map((w) => w.max).sort((x, y) => x - y), 0.9),
      slow: ws.filter((w) => w.max > slowMs).length,
    });
    return { push: sum(out.push), control: sum(out.control), slowPushes: out.push.filter((w) => w.max > slowMs), slowMs };
  }

  // -------------------------------------------------------------------------
  // The run.

  const started = new Date();
  const env = {
    date: started.toISOString(),
    command: ["node", relative(process.cwd(), fileURLToPath(import.meta.url)) || "push.mjs", ...argv].join(" "),
    ...machine(),
    node: process.version,
    commit: driver.gitCommit(repoRoot),
    tree: driver.treeState(repoRoot),
    build: `${buildDesc}, binary of ${binBuilt}`,
  };
  log(`mtable push bench: ${env.nproc} cpus (${env.cpu}); sizes ${o.sizes.join(",")}, ${o.fleets} fleets each`);

  let ok = false;
  try {
    const times = [];
    if (o.sections.includes(1)) {
      log("1. push completion time");
      for (const n of o.sizes) times.push(await pushTimes(n));
    }
    const kills = [];
    if (o.sections.includes(2)) {
      log(`2. push with one proxy killed (lease ${o.killLeaseMs} ms)`);
      for (const n of o.sizes) kills.push(await killedPushes(n));
    }
    const runs = [];
    let lat = null;
    if (o.sections.includes(3)) {
      log(`3. point-read latency during pushes: 3 proxies x ${o.clients} readers, a push every ${o.pushEvery} s`);
      for (let k = 0; k < o.latencyFleets; k++) {
        const r = await latencyFleet();
        runs.push(r);
        log(`  fleet ${k + 1}: ${r.data.starts.length} reads in ${fmt((r.data.ends[r.data.ends.length - 1] - r.t0) / 1000, 1)} s; pushes ${r.pushes.map((p) => fmt(p.ms, 2)).join(", ")} ms`);
      }
      lat = classify(runs);
      lat.windows = perWindow(runs, 10 * lat.outside.p50);
      if (Object.keys(lat.bad).length)
        throw new Error(`reads answered other than 200 during the latency run: ${JSON.stringify(lat.bad)}`);
    }

    // ---------------------------------------------------------------------
    // Report.

    const L = [];
    L.push("# Phase push: completion time and request latency", "");
    L.push(`${env.date}, \`${env.command}\`, ${env.nproc} cpus (${env.cpu}), node ${env.node}, commit ${env.commit} (${env.tree}), ${env.build}.`, "");
    if (times.length) {
      L.push(`## 1. Push completion time (${o.fleets} fresh fleets per size, 4 pushes each, lease ${DEFAULT_LEASE_MS} ms)`, "");
      L.push("POST /admin/v1/phase until its 200, in ms; every proxy is a separate process, ready and listed live before the first push.", "");
      L.push(`| proxies | pushes | median | max | ${PUSHES.map((p) => `${stepName(p)} median`).join(" | ")} | fleet start to all live (median) |`);
      L.push(`|--:|--:|--:|--:|${PUSHES.map(() => "--:").join("|")}|--:|`);
      for (const t of times)
        L.push(`| ${t.n} | ${t.all.length} | ${fmt(median(t.all), 2)} | ${fmt(max(t.all), 2)} | ${t.byStep.map((s) => fmt(median(s), 2)).join(" | ")} | ${fmt(median(t.starts), 0)} |`);
      if (times.length >= 2) {
        const [a, b] = [times[0], times[times.length - 1]];
        L.push(`| **${b.n} / ${a.n}** | | **${ratio(median(b.all), median(a.all))}** | **${ratio(max(b.all), max(a.all))}** | ${b.byStep.map((s, i) => ratio(median(s), median(a.byStep[i]))).join(" | ")} | ${ratio(median(b.starts), median(a.starts))} |`);
      }
      L.push("");
    }
    if (kills.length) {
      const k0 = kills[0];
      L.push(`## 2. Push with one proxy killed (SIGKILL) just before it (lease ${k0.leaseMs} ms, margin ${k0.marginMs} ms: bound lease + margin = ${k0.leaseMs + k0.marginMs} ms)`, "");
      L.push("Expected: the lease the killed proxy had left (from the authority's status just before the kill) plus the margin.", "");
      L.push("| proxies | push | measured ms | lease left at kill | expected ms | measured / expected | within bound |");
      L.push("|--:|--|--:|--:|--:|--:|--|");
      for (const k of kills)
        for (const s of k.samples)
          L.push(`| ${k.n} | ${s.step} | ${fmt(s.ms, 0)} | ${fmt(s.leftAtKill, 0)} | ${fmt(s.expect, 0)} | ${ratio(s.ms, s.expect)} | ${s.ms <= s.bound ? "yes" : "**no**"} |`);
      for (const k of kills)
        L.push("", `${k.n} proxies: median ${fmt(median(k.samples.map((s) => s.ms)), 0)} ms, max ${fmt(max(k.samples.map((s) => s.ms)), 0)} ms (bound ${k.leaseMs + k.marginMs} ms).`);
      L.push("");
    }
    if (lat) {
      const pushMs = runs.flatMap((r) => r.pushes.map((p) => p.ms));
      L.push(`## 3. Point-read latency during pushes (3 proxies x ${o.clients} closed-loop readers, ${runs.length} fleet(s) x 4 pushes, one every ${o.pushEvery} s)`, "");
      L.push(
        `Each read's latency (ms), by whether it overlapped a push window (POST /admin/v1/phase sent to 200 received; ` +
          `${pushMs.length} windows, median ${fmt(median(pushMs), 2)} ms, max ${fmt(max(pushMs), 2)} ms) or one of ${CONTROLS} ` +
          `*control* windows per push: same length, random times at least ${QUIET_MS} ms from any push. Long reads overlap ` +
          `any window more often than short ones, so **push / control** is the fair ratio; push / outside is biased up. ` +
          `Left out: the first ${WARMUP_MS / 1000} s of each fleet and the reads overlapping the rewrite of the rows and the copy before 2→3 ` +
          `(${lat.excluded} in all).`,
        "",
      );
      L.push("| reads | n | p50 | p99 | max | mean |");
      L.push("|--|--:|--:|--:|--:|--:|");
      const row = (name, x) => `| ${name} | ${x.n} | ${fmt(x.p50, 3)} | ${fmt(x.p99, 3)} | ${fmt(x.max, 2)} | ${fmt(x.mean, 3)} |`;
      const rrow = (name, a, b, bold) => {
        const B = (t) => (bold ? `**${t}**` : t);
        return `| ${B(name)} | | ${B(ratio(a.p50, b.p50))} | ${B(ratio(a.p99, b.p99))} | ${ratio(a.max, b.max)} | ${ratio(a.mean, b.mean)} |`;
      };
      L.push(row("overlapping a push", lat.inside));
      L.push(row("overlapping a control window", lat.control));
      L.push(row("not overlapping a push (all)", lat.outside));
      L.push(row("starting ≤ 100 ms after a push", lat.after));
      L.push(rrow("push / control", lat.inside, lat.control, true));
      L.push(rrow("push / all outside", lat.inside, lat.outside, false));
      L.push(rrow("≤ 100 ms after / all outside", lat.after, lat.outside, false));
      L.push("", `${lat.total} reads in all, every one answered 200.`, "");
      const pw = lat.windows;
      L.push(
        `Per window (each window counts once, so one push the machine held up cannot outweigh the others): the median over ` +
          `windows of the reads' p50 and of the slowest read, the 90th percentile of the slowest read, and how many windows ` +
          `had a read slower than ${fmt(pw.slowMs, 1)} ms (10x the p50 of all reads outside pushes).`,
        "",
      );
      L.push("| windows | n | reads each (median) | p50 (median) | slowest (median) | slowest (p90) | with a read > " + fmt(pw.slowMs, 1) + " ms |");
      L.push("|--|--:|--:|--:|--:|--:|--:|");
      const wrow = (name, x) =>
        `| ${name} | ${x.n} | ${fmt(x.reads, 0)} | ${fmt(x.p50, 3)} | ${fmt(x.max, 3)} | ${fmt(x.max90, 2)} | ${x.slow} (${fmt((100 * x.slow) / x.n, 1)}%) |`;
      L.push(wrow("push", pw.push));
      L.push(wrow("control", pw.control));
      L.push(
        `| **push / control** | | | **${ratio(pw.push.p50, pw.control.p50)}** | **${ratio(pw.push.max, pw.control.max)}** | ${ratio(pw.push.max90, pw.control.max90)} | ${ratio(pw.push.slow / pw.push.n, pw.control.slow / pw.control.n)} |`,
      );
      L.push("");
      if (pw.slowPushes.length)
        L.push(
          `Pushes with a read > ${fmt(pw.slowMs, 1)} ms: ${pw.slowPushes.map((w) => `fleet ${w.fleet} ${w.step} (push ${fmt(w.ms, 1)} ms, slowest read ${fmt(w.max, 1)} ms on p${w.who + 1})`).join("; ")}.`,
          "",
        );
      const where = (x) =>
        x.near.d === 0 ? `during ${x.near.step}` : x.near.d > 0 ? `${fmt(x.near.d, 0)} ms after ${x.near.step}` : `${fmt(-x.near.d, 0)} ms before ${x.near.step}`;
      L.push(`Slowest reads: ${lat.slow.map((x) => `${fmt(x.lat, 1)} ms (fleet ${x.fleet}, proxy p${x.who + 1}, ${fmt(x.at / 1000, 2)} s in, ${where(x)})`).join("; ")}.`, "");
    }

    L.push("## Summary", "");
    L.push("| measure | value |");
    L.push("|--|--|");
    for (const t of times) L.push(`| push, ${t.n} proxies: median / max | ${fmt(median(t.all), 2)} / ${fmt(max(t.all), 2)} ms |`);
    if (times.length >= 2) {
      const [a, b] = [times[0], times[times.length - 1]];
      L.push(`| push, ${b.n} vs ${a.n} proxies: median / max | ${ratio(median(b.all), median(a.all))} / ${ratio(max(b.all), max(a.all))} |`);
    }
    for (const k of kills)
      L.push(`| push with 1 of ${k.n} killed: median / max (bound) | ${fmt(median(k.samples.map((s) => s.ms)), 0)} / ${fmt(max(k.samples.map((s) => s.ms)), 0)} ms (${k.leaseMs + k.marginMs} ms) |`);
    if (lat) {
      L.push(`| read p50, push / control | ${fmt(lat.inside.p50, 3)} / ${fmt(lat.control.p50, 3)} ms = ${ratio(lat.inside.p50, lat.control.p50)} |`);
      L.push(`| read p99, push / control | ${fmt(lat.inside.p99, 3)} / ${fmt(lat.control.p99, 3)} ms = ${ratio(lat.inside.p99, lat.control.p99)} |`);
      L.push(`| read p50 / p99, all outside pushes | ${fmt(lat.outside.p50, 3)} / ${fmt(lat.outside.p99, 3)} ms |`);
      const pw = lat.windows;
      L.push(`| per window, median p50 / slowest read, push vs control | ${fmt(pw.push.p50, 3)} / ${fmt(pw.push.max, 2)} vs ${fmt(pw.control.p50, 3)} / ${fmt(pw.control.max, 2)} ms = ${ratio(pw.push.p50, pw.control.p50)} / ${ratio(pw.push.max, pw.control.max)} |`);
      L.push(`| windows with a read > ${fmt(pw.slowMs, 1)} ms, push vs control | ${pw.push.slow}/${pw.push.n} vs ${pw.control.slow}/${pw.control.n} |`);
    }
    L.push("");
    const md = L.join("\n");
    process.stdout.write(md);
    if (o.out) {
      writeFileSync(o.out, md);
      log(`written to ${relative(process.cwd(), o.out)}`);
    }
    ok = true;
  } finally {
    for (const s of [...live]) await stopServer(s);
    if (ok) rmSync(work, { recursive: true, force: true });
    else log(`server logs kept in ${work}`);
  }
}

// The control plane end to end: one configuration authority (with a file
// state store) and three proxies that take their phase from it, over two
// Azurite instances (old tables on one, new tables on the other), SDK
// workers on every proxy, and a whole migration driven with mtablectl.
// Along the way:
//   - kill -9 of a proxy during a push: the push completes once that
//     proxy's lease has run out; started again, the proxy rejoins;
//   - one proxy cut off from the authority: it fails closed (503
//     ServerBusy, /readyz 503), then recovers by itself when the link is
//     back;
//   - kill -9 of the authority (and so of its migrator) in the middle of
//     the copy: started again on the same state file, the migration is
//     paused at its checkpoint, and `mtablectl resume` finishes it without
//     starting the copy over.
// Afterwards `mtablectl verify` passes and every acknowledged write reads
// back, through a proxy and directly from the new table.
//
// A worker group is paused while its own proxy is down or cut off (its
// reads would fail by design there); the other proxies' workers keep going.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  admin, ctlBin, freePort, proxyStatus, readyz, repoRoot, sleep, startAzurite, startMtable, stopAll, target, waitFor,
} from "./lib/harness.mjs";
import { serviceClient, tableClient, tableName } from "./lib/clients.mjs";
import { proxySkipReason } from "./lib/targets.mjs";
import { testSeed } from "./lib/seed.mjs";
import { fmtViolations, seed, totals, verifyEnd, Worker } from "./lib/workload.mjs";

const ctl = ctlBin;
// The authority waits lease + lease/2 for a silent proxy; a restart of the
// authority must fit in what is left of the proxies' leases (a third of a
// lease is the most that can have gone since their last renewal).
const LEASE_MS = 4000;
const PARTITIONS = Array.from({ length: 20 }, (_, i) => `p${String(i).padStart(2, "0")}`);
const ROWS_PER_PARTITION = 150; // 3,000 rows: the throttled copy takes ~20 s
const COPY_RATE = 150;

// A TCP relay that can be cut (existing connections dropped, new ones
// refused) and restored: the network between one proxy and the authority.
async function startRelay(upstreamPort) {
  const port = await freePort();
  const sockets = new Set();
  let cut = false;
  const server = createServer((down) => {
    if (cut) return down.destroy();
    const up = createConnection({ host: "127.0.0.1", port: upstreamPort });
    sockets.add(down);
    sockets.add(up);
    const drop = () => {
      down.destroy();
      up.destroy();
      sockets.delete(down);
      sockets.delete(up);
    };
    down.on("error", drop).on("close", drop);
    up.on("error", drop).on("close", drop);
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  return {
    port,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      cut = false;
    },
    // Drops every relayed connection first: close() alone would wait for
    // the proxy's long polls to end, and they never do.
    close() {
      this.cut();
      return new Promise((ok) => server.close(ok));
    },
  };
}

function runCtl(adminUrl, args, { timeoutMs = 240000 } = {}) {
  return new Promise((ok) => {
    const p = spawn(ctl, ["--admin", adminUrl, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      ok({ code, signal, out, err });
    });
  });
}



// Workers of one proxy, which can be paused and resumed.
class Group {
  constructor(workers) {
    this.workers = workers;
    this.stop = false;
    this.running = null;
  }

  start() {
    this.stop = false;
    this.running = Promise.all(this.workers.map((w) => w.run(() => this.stop)));
  }

  async pause() {
    this.stop = true;
    await this.running;
    this.running = null;
  }
}

describe("control plane: an authority, three proxies, faults", { skip: proxySkipReason() }, () => {
  const s = testSeed();
  const table = tableName("cp");
  const stateDir = mkdtempSync(join(tmpdir(), "mtable-cp-"));
  let azOld = null;
  let azNew = null;
  let auth = null;
  let authArgs = null;
  const proxies = [];
  let relay = null;
  const groups = [];
  const shared = { registry: [], current: "use_old_hide_metadata" };
  shared.phase = () => shared.current;

  before(async () => {
    azOld = await startAzurite();
    azNew = await startAzurite();
    const backends = ["--old", azOld.connectionString("mtold"), "--new", azNew.connectionString("mtnew")];
    authArgs = [
      ...backends, "--state-store", `file:${join(stateDir, "state.json")}`,
      "--lease-ms", String(LEASE_MS), "--rest-lease-ms", String(LEASE_MS), "--copy-rate", String(COPY_RATE), "--copy-parallel", "4",
      "--proxy-id", "authority",
    ];
    auth = await startMtable({ name: "authority", port: await freePort(), adminPort: await freePort(), args: authArgs });
    relay = await startRelay(auth.adminPort);
    for (let i = 1; i <= 3; i++) {
      const via = i === 3 ? relay.port : auth.adminPort;
      proxies.push(await startMtable({
        name: `proxy${i}`, port: await freePort(), adminPort: await freePort(),
        args: [...backends, "--config-endpoint", `http://127.0.0.1:${via}`, "--proxy-id", `p${i}`],
      }));
    }
  });

  after(async () => {
    for (const g of groups) if (g.running) await g.pause();
    await relay?.close();
    await stopAll();
    rmSync(stateDir, { recursive: true, force: true });
  });

  test("every proxy is leased and listed by the authority", async () => {
    const st = await waitFor("three live proxies", async () => {
      const x = await proxyStatus(auth);
      return x.proxies.filter((p) => p.role === "proxy" && p.live).length === 3 ? x : null;
    });
    assert.equal(st.role, "authority");
    assert.equal(st.phase, "use_old_hide_metadata");
    for (const px of proxies) {
      const ps = await proxyStatus(px);
      assert.equal(ps.role, "proxy");
      assert.equal(ps.config_version, st.config_version);
      assert.equal((await readyz(px)).status, 200);
      // A proxy does not take phase changes itself.
      const r = await admin(px, "POST", "/admin/v1/phase", { phase: "prefer_old" });
      assert.equal(r.status, 409);
      assert.equal(r.json.error.code, "NotAuthority");
    }
  });

  test("seed through one proxy; workers on every proxy", { timeout: 60000 }, async (tc) => {
    const t1 = target({ name: "p1", kind: "proxy", endpoint: proxies[0].endpoint, proxy: proxies[0] });
    await serviceClient(t1).createTable(table);
    proxies.forEach((px, i) => {
      const t = target({ name: `p${i + 1}`, kind: "proxy", endpoint: px.endpoint, proxy: px });
      const ws = [0, 1].map((j) => new Worker({
        id: 10 * (i + 1) + j, sdk: j === 1 ? "azure-storage" : "data-tables", target: t, table,
        partitions: PARTITIONS, seed: s, shared,
      }));
      groups.push(new Group(ws));
    });
    const all = groups.flatMap((g) => g.workers);
    await seed(t1, table, all, PARTITIONS, ROWS_PER_PARTITION);
    for (const g of groups) g.start();
    await sleep(1000);
    tc.diagnostic(`seed ${s}; ${PARTITIONS.length * ROWS_PER_PARTITION} rows, ${all.length} workers`);
  });

  test("mtablectl migrate with faults: a killed proxy, a killed migrator, a cut-off proxy", { timeout: 300000 }, async (tc) => {
    // kill -9 of proxy 2, then the migration starts: its first push
    // completes once proxy 2's lease has run out; restarted, it rejoins.
    await groups[1].pause();
    await proxies[1].kill9();
    const t0 = Date.now();
    let migrate = runCtl(auth.adminUrl, ["migrate"]);
    // The authority publishes a phase before its push completes, so the
    // first push (prefer_old) is known complete once prefer_new appears.
    const pushed = await waitFor("the push of prefer_old to complete", async () => {
      const x = await proxyStatus(auth);
      return !["use_old_hide_metadata", "prefer_old"].includes(x.phase) ? x : null;
    }, 30000);
    const pushMs = Date.now() - t0;
    shared.current = pushed.phase;
    const p2 = pushed.proxies.find((p) => p.id === "p2");
    assert.ok(p2 && !p2.live && p2.config_version < pushed.config_version, JSON.stringify(p2));
    for (const id of ["p1", "p3"]) {
      assert.ok(pushed.proxies.find((p) => p.id === id).config_version >= pushed.config_version - 1);
    }
    tc.diagnostic(`first push with a dead proxy took ${pushMs} ms (lease ${LEASE_MS} ms + margin ${LEASE_MS / 2} ms)`);
    await proxies[1].start();
    const back = await proxyStatus(proxies[1]);
    assert.ok(back.config_version >= pushed.config_version, "restarted, proxy 2 serves the current phase");
    groups[1].start();

    // kill -9 of the authority (the migrator's process) mid-copy.
    const before = await waitFor("more of the copy", async () => {
      const x = await proxyStatus(auth);
      shared.current = x.phase;
      const m = x.migration;
      assert.ok(!["done", "failed", "paused"].includes(m.state) && !m.copy_done, `the copy ended before the kill: ${JSON.stringify(m)}`);
      return m.state === "copying" && m.rows_total > 0 && m.rows_done > m.rows_total * 0.5 ? x : null;
    }, 60000);
    // Started again at once: the sidecars ride out the gap on their leases.
    await auth.kill9();
    await auth.start();
    // mtablectl either gave up on the vanished endpoint (3) or saw the
    // restarted authority report the migration paused (1); never success.
    const ended = await migrate;
    assert.ok([1, 3].includes(ended.code), `mtablectl migrate: ${ended.code} ${ended.err}`);
    const restarted = await proxyStatus(auth);
    assert.equal(restarted.migration.state, "paused", JSON.stringify(restarted.migration));
    assert.equal(restarted.phase, "prefer_new");
    assert.ok(restarted.migration.rows_done > 0, "the checkpoint kept the copy's progress");
    tc.diagnostic(`killed at ${before.migration.rows_done} rows; checkpoint at ${restarted.migration.rows_done}`);

    // Resume: it continues from the checkpoint, not from zero.
    let firstAfter = null;
    const watcher = (async () => {
      while (!firstAfter) {
        const x = await proxyStatus(auth).catch(() => null);
        if (x?.migration.state === "copying") firstAfter = x.migration;
        await sleep(50);
      }
    })();
    migrate = runCtl(auth.adminUrl, ["resume"]);
    await waitFor("the resumed copy", async () => firstAfter, 30000);

    // During the resumed copy, cut proxy 3 off: it fails closed within its lease, then recovers.
    await groups[2].pause();
    relay.cut();
    const closed = await waitFor("proxy 3 to fail closed", async () => ((await readyz(proxies[2])).status === 503 ? true : null), 10000);
    assert.ok(closed);
    const t3 = target({ name: "p3", kind: "proxy", endpoint: proxies[2].endpoint, proxy: proxies[2] });
    await assert.rejects(tableClient(t3, table).getEntity("p00", "w30-00000"), (e) => {
      assert.equal(e.statusCode, 503, `a cut-off proxy answers 503, not ${e.statusCode}`);
      assert.match(String(e.code ?? e.message), /ServerBusy/);
      return true;
    });
    relay.restore();
    await waitFor("proxy 3 to recover", async () => ((await readyz(proxies[2])).status === 200 ? true : null), 15000);
    groups[2].start();

    const done = await migrate;
    firstAfter ??= { rows_done: -1 };
    await Promise.race([watcher, sleep(100)]);
    assert.equal(done.code, 0, `mtablectl resume: ${done.code}\n${done.out}\n${done.err}`);
    const st = await proxyStatus(auth);
    shared.current = st.phase;
    assert.equal(st.migration.state, "done");
    assert.equal(st.phase, "use_new_hide_metadata");
    // The first report of the resumed copy already counts what was copied
    // up to the checkpoint (the low-water mark of the parallel copy, so at
    // most a few chunks behind what was reported before the kill).
    assert.ok(firstAfter.rows_done > 0, `resumed from zero: ${JSON.stringify(firstAfter)}`);
    assert.ok(firstAfter.rows_done >= restarted.migration.rows_done - 4 * 100 - COPY_RATE,
      `resumed at ${firstAfter.rows_done}, saved progress ${restarted.migration.rows_done}`);
    for (const px of proxies) assert.equal((await proxyStatus(px)).phase, "use_new_hide_metadata");
    tc.diagnostic(`mtablectl resume output:\n${done.out.split("\n").slice(-4).join("\n")}`);
  });

  test("afterwards: verify passes and every acknowledged write is there", { timeout: 120000 }, async (tc) => {
    await sleep(500);
    for (const g of groups) await g.pause();
    const all = groups.flatMap((g) => g.workers);
    for (const w of all) if (!w.dead) await w.finalCheck();
    const v = await runCtl(auth.adminUrl, ["verify"]);
    assert.equal(v.code, 0, `mtablectl verify: ${v.out} ${v.err}`);
    const sum = totals(all);
    tc.diagnostic(`${sum.opsTotal} operations; errors ${JSON.stringify(sum.errors)}`);
    assert.equal(sum.violations.length, 0, fmtViolations(sum.violations));
    const t1 = target({ name: "p1", kind: "proxy", endpoint: proxies[0].endpoint, proxy: proxies[0] });
    const az = {
      endpoint: (a) => (a === "mtnew" ? azNew : azOld).endpoint(a),
      accounts: { mtold: azOld.accounts.mtold, mtnew: azNew.accounts.mtnew },
    };
    const end = await verifyEnd({ az, t: t1, table, workers: all });
    assert.deepEqual(end.proxy, [], end.proxy.join("\n"));
    assert.deepEqual(end.newTable, [], end.newTable.join("\n"));
    assert.deepEqual(end.oldTable, []);
    tc.diagnostic(`${end.expected} acknowledged rows present through the proxy and in the new table`);
  });
});

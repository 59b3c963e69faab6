// The control plane cannot send a fleet backwards, lose its state, wait
// for a proxy that left, or count a proxy that serves other tables:
//   - a sidecar whose authority comes back on an empty store (version 1,
//     use_old_hide_metadata, another migration) refuses that state: it
//     keeps its phase, says why in its log, /readyz and status, and fails
//     closed once its lease is over;
//   - SIGTERM: the sidecar stops being ready, finishes, gives its lease
//     back, and the next push completes at once instead of waiting a lease;
//   - a sidecar whose --old/--new differ from the authority's gets no
//     lease, is listed as mismatched, and blocks pushes while it calls;
//   - with Azure backends the authority keeps its state in the new account
//     by default (a restart finds the phase again) and refuses
//     --state-store memory;
//   - an authority started on an empty store over backends that show a
//     migration refuses to start, naming what it found, unless told the
//     phase with --recover-phase.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  admin, freePort, proxyBin, proxyStatus, pushPhase, sleep, startAzurite, startMtable, stopAll, target, toPhase, waitFor, readyz,
} from "./lib/harness.mjs";
import { serviceClient, tableClient, tableName } from "./lib/clients.mjs";
import { proxySkipReason } from "./lib/targets.mjs";

const LEASE_MS = 2000;

async function ports() {
  return { port: await freePort(), adminPort: await freePort() };
}

async function authority(name, args, where) {
  const p = where ?? (await ports());
  return startMtable({ name, ...p, args: ["--lease-ms", String(LEASE_MS), "--proxy-id", name, ...args] });
}

async function sidecar(name, auth, args = []) {
  return startMtable({
    name,
    ...(await ports()),
    args: ["--config-endpoint", auth.adminUrl, "--proxy-id", name, ...args],
  });
}



// Runs the proxy until it exits; its exit and standard error.
function runProxy(args, timeoutMs = 30000) {
  return new Promise((ok) => {
    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("MTABLE_")) env[k] = v;
    const p = spawn(proxyBin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      ok({ code, signal, err });
    });
  });
}

describe("control plane safety", { skip: proxySkipReason() }, () => {
  const dir = mkdtempSync(join(tmpdir(), "mtable-safety-"));
  // The processes' handles are unref'd: waiting for one to exit must not
  // let the event loop run dry.
  const keepAlive = setInterval(() => {}, 1000);
  after(async () => {
    clearInterval(keepAlive);
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a sidecar refuses the state of an authority restarted on an empty store", async () => {
    const where = await ports();
    const a1 = await authority("safety-a1", [], where);
    const s = await sidecar("safety-s1", a1);
    await pushPhase(a1, "prefer_old");
    const before = await proxyStatus(s);
    assert.equal(before.phase, "prefer_old");
    assert.match(before.migration_id, /^[0-9a-f]{32}$/);

    await a1.kill9();
    const a2 = await authority("safety-a1", [], where); // same address, empty memory store
    const fresh = await proxyStatus(a2);
    assert.equal(fresh.config_version, 1);
    assert.notEqual(fresh.migration_id, before.migration_id);

    // The sidecar keeps prefer_old and says why...
    const refused = await waitFor("the refusal in status", async () => {
      const st = await proxyStatus(s);
      return st.proxies[0].refused ? st : null;
    });
    assert.equal(refused.phase, "prefer_old");
    assert.equal(refused.config_version, before.config_version);
    assert.match(refused.proxies[0].refused, /another migration/);
    assert.match(refused.proxies[0].refused, /use_old_hide_metadata/);
    assert.match(refused.proxies[0].refused, /prefer_old/);
    // ...and fails closed once its lease is over, saying the same on /readyz.
    const r = await waitFor("/readyz 503", async () => {
      const x = await readyz(s);
      return x.status === 503 ? x : null;
    });
    assert.match(r.text, /another migration/);
    const t = target({ name: "s1", kind: "proxy", endpoint: s.endpoint });
    await assert.rejects(serviceClient(t).createTable(tableName("safe")), (e) => e.statusCode === 503);
    assert.match(s.process.tail(200), /error.*refused state \(version 1, use_old_hide_metadata/);
    assert.equal((await proxyStatus(s)).phase, "prefer_old");
  });

  test("SIGTERM gives the lease back: the next push does not wait for it", async () => {
    const a = await authority("safety-a2", ["--lease-ms", "10000"]);
    const s1 = await sidecar("safety-s2", a);
    const s2 = await sidecar("safety-s3", a);
    await waitFor("two live sidecars", async () => {
      const st = await proxyStatus(a);
      return st.proxies.filter((p) => p.role === "proxy" && p.live).length === 2;
    });
    process.kill(s2.process.pid, "SIGTERM");
    const exit = await s2.process.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.match(s2.process.tail(50), /lease given back/);
    const t0 = Date.now();
    await pushPhase(a, "prefer_old");
    const took = Date.now() - t0;
    assert.ok(took < 1000, `the push took ${took} ms (a kept lease would hold it 15 s)`);
    assert.equal((await proxyStatus(s1)).phase, "prefer_old");
  });

  test("after the migration, sidecars serve through an authority outage of 3 leases", async () => {
    const az = await startAzurite();
    const backends = ["--old", az.connectionString("mtold"), "--new", az.connectionString("mtnew")];
    const a = await authority("safety-a6", [...backends, "--rest-lease-ms", "60000"]);
    const s = await sidecar("safety-s6", a, backends);
    const t = target({ name: "s6", kind: "proxy", endpoint: s.endpoint });
    const name = tableName("rest");
    await serviceClient(t).createTable(name);
    await tableClient(t, name).createEntity({ partitionKey: "p", rowKey: "before", n: 1 });
    await toPhase(a, 4);
    await waitFor("the sidecar in phase 4", async () => (await proxyStatus(s)).phase === "use_new_hide_metadata");
    await sleep(500); // its acknowledgement of phase 4 earns the rest lease
    await a.kill9();
    await sleep(3 * LEASE_MS + 1000);
    assert.equal((await readyz(s)).status, 200);
    const tc = tableClient(t, name);
    await tc.createEntity({ partitionKey: "p", rowKey: "during", n: 2 });
    assert.equal((await tc.getEntity("p", "before")).n, 1);
    assert.equal((await tc.getEntity("p", "during")).n, 2);
    const me = (await proxyStatus(s)).proxies[0];
    assert.ok(me.live && me.lease_left_ms > 30000, JSON.stringify(me));
  });

  test("a sidecar with other backends is reported and blocks pushes", async () => {
    const az = await startAzurite();
    const a = await authority("safety-a3", []); // memory backends
    const odd = await startMtable({
      name: "safety-odd",
      ...(await ports()),
      ready: false,
      args: [
        "--config-endpoint", a.adminUrl, "--proxy-id", "odd",
        "--old", az.connectionString("mtold"), "--new", az.connectionString("mtnew"),
      ],
    });
    const listed = await waitFor("the mismatched sidecar in status", async () => {
      const st = await proxyStatus(a);
      return st.proxies.find((p) => p.id === "odd" && p.mismatched);
    });
    assert.equal(listed.live, false);
    assert.equal((await readyz(odd)).status, 503);
    const r = await admin(a, "POST", "/admin/v1/phase", { phase: "prefer_old" });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json?.error?.code, "FleetMismatch");
    assert.match(r.json.error.message, /odd/);
    assert.match(odd.process.tail(100), /error.*refuses this proxy.*fingerprint/);
    await odd.kill9();
    // Once it stopped calling for a lease, pushes go on.
    await waitFor("the push after the mismatched sidecar left", async () => {
      const x = await admin(a, "POST", "/admin/v1/phase", { phase: "prefer_old" });
      return x.status === 200;
    }, 4 * LEASE_MS + 5000);
  });

  test("with Azure backends the state is durable by default and a lost one is noticed", async () => {
    const az = await startAzurite();
    const backends = ["--old", az.connectionString("mtold"), "--new", az.connectionString("mtnew")];
    const where = await ports();
    let a = await authority("safety-a4", backends, where);
    const st = await proxyStatus(a);
    assert.match(st.state_store, /mtablestate/);
    assert.match(st.state_store, /mtnew/);

    // Some data, and a whole migration.
    const t = target({ name: "a4", kind: "proxy", endpoint: a.endpoint });
    const name = tableName("safe");
    await serviceClient(t).createTable(name);
    const tc = tableClient(t, name);
    for (let i = 0; i < 20; i++) await tc.createEntity({ partitionKey: `p${i % 4}`, rowKey: `r${i}`, n: i });
    const tables = [];
    for await (const x of serviceClient(t).listTables()) tables.push(x.name);
    assert.ok(!tables.includes("mtablestate"), `the state table is not the application's: ${tables}`);
    await toPhase(a, 4);
    const id = (await proxyStatus(a)).migration_id;

    // kill -9 and start again with the same flags: the phase is still there.
    await a.kill9();
    a = await authority("safety-a4", backends, where);
    const again = await proxyStatus(a);
    assert.equal(again.phase, "use_new_hide_metadata");
    assert.equal(again.migration_id, id);
    await a.kill9();

    // memory with Azure backends: refused.
    const p = await ports();
    const addr = ["--listen", `127.0.0.1:${p.port}`, "--admin-listen", `127.0.0.1:${p.adminPort}`];
    const mem = await runProxy([...addr, ...backends, "--state-store", "memory"]);
    assert.equal(mem.code, 2, mem.err);
    assert.match(mem.err, /--state-store memory .* would forget the migration's phase/);

    // An empty store over these backends: refused, naming what it found.
    const lost = await runProxy([...addr, ...backends, "--state-store", `file:${join(dir, "lost.json")}`]);
    assert.notEqual(lost.code, 0, lost.err);
    assert.match(lost.err, /the state store .* is empty, but the backends show an earlier migration/);
    assert.match(lost.err, new RegExp(`table ${name} of the new account already holds rows|state table`));
    assert.match(lost.err, /--recover-phase/);

    // Told the phase, it starts there.
    const rec = await authority("safety-a5", [...backends, "--state-store", `file:${join(dir, "rec.json")}`,
      "--recover-phase", "use_new_hide_metadata"]);
    assert.equal((await proxyStatus(rec)).phase, "use_new_hide_metadata");
    const rt = target({ name: "a5", kind: "proxy", endpoint: rec.endpoint });
    const e = await tableClient(rt, name).getEntity("p1", "r5");
    assert.equal(e.n, 5);
  });
});

// Two authority replicas on one state store (the default: a table in the
// new account), three sidecars that list both replicas, and a checked SDK
// workload on every sidecar. The leader is killed (kill -9) in the middle
// of the copy: the standby takes over by itself, resumes the migration
// from its checkpoint, and the migration completes. Throughout, every
// sidecar's /readyz, polled every 200 ms, answers 200 (no sidecar loses
// its lease), and afterwards verify passes and no acknowledged write is
// lost.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  admin, freePort, proxyStatus, sleep, startAzurite, startMtable, stopAll, target, waitFor,
} from "./lib/harness.mjs";
import { serviceClient, tableName } from "./lib/clients.mjs";
import { proxySkipReason } from "./lib/targets.mjs";
import { testSeed } from "./lib/seed.mjs";
import { fmtViolations, seed, totals, verifyEnd, Worker } from "./lib/workload.mjs";

const LEASE_MS = 4000;
const PARTITIONS = Array.from({ length: 20 }, (_, i) => `p${String(i).padStart(2, "0")}`);
const ROWS_PER_PARTITION = 150;
const COPY_RATE = 150;


async function statusOf(px) {
  return proxyStatus(px).catch(() => null);
}

describe("two authority replicas: the leader dies mid-copy", { skip: proxySkipReason() }, () => {
  const s = testSeed();
  const table = tableName("ha");
  let azOld = null;
  let azNew = null;
  const replicas = [];
  const sidecars = [];
  const workers = [];
  const shared = { registry: [], current: "use_old_hide_metadata" };
  shared.phase = () => shared.current;
  let stop = false;
  let running = null;
  const notReady = [];
  let poller = null;

  before(async () => {
    azOld = await startAzurite();
    azNew = await startAzurite();
    const backends = ["--old", azOld.connectionString("mtold"), "--new", azNew.connectionString("mtnew")];
    for (const name of ["replica-a", "replica-b"]) {
      replicas.push(await startMtable({
        name, port: await freePort(), adminPort: await freePort(), ready: false,
        args: [...backends, "--lease-ms", String(LEASE_MS), "--copy-rate", String(COPY_RATE),
          "--copy-parallel", "4", "--proxy-id", name, "--replica-id", name],
      }));
      if (replicas.length === 1) await waitFor("replica-a to lead", async () => (await statusOf(replicas[0]))?.role === "authority");
    }
    const endpoints = replicas.map((r) => r.adminUrl).join(",");
    for (let i = 1; i <= 3; i++) {
      sidecars.push(await startMtable({
        name: `ha-sidecar${i}`, port: await freePort(), adminPort: await freePort(),
        args: [...backends, "--config-endpoint", endpoints, "--proxy-id", `s${i}`],
      }));
    }
  });

  after(async () => {
    stop = true;
    await running;
    clearInterval(poller);
    await stopAll();
  });

  test("one leads, one stands by, and status says which", async () => {
    const a = await proxyStatus(replicas[0]);
    const b = await proxyStatus(replicas[1]);
    assert.equal(a.role, "authority");
    assert.equal(b.role, "standby");
    assert.equal(b.leader.id, "replica-a");
    assert.equal(b.leader.url, replicas[0].adminUrl);
    assert.match(a.state_store, /mtablestate/);
    // A standby sends authority calls to the leader.
    const r = await fetch(`${replicas[1].adminUrl}/config/v1/state`, { redirect: "manual" });
    assert.equal(r.status, 307);
    assert.equal(r.headers.get("location"), `${replicas[0].adminUrl}/config/v1/state`);
    const ready = await fetch(`${replicas[1].adminUrl}/readyz`);
    assert.equal(ready.status, 503);
    // Nor does a standby reach the backends: its table endpoint answers 503.
    const ts = target({ name: "standby", kind: "proxy", endpoint: replicas[1].endpoint });
    await assert.rejects(serviceClient(ts).createTable(tableName("standby")), (e) => e.statusCode === 503);
    // The leader lists every replica: itself and the standby, which tells
    // it that it stands by; the standby lists itself and the leader.
    const both = await waitFor("the standby in the leader's status", async () => {
      const x = await proxyStatus(replicas[0]);
      return x.replicas?.length === 2 ? x.replicas : null;
    });
    assert.deepEqual(both.map((r) => [r.id, r.role]).sort(), [["replica-a", "authority"], ["replica-b", "standby"]]);
    assert.equal(both.find((r) => r.id === "replica-b").url, replicas[1].adminUrl);
    assert.deepEqual(b.replicas.map((r) => [r.id, r.role]).sort(), [["replica-a", "authority"], ["replica-b", "standby"]]);
    await waitFor("three live sidecars", async () =>
      (await proxyStatus(replicas[0])).proxies.filter((p) => p.role === "proxy" && p.live).length === 3);
  });

  test("kill -9 of the leader mid-copy: the standby takes over and finishes", { timeout: 240000 }, async (tc) => {
    const t1 = target({ name: "s1", kind: "proxy", endpoint: sidecars[0].endpoint, proxy: sidecars[0] });
    await serviceClient(t1).createTable(table);
    sidecars.forEach((px, i) => {
      const t = target({ name: `s${i + 1}`, kind: "proxy", endpoint: px.endpoint, proxy: px });
      for (const j of [0, 1]) {
        workers.push(new Worker({
          id: 10 * (i + 1) + j, sdk: j === 1 ? "azure-storage" : "data-tables", target: t, table,
          partitions: PARTITIONS, seed: s, shared,
        }));
      }
    });
    await seed(t1, table, workers, PARTITIONS, ROWS_PER_PARTITION);
    running = Promise.all(workers.map((w) => w.run(() => stop)));
    poller = setInterval(async () => {
      for (const px of sidecars) {
        const r = await fetch(`${px.adminUrl}/readyz`, { signal: AbortSignal.timeout(1000) })
          .then((x) => x.status).catch((e) => String(e));
        if (r !== 200) notReady.push(`${px.endpoint}: ${r} at ${new Date().toISOString()}`);
      }
    }, 200);

    const started = await admin(replicas[0], "POST", "/admin/v1/migrate");
    assert.equal(started.status, 202, started.text);
    const before = await waitFor("a third of the copy", async () => {
      const x = await statusOf(replicas[0]);
      if (x) shared.current = x.phase;
      return x?.migration.state === "copying" && x.migration.rows_total > 0 &&
        x.migration.rows_done > x.migration.rows_total / 3 ? x : null;
    }, 60000);
    const t0 = Date.now();
    await replicas[0].kill9();
    const took = await waitFor("the standby to take over", async () => {
      const x = await statusOf(replicas[1]);
      return x?.role === "authority" ? x : null;
    }, 30000);
    tc.diagnostic(`killed at ${before.migration.rows_done} of ${before.migration.rows_total} rows; ` +
      `replica-b led after ${Date.now() - t0} ms (term ${took.leader.term})`);
    const done = await waitFor("the migration to finish under the new leader", async () => {
      const x = await statusOf(replicas[1]);
      if (x) shared.current = x.phase;
      assert.notEqual(x?.migration.state, "failed", JSON.stringify(x?.migration));
      return x?.migration.state === "done" ? x : null;
    }, 180000);
    assert.equal(done.phase, "use_new_hide_metadata");
    await sleep(500);
    stop = true;
    await running;
    clearInterval(poller);
    assert.deepEqual(notReady, [], "a sidecar was not ready during the failover");
  });

  test("afterwards: verify passes and every acknowledged write is there", { timeout: 120000 }, async (tc) => {
    for (const w of workers) if (!w.dead) await w.finalCheck();
    const v = await admin(replicas[1], "POST", "/admin/v1/verify");
    assert.equal(v.status, 200, v.text);
    assert.equal(v.json.ok, true, v.text);
    const sum = totals(workers);
    tc.diagnostic(`${sum.opsTotal} operations; errors ${JSON.stringify(sum.errors)}`);
    assert.equal(sum.violations.length, 0, fmtViolations(sum.violations));
    const t1 = target({ name: "s1", kind: "proxy", endpoint: sidecars[0].endpoint, proxy: sidecars[0] });
    const az = {
      endpoint: (a) => (a === "mtnew" ? azNew : azOld).endpoint(a),
      accounts: { mtold: azOld.accounts.mtold, mtnew: azNew.accounts.mtnew },
    };
    const end = await verifyEnd({ az, t: t1, table, workers });
    assert.deepEqual(end.proxy, [], end.proxy.join("\n"));
    assert.deepEqual(end.newTable, [], end.newTable.join("\n"));
    assert.deepEqual(end.oldTable, []);
    tc.diagnostic(`${end.expected} acknowledged rows present through a sidecar and in the new table`);
  });
});

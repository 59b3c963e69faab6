// Migrating back, over two Azurite accounts, with an authority and two
// sidecars: a checked SDK workload on one table (three workers on each
// sidecar, in the same partitions, each owning its own row keys; inserts,
// updates, deletes, transactions and reads whose acknowledged results are
// checked, also across the sidecars) runs through a migration forward with
// --old-after delete and then back, while a second table holds rows nobody
// writes. `mtablectl migrate --reverse` swaps the accounts' roles in one
// push; the run is paused right after the swap, stopped in prefer_old of
// the swapped roles and aborted there, which leaves the fleet in phase 0 of
// the swapped roles with every acknowledged row readable and no protocol
// data; a plain `mtablectl migrate` then runs in the swapped roles, held in
// prefer_new, to the end. At the end every acknowledged row is in the old
// account, the new account's tables are empty, verify is ok, and status,
// /metrics and the sidecars' /readyz show the direction. Before the forward
// migration is done, --reverse is refused with the reason. And with
// --table-map and --old-after keep: the migration back is refused while the
// old account holds the rollback copy, naming the table; once the operator
// deleted it there, the data goes back under the application's name.
//
// Environment: MTABLE_PROXY_BIN (see lib/harness.mjs); MTABLE_E2E_SEED
// replays the workload's random choices.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import {
  admin, ctlBin, freePort, proxyStatus, readyz, sleep, startAzurite, startMtable, stopAll, target, waitFor,
} from "./lib/harness.mjs";
import { all, serviceClient, tableClient, tableName } from "./lib/clients.mjs";
import { backendSkipReason, proxySkipReason } from "./lib/targets.mjs";
import { testSeed } from "./lib/seed.mjs";
import { compareRows, fmtViolations, makeWorkers, readTyped, seed, totals, workWhile } from "./lib/workload.mjs";

const skip = proxySkipReason() || backendSkipReason();

// mtablectl without blocking the workers' event loop.
function ctl(args) {
  return new Promise((resolve) => {
    const p = spawn(ctlBin, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

async function metric(px, name) {
  const r = await fetch(`${px.adminUrl}/metrics`);
  const m = (await r.text()).match(new RegExp(`^${name} (\\S+)$`, "m"));
  return m ? Number(m[1]) : null;
}

describe("mtablectl migrate --reverse", { skip }, () => {
  const s = testSeed();
  const tables = [tableName("backa"), tableName("backb")];
  let az;
  let auth;
  const sidecars = [];
  let direct;

  before(async () => {
    az = await startAzurite();
    const backends = ["--old", az.connectionString("mtold"), "--new", az.connectionString("mtnew")];
    auth = await startMtable({
      name: "rev-authority", port: await freePort(), adminPort: await freePort(),
      args: [...backends, "--lease-ms", "3000", "--proxy-id", "authority"],
    });
    for (let i = 1; i <= 2; i++) {
      sidecars.push(await startMtable({
        name: `rev-sidecar${i}`, port: await freePort(), adminPort: await freePort(),
        args: [...backends, "--config-endpoint", auth.adminUrl, "--proxy-id", `s${i}`],
      }));
    }
    direct = (a) => ({ endpoint: az.endpoint(a), accountName: a, accountKey: az.accounts[a] });
  });
  after(stopAll);

  test("there and back under a checked workload through two sidecars", { timeout: 120000 }, async (tc) => {
    assert.ok(ctlBin, "mtablectl not built");
    tc.diagnostic(`seed ${s} (replay with MTABLE_E2E_SEED=${s})`);
    const targets = sidecars.map((px, i) => target({ name: `s${i + 1}`, kind: "proxy", endpoint: px.endpoint, proxy: px }));
    for (const t of tables) await serviceClient(targets[0]).createTable(t);

    // Refused before the forward migration is done, with the reason.
    const early = spawnSync(ctlBin, ["--admin", auth.adminUrl, "migrate", "--reverse"], { encoding: "utf8", timeout: 30000 });
    assert.equal(early.status, 1, early.stdout + early.stderr);
    assert.match(early.stderr, /MigrationNotDone|finished migration/);
    const r409 = await admin(auth, "POST", "/admin/v1/migrate", { reverse: true });
    assert.equal(r409.status, 409, r409.text);
    assert.equal(r409.json?.error?.code, "MigrationNotDone", r409.text);
    assert.match(r409.text, /use_old_hide_metadata/);

    // Both sidecars' workers on the first table, in the same partitions:
    // workers w0-w2 through s1, w3-w5 through s2 (a worker owns the row keys
    // of its number), one registry so that each reads the others' rows too.
    // The second table's rows are seeded once and only read at the end.
    const parts = ["p0", "p1", "p2"];
    const registry = [];
    const sets = targets.map((t, i) =>
      makeWorkers({ t, table: tables[0], partitions: parts, seed: s + 7 * i, count: 3, firstId: 3 * i, registry }));
    const workers = sets.flatMap((x) => x.workers);
    for (let i = 0; i < 2; i++) await seed(targets[i], tables[0], sets[i].workers, parts, 20);
    const still = makeWorkers({ t: targets[1], table: tables[1], partitions: parts, seed: s, count: 1, firstId: 6 });
    await seed(targets[1], tables[1], still.workers, parts, 10);
    const note = (st) => {
      for (const x of sets) x.shared.current = `${st.direction}:${st.phase}`;
    };
    const waitMig = (what, ok) => waitFor(`migration ${what}`, async () => {
      const st = await proxyStatus(auth);
      note(st);
      if (st.migration.state === "failed") throw new Error(JSON.stringify(st.migration));
      return ok(st) ? st : null;
    }, 90000);
    const runTo = (what) => waitMig(what, (st) => st.migration.state === "done");
    const phasesSeen = new Set();
    const watch = () => setInterval(async () => {
      try {
        const st = await proxyStatus(auth);
        phasesSeen.add(`${st.direction}:${st.phase}`);
        note(st);
      } catch { /* the next poll tells */ }
    }, 100);
    const expectedNow = () => [workers, still.workers].map((ws) => ws.flatMap((x) => x.expected()));

    // Forward to the end; then back, held at each step for the workers: the
    // swap, paused right after it, a stop in prefer_old of the swapped roles,
    // and an abort there.
    let forward = null;
    let back = null;
    const out = {};
    let timer = null;
    const first = await workWhile(workers, async () => {
      await sleep(600);
      const r = await admin(auth, "POST", "/admin/v1/migrate", { old_after: "delete" });
      assert.equal(r.status, 202, r.text);
      forward = await runTo("forward done");
      assert.equal(forward.direction, "forward");
      const oldNames = (await all(serviceClient(direct("mtold")).listTables())).map((x) => x.name);
      for (const t of tables) assert.ok(!oldNames.includes(t), `${t} not deleted from the old account`);
      await sleep(800);
      timer = watch();
      // Sidecar s2, stopped, holds the swap (its acknowledgement) until the
      // pause is in; the run then stops before its next push.
      const held = sidecars[1].process.pid;
      process.kill(held, "SIGSTOP");
      try {
        out.reverse = await ctl(["--admin", auth.adminUrl, "migrate", "--reverse", "--no-wait"]);
        assert.equal(out.reverse.status, 0, out.reverse.stdout + out.reverse.stderr);
        const p = await admin(auth, "POST", "/admin/v1/migrate/pause");
        assert.equal(p.status, 202, p.text);
      } finally {
        process.kill(held, "SIGCONT");
      }
      const paused = await waitMig("paused after the swap", (st) => st.migration.state === "paused");
      assert.equal(paused.direction, "reverse");
      assert.equal(paused.phase, "use_old_hide_metadata");
      await sleep(600);
      const u = await admin(auth, "POST", "/admin/v1/migrate/resume", { until: "prefer_old" });
      assert.equal(u.status, 202, u.text);
      await waitMig("stopped in prefer_old", (st) => st.migration.state === "idle" && st.phase === "prefer_old");
      await sleep(1000);
      out.abort = await ctl(["--admin", auth.adminUrl, "abort"]);
      await sleep(600);
    }).finally(() => clearInterval(timer));
    if (first.error) throw first.error;
    assert.match(out.reverse.stdout, /migration back started/);
    assert.equal(out.abort.status, 0, out.abort.stdout + out.abort.stderr);
    // prefer_old's writes marked their partitions in the account playing old
    // (the new one); the abort deleted those rows there.
    const deleted = /(\d+) protocol rows deleted/.exec(out.abort.stdout);
    assert.ok(deleted && Number(deleted[1]) > 0, out.abort.stdout);
    tc.diagnostic(out.abort.stdout.trim());

    // The abort left the fleet in phase 0 of the swapped roles: every
    // acknowledged row through both sidecars and in the new account (which
    // plays old), no protocol data, nothing in the old account.
    const aborted = await proxyStatus(auth);
    assert.equal(aborted.direction, "reverse");
    assert.equal(aborted.phase, "use_old_hide_metadata");
    assert.equal(aborted.migration.state, "idle", JSON.stringify(aborted.migration));
    for (const px of sidecars) assert.equal((await proxyStatus(px)).phase, "use_old_hide_metadata");
    for (const [i, expected] of expectedNow().entries()) {
      for (const t of targets) {
        assert.deepEqual(compareRows(await readTyped(t, tables[i]), expected, `${tables[i]} through ${t.name} after the abort`), []);
      }
      assert.deepEqual(compareRows(await readTyped(direct("mtnew"), tables[i]), expected, `${tables[i]} in the new account after the abort`), []);
      assert.equal((await all(tableClient(direct("mtold"), tables[i]).listEntities())).length, 0, `${tables[i]} in the old account after the abort`);
    }

    // A plain migrate now runs in the swapped roles: held in prefer_new,
    // then to the end.
    const second = await workWhile(workers, async () => {
      await sleep(400);
      timer = watch();
      out.until = await ctl(["--admin", auth.adminUrl, "migrate", "--until", "prefer_new"]);
      assert.equal(out.until.status, 0, out.until.stdout + out.until.stderr);
      const held = await proxyStatus(auth);
      assert.equal(held.direction, "reverse");
      assert.equal(held.phase, "prefer_new");
      await sleep(1000);
      out.migrate = await ctl(["--admin", auth.adminUrl, "migrate"]);
      assert.equal(out.migrate.status, 0, out.migrate.stdout + out.migrate.stderr);
      back = await runTo("back done");
      await sleep(800);
    }).finally(() => clearInterval(timer));
    if (second.error) throw second.error;

    const sum = totals(workers);
    assert.deepEqual(sum.violations, [], fmtViolations(sum.violations));
    for (const x of workers) assert.ok(x.stats.ok > 0, `${x.name} acknowledged nothing`);
    tc.diagnostic(`ops by phase: ${JSON.stringify(sum.byPhase)}`);
    for (const ph of ["reverse:use_old_hide_metadata", "reverse:prefer_old", "reverse:prefer_new"]) {
      assert.ok((sum.byPhase[ph] ?? 0) > 0, `no operation in ${ph}: ${JSON.stringify(sum.byPhase)}`);
      assert.ok(phasesSeen.has(ph), [...phasesSeen].join(","));
    }

    assert.equal(back.phase, "use_new_hide_metadata");
    assert.equal(back.direction, "reverse");
    assert.equal(back.migration.last_verify.ok, true, JSON.stringify(back.migration));
    for (const [i, expected] of expectedNow().entries()) {
      assert.ok(expected.length > 0);
      assert.deepEqual(compareRows(await readTyped(direct("mtold"), tables[i]), expected, `${tables[i]} in the old account`), []);
      for (const t of targets) {
        assert.deepEqual(compareRows(await readTyped(t, tables[i]), expected, `${tables[i]} through ${t.name}`), []);
      }
      assert.equal((await all(tableClient(direct("mtnew"), tables[i]).listEntities())).length, 0, `${tables[i]} emptied in the new account`);
    }
    const v = await admin(auth, "POST", "/admin/v1/verify");
    assert.equal(v.status, 200, v.text);
    assert.equal(v.json.ok, true, v.text);

    // Every proxy shows the direction.
    for (const px of sidecars) {
      const st = await proxyStatus(px);
      assert.equal(st.direction, "reverse");
      const rz = await readyz(px);
      assert.equal(rz.status, 200, rz.text);
      assert.match(rz.text, /direction reverse/);
    }
    assert.equal(await metric(auth, "mtable_direction_reversed"), 1);
    const shown = spawnSync(ctlBin, ["--admin", auth.adminUrl, "status"], { encoding: "utf8", timeout: 30000 });
    assert.match(shown.stdout, /direction\s+reverse/);
  });
});

describe("migrate --reverse with a renamed table and a kept rollback copy", { skip }, () => {
  const app = tableName("orders");
  const renamed = tableName("orders2026");
  after(stopAll);

  test("refused over the kept copy, then back under the old name once it is gone", { timeout: 90000 }, async () => {
    assert.ok(ctlBin, "mtablectl not built");
    const az = await startAzurite();
    const px = await startMtable({
      name: "rev-map", port: await freePort(), adminPort: await freePort(),
      args: ["--old", az.connectionString("mtold"), "--new", az.connectionString("mtnew"), "--table-map", `${app}=${renamed}`],
    });
    const proxy = target({ name: "proxy", kind: "proxy", endpoint: px.endpoint, proxy: px });
    const direct = (a) => ({ endpoint: az.endpoint(a), accountName: a, accountKey: az.accounts[a] });
    await serviceClient(proxy).createTable(app);
    const c = tableClient(proxy, app);
    const rows = [];
    for (let i = 0; i < 60; i++) rows.push({ partitionKey: `p${i % 3}`, rowKey: `r${String(i).padStart(3, "0")}`, n: i });
    for (let p = 0; p < 3; p++) await c.submitTransaction(rows.filter((r) => r.partitionKey === `p${p}`).map((e) => ["create", e]));
    let r = spawnSync(ctlBin, ["--admin", px.adminUrl, "migrate", "--old-after", "keep"], { encoding: "utf8", timeout: 60000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // Written after the migration: in the new account only.
    await c.upsertEntity({ partitionKey: "p0", rowKey: "late", n: 1000 }, "Replace");
    await c.deleteEntity("p1", "r001");
    const expected = rows.filter((e) => e.rowKey !== "r001").concat([{ partitionKey: "p0", rowKey: "late", n: 1000 }])
      .map((e) => ({ pk: e.partitionKey, rk: e.rowKey, props: { n: e.n } }));

    r = spawnSync(ctlBin, ["--admin", px.adminUrl, "migrate", "--reverse"], { encoding: "utf8", timeout: 60000 });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /ReverseTargetNotEmpty/);
    assert.match(r.stderr, new RegExp(app));
    assert.equal((await proxyStatus(px)).direction, "forward", "nothing swapped");

    await serviceClient(direct("mtold")).deleteTable(app); // the operator drops the copy
    r = spawnSync(ctlBin, ["--json", "--admin", px.adminUrl, "migrate", "--reverse"], { encoding: "utf8", timeout: 60000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const st = JSON.parse(r.stdout);
    assert.equal(st.direction, "reverse");
    assert.equal(st.migration.state, "done");
    assert.equal(st.migration.last_verify.ok, true, JSON.stringify(st.migration));
    assert.deepEqual(compareRows(await readTyped(direct("mtold"), app), expected, "old account, old name"), []);
    assert.deepEqual(compareRows(await readTyped(proxy, app), expected, "through the proxy"), []);
    assert.equal((await all(tableClient(direct("mtnew"), renamed).listEntities())).length, 0, "new account emptied");
    const listed = (await all(serviceClient(proxy).listTables())).map((x) => x.name);
    assert.ok(listed.includes(app) && !listed.includes(renamed), listed.join(","));
  });
});

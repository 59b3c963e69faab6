// What an operator chooses about a migration, over two Azurite accounts:
//   - --table-map: a table renamed by the migration. Applications keep
//     using its old name through the proxy (listing, reads and writes of a
//     checked SDK workload across the whole migration); at the end the new
//     account holds the data under the new name and nothing under the old.
//   - going back: under a checked workload, a step back from prefer_old to
//     use_old_hide_metadata works, one from prefer_new is refused with the
//     reason, and the migration then completes; mtablectl abort in
//     prefer_old takes the fleet back to phase 0 and leaves old exactly as
//     the application wrote it (no protocol row), new empty.
//   - --old-after keep and delete: the old table keeps the application's
//     rows without protocol rows, or is deleted; verify checks either.
//
// Environment: MTABLE_PROXY_BIN (see lib/harness.mjs); MTABLE_E2E_SEED
// replays the workload's random choices.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  admin, ctlBin, freePort, proxyBin, proxyStatus, repoRoot, sleep, startAzurite, startMtable, stopAll, target, waitFor,
} from "./lib/harness.mjs";
import { all, serviceClient, tableClient, tableName } from "./lib/clients.mjs";
import { backendSkipReason, proxySkipReason } from "./lib/targets.mjs";
import { testSeed } from "./lib/seed.mjs";
import {
  compareRows, fmtViolations, makeWorkers, readTyped, seed, totals, workDuringMigration, workWhile,
} from "./lib/workload.mjs";

const skip = proxySkipReason() || backendSkipReason();
const PARTITIONS = ["p0", "p1", "p2", "p3"];

// A proxy over accounts mtold and mtnew of one Azurite, with extra flags.
async function startWorld(az, args = []) {
  const px = await startMtable({
    name: "proxy",
    port: await freePort(),
    adminPort: await freePort(),
    args: ["--old", az.connectionString("mtold"), "--new", az.connectionString("mtnew"), ...args],
  });
  const proxy = target({ name: "proxy", kind: "proxy", endpoint: px.endpoint, proxy: px });
  const direct = (a) => ({ endpoint: az.endpoint(a), accountName: a, accountKey: az.accounts[a] });
  return { px, proxy, old: direct("mtold"), neu: direct("mtnew") };
}

const names = async (t) => (await all(serviceClient(t).listTables())).map((x) => x.name);

describe("a table renamed by the migration (--table-map)", { skip }, () => {
  const s = testSeed();
  const app = tableName("orders");
  const renamed = tableName("orders2026");
  const plain = tableName("plain");
  let az;
  let w;

  before(async () => {
    az = await startAzurite();
    w = await startWorld(az, ["--table-map", `${app}=${renamed}`]);
  });
  after(stopAll);

  test("applications use the old name throughout; the new account ends with the new name", { timeout: 150000 }, async (tc) => {
    tc.diagnostic(`seed ${s} (replay with MTABLE_E2E_SEED=${s}); ${app} -> ${renamed}`);
    const svc = serviceClient(w.proxy);
    await svc.createTable(app);
    await svc.createTable(plain);
    await tableClient(w.proxy, plain).createEntity({ partitionKey: "p", rowKey: "r", v: 1 });
    // Created under each account's own name.
    assert.ok((await names(w.old)).includes(app));
    assert.ok((await names(w.neu)).includes(renamed));
    assert.ok(!(await names(w.neu)).includes(app));
    const listed = await names(w.proxy);
    assert.ok(listed.includes(app) && listed.includes(plain), listed.join(","));
    assert.ok(!listed.includes(renamed), listed.join(","));

    const { workers, shared } = makeWorkers({ t: w.proxy, table: app, partitions: PARTITIONS, seed: s, count: 3 });
    await seed(w.proxy, app, workers, PARTITIONS, 60);
    const run = await workDuringMigration({
      px: w.px, workers, shared, preludeMs: 800, afterMs: 800,
      stages: [{ until: "prefer_new", dwellMs: 800 }],
    });
    if (run.migError) throw run.migError;
    const sum = totals(workers);
    assert.deepEqual(sum.violations, [], fmtViolations(sum.violations));
    assert.equal(run.mig.final.phase, "use_new_hide_metadata");
    assert.equal(run.mig.final.migration.last_verify.ok, true, JSON.stringify(run.mig.final.migration));

    const expected = workers.flatMap((x) => x.expected());
    assert.deepEqual(compareRows(await readTyped(w.proxy, app), expected, "through the proxy"), []);
    assert.deepEqual(compareRows(await readTyped(w.neu, renamed), expected, "new account, new name"), []);
    assert.equal((await all(tableClient(w.old, app).listEntities())).length, 0, "old emptied");
    assert.ok(!(await names(w.neu)).includes(app), "no table of the old name in the new account");
    assert.equal((await all(tableClient(w.neu, plain).listEntities())).length, 1, "an unmapped table keeps its name");
    const after = await names(w.proxy);
    assert.ok(after.includes(app) && !after.includes(renamed), after.join(","));

    // Deleting through the proxy deletes the application's table in both accounts.
    await svc.deleteTable(app);
    assert.ok(!(await names(w.neu)).includes(renamed));
    assert.ok(!(await names(w.old)).includes(app));
    assert.equal((await proxyStatus(w.px)).phase, "use_new_hide_metadata");
  });
});

// Polls the status until the run is idle (stopped at --until) or done.
async function waitRun(px, state, shared) {
  return waitFor(`migration ${state}`, async () => {
    const st = await proxyStatus(px);
    if (shared) shared.current = st.phase;
    if (st.migration.state === "failed") throw new Error(JSON.stringify(st.migration));
    return st.migration.state === state ? st : null;
  }, 120000);
}

async function phase(px, name, shared) {
  const r = await admin(px, "POST", "/admin/v1/phase", { phase: name });
  if (r.status === 200 && shared) shared.current = r.json.phase;
  return r;
}

describe("going back before any partition is switched", { skip }, () => {
  const s = testSeed();
  let az;

  before(async () => {
    az = await startAzurite();
  });
  after(stopAll);

  test("under a checked workload: back from prefer_old works, from prefer_new it is refused; the migration then completes", { timeout: 150000 }, async (tc) => {
    tc.diagnostic(`seed ${s} (replay with MTABLE_E2E_SEED=${s})`);
    const w = await startWorld(az);
    const table = tableName("back");
    await serviceClient(w.proxy).createTable(table);
    const { workers, shared } = makeWorkers({ t: w.proxy, table, partitions: PARTITIONS, seed: s, count: 3 });
    await seed(w.proxy, table, workers, PARTITIONS, 40);
    let refused = null;
    let final = null;
    const { error } = await workWhile(workers, async () => {
      await sleep(500);
      let r = await admin(w.px, "POST", "/admin/v1/migrate", { until: "prefer_old" });
      assert.equal(r.status, 202, r.text);
      await waitRun(w.px, "idle", shared);
      assert.equal(shared.current, "prefer_old");
      await sleep(800);
      r = await phase(w.px, "use_old_hide_metadata", shared);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.phase, "use_old_hide_metadata");
      await sleep(800);
      assert.equal((await phase(w.px, "prefer_old", shared)).status, 200);
      await sleep(500);
      assert.equal((await phase(w.px, "prefer_new", shared)).status, 200);
      await sleep(800);
      refused = await phase(w.px, "prefer_old", shared);
      r = await admin(w.px, "POST", "/admin/v1/abort");
      assert.equal(r.status, 409, r.text);
      assert.equal(r.json?.error?.code, "AbortNotAllowed", r.text);
      r = await admin(w.px, "POST", "/admin/v1/migrate");
      assert.equal(r.status, 202, r.text);
      final = await waitRun(w.px, "done", shared);
      await sleep(500);
    });
    if (error) throw error;
    assert.equal(refused.status, 409, refused.text);
    assert.match(refused.text, /PhaseTransitionNotAllowed/);
    assert.match(refused.text, /only from prefer_old/);
    assert.match(refused.text, /switches its partition/);
    const sum = totals(workers);
    assert.deepEqual(sum.violations, [], fmtViolations(sum.violations));
    for (const x of workers) assert.ok(x.stats.ok > 0, `${x.name} acknowledged nothing`);
    assert.ok((sum.byPhase.use_old_hide_metadata ?? 0) > 0 && (sum.byPhase.prefer_old ?? 0) > 0, JSON.stringify(sum.byPhase));
    assert.equal(final.migration.last_verify.ok, true, JSON.stringify(final.migration));
    const expected = workers.flatMap((x) => x.expected());
    assert.deepEqual(compareRows(await readTyped(w.proxy, table), expected, "through the proxy"), []);
    assert.deepEqual(compareRows(await readTyped(w.neu, table), expected, "new table"), []);
  });

  test("mtablectl abort in prefer_old: phase 0 again, old as the application wrote it, new empty", { timeout: 120000 }, async (tc) => {
    assert.ok(ctlBin, "mtablectl not built");
    const az2 = await startAzurite();
    const w = await startWorld(az2);
    const table = tableName("abort");
    await serviceClient(w.proxy).createTable(table);
    const { workers, shared } = makeWorkers({ t: w.proxy, table, partitions: PARTITIONS, seed: s + 1, count: 3 });
    await seed(w.proxy, table, workers, PARTITIONS, 40);
    let aborted = null;
    const { error } = await workWhile(workers, async () => {
      const r = await admin(w.px, "POST", "/admin/v1/migrate", { until: "prefer_old" });
      assert.equal(r.status, 202, r.text);
      await waitRun(w.px, "idle", shared);
      await sleep(1000);
      aborted = spawnSync(ctlBin, ["--json", "--admin", w.px.adminUrl, "abort"], { encoding: "utf8", timeout: 60000 });
      shared.current = (await proxyStatus(w.px)).phase;
      await sleep(800);
    });
    if (error) throw error;
    assert.equal(aborted.status, 0, aborted.stderr);
    const out = JSON.parse(aborted.stdout);
    assert.equal(out.phase, "use_old_hide_metadata");
    assert.ok(out.protocol_rows_deleted > 0, aborted.stdout); /* prefer_old's guarded writes made some */
    tc.diagnostic(`abort deleted ${out.protocol_rows_deleted} protocol rows`);
    const sum = totals(workers);
    assert.deepEqual(sum.violations, [], fmtViolations(sum.violations));
    const st = await proxyStatus(w.px);
    assert.equal(st.phase, "use_old_hide_metadata");
    assert.equal(st.migration.state, "idle");
    const expected = workers.flatMap((x) => x.expected());
    assert.deepEqual(compareRows(await readTyped(w.old, table), expected, "old table"), []);
    assert.equal((await all(tableClient(w.neu, table).listEntities())).length, 0, "new holds nothing");
  });
});

describe("what becomes of the old table (--old-after)", { skip }, () => {
  after(stopAll);

  async function migrated(choice) {
    const az = await startAzurite();
    const w = await startWorld(az);
    const table = tableName(choice);
    await serviceClient(w.proxy).createTable(table);
    const rows = [];
    for (let i = 0; i < 250; i++) rows.push({ partitionKey: `p${i % 5}`, rowKey: `r${String(i).padStart(4, "0")}`, n: i });
    const c = tableClient(w.proxy, table);
    for (let p = 0; p < 5; p++) {
      await c.submitTransaction(rows.filter((r) => r.partitionKey === `p${p}`).map((e) => ["create", e]));
    }
    const r = spawnSync(ctlBin, ["--json", "--admin", w.px.adminUrl, "migrate", "--old-after", choice], { encoding: "utf8", timeout: 120000 });
    assert.equal(r.status, 0, r.stderr);
    const st = await proxyStatus(w.px);
    assert.equal(st.migration.state, "done", JSON.stringify(st.migration));
    assert.equal(st.migration.old_after, choice);
    assert.equal(st.migration.last_verify.ok, true, JSON.stringify(st.migration.last_verify));
    const v = await admin(w.px, "POST", "/admin/v1/verify");
    assert.equal(v.status, 200, v.text);
    assert.equal(v.json.ok, true, v.text);
    const expected = rows.map((e) => ({ pk: e.partitionKey, rk: e.rowKey, props: { n: e.n } }));
    assert.deepEqual(compareRows(await readTyped(w.proxy, table), expected, "through the proxy"), []);
    assert.deepEqual(compareRows(await readTyped(w.neu, table), expected, "new table"), []);
    return { w, table, expected, verify: v.json };
  }

  test("keep: the old table keeps the application's rows, without protocol rows", { timeout: 120000 }, async () => {
    assert.ok(ctlBin, "mtablectl not built");
    const { w, table, expected, verify } = await migrated("keep");
    assert.match(verify.summary, /old keeps 250 rows of the application and no protocol row/);
    assert.equal(verify.new_rows, 250);
    assert.deepEqual(compareRows(await readTyped(w.old, table), expected, "old table"), []);
  });

  test("delete: the old table is gone from the old account, the data in new", { timeout: 120000 }, async () => {
    assert.ok(ctlBin, "mtablectl not built");
    const { w, table, verify } = await migrated("delete");
    assert.match(verify.summary, /every old table is deleted/);
    assert.equal(verify.old_tables_left, 0);
    assert.equal(verify.tables_skipped, 0, "an old table deleted on purpose is checked, not skipped");
    assert.equal(verify.new_rows, 250);
    assert.ok(!(await names(w.old)).includes(table), "the old account still lists it");
    assert.ok((await names(w.proxy)).includes(table), "applications still see it");
  });
});

// What an operator chooses about a migration, over two Azurite accounts:
//   - --table-map: a table renamed by the migration. Applications keep
//     using its old name through the proxy (listing, reads and writes of a
//     checked SDK workload across the whole migration); at the end the new
//     account holds the data under the new name and nothing under the old.
//
// Environment: MTABLE_PROXY_BIN (see lib/harness.mjs); MTABLE_E2E_SEED
// replays the workload's random choices.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  freePort, proxyStatus, startAzurite, startMtable, stopAll, target,
} from "./lib/harness.mjs";
import { all, serviceClient, tableClient, tableName } from "./lib/clients.mjs";
import { backendSkipReason, proxySkipReason } from "./lib/targets.mjs";
import { testSeed } from "./lib/seed.mjs";
import {
  compareRows, fmtViolations, makeWorkers, readTyped, seed, totals, workDuringMigration,
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

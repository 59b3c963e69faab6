// A live migration under load: the proxy on two Azurite accounts (old and
// new), a data set seeded in phase 0, then four SDK workers (three on
// @azure/data-tables, one on the legacy azure-storage) running a random
// mixed workload -- inserts, upserts (replace and merge), updates and
// deletes with kept ETags (412 expected where an ETag is stale on
// purpose), transactions of several operations in one partition, point
// reads, filtered and paged queries -- for the whole run of the built-in
// migrator and a little after. The migrator is started with POST
// /admin/v1/migrate {"until": ...} to dwell in prefer_old, in prefer_new
// after the copy and in use_new_with_tombstones (phases it otherwise passes
// in an instant), and then run to done. Each worker owns its row keys, so it knows
// exactly what every one of them must hold (lib/workload.mjs).
//
// Afterwards: every acknowledged write reads back through the proxy as
// modelled, and the same in the new table read directly; the new table
// holds no _mtable_ row or property; the old table is empty.
//
// MTABLE_E2E_SEED replays a run's random choices (the seed is printed).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  PHASES, proxyStatus, startAzurite, startProxyOn, stopAll, stopProxy, target,
} from "./lib/harness.mjs";
import { serviceClient, tableName } from "./lib/clients.mjs";
import { proxySkipReason } from "./lib/targets.mjs";
import { testSeed } from "./lib/seed.mjs";
import {
  fmtCounts, fmtViolations, makeWorkers, seed, totals, verifyEnd, workDuringMigration,
} from "./lib/workload.mjs";

const PARTITIONS = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"];
const ROWS_PER_PARTITION = 120;
const WORKERS = 4;
// The migrator pauses in the phases it otherwise passes in an instant (and
// once in prefer_new after its copy, which it then runs a second time), so
// that the workers spend time in every phase.
const STAGES = [
  { until: "prefer_old", dwellMs: 1500 },
  { until: "prefer_new", dwellMs: 1000 },
  { until: "use_new_with_tombstones", dwellMs: 1500 },
];

describe("live migration under a mixed SDK workload", { skip: proxySkipReason() }, () => {
  const s = testSeed();
  let az = null;
  let px = null;
  let t = null;
  const table = tableName("live");
  let run = null;
  let workers = null;

  before(async () => {
    az = await startAzurite();
    px = await startProxyOn({ old: az.connectionString("mtold"), new: az.connectionString("mtnew") });
    t = target({ name: "proxy", kind: "proxy", endpoint: px.endpoint, proxy: px });
  });
  after(stopAll);

  test("phase 0: seed the data set", { timeout: 60000 }, async (tc) => {
    tc.diagnostic(`seed ${s} (replay with MTABLE_E2E_SEED=${s})`);
    assert.equal((await proxyStatus(px)).phase, PHASES[0]);
    await serviceClient(t).createTable(table);
    ({ workers } = makeWorkers({ t, table, partitions: PARTITIONS, seed: s, count: WORKERS }));
    await seed(t, table, workers, PARTITIONS, ROWS_PER_PARTITION);
    tc.diagnostic(`${PARTITIONS.length * ROWS_PER_PARTITION} rows in ${PARTITIONS.length} partitions`);
  });

  test("four workers run through the whole migration and see only right answers", { timeout: 200000 }, async (tc) => {
    assert.ok(workers, "the data set was not seeded");
    const shared = workers[0].shared;
    run = await workDuringMigration({ px, workers, shared, preludeMs: 1500, afterMs: 1500, stages: STAGES });
    const sum = totals(workers);
    const m = run.mig ?? {};
    tc.diagnostic(`seed ${s}; phases seen: ${m.phases?.join(" -> ")}`);
    tc.diagnostic(`migration ${run.migMs} ms (with ${STAGES.length} pauses): rows copied ${m.copied} (summed over its runs), rows cleaned ${m.cleaned}, partitions switched ${m.switched}`);
    tc.diagnostic(`${sum.opsTotal} operations: ${fmtCounts(sum.ops)}`);
    tc.diagnostic(`by phase: ${fmtCounts(sum.byPhase)}`);
    tc.diagnostic(`refusals asked for: ${fmtCounts(sum.refused)}; 412 after a migrator rewrite (re-read, retried): ${sum.etag412}`);
    tc.diagnostic(`error answers: ${fmtCounts(sum.errors)}; rows read by queries: ${sum.rowsRead}`);
    if (run.migError) throw run.migError;
    assert.equal(run.mig.final.phase, PHASES[4]);
    assert.equal(run.mig.final.migration.state, "done");
    assert.deepEqual(sum.violations, [], `${sum.violations.length} wrong answers (seed ${s}):\n${fmtViolations(sum.violations)}`);
    for (const w of workers) assert.ok(w.stats.ok > 0, `${w.name} (${w.api.sdk}) acknowledged nothing`);
  });

  test("every acknowledged write is there, through the proxy and in the new table; the old table is empty", { timeout: 60000 }, async (tc) => {
    assert.ok(run?.mig, "the migration did not run");
    const v = await verifyEnd({ az, t, table, workers });
    tc.diagnostic(`${v.expected} rows expected`);
    assert.deepEqual(v.proxy, [], `through the proxy (seed ${s})`);
    assert.deepEqual(v.newTable, [], `the new table, read directly (seed ${s})`);
    assert.deepEqual(v.oldTable, [], `the old table (seed ${s})`);
  });

  test("the proxy shuts down cleanly on SIGTERM", async () => {
    assert.ok(px, "proxy not started");
    const r = await stopProxy(px);
    assert.equal(r.report, null, `sanitizer report:\n${r.log}`);
    assert.ok(r.code === 0 || r.code === 143, `exit ${JSON.stringify(r)}; log tail:\n${r.log.slice(-3000)}`);
  });
});

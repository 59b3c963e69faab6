// The proxy over a faulty table service: a fault-injecting HTTP proxy
// (lib/faultproxy.mjs) sits between mtable-proxy and Azurite, so the
// proxy's --old and --new point at it, and answers some of the proxy's
// backend requests with 500 InternalError or 503 ServerBusy, slows them,
// holds them past the proxy's 30 s backend timeout, or drops the
// connection before the request reaches Azurite or after Azurite applied
// it.
//
//   (a) faults on reads only: the SDK workload of live-migration.test.mjs
//       through a whole migration sees no error at all, because the proxy
//       retries idempotent requests (the schedule lets the 4th attempt of
//       a request through);
//   (b) faults on writes: every SDK write succeeds or gets an Azure error
//       (5xx with an error code); a read right after shows the write
//       applied exactly when it was acknowledged, or when the error said
//       the outcome is unknown (500 OperationTimedOut, "may have applied");
//       never half a transaction. Random faults in phases 0, 1, 2 and 4,
//       and scripted ones that pin each outcome down;
//   (c) the live-migration workload with a moderate fault rate on every
//       request to both backends: workers retry their failed writes after
//       reading their keys, as an application would, and at the end
//       nothing acknowledged is lost.
//
// The schedule is seeded (MTABLE_E2E_SEED replays it; the seed is printed):
// the fate of a request is a function of the seed, the request and how
// often the same request was seen, not of arrival order.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  PHASES, proxyStatus, pushPhase, sleep, startAzurite, startProxyOn, stopAll, stopProxy, target,
} from "./lib/harness.mjs";
import { all, serviceClient, tableClient, tableName } from "./lib/clients.mjs";
import { proxySkipReason } from "./lib/targets.mjs";
import { testSeed } from "./lib/seed.mjs";
import { startFaultProxy } from "./lib/faultproxy.mjs";
import {
  fmtCounts, fmtViolations, makeWorkers, opError, outcomeUnknown, runMigration, sameProps, seed,
  totals, verifyEnd, workDuringMigration, workWhile,
} from "./lib/workload.mjs";

const s = testSeed();

const stacks = new Set();

// Azurite, the fault proxy in front of it, and mtable-proxy over both.
async function startStack(label) {
  const az = await startAzurite();
  const fp = await startFaultProxy({ upstream: `http://127.0.0.1:${az.port}`, seed: s, name: label });
  const px = await startProxyOn({
    old: fp.connectionString("mtold", az.accounts.mtold),
    new: fp.connectionString("mtnew", az.accounts.mtnew),
  });
  const t = target({ name: `proxy-${label}`, kind: "proxy", endpoint: px.endpoint, proxy: px });
  let stopped = null;
  const st = {
    az, fp, px, t,
    // Stops all three (once); resolves how the proxy ended.
    stop() {
      stopped ??= (async () => {
        const r = px.process.alive()
          ? await stopProxy(px)
          : { ...px.process.done, report: null, log: px.process.tail(200), wasDead: true };
        await fp.stop();
        await az.process.stop();
        return r;
      })();
      return stopped;
    },
  };
  stacks.add(st);
  return st;
}

function assertCleanExit(r) {
  assert.ok(!r.wasDead, `the proxy had died: ${JSON.stringify({ code: r.code, signal: r.signal })}; log tail:\n${r.log.slice(-3000)}`);
  assert.equal(r.report, null, `sanitizer report:\n${r.log}`);
  assert.ok(r.code === 0 || r.code === 143, `proxy exit ${JSON.stringify({ code: r.code, signal: r.signal })}; log tail:\n${r.log.slice(-3000)}`);
}

function faultLine(fp) {
  const f = fp.summary();
  const kinds = ["error500", "busy503", "dropBefore", "dropAfter", "holdBefore", "holdAfter", "delay"]
    .filter((k) => f[k]).map((k) => `${k} ${f[k]}`).join(", ");
  return `${f.requests} backend requests (${f.reads ?? 0} reads, ${f.writes ?? 0} writes); ${f.faults} faults injected: ${kinds || "none"}`;
}

// Wrong answers that once came from the proxy, each pinned down by a
// scripted case below and counted apart in the random runs' diagnostics.
const MODES = [
  ["resent write", /the write applied, but the answer was (404|409|412)\b/],
  ["plain 5xx for an applied write", /the write applied, but the answer was 5\d\d \S+, not an outcome-unknown error/],
];
function modes(violations) {
  const out = {};
  for (const v of violations) {
    const m = MODES.find(([, re]) => re.test(v.what));
    const k = m ? m[0] : "other";
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

// Whatever ran or was skipped: every stack stopped, so that no server (the
// fault proxies live in this process) keeps the test process alive.
after(async () => {
  for (const st of stacks) await st.stop();
  await stopAll();
});

// ---------------------------------------------------------------------------

describe("(a) faults on reads only: every read succeeds", { skip: proxySkipReason() }, () => {
  let st = null;
  const table = tableName("frd");
  let workers = null;
  let run = null;

  before(async () => {
    st = await startStack("reads");
  });

  test("the workload and the migration see no error while reads fail underneath", { timeout: 150000 }, async (tc) => {
    tc.diagnostic(`seed ${s} (replay with MTABLE_E2E_SEED=${s})`);
    const { t, fp, px } = st;
    await serviceClient(t).createTable(table);
    const partitions = ["p0", "p1", "p2"];
    ({ workers } = makeWorkers({ t, table, partitions, seed: s, count: 4 }));
    await seed(t, table, workers, partitions, 40);
    // Read requests of the entity API; two of them are held past the
    // proxy's 30 s backend timeout.
    fp.configure({
      rate: 0.25,
      on: (r) => r.isRead,
      kinds: { error500: 3, busy503: 3, dropBefore: 2, dropAfter: 2, delay: 2, holdBefore: 1, holdAfter: 1 },
      delayMs: [50, 800],
      holdMs: 45000,
      maxHolds: 2,
    });
    run = await workDuringMigration({
      px, workers, shared: workers[0].shared, preludeMs: 2000, afterMs: 2000,
      stages: [{ until: "prefer_old", dwellMs: 2000 }, { until: "use_new_with_tombstones", dwellMs: 2000 }],
    });
    fp.off();
    const sum = totals(workers);
    tc.diagnostic(`phases seen: ${run.mig?.phases.join(" -> ")}; migration ${run.migMs} ms, rows copied ${run.mig?.copied}`);
    tc.diagnostic(faultLine(fp));
    tc.diagnostic(`${sum.opsTotal} operations: ${fmtCounts(sum.ops)}`);
    tc.diagnostic(`by phase: ${fmtCounts(sum.byPhase)}; 412 after a migrator rewrite: ${sum.etag412}; error answers: ${fmtCounts(sum.errors)}`);
    if (run.migError) throw run.migError;
    assert.equal(run.mig.final.migration.state, "done");
    assert.ok(fp.summary().faults > 0, "no fault was injected");
    assert.deepEqual(sum.violations, [], `${sum.violations.length} wrong answers or failed reads (seed ${s}):\n${fmtViolations(sum.violations)}`);
  });

  test("scripted: a read that fails three times in a row still succeeds", { timeout: 60000 }, async (tc) => {
    assert.ok(workers, "the data set was not seeded");
    const { t, fp } = st;
    const client = tableClient(t, table);
    const e = workers[0].present()[0];
    for (const faults of [["error500", "busy503", "dropBefore"], ["dropAfter", "dropAfter", "busy503"]]) {
      const rule = fp.script({ match: (r) => r.isRead && r.url.includes(e.rk), faults });
      const got = await client.getEntity(e.pk, e.rk);
      fp.unscript(rule);
      tc.diagnostic(`point read after ${rule.fired.map((f) => f.kind).join(", ")}: ${got.s}`);
      assert.equal(rule.fired.length, 3, "the faults did not all fire");
      assert.equal(got.s, e.props.s);
    }
    const rule = fp.script({ match: (r) => r.isRead && r.url.includes("()"), faults: ["busy503", "error500", "dropAfter"] });
    const rows = await all(client.listEntities({ queryOptions: { filter: `PartitionKey eq '${e.pk}'` } }));
    fp.unscript(rule);
    tc.diagnostic(`query after ${rule.fired.map((f) => f.kind).join(", ")}: ${rows.length} rows`);
    assert.equal(rule.fired.length, 3, "the faults did not all fire");
    assert.equal(rows.length, workers.flatMap((w) => w.expected()).filter((r) => r.pk === e.pk).length);
  });

  test("every acknowledged write is there; new table clean; old table empty", { timeout: 60000 }, async () => {
    assert.ok(run?.mig, "the migration did not run");
    const v = await verifyEnd({ az: st.az, t: st.t, table, workers });
    assert.deepEqual([...v.proxy, ...v.newTable, ...v.oldTable], [], `seed ${s}`);
  });

  test("the proxy is still up and shuts down cleanly", async () => {
    assertCleanExit(await st.stop());
  });
});

// ---------------------------------------------------------------------------

// One write through data-tables under scripted faults; the read after it
// says whether it applied.
async function scripted(st, { name, phase, fresh, faults, connection, prepare, op, match, allowed }) {
  const { t, fp } = st;
  const client = tableClient(t, st.table);
  for (let attempt = 0; attempt < 6; attempt++) {
    const rk = `${name.replace(/[^a-z0-9]/gi, "")}-${attempt}`;
    const ctx = await prepare(client, rk);
    // "fresh": the service closes every connection after its answer, so
    // the write comes on a new one; otherwise a read first leaves a
    // kept-alive connection for it.
    if (connection === "fresh") fp.setKeepAlive(false);
    await client.getEntity("p", "warm");
    const rule = fp.script({ match: (r) => r.isWrite && match(r, rk, ctx), faults, connection });
    let answer = "2xx";
    let err = null;
    try {
      await op(client, rk, ctx);
    } catch (e) {
      err = opError(e);
      answer = outcomeUnknown(err) ? "unknown" : `${err.status} ${err.code}`;
    } finally {
      fp.setKeepAlive(true);
    }
    fp.unscript(rule);
    if (rule.fired.length === 0) continue; // the write did not come as asked
    const seen = await ctx.read(client, rk);
    const applied = ctx.isAfter(seen) ? true : ctx.isBefore(seen) ? false : "torn";
    const ok = allowed.some(([a, ap]) => (a === answer || (a === "5xx" && err?.status >= 500 && err.code)) && (ap === "either" ? applied !== "torn" : ap === applied));
    return {
      ok, answer, applied, err, fired: rule.fired.map((f) => `${f.kind}${f.fresh ? "(fresh)" : "(kept-alive)"}`),
      describe: `${name} in ${phase}: faults ${rule.fired.map((f) => `${f.kind}${f.fresh ? "(fresh)" : "(kept-alive)"}`).join(", ")} -> answer ${err ? `${err.status} ${err.code} "${err.message}"` : "2xx"}, applied: ${applied}; allowed: ${allowed.map(([a, ap]) => `${a}/${ap}`).join(", ")}`,
    };
  }
  return { ok: false, inconclusive: true, describe: `${name}: the fault never fired` };
}

// Prepared rows and how to tell before from after.
const single = (present) => async (client, rk) => {
  if (present) await client.upsertEntity({ partitionKey: "p", rowKey: rk, v: 0, s: "before" }, "Replace");
  const etag = present ? (await client.getEntity("p", rk)).etag : null;
  return {
    etag,
    read: async (c, k) => {
      try {
        const e = await c.getEntity("p", k);
        return { v: e.v, s: e.s };
      } catch (e) {
        if (e.statusCode === 404) return null;
        throw e;
      }
    },
    isBefore: (x) => (present ? sameProps(x, { v: 0, s: "before" }) : x === null),
    isAfter: null,
  };
};
const withAfter = (prep, isAfter) => async (client, rk) => ({ ...(await prep(client, rk)), isAfter });
const written = (x) => x !== null && x.s === "after";
const txRows = ["a", "b", "c"];
const txPrep = async (client, rk) => ({
  read: async (c, k) => {
    const out = [];
    for (const r of txRows) {
      try {
        out.push((await c.getEntity("p", `${k}${r}`)).s);
      } catch (e) {
        if (e.statusCode !== 404) throw e;
        out.push(null);
      }
    }
    return out;
  },
  isBefore: (x) => x.every((v) => v === null),
  isAfter: (x) => x.every((v) => v === "after"),
});
const insert = (c, rk) => c.createEntity({ partitionKey: "p", rowKey: rk, v: 1, s: "after" });
const condReplace = (c, rk, ctx) => c.updateEntity({ partitionKey: "p", rowKey: rk, v: 1, s: "after" }, "Replace", { etag: ctx.etag });
const condMerge = (c, rk, ctx) => c.updateEntity({ partitionKey: "p", rowKey: rk, s: "after" }, "Merge", { etag: ctx.etag });
const deleteStar = (c, rk) => c.deleteEntity("p", rk);
const txInsert = (c, rk) => c.submitTransaction(txRows.map((r) => ["create", { partitionKey: "p", rowKey: `${rk}${r}`, s: "after" }]));
const onRow = (r, rk) => r.url.includes(`'${rk}'`) || r.body.includes(`"${rk}`);

const SCRIPTED = [
  // phase, name, faults, connection, prepare, op, allowed [answer, applied]
  ["use_old_hide_metadata", "insert; 500 InternalError", ["error500"], "any", withAfter(single(false), written), insert, [["500 InternalError", false]]],
  ["use_old_hide_metadata", "insert; 503 ServerBusy", ["busy503"], "any", withAfter(single(false), written), insert, [["503 ServerBusy", false]]],
  ["use_old_hide_metadata", "insert; dropped before the service saw it (new connection)", ["dropBefore"], "fresh", withAfter(single(false), written), insert, [["unknown", false]]],
  ["use_old_hide_metadata", "insert; dropped after the service applied it (new connection)", ["dropAfter"], "fresh", withAfter(single(false), written), insert, [["unknown", true]]],
  ["use_old_hide_metadata", "insert; dropped after the service applied it (kept-alive connection)", ["dropAfter"], "reused", withAfter(single(false), written), insert, [["2xx", true], ["unknown", true]]],
  ["use_old_hide_metadata", "unconditional delete; dropped after the service applied it (kept-alive connection)", ["dropAfter"], "reused", withAfter(single(true), (x) => x === null), deleteStar, [["2xx", true], ["unknown", true]]],
  ["use_old_hide_metadata", "conditional replace; 500 once, then retried", ["error500"], "any", withAfter(single(true), written), condReplace, [["2xx", true]]],
  ["use_old_hide_metadata", "conditional replace; dropped after it applied, then retried", ["dropAfter"], "fresh", withAfter(single(true), written), condReplace, [["unknown", true]]],
  ["use_old_hide_metadata", "conditional replace; dropped after it applied (kept-alive connection)", ["dropAfter"], "reused", withAfter(single(true), written), condReplace, [["2xx", true], ["unknown", true]]],
  ["use_old_hide_metadata", "conditional replace; dropped after it applied, then 503 three times", ["dropAfter", "busy503", "busy503", "busy503"], "fresh", withAfter(single(true), written), condReplace, [["unknown", true]]],
  ["use_old_hide_metadata", "transaction of 3 inserts; dropped after it applied (new connection)", ["dropAfter"], "fresh", txPrep, txInsert, [["unknown", true]]],
  ["use_old_hide_metadata", "transaction of 3 inserts; dropped after it applied (kept-alive connection)", ["dropAfter"], "reused", txPrep, txInsert, [["2xx", true], ["unknown", true]]],
  ["use_old_hide_metadata", "transaction of 3 inserts; 503 ServerBusy", ["busy503"], "any", txPrep, txInsert, [["503 ServerBusy", false]]],
  ["prefer_new", "insert; dropped after the service applied it (new connection)", ["dropAfter"], "fresh", withAfter(single(false), written), insert, [["unknown", true]]],
  ["prefer_new", "insert; dropped after the service applied it (kept-alive connection)", ["dropAfter"], "reused", withAfter(single(false), written), insert, [["2xx", true], ["unknown", true]]],
  ["prefer_new", "conditional merge; dropped after it applied, then retried", ["dropAfter"], "fresh", withAfter(single(true), written), condMerge, [["unknown", true]]],
  ["prefer_new", "conditional merge; dropped after it applied (kept-alive connection)", ["dropAfter"], "reused", withAfter(single(true), written), condMerge, [["2xx", true], ["unknown", true]]],
  ["prefer_new", "unconditional delete; dropped after it applied (new connection)", ["dropAfter"], "fresh", withAfter(single(true), (x) => x === null), deleteStar, [["unknown", true]]],
  ["prefer_new", "transaction of 3 inserts; 500 InternalError", ["error500"], "any", txPrep, txInsert, [["500 InternalError", false]]],
];

describe("(b) faults on writes: acknowledged exactly when applied", { skip: proxySkipReason() }, () => {
  let st = null;
  const table = tableName("fwr");

  before(async () => {
    st = await startStack("writes");
    st.table = table;
    await serviceClient(st.t).createTable(table);
    await tableClient(st.t, table).createEntity({ partitionKey: "p", rowKey: "warm" });
  });

  // Scripted, in phase order; the phase moves (with no fault active) when
  // the next case needs a later one.
  for (const [phase, name, faults, connection, prepare, op, allowed] of SCRIPTED) {
    test(`scripted: ${name} (${phase})`, { timeout: 60000 }, async (tc) => {
      const cur = (await proxyStatus(st.px)).phase;
      for (let i = PHASES.indexOf(cur) + 1; i <= PHASES.indexOf(phase); i++) await pushPhase(st.px, PHASES[i]);
      // In prefer_new the proxy copies a row before writing it; copy "warm"
      // first so the write of the case is the only write that can match.
      if (phase === "prefer_new") await tableClient(st.t, table).upsertEntity({ partitionKey: "p", rowKey: "warm" }, "Merge");
      const rowTx = op === txInsert;
      const r = await scripted(st, {
        name, phase, faults, connection, prepare, op, allowed,
        match: (req, rk) => (rowTx ? req.isBatch && req.body.includes(`"${rk}a"`) : onRow(req, rk)),
      });
      tc.diagnostic(r.describe);
      assert.ok(!r.inconclusive, r.describe);
      assert.ok(r.ok, r.describe);
    });
  }

  // Holds past the proxy's 30 s backend timeout, run side by side.
  test("scripted: writes held past the proxy's backend timeout (prefer_new)", { timeout: 120000 }, async (tc) => {
    const cases = [
      ["insert; held, never forwarded", ["holdBefore"], withAfter(single(false), written), insert, [["unknown", false]]],
      ["conditional replace; answer held after it applied", ["holdAfter"], withAfter(single(true), written), condReplace, [["unknown", true]]],
    ];
    const results = await Promise.all(cases.map(([name, faults, prepare, op, allowed]) =>
      scripted(st, { name, phase: "prefer_new", faults, connection: "any", prepare, op, allowed, match: (req, rk) => onRow(req, rk) })));
    for (const r of results) tc.diagnostic(r.describe);
    for (const r of results) assert.ok(r.ok, r.describe);
  });

  test("scripted: the proxy is still up and shuts down cleanly", async () => {
    assertCleanExit(await st.stop());
  });

  let workers = null;

  test("random write faults in phases 0, 1, 2 and 4: only Azure errors, no torn transaction", { timeout: 150000 }, async (tc) => {
    tc.diagnostic(`seed ${s} (replay with MTABLE_E2E_SEED=${s})`);
    // A fresh stack: the scripted cases above moved the first one on.
    st = await startStack("writes-random");
    st.table = tableName("fwr");
    await serviceClient(st.t).createTable(st.table);
    const partitions = ["p0", "p1", "p2"];
    ({ workers } = makeWorkers({
      t: st.t, table: st.table, partitions, seed: s, count: 4, faults: true, checkAfterWrite: true,
      weights: {
        insert: 12, insertExisting: 2, upsertReplace: 8, upsertMerge: 8, updateReplace: 8, updateMerge: 8,
        updateStar: 3, updateStale: 3, updateMissing: 2, deleteEtag: 6, deleteStar: 3, deleteMissing: 1,
        transaction: 12, get: 4, getOther: 1, query: 2, scan: 0,
      },
    }));
    await seed(st.t, st.table, workers, partitions, 20);
    const shared = workers[0].shared;
    const on = () => st.fp.configure({
      rate: 0.2,
      on: (r) => r.isWrite,
      kinds: { error500: 3, busy503: 3, dropBefore: 2, dropAfter: 4, delay: 1 },
      delayMs: [50, 500],
    });
    let mig = null;
    const { error } = await workWhile(workers, async () => {
      on();
      await sleep(3000);
      for (const ph of ["prefer_old", "prefer_new"]) {
        await pushPhase(st.px, ph);
        shared.current = ph;
        await sleep(3000);
      }
      // The migrator itself is not under test here: no faults while it runs.
      st.fp.off();
      mig = await runMigration(st.px, { onStatus: (x) => (shared.current = x.phase) });
      on();
      await sleep(3000);
    });
    st.fp.off();
    const sum = totals(workers);
    tc.diagnostic(faultLine(st.fp));
    tc.diagnostic(`${sum.opsTotal} operations: ${fmtCounts(sum.ops)}; by phase: ${fmtCounts(sum.byPhase)}`);
    tc.diagnostic(`error answers: ${fmtCounts(sum.errors)}; applied despite an error: ${sum.appliedDespiteError}; not applied, retried: ${sum.notApplied}`);
    if (error) throw error;
    assert.equal(mig?.final?.migration.state, "done");
    assert.deepEqual(sum.violations, [], `${sum.violations.length} wrong answers (${fmtCounts(modes(sum.violations))}; seed ${s}):\n${fmtViolations(sum.violations)}`);
  });

  test("random write faults: every row is as acknowledged", { timeout: 60000 }, async () => {
    assert.ok(workers, "the random run did not run");
    const v = await verifyEnd({ az: st.az, t: st.t, table: st.table, workers });
    assert.deepEqual([...v.proxy, ...v.newTable, ...v.oldTable], [], `seed ${s}`);
  });

  test("the proxy is still up and shuts down cleanly", async () => {
    assertCleanExit(await st.stop());
  });
});

// ---------------------------------------------------------------------------

const MIGRATOR_TRIES = 3;

describe("(c) a live migration with faults on both backends", { skip: proxySkipReason() }, () => {
  let st = null;
  let migratorFailures = null;
  const table = tableName("fmig");
  let workers = null;
  let run = null;
  let sum = null;

  before(async () => {
    st = await startStack("migration");
  });

  test("the workload runs through the migration; failed writes are retried", { timeout: 170000 }, async (tc) => {
    tc.diagnostic(`seed ${s} (replay with MTABLE_E2E_SEED=${s})`);
    const { t, fp, px } = st;
    await serviceClient(t).createTable(table);
    const partitions = ["p0", "p1", "p2"];
    ({ workers } = makeWorkers({ t, table, partitions, seed: s, count: 4, faults: true }));
    await seed(t, table, workers, partitions, 20);
    const faults = () => fp.configure({
      rate: 0.05,
      kinds: { error500: 2, busy503: 2, dropBefore: 1, dropAfter: 2, delay: 1 },
      delayMs: [50, 400],
    });
    faults();
    // The migrator must ride out the faults (checked below). Should a run
    // fail all the same, it is started again, and after MIGRATOR_TRIES
    // failed runs of one stage the faults pause until that stage is
    // through, so that the workload's own checks still get to run.
    let calmed = 0;
    run = await workDuringMigration({
      px, workers, shared: workers[0].shared, preludeMs: 1500, afterMs: 1500, restart: true, timeoutMs: 120000,
      stages: [{ until: "prefer_old", dwellMs: 1500 }, { until: "use_new_with_tombstones", dwellMs: 1500 }],
      onFailure: (_f, n) => {
        if (n === MIGRATOR_TRIES) {
          fp.off();
          calmed++;
        }
      },
      onStageDone: () => faults(),
    });
    migratorFailures = run.mig?.failures ?? [];
    fp.off();
    sum = totals(workers);
    tc.diagnostic(`phases seen: ${run.mig?.phases.join(" -> ")}; migration ${run.migMs} ms, rows copied ${run.mig?.copied}, ` +
      `runs failed and restarted: ${run.mig?.failures.length}, stages finished with faults paused: ${calmed}`);
    for (const f of (run.mig?.failures ?? []).slice(0, 5)) tc.diagnostic(`migrator run failed in ${f.phase}: ${f.error}`);
    tc.diagnostic(faultLine(fp));
    tc.diagnostic(`${sum.opsTotal} operations: ${fmtCounts(sum.ops)}; by phase: ${fmtCounts(sum.byPhase)}`);
    tc.diagnostic(`error answers: ${fmtCounts(sum.errors)}; 412 after a migrator rewrite: ${sum.etag412}; applied despite an error: ${sum.appliedDespiteError}; not applied, retried: ${sum.notApplied}`);
    if (run.migError) throw run.migError;
    assert.equal(run.mig.final.migration.state, "done");
    assert.deepEqual(sum.violations, [], `${sum.violations.length} wrong answers (${fmtCounts(modes(sum.violations))}; seed ${s}):\n${fmtViolations(sum.violations)}`);
  });

  test("nothing acknowledged is lost: proxy and new table as modelled, old table empty", { timeout: 60000 }, async () => {
    assert.ok(run?.mig?.final, "the migration did not finish");
    const v = await verifyEnd({ az: st.az, t: st.t, table, workers });
    assert.deepEqual([...v.proxy, ...v.newTable, ...v.oldTable], [], `seed ${s}`);
  });

  test("the migrator rides out transient backend errors (no failed run)", () => {
    assert.ok(migratorFailures, "the migration did not run");
    assert.deepEqual(migratorFailures.slice(0, 5), [], `${migratorFailures.length} failed runs (seed ${s})`);
  });

  test("the proxy is still up and shuts down cleanly", async () => {
    assertCleanExit(await st.stop());
  });
});

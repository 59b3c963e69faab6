// A migration over a table set that changes under it: tables created and
// deleted through the proxy before the migration (as the SDK suites do),
// one deleted and one created while the copy runs. The migrator works from
// the accounts' own table lists, skips (and logs) a table that is gone,
// includes one that is new, and verify says so instead of failing. Every
// acknowledged write is then in the new account, and only the live tables.
//
// Also: POST /admin/v1/migrate on a paused migration is refused (409,
// naming mtablectl resume) rather than silently resumed, and the counters
// of status and /metrics agree, per side for the cleanup, which empties the
// old table by deleting and re-creating it and waits (pausable, surviving
// a kill -9) while the account answers 409 TableBeingDeleted, as Azure
// does after a delete; and a copy whose
// writes hang (a fault proxy holds them) shows "stalled" after 30 s, with
// since when and the last backend error (this case takes about 35 s).
//
// Environment: MTABLE_PROXY_BIN (see lib/harness.mjs).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  admin, ctlBin, freePort, proxyBin, proxyStatus, repoRoot, sleep, startAzurite, startMtable, stopAll, target, waitFor,
} from "./lib/harness.mjs";
import { all, serviceClient, strip, tableClient, tableName } from "./lib/clients.mjs";
import { backendSkipReason, proxySkipReason } from "./lib/targets.mjs";
import { startFaultProxy } from "./lib/faultproxy.mjs";

const waitLong = (what, probe, timeoutMs = 120000) => waitFor(what, probe, timeoutMs);
const ROWS_A = 3000; // copied at COPY_RATE: long enough to act during the copy
const COPY_RATE = 1500;

function rowsFor(table, n, partitions = 6) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({ partitionKey: `p${i % partitions}`, rowKey: `r${String(i).padStart(5, "0")}`, table, n: i });
  }
  return out;
}

// Writes rows in batches of one partition; returns them as acknowledged.
async function writeRows(t, name, rows) {
  const c = tableClient(t, name);
  const byPk = new Map();
  for (const r of rows) {
    if (!byPk.has(r.partitionKey)) byPk.set(r.partitionKey, []);
    byPk.get(r.partitionKey).push(r);
  }
  for (const part of byPk.values()) {
    for (let i = 0; i < part.length; i += 100) {
      await c.submitTransaction(part.slice(i, i + 100).map((e) => ["create", e]));
    }
  }
  return rows;
}


function metric(text, name, labels = "") {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
}

const skip = proxySkipReason() || backendSkipReason();

// An Azurite and a proxy over two of its accounts, throttled so that a
// test can act while the copy or the cleanup runs; with faults, through a
// fault proxy (fp).
async function startWorld(extra = [], { faults = false } = {}) {
  const az = await startAzurite();
  const fp = faults ? await startFaultProxy({ upstream: `http://127.0.0.1:${az.port}`, name: "cleanup" }) : null;
  const cs = (a) => (fp ? fp.connectionString(a, az.accounts[a]) : az.connectionString(a));
  const px = await startMtable({
    name: "proxy",
    port: await freePort(),
    adminPort: await freePort(),
    args: [
      "--old", cs("mtold"), "--new", cs("mtnew"),
      "--copy-rate", String(COPY_RATE), "--copy-parallel", "4", ...extra,
    ],
  });
  const proxy = target({ name: "proxy", kind: "proxy", endpoint: px.endpoint, proxy: px });
  const acct = (a) => ({
    endpoint: az.endpoint(a), accountName: a, accountKey: az.accounts[a],
    connectionString: az.connectionString(a),
  });
  return { az, fp, px, proxy, direct: { old: acct("mtold"), new: acct("mtnew") } };
}

async function waitState(px, want, extra = () => true) {
  return waitLong(`state ${want}`, async () => {
    const s = await proxyStatus(px);
    if (s.migration.state === "failed" && want !== "failed") {
      throw new Error(`failed: ${JSON.stringify(s.migration)}`);
    }
    return s.migration.state === want && extra(s.migration) ? s : null;
  });
}

async function metrics(px) {
  const r = await fetch(`${px.adminUrl}/metrics`);
  return r.text();
}

// The status counters against /metrics and their totals.
function assertCounters(m, text) {
  assert.equal(metric(text, "mtable_rows_copied_total"), m.rows_done);
  assert.equal(metric(text, "mtable_rows_cleaned_total", '{side="old"}'), m.rows_cleaned_old);
  assert.equal(metric(text, "mtable_rows_cleaned_total", '{side="new"}'), m.rows_cleaned_new);
  assert.equal(m.rows_copied, m.rows_done);
  if (m.rows_total >= 0) assert.ok(m.rows_done <= m.rows_total, JSON.stringify(m));
  if (m.clean_total_old >= 0) assert.ok(m.rows_cleaned_old <= m.clean_total_old, JSON.stringify(m));
  if (m.clean_total_new >= 0) assert.ok(m.rows_cleaned_new <= m.clean_total_new, JSON.stringify(m));
}

describe("a migration over a changing table set", { skip }, () => {
  let px;
  let proxy;
  let direct;

  before(async () => {
    ({ px, proxy, direct } = await startWorld());
  });

  after(async () => {
    await stopAll();
  });

  test("tables deleted before and during the copy are skipped, one created is included", async () => {
    const svc = serviceClient(proxy);
    const A = tableName("a"), B = tableName("b"), D = tableName("d"), C = tableName("c");
    for (const n of [A, B, D]) await svc.createTable(n);
    const acked = new Map();
    acked.set(A, await writeRows(proxy, A, rowsFor(A, ROWS_A)));
    await writeRows(proxy, B, rowsFor(B, 50));
    await writeRows(proxy, D, rowsFor(D, 200));
    await svc.deleteTable(B);
    // What the SDK suites do: tables that come and go.
    for (let i = 0; i < 3; i++) {
      const t = tableName("tmp");
      await svc.createTable(t);
      await tableClient(proxy, t).createEntity({ partitionKey: "p", rowKey: "r", v: i });
      await svc.deleteTable(t);
    }

    const r = await admin(px, "POST", "/admin/v1/migrate");
    assert.equal(r.status, 202, r.text);
    // During the copy of A (D sorts after it): D goes, C comes with rows.
    await waitLong("the copy to start", async () => {
      const s = await proxyStatus(px);
      assert.notEqual(s.migration.state, "failed", JSON.stringify(s.migration));
      return s.migration.state === "copying" && s.migration.rows_done > 0;
    });
    await svc.deleteTable(D);
    await svc.createTable(C);
    acked.set(C, await writeRows(proxy, C, rowsFor(C, 120, 3)));
    const mid = await proxyStatus(px);
    assert.equal(mid.migration.state, "copying", "the copy was still running when D went");

    const done = await waitState(px, "done");
    assert.equal(done.phase, "use_new_hide_metadata");
    assert.ok(done.migration.tables_skipped >= 1, JSON.stringify(done.migration));
    assert.ok(done.migration.rows_done <= done.migration.rows_total, JSON.stringify(done.migration));
    assert.match(px.process.tail(400), new RegExp(`table ${D} was deleted; skipped while copying`));

    // Verify accounts for D: skipped as deleted, not a failure.
    assert.match(done.migration.last_verify.summary, new RegExp(`deleted table skipped \\(${D}\\)`));
    const v = await admin(px, "POST", "/admin/v1/verify");
    assert.equal(v.status, 200, v.text);
    assert.equal(v.json.ok, true, v.text);
    assert.equal(v.json.tables_skipped, 1, v.text);
    assert.equal(v.json.skipped, D, v.text);

    // The new account holds A and C, not B nor D; old holds nothing of them.
    for (const t of [direct.new, proxy]) {
      const listed = (await all(serviceClient(t).listTables())).map((x) => x.name);
      assert.ok(listed.includes(A) && listed.includes(C), listed.join(","));
      assert.ok(!listed.includes(B) && !listed.includes(D), listed.join(","));
    }
    for (const [name, rows] of acked) {
      const got = (await all(tableClient(direct.new, name).listEntities())).map(strip);
      const key = (e) => `${e.partitionKey}/${e.rowKey}`;
      const have = new Map(got.map((e) => [key(e), e]));
      assert.equal(got.length, rows.length, `${name}: rows in the new account`);
      for (const e of rows) {
        const g = have.get(key(e));
        assert.ok(g, `${name}: ${key(e)} acknowledged but missing`);
        assert.equal(g.n, e.n);
        assert.equal(Object.keys(g).some((k) => k.startsWith("_mtable_")), false);
      }
      const old = await all(tableClient(direct.old, name).listEntities());
      assert.equal(old.length, 0, `${name}: old emptied`);
      const via = await all(tableClient(proxy, name).listEntities());
      assert.equal(via.length, rows.length, `${name}: through the proxy`);
    }
  });
});


describe("paused and failed migrations are resumed, not restarted; counts add up", { skip }, () => {
  let px;
  let proxy;
  let fp;
  let direct;
  const stateDir = mkdtempSync(join(tmpdir(), "mtable-migrate-tables-"));

  before(async () => {
    ({ px, proxy, fp, direct } = await startWorld(
      ["--state-store", `file:${join(stateDir, "state.json")}`], { faults: true }));
  });

  after(async () => {
    fp?.clearScripts();
    await stopAll();
    await fp?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  test("migrate on a paused migration is 409 naming mtablectl resume; copy and cleanup pause and resume", async () => {
    const name = tableName("p");
    await serviceClient(proxy).createTable(name);
    const rows = await writeRows(proxy, name, rowsFor(name, 2400, 4));

    let r = await admin(px, "POST", "/admin/v1/migrate");
    assert.equal(r.status, 202, r.text);
    await waitState(px, "copying", (m) => m.rows_done > 0);
    assert.equal((await admin(px, "POST", "/admin/v1/migrate/pause")).status, 202);
    let s = await waitState(px, "paused");
    assertCounters(s.migration, await metrics(px));

    r = await admin(px, "POST", "/admin/v1/migrate");
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.error.code, "MigrationPaused");
    assert.match(r.json.error.message, /mtablectl resume/);
    if (ctlBin) {
      const c = spawnSync(ctlBin, ["--admin", px.adminUrl, "migrate"], { encoding: "utf8" });
      assert.equal(c.status, 1, c.stderr);
      assert.match(c.stderr, /409 MigrationPaused: .*mtablectl resume/);
      assert.equal(c.stderr.trim().split("\n").length, 1, c.stderr);
    }
    assert.equal((await proxyStatus(px)).migration.state, "paused", "not silently resumed");

    // Resume. The cleanup empties old by dropping its table and creating
    // it again; the old account refuses the creation with 409
    // TableBeingDeleted, as the service does for 40 s or more after a
    // delete, until the script is taken away. Meanwhile the cleanup waits:
    // it can be paused, and it survives a kill -9.
    const creates = fp.script({
      match: (q) => q.account === "mtold" && q.method === "POST" && q.tableLevel,
      faults: Array(10000).fill("beingDeleted"),
    });
    const refused = (n) => waitLong(`${n} creations refused`, async () => (creates.fired.length >= n ? true : null));
    r = await admin(px, "POST", "/admin/v1/migrate/resume");
    assert.equal(r.status, 202, r.text);
    await refused(2);
    s = await proxyStatus(px);
    assert.equal(s.migration.state, "cleaning", JSON.stringify(s.migration));
    assert.equal(s.phase, "use_new_hide_metadata");
    // Every row of old (the user rows and one meta row a partition) is
    // counted as cleaned once the table is dropped, and the count is saved.
    const total = rows.length + 4;
    assert.equal(s.migration.clean_total_old, total, JSON.stringify(s.migration));
    assert.equal(s.migration.rows_cleaned_old, total, JSON.stringify(s.migration));
    assertCounters(s.migration, await metrics(px));
    await assert.rejects(all(tableClient(direct.old, name).listEntities()), (e) => e.statusCode === 404);

    assert.equal((await admin(px, "POST", "/admin/v1/migrate/pause")).status, 202);
    s = await waitState(px, "paused");
    assertCounters(s.migration, await metrics(px));
    r = await admin(px, "POST", "/admin/v1/migrate/resume");
    assert.equal(r.status, 202, r.text);
    await refused(creates.fired.length + 1);

    // kill -9 while the cleanup waits: after the restart it is paused, and
    // only resume continues it.
    const awake = setInterval(() => {}, 1000); // the guard's exit alone keeps no loop alive
    try {
      await px.kill9();
      await px.start();
    } finally {
      clearInterval(awake);
    }
    s = await proxyStatus(px);
    assert.equal(s.migration.state, "paused", JSON.stringify(s.migration));
    assert.match(s.migration.error, /interrupted while cleaning/);
    r = await admin(px, "POST", "/admin/v1/migrate");
    assert.equal(r.status, 409, r.text);
    fp.unscript(creates);
    r = await admin(px, "POST", "/admin/v1/migrate/resume");
    assert.equal(r.status, 202, r.text);
    s = await waitState(px, "done");
    const m = s.migration;
    assertCounters(m, await metrics(px));
    assert.equal(m.rows_done, rows.length);
    assert.equal(m.rows_total, rows.length);
    assert.equal(m.clean_total_old, total, JSON.stringify(m));
    assert.equal(m.rows_cleaned_old, total, JSON.stringify(m));
    assert.equal(m.stalled, false);
    const old = await all(tableClient(direct.old, name).listEntities());
    assert.equal(old.length, 0, "old is there again, empty");
    const v = await admin(px, "POST", "/admin/v1/verify");
    assert.equal(v.json.ok, true, v.text);
    const got = await all(tableClient(proxy, name).listEntities());
    assert.equal(got.length, rows.length);
  });
});

describe("a copy that stops moving shows as stalled", { skip }, () => {
  let px;
  let proxy;
  let fp;

  before(async () => {
    const az = await startAzurite();
    fp = await startFaultProxy({ upstream: `http://127.0.0.1:${az.port}`, name: "stall" });
    px = await startMtable({
      name: "proxy",
      port: await freePort(),
      adminPort: await freePort(),
      args: [
        "--old", fp.connectionString("mtold", az.accounts.mtold),
        "--new", fp.connectionString("mtnew", az.accounts.mtnew),
        "--copy-rate", "400", "--copy-parallel", "2",
      ],
    });
    proxy = target({ name: "proxy", kind: "proxy", endpoint: px.endpoint, proxy: px });
  });

  after(async () => {
    fp?.clearScripts();
    fp?.off();
    await stopAll();
    await fp?.stop();
  });

  test("no row moved for 30 s: stalled, since when, and the last backend error", async () => {
    const name = tableName("s");
    await serviceClient(proxy).createTable(name);
    await writeRows(proxy, name, rowsFor(name, 1200, 12));
    assert.equal((await admin(px, "POST", "/admin/v1/migrate")).status, 202);
    const moving = await waitState(px, "copying", (m) => m.rows_done > 0);
    assert.equal(moving.migration.stalled, false);
    // From now on every write to the new account fails once with 503, then
    // hangs until the proxy's backend timeout, again and again.
    const writesToNew = (r) => r.account === "mtnew" && !r.isRead && !r.tableLevel;
    fp.script({ match: writesToNew, faults: ["busy503", ...Array(40).fill("holdBefore")] });
    const t0 = Date.now();
    const s = await waitLong("stalled", async () => {
      const x = await proxyStatus(px);
      assert.equal(x.migration.state, "copying", JSON.stringify(x.migration));
      return x.migration.stalled ? x : null;
    }, 60000);
    const m = s.migration;
    assert.ok(Date.now() - t0 >= 29000, "not before 30 s without a row moved");
    assert.equal(m.rows_per_second, 0);
    assert.ok(m.stalled_seconds >= 30, JSON.stringify(m));
    const since = Date.parse(m.stalled_since);
    assert.ok(Math.abs(Date.now() - m.stalled_seconds * 1000 - since) < 5000, JSON.stringify(m));
    assert.match(m.last_backend_error, /^new: 5\d\d /, JSON.stringify(m));
    assert.ok(m.rows_done < 1200 && m.rows_done <= m.rows_total, JSON.stringify(m));
    if (ctlBin) {
      const c = spawnSync(ctlBin, ["--admin", px.adminUrl, "status"], { encoding: "utf8" });
      assert.match(c.stdout, /stalled since \S+ \(last backend error: new: 5\d\d /, c.stdout);
    }
  });
});

// Across a migration: a data set written through the proxy in phase 0 must
// read back identically after the built-in migrator has run to the end,
// and clients that keep reading and writing while it runs (so through
// phases 1 to 4, including use_new_with_tombstones) must see every
// acknowledged write and never an error, a lost row or a hidden one.
//
// What "identically" means here: every property with its EDM type and
// value, as each SDK reads it, for every table. ETags and Timestamps are
// left out: the copy writes each row into the new table, which stamps it
// afresh, as a copy between two Azure tables would.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TableTransaction } from "@azure/data-tables";
import {
  PHASES, proxyStatus, migrateToEnd, startAzurite, startProxy, stopAll, stopProxy, target,
} from "./lib/harness.mjs";
import {
  all, call, eg, legacyService, rejects, serviceClient, strip, tableClient, tableName, TableUtilities,
} from "./lib/clients.mjs";
import { backendSkipReason, proxySkipReason } from "./lib/targets.mjs";
import { TYPED } from "./lib/cases/types.mjs";
import { KEYS } from "./lib/cases/keys.mjs";

const BULK_PARTITIONS = 4;
const BULK_PER_PARTITION = 300;
const RESERVED = "_mtable_";

// Reads a whole table through both SDKs into a comparable form.
async function readTable(t, name) {
  const dt = (await all(tableClient(t, name).listEntities({ disableTypeConversion: true }))).map(strip);
  const lg = legacyService(t);
  const rows = [];
  let token = null;
  do {
    const r = await call(lg, "queryEntities", name, null, token, {
      payloadFormat: TableUtilities.PayloadFormat.MINIMAL_METADATA,
    });
    for (const e of r.result.entries) {
      const out = {};
      for (const [k, v] of Object.entries(e)) {
        if (k === ".metadata" || k === "Timestamp") continue;
        const val = Buffer.isBuffer(v._) ? `b64:${v._.toString("base64")}`
          : v._ instanceof Date ? `date:${v._.toISOString()}`
            : typeof v._ === "number" && Number.isNaN(v._) ? "NaN"
              : v._;
        out[k] = [v.$ ?? null, val];
      }
      rows.push(out);
    }
    token = r.result.continuationToken;
  } while (token);
  return { dt, lg: rows };
}

async function listTables(t, prefix) {
  const names = (await all(serviceClient(t).listTables())).map((x) => x.name);
  return names.filter((n) => n.startsWith(prefix)).sort();
}

// No row or property of the protocol's own may ever reach a client.
function assertNothingHidden(snapshot, label) {
  for (const rows of [snapshot.dt, snapshot.lg]) {
    for (const e of rows) {
      for (const k of Object.keys(e)) {
        assert.ok(!k.startsWith(RESERVED), `${label}: reserved property ${k} visible`);
      }
      const rk = e.rowKey ?? e.RowKey?.[1];
      assert.ok(!String(rk).startsWith(RESERVED), `${label}: reserved row ${rk} visible`);
    }
  }
}

describe("across a migration", { skip: proxySkipReason() }, () => {
  let px = null;
  let t = null;
  const stem = tableName("mig");
  const names = { typed: `${stem}typed`, bulk: `${stem}bulk`, keys: `${stem}keys`, live: `${stem}live` };
  const before0 = {};
  let liveModel = null;
  const phasesSeen = new Set();

  before(async () => {
    const az = await startAzurite();
    px = await startProxy(az);
    t = target({ name: "proxy", kind: "proxy", endpoint: px.endpoint, proxy: px });
  });
  after(stopAll);

  test("the proxy runs on Azurite backends", { skip: backendSkipReason() }, () => {
    assert.equal(px.fallback, null, `the proxy would not start with Azure backends; ran on memory:\n${px.fallback}`);
  });

  test("phase 0: write the data set through both SDKs", { timeout: 180000 }, async () => {
    assert.equal((await proxyStatus(px)).phase, PHASES[0]);
    const svc = serviceClient(t);
    for (const n of Object.values(names)) await svc.createTable(n);
    await svc.createTable(`${stem}dropped`);
    await tableClient(t, `${stem}dropped`).createEntity({ partitionKey: "p", rowKey: "r" });
    await svc.deleteTable(`${stem}dropped`);

    // Every type and edge value, written by data-tables and by the legacy SDK.
    const typed = tableClient(t, names.typed);
    const e = { partitionKey: "p", rowKey: "dt" };
    for (const [k, [v]] of Object.entries(TYPED)) e[k] = v;
    e.wholeDouble = { type: "Double", value: 7 };
    await typed.createEntity(e);
    await call(legacyService(t), "insertEntity", names.typed, {
      PartitionKey: eg.String("p"),
      RowKey: eg.String("legacy"),
      i64: eg.Int64("-9223372036854775808"),
      dOne: eg.Double(1),
      dNaN: eg.Double(NaN),
      when: eg.DateTime(new Date("2000-02-29T12:00:00.001Z")),
      g: eg.Guid("0f8fad5b-d9cb-469f-a165-70867728950e"),
      bin: eg.Binary(Buffer.alloc(0)),
      s: eg.String("😀"),
    });

    // Awkward keys, one row each.
    const keys = tableClient(t, names.keys);
    for (const k of KEYS) await keys.createEntity({ partitionKey: k, rowKey: k, k });

    // Bulk rows in transactions, then some updated, merged and deleted, so
    // that the copy sees rows in every state.
    const bulk = tableClient(t, names.bulk);
    for (let p = 0; p < BULK_PARTITIONS; p++) {
      for (let b = 0; b < BULK_PER_PARTITION; b += 100) {
        const tx = new TableTransaction();
        for (let i = b; i < b + 100; i++) {
          tx.createEntity({ partitionKey: `p${p}`, rowKey: String(i).padStart(4, "0"), n: p * 1000 + i, v: 0 });
        }
        await bulk.submitTransaction(tx.actions);
      }
    }
    for (let i = 0; i < BULK_PER_PARTITION; i += 7) {
      await bulk.updateEntity({ partitionKey: "p1", rowKey: String(i).padStart(4, "0"), v: 1 }, "Merge");
      await bulk.updateEntity({ partitionKey: "p2", rowKey: String(i).padStart(4, "0"), r: 2 }, "Replace");
      await bulk.deleteEntity("p3", String(i).padStart(4, "0"));
    }

    for (const [k, n] of Object.entries(names)) before0[k] = await readTable(t, n);
    before0.tables = await listTables(t, stem);
    assert.deepEqual(before0.tables, Object.values(names).sort());
    assert.equal(before0.bulk.dt.length, BULK_PARTITIONS * BULK_PER_PARTITION - Math.ceil(BULK_PER_PARTITION / 7));
    for (const [k, snap] of Object.entries(before0)) if (k !== "tables") assertNothingHidden(snap, `phase 0 ${k}`);
  });

  test("the migration runs to the end while clients keep reading and writing", { timeout: 300000 }, async (tc) => {
    assert.ok(before0.bulk, "the data set was not written");
    const live = tableClient(t, names.live);
    const bulk = tableClient(t, names.bulk);
    const model = new Map(); // rowKey -> {v, etag}
    const errors = [];
    let stop = false;
    let writes = 0;
    let reads = 0;

    // One writer: inserts, conditional merges and deletes, upserts and
    // transactions in the "live" table. It alone writes there, yet the
    // migrator rewrites rows too (the copy into the new table, the cleanup
    // of protocol properties), and each rewrite gives a row a new ETag. So
    // a conditional write may fail with 412 once, like after any other
    // writer: the client then reads the row -- which must still hold
    // exactly what it last wrote -- and retries with the fresh ETag, which
    // must succeed.
    let refreshed = 0;
    const conditional = async (rk, op) => {
      try {
        return await op(model.get(rk).etag);
      } catch (e) {
        if (e.statusCode !== 412) throw e;
        const cur = await live.getEntity("live", rk);
        assert.equal(cur.v, model.get(rk).v, `412 on ${rk}, and its data changed`);
        refreshed++;
        return op(cur.etag);
      }
    };
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const rk = `w${String(i).padStart(5, "0")}`;
        const keys = [...model.keys()];
        const pick = keys[(i * 7919) % Math.max(keys.length, 1)];
        try {
          switch (i % 5) {
            case 0: {
              const r = await live.createEntity({ partitionKey: "live", rowKey: rk, v: i });
              model.set(rk, { v: i, etag: r.etag });
              break;
            }
            case 1:
              if (pick) {
                const r = await conditional(pick, (etag) =>
                  live.updateEntity({ partitionKey: "live", rowKey: pick, v: i }, "Merge", { etag }));
                model.set(pick, { v: i, etag: r.etag });
              }
              break;
            case 2:
              if (pick) {
                await live.upsertEntity({ partitionKey: "live", rowKey: pick, v: -i }, "Replace");
                model.set(pick, { v: -i, etag: (await live.getEntity("live", pick)).etag });
              }
              break;
            case 3:
              if (pick && keys.length > 5) {
                await conditional(pick, (etag) => live.deleteEntity("live", pick, { etag }));
                model.delete(pick);
              }
              break;
            case 4: {
              const tx = new TableTransaction();
              for (let j = 0; j < 3; j++) tx.createEntity({ partitionKey: "live", rowKey: `${rk}-${j}`, v: j });
              await live.submitTransaction(tx.actions);
              for (let j = 0; j < 3; j++) {
                model.set(`${rk}-${j}`, { v: j, etag: (await live.getEntity("live", `${rk}-${j}`)).etag });
              }
              break;
            }
          }
          writes++;
        } catch (e) {
          errors.push(`write ${i} (${i % 5}) ${rk}/${pick}: ${e.statusCode} ${e.code} ${String(e.message).split("\n")[0]}`);
        }
      }
    })();

    // One reader: point reads and a partition scan of rows nobody writes.
    const stable = before0.bulk.dt;
    const reader = (async () => {
      for (let i = 0; !stop; i++) {
        const want = stable[(i * 104729) % stable.length];
        try {
          const got = strip(await bulk.getEntity(want.partitionKey, want.rowKey, { disableTypeConversion: true }));
          assert.deepEqual(got, want);
          if (i % 10 === 0) {
            const part = (await all(bulk.listEntities({
              queryOptions: { filter: "PartitionKey eq 'p3'" }, disableTypeConversion: true,
            }))).map(strip);
            assert.deepEqual(part, stable.filter((e) => e.partitionKey === "p3"));
          }
          reads++;
        } catch (e) {
          errors.push(`read ${i} ${want.partitionKey}/${want.rowKey}: ${e.statusCode ?? ""} ${String(e.message).split("\n")[0]}`);
        }
      }
    })();

    let final;
    try {
      // Let the clients run a moment in phase 0 before the migrator starts.
      await new Promise((r) => setTimeout(r, 300));
      final = await migrateToEnd(px, { onStatus: (s) => phasesSeen.add(s.phase) });
      await new Promise((r) => setTimeout(r, 300)); // and a moment in phase 4
    } finally {
      stop = true;
      await Promise.all([writer, reader]);
    }
    tc.diagnostic(
      `phases seen: ${[...phasesSeen].join(", ")}; ${writes} writes, ${reads} reads; ` +
      `${refreshed} conditional writes refreshed their ETag after a 412`,
    );
    assert.deepEqual(errors.slice(0, 20), [], `${errors.length} client errors during the migration`);
    assert.equal(final.phase, PHASES[4]);
    assert.ok(final.migration.rows_copied >= before0.bulk.dt.length, JSON.stringify(final.migration));
    assert.ok(writes > 0 && reads > 0, `${writes} writes, ${reads} reads`);
    liveModel = model;
  });

  test("after the migration every table reads back identically", { timeout: 180000 }, async () => {
    assert.ok(liveModel, "the migration did not complete");
    assert.equal((await proxyStatus(px)).phase, PHASES[4]);
    assert.deepEqual(await listTables(t, stem), before0.tables, "the same tables, and the dropped one stays dropped");
    for (const k of ["typed", "keys", "bulk"]) {
      const now = await readTable(t, names[k]);
      assertNothingHidden(now, `phase 4 ${k}`);
      assert.deepEqual(now.dt, before0[k].dt, `${k}: data-tables view changed`);
      assert.deepEqual(now.lg, before0[k].lg, `${k}: legacy view (with types) changed`);
    }
    const live = await readTable(t, names.live);
    assertNothingHidden(live, "phase 4 live");
    const want = [...liveModel.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([rk, { v }]) => ({ partitionKey: "live", rowKey: rk, v: { value: String(v), type: "Int32" } }));
    assert.deepEqual(live.dt, want, "every acknowledged write during the migration, and nothing else");
    // A conditional write with the ETag of a fresh read works; writes
    // without a condition work on every table.
    const lc = tableClient(t, names.live);
    for (const rk of [...liveModel.keys()].slice(0, 5)) {
      const { etag } = await lc.getEntity("live", rk);
      await lc.updateEntity({ partitionKey: "live", rowKey: rk, after: true }, "Merge", { etag });
      assert.equal((await lc.getEntity("live", rk)).after, true);
    }
    const bulk = tableClient(t, names.bulk);
    await bulk.upsertEntity({ partitionKey: "p0", rowKey: "0000", v: 9 }, "Merge");
    await bulk.createEntity({ partitionKey: "p3", rowKey: "0000", back: true }); // deleted in phase 0
    await bulk.deleteEntity("p1", "0001");
    await rejects(bulk.getEntity("p1", "0001"), 404, "ResourceNotFound");
    assert.equal((await bulk.getEntity("p3", "0000")).back, true);
  });

  test("the proxy shuts down cleanly on SIGTERM", async () => {
    assert.ok(px, "proxy not started");
    const r = await stopProxy(px);
    assert.equal(r.report, null, `sanitizer report:\n${r.log}`);
    assert.ok(r.code === 0 || r.code === 143, `exit ${JSON.stringify(r)}; log tail:\n${r.log.slice(-3000)}`);
  });
});

// Entity group transactions: every action kind, the 100-operation limit,
// atomic rollback when one operation fails, and the failing index, which
// both SDKs expose as the "N:" prefix of the error message.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { TableTransaction } from "@azure/data-tables";
import { all, call, eg, legacyService, rejects, serviceClient, strip, TableBatch } from "../clients.mjs";

const STALE = `W/"datetime'2000-01-01T00%3A00%3A00.0000000Z'"`;

// The operation index Azure puts in front of a batch error message.
function failedIndex(err) {
  const m = /^(\d+):/.exec(String(err.message));
  return m ? Number(m[1]) : null;
}

async function snapshot(client) {
  return (await all(client.listEntities())).map(strip);
}

export default function batch(ctx) {
  describe("transactions", () => {
    ctx.test("every action kind in one transaction", async () => {
      const { client } = await ctx.newTable("txall");
      for (const rk of ["upd-r", "upd-m", "ups-r", "ups-m", "del"]) {
        await client.createEntity({ partitionKey: "p", rowKey: rk, a: 1, b: 2 });
      }
      const tx = new TableTransaction();
      tx.createEntity({ partitionKey: "p", rowKey: "new", c: 3 });
      tx.updateEntity({ partitionKey: "p", rowKey: "upd-r", c: 3 }, "Replace");
      tx.updateEntity({ partitionKey: "p", rowKey: "upd-m", c: 3 }, "Merge");
      tx.upsertEntity({ partitionKey: "p", rowKey: "ups-r", c: 3 }, "Replace");
      tx.upsertEntity({ partitionKey: "p", rowKey: "ups-m", c: 3 }, "Merge");
      tx.upsertEntity({ partitionKey: "p", rowKey: "ups-new", c: 3 }, "Merge");
      tx.deleteEntity("p", "del");
      const r = await client.submitTransaction(tx.actions);
      assert.equal(r.status, 202);
      assert.equal(r.subResponses.length, 7);
      for (const s of r.subResponses) assert.ok(s.status >= 200 && s.status < 300, JSON.stringify(s));
      assert.deepEqual(await snapshot(client), [
        { partitionKey: "p", rowKey: "new", c: 3 },
        { partitionKey: "p", rowKey: "upd-m", a: 1, b: 2, c: 3 },
        { partitionKey: "p", rowKey: "upd-r", c: 3 },
        { partitionKey: "p", rowKey: "ups-m", a: 1, b: 2, c: 3 },
        { partitionKey: "p", rowKey: "ups-new", c: 3 },
        { partitionKey: "p", rowKey: "ups-r", c: 3 },
      ]);
    });

    ctx.test("a transaction's ETags are the entities' new ETags", async () => {
      const { client } = await ctx.newTable("txetag");
      const { etag } = await client.createEntity({ partitionKey: "p", rowKey: "a", v: 1 });
      const tx = new TableTransaction();
      tx.updateEntity({ partitionKey: "p", rowKey: "a", v: 2 }, "Replace", { etag });
      tx.createEntity({ partitionKey: "p", rowKey: "b", v: 1 });
      const r = await client.submitTransaction(tx.actions);
      const a = await client.getEntity("p", "a");
      assert.equal(a.v, 2);
      assert.notEqual(a.etag, etag);
      const sub = r.subResponses.find((s) => s.status === 204 && s.etag);
      assert.ok(sub, JSON.stringify(r.subResponses));
      assert.ok([a.etag, (await client.getEntity("p", "b")).etag].includes(sub.etag));
    });

    ctx.test("100 operations in one transaction", async () => {
      const { client } = await ctx.newTable("tx100");
      const tx = new TableTransaction();
      for (let i = 0; i < 100; i++) tx.createEntity({ partitionKey: "p", rowKey: String(i).padStart(3, "0"), i });
      const r = await client.submitTransaction(tx.actions);
      assert.equal(r.subResponses.length, 100);
      const rows = await all(client.listEntities());
      assert.deepEqual(rows.map((e) => e.i), Array.from({ length: 100 }, (_, i) => i));
    });

    ctx.test("101 operations are refused with 400 and nothing is written", async () => {
      const { client } = await ctx.newTable("tx101");
      const tx = new TableTransaction();
      for (let i = 0; i < 101; i++) tx.createEntity({ partitionKey: "p", rowKey: String(i), i });
      await rejects(client.submitTransaction(tx.actions), 400, "InvalidInput");
      assert.deepEqual(await all(client.listEntities()), []);
    });

    // A failing operation at index `at` among others that would succeed.
    const rollbacks = [
      ["insert of an existing entity", 409, "EntityAlreadyExists", (tx) => tx.createEntity({ partitionKey: "p", rowKey: "exists", v: 9 })],
      ["replace with a stale ETag", 412, "UpdateConditionNotSatisfied",
        (tx) => tx.updateEntity({ partitionKey: "p", rowKey: "exists", v: 9 }, "Replace", { etag: STALE })],
      ["merge with a stale ETag", 412, "UpdateConditionNotSatisfied",
        (tx) => tx.updateEntity({ partitionKey: "p", rowKey: "exists", v: 9 }, "Merge", { etag: STALE })],
      ["update of a missing entity", 404, "ResourceNotFound", (tx) => tx.updateEntity({ partitionKey: "p", rowKey: "missing", v: 9 }, "Merge")],
      ["delete of a missing entity", 404, "ResourceNotFound", (tx) => tx.deleteEntity("p", "missing")],
    ];
    for (const [label, status, code, failing] of rollbacks) {
      ctx.test(`rollback on ${label}: ${status} ${code} with the failing index`, async () => {
        const { client } = await ctx.newTable("txrb");
        await client.createEntity({ partitionKey: "p", rowKey: "exists", v: 1 });
        await client.createEntity({ partitionKey: "p", rowKey: "other", v: 1 });
        const before = await snapshot(client);
        for (const at of [0, 4]) {
          const tx = new TableTransaction();
          for (let i = 0; i < 7; i++) {
            if (i === at) failing(tx);
            else if (i === 1) tx.updateEntity({ partitionKey: "p", rowKey: "other", v: 2 }, "Merge");
            else tx.createEntity({ partitionKey: "p", rowKey: `n${i}`, v: i });
          }
          const err = await rejects(client.submitTransaction(tx.actions), status, code);
          assert.equal(failedIndex(err), at, `failing index in "${err.message.split("\n")[0]}"`);
          assert.deepEqual(await snapshot(client), before, "nothing of the transaction was applied");
        }
      });
    }

    ctx.test("the same entity twice in a transaction is refused with 400", async () => {
      const { client } = await ctx.newTable("txdup");
      const tx = new TableTransaction();
      tx.createEntity({ partitionKey: "p", rowKey: "a" });
      tx.createEntity({ partitionKey: "p", rowKey: "b" });
      tx.updateEntity({ partitionKey: "p", rowKey: "a", v: 1 }, "Merge");
      await rejects(client.submitTransaction(tx.actions), 400, "InvalidDuplicateRow");
      assert.deepEqual(await all(client.listEntities()), []);
    });

    ctx.test("a transaction on a missing table fails with 404 TableNotFound", async () => {
      const { client, name } = await ctx.newTable("txgone");
      await serviceClient(ctx.target).deleteTable(name);
      const tx = new TableTransaction();
      tx.createEntity({ partitionKey: "p", rowKey: "a" });
      await rejects(client.submitTransaction(tx.actions), 404, "TableNotFound");
    });

    ctx.test("legacy TableBatch: every kind, and a failure with its index", async () => {
      const { name, client } = await ctx.newTable("ltx");
      const lg = legacyService(ctx.target);
      const e = (rk, props = {}) => {
        const x = { PartitionKey: eg.String("p"), RowKey: eg.String(rk) };
        for (const [k, v] of Object.entries(props)) x[k] = eg.Int32(v);
        return x;
      };
      for (const rk of ["r", "m", "d"]) await call(lg, "insertEntity", name, e(rk, { a: 1 }));
      const b = new TableBatch();
      b.insertEntity(e("i", { a: 1 }));
      b.replaceEntity(e("r", { b: 2 }));
      b.mergeEntity(e("m", { b: 2 }));
      b.insertOrReplaceEntity(e("ior", { c: 3 }));
      b.insertOrMergeEntity(e("iom", { c: 3 }));
      b.deleteEntity(e("d"));
      const r = await call(lg, "executeBatch", name, b);
      assert.equal(r.result.length, 6);
      for (const op of r.result) assert.ok(op.response.isSuccessful, JSON.stringify(op.response.statusCode));
      assert.deepEqual(await snapshot(client), [
        { partitionKey: "p", rowKey: "i", a: 1 },
        { partitionKey: "p", rowKey: "iom", c: 3 },
        { partitionKey: "p", rowKey: "ior", c: 3 },
        { partitionKey: "p", rowKey: "m", a: 1, b: 2 },
        { partitionKey: "p", rowKey: "r", b: 2 },
      ]);
      const before = await snapshot(client);
      const bad = new TableBatch();
      bad.insertEntity(e("x1"));
      bad.insertEntity(e("x2"));
      bad.insertEntity(e("i")); // exists
      bad.deleteEntity(e("r"));
      const err = await rejects(call(lg, "executeBatch", name, bad), 409, "EntityAlreadyExists");
      assert.equal(failedIndex(err), 2, err.message);
      assert.deepEqual(await snapshot(client), before);
    });

    // data-tables cannot put an ETag on a delete inside a transaction (it
    // always sends If-Match: *), so the conditional delete goes through the
    // legacy SDK.
    ctx.test("rollback on delete with a stale ETag: 412 with the failing index (legacy)", async () => {
      const { name, client } = await ctx.newTable("ltxdel");
      const lg = legacyService(ctx.target);
      const e = (rk) => ({ PartitionKey: eg.String("p"), RowKey: eg.String(rk) });
      await call(lg, "insertEntity", name, e("a"));
      const before = await snapshot(client);
      const bad = new TableBatch();
      bad.insertEntity(e("x1"));
      bad.deleteEntity({ ...e("a"), ".metadata": { etag: STALE } });
      bad.insertEntity(e("x2"));
      const err = await rejects(call(lg, "executeBatch", name, bad), 412, "UpdateConditionNotSatisfied");
      assert.equal(failedIndex(err), 1, err.message);
      assert.deepEqual(await snapshot(client), before);
    });
  });
}

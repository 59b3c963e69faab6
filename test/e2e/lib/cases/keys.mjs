// Keys that need escaping somewhere on the way: in the URL path of a point
// operation, in an OData string literal of a filter, in a continuation
// token, in the request lines inside a batch body. Every key is used as
// both PartitionKey and RowKey. '#', '/', '\', '?' and control characters
// are not allowed in keys by Azure and are checked for refusal.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { odata, TableTransaction } from "@azure/data-tables";
import { all, call, eg, legacyService, rejects } from "../clients.mjs";

export const KEYS = [
  "O'Brien",
  "''",
  'say "hi"',
  "with space",
  " leading and trailing ",
  "100%",
  "%41%2F%3F", // looks percent-encoded; must stay literal
  "a+b=c&d",
  "!$&()*+,;=:@[]{}~^`|<>.-_",
  "ключ",
  "日本語キー",
  "😀𝄞 non-BMP",
  "",
];

export default function keys(ctx) {
  describe("keys", () => {
    ctx.test("awkward keys: insert, get, merge, filter, delete (data-tables)", async () => {
      const { client } = await ctx.newTable("keys");
      for (const k of KEYS) {
        await client.createEntity({ partitionKey: k, rowKey: k, v: 1 });
      }
      for (const k of KEYS) {
        const label = JSON.stringify(k);
        const e = await client.getEntity(k, k);
        assert.equal(e.partitionKey, k, label);
        assert.equal(e.rowKey, k, label);
        await client.updateEntity({ partitionKey: k, rowKey: k, w: 2 }, "Merge", { etag: e.etag });
        const q = await all(client.listEntities({ queryOptions: { filter: odata`PartitionKey eq ${k} and RowKey eq ${k}` } }));
        assert.equal(q.length, 1, `filter on ${label}`);
        assert.deepEqual([q[0].partitionKey, q[0].rowKey, q[0].v, q[0].w], [k, k, 1, 2], label);
      }
      // Full scan returns every key once, in key order.
      const scanned = (await all(client.listEntities())).map((e) => e.partitionKey);
      assert.deepEqual(scanned, [...KEYS].sort(), "scan order is the ordinal order of keys");
      for (const k of KEYS) await client.deleteEntity(k, k);
      assert.deepEqual(await all(client.listEntities()), []);
    });

    ctx.test("awkward keys through the legacy SDK", async () => {
      const { name } = await ctx.newTable("lkeys");
      const lg = legacyService(ctx.target);
      for (const k of KEYS) {
        const label = JSON.stringify(k);
        await call(lg, "insertEntity", name, { PartitionKey: eg.String(k), RowKey: eg.String(k), v: eg.Int32(1) });
        const got = (await call(lg, "retrieveEntity", name, k, k)).result;
        assert.equal(got.RowKey._, k, label);
        await call(lg, "mergeEntity", name, { PartitionKey: eg.String(k), RowKey: eg.String(k), w: eg.Int32(2) });
        await call(lg, "deleteEntity", name, { PartitionKey: eg.String(k), RowKey: eg.String(k) });
        await rejects(call(lg, "retrieveEntity", name, k, k), 404, "ResourceNotFound");
      }
    });

    ctx.test("awkward row keys inside a transaction", async () => {
      const { client } = await ctx.newTable("bkeys");
      const pk = "part 'ition' ✓";
      const tx = new TableTransaction();
      for (const k of KEYS) tx.createEntity({ partitionKey: pk, rowKey: k, v: 1 });
      await client.submitTransaction(tx.actions);
      const tx2 = new TableTransaction();
      for (const k of KEYS) tx2.updateEntity({ partitionKey: pk, rowKey: k, v: 2 }, "Merge");
      await client.submitTransaction(tx2.actions);
      const rows = await all(client.listEntities());
      assert.deepEqual(rows.map((e) => e.rowKey), [...KEYS].sort());
      assert.ok(rows.every((e) => e.partitionKey === pk && e.v === 2));
      const tx3 = new TableTransaction();
      for (const k of KEYS) tx3.deleteEntity(pk, k);
      await client.submitTransaction(tx3.actions);
      assert.deepEqual(await all(client.listEntities()), []);
    });

    ctx.test("keys with forbidden characters are refused with 400", async () => {
      const { client } = await ctx.newTable("badkeys");
      for (const bad of ["a/b", "a\\b", "a#b", "a?b", "a\tb", "a\u007fb"]) {
        await rejects(client.createEntity({ partitionKey: bad, rowKey: "r" }), 400);
        await rejects(client.createEntity({ partitionKey: "p", rowKey: bad }), 400);
      }
      assert.deepEqual(await all(client.listEntities()), [], "nothing was stored");
    });
  });
}

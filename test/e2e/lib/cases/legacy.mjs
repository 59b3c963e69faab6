// Entities through the legacy azure-storage SDK: the same operations with
// its own serializer, Prefer handling (echoContent) and ETag plumbing, and
// data written by one SDK read by the other.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { call, eg, legacyService, rejects, strip, tableClient } from "../clients.mjs";

// The plain values of a legacy entity ({_: value, $: type} per property),
// without the metadata the SDK adds.
function plain(e) {
  const out = {};
  for (const [k, v] of Object.entries(e)) {
    if (k === ".metadata" || k === "Timestamp") continue;
    out[k] = v._;
  }
  return out;
}

const ent = (pk, rk, props = {}) => {
  const e = { PartitionKey: eg.String(pk), RowKey: eg.String(rk) };
  for (const [k, v] of Object.entries(props)) e[k] = typeof v === "number" ? eg.Int32(v) : eg.String(v);
  return e;
};

export default function legacyEntities(ctx) {
  describe("entities (legacy azure-storage)", () => {
    ctx.test("insert without and with echoContent, then retrieve", async () => {
      const { name } = await ctx.newTable("lins");
      const lg = legacyService(ctx.target);
      const quiet = await call(lg, "insertEntity", name, ent("p", "a", { v: 1 }));
      assert.equal(quiet.response.statusCode, 204, "Prefer: return-no-content gives 204");
      assert.ok(quiet.result[".metadata"].etag);
      const echoed = await call(lg, "insertEntity", name, ent("p", "b", { v: 2 }), { echoContent: true });
      assert.equal(echoed.response.statusCode, 201, "Prefer: return-content gives 201");
      assert.deepEqual(plain(echoed.result), { PartitionKey: "p", RowKey: "b", v: 2 });
      const got = await call(lg, "retrieveEntity", name, "p", "b");
      assert.deepEqual(plain(got.result), { PartitionKey: "p", RowKey: "b", v: 2 });
      assert.equal(got.result[".metadata"].etag, echoed.result[".metadata"].etag);
    });

    ctx.test("replace, merge, insert-or-replace, insert-or-merge, delete", async () => {
      const { name } = await ctx.newTable("lops");
      const lg = legacyService(ctx.target);
      const get = async () => plain((await call(lg, "retrieveEntity", name, "p", "r")).result);
      await call(lg, "insertOrReplaceEntity", name, ent("p", "r", { a: 1, b: 2 }));
      assert.deepEqual(await get(), { PartitionKey: "p", RowKey: "r", a: 1, b: 2 });
      await call(lg, "replaceEntity", name, ent("p", "r", { c: 3 }));
      assert.deepEqual(await get(), { PartitionKey: "p", RowKey: "r", c: 3 });
      await call(lg, "mergeEntity", name, ent("p", "r", { d: 4 }));
      assert.deepEqual(await get(), { PartitionKey: "p", RowKey: "r", c: 3, d: 4 });
      await call(lg, "insertOrMergeEntity", name, ent("p", "r", { c: 5 }));
      assert.deepEqual(await get(), { PartitionKey: "p", RowKey: "r", c: 5, d: 4 });
      await call(lg, "insertOrReplaceEntity", name, ent("p", "r", { e: "x" }));
      assert.deepEqual(await get(), { PartitionKey: "p", RowKey: "r", e: "x" });
      await call(lg, "insertOrMergeEntity", name, ent("p", "new", { f: 6 }));
      assert.deepEqual(
        plain((await call(lg, "retrieveEntity", name, "p", "new")).result),
        { PartitionKey: "p", RowKey: "new", f: 6 },
      );
      await call(lg, "deleteEntity", name, ent("p", "r"));
      await rejects(call(lg, "retrieveEntity", name, "p", "r"), 404, "ResourceNotFound");
    });

    ctx.test("error codes: 409 on insert, 404 on replace/merge/delete of a missing entity", async () => {
      const { name } = await ctx.newTable("lerr");
      const lg = legacyService(ctx.target);
      await call(lg, "insertEntity", name, ent("p", "r"));
      await rejects(call(lg, "insertEntity", name, ent("p", "r")), 409, "EntityAlreadyExists");
      await rejects(call(lg, "replaceEntity", name, ent("p", "x")), 404, "ResourceNotFound");
      await rejects(call(lg, "mergeEntity", name, ent("p", "x")), 404, "ResourceNotFound");
      await rejects(call(lg, "deleteEntity", name, ent("p", "x")), 404, "ResourceNotFound");
    });

    ctx.test("ETags: stale fails with 412, current succeeds", async () => {
      const { name } = await ctx.newTable("letag");
      const lg = legacyService(ctx.target);
      const first = await call(lg, "insertEntity", name, ent("p", "r", { v: 1 }));
      const stale = first.result[".metadata"].etag;
      const withEtag = (e, etag) => ({ ...e, ".metadata": { etag } });
      const second = await call(lg, "replaceEntity", name, withEtag(ent("p", "r", { v: 2 }), stale));
      const current = second.result[".metadata"].etag;
      assert.notEqual(current, stale);
      await rejects(call(lg, "replaceEntity", name, withEtag(ent("p", "r", { v: 3 }), stale)), 412, "UpdateConditionNotSatisfied");
      await rejects(call(lg, "mergeEntity", name, withEtag(ent("p", "r", { v: 3 }), stale)), 412, "UpdateConditionNotSatisfied");
      await rejects(call(lg, "deleteEntity", name, withEtag(ent("p", "r"), stale)), 412, "UpdateConditionNotSatisfied");
      await call(lg, "mergeEntity", name, withEtag(ent("p", "r", { w: 4 }), current));
      const got = await call(lg, "retrieveEntity", name, "p", "r");
      assert.deepEqual(plain(got.result), { PartitionKey: "p", RowKey: "r", v: 2, w: 4 });
      await call(lg, "deleteEntity", name, withEtag(ent("p", "r"), got.result[".metadata"].etag));
      await rejects(call(lg, "retrieveEntity", name, "p", "r"), 404, "ResourceNotFound");
    });

    ctx.test("what one SDK writes the other reads the same", async () => {
      const { name } = await ctx.newTable("cross");
      const lg = legacyService(ctx.target);
      const dt = tableClient(ctx.target, name);
      await call(lg, "insertEntity", name, {
        ...ent("p", "fromLegacy"),
        s: eg.String("text"),
        i: eg.Int32(-7),
        l: eg.Int64("-9007199254740993"),
        d: eg.Double(2.5),
        b: eg.Boolean(true),
        t: eg.DateTime(new Date("2021-02-03T04:05:06.789Z")),
        g: eg.Guid("0f8fad5b-d9cb-469f-a165-70867728950e"),
        x: eg.Binary(Buffer.from([1, 2, 3])),
      });
      const a = strip(await dt.getEntity("p", "fromLegacy", { disableTypeConversion: true }));
      // The instant must match; "06.789Z" and "06.7890000Z" are the same one.
      assert.match(a.t.value, /^2021-02-03T04:05:06\.7890*Z$/);
      a.t.value = "2021-02-03T04:05:06.789Z";
      assert.deepEqual(a, {
        partitionKey: "p",
        rowKey: "fromLegacy",
        s: { value: "text", type: "String" },
        i: { value: "-7", type: "Int32" },
        l: { value: "-9007199254740993", type: "Int64" },
        d: { value: "2.5", type: "Double" },
        b: { value: "true", type: "Boolean" },
        t: { value: "2021-02-03T04:05:06.789Z", type: "DateTime" },
        g: { value: "0f8fad5b-d9cb-469f-a165-70867728950e", type: "Guid" },
        x: { value: "AQID", type: "Binary" },
      });

      await dt.createEntity({
        partitionKey: "p",
        rowKey: "fromDataTables",
        s: "text",
        i: -7,
        l: { type: "Int64", value: "-9007199254740993" },
        d: 2.5,
        b: true,
        t: new Date("2021-02-03T04:05:06.789Z"),
        g: { type: "Guid", value: "0f8fad5b-d9cb-469f-a165-70867728950e" },
        x: new Uint8Array([1, 2, 3]),
      });
      const r = (await call(lg, "retrieveEntity", name, "p", "fromDataTables")).result;
      const typed = {};
      for (const [k, v] of Object.entries(r)) {
        if (k === ".metadata" || k === "Timestamp") continue;
        typed[k] = [v.$ ?? null, Buffer.isBuffer(v._) ? v._.toString("base64") : v._ instanceof Date ? v._.toISOString() : v._];
      }
      assert.deepEqual(typed, {
        PartitionKey: ["Edm.String", "p"],
        RowKey: ["Edm.String", "fromDataTables"],
        s: [null, "text"],
        i: [null, -7],
        l: ["Edm.Int64", "-9007199254740993"],
        d: [null, 2.5],
        b: [null, true],
        t: ["Edm.DateTime", "2021-02-03T04:05:06.789Z"],
        g: ["Edm.Guid", "0f8fad5b-d9cb-469f-a165-70867728950e"],
        x: ["Edm.Binary", "AQID"],
      });
    });
  });
}

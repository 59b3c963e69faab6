// Entities through @azure/data-tables: every single-entity operation, its
// error answers, and optimistic concurrency with ETags.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { all, rejects, strip } from "../clients.mjs";

// An ETag the service never issued for the entity: well formed, long past.
const STALE = `W/"datetime'2000-01-01T00%3A00%3A00.0000000Z'"`;

export default function entities(ctx) {
  describe("entities (data-tables)", () => {
    ctx.test("insert then get returns the entity, its ETag and Timestamp", async () => {
      const { client } = await ctx.newTable("ins");
      const r = await client.createEntity({ partitionKey: "p", rowKey: "r", a: "x", n: 5 });
      assert.ok(r.etag, "insert returns an ETag");
      const e = await client.getEntity("p", "r");
      assert.deepEqual(strip(e), { partitionKey: "p", rowKey: "r", a: "x", n: 5 });
      assert.equal(e.etag, r.etag, "get returns the ETag the insert returned");
      assert.ok(!Number.isNaN(Date.parse(e.timestamp)), `Timestamp ${e.timestamp}`);
    });

    ctx.test("inserting an existing entity fails with 409 EntityAlreadyExists", async () => {
      const { client } = await ctx.newTable("insdup");
      await client.createEntity({ partitionKey: "p", rowKey: "r", a: 1 });
      await rejects(client.createEntity({ partitionKey: "p", rowKey: "r", a: 2 }), 409, "EntityAlreadyExists");
      assert.equal((await client.getEntity("p", "r")).a, 1, "the failed insert changed nothing");
    });

    ctx.test("getting a missing entity fails with 404 ResourceNotFound", async () => {
      const { client } = await ctx.newTable("get404");
      await client.createEntity({ partitionKey: "p", rowKey: "r" });
      await rejects(client.getEntity("p", "other"), 404, "ResourceNotFound");
      await rejects(client.getEntity("other", "r"), 404, "ResourceNotFound");
    });

    ctx.test("update (replace) drops properties not sent", async () => {
      const { client } = await ctx.newTable("repl");
      const r1 = await client.createEntity({ partitionKey: "p", rowKey: "r", a: 1, b: 2 });
      const r2 = await client.updateEntity({ partitionKey: "p", rowKey: "r", b: 3, c: 4 }, "Replace");
      assert.notEqual(r2.etag, r1.etag, "a write changes the ETag");
      const e = await client.getEntity("p", "r");
      assert.deepEqual(strip(e), { partitionKey: "p", rowKey: "r", b: 3, c: 4 });
      assert.equal(e.etag, r2.etag);
    });

    ctx.test("update (merge) keeps properties not sent", async () => {
      const { client } = await ctx.newTable("merge");
      const r1 = await client.createEntity({ partitionKey: "p", rowKey: "r", a: 1, b: 2 });
      const r2 = await client.updateEntity({ partitionKey: "p", rowKey: "r", b: 3, c: 4 }, "Merge");
      assert.notEqual(r2.etag, r1.etag);
      const e = await client.getEntity("p", "r");
      assert.deepEqual(strip(e), { partitionKey: "p", rowKey: "r", a: 1, b: 3, c: 4 });
      assert.equal(e.etag, r2.etag);
    });

    ctx.test("update and merge of a missing entity fail with 404 ResourceNotFound", async () => {
      const { client } = await ctx.newTable("upd404");
      await rejects(client.updateEntity({ partitionKey: "p", rowKey: "r", a: 1 }, "Replace"), 404, "ResourceNotFound");
      await rejects(client.updateEntity({ partitionKey: "p", rowKey: "r", a: 1 }, "Merge"), 404, "ResourceNotFound");
      await rejects(client.getEntity("p", "r"), 404, "ResourceNotFound");
    });

    ctx.test("upsert (replace) inserts, then replaces", async () => {
      const { client } = await ctx.newTable("upr");
      await client.upsertEntity({ partitionKey: "p", rowKey: "r", a: 1, b: 2 }, "Replace");
      assert.deepEqual(strip(await client.getEntity("p", "r")), { partitionKey: "p", rowKey: "r", a: 1, b: 2 });
      await client.upsertEntity({ partitionKey: "p", rowKey: "r", c: 3 }, "Replace");
      assert.deepEqual(strip(await client.getEntity("p", "r")), { partitionKey: "p", rowKey: "r", c: 3 });
    });

    ctx.test("upsert (merge) inserts, then merges", async () => {
      const { client } = await ctx.newTable("upm");
      await client.upsertEntity({ partitionKey: "p", rowKey: "r", a: 1, b: 2 }, "Merge");
      assert.deepEqual(strip(await client.getEntity("p", "r")), { partitionKey: "p", rowKey: "r", a: 1, b: 2 });
      await client.upsertEntity({ partitionKey: "p", rowKey: "r", b: 5, c: 3 }, "Merge");
      assert.deepEqual(strip(await client.getEntity("p", "r")), { partitionKey: "p", rowKey: "r", a: 1, b: 5, c: 3 });
    });

    ctx.test("delete removes the entity; deleting it again fails with 404 ResourceNotFound", async () => {
      const { client } = await ctx.newTable("del");
      await client.createEntity({ partitionKey: "p", rowKey: "r" });
      await client.createEntity({ partitionKey: "p", rowKey: "s" });
      await client.deleteEntity("p", "r");
      await rejects(client.getEntity("p", "r"), 404, "ResourceNotFound");
      await rejects(client.deleteEntity("p", "r"), 404, "ResourceNotFound");
      assert.deepEqual((await all(client.listEntities())).map((e) => e.rowKey), ["s"]);
      // A deleted entity can be inserted again.
      await client.createEntity({ partitionKey: "p", rowKey: "r", again: true });
      assert.equal((await client.getEntity("p", "r")).again, true);
    });

    ctx.test("a stale ETag fails with 412 UpdateConditionNotSatisfied on replace, merge and delete", async () => {
      const { client } = await ctx.newTable("stale");
      const first = await client.createEntity({ partitionKey: "p", rowKey: "r", v: 1 });
      const second = await client.updateEntity({ partitionKey: "p", rowKey: "r", v: 2 }, "Merge", { etag: first.etag });
      for (const etag of [first.etag, STALE]) {
        await rejects(
          client.updateEntity({ partitionKey: "p", rowKey: "r", v: 9 }, "Replace", { etag }),
          412, "UpdateConditionNotSatisfied",
        );
        await rejects(
          client.updateEntity({ partitionKey: "p", rowKey: "r", v: 9 }, "Merge", { etag }),
          412, "UpdateConditionNotSatisfied",
        );
        await rejects(client.deleteEntity("p", "r", { etag }), 412, "UpdateConditionNotSatisfied");
      }
      const e = await client.getEntity("p", "r");
      assert.equal(e.v, 2, "no failed conditional write changed the entity");
      assert.equal(e.etag, second.etag);
    });

    ctx.test("the current ETag and '*' both satisfy the condition", async () => {
      const { client } = await ctx.newTable("cur");
      let { etag } = await client.createEntity({ partitionKey: "p", rowKey: "r", v: 1 });
      ({ etag } = await client.updateEntity({ partitionKey: "p", rowKey: "r", v: 2 }, "Replace", { etag }));
      ({ etag } = await client.updateEntity({ partitionKey: "p", rowKey: "r", w: 3 }, "Merge", { etag }));
      assert.deepEqual(strip(await client.getEntity("p", "r")), { partitionKey: "p", rowKey: "r", v: 2, w: 3 });
      await client.updateEntity({ partitionKey: "p", rowKey: "r", v: 4 }, "Replace", { etag: "*" });
      await client.updateEntity({ partitionKey: "p", rowKey: "r", x: 5 }, "Merge", { etag: "*" });
      const e = await client.getEntity("p", "r");
      assert.deepEqual(strip(e), { partitionKey: "p", rowKey: "r", v: 4, x: 5 });
      await client.deleteEntity("p", "r", { etag: e.etag });
      await client.createEntity({ partitionKey: "p", rowKey: "r" });
      await client.deleteEntity("p", "r", { etag: "*" });
      await rejects(client.getEntity("p", "r"), 404, "ResourceNotFound");
    });

    ctx.test("two writers racing on one ETag: exactly one wins", async () => {
      const { client } = await ctx.newTable("race");
      const { etag } = await client.createEntity({ partitionKey: "p", rowKey: "r", n: 0 });
      const tries = [1, 2, 3, 4].map((n) =>
        client.updateEntity({ partitionKey: "p", rowKey: "r", n }, "Replace", { etag }).then(
          () => ({ n, ok: true }),
          (e) => ({ n, ok: false, status: e.statusCode }),
        ),
      );
      const out = await Promise.all(tries);
      const winners = out.filter((o) => o.ok);
      assert.equal(winners.length, 1, JSON.stringify(out));
      for (const o of out.filter((o) => !o.ok)) assert.equal(o.status, 412, JSON.stringify(o));
      assert.equal((await client.getEntity("p", "r")).n, winners[0].n);
    });

    ctx.test("every write returns a new ETag and reads return the latest", async () => {
      const { client } = await ctx.newTable("etag");
      const seen = new Set();
      const writes = [
        () => client.createEntity({ partitionKey: "p", rowKey: "r", v: 0 }),
        () => client.updateEntity({ partitionKey: "p", rowKey: "r", v: 1 }, "Replace"),
        () => client.updateEntity({ partitionKey: "p", rowKey: "r", w: 1 }, "Merge"),
        () => client.upsertEntity({ partitionKey: "p", rowKey: "r", v: 2 }, "Replace"),
        () => client.upsertEntity({ partitionKey: "p", rowKey: "r", w: 2 }, "Merge"),
      ];
      for (const w of writes) {
        const { etag } = await w();
        assert.ok(etag && !seen.has(etag), `fresh ETag expected, got ${etag}`);
        seen.add(etag);
        assert.equal((await client.getEntity("p", "r")).etag, etag);
        const [listed] = await all(client.listEntities());
        assert.equal(listed.etag, etag, "a query returns the same ETag as a point read");
      }
    });

    ctx.test("an entity of 252 properties is accepted, 253 are refused with 400", {
      skip: ctx.deviates("property-count") && "Azurite accepts more than 252 properties (see README)",
    }, async () => {
      const { client } = await ctx.newTable("props");
      const e = { partitionKey: "p", rowKey: "252" };
      for (let i = 0; i < 252; i++) e[`p${i}`] = i;
      await client.createEntity(e);
      assert.equal(Object.keys(strip(await client.getEntity("p", "252"))).length, 254);
      await rejects(client.createEntity({ ...e, rowKey: "253", p252: 1 }), 400, "TooManyProperties");
    });

    ctx.test("an entity over 1 MiB is refused with 400 EntityTooLarge", {
      skip: ctx.deviates("entity-size") && "Azurite accepts entities over 1 MiB (see README)",
    }, async () => {
      const { client } = await ctx.newTable("big");
      const e = { partitionKey: "p", rowKey: "big" };
      // 18 strings of 31,000 UTF-16 units: about 1.1 MB, each under the
      // 64 KiB property limit.
      for (let i = 0; i < 18; i++) e[`s${i}`] = String.fromCharCode(97 + i).repeat(31000);
      await rejects(client.createEntity(e), 400, ["EntityTooLarge", "RequestBodyTooLarge"]);
      await rejects(client.getEntity("p", "big"), 404, "ResourceNotFound");
    });

    ctx.test("a property over 64 KiB is refused with 400 PropertyValueTooLarge", async () => {
      const { client } = await ctx.newTable("bigprop");
      await client.createEntity({ partitionKey: "p", rowKey: "ok", s: "x".repeat(32768), b: new Uint8Array(65536) });
      await rejects(client.createEntity({ partitionKey: "p", rowKey: "s", s: "x".repeat(32769) }), 400, "PropertyValueTooLarge");
      await rejects(client.createEntity({ partitionKey: "p", rowKey: "b", b: new Uint8Array(65537) }), 400, "PropertyValueTooLarge");
      const ok = await client.getEntity("p", "ok");
      assert.equal(ok.s.length, 32768);
      assert.equal(ok.b.length, 65536);
    });
  });
}

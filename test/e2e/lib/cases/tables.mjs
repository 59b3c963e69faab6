// Tables: create, list (with paging), delete, and their 404/409 answers,
// through both SDKs.

import assert from "node:assert/strict";
import { describe } from "node:test";
import {
  all, call, errorCode, legacyService, rejects, serviceClient, tableClient, tableName,
} from "../clients.mjs";

async function listNames(svc, filter) {
  return (await all(svc.listTables({ queryOptions: { filter } }))).map((t) => t.name);
}

export default function tables(ctx) {
  describe("tables", () => {
    ctx.test("create, list and delete a table (data-tables)", async () => {
      const svc = serviceClient(ctx.target);
      const name = tableName("crud");
      await svc.createTable(name);
      assert.deepEqual(await listNames(svc, `TableName eq '${name}'`), [name]);
      await svc.deleteTable(name);
      assert.deepEqual(await listNames(svc, `TableName eq '${name}'`), []);
    });

    ctx.test("create, list and delete a table (legacy)", async () => {
      const lg = legacyService(ctx.target);
      const name = tableName("lcrud");
      const created = await call(lg, "createTable", name);
      assert.equal(created.result.TableName ?? created.result.name ?? name, name);
      assert.equal((await call(lg, "doesTableExist", name)).result.exists, true);
      const listed = await call(lg, "listTablesSegmentedWithPrefix", name, null);
      assert.deepEqual(listed.result.entries, [name]);
      await call(lg, "deleteTable", name);
      assert.equal((await call(lg, "doesTableExist", name)).result.exists, false);
    });

    ctx.test("creating an existing table fails with 409 TableAlreadyExists", async () => {
      const lg = legacyService(ctx.target);
      const name = tableName("dup");
      await call(lg, "createTable", name);
      await rejects(call(lg, "createTable", name), 409, "TableAlreadyExists");
      // The SDKs' create-if-not-exists paths depend on that exact code.
      assert.equal((await call(lg, "createTableIfNotExists", name)).result.created, false);
      await serviceClient(ctx.target).createTable(name); // swallows only TableAlreadyExists
    });

    ctx.test("table names are case-insensitive and keep their case", async () => {
      const lg = legacyService(ctx.target);
      const name = tableName("Case");
      await call(lg, "createTable", name);
      await rejects(call(lg, "createTable", name.toLowerCase()), 409, "TableAlreadyExists");
      const svc = serviceClient(ctx.target);
      assert.deepEqual(await listNames(svc, `TableName eq '${name}'`), [name]);
      // An entity written under one spelling is read under the other.
      await tableClient(ctx.target, name).createEntity({ partitionKey: "p", rowKey: "r", v: 1 });
      if (ctx.deviates("table-name-case")) return;
      const e = await tableClient(ctx.target, name.toUpperCase()).getEntity("p", "r");
      assert.equal(e.v, 1);
    });

    ctx.test("deleting a missing table fails with 404 ResourceNotFound", async () => {
      const lg = legacyService(ctx.target);
      const name = tableName("gone");
      await rejects(call(lg, "deleteTable", name), 404, "ResourceNotFound");
      assert.equal((await call(lg, "deleteTableIfExists", name)).result, false);
      await serviceClient(ctx.target).deleteTable(name); // swallows 404
    });

    ctx.test("entity operations on a missing table fail with 404 TableNotFound", async () => {
      const tc = tableClient(ctx.target, tableName("nope"));
      await rejects(tc.createEntity({ partitionKey: "p", rowKey: "r" }), 404, "TableNotFound");
      await rejects(tc.getEntity("p", "r"), 404, "TableNotFound");
      await rejects(all(tc.listEntities()), 404, "TableNotFound");
      await rejects(tc.upsertEntity({ partitionKey: "p", rowKey: "r" }, "Replace"), 404, "TableNotFound");
    });

    ctx.test("a deleted table's entities are gone and its name can be reused", async () => {
      const svc = serviceClient(ctx.target);
      const { name, client } = await ctx.newTable("reuse");
      await client.createEntity({ partitionKey: "p", rowKey: "r", v: 1 });
      await svc.deleteTable(name);
      await rejects(client.getEntity("p", "r"), 404, "TableNotFound");
      // Azure keeps a deleted name busy for a while (409 TableBeingDeleted);
      // an emulator or the proxy may free it at once. Either is correct.
      try {
        await call(legacyService(ctx.target), "createTable", name);
      } catch (e) {
        assert.equal(e.statusCode, 409, e.message);
        return;
      }
      assert.deepEqual(await all(client.listEntities()), []);
    });

    ctx.test("listing tables pages with a continuation token", async () => {
      const svc = serviceClient(ctx.target);
      const stem = tableName("pg");
      const names = [];
      for (let i = 0; i < 5; i++) {
        names.push(`${stem}x${i}`);
        await svc.createTable(names[i]);
      }
      const filter = `TableName ge '${stem}x' and TableName lt '${stem}y'`;
      const pages = [];
      for await (const page of svc.listTables({ queryOptions: { filter } }).byPage({ maxPageSize: 2 })) {
        pages.push({ names: page.map((t) => t.name), token: page.continuationToken });
      }
      assert.deepEqual(pages.flatMap((p) => p.names), names);
      assert.ok(pages.length >= 3, `expected at least 3 pages of at most 2, got ${pages.length}`);
      for (const p of pages) assert.ok(p.names.length <= 2);
      assert.ok(pages.slice(0, -1).every((p) => p.token), "every page but the last has a token");

      // The legacy SDK pages with NextTableName the same way.
      const lg = legacyService(ctx.target);
      const seen = [];
      let token = null;
      do {
        const r = await call(lg, "listTablesSegmentedWithPrefix", stem, token, { maxResults: 2 });
        seen.push(...r.result.entries);
        token = r.result.continuationToken;
      } while (token);
      assert.deepEqual(seen, names);
    });

    ctx.test("an invalid table name fails with 400", async () => {
      const svc = serviceClient(ctx.target);
      for (const bad of ["1abc", "ab", "a-b-c", "x".repeat(64)]) {
        const err = await rejects(svc.createTable(bad), 400);
        if (!ctx.deviates("table-name-code")) {
          const code = errorCode(err);
          assert.ok(
            ["InvalidResourceName", "OutOfRangeInput", "InvalidInput"].includes(code),
            `table name '${bad}': unexpected code ${code}`,
          );
        }
      }
    });
  });
}

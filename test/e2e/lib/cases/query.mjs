// Queries: $filter on every type and operator, $select, $top. One table of
// twelve entities, written once for the group, is queried read-only by
// every case.

import assert from "node:assert/strict";
import { before, describe } from "node:test";
import { odata } from "@azure/data-tables";
import { all, call, legacyService, rejects, TableQuery } from "../clients.mjs";

const G = (i) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;
const T = (i) => `2020-01-${String(i + 1).padStart(2, "0")}T00:00:00.0000001Z`;

// Entity i (0..11) in partition "a" (even i) or "b" (odd i). Every third
// entity has no "i32" property, so filters on it must skip them.
function row(i) {
  const e = {
    partitionKey: i % 2 ? "b" : "a",
    rowKey: `r${String(i).padStart(2, "0")}`,
    i64: { type: "Int64", value: String(BigInt(i) * 1000000000000n - 5000000000000n) },
    dbl: { type: "Double", value: i + 0.5 },
    flag: i % 4 === 0,
    when: { type: "DateTime", value: T(i) },
    id: { type: "Guid", value: G(i) },
    bytes: new Uint8Array([i, i + 1]),
    name: `name ${String.fromCharCode(65 + i)}${i === 3 ? " O'Hara" : ""}`,
  };
  if (i % 3 !== 0) e.i32 = i - 6;
  return e;
}
const ROWS = Array.from({ length: 12 }, (_, i) => row(i));

// Runs a filter and returns the row numbers it matched, in result order.
async function matched(client, filter) {
  const got = await all(client.listEntities({ queryOptions: { filter } }));
  return got.map((e) => Number(e.rowKey.slice(1)));
}

function expect(pred) {
  // Azure returns rows in (PartitionKey, RowKey) order: "a" rows, then "b".
  const ids = ROWS.map((_, i) => i).filter((i) => pred(ROWS[i]));
  return [...ids.filter((i) => i % 2 === 0), ...ids.filter((i) => i % 2 === 1)];
}

const hex = (i) => Buffer.from([i, i + 1]).toString("hex");

export default function query(ctx) {
  describe("query", () => {
    let client;
    let name;
    before(async () => {
      if (ctx.skipAll || !ctx.target) return;
      ({ client, name } = await ctx.newTable("query"));
      for (const e of ROWS) await client.createEntity(e);
    });

    const cases = [
      ["Int32 eq", "i32 eq -4", (e) => e.i32 === -4],
      ["Int32 ne (rows without it excluded)", "i32 ne -4", (e) => e.i32 !== undefined && e.i32 !== -4],
      ["Int32 gt", "i32 gt 0", (e) => e.i32 > 0],
      ["Int32 ge", "i32 ge 1", (e) => e.i32 >= 1],
      ["Int32 lt", "i32 lt -3", (e) => e.i32 < -3],
      ["Int32 le", "i32 le -4", (e) => e.i32 <= -4],
      ["Int64 eq", "i64 eq 2000000000000L", (e) => e.i64.value === "2000000000000"],
      ["Int64 lt (negative)", "i64 lt -2000000000000L", (e) => BigInt(e.i64.value) < -2000000000000n],
      ["Int64 ge", "i64 ge 3000000000000L", (e) => BigInt(e.i64.value) >= 3000000000000n],
      ["Double gt", "dbl gt 7.5", (e) => e.dbl.value > 7.5],
      ["Double le", "dbl le 2.5", (e) => e.dbl.value <= 2.5],
      ["Double eq", "dbl eq 4.5", (e) => e.dbl.value === 4.5],
      ["Boolean eq true", "flag eq true", (e) => e.flag],
      ["Boolean ne true", "flag ne true", (e) => !e.flag],
      ["DateTime gt", `when gt datetime'${T(8)}'`, (e) => e.when.value > T(8)],
      ["DateTime eq (7-digit ticks)", `when eq datetime'${T(5)}'`, (e) => e.when.value === T(5)],
      ["DateTime le", `when le datetime'2020-01-03T00:00:00.0000001Z'`, (e) => e.when.value <= T(2)],
      ["Guid eq", `id eq guid'${G(7)}'`, (e) => e.id.value === G(7)],
      ["Guid ne", `id ne guid'${G(7)}'`, (e) => e.id.value !== G(7)],
      ["Binary eq X''", `bytes eq X'${hex(6)}'`, (e) => e.bytes[0] === 6],
      ["Binary eq binary''", `bytes eq binary'${hex(9)}'`, (e) => e.bytes[0] === 9],
      ["String eq", "name eq 'name C'", (e) => e.name === "name C"],
      ["String with an escaped quote", "name eq 'name D O''Hara'", (e) => e.name === "name D O'Hara"],
      ["String range", "name ge 'name E' and name lt 'name H'", (e) => e.name >= "name E" && e.name < "name H"],
      ["PartitionKey eq", "PartitionKey eq 'b'", (e) => e.partitionKey === "b"],
      ["RowKey range", "RowKey gt 'r03' and RowKey le 'r07'", (e) => e.rowKey > "r03" && e.rowKey <= "r07"],
      ["PartitionKey and RowKey (point)", "PartitionKey eq 'a' and RowKey eq 'r04'", (e) => e.rowKey === "r04"],
      ["or", "i32 eq -5 or flag eq true", (e) => e.i32 === -5 || e.flag],
      ["not", "not (PartitionKey eq 'a')", (e) => e.partitionKey !== "a"],
      // A comparison with a missing property is false, and "not" negates
      // that: "not (i32 lt 0)" matches the rows that have no i32.
      ["not over a missing property", "not (i32 lt 0)", (e) => !(e.i32 !== undefined && e.i32 < 0)],
      ["nested and/or/not", "(PartitionKey eq 'a' and not (i32 lt 0)) or (dbl gt 10.0)",
        (e) => (e.partitionKey === "a" && !(e.i32 !== undefined && e.i32 < 0)) || e.dbl.value > 10],
      ["missing property matches nothing", "nosuch eq 1", () => false],
      ["no row matches", "PartitionKey eq 'zzz'", () => false],
    ];
    for (const [label, filter, pred] of cases) {
      ctx.test(`$filter ${label}: ${filter}`, async () => {
        assert.deepEqual(await matched(client, filter), expect(pred), filter);
      });
    }

    ctx.test("$filter built with the odata helper (quotes escaped by the SDK)", async () => {
      const got = await matched(client, odata`name eq ${"name D O'Hara"} and dbl eq ${3.5}`);
      assert.deepEqual(got, [3]);
    });

    ctx.test("$filter through the legacy SDK's TableQuery", async () => {
      const lg = legacyService(ctx.target);
      // (3.5, not 3.0: the SDK prints a whole double as an Int32 literal.)
      const q = new TableQuery().where("PartitionKey eq ?", "a").and("dbl gt ?", 3.5);
      const r = await call(lg, "queryEntities", name, q, null);
      assert.deepEqual(
        r.result.entries.map((e) => Number(e.RowKey._.slice(1))),
        expect((e) => e.partitionKey === "a" && e.dbl.value > 3.5),
      );
    });

    ctx.test("a literal of another numeric type matches nothing", {
      skip: ctx.deviates("filter-type-coercion") && "Azurite converts between numeric types (see README)",
    }, async () => {
      for (const filter of ["dbl gt 3", "dbl eq 4L", "i32 eq -4L", "i32 lt 0.5", "i64 eq 2000000000000.0"]) {
        assert.deepEqual(await matched(client, filter), [], filter);
      }
    });

    ctx.test("an invalid filter fails with 400", async () => {
      for (const bad of ["i32 eq", "i32 eqq 1", "(PartitionKey eq 'a'"]) {
        await rejects(all(client.listEntities({ queryOptions: { filter: bad } })), 400);
      }
    });

    ctx.test("$select returns only the chosen properties", async () => {
      const got = await all(client.listEntities({
        queryOptions: { filter: "PartitionKey eq 'a'", select: ["name", "i32"] },
      }));
      assert.equal(got.length, 6);
      for (const [n, e] of got.entries()) {
        const i = n * 2;
        const props = Object.keys(e).filter((k) => k !== "etag" && !k.startsWith("odata."));
        const want = ROWS[i].i32 === undefined ? ["name"] : ["i32", "name"];
        // A selected property the entity lacks may come back as null.
        const present = props.filter((k) => e[k] !== null).sort();
        assert.deepEqual(present, want, `row ${i}: ${JSON.stringify(e)}`);
        assert.equal(e.name, ROWS[i].name);
        assert.ok(e.etag, "an ETag comes with every selected row");
      }
    });

    ctx.test("$select with keys, and with a property no row has", async () => {
      const got = await all(client.listEntities({
        queryOptions: { filter: "RowKey eq 'r01'", select: ["PartitionKey", "RowKey", "nosuch"] },
      }));
      assert.equal(got.length, 1);
      assert.equal(got[0].partitionKey, "b");
      assert.equal(got[0].rowKey, "r01");
      assert.ok(got[0].nosuch === undefined || got[0].nosuch === null);
      assert.equal(got[0].name, undefined);
    });

    ctx.test("$select through the legacy SDK", async () => {
      const lg = legacyService(ctx.target);
      const q = new TableQuery().select("dbl").where("PartitionKey eq ?", "b");
      const r = await call(lg, "queryEntities", name, q, null);
      assert.equal(r.result.entries.length, 6);
      for (const e of r.result.entries) {
        const props = Object.keys(e).filter((k) => k !== ".metadata");
        assert.deepEqual(props, ["dbl"]);
      }
    });

    ctx.test("$top limits a page and returns a continuation", async () => {
      const pages = [];
      for await (const p of client.listEntities().byPage({ maxPageSize: 5 })) {
        pages.push({ n: p.length, token: p.continuationToken });
      }
      assert.deepEqual(pages.map((p) => p.n), [5, 5, 2]);
      assert.ok(pages[0].token && pages[1].token);
      assert.equal(pages[2].token, undefined);
      // With a filter the limit applies to matching rows.
      const first = await client.listEntities({ queryOptions: { filter: "PartitionKey eq 'b'" } })
        .byPage({ maxPageSize: 4 }).next();
      assert.deepEqual(first.value.map((e) => e.rowKey), ["r01", "r03", "r05", "r07"]);
      assert.ok(first.value.continuationToken);
    });

    ctx.test("$top through the legacy SDK", async () => {
      const lg = legacyService(ctx.target);
      const r = await call(lg, "queryEntities", name, new TableQuery().top(3), null);
      assert.equal(r.result.entries.length, 3);
      assert.ok(r.result.continuationToken?.nextPartitionKey, "a continuation is returned");
      const r2 = await call(lg, "queryEntities", name, new TableQuery().top(3), r.result.continuationToken);
      assert.deepEqual(r2.result.entries.map((e) => e.RowKey._), ["r06", "r08", "r10"]);
    });
  });
}

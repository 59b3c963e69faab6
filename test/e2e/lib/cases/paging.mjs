// Paging: a few thousand entities over several partitions read through
// continuation tokens (NextPartitionKey / NextRowKey) by both SDKs, with
// and without a filter, and resumed from a saved token.

import assert from "node:assert/strict";
import { before, describe } from "node:test";
import { TableTransaction } from "@azure/data-tables";
import { call, legacyService, TableQuery } from "../clients.mjs";

const PARTITIONS = 5;
const PER_PARTITION = 500;
const TOTAL = PARTITIONS * PER_PARTITION;
const key = (n) => ({
  partitionKey: `p${Math.floor(n / PER_PARTITION)}`,
  rowKey: String(n % PER_PARTITION).padStart(4, "0"),
});

async function pages(iter) {
  const out = [];
  for await (const p of iter) out.push({ rows: p.map((e) => e.n), token: p.continuationToken });
  return out;
}

export default function paging(ctx) {
  describe("paging", () => {
    let client;
    let name;
    before(async () => {
      if (ctx.skipAll || !ctx.target) return;
      ({ client, name } = await ctx.newTable("paging"));
      for (let p = 0; p < PARTITIONS; p++) {
        for (let b = 0; b < PER_PARTITION; b += 100) {
          const tx = new TableTransaction();
          for (let i = b; i < b + 100; i++) {
            const n = p * PER_PARTITION + i;
            tx.createEntity({ ...key(n), n, pad: "x".repeat(50) });
          }
          await client.submitTransaction(tx.actions);
        }
      }
    });

    const everything = Array.from({ length: TOTAL }, (_, n) => n);

    ctx.test(`reads all ${TOTAL} entities in key order over default pages`, { timeout: 240000 }, async () => {
      const ps = await pages(client.listEntities().byPage());
      assert.deepEqual(ps.flatMap((p) => p.rows), everything);
      assert.ok(ps.length >= 3, `a page holds at most 1000 rows; got ${ps.length} pages`);
      for (const p of ps) assert.ok(p.rows.length <= 1000);
      assert.ok(ps.slice(0, -1).every((p) => p.token), "every page but the last has a token");
      assert.equal(ps.at(-1).token, undefined);
    });

    ctx.test("pages of 333 cross partition boundaries", { timeout: 240000 }, async () => {
      const ps = await pages(client.listEntities().byPage({ maxPageSize: 333 }));
      assert.deepEqual(ps.flatMap((p) => p.rows), everything);
      for (const p of ps.slice(0, -1)) assert.equal(p.rows.length, 333);
      assert.equal(ps.length, Math.ceil(TOTAL / 333));
    });

    ctx.test("a filtered scan pages to the same rows", { timeout: 240000 }, async () => {
      const filter = "n ge 450 and n lt 2100 and RowKey ne '0007'";
      const want = everything.filter((n) => n >= 450 && n < 2100 && n % PER_PARTITION !== 7);
      const ps = await pages(client.listEntities({ queryOptions: { filter } }).byPage({ maxPageSize: 400 }));
      // The service may cut a filtered page short, even to zero rows, as
      // long as it hands out a token; the rows seen must still be exact.
      assert.deepEqual(ps.flatMap((p) => p.rows), want);
      for (const p of ps) assert.ok(p.rows.length <= 400);
    });

    ctx.test("a scan resumes from a saved continuation token", { timeout: 240000 }, async () => {
      const first = await client.listEntities().byPage({ maxPageSize: 700 }).next();
      const token = first.value.continuationToken;
      assert.ok(token);
      const rest = await pages(client.listEntities().byPage({ maxPageSize: 700, continuationToken: token }));
      assert.deepEqual([...first.value.map((e) => e.n), ...rest.flatMap((p) => p.rows)], everything);
    });

    ctx.test("the legacy SDK pages with its continuation object", { timeout: 240000 }, async () => {
      const lg = legacyService(ctx.target);
      const seen = [];
      let token = null;
      let n = 0;
      do {
        const r = await call(lg, "queryEntities", name, new TableQuery().select("n").top(900), token);
        seen.push(...r.result.entries.map((e) => e.n._));
        token = r.result.continuationToken;
        n++;
      } while (token);
      assert.deepEqual(seen, everything);
      assert.equal(n, Math.ceil(TOTAL / 900));
    });

    ctx.test("a point query in a large table returns one row and no token", async () => {
      const ps = await pages(client.listEntities({
        queryOptions: { filter: "PartitionKey eq 'p3' and RowKey eq '0123'" },
      }).byPage());
      assert.deepEqual(ps.flatMap((p) => p.rows), [3 * PER_PARTITION + 123]);
    });
  });
}

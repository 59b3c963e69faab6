// Many clients at once: optimistic concurrency under contention must lose
// no update, and parallel writers in separate partitions must all land.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { TableTransaction } from "@azure/data-tables";
import { all, tableClient } from "../clients.mjs";

export default function concurrency(ctx) {
  describe("concurrency", () => {
    ctx.test("ETag-guarded increments from 4 clients lose no update", async () => {
      const { name } = await ctx.newTable("incr");
      await tableClient(ctx.target, name).createEntity({ partitionKey: "p", rowKey: "counter", n: 0 });
      const WORKERS = 4;
      const EACH = 8;
      let conflicts = 0;
      const worker = async () => {
        const c = tableClient(ctx.target, name); // its own client, its own connections
        for (let done = 0; done < EACH;) {
          const e = await c.getEntity("p", "counter");
          try {
            await c.updateEntity({ partitionKey: "p", rowKey: "counter", n: e.n + 1 }, "Replace", { etag: e.etag });
            done++;
          } catch (err) {
            if (err.statusCode !== 412) throw err;
            conflicts++;
          }
        }
      };
      await Promise.all(Array.from({ length: WORKERS }, worker));
      const final = await tableClient(ctx.target, name).getEntity("p", "counter");
      assert.equal(final.n, WORKERS * EACH, `${conflicts} conflicts were retried`);
    });

    ctx.test("8 parallel writers in their own partitions all land", async () => {
      const { name } = await ctx.newTable("par");
      const writer = async (w) => {
        const c = tableClient(ctx.target, name);
        for (let i = 0; i < 10; i++) {
          await c.upsertEntity({ partitionKey: `w${w}`, rowKey: `r${i}`, w, i }, i % 2 ? "Merge" : "Replace");
        }
        const tx = new TableTransaction();
        for (let i = 10; i < 20; i++) tx.createEntity({ partitionKey: `w${w}`, rowKey: `r${i}`, w, i });
        await c.submitTransaction(tx.actions);
        await c.deleteEntity(`w${w}`, "r0");
      };
      await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
      const rows = await all(tableClient(ctx.target, name).listEntities());
      assert.equal(rows.length, 8 * 19);
      for (let w = 0; w < 8; w++) {
        const mine = rows.filter((e) => e.partitionKey === `w${w}`).map((e) => e.i).sort((a, b) => a - b);
        assert.deepEqual(mine, Array.from({ length: 19 }, (_, k) => k + 1), `writer ${w}`);
      }
    });
  });
}

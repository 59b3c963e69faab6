// Protocol details an SDK or an application reads from the response
// headers: request ids, the echoed client request id, Date, x-ms-version,
// Content-Type per metadata level, Preference-Applied.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { TableClient, TableServiceClient } from "@azure/data-tables";
import { all, call, legacyService, TableUtilities, tableName } from "../clients.mjs";

const DT_VERSION = "2019-02-02"; // what @azure/data-tables 13 sends

function recorder() {
  const seen = [];
  return {
    seen,
    onResponse: (raw) => seen.push({ status: raw.status, headers: raw.headers, request: raw.request }),
  };
}

function checkCommon(ctx, { status, headers }, label) {
  assert.ok(headers.get("x-ms-request-id"), `${label} (${status}): x-ms-request-id`);
  const date = headers.get("date");
  assert.ok(date && !Number.isNaN(Date.parse(date)), `${label} (${status}): Date ${date}`);
  const v = headers.get("x-ms-version");
  assert.ok(v, `${label} (${status}): x-ms-version`);
  if (!ctx.deviates("version-header")) assert.equal(v, DT_VERSION, `${label}: x-ms-version`);
}

export default function protocol(ctx) {
  describe("protocol", () => {
    ctx.test("responses carry x-ms-request-id, Date and x-ms-version, errors too", async () => {
      const { client } = await ctx.newTable("hdr");
      const rec = recorder();
      await client.createEntity({ partitionKey: "p", rowKey: "r" }, { onResponse: rec.onResponse });
      await client.getEntity("p", "r", { onResponse: rec.onResponse });
      await all(client.listEntities({ onResponse: rec.onResponse }));
      await client.deleteEntity("p", "r", { onResponse: rec.onResponse });
      await client.getEntity("p", "r", { onResponse: rec.onResponse }).catch(() => {});
      await client.createEntity({ partitionKey: "p", rowKey: "r" });
      await client.createEntity({ partitionKey: "p", rowKey: "r" }, { onResponse: rec.onResponse }).catch(() => {});
      assert.deepEqual(rec.seen.map((s) => s.status), [204, 200, 200, 204, 404, 409]);
      const ids = new Set();
      for (const [i, s] of rec.seen.entries()) {
        checkCommon(ctx, s, `response ${i}`);
        ids.add(s.headers.get("x-ms-request-id"));
      }
      assert.equal(ids.size, rec.seen.length, "every response has its own request id");
      assert.equal(rec.seen[4].headers.get("x-ms-error-code"), "ResourceNotFound");
      assert.equal(rec.seen[5].headers.get("x-ms-error-code"), "EntityAlreadyExists");
    });

    ctx.test("x-ms-client-request-id is echoed", async () => {
      const { client } = await ctx.newTable("crid");
      const rec = recorder();
      await client.createEntity({ partitionKey: "p", rowKey: "r" }, { onResponse: rec.onResponse });
      const [s] = rec.seen;
      const sent = s.request.headers.get("x-ms-client-request-id");
      assert.ok(sent, "the SDK sends x-ms-client-request-id");
      const echoed = s.headers.get("x-ms-client-request-id");
      assert.equal(echoed, sent, `x-ms-client-request-id: sent ${sent}, response has ${echoed}`);
    });

    ctx.test("insert answers Preference-Applied to Prefer: return-no-content", async () => {
      const { client } = await ctx.newTable("pref");
      const rec = recorder();
      await client.createEntity({ partitionKey: "p", rowKey: "r" }, { onResponse: rec.onResponse });
      assert.equal(rec.seen[0].status, 204);
      assert.equal(rec.seen[0].headers.get("preference-applied"), "return-no-content");
      assert.ok(rec.seen[0].headers.get("etag"));
    });

    // Applications configure the endpoint with a connection string; both
    // SDKs parse one pointing at http://127.0.0.1:PORT/devstoreaccount1
    // (what UseDevelopmentStorage=true expands to, on another port).
    ctx.test("clients built from a connection string work (both SDKs)", async () => {
      const cs = ctx.target.connectionString;
      const opts = { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } };
      const name = tableName("cs");
      await TableServiceClient.fromConnectionString(cs, opts).createTable(name);
      const tc = TableClient.fromConnectionString(cs, name, opts);
      await tc.createEntity({ partitionKey: "p", rowKey: "r", v: 1 });
      const lg = legacyService(ctx.target);
      assert.equal((await call(lg, "retrieveEntity", name, "p", "r")).result.v._, 1);
    });

    ctx.test("the response Content-Type follows the requested metadata level", async () => {
      const { name, client } = await ctx.newTable("ctype");
      await client.createEntity({ partitionKey: "p", rowKey: "r", v: 1 });
      const lg = legacyService(ctx.target);
      for (const fmt of Object.values(TableUtilities.PayloadFormat)) {
        const r = await call(lg, "retrieveEntity", name, "p", "r", { payloadFormat: fmt });
        const ct = r.response.headers["content-type"];
        assert.ok(ct.replace(/\s/g, "").startsWith(fmt), `asked ${fmt}, got ${ct}`);
        assert.equal(r.result.v._, 1);
        const q = await call(lg, "queryEntities", name, null, null, { payloadFormat: fmt });
        assert.ok(q.response.headers["content-type"].replace(/\s/g, "").startsWith(fmt));
        assert.equal(q.result.entries.length, 1);
      }
    });
  });
}

// Authentication and authorisation: Shared Key with a wrong key, table SAS
// (permissions, time window, client IP range, key range, tampering), account SAS, the
// legacy SDK's SAS, and unsigned requests.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { generateAccountSas, generateTableSas, TableServiceClient, AzureSASCredential, TableTransaction } from "@azure/data-tables";
import {
  all, call, credential, eg, legacySasService, legacyService, rejects, serviceClient, tableClient,
} from "../clients.mjs";

const WRONG_KEY = Buffer.alloc(64, 7).toString("base64");
const hour = 3600 * 1000;

function tableSas(ctx, table, permissions, { start, expiry, ...rest } = {}) {
  return generateTableSas(table, credential(ctx.target), {
    permissions,
    startsOn: start,
    expiresOn: expiry ?? new Date(Date.now() + hour),
    ...rest,
  });
}

async function seeded(ctx, hint) {
  const t = await ctx.newTable(hint);
  await t.client.createEntity({ partitionKey: "p", rowKey: "r", v: 1 });
  return t;
}

export default function auth(ctx) {
  describe("authentication", () => {
    ctx.test("a wrong account key fails with 403 (both SDKs)", async () => {
      const { name } = await seeded(ctx, "wrongkey");
      await rejects(tableClient(ctx.target, name, { key: WRONG_KEY }).getEntity("p", "r"), 403, ctx.authCodes());
      await rejects(all(serviceClient(ctx.target, { key: WRONG_KEY }).listTables()), 403, ctx.authCodes());
      await rejects(
        tableClient(ctx.target, name, { key: WRONG_KEY }).createEntity({ partitionKey: "p", rowKey: "x" }),
        403, ctx.authCodes(),
      );
      const lg = legacyService(ctx.target, { key: WRONG_KEY });
      await rejects(call(lg, "retrieveEntity", name, "p", "r"), 403, ctx.authCodes());
      await rejects(call(lg, "insertEntity", name, { PartitionKey: eg.String("p"), RowKey: eg.String("y") }), 403, ctx.authCodes());
      const rows = await all(tableClient(ctx.target, name).listEntities());
      assert.deepEqual(rows.map((e) => e.rowKey), ["r"], "no write got through");
    });

    ctx.test("an unsigned request fails with 403", async () => {
      const { name } = await seeded(ctx, "unsigned");
      const r = await fetch(`${ctx.target.endpoint}/${name}()`, {
        headers: { accept: "application/json;odata=nometadata", "x-ms-version": "2019-02-02" },
      });
      await r.arrayBuffer();
      assert.equal(r.status, 403);
      assert.ok(ctx.authCodes().includes(r.headers.get("x-ms-error-code")), r.headers.get("x-ms-error-code"));
    });

    ctx.test("read-only table SAS: reads work, every write fails with 403", async () => {
      const { name } = await seeded(ctx, "sasro");
      const ro = tableClient(ctx.target, name, { sas: tableSas(ctx, name, { query: true }) });
      assert.equal((await ro.getEntity("p", "r")).v, 1);
      assert.equal((await all(ro.listEntities())).length, 1);
      const denied = "AuthorizationPermissionMismatch";
      await rejects(ro.createEntity({ partitionKey: "p", rowKey: "new" }), 403, denied);
      await rejects(ro.updateEntity({ partitionKey: "p", rowKey: "r", v: 2 }, "Merge"), 403, denied);
      await rejects(ro.upsertEntity({ partitionKey: "p", rowKey: "r", v: 2 }, "Replace"), 403, denied);
      await rejects(ro.deleteEntity("p", "r"), 403, denied);
      const tx = new TableTransaction();
      tx.createEntity({ partitionKey: "p", rowKey: "b1" });
      await rejects(ro.submitTransaction(tx.actions), 403);
      const rows = await all(tableClient(ctx.target, name).listEntities());
      assert.deepEqual(rows.map((e) => [e.rowKey, e.v]), [["r", 1]]);
    });

    ctx.test("add-only table SAS: inserts work, reads fail with 403", async () => {
      const { name } = await seeded(ctx, "sasadd");
      const ao = tableClient(ctx.target, name, { sas: tableSas(ctx, name, { add: true }) });
      await ao.createEntity({ partitionKey: "p", rowKey: "added" });
      await rejects(ao.getEntity("p", "r"), 403, "AuthorizationPermissionMismatch");
      await rejects(ao.deleteEntity("p", "r"), 403, "AuthorizationPermissionMismatch");
      const rows = await all(tableClient(ctx.target, name).listEntities());
      assert.deepEqual(rows.map((e) => e.rowKey), ["added", "r"]);
    });

    ctx.test("full table SAS allows every operation on its table only", async () => {
      const { name } = await seeded(ctx, "sasfull");
      const other = await seeded(ctx, "sasother");
      const sas = tableSas(ctx, name, { query: true, add: true, update: true, delete: true });
      const c = tableClient(ctx.target, name, { sas });
      await c.createEntity({ partitionKey: "p", rowKey: "a" });
      await c.updateEntity({ partitionKey: "p", rowKey: "a", v: 2 }, "Merge");
      await c.upsertEntity({ partitionKey: "p", rowKey: "b", v: 3 }, "Replace");
      await c.deleteEntity("p", "r");
      assert.deepEqual((await all(c.listEntities())).map((e) => e.rowKey), ["a", "b"]);
      await rejects(tableClient(ctx.target, other.name, { sas }).getEntity("p", "r"), 403);
    });

    ctx.test("an expired SAS and a not-yet-valid SAS fail with 403", async () => {
      const { name } = await seeded(ctx, "sastime");
      const expired = tableSas(ctx, name, { query: true }, {
        start: new Date(Date.now() - 3 * hour),
        expiry: new Date(Date.now() - hour),
      });
      await rejects(tableClient(ctx.target, name, { sas: expired }).getEntity("p", "r"), 403, ctx.authCodes());
      const future = tableSas(ctx, name, { query: true }, {
        start: new Date(Date.now() + hour),
        expiry: new Date(Date.now() + 2 * hour),
      });
      await rejects(tableClient(ctx.target, name, { sas: future }).getEntity("p", "r"), 403, ctx.authCodes());
    });

    ctx.test("a SAS whose signature or permissions were altered fails with 403", async () => {
      const { name } = await seeded(ctx, "sastamper");
      const sas = tableSas(ctx, name, { query: true });
      const badSig = sas.replace(/sig=([^&]+)/, (_, s) => `sig=${encodeURIComponent(Buffer.alloc(32, 1).toString("base64"))}`);
      assert.notEqual(badSig, sas);
      await rejects(tableClient(ctx.target, name, { sas: badSig }).getEntity("p", "r"), 403, ctx.authCodes());
      const morePerms = sas.replace(/sp=r(&|$)/, "sp=raud$1");
      assert.notEqual(morePerms, sas);
      await rejects(
        tableClient(ctx.target, name, { sas: morePerms }).createEntity({ partitionKey: "p", rowKey: "x" }),
        403, ctx.authCodes(),
      );
    });

    ctx.test("table SAS with an IP range: a client inside it reads, one outside gets 403", {
      skip: ctx.deviates("sas-ip-range") && "Azurite does not enforce a SAS's IP range (see README)",
    }, async () => {
      const { name } = await seeded(ctx, "sasip");
      const inside = tableSas(ctx, name, { query: true }, { ipRange: { start: "127.0.0.1", end: "127.0.0.9" } });
      assert.equal((await tableClient(ctx.target, name, { sas: inside }).getEntity("p", "r")).v, 1);
      const exact = tableSas(ctx, name, { query: true }, { ipRange: { start: "127.0.0.1" } });
      assert.equal((await tableClient(ctx.target, name, { sas: exact }).getEntity("p", "r")).v, 1);
      const outside = tableSas(ctx, name, { query: true }, { ipRange: { start: "10.0.0.1", end: "10.0.0.255" } });
      await rejects(
        tableClient(ctx.target, name, { sas: outside }).getEntity("p", "r"), 403, "AuthorizationSourceIPMismatch",
      );
    });

    ctx.test("table SAS key range: rows outside the range are refused with 403", {
      skip: ctx.deviates("sas-key-range") && "Azurite does not enforce SAS key ranges (see README)",
    }, async () => {
      const { name, client } = await seeded(ctx, "sasrange");
      await client.createEntity({ partitionKey: "q", rowKey: "r", v: 2 });
      const lg = legacyService(ctx.target);
      const token = lg.generateSharedAccessSignature(name, {
        AccessPolicy: { Permissions: "raud", Expiry: new Date(Date.now() + hour), StartPk: "p", EndPk: "p" },
      });
      const sas = legacySasService(ctx.target, token);
      assert.equal((await call(sas, "retrieveEntity", name, "p", "r")).result.v._, 1);
      await rejects(call(sas, "retrieveEntity", name, "q", "r"), 403);
      await rejects(call(sas, "insertEntity", name, { PartitionKey: eg.String("q"), RowKey: eg.String("n") }), 403);
      await call(sas, "insertEntity", name, { PartitionKey: eg.String("p"), RowKey: eg.String("n") });
    });

    ctx.test("account SAS with read and list: tables and rows readable, writes 403", async () => {
      const { name } = await seeded(ctx, "acctsas");
      const sas = generateAccountSas(credential(ctx.target), {
        permissions: { query: true, list: true },
        resourceTypes: "sco",
        expiresOn: new Date(Date.now() + hour),
      });
      const svc = new TableServiceClient(ctx.target.endpoint, new AzureSASCredential(sas), {
        allowInsecureConnection: true,
        retryOptions: { maxRetries: 0 },
      });
      const names = (await all(svc.listTables({ queryOptions: { filter: `TableName eq '${name}'` } }))).map((t) => t.name);
      assert.deepEqual(names, [name]);
      const c = tableClient(ctx.target, name, { sas });
      assert.equal((await c.getEntity("p", "r")).v, 1);
      await rejects(c.createEntity({ partitionKey: "p", rowKey: "x" }), 403, "AuthorizationPermissionMismatch");
      await rejects(svc.createTable(`${name}x`), 403);
    });

    ctx.test("legacy SAS: read works, write fails with 403", async () => {
      const { name } = await seeded(ctx, "lsas");
      const lg = legacyService(ctx.target);
      const token = lg.generateSharedAccessSignature(name, {
        AccessPolicy: { Permissions: "r", Expiry: new Date(Date.now() + hour) },
      });
      const sas = legacySasService(ctx.target, token);
      assert.equal((await call(sas, "retrieveEntity", name, "p", "r")).result.v._, 1);
      const q = await call(sas, "queryEntities", name, null, null);
      assert.equal(q.result.entries.length, 1);
      await rejects(
        call(sas, "insertEntity", name, { PartitionKey: eg.String("p"), RowKey: eg.String("n") }),
        403, "AuthorizationPermissionMismatch",
      );
    });
  });
}

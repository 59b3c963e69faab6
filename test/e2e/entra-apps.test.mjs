// Applications that authenticate with Microsoft Entra ID: the proxy serves
// its table endpoint over https (--tls-cert/--tls-key, a certificate for
// 127.0.0.1 from a CA made here with openssl) and takes bearer tokens
// signed by a key of a JWKS file (--jwks) from one issuer
// (--token-issuer), with the callers' data roles from a role map
// (--token-roles) and from the tokens' "roles" claim; and a proxy that
// reads its keys from a JWKS URL follows a key rollover.
//
// @azure/data-tables with a TokenCredential that returns tokens the test
// signs (RS256) reads and writes through a sidecar (its authority over
// plain http beside it, both over two Azurite accounts) in every phase,
// as a contributor; a reader reads and is refused writes (403
// AuthorizationPermissionMismatch); expired, not-yet-valid, foreign-issuer,
// wrong-audience, badly signed and unsigned tokens get 403
// AuthenticationFailed; Shared Key keeps working over https; the Python
// SDK (azure.data.tables, /usr/bin/python3) with a token credential too,
// when it is installed.
//
// Environment: MTABLE_PROXY_BIN (see lib/harness.mjs).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { AzureNamedKeyCredential, TableClient, TableServiceClient } from "@azure/data-tables";
import {
  DEV_ACCOUNT, DEV_KEY, PHASES, proxyStatus, startAzurite, startMtableOnFreePorts, stopAll, stopProxy, toPhase,
} from "./lib/harness.mjs";
import { all, errorCode } from "./lib/clients.mjs";
import { jwt, makeCerts, signingKey, storageClaims } from "./lib/entra.mjs";
import { proxySkipReason } from "./lib/targets.mjs";

const TENANT = "3c4f5a6b-0000-4000-8000-00000000abcd";
const ISSUER = `https://sts.windows.net/${TENANT}/`;

describe("Entra ID tokens from the applications, over https", { skip: proxySkipReason() }, () => {
  let dir, certs, key, foreign, authority, px, endpoint;

  const pipeline = () => ({ tlsOptions: { ca: certs.caPem }, retryOptions: { maxRetries: 0 } });
  // A TokenCredential whose tokens carry claims (defaults: a valid storage
  // token of this tenant for the writer's object id).
  const cred = (extra = {}, signer = () => key, header = {}) => ({
    getToken: async () => {
      const claims = { ...storageClaims(TENANT, 300, { oid: "oid-writer" }), ...extra };
      return { token: jwt(signer(), claims, header), expiresOnTimestamp: (claims.exp ?? 0) * 1000 };
    },
  });
  const client = (table, c = cred()) => new TableClient(endpoint, table, c, pipeline());

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "mtable-entra-apps-"));
    certs = makeCerts(dir);
    key = signingKey("key-1");
    foreign = signingKey("key-1"); // same kid, another key: a forgery
    const other = signingKey("key-0");
    writeFileSync(join(dir, "jwks.json"), JSON.stringify({ keys: [other.jwk, key.jwk] }));
    writeFileSync(join(dir, "roles.txt"), [
      "# object id or app id, then the data role",
      "oid-writer Storage Table Data Contributor",
      "oid-reader   Storage Table Data Reader",
      "",
    ].join("\n"));
    // An authority and a sidecar over two Azurite accounts; the
    // application talks to the sidecar.
    const az = await startAzurite();
    const backends = ["--old", az.connectionString("mtold"), "--new", az.connectionString("mtnew")];
    authority = await startMtableOnFreePorts({ name: "entra-apps-authority", args: [...backends, "--proxy-id", "authority"] });
    px = await startMtableOnFreePorts({
      name: "entra-apps-sidecar",
      args: [
        ...backends, "--config-endpoint", authority.adminUrl, "--proxy-id", "sidecar",
        "--tls-cert", certs.cert, "--tls-key", certs.key,
        "--jwks", join(dir, "jwks.json"), "--token-issuer", ISSUER,
        "--token-roles", join(dir, "roles.txt"),
      ],
    });
    endpoint = `https://127.0.0.1:${px.port}/${DEV_ACCOUNT}`;
  });
  after(async () => {
    await stopAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("a contributor reads and writes in every phase; a reader reads only", { timeout: 120000 }, async () => {
    const table = "entraapps";
    await client(table).createTable();
    for (let n = 0; n < PHASES.length; n++) {
      await toPhase(authority, n);
      const c = client(table);
      const pk = `phase${n}`;
      await c.createEntity({ partitionKey: pk, rowKey: "a", n, s: "created" });
      await c.upsertEntity({ partitionKey: pk, rowKey: "a", n, s: "upserted" }, "Merge");
      await c.submitTransaction([
        ["create", { partitionKey: pk, rowKey: "b", n }],
        ["upsert", { partitionKey: pk, rowKey: "c", n }],
      ]);
      const got = await c.getEntity(pk, "a");
      assert.equal(got.s, "upserted");
      await c.deleteEntity(pk, "c");
      const rows = await all(c.listEntities({ queryOptions: { filter: `PartitionKey eq '${pk}'` } }));
      assert.deepEqual(rows.map((r) => r.rowKey), ["a", "b"], `phase ${n}`);

      const reader = client(table, cred({ oid: "oid-reader" }));
      assert.equal((await reader.getEntity(pk, "b")).n, n);
      await assert.rejects(reader.createEntity({ partitionKey: pk, rowKey: "r" }), (e) => {
        assert.equal(e.statusCode, 403, `phase ${n}: ${e.message}`);
        assert.equal(errorCode(e), "AuthorizationPermissionMismatch");
        return true;
      });
      assert.equal((await proxyStatus(px)).phase, PHASES[n]);
    }
    // Everything written in any phase is there at the end.
    const rows = await all(client(table).listEntities());
    assert.equal(rows.length, 2 * PHASES.length);
  });

  test("the roles claim grants a data role; a valid token without one may do nothing", async () => {
    const table = "entraroles";
    await client(table).createTable();
    const app = client(table, cred({ oid: "oid-app", roles: ["Storage Table Data Contributor"] }));
    await app.createEntity({ partitionKey: "p", rowKey: "r" });
    const nobody = client(table, cred({ oid: "oid-nobody" }));
    for (const op of [() => nobody.getEntity("p", "r"), () => nobody.createEntity({ partitionKey: "p", rowKey: "x" })]) {
      await assert.rejects(op(), (e) => e.statusCode === 403 && errorCode(e) === "AuthorizationPermissionMismatch");
    }
    const svc = new TableServiceClient(endpoint, cred({ oid: "oid-reader" }), pipeline());
    const names = (await all(svc.listTables())).map((t) => t.name);
    assert.ok(names.includes(table));
    await assert.rejects(svc.createTable("readercannot"), (e) => e.statusCode === 403);
  });

  test("expired, early, foreign, wrong-audience and forged tokens get 403 AuthenticationFailed", async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases = {
      expired: cred({ iat: now - 7200, nbf: now - 7200, exp: now - 600 }),
      "not yet valid": cred({ nbf: now + 600 }),
      "foreign issuer": cred({ iss: "https://sts.windows.net/00000000-0000-0000-0000-000000000000/" }),
      "wrong audience": cred({ aud: "https://vault.azure.net" }),
      // A token for another resource does not become valid by naming that
      // resource as the request's host.
      "the host as audience": cred({ aud: `https://127.0.0.1:${px.port}` }),
      "signed by another key": cred({}, () => foreign),
      "no expiry": cred({ exp: undefined }),
      "unknown key id": cred({}, () => key, { kid: "key-9" }),
    };
    const c = (k) => client("entraapps", cases[k]);
    for (const name of Object.keys(cases)) {
      await assert.rejects(c(name).getEntity("phase0", "a"), (e) => {
        assert.equal(e.statusCode, 403, `${name}: ${e.statusCode} ${e.message}`);
        assert.equal(errorCode(e), "AuthenticationFailed", name);
        return true;
      });
    }
    // Unsigned ("alg": "none") and not a JWT at all, sent by hand.
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify(storageClaims(TENANT, 300, { oid: "oid-writer" }))).toString("base64url")}.`;
    for (const token of [none, "not-a-jwt", "a.b.c", "..", "x".repeat(20000)]) {
      const r = await new Promise((ok, fail) => {
        import("node:https").then(({ request }) => {
          const req = request(`${endpoint}/Tables`, {
            ca: certs.caPem,
            headers: { authorization: `Bearer ${token}`, "x-ms-version": "2019-02-02", accept: "application/json" },
          }, (res) => {
            let body = "";
            res.on("data", (d) => (body += d));
            res.on("end", () => ok({ status: res.statusCode, body }));
          });
          req.on("error", fail);
          req.end();
        });
      });
      assert.equal(r.status, 403, `${token.slice(0, 20)}: ${r.body}`);
      assert.match(r.body, /AuthenticationFailed/);
    }
  });

  test("Shared Key still works over https", async () => {
    const c = new TableClient(endpoint, "entraapps", new AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY), pipeline());
    assert.equal((await c.getEntity("phase0", "a")).s, "upserted");
  });

  test("the Python SDK with a token credential over https", async (t) => {
    const probe = spawnSync("/usr/bin/python3", ["-c", "import azure.data.tables, azure.core"], { encoding: "utf8" });
    if (probe.status !== 0) {
      t.skip("azure-data-tables is not installed for /usr/bin/python3");
      return;
    }
    const token = jwt(key, storageClaims(TENANT, 300, { oid: "oid-writer" }));
    const script = `
import os, sys
from azure.core.credentials import AccessToken
from azure.data.tables import TableClient
class Cred:
    def get_token(self, *scopes, **kw):
        return AccessToken(os.environ["TOKEN"], 2**31 - 1)
c = TableClient(endpoint=os.environ["ENDPOINT"], table_name="entraapps", credential=Cred(),
                connection_verify=os.environ["CA"])
c.upsert_entity({"PartitionKey": "py", "RowKey": "1", "v": 7})
print(c.get_entity("py", "1")["v"])
`;
    const r = spawnSync("/usr/bin/python3", ["-c", script], {
      encoding: "utf8",
      env: { ...process.env, TOKEN: token, ENDPOINT: endpoint, CA: certs.ca },
      timeout: 60000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "7");
  });

  test("keys from a JWKS URL: a rolled key is fetched once, made-up key ids do not hammer the issuer", { timeout: 60000 }, async () => {
    const k2 = signingKey("key-2");
    let served = [key.jwk];
    let fetches = 0;
    const srv = createServer({ cert: readFileSync(certs.cert), key: readFileSync(certs.key) }, (req, res) => {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: served }));
    });
    await new Promise((ok) => srv.listen(0, "127.0.0.1", ok));
    try {
      const px2 = await startMtableOnFreePorts({
        name: "proxy-entra-jwks-url",
        args: [
          "--tls-cert", certs.cert, "--tls-key", certs.key, "--backend-ca", certs.ca,
          "--jwks", `https://127.0.0.1:${srv.address().port}/discovery/v2.0/keys`,
          "--token-issuer", ISSUER, "--token-roles", join(dir, "roles.txt"),
        ],
      });
      const ep = `https://127.0.0.1:${px2.port}/${DEV_ACCOUNT}`;
      const svc = (signer, kid) => new TableServiceClient(ep, cred({}, signer, kid ? { kid } : {}), pipeline());
      await svc(() => key).createTable("rolled");
      assert.equal(fetches, 1);
      served = [key.jwk, k2.jwk]; // the issuer adds a key and signs with it
      await svc(() => k2).deleteTable("rolled");
      assert.equal(fetches, 2);
      for (let i = 0; i < 5; i++) {
        await assert.rejects(svc(() => key, `made-up-${i}`).createTable("nope"), (e) => e.statusCode === 403);
      }
      assert.equal(fetches, 2, "made-up key ids made the proxy fetch the keys again within 10 s");
      const r = await stopProxy(px2);
      assert.equal(r.report, null, r.report ?? "");
      assert.match(r.log, /signing keys reloaded: 2 from https:/);
    } finally {
      srv.closeAllConnections?.();
      await new Promise((ok) => srv.close(ok));
    }
  });

  test("the proxy shuts down cleanly", async () => {
    const r = await stopProxy(px);
    assert.equal(r.report, null, r.report ?? "");
    assert.ok(!/eyJ/.test(r.log), "a token is in the log");
  });
});

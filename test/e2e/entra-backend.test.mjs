// A migration between two accounts reached with Microsoft Entra ID tokens
// only. Two Azurite instances serve https (a certificate for 127.0.0.1
// from a CA made here with openssl) and take bearer tokens ("--oauth
// basic"); the proxy gets no account key for them: the old backend's
// connection string names a service principal with a client secret, the
// new one's a workload identity (a federated token file), both against a
// local token endpoint (lib/entra.mjs) that issues tokens living
// TOKEN_LIFETIME_S seconds, and the proxy trusts the CA through
// --backend-ca. The migration state lives in the new account (the default
// state store), so it too is written with tokens.
//
// Four SDK workers run a checked workload through the proxy while
// mtablectl migrate runs the migration to its end; the tokens of before
// the migration expire during it and are replaced, one refresh of the
// old backend's token fails (the token endpoint answers 500 once) and is
// logged and retried, and one token of the new backend is refused by the
// service (it finds it expired) and replaced at once, the requests it
// failed sent again. Afterwards every acknowledged write reads back
// through the proxy and in the new table read directly (with a token), the
// old table is empty, and a proxy restarted with a managed identity for
// the new backend (the identity endpoint pointed at the local one) serves
// the same rows. No secret or token appears in the proxy's log.
//
// Environment: MTABLE_PROXY_BIN (see lib/harness.mjs).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { TableClient, TableServiceClient } from "@azure/data-tables";
import {
  DEV_ACCOUNT, DEV_KEY, ctlBin, proxyBin, proxyStatus, repoRoot, sleep, startAzurite, startMtableOnFreePorts, stopAll, stopProxy, target,
} from "./lib/harness.mjs";
import { all, tableClient } from "./lib/clients.mjs";
import { jwt, makeCerts, startTokenServer, storageClaims } from "./lib/entra.mjs";
import { proxySkipReason } from "./lib/targets.mjs";
import { testSeed } from "./lib/seed.mjs";
import { compareRows, fmtCounts, fmtViolations, makeWorkers, readTyped, seed, totals, workWhile } from "./lib/workload.mjs";

const run = promisify(execFile);
const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const TOKEN_LIFETIME_S = 4; // refreshed after 2 s
const PARTITIONS = ["p0", "p1", "p2", "p3"];
const ROWS_PER_PARTITION = 60;
const COPY_RATE = 40; // rows a second: the copy alone outlives two tokens
const skip = proxySkipReason() || (ctlBin ? false : "mtablectl is not built");

describe("Entra ID tokens to the backends", { skip }, () => {
  const s = testSeed();
  const table = `entra${Date.now() % 100000}`;
  let dir, certs, tokens, azOld, azNew, px, t, tokenFile;
  const secret = "s3cret-old-app-Value";
  const assertion = "eyJhbGciOiJSUzI1NiJ9.federated-assertion.sig";

  const connOld = () =>
    `TableEndpoint=${azOld.endpoint("devstoreaccount1")};Credential=ClientSecret;TenantId=${TENANT};` +
    `ClientId=old-app;ClientSecret=${secret};AuthorityHost=${tokens.url}`;
  const connNewWorkload = () =>
    `TableEndpoint=${azNew.endpoint("devstoreaccount1")};Credential=WorkloadIdentity;TenantId=${TENANT};` +
    `ClientId=new-app;FederatedTokenFile=${tokenFile};AuthorityHost=${tokens.url}`;
  const connNewManaged = () =>
    `TableEndpoint=${azNew.endpoint("devstoreaccount1")};Credential=ManagedIdentity;ClientId=new-mi;` +
    `IdentityEndpoint=${tokens.url}/msi/token`;

  // Clients straight to an Azurite, with a token the test signs.
  const testCredential = {
    getToken: async () => {
      const claims = storageClaims(TENANT, 60);
      return { token: jwt(tokens.key, claims), expiresOnTimestamp: claims.exp * 1000 };
    },
  };
  const pipeline = () => ({ tlsOptions: { ca: certs.caPem }, retryOptions: { maxRetries: 0 } });
  const direct = (az, name) =>
    new TableClient(az.endpoint("devstoreaccount1"), name, testCredential, pipeline());
  const directService = (az) =>
    new TableServiceClient(az.endpoint("devstoreaccount1"), testCredential, pipeline());

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "mtable-entra-"));
    certs = makeCerts(dir);
    tokenFile = join(dir, "federated-token");
    writeFileSync(tokenFile, `${assertion}\n`);
    tokens = await startTokenServer({
      tls: certs,
      tenant: TENANT,
      lifetimeS: TOKEN_LIFETIME_S,
      clients: { "old-app": { secret }, "new-app": { assertion } },
    });
    [azOld, azNew] = await Promise.all([
      startAzurite({ tls: certs, oauth: true }),
      startAzurite({ tls: certs, oauth: true }),
    ]);
    px = await startMtableOnFreePorts({
      name: "proxy-entra",
      args: [
        "--old", connOld(), "--new", connNewWorkload(), "--backend-ca", certs.ca,
        "--copy-rate", String(COPY_RATE), "--copy-parallel", "2",
      ],
    });
    t = target({ name: "proxy", kind: "proxy", endpoint: px.endpoint, proxy: px });
  });
  after(async () => {
    await tokens?.close();
    await stopAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("Azurite serves https only and takes bearer tokens", async () => {
    const c = direct(azOld, "probe");
    await c.createTable();
    await c.deleteTable();
    const r = await fetch(azOld.endpoint("devstoreaccount1") + "/Tables").catch((e) => e);
    // Node's fetch does not trust the test CA: no answer at all, which is
    // enough to say the endpoint is https only.
    assert.ok(r instanceof Error, "plain fetch must fail TLS verification");
  });

  let ws = null;
  let migMs = 0;
  let migStart = 0;
  test("a checked SDK workload through a full migration (mtablectl migrate), tokens expiring and refreshed", { timeout: 120000 }, async () => {
    const { workers, shared } = makeWorkers({ t, table, partitions: PARTITIONS, seed: s, count: 4 });
    ws = workers;
    await tableClient(t, table).createTable();
    await seed(t, table, workers, PARTITIONS, ROWS_PER_PARTITION);
    const before = new Map(tokens.issued);
    let polling = true;
    const poll = (async () => {
      while (polling) {
        shared.current = (await proxyStatus(px)).phase;
        await sleep(100);
      }
    })();
    let ctl = null;
    const { error } = await workWhile(workers, async () => {
      await sleep(1000);
      migStart = Date.now();
      setTimeout(() => tokens.failNext("old-app"), 2500);
      setTimeout(() => tokens.badNext("new-app"), 3500);
      ctl = await run(ctlBin, ["--admin", px.adminUrl, "migrate"], { encoding: "utf8" });
      migMs = Date.now() - migStart;
      await sleep(1000);
    });
    polling = false;
    await poll;
    assert.equal(error, null, `migration: ${error?.stderr ?? error}`);
    assert.match(ctl.stdout, /done|use_new_hide_metadata/);
    const tot = totals(workers);
    assert.equal(tot.violations.length, 0, fmtViolations(tot.violations));
    assert.ok(tot.opsTotal > 50, `too few operations: ${fmtCounts(tot.ops)}`);
    for (const id of ["old-app", "new-app"]) {
      const during = (tokens.issued.get(id) ?? 0) - (before.get(id) ?? 0);
      assert.ok(during >= 2, `${id}: ${during} tokens during ${migMs} ms`);
    }
    assert.ok(migMs > TOKEN_LIFETIME_S * 1000, `the migration (${migMs} ms) must outlive a token`);
    const st = await proxyStatus(px);
    assert.equal(st.phase, "use_new_hide_metadata");
    console.log(`${tot.opsTotal} operations (${fmtCounts(tot.byPhase)}), migration ${migMs} ms, tokens ${fmtCounts(Object.fromEntries(tokens.issued))}`);
  });

  test("nothing lost: the proxy, the new table read directly, the old table empty", { timeout: 60000 }, async () => {
    assert.ok(ws, "the migration test ran");
    const expected = ws.flatMap((w) => w.expected());
    assert.deepEqual(compareRows(await readTyped(t, table), expected, "through the proxy"), []);
    assert.deepEqual(compareRows(await readTyped(null, table, direct(azNew, table)), expected, "new table"), []);
    assert.deepEqual((await all(direct(azOld, table).listEntities())).length, 0);
    // The default state store, table mtablestate of the new account, was
    // written with tokens too.
    const names = (await all(directService(azNew).listTables())).map((x) => x.name);
    assert.ok(names.includes("mtablestate"), `new account tables: ${names.join(", ")}`);
  });

  test("a refused refresh is logged and retried, a refused token replaced; no secret or token in the log", async () => {
    const done = await stopProxy(px);
    assert.equal(done.report, null, done.report ?? "");
    const log = done.log;
    assert.match(log, /cannot get a Microsoft Entra ID token from https:\/\/127\.0\.0\.1:\d+\/.*HTTP 500 temporarily_unavailable/);
    assert.match(log, /got a Microsoft Entra ID token from .* again/);
    assert.match(log, /the table service refused the token from https:\/\/127\.0\.0\.1:\d+\/.*; getting a new one/);
    assert.ok(!log.includes(secret), "the client secret is in the log");
    assert.ok(!log.includes("eyJ"), "a token is in the log");
  });

  test("restarted with a managed identity for the new account: same rows", { timeout: 60000 }, async () => {
    const before = tokens.issued.get("new-mi") ?? 0;
    px = await startMtableOnFreePorts({
      name: "proxy-entra-mi",
      args: ["--old", connOld(), "--new", connNewManaged(), "--backend-ca", certs.ca],
    });
    t = target({ name: "proxy", kind: "proxy", endpoint: px.endpoint, proxy: px });
    assert.equal((await proxyStatus(px)).phase, "use_new_hide_metadata");
    const expected = ws.flatMap((w) => w.expected());
    assert.deepEqual(compareRows(await readTyped(t, table), expected, "through the restarted proxy"), []);
    assert.ok((tokens.issued.get("new-mi") ?? 0) > before, "no managed identity token was asked for");
  });

  test("a backend certificate that does not chain to a trusted CA is refused", { timeout: 60000 }, async () => {
    // Shared Key, so no token endpoint is involved; no --backend-ca, so the
    // test CA is not trusted: the proxy cannot list the old backend's
    // tables and does not start, saying why.
    const conn = (az) => `TableEndpoint=${az.endpoint("devstoreaccount1")};AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY}`;
    const started = await startMtableOnFreePorts({
      name: "proxy-untrusting", ready: false, args: ["--old", conn(azOld), "--new", conn(azNew)],
    }).then((p) => p, (e) => e);
    if (!(started instanceof Error)) {
      await stopProxy(started);
      assert.fail("the proxy started over a backend whose certificate it cannot verify");
    }
    assert.match(started.message, /certificate of 127\.0\.0\.1 failed verification/);
  });
});

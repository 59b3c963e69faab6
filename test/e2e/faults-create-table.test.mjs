// Create Table over a faulty table service (lib/faultproxy.mjs between
// mtable-proxy and Azurite): a create the backend applied but whose answer
// never came back is retried by the proxy, and the retry's 409
// TableAlreadyExists is the proxy's own first attempt, not someone else's
// table. The client must be told the table was created, as the service
// would tell it; a table that really existed before is still 409, and one
// the backends made anew is created whatever the proxy remembered.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startAzurite, startProxyOn, stopAll, stopProxy, target } from "./lib/harness.mjs";
import { call, legacyService, rejects, tableName } from "./lib/clients.mjs";
import { proxySkipReason } from "./lib/targets.mjs";
import { testSeed } from "./lib/seed.mjs";
import { startFaultProxy } from "./lib/faultproxy.mjs";

describe("Create Table whose answer the backend dropped", { skip: proxySkipReason() }, () => {
  let az = null;
  let fp = null;
  let px = null;
  let t = null;

  before(async () => {
    az = await startAzurite();
    fp = await startFaultProxy({ upstream: `http://127.0.0.1:${az.port}`, seed: testSeed(), name: "create" });
    px = await startProxyOn({
      old: fp.connectionString("mtold", az.accounts.mtold),
      new: fp.connectionString("mtnew", az.accounts.mtnew),
    });
    t = target({ name: "proxy-create", kind: "proxy", endpoint: px.endpoint, proxy: px });
  });

  after(async () => {
    if (px) await stopProxy(px);
    if (fp) await fp.stop();
    if (az) await az.process.stop();
    await stopAll();
  });

  const creates = (account, name) => (r) =>
    r.account === account && r.method === "POST" && r.resource === "Tables" && r.body.includes(name);

  test("applied in both backends, both answers dropped: created", { timeout: 60000 }, async () => {
    const name = tableName("lost");
    const rules = ["mtold", "mtnew"].map((a) => fp.script({ match: creates(a, name), faults: ["dropAfter"] }));
    // The legacy SDK asks for return-no-content: 204 is its "created".
    const { response } = await call(legacyService(t), "createTable", name);
    assert.equal(response.statusCode, 204);
    for (const rule of rules) assert.deepEqual(rule.fired.map((f) => f.kind), ["dropAfter"], "the fault was injected");
    // The table is there, once, and a second create is refused.
    const { result } = await call(legacyService(t), "listTablesSegmented", null);
    assert.equal(result.entries.filter((n) => n === name).length, 1);
    await rejects(() => call(legacyService(t), "createTable", name), 409, "TableAlreadyExists");
  });

  // A legacy client of one backend account, bypassing mtable-proxy.
  function direct(account) {
    const d = target({ name: account, kind: "azurite", endpoint: `http://127.0.0.1:${az.port}/${account}` });
    d.accountName = account;
    d.accountKey = az.accounts[account];
    d.connectionString = fp.connectionString(account, az.accounts[account]);
    return legacyService(d);
  }

  test("made in both backends by someone else: 409 TableAlreadyExists", { timeout: 60000 }, async () => {
    const name = tableName("theirs");
    for (const account of ["mtold", "mtnew"]) await call(direct(account), "createTable", name);
    await rejects(() => call(legacyService(t), "createTable", name), 409, "TableAlreadyExists");
  });

  // The proxy still knows the name, but the backends made the table anew:
  // what they answer decides, as when a concurrent lookup adopts a table
  // between its creation in the backends and the proxy's own bookkeeping.
  test("deleted behind the proxy's back, created again: created", { timeout: 60000 }, async () => {
    const name = tableName("again");
    await call(legacyService(t), "createTable", name);
    for (const account of ["mtold", "mtnew"]) await call(direct(account), "deleteTable", name);
    const { response } = await call(legacyService(t), "createTable", name);
    assert.equal(response.statusCode, 204);
  });
});

// One backend call that does not answer holds up only its own request:
// mtable-proxy over Azurite with a fault-injecting proxy in between that
// keeps one point read waiting (never forwarded, for a few seconds, then
// the connection closed, so the proxy retries it and it succeeds). While
// it waits, reads and writes on other connections are all served; and a
// SIGTERM while it waits lets it finish before the proxy exits.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startAzurite, startProxyOn, stopAll, target, waitFor } from "./lib/harness.mjs";
import { serviceClient, tableClient, tableName } from "./lib/clients.mjs";
import { proxySkipReason } from "./lib/targets.mjs";
import { startFaultProxy } from "./lib/faultproxy.mjs";

const HOLD_MS = 4000;
// The proxy's read of that row, a point read or a query naming its key.
const stuckRead = (r) => r.isRead && decodeURIComponent(r.url).includes("'stuck'");

describe("a backend call that does not answer", { skip: proxySkipReason() }, () => {
  let fp, px, t, table;

  before(async () => {
    const az = await startAzurite();
    fp = await startFaultProxy({ upstream: `http://127.0.0.1:${az.port}`, seed: 1, name: "slow" });
    fp.configure({ rate: 0, kinds: {}, holdMs: HOLD_MS });
    px = await startProxyOn({
      old: fp.connectionString("mtold", az.accounts.mtold),
      new: fp.connectionString("mtnew", az.accounts.mtnew),
    });
    t = target({ name: "proxy-slow", kind: "proxy", endpoint: px.endpoint, proxy: px });
    table = tableName("slow");
    await serviceClient(t).createTable(table);
    const c = tableClient(t, table);
    await c.createEntity({ partitionKey: "p", rowKey: "stuck", v: 0 });
    for (let i = 0; i < 8; i++) await c.createEntity({ partitionKey: "p", rowKey: `r${i}`, v: i });
  });

  after(async () => {
    await stopAll();
    await fp?.stop();
  });

  // Starts the read the fault proxy holds; resolves once the proxy's
  // backend request is being held.
  async function startStuckRead() {
    const rule = fp.script({ match: stuckRead, faults: ["holdBefore"] });
    let settled = false;
    const read = tableClient(t, table)
      .getEntity("p", "stuck")
      .finally(() => (settled = true));
    await waitFor("the held backend read", async () => rule.fired.length > 0, 10000);
    return { read, settled: () => settled };
  }

  test("other connections are served while it waits", async () => {
    const stuck = await startStuckRead();
    const others = [];
    for (let i = 0; i < 8; i++) {
      const c = tableClient(t, table); // a client, and a connection, of its own
      others.push(
        c.getEntity("p", `r${i}`).then((e) => e.v),
        c.upsertEntity({ partitionKey: "q", rowKey: `w${i}`, v: i }).then(() => "written"),
      );
    }
    const got = await Promise.all(others);
    assert.deepEqual(got.filter((v) => v !== "written"), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(got.filter((v) => v === "written").length, 8);
    assert.equal(stuck.settled(), false, "the held read answered before the others");
    const e = await stuck.read; // the proxy retried it once the hold ended
    assert.equal(e.v, 0);
  });

  test("SIGTERM lets it finish before the proxy exits", async () => {
    const stuck = await startStuckRead();
    const exited = px.process.stop(HOLD_MS * 10);
    const e = await stuck.read;
    assert.equal(e.v, 0);
    assert.deepEqual(await exited, { code: 0, signal: null });
    const log = px.process.tail(1e6);
    assert.doesNotMatch(log, /ERROR: \w+Sanitizer|runtime error:/);
  });
});

// The configuration endpoint as a sidecar (or any other client of the
// authority) sees it over HTTP: the long poll, acknowledgements as leases,
// stale acknowledgements refused, a push that waits for a leased proxy's
// acknowledgement and then settles, the token, and bad input.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { freePort, sleep, startMtable, stopAll } from "./lib/harness.mjs";
import { proxySkipReason } from "./lib/targets.mjs";

const TOKEN = "cfg-test-token";
const auth = { Authorization: `Bearer ${TOKEN}` };

describe("configuration endpoint", { skip: proxySkipReason() }, () => {
  let px = null;
  const state = (q) => fetch(`${px.adminUrl}/config/v1/state?${q}`, { headers: auth });
  const ack = (id, body) =>
    fetch(`${px.adminUrl}/config/v1/acks/${encodeURIComponent(id)}`, {
      method: "PUT", headers: { ...auth, "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body),
    });

  before(async () => {
    px = await startMtable({
      name: "cfg-authority", port: await freePort(), adminPort: await freePort(),
      // One lease length in every phase: these cases are about the protocol.
      args: ["--admin-token", TOKEN, "--lease-ms", "1500", "--rest-lease-ms", "1500"],
    });
  });
  after(stopAll);

  test("the state needs the token", async () => {
    const r = await fetch(`${px.adminUrl}/config/v1/state?after=0&wait_ms=0`);
    assert.equal(r.status, 401);
  });

  test("a poll for an older version answers at once", async () => {
    const r = await state("after=0&wait_ms=5000");
    assert.equal(r.status, 200);
    const s = await r.json();
    assert.equal(s.config_version, 1);
    assert.equal(s.phase, "use_old_hide_metadata");
    assert.equal(s.lease_ms, 1500);
    assert.equal(typeof s.settled, "boolean");
  });

  test("a poll for the current version waits wait_ms, then answers the same", async () => {
    const t0 = Date.now();
    const s = await (await state("after=1&wait_ms=400")).json();
    assert.ok(Date.now() - t0 >= 350, "the long poll held the request");
    assert.equal(s.config_version, 1);
  });

  test("an acknowledgement of the current version is a lease; a stale one is refused", async () => {
    assert.equal((await ack("sidecar-a", { config_version: 1 })).status, 204);
    const st = await (await fetch(`${px.adminUrl}/admin/v1/status`, { headers: auth })).json();
    const a = st.proxies.find((p) => p.id === "sidecar-a");
    assert.ok(a && a.live && a.lease_left_ms > 0 && a.lease_left_ms <= 1500, JSON.stringify(a));
    const stale = await ack("sidecar-a", { config_version: 0 });
    assert.equal(stale.status, 409);
    assert.equal((await stale.json()).error.code, "StaleConfigVersion");
  });

  test("bad input gets 400 and changes nothing", async () => {
    assert.equal((await ack("sidecar-b", "not json")).status, 400);
    assert.equal((await ack("sidecar-b", { version: 1 })).status, 400);
    assert.equal((await state("after=x")).status, 400);
    assert.equal((await state("after=1&wait_ms=-5")).status, 400);
    const st = await (await fetch(`${px.adminUrl}/admin/v1/status`, { headers: auth })).json();
    assert.ok(!st.proxies.some((p) => p.id === "sidecar-b"));
  });

  test("a push waits for a leased proxy's acknowledgement, then settles", async () => {
    // Keep sidecar-a's lease alive while the push is under way.
    assert.equal((await ack("sidecar-a", { config_version: 1 })).status, 204);
    const poll = state("after=1&wait_ms=10000").then((r) => r.json());
    let pushed = false;
    const push = fetch(`${px.adminUrl}/admin/v1/phase`, {
      method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ phase: "prefer_old" }),
    }).then((r) => {
      pushed = true;
      return r;
    });
    const seen = await poll;
    assert.equal(seen.config_version, 2, "the long poll returns with the new version");
    assert.equal(seen.phase, "prefer_old");
    assert.equal(seen.settled, false);
    await sleep(200);
    assert.equal(pushed, false, "the push waits while sidecar-a holds a lease for version 1");
    const unsettled = state("after=2&settled=0&wait_ms=10000").then((r) => r.json());
    assert.equal((await ack("sidecar-a", { config_version: 2 })).status, 204);
    const r = await push;
    assert.equal(r.status, 200);
    assert.equal((await r.json()).phase, "prefer_old");
    const settled = await unsettled;
    assert.equal(settled.config_version, 2);
    assert.equal(settled.settled, true, "settled=0 polls return once the version settles");
  });

  test("a push completes without a proxy whose lease ran out", async () => {
    // sidecar-a stops renewing; its lease (1.5 s) and the margin run out.
    const t0 = Date.now();
    const r = await fetch(`${px.adminUrl}/admin/v1/phase`, {
      method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ phase: "prefer_new" }),
    });
    assert.equal(r.status, 200);
    const s = await (await state("after=0")).json();
    assert.equal(s.config_version, 3);
    assert.ok(Date.now() - t0 < 10000);
    assert.equal((await ack("sidecar-a", { config_version: 2 })).status, 409, "too late for version 2");
  });
});

// One authority and a fleet of 5,000 simulated sidecars, each speaking the
// configuration protocol over one keep-alive connection of its own (long
// polls and acknowledgements, test/e2e/lib/simfleet.mjs): every one gets a
// lease, status lists every one as live, pushes complete with all of them
// acknowledging, and 1,000 half-open connections without a token do not
// keep a newcomer from its lease. (Timings are measured, side by side, by
// test/bench/fleet.mjs; here only what must hold.)

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { freePort, startMtable, stopAll } from "./lib/harness.mjs";
import { SimSidecar, halfOpen, startSims, waitFor } from "./lib/simfleet.mjs";
import { proxySkipReason } from "./lib/targets.mjs";

const N = 5000;

describe("a fleet of 5,000 sidecars", { skip: proxySkipReason() }, () => {
  const keepAlive = setInterval(() => {}, 1000);
  let sims = [];
  after(async () => {
    clearInterval(keepAlive);
    await Promise.all(sims.map((s) => s.stop()));
    await stopAll();
  });

  test("all hold leases, pushes complete, half-open connections starve nobody", async (t) => {
    const a = await startMtable({
      name: "fleet-authority", port: await freePort(), adminPort: await freePort(),
      args: ["--proxy-id", "authority", "--admin-token", "fleet-token"],
    });
    // The configuration endpoint needs the token too.
    const tokenFree = await fetch(`${a.adminUrl}/config/v1/state`);
    assert.equal(tokenFree.status, 401);
    const base = a.adminUrl;
    sims = await startSims(base, N, "sim", "fleet-token");
    await waitFor("every sidecar leased", async () => sims.every((s) => s.leased()), 120000);
    const st = await fetch(`${base}/admin/v1/status`, { headers: { authorization: "Bearer fleet-token" } }).then((r) => r.json());
    assert.equal(st.proxies_live, N);
    assert.equal(st.proxies.filter((p) => p.role === "proxy" && p.live).length, N);

    for (const phase of ["prefer_old", "prefer_new"]) {
      const t0 = Date.now();
      const r = await fetch(`${base}/admin/v1/phase`, {
        method: "POST", headers: { authorization: "Bearer fleet-token", "content-type": "application/json" },
        body: JSON.stringify({ phase }), signal: AbortSignal.timeout(60000),
      });
      const text = await r.text();
      assert.equal(r.status, 200, text);
      t.diagnostic(`push ${phase} across ${N}: ${Date.now() - t0} ms`);
      const version = JSON.parse(text).config_version;
      await waitFor("every sidecar's acknowledgement answered", async () =>
        sims.every((s) => s.acked === version), 10000);
    }

    const ho = await halfOpen(a.adminPort, 1000);
    const late = new SimSidecar(base, "late", "fleet-token").start();
    sims.push(late);
    const t0 = Date.now();
    await waitFor("the newcomer's lease", async () => late.leased(), 20000);
    t.diagnostic(`first lease beside 1000 half-open connections: ${late.firstLeaseAt - t0} ms`);
    assert.ok(ho.count() > 900, "the half-open connections were still open meanwhile");
    ho.close();
    assert.equal(sims.reduce((n, s) => n + s.errors, 0), 0, "no sidecar saw an error");
  });
});

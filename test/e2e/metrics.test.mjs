// GET /metrics as a Prometheus scraper sees it after real SDK traffic:
// requests by operation, status and phase; backend calls, errors and
// latency per side; the phase and the migration's counters.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { admin, freePort, startMtable, stopAll, target } from "./lib/harness.mjs";
import { tableClient, serviceClient } from "./lib/clients.mjs";
import { proxySkipReason } from "./lib/targets.mjs";

function sample(text, name, labels = {}) {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    if (want.every((l) => line.includes(l))) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return null;
}

describe("metrics", { skip: proxySkipReason() }, () => {
  let px = null;
  let t = null;
  before(async () => {
    px = await startMtable({ name: "metrics", port: await freePort(), adminPort: await freePort(), args: [] });
    t = target({ name: "proxy", kind: "proxy", endpoint: px.endpoint, proxy: px });
  });
  after(stopAll);

  test("requests, backend calls and the migration show up after traffic", async () => {
    await serviceClient(t).createTable("metrics");
    const c = tableClient(t, "metrics");
    for (let i = 0; i < 5; i++) await c.createEntity({ partitionKey: "p", rowKey: `r${i}`, n: i });
    await c.getEntity("p", "r1");
    await assert.rejects(c.getEntity("p", "missing"));
    assert.equal((await admin(px, "POST", "/admin/v1/migrate")).status, 202);
    for (let i = 0; i < 200; i++) {
      const s = (await admin(px, "GET", "/admin/v1/status")).json;
      if (s.migration.state === "done") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await fetch(`${px.adminUrl}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /text\/plain; version=0\.0\.4/);
    const m = await r.text();
    assert.equal(sample(m, "mtable_requests_total", { operation: "insert", status: "204", phase: "use_old_hide_metadata" }), 5, "inserts with Prefer: return-no-content");
    assert.equal(sample(m, "mtable_requests_total", { operation: "get_entity", status: "200" }), 1);
    assert.equal(sample(m, "mtable_requests_total", { operation: "get_entity", status: "404" }), 1);
    assert.equal(sample(m, "mtable_requests_total", { operation: "create_table", status: "201" }), 1);
    assert.ok(sample(m, "mtable_backend_calls_total", { side: "old", call: "batch" }) >= 5);
    assert.ok(sample(m, "mtable_backend_calls_total", { side: "new", call: "batch" }) >= 1, "the copy wrote to new");
    assert.equal(sample(m, "mtable_backend_errors_total", { side: "old", call: "batch" }), 0);
    const count = sample(m, "mtable_backend_call_seconds_count", { side: "old", call: "batch" });
    const inf = sample(m, "mtable_backend_call_seconds_bucket", { side: "old", call: "batch", le: "+Inf" });
    assert.equal(count, inf);
    assert.equal(sample(m, "mtable_phase"), 4);
    assert.equal(sample(m, "mtable_rows_copied_total"), 5);
    assert.equal(sample(m, "mtable_migration_state", { state: "done" }), 1);
    for (const line of m.split("\n")) {
      if (!line || line.startsWith("#")) continue;
      assert.match(line, /^[a-z_]+(\{[^}]*\})? -?[0-9.e+]+$/i, line);
    }
  });
});

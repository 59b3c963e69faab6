// The proxy's structured logs, as an operator's log collector sees them:
// with --log-format json every line is one JSON object, and every 5xx an
// application receives is logged exactly once, under the x-ms-request-id
// the application got, with the reason (the backend's error or the
// internal cause).
//
// 5xx are provoked the ways they happen in production: a backend that
// keeps failing (a fault proxy between mtable-proxy and Azurite answers
// 500 InternalError or 503 ServerBusy to every retry), and a sidecar
// without a lease (its authority is not there). A backend slower than
// --log-slow-backend-ms produces a warning naming the backend and the
// request it held up while the call still runs, and another when it ends.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import {
  DEV_ACCOUNT, DEV_KEY, freePort, startAzurite, startMtableOnFreePorts, stopAll, stopProxy,
} from "./lib/harness.mjs";
import { serviceClient, tableClient } from "./lib/clients.mjs";
import { proxySkipReason } from "./lib/targets.mjs";
import { startFaultProxy } from "./lib/faultproxy.mjs";

const SLOW_MS = 400;

// Every line of a process's log, each parsed (the test fails on one that
// is not a JSON object).
function jsonLines(px) {
  const text = readFileSync(px.process.log, "utf8");
  return text.split("\n").filter((l) => l.trim()).map((l) => {
    let o;
    assert.doesNotThrow(() => (o = JSON.parse(l)), `not a JSON line: ${l}`);
    assert.equal(typeof o, "object", l);
    for (const k of ["time", "level", "msg"]) assert.equal(typeof o[k], "string", `${k} in ${l}`);
    return o;
  });
}

// What a failed SDK call tells the application: status and request id.
async function failure(p) {
  try {
    await p;
  } catch (e) {
    return {
      status: e.statusCode,
      code: e.response?.headers?.get("x-ms-error-code") ?? e.code,
      // A failed transaction's error is its operation's reply, whose
      // message carries the batch's request id.
      requestId: e.response?.headers?.get("x-ms-request-id") ?? /RequestId:([0-9a-f-]{36})/.exec(e.message)?.[1],
    };
  }
  assert.fail("the call succeeded; a 5xx was expected");
}

function target(px) {
  return { endpoint: px.endpoint, accountName: DEV_ACCOUNT, accountKey: DEV_KEY };
}

describe("structured logs", { skip: proxySkipReason() }, () => {
  let az, fp, px, sidecar;
  const table = "logged";
  const seen = []; // 5xx the application got: {status, code, requestId, want}

  before(async () => {
    az = await startAzurite();
    fp = await startFaultProxy({ upstream: `http://127.0.0.1:${az.port}`, name: "logs" });
    fp.configure({ rate: 0, kinds: { delay: 1 }, on: () => false, delayMs: [SLOW_MS + 400, SLOW_MS + 400] });
    px = await startMtableOnFreePorts({
      name: "logs-authority",
      args: [
        "--old", fp.connectionString("mtold", az.accounts.mtold),
        "--new", fp.connectionString("mtnew", az.accounts.mtnew),
        "--log-format", "json", "--log-level", "info",
        "--log-slow-backend-ms", String(SLOW_MS),
      ],
    });
    // A sidecar whose authority is nowhere: it never holds a lease.
    sidecar = await startMtableOnFreePorts({
      name: "logs-sidecar",
      ready: false,
      args: [
        "--config-endpoint", `http://127.0.0.1:${await freePort()}`,
        "--proxy-id", "px-lonely", "--log-format", "json",
      ],
    });
    await serviceClient(target(px)).createTable(table);
    await tableClient(target(px), table).createEntity({ partitionKey: "p", rowKey: "r", n: 1 });
  });

  after(async () => {
    await fp?.stop();
    await stopAll();
  });

  test("a read that fails on the old backend at every retry: 5xx with its reason", async () => {
    fp.script({
      match: (r) => r.account === "mtold" && r.isRead && r.table === table,
      faults: Array(8).fill("error500"),
    });
    const f = await failure(tableClient(target(px), table).getEntity("p", "r"));
    assert.ok(f.status >= 500, JSON.stringify(f));
    assert.ok(f.requestId, "x-ms-request-id on the answer");
    fp.clearScripts();
    seen.push({ ...f, px, backend: "old", reason: /InternalError/ });
  });

  test("a write the new backend keeps refusing: 5xx with its reason", async () => {
    // Phase 0 writes the old table only; the old backend is the busy one.
    fp.script({
      match: (r) => r.account === "mtold" && r.isWrite && r.table === table,
      faults: Array(8).fill("busy503"),
    });
    const f = await failure(
      tableClient(target(px), table).upsertEntity({ partitionKey: "p", rowKey: "w", n: 2 }, "Replace"),
    );
    assert.ok(f.status >= 500, JSON.stringify(f));
    fp.clearScripts();
    seen.push({ ...f, px, backend: "old", reason: /ServerBusy/ });
  });

  test("a transaction whose write the backend keeps refusing: its 5xx with the reason", async () => {
    fp.script({
      match: (r) => r.account === "mtold" && r.isBatch,
      faults: Array(8).fill("busy503"),
    });
    const f = await failure(tableClient(target(px), table).submitTransaction([
      ["upsert", { partitionKey: "p", rowKey: "t1", n: 3 }],
      ["upsert", { partitionKey: "p", rowKey: "t2", n: 4 }],
    ]));
    fp.clearScripts();
    assert.ok(f.status >= 500, JSON.stringify(f));
    assert.ok(f.requestId, JSON.stringify(f));
    seen.push({ ...f, px, backend: "old", reason: /ServerBusy/ });
  });

  test("a sidecar without a lease: 503 ServerBusy with the cause", async () => {
    const f = await failure(tableClient(target(sidecar), table).getEntity("p", "r"));
    assert.equal(f.status, 503);
    assert.equal(f.code, "ServerBusy");
    seen.push({ ...f, px: sidecar, backend: undefined, reason: /lease/ });
  });

  test("a slow backend call logs a warning naming the backend and the request, while it runs and when it ends", async () => {
    fp.script({ match: (r) => r.account === "mtold" && r.isRead && r.table === table, faults: ["delay"] });
    let requestId = null;
    const t0 = Date.now();
    const e = await tableClient(target(px), table).getEntity("p", "r", {
      onResponse: (res) => (requestId = res.headers.get("x-ms-request-id")),
    });
    assert.equal(e.n, 1);
    assert.ok(Date.now() - t0 >= SLOW_MS, "the backend was slowed");
    assert.ok(requestId);
    const slow = jsonLines(px).filter((l) => l.request_id === requestId && /^slow backend/.test(l.msg));
    const running = slow.filter((l) => /has been running for/.test(l.msg));
    const took = slow.filter((l) => /took/.test(l.msg));
    assert.equal(running.length, 1, JSON.stringify(slow));
    assert.equal(took.length, 1, JSON.stringify(slow));
    for (const l of [...running, ...took]) {
      assert.equal(l.level, "warn");
      assert.equal(l.backend, "old");
      assert.ok(l.duration_ms >= SLOW_MS, JSON.stringify(l));
    }
    assert.ok(Date.parse(running[0].time) <= Date.parse(took[0].time));
  });

  test("an admin call that fails with a 5xx is logged once, with its reason", async () => {
    // The authority's state lives in the new account's table, behind the
    // fault proxy: its writes are refused, so the push cannot be made durable.
    fp.script({
      match: (r) => r.account === "mtnew" && r.table === "mtablestate" && r.isWrite,
      faults: Array(20).fill("busy503"),
    });
    const r = await fetch(`${px.adminUrl}/admin/v1/phase`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ phase: "prefer_old" }),
    });
    const body = await r.json();
    fp.clearScripts();
    assert.ok(r.status >= 500, JSON.stringify(body));
    const lines = jsonLines(px).filter((l) => /^admin POST \/admin\/v1\/phase -> 5/.test(l.msg));
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.equal(lines[0].status, r.status);
    assert.equal(lines[0].error_code, body.error.code);
    assert.equal(lines[0].reason, body.error.message);
  });

  test("every client-visible 5xx has exactly one log line, with its reason", () => {
    assert.equal(seen.length, 4);
    for (const s of seen) {
      const lines = jsonLines(s.px).filter((l) => l.request_id === s.requestId && l.status >= 500);
      assert.equal(lines.length, 1, `${s.requestId}: ${JSON.stringify(lines)}`);
      const [l] = lines;
      assert.equal(l.level, "warn");
      assert.equal(l.status, s.status);
      assert.equal(l.error_code, s.code);
      assert.match(l.reason, s.reason);
      assert.equal(l.backend, s.backend);
      assert.equal(l.table, table);
      assert.equal(typeof l.op, "string");
      assert.equal(typeof l.duration_ms, "number");
      assert.equal(typeof l.phase, "string");
    }
    // And no 5xx line anywhere without a reason.
    for (const p of [px, sidecar]) {
      for (const l of jsonLines(p)) if (l.status >= 500) assert.ok(l.reason, JSON.stringify(l));
    }
  });

  test("a sidecar's lines carry its proxy id", () => {
    const lines = jsonLines(sidecar);
    assert.ok(lines.length > 0);
    for (const l of lines) assert.equal(l.proxy_id, "px-lonely", JSON.stringify(l));
  });

  test("both stop cleanly, with no sanitizer report", async () => {
    for (const p of [px, sidecar]) {
      const r = await stopProxy(p);
      assert.equal(r.report, null, r.log.slice(-3000));
      assert.ok(r.code === 0 || r.code === 143, JSON.stringify(r.code));
    }
  });
});

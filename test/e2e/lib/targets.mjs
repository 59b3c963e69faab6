// targets.mjs -- the describe() blocks that bring up a target and run the
// conformance suite against it. A *.test.mjs file is one call to one of
// these, so that each file owns one Azurite (and at most one proxy) and
// the runner can give every target its own process.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  PHASES, PhaseRefused, proxyAvailable, proxyBin, startAzurite, startProxy, stopAll, stopProxy,
  target, toPhase,
} from "./harness.mjs";
import { conformance, makeContext } from "./suite.mjs";

export function runAzuriteTarget() {
  const ctx = makeContext("azurite");
  describe("azurite", () => {
    before(async () => {
      const az = await startAzurite();
      ctx.target = target({ name: "azurite", kind: "azurite", endpoint: az.endpoint("devstoreaccount1") });
    });
    after(stopAll);
    conformance(ctx);
  });
}

export function backendSkipReason() {
  const mode = process.env.MTABLE_E2E_BACKEND || "auto";
  return mode === "memory" ? "MTABLE_E2E_BACKEND=memory" : false;
}

export function proxySkipReason() {
  return proxyAvailable() ? false : `proxy binary ${proxyBin} not built (set MTABLE_PROXY_BIN)`;
}

// The proxy, moved to phase n before the suite runs. The last case stops
// the proxy and fails if it did not exit cleanly or printed a sanitizer
// report, which is how the sanitizer build (MTABLE_PROXY_BIN) is judged.
export function runProxyTarget(n) {
  const ctx = makeContext("proxy");
  let px = null;
  describe(`proxy in phase ${n} (${PHASES[n]})`, { skip: proxySkipReason() }, () => {
    before(async () => {
      const az = await startAzurite();
      px = await startProxy(az);
      try {
        await toPhase(px, n);
      } catch (e) {
        if (!(e instanceof PhaseRefused)) throw e;
        ctx.skipAll =
          `the proxy refuses a direct push to ${PHASES[n]} (${e.message.split("\n")[0]}); ` +
          "this phase is covered only inside the migration run (migration.test.mjs)";
        return;
      }
      ctx.target = target({ name: `proxy-${n}`, kind: "proxy", endpoint: px.endpoint, phase: n, proxy: px });
    });
    after(stopAll);
    test("the proxy runs on Azurite backends", { skip: backendSkipReason() }, () => {
      assert.ok(px, "proxy not started");
      assert.equal(px.fallback, null, `the proxy would not start with Azure backends; ran on memory:\n${px.fallback}`);
    });
    conformance(ctx);
    test("the proxy shuts down cleanly on SIGTERM", async () => {
      assert.ok(px, "proxy not started");
      const r = await stopProxy(px);
      assert.equal(r.report, null, `sanitizer report:\n${r.log}`);
      assert.ok(r.code === 0 || r.code === 143, `exit ${JSON.stringify(r)}; log tail:\n${r.log.slice(-3000)}`);
    });
  });
}

// The demo (demo/run.mjs) end to end, small: two Azurite accounts, an
// authority, two sidecars, 800 seeded rows, a checked workload on both
// sidecars, `mtablectl migrate` at 2000 rows/s, then the summary. The demo
// is run as a child process exactly as a person would run it; this file
// checks its exit status and the lines of its summary.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ctlBin, repoRoot } from "./lib/harness.mjs";
import { proxySkipReason } from "./lib/targets.mjs";

const script = join(repoRoot, "test/e2e/demo/run.mjs");
const ctl = ctlBin;
const ROWS = 800;

function skipReason() {
  return proxySkipReason() || (existsSync(ctl) ? false : `mtablectl not built (${ctl})`);
}

const children = new Set();

// Runs the demo; resolves {code, signal, out} (stdout and stderr together).
function demo(args, timeoutMs) {
  return new Promise((ok) => {
    const p = spawn(process.execPath, [script, ...args], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(p);
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    // On a timeout, SIGTERM lets the demo stop its servers by PID itself.
    const timer = setTimeout(() => p.kill("SIGTERM"), timeoutMs);
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      children.delete(p);
      ok({ code, signal, out });
    });
  });
}

describe("demo: a live migration for people evaluating mtable", { skip: skipReason() }, () => {
  after(() => {
    for (const p of children) p.kill("SIGTERM");
  });

  test("--help and a bad flag", async () => {
    const h = await demo(["--help"], 10000);
    assert.equal(h.code, 0, h.out);
    assert.match(h.out, /^usage: node test\/e2e\/demo\/run\.mjs/m);
    assert.match(h.out, /--copy-rate N/);
    const bad = await demo(["--rows", "lots"], 10000);
    assert.equal(bad.code, 2, bad.out);
    assert.match(bad.out, /--rows: expected an integer/);
  });

  test(`${ROWS} rows, a workload on two sidecars, migrate, verify`, { timeout: 90000 }, async (tc) => {
    const t0 = Date.now();
    const r = await demo(["--rows", String(ROWS), "--copy-rate", "2000"], 80000);
    tc.diagnostic(`demo ran ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const why = `demo exited ${r.code} (${r.signal}); output:\n${r.out}`;
    assert.equal(r.code, 0, why);

    // The banner: both accounts, the authority, the sidecars, the command to watch.
    assert.match(r.out, /old storage account\s+Azurite\s+http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1/, why);
    assert.match(r.out, /new storage account\s+Azurite\s+http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1/, why);
    assert.match(r.out, /sidecar app-1\s+mtable-proxy/, why);
    assert.match(r.out, /sidecar app-2\s+mtable-proxy/, why);
    assert.match(r.out, /mtablectl --admin http:\/\/127\.0\.0\.1:\d+ status/, why);
    // mtablectl migrate's own output went through (one line per state when not a terminal).
    assert.match(r.out, /migration done, phase use_new_hide_metadata/, why);

    // The summary.
    assert.match(r.out, /^  migration: use_new_hide_metadata, mtablectl migrate exit 0 .* ok$/m, why);
    assert.match(r.out, /^  old table \(old Azurite, read directly\): 0 rows\b.* ok$/m, why);
    const m = r.out.match(/^  new table \(new Azurite, read directly\): (\d+) rows = (\d+) seeded \+ (\d+) written by the workload +ok$/m);
    assert.ok(m, `no new-table line; ${why}`);
    assert.equal(Number(m[2]), ROWS, why);
    assert.equal(Number(m[1]), Number(m[2]) + Number(m[3]), why);
    for (const app of ["app-1", "app-2"]) {
      const w = r.out.match(new RegExp(`^  workload ${app}: (\\d+) ok .*, (\\d+) mismatches$`, "m"));
      assert.ok(w, `no workload line for ${app}; ${why}`);
      assert.ok(Number(w[1]) > 0, `${app} did no work; ${why}`);
      assert.equal(Number(w[2]), 0, why);
    }
    assert.match(r.out, /^  mismatches: 0 +ok$/m, why);
    assert.match(r.out, /^  verify: ok \(mtablectl verify exit 0\) +ok$/m, why);
    assert.match(r.out, /^PASS: /m, why);
  });
});

// python-sdks.test.mjs -- the Python SDKs from Debian's packages, directly
// against Azurite and through mtable-proxy in each phase 0..4.
//
// Each suite in python/ (plain unittest, one file per SDK) runs once against
// Azurite, the reference, and then once per phase through one proxy that is
// moved forward a phase at a time (its old and new tables are two accounts
// of the same Azurite). unittest's verbose report is parsed and every Python
// test becomes a node test of its own, so the counts are the Python ones.
// A missing SDK module fails, naming the Debian package to install.
//
// Environment: MTABLE_E2E_PYTHON, the interpreter (default /usr/bin/python3,
// which is where Debian's packages install the SDKs); the harness's
// variables (MTABLE_PROXY_BIN, MTABLE_E2E_BACKEND, ...).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { AZURITE_DEVIATIONS, deviates } from "./lib/deviations.mjs";
import {
  DEV_ACCOUNT, DEV_KEY, PHASES, e2eDir, startAzurite, startProxy, stopAll, stopProxy, toPhase,
} from "./lib/harness.mjs";
import { backendSkipReason, proxySkipReason } from "./lib/targets.mjs";

const python = process.env.MTABLE_E2E_PYTHON || "/usr/bin/python3";
const pyDir = join(e2eDir, "python");

const SUITES = [
  { file: "test_data_tables", module: "azure.data.tables", pkg: "python3-azure" },
  { file: "test_cosmosdb_table", module: "azure.cosmosdb.table", pkg: "python3-azure-cosmosdb-table" },
];

function run(cmd, args, env) {
  return new Promise((ok) => {
    const child = spawn(cmd, args, { cwd: pyDir, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", (e) => ok({ code: -1, out: `${out}${e.message}\n` }));
    child.on("close", (code) => ok({ code, out }));
  });
}

// Parses `python -m unittest -v` output into [{id, outcome, detail}] in the
// order the tests ran; outcome is "ok", "skip" or "fail". A test whose
// subtests failed has no outcome line of its own; the FAIL:/ERROR: sections
// at the end name it (with the subtest in brackets or parentheses after the
// id), and carry the tracebacks.
export function parseUnittest(out) {
  const tests = new Map();
  const started = /^\s*(\w+) \(([\w.]+)\)(?: \[[^\n]*?\])?(?: \([^\n]*?\))? \.\.\. ?(.*)$/;
  for (const line of out.split("\n")) {
    const m = line.match(started);
    if (!m) continue;
    const id = m[2];
    const t = tests.get(id) ?? { id, outcome: null, detail: "" };
    tests.set(id, t);
    const rest = m[3].trim();
    if (rest === "ok" && t.outcome === null) t.outcome = "ok";
    else if (rest.startsWith("skipped")) t.outcome = "skip", (t.detail = rest.replace(/^skipped ?/, ""));
    else if (/^(FAIL|ERROR|unexpected success)$/.test(rest)) t.outcome = "fail";
  }
  const sections = out.split(/^={70}$/m).slice(1);
  for (const s of sections) {
    const m = s.match(/^\n(FAIL|ERROR): (\w+) \(([\w.]+)\)/);
    if (!m) continue;
    const t = tests.get(m[3]) ?? { id: m[3], outcome: null, detail: "" };
    tests.set(m[3], t);
    t.outcome = "fail";
    t.detail += s.split(/^-{70}$/m).slice(0, 2).join("").trim() + "\n";
  }
  const ran = out.match(/^Ran (\d+) tests? in /m);
  return { tests: [...tests.values()], ran: ran ? Number(ran[1]) : null };
}

// A fresh table-name prefix for the carry-over cases (each suite adds a
// letter of its own).
function carryPrefix() {
  return `pycarry${randomBytes(5).toString("hex")}`;
}

// The deviations of lib/deviations.mjs that apply to a target kind.
function deviationList(kind) {
  return Object.keys(AZURITE_DEVIATIONS).filter((d) => deviates(kind, d)).join(",");
}

// Runs every Python suite against the target ctx.endpoint() names and
// registers one node test per Python test as a subtest of the suite's test.
function pythonSuites(label, kind, ctx) {
  for (const suite of SUITES) {
    test(`${suite.file} (${suite.module})`, { timeout: 120000 }, async (t) => {
      if (ctx.skip) {
        t.skip(ctx.skip);
        return;
      }
      assert.ok(ctx.endpoint, "target not started (see the before hook's error)");
      const env = {
        ...process.env,
        MTABLE_E2E_PY_ENDPOINT: ctx.endpoint,
        MTABLE_E2E_PY_ACCOUNT: DEV_ACCOUNT,
        MTABLE_E2E_PY_KEY: DEV_KEY,
        MTABLE_E2E_PY_TARGET: label,
        MTABLE_E2E_PY_DEVIATIONS: deviationList(kind),
        MTABLE_E2E_PY_CARRY: ctx.carry,
        MTABLE_E2E_PY_CARRY_FROM: ctx.carryFrom.join(","),
        PYTHONDONTWRITEBYTECODE: "1",
      };
      const r = await run(python, ["-W", "ignore::ResourceWarning", "-m", "unittest", "-v", suite.file], env);
      const { tests, ran } = parseUnittest(r.out);
      assert.ok(tests.length > 0, `no test ran (exit ${r.code}):\n${r.out.slice(-4000)}`);
      for (const pt of tests) {
        const name = pt.id.split(".").slice(1).join(".");
        await t.test(name, (st) => {
          if (pt.outcome === "skip") {
            st.skip(pt.detail);
            return;
          }
          assert.notEqual(pt.outcome, null, `no outcome for ${pt.id} in the output:\n${r.out.slice(-4000)}`);
          assert.equal(pt.outcome, "ok", pt.detail);
        });
      }
      assert.equal(ran, tests.length, `unittest ran ${ran} tests, ${tests.length} reported:\n${r.out.slice(-4000)}`);
      assert.equal(r.code, 0, `unittest exited with ${r.code}:\n${r.out.slice(-4000)}`);
    });
  }
}

describe("Python SDKs", () => {
  let az = null;
  before(async () => {
    az = await startAzurite();
  });
  after(stopAll);

  describe("the SDK modules are installed", () => {
    for (const suite of SUITES) {
      test(`${suite.module} (Debian package ${suite.pkg})`, async () => {
        const r = await run(python, ["-c", `import ${suite.module}`], process.env);
        assert.equal(r.code, 0,
          `${python} cannot import ${suite.module}; install the Debian package ${suite.pkg} ` +
          `(docker/install-deps.sh does):\n${r.out}`);
      });
    }
  });

  describe("azurite", () => {
    const ctx = { endpoint: null, skip: null, carry: carryPrefix(), carryFrom: [] };
    before(() => {
      ctx.endpoint = az.endpoint(DEV_ACCOUNT);
    });
    pythonSuites("azurite", "azurite", ctx);
  });

  describe("proxy", { skip: proxySkipReason() }, () => {
    let px = null;
    before(async () => {
      px = await startProxy(az);
    });
    test("the proxy runs on Azurite backends", { skip: backendSkipReason() }, () => {
      assert.ok(px, "proxy not started");
      assert.equal(px.fallback, null, `the proxy would not start with Azure backends; ran on memory:\n${px.fallback}`);
    });
    // The carry-over tables are written in every phase and read in the
    // next ones, across the migrator's copy.
    const carry = carryPrefix();
    for (let n = 0; n < PHASES.length; n++) {
      describe(`phase ${n} (${PHASES[n]})`, () => {
        const carryFrom = PHASES.slice(0, n).map((_, k) => `proxy-${k}`);
        const ctx = { endpoint: null, skip: null, carry, carryFrom };
        before(async () => {
          await toPhase(px, n);
          ctx.endpoint = px.endpoint;
        });
        pythonSuites(`proxy-${n}`, "proxy", ctx);
      });
    }
    test("the proxy shuts down cleanly on SIGTERM", async () => {
      assert.ok(px, "proxy not started");
      const r = await stopProxy(px);
      assert.equal(r.report, null, `sanitizer report:\n${r.log}`);
      assert.ok(r.code === 0 || r.code === 143, `exit ${JSON.stringify(r)}; log tail:\n${r.log.slice(-3000)}`);
    });
  });
});

describe("the unittest report is read as written", () => {
  const sep = "=".repeat(70);
  const dash = "-".repeat(70);
  const sample = [
    "test_a (mod.A.test_a) ... ok",
    "test_b (mod.A.test_b) ... skipped 'no reason'",
    "test_c (mod.B.test_c) ... ",
    "  test_c (mod.B.test_c) [emulator mode] (index=1) ... FAIL",
    "test_d (mod.B.test_d) ... ERROR",
    "test_e (mod.B.test_e) ... ",
    "",
    sep,
    "FAIL: test_c (mod.B.test_c) [emulator mode] (index=1)",
    dash,
    "Traceback (most recent call last):",
    "AssertionError: 1 != 2",
    "",
    sep,
    "ERROR: test_d (mod.B.test_d)",
    dash,
    "Traceback (most recent call last):",
    "KeyError: 'x'",
    "",
    dash,
    "Ran 5 tests in 0.1s",
    "",
    "FAILED (failures=1, errors=1, skipped=1)",
  ].join("\n");

  test("ok, skip, a failed subtest, an error and a missing outcome", () => {
    const { tests, ran } = parseUnittest(sample);
    assert.equal(ran, 5);
    const by = Object.fromEntries(tests.map((t) => [t.id, t]));
    assert.deepEqual(tests.map((t) => t.id), ["mod.A.test_a", "mod.A.test_b", "mod.B.test_c", "mod.B.test_d", "mod.B.test_e"]);
    assert.equal(by["mod.A.test_a"].outcome, "ok");
    assert.equal(by["mod.A.test_b"].outcome, "skip");
    assert.equal(by["mod.A.test_b"].detail, "'no reason'");
    assert.equal(by["mod.B.test_c"].outcome, "fail");
    assert.match(by["mod.B.test_c"].detail, /AssertionError: 1 != 2/);
    assert.equal(by["mod.B.test_d"].outcome, "fail");
    assert.match(by["mod.B.test_d"].detail, /KeyError/);
    assert.equal(by["mod.B.test_e"].outcome, null);
  });
});

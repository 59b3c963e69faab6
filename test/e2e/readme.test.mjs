// The README keeps its promises: its quick-start command starts a proxy, its
// tour runs as written (its SDK snippets, then mtablectl status, migrate and
// verify), its flag table is exactly what `mtable-proxy --help` prints, the
// mtablectl commands it shows exist, and every flag and endpoint it
// documents is exercised by some test in this repository.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { after, describe, test } from "node:test";
import {
  ctlBin, e2eDir, freePort, proxyBin, repoRoot, sleep, startMtable, startMtableOnFreePorts, stopAll,
} from "./lib/harness.mjs";
import { proxySkipReason } from "./lib/targets.mjs";

const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
const ctl = ctlBin;

function block(tag) {
  const m = readme.match(new RegExp("```js " + tag + "\\n([\\s\\S]*?)```"));
  assert.ok(m, `README has a \`\`\`js ${tag} block`);
  return m[1];
}

// Every source file of the test suites, except this one.
function testSources() {
  const out = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      if (name === "node_modules" || name === "fixtures" || name === "corpus") continue;
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(mjs|c|sh|http)$/.test(name) && !p.endsWith("readme.test.mjs")) out.push(p);
    }
  };
  walk(join(repoRoot, "test"));
  return out.map((p) => ({ path: relative(repoRoot, p), text: readFileSync(p, "utf8") }));
}

function readmeFlags() {
  const rows = readme.split("\n").filter((l) => /^\| `--[a-z-]+ [A-Z:]+` \| `MTABLE_/.test(l));
  return rows.map((l) => {
    const [, flag, env] = /^\| `(--[a-z-]+) [A-Z:]+` \| `(MTABLE_[A-Z_]+)`/.exec(l);
    return { flag, env };
  });
}

function runNode(code, port) {
  const src = code.replaceAll("127.0.0.1:10002", `127.0.0.1:${port}`);
  return execFileSync(process.execPath, ["--input-type=module"], { input: src, cwd: e2eDir, encoding: "utf8", timeout: 60000 });
}

function runCtl(adminUrl, args) {
  try {
    return { code: 0, out: execFileSync(ctl, ["--admin", adminUrl, ...args], { encoding: "utf8", timeout: 120000 }) };
  } catch (e) {
    return { code: e.status, out: `${e.stdout}${e.stderr}` };
  }
}

describe("README", { skip: proxySkipReason() }, () => {
  after(stopAll);

  test("the flag table is exactly what mtable-proxy --help prints", () => {
    const help = execFileSync(proxyBin, ["--help"], { encoding: "utf8" });
    const helpFlags = [...help.matchAll(/^ {2}(--[a-z-]+) [A-Z:]+ +(MTABLE_[A-Z_]+)$/gm)].map((m) => ({ flag: m[1], env: m[2] }));
    assert.ok(helpFlags.length >= 16, help);
    assert.deepEqual(readmeFlags().sort((a, b) => a.flag.localeCompare(b.flag)), helpFlags.sort((a, b) => a.flag.localeCompare(b.flag)));
  });

  test("the mtablectl commands it shows exist", () => {
    const help = execFileSync(ctl, ["--help"], { encoding: "utf8" });
    const shown = new Set([...readme.matchAll(/mtablectl(?: --admin \S+)? ([a-z]+)/g)].map((m) => m[1]));
    for (const cmd of shown) assert.match(help, new RegExp(`^ {2}${cmd}\\b`, "m"), `mtablectl ${cmd}`);
    for (const cmd of ["status", "phase", "migrate", "pause", "resume", "verify"]) assert.ok(shown.has(cmd) || readme.includes(`\`${cmd}`), cmd);
  });

  test("every flag and endpoint it documents is exercised by a test", () => {
    const sources = testSources();
    const used = (s) => sources.some((f) => f.text.includes(s));
    const missing = [];
    for (const { flag, env } of readmeFlags()) {
      if (!used(flag) && !used(env)) missing.push(flag);
    }
    const endpoints = [...readme.matchAll(/`(?:GET|POST|PUT) (\/[a-z0-9/]+)/g)].map((m) => m[1].replace(/\/$/, ""));
    assert.ok(endpoints.length >= 10, endpoints.join(" "));
    for (const e of new Set(endpoints)) if (!used(e)) missing.push(e);
    assert.deepEqual(missing, [], `documented but never exercised: ${missing.join(", ")}`);
  });

  test("the quick start's run command starts a proxy on the embedded default", { timeout: 300000 }, async () => {
    const port = await freePort();
    const adminPort = await freePort();
    const p = spawn(join(repoRoot, "scripts/run.sh"), ["--listen", `127.0.0.1:${port}`, "--admin-listen", `127.0.0.1:${adminPort}`], {
      env: { ...process.env, MTABLE_SKIP_DEPS: "1" }, stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    try {
      let status = null;
      for (let i = 0; i < 2400 && !status; i++) {
        status = await fetch(`http://127.0.0.1:${adminPort}/admin/v1/status`).then((r) => r.json()).catch(() => null);
        if (!status) await sleep(100);
      }
      assert.ok(status, `no proxy came up:\n${err}`);
      assert.equal(status.phase, "use_old_hide_metadata");
      assert.equal(status.role, "authority");
      assert.equal(status.state_store, "memory");
      assert.match(err, /serving account devstoreaccount1 on http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1.*old=memory new=memory/);
    } finally {
      p.kill("SIGTERM");
    }
  });

  test("the tour runs as written", { timeout: 180000 }, async () => {
    const px = await startMtableOnFreePorts({ name: "tour", args: [] });
    const port = px.port;
    assert.match(runNode(block("tour-write"), port), /wrote 500 rows/);
    const st = runCtl(px.adminUrl, ["status"]);
    assert.equal(st.code, 0, st.out);
    assert.match(st.out, /use_old_hide_metadata/);
    const mig = runCtl(px.adminUrl, ["migrate"]);
    assert.equal(mig.code, 0, mig.out);
    assert.match(mig.out, /done/);
    const v = runCtl(px.adminUrl, ["verify"]);
    assert.equal(v.code, 0, v.out);
    assert.match(runNode(block("tour-read"), port), /read back 500 rows/);
  });
});

// mtablectl status --watch and the push it shows waiting: an authority
// and two sidecars on memory backends. --watch repeats the status, as
// plain successive blocks into a pipe and redrawn in place on a terminal
// (run under script(1) for a pseudo-terminal), and ends cleanly on Ctrl-C.
// A sidecar killed with SIGKILL keeps its lease until it runs out: the
// next push waits for it, `mtablectl status` names it with the lease left,
// and the authority's log says every 2 s whom the push waits for.

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ctlBin, proxyBin, repoRoot, startMtableOnFreePorts, stopAll, stopProxy, waitFor } from "./lib/harness.mjs";
import { proxySkipReason } from "./lib/targets.mjs";

const ctl = ctlBin;
const LEASE_MS = 3000;

function cleanEnv(extra = {}) {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MTABLE_"))), ...extra };
}

function runCtl(args) {
  return new Promise((ok) => {
    execFile(ctl, args, { env: cleanEnv(), timeout: 60000 }, (err, stdout, stderr) =>
      ok({ code: err ? err.code : 0, stdout, stderr }));
  });
}

// Runs cmd with args, sends SIGINT after ms; resolves {code, signal, stdout}.
function interruptAfter(cmd, args, ms) {
  return new Promise((ok) => {
    const p = spawn(cmd, args, { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const t = setTimeout(() => p.kill("SIGINT"), ms);
    p.on("exit", (code, signal) => {
      clearTimeout(t);
      ok({ code, signal, stdout, stderr });
    });
  });
}

describe("mtablectl status --watch", { skip: proxySkipReason() }, () => {
  let auth, px1, px3;

  before(async () => {
    auth = await startMtableOnFreePorts({
      name: "watch-authority", args: ["--lease-ms", String(LEASE_MS), "--log-format", "json"],
    });
    for (const id of ["px1", "px3"]) {
      const px = await startMtableOnFreePorts({
        name: `watch-${id}`, args: ["--config-endpoint", auth.adminUrl, "--proxy-id", id],
      });
      if (id === "px1") px1 = px;
      else px3 = px;
    }
  });

  after(stopAll);

  test("into a pipe: one block per interval, each headed by the time; Ctrl-C ends it with 0", async () => {
    const r = await interruptAfter(ctl, ["--admin", auth.adminUrl, "status", "--watch", "--interval", "0.3"], 1500);
    assert.equal(r.code, 0, r.stderr);
    const heads = r.stdout.match(/^\d\d:\d\d:\d\d {2}http:\/\/127\.0\.0\.1:\d+ {2}every 0\.3s$/gm) ?? [];
    assert.ok(heads.length >= 3, r.stdout);
    assert.equal((r.stdout.match(/^phase {6}use_old_hide_metadata$/gm) ?? []).length, heads.length);
    assert.ok(!r.stdout.includes("\x1b["), "no terminal control sequences into a pipe");
  });

  test("with --json: one status document a line", async () => {
    const r = await interruptAfter(ctl, ["--admin", auth.adminUrl, "--json", "status", "--watch", "--interval", "0.3"], 1500);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.ok(lines.length >= 3, r.stdout);
    for (const l of lines) assert.equal(typeof JSON.parse(l).phase, "string", l);
  });

  test("on a terminal: the screen is cleared and redrawn in place", async () => {
    const inner = `timeout --preserve-status -s INT 1.5 ${ctl} --admin ${auth.adminUrl} status --watch --interval 0.3; echo "exit=$?"`;
    const r = await interruptAfter("script", ["-qec", inner, "/dev/null"], 10000);
    const clears = r.stdout.split("\x1b[H\x1b[2J").length - 1;
    assert.ok(clears >= 3, JSON.stringify(r.stdout.slice(0, 400)));
    assert.match(r.stdout, /every 0\.3s {2}\(Ctrl-C to stop\)/);
    assert.match(r.stdout, /exit=0/);
  });

  test("usage: --watch and --interval belong to status", async () => {
    for (const args of [["phase", "prefer_old", "--watch"], ["status", "--interval", "1"], ["status", "--watch", "--interval", "0"]]) {
      const r = await runCtl(["--admin", auth.adminUrl, ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
  });

  test("a push held up by a dead sidecar: status and the log name it with its lease", async () => {
    // Out of phase 0 first, so that leases are short (--lease-ms).
    const r = await runCtl(["--admin", auth.adminUrl, "phase", "prefer_old"]);
    assert.equal(r.code, 0, r.stderr);
    const alive = setInterval(() => {}, 1000); // the killed process's guard is unref'd
    try {
      await px3.kill9();
      await heldPush();
    } finally {
      clearInterval(alive);
    }
  });

  test("the authority and the live sidecar stop cleanly, with no sanitizer report", async () => {
    for (const p of [px1, auth]) {
      const r = await stopProxy(p);
      assert.equal(r.report, null, r.log.slice(-3000));
      assert.ok(r.code === 0 || r.code === 143, JSON.stringify(r.code));
    }
  });

  async function heldPush() {
    let r;
    const push = runCtl(["--admin", auth.adminUrl, "phase", "prefer_new"]);
    let seen = null;
    await waitFor("status naming px3", async () => {
      const s = await runCtl(["--admin", auth.adminUrl, "status"]);
      const m = s.stdout.match(/^waiting {4}for px3 \(lease (\d+\.\d) s left\)$/m);
      if (m) seen = { text: s.stdout, left: Number(m[1]) };
      return m !== null;
    }, 10000);
    assert.ok(seen.left >= 0 && seen.left <= LEASE_MS / 1000, seen.text);
    r = await push;
    assert.equal(r.code, 0, r.stderr);
    const after = await runCtl(["--admin", auth.adminUrl, "status"]);
    assert.doesNotMatch(after.stdout, /^waiting/m);
    const lines = readFileSync(auth.process.log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const waits = lines.filter((l) => /^push: waiting for px3 \((lease|its lease)/.test(l.msg));
    assert.ok(waits.length >= 1, lines.map((l) => l.msg).join("\n"));
    assert.equal(waits[0].proxy_id, "px3");
    assert.equal(waits[0].level, "warn");
    assert.ok(px1.process.alive());
  }
});

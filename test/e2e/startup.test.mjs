// Start-up as an operator meets it: every way of getting the settings wrong
// ends the process at once with one line on stderr that names the setting
// and what to do, and a non-zero exit; --log-format json makes every log
// line a JSON object; a proxy that follows an authority it cannot reach
// starts, but is not ready and answers nothing until it holds a lease.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { freePort, proxyBin, sleep, startMtable, stopAll } from "./lib/harness.mjs";
import { proxySkipReason } from "./lib/targets.mjs";

// Runs the proxy with args until it exits (or timeoutMs); returns its exit
// and output.
function runProxy(args, { timeoutMs = 30000, env = {} } = {}) {
  return new Promise((ok) => {
    const clean = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("MTABLE_")) clean[k] = v;
    const p = spawn(proxyBin, args, { env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      ok({ code, signal, out, err, lines: err.split("\n").filter((l) => l.trim()) });
    });
  });
}

async function ports() {
  return ["--listen", `127.0.0.1:${await freePort()}`, "--admin-listen", `127.0.0.1:${await freePort()}`];
}

function oneClearLine(r, pattern) {
  assert.notEqual(r.code, 0, `must fail: ${r.err}`);
  const errors = r.lines.filter((l) => l.startsWith("mtable-proxy:"));
  assert.equal(errors.length, 1, `exactly one error line, got:\n${r.err}`);
  assert.match(errors[0], pattern);
  return errors[0];
}

describe("start-up errors and logs", { skip: proxySkipReason() }, () => {
  const dir = mkdtempSync(join(tmpdir(), "mtable-startup-"));
  after(async () => {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a bad connection string names the flag", async () => {
    const r = await runProxy([...(await ports()), "--old", "AccountName=x;NoSuchKey=1"]);
    oneClearLine(r, /--old \(MTABLE_OLD\) is neither 'memory' nor a valid connection string/);
    assert.equal(r.code, 2);
  });

  test("a bad value names the flag and its variable", async () => {
    const r = await runProxy([...(await ports())], { env: { MTABLE_LEASE_MS: "soon" } });
    oneClearLine(r, /--lease-ms \(MTABLE_LEASE_MS\): 'soon'/);
    assert.equal(r.code, 2);
  });

  test("a port in use is one line saying which and how to choose another", async () => {
    const srv = createServer();
    const port = await freePort();
    await new Promise((ok) => srv.listen(port, "127.0.0.1", ok));
    try {
      const r = await runProxy(["--listen", `127.0.0.1:${port}`, "--admin-listen", `127.0.0.1:${await freePort()}`]);
      oneClearLine(r, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use.*--listen`));
    } finally {
      srv.close();
    }
  });

  test("an unreachable backend says which and what to check", async () => {
    const dead = await freePort();
    const cs = `DefaultEndpointsProtocol=http;AccountName=a;AccountKey=${Buffer.from("k").toString("base64")};TableEndpoint=http://127.0.0.1:${dead}/a;`;
    const r = await runProxy([...(await ports()), "--old", cs, "--new", cs], { timeoutMs: 120000 });
    oneClearLine(r, /cannot list the tables of the old backend \(--old, .*\): is its endpoint reachable and the key right\?/);
    assert.equal(r.code, 1);
  });

  test("an unreachable new backend is named as the new one", async () => {
    const dead = await freePort();
    const cs = `DefaultEndpointsProtocol=http;AccountName=a;AccountKey=${Buffer.from("k").toString("base64")};TableEndpoint=http://127.0.0.1:${dead}/a;`;
    const r = await runProxy([...(await ports()), "--new", cs, "--config-endpoint", "http://127.0.0.1:1"], { timeoutMs: 120000 });
    oneClearLine(r, /cannot list the tables of the new backend \(--new, .*\): is its endpoint reachable and the key right\?/);
    assert.equal(r.code, 1);
  });

  test("an admin port beyond loopback without a token is refused", async () => {
    const r = await runProxy(["--listen", `127.0.0.1:${await freePort()}`, "--admin-listen", `0.0.0.0:${await freePort()}`]);
    oneClearLine(r, /refusing to serve the admin endpoint on 0\.0\.0\.0 without --admin-token \(MTABLE_ADMIN_TOKEN\)/);
    assert.equal(r.code, 2);
  });

  test("a state store that cannot be used names it", async () => {
    const r = await runProxy([...(await ports()), "--state-store", `file:${join(dir, "missing", "state.json")}`]);
    oneClearLine(r, /cannot open the state store \(--state-store file:/);
    const bad = await runProxy([...(await ports()), "--state-store", "AccountName=only"]);
    oneClearLine(bad, /cannot open the state store/);
    assert.doesNotMatch(bad.err, /AccountName=only/, "a connection string may hold a key: never echo it");
  });

  test("--log-format json: every log line is one JSON object", async () => {
    const port = await freePort();
    const adminPort = await freePort();
    const px = await startMtable({ name: "jsonlog", port, adminPort, args: ["--log-format", "json", "--log-level", "debug"], ready: false });
    await fetch(`${px.adminUrl}/admin/v1/status`).then((r) => r.text());
    await px.process.stop();
    const lines = px.process.tail(1000).split("\n").filter((l) => l.startsWith("{"));
    assert.ok(lines.length >= 2, `expected log lines:\n${px.process.tail(20)}`);
    for (const l of lines) {
      const o = JSON.parse(l);
      assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(["error", "warn", "info", "debug"].includes(o.level));
      assert.equal(typeof o.msg, "string");
    }
    assert.ok(lines.some((l) => JSON.parse(l).msg.includes("serving account devstoreaccount1")));
  });

  test("a proxy whose authority is unreachable starts, is not ready, and answers 503", async () => {
    const dead = await freePort();
    const px = await startMtable({
      name: "orphan", port: await freePort(), adminPort: await freePort(),
      args: ["--config-endpoint", `http://127.0.0.1:${dead}`, "--proxy-id", "orphan"], ready: false,
    });
    await sleep(300);
    const r = await fetch(`${px.adminUrl}/readyz`);
    assert.equal(r.status, 503);
    assert.match(await r.text(), new RegExp(`no lease from http://127\\.0\\.0\\.1:${dead}`));
    const t = await fetch(`${px.endpoint}/Tables`, { headers: { Accept: "application/json" } });
    assert.ok(t.status === 503 || t.status === 403, `unauthenticated requests are refused either way (${t.status})`);
    const st = await (await fetch(`${px.adminUrl}/admin/v1/status`)).json();
    assert.equal(st.role, "proxy");
    assert.equal(st.proxies[0].live, false);
    assert.match(st.proxies[0].last_error, /AuthorityUnreachable/);
    const m = await (await fetch(`${px.adminUrl}/metrics`)).text();
    assert.match(m, /^mtable_lease_valid 0$/m);
  });
});

// TLS on the admin and configuration endpoint: two authority replicas
// serve it over HTTPS only (--admin-tls-cert/--admin-tls-key), a sidecar
// verifies their certificate against --config-ca and takes its phase and
// lease through them (listing the standby first, so the standby's redirect
// to the leader goes over HTTPS too, and the standby announces itself to
// the leader over HTTPS), mtablectl verifies it with --ca or
// MTABLE_ADMIN_CA. A sidecar or mtablectl given another CA fails closed:
// it never talks to the endpoint, and says why in one line naming it.
//
// The certificates are made at run time with openssl: a CA, a server
// certificate for 127.0.0.1 and localhost signed by it, and an unrelated CA.

import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  ctlBin, freePort, httpsGet, proxyBin, repoRoot, startMtable, startMtableOnFreePorts, stopAll, stopProxy, waitFor,
} from "./lib/harness.mjs";
import { proxySkipReason } from "./lib/targets.mjs";

// Beside the proxy under test (so a sanitizer build tests its own CLI).
const ctl = ctlBin;

function openssl(args, cwd) {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

// ca.pem, server.pem/server.key (signed by ca, for 127.0.0.1 and
// localhost) and other.pem (a CA that signed nothing here) in dir.
function makeCertificates(dir) {
  const subj = (cn) => ["-subj", `/CN=${cn}`];
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "ca.key", "-out", "ca.pem", ...subj("mtable test CA")], dir);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", ...subj("localhost")], dir);
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "ext.cnf"], dir);
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "other.key", "-out", "other.pem", ...subj("another CA")], dir);
}

function runCtl(args, env = {}) {
  return new Promise((ok) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MTABLE_")));
    execFile(ctl, args, { env: { ...clean, ...env }, timeout: 60000 }, (err, stdout, stderr) => {
      ok({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

describe("TLS on the admin and configuration endpoint", { skip: proxySkipReason() }, () => {
  let dir, ca;
  const replicas = [];
  let sidecar, stranger;

  const status = async (px) => JSON.parse((await httpsGet(`${px.adminUrl}/admin/v1/status`, ca)).text);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "mtable-tls-"));
    makeCertificates(dir);
    ca = readFileSync(join(dir, "ca.pem"), "utf8");
    const tls = ["--admin-tls-cert", join(dir, "server.pem"), "--admin-tls-key", join(dir, "server.key"), "--config-ca", join(dir, "ca.pem")];
    for (const id of ["tls-a", "tls-b"]) {
      replicas.push(await startMtable({
        name: id, port: await freePort(), adminPort: await freePort(), ready: false, adminCa: ca,
        args: ["--state-store", `file:${join(dir, "state.json")}`, "--replica-id", id, "--proxy-id", id,
          "--lease-ms", "4000", ...tls],
      }));
      if (replicas.length === 1) await waitFor("tls-a to lead", async () => (await status(replicas[0])).role === "authority");
    }
    // The standby first: its 307 to the leader is followed over HTTPS.
    const endpoints = [replicas[1].adminUrl, replicas[0].adminUrl].join(",");
    sidecar = await startMtableOnFreePorts({
      name: "tls-sidecar",
      args: ["--config-endpoint", endpoints, "--config-ca", join(dir, "ca.pem"), "--proxy-id", "s1"],
    });
    stranger = await startMtableOnFreePorts({
      name: "tls-stranger", ready: false,
      args: ["--config-endpoint", replicas[0].adminUrl, "--config-ca", join(dir, "other.pem"),
        "--proxy-id", "s2", "--log-format", "json"],
    });
  });

  after(async () => {
    await stopAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the admin port speaks HTTPS only", async () => {
    const plain = await fetch(`http://127.0.0.1:${replicas[0].adminPort}/healthz`, { signal: AbortSignal.timeout(5000) })
      .then((r) => r.status, () => "refused");
    assert.notEqual(plain, 200);
    assert.equal((await httpsGet(`${replicas[0].adminUrl}/healthz`, ca)).status, 200);
  });

  test("the sidecar holds a lease through the verified endpoint; the standby announced itself", async () => {
    const s = await status(replicas[0]);
    assert.equal(s.role, "authority");
    const p = s.proxies.find((x) => x.id === "s1");
    assert.ok(p?.live, JSON.stringify(s.proxies));
    await waitFor("the standby in the leader's replicas", async () =>
      (await status(replicas[0])).replicas?.some((r) => r.id === "tls-b" && r.url.startsWith("https://")));
  });

  test("mtablectl --ca: status and a phase push through the standby's redirect", async () => {
    const admin = [replicas[1].adminUrl, replicas[0].adminUrl].join(",");
    const st = await runCtl(["--admin", replicas[0].adminUrl, "--ca", join(dir, "ca.pem"), "status"]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /role {7}authority/);
    assert.match(st.stdout, /proxy {6}s1: .*live/);
    const standby = await runCtl(["--admin", replicas[1].adminUrl, "--ca", join(dir, "ca.pem"), "status"]);
    assert.equal(standby.code, 0, standby.stderr);
    assert.match(standby.stdout, /role {7}standby/);
    const ph = await runCtl(["--admin", admin, "phase", "prefer_old"], { MTABLE_ADMIN_CA: join(dir, "ca.pem") });
    assert.equal(ph.code, 0, ph.stderr);
    await waitFor("the sidecar in prefer_old", async () => {
      const r = await fetch(`${sidecar.adminUrl}/admin/v1/status`);
      return (await r.json()).phase === "prefer_old";
    });
  });

  test("mtablectl with another CA or none refuses the endpoint (exit 3)", async () => {
    for (const extra of [["--ca", join(dir, "other.pem")], []]) {
      const r = await runCtl(["--admin", replicas[0].adminUrl, ...extra, "status"]);
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.stderr, /refusing to talk to https:\/\/127\.0\.0\.1:\d+: TLS failed: .*certificate.*--ca/);
      assert.equal(r.stdout, "");
    }
  });

  test("a sidecar given another CA fails closed with one clear error line", async () => {
    const ready = await fetch(`${stranger.adminUrl}/readyz`);
    assert.equal(ready.status, 503);
    const lines = readFileSync(stranger.process.log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const tlsLines = lines.filter((l) => /TLS/.test(l.msg));
    assert.ok(tlsLines.length >= 1, lines.map((l) => l.msg).join("\n"));
    const [l] = tlsLines;
    assert.equal(l.level, "error");
    assert.ok(l.msg.includes(replicas[0].adminUrl), l.msg);
    assert.match(l.msg, /certificate/);
    assert.match(l.msg, /--config-ca/);
    const s = await status(replicas[0]);
    assert.ok(!s.proxies.some((x) => x.id === "s2"), "the authority never heard from it");
  });

  test("every process stops cleanly, with no sanitizer report", async () => {
    for (const p of [stranger, sidecar, replicas[1], replicas[0]]) {
      const r = await stopProxy(p);
      assert.equal(r.report, null, r.log.slice(-3000));
      assert.ok(r.code === 0 || r.code === 143, JSON.stringify(r.code));
    }
  });
});

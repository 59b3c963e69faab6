// harness.mjs -- the servers an end-to-end test talks to, and their control.
//
// A test file starts one Azurite (the table service only, in memory, no
// telemetry, on a free loopback port) and, for proxy targets, one
// mtable-proxy whose old and new backends are two accounts of that Azurite.
// Every process is started through guard.mjs, so it is stopped by PID when
// the test process ends, whatever way it ends; stopAll() does the same
// explicitly and is what the suites call from their after() hooks.
//
// The proxy is driven through its admin endpoint only (docs/control-plane.md):
// phases are pushed one step at a time, and the phases that need the copy
// to be finished are reached by running the built-in migrator to the end.
//
// Environment:
//   MTABLE_PROXY_BIN       proxy binary (default <repo>/build/proxy/mtable-proxy),
//                          e.g. a sanitizer build
//   MTABLE_E2E_BACKEND     "azurite": the proxy's old and new tables live in two
//                          Azurite accounts; "memory": the proxy's embedded
//                          backends; "auto" (default): azurite, and memory when
//                          the proxy will not start with Azure backends (the
//                          proxy targets then report that as one failed case)
//   MTABLE_E2E_KEEP_LOGS=1 keep the server logs (their directory is printed)

import https from "node:https";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const e2eDir = resolve(here, "..");
export const repoRoot = resolve(e2eDir, "../..");

// Azurite's well-known development account (the one UseDevelopmentStorage=true
// means); the proxy authenticates clients against it by default.
export const DEV_ACCOUNT = "devstoreaccount1";
export const DEV_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export const PHASES = [
  "use_old_hide_metadata",
  "prefer_old",
  "prefer_new",
  "use_new_with_tombstones",
  "use_new_hide_metadata",
];

export const proxyBin =
  process.env.MTABLE_PROXY_BIN || join(repoRoot, "build/proxy/mtable-proxy");
// mtablectl of the proxy's build tree (MTABLE_CTL_BIN overrides it).
export const ctlBin =
  process.env.MTABLE_CTL_BIN ||
  [join(dirname(proxyBin), "../tools/mtablectl/mtablectl"), join(repoRoot, "build/tools/mtablectl/mtablectl")]
    .find((p) => existsSync(p)) ||
  join(repoRoot, "build/tools/mtablectl/mtablectl");

const backendMode = process.env.MTABLE_E2E_BACKEND || "auto";
if (!["auto", "azurite", "memory"].includes(backendMode)) {
  throw new Error(`MTABLE_E2E_BACKEND must be auto, azurite or memory, not ${backendMode}`);
}
const keepLogs = process.env.MTABLE_E2E_KEEP_LOGS === "1";
const START_TIMEOUT_MS = 60000;

// ---------------------------------------------------------------------------
// Processes.

let logRoot = null;
const running = new Set();

function logDir() {
  if (!logRoot) {
    logRoot = mkdtempSync(join(tmpdir(), "mtable-e2e-"));
    if (keepLogs) process.stderr.write(`e2e logs: ${logRoot}\n`);
  }
  return logRoot;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls probe() every 100 ms until it returns something truthy (which is
// returned), or throws after timeoutMs naming what it waited for.
export async function waitFor(what, probe, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// GET /readyz of a proxy: {status, text}; status 0 when it did not answer.
export async function readyz(px) {
  try {
    const r = await fetch(`${px.adminUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
    return { status: r.status, text: await r.text() };
  } catch (e) {
    return { status: 0, text: String(e) };
  }
}

export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

function tail(file, lines = 30) {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

// Starts cmd under the guard with output to <logdir>/<name>.log. Returns a
// handle: pid (the child's, once known), log, exited (a promise of
// {code, signal}), alive(), stop().
function startGuarded(name, cmd, args, env, cwd) {
  const log = join(logDir(), `${name}.log`);
  const fd = openSync(log, "a");
  const guard = spawn(process.execPath, [join(here, "guard.mjs"), cmd, ...args], {
    stdio: ["ignore", fd, fd, "ipc"],
    env,
    cwd,
  });
  closeSync(fd);
  guard.unref();
  guard.channel?.unref();

  const h = { name, log, guardPid: guard.pid, pid: null, done: null };
  guard.on("message", (m) => {
    if (m && typeof m.pid === "number") h.pid = m.pid;
  });
  h.exited = new Promise((ok) => {
    guard.on("exit", (code, signal) => {
      h.done = { code, signal };
      running.delete(h);
      ok(h.done);
    });
  });
  h.alive = () => h.done === null;
  // Asks the guard (by PID) to stop its child; waits for both to end.
  h.stop = async (graceMs = 15000) => {
    if (h.done) return h.done;
    try {
      process.kill(guard.pid, "SIGTERM");
    } catch {
      // already gone
    }
    const t = setTimeout(() => {
      if (h.done) return;
      for (const pid of [h.pid, guard.pid]) {
        try {
          if (pid) process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }, graceMs);
    const r = await h.exited;
    clearTimeout(t);
    return r;
  };
  h.tail = (lines) => tail(log, lines);
  running.add(h);
  return h;
}

// Stops every process this file started. Safe to call more than once.
export async function stopAll() {
  await Promise.all([...running].map((h) => h.stop()));
  if (logRoot && !keepLogs) {
    rmSync(logRoot, { recursive: true, force: true });
    logRoot = null;
  }
}

process.on("exit", () => {
  // Last resort when after() hooks never ran; the guards also notice the
  // closed channel on their own.
  for (const h of running) {
    for (const pid of [h.pid, h.guardPid]) {
      try {
        if (pid) process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
  }
});

// Polls probe() until it returns true, the process dies, or time runs out.
async function waitUntil(h, what, probe, timeoutMs = START_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!h.alive()) {
      await sleep(50);
      throw new Error(
        `${h.name} exited (${JSON.stringify(h.done)}) before ${what}; log:\n${h.tail()}`,
      );
    }
    try {
      if (await probe()) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`${h.name}: no ${what} after ${timeoutMs} ms; log:\n${h.tail()}`);
    }
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------
// Azurite.

function randomKey() {
  return randomBytes(64).toString("base64");
}

function connectionString(account, key, endpoint) {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${account};AccountKey=${key};` +
    `TableEndpoint=${endpoint};`
  );
}

// One GET over https trusting ca; resolves on any answer.
function httpsAnswer(url, ca) {
  return new Promise((ok, fail) => {
    const req = httpsRequest(url, { ca, timeout: 2000 }, (res) => {
      res.resume();
      res.on("end", () => ok(true));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", fail);
    req.end();
  });
}

// Starts the table service with three accounts: the development account
// (direct target), and one account each for the proxy's old and new tables.
// With tls ({cert, key, ca}: PEM file paths), it serves https with that
// certificate (trusted through ca); with oauth, it also takes bearer tokens
// (Azurite's "--oauth basic": issuer, audience and lifetime are checked,
// not the signature).
export async function startAzurite({ tls, oauth = false } = {}) {
  const accounts = {
    [DEV_ACCOUNT]: DEV_KEY,
    mtold: randomKey(),
    mtnew: randomKey(),
  };
  const main = join(e2eDir, "node_modules/azurite/dist/src/table/main.js");
  if (!existsSync(main)) {
    throw new Error(`azurite is not installed; run 'npm ci' in ${e2eDir}`);
  }
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    // Azurite 3.35 refuses --location together with --inMemoryPersistence;
    // it runs in a scratch directory instead, so that nothing it might
    // write lands in the tree.
    const location = mkdtempSync(join(logDir(), "azurite-"));
    const env = {
      ...process.env,
      AZURITE_ACCOUNTS: Object.entries(accounts)
        .map(([a, k]) => `${a}:${k}`)
        .join(";"),
    };
    const h = startGuarded(
      `azurite-${port}`,
      process.execPath,
      [
        main,
        "--tableHost", "127.0.0.1",
        "--tablePort", String(port),
        "--inMemoryPersistence",
        "--disableTelemetry",
        "--silent",
        ...(tls ? ["--cert", tls.cert, "--key", tls.key] : []),
        ...(oauth ? ["--oauth", "basic"] : []),
      ],
      env,
      location,
    );
    const base = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
    const ca = tls ? readFileSync(tls.ca) : null;
    try {
      // Any HTTP answer (an unsigned request gets 403) means it is serving.
      await waitUntil(h, "HTTP answer", async () => {
        if (tls) return httpsAnswer(`${base}/${DEV_ACCOUNT}/Tables`, ca);
        const r = await fetch(`${base}/${DEV_ACCOUNT}/Tables`, {
          signal: AbortSignal.timeout(2000),
        });
        await r.arrayBuffer();
        return true;
      });
    } catch (e) {
      lastErr = e;
      await h.stop();
      continue; // most likely the port was taken meanwhile
    }
    return {
      process: h,
      port,
      accounts,
      endpoint: (account) => `${base}/${account}`,
      connectionString: (account) =>
        connectionString(account, accounts[account], `${base}/${account}`),
    };
  }
  throw lastErr;
}

// ---------------------------------------------------------------------------
// The proxy.

export function proxyAvailable() {
  return existsSync(proxyBin);
}

// Starts the proxy over Azurite (or memory) backends; see MTABLE_E2E_BACKEND.
// The result's fallback is null, or why Azure backends were not used.
export async function startProxy(azurite) {
  if (backendMode !== "auto") return startProxyWith(azurite, backendMode);
  try {
    return await startProxyWith(azurite, "azurite");
  } catch (e) {
    const px = await startProxyWith(azurite, "memory");
    px.fallback = e.message.split("\n").slice(0, 6).join("\n");
    return px;
  }
}

// Starts the proxy on the given --old and --new specs (connection strings,
// e.g. to a fault-injecting proxy in front of Azurite), with no fallback to
// memory backends.
export async function startProxyOn({ old: oldSpec, new: newSpec }) {
  const specs = { mtold: oldSpec, mtnew: newSpec };
  return startProxyWith({ connectionString: (account) => specs[account] }, "azurite");
}

// A free port can be taken between the probe and the proxy's bind, so an
// early exit is retried on new ports before it counts.
async function startProxyWith(azurite, backend) {
  let err;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startProxyOnce(azurite, backend);
    } catch (e) {
      err = e;
      if (!/ exited \(/.test(e.message)) break; // hung, not refused: no retry
    }
  }
  throw err;
}

async function startProxyOnce(azurite, backend) {
  const port = await freePort();
  const adminPort = await freePort();
  const args = [
    "--listen", `127.0.0.1:${port}`,
    "--admin-listen", `127.0.0.1:${adminPort}`,
  ];
  if (backend === "azurite") {
    args.push("--old", azurite.connectionString("mtold"));
    args.push("--new", azurite.connectionString("mtnew"));
  }
  // The proxy reads its settings from MTABLE_* variables too; the test's own
  // environment (an admin token, say) must not leak into it.
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("MTABLE_")) env[k] = v;
  }
  const h = startGuarded(`proxy-${port}-${backend}`, proxyBin, args, env);
  const admin = `http://127.0.0.1:${adminPort}`;
  try {
    await waitUntil(h, "200 from /healthz", async () => {
      const r = await fetch(`${admin}/healthz`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      return r.status === 200;
    });
  } catch (e) {
    await h.stop();
    throw e;
  }
  return {
    process: h,
    port,
    adminUrl: admin,
    endpoint: `http://127.0.0.1:${port}/${DEV_ACCOUNT}`,
    backend,
    fallback: null,
  };
}

// Starts mtable-proxy with exactly these flags (ports included) and waits
// for /healthz; with ready, also for /readyz (a proxy of a remote authority
// is ready once it holds a lease). The result has the same shape as
// startProxy's; restart() starts the same command again (after a kill).
// With adminCa (PEM text), the admin listener is expected to speak HTTPS
// with a certificate that chains to it.
export async function startMtable({ name, port, adminPort, args, ready = true, timeoutMs = START_TIMEOUT_MS, adminCa = null }) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("MTABLE_")) env[k] = v;
  }
  const all = ["--listen", `127.0.0.1:${port}`, "--admin-listen", `127.0.0.1:${adminPort}`, ...args];
  const adminUrl = `${adminCa ? "https" : "http"}://127.0.0.1:${adminPort}`;
  const px = {
    port,
    adminPort,
    adminUrl,
    endpoint: `http://127.0.0.1:${port}/${DEV_ACCOUNT}`,
    backend: "azurite",
    fallback: null,
  };
  px.start = async () => {
    px.process = startGuarded(`${name}-${port}`, proxyBin, all, env);
    const path = ready ? "/readyz" : "/healthz";
    await waitUntil(px.process, `200 from ${path}`, async () => {
      if (adminCa) return (await httpsGet(`${adminUrl}${path}`, adminCa)).status === 200;
      const r = await fetch(`${adminUrl}${path}`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      return r.status === 200;
    }, timeoutMs);
    return px;
  };
  // kill -9 of the proxy itself (not its guard), and wait until it is gone.
  px.kill9 = async () => {
    process.kill(px.process.pid, "SIGKILL");
    await px.process.exited;
  };
  return px.start();
}

// startMtable on free ports: a port can be taken between the probe and the
// proxy's bind, so a start that failed for that is tried again on new ports.
export async function startMtableOnFreePorts({ name, args, ready = true, adminCa = null }) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startMtable({ name, port: await freePort(), adminPort: await freePort(), args, ready, adminCa });
    } catch (e) {
      if (attempt >= 2 || !/the port is in use/.test(e.message)) throw e;
    }
  }
}

// GET over HTTPS verified against ca (PEM text); resolves {status, text}.
export function httpsGet(url, ca, headers = {}) {
  return new Promise((ok, fail) => {
    const req = https.get(url, { ca, headers, timeout: 5000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => ok({ status: res.statusCode, text }));
    });
    req.on("timeout", () => req.destroy(new Error(`${url}: no answer`)));
    req.on("error", fail);
  });
}

// Stops the proxy and returns how it ended, with any sanitizer report
// found in its output (a clean run has report === null).
export async function stopProxy(px) {
  const done = await px.process.stop();
  const text = px.process.tail(1e6);
  const m = text.match(
    /(ERROR: (Address|Leak|Thread|Memory)Sanitizer[^\n]*|[^\n]*runtime error:[^\n]*)/,
  );
  return { ...done, report: m ? m[0] : null, log: text };
}

// ---------------------------------------------------------------------------
// Admin endpoint.

export async function admin(px, method, path, body) {
  const r = await fetch(px.adminUrl + path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60000),
  });
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON; keep the text for the message
  }
  return { status: r.status, json, text };
}

export async function proxyStatus(px) {
  const r = await admin(px, "GET", "/admin/v1/status");
  if (r.status !== 200 || !r.json) {
    throw new Error(`GET /admin/v1/status: ${r.status} ${r.text}`);
  }
  return r.json;
}

export class PhaseRefused extends Error {}

export async function pushPhase(px, name) {
  const r = await admin(px, "POST", "/admin/v1/phase", { phase: name });
  if (r.status === 409) {
    throw new PhaseRefused(`POST /admin/v1/phase ${name}: 409 ${r.text}`);
  }
  if (r.status !== 200) {
    throw new Error(`POST /admin/v1/phase ${name}: ${r.status} ${r.text}`);
  }
}

// Starts the migrator and polls until it reports done. onStatus(status)
// sees every status read on the way (to note the phases passed through).
export async function migrateToEnd(px, { onStatus, timeoutMs = 180000, until } = {}) {
  const r = until
    ? await admin(px, "POST", "/admin/v1/migrate", { until })
    : await admin(px, "POST", "/admin/v1/migrate");
  if (r.status !== 202) {
    throw new Error(`POST /admin/v1/migrate: expected 202, got ${r.status} ${r.text}`);
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await proxyStatus(px);
    onStatus?.(s);
    const state = s.migration?.state;
    if (state === "done") return s;
    if (until && state === "idle" && s.phase === until) return s;
    if (state === "failed") {
      throw new Error(`migration failed: ${JSON.stringify(s.migration)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`migration not done after ${timeoutMs} ms: ${JSON.stringify(s)}`);
    }
    await sleep(50);
  }
}

// Moves the proxy forward to phase n (0..4). Phases 1 and 2 are pushed one
// step at a time; phase 4 is reached by running the migrator to the end.
// Phase 3 needs a finished copy, so the migrator runs until
// use_new_with_tombstones ({"until": ...}) and stops there.
export async function toPhase(px, n) {
  let cur = PHASES.indexOf((await proxyStatus(px)).phase);
  if (cur < 0 || n < cur) {
    throw new Error(`cannot move from phase ${cur} to phase ${n}`);
  }
  while (cur < Math.min(n, 2)) {
    cur++;
    await pushPhase(px, PHASES[cur]);
  }
  if (n === 3 && cur === 2) {
    await migrateToEnd(px, { until: PHASES[3] });
  } else if (n === 4 && cur < 4) {
    await migrateToEnd(px);
  }
  const s = await proxyStatus(px);
  if (s.phase !== PHASES[n]) {
    throw new Error(`proxy reports phase ${s.phase}, expected ${PHASES[n]}`);
  }
  return s;
}

// ---------------------------------------------------------------------------
// Targets: what a client needs to reach a table endpoint.

export function target({ name, kind, endpoint, phase = null, proxy = null }) {
  return {
    name,
    kind,
    phase,
    proxy,
    endpoint,
    accountName: DEV_ACCOUNT,
    accountKey: DEV_KEY,
    connectionString: connectionString(DEV_ACCOUNT, DEV_KEY, endpoint),
  };
}

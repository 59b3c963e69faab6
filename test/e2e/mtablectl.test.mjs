// mtablectl.test.mjs -- the mtablectl CLI (tools/mtablectl/mtablectl.c) against real
// mtable-proxy processes on their embedded memory backends, and against a
// scripted admin endpoint for the parts of the contract a proxy cannot be
// made to show on demand (rows_total, paused, failed, verify not ok,
// answers that are not the API).
//
// Every run checks the exit code (0 ok, 1 refused/failed, 2 usage,
// 3 unreachable or not the API, 4 unauthorized) and that an error is one
// line on stderr. stdout is a pipe here, so a waiting migrate prints plain
// log lines, never the redrawn bar.
//
// pause, resume and verify are being added to the proxy; their cases are
// skipped while POST /admin/v1/verify answers 404 and run once it exists.
//
// Environment: MTABLE_PROXY_BIN (see lib/harness.mjs), MTABLE_CTL_BIN
// (default: mtablectl beside the proxy binary or in its build tree's tools/mtablectl,
// else <repo>/build/tools/mtablectl/mtablectl).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  ctlBin, DEV_ACCOUNT, DEV_KEY, freePort, proxyAvailable, proxyBin, repoRoot, sleep,
} from "./lib/harness.mjs";
import { all, strip, tableClient, tableName } from "./lib/clients.mjs";

// Beside the proxy under test or in its build tree (so a sanitizer build tests
// its own CLI), else build/.
const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, unauthorized: 4 };
const COMMANDS = ["status", "phase", "migrate", "pause", "resume", "verify"];
const FLAGS = ["--admin", "--token", "--json", "--until", "--no-wait", "--help", "--version"];

const ctlSkip = existsSync(ctlBin) ? false : `${ctlBin} not built (set MTABLE_CTL_BIN)`;
const proxySkip = ctlSkip || (proxyAvailable() ? false : `${proxyBin} not built (set MTABLE_PROXY_BIN)`);

// ---------------------------------------------------------------------------
// Running the CLI.

// The test's own MTABLE_* settings must not reach the CLI or the proxy.
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("MTABLE_")) env[k] = v;
  return { ...env, ...extra };
}

// Runs mtablectl; resolves {code, stdout, stderr}. stdout is a pipe.
function ctl(args, { env = {}, timeoutMs = 120000 } = {}) {
  return new Promise((ok, fail) => {
    const child = spawn(ctlBin, args, { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", fail);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      ok({ code: signal ? `signal ${signal}` : code, stdout, stderr });
    });
  });
}

function show(r) {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

function assertExit(r, code) {
  assert.equal(r.code, code, show(r));
}

// An error is one line on stderr, starting with the tool's name.
function assertOneLineError(r, ...patterns) {
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `expected one line on stderr:\n${show(r)}`);
  assert.match(lines[0], /^mtablectl: /, show(r));
  for (const p of patterns) assert.match(lines[0], p, show(r));
}

function lastLine(text) {
  return text.trimEnd().split("\n").at(-1);
}

// ---------------------------------------------------------------------------
// Proxies: each on free ports with memory backends, under lib/guard.mjs
// (which stops it by PID when this process ends), with extra flags such as
// --admin-token that the harness's startProxy does not pass.

let logRoot = null;
const proxies = new Set();

async function startCtlProxy(extra = []) {
  logRoot ??= mkdtempSync(join(tmpdir(), "mtablectl-e2e-"));
  const port = await freePort();
  const adminPort = await freePort();
  const args = ["--listen", `127.0.0.1:${port}`, "--admin-listen", `127.0.0.1:${adminPort}`, ...extra];
  const log = join(logRoot, `proxy-${port}.log`);
  const fd = openSync(log, "a");
  const guard = spawn(process.execPath, [join(repoRoot, "test/e2e/lib/guard.mjs"), proxyBin, ...args], {
    stdio: ["ignore", fd, fd, "ipc"],
    env: cleanEnv(),
  });
  closeSync(fd);
  guard.unref();
  guard.channel?.unref();
  const exited = new Promise((ok) => guard.on("exit", (code, signal) => ok({ code, signal })));
  const px = { adminUrl: `http://127.0.0.1:${adminPort}`, endpoint: `http://127.0.0.1:${port}/${DEV_ACCOUNT}`, guard, exited, log };
  proxies.add(px);
  await waitHealthy(px);
  return px;
}

async function waitHealthy(px) {
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const r = await fetch(`${px.adminUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    if (px.guard.exitCode !== null || Date.now() > deadline) {
      throw new Error(`proxy did not start; log:\n${readFileSync(px.log, "utf8")}`);
    }
    await sleep(100);
  }
}

async function stopCtlProxies() {
  // The guards are unref'd; this timer keeps the loop alive while they end.
  const keepAlive = setInterval(() => {}, 1000);
  await Promise.all(
    [...proxies].map(async (px) => {
      try {
        process.kill(px.guard.pid, "SIGTERM");
      } catch {
        // already gone
      }
      await px.exited;
      proxies.delete(px);
    }),
  );
  clearInterval(keepAlive);
  if (logRoot) rmSync(logRoot, { recursive: true, force: true });
  logRoot = null;
}

function clientTarget(px) {
  return { endpoint: px.endpoint, accountName: DEV_ACCOUNT, accountKey: DEV_KEY };
}

// Writes partitions x perPartition rows through @azure/data-tables; returns
// them sorted as a read gives them back.
async function seedRows(px, table, partitions, perPartition) {
  const client = tableClient(clientTarget(px), table);
  await client.createTable();
  const rows = [];
  for (let p = 0; p < partitions; p++) {
    const batch = [];
    for (let i = 0; i < perPartition; i++) {
      const e = { partitionKey: `p${p}`, rowKey: `r${String(i).padStart(4, "0")}`, n: i, s: `v${p}-${i}` };
      rows.push(e);
      batch.push(["create", e]);
    }
    for (let i = 0; i < batch.length; i += 100) await client.submitTransaction(batch.slice(i, i + 100));
  }
  return rows;
}

async function readRows(px, table) {
  return (await all(tableClient(clientTarget(px), table).listEntities())).map(strip);
}

async function adminPost(px, path) {
  const r = await fetch(px.adminUrl + path, { method: "POST", signal: AbortSignal.timeout(30000) });
  await r.arrayBuffer();
  return r.status;
}

// pause, resume and verify exist once POST /admin/v1/verify stops answering
// 404. Probed once, on a proxy of its own, before the cases are declared.
async function probeFeatures() {
  if (proxySkip) return proxySkip;
  try {
    const px = await startCtlProxy();
    const status = await adminPost(px, "/admin/v1/verify");
    return status === 404 ? "the proxy has no /admin/v1/verify yet (pause, resume, verify)" : false;
  } catch (e) {
    return `feature probe failed: ${e.message.split("\n")[0]}`;
  } finally {
    await stopCtlProxies();
  }
}
const newApiSkip = await probeFeatures();

// ---------------------------------------------------------------------------
// The command line itself: no server needed.

describe("mtablectl: command line", { skip: ctlSkip }, () => {
  test("--help lists every command, flag, variable and exit code", async () => {
    const r = await ctl(["--help"]);
    assertExit(r, EXIT.ok);
    assert.equal(r.stderr, "");
    for (const word of [...COMMANDS, ...FLAGS, "MTABLE_ADMIN_URL", "MTABLE_ADMIN_TOKEN"]) {
      assert.ok(r.stdout.includes(word), `--help does not mention ${word}`);
    }
    for (const code of [0, 1, 2, 3, 4]) {
      assert.match(r.stdout, new RegExp(`^\\s+${code}\\s+\\S`, "m"), `--help does not explain exit code ${code}`);
    }
    assert.equal((await ctl(["help"])).stdout, r.stdout);
    assert.equal((await ctl(["status", "-h"])).stdout, r.stdout);
  });

  test("--version prints the meson project version", async () => {
    const version = readFileSync(join(repoRoot, "meson.build"), "utf8").match(/version\s*:\s*'([^']+)'/)[1];
    const r = await ctl(["--version"]);
    assertExit(r, EXIT.ok);
    assert.equal(r.stdout, `mtablectl ${version}\n`);
  });

  const usage = [
    [[], /no command/],
    [["frobnicate"], /unknown command 'frobnicate'/],
    [["--frob", "status"], /unknown option '--frob'/],
    [["status", "extra"], /unexpected argument 'extra'/],
    [["phase"], /phase needs an argument/],
    [["phase", "prefer_newest"], /unknown phase 'prefer_newest'.*prefer_old/],
    [["migrate", "--until", "nowhere"], /--until: unknown phase 'nowhere'/],
    [["migrate", "--until"], /--until needs a value/],
    [["status", "--until", "prefer_new"], /--until applies only to migrate/],
    [["verify", "--no-wait"], /--no-wait applies only to migrate and resume/],
    [["status", "--admin"], /--admin needs a value/],
    [["--admin", "ftp://127.0.0.1:1", "status"], /invalid admin URL 'ftp:\/\/127\.0\.0\.1:1'/],
  ];
  for (const [args, pattern] of usage) {
    test(`usage error: mtablectl ${args.join(" ") || "(nothing)"} exits 2`, async () => {
      const r = await ctl(args);
      assertExit(r, EXIT.usage);
      assert.equal(r.stdout, "");
      assertOneLineError(r, pattern);
    });
  }

  test("an unreachable endpoint exits 3 and says what to do", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await ctl(["--admin", url, "status"]);
    assertExit(r, EXIT.unreachable);
    assertOneLineError(r, new RegExp(`cannot reach ${url} \\(connection refused\\)`), /--admin or MTABLE_ADMIN_URL/);
    // The same from MTABLE_ADMIN_URL, a trailing slash tolerated.
    const e = await ctl(["status"], { env: { MTABLE_ADMIN_URL: `${url}/` } });
    assertExit(e, EXIT.unreachable);
    assertOneLineError(e, new RegExp(`cannot reach ${url} `));
  });

  test("without --admin or MTABLE_ADMIN_URL it uses http://127.0.0.1:10090", async () => {
    const r = await ctl(["status"]);
    if (r.code === EXIT.unreachable) assertOneLineError(r, /cannot reach http:\/\/127\.0\.0\.1:10090 /);
    else assert.ok([EXIT.ok, EXIT.unauthorized].includes(r.code), show(r)); // something serves there
  });
});

// ---------------------------------------------------------------------------
// A real proxy.

describe("mtablectl: against mtable-proxy", { skip: proxySkip }, () => {
  let px = null;
  const table = tableName("ctl");
  let rows = null;
  before(async () => {
    px = await startCtlProxy();
    // Written in phase 0, so into the old table: the migrator has them to copy.
    rows = await seedRows(px, table, 3, 150);
  });
  after(stopCtlProxies);

  test("status prints a summary", async () => {
    const r = await ctl(["--admin", px.adminUrl, "status"]);
    assertExit(r, EXIT.ok);
    assert.equal(r.stderr, "");
    assert.match(r.stdout, /^phase\s+use_old_hide_metadata$/m);
    assert.match(r.stdout, /^version\s+1\b.*settled/m);
    assert.match(r.stdout, /^migration\s+idle\b/m);
    assert.match(r.stdout, /^proxy\s+\S+:.*version 1/m);
  });

  test("status --json prints the endpoint's JSON (MTABLE_ADMIN_URL)", async () => {
    const r = await ctl(["status", "--json"], { env: { MTABLE_ADMIN_URL: px.adminUrl } });
    assertExit(r, EXIT.ok);
    const s = JSON.parse(r.stdout);
    assert.equal(s.phase, "use_old_hide_metadata");
    assert.equal(s.migration.state, "idle");
    assert.ok(Array.isArray(s.proxies) && s.proxies.length >= 1);
  });

  test("the table endpoint is not the admin API: exit 3", async () => {
    const r = await ctl(["--admin", px.endpoint.replace(`/${DEV_ACCOUNT}`, ""), "status"]);
    assertExit(r, EXIT.unreachable);
    assertOneLineError(r, /answered HTTP \d+.*not the mtable admin API/, /--admin-listen/);
  });

  test("phase prefer_old succeeds (exit 0)", async () => {
    const r = await ctl(["--admin", px.adminUrl, "phase", "prefer_old"]);
    assertExit(r, EXIT.ok);
    // Version 2 was the push's first step: phase 0 again with short leases,
    // which the long leases of a phase at rest must become before phase 1.
    assert.match(r.stdout, /^phase prefer_old \(config version 3\): every live proxy has acknowledged$/m);
    const s = JSON.parse((await ctl(["--admin", px.adminUrl, "--json", "status"])).stdout);
    assert.equal(s.phase, "prefer_old");
  });

  test("phase --json prints the status the endpoint answered", async () => {
    const r = await ctl(["--json", "--admin", px.adminUrl, "phase", "prefer_old"]);
    assertExit(r, EXIT.ok);
    assert.equal(JSON.parse(r.stdout).phase, "prefer_old");
  });

  test("a skipped phase is refused: exit 1 with the server's reason", async () => {
    const r = await ctl(["--admin", px.adminUrl, "phase", "use_new_hide_metadata"]);
    assertExit(r, EXIT.failed);
    assert.equal(r.stdout, "");
    assertOneLineError(r, new RegExp(`${px.adminUrl}/admin/v1/phase refused: 409 PhaseTransitionNotAllowed`), /one step at a time/);
  });

  test("use_new_with_tombstones before a copy is refused: exit 1", async () => {
    assertExit(await ctl(["--admin", px.adminUrl, "phase", "prefer_new"]), EXIT.ok);
    const r = await ctl(["--admin", px.adminUrl, "phase", "use_new_with_tombstones"]);
    assertExit(r, EXIT.failed);
    assertOneLineError(r, /409 PhaseTransitionNotAllowed/, /copy/);
  });

  test("migrate waits, printing plain lines, until done; the data reads back", async () => {
    const r = await ctl(["--admin", px.adminUrl, "migrate"]);
    assertExit(r, EXIT.ok);
    assert.equal(r.stderr, "");
    assert.ok(!r.stdout.includes("\r"), "a pipe must not get the redrawn bar");
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines[0], `migration started on ${px.adminUrl}`);
    for (const l of lines.slice(1)) assert.match(l, /^\d\d:\d\d:\d\d migration [a-z]+, phase [a-z_]+/);
    assert.match(lastLine(r.stdout), /migration done, phase use_new_hide_metadata, 450(\/450)? rows copied/);
    assert.deepEqual(await readRows(px, table), rows);
  });

  test("status after the migration", async () => {
    const r = await ctl(["--admin", px.adminUrl, "status"]);
    assertExit(r, EXIT.ok);
    assert.match(r.stdout, /^phase\s+use_new_hide_metadata$/m);
    assert.match(r.stdout, /^migration\s+done, 450\b.*copy done/m);
  });

  test("migrate --no-wait returns once started", async () => {
    const r = await ctl(["--admin", px.adminUrl, "migrate", "--no-wait"]);
    assertExit(r, EXIT.ok);
    assert.equal(r.stdout, `migration started on ${px.adminUrl}\n`);
  });
});

describe("mtablectl: admin token and migrate --until", { skip: proxySkip }, () => {
  const token = "s3cret-token";
  let px = null;
  before(async () => {
    px = await startCtlProxy(["--admin-token", token]);
  });
  after(stopCtlProxies);

  test("no token: exit 4", async () => {
    const r = await ctl(["--admin", px.adminUrl, "status"]);
    assertExit(r, EXIT.unauthorized);
    assertOneLineError(r, new RegExp(`${px.adminUrl} needs an admin token \\(401\\)`), /--token or set MTABLE_ADMIN_TOKEN/);
  });

  test("a wrong token: exit 4, and the token is not printed", async () => {
    const r = await ctl(["--admin", px.adminUrl, "--token", "wrong-token", "status"]);
    assertExit(r, EXIT.unauthorized);
    assertOneLineError(r, /refused the admin token \(401\)/);
    assert.ok(!r.stderr.includes("wrong-token"));
  });

  test("the right token works, from --token and from MTABLE_ADMIN_TOKEN", async () => {
    assertExit(await ctl(["--admin", px.adminUrl, "--token", token, "status"]), EXIT.ok);
    const r = await ctl(["status", "--json"], { env: { MTABLE_ADMIN_URL: px.adminUrl, MTABLE_ADMIN_TOKEN: token } });
    assertExit(r, EXIT.ok);
    assert.equal(JSON.parse(r.stdout).phase, "use_old_hide_metadata");
    // A flag wins over the variable.
    const w = await ctl(["--token", "wrong", "status"], { env: { MTABLE_ADMIN_URL: px.adminUrl, MTABLE_ADMIN_TOKEN: token } });
    assertExit(w, EXIT.unauthorized);
  });

  test("migrate --until prefer_new stops there (exit 0)", async () => {
    const env = { MTABLE_ADMIN_URL: px.adminUrl, MTABLE_ADMIN_TOKEN: token };
    const table = tableName("ctluntil");
    const rows = await seedRows(px, table, 2, 20);
    const r = await ctl(["migrate", "--until", "prefer_new"], { env });
    assertExit(r, EXIT.ok);
    assert.match(lastLine(r.stdout), /migration idle, phase prefer_new, 40(\/40)? rows copied.*copy done/);
    assert.deepEqual(await readRows(px, table), rows);
  });
});

// ---------------------------------------------------------------------------
// pause, resume, verify on a real proxy: skipped until the proxy has them.

describe("mtablectl: pause, resume, verify", { skip: newApiSkip }, () => {
  let px = null;
  const table = tableName("ctlpause");
  let rows = null;
  before(async () => {
    // A slow copy (--copy-rate) leaves time to pause it.
    px = await startCtlProxy(["--copy-rate", "100", "--copy-parallel", "1"]);
    rows = await seedRows(px, table, 4, 150);
  });
  after(stopCtlProxies);

  test("pause with nothing running is refused: exit 1", async () => {
    const r = await ctl(["--admin", px.adminUrl, "pause"]);
    assertExit(r, EXIT.failed);
    assertOneLineError(r, /migrate\/pause refused: 409/);
  });

  test("a waiting migrate ends with exit 1 when the migration is paused", async () => {
    const waiting = ctl(["--admin", px.adminUrl, "migrate"]);
    const deadline = Date.now() + 30000;
    for (;;) {
      const s = JSON.parse((await ctl(["--admin", px.adminUrl, "--json", "status"])).stdout);
      assert.notEqual(s.migration.state, "done", "the migration finished before it could be paused; is --copy-rate honoured?");
      if (s.migration.state === "copying" && s.migration.rows_copied > 0) break;
      assert.ok(Date.now() < deadline, `no copy under way: ${JSON.stringify(s)}`);
      await sleep(100);
    }
    const p = await ctl(["--admin", px.adminUrl, "pause"]);
    assertExit(p, EXIT.ok);
    assert.match(p.stdout, /^migration pausing on /);
    const r = await waiting;
    assertExit(r, EXIT.failed);
    assert.match(lastLine(r.stdout), /migration paused, phase prefer_new/);
    assertOneLineError(r, /paused in phase prefer_new/, /mtablectl resume/);
  });

  test("resume while paused waits until done (exit 0); the data reads back", async () => {
    const r = await ctl(["--admin", px.adminUrl, "resume"]);
    assertExit(r, EXIT.ok);
    assert.equal(r.stdout.split("\n")[0], `migration resumed on ${px.adminUrl}`);
    assert.match(lastLine(r.stdout), /migration done, phase use_new_hide_metadata/);
    assert.deepEqual(await readRows(px, table), rows);
  });

  test("verify after the migration: ok, exit 0", async () => {
    const r = await ctl(["--admin", px.adminUrl, "verify"]);
    assertExit(r, EXIT.ok);
    assert.match(r.stdout, /^verify\s+ok$/m);
    assert.match(r.stdout, /^summary\s+\S/m);
    const j = await ctl(["--admin", px.adminUrl, "--json", "verify"]);
    assertExit(j, EXIT.ok);
    const v = JSON.parse(j.stdout);
    assert.equal(v.ok, true);
    assert.equal(v.missing, 0);
  });
});

// ---------------------------------------------------------------------------
// A scripted admin endpoint: the whole contract, on demand.

// Serves routes[`${method} ${path}`], a function of the request count
// returning [status, body, contentType?]; anything else is a 404.
async function startScripted(routes) {
  const counts = {};
  const srv = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const key = `${req.method} ${req.url}`;
      counts[key] = (counts[key] ?? 0) + 1;
      const route = routes[key];
      const [status, body, type = "application/json"] = route
        ? route(counts[key], req)
        : [404, { error: { code: "NotFound", message: "No such admin resource." } }];
      res.writeHead(status, { "content-type": type });
      res.end(typeof body === "string" ? body : JSON.stringify(body));
    });
  });
  await new Promise((ok) => srv.listen(0, "127.0.0.1", ok));
  return { url: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((ok) => srv.close(ok)) };
}

function fullStatus(state, copied, extra = {}) {
  return {
    phase: "prefer_new", config_version: 3, settled: true, role: "authority",
    migration: {
      state, rows_copied: copied, rows_total: 1000, partitions_done: Math.floor(copied / 100),
      partitions_total: 10, rows_per_second: 250, eta_seconds: (1000 - copied) / 250,
      copy_done: copied === 1000, copy_verified: false, ...extra,
    },
    proxies: [
      { id: "a:10002", config_version: 3, lease_left_ms: 8500, live: true },
      { id: "b:10002", config_version: 2, lease_left_ms: 0, live: false },
    ],
  };
}

describe("mtablectl: the full admin contract (scripted endpoint)", { skip: ctlSkip }, () => {
  let srv = null;
  after(() => srv?.close());
  const serve = async (routes) => {
    await srv?.close();
    srv = await startScripted(routes);
    return srv.url;
  };

  test("status shows counts, percentage, role and each proxy's lease", async () => {
    const url = await serve({ "GET /admin/v1/status": () => [200, fullStatus("copying", 400)] });
    const r = await ctl(["--admin", url, "status"]);
    assertExit(r, EXIT.ok);
    assert.match(r.stdout, /^role\s+authority$/m);
    assert.match(r.stdout, /^migration\s+copying, 400\/1000 rows copied \(40%\), 4\/10 partitions, 250 rows\/s, eta 2s$/m);
    assert.match(r.stdout, /^proxy\s+a:10002: version 3, lease 8\.5 s left, live$/m);
    assert.match(r.stdout, /^proxy\s+b:10002: version 2, lease 0\.0 s left, not live$/m);
  });

  test("migrate logs each state change and ends done", async () => {
    const states = [["pushing", 0], ["copying", 300], ["copying", 700], ["cleaning", 1000], ["done", 1000]];
    const url = await serve({
      "POST /admin/v1/migrate": () => [202, { state: "started" }],
      "GET /admin/v1/status": (n) => [200, fullStatus(...states[Math.min(n, states.length) - 1])],
    });
    const r = await ctl(["--admin", url, "migrate"]);
    assertExit(r, EXIT.ok);
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(lines[1], /migration pushing, phase prefer_new, 0\/1000 rows copied \(0%\)/);
    assert.match(lines[2], /migration copying, phase prefer_new, 300\/1000 rows copied \(30%\), 3\/10 partitions, 250 rows\/s, eta 3s/);
    assert.match(lines.at(-1), /migration done, .*1000\/1000 rows copied \(100%\).*copy done/);
    assert.equal(lines.filter((l) => / copying, /.test(l)).length, 1, "one line per state change within 5 s");
  });

  test("a failed migration: exit 1 with the server's error", async () => {
    const url = await serve({
      "POST /admin/v1/migrate": () => [202, { state: "started" }],
      "GET /admin/v1/status": (n) =>
        [200, n < 2 ? fullStatus("copying", 100) : fullStatus("failed", 200, { error: "503 ServerBusy: the backend is busy" })],
    });
    const r = await ctl(["--admin", url, "migrate"]);
    assertExit(r, EXIT.failed);
    assert.match(lastLine(r.stdout), /migration failed/);
    assertOneLineError(r, /the migration failed on .*503 ServerBusy: the backend is busy/, /mtablectl resume/);
  });

  test("resume --no-wait, pause, and 409 MigrationRunning", async () => {
    const url = await serve({
      "POST /admin/v1/migrate/resume": () => [202, { state: "started" }],
      "POST /admin/v1/migrate/pause": () => [202, { state: "pausing" }],
      "POST /admin/v1/migrate": () => [409, { error: { code: "MigrationRunning", message: "A migration is already running." } }],
    });
    const r = await ctl(["--admin", url, "resume", "--no-wait"]);
    assertExit(r, EXIT.ok);
    assert.equal(r.stdout, `migration resumed on ${url}\n`);
    const p = await ctl(["--admin", url, "--json", "pause"]);
    assertExit(p, EXIT.ok);
    assert.deepEqual(JSON.parse(p.stdout), { state: "pausing" });
    const m = await ctl(["--admin", url, "migrate"]);
    assertExit(m, EXIT.failed);
    assertOneLineError(m, /409 MigrationRunning: A migration is already running\./, /mtablectl pause/);
  });

  test("verify: ok exits 0, not ok exits 1", async () => {
    const report = (ok) => ({
      ok, summary: ok ? "all 10 rows present" : "2 rows missing from the new table", old_rows: 10, new_rows: ok ? 10 : 8,
      missing: ok ? 0 : 2, tombstones: 0, protocol_rows: 0, reserved_props: 0, unswitched: 0,
      first_missing: ok ? null : { PartitionKey: "p1", RowKey: "r7" },
    });
    let ok = true;
    const url = await serve({ "POST /admin/v1/verify": () => [200, report(ok)] });
    const good = await ctl(["--admin", url, "verify"]);
    assertExit(good, EXIT.ok);
    assert.match(good.stdout, /^summary\s+all 10 rows present$/m);
    assert.match(good.stdout, /^counts\s+old rows 10, new rows 10, missing 0/m);
    ok = false;
    const bad = await ctl(["--admin", url, "verify"]);
    assertExit(bad, EXIT.failed);
    assert.match(bad.stdout, /^verify\s+NOT OK$/m);
    assert.match(bad.stdout, /first missing \{"PartitionKey":"p1","RowKey":"r7"\}/);
    assertOneLineError(bad, /do not match yet: 2 rows missing/);
  });

  test("answers that are not the API: exit 3; 401 and API 403: exit 4", async () => {
    const url = await serve({
      "GET /admin/v1/status": () => [200, "<html>hello</html>", "text/html"],
      "POST /admin/v1/verify": () => [403, "<html>forbidden</html>", "text/html"],
      "POST /admin/v1/migrate/pause": () => [403, { error: { code: "Forbidden", message: "no" } }],
      "POST /admin/v1/migrate/resume": () => [401, ""],
      "POST /admin/v1/migrate": () => [202, "", "text/plain"],
    });
    const html = await ctl(["--admin", url, "status"]);
    assertExit(html, EXIT.unreachable);
    assertOneLineError(html, /answered HTTP 200 \(text\/html\), not the mtable admin API/);
    assertExit(await ctl(["--admin", url, "verify"]), EXIT.unreachable);
    assertExit(await ctl(["--admin", url, "pause"]), EXIT.unauthorized);
    assertExit(await ctl(["--admin", url, "resume"]), EXIT.unauthorized);
    assertExit(await ctl(["--admin", url, "migrate", "--no-wait"]), EXIT.unreachable);
    const missing = await ctl(["--admin", url, "phase", "prefer_old"]);
    assertExit(missing, EXIT.failed); // 404 with the API's error body
    assertOneLineError(missing, /404 NotFound/, /upgrade/);
  });
});

// procs.mjs -- the servers under measurement and what /proc says about them.
//
// Azurite (table service only, in memory, no telemetry) and mtable-proxy are
// started on free loopback ports, each as a direct child whose PID is the
// server itself (Azurite runs under this node binary, not through a shell or
// npx), so CPU and RSS read from /proc/<pid> are the server's own, and each
// is stopped by that PID: SIGTERM, then SIGKILL if it lingers. Every child is
// also stopped when this process exits, however it exits.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, openSync, closeSync, readFileSync } from "node:fs";
import http from "node:http";
import { createServer } from "node:net";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const benchDir = dirname(here);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Children, and stopping them by PID.

const children = new Map(); // pid -> ChildProcess

function stopAllSync() {
  for (const pid of children.keys()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  children.clear();
}

process.on("exit", stopAllSync);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    stopAllSync();
    process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1));
  });
}

export async function stopPid(pid, graceMs = 5000) {
  const child = children.get(pid);
  if (!child) return;
  const exited = new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once("exit", r);
  });
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    /* already gone */
  }
  const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
  if (timedOut) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
    await exited;
  }
  children.delete(pid);
}

function launch(cmd, args, logPath, cwd) {
  const fd = openSync(logPath, "a");
  const child = spawn(cmd, args, { cwd, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  children.set(child.pid, child);
  child.once("exit", (code, signal) => {
    child.exitInfo = { code, signal };
  });
  return child;
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

// Resolves with the status of GET url, or null on a transport error.
function probe(port, path) {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(null));
  });
}

async function waitUp(child, port, path, ready, logPath, what, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitInfo) {
      throw new Error(
        `${what} exited during start-up (${JSON.stringify(child.exitInfo)}); log ${logPath}:\n` +
          tail(logPath),
      );
    }
    const status = await probe(port, path);
    if (status !== null && ready(status)) return;
    await sleep(100);
  }
  throw new Error(`${what} did not come up within ${timeoutMs} ms; log ${logPath}:\n${tail(logPath)}`);
}

function tail(path, lines = 20) {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

// ---------------------------------------------------------------------------
// The two servers.

export function azuriteVersion() {
  const require = createRequire(join(benchDir, "package.json"));
  return require("azurite/package.json").version;
}

// label names the log file and the target, so several Azurites (an old and
// a new account) can run side by side.
export async function startAzurite(workDir, label = "azurite") {
  const require = createRequire(join(benchDir, "package.json"));
  let main;
  try {
    main = join(dirname(require.resolve("azurite/package.json")), "dist/src/table/main.js");
  } catch {
    throw new Error("Azurite is not installed: run `npm ci` in test/bench first (see README.md)");
  }
  const port = await freePort();
  const logPath = join(workDir, `${label}.log`);
  // A long keep-alive so idle sockets survive the other target's turn; the
  // access log is off because writing it costs Azurite CPU per request.
  const child = launch(
    process.execPath,
    [
      main,
      "--tableHost", "127.0.0.1",
      "--tablePort", String(port),
      "--disableTelemetry",
      "--inMemoryPersistence",
      "--silent",
      "--tableKeepAliveTimeout", "300",
    ],
    logPath,
    workDir,
  );
  // Any HTTP answer means the listener is up (an unsigned GET is refused).
  await waitUp(child, port, "/devstoreaccount1/Tables", () => true, logPath, label);
  return { name: label, pid: child.pid, port, logPath };
}

// extraArgs: more flags, e.g. ["--old", connStr, "--new", connStr] for
// Azure backends instead of the embedded one.
export async function startProxy(bin, workDir, label, extraArgs = []) {
  if (!existsSync(bin)) throw new Error(`no proxy binary at ${bin} (build it: ninja -C build)`);
  const port = await freePort();
  const adminPort = await freePort();
  const logPath = join(workDir, `${label}.log`);
  const child = launch(
    bin,
    ["--listen", `127.0.0.1:${port}`, "--admin-listen", `127.0.0.1:${adminPort}`, ...extraArgs],
    logPath,
    workDir,
  );
  await waitUp(child, adminPort, "/healthz", (s) => s === 200, logPath, `mtable-proxy (${label})`);
  return { name: label, pid: child.pid, port, adminPort, logPath };
}

export function exitInfo(pid) {
  return children.get(pid)?.exitInfo ?? null;
}

// ---------------------------------------------------------------------------
// Admin calls (the proxy's phase changes).

export function admin(port, method, path, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        agent: false,
        headers: payload ? { "Content-Type": "application/json", "Content-Length": payload.length } : {},
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode, text, json });
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

// ---------------------------------------------------------------------------
// /proc.

let clkTck = 0;
function ticksPerSecond() {
  if (!clkTck) {
    try {
      clkTck = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

// CPU seconds (user + system) the process has used so far, or NaN.
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // f[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(f[11]) + Number(f[12])) / ticksPerSecond();
  } catch {
    return NaN;
  }
}

// { rssKb, hwmKb, threads } from /proc/<pid>/status, or null.
export function memStatus(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const num = (k) => {
      const m = s.match(new RegExp(`^${k}:\\s+(\\d+)`, "m"));
      return m ? Number(m[1]) : NaN;
    };
    return { rssKb: num("VmRSS"), hwmKb: num("VmHWM"), threads: num("Threads") };
  } catch {
    return null;
  }
}

// Jiffies the whole machine has spent busy and in total (all CPUs), from
// the first line of /proc/stat; null when unreadable. Busy includes every
// process, ours and anyone else's.
export function machineTicks() {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number); // user..steal
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - v[3] - v[4], total };
  } catch {
    return null;
  }
}

export function machine() {
  let cpu = "unknown";
  try {
    const m = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m);
    if (m) cpu = m[1].trim();
  } catch {
    /* not Linux */
  }
  let nproc = NaN;
  try {
    nproc = Number(execFileSync("nproc", { encoding: "utf8" }).trim());
  } catch {
    /* keep NaN */
  }
  return { cpu, nproc };
}

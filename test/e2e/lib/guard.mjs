// guard.mjs -- runs one command and makes sure it dies with the test.
//
//   node guard.mjs COMMAND [ARG...]
//
// The harness starts every server (Azurite, the proxy) through this guard
// over an IPC channel. When the test process ends in any way, including a
// SIGKILL from a runner's timeout, the channel closes and the guard stops
// its child by PID: first SIGTERM, then SIGKILL after a grace period. A
// SIGTERM or SIGINT sent to the guard is passed on the same way, and the
// guard exits with the child's status (128 + signal number when the child
// died of a signal), so a caller can still judge how the child ended.
//
// The child's standard output and error are the guard's own, which the
// harness points at log files. The first IPC message is {pid} of the child.

import { spawn } from "node:child_process";
import { constants } from "node:os";

const GRACE_MS = 5000;

const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  process.stderr.write("guard: usage: guard.mjs COMMAND [ARG...]\n");
  process.exit(2);
}

const child = spawn(cmd, args, { stdio: ["ignore", "inherit", "inherit"] });
let stopping = false;

function stop(reason) {
  if (stopping || child.exitCode !== null || child.signalCode !== null) return;
  stopping = true;
  if (reason) process.stderr.write(`guard: stopping pid ${child.pid}: ${reason}\n`);
  try {
    child.kill("SIGTERM");
  } catch {
    // already gone
  }
  setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) {
      process.stderr.write(`guard: pid ${child.pid} ignored SIGTERM; sending SIGKILL\n`);
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  }, GRACE_MS).unref();
}

child.on("spawn", () => {
  if (process.send) process.send({ pid: child.pid });
});
child.on("error", (err) => {
  process.stderr.write(`guard: cannot start ${cmd}: ${err.message}\n`);
  process.exit(127);
});
child.on("exit", (code, signal) => {
  if (signal) process.exit(128 + (constants.signals[signal] ?? 0));
  process.exit(code ?? 1);
});

process.on("disconnect", () => stop("test process went away"));
process.on("SIGTERM", () => stop());
process.on("SIGINT", () => stop());
if (!process.connected) stop("started without an IPC channel");

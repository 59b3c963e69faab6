// driver.mjs -- what the benchmark entry points (run.mjs, backend.mjs) share:
// running jobs with bounded concurrency, status checks, side-by-side
// measurements in alternation, progress lines, and the context of a run
// (commit, build, server logs).

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Series } from "./load.mjs";
import { admin, exitInfo } from "./procs.mjs";

// Runs the jobs (functions returning promises) n at a time; rejects with the
// first error once all have finished.
export async function pool(n, jobs) {
  let next = 0;
  const errors = [];
  async function lane() {
    while (next < jobs.length) {
      const j = jobs[next++];
      try {
        await j();
      } catch (e) {
        errors.push(e);
      }
    }
  }
  await Promise.all(Array.from({ length: n }, lane));
  if (errors.length) throw errors[0];
}

export async function expectStatus(p, want, what) {
  const r = await p;
  if (!want.includes(r.status))
    throw new Error(`${what}: HTTP ${r.status} (wanted ${want.join(" or ")}): ${r.body ?? ""}`);
  return r;
}

// Throws when one of the servers has exited, with the end of its log.
export function checkAlive(targets) {
  for (const t of targets) {
    const e = exitInfo(t.pid);
    if (e) {
      let log = "";
      try {
        log = readFileSync(t.logPath, "utf8").split("\n").slice(-30).join("\n");
      } catch {
        /* none */
      }
      throw new Error(`${t.name} (pid ${t.pid}) died: ${JSON.stringify(e)}\n${log}`);
    }
  }
}

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "-");

export function progress(label, target, m) {
  const ops = m.hist.n / (m.wallMs / 1000);
  const errs = Object.values(m.outcomes).reduce((a, b) => a + b, 0);
  process.stderr.write(
    `  ${label.padEnd(18)} ${target.name.padEnd(17)} ${fmt(ops).padStart(7)} ops/s  ` +
      `p50 ${fmt(m.hist.percentile(0.5) / 1000, 2)} ms  p99 ${fmt(m.hist.percentile(0.99) / 1000, 2)} ms  ` +
      `client ${fmt(m.clientCpu, 2)} cores  server ${fmt(m.serverCpu, 2)} cores` +
      (errs ? `  ERRORS ${errs}` : "") +
      "\n",
  );
}

// A and B in alternation, opts.rounds times each, opts.seconds each time;
// returns a Series per target. all: every server, checked after each
// measurement.
export async function sideBySide(workers, opts, op, spec, a, b, all) {
  const sa = new Series();
  const sb = new Series();
  for (let r = 0; r < opts.rounds; r++) {
    for (const [t, s, side] of [[a, sa, "a"], [b, sb, "b"]]) {
      // The tag keeps the keys inserts make apart, even when A and B are
      // one server (--azurite-only).
      const m = await workers.measure(t, op, opts.seconds * 1000, opts.lanes, spec, `${op}${r}${side}${t.name}`);
      checkAlive(all);
      progress(`${op} round ${r + 1}`, t, m);
      s.add(m);
    }
  }
  return [sa, sb];
}

// specs: op -> spec.
export async function warmUp(workers, opts, targets, specs) {
  for (const t of targets)
    for (const [op, spec] of Object.entries(specs))
      await workers.measure(t, op, opts.warmupSeconds * 1000, opts.lanes, spec, `warm${op}${t.name}`);
}

export async function pushPhase(target, phase) {
  const r = await admin(target.adminPort, "POST", "/admin/v1/phase", { phase });
  if (r.status !== 200) throw new Error(`${target.name}: push ${phase}: HTTP ${r.status} ${r.text}`);
  const s = await admin(target.adminPort, "GET", "/admin/v1/status");
  if (s.json?.phase !== phase) throw new Error(`${target.name}: phase is ${s.text} after pushing ${phase}`);
}

export function describeProxyBuild(bin) {
  const info = join(dirname(dirname(bin)), "meson-info/intro-buildoptions.json");
  if (!existsSync(info)) return "unknown build";
  try {
    const o = Object.fromEntries(JSON.parse(readFileSync(info, "utf8")).map((x) => [x.name, x.value]));
    return `meson buildtype ${o.buildtype}, b_sanitize ${o.b_sanitize}`;
  } catch {
    return "unknown build";
  }
}

export function gitCommit(repoRoot) {
  try {
    return execFileSync("git", ["-C", repoRoot, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

// Whether the tracked files match the commit (read-only), so a report says
// when it measured a build of uncommitted code.
export function treeState(repoRoot) {
  try {
    const out = execFileSync("git", ["-C", repoRoot, "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"], { encoding: "utf8" });
    const dirs = [...new Set(out.split("\n").filter(Boolean).map((l) => l.slice(3).split("/")[0]))];
    return dirs.length ? `uncommitted changes in ${dirs.join(", ")}` : "clean";
  } catch {
    return "unknown";
  }
}

// What a proxy logged beyond its start and stop lines.
export function extraLogLines(t) {
  try {
    return readFileSync(t.logPath, "utf8")
      .split("\n")
      .filter((l) => l && !/serving account|stopping|(old|new) tables at /.test(l));
  } catch {
    return [];
  }
}

#!/usr/bin/env node
// fleet.mjs -- what one configuration authority does for a large fleet.
//
// One authority (mtable-proxy, memory backends) and N simulated sidecars
// (test/e2e/lib/simfleet.mjs: the configuration protocol over one
// keep-alive connection each, long polls and acknowledgements, no tables),
// for N = 100, 1,000 and 5,000 (--sizes). For each N, in one run:
//   - the time until every sidecar holds a lease;
//   - push time of prefer_old (which first turns the long leases of phase 0
//     into short ones: two rounds across the fleet) and of prefer_new (one
//     round), and the authority's CPU time for each;
//   - the authority's resident memory with the fleet connected;
//   - a newcomer's time to its first lease alone, and beside 1,000
//     half-open connections that send half a request and then nothing.
// The simulated sidecars run in this one node process on the same machine,
// so push times include their share of the CPU; the authority's own CPU is
// reported beside them.
//
//   node test/bench/fleet.mjs [--sizes 100,1000,5000] [--half-open 1000]
//
// Nothing fails on a timing; the exit status is non-zero only when the
// benchmark could not measure.

import { readFileSync } from "node:fs";
import { freePort, startMtable, stopAll } from "../e2e/lib/harness.mjs";
import { SimSidecar, halfOpen, startSims, waitFor } from "../e2e/lib/simfleet.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const sizes = opt("--sizes", "100,1000,5000").split(",").map(Number);
const halfOpenN = Number(opt("--half-open", "1000"));

function procStat(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return {
    cpuMs: (Number(stat[11]) + Number(stat[12])) * 10,
    rssKiB: Number(/VmRSS:\s+(\d+)/.exec(status)[1]),
  };
}

async function push(base, phase) {
  const r = await fetch(`${base}/admin/v1/phase`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ phase }), signal: AbortSignal.timeout(120000),
  });
  if (r.status !== 200) throw new Error(`push ${phase}: ${r.status} ${await r.text()}`);
}

async function firstLease(base, id) {
  const s = new SimSidecar(base, id).start();
  const t0 = Date.now();
  await waitFor(`${id}'s lease`, async () => s.leased(), 30000);
  const ms = s.firstLeaseAt - t0;
  await s.stop();
  return ms;
}

async function one(n) {
  const a = await startMtable({
    name: `fleet-bench-${n}`, port: await freePort(), adminPort: await freePort(), args: ["--proxy-id", "authority"],
  });
  const pid = a.process.pid;
  const base = a.adminUrl;
  const rssIdle = procStat(pid).rssKiB;
  let t0 = Date.now();
  const sims = await startSims(base, n);
  await waitFor("every lease", async () => sims.every((s) => s.leased()), 180000);
  const leasedMs = Date.now() - t0;
  const rss = procStat(pid).rssKiB;
  const row = { n, leasedMs, rssMiB: rss / 1024, perSidecarKiB: (rss - rssIdle) / n };
  for (const phase of ["prefer_old", "prefer_new"]) {
    const c0 = procStat(pid).cpuMs;
    t0 = Date.now();
    await push(base, phase);
    row[phase] = { ms: Date.now() - t0, cpuMs: procStat(pid).cpuMs - c0 };
  }
  row.aloneMs = await firstLease(base, "newcomer-alone");
  const ho = await halfOpen(a.adminPort, halfOpenN);
  row.besideMs = await firstLease(base, "newcomer-beside");
  row.halfOpenHeld = ho.count();
  ho.close();
  row.errors = sims.reduce((k, s) => k + s.errors, 0);
  await Promise.all(sims.map((s) => s.stop()));
  await stopAll();
  return row;
}

const rows = [];
for (const n of sizes) {
  process.stderr.write(`fleet of ${n}...\n`);
  rows.push(await one(n));
}
const out = [];
out.push(`| sidecars | all leased | prefer_old push (2 rounds) | prefer_new push | authority CPU per push | authority RSS | per sidecar | first lease alone | beside ${halfOpenN} half-open | errors |`);
out.push("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  out.push(`| ${r.n} | ${r.leasedMs} ms | ${r.prefer_old.ms} ms | ${r.prefer_new.ms} ms | ` +
    `${r.prefer_old.cpuMs} / ${r.prefer_new.cpuMs} ms | ${r.rssMiB.toFixed(1)} MiB | ${r.perSidecarKiB.toFixed(1)} KiB | ` +
    `${r.aloneMs} ms | ${r.besideMs} ms (${r.halfOpenHeld} held) | ${r.errors} |`);
}
console.log(out.join("\n"));
process.exit(0);

// load.mjs -- the driver's side of load generation: a pool of worker
// processes (worker.mjs), one measurement spread over them, and the merged
// result with the server's CPU over the same window.

import { fork } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Histogram } from "./hist.mjs";
import { cpuSeconds, machineTicks } from "./procs.mjs";
import { cpus } from "node:os";

const here = dirname(fileURLToPath(import.meta.url));

export class WorkerPool {
  constructor(n) {
    this.workers = [];
    this.nextId = 1;
    this.pending = new Map();
    for (let i = 0; i < n; i++) {
      const w = fork(join(here, "worker.mjs"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
      w.on("message", (m) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error) p.reject(new Error(`load worker failed: ${m.error}`));
        else p.resolve(m.result);
      });
      w.on("exit", (code, signal) => {
        for (const [id, p] of this.pending) {
          if (p.worker === w) {
            this.pending.delete(id);
            p.reject(new Error(`load worker exited (${code ?? signal})`));
          }
        }
      });
      this.workers.push(w);
    }
  }

  send(worker, msg) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker });
      worker.send({ ...msg, id, type: "run" });
    });
  }

  // One measurement: `lanes` requests in flight in total, split over the
  // workers, for durationMs against target ({ host, port, pid }).
  // target.pids, when given, lists every server process behind the target
  // (a proxy and the backend it forwards to); their CPU is added up.
  async measure(target, op, durationMs, lanes, spec, tag) {
    const n = this.workers.length;
    const pids = target.pids ?? [target.pid];
    const each0 = pids.map(cpuSeconds);
    const mach0 = machineTicks();
    const t0 = performance.now();
    const parts = await Promise.all(
      this.workers.map((w, i) => {
        const share = Math.floor(lanes / n) + (i < lanes % n ? 1 : 0);
        return this.send(w, {
          target: { host: target.host, port: target.port },
          op,
          durationMs,
          lanes: share,
          spec,
          tag,
          worker: i,
        });
      }),
    );
    const wallS = (performance.now() - t0) / 1000;
    const serverCpuEach = pids.map((pid, i) => (cpuSeconds(pid) - each0[i]) / wallS);
    const serverCpu = serverCpuEach.reduce((a, b) => a + b, 0);
    const mach1 = machineTicks();
    const machineCpu =
      mach0 && mach1 ? ((mach1.busy - mach0.busy) / (mach1.total - mach0.total)) * cpus().length : NaN;
    return { ...mergeParts(parts, serverCpu), machineCpu, serverCpuEach };
  }

  close() {
    for (const w of this.workers) {
      try {
        w.send({ type: "exit" });
      } catch {
        /* already gone */
      }
    }
  }
}

function mergeParts(parts, serverCpu) {
  const hist = new Histogram();
  const outcomes = {};
  const mix = {};
  const samples = [];
  let wallMs = 0;
  let clientCpu = 0;
  let maxWorkerCpu = 0;
  let bytes = 0;
  for (const p of parts) {
    hist.merge(Histogram.fromJSON(p.hist));
    for (const [k, v] of Object.entries(p.outcomes)) outcomes[k] = (outcomes[k] || 0) + v;
    for (const [k, v] of Object.entries(p.mix)) mix[k] = (mix[k] || 0) + v;
    samples.push(...p.samples);
    wallMs = Math.max(wallMs, p.wallMs);
    bytes += p.bytes;
    const cores = p.cpuMs / p.wallMs;
    clientCpu += cores;
    maxWorkerCpu = Math.max(maxWorkerCpu, cores);
  }
  return { hist, outcomes, mix, samples, wallMs, bytes, clientCpu, maxWorkerCpu, serverCpu };
}

// Accumulates the rounds of one (target, operation): histograms and counts
// add, CPU figures average weighted by time.
export class Series {
  constructor() {
    this.hist = new Histogram();
    this.wallMs = 0;
    this.outcomes = {};
    this.samples = [];
    this.rounds = []; // ops/s per round
    this.clientCpuMs = 0;
    this.serverCpuMs = 0;
    this.serverCpuEachMs = []; // per server process, in target.pids order
    this.machineCpuMs = 0;
    this.maxWorkerCpu = 0;
    this.bytes = 0;
  }

  add(m) {
    this.hist.merge(m.hist);
    this.wallMs += m.wallMs;
    this.bytes += m.bytes;
    for (const [k, v] of Object.entries(m.outcomes)) this.outcomes[k] = (this.outcomes[k] || 0) + v;
    for (const s of m.samples) if (this.samples.length < 5) this.samples.push(s);
    this.rounds.push(m.hist.n / (m.wallMs / 1000));
    this.clientCpuMs += m.clientCpu * m.wallMs;
    this.serverCpuMs += m.serverCpu * m.wallMs;
    (m.serverCpuEach ?? []).forEach((c, i) => {
      this.serverCpuEachMs[i] = (this.serverCpuEachMs[i] ?? 0) + c * m.wallMs;
    });
    this.machineCpuMs += m.machineCpu * m.wallMs;
    this.maxWorkerCpu = Math.max(this.maxWorkerCpu, m.maxWorkerCpu);
  }

  get opsPerSec() {
    return this.hist.n / (this.wallMs / 1000);
  }
  get p50() {
    return this.hist.percentile(0.5) / 1000; // ms
  }
  get p99() {
    return this.hist.percentile(0.99) / 1000;
  }
  get clientCpu() {
    return this.clientCpuMs / this.wallMs;
  }
  get serverCpu() {
    return this.serverCpuMs / this.wallMs;
  }
  // Cores busy on the whole machine, this benchmark and anything else.
  get machineCpu() {
    return this.machineCpuMs / this.wallMs;
  }
  // Server CPU time per successful operation, in microseconds: how much
  // work the server does per request, whoever limited the throughput.
  get serverUsPerOp() {
    return (this.serverCpuMs * 1000) / this.hist.n;
  }
  // serverUsPerOp of one of the server processes (index into target.pids).
  serverUsPerOpOf(i) {
    return ((this.serverCpuEachMs[i] ?? NaN) * 1000) / this.hist.n;
  }
  get errors() {
    return Object.values(this.outcomes).reduce((a, b) => a + b, 0);
  }
}

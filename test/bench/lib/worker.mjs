// worker.mjs -- a load-generator process.
//
// The driver forks one or more of these and sends each a "run" message: a
// target, an operation, a duration and a number of lanes. Each lane is one
// request in flight at a time over a keep-alive socket, so lanes are the
// concurrency. The worker answers with a latency histogram of the successful
// requests, counts of every other outcome (with the first few bodies, to be
// reported verbatim), and its own CPU time over the run, which tells whether
// the client rather than the server was the limit.
//
// Load runs in separate processes so the driver's own work (sampling /proc,
// talking to the admin endpoint) never competes with a client's event loop.

import { performance } from "node:perf_hooks";
import { Histogram } from "./hist.mjs";
import { TableClient, entityPath, makeEntity, partitionQuery } from "./client.mjs";

const clients = new Map();
function clientFor(target, lanes) {
  const k = `${target.host}:${target.port}`;
  let c = clients.get(k);
  if (!c) {
    c = new TableClient({ host: target.host, port: target.port, concurrency: Math.max(lanes, 1) });
    clients.set(k, c);
  }
  return c;
}

const pad = (n, w = 6) => String(n).padStart(w, "0");

// Each operation: { name, run(lane) -> Promise<{ status, ns, bytes, body? }>,
// ok: statuses counted as success }.
function makeOps(client, msg) {
  const s = msg.spec;
  const rnd = (n) => Math.floor(Math.random() * n);
  let seq = 0;
  const readOp = {
    name: "read",
    ok: [200],
    run: () => client.request("GET", entityPath(s.table, s.pk, `k${pad(rnd(s.keys))}`)),
  };
  const insertOp = {
    name: "insert",
    ok: [201, 204],
    // A new partition every spec.partitionRows inserts: how much an insert
    // costs may depend on the size of its partition, and bounding it keeps
    // the figure independent of how long the measurement ran.
    run: () => {
      const pk = `${s.pkPrefix}-${msg.tag}-w${msg.worker}-${Math.floor(seq / s.partitionRows)}`;
      const rk = pad(seq++, 8);
      return client.request("POST", s.table, {
        body: makeEntity(pk, rk, seq),
        headers: { Prefer: "return-no-content" },
      });
    },
  };
  // Insert-or-replace of a row of a bounded key space (spec.keys rows of
  // partition spec.pk), the shape of the rows the read load reads.
  const upsertOp = {
    name: "upsert",
    ok: [204],
    run: () => {
      const rk = `k${pad(rnd(s.keys))}`;
      return client.request("PUT", entityPath(s.table, s.pk, rk), { body: makeEntity(s.pk, rk, seq++) });
    },
  };
  const queryOp = {
    name: "query",
    ok: [200],
    run: () => client.request("GET", `${s.table}()`, { query: partitionQuery(s.pk, s.top) }),
  };
  switch (msg.op) {
    case "read":
      return [readOp];
    case "insert":
      return [insertOp];
    case "query":
      return [queryOp];
    case "upsert":
      return [upsertOp];
    case "mixed":
      return mixedOps(client, s, rnd);
    default:
      throw new Error(`unknown op ${msg.op}`);
  }
}

// The mixed load for the memory run: every kind of entity operation over a
// bounded key space, so the data set stops growing after the first seconds
// and any steady growth of the server's memory is its own. Statuses that the
// random mix makes legitimate (404 on a missing row, 409 on an existing one)
// count as success.
function mixedOps(client, s, rnd) {
  const key = () => {
    const pk = `m${rnd(s.partitions)}`;
    return { pk, rk: `k${pad(rnd(s.keysPerPartition), 4)}` };
  };
  let n = 0;
  const weighted = [
    [30, { name: "read", ok: [200, 404], run: () => {
      const { pk, rk } = key();
      return client.request("GET", entityPath(s.table, pk, rk));
    } }],
    [15, { name: "insert", ok: [201, 204, 409], run: () => {
      const { pk, rk } = key();
      return client.request("POST", s.table, {
        body: makeEntity(pk, rk, n++),
        headers: { Prefer: "return-no-content" },
      });
    } }],
    [10, { name: "upsert", ok: [204], run: () => {
      const { pk, rk } = key();
      return client.request("PUT", entityPath(s.table, pk, rk), { body: makeEntity(pk, rk, n++) });
    } }],
    [10, { name: "update", ok: [204, 404], run: () => {
      const { pk, rk } = key();
      return client.request("PUT", entityPath(s.table, pk, rk), {
        body: makeEntity(pk, rk, n++),
        headers: { "If-Match": "*" },
      });
    } }],
    [5, { name: "merge", ok: [204, 404], run: () => {
      const { pk, rk } = key();
      return client.request("MERGE", entityPath(s.table, pk, rk), {
        body: { Extra: `merged ${n++}` },
        headers: { "If-Match": "*" },
      });
    } }],
    [15, { name: "delete", ok: [204, 404], run: () => {
      const { pk, rk } = key();
      return client.request("DELETE", entityPath(s.table, pk, rk), { headers: { "If-Match": "*" } });
    } }],
    [15, { name: "query", ok: [200], run: () => {
      const pk = `m${rnd(s.partitions)}`;
      return client.request("GET", `${s.table}()`, { query: partitionQuery(pk, 1000) });
    } }],
  ];
  const total = weighted.reduce((a, [w]) => a + w, 0);
  const pick = { name: "mixed", ok: null, pickOne() {
    let r = rnd(total);
    for (const [w, op] of weighted) {
      if (r < w) return op;
      r -= w;
    }
    return weighted[0][1];
  } };
  return [pick];
}

async function run(msg) {
  const client = clientFor(msg.target, msg.lanes);
  const [op] = makeOps(client, msg);
  const hist = new Histogram();
  const outcomes = {}; // unexpected outcomes: "read 500" -> count
  const mix = {}; // mixed load only: every expected outcome, "read 404" -> count
  const samples = []; // first unexpected outcomes, verbatim
  let bytes = 0;
  const t0 = performance.now();
  const deadline = t0 + msg.durationMs;
  const cpu0 = process.cpuUsage();

  const note = (key, into = outcomes) => {
    into[key] = (into[key] || 0) + 1;
  };
  async function lane() {
    while (performance.now() < deadline) {
      const one = op.pickOne ? op.pickOne() : op;
      let r;
      try {
        r = await one.run();
      } catch (e) {
        note(`${one.name} ${e.code || e.message}`);
        if (samples.length < 5) samples.push(`${one.name}: transport error ${e.code || ""} ${e.message}`);
        continue;
      }
      bytes += r.bytes;
      if (one.ok.includes(r.status)) {
        hist.record(r.ns / 1000);
        if (op.pickOne) note(`${one.name} ${r.status}`, mix);
      } else {
        note(`${one.name} ${r.status}`);
        if (samples.length < 5)
          samples.push(`${one.name}: HTTP ${r.status} ${(r.body || "").slice(0, 400)}`);
      }
    }
  }
  await Promise.all(Array.from({ length: msg.lanes }, lane));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    hist: hist.toJSON(),
    outcomes,
    mix,
    samples,
    bytes,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

process.on("message", async (msg) => {
  if (msg.type === "run") {
    try {
      const result = await run(msg);
      process.send({ type: "result", id: msg.id, result });
    } catch (e) {
      process.send({ type: "result", id: msg.id, error: e.stack || String(e) });
    }
  } else if (msg.type === "exit") {
    for (const c of clients.values()) c.close();
    process.exit(0);
  }
});
process.on("disconnect", () => process.exit(0));

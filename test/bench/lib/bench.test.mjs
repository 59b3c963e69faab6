// bench.test.mjs -- checks of the benchmark's own arithmetic and report,
// on synthetic data (no servers, no clocks): `node --test test/bench/lib/`.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import test from "node:test";
import { DEV_KEY, batchRequest, batchStatuses, signLite } from "./client.mjs";
import { Counts, requestKind } from "./counter.mjs";
import { foldPerfScript, shareOf } from "./fold.mjs";
import { Histogram } from "./hist.mjs";
import { Series } from "./load.mjs";
import { renderReport } from "./report.mjs";
import { COUNT_OPS, ORIGINAL, PHASES, renderBackendReport } from "./report-backend.mjs";
import { parseWrk, wrkMicros } from "./wrk.mjs";

test("percentiles are within the 2% bucket width", () => {
  const h = new Histogram();
  for (let us = 1; us <= 10000; us++) h.record(us);
  for (const q of [0.5, 0.9, 0.99]) {
    const want = q * 10000;
    const got = h.percentile(q);
    assert.ok(Math.abs(got - want) / want < 0.02, `p${q * 100}: ${got} vs ${want}`);
  }
  assert.equal(h.n, 10000);
  assert.ok(Math.abs(h.mean() - 5000.5) < 1e-6);
});

test("merging equals recording everything in one histogram", () => {
  const a = new Histogram();
  const b = new Histogram();
  const all = new Histogram();
  for (let i = 0; i < 500; i++) {
    const x = 50 + ((i * 7919) % 3000);
    (i % 2 ? a : b).record(x);
    all.record(x);
  }
  const merged = Histogram.fromJSON(JSON.parse(JSON.stringify(a))).merge(b);
  assert.deepEqual([...merged.counts], [...all.counts]);
  assert.equal(merged.percentile(0.99), all.percentile(0.99));
});

test("an empty histogram has no percentiles", () => {
  assert.ok(Number.isNaN(new Histogram().percentile(0.5)));
});

test("Shared Key Lite signs date and doubled account path", () => {
  const date = "Tue, 25 Nov 2025 10:00:00 GMT";
  const key = Buffer.from(DEV_KEY, "base64");
  const want = createHmac("sha256", key)
    .update(`${date}\n/devstoreaccount1/devstoreaccount1/t(PartitionKey='p',RowKey='r')`)
    .digest("base64");
  assert.equal(signLite(key, "devstoreaccount1", date, "t(PartitionKey='p',RowKey='r')"), want);
});

function series(opsPerSec, p50us, serverCores, rounds = 2) {
  const s = new Series();
  for (let r = 0; r < rounds; r++) {
    const hist = new Histogram();
    for (let i = 0; i < opsPerSec; i++) hist.record(p50us);
    s.add({
      hist,
      wallMs: 1000,
      bytes: 0,
      outcomes: {},
      samples: [],
      clientCpu: 0.5,
      serverCpu: serverCores,
      machineCpu: 1,
      maxWorkerCpu: 0.3,
    });
  }
  return s;
}

function fakeResult(growth) {
  const rss = (t, kb) => ({ t, rssKb: kb, hwmKb: kb, threads: 19 });
  const samples = [rss(1, 1000), rss(10, 1000), rss(60, 1000 * (1 + growth))];
  const mixed = new Histogram();
  mixed.record(1000);
  return {
    env: {
      date: "2025-01-01T00:00:00Z",
      command: "node test/bench/run.mjs",
      nproc: 2,
      cpu: "test cpu",
      node: "v20",
      azurite: "3.35.0",
      commit: "abc",
      proxyBuild: "test",
      opts: { lanes: 16, workers: 2, seconds: 10, rounds: 2, rssSeconds: 60, azuriteOnly: false },
    },
    shapes: { azurite: { readBytes: 200, pageBytes: 200000 } },
    vsAzurite: { read: { a: series(100, 10000, 1), b: series(800, 1000, 0.5) } },
    phase: { read: { a: series(800, 1000, 0.5), b: series(400, 2000, 0.5) } },
    rss: {
      m: { hist: mixed, wallMs: 1000, outcomes: {}, mix: { "read 200": 1 }, samples: [] },
      beforeKb: 900,
      atMark: samples[1],
      end: samples[2],
      maxKb: Math.max(...samples.map((s) => s.rssKb)),
      growth,
      lateFrom: samples[1],
      lateGrowth: growth,
      maxThreads: 19,
      samples,
    },
    logs: {},
  };
}

test("the report leads with ratios and judges the read goal", () => {
  const md = renderReport(fakeResult(0));
  assert.match(md, /\| point read \| \*\*8\.00×\*\* \| \*\*0\.10×\*\* \|/);
  assert.match(md, /\*\*met\*\* \(8\.00×\)/);
  assert.match(md, /\| point read \| \*\*0\.50×\*\* \| \*\*2\.00×\*\* \|/);
  // Server CPU per op: 1 core / 100 ops vs 0.5 core / 800 ops.
  assert.match(md, /10000 \/ 625 \|/);
  assert.match(md, /No sign of a leak/);
});

test("RSS growth over 10% is flagged, not failed", () => {
  const md = renderReport(fakeResult(0.25));
  assert.match(md, /\*\*Possible leak:\*\* RSS grew 25\.0% from 10 s to the end of the load \(25\.0% over the last third\)/);
});

// ---------------------------------------------------------------------------
// backend.mjs: the counting pass-through's classification, $batch bodies,
// and the report.

test("requests are classified by what they do to which resource", () => {
  const a = "/devstoreaccount1";
  assert.equal(requestKind("GET", `${a}/t(PartitionKey='p',RowKey='r')`), "GET entity");
  assert.equal(requestKind("GET", `${a}/t(PartitionKey='p',RowKey='r')?$select=A`), "GET entity");
  assert.equal(requestKind("GET", `${a}/t()?$filter=PartitionKey%20eq%20'p'`), "GET query");
  assert.equal(requestKind("GET", `${a}/t?$filter=x`), "GET query");
  assert.equal(requestKind("POST", `${a}/t`), "POST insert");
  assert.equal(requestKind("POST", `${a}/t(PartitionKey='p',RowKey='r')`, { "x-http-method": "MERGE" }), "MERGE entity");
  assert.equal(requestKind("PUT", `${a}/t(PartitionKey='p',RowKey='r')`), "PUT entity");
  assert.equal(requestKind("DELETE", `${a}/t(PartitionKey='p',RowKey='r')`), "DELETE entity");
  assert.equal(requestKind("POST", `${a}/$batch`), "$batch");
  assert.equal(requestKind("GET", `${a}/Tables`), "tables");
  assert.equal(requestKind("POST", `${a}/Tables`), "tables");
});

test("counts subtract snapshots", () => {
  const c = new Counts();
  c.add("GET entity 200");
  const s = c.snapshot();
  c.add("GET entity 200");
  c.add("POST insert 201");
  const d = c.since(s);
  assert.equal(d.total, 2);
  assert.deepEqual(d.byKind, { "GET entity 200": 1, "POST insert 201": 1 });
});

test("a $batch body holds one changeset with every operation", () => {
  const ops = [0, 1, 2].map((i) => ({ method: "POST", path: "t", body: { PartitionKey: "p", RowKey: `r${i}` } }));
  const b = batchRequest("127.0.0.1:1", ops);
  const boundary = b.contentType.match(/boundary=(\S+)/)[1];
  assert.ok(b.body.startsWith(`--${boundary}\r\n`));
  assert.ok(b.body.endsWith(`--${boundary}--\r\n`));
  assert.equal(b.body.match(/^POST http:\/\/127\.0\.0\.1:1\/devstoreaccount1\/t HTTP\/1\.1$/gm).length, 3);
  const answer = "--b\r\nHTTP/1.1 201 Created\r\n\r\n--b\r\nHTTP/1.1 204 No Content\r\n";
  assert.deepEqual(batchStatuses(answer), [201, 204]);
});

test("the original's counts cover every counted operation and phase", () => {
  for (const [op] of COUNT_OPS) {
    assert.equal(ORIGINAL[op].length, PHASES.length, op);
    for (const x of ORIGINAL[op]) if (x) assert.equal(x.length, 2, op);
  }
});

function counted(oldKinds, newKinds, n) {
  const mk = (kinds) => {
    const c = new Counts();
    for (const [k, v] of Object.entries(kinds)) for (let i = 0; i < v; i++) c.add(k);
    return c;
  };
  return { old: mk(oldKinds), new: mk(newKinds), n };
}

function fakeBackend(preferNewInsertNew) {
  const phases = {};
  for (const ph of PHASES) {
    phases[ph] = {};
    for (const [op] of COUNT_OPS) phases[ph][op] = counted({ "GET query 200": 2 }, {}, 2);
  }
  for (const op of ["insert", "replace", "merge", "upsert", "delete", "batch"])
    phases.prefer_new[op] = counted({}, { "GET query 200": 2, "POST insert 204": 2 * (preferNewInsertNew - 1) }, 2);
  const cpu = { proxy: 1, old: 1, new: 1, client: 1 };
  return {
    env: {
      date: "2025-01-01T00:00:00Z",
      command: "node test/bench/backend.mjs",
      nproc: 2,
      cpu: "test cpu",
      node: "v20",
      azurite: "3.35.0",
      commit: "abc",
      tree: "clean",
      proxyBuild: "test",
      opts: { lanes: 16, workers: 2, seconds: 10, rounds: 2 },
    },
    s1: {
      rows: { read: { a: series(1000, 1000, 1), b: series(900, 1000, 1) } },
      log: [],
    },
    s2: { n: 2, phases, idle: counted({}, {}, 1), transitions: {}, log: [] },
    s3: {
      total: 1000,
      partitions: 2,
      rowsPerPartition: 500,
      runs: [
        { label: "plain", kind: "sdk", rows: 1000, seconds: 1, cpu },
        { label: "migrator", kind: "migrator", rows: 1000, seconds: 4, wholeSeconds: 5, copyTimed: true, partitions: 2, cpu },
      ],
      log: [],
    },
  };
}

test("the backend report judges the three goals", () => {
  let md = renderBackendReport(fakeBackend(2));
  assert.match(md, /≥ 0\.8× Azurite's — \*\*met\*\* \(read 0\.90×\)/);
  assert.match(md, /costs ≤ 3 backend requests — \*\*met\*\* \(insert 2,/);
  assert.match(md, /\| insert \(new row\) \| 1\+0=\*\*1\*\* \| 1\+0=\*\*1\*\* \|/);
  assert.match(md, /Ratio migrator \/ plain loop: \*\*0\.25×\*\*.*\*\*not met\*\*/);
  md = renderBackendReport(fakeBackend(4));
  assert.match(md, /costs ≤ 3 backend requests — \*\*not met\*\* \(insert 4,/);
});

test("wrk's latency report reads as microseconds, requests per second and errors", () => {
  assert.equal(wrkMicros("312.45us"), 312.45);
  assert.equal(wrkMicros("1.20ms"), 1200);
  assert.equal(wrkMicros("2.00s"), 2e6);
  assert.ok(Number.isNaN(wrkMicros("fast")));
  const out = [
    "Running 2s test @ http://127.0.0.1:1234/x",
    "  1 threads and 1 connections",
    "  Latency Distribution",
    "     50%  310.00us",
    "     75%  400.00us",
    "     90%  500.00us",
    "     99%    1.50ms",
    "  4000 requests in 2.00s, 1.00MB read",
    "  Non-2xx or 3xx responses: 3",
    "Requests/sec:   2000.50",
  ].join("\n");
  assert.deepEqual(parseWrk(out), { p50: 310, p99: 1500, rps: 2000.5, non2xx: 3, socketErrors: "" });
});

test("perf script stacks fold root first, one line per distinct stack", () => {
  const script = [
    "mtable-proxy  123 1.0: 1001 cpu-clock:",
    "\t    55d5c0a1b2c3 leaf+0x12 (/usr/bin/x)",
    "\t    55d5c0a1b2c4 caller+0x1 (/usr/bin/x)",
    "",
    "mtable-proxy  123 1.1: 1001 cpu-clock:",
    "\t    55d5c0a1b2c3 leaf+0x14 (/usr/bin/x)",
    "\t    55d5c0a1b2c4 caller+0x2 (/usr/bin/x)",
    "",
    "mtable-proxy  124 1.2: 1001 cpu-clock:",
    "\t    7f0000000000 [unknown] (/usr/lib/libcurl.so.4)",
    "\t    55d5c0a1b2c4 caller+0x2 (/usr/bin/x)",
    "",
  ].join("\n");
  const folded = foldPerfScript(script);
  assert.equal(folded, "mtable-proxy;caller;leaf 2\nmtable-proxy;caller;[libcurl.so.4] 1\n");
  assert.equal(shareOf(folded, /libcurl/), 1 / 3);
});

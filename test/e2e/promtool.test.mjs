// promtool.test.mjs -- /metrics as Prometheus's own checker reads it.
//
// An authority and a sidecar that follows it, both over two Azurite
// accounts. In every phase, 0 to 4, SDK traffic goes through each of them
// and then each one's /metrics is handed to `promtool check metrics`
// (Debian's prometheus package; docker/install-deps.sh installs it), which
// must accept it with no complaint: valid text format, HELP and TYPE on
// every family, no lint problem. Beside promtool, what a dashboard relies
// on: the phase gauge and label follow the migration, the request totals
// of /admin/v1/status are the sums of mtable_requests_total, each
// operation's duration histogram counts exactly its requests, and
// mtable_build_info carries meson's project version.
//
// A missing promtool is a failure that says how to install it, never a
// skip.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { tableClient, serviceClient } from "./lib/clients.mjs";
import {
  PHASES, freePort, proxyStatus, repoRoot, sleep, startAzurite, startMtable, stopAll, target, toPhase,
} from "./lib/harness.mjs";
import { proxySkipReason } from "./lib/targets.mjs";

const promtool = process.env.MTABLE_PROMTOOL ?? "promtool";

function promtoolMissing() {
  const r = spawnSync(promtool, ["--version"], { encoding: "utf8", timeout: 10000 });
  if (r.error || r.status !== 0) {
    return (
      `promtool is not installed (${r.error?.code ?? `exit ${r.status}`}): ` +
      "install Debian's prometheus package (apt-get install prometheus, or bash docker/install-deps.sh)"
    );
  }
  return null;
}

function checkMetrics(who, text) {
  const r = spawnSync(promtool, ["check", "metrics"], { input: text, encoding: "utf8", timeout: 30000 });
  assert.ok(!r.error, `${who}: promtool did not run: ${r.error?.message}`);
  assert.equal(
    r.status, 0,
    `${who}: promtool check metrics exited ${r.status}:\n${r.stdout}${r.stderr}\n--- /metrics ---\n${text}`,
  );
  assert.equal((r.stdout + r.stderr).trim(), "", `${who}: promtool complained`);
}

// Samples as [{name, labels, value}].
function parse(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    assert.ok(m, `not a sample line: ${line}`);
    const labels = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

const sum = (samples, name, pred = () => true) =>
  samples.filter((s) => s.name === name && pred(s.labels)).reduce((a, s) => a + s.value, 0);

const mesonVersion = () => readFileSync(join(repoRoot, "meson.build"), "utf8").match(/version\s*:\s*'([^']+)'/)[1];

describe("promtool check metrics", { skip: proxySkipReason() }, () => {
  let missing = null;
  let azurite = null;
  let authority = null;
  let sidecar = null;
  const tables = {};

  before(async () => {
    missing = promtoolMissing();
    azurite = await startAzurite();
    const backends = ["--old", azurite.connectionString("mtold"), "--new", azurite.connectionString("mtnew")];
    authority = await startMtable({
      name: "promtool-authority", port: await freePort(), adminPort: await freePort(),
      args: [...backends, "--proxy-id", "authority"],
    });
    sidecar = await startMtable({
      name: "promtool-sidecar", port: await freePort(), adminPort: await freePort(),
      args: [...backends, "--config-endpoint", authority.adminUrl, "--proxy-id", "sidecar"],
    });
    for (const [who, px] of [["authority", authority], ["sidecar", sidecar]]) {
      const t = target({ name: who, kind: "proxy", endpoint: px.endpoint, proxy: px });
      const name = `prom${who}`;
      await serviceClient(t).createTable(name);
      tables[who] = tableClient(t, name);
    }
  });
  after(stopAll);

  // Inserts, reads, a read of a missing row (404), a query.
  async function traffic(who, n) {
    const c = tables[who];
    for (let i = 0; i < 3; i++) await c.createEntity({ partitionKey: `p${n}`, rowKey: `r${i}`, n: i });
    await c.getEntity(`p${n}`, "r1");
    await assert.rejects(c.getEntity(`p${n}`, "missing"));
    for await (const _ of c.listEntities({ queryOptions: { filter: `PartitionKey eq 'p${n}'` } })) void _;
  }

  for (let n = 0; n < PHASES.length; n++) {
    test(`phase ${n} (${PHASES[n]}): the sidecar's and the authority's /metrics pass promtool`, async () => {
      assert.equal(missing, null, missing ?? "");
      if (n > 0) await toPhase(authority, n);
      // The sidecar serves the phase once it has acknowledged it, which a
      // push waits for; its status says so.
      for (let i = 0; i < 100 && (await proxyStatus(sidecar)).phase !== PHASES[n]; i++) await sleep(50);

      for (const [who, px] of [["sidecar", sidecar], ["authority", authority]]) {
        await traffic(who, n);
        const status = await proxyStatus(px);
        const r = await fetch(`${px.adminUrl}/metrics`);
        assert.equal(r.status, 200);
        const text = await r.text();
        checkMetrics(`${who} in phase ${n}`, text);

        const s = parse(text);
        assert.equal(sum(s, "mtable_phase"), n, `${who}: mtable_phase`);
        assert.equal(status.phase, PHASES[n], `${who}: status phase`);
        // This phase's inserts are labelled with it.
        assert.equal(
          sum(s, "mtable_requests_total", (l) => l.operation === "insert" && l.phase === PHASES[n]), 3,
          `${who}: inserts labelled phase ${PHASES[n]}`,
        );
        // Status and metrics count the same requests (no traffic between
        // the two reads but the scrape itself, which is not a table request).
        assert.equal(sum(s, "mtable_requests_total"), status.requests, `${who}: requests`);
        assert.equal(
          sum(s, "mtable_requests_total", (l) => Number(l.status) >= 400),
          status.requests_failed, `${who}: requests_failed`,
        );
        // Each operation and phase: the histogram counts its requests.
        const keys = new Set(
          s.filter((x) => x.name === "mtable_requests_total").map((x) => `${x.labels.operation}/${x.labels.phase}`),
        );
        assert.ok(keys.size > 0);
        for (const k of keys) {
          const [op, ph] = k.split("/");
          const match = (l) => l.operation === op && l.phase === ph;
          const count = sum(s, "mtable_request_duration_seconds_count", match);
          assert.equal(count, sum(s, "mtable_requests_total", match), `${who}: duration count of ${k}`);
          assert.equal(
            sum(s, "mtable_request_duration_seconds_bucket", (l) => match(l) && l.le === "+Inf"), count,
            `${who}: +Inf bucket of ${k}`,
          );
          const lowest = sum(s, "mtable_request_duration_seconds_bucket", (l) => match(l) && l.le === "0.0001");
          const highest = sum(s, "mtable_request_duration_seconds_bucket", (l) => match(l) && l.le === "10");
          assert.ok(lowest <= highest && highest <= count, `${who}: buckets of ${k} are cumulative`);
        }
        // The migration's counters are the status' numbers.
        assert.equal(sum(s, "mtable_rows_copied_total"), status.migration.rows_done, `${who}: rows copied`);
        assert.equal(sum(s, "mtable_rows_cleaned_total"), status.migration.rows_cleaned, `${who}: rows cleaned`);
        assert.equal(sum(s, "mtable_migration_state", (l) => l.state === status.migration.state), 1);
        const build = s.filter((x) => x.name === "mtable_build_info");
        assert.deepEqual(build.map((x) => [x.labels.version, x.value]), [[mesonVersion(), 1]]);
      }
    });
  }
});

// app.mjs -- an example application for mtable: the unmodified Azure Table
// SDK (@azure/data-tables) running a steady mixed workload against its table
// endpoint, which in the examples is the mtable sidecar on
// http://127.0.0.1:10002/devstoreaccount1.
//
// Each worker owns its own rows, spread over a few partitions, and upserts,
// reads, deletes and queries them at random. Because nobody else writes
// those rows, the worker knows what every read must return; a read that
// disagrees (a lost write, a deleted row that came back, an old version) is
// counted as a mismatch and logged. That is what a migration must never
// cause, so this app doubles as a live check while the phases move.
//
// Output: one JSON object a line on stdout, every REPORT_MS the counts so
// far, and every error as it happens.
//
// Environment:
//   TABLE_CONNECTION_STRING  default UseDevelopmentStorage=true (the sidecar's
//                            default account on 127.0.0.1:10002)
//   TABLE_NAME               table to use (exampleorders); created if missing
//   APP_ID                   prefix of this instance's row keys (host name)
//   PARTITIONS               partitions the rows are spread over (4)
//   ROWS                     rows each worker owns (40)
//   WORKERS                  concurrent workers (2)
//   PAUSE_MS                 pause between a worker's operations (20)
//   REPORT_MS                how often the counts are logged (5000)
//   DURATION_S               stop after this many seconds; 0 runs until
//                            SIGTERM or SIGINT (0)
//
// Exit status: 0 when no read disagreed with what was written, 1 otherwise,
// 2 on a bad setting.

import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { TableClient, odata } from "@azure/data-tables";

function setting(name, fallback) {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : v;
}

function intSetting(name, fallback, min) {
  const raw = setting(name, String(fallback));
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    log("error", `bad ${name}: '${raw}' (an integer >= ${min})`);
    process.exit(2);
  }
  return n;
}

function log(level, msg, fields = {}) {
  process.stdout.write(
    JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + "\n",
  );
}

const connectionString = setting("TABLE_CONNECTION_STRING", "UseDevelopmentStorage=true");
const tableName = setting("TABLE_NAME", "exampleorders");
const appId = setting("APP_ID", hostname()).replace(/[^A-Za-z0-9_.-]/g, "_");
const partitions = intSetting("PARTITIONS", 4, 1);
const rows = intSetting("ROWS", 40, 1);
const workers = intSetting("WORKERS", 2, 1);
const pauseMs = intSetting("PAUSE_MS", 20, 0);
const reportMs = intSetting("REPORT_MS", 5000, 100);
const durationS = intSetting("DURATION_S", 0, 0);

const client = TableClient.fromConnectionString(connectionString, tableName, {
  allowInsecureConnection: true, // the sidecar speaks plain http on loopback
});

const counts = {
  upserts: 0,
  reads: 0,
  deletes: 0,
  queries: 0,
  not_found: 0,
  mismatches: 0,
  errors: 0,
};
let stopping = false;

function describe(err) {
  return {
    status: err.statusCode ?? null,
    code: err.code ?? err.details?.errorCode ?? null,
    error: String(err.message ?? err).split("\n")[0].slice(0, 300),
  };
}

function mismatch(what, fields) {
  counts.mismatches++;
  log("error", `mismatch: ${what}`, fields);
}

// One worker: its rows, and what it last knew of each (a sequence number,
// null for absent, undefined when a write's outcome is unknown).
async function worker(w) {
  const prefix = `${appId}-w${w}-`;
  const keys = [];
  for (let i = 0; i < rows; i++) {
    keys.push({
      partitionKey: `p${i % partitions}`,
      rowKey: `${prefix}${String(i).padStart(4, "0")}`,
    });
  }
  const known = new Map();
  let seq = 0;

  while (!stopping) {
    const k = keys[Math.floor(Math.random() * keys.length)];
    const id = `${k.partitionKey}/${k.rowKey}`;
    const dice = Math.random();
    let op = "upsert";
    if (dice >= 0.5) op = dice < 0.82 ? "read" : dice < 0.95 ? "delete" : "query";
    try {
      if (op === "upsert") {
        seq++;
        known.set(id, undefined); // unknown until the answer arrives
        await client.upsertEntity(
          { ...k, seq, writer: prefix, note: "x".repeat(Math.floor(Math.random() * 200)) },
          "Replace",
        );
        known.set(id, seq);
        counts.upserts++;
      } else if (op === "read") {
        let got = null;
        try {
          got = (await client.getEntity(k.partitionKey, k.rowKey)).seq;
        } catch (err) {
          if (err.statusCode !== 404) throw err;
          counts.not_found++;
        }
        const want = known.get(id);
        if (known.has(id) && want !== undefined && want !== got) {
          mismatch(got === null ? "a written row is gone" : "a row reads differently", {
            key: id,
            expected: want,
            got,
          });
        }
        known.set(id, got);
        counts.reads++;
      } else if (op === "delete") {
        known.set(id, undefined);
        try {
          await client.deleteEntity(k.partitionKey, k.rowKey);
        } catch (err) {
          // 404: absent already (or a retried delete whose first try landed).
          if (err.statusCode !== 404) throw err;
          counts.not_found++;
        }
        known.set(id, null);
        counts.deletes++;
      } else {
        // This worker's rows in one partition, through a filtered query.
        const pk = k.partitionKey;
        const seen = new Map();
        const filter = odata`PartitionKey eq ${pk} and RowKey ge ${prefix} and RowKey lt ${prefix + "~"}`;
        for await (const e of client.listEntities({ queryOptions: { filter } })) {
          seen.set(`${pk}/${e.rowKey}`, e.seq);
        }
        for (const key of keys) {
          if (key.partitionKey !== pk) continue;
          const kid = `${pk}/${key.rowKey}`;
          const want = known.get(kid);
          const got = seen.has(kid) ? seen.get(kid) : null;
          if (known.has(kid) && want !== undefined && want !== got) {
            mismatch("a query disagrees with the writes", { key: kid, expected: want, got });
          }
          known.set(kid, got);
        }
        counts.queries++;
      }
    } catch (err) {
      counts.errors++;
      log("error", `${op} failed`, { key: id, ...describe(err) });
      await sleep(500); // do not spin on an endpoint that is down
    }
    if (pauseMs > 0) await sleep(pauseMs);
  }
}

// The table may not be reachable yet (the sidecar waits for its phase from
// the authority): retry until it is.
async function ensureTable() {
  for (let attempt = 1; !stopping; attempt++) {
    try {
      await client.createTable(); // an existing table is not an error
      return true;
    } catch (err) {
      log("warn", `cannot create table ${tableName} yet (attempt ${attempt})`, describe(err));
      await sleep(Math.min(500 * attempt, 5000));
    }
  }
  return false;
}

function report(msg) {
  log("info", msg, { table: tableName, ...counts });
}

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    if (stopping) process.exit(1);
    stopping = true;
  });
}

log("info", "starting", {
  table: tableName,
  endpoint: client.url,
  app_id: appId,
  partitions,
  rows,
  workers,
});
if (durationS > 0) setTimeout(() => (stopping = true), durationS * 1000).unref();

if (await ensureTable()) {
  const timer = setInterval(() => report("counts"), reportMs);
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  clearInterval(timer);
}
report("stopped");
process.exit(counts.mismatches === 0 ? 0 : 1);

// What a query costs the backends, read from the proxy's counters of rows
// its backend reads returned (mtable_backend_rows_total): a table SAS with a
// key range reads that range, not the table, and never hands back a
// continuation outside it; paging through one partition costs about the
// rows it returns, not the partition again for every page. On Azurite
// backends the same bound holds for the rows the service sends, counted by
// a forwarder between the proxy and Azurite.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { generateTableSas, TableTransaction } from "@azure/data-tables";
import {
  freePort, startAzurite, startMtable, startProxyOn, stopAll, target, toPhase,
} from "./lib/harness.mjs";
import { credential, serviceClient, tableClient } from "./lib/clients.mjs";
import { proxySkipReason } from "./lib/targets.mjs";

// Rows read from one side's backend (both when side is "") so far, by
// every kind of read.
async function rowsRead(px, side = "") {
  const text = await (await fetch(`${px.adminUrl}/metrics`)).text();
  let n = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("mtable_backend_rows_total{") && line.includes(`side="${side}`)) {
      n += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return n;
}

async function fill(client, pk, keys) {
  for (let i = 0; i < keys.length; i += 100) {
    const tx = new TableTransaction();
    for (const rk of keys.slice(i, i + 100)) tx.upsertEntity({ partitionKey: pk, rowKey: rk, n: 1 }, "Replace");
    await client.submitTransaction(tx.actions);
  }
}

const pad = (i, w) => String(i).padStart(w, "0");

// Continuation tokens as the proxy writes them: "1!" and the key in
// unpadded base64url.
const token = (k) => "1!" + Buffer.from(k).toString("base64url");
const untoken = (t) => Buffer.from(t.slice(2), "base64url").toString();

// Pages of a query sent with a SAS as raw requests, so that every
// continuation header can be looked at.
async function pages(px, table, sas, top) {
  const out = [];
  let next = null;
  for (let i = 0; i < 100; i++) {
    let url = `${px.endpoint}/${table}()?${sas}&$top=${top}`;
    if (next) url += `&NextPartitionKey=${encodeURIComponent(next[0])}&NextRowKey=${encodeURIComponent(next[1])}`;
    const r = await fetch(url, { headers: { accept: "application/json;odata=nometadata", "x-ms-version": "2019-02-02" } });
    assert.equal(r.status, 200, await r.clone().text());
    const body = await r.json();
    const npk = r.headers.get("x-ms-continuation-NextPartitionKey");
    const nrk = r.headers.get("x-ms-continuation-NextRowKey");
    out.push({ rows: body.value.map((e) => [e.PartitionKey, e.RowKey]), next: npk ? [untoken(npk), untoken(nrk)] : null });
    if (!npk) return out;
    next = [npk, nrk];
  }
  throw new Error("more than 100 pages");
}

// A table SAS with a key range, in phase 0 and then in phase 2 (the proxy
// px is moved there): its queries read the range, and their continuations
// stay inside it.
async function sasRange(px, t) {
  await serviceClient(t).createTable("sasrange");
  const c = tableClient(t, "sasrange");
  for (let p = 0; p < 10; p++) await fill(c, `p${p}`, Array.from({ length: 40 }, (_, i) => `r${pad(i, 2)}`));
  // p3/r05 .. p5/r10: 35 + 40 + 11 rows.
  const sas = generateTableSas("sasrange", credential(t), {
    permissions: { query: true },
    expiresOn: new Date(Date.now() + 3600 * 1000),
    startPartitionKey: "p3",
    startRowKey: "r05",
    endPartitionKey: "p5",
    endRowKey: "r10",
  });
  const inRange = ([pk, rk]) => (pk > "p3" || (pk === "p3" && rk >= "r05")) && (pk < "p5" || (pk === "p5" && rk <= "r10"));
  const want = [];
  for (let p = 3; p <= 5; p++) {
    for (let i = 0; i < 40; i++) if (inRange([`p${p}`, `r${pad(i, 2)}`])) want.push([`p${p}`, `r${pad(i, 2)}`]);
  }
  assert.equal(want.length, 86);

  for (const phase of [0, 2]) {
    if (phase === 2) {
      await toPhase(px, 2);
      // Writes in phase 2 go to new: one row inside the range, a whole
      // partition after it, which a read of the range must not touch.
      await fill(c, "p4", ["r07"]);
      await fill(c, "p8", Array.from({ length: 40 }, (_, i) => `r${pad(i, 2)}`));
    }
    const old0 = await rowsRead(px, "old"), new0 = await rowsRead(px, "new");
    // 43 a page: the second page ends on the range's last key, which
    // must not send the client on with a continuation.
    const got = await pages(px, "sasrange", sas, 43);
    assert.deepEqual(got.map((p) => p.rows.length), [43, 43], `phase ${phase}`);
    assert.deepEqual(got.flatMap((p) => p.rows), want, `phase ${phase}`);
    assert.ok(inRange(got[0].next), `phase ${phase}: continuation ${got[0].next}`);
    assert.equal(got[1].next, null, `phase ${phase}`);
    const oldRead = (await rowsRead(px, "old")) - old0, newRead = (await rowsRead(px, "new")) - new0;
    // The range and one row read ahead per page, of 400 rows in the table.
    assert.ok(oldRead <= want.length + 4, `phase ${phase}: ${oldRead} rows read from old`);
    assert.ok(newRead <= (phase ? 1 : 0) + 4, `phase ${phase}: ${newRead} rows read from new`);
    if (phase === 2) assert.ok(newRead >= 1, `phase ${phase}: p4/r07 came from new`);
  }
  // A client-chosen continuation before the range starts at the range;
  // one past it ends with nothing.
  const early = await pages(px, "sasrange", `${sas}&NextPartitionKey=${token("p0")}&NextRowKey=${token("r00")}`, 1000);
  assert.deepEqual(early[0].rows, want);
  const late = await pages(px, "sasrange", `${sas}&NextPartitionKey=${token("p6")}&NextRowKey=${token("r00")}`, 1000);
  assert.deepEqual(late, [{ rows: [], next: null }]);
}

describe("query cost", { skip: proxySkipReason() }, () => {
  let px = null;
  let t = null;
  before(async () => {
    px = await startMtable({ name: "query-cost", port: await freePort(), adminPort: await freePort(), args: [] });
    t = target({ name: "proxy", kind: "proxy", endpoint: px.endpoint, proxy: px });
  });
  after(stopAll);

  test("a SAS key range is read alone, and its continuations stay inside it", () => sasRange(px, t));

  // In phase 2 (the test above moved there): the rows are written to new,
  // and every read merges both tables.
  test("paging 10,000 rows of one partition costs at most twice one listing", async () => {
    await serviceClient(t).createTable("bigpart");
    const c = tableClient(t, "bigpart");
    await fill(c, "big", Array.from({ length: 10000 }, (_, i) => `r${pad(i, 5)}`));
    await fill(c, "other", ["a", "b"]);
    const filter = "PartitionKey eq 'big'";

    let r0 = await rowsRead(px);
    let n = 0;
    for await (const e of c.listEntities({ queryOptions: { filter } })) n += e.partitionKey === "big" ? 1 : 0;
    assert.equal(n, 10000);
    const full = (await rowsRead(px)) - r0;

    r0 = await rowsRead(px);
    n = 0;
    let npages = 0;
    for await (const page of c.listEntities({ queryOptions: { filter } }).byPage({ maxPageSize: 100 })) {
      npages++;
      n += page.length;
    }
    assert.equal(n, 10000);
    assert.equal(npages, 100);
    const paged = (await rowsRead(px)) - r0;
    console.log(`# rows read: listing ${full}, pages of 100 ${paged}`);
    assert.ok(full >= 10000, `listing read ${full} rows`);
    assert.ok(paged <= 2 * full, `pages of 100 read ${paged} rows, one listing ${full}`);
  });
});

// Forwards to Azurite and counts the rows its query answers carry.
async function startRowCounter(upstream) {
  const up = new URL(upstream);
  const counter = { rows: 0, requests: 0 };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const fwd = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        const body = [];
        ur.on("data", (c) => body.push(c));
        ur.on("end", () => {
          const buf = Buffer.concat(body);
          if (req.method === "GET" && ur.statusCode === 200 && !req.url.includes("/Tables")) {
            counter.requests++;
            try {
              counter.rows += JSON.parse(buf.toString()).value?.length ?? 1;
            } catch {
              // not a JSON query answer
            }
          }
          res.writeHead(ur.statusCode, ur.headers);
          res.end(buf);
        });
      });
      fwd.on("error", () => res.destroy());
      fwd.end(Buffer.concat(chunks));
    });
  });
  const port = await freePort();
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  counter.endpoint = (account) => `http://127.0.0.1:${port}/${account}`;
  counter.stop = () => new Promise((ok) => {
    server.closeAllConnections();
    server.close(ok);
  });
  return counter;
}

describe("query cost on Azurite backends", { skip: proxySkipReason() }, () => {
  let counter = null;
  let px = null;
  let t = null;
  before(async () => {
    const az = await startAzurite();
    counter = await startRowCounter(`http://127.0.0.1:${az.port}`);
    const cs = (a) => az.connectionString(a).replace(az.endpoint(a), counter.endpoint(a));
    px = await startProxyOn({ old: cs("mtold"), new: cs("mtnew") });
    t = target({ name: "proxy", kind: "proxy", endpoint: px.endpoint, proxy: px });
  });
  after(async () => {
    await counter?.stop();
    await stopAll();
  });

  test("paging 10,000 rows of one partition: the service sends at most twice the rows of one listing", async () => {
    await serviceClient(t).createTable("bigpart");
    const c = tableClient(t, "bigpart");
    await fill(c, "big", Array.from({ length: 10000 }, (_, i) => `r${pad(i, 5)}`));
    const filter = "PartitionKey eq 'big'";

    let r0 = counter.rows, q0 = counter.requests;
    let n = 0;
    for await (const e of c.listEntities({ queryOptions: { filter } })) n += e.partitionKey === "big" ? 1 : 0;
    assert.equal(n, 10000);
    const full = counter.rows - r0, fullRequests = counter.requests - q0;

    r0 = counter.rows;
    q0 = counter.requests;
    n = 0;
    for await (const page of c.listEntities({ queryOptions: { filter } }).byPage({ maxPageSize: 100 })) n += page.length;
    assert.equal(n, 10000);
    const paged = counter.rows - r0, pagedRequests = counter.requests - q0;
    console.log(`# rows the service sent: listing ${full} in ${fullRequests} requests, ` +
      `pages of 100 ${paged} in ${pagedRequests} requests`);
    assert.ok(full >= 10000, `listing: ${full} rows`);
    assert.ok(paged <= 2 * full, `pages of 100: ${paged} rows, one listing ${full}`);
  });

  test("a SAS key range is read alone, and its continuations stay inside it", () => sasRange(px, t));
});

// client.mjs -- a minimal Azure Table REST client for load generation.
//
// Every request is signed with Shared Key Lite for the development account
// and speaks JSON without metadata, so the two targets (Azurite and
// mtable-proxy) see byte-for-byte the same requests. It is deliberately not
// the Azure SDK: the SDK's per-request pipeline costs far more client CPU
// than the servers we measure, and a benchmark whose client is the
// bottleneck measures the client.
//
// Responses are drained but not parsed unless the caller asks (parse: true);
// the load loops only look at the status code and byte count.

import { createHmac } from "node:crypto";
import http from "node:http";

export const DEV_ACCOUNT = "devstoreaccount1";
export const DEV_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
export const API_VERSION = "2019-02-02";

// Shared Key Lite for the Table service: HMAC-SHA256 over
//   x-ms-date "\n" "/" account "/" account "/" path
// (path-style URLs put the account in the path, so it appears twice). The
// query string is not signed, except ?comp=, which this client never sends.
export function signLite(key, account, date, path) {
  const toSign = `${date}\n/${account}/${account}/${path}`;
  return createHmac("sha256", key).update(toSign, "utf8").digest("base64");
}

export class TableClient {
  // host, port: the target; concurrency: sockets kept open (one per
  // in-flight request).
  constructor({ host, port, account = DEV_ACCOUNT, key = DEV_KEY, concurrency = 16 }) {
    this.host = host;
    this.port = port;
    this.account = account;
    this.key = Buffer.from(key, "base64");
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets: concurrency,
      maxFreeSockets: concurrency,
      keepAliveMsecs: 1000,
    });
    // The date has a one-second resolution, so one HMAC key schedule per
    // (second, path) would do; HMAC-SHA256 of a short string is cheap next to
    // an HTTP round trip, so no cache.
    this.dateSecond = 0;
    this.date = "";
  }

  currentDate() {
    const s = Math.floor(Date.now() / 1000);
    if (s !== this.dateSecond) {
      this.dateSecond = s;
      this.date = new Date(s * 1000).toUTCString();
    }
    return this.date;
  }

  // One request. path is the part after "/<account>/", unsigned query
  // separate. Resolves { status, bytes, body?, headers, ns } where ns is
  // the latency in nanoseconds (first byte written to last byte read);
  // rejects only on a transport error.
  request(method, path, { query = "", body = null, headers = {}, parse = false } = {}) {
    const date = this.currentDate();
    const sig = signLite(this.key, this.account, date, path);
    const h = {
      "x-ms-date": date,
      "x-ms-version": API_VERSION,
      Accept: "application/json;odata=nometadata",
      DataServiceVersion: "3.0;",
      MaxDataServiceVersion: "3.0;NetFx",
      Authorization: `SharedKeyLite ${this.account}:${sig}`,
      ...headers,
    };
    let payload = null;
    if (body !== null) {
      payload = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
      h["Content-Type"] ??= "application/json";
      h["Content-Length"] = payload.length;
    } else if (method !== "GET" && method !== "HEAD") {
      h["Content-Length"] = 0;
    }
    const fullPath = `/${this.account}/${path}${query ? "?" + query : ""}`;
    return new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      const req = http.request(
        { host: this.host, port: this.port, method, path: fullPath, headers: h, agent: this.agent },
        (res) => {
          let bytes = 0;
          const chunks = parse || res.statusCode >= 400 ? [] : null;
          res.on("data", (c) => {
            bytes += c.length;
            if (chunks) chunks.push(c);
          });
          res.on("end", () => {
            const ns = Number(process.hrtime.bigint() - t0);
            const out = { status: res.statusCode, bytes, headers: res.headers, ns };
            if (chunks) out.body = Buffer.concat(chunks).toString("utf8");
            resolve(out);
          });
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  }

  close() {
    this.agent.destroy();
  }
}

// Paths and bodies of the operations the benchmark runs; the same strings
// go to both targets.

export const entityPath = (table, pk, rk) => `${table}(PartitionKey='${pk}',RowKey='${rk}')`;

export const partitionQuery = (pk, top) =>
  `$filter=PartitionKey%20eq%20'${pk}'&$top=${top}`;

// A row of a typical size (about 200 bytes of JSON): a few strings, numbers
// and a boolean, the kind of entity an application keeps.
export function makeEntity(pk, rk, n) {
  return {
    PartitionKey: pk,
    RowKey: rk,
    Name: `entity ${rk} of ${pk}`,
    Count: n,
    Score: n * 0.5,
    Active: n % 2 === 0,
    Note: "the quick brown fox jumps over the lazy dog",
  };
}

// The connection string of the development account at a table endpoint on
// the loopback (Azurite, or anything that forwards to it).
export function devConnectionString(port, account = DEV_ACCOUNT, key = DEV_KEY) {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${account};AccountKey=${key};` +
    `TableEndpoint=http://127.0.0.1:${port}/${account};`
  );
}

// An entity group transaction: the body and Content-Type of POST $batch
// holding one changeset. ops: [{ method, path, body?, headers? }], path as
// for request() (after "/<account>/"). hostPort and account make the
// absolute URLs the parts carry, as the SDKs write them.
export function batchRequest(hostPort, ops, account = DEV_ACCOUNT) {
  const batch = `batch_${Math.random().toString(16).slice(2)}`;
  const cs = `changeset_${Math.random().toString(16).slice(2)}`;
  const L = [`--${batch}`, `Content-Type: multipart/mixed; boundary=${cs}`, ""];
  for (const op of ops) {
    L.push(`--${cs}`, "Content-Type: application/http", "Content-Transfer-Encoding: binary", "");
    L.push(`${op.method} http://${hostPort}/${account}/${op.path} HTTP/1.1`);
    L.push("Accept: application/json;odata=nometadata", "DataServiceVersion: 3.0;");
    for (const [k, v] of Object.entries(op.headers ?? {})) L.push(`${k}: ${v}`);
    if (op.body !== undefined) {
      const json = JSON.stringify(op.body);
      L.push("Content-Type: application/json", `Content-Length: ${Buffer.byteLength(json)}`, "", json);
    } else {
      L.push("");
    }
  }
  L.push(`--${cs}--`, `--${batch}--`, "");
  return { body: L.join("\r\n"), contentType: `multipart/mixed; boundary=${batch}` };
}

// The status of every operation a $batch answer reports (one per op on
// success, the failing one alone on failure), read off its
// "HTTP/1.1 NNN" lines.
export function batchStatuses(text) {
  return [...(text ?? "").matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
}

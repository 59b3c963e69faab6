// docker/signed-request.mjs -- Shared Key signed table requests, signed the
// way the Azure SDKs sign them, against an mtable table endpoint.
//
//   node docker/signed-request.mjs http://127.0.0.1:10002/devstoreaccount1
//
// Creates a table, inserts an entity, reads it back and checks the answers;
// exits 0 and prints one summary line when all went as Azure would answer,
// 1 with the failing step otherwise. Account and key default to Azurite's
// development account (the image's defaults); MTABLE_ACCOUNT_NAME and
// MTABLE_ACCOUNT_KEY override them. Node's own crypto and fetch only, so it
// runs without npm packages.

import { createHmac, randomUUID } from "node:crypto";

const endpoint = process.argv[2];
if (!endpoint) {
  console.error("usage: node docker/signed-request.mjs http://HOST:PORT/ACCOUNT");
  process.exit(2);
}
const account = process.env.MTABLE_ACCOUNT_NAME ?? "devstoreaccount1";
const key = Buffer.from(
  process.env.MTABLE_ACCOUNT_KEY ??
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
  "base64",
);

// SharedKey for the Table service: VERB, Content-MD5, Content-Type, Date
// (x-ms-date) and the canonicalized resource, "/" + account + the path as
// sent (a path-style endpoint's path starts with the account too).
async function call(method, path, body) {
  const url = new URL(endpoint + path);
  const date = new Date().toUTCString();
  const type = body === undefined ? "" : "application/json";
  const resource = `/${account}${url.pathname}`;
  const toSign = [method, "", type, date, resource].join("\n");
  const sig = createHmac("sha256", key).update(toSign, "utf8").digest("base64");
  const headers = {
    "x-ms-date": date,
    "x-ms-version": "2019-02-02",
    "x-ms-client-request-id": randomUUID(),
    DataServiceVersion: "3.0",
    MaxDataServiceVersion: "3.0;NetFx",
    Accept: "application/json;odata=nometadata",
    Authorization: `SharedKey ${account}:${sig}`,
  };
  if (body !== undefined) headers["Content-Type"] = type;
  const r = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, text, json: text ? JSON.parse(text) : null, headers: r.headers };
}

function expect(step, r, status) {
  if (r.status !== status) {
    console.error(`${step}: status ${r.status}, want ${status}: ${r.text.slice(0, 300)}`);
    process.exit(1);
  }
}

const table = `smoke${Date.now()}`;
expect("create table", await call("POST", "/Tables", { TableName: table }), 201);
expect(
  "insert entity",
  await call("POST", `/${table}`, { PartitionKey: "p", RowKey: "r1", Count: 7, Name: "smoke" }),
  201,
);
const got = await call("GET", `/${table}(PartitionKey='p',RowKey='r1')`);
expect("read entity", got, 200);
if (got.json?.Count !== 7 || got.json?.Name !== "smoke") {
  console.error(`read entity: got ${got.text}`);
  process.exit(1);
}
// A wrong signature must be refused, or the checks above prove nothing.
const bad = await fetch(`${endpoint}/Tables`, {
  headers: {
    "x-ms-date": new Date().toUTCString(),
    "x-ms-version": "2019-02-02",
    Accept: "application/json;odata=nometadata",
    Authorization: `SharedKey ${account}:${Buffer.alloc(32).toString("base64")}`,
  },
});
if (bad.status !== 403) {
  console.error(`a request with a wrong signature: status ${bad.status}, want 403`);
  process.exit(1);
}
console.log(`table ${table} created, entity written and read back, a bad signature refused (403)`);

// entra.mjs -- what the Microsoft Entra ID tests need, made at test time:
// a private CA and a certificate for 127.0.0.1 (openssl), JWTs, and a
// local token endpoint that plays the parts of login.microsoftonline.com
// (client secret and workload identity) and of a managed identity
// endpoint.
//
// The token endpoint issues tokens the way Azurite's "--oauth basic"
// checks them: issuer https://sts.windows.net/<tenant>/, audience
// https://storage.azure.com, iat/nbf/exp; it signs them with an RSA key of
// its own (RS256), which Azurite does not check.

import { execFileSync } from "node:child_process";
import { createSign, generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import { join } from "node:path";

// A CA and a server certificate for 127.0.0.1 in dir; returns the paths
// {ca, cert, key} and the CA's PEM text (caPem).
export function makeCerts(dir) {
  const p = (f) => join(dir, f);
  const run = (...args) => execFileSync("openssl", args, { stdio: "pipe" });
  run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"),
    "-days", "2", "-subj", "/CN=mtable test CA");
  run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("server.key"), "-out", p("server.csr"),
    "-subj", "/CN=127.0.0.1");
  writeFileSync(p("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  run("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
    "-CAcreateserial", "-out", p("server.pem"), "-days", "2", "-extfile", p("san.ext"));
  return { ca: p("ca.pem"), cert: p("server.pem"), key: p("server.key"), caPem: readFileSync(p("ca.pem")) };
}

const b64url = (x) => Buffer.from(x).toString("base64url");

// An RSA signing key with its JWKS entry (kid given).
export function signingKey(kid) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid, use: "sig", alg: "RS256" };
  return { kid, privateKey, jwk };
}

// A JWT signed RS256 with key ({kid, privateKey}).
export function jwt(key, claims, header = {}) {
  const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: key.kid, ...header }));
  const body = b64url(JSON.stringify(claims));
  const sig = createSign("RSA-SHA256").update(`${head}.${body}`).sign(key.privateKey);
  return `${head}.${body}.${b64url(sig)}`;
}

// The claims of a storage token for tenant, valid lifetimeS from now.
export function storageClaims(tenant, lifetimeS, extra = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    aud: "https://storage.azure.com",
    iss: `https://sts.windows.net/${tenant}/`,
    iat: now,
    nbf: now - 1,
    exp: now + lifetimeS,
    tid: tenant,
    ...extra,
  };
}

function readBody(req) {
  return new Promise((ok) => {
    let s = "";
    req.setEncoding("utf8");
    req.on("data", (d) => (s += d));
    req.on("end", () => ok(s));
  });
}

// Starts the token endpoint on https://127.0.0.1:<port> with tls
// ({cert, key}). clients maps a client id to what it must present:
// {secret} or {assertion} (the federated token's text). Routes:
//   POST /<tenant>/oauth2/v2.0/token   client credentials, as Entra ID
//   GET  /msi/token?api-version=2018-02-01&resource=...   with Metadata: true
// Every token lives lifetimeS. failNext(clientId) makes that client's next
// request fail with 500; badNext(clientId) makes its next token one the
// table service finds expired. Returns {url, issued (clientId -> count),
// log (one entry a request), failNext, badNext, close()}.
export async function startTokenServer({ tls, tenant, clients, lifetimeS }) {
  const key = signingKey("issuer-1");
  const issued = new Map();
  const failing = new Set();
  const bad = new Set();
  const log = [];
  // Entra ID answers expires_in as a number; the identity endpoints give
  // strings, expires_on among them.
  const issue = (res, clientId, msi) => {
    issued.set(clientId, (issued.get(clientId) || 0) + 1);
    // A "bad" token says it lives lifetimeS but the service finds it
    // expired, as a revoked token or a far-off clock would look.
    const extra = bad.delete(clientId) ? { exp: Math.floor(Date.now() / 1000) - 30 } : {};
    const token = jwt(key, storageClaims(tenant, lifetimeS, { appid: clientId, oid: `oid-${clientId}`, ...extra }));
    const exp = msi
      ? { expires_in: String(lifetimeS), expires_on: String(Math.floor(Date.now() / 1000) + lifetimeS) }
      : { expires_in: lifetimeS };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ token_type: "Bearer", access_token: token, ...exp }));
  };
  const refuse = (res, status, error, description) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify({ error, error_description: description }));
  };
  const srv = createServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, async (req, res) => {
    const url = new URL(req.url, "https://127.0.0.1");
    const body = await readBody(req);
    if (req.method === "POST" && url.pathname === `/${tenant}/oauth2/v2.0/token`) {
      const f = new URLSearchParams(body);
      const id = f.get("client_id");
      const want = clients[id];
      log.push({ kind: "entra", client: id, at: Date.now() });
      if (f.get("grant_type") !== "client_credentials" || f.get("scope") !== "https://storage.azure.com/.default") {
        return refuse(res, 400, "invalid_request", "grant_type or scope");
      }
      if (!want) return refuse(res, 400, "unauthorized_client", "unknown client");
      if (failing.delete(id)) return refuse(res, 500, "temporarily_unavailable", "injected failure");
      if (want.secret !== undefined && f.get("client_secret") !== want.secret) {
        return refuse(res, 401, "invalid_client", "bad secret");
      }
      if (want.assertion !== undefined && (
        f.get("client_assertion") !== want.assertion ||
        f.get("client_assertion_type") !== "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")) {
        return refuse(res, 401, "invalid_client", "bad assertion");
      }
      return issue(res, id, false);
    }
    if (req.method === "GET" && url.pathname === "/msi/token") {
      const id = url.searchParams.get("client_id") || "system-assigned";
      log.push({ kind: "msi", client: id, at: Date.now() });
      if (req.headers.metadata !== "true" || url.searchParams.get("api-version") !== "2018-02-01" ||
        url.searchParams.get("resource") !== "https://storage.azure.com/") {
        return refuse(res, 400, "invalid_request", "metadata header, api-version or resource");
      }
      if (failing.delete(id)) return refuse(res, 500, "temporarily_unavailable", "injected failure");
      return issue(res, id, true);
    }
    refuse(res, 404, "not_found", url.pathname);
  });
  await new Promise((ok) => srv.listen(0, "127.0.0.1", ok));
  return {
    url: `https://127.0.0.1:${srv.address().port}`,
    issued,
    log,
    key,
    failNext: (id) => failing.add(id),
    badNext: (id) => bad.add(id),
    close: () => new Promise((ok) => { srv.closeAllConnections?.(); srv.close(ok); }),
  };
}

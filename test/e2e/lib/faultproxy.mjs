// faultproxy.mjs -- an HTTP proxy that sits between mtable-proxy and Azurite
// and injects the failures a real table service shows: 500 InternalError
// and 503 ServerBusy answers (Azure's JSON error bodies), slow answers,
// answers slower than the client's timeout, and connections dropped before
// the request reaches the service or after it was applied (the client
// never sees the answer of a write that happened).
//
//   const fp = await startFaultProxy({ upstream: "http://127.0.0.1:PORT", seed });
//   proxy --old fp.connectionString("mtold", key) --new fp.connectionString("mtnew", key)
//   fp.configure({ rate: 0.2, on: (r) => r.isRead, kinds: { error500: 1, dropAfter: 1 } });
//   fp.script({ match: (r) => ..., faults: ["dropAfter", "error500"], connection: "reused" });
//   fp.off(); fp.summary(); await fp.stop();
//
// Requests are forwarded unchanged (Shared Key signs the path, not the
// host), so one fault proxy serves every account of the Azurite behind it;
// the account is the first path segment.
//
// Which requests fail. A random schedule decides from a hash of (seed, the
// request's method, URL and body, how many times that same request was
// seen), so the same request meets the same fate in a replay whatever the
// order in which concurrent requests arrive. A request that failed
// maxConsecutive times within the last windowMs passes (concurrent clients
// send identical requests too, so the count is by time, not by attempt):
// with the default of 3 in 60 s, a client that tries 4 times in a row
// (mtable-proxy's backend client does) always gets through, which is what
// lets a test demand that reads succeed.
// Scripted rules come first: each names the requests it applies to and the
// faults to inject into its next matching requests, in order.
//
// Fault kinds:
//   error500     answer 500 InternalError; nothing forwarded
//   busy503      answer 503 ServerBusy; nothing forwarded
//   dropBefore   read the request, close the connection; nothing forwarded
//   dropAfter    forward, wait for the service's answer, close the
//                connection: the write applied, the client never knows
//   delay        forward after delayMs (inside any sane client timeout)
//   holdBefore   never forward; keep the connection open until the client
//                gives up (its timeout) or holdMs passes
//   holdAfter    forward, then keep the answer until the client gives up:
//                applied, and the client timed out
//   beingDeleted answer 409 TableBeingDeleted, as the service does for a
//                while (40 s or more) to a table recreated after a delete;
//                nothing forwarded
// Nothing is ever forwarded late: a request that was not forwarded when the
// connection closed never reaches the service, so a read after the client
// got its answer sees the final state.

import http from "node:http";
import { createHash, randomUUID } from "node:crypto";
import { hashUnit } from "./seed.mjs";
import { freePort } from "./harness.mjs";

export const FAULT_KINDS = [
  "error500", "busy503", "dropBefore", "dropAfter", "delay", "holdBefore", "holdAfter",
  "beingDeleted",
];

const ERRORS = {
  error500: [500, "InternalError", "Server encountered an internal error. Please try again after some time."],
  busy503: [503, "ServerBusy", "The server is busy."],
  beingDeleted: [409, "TableBeingDeleted", "The specified table is being deleted. Try operation later."],
};

function errorBody(code, message) {
  const id = randomUUID();
  return JSON.stringify({
    "odata.error": {
      code,
      message: { lang: "en-US", value: `${message}\nRequestId:${id}\nTime:${new Date().toISOString()}` },
    },
  });
}

// What a rule's predicate sees of a request.
function describeRequest(req, body) {
  const url = req.url;
  const path = url.split("?")[0];
  const parts = path.split("/").filter(Boolean);
  const account = parts[0] ?? "";
  const resource = decodeURIComponent(parts[1] ?? "");
  const table = resource.replace(/\(.*$/, "");
  const method = req.method;
  const tableLevel = table === "Tables" || table === "";
  const isBatch = resource === "$batch";
  const isRead = method === "GET" || method === "HEAD";
  return {
    method,
    url,
    path,
    account,
    table,
    resource,
    body,
    isBatch,
    tableLevel,
    isRead: isRead && !tableLevel,
    isWrite: !isRead && !tableLevel,
    fresh: req.socket._fpRequests === 1,
  };
}

// The request's identity for the schedule: a batch's multipart boundaries
// are random, so they are normalized away.
function signature(info) {
  const body = info.body.replace(/(batch|changeset)_[0-9A-Za-z-]+/g, "$1_x");
  return `${info.method} ${info.url} ${body}`;
}

export async function startFaultProxy({ upstream, seed = 0, name = "faults" }) {
  const up = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  const sockets = new Set();
  const holds = new Set();
  let cfg = null;
  let sigs = new Map();
  let holdsUsed = 0;
  const scripts = [];
  let keepAlive = true;
  const events = [];
  const counts = {}; // account -> {requests, reads, writes, <kind>: n}

  function bump(account, key) {
    counts[account] ??= { requests: 0 };
    counts[account][key] = (counts[account][key] ?? 0) + 1;
  }

  function decide(info) {
    for (const rule of scripts) {
      if (rule.done || !rule.match(info)) continue;
      // The connection condition picks the first request only; the later
      // faults go to whatever connections the client's retries use.
      if (rule.next === 0 && rule.connection === "reused" && info.fresh) continue;
      if (rule.next === 0 && rule.connection === "fresh" && !info.fresh) continue;
      const kind = rule.faults[rule.next++] ?? "pass";
      if (rule.next >= rule.faults.length) rule.done = true;
      rule.fired.push({ kind, fresh: info.fresh, method: info.method, url: info.url });
      return kind;
    }
    if (!cfg || !cfg.on(info)) return "pass";
    const sig = signature(info);
    let st = sigs.get(sig);
    if (!st) sigs.set(sig, (st = { seen: 0, faults: [] }));
    const n = st.seen++;
    const now = Date.now();
    while (st.faults.length && st.faults[0] < now - cfg.windowMs) st.faults.shift();
    if (st.faults.length >= cfg.maxConsecutive) return "pass";
    const [u1, u2] = hashUnit(`${seed}|${sig}|${n}`);
    if (u1 >= cfg.rate) return "pass";
    const entries = Object.entries(cfg.kinds).filter(([, w]) => w > 0);
    const total = entries.reduce((s, [, w]) => s + w, 0);
    let x = u2 * total;
    let kind = entries[entries.length - 1][0];
    for (const [k, w] of entries) {
      x -= w;
      if (x < 0) {
        kind = k;
        break;
      }
    }
    if (kind.startsWith("hold")) {
      if (holdsUsed >= cfg.maxHolds) return "pass";
      holdsUsed++;
    }
    if (kind !== "delay") st.faults.push(now);
    return kind;
  }

  function forward(req, body) {
    const headers = { ...req.headers };
    delete headers.expect;
    delete headers.connection;
    headers.host = up.host;
    return new Promise((ok, fail) => {
      const r = http.request(
        { host: up.hostname, port: up.port, method: req.method, path: req.url, headers, agent },
        (res) => {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => ok({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on("error", fail);
        },
      );
      r.on("error", fail);
      r.end(body);
    });
  }

  function reply(res, { status, headers, body }) {
    const h = { ...headers };
    delete h["transfer-encoding"];
    delete h.connection;
    delete h["keep-alive"];
    if (!keepAlive) h.connection = "close";
    h["content-length"] = String(body.length);
    res.writeHead(status, h);
    res.end(body);
  }

  function replyError(res, kind) {
    const [status, code, message] = ERRORS[kind];
    const body = Buffer.from(errorBody(code, message));
    reply(res, {
      status,
      headers: {
        "content-type": "application/json;odata=minimalmetadata;streaming=true;charset=utf-8",
        "x-ms-request-id": randomUUID(),
        "x-ms-version": "2019-02-02",
        "x-ms-error-code": code,
        date: new Date().toUTCString(),
      },
      body,
    });
  }

  // Keeps the connection open until the client closes it or ms pass.
  function hold(req, ms) {
    return new Promise((ok) => {
      const sock = req.socket;
      const h = { done: null };
      const finish = () => {
        clearTimeout(timer);
        sock.off("close", finish);
        holds.delete(h);
        ok();
      };
      h.done = finish;
      const timer = setTimeout(finish, ms);
      sock.on("close", finish);
      holds.add(h);
    });
  }

  async function handle(req, res, body) {
    const info = describeRequest(req, body.toString("utf8"));
    bump(info.account, "requests");
    bump(info.account, info.tableLevel ? "table" : info.isRead ? "reads" : "writes");
    const kind = decide(info);
    if (kind !== "pass") {
      bump(info.account, kind);
      events.push({
        t: Date.now(), kind, account: info.account, method: info.method,
        resource: info.resource.slice(0, 80), fresh: info.fresh,
        sig: createHash("sha1").update(signature(info)).digest("hex").slice(0, 10),
      });
    }
    try {
      switch (kind) {
        case "error500":
        case "busy503":
        case "beingDeleted":
          replyError(res, kind);
          return;
        case "dropBefore":
          req.socket.destroy();
          return;
        case "holdBefore":
          await hold(req, cfg?.holdMs ?? 60000);
          req.socket.destroy();
          return;
        case "delay": {
          const [lo, hi] = cfg?.delayMs ?? [100, 1000];
          const [u] = hashUnit(`${seed}|delay|${events.length}`);
          await new Promise((r) => setTimeout(r, lo + Math.floor(u * (hi - lo))));
          break;
        }
        default:
          break;
      }
      const answer = await forward(req, body);
      if (kind === "dropAfter") {
        req.socket.destroy();
        return;
      }
      if (kind === "holdAfter") {
        await hold(req, cfg?.holdMs ?? 60000);
        req.socket.destroy();
        return;
      }
      reply(res, answer);
    } catch (e) {
      // The service itself failed (it should not): pass that on as a reset.
      events.push({ t: Date.now(), kind: "upstream-error", account: info.account, error: e.message });
      req.socket.destroy();
    }
  }

  const server = http.createServer((req, res) => {
    req.socket._fpRequests = (req.socket._fpRequests ?? 0) + 1;
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      handle(req, res, Buffer.concat(chunks));
    });
    req.on("error", () => {});
  });
  server.keepAliveTimeout = 5000;
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
  });
  server.on("clientError", (_e, s) => s.destroy());

  let port;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await new Promise((ok, fail) => {
        server.once("error", fail);
        server.listen(port, "127.0.0.1", () => {
          server.off("error", fail);
          ok();
        });
      });
      break;
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }

  const base = `http://127.0.0.1:${port}`;
  return {
    name,
    port,
    seed,
    endpoint: (account) => `${base}/${account}`,
    connectionString: (account, key) =>
      `DefaultEndpointsProtocol=http;AccountName=${account};AccountKey=${key};` +
      `TableEndpoint=${base}/${account};`,

    // Random schedule. on(info) selects the requests it may hit (default:
    // entity-level requests of any account); kinds weighs the fault kinds.
    configure({
      rate, on = (r) => !r.tableLevel, kinds, maxConsecutive = 3, windowMs = 60000,
      delayMs = [100, 1000], holdMs = 60000, maxHolds = 0,
    }) {
      for (const k of Object.keys(kinds)) {
        if (!FAULT_KINDS.includes(k)) throw new Error(`unknown fault kind ${k}`);
      }
      cfg = { rate, on, kinds, maxConsecutive, windowMs, delayMs, holdMs, maxHolds };
      sigs = new Map();
      holdsUsed = 0;
    },
    off() {
      cfg = null;
    },
    // A scripted rule: the next requests for which match(info) holds get
    // faults[0], faults[1], ... (the first of them only once a matching
    // request comes on a fresh or a reused connection, when connection
    // says so) ("pass" forwards one normally). Returns
    // the rule; rule.fired lists what was injected.
    script({ match, faults, connection = "any" }) {
      const rule = { match, faults, connection, next: 0, done: false, fired: [] };
      scripts.push(rule);
      return rule;
    },
    unscript(rule) {
      const i = scripts.indexOf(rule);
      if (i >= 0) scripts.splice(i, 1);
    },
    clearScripts() {
      scripts.length = 0;
    },
    // With false, every answer closes its connection, so that every
    // request comes on a new one.
    setKeepAlive(on) {
      keepAlive = on;
    },
    // Closes every idle connection, so the next request opens a new one.
    closeIdle() {
      for (const s of sockets) if (!s._httpMessage) s.destroy();
    },
    events,
    counts,
    // {kind: n} over every account, and the number of requests seen.
    summary() {
      const out = { requests: 0 };
      for (const c of Object.values(counts)) {
        for (const [k, v] of Object.entries(c)) out[k] = (out[k] ?? 0) + v;
      }
      out.faults = FAULT_KINDS.reduce((s, k) => s + (k === "delay" ? 0 : out[k] ?? 0), 0);
      return out;
    },
    async stop() {
      cfg = null;
      for (const h of [...holds]) h.done();
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise((ok) => server.close(() => ok()));
    },
  };
}

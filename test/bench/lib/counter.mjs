// counter.mjs -- a counting HTTP pass-through in front of a backend.
//
// The proxy under test is pointed at this instead of at Azurite; every
// request is forwarded unchanged (Shared Key signs the path, not the host
// and port, so signatures stay valid) and counted by kind: what it does to
// which resource, and what it got back. A $batch is counted once, with the
// number of operations it carried and the status of its first operation
// (the only one reported when the changeset failed). Counting, not timing:
// the pass-through sits in the driver process and adds latency, so nothing
// measured through it is a speed.

import http from "node:http";
import { batchStatuses } from "./client.mjs";

// The kind of a Table REST request: "GET entity", "GET query", "POST insert",
// "PUT entity", "MERGE entity", "DELETE entity", "$batch", "tables".
export function requestKind(method, url, headers = {}) {
  const path = decodeURIComponent(url.split("?")[0]);
  const rest = path.replace(/^\/[^/]+\//, ""); // after "/<account>/"
  const m = (headers["x-http-method"] && method === "POST" ? headers["x-http-method"] : method).toUpperCase();
  if (rest === "$batch") return "$batch";
  if (/^Tables\b/i.test(rest) || rest === "" || rest.startsWith("?")) return "tables";
  if (/\(PartitionKey=.*\)$/.test(rest)) return `${m} entity`;
  if (m === "GET") return "GET query";
  if (m === "POST") return "POST insert";
  return `${m} ${rest}`;
}

// Counts: total requests and, per "kind status", how many.
export class Counts {
  constructor() {
    this.total = 0;
    this.byKind = {};
  }

  add(key) {
    this.total++;
    this.byKind[key] = (this.byKind[key] || 0) + 1;
  }

  // What happened since `before` (an earlier snapshot).
  since(before) {
    const d = new Counts();
    d.total = this.total - before.total;
    for (const [k, v] of Object.entries(this.byKind)) {
      const n = v - (before.byKind[k] || 0);
      if (n) d.byKind[k] = n;
    }
    return d;
  }

  snapshot() {
    const c = new Counts();
    c.total = this.total;
    c.byKind = { ...this.byKind };
    return c;
  }
}

// Starts a pass-through on a free loopback port forwarding to
// 127.0.0.1:targetPort. Resolves { port, counts, close() }.
export function startCounter(targetPort, name) {
  const counts = new Counts();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const kind = requestKind(req.method, req.url, req.headers);
      let nops = 0;
      if (kind === "$batch")
        nops = (body.toString("latin1").match(/^(GET|POST|PUT|MERGE|PATCH|DELETE) \S+ HTTP\/1\.1/gm) || []).length;
      const up = http.request(
        {
          host: "127.0.0.1",
          port: targetPort,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: `127.0.0.1:${targetPort}` },
          agent,
        },
        (ur) => {
          const rchunks = [];
          ur.on("data", (c) => rchunks.push(c));
          ur.on("end", () => {
            const rbody = Buffer.concat(rchunks);
            let key = `${kind} ${ur.statusCode}`;
            if (kind === "$batch") {
              const inner = batchStatuses(rbody.toString("latin1"));
              key = `$batch(${nops} ops) ${ur.statusCode}/${inner.length === nops ? inner[0] : `failed ${inner[0]}`}`;
            }
            counts.add(key);
            res.writeHead(ur.statusCode, ur.headers);
            res.end(rbody);
          });
          ur.on("error", () => res.destroy());
        },
      );
      up.on("error", (e) => {
        counts.add(`${kind} transport-error ${e.code || e.message}`);
        res.destroy();
      });
      up.end(body);
    });
  });
  server.keepAliveTimeout = 300000;
  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      resolve({
        name,
        port: server.address().port,
        counts,
        close: () =>
          new Promise((r) => {
            agent.destroy();
            server.closeAllConnections?.();
            server.close(() => r());
          }),
      });
    });
  });
}

// Simulated sidecars: each speaks the configuration protocol over one
// keep-alive connection of its own, as mtable-proxy's client does (fetch
// the state, acknowledge it, long-poll for the next, renew inside the
// lease), without serving any table. Node's standard library only, so the
// benchmarks can use it too.

import net from "node:net";
import { waitFor } from "./harness.mjs";

export { waitFor };

// One HTTP/1.1 connection, requests one at a time, written and parsed by
// hand: thousands of these must cost the test little next to the server
// it measures (node's http module costs several times as much).
class Conn {
  constructor(base, token) {
    const u = new URL(base);
    this.auth = token ? `Authorization: Bearer ${token}\r\n` : "";
    this.host = u.hostname;
    this.port = Number(u.port);
    this.sock = null;
    this.buf = "";
    this.pending = null;
  }

  connect() {
    this.sock = net.createConnection({ host: this.host, port: this.port });
    this.sock.setNoDelay(true);
    this.sock.setEncoding("latin1");
    this.sock.on("data", (d) => {
      this.buf += d;
      this.parse();
    });
    const fail = (e) => {
      this.sock = null;
      this.buf = "";
      const p = this.pending;
      this.pending = null;
      p?.fail(e instanceof Error ? e : new Error("connection closed"));
    };
    this.sock.on("error", fail);
    this.sock.on("close", () => fail(new Error("connection closed")));
  }

  parse() {
    const end = this.buf.indexOf("\r\n\r\n");
    if (end < 0 || !this.pending) return;
    const head = this.buf.slice(0, end);
    const status = Number(head.slice(9, 12));
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const len = m ? Number(m[1]) : 0;
    if (this.buf.length < end + 4 + len) return;
    const text = this.buf.slice(end + 4, end + 4 + len);
    this.buf = this.buf.slice(end + 4 + len);
    const p = this.pending;
    this.pending = null;
    clearTimeout(p.timer);
    p.ok({ status, text });
  }

  request(method, path, body, timeoutMs) {
    if (!this.sock) this.connect();
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => {
        this.sock?.destroy();
        fail(new Error("timeout"));
      }, timeoutMs);
      this.pending = { ok, fail: (e) => { clearTimeout(timer); fail(e); }, timer };
      const data = body === undefined ? "" : JSON.stringify(body);
      this.sock.write(`${method} ${path} HTTP/1.1\r\nHost: ${this.host}\r\n${this.auth}` +
        (data ? `Content-Type: application/json\r\nContent-Length: ${data.length}\r\n` : "") +
        `\r\n${data}`);
    });
  }

  destroy() {
    this.sock?.destroy();
  }
}

export class SimSidecar {
  constructor(base, id, token) {
    this.base = base;
    this.id = id;
    this.conn = new Conn(base, token);
    this.view = null;
    this.acked = 0;
    this.leaseUntil = 0;
    this.firstLeaseAt = 0;
    this.stopped = false;
    this.errors = 0;
  }

  async ack() {
    const v = this.view;
    const sent = Date.now();
    const r = await this.conn.request("PUT", `/config/v1/acks/${encodeURIComponent(this.id)}`,
      { config_version: v.config_version, migration_id: v.migration_id }, 10000);
    if (r.status === 204) {
      this.acked = v.config_version;
      this.leaseUntil = sent + v.lease_ms;
      if (!this.firstLeaseAt) this.firstLeaseAt = Date.now();
      this.nextRenew = sent + Math.min(v.lease_ms / 3, 60000);
      return true;
    }
    return false;
  }

  async loop() {
    while (!this.stopped) {
      try {
        if (!this.view || this.acked !== this.view.config_version) {
          if (!this.view) this.view = await this.state(-1, 0, false);
          if (!(await this.ack())) await new Promise((ok) => setTimeout(ok, 200));
          continue;
        }
        const wait = Math.floor(Math.max(0, Math.min(30000, this.nextRenew - Date.now())));
        if (wait === 0) {
          await this.ack(); // renew
          continue;
        }
        this.view = await this.state(this.view.config_version, wait, this.view.settled);
      } catch (e) {
        this.errors++;
        this.lastError = e.message;
        await new Promise((ok) => setTimeout(ok, 200));
      }
    }
  }

  async state(after, wait, knownSettled) {
    const r = await this.conn.request("GET",
      `/config/v1/state?after=${after}&wait_ms=${wait}${knownSettled ? "" : "&settled=0"}`, undefined, wait + 5000);
    if (r.status !== 200) throw new Error(`state: ${r.status}`);
    return JSON.parse(r.text);
  }

  start() {
    this.running = this.loop();
    return this;
  }

  leased() {
    return Date.now() < this.leaseUntil;
  }

  async stop() {
    this.stopped = true;
    this.conn.destroy();
    await this.running?.catch(() => {});
  }
}

// n sidecars, started a few at a time so that the listen backlog is not
// the thing measured.
export async function startSims(base, n, prefix = "sim", token = "") {
  const sims = [];
  for (let i = 0; i < n; i++) {
    sims.push(new SimSidecar(base, `${prefix}${i}`, token).start());
    if (i % 200 === 199) await new Promise((ok) => setTimeout(ok, 20));
  }
  return sims;
}

// Connections that send half a request and then nothing: what a slow or
// hostile client holds open.
export async function halfOpen(port, n) {
  const socks = [];
  for (let i = 0; i < n; i++) {
    const s = net.createConnection({ host: "127.0.0.1", port });
    s.on("error", () => {});
    s.write("GET /admin/v1/status HTTP/1.1\r\nHost: x\r\n");
    socks.push(s);
    if (i % 200 === 199) await new Promise((ok) => setTimeout(ok, 10));
  }
  return { close: () => socks.forEach((s) => s.destroy()), count: () => socks.filter((s) => !s.destroyed).length };
}


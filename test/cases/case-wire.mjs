// case-wire.mjs -- requests on the wire for the REST cases: building and
// signing a request from its parsed form, sending it over a raw socket and
// reading one response, and the proxy process the cases run against.
//
// Raw sockets rather than node's http client: the cases include unknown
// verbs, malformed header lines and truncated bodies that a well-behaved
// client library refuses to send.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';

import { CaseSyntaxError, expand, expandBody, hasHeader, headerValue } from './case-format.mjs';

export const DEFAULT_VERSION = '2019-02-02';
const EXCHANGE_TIMEOUT_MS = Number(process.env.MTABLE_CASES_TIMEOUT || 20) * 1000;

// ---------------------------------------------------------------------------
// Requests on the wire.

function hmac(key, text) {
    return crypto.createHmac('sha256', key).update(text, 'utf8').digest('base64');
}

// The canonicalized resource of Shared Key (Lite) for the Table service:
// the account, the path as sent, and the comp parameter if present.
function canonicalResource(account, target) {
    const q = target.indexOf('?');
    const pathPart = q < 0 ? target : target.slice(0, q);
    let res = `/${account}${pathPart}`;
    if (q >= 0) {
        for (const kv of target.slice(q + 1).split('&')) {
            const eq = kv.indexOf('=');
            const k = eq < 0 ? kv : kv.slice(0, eq);
            if (k.toLowerCase() === 'comp') {
                res += `?comp=${eq < 0 ? '' : kv.slice(eq + 1)}`;
                break;
            }
        }
    }
    return res;
}

function authorization(scheme, method, target, headers, account, key) {
    const date = headerValue(headers, 'x-ms-date') ?? headerValue(headers, 'Date') ?? '';
    const resource = canonicalResource(account, target);
    if (scheme === 'sharedkey') {
        const sts = [method, headerValue(headers, 'Content-MD5') ?? '',
            headerValue(headers, 'Content-Type') ?? '', date, resource].join('\n');
        return `SharedKey ${account}:${hmac(key, sts)}`;
    }
    return `SharedKeyLite ${account}:${hmac(key, `${date}\n${resource}`)}`;
}

// Builds the bytes of one request from its parsed form.
export function buildRequest(req, vars, target) {
    const method = req.method;
    const sentTarget = req.target.startsWith('!') ? expand(req.target.slice(1), vars)
        : `${target.prefix}${expand(req.target, vars)}`;
    let auth = 'sharedkeylite';
    let headers = [];
    for (const h of req.headers) {
        if (h.raw !== undefined) {
            headers.push({ raw: expand(h.raw, vars) });
        } else if (h.name.toLowerCase() === 'x-case-auth') {
            auth = h.value.toLowerCase();
        } else {
            headers.push({ name: h.name, value: expand(h.value, vars) });
        }
    }
    if (!['sharedkeylite', 'sharedkey', 'none', 'bad'].includes(auth))
        throw new CaseSyntaxError(`X-Case-Auth: '${auth}' is not one of none, bad, sharedkey, sharedkeylite`);
    const contentType = headerValue(headers, 'Content-Type') || '';
    const body = req.body === null ? null
        : expandBody(req.body, vars, /^\s*multipart\//i.test(contentType));
    const now = new Date().toUTCString();
    const defaults = [['Host', target.host], ['x-ms-version', DEFAULT_VERSION], ['x-ms-date', now],
        ['Date', now]];
    for (const [n, v] of defaults)
        if (!hasHeader(headers, n))
            headers.push({ name: n, value: v });
    if (!hasHeader(headers, 'Content-Length') && !hasHeader(headers, 'Transfer-Encoding') &&
        (body !== null || ['POST', 'PUT', 'MERGE', 'PATCH'].includes(method)))
        headers.push({ name: 'Content-Length', value: String(body ? body.length : 0) });
    if (!hasHeader(headers, 'Connection'))
        headers.push({ name: 'Connection', value: 'close' });
    // "<omit>" removes a header the driver would otherwise add.
    headers = headers.filter((h) => h.raw !== undefined || h.value !== '<omit>');
    if (auth !== 'none' && !hasHeader(headers, 'Authorization')) {
        const key = auth === 'bad' ? crypto.createHash('sha512').update('not the key').digest()
            : Buffer.from(target.key, 'base64');
        headers.push({ name: 'Authorization',
            value: authorization(auth === 'sharedkey' ? 'sharedkey' : 'sharedkeylite', method,
                sentTarget, headers, target.account, key) });
    }
    const head = [`${method} ${sentTarget} ${req.version}`];
    for (const h of headers)
        head.push(h.raw !== undefined ? h.raw : `${h.name}: ${h.value}`);
    const bytes = Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n', 'latin1'), body || Buffer.alloc(0)]);
    return { bytes, summary: `${method} ${sentTarget}`, bodyLength: body ? body.length : 0 };
}

function decodeChunked(buf) {
    const out = [];
    let i = 0;
    for (;;) {
        const eol = buf.indexOf('\r\n', i);
        if (eol < 0)
            return null;
        const size = parseInt(buf.toString('latin1', i, eol).split(';')[0], 16);
        if (Number.isNaN(size))
            throw new Error('bad chunk size in the response');
        if (size === 0)
            return Buffer.concat(out);
        if (buf.length < eol + 2 + size + 2)
            return null;
        out.push(buf.subarray(eol + 2, eol + 2 + size));
        i = eol + 2 + size + 2;
    }
}

// Parses a complete response from buf, or returns null if more is needed
// (closed: the connection has ended, so whatever arrived is all there is).
function parseResponse(buf, method, closed) {
    let start = 0;
    for (;;) {
        const sep = buf.indexOf('\r\n\r\n', start);
        if (sep < 0)
            return null;
        const lines = buf.toString('latin1', start, sep).split('\r\n');
        const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
        if (!m)
            throw new Error(`not an HTTP response: ${JSON.stringify(lines[0].slice(0, 200))}`);
        const status = Number(m[2]);
        const headers = [];
        for (const l of lines.slice(1)) {
            const c = l.indexOf(':');
            if (c > 0)
                headers.push({ name: l.slice(0, c).trim(), value: l.slice(c + 1).trim() });
        }
        if (status >= 100 && status < 200) {
            start = sep + 4;
            continue;
        }
        let rest = buf.subarray(sep + 4);
        let body;
        const te = headerValue(headers, 'Transfer-Encoding');
        const cl = headerValue(headers, 'Content-Length');
        if (method === 'HEAD' || status === 204 || status === 304) {
            body = Buffer.alloc(0);
        } else if (te && /chunked/i.test(te)) {
            body = decodeChunked(rest);
            if (body === null)
                return closed ? { status, reason: m[3] || '', headers, body: rest, truncated: true } : null;
        } else if (cl !== undefined) {
            const n = Number(cl);
            if (rest.length < n)
                return closed ? { status, reason: m[3] || '', headers, body: rest, truncated: true } : null;
            body = rest.subarray(0, n);
        } else {
            if (!closed)
                return null;
            body = rest;
        }
        return { status, reason: m[3] || '', headers, body };
    }
}

// Sends one request and reads one response.
export function exchangeOnWire(target, built, method) {
    return new Promise((resolve, reject) => {
        const sock = net.connect({ host: target.hostname, port: target.port });
        let buf = Buffer.alloc(0);
        let done = false;
        const finish = (err, res) => {
            if (done)
                return;
            done = true;
            clearTimeout(timer);
            sock.destroy();
            if (err)
                reject(err);
            else
                resolve(res);
        };
        const timer = setTimeout(() => {
            const partial = buf.length ? `; received so far: ${JSON.stringify(buf.toString('latin1', 0, 300))}` : '';
            finish(new Error(`no complete response within ${EXCHANGE_TIMEOUT_MS / 1000}s${partial}`));
        }, EXCHANGE_TIMEOUT_MS);
        const tryParse = (closed) => {
            try {
                const res = parseResponse(buf, method, closed);
                if (res)
                    finish(null, res);
                else if (closed)
                    finish(new Error(buf.length
                        ? `the connection closed mid-response: ${JSON.stringify(buf.toString('latin1', 0, 300))}`
                        : 'the connection closed without a response'));
            } catch (e) {
                finish(e);
            }
        };
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            tryParse(false);
        });
        sock.on('end', () => tryParse(true));
        sock.on('close', () => tryParse(true));
        // A server may answer (e.g. 413) and close before it read the whole
        // body; what it answered is what counts.
        sock.on('error', (e) => {
            if (buf.length)
                tryParse(true);
            else
                finish(new Error(`connection error: ${e.message}`));
        });
        sock.on('connect', () => sock.end(built.bytes));
    });
}

// ---------------------------------------------------------------------------
// The proxy process.

export function randomHex(n) {
    return crypto.randomBytes(n).toString('hex').slice(0, n);
}

function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

function httpGet(host, port, pathName) {
    const bytes = Buffer.from(`GET ${pathName} HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`);
    return exchangeOnWire({ hostname: host, port }, { bytes }, 'GET');
}

export class ProxyProcess {
    // args: more flags after --listen and --admin-listen (e.g. --old/--new).
    constructor(bin, args = []) {
        this.bin = bin;
        this.args = args;
        this.child = null;
        this.log = '';
    }

    async start() {
        if (!fs.existsSync(this.bin))
            throw new Error(`the proxy binary ${this.bin} does not exist (build it, or set MTABLE_PROXY_BIN)`);
        this.port = await freePort();
        this.adminPort = await freePort();
        const env = { ...process.env };
        for (const k of ['MTABLE_ADMIN_TOKEN', 'MTABLE_ACCOUNT_NAME', 'MTABLE_ACCOUNT_KEY', 'MTABLE_LISTEN',
            'MTABLE_ADMIN_LISTEN'])
            delete env[k];
        this.log = '';
        this.child = spawn(this.bin, ['--listen', `127.0.0.1:${this.port}`, '--admin-listen',
            `127.0.0.1:${this.adminPort}`, ...this.args], { stdio: ['ignore', 'pipe', 'pipe'], env });
        const keep = (d) => {
            this.log = (this.log + d.toString()).slice(-20000);
        };
        this.child.stdout.on('data', keep);
        this.child.stderr.on('data', keep);
        this.exited = new Promise((resolve) => this.child.on('exit', (code, sig) => resolve({ code, sig })));
        const deadline = Date.now() + 15000;
        while (Date.now() < deadline) {
            if (this.child.exitCode !== null || this.child.signalCode !== null)
                throw new Error(`the proxy exited during start-up (${this.child.exitCode ?? this.child.signalCode}):\n${this.log}`);
            if (await this.healthy())
                return;
            await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`the proxy did not answer /healthz within 15s:\n${this.log}`);
    }

    alive() {
        return this.child && this.child.exitCode === null && this.child.signalCode === null;
    }

    async healthy() {
        try {
            const res = await httpGet('127.0.0.1', this.adminPort, '/healthz');
            return res.status === 200;
        } catch {
            return false;
        }
    }

    async stop() {
        if (!this.child || !this.alive())
            return;
        this.child.kill('SIGTERM');
        const timeout = new Promise((r) => setTimeout(() => r('timeout'), 5000));
        if (await Promise.race([this.exited, timeout]) === 'timeout') {
            this.child.kill('SIGKILL');
            await this.exited;
        }
    }
}

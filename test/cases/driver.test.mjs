// driver.test.mjs -- runs the declarative REST cases in test/cases/*.http.
//
// Each case file is a short conversation with a table endpoint: requests as
// an SDK (or a hostile client) would send them, and what Azure answers. The
// format is described in README.md beside this file. This runner starts
// mtable-proxy on free loopback ports, plays every file against it in name
// order, one describe() block per file and one test per exchange, and checks
// after each file that the proxy still answers /healthz. A file marked
// "# xfail: <reason>" is still played (so a crash is still caught) and is
// reported as a TODO with its reason, never as a pass; one that passes fails.
//
// The format is parsed and checked in case-format.mjs; requests are built,
// signed and sent in case-wire.mjs.
//
// Environment:
//   MTABLE_PROXY_BIN     the proxy binary (default build/proxy/mtable-proxy)
//   MTABLE_CASES_TARGET  http://HOST:PORT/ACCOUNT of an endpoint that is
//                        already running (e.g. Azurite): no proxy is started,
//                        files marked "# proxy-only:" are skipped, and there
//                        is no /healthz check
//   MTABLE_CASES_FILTER  a regular expression; only files whose name matches
//   MTABLE_CASES_TIMEOUT seconds allowed to one exchange (default 20)
//
// Only node's standard library is used, so the cases need no npm install.

import { after, before, describe, it } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { checkResponse, describeResponse, expand, headerValue, parseCaseFile } from './case-format.mjs';
import { ProxyProcess, buildRequest, exchangeOnWire, randomHex } from './case-wire.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const DEV_ACCOUNT = 'devstoreaccount1';
const DEV_KEY =
    'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

// ---------------------------------------------------------------------------
// Targets: the proxy started here, or an endpoint named in the environment.

function externalTarget(url) {
    const u = new URL(url);
    const prefix = u.pathname.replace(/\/+$/, '');
    const account = prefix.split('/').filter(Boolean).pop() || DEV_ACCOUNT;
    const port = Number(u.port || 80);
    return { hostname: u.hostname, port, host: `${u.hostname}:${port}`, prefix, account, key: DEV_KEY,
        base: `http://${u.hostname}:${port}${prefix}` };
}

function proxyTarget(proxy) {
    const host = `127.0.0.1:${proxy.port}`;
    return { hostname: '127.0.0.1', port: proxy.port, host, prefix: `/${DEV_ACCOUNT}`, account: DEV_ACCOUNT,
        key: DEV_KEY, base: `http://${host}/${DEV_ACCOUNT}` };
}

// ---------------------------------------------------------------------------
// Playing one file.

function tableName(stem) {
    return `c${stem.replace(/[^A-Za-z0-9]/g, '').toLowerCase().slice(0, 24)}${randomHex(8)}`;
}

function newVars(caseFile, target) {
    const stem = caseFile.name.replace(/\.http$/, '');
    return { table: tableName(stem), table2: tableName(stem), etag: undefined, prev: null, used: new Set(),
        created: new Set(), base: target.base, host: target.host, account: target.account };
}

// Tables this exchange asked to create, so they are removed afterwards.
function noteCreatedTable(req, vars) {
    if (req.method !== 'POST' || !/^\/Tables(\(\))?(\?|$)/.test(req.target) || req.body === null)
        return;
    try {
        const m = /"TableName"\s*:\s*"([^"]*)"/.exec(expand(req.body, vars));
        if (m)
            vars.created.add(m[1]);
        const x = /<d:TableName>([^<]*)<\/d:TableName>/.exec(expand(req.body, vars));
        if (x)
            vars.created.add(x[1]);
    } catch {
        // a body with an unresolvable variable fails the exchange itself
    }
}

async function runExchange(ex, vars, target) {
    const built = buildRequest(ex.request, vars, target);
    noteCreatedTable(ex.request, vars);
    const res = await exchangeOnWire(target, built, ex.request.method);
    vars.current = res;
    let errs;
    try {
        errs = checkResponse(ex.expect, res, vars);
    } catch (e) {
        errs = [e.message];
    } finally {
        vars.current = null;
    }
    vars.prev = res;
    const etag = headerValue(res.headers, 'ETag');
    if (etag !== undefined)
        vars.etag = etag;
    return { built, res, errs };
}

function exchangeLabel(caseFile, ex, k) {
    return `${k + 1}. ${ex.title || `${ex.request.method} ${ex.request.target}`} (${caseFile.name}:${ex.line})`;
}

function failureReport(caseFile, ex, k, outcome) {
    return `${exchangeLabel(caseFile, ex, k)}\n` +
        `request: ${outcome.built.summary} (${outcome.built.bodyLength} body bytes)\n` +
        `${outcome.errs.map((e) => `  ${e.replace(/\n/g, '\n  ')}`).join('\n')}\n` +
        `--- response ---\n${describeResponse(outcome.res)}`;
}

async function cleanup(vars, target) {
    const names = new Set(vars.created);
    for (const v of vars.used)
        names.add(vars[v]);
    for (const name of names) {
        if (!/^[A-Za-z][A-Za-z0-9]{2,62}$/.test(name))
            continue;
        const req = { method: 'DELETE', target: `/Tables('${name}')`, version: 'HTTP/1.1',
            headers: [{ name: 'Accept', value: 'application/json;odata=nometadata' }], body: null };
        try {
            await exchangeOnWire(target, buildRequest(req, vars, target), 'DELETE');
        } catch {
            // best effort
        }
    }
}

// ---------------------------------------------------------------------------
// The suite.

const external = process.env.MTABLE_CASES_TARGET;
const filter = process.env.MTABLE_CASES_FILTER ? new RegExp(process.env.MTABLE_CASES_FILTER) : null;
const files = fs.readdirSync(HERE).filter((f) => f.endsWith('.http') && (!filter || filter.test(f))).sort();
const proxy = external ? null : new ProxyProcess(process.env.MTABLE_PROXY_BIN ||
    path.join(ROOT, 'build', 'proxy', 'mtable-proxy'));
let target = external ? externalTarget(external) : null;
let startError = null;

if (proxy && fs.existsSync(proxy.bin)) {
    process.on('exit', () => {
        if (proxy.alive())
            proxy.child.kill('SIGKILL');
    });
    before(async () => {
        try {
            await proxy.start();
            target = proxyTarget(proxy);
        } catch (e) {
            startError = e;
        }
    });
    after(async () => {
        await proxy.stop();
    });
}

async function ensureTarget() {
    if (startError)
        throw startError;
    if (proxy && !proxy.alive()) {
        await proxy.start();
        target = proxyTarget(proxy);
    }
}

// A proxy that was never built fails once, not once per exchange.
const missingBinary = proxy && !fs.existsSync(proxy.bin);
if (missingBinary) {
    it('start mtable-proxy', () => {
        throw new Error(`the proxy binary ${proxy.bin} does not exist (build it, or set MTABLE_PROXY_BIN)`);
    });
}

for (const f of missingBinary ? [] : files) {
    let caseFile;
    try {
        caseFile = parseCaseFile(path.join(HERE, f));
    } catch (e) {
        it(f, () => {
            throw e;
        });
        continue;
    }
    const { xfail, 'proxy-only': proxyOnly } = caseFile.directives;
    if (external && proxyOnly) {
        it(f, { skip: `proxy-only: ${proxyOnly}` }, () => {});
        continue;
    }
    if (xfail) {
        // Played in full, reported as a TODO; a crash or a pass fails it.
        it(f, async (t) => {
            await ensureTarget();
            const vars = newVars(caseFile, target);
            const failed = [];
            try {
                for (const [k, ex] of caseFile.exchanges.entries()) {
                    try {
                        const out = await runExchange(ex, vars, target);
                        if (out.errs.length)
                            failed.push(k + 1);
                    } catch (e) {
                        failed.push(k + 1);
                    }
                }
            } finally {
                await cleanup(vars, target);
            }
            if (proxy && !(await proxy.healthy()))
                throw new Error(`the proxy stopped answering /healthz after this file:\n${proxy.log}`);
            // Strict: a file marked xfail that passes fails the run.
            if (!failed.length)
                throw new Error(`marked "# xfail: ${xfail}" but every exchange passes: remove the xfail line`);
            t.todo(`xfail: ${xfail} (${failed.length === 1 ? `exchange ${failed[0]} still fails`
                : `exchanges ${failed.join(', ')} still fail`})`);
        });
        continue;
    }
    describe(f, () => {
        let vars;
        before(async () => {
            try {
                await ensureTarget();
            } catch (e) {
                startError = startError || e;
            }
            if (target)
                vars = newVars(caseFile, target);
        });
        after(async () => {
            if (vars && target)
                await cleanup(vars, target);
        });
        for (const [k, ex] of caseFile.exchanges.entries()) {
            it(exchangeLabel(caseFile, ex, k), async () => {
                if (startError)
                    throw startError;
                const out = await runExchange(ex, vars, target);
                if (out.errs.length) {
                    const err = new Error(failureReport(caseFile, ex, k, out));
                    err.stack = err.message; // the report says where; node's frames do not help
                    throw err;
                }
            });
        }
        if (proxy) {
            it('the proxy still answers /healthz', async () => {
                if (startError)
                    throw startError;
                if (!proxy.alive()) {
                    const log = proxy.log;
                    const how = await proxy.exited;
                    await proxy.start(); // so the next files still run
                    target = proxyTarget(proxy);
                    throw new Error(`the proxy died (${how.code ?? how.sig}) during ${f}:\n${log}`);
                }
                if (!(await proxy.healthy()))
                    throw new Error(`the proxy is running but /healthz does not answer 200:\n${proxy.log}`);
            });
        }
    });
}


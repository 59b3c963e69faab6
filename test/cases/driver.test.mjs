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
// signed and sent in case-wire.mjs; one exchange is played and checked in
// case-play.mjs.
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

import { parseCaseFile } from './case-format.mjs';
import { DEV_ACCOUNT, DEV_KEY, cleanup, exchangeLabel, failureReport, newVars, proxyTarget, runExchange }
    from './case-play.mjs';
import { ProxyProcess } from './case-wire.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');

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


// phases.test.mjs -- the consistency harness: every REST case, played
// through the proxy in each phase of a migration and on two kinds of
// backend, must get the same answer everywhere.
//
// Runs, in this order (the first is the reference):
//   embedded backends, phases 0 1 2 3 4   (MTABLE_CASES_PHASES)
//   Azurite backends,  phases 0 2 4       (MTABLE_CASES_AZURITE_PHASES)
// Each run is a fresh proxy moved to its phase through the admin endpoint
// (POST /admin/v1/phase for 1 and 2, POST /admin/v1/migrate {"until"} for 3
// and 4), then every case file is played against it as driver.test.mjs
// plays them. An exchange passes when the file's own expectations hold and
// its answer -- status, error codes, the headers a client acts on, and the
// shape of the body -- equals the reference run's. Phases 1 and 3 run on
// the embedded backends only, to keep the added time small (about a minute
// in all); an empty list skips that backend. The Azurite runs put the
// proxy's --old and --new on two accounts of one Azurite (a pair per run,
// so no run sees another's state), started from test/e2e's installed
// packages: when they are missing those runs are reported as skipped.
//
// An exchange whose answer may legitimately differ between runs is listed in
// EXPECTED_DIFFERENCES with the reason; nothing else is left out.
//
// Environment: MTABLE_PROXY_BIN, MTABLE_CASES_FILTER, MTABLE_CASES_TIMEOUT as
// for driver.test.mjs; with MTABLE_CASES_TARGET (an endpoint that is not
// this proxy) there is nothing to run.

import { after, before, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { headerValue, parseCaseFile } from './case-format.mjs';
import { DEV_ACCOUNT, DEV_KEY, cleanup, exchangeLabel, failureReport, newVars, proxyTarget, runExchange }
    from './case-play.mjs';
import { ProxyProcess } from './case-wire.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const PHASES = ['use_old_hide_metadata', 'prefer_old', 'prefer_new', 'use_new_with_tombstones',
    'use_new_hide_metadata'];
const AZURITE_MAIN = path.join(ROOT, 'test', 'e2e', 'node_modules', 'azurite', 'dist', 'src', 'table', 'main.js');

// Exchanges whose answers may differ between runs: { file, exchanges
// (1-based), backend (absent: both), reason }. Such an exchange is still
// played and its answer compared, and the test's diagnostics say whether it
// differed, but neither its expectations nor the comparison fail the file.
const EXPECTED_DIFFERENCES = [
    {
        file: 'query-filter-numeric-widening.http',
        exchanges: [6, 9],
        backend: 'azurite',
        reason: 'Azurite judges numeric comparisons across EDM types its own way (an Int32 literal does not ' +
            'match an Int64 property, an Int64 literal against an Int32 or Double property fails with 500; ' +
            'test/e2e/lib/deviations.mjs, filter-type-coercion), and the proxy passes a client\'s filter on to ' +
            'the backend that holds the rows: which table that is, and whether it is asked with the filter or ' +
            'the keys alone, depends on the phase. Azure itself answers as the embedded backends do',
    },
];

function phaseList(env, dflt) {
    const text = process.env[env] ?? dflt;
    const list = text.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
    for (const n of list) {
        if (!Number.isInteger(n) || n < 0 || n > 4)
            throw new Error(`${env}: phases are 0 to 4, not ${text}`);
    }
    return list;
}

// ---------------------------------------------------------------------------
// The answer an exchange got, reduced to what must not depend on the phase.

const KEPT_HEADERS = ['Content-Type', 'Preference-Applied', 'x-ms-continuation-NextPartitionKey',
    'x-ms-continuation-NextRowKey', 'x-ms-continuation-NextTableName'];
const PRESENT_HEADERS = ['ETag', 'Location', 'DataServiceId', 'Content-ID'];

// JSON with every value replaced by its type; type annotations are kept,
// since a value's EDM type must not change with the phase.
function jsonShape(v, key = '') {
    if (Array.isArray(v))
        return v.map((x) => jsonShape(x));
    if (v && typeof v === 'object') {
        const o = {};
        for (const k of Object.keys(v).sort())
            o[k] = jsonShape(v[k], k);
        return o;
    }
    if (key.endsWith('odata.type') || key === 'code')
        return v;
    return v === null ? 'null' : typeof v;
}

function bodyShape(contentType, text) {
    if (!text)
        return 'empty';
    if (/json/.test(contentType)) {
        try {
            return jsonShape(JSON.parse(text));
        } catch {
            return 'not JSON';
        }
    }
    if (contentType.startsWith('multipart/')) {
        // Batch parts: their statuses and the error codes they carry.
        return { parts: [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]),
            codes: [...text.matchAll(/"code"\s*:\s*"([^"]*)"|<code>([^<]*)</gi)].map((m) => m[1] ?? m[2]) };
    }
    if (/xml/.test(contentType)) {
        return { elements: [...text.matchAll(/<([A-Za-z_][\w:.-]*)/g)].map((m) => m[1]).join(' '),
            codes: [...text.matchAll(/<(?:m:)?code>([^<]*)</gi)].map((m) => m[1]) };
    }
    return `${text.length} bytes of ${contentType || 'untyped'} text`;
}

function answerOf(res) {
    const contentType = (headerValue(res.headers, 'Content-Type') || '').toLowerCase();
    const headers = {};
    for (const h of KEPT_HEADERS)
        headers[h] = headerValue(res.headers, h) ?? null;
    for (const h of PRESENT_HEADERS)
        headers[h] = headerValue(res.headers, h) !== undefined;
    // The boundary of a multipart answer is random.
    if (headers['Content-Type'])
        headers['Content-Type'] = headers['Content-Type'].replace(/boundary=[^;]*/, 'boundary=*');
    return { status: res.status, code: headerValue(res.headers, 'x-ms-error-code') ?? null, headers,
        body: bodyShape(contentType, res.body ? res.body.toString('utf8') : '') };
}

// The first place two answers differ, as "where: a != b", or null.
function difference(a, b, where = '') {
    if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null)
        return a === b ? null : `${where || 'value'}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`;
    if (Array.isArray(a) !== Array.isArray(b))
        return `${where}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`;
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    if (Array.isArray(a) && a.length !== b.length)
        return `${where}: ${a.length} items != ${b.length} items`;
    for (const k of keys) {
        if (!(k in a) || !(k in b))
            return `${where}.${k}: ${k in a ? 'present' : 'absent'} != ${k in b ? 'present' : 'absent'}`;
        const d = difference(a[k], b[k], `${where}.${k}`);
        if (d)
            return d;
    }
    return null;
}

function expectedDifference(file, k, run) {
    return EXPECTED_DIFFERENCES.find((e) => e.file === file && e.exchanges.includes(k + 1) &&
        (!e.backend || e.backend === run.backend));
}

// ---------------------------------------------------------------------------
// Azurite, for the runs on Azure backends: one instance, an account pair
// per run.

function startAzurite(runs) {
    const accounts = { [DEV_ACCOUNT]: DEV_KEY };
    for (const r of runs) {
        accounts[`old${r.phase}`] = crypto.randomBytes(64).toString('base64');
        accounts[`new${r.phase}`] = crypto.randomBytes(64).toString('base64');
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mtable-cases-azurite-'));
    const az = { dir, accounts, log: '' };
    az.start = async () => {
        for (let attempt = 0; attempt < 3; attempt++) {
            az.port = await freePort();
            const env = { ...process.env,
                AZURITE_ACCOUNTS: Object.entries(accounts).map(([a, k]) => `${a}:${k}`).join(';') };
            az.child = spawn(process.execPath, [AZURITE_MAIN, '--tableHost', '127.0.0.1', '--tablePort',
                String(az.port), '--inMemoryPersistence', '--disableTelemetry', '--silent'],
            { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
            const keep = (d) => {
                az.log = (az.log + d.toString()).slice(-5000);
            };
            az.child.stdout.on('data', keep);
            az.child.stderr.on('data', keep);
            az.exited = new Promise((r) => az.child.on('exit', r));
            const deadline = Date.now() + 30000;
            while (Date.now() < deadline && az.child.exitCode === null) {
                try {
                    const r = await fetch(`http://127.0.0.1:${az.port}/${DEV_ACCOUNT}/Tables`,
                        { signal: AbortSignal.timeout(2000) });
                    await r.arrayBuffer();
                    return;
                } catch {
                    await new Promise((r) => setTimeout(r, 100));
                }
            }
            az.child.kill('SIGKILL');
            await az.exited;
        }
        throw new Error(`Azurite did not start:\n${az.log}`);
    };
    az.connectionString = (account) => `DefaultEndpointsProtocol=http;AccountName=${account};` +
        `AccountKey=${accounts[account]};TableEndpoint=http://127.0.0.1:${az.port}/${account};`;
    az.stop = async () => {
        if (az.child && az.child.exitCode === null && az.child.signalCode === null) {
            az.child.kill('SIGTERM');
            await az.exited;
        }
        fs.rmSync(dir, { recursive: true, force: true });
    };
    return az;
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

// ---------------------------------------------------------------------------
// Moving a proxy to a phase.

async function adminCall(proxy, method, where, body) {
    const r = await fetch(`http://127.0.0.1:${proxy.adminPort}${where}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30000),
    });
    const text = await r.text();
    let json = null;
    try {
        json = JSON.parse(text);
    } catch {
        // kept as text for the message
    }
    return { status: r.status, text, json };
}

async function toPhase(proxy, n) {
    for (let i = 1; i <= Math.min(n, 2); i++) {
        const r = await adminCall(proxy, 'POST', '/admin/v1/phase', { phase: PHASES[i] });
        if (r.status !== 200)
            throw new Error(`POST /admin/v1/phase ${PHASES[i]}: ${r.status} ${r.text}`);
    }
    if (n < 3)
        return;
    const r = await adminCall(proxy, 'POST', '/admin/v1/migrate', { until: PHASES[n] });
    if (r.status !== 202)
        throw new Error(`POST /admin/v1/migrate until ${PHASES[n]}: ${r.status} ${r.text}`);
    const deadline = Date.now() + 60000;
    for (;;) {
        const s = (await adminCall(proxy, 'GET', '/admin/v1/status')).json;
        const state = s?.migration?.state;
        if (s?.phase === PHASES[n] && (state === 'done' || state === 'idle'))
            return;
        if (state === 'failed' || Date.now() > deadline)
            throw new Error(`migration to ${PHASES[n]} did not finish: ${JSON.stringify(s)}`);
        await new Promise((res) => setTimeout(res, 50));
    }
}

// ---------------------------------------------------------------------------
// The runs.

const external = process.env.MTABLE_CASES_TARGET;
const filter = process.env.MTABLE_CASES_FILTER ? new RegExp(process.env.MTABLE_CASES_FILTER) : null;
const files = fs.readdirSync(HERE).filter((f) => f.endsWith('.http') && (!filter || filter.test(f))).sort();
const bin = process.env.MTABLE_PROXY_BIN || path.join(ROOT, 'build', 'proxy', 'mtable-proxy');
const runs = [
    ...phaseList('MTABLE_CASES_PHASES', '0,1,2,3,4').map((phase) => ({ backend: 'embedded', phase })),
    ...phaseList('MTABLE_CASES_AZURITE_PHASES', '0,1,2,3,4').map((phase) => ({ backend: 'azurite', phase })),
];
for (const r of runs)
    r.name = `${r.backend}:${r.phase}`;
const azuriteRuns = runs.filter((r) => r.backend === 'azurite');
const answers = new Map(); // "file#k" -> { run, answer } of the first run that played it
const cases = new Map();
const tableNames = new Map(); // file -> the {table, table2} of its first run
for (const f of files) {
    try {
        cases.set(f, parseCaseFile(path.join(HERE, f)));
    } catch {
        // driver.test.mjs reports a file that does not parse
    }
}

let azurite = null;
const skipAll = external ? 'MTABLE_CASES_TARGET names another endpoint: nothing to compare'
    : !fs.existsSync(bin) ? `the proxy binary ${bin} does not exist (build it, or set MTABLE_PROXY_BIN)` : false;
const azuriteMissing = fs.existsSync(AZURITE_MAIN) ? false
    : `Azurite is not installed (run 'npm ci' in test/e2e): ${AZURITE_MAIN} is missing`;

if (!skipAll && azuriteRuns.length && !azuriteMissing) {
    before(async () => {
        azurite = startAzurite(azuriteRuns);
        await azurite.start();
    });
    after(async () => {
        await azurite?.stop();
    });
    process.on('exit', () => azurite?.child?.kill('SIGKILL'));
}

for (const run of runs) {
    const skip = skipAll || (run.backend === 'azurite' && azuriteMissing);
    describe(`${run.backend} backends, phase ${run.phase} (${PHASES[run.phase]})`, { skip }, () => {
        const args = run.backend === 'azurite' ? () => ['--old', azurite.connectionString(`old${run.phase}`),
            '--new', azurite.connectionString(`new${run.phase}`)] : () => [];
        let proxy = null;
        let target = null;
        let startError = null;
        const start = async () => {
            proxy = new ProxyProcess(bin, args());
            await proxy.start();
            await toPhase(proxy, run.phase);
            target = proxyTarget(proxy);
        };
        before(async () => {
            try {
                await start();
            } catch (e) {
                startError = e;
            }
        });
        after(async () => {
            await proxy?.stop();
        });
        process.on('exit', () => {
            if (proxy?.alive())
                proxy.child.kill('SIGKILL');
        });
        for (const [f, caseFile] of cases) {
            it(f, async (t) => {
                if (startError)
                    throw startError;
                const vars = newVars(caseFile, target);
                // The same table names in every run (each run has backends of
                // its own), so that names in answers compare equal.
                const names = tableNames.get(f) ?? { table: vars.table, table2: vars.table2 };
                tableNames.set(f, names);
                Object.assign(vars, names);
                const problems = [];
                try {
                    for (const [k, ex] of caseFile.exchanges.entries()) {
                        let out;
                        try {
                            out = await runExchange(ex, vars, target);
                        } catch (e) {
                            problems.push(`${exchangeLabel(caseFile, ex, k)}: ${e.message}`);
                            break;
                        }
                        const key = `${f}#${k}`;
                        const answer = answerOf(out.res);
                        const ref = answers.get(key);
                        if (!ref)
                            answers.set(key, { run: run.name, answer });
                        const d = ref ? difference(ref.answer, answer) : null;
                        const listed = expectedDifference(f, k, run);
                        if (listed) {
                            t.diagnostic(`${exchangeLabel(caseFile, ex, k)}: may differ (${listed.reason}); ` +
                                (d || out.errs.length ? `it did: ${d || out.errs.join('; ')}` : 'it answered alike'));
                            continue;
                        }
                        if (out.errs.length)
                            problems.push(failureReport(caseFile, ex, k, out));
                        if (d)
                            problems.push(`${exchangeLabel(caseFile, ex, k)}: answered differently than on ` +
                                `${ref.run}: ${d}`);
                    }
                } finally {
                    await cleanup(vars, target);
                }
                if (!proxy.alive()) {
                    const log = proxy.log;
                    await start(); // so the next files still run
                    throw new Error(`the proxy died during ${f}:\n${log}`);
                }
                if (caseFile.directives.xfail) {
                    t.skip(`xfail: ${caseFile.directives.xfail}${problems.length ? '' : ' (now passes)'}`);
                    return;
                }
                if (problems.length) {
                    const err = new Error(`${run.name}: ${problems.length} exchange(s):\n${problems.join('\n')}`);
                    err.stack = err.message;
                    throw err;
                }
            });
        }
    });
}

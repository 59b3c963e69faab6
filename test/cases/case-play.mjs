// case-play.mjs -- playing one case file's exchanges against a target:
// the variables a file starts with, one exchange sent and checked, the
// report of a failed one, and the removal of the tables a file made. Shared
// by driver.test.mjs (one target) and phases.test.mjs (the proxy in every
// phase, over two kinds of backend).

import { checkResponse, describeResponse, expand, headerValue } from './case-format.mjs';
import { buildRequest, exchangeOnWire, randomHex } from './case-wire.mjs';

export const DEV_ACCOUNT = 'devstoreaccount1';
export const DEV_KEY =
    'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

// The target a proxy started on loopback offers.
export function proxyTarget(proxy) {
    const host = `127.0.0.1:${proxy.port}`;
    return { hostname: '127.0.0.1', port: proxy.port, host, prefix: `/${DEV_ACCOUNT}`, account: DEV_ACCOUNT,
        key: DEV_KEY, base: `http://${host}/${DEV_ACCOUNT}` };
}

// ---------------------------------------------------------------------------
// Playing one file.

function tableName(stem) {
    return `c${stem.replace(/[^A-Za-z0-9]/g, '').toLowerCase().slice(0, 24)}${randomHex(8)}`;
}

export function newVars(caseFile, target) {
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

export async function runExchange(ex, vars, target) {
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

export function exchangeLabel(caseFile, ex, k) {
    return `${k + 1}. ${ex.title || `${ex.request.method} ${ex.request.target}`} (${caseFile.name}:${ex.line})`;
}

export function failureReport(caseFile, ex, k, outcome) {
    return `${exchangeLabel(caseFile, ex, k)}\n` +
        `request: ${outcome.built.summary} (${outcome.built.bodyLength} body bytes)\n` +
        `${outcome.errs.map((e) => `  ${e.replace(/\n/g, '\n  ')}`).join('\n')}\n` +
        `--- response ---\n${describeResponse(outcome.res)}`;
}

export async function cleanup(vars, target) {
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


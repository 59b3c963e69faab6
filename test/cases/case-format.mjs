// case-format.mjs -- the .http case format: parsing files, expanding
// {{variables}}, and checking a response against an exchange's expectations.
// Reading a case file aside, pure functions over strings and buffers; the
// wire is case-wire.mjs.

import fs from 'node:fs';
import path from 'node:path';

export const BODY_MARKERS = ['~json', '~contains', '~not-contains', '~pattern', '~regex', '~empty'];

// ---------------------------------------------------------------------------
// Parsing case files.

export class CaseSyntaxError extends Error {}

export function isDirective(line) {
    return /^#\s*(xfail|proxy-only)\s*:/.test(line);
}

// Splits a file into its directives, description and exchanges.
export function parseCaseFile(file) {
    const text = fs.readFileSync(file, 'utf8').replace(/\r\n/g, '\n');
    const lines = text.split('\n');
    const chunks = [[]];
    const starts = [1];
    lines.forEach((line, i) => {
        if (line === '===') {
            chunks.push([]);
            starts.push(i + 2);
        } else {
            chunks[chunks.length - 1].push(line);
        }
    });
    const directives = {};
    const exchanges = [];
    chunks.forEach((chunk, k) => {
        for (const line of chunk) {
            const m = /^#\s*(xfail|proxy-only)\s*:\s*(.*)$/.exec(line);
            if (m)
                directives[m[1]] = m[2].trim() || m[1];
        }
        if (chunk.every((l) => l.trim() === '' || l.startsWith('#')))
            return; // a chunk of comments only (e.g. the preamble of an empty file)
        exchanges.push(parseExchange(chunk, starts[k], path.basename(file)));
    });
    if (exchanges.length === 0)
        throw new CaseSyntaxError(`${path.basename(file)}: no exchange`);
    return { file, name: path.basename(file), directives, exchanges };
}

function parseExchange(lines, firstLine, fileName) {
    const where = (i) => `${fileName}:${firstLine + i}`;
    let i = 0;
    let title = [];
    while (i < lines.length && (lines[i].trim() === '' || lines[i].startsWith('#'))) {
        if (lines[i].trim() === '' || isDirective(lines[i]))
            title = [];
        else
            title.push(lines[i].replace(/^#\s?/, ''));
        i++;
    }
    if (i === lines.length)
        throw new CaseSyntaxError(`${where(i)}: expected a request line`);
    const reqLineNo = i;
    const m = /^(\S+)\s+(\S+)(?:\s+(HTTP\/\d\.\d))?\s*$/.exec(lines[i]);
    if (!m)
        throw new CaseSyntaxError(`${where(i)}: bad request line '${lines[i]}'`);
    const request = { method: m[1], target: m[2], version: m[3] || 'HTTP/1.1', headers: [], body: null };
    i++;
    for (; i < lines.length && lines[i] !== '' && lines[i] !== '###'; i++) {
        const c = lines[i].indexOf(':');
        if (c <= 0)
            request.headers.push({ raw: lines[i] });
        else
            request.headers.push({ name: lines[i].slice(0, c).trim(), value: lines[i].slice(c + 1).trim() });
    }
    if (i < lines.length && lines[i] === '') {
        i++;
        const body = [];
        for (; i < lines.length && lines[i] !== '###'; i++)
            body.push(lines[i]);
        request.body = body.join('\n');
    }
    if (i === lines.length)
        throw new CaseSyntaxError(`${where(reqLineNo)}: the request has no '###' line`);
    i++; // ###
    while (i < lines.length && (lines[i].trim() === '' || lines[i].startsWith('#')))
        i++;
    const s = i < lines.length ? /^HTTP\s+(\S+)\s*$/.exec(lines[i]) : null;
    if (!s || !/^[1-5][0-9x]{2}$/.test(s[1]))
        throw new CaseSyntaxError(`${where(i)}: expected 'HTTP <status>' after '###'`);
    const expect = { status: s[1], headers: [], body: [] };
    i++;
    for (; i < lines.length && lines[i] !== ''; i++) {
        const c = lines[i].indexOf(':');
        if (c <= 0)
            throw new CaseSyntaxError(`${where(i)}: expected 'Name: value', got '${lines[i]}'`);
        expect.headers.push({ name: lines[i].slice(0, c).trim(), value: lines[i].slice(c + 1).trim() });
    }
    const bodyLines = lines.slice(i + 1);
    while (bodyLines.length && bodyLines[bodyLines.length - 1].trim() === '')
        bodyLines.pop();
    expect.body = parseBodyChecks(bodyLines);
    const line = firstLine + reqLineNo;
    return { title: title.join(' ').trim(), line, request, expect };
}

// In exact and ~pattern bodies a line ending with a backslash continues on
// the next line without a line break (long one-line JSON stays readable).
function joinContinued(lines, continued) {
    const text = lines.join('\n');
    return continued ? text.replace(/\\\n/g, '') : text;
}

// The expected body: exact text, or blocks each opened by a marker line.
function parseBodyChecks(lines) {
    if (lines.length === 0)
        return [];
    const first = lines[0].trim();
    if (!BODY_MARKERS.includes(first))
        return [{ kind: 'exact', text: joinContinued(lines, true) }];
    const checks = [];
    for (const line of lines) {
        if (BODY_MARKERS.includes(line.trim()))
            checks.push({ kind: line.trim().slice(1), lines: [] });
        else
            checks[checks.length - 1].lines.push(line);
    }
    for (const c of checks) {
        while (c.lines.length && c.lines[c.lines.length - 1].trim() === '')
            c.lines.pop();
        c.text = joinContinued(c.lines, c.kind === 'pattern');
        delete c.lines;
    }
    return checks;
}

// ---------------------------------------------------------------------------
// Variables.

export function escapeRegex(s) {
    return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export class VariableError extends Error {}

// The value of {{name}} (a name has no braces or white space), or throws.
function variable(name, vars) {
    const prev = /^(prev|prevurl|this):(.+)$/.exec(name);
    if (prev) {
        const res = prev[1] === 'this' ? vars.current : vars.prev;
        const v = res ? headerValue(res.headers, prev[2]) : undefined;
        if (v === undefined)
            throw new VariableError(`{{${name}}}: the ${prev[1] === 'this' ? 'response' : 'previous response'} has no ${prev[2]} header`);
        return prev[1] === 'prevurl' ? encodeURIComponent(v) : v;
    }
    switch (name) {
    case 'table':
    case 'table2':
        vars.used.add(name);
        return vars[name];
    case 'etag':
        if (vars.etag === undefined)
            throw new VariableError('{{etag}}: no response so far carried an ETag');
        return vars.etag;
    case 'date':
        return new Date().toUTCString();
    case 'base':
        return vars.base;
    case 'host':
        return vars.host;
    case 'account':
        return vars.account;
    default:
        throw new VariableError(`unknown variable {{${name}}}`);
    }
}

// Replaces {{...}} in text; in 'regex' mode the values are escaped. Plain
// variables go first, so they may appear inside {{repeat:N:text}}, whose
// text may span lines and has {i} replaced by the repetition's index.
export function expand(text, vars, mode = 'text') {
    const plain = text.replace(/\{\{(?!repeat:)([^{}\s]+)\}\}/g, (all, name) => {
        if (name === '*' || name === '**')
            throw new VariableError(`{{${name}}} is only allowed in a ~pattern body`);
        if (name.startsWith('bytes:'))
            throw new VariableError('{{bytes:...}} is only allowed in a request body');
        const v = variable(name, vars);
        return mode === 'regex' ? escapeRegex(v) : v;
    });
    return plain.replace(/\{\{repeat:(\d+):([\s\S]*?)\}\}/g, (all, n, t) => {
        const count = Number(n);
        if (count > 64 * 1024 * 1024)
            throw new VariableError(`{{repeat:${n}:...}}: too many repetitions`);
        if (!t.includes('{i}'))
            return t.repeat(count);
        const out = [];
        for (let k = 0; k < count; k++)
            out.push(t.replaceAll('{i}', String(k)));
        return out.join('');
    });
}

// A request body as bytes: {{bytes:HEX}} inserts raw bytes; line breaks
// become CRLF for multipart bodies, which also end with one.
export function expandBody(text, vars, crlf) {
    const parts = [];
    let last = 0;
    const re = /\{\{bytes:([0-9a-fA-F]*)\}\}/g;
    let m;
    const literal = (s) => {
        let t = expand(s, vars);
        if (crlf)
            t = t.replace(/\r?\n/g, '\r\n');
        parts.push(Buffer.from(t, 'utf8'));
    };
    while ((m = re.exec(text)) !== null) {
        literal(text.slice(last, m.index));
        parts.push(Buffer.from(m[1].replace(/\s/g, ''), 'hex'));
        last = re.lastIndex;
    }
    literal(text.slice(last));
    if (crlf)
        parts.push(Buffer.from('\r\n'));
    return Buffer.concat(parts);
}

// A ~pattern: literal text in which {{*}} matches within one JSON string or
// XML attribute (anything but an unescaped double quote) and {{**}}
// matches anything.
function patternRegex(text, vars) {
    const pieces = text.split(/(\{\{\*\*?\}\})/);
    let src = '';
    for (const p of pieces) {
        if (p === '{{*}}')
            src += '(?:[^"\\\\]|\\\\[\\s\\S])*';
        else if (p === '{{**}}')
            src += '[\\s\\S]*';
        else
            src += escapeRegex(expand(p, vars));
    }
    return new RegExp(`^${src}$`);
}

// ---------------------------------------------------------------------------
// Headers.

export function headerValue(headers, name) {
    const lower = name.toLowerCase();
    const h = headers.find((x) => x.name && x.name.toLowerCase() === lower);
    return h ? h.value : undefined;
}

export function hasHeader(headers, name) {
    return headerValue(headers, name) !== undefined;
}

// ---------------------------------------------------------------------------
// Checking a response.

function jsonPath(p, k) {
    return typeof k === 'number' ? `${p}[${k}]` : /^[A-Za-z_$][\w$]*$/.test(k) ? `${p}.${k}` : `${p}[${JSON.stringify(k)}]`;
}

// Subset match: objects may carry more members, arrays must have the same
// length, "<absent>" requires a member to be missing, a string starting
// with "~" is a regular expression ("~~" for a literal "~").
function jsonSubset(exp, act, p, errs, vars) {
    if (typeof exp === 'string') {
        if (exp.startsWith('~') && !exp.startsWith('~~')) {
            const re = new RegExp(expand(exp.slice(1), vars, 'regex'));
            if (typeof act !== 'string' || !re.test(act))
                errs.push(`${p}: expected a string matching /${re.source}/, got ${JSON.stringify(act)}`);
            return;
        }
        const want = expand(exp.startsWith('~~') ? exp.slice(1) : exp, vars);
        if (act !== want)
            errs.push(`${p}: expected ${JSON.stringify(want)}, got ${JSON.stringify(act)}`);
        return;
    }
    if (exp === null || typeof exp !== 'object') {
        if (act !== exp)
            errs.push(`${p}: expected ${JSON.stringify(exp)}, got ${JSON.stringify(act)}`);
        return;
    }
    if (Array.isArray(exp)) {
        if (!Array.isArray(act)) {
            errs.push(`${p}: expected an array, got ${JSON.stringify(act)?.slice(0, 200)}`);
            return;
        }
        if (act.length !== exp.length)
            errs.push(`${p}: expected ${exp.length} elements, got ${act.length}`);
        for (let k = 0; k < Math.min(exp.length, act.length); k++)
            jsonSubset(exp[k], act[k], jsonPath(p, k), errs, vars);
        return;
    }
    if (act === null || typeof act !== 'object' || Array.isArray(act)) {
        errs.push(`${p}: expected an object, got ${JSON.stringify(act)?.slice(0, 200)}`);
        return;
    }
    for (const [k, v] of Object.entries(exp)) {
        if (v === '<absent>') {
            if (Object.prototype.hasOwnProperty.call(act, k))
                errs.push(`${jsonPath(p, k)}: expected no such member, got ${JSON.stringify(act[k])}`);
        } else if (!Object.prototype.hasOwnProperty.call(act, k)) {
            errs.push(`${jsonPath(p, k)}: missing`);
        } else {
            jsonSubset(v, act[k], jsonPath(p, k), errs, vars);
        }
    }
}

// A line diff (longest common subsequence) of expected and actual text.
function lineDiff(expected, actual) {
    const a = expected.split('\n');
    const b = actual.split('\n');
    if (a.length * b.length > 4e6)
        return `- ${expected.slice(0, 2000)}\n+ ${actual.slice(0, 2000)}`;
    const n = a.length, m = b.length;
    const lcs = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
    for (let i = n - 1; i >= 0; i--)
        for (let j = m - 1; j >= 0; j--)
            lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    const out = [];
    let i = 0, j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && a[i] === b[j]) {
            out.push(`  ${a[i]}`);
            i++;
            j++;
        } else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) {
            out.push(`+ ${b[j++]}`);
        } else {
            out.push(`- ${a[i++]}`);
        }
    }
    return out.join('\n');
}

// Where a single-line expected text first departs from the actual one.
function firstDifference(expected, actual) {
    let k = 0;
    while (k < expected.length && k < actual.length && expected[k] === actual[k])
        k++;
    const from = Math.max(0, k - 40);
    return `first difference at character ${k}:\n` +
        `  expected ...${JSON.stringify(expected.slice(from, k + 80))}\n` +
        `  actual   ...${JSON.stringify(actual.slice(from, k + 80))}`;
}

// Where a ~pattern stops matching: the longest run of its pieces that
// matches a prefix of the body, and what comes next on each side.
function patternDifference(text, body, vars) {
    const pieces = text.split(/(\{\{\*\*?\}\})/);
    let src = '^';
    let at = 0;
    for (let k = 0; k < pieces.length; k++) {
        const p = pieces[k];
        const next = p === '{{*}}' ? '(?:[^"\\\\]|\\\\[\\s\\S])*?' : p === '{{**}}' ? '[\\s\\S]*?'
            : escapeRegex(expand(p, vars));
        const m = new RegExp(src + next).exec(body);
        if (!m) {
            // The longest start of this literal that still matches.
            const want = expand(p, vars);
            let lo = 0, hi = want.length, end = at;
            while (lo < hi) {
                const mid = Math.ceil((lo + hi) / 2);
                const mm = new RegExp(src + escapeRegex(want.slice(0, mid))).exec(body);
                if (mm) {
                    lo = mid;
                    end = mm[0].length;
                } else {
                    hi = mid - 1;
                }
            }
            if (lo === 0 && k > 0) {
                const mm = new RegExp(src).exec(body);
                end = mm ? mm[0].length : at;
            }
            return `matches up to character ${end}; then expected ${JSON.stringify(want.slice(lo, lo + 120))}\n` +
                `  actual: ${JSON.stringify(body.slice(end, end + 120))}`;
        }
        src += next;
        at = m[0].length;
    }
    return `the text matches up to character ${at} but the body goes on: ${JSON.stringify(body.slice(at, at + 120))}`;
}

export function checkResponse(expect, res, vars) {
    const errs = [];
    const st = String(res.status);
    const statusRe = new RegExp(`^${expect.status.replace(/x/g, '\\d')}$`);
    if (!statusRe.test(st))
        errs.push(`status: expected ${expect.status}, got ${st} ${res.reason}`);
    for (const h of expect.headers) {
        const act = headerValue(res.headers, h.name);
        if (h.value === '<absent>') {
            if (act !== undefined)
                errs.push(`header ${h.name}: expected absent, got ${JSON.stringify(act)}`);
        } else if (h.value.startsWith('~')) {
            const re = new RegExp(expand(h.value.slice(1).trim(), vars, 'regex'));
            if (act === undefined)
                errs.push(`header ${h.name}: expected /${re.source}/, got <absent>`);
            else if (!re.test(act))
                errs.push(`header ${h.name}: expected /${re.source}/, got ${JSON.stringify(act)}`);
        } else {
            const want = expand(h.value, vars);
            if (act !== want)
                errs.push(`header ${h.name}: expected ${JSON.stringify(want)}, got ${act === undefined ? '<absent>' : JSON.stringify(act)}`);
        }
    }
    const body = res.body.toString('utf8');
    for (const c of expect.body) {
        switch (c.kind) {
        case 'exact': {
            const want = expand(c.text, vars);
            if (body !== want)
                errs.push(`body: not the expected text\n${want.includes('\n') || body.includes('\n')
                    ? lineDiff(want, body) : firstDifference(want, body)}`);
            break;
        }
        case 'empty':
            if (body.length)
                errs.push(`body: expected empty, got ${body.length} bytes`);
            break;
        case 'contains': {
            const want = expand(c.text, vars);
            if (!body.includes(want))
                errs.push(`body: does not contain ${JSON.stringify(want)}`);
            break;
        }
        case 'not-contains': {
            const want = expand(c.text, vars);
            if (body.includes(want))
                errs.push(`body: contains ${JSON.stringify(want)}, which it must not`);
            break;
        }
        case 'regex': {
            const re = new RegExp(expand(c.text, vars, 'regex'), 'm');
            if (!re.test(body))
                errs.push(`body: does not match /${re.source}/m`);
            break;
        }
        case 'pattern': {
            const re = patternRegex(c.text, vars);
            if (!re.test(body))
                errs.push(`body: does not match the ~pattern\n${patternDifference(c.text, body, vars)}`);
            break;
        }
        case 'json': {
            let exp, act;
            try {
                exp = JSON.parse(c.text);
            } catch (e) {
                throw new CaseSyntaxError(`the ~json block is not JSON: ${e.message}`);
            }
            try {
                act = JSON.parse(body);
            } catch (e) {
                errs.push(`body: not JSON (${e.message})`);
                break;
            }
            jsonSubset(exp, act, '$', errs, vars);
            break;
        }
        }
    }
    return errs;
}

export function describeResponse(res) {
    const head = [`HTTP ${res.status} ${res.reason}${res.truncated ? ' (truncated)' : ''}`];
    for (const h of res.headers)
        head.push(`${h.name}: ${h.value}`);
    let body = res.body.toString('utf8');
    if (body.length > 3000)
        body = `${body.slice(0, 3000)}\n... (${res.body.length} bytes in all)`;
    return `${head.join('\n')}\n\n${body}`;
}


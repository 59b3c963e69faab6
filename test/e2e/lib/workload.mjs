// workload.mjs -- SDK workers that run a random mixed workload against a
// table and know exactly what the table must hold, the migrator driven to
// its end beside them, and the checks of the table afterwards.
//
// Ownership makes the model exact: worker w reads and writes row keys
// "w<w>-..." (in every partition; partitions are shared, so transactions
// of different workers meet in one partition) and nobody else writes them.
// A worker runs one operation at a time, so for its own keys it knows, at
// any moment between its operations, the one content each key must show
// (or that it must be absent). Reads of other workers' keys can only be
// checked for being well formed.
//
// Every write puts a fresh value into property s, so the state before and
// the state after a write always differ and a read tells which one holds.
// How a worker takes an answer:
//   2xx                the model moves to the state after the write
//   the refusal it     (409 insert of an existing row, 412 stale ETag, 404
//   asked for          update of a missing row) nothing changed; checked
//   412 on a kept ETag the row is read: unchanged data under a new ETag
//                      means the migrator rewrote the row (copy or cleanup
//                      gives a row a new ETag, as any writer would); the
//                      worker counts it and retries with the fresh ETag
//   5xx                the keys are read; an "outcome unknown" answer (500
//                      OperationTimedOut, "may have applied") allows either
//                      state, every other 5xx only the state before; a
//                      transaction must be all before or all after; then
//                      the worker retries, as an application would
//   anything else      a wrong answer: recorded, and the model follows
//                      what the read shows
// A wrong answer, a torn transaction, a read that disagrees with the model,
// a failed read (reads are retried inside the proxy) or a call that never
// returns is a violation; the test fails on any.

import { TableTransaction } from "@azure/data-tables";
import {
  all, call, eg, errorCode, legacyService, tableClient, TableBatch, TableQuery,
} from "./clients.mjs";
import { admin, proxyStatus, sleep } from "./harness.mjs";
import { rng } from "./seed.mjs";

export const RESERVED = "_mtable_";
const PROP_TYPES = { n: "Int32", f: "Double", s: "String", b: "Boolean", m: "Int32" };
const CALL_DEADLINE_MS = 150000;

// ---------------------------------------------------------------------------
// Errors.

// {status, code, message (first line of the service's message)} of an SDK
// error of either SDK.
export function opError(e) {
  const status = e.statusCode ?? e.response?.status ?? null;
  let message = String(e.message ?? "");
  try {
    const j = JSON.parse(message);
    message = j?.["odata.error"]?.message?.value ?? message;
  } catch {
    // not a JSON body
  }
  return {
    status: typeof status === "number" ? status : null,
    code: errorCode(e) ?? null,
    message: message.split("\n")[0],
    hang: !!e.hang,
  };
}

// The proxy says the outcome of a write is unknown with 500
// OperationTimedOut and a message saying it may have applied.
export function outcomeUnknown(err) {
  return err.status === 500 && (err.code === "OperationTimedOut" || /may have applied/i.test(err.message));
}

function fmtErr(err) {
  return `${err.status} ${err.code}: ${err.message}`;
}

function withDeadline(p, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, fail) => {
      timer = setTimeout(
        () => fail(Object.assign(new Error(`no answer after ${CALL_DEADLINE_MS} ms: ${what}`), { hang: true })),
        CALL_DEADLINE_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------
// Entities: user properties only, as plain values.

function sorted(o) {
  const out = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k];
  return out;
}

function dtProps(e) {
  const out = {};
  for (const [k, v] of Object.entries(e)) {
    if (["partitionKey", "rowKey", "etag", "timestamp"].includes(k) || k.startsWith("odata.")) continue;
    out[k] = v;
  }
  return sorted(out);
}

function legacyProps(e) {
  const out = {};
  for (const [k, v] of Object.entries(e)) {
    if (["PartitionKey", "RowKey", "Timestamp", ".metadata"].includes(k)) continue;
    out[k] = v && typeof v === "object" && "_" in v ? v._ : v;
  }
  return sorted(out);
}

export function sameProps(a, b) {
  if (a === null || b === null) return a === b;
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.is(a[k], b[k]) || a[k] === b[k]);
}

const show = (p) => (p === null ? "absent" : JSON.stringify(p));

// What is wrong with a row anybody may have written, or null.
function malformed(pk, rk, props, partitions) {
  if (!partitions.includes(pk)) return `unknown partition ${pk}`;
  if (typeof rk !== "string" || !/^w\d+-/.test(rk)) return `unexpected row key ${rk}`;
  for (const [k, v] of Object.entries(props)) {
    if (k.startsWith(RESERVED)) return `reserved property ${k}`;
    const type = PROP_TYPES[k];
    if (!type) return `unexpected property ${k}`;
    const ok = type === "Int32" ? Number.isInteger(v)
      : type === "Double" ? typeof v === "number" && !Number.isInteger(v)
        : type === "String" ? typeof v === "string" && /^w\d+#\d+$/.test(v)
          : typeof v === "boolean";
    if (!ok) return `property ${k}=${JSON.stringify(v)} is not a ${type} of this workload`;
  }
  if (!("s" in props)) return "no property s";
  return null;
}

// ---------------------------------------------------------------------------
// The two SDKs behind one interface. Writes resolve to {etag} (a
// transaction to one per op); get to {props, etag} or null; query to rows
// {pk, rk, props, etag}. Both are built without SDK retries: the worker
// sees every answer and retries itself.

function dtAdapter(t, table) {
  const c = tableClient(t, table);
  const ent = (pk, rk, p) => ({ partitionKey: pk, rowKey: rk, ...p });
  return {
    sdk: "data-tables",
    condDeleteInBatch: false,
    insert: async (pk, rk, p) => ({ etag: (await c.createEntity(ent(pk, rk, p))).etag }),
    upsert: async (pk, rk, p, mode) => ({ etag: (await c.upsertEntity(ent(pk, rk, p), mode)).etag }),
    update: async (pk, rk, p, mode, etag) =>
      ({ etag: (await c.updateEntity(ent(pk, rk, p), mode, { etag })).etag }),
    del: async (pk, rk, etag) => {
      await c.deleteEntity(pk, rk, { etag });
      return {};
    },
    batch: async (pk, ops) => {
      const tx = new TableTransaction();
      for (const op of ops) {
        if (op.type === "create") tx.createEntity(ent(pk, op.rk, op.props));
        else if (op.type === "upsert") tx.upsertEntity(ent(pk, op.rk, op.props), op.mode);
        else if (op.type === "update") tx.updateEntity(ent(pk, op.rk, op.props), op.mode, { etag: op.etag });
        else tx.deleteEntity(pk, op.rk); // always If-Match: * in this SDK
      }
      const r = await c.submitTransaction(tx.actions);
      return ops.map((_, i) => ({ etag: r.subResponses[i]?.etag ?? null }));
    },
    get: async (pk, rk) => {
      try {
        const e = await c.getEntity(pk, rk);
        return { props: dtProps(e), etag: e.etag };
      } catch (e) {
        if (e.statusCode === 404) return null;
        throw e;
      }
    },
    query: async (filter, pageSize) => {
      const rows = [];
      const it = c.listEntities(filter ? { queryOptions: { filter } } : {}).byPage({ maxPageSize: pageSize });
      for await (const page of it) {
        for (const e of page) rows.push({ pk: e.partitionKey, rk: e.rowKey, props: dtProps(e), etag: e.etag });
      }
      return rows;
    },
  };
}

function legacyAdapter(t, table) {
  const svc = legacyService(t);
  const gen = { n: eg.Int32, f: eg.Double, s: eg.String, b: eg.Boolean, m: eg.Int32 };
  const ent = (pk, rk, p = {}, etag) => {
    const x = { PartitionKey: eg.String(pk), RowKey: eg.String(rk) };
    for (const [k, v] of Object.entries(p)) x[k] = gen[k](v);
    if (etag) x[".metadata"] = { etag };
    return x;
  };
  const etagOf = (r) => r?.result?.[".metadata"]?.etag ?? null;
  return {
    sdk: "azure-storage",
    condDeleteInBatch: true,
    insert: async (pk, rk, p) => ({ etag: etagOf(await call(svc, "insertEntity", table, ent(pk, rk, p))) }),
    upsert: async (pk, rk, p, mode) => ({
      etag: etagOf(await call(svc, mode === "Merge" ? "insertOrMergeEntity" : "insertOrReplaceEntity", table, ent(pk, rk, p))),
    }),
    update: async (pk, rk, p, mode, etag) => ({
      etag: etagOf(await call(svc, mode === "Merge" ? "mergeEntity" : "replaceEntity", table, ent(pk, rk, p, etag))),
    }),
    del: async (pk, rk, etag) => {
      await call(svc, "deleteEntity", table, ent(pk, rk, {}, etag));
      return {};
    },
    batch: async (pk, ops) => {
      const b = new TableBatch();
      for (const op of ops) {
        if (op.type === "create") b.insertEntity(ent(pk, op.rk, op.props));
        else if (op.type === "upsert") {
          if (op.mode === "Merge") b.insertOrMergeEntity(ent(pk, op.rk, op.props));
          else b.insertOrReplaceEntity(ent(pk, op.rk, op.props));
        } else if (op.type === "update") {
          if (op.mode === "Merge") b.mergeEntity(ent(pk, op.rk, op.props, op.etag));
          else b.replaceEntity(ent(pk, op.rk, op.props, op.etag));
        } else b.deleteEntity(ent(pk, op.rk, {}, op.etag));
      }
      const r = await call(svc, "executeBatch", table, b);
      return ops.map((_, i) => ({ etag: r.result?.[i]?.entity?.[".metadata"]?.etag ?? null }));
    },
    get: async (pk, rk) => {
      try {
        const r = await call(svc, "retrieveEntity", table, pk, rk);
        return { props: legacyProps(r.result), etag: r.result[".metadata"]?.etag ?? null };
      } catch (e) {
        if (e.statusCode === 404) return null;
        throw e;
      }
    },
    query: async (filter, pageSize) => {
      const rows = [];
      let token = null;
      do {
        let q = new TableQuery().top(pageSize);
        if (filter) q = q.where(filter);
        const r = await call(svc, "queryEntities", table, q, token);
        for (const e of r.result.entries) {
          rows.push({ pk: e.PartitionKey._, rk: e.RowKey._, props: legacyProps(e), etag: e[".metadata"]?.etag ?? null });
        }
        token = r.result.continuationToken;
      } while (token);
      return rows;
    },
  };
}

// ---------------------------------------------------------------------------
// Filters the workers use, with the same predicate in JavaScript.

const q = (s) => `'${s.replace(/'/g, "''")}'`;

function makeFilter(r, worker, partitions) {
  const pk = r.pick(partitions);
  const k = r.int(0, 999);
  switch (r.int(0, 4)) {
    case 0: // the worker's own rows of one partition
      return {
        text: `PartitionKey eq ${q(pk)} and RowKey ge ${q(`w${worker}-`)} and RowKey lt ${q(`w${worker}.`)}`,
        test: (row) => row.pk === pk && row.rk.startsWith(`w${worker}-`),
      };
    case 1:
      return { text: `PartitionKey eq ${q(pk)} and n ge ${k}`, test: (row) => row.pk === pk && row.props.n >= k };
    case 2:
      return { text: `b eq true and n lt ${k}`, test: (row) => row.props.b === true && row.props.n < k };
    case 3:
      return {
        text: `PartitionKey eq ${q(pk)} and (f gt ${k}.5 or m ge 0)`,
        test: (row) => row.pk === pk && (row.props.f > k + 0.5 || (row.props.m ?? -1) >= 0),
      };
    default:
      return { text: `PartitionKey ge ${q(pk)}`, test: (row) => row.pk >= pk };
  }
}

// ---------------------------------------------------------------------------
// The worker.

const DEFAULT_WEIGHTS = {
  insert: 12, insertExisting: 2, upsertReplace: 8, upsertMerge: 8,
  updateReplace: 8, updateMerge: 8, updateStar: 3, updateStale: 3, updateMissing: 2,
  deleteEtag: 6, deleteStar: 3, deleteMissing: 1, transaction: 10,
  get: 10, getOther: 4, query: 6, scan: 1,
};

export class Worker {
  // shared: {registry: [[pk, rk]...] of every key ever used, phase: () => name}
  // faults: 5xx answers are expected (else each is a violation).
  // checkAfterWrite: read the rows back after every acknowledged write (and
  // compare the ETags answered with the rows' own); only where nothing
  // else rewrites rows meanwhile.
  constructor({ id, sdk, target, table, partitions, seed, shared, faults = false, checkAfterWrite = false, weights = DEFAULT_WEIGHTS }) {
    this.id = id;
    this.name = `w${id}`;
    this.api = sdk === "azure-storage" ? legacyAdapter(target, table) : dtAdapter(target, table);
    this.partitions = partitions;
    this.r = rng(seed + 7919 * (id + 1));
    this.shared = shared;
    this.faults = faults;
    this.checkAfterWrite = checkAfterWrite;
    this.weights = weights;
    this.model = new Map(); // "pk\0rk" -> {pk, rk, props|null, etag, stale}
    this.next = 0;
    this.seq = 0;
    this.dead = null;
    this.stats = {
      ops: {}, byPhase: {}, ok: 0, refused: {}, etag412: 0, retries: 0, errors: {},
      appliedDespiteError: 0, notApplied: 0, reads: 0, rowsRead: 0,
    };
    this.violations = [];
  }

  // -- model -----------------------------------------------------------------

  entry(pk, rk) {
    const k = `${pk}\0${rk}`;
    let e = this.model.get(k);
    if (!e) {
      e = { pk, rk, props: null, etag: null, stale: null };
      this.model.set(k, e);
      this.shared.registry.push([pk, rk]);
    }
    return e;
  }

  freshKey(pk = this.r.pick(this.partitions)) {
    return this.entry(pk, `w${this.id}-${String(this.next++).padStart(5, "0")}`);
  }

  // Keys written by the seed belong to their worker too.
  adopt(pk, rk, props, etag = null) {
    const e = this.entry(pk, rk);
    e.props = props;
    e.etag = etag;
    const m = /^w\d+-(\d+)$/.exec(rk);
    if (m) this.next = Math.max(this.next, Number(m[1]) + 1);
    return e;
  }

  setState(e, props, etag) {
    if (props !== null && e.props !== null && e.etag && etag && e.etag !== etag) e.stale = e.etag;
    e.props = props;
    e.etag = props === null ? null : etag ?? null;
  }

  present() {
    return [...this.model.values()].filter((e) => e.props !== null);
  }

  absent() {
    return [...this.model.values()].filter((e) => e.props === null);
  }

  // What the worker must see of its own rows.
  expected() {
    return this.present().map((e) => ({ pk: e.pk, rk: e.rk, props: e.props }));
  }

  props(full = true) {
    const p = { s: `w${this.id}#${++this.seq}` };
    if (full || this.r.chance(0.5)) p.n = this.r.int(0, 999);
    if (full || this.r.chance(0.5)) p.f = this.r.int(0, 999) + 0.25;
    if (full || this.r.chance(0.5)) p.b = this.r.chance(0.5);
    if (!full && this.r.chance(0.3)) p.m = this.r.int(0, 999);
    return sorted(p);
  }

  // -- bookkeeping -----------------------------------------------------------

  violation(what, detail = {}) {
    const v = { worker: this.name, sdk: this.api.sdk, phase: this.shared.phase(), what, ...detail };
    this.violations.push(v);
    this.shared.onViolation?.(v);
  }

  noteError(err) {
    const k = `${err.status} ${err.code}`;
    this.stats.errors[k] = (this.stats.errors[k] ?? 0) + 1;
  }

  async call(p, what) {
    return withDeadline(p, `${this.name} ${what}`);
  }

  // Reads an own key, retrying a failed read a few times (each failure is
  // a violation: the proxy retries reads itself). Updates the key's ETag.
  async readOwn(e, why) {
    for (let attempt = 0; ; attempt++) {
      try {
        this.stats.reads++;
        const got = await this.call(this.api.get(e.pk, e.rk), `get ${e.pk}/${e.rk}`);
        if (got) {
          if (e.etag && got.etag !== e.etag && e.props !== null) e.stale = e.etag;
          e.etag = got.etag;
        }
        return got;
      } catch (ex) {
        const err = opError(ex);
        this.noteError(err);
        this.violation(`read of ${e.pk}/${e.rk} failed (${why})`, { error: fmtErr(err) });
        if (err.hang || attempt >= 5) {
          this.dead = `cannot read ${e.pk}/${e.rk}: ${fmtErr(err)}`;
          throw ex;
        }
        await sleep(200 * (attempt + 1));
      }
    }
  }

  async observe(keys, why) {
    const out = [];
    for (const k of keys) {
      const got = await this.readOwn(k.e, why);
      out.push(got ? got.props : null);
    }
    return out;
  }

  // Runs one write (exec() sends it, reading ETags from the model when
  // called) over keys [{e, after}] and brings the model up to date.
  // expect: the refusal status asked for, or null. conditional: the write
  // uses kept ETags (a 412 may come from a migrator rewrite).
  async write({ label, keys, exec, expect = null, conditional = false, etagsSent = () => [] }) {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) this.stats.retries++;
      const before = keys.map((k) => k.e.props);
      const after = keys.map((k) => k.after);
      const sent = etagsSent();
      let res = null;
      let err = null;
      try {
        res = await this.call(exec(), label);
      } catch (ex) {
        err = opError(ex);
        if (err.hang) {
          this.violation(`${label}: no answer`, { error: err.message });
          this.dead = `hung: ${label}`;
          return;
        }
      }
      const ctx = { op: label, keys: keys.map((k) => `${k.e.pk}/${k.e.rk}`), attempt };
      if (!err) {
        if (expect) {
          const seen = await this.observe(keys, label);
          this.violation(`${label}: expected ${expect}, got a 2xx answer`, { ...ctx, before: before.map(show), seen: seen.map(show) });
          keys.forEach((k, i) => (k.e.props = seen[i]));
          return;
        }
        this.stats.ok++;
        const list = Array.isArray(res) ? res : [res];
        const etags = keys.map((_, i) => list[i]?.etag ?? null);
        if (this.checkAfterWrite) {
          const seen = await this.observe(keys, label);
          if (!seen.every((p, i) => sameProps(p, after[i]))) {
            this.violation(`${label}: acknowledged, but the rows do not show the write`, {
              ...ctx, before: before.map(show), after: after.map(show), seen: seen.map(show),
            });
            keys.forEach((k, i) => (k.e.props = seen[i]));
            return;
          }
          keys.forEach((k, i) => {
            if (after[i] !== null && etags[i] && k.e.etag !== etags[i]) {
              this.violation(`${label}: answered ETag ${etags[i]} for ${k.e.pk}/${k.e.rk}, whose ETag is ${k.e.etag}`, ctx);
            }
            k.e.props = after[i];
          });
          return;
        }
        keys.forEach((k, i) => this.setState(k.e, k.after, etags[i]));
        return;
      }
      this.noteError(err);
      if (err.status !== null && err.status >= 500 && !err.code) {
        this.violation(`${label}: ${err.status} without an Azure error code`, { error: fmtErr(err) });
      }
      if (expect && err.status === expect) {
        const k = String(expect);
        this.stats.refused[k] = (this.stats.refused[k] ?? 0) + 1;
        if (this.r.chance(0.3)) {
          const seen = await this.observe(keys, label);
          if (!seen.every((p, i) => sameProps(p, before[i]))) {
            this.violation(`${label}: refused with ${fmtErr(err)}, yet the data changed`, { ...ctx, before: before.map(show), seen: seen.map(show) });
            keys.forEach((kk, i) => (kk.e.props = seen[i]));
          }
        }
        return;
      }
      const seen = await this.observe(keys, label);
      const isBefore = seen.every((p, i) => sameProps(p, before[i]));
      const isAfter = seen.every((p, i) => sameProps(p, after[i]));
      const detail = { ...ctx, error: fmtErr(err), before: before.map(show), after: after.map(show), seen: seen.map(show) };
      const adopt = () => keys.forEach((k, i) => (k.e.props = seen[i]));

      if (expect) {
        // A write that must be refused must never apply, whatever the answer.
        if (!isBefore) {
          this.violation(`${label}: expected ${expect}, got ${fmtErr(err)}, and the data changed`, detail);
          adopt();
          return;
        }
        if (err.status !== null && err.status >= 500 && attempt < 12) {
          if (!this.faults) this.violation(`${label}: ${fmtErr(err)} with no fault injected`, detail);
          this.stats.notApplied++;
          await sleep(50 * Math.min(attempt + 1, 8));
          continue;
        }
        this.violation(`${label}: expected ${expect}, got ${fmtErr(err)}`, detail);
        return;
      }

      if (err.status === 412 && conditional && !expect) {
        if (isBefore) {
          // Unchanged data: the row was rewritten under a new ETag (the
          // migrator's copy or cleanup). The condition was really false
          // only if the row's ETag is no longer the one sent.
          const now = keys.map((k) => k.e.etag);
          if (sent.length && sent.every((s, i) => s === null || s === "*" || s === now[i])) {
            this.violation(`${label}: 412 although every ETag sent is still current`, { ...detail, etags: sent });
            return;
          }
          this.stats.etag412++;
          if (attempt < 8) continue;
          this.violation(`${label}: 412 after ${attempt + 1} fresh ETags`, detail);
          return;
        }
        this.violation(isAfter ? `${label}: the write applied, but the answer was 412` : `${label}: 412 and the data changed otherwise`, detail);
        adopt();
        return;
      }
      if (err.status !== null && err.status >= 500) {
        const unknown = outcomeUnknown(err);
        if (!this.faults) this.violation(`${label}: ${fmtErr(err)} with no fault injected`, detail);
        if (isAfter && !isBefore) {
          this.stats.appliedDespiteError++;
          if (!unknown) {
            this.violation(`${label}: the write applied, but the answer was ${err.status} ${err.code}, not an outcome-unknown error`, detail);
          }
          keys.forEach((k) => (k.e.props = k.after));
          return;
        }
        if (isBefore) {
          this.stats.notApplied++;
          if (attempt < 12) {
            await sleep(50 * Math.min(attempt + 1, 8));
            continue;
          }
          this.violation(`${label}: still failing after ${attempt + 1} attempts`, detail);
          return;
        }
        this.violation(`${label}: after ${err.status} ${err.code} the rows are neither all as before nor all as after (torn)`, detail);
        adopt();
        return;
      }
      this.violation(
        isAfter && !isBefore ? `${label}: the write applied, but the answer was ${err.status} ${err.code}`
          : isBefore ? `${label}: unexpected ${err.status} ${err.code}, nothing applied`
            : `${label}: unexpected ${err.status} ${err.code}, and the rows are torn`,
        detail,
      );
      adopt();
      return;
    }
  }

  // An ETag for a present key, read when the model lost it.
  async etagOf(e) {
    if (!e.etag) await this.readOwn(e, "fetch an ETag");
    return e.etag;
  }

  // -- operations ------------------------------------------------------------

  async step() {
    const kind = this.r.weighted(this.weights);
    const ran = await this[`op_${kind}`]();
    const name = ran === false ? null : kind;
    if (name) {
      this.stats.ops[name] = (this.stats.ops[name] ?? 0) + 1;
      const ph = this.shared.phase();
      this.stats.byPhase[ph] = (this.stats.byPhase[ph] ?? 0) + 1;
    }
  }

  async run(shouldStop) {
    while (!shouldStop() && !this.dead) {
      try {
        await this.step();
      } catch (ex) {
        if (!this.dead) {
          this.dead = `${ex.message}`;
          this.violation(`worker stopped: ${ex.message}`);
        }
      }
    }
  }

  pickPresent() {
    const p = this.present();
    return p.length ? this.r.pick(p) : null;
  }

  async op_insert() {
    const gone = this.absent();
    const e = gone.length && this.r.chance(0.3) ? this.r.pick(gone) : this.freshKey();
    const p = this.props();
    await this.write({ label: `insert ${e.pk}/${e.rk}`, keys: [{ e, after: p }], exec: () => this.api.insert(e.pk, e.rk, p) });
  }

  async op_insertExisting() {
    const e = this.pickPresent();
    if (!e) return false;
    const p = this.props();
    await this.write({ label: `insert existing ${e.pk}/${e.rk}`, keys: [{ e, after: p }], expect: 409, exec: () => this.api.insert(e.pk, e.rk, p) });
  }

  async upsert(mode) {
    const e = this.r.chance(0.8) && this.present().length ? this.pickPresent() : this.freshKey();
    const p = this.props(mode === "Replace");
    const after = mode === "Merge" && e.props ? sorted({ ...e.props, ...p }) : p;
    await this.write({ label: `upsert ${mode} ${e.pk}/${e.rk}`, keys: [{ e, after }], exec: () => this.api.upsert(e.pk, e.rk, p, mode) });
  }

  op_upsertReplace() {
    return this.upsert("Replace");
  }

  op_upsertMerge() {
    return this.upsert("Merge");
  }

  async update(mode, how) {
    const e = this.pickPresent();
    if (!e) return false;
    if (how === "stale" && !e.stale) return false;
    if (how === "etag") await this.etagOf(e);
    const p = this.props(mode === "Replace");
    const after = mode === "Merge" ? sorted({ ...e.props, ...p }) : p;
    const etag = () => (how === "stale" ? e.stale : how === "star" ? "*" : e.etag);
    await this.write({
      label: `update ${mode} (${how} ETag) ${e.pk}/${e.rk}`,
      keys: [{ e, after }],
      expect: how === "stale" ? 412 : null,
      conditional: how === "etag",
      etagsSent: () => [etag()],
      exec: () => this.api.update(e.pk, e.rk, p, mode, etag()),
    });
  }

  op_updateReplace() {
    return this.update("Replace", "etag");
  }

  op_updateMerge() {
    return this.update("Merge", "etag");
  }

  op_updateStar() {
    return this.update(this.r.chance(0.5) ? "Merge" : "Replace", "star");
  }

  op_updateStale() {
    return this.update(this.r.chance(0.5) ? "Merge" : "Replace", "stale");
  }

  async op_updateMissing() {
    const gone = this.absent();
    const e = gone.length ? this.r.pick(gone) : this.freshKey();
    const p = this.props(false);
    await this.write({ label: `update missing ${e.pk}/${e.rk}`, keys: [{ e, after: p }], expect: 404, exec: () => this.api.update(e.pk, e.rk, p, "Merge", "*") });
  }

  async del(how) {
    const e = this.pickPresent();
    if (!e) return false;
    if (how === "etag") await this.etagOf(e);
    const etag = () => (how === "etag" ? e.etag : "*");
    await this.write({
      label: `delete (${how} ETag) ${e.pk}/${e.rk}`,
      keys: [{ e, after: null }],
      conditional: how === "etag",
      etagsSent: () => [etag()],
      exec: () => this.api.del(e.pk, e.rk, etag()),
    });
  }

  op_deleteEtag() {
    return this.del("etag");
  }

  op_deleteStar() {
    return this.del("star");
  }

  async op_deleteMissing() {
    const gone = this.absent();
    if (!gone.length) return false;
    const e = this.r.pick(gone);
    await this.write({ label: `delete missing ${e.pk}/${e.rk}`, keys: [{ e, after: null }], expect: 404, exec: () => this.api.del(e.pk, e.rk, "*") });
  }

  async op_transaction() {
    const pk = this.r.pick(this.partitions);
    const mine = [...this.model.values()].filter((e) => e.pk === pk);
    const n = this.r.int(2, 5);
    const chosen = new Set();
    while (chosen.size < n) {
      const e = mine.length && this.r.chance(0.6) ? this.r.pick(mine) : this.freshKey(pk);
      chosen.add(e);
    }
    const plan = [];
    for (const e of chosen) {
      let type;
      if (e.props === null) type = this.r.pick(["create", "create", "upsertR", "upsertM"]);
      else type = this.r.pick(["upsertR", "upsertM", "updateR", "updateM", "delete"]);
      const p = this.props(type === "create" || type === "upsertR" || type === "updateR");
      const after = type === "delete" ? null
        : (type === "upsertM" || type === "updateM") && e.props ? sorted({ ...e.props, ...p }) : p;
      const conditional = type.startsWith("update") || (type === "delete" && this.api.condDeleteInBatch);
      if (conditional) await this.etagOf(e);
      plan.push({ e, type, p, after, conditional });
    }
    const ops = () => plan.map(({ e, type, p, conditional }) => {
      const etag = conditional ? e.etag : "*";
      if (type === "create") return { type: "create", rk: e.rk, props: p };
      if (type === "upsertR" || type === "upsertM") return { type: "upsert", rk: e.rk, props: p, mode: type === "upsertM" ? "Merge" : "Replace" };
      if (type === "updateR" || type === "updateM") return { type: "update", rk: e.rk, props: p, mode: type === "updateM" ? "Merge" : "Replace", etag };
      return { type: "delete", rk: e.rk, etag };
    });
    await this.write({
      label: `transaction [${plan.map((x) => `${x.type} ${x.e.rk}`).join(", ")}] in ${pk}`,
      keys: plan.map(({ e, after }) => ({ e, after })),
      conditional: plan.some((x) => x.conditional),
      etagsSent: () => plan.map((x) => (x.conditional ? x.e.etag : null)),
      exec: () => this.api.batch(pk, ops()),
    });
  }

  async op_get() {
    const e = this.r.chance(0.8) ? this.pickPresent() : this.r.pick(this.absent().concat([null]));
    if (!e) return false;
    const got = await this.readOwn(e, "point read");
    const seen = got ? got.props : null;
    if (!sameProps(seen, e.props)) {
      this.violation(`point read of ${e.pk}/${e.rk} disagrees with the acknowledged writes`, { want: show(e.props), seen: show(seen) });
      e.props = seen;
    }
  }

  async op_getOther() {
    const reg = this.shared.registry;
    if (!reg.length) return false;
    const [pk, rk] = this.r.pick(reg);
    if (rk.startsWith(`w${this.id}-`)) return false;
    try {
      this.stats.reads++;
      const got = await this.call(this.api.get(pk, rk), `get ${pk}/${rk}`);
      const bad = got && malformed(pk, rk, got.props, this.partitions);
      if (bad) this.violation(`point read of another worker's ${pk}/${rk}: ${bad}`, { seen: show(got.props) });
    } catch (ex) {
      const err = opError(ex);
      this.noteError(err);
      this.violation(`read of ${pk}/${rk} failed`, { error: fmtErr(err) });
    }
  }

  // A query's rows: in key order, each once, well formed, every row meeting
  // the filter, and the worker's own rows exactly the acknowledged ones
  // that meet the filter.
  checkRows(rows, filter, label) {
    let prev = null;
    let disorder = false;
    for (const row of rows) {
      const key = [row.pk, row.rk];
      if (!disorder && prev && !(prev[0] < key[0] || (prev[0] === key[0] && prev[1] < key[1]))) {
        this.violation(`${label}: rows out of order or repeated`, { prev: prev.join("/"), row: key.join("/") });
        disorder = true;
      }
      prev = key;
      const bad = malformed(row.pk, row.rk, row.props, this.partitions);
      if (bad) this.violation(`${label}: ${row.pk}/${row.rk}: ${bad}`);
      else if (filter && !filter.test(row)) this.violation(`${label}: ${row.pk}/${row.rk} does not meet the filter`, { seen: show(row.props) });
    }
    const mine = rows.filter((row) => row.rk.startsWith(`w${this.id}-`));
    const want = this.expected().filter((row) => !filter || filter.test(row))
      .sort((a, b) => (a.pk < b.pk ? -1 : a.pk > b.pk ? 1 : a.rk < b.rk ? -1 : a.rk > b.rk ? 1 : 0));
    const got = new Map(mine.map((row) => [`${row.pk}/${row.rk}`, row]));
    for (const w of want) {
      const g = got.get(`${w.pk}/${w.rk}`);
      if (!g) this.violation(`${label}: acknowledged row ${w.pk}/${w.rk} missing`, { want: show(w.props) });
      else if (!sameProps(g.props, w.props)) this.violation(`${label}: ${w.pk}/${w.rk} disagrees with the acknowledged writes`, { want: show(w.props), seen: show(g.props) });
      got.delete(`${w.pk}/${w.rk}`);
    }
    for (const g of got.values()) this.violation(`${label}: row ${g.pk}/${g.rk} present, but the worker deleted it or never wrote it`, { seen: show(g.props) });
    // The rows read carry current ETags of the worker's own keys.
    for (const row of mine) {
      const e = this.model.get(`${row.pk}\0${row.rk}`);
      if (e && row.etag && e.props !== null && sameProps(row.props, e.props)) {
        if (e.etag && e.etag !== row.etag) e.stale = e.etag;
        e.etag = row.etag;
      }
    }
  }

  async query(filter, pageSize, label) {
    try {
      this.stats.reads++;
      const rows = await this.call(this.api.query(filter?.text ?? null, pageSize), label);
      this.stats.rowsRead += rows.length;
      this.checkRows(rows, filter, label);
    } catch (ex) {
      const err = opError(ex);
      this.noteError(err);
      this.violation(`${label} failed`, { error: fmtErr(err) });
      if (err.hang) this.dead = `hung: ${label}`;
    }
  }

  op_query() {
    const f = makeFilter(this.r, this.id, this.partitions);
    const page = this.r.pick([5, 17, 100, 1000]);
    return this.query(f, page, `query "${f.text}" (pages of ${page})`);
  }

  op_scan() {
    const page = this.r.pick([50, 200, 1000]);
    return this.query(null, page, `scan of the table (pages of ${page})`);
  }

  // A final check of the worker's own rows through its own SDK.
  async finalCheck() {
    await this.query(null, 1000, "final scan");
  }
}

// ---------------------------------------------------------------------------
// Seeding, running, driving the migrator.

// Writes partitions x perPartition rows through the proxy (transactions of
// up to 100 rows), owned round-robin by the workers; tells each worker.
export async function seed(t, table, workers, partitions, perPartition) {
  const client = tableClient(t, table);
  for (const pk of partitions) {
    const rows = [];
    for (let i = 0; i < perPartition; i++) {
      const w = workers[i % workers.length];
      const e = w.freshKey(pk);
      rows.push({ w, e, props: w.props() });
    }
    for (let i = 0; i < rows.length; i += 100) {
      const chunk = rows.slice(i, i + 100);
      const r = await client.submitTransaction(chunk.map(({ e, props }) => ["create", { partitionKey: pk, rowKey: e.rk, ...props }]));
      chunk.forEach(({ w, e, props }, j) => w.setState(e, props, r.subResponses[j]?.etag ?? null));
    }
  }
}

// Runs the built-in migrator with POST /admin/v1/migrate and polls
// GET /admin/v1/status until it is done. stages ([{until, dwellMs}]) first
// runs it only up to a phase ({"until": PHASE}) and lets the clients work
// there for dwellMs before going on. A failed run is started again when
// restart is set (a migrator that dies must be able to start again and
// finish); every failure is returned.
// onFailure(failure, failuresInThisStage) and onStageDone(until) let a
// caller react (e.g. calm the faults it injects).
export async function runMigration(px, { onStatus, restart = false, timeoutMs = 150000, stages = [], onFailure, onStageDone } = {}) {
  const out = { phases: [], failures: [], final: null, polls: 0, copied: 0, cleaned: 0, switched: 0 };
  // Each run of the migrator counts from zero.
  let last = null;
  const account = () => {
    out.copied += last?.rows_copied ?? 0;
    out.cleaned += last?.rows_cleaned ?? 0;
    out.switched += last?.partitions_switched ?? 0;
    last = null;
  };
  const deadline = Date.now() + timeoutMs;
  const start = async (until) => {
    for (;;) {
      const r = until
        ? await admin(px, "POST", "/admin/v1/migrate", { until })
        : await admin(px, "POST", "/admin/v1/migrate");
      if (r.status === 202) return;
      if (r.status !== 409) throw new Error(`POST /admin/v1/migrate: ${r.status} ${r.text}`);
      await sleep(100);
    }
  };
  for (const { until, dwellMs = 0 } of [...stages, { until: null }]) {
    await start(until);
    let failed = 0;
    for (;;) {
      const s = await proxyStatus(px);
      out.polls++;
      onStatus?.(s);
      if (out.phases[out.phases.length - 1] !== s.phase) out.phases.push(s.phase);
      const state = s.migration?.state;
      last = s.migration;
      if (!until && state === "done") {
        account();
        await onStageDone?.(null);
        out.final = s;
        return out;
      }
      if (until && state === "idle" && s.phase === until) {
        account();
        await onStageDone?.(until);
        break;
      }
      if (state === "failed") {
        account();
        const f = { phase: s.phase, error: s.migration.error };
        out.failures.push(f);
        await onFailure?.(f, ++failed);
        if (!restart) throw new Error(`migration failed: ${JSON.stringify(s.migration)}`);
        await start(until);
      }
      if (Date.now() > deadline) {
        throw new Error(`migration not done after ${timeoutMs} ms: ${JSON.stringify(s)}; failures: ${JSON.stringify(out.failures.slice(-3))}`);
      }
      await sleep(50);
    }
    await sleep(dwellMs);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Checks of a whole table afterwards.

// Every row of a table through data-tables, with EDM types.
// client: a TableClient of one's own (default: t's, with its key).
export async function readTyped(t, table, client = tableClient(t, table)) {
  const rows = await all(client.listEntities({ disableTypeConversion: true }));
  return rows.map((e) => {
    const props = {};
    const types = {};
    for (const [k, v] of Object.entries(e)) {
      if (["partitionKey", "rowKey", "etag", "timestamp"].includes(k) || k.startsWith("odata.")) continue;
      const type = v && typeof v === "object" ? v.type : typeof v === "boolean" ? "Boolean" : typeof v === "string" ? "String" : typeof v;
      const raw = v && typeof v === "object" ? v.value : v;
      types[k] = type;
      props[k] = type === "Int32" || type === "Double" ? Number(raw) : type === "Boolean" ? raw === true || raw === "true" : raw;
    }
    return { pk: e.partitionKey, rk: e.rowKey, props: sorted(props), types };
  });
}

// Compares a table's rows with the expected ones ([{pk, rk, props}]);
// returns a list of differences (empty when equal), at most 20.
export function compareRows(rows, expected, label) {
  const problems = [];
  const want = new Map(expected.map((r) => [`${r.pk}/${r.rk}`, r]));
  for (const row of rows) {
    const key = `${row.pk}/${row.rk}`;
    if (row.rk.startsWith(RESERVED)) problems.push(`${label}: protocol row ${key}`);
    for (const k of Object.keys(row.props)) if (k.startsWith(RESERVED)) problems.push(`${label}: ${key} has protocol property ${k}`);
    for (const [k, type] of Object.entries(row.types ?? {})) {
      if (PROP_TYPES[k] && PROP_TYPES[k] !== type) problems.push(`${label}: ${key}.${k} is ${type}, not ${PROP_TYPES[k]}`);
    }
    const w = want.get(key);
    if (!w) {
      if (!row.rk.startsWith(RESERVED)) problems.push(`${label}: ${key} present, never acknowledged (or acknowledged deleted): ${show(row.props)}`);
    } else if (!sameProps(row.props, w.props)) {
      problems.push(`${label}: ${key} is ${show(row.props)}, acknowledged ${show(w.props)}`);
    }
    want.delete(key);
  }
  for (const [key, w] of want) problems.push(`${label}: acknowledged ${key} missing (${show(w.props)})`);
  return problems.slice(0, 20).concat(problems.length > 20 ? [`... ${problems.length - 20} more`] : []);
}

// Totals over workers for the test's diagnostics.
export function totals(workers) {
  const sum = (f) => workers.reduce((s, w) => s + f(w), 0);
  const merge = (f) => {
    const out = {};
    for (const w of workers) for (const [k, v] of Object.entries(f(w))) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  const ops = merge((w) => w.stats.ops);
  return {
    ops,
    opsTotal: Object.values(ops).reduce((a, b) => a + b, 0),
    byPhase: merge((w) => w.stats.byPhase),
    errors: merge((w) => w.stats.errors),
    refused: merge((w) => w.stats.refused),
    etag412: sum((w) => w.stats.etag412),
    retries: sum((w) => w.stats.retries),
    appliedDespiteError: sum((w) => w.stats.appliedDespiteError),
    notApplied: sum((w) => w.stats.notApplied),
    rowsRead: sum((w) => w.stats.rowsRead),
    violations: workers.flatMap((w) => w.violations),
  };
}

export function fmtCounts(o) {
  return Object.entries(o).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
}

// ---------------------------------------------------------------------------
// A whole run: workers over a migration, and the checks at the end.

// count workers on table, the last one on the legacy SDK, numbered from
// firstId. Sets of workers that share a table (through different proxies,
// say) must not share numbers, since a worker owns the row keys of its
// number; giving them one registry lets each read the others' rows.
export function makeWorkers({
  t, table, partitions, seed: s, faults = false, checkAfterWrite = false, weights, count = 4, onViolation,
  firstId = 0, registry = [],
}) {
  const shared = { registry, current: "use_old_hide_metadata", onViolation };
  shared.phase = () => shared.current;
  const workers = [];
  for (let i = 0; i < count; i++) {
    workers.push(new Worker({
      id: firstId + i, sdk: i === count - 1 ? "azure-storage" : "data-tables", target: t, table, partitions,
      seed: s, shared, faults, checkAfterWrite, ...(weights ? { weights } : {}),
    }));
  }
  return { workers, shared };
}

// Runs the workers until controller() resolves, stops them, and lets each
// check its own rows once more. Returns {error} (the controller's).
export async function workWhile(workers, controller) {
  let stop = false;
  const running = workers.map((w) => w.run(() => stop));
  let error = null;
  try {
    await controller();
  } catch (e) {
    error = e;
  } finally {
    stop = true;
    await Promise.all(running);
  }
  for (const w of workers) if (!w.dead) await w.finalCheck();
  return { error };
}

// Runs the workers for preludeMs in the current phase, then the migrator to
// its end beside them (see runMigration for stages), then afterMs more.
// Returns the migration's record and timings.
export async function workDuringMigration({ px, workers, shared, preludeMs = 1500, afterMs = 1500, stages = [], restart = false, timeoutMs = 150000, onFailure, onStageDone }) {
  const t0 = Date.now();
  let mig = null;
  let migMs = 0;
  const { error } = await workWhile(workers, async () => {
    await sleep(preludeMs);
    const m0 = Date.now();
    mig = await runMigration(px, {
      restart, timeoutMs, stages, onFailure, onStageDone, onStatus: (st) => (shared.current = st.phase),
    });
    migMs = Date.now() - m0;
    await sleep(afterMs);
  });
  return { mig, migError: error, migMs, totalMs: Date.now() - t0 };
}

// The end state: through the proxy every acknowledged write and nothing
// else; the same in the new table read directly, with no protocol row or
// property; the old table empty. Returns {proxy, newTable, oldTable}
// problem lists.
export async function verifyEnd({ az, t, table, workers }) {
  const expected = workers.flatMap((w) => w.expected());
  const direct = (account) => ({ endpoint: az.endpoint(account), accountName: account, accountKey: az.accounts[account] });
  const proxy = compareRows(await readTyped(t, table), expected, "through the proxy");
  const newTable = compareRows(await readTyped(direct("mtnew"), table), expected, "new table");
  const oldRows = await all(tableClient(direct("mtold"), table).listEntities());
  const oldTable = oldRows.length
    ? [`old table still holds ${oldRows.length} rows, e.g. ${oldRows.slice(0, 5).map((e) => `${e.partitionKey}/${e.rowKey}`).join(", ")}`]
    : [];
  return { proxy, newTable, oldTable, expected: expected.length };
}

export function fmtViolations(vs, n = 12) {
  return vs.slice(0, n).map((v) => JSON.stringify(v)).join("\n") + (vs.length > n ? `\n... ${vs.length - n} more` : "");
}

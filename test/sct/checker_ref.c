/*
 * checker_ref.c -- the sequential reference table of the checker: the
 * history compiled into small integers (keys, ETags and row contents
 * interned), the rules no order can fix, and one step of the reference for
 * one record in a given state (see checker.h for the reference's rules).
 *
 * The search in checker.c chooses the order; this file only says whether a
 * record fits a state and what the state becomes. Every step is a function
 * of the state, so the search's memo of configurations stays sound.
 */
#include "checker_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Interning: keys, ETags, contents.                                         */

static int sct_kref_cmp(const void *a, const void *b)
{
    const sct_kref *x = a, *y = b;
    return mt_key_cmp(x->pk, x->rk, y->pk, y->rk);
}

static uint64_t sct_str_hash(const char *s)
{
    uint64_t x = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        x = (x ^ (unsigned char)*s) * 0x100000001b3ULL;
    return x;
}

/* The table position of key (pk, rk): where it is, or the empty slot where
 * it belongs. Equal bytes are equal keys, so no ordinal compare is needed. */
static size_t sct_key_slot(const sct_ctx *c, const char *pk, const char *rk)
{
    size_t i = (sct_mix(sct_str_hash(pk)) ^ sct_str_hash(rk)) & (c->key_tcap - 1);
    for (;; i = (i + 1) & (c->key_tcap - 1)) {
        int32_t id = c->key_table[i];
        if (id == SCT_NONE || (strcmp(c->keys[id].pk, pk) == 0 && strcmp(c->keys[id].rk, rk) == 0))
            return i;
    }
}

static int32_t sct_key_find(const sct_ctx *c, const char *pk, const char *rk)
{
    return c->key_table[sct_key_slot(c, pk, rk)]; /* every key was collected first */
}

/* First key id whose partition is >= pk (upper: > pk). */
static int32_t sct_key_bound(const sct_ctx *c, const char *pk, bool upper)
{
    int32_t lo = 0, hi = c->nkeys;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int d = mt_str_cmp(c->keys[mid].pk, pk);
        if (d < 0 || (upper && d == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The id of ETag s; the table was sized for every ETag in the history. */
static int32_t sct_etag_intern(sct_ctx *c, const char *s)
{
    size_t i = sct_str_hash(s) & (c->etag_tcap - 1);
    while (c->etag_table[i] != SCT_NONE) {
        int32_t id = c->etag_table[i];
        if (strcmp(c->etags[id], s) == 0)
            return id;
        i = (i + 1) & (c->etag_tcap - 1);
    }
    c->etags[c->netags] = s;
    c->etag_table[i] = c->netags;
    return c->netags++;
}

/* The class of content e at key; takes e when owned. */
static int32_t sct_class_intern(sct_ctx *c, int32_t key, const mt_entity *e, bool owned)
{
    for (int32_t i = c->keys[key].head; i != SCT_NONE; i = c->cls[i].next) {
        if (mt_entity_same_content(c->cls[i].e, e)) {
            if (owned)
                mt_entity_free((mt_entity *)e);
            return i;
        }
    }
    if (c->ncls == c->capcls) {
        c->capcls *= 2;
        c->cls = sct_grow(c->cls, (size_t)c->capcls, sizeof(*c->cls));
    }
    sct_class *k = &c->cls[c->ncls];
    k->e = e;
    k->key = key;
    k->next = c->keys[key].head;
    k->owned = owned;
    c->keys[key].head = c->ncls;
    return c->ncls++;
}

static int32_t sct_class_of(sct_ctx *c, const mt_entity *e)
{
    return sct_class_intern(c, sct_key_find(c, e->pk, e->rk), e, false);
}

/* ------------------------------------------------------------------------ */
/* Validation and key collection: the shape of every record, before any     */
/* rule. A malformed record is reported as such, not as a wrong outcome.     */

static bool sct_key_ok(const char *pk, const char *rk)
{
    return pk && rk;
}

static bool sct_hop_valid(const sct_hop *op)
{
    if (op->respond <= op->invoke)
        return false;
    switch (op->kind) {
    case SCT_H_BATCH:
        if (op->n && !op->ops)
            return false;
        if (op->status.http == 0 && op->n && !op->results)
            return false;
        for (size_t j = 0; j < op->n; j++) {
            const mt_entity *e = op->ops[j].entity;
            if (!e || !sct_key_ok(e->pk, e->rk))
                return false;
        }
        return true;
    case SCT_H_QUERY:
        for (size_t j = 0; j < op->rows.n; j++)
            if (!op->rows.v[j] || !sct_key_ok(op->rows.v[j]->pk, op->rows.v[j]->rk))
                return false;
        return op->pk != NULL;
    case SCT_H_RETRIEVE:
        if (op->row && !sct_key_ok(op->row->pk, op->row->rk))
            return false;
        return sct_key_ok(op->pk, op->rk) && (op->status.http != 0 || op->row);
    case SCT_H_STREAM_ROW:
        return op->row && sct_key_ok(op->row->pk, op->row->rk);
    case SCT_H_STREAM_ABSENT:
        return sct_key_ok(op->pk, op->rk);
    }
    return false;
}

static void sct_key_push(sct_ctx *c, const char *pk, const char *rk)
{
    size_t i = sct_key_slot(c, pk, rk);
    if (c->key_table[i] != SCT_NONE)
        return;
    c->keys[c->nkeys].pk = pk;
    c->keys[c->nkeys].rk = rk;
    c->keys[c->nkeys].head = SCT_NONE;
    c->key_table[i] = c->nkeys++;
}

/* Sorts the distinct keys, so that a partition is a range of ids, and
 * points the table at the new ids. */
static void sct_keys_sort(sct_ctx *c)
{
    qsort(c->keys, (size_t)c->nkeys, sizeof(*c->keys), sct_kref_cmp);
    memset(c->key_table, 0xff, c->key_tcap * sizeof(*c->key_table));
    for (int32_t k = 0; k < c->nkeys; k++)
        c->key_table[sct_key_slot(c, c->keys[k].pk, c->keys[k].rk)] = k;
}

static size_t sct_pow2_above(size_t n)
{
    size_t p = 16;
    while (p < 2 * n)
        p *= 2;
    return p;
}

static void sct_keys_of(sct_ctx *c, const sct_hop *op)
{
    for (size_t j = 0; op->kind == SCT_H_BATCH && j < op->n; j++)
        sct_key_push(c, op->ops[j].entity->pk, op->ops[j].entity->rk);
    for (size_t j = 0; op->kind == SCT_H_QUERY && j < op->rows.n; j++)
        sct_key_push(c, op->rows.v[j]->pk, op->rows.v[j]->rk);
    if (op->kind == SCT_H_RETRIEVE || op->kind == SCT_H_STREAM_ABSENT)
        sct_key_push(c, op->pk, op->rk);
    if (op->row)
        sct_key_push(c, op->row->pk, op->row->rk);
}

/* Sizes every table for the whole history and collects its sorted keys. */
static bool sct_collect(sct_ctx *c, sct_why *w)
{
    size_t nkeys = 0, nops = 0, nrows = 0;
    for (int32_t i = 0; i < c->n; i++) {
        const sct_hop *op = &c->h->v[i];
        if (!sct_hop_valid(op))
            return sct_say(w, "record #%d is malformed (times, keys or missing rows)", (int)i);
        nops += op->kind == SCT_H_BATCH ? op->n : 0;
        nrows += op->kind == SCT_H_QUERY ? op->rows.n : 0;
        nkeys += (op->kind == SCT_H_BATCH ? op->n : 0) + op->rows.n + 2;
    }
    c->keys = sct_alloc(nkeys, sizeof(*c->keys));
    c->key_tcap = sct_pow2_above(nkeys);
    c->key_table = sct_alloc(c->key_tcap, sizeof(*c->key_table));
    memset(c->key_table, 0xff, c->key_tcap * sizeof(*c->key_table));
    for (int32_t i = 0; i < c->n; i++)
        sct_keys_of(c, &c->h->v[i]);
    sct_keys_sort(c);

    size_t netags = 2 * nops + nrows + (size_t)c->n;
    c->etags = sct_alloc(netags, sizeof(*c->etags));
    c->issued = sct_alloc(netags, sizeof(*c->issued));
    c->etag_tcap = sct_pow2_above(netags);
    c->etag_table = sct_alloc(c->etag_tcap, sizeof(*c->etag_table));
    memset(c->etag_table, 0xff, c->etag_tcap * sizeof(*c->etag_table));
    c->capcls = (int32_t)(nops + nrows + (size_t)c->n + 16);
    c->cls = sct_alloc((size_t)c->capcls, sizeof(*c->cls));
    c->cops = sct_alloc(nops, sizeof(*c->cops));
    c->crows = sct_alloc(nrows, sizeof(*c->crows));
    return true;
}

/* ------------------------------------------------------------------------ */
/* Compiling records into ids, with the rules no order can fix.              */

static bool sct_is_delete(mt_op_kind k)
{
    return k == MT_OP_DELETE || k == MT_OP_DELETE_IF_EXISTS;
}

static bool sct_compile_op(sct_ctx *c, int32_t i, size_t j, sct_why *w)
{
    const sct_hop *op = &c->h->v[i];
    const sct_hbatch_op *b = &op->ops[j];
    sct_cop *o = &c->cops[c->ncops++];
    o->kind = b->kind;
    o->e = b->entity;
    o->key = sct_key_find(c, b->entity->pk, b->entity->rk);
    o->ifm = !b->if_match || strcmp(b->if_match, "*") == 0 ? SCT_IFM_ANY
                                                           : sct_etag_intern(c, b->if_match);
    o->cls = sct_is_delete(b->kind) ? SCT_NONE : sct_class_of(c, b->entity);
    o->etag = SCT_NONE;
    if (op->status.http != 0 || sct_is_delete(b->kind))
        return true;
    if (!op->results[j].etag[0])
        return sct_say(w, "record #%d: op %zu (%s '%s') succeeded without an ETag", (int)i, j,
                       sct_op_kind_name(b->kind), b->entity->rk);
    o->etag = sct_etag_intern(c, op->results[j].etag);
    c->issued[o->etag] = true;
    return true;
}

static bool sct_compile_batch(sct_ctx *c, int32_t i, sct_why *w)
{
    sct_crec *r = &c->recs[i];
    const sct_hop *op = r->hop;
    r->first = c->ncops;
    r->count = (int32_t)op->n;
    /* Only a 412 can be a spurious ETag change, which alters the state. */
    r->pure = op->status.http != 0 && op->status.http != 412;
    for (size_t j = 0; j < op->n; j++)
        if (!sct_compile_op(c, i, j, w))
            return false;
    return true;
}

static bool sct_row_etag(sct_ctx *c, int32_t i, const mt_entity *e, int32_t *out, sct_why *w)
{
    if (!e->etag || !e->etag[0])
        return sct_say(w, "record #%d: row '%s'/'%s' was returned without an ETag", (int)i, e->pk,
                       e->rk);
    *out = sct_etag_intern(c, e->etag);
    return true;
}

static bool sct_compile_query(sct_ctx *c, int32_t i, sct_why *w)
{
    sct_crec *r = &c->recs[i];
    const sct_hop *op = r->hop;
    r->lo = sct_key_bound(c, op->pk, false);
    r->hi = sct_key_bound(c, op->pk, true);
    r->first = c->ncrows;
    r->count = (int32_t)op->rows.n;
    r->pure = op->status.http != 0 || op->rows.n == 0;
    for (size_t j = 0; op->status.http == 0 && j < op->rows.n; j++) {
        const mt_entity *e = op->rows.v[j];
        sct_crow *row = &c->crows[c->ncrows++];
        row->key = sct_key_find(c, e->pk, e->rk);
        row->cls = sct_class_of(c, e);
        if (!sct_row_etag(c, i, e, &row->etag, w))
            return false;
    }
    if (op->status.http != 0)
        r->count = 0;
    return true;
}

static bool sct_compile_record(sct_ctx *c, int32_t i, sct_why *w)
{
    sct_crec *r = &c->recs[i];
    const sct_hop *op = &c->h->v[i];
    r->hop = op;
    r->invoke = op->invoke;
    r->respond = op->respond;
    r->key = r->cls = r->etag = SCT_NONE;
    switch (op->kind) {
    case SCT_H_BATCH:
        return sct_compile_batch(c, i, w);
    case SCT_H_QUERY:
        return sct_compile_query(c, i, w);
    case SCT_H_RETRIEVE:
        r->key = sct_key_find(c, op->pk, op->rk);
        r->pure = op->status.http != 0;
        if (op->status.http != 0)
            return true;
        r->cls = sct_class_of(c, op->row);
        return sct_row_etag(c, i, op->row, &r->etag, w);
    case SCT_H_STREAM_ROW:
        r->key = sct_key_find(c, op->row->pk, op->row->rk);
        r->cls = sct_class_of(c, op->row);
        r->pure = r->stream = true;
        return true;
    case SCT_H_STREAM_ABSENT:
        r->key = sct_key_find(c, op->pk, op->rk);
        r->pure = r->stream = true;
        return true;
    }
    return false;
}

/* A row's versions must carry distinct ETags, or a stale conditional write
 * would be indistinguishable from a current one. */
static bool sct_unique_etags(sct_ctx *c, sct_why *w)
{
    sct_map seen;
    sct_map_init(&seen, 64);
    bool ok = true;
    for (int32_t i = 0; i < c->ncops && ok; i++) {
        const sct_cop *o = &c->cops[i];
        int32_t prev;
        if (o->etag == SCT_NONE)
            continue;
        uint64_t k = (uint64_t)(uint32_t)o->etag << 32 | (uint32_t)o->key;
        if (sct_map_get(&seen, k, &prev))
            ok = sct_say(w, "two writes of row '%s'/'%s' returned the same ETag %s",
                         c->keys[o->key].pk, c->keys[o->key].rk, c->etags[o->etag]);
        sct_map_put(&seen, k, i);
    }
    sct_map_free(&seen);
    return ok;
}

bool sct_compile(sct_ctx *c, sct_why *w)
{
    if (!sct_collect(c, w))
        return false;
    for (int32_t i = 0; i < c->n; i++)
        if (!sct_compile_record(c, i, w))
            return false;
    return sct_unique_etags(c, w);
}

/* ------------------------------------------------------------------------ */
/* The reference: one step of one record. Each returns false when the        */
/* record cannot be placed in state s, and explains why when w is set.       */

static void sct_slot_text(const sct_ctx *c, const sct_slot *s, char *buf, size_t len)
{
    char ent[200];
    if (s->cls < 0) {
        snprintf(buf, len, "no row");
        return;
    }
    sct_entity_describe(c->cls[s->cls].e, ent, sizeof(ent));
    snprintf(buf, len, "%s etag %s", ent,
             s->etag >= 0 ? c->etags[s->etag] : "unknown (rewritten by the migration)");
}

static const char *sct_ifm_text(const sct_ctx *c, const sct_cop *o)
{
    return o->ifm >= 0 ? c->etags[o->ifm] : "*";
}

/* 0 when op passes against s, else the status a plain table answers. */
static int sct_op_outcome(const sct_slot *s, const sct_cop *o)
{
    bool live = s->cls >= 0;
    switch (o->kind) {
    case MT_OP_INSERT:
        return live ? 409 : 0;
    case MT_OP_REPLACE:
    case MT_OP_MERGE:
    case MT_OP_DELETE:
        if (!live)
            return 404;
        return o->ifm == SCT_IFM_ANY || o->ifm == s->etag ? 0 : 412;
    case MT_OP_INSERT_OR_REPLACE:
    case MT_OP_INSERT_OR_MERGE:
    case MT_OP_DELETE_IF_EXISTS:
        return 0;
    }
    return 0;
}

/* The content of a Merge of op oi over content base, built once. */
static int32_t sct_merge(sct_ctx *c, int32_t base, int32_t oi)
{
    uint64_t k = (uint64_t)(uint32_t)base << 32 | (uint32_t)oi;
    int32_t v;
    if (sct_map_get(&c->merges, k, &v))
        return v;
    mt_entity *e = mt_entity_clone(c->cls[base].e);
    const mt_entity *o = c->cops[oi].e;
    for (size_t p = 0; p < o->nprops; p++)
        mt_entity_set(e, o->props[p].name, &o->props[p].value);
    v = sct_class_intern(c, c->cops[oi].key, e, true);
    sct_map_put(&c->merges, k, v);
    return v;
}

static void sct_op_apply(sct_ctx *c, sct_slot *s, int32_t oi)
{
    const sct_cop *o = &c->cops[oi];
    sct_slot *t = &s[o->key];
    switch (o->kind) {
    case MT_OP_MERGE:
    case MT_OP_INSERT_OR_MERGE:
        t->cls = t->cls >= 0 ? sct_merge(c, t->cls, oi) : o->cls;
        t->etag = o->etag;
        break;
    case MT_OP_DELETE:
    case MT_OP_DELETE_IF_EXISTS:
        t->cls = t->etag = SCT_NONE;
        break;
    default:
        t->cls = o->cls;
        t->etag = o->etag;
        break;
    }
}

static bool sct_op_say(const sct_ctx *c, const sct_slot *s, const sct_cop *o, int j, int expect,
                       const char *recorded, sct_why *w)
{
    if (!w)
        return false;
    char row[280], want[40];
    sct_slot_text(c, &s[o->key], row, sizeof(row));
    if (expect)
        snprintf(want, sizeof(want), "fails it with %d", expect);
    else
        snprintf(want, sizeof(want), "lets it succeed");
    bool cond = o->kind == MT_OP_REPLACE || o->kind == MT_OP_MERGE || o->kind == MT_OP_DELETE;
    return sct_say(w, "op %d (%s '%s'%s%s): the reference %s (it has %s), recorded %s", j,
                   sct_op_kind_name(o->kind), o->e->rk, cond ? " if " : "",
                   cond ? sct_ifm_text(c, o) : "", want, row, recorded);
}

static bool sct_batch_success(sct_ctx *c, const sct_crec *r, sct_slot *s, sct_why *w)
{
    for (int32_t j = 0; j < r->count; j++) {
        const sct_cop *o = &c->cops[r->first + j];
        int expect = sct_op_outcome(&s[o->key], o);
        if (expect)
            return sct_op_say(c, s, o, (int)j, expect, "success", w);
    }
    for (int32_t j = 0; j < r->count; j++)
        sct_op_apply(c, s, r->first + j);
    return true;
}

static bool sct_batch_failure(sct_ctx *c, const sct_crec *r, sct_slot *s, sct_why *w)
{
    const mt_status *st = &r->hop->status;
    char got[48];
    snprintf(got, sizeof(got), "%d at op %d", st->http, st->index);
    if (st->index < 0 || st->index >= r->count)
        return sct_say(w, "batch failed with %s, which names no op", got);
    for (int32_t j = 0; j < st->index; j++) {
        const sct_cop *o = &c->cops[r->first + j];
        int expect = sct_op_outcome(&s[o->key], o);
        if (expect)
            return sct_op_say(c, s, o, (int)j, expect, got, w);
    }
    const sct_cop *o = &c->cops[r->first + st->index];
    sct_slot *t = &s[o->key];
    int expect = sct_op_outcome(t, o);
    if (expect == st->http)
        return true;
    if (expect == 0 && st->http == 412 && o->ifm >= 0 && o->ifm == t->etag) {
        t->etag = SCT_NONE; /* the migration rewrote the row first */
        return true;
    }
    return sct_op_say(c, s, o, st->index, expect, got, w);
}

static bool sct_apply_batch(sct_ctx *c, const sct_crec *r, sct_slot *s, sct_why *w)
{
    int http = r->hop->status.http;
    if (http == 503)
        return true; /* ServerBusy: refused before anything happened */
    if (http == 0)
        return sct_batch_success(c, r, s, w);
    return sct_batch_failure(c, r, s, w);
}

static bool sct_filter_pass(sct_ctx *c, int32_t ri, int32_t cls)
{
    const mt_filter *f = c->recs[ri].hop->filter;
    if (!f)
        return true;
    uint64_t k = (uint64_t)(uint32_t)ri << 32 | (uint32_t)cls;
    int32_t v;
    if (sct_map_get(&c->filters, k, &v))
        return v;
    v = mt_filter_eval(f, c->cls[cls].e);
    sct_map_put(&c->filters, k, v);
    return v;
}

/* A read saw ETag obs on row t: the current one, or a fresh one the
 * migration put there (which then is current). */
static bool sct_etag_seen(const sct_ctx *c, sct_slot *t, int32_t obs)
{
    if (obs == t->etag)
        return true;
    if (c->issued[obs])
        return false;
    t->etag = obs;
    return true;
}

static bool sct_row_say(const sct_ctx *c, const sct_slot *t, int32_t key, const char *what,
                        int32_t cls, int32_t etag, sct_why *w)
{
    if (!w)
        return false;
    char ref[280], got[200] = "";
    sct_slot_text(c, t, ref, sizeof(ref));
    if (cls >= 0)
        sct_entity_describe(c->cls[cls].e, got, sizeof(got));
    return sct_say(w, "row '%s'/'%s': the reference has %s; %s%s%s%s%s", c->keys[key].pk,
                   c->keys[key].rk, ref, what, cls >= 0 ? " " : "", got, etag >= 0 ? " etag " : "",
                   etag >= 0 ? c->etags[etag] : "");
}

static bool sct_read_error(const sct_crec *r, sct_why *w)
{
    return sct_say(w, "a read failed with %d %s", r->hop->status.http, r->hop->status.code);
}

static bool sct_apply_query(sct_ctx *c, int32_t ri, sct_slot *s, sct_why *w)
{
    const sct_crec *r = &c->recs[ri];
    int http = r->hop->status.http;
    if (http == 503)
        return true;
    if (http != 0)
        return sct_read_error(r, w);
    int32_t j = 0;
    for (int32_t k = r->lo; k < r->hi; k++) {
        if (s[k].cls < 0 || !sct_filter_pass(c, ri, s[k].cls))
            continue;
        const sct_crow *row = j < r->count ? &c->crows[r->first + j] : NULL;
        if (!row || row->key > k)
            return sct_row_say(c, &s[k], k, "the query did not return it", SCT_NONE, SCT_NONE, w);
        if (row->key < k)
            break;
        if (row->cls != s[k].cls)
            return sct_row_say(c, &s[k], k, "the query returned", row->cls, row->etag, w);
        if (!sct_etag_seen(c, &s[k], row->etag))
            return sct_row_say(c, &s[k], k, "the query returned a stale ETag:", row->cls, row->etag,
                               w);
        j++;
    }
    if (j == r->count)
        return true;
    const sct_crow *row = &c->crows[r->first + j];
    return sct_row_say(c, &s[row->key], row->key, "not a match, yet the query returned", row->cls,
                       row->etag, w);
}

static bool sct_apply_retrieve(sct_ctx *c, const sct_crec *r, sct_slot *s, sct_why *w)
{
    int http = r->hop->status.http;
    sct_slot *t = &s[r->key];
    if (http == 503)
        return true;
    if (http == 404)
        return t->cls < 0 ? true
                          : sct_row_say(c, t, r->key, "retrieve said 404", SCT_NONE, SCT_NONE, w);
    if (http != 0)
        return sct_read_error(r, w);
    if (t->cls != r->cls)
        return sct_row_say(c, t, r->key, "retrieve returned", r->cls, r->etag, w);
    if (!sct_etag_seen(c, t, r->etag))
        return sct_row_say(c, t, r->key, "retrieve returned a stale ETag:", r->cls, r->etag, w);
    return true;
}

static bool sct_apply_stream(sct_ctx *c, int32_t ri, sct_slot *s, sct_why *w)
{
    const sct_crec *r = &c->recs[ri];
    const sct_slot *t = &s[r->key];
    bool match = t->cls >= 0 && sct_filter_pass(c, ri, t->cls);
    if (r->hop->kind == SCT_H_STREAM_ABSENT)
        return !match ? true
                      : sct_row_say(c, t, r->key, "a match, yet the stream skipped it", SCT_NONE,
                                    SCT_NONE, w);
    if (t->cls == r->cls && match)
        return true;
    return sct_row_say(c, t, r->key, "the stream returned", r->cls, SCT_NONE, w);
}

bool sct_apply(sct_ctx *c, int32_t ri, sct_slot *s, sct_why *w)
{
    const sct_crec *r = &c->recs[ri];
    switch (r->hop->kind) {
    case SCT_H_BATCH:
        return sct_apply_batch(c, r, s, w);
    case SCT_H_QUERY:
        return sct_apply_query(c, ri, s, w);
    case SCT_H_RETRIEVE:
        return sct_apply_retrieve(c, r, s, w);
    case SCT_H_STREAM_ROW:
    case SCT_H_STREAM_ABSENT:
        return sct_apply_stream(c, ri, s, w);
    }
    return false;
}

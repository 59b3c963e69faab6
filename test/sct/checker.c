/*
 * checker.c -- linearizability of one recorded execution against a
 * sequential reference table (see checker.h for the reference's rules).
 *
 * The search is Wing & Gong's, with Lowe's memo: depth first over the
 * minimal records (those no unplaced record precedes in real time), and a
 * configuration -- the set of placed records plus the reference state -- is
 * never explored twice. It runs after every execution of the tester, so the
 * shape is chosen for speed on small histories:
 *
 *   - Everything the search compares is interned up front into small
 *     integers: row keys (sorted, so a partition is a range of ids), ETags,
 *     and row contents (one id per distinct content of a key, so content
 *     equality is an integer compare and a state is a value). A state is then
 *     a fixed array of (content, etag) slots, one per key the history ever
 *     names; a step copies one array and a backtrack drops it, which beats an
 *     undo log at these sizes. Merged contents are built on first use and
 *     cached per (content, op).
 *   - Records whose successful step never changes the state (streamed rows,
 *     skipped keys, failures other than 412, empty queries, 503s) are placed
 *     greedily as soon as they are minimal and fit. That loses nothing: in
 *     any order that places such a record later, moving it to now keeps
 *     real time (everything that must precede it is placed) and every other
 *     record sees the same states. Without this, the wide intervals of
 *     streamed rows would multiply the configurations.
 *   - Every step is a function of the state: the only choice is the order.
 *     In particular a 412 is explained by a spurious ETag change exactly when
 *     the If-Match was the current ETag, and a read adopts a fresh ETag.
 *
 * A memo hit compares whole configurations, not hashes, so a collision can
 * cost time but never a wrong answer. Explanations are built only after a
 * search failed: the deepest configuration reached is kept, and the record
 * that has to come next there (the unplaced one that responded first) is
 * replayed with messages on.
 */
#include "checker.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCT_NONE (-1)    /* absent row, unknown ETag, no content */
#define SCT_IFM_ANY (-2) /* If-Match: * (or none) */

/* The reference state of one key. An absent row has etag SCT_NONE, so
 * equal states are equal bytes. */
typedef struct sct_slot {
    int32_t cls;
    int32_t etag;
} sct_slot;

typedef struct sct_kref {
    const char *pk, *rk; /* borrowed from the history */
    int32_t head;        /* first content class of this key */
} sct_kref;

/* One distinct content of one key. */
typedef struct sct_class {
    const mt_entity *e; /* borrowed, or owned when built by a merge */
    int32_t key;
    int32_t next; /* next class of the same key */
    bool owned;
} sct_class;

typedef struct sct_cop {
    mt_op_kind kind;
    int32_t key;
    int32_t ifm;  /* ETag id, or SCT_IFM_ANY */
    int32_t cls;  /* content of the op's entity (not for deletes) */
    int32_t etag; /* the recorded new ETag, when the batch succeeded */
    const mt_entity *e;
} sct_cop;

typedef struct sct_crow {
    int32_t key, cls, etag;
} sct_crow;

typedef struct sct_crec {
    const sct_hop *hop;
    uint64_t invoke, respond;
    bool pure;            /* a successful step never changes the state */
    bool stream;          /* STREAM_ROW or STREAM_ABSENT */
    int32_t key;          /* RETRIEVE, STREAM_*: the key read */
    int32_t lo, hi;       /* QUERY: the partition's key ids */
    int32_t first, count; /* BATCH: its ops; QUERY: its rows */
    int32_t cls, etag;    /* RETRIEVE, STREAM_ROW: the row returned */
} sct_crec;

/* uint64 -> int32, open addressing; caches merges and filter results. */
typedef struct sct_map {
    uint64_t *k;
    int32_t *v;
    size_t cap, n;
} sct_map;

/* Visited configurations, each `width` words: placed bits, then slots. */
typedef struct sct_memo {
    uint64_t *words;
    uint64_t *hash;
    size_t n, cap, width;
    uint32_t *table; /* entry index + 1; 0 = empty */
    size_t tcap;
} sct_memo;

typedef struct sct_why {
    char *buf;
    size_t len;
} sct_why;

typedef struct sct_ctx {
    const sct_history *h;
    int32_t n;
    sct_crec *recs;

    sct_kref *keys; /* sorted by mt_key_cmp once collected */
    int32_t nkeys;
    int32_t *key_table; /* hashed by the key's bytes */
    size_t key_tcap;

    sct_class *cls;
    int32_t ncls, capcls;

    const char **etags;
    bool *issued; /* returned by some successful write */
    int32_t netags;
    int32_t *etag_table;
    size_t etag_tcap;

    sct_cop *cops;
    int32_t ncops;
    sct_crow *crows;
    int32_t ncrows;

    sct_map merges, filters;

    /* search */
    size_t nw;
    uint64_t *placed;
    int32_t nplaced, npure_left;
    int32_t nleft_out; /* records this search leaves out (placed from the start) */
    int32_t *by_invoke, *by_respond;
    int32_t *undo;
    int32_t nundo;
    sct_slot *stack;
    sct_memo memo;
    bool have_best;
    int32_t best;
    uint64_t *best_placed;
    sct_slot *best_state;
} sct_ctx;

/* ------------------------------------------------------------------------ */
/* Small helpers.                                                            */

/* The tester cannot go on without memory, and a half-checked history is
 * worse than a crash, so allocation failure stops the process here. */
static void *sct_alloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "sct checker: out of memory\n");
        abort();
    }
    return p;
}

static void *sct_grow(void *p, size_t n, size_t size)
{
    p = realloc(p, n * size);
    if (!p) {
        fprintf(stderr, "sct checker: out of memory\n");
        abort();
    }
    return p;
}

static bool sct_say(sct_why *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes an explanation when one is wanted; always returns false so a
 * failing check can end with `return sct_say(...)`. */
static bool sct_say(sct_why *w, const char *fmt, ...)
{
    if (!w || !w->len)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->buf, w->len, fmt, ap);
    va_end(ap);
    return false;
}

static uint64_t sct_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static bool sct_is_placed(const sct_ctx *c, int32_t r)
{
    return (c->placed[r >> 6] >> (r & 63)) & 1;
}

/* ------------------------------------------------------------------------ */
/* The cache map.                                                            */

#define SCT_MAP_EMPTY UINT64_MAX

static void sct_map_init(sct_map *m, size_t cap)
{
    m->cap = cap;
    m->n = 0;
    m->k = sct_alloc(cap, sizeof(*m->k));
    m->v = sct_alloc(cap, sizeof(*m->v));
    memset(m->k, 0xff, cap * sizeof(*m->k));
}

static void sct_map_free(sct_map *m)
{
    free(m->k);
    free(m->v);
}

static size_t sct_map_slot(const sct_map *m, uint64_t key)
{
    size_t i = sct_mix(key) & (m->cap - 1);
    while (m->k[i] != key && m->k[i] != SCT_MAP_EMPTY)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static bool sct_map_get(const sct_map *m, uint64_t key, int32_t *out)
{
    size_t i = sct_map_slot(m, key);
    if (m->k[i] == SCT_MAP_EMPTY)
        return false;
    *out = m->v[i];
    return true;
}

static void sct_map_put(sct_map *m, uint64_t key, int32_t v);

static void sct_map_rehash(sct_map *m)
{
    sct_map old = *m;
    sct_map_init(m, old.cap * 2);
    for (size_t i = 0; i < old.cap; i++)
        if (old.k[i] != SCT_MAP_EMPTY)
            sct_map_put(m, old.k[i], old.v[i]);
    sct_map_free(&old);
}

static void sct_map_put(sct_map *m, uint64_t key, int32_t v)
{
    if (2 * (m->n + 1) > m->cap)
        sct_map_rehash(m);
    size_t i = sct_map_slot(m, key);
    if (m->k[i] == SCT_MAP_EMPTY)
        m->n++;
    m->k[i] = key;
    m->v[i] = v;
}

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

static bool sct_compile(sct_ctx *c, sct_why *w)
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

static bool sct_apply(sct_ctx *c, int32_t ri, sct_slot *s, sct_why *w)
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

/* ------------------------------------------------------------------------ */
/* The memo of visited configurations.                                       */

static void sct_memo_init(sct_memo *m, size_t width)
{
    memset(m, 0, sizeof(*m));
    m->width = width;
    m->cap = 64;
    m->words = sct_alloc(m->cap * width, sizeof(*m->words));
    m->hash = sct_alloc(m->cap, sizeof(*m->hash));
    m->tcap = 256;
    m->table = sct_alloc(m->tcap, sizeof(*m->table));
}

static void sct_memo_free(sct_memo *m)
{
    free(m->words);
    free(m->hash);
    free(m->table);
}

static void sct_memo_reset(sct_memo *m)
{
    m->n = 0;
    memset(m->table, 0, m->tcap * sizeof(*m->table));
}

static void sct_memo_link(sct_memo *m, size_t e)
{
    size_t i = m->hash[e] & (m->tcap - 1);
    while (m->table[i])
        i = (i + 1) & (m->tcap - 1);
    m->table[i] = (uint32_t)e + 1;
}

static void sct_memo_grow(sct_memo *m)
{
    if (m->n == m->cap) {
        m->cap *= 2;
        m->words = sct_grow(m->words, m->cap * m->width, sizeof(*m->words));
        m->hash = sct_grow(m->hash, m->cap, sizeof(*m->hash));
    }
    if (2 * (m->n + 1) > m->tcap) {
        free(m->table);
        m->tcap *= 2;
        m->table = sct_alloc(m->tcap, sizeof(*m->table));
        for (size_t e = 0; e < m->n; e++)
            sct_memo_link(m, e);
    }
}

/* Records the configuration (placed, s); true when it was already there. */
static bool sct_memo_visit(sct_ctx *c, const sct_slot *s)
{
    sct_memo *m = &c->memo;
    sct_memo_grow(m);
    uint64_t *e = m->words + m->n * m->width;
    memcpy(e, c->placed, c->nw * sizeof(*e));
    memcpy(e + c->nw, s, (size_t)c->nkeys * sizeof(*s));
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < m->width; i++)
        x = sct_mix(x ^ e[i]);
    size_t i = x & (m->tcap - 1);
    for (; m->table[i]; i = (i + 1) & (m->tcap - 1)) {
        size_t o = m->table[i] - 1;
        if (m->hash[o] == x && memcmp(m->words + o * m->width, e, m->width * sizeof(*e)) == 0)
            return true;
    }
    m->hash[m->n] = x;
    m->table[i] = (uint32_t)m->n + 1;
    m->n++;
    return false;
}

/* ------------------------------------------------------------------------ */
/* The search.                                                               */

static void sct_place(sct_ctx *c, int32_t r)
{
    c->placed[r >> 6] |= (uint64_t)1 << (r & 63);
    c->nplaced++;
    c->npure_left -= c->recs[r].pure;
}

static void sct_unplace(sct_ctx *c, int32_t r)
{
    c->placed[r >> 6] &= ~((uint64_t)1 << (r & 63));
    c->nplaced--;
    c->npure_left += c->recs[r].pure;
}

/* Records invoked before this time are minimal: no unplaced record
 * responded before them. */
static uint64_t sct_min_respond(const sct_ctx *c)
{
    for (int32_t i = 0; i < c->n; i++)
        if (!sct_is_placed(c, c->by_respond[i]))
            return c->recs[c->by_respond[i]].respond;
    return UINT64_MAX;
}

/* Places every minimal record that fits and leaves the state alone, until
 * none is left; each goes on the undo list. */
static void sct_place_pure(sct_ctx *c, sct_slot *s)
{
    bool again = c->npure_left > 0;
    while (again) {
        again = false;
        uint64_t lim = sct_min_respond(c);
        for (int32_t i = 0; i < c->n && c->recs[c->by_invoke[i]].invoke < lim; i++) {
            int32_t r = c->by_invoke[i];
            if (!c->recs[r].pure || sct_is_placed(c, r) || !sct_apply(c, r, s, NULL))
                continue;
            sct_place(c, r);
            c->undo[c->nundo++] = r;
            again = true;
        }
    }
}

static void sct_undo_to(sct_ctx *c, int32_t mark)
{
    while (c->nundo > mark)
        sct_unplace(c, c->undo[--c->nundo]);
}

static void sct_note_depth(sct_ctx *c, const sct_slot *s)
{
    if (c->have_best && c->nplaced <= c->best)
        return;
    c->have_best = true;
    c->best = c->nplaced;
    memcpy(c->best_placed, c->placed, c->nw * sizeof(*c->placed));
    memcpy(c->best_state, s, (size_t)c->nkeys * sizeof(*s));
}

static bool sct_dfs(sct_ctx *c, size_t level)
{
    sct_slot *s = c->stack + level * (size_t)c->nkeys;
    sct_slot *next = s + c->nkeys;
    int32_t mark = c->nundo;
    sct_place_pure(c, s);
    if (c->nplaced == c->n)
        return true;
    if (sct_memo_visit(c, s)) {
        sct_undo_to(c, mark);
        return false;
    }
    sct_note_depth(c, s);
    uint64_t lim = sct_min_respond(c);
    for (int32_t i = 0; i < c->n && c->recs[c->by_invoke[i]].invoke < lim; i++) {
        int32_t r = c->by_invoke[i];
        if (c->recs[r].pure || sct_is_placed(c, r))
            continue;
        memcpy(next, s, (size_t)c->nkeys * sizeof(*s));
        if (!sct_apply(c, r, next, NULL))
            continue;
        sct_place(c, r);
        if (sct_dfs(c, level + 1))
            return true;
        sct_unplace(c, r);
    }
    sct_undo_to(c, mark);
    return false;
}

/* One search; without streams, their records count as placed already. */
static bool sct_search(sct_ctx *c, bool streams)
{
    memset(c->placed, 0, c->nw * sizeof(*c->placed));
    c->nplaced = c->npure_left = c->nundo = 0;
    for (int32_t r = 0; r < c->n; r++)
        c->npure_left += c->recs[r].pure;
    for (int32_t r = 0; r < c->n && !streams; r++)
        if (c->recs[r].stream)
            sct_place(c, r);
    c->nleft_out = c->nplaced;
    for (int32_t k = 0; k < c->nkeys; k++)
        c->stack[k].cls = c->stack[k].etag = SCT_NONE;
    sct_memo_reset(&c->memo);
    c->have_best = false;
    return sct_dfs(c, 0);
}

/* After a failed search: replays the record that had to come next at the
 * deepest configuration reached, with messages on. */
static void sct_explain(sct_ctx *c, char *why, size_t len)
{
    if (!why || !len)
        return;
    memcpy(c->placed, c->best_placed, c->nw * sizeof(*c->placed));
    int32_t r = 0;
    for (int32_t i = 0; i < c->n; i++) {
        r = c->by_respond[i];
        if (!sct_is_placed(c, r))
            break;
    }
    char detail[512] = "no order of the records fits", desc[200];
    sct_why w = {detail, sizeof(detail)};
    memcpy(c->stack, c->best_state, (size_t)c->nkeys * sizeof(*c->stack));
    sct_apply(c, r, c->stack, &w);
    sct_hop_describe(c->recs[r].hop, desc, sizeof(desc));
    snprintf(why, len,
             "no linearization: after the longest valid prefix (%d records), record #%d "
             "[%s] fails: %s",
             (int)(c->best - c->nleft_out), (int)r, desc, detail);
}

/* ------------------------------------------------------------------------ */
/* Entry point.                                                              */

static uint64_t sct_time(const sct_ctx *c, int32_t r, bool respond)
{
    return respond ? c->recs[r].respond : c->recs[r].invoke;
}

/* Fills order with the record ids sorted by invocation (or response) time.
 * Insertion sort: records arrive nearly in order, and there are few. */
static void sct_order(const sct_ctx *c, int32_t *order, bool respond)
{
    for (int32_t i = 0; i < c->n; i++) {
        int32_t j = i;
        uint64_t t = sct_time(c, i, respond);
        for (; j > 0 && sct_time(c, order[j - 1], respond) > t; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
}

static void sct_ctx_init(sct_ctx *c, const sct_history *h)
{
    memset(c, 0, sizeof(*c));
    c->h = h;
    c->n = (int32_t)h->n;
    c->recs = sct_alloc((size_t)c->n, sizeof(*c->recs));
    sct_map_init(&c->merges, 64);
    sct_map_init(&c->filters, 256);
}

/* Search structures, sized once the keys are known. */
static void sct_ctx_prepare(sct_ctx *c)
{
    size_t n = (size_t)c->n, k = (size_t)c->nkeys;
    c->nw = (n + 63) / 64;
    c->placed = sct_alloc(c->nw, sizeof(*c->placed));
    c->best_placed = sct_alloc(c->nw, sizeof(*c->best_placed));
    c->best_state = sct_alloc(k, sizeof(*c->best_state));
    c->stack = sct_alloc((n + 2) * k, sizeof(*c->stack));
    c->undo = sct_alloc(n, sizeof(*c->undo));
    c->by_invoke = sct_alloc(n, sizeof(*c->by_invoke));
    c->by_respond = sct_alloc(n, sizeof(*c->by_respond));
    sct_order(c, c->by_invoke, false);
    sct_order(c, c->by_respond, true);
    sct_memo_init(&c->memo, c->nw + k);
}

static void sct_ctx_free(sct_ctx *c)
{
    for (int32_t i = 0; i < c->ncls; i++)
        if (c->cls[i].owned)
            mt_entity_free((mt_entity *)c->cls[i].e);
    free(c->recs);
    free(c->keys);
    free(c->key_table);
    free(c->cls);
    free(c->etags);
    free(c->issued);
    free(c->etag_table);
    free(c->cops);
    free(c->crows);
    sct_map_free(&c->merges);
    sct_map_free(&c->filters);
    free(c->placed);
    free(c->best_placed);
    free(c->best_state);
    free(c->stack);
    free(c->undo);
    free(c->by_invoke);
    free(c->by_respond);
    if (c->memo.words)
        sct_memo_free(&c->memo);
}

static bool sct_has_streams(const sct_ctx *c)
{
    for (int32_t i = 0; i < c->n; i++)
        if (c->recs[i].stream)
            return true;
    return false;
}

sct_check_result sct_check(const sct_history *h, char *why, size_t whylen)
{
    sct_check_result res = SCT_CHECK_OK;
    sct_why w = {why, whylen};
    sct_ctx c;
    if (why && whylen)
        why[0] = '\0';
    sct_ctx_init(&c, h);
    if (!sct_compile(&c, &w)) {
        res = SCT_CHECK_LINEARIZABILITY;
        goto out;
    }
    sct_ctx_prepare(&c);
    if (!sct_search(&c, false)) {
        sct_explain(&c, why, whylen);
        res = SCT_CHECK_LINEARIZABILITY;
    } else if (sct_has_streams(&c) && !sct_search(&c, true)) {
        sct_explain(&c, why, whylen);
        res = SCT_CHECK_STREAM;
    }
out:
    sct_ctx_free(&c);
    return res;
}

const char *sct_check_result_name(sct_check_result r)
{
    switch (r) {
    case SCT_CHECK_OK:
        return "ok";
    case SCT_CHECK_LINEARIZABILITY:
        return "linearizability violation";
    case SCT_CHECK_STREAM:
        return "streamed-query violation";
    }
    return "?";
}

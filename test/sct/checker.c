/*
 * checker.c -- linearizability of one recorded execution against a
 * sequential reference table (see checker.h for the reference's rules): the
 * search for an order. The reference, and the compiled history it steps
 * through, are checker_ref.c.
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
#include "checker_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Small helpers.                                                            */

/* The tester cannot go on without memory, and a half-checked history is
 * worse than a crash, so allocation failure stops the process here. */
void *sct_alloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "sct checker: out of memory\n");
        abort();
    }
    return p;
}

void *sct_grow(void *p, size_t n, size_t size)
{
    p = realloc(p, n * size);
    if (!p) {
        fprintf(stderr, "sct checker: out of memory\n");
        abort();
    }
    return p;
}

bool sct_say(sct_why *w, const char *fmt, ...)
{
    if (!w || !w->len)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->buf, w->len, fmt, ap);
    va_end(ap);
    return false;
}

uint64_t sct_mix(uint64_t x)
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

void sct_map_init(sct_map *m, size_t cap)
{
    m->cap = cap;
    m->n = 0;
    m->k = sct_alloc(cap, sizeof(*m->k));
    m->v = sct_alloc(cap, sizeof(*m->v));
    memset(m->k, 0xff, cap * sizeof(*m->k));
}

void sct_map_free(sct_map *m)
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

bool sct_map_get(const sct_map *m, uint64_t key, int32_t *out)
{
    size_t i = sct_map_slot(m, key);
    if (m->k[i] == SCT_MAP_EMPTY)
        return false;
    *out = m->v[i];
    return true;
}

static void sct_map_rehash(sct_map *m)
{
    sct_map old = *m;
    sct_map_init(m, old.cap * 2);
    for (size_t i = 0; i < old.cap; i++)
        if (old.k[i] != SCT_MAP_EMPTY)
            sct_map_put(m, old.k[i], old.v[i]);
    sct_map_free(&old);
}

void sct_map_put(sct_map *m, uint64_t key, int32_t v)
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

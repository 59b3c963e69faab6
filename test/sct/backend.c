/*
 * backend.c -- see backend.h. The decorator owns an in-memory table, logs
 * every version a successful batch leaves behind, and serves streams from
 * that log so that each row returned may be any version from the stream's
 * window.
 */
#include "backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct version {
    uint64_t seq;
    char *pk, *rk;
    mt_entity *row; /* NULL: absent from then on */
} version;

/* The inner table's runtime: the production one's uncontended mutexes, and
 * a clock that reads the execution's virtual time without being a
 * scheduling point (the inner table is called between scheduling points),
 * so that Timestamps, and the ETags made of them, replay exactly. */
typedef struct inner_rt {
    mt_rt rt; /* first: the table hands this pointer back */
    mt_rt_ops ops;
    sct_sched *s;
} inner_rt;

struct sct_backend {
    mt_table base;
    mt_table *inner;
    inner_rt irt;
    sct_sched *s;
    char name[16];
    uint64_t seq; /* bumped by each successful batch */
    version *log;
    size_t nlog, caplog;
};

/* How a call through a proxy's view reaches the backend (sct_backend_view);
 * NULL for direct calls. */
typedef struct gate {
    bool (*arrive)(void *ctx);
    void *ctx;
    char tag[16];
} gate;

typedef struct weak_stream {
    mt_stream base;
    sct_backend *b;
    const gate *g;
    mt_filter *f;
    uint64_t open_seq;
    mt_key cursor; /* return keys > cursor (or >= start before the first) */
    bool started;  /* cursor is exclusive */
    mt_entity *peeked;
    bool peeked_end;
} weak_stream;

static const char *op_name(mt_op_kind k)
{
    static const char *const names[] = {"Insert",          "Replace",        "Merge",
                                        "Delete",          "InsertOrReplace", "InsertOrMerge",
                                        "DeleteIfExists"};
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

/* A scheduling point before a call, and the injected failure if any: a
 * call through a view that arrives too late is refused. */
static mt_status enter(sct_backend *b, const gate *g, const char *what)
{
    char label[48];
    snprintf(label, sizeof label, "%s%s%s.%s", g ? g->tag : "", g ? ": " : "", b->name, what);
    sct_point(b->s, label);
    if (g && !g->arrive(g->ctx)) {
        sct_trace(b->s, "%s: %s.%s arrived too late -> 503", g->tag, b->name, what);
        return mt_error(503, MT_ERR_SERVER_BUSY,
                        "injected: the request spent longer on the wire than the lease "
                        "margin and never reached the service");
    }
    return mt_ok();
}

static void log_version(sct_backend *b, const char *pk, const char *rk)
{
    mt_entity *row = NULL;
    mt_status st = b->inner->ops->retrieve(b->inner, pk, rk, &row);
    if (!mt_is_ok(&st))
        row = NULL;
    if (b->nlog == b->caplog) {
        b->caplog = b->caplog ? b->caplog * 2 : 64;
        b->log = realloc(b->log, b->caplog * sizeof *b->log);
    }
    b->log[b->nlog++] = (version){.seq = b->seq, .pk = strdup(pk), .rk = strdup(rk), .row = row};
}

static void trace_batch(sct_backend *b, const mt_op *ops, size_t n, const mt_status *st)
{
    char buf[512];
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof buf - 64; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s(%s/%s%s%s)", i ? " " : "",
                                op_name(ops[i].kind), ops[i].entity->pk, ops[i].entity->rk,
                                ops[i].if_match ? " if " : "",
                                ops[i].if_match ? ops[i].if_match : "");
    if (mt_is_ok(st))
        sct_trace(b->s, "%s.batch [%s] -> ok", b->name, buf);
    else
        sct_trace(b->s, "%s.batch [%s] -> %d %s at %d", b->name, buf, st->http, st->code,
                  st->index);
}

static mt_status do_batch(sct_backend *b, const gate *g, const mt_op *ops, size_t n,
                          mt_op_result *res)
{
    mt_status st = enter(b, g, "batch");
    if (mt_is_ok(&st))
        st = b->inner->ops->execute_batch(b->inner, ops, n, res);
    if (mt_is_ok(&st)) {
        b->seq++;
        for (size_t i = 0; i < n; i++)
            log_version(b, ops[i].entity->pk, ops[i].entity->rk);
    }
    trace_batch(b, ops, n, &st);
    return st;
}

static mt_status do_query_atomic(sct_backend *b, const gate *g, const char *pk, const mt_filter *f,
                                 mt_entity_list *out)
{
    mt_status st = enter(b, g, "query");
    size_t before = out->n;
    if (mt_is_ok(&st))
        st = b->inner->ops->query_atomic(b->inner, pk, f, out);
    sct_trace(b->s, "%s.query %s -> %d, %zu rows", b->name, pk, st.http, out->n - before);
    return st;
}

static mt_status do_retrieve(sct_backend *b, const gate *g, const char *pk, const char *rk,
                             mt_entity **out)
{
    *out = NULL;
    mt_status st = enter(b, g, "retrieve");
    if (mt_is_ok(&st))
        st = b->inner->ops->retrieve(b->inner, pk, rk, out);
    sct_trace(b->s, "%s.retrieve %s/%s -> %d", b->name, pk, rk, st.http);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Weak streams.                                                             */

static bool after_cursor(const weak_stream *w, const char *pk, const char *rk)
{
    if (!w->cursor.pk)
        return true;
    int c = mt_key_cmp(pk, rk, w->cursor.pk, w->cursor.rk);
    return w->started ? c > 0 : c >= 0;
}

/* Is log entry i a version of its key within the window [open, now]? It is
 * if written after the open, or if it was the key's version at the open. */
static bool in_window(const sct_backend *b, size_t i, uint64_t open_seq)
{
    const version *v = &b->log[i];
    if (v->seq > open_seq)
        return true;
    for (size_t j = i + 1; j < b->nlog; j++)
        if (b->log[j].seq <= open_seq && strcmp(b->log[j].pk, v->pk) == 0 &&
            strcmp(b->log[j].rk, v->rk) == 0)
            return false;
    return true;
}

static bool visible(const weak_stream *w, const version *v)
{
    return v->row && (!w->f || mt_filter_eval(w->f, v->row));
}

/* The smallest key after the cursor with a visible version in the window. */
static const version *next_candidate(const weak_stream *w)
{
    const sct_backend *b = w->b;
    const version *best = NULL;
    for (size_t i = 0; i < b->nlog; i++) {
        const version *v = &b->log[i];
        if (!visible(w, v) || !after_cursor(w, v->pk, v->rk) || !in_window(b, i, w->open_seq))
            continue;
        if (!best || mt_key_cmp(v->pk, v->rk, best->pk, best->rk) < 0)
            best = v;
    }
    return best;
}

/* Picks one version of key k from the window, uniformly. */
static const version *pick_version(weak_stream *w, const char *pk, const char *rk)
{
    sct_backend *b = w->b;
    size_t idx[256], n = 0;
    for (size_t i = 0; i < b->nlog && n < 256; i++)
        if (strcmp(b->log[i].pk, pk) == 0 && strcmp(b->log[i].rk, rk) == 0 &&
            in_window(b, i, w->open_seq))
            idx[n++] = i;
    return &b->log[idx[sct_sched_rand(b->s, n)]];
}

static void set_cursor(weak_stream *w, const char *pk, const char *rk)
{
    char *p = strdup(pk), *r = strdup(rk);
    mt_key_clear(&w->cursor);
    w->cursor.pk = p;
    w->cursor.rk = r;
    w->started = true;
}

static mt_status weak_fetch(weak_stream *w, mt_entity **out)
{
    *out = NULL;
    mt_status st = enter(w->b, w->g, "stream.next");
    if (!mt_is_ok(&st))
        return st;
    const version *cand;
    while ((cand = next_candidate(w)) != NULL) {
        const version *v = pick_version(w, cand->pk, cand->rk);
        set_cursor(w, cand->pk, cand->rk);
        if (visible(w, v)) {
            *out = mt_entity_clone(v->row);
            break;
        }
    }
    if (*out)
        sct_trace(w->b->s, "%s.stream -> %s/%s %s", w->b->name, (*out)->pk, (*out)->rk,
                  (*out)->etag);
    else
        sct_trace(w->b->s, "%s.stream -> end", w->b->name);
    return st;
}

static mt_status weak_next(mt_stream *base, mt_entity **out)
{
    weak_stream *w = (weak_stream *)base;
    if (w->peeked || w->peeked_end) {
        *out = w->peeked;
        w->peeked = NULL;
        w->peeked_end = false;
        return mt_ok();
    }
    return weak_fetch(w, out);
}

static mt_status weak_continuation(mt_stream *base, mt_key *out, bool *more)
{
    weak_stream *w = (weak_stream *)base;
    if (!w->peeked && !w->peeked_end) {
        mt_status st = weak_fetch(w, &w->peeked);
        if (!mt_is_ok(&st))
            return st;
        w->peeked_end = !w->peeked;
    }
    *more = w->peeked != NULL;
    if (*more)
        mt_key_set(out, w->peeked->pk, w->peeked->rk);
    return mt_ok();
}

static void weak_close(mt_stream *base)
{
    weak_stream *w = (weak_stream *)base;
    mt_entity_free(w->peeked);
    mt_key_clear(&w->cursor);
    mt_filter_free(w->f);
    free(w);
}

static const mt_stream_ops weak_ops = {
    .next = weak_next,
    .continuation = weak_continuation,
    .close = weak_close,
};

static mt_status do_query_stream(sct_backend *b, const gate *g, const mt_filter *f,
                                 const mt_key *start, mt_stream **out)
{
    *out = NULL;
    mt_status st = enter(b, g, "stream.open");
    if (!mt_is_ok(&st))
        return st;
    weak_stream *w = calloc(1, sizeof *w);
    w->base.ops = &weak_ops;
    w->b = b;
    w->g = g;
    w->f = f ? mt_filter_clone(f) : NULL;
    w->open_seq = b->seq;
    if (start)
        mt_key_set(&w->cursor, start->pk, start->rk);
    sct_trace(b->s, "%s.stream open from %s/%s", b->name, start ? start->pk : "-",
              start ? start->rk : "-");
    *out = &w->base;
    return st;
}

static mt_status be_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *res)
{
    return do_batch((sct_backend *)t, NULL, ops, n, res);
}

static mt_status be_query_atomic(mt_table *t, const char *pk, const mt_filter *f,
                                 mt_entity_list *out)
{
    return do_query_atomic((sct_backend *)t, NULL, pk, f, out);
}

static mt_status be_query_stream(mt_table *t, const mt_filter *f, const mt_key *start,
                                 mt_stream **out)
{
    return do_query_stream((sct_backend *)t, NULL, f, start, out);
}

static mt_status be_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    return do_retrieve((sct_backend *)t, NULL, pk, rk, out);
}

static void be_destroy(mt_table *t)
{
    sct_backend *b = (sct_backend *)t;
    for (size_t i = 0; i < b->nlog; i++) {
        free(b->log[i].pk);
        free(b->log[i].rk);
        mt_entity_free(b->log[i].row);
    }
    free(b->log);
    mt_table_destroy(b->inner);
    free(b);
}

static const mt_table_ops be_ops = {
    .execute_batch = be_batch,
    .query_atomic = be_query_atomic,
    .query_stream = be_query_stream,
    .retrieve = be_retrieve,
    .destroy = be_destroy,
};

static int64_t inner_now_ticks(mt_rt *rt)
{
    const inner_rt *r = (const inner_rt *)rt;
    return SCT_CLOCK_BASE_TICKS + sct_sched_now_ms(r->s) * SCT_TICKS_PER_MS +
           (int64_t)sct_sched_steps(r->s) * SCT_TICKS_PER_STEP;
}

mt_table *sct_backend_new(sct_sched *s, const char *name)
{
    sct_backend *b = calloc(1, sizeof *b);
    b->base.ops = &be_ops;
    /* The inner table is only touched between scheduling points, on one OS
     * thread; the production runtime's uncontended mutex is all it needs,
     * and its clock is the execution's (inner_rt). */
    b->irt.ops = *mt_rt_pthread()->ops;
    b->irt.ops.now_ticks = inner_now_ticks;
    b->irt.rt.ops = &b->irt.ops;
    b->irt.s = s;
    b->inner = mt_memtable_new(&b->irt.rt, name);
    b->s = s;
    snprintf(b->name, sizeof b->name, "%s", name);
    return &b->base;
}

/* ------------------------------------------------------------------------ */
/* A proxy's view: the same backend, calls gated on arrival.                 */

typedef struct view {
    mt_table base;
    sct_backend *b;
    gate g;
} view;

static mt_status vw_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *res)
{
    view *v = (view *)t;
    return do_batch(v->b, &v->g, ops, n, res);
}

static mt_status vw_query(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    view *v = (view *)t;
    return do_query_atomic(v->b, &v->g, pk, f, out);
}

static mt_status vw_stream(mt_table *t, const mt_filter *f, const mt_key *k, mt_stream **out)
{
    view *v = (view *)t;
    return do_query_stream(v->b, &v->g, f, k, out);
}

static mt_status vw_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    view *v = (view *)t;
    return do_retrieve(v->b, &v->g, pk, rk, out);
}

static void vw_destroy(mt_table *t)
{
    free(t);
}

static const mt_table_ops view_ops = {
    .execute_batch = vw_batch,
    .query_atomic = vw_query,
    .query_stream = vw_stream,
    .retrieve = vw_retrieve,
    .destroy = vw_destroy,
};

mt_table *sct_backend_view(mt_table *backend, const char *tag, bool (*arrive)(void *ctx), void *ctx)
{
    view *v = calloc(1, sizeof *v);
    v->base.ops = &view_ops;
    v->b = (sct_backend *)backend;
    v->g.arrive = arrive;
    v->g.ctx = ctx;
    snprintf(v->g.tag, sizeof v->g.tag, "%s", tag);
    return &v->base;
}

/* ------------------------------------------------------------------------ */
/* A caller that dies: forwards until the budget is spent, then fails.       */

typedef struct dying {
    mt_table base;
    mt_table *inner;
    int64_t *budget;
} dying;

static bool dying_spend(mt_table *t)
{
    dying *d = (dying *)t;
    if (*d->budget <= 0)
        return false;
    (*d->budget)--;
    return true;
}

static mt_status dying_dead(void)
{
    return mt_error(500, MT_ERR_INTERNAL, "injected failure: the caller is dead");
}

static mt_status dy_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *r)
{
    mt_table *in = ((dying *)t)->inner;
    return dying_spend(t) ? in->ops->execute_batch(in, ops, n, r) : dying_dead();
}

static mt_status dy_query(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    mt_table *in = ((dying *)t)->inner;
    return dying_spend(t) ? in->ops->query_atomic(in, pk, f, out) : dying_dead();
}

static mt_status dy_stream(mt_table *t, const mt_filter *f, const mt_key *k, mt_stream **out)
{
    mt_table *in = ((dying *)t)->inner;
    return dying_spend(t) ? in->ops->query_stream(in, f, k, out) : dying_dead();
}

static mt_status dy_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    mt_table *in = ((dying *)t)->inner;
    return dying_spend(t) ? in->ops->retrieve(in, pk, rk, out) : dying_dead();
}

static void dy_destroy(mt_table *t)
{
    free(t);
}

static const mt_table_ops dying_ops = {
    .execute_batch = dy_batch,
    .query_atomic = dy_query,
    .query_stream = dy_stream,
    .retrieve = dy_retrieve,
    .destroy = dy_destroy,
};

mt_table *sct_backend_dying(mt_table *inner, int64_t *budget)
{
    dying *d = calloc(1, sizeof *d);
    d->base.ops = &dying_ops;
    d->inner = inner;
    d->budget = budget;
    return &d->base;
}

void sct_backend_dump(mt_table *t, mt_entity_list *out)
{
    sct_backend *b = (sct_backend *)t;
    mt_table_scan(b->inner, NULL, out);
}

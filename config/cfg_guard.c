/*
 * cfg_guard.c -- a backend table that lets calls through only while the
 * proxy holds a lease.
 *
 * The authority stops waiting for a proxy once its lease has run out, and
 * may then push the phase after next; from that moment nothing this proxy
 * does under its old phase is safe. So the check sits in front of every
 * backend call, not only at the start of an operation: an operation that
 * began with a lease and is still running when it runs out fails at its
 * next call with 503 ServerBusy, which SDKs retry. A call already sent is
 * covered by the authority's margin.
 */
#include "cfg.h"

#include <stdlib.h>

typedef struct guard {
    mt_table base;
    mt_table *inner;
    bool (*valid)(void *ctx);
    void *ctx;
    bool leader; /* refusals say NotLeader: the caller must stop */
} guard;

typedef struct guard_stream {
    mt_stream base;
    mt_stream *inner;
    guard *g;
} guard_stream;

static mt_status refuse_for(const guard *g)
{
    if (g->leader)
        return mt_error(503, MT_ERR_NOT_LEADER,
                        "This authority replica does not lead the migration now.");
    return mt_error(503, MT_ERR_SERVER_BUSY,
                    "This proxy holds no lease on the migration phase (its configuration "
                    "endpoint is unreachable); retry shortly.");
}

static mt_status guard_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *res)
{
    guard *g = (guard *)t;
    if (!g->valid(g->ctx))
        return refuse_for(g);
    return g->inner->ops->execute_batch(g->inner, ops, n, res);
}

static mt_status guard_atomic(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    guard *g = (guard *)t;
    if (!g->valid(g->ctx))
        return refuse_for(g);
    return g->inner->ops->query_atomic(g->inner, pk, f, out);
}

static mt_status guard_retrieve_as(mt_table *t, const char *pk, const char *rk, bool share,
                                   mt_entity **out)
{
    guard *g = (guard *)t;
    if (!g->valid(g->ctx))
        return refuse_for(g);
    return mt_table_retrieve(g->inner, pk, rk, share, out);
}

static mt_status guard_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    return guard_retrieve_as(t, pk, rk, false, out);
}

static mt_status guard_retrieve_shared(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    return guard_retrieve_as(t, pk, rk, true, out);
}

static mt_status gs_next(mt_stream *s, mt_entity **out)
{
    guard_stream *gs = (guard_stream *)s;
    *out = NULL;
    if (!gs->g->valid(gs->g->ctx))
        return refuse_for(gs->g);
    return gs->inner->ops->next(gs->inner, out);
}

static mt_status gs_continuation(mt_stream *s, mt_key *out, bool *more)
{
    guard_stream *gs = (guard_stream *)s;
    if (!gs->g->valid(gs->g->ctx))
        return refuse_for(gs->g);
    return gs->inner->ops->continuation(gs->inner, out, more);
}

static void gs_close(mt_stream *s)
{
    guard_stream *gs = (guard_stream *)s;
    gs->inner->ops->close(gs->inner);
    free(gs);
}

static const mt_stream_ops guard_stream_ops = {
    .next = gs_next,
    .continuation = gs_continuation,
    .close = gs_close,
};

/* Opens a stream of every row (keys) or of those f matches. */
static mt_status guard_open(mt_table *t, const mt_filter *f, bool keys, const mt_key *start,
                            mt_stream **out)
{
    guard *g = (guard *)t;
    *out = NULL;
    if (!g->valid(g->ctx))
        return refuse_for(g);
    guard_stream *gs = calloc(1, sizeof *gs);
    if (!gs)
        return mt_oom();
    mt_status st = keys ? mt_table_keys(g->inner, start, &gs->inner)
                        : g->inner->ops->query_stream(g->inner, f, start, &gs->inner);
    if (!mt_is_ok(&st)) {
        free(gs);
        return st;
    }
    gs->base.ops = &guard_stream_ops;
    gs->g = g;
    *out = &gs->base;
    return st;
}

static mt_status guard_stream_open(mt_table *t, const mt_filter *f, const mt_key *start,
                                   mt_stream **out)
{
    return guard_open(t, f, false, start, out);
}

static mt_status guard_keys(mt_table *t, const mt_key *start, mt_stream **out)
{
    return guard_open(t, NULL, true, start, out);
}

/* None while the lease is out: a read then must fail as it would. */
static bool guard_version(mt_table *t, uint64_t *out)
{
    guard *g = (guard *)t;
    return g->valid(g->ctx) && mt_table_write_version(g->inner, out);
}

static void guard_destroy(mt_table *t)
{
    free(t);
}

static const mt_table_ops guard_ops = {
    .execute_batch = guard_batch,
    .query_atomic = guard_atomic,
    .query_stream = guard_stream_open,
    .retrieve = guard_retrieve,
    .destroy = guard_destroy,
    .query_keys = guard_keys,
    .write_version = guard_version,
    .retrieve_shared = guard_retrieve_shared,
};

mt_table *cfg_guard_new(mt_table *inner, bool (*valid)(void *ctx), void *ctx)
{
    guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->base.ops = &guard_ops;
    g->inner = inner;
    g->valid = valid;
    g->ctx = ctx;
    return &g->base;
}

mt_table *cfg_guard_leader_new(mt_table *inner, bool (*valid)(void *ctx), void *ctx)
{
    mt_table *t = cfg_guard_new(inner, valid, ctx);
    if (t)
        ((guard *)t)->leader = true;
    return t;
}

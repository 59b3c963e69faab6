/*
 * retrying.c -- a view of a backend table that rides out transient errors,
 * for the migrator.
 *
 * A migration runs for hours; one 503 ServerBusy or one write whose outcome
 * was lost must not end it (and restarting would copy from the beginning
 * again). Every call the migrator makes is safe to repeat: copies meet the
 * row already there (409, handled), switching re-reads the partition state,
 * cleanup is conditional on the ETag it read and re-reads on 404/412. So
 * this view simply repeats a call that failed with a 5xx, and a stream that
 * failed is reopened at the last key it returned. Client operations never
 * go through it: their retries are decided by the backend client, which
 * knows which requests are idempotent.
 *
 * The backend client already backs off between its own attempts, so no
 * sleeping happens here (the core has no clock to sleep on).
 */
#include "migrating_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct retrying {
    mt_table base;
    mt_table *inner;
    int attempts;
} retrying;

typedef struct retrying_stream {
    mt_stream base;
    retrying *t;
    mt_stream *inner;
    mt_filter *f;
    mt_key last; /* the last key returned; pk NULL before the first */
} retrying_stream;

static bool transient(const mt_status *st)
{
    return st->http >= 500;
}

static mt_status r_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *res)
{
    retrying *r = (retrying *)t;
    mt_status st = mt_table_batch(r->inner, ops, n, res);
    for (int i = 1; i < r->attempts && transient(&st); i++)
        st = mt_table_batch(r->inner, ops, n, res);
    return st;
}

static mt_status r_query(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    retrying *r = (retrying *)t;
    size_t before = out->n;
    mt_status st = r->inner->ops->query_atomic(r->inner, pk, f, out);
    for (int i = 1; i < r->attempts && transient(&st); i++) {
        while (out->n > before)
            mt_entity_free(out->v[--out->n]);
        st = r->inner->ops->query_atomic(r->inner, pk, f, out);
    }
    return st;
}

static mt_status r_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    retrying *r = (retrying *)t;
    mt_status st = r->inner->ops->retrieve(r->inner, pk, rk, out);
    for (int i = 1; i < r->attempts && transient(&st); i++)
        st = r->inner->ops->retrieve(r->inner, pk, rk, out);
    return st;
}

/* (Re)opens the inner stream at the last key returned (or start). */
static mt_status rs_open(retrying_stream *s, const mt_key *start)
{
    if (s->inner)
        s->inner->ops->close(s->inner);
    s->inner = NULL;
    const mt_key *from = s->last.pk ? &s->last : start;
    mt_status st = s->t->inner->ops->query_stream(s->t->inner, s->f, from, &s->inner);
    for (int i = 1; i < s->t->attempts && transient(&st); i++)
        st = s->t->inner->ops->query_stream(s->t->inner, s->f, from, &s->inner);
    return st;
}

static mt_status rs_next(mt_stream *base, mt_entity **out)
{
    retrying_stream *s = (retrying_stream *)base;
    *out = NULL;
    mt_status st = mt_ok();
    for (int i = 0; i < s->t->attempts; i++) {
        if (!s->inner)
            st = rs_open(s, NULL);
        if (mt_is_ok(&st))
            st = s->inner->ops->next(s->inner, out);
        /* A reopened stream starts at the last key, inclusive: skip it. */
        while (mt_is_ok(&st) && *out && s->last.pk &&
               mt_key_cmp((*out)->pk, (*out)->rk, s->last.pk, s->last.rk) <= 0) {
            mt_entity_free(*out);
            *out = NULL;
            st = s->inner->ops->next(s->inner, out);
        }
        if (!transient(&st))
            break;
        s->inner->ops->close(s->inner);
        s->inner = NULL;
    }
    if (mt_is_ok(&st) && *out)
        mt_key_set(&s->last, (*out)->pk, (*out)->rk);
    return st;
}

static mt_status rs_continuation(mt_stream *base, mt_key *out, bool *more)
{
    retrying_stream *s = (retrying_stream *)base;
    *more = false;
    return s->inner ? s->inner->ops->continuation(s->inner, out, more) : mt_ok();
}

static void rs_close(mt_stream *base)
{
    retrying_stream *s = (retrying_stream *)base;
    if (s->inner)
        s->inner->ops->close(s->inner);
    mt_filter_free(s->f);
    mt_key_clear(&s->last);
    free(s);
}

static const mt_stream_ops rs_ops = {
    .next = rs_next,
    .continuation = rs_continuation,
    .close = rs_close,
};

static mt_status r_stream(mt_table *t, const mt_filter *f, const mt_key *start, mt_stream **out)
{
    retrying_stream *s = calloc(1, sizeof *s);
    if (!s)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    s->base.ops = &rs_ops;
    s->t = (retrying *)t;
    s->f = f ? mt_filter_clone(f) : NULL;
    mt_status st = rs_open(s, start);
    if (!mt_is_ok(&st)) {
        rs_close(&s->base);
        *out = NULL;
        return st;
    }
    *out = &s->base;
    return st;
}

static void r_destroy(mt_table *t)
{
    free(t);
}

static const mt_table_ops r_ops = {
    .execute_batch = r_batch,
    .query_atomic = r_query,
    .query_stream = r_stream,
    .retrieve = r_retrieve,
    .destroy = r_destroy,
};

mt_table *mt_mig_retrying_new(mt_table *inner, int attempts)
{
    retrying *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->base.ops = &r_ops;
    r->inner = inner;
    r->attempts = attempts;
    return &r->base;
}

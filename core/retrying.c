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
 * A 503 ServerBusy is the service asking for less load: the view waits
 * before repeating it (MT_BACKOFF_FIRST_MS, doubling up to
 * MT_BACKOFF_MAX_MS, through the runtime's timed wait so the tester owns
 * the clock) and allows it more repeats than other 5xx, since throttling
 * can last longer than a blip. Other 5xx are repeated at once: the backend
 * client already backed off between its own attempts.
 */
#include "migrator_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct retrying {
    mt_table base;
    mt_table *inner;
    int attempts;      /* in all, for a 5xx other than 503 */
    int busy_attempts; /* in all, for a 503 */
    mt_backoff *bo;    /* may be NULL: no waiting */
} retrying;

typedef struct retrying_stream {
    mt_stream base;
    retrying *t;
    mt_stream *inner;
    mt_filter *f;
    bool keys;   /* opened by query_keys */
    mt_key last; /* the last key returned; pk NULL before the first */
} retrying_stream;

static bool transient(const mt_status *st)
{
    /* A replica that stopped leading must stop, not wait its backoff out. */
    return st->http >= 500 && strcmp(st->code, MT_ERR_NOT_LEADER) != 0;
}

/* Whether to repeat a call that gave st after `attempt` attempts; waits
 * first when the backend said it is busy. */
static bool again(retrying *r, const mt_status *st, int attempt)
{
    if (!transient(st))
        return false;
    if (r->bo)
        mt_backoff_note(r->bo, st);
    if (st->http != 503)
        return attempt < r->attempts;
    if (attempt >= r->busy_attempts)
        return false;
    if (r->bo)
        mt_backoff_wait(r->bo, attempt);
    return true;
}

static mt_status r_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *res)
{
    retrying *r = (retrying *)t;
    mt_status st = mt_table_batch(r->inner, ops, n, res);
    for (int i = 1; again(r, &st, i); i++)
        st = mt_table_batch(r->inner, ops, n, res);
    return st;
}

static mt_status r_query(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    retrying *r = (retrying *)t;
    size_t before = out->n;
    mt_status st = r->inner->ops->query_atomic(r->inner, pk, f, out);
    for (int i = 1; again(r, &st, i); i++) {
        while (out->n > before)
            mt_entity_free(out->v[--out->n]);
        st = r->inner->ops->query_atomic(r->inner, pk, f, out);
    }
    return st;
}

static mt_status r_retrieve_as(mt_table *t, const char *pk, const char *rk, bool share,
                               mt_entity **out)
{
    retrying *r = (retrying *)t;
    mt_status st = mt_table_retrieve(r->inner, pk, rk, share, out);
    for (int i = 1; again(r, &st, i); i++)
        st = mt_table_retrieve(r->inner, pk, rk, share, out);
    return st;
}

static mt_status r_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    return r_retrieve_as(t, pk, rk, false, out);
}

static mt_status r_retrieve_shared(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    return r_retrieve_as(t, pk, rk, true, out);
}

/* (Re)opens the inner stream at the last key returned (or start). */
static mt_status rs_open(retrying_stream *s, const mt_key *start)
{
    if (s->inner)
        s->inner->ops->close(s->inner);
    s->inner = NULL;
    const mt_key *from = s->last.pk ? &s->last : start;
    mt_table *in = s->t->inner;
    mt_status st = s->keys ? mt_table_keys(in, from, &s->inner)
                           : in->ops->query_stream(in, s->f, from, &s->inner);
    for (int i = 1; again(s->t, &st, i); i++)
        st = s->keys ? mt_table_keys(in, from, &s->inner)
                     : in->ops->query_stream(in, s->f, from, &s->inner);
    return st;
}

static mt_status rs_next(mt_stream *base, mt_entity **out)
{
    retrying_stream *s = (retrying_stream *)base;
    *out = NULL;
    mt_status st = mt_ok();
    for (int i = 1;; i++) {
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
        if (!again(s->t, &st, i))
            break;
        if (s->inner) /* NULL when the reopen itself failed */
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

static mt_status r_open(mt_table *t, const mt_filter *f, bool keys, const mt_key *start,
                        mt_stream **out)
{
    retrying_stream *s = calloc(1, sizeof *s);
    if (!s)
        return mt_oom();
    s->base.ops = &rs_ops;
    s->t = (retrying *)t;
    s->f = f ? mt_filter_clone(f) : NULL;
    s->keys = keys;
    mt_status st = rs_open(s, start);
    if (!mt_is_ok(&st)) {
        rs_close(&s->base);
        *out = NULL;
        return st;
    }
    *out = &s->base;
    return st;
}

static mt_status r_stream(mt_table *t, const mt_filter *f, const mt_key *start, mt_stream **out)
{
    return r_open(t, f, false, start, out);
}

static mt_status r_keys(mt_table *t, const mt_key *start, mt_stream **out)
{
    return r_open(t, NULL, true, start, out);
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
    .query_keys = r_keys,
    .retrieve_shared = r_retrieve_shared,
};

mt_table *mt_mig_retrying_backoff_new(mt_table *inner, int attempts, int busy_attempts,
                                      mt_backoff *b)
{
    retrying *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->base.ops = &r_ops;
    r->inner = inner;
    r->attempts = attempts;
    r->busy_attempts = busy_attempts;
    r->bo = b;
    return &r->base;
}

mt_table *mt_mig_retrying_new(mt_table *inner, int attempts)
{
    return mt_mig_retrying_backoff_new(inner, attempts, attempts, NULL);
}

/* ------------------------------------------------------------------------ */
/* The backoff waits.                                                        */

bool mt_backoff_init(mt_backoff *b, mt_rt *rt)
{
    *b = (mt_backoff){.rt = rt};
    b->mu = rt->ops->mutex_new(rt);
    b->cv = b->mu ? rt->ops->cond_new(rt) : NULL;
    if (!b->cv) {
        mt_backoff_clear(b);
        return false;
    }
    return true;
}

void mt_backoff_clear(mt_backoff *b)
{
    if (b->cv)
        b->rt->ops->cond_free(b->rt, b->cv);
    if (b->mu)
        b->rt->ops->mutex_free(b->rt, b->mu);
    b->cv = NULL;
    b->mu = NULL;
}

int64_t mt_backoff_delay_ms(int attempt)
{
    int64_t ms = MT_BACKOFF_FIRST_MS;
    for (int i = 1; i < attempt && ms < MT_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < MT_BACKOFF_MAX_MS ? ms : MT_BACKOFF_MAX_MS;
}

void mt_backoff_wait(mt_backoff *b, int attempt)
{
    mt_rt *rt = b->rt;
    rt->ops->lock(rt, b->mu);
    b->count++;
    int64_t deadline = rt->ops->mono_ms(rt) + mt_backoff_delay_ms(attempt);
    /* Nobody signals cv, so only the deadline (or a spurious wake-up, which
     * the loop absorbs) ends the wait. */
    while (rt->ops->mono_ms(rt) < deadline)
        rt->ops->cond_timedwait(rt, b->cv, b->mu, deadline);
    rt->ops->unlock(rt, b->mu);
}

void mt_backoff_note(mt_backoff *b, const mt_status *st)
{
    b->rt->ops->lock(b->rt, b->mu);
    b->last = *st;
    b->rt->ops->unlock(b->rt, b->mu);
}

void mt_backoff_last(mt_backoff *b, char *out, size_t cap)
{
    b->rt->ops->lock(b->rt, b->mu);
    mt_status st = b->last;
    b->rt->ops->unlock(b->rt, b->mu);
    if (cap == 0)
        return;
    out[0] = '\0';
    if (!mt_is_ok(&st) && snprintf(out, cap, "%d %s: %s", st.http, st.code, st.message) < 0)
        out[0] = '\0';
}

int64_t mt_backoff_count(mt_backoff *b)
{
    b->rt->ops->lock(b->rt, b->mu);
    int64_t n = b->count;
    b->rt->ops->unlock(b->rt, b->mu);
    return n;
}

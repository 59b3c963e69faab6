/*
 * config_local.c -- the in-process configuration service.
 *
 * One process, one current configuration, any number of subscriptions.
 *
 * Two kinds of subscription exist. A *fixed* one (no callback) is what every
 * ordinary operation holds for its whole duration: it refuses updates, so a
 * push cannot complete while an operation that started under the old phase
 * is still running. A *callback* one is what a streamed query holds: the
 * pusher calls it to move the stream to the new phase and counts it as
 * applied once the callback returns.
 *
 * push() therefore: bumps the version, applies the callbacks one by one
 * (outside the service mutex, because a callback takes the stream's own lock,
 * and a stream takes that lock before it subscribes), then waits until every
 * fixed subscription that existed at the time of the push has gone. Then the
 * configuration is *settled*: no client remains in an earlier phase.
 *
 * A subscription being applied cannot be freed under the pusher's feet:
 * unsubscribe() waits until its callback has returned. So a stream must
 * never unsubscribe while holding the lock its callback takes.
 */
#include "mt.h"

#include <stdlib.h>

struct mt_subscription {
    mt_subscription *prev, *next;
    mt_subscriber sub;  /* sub.apply == NULL: fixed */
    int64_t push_epoch; /* the push that must still hear from it, or 0 */
    bool applying;
};

typedef struct local_svc {
    mt_config_service base;
    mt_rt *rt;
    mt_mutex *mu;      /* guards everything below */
    mt_mutex *push_mu; /* one push at a time */
    mt_cond *changed;  /* a subscription went away or finished applying */
    mt_config cur;
    int64_t epoch;        /* counts moves; tags who still has to apply one */
    mt_subscription head; /* circular list sentinel */
} local_svc;

static void list_unlink(mt_subscription *s)
{
    s->prev->next = s->next;
    s->next->prev = s->prev;
    s->prev = s->next = s;
}

static mt_subscription *local_subscribe(mt_config_service *base, const mt_subscriber *sub,
                                        mt_config *current)
{
    local_svc *s = (local_svc *)base;
    mt_subscription *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (sub)
        r->sub = *sub;
    s->rt->ops->lock(s->rt, s->mu);
    r->next = &s->head;
    r->prev = s->head.prev;
    s->head.prev->next = r;
    s->head.prev = r;
    *current = s->cur;
    s->rt->ops->unlock(s->rt, s->mu);
    return r;
}

static void local_unsubscribe(mt_config_service *base, mt_subscription *r)
{
    local_svc *s = (local_svc *)base;
    if (!r)
        return;
    s->rt->ops->lock(s->rt, s->mu);
    while (r->applying)
        s->rt->ops->cond_wait(s->rt, s->changed, s->mu);
    list_unlink(r);
    s->rt->ops->cond_broadcast(s->rt, s->changed);
    s->rt->ops->unlock(s->rt, s->mu);
    free(r);
}

/* A callback subscription that still has to apply push `epoch`, or NULL. */
static mt_subscription *next_to_apply(local_svc *s, int64_t epoch)
{
    for (mt_subscription *r = s->head.next; r != &s->head; r = r->next)
        if (r->sub.apply && r->push_epoch == epoch)
            return r;
    return NULL;
}

static bool fixed_pending(local_svc *s, int64_t epoch)
{
    for (mt_subscription *r = s->head.next; r != &s->head; r = r->next)
        if (!r->sub.apply && r->push_epoch == epoch)
            return true;
    return false;
}

/* Moves to (phase, version) and waits for every subscriber of the time;
 * settled says whether that also settles it (a purely local service) or a
 * caller will (mt_config_local_settle) once remote clients answered;
 * version -1 means the next one; generation -1 keeps the roles. The
 * epoch is a private counter, so a version set from outside (it may even
 * go back when an authority lost its memory store) never confuses it. */
static mt_status local_move(local_svc *s, mt_phase phase, int64_t generation, int64_t version,
                            bool settle)
{
    mt_rt *rt = s->rt;

    rt->ops->lock(rt, s->push_mu);
    rt->ops->lock(rt, s->mu);
    s->cur.phase = phase;
    if (generation >= 0) {
        s->cur.generation = generation;
        s->cur.reversed = generation % 2 != 0;
    }
    s->cur.version = version < 0 ? s->cur.version + 1 : version;
    s->cur.settled = false;
    int64_t epoch = ++s->epoch;
    mt_config c = s->cur;
    for (mt_subscription *r = s->head.next; r != &s->head; r = r->next)
        r->push_epoch = epoch;

    mt_subscription *r;
    while ((r = next_to_apply(s, epoch)) != NULL) {
        r->applying = true;
        r->push_epoch = 0;
        rt->ops->unlock(rt, s->mu);
        r->sub.apply(r->sub.ctx, &c);
        rt->ops->lock(rt, s->mu);
        r->applying = false;
        rt->ops->cond_broadcast(rt, s->changed);
    }
    while (fixed_pending(s, epoch))
        rt->ops->cond_wait(rt, s->changed, s->mu);
    /* A later push may have started meanwhile only if push_mu were not
     * held, so cur is still ours. */
    if (settle)
        s->cur.settled = true;
    rt->ops->unlock(rt, s->mu);
    rt->ops->unlock(rt, s->push_mu);
    return mt_ok();
}

static mt_status local_push(mt_config_service *base, mt_phase phase)
{
    return local_move((local_svc *)base, phase, -1, -1, true);
}

static void local_destroy(mt_config_service *base)
{
    local_svc *s = (local_svc *)base;
    if (!s)
        return;
    while (s->head.next != &s->head) {
        mt_subscription *r = s->head.next;
        list_unlink(r);
        free(r);
    }
    s->rt->ops->cond_free(s->rt, s->changed);
    s->rt->ops->mutex_free(s->rt, s->push_mu);
    s->rt->ops->mutex_free(s->rt, s->mu);
    free(s);
}

static const mt_config_ops local_ops;

mt_status mt_config_local_set(mt_config_service *base, mt_phase phase, int64_t version,
                              bool settled)
{
    return local_move((local_svc *)base, phase, -1, version, settled);
}

mt_status mt_config_local_set_roles(mt_config_service *base, mt_phase phase, int64_t generation,
                                    int64_t version, bool settled)
{
    return local_move((local_svc *)base, phase, generation < 0 ? 0 : generation, version, settled);
}

void mt_config_local_settle(mt_config_service *base, int64_t version)
{
    local_svc *s = (local_svc *)base;
    s->rt->ops->lock(s->rt, s->mu);
    if (s->cur.version == version)
        s->cur.settled = true;
    s->rt->ops->unlock(s->rt, s->mu);
}

static const mt_config_ops local_ops = {
    .subscribe = local_subscribe,
    .unsubscribe = local_unsubscribe,
    .push = local_push,
    .destroy = local_destroy,
};

mt_config_service *mt_config_local_new(mt_rt *rt, mt_phase initial)
{
    local_svc *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base.ops = &local_ops;
    s->rt = rt;
    s->mu = rt->ops->mutex_new(rt);
    s->push_mu = rt->ops->mutex_new(rt);
    s->changed = rt->ops->cond_new(rt);
    if (!s->mu || !s->push_mu || !s->changed) {
        if (s->changed)
            rt->ops->cond_free(rt, s->changed);
        if (s->push_mu)
            rt->ops->mutex_free(rt, s->push_mu);
        if (s->mu)
            rt->ops->mutex_free(rt, s->mu);
        free(s);
        return NULL;
    }
    s->cur.phase = initial;
    s->cur.version = 1;
    s->cur.settled = true;
    s->head.next = s->head.prev = &s->head;
    return &s->base;
}

mt_config mt_config_now(mt_config_service *s)
{
    mt_config c;
    mt_subscription *sub = s->ops->subscribe(s, NULL, &c);
    s->ops->unsubscribe(s, sub);
    return c;
}

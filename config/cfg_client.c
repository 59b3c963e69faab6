/*
 * cfg_client.c -- a proxy's side of the lease protocol.
 *
 * One thread per client talks to the authority in a loop: acknowledge (and
 * so renew) the applied version whenever a renewal is due, then long-poll
 * for a newer state until the next renewal is due. On a new version it
 * first moves the proxy's own operations (the local service: new operations
 * start in the new phase, and the move returns once every operation of the
 * old phase has finished), and only then acknowledges: the authority must
 * never hear "done" from a proxy that still has an old-phase write on the
 * wire. The seeded bug AckBeforeDrain swaps the two.
 *
 * The lease runs from the moment the acknowledgement was *sent*: the
 * authority starts counting later, so the proxy always gives up first.
 * Leases differ in length (long ones at rest, see cfg_authority.c); a
 * proxy that applies a version with a shorter lease cuts its own to that
 * length at once.
 * Renewals are due every third of the lease, so two may fail before the
 * lease runs out. Without a lease the guard (cfg_guard.c) keeps every
 * backend call out, and the loop keeps trying: the proxy recovers by
 * itself once the authority answers again.
 *
 * It follows only states that come after its own (cfg_view_follows): a
 * state from a restarted, empty or foreign authority is refused, logged
 * and reported, and the proxy keeps its phase until its lease runs out.
 * Every control-plane event is one log line through the caller's logger,
 * so an operator sees a lost lease or a refused token without asking.
 */
#include "cfg.h"
#include "mt_bugs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renew at least this often, also under a long lease: a proxy must hold
 * nearly a whole lease when its authority goes away. */
#define RENEW_MAX_MS 60000
/* Before the first answer the lease time is unknown; ask this often. */
#define FIRST_WAIT_MS 1000
/* After a failed call, wait this long before the next one (doubling), but
 * never more than an eighth of the lease: once the authority is back (a
 * restart, a healed link) the proxy must reach it while its lease lasts. */
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000

struct cfg_client {
    mt_config_service svc; /* first: the service handed to callers */
    mt_rt *rt;
    cfg_transport tr;
    char id[CFG_ID_MAX];
    char fingerprint[CFG_FINGERPRINT_MAX];
    void (*log)(void *ctx, int level, const char *msg);
    void *log_ctx;
    mt_config_service *local;
    mt_thread *thread;

    mt_mutex *mu; /* guards everything below */
    mt_cond *changed;
    bool stopping;
    cfg_view applied;    /* version 0 until the first fetch */
    int64_t lease_until; /* mono ms; 0: none yet */
    int64_t acked_version;
    int64_t failures;
    char last_error[256];
    char refused[512];
    bool released;
};

/* The loop's own state; only its thread touches it. */
typedef struct loop_state {
    int64_t next_renew; /* mono ms */
    int64_t retry_ms;
    bool must_ack; /* a new version waits for its acknowledgement */
    bool refetch;  /* the authority refused our version */
    bool had_lease;
    bool lost_lease; /* logged as lost, not regained yet */
} loop_state;

static int64_t now_ms(cfg_client *c)
{
    return c->rt->ops->mono_ms(c->rt);
}

static void say(cfg_client *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(cfg_client *c, int level, const char *fmt, ...)
{
    if (!c->log)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->log(c->log_ctx, level, msg);
}

static void note_failure(cfg_client *c, const char *what, const mt_status *st)
{
    c->rt->ops->lock(c->rt, c->mu);
    int64_t n = ++c->failures;
    snprintf(c->last_error, sizeof c->last_error, "%.24s: %d %.47s: %.160s", what, st->http,
             st->code, st->message);
    c->rt->ops->unlock(c->rt, c->mu);
    if (st->http == 401 || st->http == 403)
        say(c, CFG_LOG_ERROR, "the configuration authority refuses this proxy's token (%s: %s)",
            what, st->message);
    else if (strcmp(st->code, CFG_ERR_AUTHORITY_TLS) == 0 && (n == 1 || n % 100 == 0))
        say(c, CFG_LOG_ERROR,
            "cannot %s: the authority's certificate is not trusted or TLS failed, so this proxy "
            "will not talk to it (check --config-ca; %lld failed calls in a row): %s",
            what, (long long)n, st->message);
    else if (n == 1 || n % 100 == 0)
        say(c, CFG_LOG_WARN, "cannot %s (%lld failed calls in a row): %d %s: %s", what,
            (long long)n, st->http, st->code, st->message);
}

/* After a successful call. */
static void note_success(cfg_client *c)
{
    c->rt->ops->lock(c->rt, c->mu);
    int64_t n = c->failures;
    c->failures = 0;
    c->rt->ops->unlock(c->rt, c->mu);
    if (n > 0)
        say(c, CFG_LOG_INFO, "the configuration authority answers again (after %lld failed calls)",
            (long long)n);
}

/* Logs a lease that ran out; the guard already refuses every call. */
static void check_lease(cfg_client *c, loop_state *ls)
{
    if (!ls->had_lease || ls->lost_lease || cfg_client_lease_valid(c))
        return;
    ls->lost_lease = true;
    cfg_client_info ci;
    cfg_client_info_get(c, &ci);
    say(c, CFG_LOG_ERROR,
        "lease expired: answering 503 ServerBusy until the authority renews it (last error: %s)",
        ci.refused[0]      ? ci.refused
        : ci.last_error[0] ? ci.last_error
                           : "none");
}

/* Waits up to ms unless the client is stopping; false when it is. */
static bool pause_ms(cfg_client *c, int64_t ms)
{
    mt_rt *rt = c->rt;
    rt->ops->lock(rt, c->mu);
    int64_t deadline = now_ms(c) + ms;
    while (!c->stopping && rt->ops->cond_timedwait(rt, c->changed, c->mu, deadline))
        ;
    bool go_on = !c->stopping;
    rt->ops->unlock(rt, c->mu);
    return go_on;
}

static void back_off(cfg_client *c, loop_state *ls)
{
    c->rt->ops->lock(c->rt, c->mu);
    int64_t lease = c->applied.lease_ms;
    c->rt->ops->unlock(c->rt, c->mu);
    int64_t cap = lease > 0 && lease / 8 < RETRY_MAX_MS ? lease / 8 : RETRY_MAX_MS;
    if (cap < RETRY_MIN_MS)
        cap = RETRY_MIN_MS;
    ls->retry_ms = ls->retry_ms * 2 > cap ? cap : ls->retry_ms * 2;
}

/* Acknowledges the applied version; on success the lease runs lease_ms
 * from before the call. */
static void renew(cfg_client *c, loop_state *ls)
{
    mt_rt *rt = c->rt;
    rt->ops->lock(rt, c->mu);
    cfg_view v = c->applied;
    rt->ops->unlock(rt, c->mu);
    int64_t sent = now_ms(c);
    cfg_ack ack = {.id = c->id,
                   .version = v.version,
                   .migration_id = v.migration_id,
                   .fingerprint = c->fingerprint};
    mt_status st = c->tr.ack(c->tr.ctx, &ack);
    if (st.http == 409 && strcmp(st.code, "FingerprintMismatch") != 0) {
        ls->refetch = true;
        return;
    }
    if (!mt_is_ok(&st)) {
        note_failure(c, "acknowledge", &st);
        if (st.http == 409)
            say(c, CFG_LOG_ERROR, "the authority refuses this proxy: %s", st.message);
        ls->next_renew = now_ms(c) + ls->retry_ms;
        /* A quick refusal (no replica leads, a takeover under way) must not
         * turn into a tight loop while an acknowledgement is owed. */
        pause_ms(c, ls->retry_ms);
        back_off(c, ls);
        return;
    }
    rt->ops->lock(rt, c->mu);
    if (c->applied.version == v.version) {
        c->lease_until = sent + v.lease_ms;
        c->acked_version = v.version;
    }
    rt->ops->unlock(rt, c->mu);
    note_success(c);
    if (ls->lost_lease)
        say(c, CFG_LOG_WARN, "lease regained: serving version %lld (%s) again",
            (long long)v.version, mt_phase_name(v.phase));
    ls->had_lease = true;
    ls->lost_lease = false;
    ls->must_ack = false;
    ls->retry_ms = RETRY_MIN_MS;
    ls->next_renew = sent + (v.lease_ms / 3 < RENEW_MAX_MS ? v.lease_ms / 3 : RENEW_MAX_MS);
}

/* Moves this proxy to the fetched view: its operations first, then the
 * record of what it applied. */
static void apply(cfg_client *c, const cfg_view *v, loop_state *ls)
{
    mt_rt *rt = c->rt;
    if (MT_BUG(AckBeforeDrain)) {
        rt->ops->lock(rt, c->mu);
        c->applied = *v;
        rt->ops->unlock(rt, c->mu);
        renew(c, ls);
    }
    int64_t t0 = now_ms(c);
    mt_config_local_set_roles(c->local, v->phase, v->generation, v->version, v->settled);
    rt->ops->lock(rt, c->mu);
    c->applied = *v;
    c->refused[0] = '\0';
    /* A version may come with a shorter lease (a push out of a rest phase
     * first turns long leases into short ones). The authority, once it
     * accepts our acknowledgement of this version, counts the short lease
     * from its arrival; so from now on this proxy must not count on more,
     * whether or not that acknowledgement's answer ever reaches it. */
    if (c->lease_until > t0 + v->lease_ms && !MT_BUG(LeaseNotCut))
        c->lease_until = t0 + v->lease_ms;
    rt->ops->unlock(rt, c->mu);
    ls->must_ack = true;
    say(c, CFG_LOG_INFO, "applied configuration version %lld: phase %s%s (migration %s)",
        (long long)v->version, mt_phase_name(v->phase), v->generation % 2 ? " reversed" : "",
        v->migration_id[0] ? v->migration_id : "(unnamed)");
}

/* A state that cannot follow ours: keep our phase, say why, ask again
 * later (the lease runs out meanwhile unless a good state comes back). */
static void refuse(cfg_client *c, const char *why, loop_state *ls)
{
    mt_rt *rt = c->rt;
    rt->ops->lock(rt, c->mu);
    bool again = strcmp(c->refused, why) == 0;
    snprintf(c->refused, sizeof c->refused, "%s", why);
    rt->ops->unlock(rt, c->mu);
    if (!again)
        say(c, CFG_LOG_ERROR, "%s", why);
    ls->refetch = true;
    pause_ms(c, ls->retry_ms);
    back_off(c, ls);
}

static void settle(cfg_client *c, const cfg_view *v)
{
    mt_config_local_settle(c->local, v->version);
    c->rt->ops->lock(c->rt, c->mu);
    if (c->applied.version == v->version)
        c->applied.settled = true;
    c->rt->ops->unlock(c->rt, c->mu);
}

/* One long poll, up to the next renewal. */
static void fetch(cfg_client *c, loop_state *ls)
{
    mt_rt *rt = c->rt;
    rt->ops->lock(rt, c->mu);
    cfg_view have = c->applied;
    rt->ops->unlock(rt, c->mu);
    int64_t wait =
        have.version == 0 || ls->refetch || ls->must_ack ? 0 : ls->next_renew - now_ms(c);
    if (wait < 0)
        wait = 0;
    cfg_view v;
    int64_t after = ls->refetch ? -1 : have.version;
    mt_status st = c->tr.get_state(c->tr.ctx, after, have.settled, wait, &v);
    if (!mt_is_ok(&st)) {
        note_failure(c, "fetch the state", &st);
        pause_ms(c, have.version == 0 ? FIRST_WAIT_MS : ls->retry_ms);
        back_off(c, ls);
        return;
    }
    note_success(c);
    if (v.lease_ms <= 0)
        v.lease_ms = 10000;
    char why[512];
    if (!MT_BUG(ClientFollowsAnyVersion) &&
        !cfg_view_follows(&have, &v, cfg_client_lease_valid(c), why, sizeof why)) {
        refuse(c, why, ls);
        return;
    }
    ls->refetch = false;
    if (v.version != have.version || strcmp(v.migration_id, have.migration_id) != 0)
        apply(c, &v, ls);
    else if (v.settled && !have.settled)
        settle(c, &v);
}

static void *client_loop(void *arg)
{
    cfg_client *c = arg;
    loop_state ls = {.retry_ms = RETRY_MIN_MS};
    for (;;) {
        c->rt->ops->lock(c->rt, c->mu);
        bool stop = c->stopping;
        int64_t version = c->applied.version;
        c->rt->ops->unlock(c->rt, c->mu);
        if (stop)
            break;
        check_lease(c, &ls);
        if (version != 0 && !ls.refetch && (ls.must_ack || now_ms(c) >= ls.next_renew))
            renew(c, &ls);
        else
            fetch(c, &ls);
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The service and the lease.                                                */

static cfg_client *of(mt_config_service *s)
{
    return (cfg_client *)s;
}

static mt_subscription *svc_subscribe(mt_config_service *s, const mt_subscriber *sub,
                                      mt_config *current)
{
    mt_config_service *local = of(s)->local;
    return local->ops->subscribe(local, sub, current);
}

static void svc_unsubscribe(mt_config_service *s, mt_subscription *sub)
{
    mt_config_service *local = of(s)->local;
    local->ops->unsubscribe(local, sub);
}

static mt_status svc_push(mt_config_service *s, mt_phase phase)
{
    (void)s;
    (void)phase;
    return mt_error(409, "NotAuthority",
                    "this proxy takes its phase from its configuration endpoint; push there");
}

static void svc_destroy(mt_config_service *s)
{
    (void)s; /* owned by the client */
}

static const mt_config_ops client_ops = {
    .subscribe = svc_subscribe,
    .unsubscribe = svc_unsubscribe,
    .push = svc_push,
    .destroy = svc_destroy,
};

mt_config_service *cfg_client_service(cfg_client *c)
{
    return &c->svc;
}

bool cfg_client_lease_valid(cfg_client *c)
{
    c->rt->ops->lock(c->rt, c->mu);
    bool ok = c->lease_until > 0 && now_ms(c) < c->lease_until;
    c->rt->ops->unlock(c->rt, c->mu);
    return ok;
}

void cfg_client_info_get(cfg_client *c, cfg_client_info *out)
{
    c->rt->ops->lock(c->rt, c->mu);
    int64_t left = c->lease_until > 0 ? c->lease_until - now_ms(c) : 0;
    *out = (cfg_client_info){.version = c->applied.version,
                             .phase = c->applied.phase,
                             .leased = left > 0,
                             .lease_left_ms = left,
                             .acked_version = c->acked_version,
                             .failures = c->failures};
    snprintf(out->last_error, sizeof out->last_error, "%s", c->last_error);
    snprintf(out->refused, sizeof out->refused, "%s", c->refused);
    memcpy(out->migration_id, c->applied.migration_id, sizeof out->migration_id);
    c->rt->ops->unlock(c->rt, c->mu);
}

cfg_client *cfg_client_new(mt_rt *rt, const cfg_transport *tr, const cfg_client_opts *o)
{
    cfg_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->svc.ops = &client_ops;
    c->rt = rt;
    c->tr = *tr;
    snprintf(c->id, sizeof c->id, "%s", o->id);
    snprintf(c->fingerprint, sizeof c->fingerprint, "%s", o->fingerprint ? o->fingerprint : "");
    c->log = o->log;
    c->log_ctx = o->log_ctx;
    c->local = mt_config_local_new(rt, MT_PHASE_USE_OLD_HIDE_METADATA);
    c->mu = rt->ops->mutex_new(rt);
    c->changed = rt->ops->cond_new(rt);
    if (c->local && c->mu && c->changed)
        c->thread = rt->ops->thread_start(rt, client_loop, c, "cfg-client");
    if (!c->thread) {
        cfg_client_free(c);
        return NULL;
    }
    return c;
}

static void client_stop(cfg_client *c)
{
    mt_rt *rt = c->rt;
    if (!c->thread)
        return;
    rt->ops->lock(rt, c->mu);
    c->stopping = true;
    rt->ops->cond_broadcast(rt, c->changed);
    rt->ops->unlock(rt, c->mu);
    rt->ops->thread_join(rt, c->thread);
    c->thread = NULL;
}

void cfg_client_release(cfg_client *c)
{
    if (!c)
        return;
    client_stop(c);
    mt_rt *rt = c->rt;
    rt->ops->lock(rt, c->mu);
    bool first = !c->released;
    bool held = c->lease_until > 0;
    c->released = true;
    c->lease_until = 0; /* nothing passes the guard from now on */
    rt->ops->unlock(rt, c->mu);
    if (!first || !held || !c->tr.release)
        return;
    mt_status st = c->tr.release(c->tr.ctx, c->id);
    if (mt_is_ok(&st))
        say(c, CFG_LOG_INFO, "lease given back to the configuration authority");
    else
        say(c, CFG_LOG_WARN,
            "could not give the lease back (the next push waits for it to run "
            "out): %d %s: %s",
            st.http, st.code, st.message);
}

void cfg_client_free(cfg_client *c)
{
    if (!c)
        return;
    mt_rt *rt = c->rt;
    client_stop(c);
    if (c->local)
        c->local->ops->destroy(c->local);
    if (c->changed)
        rt->ops->cond_free(rt, c->changed);
    if (c->mu)
        rt->ops->mutex_free(rt, c->mu);
    free(c);
}

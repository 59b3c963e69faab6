/*
 * fleet.c -- see fleet.h: the authority, the proxies, their links and their
 * faults, for the lease scenario.
 *
 * A proxy's backend call goes: the proxy may stall (a pause of its
 * process, drawn from the seed) -> cfg_guard asks proxy_valid, which stamps
 * the time and asks the client for its lease -> the backend view makes its
 * scheduling point and lets the call in only if it arrives within the
 * authority's margin of the stamp (proxy_arrive). The stamp is taken before
 * the lease is read, so the bound is conservative: a call the guard let
 * through lands before the authority can stop waiting for this proxy, which
 * is exactly what the protocol assumes of the network and no more.
 *
 * A link leg is a scheduling point and, on a lagging link, a sleep in
 * virtual time; on a link that is down it is a sleep of LINK_TIMEOUT and a
 * failure. A response lost on the way back loses nothing at the authority:
 * an acknowledgement it accepted stays accepted, the client just does not
 * know (and so does not extend its lease), which is the safe direction.
 *
 * With two authority replicas ("a" leads at first) each has its own ticker
 * (beats, watching, takeovers) and its own way to the store, which the run
 * may cut for good: a zombie that keeps running, with its migrator, but
 * can no longer beat. Its leadership lapses, "b" takes over, and the
 * zombie's migrator finds its backend calls refused by a guard on its
 * leadership (arriving, like a proxy's, within half a leader lease of the
 * check). Proxies' links reach whichever replica leads; none leading is a
 * failed call, which the client retries (the daemon's standby redirects).
 *
 * A link may also go astray for a while: its calls reach an *impostor*, a
 * second authority on an empty store (version 1, use_old_hide_metadata,
 * another migration), which is what a proxy meets when its authority is
 * restarted on a lost store or it is pointed at the wrong one. The proxy
 * must refuse that state and fail closed when its lease runs out; one
 * that follows it writes the old table behind the migration. Half the
 * links that go astray reach a *stale backup* instead: an authority of
 * the same migration whose store was restored from a copy taken at its
 * start (version 1, use_old_hide_metadata), once the proxy acknowledged a
 * later version (until then the backup holds the proxy's own state). Only
 * the version tells that one apart: a proxy in prefer_old would take it
 * for a step back.
 */
#include "fleet.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

/* Actors that may use one proxy: its clients, or a replica's migration runs
 * (a thread each time the run is started again, up to 20 in failover). */
#define STAMPS 32

typedef struct proxy proxy;

typedef struct stamp {
    int actor; /* -1: free */
    int64_t at;
} stamp;

struct proxy {
    sct_fleet *f;
    int i;
    char id[16];
    bool started;
    cfg_transport tr;
    cfg_client *client;
    mt_table *old_view, *new_view, *old_guard, *new_guard, *mt;
    stamp sent[STAMPS]; /* when each actor last passed the guard's check */

    /* Faults, drawn at the start. */
    bool late;                     /* joins only through sct_fleet_join */
    int64_t join_after;            /* ms it waits first */
    int64_t down_from, down_until; /* the link is down meanwhile */
    int64_t drop_at, drop_for;     /* the same, relative to the fleet's ready time */
    int64_t astray_at, astray_for; /* the link reaches the impostor meanwhile (rel. ready) */
    int64_t astray_from, astray_until;
    bool astray_stale;     /* astray to the stale backup rather than the impostor */
    int64_t acked;         /* the highest version the real authority took its ack of */
    int64_t lag_max;       /* each leg takes up to this long; 0: prompt */
    uint64_t stall_one_in; /* a backend call stalls with probability 1/n; 0: never */
    int64_t stall_max;
    cfg_authority *leader_of; /* a replica's migrator: valid while it leads */
};

/* The state store, with a scheduling point before each call. */
typedef struct store {
    cfg_store base;
    cfg_store *inner;
    bool owns_inner;
    bool cut; /* this replica cannot reach the store any more */
    sct_sched *s;
} store;

struct sct_fleet {
    sct_sched *s;
    mt_rt *rt;
    mt_table *old_t, *new_t;
    int n;
    int64_t lease_ms, margin_ms;
    int64_t link_timeout;
    mt_mutex *sleep_mu;
    mt_cond *sleep_cv; /* never signalled: sleeps end by their deadline */
    store *store;
    cfg_authority *auth;
    store *impostor_store;
    cfg_authority *impostor; /* an authority on an empty store */
    store *stale_store;
    cfg_authority *stale; /* the same migration on a stale copy of its store */
    int replicas;         /* 0: one authority (auth) */
    int64_t leader_ms;
    cfg_authority *rep[2]; /* rep[0] is auth */
    store *rep_store[2];   /* rep_store[0] is store */
    proxy rp[2];           /* each replica's migrator, as a guarded "proxy" */
    mt_thread *ticker[2];
    bool stopping;
    proxy p[SCT_FLEET_MAX];
};

static uint64_t rnd(sct_fleet *f, uint64_t n)
{
    return sct_sched_rand(f->s, n);
}

static int64_t now(sct_fleet *f)
{
    return sct_sched_now_ms(f->s);
}

/* Sleeps ms of virtual time: other actors run meanwhile, and the time
 * passes once they all wait (or the strategy jumps it). */
static void fleet_sleep(sct_fleet *f, int64_t ms)
{
    mt_rt *rt = f->rt;
    int64_t until = now(f) + ms;
    rt->ops->lock(rt, f->sleep_mu);
    while (now(f) < until)
        rt->ops->cond_timedwait(rt, f->sleep_cv, f->sleep_mu, until);
    rt->ops->unlock(rt, f->sleep_mu);
}

/* ------------------------------------------------------------------------ */
/* The state store.                                                          */

static mt_status store_cut(store *st)
{
    sct_trace(st->s, "store call refused: this replica is cut off the store");
    return mt_error(503, "ServiceUnavailable", "injected: cut off the store");
}

static mt_status store_load(cfg_store *cs, char **doc, char etag[CFG_ETAG_MAX])
{
    store *st = (store *)cs;
    sct_point(st->s, "store.load");
    if (st->cut)
        return store_cut(st);
    return st->inner->ops->load(st->inner, doc, etag);
}

static mt_status store_cas(cfg_store *cs, const char *doc, const char *expected,
                           char etag_out[CFG_ETAG_MAX])
{
    store *st = (store *)cs;
    sct_point(st->s, "store.cas");
    if (st->cut)
        return store_cut(st);
    mt_status r = st->inner->ops->cas(st->inner, doc, expected, etag_out);
    sct_trace(st->s, "store.cas %s -> %d", doc, r.http);
    return r;
}

static const char *store_describe(cfg_store *cs)
{
    store *st = (store *)cs;
    return st->inner->ops->describe(st->inner);
}

static void store_destroy(cfg_store *cs)
{
    store *st = (store *)cs;
    if (st->owns_inner)
        st->inner->ops->destroy(st->inner);
    free(st);
}

static const cfg_store_ops store_ops = {
    .load = store_load,
    .cas = store_cas,
    .describe = store_describe,
    .destroy = store_destroy,
};

/* ------------------------------------------------------------------------ */
/* Links: the transport between a proxy's client and the authority.          */

static bool link_down(proxy *p)
{
    int64_t t = now(p->f);
    return t >= p->down_from && t < p->down_until;
}

/* The authority a call reaches now: the impostor while the link is astray. */
static cfg_authority *link_target(proxy *p)
{
    sct_fleet *f = p->f;
    int64_t t = now(f);
    /* The stale backup only once the proxy applied a later version than
     * the backup's: before that it is the proxy's own state, and a second
     * authority granting leases on it is a split brain no proxy can see. */
    bool astray = t >= p->astray_from && t < p->astray_until;
    if (f->impostor && astray && !p->astray_stale)
        return f->impostor;
    if (f->stale && astray && p->astray_stale && p->acked > 1)
        return f->stale;
    if (f->replicas < 2)
        return f->auth;
    for (int r = 0; r < f->replicas; r++)
        if (cfg_authority_leader(f->rep[r], NULL))
            return f->rep[r];
    return NULL; /* a takeover under way: no replica answers */
}

static mt_status link_lost(proxy *p, const char *what)
{
    sct_trace(p->f->s, "%s: %s lost (link down)", p->id, what);
    return mt_error(504, "GatewayTimeout", "injected: the link to the authority is down");
}

/* The request leg: false when the request never reaches the authority. */
static bool link_send(proxy *p, const char *what)
{
    sct_fleet *f = p->f;
    char label[64];
    snprintf(label, sizeof label, "%s -> %s", p->id, what);
    sct_point(f->s, label);
    if (link_down(p)) {
        fleet_sleep(f, f->link_timeout); /* the caller's timeout */
        return false;
    }
    if (p->lag_max)
        fleet_sleep(f, (int64_t)rnd(f, (uint64_t)p->lag_max + 1));
    return !link_down(p);
}

/* The response leg: false when the answer is lost on the way back. */
static bool link_return(proxy *p)
{
    if (p->lag_max)
        fleet_sleep(p->f, (int64_t)rnd(p->f, (uint64_t)p->lag_max + 1));
    return !link_down(p);
}

static mt_status link_get_state(void *ctx, int64_t after, bool known_settled, int64_t wait_ms,
                                cfg_view *out)
{
    proxy *p = ctx;
    sct_fleet *f = p->f;
    if (!link_send(p, "get_state"))
        return link_lost(p, "get_state");
    /* The long poll is bounded by the client already; bound it here too so
     * that no execution can hang on it. */
    if (wait_ms > f->lease_ms)
        wait_ms = f->lease_ms;
    cfg_authority *target = link_target(p);
    if (!target)
        return link_lost(p, "get_state (no leader)");
    cfg_authority_poll(target, after, known_settled, wait_ms, out);
    if (!link_return(p))
        return link_lost(p, "get_state answer");
    sct_trace(f->s, "%s: get_state after %" PRId64 " -> v%" PRId64 " %s%s%s", p->id, after,
              out->version, mt_phase_name(out->phase), out->settled ? " settled" : "",
              target == f->impostor ? " (from the impostor)"
              : target == f->stale  ? " (from the stale backup)"
                                    : "");
    return mt_ok();
}

static mt_status link_ack(void *ctx, const cfg_ack *ack)
{
    proxy *p = ctx;
    sct_fleet *f = p->f;
    if (!link_send(p, "ack"))
        return link_lost(p, "ack");
    cfg_authority *target = link_target(p);
    if (!target)
        return link_lost(p, "ack (no leader)");
    mt_status st = cfg_authority_ack(target, ack);
    bool real = target != f->impostor && target != f->stale;
    if (real && mt_is_ok(&st) && ack->version > p->acked)
        p->acked = ack->version;
    sct_trace(f->s, "%s: ack v%" PRId64 " -> %d%s", p->id, ack->version, st.http ? st.http : 204,
              target == f->impostor ? " (at the impostor)"
              : target == f->stale  ? " (at the stale backup)"
                                    : "");
    if (!link_return(p))
        return link_lost(p, "ack answer");
    return st;
}

/* ------------------------------------------------------------------------ */
/* The guard's two questions.                                                */

static stamp *stamp_slot(proxy *p, int actor, bool add)
{
    stamp *free_slot = NULL;
    for (int k = 0; k < STAMPS; k++) {
        if (p->sent[k].actor == actor)
            return &p->sent[k];
        if (p->sent[k].actor < 0 && !free_slot)
            free_slot = &p->sent[k];
    }
    if (!add)
        return NULL;
    if (!free_slot)
        sct_sched_abort(p->f->s, "%s: more than %d actors use one proxy", p->id, STAMPS);
    free_slot->actor = actor;
    return free_slot;
}

/* cfg_guard's validity check: may stall first, stamps the time, asks the
 * client for its lease. */
static bool proxy_valid(void *ctx)
{
    proxy *p = ctx;
    sct_fleet *f = p->f;
    if (p->stall_one_in && rnd(f, p->stall_one_in) == 0) {
        int64_t ms = 1 + (int64_t)rnd(f, (uint64_t)p->stall_max);
        sct_trace(f->s, "%s stalls for %" PRId64 " ms", p->id, ms);
        fleet_sleep(f, ms);
    }
    stamp_slot(p, sct_sched_current(f->s), true)->at = now(f);
    bool ok =
        p->leader_of ? cfg_authority_leader(p->leader_of, NULL) : cfg_client_lease_valid(p->client);
    if (!ok)
        sct_trace(f->s, "%s: no lease, the guard answers 503", p->id);
    return ok;
}

/* The backend view's question: did the call arrive in time? */
static bool proxy_arrive(void *ctx)
{
    proxy *p = ctx;
    stamp *st = stamp_slot(p, sct_sched_current(p->f->s), false);
    if (!st)
        sct_sched_abort(p->f->s, "%s: a backend call passed no guard", p->id);
    int64_t margin = p->leader_of ? p->f->leader_ms / 2 : p->f->margin_ms;
    return now(p->f) - st->at <= margin;
}

/* ------------------------------------------------------------------------ */
/* Proxies.                                                                  */

static void proxy_plan(sct_fleet *f, proxy *p)
{
    int64_t lease = f->lease_ms;
    p->down_from = p->down_until = INT64_MAX;
    p->drop_at = -1;
    p->astray_at = -1;
    p->astray_from = p->astray_until = INT64_MAX;
    p->late = p->i == f->n - 1 && rnd(f, 4) == 0;
    p->join_after = (int64_t)rnd(f, (uint64_t)(2 * lease));
    switch (rnd(f, 8)) {
    case 4:
    case 5: /* goes down for a while: stops renewing, the lease runs out */
        p->drop_at = (int64_t)rnd(f, (uint64_t)(2 * lease));
        p->drop_for = lease / 2 + (int64_t)rnd(f, (uint64_t)(2 * lease));
        break;
    case 6: /* lags: hears of versions late, its acknowledgements arrive late */
        p->lag_max = lease / 4;
        break;
    case 7: /* goes astray: reaches an authority on an empty store for a while (a
             * proxy that has a state to defend; one that never had one cannot
             * tell an impostor from its authority, which is why an authority
             * refuses to start fresh over a migration's traces) */
        if (p->late)
            break;
        p->astray_at = (int64_t)rnd(f, (uint64_t)(3 * lease));
        p->astray_for = lease + (int64_t)rnd(f, (uint64_t)(2 * lease));
        p->astray_stale = rnd(f, 2) == 0;
        break;
    default:
        break;
    }
    if (rnd(f, 2)) {
        p->stall_one_in = 4;
        p->stall_max = lease;
    }
    for (int k = 0; k < STAMPS; k++)
        p->sent[k].actor = -1;
}

static void proxy_start(sct_fleet *f, proxy *p)
{
    p->tr = (cfg_transport){.get_state = link_get_state, .ack = link_ack, .ctx = p};
    cfg_client_opts co = {.id = p->id, .fingerprint = "fleet-backends"};
    p->client = cfg_client_new(f->rt, &p->tr, &co);
    if (!p->client)
        sct_sched_abort(f->s, "%s: cfg_client_new failed", p->id);
    p->old_view = sct_backend_view(f->old_t, p->id, proxy_arrive, p);
    p->new_view = sct_backend_view(f->new_t, p->id, proxy_arrive, p);
    p->old_guard = cfg_guard_new(p->old_view, proxy_valid, p);
    p->new_guard = cfg_guard_new(p->new_view, proxy_valid, p);
    p->mt = mt_migrating_new(f->rt, cfg_client_service(p->client), p->old_guard, p->new_guard);
    p->started = true;
    sct_trace(f->s, "%s starts%s%s%s", p->id, p->lag_max ? " (lagging link)" : "",
              p->drop_at >= 0 ? " (link will drop)" : "", p->stall_one_in ? " (stalls)" : "");
}

/* Waits, in steps of a quarter lease, until p holds a lease; false after
 * twenty lease times (a healthy link needs one round trip). */
static bool proxy_wait_leased(sct_fleet *f, proxy *p)
{
    for (int k = 0; k < 80; k++) {
        if (cfg_client_lease_valid(p->client))
            return true;
        fleet_sleep(f, f->lease_ms / 4);
    }
    return false;
}

static void proxy_free(sct_fleet *f, proxy *p)
{
    (void)f;
    if (!p->started)
        return;
    cfg_client_free(p->client);
    mt_table_destroy(p->mt);
    mt_table_destroy(p->old_guard);
    mt_table_destroy(p->new_guard);
    mt_table_destroy(p->old_view);
    mt_table_destroy(p->new_view);
}

/* ------------------------------------------------------------------------ */
/* The fleet.                                                                */

mt_config_service *sct_fleet_service(sct_fleet *f)
{
    return cfg_authority_service(f->auth);
}

mt_table *sct_fleet_table(sct_fleet *f, int i)
{
    return f->p[i].started ? f->p[i].mt : NULL;
}

mt_table *sct_fleet_join(sct_fleet *f, int i)
{
    proxy *p = &f->p[i];
    if (!p->started) {
        fleet_sleep(f, p->join_after);
        proxy_start(f, p);
    }
    return proxy_wait_leased(f, p) ? p->mt : NULL;
}

/* ------------------------------------------------------------------------ */
/* Replicas.                                                                 */

typedef struct ticker_arg {
    sct_fleet *f;
    int r;
} ticker_arg;

static ticker_arg ticker_args[2];

static void *ticker_main(void *arg)
{
    ticker_arg *ta = arg;
    sct_fleet *f = ta->f;
    while (!f->stopping) {
        cfg_authority_tick(f->rep[ta->r]);
        fleet_sleep(f, f->leader_ms / 3);
    }
    return NULL;
}

mt_config_service *sct_fleet_replica_service(sct_fleet *f, int r)
{
    return cfg_authority_service(f->rep[r]);
}

mt_table_pair sct_fleet_replica_tables(sct_fleet *f, int r)
{
    return (mt_table_pair){.old_t = f->rp[r].old_guard, .new_t = f->rp[r].new_guard};
}

cfg_authority *sct_fleet_replica_authority(sct_fleet *f, int r)
{
    return r == 0 ? f->auth : f->rep[r]; /* one authority: rep is unused */
}

bool sct_fleet_replica_leads(sct_fleet *f, int r)
{
    return cfg_authority_leader(f->rep[r], NULL);
}

void sct_fleet_replica_cut(sct_fleet *f, int r)
{
    sct_trace(f->s, "replica %c is cut off the store for good", 'a' + r);
    f->rep_store[r]->cut = true;
}

/* Replica r ("a", "b") on its own wrapper of the shared store, its
 * migrator's guarded views, its ticker. */
static bool replica_start(sct_fleet *f, int r, const cfg_authority_opts *base, char *why,
                          size_t whylen)
{
    if (r > 0) {
        f->rep_store[r] = calloc(1, sizeof *f->rep_store[r]);
        f->rep_store[r]->base.ops = &store_ops;
        f->rep_store[r]->inner = f->store->inner;
        f->rep_store[r]->s = f->s;
    } else {
        f->rep_store[0] = f->store;
    }
    static const char *const ids[2] = {"a", "b"};
    cfg_authority_opts o = *base;
    o.replica_id = ids[r];
    o.advertise_url = ids[r];
    o.leader_ms = f->leader_ms;
    mt_status st;
    f->rep[r] = cfg_authority_new(f->rt, &f->rep_store[r]->base, &o, &st);
    if (!f->rep[r]) {
        snprintf(why, whylen, "replica %s: %d %s %s", ids[r], st.http, st.code, st.message);
        return false;
    }
    proxy *p = &f->rp[r];
    p->f = f;
    p->i = -1 - r;
    snprintf(p->id, sizeof p->id, "replica-%s", ids[r]);
    p->leader_of = f->rep[r];
    p->down_from = p->down_until = p->astray_from = p->astray_until = INT64_MAX;
    for (int k = 0; k < STAMPS; k++)
        p->sent[k].actor = -1;
    p->old_view = sct_backend_view(f->old_t, p->id, proxy_arrive, p);
    p->new_view = sct_backend_view(f->new_t, p->id, proxy_arrive, p);
    p->old_guard = cfg_guard_leader_new(p->old_view, proxy_valid, p);
    p->new_guard = cfg_guard_leader_new(p->new_view, proxy_valid, p);
    p->started = true;
    ticker_args[r] = (ticker_arg){.f = f, .r = r};
    char name[16];
    snprintf(name, sizeof name, "ticker-%s", ids[r]);
    f->ticker[r] = f->rt->ops->thread_start(f->rt, ticker_main, &ticker_args[r], name);
    return true;
}

static void fleet_release(sct_fleet *f)
{
    f->stopping = true;
    for (int r = 0; r < 2; r++)
        if (f->ticker[r])
            f->rt->ops->thread_join(f->rt, f->ticker[r]);
    for (int i = 0; i < f->n; i++)
        proxy_free(f, &f->p[i]);
    for (int r = 0; r < 2; r++)
        proxy_free(f, &f->rp[r]);
    if (f->rep[1])
        cfg_authority_free(f->rep[1]);
    if (f->rep_store[1])
        f->rep_store[1]->base.ops->destroy(&f->rep_store[1]->base);
    cfg_authority_free(f->auth);
    cfg_authority_free(f->impostor);
    cfg_authority_free(f->stale);
    if (f->stale_store)
        f->stale_store->base.ops->destroy(&f->stale_store->base);
    if (f->store)
        f->store->base.ops->destroy(&f->store->base);
    if (f->impostor_store)
        f->impostor_store->base.ops->destroy(&f->impostor_store->base);
    f->rt->ops->cond_free(f->rt, f->sleep_cv);
    f->rt->ops->mutex_free(f->rt, f->sleep_mu);
    free(f);
}

void sct_fleet_free(sct_fleet *f)
{
    if (f)
        fleet_release(f);
}

sct_fleet *sct_fleet_new(sct_sched *s, mt_table *old_t, mt_table *new_t, const sct_fleet_opts *o,
                         char *why, size_t whylen)
{
    sct_fleet *f = calloc(1, sizeof *f);
    f->s = s;
    f->rt = sct_sched_rt(s);
    f->old_t = old_t;
    f->new_t = new_t;
    f->n = o->proxies < 1 ? 1 : o->proxies > SCT_FLEET_MAX ? SCT_FLEET_MAX : o->proxies;
    f->lease_ms = o->lease_ms;
    f->margin_ms = o->margin_ms;
    f->link_timeout = o->lease_ms / 4;
    f->sleep_mu = f->rt->ops->mutex_new(f->rt);
    f->sleep_cv = f->rt->ops->cond_new(f->rt);
    f->store = calloc(1, sizeof *f->store);
    f->store->base.ops = &store_ops;
    f->store->inner = cfg_store_memory_new();
    f->store->owns_inner = true;
    f->store->s = s;
    f->replicas = o->replicas >= 2 ? 2 : 0;
    /* As long as a lease: the strategy's time jumps (up to a lease) would
     * otherwise take the leadership away from a healthy leader all the time. */
    f->leader_ms = o->lease_ms;

    int64_t started = now(f);
    cfg_authority_opts ao = {.lease_ms = o->lease_ms,
                             .margin_ms = o->margin_ms,
                             .rest_lease_ms = o->rest_lease_ms,
                             .fingerprint = "fleet-backends",
                             .migration_id = "fleet"};
    mt_status st;
    if (f->replicas) {
        for (int r = 0; r < 2; r++) {
            if (!replica_start(f, r, &ao, why, whylen)) {
                f->auth = f->rep[0];
                fleet_release(f);
                return NULL;
            }
        }
        f->auth = f->rep[0];
    } else {
        f->auth = cfg_authority_new(f->rt, &f->store->base, &ao, &st);
    }
    if (!f->auth) {
        snprintf(why, whylen, "cfg_authority_new: %d %s %s", st.http, st.code, st.message);
        fleet_release(f);
        return NULL;
    }
    f->impostor_store = calloc(1, sizeof *f->impostor_store);
    f->impostor_store->base.ops = &store_ops;
    f->impostor_store->inner = cfg_store_memory_new();
    f->impostor_store->owns_inner = true;
    f->impostor_store->s = s;
    cfg_authority_opts io = ao;
    io.migration_id = "impostor";
    f->impostor = cfg_authority_new(f->rt, &f->impostor_store->base, &io, &st);
    if (!f->impostor) {
        snprintf(why, whylen, "cfg_authority_new (impostor): %d %s", st.http, st.code);
        fleet_release(f);
        return NULL;
    }
    f->stale_store = calloc(1, sizeof *f->stale_store);
    f->stale_store->base.ops = &store_ops;
    f->stale_store->inner = cfg_store_memory_new();
    f->stale_store->owns_inner = true;
    f->stale_store->s = s;
    f->stale = cfg_authority_new(f->rt, &f->stale_store->base, &ao, &st);
    if (!f->stale) {
        snprintf(why, whylen, "cfg_authority_new (stale backup): %d %s", st.http, st.code);
        fleet_release(f);
        return NULL;
    }
    for (int i = 0; i < f->n; i++) {
        proxy *p = &f->p[i];
        p->f = f;
        p->i = i;
        snprintf(p->id, sizeof p->id, "proxy%d", i);
        proxy_plan(f, p);
    }
    for (int i = 0; i < f->n; i++)
        if (!f->p[i].late)
            proxy_start(f, &f->p[i]);

    /* Ready: the grace period after the authority's start is over (so the
     * first push is not held up by it), the authority knows it, and every
     * proxy that started holds a lease. */
    int64_t grace_end = started + f->lease_ms + f->margin_ms;
    if (now(f) < grace_end)
        fleet_sleep(f, grace_end - now(f));
    cfg_authority_tick(f->auth);
    for (int i = 0; i < f->n; i++) {
        proxy *p = &f->p[i];
        if (p->started && !proxy_wait_leased(f, p)) {
            snprintf(why, whylen, "%s never got a lease over a healthy link", p->id);
            fleet_release(f);
            return NULL;
        }
    }
    /* The faults begin with the traffic. */
    int64_t ready = now(f);
    for (int i = 0; i < f->n; i++) {
        proxy *p = &f->p[i];
        if (p->drop_at >= 0) {
            p->down_from = ready + p->drop_at;
            p->down_until = p->down_from + p->drop_for;
            sct_trace(s, "%s: its link will be down from %" PRId64 " to %" PRId64 " ms", p->id,
                      p->down_from, p->down_until);
        }
        if (p->astray_at >= 0) {
            p->astray_from = ready + p->astray_at;
            p->astray_until = p->astray_from + p->astray_for;
            sct_trace(s, "%s: its link will reach the %s from %" PRId64 " to %" PRId64 " ms", p->id,
                      p->astray_stale ? "stale backup" : "impostor", p->astray_from,
                      p->astray_until);
        }
    }
    return f;
}

/*
 * test_cfg_lease.c -- the lease protocol of the control plane (config/cfg.h)
 * with real threads and the real clock (mt_rt_pthread): an authority over a
 * memory store, clients over a direct transport the test can cut or hold,
 * and tables behind cfg_guard.
 *
 *   - a client gets a lease and serves; without one its tables answer 503;
 *   - a push waits for a client that holds a lease until it acknowledges;
 *   - a push completes once the lease of a client whose link is cut has run
 *     out (plus the margin), and not before; the client fails closed first;
 *   - an acknowledgement of a version that is no longer current is refused
 *     with 409 and grants nothing;
 *   - a client whose link comes back fetches the new version and recovers
 *     its lease by itself;
 *   - a push while an operation of the old phase is in flight on a client
 *     waits for it: the client acknowledges only after the drain.
 *
 * Timing: the only time assertions are the protocol's own (a push does not
 * complete while a proxy it waits for still holds a live, unacknowledged
 * lease). Waits for something to happen are bounded by a generous hang
 * guard (WAIT_MS), never used as a measurement.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"

/* Hang guard for "wait until": far above anything a healthy run needs. */
#define WAIT_MS 20000

#define assert_ok(st)                                                                              \
    do {                                                                                           \
        mt_status st_ = (st);                                                                      \
        if (!mt_is_ok(&st_))                                                                       \
            fail_msg("%d %s %s", st_.http, st_.code, st_.message);                                 \
    } while (0)

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls pred(arg) every few ms; false when the hang guard runs out. */
static bool wait_until(bool (*pred)(void *), void *arg)
{
    for (int waited = 0; waited < WAIT_MS; waited += 5) {
        if (pred(arg))
            return true;
        sleep_ms(5);
    }
    return pred(arg);
}

/* ------------------------------------------------------------------------ */
/* A direct transport the test can cut, and whose acknowledgements it can   */
/* hold back.                                                                */

typedef struct tlink {
    cfg_authority *a;
    atomic_bool cut;
    atomic_llong seen;     /* the highest version get_state returned */
    atomic_llong acked[8]; /* accepted acknowledgements, by version */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool hold; /* acknowledgements wait while set */
} tlink;

static void link_init(tlink *l, cfg_authority *a)
{
    memset(l, 0, sizeof *l);
    l->a = a;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
}

static void link_destroy(tlink *l)
{
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
}

static mt_status cut_error(void)
{
    return mt_error(504, "GatewayTimeout", "test: the link is cut");
}

static mt_status link_get_state(void *ctx, int64_t after, bool known_settled, int64_t wait_ms,
                                cfg_view *out)
{
    tlink *l = ctx;
    if (atomic_load(&l->cut)) {
        sleep_ms(10); /* a timeout, shortened */
        return cut_error();
    }
    cfg_authority_poll(l->a, after, known_settled, wait_ms, out);
    if (atomic_load(&l->cut))
        return cut_error(); /* the answer is lost */
    long long seen = atomic_load(&l->seen);
    while (out->version > seen && !atomic_compare_exchange_weak(&l->seen, &seen, out->version))
        ;
    return mt_ok();
}

static mt_status link_ack(void *ctx, const cfg_ack *ack)
{
    int64_t version = ack->version;
    tlink *l = ctx;
    pthread_mutex_lock(&l->mu);
    while (l->hold)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    if (atomic_load(&l->cut)) {
        sleep_ms(10);
        return cut_error();
    }
    mt_status st = cfg_authority_ack(l->a, ack);
    if (mt_is_ok(&st) && version >= 0 && version < 8)
        atomic_fetch_add(&l->acked[version], 1);
    if (atomic_load(&l->cut))
        return cut_error();
    return st;
}

static void link_hold(tlink *l, bool on)
{
    pthread_mutex_lock(&l->mu);
    l->hold = on;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static mt_status link_release(void *ctx, const char *id)
{
    tlink *l = ctx;
    if (atomic_load(&l->cut))
        return cut_error();
    cfg_authority_release(l->a, id);
    return mt_ok();
}

static cfg_transport link_transport(tlink *l)
{
    return (cfg_transport){
        .get_state = link_get_state, .ack = link_ack, .release = link_release, .ctx = l};
}

/* ------------------------------------------------------------------------ */
/* A world: one authority, one client, its guarded MigratingTable.           */

typedef struct world {
    mt_rt *rt;
    cfg_store *store;
    cfg_authority *a;
    tlink l;
    cfg_transport tr;
    cfg_client *c;
    mt_table *old_t, *new_t, *old_g, *new_g, *mt;
    int64_t lease_ms, margin_ms;
} world;

static bool guard_valid(void *ctx)
{
    return cfg_client_lease_valid(ctx);
}

/* cut: the client starts behind a cut link. */
static void world_start(world *w, int64_t lease_ms, int64_t margin_ms, bool cut)
{
    memset(w, 0, sizeof *w);
    w->rt = mt_rt_pthread();
    w->lease_ms = lease_ms;
    w->margin_ms = margin_ms;
    w->store = cfg_store_memory_new();
    assert_non_null(w->store);
    cfg_authority_opts o = {.lease_ms = lease_ms, .margin_ms = margin_ms};
    mt_status st;
    w->a = cfg_authority_new(w->rt, w->store, &o, &st);
    assert_non_null(w->a);
    link_init(&w->l, w->a);
    atomic_store(&w->l.cut, cut);
    w->tr = link_transport(&w->l);
    w->c = cfg_client_new(w->rt, &w->tr, &(cfg_client_opts){.id = "proxy-a"});
    assert_non_null(w->c);
    w->old_t = mt_memtable_new(w->rt, "old");
    w->new_t = mt_memtable_new(w->rt, "new");
    w->old_g = cfg_guard_new(w->old_t, guard_valid, w->c);
    w->new_g = cfg_guard_new(w->new_t, guard_valid, w->c);
    w->mt = mt_migrating_new(w->rt, cfg_client_service(w->c), w->old_g, w->new_g);
    assert_non_null(w->mt);
}

static void world_stop(world *w)
{
    atomic_store(&w->l.cut, false);
    link_hold(&w->l, false);
    mt_table_destroy(w->mt);
    mt_table_destroy(w->old_g);
    mt_table_destroy(w->new_g);
    cfg_client_free(w->c);
    mt_table_destroy(w->old_t);
    mt_table_destroy(w->new_t);
    cfg_authority_free(w->a);
    w->store->ops->destroy(w->store);
    link_destroy(&w->l);
}

static bool is_leased(void *c)
{
    return cfg_client_lease_valid(c);
}

static bool is_unleased(void *c)
{
    return !cfg_client_lease_valid(c);
}

static mt_status insert_row(mt_table *t, const char *rk)
{
    mt_entity *e = mt_entity_new("p", rk);
    mt_value v = mt_v_str("x");
    mt_entity_set(e, "v", &v);
    mt_op op = {.kind = MT_OP_INSERT, .entity = e};
    mt_op_result res;
    mt_status st = mt_table_batch(t, &op, 1, &res);
    mt_entity_free(e);
    return st;
}

/* The authority's record of proxy-a; false when it has none. */
static bool proxy_info(world *w, cfg_proxy_info *out)
{
    cfg_proxy_info v[4];
    size_t n = cfg_authority_proxies(w->a, v, 4);
    for (size_t i = 0; i < n && i < 4; i++) {
        if (strcmp(v[i].id, "proxy-a") == 0) {
            *out = v[i];
            return true;
        }
    }
    return false;
}

/* A push on its own thread. */
typedef struct pusher {
    pthread_t t;
    cfg_authority *a;
    mt_phase phase;
    mt_status st;
    atomic_bool done;
} pusher;

static void *push_main(void *arg)
{
    pusher *p = arg;
    p->st = cfg_authority_push(p->a, p->phase);
    atomic_store(&p->done, true);
    return NULL;
}

static void push_start(pusher *p, cfg_authority *a, mt_phase phase)
{
    memset(p, 0, sizeof *p);
    p->a = a;
    p->phase = phase;
    assert_int_equal(pthread_create(&p->t, NULL, push_main, p), 0);
}

static void push_join(pusher *p)
{
    pthread_join(p->t, NULL);
    assert_ok(p->st);
}

/* ------------------------------------------------------------------------ */
/* The cases.                                                                */

static void test_client_gets_lease_and_serves(void **state)
{
    (void)state;
    world w;
    world_start(&w, 300, 100, false);
    assert_true(wait_until(is_leased, w.c));
    assert_ok(insert_row(w.mt, "r1"));
    cfg_client_info info;
    cfg_client_info_get(w.c, &info);
    assert_int_equal(info.version, 1);
    assert_int_equal(info.phase, MT_PHASE_USE_OLD_HIDE_METADATA);
    assert_true(info.leased);
    assert_int_equal(info.acked_version, 1);
    cfg_proxy_info pi;
    assert_true(proxy_info(&w, &pi));
    assert_int_equal(pi.acked_version, 1);
    world_stop(&w);

    /* A client that never reached the authority serves nothing. */
    world_start(&w, 300, 100, true);
    mt_status st = insert_row(w.mt, "r1");
    assert_int_equal(st.http, 503);
    assert_string_equal(st.code, MT_ERR_SERVER_BUSY);
    assert_int_equal(mt_memtable_count(w.old_t), 0);
    world_stop(&w);
}

static void test_push_waits_for_ack(void **state)
{
    (void)state;
    world w;
    world_start(&w, 2000, 500, false);
    assert_true(wait_until(is_leased, w.c));
    link_hold(&w.l, true); /* the client's next acknowledgement waits */
    pusher p;
    push_start(&p, w.a, MT_PHASE_PREFER_OLD);
    /* While the proxy holds a live lease and has not acknowledged version
     * 2, the push must not complete. */
    for (int k = 0; k < 20; k++) {
        cfg_proxy_info pi;
        assert_true(proxy_info(&w, &pi));
        bool done = atomic_load(&p.done);
        if (pi.lease_left_ms <= 0)
            break; /* starved past its lease: nothing left to show */
        assert_false(done);
        sleep_ms(10);
    }
    link_hold(&w.l, false);
    push_join(&p);
    cfg_proxy_info pi;
    assert_true(proxy_info(&w, &pi));
    if (pi.acked_version != 2)
        assert_true(pi.lease_left_ms <= -w.margin_ms); /* completed by expiry only */
    assert_true(wait_until(is_leased, w.c));
    cfg_client_info info;
    cfg_client_info_get(w.c, &info);
    assert_int_equal(info.version, 2);
    assert_int_equal(info.phase, MT_PHASE_PREFER_OLD);
    assert_ok(insert_row(w.mt, "r2"));
    world_stop(&w);
}

static void test_push_completes_after_cut_lease(void **state)
{
    (void)state;
    world w;
    world_start(&w, 300, 100, false);
    assert_true(wait_until(is_leased, w.c));
    assert_ok(insert_row(w.mt, "r1"));
    atomic_store(&w.l.cut, true);
    pusher p;
    push_start(&p, w.a, MT_PHASE_PREFER_OLD);
    push_join(&p);
    /* The push ended because the lease ran out, plus the margin, and not
     * before: by then the client had given up its lease. */
    cfg_proxy_info pi;
    assert_true(proxy_info(&w, &pi));
    assert_int_equal(pi.acked_version, 1);
    assert_true(pi.lease_left_ms <= -w.margin_ms);
    assert_false(cfg_client_lease_valid(w.c));
    mt_status st = insert_row(w.mt, "r2");
    assert_int_equal(st.http, 503);
    assert_int_equal(mt_memtable_count(w.old_t), 1);
    cfg_client_info info;
    cfg_client_info_get(w.c, &info);
    assert_true(info.failures > 0);
    assert_true(info.last_error[0] != '\0');
    world_stop(&w);
}

static void test_stale_ack_refused(void **state)
{
    (void)state;
    mt_rt *rt = mt_rt_pthread();
    cfg_store *store = cfg_store_memory_new();
    cfg_authority_opts o = {.lease_ms = 300, .margin_ms = 100};
    mt_status st;
    cfg_authority *a = cfg_authority_new(rt, store, &o, &st);
    assert_non_null(a);
    assert_ok(cfg_authority_ack(a, &(cfg_ack){.id = "p", .version = 1}));
    assert_int_equal(cfg_authority_ack(a, &(cfg_ack){.id = "p", .version = 7}).http, 409);
    assert_int_equal(cfg_authority_ack(a, &(cfg_ack){.id = "", .version = 1}).http, 400);
    /* "p" never acknowledges version 2: the push waits for its lease. */
    assert_ok(cfg_authority_push(a, MT_PHASE_PREFER_OLD));
    st = cfg_authority_ack(a, &(cfg_ack){.id = "p", .version = 1});
    assert_int_equal(st.http, 409);
    assert_string_equal(st.code, "StaleConfigVersion");
    cfg_proxy_info pi[2];
    assert_int_equal(cfg_authority_proxies(a, pi, 2), 1);
    assert_int_equal(pi[0].acked_version, 1);
    assert_true(pi[0].lease_left_ms <= 0); /* the refused ack granted nothing */
    assert_ok(cfg_authority_ack(a, &(cfg_ack){.id = "p", .version = 2}));
    assert_int_equal(cfg_authority_proxies(a, pi, 2), 1);
    assert_int_equal(pi[0].acked_version, 2);
    assert_true(pi[0].lease_left_ms > 0);
    cfg_authority_free(a);
    store->ops->destroy(store);
}

static bool at_version_2_leased(void *arg)
{
    world *w = arg;
    cfg_client_info info;
    cfg_client_info_get(w->c, &info);
    return info.version == 2 && info.leased && info.acked_version == 2;
}

static void test_link_comes_back(void **state)
{
    (void)state;
    world w;
    world_start(&w, 300, 100, false);
    assert_true(wait_until(is_leased, w.c));
    atomic_store(&w.l.cut, true);
    assert_true(wait_until(is_unleased, w.c));
    assert_int_equal(insert_row(w.mt, "r1").http, 503);
    pusher p;
    push_start(&p, w.a, MT_PHASE_PREFER_OLD);
    push_join(&p);
    atomic_store(&w.l.cut, false);
    assert_true(wait_until(at_version_2_leased, &w));
    cfg_client_info info;
    cfg_client_info_get(w.c, &info);
    assert_int_equal(info.phase, MT_PHASE_PREFER_OLD);
    assert_int_equal(info.failures, 0);
    assert_ok(insert_row(w.mt, "r1")); /* in prefer_old: guard rows and all */
    assert_int_equal(mt_memtable_count(w.old_t), 3);
    world_stop(&w);
}

static bool saw_version_2(void *arg)
{
    return atomic_load(&((tlink *)arg)->seen) >= 2;
}

/* An authority restarted on its store does not know the leases its
 * previous incarnation granted: a proxy that stays silent may still serve
 * until its lease ends, so the first push must not complete before. */
static void test_restart_waits_for_earlier_leases(void **state)
{
    (void)state;
    world w;
    world_start(&w, 300, 100, false);
    assert_true(wait_until(is_leased, w.c));
    atomic_store(&w.l.cut, true); /* from now on the proxy is silent */
    cfg_authority_opts o = {.lease_ms = 300, .margin_ms = 100};
    mt_status st;
    cfg_authority *b = cfg_authority_new(w.rt, w.store, &o, &st);
    assert_non_null(b);
    assert_ok(cfg_authority_push(b, MT_PHASE_PREFER_OLD));
    assert_false(cfg_client_lease_valid(w.c)); /* gone before the push completed */
    cfg_authority_free(b);
    world_stop(&w);
}

static bool flag_valid(void *ctx)
{
    return atomic_load((atomic_bool *)ctx);
}

/* A stream opened under a lease stops returning rows once it lapses. */
static void test_guard_stops_open_stream(void **state)
{
    (void)state;
    mt_rt *rt = mt_rt_pthread();
    atomic_bool valid = true;
    mt_table *t = mt_memtable_new(rt, "t");
    mt_table *g = cfg_guard_new(t, flag_valid, &valid);
    assert_ok(insert_row(t, "r1"));
    assert_ok(insert_row(t, "r2"));
    mt_stream *s = NULL;
    assert_ok(g->ops->query_stream(g, NULL, NULL, &s));
    mt_entity *e = NULL;
    assert_ok(s->ops->next(s, &e));
    assert_non_null(e);
    mt_entity_free(e);
    atomic_store(&valid, false);
    e = NULL;
    mt_status st = s->ops->next(s, &e);
    assert_int_equal(st.http, 503);
    assert_null(e);
    s->ops->close(s);
    mt_table_destroy(g);
    mt_table_destroy(t);
}

/* A client that gives its lease back is not waited for. */
static void test_released_lease_is_not_waited_for(void **state)
{
    (void)state;
    world w;
    world_start(&w, 5000, 2500, false);
    assert_true(wait_until(is_leased, w.c));
    cfg_proxy_info pi;
    assert_true(proxy_info(&w, &pi));
    cfg_client_release(w.c);
    assert_false(cfg_client_lease_valid(w.c));
    assert_false(proxy_info(&w, &pi)); /* the authority forgot it */
    pusher p;
    push_start(&p, w.a, MT_PHASE_PREFER_OLD);
    push_join(&p); /* with the lease kept, this would wait 7.5 s */
    assert_true(proxy_info(&w, &pi) == false);
    world_stop(&w);
}

static cfg_view view(int64_t version, mt_phase phase, const char *id)
{
    cfg_view v = {.version = version, .phase = phase, .lease_ms = 1000};
    snprintf(v.migration_id, sizeof v.migration_id, "%s", id);
    return v;
}

/* What a proxy may follow: each refusal on its own, so that no check hides
 * behind another (an impostor both lower and foreign would). */
static void test_view_follows_rules(void **state)
{
    (void)state;
    char why[512];
    cfg_view none = {0};
    cfg_view have = view(7, MT_PHASE_PREFER_NEW, "m1");
    cfg_view v;
    v = view(1, MT_PHASE_USE_OLD_HIDE_METADATA, "m2");
    assert_true(cfg_view_follows(&none, &v, false, why, sizeof why)); /* a new proxy */
    v = view(8, MT_PHASE_USE_NEW_WITH_TOMBSTONES, "m1");
    assert_true(cfg_view_follows(&have, &v, true, why, sizeof why)); /* the next step */
    v = view(7, MT_PHASE_PREFER_NEW, "m1");
    assert_true(cfg_view_follows(&have, &v, true, why, sizeof why)); /* settled only */
    v = view(8, MT_PHASE_PREFER_OLD, "m1");
    assert_true(cfg_view_follows(&have, &v, true, why, sizeof why)); /* one back */
    v = view(6, MT_PHASE_PREFER_NEW, "m1"); /* same migration, an older state */
    assert_false(cfg_view_follows(&have, &v, true, why, sizeof why));
    assert_non_null(strstr(why, "lower"));
    assert_false(cfg_view_follows(&have, &v, false, why, sizeof why));
    v = view(7, MT_PHASE_USE_NEW_WITH_TOMBSTONES, "m1"); /* same version, another phase */
    assert_false(cfg_view_follows(&have, &v, true, why, sizeof why));
    v = view(8, MT_PHASE_PREFER_NEW, "m2"); /* another migration, higher version */
    assert_false(cfg_view_follows(&have, &v, true, why, sizeof why));
    assert_non_null(strstr(why, "another migration"));
    v = view(9, MT_PHASE_USE_OLD_HIDE_METADATA, "m1"); /* two back */
    assert_false(cfg_view_follows(&have, &v, false, why, sizeof why));
    v = view(9, MT_PHASE_USE_NEW_HIDE_METADATA, "m1"); /* two ahead */
    assert_false(cfg_view_follows(&have, &v, true, why, sizeof why)); /* not while leased */
    assert_true(cfg_view_follows(&have, &v, false, why, sizeof why)); /* catching up */
}

/* The swap of roles of a migration back: only at the one point where both
 * ways read and write the same table, never undone, never a jump. */
static void test_view_follows_swap(void **state)
{
    (void)state;
    char why[512];
    cfg_view done = view(20, MT_PHASE_USE_NEW_HIDE_METADATA, "m1");
    cfg_view v = view(21, MT_PHASE_USE_OLD_HIDE_METADATA, "m1");
    v.generation = 1;
    assert_int_equal(cfg_view_position(&done), cfg_view_position(&v));
    assert_true(cfg_view_follows(&done, &v, true, why, sizeof why)); /* the swap */
    cfg_view back = view(22, MT_PHASE_PREFER_OLD, "m1");
    back.generation = 1;
    assert_true(cfg_view_follows(&v, &back, true, why, sizeof why)); /* then forward */
    /* use_new_hide_metadata is use_old_hide_metadata of the other roles, so
     * prefer_old of those is one step from it, and two from a swap's eve */
    v = view(21, MT_PHASE_PREFER_OLD, "m1");
    v.generation = 1;
    assert_true(cfg_view_follows(&done, &v, true, why, sizeof why));
    cfg_view eve = view(19, MT_PHASE_USE_NEW_WITH_TOMBSTONES, "m1");
    assert_false(cfg_view_follows(&eve, &v, true, why, sizeof why));
    assert_non_null(strstr(why, "ahead"));
    cfg_view mid = view(12, MT_PHASE_PREFER_NEW, "m1"); /* swapped mid-migration */
    v = view(13, MT_PHASE_USE_OLD_HIDE_METADATA, "m1");
    v.generation = 1;
    assert_false(cfg_view_follows(&mid, &v, true, why, sizeof why));
    cfg_view swapped = view(21, MT_PHASE_USE_OLD_HIDE_METADATA, "m1");
    swapped.generation = 1;
    v = view(22, MT_PHASE_USE_NEW_HIDE_METADATA, "m1"); /* swapped back */
    assert_false(cfg_view_follows(&swapped, &v, true, why, sizeof why));
    assert_non_null(strstr(why, "swapped back"));
    assert_false(cfg_view_follows(&swapped, &v, false, why, sizeof why));
    v = view(21, MT_PHASE_USE_NEW_HIDE_METADATA, "m1"); /* same version, other roles */
    assert_false(cfg_view_follows(&swapped, &v, true, why, sizeof why));
    v = view(22, MT_PHASE_USE_OLD_HIDE_METADATA, "m2"); /* a foreign swap */
    v.generation = 1;
    assert_false(cfg_view_follows(&done, &v, true, why, sizeof why));
    assert_non_null(strstr(why, "another migration"));
    v = view(19, MT_PHASE_USE_OLD_HIDE_METADATA, "m1"); /* a stale one */
    v.generation = 1;
    assert_false(cfg_view_follows(&done, &v, true, why, sizeof why));
    v = view(30, MT_PHASE_PREFER_NEW, "m1"); /* a proxy without lease catches up */
    v.generation = 1;
    assert_true(cfg_view_follows(&done, &v, false, why, sizeof why));
    assert_false(cfg_view_follows(&done, &v, true, why, sizeof why));
}

/* A batch of 100 operations through the client's MigratingTable (room for
 * no guard op in prefer_old: it switches its partition, but only while the
 * phase is known settled). */
static mt_status hundred_ops(world *w, const char *pk)
{
    mt_entity *es[MT_BATCH_MAX];
    mt_op ops[MT_BATCH_MAX];
    mt_op_result res[MT_BATCH_MAX];
    for (int i = 0; i < MT_BATCH_MAX; i++) {
        char rk[16];
        snprintf(rk, sizeof rk, "h%03d", i);
        es[i] = mt_entity_new(pk, rk);
        ops[i] = (mt_op){.kind = MT_OP_INSERT_OR_REPLACE, .entity = es[i]};
    }
    mt_status st = mt_table_batch(w->mt, ops, MT_BATCH_MAX, res);
    for (int i = 0; i < MT_BATCH_MAX; i++)
        mt_entity_free(es[i]);
    return st;
}

static bool is_settled_view(void *ctx)
{
    cfg_view v;
    cfg_authority_poll(ctx, -1, true, 0, &v);
    return v.settled;
}

/* A held push: every proxy applies prefer_old, and none learns it settled,
 * however long it waits, so none switches a partition; the step back to
 * phase 0 and a normal push forward settle again. */
static void test_push_held_stays_unsettled(void **state)
{
    (void)state;
    world w;
    world_start(&w, 2000, 500, false);
    assert_true(wait_until(is_leased, w.c));
    assert_ok(cfg_authority_push_held(w.a, MT_PHASE_PREFER_OLD));
    cfg_proxy_info pi; /* the push completed on the proxy's acknowledgement */
    assert_true(proxy_info(&w, &pi));
    assert_int_equal(pi.acked_version, 2);
    cfg_client_info info;
    cfg_client_info_get(w.c, &info);
    assert_int_equal(info.phase, MT_PHASE_PREFER_OLD);
    for (int k = 0; k < 5; k++) {
        cfg_authority_tick(w.a);
        sleep_ms(20);
    }
    assert_false(is_settled_view(w.a));
    mt_status st = hundred_ops(&w, "p");
    assert_int_equal(st.http, 503);
    assert_int_equal(mt_memtable_count(w.new_t), 0);

    assert_ok(cfg_authority_push(w.a, MT_PHASE_USE_OLD_HIDE_METADATA));
    assert_true(is_settled_view(w.a));
    cfg_client_info_get(w.c, &info);
    assert_int_equal(info.phase, MT_PHASE_USE_OLD_HIDE_METADATA);
    assert_ok(cfg_authority_push(w.a, MT_PHASE_PREFER_OLD));
    assert_true(wait_until(is_settled_view, w.a));
    /* The proxy learns it settled from its long poll. */
    for (int k = 0; k < 200 && !mt_is_ok(&st); k++) {
        st = hundred_ops(&w, "p");
        if (!mt_is_ok(&st))
            sleep_ms(10);
    }
    assert_ok(st);
    assert_int_equal(mt_memtable_count(w.new_t), MT_BATCH_MAX);
    world_stop(&w);
}

static void test_push_waits_for_drain(void **state)
{
    (void)state;
    world w;
    world_start(&w, 2000, 500, false);
    assert_true(wait_until(is_leased, w.c));
    /* An operation of phase 0 in flight: a fixed subscription. */
    mt_config_service *svc = cfg_client_service(w.c);
    mt_config cur;
    mt_subscription *op = svc->ops->subscribe(svc, NULL, &cur);
    assert_non_null(op);
    assert_int_equal(cur.phase, MT_PHASE_USE_OLD_HIDE_METADATA);
    pusher p;
    push_start(&p, w.a, MT_PHASE_PREFER_OLD);
    assert_true(wait_until(saw_version_2, &w.l));
    /* The client knows version 2 but must not acknowledge it while the
     * operation runs; so, while its lease is live, the push waits. */
    for (int k = 0; k < 20; k++) {
        cfg_proxy_info pi;
        assert_true(proxy_info(&w, &pi));
        if (pi.lease_left_ms <= 0)
            break;
        assert_int_equal(atomic_load(&w.l.acked[2]), 0);
        assert_int_equal(pi.acked_version, 1);
        assert_false(atomic_load(&p.done));
        sleep_ms(10);
    }
    svc->ops->unsubscribe(svc, op);
    push_join(&p);
    assert_true(wait_until(at_version_2_leased, &w));
    assert_true(atomic_load(&w.l.acked[2]) > 0);
    world_stop(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_gets_lease_and_serves),
        cmocka_unit_test(test_push_waits_for_ack),
        cmocka_unit_test(test_push_completes_after_cut_lease),
        cmocka_unit_test(test_stale_ack_refused),
        cmocka_unit_test(test_link_comes_back),
        cmocka_unit_test(test_push_waits_for_drain),
        cmocka_unit_test(test_push_held_stays_unsettled),
        cmocka_unit_test(test_view_follows_rules),
        cmocka_unit_test(test_view_follows_swap),
        cmocka_unit_test(test_restart_waits_for_earlier_leases),
        cmocka_unit_test(test_guard_stops_open_stream),
        cmocka_unit_test(test_released_lease_is_not_waited_for),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

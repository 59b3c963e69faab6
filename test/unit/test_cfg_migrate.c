/*
 * test_cfg_migrate.c -- the authority's migration run (config/cfg_migrate.h)
 * and the configuration endpoint's documents (config/cfg_api.c), with real
 * threads (mt_rt_pthread), memory tables and an authority over a memory
 * store that no proxy follows (so a push completes once the authority's
 * start-up grace is over).
 *
 *   - every document the endpoint exchanges reads back as written, and each
 *     reader refuses what is not one (wrong types, out-of-range numbers,
 *     strings that do not fit) with its error and *out untouched;
 *   - a run goes from use_old_hide_metadata to done: the rows are in new,
 *     old is empty, the copy verified, the state saved;
 *   - the phase rules: one step at a time (back only from prefer_old, and
 *     only while no partition is switched), use_new_with_tombstones only
 *     after a verified copy, none while a run moves the phases; abort;
 *     start and resume refuse each other's case;
 *   - a run whose process stopped mid-copy comes back paused from the saved
 *     state, and resumes from its checkpoint rather than the start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_migrate.h"

#define LEASE_MS 20

/* ------------------------------------------------------------------------ */
/* The documents.                                                            */

static void test_view_round_trip(void **state)
{
    (void)state;
    cfg_view v = {.version = 42, .phase = MT_PHASE_PREFER_NEW, .lease_ms = 1500, .settled = true};
    snprintf(v.migration_id, sizeof v.migration_id, "0123456789abcdef");
    char *text = cfg_view_json(&v);
    assert_non_null(text);
    cfg_view got;
    mt_status st = cfg_view_parse(text, strlen(text), &got);
    free(text);
    assert_int_equal(st.http, 0);
    assert_int_equal(got.version, 42);
    assert_int_equal(got.phase, MT_PHASE_PREFER_NEW);
    assert_int_equal(got.lease_ms, 1500);
    assert_true(got.settled);
    assert_string_equal(got.migration_id, "0123456789abcdef");
    assert_int_equal(got.generation, 0);
    v.generation = 3;
    text = cfg_view_json(&v);
    st = cfg_view_parse(text, strlen(text), &got);
    free(text);
    assert_int_equal(st.http, 0);
    assert_int_equal(got.generation, 3);
}

static void test_view_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "[]",
        "{\"config_version\":1,\"phase\":\"prefer_new\"}",                   /* no lease */
        "{\"config_version\":1.5,\"phase\":\"prefer_new\",\"lease_ms\":10}", /* not whole */
        "{\"config_version\":1e300,\"phase\":\"prefer_new\",\"lease_ms\":10}",
        "{\"config_version\":1,\"phase\":\"sideways\",\"lease_ms\":10}",
        "{\"config_version\":1,\"phase\":\"prefer_new\",\"lease_ms\":0}",
        "{\"config_version\":1,\"phase\":\"prefer_new\",\"lease_ms\":10,\"migration_id\":7}",
        /* a migration id that does not fit */
        ("{\"config_version\":1,\"phase\":\"prefer_new\",\"lease_ms\":10,\"migration_id\":"
         "\"0123456789012345678901234567890123456789\"}"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cfg_view got = {.version = 77};
        mt_status st = cfg_view_parse(bad[i], strlen(bad[i]), &got);
        assert_int_equal(st.http, 502);
        assert_string_equal(st.code, "AuthorityError");
        assert_int_equal(got.version, 77);
    }
}

static void test_ack_round_trip(void **state)
{
    (void)state;
    cfg_ack ack = {.id = "p1", .version = 9, .migration_id = "m1", .fingerprint = "fp"};
    char *text = cfg_ack_json(&ack);
    assert_non_null(text);
    cfg_ack_doc got;
    mt_status st = cfg_ack_parse(text, strlen(text), &got);
    free(text);
    assert_int_equal(st.http, 0);
    assert_int_equal(got.version, 9);
    assert_string_equal(got.migration_id, "m1");
    assert_string_equal(got.fingerprint, "fp");
    ack = (cfg_ack){.id = "p1", .version = 3}; /* the optional members left out */
    text = cfg_ack_json(&ack);
    assert_null(strstr(text, "migration_id"));
    st = cfg_ack_parse(text, strlen(text), &got);
    free(text);
    assert_int_equal(st.http, 0);
    assert_string_equal(got.migration_id, "");
    assert_string_equal(got.fingerprint, "");
}

static void test_ack_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "{}",
        "{\"config_version\":\"3\"}",
        "{\"config_version\":3,\"fingerprint\":[]}",
        "{\"config_version\":-1e20}",
        "{\"config_version\":3,\"migration_id\":\"0123456789012345678901234567890123456789\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cfg_ack_doc got = {.version = 77};
        mt_status st = cfg_ack_parse(bad[i], strlen(bad[i]), &got);
        assert_int_equal(st.http, 400);
        assert_string_equal(st.code, "InvalidInput");
        assert_int_equal(got.version, 77);
    }
}

static void test_replica_round_trip(void **state)
{
    (void)state;
    char *text = cfg_replica_json("http://10.0.0.2:8081");
    char url[CFG_URL_MAX];
    mt_status st = cfg_replica_parse(text, strlen(text), url);
    free(text);
    assert_int_equal(st.http, 0);
    assert_string_equal(url, "http://10.0.0.2:8081");
    static const char *const bad[] = {"", "{}", "{\"url\":\"\"}", "{\"url\":5}", "[1]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        st = cfg_replica_parse(bad[i], strlen(bad[i]), url);
        assert_int_equal(st.http, 400);
        assert_string_equal(url, "");
    }
}

/* ------------------------------------------------------------------------ */
/* The run.                                                                  */

typedef struct world {
    mt_rt *rt;
    cfg_store *store;
    cfg_authority *auth;
    mt_table *old_t, *new_t;
    cfg_migrate *m;
    bool pause_at_copy;      /* pause the run at its first copy progress */
    int copy_reports;        /* progress reports while copying */
    int64_t first_copy_rows; /* rows_done of the first of them, -1 before */
    bool lose_lead_at_copy;  /* from the first copy progress on, new refuses: NotLeader */
    bool not_leader;
} world;

static char **w_list(void *ctx, size_t *n, mt_status *st)
{
    (void)ctx;
    (void)st;
    char **names = calloc(2, sizeof *names);
    names[0] = strdup("t");
    *n = 1;
    return names;
}

/* The new table as a replica that stopped leading sees it through its
 * guard: every call refused with 503 NotLeader while w->not_leader. */
typedef struct lead_table {
    mt_table base;
    mt_table *inner;
    world *w;
} lead_table;

static mt_status lead_refused(void)
{
    return mt_error(503, MT_ERR_NOT_LEADER, "This authority replica does not lead now.");
}

static mt_status lt_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *res)
{
    lead_table *l = (lead_table *)t;
    return l->w->not_leader ? lead_refused() : l->inner->ops->execute_batch(l->inner, ops, n, res);
}

static mt_status lt_atomic(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    lead_table *l = (lead_table *)t;
    return l->w->not_leader ? lead_refused() : l->inner->ops->query_atomic(l->inner, pk, f, out);
}

static mt_status lt_stream(mt_table *t, const mt_filter *f, const mt_key *start, mt_stream **out)
{
    lead_table *l = (lead_table *)t;
    return l->w->not_leader ? lead_refused() : l->inner->ops->query_stream(l->inner, f, start, out);
}

static mt_status lt_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    lead_table *l = (lead_table *)t;
    return l->w->not_leader ? lead_refused() : l->inner->ops->retrieve(l->inner, pk, rk, out);
}

static void lt_destroy(mt_table *t)
{
    free(t);
}

static const mt_table_ops lead_table_ops = {
    .execute_batch = lt_batch,
    .query_atomic = lt_atomic,
    .query_stream = lt_stream,
    .retrieve = lt_retrieve,
    .destroy = lt_destroy,
};

/* The labels are the handle: copies of the names, which the run may free
 * before it closes the tables (the contract says labels live until then). */
typedef struct w_tables {
    size_t n;
    char *labels[];
} w_tables;

static void *w_open(void *ctx, char *const *names, size_t n, mt_table_pair *pairs,
                    const char **labels)
{
    world *w = ctx;
    w_tables *h = calloc(1, sizeof *h + (n + 1) * sizeof *h->labels);
    if (!h)
        return NULL;
    h->n = n;
    for (size_t i = 0; i < n; i++) {
        pairs[i] = (mt_table_pair){.old_t = w->old_t, .new_t = w->new_t};
        h->labels[i] = strdup(names[i]);
        labels[i] = h->labels[i];
    }
    return h;
}

static void w_close(void *ctx, void *handle)
{
    (void)ctx;
    w_tables *h = handle;
    for (size_t i = 0; i < h->n; i++)
        free(h->labels[i]);
    free(h);
}

static void w_progress(void *ctx, cfg_migration_state s, const mt_migrator_stats *stats)
{
    world *w = ctx;
    if (s != CFG_MIG_COPYING)
        return;
    if (w->copy_reports++ == 0)
        w->first_copy_rows = stats->rows_done;
    if (w->pause_at_copy && stats->partitions_done >= 1)
        cfg_migrate_stop_soon(w->m);
    if (w->lose_lead_at_copy && stats->partitions_done >= 1)
        w->not_leader = true;
}

static cfg_migrate *w_run(world *w)
{
    cfg_migrate_env env = {.list_tables = w_list,
                           .open_tables = w_open,
                           .close_tables = w_close,
                           .progress = w_progress,
                           .ctx = w};
    w->m = cfg_migrate_new(w->rt, cfg_authority_service(w->auth), w->auth, &env);
    assert_non_null(w->m);
    w->copy_reports = 0;
    w->first_copy_rows = -1;
    return w->m;
}

static void put_row(mt_table *t, const char *pk, const char *rk)
{
    mt_entity *e = mt_entity_new(pk, rk);
    mt_value v = mt_v_i32(1);
    mt_entity_set(e, "n", &v);
    mt_op op = {.kind = MT_OP_INSERT, .entity = e};
    mt_op_result res;
    mt_status st = mt_table_batch(t, &op, 1, &res);
    assert_int_equal(st.http, 0);
    mt_entity_free(e);
}

static size_t count_rows(mt_table *t)
{
    mt_stream *s = NULL;
    mt_status st = t->ops->query_stream(t, NULL, NULL, &s);
    assert_int_equal(st.http, 0);
    size_t n = 0;
    mt_entity *e = NULL;
    for (;;) {
        st = s->ops->next(s, &e);
        if (!mt_is_ok(&st) || !e)
            break;
        n++;
        mt_entity_free(e);
    }
    assert_int_equal(st.http, 0);
    s->ops->close(s);
    return n;
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    w->rt = mt_rt_pthread();
    w->store = cfg_store_memory_new();
    cfg_authority_opts o = {.lease_ms = LEASE_MS, .migration_id = "m"};
    mt_status st;
    w->auth = cfg_authority_new(w->rt, w->store, &o, &st);
    assert_non_null(w->auth);
    w->old_t = mt_memtable_new(w->rt, "old");
    w->new_t = mt_memtable_new(w->rt, "new");
    static const char *const pks[] = {"a", "b", "c"};
    for (int p = 0; p < 3; p++)
        for (int r = 0; r < 3; r++) {
            char rk[8];
            snprintf(rk, sizeof rk, "r%d", r);
            put_row(w->old_t, pks[p], rk);
        }
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    cfg_migrate_free(w->m);
    cfg_authority_free(w->auth);
    w->store->ops->destroy(w->store);
    mt_table_destroy(w->old_t);
    mt_table_destroy(w->new_t);
    free(w);
    return 0;
}

static mt_phase phase_now(world *w)
{
    mt_config c;
    mt_config_service *cfg = cfg_authority_service(w->auth);
    mt_subscription *sub = cfg->ops->subscribe(cfg, NULL, &c);
    cfg->ops->unsubscribe(cfg, sub);
    return c.phase;
}

static void test_run_to_the_end(void **state)
{
    world *w = *state;
    cfg_migrate *m = w_run(w);
    assert_int_equal(cfg_migrate_start(m, false, MT_PHASE_USE_NEW_HIDE_METADATA).http, 0);
    cfg_migrate_join(m);
    cfg_migrate_info info;
    cfg_migrate_info_get(m, &info);
    assert_int_equal(info.state, CFG_MIG_DONE);
    assert_false(info.running);
    assert_true(info.copy_done);
    assert_true(info.copy_verified);
    assert_true(info.have_verify && info.verify.ok);
    assert_int_equal(info.stats.rows_done, 9);
    assert_int_equal(phase_now(w), MT_PHASE_USE_NEW_HIDE_METADATA);
    assert_int_equal(count_rows(w->old_t), 0);
    assert_int_equal(count_rows(w->new_t), 9);
    char *doc = NULL;
    cfg_authority_load_migration(w->auth, &doc);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "\"state\":\"done\""));
    free(doc);
}

static mt_config config_now(world *w)
{
    mt_config c;
    mt_config_service *cfg = cfg_authority_service(w->auth);
    mt_subscription *sub = cfg->ops->subscribe(cfg, NULL, &c);
    cfg->ops->unsubscribe(cfg, sub);
    return c;
}

/* One row written through a MigratingTable on the authority's service. */
static void put_through(world *w, const char *pk, const char *rk)
{
    mt_table *mig = mt_migrating_new(w->rt, cfg_authority_service(w->auth), w->old_t, w->new_t);
    put_row(mig, pk, rk);
    mt_table_destroy(mig);
}

static size_t count_through(world *w)
{
    mt_table *mig = mt_migrating_new(w->rt, cfg_authority_service(w->auth), w->old_t, w->new_t);
    size_t n = count_rows(mig);
    mt_table_destroy(mig);
    return n;
}

/* There and back again: a migration back is refused before the migration
 * is done, swaps the roles in one push, moves every row into old (written
 * ones included), and a migration forward again follows the same way. */
static void test_reverse(void **state)
{
    world *w = *state;
    cfg_migrate *m = w_run(w);
    mt_status st = cfg_migrate_reverse(m, MT_OLD_AFTER_EMPTY); /* nothing migrated yet */
    assert_int_equal(st.http, 409);
    assert_string_equal(st.code, "MigrationNotDone");
    assert_non_null(strstr(st.message, "use_old_hide_metadata"));
    assert_int_equal(cfg_migrate_begin(m, false, 0, MT_OLD_AFTER_KEEP).http, 0);
    cfg_migrate_join(m);
    assert_int_equal(count_rows(w->new_t), 9);
    assert_int_equal(count_rows(w->old_t), 9); /* the rollback copy */
    st = cfg_migrate_reverse(m, MT_OLD_AFTER_EMPTY);
    assert_int_equal(st.http, 409);
    assert_string_equal(st.code, "ReverseTargetNotEmpty");
    assert_non_null(strstr(st.message, "delete or empty"));
    assert_false(config_now(w).reversed);
    mt_table_destroy(w->old_t); /* the operator empties the old account */
    w->old_t = mt_memtable_new(w->rt, "old");
    put_through(w, "d", "r0"); /* written in use_new_hide_metadata: new only */
    assert_int_equal(count_rows(w->old_t), 0);

    assert_int_equal(cfg_migrate_reverse(m, MT_OLD_AFTER_EMPTY).http, 0);
    cfg_migrate_join(m);
    cfg_migrate_info info;
    cfg_migrate_info_get(m, &info);
    assert_int_equal(info.state, CFG_MIG_DONE);
    assert_true(info.have_verify && info.verify.ok);
    assert_int_equal(info.stats.rows_done, 10);
    mt_config c = config_now(w);
    assert_true(c.reversed);
    assert_int_equal(c.phase, MT_PHASE_USE_NEW_HIDE_METADATA);
    assert_int_equal(cfg_authority_generation(w->auth), 1);
    assert_int_equal(count_rows(w->old_t), 10); /* every row back in old */
    assert_int_equal(count_rows(w->new_t), 0);
    assert_int_equal(count_through(w), 10);
    put_through(w, "e", "r0"); /* reversed use_new_hide_metadata writes old */
    assert_int_equal(count_rows(w->old_t), 11);

    assert_int_equal(cfg_migrate_reverse(m, MT_OLD_AFTER_EMPTY).http, 0); /* forward again */
    cfg_migrate_join(m);
    cfg_migrate_info_get(m, &info);
    assert_int_equal(info.state, CFG_MIG_DONE);
    assert_false(config_now(w).reversed);
    assert_int_equal(cfg_authority_generation(w->auth), 2);
    assert_int_equal(count_rows(w->old_t), 0);
    assert_int_equal(count_rows(w->new_t), 11);
    char *doc = NULL;
    cfg_authority_load_migration(w->auth, &doc);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "\"state\":\"done\""));
    free(doc);
}

/* A reversed migration stepped back and aborted like a forward one, and an
 * authority restarted on the store keeps the roles. */
static void test_reverse_abort_and_restart(void **state)
{
    world *w = *state;
    cfg_migrate *m = w_run(w);
    assert_int_equal(cfg_migrate_begin(m, false, 0, MT_OLD_AFTER_EMPTY).http, 0);
    cfg_migrate_join(m);
    assert_int_equal(cfg_migrate_phase(m, MT_PHASE_USE_OLD_HIDE_METADATA, &(mt_phase){0}).http,
                     409); /* not from use_new_hide_metadata by a phase push */
    /* a reverse run stopped in prefer_old by hand: swap, then one step */
    assert_int_equal(cfg_authority_push_swap(w->auth).http, 0);
    assert_true(config_now(w).reversed);
    assert_int_equal(cfg_authority_push_swap(w->auth).http, 409); /* only from phase 4 */
    mt_phase from;
    assert_int_equal(cfg_migrate_phase(m, MT_PHASE_PREFER_OLD, &from).http, 0);
    put_through(w, "f", "r0"); /* prefer_old reversed: written to the new table (plays old) */
    assert_int_equal(count_rows(w->new_t), 10 + 2); /* the row, its meta and assertion */
    int64_t removed = 0;
    assert_int_equal(cfg_migrate_abort(m, &removed).http, 0);
    assert_int_equal(removed, 2);
    mt_config c = config_now(w);
    assert_int_equal(c.phase, MT_PHASE_USE_OLD_HIDE_METADATA);
    assert_true(c.reversed);
    assert_int_equal(count_rows(w->new_t), 10);
    assert_int_equal(count_rows(w->old_t), 0);
    assert_int_equal(count_through(w), 10);

    cfg_migrate_free(w->m);
    w->m = NULL;
    cfg_authority_free(w->auth);
    cfg_authority_opts o = {.lease_ms = LEASE_MS};
    mt_status st;
    w->auth = cfg_authority_new(w->rt, w->store, &o, &st);
    assert_non_null(w->auth);
    assert_true(config_now(w).reversed);
    assert_int_equal(cfg_authority_generation(w->auth), 1);
    assert_int_equal(count_through(w), 10);
}

static void test_phase_rules(void **state)
{
    world *w = *state;
    cfg_migrate *m = w_run(w);
    mt_phase from;
    mt_status st = cfg_migrate_phase(m, MT_PHASE_PREFER_NEW, &from); /* two steps */
    assert_int_equal(st.http, 409);
    assert_string_equal(st.code, "PhaseTransitionNotAllowed");
    assert_non_null(strstr(st.message, "one step at a time"));
    assert_int_equal(from, MT_PHASE_USE_OLD_HIDE_METADATA);
    assert_int_equal(cfg_migrate_phase(m, MT_PHASE_PREFER_OLD, &from).http, 0);
    assert_int_equal(cfg_migrate_phase(m, MT_PHASE_PREFER_OLD, &from).http, 0); /* a no-op */
    /* Back from prefer_old, while no partition is switched, and forward again. */
    assert_int_equal(cfg_migrate_phase(m, MT_PHASE_USE_OLD_HIDE_METADATA, &from).http, 0);
    assert_int_equal(from, MT_PHASE_PREFER_OLD);
    assert_int_equal(phase_now(w), MT_PHASE_USE_OLD_HIDE_METADATA);
    assert_int_equal(cfg_migrate_phase(m, MT_PHASE_PREFER_OLD, &from).http, 0);
    assert_int_equal(cfg_migrate_phase(m, MT_PHASE_PREFER_NEW, &from).http, 0);
    st = cfg_migrate_phase(m, MT_PHASE_PREFER_OLD, &from); /* back from prefer_new */
    assert_int_equal(st.http, 409);
    assert_string_equal(st.code, "PhaseTransitionNotAllowed");
    assert_non_null(strstr(st.message, "only from prefer_old"));
    assert_non_null(strstr(st.message, "switches its partition"));
    st = cfg_migrate_phase(m, MT_PHASE_USE_NEW_WITH_TOMBSTONES, &from); /* no verified copy */
    assert_int_equal(st.http, 409);
    assert_non_null(strstr(st.message, "verify"));
    assert_int_equal(phase_now(w), MT_PHASE_PREFER_NEW);
    char msg[512];
    assert_string_equal(cfg_migrate_start_refusal(m, true, msg, sizeof msg), "MigrationNotPaused");
    assert_null(cfg_migrate_start_refusal(m, false, msg, sizeof msg));
    /* The copy alone, then its verify, makes the next step allowed. */
    assert_int_equal(cfg_migrate_start(m, true, MT_PHASE_PREFER_NEW).http, 0);
    st = cfg_migrate_phase(m, MT_PHASE_USE_NEW_WITH_TOMBSTONES, &from);
    cfg_migrate_info info;
    cfg_migrate_info_get(m, &info);
    if (info.running) { /* refused while the run moves the phases */
        assert_int_equal(st.http, 409);
        assert_non_null(strstr(st.message, "running"));
    }
    cfg_migrate_join(m);
    cfg_migrate_info_get(m, &info);
    assert_int_equal(info.state, CFG_MIG_IDLE);
    assert_true(info.copy_verified);
    assert_int_equal(cfg_migrate_phase(m, MT_PHASE_USE_NEW_WITH_TOMBSTONES, &from).http, 0);
}

/* n rows into partition pk through the protocol on the authority's own
 * service, as one batch (100: no room for a guard op in prefer_old, so the
 * partition is switched once the phase is settled). */
static mt_status write_batch(world *w, const char *pk, int n)
{
    mt_table *mt = mt_migrating_new(w->rt, cfg_authority_service(w->auth), w->old_t, w->new_t);
    mt_entity *es[MT_BATCH_MAX];
    mt_op ops[MT_BATCH_MAX];
    mt_op_result res[MT_BATCH_MAX];
    for (int i = 0; i < n; i++) {
        char rk[16];
        snprintf(rk, sizeof rk, "w%03d", i);
        es[i] = mt_entity_new(pk, rk);
        ops[i] = (mt_op){.kind = MT_OP_INSERT_OR_REPLACE, .entity = es[i]};
    }
    mt_status st = mt_table_batch(mt, ops, (size_t)n, res);
    for (int i = 0; i < n; i++)
        mt_entity_free(es[i]);
    mt_table_destroy(mt);
    return st;
}

/* A step back is refused, naming the partition, once one is switched; the
 * fleet stays in prefer_old. */
static void test_step_back_refused_when_switched(void **state)
{
    world *w = *state;
    cfg_migrate *m = w_run(w);
    mt_phase from;
    assert_int_equal(cfg_migrate_phase(m, MT_PHASE_PREFER_OLD, &from).http, 0);
    assert_int_equal(write_batch(w, "z", MT_BATCH_MAX).http, 0);
    assert_int_equal(count_rows(w->new_t), MT_BATCH_MAX);
    mt_status st = cfg_migrate_phase(m, MT_PHASE_USE_OLD_HIDE_METADATA, &from);
    assert_int_equal(st.http, 409);
    assert_string_equal(st.code, "PhaseTransitionNotAllowed");
    if (!strstr(st.message, "partition t / z is switched"))
        fail_msg("%s", st.message);
    assert_int_equal(phase_now(w), MT_PHASE_PREFER_OLD);
    int64_t removed = -1;
    st = cfg_migrate_abort(m, &removed);
    assert_int_equal(st.http, 409);
    assert_int_equal(phase_now(w), MT_PHASE_PREFER_OLD);
    /* Forward still works, and settles prefer_old first. */
    assert_int_equal(cfg_migrate_phase(m, MT_PHASE_PREFER_NEW, &from).http, 0);
}

/* Abort in prefer_old: the fleet back in phase 0, the protocol rows of the
 * guarded writes gone from old, the application's rows (old and new)
 * there, the run forgotten; refused from prefer_new on. */
static void test_abort(void **state)
{
    world *w = *state;
    cfg_migrate *m = w_run(w);
    mt_phase from;
    assert_int_equal(cfg_migrate_start(m, true, MT_PHASE_PREFER_OLD).http, 0);
    cfg_migrate_join(m);
    assert_int_equal(phase_now(w), MT_PHASE_PREFER_OLD);
    assert_int_equal(write_batch(w, "a", 2).http, 0);
    assert_int_equal(count_rows(w->old_t), 9 + 2 + 2); /* a meta and an assertion row */
    int64_t removed = -1;
    mt_status st = cfg_migrate_abort(m, &removed);
    assert_int_equal(st.http, 0);
    assert_int_equal(removed, 2);
    assert_int_equal(phase_now(w), MT_PHASE_USE_OLD_HIDE_METADATA);
    assert_int_equal(count_rows(w->old_t), 9 + 2);
    assert_int_equal(count_rows(w->new_t), 0);
    cfg_migrate_info info;
    cfg_migrate_info_get(m, &info);
    assert_int_equal(info.state, CFG_MIG_IDLE);
    char *doc = NULL;
    cfg_authority_load_migration(w->auth, &doc);
    assert_non_null(strstr(doc, "\"state\":\"idle\""));
    free(doc);
    /* Aborting again in phase 0 is harmless. */
    assert_int_equal(cfg_migrate_abort(m, &removed).http, 0);
    assert_int_equal(removed, 0);
    /* From prefer_new on it is refused. */
    assert_int_equal(cfg_migrate_phase(m, MT_PHASE_PREFER_OLD, &from).http, 0);
    assert_int_equal(cfg_migrate_phase(m, MT_PHASE_PREFER_NEW, &from).http, 0);
    st = cfg_migrate_abort(m, &removed);
    assert_int_equal(st.http, 409);
    assert_string_equal(st.code, "AbortNotAllowed");
    assert_int_equal(phase_now(w), MT_PHASE_PREFER_NEW);
}

static void test_resume_after_restart(void **state)
{
    world *w = *state;
    cfg_migrate *m = w_run(w);
    w->pause_at_copy = true;
    assert_int_equal(cfg_migrate_start(m, false, MT_PHASE_USE_NEW_HIDE_METADATA).http, 0);
    cfg_migrate_join(m);
    cfg_migrate_info info;
    cfg_migrate_info_get(m, &info);
    assert_int_equal(info.state, CFG_MIG_PAUSED);
    assert_true(info.stats.partitions_done >= 1 && info.stats.partitions_done < 3);
    char msg[512];
    assert_string_equal(cfg_migrate_start_refusal(m, false, msg, sizeof msg), "MigrationPaused");
    /* The process "stops" while copying: its saved state says copying. */
    cfg_migrate_free(m);
    char *doc = NULL;
    cfg_authority_load_migration(w->auth, &doc);
    assert_non_null(strstr(doc, "\"checkpoint\":\"v1"));
    char *paused = strstr(doc, "\"state\":\"paused\"");
    assert_non_null(paused);
    /* as the process left it: "copying" in place of "paused" */
    char *fixed = malloc(strlen(doc) + 2);
    size_t head = (size_t)(paused - doc);
    memcpy(fixed, doc, head);
    strcpy(fixed + head, "\"state\":\"copying\"");
    strcat(fixed, paused + strlen("\"state\":\"paused\""));
    assert_int_equal(cfg_authority_save_migration(w->auth, fixed).http, 0);
    free(fixed);
    free(doc);

    w->pause_at_copy = false;
    m = w_run(w);
    assert_true(cfg_migrate_restore(m)); /* cut short: comes back paused */
    cfg_migrate_info_get(m, &info);
    assert_int_equal(info.state, CFG_MIG_PAUSED);
    assert_non_null(strstr(info.error, "interrupted while copying"));
    assert_string_equal(cfg_migrate_start_refusal(m, false, msg, sizeof msg), "MigrationPaused");
    assert_null(cfg_migrate_start_refusal(m, true, msg, sizeof msg));
    assert_int_equal(cfg_migrate_start(m, false, MT_PHASE_USE_NEW_HIDE_METADATA).http, 0);
    cfg_migrate_join(m);
    cfg_migrate_info_get(m, &info);
    assert_int_equal(info.state, CFG_MIG_DONE);
    assert_int_equal(info.stats.rows_done, 9);
    /* Resumed from the checkpoint (a whole partition of three rows at
     * least): the copy did not start over from zero. */
    assert_true(w->first_copy_rows >= 3);
    assert_int_equal(count_rows(w->old_t), 0);
    assert_int_equal(count_rows(w->new_t), 9);
}

/* A replica whose own beats came late stops leading for a moment: its
 * run is interrupted, not failed; the store keeps the state it saved
 * while leading (copying), and the run resumes from the checkpoint once
 * it leads again. */
static void test_lost_lead_resumes(void **state)
{
    world *w = *state;
    lead_table *lt = calloc(1, sizeof *lt);
    assert_non_null(lt);
    *lt = (lead_table){.base = {&lead_table_ops}, .inner = w->new_t, .w = w};
    mt_table *plain_new = w->new_t;
    w->new_t = &lt->base;
    cfg_migrate *m = w_run(w);
    w->lose_lead_at_copy = true;
    assert_int_equal(cfg_migrate_start(m, false, MT_PHASE_USE_NEW_HIDE_METADATA).http, 0);
    cfg_migrate_join(m);
    cfg_migrate_info info;
    cfg_migrate_info_get(m, &info);
    assert_int_equal(info.state, CFG_MIG_PAUSED);
    assert_non_null(strstr(info.error, "stopped leading"));
    char *doc = NULL;
    cfg_authority_load_migration(w->auth, &doc);
    assert_non_null(strstr(doc, "\"state\":\"copying\""));
    free(doc);
    assert_true(cfg_migrate_lost_lead(m));
    assert_false(cfg_migrate_lost_lead(m)); /* once */

    w->lose_lead_at_copy = false;
    w->not_leader = false;
    assert_true(cfg_migrate_restore(m));
    assert_int_equal(cfg_migrate_start(m, false, MT_PHASE_USE_NEW_HIDE_METADATA).http, 0);
    cfg_migrate_join(m);
    cfg_migrate_info_get(m, &info);
    assert_int_equal(info.state, CFG_MIG_DONE);
    assert_int_equal(info.stats.rows_done, 9);
    assert_int_equal(count_rows(w->old_t), 0);
    assert_int_equal(count_rows(plain_new), 9);
    w->new_t = plain_new;
    free(lt);
}

/* A migration back paused in its copy, its process restarted, resumed from
 * the checkpoint in the swapped roles. */
static void test_reverse_resume_after_restart(void **state)
{
    world *w = *state;
    cfg_migrate *m = w_run(w);
    assert_int_equal(cfg_migrate_begin(m, false, 0, MT_OLD_AFTER_EMPTY).http, 0);
    cfg_migrate_join(m);
    w->pause_at_copy = true;
    assert_int_equal(cfg_migrate_reverse(m, MT_OLD_AFTER_EMPTY).http, 0);
    cfg_migrate_join(m);
    cfg_migrate_info info;
    cfg_migrate_info_get(m, &info);
    assert_int_equal(info.state, CFG_MIG_PAUSED);
    assert_true(info.stats.partitions_done >= 1 && info.stats.partitions_done < 3);
    assert_int_equal(config_now(w).phase, MT_PHASE_PREFER_NEW);
    assert_true(config_now(w).reversed);
    cfg_migrate_free(m);
    cfg_authority_free(w->auth);
    cfg_authority_opts o = {.lease_ms = LEASE_MS};
    mt_status st;
    w->auth = cfg_authority_new(w->rt, w->store, &o, &st);
    assert_non_null(w->auth);
    w->pause_at_copy = false;
    m = w_run(w);
    cfg_migrate_restore(m);
    char msg[512];
    assert_null(cfg_migrate_start_refusal(m, true, msg, sizeof msg));
    assert_int_equal(cfg_migrate_start(m, false, MT_PHASE_USE_NEW_HIDE_METADATA).http, 0);
    cfg_migrate_join(m);
    cfg_migrate_info_get(m, &info);
    assert_int_equal(info.state, CFG_MIG_DONE);
    assert_int_equal(info.stats.rows_done, 9);
    assert_true(w->first_copy_rows >= 3); /* from the checkpoint */
    assert_true(config_now(w).reversed);
    assert_int_equal(count_rows(w->old_t), 9);
    assert_int_equal(count_rows(w->new_t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_view_round_trip),
        cmocka_unit_test(test_view_refused),
        cmocka_unit_test(test_ack_round_trip),
        cmocka_unit_test(test_ack_refused),
        cmocka_unit_test(test_replica_round_trip),
        cmocka_unit_test_setup_teardown(test_run_to_the_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_phase_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_step_back_refused_when_switched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_lead_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reverse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reverse_abort_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reverse_resume_after_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

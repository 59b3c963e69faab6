/*
 * test_migrator.c -- the migrator end to end on in-memory tables: a full run
 * from phase 0, a run resumed after the migrator died at every possible
 * backend call, and a rerun of a finished migration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt.h"

/* A table that forwards to another until its call budget runs out, then
 * fails every call with 500: a migrator killed mid-run. */
typedef struct dying {
    mt_table base;
    mt_table *inner;
    long *budget;
} dying;

static bool spend(dying *d)
{
    if (*d->budget <= 0)
        return false;
    (*d->budget)--;
    return true;
}

static mt_status dead(void)
{
    return mt_error(500, MT_ERR_INTERNAL, "the migrator died");
}

static mt_status d_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *r)
{
    dying *d = (dying *)t;
    return spend(d) ? mt_table_batch(d->inner, ops, n, r) : dead();
}

static mt_status d_query(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    dying *d = (dying *)t;
    return spend(d) ? d->inner->ops->query_atomic(d->inner, pk, f, out) : dead();
}

static mt_status d_stream(mt_table *t, const mt_filter *f, const mt_key *k, mt_stream **out)
{
    dying *d = (dying *)t;
    return spend(d) ? d->inner->ops->query_stream(d->inner, f, k, out) : dead();
}

static mt_status d_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    dying *d = (dying *)t;
    return spend(d) ? d->inner->ops->retrieve(d->inner, pk, rk, out) : dead();
}

static void d_destroy(mt_table *t)
{
    free(t);
}

static const mt_table_ops dying_ops = {d_batch, d_query, d_stream, d_retrieve, d_destroy};

static mt_table *dying_new(mt_table *inner, long *budget)
{
    dying *d = calloc(1, sizeof *d);
    d->base.ops = &dying_ops;
    d->inner = inner;
    d->budget = budget;
    return &d->base;
}

#define PARTITIONS 3
#define ROWS 5

static void fill_old(mt_table *old_t)
{
    char pk[8], rk[8];
    for (int p = 0; p < PARTITIONS; p++)
        for (int r = 0; r < ROWS; r++) {
            snprintf(pk, sizeof pk, "p%d", p);
            snprintf(rk, sizeof rk, "r%d", r);
            mt_entity *e = mt_entity_new(pk, rk);
            mt_value v = mt_v_i32(p * 100 + r);
            mt_entity_set(e, "n", &v);
            mt_op op = {.kind = MT_OP_INSERT, .entity = e};
            mt_op_result res;
            mt_status st = mt_table_batch(old_t, &op, 1, &res);
            assert_true(mt_is_ok(&st));
            mt_entity_free(e);
        }
}

/* new holds exactly the rows fill_old wrote, clean; old is empty. */
static void assert_migrated(mt_table *old_t, mt_table *new_t, mt_config_service *cfg)
{
    assert_int_equal(mt_memtable_count(old_t), 0);
    mt_entity_list rows = {0};
    mt_status st = mt_table_scan(new_t, NULL, &rows);
    assert_true(mt_is_ok(&st));
    assert_int_equal(rows.n, PARTITIONS * ROWS);
    for (size_t i = 0; i < rows.n; i++) {
        const mt_entity *e = rows.v[i];
        assert_int_equal(e->nprops, 1);
        const mt_value *v = mt_entity_get(e, "n");
        assert_non_null(v);
        int p = e->pk[1] - '0', r = e->rk[1] - '0';
        assert_int_equal(v->u.i32, p * 100 + r);
    }
    mt_entity_list_clear(&rows);
    mt_config c;
    mt_subscription *sub = cfg->ops->subscribe(cfg, NULL, &c);
    cfg->ops->unsubscribe(cfg, sub);
    assert_int_equal(c.phase, MT_PHASE_USE_NEW_HIDE_METADATA);
}

static void test_full_run(void **state)
{
    (void)state;
    mt_rt *rt = mt_rt_pthread();
    mt_table *old_t = mt_memtable_new(rt, "old"), *new_t = mt_memtable_new(rt, "new");
    mt_config_service *cfg = mt_config_local_new(rt, MT_PHASE_USE_OLD_HIDE_METADATA);
    fill_old(old_t);
    mt_migrator_stats stats = {0};
    mt_status st = mt_migrate(rt, cfg, old_t, new_t, &stats);
    assert_true(mt_is_ok(&st));
    assert_int_equal(stats.rows_copied, PARTITIONS * ROWS);
    assert_int_equal(stats.partitions_switched, PARTITIONS);
    assert_migrated(old_t, new_t, cfg);

    /* Running it again finds nothing to do and changes nothing. */
    st = mt_migrate(rt, cfg, old_t, new_t, &stats);
    assert_true(mt_is_ok(&st));
    assert_migrated(old_t, new_t, cfg);
    cfg->ops->destroy(cfg);
    mt_table_destroy(old_t);
    mt_table_destroy(new_t);
}

/* Kill the migrator after k backend calls, for every k, then restart it. */
static void test_restart_after_death_anywhere(void **state)
{
    (void)state;
    mt_rt *rt = mt_rt_pthread();
    long runs = 0;
    for (long k = 0;; k++) {
        mt_table *old_t = mt_memtable_new(rt, "old"), *new_t = mt_memtable_new(rt, "new");
        mt_config_service *cfg = mt_config_local_new(rt, MT_PHASE_USE_OLD_HIDE_METADATA);
        fill_old(old_t);
        long budget = k;
        mt_table *d_old = dying_new(old_t, &budget), *d_new = dying_new(new_t, &budget);
        mt_status st = mt_migrate(rt, cfg, d_old, d_new, NULL);
        bool finished = mt_is_ok(&st);
        if (!finished) {
            assert_int_equal(st.http, 500);
            st = mt_migrate(rt, cfg, old_t, new_t, NULL);
            assert_true(mt_is_ok(&st));
        }
        assert_migrated(old_t, new_t, cfg);
        mt_table_destroy(d_old);
        mt_table_destroy(d_new);
        cfg->ops->destroy(cfg);
        mt_table_destroy(old_t);
        mt_table_destroy(new_t);
        runs++;
        if (finished)
            break;
    }
    /* It took some calls, so deaths at many points were exercised. */
    assert_true(runs > PARTITIONS * ROWS);
}

/* Stopping early leaves the configuration at the asked phase with that
 * phase's work done; a later run finishes. */
static void test_stop_early_then_finish(void **state)
{
    (void)state;
    mt_rt *rt = mt_rt_pthread();
    mt_table *old_t = mt_memtable_new(rt, "old"), *new_t = mt_memtable_new(rt, "new");
    mt_config_service *cfg = mt_config_local_new(rt, MT_PHASE_USE_OLD_HIDE_METADATA);
    fill_old(old_t);
    mt_table_pair pair = {.old_t = old_t, .new_t = new_t};
    mt_migrator_hooks hooks = {.stop_early = true, .until = MT_PHASE_PREFER_NEW};
    mt_migrator_stats stats = {0};
    mt_status st = mt_migrate_tables(rt, cfg, &pair, 1, &hooks, &stats);
    assert_true(mt_is_ok(&st));
    mt_config c;
    cfg->ops->unsubscribe(cfg, cfg->ops->subscribe(cfg, NULL, &c));
    assert_int_equal(c.phase, MT_PHASE_PREFER_NEW);
    assert_int_equal(stats.rows_copied, PARTITIONS * ROWS); /* the copy is done */
    assert_int_equal(mt_memtable_count(new_t), PARTITIONS * ROWS);

    hooks.until = MT_PHASE_USE_NEW_WITH_TOMBSTONES;
    st = mt_migrate_tables(rt, cfg, &pair, 1, &hooks, &stats);
    assert_true(mt_is_ok(&st));
    cfg->ops->unsubscribe(cfg, cfg->ops->subscribe(cfg, NULL, &c));
    assert_int_equal(c.phase, MT_PHASE_USE_NEW_WITH_TOMBSTONES);
    assert_true(mt_memtable_count(old_t) > 0); /* no cleanup yet */

    st = mt_migrate_tables(rt, cfg, &pair, 1, NULL, NULL);
    assert_true(mt_is_ok(&st));
    assert_migrated(old_t, new_t, cfg);
    cfg->ops->destroy(cfg);
    mt_table_destroy(old_t);
    mt_table_destroy(new_t);
}

/* A backend that answers every third call with 503 ServerBusy: the
 * migrator rides it out and finishes in one run. */
static bool flaky_spend(dying *d)
{
    return ++*d->budget % 3 != 0;
}

static mt_status busy(void)
{
    return mt_error(503, MT_ERR_SERVER_BUSY, "The server is busy.");
}

static mt_status f_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *r)
{
    dying *d = (dying *)t;
    return flaky_spend(d) ? mt_table_batch(d->inner, ops, n, r) : busy();
}

static mt_status f_query(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    dying *d = (dying *)t;
    return flaky_spend(d) ? d->inner->ops->query_atomic(d->inner, pk, f, out) : busy();
}

static mt_status f_stream(mt_table *t, const mt_filter *f, const mt_key *k, mt_stream **out)
{
    dying *d = (dying *)t;
    return flaky_spend(d) ? d->inner->ops->query_stream(d->inner, f, k, out) : busy();
}

static mt_status f_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    dying *d = (dying *)t;
    return flaky_spend(d) ? d->inner->ops->retrieve(d->inner, pk, rk, out) : busy();
}

static const mt_table_ops flaky_ops = {f_batch, f_query, f_stream, f_retrieve, d_destroy};

static void test_transient_errors_ridden_out(void **state)
{
    (void)state;
    mt_rt *rt = mt_rt_pthread();
    mt_table *old_t = mt_memtable_new(rt, "old"), *new_t = mt_memtable_new(rt, "new");
    mt_config_service *cfg = mt_config_local_new(rt, MT_PHASE_USE_OLD_HIDE_METADATA);
    fill_old(old_t);
    long calls = 0;
    dying *fo = calloc(1, sizeof *fo), *fn = calloc(1, sizeof *fn);
    *fo = (dying){.base.ops = &flaky_ops, .inner = old_t, .budget = &calls};
    *fn = (dying){.base.ops = &flaky_ops, .inner = new_t, .budget = &calls};
    mt_status st = mt_migrate(rt, cfg, &fo->base, &fn->base, NULL);
    assert_true(mt_is_ok(&st));
    assert_true(calls > 3 * PARTITIONS); /* faults were met */
    assert_migrated(old_t, new_t, cfg);
    mt_table_destroy(&fo->base);
    mt_table_destroy(&fn->base);
    cfg->ops->destroy(cfg);
    mt_table_destroy(old_t);
    mt_table_destroy(new_t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_run),
        cmocka_unit_test(test_restart_after_death_anywhere),
        cmocka_unit_test(test_stop_early_then_finish),
        cmocka_unit_test(test_transient_errors_ridden_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

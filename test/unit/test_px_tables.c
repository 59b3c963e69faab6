/*
 * test_px_tables.c -- the proxy's tables over two accounts (memory ones
 * here; the e2e tests run the same code over Azurite): concurrent creates
 * of one name make it once, delete then get, a table made in the accounts
 * behind the registry's back found on first use, --table-map renames in
 * both directions, and the state table neither listed, found nor
 * creatable.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "px.h"

typedef struct world {
    mt_rt *rt;
    mt_config_service *cfg;
    mt_account *old_a, *new_a;
    px_table_map map;
    px_registry *reg;
} world;

static void want(mt_status st, int http, const char *code)
{
    if (st.http != http || (code && strcmp(st.code, code) != 0))
        fail_msg("got %d %s (%s), want %d %s", st.http, st.code, st.message, http,
                 code ? code : "(any)");
}

static void world_open(world *w, const char *map)
{
    *w = (world){.rt = mt_rt_pthread()};
    w->cfg = mt_config_local_new(w->rt, MT_PHASE_USE_OLD_HIDE_METADATA);
    w->old_a = mt_memaccount_new(w->rt, "old");
    w->new_a = mt_memaccount_new(w->rt, "new");
    assert_non_null(w->cfg);
    assert_non_null(w->old_a);
    assert_non_null(w->new_a);
    char why[256];
    assert_true(px_table_map_parse(map, &w->map, why, sizeof why));
}

static void world_start(world *w)
{
    mt_status st = mt_ok();
    w->reg = px_registry_new(w->rt, w->cfg, (px_backend){.account = w->old_a, .label = "old"},
                             (px_backend){.account = w->new_a, .label = "new", .map = &w->map},
                             NULL, NULL, &st);
    want(st, 0, NULL);
    assert_non_null(w->reg);
}

static void world_close(world *w)
{
    px_registry_free(w->reg);
    mt_account_destroy(w->old_a);
    mt_account_destroy(w->new_a);
    w->cfg->ops->destroy(w->cfg);
}

/* The names of a, or the registry's account view when a is NULL, joined
 * by commas. */
static void names_are(world *w, mt_account *a, const char *want_list)
{
    char **names = NULL;
    size_t n = 0;
    mt_status st = mt_ok();
    if (a)
        st = mt_account_list_all(a, &names, &n);
    else
        names = px_account_tables(w->reg, &n, &st);
    want(st, 0, NULL);
    char got[512] = "";
    for (size_t i = 0; i < n; i++) {
        strncat(got, i ? "," : "", sizeof got - strlen(got) - 1);
        strncat(got, names[i], sizeof got - strlen(got) - 1);
    }
    mt_names_free(names, n);
    assert_string_equal(got, want_list);
}

static bool found(world *w, const char *name)
{
    mt_status st = mt_ok();
    px_table *t = px_table_get(w->reg, name, &st);
    if (t)
        px_table_release(w->reg, t);
    else
        want(st, 404, MT_ERR_TABLE_NOT_FOUND);
    return t != NULL;
}

static mt_status put_row(world *w, const char *table, const char *rk)
{
    mt_status st = mt_ok();
    px_table *t = px_table_get(w->reg, table, &st);
    if (!t)
        return st;
    mt_entity *e = mt_entity_new("p", rk);
    mt_op op = {.kind = MT_OP_INSERT, .entity = e};
    mt_op_result res;
    st = mt_table_batch(px_table_view(t), &op, 1, &res);
    mt_entity_free(e);
    px_table_release(w->reg, t);
    return st;
}

static void test_lifecycle(void **state)
{
    (void)state;
    world w;
    world_open(&w, "");
    world_start(&w);
    /* A missing table's status is set whatever the caller's held (callers
     * need not initialize it). */
    mt_status st = mt_error(599, "Stale", "left over");
    assert_null(px_table_get(w.reg, "orders", &st));
    want(st, 404, MT_ERR_TABLE_NOT_FOUND);
    want(px_table_create(w.reg, "orders"), 0, NULL);
    want(px_table_create(w.reg, "ORDERS"), 409, MT_ERR_TABLE_EXISTS);
    names_are(&w, w.old_a, "orders");
    names_are(&w, w.new_a, "orders");
    want(put_row(&w, "Orders", "r1"), 0, NULL);
    want(put_row(&w, "orders", "r1"), 409, MT_ERR_ENTITY_EXISTS);

    /* Delete then get: gone; created again: empty. */
    want(px_table_delete(w.reg, "orders"), 0, NULL);
    assert_false(found(&w, "orders"));
    want(px_table_delete(w.reg, "orders"), 404, MT_ERR_NOT_FOUND);
    names_are(&w, NULL, "");
    want(px_table_create(w.reg, "orders"), 0, NULL);
    want(put_row(&w, "orders", "r1"), 0, NULL);

    /* Made in the accounts behind the registry's back (another proxy):
     * found on first use, listed, deletable. */
    want(mt_account_create(w.old_a, "elsewhere", NULL), 0, NULL);
    want(mt_account_create(w.new_a, "elsewhere", NULL), 0, NULL);
    names_are(&w, NULL, "elsewhere,orders");
    want(put_row(&w, "ELSEWHERE", "r1"), 0, NULL);
    /* Deleted behind its back: the registry's table answers 404
     * TableNotFound and a delete says there is none. */
    want(mt_account_delete(w.old_a, "elsewhere"), 0, NULL);
    want(mt_account_delete(w.new_a, "elsewhere"), 0, NULL);
    want(put_row(&w, "elsewhere", "r2"), 404, MT_ERR_TABLE_NOT_FOUND);
    want(px_table_delete(w.reg, "elsewhere"), 404, MT_ERR_NOT_FOUND);
    assert_false(found(&w, "elsewhere"));
    world_close(&w);
}

/* Tables the accounts held before the proxy started are its tables. */
static void test_start_with_tables(void **state)
{
    (void)state;
    world w;
    world_open(&w, "");
    want(mt_account_create(w.old_a, "onlyold", NULL), 0, NULL);
    want(mt_account_create(w.new_a, "onlynew", NULL), 0, NULL);
    want(mt_account_create(w.old_a, CFG_STATE_TABLE, NULL), 0, NULL);
    world_start(&w);
    names_are(&w, NULL, "onlynew,onlyold");
    assert_true(found(&w, "onlyold"));
    assert_true(found(&w, "OnlyNew"));
    /* The state table stays hidden. */
    assert_false(found(&w, CFG_STATE_TABLE));
    want(px_table_create(w.reg, CFG_STATE_TABLE), 400, "InvalidResourceName");
    want(px_table_delete(w.reg, CFG_STATE_TABLE), 404, NULL);
    names_are(&w, w.old_a, CFG_STATE_TABLE ",onlyold");
    /* A table on one side only is deleted from that side. */
    want(px_table_delete(w.reg, "onlyold"), 0, NULL);
    names_are(&w, w.old_a, CFG_STATE_TABLE);
    world_close(&w);
}

static void test_table_map(void **state)
{
    (void)state;
    world w;
    world_open(&w, "Orders=OrdersV2");
    /* The new account's own "orders" is not the application's. */
    want(mt_account_create(w.new_a, "orders", NULL), 0, NULL);
    world_start(&w);
    names_are(&w, NULL, "");
    want(px_table_create(w.reg, "orders"), 0, NULL);
    names_are(&w, w.old_a, "orders");
    names_are(&w, w.new_a, "OrdersV2,orders");
    names_are(&w, NULL, "orders");
    want(px_table_delete_old(w.reg, "orders", 0), 0, NULL);
    names_are(&w, NULL, "Orders");
    /* Emptied by dropping it: created again under the same name, once;
     * not while the new account lacks the application's table. */
    want(px_table_recreate_old(w.reg, "orders", 0), 0, NULL);
    names_are(&w, w.old_a, "orders");
    want(px_table_recreate_old(w.reg, "orders", 0), 0, NULL);
    want(px_table_recreate_old(w.reg, "orders", 2), 400, NULL);
    want(mt_account_delete(w.new_a, "OrdersV2"), 0, NULL);
    want(px_table_delete_old(w.reg, "orders", 0), 0, NULL);
    want(px_table_recreate_old(w.reg, "orders", 0), 404, MT_ERR_TABLE_NOT_FOUND);
    names_are(&w, w.old_a, "");
    want(mt_account_create(w.new_a, "OrdersV2", NULL), 0, NULL);
    want(px_table_recreate_old(w.reg, "orders", 0), 0, NULL);
    want(px_table_delete_old(w.reg, "orders", 0), 0, NULL);
    names_are(&w, NULL, "Orders");
    /* Migrating back the new account plays old: its table is the mapped one. */
    want(px_table_delete_old(w.reg, "orders", 1), 0, NULL);
    names_are(&w, w.new_a, "orders");
    want(px_table_delete(w.reg, "orders"), 404, NULL);
    world_close(&w);
}

enum { THREADS = 8 };

typedef struct racer {
    world *w;
    int i;
    mt_status st;
} racer;

static void *create_race(void *arg)
{
    racer *r = arg;
    r->st = px_table_create(r->w->reg, r->i % 2 ? "Race" : "race");
    return NULL;
}

/* Half create, half delete, each a few times, the same name. */
static void *churn(void *arg)
{
    racer *r = arg;
    for (int k = 0; k < 20; k++) {
        if ((r->i + k) % 2)
            (void)px_table_create(r->w->reg, "churn");
        else
            (void)px_table_delete(r->w->reg, "churn");
        (void)found(r->w, "churn");
    }
    return NULL;
}

static void run_all(racer *rs, void *(*fn)(void *))
{
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, fn, &rs[i]), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
}

static void test_races(void **state)
{
    (void)state;
    world w;
    world_open(&w, "");
    world_start(&w);
    racer rs[THREADS];
    for (int i = 0; i < THREADS; i++)
        rs[i] = (racer){.w = &w, .i = i};
    run_all(rs, create_race);
    int made = 0;
    for (int i = 0; i < THREADS; i++) {
        if (mt_is_ok(&rs[i].st))
            made++;
        else
            want(rs[i].st, 409, MT_ERR_TABLE_EXISTS);
    }
    assert_int_equal(made, 1);

    /* Whatever the interleaving, the registry ends as the accounts are. */
    run_all(rs, churn);
    char **names = NULL;
    size_t n = 0;
    want(mt_account_list_all(w.old_a, &names, &n), 0, NULL);
    bool in_old = n == 2;
    mt_names_free(names, n);
    want(mt_account_list_all(w.new_a, &names, &n), 0, NULL);
    bool in_new = n == 2;
    mt_names_free(names, n);
    assert_int_equal(in_old, in_new);
    assert_int_equal(found(&w, "churn"), in_old);
    mt_status st = put_row(&w, "churn", "r");
    assert_int_equal(mt_is_ok(&st), in_old);
    world_close(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_start_with_tables),
        cmocka_unit_test(test_table_map),
        cmocka_unit_test(test_races),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

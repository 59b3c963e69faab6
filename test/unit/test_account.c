/*
 * test_account.c -- the memory account: the checks every account passes
 * (ut_account.c; the Azure account runs the same ones against Azurite),
 * and what only threads show: concurrent creates of one name make it once,
 * and many first calls on one table find it once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mt.h"
#include "ut_account.h"

static void test_semantics(void **state)
{
    (void)state;
    mt_account *a = mt_memaccount_new(mt_rt_pthread(), "t");
    assert_non_null(a);
    ut_account_semantics(a);
    mt_account_destroy(a);
}

/* A table opened in any spelling is the one table of that name. */
static void test_any_spelling(void **state)
{
    (void)state;
    mt_account *a = mt_memaccount_new(mt_rt_pthread(), "t");
    assert_non_null(a);
    mt_status st = mt_account_create(a, "MixedCase", NULL);
    assert_true(mt_is_ok(&st));
    mt_table *t1 = mt_account_open(a, "mixedcase", &st);
    mt_table *t2 = mt_account_open(a, "MIXEDCASE", &st);
    assert_non_null(t1);
    assert_non_null(t2);
    mt_entity *e = mt_entity_new("p", "r");
    mt_op op = {.kind = MT_OP_INSERT, .entity = e};
    mt_op_result res;
    st = mt_table_batch(t1, &op, 1, &res);
    assert_true(mt_is_ok(&st));
    mt_entity *got = NULL;
    st = t2->ops->retrieve(t2, "p", "r", &got);
    assert_true(mt_is_ok(&st));
    mt_entity_free(got);
    mt_entity_free(e);
    st = mt_account_delete(a, "MIXEDcase");
    assert_true(mt_is_ok(&st));
    st = t2->ops->retrieve(t2, "p", "r", &got);
    assert_true(mt_table_gone(&st));
    mt_table_destroy(t1);
    mt_table_destroy(t2);
    mt_account_destroy(a);
}

/* A table still open when the account's last name for it goes keeps its
 * rows until it is destroyed, and the account can be destroyed with
 * tables listed in it. */
static void test_lifetimes(void **state)
{
    (void)state;
    mt_account *a = mt_memaccount_new(mt_rt_pthread(), "t");
    assert_non_null(a);
    assert_true(mt_is_ok(&(mt_status){0}));
    mt_status st = mt_account_create(a, "kept", NULL);
    assert_true(mt_is_ok(&st));
    st = mt_account_create(a, "other", NULL);
    assert_true(mt_is_ok(&st));
    mt_table *t = mt_account_open(a, "kept", &st);
    assert_non_null(t);
    mt_entity_list rows = {0};
    st = mt_table_scan(t, NULL, &rows);
    assert_true(mt_is_ok(&st));
    assert_int_equal(rows.n, 0);
    st = mt_account_delete(a, "kept");
    assert_true(mt_is_ok(&st));
    st = mt_table_scan(t, NULL, &rows);
    assert_true(mt_table_gone(&st));
    mt_table_destroy(t);
    mt_account_destroy(a); /* "other" still listed */
}

enum { THREADS = 8 };

typedef struct racer {
    mt_account *a;
    mt_table *t;
    int i;
    bool created;
    mt_status st;
} racer;

static void *create_one(void *arg)
{
    racer *r = arg;
    r->st = mt_account_create(r->a, r->i % 2 ? "Race" : "rACE", &r->created);
    return NULL;
}

static void *insert_one(void *arg)
{
    racer *r = arg;
    char rk[16];
    snprintf(rk, sizeof rk, "r%d", r->i);
    mt_entity *e = mt_entity_new("p", rk);
    mt_op op = {.kind = MT_OP_INSERT, .entity = e};
    mt_op_result res;
    r->st = mt_table_batch(r->t, &op, 1, &res);
    mt_entity_free(e);
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
    mt_account *a = mt_memaccount_new(mt_rt_pthread(), "t");
    assert_non_null(a);
    mt_status st = mt_ok();
    /* Every handle is opened before the table exists, so every thread's
     * first call looks it up at once. */
    mt_table *t = mt_account_open(a, "race", &st);
    assert_non_null(t);
    racer rs[THREADS];
    for (int i = 0; i < THREADS; i++)
        rs[i] = (racer){.a = a, .t = t, .i = i};
    run_all(rs, create_one);
    int made = 0;
    for (int i = 0; i < THREADS; i++) {
        if (rs[i].created) {
            made++;
            assert_true(mt_is_ok(&rs[i].st));
        } else {
            assert_true(mt_table_existed(&rs[i].st));
        }
    }
    assert_int_equal(made, 1);
    run_all(rs, insert_one);
    for (int i = 0; i < THREADS; i++)
        assert_true(mt_is_ok(&rs[i].st));
    mt_entity_list rows = {0};
    st = mt_table_scan(t, NULL, &rows);
    assert_true(mt_is_ok(&st));
    assert_int_equal(rows.n, THREADS);
    mt_entity_list_clear(&rows);
    mt_table_destroy(t);
    mt_account_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_semantics),
        cmocka_unit_test(test_any_spelling),
        cmocka_unit_test(test_lifetimes),
        cmocka_unit_test(test_races),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

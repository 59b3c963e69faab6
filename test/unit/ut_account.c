/*
 * ut_account.c -- the checks every account passes (see ut_account.h).
 */
#include "ut_account.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void want_at(int line, mt_status st, int http, const char *code)
{
    if (st.http != http || (code && strcmp(st.code, code) != 0))
        fail_msg("line %d: got %d %s (%s), want %d %s", line, st.http, st.code, st.message, http,
                 code ? code : "(any code)");
}
#define want(st, http, code) want_at(__LINE__, (st), (http), (code))

/* The account's names, all pages, as one comma-separated string. */
static void names_are(mt_account *a, const char *want_list)
{
    char **names = NULL;
    size_t n = 0;
    want(mt_account_list_all(a, &names, &n), 0, NULL);
    char got[512] = "";
    for (size_t i = 0; i < n; i++) {
        strncat(got, i ? "," : "", sizeof got - strlen(got) - 1);
        strncat(got, names[i], sizeof got - strlen(got) - 1);
    }
    mt_names_free(names, n);
    assert_string_equal(got, want_list);
}

static mt_status insert(mt_table *t, const char *pk, const char *rk)
{
    mt_entity *e = mt_entity_new(pk, rk);
    assert_non_null(e);
    mt_op op = {.kind = MT_OP_INSERT, .entity = e};
    mt_op_result res;
    mt_status st = mt_table_batch(t, &op, 1, &res);
    mt_entity_free(e);
    return st;
}

static mt_status retrieve(mt_table *t, const char *pk, const char *rk)
{
    mt_entity *e = NULL;
    mt_status st = t->ops->retrieve(t, pk, rk, &e);
    mt_entity_free(e);
    return st;
}

static mt_table *open_ok(mt_account *a, const char *name)
{
    mt_status st = mt_ok();
    mt_table *t = mt_account_open(a, name, &st);
    want(st, 0, NULL);
    assert_non_null(t);
    return t;
}

static void check_create_and_list(mt_account *a)
{
    bool created = false;
    want(mt_account_create(a, "Alpha", &created), 0, NULL);
    assert_true(created);
    /* One name whatever the case; the first spelling stays. */
    want(mt_account_create(a, "ALPHA", &created), 409, MT_ERR_TABLE_EXISTS);
    assert_false(created);
    assert_true(mt_table_existed(&(mt_status){.http = 409, .code = MT_ERR_TABLE_EXISTS}));
    want(mt_account_create(a, "beta", NULL), 0, NULL);
    want(mt_account_create(a, "Zeta", NULL), 0, NULL);
    /* Code-point order: capitals first, as the service lists. */
    names_are(a, "Alpha,Zeta,beta");

    char **page = NULL, *next = NULL;
    size_t n = 0;
    want(a->ops->list(a, NULL, 2, &page, &n, &next), 0, NULL);
    assert_int_equal(n, 2);
    assert_string_equal(page[0], "Alpha");
    assert_string_equal(page[1], "Zeta");
    assert_non_null(next);
    mt_names_free(page, n);
    char *from = next;
    want(a->ops->list(a, from, 2, &page, &n, &next), 0, NULL);
    free(from);
    assert_int_equal(n, 1);
    assert_string_equal(page[0], "beta");
    assert_null(next);
    mt_names_free(page, n);
}

static void check_tables_by_name(mt_account *a)
{
    /* Two handles on one table see the same rows. (Azurite, unlike the
     * service, finds a table's rows only under the spelling it was created
     * with, so handles here use that one.) */
    mt_table *t1 = open_ok(a, "Alpha"), *t2 = open_ok(a, "Alpha");
    want(insert(t1, "p", "r"), 0, NULL);
    want(retrieve(t2, "p", "r"), 0, NULL);
    want(insert(t2, "p", "r"), 409, MT_ERR_ENTITY_EXISTS);
    mt_table_destroy(t2);

    /* Opened before it exists: 404 TableNotFound until it is created. */
    mt_table *g = open_ok(a, "Gamma");
    mt_status st = insert(g, "p", "r");
    want(st, 404, MT_ERR_TABLE_NOT_FOUND);
    assert_true(mt_table_gone(&st));
    want(mt_account_create(a, "Gamma", NULL), 0, NULL);
    want(insert(g, "p", "r"), 0, NULL);
    mt_table_destroy(g);

    /* Delete then open: the table and its rows are gone. */
    want(mt_account_delete(a, "alpha"), 0, NULL);
    want(insert(t1, "p", "x"), 404, MT_ERR_TABLE_NOT_FOUND);
    want(retrieve(t1, "p", "r"), 404, MT_ERR_TABLE_NOT_FOUND);
    want(mt_account_delete(a, "Alpha"), 404, NULL);
    names_are(a, "Gamma,Zeta,beta");
    mt_table *t3 = open_ok(a, "Alpha");
    want(retrieve(t3, "p", "r"), 404, MT_ERR_TABLE_NOT_FOUND);
    /* Created again, it starts empty. */
    bool created = false;
    want(mt_account_create(a, "alpha", &created), 0, NULL);
    assert_true(created);
    want(retrieve(t3, "p", "r"), 404, MT_ERR_NOT_FOUND);
    want(insert(t3, "p", "r"), 0, NULL);
    /* A handle opened before the delete finds the new table by its name,
     * as the service's tables are found. */
    want(retrieve(t1, "p", "r"), 0, NULL);
    names_are(a, "Gamma,Zeta,alpha,beta");
    mt_table_destroy(t3);
    mt_table_destroy(t1);
}

static void check_bad_names(mt_account *a)
{
    const char *bad[] = {"1abc", "ab", "has-dash", "Tables", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        want(mt_account_create(a, bad[i], NULL), 400, "InvalidResourceName");
        mt_status st = mt_ok();
        assert_null(mt_account_open(a, bad[i], &st));
        want(st, 400, "InvalidResourceName");
    }
}

void ut_account_semantics(mt_account *a)
{
    names_are(a, "");
    check_create_and_list(a);
    check_tables_by_name(a);
    check_bad_names(a);
    const char *all[] = {"Gamma", "Zeta", "alpha", "beta"};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        want(mt_account_delete(a, all[i]), 0, NULL);
    names_are(a, "");
}

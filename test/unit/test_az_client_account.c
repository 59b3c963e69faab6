/*
 * test_az_client_account.c -- the Azure account (az_client_account)
 * against a real Azurite: the same checks the memory account passes
 * (ut_account.c), so the two behave alike, and a table another client
 * created found by name.
 */
#include "ut_account.h"
#include "ut_az_client.h"

#include <stdlib.h>
#include <string.h>

static void test_semantics(void **state)
{
    (void)state;
    NEED_AZURITE();
    mt_account *a = az_client_account(az.c);
    assert_non_null(a);
    ut_account_semantics(a);
    mt_account_destroy(a);
}

/* A table made outside the account (another proxy) is listed and usable
 * by name; one deleted outside it answers 404 TableNotFound. */
static void test_outside_changes(void **state)
{
    (void)state;
    NEED_AZURITE();
    mt_account *a = az_client_account(az.c);
    assert_non_null(a);
    char name[64];
    mt_table *made = fresh_table(name);
    char **names = NULL;
    size_t n = 0;
    assert_ok(mt_account_list_all(a, &names, &n));
    assert_int_equal(n, 1);
    assert_string_equal(names[0], name);
    mt_names_free(names, n);
    mt_status st = mt_ok();
    mt_table *t = mt_account_open(a, name, &st);
    assert_non_null(t);
    mt_entity *e = ent("p", "r");
    assert_ok(one(made, MT_OP_INSERT, e, NULL, NULL));
    mt_entity *got = NULL;
    assert_ok(t->ops->retrieve(t, "p", "r", &got));
    mt_entity_free(got);
    assert_ok(az_client_table_delete(az.c, name));
    assert_status(one(t, MT_OP_INSERT, e, NULL, NULL), 404, MT_ERR_TABLE_NOT_FOUND);
    assert_status(mt_account_delete(a, name), 404, MT_ERR_NOT_FOUND);
    mt_entity_free(e);
    mt_table_destroy(t);
    mt_table_destroy(made);
    mt_account_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_semantics),
        cmocka_unit_test(test_outside_changes),
    };
    return ut_az_run("azurite: account", tests, sizeof tests / sizeof tests[0]);
}

/*
 * ut_az_client.c -- the helpers and the Azurite fixture of the Azure
 * backend table's tests (see ut_az_client.h).
 *
 * Azurite 3.35 refuses --location together with --inMemoryPersistence, so
 * it runs in a scratch directory (its cwd), removed at the end.
 */
#include "ut_az_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Helpers.                                                                  */

mt_entity *ent(const char *pk, const char *rk)
{
    return mt_entity_new(pk, rk);
}

void set_i32(mt_entity *e, const char *name, int32_t v)
{
    mt_value x = mt_v_i32(v);
    mt_entity_set(e, name, &x);
}

void set_str(mt_entity *e, const char *name, const char *v)
{
    mt_value x = mt_v_str(v);
    mt_entity_set(e, name, &x);
}

mt_status one(mt_table *t, mt_op_kind kind, const mt_entity *e, const char *if_match,
              mt_op_result *res)
{
    mt_op op = {.kind = kind, .entity = e, .if_match = if_match};
    mt_op_result tmp;
    return mt_table_batch(t, &op, 1, res ? res : &tmp);
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

az_connstr connstr_for(int port)
{
    char s[512];
    snprintf(s, sizeof s,
             "DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
             "TableEndpoint=http://127.0.0.1:%d/%s",
             AZ_DEV_ACCOUNT, AZ_DEV_KEY, port, AZ_DEV_ACCOUNT);
    az_connstr cs;
    mt_status st = az_connstr_parse(s, &cs);
    assert_ok(st);
    return cs;
}

/* ------------------------------------------------------------------------ */
/* Azurite.                                                                  */

ut_az_fixture az;

static int group_setup(void **state)
{
    (void)state;
    if (!ut_azurite_start(&az.a)) {
        if (!az.a.skip[0])
            return -1;
        print_message("SKIP: the Azurite cases are skipped: %s\n", az.a.skip);
        return 0;
    }
    az_connstr cs = connstr_for(az.a.port);
    mt_status st;
    az.c = az_client_new(&cs, NULL, &st);
    az_connstr_clear(&cs);
    if (!az.c) {
        print_message("cannot make a client: %s\n", st.message);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    az_client_free(az.c);
    az.c = NULL;
    ut_azurite_stop(&az.a);
    return 0;
}

/* A new, empty table on Azurite. */
mt_table *fresh_table(char name[64])
{
    snprintf(name, 64, "t%dx%ld", ++az.tables, (long)getpid());
    bool created;
    assert_ok(az_client_table_create(az.c, name, &created));
    assert_true(created);
    mt_status st;
    mt_table *t = az_client_table(az.c, name, &st);
    assert_ok(st);
    return t;
}

int ut_az_run(const char *name, const struct CMUnitTest *tests, size_t n)
{
    int failed = _cmocka_run_group_tests(name, tests, n, group_setup, group_teardown);
    if (failed)
        return failed;
    if (az.a.skip[0]) {
        /* Not a skip: the build provides Azurite (test/e2e's packages). */
        fprintf(stderr, "FAIL: the Azurite cases did not run: %s\n", az.a.skip);
        return 1;
    }
    return 0;
}

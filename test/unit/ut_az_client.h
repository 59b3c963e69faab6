/*
 * ut_az_client.h -- what the tests of the Azure backend table share
 * (test_az_client_*.c): entity and status helpers, a connection string for
 * a local port, and the Azurite fixture -- a real Azurite started for one
 * test program and stopped by PID at its end, with one client over it.
 */
#ifndef UT_AZ_CLIENT_H
#define UT_AZ_CLIENT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "az.h"
#include "az_client.h"
#include "ut_azurite.h"

mt_entity *ent(const char *pk, const char *rk);
void set_i32(mt_entity *e, const char *name, int32_t v);
void set_str(mt_entity *e, const char *name, const char *v);
/* One op of kind on e as a batch of one; res may be NULL. */
mt_status one(mt_table *t, mt_op_kind kind, const mt_entity *e, const char *if_match,
              mt_op_result *res);
/* The monotonic clock in seconds. */
double now_s(void);
/* The development account at http://127.0.0.1:port/devstoreaccount1. */
az_connstr connstr_for(int port);

#define assert_ok(st)                                                                              \
    do {                                                                                           \
        mt_status st_ = (st);                                                                      \
        if (!mt_is_ok(&st_))                                                                       \
            fail_msg("%d %s %s (index %d)", st_.http, st_.code, st_.message, st_.index);           \
    } while (0)

#define assert_status(st, want_http, want_code)                                                    \
    do {                                                                                           \
        mt_status st_ = (st);                                                                      \
        if (st_.http != (want_http) || strcmp(st_.code, (want_code)) != 0)                         \
            fail_msg("got %d %s (%s), want %d %s", st_.http, st_.code, st_.message, (want_http),   \
                     (want_code));                                                                 \
    } while (0)

/* The Azurite of this test program and a client over it. */
typedef struct ut_az_fixture {
    ut_azurite a; /* a.skip: why the Azurite cases are skipped; "" when running */
    az_client *c;
    int tables;
} ut_az_fixture;
extern ut_az_fixture az;

#define NEED_AZURITE()                                                                             \
    do {                                                                                           \
        if (az.a.skip[0]) {                                                                        \
            print_message("SKIP: %s\n", az.a.skip);                                                \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* A new, empty table on Azurite; name receives its name. */
mt_table *fresh_table(char name[64]);

/* Runs tests as group name with Azurite started before and stopped after.
 * Azurite not installed is a failure, not a skip: the build installs it
 * (test/e2e's packages) before it runs these tests. */
int ut_az_run(const char *name, const struct CMUnitTest *tests, size_t n);

#endif

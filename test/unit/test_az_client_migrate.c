/*
 * test_az_client_migrate.c -- the MigratingTable over two tables of a real
 * Azurite, with a concurrent writer, through every phase.
 */
#define _GNU_SOURCE /* strcasestr */
#include "ut_az_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* The MigratingTable over two Azurite tables.                               */

#define MIG_PARTS 4
#define MIG_ROWS 25
#define MIG_KEYS 12 /* rows the concurrent writer plays with, in p0 */

typedef struct writer {
    mt_table *mig;
    volatile int stop;
    int value[MIG_KEYS]; /* last written value, -1 = deleted, -2 = untouched */
    long ops, busy;
    mt_status failure;
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    unsigned seed = 12345;
    for (int i = 0; !w->stop || w->ops < 40; i++) {
        int k = (int)(rand_r(&seed) % MIG_KEYS);
        char rk[16];
        snprintf(rk, sizeof rk, "w%02d", k);
        mt_entity *e = ent("p0", rk);
        set_i32(e, "v", i);
        bool del = rand_r(&seed) % 3 == 0;
        mt_op op = del ? (mt_op){.kind = MT_OP_DELETE, .entity = e, .if_match = "*"}
                       : (mt_op){.kind = MT_OP_INSERT_OR_REPLACE, .entity = e};
        mt_op_result res;
        mt_status st = mt_table_batch(w->mig, &op, 1, &res);
        mt_entity_free(e);
        w->ops++;
        if (mt_is_ok(&st))
            w->value[k] = del ? -1 : i;
        else if (st.http == 503)
            w->busy++; /* refused before anything applied; try again */
        else if (!(del && st.http == 404)) {
            w->failure = st;
            return NULL;
        }
    }
    return NULL;
}

static void test_migrate(void **state)
{
    (void)state;
    NEED_AZURITE();
    char oname[64], nname[64];
    mt_table *old_t = fresh_table(oname), *new_t = fresh_table(nname);
    mt_rt *rt = mt_rt_pthread();
    mt_config_service *cfg = mt_config_local_new(rt, MT_PHASE_USE_OLD_HIDE_METADATA);
    mt_table *mig = mt_migrating_new(rt, cfg, old_t, new_t);

    /* Rows written through the protocol in phase 0 (they land in old). */
    for (int p = 0; p < MIG_PARTS; p++) {
        mt_entity *rows[MIG_ROWS];
        mt_op ops[MIG_ROWS];
        mt_op_result res[MIG_ROWS];
        for (int r = 0; r < MIG_ROWS; r++) {
            char pk[8], rk[8];
            snprintf(pk, sizeof pk, "p%d", p);
            snprintf(rk, sizeof rk, "r%02d", r);
            rows[r] = ent(pk, rk);
            set_i32(rows[r], "n", p * 100 + r);
            ops[r] = (mt_op){.kind = MT_OP_INSERT, .entity = rows[r]};
        }
        assert_ok(mt_table_batch(mig, ops, MIG_ROWS, res));
        for (int r = 0; r < MIG_ROWS; r++)
            mt_entity_free(rows[r]);
    }
    mt_entity_list seen = {0};
    assert_ok(mt_table_scan(old_t, NULL, &seen));
    assert_int_equal(seen.n, MIG_PARTS * MIG_ROWS);
    mt_entity_list_clear(&seen);

    /* The migration runs while a client keeps writing through the
     * protocol. */
    writer w = {.mig = mig};
    for (int k = 0; k < MIG_KEYS; k++)
        w.value[k] = -2;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
    mt_migrator_stats stats = {0};
    mt_status st = mt_migrate(rt, cfg, old_t, new_t, &stats);
    w.stop = 1;
    pthread_join(th, NULL);
    assert_ok(st);
    assert_ok(w.failure);
    print_message("migrated: %lld rows copied, %lld cleaned, %lld partitions; writer did %ld "
                  "ops (%ld busy)\n",
                  (long long)stats.rows_copied, (long long)stats.rows_cleaned,
                  (long long)stats.partitions_switched, w.ops, w.busy);
    assert_true(stats.rows_copied > 0);

    /* Old is empty; new holds exactly the expected rows, clean. */
    assert_ok(mt_table_scan(old_t, NULL, &seen));
    assert_int_equal(seen.n, 0);
    mt_entity_list rows = {0};
    assert_ok(mt_table_scan(new_t, NULL, &rows));
    size_t live = 0;
    for (int k = 0; k < MIG_KEYS; k++)
        live += w.value[k] >= 0;
    assert_int_equal(rows.n, MIG_PARTS * MIG_ROWS + live);
    for (size_t i = 0; i < rows.n; i++) {
        const mt_entity *e = rows.v[i];
        for (size_t j = 0; j < e->nprops; j++)
            if (strncmp(e->props[j].name, MT_RESERVED_PREFIX, strlen(MT_RESERVED_PREFIX)) == 0)
                fail_msg("%s/%s keeps %s", e->pk, e->rk, e->props[j].name);
        assert_int_equal(e->nprops, 1);
        if (e->rk[0] == 'w') {
            int k = atoi(e->rk + 1);
            assert_int_equal(mt_entity_get(e, "v")->u.i32, w.value[k]);
        } else {
            int p = e->pk[1] - '0', r = atoi(e->rk + 1);
            assert_int_equal(mt_entity_get(e, "n")->u.i32, p * 100 + r);
        }
    }
    /* The protocol's own view in the last phase is the same. */
    mt_entity_list via = {0};
    assert_ok(mt_table_scan(mig, NULL, &via));
    assert_int_equal(via.n, rows.n);
    for (size_t i = 0; i < via.n; i++)
        assert_true(mt_entity_same_content(via.v[i], rows.v[i]));
    mt_entity_list_clear(&via);
    assert_ok(mig->ops->query_atomic(mig, "p0", NULL, &via));
    assert_int_equal(via.n, MIG_ROWS + live);
    mt_entity_list_clear(&via);
    mt_entity_list_clear(&rows);

    mt_table_destroy(mig);
    cfg->ops->destroy(cfg);
    mt_table_destroy(old_t);
    mt_table_destroy(new_t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate),
    };
    return ut_az_run("azurite: migration", tests, sizeof tests / sizeof tests[0]);
}

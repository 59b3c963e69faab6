/*
 * test_px_pagecache.c -- the kept answers of one-partition queries
 * (px_pagecache.c) over two memory accounts: after every kind of write
 * (insert, replace, merge, delete, a batch, a failed write, a write to
 * another partition, the protocol's writes in every phase and the
 * migrator's copy and cleanup) and every phase push, the next answer is
 * byte for byte the one the proxy computes anew, in every form the cache
 * keeps; a deleted table answers 404, not what was kept; queries of other
 * forms ($select, a continuation, more than the pin) are never served
 * kept; and with writers and readers at once no reader ever gets an
 * answer older than a write that had completed when it asked.
 *
 * "Computed anew" is the same query with the pin written twice
 * (PartitionKey eq 'p' and PartitionKey eq 'p'): the same partition read
 * and the same bytes, by a request the cache never keeps.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "px.h"

#define TABLE "pages"
#define PIN "$filter=PartitionKey%20eq%20'p'"
#define PIN_TWICE "$filter=PartitionKey%20eq%20'p'%20and%20PartitionKey%20eq%20'p'"

typedef struct world {
    mt_rt *rt;
    mt_config_service *cfg;
    mt_account *old_a, *new_a;
    px_app app;
} world;

static void want(mt_status st, int http, const char *code)
{
    if (st.http != http || (code && strcmp(st.code, code) != 0))
        fail_msg("got %d %s (%s), want %d %s", st.http, st.code, st.message, http,
                 code ? code : "(any)");
}

static void world_open(world *w)
{
    memset(w, 0, sizeof *w);
    w->rt = mt_rt_pthread();
    w->cfg = mt_config_local_new(w->rt, MT_PHASE_USE_OLD_HIDE_METADATA);
    w->old_a = mt_memaccount_new(w->rt, "old");
    w->new_a = mt_memaccount_new(w->rt, "new");
    assert_non_null(w->cfg);
    assert_non_null(w->old_a);
    assert_non_null(w->new_a);
    mt_status st = mt_ok();
    w->app.reg =
        px_registry_new(w->rt, w->cfg, (px_backend){.account = w->old_a, .label = "old"},
                        (px_backend){.account = w->new_a, .label = "new"}, NULL, NULL, &st);
    want(st, 0, NULL);
    assert_non_null(w->app.reg);
    snprintf(w->app.settings.account, sizeof w->app.settings.account, "devstoreaccount1");
    w->app.rt = w->rt;
    w->app.cfg = w->cfg;
    want(px_table_create(w->app.reg, TABLE), 0, NULL);
}

static void world_close(world *w)
{
    px_registry_free(w->app.reg);
    mt_account_destroy(w->old_a);
    mt_account_destroy(w->new_a);
    w->cfg->ops->destroy(w->cfg);
}

/* One write through the proxy's table (as a request's), its status. */
static mt_status write_ops(world *w, mt_op *ops, size_t n)
{
    mt_status st = mt_ok();
    px_table *t = px_table_get(w->app.reg, TABLE, &st);
    if (!t)
        return st;
    mt_op_result res[MT_BATCH_MAX];
    st = mt_table_batch(px_table_view(t), ops, n, res);
    px_table_release(w->app.reg, t);
    return st;
}

static mt_entity *row(const char *pk, const char *rk, const char *name, int32_t v)
{
    mt_entity *e = mt_entity_new(pk, rk);
    mt_value x = mt_v_i32(v);
    assert_non_null(e);
    assert_true(mt_entity_set(e, name, &x));
    return e;
}

/* One op on one row, freed after. */
static mt_status write1(world *w, mt_op_kind kind, const char *pk, const char *rk, const char *name,
                        int32_t v)
{
    mt_entity *e = row(pk, rk, name, v);
    mt_op op = {.kind = kind, .entity = e};
    if (kind == MT_OP_DELETE || kind == MT_OP_REPLACE || kind == MT_OP_MERGE)
        op.if_match = "*";
    mt_status st = write_ops(w, &op, 1);
    mt_entity_free(e);
    return st;
}

/* The answer to GET /pages()?query in form md under base, as one string:
 * status, continuation headers, body. */
static char *answer(world *w, const char *query, az_metadata md, const char *base)
{
    px_req q = {.app = &w->app,
                .method = "GET",
                .path = "/" TABLE "()",
                .query = query,
                .res = {.kind = AZ_RES_ENTITIES, .table = TABLE},
                .fmt = AZ_FMT_JSON,
                .md = md,
                .grant = {.shared_key = true}};
    snprintf(q.base_url, sizeof q.base_url, "%s", base);
    snprintf(q.request_id, sizeof q.request_id, "test");
    px_resp r = {0};
    px_handle_entities(&q, &r);
    assert_false(r.oom);
    size_t cap = r.len + 1024;
    char *out = malloc(cap);
    assert_non_null(out);
    int k = snprintf(out, cap, "%d\n", r.status);
    for (size_t i = 0; i < r.nheaders; i++)
        if (strncmp(r.headers[i].name, "x-ms-continuation", 17) == 0)
            k += snprintf(out + k, cap - (size_t)k, "%s: %s\n", r.headers[i].name,
                          r.headers[i].value);
    memcpy(out + k, r.body ? r.body : "", r.len);
    out[(size_t)k + r.len] = '\0';
    px_resp_clear(&r);
    return out;
}

#define BASE "http://127.0.0.1:10002/devstoreaccount1"

/* After whatever changed: the next answer is a new read (no kept answer
 * may serve it when fresh_read), equal to the one computed anew; the one
 * after it is served from the cache and equal too. In each form. */
static void check_forms(world *w, bool fresh_read)
{
    static const struct {
        const char *pin, *twice;
        az_metadata md;
        const char *base;
    } forms[] = {
        {PIN, PIN_TWICE, AZ_META_MINIMAL, BASE},
        {PIN, PIN_TWICE, AZ_META_NONE, BASE},
        {PIN, PIN_TWICE, AZ_META_FULL, BASE},
        {PIN, PIN_TWICE, AZ_META_MINIMAL, "http://localhost:8080/devstoreaccount1"},
        {PIN "&$top=2", PIN_TWICE "&$top=2", AZ_META_MINIMAL, BASE},
        {PIN "&$top=0", PIN_TWICE "&$top=0", AZ_META_NONE, BASE},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char *fresh = answer(w, forms[i].twice, forms[i].md, forms[i].base);
        uint64_t h0 = px_pagecache_hits();
        char *first = answer(w, forms[i].pin, forms[i].md, forms[i].base);
        uint64_t h1 = px_pagecache_hits();
        char *second = answer(w, forms[i].pin, forms[i].md, forms[i].base);
        uint64_t h2 = px_pagecache_hits();
        assert_string_equal(first, fresh);
        assert_string_equal(second, fresh);
        if (fresh_read)
            assert_int_equal(h1, h0);
        assert_int_equal(h2, h1 + 1); /* kept by the first or before */
        free(fresh);
        free(first);
        free(second);
    }
}

static void check(world *w)
{
    check_forms(w, true);
}

static void push(world *w, mt_phase phase)
{
    want(w->cfg->ops->push(w->cfg, phase), 0, NULL);
}

static void test_every_write(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    for (int i = 0; i < 5; i++) {
        char rk[8];
        snprintf(rk, sizeof rk, "r%d", i);
        want(write1(&w, MT_OP_INSERT, "p", rk, "A", i), 0, NULL);
    }
    want(write1(&w, MT_OP_INSERT, "q", "r0", "A", 0), 0, NULL);
    check(&w);
    check_forms(&w, false); /* nothing changed: every answer kept */

    want(write1(&w, MT_OP_INSERT, "p", "r5", "A", 5), 0, NULL);
    check(&w);
    want(write1(&w, MT_OP_INSERT_OR_REPLACE, "p", "r1", "B", 11), 0, NULL);
    check(&w);
    want(write1(&w, MT_OP_REPLACE, "p", "r2", "B", 12), 0, NULL);
    check(&w);
    want(write1(&w, MT_OP_INSERT_OR_MERGE, "p", "r3", "C", 13), 0, NULL);
    check(&w);
    want(write1(&w, MT_OP_MERGE, "p", "r3", "D", 14), 0, NULL);
    check(&w);
    want(write1(&w, MT_OP_DELETE, "p", "r4", "A", 0), 0, NULL);
    check(&w);

    /* A batch: an insert, a replace and a delete at once. */
    mt_entity *b[3] = {row("p", "r6", "A", 6), row("p", "r0", "E", 20), row("p", "r5", "A", 0)};
    mt_op ops[3] = {{.kind = MT_OP_INSERT, .entity = b[0]},
                    {.kind = MT_OP_INSERT_OR_REPLACE, .entity = b[1]},
                    {.kind = MT_OP_DELETE, .entity = b[2], .if_match = "*"}};
    want(write_ops(&w, ops, 3), 0, NULL);
    for (int i = 0; i < 3; i++)
        mt_entity_free(b[i]);
    check(&w);

    /* A failed write and a write to another partition change nothing here,
     * but the answer must still be the one computed anew. */
    want(write1(&w, MT_OP_INSERT, "p", "r1", "A", 1), 409, MT_ERR_ENTITY_EXISTS);
    check_forms(&w, false);
    want(write1(&w, MT_OP_INSERT, "q", "r1", "A", 1), 0, NULL);
    check_forms(&w, false);

    /* The migration: each push, the protocol's writes in each phase (a
     * write in prefer_new switches the partition: old's meta row, new's
     * rows), then the migrator's copy, pushes and cleanup. */
    push(&w, MT_PHASE_PREFER_OLD);
    check(&w);
    want(write1(&w, MT_OP_INSERT_OR_MERGE, "p", "r7", "A", 7), 0, NULL);
    check(&w);
    push(&w, MT_PHASE_PREFER_NEW);
    check(&w);
    want(write1(&w, MT_OP_INSERT_OR_REPLACE, "p", "r1", "F", 31), 0, NULL);
    check(&w);
    want(write1(&w, MT_OP_DELETE, "p", "r2", "A", 0), 0, NULL);
    check(&w);
    mt_status st = mt_ok();
    mt_table *o = mt_account_open(w.old_a, TABLE, &st), *n = mt_account_open(w.new_a, TABLE, &st);
    assert_non_null(o);
    assert_non_null(n);
    mt_migrator_stats stats = {0};
    want(mt_migrate(w.rt, w.cfg, o, n, &stats), 0, NULL);
    mt_table_destroy(o);
    mt_table_destroy(n);
    check(&w);
    want(write1(&w, MT_OP_INSERT, "p", "r8", "A", 8), 0, NULL);
    check(&w);

    /* A deleted table is not found, whatever was kept. */
    want(px_table_delete(w.app.reg, TABLE), 0, NULL);
    char *gone = answer(&w, PIN, AZ_META_NONE, BASE);
    assert_memory_equal(gone, "404\n", 4);
    free(gone);
    world_close(&w);
}

/* Queries whose answers are never kept: each is answered anew, twice. */
static void test_not_kept(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    for (int i = 0; i < 3; i++) {
        char rk[8];
        snprintf(rk, sizeof rk, "r%d", i);
        want(write1(&w, MT_OP_INSERT, "p", rk, "A", i), 0, NULL);
    }
    /* A later page's query: the first page's continuation, as sent. */
    char *first = answer(&w, PIN_TWICE "&$top=1", AZ_META_NONE, BASE);
    char npk[64] = "", nrk[64] = "", later[256];
    const char *h = strstr(first, "NextPartitionKey: ");
    assert_non_null(h);
    sscanf(h, "NextPartitionKey: %63s", npk);
    h = strstr(first, "NextRowKey: ");
    assert_non_null(h);
    sscanf(h, "NextRowKey: %63s", nrk);
    free(first);
    snprintf(later, sizeof later, "%s&NextPartitionKey=%s&NextRowKey=%s", PIN, npk, nrk);
    const char *const queries[] = {
        PIN "&$select=A",
        later,
        "$filter=PartitionKey%20eq%20'p'%20and%20A%20ge%201",
        "$filter=RowKey%20eq%20'r1'",
        "$top=2",
    };
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        uint64_t h0 = px_pagecache_hits();
        char *a = answer(&w, queries[i], AZ_META_MINIMAL, BASE);
        char *b = answer(&w, queries[i], AZ_META_MINIMAL, BASE);
        assert_int_equal(px_pagecache_hits(), h0);
        assert_memory_equal(a, "200\n", 4);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
    world_close(&w);
}

/* ------------------------------------------------------------------------ */
/* Writers and readers at once.                                              */

#define ROWS 20
#define ROUNDS 300
#define READERS 3

typedef struct race {
    world *w;
    int committed; /* the last round whose batch returned; atomic */
    bool done;     /* atomic */
    int bad;       /* answers older than asked for, or torn; atomic */
    int answers;   /* atomic */
    int changes;   /* answers showing another round than the reader's last */
} race;

/* Round n: every row of p gets V = n in one batch. */
static void *writer(void *arg)
{
    race *r = arg;
    for (int n = 1; n <= ROUNDS; n++) {
        mt_entity *e[ROWS];
        mt_op ops[ROWS];
        for (int i = 0; i < ROWS; i++) {
            char rk[8];
            snprintf(rk, sizeof rk, "r%02d", i);
            e[i] = row("p", rk, "V", n);
            ops[i] = (mt_op){.kind = MT_OP_INSERT_OR_REPLACE, .entity = e[i]};
        }
        mt_status st = write_ops(r->w, ops, ROWS);
        for (int i = 0; i < ROWS; i++)
            mt_entity_free(e[i]);
        if (!mt_is_ok(&st))
            __atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&r->committed, n, __ATOMIC_RELEASE);
        /* Some answers in each round, so that readers meet every state. */
        int seen = __atomic_load_n(&r->answers, __ATOMIC_ACQUIRE);
        while (__atomic_load_n(&r->answers, __ATOMIC_ACQUIRE) < seen + READERS)
            sched_yield();
    }
    __atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
    return NULL;
}

/* The round an answer shows: every row's V alike (0: no rows yet), else
 * -1. */
static int round_of(const char *a)
{
    int seen = -1, count = 0;
    for (const char *p = strstr(a, "\"V\":"); p; p = strstr(p + 4, "\"V\":")) {
        int v = atoi(p + 4);
        if (seen >= 0 && v != seen)
            return -1;
        seen = v;
        count++;
    }
    if (count == 0 && strncmp(a, "200\n", 4) == 0)
        return 0;
    return count == ROWS ? seen : -1;
}

static void *reader(void *arg)
{
    race *r = arg;
    int last = -2;
    while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
        int before = __atomic_load_n(&r->committed, __ATOMIC_ACQUIRE);
        char *a = answer(r->w, PIN, AZ_META_NONE, BASE);
        int got = round_of(a);
        if (got < before)
            __atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
        if (got != last)
            __atomic_add_fetch(&r->changes, 1, __ATOMIC_RELAXED);
        last = got;
        __atomic_add_fetch(&r->answers, 1, __ATOMIC_RELAXED);
        free(a);
    }
    return NULL;
}

static void test_writers_and_readers(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    race r = {.w = &w};
    uint64_t h0 = px_pagecache_hits();
    pthread_t wt, rt[READERS];
    pthread_create(&wt, NULL, writer, &r);
    for (int i = 0; i < READERS; i++)
        pthread_create(&rt[i], NULL, reader, &r);
    pthread_join(wt, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(rt[i], NULL);
    assert_int_equal(r.bad, 0);
    assert_true(r.answers > 0);
    if (getenv("PAGECACHE_VERBOSE"))
        fprintf(stderr, "answers %d, of them kept %llu, rounds seen changing %d times\n", r.answers,
                (unsigned long long)(px_pagecache_hits() - h0), r.changes);
    char *last = answer(&w, PIN, AZ_META_NONE, BASE);
    char *fresh = answer(&w, PIN_TWICE, AZ_META_NONE, BASE);
    assert_int_equal(round_of(last), ROUNDS);
    assert_string_equal(last, fresh);
    free(last);
    free(fresh);
    world_close(&w);
}

int main(void)
{
    px_log_set_level("error");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_write),
        cmocka_unit_test(test_not_kept),
        cmocka_unit_test(test_writers_and_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

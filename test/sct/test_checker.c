/*
 * test_checker.c -- the linearizability checker against hand-built and
 * generated histories.
 *
 * The hand-built cases pin one rule each: what a plain table allows, what
 * the migration's spurious ETag changes add, and nothing more. The
 * generated ones run random operations against a small reference table kept
 * here (so the test does not trust the checker's own reference), give each
 * record a random interval around its sequential point, and demand OK; then
 * they change one outcome in a way no order can explain and demand the
 * right violation. Intervals are logical times: invoke < respond, all
 * distinct.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checker.h"

/* ------------------------------------------------------------------------ */
/* Building records by hand.                                                 */

static mt_entity *ent(const char *pk, const char *rk, int v)
{
    mt_entity *e = mt_entity_new(pk, rk);
    if (v >= 0) {
        mt_value x = mt_v_i32(v);
        mt_entity_set(e, "v", &x);
    }
    return e;
}

static sct_hop *rec(sct_history *h, sct_hkind kind, int actor, uint64_t inv, uint64_t resp)
{
    sct_hop *op = sct_history_add(h, kind, actor);
    assert_non_null(op);
    op->invoke = inv;
    op->respond = resp;
    return op;
}

static void set_fail(sct_hop *op, int http, int index)
{
    op->status.http = http;
    op->status.index = index;
    snprintf(op->status.code, sizeof(op->status.code), "%s",
             http == 409   ? MT_ERR_ENTITY_EXISTS
             : http == 404 ? MT_ERR_NOT_FOUND
             : http == 412 ? MT_ERR_CONDITION
                           : MT_ERR_SERVER_BUSY);
}

static sct_hop *batch(sct_history *h, int actor, uint64_t inv, uint64_t resp, size_t n)
{
    sct_hop *b = rec(h, SCT_H_BATCH, actor, inv, resp);
    b->n = n;
    b->ops = calloc(n, sizeof(*b->ops));
    b->results = calloc(n, sizeof(*b->results));
    return b;
}

/* Op i of batch b; etag is the recorded new ETag (NULL: none). */
static void bop(sct_hop *b, size_t i, mt_op_kind k, const char *pk, const char *rk, int v,
                const char *ifm, const char *etag)
{
    b->ops[i].kind = k;
    b->ops[i].entity = ent(pk, rk, v);
    b->ops[i].if_match = ifm ? strdup(ifm) : NULL;
    b->results[i].http = k == MT_OP_INSERT ? 201 : 204;
    snprintf(b->results[i].etag, sizeof(b->results[i].etag), "%s", etag ? etag : "");
}

/* A one-op batch on partition "p"; http != 0 records that failure. */
static sct_hop *write1(sct_history *h, int actor, uint64_t inv, uint64_t resp, mt_op_kind k,
                       const char *rk, int v, const char *ifm, const char *etag, int http)
{
    sct_hop *b = batch(h, actor, inv, resp, 1);
    bop(b, 0, k, "p", rk, v, ifm, etag);
    if (http)
        set_fail(b, http, 0);
    return b;
}

static sct_hop *query(sct_history *h, int actor, uint64_t inv, uint64_t resp, mt_filter *f)
{
    sct_hop *q = rec(h, SCT_H_QUERY, actor, inv, resp);
    q->pk = strdup("p");
    q->filter = f;
    return q;
}

static void qrow(sct_hop *q, const char *rk, int v, const char *etag)
{
    mt_entity *e = ent("p", rk, v);
    mt_entity_set_etag(e, etag);
    mt_entity_list_push(&q->rows, e);
}

/* v < 0: a 404. */
static sct_hop *retrieve(sct_history *h, int actor, uint64_t inv, uint64_t resp, const char *rk,
                         int v, const char *etag)
{
    sct_hop *r = rec(h, SCT_H_RETRIEVE, actor, inv, resp);
    r->pk = strdup("p");
    r->rk = strdup(rk);
    if (v < 0) {
        set_fail(r, 404, -1);
        return r;
    }
    r->row = ent("p", rk, v);
    mt_entity_set_etag(r->row, etag);
    return r;
}

static sct_hop *stream_row(sct_history *h, uint64_t inv, uint64_t resp, const char *rk, int v)
{
    sct_hop *s = rec(h, SCT_H_STREAM_ROW, 9, inv, resp);
    s->row = ent("p", rk, v);
    mt_entity_set_etag(s->row, "W/\"stream\"");
    return s;
}

static sct_hop *stream_absent(sct_history *h, uint64_t inv, uint64_t resp, const char *rk)
{
    sct_hop *s = rec(h, SCT_H_STREAM_ABSENT, 9, inv, resp);
    s->pk = strdup("p");
    s->rk = strdup(rk);
    return s;
}

static mt_filter *v_ge(int k)
{
    mt_value x = mt_v_i32(k);
    return mt_filter_cmp("v", MT_GE, &x);
}

/* Checks h, expects `want`, prints the explanation of a violation, frees h. */
static void expect(sct_history *h, sct_check_result want)
{
    char why[1024];
    sct_check_result got = sct_check(h, why, sizeof(why));
    if (got != SCT_CHECK_OK)
        printf("    [%s] %s\n", sct_check_result_name(got), why);
    if (got != want)
        printf("    expected %s, got %s\n", sct_check_result_name(want),
               sct_check_result_name(got));
    assert_int_equal(got, want);
    if (want != SCT_CHECK_OK)
        assert_true(strlen(why) > 0);
    sct_history_clear(h);
}

#define E1 "W/\"1\""
#define E2 "W/\"2\""
#define E3 "W/\"3\""
#define E4 "W/\"4\""
#define FRESH "W/\"fresh\""

/* ------------------------------------------------------------------------ */
/* Plain-table behaviour.                                                    */

static void test_sequential_ok(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    retrieve(&h, 2, 3, 4, "a", 1, E1);
    write1(&h, 1, 5, 6, MT_OP_REPLACE, "a", 2, E1, E2, 0);
    sct_hop *q = query(&h, 2, 7, 8, NULL);
    qrow(q, "a", 2, E2);
    write1(&h, 1, 9, 10, MT_OP_INSERT, "a", 5, NULL, NULL, 409);
    write1(&h, 1, 11, 12, MT_OP_REPLACE, "zz", 5, "*", NULL, 404);
    write1(&h, 1, 13, 14, MT_OP_DELETE, "a", -1, E1, NULL, 412);
    write1(&h, 1, 15, 16, MT_OP_DELETE, "a", -1, E2, NULL, 0);
    retrieve(&h, 2, 17, 18, "a", -1, NULL);
    write1(&h, 1, 19, 20, MT_OP_DELETE_IF_EXISTS, "a", -1, NULL, NULL, 0);
    sct_hop *b = batch(&h, 1, 21, 22, 2);
    bop(b, 0, MT_OP_INSERT_OR_REPLACE, "p", "a", 3, NULL, E3);
    bop(b, 1, MT_OP_INSERT_OR_MERGE, "p", "b", 0, NULL, E4);
    q = query(&h, 2, 23, 24, v_ge(1));
    qrow(q, "a", 3, E3);
    q = query(&h, 2, 25, 26, NULL);
    qrow(q, "a", 3, E3);
    qrow(q, "b", 0, E4);
    expect(&h, SCT_CHECK_OK);
}

static void test_merge_overlays(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    sct_hop *m = write1(&h, 1, 3, 4, MT_OP_MERGE, "a", -1, "*", E2, 0);
    mt_value w = mt_v_str("x");
    mt_entity_set(m->ops[0].entity, "w", &w);
    sct_hop *q = query(&h, 2, 5, 6, NULL);
    qrow(q, "a", 1, E2);
    mt_entity_set(q->rows.v[0], "w", &w);
    expect(&h, SCT_CHECK_OK);

    /* The same, but the read shows the merge as a replace. */
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    m = write1(&h, 1, 3, 4, MT_OP_MERGE, "a", -1, "*", E2, 0);
    mt_entity_set(m->ops[0].entity, "w", &w);
    q = query(&h, 2, 5, 6, NULL);
    qrow(q, "a", -1, E2);
    mt_entity_set(q->rows.v[0], "w", &w);
    expect(&h, SCT_CHECK_LINEARIZABILITY);
}

static void test_concurrent_inserts_both_succeed(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 4, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    write1(&h, 2, 2, 3, MT_OP_INSERT, "a", 2, NULL, E2, 0);
    expect(&h, SCT_CHECK_LINEARIZABILITY);

    /* One of them losing with 409 is fine either way round. */
    write1(&h, 1, 1, 4, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    write1(&h, 2, 2, 3, MT_OP_INSERT, "a", 2, NULL, NULL, 409);
    expect(&h, SCT_CHECK_OK);
}

static void test_read_misses_completed_write(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    retrieve(&h, 2, 3, 4, "a", -1, NULL);
    expect(&h, SCT_CHECK_LINEARIZABILITY);

    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    query(&h, 2, 3, 4, NULL);
    expect(&h, SCT_CHECK_LINEARIZABILITY);
}

static void test_concurrent_read_sees_either(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 6, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    retrieve(&h, 2, 2, 3, "a", -1, NULL);
    retrieve(&h, 3, 4, 5, "a", 1, E1);
    expect(&h, SCT_CHECK_OK);

    /* But not new, then old again from a later read. */
    write1(&h, 1, 1, 10, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    retrieve(&h, 2, 2, 3, "a", 1, E1);
    retrieve(&h, 3, 4, 5, "a", -1, NULL);
    expect(&h, SCT_CHECK_LINEARIZABILITY);
}

static void test_batch_atomicity(void **state)
{
    (void)state;
    sct_history h = {0};
    sct_hop *b = batch(&h, 1, 1, 10, 2);
    bop(b, 0, MT_OP_INSERT, "p", "a", 1, NULL, E1);
    bop(b, 1, MT_OP_INSERT, "p", "b", 2, NULL, E2);
    sct_hop *q = query(&h, 2, 2, 9, NULL);
    qrow(q, "a", 1, E1);
    expect(&h, SCT_CHECK_LINEARIZABILITY);

    b = batch(&h, 1, 1, 10, 2);
    bop(b, 0, MT_OP_INSERT, "p", "a", 1, NULL, E1);
    bop(b, 1, MT_OP_INSERT, "p", "b", 2, NULL, E2);
    q = query(&h, 2, 2, 9, NULL);
    qrow(q, "a", 1, E1);
    qrow(q, "b", 2, E2);
    expect(&h, SCT_CHECK_OK);
}

static void test_failing_index(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 2, MT_OP_INSERT, "b", 1, NULL, E1, 0);
    sct_hop *b = batch(&h, 1, 3, 4, 2);
    bop(b, 0, MT_OP_INSERT, "p", "a", 1, NULL, NULL);
    bop(b, 1, MT_OP_INSERT, "p", "b", 2, NULL, NULL);
    set_fail(b, 409, 0);
    expect(&h, SCT_CHECK_LINEARIZABILITY);

    write1(&h, 1, 1, 2, MT_OP_INSERT, "b", 1, NULL, E1, 0);
    b = batch(&h, 1, 3, 4, 2);
    bop(b, 0, MT_OP_INSERT, "p", "a", 1, NULL, NULL);
    bop(b, 1, MT_OP_INSERT, "p", "b", 2, NULL, NULL);
    set_fail(b, 409, 1);
    retrieve(&h, 2, 5, 6, "a", -1, NULL); /* nothing of it applied */
    expect(&h, SCT_CHECK_OK);

    /* The right index but the wrong status. */
    write1(&h, 1, 1, 2, MT_OP_INSERT, "b", 1, NULL, E1, 0);
    write1(&h, 1, 3, 4, MT_OP_INSERT, "b", 2, NULL, NULL, 404);
    expect(&h, SCT_CHECK_LINEARIZABILITY);
}

static void test_stale_etag_success(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    write1(&h, 1, 3, 4, MT_OP_REPLACE, "a", 2, E1, E2, 0);
    write1(&h, 2, 5, 6, MT_OP_REPLACE, "a", 3, E1, E3, 0);
    expect(&h, SCT_CHECK_LINEARIZABILITY);
}

static void test_spurious_412(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    write1(&h, 1, 3, 4, MT_OP_REPLACE, "a", 2, E1, NULL, 412);
    retrieve(&h, 2, 5, 6, "a", 1, FRESH);
    expect(&h, SCT_CHECK_OK);

    /* After it, the old ETag cannot win again. */
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    write1(&h, 1, 3, 4, MT_OP_REPLACE, "a", 2, E1, NULL, 412);
    write1(&h, 1, 5, 6, MT_OP_REPLACE, "a", 2, E1, E2, 0);
    expect(&h, SCT_CHECK_LINEARIZABILITY);

    /* Nor does a 412 on a row that is gone become acceptable. */
    write1(&h, 1, 1, 2, MT_OP_REPLACE, "a", 2, E1, NULL, 412);
    expect(&h, SCT_CHECK_LINEARIZABILITY);
}

static void test_fresh_etag_then_write(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    sct_hop *q = query(&h, 2, 3, 4, NULL);
    qrow(q, "a", 1, FRESH);
    write1(&h, 2, 5, 6, MT_OP_MERGE, "a", 2, FRESH, E2, 0);
    retrieve(&h, 1, 7, 8, "a", 2, E2);
    expect(&h, SCT_CHECK_OK);

    /* The fresh ETag made the old one stale. */
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    q = query(&h, 2, 3, 4, NULL);
    qrow(q, "a", 1, FRESH);
    write1(&h, 1, 5, 6, MT_OP_MERGE, "a", 2, E1, E2, 0);
    expect(&h, SCT_CHECK_LINEARIZABILITY);
}

static void test_old_etag_observed(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    write1(&h, 1, 3, 4, MT_OP_REPLACE, "a", 1, "*", E2, 0);
    sct_hop *q = query(&h, 2, 5, 6, NULL);
    qrow(q, "a", 1, E1);
    expect(&h, SCT_CHECK_LINEARIZABILITY);

    /* An ETag another row's write returned is no fresher. */
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    write1(&h, 1, 3, 4, MT_OP_INSERT, "b", 1, NULL, E2, 0);
    retrieve(&h, 2, 5, 6, "a", 1, E2);
    expect(&h, SCT_CHECK_LINEARIZABILITY);
}

static void test_success_without_etag(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 2, MT_OP_INSERT_OR_REPLACE, "a", 1, NULL, "", 0);
    expect(&h, SCT_CHECK_LINEARIZABILITY);

    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    write1(&h, 1, 3, 4, MT_OP_REPLACE, "a", 2, "*", E1, 0);
    expect(&h, SCT_CHECK_LINEARIZABILITY);
}

static void test_server_busy(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, NULL, 503);
    sct_hop *q = query(&h, 2, 3, 4, NULL);
    set_fail(q, 503, -1);
    retrieve(&h, 2, 5, 6, "a", -1, NULL);
    expect(&h, SCT_CHECK_OK);

    q = query(&h, 2, 3, 4, NULL);
    set_fail(q, 500, -1);
    expect(&h, SCT_CHECK_LINEARIZABILITY);
}

/* A 503 is a refusal that changed nothing (a proxy without a lease is
 * stopped by its guard before the call is sent; every protocol write has
 * its client-visible effect in its last backend call): the checker must not
 * let a 503 write explain what later reads show, in any order. */
static void test_server_busy_changed_nothing(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 4, MT_OP_INSERT, "a", 1, NULL, NULL, 503);
    retrieve(&h, 2, 2, 3, "a", 1, FRESH); /* even while the 503 is in flight */
    expect(&h, SCT_CHECK_LINEARIZABILITY);

    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    write1(&h, 1, 3, 4, MT_OP_REPLACE, "a", 2, E1, NULL, 503);
    retrieve(&h, 2, 5, 6, "a", 2, FRESH);
    expect(&h, SCT_CHECK_LINEARIZABILITY);

    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    write1(&h, 1, 3, 4, MT_OP_DELETE, "a", -1, "*", NULL, 503);
    retrieve(&h, 2, 5, 6, "a", -1, NULL);
    expect(&h, SCT_CHECK_LINEARIZABILITY);

    /* A 503 ahead of a racing insert does not make the insert's 409 right. */
    write1(&h, 1, 1, 4, MT_OP_INSERT, "a", 1, NULL, NULL, 503);
    write1(&h, 2, 2, 3, MT_OP_INSERT, "a", 2, NULL, NULL, 409);
    expect(&h, SCT_CHECK_LINEARIZABILITY);

    /* What it changed nothing of stays as it was. */
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    write1(&h, 1, 3, 4, MT_OP_DELETE, "a", -1, E1, NULL, 503);
    write1(&h, 2, 5, 6, MT_OP_REPLACE, "a", 3, E1, E2, 0);
    retrieve(&h, 2, 7, 8, "a", 3, E2);
    expect(&h, SCT_CHECK_OK);
}

/* ------------------------------------------------------------------------ */
/* Streams.                                                                  */

static void test_stream_row(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    stream_row(&h, 3, 10, "a", 1);
    write1(&h, 1, 5, 6, MT_OP_REPLACE, "a", 2, "*", E2, 0);
    expect(&h, SCT_CHECK_OK);

    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    write1(&h, 1, 5, 6, MT_OP_REPLACE, "a", 2, "*", E2, 0);
    stream_row(&h, 7, 10, "a", 1);
    expect(&h, SCT_CHECK_STREAM);

    /* The atomic part failing wins over the stream failing. */
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    write1(&h, 1, 5, 6, MT_OP_REPLACE, "a", 2, "*", E2, 0);
    stream_row(&h, 7, 10, "a", 1);
    retrieve(&h, 2, 11, 12, "a", 1, E1);
    expect(&h, SCT_CHECK_LINEARIZABILITY);
}

static void test_stream_absent(void **state)
{
    (void)state;
    sct_history h = {0};
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    stream_absent(&h, 3, 6, "a");
    expect(&h, SCT_CHECK_STREAM);

    /* A delete inside the interval explains the skip. */
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    stream_absent(&h, 3, 6, "a");
    write1(&h, 1, 4, 5, MT_OP_DELETE, "a", -1, "*", NULL, 0);
    expect(&h, SCT_CHECK_OK);

    /* So does a filter the row fails. */
    write1(&h, 1, 1, 2, MT_OP_INSERT, "a", 1, NULL, E1, 0);
    stream_absent(&h, 3, 6, "a")->filter = v_ge(2);
    expect(&h, SCT_CHECK_OK);
}

/* ------------------------------------------------------------------------ */
/* Generated histories.                                                      */

#define G_PARTS 2
#define G_ROWS 3
#define G_KEYS (G_PARTS * G_ROWS)

typedef struct g_row {
    mt_entity *content; /* NULL when absent */
    char etag[32];      /* the row's real ETag (spurious changes included) */
    char seen[32];      /* the latest ETag any client saw */
    char old[8][32];    /* ETags clients saw before, for stale If-Match */
    int nold;
} g_row;

typedef struct g_ref {
    g_row rows[G_KEYS];
    uint64_t rng;
    int counter;
    bool sequential;
    int width; /* how many sequence points an interval may reach either side */
} g_ref;

static const char *g_pk[G_PARTS] = {"p0", "p1"};
static const char *g_rk[G_ROWS] = {"r0", "r1", "r2"};

static uint32_t g_rand(g_ref *g, uint32_t n)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return (uint32_t)(g->rng >> 11) % n;
}

static void g_saw(g_row *r, const char *etag)
{
    if (strcmp(r->seen, etag) == 0)
        return;
    if (r->seen[0]) {
        snprintf(r->old[r->nold % 8], sizeof(r->old[0]), "%s", r->seen);
        r->nold++;
    }
    snprintf(r->seen, sizeof(r->seen), "%s", etag);
}

/* The interval of the i-th record around its sequential point 1000 * i:
 * residues keep every time distinct, and a record that responds before
 * another is invoked is always earlier in the sequence. */
static void g_times(g_ref *g, sct_hop *op, int i, int width)
{
    uint64_t a = g->sequential ? 0 : g_rand(g, (uint32_t)width + 1);
    uint64_t b = g->sequential ? 0 : g_rand(g, (uint32_t)width + 1);
    op->invoke = 100000 + 1000 * ((uint64_t)i - a) - (uint64_t)(i + 1);
    op->respond = 100000 + 1000 * ((uint64_t)i + b) + (uint64_t)(i + 1);
}

static mt_filter *g_filter(g_ref *g)
{
    mt_value x = mt_v_i32((int32_t)g_rand(g, 4));
    mt_value r1 = mt_v_str("r1");
    switch (g_rand(g, 4)) {
    case 0:
        return mt_filter_cmp("v", MT_GE, &x);
    case 1:
        return mt_filter_cmp("v", MT_EQ, &x);
    case 2:
        return mt_filter_cmp("RowKey", MT_NE, &r1);
    }
    return NULL;
}

static int g_outcome(const g_row *r, const sct_hbatch_op *o)
{
    switch (o->kind) {
    case MT_OP_INSERT:
        return r->content ? 409 : 0;
    case MT_OP_REPLACE:
    case MT_OP_MERGE:
    case MT_OP_DELETE:
        if (!r->content)
            return 404;
        return strcmp(o->if_match, "*") == 0 || strcmp(o->if_match, r->etag) == 0 ? 0 : 412;
    default:
        return 0;
    }
}

static void g_apply(g_ref *g, g_row *r, const sct_hbatch_op *o, mt_op_result *res)
{
    bool merge = o->kind == MT_OP_MERGE || o->kind == MT_OP_INSERT_OR_MERGE;
    res->http = o->kind == MT_OP_INSERT ? 201 : 204;
    res->etag[0] = '\0';
    if (o->kind == MT_OP_DELETE || o->kind == MT_OP_DELETE_IF_EXISTS) {
        mt_entity_free(r->content);
        r->content = NULL;
        r->etag[0] = '\0';
        return;
    }
    if (merge && r->content) {
        for (size_t p = 0; p < o->entity->nprops; p++)
            mt_entity_set(r->content, o->entity->props[p].name, &o->entity->props[p].value);
    } else {
        if (r->content)
            mt_entity_free(r->content);
        r->content = mt_entity_clone(o->entity);
    }
    snprintf(r->etag, sizeof(r->etag), "W/\"g:%d\"", ++g->counter);
    snprintf(res->etag, sizeof(res->etag), "%s", r->etag);
    g_saw(r, r->etag);
}

static const char *g_if_match(g_ref *g, const g_row *r)
{
    uint32_t c = g_rand(g, 10);
    if (c < 4 || !r->seen[0])
        return "*";
    if (c < 8 || r->nold == 0)
        return r->seen;
    return r->old[g_rand(g, (uint32_t)(r->nold < 8 ? r->nold : 8))];
}

static void g_batch_op(g_ref *g, sct_hbatch_op *o, int part, int row)
{
    o->kind = (mt_op_kind)g_rand(g, 7);
    o->entity = mt_entity_new(g_pk[part], g_rk[row]);
    mt_value v = mt_v_i32((int32_t)g_rand(g, 4));
    mt_value w = mt_v_str(g_rand(g, 2) ? "x" : "y");
    if (o->kind != MT_OP_DELETE && o->kind != MT_OP_DELETE_IF_EXISTS) {
        mt_entity_set(o->entity, "v", &v);
        if (g_rand(g, 3) == 0)
            mt_entity_set(o->entity, "w", &w);
    }
    if (o->kind == MT_OP_REPLACE || o->kind == MT_OP_MERGE || o->kind == MT_OP_DELETE)
        o->if_match = strdup(g_if_match(g, &g->rows[part * G_ROWS + row]));
}

static void g_batch(g_ref *g, sct_hop *b)
{
    int part = (int)g_rand(g, G_PARTS), first = (int)g_rand(g, G_ROWS);
    b->n = 1 + g_rand(g, 3);
    b->ops = calloc(b->n, sizeof(*b->ops));
    b->results = calloc(b->n, sizeof(*b->results));
    for (size_t j = 0; j < b->n; j++)
        g_batch_op(g, &b->ops[j], part, (first + (int)j) % G_ROWS);
    for (size_t j = 0; j < b->n; j++) {
        int row = (first + (int)j) % G_ROWS;
        int http = g_outcome(&g->rows[part * G_ROWS + row], &b->ops[j]);
        if (http) {
            set_fail(b, http, (int)j);
            return;
        }
    }
    for (size_t j = 0; j < b->n; j++) {
        int row = (first + (int)j) % G_ROWS;
        g_apply(g, &g->rows[part * G_ROWS + row], &b->ops[j], &b->results[j]);
    }
}

static mt_entity *g_read(g_row *r)
{
    mt_entity *e = mt_entity_clone(r->content);
    mt_entity_set_etag(e, r->etag);
    g_saw(r, r->etag);
    return e;
}

static void g_query(g_ref *g, sct_hop *q)
{
    int part = (int)g_rand(g, G_PARTS);
    q->pk = strdup(g_pk[part]);
    q->filter = g_filter(g);
    for (int row = 0; row < G_ROWS; row++) {
        g_row *r = &g->rows[part * G_ROWS + row];
        if (r->content && (!q->filter || mt_filter_eval(q->filter, r->content)))
            mt_entity_list_push(&q->rows, g_read(r));
    }
}

static void g_retrieve(g_ref *g, sct_hop *q)
{
    int part = (int)g_rand(g, G_PARTS), row = (int)g_rand(g, G_ROWS);
    g_row *r = &g->rows[part * G_ROWS + row];
    q->pk = strdup(g_pk[part]);
    q->rk = strdup(g_rk[row]);
    if (r->content)
        q->row = g_read(r);
    else
        set_fail(q, 404, -1);
}

static void g_stream(g_ref *g, sct_hop *s)
{
    int part = (int)g_rand(g, G_PARTS), row = (int)g_rand(g, G_ROWS);
    g_row *r = &g->rows[part * G_ROWS + row];
    s->filter = g_filter(g);
    if (r->content && (!s->filter || mt_filter_eval(s->filter, r->content))) {
        s->kind = SCT_H_STREAM_ROW;
        s->row = mt_entity_clone(r->content);
        mt_entity_set_etag(s->row, r->etag);
        return;
    }
    s->kind = SCT_H_STREAM_ABSENT;
    s->pk = strdup(g_pk[part]);
    s->rk = strdup(g_rk[row]);
}

/* The migration rewrites a live row: same content, an ETag nobody saw. */
static void g_spurious(g_ref *g)
{
    g_row *r = &g->rows[g_rand(g, G_KEYS)];
    if (r->content)
        snprintf(r->etag, sizeof(r->etag), "W/\"s:%d\"", ++g->counter);
}

static void g_generate(g_ref *g, sct_history *h, int n, bool streams)
{
    for (int i = 0; i < n;) {
        uint32_t c = g_rand(g, 100);
        if (c >= 90) {
            g_spurious(g);
            continue;
        }
        if (c >= 80 && !streams)
            continue;
        sct_hkind kind = c < 45   ? SCT_H_BATCH
                         : c < 65 ? SCT_H_QUERY
                         : c < 80 ? SCT_H_RETRIEVE
                                  : SCT_H_STREAM_ROW;
        sct_hop *op = sct_history_add(h, kind, (int)g_rand(g, 4));
        if (kind == SCT_H_BATCH)
            g_batch(g, op);
        else if (kind == SCT_H_QUERY)
            g_query(g, op);
        else if (kind == SCT_H_RETRIEVE)
            g_retrieve(g, op);
        else
            g_stream(g, op);
        g_times(g, op, i, kind == SCT_H_STREAM_ROW ? 3 * g->width : g->width);
        i++;
    }
}

static void g_reset(g_ref *g, uint64_t seed, bool sequential)
{
    for (int k = 0; k < G_KEYS; k++)
        if (g->rows[k].content)
            mt_entity_free(g->rows[k].content);
    memset(g, 0, sizeof(*g));
    g->rng = seed * 0x9e3779b97f4a7c15ULL + 1;
    g->sequential = sequential;
    g->width = 2;
}

/* ------------------------------------------------------------------------ */
/* Mutations that no order can explain.                                      */

typedef struct g_mut {
    const char *name;
    bool (*fits)(const sct_hop *op, const sct_history *h);
    void (*apply)(sct_hop *op, const sct_history *h);
    bool sequential_only;
    sct_check_result want;
} g_mut;

static bool has_row(const sct_hop *op, const sct_history *h)
{
    (void)h;
    return (op->kind == SCT_H_QUERY && op->rows.n) ||
           (op->kind == SCT_H_RETRIEVE && op->row && op->status.http == 0);
}

static mt_entity *some_row(sct_hop *op)
{
    return op->kind == SCT_H_QUERY ? op->rows.v[op->rows.n - 1] : op->row;
}

/* A value no write ever stored. */
static void unseen_value(sct_hop *op, const sct_history *h)
{
    (void)h;
    mt_value x = mt_v_i32(777);
    mt_entity_set(some_row(op), "v", &x);
}

static bool is_stream_row(const sct_hop *op, const sct_history *h)
{
    (void)h;
    return op->kind == SCT_H_STREAM_ROW;
}

static void stream_unseen_value(sct_hop *op, const sct_history *h)
{
    (void)h;
    mt_value x = mt_v_i32(777);
    mt_entity_set(op->row, "v", &x);
}

/* An ETag a write returned for another row. */
static const char *foreign_etag(const sct_history *h, const mt_entity *e)
{
    for (size_t i = 0; i < h->n; i++) {
        const sct_hop *b = &h->v[i];
        for (size_t j = 0; b->kind == SCT_H_BATCH && b->status.http == 0 && j < b->n; j++)
            if (b->results[j].etag[0] && (strcmp(b->ops[j].entity->pk, e->pk) != 0 ||
                                          strcmp(b->ops[j].entity->rk, e->rk) != 0))
                return b->results[j].etag;
    }
    return NULL;
}

static bool has_row_and_foreign(const sct_hop *op, const sct_history *h)
{
    return has_row(op, h) && foreign_etag(h, some_row((sct_hop *)op));
}

static void foreign(sct_hop *op, const sct_history *h)
{
    mt_entity *e = some_row(op);
    mt_entity_set_etag(e, foreign_etag(h, e));
}

static bool written(const sct_hop *op, const sct_history *h)
{
    (void)h;
    if (op->kind != SCT_H_BATCH || op->status.http != 0)
        return false;
    for (size_t j = 0; j < op->n; j++)
        if (op->results[j].etag[0])
            return true;
    return false;
}

static void drop_etag(sct_hop *op, const sct_history *h)
{
    (void)h;
    for (size_t j = 0; j < op->n; j++)
        if (op->results[j].etag[0]) {
            op->results[j].etag[0] = '\0';
            return;
        }
}

static bool succeeded(const sct_hop *op, const sct_history *h)
{
    (void)h;
    return op->kind == SCT_H_BATCH && op->status.http == 0;
}

static void to_409(sct_hop *op, const sct_history *h)
{
    (void)h;
    set_fail(op, 409, 0);
}

static bool failed_hard(const sct_hop *op, const sct_history *h)
{
    (void)h;
    return op->kind == SCT_H_BATCH && (op->status.http == 404 || op->status.http == 409);
}

static void to_success(sct_hop *op, const sct_history *h)
{
    (void)h;
    op->status = (mt_status){.http = 0, .index = -1};
    for (size_t j = 0; j < op->n; j++) {
        bool del = op->ops[j].kind == MT_OP_DELETE || op->ops[j].kind == MT_OP_DELETE_IF_EXISTS;
        snprintf(op->results[j].etag, sizeof(op->results[j].etag), "%s", del ? "" : "W/\"mutant\"");
    }
}

static bool failed_hard_multi(const sct_hop *op, const sct_history *h)
{
    return failed_hard(op, h) && op->n > 1;
}

static void other_index(sct_hop *op, const sct_history *h)
{
    (void)h;
    op->status.index = (op->status.index + 1) % (int)op->n;
}

static bool query_rows(const sct_hop *op, const sct_history *h)
{
    (void)h;
    return op->kind == SCT_H_QUERY && op->rows.n > 0;
}

static void drop_row(sct_hop *op, const sct_history *h)
{
    (void)h;
    mt_entity_free(op->rows.v[--op->rows.n]);
}

static void dup_row(sct_hop *op, const sct_history *h)
{
    (void)h;
    mt_entity_list_push(&op->rows, mt_entity_clone(op->rows.v[op->rows.n - 1]));
}

static bool retrieved(const sct_hop *op, const sct_history *h)
{
    (void)h;
    return op->kind == SCT_H_RETRIEVE && op->row;
}

static void to_404(sct_hop *op, const sct_history *h)
{
    (void)h;
    mt_entity_free(op->row);
    op->row = NULL;
    set_fail(op, 404, -1);
}

static bool missed(const sct_hop *op, const sct_history *h)
{
    (void)h;
    return op->kind == SCT_H_RETRIEVE && !op->row;
}

static void to_found(sct_hop *op, const sct_history *h)
{
    (void)h;
    op->status = (mt_status){.http = 0, .index = -1};
    op->row = ent(op->pk, op->rk, 0);
    mt_entity_set_etag(op->row, "W/\"mutant\"");
}

static const g_mut g_muts[] = {
    {"unseen value", has_row, unseen_value, false, SCT_CHECK_LINEARIZABILITY},
    {"foreign etag", has_row_and_foreign, foreign, false, SCT_CHECK_LINEARIZABILITY},
    {"no etag", written, drop_etag, false, SCT_CHECK_LINEARIZABILITY},
    {"stream unseen value", is_stream_row, stream_unseen_value, false, SCT_CHECK_STREAM},
    {"success to 409", succeeded, to_409, true, SCT_CHECK_LINEARIZABILITY},
    {"404/409 to success", failed_hard, to_success, true, SCT_CHECK_LINEARIZABILITY},
    {"other index", failed_hard_multi, other_index, true, SCT_CHECK_LINEARIZABILITY},
    {"drop row", query_rows, drop_row, true, SCT_CHECK_LINEARIZABILITY},
    {"duplicate row", query_rows, dup_row, true, SCT_CHECK_LINEARIZABILITY},
    {"row to 404", retrieved, to_404, true, SCT_CHECK_LINEARIZABILITY},
    {"404 to row", missed, to_found, true, SCT_CHECK_LINEARIZABILITY},
};
#define G_NMUTS (sizeof(g_muts) / sizeof(g_muts[0]))

/* Applies mutation m to a random record it fits; false when none fits. */
static bool g_mutate(g_ref *g, sct_history *h, const g_mut *m)
{
    size_t fit = 0;
    for (size_t i = 0; i < h->n; i++)
        fit += m->fits(&h->v[i], h);
    if (fit == 0)
        return false;
    size_t pick = g_rand(g, (uint32_t)fit);
    for (size_t i = 0; i < h->n; i++) {
        if (!m->fits(&h->v[i], h))
            continue;
        if (pick-- == 0) {
            m->apply(&h->v[i], h);
            return true;
        }
    }
    return false;
}

static void g_trial(uint64_t seed, bool sequential, int *mutated)
{
    g_ref g = {0};
    sct_history h = {0};
    char why[512];
    g_reset(&g, seed, sequential);
    g_generate(&g, &h, 10 + (int)g_rand(&g, 51), true);
    sct_check_result got = sct_check(&h, why, sizeof(why));
    if (got != SCT_CHECK_OK)
        printf("    seed %llu: %s\n", (unsigned long long)seed, why);
    assert_int_equal(got, SCT_CHECK_OK);

    const g_mut *m = &g_muts[g_rand(&g, G_NMUTS)];
    if ((!m->sequential_only || sequential) && g_mutate(&g, &h, m)) {
        got = sct_check(&h, why, sizeof(why));
        if (got != m->want)
            printf("    seed %llu, mutation %s: got %s (%s)\n", (unsigned long long)seed, m->name,
                   sct_check_result_name(got), why);
        assert_int_equal(got, m->want);
        (*mutated)++;
    }
    sct_history_clear(&h);
    g_reset(&g, 0, false);
}

static void test_generated(void **state)
{
    (void)state;
    int mutated = 0;
    for (uint64_t seed = 1; seed <= 3000; seed++)
        g_trial(seed, seed % 3 == 0, &mutated);
    printf("    3000 generated histories OK, %d mutations caught\n", mutated);
    assert_true(mutated > 1000);
}

static double g_time_check(const sct_history *h, int reps, sct_check_result want)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < reps; i++)
        assert_int_equal(sct_check(h, NULL, 0), want);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / reps / 1e3;
}

/* Prints, not asserts: the machines are too noisy for a time bound. */
static void test_timing(void **state)
{
    (void)state;
    double sum[2] = {0, 0}, bad = 0;
    int nbad = 0;
    for (int streams = 0; streams < 2; streams++) {
        for (uint64_t seed = 1; seed <= 20; seed++) {
            g_ref g = {0};
            sct_history h = {0};
            g_reset(&g, seed * 7919, false);
            g_generate(&g, &h, 40, streams);
            sum[streams] += g_time_check(&h, 200, SCT_CHECK_OK);
            if (streams && g_mutate(&g, &h, &g_muts[0]))
                bad += g_time_check(&h, 50, SCT_CHECK_LINEARIZABILITY), nbad++;
            sct_history_clear(&h);
            g_reset(&g, 0, false);
        }
    }
    printf("    average check of a 40-record history: %.1f us (%.1f us with streamed rows)\n",
           sum[0] / 20, sum[1] / 20);
    printf("    average check of a 40-record history with a violation: %.1f us\n", bad / nbad);

    /* A long history where up to ~9 records overlap. */
    double wide = 0;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        g_ref g = {0};
        sct_history h = {0};
        g_reset(&g, seed * 104729, false);
        g.width = 4;
        g_generate(&g, &h, 100, true);
        wide += g_time_check(&h, 20, SCT_CHECK_OK);
        sct_history_clear(&h);
        g_reset(&g, 0, false);
    }
    printf("    average check of a 100-record history, wider overlap: %.1f us\n", wide / 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_ok),
        cmocka_unit_test(test_merge_overlays),
        cmocka_unit_test(test_concurrent_inserts_both_succeed),
        cmocka_unit_test(test_read_misses_completed_write),
        cmocka_unit_test(test_concurrent_read_sees_either),
        cmocka_unit_test(test_batch_atomicity),
        cmocka_unit_test(test_failing_index),
        cmocka_unit_test(test_stale_etag_success),
        cmocka_unit_test(test_spurious_412),
        cmocka_unit_test(test_fresh_etag_then_write),
        cmocka_unit_test(test_old_etag_observed),
        cmocka_unit_test(test_success_without_etag),
        cmocka_unit_test(test_server_busy),
        cmocka_unit_test(test_server_busy_changed_nothing),
        cmocka_unit_test(test_stream_row),
        cmocka_unit_test(test_stream_absent),
        cmocka_unit_test(test_generated),
        cmocka_unit_test(test_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

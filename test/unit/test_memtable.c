/*
 * test_memtable.c -- the in-memory backend table.
 *
 * The tester and the embedded proxy trust this table to behave like the
 * real service, so these tests pin down what the protocol can observe:
 * batches are all-or-nothing and name the failing op, every write gets a
 * fresh ETag, Replace and Merge differ, the service's limits are enforced,
 * and streams return rows in key order while the table changes under them.
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

#include "mt.h"

/* ------------------------------------------------------------------------ */
/* Helpers.                                                                  */

static mt_table *new_table(void)
{
    mt_table *t = mt_memtable_new(mt_rt_pthread(), "t1");
    assert_non_null(t);
    return t;
}

static void set_i32(mt_entity *e, const char *name, int32_t v)
{
    mt_value x = mt_v_i32(v);
    mt_entity_set(e, name, &x);
}

static void set_str(mt_entity *e, const char *name, const char *s)
{
    mt_value x = mt_v_str(s);
    mt_entity_set(e, name, &x);
}

static mt_entity *ent1(const char *pk, const char *rk, const char *prop, int32_t v)
{
    mt_entity *e = mt_entity_new(pk, rk);
    if (prop)
        set_i32(e, prop, v);
    return e;
}

/* Runs one op as a batch of one. r may be NULL. */
static mt_status run1(mt_table *t, mt_op_kind kind, const mt_entity *e, const char *if_match,
                      mt_op_result *r)
{
    mt_op op = {.kind = kind, .entity = e, .if_match = if_match};
    mt_op_result tmp;
    return mt_table_batch(t, &op, 1, r ? r : &tmp);
}

static void assert_status(mt_status st, int http, const char *code)
{
    if (st.http != http || strcmp(st.code, code) != 0)
        fail_msg("expected %d %s, got %d %s (%s)", http, code, st.http, st.code, st.message);
}

static void assert_ok(mt_status st)
{
    assert_status(st, 0, "");
}

/* Inserts (pk, rk) with prop = v; returns the new ETag in etag. */
static void put(mt_table *t, const char *pk, const char *rk, int32_t v, char etag[MT_ETAG_MAX])
{
    mt_entity *e = ent1(pk, rk, "v", v);
    mt_op_result r;
    assert_ok(run1(t, MT_OP_INSERT, e, NULL, &r));
    if (etag)
        memcpy(etag, r.etag, MT_ETAG_MAX);
    mt_entity_free(e);
}

static mt_entity *get(mt_table *t, const char *pk, const char *rk)
{
    mt_entity *e = NULL;
    mt_status st = t->ops->retrieve(t, pk, rk, &e);
    if (st.http == 404)
        return NULL;
    assert_ok(st);
    return e;
}

static int32_t get_v(mt_table *t, const char *pk, const char *rk)
{
    mt_entity *e = get(t, pk, rk);
    assert_non_null(e);
    const mt_value *v = mt_entity_get(e, "v");
    assert_non_null(v);
    int32_t x = v->u.i32;
    mt_entity_free(e);
    return x;
}

static mt_filter *parse(const char *text)
{
    mt_filter *f = NULL;
    assert_ok(mt_filter_parse(text, strlen(text), &f));
    return f;
}

/* "v eq 0 or v eq 1 or ..." with n comparisons. */
static mt_filter *wide_filter(int n)
{
    char buf[1024] = "";
    for (int i = 0; i < n; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, sizeof buf - len, "%sv eq %d", i ? " or " : "", i);
    }
    return parse(buf);
}

/* Reads a stream to its end, checking key order, and frees it. */
static size_t drain(mt_stream *s, mt_entity_list *out)
{
    size_t n = 0;
    for (;;) {
        mt_entity *e = NULL;
        assert_ok(s->ops->next(s, &e));
        if (!e)
            break;
        if (out->n)
            assert_true(mt_key_cmp(out->v[out->n - 1]->pk, out->v[out->n - 1]->rk, e->pk, e->rk) <
                        0);
        mt_entity_list_push(out, e);
        n++;
    }
    s->ops->close(s);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Single operations.                                                        */

static void test_insert_retrieve(void **state)
{
    (void)state;
    mt_table *t = new_table();
    mt_entity *e = ent1("p", "r", "v", 7);
    set_str(e, "s", "text");
    mt_op_result r;
    assert_ok(run1(t, MT_OP_INSERT, e, NULL, &r));
    assert_int_equal(r.http, 201);
    assert_true(strncmp(r.etag, "W/\"", 3) == 0);
    assert_int_equal(mt_memtable_count(t), 1);

    mt_entity *g = get(t, "p", "r");
    assert_non_null(g);
    assert_true(mt_entity_same_content(e, g));
    assert_string_equal(g->etag, r.etag);
    assert_true(g->timestamp > 0);
    /* A clone: changing it leaves the table alone. */
    set_i32(g, "v", 8);
    mt_entity_free(g);
    assert_int_equal(get_v(t, "p", "r"), 7);

    mt_entity *none = (mt_entity *)1;
    assert_status(t->ops->retrieve(t, "p", "x", &none), 404, MT_ERR_NOT_FOUND);
    assert_null(none);
    assert_status(run1(t, MT_OP_INSERT, e, NULL, NULL), 409, MT_ERR_ENTITY_EXISTS);
    mt_entity_free(e);
    mt_table_destroy(t);
}

static void test_fresh_etags(void **state)
{
    (void)state;
    mt_table *t = new_table();
    char seen[8][MT_ETAG_MAX];
    int n = 0;
    mt_entity *e = ent1("p", "r", "v", 1);
    mt_op_result r;

    assert_ok(run1(t, MT_OP_INSERT, e, NULL, &r));
    memcpy(seen[n++], r.etag, MT_ETAG_MAX);
    assert_ok(run1(t, MT_OP_REPLACE, e, "*", &r));
    memcpy(seen[n++], r.etag, MT_ETAG_MAX);
    assert_ok(run1(t, MT_OP_MERGE, e, "*", &r));
    memcpy(seen[n++], r.etag, MT_ETAG_MAX);
    assert_ok(run1(t, MT_OP_INSERT_OR_REPLACE, e, NULL, &r));
    memcpy(seen[n++], r.etag, MT_ETAG_MAX);
    assert_ok(run1(t, MT_OP_INSERT_OR_MERGE, e, NULL, &r));
    memcpy(seen[n++], r.etag, MT_ETAG_MAX);
    /* Delete and re-insert: still never an old ETag. */
    assert_ok(run1(t, MT_OP_DELETE, e, "*", &r));
    assert_string_equal(r.etag, "");
    assert_ok(run1(t, MT_OP_INSERT, e, NULL, &r));
    memcpy(seen[n++], r.etag, MT_ETAG_MAX);

    for (int i = 0; i < n; i++) {
        assert_true(strlen(seen[i]) > 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(seen[i], seen[j]);
    }
    mt_entity *g = get(t, "p", "r");
    assert_string_equal(g->etag, seen[n - 1]);
    mt_entity_free(g);

    mt_entity_free(e);
    mt_table_destroy(t);
}

/* A runtime whose clock stands still or runs backwards. */
static int64_t fake_now;
static int64_t fake_now_ticks(mt_rt *rt)
{
    (void)rt;
    return fake_now;
}

static void test_timestamps_increase(void **state)
{
    (void)state;
    static mt_rt_ops ops;
    static mt_rt rt;
    ops = *mt_rt_pthread()->ops;
    ops.now_ticks = fake_now_ticks;
    rt.ops = &ops;
    mt_table *t = mt_memtable_new(&rt, "clock");

    fake_now = 1000;
    mt_entity *e1 = ent1("p", "a", NULL, 0), *e2 = ent1("p", "b", NULL, 0);
    mt_op ops2[2] = {{MT_OP_INSERT, e1, NULL}, {MT_OP_INSERT, e2, NULL}};
    mt_op_result res[2];
    assert_ok(mt_table_batch(t, ops2, 2, res));
    mt_entity *a = get(t, "p", "a"), *b = get(t, "p", "b");
    assert_int_equal(a->timestamp, 1000);
    assert_int_equal(b->timestamp, 1001);
    mt_entity_free(a);
    mt_entity_free(b);

    fake_now = 10; /* the clock steps back */
    assert_ok(run1(t, MT_OP_REPLACE, e1, "*", NULL));
    a = get(t, "p", "a");
    assert_int_equal(a->timestamp, 1002);
    mt_entity_free(a);

    fake_now = 5000; /* and forward again: the clock wins */
    assert_ok(run1(t, MT_OP_MERGE, e2, "*", NULL));
    b = get(t, "p", "b");
    assert_int_equal(b->timestamp, 5000);
    mt_entity_free(b);

    /* The clock stands still: each write is one tick later, and so is its
     * ETag, which is the Timestamp. */
    fake_now = 638000000000000000; /* 2022-09-... */
    char etags[3][MT_ETAG_MAX];
    for (int i = 0; i < 3; i++) {
        mt_op_result r;
        assert_ok(run1(t, MT_OP_INSERT_OR_REPLACE, e1, NULL, &r));
        memcpy(etags[i], r.etag, MT_ETAG_MAX);
        a = get(t, "p", "a");
        assert_int_equal(a->timestamp, fake_now + i);
        int64_t in_etag = 0;
        assert_true(mt_etag_time(r.etag, &in_etag));
        assert_int_equal(in_etag, a->timestamp);
        mt_entity_free(a);
    }
    assert_string_not_equal(etags[0], etags[1]);
    assert_string_not_equal(etags[1], etags[2]);

    mt_entity_free(e1);
    mt_entity_free(e2);
    mt_table_destroy(t);
}

/* ETags are the service's: W/"datetime'<Timestamp, ':' as %3A>'". A client
 * that rebuilds one from the Timestamp it read, as the legacy Python SDK
 * does (url-quoting the text), gets a condition that holds; so do the other
 * spellings of the same time, and no other time. */
static void test_etag_is_the_timestamp(void **state)
{
    (void)state;
    mt_table *t = new_table();
    mt_entity *e = ent1("p", "r", "v", 1);
    mt_op_result r;
    assert_ok(run1(t, MT_OP_INSERT, e, NULL, &r));
    mt_entity *g = get(t, "p", "r");
    char ts[MT_DATETIME_MAX], rebuilt[MT_ETAG_MAX], quoted[MT_ETAG_MAX] = "";
    mt_datetime_format(g->timestamp, ts);
    size_t n = 0;
    for (const char *c = ts; *c; c++) {
        if (*c == ':') {
            memcpy(quoted + n, "%3A", 3);
            n += 3;
        } else {
            quoted[n++] = *c;
        }
    }
    quoted[n] = '\0';
    snprintf(rebuilt, sizeof rebuilt, "W/\"datetime'%s'\"", quoted);
    assert_string_equal(r.etag, rebuilt);
    assert_string_equal(g->etag, rebuilt);
    assert_int_equal(strlen(ts), 28); /* 2026-12-06T02:43:13.1234567Z */

    /* The same time spelt otherwise: lowercase escapes, bare colons, w/. */
    char lower[MT_ETAG_MAX], bare[MT_ETAG_MAX];
    snprintf(bare, sizeof bare, "w/\"datetime'%s'\"", ts);
    snprintf(lower, sizeof lower, "%s", rebuilt);
    for (char *c = lower; (c = strstr(c, "%3A")); c += 3)
        c[2] = 'a';
    assert_ok(run1(t, MT_OP_MERGE, e, lower, &r));
    mt_entity_free(g);
    g = get(t, "p", "r");
    mt_datetime_format(g->timestamp, ts);
    snprintf(bare, sizeof bare, "w/\"datetime'%s'\"", ts);
    assert_ok(run1(t, MT_OP_REPLACE, e, bare, &r));

    /* Another time, or a weak ETag of another form: 412. */
    assert_status(run1(t, MT_OP_REPLACE, e, bare, NULL), 412, MT_ERR_CONDITION);
    assert_status(
        run1(t, MT_OP_DELETE, e, "W/\"datetime'2001-01-01T00%3A00%3A00.0000000Z'\"", NULL), 412,
        MT_ERR_CONDITION);
    assert_ok(run1(t, MT_OP_DELETE, e, r.etag, NULL));
    mt_entity_free(g);
    mt_entity_free(e);
    mt_table_destroy(t);
}

static void test_replace_vs_merge(void **state)
{
    (void)state;
    mt_table *t = new_table();
    mt_entity *e = ent1("p", "r", "a", 1);
    set_i32(e, "b", 2);
    assert_ok(run1(t, MT_OP_INSERT, e, NULL, NULL));

    mt_entity *upd = ent1("p", "r", "b", 20);
    set_i32(upd, "c", 30);
    mt_op_result r;
    assert_ok(run1(t, MT_OP_MERGE, upd, "*", &r));
    assert_int_equal(r.http, 204);
    mt_entity *g = get(t, "p", "r");
    assert_int_equal(g->nprops, 3);
    assert_int_equal(mt_entity_get(g, "a")->u.i32, 1);
    assert_int_equal(mt_entity_get(g, "b")->u.i32, 20);
    assert_int_equal(mt_entity_get(g, "c")->u.i32, 30);
    mt_entity_free(g);

    assert_ok(run1(t, MT_OP_REPLACE, upd, "*", &r));
    assert_int_equal(r.http, 204);
    g = get(t, "p", "r");
    assert_true(mt_entity_same_content(g, upd)); /* a is gone */
    mt_entity_free(g);

    /* The upserts behave the same way on an existing row... */
    assert_ok(run1(t, MT_OP_INSERT_OR_MERGE, e, NULL, &r));
    g = get(t, "p", "r");
    assert_int_equal(g->nprops, 3);
    assert_int_equal(mt_entity_get(g, "b")->u.i32, 2);
    mt_entity_free(g);
    assert_ok(run1(t, MT_OP_INSERT_OR_REPLACE, upd, NULL, &r));
    g = get(t, "p", "r");
    assert_true(mt_entity_same_content(g, upd));
    mt_entity_free(g);

    /* ...and insert when the row is absent, with 204. */
    mt_entity *n1 = ent1("p", "n1", "x", 1), *n2 = ent1("p", "n2", "x", 2);
    assert_ok(run1(t, MT_OP_INSERT_OR_MERGE, n1, NULL, &r));
    assert_int_equal(r.http, 204);
    assert_ok(run1(t, MT_OP_INSERT_OR_REPLACE, n2, NULL, &r));
    assert_int_equal(r.http, 204);
    assert_int_equal(mt_memtable_count(t), 3);

    mt_entity_free(n1);
    mt_entity_free(n2);
    mt_entity_free(e);
    mt_entity_free(upd);
    mt_table_destroy(t);
}

static void test_conditions(void **state)
{
    (void)state;
    mt_table *t = new_table();
    char etag[MT_ETAG_MAX], old[MT_ETAG_MAX];
    put(t, "p", "r", 1, etag);
    mt_entity *e = ent1("p", "r", "v", 2);
    mt_entity *absent = ent1("p", "zz", "v", 2);
    mt_op_result r;

    /* A wrong ETag fails every conditional kind. */
    assert_status(run1(t, MT_OP_REPLACE, e, "W/\"nope\"", NULL), 412, MT_ERR_CONDITION);
    assert_status(run1(t, MT_OP_MERGE, e, "W/\"nope\"", NULL), 412, MT_ERR_CONDITION);
    assert_status(run1(t, MT_OP_DELETE, e, "W/\"nope\"", NULL), 412, MT_ERR_CONDITION);
    assert_int_equal(get_v(t, "p", "r"), 1);

    /* The current ETag works once; afterwards it is stale. */
    assert_ok(run1(t, MT_OP_REPLACE, e, etag, &r));
    memcpy(old, etag, sizeof old);
    memcpy(etag, r.etag, sizeof etag);
    assert_status(run1(t, MT_OP_MERGE, e, old, NULL), 412, MT_ERR_CONDITION);
    assert_ok(run1(t, MT_OP_MERGE, e, etag, &r));
    assert_ok(run1(t, MT_OP_DELETE, e, r.etag, &r));
    assert_int_equal(r.http, 204);
    assert_string_equal(r.etag, "");
    assert_null(get(t, "p", "r"));

    /* Absent rows: 404 even with "*". */
    assert_status(run1(t, MT_OP_REPLACE, absent, "*", NULL), 404, MT_ERR_NOT_FOUND);
    assert_status(run1(t, MT_OP_MERGE, absent, "*", NULL), 404, MT_ERR_NOT_FOUND);
    assert_status(run1(t, MT_OP_DELETE, absent, "*", NULL), 404, MT_ERR_NOT_FOUND);

    /* DeleteIfExists never fails on state, and ignores If-Match. */
    assert_ok(run1(t, MT_OP_DELETE_IF_EXISTS, absent, NULL, &r));
    assert_int_equal(r.http, 204);
    put(t, "p", "r", 3, NULL);
    assert_ok(run1(t, MT_OP_DELETE_IF_EXISTS, e, "W/\"nope\"", &r));
    assert_string_equal(r.etag, "");
    assert_int_equal(mt_memtable_count(t), 0);

    mt_entity_free(e);
    mt_entity_free(absent);
    mt_table_destroy(t);
}

/* ------------------------------------------------------------------------ */
/* Batches.                                                                  */

typedef struct snapshot {
    mt_entity_list rows;
} snapshot;

static void take(mt_table *t, snapshot *s)
{
    memset(s, 0, sizeof *s);
    assert_ok(mt_table_scan(t, NULL, &s->rows));
}

/* The table holds exactly the rows of s, ETags and timestamps included. */
static void assert_unchanged(mt_table *t, snapshot *s)
{
    snapshot now;
    take(t, &now);
    assert_int_equal(now.rows.n, s->rows.n);
    for (size_t i = 0; i < s->rows.n; i++) {
        assert_true(mt_entity_same_content(now.rows.v[i], s->rows.v[i]));
        assert_string_equal(now.rows.v[i]->etag, s->rows.v[i]->etag);
        assert_int_equal(now.rows.v[i]->timestamp, s->rows.v[i]->timestamp);
    }
    mt_entity_list_clear(&now.rows);
    mt_entity_list_clear(&s->rows);
}

static void test_batch_atomic(void **state)
{
    (void)state;
    mt_table *t = new_table();
    char etag_b[MT_ETAG_MAX];
    put(t, "p", "a", 1, NULL);
    put(t, "p", "b", 2, etag_b);
    put(t, "p", "c", 3, NULL);

    mt_entity *na = ent1("p", "a", "v", 10), *nb = ent1("p", "b", "v", 20);
    mt_entity *nc = ent1("p", "c", "v", 30), *nd = ent1("p", "d", "v", 40);
    mt_entity *ne = ent1("p", "e", "v", 50);

    /* Each failure kind at a different index; the ops before it would
     * have succeeded, and none of them may show. */
    struct {
        mt_op ops[5];
        int http;
        const char *code;
        int index;
    } cases[] = {
        {{{MT_OP_INSERT, nd, NULL},
          {MT_OP_REPLACE, na, "*"},
          {MT_OP_MERGE, nb, etag_b},
          {MT_OP_INSERT, nc, NULL}, /* exists */
          {MT_OP_INSERT, ne, NULL}},
         409,
         MT_ERR_ENTITY_EXISTS,
         3},
        {{{MT_OP_INSERT_OR_MERGE, nd, NULL},
          {MT_OP_DELETE, na, "*"},
          {MT_OP_REPLACE, nb, "W/\"stale\""},
          {MT_OP_INSERT_OR_REPLACE, nc, NULL},
          {MT_OP_INSERT, ne, NULL}},
         412,
         MT_ERR_CONDITION,
         2},
        {{{MT_OP_DELETE_IF_EXISTS, na, NULL},
          {MT_OP_INSERT, nd, NULL},
          {MT_OP_MERGE, nb, "*"},
          {MT_OP_DELETE, nc, "*"},
          {MT_OP_MERGE, ne, "*"}}, /* absent */
         404,
         MT_ERR_NOT_FOUND,
         4},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        snapshot before;
        take(t, &before);
        mt_op_result res[5];
        mt_status st = mt_table_batch(t, cases[k].ops, 5, res);
        assert_status(st, cases[k].http, cases[k].code);
        assert_int_equal(st.index, cases[k].index);
        assert_unchanged(t, &before);
    }

    /* The same kinds of ops succeed together, with per-op results. */
    mt_op good[5] = {
        {MT_OP_INSERT, nd, NULL}, {MT_OP_REPLACE, na, "*"},          {MT_OP_MERGE, nb, etag_b},
        {MT_OP_DELETE, nc, "*"},  {MT_OP_INSERT_OR_MERGE, ne, NULL},
    };
    mt_op_result res[5];
    assert_ok(mt_table_batch(t, good, 5, res));
    int http[5] = {201, 204, 204, 204, 204};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(res[i].http, http[i]);
        assert_int_equal(res[i].etag[0] == '\0', i == 3);
        for (int j = 0; j < i; j++)
            if (res[i].etag[0])
                assert_string_not_equal(res[i].etag, res[j].etag);
    }
    assert_int_equal(get_v(t, "p", "a"), 10);
    assert_int_equal(get_v(t, "p", "b"), 20);
    assert_null(get(t, "p", "c"));
    assert_int_equal(get_v(t, "p", "d"), 40);
    assert_int_equal(get_v(t, "p", "e"), 50);
    mt_entity *d = get(t, "p", "d");
    assert_string_equal(d->etag, res[0].etag);
    mt_entity_free(d);

    mt_entity_free(na);
    mt_entity_free(nb);
    mt_entity_free(nc);
    mt_entity_free(nd);
    mt_entity_free(ne);
    mt_table_destroy(t);
}

static void test_batch_shape(void **state)
{
    (void)state;
    mt_table *t = new_table();
    mt_entity *es[MT_BATCH_MAX + 1];
    mt_op ops[MT_BATCH_MAX + 1];
    mt_op_result res[MT_BATCH_MAX + 1];
    for (int i = 0; i <= MT_BATCH_MAX; i++) {
        char rk[24];
        snprintf(rk, sizeof rk, "r%03d", i);
        es[i] = ent1("p", rk, "v", i);
        ops[i] = (mt_op){MT_OP_INSERT, es[i], NULL};
    }
    assert_status(mt_table_batch(t, ops, 0, res), 400, MT_ERR_INVALID_INPUT);
    assert_status(mt_table_batch(t, ops, MT_BATCH_MAX + 1, res), 400, MT_ERR_INVALID_INPUT);
    assert_int_equal(mt_memtable_count(t), 0);

    /* Two partitions. */
    mt_entity *other = ent1("q", "r", "v", 0);
    ops[7].entity = other;
    mt_status st = mt_table_batch(t, ops, 10, res);
    assert_status(st, 400, MT_ERR_INVALID_INPUT);
    assert_int_equal(st.index, 7);
    ops[7].entity = es[7];

    /* Two ops on one row. */
    ops[9].entity = es[4];
    st = mt_table_batch(t, ops, 10, res);
    assert_status(st, 400, MT_ERR_INVALID_INPUT);
    assert_int_equal(st.index, 9);
    ops[9].entity = es[9];

    /* Conditional ops need If-Match. */
    mt_op_kind kinds[3] = {MT_OP_REPLACE, MT_OP_MERGE, MT_OP_DELETE};
    for (int k = 0; k < 3; k++) {
        ops[2] = (mt_op){kinds[k], es[2], NULL};
        st = mt_table_batch(t, ops, 3, res);
        assert_status(st, 400, MT_ERR_INVALID_INPUT);
        assert_int_equal(st.index, 2);
    }
    ops[2] = (mt_op){MT_OP_INSERT, es[2], NULL};
    assert_int_equal(mt_memtable_count(t), 0);

    /* Exactly the maximum is fine. */
    assert_ok(mt_table_batch(t, ops, MT_BATCH_MAX, res));
    assert_int_equal(mt_memtable_count(t), MT_BATCH_MAX);

    for (int i = 0; i <= MT_BATCH_MAX; i++)
        mt_entity_free(es[i]);
    mt_entity_free(other);
    mt_table_destroy(t);
}

/* ------------------------------------------------------------------------ */
/* Limits.                                                                   */

static void expect_insert(mt_table *t, mt_entity *e, int http, const char *code)
{
    if (http == 0)
        assert_ok(run1(t, MT_OP_INSERT_OR_REPLACE, e, NULL, NULL));
    else
        assert_status(run1(t, MT_OP_INSERT_OR_REPLACE, e, NULL, NULL), http, code);
    mt_entity_free(e);
}

static void test_key_limits(void **state)
{
    (void)state;
    mt_table *t = new_table();
    char key[1100];
    memset(key, 'k', 1024);
    key[1024] = '\0';
    expect_insert(t, ent1(key, "r", NULL, 0), 0, "");
    expect_insert(t, ent1("p", key, NULL, 0), 0, "");
    key[1024] = 'k';
    key[1025] = '\0';
    expect_insert(t, ent1(key, "r", NULL, 0), 400, MT_ERR_OUT_OF_RANGE);
    expect_insert(t, ent1("p", key, NULL, 0), 400, MT_ERR_OUT_OF_RANGE);

    const char *bad[] = {"a/b",  "a\\b", "a#b",       "a?b",       "a\tb",    "a\nb",
                         "\x1f", "\x7f", "a\xC2\x80", "a\xC2\x85", "\xC2\x9F"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        expect_insert(t, ent1(bad[i], "r", NULL, 0), 400, MT_ERR_OUT_OF_RANGE);
        expect_insert(t, ent1("p", bad[i], NULL, 0), 400, MT_ERR_OUT_OF_RANGE);
        /* Deletes are checked too. */
        mt_entity *d = ent1("p", bad[i], NULL, 0);
        assert_status(run1(t, MT_OP_DELETE_IF_EXISTS, d, NULL, NULL), 400, MT_ERR_OUT_OF_RANGE);
        mt_entity_free(d);
    }
    const char *good[] = {"",   "a b", "a'b", "a%b", "\xC2\xA0", "\xC3\xA9", "\xF0\x9F\x98\x80",
                          "a+b"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        expect_insert(t, ent1("p", good[i], NULL, 0), 0, "");
    assert_int_equal(mt_memtable_count(t), 2 + sizeof good / sizeof *good);
    mt_table_destroy(t);
}

static mt_entity *with_props(int n)
{
    mt_entity *e = mt_entity_new("p", "r");
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        set_i32(e, name, i);
    }
    return e;
}

static void test_property_count(void **state)
{
    (void)state;
    mt_table *t = new_table();
    expect_insert(t, with_props(MT_MAX_USER_PROPS), 0, "");
    expect_insert(t, with_props(MT_MAX_USER_PROPS + 1), 400, MT_ERR_TOO_MANY_PROPS);

    /* A merge whose result has too many properties fails, at its index,
     * and leaves the row as it was. */
    mt_entity *extra = ent1("p", "r", "zzz", 1);
    mt_entity *other = ent1("p", "other", "v", 1);
    mt_op ops[2] = {{MT_OP_INSERT, other, NULL}, {MT_OP_MERGE, extra, "*"}};
    mt_op_result res[2];
    mt_status st = mt_table_batch(t, ops, 2, res);
    assert_status(st, 400, MT_ERR_TOO_MANY_PROPS);
    assert_int_equal(st.index, 1);
    assert_int_equal(mt_memtable_count(t), 1);
    mt_entity *g = get(t, "p", "r");
    assert_int_equal(g->nprops, MT_MAX_USER_PROPS);
    mt_entity_free(g);
    /* Overwriting an existing property through a merge is fine. */
    mt_entity *same = ent1("p", "r", "p0", 99);
    assert_ok(run1(t, MT_OP_MERGE, same, "*", NULL));
    mt_entity_free(same);
    mt_entity_free(extra);
    mt_entity_free(other);
    mt_table_destroy(t);
}

static void test_property_names(void **state)
{
    (void)state;
    mt_table *t = new_table();
    char name[300];
    memset(name, 'n', 255);
    name[255] = '\0';
    expect_insert(t, ent1("p", "r", name, 1), 0, "");
    name[255] = 'n';
    name[256] = '\0';
    expect_insert(t, ent1("p", "r", name, 1), 400, "PropertyNameTooLong");

    const char *bad[] = {"",           "1abc",      "a-b",          "a b",   "a.b",
                         "odata.etag", "Timestamp", "PartitionKey", "RowKey"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_insert(t, ent1("p", "r", bad[i], 1), 400, "PropertyNameInvalid");
    const char *good[] = {"_x", "a1", "A_b_9", "\xC3\xA9t\xC3\xA9", MT_PROP_DELETED, "ETag2"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        expect_insert(t, ent1("p", "r", good[i], 1), 0, "");
    mt_table_destroy(t);
}

static mt_entity *with_string(const char *unit, size_t count)
{
    size_t ulen = strlen(unit);
    char *s = malloc(ulen * count + 1);
    for (size_t i = 0; i < count; i++)
        memcpy(s + i * ulen, unit, ulen);
    s[ulen * count] = '\0';
    mt_entity *e = mt_entity_new("p", "r");
    set_str(e, "s", s);
    free(s);
    return e;
}

static mt_entity *with_binaries(int n, size_t len)
{
    mt_entity *e = mt_entity_new("p", "r");
    uint8_t *buf = calloc(1, len ? len : 1);
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%d", i);
        mt_value v = mt_v_binary(buf, len);
        mt_entity_set(e, name, &v);
    }
    free(buf);
    return e;
}

static void test_value_sizes(void **state)
{
    (void)state;
    mt_table *t = new_table();
    /* Strings are limited in UTF-16 units: 32 Ki of them. */
    expect_insert(t, with_string("a", 32768), 0, "");
    expect_insert(t, with_string("a", 32769), 400, MT_ERR_PROPERTY_TOO_LARGE);
    expect_insert(t, with_string("\xC3\xA9", 32768), 0, "");
    expect_insert(t, with_string("\xC3\xA9", 32769), 400, MT_ERR_PROPERTY_TOO_LARGE);
    /* An astral character is two units. */
    expect_insert(t, with_string("\xF0\x9F\x98\x80", 16384), 0, "");
    expect_insert(t, with_string("\xF0\x9F\x98\x80", 16385), 400, MT_ERR_PROPERTY_TOO_LARGE);

    expect_insert(t, with_binaries(1, 65536), 0, "");
    expect_insert(t, with_binaries(1, 65537), 400, MT_ERR_PROPERTY_TOO_LARGE);

    /* Each value fits, the entity does not: 1 MiB in the service's own
     * accounting (4 + keys + per property 8 + name + value). */
    expect_insert(t, with_binaries(15, 65536), 0, "");
    expect_insert(t, with_binaries(16, 65536), 400, MT_ERR_ENTITY_TOO_LARGE);

    /* A merge that grows the row past 1 MiB fails too. */
    mt_entity *more = mt_entity_new("p", "r");
    uint8_t *buf = calloc(1, 65536);
    mt_value v = mt_v_binary(buf, 65536);
    mt_entity_set(more, "extra", &v);
    free(buf);
    assert_status(run1(t, MT_OP_MERGE, more, "*", NULL), 400, MT_ERR_ENTITY_TOO_LARGE);
    assert_ok(run1(t, MT_OP_REPLACE, more, "*", NULL));
    mt_entity_free(more);
    mt_table_destroy(t);
}

/* ------------------------------------------------------------------------ */
/* Queries.                                                                  */

static void fill(mt_table *t)
{
    const char *pks[] = {"b", "a", "c"};
    for (int p = 0; p < 3; p++)
        for (int i = 9; i >= 0; i--) {
            char rk[24];
            snprintf(rk, sizeof rk, "r%d", i);
            put(t, pks[p], rk, i, NULL);
        }
}

static void test_query_atomic(void **state)
{
    (void)state;
    mt_table *t = new_table();
    fill(t);
    mt_entity_list l = {0};
    assert_ok(t->ops->query_atomic(t, "b", NULL, &l));
    assert_int_equal(l.n, 10);
    for (size_t i = 0; i < l.n; i++) {
        char rk[24];
        snprintf(rk, sizeof rk, "r%zu", i);
        assert_string_equal(l.v[i]->pk, "b");
        assert_string_equal(l.v[i]->rk, rk);
        assert_non_null(l.v[i]->etag);
    }

    /* Appends, and applies the filter. */
    mt_filter *f = parse("v ge 7 or RowKey eq 'r0'");
    assert_ok(t->ops->query_atomic(t, "c", f, &l));
    assert_int_equal(l.n, 14);
    assert_string_equal(l.v[10]->rk, "r0");
    assert_string_equal(l.v[13]->rk, "r9");
    assert_string_equal(l.v[13]->pk, "c");
    mt_filter_free(f);
    mt_entity_list_clear(&l);

    assert_ok(t->ops->query_atomic(t, "", NULL, &l));
    assert_ok(t->ops->query_atomic(t, "bb", NULL, &l));
    assert_int_equal(l.n, 0);

    /* 14 comparisons plus the partition make 15: allowed; one more not. */
    f = wide_filter(14);
    assert_ok(t->ops->query_atomic(t, "a", f, &l));
    assert_int_equal(l.n, 10);
    mt_filter_free(f);
    mt_entity_list_clear(&l);
    f = wide_filter(15);
    assert_status(t->ops->query_atomic(t, "a", f, &l), 400, MT_ERR_INVALID_INPUT);
    assert_int_equal(l.n, 0);
    mt_filter_free(f);
    mt_table_destroy(t);
}

/* A reader that only reads (share) gets the stored rows themselves, frozen,
 * for the point form too; they keep their content after the table replaces
 * or deletes them, and the last holder frees them. Others get copies. */
static void test_query_atomic_shared(void **state)
{
    (void)state;
    mt_table *t = new_table();
    fill(t);
    mt_entity_list a = {.share = true}, b = {.share = true}, c = {0};
    assert_ok(t->ops->query_atomic(t, "b", NULL, &a));
    mt_filter *f = parse("RowKey eq 'r3' or RowKey eq 'r1'");
    assert_ok(t->ops->query_atomic(t, "b", f, &b));
    assert_ok(t->ops->query_atomic(t, "b", NULL, &c));
    mt_filter_free(f);
    assert_int_equal(a.n, 10);
    assert_int_equal(b.n, 2);
    assert_ptr_equal(b.v[0], a.v[1]);
    assert_ptr_equal(b.v[1], a.v[3]);
    assert_true(a.v[1]->frozen);
    assert_true(a.v[1] != c.v[1]);
    assert_false(c.v[1]->frozen);

    mt_entity *r1 = ent1("b", "r1", "v", 100);
    assert_ok(run1(t, MT_OP_INSERT_OR_REPLACE, r1, NULL, NULL));
    mt_entity_free(r1);
    mt_entity *r3 = ent1("b", "r3", NULL, 0);
    assert_ok(run1(t, MT_OP_DELETE, r3, "*", NULL));
    mt_entity_free(r3);
    assert_int_equal(get_v(t, "b", "r1"), 100);
    assert_int_equal(mt_entity_get(b.v[0], "v")->u.i32, 1);
    assert_int_equal(mt_entity_get(b.v[1], "v")->u.i32, 3);
    mt_entity_list_clear(&a);
    assert_int_equal(mt_entity_get(b.v[1], "v")->u.i32, 3);
    assert_true(b.share); /* clear keeps the reader's promise */
    mt_entity_list_clear(&b);
    mt_entity_list_clear(&c);
    mt_table_destroy(t);
}

/* Every write, a failed one too, gives the table a version no table had;
 * reads leave it. */
static void test_write_versions(void **state)
{
    (void)state;
    mt_table *t = new_table(), *u = new_table();
    uint64_t v0, v1, v2, v3, u0;
    assert_true(mt_table_write_version(t, &v0));
    assert_true(mt_table_write_version(u, &u0));
    assert_true(u0 > v0); /* made later */
    put(t, "a", "r", 1, NULL);
    assert_true(mt_table_write_version(t, &v1));
    assert_true(v1 > u0);
    mt_entity *e = ent1("a", "r", "v", 2);
    assert_status(run1(t, MT_OP_INSERT, e, NULL, NULL), 409, MT_ERR_ENTITY_EXISTS);
    mt_entity_free(e);
    assert_true(mt_table_write_version(t, &v2));
    assert_true(v2 > v1);
    mt_entity_list l = {.share = true};
    assert_ok(t->ops->query_atomic(t, "a", NULL, &l));
    mt_entity_list_clear(&l);
    assert_int_equal(get_v(t, "a", "r"), 1);
    assert_true(mt_table_write_version(t, &v3));
    assert_int_equal(v3, v2);
    /* Emptied at once (its account deleted it): a write too. */
    uint64_t v4;
    mt_memtable_clear(t);
    assert_int_equal(mt_memtable_count(t), 0);
    assert_true(mt_table_write_version(t, &v4));
    assert_true(v4 > v3);
    mt_table_destroy(t);
    mt_table_destroy(u);
}

/* A shared point read lends the stored row itself, frozen; a later write
 * replaces the row in the table without changing the one lent, and the
 * reader's free is the last. A plain retrieve still copies. */
static void test_retrieve_shared(void **state)
{
    (void)state;
    mt_table *t = new_table();
    fill(t);
    mt_entity *lent = NULL, *again = NULL, *copy = NULL, *none = NULL;
    assert_ok(mt_table_retrieve(t, "b", "r1", true, &lent));
    assert_ok(mt_table_retrieve(t, "b", "r1", true, &again));
    assert_ok(mt_table_retrieve(t, "b", "r1", false, &copy));
    assert_status(mt_table_retrieve(t, "b", "nope", true, &none), 404, MT_ERR_NOT_FOUND);
    assert_null(none);
    assert_ptr_equal(lent, again);
    assert_true(lent->frozen);
    assert_true(copy != lent);
    assert_false(copy->frozen);
    char etag[MT_ETAG_MAX];
    snprintf(etag, sizeof etag, "%s", lent->etag);

    mt_entity *r1 = ent1("b", "r1", "v", 100);
    assert_ok(run1(t, MT_OP_INSERT_OR_REPLACE, r1, NULL, NULL));
    mt_entity_free(r1);
    mt_entity_free(again);
    assert_int_equal(get_v(t, "b", "r1"), 100);
    assert_int_equal(mt_entity_get(lent, "v")->u.i32, 1);
    assert_string_equal(lent->etag, etag);
    mt_entity *r1b = ent1("b", "r1", NULL, 0);
    assert_ok(run1(t, MT_OP_DELETE, r1b, "*", NULL));
    mt_entity_free(r1b);
    assert_int_equal(mt_entity_get(lent, "v")->u.i32, 1);
    assert_true(mt_entity_same_content(lent, copy));
    mt_entity_free(lent);
    mt_entity_free(copy);
    mt_table_destroy(t);
}

static void test_stream_order(void **state)
{
    (void)state;
    mt_table *t = new_table();
    /* Inserted out of order, with keys whose UTF-16 order differs from
     * their byte order. */
    const char *keys[] = {"\xEE\x80\x80", "b", "\xF0\x9F\x98\x80", "a", "\xC3\xA9", "", "B",
                          "\xEF\xBF\xBD"};
    const char *sorted[] = {
        "", "B", "a", "b", "\xC3\xA9", "\xF0\x9F\x98\x80", "\xEE\x80\x80", "\xEF\xBF\xBD"};
    size_t n = sizeof keys / sizeof *keys;
    for (size_t i = 0; i < n; i++) {
        put(t, "p", keys[i], (int32_t)i, NULL);
        put(t, keys[i], "r", (int32_t)i, NULL);
    }

    mt_entity_list l = {0};
    assert_ok(mt_table_scan(t, NULL, &l));
    assert_int_equal(l.n, 2 * n);
    /* Partition "p" sits between "b" and U+00E9. */
    for (size_t i = 0, j = 0; i < l.n; i++) {
        if (strcmp(l.v[i]->pk, "p") == 0)
            assert_string_equal(l.v[i]->rk, sorted[j++]);
    }
    mt_entity_list_clear(&l);

    /* From a start key, with a filter. */
    mt_key start = {0};
    mt_key_set(&start, "p", "b");
    mt_filter *f = parse("PartitionKey eq 'p'");
    mt_stream *s = NULL;
    assert_ok(t->ops->query_stream(t, f, &start, &s));
    mt_filter_free(f); /* the stream keeps its own copy */
    mt_key_clear(&start);
    assert_int_equal(drain(s, &l), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(l.v[i]->rk, sorted[3 + i]);
    mt_entity_list_clear(&l);

    /* Filter limit: 15 comparisons allowed in a stream, 16 not. */
    f = wide_filter(15);
    assert_ok(t->ops->query_stream(t, f, NULL, &s));
    assert_int_equal(drain(s, &l), 2 * n);
    mt_filter_free(f);
    mt_entity_list_clear(&l);
    f = wide_filter(16);
    s = (mt_stream *)1;
    assert_status(t->ops->query_stream(t, f, NULL, &s), 400, MT_ERR_INVALID_INPUT);
    assert_null(s);
    mt_filter_free(f);
    mt_table_destroy(t);
}

static mt_entity *next_row(mt_stream *s)
{
    mt_entity *e = NULL;
    assert_ok(s->ops->next(s, &e));
    return e;
}

static void expect_next(mt_stream *s, const char *rk, int32_t v)
{
    mt_entity *e = next_row(s);
    if (!e)
        fail_msg("stream ended, expected %s", rk);
    assert_string_equal(e->rk, rk);
    assert_int_equal(mt_entity_get(e, "v")->u.i32, v);
    mt_entity_free(e);
}

static void test_stream_while_changing(void **state)
{
    (void)state;
    mt_table *t = new_table();
    put(t, "p", "b", 1, NULL);
    put(t, "p", "d", 2, NULL);
    put(t, "p", "f", 3, NULL);
    put(t, "p", "h", 4, NULL);

    mt_stream *s = NULL;
    assert_ok(t->ops->query_stream(t, NULL, NULL, &s));
    expect_next(s, "b", 1);
    expect_next(s, "d", 2);

    put(t, "p", "a", 9, NULL); /* behind the cursor: not seen */
    put(t, "p", "c", 9, NULL); /* behind too */
    put(t, "p", "e", 5, NULL); /* ahead: seen */
    mt_entity *d = ent1("p", "d", NULL, 0);
    assert_ok(run1(t, MT_OP_DELETE, d, "*", NULL)); /* the cursor row */
    mt_entity_free(d);
    mt_entity *f = ent1("p", "f", NULL, 0);
    assert_ok(run1(t, MT_OP_DELETE, f, "*", NULL)); /* ahead: not seen */
    mt_entity_free(f);
    mt_entity *h = ent1("p", "h", "v", 40);
    assert_ok(run1(t, MT_OP_REPLACE, h, "*", NULL)); /* ahead: new version */
    mt_entity_free(h);

    expect_next(s, "e", 5);
    put(t, "p", "d", 7, NULL); /* re-inserted behind: not seen again */
    expect_next(s, "h", 40);
    put(t, "q", "a", 6, NULL); /* a later partition: seen */
    expect_next(s, "a", 6);
    assert_null(next_row(s));
    assert_null(next_row(s));
    s->ops->close(s);
    mt_table_destroy(t);
}

static void test_continuation(void **state)
{
    (void)state;
    mt_table *t = new_table();
    put(t, "p", "a", 1, NULL);
    put(t, "p", "m", 2, NULL);

    mt_stream *s = NULL;
    mt_key k = {0};
    bool more = false;
    assert_ok(t->ops->query_stream(t, NULL, NULL, &s));
    assert_ok(s->ops->continuation(s, &k, &more));
    assert_true(more);
    assert_string_equal(k.pk, "p");
    assert_string_equal(k.rk, "a");
    /* Asking twice reads no further. */
    assert_ok(s->ops->continuation(s, &k, &more));
    assert_string_equal(k.rk, "a");
    expect_next(s, "a", 1);

    assert_ok(s->ops->continuation(s, &k, &more));
    assert_true(more);
    assert_string_equal(k.rk, "m");
    /* A row inserted between the cursor and the reported key is not
     * returned: continuation and next agree. */
    put(t, "p", "g", 3, NULL);
    expect_next(s, "m", 2);

    assert_ok(s->ops->continuation(s, &k, &more));
    assert_false(more);
    put(t, "p", "z", 4, NULL); /* after the end was reported */
    assert_null(next_row(s));
    s->ops->close(s);

    /* Restarting from a continuation key resumes exactly there. */
    assert_ok(t->ops->query_stream(t, NULL, NULL, &s));
    expect_next(s, "a", 1);
    assert_ok(s->ops->continuation(s, &k, &more));
    s->ops->close(s); /* closes with a row read ahead */
    assert_string_equal(k.rk, "g");
    assert_ok(t->ops->query_stream(t, NULL, &k, &s));
    expect_next(s, "g", 3);
    expect_next(s, "m", 2);
    expect_next(s, "z", 4);
    assert_null(next_row(s));
    s->ops->close(s);
    mt_key_clear(&k);

    /* An empty table: no more at once. */
    mt_table *u = mt_memtable_new(mt_rt_pthread(), "empty");
    assert_ok(u->ops->query_stream(u, NULL, NULL, &s));
    assert_ok(s->ops->continuation(s, &k, &more));
    assert_false(more);
    assert_null(next_row(s));
    s->ops->close(s);
    mt_table_destroy(u);
    mt_table_destroy(t);
}

/* ------------------------------------------------------------------------ */
/* Threads.                                                                  */

#define WRITERS 4
#define ROWS_EACH 300

typedef struct writer_arg {
    mt_table *t;
    int id;
    char etags[ROWS_EACH][MT_ETAG_MAX];
} writer_arg;

static void *writer(void *p)
{
    writer_arg *w = p;
    char pk[24];
    snprintf(pk, sizeof pk, "w%d", w->id);
    for (int i = 0; i < ROWS_EACH; i++) {
        char rk[24];
        snprintf(rk, sizeof rk, "%04d", i);
        mt_entity *e = ent1(pk, rk, "v", i);
        mt_op_result r;
        mt_status st = run1(w->t, MT_OP_INSERT, e, NULL, &r);
        mt_entity_free(e);
        if (!mt_is_ok(&st))
            return (void *)1;
        memcpy(w->etags[i], r.etag, MT_ETAG_MAX);
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_threads(void **state)
{
    (void)state;
    mt_table *t = new_table();
    static writer_arg args[WRITERS];
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        args[i].t = t;
        args[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, writer, &args[i]), 0);
    }
    /* Scan while they write: whatever it sees is in order. */
    for (int k = 0; k < 5; k++) {
        mt_entity_list l = {0};
        mt_stream *s = NULL;
        assert_ok(t->ops->query_stream(t, NULL, NULL, &s));
        drain(s, &l);
        mt_entity_list_clear(&l);
    }
    for (int i = 0; i < WRITERS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    assert_int_equal(mt_memtable_count(t), WRITERS * ROWS_EACH);

    /* Every ETag handed out is unique. */
    static char all[WRITERS * ROWS_EACH][MT_ETAG_MAX];
    for (int i = 0; i < WRITERS; i++)
        memcpy(all[i * ROWS_EACH], args[i].etags, sizeof args[i].etags);
    qsort(all, WRITERS * ROWS_EACH, MT_ETAG_MAX, cmp_str);
    for (int i = 1; i < WRITERS * ROWS_EACH; i++)
        assert_string_not_equal(all[i - 1], all[i]);
    mt_table_destroy(t);
}

/* Reads of named rows (what the protocol sends for a batch's rows) return
 * exactly those rows, in key order, each once, and only of the partition. */
static void test_point_key_queries(void **state)
{
    (void)state;
    mt_table *t = mt_memtable_new(mt_rt_pthread(), "pts");
    const char *keys[][2] = {{"p", "a"}, {"p", "b"}, {"p", "c"}, {"q", "a"}};
    for (size_t i = 0; i < 4; i++) {
        mt_entity *e = mt_entity_new(keys[i][0], keys[i][1]);
        mt_op op = {.kind = MT_OP_INSERT, .entity = e};
        mt_op_result res;
        mt_status st = mt_table_batch(t, &op, 1, &res);
        assert_true(mt_is_ok(&st));
        mt_entity_free(e);
    }
    const char *text = "RowKey eq 'c' or RowKey eq 'a' or RowKey eq 'zz' or RowKey eq 'a'";
    mt_filter *f = NULL;
    mt_status st = mt_filter_parse(text, strlen(text), &f);
    assert_true(mt_is_ok(&st));
    mt_entity_list rows = {0};
    st = t->ops->query_atomic(t, "p", f, &rows);
    assert_true(mt_is_ok(&st));
    assert_int_equal(rows.n, 2);
    assert_string_equal(rows.v[0]->rk, "a");
    assert_string_equal(rows.v[1]->rk, "c");
    assert_string_equal(rows.v[0]->pk, "p");
    mt_entity_list_clear(&rows);
    mt_filter_free(f);
    mt_table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_point_key_queries),
        cmocka_unit_test(test_insert_retrieve),
        cmocka_unit_test(test_fresh_etags),
        cmocka_unit_test(test_timestamps_increase),
        cmocka_unit_test(test_etag_is_the_timestamp),
        cmocka_unit_test(test_replace_vs_merge),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_batch_atomic),
        cmocka_unit_test(test_batch_shape),
        cmocka_unit_test(test_key_limits),
        cmocka_unit_test(test_property_count),
        cmocka_unit_test(test_property_names),
        cmocka_unit_test(test_value_sizes),
        cmocka_unit_test(test_query_atomic),
        cmocka_unit_test(test_query_atomic_shared),
        cmocka_unit_test(test_write_versions),
        cmocka_unit_test(test_retrieve_shared),
        cmocka_unit_test(test_stream_order),
        cmocka_unit_test(test_stream_while_changing),
        cmocka_unit_test(test_continuation),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

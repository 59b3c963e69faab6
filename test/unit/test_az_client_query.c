/*
 * test_az_client_query.c -- reading from the Azure backend table against a
 * real Azurite: paging (atomic reads and streams over continuations),
 * filters against what mt_filter_eval says, and awkward keys through every
 * operation.
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

static int key_order(const void *a, const void *b)
{
    const mt_entity *x = *(const mt_entity *const *)a, *y = *(const mt_entity *const *)b;
    return mt_key_cmp(x->pk, x->rk, y->pk, y->rk);
}

static void fill_partition(mt_table *t, const char *pk, int n)
{
    for (int i = 0; i < n; i += MT_BATCH_MAX) {
        mt_entity *rows[MT_BATCH_MAX];
        mt_op ops[MT_BATCH_MAX];
        mt_op_result res[MT_BATCH_MAX];
        int k = n - i < MT_BATCH_MAX ? n - i : MT_BATCH_MAX;
        for (int j = 0; j < k; j++) {
            char rk[16];
            snprintf(rk, sizeof rk, "%06d", i + j);
            rows[j] = ent(pk, rk);
            set_i32(rows[j], "n", i + j);
            ops[j] = (mt_op){.kind = MT_OP_INSERT, .entity = rows[j]};
        }
        assert_ok(mt_table_batch(t, ops, (size_t)k, res));
        for (int j = 0; j < k; j++)
            mt_entity_free(rows[j]);
    }
}

static void assert_sequence(const mt_entity_list *l, size_t from, const char *pk, int first,
                            int count)
{
    for (int i = 0; i < count; i++) {
        const mt_entity *e = l->v[from + (size_t)i];
        char rk[16];
        snprintf(rk, sizeof rk, "%06d", first + i);
        if (strcmp(e->pk, pk) != 0 || strcmp(e->rk, rk) != 0)
            fail_msg("row %zu is %s/%s, want %s/%s", from + (size_t)i, e->pk, e->rk, pk, rk);
    }
}

/* More than one page: atomic reads and streams loop over continuations,
 * and a stream restarts from its continuation key. */
static void test_paging(void **state)
{
    (void)state;
    NEED_AZURITE();
    char name[64];
    mt_table *t = fresh_table(name);
    fill_partition(t, "p", 2500);
    fill_partition(t, "q", 1100);

    mt_entity_list rows = {0};
    assert_ok(t->ops->query_atomic(t, "p", NULL, &rows));
    assert_int_equal(rows.n, 2500);
    assert_sequence(&rows, 0, "p", 0, 2500);
    mt_entity_list_clear(&rows);

    /* A filtered atomic read across pages. */
    mt_filter *f = NULL;
    assert_ok(mt_filter_parse("n ge 1500 and n lt 2100", 23, &f));
    assert_ok(t->ops->query_atomic(t, "p", f, &rows));
    assert_int_equal(rows.n, 600);
    assert_sequence(&rows, 0, "p", 1500, 600);
    mt_entity_list_clear(&rows);

    /* The whole table, in key order. */
    assert_ok(mt_table_scan(t, NULL, &rows));
    assert_int_equal(rows.n, 3600);
    assert_sequence(&rows, 0, "p", 0, 2500);
    assert_sequence(&rows, 2500, "q", 0, 1100);
    mt_entity_list_clear(&rows);

    /* Read 1234 rows, take the continuation, restart from it. */
    mt_stream *s = NULL;
    assert_ok(t->ops->query_stream(t, NULL, NULL, &s));
    for (int i = 0; i < 1234; i++) {
        mt_entity *e = NULL;
        assert_ok(s->ops->next(s, &e));
        assert_non_null(e);
        mt_entity_list_push(&rows, e);
    }
    mt_key k = {0};
    bool more;
    assert_ok(s->ops->continuation(s, &k, &more));
    assert_true(more);
    assert_string_equal(k.rk, "001234");
    s->ops->close(s);
    assert_ok(t->ops->query_stream(t, NULL, &k, &s));
    mt_entity *e;
    for (;;) {
        assert_ok(s->ops->next(s, &e));
        if (!e)
            break;
        mt_entity_list_push(&rows, e);
    }
    s->ops->close(s);
    mt_key_clear(&k);
    assert_int_equal(rows.n, 3600);
    assert_sequence(&rows, 0, "p", 0, 2500);
    assert_sequence(&rows, 2500, "q", 0, 1100);
    mt_entity_list_clear(&rows);

    /* A filtered stream from a start key in the other partition. */
    mt_key_set(&k, "q", "000100");
    assert_ok(t->ops->query_stream(t, f, &k, &s));
    for (;;) {
        assert_ok(s->ops->next(s, &e));
        if (!e)
            break;
        mt_entity_list_push(&rows, e);
    }
    s->ops->close(s);
    assert_int_equal(rows.n, 0); /* q has n < 1100 */
    mt_key_set(&k, "p", "002000");
    assert_ok(t->ops->query_stream(t, f, &k, &s));
    for (;;) {
        assert_ok(s->ops->next(s, &e));
        if (!e)
            break;
        mt_entity_list_push(&rows, e);
    }
    s->ops->close(s);
    assert_int_equal(rows.n, 100);
    assert_sequence(&rows, 0, "p", 2000, 100);
    mt_entity_list_clear(&rows);
    mt_key_clear(&k);
    mt_filter_free(f);

    /* Small pages from a client of its own: 7 rows a page. */
    az_connstr cs = connstr_for(az.a.port);
    az_client_opts o = {.page_size = 7};
    mt_status st;
    mt_table *small = az_table_open(&cs, name, &o, &st);
    assert_ok(st);
    az_connstr_clear(&cs);
    assert_ok(mt_filter_parse("n lt 30", 7, &f));
    assert_ok(mt_table_scan(small, f, &rows));
    assert_int_equal(rows.n, 60);
    assert_sequence(&rows, 0, "p", 0, 30);
    assert_sequence(&rows, 30, "q", 0, 30);
    mt_entity_list_clear(&rows);
    assert_ok(small->ops->query_atomic(small, "q", f, &rows));
    assert_int_equal(rows.n, 30);
    mt_entity_list_clear(&rows);
    mt_filter_free(f);
    mt_table_destroy(small);
    mt_table_destroy(t);
}

/* Filters: what comes back is what mt_filter_eval says of every row. */
static void test_filters(void **state)
{
    (void)state;
    NEED_AZURITE();
    char name[64];
    mt_table *t = fresh_table(name);
    uint8_t g1[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    for (int i = 0; i < 30; i++) {
        char pk[8], rk[8];
        snprintf(pk, sizeof pk, "f%d", i % 3);
        snprintf(rk, sizeof rk, "r%02d", i);
        mt_entity *e = ent(pk, rk);
        set_i32(e, "i", i);
        mt_value v = mt_v_i64((int64_t)i * 10000000000LL);
        mt_entity_set(e, "big", &v);
        v = mt_v_dbl(i / 4.0);
        mt_entity_set(e, "dbl", &v);
        v = mt_v_bool(i % 2 == 0);
        mt_entity_set(e, "even", &v);
        set_str(e, "name", i % 5 == 0 ? "O'Hara" : i % 5 == 1 ? "ünïcode" : "plain");
        v = mt_v_datetime(638000000000000000LL + (int64_t)i * 10000000LL);
        mt_entity_set(e, "when", &v);
        if (i % 7 == 0) {
            v = mt_v_guid(g1);
            mt_entity_set(e, "g", &v);
        }
        if (i % 4 == 0) {
            uint8_t b[2] = {(uint8_t)i, 0xff};
            v = mt_v_binary(b, 2);
            mt_entity_set(e, "bin", &v);
        }
        assert_ok(one(t, MT_OP_INSERT, e, NULL, NULL));
        mt_entity_free(e);
    }
    mt_entity_list all = {0};
    assert_ok(mt_table_scan(t, NULL, &all));
    assert_int_equal(all.n, 30);
    static const char *filters[] = {
        "i lt 10",
        "i ge 5 and i le 7",
        "(i eq 1) or (i eq 29) or not (i lt 28)",
        "big gt 100000000000L",
        "dbl ge 2.5",
        "even eq true and i gt 20",
        "name eq 'O''Hara'",
        "name eq 'ünïcode'",
        "name gt 'p'",
        "PartitionKey eq 'f1' and RowKey ge 'r10'",
        "RowKey lt 'r05' or RowKey gt 'r25'",
        "when ge datetime'2022-10-11T00:00:10Z'",
        "g eq guid'01020304-0506-0708-090a-0b0c0d0e0f10'",
        "bin eq X'08ff'",
        "missing eq 1",
        "not (name eq 'plain')",
        "dbl gt 3", /* an Int32 literal against Doubles: nothing, in Azure */
    };
    for (size_t k = 0; k < sizeof filters / sizeof filters[0]; k++) {
        mt_filter *f = NULL;
        assert_ok(mt_filter_parse(filters[k], strlen(filters[k]), &f));
        mt_entity_list got = {0};
        mt_status st = mt_table_scan(t, f, &got);
        if (!mt_is_ok(&st))
            fail_msg("%s: %d %s %s", filters[k], st.http, st.code, st.message);
        size_t want = 0;
        for (size_t i = 0; i < all.n; i++)
            if (mt_filter_eval(f, all.v[i])) {
                if (want >= got.n || strcmp(got.v[want]->rk, all.v[i]->rk) != 0 ||
                    strcmp(got.v[want]->pk, all.v[i]->pk) != 0)
                    fail_msg("%s: row %s/%s missing or out of order", filters[k], all.v[i]->pk,
                             all.v[i]->rk);
                want++;
            }
        if (want != got.n)
            fail_msg("%s: %zu rows, want %zu", filters[k], got.n, want);
        mt_entity_list_clear(&got);
        mt_filter_free(f);
    }

    /* 15 comparisons: alone they go to the service; with a start key the
     * range goes alone and the filter is applied here. */
    const char *wide = "i eq 0 or i eq 1 or i eq 2 or i eq 3 or i eq 4 or i eq 5 or i eq 6 or "
                       "i eq 7 or i eq 8 or i eq 9 or i eq 10 or i eq 11 or i eq 12 or i eq 13 "
                       "or i eq 29";
    mt_filter *f = NULL;
    assert_ok(mt_filter_parse(wide, strlen(wide), &f));
    assert_int_equal(mt_filter_count_comparisons(f), 15);
    mt_entity_list got = {0};
    assert_ok(mt_table_scan(t, f, &got));
    assert_int_equal(got.n, 15);
    mt_entity_list_clear(&got);
    mt_key k = {0};
    mt_key_set(&k, "f1", "r10");
    mt_stream *s;
    assert_ok(t->ops->query_stream(t, f, &k, &s));
    mt_entity *e;
    for (;;) {
        assert_ok(s->ops->next(s, &e));
        if (!e)
            break;
        assert_true(mt_key_cmp(e->pk, e->rk, "f1", "r10") >= 0);
        mt_entity_list_push(&got, e);
    }
    s->ops->close(s);
    /* i in {10, 13} (f1), {2, 5, 8, 11, 29} (f2) */
    assert_int_equal(got.n, 7);
    mt_entity_list_clear(&got);
    mt_key_clear(&k);
    /* The atomic read counts its partition pin: 16 is refused. */
    assert_status(t->ops->query_atomic(t, "f0", f, &got), 400, MT_ERR_INVALID_INPUT);
    mt_filter_free(f);
    mt_entity_list_clear(&all);
    mt_table_destroy(t);
}

/* Keys with quotes, URL-reserved characters and non-ASCII, through every
 * path (body keys, URL keys, batch, filters), in the service's order. */
static void test_keys(void **state)
{
    (void)state;
    NEED_AZURITE();
    char name[64];
    mt_table *t = fresh_table(name);
    static const char *pks[] = {"pk'quote", "plain", "ключ 😀"};
    static const char *rks[] = {
        "",           "O'Brien''s", "a b+c&d=e", "(paren),comma", "colon:semi;",
        "percent%25", "ünïcødé",    "😀 astral",  "\xef\xbf\xbd",  "~tilde!*$@",
    };
    size_t npk = sizeof pks / sizeof pks[0], nrk = sizeof rks / sizeof rks[0];
    for (size_t p = 0; p < npk; p++) {
        /* Half inserted one by one, half in one batch. */
        mt_entity *rows[16];
        mt_op ops[16];
        mt_op_result res[16];
        size_t nb = 0;
        for (size_t r = 0; r < nrk; r++) {
            mt_entity *e = ent(pks[p], rks[r]);
            set_str(e, "k", rks[r]);
            if (r % 2)
                assert_ok(one(t, MT_OP_INSERT, e, NULL, NULL));
            else
                rows[nb] = e, ops[nb] = (mt_op){.kind = MT_OP_INSERT, .entity = e}, nb++;
            if (r % 2)
                mt_entity_free(e);
        }
        assert_ok(mt_table_batch(t, ops, nb, res));
        for (size_t i = 0; i < nb; i++)
            mt_entity_free(rows[i]);
    }
    /* Each by retrieve; replace, merge and delete address it by URL. */
    for (size_t p = 0; p < npk; p++)
        for (size_t r = 0; r < nrk; r++) {
            mt_entity *got = NULL;
            mt_status st = t->ops->retrieve(t, pks[p], rks[r], &got);
            if (!mt_is_ok(&st))
                fail_msg("retrieve '%s'/'%s': %d %s", pks[p], rks[r], st.http, st.message);
            assert_string_equal(got->pk, pks[p]);
            assert_string_equal(got->rk, rks[r]);
            mt_entity *e = ent(pks[p], rks[r]);
            set_i32(e, "v", 1);
            mt_op_result res;
            st = one(t, MT_OP_REPLACE, e, got->etag, &res);
            if (!mt_is_ok(&st))
                fail_msg("replace '%s'/'%s': %d %s", pks[p], rks[r], st.http, st.message);
            assert_ok(one(t, MT_OP_MERGE, e, res.etag, &res));
            mt_entity_free(got);
            mt_entity_free(e);
        }
    /* Stream order is mt_key_cmp's order (UTF-16 code units). */
    mt_entity_list all = {0};
    assert_ok(mt_table_scan(t, NULL, &all));
    assert_int_equal(all.n, npk * nrk);
    mt_entity_list sorted = {0};
    for (size_t i = 0; i < all.n; i++)
        mt_entity_list_push(&sorted, mt_entity_clone(all.v[i]));
    qsort(sorted.v, sorted.n, sizeof *sorted.v, key_order);
    for (size_t i = 0; i < all.n; i++)
        if (strcmp(all.v[i]->pk, sorted.v[i]->pk) || strcmp(all.v[i]->rk, sorted.v[i]->rk))
            fail_msg("order differs at %zu: '%s'/'%s' vs '%s'/'%s'", i, all.v[i]->pk, all.v[i]->rk,
                     sorted.v[i]->pk, sorted.v[i]->rk);
    mt_entity_list_clear(&sorted);
    /* A stream started at each key starts exactly there. */
    for (size_t i = 0; i < all.n; i += 7) {
        mt_key k = {0};
        mt_key_set(&k, all.v[i]->pk, all.v[i]->rk);
        mt_stream *s;
        assert_ok(t->ops->query_stream(t, NULL, &k, &s));
        mt_entity *e = NULL;
        assert_ok(s->ops->next(s, &e));
        assert_non_null(e);
        assert_string_equal(e->rk, all.v[i]->rk);
        mt_entity_free(e);
        s->ops->close(s);
        mt_key_clear(&k);
    }
    /* Deletes by URL key, alone and in a batch per partition. */
    for (size_t p = 0; p < npk; p++) {
        mt_entity *rows[16];
        mt_op ops[16];
        mt_op_result res[16];
        for (size_t r = 0; r < nrk; r++) {
            rows[r] = ent(pks[p], rks[r]);
            ops[r] = (mt_op){.kind = r % 2 ? MT_OP_DELETE : MT_OP_DELETE_IF_EXISTS,
                             .entity = rows[r],
                             .if_match = "*"};
        }
        mt_status st = mt_table_batch(t, ops, nrk, res);
        if (!mt_is_ok(&st))
            fail_msg("delete batch in '%s': %d %s index %d", pks[p], st.http, st.message, st.index);
        for (size_t r = 0; r < nrk; r++)
            mt_entity_free(rows[r]);
    }
    mt_entity_list_clear(&all);
    assert_ok(mt_table_scan(t, NULL, &all));
    assert_int_equal(all.n, 0);
    mt_table_destroy(t);
}

/* Reads every row of a keys stream (the whole table from start). */
static void read_keys(mt_table *t, const mt_key *start, mt_entity_list *out)
{
    mt_stream *s = NULL;
    assert_ok(mt_table_keys(t, start, &s));
    for (;;) {
        mt_entity *e = NULL;
        assert_ok(s->ops->next(s, &e));
        if (!e)
            break;
        mt_entity_list_push(out, e);
    }
    s->ops->close(s);
}

/* Keys streams ($select of the two keys): every row, in key order, across
 * pages and from a start key, each with its keys and its ETag and no
 * property; the ETag is the row's, good for a conditional delete. */
static void test_keys_only(void **state)
{
    (void)state;
    NEED_AZURITE();
    char name[64];
    mt_table *t = fresh_table(name);
    assert_non_null(t->ops->query_keys);
    fill_partition(t, "p", 1100);
    fill_partition(t, "q", 30);

    mt_entity_list all = {0}, keys = {0};
    assert_ok(mt_table_scan(t, NULL, &all));
    read_keys(t, NULL, &keys);
    assert_int_equal(keys.n, 1130);
    assert_sequence(&keys, 0, "p", 0, 1100);
    assert_sequence(&keys, 1100, "q", 0, 30);
    for (size_t i = 0; i < keys.n; i++) {
        const mt_entity *e = keys.v[i];
        if (e->nprops != 0)
            fail_msg("row %s/%s has %zu properties", e->pk, e->rk, e->nprops);
        assert_non_null(e->etag);
        assert_string_equal(e->etag, all.v[i]->etag);
    }
    mt_entity_list_clear(&keys);

    mt_key k = {0};
    mt_key_set(&k, "p", "001050");
    read_keys(t, &k, &keys);
    mt_key_clear(&k);
    assert_int_equal(keys.n, 80);
    assert_sequence(&keys, 0, "p", 1050, 50);
    assert_sequence(&keys, 50, "q", 0, 30);

    /* The ETag read deletes the row; once the row changed, it does not. */
    mt_entity *row = keys.v[0];
    assert_ok(one(t, MT_OP_DELETE, row, row->etag, NULL));
    row = keys.v[1];
    assert_ok(one(t, MT_OP_REPLACE, row, "*", NULL));
    assert_status(one(t, MT_OP_DELETE, row, row->etag, NULL), 412, MT_ERR_CONDITION);
    mt_entity_list_clear(&keys);
    mt_entity_list_clear(&all);

    /* Small pages from a client of its own: 7 rows a page. */
    az_connstr cs = connstr_for(az.a.port);
    az_client_opts o = {.page_size = 7};
    mt_status st;
    mt_table *small = az_table_open(&cs, name, &o, &st);
    assert_ok(st);
    az_connstr_clear(&cs);
    read_keys(small, NULL, &keys);
    assert_int_equal(keys.n, 1129);
    assert_sequence(&keys, 0, "p", 0, 1050);
    assert_sequence(&keys, 1050, "p", 1051, 49);
    assert_sequence(&keys, 1099, "q", 0, 30);
    mt_entity_list_clear(&keys);
    mt_table_destroy(small);
    mt_table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paging),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_keys_only),
    };
    return ut_az_run("azurite: queries", tests, sizeof tests / sizeof tests[0]);
}

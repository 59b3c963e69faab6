/*
 * test_px_metrics.c -- the proxy's Prometheus counters: request series and
 * their labels, the "other" buckets for what is not on the fixed lists, the
 * backend decorator (forwarding, calls per kind, errors, a cumulative
 * histogram), request durations per operation and phase, the totals
 * /admin/v1/status reports, the build's version, exact counts under
 * concurrent increments, and output that is valid text exposition format.
 */
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "px.h"

/* ------------------------------------------------------------------------ */
/* Helpers.                                                                  */

static char *render(px_metrics *m)
{
    mt_buf b = {0};
    px_metrics_render(m, &b);
    char *s = mt_buf_take(&b, NULL);
    assert_non_null(s);
    return s;
}

/* The value of the sample whose name and labels are exactly series, or -1
 * when the text has no such line. */
static double value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line);
        if ((size_t)(end - line) > n && strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = *end ? end + 1 : end;
    }
    return -1;
}

/* Checks the whole text against the exposition format: every line a
 * comment (# HELP or # TYPE) or `name{labels} value`, every sample after a
 * TYPE line for its family (a histogram's family without _bucket, _sum or
 * _count), HELP before TYPE, no family typed twice. Returns the number of
 * samples. */
static int check_exposition(const char *text)
{
    regex_t sample, help, type;
    assert_int_equal(regcomp(&sample,
                             "^([a-zA-Z_:][a-zA-Z0-9_:]*)"
                             "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\""
                             "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\")*\\})?"
                             " ([0-9]+(\\.[0-9]+)?|\\+Inf)$",
                             REG_EXTENDED),
                     0);
    assert_int_equal(regcomp(&help, "^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]*$", REG_EXTENDED), 0);
    assert_int_equal(regcomp(&type,
                             "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) "
                             "(counter|gauge|histogram|summary|untyped)$",
                             REG_EXTENDED),
                     0);

    char typed[32][128], kinds[32][16], helped[128] = "";
    size_t ntyped = 0;
    int samples = 0;
    char *copy = strdup(text);
    assert_non_null(copy);
    assert_true(copy[0] == '\0' || copy[strlen(copy) - 1] == '\n');
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        regmatch_t g[3];
        if (line[0] == '#') {
            if (regexec(&help, line, 2, g, 0) == 0) {
                snprintf(helped, sizeof helped, "%.*s", (int)(g[1].rm_eo - g[1].rm_so),
                         line + g[1].rm_so);
                continue;
            }
            if (regexec(&type, line, 3, g, 0) != 0)
                fail_msg("bad comment line: %s", line);
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(g[1].rm_eo - g[1].rm_so), line + g[1].rm_so);
            assert_string_equal(name, helped); /* its HELP came just before */
            for (size_t i = 0; i < ntyped; i++)
                if (strcmp(typed[i], name) == 0)
                    fail_msg("typed twice: %s", name);
            assert_true(ntyped < 32);
            strcpy(typed[ntyped], name);
            snprintf(kinds[ntyped], sizeof kinds[ntyped], "%.*s", (int)(g[2].rm_eo - g[2].rm_so),
                     line + g[2].rm_so);
            ntyped++;
            continue;
        }
        if (regexec(&sample, line, 2, g, 0) != 0)
            fail_msg("bad sample line: %s", line);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(g[1].rm_eo - g[1].rm_so), line + g[1].rm_so);
        bool found = false;
        for (size_t i = 0; i < ntyped && !found; i++) {
            size_t k = strlen(typed[i]);
            if (strcmp(name, typed[i]) == 0)
                found = true;
            else if (strcmp(kinds[i], "histogram") == 0 && strncmp(name, typed[i], k) == 0 &&
                     (strcmp(name + k, "_bucket") == 0 || strcmp(name + k, "_sum") == 0 ||
                      strcmp(name + k, "_count") == 0))
                found = true;
        }
        if (!found)
            fail_msg("sample without a TYPE line before it: %s", line);
        samples++;
    }
    free(copy);
    regfree(&sample);
    regfree(&help);
    regfree(&type);
    return samples;
}

static void insert_row(mt_table *t, const char *pk, const char *rk)
{
    mt_entity *e = mt_entity_new(pk, rk);
    mt_value v = mt_v_i32(7);
    mt_entity_set(e, "n", &v);
    mt_op op = {.kind = MT_OP_INSERT, .entity = e};
    mt_op_result r;
    mt_status st = mt_table_batch(t, &op, 1, &r);
    assert_int_equal(st.http, 0);
    assert_int_equal(r.http, 201);
    assert_true(r.etag[0] != '\0');
    mt_entity_free(e);
}

/* ------------------------------------------------------------------------ */
/* Requests.                                                                 */

static void test_requests_are_counted_with_their_labels(void **state)
{
    (void)state;
    px_metrics *m = px_metrics_new();
    assert_non_null(m);
    for (int i = 0; i < 3; i++)
        px_metrics_request(m, "insert", 201, MT_PHASE_PREFER_NEW, 1000);
    px_metrics_request(m, "insert", 409, MT_PHASE_PREFER_NEW, 1000);
    px_metrics_request(m, "insert", 201, MT_PHASE_PREFER_OLD, 1000);
    px_metrics_request(m, "get_entity", 404, MT_PHASE_USE_OLD_HIDE_METADATA, 1000);
    px_metrics_request(m, "batch", 503, MT_PHASE_USE_NEW_HIDE_METADATA, 1000);
    px_metrics_request(m, "batch", 500, MT_PHASE_USE_NEW_HIDE_METADATA, 1000);
    char *s = render(m);

    assert_true(value_of(s, "mtable_requests_total{operation=\"insert\",status=\"201\","
                            "phase=\"prefer_new\"}") == 3);
    assert_true(value_of(s, "mtable_requests_total{operation=\"insert\",status=\"409\","
                            "phase=\"prefer_new\"}") == 1);
    assert_true(value_of(s, "mtable_requests_total{operation=\"insert\",status=\"201\","
                            "phase=\"prefer_old\"}") == 1);
    assert_true(value_of(s, "mtable_requests_total{operation=\"get_entity\",status=\"404\","
                            "phase=\"use_old_hide_metadata\"}") == 1);
    assert_true(value_of(s, "mtable_requests_total{operation=\"batch\",status=\"503\","
                            "phase=\"use_new_hide_metadata\"}") == 1);
    /* Zero series are left out. */
    assert_true(value_of(s, "mtable_requests_total{operation=\"insert\",status=\"201\","
                            "phase=\"use_new_with_tombstones\"}") == -1);
    assert_null(strstr(s, "operation=\"merge\""));

    /* Errors are 5xx only; an operation seen without errors shows a zero. */
    assert_true(value_of(s, "mtable_request_errors_total{operation=\"batch\"}") == 2);
    assert_true(value_of(s, "mtable_request_errors_total{operation=\"insert\"}") == 0);
    assert_true(value_of(s, "mtable_request_errors_total{operation=\"get_entity\"}") == 0);
    assert_true(value_of(s, "mtable_request_errors_total{operation=\"merge\"}") == -1);

    assert_true(check_exposition(s) > 0);
    free(s);
    px_metrics_free(m);
}

static void test_unknown_operation_and_status_go_to_other(void **state)
{
    (void)state;
    px_metrics *m = px_metrics_new();
    px_metrics_request(m, "frobnicate", 200, MT_PHASE_PREFER_OLD, 1000);
    px_metrics_request(m, NULL, 200, MT_PHASE_PREFER_OLD, 1000);
    px_metrics_request(m, "other", 200, MT_PHASE_PREFER_OLD, 1000);
    px_metrics_request(m, "insert", 418, MT_PHASE_PREFER_OLD, 1000);
    px_metrics_request(m, "insert", 0, MT_PHASE_PREFER_OLD, 1000);
    px_metrics_request(m, "insert", 502, MT_PHASE_PREFER_OLD, 1000);
    px_metrics_request(m, "Insert", 504, MT_PHASE_PREFER_OLD, 1000); /* names are exact */
    char *s = render(m);

    assert_true(value_of(s, "mtable_requests_total{operation=\"other\",status=\"200\","
                            "phase=\"prefer_old\"}") == 3);
    assert_true(value_of(s, "mtable_requests_total{operation=\"insert\",status=\"other\","
                            "phase=\"prefer_old\"}") == 3);
    assert_true(value_of(s, "mtable_requests_total{operation=\"other\",status=\"other\","
                            "phase=\"prefer_old\"}") == 1);
    assert_null(strstr(s, "frobnicate"));
    assert_null(strstr(s, "418"));
    /* A bucketed status still counts as an error when it is 5xx. */
    assert_true(value_of(s, "mtable_request_errors_total{operation=\"insert\"}") == 1);
    assert_true(value_of(s, "mtable_request_errors_total{operation=\"other\"}") == 1);
    assert_true(check_exposition(s) > 0);
    free(s);
    px_metrics_free(m);
}

static void test_empty_metrics_render_valid_text(void **state)
{
    (void)state;
    px_metrics *m = px_metrics_new();
    char *s = render(m);
    assert_int_equal(check_exposition(s), 1); /* only mtable_build_info */
    assert_non_null(strstr(s, "# TYPE mtable_requests_total counter\n"));
    assert_non_null(strstr(s, "# TYPE mtable_request_duration_seconds histogram\n"));
    assert_non_null(strstr(s, "# TYPE mtable_backend_call_seconds histogram\n"));
    free(s);
    px_metrics_free(m);

    /* NULL is tolerated where a proxy may run without metrics. */
    px_metrics_request(NULL, "insert", 201, MT_PHASE_PREFER_OLD, 1000);
    mt_buf b = {0};
    px_metrics_render(NULL, &b);
    assert_int_equal(b.len, 0);
    px_metrics_free(NULL);
}

/* Durations land in the bucket whose bound is the first at or above them,
 * per operation and phase; _count agrees with the request series. */
static void test_request_durations_by_operation_and_phase(void **state)
{
    (void)state;
    px_metrics *m = px_metrics_new();
    px_metrics_request(m, "insert", 204, MT_PHASE_PREFER_OLD, 50000);  /* 50 us */
    px_metrics_request(m, "insert", 204, MT_PHASE_PREFER_OLD, 100000); /* 100 us: on the bound */
    px_metrics_request(m, "insert", 409, MT_PHASE_PREFER_OLD, 300000); /* 300 us */
    px_metrics_request(m, "insert", 204, MT_PHASE_PREFER_OLD, 2000000000);  /* 2 s */
    px_metrics_request(m, "insert", 204, MT_PHASE_PREFER_OLD, 20000000000); /* 20 s */
    px_metrics_request(m, "insert", 204, MT_PHASE_PREFER_NEW, 7000000);     /* 7 ms */
    char *s = render(m);

#define OLD_INSERT "operation=\"insert\",phase=\"prefer_old\""
    static const struct {
        const char *le;
        double want;
    } cum[] = {{"0.0001", 2}, {"0.00025", 2}, {"0.0005", 3}, {"0.001", 3}, {"1", 3},
               {"2.5", 4},    {"5", 4},       {"10", 4},     {"+Inf", 5}};
    for (size_t i = 0; i < sizeof cum / sizeof *cum; i++) {
        char series[160];
        snprintf(series, sizeof series,
                 "mtable_request_duration_seconds_bucket{" OLD_INSERT ",le=\"%s\"}", cum[i].le);
        if (value_of(s, series) != cum[i].want)
            fail_msg("%s: %g, want %g", series, value_of(s, series), cum[i].want);
    }
    assert_true(value_of(s, "mtable_request_duration_seconds_count{" OLD_INSERT "}") == 5);
    assert_true(value_of(s, "mtable_request_duration_seconds_sum{" OLD_INSERT "}") == 22.00045);
    assert_true(value_of(s, "mtable_request_duration_seconds_count{operation=\"insert\","
                            "phase=\"prefer_new\"}") == 1);
    assert_true(value_of(s, "mtable_request_duration_seconds_bucket{operation=\"insert\","
                            "phase=\"prefer_new\",le=\"0.005\"}") == 0);
    assert_true(value_of(s, "mtable_request_duration_seconds_bucket{operation=\"insert\","
                            "phase=\"prefer_new\",le=\"0.01\"}") == 1);
    /* The requests behind the histogram: 4 answered 204, 1 answered 409. */
    assert_true(value_of(s, "mtable_requests_total{operation=\"insert\",status=\"204\","
                            "phase=\"prefer_old\"}") == 4);
    /* Nothing for a phase or an operation that saw no request. */
    assert_null(strstr(s, "mtable_request_duration_seconds_count{operation=\"insert\","
                          "phase=\"use_old_hide_metadata\"}"));
    assert_null(strstr(s, "operation=\"merge\""));
#undef OLD_INSERT
    assert_true(check_exposition(s) > 0);
    free(s);
    px_metrics_free(m);
}

/* The totals are the sums of the request series: every request, and those
 * answered 400 or more, whether or not their status has its own label. */
static void test_totals_are_the_sums_of_the_series(void **state)
{
    (void)state;
    px_metrics *m = px_metrics_new();
    uint64_t n = 99, failed = 99;
    px_metrics_totals(m, &n, &failed);
    assert_true(n == 0 && failed == 0);
    px_metrics_request(m, "insert", 201, MT_PHASE_PREFER_OLD, 1000);
    px_metrics_request(m, "insert", 204, MT_PHASE_PREFER_NEW, 1000);
    px_metrics_request(m, "get_entity", 304, MT_PHASE_PREFER_NEW, 1000);
    px_metrics_request(m, "get_entity", 404, MT_PHASE_PREFER_NEW, 1000);
    px_metrics_request(m, "batch", 503, MT_PHASE_PREFER_NEW, 1000);
    px_metrics_request(m, "frobnicate", 418, MT_PHASE_PREFER_NEW, 1000); /* other, failed */
    px_metrics_request(m, "insert", 207, MT_PHASE_PREFER_NEW, 1000);     /* other, not */
    px_metrics_request(m, "insert", 0, MT_PHASE_PREFER_NEW, 1000);       /* other, not */
    px_metrics_totals(m, &n, &failed);
    assert_true(n == 8);
    assert_true(failed == 3);
    px_metrics_totals(NULL, &n, &failed);
    assert_true(n == 0 && failed == 0);
    px_metrics_free(m);
}

static void test_build_info_names_the_version(void **state)
{
    (void)state;
    px_metrics *m = px_metrics_new();
    char *s = render(m);
    assert_non_null(strstr(s, "# TYPE mtable_build_info gauge\n"));
    const char *line = strstr(s, "\nmtable_build_info{version=\"");
    assert_non_null(line);
    const char *val = line + strlen("\nmtable_build_info{version=\"");
    assert_true(*val >= '0' && *val <= '9'); /* meson's project version */
    assert_non_null(strstr(val, "\"} 1\n"));
    assert_true(check_exposition(s) == 1);
    free(s);
    px_metrics_free(m);
}

/* ------------------------------------------------------------------------ */
/* The backend decorator.                                                    */

static void test_table_forwards_and_counts_per_kind(void **state)
{
    (void)state;
    px_metrics *m = px_metrics_new();
    mt_table *inner = mt_memtable_new(mt_rt_pthread(), "t");
    mt_table *t = px_metrics_table(m, inner, 1);
    assert_non_null(t);
    assert_null(px_metrics_table(m, inner, 2));
    assert_null(px_metrics_table(m, inner, -1));

    insert_row(t, "p", "a");
    insert_row(t, "p", "b");
    assert_int_equal(mt_memtable_count(inner), 2);

    mt_entity_list l = {0};
    mt_status st = t->ops->query_atomic(t, "p", NULL, &l);
    assert_int_equal(st.http, 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0]->rk, "a");
    mt_entity_list_clear(&l);

    mt_stream *s = NULL;
    st = t->ops->query_stream(t, NULL, NULL, &s);
    assert_int_equal(st.http, 0);
    mt_key k = {0};
    bool more = false;
    st = s->ops->continuation(s, &k, &more);
    assert_int_equal(st.http, 0);
    assert_true(more);
    assert_string_equal(k.rk, "a");
    mt_key_clear(&k);
    int rows = 0;
    for (;;) {
        mt_entity *e = NULL;
        st = s->ops->next(s, &e);
        assert_int_equal(st.http, 0);
        if (!e)
            break;
        rows++;
        mt_entity_free(e);
    }
    assert_int_equal(rows, 2);
    s->ops->close(s);

    mt_entity *e = NULL;
    st = t->ops->retrieve(t, "p", "b", &e);
    assert_int_equal(st.http, 0);
    assert_non_null(e);
    assert_true(mt_entity_get(e, "n")->u.i32 == 7);
    mt_entity_free(e);
    e = NULL;
    st = t->ops->retrieve(t, "p", "missing", &e);
    assert_int_equal(st.http, 404);
    assert_string_equal(st.code, MT_ERR_NOT_FOUND);
    assert_null(e);

    /* A failing batch is forwarded with its status, and a 409 is no error. */
    mt_entity *dup = mt_entity_new("p", "a");
    mt_op op = {.kind = MT_OP_INSERT, .entity = dup};
    mt_op_result r;
    st = mt_table_batch(t, &op, 1, &r);
    assert_int_equal(st.http, 409);
    mt_entity_free(dup);

    char *text = render(m);
    assert_true(value_of(text, "mtable_backend_calls_total{side=\"new\",call=\"batch\"}") == 3);
    assert_true(value_of(text, "mtable_backend_calls_total{side=\"new\",call=\"query_atomic\"}") ==
                1);
    assert_true(value_of(text, "mtable_backend_calls_total{side=\"new\",call=\"query_stream\"}") ==
                1);
    /* Two rows and the end of the stream; the continuation is not a call. */
    assert_true(value_of(text, "mtable_backend_calls_total{side=\"new\",call=\"stream_next\"}") ==
                3);
    assert_true(value_of(text, "mtable_backend_calls_total{side=\"new\",call=\"retrieve\"}") == 2);
    /* Rows read: what each kind of read returned (a 404 returns none). */
    assert_true(value_of(text, "mtable_backend_rows_total{side=\"new\",call=\"query_atomic\"}") ==
                2);
    assert_true(value_of(text, "mtable_backend_rows_total{side=\"new\",call=\"stream_next\"}") ==
                2);
    assert_true(value_of(text, "mtable_backend_rows_total{side=\"new\",call=\"retrieve\"}") == 1);
    assert_true(value_of(text, "mtable_backend_rows_total{side=\"new\",call=\"batch\"}") == -1);
    assert_true(value_of(text, "mtable_backend_errors_total{side=\"new\",call=\"retrieve\"}") == 0);
    assert_true(value_of(text, "mtable_backend_errors_total{side=\"new\",call=\"batch\"}") == 0);
    assert_null(strstr(text, "side=\"old\""));
    assert_true(check_exposition(text) > 0);
    free(text);

    mt_table_destroy(t); /* frees only the decorator */
    assert_int_equal(mt_memtable_count(inner), 2);
    mt_table_destroy(inner);
    px_metrics_free(m);
}

/* A backend that fails with whatever status it is told to. */
typedef struct failing {
    mt_table base;
    int http;
} failing;

static mt_status failing_status(mt_table *t)
{
    failing *f = (failing *)t;
    return mt_error(f->http, f->http >= 500 ? MT_ERR_SERVER_BUSY : MT_ERR_NOT_FOUND, "told to");
}
static mt_status failing_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *res)
{
    (void)ops;
    (void)n;
    (void)res;
    return failing_status(t);
}
static mt_status failing_atomic(mt_table *t, const char *pk, const mt_filter *f,
                                mt_entity_list *out)
{
    (void)pk;
    (void)f;
    (void)out;
    return failing_status(t);
}
static mt_status failing_stream(mt_table *t, const mt_filter *f, const mt_key *start,
                                mt_stream **out)
{
    (void)f;
    (void)start;
    *out = NULL;
    return failing_status(t);
}
static mt_status failing_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    (void)pk;
    (void)rk;
    *out = NULL;
    return failing_status(t);
}
static void failing_destroy(mt_table *t)
{
    (void)t;
}
static const mt_table_ops failing_ops = {
    .execute_batch = failing_batch,
    .query_atomic = failing_atomic,
    .query_stream = failing_stream,
    .retrieve = failing_retrieve,
    .destroy = failing_destroy,
};

static void test_table_counts_5xx_as_errors(void **state)
{
    (void)state;
    px_metrics *m = px_metrics_new();
    failing f = {.base.ops = &failing_ops, .http = 503};
    mt_table *t = px_metrics_table(m, &f.base, 0);

    mt_entity *e = NULL;
    mt_status st = t->ops->retrieve(t, "p", "r", &e);
    assert_int_equal(st.http, 503);
    assert_string_equal(st.code, MT_ERR_SERVER_BUSY);
    mt_stream dummy;
    mt_stream *s = &dummy; /* must be reset to NULL */
    st = t->ops->query_stream(t, NULL, NULL, &s);
    assert_int_equal(st.http, 503);
    assert_null(s);
    f.http = 500;
    st = t->ops->retrieve(t, "p", "r", &e);
    f.http = 412;
    st = t->ops->retrieve(t, "p", "r", &e);
    assert_int_equal(st.http, 412);

    char *text = render(m);
    assert_true(value_of(text, "mtable_backend_calls_total{side=\"old\",call=\"retrieve\"}") == 3);
    assert_true(value_of(text, "mtable_backend_errors_total{side=\"old\",call=\"retrieve\"}") == 2);
    assert_true(value_of(text, "mtable_backend_errors_total{side=\"old\",call=\"query_stream\"}") ==
                1);
    assert_true(value_of(text, "mtable_backend_calls_total{side=\"old\",call=\"batch\"}") == -1);
    assert_true(check_exposition(text) > 0);
    free(text);
    mt_table_destroy(t);
    px_metrics_free(m);
}

/* The last backend failure (5xx) is kept, with its side, for the status of
 * a stalled migration; a 404 or a 412 is no failure and leaves it. */
static void test_last_backend_error(void **state)
{
    (void)state;
    px_metrics *m = px_metrics_new();
    char last[200] = "x";
    px_metrics_last_error(m, last, sizeof last);
    assert_string_equal(last, "");
    failing f = {.base.ops = &failing_ops, .http = 503};
    mt_table *old_t = px_metrics_table(m, &f.base, 0);
    failing g = {.base.ops = &failing_ops, .http = 500};
    mt_table *new_t = px_metrics_table(m, &g.base, 1);
    mt_entity *e = NULL;
    old_t->ops->retrieve(old_t, "p", "r", &e);
    px_metrics_last_error(m, last, sizeof last);
    assert_string_equal(last, "old: 503 ServerBusy: told to");
    new_t->ops->execute_batch(new_t, NULL, 0, NULL);
    px_metrics_last_error(m, last, sizeof last);
    assert_string_equal(last, "new: 500 ServerBusy: told to");
    f.http = 404;
    old_t->ops->retrieve(old_t, "p", "r", &e);
    px_metrics_last_error(m, last, sizeof last);
    assert_string_equal(last, "new: 500 ServerBusy: told to");
    mt_table_destroy(old_t);
    mt_table_destroy(new_t);
    px_metrics_free(m);
}

static const char *const les[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                                  "0.01",   "0.025",   "0.05",   "0.1",   "0.25",   "0.5",
                                  "1",      "2.5",     "5",      "10",    "+Inf"};

static void test_histogram_is_cumulative_and_counts_every_call(void **state)
{
    (void)state;
    px_metrics *m = px_metrics_new();
    mt_table *inner = mt_memtable_new(mt_rt_pthread(), "t");
    mt_table *t = px_metrics_table(m, inner, 0);
    for (int i = 0; i < 20; i++) {
        char rk[16];
        snprintf(rk, sizeof rk, "r%02d", i);
        insert_row(t, "p", rk);
    }

    char *text = render(m);
    double prev = 0;
    for (size_t i = 0; i < sizeof les / sizeof *les; i++) {
        char series[160];
        snprintf(series, sizeof series,
                 "mtable_backend_call_seconds_bucket{side=\"old\",call=\"batch\",le=\"%s\"}",
                 les[i]);
        double v = value_of(text, series);
        assert_true(v >= prev); /* cumulative: never decreasing */
        prev = v;
    }
    assert_true(prev == 20); /* +Inf holds every call */
    assert_true(value_of(text, "mtable_backend_call_seconds_count{side=\"old\",call=\"batch\"}") ==
                20);
    assert_true(value_of(text, "mtable_backend_calls_total{side=\"old\",call=\"batch\"}") == 20);
    double sum = value_of(text, "mtable_backend_call_seconds_sum{side=\"old\",call=\"batch\"}");
    assert_true(sum >= 0 && sum < 20 * 5.0);
    /* The buckets come in order, le ascending, then _sum and _count. */
    const char *b0 = strstr(text, "le=\"0.0001\"");
    const char *binf = strstr(text, "le=\"+Inf\"");
    const char *sum_line = strstr(text, "mtable_backend_call_seconds_sum{");
    const char *count_line = strstr(text, "mtable_backend_call_seconds_count{");
    assert_true(b0 && binf && sum_line && count_line);
    assert_true(b0 < binf && binf < sum_line && sum_line < count_line);
    assert_true(check_exposition(text) > 0);
    free(text);
    mt_table_destroy(t);
    mt_table_destroy(inner);
    px_metrics_free(m);
}

/* A backend that takes its time, to land calls in a known bucket. */
typedef struct slow {
    mt_table base;
    long ns;
} slow;

static mt_status slow_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    (void)pk;
    (void)rk;
    struct timespec ts = {0, ((slow *)t)->ns};
    nanosleep(&ts, NULL);
    *out = NULL;
    return mt_error(404, MT_ERR_NOT_FOUND, "none");
}

static const mt_table_ops slow_ops = {
    .execute_batch = failing_batch,
    .query_atomic = failing_atomic,
    .query_stream = failing_stream,
    .retrieve = slow_retrieve,
    .destroy = failing_destroy,
};

static void test_histogram_places_a_slow_call(void **state)
{
    (void)state;
    px_metrics *m = px_metrics_new();
    slow sl = {.base.ops = &slow_ops, .ns = 30 * 1000 * 1000}; /* 30 ms */
    mt_table *t = px_metrics_table(m, &sl.base, 1);
    mt_entity *e;
    t->ops->retrieve(t, "p", "r", &e);

    char *text = render(m);
    /* At least 30 ms: nothing at or below 25 ms; every bucket from 5 s up. */
    assert_true(value_of(text, "mtable_backend_call_seconds_bucket{side=\"new\",call=\"retrieve\","
                               "le=\"0.025\"}") == 0);
    assert_true(value_of(text, "mtable_backend_call_seconds_bucket{side=\"new\",call=\"retrieve\","
                               "le=\"5\"}") == 1);
    double sum = value_of(text, "mtable_backend_call_seconds_sum{side=\"new\",call=\"retrieve\"}");
    assert_true(sum >= 0.03 && sum < 5);
    free(text);
    mt_table_destroy(t);
    px_metrics_free(m);
}

/* ------------------------------------------------------------------------ */
/* Concurrency.                                                              */

#define THREADS 8
#define PER_THREAD 20000

typedef struct worker {
    px_metrics *m;
    mt_table *t;
    int id;
} worker;

static void *hammer(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        px_metrics_request(w->m, "insert", 201, MT_PHASE_PREFER_NEW, 1000);
        px_metrics_request(w->m, (w->id & 1) ? "merge" : "nonsense", 500, MT_PHASE_PREFER_OLD,
                           1000);
        if (i % 100 == 0) {
            mt_entity *e = NULL;
            mt_status st = w->t->ops->retrieve(w->t, "p", "missing", &e);
            if (st.http != 404)
                return "retrieve";
        }
    }
    return NULL;
}

static void test_concurrent_increments_add_up(void **state)
{
    (void)state;
    px_metrics *m = px_metrics_new();
    mt_table *inner = mt_memtable_new(mt_rt_pthread(), "t");
    mt_table *t = px_metrics_table(m, inner, 0);
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.m = m, .t = t, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *res = NULL;
        pthread_join(th[i], &res);
        assert_null(res);
    }

    char *text = render(m);
    assert_true(value_of(text, "mtable_requests_total{operation=\"insert\",status=\"201\","
                               "phase=\"prefer_new\"}") == THREADS * PER_THREAD);
    assert_true(value_of(text, "mtable_requests_total{operation=\"merge\",status=\"500\","
                               "phase=\"prefer_old\"}") == THREADS / 2 * PER_THREAD);
    assert_true(value_of(text, "mtable_requests_total{operation=\"other\",status=\"500\","
                               "phase=\"prefer_old\"}") == THREADS / 2 * PER_THREAD);
    assert_true(value_of(text, "mtable_request_errors_total{operation=\"merge\"}") ==
                THREADS / 2 * PER_THREAD);
    assert_true(value_of(text, "mtable_request_errors_total{operation=\"insert\"}") == 0);
    double calls = THREADS * (PER_THREAD / 100);
    assert_true(value_of(text, "mtable_backend_calls_total{side=\"old\",call=\"retrieve\"}") ==
                calls);
    assert_true(value_of(text, "mtable_backend_call_seconds_bucket{side=\"old\",call=\"retrieve\","
                               "le=\"+Inf\"}") == calls);
    assert_true(value_of(text, "mtable_backend_errors_total{side=\"old\",call=\"retrieve\"}") == 0);
    assert_true(check_exposition(text) > 0);
    free(text);
    mt_table_destroy(t);
    mt_table_destroy(inner);
    px_metrics_free(m);
}

static void *count_retrieves(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 5000; i++) {
        mt_entity *e = NULL;
        w->t->ops->retrieve(w->t, "p", "missing", &e);
    }
    return NULL;
}

/* Rendering while others count yields valid text, with each histogram's
 * +Inf bucket equal to its _count and its calls_total. */
static void test_render_during_increments_is_consistent(void **state)
{
    (void)state;
    px_metrics *m = px_metrics_new();
    mt_table *inner = mt_memtable_new(mt_rt_pthread(), "t");
    mt_table *t = px_metrics_table(m, inner, 1);
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.m = m, .t = t, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, count_retrieves, &w[i]), 0);
    }
    for (int round = 0; round < 50; round++) {
        char *text = render(m);
        check_exposition(text);
        double inf = value_of(text, "mtable_backend_call_seconds_bucket{side=\"new\","
                                    "call=\"retrieve\",le=\"+Inf\"}");
        double count =
            value_of(text, "mtable_backend_call_seconds_count{side=\"new\",call=\"retrieve\"}");
        double total = value_of(text, "mtable_backend_calls_total{side=\"new\",call=\"retrieve\"}");
        assert_true(inf == count && count == total);
        free(text);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    mt_table_destroy(t);
    mt_table_destroy(inner);
    px_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_are_counted_with_their_labels),
        cmocka_unit_test(test_unknown_operation_and_status_go_to_other),
        cmocka_unit_test(test_empty_metrics_render_valid_text),
        cmocka_unit_test(test_request_durations_by_operation_and_phase),
        cmocka_unit_test(test_totals_are_the_sums_of_the_series),
        cmocka_unit_test(test_build_info_names_the_version),
        cmocka_unit_test(test_table_forwards_and_counts_per_kind),
        cmocka_unit_test(test_table_counts_5xx_as_errors),
        cmocka_unit_test(test_last_backend_error),
        cmocka_unit_test(test_histogram_is_cumulative_and_counts_every_call),
        cmocka_unit_test(test_histogram_places_a_slow_call),
        cmocka_unit_test(test_concurrent_increments_add_up),
        cmocka_unit_test(test_render_during_increments_is_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * px_metrics.c -- the proxy's counters, rendered for Prometheus.
 *
 * Two families of numbers: what the table endpoint answered (a request per
 * operation, status and phase, and how long it took per operation and
 * phase) and what the backends cost (calls, errors and latency per side and
 * per kind of call, counted by a decorator mt_table placed in front of each
 * backend). Beside them the build's version, as the usual build_info gauge.
 *
 * Every label takes its values from a fixed list, so every series has a
 * preallocated slot: a counter is one relaxed atomic add on the hot path, no
 * lock and no allocation, and a client cannot grow the set of series by
 * sending odd operations or provoking odd statuses (those land in "other").
 * The price is that a scrape is not one instant: counters read one by one
 * may be a few increments apart. Where that would show (a histogram's
 * buckets against its _count, a call total against it) they are rendered
 * from one reading, so they always agree with each other. The request
 * totals that /admin/v1/status reports are summed from these same counters
 * (px_metrics_totals), so the two never tell different stories.
 *
 * Output is the text exposition format, version 0.0.4. Series that are still
 * zero are left out, so a proxy that only ever inserts renders a few lines,
 * not two thousand.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "px.h"

/* ------------------------------------------------------------------------ */
/* Label sets.                                                               */

static const char *const op_names[] = {
    "query_tables", "create_table", "delete_table", "table_acl", "service", "query_entities",
    "get_entity",   "insert",       "update",       "merge",     "delete",  "upsert_replace",
    "upsert_merge", "batch",        "preflight",    "other", /* last: everything unknown */
};
#define OP_COUNT (sizeof op_names / sizeof *op_names)
#define OP_OTHER (OP_COUNT - 1)

static const int status_codes[] = {200, 201, 202, 204, 206, 304, 400, 401, 403, 404,
                                   405, 409, 411, 412, 413, 415, 500, 501, 503};
#define STATUS_KNOWN (sizeof status_codes / sizeof *status_codes)
#define STATUS_COUNT (STATUS_KNOWN + 1) /* the last slot is "other" */

/* mt_phase_name's phases, then one slot for a value that is not a phase. */
#define PHASE_SLOTS (MT_PHASE_COUNT + 1)

static const char *const side_names[] = {"old", "new"};
#define SIDE_COUNT 2

enum { CALL_BATCH, CALL_QUERY_ATOMIC, CALL_QUERY_STREAM, CALL_STREAM_NEXT, CALL_RETRIEVE };
static const char *const call_names[] = {"batch", "query_atomic", "query_stream", "stream_next",
                                         "retrieve"};
#define CALL_COUNT (sizeof call_names / sizeof *call_names)

/* Upper bounds of the latency buckets, inclusive ("le"), in nanoseconds and
 * as rendered; the last bucket (+Inf) takes the rest. The text is kept
 * beside the number so the rendering never depends on float printing. One
 * set for requests and backend calls alike, from 100 us (a memory backend,
 * a local emulator) to 10 s (a batch against a throttled account). */
static const uint64_t bucket_ns[] = {
    100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,   25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000};
static const char *const bucket_le[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                                        "0.01",   "0.025",   "0.05",   "0.1",   "0.25",   "0.5",
                                        "1",      "2.5",     "5",      "10"};
#define BUCKET_FINITE (sizeof bucket_ns / sizeof *bucket_ns)
#define BUCKET_COUNT (BUCKET_FINITE + 1)

/* ------------------------------------------------------------------------ */
/* The counters. Plain integers touched only through __atomic builtins, so  */
/* the struct can come zeroed from calloc.                                   */

typedef struct px_hist {
    uint64_t buckets[BUCKET_COUNT]; /* per bucket, not cumulative; sum = count */
    uint64_t sum_ns;
} px_hist;

typedef struct px_call_stats {
    px_hist latency;
    uint64_t errors;          /* status >= 500 */
    uint64_t rows;            /* rows the calls returned: what a query cost */
    struct px_metrics *owner; /* for the last error */
    int side;
} px_call_stats;

struct px_metrics {
    uint64_t requests[OP_COUNT][STATUS_COUNT][PHASE_SLOTS];
    uint64_t request_errors[OP_COUNT]; /* status >= 500, exact even when bucketed */
    uint64_t other_failed[OP_COUNT];   /* status "other" and >= 400, for the totals */
    px_hist durations[OP_COUNT][PHASE_SLOTS];
    px_call_stats calls[SIDE_COUNT][CALL_COUNT];
    /* The last backend error (status >= 500), under mu: rare, so locked. */
    pthread_mutex_t mu;
    char last_error[200];
    uint64_t slow_ns; /* a backend call this long is logged; 0: never */
};

static inline void px_metrics_add(uint64_t *c, uint64_t n)
{
    __atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static inline uint64_t px_metrics_load(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

px_metrics *px_metrics_new(void)
{
    px_metrics *m = calloc(1, sizeof(px_metrics));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    for (size_t side = 0; side < SIDE_COUNT; side++)
        for (size_t call = 0; call < CALL_COUNT; call++) {
            m->calls[side][call].owner = m;
            m->calls[side][call].side = (int)side;
        }
    m->slow_ns = 5000000000u;
    return m;
}

void px_metrics_set_slow_ms(px_metrics *m, int ms)
{
    m->slow_ns = ms > 0 ? (uint64_t)ms * 1000000u : 0;
}

void px_metrics_free(px_metrics *m)
{
    if (m)
        pthread_mutex_destroy(&m->mu);
    free(m);
}

void px_metrics_last_error(px_metrics *m, char *out, size_t cap)
{
    if (!m || cap == 0)
        return;
    pthread_mutex_lock(&m->mu);
    snprintf(out, cap, "%s", m->last_error);
    pthread_mutex_unlock(&m->mu);
}

/* ------------------------------------------------------------------------ */
/* Requests.                                                                 */

static size_t px_metrics_op_index(const char *op)
{
    if (op) {
        for (size_t i = 0; i < OP_OTHER; i++)
            if (strcmp(op, op_names[i]) == 0)
                return i;
    }
    return OP_OTHER;
}

static size_t px_metrics_status_index(int status)
{
    for (size_t i = 0; i < STATUS_KNOWN; i++)
        if (status_codes[i] == status)
            return i;
    return STATUS_KNOWN;
}

static size_t px_metrics_phase_index(mt_phase phase)
{
    return (unsigned)phase < MT_PHASE_COUNT ? (size_t)phase : MT_PHASE_COUNT;
}

/* Adds one observation of ns nanoseconds to h. */
static void px_hist_observe(px_hist *h, uint64_t ns)
{
    size_t b = 0;
    while (b < BUCKET_FINITE && ns > bucket_ns[b])
        b++;
    px_metrics_add(&h->buckets[b], 1);
    px_metrics_add(&h->sum_ns, ns);
}

void px_metrics_request(px_metrics *m, const char *op, int status, mt_phase phase,
                        uint64_t duration_ns)
{
    if (!m)
        return;
    size_t o = px_metrics_op_index(op), s = px_metrics_status_index(status),
           p = px_metrics_phase_index(phase);
    px_metrics_add(&m->requests[o][s][p], 1);
    if (status >= 500)
        px_metrics_add(&m->request_errors[o], 1);
    if (s == STATUS_KNOWN && status >= 400)
        px_metrics_add(&m->other_failed[o], 1);
    px_hist_observe(&m->durations[o][p], duration_ns);
}

void px_metrics_totals(px_metrics *m, uint64_t *requests, uint64_t *failed)
{
    uint64_t n = 0, bad = 0;
    for (size_t o = 0; m && o < OP_COUNT; o++) {
        for (size_t s = 0; s < STATUS_COUNT; s++) {
            for (size_t p = 0; p < PHASE_SLOTS; p++) {
                uint64_t v = px_metrics_load(&m->requests[o][s][p]);
                n += v;
                if (s < STATUS_KNOWN && status_codes[s] >= 400)
                    bad += v;
            }
        }
        bad += px_metrics_load(&m->other_failed[o]);
    }
    *requests = n;
    *failed = bad;
}

/* ------------------------------------------------------------------------ */
/* The backend decorator.                                                    */

typedef struct px_mtable {
    mt_table base;
    mt_table *inner;      /* borrowed */
    px_call_stats *stats; /* this side's row of the owner's px_metrics */
} px_mtable;

typedef struct px_mstream {
    mt_stream base;
    mt_stream *inner; /* owned: closed with this one */
    px_call_stats *next_stats;
} px_mstream;

/* A call that took longer than --log-slow-backend: a warning naming the
 * side, so that a hung backend shows in the log (when the call returns,
 * at the latest at the client's timeout) before anyone reads a histogram. */
static void px_metrics_log_slow(const px_call_stats *s, uint64_t took_ns, const mt_status *st)
{
    const char *side = side_names[s->side];
    const char *call = call_names[s - s->owner->calls[s->side]];
    char reason[MT_MSG_MAX + 64] = "";
    if (!mt_is_ok(st))
        snprintf(reason, sizeof reason, "%d %s: %s", st->http, st->code, st->message);
    px_log_with(
        PX_LOG_WARN,
        &(px_log_fields){
            .backend = side, .reason = reason, .duration_ms = (double)took_ns / 1e6, .timed = true},
        "slow backend: a %s call to the %s backend took %.1f s", call, side, (double)took_ns / 1e9);
}

/* A call to the backend begins: the watcher (px_watch.c) sees it. */
/* The call's start (px_now_ns), which the watcher is told too. */
static uint64_t px_metrics_begin(const px_call_stats *s)
{
    uint64_t t0 = px_now_ns();
    px_watch_call_begin(side_names[s->side], call_names[s - s->owner->calls[s->side]], t0);
    return t0;
}

static void px_metrics_observe(px_call_stats *s, uint64_t start_ns, const mt_status *st)
{
    px_watch_call_end();
    uint64_t now = px_now_ns();
    uint64_t took = now > start_ns ? now - start_ns : 0;
    px_hist_observe(&s->latency, took);
    if (s->owner->slow_ns && took >= s->owner->slow_ns)
        px_metrics_log_slow(s, took, st);
    /* A 404 or a 412 is the backend answering correctly; only its failures
     * count against it. */
    if (st->http < 500)
        return;
    px_metrics_add(&s->errors, 1);
    char reason[200];
    int k = snprintf(reason, sizeof reason, "%s: %d %s: %s", side_names[s->side], st->http,
                     st->code, st->message);
    if (k < 0)
        reason[0] = '\0';
    px_log_backend_failed(side_names[s->side], reason);
    pthread_mutex_lock(&s->owner->mu);
    memcpy(s->owner->last_error, reason, sizeof reason);
    pthread_mutex_unlock(&s->owner->mu);
}

static mt_status px_mtable_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *res)
{
    px_mtable *mt = (px_mtable *)t;
    uint64_t t0 = px_metrics_begin(&mt->stats[CALL_BATCH]);
    mt_status st = mt->inner->ops->execute_batch(mt->inner, ops, n, res);
    px_metrics_observe(&mt->stats[CALL_BATCH], t0, &st);
    return st;
}

static mt_status px_mtable_atomic(mt_table *t, const char *pk, const mt_filter *f,
                                  mt_entity_list *out)
{
    px_mtable *mt = (px_mtable *)t;
    uint64_t t0 = px_metrics_begin(&mt->stats[CALL_QUERY_ATOMIC]);
    size_t n0 = out->n;
    mt_status st = mt->inner->ops->query_atomic(mt->inner, pk, f, out);
    px_metrics_observe(&mt->stats[CALL_QUERY_ATOMIC], t0, &st);
    if (mt_is_ok(&st) && out->n > n0)
        px_metrics_add(&mt->stats[CALL_QUERY_ATOMIC].rows, out->n - n0);
    return st;
}

/* Both point reads count as retrieve: sharing the row is not a call of
 * its own. */
static mt_status px_mtable_retrieve_as(mt_table *t, const char *pk, const char *rk, bool share,
                                       mt_entity **out)
{
    px_mtable *mt = (px_mtable *)t;
    uint64_t t0 = px_metrics_begin(&mt->stats[CALL_RETRIEVE]);
    mt_status st = mt_table_retrieve(mt->inner, pk, rk, share, out);
    px_metrics_observe(&mt->stats[CALL_RETRIEVE], t0, &st);
    if (mt_is_ok(&st) && *out)
        px_metrics_add(&mt->stats[CALL_RETRIEVE].rows, 1);
    return st;
}

static mt_status px_mtable_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    return px_mtable_retrieve_as(t, pk, rk, false, out);
}

static mt_status px_mtable_retrieve_shared(mt_table *t, const char *pk, const char *rk,
                                           mt_entity **out)
{
    return px_mtable_retrieve_as(t, pk, rk, true, out);
}

static mt_status px_mstream_next(mt_stream *s, mt_entity **out)
{
    px_mstream *ms = (px_mstream *)s;
    uint64_t t0 = px_metrics_begin(ms->next_stats);
    mt_status st = ms->inner->ops->next(ms->inner, out);
    px_metrics_observe(ms->next_stats, t0, &st);
    if (mt_is_ok(&st) && *out)
        px_metrics_add(&ms->next_stats->rows, 1);
    return st;
}

/* Not counted: it is a peek at what next() returns, and counting it would
 * make one row read look like two calls. */
static mt_status px_mstream_continuation(mt_stream *s, mt_key *out, bool *more)
{
    px_mstream *ms = (px_mstream *)s;
    return ms->inner->ops->continuation(ms->inner, out, more);
}

static void px_mstream_close(mt_stream *s)
{
    px_mstream *ms = (px_mstream *)s;
    ms->inner->ops->close(ms->inner);
    free(ms);
}

static const mt_stream_ops px_mstream_ops = {
    .next = px_mstream_next,
    .continuation = px_mstream_continuation,
    .close = px_mstream_close,
};

/* Opens a stream of every row (keys) or of those f matches. */
static mt_status px_mtable_open(mt_table *t, const mt_filter *f, bool keys, const mt_key *start,
                                mt_stream **out)
{
    px_mtable *mt = (px_mtable *)t;
    *out = NULL;
    /* Allocated first so that a stream the backend opened is never lost. */
    px_mstream *ms = calloc(1, sizeof *ms);
    if (!ms)
        return mt_oom();
    uint64_t t0 = px_metrics_begin(&mt->stats[CALL_QUERY_STREAM]);
    mt_status st = keys ? mt_table_keys(mt->inner, start, &ms->inner)
                        : mt->inner->ops->query_stream(mt->inner, f, start, &ms->inner);
    px_metrics_observe(&mt->stats[CALL_QUERY_STREAM], t0, &st);
    if (!mt_is_ok(&st)) {
        free(ms);
        return st;
    }
    ms->base.ops = &px_mstream_ops;
    ms->next_stats = &mt->stats[CALL_STREAM_NEXT];
    *out = &ms->base;
    return st;
}

static mt_status px_mtable_stream(mt_table *t, const mt_filter *f, const mt_key *start,
                                  mt_stream **out)
{
    return px_mtable_open(t, f, false, start, out);
}

static mt_status px_mtable_keys(mt_table *t, const mt_key *start, mt_stream **out)
{
    return px_mtable_open(t, NULL, true, start, out);
}

/* Not a backend call: counted nowhere. */
static bool px_mtable_version(mt_table *t, uint64_t *out)
{
    return mt_table_write_version(((px_mtable *)t)->inner, out);
}

static void px_mtable_destroy(mt_table *t)
{
    free(t); /* inner is borrowed */
}

static const mt_table_ops px_mtable_ops = {
    .execute_batch = px_mtable_batch,
    .query_atomic = px_mtable_atomic,
    .query_stream = px_mtable_stream,
    .retrieve = px_mtable_retrieve,
    .destroy = px_mtable_destroy,
    .query_keys = px_mtable_keys,
    .write_version = px_mtable_version,
    .retrieve_shared = px_mtable_retrieve_shared,
};

/* NULL when side is neither 0 nor 1 or memory runs out. m must outlive the
 * table and every stream it opened. */
mt_table *px_metrics_table(px_metrics *m, mt_table *inner, int side)
{
    if (!m || !inner || side < 0 || side >= SIDE_COUNT)
        return NULL;
    px_mtable *mt = calloc(1, sizeof *mt);
    if (!mt)
        return NULL;
    mt->base.ops = &px_mtable_ops;
    mt->inner = inner;
    mt->stats = m->calls[side];
    return &mt->base;
}

/* ------------------------------------------------------------------------ */
/* Rendering.                                                                */

/* A label value with '\\', '"' and newline escaped, as 0.0.4 requires. The
 * values here all come from fixed lists, but the escaping keeps the output
 * valid if a list ever grows a name that needs it. */
static void px_metrics_put_label(mt_buf *out, const char *name, const char *value, bool first)
{
    if (!first)
        mt_buf_put(out, ",", 1);
    mt_buf_puts(out, name);
    mt_buf_put(out, "=\"", 2);
    for (const char *p = value; *p; p++) {
        if (*p == '\\')
            mt_buf_put(out, "\\\\", 2);
        else if (*p == '"')
            mt_buf_put(out, "\\\"", 2);
        else if (*p == '\n')
            mt_buf_put(out, "\\n", 2);
        else
            mt_buf_put(out, p, 1);
    }
    mt_buf_put(out, "\"", 1);
}

static void px_metrics_put_family(mt_buf *out, const char *name, const char *type, const char *help)
{
    mt_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void px_metrics_render_requests(px_metrics *m, mt_buf *out)
{
    bool seen[OP_COUNT] = {false};
    px_metrics_put_family(out, "mtable_requests_total", "counter",
                          "Table-endpoint requests by operation, response status and phase.");
    for (size_t o = 0; o < OP_COUNT; o++) {
        for (size_t s = 0; s < STATUS_COUNT; s++) {
            for (size_t p = 0; p < PHASE_SLOTS; p++) {
                uint64_t v = px_metrics_load(&m->requests[o][s][p]);
                if (!v)
                    continue;
                seen[o] = true;
                char code[16];
                if (s < STATUS_KNOWN)
                    snprintf(code, sizeof code, "%d", status_codes[s]);
                else
                    strcpy(code, "other");
                mt_buf_puts(out, "mtable_requests_total{");
                px_metrics_put_label(out, "operation", op_names[o], true);
                px_metrics_put_label(out, "status", code, false);
                px_metrics_put_label(out, "phase", mt_phase_name((mt_phase)p), false);
                mt_buf_printf(out, "} %llu\n", (unsigned long long)v);
            }
        }
    }

    /* Every operation that was seen gets an error series, zero or not, so
     * an error ratio has a denominator to divide. */
    px_metrics_put_family(out, "mtable_request_errors_total", "counter",
                          "Table-endpoint requests answered with a status of 500 or more.");
    for (size_t o = 0; o < OP_COUNT; o++) {
        uint64_t v = px_metrics_load(&m->request_errors[o]);
        if (!v && !seen[o])
            continue;
        mt_buf_puts(out, "mtable_request_errors_total{");
        px_metrics_put_label(out, "operation", op_names[o], true);
        mt_buf_printf(out, "} %llu\n", (unsigned long long)v);
    }
}

/* One consistent reading of a histogram: its buckets and what they add up
 * to, so that +Inf and _count can never disagree. */
typedef struct px_hist_snap {
    uint64_t buckets[BUCKET_COUNT];
    uint64_t count, sum_ns;
} px_hist_snap;

static void px_hist_snap_take(px_hist *h, px_hist_snap *out)
{
    out->count = 0;
    for (size_t b = 0; b < BUCKET_COUNT; b++) {
        out->buckets[b] = px_metrics_load(&h->buckets[b]);
        out->count += out->buckets[b];
    }
    out->sum_ns = px_metrics_load(&h->sum_ns);
}

/* The _bucket, _sum and _count lines of one series; labels is the series'
 * label text without braces (already escaped). */
static void px_hist_put(mt_buf *out, const char *name, const char *labels, const px_hist_snap *sn)
{
    uint64_t cum = 0;
    for (size_t b = 0; b < BUCKET_COUNT; b++) {
        cum += sn->buckets[b];
        mt_buf_printf(out, "%s_bucket{%s,", name, labels);
        px_metrics_put_label(out, "le", b < BUCKET_FINITE ? bucket_le[b] : "+Inf", true);
        mt_buf_printf(out, "} %llu\n", (unsigned long long)cum);
    }
    mt_buf_printf(out, "%s_sum{%s} %llu.%09llu\n", name, labels,
                  (unsigned long long)(sn->sum_ns / 1000000000u),
                  (unsigned long long)(sn->sum_ns % 1000000000u));
    mt_buf_printf(out, "%s_count{%s} %llu\n", name, labels, (unsigned long long)sn->count);
}

static void px_metrics_render_durations(px_metrics *m, mt_buf *out)
{
    px_metrics_put_family(out, "mtable_request_duration_seconds", "histogram",
                          "Time the table endpoint took to answer, by operation and phase.");
    for (size_t o = 0; o < OP_COUNT; o++) {
        for (size_t p = 0; p < PHASE_SLOTS; p++) {
            px_hist_snap sn;
            px_hist_snap_take(&m->durations[o][p], &sn);
            if (!sn.count)
                continue;
            mt_buf labels = {0};
            px_metrics_put_label(&labels, "operation", op_names[o], true);
            px_metrics_put_label(&labels, "phase", mt_phase_name((mt_phase)p), false);
            char *l = mt_buf_take(&labels, NULL);
            px_hist_put(out, "mtable_request_duration_seconds", l ? l : "", &sn);
            free(l);
        }
    }
}

static void px_metrics_put_side_call(mt_buf *out, const char *metric, size_t side, size_t call)
{
    mt_buf_puts(out, metric);
    mt_buf_put(out, "{", 1);
    px_metrics_put_label(out, "side", side_names[side], true);
    px_metrics_put_label(out, "call", call_names[call], false);
}

static void px_metrics_render_backends(px_metrics *m, mt_buf *out)
{
    px_hist_snap snap[SIDE_COUNT][CALL_COUNT];
    uint64_t errors[SIDE_COUNT][CALL_COUNT];
    for (size_t s = 0; s < SIDE_COUNT; s++) {
        for (size_t c = 0; c < CALL_COUNT; c++) {
            px_hist_snap_take(&m->calls[s][c].latency, &snap[s][c]);
            errors[s][c] = px_metrics_load(&m->calls[s][c].errors);
        }
    }

    px_metrics_put_family(out, "mtable_backend_calls_total", "counter",
                          "Calls to a backend table by side and kind of call.");
    for (size_t s = 0; s < SIDE_COUNT; s++) {
        for (size_t c = 0; c < CALL_COUNT; c++) {
            if (!snap[s][c].count)
                continue;
            px_metrics_put_side_call(out, "mtable_backend_calls_total", s, c);
            mt_buf_printf(out, "} %llu\n", (unsigned long long)snap[s][c].count);
        }
    }

    px_metrics_put_family(out, "mtable_backend_rows_total", "counter",
                          "Rows that reads of a backend table returned, by side and kind of call.");
    for (size_t s = 0; s < SIDE_COUNT; s++) {
        for (size_t c = CALL_QUERY_ATOMIC; c < CALL_COUNT; c++) {
            if (c == CALL_QUERY_STREAM || !snap[s][c].count)
                continue;
            px_metrics_put_side_call(out, "mtable_backend_rows_total", s, c);
            mt_buf_printf(out, "} %llu\n",
                          (unsigned long long)px_metrics_load(&m->calls[s][c].rows));
        }
    }

    px_metrics_put_family(out, "mtable_backend_errors_total", "counter",
                          "Backend calls that failed with a status of 500 or more.");
    for (size_t s = 0; s < SIDE_COUNT; s++) {
        for (size_t c = 0; c < CALL_COUNT; c++) {
            if (!snap[s][c].count && !errors[s][c])
                continue;
            px_metrics_put_side_call(out, "mtable_backend_errors_total", s, c);
            mt_buf_printf(out, "} %llu\n", (unsigned long long)errors[s][c]);
        }
    }

    px_metrics_put_family(out, "mtable_backend_call_seconds", "histogram",
                          "Latency of backend calls in seconds.");
    for (size_t s = 0; s < SIDE_COUNT; s++) {
        for (size_t c = 0; c < CALL_COUNT; c++) {
            if (!snap[s][c].count)
                continue;
            mt_buf labels = {0};
            px_metrics_put_label(&labels, "side", side_names[s], true);
            px_metrics_put_label(&labels, "call", call_names[c], false);
            char *l = mt_buf_take(&labels, NULL);
            px_hist_put(out, "mtable_backend_call_seconds", l ? l : "", &snap[s][c]);
            free(l);
        }
    }
}

#ifndef MTABLE_VERSION
#define MTABLE_VERSION "unknown"
#endif

static void px_metrics_render_build(mt_buf *out)
{
    px_metrics_put_family(out, "mtable_build_info", "gauge",
                          "Always 1; the version label names the build of mtable-proxy.");
    mt_buf_puts(out, "mtable_build_info{");
    px_metrics_put_label(out, "version", MTABLE_VERSION, true);
    mt_buf_puts(out, "} 1\n");
}

void px_metrics_render(px_metrics *m, mt_buf *out)
{
    if (!m)
        return;
    px_metrics_render_build(out);
    px_metrics_render_requests(m, out);
    px_metrics_render_durations(m, out);
    px_metrics_render_backends(m, out);
}

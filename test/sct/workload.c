/*
 * workload.c -- the tester's scenarios.
 *
 * An execution builds two decorated in-memory tables and an in-process
 * configuration service, starts service actors (each with its own
 * MigratingTable, as separate proxies would have) and usually a migrator,
 * records every client-visible operation, joins everyone, reads every key
 * once more through a fresh MigratingTable, and then judges: the scheduler's
 * outcome (liveness), the history (linearizability, streams), and the
 * migrator's post-conditions (old empty, new free of protocol data).
 *
 * Actors "think" (take a random number of empty scheduling points) between
 * operations, so their operations spread over the whole migration instead
 * of bunching up in its first phase.
 *
 * The lease scenario replaces the shared in-process configuration service
 * with the control plane of config/ (fleet.c): each service actor talks
 * through its own proxy, whose configuration client holds a lease from an
 * authority, over links and backend views with faults; the migrator runs
 * on the authority's service, and the final reads too. Its operations may
 * fail with 503 ServerBusy when their proxy holds no lease; the checker
 * takes a 503 for what it is, a refusal that changed nothing (the guard
 * stops a call before it is sent, and every write of the protocol has its
 * client-visible effect in its last backend call).
 */
#include "workload.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cfg_migrate.h"
#include "checker.h"
#include "fleet.h"
#include "mt_bugs.h"

#define MAX_PARTITIONS 3
#define MAX_ROWS 4
#define MAX_KEYS (MAX_PARTITIONS * MAX_ROWS)
#define MAX_ACTORS 6
#define ETAG_POOL 64

enum { W_BATCH, W_QUERY, W_RETRIEVE, W_STREAM, W_COUNT };

struct sct_scenario {
    const char *name;
    const char *about;
    int actors;
    int ops_per_actor;
    int partitions, rows;
    int initial_rows;   /* keys with a row before the run */
    mt_phase start;     /* the phase the service starts in */
    bool migrate;       /* run the migrator */
    bool kill_migrator; /* kill it mid-run, then start a new one */
    int copy_parallel;  /* partitions the migrator copies at once (0: one) */
    int mix[W_COUNT];   /* weights of operation types */
    int kinds[7];       /* weights of op kinds in batches (mt_op_kind order) */
    int max_batch;
    int think; /* up to this many idle points between operations */
    int share; /* executions out of every ten under scenario "all" */
    bool broken_wakeup;
    /* The control plane (fleet.c): one proxy per actor when set. */
    bool leases;
    int replicas;         /* 2: two authority replicas; the leader is cut off its store */
    bool reverse;         /* migrate, swap the roles (migrate --reverse), migrate back */
    uint64_t step_factor; /* its executions may take this many times the step bound */
    int64_t lease_ms, margin_ms;
    uint64_t jump_one_in; /* the strategy's time jumps (sched.h), up to a lease */
};

static const sct_scenario scenario_random = {
    .name = "random",
    .about = "service actors run random batches of every op kind with right, wrong and * "
             "ETags, atomic and streamed queries with and without property filters, over "
             "two partitions of three rows, while the migrator runs the whole migration",
    .actors = 3,
    .ops_per_actor = 4,
    .partitions = 2,
    .rows = 3,
    .initial_rows = 3,
    .start = MT_PHASE_USE_OLD_HIDE_METADATA,
    .migrate = true,
    .mix = {[W_BATCH] = 50, [W_QUERY] = 15, [W_RETRIEVE] = 15, [W_STREAM] = 20},
    .kinds = {2, 2, 2, 2, 1, 1, 1},
    .max_batch = 3,
    .think = 24,
    .share = 2,
};

static const sct_scenario scenario_streams = {
    .name = "streams",
    .about = "streamed queries that live across phase changes while writers change the rows "
             "under them and the migrator runs",
    .actors = 3,
    .ops_per_actor = 3,
    .partitions = 2,
    .rows = 3,
    .initial_rows = 4,
    .start = MT_PHASE_USE_OLD_HIDE_METADATA,
    .migrate = true,
    .mix = {[W_BATCH] = 45, [W_STREAM] = 55},
    .kinds = {2, 2, 2, 3, 1, 1, 0},
    .max_batch = 2,
    .think = 30,
    .share = 2,
};

static const sct_scenario scenario_restart = {
    .name = "restart",
    .about = "the migrator dies after a random number of backend calls and a new one "
             "finishes the migration while clients keep writing",
    .actors = 2,
    .ops_per_actor = 4,
    .partitions = 2,
    .rows = 3,
    .initial_rows = 4,
    .start = MT_PHASE_USE_OLD_HIDE_METADATA,
    .migrate = true,
    .kill_migrator = true,
    .mix = {[W_BATCH] = 60, [W_QUERY] = 15, [W_RETRIEVE] = 15, [W_STREAM] = 10},
    .kinds = {2, 2, 2, 2, 1, 1, 1},
    .max_batch = 3,
    .think = 24,
    .share = 1,
};

static const sct_scenario scenario_late_phases = {
    .name = "late-phases",
    .about = "from use_new_with_tombstones on: deletes, tombstones, DeleteIfExists and "
             "InsertOrMerge meet the push to use_new_hide_metadata and the cleanup",
    .actors = 3,
    .ops_per_actor = 4,
    .partitions = 1,
    .rows = 3,
    .initial_rows = 2,
    .start = MT_PHASE_USE_NEW_WITH_TOMBSTONES,
    .migrate = true,
    .mix = {[W_BATCH] = 65, [W_QUERY] = 10, [W_RETRIEVE] = 25},
    .kinds = {2, 1, 1, 2, 1, 2, 3},
    .max_batch = 2,
    .think = 12,
    .share = 1,
};

static const sct_scenario scenario_prefer_new = {
    .name = "prefer-new",
    .about = "from prefer_new on: the copy, then the pushes to use_new_with_tombstones and "
             "use_new_hide_metadata, while clients delete and read rows that still have "
             "their old copies",
    .actors = 3,
    .ops_per_actor = 3,
    .partitions = 1,
    .rows = 3,
    .initial_rows = 3,
    .start = MT_PHASE_PREFER_NEW,
    .migrate = true,
    .mix = {[W_BATCH] = 45, [W_QUERY] = 25, [W_RETRIEVE] = 30},
    .kinds = {1, 1, 1, 4, 0, 1, 2},
    .max_batch = 2,
    .think = 30,
    .share = 1,
};

static const sct_scenario scenario_parallel_copy = {
    .name = "parallel-copy",
    .about = "from prefer_new on, the migrator copying two partitions at once with two "
             "workers, while clients write, delete and read rows of both",
    .actors = 3,
    .ops_per_actor = 3,
    .partitions = 2,
    .rows = 3,
    .initial_rows = 4,
    .start = MT_PHASE_PREFER_NEW,
    .migrate = true,
    .copy_parallel = 2,
    .mix = {[W_BATCH] = 45, [W_QUERY] = 20, [W_RETRIEVE] = 20, [W_STREAM] = 15},
    .kinds = {1, 1, 1, 4, 0, 1, 2},
    .max_batch = 2,
    .think = 30,
    .share = 0, /* run by name, so the shares of "all" stay as measured */
};

static const sct_scenario scenario_hide_metadata = {
    .name = "hide-metadata",
    .about = "use_new_hide_metadata with no migrator: multi-op batches mixing DeleteIfExists "
             "and conditional deletes with racing inserts and replaces, where the new table "
             "must stay the single linearization point",
    .actors = 3,
    .ops_per_actor = 3,
    .partitions = 1,
    .rows = 2,
    .initial_rows = 1,
    .start = MT_PHASE_USE_NEW_HIDE_METADATA,
    .migrate = false,
    .mix = {[W_BATCH] = 60, [W_RETRIEVE] = 10, [W_QUERY] = 30},
    .kinds = {3, 1, 1, 2, 1, 1, 4},
    .max_batch = 2,
    .think = 2,
    .share = 3,
};

static const sct_scenario scenario_leases = {
    .name = "leases",
    .about = "the control plane: an authority over a state store and three proxies, each "
             "with its own configuration client and lease, over links that drop (the proxy "
             "stops renewing and its lease runs out) or lag (it comes back late), proxies "
             "that stall with operations in flight and one that may join late, while the "
             "migrator runs on the authority and time jumps",
    .actors = 3,
    .ops_per_actor = 4,
    .partitions = 1,
    .rows = 3,
    .initial_rows = 2,
    .start = MT_PHASE_USE_OLD_HIDE_METADATA,
    .migrate = true,
    .mix = {[W_BATCH] = 60, [W_QUERY] = 15, [W_RETRIEVE] = 15, [W_STREAM] = 10},
    .kinds = {3, 2, 2, 2, 1, 1, 1},
    .max_batch = 2,
    .think = 12,
    .share = 0, /* run by name, so the shares of "all" stay as measured */
    .leases = true,
    .lease_ms = 1000,
    .margin_ms = 250,
    .jump_one_in = 128,
};

static const sct_scenario scenario_failover = {
    .name = "failover",
    .about = "the lease scenario with two authority replicas on one store: replica a "
             "leads and runs the migrator until, at a random moment, it is cut off the "
             "store for good (a zombie that keeps running); replica b takes over and "
             "resumes the authority's migration run from the state and checkpoint a saved",
    .actors = 3,
    .ops_per_actor = 4,
    .partitions = 1,
    .rows = 3,
    .initial_rows = 2,
    .start = MT_PHASE_USE_OLD_HIDE_METADATA,
    .migrate = true,
    .mix = {[W_BATCH] = 60, [W_QUERY] = 15, [W_RETRIEVE] = 15, [W_STREAM] = 10},
    .kinds = {3, 2, 2, 2, 1, 1, 1},
    .max_batch = 2,
    .think = 12,
    .share = 0, /* run by name */
    .leases = true,
    .replicas = 2,
    .lease_ms = 1000,
    .margin_ms = 250,
    .jump_one_in = 128,
    .step_factor = 4, /* two tickers beat all along */
};

static const sct_scenario scenario_reverse = {
    .name = "reverse",
    .about = "the lease scenario there and back: the migrator runs to use_new_with_tombstones "
             "before the clients start; then, while they work, the authority is asked to swap "
             "the accounts' roles there (it must refuse), the migration finishes, the roles "
             "are swapped in one push and the migrator migrates back into the old table",
    .actors = 3,
    .ops_per_actor = 16,
    .partitions = 1,
    .rows = 3,
    .initial_rows = 2,
    .start = MT_PHASE_USE_OLD_HIDE_METADATA,
    .migrate = true,
    .mix = {[W_BATCH] = 60, [W_QUERY] = 15, [W_RETRIEVE] = 15, [W_STREAM] = 10},
    .kinds = {3, 2, 2, 2, 1, 1, 1},
    .max_batch = 2,
    .think = 12,
    .share = 0, /* run by name */
    .leases = true,
    .reverse = true,
    .lease_ms = 1000,
    .margin_ms = 250,
    .jump_one_in = 128,
};

static const sct_scenario scenario_broken_wakeup = {
    .name = "broken-wakeup",
    .about = "a deliberately broken test actor sets a flag without waking its waiter: "
             "the tester must report a liveness violation",
    .broken_wakeup = true,
};

/* One scenario a line. */
/* clang-format off */
static const sct_scenario *const all_scenarios[] = {
    &scenario_random,
    &scenario_streams,
    &scenario_restart,
    &scenario_late_phases,
    &scenario_prefer_new,
    &scenario_hide_metadata,
    &scenario_leases,
    &scenario_failover,
    &scenario_reverse,
    &scenario_parallel_copy,
    &scenario_broken_wakeup,
    NULL,
};
/* clang-format on */

const sct_scenario *const *sct_scenarios(void)
{
    return all_scenarios;
}

const sct_scenario *sct_scenario_find(const char *name)
{
    for (size_t i = 0; all_scenarios[i]; i++)
        if (strcmp(all_scenarios[i]->name, name) == 0)
            return all_scenarios[i];
    return NULL;
}

const char *sct_scenario_name(const sct_scenario *sc)
{
    return sc->name;
}

int sct_scenario_share(const sct_scenario *sc)
{
    return sc->share;
}

const char *sct_scenario_about(const sct_scenario *sc)
{
    return sc->about;
}

const char *sct_verdict_name(sct_verdict_kind k)
{
    static const char *const names[] = {"ok",       "linearizability", "stream",
                                        "liveness", "crash",           "migration"};
    return names[k];
}

/* ------------------------------------------------------------------------ */
/* Execution state.                                                          */

typedef struct exec_ctx {
    sct_sched *s;
    const sct_scenario *sc;
    mt_rt *rt;
    mt_config_service *cfg;
    sct_fleet *fleet; /* the lease scenario's control plane, or NULL */
    mt_table *old_t, *new_t;
    sct_history *h;
    char pks[MAX_PARTITIONS][4];
    char rks[MAX_ROWS][4];
    char etags[ETAG_POOL][MT_ETAG_MAX]; /* every ETag a client was handed */
    int netags;
    int64_t kill_budget;
    bool migrated;     /* a migrator finished */
    bool reversed;     /* and migrated back: the new table plays old */
    mt_status prelude; /* the reverse scenario's migration before the clients */
    sct_verdict verdict;
} exec_ctx;

typedef struct actor {
    exec_ctx *x;
    int i;
    mt_table *mt;                      /* NULL: its proxy joins late (lease scenario) */
    char known[MAX_KEYS][MT_ETAG_MAX]; /* the last ETag this actor saw per key */
} actor;

static void fail(exec_ctx *x, sct_verdict_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(exec_ctx *x, sct_verdict_kind k, const char *fmt, ...)
{
    if (x->verdict.kind != SCT_VERDICT_OK)
        return;
    x->verdict.kind = k;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->verdict.why, sizeof x->verdict.why, fmt, ap);
    va_end(ap);
}

static uint64_t rnd(exec_ctx *x, uint64_t n)
{
    return sct_sched_rand(x->s, n);
}

static int key_index(exec_ctx *x, const char *pk, const char *rk)
{
    for (int p = 0; p < x->sc->partitions; p++)
        for (int r = 0; r < x->sc->rows; r++)
            if (strcmp(x->pks[p], pk) == 0 && strcmp(x->rks[r], rk) == 0)
                return p * x->sc->rows + r;
    return -1;
}

static void remember_etag(actor *a, const char *pk, const char *rk, const char *etag)
{
    exec_ctx *x = a->x;
    int k = key_index(x, pk, rk);
    if (k < 0 || !etag || !*etag)
        return;
    snprintf(a->known[k], MT_ETAG_MAX, "%s", etag);
    for (int i = 0; i < x->netags; i++)
        if (strcmp(x->etags[i], etag) == 0)
            return;
    if (x->netags < ETAG_POOL)
        snprintf(x->etags[x->netags++], MT_ETAG_MAX, "%s", etag);
}

static int pick_weighted(exec_ctx *x, const int *w, int n)
{
    int total = 0;
    for (int i = 0; i < n; i++)
        total += w[i];
    int r = (int)rnd(x, (uint64_t)total);
    for (int i = 0; i < n; i++) {
        if (r < w[i])
            return i;
        r -= w[i];
    }
    return n - 1;
}

static mt_entity *random_entity(exec_ctx *x, const char *pk, const char *rk)
{
    static const char *const colors[] = {"red", "blue", "green"};
    mt_entity *e = mt_entity_new(pk, rk);
    mt_value v = mt_v_str(colors[rnd(x, 3)]);
    mt_entity_set(e, "color", &v);
    if (rnd(x, 2)) {
        mt_value n = mt_v_i32((int32_t)rnd(x, 3));
        mt_entity_set(e, "n", &n);
    }
    return e;
}

/* A filter over user properties, or NULL (no filter). */
static mt_filter *random_filter(exec_ctx *x)
{
    mt_value red = mt_v_str("red"), one = mt_v_i32(1);
    switch (rnd(x, 5)) {
    case 0:
        return mt_filter_cmp("color", MT_EQ, &red);
    case 1:
        return mt_filter_not(mt_filter_cmp("color", MT_EQ, &red));
    case 2:
        return mt_filter_cmp("n", MT_GE, &one);
    default:
        return NULL;
    }
}

static void think(exec_ctx *x)
{
    uint64_t n = x->sc->think ? rnd(x, (uint64_t)x->sc->think + 1) : 0;
    for (uint64_t i = 0; i < n; i++)
        sct_point(x->s, "think");
}

/* ------------------------------------------------------------------------ */
/* Client operations, each recorded.                                         */

static const char *pick_if_match(actor *a, int key)
{
    exec_ctx *x = a->x;
    switch (rnd(x, 4)) {
    case 0:
        return "*";
    case 1:
        return x->netags ? x->etags[rnd(x, (uint64_t)x->netags)] : "W/\"stale\"";
    default:
        return a->known[key][0] ? a->known[key] : "*";
    }
}

static void do_batch(actor *a)
{
    exec_ctx *x = a->x;
    const sct_scenario *sc = x->sc;
    int p = (int)rnd(x, (uint64_t)sc->partitions);
    int n = 1 + (int)rnd(x, (uint64_t)(sc->max_batch < sc->rows ? sc->max_batch : sc->rows));
    int used[MAX_ROWS] = {0};
    sct_hop *hop = sct_history_add(x->h, SCT_H_BATCH, sct_sched_current(x->s));
    hop->n = (size_t)n;
    hop->ops = calloc((size_t)n, sizeof *hop->ops);
    hop->results = calloc((size_t)n, sizeof *hop->results);
    mt_op ops[MAX_ROWS];
    for (int i = 0; i < n; i++) {
        int r;
        do
            r = (int)rnd(x, (uint64_t)sc->rows);
        while (used[r]);
        used[r] = 1;
        mt_op_kind kind = (mt_op_kind)pick_weighted(x, sc->kinds, 7);
        mt_entity *e = random_entity(x, x->pks[p], x->rks[r]);
        const char *im = NULL;
        if (kind == MT_OP_REPLACE || kind == MT_OP_MERGE || kind == MT_OP_DELETE)
            im = pick_if_match(a, p * sc->rows + r);
        hop->ops[i] =
            (sct_hbatch_op){.kind = kind, .entity = e, .if_match = im ? strdup(im) : NULL};
        ops[i] = (mt_op){.kind = kind, .entity = e, .if_match = hop->ops[i].if_match};
    }
    size_t idx = (size_t)(hop - x->h->v);
    uint64_t inv = sct_sched_clock(x->s);
    mt_op_result res[MAX_ROWS];
    mt_status st = mt_table_batch(a->mt, ops, (size_t)n, res);
    uint64_t resp = sct_sched_clock(x->s);
    hop = &x->h->v[idx]; /* the history may have grown meanwhile */
    hop->invoke = inv;
    hop->respond = resp;
    hop->status = st;
    if (mt_is_ok(&st)) {
        memcpy(hop->results, res, (size_t)n * sizeof *res);
        for (int i = 0; i < n; i++)
            remember_etag(a, ops[i].entity->pk, ops[i].entity->rk, res[i].etag);
    }
}

static void do_query(actor *a)
{
    exec_ctx *x = a->x;
    int p = (int)rnd(x, (uint64_t)x->sc->partitions);
    mt_filter *f = random_filter(x);
    /* Reads of every other partition lend the tables' rows, as the proxy's
     * pages do, so that the protocol's copy-to-strip is checked too; the
     * choice draws nothing, so seeds replay as before. */
    mt_entity_list rows = {.share = p % 2 == 0};
    uint64_t inv = sct_sched_clock(x->s);
    mt_status st = a->mt->ops->query_atomic(a->mt, x->pks[p], f, &rows);
    uint64_t resp = sct_sched_clock(x->s);
    sct_hop *hop = sct_history_add(x->h, SCT_H_QUERY, sct_sched_current(x->s));
    hop->invoke = inv;
    hop->respond = resp;
    hop->status = st;
    hop->pk = strdup(x->pks[p]);
    hop->filter = f;
    hop->rows = rows;
    for (size_t i = 0; i < rows.n; i++)
        remember_etag(a, rows.v[i]->pk, rows.v[i]->rk, rows.v[i]->etag);
}

static void record_retrieve(exec_ctx *x, actor *a, mt_table *t, int p, int r, int who)
{
    mt_entity *e = NULL;
    uint64_t inv = sct_sched_clock(x->s);
    mt_status st = t->ops->retrieve(t, x->pks[p], x->rks[r], &e);
    uint64_t resp = sct_sched_clock(x->s);
    sct_hop *hop = sct_history_add(x->h, SCT_H_RETRIEVE, who);
    hop->invoke = inv;
    hop->respond = resp;
    hop->status = st;
    hop->pk = strdup(x->pks[p]);
    hop->rk = strdup(x->rks[r]);
    hop->row = e;
    if (e && a)
        remember_etag(a, e->pk, e->rk, e->etag);
}

static void do_retrieve(actor *a)
{
    exec_ctx *x = a->x;
    int p = (int)rnd(x, (uint64_t)x->sc->partitions);
    int r = (int)rnd(x, (uint64_t)x->sc->rows);
    record_retrieve(x, a, a->mt, p, r, sct_sched_current(x->s));
}

/* Records STREAM_ABSENT for every known key in (after, before) -- NULL
 * bounds are open -- responded at `when`. */
static void record_skipped(exec_ctx *x, const mt_filter *f, const mt_entity *after,
                           const mt_entity *before, uint64_t inv, uint64_t when, int who)
{
    for (int p = 0; p < x->sc->partitions; p++)
        for (int r = 0; r < x->sc->rows; r++) {
            const char *pk = x->pks[p], *rk = x->rks[r];
            if (after && mt_key_cmp(pk, rk, after->pk, after->rk) <= 0)
                continue;
            if (before && mt_key_cmp(pk, rk, before->pk, before->rk) >= 0)
                continue;
            sct_hop *hop = sct_history_add(x->h, SCT_H_STREAM_ABSENT, who);
            hop->invoke = inv;
            hop->respond = when;
            hop->pk = strdup(pk);
            hop->rk = strdup(rk);
            hop->filter = f ? mt_filter_clone(f) : NULL;
        }
}

static void do_stream(actor *a)
{
    exec_ctx *x = a->x;
    int who = sct_sched_current(x->s);
    mt_filter *f = random_filter(x);
    mt_stream *st_ = NULL;
    uint64_t inv = sct_sched_clock(x->s);
    mt_status st = a->mt->ops->query_stream(a->mt, f, NULL, &st_);
    mt_entity *prev = NULL;
    while (mt_is_ok(&st)) {
        mt_entity *e = NULL;
        st = st_->ops->next(st_, &e);
        uint64_t when = sct_sched_clock(x->s);
        if (!mt_is_ok(&st))
            break;
        if (e && prev && mt_key_cmp(e->pk, e->rk, prev->pk, prev->rk) <= 0) {
            fail(x, SCT_VERDICT_STREAM, "stream returned %s/%s after %s/%s: not in key order",
                 e->pk, e->rk, prev->pk, prev->rk);
            mt_entity_free(e);
            break;
        }
        record_skipped(x, f, prev, e, inv, when, who);
        if (!e)
            break;
        sct_hop *hop = sct_history_add(x->h, SCT_H_STREAM_ROW, who);
        hop->invoke = inv;
        hop->respond = when;
        hop->filter = f ? mt_filter_clone(f) : NULL;
        hop->row = mt_entity_clone(e);
        mt_entity_free(prev);
        prev = e;
        sct_point(x->s, "reader");
    }
    mt_entity_free(prev);
    /* A proxy without a lease fails closed, streams included; what the
     * stream returned before that still stands. */
    bool refused = x->fleet && st.http == 503;
    if (!mt_is_ok(&st) && !refused)
        fail(x, SCT_VERDICT_CRASH, "stream failed: %d %s %s", st.http, st.code, st.message);
    if (st_)
        st_->ops->close(st_);
    mt_filter_free(f);
}

static void *service_actor(void *arg)
{
    actor *a = arg;
    exec_ctx *x = a->x;
    if (!a->mt && !(a->mt = sct_fleet_join(x->fleet, a->i))) {
        fail(x, SCT_VERDICT_LIVENESS, "proxy%d joined late and never got a lease", a->i);
        return NULL;
    }
    for (int i = 0; i < x->sc->ops_per_actor; i++) {
        think(x);
        switch (pick_weighted(x, x->sc->mix, W_COUNT)) {
        case W_BATCH:
            do_batch(a);
            break;
        case W_QUERY:
            do_query(a);
            break;
        case W_RETRIEVE:
            do_retrieve(a);
            break;
        default:
            do_stream(a);
            break;
        }
    }
    return NULL;
}

static void *migrator_actor(void *arg)
{
    exec_ctx *x = arg;
    mt_migrator_stats stats = {0};
    mt_table *old_t = x->old_t, *new_t = x->new_t;
    bool doomed = x->sc->kill_migrator && x->kill_budget != INT64_MAX;
    if (doomed) {
        x->kill_budget = 1 + (int64_t)rnd(x, 80);
        old_t = sct_backend_dying(x->old_t, &x->kill_budget);
        new_t = sct_backend_dying(x->new_t, &x->kill_budget);
    }
    mt_table_pair pair = {.old_t = old_t, .new_t = new_t};
    mt_migrator_hooks hooks = {.parallel = x->sc->copy_parallel};
    mt_status st = x->sc->copy_parallel > 1
                       ? mt_migrate_tables(x->rt, x->cfg, &pair, 1, &hooks, &stats)
                       : mt_migrate(x->rt, x->cfg, old_t, new_t, &stats);
    if (mt_is_ok(&st))
        x->migrated = true;
    else if (!doomed)
        fail(x, SCT_VERDICT_MIGRATION, "migrator failed: %d %s %s", st.http, st.code, st.message);
    sct_trace(x->s, "migrator: %s (copied %" PRId64 ", cleaned %" PRId64 ")",
              mt_is_ok(&st) ? "done" : "died", stats.rows_copied, stats.rows_cleaned);
    if (doomed) {
        mt_table_destroy(old_t);
        mt_table_destroy(new_t);
    }
    return NULL;
}

/* There and back: forward to use_new_with_tombstones, a swap the authority
 * must refuse there (cleanup has not run: tombstones and phase-3 readers
 * are about), the rest of the migration, the swap, and the migration back
 * with the tables' roles exchanged. */
static mt_status reverse_prelude(exec_ctx *x)
{
    mt_table_pair pair = {.old_t = x->old_t, .new_t = x->new_t};
    mt_migrator_stats stats = {0};
    mt_migrator_hooks early = {.stop_early = true, .until = MT_PHASE_USE_NEW_WITH_TOMBSTONES};
    return mt_migrate_tables(x->rt, x->cfg, &pair, 1, &early, &stats);
}

static void *reverse_actor(void *arg)
{
    exec_ctx *x = arg;
    cfg_authority *auth = sct_fleet_replica_authority(x->fleet, 0);
    mt_table_pair pair = {.old_t = x->old_t, .new_t = x->new_t};
    mt_migrator_stats stats = {0};
    mt_status st = x->prelude;
    if (mt_is_ok(&st)) {
        mt_status sw = cfg_authority_push_swap(auth);
        sct_trace(x->s, "migrator: swap in use_new_with_tombstones: %d %s", sw.http, sw.code);
        if (sw.http == 409) { /* refused, as it must be: finish first */
            mt_migrator_hooks rest = {0};
            st = mt_migrate_tables(x->rt, x->cfg, &pair, 1, &rest, &stats);
            if (mt_is_ok(&st))
                st = cfg_authority_push_swap(auth);
        } else {
            st = sw;
        }
    }
    if (mt_is_ok(&st)) {
        mt_table_pair back = {.old_t = x->new_t, .new_t = x->old_t};
        mt_migrator_hooks all = {0};
        st = mt_migrate_tables(x->rt, x->cfg, &back, 1, &all, &stats);
    }
    if (mt_is_ok(&st)) {
        x->migrated = true;
        x->reversed = true;
    } else {
        fail(x, SCT_VERDICT_MIGRATION, "there and back failed: %d %s %s", st.http, st.code,
             st.message);
    }
    sct_trace(x->s, "migrator: %s (copied %" PRId64 ", cleaned %" PRId64 ")",
              mt_is_ok(&st) ? "back" : "failed", stats.rows_copied, stats.rows_cleaned);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Failover: the authority's migration run (config/cfg_migrate.c) on each    */
/* replica in turn, with its state and checkpoints in the shared store.      */

typedef struct replica_run {
    exec_ctx *x;
    int r;
    cfg_migrate *m;
    /* Rows the copy's saved checkpoint covered when this replica resumed
     * (-1: none): the copy must go on from there, not from the start. */
    int64_t resumed_from;
    bool went_back; /* reported once */
} replica_run;

/* The run's world: one table, the replica's guarded views of it. */
static char **run_list_tables(void *ctx, size_t *n, mt_status *st)
{
    (void)ctx;
    char **names = calloc(2, sizeof *names);
    if (names)
        names[0] = strdup("t");
    if (!names || !names[0]) {
        free(names);
        *st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    *n = 1;
    return names;
}

static void *run_open_tables(void *ctx, char *const *names, size_t n, mt_table_pair *pairs,
                             const char **labels)
{
    replica_run *rr = ctx;
    for (size_t i = 0; i < n; i++) {
        pairs[i] = sct_fleet_replica_tables(rr->x->fleet, rr->r);
        labels[i] = names[i];
    }
    return rr; /* nothing to close */
}

static void run_close_tables(void *ctx, void *handle)
{
    (void)ctx;
    (void)handle;
}

static void run_log(void *ctx, int level, const char *msg)
{
    replica_run *rr = ctx;
    (void)level;
    sct_trace(rr->x->s, "migrator on replica %c: %s", 'a' + rr->r, msg);
}

/* What an operator watches: a copy resumed after a failover goes on from
 * its checkpoint; its done count going back means the copy started over. */
static void run_progress(void *ctx, cfg_migration_state s, const mt_migrator_stats *stats)
{
    replica_run *rr = ctx;
    if (s != CFG_MIG_COPYING || rr->resumed_from < 0 || stats->rows_done >= rr->resumed_from ||
        rr->went_back)
        return;
    rr->went_back = true;
    fail(rr->x, SCT_VERDICT_MIGRATION,
         "replica %c's copy went back to %" PRId64 " rows done, though the checkpoint it took "
         "over covered %" PRId64 ": it started over instead of resuming",
         'a' + rr->r, stats->rows_done, rr->resumed_from);
}

static cfg_migrate *run_new(exec_ctx *x, replica_run *rr, int r)
{
    *rr = (replica_run){.x = x, .r = r, .resumed_from = -1};
    cfg_migrate_env env = {.list_tables = run_list_tables,
                           .open_tables = run_open_tables,
                           .close_tables = run_close_tables,
                           .log = run_log,
                           .progress = run_progress,
                           .ctx = rr};
    rr->m = cfg_migrate_new(x->rt, sct_fleet_replica_service(x->fleet, r),
                            sct_fleet_replica_authority(x->fleet, r), &env);
    return rr->m;
}

/* The rows done that the copy checkpoint in r's saved state records, or -1
 * ("v1 \t table \t rows_total \t partitions_total \t rows_done \t ..."). */
static int64_t saved_copy_rows(exec_ctx *x, int r)
{
    char *doc = NULL;
    cfg_authority_load_migration(sct_fleet_replica_authority(x->fleet, r), &doc);
    const char *cp = doc ? strstr(doc, "\"checkpoint\":\"v1\\t") : NULL;
    int64_t rows = -1;
    if (cp) {
        cp += strlen("\"checkpoint\":\"");
        for (int field = 0; field < 4 && cp; field++) {
            cp = strstr(cp, "\\t");
            cp = cp ? cp + 2 : NULL;
        }
        if (cp)
            rows = strtoll(cp, NULL, 10);
    }
    free(doc);
    return rows;
}

/* Runs the run on replica r to its end, as the daemon's leader does (on a
 * takeover: what the store says, then resume); its final state. */
static cfg_migrate_info run_once(exec_ctx *x, replica_run *rr)
{
    cfg_migrate_info info;
    rr->resumed_from = saved_copy_rows(x, rr->r);
    cfg_migrate_restore(rr->m);
    mt_status st = cfg_migrate_start(rr->m, false, MT_PHASE_USE_NEW_HIDE_METADATA);
    if (mt_is_ok(&st))
        cfg_migrate_join(rr->m);
    cfg_migrate_info_get(rr->m, &info);
    if (!mt_is_ok(&st))
        snprintf(info.error, sizeof info.error, "%d %s: %s", st.http, st.code, st.message);
    sct_trace(x->s, "migrator on replica %c: %s%s%s (copied %" PRId64 ", cleaned %" PRId64 ")",
              'a' + rr->r, cfg_migration_state_name(info.state), info.error[0] ? ": " : "",
              info.error, info.stats.rows_done,
              info.stats.rows_cleaned_old + info.stats.rows_cleaned_new);
    return info;
}

static void *migrator_a(void *arg)
{
    replica_run *rr = arg;
    cfg_migrate_info info = run_once(rr->x, rr);
    if (info.state == CFG_MIG_DONE)
        rr->x->migrated = true;
    return NULL;
}

static void *killer_actor(void *arg)
{
    exec_ctx *x = arg;
    int64_t at = (int64_t)rnd(x, (uint64_t)(8 * x->sc->lease_ms));
    mt_rt *rt = x->rt;
    mt_mutex *mu = rt->ops->mutex_new(rt);
    mt_cond *cv = rt->ops->cond_new(rt);
    rt->ops->lock(rt, mu);
    int64_t until = rt->ops->mono_ms(rt) + at;
    while (rt->ops->cond_timedwait(rt, cv, mu, until))
        ;
    rt->ops->unlock(rt, mu);
    rt->ops->cond_free(rt, cv);
    rt->ops->mutex_free(rt, mu);
    sct_fleet_replica_cut(x->fleet, 0);
    return NULL;
}

/* Waits (boundedly, in quarter leases) until replica r leads. */
static bool wait_leads(exec_ctx *x, int r)
{
    mt_rt *rt = x->rt;
    mt_mutex *mu = rt->ops->mutex_new(rt);
    mt_cond *cv = rt->ops->cond_new(rt);
    bool leads = false;
    for (int i = 0; i < 80 && !(leads = sct_fleet_replica_leads(x->fleet, r)); i++) {
        rt->ops->lock(rt, mu);
        int64_t until = rt->ops->mono_ms(rt) + x->sc->lease_ms / 4;
        while (rt->ops->cond_timedwait(rt, cv, mu, until))
            ;
        rt->ops->unlock(rt, mu);
    }
    rt->ops->cond_free(rt, cv);
    rt->ops->mutex_free(rt, mu);
    return leads;
}

/* Whether a run that ended short stopped because its replica does not
 * lead (its guard's 503 NotLeader, a refused save) rather than failed. */
static bool run_stopped_by_lead(const cfg_migrate_info *info)
{
    return info->state == CFG_MIG_PAUSED || strncmp(info->error, "503 ", 4) == 0 ||
           strstr(info->error, "NotLeader") != NULL;
}

/* Replica a migrates until it is cut off; then replica b, once it leads,
 * takes the run over from the state a saved (the daemon's takeover:
 * restore, then resume from the checkpoint) and must finish it. */
static void run_failover(exec_ctx *x)
{
    mt_rt *rt = x->rt;
    replica_run ra, rb;
    if (!run_new(x, &ra, 0) || !run_new(x, &rb, 1)) {
        fail(x, SCT_VERDICT_MIGRATION, "cannot make the migration runs: out of memory");
        cfg_migrate_free(ra.m);
        return;
    }
    mt_thread *k = rt->ops->thread_start(rt, killer_actor, x, "killer");
    mt_thread *m = rt->ops->thread_start(rt, migrator_a, &ra, "migrator-a");
    rt->ops->thread_join(rt, k);
    cfg_migrate_info info = {.state = CFG_MIG_FAILED};
    if (!wait_leads(x, 1)) {
        fail(x, SCT_VERDICT_LIVENESS, "replica b never took over from a cut-off replica a");
        goto out;
    }
    /* A leader whose beats came late (its process paused) stops leading
     * for a while, and its run stops; it goes on once it leads again, as
     * the daemon's does. */
    snprintf(info.error, sizeof info.error, "not started");
    for (int tries = 0; tries < 20 && info.state != CFG_MIG_DONE; tries++) {
        if (tries > 0 && !wait_leads(x, 1))
            break;
        info = run_once(x, &rb);
        if (info.state != CFG_MIG_DONE && sct_fleet_replica_leads(x->fleet, 1) &&
            !run_stopped_by_lead(&info))
            break; /* failed while leading: a real failure */
    }
    if (info.state != CFG_MIG_DONE) {
        fail(x, SCT_VERDICT_MIGRATION, "the run on replica b ended %s: %s",
             cfg_migration_state_name(info.state), info.error);
        goto out;
    }
    x->migrated = true;
    x->cfg = sct_fleet_replica_service(x->fleet, 1);
out:
    rt->ops->thread_join(rt, m); /* the zombie's run stopped by itself */
    cfg_migrate_free(ra.m);
    cfg_migrate_free(rb.m);
}

/* ------------------------------------------------------------------------ */
/* Set-up, the run, and the checks after it.                                 */

static void seed_rows(exec_ctx *x)
{
    const sct_scenario *sc = x->sc;
    int nkeys = sc->partitions * sc->rows;
    mt_table *target = sc->start >= MT_PHASE_USE_NEW_WITH_TOMBSTONES ? x->new_t : x->old_t;
    for (int placed = 0, tries = 0; placed < sc->initial_rows && tries < 100; tries++) {
        int k = (int)rnd(x, (uint64_t)nkeys);
        mt_entity *e = random_entity(x, x->pks[k / sc->rows], x->rks[k % sc->rows]);
        if (target == x->new_t && rnd(x, 2)) {
            /* a row written during the migration still carries the flag */
            mt_value f = mt_v_bool(false);
            mt_entity_set(e, MT_PROP_DELETED, &f);
        }
        mt_op op = {.kind = MT_OP_INSERT, .entity = e};
        mt_op_result res;
        uint64_t inv = sct_sched_clock(x->s);
        mt_status st = mt_table_batch(target, &op, 1, &res);
        if (mt_is_ok(&st)) {
            /* Clients see the row as an insert that happened first. */
            placed++;
            sct_hop *hop = sct_history_add(x->h, SCT_H_BATCH, sct_sched_current(x->s));
            hop->invoke = inv;
            hop->respond = sct_sched_clock(x->s);
            hop->status = st;
            hop->n = 1;
            hop->ops = calloc(1, sizeof *hop->ops);
            hop->results = calloc(1, sizeof *hop->results);
            mt_entity_remove(e, MT_PROP_DELETED);
            hop->ops[0] = (sct_hbatch_op){.kind = MT_OP_INSERT, .entity = e};
            hop->results[0] = res;
            e = NULL;
        }
        mt_entity_free(e);
    }
    if (target == x->new_t) {
        /* Every partition that can have rows in new is switched. */
        for (int p = 0; p < sc->partitions; p++) {
            mt_entity *meta = mt_entity_new(x->pks[p], MT_RK_META);
            mt_value v = mt_v_i32(MT_PARTITION_SWITCHED);
            mt_entity_set(meta, MT_PROP_STATE, &v);
            mt_op op = {.kind = MT_OP_INSERT, .entity = meta};
            mt_op_result res;
            (void)mt_table_batch(x->old_t, &op, 1, &res);
            mt_entity_free(meta);
        }
    }
}

static void check_cleanup(exec_ctx *x)
{
    /* after the way back the table given as new plays old */
    mt_table *old_t = x->reversed ? x->new_t : x->old_t;
    mt_table *new_t = x->reversed ? x->old_t : x->new_t;
    mt_entity_list rows = {0};
    sct_backend_dump(old_t, &rows);
    if (rows.n > 0)
        fail(x, SCT_VERDICT_MIGRATION, "old table still has %zu rows after cleanup (%s/%s)", rows.n,
             rows.v[0]->pk, rows.v[0]->rk);
    mt_entity_list_clear(&rows);
    sct_backend_dump(new_t, &rows);
    for (size_t i = 0; i < rows.n; i++)
        for (size_t j = 0; j < rows.v[i]->nprops; j++)
            if (strncmp(rows.v[i]->props[j].name, MT_RESERVED_PREFIX, strlen(MT_RESERVED_PREFIX)) ==
                0)
                fail(x, SCT_VERDICT_MIGRATION, "new row %s/%s still has %s after cleanup",
                     rows.v[i]->pk, rows.v[i]->rk, rows.v[i]->props[j].name);
    mt_entity_list_clear(&rows);
}

static void *broken_waiter(void *arg)
{
    void **w = arg;
    mt_rt *rt = w[0];
    rt->ops->lock(rt, w[1]);
    while (!*(bool *)w[3])
        rt->ops->cond_wait(rt, w[2], w[1]);
    rt->ops->unlock(rt, w[1]);
    return NULL;
}

static void *broken_setter(void *arg)
{
    void **w = arg;
    mt_rt *rt = w[0];
    rt->ops->lock(rt, w[1]);
    *(bool *)w[3] = true;
    /* Deliberately broken: no broadcast, so a waiter that already sleeps
     * never wakes. */
    rt->ops->unlock(rt, w[1]);
    return NULL;
}

static void run_broken_wakeup(exec_ctx *x)
{
    mt_rt *rt = x->rt;
    bool flag = false;
    void *w[4] = {rt, rt->ops->mutex_new(rt), rt->ops->cond_new(rt), &flag};
    mt_thread *a = rt->ops->thread_start(rt, broken_waiter, w, "waiter");
    mt_thread *b = rt->ops->thread_start(rt, broken_setter, w, "setter");
    rt->ops->thread_join(rt, a);
    rt->ops->thread_join(rt, b);
    rt->ops->cond_free(rt, w[2]);
    rt->ops->mutex_free(rt, w[1]);
}

static void *main_actor(void *arg)
{
    exec_ctx *x = arg;
    const sct_scenario *sc = x->sc;
    if (sc->broken_wakeup) {
        run_broken_wakeup(x);
        return NULL;
    }
    if (!sc->leases)
        x->cfg = mt_config_local_new(x->rt, sc->start);
    x->old_t = sct_backend_new(x->s, "old");
    x->new_t = sct_backend_new(x->s, "new");
    seed_rows(x);
    if (sc->leases) {
        sct_fleet_opts fo = {.proxies = sc->actors,
                             .lease_ms = sc->lease_ms,
                             .margin_ms = sc->margin_ms,
                             .rest_lease_ms = 4 * sc->lease_ms,
                             .replicas = sc->replicas};
        char why[256];
        x->fleet = sct_fleet_new(x->s, x->old_t, x->new_t, &fo, why, sizeof why);
        if (!x->fleet) {
            fail(x, SCT_VERDICT_LIVENESS, "the control plane did not start: %s", why);
            mt_table_destroy(x->old_t);
            mt_table_destroy(x->new_t);
            return NULL;
        }
        x->cfg = sct_fleet_service(x->fleet);
    }

    if (sc->migrate && sc->reverse)
        x->prelude = reverse_prelude(x);
    actor actors[MAX_ACTORS];
    mt_thread *threads[MAX_ACTORS];
    char name[24];
    for (int i = 0; i < sc->actors; i++) {
        memset(&actors[i], 0, sizeof actors[i]);
        actors[i].x = x;
        actors[i].i = i;
        actors[i].mt = x->fleet ? sct_fleet_table(x->fleet, i)
                                : mt_migrating_new(x->rt, x->cfg, x->old_t, x->new_t);
        snprintf(name, sizeof name, "client%d", i);
        threads[i] = x->rt->ops->thread_start(x->rt, service_actor, &actors[i], name);
    }
    if (sc->migrate && sc->replicas) {
        run_failover(x);
    } else if (sc->migrate && sc->reverse) {
        mt_thread *m = x->rt->ops->thread_start(x->rt, reverse_actor, x, "migrator");
        x->rt->ops->thread_join(x->rt, m);
    } else if (sc->migrate) {
        mt_thread *m = x->rt->ops->thread_start(x->rt, migrator_actor, x, "migrator");
        x->rt->ops->thread_join(x->rt, m);
        if (sc->kill_migrator && !x->migrated) {
            x->kill_budget = INT64_MAX; /* the second one lives */
            m = x->rt->ops->thread_start(x->rt, migrator_actor, x, "migrator2");
            x->rt->ops->thread_join(x->rt, m);
        }
    }
    for (int i = 0; i < sc->actors; i++)
        x->rt->ops->thread_join(x->rt, threads[i]);

    /* Every key once more, through a fresh proxy, after everything. */
    mt_table *final = mt_migrating_new(x->rt, x->cfg, x->old_t, x->new_t);
    for (int p = 0; p < sc->partitions; p++)
        for (int r = 0; r < sc->rows; r++)
            record_retrieve(x, NULL, final, p, r, sct_sched_current(x->s));
    mt_table_destroy(final);
    if (sc->migrate && x->migrated)
        check_cleanup(x);

    if (x->fleet) {
        sct_fleet_free(x->fleet); /* owns the proxies' tables and the service */
    } else {
        for (int i = 0; i < sc->actors; i++)
            mt_table_destroy(actors[i].mt);
        x->cfg->ops->destroy(x->cfg);
    }
    mt_table_destroy(x->old_t);
    mt_table_destroy(x->new_t);
    return NULL;
}

sct_verdict sct_execute(sct_sched *s, const sct_scenario *sc, uint64_t seed, sct_strategy strategy,
                        int pct_depth, uint64_t max_steps, sct_history *h)
{
    exec_ctx *x = calloc(1, sizeof *x);
    x->s = s;
    x->sc = sc;
    x->rt = sct_sched_rt(s);
    x->h = h;
    for (int p = 0; p < MAX_PARTITIONS; p++)
        snprintf(x->pks[p], sizeof x->pks[p], "p%d", p);
    for (int r = 0; r < MAX_ROWS; r++)
        snprintf(x->rks[r], sizeof x->rks[r], "r%d", r);

    sct_sched_set_time_jumps(s, sc->jump_one_in, sc->lease_ms);
    if (sc->step_factor > 1)
        max_steps *= sc->step_factor;
    sct_run_result rr = sct_sched_run(s, seed, strategy, pct_depth, max_steps, main_actor, x);
    sct_verdict v = x->verdict;
    if (rr == SCT_RUN_DEADLOCK || rr == SCT_RUN_STEP_BOUND) {
        v.kind = SCT_VERDICT_LIVENESS;
        snprintf(v.why, sizeof v.why, "%s: %s", sct_run_result_name(rr), sct_sched_report(s));
    } else if (rr == SCT_RUN_ABORTED) {
        v.kind = SCT_VERDICT_CRASH;
        snprintf(v.why, sizeof v.why, "%s", sct_sched_report(s));
    } else if (v.kind == SCT_VERDICT_OK) {
        char why[512];
        sct_check_result cr = sct_check(h, why, sizeof why);
        if (cr != SCT_CHECK_OK) {
            v.kind = cr == SCT_CHECK_STREAM ? SCT_VERDICT_STREAM : SCT_VERDICT_LINEARIZABILITY;
            snprintf(v.why, sizeof v.why, "%s", why);
        }
    }
    free(x);
    return v;
}

void sct_history_print(const sct_history *h, sct_sched *s, FILE *out)
{
    char buf[1024];
    for (size_t i = 0; i < h->n; i++) {
        const sct_hop *op = &h->v[i];
        const char *who = sct_sched_actor_name(s, op->actor);
        sct_hop_describe(op, buf, sizeof buf);
        fprintf(out, "  [%" PRIu64 "..%" PRIu64 "] %s: %s\n", op->invoke, op->respond,
                who ? who : "?", buf);
    }
}

/*
 * test_migrator.c -- the migrator end to end on in-memory tables: a full run
 * from phase 0, a run resumed after the migrator died at every possible
 * backend call, and a rerun of a finished migration; the production copy
 * (1, 4 and 16 partitions at once, checkpoints, pause and resume, progress,
 * the backoff after 503), the pure parts behind it (the token bucket, the
 * checkpoint text), the verify pass and its verdict for each kind of fault
 * alone, and the retrying view's stream across failed page fetches.
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

#include "migrator_internal.h"
#include "mt.h"

/* A table that forwards to another until its call budget runs out, then
 * fails every call with 500: a migrator killed mid-run. */
typedef struct dying {
    mt_table base;
    mt_table *inner;
    long *budget;
} dying;

/* Atomic: the parallel copy calls it from several workers at once. */
static bool spend(dying *d)
{
    return __atomic_sub_fetch(d->budget, 1, __ATOMIC_SEQ_CST) >= 0;
}

static mt_status dead(void)
{
    return mt_error(500, MT_ERR_INTERNAL, "the migrator died");
}

static mt_status d_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *r)
{
    dying *d = (dying *)t;
    return spend(d) ? mt_table_batch(d->inner, ops, n, r) : dead();
}

static mt_status d_query(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    dying *d = (dying *)t;
    return spend(d) ? d->inner->ops->query_atomic(d->inner, pk, f, out) : dead();
}

static mt_status d_stream(mt_table *t, const mt_filter *f, const mt_key *k, mt_stream **out)
{
    dying *d = (dying *)t;
    return spend(d) ? d->inner->ops->query_stream(d->inner, f, k, out) : dead();
}

static mt_status d_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    dying *d = (dying *)t;
    return spend(d) ? d->inner->ops->retrieve(d->inner, pk, rk, out) : dead();
}

static void d_destroy(mt_table *t)
{
    free(t);
}

static const mt_table_ops dying_ops = {d_batch,   d_query, d_stream, d_retrieve,
                                       d_destroy, NULL,    NULL,     NULL};

static mt_table *dying_new(mt_table *inner, long *budget)
{
    dying *d = calloc(1, sizeof *d);
    d->base.ops = &dying_ops;
    d->inner = inner;
    d->budget = budget;
    return &d->base;
}

#define PARTITIONS 3
#define ROWS 5

static void fill_old(mt_table *old_t)
{
    char pk[8], rk[8];
    for (int p = 0; p < PARTITIONS; p++)
        for (int r = 0; r < ROWS; r++) {
            snprintf(pk, sizeof pk, "p%d", p);
            snprintf(rk, sizeof rk, "r%d", r);
            mt_entity *e = mt_entity_new(pk, rk);
            mt_value v = mt_v_i32(p * 100 + r);
            mt_entity_set(e, "n", &v);
            mt_op op = {.kind = MT_OP_INSERT, .entity = e};
            mt_op_result res;
            mt_status st = mt_table_batch(old_t, &op, 1, &res);
            assert_true(mt_is_ok(&st));
            mt_entity_free(e);
        }
}

/* new holds exactly the rows fill_old wrote, clean; old is empty. */
static void assert_migrated(mt_table *old_t, mt_table *new_t, mt_config_service *cfg)
{
    assert_int_equal(mt_memtable_count(old_t), 0);
    mt_entity_list rows = {0};
    mt_status st = mt_table_scan(new_t, NULL, &rows);
    assert_true(mt_is_ok(&st));
    assert_int_equal(rows.n, PARTITIONS * ROWS);
    for (size_t i = 0; i < rows.n; i++) {
        const mt_entity *e = rows.v[i];
        assert_int_equal(e->nprops, 1);
        const mt_value *v = mt_entity_get(e, "n");
        assert_non_null(v);
        int p = e->pk[1] - '0', r = e->rk[1] - '0';
        assert_int_equal(v->u.i32, p * 100 + r);
    }
    mt_entity_list_clear(&rows);
    mt_config c;
    mt_subscription *sub = cfg->ops->subscribe(cfg, NULL, &c);
    cfg->ops->unsubscribe(cfg, sub);
    assert_int_equal(c.phase, MT_PHASE_USE_NEW_HIDE_METADATA);
}

static void test_full_run(void **state)
{
    (void)state;
    mt_rt *rt = mt_rt_pthread();
    mt_table *old_t = mt_memtable_new(rt, "old"), *new_t = mt_memtable_new(rt, "new");
    mt_config_service *cfg = mt_config_local_new(rt, MT_PHASE_USE_OLD_HIDE_METADATA);
    fill_old(old_t);
    mt_migrator_stats stats = {0};
    mt_status st = mt_migrate(rt, cfg, old_t, new_t, &stats);
    assert_true(mt_is_ok(&st));
    assert_int_equal(stats.rows_copied, PARTITIONS * ROWS);
    assert_int_equal(stats.partitions_switched, PARTITIONS);
    assert_migrated(old_t, new_t, cfg);

    /* Running it again finds nothing to do and changes nothing. */
    st = mt_migrate(rt, cfg, old_t, new_t, &stats);
    assert_true(mt_is_ok(&st));
    assert_migrated(old_t, new_t, cfg);
    cfg->ops->destroy(cfg);
    mt_table_destroy(old_t);
    mt_table_destroy(new_t);
}

/* Kill the migrator after k backend calls, for every k, then restart it. */
static void test_restart_after_death_anywhere(void **state)
{
    (void)state;
    mt_rt *rt = mt_rt_pthread();
    long runs = 0;
    for (long k = 0;; k++) {
        mt_table *old_t = mt_memtable_new(rt, "old"), *new_t = mt_memtable_new(rt, "new");
        mt_config_service *cfg = mt_config_local_new(rt, MT_PHASE_USE_OLD_HIDE_METADATA);
        fill_old(old_t);
        long budget = k;
        mt_table *d_old = dying_new(old_t, &budget), *d_new = dying_new(new_t, &budget);
        mt_status st = mt_migrate(rt, cfg, d_old, d_new, NULL);
        bool finished = mt_is_ok(&st);
        if (!finished) {
            assert_int_equal(st.http, 500);
            st = mt_migrate(rt, cfg, old_t, new_t, NULL);
            assert_true(mt_is_ok(&st));
        }
        assert_migrated(old_t, new_t, cfg);
        mt_table_destroy(d_old);
        mt_table_destroy(d_new);
        cfg->ops->destroy(cfg);
        mt_table_destroy(old_t);
        mt_table_destroy(new_t);
        runs++;
        if (finished)
            break;
    }
    /* It took some calls, so deaths at many points were exercised. */
    assert_true(runs > PARTITIONS * ROWS);
}

/* Stopping early leaves the configuration at the asked phase with that
 * phase's work done; a later run finishes. */
static void test_stop_early_then_finish(void **state)
{
    (void)state;
    mt_rt *rt = mt_rt_pthread();
    mt_table *old_t = mt_memtable_new(rt, "old"), *new_t = mt_memtable_new(rt, "new");
    mt_config_service *cfg = mt_config_local_new(rt, MT_PHASE_USE_OLD_HIDE_METADATA);
    fill_old(old_t);
    mt_table_pair pair = {.old_t = old_t, .new_t = new_t};
    mt_migrator_hooks hooks = {.stop_early = true, .until = MT_PHASE_PREFER_NEW};
    mt_migrator_stats stats = {0};
    mt_status st = mt_migrate_tables(rt, cfg, &pair, 1, &hooks, &stats);
    assert_true(mt_is_ok(&st));
    mt_config c;
    cfg->ops->unsubscribe(cfg, cfg->ops->subscribe(cfg, NULL, &c));
    assert_int_equal(c.phase, MT_PHASE_PREFER_NEW);
    assert_int_equal(stats.rows_copied, PARTITIONS * ROWS); /* the copy is done */
    assert_int_equal(mt_memtable_count(new_t), PARTITIONS * ROWS);

    hooks.until = MT_PHASE_USE_NEW_WITH_TOMBSTONES;
    st = mt_migrate_tables(rt, cfg, &pair, 1, &hooks, &stats);
    assert_true(mt_is_ok(&st));
    cfg->ops->unsubscribe(cfg, cfg->ops->subscribe(cfg, NULL, &c));
    assert_int_equal(c.phase, MT_PHASE_USE_NEW_WITH_TOMBSTONES);
    assert_true(mt_memtable_count(old_t) > 0); /* no cleanup yet */

    st = mt_migrate_tables(rt, cfg, &pair, 1, NULL, NULL);
    assert_true(mt_is_ok(&st));
    assert_migrated(old_t, new_t, cfg);
    cfg->ops->destroy(cfg);
    mt_table_destroy(old_t);
    mt_table_destroy(new_t);
}

/* A backend that answers every third call with 503 ServerBusy: the
 * migrator rides it out and finishes in one run. */
static bool flaky_spend(dying *d)
{
    return ++*d->budget % 3 != 0;
}

static mt_status busy(void)
{
    return mt_error(503, MT_ERR_SERVER_BUSY, "The server is busy.");
}

static mt_status f_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *r)
{
    dying *d = (dying *)t;
    return flaky_spend(d) ? mt_table_batch(d->inner, ops, n, r) : busy();
}

static mt_status f_query(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    dying *d = (dying *)t;
    return flaky_spend(d) ? d->inner->ops->query_atomic(d->inner, pk, f, out) : busy();
}

static mt_status f_stream(mt_table *t, const mt_filter *f, const mt_key *k, mt_stream **out)
{
    dying *d = (dying *)t;
    return flaky_spend(d) ? d->inner->ops->query_stream(d->inner, f, k, out) : busy();
}

static mt_status f_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    dying *d = (dying *)t;
    return flaky_spend(d) ? d->inner->ops->retrieve(d->inner, pk, rk, out) : busy();
}

static const mt_table_ops flaky_ops = {f_batch,   f_query, f_stream, f_retrieve,
                                       d_destroy, NULL,    NULL,     NULL};

static void test_transient_errors_ridden_out(void **state)
{
    (void)state;
    mt_rt *rt = mt_rt_pthread();
    mt_table *old_t = mt_memtable_new(rt, "old"), *new_t = mt_memtable_new(rt, "new");
    mt_config_service *cfg = mt_config_local_new(rt, MT_PHASE_USE_OLD_HIDE_METADATA);
    fill_old(old_t);
    long calls = 0;
    dying *fo = calloc(1, sizeof *fo), *fn = calloc(1, sizeof *fn);
    *fo = (dying){.base.ops = &flaky_ops, .inner = old_t, .budget = &calls};
    *fn = (dying){.base.ops = &flaky_ops, .inner = new_t, .budget = &calls};
    mt_migrator_stats stats = {0};
    mt_status st = mt_migrate(rt, cfg, &fo->base, &fn->base, &stats);
    assert_true(mt_is_ok(&st));
    assert_true(calls > 3 * PARTITIONS); /* faults were met */
    assert_true(stats.backoffs > 0);     /* and waited for */
    assert_migrated(old_t, new_t, cfg);
    mt_table_destroy(&fo->base);
    mt_table_destroy(&fn->base);
    cfg->ops->destroy(cfg);
    mt_table_destroy(old_t);
    mt_table_destroy(new_t);
}

/* ------------------------------------------------------------------------ */
/* The production copy.                                                      */

/* Partitions of every shape the chunking meets: larger than one batch (250
 * and 101 rows), exactly one batch, and many of a single row. */
static const struct {
    const char *prefix;
    int partitions, rows;
} shapes[] = {{"a-big", 1, 250}, {"b-101", 1, 101}, {"c-100", 1, 100}, {"s", 300, 1}};
#define SHAPE_ROWS (250 + 101 + 100 + 300)
#define SHAPE_PARTITIONS (3 + 300)

static void put_rows(mt_table *t, const char *pk, int rows)
{
    for (int r0 = 0; r0 < rows; r0 += MT_BATCH_MAX) {
        mt_entity *es[MT_BATCH_MAX];
        mt_op ops[MT_BATCH_MAX];
        mt_op_result res[MT_BATCH_MAX];
        int n = rows - r0 < MT_BATCH_MAX ? rows - r0 : MT_BATCH_MAX;
        for (int i = 0; i < n; i++) {
            char rk[16];
            snprintf(rk, sizeof rk, "r%04d", r0 + i);
            es[i] = mt_entity_new(pk, rk);
            mt_value v = mt_v_str(pk), k = mt_v_i32(r0 + i);
            mt_entity_set(es[i], "pk_copy", &v);
            mt_entity_set(es[i], "n", &k);
            ops[i] = (mt_op){.kind = MT_OP_INSERT, .entity = es[i]};
        }
        mt_status st = mt_table_batch(t, ops, (size_t)n, res);
        assert_true(mt_is_ok(&st));
        for (int i = 0; i < n; i++)
            mt_entity_free(es[i]);
    }
}

static void fill_shapes(mt_table *old_t, const char *table)
{
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int p = 0; p < shapes[s].partitions; p++) {
            char pk[64];
            if (shapes[s].partitions == 1)
                snprintf(pk, sizeof pk, "%s-%s", table, shapes[s].prefix);
            else
                snprintf(pk, sizeof pk, "%s-%s%03d", table, shapes[s].prefix, p);
            put_rows(old_t, pk, shapes[s].rows);
        }
}

/* new holds exactly the user rows of old, with the same content. */
static void assert_copied_exactly(mt_table *old_t, mt_table *new_t)
{
    mt_entity_list o = {0}, n = {0};
    mt_status st = mt_table_scan(old_t, NULL, &o);
    assert_true(mt_is_ok(&st));
    st = mt_table_scan(new_t, NULL, &n);
    assert_true(mt_is_ok(&st));
    size_t j = 0;
    for (size_t i = 0; i < o.n; i++) {
        if (strncmp(o.v[i]->rk, MT_RESERVED_PREFIX, strlen(MT_RESERVED_PREFIX)) == 0)
            continue;
        assert_true(j < n.n);
        assert_true(mt_entity_same_content(o.v[i], n.v[j]));
        j++;
    }
    assert_int_equal(j, n.n);
    mt_entity_list_clear(&o);
    mt_entity_list_clear(&n);
}

/* What the hooks saw and what they answer. */
typedef struct probe {
    char *ckpt; /* the last checkpoint saved */
    int saves;
    long polls;       /* should_pause calls */
    long pause_after; /* answer true from this many polls on; < 0: never */
    int reports;
    mt_migrator_stats first, last; /* copy progress reports */
} probe;

static void p_progress(void *ctx, mt_migrator_step step, const mt_migrator_stats *stats)
{
    probe *p = ctx;
    if (step != MT_STEP_COPYING)
        return;
    /* Progress never runs backwards, and never past the known total. */
    assert_true(p->reports == 0 || stats->rows_done >= p->last.rows_done);
    assert_true(stats->rows_done <= stats->rows_total || stats->rows_total < 0);
    if (p->reports++ == 0)
        p->first = *stats;
    p->last = *stats;
}

static mt_status p_save(void *ctx, const char *text)
{
    probe *p = ctx;
    free(p->ckpt);
    p->ckpt = strdup(text);
    p->saves++;
    return mt_ok();
}

static char *p_load(void *ctx)
{
    probe *p = ctx;
    return p->ckpt ? strdup(p->ckpt) : NULL;
}

static bool p_pause(void *ctx)
{
    probe *p = ctx;
    return p->pause_after >= 0 && ++p->polls > p->pause_after;
}

static mt_migrator_hooks probe_hooks(probe *p, int parallel)
{
    return (mt_migrator_hooks){.progress = p_progress,
                               .ctx = p,
                               .stop_early = true,
                               .until = MT_PHASE_PREFER_NEW,
                               .parallel = parallel,
                               .save_checkpoint = p_save,
                               .load_checkpoint = p_load,
                               .should_pause = p_pause};
}

typedef struct world {
    mt_rt *rt;
    mt_table *old_t[2], *new_t[2];
    mt_table_pair pairs[2];
    size_t n;
    mt_config_service *cfg;
} world;

static void world_init(world *w, size_t ntables)
{
    w->rt = mt_rt_pthread();
    w->n = ntables;
    w->cfg = mt_config_local_new(w->rt, MT_PHASE_USE_OLD_HIDE_METADATA);
    for (size_t i = 0; i < ntables; i++) {
        char name[16];
        snprintf(name, sizeof name, "old%zu", i);
        w->old_t[i] = mt_memtable_new(w->rt, name);
        snprintf(name, sizeof name, "new%zu", i);
        w->new_t[i] = mt_memtable_new(w->rt, name);
        w->pairs[i] = (mt_table_pair){.old_t = w->old_t[i], .new_t = w->new_t[i]};
        fill_shapes(w->old_t[i], i == 0 ? "t0" : "t1");
    }
}

static void world_free(world *w)
{
    w->cfg->ops->destroy(w->cfg);
    for (size_t i = 0; i < w->n; i++) {
        mt_table_destroy(w->old_t[i]);
        mt_table_destroy(w->new_t[i]);
    }
}

static mt_phase phase_of(mt_config_service *cfg)
{
    mt_config c;
    cfg->ops->unsubscribe(cfg, cfg->ops->subscribe(cfg, NULL, &c));
    return c.phase;
}

static void verify_expect(world *w, mt_phase phase, bool after_cleanup, bool ok)
{
    mt_verify_report r;
    const char *names[] = {"t0", "t1"};
    mt_status st = mt_verify_tables(w->rt, w->pairs, names, w->n, phase, after_cleanup, &r);
    assert_true(mt_is_ok(&st));
    if (r.ok != ok)
        fail_msg("verify: %s", r.summary);
}

static void copy_with_parallel(int parallel)
{
    world w;
    world_init(&w, 1);
    probe p = {.pause_after = -1};
    mt_migrator_hooks h = probe_hooks(&p, parallel);
    mt_migrator_stats stats = {0};
    mt_status st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 1, &h, &stats);
    assert_true(mt_is_ok(&st));
    assert_int_equal(phase_of(w.cfg), MT_PHASE_PREFER_NEW);
    assert_copied_exactly(w.old_t[0], w.new_t[0]);
    assert_int_equal(stats.rows_copied, SHAPE_ROWS);
    assert_int_equal(stats.partitions_switched, SHAPE_PARTITIONS);
    assert_int_equal(stats.rows_total, SHAPE_ROWS);
    assert_int_equal(stats.partitions_total, SHAPE_PARTITIONS);
    assert_int_equal(stats.rows_done, SHAPE_ROWS);
    assert_int_equal(stats.partitions_done, SHAPE_PARTITIONS);
    assert_true(p.reports > 0);
    assert_int_equal(p.last.rows_done, SHAPE_ROWS);
    assert_non_null(p.ckpt); /* the final checkpoint: the copy is complete */
    verify_expect(&w, MT_PHASE_PREFER_NEW, false, true);

    /* The rest of the migration, then the cleanup check. */
    st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 1, NULL, NULL);
    assert_true(mt_is_ok(&st));
    assert_int_equal(mt_memtable_count(w.old_t[0]), 0);
    verify_expect(&w, MT_PHASE_USE_NEW_HIDE_METADATA, true, true);
    free(p.ckpt);
    world_free(&w);
}

static void test_parallel_copy(void **state)
{
    (void)state;
    copy_with_parallel(1);
    copy_with_parallel(4);
    copy_with_parallel(16);
}

/* A copy paused after a few chunks, its checkpoint, and a second run that
 * resumes from it and copies the rest, over two tables. */
static void pause_then_resume(int parallel, long pause_after)
{
    world w;
    world_init(&w, 2);
    probe p = {.pause_after = pause_after};
    mt_migrator_hooks h = probe_hooks(&p, parallel);
    mt_migrator_stats stats = {0};
    mt_status st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 2, &h, &stats);
    assert_int_equal(st.http, 409);
    assert_string_equal(st.code, "MigrationPaused");
    assert_int_equal(phase_of(w.cfg), MT_PHASE_PREFER_NEW);
    assert_non_null(p.ckpt);
    mt_copy_ckpt ck;
    st = mt_copy_ckpt_parse(p.ckpt, &ck);
    assert_true(mt_is_ok(&st));
    assert_true(ck.rows_done > 0 && ck.rows_done < 2 * SHAPE_ROWS);
    assert_true(ck.rows_done <= stats.rows_copied);
    int64_t first_copied = stats.rows_copied;
    mt_copy_ckpt_clear(&ck);

    p.pause_after = -1;
    p.reports = 0;
    mt_migrator_stats again = {0};
    st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 2, &h, &again);
    assert_true(mt_is_ok(&st));
    for (size_t i = 0; i < 2; i++)
        assert_copied_exactly(w.old_t[i], w.new_t[i]);
    /* It resumed: it did not copy everything again, and its progress
     * covers the whole migration. */
    assert_true(again.rows_copied < 2 * SHAPE_ROWS);
    assert_true(first_copied + again.rows_copied >= 2 * SHAPE_ROWS);
    assert_true(p.first.rows_done > 0);
    assert_int_equal(again.rows_done, 2 * SHAPE_ROWS);
    assert_int_equal(again.partitions_done, 2 * SHAPE_PARTITIONS);
    assert_int_equal(again.rows_total, 2 * SHAPE_ROWS);
    verify_expect(&w, MT_PHASE_PREFER_NEW, false, true);
    free(p.ckpt);
    world_free(&w);
}

static void test_pause_resume(void **state)
{
    (void)state;
    pause_then_resume(1, 5);   /* inside table 0 */
    pause_then_resume(1, 320); /* inside table 1 */
    pause_then_resume(4, 40);
    pause_then_resume(16, 400);
}

/* A copy that dies (the new table fails from some call on) leaves a
 * checkpoint at the last partition all of whose rows were in; the next run
 * continues from there. */
static void test_resume_after_crash(void **state)
{
    (void)state;
    world w;
    world_init(&w, 1);
    long budget = 150; /* calls to new: into the single-row partitions */
    mt_table *d_new = dying_new(w.new_t[0], &budget);
    mt_table_pair dying_pair = {.old_t = w.old_t[0], .new_t = d_new};
    probe p = {.pause_after = -1};
    mt_migrator_hooks h = probe_hooks(&p, 4);
    mt_status st = mt_migrate_tables(w.rt, w.cfg, &dying_pair, 1, &h, NULL);
    assert_int_equal(st.http, 500);
    assert_non_null(p.ckpt);
    mt_copy_ckpt ck;
    st = mt_copy_ckpt_parse(p.ckpt, &ck);
    assert_true(mt_is_ok(&st));
    assert_non_null(ck.pk);
    assert_true(ck.rows_done > 0);
    mt_copy_ckpt_clear(&ck);

    p.reports = 0; /* a new run: progress restarts from the checkpoint */
    mt_migrator_stats again = {0};
    st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 1, &h, &again);
    assert_true(mt_is_ok(&st));
    assert_true(again.rows_copied < SHAPE_ROWS);
    assert_copied_exactly(w.old_t[0], w.new_t[0]);
    verify_expect(&w, MT_PHASE_PREFER_NEW, false, true);
    mt_table_destroy(d_new);
    free(p.ckpt);
    world_free(&w);
}

static char *bad_load(void *ctx)
{
    (void)ctx;
    return strdup("v1\tnot a number\t0\t0\t0\t0\t-");
}

/* A checkpoint that cannot be read stops the copy instead of guessing. */
static void test_bad_checkpoint_refused(void **state)
{
    (void)state;
    world w;
    world_init(&w, 1);
    mt_migrator_hooks h = {
        .stop_early = true, .until = MT_PHASE_PREFER_NEW, .load_checkpoint = bad_load};
    mt_status st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 1, &h, NULL);
    assert_int_equal(st.http, 400);
    assert_int_equal(mt_memtable_count(w.new_t[0]), 0);
    world_free(&w);
}

/* ------------------------------------------------------------------------ */
/* The pure parts: token bucket, backoff, checkpoint text.                   */

static void test_bucket(void **state)
{
    (void)state;
    mt_bucket b;
    mt_bucket_init(&b, 100, 0); /* 100 rows/s: one chunk a second */
    assert_int_equal(mt_bucket_take(&b, 100, 0), 0);
    assert_int_equal(mt_bucket_take(&b, 100, 0), 1000);
    assert_int_equal(mt_bucket_take(&b, 100, 500), 500);
    assert_int_equal(mt_bucket_take(&b, 100, 1000), 0);

    /* Slower than one chunk a second: granted on a full bucket, then the
     * debt is paid off before the next. */
    mt_bucket_init(&b, 10, 0);
    assert_int_equal(mt_bucket_take(&b, 100, 0), 0);
    assert_int_equal(mt_bucket_take(&b, 100, 0), 10000);
    assert_int_equal(mt_bucket_take(&b, 100, 10000), 0);

    /* A clock going back adds nothing. */
    mt_bucket_init(&b, 1000, 5000);
    assert_int_equal(mt_bucket_take(&b, 100, 5000), 0);
    assert_true(mt_bucket_take(&b, 100, 4000) > 0);

    /* Simulated time: many takers over 60 s get the rate, within a chunk
     * or two, whatever the rate. */
    const double rates[] = {7, 150, 1000, 25000};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        mt_bucket_init(&b, rates[i], 0);
        int64_t now = 0, granted = 0;
        while (now < 60000) {
            int64_t wait = mt_bucket_take(&b, 100, now);
            if (wait == 0)
                granted += 100;
            now += wait == 0 ? 0 : wait;
        }
        double want = rates[i] * 60;
        assert_true(granted <= want + 300);
        assert_true(granted >= want - 300);
    }
}

static void test_backoff_delays(void **state)
{
    (void)state;
    assert_int_equal(mt_backoff_delay_ms(1), 50);
    assert_int_equal(mt_backoff_delay_ms(2), 100);
    assert_int_equal(mt_backoff_delay_ms(6), 1600);
    assert_int_equal(mt_backoff_delay_ms(7), 2000);
    assert_int_equal(mt_backoff_delay_ms(100), 2000);
}

static void test_checkpoint_text(void **state)
{
    (void)state;
    const char *keys[] = {"plain", "tab\there", "100%", "caf\xc3\xa9 \xf0\x9f\x98\x80", "", NULL};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        mt_copy_ckpt c = {.table = i,
                          .pk = (char *)keys[i],
                          .rows_total = -1,
                          .partitions_total = 7,
                          .rows_done = 12345,
                          .partitions_done = 3};
        char *text = mt_copy_ckpt_format(&c);
        assert_non_null(text);
        assert_null(strchr(text, '\n'));
        mt_copy_ckpt back;
        mt_status st = mt_copy_ckpt_parse(text, &back);
        assert_true(mt_is_ok(&st));
        assert_int_equal(back.table, i);
        if (keys[i])
            assert_string_equal(back.pk, keys[i]);
        else
            assert_null(back.pk);
        assert_int_equal(back.rows_total, -1);
        assert_int_equal(back.partitions_total, 7);
        assert_int_equal(back.rows_done, 12345);
        assert_int_equal(back.partitions_done, 3);
        mt_copy_ckpt_clear(&back);
        free(text);
    }
    const char *bad[] = {"",
                         "v2\t0\t0\t0\t0\t0\t-",
                         "v1\t0\t0\t0\t0\t-",
                         "v1\t-1\t0\t0\t0\t0\t-",
                         "v1\t0\t0\t0\t0\t0\tx",
                         "v1\t0\t0\t0\t0\t0\t=a%2",
                         "v1\t0\t0\t0\t0\t0\t=%00",
                         "v1\t0\t0\t0\t0\t0\t=a\tb",
                         "v1\t0x\t0\t0\t0\t0\t-"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mt_copy_ckpt back;
        mt_status st = mt_copy_ckpt_parse(bad[i], &back);
        assert_int_equal(st.http, 400);
        mt_copy_ckpt_clear(&back);
    }
}

/* ------------------------------------------------------------------------ */
/* Verify.                                                                   */

static void test_verify_finds_missing_row(void **state)
{
    (void)state;
    world w;
    world_init(&w, 1);
    /* Before the copy nothing is in new and nothing is switched. */
    mt_verify_report r;
    mt_status st = mt_verify_tables(w.rt, w.pairs, NULL, 1, MT_PHASE_PREFER_OLD, false, &r);
    assert_true(mt_is_ok(&st));
    assert_false(r.ok);
    assert_int_equal(r.missing, SHAPE_ROWS);
    assert_int_equal(r.unswitched, SHAPE_PARTITIONS);

    mt_migrator_hooks h = {.stop_early = true, .until = MT_PHASE_PREFER_NEW, .parallel = 4};
    st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 1, &h, NULL);
    assert_true(mt_is_ok(&st));
    const char *names[] = {"t"};
    st = mt_verify_tables(w.rt, w.pairs, names, 1, MT_PHASE_PREFER_NEW, false, &r);
    assert_true(mt_is_ok(&st));
    assert_true(r.ok);
    assert_int_equal(r.old_rows, SHAPE_ROWS);
    assert_int_equal(r.new_rows, SHAPE_ROWS);
    assert_int_equal(r.protocol_rows, SHAPE_PARTITIONS); /* a meta row each */
    assert_string_equal(r.summary, "ok: 751 rows in old all present in new");

    /* Delete two rows from new behind the protocol's back. */
    mt_entity *gone = mt_entity_new("t0-b-101", "r0007");
    mt_entity *gone2 = mt_entity_new("t0-s123", "r0000");
    mt_op op = {.kind = MT_OP_DELETE, .entity = gone, .if_match = "*"};
    mt_op_result res;
    st = mt_table_batch(w.new_t[0], &op, 1, &res);
    assert_true(mt_is_ok(&st));
    op.entity = gone2;
    st = mt_table_batch(w.new_t[0], &op, 1, &res);
    assert_true(mt_is_ok(&st));
    st = mt_verify_tables(w.rt, w.pairs, names, 1, MT_PHASE_USE_NEW_WITH_TOMBSTONES, false, &r);
    assert_true(mt_is_ok(&st));
    assert_false(r.ok);
    assert_int_equal(r.missing, 2);
    assert_string_equal(r.first_missing, "t: t0-b-101 / r0007");
    assert_string_equal(r.summary, "2 rows of old missing in new, first: t: t0-b-101 / r0007");
    mt_entity_free(gone);
    mt_entity_free(gone2);
    world_free(&w);
}

/* A delete through the protocol leaves a tombstone, and a live row may
 * carry _mtable_deleted (an older proxy wrote it so; here it is put there
 * directly); pushing to use_new_hide_metadata without the cleanup leaves
 * them, and old's rows, for verify to find. */
static void test_verify_finds_protocol_data(void **state)
{
    (void)state;
    world w;
    world_init(&w, 1);
    mt_migrator_hooks h = {.stop_early = true, .until = MT_PHASE_USE_NEW_WITH_TOMBSTONES};
    mt_status st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 1, &h, NULL);
    assert_true(mt_is_ok(&st));
    mt_table *mt = mt_migrating_new(w.rt, w.cfg, w.old_t[0], w.new_t[0]);
    mt_entity *e = mt_entity_new("t0-a-big", "r0001");
    mt_op op = {.kind = MT_OP_INSERT_OR_MERGE, .entity = e};
    mt_op_result res;
    st = mt_table_batch(mt, &op, 1, &res);
    assert_true(mt_is_ok(&st));
    mt_entity_free(e);
    e = mt_entity_new("t0-a-big", "r0002");
    op = (mt_op){.kind = MT_OP_DELETE, .entity = e, .if_match = "*"};
    st = mt_table_batch(mt, &op, 1, &res);
    assert_true(mt_is_ok(&st));
    mt_entity_free(e);
    mt_table_destroy(mt);
    e = mt_entity_new("t0-a-big", "r0003");
    mt_value no = mt_v_bool(false);
    mt_entity_set(e, MT_PROP_DELETED, &no);
    op = (mt_op){.kind = MT_OP_INSERT_OR_REPLACE, .entity = e};
    st = mt_table_batch(w.new_t[0], &op, 1, &res);
    assert_true(mt_is_ok(&st));
    mt_entity_free(e);
    verify_expect(&w, MT_PHASE_USE_NEW_WITH_TOMBSTONES, false, true);

    st = w.cfg->ops->push(w.cfg, MT_PHASE_USE_NEW_HIDE_METADATA);
    assert_true(mt_is_ok(&st));
    mt_verify_report r;
    st = mt_verify_tables(w.rt, w.pairs, NULL, 1, MT_PHASE_USE_NEW_HIDE_METADATA, true, &r);
    assert_true(mt_is_ok(&st));
    assert_false(r.ok);
    assert_int_equal(r.old_rows, SHAPE_ROWS);
    assert_int_equal(r.protocol_rows, SHAPE_PARTITIONS);
    assert_int_equal(r.tombstones, 1);
    assert_int_equal(r.reserved_props, 2); /* the tombstone and the flagged row */
    assert_non_null(strstr(r.summary, "protocol data left"));

    /* The cleanup removes all of it. */
    st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 1, NULL, NULL);
    assert_true(mt_is_ok(&st));
    verify_expect(&w, MT_PHASE_USE_NEW_HIDE_METADATA, true, true);
    /* Checks that make no sense are refused. */
    st = mt_verify_tables(w.rt, w.pairs, NULL, 1, MT_PHASE_USE_NEW_HIDE_METADATA, false, &r);
    assert_int_equal(st.http, 400);
    st = mt_verify_tables(w.rt, w.pairs, NULL, 1, MT_PHASE_PREFER_NEW, true, &r);
    assert_int_equal(st.http, 400);
    world_free(&w);
}

/* Writes e into t as it is, behind the protocol's back. */
static void put_raw(mt_table *t, mt_entity *e)
{
    mt_op op = {.kind = MT_OP_INSERT_OR_REPLACE, .entity = e};
    mt_op_result res;
    mt_status st = mt_table_batch(t, &op, 1, &res);
    assert_true(mt_is_ok(&st));
    mt_entity_free(e);
}

/* Each kind of failure alone makes the verdict fail, with the other counts
 * those of a sound migration. After the copy: one partition of old whose
 * meta row says POPULATED, not SWITCHED, though every row is in new. */
static void test_verify_verdict_unswitched_alone(void **state)
{
    (void)state;
    world w;
    world_init(&w, 1);
    mt_migrator_hooks h = {.stop_early = true, .until = MT_PHASE_PREFER_NEW};
    mt_status st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 1, &h, NULL);
    assert_true(mt_is_ok(&st));
    verify_expect(&w, MT_PHASE_PREFER_NEW, false, true);

    mt_entity *meta = mt_entity_new("t0-s123", MT_RK_META);
    mt_value populated = mt_v_i32(MT_PARTITION_POPULATED);
    mt_entity_set(meta, MT_PROP_STATE, &populated);
    put_raw(w.old_t[0], meta);
    mt_verify_report r;
    st = mt_verify_tables(w.rt, w.pairs, NULL, 1, MT_PHASE_PREFER_NEW, false, &r);
    assert_true(mt_is_ok(&st));
    assert_int_equal(r.missing, 0);
    assert_int_equal(r.unswitched, 1);
    assert_false(r.ok);
    assert_string_equal(r.summary, "1 partitions of old not switched");

    /* A partition with no meta row at all is not switched either. */
    meta = mt_entity_new("t0-s123", MT_RK_META);
    mt_op op = {.kind = MT_OP_DELETE, .entity = meta, .if_match = "*"};
    mt_op_result res;
    st = mt_table_batch(w.old_t[0], &op, 1, &res);
    assert_true(mt_is_ok(&st));
    mt_entity_free(meta);
    st = mt_verify_tables(w.rt, w.pairs, NULL, 1, MT_PHASE_USE_NEW_WITH_TOMBSTONES, false, &r);
    assert_true(mt_is_ok(&st));
    assert_int_equal(r.missing, 0);
    assert_int_equal(r.unswitched, 1);
    assert_false(r.ok);
    world_free(&w);
}

/* A finished migration, cleaned, for the verdicts after cleanup. */
static void world_cleaned(world *w)
{
    world_init(w, 1);
    mt_status st = mt_migrate_tables(w->rt, w->cfg, w->pairs, 1, NULL, NULL);
    assert_true(mt_is_ok(&st));
    verify_expect(w, MT_PHASE_USE_NEW_HIDE_METADATA, true, true);
}

static void verify_cleaned_fails(world *w, int64_t old_total, int64_t tombstones, int64_t reserved)
{
    mt_verify_report r;
    mt_status st =
        mt_verify_tables(w->rt, w->pairs, NULL, 1, MT_PHASE_USE_NEW_HIDE_METADATA, true, &r);
    assert_true(mt_is_ok(&st));
    assert_int_equal(r.old_rows + r.protocol_rows, old_total);
    assert_int_equal(r.tombstones, tombstones);
    assert_int_equal(r.reserved_props, reserved);
    assert_false(r.ok);
    assert_non_null(strstr(r.summary, "protocol data left"));
}

/* After cleanup: one live row of new still carrying an _mtable_ property,
 * nothing else wrong. */
static void test_verify_verdict_reserved_prop_alone(void **state)
{
    (void)state;
    world w;
    world_cleaned(&w);
    mt_entity *e = mt_entity_new("t0-a-big", "r0003");
    mt_value no = mt_v_bool(false);
    mt_entity_set(e, MT_PROP_DELETED, &no);
    put_raw(w.new_t[0], e);
    verify_cleaned_fails(&w, 0, 0, 1);
    world_free(&w);
}

/* After cleanup: one user row left in old, and then one protocol row
 * alone. */
static void test_verify_verdict_old_rows_alone(void **state)
{
    (void)state;
    world w;
    world_cleaned(&w);
    put_raw(w.old_t[0], mt_entity_new("t0-a-big", "r0004"));
    verify_cleaned_fails(&w, 1, 0, 0);
    world_free(&w);

    world_cleaned(&w);
    mt_entity *meta = mt_entity_new("t0-s007", MT_RK_META);
    mt_value sw = mt_v_i32(MT_PARTITION_SWITCHED);
    mt_entity_set(meta, MT_PROP_STATE, &sw);
    put_raw(w.old_t[0], meta);
    verify_cleaned_fails(&w, 1, 0, 0);
    world_free(&w);
}

/* ------------------------------------------------------------------------ */
/* The retrying view's stream.                                               */

/* A table whose streams fail with 500 after every `every` rows they hand
 * out (a page fetch failing between pages), each failure once. */
typedef struct paging {
    mt_table base;
    mt_table *inner;
    int every;
    int failures; /* failed fetches so far */
} paging;

typedef struct paging_stream {
    mt_stream base;
    paging *t;
    mt_stream *inner;
    int served;
} paging_stream;

static mt_status pgs_next(mt_stream *base, mt_entity **out)
{
    paging_stream *s = (paging_stream *)base;
    *out = NULL;
    if (s->served > 0 && s->served % s->t->every == 0) {
        s->served = 0; /* the reopened stream serves a page before failing */
        s->t->failures++;
        return mt_error(500, MT_ERR_INTERNAL, "the page fetch failed");
    }
    mt_status st = s->inner->ops->next(s->inner, out);
    if (mt_is_ok(&st) && *out)
        s->served++;
    return st;
}

static mt_status pgs_continuation(mt_stream *base, mt_key *out, bool *more)
{
    paging_stream *s = (paging_stream *)base;
    return s->inner->ops->continuation(s->inner, out, more);
}

static void pgs_close(mt_stream *base)
{
    paging_stream *s = (paging_stream *)base;
    s->inner->ops->close(s->inner);
    free(s);
}

static const mt_stream_ops paging_stream_ops = {pgs_next, pgs_continuation, pgs_close};

static mt_status pg_stream(mt_table *t, const mt_filter *f, const mt_key *k, mt_stream **out)
{
    paging *fl = (paging *)t;
    paging_stream *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->base.ops = &paging_stream_ops;
    s->t = fl;
    mt_status st = fl->inner->ops->query_stream(fl->inner, f, k, &s->inner);
    if (!mt_is_ok(&st)) {
        free(s);
        return st;
    }
    *out = &s->base;
    return st;
}

static mt_status pg_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *r)
{
    return mt_table_batch(((paging *)t)->inner, ops, n, r);
}

static mt_status pg_query(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    paging *fl = (paging *)t;
    return fl->inner->ops->query_atomic(fl->inner, pk, f, out);
}

static mt_status pg_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    paging *fl = (paging *)t;
    return fl->inner->ops->retrieve(fl->inner, pk, rk, out);
}

static void pg_destroy(mt_table *t)
{
    (void)t; /* on the test's stack */
}

static const mt_table_ops paging_ops = {pg_batch,   pg_query, pg_stream, pg_retrieve,
                                        pg_destroy, NULL,     NULL,      NULL};

/* A read of several pages whose fetch fails between pages, through the
 * migrator's retrying view: every row exactly once, in key order; a keys
 * stream (reopened as a keys stream) as well as a whole-row one. */
static void retrying_stream_resumes(bool keys)
{
    mt_rt *rt = mt_rt_pthread();
    mt_table *t = mt_memtable_new(rt, "t");
    fill_shapes(t, "t0");
    mt_entity_list all = {0};
    mt_status st = mt_table_scan(t, NULL, &all);
    assert_true(mt_is_ok(&st));
    assert_int_equal(all.n, SHAPE_ROWS);

    paging fl = {.base.ops = &paging_ops, .inner = t, .every = 100};
    mt_table *r = mt_mig_retrying_backoff_new(&fl.base, 3, 3, NULL);
    assert_non_null(r->ops->query_keys); /* offered, over a table that does not */
    mt_stream *s = NULL;
    st = keys ? mt_table_keys(r, NULL, &s) : r->ops->query_stream(r, NULL, NULL, &s);
    assert_true(mt_is_ok(&st));
    size_t i = 0;
    for (;;) {
        mt_entity *e = NULL;
        st = s->ops->next(s, &e);
        assert_true(mt_is_ok(&st));
        if (!e)
            break;
        assert_true(i < all.n);
        if (mt_key_cmp(e->pk, e->rk, all.v[i]->pk, all.v[i]->rk) != 0)
            fail_msg("row %zu: %s / %s, expected %s / %s", i, e->pk, e->rk, all.v[i]->pk,
                     all.v[i]->rk);
        mt_entity_free(e);
        i++;
    }
    assert_int_equal(i, all.n);
    assert_true(fl.failures >= 5); /* the read crossed several failed fetches */
    s->ops->close(s);
    mt_table_destroy(r);
    mt_entity_list_clear(&all);
    mt_table_destroy(t);
}

static void test_retrying_stream_resumes_after_last_row(void **state)
{
    (void)state;
    retrying_stream_resumes(false);
    retrying_stream_resumes(true);
}

/* ------------------------------------------------------------------------ */
/* Tables deleted while the migrator runs, and the batched cleanup.          */

/* A table that forwards to another until its call budget runs out, then
 * answers every call 404 TableNotFound: a table deleted meanwhile. Counts
 * the batches it forwarded. */
typedef struct vanishing {
    mt_table base;
    mt_table *inner;
    bool vanishes;
    bool lazy;   /* once gone, a stream opens and answers 404 when read (as Azure's) */
    long budget; /* calls before it vanishes */
    long batches;
} vanishing;

static bool v_there(vanishing *v)
{
    return !v->vanishes || __atomic_sub_fetch(&v->budget, 1, __ATOMIC_SEQ_CST) >= 0;
}

static mt_status v_gone(void)
{
    return mt_error(404, MT_ERR_TABLE_NOT_FOUND, "The table specified does not exist.");
}

static mt_status v_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *r)
{
    vanishing *v = (vanishing *)t;
    if (!v_there(v))
        return v_gone();
    __atomic_add_fetch(&v->batches, 1, __ATOMIC_SEQ_CST);
    return mt_table_batch(v->inner, ops, n, r);
}

static mt_status v_query(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    vanishing *v = (vanishing *)t;
    return v_there(v) ? v->inner->ops->query_atomic(v->inner, pk, f, out) : v_gone();
}

static mt_status gs_next(mt_stream *s, mt_entity **out)
{
    (void)s;
    *out = NULL;
    return v_gone();
}

static mt_status gs_continuation(mt_stream *s, mt_key *k, bool *more)
{
    (void)s;
    (void)k;
    *more = false;
    return v_gone();
}

static void gs_close(mt_stream *s)
{
    free(s);
}

static const mt_stream_ops gone_stream_ops = {gs_next, gs_continuation, gs_close};

static mt_status v_stream(mt_table *t, const mt_filter *f, const mt_key *k, mt_stream **out)
{
    vanishing *v = (vanishing *)t;
    if (v_there(v))
        return v->inner->ops->query_stream(v->inner, f, k, out);
    if (!v->lazy)
        return v_gone();
    mt_stream *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->ops = &gone_stream_ops;
    *out = s;
    return mt_ok();
}

static mt_status v_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    vanishing *v = (vanishing *)t;
    return v_there(v) ? v->inner->ops->retrieve(v->inner, pk, rk, out) : v_gone();
}

static void v_destroy(mt_table *t)
{
    (void)t; /* on the test's stack */
}

static const mt_table_ops vanishing_ops = {v_batch,   v_query, v_stream, v_retrieve,
                                           v_destroy, NULL,    NULL,     NULL};

typedef struct gone_probe {
    probe p;
    int calls;
    size_t table;
    char step[16];
} gone_probe;

static void g_gone(void *ctx, size_t table, const char *step)
{
    gone_probe *g = ctx;
    g->calls++;
    g->table = table;
    snprintf(g->step, sizeof g->step, "%s", step);
}

/* Table 1 of two vanishes after `budget` backend calls (0: before the
 * migration); the migration still completes, table 0 is fully migrated,
 * and table 1 is reported skipped, by the migrator and by verify. */
static void deleted_table_skipped(long budget, int parallel)
{
    world w;
    world_init(&w, 2);
    vanishing vo = {
        .base.ops = &vanishing_ops, .inner = w.old_t[1], .vanishes = true, .budget = budget};
    vanishing vn = vo;
    vn.inner = w.new_t[1];
    mt_table_pair pairs[2] = {w.pairs[0], {.old_t = &vo.base, .new_t = &vn.base}};
    gone_probe g = {.p = {.pause_after = -1}};
    mt_migrator_hooks h = probe_hooks(&g.p, parallel);
    h.ctx = &g;
    h.progress = NULL; /* its ctx is the probe; the gone probe starts with it */
    h.save_checkpoint = NULL;
    h.load_checkpoint = NULL;
    h.should_pause = NULL;
    h.stop_early = false;
    h.table_gone = g_gone;
    mt_migrator_stats stats = {0};
    mt_status st = mt_migrate_tables(w.rt, w.cfg, pairs, 2, &h, &stats);
    if (!mt_is_ok(&st))
        fail_msg("%d %s: %s", st.http, st.code, st.message);
    assert_int_equal(phase_of(w.cfg), MT_PHASE_USE_NEW_HIDE_METADATA);
    assert_true(g.calls >= 1);
    assert_int_equal(g.table, 1);
    assert_true(stats.tables_skipped >= 1);
    assert_true(stats.rows_done <= stats.rows_total);
    assert_int_equal(mt_memtable_count(w.old_t[0]), 0);
    assert_int_equal(mt_memtable_count(w.new_t[0]), SHAPE_ROWS);

    mt_verify_report r;
    const char *names[] = {"t0", "t1"};
    st = mt_verify_tables(w.rt, pairs, names, 2, MT_PHASE_USE_NEW_HIDE_METADATA, true, &r);
    assert_true(mt_is_ok(&st));
    if (!r.ok)
        fail_msg("verify: %s", r.summary);
    assert_int_equal(r.tables_skipped, 1);
    assert_string_equal(r.skipped, "t1");
    assert_non_null(strstr(r.summary, "1 deleted table skipped (t1)"));
    world_free(&w);
}

static void test_deleted_table_skipped(void **state)
{
    (void)state;
    deleted_table_skipped(0, 1); /* before the migration */
    deleted_table_skipped(0, 4);
    deleted_table_skipped(40, 1); /* during the copy */
    deleted_table_skipped(40, 8);
    deleted_table_skipped(400, 4);
}

static void c_progress(void *ctx, mt_migrator_step step, const mt_migrator_stats *stats)
{
    probe *p = ctx;
    if (step != MT_STEP_CLEANING)
        return;
    /* Cleanup counts never run backwards nor past their totals. */
    assert_true(stats->rows_cleaned_old >= p->last.rows_cleaned_old);
    assert_true(stats->clean_total_old < 0 || stats->rows_cleaned_old <= stats->clean_total_old);
    assert_true(stats->clean_total_new < 0 || stats->rows_cleaned_new <= stats->clean_total_new);
    p->reports++;
    p->last = *stats;
}

/* The cleanup deletes old's rows a partition's batch at a time (about a
 * hundredth of the calls for big partitions), with `parallel` workers,
 * counts both sides against totals, pauses on request and resumes by
 * running again. */
static void cleanup_batched_pausable(int parallel)
{
    world w;
    world_init(&w, 1);
    vanishing vo = {.base.ops = &vanishing_ops, .inner = w.old_t[0]};
    mt_table_pair pair = {.old_t = &vo.base, .new_t = w.new_t[0]};
    mt_migrator_hooks h = {.stop_early = true, .until = MT_PHASE_USE_NEW_WITH_TOMBSTONES};
    mt_status st = mt_migrate_tables(w.rt, w.cfg, &pair, 1, &h, NULL);
    assert_true(mt_is_ok(&st));
    /* A tombstone in new for the cleanup to delete. */
    mt_table *mt = mt_migrating_new(w.rt, w.cfg, &vo.base, w.new_t[0]);
    mt_entity *e = mt_entity_new("t0-a-big", "r0001");
    mt_op op = {.kind = MT_OP_DELETE, .entity = e, .if_match = "*"};
    mt_op_result res;
    st = mt_table_batch(mt, &op, 1, &res);
    assert_true(mt_is_ok(&st));
    mt_entity_free(e);
    mt_table_destroy(mt);

    probe p = {.pause_after = 2};
    mt_migrator_hooks c = {.progress = c_progress,
                           .ctx = &p,
                           .should_pause = p_pause,
                           .parallel = parallel,
                           .save_checkpoint = p_save,
                           .load_checkpoint = p_load};
    mt_migrator_stats stats = {.clean_total_old = -1, .clean_total_new = -1};
    vo.batches = 0;
    st = mt_migrate_tables(w.rt, w.cfg, &pair, 1, &c, &stats);
    assert_int_equal(st.http, 409);
    assert_string_equal(st.code, MT_ERR_MIGRATION_PAUSED);
    assert_true(mt_memtable_count(w.old_t[0]) > 0);
    int64_t first_part = stats.rows_cleaned_old;
    /* Paused in old: new is done and says so. */
    assert_non_null(p.ckpt);
    assert_string_equal(p.ckpt, "c1\t1\t0");

    p.pause_after = -1;
    st = mt_migrate_tables(w.rt, w.cfg, &pair, 1, &c, &stats);
    assert_true(mt_is_ok(&st));
    assert_int_equal(mt_memtable_count(w.old_t[0]), 0);
    assert_int_equal(mt_memtable_count(w.new_t[0]), SHAPE_ROWS - 1);
    /* Every row of old: the user rows and one meta row a partition. */
    assert_int_equal(stats.rows_cleaned_old, SHAPE_ROWS + SHAPE_PARTITIONS);
    assert_int_equal(stats.clean_total_old, SHAPE_ROWS + SHAPE_PARTITIONS);
    /* Workers may not have finished a job of old when the pause came. */
    assert_true((first_part > 0 || parallel > 1) && first_part < stats.rows_cleaned_old);
    assert_int_equal(stats.rows_cleaned_new, 1); /* the tombstone */
    assert_int_equal(stats.clean_total_new, 1);
    assert_int_equal(stats.rows_cleaned, stats.rows_cleaned_old + stats.rows_cleaned_new);
    assert_int_equal(p.last.rows_cleaned_old, stats.rows_cleaned_old);
    /* One batch per chunk: 3 + 2 + 2 for the big partitions, one for each
     * of the 300 small ones, instead of one call per row. */
    assert_int_equal(vo.batches, 3 + 2 + 2 + 300);
    assert_string_equal(p.ckpt, "c1\t1\t1"); /* both sides of the one table */
    free(p.ckpt);
    verify_expect(&w, MT_PHASE_USE_NEW_HIDE_METADATA, true, true);
    world_free(&w);
}

static void test_cleanup_batched_pausable(void **state)
{
    (void)state;
    cleanup_batched_pausable(1);
    cleanup_batched_pausable(4);
    cleanup_batched_pausable(16);
}

/* A table that offers query_keys over another (which does not): its keys
 * streams hand out rows with their keys and ETag only, and the first one
 * opened reads slowly, a row per `lag_us`. Counts the streams opened. */
typedef struct keyed {
    mt_table base;
    mt_table *inner;
    long lag_us;
    int keys_opened, streams_opened;
} keyed;

typedef struct keyed_stream {
    mt_stream base;
    mt_stream *inner;
    long lag_us;
} keyed_stream;

static mt_status ks_next(mt_stream *s, mt_entity **out)
{
    keyed_stream *ks = (keyed_stream *)s;
    if (ks->lag_us > 0) {
        struct timespec ts = {0, ks->lag_us * 1000};
        nanosleep(&ts, NULL);
    }
    mt_entity *e = NULL;
    mt_status st = ks->inner->ops->next(ks->inner, &e);
    *out = NULL;
    if (mt_is_ok(&st) && e) {
        *out = mt_entity_new(e->pk, e->rk);
        assert_non_null(*out);
        mt_entity_set_etag(*out, e->etag);
        mt_entity_free(e);
    }
    return st;
}

static mt_status ks_continuation(mt_stream *s, mt_key *k, bool *more)
{
    keyed_stream *ks = (keyed_stream *)s;
    return ks->inner->ops->continuation(ks->inner, k, more);
}

static void ks_close(mt_stream *s)
{
    keyed_stream *ks = (keyed_stream *)s;
    ks->inner->ops->close(ks->inner);
    free(ks);
}

static const mt_stream_ops keyed_stream_ops = {ks_next, ks_continuation, ks_close};

static mt_status k_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *r)
{
    return mt_table_batch(((keyed *)t)->inner, ops, n, r);
}

static mt_status k_query(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    keyed *k = (keyed *)t;
    return k->inner->ops->query_atomic(k->inner, pk, f, out);
}

static mt_status k_stream(mt_table *t, const mt_filter *f, const mt_key *start, mt_stream **out)
{
    keyed *k = (keyed *)t;
    __atomic_add_fetch(&k->streams_opened, 1, __ATOMIC_SEQ_CST);
    return k->inner->ops->query_stream(k->inner, f, start, out);
}

static mt_status k_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    keyed *k = (keyed *)t;
    return k->inner->ops->retrieve(k->inner, pk, rk, out);
}

static mt_status k_keys(mt_table *t, const mt_key *start, mt_stream **out)
{
    keyed *k = (keyed *)t;
    bool first = __atomic_add_fetch(&k->keys_opened, 1, __ATOMIC_SEQ_CST) == 1;
    keyed_stream *ks = calloc(1, sizeof *ks);
    assert_non_null(ks);
    mt_status st = k->inner->ops->query_stream(k->inner, NULL, start, &ks->inner);
    if (!mt_is_ok(&st)) {
        free(ks);
        return st;
    }
    ks->base.ops = &keyed_stream_ops;
    ks->lag_us = first ? k->lag_us : 0;
    *out = &ks->base;
    return st;
}

static const mt_table_ops keyed_ops = {k_batch,   k_query, k_stream, k_retrieve,
                                       v_destroy, k_keys,  NULL,     NULL};

/* The cleanup reads old by keys alone (the count and the walk), whatever
 * is left of old (empty) or kept (keep), and its count of old is exact
 * although it runs beside the deletes: however slow the count, no row is
 * deleted before it was counted, nor counted twice. */
static void cleanup_reads_keys(int parallel, mt_old_after after, long lag_us)
{
    world w;
    world_init(&w, 1);
    keyed ko = {.base.ops = &keyed_ops, .inner = w.old_t[0], .lag_us = lag_us};
    mt_table_pair pair = {.old_t = &ko.base, .new_t = w.new_t[0]};
    mt_migrator_hooks h = {.stop_early = true, .until = MT_PHASE_USE_NEW_WITH_TOMBSTONES};
    mt_status st = mt_migrate_tables(w.rt, w.cfg, &pair, 1, &h, NULL);
    assert_true(mt_is_ok(&st));
    ko.keys_opened = ko.streams_opened = 0;

    probe p = {.pause_after = -1};
    mt_migrator_hooks c = {
        .progress = c_progress, .ctx = &p, .parallel = parallel, .old_after = after};
    mt_migrator_stats stats = {.clean_total_old = -1, .clean_total_new = -1};
    st = mt_migrate_tables(w.rt, w.cfg, &pair, 1, &c, &stats);
    assert_true(mt_is_ok(&st));
    int64_t want = after == MT_OLD_AFTER_KEEP ? SHAPE_PARTITIONS : SHAPE_ROWS + SHAPE_PARTITIONS;
    assert_int_equal(stats.rows_cleaned_old, want);
    assert_int_equal(stats.clean_total_old, want);
    assert_int_equal(p.last.clean_total_old, want);
    assert_int_equal(mt_memtable_count(w.old_t[0]), after == MT_OLD_AFTER_KEEP ? SHAPE_ROWS : 0);
    assert_int_equal(ko.keys_opened, 2); /* the count and the walk */
    assert_int_equal(ko.streams_opened, 0);
    if (after == MT_OLD_AFTER_EMPTY)
        verify_expect(&w, MT_PHASE_USE_NEW_HIDE_METADATA, true, true);
    world_free(&w);
}

static void test_cleanup_reads_keys(void **state)
{
    (void)state;
    cleanup_reads_keys(1, MT_OLD_AFTER_EMPTY, 0);
    cleanup_reads_keys(4, MT_OLD_AFTER_EMPTY, 0);
    cleanup_reads_keys(4, MT_OLD_AFTER_EMPTY, 200); /* a count slower than the deletes */
    cleanup_reads_keys(16, MT_OLD_AFTER_EMPTY, 200);
    cleanup_reads_keys(4, MT_OLD_AFTER_KEEP, 200);
}

/* ------------------------------------------------------------------------ */
/* What the cleanup makes of old (--old-after).                              */

static void verify_after_expect(world *w, mt_old_after a, bool ok, mt_verify_report *r)
{
    mt_status st = mt_verify_tables_after(w->rt, w->pairs, NULL, w->n,
                                          MT_PHASE_USE_NEW_HIDE_METADATA, true, a, r);
    assert_true(mt_is_ok(&st));
    if (r->ok != ok)
        fail_msg("verify (%s): %s", mt_old_after_name(a), r->summary);
}

/* keep: old's user rows stay, its protocol rows go; verify holds it to
 * that and not to an empty old. */
static void test_cleanup_keeps_old(void **state)
{
    (void)state;
    world w;
    world_init(&w, 1);
    mt_migrator_hooks h = {.old_after = MT_OLD_AFTER_KEEP, .parallel = 4};
    mt_status st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 1, &h, NULL);
    assert_true(mt_is_ok(&st));
    assert_int_equal(phase_of(w.cfg), MT_PHASE_USE_NEW_HIDE_METADATA);
    assert_int_equal(mt_memtable_count(w.old_t[0]), SHAPE_ROWS);
    assert_copied_exactly(w.old_t[0], w.new_t[0]);
    mt_verify_report r;
    verify_after_expect(&w, MT_OLD_AFTER_KEEP, true, &r);
    assert_int_equal(r.old_rows, SHAPE_ROWS);
    assert_int_equal(r.protocol_rows, 0);
    assert_string_equal(r.summary, "ok: old keeps 751 rows of the application and no protocol "
                                   "row, and the 751 rows of new carry no protocol data");
    verify_after_expect(&w, MT_OLD_AFTER_EMPTY, false, &r);

    /* A protocol row left in the kept old fails it. */
    mt_entity *meta = mt_entity_new("t0-s001", MT_RK_META);
    mt_value sw = mt_v_i32(MT_PARTITION_SWITCHED);
    mt_entity_set(meta, MT_PROP_STATE, &sw);
    put_raw(w.old_t[0], meta);
    verify_after_expect(&w, MT_OLD_AFTER_KEEP, false, &r);
    assert_int_equal(r.protocol_rows, 1);
    world_free(&w);
}

typedef struct dropper {
    vanishing *old[2];
    int calls[2];
    int bad_calls; /* before new was clean */
    world *w;
} dropper;

static mt_status drop_old(void *ctx, size_t table)
{
    dropper *d = ctx;
    mt_verify_report r;
    mt_status st =
        mt_verify_tables_after(d->w->rt, d->w->pairs, NULL, d->w->n, MT_PHASE_USE_NEW_HIDE_METADATA,
                               true, MT_OLD_AFTER_KEEP, &r);
    if (!mt_is_ok(&st) || r.tombstones || r.reserved_props)
        d->bad_calls++;
    d->calls[table]++;
    if (d->old[table]->vanishes)
        return v_gone();
    d->old[table]->vanishes = true;
    d->old[table]->budget = 0;
    return mt_ok();
}

/* delete: each old table is deleted through the hook once new is clean;
 * verify holds the old tables to being gone. */
static void test_cleanup_deletes_old(void **state)
{
    (void)state;
    world w;
    world_init(&w, 2);
    vanishing vo[2];
    dropper d = {.w = &w};
    for (int i = 0; i < 2; i++) {
        vo[i] = (vanishing){.base.ops = &vanishing_ops, .inner = w.old_t[i], .lazy = i == 1};
        w.pairs[i].old_t = &vo[i].base;
        d.old[i] = &vo[i];
    }
    mt_migrator_hooks h = {
        .old_after = MT_OLD_AFTER_DELETE, .delete_old = drop_old, .ctx = &d, .parallel = 1};
    mt_status st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 2, &h, NULL);
    assert_true(mt_is_ok(&st));
    assert_int_equal(d.calls[0], 1);
    assert_int_equal(d.calls[1], 1);
    assert_int_equal(d.bad_calls, 0);
    mt_verify_report r;
    verify_after_expect(&w, MT_OLD_AFTER_DELETE, true, &r);
    assert_int_equal(r.old_tables_left, 0);
    assert_int_equal(r.tables_skipped, 0);
    assert_int_equal(r.new_rows, 2 * SHAPE_ROWS);

    /* Run again (a resume after the deletes): nothing is left to do, and
     * a table already gone is no error. */
    st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 2, &h, NULL);
    assert_true(mt_is_ok(&st));

    /* An old table still there fails it. */
    vo[1].vanishes = false;
    verify_after_expect(&w, MT_OLD_AFTER_DELETE, false, &r);
    assert_int_equal(r.old_tables_left, 1);
    assert_non_null(strstr(r.summary, "1 old tables not deleted"));

    /* Without an account to delete from, delete is refused. */
    h.delete_old = NULL;
    st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 2, &h, NULL);
    assert_int_equal(st.http, 400);
    world_free(&w);
}

/* An account that plays old for the recreating cleanup: its hooks drop
 * and create the tables through it, refusing the first creations with 409
 * TableBeingDeleted as the service does for a while after a delete. */
typedef struct recreator {
    mt_account *acct;
    mt_table *h[2]; /* the pairs' old tables: handles of acct */
    char names[2][8];
    int deletes[2], creates[2];
    int refuse;          /* creations still to refuse */
    bool app_deleted[2]; /* gone from new: the creation answers 404 */
    bool no_drop;        /* credentials that may not delete a table: 403 */
    int gone_reported;
    probe p; /* pause and checkpoints */
} recreator;

static mt_status rc_delete(void *ctx, size_t i)
{
    recreator *r = ctx;
    r->deletes[i]++;
    if (r->no_drop)
        return mt_error(403, "AuthorizationPermissionMismatch", "no permission");
    return mt_account_delete(r->acct, r->names[i]);
}

static mt_status rc_recreate(void *ctx, size_t i)
{
    recreator *r = ctx;
    if (r->app_deleted[i])
        return mt_error(404, MT_ERR_TABLE_NOT_FOUND, "gone from new");
    if (r->refuse > 0) {
        r->refuse--;
        return mt_error(409, MT_ERR_TABLE_BEING_DELETED, "being deleted");
    }
    r->creates[i]++;
    mt_status st = mt_account_create(r->acct, r->names[i], NULL);
    return mt_table_existed(&st) ? mt_ok() : st;
}

static bool rc_pause(void *ctx)
{
    return p_pause(&((recreator *)ctx)->p);
}

static mt_status rc_save(void *ctx, const char *text)
{
    return p_save(&((recreator *)ctx)->p, text);
}

static char *rc_load(void *ctx)
{
    return p_load(&((recreator *)ctx)->p);
}

static void rc_gone(void *ctx, size_t table, const char *step)
{
    recreator *r = ctx;
    assert_int_equal(table, 1);
    assert_string_equal(step, "cleaning");
    r->gone_reported++;
}

/* A world whose old tables are tables of a memory account, migrated with
 * the recreating cleanup's hooks. */
static void recreator_init(recreator *r, world *w)
{
    world_init(w, 2);
    r->acct = mt_memaccount_new(w->rt, "old");
    assert_non_null(r->acct);
    for (size_t i = 0; i < 2; i++) {
        snprintf(r->names[i], sizeof r->names[i], "old%zu", i);
        mt_status st = mt_account_create(r->acct, r->names[i], NULL);
        assert_true(mt_is_ok(&st));
        r->h[i] = mt_account_open(r->acct, r->names[i], &st);
        assert_non_null(r->h[i]);
        fill_shapes(r->h[i], i == 0 ? "t0" : "t1");
        w->pairs[i].old_t = r->h[i];
    }
    r->p.pause_after = -1;
}

static mt_migrator_hooks recreator_hooks(recreator *r, int parallel)
{
    return (mt_migrator_hooks){.ctx = r,
                               .parallel = parallel,
                               .old_after = MT_OLD_AFTER_EMPTY,
                               .delete_old = rc_delete,
                               .recreate_old = rc_recreate,
                               .table_gone = rc_gone,
                               .should_pause = rc_pause,
                               .save_checkpoint = rc_save,
                               .load_checkpoint = rc_load};
}

static void recreator_free(recreator *r, world *w)
{
    for (size_t i = 0; i < 2; i++)
        mt_table_destroy(r->h[i]);
    mt_account_destroy(r->acct);
    free(r->p.ckpt);
    world_free(w);
}

/* empty, with an account: each old table dropped and created again once
 * new is clean, the creation asked again while the service is still
 * deleting; its rows counted as cleaned; verify finds old there and empty,
 * through the same handles. */
static void cleanup_recreates_old(int parallel)
{
    world w;
    recreator r = {.refuse = 3};
    recreator_init(&r, &w);
    mt_migrator_hooks h = recreator_hooks(&r, parallel);
    mt_migrator_stats stats = {.clean_total_old = -1, .clean_total_new = -1};
    mt_status st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 2, &h, &stats);
    assert_true(mt_is_ok(&st));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r.deletes[i], 1);
        assert_int_equal(r.creates[i], 1);
    }
    assert_int_equal(r.refuse, 0);
    assert_true(stats.backoffs >= 3);
    /* Every row of old: the user rows and one meta row a partition. */
    assert_int_equal(stats.rows_cleaned_old, 2 * (SHAPE_ROWS + SHAPE_PARTITIONS));
    assert_int_equal(stats.clean_total_old, stats.rows_cleaned_old);
    mt_verify_report rep;
    verify_after_expect(&w, MT_OLD_AFTER_EMPTY, true, &rep);
    assert_int_equal(rep.new_rows, 2 * SHAPE_ROWS);
    recreator_free(&r, &w);
}

static void test_cleanup_recreates_old(void **state)
{
    (void)state;
    cleanup_recreates_old(1);
    cleanup_recreates_old(4);
}

/* Credentials that may delete rows but not the table: emptied row by row,
 * the table never gone. */
static void test_cleanup_empties_without_drop(void **state)
{
    (void)state;
    world w;
    recreator r = {.no_drop = true};
    recreator_init(&r, &w);
    mt_migrator_hooks h = recreator_hooks(&r, 4);
    mt_migrator_stats stats = {.clean_total_old = -1, .clean_total_new = -1};
    mt_status st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 2, &h, &stats);
    assert_true(mt_is_ok(&st));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r.deletes[i], 1);
        assert_int_equal(r.creates[i], 0);
    }
    assert_int_equal(stats.rows_cleaned_old, 2 * (SHAPE_ROWS + SHAPE_PARTITIONS));
    assert_int_equal(stats.clean_total_old, stats.rows_cleaned_old);
    mt_verify_report rep;
    verify_after_expect(&w, MT_OLD_AFTER_EMPTY, true, &rep);
    recreator_free(&r, &w);
}

/* A pause while the service still deletes the table: the rows dropped are
 * counted and saved; the next run finds the table gone, creates it and
 * ends with the same counts. A table the application deleted meanwhile is
 * not created again, and is reported skipped. */
static void test_cleanup_recreate_paused(void **state)
{
    (void)state;
    world w;
    recreator r = {.refuse = 1000};
    recreator_init(&r, &w);
    r.app_deleted[1] = true;
    mt_migrator_hooks h = recreator_hooks(&r, 1);
    mt_migrator_stats stats = {.clean_total_old = -1, .clean_total_new = -1};
    h.stop_early = true; /* the copy first, unpaused */
    h.until = MT_PHASE_PREFER_NEW;
    mt_status st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 2, &h, &stats);
    assert_true(mt_is_ok(&st));
    h.stop_early = false;
    r.p.polls = 0;
    r.p.pause_after = 2;
    st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 2, &h, &stats);
    assert_int_equal(st.http, 409);
    assert_string_equal(st.code, MT_ERR_MIGRATION_PAUSED);
    assert_int_equal(r.deletes[0], 1);
    assert_int_equal(r.creates[0], 0);
    assert_int_equal(stats.rows_cleaned_old, SHAPE_ROWS + SHAPE_PARTITIONS);
    assert_string_equal(r.p.ckpt, "c1\t1\t0"); /* saved after the drop */
    mt_entity *e = NULL;
    st = r.h[0]->ops->retrieve(r.h[0], "t0-a-big", "r0001", &e);
    assert_true(mt_table_gone(&st));

    r.refuse = 0;
    r.p.pause_after = -1;
    st = mt_migrate_tables(w.rt, w.cfg, w.pairs, 2, &h, &stats);
    assert_true(mt_is_ok(&st));
    assert_int_equal(r.creates[0], 1);
    assert_int_equal(r.creates[1], 0);
    assert_int_equal(r.gone_reported, 1);
    assert_int_equal(stats.tables_skipped, 1);
    assert_int_equal(stats.rows_cleaned_old, 2 * (SHAPE_ROWS + SHAPE_PARTITIONS));
    assert_int_equal(stats.clean_total_old, stats.rows_cleaned_old);
    assert_int_equal(mt_memtable_count(w.old_t[0]), SHAPE_ROWS); /* unused */
    st = r.h[0]->ops->retrieve(r.h[0], "t0-a-big", "r0001", &e);
    assert_int_equal(st.http, 404); /* the table is back, the row is not */
    assert_false(mt_table_gone(&st));
    recreator_free(&r, &w);
}

static void test_old_after_names(void **state)
{
    (void)state;
    const char *names[] = {"empty", "keep", "delete"};
    for (int i = 0; i < 3; i++) {
        mt_old_after a;
        assert_true(mt_old_after_parse(names[i], &a));
        assert_string_equal(mt_old_after_name(a), names[i]);
    }
    mt_old_after a = MT_OLD_AFTER_KEEP;
    assert_false(mt_old_after_parse("Empty", &a));
    assert_false(mt_old_after_parse("", &a));
    assert_int_equal(a, MT_OLD_AFTER_KEEP);
}

/* ------------------------------------------------------------------------ */
/* Going back before any partition is switched.                              */

/* Writes n rows into partition pk through the protocol, as one batch. */
static void write_through(world *w, const char *pk, int n)
{
    mt_table *mt = mt_migrating_new(w->rt, w->cfg, w->old_t[0], w->new_t[0]);
    mt_entity *es[MT_BATCH_MAX];
    mt_op ops[MT_BATCH_MAX];
    mt_op_result res[MT_BATCH_MAX];
    for (int i = 0; i < n; i++) {
        char rk[16];
        snprintf(rk, sizeof rk, "w%04d", i);
        es[i] = mt_entity_new(pk, rk);
        ops[i] = (mt_op){.kind = MT_OP_INSERT_OR_REPLACE, .entity = es[i]};
    }
    mt_status st = mt_table_batch(mt, ops, (size_t)n, res);
    assert_true(mt_is_ok(&st));
    for (int i = 0; i < n; i++)
        mt_entity_free(es[i]);
    mt_table_destroy(mt);
}

/* prefer_old's guarded writes leave POPULATED partitions, which a step
 * back may leave behind; a 100-operation batch in a settled prefer_old
 * switches its partition, which the check finds. The protocol rows of old
 * are then deleted, and nothing else. */
static void test_step_back_check_and_clean(void **state)
{
    (void)state;
    world w;
    world_init(&w, 1);
    mt_status st = w.cfg->ops->push(w.cfg, MT_PHASE_PREFER_OLD);
    assert_true(mt_is_ok(&st));
    write_through(&w, "t0-a-big", 3);
    const char *names[] = {"t0"};
    bool found = true;
    char where[64];
    st = mt_find_switched(w.rt, w.pairs, names, 1, &found, where, sizeof where);
    assert_true(mt_is_ok(&st));
    assert_false(found);
    assert_string_equal(where, "");
    assert_int_equal(mt_memtable_count(w.new_t[0]), 0);

    write_through(&w, "t0-c-100", MT_BATCH_MAX);
    assert_int_equal(mt_memtable_count(w.new_t[0]), MT_BATCH_MAX);
    st = mt_find_switched(w.rt, w.pairs, names, 1, &found, where, sizeof where);
    assert_true(mt_is_ok(&st));
    assert_true(found);
    assert_string_equal(where, "t0 / t0-c-100");

    int64_t removed = 0;
    st = mt_clean_protocol_rows(w.rt, w.pairs, 1, &removed);
    assert_true(mt_is_ok(&st));
    assert_int_equal(removed, 3); /* a meta row each, one assertion row */
    assert_int_equal(mt_memtable_count(w.old_t[0]), SHAPE_ROWS + 3);
    st = mt_find_switched(w.rt, w.pairs, NULL, 1, &found, where, sizeof where);
    assert_true(mt_is_ok(&st));
    assert_false(found);
    st = mt_clean_protocol_rows(w.rt, w.pairs, 1, &removed);
    assert_true(mt_is_ok(&st));
    assert_int_equal(removed, 0);
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_run),
        cmocka_unit_test(test_restart_after_death_anywhere),
        cmocka_unit_test(test_stop_early_then_finish),
        cmocka_unit_test(test_transient_errors_ridden_out),
        cmocka_unit_test(test_parallel_copy),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_resume_after_crash),
        cmocka_unit_test(test_bad_checkpoint_refused),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_backoff_delays),
        cmocka_unit_test(test_checkpoint_text),
        cmocka_unit_test(test_verify_finds_missing_row),
        cmocka_unit_test(test_verify_finds_protocol_data),
        cmocka_unit_test(test_verify_verdict_unswitched_alone),
        cmocka_unit_test(test_verify_verdict_reserved_prop_alone),
        cmocka_unit_test(test_verify_verdict_old_rows_alone),
        cmocka_unit_test(test_retrying_stream_resumes_after_last_row),
        cmocka_unit_test(test_deleted_table_skipped),
        cmocka_unit_test(test_cleanup_batched_pausable),
        cmocka_unit_test(test_cleanup_reads_keys),
        cmocka_unit_test(test_cleanup_keeps_old),
        cmocka_unit_test(test_cleanup_deletes_old),
        cmocka_unit_test(test_cleanup_recreates_old),
        cmocka_unit_test(test_cleanup_empties_without_drop),
        cmocka_unit_test(test_cleanup_recreate_paused),
        cmocka_unit_test(test_old_after_names),
        cmocka_unit_test(test_step_back_check_and_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

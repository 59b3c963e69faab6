/*
 * migrator.c -- walks a MigratingTable through its phases and moves the data.
 *
 * From whatever phase it finds: push prefer_old, push prefer_new, copy, push
 * use_new_with_tombstones, push use_new_hide_metadata, clean up. Each push
 * returns only when no client is left in the phase before, which is what
 * makes each step safe:
 *   - copy runs only once every client is in prefer_new, so no client writes
 *     old behind it: each partition is switched before its rows are copied,
 *     and a client that writes a row first copies it itself;
 *   - use_new_with_tombstones is entered only after the copy, so reading new
 *     alone is complete;
 *   - cleanup runs only once no client leaves tombstones or reads old.
 * The copy itself (parallel partitions, batches, throttle, checkpoints,
 * pause) is migrator_copy.c; the cleanup migrator_clean.c. A table deleted
 * while either works on it (404 TableNotFound) is skipped, not an error.
 * Every step is idempotent (a copy that meets the row already there, a
 * cleanup that meets a row already clean or gone), so a transient backend
 * error is simply repeated (retrying.c, with a backoff on 503 ServerBusy)
 * and a migrator that dies can be started again.
 */
#include "migrator_internal.h"

#include <stdlib.h>
#include <string.h>

static mt_phase current_phase(mt_config_service *cfg)
{
    mt_config c;
    mt_subscription *sub = cfg->ops->subscribe(cfg, NULL, &c);
    cfg->ops->unsubscribe(cfg, sub);
    return c.phase;
}

/* One run of the migrator: what every step needs. */
typedef struct mt_mig_run {
    mt_rt *rt;
    mt_config_service *cfg;
    const mt_table_pair *tables; /* the retrying views */
    size_t n;
    const mt_migrator_hooks *hooks; /* may be NULL */
    mt_migrator_stats *stats;
    mt_backoff *bo;
} mt_mig_run;

static void report(const mt_mig_run *run, mt_migrator_step step)
{
    run->stats->backoffs = mt_backoff_count(run->bo);
    mt_backoff_last(run->bo, run->stats->last_error, sizeof run->stats->last_error);
    if (run->hooks && run->hooks->progress)
        run->hooks->progress(run->hooks->ctx, step, run->stats);
}

/* mt_copy_tables reports MT_STEP_COPYING itself, once it knows from the
 * checkpoint how far a previous run got. */
static mt_status copy_tables(const mt_mig_run *run)
{
    mt_status st = mt_copy_tables(run->rt, run->tables, run->n, run->hooks, run->bo, run->stats);
    if (mt_is_ok(&st))
        report(run, MT_STEP_COPIED);
    return st;
}

static mt_status clean_tables(const mt_mig_run *run)
{
    report(run, MT_STEP_CLEANING);
    mt_status st = mt_clean_tables(run->rt, run->tables, run->n, run->hooks, run->bo, run->stats);
    if (mt_is_ok(&st))
        report(run, MT_STEP_DONE);
    return st;
}

static mt_status push(const mt_mig_run *run, mt_phase p)
{
    report(run, MT_STEP_PUSHING);
    return run->cfg->ops->push(run->cfg, p);
}

/* Where the run stops before doing phase p's work, when asked to stop early
 * (prefer_new and use_new_hide_metadata stop after their work instead). */
static bool stops_before(const mt_mig_run *run, mt_phase p)
{
    const mt_migrator_hooks *h = run->hooks;
    return h && h->stop_early && p == h->until && p != MT_PHASE_PREFER_NEW &&
           p != MT_PHASE_USE_NEW_HIDE_METADATA;
}

static bool stops_after_copy(const mt_mig_run *run)
{
    const mt_migrator_hooks *h = run->hooks;
    return h && h->stop_early && h->until == MT_PHASE_PREFER_NEW;
}

static mt_status migrate_steps(const mt_mig_run *run)
{
    mt_status st = mt_ok();
    for (mt_phase p = current_phase(run->cfg); mt_is_ok(&st);) {
        if (stops_before(run, p))
            return st;
        switch (p) {
        case MT_PHASE_USE_OLD_HIDE_METADATA:
            p = MT_BUG(MigrateSkipPreferOld) ? MT_PHASE_PREFER_NEW : MT_PHASE_PREFER_OLD;
            st = push(run, p);
            break;
        case MT_PHASE_PREFER_OLD:
            if (MT_BUG(InsertBehindMigrator)) {
                st = copy_tables(run);
                p = MT_PHASE_USE_NEW_WITH_TOMBSTONES;
            } else {
                p = MT_PHASE_PREFER_NEW;
            }
            if (mt_is_ok(&st))
                st = push(run, p);
            break;
        case MT_PHASE_PREFER_NEW:
            st = copy_tables(run);
            if (stops_after_copy(run))
                return st;
            p = MT_BUG(MigrateSkipUseNewWithTombstones) ? MT_PHASE_USE_NEW_HIDE_METADATA
                                                        : MT_PHASE_USE_NEW_WITH_TOMBSTONES;
            if (mt_is_ok(&st))
                st = push(run, p);
            break;
        case MT_PHASE_USE_NEW_WITH_TOMBSTONES:
            p = MT_PHASE_USE_NEW_HIDE_METADATA;
            st = push(run, p);
            break;
        case MT_PHASE_USE_NEW_HIDE_METADATA:
            return clean_tables(run);
        }
    }
    return st;
}

/* Transient backend errors are repeated this many times in all, per call;
 * 503 ServerBusy (after backoff waits, about 25 s in all) more often. */
#define MIGRATOR_ATTEMPTS 8
#define MIGRATOR_BUSY_ATTEMPTS 16

static void drop_views(mt_table_pair *views, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mt_table_destroy(views[i].old_t);
        mt_table_destroy(views[i].new_t);
    }
    free(views);
}

/* The migrator's view of each table: transient errors ridden out. */
static mt_table_pair *make_views(const mt_table_pair *tables, size_t n, mt_backoff *bo)
{
    mt_table_pair *views = calloc(n + 1, sizeof *views);
    bool ok = views != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        views[i].old_t = mt_mig_retrying_backoff_new(tables[i].old_t, MIGRATOR_ATTEMPTS,
                                                     MIGRATOR_BUSY_ATTEMPTS, bo);
        views[i].new_t = mt_mig_retrying_backoff_new(tables[i].new_t, MIGRATOR_ATTEMPTS,
                                                     MIGRATOR_BUSY_ATTEMPTS, bo);
        ok = views[i].old_t && views[i].new_t;
    }
    if (!ok && views) {
        drop_views(views, n);
        views = NULL;
    }
    return views;
}

mt_status mt_migrate_tables(mt_rt *rt, mt_config_service *cfg, const mt_table_pair *tables,
                            size_t n, const mt_migrator_hooks *hooks, mt_migrator_stats *stats)
{
    /* Totals are unknown until counted; a caller's stats carry its own
     * (the copy takes them from its checkpoint). */
    mt_migrator_stats local = {
        .rows_total = -1, .partitions_total = -1, .clean_total_old = -1, .clean_total_new = -1};
    if (!stats)
        stats = &local;
    mt_backoff bo;
    if (!mt_backoff_init(&bo, rt))
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    bo.count = stats->backoffs;
    mt_table_pair *views = make_views(tables, n, &bo);
    mt_status st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
    if (views) {
        mt_mig_run run = {.rt = rt,
                          .cfg = cfg,
                          .tables = views,
                          .n = n,
                          .hooks = hooks,
                          .stats = stats,
                          .bo = &bo};
        st = migrate_steps(&run);
        drop_views(views, n);
    }
    stats->backoffs = mt_backoff_count(&bo);
    mt_backoff_clear(&bo);
    return st;
}

static const char *const mt_old_after_names[] = {
    [MT_OLD_AFTER_EMPTY] = "empty",
    [MT_OLD_AFTER_KEEP] = "keep",
    [MT_OLD_AFTER_DELETE] = "delete",
};

const char *mt_old_after_name(mt_old_after a)
{
    return (unsigned)a < sizeof mt_old_after_names / sizeof *mt_old_after_names
               ? mt_old_after_names[a]
               : "?";
}

bool mt_old_after_parse(const char *name, mt_old_after *out)
{
    for (size_t i = 0; i < sizeof mt_old_after_names / sizeof *mt_old_after_names; i++)
        if (strcmp(mt_old_after_names[i], name) == 0) {
            *out = (mt_old_after)i;
            return true;
        }
    return false;
}

mt_status mt_migrate(mt_rt *rt, mt_config_service *cfg, mt_table *old_t, mt_table *new_t,
                     mt_migrator_stats *stats)
{
    mt_table_pair one = {.old_t = old_t, .new_t = new_t};
    return mt_migrate_tables(rt, cfg, &one, 1, NULL, stats);
}

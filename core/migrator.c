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
 * The copy inserts a partition's rows in batches of up to 100 (one round
 * trip instead of 100), falling back to row by row when a client got to
 * one of them first.
 * Every step is idempotent (a copy that meets the row already there, a
 * cleanup that meets a row already clean or gone), so a transient backend
 * error is simply repeated (retrying.c) and a migrator that dies can be
 * started again.
 */
#include "migrating_internal.h"

#include <stdlib.h>
#include <string.h>

static mt_phase current_phase(mt_config_service *cfg)
{
    mt_config c;
    mt_subscription *sub = cfg->ops->subscribe(cfg, NULL, &c);
    cfg->ops->unsubscribe(cfg, sub);
    return c.phase;
}

static mt_status reopen_at_partition(mt_table *old_t, const char *pk, mt_stream **s)
{
    mt_key k = {0};
    mt_key_set(&k, pk, "");
    (*s)->ops->close(*s);
    *s = NULL;
    mt_status st = old_t->ops->query_stream(old_t, NULL, &k, s);
    mt_key_clear(&k);
    return st;
}

/* Rows of one partition waiting to be copied as one batch. */
typedef struct copy_batch {
    mt_entity *rows[MT_BATCH_MAX];
    size_t n;
} copy_batch;

/* Inserts the pending rows into new as one batch; if any is there already
 * (a client copied or wrote it first), falls back to one insert per row,
 * each of which may meet its row there too. */
static mt_status copy_flush(mt_table *new_t, copy_batch *b, mt_migrator_stats *stats)
{
    if (b->n == 0)
        return mt_ok();
    mt_op ops[MT_BATCH_MAX];
    mt_op_result res[MT_BATCH_MAX];
    for (size_t i = 0; i < b->n; i++) {
        mt_mig_strip(b->rows[i]);
        mt_entity_set_etag(b->rows[i], NULL);
        ops[i] = (mt_op){.kind = MT_OP_INSERT, .entity = b->rows[i]};
    }
    mt_status st = mt_table_batch(new_t, ops, b->n, res);
    if (st.http == 409) {
        st = mt_ok();
        for (size_t i = 0; i < b->n && mt_is_ok(&st); i++)
            st = mt_mig_copy_row(new_t, b->rows[i]);
    }
    if (mt_is_ok(&st))
        stats->rows_copied += (int64_t)b->n;
    for (size_t i = 0; i < b->n; i++)
        mt_entity_free(b->rows[i]);
    b->n = 0;
    return st;
}

static mt_status copy_all(mt_table *old_t, mt_table *new_t, mt_migrator_stats *stats)
{
    mt_stream *s = NULL;
    mt_status st = old_t->ops->query_stream(old_t, NULL, NULL, &s);
    char *prev_pk = NULL;
    mt_entity *e = NULL;
    copy_batch b = {.n = 0};
    while (mt_is_ok(&st) && (st = s->ops->next(s, &e), mt_is_ok(&st)) && e) {
        if (mt_mig_is_protocol_rk(e->rk)) {
            mt_entity_free(e);
            continue;
        }
        if (!prev_pk || strcmp(prev_pk, e->pk) != 0) {
            st = copy_flush(new_t, &b, stats);
            free(prev_pk);
            prev_pk = strdup(e->pk);
            if (mt_is_ok(&st))
                st = mt_mig_ensure_switched(old_t, e->pk);
            if (mt_is_ok(&st))
                stats->partitions_switched++;
            if (mt_is_ok(&st) && MT_BUG(InsertBehindMigrator)) {
                /* The stream may be stale up to the switch: read the
                 * partition again from its start. */
                st = reopen_at_partition(old_t, e->pk, &s);
                mt_entity_free(e);
                continue;
            }
        }
        if (mt_is_ok(&st)) {
            b.rows[b.n++] = e;
            e = NULL;
            if (b.n == MT_BATCH_MAX)
                st = copy_flush(new_t, &b, stats);
        }
        mt_entity_free(e);
    }
    if (mt_is_ok(&st))
        st = copy_flush(new_t, &b, stats);
    for (size_t i = 0; i < b.n; i++)
        mt_entity_free(b.rows[i]);
    free(prev_pk);
    if (s)
        s->ops->close(s);
    return st;
}

/* Brings one row of new to its clean form: tombstones deleted, live rows
 * without _mtable_* properties. A row changed meanwhile is read again. */
static mt_status clean_row(mt_table *new_t, const mt_entity *row, mt_migrator_stats *stats)
{
    mt_entity *cur = mt_entity_clone(row);
    mt_status st = mt_ok();
    while (cur) {
        bool tomb = mt_mig_is_tombstone(cur);
        if (!tomb && !mt_mig_has_reserved_prop(cur))
            break;
        mt_entity *clean = mt_entity_clone(cur);
        mt_mig_strip(clean);
        mt_op op = {.kind = tomb ? MT_OP_DELETE : MT_OP_REPLACE, .entity = clean,
                    .if_match = cur->etag};
        mt_op_result res;
        st = mt_table_batch(new_t, &op, 1, &res);
        mt_entity_free(clean);
        if (mt_is_ok(&st))
            stats->rows_cleaned++;
        if (st.http != 412) {
            if (st.http == 404) /* a client deleted it: nothing to clean */
                st = mt_ok();
            break;
        }
        mt_entity *fresh = NULL;
        st = new_t->ops->retrieve(new_t, cur->pk, cur->rk, &fresh);
        mt_entity_free(cur);
        cur = fresh;
        if (st.http == 404)
            st = mt_ok();
        if (!mt_is_ok(&st))
            break;
    }
    mt_entity_free(cur);
    return st;
}

static mt_status clean_new(mt_table *new_t, mt_migrator_stats *stats)
{
    mt_stream *s = NULL;
    mt_status st = new_t->ops->query_stream(new_t, NULL, NULL, &s);
    mt_entity *e = NULL;
    while (mt_is_ok(&st) && (st = s->ops->next(s, &e), mt_is_ok(&st)) && e) {
        st = clean_row(new_t, e, stats);
        mt_entity_free(e);
    }
    if (s)
        s->ops->close(s);
    return st;
}

static mt_status empty_old(mt_table *old_t)
{
    mt_stream *s = NULL;
    mt_status st = old_t->ops->query_stream(old_t, NULL, NULL, &s);
    mt_entity *e = NULL;
    while (mt_is_ok(&st) && (st = s->ops->next(s, &e), mt_is_ok(&st)) && e) {
        mt_op op = {.kind = MT_OP_DELETE_IF_EXISTS, .entity = e};
        mt_op_result res;
        st = mt_table_batch(old_t, &op, 1, &res);
        mt_entity_free(e);
    }
    if (s)
        s->ops->close(s);
    return st;
}

static void report(const mt_migrator_hooks *hooks, mt_migrator_step step,
                   const mt_migrator_stats *stats)
{
    if (hooks && hooks->progress)
        hooks->progress(hooks->ctx, step, stats);
}

static mt_status copy_tables(const mt_table_pair *tables, size_t n,
                             const mt_migrator_hooks *hooks, mt_migrator_stats *stats)
{
    report(hooks, MT_STEP_COPYING, stats);
    mt_status st = mt_ok();
    for (size_t i = 0; i < n && mt_is_ok(&st); i++)
        st = copy_all(tables[i].old_t, tables[i].new_t, stats);
    if (mt_is_ok(&st))
        report(hooks, MT_STEP_COPIED, stats);
    return st;
}

static mt_status clean_tables(const mt_table_pair *tables, size_t n,
                              const mt_migrator_hooks *hooks, mt_migrator_stats *stats)
{
    report(hooks, MT_STEP_CLEANING, stats);
    mt_status st = mt_ok();
    for (size_t i = 0; i < n && mt_is_ok(&st); i++) {
        st = clean_new(tables[i].new_t, stats);
        if (mt_is_ok(&st))
            st = empty_old(tables[i].old_t);
    }
    if (mt_is_ok(&st))
        report(hooks, MT_STEP_DONE, stats);
    return st;
}

static mt_status push(mt_config_service *cfg, mt_phase p, const mt_migrator_hooks *hooks,
                      const mt_migrator_stats *stats)
{
    report(hooks, MT_STEP_PUSHING, stats);
    return cfg->ops->push(cfg, p);
}

static mt_status migrate_steps(mt_config_service *cfg, const mt_table_pair *tables, size_t n,
                               const mt_migrator_hooks *hooks, mt_migrator_stats *stats);

/* Transient backend errors are repeated this many times in all, per call. */
#define MIGRATOR_ATTEMPTS 8

mt_status mt_migrate_tables(mt_rt *rt, mt_config_service *cfg, const mt_table_pair *tables,
                            size_t n, const mt_migrator_hooks *hooks, mt_migrator_stats *stats)
{
    (void)rt;
    mt_table_pair *patient = calloc(n + 1, sizeof *patient);
    if (!patient)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        patient[i].old_t = mt_mig_retrying_new(tables[i].old_t, MIGRATOR_ATTEMPTS);
        patient[i].new_t = mt_mig_retrying_new(tables[i].new_t, MIGRATOR_ATTEMPTS);
        ok = ok && patient[i].old_t && patient[i].new_t;
    }
    mt_status st = ok ? migrate_steps(cfg, patient, n, hooks, stats)
                      : mt_error(500, MT_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        mt_table_destroy(patient[i].old_t);
        mt_table_destroy(patient[i].new_t);
    }
    free(patient);
    return st;
}

static mt_status migrate_steps(mt_config_service *cfg, const mt_table_pair *tables, size_t n,
                               const mt_migrator_hooks *hooks, mt_migrator_stats *stats)
{
    mt_migrator_stats local = {0};
    if (!stats)
        stats = &local;
    mt_status st = mt_ok();
    bool stop = hooks && hooks->stop_early;
    for (mt_phase p = current_phase(cfg); mt_is_ok(&st);) {
        if (stop && p == hooks->until && p != MT_PHASE_PREFER_NEW &&
            p != MT_PHASE_USE_NEW_HIDE_METADATA)
            return st;
        switch (p) {
        case MT_PHASE_USE_OLD_HIDE_METADATA:
            p = MT_BUG(MigrateSkipPreferOld) ? MT_PHASE_PREFER_NEW : MT_PHASE_PREFER_OLD;
            st = push(cfg, p, hooks, stats);
            break;
        case MT_PHASE_PREFER_OLD:
            if (MT_BUG(InsertBehindMigrator)) {
                st = copy_tables(tables, n, hooks, stats);
                p = MT_PHASE_USE_NEW_WITH_TOMBSTONES;
            } else {
                p = MT_PHASE_PREFER_NEW;
            }
            if (mt_is_ok(&st))
                st = push(cfg, p, hooks, stats);
            break;
        case MT_PHASE_PREFER_NEW:
            st = copy_tables(tables, n, hooks, stats);
            if (stop && hooks->until == MT_PHASE_PREFER_NEW)
                return st;
            p = MT_BUG(MigrateSkipUseNewWithTombstones) ? MT_PHASE_USE_NEW_HIDE_METADATA
                                                         : MT_PHASE_USE_NEW_WITH_TOMBSTONES;
            if (mt_is_ok(&st))
                st = push(cfg, p, hooks, stats);
            break;
        case MT_PHASE_USE_NEW_WITH_TOMBSTONES:
            p = MT_PHASE_USE_NEW_HIDE_METADATA;
            st = push(cfg, p, hooks, stats);
            break;
        case MT_PHASE_USE_NEW_HIDE_METADATA:
            return clean_tables(tables, n, hooks, stats);
        }
    }
    return st;
}

mt_status mt_migrate(mt_rt *rt, mt_config_service *cfg, mt_table *old_t, mt_table *new_t,
                     mt_migrator_stats *stats)
{
    mt_table_pair one = {.old_t = old_t, .new_t = new_t};
    return mt_migrate_tables(rt, cfg, &one, 1, NULL, stats);
}

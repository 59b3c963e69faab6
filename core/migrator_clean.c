/*
 * migrator_clean.c -- the migrator's last step: new brought to its clean
 * form (tombstones deleted, _mtable_* properties stripped) and old emptied.
 *
 * It runs only once every client is in use_new_hide_metadata, where no
 * client reads old or leaves tombstones, so what it removes nobody needs.
 * Each table's two streams are cut into chunks of at most 100 rows of one
 * partition, and each chunk is one entity group transaction: conditional
 * (on the ETag read) in new, where a client may change a row meanwhile,
 * unconditional in old. When a chunk's batch fails (a row changed or
 * vanished under it) its rows are done one by one, each re-read as needed,
 * so the result is the same as row by row, in about a hundredth of the
 * calls. Rows already clean (most of new) cost a read and nothing else.
 *
 * Progress: before the first table both sides are counted (every row of
 * old, the rows of new that need cleaning) for a total and an ETA; the
 * counts then go up by the rows each successful call cleaned. Throttled by
 * hooks->rows_per_second like the copy; polls hooks->should_pause after
 * each chunk and stops with 409 MigrationPaused. Every step is idempotent,
 * so a cleanup that was paused or cut short resumes by running again: rows
 * already cleaned are no longer there to clean, and the counts carry on
 * from the saved stats. A table deleted meanwhile (404 TableNotFound) is
 * skipped and reported through hooks->table_gone.
 */
#include "migrator_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct mt_clean {
    mt_rt *rt;
    const mt_migrator_hooks *hooks; /* may be NULL */
    mt_backoff *bo;
    mt_migrator_stats *stats;
    bool throttled;
    mt_bucket bucket;
    mt_mutex *mu; /* only for timed waits of the throttle */
    mt_cond *cv;
} mt_clean;

static void mt_clean_report(mt_clean *c)
{
    const mt_migrator_hooks *h = c->hooks;
    c->stats->rows_cleaned = c->stats->rows_cleaned_new + c->stats->rows_cleaned_old;
    c->stats->backoffs = mt_backoff_count(c->bo);
    mt_backoff_last(c->bo, c->stats->last_error, sizeof c->stats->last_error);
    if (h && h->progress)
        h->progress(h->ctx, MT_STEP_CLEANING, c->stats);
}

static void mt_clean_throttle(mt_clean *c, size_t n)
{
    if (!c->throttled)
        return;
    mt_rt *rt = c->rt;
    rt->ops->lock(rt, c->mu);
    for (;;) {
        int64_t now = rt->ops->mono_ms(rt);
        int64_t wait = mt_bucket_take(&c->bucket, (double)n, now);
        if (wait == 0)
            break;
        rt->ops->cond_timedwait(rt, c->cv, c->mu, now + wait);
    }
    rt->ops->unlock(rt, c->mu);
}

/* After a chunk: report, and stop when a pause was asked for. */
static mt_status mt_clean_tick(mt_clean *c)
{
    mt_clean_report(c);
    const mt_migrator_hooks *h = c->hooks;
    if (h && h->should_pause && h->should_pause(h->ctx))
        return mt_error(409, MT_ERR_MIGRATION_PAUSED,
                        "the cleanup was paused; run again to resume");
    return mt_ok();
}

/* Whether a row of new needs cleaning. */
static bool mt_clean_dirty(const mt_entity *e)
{
    return mt_mig_is_tombstone(e) || mt_mig_has_reserved_prop(e);
}

/* ------------------------------------------------------------------------ */
/* One chunk of each side.                                                   */

/* Brings one row of new to its clean form. A row changed meanwhile is read
 * again; one a client deleted needs nothing. */
static mt_status mt_clean_row(mt_clean *c, mt_table *new_t, const mt_entity *row)
{
    mt_entity *cur = mt_entity_clone(row);
    mt_status st = mt_ok();
    while (cur && mt_clean_dirty(cur)) {
        bool tomb = mt_mig_is_tombstone(cur);
        mt_entity *clean = mt_entity_clone(cur);
        mt_mig_strip(clean);
        mt_op op = {
            .kind = tomb ? MT_OP_DELETE : MT_OP_REPLACE, .entity = clean, .if_match = cur->etag};
        mt_op_result res;
        st = mt_table_batch(new_t, &op, 1, &res);
        mt_entity_free(clean);
        if (mt_is_ok(&st))
            c->stats->rows_cleaned_new++;
        if (st.http != 412) {
            if (st.http == 404 && !mt_table_gone(&st))
                st = mt_ok();
            break;
        }
        mt_entity *fresh = NULL;
        st = new_t->ops->retrieve(new_t, cur->pk, cur->rk, &fresh);
        mt_entity_free(cur);
        cur = fresh;
        if (st.http == 404 && !mt_table_gone(&st))
            st = mt_ok();
        if (!mt_is_ok(&st))
            break;
    }
    mt_entity_free(cur);
    return st;
}

/* n dirty rows of one partition of new, as one batch, else row by row. */
static mt_status mt_clean_new_chunk(mt_clean *c, mt_table *new_t, mt_entity **rows, size_t n)
{
    mt_op ops[MT_BATCH_MAX];
    mt_op_result res[MT_BATCH_MAX];
    mt_entity *clean[MT_BATCH_MAX];
    size_t made = 0;
    for (; made < n; made++) {
        clean[made] = mt_entity_clone(rows[made]);
        if (!clean[made])
            break;
        mt_mig_strip(clean[made]);
        ops[made] = (mt_op){.kind = mt_mig_is_tombstone(rows[made]) ? MT_OP_DELETE : MT_OP_REPLACE,
                            .entity = clean[made],
                            .if_match = rows[made]->etag};
    }
    mt_clean_throttle(c, n);
    mt_status st = made == n ? mt_table_batch(new_t, ops, n, res)
                             : mt_error(500, MT_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < made; i++)
        mt_entity_free(clean[i]);
    if (mt_is_ok(&st)) {
        c->stats->rows_cleaned_new += (int64_t)n;
        return st;
    }
    if (mt_table_gone(&st) || (st.http >= 500 && made == n))
        return st;
    st = mt_ok(); /* a row changed or vanished meanwhile */
    for (size_t i = 0; i < n && mt_is_ok(&st); i++)
        st = mt_clean_row(c, new_t, rows[i]);
    return st;
}

/* n rows of one partition of old deleted, as one batch, else row by row. */
static mt_status mt_clean_old_chunk(mt_clean *c, mt_table *old_t, mt_entity **rows, size_t n)
{
    mt_op ops[MT_BATCH_MAX];
    mt_op_result res[MT_BATCH_MAX];
    for (size_t i = 0; i < n; i++)
        ops[i] = (mt_op){.kind = MT_OP_DELETE, .entity = rows[i], .if_match = "*"};
    mt_clean_throttle(c, n);
    mt_status st = mt_table_batch(old_t, ops, n, res);
    if (mt_is_ok(&st)) {
        c->stats->rows_cleaned_old += (int64_t)n;
        return st;
    }
    if (st.http != 404 || mt_table_gone(&st))
        return st;
    st = mt_ok(); /* a row is gone already: one by one, absence is fine */
    for (size_t i = 0; i < n && mt_is_ok(&st); i++) {
        ops[i].kind = MT_OP_DELETE_IF_EXISTS;
        st = mt_table_batch(old_t, &ops[i], 1, res);
        if (mt_is_ok(&st))
            c->stats->rows_cleaned_old++;
    }
    return st;
}

/* ------------------------------------------------------------------------ */
/* Walking a table.                                                          */

typedef mt_status (*mt_clean_chunk_fn)(mt_clean *c, mt_table *t, mt_entity **rows, size_t n);

/* Streams t, cutting the rows `want` keeps (NULL: all) into chunks of one
 * partition for fn. */
static mt_status mt_clean_walk(mt_clean *c, mt_table *t, bool (*want)(const mt_entity *),
                               mt_clean_chunk_fn fn)
{
    mt_stream *s = NULL;
    mt_status st = t->ops->query_stream(t, NULL, NULL, &s);
    mt_entity *rows[MT_BATCH_MAX];
    size_t n = 0;
    mt_entity *e = NULL;
    while (mt_is_ok(&st) && (st = s->ops->next(s, &e), mt_is_ok(&st))) {
        bool flush = n > 0 && (!e || n == MT_BATCH_MAX || strcmp(rows[0]->pk, e->pk) != 0);
        if (flush) {
            st = fn(c, t, rows, n);
            for (size_t i = 0; i < n; i++)
                mt_entity_free(rows[i]);
            n = 0;
            if (mt_is_ok(&st))
                st = mt_clean_tick(c);
        }
        if (!e)
            break;
        if (mt_is_ok(&st) && (!want || want(e)))
            rows[n++] = e;
        else
            mt_entity_free(e);
        e = NULL;
    }
    for (size_t i = 0; i < n; i++)
        mt_entity_free(rows[i]);
    if (s)
        s->ops->close(s);
    return st;
}

/* Counts what each side has to clean, for the totals. A failed count only
 * leaves them unknown. */
static void mt_clean_count(mt_clean *c, const mt_table_pair *tables, size_t n)
{
    int64_t totals[2] = {0, 0}; /* old, new */
    mt_status st = mt_ok();
    for (size_t i = 0; i < n && mt_is_ok(&st); i++) {
        for (int side = 0; side < 2 && mt_is_ok(&st); side++) {
            mt_table *t = side ? tables[i].new_t : tables[i].old_t;
            mt_stream *s = NULL;
            mt_entity *e = NULL;
            st = t->ops->query_stream(t, NULL, NULL, &s);
            while (mt_is_ok(&st) && (st = s->ops->next(s, &e), mt_is_ok(&st)) && e) {
                if (!side || mt_clean_dirty(e))
                    totals[side]++;
                mt_entity_free(e);
            }
            if (s)
                s->ops->close(s);
            if (mt_table_gone(&st))
                st = mt_ok();
        }
    }
    if (!mt_is_ok(&st))
        return;
    /* A resumed cleanup counts what is left; what it did before adds to it. */
    c->stats->clean_total_old = c->stats->rows_cleaned_old + totals[0];
    c->stats->clean_total_new = c->stats->rows_cleaned_new + totals[1];
}

mt_status mt_clean_tables(mt_rt *rt, const mt_table_pair *tables, size_t n,
                          const mt_migrator_hooks *hooks, mt_backoff *bo, mt_migrator_stats *stats)
{
    mt_clean c = {.rt = rt, .hooks = hooks, .bo = bo, .stats = stats};
    c.throttled = hooks && hooks->rows_per_second > 0;
    if (c.throttled) {
        c.mu = rt->ops->mutex_new(rt);
        c.cv = c.mu ? rt->ops->cond_new(rt) : NULL;
        if (!c.cv) {
            if (c.mu)
                rt->ops->mutex_free(rt, c.mu);
            return mt_error(500, MT_ERR_INTERNAL, "out of memory");
        }
        mt_bucket_init(&c.bucket, hooks->rows_per_second, rt->ops->mono_ms(rt));
    }
    if (hooks && hooks->progress)
        mt_clean_count(&c, tables, n);
    mt_clean_report(&c);
    mt_status st = mt_ok();
    for (size_t i = 0; i < n && mt_is_ok(&st); i++) {
        st = mt_clean_walk(&c, tables[i].new_t, mt_clean_dirty, mt_clean_new_chunk);
        if (mt_is_ok(&st))
            st = mt_clean_walk(&c, tables[i].old_t, NULL, mt_clean_old_chunk);
        if (mt_table_gone(&st)) {
            st = mt_ok();
            stats->tables_skipped++;
            if (hooks && hooks->table_gone)
                hooks->table_gone(hooks->ctx, i, "cleaning");
        }
    }
    mt_clean_report(&c);
    if (c.throttled) {
        rt->ops->cond_free(rt, c.cv);
        rt->ops->mutex_free(rt, c.mu);
    }
    return st;
}

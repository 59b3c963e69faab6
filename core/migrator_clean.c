/*
 * migrator_clean.c -- the migrator's last step: new brought to its clean
 * form (tombstones deleted, _mtable_* properties stripped) and old made what
 * hooks->old_after says: emptied (the default), kept with only its protocol
 * rows deleted (a rollback copy of the application's rows as they were when
 * their partition was switched), or deleted as a table (hooks->delete_old).
 *
 * It runs only once every client is in use_new_hide_metadata, where no
 * client reads old or leaves tombstones, so what it removes nobody needs,
 * and cleaning new and emptying old are independent of each other.
 *
 * Emptying, when the caller gives an account (hooks->delete_old and
 * hooks->recreate_old), drops each old table and creates it again: one call
 * each whatever the table holds, where deleting the rows costs a call per
 * 100 rows of one partition and, on the storage emulator, time that grows
 * with the table (each delete there walks the table's indexes). Nothing
 * reads old any more, so no one sees it missing meanwhile; a
 * table the application deleted meanwhile is not brought back. Without an
 * account (a caller of two bare tables) the rows are deleted as below.
 *
 * Shape, as the copy's: the calling thread is the reader; it streams each
 * table's new (asking the service only for rows that carry _mtable_deleted,
 * the one protocol property a row of new can have: tombstones and rows an
 * older proxy flagged; the rows are checked again here) and old (every
 * row, by its keys alone: mt_table_keys), cuts the rows into jobs of at
 * most 100 rows of one partition and one side, and queues them; `parallel`
 * workers (threads of the runtime; none for parallel 1, where the reader
 * runs each job itself) take them in any order. A job is one entity
 * group transaction: conditional (on the ETag read) in new, where a client
 * may change a row meanwhile, unconditional in old. When its batch fails
 * because a row changed or vanished under it, its rows are done one by
 * one, each re-read as needed, so the result is the same as row by row, in
 * about a hundredth of the calls. Rows already clean (most of new) are not
 * even sent by the service: cleaning a new table with no tombstone costs
 * one scan that returns nothing, where a read of every row made the
 * cleanup slower than the copy. At most `window` jobs are outstanding,
 * which bounds memory.
 *
 * Order: new first, every table of it, then old. Old is counted (the rows
 * the cleanup deletes) for a total and an ETA, on its own thread when there
 * are workers, from the start: alongside the cleaning of new (mostly
 * reading) and then ahead of old's walk, which never queues a row the
 * count has not read yet (the gate, mt_clean_gate_locked). Both read old
 * in the service's key order and nothing writes old any more, so the n-th
 * row of one stream is the n-th of the other, and the count sees every row
 * before it can be deleted: the total is exact, and the count costs no
 * wall time of its own (it outruns the deletes). With no workers it runs
 * first. A pause lets a count under way finish, so a paused cleanup shows
 * its total. The total of new is known once its walk is over: what the
 * walk found to clean. The counts go up by the rows each successful call
 * cleaned. Throttled by hooks->rows_per_second like the copy. The reader
 * polls hooks->should_pause after each job it queues and stops with 409
 * MigrationPaused once the workers have finished what they hold. Every
 * step is idempotent, so a cleanup that was paused or cut short resumes by
 * running again: rows cleaned are no longer there to clean (old) or cost
 * only a read (new), and the counts carry on from the caller's stats. A
 * table deleted meanwhile (404 TableNotFound) is skipped and reported
 * through hooks->table_gone. The hooks run only on the calling thread.
 *
 * Keeping old is sound for the same reason emptying it is: from
 * use_new_hide_metadata on nothing reads old or writes it, so its user rows
 * are the application's data no more; only the protocol rows, which an
 * application reading old directly would see, have to go.
 *
 * Checkpoints (through the copy's hooks; the copy is over by then): after
 * each table of each side, once its jobs have all run, so a run after a
 * restart skips the tables done instead of reading them again. The table
 * is an index into the caller's list, which must be the same on resume.
 */
#include "migrator_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Jobs outstanding per worker: enough that none waits for the reader. */
#define MT_CLEAN_WINDOW_PER_WORKER 2
/* Rows the count reads between two reports of its position to the gate. */
#define MT_CLEAN_COUNT_STEP 64

typedef struct mt_clean_job {
    struct mt_clean_job *next;
    size_t table;
    bool old_side;
    int64_t upto; /* old: rows of the walk's stream read up to this job's last */
    size_t n;
    mt_entity *rows[MT_BATCH_MAX];
} mt_clean_job;

typedef struct mt_clean {
    mt_rt *rt;
    const mt_migrator_hooks *hooks; /* may be NULL */
    mt_backoff *bo;
    const mt_table_pair *tables;
    size_t ntables;
    mt_thread *workers[MT_COPY_PARALLEL_MAX];
    int nworkers;
    mt_thread *counter; /* the count of old, alongside the cleaning of new */
    size_t window;
    mt_mutex *mu;
    mt_cond *cv;      /* any change below */
    mt_filter *dirty; /* what the walk of new asks the service for */
    /* Under mu. */
    mt_clean_job *head, *tail;
    size_t outstanding; /* queued or being run */
    bool eof, stop, paused;
    mt_status err;
    bool *gone;          /* per table */
    int64_t *table_rows; /* per table: rows of old the count read */
    /* The count of old, ahead of old's walk. */
    bool counted;       /* over (or failed, or not made): no gate */
    size_t count_table; /* the table being counted */
    int64_t count_seen; /* rows of it read so far */
    bool count_quit;    /* the cleanup failed: the count stops too */
    int64_t count_base; /* rows of old cleaned before this run */
    int from_side;      /* the checkpoint's: 0 new, 1 old */
    size_t from_table;
    mt_migrator_stats *stats;
    /* The throttle, under tmu (taken after mu, never before). */
    bool throttled, tstop;
    mt_mutex *tmu;
    mt_cond *tcv; /* signalled only on stop */
    mt_bucket bucket;
} mt_clean;

static void mt_clean_lock(mt_clean *c)
{
    c->rt->ops->lock(c->rt, c->mu);
}

static void mt_clean_unlock(mt_clean *c)
{
    c->rt->ops->unlock(c->rt, c->mu);
}

static void mt_clean_job_free(mt_clean_job *j)
{
    for (size_t i = 0; j && i < j->n; i++)
        mt_entity_free(j->rows[i]);
    free(j);
}

/* Stops the cleanup, recording st (may be NULL or ok) as its first error. */
static void mt_clean_stop_locked(mt_clean *c, const mt_status *st)
{
    c->stop = true;
    if (st && !mt_is_ok(st) && mt_is_ok(&c->err))
        c->err = *st;
    c->rt->ops->cond_broadcast(c->rt, c->cv);
    if (c->throttled) {
        c->rt->ops->lock(c->rt, c->tmu);
        c->tstop = true;
        c->rt->ops->cond_broadcast(c->rt, c->tcv);
        c->rt->ops->unlock(c->rt, c->tmu);
    }
}

static mt_status mt_clean_outcome_locked(const mt_clean *c)
{
    if (!mt_is_ok(&c->err))
        return c->err;
    if (c->paused)
        return mt_error(409, MT_ERR_MIGRATION_PAUSED,
                        "the cleanup was paused; run again to resume");
    return mt_ok();
}

/* Waits until the bucket grants n rows; false when the cleanup stopped. */
static bool mt_clean_throttle(mt_clean *c, size_t n)
{
    if (!c->throttled)
        return true;
    mt_rt *rt = c->rt;
    rt->ops->lock(rt, c->tmu);
    for (;;) {
        int64_t now = rt->ops->mono_ms(rt);
        int64_t wait = c->tstop ? 0 : mt_bucket_take(&c->bucket, (double)n, now);
        if (wait == 0)
            break;
        rt->ops->cond_timedwait(rt, c->tcv, c->tmu, now + wait);
    }
    bool go = !c->tstop;
    rt->ops->unlock(rt, c->tmu);
    return go;
}

/* Whether a row of new needs cleaning. */
static bool mt_clean_dirty(const mt_entity *e)
{
    return mt_mig_is_tombstone(e) || mt_mig_has_reserved_prop(e);
}

/* Whether a row of old is a protocol row (all that goes when old is kept). */
static bool mt_clean_protocol(const mt_entity *e)
{
    return mt_mig_is_protocol_rk(e->rk);
}

static mt_old_after mt_clean_old_after(const mt_clean *c)
{
    return c->hooks ? c->hooks->old_after : MT_OLD_AFTER_EMPTY;
}

/* Whether old's tables are emptied by dropping and creating them again. */
static bool mt_clean_drops(const mt_clean *c)
{
    const mt_migrator_hooks *h = c->hooks;
    return h && h->old_after == MT_OLD_AFTER_EMPTY && h->delete_old && h->recreate_old;
}

/* The rows of old the cleanup deletes: all, or the protocol rows only. */
static bool (*mt_clean_old_want(const mt_clean *c))(const mt_entity *)
{
    return mt_clean_old_after(c) == MT_OLD_AFTER_KEEP ? mt_clean_protocol : NULL;
}

/* ------------------------------------------------------------------------ */
/* One job of each side (workers, or the reader for parallel 1). They add   */
/* the rows they cleaned to *done.                                           */

/* Brings one row of new to its clean form. A row changed meanwhile is read
 * again; one a client deleted needs nothing. */
static mt_status mt_clean_row(mt_table *new_t, const mt_entity *row, int64_t *done)
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
            (*done)++;
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
static mt_status mt_clean_new_job(mt_table *new_t, mt_entity **rows, size_t n, int64_t *done)
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
    mt_status st = made == n ? mt_table_batch(new_t, ops, n, res)
                             : mt_error(500, MT_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < made; i++)
        mt_entity_free(clean[i]);
    if (mt_is_ok(&st)) {
        *done += (int64_t)n;
        return st;
    }
    if (mt_table_gone(&st) || (st.http >= 500 && made == n))
        return st;
    st = mt_ok(); /* a row changed or vanished meanwhile */
    for (size_t i = 0; i < n && mt_is_ok(&st); i++)
        st = mt_clean_row(new_t, rows[i], done);
    return st;
}

/* n rows of one partition of old deleted, as one batch, else row by row. */
static mt_status mt_clean_old_job(mt_table *old_t, mt_entity **rows, size_t n, int64_t *done)
{
    mt_op ops[MT_BATCH_MAX];
    mt_op_result res[MT_BATCH_MAX];
    for (size_t i = 0; i < n; i++)
        ops[i] = (mt_op){.kind = MT_OP_DELETE, .entity = rows[i], .if_match = "*"};
    mt_status st = mt_table_batch(old_t, ops, n, res);
    if (mt_is_ok(&st)) {
        *done += (int64_t)n;
        return st;
    }
    if (st.http != 404 || mt_table_gone(&st))
        return st;
    st = mt_ok(); /* a row is gone already: one by one, absence is fine */
    for (size_t i = 0; i < n && mt_is_ok(&st); i++) {
        ops[i].kind = MT_OP_DELETE_IF_EXISTS;
        st = mt_table_batch(old_t, &ops[i], 1, res);
        if (mt_is_ok(&st))
            (*done)++;
    }
    return st;
}

/* Takes the next job and runs it; false when there is none and none will
 * come (or the cleanup stopped). mu is held on entry and on return. */
static bool mt_clean_step_locked(mt_clean *c)
{
    while (!c->stop && !c->head && !c->eof)
        c->rt->ops->cond_wait(c->rt, c->cv, c->mu);
    if (c->stop || !c->head)
        return false;
    mt_clean_job *j = c->head;
    c->head = j->next;
    if (!c->head)
        c->tail = NULL;
    bool skip = c->gone[j->table];
    mt_clean_unlock(c);
    mt_status st = mt_ok();
    int64_t done = 0;
    if (!skip && mt_clean_throttle(c, j->n)) {
        const mt_table_pair *p = &c->tables[j->table];
        st = j->old_side ? mt_clean_old_job(p->old_t, j->rows, j->n, &done)
                         : mt_clean_new_job(p->new_t, j->rows, j->n, &done);
    }
    mt_clean_lock(c);
    if (j->old_side)
        c->stats->rows_cleaned_old += done;
    else
        c->stats->rows_cleaned_new += done;
    if (mt_table_gone(&st))
        c->gone[j->table] = true;
    else if (!mt_is_ok(&st))
        mt_clean_stop_locked(c, &st);
    c->outstanding--;
    c->rt->ops->cond_broadcast(c->rt, c->cv);
    mt_clean_job_free(j);
    return true;
}

static void *mt_clean_worker_main(void *arg)
{
    mt_clean *c = arg;
    mt_clean_lock(c);
    while (mt_clean_step_locked(c))
        ;
    mt_clean_unlock(c);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The reader: progress, pause, queueing (the calling thread).               */

static void mt_clean_report(mt_clean *c)
{
    const mt_migrator_hooks *h = c->hooks;
    mt_clean_lock(c);
    mt_migrator_stats *s = c->stats;
    s->rows_cleaned = s->rows_cleaned_new + s->rows_cleaned_old;
    s->backoffs = mt_backoff_count(c->bo);
    mt_backoff_last(c->bo, s->last_error, sizeof s->last_error);
    mt_migrator_stats snap = *s;
    mt_clean_unlock(c);
    if (h && h->progress)
        h->progress(h->ctx, MT_STEP_CLEANING, &snap);
}

/* After each job queued: report, and stop when a pause was asked for. */
static void mt_clean_tick(mt_clean *c)
{
    mt_clean_report(c);
    const mt_migrator_hooks *h = c->hooks;
    if (h && h->should_pause && h->should_pause(h->ctx)) {
        mt_clean_lock(c);
        c->paused = true;
        mt_clean_stop_locked(c, NULL);
        mt_clean_unlock(c);
    }
}

/* Whether job j of old must wait for the count, which has not read its
 * rows yet: a row deleted before the count read it would be missing from
 * the total. */
static bool mt_clean_gate_locked(const mt_clean *c, const mt_clean_job *j)
{
    if (!j->old_side || c->counted)
        return false;
    return c->count_table < j->table || (c->count_table == j->table && c->count_seen < j->upto);
}

/* Queues job j (taking it) once there is room; with no workers runs it at
 * once. Returns the cleanup's outcome so far. */
static mt_status mt_clean_emit(mt_clean *c, mt_clean_job *j)
{
    mt_clean_lock(c);
    while (!c->stop && (c->outstanding >= c->window || mt_clean_gate_locked(c, j)))
        c->rt->ops->cond_wait(c->rt, c->cv, c->mu);
    if (c->stop || c->gone[j->table]) {
        mt_clean_job_free(j);
    } else {
        if (c->tail)
            c->tail->next = j;
        else
            c->head = j;
        c->tail = j;
        c->outstanding++;
        c->rt->ops->cond_broadcast(c->rt, c->cv);
        if (c->nworkers == 0)
            mt_clean_step_locked(c);
    }
    mt_clean_unlock(c);
    mt_clean_tick(c);
    mt_clean_lock(c);
    mt_status st = mt_clean_outcome_locked(c);
    mt_clean_unlock(c);
    return st;
}

/* Streams one side of table ti (the rows f matches; NULL: all), queueing
 * the rows `want` keeps (NULL: all) as jobs of one partition. */
static mt_status mt_clean_walk(mt_clean *c, size_t ti, bool old_side, const mt_filter *f,
                               bool (*want)(const mt_entity *))
{
    mt_table *t = old_side ? c->tables[ti].old_t : c->tables[ti].new_t;
    mt_stream *s = NULL;
    mt_status st =
        old_side && !f ? mt_table_keys(t, NULL, &s) : t->ops->query_stream(t, f, NULL, &s);
    mt_clean_job *j = NULL;
    mt_entity *e = NULL;
    int64_t seen = 0; /* rows read, for the gate */
    while (mt_is_ok(&st) && (st = s->ops->next(s, &e), mt_is_ok(&st))) {
        bool flush = j && (!e || j->n == MT_BATCH_MAX || strcmp(j->rows[0]->pk, e->pk) != 0);
        if (flush) {
            st = mt_clean_emit(c, j);
            j = NULL;
        }
        if (!e)
            break;
        seen++;
        if (mt_is_ok(&st) && (!want || want(e))) {
            if (!j && !(j = calloc(1, sizeof *j)))
                st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
            if (j) {
                j->table = ti;
                j->old_side = old_side;
                j->upto = seen;
                j->rows[j->n++] = e;
                e = NULL;
            }
        }
        mt_entity_free(e);
        e = NULL;
    }
    mt_clean_job_free(j);
    if (s)
        s->ops->close(s);
    return st;
}

/* Publishes the count's position: table i, seen rows of it read. False
 * when the cleanup failed (a pause lets the count finish, for the total). */
static bool mt_clean_count_at(mt_clean *c, size_t i, int64_t seen)
{
    mt_clean_lock(c);
    c->count_table = i;
    c->count_seen = seen;
    c->rt->ops->cond_broadcast(c->rt, c->cv);
    bool go = mt_is_ok(&c->err) && !c->count_quit;
    mt_clean_unlock(c);
    return go;
}

/* Counts the rows of old the cleanup deletes, for a total (a thread body;
 * also called directly, before anything else, when there are no workers).
 * Keys only, reporting its position to the gate as it goes; a failed count
 * only leaves the total unknown (and opens the gate). */
static void *mt_clean_count_main(void *arg)
{
    mt_clean *c = arg;
    bool (*want)(const mt_entity *) = mt_clean_old_want(c);
    int64_t rows = 0;
    mt_status st = mt_ok();
    bool go = true;
    for (size_t i = 0; i < c->ntables && go && mt_is_ok(&st); i++) {
        mt_table *t = c->tables[i].old_t;
        mt_stream *s = NULL;
        mt_entity *e = NULL;
        int64_t seen = 0;
        st = mt_table_keys(t, NULL, &s);
        while (go && mt_is_ok(&st) && (st = s->ops->next(s, &e), mt_is_ok(&st)) && e) {
            rows += !want || want(e);
            c->table_rows[i] += !want || want(e); /* read under mu only once done */
            mt_entity_free(e);
            if (++seen % MT_CLEAN_COUNT_STEP == 0)
                go = mt_clean_count_at(c, i, seen);
        }
        if (s)
            s->ops->close(s);
        if (mt_table_gone(&st))
            st = mt_ok();
        if (go && mt_is_ok(&st))
            go = mt_clean_count_at(c, i + 1, 0);
    }
    mt_clean_lock(c);
    /* A resumed cleanup counts what is left; what it did before adds to it.
     * What this run deleted meanwhile the count has read (the gate). */
    if (go && mt_is_ok(&st))
        c->stats->clean_total_old = c->count_base + rows;
    c->counted = true;
    c->rt->ops->cond_broadcast(c->rt, c->cv);
    mt_clean_unlock(c);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Setting up and tearing down.                                              */

static void mt_clean_free(mt_clean *c)
{
    mt_rt *rt = c->rt;
    while (c->head) {
        mt_clean_job *j = c->head;
        c->head = j->next;
        mt_clean_job_free(j);
    }
    free(c->gone);
    free(c->table_rows);
    mt_filter_free(c->dirty);
    if (c->tcv)
        rt->ops->cond_free(rt, c->tcv);
    if (c->tmu)
        rt->ops->mutex_free(rt, c->tmu);
    if (c->cv)
        rt->ops->cond_free(rt, c->cv);
    if (c->mu)
        rt->ops->mutex_free(rt, c->mu);
    free(c);
}

static mt_clean *mt_clean_new(mt_rt *rt, const mt_table_pair *tables, size_t n,
                              const mt_migrator_hooks *hooks, mt_backoff *bo,
                              mt_migrator_stats *stats)
{
    mt_clean *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    *c = (mt_clean){.rt = rt,
                    .hooks = hooks,
                    .bo = bo,
                    .tables = tables,
                    .ntables = n,
                    .window = 1,
                    .err = mt_ok(),
                    .stats = stats};
    c->gone = calloc(n + 1, sizeof *c->gone);
    c->table_rows = calloc(n + 1, sizeof *c->table_rows);
    mt_value yes = mt_v_bool(true), no = mt_v_bool(false);
    c->dirty = mt_filter_or(mt_filter_cmp(MT_PROP_DELETED, MT_EQ, &yes),
                            mt_filter_cmp(MT_PROP_DELETED, MT_EQ, &no));
    c->mu = rt->ops->mutex_new(rt);
    c->cv = c->mu ? rt->ops->cond_new(rt) : NULL;
    c->throttled = hooks && hooks->rows_per_second > 0;
    if (c->throttled) {
        c->tmu = rt->ops->mutex_new(rt);
        c->tcv = c->tmu ? rt->ops->cond_new(rt) : NULL;
        mt_bucket_init(&c->bucket, hooks->rows_per_second, rt->ops->mono_ms(rt));
    }
    if (!c->gone || !c->table_rows || !c->dirty || !c->cv || (c->throttled && !c->tcv)) {
        mt_clean_free(c);
        return NULL;
    }
    return c;
}

/* The copy's parallelism, for the cleanup too. */
static void mt_clean_start(mt_clean *c)
{
    int p = c->hooks ? c->hooks->parallel : 1;
    p = p < 1 ? 1 : p > MT_COPY_PARALLEL_MAX ? MT_COPY_PARALLEL_MAX : p;
    for (int i = 0; p > 1 && i < p; i++) {
        char name[24]; /* "mt-clean-63" at most */
        snprintf(name, sizeof name, "mt-clean-%d", i);
        mt_thread *t = c->rt->ops->thread_start(c->rt, mt_clean_worker_main, c, name);
        if (t)
            c->workers[c->nworkers++] = t;
    }
    c->window = c->nworkers ? (size_t)c->nworkers * MT_CLEAN_WINDOW_PER_WORKER : 1;
}

/* Lets the workers finish every queued job (or stop at once after an
 * error or a pause) and joins them. */
static void mt_clean_join(mt_clean *c)
{
    mt_clean_lock(c);
    c->eof = true;
    c->rt->ops->cond_broadcast(c->rt, c->cv);
    mt_clean_unlock(c);
    for (int i = 0; i < c->nworkers; i++)
        c->rt->ops->thread_join(c->rt, c->workers[i]);
    c->nworkers = 0;
}

/* ------------------------------------------------------------------------ */
/* Checkpoints: "c1\t<side>\t<table>", side 0 (new) or 1 (old): every table */
/* before <table> is clean on that side, and on side 1 all of new is too.   */

#define MT_CLEAN_CKPT_PREFIX "c1\t"

/* Where a previous run got to (nothing: from the start). A copy's
 * checkpoint, or anything else, means from the start: cleaning again is
 * only slower, never wrong. */
static void mt_clean_load(mt_clean *c)
{
    const mt_migrator_hooks *h = c->hooks;
    char *text = h && h->load_checkpoint ? h->load_checkpoint(h->ctx) : NULL;
    int side = 0;
    unsigned long long table = 0;
    char end = 0;
    bool ok = text && strncmp(text, MT_CLEAN_CKPT_PREFIX, strlen(MT_CLEAN_CKPT_PREFIX)) == 0 &&
              sscanf(text + strlen(MT_CLEAN_CKPT_PREFIX), "%d\t%llu%c", &side, &table, &end) == 2 &&
              (side == 0 || side == 1) && table <= c->ntables;
    free(text);
    if (ok) {
        c->from_side = side;
        c->from_table = (size_t)table;
    }
}

/* Saves "side done up to table" (the caller drained every job before). */
static mt_status mt_clean_save(mt_clean *c, int side, size_t table)
{
    const mt_migrator_hooks *h = c->hooks;
    if (!h || !h->save_checkpoint)
        return mt_ok();
    char text[64];
    snprintf(text, sizeof text, MT_CLEAN_CKPT_PREFIX "%d\t%zu", side, table);
    return h->save_checkpoint(h->ctx, text);
}

/* Waits until every queued job has run (or the cleanup stopped). */
static mt_status mt_clean_drain(mt_clean *c)
{
    mt_clean_lock(c);
    while (!c->stop && c->outstanding > 0)
        c->rt->ops->cond_wait(c->rt, c->cv, c->mu);
    mt_status st = mt_clean_outcome_locked(c);
    mt_clean_unlock(c);
    return st;
}

/* Deletes old table i (--old-after delete); one already gone is done. */
static mt_status mt_clean_delete_old(mt_clean *c, size_t i)
{
    mt_clean_lock(c);
    bool gone = c->gone[i];
    mt_clean_unlock(c);
    if (gone)
        return mt_ok();
    mt_status st = c->hooks->delete_old(c->hooks->ctx, i);
    if (st.http == 404)
        st = mt_ok();
    mt_clean_tick(c);
    return st;
}

/* Waits until the count has read all of old table i (or is over); its rows
 * and whether the table is known to be gone. */
static mt_status mt_clean_await_count(mt_clean *c, size_t i, int64_t *rows, bool *gone)
{
    mt_clean_lock(c);
    while (!c->stop && !c->counted && c->count_table <= i)
        c->rt->ops->cond_wait(c->rt, c->cv, c->mu);
    *rows = c->table_rows[i];
    *gone = c->gone[i];
    mt_status st = mt_clean_outcome_locked(c);
    mt_clean_unlock(c);
    return st;
}

/* --old-after empty with an account: old table i dropped, its rows counted
 * as cleaned, and the table created again, waited for while the service
 * still deletes it (Azure keeps a deleted table's name for 40 s or more).
 * A 404 from the creation means the application deleted its table
 * meanwhile: the caller skips it. Every step is idempotent, so a run cut
 * short anywhere in it resumes by doing the table again. *refused: the
 * delete answered 403 (nothing done). */
static mt_status mt_clean_drop_old(mt_clean *c, size_t i, bool *refused)
{
    int64_t rows = 0;
    bool gone = false;
    mt_status st = mt_clean_await_count(c, i, &rows, &gone);
    if (!mt_is_ok(&st) || gone)
        return st;
    const mt_migrator_hooks *h = c->hooks;
    st = h->delete_old(h->ctx, i);
    *refused = st.http == 403;
    if (st.http == 404)
        st = mt_ok(), rows = 0;
    if (mt_is_ok(&st)) {
        /* Counted and saved now: a run cut short before the table is back
         * finds it gone, counts nothing more, and keeps this count. */
        mt_clean_lock(c);
        c->stats->rows_cleaned_old += rows;
        mt_clean_unlock(c);
        mt_clean_report(c);
        st = mt_clean_save(c, 1, i);
    }
    for (int attempt = 1; mt_is_ok(&st); attempt++) {
        st = h->recreate_old(h->ctx, i);
        if (st.http != 409 || strcmp(st.code, MT_ERR_TABLE_BEING_DELETED) != 0)
            break;
        mt_backoff_note(c->bo, &st);
        mt_clean_tick(c);
        mt_clean_lock(c);
        st = mt_clean_outcome_locked(c);
        mt_clean_unlock(c);
        if (mt_is_ok(&st))
            mt_backoff_wait(c->bo, attempt);
    }
    mt_clean_tick(c);
    return st;
}

/* Old table i emptied: dropped and created again, or row by row when the
 * credentials may delete rows but not tables (a table's SAS, say). */
static mt_status mt_clean_empty_old(mt_clean *c, size_t i)
{
    bool refused = false;
    mt_status st = mt_clean_drop_old(c, i, &refused);
    return refused ? mt_clean_walk(c, i, true, NULL, NULL) : st;
}

/* Cleans one side of every table (from the checkpoint on), saving a
 * checkpoint after each table once its jobs have all run. */
static mt_status mt_clean_side(mt_clean *c, int side)
{
    if (side < c->from_side)
        return mt_ok();
    bool delete_old = side == 1 && mt_clean_old_after(c) == MT_OLD_AFTER_DELETE;
    bool drop_old = side == 1 && mt_clean_drops(c);
    mt_status st = mt_ok();
    for (size_t i = side == c->from_side ? c->from_table : 0; i < c->ntables && mt_is_ok(&st);
         i++) {
        if (delete_old)
            st = mt_clean_delete_old(c, i);
        else if (drop_old)
            st = mt_clean_empty_old(c, i);
        else
            st = side == 1 ? mt_clean_walk(c, i, true, NULL, mt_clean_old_want(c))
                           : mt_clean_walk(c, i, false, c->dirty, mt_clean_dirty);
        if (mt_table_gone(&st)) {
            mt_clean_lock(c);
            c->gone[i] = true;
            mt_clean_unlock(c);
            st = mt_ok();
        }
        if (mt_is_ok(&st))
            st = mt_clean_drain(c);
        if (mt_is_ok(&st))
            st = mt_clean_save(c, side, i + 1);
    }
    if (mt_is_ok(&st) && side == 0)
        st = mt_clean_save(c, 1, 0);
    return st;
}

mt_status mt_clean_tables(mt_rt *rt, const mt_table_pair *tables, size_t n,
                          const mt_migrator_hooks *hooks, mt_backoff *bo, mt_migrator_stats *stats)
{
    if (hooks && hooks->old_after == MT_OLD_AFTER_DELETE && !hooks->delete_old)
        return mt_error(400, MT_ERR_INVALID_INPUT,
                        "deleting old needs an account to delete it from");
    mt_clean *c = mt_clean_new(rt, tables, n, hooks, bo, stats);
    if (!c)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    mt_clean_load(c);
    mt_clean_start(c);
    /* New first, all of it, then old; old is counted from the start (on its
     * own thread when there are workers, ahead of old's walk: the gate).
     * The total of new is what its walk found to clean. */
    bool count =
        hooks && (hooks->progress || mt_clean_drops(c)) && hooks->old_after != MT_OLD_AFTER_DELETE;
    c->counted = !count;
    c->count_base = stats->rows_cleaned_old;
    if (hooks && hooks->old_after == MT_OLD_AFTER_DELETE)
        stats->clean_total_old = 0; /* tables go, not rows */
    if (count && c->nworkers > 0)
        c->counter = rt->ops->thread_start(rt, mt_clean_count_main, c, "mt-clean-count");
    if (count && !c->counter)
        mt_clean_count_main(c);
    stats->clean_total_new = -1;
    mt_clean_report(c);
    mt_status st = mt_clean_side(c, 0);
    mt_clean_lock(c);
    if (mt_is_ok(&st))
        stats->clean_total_new = stats->rows_cleaned_new;
    mt_clean_unlock(c);
    if (mt_is_ok(&st))
        st = mt_clean_side(c, 1);
    mt_clean_lock(c);
    c->count_quit = !mt_is_ok(&st) && !c->paused;
    mt_clean_unlock(c);
    mt_clean_join(c);
    if (c->counter)
        rt->ops->thread_join(rt, c->counter);
    c->counter = NULL;
    mt_clean_lock(c);
    if (!mt_is_ok(&st))
        mt_clean_stop_locked(c, &st);
    st = mt_clean_outcome_locked(c);
    mt_clean_unlock(c);
    for (size_t i = 0; i < n && mt_is_ok(&st); i++) {
        if (!c->gone[i])
            continue;
        stats->tables_skipped++;
        if (hooks && hooks->table_gone)
            hooks->table_gone(hooks->ctx, i, "cleaning");
    }
    mt_clean_report(c);
    mt_clean_free(c);
    return st;
}

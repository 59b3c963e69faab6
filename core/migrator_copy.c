/*
 * migrator_copy.c -- the migrator's copy step: every user row of old into
 * new, partitions in parallel, throttled, checkpointed, pausable.
 *
 * Shape. The calling thread is the reader and the coordinator: it streams
 * old in key order (one stream per table, from the checkpoint on), skips
 * protocol rows, cuts the rows into chunks of at most 100 rows of one
 * partition and queues them. `parallel` workers (threads of the runtime)
 * take chunks in any order; the first to take a chunk of a partition
 * switches that partition (exactly once, before any of its rows goes in)
 * while other chunks of it wait; then each inserts its rows as one batch,
 * row by row when a client got to one of them first. With parallel 1 there
 * are no workers: the reader copies each chunk itself as soon as it is cut,
 * which is the original behaviour and what the tester's scenarios explore.
 * A single reader keeps the stream simple (one continuation, key order);
 * the price is that reading old is not parallel, which the window of
 * queued chunks hides as long as writing is the slower side.
 *
 * Invariants:
 *   - chunks are numbered in stream order; at most `window` are outstanding
 *     (queued or being copied), which bounds memory to window * 100 rows;
 *   - `low` is the low-water mark: every chunk numbered below it is copied.
 *     The checkpoint advances only when `low` passes the last chunk of a
 *     partition, so it never claims a partition a chunk of which is still
 *     missing, in whatever order the workers finish;
 *   - between tables the reader waits for every outstanding chunk, so a
 *     checkpoint speaks of one table;
 *   - the hooks (progress, save_checkpoint, should_pause) run only on the
 *     calling thread and never under the copy's lock.
 * Old is frozen during the copy (every client is in prefer_new, which
 * writes only new), so reading ahead of the switch is safe; switching
 * before inserting keeps "rows exist in new only for switched partitions".
 *
 * This file holds the shared state's life, the workers, the low-water mark
 * and the hooks; migrator_read.c the reader and the count.
 */
#include "migrator_copy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checkpoints are saved once this much time or this many partitions have
 * passed since the last save, whichever comes first: often enough that a
 * restart repeats little, rarely enough that the store is not a
 * bottleneck. */
#define MT_CKPT_EVERY_MS 1000
#define MT_CKPT_EVERY_PARTITIONS 20

void mt_copy_lock(mt_copy *cp)
{
    cp->rt->ops->lock(cp->rt, cp->mu);
}

void mt_copy_unlock(mt_copy *cp)
{
    cp->rt->ops->unlock(cp->rt, cp->mu);
}

void mt_copy_wake(mt_copy *cp)
{
    cp->rt->ops->cond_broadcast(cp->rt, cp->cv);
}

/* ------------------------------------------------------------------------ */
/* Partitions and chunks (their reference counts under mu).                  */

mt_copy_part *mt_copy_part_new(const char *pk)
{
    mt_copy_part *p = calloc(1, sizeof *p);
    if (p && !(p->pk = strdup(pk))) {
        free(p);
        return NULL;
    }
    if (p)
        p->refs = 1;
    return p;
}

void mt_copy_part_unref_locked(mt_copy_part *p)
{
    if (p && --p->refs == 0) {
        free(p->pk);
        free(p);
    }
}

void mt_copy_chunk_free_locked(mt_copy_chunk *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        mt_entity_free(c->rows[i]);
    mt_copy_part_unref_locked(c->part);
    free(c);
}

/* ------------------------------------------------------------------------ */
/* Stopping, completion and the low-water mark.                              */

/* Stops the copy: workers finish the chunk in hand and quit, the reader
 * queues nothing more. Records st when it is the first error. */
void mt_copy_stop_locked(mt_copy *cp, const mt_status *st)
{
    cp->stop = true;
    if (st && !mt_is_ok(st) && mt_is_ok(&cp->err))
        cp->err = *st;
    mt_copy_wake(cp);
    if (cp->throttled) {
        cp->rt->ops->lock(cp->rt, cp->tmu);
        cp->tstop = true;
        cp->rt->ops->cond_broadcast(cp->rt, cp->tcv);
        cp->rt->ops->unlock(cp->rt, cp->tmu);
    }
}

static void mt_copy_advance_locked(mt_copy *cp)
{
    while (cp->low < cp->next_seq) {
        mt_copy_slot *s = &cp->slots[cp->low % (int64_t)cp->window];
        if (!s->done)
            break;
        cp->pending_rows += (int64_t)s->rows;
        if (s->pk) {
            free(cp->ck.pk);
            cp->ck.pk = s->pk;
            s->pk = NULL;
            cp->ck.rows_done += cp->pending_rows;
            cp->pending_rows = 0;
            cp->ck.partitions_done++;
            cp->live.partitions_done++;
            cp->ck_version++;
        }
        s->done = false;
        cp->low++;
    }
}

/* Accounts for a chunk taken off the queue: copied (ok, `copied` of its
 * rows inserted), failed, or dropped because the copy is stopping (!went).
 * A chunk of a table found deleted counts as done with what it copied.
 * Frees it. */
static void mt_copy_finish_locked(mt_copy *cp, mt_copy_chunk *c, bool went, mt_status st,
                                  size_t copied)
{
    if (went && mt_table_gone(&st)) {
        cp->gone[c->pair - cp->tables] = true;
        st = mt_ok();
    }
    if (went && mt_is_ok(&st)) {
        mt_copy_slot *s = &cp->slots[c->seq % (int64_t)cp->window];
        s->done = true;
        s->rows = copied;
        cp->live.rows_copied += (int64_t)copied;
        cp->live.rows_done += (int64_t)copied;
        cp->chunks_done++;
        mt_copy_advance_locked(cp);
    } else if (went) {
        mt_copy_stop_locked(cp, &st);
    }
    mt_copy_chunk_free_locked(c);
    mt_copy_wake(cp);
}

/* The copy's outcome so far: its first error, the pause, or ok. */
mt_status mt_copy_outcome_locked(const mt_copy *cp)
{
    if (!mt_is_ok(&cp->err))
        return cp->err;
    if (cp->paused)
        return mt_error(409, MT_ERR_MIGRATION_PAUSED, "the copy was paused; run again to resume");
    return mt_ok();
}

/* ------------------------------------------------------------------------ */
/* Copying one chunk (workers, or the reader when parallel is 1).            */

/* Makes sure c's partition is switched before any of its rows goes in: the
 * first to get here switches it, the others wait for that. False when the
 * chunk must be dropped (the copy is stopping or the switch failed). */
static bool mt_copy_switch_locked(mt_copy *cp, mt_copy_chunk *c)
{
    mt_copy_part *p = c->part;
    while (p->state == MT_PART_SWITCHING && !cp->stop)
        cp->rt->ops->cond_wait(cp->rt, cp->cv, cp->mu);
    if (cp->stop || p->state == MT_PART_FAILED)
        return false;
    if (p->state == MT_PART_SWITCHED || p->state == MT_PART_GONE)
        return true;
    p->state = MT_PART_SWITCHING;
    mt_copy_unlock(cp);
    mt_status st = mt_mig_ensure_switched(c->pair->old_t, p->pk);
    mt_copy_lock(cp);
    bool gone = mt_table_gone(&st);
    p->state = mt_is_ok(&st) ? MT_PART_SWITCHED : gone ? MT_PART_GONE : MT_PART_FAILED;
    if (mt_is_ok(&st))
        cp->live.partitions_switched++;
    else if (gone) /* the table was deleted: its chunks are skipped */
        cp->gone[c->pair - cp->tables] = true;
    else
        mt_copy_stop_locked(cp, &st);
    mt_copy_wake(cp);
    return mt_is_ok(&st) || gone;
}

/* Waits until the bucket grants n rows; false when the copy stopped
 * meanwhile (the chunk is then dropped, not copied). */
static bool mt_copy_throttle(mt_copy *cp, size_t n)
{
    if (!cp->throttled)
        return true;
    mt_rt *rt = cp->rt;
    rt->ops->lock(rt, cp->tmu);
    for (;;) {
        int64_t now = rt->ops->mono_ms(rt);
        int64_t wait = cp->tstop ? 0 : mt_bucket_take(&cp->bucket, (double)n, now);
        if (wait == 0)
            break;
        rt->ops->cond_timedwait(rt, cp->tcv, cp->tmu, now + wait);
    }
    bool go = !cp->tstop;
    rt->ops->unlock(rt, cp->tmu);
    return go;
}

/* Inserts the chunk's rows into new as one batch; if any is there already
 * (a client copied or wrote it first), falls back to one insert per row,
 * each of which may meet its row there too. */
static mt_status mt_copy_insert(mt_copy_chunk *c)
{
    mt_op ops[MT_BATCH_MAX];
    mt_op_result res[MT_BATCH_MAX];
    for (size_t i = 0; i < c->n; i++) {
        mt_mig_strip(c->rows[i]);
        mt_entity_set_etag(c->rows[i], NULL);
        ops[i] = (mt_op){.kind = MT_OP_INSERT, .entity = c->rows[i]};
    }
    mt_table *new_t = c->pair->new_t;
    mt_status st = mt_table_batch(new_t, ops, c->n, res);
    if (st.http == 409) {
        st = mt_ok();
        for (size_t i = 0; i < c->n && mt_is_ok(&st); i++)
            st = mt_mig_copy_row(new_t, c->rows[i]);
    }
    return st;
}

/* Takes the next chunk and copies it; false when there is nothing left to
 * do. mu is held on entry and on return. */
bool mt_copy_step_locked(mt_copy *cp)
{
    while (!cp->stop && !cp->head && !cp->eof)
        cp->rt->ops->cond_wait(cp->rt, cp->cv, cp->mu);
    if (cp->stop || !cp->head)
        return false;
    mt_copy_chunk *c = cp->head;
    cp->head = c->next;
    if (!cp->head)
        cp->tail = NULL;
    bool went = mt_copy_switch_locked(cp, c);
    mt_status st = mt_ok();
    size_t copied = 0;
    if (went && !cp->gone[c->pair - cp->tables]) {
        mt_copy_unlock(cp);
        went = mt_copy_throttle(cp, c->n);
        if (went)
            st = mt_copy_insert(c);
        copied = went && mt_is_ok(&st) ? c->n : 0;
        mt_copy_lock(cp);
    }
    mt_copy_finish_locked(cp, c, went, st, copied);
    return true;
}

static void *mt_copy_worker_main(void *arg)
{
    mt_copy *cp = arg;
    mt_copy_lock(cp);
    while (mt_copy_step_locked(cp))
        ;
    mt_copy_unlock(cp);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Hooks: progress, checkpoints, pause (the calling thread only).            */

/* Saves the checkpoint when it moved enough since the last save, or
 * whenever it moved if force. */
static mt_status mt_copy_save(mt_copy *cp, bool force)
{
    const mt_migrator_hooks *h = cp->hooks;
    if (!h || !h->save_checkpoint)
        return mt_ok();
    mt_copy_lock(cp);
    bool moved = cp->ck_version != cp->saved_version;
    int64_t parts = cp->ck.partitions_done - cp->saved_partitions;
    mt_copy_unlock(cp);
    if (!moved)
        return mt_ok();
    int64_t now = cp->rt->ops->mono_ms(cp->rt);
    if (!force && parts < MT_CKPT_EVERY_PARTITIONS && now - cp->saved_ms < MT_CKPT_EVERY_MS)
        return mt_ok();
    mt_copy_lock(cp);
    char *text = mt_copy_ckpt_format(&cp->ck);
    int64_t version = cp->ck_version;
    int64_t done = cp->ck.partitions_done;
    mt_copy_unlock(cp);
    if (!text)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    mt_status st = h->save_checkpoint(h->ctx, text);
    free(text);
    if (mt_is_ok(&st)) {
        cp->saved_version = version;
        cp->saved_partitions = done;
        cp->saved_ms = now;
    }
    return st;
}

/* Reports progress when a chunk was copied or the count came in since the
 * last report, or always. */
static void mt_copy_report(mt_copy *cp, bool always)
{
    const mt_migrator_hooks *h = cp->hooks;
    if (!h || !h->progress)
        return;
    mt_copy_lock(cp);
    bool changed =
        always || cp->chunks_done != cp->reported || cp->live.rows_total != cp->reported_total;
    cp->reported = cp->chunks_done;
    cp->reported_total = cp->live.rows_total;
    mt_migrator_stats snap = cp->live;
    mt_copy_unlock(cp);
    if (!changed)
        return;
    snap.backoffs = mt_backoff_count(cp->bo);
    mt_backoff_last(cp->bo, snap.last_error, sizeof snap.last_error);
    h->progress(h->ctx, MT_STEP_COPYING, &snap);
}

/* What the calling thread does whenever it gets control: report progress,
 * save the checkpoint if due, poll for a pause. */
void mt_copy_tick(mt_copy *cp)
{
    mt_copy_report(cp, false);
    mt_status st = mt_copy_save(cp, false);
    const mt_migrator_hooks *h = cp->hooks;
    bool pause = mt_is_ok(&st) && h && h->should_pause && h->should_pause(h->ctx);
    if (!mt_is_ok(&st) || pause) {
        mt_copy_lock(cp);
        cp->paused = cp->paused || pause;
        mt_copy_stop_locked(cp, &st);
        mt_copy_unlock(cp);
    }
}

/* Waits for a change while the caller's condition holds; mu is held on
 * entry and return, and released for the tick. */
void mt_copy_wait_tick_locked(mt_copy *cp)
{
    cp->rt->ops->cond_wait(cp->rt, cp->cv, cp->mu);
    mt_copy_unlock(cp);
    mt_copy_tick(cp);
    mt_copy_lock(cp);
}

/* ------------------------------------------------------------------------ */
/* Setting up and tearing down.                                              */

static mt_status mt_copy_load(mt_copy *cp)
{
    const mt_migrator_hooks *h = cp->hooks;
    char *text = h && h->load_checkpoint ? h->load_checkpoint(h->ctx) : NULL;
    cp->ck = (mt_copy_ckpt){.rows_total = -1, .partitions_total = -1};
    mt_status st = text ? mt_copy_ckpt_parse(text, &cp->ck) : mt_ok();
    free(text);
    if (mt_is_ok(&st) && cp->ck.table > cp->ntables)
        st = mt_error(400, MT_ERR_INVALID_INPUT, "the copy checkpoint names table %zu of %zu",
                      cp->ck.table, cp->ntables);
    if (!mt_is_ok(&st))
        return st;
    cp->live.rows_total = cp->ck.rows_total;
    cp->live.partitions_total = cp->ck.partitions_total;
    cp->live.rows_done = cp->ck.rows_done;
    cp->live.partitions_done = cp->ck.partitions_done;
    return st;
}

static int mt_copy_parallel(const mt_migrator_hooks *h)
{
    int p = h ? h->parallel : 1;
    if (MT_BUG(InsertBehindMigrator))
        return 1; /* its re-read works on the reader's own stream */
    return p < 1 ? 1 : p > MT_COPY_PARALLEL_MAX ? MT_COPY_PARALLEL_MAX : p;
}

static void mt_copy_free(mt_copy *cp)
{
    mt_rt *rt = cp->rt;
    for (size_t i = 0; cp->slots && i < cp->window; i++)
        free(cp->slots[i].pk);
    free(cp->slots);
    free(cp->gone);
    while (cp->head) {
        mt_copy_chunk *c = cp->head;
        cp->head = c->next;
        mt_copy_chunk_free_locked(c);
    }
    mt_copy_ckpt_clear(&cp->ck);
    if (cp->tcv)
        rt->ops->cond_free(rt, cp->tcv);
    if (cp->tmu)
        rt->ops->mutex_free(rt, cp->tmu);
    if (cp->cv)
        rt->ops->cond_free(rt, cp->cv);
    if (cp->mu)
        rt->ops->mutex_free(rt, cp->mu);
    free(cp);
}

static mt_copy *mt_copy_new(mt_rt *rt, const mt_table_pair *tables, size_t n,
                            const mt_migrator_hooks *hooks, mt_backoff *bo,
                            const mt_migrator_stats *stats)
{
    mt_copy *cp = calloc(1, sizeof *cp);
    if (!cp)
        return NULL;
    *cp = (mt_copy){.rt = rt,
                    .hooks = hooks,
                    .bo = bo,
                    .tables = tables,
                    .ntables = n,
                    .parallel = mt_copy_parallel(hooks),
                    .live = *stats,
                    .err = mt_ok()};
    cp->window = cp->parallel > 1 ? 2 * (size_t)cp->parallel : 1;
    cp->slots = calloc(cp->window, sizeof *cp->slots);
    cp->gone = calloc(n + 1, sizeof *cp->gone);
    cp->mu = rt->ops->mutex_new(rt);
    cp->cv = cp->mu ? rt->ops->cond_new(rt) : NULL;
    cp->throttled = hooks && hooks->rows_per_second > 0;
    if (cp->throttled) {
        cp->tmu = rt->ops->mutex_new(rt);
        cp->tcv = cp->tmu ? rt->ops->cond_new(rt) : NULL;
        mt_bucket_init(&cp->bucket, hooks->rows_per_second, rt->ops->mono_ms(rt));
    }
    if (!cp->slots || !cp->gone || !cp->cv || (cp->throttled && !cp->tcv)) {
        mt_copy_free(cp);
        return NULL;
    }
    return cp;
}

/* Starts the workers (none for parallel 1) and, when someone watches the
 * progress of a copy from scratch, the count of old: first with no
 * workers, alongside them otherwise. */
static void mt_copy_start(mt_copy *cp)
{
    mt_rt *rt = cp->rt;
    for (int i = 0; cp->parallel > 1 && i < cp->parallel; i++) {
        char name[24]; /* "mt-copy-63" at most */
        snprintf(name, sizeof name, "mt-copy-%d", i);
        mt_thread *t = rt->ops->thread_start(rt, mt_copy_worker_main, cp, name);
        if (t)
            cp->workers[cp->nworkers++] = t;
    }
    /* Without workers the reader copies; a larger window would only hold
     * rows nobody takes. */
    if (cp->nworkers == 0)
        cp->window = 1;
    bool count = cp->hooks && cp->hooks->progress && cp->live.rows_total < 0;
    if (count && cp->nworkers > 0)
        cp->counter = rt->ops->thread_start(rt, mt_copy_count_main, cp, "mt-copy-count");
    if (count && !cp->counter)
        mt_copy_count_main(cp);
}

/* Stops the helpers and joins them: workers once the queue is empty (or at
 * once when the copy stopped), the count at once. */
static void mt_copy_join(mt_copy *cp)
{
    mt_rt *rt = cp->rt;
    mt_copy_lock(cp);
    cp->eof = true;
    cp->count_stop = true;
    mt_copy_wake(cp);
    mt_copy_unlock(cp);
    for (int i = 0; i < cp->nworkers; i++)
        rt->ops->thread_join(rt, cp->workers[i]);
    if (cp->counter)
        rt->ops->thread_join(rt, cp->counter);
    cp->nworkers = 0;
    cp->counter = NULL;
}

/* After the last table: totals the count did not get to are what was
 * copied (old is frozen, so that is all of it); so are the totals when a
 * table was deleted meanwhile (its rows will never be copied). */
static void mt_copy_complete(mt_copy *cp)
{
    bool skipped = false;
    for (size_t i = 0; i < cp->ntables; i++)
        skipped = skipped || cp->gone[i];
    if (cp->live.rows_total < 0 || skipped) {
        cp->live.rows_total = cp->ck.rows_total = cp->live.rows_done;
        cp->live.partitions_total = cp->ck.partitions_total = cp->live.partitions_done;
        cp->ck_version++;
    }
}

mt_status mt_copy_tables(mt_rt *rt, const mt_table_pair *tables, size_t n,
                         const mt_migrator_hooks *hooks, mt_backoff *bo, mt_migrator_stats *stats)
{
    mt_copy *cp = mt_copy_new(rt, tables, n, hooks, bo, stats);
    if (!cp)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    mt_status st = mt_copy_load(cp);
    if (mt_is_ok(&st)) {
        cp->saved_ms = rt->ops->mono_ms(rt);
        mt_copy_report(cp, true);
        mt_copy_start(cp);
    }
    for (size_t i = cp->ck.table; i < n && mt_is_ok(&st); i++)
        st = mt_copy_table(cp, i);
    mt_copy_join(cp);
    mt_copy_report(cp, false); /* chunks that finished after the last tick */
    mt_copy_lock(cp);
    if (!mt_is_ok(&st))
        mt_copy_stop_locked(cp, &st);
    st = mt_copy_outcome_locked(cp);
    if (mt_is_ok(&st))
        mt_copy_complete(cp);
    mt_copy_unlock(cp);
    /* Even after an error or a pause what was copied is kept for the next
     * run; a failed save matters only when nothing else failed. */
    mt_status saved = mt_copy_save(cp, true);
    if (mt_is_ok(&st) && !mt_is_ok(&saved))
        st = saved;
    *stats = cp->live;
    stats->backoffs = mt_backoff_count(bo);
    mt_copy_free(cp);
    return st;
}

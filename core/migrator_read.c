/*
 * migrator_read.c -- the copy's reader, and the count of old.
 *
 * The reader runs on the migrator's (calling) thread: it streams each old
 * table in key order, from the first partition after the checkpoint's,
 * skips protocol rows, and cuts the rows into chunks of at most 100 rows of
 * one partition. A chunk is known to be its partition's last only once the
 * next row (of another partition) or the end of the stream is seen, so the
 * reader holds one pending chunk back; that flag is what lets the low-water
 * mark advance the checkpoint (migrator_copy.c).
 *
 * The count (rows and partitions of old, for a total and an ETA) is one more
 * stream over every old table; it runs first when there are no workers and
 * alongside them otherwise, and stops when the copy ends before it does
 * (the totals are then what was copied).
 */
#include "migrator_copy.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* The reader.                                                               */

/* Queues chunk c (taking it) once there is room; with no workers copies
 * it at once. Returns the copy's outcome so far. */
static mt_status mt_copy_emit(mt_copy *cp, mt_copy_chunk *c)
{
    mt_copy_lock(cp);
    while (!cp->stop && cp->next_seq - cp->low >= (int64_t)cp->window)
        mt_copy_wait_tick_locked(cp);
    if (cp->stop) {
        mt_copy_chunk_free_locked(c);
        mt_status st = mt_copy_outcome_locked(cp);
        mt_copy_unlock(cp);
        return st;
    }
    c->seq = cp->next_seq++;
    mt_copy_slot *s = &cp->slots[c->seq % (int64_t)cp->window];
    *s = (mt_copy_slot){.pk = c->last ? strdup(c->part->pk) : NULL};
    if (c->last && !s->pk) {
        mt_copy_chunk_free_locked(c);
        mt_status oom = mt_error(500, MT_ERR_INTERNAL, "out of memory");
        mt_copy_stop_locked(cp, &oom);
        mt_copy_unlock(cp);
        return oom;
    }
    if (cp->tail)
        cp->tail->next = c;
    else
        cp->head = c;
    cp->tail = c;
    mt_copy_wake(cp);
    if (cp->nworkers == 0)
        mt_copy_step_locked(cp);
    mt_copy_unlock(cp);
    mt_copy_tick(cp);
    mt_copy_lock(cp);
    mt_status st = mt_copy_outcome_locked(cp);
    mt_copy_unlock(cp);
    return st;
}

/* The reader's position in one table. */
typedef struct mt_copy_reader {
    mt_copy *cp;
    const mt_table_pair *pair;
    mt_filter *f; /* PartitionKey gt the checkpoint's, or NULL */
    mt_stream *s;
    mt_copy_part *part;   /* the current partition */
    mt_copy_chunk *chunk; /* rows not yet queued, all of part */
} mt_copy_reader;

/* MT_BUG(InsertBehindMigrator) copies during prefer_old, where old is not
 * frozen: it switches the partition first and reads it again from its
 * start, since the stream may be stale up to the switch. */
static mt_status mt_copy_bug_reread(mt_copy_reader *rd)
{
    mt_copy *cp = rd->cp;
    mt_table *old_t = rd->pair->old_t;
    mt_status st = mt_mig_ensure_switched(old_t, rd->part->pk);
    if (!mt_is_ok(&st))
        return st;
    mt_copy_lock(cp);
    rd->part->state = MT_PART_SWITCHED;
    cp->live.partitions_switched++;
    mt_copy_unlock(cp);
    mt_key k = {0};
    mt_key_set(&k, rd->part->pk, "");
    rd->s->ops->close(rd->s);
    rd->s = NULL;
    st = old_t->ops->query_stream(old_t, rd->f, &k, &rd->s);
    mt_key_clear(&k);
    return st;
}

/* Queues the pending chunk, if any; last says whether it ends its
 * partition. */
static mt_status mt_copy_flush_pending(mt_copy_reader *rd, bool last)
{
    mt_copy_chunk *c = rd->chunk;
    rd->chunk = NULL;
    if (!c)
        return mt_ok();
    c->last = last;
    return mt_copy_emit(rd->cp, c);
}

/* Makes pk the current partition. */
static mt_status mt_copy_enter(mt_copy_reader *rd, const char *pk)
{
    mt_copy_part *p = mt_copy_part_new(pk);
    if (!p)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    mt_copy_lock(rd->cp);
    mt_copy_part_unref_locked(rd->part);
    mt_copy_unlock(rd->cp);
    rd->part = p;
    return mt_ok();
}

/* Starts a chunk of the current partition, which it holds a reference to. */
static mt_status mt_copy_chunk_start(mt_copy_reader *rd)
{
    rd->chunk = calloc(1, sizeof *rd->chunk);
    if (!rd->chunk)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    *rd->chunk = (mt_copy_chunk){.pair = rd->pair, .part = rd->part};
    mt_copy_lock(rd->cp);
    rd->part->refs++;
    mt_copy_unlock(rd->cp);
    return mt_ok();
}

/* Adds one user row (taking e) to the current chunk, queueing the chunk
 * before when it is full or of another partition. */
static mt_status mt_copy_take_row(mt_copy_reader *rd, mt_entity *e)
{
    bool fresh = !rd->part || strcmp(rd->part->pk, e->pk) != 0;
    bool full = rd->chunk && rd->chunk->n == MT_BATCH_MAX;
    mt_status st = fresh || full ? mt_copy_flush_pending(rd, fresh) : mt_ok();
    if (mt_is_ok(&st) && fresh)
        st = mt_copy_enter(rd, e->pk);
    bool reread = mt_is_ok(&st) && fresh && MT_BUG(InsertBehindMigrator);
    if (reread) /* e comes again from the reopened stream */
        st = mt_copy_bug_reread(rd);
    if (mt_is_ok(&st) && !reread && !rd->chunk)
        st = mt_copy_chunk_start(rd);
    if (!mt_is_ok(&st) || reread) {
        mt_entity_free(e);
        return st;
    }
    rd->chunk->rows[rd->chunk->n++] = e;
    return st;
}

/* Streams one table (from after the checkpoint's partition, for the table
 * the checkpoint is in) into chunks. */
static mt_status mt_copy_read_table(mt_copy_reader *rd, const char *after_pk)
{
    mt_table *old_t = rd->pair->old_t;
    if (after_pk) {
        mt_value v = mt_v_str(after_pk);
        rd->f = mt_filter_cmp("PartitionKey", MT_GT, &v);
        if (!rd->f)
            return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    mt_status st = old_t->ops->query_stream(old_t, rd->f, NULL, &rd->s);
    mt_entity *e = NULL;
    while (mt_is_ok(&st) && (st = rd->s->ops->next(rd->s, &e), mt_is_ok(&st)) && e) {
        if (mt_mig_is_protocol_rk(e->rk))
            mt_entity_free(e);
        else
            st = mt_copy_take_row(rd, e);
        e = NULL;
    }
    if (mt_is_ok(&st))
        st = mt_copy_flush_pending(rd, true);
    return st;
}

/* Waits until every queued chunk is copied (or the copy stopped); then the
 * checkpoint moves to the start of the next table. */
static mt_status mt_copy_drain(mt_copy *cp, size_t ti)
{
    mt_copy_lock(cp);
    while (!cp->stop && cp->low < cp->next_seq)
        mt_copy_wait_tick_locked(cp);
    if (!cp->stop) {
        cp->ck.table = ti + 1;
        free(cp->ck.pk);
        cp->ck.pk = NULL;
        cp->ck.rows_done += cp->pending_rows;
        cp->pending_rows = 0;
        cp->ck_version++;
    }
    mt_status st = mt_copy_outcome_locked(cp);
    mt_copy_unlock(cp);
    return st;
}

/* After table ti: when it was found deleted (by the reader or a worker),
 * says so once, on the calling thread. */
static void mt_copy_note_gone(mt_copy *cp, size_t ti)
{
    mt_copy_lock(cp);
    bool gone = cp->gone[ti];
    if (gone)
        cp->live.tables_skipped++;
    mt_copy_unlock(cp);
    const mt_migrator_hooks *h = cp->hooks;
    if (gone && h && h->table_gone)
        h->table_gone(h->ctx, ti, "copying");
}

mt_status mt_copy_table(mt_copy *cp, size_t ti)
{
    mt_copy_reader rd = {.cp = cp, .pair = &cp->tables[ti]};
    char *after = NULL;
    mt_copy_lock(cp);
    if (cp->ck.table == ti && cp->ck.pk)
        after = strdup(cp->ck.pk);
    bool oom = cp->ck.table == ti && cp->ck.pk && !after;
    mt_copy_unlock(cp);
    mt_status st =
        oom ? mt_error(500, MT_ERR_INTERNAL, "out of memory") : mt_copy_read_table(&rd, after);
    mt_copy_lock(cp);
    if (mt_table_gone(&st)) { /* deleted meanwhile: what was queued goes on */
        cp->gone[ti] = true;
        st = mt_ok();
    }
    mt_copy_chunk_free_locked(rd.chunk);
    mt_copy_part_unref_locked(rd.part);
    if (!mt_is_ok(&st))
        mt_copy_stop_locked(cp, &st);
    mt_copy_unlock(cp);
    if (rd.s)
        rd.s->ops->close(rd.s);
    mt_filter_free(rd.f);
    free(after);
    if (mt_is_ok(&st))
        st = mt_copy_drain(cp, ti);
    if (mt_is_ok(&st))
        mt_copy_note_gone(cp, ti);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Counting old, for a total and an ETA.                                     */

/* Counts the user rows and partitions of one old table; stops early (and
 * says so through *stopped) when the copy asks it to. */
static mt_status mt_copy_count_table(mt_copy *cp, mt_table *old_t, int64_t *rows, int64_t *parts,
                                     bool *stopped)
{
    mt_stream *s = NULL;
    mt_status st = old_t->ops->query_stream(old_t, NULL, NULL, &s);
    mt_entity *e = NULL;
    char *prev = NULL;
    while (mt_is_ok(&st) && (st = s->ops->next(s, &e), mt_is_ok(&st)) && e) {
        if (!mt_mig_is_protocol_rk(e->rk)) {
            (*rows)++;
            if (!prev || strcmp(prev, e->pk) != 0) {
                (*parts)++;
                free(prev);
                prev = strdup(e->pk);
                if (!prev)
                    st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
            }
        }
        mt_entity_free(e);
        if (*rows % 1000 == 0) {
            mt_copy_lock(cp);
            *stopped = cp->count_stop;
            mt_copy_unlock(cp);
            if (*stopped)
                break;
        }
    }
    free(prev);
    if (s)
        s->ops->close(s);
    return st;
}

void *mt_copy_count_main(void *arg)
{
    mt_copy *cp = arg;
    int64_t rows = 0, parts = 0;
    bool stopped = false;
    mt_status st = mt_ok();
    for (size_t i = 0; i < cp->ntables && mt_is_ok(&st) && !stopped; i++) {
        int64_t r = 0, p = 0;
        st = mt_copy_count_table(cp, cp->tables[i].old_t, &r, &p, &stopped);
        if (mt_table_gone(&st)) /* deleted: nothing of it will be copied */
            st = mt_ok();
        else
            rows += r, parts += p;
    }
    /* A failed count only leaves the totals unknown: it is for display. */
    mt_copy_lock(cp);
    if (mt_is_ok(&st) && !stopped && cp->live.rows_total < 0) {
        cp->live.rows_total = cp->ck.rows_total = rows;
        cp->live.partitions_total = cp->ck.partitions_total = parts;
        cp->ck_version++;
        mt_copy_wake(cp); /* a reader waiting for room reports it */
    }
    mt_copy_unlock(cp);
    return NULL;
}

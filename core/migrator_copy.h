/*
 * migrator_copy.h -- the state the copy's reader (migrator_read.c) and its
 * workers and hooks (migrator_copy.c) share. Internal to those two files.
 *
 * Locking: mu guards everything marked "under mu"; tmu guards the throttle
 * and is taken after mu, never before. Functions named *_locked are called
 * with mu held (and may release it while they wait).
 */
#ifndef MT_MIGRATOR_COPY_H
#define MT_MIGRATOR_COPY_H

#include "migrator_internal.h"

enum { MT_PART_NEW, MT_PART_SWITCHING, MT_PART_SWITCHED, MT_PART_FAILED, MT_PART_GONE };

/* A partition the reader met; shared by its chunks. */
typedef struct mt_copy_part {
    char *pk;
    int refs;  /* the reader's while it is current, and each chunk's */
    int state; /* MT_PART_* */
} mt_copy_part;

typedef struct mt_copy_chunk {
    struct mt_copy_chunk *next;
    const mt_table_pair *pair;
    mt_copy_part *part;
    int64_t seq;
    bool last; /* the partition's last chunk */
    size_t n;
    mt_entity *rows[MT_BATCH_MAX];
} mt_copy_chunk;

/* What the low-water mark needs of an outstanding chunk. */
typedef struct mt_copy_slot {
    bool done;
    size_t rows;
    char *pk; /* owned: the partition this chunk completes, or NULL */
} mt_copy_slot;

typedef struct mt_copy {
    mt_rt *rt;
    const mt_migrator_hooks *hooks; /* may be NULL */
    mt_backoff *bo;
    const mt_table_pair *tables;
    size_t ntables;
    int parallel;
    mt_thread *workers[MT_COPY_PARALLEL_MAX];
    int nworkers;
    mt_thread *counter;
    mt_mutex *mu;
    mt_cond *cv; /* any change below: queue, completion, switch, stop */
    /* Under mu. */
    mt_copy_chunk *head, *tail;
    bool *gone; /* per table: found deleted (404 TableNotFound), skipped */
    bool eof, stop, paused, count_stop;
    mt_status err;
    int64_t next_seq, low;
    size_t window;
    mt_copy_slot *slots;
    mt_copy_ckpt ck;      /* at the low-water mark */
    int64_t ck_version;   /* bumped whenever ck changes */
    int64_t pending_rows; /* passed by low since the last partition end */
    mt_migrator_stats live;
    int64_t chunks_done;
    /* The calling thread's own. */
    int64_t saved_version, saved_partitions, saved_ms, reported, reported_total;
    /* The throttle, under tmu (taken after mu, never before). */
    bool throttled, tstop;
    mt_mutex *tmu;
    mt_cond *tcv; /* signalled only on stop */
    mt_bucket bucket;
} mt_copy;

void mt_copy_lock(mt_copy *cp);
void mt_copy_unlock(mt_copy *cp);
void mt_copy_wake(mt_copy *cp);

/* A partition record with one reference (the reader's); NULL when out of
 * memory. The last unref frees it. */
mt_copy_part *mt_copy_part_new(const char *pk);
void mt_copy_part_unref_locked(mt_copy_part *p);
/* Frees a chunk, its rows and its partition reference (NULL is fine). */
void mt_copy_chunk_free_locked(mt_copy_chunk *c);

/* Stops the copy, recording st (may be NULL or ok) as its first error. */
void mt_copy_stop_locked(mt_copy *cp, const mt_status *st);
/* The first error, 409 MigrationPaused after a pause, or ok. */
mt_status mt_copy_outcome_locked(const mt_copy *cp);
/* Takes the next queued chunk and copies it; false when there is none and
 * none will come (or the copy stopped). */
bool mt_copy_step_locked(mt_copy *cp);

/* The calling thread's turn: progress, checkpoint if due, pause poll. */
void mt_copy_tick(mt_copy *cp);
/* Waits for any change, then ticks (mu released for the tick). */
void mt_copy_wait_tick_locked(mt_copy *cp);

/* Copies table ti (migrator_read.c), from the checkpoint on when it is the
 * checkpoint's table; on success every chunk of it is copied. */
mt_status mt_copy_table(mt_copy *cp, size_t ti);
/* Counts old and sets the totals (a thread body; also called directly). */
void *mt_copy_count_main(void *arg);

#endif

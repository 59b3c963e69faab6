/*
 * migrator_internal.h -- what the migrator's files share (migrator.c,
 * migrator_copy.c, migrator_read.c, migrator_ckpt.c, migrator_clean.c, throttle.c,
 * retrying.c, verify.c).
 * Not part of the public contract; unit tests may include it to test the
 * pure parts (the token bucket, the checkpoint text) without clocks or
 * threads.
 */
#ifndef MT_MIGRATOR_INTERNAL_H
#define MT_MIGRATOR_INTERNAL_H

#include "migrating_internal.h"

/* ------------------------------------------------------------------------ */
/* Backoff after 503 ServerBusy (retrying.c).                                */

/* First wait after a 503, doubled per repeat up to the cap. No jitter: the
 * core has no random source, and the migrator is one client among many
 * whose own backend client already spreads its retries. */
#define MT_BACKOFF_FIRST_MS 50
#define MT_BACKOFF_MAX_MS 2000

/* Shared by every retrying view of one migration, so that waits are counted
 * in one place. The condition is never signalled: each wait ends at its
 * deadline (a timed wait is the only sleep the runtime offers). */
typedef struct mt_backoff {
    mt_rt *rt;
    mt_mutex *mu;
    mt_cond *cv;
    int64_t count; /* waits so far, under mu */
    mt_status last; /* the last transient error met, under mu (ok: none) */
} mt_backoff;

/* False when the runtime could not create the lock or the condition. */
bool mt_backoff_init(mt_backoff *b, mt_rt *rt);
void mt_backoff_clear(mt_backoff *b);
/* The wait before repeat number `attempt` (1 = the first repeat). */
int64_t mt_backoff_delay_ms(int attempt);
/* Sleeps mt_backoff_delay_ms(attempt) and counts it. */
void mt_backoff_wait(mt_backoff *b, int attempt);
int64_t mt_backoff_count(mt_backoff *b);
/* Records a transient error a retrying view met (retrying.c calls it). */
void mt_backoff_note(mt_backoff *b, const mt_status *st);
/* The last one as "<http> <code>: <message>", or "" when none was met. */
void mt_backoff_last(mt_backoff *b, char *out, size_t cap);

/* Like mt_mig_retrying_new, and a 503 is repeated up to busy_attempts times
 * in all, each time after a backoff wait on b (b may be NULL: no wait). */
mt_table *mt_mig_retrying_backoff_new(mt_table *inner, int attempts, int busy_attempts,
                                      mt_backoff *b);

/* ------------------------------------------------------------------------ */
/* The copy throttle: a token bucket in rows (throttle.c).                   */

typedef struct mt_bucket {
    double rate;   /* tokens (rows) per second, > 0 */
    double cap;    /* most tokens it holds: one second's worth */
    double tokens; /* may go negative: a chunk larger than cap borrows */
    int64_t last_ms;
} mt_bucket;

/* Starts with one chunk's worth of tokens (or the cap if smaller), so the
 * first chunk goes at once and no start-up burst exceeds the rate much. */
void mt_bucket_init(mt_bucket *b, double rate, int64_t now_ms);
/* Takes n tokens at now_ms and returns 0, or takes nothing and returns how
 * many ms to wait before asking again. A request larger than the cap is
 * granted once the bucket is full and leaves it in debt, so any rate works
 * with chunks of 100 rows and the average still holds. */
int64_t mt_bucket_take(mt_bucket *b, double n, int64_t now_ms);

/* ------------------------------------------------------------------------ */
/* Copy checkpoints (migrator_ckpt.c).                                       */

/* "Every table before `table` is completely copied, and of table `table`
 * every partition up to and including pk" (pk NULL: none of it yet). A
 * table index equal to the number of tables means the copy is complete. */
typedef struct mt_copy_ckpt {
    size_t table;
    char *pk;                             /* owned, or NULL */
    int64_t rows_total, partitions_total; /* -1 while unknown */
    int64_t rows_done, partitions_done;   /* up to the point above */
} mt_copy_ckpt;

/* The text form, "v1\t<table>\t<rows_total>\t<partitions_total>\t
 * <rows_done>\t<partitions_done>\t<pk>", pk being "-" for none or "=" and
 * the key with '%', control characters and DEL written as %XX. The caller
 * frees it; NULL when out of memory. */
char *mt_copy_ckpt_format(const mt_copy_ckpt *c);
/* Parses that form into *out (cleared first); 400 InvalidInput when text is
 * not one. */
mt_status mt_copy_ckpt_parse(const char *text, mt_copy_ckpt *out);
void mt_copy_ckpt_clear(mt_copy_ckpt *c);

/* ------------------------------------------------------------------------ */
/* The copy step (migrator_copy.c, migrator_read.c).                         */

/* Partitions copied at once at most (hooks->parallel is clamped to it). */
#define MT_COPY_PARALLEL_MAX 64

/* Copies every user row of each old table into its new table, switching
 * each partition just before its first row is inserted, per hooks (may be
 * NULL): parallelism, throttle, checkpoints, pause, progress. The tables
 * are the migrator's retrying views. stats is updated as it goes; returns
 * 409 MigrationPaused when hooks->should_pause asked for it. */
mt_status mt_copy_tables(mt_rt *rt, const mt_table_pair *tables, size_t n,
                         const mt_migrator_hooks *hooks, mt_backoff *bo, mt_migrator_stats *stats);

#define MT_ERR_MIGRATION_PAUSED "MigrationPaused"

/* ------------------------------------------------------------------------ */
/* The cleanup step (migrator_clean.c).                                      */

/* Cleans every table (new to its clean form, old emptied) in chunks of one
 * batch each, per hooks (may be NULL): throttle, pause, progress in
 * stats' cleanup fields. Returns 409 MigrationPaused when asked to pause;
 * running it again resumes. */
mt_status mt_clean_tables(mt_rt *rt, const mt_table_pair *tables, size_t n,
                          const mt_migrator_hooks *hooks, mt_backoff *bo, mt_migrator_stats *stats);

#endif

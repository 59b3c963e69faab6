/*
 * backend.h -- the tester's backend table: an in-memory table behind a
 * decorator that makes every call a scheduling point and behaves as weakly
 * as Azure is allowed to.
 *
 * Weakest allowed behaviour, modelled:
 *   - a streamed query may return, for each row, any version of it that
 *     existed between the stream's open and the row's return (including
 *     "absent", so rows may be skipped if they were absent at some moment);
 *   - batches, atomic queries and point reads are atomic.
 * Every version ever written is kept in a log, so the stream can choose.
 *
 * Fault injection: sct_backend_dying wraps a table for one caller that
 * dies after a number of calls (every later call fails with 500
 * InternalError), which is how the tester kills a migrator mid-run. Streams
 * opened before the death keep working, as a dead process's open
 * connections are simply never read again.
 */
#ifndef SCT_BACKEND_H
#define SCT_BACKEND_H

#include "mt.h"
#include "sched.h"

typedef struct sct_backend sct_backend;

/* A new decorated in-memory table named name ("old", "new"); destroy with
 * mt_table_destroy. */
mt_table *sct_backend_new(sct_sched *s, const char *name);

/* A view of inner that fails every call once *budget calls were made
 * through it (share one budget between the views of one caller). Destroying
 * it leaves inner alone. */
mt_table *sct_backend_dying(mt_table *inner, int64_t *budget);

/* Rows of the inner table, for post-conditions (caller clears *out). */
void sct_backend_dump(mt_table *t, mt_entity_list *out);

#endif

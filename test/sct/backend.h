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
 * Fault injection: sct_backend_view gives a proxy a view whose late calls
 * never arrive (see below); sct_backend_dying wraps a table for one caller that
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

/* A proxy's view of backend (an sct_backend_new table), for the lease
 * scenario: the same table, but each call, once it has made its scheduling
 * point, is applied only if arrive(ctx) says it reached the service in
 * time; otherwise it fails with 503 ServerBusy and changes nothing. That is
 * how the tester models the one assumption of the lease protocol about the
 * network: a request the lease guard let through arrives within the
 * authority's margin, or never (streams opened through the view check each
 * row they fetch too). tag names the proxy in the trace. Destroying the
 * view leaves backend alone. */
mt_table *sct_backend_view(mt_table *backend, const char *tag, bool (*arrive)(void *ctx),
                           void *ctx);

/* Rows of the inner table, for post-conditions (caller clears *out). */
void sct_backend_dump(mt_table *t, mt_entity_list *out);

#endif

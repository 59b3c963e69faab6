/*
 * checker.h -- decides whether one recorded execution of a MigratingTable
 * looks like a plain Azure table to its clients.
 *
 * The checker is black-box: it sees only the history (what clients sent,
 * what they got back, and the logical times of invocation and response),
 * never the backends. It searches for a linearization: a total order of all
 * records that respects real time (a record that responded before another
 * was invoked comes first) and in which a sequential reference table
 * explains every outcome.
 *
 * The reference is a plain Azure table plus one freedom the migration needs:
 * a live row may at any moment be rewritten with the same content and a
 * fresh ETag (the migrator copies rows and cleans them up). New ETags come
 * from the recorded responses, so the reference accepts exactly the ETags
 * the system handed out. Concretely:
 *   - a conditional op whose If-Match is the row's current ETag may still
 *     fail 412 (a fresh ETag appeared; the row's ETag becomes unknown);
 *   - a conditional op succeeds only with the current, known ETag (or "*");
 *   - a read may show an ETag other than the current one only if no write
 *     in the whole history returned it; it then becomes the current one.
 * Streamed rows ignore ETags. A 503 ServerBusy (a proxy without a lease
 * refusing, a busy backend) changed nothing, whatever the operation: it is
 * never taken to have happened.
 *
 * It must never: look at anything but the history, allocate per step of the
 * search beyond its memo, or report a violation a plain table with those
 * spurious ETag changes could have produced.
 */
#ifndef SCT_CHECKER_H
#define SCT_CHECKER_H

#include "history.h"

typedef enum sct_check_result {
    SCT_CHECK_OK = 0,
    /* the atomic operations alone (batches, queries, retrieves) have no
     * linearization, or a record breaks a rule no order can fix */
    SCT_CHECK_LINEARIZABILITY,
    /* they have one, but not together with what the streams returned */
    SCT_CHECK_STREAM,
} sct_check_result;

/* Checks h. On a violation, writes a one-line explanation into why (at most
 * whylen bytes, NUL-terminated; why may be NULL): the record that could not
 * be placed and what the reference expected against what was recorded.
 * h is only read. Every record needs invoke < respond; times may repeat
 * (a stream's records share its start), and a record precedes another only
 * when it responded strictly before the other was invoked. */
sct_check_result sct_check(const sct_history *h, char *why, size_t whylen);

const char *sct_check_result_name(sct_check_result r); /* static string */

#endif

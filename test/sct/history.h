/*
 * history.h -- what the tester records of one execution, for the checker.
 *
 * Every client-visible operation is one record with the logical times of its
 * invocation and its response (a global counter bumped at every record and
 * every scheduling point, so all times are distinct). The checker is
 * black-box: it sees only these records, never the backends.
 *
 * A streamed query is recorded as many read-only records that share the
 * stream's start time as their invocation: one STREAM_ROW per returned row
 * (responded when the row was returned) and one STREAM_ABSENT per known key
 * the stream skipped (responded when the stream passed that key). That turns
 * the stream guarantee ("each row reflects some state between the start and
 * its return; a row present throughout appears exactly once") into ordinary
 * linearizability of reads with wide intervals.
 */
#ifndef SCT_HISTORY_H
#define SCT_HISTORY_H

#include "mt.h"

typedef enum sct_hkind {
    SCT_H_BATCH,         /* execute_batch on the migrating table */
    SCT_H_QUERY,         /* query_atomic: pk + filter */
    SCT_H_RETRIEVE,      /* retrieve: pk + rk */
    SCT_H_STREAM_ROW,    /* a row a stream returned: row, filter */
    SCT_H_STREAM_ABSENT, /* a stream skipped key (pk, rk): filter */
} sct_hkind;

typedef struct sct_hbatch_op {
    mt_op_kind kind;
    mt_entity *entity; /* owned; keys and properties as sent */
    char *if_match;    /* owned; NULL when none */
} sct_hbatch_op;

typedef struct sct_hop {
    sct_hkind kind;
    int actor;
    uint64_t invoke;
    uint64_t respond;
    mt_status status; /* BATCH, QUERY, RETRIEVE: the outcome */

    /* BATCH */
    size_t n;
    sct_hbatch_op *ops;     /* owned, n entries */
    mt_op_result *results;  /* owned, n entries; valid when status is ok */

    /* QUERY, STREAM_ROW, STREAM_ABSENT: the client's filter, NULL = all */
    mt_filter *filter; /* owned */

    /* QUERY, RETRIEVE, STREAM_ABSENT: the partition; RETRIEVE and
     * STREAM_ABSENT also the row key */
    char *pk; /* owned */
    char *rk; /* owned */

    mt_entity_list rows; /* QUERY: the rows returned, in key order */
    mt_entity *row;      /* RETRIEVE (NULL on 404), STREAM_ROW: owned */
} sct_hop;

typedef struct sct_history {
    sct_hop *v;
    size_t n;
    size_t cap;
} sct_history;

/* Appends a zeroed record and returns it (valid until the next append). */
sct_hop *sct_history_add(sct_history *h, sct_hkind kind, int actor);
void sct_history_clear(sct_history *h); /* frees every record */

/* One-line descriptions for traces and checker reports. Each writes at most
 * len bytes into buf (NUL-terminated when len > 0), cutting long text short
 * with "...". */
const char *sct_op_kind_name(mt_op_kind k); /* "Insert", ...; static */
void sct_entity_describe(const mt_entity *e, char *buf, size_t len);
void sct_hop_describe(const sct_hop *op, char *buf, size_t len);

#endif

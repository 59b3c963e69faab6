/*
 * checker_internal.h -- what the search (checker.c) and the reference
 * table (checker_ref.c) share: the compiled history, the reference state,
 * and the few tools both use. Nothing else includes it.
 */
#ifndef SCT_CHECKER_INTERNAL_H
#define SCT_CHECKER_INTERNAL_H

#include "checker.h"

#define SCT_NONE (-1)    /* absent row, unknown ETag, no content */
#define SCT_IFM_ANY (-2) /* If-Match: * (or none) */

/* The reference state of one key. An absent row has etag SCT_NONE, so
 * equal states are equal bytes. */
typedef struct sct_slot {
    int32_t cls;
    int32_t etag;
} sct_slot;

typedef struct sct_kref {
    const char *pk, *rk; /* borrowed from the history */
    int32_t head;        /* first content class of this key */
} sct_kref;

/* One distinct content of one key. */
typedef struct sct_class {
    const mt_entity *e; /* borrowed, or owned when built by a merge */
    int32_t key;
    int32_t next; /* next class of the same key */
    bool owned;
} sct_class;

typedef struct sct_cop {
    mt_op_kind kind;
    int32_t key;
    int32_t ifm;  /* ETag id, or SCT_IFM_ANY */
    int32_t cls;  /* content of the op's entity (not for deletes) */
    int32_t etag; /* the recorded new ETag, when the batch succeeded */
    const mt_entity *e;
} sct_cop;

typedef struct sct_crow {
    int32_t key, cls, etag;
} sct_crow;

typedef struct sct_crec {
    const sct_hop *hop;
    uint64_t invoke, respond;
    bool pure;            /* a successful step never changes the state */
    bool stream;          /* STREAM_ROW or STREAM_ABSENT */
    int32_t key;          /* RETRIEVE, STREAM_*: the key read */
    int32_t lo, hi;       /* QUERY: the partition's key ids */
    int32_t first, count; /* BATCH: its ops; QUERY: its rows */
    int32_t cls, etag;    /* RETRIEVE, STREAM_ROW: the row returned */
} sct_crec;

/* uint64 -> int32, open addressing; caches merges and filter results. */
typedef struct sct_map {
    uint64_t *k;
    int32_t *v;
    size_t cap, n;
} sct_map;

/* Visited configurations, each `width` words: placed bits, then slots. */
typedef struct sct_memo {
    uint64_t *words;
    uint64_t *hash;
    size_t n, cap, width;
    uint32_t *table; /* entry index + 1; 0 = empty */
    size_t tcap;
} sct_memo;

typedef struct sct_why {
    char *buf;
    size_t len;
} sct_why;

typedef struct sct_ctx {
    const sct_history *h;
    int32_t n;
    sct_crec *recs;

    sct_kref *keys; /* sorted by mt_key_cmp once collected */
    int32_t nkeys;
    int32_t *key_table; /* hashed by the key's bytes */
    size_t key_tcap;

    sct_class *cls;
    int32_t ncls, capcls;

    const char **etags;
    bool *issued; /* returned by some successful write */
    int32_t netags;
    int32_t *etag_table;
    size_t etag_tcap;

    sct_cop *cops;
    int32_t ncops;
    sct_crow *crows;
    int32_t ncrows;

    sct_map merges, filters;

    /* search */
    size_t nw;
    uint64_t *placed;
    int32_t nplaced, npure_left;
    int32_t nleft_out; /* records this search leaves out (placed from the start) */
    int32_t *by_invoke, *by_respond;
    int32_t *undo;
    int32_t nundo;
    sct_slot *stack;
    sct_memo memo;
    bool have_best;
    int32_t best;
    uint64_t *best_placed;
    sct_slot *best_state;
} sct_ctx;

/* Tools (checker.c). Allocation failure ends the process. */
void *sct_alloc(size_t n, size_t size);
void *sct_grow(void *p, size_t n, size_t size);
/* Writes an explanation when one is wanted; always returns false so a
 * failing check can end with `return sct_say(...)`. */
bool sct_say(sct_why *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t sct_mix(uint64_t x);
void sct_map_init(sct_map *m, size_t cap); /* cap a power of two */
void sct_map_free(sct_map *m);
bool sct_map_get(const sct_map *m, uint64_t key, int32_t *out);
void sct_map_put(sct_map *m, uint64_t key, int32_t v);

/* The reference (checker_ref.c). */

/* Validates every record, interns its keys, ETags and contents and compiles
 * it; false (explained through w) on a record no order can explain. */
bool sct_compile(sct_ctx *c, sct_why *w);
/* One step of the reference: false when record ri cannot be placed in
 * state s (which it may have changed), explained through w when set. */
bool sct_apply(sct_ctx *c, int32_t ri, sct_slot *s, sct_why *w);

#endif

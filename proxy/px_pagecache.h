/*
 * px_pagecache.h -- answers to one-partition queries kept per table and
 * served again while nothing they depend on changed (px_pagecache.c).
 */
#ifndef PX_PAGECACHE_H
#define PX_PAGECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "az.h"
#include "mt.h"

typedef struct px_pagecache px_pagecache;

/* Everything of a request an answer's bytes depend on, besides the rows:
 * its form and its query string as sent (which names the partition and
 * $top; the same string always parses alike). */
typedef struct px_page_key {
    az_metadata md;
    const char *base_url, *account, *table, *query;
} px_page_key;

/* A kept answer, copied out: body and the continuation's encoded keys
 * (NULL without one), all owned by the caller (px_page_answer_clear). */
typedef struct px_page_answer {
    char *body;
    size_t len;
    char *next_pk, *next_rk;
} px_page_answer;

px_pagecache *px_pagecache_new(void);
void px_pagecache_free(px_pagecache *c);

/* The answer kept for k, copied into *out, when its mark equals the mark
 * of view now (mt_read_mark_take); false when there is none (or none as
 * recent, then dropped) or a copy cannot be made. */
bool px_pagecache_get(px_pagecache *c, const px_page_key *k, mt_table *view, px_page_answer *out);
/* Keeps a copy of a (replacing what held its slot) when it fits the
 * limits; nothing when it does not or memory runs out. */
void px_pagecache_put(px_pagecache *c, const px_page_key *k, const mt_read_mark *m,
                      const px_page_answer *a);
void px_page_answer_clear(px_page_answer *a);

/* Bytes of bodies kept by every cache of the process, and how many
 * answers they served. */
size_t px_pagecache_bytes(void);
uint64_t px_pagecache_hits(void);

#endif

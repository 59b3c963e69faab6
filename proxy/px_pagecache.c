/*
 * px_pagecache.c -- answers to one-partition queries kept per table and
 * served again while nothing they depend on changed.
 *
 * An entry is an answer's body and continuation, kept under the request
 * form that made it (px_page_key, serialized into bytes compared whole)
 * and the read mark taken before the read (mt_read_mark: the migration's
 * configuration and the tables' write versions). Whoever asks compares
 * the mark of now with the entry's: equal means the same read would
 * return the same rows, and the same rows in the same form are the same
 * bytes. A mark that differs makes the entry useless for good (versions
 * only grow), so it is dropped then.
 *
 * Bounded: a fixed number of slots per table, chosen by a hash of the key
 * (a newer answer replaces what held its slot), a body of at most
 * PX_PAGE_BODY_MAX bytes, and PX_PAGE_TOTAL_MAX bytes of bodies for the
 * whole process. Entries are reference counted, so a reader copies the
 * body out of the lock while a writer may already have replaced it.
 */
#include "px_pagecache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PX_PAGE_SLOTS 32
#define PX_PAGE_BODY_MAX (512 * 1024)
#define PX_PAGE_TOTAL_MAX ((size_t)32 * 1024 * 1024)

typedef struct page_entry {
    char *key;
    size_t klen;
    mt_read_mark mark;
    px_page_answer a;
    unsigned refs; /* the slot's, plus one per reader copying; atomic */
} page_entry;

struct px_pagecache {
    pthread_mutex_t mu; /* guards slots, not the entries' contents */
    page_entry *slots[PX_PAGE_SLOTS];
};

static size_t kept_bytes; /* atomic */
static uint64_t served;   /* answers served from an entry; atomic */

size_t px_pagecache_bytes(void)
{
    return __atomic_load_n(&kept_bytes, __ATOMIC_RELAXED);
}

uint64_t px_pagecache_hits(void)
{
    return __atomic_load_n(&served, __ATOMIC_RELAXED);
}

void px_page_answer_clear(px_page_answer *a)
{
    free(a->body);
    free(a->next_pk);
    free(a->next_rk);
    memset(a, 0, sizeof *a);
}

static void entry_unref(page_entry *e)
{
    if (!e || __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    __atomic_sub_fetch(&kept_bytes, e->a.len, __ATOMIC_RELAXED);
    px_page_answer_clear(&e->a);
    free(e->key);
    free(e);
}

px_pagecache *px_pagecache_new(void)
{
    px_pagecache *c = calloc(1, sizeof *c);
    if (c && pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

void px_pagecache_free(px_pagecache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < PX_PAGE_SLOTS; i++)
        entry_unref(c->slots[i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ------------------------------------------------------------------------ */
/* Keys: the metadata level, then each string as its length and bytes, so */
/* no two forms serialize alike.                                            */

static size_t put_bytes(char *out, size_t at, const void *p, size_t n)
{
    if (out)
        memcpy(out + at, p, n);
    return at + n;
}

static size_t put_str(char *out, size_t at, const char *s, size_t n)
{
    at = put_bytes(out, at, &n, sizeof n);
    return put_bytes(out, at, s, n);
}

static size_t key_write(const px_page_key *k, char *out)
{
    int md = (int)k->md;
    size_t at = put_bytes(out, 0, &md, sizeof md);
    at = put_str(out, at, k->base_url, strlen(k->base_url));
    at = put_str(out, at, k->account, strlen(k->account));
    at = put_str(out, at, k->table, strlen(k->table));
    return put_str(out, at, k->query, strlen(k->query));
}

/* The key's bytes in buf when they fit, else in a new block (*heap). */
static char *key_bytes(const px_page_key *k, char *buf, size_t cap, size_t *len, char **heap)
{
    *len = key_write(k, NULL);
    *heap = NULL;
    char *out = buf;
    if (*len > cap && !(out = *heap = malloc(*len)))
        return NULL;
    key_write(k, out);
    return out;
}

static size_t slot_of(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
    return (size_t)(h % PX_PAGE_SLOTS);
}

/* ------------------------------------------------------------------------ */
/* Reading and keeping.                                                     */

static bool answer_copy(const px_page_answer *from, px_page_answer *to)
{
    memset(to, 0, sizeof *to);
    to->len = from->len;
    to->body = malloc(from->len ? from->len : 1);
    if (to->body)
        memcpy(to->body, from->body, from->len);
    if (from->next_pk)
        to->next_pk = strdup(from->next_pk);
    if (from->next_rk)
        to->next_rk = strdup(from->next_rk);
    if (!to->body || (from->next_pk && !to->next_pk) || (from->next_rk && !to->next_rk)) {
        px_page_answer_clear(to);
        return false;
    }
    return true;
}

/* Drops e from slot at if it still holds it. */
static void drop_if_held(px_pagecache *c, size_t at, page_entry *e)
{
    pthread_mutex_lock(&c->mu);
    bool held = c->slots[at] == e;
    if (held)
        c->slots[at] = NULL;
    pthread_mutex_unlock(&c->mu);
    if (held)
        entry_unref(e); /* the slot's reference */
}

bool px_pagecache_get(px_pagecache *c, const px_page_key *k, mt_table *view, px_page_answer *out)
{
    char buf[1024], *heap;
    size_t klen;
    const char *key = key_bytes(k, buf, sizeof buf, &klen, &heap);
    if (!key)
        return false;
    size_t at = slot_of(key, klen);
    pthread_mutex_lock(&c->mu);
    page_entry *e = c->slots[at];
    if (e && (e->klen != klen || memcmp(e->key, key, klen) != 0))
        e = NULL; /* another form's */
    if (e)
        __atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&c->mu);
    free(heap);
    if (!e)
        return false;
    /* The mark of now, taken only for a form that has an entry. */
    mt_read_mark now;
    bool ok = mt_read_mark_take(view, false, &now);
    if (ok && !mt_read_mark_equal(&e->mark, &now)) {
        drop_if_held(c, at, e); /* written over or another phase: never again */
        ok = false;
    }
    ok = ok && answer_copy(&e->a, out);
    entry_unref(e);
    if (ok)
        __atomic_add_fetch(&served, 1, __ATOMIC_RELAXED);
    return ok;
}

/* Counts len against the process's limit; false when it does not fit. */
static bool budget_take(size_t len)
{
    size_t now = __atomic_load_n(&kept_bytes, __ATOMIC_RELAXED);
    do {
        if (len > PX_PAGE_TOTAL_MAX - now)
            return false;
    } while (!__atomic_compare_exchange_n(&kept_bytes, &now, now + len, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return true;
}

void px_pagecache_put(px_pagecache *c, const px_page_key *k, const mt_read_mark *m,
                      const px_page_answer *a)
{
    if (a->len > PX_PAGE_BODY_MAX)
        return;
    page_entry *e = calloc(1, sizeof *e);
    char *heap = NULL;
    if (!e || !key_bytes(k, NULL, 0, &e->klen, &heap) || !answer_copy(a, &e->a)) {
        free(heap);
        free(e);
        return;
    }
    e->key = heap;
    e->mark = *m;
    e->mark.held = NULL;
    e->refs = 1;
    size_t at = slot_of(e->key, e->klen);
    /* What held the slot goes first, so that its bytes count no more. */
    pthread_mutex_lock(&c->mu);
    page_entry *old = c->slots[at];
    c->slots[at] = NULL;
    pthread_mutex_unlock(&c->mu);
    entry_unref(old);
    if (!budget_take(e->a.len)) {
        e->a.len = 0; /* counted nowhere */
        entry_unref(e);
        return;
    }
    pthread_mutex_lock(&c->mu);
    old = c->slots[at];
    c->slots[at] = e;
    pthread_mutex_unlock(&c->mu);
    entry_unref(old);
}

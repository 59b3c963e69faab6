/*
 * entity.c -- EDM values, entities, keys and the primary-key order.
 *
 * An entity keeps its user properties in a small array in insertion order
 * rather than in a hash: entities hold at most 252 properties, are cloned
 * far more often than they are searched, and a flat array clones with one
 * allocation per value and keeps serialisation order stable.
 *
 * Key order is the part that matters most. The proxy merge-joins the
 * streams of two backends, so it must order keys exactly as the backends
 * page them. Azure and Azurite compare keys ordinally over UTF-16 code
 * units. That agrees with UTF-8 byte order except for one case: a code
 * point at or above U+10000 is a surrogate pair (0xD800..0xDFFF) in UTF-16
 * and so sorts *below* U+E000..U+FFFF, while its UTF-8 form sorts above.
 * mt_str_cmp therefore decodes UTF-8 and compares UTF-16 code units.
 *
 * Sharing: a table's stored rows never change (a write replaces the row),
 * so a reader that only reads may hold the stored row itself rather than a
 * copy: a frozen entity counts its holders beyond the first in refs, with
 * atomic operations because readers let go outside the table's lock, and
 * the last mt_entity_free frees it. A frozen row may also carry one memo,
 * text a writer derived from it once (the JSON writer's property text).
 * Copying a 100-row page out of a table under its lock cost a quarter of
 * the page's time before.
 *
 * Memory: library code never aborts, so allocation failure is reported
 * where the signature allows it (NULL from constructors) and otherwise
 * leaves the target unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include "mt.h"

/* ------------------------------------------------------------------------ */
/* Values.                                                                   */

mt_value mt_v_strn(const char *s, size_t len)
{
    mt_value v;
    memset(&v, 0, sizeof v);
    v.type = MT_EDM_STRING;
    v.u.bytes.ptr = (char *)(s ? s : "");
    v.u.bytes.len = s ? len : 0;
    return v;
}

mt_value mt_v_str(const char *s)
{
    return mt_v_strn(s, s ? strlen(s) : 0);
}

mt_value mt_v_i32(int32_t x)
{
    mt_value v = {.type = MT_EDM_INT32};
    v.u.i32 = x;
    return v;
}

mt_value mt_v_i64(int64_t x)
{
    mt_value v = {.type = MT_EDM_INT64};
    v.u.i64 = x;
    return v;
}

mt_value mt_v_dbl(double x)
{
    mt_value v = {.type = MT_EDM_DOUBLE};
    v.u.dbl = x;
    return v;
}

mt_value mt_v_bool(bool x)
{
    mt_value v = {.type = MT_EDM_BOOLEAN};
    v.u.b = x;
    return v;
}

mt_value mt_v_datetime(int64_t ticks)
{
    mt_value v = {.type = MT_EDM_DATETIME};
    v.u.ticks = ticks;
    return v;
}

mt_value mt_v_guid(const uint8_t g[16])
{
    mt_value v = {.type = MT_EDM_GUID};
    if (g)
        memcpy(v.u.guid, g, 16);
    return v;
}

mt_value mt_v_binary(const void *p, size_t len)
{
    mt_value v = {.type = MT_EDM_BINARY};
    v.u.bytes.ptr = (char *)p;
    v.u.bytes.len = p ? len : 0;
    return v;
}

static bool has_bytes(mt_edm t)
{
    return t == MT_EDM_STRING || t == MT_EDM_BINARY;
}

/* Deep copy; false on allocation failure, leaving dst an empty value of
 * the same type (NULL bytes) so that clearing it is still safe. */
static bool value_dup(mt_value *dst, const mt_value *src)
{
    *dst = *src;
    if (!has_bytes(src->type))
        return true;
    /* One spare byte: strings stay NUL-terminated, and a zero-length
     * binary still gets a distinct non-NULL pointer. */
    char *p = malloc(src->u.bytes.len + 1);
    if (!p) {
        dst->u.bytes.ptr = NULL;
        dst->u.bytes.len = 0;
        return false;
    }
    if (src->u.bytes.len)
        memcpy(p, src->u.bytes.ptr, src->u.bytes.len);
    p[src->u.bytes.len] = '\0';
    dst->u.bytes.ptr = p;
    return true;
}

void mt_value_copy(mt_value *dst, const mt_value *src)
{
    (void)value_dup(dst, src);
}

void mt_value_clear(mt_value *v)
{
    if (has_bytes(v->type)) {
        free(v->u.bytes.ptr);
        v->u.bytes.ptr = NULL;
        v->u.bytes.len = 0;
    }
}

bool mt_value_equal(const mt_value *a, const mt_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case MT_EDM_STRING:
    case MT_EDM_BINARY:
        return a->u.bytes.len == b->u.bytes.len &&
               (a->u.bytes.len == 0 || memcmp(a->u.bytes.ptr, b->u.bytes.ptr, a->u.bytes.len) == 0);
    case MT_EDM_INT32:
        return a->u.i32 == b->u.i32;
    case MT_EDM_INT64:
        return a->u.i64 == b->u.i64;
    case MT_EDM_DOUBLE:
        /* Bitwise: NaN equals the same NaN, -0 differs from +0. */
        return memcmp(&a->u.dbl, &b->u.dbl, sizeof(double)) == 0;
    case MT_EDM_BOOLEAN:
        return !a->u.b == !b->u.b;
    case MT_EDM_DATETIME:
        return a->u.ticks == b->u.ticks;
    case MT_EDM_GUID:
        return memcmp(a->u.guid, b->u.guid, 16) == 0;
    }
    return false;
}

const char *mt_edm_name(mt_edm t)
{
    switch (t) {
    case MT_EDM_STRING:
        return "Edm.String";
    case MT_EDM_INT32:
        return "Edm.Int32";
    case MT_EDM_INT64:
        return "Edm.Int64";
    case MT_EDM_DOUBLE:
        return "Edm.Double";
    case MT_EDM_BOOLEAN:
        return "Edm.Boolean";
    case MT_EDM_DATETIME:
        return "Edm.DateTime";
    case MT_EDM_GUID:
        return "Edm.Guid";
    case MT_EDM_BINARY:
        return "Edm.Binary";
    }
    return "Edm.Unknown";
}

/* ------------------------------------------------------------------------ */
/* Entities.                                                                 */

static char *dup_str(const char *s)
{
    return strdup(s ? s : "");
}

mt_entity *mt_entity_new(const char *pk, const char *rk)
{
    mt_entity *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->pk = dup_str(pk);
    e->rk = dup_str(rk);
    if (!e->pk || !e->rk) {
        mt_entity_free(e);
        return NULL;
    }
    return e;
}

void mt_entity_free(mt_entity *e)
{
    if (!e)
        return;
    /* A holder among several only lets go; the last one frees. refs is
     * read first so an entity never shared costs no atomic write. */
    if (__atomic_load_n(&e->refs, __ATOMIC_ACQUIRE) != 0 &&
        __atomic_fetch_sub(&e->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (e->memo)
        e->memo->release(e->memo);
    for (size_t i = 0; i < e->nprops; i++) {
        free(e->props[i].name);
        mt_value_clear(&e->props[i].value);
    }
    free(e->props);
    free(e->pk);
    free(e->rk);
    free(e->etag);
    free(e);
}

/* Makes room for at least one more property. */
static bool reserve_prop(mt_entity *e)
{
    if (e->nprops < e->cap)
        return true;
    size_t cap = e->cap ? e->cap * 2 : 8;
    mt_prop *p = realloc(e->props, cap * sizeof *p);
    if (!p)
        return false;
    e->props = p;
    e->cap = cap;
    return true;
}

static bool append_prop(mt_entity *e, const char *name, const mt_value *v)
{
    if (!reserve_prop(e))
        return false;
    mt_prop *p = &e->props[e->nprops];
    p->name = strdup(name);
    if (!p->name)
        return false;
    if (!value_dup(&p->value, v)) {
        free(p->name);
        return false;
    }
    e->nprops++;
    return true;
}

mt_entity *mt_entity_clone(const mt_entity *e)
{
    if (!e)
        return NULL;
    mt_entity *c = mt_entity_new(e->pk, e->rk);
    if (!c)
        return NULL;
    c->timestamp = e->timestamp;
    c->oom = e->oom;
    if (e->etag && !(c->etag = strdup(e->etag)))
        goto err;
    for (size_t i = 0; i < e->nprops; i++)
        if (!append_prop(c, e->props[i].name, &e->props[i].value))
            goto err;
    return c;
err:
    mt_entity_free(c);
    return NULL;
}

mt_entity *mt_entity_ref(const mt_entity *e)
{
    mt_entity *m = (mt_entity *)e; /* the count is not the row's content */
    __atomic_fetch_add(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

void mt_entity_freeze(mt_entity *e)
{
    size_t n = strlen(MT_RESERVED_PREFIX);
    e->reserved = false;
    for (size_t i = 0; i < e->nprops && !e->reserved; i++)
        e->reserved = strncmp(e->props[i].name, MT_RESERVED_PREFIX, n) == 0;
    e->frozen = true;
}

mt_memo *mt_entity_memo(const mt_entity *e)
{
    return __atomic_load_n(&e->memo, __ATOMIC_ACQUIRE);
}

bool mt_entity_memo_attach(const mt_entity *e, mt_memo *m)
{
    mt_entity *w = (mt_entity *)e; /* a memo is a cache beside the content */
    mt_memo *none = NULL;
    return e->frozen && __atomic_compare_exchange_n(&w->memo, &none, m, false, __ATOMIC_ACQ_REL,
                                                    __ATOMIC_ACQUIRE);
}

/* A change to a frozen entity (one nobody shares: changing a shared one is
 * a bug of its holder) ends its frozen life: the memo goes. */
static void thaw(mt_entity *e)
{
    e->frozen = false;
    if (e->memo) {
        e->memo->release(e->memo);
        e->memo = NULL;
    }
}

static mt_prop *find_prop(const mt_entity *e, const char *name)
{
    for (size_t i = 0; i < e->nprops; i++)
        if (strcmp(e->props[i].name, name) == 0)
            return &e->props[i];
    return NULL;
}

const mt_value *mt_entity_get(const mt_entity *e, const char *name)
{
    mt_prop *p = find_prop(e, name);
    return p ? &p->value : NULL;
}

bool mt_entity_set(mt_entity *e, const char *name, const mt_value *v)
{
    thaw(e);
    mt_prop *p = find_prop(e, name);
    if (!p) {
        if (append_prop(e, name, v))
            return true;
        e->oom = true;
        return false;
    }
    /* Copy before clearing: v may point into the value being replaced. */
    mt_value nv;
    if (!value_dup(&nv, v)) {
        e->oom = true;
        return false;
    }
    mt_value_clear(&p->value);
    p->value = nv;
    return true;
}

bool mt_entity_remove(mt_entity *e, const char *name)
{
    mt_prop *p = find_prop(e, name);
    if (!p)
        return false;
    thaw(e);
    size_t i = (size_t)(p - e->props);
    free(p->name);
    mt_value_clear(&p->value);
    /* Shift rather than swap, to keep insertion order. */
    memmove(&e->props[i], &e->props[i + 1], (e->nprops - i - 1) * sizeof *p);
    e->nprops--;
    return true;
}

void mt_entity_set_etag(mt_entity *e, const char *etag)
{
    char *c = NULL;
    if (etag && !(c = strdup(etag)))
        return;
    thaw(e);
    free(e->etag);
    e->etag = c;
}

bool mt_entity_same_content(const mt_entity *a, const mt_entity *b)
{
    if (strcmp(a->pk, b->pk) != 0 || strcmp(a->rk, b->rk) != 0)
        return false;
    if (a->nprops != b->nprops)
        return false;
    /* Names are unique, so equal counts plus "every a in b" is equality. */
    for (size_t i = 0; i < a->nprops; i++) {
        const mt_value *bv = mt_entity_get(b, a->props[i].name);
        if (!bv || !mt_value_equal(&a->props[i].value, bv))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Key order.                                                                */

/* Decodes one code point and advances *pp. Ill-formed input (bad lead or
 * continuation bytes, overlong forms, surrogates, > U+10FFFF) yields the
 * first byte as its own value and consumes only it, so any byte string has
 * an order and the decoder never reads past the terminating NUL (a NUL is
 * never a continuation byte). */
static uint32_t utf8_next(const unsigned char **pp)
{
    const unsigned char *p = *pp;
    uint32_t c = p[0], min;
    int n;

    if (c < 0x80) {
        *pp = p + 1;
        return c;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1, c &= 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2, c &= 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3, c &= 0x07, min = 0x10000;
    } else {
        goto bad;
    }
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            goto bad;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        goto bad;
    *pp = p + n + 1;
    return c;
bad:
    *pp = p + 1;
    return p[0];
}

/* Walks a UTF-8 string as UTF-16 code units; -1 at the end. */
typedef struct u16_iter {
    const unsigned char *p;
    int32_t pending; /* low surrogate still to yield, or 0 */
} u16_iter;

static int32_t u16_next(u16_iter *it)
{
    if (it->pending) {
        int32_t u = it->pending;
        it->pending = 0;
        return u;
    }
    if (!*it->p)
        return -1;
    uint32_t c = utf8_next(&it->p);
    if (c < 0x10000)
        return (int32_t)c;
    c -= 0x10000;
    it->pending = (int32_t)(0xDC00 | (c & 0x3FF));
    return (int32_t)(0xD800 | (c >> 10));
}

int mt_str_cmp(const char *a, const char *b)
{
    if (a == b)
        return 0;
    if (!a || !b)
        return a ? 1 : -1;

    /* Fast path: a shared ASCII prefix orders the same in any encoding,
     * and stopping at a non-ASCII byte keeps us on a character boundary. */
    size_t i = 0;
    while (a[i] && a[i] == b[i] && (unsigned char)a[i] < 0x80)
        i++;

    u16_iter x = {(const unsigned char *)a + i, 0};
    u16_iter y = {(const unsigned char *)b + i, 0};
    for (;;) {
        int32_t ux = u16_next(&x), uy = u16_next(&y);
        if (ux != uy)
            return ux < uy ? -1 : 1;
        if (ux < 0)
            break;
    }
    /* Equal as code units yet possibly different bytes (a stray byte 0xE9
     * against a well-formed U+00E9): break the tie by bytes so that the
     * order stays total and only identical strings compare equal. */
    int r = strcmp(a + i, b + i);
    return (r > 0) - (r < 0);
}

int mt_key_cmp(const char *pk1, const char *rk1, const char *pk2, const char *rk2)
{
    int r = mt_str_cmp(pk1, pk2);
    return r ? r : mt_str_cmp(rk1, rk2);
}

/* k must be zeroed or previously set; its old strings are replaced. The
 * new copies are made first so that pk or rk may alias k's own strings. */
void mt_key_set(mt_key *k, const char *pk, const char *rk)
{
    char *p = dup_str(pk), *r = dup_str(rk);
    if (!p || !r) {
        free(p);
        free(r);
        return;
    }
    mt_key_clear(k);
    k->pk = p;
    k->rk = r;
}

void mt_key_clear(mt_key *k)
{
    free(k->pk);
    free(k->rk);
    k->pk = NULL;
    k->rk = NULL;
}

/* ------------------------------------------------------------------------ */
/* Entity lists.                                                             */

void mt_entity_list_push(mt_entity_list *l, mt_entity *e)
{
    if (!e) {
        l->oom = true;
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        mt_entity **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            /* The list owns e from the call on, so drop it rather than
             * leak it. */
            mt_entity_free(e);
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = e;
}

void mt_entity_list_clear(mt_entity_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        mt_entity_free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
    l->cap = 0;
    l->oom = false;
}

/* ------------------------------------------------------------------------ */
/* Key rules: what Azure accepts in a PartitionKey or RowKey.                */

#define MT_KEY_MAX_BYTES 1024

/* '/', '\\', '#', '?', U+0000..U+001F and U+007F..U+009F. U+0080..U+009F
 * are C2 80..C2 9F in UTF-8. */
static bool key_has_bad_char(const char *k)
{
    for (const unsigned char *p = (const unsigned char *)k; *p; p++) {
        if (*p < 0x20 || *p == 0x7F || *p == '/' || *p == '\\' || *p == '#' || *p == '?')
            return true;
        if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
            return true;
    }
    return false;
}

mt_status mt_key_check(const char *what, const char *k)
{
    if (strlen(k) > MT_KEY_MAX_BYTES)
        return mt_error(400, MT_ERR_OUT_OF_RANGE, "The '%s' parameter exceeds %d bytes.", what,
                        MT_KEY_MAX_BYTES);
    if (key_has_bad_char(k))
        return mt_error(400, MT_ERR_OUT_OF_RANGE,
                        "The '%s' parameter contains a character that is not "
                        "allowed in a key.",
                        what);
    return mt_ok();
}

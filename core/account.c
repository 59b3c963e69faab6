/*
 * account.c -- the account interface's helpers and the memory account: a
 * set of named in-memory tables with the table service's rules.
 *
 * Names are kept sorted case-insensitively (one name, one table, whatever
 * the case), each with the case it was created with. A table opened on the
 * account is a handle: it finds its table by name on its first call after
 * the table exists and then keeps it (one reference), so its calls cost an
 * atomic load rather than the account's lock. Deleting a table marks it
 * gone and takes it out of the account: handles that hold it answer 404
 * TableNotFound until a table of that name is created again, which they
 * then find (as the service's tables are found by name); the deleted
 * table's rows are freed at once, the table itself with the last handle.
 *
 * Every lock is the runtime's (mt_rt); the handle's two atomic loads are
 * the one thing outside it. Looking the name up under the account's lock
 * on every call was the simpler design, but it would put a second lock on
 * every request of the embedded backend; the tester, which must see every
 * interleaving, uses memtables directly, not accounts.
 */
#include "mt.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------ */
/* Helpers for every account.                                                */

size_t mt_names_find(const void *ctx, size_t n, const char *(*name_at)(const void *ctx, size_t i),
                     const char *name, bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcasecmp(name_at(ctx, mid), name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

void mt_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

bool mt_table_existed(const mt_status *st)
{
    return st->http == 409 && strcmp(st->code, MT_ERR_TABLE_EXISTS) == 0;
}

static int code_point_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

mt_status mt_names_page(char **all, size_t k, const char *from, size_t max, char ***names,
                        size_t *n, char **next)
{
    *names = NULL;
    *n = 0;
    if (next)
        *next = NULL;
    if (!all && !(all = calloc(1, sizeof *all))) /* an empty account's list */
        return mt_oom();
    qsort(all, k, sizeof *all, code_point_cmp);
    size_t lo = 0;
    while (from && lo < k && strcmp(all[lo], from) < 0)
        lo++;
    size_t hi = max && k - lo > max ? lo + max : k;
    if (hi < k && next && !(*next = strdup(all[hi]))) {
        mt_names_free(all, k);
        return mt_oom();
    }
    for (size_t i = 0; i < k; i++)
        if (i < lo || i >= hi)
            free(all[i]);
    memmove(all, all + lo, (hi - lo) * sizeof *all);
    *names = all;
    *n = hi - lo;
    return mt_ok();
}

/* Appends page (taking its strings) to *all. */
static bool names_append(char ***all, size_t *n, char **page, size_t k)
{
    char **grown = realloc(*all, (*n + k + 1) * sizeof **all);
    if (!grown)
        return false;
    if (k)
        memcpy(grown + *n, page, k * sizeof *page);
    *all = grown;
    *n += k;
    return true;
}

mt_status mt_account_list_all(mt_account *a, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    char *from = NULL;
    mt_status st = mt_ok();
    do {
        char **page = NULL, *next = NULL;
        size_t k = 0;
        st = a->ops->list(a, from, 0, &page, &k, &next);
        free(from);
        from = next;
        if (mt_is_ok(&st) && !names_append(names, n, page, k)) {
            mt_names_free(page, k);
            st = mt_oom();
        } else {
            free(page); /* the strings moved to *names */
        }
    } while (mt_is_ok(&st) && from);
    free(from);
    if (!mt_is_ok(&st)) {
        mt_names_free(*names, *n);
        *names = NULL;
        *n = 0;
    }
    return st;
}

/* ------------------------------------------------------------------------ */
/* The memory account.                                                       */

typedef struct mem_entry {
    char *name;  /* as created */
    mt_table *t; /* a memtable */
    int refs;    /* the account's while listed, plus one per handle holding it */
    bool gone;   /* deleted (atomic) */
} mem_entry;

typedef struct memaccount {
    mt_account base;
    mt_rt *rt;
    mt_mutex *mu;  /* guards v, n, cap and every entry's refs */
    mem_entry **v; /* sorted by name, case-insensitively */
    size_t n, cap;
} memaccount;

typedef struct mem_handle {
    mt_table base;
    memaccount *a;
    char *name;
    mem_entry *e; /* NULL until found (atomic) */
    /* Entries it held before their table was deleted and created again:
     * calls under way may still use them. Under the account's lock. */
    mem_entry **retired;
    size_t nretired;
} mem_handle;

static const mt_table_ops handle_ops;

static void acc_lock(memaccount *a)
{
    a->rt->ops->lock(a->rt, a->mu);
}

static void acc_unlock(memaccount *a)
{
    a->rt->ops->unlock(a->rt, a->mu);
}

/* The Azure rule: 3-63 letters and digits, a letter first; "tables" is
 * reserved. */
static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 3 || n > 63 || !isalpha((unsigned char)s[0]) || strcasecmp(s, "tables") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]))
            return false;
    return true;
}

static mt_status bad_name(void)
{
    return mt_error(400, "InvalidResourceName",
                    "The table name must be a letter then letters and digits, 3 to 63 in all.");
}

static mt_status not_found(void)
{
    return mt_error(404, MT_ERR_TABLE_NOT_FOUND, "The table specified does not exist.");
}

static const char *entry_name_at(const void *ctx, size_t i)
{
    return ((const memaccount *)ctx)->v[i]->name;
}

/* Index of name, or of where it would go (*found false). Under the lock. */
static size_t acc_find(const memaccount *a, const char *name, bool *found)
{
    return mt_names_find(a, a->n, entry_name_at, name, found);
}

static void entry_free(mem_entry *e)
{
    mt_table_destroy(e->t);
    free(e->name);
    free(e);
}

/* Drops one reference; frees the entry with the last. */
static void entry_release(memaccount *a, mem_entry *e)
{
    acc_lock(a);
    bool last = --e->refs == 0;
    acc_unlock(a);
    if (last)
        entry_free(e);
}

static mem_entry *entry_new(memaccount *a, const char *name)
{
    mem_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->name = strdup(name)) || !(e->t = mt_memtable_new(a->rt, name))) {
        if (e)
            free(e->name);
        free(e);
        return NULL;
    }
    e->refs = 1;
    return e;
}

static mt_status acc_create(mt_account *base, const char *name, bool *created)
{
    memaccount *a = (memaccount *)base;
    if (created)
        *created = false;
    if (!name_ok(name))
        return bad_name();
    /* Made before the lock (an allocation), dropped if the name exists. */
    mem_entry *e = entry_new(a, name);
    if (!e)
        return mt_oom();
    mt_status st = mt_ok();
    acc_lock(a);
    bool found;
    size_t at = acc_find(a, name, &found);
    if (found) {
        st = mt_error(409, MT_ERR_TABLE_EXISTS, "The table specified already exists.");
    } else if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        mem_entry **v = realloc(a->v, cap * sizeof *v);
        if (v)
            a->v = v, a->cap = cap;
        else
            st = mt_oom();
    }
    if (mt_is_ok(&st)) {
        memmove(a->v + at + 1, a->v + at, (a->n - at) * sizeof *a->v);
        a->v[at] = e;
        a->n++;
        e = NULL;
    }
    acc_unlock(a);
    if (e)
        entry_free(e);
    if (created)
        *created = mt_is_ok(&st);
    return st;
}

static mt_status acc_remove(mt_account *base, const char *name)
{
    memaccount *a = (memaccount *)base;
    if (!name_ok(name))
        return bad_name();
    acc_lock(a);
    bool found;
    size_t at = acc_find(a, name, &found);
    mem_entry *e = found ? a->v[at] : NULL;
    bool last = false;
    if (e) {
        memmove(a->v + at, a->v + at + 1, (a->n - at - 1) * sizeof *a->v);
        a->n--;
        __atomic_store_n(&e->gone, true, __ATOMIC_RELEASE);
        last = --e->refs == 0;
    }
    acc_unlock(a);
    if (e && !last)
        mt_memtable_clear(e->t); /* handles still hold the table, not its rows */
    if (last)
        entry_free(e);
    return e ? mt_ok() : mt_error(404, MT_ERR_NOT_FOUND, "The specified resource does not exist.");
}

static mt_status acc_list(mt_account *base, const char *from, size_t max, char ***names, size_t *n,
                          char **next)
{
    memaccount *a = (memaccount *)base;
    acc_lock(a);
    size_t k = a->n;
    char **all = calloc(k + 1, sizeof *all);
    bool ok = all != NULL;
    for (size_t i = 0; ok && i < k; i++)
        ok = (all[i] = strdup(a->v[i]->name)) != NULL;
    acc_unlock(a);
    if (!ok) {
        mt_names_free(all, k);
        *names = NULL;
        *n = 0;
        if (next)
            *next = NULL;
        return mt_oom();
    }
    return mt_names_page(all, k, from, max, names, n, next);
}

static mt_table *acc_open(mt_account *base, const char *name, mt_status *st)
{
    memaccount *a = (memaccount *)base;
    if (!name_ok(name)) {
        *st = bad_name();
        return NULL;
    }
    mem_handle *h = calloc(1, sizeof *h);
    if (!h || !(h->name = strdup(name))) {
        free(h);
        *st = mt_oom();
        return NULL;
    }
    h->base.ops = &handle_ops;
    h->a = a;
    return &h->base;
}

static void acc_destroy(mt_account *base)
{
    memaccount *a = (memaccount *)base;
    for (size_t i = 0; i < a->n; i++)
        entry_release(a, a->v[i]);
    free(a->v);
    a->rt->ops->mutex_free(a->rt, a->mu);
    free(a);
}

static const mt_account_ops memaccount_ops = {
    .open = acc_open,
    .create = acc_create,
    .remove = acc_remove,
    .list = acc_list,
    .destroy = acc_destroy,
};

mt_account *mt_memaccount_new(mt_rt *rt, const char *label)
{
    (void)label; /* tables are labelled by their names */
    memaccount *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->base.ops = &memaccount_ops;
    a->rt = rt;
    a->mu = rt->ops->mutex_new(rt);
    if (!a->mu) {
        free(a);
        return NULL;
    }
    return &a->base;
}

/* ------------------------------------------------------------------------ */
/* A table of the memory account.                                            */

/* After h's table was deleted: the table created since under its name,
 * which h holds from then on (the deleted one is kept until h goes, for
 * calls under way); NULL when there is none. */
static mem_entry *handle_refind(mem_handle *h, mem_entry *dead)
{
    memaccount *a = h->a;
    acc_lock(a);
    bool found;
    size_t at = acc_find(a, h->name, &found);
    mem_entry *e = found ? a->v[at] : NULL;
    mem_entry **grown = e ? realloc(h->retired, (h->nretired + 1) * sizeof *grown) : NULL;
    if (grown)
        h->retired = grown;
    if (grown &&
        __atomic_compare_exchange_n(&h->e, &dead, e, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        e->refs++;
        h->retired[h->nretired++] = dead;
    } else {
        e = grown ? dead : NULL; /* another call moved on first: use its */
    }
    acc_unlock(a);
    return e;
}

/* The memtable behind h, found by name the first time the table exists;
 * NULL with 404 TableNotFound when there is none or it was deleted. */
static mt_table *handle_table(mem_handle *h, mt_status *st)
{
    mem_entry *e = __atomic_load_n(&h->e, __ATOMIC_ACQUIRE);
    if (e && __atomic_load_n(&e->gone, __ATOMIC_ACQUIRE)) {
        mem_entry *again = handle_refind(h, e);
        e = again ? again : e;
    }
    if (!e) {
        memaccount *a = h->a;
        acc_lock(a);
        bool found;
        size_t at = acc_find(a, h->name, &found);
        if (found) {
            e = a->v[at];
            e->refs++;
        }
        acc_unlock(a);
        if (!e) {
            *st = not_found();
            return NULL;
        }
        mem_entry *expected = NULL;
        if (!__atomic_compare_exchange_n(&h->e, &expected, e, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
            entry_release(a, e); /* another call found it first */
            e = expected;
        }
    }
    if (__atomic_load_n(&e->gone, __ATOMIC_ACQUIRE)) {
        *st = not_found();
        return NULL;
    }
    return e->t;
}

static mt_status handle_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *results)
{
    mt_status st = mt_ok();
    mt_table *m = handle_table((mem_handle *)t, &st);
    return m ? m->ops->execute_batch(m, ops, n, results) : st;
}

static mt_status handle_query_atomic(mt_table *t, const char *pk, const mt_filter *f,
                                     mt_entity_list *out)
{
    mt_status st = mt_ok();
    mt_table *m = handle_table((mem_handle *)t, &st);
    return m ? m->ops->query_atomic(m, pk, f, out) : st;
}

static mt_status handle_query_stream(mt_table *t, const mt_filter *f, const mt_key *start,
                                     mt_stream **out)
{
    mt_status st = mt_ok();
    mt_table *m = handle_table((mem_handle *)t, &st);
    return m ? m->ops->query_stream(m, f, start, out) : st;
}

static mt_status handle_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    mt_status st = mt_ok();
    mt_table *m = handle_table((mem_handle *)t, &st);
    return m ? m->ops->retrieve(m, pk, rk, out) : st;
}

static bool handle_write_version(mt_table *t, uint64_t *out)
{
    mt_status st = mt_ok();
    mt_table *m = handle_table((mem_handle *)t, &st);
    return m && mt_table_write_version(m, out);
}

static mt_status handle_retrieve_shared(mt_table *t, const char *pk, const char *rk,
                                        mt_entity **out)
{
    mt_status st = mt_ok();
    mt_table *m = handle_table((mem_handle *)t, &st);
    return m ? mt_table_retrieve(m, pk, rk, true, out) : st;
}

static void handle_destroy(mt_table *t)
{
    mem_handle *h = (mem_handle *)t;
    mem_entry *e = __atomic_load_n(&h->e, __ATOMIC_ACQUIRE);
    if (e)
        entry_release(h->a, e);
    for (size_t i = 0; i < h->nretired; i++)
        entry_release(h->a, h->retired[i]);
    free(h->retired);
    free(h->name);
    free(h);
}

static const mt_table_ops handle_ops = {
    .execute_batch = handle_batch,
    .query_atomic = handle_query_atomic,
    .query_stream = handle_query_stream,
    .retrieve = handle_retrieve,
    .retrieve_shared = handle_retrieve_shared,
    .destroy = handle_destroy,
    .write_version = handle_write_version,
};

/*
 * px_tables.c -- the account's tables, and the table-level REST operations:
 * Query/Create/Delete Table, Get/Set Table ACL, service properties.
 *
 * The two sides, old and new, are accounts (mt_account: an Azure Table
 * account or the embedded memory account), each seen through the table map
 * (px_table_map_account) so that everything here uses the application's
 * names. The accounts are the truth about which tables exist: a table is
 * created in (and deleted from) both at once, whatever the phase, so that
 * every phase reads and writes tables that exist and the account looks the
 * same throughout; Query Tables lists the union of both.
 *
 * The registry caches each table's stack: a pair of backend tables opened
 * on the accounts and the MigratingTable over them, all sharing the
 * process's one configuration (an account moves from phase to phase as a
 * whole). It starts with the tables the accounts hold, and a table another
 * proxy created is found in the accounts on first use. No account is
 * called with the registry's lock held: a table's stack is built before
 * the lock is taken and dropped if another request got there first.
 *
 * Races between requests of this proxy: creates and deletes of one name
 * run one at a time (the later waits for the earlier, without the lock),
 * so of two creates exactly one answers 201 and a delete never overtakes
 * the create it follows; a table found in a listing is not added to the
 * registry if a delete began since the listing was taken (it is listed
 * again, up to twice).
 *
 * Tables are reference counted: a request or a migration holds its tables
 * while it runs, so a concurrent Delete Table only unlinks one, and the last
 * user frees it.
 */
#include "px.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct px_table {
    char *name;
    mt_table *old_t, *new_t, *view;
    mt_table *count_old, *count_new; /* metrics decorators over old_t, new_t */
    mt_table *guard_old, *guard_new; /* NULL without a lease to keep */
    px_pagecache *pages;             /* NULL: none (out of memory) */
    az_acl acl;
    int refs;
    bool deleted;
};

struct px_registry {
    mt_rt *rt;
    mt_config_service *cfg;
    mt_account *side[2]; /* old, new, as applications name tables (owned views) */
    const char *label[2];
    px_guard guard;
    px_metrics *metrics;
    pthread_mutex_t mu; /* guards all below, refs and ACLs; no account call under it */
    px_table **v;       /* live tables, sorted by name, case-insensitively */
    size_t n, cap;
    char **busy; /* names a create or a delete is working on */
    size_t nbusy, busy_cap;
    pthread_cond_t idle; /* a name stopped being busy */
    uint64_t deletes;    /* bumped when a delete starts and when it ends */
};

static px_table *adopt(px_registry *r, const char *name, const uint64_t *seen, mt_status *st);
static void table_free(px_table *t);

/* The union of both accounts' tables, sorted case-insensitively, one of
 * each name; a side that cannot be listed is named in the error. */
static char **account_union(px_registry *r, size_t *n, mt_status *st);

px_registry *px_registry_new(mt_rt *rt, mt_config_service *cfg, px_backend old_b, px_backend new_b,
                             const px_guard *guard, px_metrics *metrics, mt_status *st)
{
    px_registry *r = calloc(1, sizeof *r);
    if (!r) {
        *st = mt_oom();
        return NULL;
    }
    r->rt = rt;
    r->cfg = cfg;
    r->metrics = metrics;
    if (guard)
        r->guard = *guard;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->idle, NULL);
    px_backend b[2] = {old_b, new_b};
    for (int side = 0; side < 2; side++) {
        r->label[side] = b[side].label;
        r->side[side] = px_table_map_account(b[side].account, b[side].map);
    }
    *st = r->side[0] && r->side[1] ? mt_ok() : mt_oom();
    size_t n = 0;
    char **names = mt_is_ok(st) ? account_union(r, &n, st) : NULL;
    for (size_t i = 0; i < n && mt_is_ok(st); i++) {
        px_table *t = adopt(r, names[i], NULL, st);
        if (t)
            px_table_release(r, t);
    }
    mt_names_free(names, n);
    return r;
}

/* A table's stack of views; NULL (with *st set) when a part cannot be
 * made, out of memory included. Opening calls no backend. */
static px_table *table_new(px_registry *r, const char *name, mt_status *st)
{
    px_table *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name)))
        goto oom;
    t->old_t = mt_account_open(r->side[0], name, st);
    t->new_t = t->old_t ? mt_account_open(r->side[1], name, st) : NULL;
    if (!t->old_t || !t->new_t)
        goto oom;
    mt_table *o = t->old_t, *n = t->new_t;
    if (r->metrics) {
        t->count_old = o = px_metrics_table(r->metrics, t->old_t, 0);
        t->count_new = n = px_metrics_table(r->metrics, t->new_t, 1);
        if (!o || !n)
            goto oom;
    }
    if (r->guard.valid) {
        mt_table *(*make)(mt_table *, bool (*)(void *), void *) =
            r->guard.leader ? cfg_guard_leader_new : cfg_guard_new;
        t->guard_old = o = make(o, r->guard.valid, r->guard.ctx);
        t->guard_new = n = make(n, r->guard.valid, r->guard.ctx);
        if (!o || !n)
            goto oom;
    }
    if (!(t->view = mt_migrating_new(r->rt, r->cfg, o, n)))
        goto oom;
    t->pages = px_pagecache_new(); /* an optimisation: none is fine */
    t->refs = 1;
    return t;
oom:
    if (mt_is_ok(st))
        *st = mt_oom();
    if (t)
        table_free(t);
    return NULL;
}

static void table_free(px_table *t)
{
    px_pagecache_free(t->pages);
    mt_table_destroy(t->view);
    mt_table_destroy(t->guard_old);
    mt_table_destroy(t->guard_new);
    mt_table_destroy(t->count_old);
    mt_table_destroy(t->count_new);
    mt_table_destroy(t->old_t);
    mt_table_destroy(t->new_t);
    free(t->name);
    free(t);
}

void px_registry_free(px_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        table_free(r->v[i]);
    free(r->v);
    mt_account_destroy(r->side[0]);
    mt_account_destroy(r->side[1]);
    free(r->busy);
    pthread_cond_destroy(&r->idle);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static const char *table_name_at(const void *ctx, size_t i)
{
    return ((const px_registry *)ctx)->v[i]->name;
}

/* Index of name, or of where it would go (*found false). Under the lock. */
static size_t find(const px_registry *r, const char *name, bool *found)
{
    return mt_names_find(r, r->n, table_name_at, name, found);
}

/* Puts t at index at; false (t not taken) when out of memory. Under the
 * lock. */
static bool insert_at(px_registry *r, size_t at, px_table *t)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        px_table **v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return false;
        r->v = v;
        r->cap = cap;
    }
    memmove(r->v + at + 1, r->v + at, (r->n - at) * sizeof *r->v);
    r->v[at] = t;
    r->n++;
    return true;
}

/* The registry's table name, added unless present, with a reference for
 * the caller; NULL with *st when out of memory. The stack is built before
 * the lock and dropped when another request added the name meanwhile.
 * With seen (the delete count when the caller listed the accounts), an
 * absent name is added only if no delete began since: NULL with *st
 * untouched tells the caller to list again. */
static px_table *adopt(px_registry *r, const char *name, const uint64_t *seen, mt_status *st)
{
    px_table *fresh = table_new(r, name, st);
    if (!fresh)
        return NULL;
    pthread_mutex_lock(&r->mu);
    bool found;
    size_t at = find(r, name, &found);
    px_table *t = found ? r->v[at] : NULL;
    bool stale = !t && seen && *seen != r->deletes;
    if (!t && !stale && insert_at(r, at, fresh))
        t = fresh, fresh = NULL;
    if (t)
        t->refs++; /* the caller's; a new table's first is the registry's */
    pthread_mutex_unlock(&r->mu);
    if (fresh)
        table_free(fresh);
    if (!t && !stale)
        *st = mt_oom();
    return t;
}

static bool busy_has(const px_registry *r, const char *name)
{
    for (size_t i = 0; i < r->nbusy; i++)
        if (strcasecmp(r->busy[i], name) == 0)
            return true;
    return false;
}

/* Waits until no create or delete of name runs in this proxy, then marks
 * name busy; false when out of memory. */
static bool name_begin(px_registry *r, const char *name)
{
    char *copy = strdup(name);
    if (!copy)
        return false;
    pthread_mutex_lock(&r->mu);
    while (busy_has(r, name))
        pthread_cond_wait(&r->idle, &r->mu);
    bool ok = r->nbusy < r->busy_cap;
    if (!ok) {
        size_t cap = r->busy_cap ? r->busy_cap * 2 : 8;
        char **v = realloc(r->busy, cap * sizeof *v);
        if ((ok = v != NULL))
            r->busy = v, r->busy_cap = cap;
    }
    if (ok)
        r->busy[r->nbusy++] = copy;
    pthread_mutex_unlock(&r->mu);
    if (!ok)
        free(copy);
    return ok;
}

static void name_end(px_registry *r, const char *name)
{
    char *done = NULL;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nbusy && !done; i++) {
        if (strcasecmp(r->busy[i], name) == 0) {
            done = r->busy[i];
            r->busy[i] = r->busy[--r->nbusy];
        }
    }
    pthread_cond_broadcast(&r->idle);
    pthread_mutex_unlock(&r->mu);
    free(done);
}

static px_table *lookup(px_registry *r, const char *name)
{
    pthread_mutex_lock(&r->mu);
    bool found;
    size_t at = find(r, name, &found);
    px_table *t = found ? r->v[at] : NULL;
    if (t)
        t->refs++;
    pthread_mutex_unlock(&r->mu);
    return t;
}

static int name_casecmp(const void *a, const void *b)
{
    return strcasecmp(*(char *const *)a, *(char *const *)b);
}

static char **account_union(px_registry *r, size_t *n, mt_status *st)
{
    char **all = NULL;
    size_t na = 0;
    *n = 0;
    *st = mt_ok();
    for (int side = 0; side < 2 && mt_is_ok(st); side++) {
        char **names = NULL;
        size_t k = 0;
        *st = mt_account_list_all(r->side[side], &names, &k);
        if (!mt_is_ok(st)) { /* name the side: the operator must know which to fix */
            *st = mt_error(st->http, st->code, "the %s backend (--%s): %.400s", r->label[side],
                           r->label[side], st->message);
            break;
        }
        char **grown = realloc(all, (na + k + 1) * sizeof *all);
        if (!grown) {
            mt_names_free(names, k);
            *st = mt_oom();
            break;
        }
        all = grown;
        if (k)
            memcpy(all + na, names, k * sizeof *names);
        na += k;
        free(names); /* the strings moved to all */
    }
    if (!mt_is_ok(st)) {
        mt_names_free(all, na);
        return NULL;
    }
    if (na)
        qsort(all, na, sizeof *all, name_casecmp);
    size_t k = 0; /* both accounts list most tables: one of each */
    for (size_t i = 0; i < na; i++) {
        if (k > 0 && strcasecmp(all[k - 1], all[i]) == 0)
            free(all[i]);
        else
            all[k++] = all[i];
    }
    if (!all && !(all = calloc(1, sizeof *all))) {
        *st = mt_oom();
        return NULL;
    }
    *n = k;
    return all;
}

char **px_account_tables(px_registry *r, size_t *n, mt_status *st)
{
    return account_union(r, n, st);
}

void px_names_free(char **names, size_t n)
{
    mt_names_free(names, n);
}

mt_status px_table_create(px_registry *r, const char *name)
{
    if (!az_table_name_valid(name))
        return mt_error(400, "InvalidResourceName",
                        "The specifed resource name contains invalid characters.");
    if (!name_begin(r, name))
        return mt_oom();
    /* Each account says whether this request made the table there: one
     * that did settles it (another proxy may have made the other side),
     * even if a concurrent lookup found the table in the accounts and
     * added it to the registry first. */
    bool made_any = false;
    mt_status st = mt_ok();
    for (int side = 0; side < 2 && mt_is_ok(&st); side++) {
        bool made = false;
        st = mt_account_create(r->side[side], name, &made);
        if (mt_table_existed(&st))
            st = mt_ok();
        made_any = made_any || made;
    }
    px_table *t = mt_is_ok(&st) ? adopt(r, name, NULL, &st) : NULL;
    if (t)
        px_table_release(r, t);
    name_end(r, name);
    if (mt_is_ok(&st) && !made_any)
        return mt_error(409, MT_ERR_TABLE_EXISTS, "The table specified already exists.");
    return st;
}

static mt_status no_resource(void)
{
    return mt_error(404, MT_ERR_NOT_FOUND, "The specified resource does not exist.");
}

static mt_status delete_named(px_registry *r, const char *name);

/* The accounts first, without the registry lock (a network call must not
 * hold up every other request); then the registry, if the table is still
 * the one looked up. A table created again in between is found again in
 * the accounts by the next lookup. */
mt_status px_table_delete(px_registry *r, const char *name)
{
    if (!name_begin(r, name))
        return mt_oom();
    mt_status st = delete_named(r, name);
    name_end(r, name);
    return st;
}

/* The delete, name busy. */
static mt_status delete_named(px_registry *r, const char *name)
{
    mt_status st = mt_ok();
    px_table *t = px_table_get(r, name, &st);
    if (!t)
        return st.http == 404 ? no_resource() : st;
    pthread_mutex_lock(&r->mu);
    r->deletes++;
    pthread_mutex_unlock(&r->mu);
    int absent = 0;
    for (int side = 0; side < 2 && mt_is_ok(&st); side++) {
        st = mt_account_delete(r->side[side], t->name);
        if (st.http == 404)
            st = mt_ok(), absent++;
    }
    pthread_mutex_lock(&r->mu);
    bool found = false;
    size_t at = mt_is_ok(&st) ? find(r, t->name, &found) : 0;
    bool mine = found && r->v[at] == t;
    r->deletes++;
    if (mine) {
        memmove(r->v + at, r->v + at + 1, (r->n - at - 1) * sizeof *r->v);
        r->n--;
        t->deleted = true;
        t->refs--; /* the registry's */
    }
    bool last = --t->refs == 0; /* the lookup's */
    pthread_mutex_unlock(&r->mu);
    if (last)
        table_free(t);
    /* Not mine: a concurrent delete won. Absent from both: the table was
     * deleted elsewhere (another proxy) since this registry knew it. */
    if (mt_is_ok(&st) && (!mine || absent == 2))
        return no_resource();
    return st;
}

mt_status px_table_delete_old(px_registry *r, const char *name, int side)
{
    if (side < 0 || side > 1)
        return mt_error(400, MT_ERR_INVALID_INPUT, "no such side");
    /* The registry does not change: the table's data is in the other. */
    return mt_account_delete(r->side[side], name);
}

/* Whether account a holds table name: a read of one key answers 404
 * TableNotFound when it does not. */
static mt_status account_holds(mt_account *a, const char *name, bool *holds)
{
    mt_status st = mt_ok();
    mt_table *t = mt_account_open(a, name, &st);
    mt_stream *s = NULL;
    mt_entity *e = NULL;
    if (t)
        st = mt_table_keys(t, NULL, &s);
    if (s) {
        st = s->ops->next(s, &e);
        mt_entity_free(e);
        s->ops->close(s);
    }
    if (t)
        mt_table_destroy(t);
    *holds = mt_is_ok(&st);
    return mt_table_gone(&st) ? mt_ok() : st;
}

mt_status px_table_recreate_old(px_registry *r, const char *name, int side)
{
    if (side < 0 || side > 1)
        return mt_error(400, MT_ERR_INVALID_INPUT, "no such side");
    /* A table the application deleted meanwhile is not brought back. */
    bool holds = false;
    mt_status st = account_holds(r->side[1 - side], name, &holds);
    if (mt_is_ok(&st) && !holds)
        return mt_error(404, MT_ERR_TABLE_NOT_FOUND, "The table specified does not exist.");
    if (mt_is_ok(&st))
        st = mt_account_create(r->side[side], name, NULL);
    return mt_table_existed(&st) ? mt_ok() : st;
}

/* Whether names (n, sorted case-insensitively) holds name; its spelling
 * there in *as. */
static bool listed(char **names, size_t n, const char *name, const char **as)
{
    char *const *hit = bsearch(&name, names, n, sizeof *names, name_casecmp);
    *as = hit ? *hit : NULL;
    return hit != NULL;
}

px_table *px_table_get(px_registry *r, const char *name, mt_status *st)
{
    px_table *t = lookup(r, name);
    /* Another proxy of the same accounts may have created it. A listing a
     * delete here may have overtaken is taken again (twice at most: a third
     * listing is trusted, lest deletes of other tables starve the lookup). */
    mt_status err = mt_ok();
    bool again = !t && az_table_name_valid(name);
    for (int tries = 0; again && tries < 3; tries++) {
        pthread_mutex_lock(&r->mu);
        uint64_t seen = r->deletes;
        pthread_mutex_unlock(&r->mu);
        mt_status ls = mt_ok();
        size_t n = 0;
        char **names = account_union(r, &n, &ls);
        const char *as = NULL;
        again = mt_is_ok(&ls) && listed(names, n, name, &as);
        t = again ? adopt(r, as, tries < 2 ? &seen : NULL, &err) : NULL;
        again = again && !t && mt_is_ok(&err);
        mt_names_free(names, n);
    }
    if (!t) /* out of memory, or not found (a listing that failed included) */
        *st = mt_is_ok(&err)
                  ? mt_error(404, MT_ERR_TABLE_NOT_FOUND, "The table specified does not exist.")
                  : err;
    return t;
}

void px_table_release(px_registry *r, px_table *t)
{
    pthread_mutex_lock(&r->mu);
    bool last = --t->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last)
        table_free(t);
}

mt_table *px_table_view(px_table *t)
{
    return t->view;
}

px_pagecache *px_table_pages(px_table *t)
{
    return t->pages;
}

const char *px_table_name(px_table *t)
{
    return t->name;
}

az_acl px_table_acl(px_registry *r, px_table *t)
{
    pthread_mutex_lock(&r->mu);
    az_acl a = t->acl;
    pthread_mutex_unlock(&r->mu);
    return a;
}

void px_table_set_acl(px_registry *r, px_table *t, const az_acl *acl)
{
    pthread_mutex_lock(&r->mu);
    t->acl = *acl;
    pthread_mutex_unlock(&r->mu);
}

px_table **px_tables_named(px_registry *r, char *const *names, size_t n)
{
    px_table **out = calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < n; i++) {
        bool found;
        size_t at = find(r, names[i], &found);
        if (found) {
            out[i] = r->v[at];
            out[i]->refs++;
        }
    }
    pthread_mutex_unlock(&r->mu);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        if (out[i])
            continue;
        /* Not in the registry: a detached view of the backend tables (for
         * a table deleted meanwhile, its calls answer 404 TableNotFound).
         * Never added to the registry, which caches what applications
         * use. */
        mt_status st = mt_ok();
        out[i] = table_new(r, names[i], &st);
        if (out[i])
            out[i]->deleted = true;
        ok = out[i] != NULL;
    }
    if (!ok) {
        for (size_t j = 0; j < n; j++)
            if (out[j])
                px_table_release(r, out[j]);
        free(out);
        return NULL;
    }
    return out;
}

mt_table_pair px_table_backends(px_table *t)
{
    /* Guarded where the proxy is: the migrator runs on the leading
     * authority replica and must stop when it stops leading. */
    if (t->guard_old)
        return (mt_table_pair){.old_t = t->guard_old, .new_t = t->guard_new};
    return (mt_table_pair){.old_t = t->count_old ? t->count_old : t->old_t,
                           .new_t = t->count_new ? t->count_new : t->new_t};
}

/* ------------------------------------------------------------------------ */
/* REST: tables.                                                             */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void query_tables(px_req *q, px_resp *r)
{
    px_registry *reg = q->app->reg;
    az_query_opts o = {0};
    mt_status st = az_query_opts_parse(q->query, &o);
    size_t n = 0;
    char **names = mt_is_ok(&st) ? account_union(reg, &n, &st) : NULL;
    /* Listed by code point, as the service does ("Zeta" before "alpha"). */
    if (names)
        qsort(names, n, sizeof *names, name_cmp);
    /* Filter (TableName comparisons), continuation, $top. */
    char **page = calloc(n + 1, sizeof *page);
    if (mt_is_ok(&st) && !page)
        st = mt_oom();
    size_t np = 0;
    int top = o.has_top ? o.top : 1000;
    char *next = NULL;
    char *from = o.next_table ? px_token_decode(o.next_table) : NULL;
    for (size_t i = 0; mt_is_ok(&st) && i < n; i++) {
        if (from && strcmp(names[i], from) < 0)
            continue;
        mt_entity *e = mt_entity_new("", "");
        mt_value v = mt_v_str(names[i]);
        if (!e || !mt_entity_set(e, "TableName", &v)) {
            mt_entity_free(e);
            st = mt_oom();
            break;
        }
        bool match = !o.filter || mt_filter_eval(o.filter, e);
        mt_entity_free(e);
        if (!match)
            continue;
        if ((int)np == top) {
            /* $top=0 asks for nothing: no token to follow (and loop on). */
            if (top > 0 && !(next = px_token_encode(names[i])))
                st = mt_oom();
            break;
        }
        page[np++] = names[i];
    }
    if (mt_is_ok(&st)) {
        az_payload_ctx c = {
            .md = q->md, .base_url = q->base_url, .account = q->app->settings.account};
        size_t len = 0;
        char *body = az_tables_write(q->fmt, &c, page, np, &len);
        px_resp_payload(q, r, 200, body, len);
        if (next)
            px_resp_header(r, "x-ms-continuation-NextTableName", next);
    } else {
        px_resp_error(q, r, &st);
    }
    free(next);
    free(from);
    free(page);
    px_names_free(names, n);
    az_query_opts_clear(&o);
}

static void create_table(px_req *q, px_resp *r)
{
    char *name = NULL;
    az_format fmt;
    mt_status st = az_body_format(px_req_header(q, "Content-Type"), &fmt);
    if (mt_is_ok(&st))
        st = az_table_read(fmt, q->body, q->len, &name);
    if (mt_is_ok(&st))
        st = az_grant_check(&q->grant, AZ_PERM_CREATE, true, name, NULL, NULL);
    if (mt_is_ok(&st))
        st = px_table_create(q->app->reg, name);
    if (!mt_is_ok(&st)) {
        px_resp_error(q, r, &st);
        free(name);
        return;
    }
    const char *prefer = px_req_header(q, "Prefer");
    if (prefer && strstr(prefer, "return-no-content")) {
        r->status = 204;
        px_resp_header(r, "Preference-Applied", "return-no-content");
    } else {
        az_payload_ctx c = {
            .md = q->md, .base_url = q->base_url, .account = q->app->settings.account};
        size_t len = 0;
        char *body = az_table_write(q->fmt, &c, name, &len);
        px_resp_payload(q, r, 201, body, len);
        if (prefer && strstr(prefer, "return-content"))
            px_resp_header(r, "Preference-Applied", "return-content");
    }
    char loc[512];
    snprintf(loc, sizeof loc, "%s/Tables('%s')", q->base_url, name);
    px_resp_header(r, "Location", loc);
    px_resp_header(r, "DataServiceId", loc);
    free(name);
}

void px_handle_tables(px_req *q, px_resp *r)
{
    mt_status st = mt_ok();
    if (q->res.kind == AZ_RES_TABLES && strcmp(q->method, "GET") == 0) {
        st = az_grant_check(&q->grant, AZ_PERM_LIST, true, NULL, NULL, NULL);
        if (mt_is_ok(&st)) {
            query_tables(q, r);
            return;
        }
    } else if (q->res.kind == AZ_RES_TABLES && strcmp(q->method, "POST") == 0) {
        create_table(q, r);
        return;
    } else if (q->res.kind == AZ_RES_TABLE && strcmp(q->method, "DELETE") == 0) {
        st = az_grant_check(&q->grant, AZ_PERM_DELETE, true, q->res.table, NULL, NULL);
        if (mt_is_ok(&st))
            st = px_table_delete(q->app->reg, q->res.table);
        if (mt_is_ok(&st)) {
            r->status = 204;
            return;
        }
    } else if (q->res.kind == AZ_RES_TABLE && strcmp(q->method, "GET") == 0) {
        st = az_grant_check(&q->grant, AZ_PERM_LIST, true, NULL, NULL, NULL);
        px_table *t = mt_is_ok(&st) ? px_table_get(q->app->reg, q->res.table, &st) : NULL;
        if (t) {
            az_payload_ctx c = {
                .md = q->md, .base_url = q->base_url, .account = q->app->settings.account};
            size_t len = 0;
            char *body = az_table_write(q->fmt, &c, px_table_name(t), &len);
            px_table_release(q->app->reg, t);
            px_resp_payload(q, r, 200, body, len);
            return;
        }
    } else {
        st = mt_error(405, "UnsupportedHttpVerb",
                      "The resource doesn't support the specified HTTP verb.");
    }
    px_resp_error(q, r, &st);
}

/* ------------------------------------------------------------------------ */
/* REST: ACLs and service properties.                                        */

void px_handle_table_acl(px_req *q, px_resp *r)
{
    mt_status st = q->grant.shared_key
                       ? mt_ok()
                       : mt_error(403, "AuthorizationFailure",
                                  "This request is not authorized to perform this operation.");
    px_table *t = mt_is_ok(&st) ? px_table_get(q->app->reg, q->res.table, &st) : NULL;
    if (t && strcmp(q->method, "GET") == 0) {
        az_acl acl = px_table_acl(q->app->reg, t);
        size_t len = 0;
        r->status = 200;
        r->body = az_acl_write(&acl, &len);
        r->len = len;
        px_resp_header(r, "Content-Type", "application/xml");
    } else if (t && strcmp(q->method, "PUT") == 0) {
        az_acl acl = {0};
        st = q->len ? az_acl_read(q->body, q->len, &acl) : mt_ok();
        if (mt_is_ok(&st)) {
            px_table_set_acl(q->app->reg, t, &acl);
            r->status = 204;
        }
    } else if (t) {
        st = mt_error(405, "UnsupportedHttpVerb",
                      "The resource doesn't support the specified HTTP verb.");
    }
    if (t)
        px_table_release(q->app->reg, t);
    if (!mt_is_ok(&st))
        px_resp_error(q, r, &st);
}

void px_handle_service(px_req *q, px_resp *r)
{
    px_app *app = q->app;
    unsigned perm = strcmp(q->method, "PUT") == 0 ? AZ_PERM_WRITE : AZ_PERM_READ;
    mt_status st = az_grant_check(&q->grant, perm, true, NULL, NULL, NULL);
    char *comp = q->query ? az_query_get(q->query, "comp") : NULL;
    if (mt_is_ok(&st) && comp && strcmp(comp, "stats") == 0 && strcmp(q->method, "GET") == 0) {
        static const char stats[] =
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><StorageServiceStats><GeoReplication>"
            "<Status>live</Status><LastSyncTime></LastSyncTime></GeoReplication>"
            "</StorageServiceStats>";
        r->status = 200;
        r->body = strdup(stats);
        r->len = strlen(stats);
        px_resp_header(r, "Content-Type", "application/xml");
    } else if (mt_is_ok(&st) && strcmp(q->method, "GET") == 0) {
        pthread_mutex_lock(&app->mu);
        r->body = strdup(app->service_properties);
        pthread_mutex_unlock(&app->mu);
        r->len = strlen(r->body);
        r->status = 200;
        px_resp_header(r, "Content-Type", "application/xml");
    } else if (mt_is_ok(&st) && strcmp(q->method, "PUT") == 0) {
        /* Sections the body leaves out keep their values, as with the
         * service; the lock spans read and write so that concurrent Sets
         * of different sections both land. */
        char *merged = NULL;
        az_cors cors = {0};
        pthread_mutex_lock(&app->mu);
        st = az_service_properties_update(app->service_properties, q->body, q->len, &merged);
        if (mt_is_ok(&st))
            st = az_service_properties_cors(merged, &cors);
        if (mt_is_ok(&st)) {
            free(app->service_properties);
            app->service_properties = merged;
            az_cors_clear(&app->cors);
            app->cors = cors;
            merged = NULL;
            r->status = 202;
        }
        pthread_mutex_unlock(&app->mu);
        free(merged);
    } else if (mt_is_ok(&st)) {
        st = mt_error(405, "UnsupportedHttpVerb",
                      "The resource doesn't support the specified HTTP verb.");
    }
    free(comp);
    if (!mt_is_ok(&st))
        px_resp_error(q, r, &st);
}

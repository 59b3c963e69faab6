/*
 * px_tables.c -- the account's tables, and the table-level REST operations:
 * Query/Create/Delete Table, Get/Set Table ACL, service properties.
 *
 * Each table is a pair of backend tables (old and new) and the
 * MigratingTable over them, all sharing the process's one configuration: an
 * account moves from phase to phase as a whole. A table is created in (and
 * deleted from) both backends at once, whatever the phase, so that every
 * phase reads and writes tables that exist and the account looks the same
 * throughout; an Azure backend's tables are listed at start-up, and a table
 * another proxy created is found on first use.
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
    az_acl acl;
    int refs;
    bool deleted;
};

struct px_registry {
    mt_rt *rt;
    mt_config_service *cfg;
    px_backend side[2]; /* old, new */
    px_guard guard;
    px_metrics *metrics;
    pthread_mutex_t mu;
    px_table **v; /* live tables, sorted by name, case-insensitively */
    size_t n, cap;
};

static mt_status adopt_existing(px_registry *r);

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
    r->side[0] = old_b;
    r->side[1] = new_b;
    pthread_mutex_init(&r->mu, NULL);
    *st = adopt_existing(r);
    return r;
}

/* The name application table `name` has in side's account (--table-map). */
static const char *side_name(const px_registry *r, int side, const char *name)
{
    return px_table_map_to_new(r->side[side].map, name);
}

/* The application's name for side's table `name`; NULL: not one of its. */
static const char *app_name(const px_registry *r, int side, const char *name)
{
    return px_table_map_from_new(r->side[side].map, name);
}

/* One side's table object: a view of the Azure table, or a memtable. */
static mt_table *side_table(px_registry *r, int side, const char *name, mt_status *st)
{
    if (!r->side[side].client)
        return mt_memtable_new(r->rt, r->side[side].label);
    return az_client_table(r->side[side].client, side_name(r, side, name), st);
}

static void table_free(px_table *t);

/* A table's stack of views; NULL (with *st set) when a part cannot be
 * made, out of memory included. */
static px_table *table_new(px_registry *r, const char *name, mt_status *st)
{
    px_table *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name)))
        goto oom;
    t->old_t = side_table(r, 0, name, st);
    t->new_t = t->old_t ? side_table(r, 1, name, st) : NULL;
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
    t->refs = 1;
    return t;
oom:
    if (mt_is_ok(st))
        *st = mt_oom();
    if (t)
        table_free(t);
    return NULL;
}

/* Puts t at index at; false (t not taken) when out of memory. */
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

static size_t find(const px_registry *r, const char *name, bool *found);

/* Adds name unless present; the registry lock is held. The authority's
 * state table, when it lives in a backend account, is never an
 * application's table. */
static mt_status adopt_locked(px_registry *r, const char *name)
{
    if (strcasecmp(name, CFG_STATE_TABLE) == 0)
        return mt_ok();
    bool found;
    size_t at = find(r, name, &found);
    if (found)
        return mt_ok();
    mt_status st = mt_ok();
    px_table *t = table_new(r, name, &st);
    if (t && !insert_at(r, at, t)) {
        table_free(t);
        st = mt_oom();
    }
    return st;
}

/* The tables either Azure backend already has. */
static mt_status adopt_existing(px_registry *r)
{
    for (int side = 0; side < 2; side++) {
        if (!r->side[side].client)
            continue;
        char **names = NULL;
        size_t n = 0;
        mt_status st = az_client_tables_list(r->side[side].client, &names, &n);
        if (!mt_is_ok(&st)) /* name the side: the operator must know which to fix */
            return mt_error(st.http, st.code, "the %s backend (--%s): %.400s", r->side[side].label,
                            r->side[side].label, st.message);
        pthread_mutex_lock(&r->mu);
        for (size_t i = 0; i < n && mt_is_ok(&st); i++) {
            const char *name = app_name(r, side, names[i]);
            if (name)
                st = adopt_locked(r, name);
        }
        pthread_mutex_unlock(&r->mu);
        az_client_tables_free(names, n);
        if (!mt_is_ok(&st))
            return st;
    }
    return mt_ok();
}

/* Creates name in both Azure backends: *created when one of them made
 * it, *memory when a side is embedded (there the registry says whether it
 * existed). */
static mt_status create_in_backends(px_registry *r, const char *name, bool *created, bool *memory)
{
    *created = false;
    *memory = false;
    for (int side = 0; side < 2; side++) {
        if (!r->side[side].client) {
            *memory = true;
            continue;
        }
        bool made = false;
        mt_status st =
            az_client_table_create(r->side[side].client, side_name(r, side, name), &made);
        if (!mt_is_ok(&st))
            return st;
        if (made)
            *created = true;
    }
    return mt_ok();
}

static void table_free(px_table *t)
{
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
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Index of name, or of where it would go (*found false). */
static size_t find(const px_registry *r, const char *name, bool *found)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcasecmp(r->v[mid]->name, name);
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

mt_status px_table_create(px_registry *r, const char *name)
{
    if (!az_table_name_valid(name))
        return mt_error(400, "InvalidResourceName",
                        "The specifed resource name contains invalid characters.");
    if (strcasecmp(name, CFG_STATE_TABLE) == 0)
        return mt_error(400, "InvalidResourceName",
                        "The table name " CFG_STATE_TABLE " is reserved for mtable's state.");
    bool created = false, memory = false;
    mt_status st = create_in_backends(r, name, &created, &memory);
    if (!mt_is_ok(&st))
        return st;
    pthread_mutex_lock(&r->mu);
    bool found;
    size_t at = find(r, name, &found);
    px_table *t = found ? NULL : table_new(r, name, &st);
    if (t && !insert_at(r, at, t)) {
        table_free(t);
        st = mt_oom();
    }
    pthread_mutex_unlock(&r->mu);
    if (!mt_is_ok(&st))
        return st;
    /* A backend that made the table settles it: this request created it,
     * even if a concurrent lookup of another name listed the backends in
     * between and adopted it into the registry first. Otherwise it existed
     * in every Azure backend, or (embedded sides) in the registry. */
    bool existed = !created && (!memory || found);
    if (existed)
        return mt_error(409, "TableAlreadyExists", "The table specified already exists.");
    return st;
}

static px_table *lookup(px_registry *r, const char *name);

/* The backends first, without the registry lock (a network call must not
 * hold up every other request); then the registry, if the table is still
 * the one looked up. A table created again in between is adopted again
 * from the accounts by the next lookup. */
mt_status px_table_delete(px_registry *r, const char *name)
{
    px_table *t = lookup(r, name);
    if (!t)
        return mt_error(404, "ResourceNotFound", "The specified resource does not exist.");
    mt_status st = mt_ok();
    for (int side = 0; side < 2 && mt_is_ok(&st); side++) {
        if (!r->side[side].client)
            continue;
        st = az_client_table_delete(r->side[side].client, side_name(r, side, t->name));
        if (st.http == 404)
            st = mt_ok();
    }
    pthread_mutex_lock(&r->mu);
    bool found = false;
    size_t at = mt_is_ok(&st) ? find(r, t->name, &found) : 0;
    bool mine = found && r->v[at] == t;
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
    if (mt_is_ok(&st) && !mine) /* a concurrent delete won */
        return mt_error(404, "ResourceNotFound", "The specified resource does not exist.");
    return st;
}

mt_status px_table_delete_old(px_registry *r, const char *name, int side)
{
    if (side < 0 || side > 1 || !r->side[side].client)
        return mt_error(400, MT_ERR_INVALID_INPUT,
                        "the old tables are embedded memory tables: nothing to delete");
    /* No lock: a backend call, and the registry does not change. */
    return az_client_table_delete(r->side[side].client, side_name(r, side, name));
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

px_table *px_table_get(px_registry *r, const char *name, mt_status *st)
{
    px_table *t = lookup(r, name);
    /* Another proxy of the same accounts may have created it. */
    if (!t && (r->side[0].client || r->side[1].client) && az_table_name_valid(name)) {
        mt_status listed = adopt_existing(r);
        if (mt_is_ok(&listed))
            t = lookup(r, name);
    }
    if (!t)
        *st = mt_error(404, "TableNotFound", "The table specified does not exist.");
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

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The registry is kept in case-insensitive order, because names are
 * compared that way; Query Tables lists them by code point, as the
 * service does ("Zeta" before "alpha"). */
char **px_table_names(px_registry *r, size_t *n)
{
    pthread_mutex_lock(&r->mu);
    char **names = calloc(r->n + 1, sizeof *names);
    bool ok = names != NULL;
    for (size_t i = 0; ok && i < r->n; i++)
        ok = (names[i] = strdup(r->v[i]->name)) != NULL;
    *n = r->n;
    pthread_mutex_unlock(&r->mu);
    if (!ok) {
        px_names_free(names, *n);
        *n = 0;
        return NULL;
    }
    qsort(names, *n, sizeof *names, name_cmp);
    return names;
}

void px_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

static int name_casecmp(const void *a, const void *b)
{
    return strcasecmp(*(char *const *)a, *(char *const *)b);
}

char **px_account_tables(px_registry *r, size_t *n, mt_status *st)
{
    *st = mt_ok();
    if (!r->side[0].client && !r->side[1].client)
        return px_table_names(r, n);
    char **all = NULL;
    size_t na = 0;
    for (int side = 0; side < 2 && mt_is_ok(st); side++) {
        if (!r->side[side].client)
            continue;
        char **names = NULL;
        size_t k = 0;
        *st = az_client_tables_list(r->side[side].client, &names, &k);
        char **grown = mt_is_ok(st) ? realloc(all, (na + k + 1) * sizeof *all) : NULL;
        if (grown) {
            all = grown;
            for (size_t i = 0; i < k && mt_is_ok(st); i++) {
                const char *name = app_name(r, side, names[i]);
                char *mine = name == names[i] ? names[i] : name ? strdup(name) : NULL;
                if (mine)
                    all[na++] = mine;
                else if (name)
                    *st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
                if (mine != names[i])
                    free(names[i]);
                names[i] = NULL;
            }
            az_client_tables_free(names, k); /* the strings moved to all */
        } else {
            if (mt_is_ok(st))
                *st = mt_oom();
            az_client_tables_free(names, k);
        }
    }
    if (!mt_is_ok(st)) {
        px_names_free(all, na);
        return NULL;
    }
    if (na)
        qsort(all, na, sizeof *all, name_casecmp);
    size_t k = 0; /* both accounts list most tables: one of each */
    for (size_t i = 0; i < na; i++) {
        /* the authority's state table is never an application's */
        if ((k > 0 && strcasecmp(all[k - 1], all[i]) == 0) ||
            strcasecmp(all[i], CFG_STATE_TABLE) == 0)
            free(all[i]);
        else
            all[k++] = all[i];
    }
    if (!all)
        all = calloc(1, sizeof *all);
    *n = k;
    return all;
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
            continue;
        }
        /* Not in the registry: a detached view of the backend tables (for
         * a table deleted meanwhile, its calls answer 404 TableNotFound).
         * Never added to the registry, which lists what applications see. */
        mt_status st = mt_ok();
        out[i] = table_new(r, names[i], &st);
        if (out[i])
            out[i]->deleted = true;
    }
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < n; i++) {
        if (!out[i]) {
            for (size_t j = 0; j < n; j++)
                if (out[j])
                    px_table_release(r, out[j]);
            free(out);
            return NULL;
        }
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

static void query_tables(px_req *q, px_resp *r)
{
    px_registry *reg = q->app->reg;
    az_query_opts o = {0};
    mt_status st = az_query_opts_parse(q->query, &o);
    size_t n = 0;
    char **names = mt_is_ok(&st) ? px_table_names(reg, &n) : NULL;
    if (mt_is_ok(&st) && !names)
        st = mt_oom();
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

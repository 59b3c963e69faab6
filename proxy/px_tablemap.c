/*
 * px_tablemap.c -- --table-map: tables renamed by the migration.
 *
 * Applications keep using a table's old name; the old account holds the
 * table under that name and the new account under the mapped one. The map
 * is part of every proxy's backend fingerprint (px_settings_fingerprint),
 * so the authority refuses a proxy whose map differs: two proxies with
 * different maps would write one application table into two new tables.
 *
 * A mapped table's new name belongs to it: in the new account, a table
 * named like a mapped application name is not that application table (its
 * data is under the mapped name), so it is hidden from applications.
 *
 * The map applies in one place: px_table_map_account, an account decorator
 * that shows a backend account as applications see it -- their names in,
 * the account's names out, and the authority's state table (when it lives
 * in a backend account) neither listed nor creatable.
 */
#include "px.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Azure's rule for table names: 3-63 letters and digits, a letter first. */
static bool px_map_name_ok(const char *s, size_t n)
{
    if (n < 3 || n > 63 || !isalpha((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]))
            return false;
    return true;
}

/* Whether name is one of the first n app (side 0) or new (side 1) names. */
static bool px_map_has(const px_table_map *m, size_t n, int side, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(side ? m->new_name[i] : m->app[i], name) == 0)
            return true;
    return false;
}

/* One "OLD=NEW" of len bytes at p, appended to m. */
static bool px_map_entry(px_table_map *m, const char *p, size_t len, char *why, size_t cap)
{
    const char *eq = memchr(p, '=', len);
    size_t a = eq ? (size_t)(eq - p) : 0, b = eq ? len - a - 1 : 0;
    if (!eq || !px_map_name_ok(p, a) || !px_map_name_ok(eq + 1, b)) {
        snprintf(why, cap,
                 "'%.*s' is not OLD=NEW with two table names (3-63 letters and "
                 "digits, a letter first)",
                 (int)(len > 140 ? 140 : len), p);
        return false;
    }
    if (m->n == PX_TABLE_MAP_MAX) {
        snprintf(why, cap, "more than %d tables", PX_TABLE_MAP_MAX);
        return false;
    }
    snprintf(m->app[m->n], sizeof m->app[m->n], "%.*s", (int)a, p);
    snprintf(m->new_name[m->n], sizeof m->new_name[m->n], "%.*s", (int)b, eq + 1);
    const char *o = m->app[m->n], *nw = m->new_name[m->n];
    if (strcasecmp(o, nw) == 0)
        snprintf(why, cap, "%s is mapped to itself", o);
    else if (px_map_has(m, m->n, 0, o))
        snprintf(why, cap, "%s is mapped twice", o);
    else if (px_map_has(m, m->n, 1, nw))
        snprintf(why, cap, "two tables are mapped to %s", nw);
    else if (strcasecmp(o, CFG_STATE_TABLE) == 0 || strcasecmp(nw, CFG_STATE_TABLE) == 0 ||
             strcasecmp(o, "tables") == 0 || strcasecmp(nw, "tables") == 0)
        snprintf(why, cap, "%s or %s is a reserved name", o, nw);
    else {
        m->n++;
        return true;
    }
    return false;
}

bool px_table_map_parse(const char *text, px_table_map *m, char *why, size_t cap)
{
    *m = (px_table_map){0};
    if (why && cap)
        why[0] = '\0';
    char scratch[1];
    if (!why || !cap)
        why = scratch, cap = sizeof scratch;
    for (const char *p = text; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (!px_map_entry(m, p, len, why, cap)) {
            *m = (px_table_map){0};
            return false;
        }
        p = comma ? comma + 1 : p + len;
        if (comma && !*p) {
            snprintf(why, cap, "a trailing comma");
            *m = (px_table_map){0};
            return false;
        }
    }
    return true;
}

const char *px_table_map_to_new(const px_table_map *m, const char *name)
{
    for (size_t i = 0; m && i < m->n; i++)
        if (strcasecmp(m->app[i], name) == 0)
            return m->new_name[i];
    return name;
}

const char *px_table_map_from_new(const px_table_map *m, const char *name)
{
    for (size_t i = 0; m && i < m->n; i++)
        if (strcasecmp(m->new_name[i], name) == 0)
            return m->app[i];
    if (m && px_map_has(m, m->n, 0, name))
        return NULL; /* the new account's own table of that name, not the application's */
    return name;
}

void px_table_map_text(const px_table_map *m, mt_buf *b)
{
    /* Sorted and lower-cased, so that the same map written in another
     * order or case gives the same fingerprint. */
    size_t order[PX_TABLE_MAP_MAX];
    for (size_t i = 0; i < m->n; i++) {
        size_t j = i;
        while (j > 0 && strcasecmp(m->app[order[j - 1]], m->app[i]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (size_t i = 0; i < m->n; i++) {
        mt_buf_puts(b, i ? "," : "");
        for (const char *p = m->app[order[i]]; *p; p++)
            mt_buf_printf(b, "%c", tolower((unsigned char)*p));
        mt_buf_puts(b, "=");
        for (const char *p = m->new_name[order[i]]; *p; p++)
            mt_buf_printf(b, "%c", tolower((unsigned char)*p));
    }
}

/* ------------------------------------------------------------------------ */
/* The account as applications see it.                                      */

typedef struct map_account {
    mt_account base;
    mt_account *inner;       /* borrowed */
    const px_table_map *map; /* borrowed; NULL: no renames */
} map_account;

static map_account *as_map(mt_account *a)
{
    return (map_account *)a;
}

static bool reserved(const char *name)
{
    return name && strcasecmp(name, CFG_STATE_TABLE) == 0;
}

static mt_status reserved_error(void)
{
    return mt_error(400, "InvalidResourceName",
                    "The table name " CFG_STATE_TABLE " is reserved for mtable's state.");
}

static mt_table *map_open(mt_account *a, const char *name, mt_status *st)
{
    if (reserved(name)) {
        *st = reserved_error();
        return NULL;
    }
    return mt_account_open(as_map(a)->inner, px_table_map_to_new(as_map(a)->map, name), st);
}

static mt_status map_create(mt_account *a, const char *name, bool *created)
{
    if (reserved(name)) {
        if (created)
            *created = false;
        return reserved_error();
    }
    return mt_account_create(as_map(a)->inner, px_table_map_to_new(as_map(a)->map, name), created);
}

static mt_status map_remove(mt_account *a, const char *name)
{
    if (reserved(name))
        return mt_error(404, MT_ERR_NOT_FOUND, "The specified resource does not exist.");
    return mt_account_delete(as_map(a)->inner, px_table_map_to_new(as_map(a)->map, name));
}

/* Renamed names change places in the order: the whole list is read and
 * paged again. */
static mt_status map_list(mt_account *a, const char *from, size_t max, char ***names, size_t *n,
                          char **next)
{
    char **all = NULL;
    size_t k = 0, kept = 0;
    mt_status st = mt_account_list_all(as_map(a)->inner, &all, &k);
    for (size_t i = 0; mt_is_ok(&st) && i < k; i++) {
        const char *app = px_table_map_from_new(as_map(a)->map, all[i]);
        char *mine = !app || reserved(app) ? NULL : app == all[i] ? all[i] : strdup(app);
        if (app && !reserved(app) && !mine)
            st = mt_oom();
        if (mine != all[i])
            free(all[i]);
        all[i] = NULL;
        if (mine)
            all[kept++] = mine;
    }
    if (!mt_is_ok(&st)) {
        mt_names_free(all, k);
        *names = NULL;
        *n = 0;
        if (next)
            *next = NULL;
        return st;
    }
    return mt_names_page(all, kept, from, max, names, n, next);
}

static void map_destroy(mt_account *a)
{
    free(a);
}

static const mt_account_ops map_account_ops = {
    .open = map_open,
    .create = map_create,
    .remove = map_remove,
    .list = map_list,
    .destroy = map_destroy,
};

mt_account *px_table_map_account(mt_account *inner, const px_table_map *map)
{
    map_account *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->base.ops = &map_account_ops;
    a->inner = inner;
    a->map = map;
    return &a->base;
}

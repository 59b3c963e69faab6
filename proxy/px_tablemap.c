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
 */
#include "px.h"

#include <ctype.h>
#include <stdio.h>
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

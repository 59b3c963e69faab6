/*
 * cfg_traces.c -- signs in the backends that a migration already ran, for
 * an authority that found no state in its store.
 *
 * An authority that starts on an empty store writes version 1 in
 * use_old_hide_metadata. If the fleet had in fact moved on (the store was
 * lost, or points elsewhere), that state would send every new proxy to the
 * old tables. So before writing it the authority looks for what a
 * migration leaves behind, and refuses to start when it finds any:
 *   - a state table (mtablestate) in either account that is not its store;
 *   - rows in a table of the new account (rows reach new only through a
 *     switched partition or the copy);
 *   - a meta row (_mtable_partition_meta) in the first partition of an old
 *     table (the copy switches partitions in key order, so the first one
 *     is switched first).
 * Each check costs one small read per table, never a scan: the probe is a
 * guard against the common accidents, not a proof. A partition marked in
 * prefer_old deep inside a table whose new side is still empty escapes it.
 */
#include "cfg.h"
#include "az_client.h"

#include <stdio.h>
#include <string.h>

/* The first row of t (NULL when empty); caller frees. */
static mt_status first_row(mt_table *t, mt_entity **out)
{
    *out = NULL;
    mt_stream *s = NULL;
    mt_status st = t->ops->query_stream(t, NULL, NULL, &s);
    if (mt_is_ok(&st))
        st = s->ops->next(s, out);
    if (s)
        s->ops->close(s);
    return st;
}

/* Looks at table name on one side; appends what it finds to what. */
static mt_status probe_table(az_client *c, bool new_side, const char *name, char *what, size_t cap)
{
    mt_status st = mt_ok();
    mt_table *t = az_client_table(c, name, &st);
    if (!t)
        return st;
    mt_entity *row = NULL;
    st = first_row(t, &row);
    if (mt_is_ok(&st) && row && new_side) {
        snprintf(what, cap, "table %s of the new account already holds rows", name);
    } else if (mt_is_ok(&st) && row) {
        mt_entity *meta = NULL;
        mt_status r = t->ops->retrieve(t, row->pk, MT_RK_META, &meta);
        if (mt_is_ok(&r))
            snprintf(what, cap, "partition '%s' of old table %s carries a migration meta row",
                     row->pk, name);
        else if (r.http != 404)
            st = r;
        mt_entity_free(meta);
    }
    mt_entity_free(row);
    mt_table_destroy(t);
    if (st.http == 404) /* deleted meanwhile */
        st = mt_ok();
    return st;
}

mt_status cfg_traces_find(az_client *old_c, az_client *new_c, bool store_in_new, char *what,
                          size_t cap)
{
    what[0] = '\0';
    az_client *side[2] = {old_c, new_c};
    for (int i = 0; i < 2 && !what[0]; i++) {
        if (!side[i])
            continue;
        char **names = NULL;
        size_t n = 0;
        mt_status st = az_client_tables_list(side[i], &names, &n);
        if (!mt_is_ok(&st))
            return st;
        for (size_t k = 0; k < n && !what[0] && mt_is_ok(&st); k++) {
            if (strcmp(names[k], CFG_STATE_TABLE) == 0) {
                if (!(i == 1 && store_in_new))
                    snprintf(what, cap, "the %s account holds a state table (%s)",
                             i ? "new" : "old", CFG_STATE_TABLE);
                continue;
            }
            st = probe_table(side[i], i == 1, names[k], what, cap);
        }
        az_client_tables_free(names, n);
        if (!mt_is_ok(&st))
            return st;
    }
    return mt_ok();
}

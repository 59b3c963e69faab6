/*
 * table.c -- helpers over the backend-table interface.
 *
 * These work on any mt_table (in-memory, Azure, migrating, decorators)
 * because they use nothing but the function-pointer interface; that is why
 * they live apart from every implementation.
 */
#include "mt.h"

mt_status mt_table_keys(mt_table *t, const mt_key *start, mt_stream **out)
{
    return t->ops->query_keys ? t->ops->query_keys(t, start, out)
                              : t->ops->query_stream(t, NULL, start, out);
}

/* Reads the whole stream; on failure *out is left as it was, so that a
 * caller never mistakes a partial scan for a complete one. */
mt_status mt_table_scan(mt_table *t, const mt_filter *f, mt_entity_list *out)
{
    size_t n0 = out->n;
    mt_stream *s = NULL;
    mt_status st = t->ops->query_stream(t, f, NULL, &s);
    if (!mt_is_ok(&st))
        return st;
    for (;;) {
        mt_entity *e = NULL;
        st = s->ops->next(s, &e);
        if (!mt_is_ok(&st) || !e)
            break;
        size_t before = out->n;
        mt_entity_list_push(out, e);
        if (out->n == before) {
            st = mt_oom();
            break;
        }
    }
    s->ops->close(s);
    if (!mt_is_ok(&st))
        while (out->n > n0)
            mt_entity_free(out->v[--out->n]);
    return st;
}

bool mt_table_write_version(mt_table *t, uint64_t *out)
{
    return t->ops->write_version && t->ops->write_version(t, out);
}

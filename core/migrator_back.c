/*
 * migrator_back.c -- going back before any partition is switched: the check
 * that none is, and the protocol rows an abandoned migration leaves in old.
 *
 * Stepping the fleet back from prefer_old to use_old_hide_metadata is safe
 * exactly while no partition is switched: until then every row lives in
 * old, which is all phase 0 reads, and new holds nothing (I1, I2). A
 * prefer_old proxy switches a partition only for a 100-operation batch and
 * only while its configuration is settled (no phase-0 proxy left), so the
 * caller first makes every proxy hold an unsettled prefer_old, and only
 * then looks for a switched partition: none found means none will be.
 *
 * What remains in old after that: the meta rows (POPULATED) and assertion
 * rows that prefer_old's guarded writes created. Phase 0 hides them, but an
 * application reading old directly would see them, and a later migration
 * does not need them (it creates them again), so an abort deletes them once
 * every proxy is in phase 0 (which never writes them).
 *
 * Reads ask the service for meta or assertion rows only (a filter on the
 * row key), so a check costs one scan that returns a row per partition a
 * guarded write touched. Tables deleted meanwhile (404 TableNotFound) are
 * skipped.
 */
#include "migrator_internal.h"

#include <stdio.h>
#include <string.h>

#define MT_BACK_ATTEMPTS 8
#define MT_BACK_BUSY_ATTEMPTS 16

/* RowKey eq META, or also RowKey eq ASSERTION; NULL when out of memory. */
static mt_filter *mt_back_filter(bool assertions)
{
    mt_value meta = mt_v_str(MT_RK_META), assertion = mt_v_str(MT_RK_ASSERTION);
    mt_filter *f = mt_filter_cmp("RowKey", MT_EQ, &meta);
    return assertions ? mt_filter_or(f, mt_filter_cmp("RowKey", MT_EQ, &assertion)) : f;
}

static bool mt_back_switched(const mt_entity *e)
{
    const mt_value *v = mt_entity_get(e, MT_PROP_STATE);
    return strcmp(e->rk, MT_RK_META) == 0 && v && v->type == MT_EDM_INT32 &&
           v->u.i32 == MT_PARTITION_SWITCHED;
}

/* Calls row(ctx, e) for every row of t that f matches, until it returns
 * false (*stop set). */
static mt_status
mt_back_scan(mt_table *t, const mt_filter *f,
             mt_status (*row)(void *ctx, mt_table *t, const mt_entity *e, bool *stop), void *ctx)
{
    mt_stream *s = NULL;
    mt_status st = t->ops->query_stream(t, f, NULL, &s);
    mt_entity *e = NULL;
    bool stop = false;
    while (mt_is_ok(&st) && !stop && (st = s->ops->next(s, &e), mt_is_ok(&st)) && e) {
        st = row(ctx, t, e, &stop);
        mt_entity_free(e);
        e = NULL;
    }
    mt_entity_free(e);
    if (s)
        s->ops->close(s);
    return st;
}

/* Runs scan over every old table through a retrying view; a table gone
 * is skipped. */
static mt_status
mt_back_each(mt_rt *rt, const mt_table_pair *tables, size_t n, bool assertions,
             mt_status (*row)(void *ctx, mt_table *t, const mt_entity *e, bool *stop), void *ctx)
{
    mt_backoff bo;
    if (!mt_backoff_init(&bo, rt))
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    mt_filter *f = mt_back_filter(assertions);
    mt_status st = f ? mt_ok() : mt_error(500, MT_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < n && mt_is_ok(&st); i++) {
        mt_table *t = mt_mig_retrying_backoff_new(tables[i].old_t, MT_BACK_ATTEMPTS,
                                                  MT_BACK_BUSY_ATTEMPTS, &bo);
        st = t ? mt_back_scan(t, f, row, ctx) : mt_error(500, MT_ERR_INTERNAL, "out of memory");
        mt_table_destroy(t);
        if (mt_table_gone(&st))
            st = mt_ok();
    }
    mt_filter_free(f);
    mt_backoff_clear(&bo);
    return st;
}

typedef struct mt_back_find {
    const char *const *names;
    size_t table;
    bool *found;
    char *where;
    size_t cap;
} mt_back_find;

static mt_status mt_back_find_row(void *ctx, mt_table *t, const mt_entity *e, bool *stop)
{
    (void)t;
    mt_back_find *f = ctx;
    if (!mt_back_switched(e))
        return mt_ok();
    *f->found = *stop = true;
    if (f->cap)
        snprintf(f->where, f->cap, "%s%s%s", f->names ? f->names[f->table] : "",
                 f->names ? " / " : "", e->pk);
    return mt_ok();
}

mt_status mt_find_switched(mt_rt *rt, const mt_table_pair *tables, const char *const *names,
                           size_t n, bool *found, char *where, size_t cap)
{
    *found = false;
    if (cap)
        where[0] = '\0';
    mt_back_find f = {.names = names, .found = found, .where = where, .cap = cap};
    mt_status st = mt_ok();
    for (size_t i = 0; i < n && mt_is_ok(&st) && !*found; i++) {
        f.table = i;
        st = mt_back_each(rt, tables + i, 1, false, mt_back_find_row, &f);
    }
    return st;
}

static mt_status mt_back_delete_row(void *ctx, mt_table *t, const mt_entity *e, bool *stop)
{
    (void)stop;
    int64_t *removed = ctx;
    mt_op op = {.kind = MT_OP_DELETE_IF_EXISTS, .entity = (mt_entity *)e, .if_match = "*"};
    mt_op_result res;
    mt_status st = mt_table_batch(t, &op, 1, &res);
    if (mt_is_ok(&st))
        (*removed)++;
    return st;
}

mt_status mt_clean_protocol_rows(mt_rt *rt, const mt_table_pair *tables, size_t n, int64_t *removed)
{
    *removed = 0;
    return mt_back_each(rt, tables, n, true, mt_back_delete_row, removed);
}

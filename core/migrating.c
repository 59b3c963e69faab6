/*
 * migrating.c -- the MigratingTable protocol: writes.
 *
 * A MigratingTable presents one table while its rows move from the old
 * backend table to the new one. Proxies in two neighbouring phases run at the
 * same time, so every write must be safe against a peer one phase behind or
 * ahead. The invariants that make that true:
 *
 *   I1  A partition P is *switched* exactly when old's meta row of P says
 *       SWITCHED. Once switched, no client writes P's rows in old again
 *       (until cleanup deletes them): a phase-1 write to old runs behind a
 *       guard op (Merge of the assertion row) that fails once P is switched,
 *       and switching deletes that assertion row in the same batch.
 *   I2  Rows exist in new only for switched partitions, and new wins: where
 *       both tables have a row, the new one (possibly a tombstone) is the
 *       truth.
 *   I3  Writes to new are translated against what new holds and run as one
 *       conditional batch (If-Match on every row read), so that batch is the
 *       linearization point: if anything changed since the reads, it fails
 *       and the write is retried.
 *   I4  While any reader may still consult old (phases <= 3), a delete in new
 *       leaves a tombstone that keeps shadowing old's copy. No live write
 *       carries an _mtable_* property (InsertOrMerge is translated against
 *       the row rather than flagged), so live rows stay clean, keep all 252
 *       properties for the client, and cleanup only removes tombstones.
 *
 * Queries are in migrating_query.c, the migrator in migrator.c.
 */
#include "migrating_internal.h"

#include <stdlib.h>
#include <string.h>

/* Concurrency conflicts before a write gives up with 503 ServerBusy (which
 * SDKs retry). Only reached under pathological contention. */
#define MIG_MAX_ATTEMPTS 64

bool mt_mig_is_protocol_rk(const char *rk)
{
    return strcmp(rk, MT_RK_META) == 0 || strcmp(rk, MT_RK_ASSERTION) == 0;
}

bool mt_mig_is_tombstone(const mt_entity *e)
{
    const mt_value *v = mt_entity_get(e, MT_PROP_DELETED);
    return v && v->type == MT_EDM_BOOLEAN && v->u.b;
}

static bool is_reserved_name(const char *name)
{
    return strncmp(name, MT_RESERVED_PREFIX, strlen(MT_RESERVED_PREFIX)) == 0;
}

bool mt_mig_has_reserved_prop(const mt_entity *e)
{
    for (size_t i = 0; i < e->nprops; i++)
        if (is_reserved_name(e->props[i].name))
            return true;
    return false;
}

void mt_mig_strip(mt_entity *e)
{
    for (size_t i = e->nprops; i-- > 0;)
        if (is_reserved_name(e->props[i].name))
            mt_entity_remove(e, e->props[i].name);
}

/* ------------------------------------------------------------------------ */
/* Reading and copying rows.                                                 */

mt_status mt_mig_read_keys(mt_table *t, const char *pk, const char *const *rks, size_t n,
                           mt_entity_list *out)
{
    /* One comparison of the limit goes to the PartitionKey. */
    const size_t chunk = MT_FILTER_MAX_COMPARISONS - 1;
    for (size_t i = 0; i < n; i += chunk) {
        mt_filter *f = NULL;
        for (size_t j = i; j < n && j < i + chunk; j++) {
            mt_value v = mt_v_str(rks[j]);
            mt_filter *c = mt_filter_cmp("RowKey", MT_EQ, &v);
            f = f ? mt_filter_or(f, c) : c;
        }
        mt_status st = t->ops->query_atomic(t, pk, f, out);
        mt_filter_free(f);
        if (!mt_is_ok(&st))
            return st;
    }
    return mt_ok();
}

static const mt_entity *find_rk(const mt_entity_list *l, const char *rk)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i]->rk, rk) == 0)
            return l->v[i];
    return NULL;
}

mt_status mt_mig_copy_row(mt_table *new_t, const mt_entity *e)
{
    mt_entity *copy = mt_entity_clone(e);
    if (!copy)
        return mt_oom();
    mt_mig_strip(copy);
    mt_entity_set_etag(copy, NULL);
    mt_op op = {.kind = MT_OP_INSERT, .entity = copy};
    mt_op_result res;
    mt_status st = mt_table_batch(new_t, &op, 1, &res);
    mt_entity_free(copy);
    if (st.http == 409) /* someone copied it first */
        return mt_ok();
    return st;
}

/* ------------------------------------------------------------------------ */
/* Partition states.                                                         */

static mt_entity *meta_row(const char *pk, int32_t state)
{
    mt_entity *e = mt_entity_new(pk, MT_RK_META);
    if (e) {
        mt_value v = mt_v_i32(state);
        mt_entity_set(e, MT_PROP_STATE, &v);
    }
    return e;
}

static mt_status read_partition_state(mt_table *old_t, const char *pk, int *state)
{
    *state = 0;
    if (MT_BUG(EnsurePartitionSwitchedFromPopulated))
        return mt_ok();
    mt_entity *meta = NULL;
    mt_status st = old_t->ops->retrieve(old_t, pk, MT_RK_META, &meta);
    if (st.http == 404)
        return mt_ok();
    if (!mt_is_ok(&st))
        return st;
    const mt_value *v = mt_entity_get(meta, MT_PROP_STATE);
    /* A meta row always carries its state; one without is treated as
     * POPULATED, the state that still needs switching. */
    *state = (v && v->type == MT_EDM_INT32) ? v->u.i32 : MT_PARTITION_POPULATED;
    mt_entity_free(meta);
    return mt_ok();
}

static mt_status switch_unmarked(mt_table *old_t, const char *pk, bool *again)
{
    mt_entity *meta = meta_row(pk, MT_PARTITION_SWITCHED);
    mt_op op = {.kind = MT_OP_INSERT, .entity = meta};
    mt_op_result res;
    mt_status st = mt_table_batch(old_t, &op, 1, &res);
    mt_entity_free(meta);
    /* 409: another client marked it meanwhile, POPULATED or SWITCHED. */
    *again = st.http == 409 && !MT_BUG(EnsurePartitionSwitchedFromPopulated);
    return (st.http == 409) ? mt_ok() : st;
}

static mt_status switch_populated(mt_table *old_t, const char *pk)
{
    mt_entity *meta = meta_row(pk, MT_PARTITION_SWITCHED);
    mt_entity *assertion = mt_entity_new(pk, MT_RK_ASSERTION);
    mt_op ops[2] = {
        {.kind = MT_OP_REPLACE, .entity = meta, .if_match = "*"},
        {.kind = MT_OP_DELETE, .entity = assertion, .if_match = "*"},
    };
    mt_op_result res[2];
    mt_status st = mt_table_batch(old_t, ops, 2, res);
    mt_entity_free(meta);
    mt_entity_free(assertion);
    /* The assertion row gone means another client switched it. */
    if (st.http == 404 && st.index == 1)
        return mt_ok();
    return st;
}

mt_status mt_mig_ensure_switched(mt_table *old_t, const char *pk)
{
    for (;;) {
        int state;
        mt_status st = read_partition_state(old_t, pk, &state);
        if (!mt_is_ok(&st) || state == MT_PARTITION_SWITCHED)
            return st;
        if (state == MT_PARTITION_POPULATED)
            return switch_populated(old_t, pk);
        bool again;
        st = switch_unmarked(old_t, pk, &again);
        if (!again)
            return st;
    }
}

/* ------------------------------------------------------------------------ */
/* Phase 1: writes go to old behind the guard.                               */

static mt_status mark_populated(mt_table *old_t, const char *pk)
{
    mt_entity *meta = meta_row(pk, MT_PARTITION_POPULATED);
    mt_entity *assertion = mt_entity_new(pk, MT_RK_ASSERTION);
    mt_op ops[2] = {
        {.kind = MT_OP_INSERT, .entity = meta},
        {.kind = MT_OP_INSERT, .entity = assertion},
    };
    mt_op_result res[2];
    mt_status st = mt_table_batch(old_t, ops, 2, res);
    mt_entity_free(meta);
    mt_entity_free(assertion);
    /* 409: already populated, or switched (the guard will tell). */
    return (st.http == 409) ? mt_ok() : st;
}

/* Runs the batch on old behind the guard. *switched is set when the
 * partition turned out to be switched and the write must go to new. */
static mt_status phase1_batch(mt_migrating *m, const mt_config *c, const mt_op *ops, size_t n,
                              mt_op_result *results, bool *switched)
{
    *switched = false;
    if (n + 1 > MT_BATCH_MAX) {
        /* No room for the guard: switch the partition instead, which is
         * only safe once no phase-0 client can still write old. */
        if (!c->settled)
            return mt_error(503, MT_ERR_SERVER_BUSY,
                            "a %zu-operation batch must wait until every proxy is in phase %s",
                            n, mt_phase_name(MT_PHASE_PREFER_OLD));
        *switched = true;
        return mt_ok();
    }
    const char *pk = ops[0].entity->pk;
    mt_status st = mark_populated(m->old_t, pk);
    if (!mt_is_ok(&st))
        return st;

    mt_entity *assertion = mt_entity_new(pk, MT_RK_ASSERTION);
    mt_op gops[MT_BATCH_MAX];
    mt_op_result gres[MT_BATCH_MAX];
    gops[0] = (mt_op){.kind = MT_OP_MERGE, .entity = assertion, .if_match = "*"};
    memcpy(gops + 1, ops, n * sizeof *ops);
    st = mt_table_batch(m->old_t, gops, n + 1, gres);
    mt_entity_free(assertion);
    if (mt_is_ok(&st)) {
        memcpy(results, gres + 1, n * sizeof *results);
        return st;
    }
    if (st.index == 0 && st.http == 404) {
        *switched = true;
        return mt_ok();
    }
    st.index = (st.index > 0) ? st.index - 1 : -1;
    return st;
}

/* ------------------------------------------------------------------------ */
/* Phases 2-4: translate against new and run as one conditional batch.      */

/* Reads the batch's rows from new into *cur. In phases <= 2 a row absent
 * from new may still live only in old: those keys (and only those) are read
 * from old, any found are copied, and new is read again so the translation
 * sees them. Reading new first is safe because the partition is switched,
 * so old's rows are frozen: what old says later is what it said when new
 * was read. */
static mt_status read_current(mt_migrating *m, mt_phase phase, const char *pk,
                              const char *const *rks, size_t n, mt_entity_list *cur)
{
    mt_status st = mt_mig_read_keys(m->new_t, pk, rks, n, cur);
    if (!mt_is_ok(&st) || phase > MT_PHASE_PREFER_NEW)
        return st;
    const char *missing[MT_BATCH_MAX];
    size_t nmissing = 0;
    for (size_t i = 0; i < n; i++)
        if (!find_rk(cur, rks[i]))
            missing[nmissing++] = rks[i];
    if (nmissing == 0)
        return st;
    mt_entity_list olds = {0};
    size_t copied = 0;
    st = mt_mig_read_keys(m->old_t, pk, missing, nmissing, &olds);
    for (size_t i = 0; mt_is_ok(&st) && i < olds.n; i++) {
        if (mt_mig_is_protocol_rk(olds.v[i]->rk))
            continue;
        st = mt_mig_copy_row(m->new_t, olds.v[i]);
        copied++;
    }
    mt_entity_list_clear(&olds);
    if (mt_is_ok(&st) && copied > 0) {
        mt_entity_list_clear(cur);
        st = mt_mig_read_keys(m->new_t, pk, rks, n, cur);
    }
    return st;
}

typedef struct xlate {
    mt_op ops[MT_BATCH_MAX];       /* the batch for new */
    mt_entity *owned[MT_BATCH_MAX]; /* entities built for it */
    int map[MT_BATCH_MAX];          /* client op -> index in ops, or -1 */
    size_t n;
} xlate;

static void xlate_clear(xlate *x)
{
    for (size_t i = 0; i < x->n; i++)
        mt_entity_free(x->owned[i]);
    x->n = 0;
}

static mt_status check_existing(const mt_op *op, const mt_entity *cur)
{
    if (!cur || mt_mig_is_tombstone(cur))
        return mt_error(404, MT_ERR_NOT_FOUND, "The specified resource does not exist.");
    if (!mt_etag_matches(op->if_match, cur->etag))
        return mt_error(412, MT_ERR_CONDITION,
                        "The update condition specified in the request was not satisfied.");
    return mt_ok();
}

static mt_entity *user_copy(const mt_entity *e)
{
    mt_entity *c = mt_entity_clone(e);
    if (c)
        mt_entity_set_etag(c, NULL);
    return c;
}

static mt_entity *tombstone(const char *pk, const char *rk)
{
    if (MT_BUG(DeletePrimaryKey))
        pk = rk = "";
    mt_entity *e = mt_entity_new(pk, rk);
    if (e) {
        mt_value v = mt_v_bool(true);
        mt_entity_set(e, MT_PROP_DELETED, &v);
    }
    return e;
}

static void emit(xlate *x, size_t client_i, mt_op_kind kind, mt_entity *e, const char *if_match)
{
    x->map[client_i] = (int)x->n;
    x->owned[x->n] = e;
    x->ops[x->n] = (mt_op){.kind = kind, .entity = e, .if_match = if_match};
    x->n++;
}

/* InsertOrMerge, translated against the row so that no live row ever
 * carries _mtable_deleted: a plain InsertOrMerge onto a tombstone would keep
 * its flag (and so the row hidden), and adding _mtable_deleted=false instead
 * would cost every such row a property of its 252 and a rewrite at cleanup.
 * The conditional op keeps the batch the linearization point. */
static void xlate_upsert_merge(xlate *x, size_t i, const mt_op *op, const mt_entity *cur)
{
    if (!cur)
        emit(x, i, MT_OP_INSERT, user_copy(op->entity), NULL);
    else if (mt_mig_is_tombstone(cur))
        emit(x, i, MT_OP_REPLACE, user_copy(op->entity), cur->etag);
    else
        emit(x, i, MT_OP_MERGE, user_copy(op->entity), cur->etag);
}

static mt_status xlate_delete(xlate *x, size_t i, const mt_op *op, const mt_entity *cur,
                              bool tombstones)
{
    const mt_entity *e = op->entity;
    if (op->kind == MT_OP_DELETE_IF_EXISTS) {
        if (tombstones)
            emit(x, i, MT_OP_INSERT_OR_REPLACE, tombstone(e->pk, e->rk), NULL);
        else if (MT_BUG(DeleteIfExistsOmitted) && !cur)
            x->map[i] = -1;
        else
            emit(x, i, MT_OP_DELETE_IF_EXISTS, mt_entity_new(e->pk, e->rk), NULL);
        return mt_ok();
    }
    mt_status st = check_existing(op, cur);
    if (!mt_is_ok(&st))
        return st;
    if (tombstones)
        emit(x, i, MT_OP_REPLACE, tombstone(e->pk, e->rk), cur->etag);
    else
        emit(x, i, MT_OP_DELETE, tombstone(e->pk, e->rk),
             MT_BUG(DeleteNoLeaveTombstonesETag) ? "*" : cur->etag);
    return mt_ok();
}

/* Translates client op i against cur (the row new holds, or NULL). */
static mt_status xlate_op(xlate *x, size_t i, const mt_op *op, const mt_entity *cur,
                          mt_phase phase)
{
    bool tombstones = phase <= MT_PHASE_USE_NEW_WITH_TOMBSTONES;
    mt_status st = mt_ok();
    switch (op->kind) {
    case MT_OP_INSERT:
        if (cur && !mt_mig_is_tombstone(cur))
            return mt_error(409, MT_ERR_ENTITY_EXISTS, "The specified entity already exists.");
        emit(x, i, cur ? MT_OP_REPLACE : MT_OP_INSERT, user_copy(op->entity),
             cur ? cur->etag : NULL);
        return st;
    case MT_OP_REPLACE:
    case MT_OP_MERGE:
        st = check_existing(op, cur);
        if (mt_is_ok(&st))
            emit(x, i, op->kind, user_copy(op->entity), cur->etag);
        return st;
    case MT_OP_DELETE:
    case MT_OP_DELETE_IF_EXISTS:
        return xlate_delete(x, i, op, cur, tombstones);
    case MT_OP_INSERT_OR_REPLACE:
        emit(x, i, MT_OP_INSERT_OR_REPLACE, user_copy(op->entity), NULL);
        return st;
    case MT_OP_INSERT_OR_MERGE:
        xlate_upsert_merge(x, i, op, cur);
        return st;
    }
    return mt_error(400, MT_ERR_INVALID_INPUT, "unknown operation kind %d", (int)op->kind);
}

static void fill_results(const mt_op *ops, size_t n, const xlate *x, const mt_op_result *nres,
                         mt_op_result *results)
{
    for (size_t i = 0; i < n; i++) {
        bool del = ops[i].kind == MT_OP_DELETE || ops[i].kind == MT_OP_DELETE_IF_EXISTS;
        results[i].http = ops[i].kind == MT_OP_INSERT ? 201 : 204;
        results[i].etag[0] = '\0';
        if (!del && x->map[i] >= 0 && !MT_BUG(TombstoneOutputETag))
            memcpy(results[i].etag, nres[x->map[i]].etag, MT_ETAG_MAX);
    }
}

/* One attempt: read, translate, run. *retry is set when the batch on new
 * lost a race and the whole attempt must be repeated. */
static mt_status attempt_on_new(mt_migrating *m, mt_phase phase, const mt_op *ops, size_t n,
                                const char *const *rks, mt_op_result *results, bool *retry)
{
    *retry = false;
    const char *pk = ops[0].entity->pk;
    mt_entity_list cur = {0};
    xlate x = {.n = 0};
    mt_status st = read_current(m, phase, pk, rks, n, &cur);
    for (size_t i = 0; mt_is_ok(&st) && i < n; i++) {
        st = xlate_op(&x, i, &ops[i], find_rk(&cur, ops[i].entity->rk), phase);
        if (!mt_is_ok(&st))
            st.index = (int)i;
    }
    if (mt_is_ok(&st) && x.n > 0) {
        mt_op_result nres[MT_BATCH_MAX];
        st = mt_table_batch(m->new_t, x.ops, x.n, nres);
        if (mt_is_ok(&st))
            fill_results(ops, n, &x, nres, results);
        else if (st.http == 404 || st.http == 409 || st.http == 412)
            *retry = true;
    } else if (mt_is_ok(&st)) {
        fill_results(ops, n, &x, NULL, results);
    }
    xlate_clear(&x);
    mt_entity_list_clear(&cur);
    return st;
}

/* A partition stays switched until cleanup (which runs only once no proxy
 * is in a phase that switches), so a proxy may remember which partitions it
 * saw switched and skip the read of the meta row. The cache is bounded: when
 * full it starts over, which costs reads, never correctness. */
#define MIG_SWITCHED_CACHE_MAX 65536

/* The cache for m's roles, its lock held: one kept for the other roles
 * (before a migration back began) is forgotten. */
static mt_mig_cache *cache_lock(mt_migrating *m)
{
    mt_mig_cache *k = m->cache;
    m->rt->ops->lock(m->rt, k->mu);
    if (k->generation != m->generation) {
        mt_mig_forget_switched(k);
        k->generation = m->generation;
    }
    return k;
}

bool mt_mig_switched_known(mt_migrating *m, const char *pk)
{
    mt_mig_cache *k = cache_lock(m);
    bool hit = false;
    size_t lo = 0, hi = k->nswitched;
    while (lo < hi && !hit) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(k->switched[mid], pk);
        if (c == 0)
            hit = true;
        else if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    m->rt->ops->unlock(m->rt, k->mu);
    return hit;
}

static void switched_remember(mt_migrating *m, const char *pk)
{
    char *copy = strdup(pk);
    if (!copy)
        return;
    mt_mig_cache *k = cache_lock(m);
    if (k->nswitched == MIG_SWITCHED_CACHE_MAX)
        mt_mig_forget_switched(k);
    size_t lo = 0, hi = k->nswitched;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(k->switched[mid], pk) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < k->nswitched && strcmp(k->switched[lo], pk) == 0) {
        free(copy);
    } else {
        if (k->nswitched == k->capswitched) {
            size_t cap = k->capswitched ? k->capswitched * 2 : 64;
            char **v = realloc(k->switched, cap * sizeof *v);
            if (!v) {
                free(copy);
                m->rt->ops->unlock(m->rt, k->mu);
                return;
            }
            k->switched = v;
            k->capswitched = cap;
        }
        memmove(k->switched + lo + 1, k->switched + lo, (k->nswitched - lo) * sizeof *k->switched);
        k->switched[lo] = copy;
        k->nswitched++;
    }
    m->rt->ops->unlock(m->rt, k->mu);
}

void mt_mig_forget_switched(mt_mig_cache *k)
{
    for (size_t i = 0; i < k->nswitched; i++)
        free(k->switched[i]);
    k->nswitched = 0;
}

void mt_mig_oriented(const mt_migrating *m, const mt_config *c, mt_migrating *out)
{
    *out = *m;
    out->generation = c->generation;
    if (c->reversed) {
        out->old_t = m->new_t;
        out->new_t = m->old_t;
        out->reversed = true;
    }
}

static mt_status ensure_switched_cached(mt_migrating *m, const char *pk)
{
    if (mt_mig_switched_known(m, pk))
        return mt_ok();
    mt_status st = mt_mig_ensure_switched(m->old_t, pk);
    if (mt_is_ok(&st))
        switched_remember(m, pk);
    return st;
}

static mt_status batch_on_new(mt_migrating *m, const mt_config *c, const mt_op *ops, size_t n,
                              mt_op_result *results)
{
    const char *pk = ops[0].entity->pk;
    const char *rks[MT_BATCH_MAX];
    for (size_t i = 0; i < n; i++)
        rks[i] = ops[i].entity->rk;

    /* Readers up to prefer_new consult new only for switched partitions, so
     * switch first. use_new_hide_metadata coexists only with readers of new
     * alone, and by then cleanup may have emptied old: switching there
     * would leave protocol rows behind in old. */
    mt_status st = mt_ok();
    if (c->phase < MT_PHASE_USE_NEW_HIDE_METADATA)
        st = ensure_switched_cached(m, pk);
    if (!mt_is_ok(&st))
        return st;
    for (int attempt = 0; attempt < MIG_MAX_ATTEMPTS; attempt++) {
        bool retry;
        st = attempt_on_new(m, c->phase, ops, n, rks, results, &retry);
        if (!retry)
            return st;
    }
    return mt_error(503, MT_ERR_SERVER_BUSY, "too much contention on partition '%s'", pk);
}

/* ------------------------------------------------------------------------ */
/* Entry point.                                                              */

static mt_status validate_client_batch(const mt_op *ops, size_t n)
{
    if (n == 0 || n > MT_BATCH_MAX)
        return mt_error(400, MT_ERR_INVALID_INPUT, "a batch holds 1 to %d operations, not %zu",
                        MT_BATCH_MAX, n);
    for (size_t i = 0; i < n; i++) {
        const mt_entity *e = ops[i].entity;
        mt_status st = mt_ok();
        if (!e || !e->pk || !e->rk)
            st = mt_error(400, MT_ERR_INVALID_INPUT, "operation %zu has no entity", i);
        else if ((st = mt_key_check("PartitionKey", e->pk)).http ||
                 (st = mt_key_check("RowKey", e->rk)).http)
            ; /* st says which key is wrong */
        else if (is_reserved_name(e->rk))
            st = mt_error(400, MT_ERR_INVALID_INPUT, "row keys starting with %s are reserved",
                          MT_RESERVED_PREFIX);
        else if (mt_mig_has_reserved_prop(e))
            st = mt_error(400, MT_ERR_INVALID_INPUT,
                          "property names starting with %s are reserved", MT_RESERVED_PREFIX);
        else if ((ops[i].kind == MT_OP_REPLACE || ops[i].kind == MT_OP_MERGE ||
                  ops[i].kind == MT_OP_DELETE) &&
                 !ops[i].if_match)
            st = mt_error(400, MT_ERR_INVALID_INPUT, "operation %zu needs If-Match", i);
        else if (strcmp(e->pk, ops[0].entity->pk) != 0)
            st = mt_error(400, MT_ERR_INVALID_INPUT,
                          "all operations of a batch must be in one partition");
        for (size_t j = 0; mt_is_ok(&st) && j < i; j++)
            if (strcmp(ops[j].entity->rk, e->rk) == 0)
                st = mt_error(400, "InvalidDuplicateRow",
                              "The batch request contains multiple changes with same row key. "
                              "An entity can appear only once in a batch request.");
        if (!mt_is_ok(&st)) {
            st.index = (int)i;
            return st;
        }
    }
    return mt_ok();
}

static mt_status mig_execute_batch(mt_table *t, const mt_op *ops, size_t n,
                                   mt_op_result *results)
{
    mt_migrating *given = (mt_migrating *)t, view, *m = &view;
    mt_status st = validate_client_batch(ops, n);
    if (!mt_is_ok(&st))
        return st;

    mt_config c;
    mt_subscription *sub = given->cfg->ops->subscribe(given->cfg, NULL, &c);
    if (!sub)
        return mt_oom();
    mt_mig_oriented(given, &c, &view);
    bool switched = true;
    if (c.phase == MT_PHASE_USE_OLD_HIDE_METADATA) {
        st = mt_table_batch(m->old_t, ops, n, results);
        switched = false;
    } else if (c.phase == MT_PHASE_PREFER_OLD) {
        st = phase1_batch(m, &c, ops, n, results, &switched);
    }
    if (mt_is_ok(&st) && switched)
        st = batch_on_new(m, &c, ops, n, results);
    m->cfg->ops->unsubscribe(m->cfg, sub);
    return st;
}

static void mig_destroy(mt_table *t)
{
    mt_migrating *m = (mt_migrating *)t;
    mt_mig_forget_switched(m->cache);
    free(m->cache->switched);
    m->rt->ops->mutex_free(m->rt, m->cache->mu);
    free(m->cache);
    free(m);
}

static const mt_table_ops mig_ops = {
    .execute_batch = mig_execute_batch,
    .query_atomic = mt_mig_query_atomic,
    .query_stream = mt_mig_query_stream,
    .retrieve = mt_mig_retrieve,
    .destroy = mig_destroy,
    .retrieve_shared = mt_mig_retrieve_shared,
};

mt_table *mt_migrating_new(mt_rt *rt, mt_config_service *cfg, mt_table *old_t,
                           mt_table *new_t)
{
    mt_migrating *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base.ops = &mig_ops;
    m->rt = rt;
    m->cfg = cfg;
    m->old_t = old_t;
    m->new_t = new_t;
    m->cache = calloc(1, sizeof *m->cache);
    if (m->cache)
        m->cache->mu = rt->ops->mutex_new(rt);
    if (!m->cache || !m->cache->mu) {
        free(m->cache);
        free(m);
        return NULL;
    }
    return &m->base;
}

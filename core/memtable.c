/*
 * memtable.c -- the in-memory backend table.
 *
 * The embedded default backend and the backend of the concurrency tester.
 * It must behave like the real service wherever the protocol could notice:
 * atomic batches, a fresh ETag on every write, in the service's form
 * W/"datetime'<Timestamp>'" (see etag.c), key order as Azure pages it, and
 * the service's limits (100 ops a batch, 252 properties, 1 KiB keys,
 * 64 KiB values, 1 MiB entities, 15 comparisons a filter), so that code
 * tested against it does not meet those limits for the first time in
 * production.
 *
 * Shape: rows live in one array of entity pointers sorted by mt_key_cmp,
 * searched by bisection. Inserts and deletes shift pointers, which is
 * O(rows) but cheap up to ~10^5 rows; a balanced tree would scale further
 * at the price of much more code that the tester would also have to trust.
 *
 * Timestamps: every write gets a Timestamp later than every earlier one of
 * the table: the clock of the runtime (the tester's logical clock under the
 * tester, so a seed replays exactly), or, when the clock has not moved or
 * has stepped back, the last one plus one tick (100 ns). The ETag is that
 * Timestamp, so ETags of one table never repeat. Two tables may hand out
 * the same ETag, as two Azure accounts may; the protocol already meets that
 * on real backends, so the in-memory table does not try to prevent it.
 *
 * Concurrency: one mutex, taken from the caller's runtime, guards every
 * operation, so each operation is linearizable at the moment it holds the
 * lock. No other runtime call happens under the lock except now_ticks,
 * which is read before it. Stored rows never change once in the array (a
 * write puts a new row in its place) and are frozen: an atomic read into a
 * list marked share hands out references to them (mt_entity_ref), which
 * stay valid after the row is replaced or deleted, since the last holder
 * frees it; so does a shared point read (retrieve_shared); every other
 * read gets clones.
 *
 * Batches run in three steps: validate the request (no lock), check every
 * op against the current state and build the rows it would write (under
 * the lock, allocating everything), then apply, which cannot fail. Row keys
 * in a batch are distinct, so no op can see another op's effect and
 * checking all ops against the state before the batch is exactly "as if
 * the earlier ops had applied".
 *
 * Write versions: a process-wide counter that only grows; every batch that
 * reaches the lock (a failed one too) and the table's creation take its
 * next value as the table's version, stored under the lock, read without
 * it. So no two states of any memory tables share a version, and a reader
 * that sees the same version before and after a read saw no write between
 * (what the proxy's page cache builds on).
 *
 * Streams remember a cursor key, not an array position, so they stay valid
 * while the table changes under them; the table must outlive its streams.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt.h"

#define MAX_NAME_UNITS 255
#define MAX_STRING_UNITS (32 * 1024) /* 64 KiB of UTF-16 */
#define MAX_BINARY_BYTES (64 * 1024)
#define MAX_ENTITY_BYTES (1024 * 1024)

/* Azure error codes only this file produces. */
#define ERR_PROPERTY_NAME_INVALID "PropertyNameInvalid"
#define ERR_PROPERTY_NAME_TOO_LONG "PropertyNameTooLong"

typedef struct memtable {
    mt_table base;
    mt_rt *rt;
    mt_mutex *mu;
    mt_entity **rows; /* owned, sorted by key */
    size_t n, cap;
    int64_t last_ts;  /* last Timestamp handed out */
    uint64_t version; /* atomic; see "Write versions" */
} memtable;

static uint64_t mem_clock; /* the write versions' counter; atomic */

/* A version no table had before; stored under the lock (or before the
 * table is shared), after the batch applied. The counter's order is also
 * an order of happening (acquire and release): a reader that sees a
 * version sees every write that took a smaller one as applied. */
static void mem_bump(memtable *m)
{
    uint64_t v = __atomic_add_fetch(&mem_clock, 1, __ATOMIC_ACQ_REL);
    __atomic_store_n(&m->version, v, __ATOMIC_RELEASE);
}

static const mt_table_ops memtable_ops;

static memtable *as_mem(mt_table *t)
{
    return (memtable *)t;
}

static void mem_lock(memtable *m)
{
    m->rt->ops->lock(m->rt, m->mu);
}

static void mem_unlock(memtable *m)
{
    m->rt->ops->unlock(m->rt, m->mu);
}

/* Index of the first row with key >= (pk, rk); *found when it is equal. */
static size_t lower_bound(const memtable *m, const char *pk, const char *rk, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const mt_entity *e = m->rows[mid];
        if (mt_key_cmp(e->pk, e->rk, pk, rk) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (found)
        *found = lo < m->n && mt_key_cmp(m->rows[lo]->pk, m->rows[lo]->rk, pk, rk) == 0;
    return lo;
}

static const mt_entity *find_row(const memtable *m, const char *pk, const char *rk)
{
    bool found;
    size_t i = lower_bound(m, pk, rk, &found);
    return found ? m->rows[i] : NULL;
}

static bool filter_match(const mt_filter *f, const mt_entity *e)
{
    return !f || mt_filter_eval(f, e);
}

static mt_status oom(void)
{
    return mt_oom();
}

/* ------------------------------------------------------------------------ */
/* Request validation: the limits of the real service.                       */

/* Length in UTF-16 code units. Counting lead bytes is enough: every UTF-8
 * sequence has one non-continuation byte, and a 4-byte one (lead F0..F4)
 * is a surrogate pair. Ill-formed bytes count as one unit each at most. */
static size_t utf16_len(const char *s, size_t len)
{
    size_t units = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) != 0x80)
            units += (c >= 0xF0 && c <= 0xF4) ? 2 : 1;
    }
    return units;
}

static bool is_ident_char(unsigned char c, bool first)
{
    if (c >= 0x80) /* non-ASCII letters are allowed; trust the encoder */
        return true;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_')
        return true;
    return !first && c >= '0' && c <= '9';
}

/* A property name is an identifier, and may not shadow a system property
 * (a filter on "Timestamp" must mean the system one). */
static mt_status check_prop_name(const char *name)
{
    size_t len = strlen(name);
    if (utf16_len(name, len) > MAX_NAME_UNITS)
        return mt_error(400, ERR_PROPERTY_NAME_TOO_LONG,
                        "The property name exceeds the maximum allowed "
                        "length.");
    bool ok = len > 0;
    for (size_t i = 0; ok && i < len; i++)
        ok = is_ident_char((unsigned char)name[i], i == 0);
    if (ok && (strcmp(name, "PartitionKey") == 0 || strcmp(name, "RowKey") == 0 ||
               strcmp(name, "Timestamp") == 0))
        ok = false;
    if (!ok)
        return mt_error(400, ERR_PROPERTY_NAME_INVALID, "The property name '%.64s' is invalid.",
                        name);
    return mt_ok();
}

static mt_status check_value(const char *name, const mt_value *v)
{
    bool big = false;
    if (v->type == MT_EDM_STRING)
        big = utf16_len(v->u.bytes.ptr, v->u.bytes.len) > MAX_STRING_UNITS;
    else if (v->type == MT_EDM_BINARY)
        big = v->u.bytes.len > MAX_BINARY_BYTES;
    if (big)
        return mt_error(400, MT_ERR_PROPERTY_TOO_LARGE,
                        "The value of property '%.64s' is larger than the "
                        "maximum size permitted.",
                        name);
    return mt_ok();
}

/* The service's own size formula for an entity. */
static size_t value_size(const mt_value *v)
{
    switch (v->type) {
    case MT_EDM_STRING:
        return 4 + 2 * utf16_len(v->u.bytes.ptr, v->u.bytes.len);
    case MT_EDM_BINARY:
        return 4 + v->u.bytes.len;
    case MT_EDM_BOOLEAN:
        return 1;
    case MT_EDM_INT32:
        return 4;
    case MT_EDM_GUID:
        return 16;
    default:
        return 8;
    }
}

static size_t entity_size(const mt_entity *e)
{
    size_t size = 4 + 2 * (utf16_len(e->pk, strlen(e->pk)) + utf16_len(e->rk, strlen(e->rk)));
    for (size_t i = 0; i < e->nprops; i++) {
        const mt_prop *p = &e->props[i];
        size += 8 + 2 * utf16_len(p->name, strlen(p->name)) + value_size(&p->value);
    }
    return size;
}

/* Property count and total size: checked on the request and again on a
 * merge's result, which may exceed them where neither part does. */
static mt_status check_row_limits(const mt_entity *e)
{
    if (e->nprops > MT_MAX_USER_PROPS)
        return mt_error(400, MT_ERR_TOO_MANY_PROPS,
                        "The entity has %zu properties; at most %d are "
                        "allowed.",
                        e->nprops, MT_MAX_USER_PROPS);
    if (entity_size(e) > MAX_ENTITY_BYTES)
        return mt_error(400, MT_ERR_ENTITY_TOO_LARGE,
                        "The entity is larger than the maximum allowed "
                        "size (1 MiB).");
    return mt_ok();
}

static mt_status check_props(const mt_entity *e)
{
    if (e->nprops > MT_MAX_USER_PROPS)
        return check_row_limits(e);
    for (size_t i = 0; i < e->nprops; i++) {
        mt_status st = check_prop_name(e->props[i].name);
        if (mt_is_ok(&st))
            st = check_value(e->props[i].name, &e->props[i].value);
        if (!mt_is_ok(&st))
            return st;
    }
    return check_row_limits(e);
}

static bool is_delete(mt_op_kind k)
{
    return k == MT_OP_DELETE || k == MT_OP_DELETE_IF_EXISTS;
}

static bool needs_if_match(mt_op_kind k)
{
    return k == MT_OP_REPLACE || k == MT_OP_MERGE || k == MT_OP_DELETE;
}

static mt_status check_op_shape(const mt_op *ops, size_t i)
{
    const mt_op *op = &ops[i];
    const mt_entity *e = op->entity;
    if ((unsigned)op->kind > MT_OP_DELETE_IF_EXISTS)
        return mt_error(400, MT_ERR_INVALID_INPUT, "Unknown operation.");
    if (!e || !e->pk || !e->rk)
        return mt_error(400, MT_ERR_INVALID_INPUT, "Operation has no keys.");
    if (e->oom)
        return mt_oom(); /* a property went missing on the way here */
    if (needs_if_match(op->kind) && !op->if_match)
        return mt_error(400, MT_ERR_INVALID_INPUT, "The operation requires an If-Match condition.");
    if (i > 0 && strcmp(e->pk, ops[0].entity->pk) != 0)
        return mt_error(400, MT_ERR_INVALID_INPUT,
                        "All operations of a batch must be in one "
                        "partition.");
    for (size_t j = 0; j < i; j++)
        if (strcmp(e->rk, ops[j].entity->rk) == 0)
            return mt_error(400, MT_ERR_INVALID_INPUT,
                            "The batch contains two operations on one "
                            "row.");
    return mt_ok();
}

static mt_status check_op(const mt_op *ops, size_t i)
{
    mt_status st = check_op_shape(ops, i);
    if (mt_is_ok(&st))
        st = mt_key_check("PartitionKey", ops[i].entity->pk);
    if (mt_is_ok(&st))
        st = mt_key_check("RowKey", ops[i].entity->rk);
    if (mt_is_ok(&st) && !is_delete(ops[i].kind))
        st = check_props(ops[i].entity);
    return st;
}

static mt_status validate_batch(const mt_op *ops, size_t n)
{
    if (!ops || n == 0 || n > MT_BATCH_MAX)
        return mt_error(400, MT_ERR_INVALID_INPUT, "A batch holds 1 to %d operations, not %zu.",
                        MT_BATCH_MAX, n);
    for (size_t i = 0; i < n; i++) {
        mt_status st = check_op(ops, i);
        if (!mt_is_ok(&st)) {
            st.index = (int)i;
            return st;
        }
    }
    return mt_ok();
}

/* ------------------------------------------------------------------------ */
/* Batch: check against the state, build, apply.                             */

static mt_status check_state(const mt_op *op, const mt_entity *row)
{
    switch (op->kind) {
    case MT_OP_INSERT:
        if (row)
            return mt_error(409, MT_ERR_ENTITY_EXISTS, "The specified entity already exists.");
        return mt_ok();
    case MT_OP_REPLACE:
    case MT_OP_MERGE:
    case MT_OP_DELETE:
        if (!row)
            return mt_error(404, MT_ERR_NOT_FOUND, "The specified resource does not exist.");
        if (!mt_etag_matches(op->if_match, row->etag))
            return mt_error(412, MT_ERR_CONDITION,
                            "The update condition specified in the request "
                            "was not satisfied.");
        return mt_ok();
    default:
        return mt_ok(); /* upserts and DeleteIfExists never fail on state */
    }
}

static bool is_merge(mt_op_kind k)
{
    return k == MT_OP_MERGE || k == MT_OP_INSERT_OR_MERGE;
}

/* The row an op writes: the old row plus the op's properties for a merge
 * onto an existing row, else the op's entity alone. System fields are set
 * at apply time. NULL on allocation failure. */
static mt_entity *build_row(const mt_op *op, const mt_entity *row)
{
    const mt_entity *src = op->entity;
    mt_entity *e = mt_entity_new(src->pk, src->rk);
    if (!e)
        return NULL;
    if (row && is_merge(op->kind)) {
        for (size_t i = 0; i < row->nprops; i++)
            mt_entity_set(e, row->props[i].name, &row->props[i].value);
        if (e->nprops != row->nprops)
            goto err;
    }
    size_t before = e->nprops;
    size_t added = 0;
    for (size_t i = 0; i < src->nprops; i++) {
        if (!mt_entity_get(e, src->props[i].name))
            added++;
        mt_entity_set(e, src->props[i].name, &src->props[i].value);
    }
    if (e->nprops != before + added)
        goto err;
    return e;
err:
    mt_entity_free(e);
    return NULL;
}

/* Per-batch scratch: the rows to write and their new ETags. */
typedef struct batch_plan {
    mt_entity *rows[MT_BATCH_MAX]; /* owned until applied; NULL = delete */
    size_t inserts;                /* ops that add a row to the array */
} batch_plan;

static void plan_free(batch_plan *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mt_entity_free(p->rows[i]);
}

/* Gives a built row its Timestamp and the ETag that carries it; both
 * strictly increase per table, even if the clock stalls or steps back. */
static bool stamp_row(mt_entity *e, int64_t *ts)
{
    char etag[MT_ETAG_MAX];
    mt_etag_format(*ts, etag);
    mt_entity_set_etag(e, etag);
    e->timestamp = *ts;
    (*ts)++;
    return e->etag != NULL;
}

static mt_status plan_op(memtable *m, const mt_op *op, batch_plan *p, size_t i, int64_t *ts)
{
    const mt_entity *row = find_row(m, op->entity->pk, op->entity->rk);
    mt_status st = check_state(op, row);
    p->rows[i] = NULL;
    if (!mt_is_ok(&st) || is_delete(op->kind))
        return st;
    p->rows[i] = build_row(op, row);
    if (!p->rows[i])
        return oom();
    if (!row)
        p->inserts++;
    if (row && is_merge(op->kind)) {
        st = check_row_limits(p->rows[i]);
        if (!mt_is_ok(&st))
            return st;
    }
    if (!stamp_row(p->rows[i], ts))
        return oom();
    return mt_ok();
}

static bool reserve_rows(memtable *m, size_t extra)
{
    if (m->n + extra <= m->cap)
        return true;
    size_t cap = m->cap ? m->cap : 64;
    while (cap < m->n + extra)
        cap *= 2;
    mt_entity **rows = realloc(m->rows, cap * sizeof *rows);
    if (!rows)
        return false;
    m->rows = rows;
    m->cap = cap;
    return true;
}

/* Cannot fail: every allocation happened while planning. Takes row. */
static void apply_op(memtable *m, const mt_op *op, mt_entity *row)
{
    bool found;
    size_t i = lower_bound(m, op->entity->pk, op->entity->rk, &found);
    if (row)
        mt_entity_freeze(row);
    if (found) {
        mt_entity_free(m->rows[i]);
        if (row) {
            m->rows[i] = row;
            return;
        }
        memmove(&m->rows[i], &m->rows[i + 1], (m->n - i - 1) * sizeof *m->rows);
        m->n--;
    } else if (row) {
        memmove(&m->rows[i + 1], &m->rows[i], (m->n - i) * sizeof *m->rows);
        m->rows[i] = row;
        m->n++;
    }
}

static void fill_result(const mt_op *op, const mt_entity *row, mt_op_result *r)
{
    r->http = op->kind == MT_OP_INSERT ? 201 : 204;
    snprintf(r->etag, sizeof r->etag, "%s", row ? row->etag : "");
}

/* Under the lock: plan every op, then apply all or nothing. */
static mt_status run_batch(memtable *m, const mt_op *ops, size_t n, mt_op_result *results,
                           int64_t now)
{
    batch_plan p = {.inserts = 0};
    int64_t ts = now > m->last_ts ? now : m->last_ts + 1;
    for (size_t i = 0; i < n; i++) {
        mt_status st = plan_op(m, &ops[i], &p, i, &ts);
        if (!mt_is_ok(&st)) {
            plan_free(&p, i + 1);
            st.index = (int)i;
            return st;
        }
    }
    if (!reserve_rows(m, p.inserts)) {
        plan_free(&p, n);
        return oom();
    }
    for (size_t i = 0; i < n; i++) {
        if (results)
            fill_result(&ops[i], p.rows[i], &results[i]);
        apply_op(m, &ops[i], p.rows[i]);
    }
    m->last_ts = ts - 1;
    return mt_ok();
}

static mt_status mem_execute_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *results)
{
    memtable *m = as_mem(t);
    mt_status st = validate_batch(ops, n);
    if (!mt_is_ok(&st))
        return st;
    /* Read the clock outside the lock: under the tester it may be a
     * scheduling point, and holding the lock there only adds contention. */
    int64_t now = m->rt->ops->now_ticks(m->rt);
    mem_lock(m);
    st = run_batch(m, ops, n, results, now);
    mem_bump(m);
    mem_unlock(m);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Reads.                                                                    */

static mt_status check_filter(const mt_filter *f, size_t implicit)
{
    size_t n = implicit + (f ? mt_filter_count_comparisons(f) : 0);
    if (n > MT_FILTER_MAX_COMPARISONS)
        return mt_error(400, MT_ERR_INVALID_INPUT,
                        "The filter holds %zu comparisons; at most %d are "
                        "allowed.",
                        n, MT_FILTER_MAX_COMPARISONS);
    return mt_ok();
}

/* Under the lock: what a reader gets of a stored row, a reference when it
 * only reads (out->share) or else a copy; NULL when out of memory. */
static mt_entity *row_out(const mt_entity_list *out, const mt_entity *row)
{
    return out->share ? mt_entity_ref(row) : mt_entity_clone(row);
}

static void list_truncate(mt_entity_list *l, size_t n)
{
    while (l->n > n)
        mt_entity_free(l->v[--l->n]);
}

/* Under the lock. On failure *out is as it was. */
static mt_status collect_partition(memtable *m, const char *pk, const mt_filter *f,
                                   mt_entity_list *out)
{
    size_t n0 = out->n;
    for (size_t i = lower_bound(m, pk, "", NULL); i < m->n; i++) {
        const mt_entity *e = m->rows[i];
        if (strcmp(e->pk, pk) != 0)
            break;
        if (!filter_match(f, e))
            continue;
        mt_entity *c = row_out(out, e);
        size_t before = out->n;
        if (c)
            mt_entity_list_push(out, c);
        if (out->n == before) {
            list_truncate(out, n0);
            return oom();
        }
    }
    return mt_ok();
}

/* True when f is `RowKey eq 'a' or RowKey eq 'b' ...` (the protocol's reads
 * of a batch's rows), filling the keys: those are point lookups, not a scan
 * of the partition. */
static bool point_keys(const mt_filter *f, const char **rks, size_t *n)
{
    if (f->kind == MT_F_OR)
        return point_keys(f->u.bin.l, rks, n) && point_keys(f->u.bin.r, rks, n);
    if (f->kind != MT_F_CMP || f->u.cmp.op != MT_EQ || strcmp(f->u.cmp.prop, "RowKey") != 0 ||
        f->u.cmp.lit.type != MT_EDM_STRING || *n == MT_FILTER_MAX_COMPARISONS)
        return false;
    rks[(*n)++] = f->u.cmp.lit.u.bytes.ptr;
    return true;
}

/* True when f is exactly `PartitionKey eq 'pk'`, the pin of the partition
 * read: no other test of the rows there. */
static bool is_partition_pin(const mt_filter *f, const char *pk)
{
    return f->kind == MT_F_CMP && f->u.cmp.op == MT_EQ &&
           strcmp(f->u.cmp.prop, "PartitionKey") == 0 && f->u.cmp.lit.type == MT_EDM_STRING &&
           f->u.cmp.lit.u.bytes.len == strlen(pk) &&
           memcmp(f->u.cmp.lit.u.bytes.ptr, pk, f->u.cmp.lit.u.bytes.len) == 0;
}

static int cmp_rk(const void *a, const void *b)
{
    return mt_str_cmp(*(const char *const *)a, *(const char *const *)b);
}

/* The rows with those keys, in key order, each once. */
static mt_status collect_points(memtable *m, const char *pk, const char **rks, size_t n,
                                mt_entity_list *out)
{
    qsort(rks, n, sizeof *rks, cmp_rk);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(rks[i], rks[i - 1]) == 0)
            continue;
        const mt_entity *row = find_row(m, pk, rks[i]);
        if (!row)
            continue;
        mt_entity *c = row_out(out, row);
        if (!c)
            return oom();
        mt_entity_list_push(out, c);
    }
    return mt_ok();
}

static mt_status mem_query_atomic(mt_table *t, const char *pk, const mt_filter *f,
                                  mt_entity_list *out)
{
    memtable *m = as_mem(t);
    /* The service counts the partition pin as one comparison. */
    mt_status st = check_filter(f, 1);
    if (!mt_is_ok(&st))
        return st;
    if (!pk)
        return mt_error(400, MT_ERR_INVALID_INPUT, "No partition key.");
    const char *rks[MT_FILTER_MAX_COMPARISONS];
    size_t nrk = 0;
    if (f && is_partition_pin(f, pk))
        f = NULL; /* every row the scan visits passes it */
    mem_lock(m);
    if (f && point_keys(f, rks, &nrk))
        st = collect_points(m, pk, rks, nrk, out);
    else
        st = collect_partition(m, pk, f, out);
    mem_unlock(m);
    return st;
}

/* A reference to the stored row when share (the caller only reads it),
 * else a copy. */
static mt_status mem_retrieve_as(mt_table *t, const char *pk, const char *rk, bool share,
                                 mt_entity **out)
{
    memtable *m = as_mem(t);
    mt_status st = mt_ok();
    *out = NULL;
    if (!pk || !rk)
        return mt_error(400, MT_ERR_INVALID_INPUT, "No key.");
    mem_lock(m);
    const mt_entity *row = find_row(m, pk, rk);
    if (!row)
        st = mt_error(404, MT_ERR_NOT_FOUND, "The specified resource does not exist.");
    else if (!(*out = share ? mt_entity_ref(row) : mt_entity_clone(row)))
        st = oom();
    mem_unlock(m);
    return st;
}

static mt_status mem_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    return mem_retrieve_as(t, pk, rk, false, out);
}

static mt_status mem_retrieve_shared(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    return mem_retrieve_as(t, pk, rk, true, out);
}

/* ------------------------------------------------------------------------ */
/* Streams.                                                                  */

typedef struct mem_stream {
    mt_stream base;
    memtable *m;      /* borrowed; must outlive the stream */
    mt_filter *f;     /* owned clone, NULL = all */
    mt_key cursor;    /* where the next search starts */
    bool has_cursor;  /* false: from the very beginning */
    bool past_cursor; /* the cursor row itself was already returned */
    bool ended;       /* once at the end, always at the end */
    mt_entity *ahead; /* owned; read by continuation(), next() returns it */
} mem_stream;

/* Replaces *k with copies of pk and rk; false (k unchanged) on failure. */
static bool key_copy(mt_key *k, const char *pk, const char *rk)
{
    char *p = strdup(pk), *r = strdup(rk);
    if (!p || !r) {
        free(p);
        free(r);
        return false;
    }
    mt_key_clear(k);
    k->pk = p;
    k->rk = r;
    return true;
}

/* Under the lock: the index of the first row at or after the cursor. */
static size_t stream_start(const mem_stream *s)
{
    if (!s->has_cursor)
        return 0;
    bool found;
    size_t i = lower_bound(s->m, s->cursor.pk, s->cursor.rk, &found);
    return found && s->past_cursor ? i + 1 : i;
}

/* Under the lock: a clone of the next matching row, or NULL at the end. */
static mt_status stream_find(const mem_stream *s, mt_entity **out)
{
    const memtable *m = s->m;
    for (size_t i = stream_start(s); i < m->n; i++) {
        if (filter_match(s->f, m->rows[i])) {
            *out = mt_entity_clone(m->rows[i]);
            return *out ? mt_ok() : oom();
        }
    }
    return mt_ok();
}

/* Reads the next row and moves the cursor past it. */
static mt_status stream_fetch(mem_stream *s, mt_entity **out)
{
    mt_entity *e = NULL;
    mem_lock(s->m);
    mt_status st = stream_find(s, &e);
    mem_unlock(s->m);
    *out = NULL;
    if (!mt_is_ok(&st))
        return st;
    if (!e) {
        s->ended = true;
        return st;
    }
    if (!key_copy(&s->cursor, e->pk, e->rk)) {
        mt_entity_free(e);
        return oom();
    }
    s->has_cursor = true;
    s->past_cursor = true;
    *out = e;
    return st;
}

static mt_status stream_next(mt_stream *base, mt_entity **out)
{
    mem_stream *s = (mem_stream *)base;
    *out = NULL;
    if (s->ahead) {
        *out = s->ahead;
        s->ahead = NULL;
        return mt_ok();
    }
    if (s->ended)
        return mt_ok();
    return stream_fetch(s, out);
}

/* Reads ahead one row, so that the key it reports is the key next() will
 * return even if the table changes in between. */
static mt_status stream_continuation(mt_stream *base, mt_key *out, bool *more)
{
    mem_stream *s = (mem_stream *)base;
    *more = false;
    if (!s->ahead && !s->ended) {
        mt_status st = stream_fetch(s, &s->ahead);
        if (!mt_is_ok(&st))
            return st;
    }
    if (!s->ahead)
        return mt_ok();
    if (!key_copy(out, s->ahead->pk, s->ahead->rk))
        return oom();
    *more = true;
    return mt_ok();
}

static void stream_close(mt_stream *base)
{
    mem_stream *s = (mem_stream *)base;
    if (!s)
        return;
    mt_entity_free(s->ahead);
    if (s->f)
        mt_filter_free(s->f);
    mt_key_clear(&s->cursor);
    free(s);
}

static const mt_stream_ops mem_stream_ops = {
    .next = stream_next,
    .continuation = stream_continuation,
    .close = stream_close,
};

static mt_status mem_query_stream(mt_table *t, const mt_filter *f, const mt_key *start,
                                  mt_stream **out)
{
    *out = NULL;
    mt_status st = check_filter(f, 0);
    if (!mt_is_ok(&st))
        return st;
    mem_stream *s = calloc(1, sizeof *s);
    if (!s)
        return oom();
    s->base.ops = &mem_stream_ops;
    s->m = as_mem(t);
    if (f && !(s->f = mt_filter_clone(f)))
        goto err;
    if (start && start->pk) {
        if (!key_copy(&s->cursor, start->pk, start->rk ? start->rk : ""))
            goto err;
        s->has_cursor = true;
    }
    *out = &s->base;
    return mt_ok();
err:
    stream_close(&s->base);
    return oom();
}

/* ------------------------------------------------------------------------ */
/* Life cycle.                                                               */

static bool mem_write_version(mt_table *t, uint64_t *out)
{
    *out = __atomic_load_n(&as_mem(t)->version, __ATOMIC_ACQUIRE);
    return true;
}

static void mem_destroy(mt_table *t)
{
    memtable *m = as_mem(t);
    for (size_t i = 0; i < m->n; i++)
        mt_entity_free(m->rows[i]);
    free(m->rows);
    m->rt->ops->mutex_free(m->rt, m->mu);
    free(m);
}

void mt_memtable_clear(mt_table *t)
{
    memtable *m = as_mem(t);
    m->rt->ops->lock(m->rt, m->mu);
    mt_entity **rows = m->rows;
    size_t n = m->n;
    m->rows = NULL;
    m->n = m->cap = 0;
    mem_bump(m); /* a write like any other */
    m->rt->ops->unlock(m->rt, m->mu);
    for (size_t i = 0; i < n; i++)
        mt_entity_free(rows[i]); /* rows lent to readers live on with them */
    free(rows);
}

static const mt_table_ops memtable_ops = {
    .execute_batch = mem_execute_batch,
    .query_atomic = mem_query_atomic,
    .query_stream = mem_query_stream,
    .retrieve = mem_retrieve,
    .retrieve_shared = mem_retrieve_shared,
    .destroy = mem_destroy,
    .write_version = mem_write_version,
};

mt_table *mt_memtable_new(mt_rt *rt, const char *name)
{
    if (!rt)
        return NULL;
    memtable *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base.ops = &memtable_ops;
    m->rt = rt;
    m->mu = rt->ops->mutex_new(rt);
    if (!m->mu) {
        free(m);
        return NULL;
    }
    (void)name; /* a label for callers; ETags are times, not names */
    mem_bump(m);
    return &m->base;
}

size_t mt_memtable_count(mt_table *t)
{
    if (!t || t->ops != &memtable_ops)
        return 0;
    memtable *m = as_mem(t);
    mem_lock(m);
    size_t n = m->n;
    mem_unlock(m);
    return n;
}

/*
 * az_client.c -- the backend table over a real Azure Table endpoint: the
 * operations of mt_table_ops (core/mt.h) and the table-level operations of
 * az_client.h, with the Table REST API, version 2019-02-02.
 *
 * How ops and rows travel is az_client_wire.c; how a request is sent,
 * signed and retried, and why a write is never replayed blindly, is
 * az_client_http.c. This file adds what the REST API lacks.
 *
 * DeleteIfExists has no REST equivalent. Alone, it is Delete with
 * If-Match: *, and a 404 ResourceNotFound counts as success: one request,
 * atomic at the service, so exactly linearizable. Inside a batch of several
 * ops: read the rows it names (RowKey eq ... chunks within the 15
 * comparison limit); a present row becomes Delete(If-Match: its ETag),
 * an absent row is left out of the wire batch; if the batch then fails
 * at such a Delete with 404 or 412, the row changed since the read, and
 * the whole batch is read and sent again (bounded; 503 ServerBusy when the
 * rows keep changing). A batch that ends up empty is not sent: its results
 * are all 204. The batch linearizes at its commit for present rows. For an
 * absent row there is no Azure operation that asserts absence without
 * creating the row, so the op linearizes at the read: the batch as a whole
 * is linearizable unless another writer creates that very row between our
 * read and our commit (then the row survives a batch that "deleted" it).
 * The core never sends such a batch from a client request (REST has no
 * DeleteIfExists); the migrator sends DeleteIfExists alone.
 *
 * Atomic reads. query_atomic asks for one partition and follows
 * continuations. The service guarantees atomicity per page only (at most
 * 1000 rows, at most 5 s of work, and a page may stop early, even empty),
 * so the result is atomic exactly when it comes in one page; otherwise it
 * is a sequence of atomic page reads, each later than the one before, in
 * key order. That is all Azure promises a client paging through a
 * partition, and all the proxy's atomic reads of a whole partition can
 * promise in turn: they are atomic while the partition's matching rows fit
 * one page. The protocol's writes do not rest on more: they read at most
 * 14 keys at a time and re-check what they read with the conditional batch
 * on the new table, which fails if anything changed since (and is then
 * retried); streams never promised atomicity across rows.
 *
 * Filters are sent as mt_filter_print prints them, and every returned row
 * is evaluated again with mt_filter_eval: where a server is more lenient
 * than Azure's typing rules (Azurite compares numbers across EDM types),
 * the result is still Azure's. A stream from a start key adds the key
 * range "PartitionKey gt P or (PartitionKey eq P and RowKey ge R)"; when
 * the filter and the range together exceed 15 comparisons, only the range
 * goes to the server and the filter is applied here alone.
 *
 * A stream's pages grow: the first asks for 128 rows, each next one for
 * twice as many, up to 1000 (or the client's page size). A reader that
 * wants a page of rows (the proxy serving $top=100, say) then costs the
 * service about the rows it takes, not a full page of 1000 each time,
 * and a reader of the whole table reaches full pages after three.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "az_client_internal.h"

#define AZ_DIE_ROUNDS 8
#define AZ_KEYS_PER_READ (MT_FILTER_MAX_COMPARISONS - 1)
#define AZ_STREAM_FIRST_TOP 128
#define AZ_STREAM_MAX_TOP 1000

#define AZ_ERR_TABLE_EXISTS "TableAlreadyExists"

/* ------------------------------------------------------------------------ */
/* The table.                                                                */

static const mt_table_ops az_table_ops;

static az_table *as_az(mt_table *t)
{
    return (az_table *)t;
}

/* ------------------------------------------------------------------------ */
/* Reads.                                                                    */

/* $filter (when f is given), $top (top > 0: that many rows; 0: the
 * client's page size, if set) and, for keys only, the $select of the two
 * keys (the service sends each row's ETag regardless), percent-encoded;
 * NULL on failure. */
static char *query_base(const az_table *t, const mt_filter *f, int top, bool keys)
{
    mt_buf q = {0};
    if (f) {
        char *text = mt_filter_print(f);
        char *enc = text ? az_url_encode(text) : NULL;
        if (enc) {
            mt_buf_puts(&q, "$filter=");
            mt_buf_puts(&q, enc);
        } else {
            q.oom = true;
        }
        free(text);
        free(enc);
    }
    if (!top)
        top = az_client_page_size(t->c);
    if (top)
        mt_buf_printf(&q, "%s$top=%d", q.len ? "&" : "", top);
    if (keys)
        mt_buf_printf(&q, "%s$select=PartitionKey%%2CRowKey", q.len ? "&" : "");
    return mt_buf_take(&q, NULL);
}

typedef struct page_ctx {
    const mt_filter *local;
    mt_entity_list *out;
} page_ctx;

static mt_status page_row(void *ctx, const char *s, size_t n)
{
    page_ctx *pc = ctx;
    mt_entity *e = NULL;
    mt_status st = az_wire_entity_parse(s, n, NULL, &e);
    if (!mt_is_ok(&st))
        return st;
    if (pc->local && !mt_filter_eval(pc->local, e)) {
        mt_entity_free(e);
        return mt_ok();
    }
    size_t before = pc->out->n;
    mt_entity_list_push(pc->out, e);
    return pc->out->n > before ? mt_ok() : az_oom();
}

static void list_truncate(mt_entity_list *l, size_t n)
{
    while (l->n > n)
        mt_entity_free(l->v[--l->n]);
}

/* One page of a query from continuation (npk, nrk) (NULL: the first
 * page). Rows matching local are appended to out; *next_pk and *next_rk get
 * the continuation (NULL at the end). On failure out is unchanged. */
static mt_status query_page(az_table *t, const char *base, const char *npk, const char *nrk,
                            const mt_filter *local, mt_entity_list *out, char **next_pk,
                            char **next_rk)
{
    *next_pk = *next_rk = NULL;
    mt_buf path = {0}, qs = {0};
    mt_buf_printf(&path, "/%s()", t->name);
    mt_buf_puts(&qs, base);
    const char *names[2] = {"NextPartitionKey", "NextRowKey"}, *vals[2] = {npk, nrk};
    for (int i = 0; i < 2; i++) {
        char *enc = vals[i] ? az_url_encode(vals[i]) : NULL;
        if (vals[i] && !enc)
            qs.oom = true;
        if (enc)
            mt_buf_printf(&qs, "%s%s=", qs.len ? "&" : "", names[i]), mt_buf_puts(&qs, enc);
        free(enc);
    }
    char *p = mt_buf_take(&path, NULL), *query = mt_buf_take(&qs, NULL);
    mt_status st = az_oom();
    size_t n0 = out->n;
    if (p && query) {
        az_req q = {.method = "GET", .path = p, .query = query, .replay = AZ_REPLAY_ANY};
        az_resp r = {0};
        st = az_call(t->c, &q, &r);
        if (mt_is_ok(&st) && r.status != 200)
            st = az_resp_error(&r);
        page_ctx pc = {local, out};
        if (mt_is_ok(&st))
            st = az_wire_feed_each(r.body.p ? r.body.p : "", r.body.len, page_row, &pc);
        if (mt_is_ok(&st) && r.next_pk) {
            *next_pk = r.next_pk, r.next_pk = NULL;
            *next_rk = r.next_rk, r.next_rk = NULL;
        }
        az_resp_clear(&r);
    }
    if (!mt_is_ok(&st))
        list_truncate(out, n0);
    free(p);
    free(query);
    return st;
}

static mt_status check_comparisons(const mt_filter *f, size_t implicit)
{
    size_t n = implicit + (f ? mt_filter_count_comparisons(f) : 0);
    if (n > MT_FILTER_MAX_COMPARISONS)
        return mt_error(400, MT_ERR_INVALID_INPUT,
                        "The filter holds %zu comparisons; at most %d are allowed.", n,
                        MT_FILTER_MAX_COMPARISONS);
    return mt_ok();
}

/* Every row of partition pk matching f, page after page. */
static mt_status query_partition(az_table *t, const char *pk, const mt_filter *f,
                                 mt_entity_list *out)
{
    mt_value v = mt_v_str(pk);
    mt_filter *pin = mt_filter_cmp("PartitionKey", MT_EQ, &v);
    mt_filter *sent = pin && f ? mt_filter_and(pin, mt_filter_clone(f)) : pin;
    char *base = sent ? query_base(t, sent, 0, false) : NULL;
    mt_filter_free(sent);
    if (!base)
        return az_oom();
    size_t n0 = out->n;
    char *npk = NULL, *nrk = NULL;
    mt_status st;
    do {
        char *next_pk, *next_rk;
        st = query_page(t, base, npk, nrk, f, out, &next_pk, &next_rk);
        free(npk);
        free(nrk);
        npk = next_pk, nrk = next_rk;
    } while (mt_is_ok(&st) && npk);
    free(npk);
    free(nrk);
    free(base);
    if (!mt_is_ok(&st))
        list_truncate(out, n0);
    return st;
}

static mt_status az_query_atomic(mt_table *tt, const char *pk, const mt_filter *f,
                                 mt_entity_list *out)
{
    if (!pk)
        return mt_error(400, MT_ERR_INVALID_INPUT, "No partition key.");
    mt_status st = check_comparisons(f, 1); /* the partition pin counts */
    return mt_is_ok(&st) ? query_partition(as_az(tt), pk, f, out) : st;
}

static mt_status az_retrieve(mt_table *tt, const char *pk, const char *rk, mt_entity **out)
{
    az_table *t = as_az(tt);
    *out = NULL;
    if (!pk || !rk)
        return mt_error(400, MT_ERR_INVALID_INPUT, "No key.");
    char *path = az_wire_entity_path(t, pk, rk);
    if (!path)
        return az_oom();
    az_req q = {.method = "GET", .path = path, .replay = AZ_REPLAY_ANY};
    az_resp r = {0};
    mt_status st = az_call(t->c, &q, &r);
    if (mt_is_ok(&st) && r.status != 200)
        st = az_resp_error(&r);
    if (mt_is_ok(&st))
        st = az_wire_entity_parse(r.body.p ? r.body.p : "", r.body.len, r.etag, out);
    az_resp_clear(&r);
    free(path);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Streams: a page at a time, in the service's key order.                    */

/* The largest page a stream asks for: the client's page size, else the
 * service's 1000. */
static int stream_top_max(const az_table *t)
{
    return az_client_page_size(t->c) ? az_client_page_size(t->c) : AZ_STREAM_MAX_TOP;
}

typedef struct az_stream {
    mt_stream base;
    az_table *t;     /* borrowed; must outlive the stream */
    mt_filter *sent; /* what the service is asked for */
    int top;         /* rows asked for by the next page */
    mt_filter *f;    /* the caller's filter, applied to every row */
    bool keys;       /* keys (and ETags) only */
    mt_entity_list page;
    size_t pos;      /* next row of page to hand out */
    char *npk, *nrk; /* continuation of the next page */
    bool started, ended;
} az_stream;

/* Reads pages until one has a row left or the query ends; an empty page
 * with a continuation is normal. */
static mt_status stream_fill(az_stream *s)
{
    while (s->pos == s->page.n && !s->ended) {
        mt_entity_list_clear(&s->page);
        s->pos = 0;
        char *npk, *nrk;
        char *q = query_base(s->t, s->sent, s->top, s->keys);
        mt_status st =
            q ? query_page(s->t, q, s->npk, s->nrk, s->f, &s->page, &npk, &nrk) : az_oom();
        free(q);
        if (!mt_is_ok(&st))
            return st; /* the same page is asked for again next time */
        free(s->npk);
        free(s->nrk);
        s->npk = npk, s->nrk = nrk;
        s->started = true;
        s->ended = npk == NULL;
        s->top = s->top * 2 < stream_top_max(s->t) ? s->top * 2 : stream_top_max(s->t);
    }
    return mt_ok();
}

static mt_status stream_next(mt_stream *base, mt_entity **out)
{
    az_stream *s = (az_stream *)base;
    *out = NULL;
    mt_status st = stream_fill(s);
    if (mt_is_ok(&st) && s->pos < s->page.n) {
        *out = s->page.v[s->pos];
        s->page.v[s->pos++] = NULL;
    }
    return st;
}

static mt_status stream_continuation(mt_stream *base, mt_key *out, bool *more)
{
    az_stream *s = (az_stream *)base;
    *more = false;
    mt_status st = stream_fill(s);
    if (mt_is_ok(&st) && s->pos < s->page.n) {
        const mt_entity *e = s->page.v[s->pos];
        mt_key_set(out, e->pk, e->rk);
        *more = true;
    }
    return st;
}

static void stream_close(mt_stream *base)
{
    az_stream *s = (az_stream *)base;
    if (!s)
        return;
    mt_entity_list_clear(&s->page);
    mt_filter_free(s->f);
    mt_filter_free(s->sent);
    free(s->npk);
    free(s->nrk);
    free(s);
}

static const mt_stream_ops az_stream_ops = {
    .next = stream_next,
    .continuation = stream_continuation,
    .close = stream_close,
};

/* Keys >= start: "PartitionKey gt P or (PartitionKey eq P and RowKey ge
 * R)", or "PartitionKey ge P" when R is empty. */
static mt_filter *range_from(const mt_key *start)
{
    mt_value p = mt_v_str(start->pk), r = mt_v_str(start->rk ? start->rk : "");
    if (!start->rk || !*start->rk)
        return mt_filter_cmp("PartitionKey", MT_GE, &p);
    return mt_filter_or(mt_filter_cmp("PartitionKey", MT_GT, &p),
                        mt_filter_and(mt_filter_cmp("PartitionKey", MT_EQ, &p),
                                      mt_filter_cmp("RowKey", MT_GE, &r)));
}

static mt_status az_query_stream(mt_table *tt, const mt_filter *f, const mt_key *start,
                                 mt_stream **out)
{
    az_table *t = as_az(tt);
    *out = NULL;
    mt_status st = check_comparisons(f, 0);
    if (!mt_is_ok(&st))
        return st;
    az_stream *s = calloc(1, sizeof *s);
    if (!s)
        return az_oom();
    s->base.ops = &az_stream_ops;
    s->t = t;
    if (f && !(s->f = mt_filter_clone(f)))
        goto nomem;
    mt_filter *range = start && start->pk ? range_from(start) : NULL;
    if (start && start->pk && !range)
        goto nomem;
    mt_filter *sent = f ? mt_filter_clone(f) : NULL;
    if (range) {
        size_t total =
            mt_filter_count_comparisons(range) + (f ? mt_filter_count_comparisons(f) : 0);
        if (sent && total > MT_FILTER_MAX_COMPARISONS) {
            mt_filter_free(sent); /* the filter is applied here alone */
            sent = NULL;
        }
        sent = sent ? mt_filter_and(range, sent) : range;
        if (!sent)
            goto nomem;
    }
    s->sent = sent;
    s->top = AZ_STREAM_FIRST_TOP < stream_top_max(t) ? AZ_STREAM_FIRST_TOP : stream_top_max(t);
    *out = &s->base;
    return mt_ok();
nomem:
    stream_close(&s->base);
    return az_oom();
}

/* Every row, keys and ETag only, in pages of the largest size from the
 * first: a walk that needs no more (the cleanup of old) costs the service
 * and the wire less, and the doubling that makes a stream's first row come
 * soon would only add page queries. */
static mt_status az_query_keys(mt_table *tt, const mt_key *start, mt_stream **out)
{
    mt_status st = az_query_stream(tt, NULL, start, out);
    if (mt_is_ok(&st)) {
        az_stream *s = (az_stream *)*out;
        s->keys = true;
        s->top = stream_top_max(s->t);
    }
    return st;
}

/* ------------------------------------------------------------------------ */
/* Batches, and DeleteIfExists inside them.                                  */

static mt_status check_batch(const mt_op *ops, size_t n)
{
    if (!ops || n == 0 || n > MT_BATCH_MAX)
        return mt_error(400, MT_ERR_INVALID_INPUT, "A batch holds 1 to %d operations, not %zu.",
                        MT_BATCH_MAX, n);
    for (size_t i = 0; i < n; i++) {
        const mt_op *op = &ops[i];
        const mt_entity *e = op->entity;
        mt_status st = mt_ok();
        bool needs_match =
            op->kind == MT_OP_REPLACE || op->kind == MT_OP_MERGE || op->kind == MT_OP_DELETE;
        if ((unsigned)op->kind > MT_OP_DELETE_IF_EXISTS)
            st = mt_error(400, MT_ERR_INVALID_INPUT, "Unknown operation.");
        else if (!e || !e->pk || !e->rk)
            st = mt_error(400, MT_ERR_INVALID_INPUT, "Operation has no keys.");
        else if (needs_match && !op->if_match)
            st = mt_error(400, MT_ERR_INVALID_INPUT,
                          "The operation requires an If-Match condition.");
        else if (op->if_match && strpbrk(op->if_match, "\r\n"))
            st = mt_error(400, MT_ERR_INVALID_INPUT, "The If-Match value is malformed.");
        else if (i > 0 && strcmp(e->pk, ops[0].entity->pk) != 0)
            st = mt_error(400, MT_ERR_INVALID_INPUT,
                          "All operations of a batch must be in one partition.");
        for (size_t j = 0; mt_is_ok(&st) && j < i; j++)
            if (strcmp(e->rk, ops[j].entity->rk) == 0)
                st = mt_error(400, MT_ERR_INVALID_INPUT,
                              "The batch contains two operations on one row.");
        if (!mt_is_ok(&st)) {
            st.index = (int)i;
            return st;
        }
    }
    return mt_ok();
}

/* The current rows of the batch's DeleteIfExists ops, by chunks of keys. */
static mt_status read_die_rows(az_table *t, const mt_op *ops, size_t n, mt_entity_list *rows)
{
    size_t i = 0;
    while (i < n) {
        mt_filter *f = NULL;
        for (size_t k = 0; i < n && k < AZ_KEYS_PER_READ; i++) {
            if (ops[i].kind != MT_OP_DELETE_IF_EXISTS)
                continue;
            mt_value v = mt_v_str(ops[i].entity->rk);
            mt_filter *c = mt_filter_cmp("RowKey", MT_EQ, &v);
            f = f ? mt_filter_or(f, c) : c;
            k++;
        }
        if (!f)
            break;
        mt_status st = query_partition(t, ops[0].entity->pk, f, rows);
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

/* One round: read, build the wire batch, send. *again when a row named by
 * a DeleteIfExists changed in between. */
static mt_status die_round(az_table *t, const mt_op *ops, size_t n, mt_op_result *res, bool *again)
{
    mt_entity_list rows = {0};
    mt_op *wire = calloc(n, sizeof *wire);
    mt_op_result *wres = calloc(n, sizeof *wres);
    size_t *from = calloc(n, sizeof *from), m = 0;
    *again = false;
    mt_status st = wire && wres && from ? read_die_rows(t, ops, n, &rows) : az_oom();
    for (size_t i = 0; mt_is_ok(&st) && i < n; i++) {
        if (ops[i].kind != MT_OP_DELETE_IF_EXISTS) {
            wire[m] = ops[i];
        } else {
            const mt_entity *row = find_rk(&rows, ops[i].entity->rk);
            if (!row)
                continue; /* absent at the read: nothing to send */
            wire[m] = (mt_op){.kind = MT_OP_DELETE, .entity = ops[i].entity, .if_match = row->etag};
            if (!row->etag)
                st = az_bad_reply("a row without an ETag");
        }
        from[m++] = i;
    }
    if (mt_is_ok(&st) && m > 0)
        st = az_wire_send(t, wire, m, wres);
    if (!mt_is_ok(&st) && st.index >= 0 && (size_t)st.index < m) {
        size_t i = from[st.index];
        if (ops[i].kind == MT_OP_DELETE_IF_EXISTS && (st.http == 404 || st.http == 412) &&
            strcmp(st.code, AZ_ERR_TABLE_NOT_FOUND) != 0)
            *again = true;
        st.index = (int)i;
    }
    if (mt_is_ok(&st)) {
        for (size_t i = 0; i < n; i++)
            az_wire_fill_result(&ops[i], NULL, &res[i]);
        for (size_t j = 0; j < m; j++)
            az_wire_fill_result(&ops[from[j]], wres[j].etag, &res[from[j]]);
    }
    mt_entity_list_clear(&rows);
    free(wire);
    free(wres);
    free(from);
    return st;
}

static mt_status az_execute_batch(mt_table *tt, const mt_op *ops, size_t n, mt_op_result *results)
{
    az_table *t = as_az(tt);
    mt_status st = check_batch(ops, n);
    if (!mt_is_ok(&st))
        return st;
    bool die = false;
    for (size_t i = 0; i < n; i++)
        die = die || ops[i].kind == MT_OP_DELETE_IF_EXISTS;
    if (n == 1 || !die)
        return az_wire_send(t, ops, n, results);
    for (int round = 0; round < AZ_DIE_ROUNDS; round++) {
        bool again;
        st = die_round(t, ops, n, results, &again);
        if (!again)
            return st;
    }
    return mt_error(503, MT_ERR_SERVER_BUSY,
                    "Rows named by DeleteIfExists kept changing; the batch was not applied.");
}

/* ------------------------------------------------------------------------ */
/* Life cycle.                                                               */

static void az_destroy(mt_table *tt)
{
    az_table *t = as_az(tt);
    if (t->owns_client)
        az_client_free(t->c);
    free(t);
}

static const mt_table_ops az_table_ops = {
    .execute_batch = az_execute_batch,
    .query_atomic = az_query_atomic,
    .query_stream = az_query_stream,
    .retrieve = az_retrieve,
    .destroy = az_destroy,
    .query_keys = az_query_keys,
};

static mt_status bad_table_name(void)
{
    return mt_error(400, "InvalidResourceName",
                    "The table name must be a letter then letters and digits, 3 to 63 in all.");
}

mt_table *az_client_table(az_client *c, const char *table, mt_status *st)
{
    *st = mt_ok();
    if (!c) {
        *st = mt_error(400, MT_ERR_INVALID_INPUT, "No client.");
        return NULL;
    }
    if (!az_table_name_valid(table)) {
        *st = bad_table_name();
        return NULL;
    }
    az_table *t = calloc(1, sizeof *t);
    if (!t) {
        *st = az_oom();
        return NULL;
    }
    t->base.ops = &az_table_ops;
    t->c = c;
    snprintf(t->name, sizeof t->name, "%s", table);
    return &t->base;
}

mt_table *az_table_open(const az_connstr *cs, const char *table, const az_client_opts *opts,
                        mt_status *st)
{
    if (!table && cs)
        table = cs->table;
    if (!az_table_name_valid(table)) {
        *st = table ? bad_table_name()
                    : mt_error(400, MT_ERR_INVALID_INPUT,
                               "No table: give one, or TableName in the connection string.");
        return NULL;
    }
    az_client *c = az_client_new(cs, opts, st);
    if (!c)
        return NULL;
    mt_table *t = az_client_table(c, table, st);
    if (!t) {
        az_client_free(c);
        return NULL;
    }
    as_az(t)->owns_client = true;
    return t;
}

az_client *az_table_client(mt_table *t)
{
    return t && t->ops == &az_table_ops ? as_az(t)->c : NULL;
}

/* ------------------------------------------------------------------------ */
/* Table-level operations.                                                   */

mt_status az_client_table_create(az_client *c, const char *table, bool *created)
{
    if (created)
        *created = false;
    if (!az_table_name_valid(table))
        return bad_table_name();
    char body[128];
    snprintf(body, sizeof body, "{\"TableName\":\"%s\"}", table);
    /* Replaying is safe here: "exists afterwards" is the whole promise,
     * and a 409 after a replay means just that. */
    az_req q = {.method = "POST",
                .path = "/Tables",
                .content_type = AZ_JSON,
                .body = body,
                .len = strlen(body),
                .no_content = true,
                .replay = AZ_REPLAY_ANY};
    az_resp r = {0};
    mt_status st = az_call(c, &q, &r);
    if (mt_is_ok(&st) && r.status >= 200 && r.status < 300) {
        if (created)
            *created = true;
    } else if (mt_is_ok(&st)) {
        st = az_resp_error(&r);
        if (st.http == 409 && strcmp(st.code, AZ_ERR_TABLE_EXISTS) == 0) {
            st = mt_ok();
            /* After an attempt whose outcome is unknown (a timeout, a
             * dropped answer, a kept-alive connection curl had to send
             * again), that attempt is the likely creator: reporting
             * "existed" would turn a fresh table into a 409 for the
             * client. Only a 409 to an attempt with no such doubt means
             * someone else made it. */
            if (created && r.ambiguous)
                *created = true;
        }
    }
    az_resp_clear(&r);
    return st;
}

mt_status az_client_table_delete(az_client *c, const char *table)
{
    if (!az_table_name_valid(table))
        return bad_table_name();
    char path[96];
    snprintf(path, sizeof path, "/Tables('%s')", table);
    az_req q = {.method = "DELETE", .path = path, .replay = AZ_REPLAY_NONE};
    az_resp r = {0};
    mt_status st = az_call(c, &q, &r);
    if (mt_is_ok(&st) && (r.status < 200 || r.status >= 300))
        st = az_resp_error(&r);
    az_resp_clear(&r);
    return st;
}

typedef struct names_ctx {
    char **v;
    size_t n, cap;
} names_ctx;

static mt_status table_name_of(void *ctx, const char *s, size_t n)
{
    names_ctx *nc = ctx;
    cJSON *o = cJSON_ParseWithLength(s, n);
    const cJSON *tn = cJSON_GetObjectItemCaseSensitive(o, "TableName");
    mt_status st = cJSON_IsString(tn) ? mt_ok() : az_bad_reply("a table without TableName");
    if (mt_is_ok(&st) && nc->n == nc->cap) {
        size_t cap = nc->cap ? nc->cap * 2 : 16;
        char **v = realloc(nc->v, cap * sizeof *v);
        if (v)
            nc->v = v, nc->cap = cap;
        else
            st = az_oom();
    }
    if (mt_is_ok(&st) && !(nc->v[nc->n] = strdup(tn->valuestring)))
        st = az_oom();
    if (mt_is_ok(&st))
        nc->n++;
    cJSON_Delete(o);
    return st;
}

mt_status az_client_tables_list(az_client *c, char ***names, size_t *n)
{
    names_ctx nc = {0};
    char *next = NULL;
    mt_status st = mt_ok();
    *names = NULL;
    *n = 0;
    do {
        char *enc = next ? az_url_encode(next) : NULL;
        mt_buf qs = {0};
        if (enc)
            mt_buf_puts(&qs, "NextTableName="), mt_buf_puts(&qs, enc);
        char *query = mt_buf_take(&qs, NULL);
        free(enc);
        free(next);
        next = NULL;
        if (!query) {
            st = az_oom();
            break;
        }
        az_req q = {.method = "GET", .path = "/Tables", .query = query, .replay = AZ_REPLAY_ANY};
        az_resp r = {0};
        st = az_call(c, &q, &r);
        if (mt_is_ok(&st) && r.status != 200)
            st = az_resp_error(&r);
        if (mt_is_ok(&st))
            st = az_wire_feed_each(r.body.p ? r.body.p : "", r.body.len, table_name_of, &nc);
        if (mt_is_ok(&st))
            next = r.next_table, r.next_table = NULL;
        az_resp_clear(&r);
        free(query);
    } while (mt_is_ok(&st) && next);
    free(next);
    if (!mt_is_ok(&st)) {
        az_client_tables_free(nc.v, nc.n);
        return st;
    }
    *names = nc.v;
    *n = nc.n;
    return st;
}

void az_client_tables_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

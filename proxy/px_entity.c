/*
 * px_entity.c -- entity operations: Query Entities, Get Entity, Insert,
 * Update (PUT), Merge (MERGE, POST + X-HTTP-Method, PATCH), Delete.
 *
 * Each request is one core call on the table's MigratingTable, so it behaves
 * the same in every phase. Writes are one-op batches (the batch path in
 * px_batch.c builds the same px_write for each of its parts).
 *
 * Query paging: the first page of a query whose filter pins one partition
 * is served from an atomic read of that partition (a result that fits one
 * page is a snapshot, as the service's is); any other page opens a stream
 * from the client's continuation key, returns up to $top rows, and hands
 * back the key the stream would return next as the continuation (docs/protocol.md,
 * section 5.3). So every later page of a partition costs the rows it returns,
 * not the partition again.
 *
 * A SAS with a key range narrows the query itself: the range joins the
 * client's filter (when both fit the 15 comparisons a backend takes;
 * otherwise the partition-key bounds alone, or nothing), the stream starts
 * no earlier than the range, and reading stops at the first row past it.
 * The backends read the range, not the table, and no continuation ever
 * points outside it.
 *
 * $top=0 runs the query (so a bad filter is still refused) and returns no
 * rows and no continuation: the service answers it with an empty result,
 * and a token there would only send a client that follows tokens round in
 * a loop.
 */
#include "px.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PX_PAGE_MAX 1000

static void entity_location(const px_req *q, const char *table, const mt_entity *e, char *out,
                            size_t cap)
{
    char *pk = az_url_encode(e->pk), *rk = az_url_encode(e->rk);
    /* Keys are percent-encoded whole (a quote becomes %27), which both
     * SDKs and the service read back. */
    snprintf(out, cap, "%s/%s(PartitionKey='%s',RowKey='%s')", q->base_url, table,
             pk ? pk : "", rk ? rk : "");
    free(pk);
    free(rk);
}

/* ------------------------------------------------------------------------ */
/* Writes.                                                                   */

void px_write_clear(px_write *w)
{
    mt_entity_free(w->entity);
    memset(w, 0, sizeof *w);
}

static bool method_is(const char *m, const char *x, const char *want)
{
    if (x && strcmp(m, "POST") == 0)
        return strcasecmp(x, want) == 0;
    return strcmp(m, want) == 0;
}

mt_status px_write_prepare(const char *method, const char *x_http_method, const char *if_match,
                           const char *prefer, const char *content_type, const az_resource *res,
                           const char *body, size_t len, px_write *w)
{
    memset(w, 0, sizeof *w);
    if (x_http_method && strcmp(method, "POST") != 0)
        return mt_error(400, "XMethodNotUsingPost",
                        "The request uses X-HTTP-Method with an HTTP verb other than POST.");
    bool merge = method_is(method, x_http_method, "MERGE") ||
                 method_is(method, x_http_method, "PATCH");
    bool put = method_is(method, x_http_method, "PUT");
    bool del = method_is(method, x_http_method, "DELETE");
    bool post = strcmp(method, "POST") == 0 && !merge && !put && !del;
    /* The service refuses an If-Match that is neither "*" nor a weak ETag
     * before it looks at the row (core/etag.c has the evidence), so this
     * is checked here, in every phase and before anything is written. */
    if (if_match && (put || merge || del) && !mt_etag_valid(if_match))
        return mt_error(400, MT_ERR_INVALID_INPUT,
                        "The etag value '%.64s' specified in one of the request headers is not "
                        "valid. Please make sure only one etag value is specified and is valid.",
                        if_match);
    /* A well-formed weak ETag longer than any ETag a table hands out can
     * match no row: W/"" stands for it, so the write fails as the service's
     * does (412, or 404 without the row). */
    if (if_match && strlen(if_match) >= MT_ETAG_MAX)
        if_match = "W/\"\"";
    if (if_match)
        snprintf(w->if_match, sizeof w->if_match, "%s", if_match);

    /* Only a body that is read needs a type the service reads. */
    az_format fmt = AZ_FMT_JSON;
    mt_status st = mt_ok();
    if ((post && res->kind == AZ_RES_ENTITIES) || (res->kind == AZ_RES_ENTITY && (put || merge)))
        st = az_body_format(content_type, &fmt);
    if (!mt_is_ok(&st))
        return st;
    if (post && res->kind == AZ_RES_ENTITIES) {
        unsigned keys = 0;
        st = az_entity_read_keys(fmt, body, len, &w->entity, &keys);
        /* An Insert names its row only in the body: both keys must be
         * there (empty strings are keys too). */
        if (mt_is_ok(&st) && keys != (AZ_KEY_PK | AZ_KEY_RK)) {
            px_write_clear(w);
            return mt_error(400, "PropertiesNeedValue",
                            "The values are not specified for all properties in the entity.");
        }
        w->op.kind = MT_OP_INSERT;
        w->is_insert = true;
        w->return_content = !(prefer && strstr(prefer, "return-no-content"));
    } else if (res->kind == AZ_RES_ENTITY && (put || merge)) {
        st = az_entity_read(fmt, body, len, &w->entity);
        if (put)
            w->op.kind = if_match ? MT_OP_REPLACE : MT_OP_INSERT_OR_REPLACE;
        else
            w->op.kind = if_match ? MT_OP_MERGE : MT_OP_INSERT_OR_MERGE;
    } else if (res->kind == AZ_RES_ENTITY && del) {
        if (!if_match)
            return mt_error(400, "MissingRequiredHeader",
                            "An HTTP header that's mandatory for this request is not specified.");
        w->entity = mt_entity_new(res->pk, res->rk);
        if (!w->entity)
            return mt_oom();
        w->op.kind = MT_OP_DELETE;
    } else {
        return mt_error(405, "UnsupportedHttpVerb",
                        "The resource doesn't support the specified HTTP verb.");
    }
    if (!mt_is_ok(&st))
        return st;
    if (res->kind == AZ_RES_ENTITY) {
        /* The URL names the row; keys in the body must agree if present. */
        if ((w->entity->pk[0] && strcmp(w->entity->pk, res->pk) != 0) ||
            (w->entity->rk[0] && strcmp(w->entity->rk, res->rk) != 0)) {
            px_write_clear(w);
            return mt_error(400, "InvalidInput",
                            "The keys in the request body do not match the request URI.");
        }
        char *pk = strdup(res->pk), *rk = strdup(res->rk);
        if (!pk || !rk) {
            free(pk);
            free(rk);
            px_write_clear(w);
            return mt_oom();
        }
        free(w->entity->pk);
        free(w->entity->rk);
        w->entity->pk = pk;
        w->entity->rk = rk;
    }
    w->op.entity = w->entity;
    w->op.if_match = w->if_match[0] ? w->if_match : NULL;
    return st;
}

unsigned px_write_perm(const px_write *w)
{
    switch (w->op.kind) {
    case MT_OP_INSERT:
        return AZ_PERM_ADD;
    case MT_OP_INSERT_OR_REPLACE:
    case MT_OP_INSERT_OR_MERGE:
        return AZ_PERM_ADD | AZ_PERM_UPDATE;
    case MT_OP_DELETE:
    case MT_OP_DELETE_IF_EXISTS:
        return AZ_PERM_DELETE;
    default:
        return AZ_PERM_UPDATE;
    }
}

void px_write_respond(const px_req *q, const px_write *w, const mt_op_result *res, px_resp *r)
{
    if (res->etag[0])
        px_resp_header(r, "ETag", res->etag);
    if (!w->is_insert) {
        r->status = 204;
        return;
    }
    char loc[2048];
    entity_location(q, q->res.table, w->entity, loc, sizeof loc);
    px_resp_header(r, "Location", loc);
    px_resp_header(r, "DataServiceId", loc);
    if (!w->return_content) {
        r->status = 204;
        px_resp_header(r, "Preference-Applied", "return-no-content");
        return;
    }
    /* The stored row is what the client sent, with its new ETag and the
     * Timestamp that ETag carries (the service's ETags are the Timestamp),
     * or the time of the write for an ETag of another form. */
    mt_entity *e = mt_entity_clone(w->entity);
    mt_entity_set_etag(e, res->etag);
    if (!mt_etag_time(res->etag, &e->timestamp))
        e->timestamp = mt_rt_pthread()->ops->now_ticks(mt_rt_pthread());
    az_payload_ctx c = {.md = q->md, .base_url = q->base_url,
                        .account = q->app->settings.account, .table = q->res.table};
    size_t len = 0;
    char *body = az_entity_write(q->fmt, &c, e, &len);
    mt_entity_free(e);
    px_resp_payload(q, r, 201, body, len);
    const char *prefer = px_req_header(q, "Prefer");
    if (prefer && strstr(prefer, "return-content"))
        px_resp_header(r, "Preference-Applied", "return-content");
}

static void do_write(px_req *q, px_table *t, px_resp *r)
{
    px_write w;
    mt_status st = px_write_prepare(q->method, px_req_header(q, "X-HTTP-Method"),
                                    px_req_header(q, "If-Match"), px_req_header(q, "Prefer"),
                                    px_req_header(q, "Content-Type"), &q->res, q->body, q->len, &w);
    if (mt_is_ok(&st))
        st = az_grant_check(&q->grant, px_write_perm(&w), false, q->res.table, w.entity->pk,
                            w.entity->rk);
    mt_op_result res = {0};
    if (mt_is_ok(&st))
        st = mt_table_batch(px_table_view(t), &w.op, 1, &res);
    if (mt_is_ok(&st))
        px_write_respond(q, &w, &res, r);
    else
        px_resp_error(q, r, &st);
    px_write_clear(&w);
}

/* ------------------------------------------------------------------------ */
/* Reads.                                                                    */

static void get_entity(px_req *q, px_table *t, px_resp *r)
{
    mt_entity *e = NULL;
    az_query_opts o = {0};
    mt_status st = az_grant_check(&q->grant, AZ_PERM_READ, false, q->res.table, q->res.pk,
                                  q->res.rk);
    if (mt_is_ok(&st))
        st = az_query_opts_parse(q->query, &o);
    /* The row is only written out: an embedded table may lend its own,
     * whose kept JSON text then makes most of the body. */
    mt_table *v = px_table_view(t);
    if (mt_is_ok(&st))
        st = mt_table_retrieve(v, q->res.pk, q->res.rk, true, &e);
    if (mt_is_ok(&st)) {
        az_payload_ctx c = {.md = q->md, .base_url = q->base_url,
                            .account = q->app->settings.account, .table = q->res.table,
                            .select = o.select, .nselect = o.nselect};
        size_t len = 0;
        char *body = az_entity_write(q->fmt, &c, e, &len);
        px_resp_payload(q, r, 200, body, len);
        if (e->etag)
            px_resp_header(r, "ETag", e->etag);
    } else {
        px_resp_error(q, r, &st);
    }
    mt_entity_free(e);
    az_query_opts_clear(&o);
}

typedef struct page {
    mt_entity_list rows;
    mt_key next; /* pk NULL: no more */
} page;

/* Whether the grant confines rows to a key range: a table SAS with spk,
 * srk, epk or erk. Without one, the query's own check covers every row. */
static bool grant_ranged(const az_grant *g)
{
    return !g->shared_key && g->table[0] && (g->spk[0] || g->srk[0] || g->epk[0] || g->erk[0]);
}

static bool allowed_row(const px_req *q, const mt_entity *e)
{
    if (!grant_ranged(&q->grant))
        return true; /* query_entities checked the table and the permission */
    mt_status st = az_grant_check(&q->grant, AZ_PERM_READ, false, q->res.table, e->pk, e->rk);
    return mt_is_ok(&st);
}

/* The first page of one partition: an atomic read. The rows are only
 * written out, so an embedded table may lend its own (share), and those
 * the page keeps move into it. */
static mt_status page_partition(px_req *q, mt_table *v, const char *pk, const mt_filter *f,
                                const mt_key *from, int top, page *p)
{
    mt_entity_list all = {.share = true};
    mt_status st = v->ops->query_atomic(v, pk, f, &all);
    for (size_t i = 0; mt_is_ok(&st) && i < all.n; i++) {
        mt_entity *e = all.v[i];
        if (from->pk && mt_key_cmp(e->pk, e->rk, from->pk, from->rk) < 0)
            continue;
        if (!allowed_row(q, e))
            continue;
        if ((int)p->rows.n == top) {
            if (top > 0) /* $top=0 asks for nothing: no token to follow */
                mt_key_set(&p->next, e->pk, e->rk);
            break;
        }
        mt_entity_list_push(&p->rows, e);
        all.v[i] = NULL; /* moved */
    }
    mt_entity_list_clear(&all);
    return st;
}

/* From the key from on, which is no earlier than the grant's key range:
 * the first row the grant does not allow is past the range's end. */
static mt_status page_stream(px_req *q, mt_table *v, const mt_filter *f, const mt_key *from,
                             int top, page *p)
{
    mt_stream *s = NULL;
    bool past = false;
    mt_status st = v->ops->query_stream(v, f, from->pk ? from : NULL, &s);
    while (mt_is_ok(&st) && (int)p->rows.n < top) {
        mt_entity *e = NULL;
        st = s->ops->next(s, &e);
        if (!mt_is_ok(&st) || !e)
            break;
        past = !allowed_row(q, e);
        if (past) {
            mt_entity_free(e);
            break;
        }
        mt_entity_list_push(&p->rows, e);
    }
    bool more = false;
    if (mt_is_ok(&st) && !past && top > 0 && (int)p->rows.n == top)
        st = s->ops->continuation(s, &p->next, &more);
    if (more) {
        mt_entity *k = mt_entity_new(p->next.pk, p->next.rk);
        more = k && allowed_row(q, k);
        mt_entity_free(k);
    }
    if (!more)
        mt_key_clear(&p->next);
    if (s)
        s->ops->close(s);
    return st;
}

/* The client's filter narrowed to the grant's key range, as far as the
 * comparison limit lets it (one comparison is left for the partition pin
 * an atomic read adds); *f is new (or NULL for no filter). The range's
 * first key moves *from forward when it lies before it. */
static mt_status narrow_to_grant(const px_req *q, const mt_filter *client, mt_key *from,
                                 mt_filter **f)
{
    size_t room = MT_FILTER_MAX_COMPARISONS - 1;
    size_t used = client ? mt_filter_count_comparisons(client) : 0;
    mt_filter *range = NULL;
    mt_key start = {0};
    *f = NULL;
    if (!az_grant_key_range(&q->grant, false, &range, &start))
        goto nomem;
    if (range && used + mt_filter_count_comparisons(range) > room) {
        mt_filter_free(range);
        if (!az_grant_key_range(&q->grant, true, &range, NULL))
            goto nomem;
        if (range && used + mt_filter_count_comparisons(range) > room) {
            mt_filter_free(range); /* the rows are still checked one by one */
            range = NULL;
        }
    }
    if (client && !(*f = mt_filter_clone(client)))
        goto nomem;
    if (range) {
        *f = *f ? mt_filter_and(range, *f) : range;
        range = NULL;
        if (!*f)
            goto nomem;
    }
    if (start.pk && (!from->pk || mt_key_cmp(from->pk, from->rk, start.pk, start.rk) < 0)) {
        mt_key_clear(from);
        *from = start;
    } else {
        mt_key_clear(&start);
    }
    return mt_ok();
nomem:
    mt_filter_free(range);
    mt_key_clear(&start);
    return mt_oom();
}

/* The answer: body (taken) and the continuation's encoded keys (NULL:
 * none), the same whether just written or kept. */
static void page_respond(const px_req *q, px_resp *r, char *body, size_t len, const char *npk,
                         const char *nrk)
{
    px_resp_payload(q, r, 200, body, len);
    if (npk && nrk) {
        px_resp_header(r, "x-ms-continuation-NextPartitionKey", npk);
        px_resp_header(r, "x-ms-continuation-NextRowKey", nrk);
    }
}

/* The key of q's answer in the table's kept answers (px_pagecache.c):
 * false when q cannot have one (another format than JSON, no query string,
 * a grant with a key range). A kept answer was stored only for a query
 * string that parsed into a form page_keepable accepts. */
static bool page_key_of(const px_req *q, px_table *t, px_page_key *k)
{
    if (!px_table_pages(t) || q->fmt != AZ_FMT_JSON || !q->query || grant_ranged(&q->grant))
        return false;
    const char *account = q->app->settings.account;
    *k = (px_page_key){.md = q->md,
                       .base_url = q->base_url,
                       .account = account ? account : "",
                       .table = q->res.table,
                       .query = q->query};
    return true;
}

/* Whether the answer to a query of these options may be kept: the first
 * page of one partition, the filter nothing but the pin, no $select.
 * Everything else its body depends on is in the key or the read mark. */
static bool page_keepable(const az_query_opts *o)
{
    const mt_filter *f = o->filter;
    return !o->select && !o->nselect && !o->next_pk && !o->next_rk && f && f->kind == MT_F_CMP &&
           f->u.cmp.op == MT_EQ && f->u.cmp.lit.type == MT_EDM_STRING &&
           strcmp(f->u.cmp.prop, "PartitionKey") == 0;
}

/* Answers from the kept answer when the tables and the configuration are
 * still those it was read under; false when there is none. */
static bool page_serve_kept(const px_req *q, px_table *t, const px_page_key *k, px_resp *r)
{
    px_pagecache *c = px_table_pages(t);
    px_page_answer a;
    if (!c || !px_pagecache_get(c, k, px_table_view(t), &a))
        return false;
    page_respond(q, r, a.body, a.len, a.next_pk, a.next_rk);
    a.body = NULL; /* the response's now */
    px_page_answer_clear(&a);
    return true;
}

/* Keeps the answer just written when nothing moved since the mark taken
 * before the read (held: no push completed meanwhile). */
static void page_keep(px_table *t, const px_page_key *k, const mt_read_mark *before,
                      const px_page_answer *a)
{
    mt_read_mark after;
    if (!mt_read_mark_take(px_table_view(t), false, &after))
        return;
    if (mt_read_mark_equal(before, &after))
        px_pagecache_put(px_table_pages(t), k, before, a);
}

static void query_entities(px_req *q, px_table *t, px_resp *r)
{
    az_query_opts o = {0};
    page p = {0};
    mt_key from = {0};
    mt_read_mark mark = {0};
    bool keep = false;
    px_page_key k;
    mt_table *v = px_table_view(t);
    mt_status st = az_grant_check(&q->grant, AZ_PERM_READ, false, q->res.table, NULL, NULL);
    bool keyed = mt_is_ok(&st) && page_key_of(q, t, &k);
    if (keyed && page_serve_kept(q, t, &k, r))
        goto done;
    if (mt_is_ok(&st))
        st = az_query_opts_parse(q->query, &o);
    if (mt_is_ok(&st) && o.next_pk) {
        char *pk = px_token_decode(o.next_pk);
        char *rk = o.next_rk ? px_token_decode(o.next_rk) : strdup("");
        if (pk && !rk && !o.next_rk)
            st = mt_oom();
        else if (!pk || !rk)
            st = mt_error(400, "InvalidInput", "The continuation token is not valid.");
        else
            mt_key_set(&from, pk, rk);
        free(pk);
        free(rk);
    }
    int top = o.has_top ? o.top : PX_PAGE_MAX;
    if (mt_is_ok(&st) && keyed && page_keepable(&o))
        keep = mt_read_mark_take(v, true, &mark);
    const char *pinned = o.filter ? mt_filter_pinned_partition(o.filter) : NULL;
    bool first = !from.pk;
    mt_filter *f = NULL;
    if (mt_is_ok(&st))
        st = narrow_to_grant(q, o.filter, &from, &f);
    if (mt_is_ok(&st))
        st = pinned && first ? page_partition(q, v, pinned, f, &from, top, &p)
                             : page_stream(q, v, f, &from, top, &p);
    mt_filter_free(f);
    if (mt_is_ok(&st) && p.rows.oom)
        st = mt_oom(); /* rows are missing: no partial page */
    if (mt_is_ok(&st)) {
        az_payload_ctx c = {.md = q->md,
                            .base_url = q->base_url,
                            .account = q->app->settings.account,
                            .table = q->res.table,
                            .select = o.select,
                            .nselect = o.nselect};
        px_page_answer a = {0};
        a.body = az_entities_write(q->fmt, &c, &p.rows, &a.len);
        if (p.next.pk) {
            a.next_pk = px_token_encode(p.next.pk);
            a.next_rk = px_token_encode(p.next.rk);
            if (!a.next_pk || !a.next_rk)
                r->oom = true; /* a page without its continuation would end the query */
        }
        if (keep && a.body && !r->oom)
            page_keep(t, &k, &mark, &a);
        page_respond(q, r, a.body, a.len, a.next_pk, a.next_rk);
        a.body = NULL; /* the response's now */
        px_page_answer_clear(&a);
    } else {
        px_resp_error(q, r, &st);
    }
done:
    mt_read_mark_release(v, &mark);
    mt_entity_list_clear(&p.rows);
    mt_key_clear(&p.next);
    mt_key_clear(&from);
    az_query_opts_clear(&o);
}

void px_handle_entities(px_req *q, px_resp *r)
{
    mt_status st;
    px_table *t = px_table_get(q->app->reg, q->res.table, &st);
    if (!t) {
        px_resp_error(q, r, &st);
        return;
    }
    if (strcmp(q->method, "GET") == 0 && q->res.kind == AZ_RES_ENTITY)
        get_entity(q, t, r);
    else if (strcmp(q->method, "GET") == 0)
        query_entities(q, t, r);
    else
        do_write(q, t, r);
    px_table_release(q->app->reg, t);
}

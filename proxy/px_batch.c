/*
 * px_batch.c -- Entity Group Transactions (POST /$batch).
 *
 * A changeset of up to 100 writes to one partition of one table becomes one
 * core batch: atomic in every phase, because the MigratingTable runs it as
 * one conditional batch on whichever backend the phase writes. On failure
 * the response carries the one failing operation, its error message
 * prefixed with its index ("3:The specified entity already exists."), which
 * is how SDKs report which operation failed.
 *
 * A batch may also hold one query and no change set (Get Entity or Query
 * Entities): it runs as it would alone, and its response, success or
 * error, is the batch response's only part.
 */
#include "px.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct batch_job {
    px_write w[MT_BATCH_MAX];
    mt_op ops[MT_BATCH_MAX];
    mt_op_result res[MT_BATCH_MAX];
    size_t n;
    char table[256];
} batch_job;

/* Builds the core op of part i; its failure is reported at index i. */
static mt_status prepare_part(px_req *q, const az_batch_part *p, size_t i, batch_job *job)
{
    az_resource res = {0};
    mt_status st = az_resource_parse(p->path, p->query, &res);
    if (mt_is_ok(&st) && res.kind != AZ_RES_ENTITY && res.kind != AZ_RES_ENTITIES)
        st = mt_error(400, "InvalidInput", "A batch operation must address an entity.");
    if (mt_is_ok(&st) && i > 0 && strcmp(res.table, job->table) != 0)
        st = mt_error(400, "InvalidInput", "All operations of a batch must be on one table.");
    if (mt_is_ok(&st) && strcmp(p->method, "GET") == 0)
        st = mt_error(400, "InvalidInput", "A changeset cannot contain a query.");
    if (mt_is_ok(&st)) {
        snprintf(job->table, sizeof job->table, "%s", res.table);
        st = px_write_prepare(
            p->method, az_batch_part_header(p, "X-HTTP-Method"),
            az_batch_part_header(p, "If-Match"), az_batch_part_header(p, "Prefer"),
            az_batch_part_header(p, "Content-Type"), &res, p->body, p->len, &job->w[i]);
    }
    if (mt_is_ok(&st))
        st = az_grant_check(&q->grant, px_write_perm(&job->w[i]), false, res.table,
                            job->w[i].entity->pk, job->w[i].entity->rk);
    if (mt_is_ok(&st))
        job->ops[i] = job->w[i].op;
    az_resource_clear(&res);
    return st;
}

/* The failing operation's reply: its status and "<index>:<message>". */
static void fail_reply(px_req *q, const mt_status *st, az_batch_reply *rep, char **body)
{
    char msg[MT_MSG_MAX + 96];
    int index = st->index >= 0 ? st->index : 0;
    snprintf(msg, sizeof msg, "%d:%s\nRequestId:%s", index, st->message, q->request_id);
    size_t len = 0;
    *body = az_error_write(q->fmt, st->code[0] ? st->code : MT_ERR_INTERNAL, msg, &len);
    rep->status = st->http ? st->http : 500;
    px_log_request_answered(rep->status, st->code, st->message);
    rep->body = *body;
    rep->len = *body ? len : 0;
}

/* Adds a header to rep; false when out of memory. */
static bool add(az_batch_reply *rep, const char *name, const char *value)
{
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return false;
    }
    rep->headers[rep->nheaders].name = n;
    rep->headers[rep->nheaders].value = v;
    rep->nheaders++;
    return true;
}

/* Per-operation replies of a successful changeset, built through the same
 * path as single writes so headers and bodies agree; false when one ran
 * out of memory. */
static bool success_replies(px_req *q, batch_job *job, az_batch_reply *reps, px_resp *parts)
{
    bool ok = true;
    for (size_t i = 0; i < job->n; i++) {
        px_write_respond(q, &job->w[i], &job->res[i], &parts[i]);
        reps[i].status = parts[i].status;
        reps[i].headers = parts[i].headers;
        reps[i].nheaders = parts[i].nheaders;
        reps[i].body = parts[i].body;
        reps[i].len = parts[i].len;
        ok = ok && !parts[i].oom;
    }
    return ok;
}

/* The response of a lone query becomes the batch's only part. */
static void lone_query(px_req *q, const az_batch *b, px_resp *r)
{
    const az_batch_part *p = &b->parts[0];
    px_req sub = *q;
    sub.method = "GET";
    sub.query = p->query;
    memset(&sub.res, 0, sizeof sub.res);
    char *fmt_param = p->query ? az_query_get(p->query, "$format") : NULL;
    az_format_negotiate(az_batch_part_header(p, "Accept"), fmt_param, &sub.fmt, &sub.md);
    free(fmt_param);
    px_resp part = {0};
    mt_status st = az_resource_parse(p->path, p->query, &sub.res);
    if (mt_is_ok(&st) && sub.res.kind != AZ_RES_ENTITY && sub.res.kind != AZ_RES_ENTITIES)
        st = mt_error(400, "InvalidInput", "A batch query must address entities.");
    if (mt_is_ok(&st))
        px_handle_entities(&sub, &part);
    else
        px_resp_error(&sub, &part, &st);
    az_batch_reply rep = {.status = part.status,
                          .headers = part.headers,
                          .nheaders = part.nheaders,
                          .body = part.body,
                          .len = part.len};
    char *ctype = NULL;
    size_t len = 0;
    char *body = az_batch_write(b, &rep, 1, &ctype, &len);
    r->status = 202;
    r->body = body;
    r->len = body ? len : 0;
    r->oom = !body || part.oom;
    px_resp_header(r, "Content-Type", ctype);
    free(ctype);
    px_resp_clear(&part);
    az_resource_clear(&sub.res);
}

/* The batch response of a change set that failed as a whole: its one
 * failing operation's reply (see fail_reply), with that operation's
 * Content-ID. b may hold no parts (a batch refused before its parts were
 * read). */
static void fail_batch(px_req *q, const az_batch *b, const mt_status *st, px_resp *r)
{
    az_batch_reply rep = {0};
    az_header headers[3];
    char *body = NULL;
    fail_reply(q, st, &rep, &body);
    rep.headers = headers;
    bool ok = body && add(&rep, "Content-Type",
                          q->fmt == AZ_FMT_ATOM ? "application/xml;charset=utf-8"
                                                : "application/json;odata=minimalmetadata;"
                                                  "streaming=true;charset=utf-8");
    size_t at = st->index >= 0 && (size_t)st->index < b->n ? (size_t)st->index : 0;
    const char *cid = b->n ? az_batch_part_header(&b->parts[at], "Content-ID") : NULL;
    if (ok && cid)
        ok = add(&rep, "Content-ID", cid);
    char *ctype = NULL;
    size_t len = 0;
    r->body = ok ? az_batch_write(b->n ? b : NULL, &rep, 1, &ctype, &len) : NULL;
    r->status = 202;
    r->len = r->body ? len : 0;
    r->oom = !r->body;
    px_resp_header(r, "Content-Type", ctype);
    free(ctype);
    for (size_t i = 0; i < rep.nheaders; i++) {
        free(headers[i].name);
        free(headers[i].value);
    }
    free(body);
}

void px_handle_batch(px_req *q, px_resp *r)
{
    if (strcmp(q->method, "POST") != 0) {
        mt_status st = mt_error(405, "UnsupportedHttpVerb",
                                "The resource doesn't support the specified HTTP verb.");
        px_resp_error(q, r, &st);
        return;
    }
    az_batch b = {0};
    mt_status st = az_batch_parse(px_req_header(q, "Content-Type"), q->body, q->len, &b);
    if (!mt_is_ok(&st)) {
        az_batch_clear(&b);
        if (az_batch_too_many(&st)) {
            az_batch none = {0};
            fail_batch(q, &none, &st, r);
        } else {
            px_resp_error(q, r, &st);
        }
        return;
    }
    if (!b.changeset_boundary && b.n == 1) {
        lone_query(q, &b, r);
        az_batch_clear(&b);
        return;
    }
    batch_job *job = calloc(1, sizeof *job);
    px_resp *parts = calloc(MT_BATCH_MAX, sizeof *parts);
    az_batch_reply *reps = calloc(MT_BATCH_MAX, sizeof *reps);
    px_table *t = NULL;
    if (!job || !parts || !reps) {
        free(job);
        free(parts);
        free(reps);
        az_batch_clear(&b);
        r->oom = true;
        return;
    }
    job->n = b.n;
    for (size_t i = 0; mt_is_ok(&st) && i < b.n; i++) {
        st = prepare_part(q, &b.parts[i], i, job);
        if (!mt_is_ok(&st))
            st.index = (int)i;
    }
    if (mt_is_ok(&st) && b.n > 0) {
        t = px_table_get(q->app->reg, job->table, &st);
        if (t) {
            /* q->res.table names the table for Location headers. */
            free(q->res.table);
            q->res.table = strdup(job->table);
            st = q->res.table ? mt_table_batch(px_table_view(t), job->ops, job->n, job->res)
                              : mt_oom();
        } else {
            st.index = 0;
        }
    }
    if (mt_is_ok(&st)) {
        bool ok = success_replies(q, job, reps, parts);
        char *ctype = NULL;
        size_t len = 0;
        r->body = ok ? az_batch_write(&b, reps, job->n, &ctype, &len) : NULL;
        r->status = 202;
        r->len = r->body ? len : 0;
        r->oom = !r->body; /* the changeset applied: the client retries and finds it */
        px_resp_header(r, "Content-Type", ctype);
        free(ctype);
    } else {
        fail_batch(q, &b, &st, r);
    }
    for (size_t i = 0; i < MT_BATCH_MAX; i++) {
        px_resp_clear(&parts[i]);
        px_write_clear(&job->w[i]);
    }
    if (t)
        px_table_release(q->app->reg, t);
    free(parts);
    free(reps);
    free(job);
    az_batch_clear(&b);
}

/*
 * history.c -- the record of one execution: building it, freeing it, and
 * describing its records in one line each.
 *
 * Records own everything they point at, so a history outlives the execution
 * that produced it (the checker runs after every actor is gone, and a failing
 * history is printed after that). The descriptions are bounded and never
 * allocate: they are used on the failure path of a tester that runs
 * thousands of executions a second, and in reports whose size the caller
 * chose.
 */
#include "history.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sct_hop *sct_history_add(sct_history *h, sct_hkind kind, int actor)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        sct_hop *v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        h->v = v;
        h->cap = cap;
    }
    sct_hop *op = &h->v[h->n++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->actor = actor;
    op->status.index = -1; /* as every mt_status: no failing batch op yet */
    return op;
}

static void sct_hop_free(sct_hop *op)
{
    for (size_t i = 0; op->ops && i < op->n; i++) {
        if (op->ops[i].entity)
            mt_entity_free(op->ops[i].entity);
        free(op->ops[i].if_match);
    }
    free(op->ops);
    free(op->results);
    if (op->filter)
        mt_filter_free(op->filter);
    free(op->pk);
    free(op->rk);
    mt_entity_list_clear(&op->rows);
    if (op->row)
        mt_entity_free(op->row);
}

void sct_history_clear(sct_history *h)
{
    for (size_t i = 0; i < h->n; i++)
        sct_hop_free(&h->v[i]);
    free(h->v);
    memset(h, 0, sizeof(*h));
}

/* ------------------------------------------------------------------------ */
/* Bounded text.                                                             */

/* An append-only window onto a caller's buffer; once full it keeps the
 * text it has and ends it with "..." so a reader sees it was cut. */
typedef struct sct_text {
    char *buf;
    size_t len;
    size_t pos;
} sct_text;

static void sct_text_init(sct_text *t, char *buf, size_t len)
{
    t->buf = buf;
    t->len = len;
    t->pos = 0;
    if (len)
        buf[0] = '\0';
}

static void sct_text_add(sct_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sct_text_add(sct_text *t, const char *fmt, ...)
{
    if (t->len == 0 || t->pos + 1 >= t->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->buf + t->pos, t->len - t->pos, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if ((size_t)k < t->len - t->pos) {
        t->pos += (size_t)k;
        return;
    }
    t->pos = t->len - 1;
    if (t->len >= 4)
        memcpy(t->buf + t->len - 4, "...", 4);
}

/* A string shown with at most 24 bytes, so one long value cannot crowd the
 * rest of a report out. */
static void sct_text_str(sct_text *t, const char *s, size_t n)
{
    if (n <= 24)
        sct_text_add(t, "'%.*s'", (int)n, s);
    else
        sct_text_add(t, "'%.21s...'", s);
}

static void sct_text_value(sct_text *t, const mt_value *v)
{
    switch (v->type) {
    case MT_EDM_STRING:
        sct_text_str(t, v->u.bytes.ptr, v->u.bytes.len);
        break;
    case MT_EDM_INT32:
        sct_text_add(t, "%" PRId32, v->u.i32);
        break;
    case MT_EDM_INT64:
        sct_text_add(t, "%" PRId64 "L", v->u.i64);
        break;
    case MT_EDM_DOUBLE:
        sct_text_add(t, "%.17g", v->u.dbl);
        break;
    case MT_EDM_BOOLEAN:
        sct_text_add(t, "%s", v->u.b ? "true" : "false");
        break;
    case MT_EDM_DATETIME:
        sct_text_add(t, "datetime(%" PRId64 ")", v->u.ticks);
        break;
    case MT_EDM_GUID:
        sct_text_add(t, "guid'%02x%02x%02x%02x...'", v->u.guid[0], v->u.guid[1], v->u.guid[2],
                     v->u.guid[3]);
        break;
    case MT_EDM_BINARY:
        sct_text_add(t, "binary(%zu bytes)", v->u.bytes.len);
        break;
    }
}

static void sct_text_entity(sct_text *t, const mt_entity *e)
{
    sct_text_add(t, "{");
    for (size_t i = 0; i < e->nprops; i++) {
        sct_text_add(t, "%s%s=", i ? ", " : "", e->props[i].name);
        sct_text_value(t, &e->props[i].value);
    }
    sct_text_add(t, "}");
}

const char *sct_op_kind_name(mt_op_kind k)
{
    switch (k) {
    case MT_OP_INSERT:
        return "Insert";
    case MT_OP_REPLACE:
        return "Replace";
    case MT_OP_MERGE:
        return "Merge";
    case MT_OP_DELETE:
        return "Delete";
    case MT_OP_INSERT_OR_REPLACE:
        return "InsertOrReplace";
    case MT_OP_INSERT_OR_MERGE:
        return "InsertOrMerge";
    case MT_OP_DELETE_IF_EXISTS:
        return "DeleteIfExists";
    }
    return "?";
}

void sct_entity_describe(const mt_entity *e, char *buf, size_t len)
{
    sct_text t;
    sct_text_init(&t, buf, len);
    if (e)
        sct_text_entity(&t, e);
    else
        sct_text_add(&t, "(none)");
}

/* ------------------------------------------------------------------------ */
/* Records.                                                                  */

static void sct_text_filter(sct_text *t, const mt_filter *f)
{
    if (!f)
        return;
    char *s = mt_filter_print(f);
    sct_text_add(t, " filter \"%s\"", s ? s : "?");
    free(s);
}

static void sct_text_status(sct_text *t, const mt_status *st)
{
    if (st->http == 0)
        sct_text_add(t, "ok");
    else if (st->index >= 0)
        sct_text_add(t, "%d %s at op %d", st->http, st->code, st->index);
    else
        sct_text_add(t, "%d %s", st->http, st->code);
}

static void sct_text_batch(sct_text *t, const sct_hop *op)
{
    const char *pk = op->n && op->ops[0].entity ? op->ops[0].entity->pk : "?";
    sct_text_add(t, "batch pk '%s' [", pk);
    for (size_t i = 0; i < op->n; i++) {
        const sct_hbatch_op *b = &op->ops[i];
        sct_text_add(t, "%s%s '%s'", i ? ", " : "", sct_op_kind_name(b->kind),
                     b->entity ? b->entity->rk : "?");
        if (b->if_match)
            sct_text_add(t, " if %s", b->if_match);
        if (op->status.http == 0 && op->results && op->results[i].etag[0])
            sct_text_add(t, " -> %s", op->results[i].etag);
    }
    sct_text_add(t, "] -> ");
    sct_text_status(t, &op->status);
}

static void sct_text_rows(sct_text *t, const sct_hop *op)
{
    sct_text_add(t, " -> ");
    if (op->status.http != 0) {
        sct_text_status(t, &op->status);
        return;
    }
    sct_text_add(t, "%zu rows", op->rows.n);
    for (size_t i = 0; i < op->rows.n; i++) {
        const mt_entity *e = op->rows.v[i];
        sct_text_add(t, "%s'%s' ", i ? ", " : ": ", e->rk);
        sct_text_entity(t, e);
    }
}

void sct_hop_describe(const sct_hop *op, char *buf, size_t len)
{
    sct_text t;
    sct_text_init(&t, buf, len);
    sct_text_add(&t, "actor %d t=%" PRIu64 "..%" PRIu64 " ", op->actor, op->invoke, op->respond);
    switch (op->kind) {
    case SCT_H_BATCH:
        sct_text_batch(&t, op);
        break;
    case SCT_H_QUERY:
        sct_text_add(&t, "query pk '%s'", op->pk ? op->pk : "?");
        sct_text_filter(&t, op->filter);
        sct_text_rows(&t, op);
        break;
    case SCT_H_RETRIEVE:
        sct_text_add(&t, "retrieve '%s'/'%s' -> ", op->pk ? op->pk : "?", op->rk ? op->rk : "?");
        if (op->status.http == 0 && op->row)
            sct_text_entity(&t, op->row);
        else
            sct_text_status(&t, &op->status);
        break;
    case SCT_H_STREAM_ROW:
        sct_text_add(&t, "stream row '%s'/'%s' ", op->row ? op->row->pk : "?",
                     op->row ? op->row->rk : "?");
        if (op->row)
            sct_text_entity(&t, op->row);
        sct_text_filter(&t, op->filter);
        break;
    case SCT_H_STREAM_ABSENT:
        sct_text_add(&t, "stream skipped '%s'/'%s'", op->pk ? op->pk : "?", op->rk ? op->rk : "?");
        sct_text_filter(&t, op->filter);
        break;
    }
}

/*
 * az_client_wire.c -- how the backend client's ops and rows travel: entity
 * bodies, feeds of rows, single-entity calls and $batch changesets.
 *
 * Everything is JSON with minimal metadata: every request body annotates
 * each value whose JSON form does not say its EDM type (Int64, Double,
 * DateTime, Guid, Binary), and responses are read by the wire library's
 * entity reader, which tells 5 (Int32) from 5.0 (Double) by the number's
 * text. One op is one single-entity call; 2..100 ops are one $batch
 * changeset; errors map back to the failing op by the "<index>:" prefix of
 * the service's message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "az_client_internal.h"

/* ------------------------------------------------------------------------ */
/* Entities on the wire.                                                     */

/* Raw-text walk of a feed: the number texts of each entity must reach the
 * entity reader untouched, so the "value" array is cut into the spans of
 * its elements rather than re-printed from a parsed tree. */
static void skip_ws(const char *s, size_t n, size_t *i)
{
    while (*i < n && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\r' || s[*i] == '\n'))
        (*i)++;
}

static bool skip_string(const char *s, size_t n, size_t *i)
{
    for (size_t j = *i + 1; j < n; j++) {
        if (s[j] == '\\')
            j++;
        else if (s[j] == '"') {
            *i = j + 1;
            return true;
        }
    }
    return false;
}

static bool skip_value(const char *s, size_t n, size_t *i)
{
    if (*i >= n)
        return false;
    if (s[*i] == '"')
        return skip_string(s, n, i);
    if (s[*i] != '{' && s[*i] != '[') {
        while (*i < n && !strchr(",}] \t\r\n", s[*i]))
            (*i)++;
        return true;
    }
    int depth = 0;
    while (*i < n) {
        char c = s[*i];
        if (c == '"') {
            if (!skip_string(s, n, i))
                return false;
            continue;
        }
        (*i)++;
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return true;
    }
    return false;
}

/* The ETag (etag, else odata.etag) and the Timestamp come from the same
 * pass that reads the entity: a second parse of the whole entity cost as
 * much as a tenth of a point read's CPU. */
mt_status az_wire_entity_parse(const char *s, size_t n, const char *etag, mt_entity **out)
{
    mt_status st = az_json_entity_read_reply(s, n, out);
    if (!mt_is_ok(&st))
        return az_bad_reply(st.message);
    if (etag && *etag)
        mt_entity_set_etag(*out, etag);
    return mt_ok();
}

mt_status az_wire_feed_each(const char *s, size_t n, az_span_fn fn, void *ctx)
{
    size_t i = 0;
    skip_ws(s, n, &i);
    if (i >= n || s[i++] != '{')
        return az_bad_reply("the feed is not a JSON object");
    for (;;) {
        skip_ws(s, n, &i);
        if (i < n && s[i] == '}')
            return mt_ok();
        size_t k = i;
        if (i >= n || s[i] != '"' || !skip_string(s, n, &i))
            return az_bad_reply("bad member name in the feed");
        bool value = i - k == 7 && memcmp(s + k, "\"value\"", 7) == 0;
        skip_ws(s, n, &i);
        if (i >= n || s[i++] != ':')
            return az_bad_reply("missing ':' in the feed");
        skip_ws(s, n, &i);
        if (value && i < n && s[i] == '[') {
            i++;
            for (;;) {
                skip_ws(s, n, &i);
                if (i < n && s[i] == ']') {
                    i++;
                    break;
                }
                size_t start = i;
                if (!skip_value(s, n, &i))
                    return az_bad_reply("truncated entity in the feed");
                mt_status st = fn(ctx, s + start, i - start);
                if (!mt_is_ok(&st))
                    return st;
                skip_ws(s, n, &i);
                if (i < n && s[i] == ',')
                    i++;
            }
        } else if (!skip_value(s, n, &i)) {
            return az_bad_reply("truncated feed");
        }
        skip_ws(s, n, &i);
        if (i < n && s[i] == ',')
            i++;
        else if (i >= n || s[i] != '}')
            return az_bad_reply("bad separator in the feed");
    }
}

/* ------------------------------------------------------------------------ */
/* Ops on the wire.                                                          */

char *az_wire_entity_path(const az_table *t, const char *pk, const char *rk)
{
    mt_buf b = {0};
    mt_buf_puts(&b, "/");
    az_entity_path(&b, t->name, pk, rk, "");
    return mt_buf_take(&b, NULL);
}

/* How an op goes on the wire. */
typedef struct az_wire {
    const char *method;
    bool url_keys; /* else POST to the table */
    bool body;
    const char *if_match;
} az_wire;

static az_wire op_wire(const mt_op *op)
{
    switch (op->kind) {
    case MT_OP_INSERT:
        return (az_wire){"POST", false, true, NULL};
    case MT_OP_REPLACE:
        return (az_wire){"PUT", true, true, op->if_match};
    case MT_OP_MERGE:
        return (az_wire){"MERGE", true, true, op->if_match};
    case MT_OP_DELETE:
        return (az_wire){"DELETE", true, false, op->if_match};
    case MT_OP_INSERT_OR_REPLACE:
        return (az_wire){"PUT", true, true, NULL};
    case MT_OP_INSERT_OR_MERGE:
        return (az_wire){"MERGE", true, true, NULL};
    case MT_OP_DELETE_IF_EXISTS:
        break;
    }
    return (az_wire){"DELETE", true, false, "*"};
}

/* Conditioned on a specific ETag: at most one attempt can apply. */
static bool op_has_token(const mt_op *op)
{
    return (op->kind == MT_OP_REPLACE || op->kind == MT_OP_MERGE || op->kind == MT_OP_DELETE) &&
           op->if_match && strcmp(op->if_match, "*") != 0;
}

static bool is_delete(mt_op_kind k)
{
    return k == MT_OP_DELETE || k == MT_OP_DELETE_IF_EXISTS;
}

void az_wire_fill_result(const mt_op *op, const char *etag, mt_op_result *res)
{
    res->http = op->kind == MT_OP_INSERT ? 201 : 204;
    res->etag[0] = '\0';
    if (!is_delete(op->kind) && etag)
        snprintf(res->etag, sizeof res->etag, "%s", etag);
}

/* ------------------------------------------------------------------------ */
/* Writes: one op.                                                           */

static mt_status single_op(az_table *t, const mt_op *op, mt_op_result *res)
{
    az_wire w = op_wire(op);
    size_t len = 0;
    char *body = w.body ? az_entity_request_body(op->entity, &len) : NULL;
    char *path = NULL;
    if (w.url_keys) {
        path = az_wire_entity_path(t, op->entity->pk, op->entity->rk);
    } else {
        mt_buf b = {0};
        mt_buf_printf(&b, "/%s", t->name);
        path = mt_buf_take(&b, NULL);
    }
    mt_status st = az_oom();
    if (path && (body || !w.body)) {
        az_req q = {.method = w.method,
                    .path = path,
                    .content_type = body ? AZ_JSON : NULL,
                    .body = body,
                    .len = len,
                    .if_match = w.if_match,
                    .no_content = op->kind == MT_OP_INSERT,
                    .replay = op_has_token(op) ? AZ_REPLAY_TOKEN : AZ_REPLAY_NONE};
        az_resp r = {0};
        st = az_call(t->c, &q, &r);
        if (mt_is_ok(&st) && r.status >= 200 && r.status < 300) {
            az_wire_fill_result(op, r.etag, res);
        } else if (mt_is_ok(&st)) {
            st = az_resp_error(&r);
            if (op->kind == MT_OP_DELETE_IF_EXISTS && st.http == 404 &&
                strcmp(st.code, AZ_ERR_TABLE_NOT_FOUND) != 0) {
                az_wire_fill_result(op, NULL, res);
                st = mt_ok();
            } else if (r.ambiguous && az_is_state_failure(st.http)) {
                st = az_outcome_unknown("a retried write was refused");
            }
            if (!mt_is_ok(&st))
                st.index = st.http < 500 ? 0 : -1;
        }
        az_resp_clear(&r);
    }
    free(body);
    free(path);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Writes: a $batch changeset.                                               */

typedef struct az_reply {
    int status;
    int content_id; /* 0 when absent */
    char etag[MT_ETAG_MAX];
    const char *body;
    size_t len;
} az_reply;

/* The next line of s[*i..n) without its line ending; false at the end. */
static bool next_line(const char *s, size_t n, size_t *i, const char **line, size_t *len)
{
    if (*i >= n)
        return false;
    const char *p = s + *i, *nl = memchr(p, '\n', n - *i);
    size_t l = nl ? (size_t)(nl - p) : n - *i;
    *line = p;
    *i += nl ? l + 1 : l;
    *len = l && p[l - 1] == '\r' ? l - 1 : l;
    return true;
}

/* Reads "Name: value" lines up to the empty line; keeps the few we use. */
static void part_headers(const char *s, size_t n, size_t *i, char *ctype, size_t ccap,
                         az_reply *rep)
{
    const char *line;
    size_t len;
    while (next_line(s, n, i, &line, &len) && len) {
        const char *colon = memchr(line, ':', len);
        if (!colon)
            continue;
        size_t nl = (size_t)(colon - line), vl = len - nl - 1;
        const char *v = colon + 1;
        while (vl && *v == ' ')
            v++, vl--;
        if (ctype && az_header_is(line, nl, "Content-Type"))
            az_copy_field(ctype, ccap, v, vl);
        else if (rep && az_header_is(line, nl, "ETag"))
            az_copy_field(rep->etag, sizeof rep->etag, v, vl);
        else if (rep && az_header_is(line, nl, "Content-ID"))
            rep->content_id = atoi(v);
    }
}

static bool boundary_of(const char *ctype, char *out, size_t cap)
{
    const char *b = ctype ? strstr(ctype, "boundary=") : NULL;
    if (!b)
        return false;
    b += 9;
    bool quoted = *b == '"';
    b += quoted;
    size_t n = strcspn(b, quoted ? "\"" : "; \t");
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, b, n);
    out[n] = '\0';
    return true;
}

typedef struct az_span {
    const char *p;
    size_t n;
} az_span;

/* The parts of a multipart body between "--boundary" lines; the count. */
static size_t multipart_split(const char *s, size_t n, const char *boundary, az_span *parts,
                              size_t max)
{
    size_t bl = strlen(boundary), count = 0;
    const char *open = NULL; /* where the current part's text begins */
    for (size_t i = 0; i + 2 + bl <= n; i++) {
        if ((i > 0 && s[i - 1] != '\n') || s[i] != '-' || s[i + 1] != '-' ||
            memcmp(s + i + 2, boundary, bl) != 0)
            continue;
        if (open) {
            size_t end = i;
            if (end > 0 && s[end - 1] == '\n')
                end--;
            if (end > 0 && s[end - 1] == '\r')
                end--;
            if (count == max)
                return count + 1; /* more than asked for */
            parts[count++] = (az_span){open, (size_t)(s + end - open)};
        }
        size_t j = i + 2 + bl;
        if (j + 1 < n && s[j] == '-' && s[j + 1] == '-')
            return count; /* the closing delimiter */
        const char *nl = memchr(s + j, '\n', n - j);
        if (!nl)
            return count;
        open = nl + 1;
        i = (size_t)(nl - s);
    }
    return count;
}

/* One "application/http" part: status line, headers, body. */
static bool http_part(const char *s, size_t n, az_reply *rep)
{
    size_t i = 0, len = 0;
    const char *line = NULL;
    memset(rep, 0, sizeof *rep);
    part_headers(s, n, &i, NULL, 0, NULL); /* Content-Type: application/http ... */
    while (next_line(s, n, &i, &line, &len) && len == 0)
        ;
    if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0)
        return false;
    rep->status = atoi(line + 9);
    part_headers(s, n, &i, NULL, 0, rep);
    rep->body = s + i;
    rep->len = n - i;
    return rep->status >= 100 && rep->status < 600;
}

/* The replies of a $batch answer: one per op, or one for the failing op. */
static mt_status batch_replies(const az_resp *r, az_reply *out, size_t max, size_t *count)
{
    char b[128], ctype[256] = "", cb[128];
    az_span outer[2], inner[MT_BATCH_MAX + 1];
    *count = 0;
    if (!boundary_of(r->content_type, b, sizeof b))
        return az_bad_reply("no multipart boundary in the $batch answer");
    if (multipart_split(r->body.p, r->body.len, b, outer, 2) < 1)
        return az_bad_reply("no part in the $batch answer");
    size_t i = 0;
    part_headers(outer[0].p, outer[0].n, &i, ctype, sizeof ctype, NULL);
    if (!boundary_of(ctype, cb, sizeof cb)) {
        /* Not a changeset: the whole batch was refused in one reply. */
        if (!http_part(outer[0].p, outer[0].n, &out[0]))
            return az_bad_reply("bad part in the $batch answer");
        *count = 1;
        return mt_ok();
    }
    size_t k = multipart_split(outer[0].p + i, outer[0].n - i, cb, inner, max);
    if (k == 0 || k > max)
        return az_bad_reply("wrong number of changeset replies");
    for (size_t j = 0; j < k; j++)
        if (!http_part(inner[j].p, inner[j].n, &out[j]))
            return az_bad_reply("bad changeset reply");
    *count = k;
    return mt_ok();
}

static void batch_part(mt_buf *b, const az_table *t, const char *cs, const mt_op *op, size_t i,
                       const char *body)
{
    az_wire w = op_wire(op);
    mt_buf_printf(b,
                  "--%s\r\nContent-Type: application/http\r\n"
                  "Content-Transfer-Encoding: binary\r\n\r\n",
                  cs);
    mt_buf_printf(b, "%s ", w.method);
    mt_buf_puts(b, az_client_endpoint(t->c));
    if (w.url_keys) {
        char *p = az_wire_entity_path(t, op->entity->pk, op->entity->rk);
        if (p)
            mt_buf_puts(b, p);
        else
            b->oom = true;
        free(p);
    } else {
        mt_buf_printf(b, "/%s", t->name);
    }
    mt_buf_printf(b, " HTTP/1.1\r\nContent-ID: %zu\r\nAccept: %s\r\n", i + 1, AZ_ACCEPT);
    mt_buf_puts(b, "DataServiceVersion: 3.0;\r\n");
    if (body)
        mt_buf_printf(b, "Content-Type: %s\r\n", AZ_JSON);
    if (op->kind == MT_OP_INSERT)
        mt_buf_puts(b, "Prefer: return-no-content\r\n");
    if (w.if_match) {
        mt_buf_puts(b, "If-Match: ");
        mt_buf_puts(b, w.if_match);
        mt_buf_puts(b, "\r\n");
    }
    mt_buf_puts(b, "\r\n");
    if (body) {
        mt_buf_puts(b, body);
        mt_buf_puts(b, "\r\n");
    }
}

static char *batch_body(const az_table *t, const mt_op *ops, size_t n, const char *bb,
                        const char *cs, size_t *len)
{
    mt_buf b = {0};
    mt_buf_printf(&b, "--%s\r\nContent-Type: multipart/mixed; boundary=%s\r\n\r\n", bb, cs);
    for (size_t i = 0; i < n && !b.oom; i++) {
        size_t bl;
        char *body = op_wire(&ops[i]).body ? az_entity_request_body(ops[i].entity, &bl) : NULL;
        if (op_wire(&ops[i]).body && !body)
            b.oom = true;
        batch_part(&b, t, cs, &ops[i], i, body);
        free(body);
    }
    mt_buf_printf(&b, "--%s--\r\n--%s--\r\n", cs, bb);
    return mt_buf_take(&b, len);
}

/* The failing reply's status, its op index from the message prefix or
 * else from its Content-ID. */
static mt_status batch_failure(const az_reply *rep, size_t n, bool ambiguous)
{
    mt_status st = az_error_of(rep->status, rep->body, rep->len);
    if (st.index < 0 && rep->content_id >= 1)
        st.index = rep->content_id - 1;
    if (st.index >= (int)n)
        st.index = -1;
    if (ambiguous && az_is_state_failure(st.http)) {
        int index = st.index;
        st = az_outcome_unknown("a retried batch was refused");
        st.index = index;
    }
    return st;
}

static mt_status batch_send(az_table *t, const mt_op *ops, size_t n, mt_op_result *res)
{
    char bb[48] = "batch_", cs[48] = "changeset_";
    az_hex_token(bb + 6, 32);
    az_hex_token(cs + 10, 32);
    size_t len = 0;
    char *body = batch_body(t, ops, n, bb, cs, &len);
    char ctype[96];
    snprintf(ctype, sizeof ctype, "multipart/mixed; boundary=%s", bb);
    bool token = false;
    for (size_t i = 0; i < n; i++)
        token = token || op_has_token(&ops[i]);
    if (!body)
        return az_oom();
    az_req q = {.method = "POST",
                .path = "/$batch",
                .content_type = ctype,
                .body = body,
                .len = len,
                .replay = token ? AZ_REPLAY_TOKEN : AZ_REPLAY_NONE};
    az_resp r = {0};
    az_reply *reps = calloc(MT_BATCH_MAX + 1, sizeof *reps);
    size_t k = 0;
    mt_status st = reps ? az_call(t->c, &q, &r) : az_oom();
    if (mt_is_ok(&st) && r.status != 202) {
        st = az_resp_error(&r);
        if (r.ambiguous && az_is_state_failure(st.http))
            st = az_outcome_unknown("a retried batch was refused");
    } else if (mt_is_ok(&st)) {
        st = batch_replies(&r, reps, n, &k);
    }
    for (size_t j = 0; mt_is_ok(&st) && j < k; j++)
        if (reps[j].status >= 300)
            st = batch_failure(&reps[j], n, r.ambiguous);
    if (mt_is_ok(&st) && k != n)
        st = az_bad_reply("the changeset answer does not have one reply per op");
    for (size_t j = 0; mt_is_ok(&st) && j < n; j++) {
        size_t i = reps[j].content_id >= 1 && (size_t)reps[j].content_id <= n
                       ? (size_t)reps[j].content_id - 1
                       : j;
        az_wire_fill_result(&ops[i], reps[j].etag, &res[i]);
    }
    free(reps);
    az_resp_clear(&r);
    free(body);
    return st;
}

/* One wire batch: a lone op goes as its single-entity call. */
mt_status az_wire_send(az_table *t, const mt_op *ops, size_t n, mt_op_result *res)
{
    for (size_t i = 0; i < n; i++)
        if (ops[i].entity && ops[i].entity->oom)
            return mt_oom(); /* a property went missing on the way here */
    return n == 1 ? single_op(t, ops, res) : batch_send(t, ops, n, res);
}

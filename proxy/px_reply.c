/*
 * px_reply.c -- what every table-endpoint handler uses to read its request
 * and build its response: request headers, response headers, payload and
 * error bodies in the request's format, and continuation tokens.
 *
 * It sits below the listener (px_server.c) and the handlers (px_tables.c,
 * px_entity.c, px_batch.c): they call it, it calls none of them, so the
 * listener and the handlers do not depend on each other both ways.
 */
#include "px_log.h"
#include "px_reply.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Requests.                                                                 */

const char *px_req_header(const px_req *q, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)q->conn, MHD_HEADER_KIND, name);
}

/* ------------------------------------------------------------------------ */
/* Responses.                                                                */

_Static_assert(PX_MAX_HEADERS <= sizeof(unsigned) * 8, "one heap bit per header");

void px_resp_header(px_resp *r, const char *name, const char *value)
{
    if (r->nheaders == PX_MAX_HEADERS || !value)
        return;
    size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
    char *n, *v;
    if (r->used <= sizeof r->text && nl + vl <= sizeof r->text - r->used) {
        n = r->text + r->used;
        v = n + nl;
        r->used += nl + vl;
    } else {
        n = malloc(nl + vl); /* one block: the value follows the name */
        if (!n) {
            r->oom = true;
            return;
        }
        v = n + nl;
        r->heap |= 1u << r->nheaders;
    }
    memcpy(n, name, nl);
    memcpy(v, value, vl);
    r->headers[r->nheaders].name = n;
    r->headers[r->nheaders].value = v;
    r->nheaders++;
}

void px_resp_clear(px_resp *r)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (r->heap & (1u << i))
            free(r->headers[i].name);
    free(r->body);
    /* Not the text: nothing points into it any more. */
    memset(r, 0, offsetof(px_resp, text));
}

static const char *content_type_of(const px_req *q, bool entry)
{
    if (q->fmt == AZ_FMT_ATOM)
        return entry ? "application/atom+xml;type=entry;charset=utf-8"
                     : "application/atom+xml;type=feed;charset=utf-8";
    switch (q->md) {
    case AZ_META_NONE:
        return "application/json;odata=nometadata;streaming=true;charset=utf-8";
    case AZ_META_FULL:
        return "application/json;odata=fullmetadata;streaming=true;charset=utf-8";
    default:
        return "application/json;odata=minimalmetadata;streaming=true;charset=utf-8";
    }
}

void px_resp_payload(const px_req *q, px_resp *r, int status, char *body, size_t len)
{
    r->status = status;
    free(r->body);
    r->body = body;
    r->len = body ? len : 0;
    if (!body)
        r->oom = true;
    /* A single entity or table is an Atom entry; everything else a feed. */
    bool entry = q->res.kind == AZ_RES_ENTITY || q->res.kind == AZ_RES_TABLE ||
                 (q->res.kind == AZ_RES_ENTITIES && strcmp(q->method, "POST") == 0) ||
                 (q->res.kind == AZ_RES_TABLES && strcmp(q->method, "POST") == 0);
    px_resp_header(r, "Content-Type", content_type_of(q, entry));
}

void px_resp_error(const px_req *q, px_resp *r, const mt_status *st)
{
    size_t len = 0;
    char msg[MT_MSG_MAX + 128], now[MT_DATETIME_MAX];
    mt_datetime_format(mt_rt_pthread()->ops->now_ticks(mt_rt_pthread()), now);
    snprintf(msg, sizeof msg, "%s\nRequestId:%s\nTime:%s", st->message[0] ? st->message : st->code,
             q->request_id, now);
    char *body = az_error_write(q->fmt, st->code[0] ? st->code : MT_ERR_INTERNAL, msg, &len);
    r->status = st->http ? st->http : 500;
    px_log_request_answered(r->status, st->code, st->message[0] ? st->message : st->code);
    free(r->body);
    r->body = body;
    r->len = body ? len : 0;
    if (!body)
        r->oom = true;
    px_resp_header(r, "Content-Type",
                   q->fmt == AZ_FMT_ATOM ? "application/xml;charset=utf-8"
                                         : content_type_of(q, false));
    px_resp_header(r, "x-ms-error-code", st->code);
}

/* ------------------------------------------------------------------------ */
/* Continuation tokens: "1!" + base64url of the key, safe in a header.      */

char *px_token_encode(const char *s)
{
    char *b = az_base64_encode((const uint8_t *)s, strlen(s));
    if (!b)
        return NULL;
    size_t n = strlen(b);
    char *out = malloc(n + 3);
    if (!out) {
        free(b);
        return NULL;
    }
    memcpy(out, "1!", 2);
    size_t j = 2;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '=')
            break;
        out[j++] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : b[i];
    }
    out[j] = '\0';
    free(b);
    return out;
}

char *px_token_decode(const char *tok)
{
    if (!tok || strncmp(tok, "1!", 2) != 0)
        return NULL;
    size_t n = strlen(tok + 2);
    if (n > 8192)
        return NULL;
    char *b = malloc(n + 4);
    if (!b)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = tok[2 + i];
        b[j++] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    while (j % 4)
        b[j++] = '=';
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    bool ok = az_base64_decode(b, j, &raw, &rawlen);
    free(b);
    if (!ok || memchr(raw, '\0', rawlen)) {
        free(raw);
        return NULL;
    }
    char *s = malloc(rawlen + 1);
    if (!s) {
        free(raw);
        return NULL;
    }
    memcpy(s, raw, rawlen);
    s[rawlen] = '\0';
    free(raw);
    return s;
}

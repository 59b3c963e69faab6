/*
 * az_batch.c -- entity group transactions: reading a $batch request body
 * (az_batch_write.c writes the response).
 *
 * A request is a multipart/mixed body holding exactly one part: either a
 * change set (itself multipart/mixed, of up to 100 application/http
 * operations) or one application/http query. Each operation is a small
 * HTTP request: "METHOD URL HTTP/1.1", headers, a blank line, a body.
 *
 * The reader is a line scanner over (pointer, length), not a general MIME
 * library: nothing in the body is trusted, no NUL terminator is assumed,
 * and every part is bounded by the delimiters found around it. It accepts
 * what the SDKs really send, which is less tidy than RFC 2046: one SDK
 * ends lines with LF only and closes a lone query's headers straight into
 * the closing delimiter, the other puts an extra CRLF before each body;
 * boundaries may be quoted; Content-Type parameters come in any order.
 * Blank lines around an operation's body are dropped, which no JSON or
 * Atom payload can notice, so a DELETE reads as empty whichever SDK sent
 * it.
 *
 * Operation URLs are absolute ("http://127.0.0.1:10002/devstoreaccount1/
 * t(PartitionKey='a',RowKey='b')"), host-relative ("/devstoreaccount1/t")
 * or relative to the batch ("t()"). The part kept is the path after the
 * account segment, still encoded, for az_resource_parse. A table path is a
 * single segment (a '/' inside a key travels as %2F), so a path of two or
 * more segments whose first looks like an account name (letters, digits,
 * '-') is path-style and that first segment is the account; a path of one
 * segment is host-style (account.table.core.windows.net/t) and is kept
 * whole. This needs no knowledge of the host name, which the proxy may be
 * reached under in any form.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "az_internal.h"

#define AZ_BOUNDARY_MAX 70 /* RFC 2046 */
#define AZ_PART_HEADERS_MAX 100
/* The service's own words; clients and their tests look for them. */
#define AZ_TOO_MANY_OPS                                                                            \
    "The batch request operation exceeds the maximum 100 changes per change set."

typedef struct span {
    const char *p;
    size_t n;
} span;

typedef struct cursor {
    const char *p;
    const char *end;
} cursor;

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */

static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Does s[0..n) equal the NUL-terminated word, ignoring ASCII case? */
static bool span_ieq(const char *s, size_t n, const char *word)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (word[i] == '\0' || to_lower(s[i]) != to_lower(word[i]))
            return false;
    return word[n] == '\0';
}

static char *memdup0(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static mt_status bad_batch(const char *why)
{
    return mt_error(400, MT_ERR_INVALID_INPUT, "The batch request is malformed: %s.", why);
}

static mt_status out_of_memory(void)
{
    return mt_oom();
}

static bool starts_with_i(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strlen(s) >= n && span_ieq(s, n, prefix);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static span span_trim(span s)
{
    while (s.n && is_space(*s.p))
        s.p++, s.n--;
    while (s.n && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

/* Next line of c without its LF or CRLF; false at the end. */
static bool line_next(cursor *c, span *line)
{
    const char *nl;
    if (c->p >= c->end)
        return false;
    nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    line->p = c->p;
    line->n = (size_t)((nl ? nl : c->end) - c->p);
    c->p = nl ? nl + 1 : c->end;
    if (line->n && line->p[line->n - 1] == '\r')
        line->n--;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Content-Type                                                              */

/* CT_OOM: memory ran out reading it (503, not a malformed batch). */
typedef enum ct_kind { CT_OTHER, CT_MULTIPART, CT_HTTP, CT_OOM } ct_kind;

/* RFC 2046 allows 1..70 characters and no trailing space; anything
 * printable is taken, since the delimiter match is exact anyway. */
static bool boundary_valid(span b)
{
    size_t i;
    if (b.n == 0 || b.n > AZ_BOUNDARY_MAX || b.p[b.n - 1] == ' ')
        return false;
    for (i = 0; i < b.n; i++)
        if (b.p[i] < 0x20 || b.p[i] > 0x7e)
            return false;
    return true;
}

/* A parameter value at *p: a quoted string (backslash escapes) or a token
 * up to ';'. Returns false on an unclosed quote. */
static bool param_value_read(const char **p, char *buf, size_t cap, span *v)
{
    const char *s = *p;
    size_t n = 0;
    if (*s != '"') {
        const char *semi = strchr(s, ';');
        v->p = s;
        v->n = semi ? (size_t)(semi - s) : strlen(s);
        *v = span_trim(*v);
        *p = s + (semi ? (size_t)(semi - s) : strlen(s));
        return true;
    }
    for (s++; *s && *s != '"'; s++) {
        if (*s == '\\' && s[1])
            s++;
        if (n < cap)
            buf[n] = *s;
        n++;
    }
    if (*s != '"')
        return false;
    *p = s + 1;
    v->p = buf;
    v->n = n;
    return true;
}

/* Reads "type/subtype; name=value; ..." and, when it has one, the valid
 * boundary parameter into *boundary (the caller frees it). */
static ct_kind content_type_read(const char *ct, char **boundary)
{
    char qbuf[AZ_BOUNDARY_MAX + 1];
    const char *p = ct, *semi;
    span media;
    ct_kind kind;

    *boundary = NULL;
    if (!ct)
        return CT_OTHER;
    semi = strchr(p, ';');
    media.p = p;
    media.n = semi ? (size_t)(semi - p) : strlen(p);
    media = span_trim(media);
    kind = span_ieq(media.p, media.n, "multipart/mixed")    ? CT_MULTIPART
           : span_ieq(media.p, media.n, "application/http") ? CT_HTTP
                                                            : CT_OTHER;
    for (p = semi; p && *p == ';';) {
        const char *eq;
        span name, value;
        p++;
        eq = strpbrk(p, "=;");
        if (!eq || *eq == ';') {
            p = eq;
            continue;
        }
        name.p = p;
        name.n = (size_t)(eq - p);
        name = span_trim(name);
        for (p = eq + 1; is_space(*p);)
            p++;
        if (!param_value_read(&p, qbuf, sizeof qbuf, &value))
            goto bad;
        if (span_ieq(name.p, name.n, "boundary") && !*boundary) {
            if (!boundary_valid(value))
                goto bad;
            *boundary = memdup0(value.p, value.n);
            if (!*boundary)
                return CT_OOM;
        }
        while (is_space(*p))
            p++;
    }
    return kind;
bad:
    free(*boundary);
    *boundary = NULL;
    return CT_OTHER;
}

/* ------------------------------------------------------------------------ */
/* Multipart splitting                                                       */

/* 0: not a delimiter line, 1: "--b", 2: the closing "--b--". Transport
 * padding (spaces, tabs) may follow. */
static int delimiter_kind(span line, const char *b, size_t bn)
{
    size_t i;
    int kind = 1;
    if (line.n < bn + 2 || line.p[0] != '-' || line.p[1] != '-' || memcmp(line.p + 2, b, bn) != 0)
        return 0;
    i = bn + 2;
    if (i + 2 <= line.n && line.p[i] == '-' && line.p[i + 1] == '-') {
        kind = 2;
        i += 2;
    }
    for (; i < line.n; i++)
        if (!is_space(line.p[i]))
            return 0;
    return kind;
}

/* The content of a part runs to the line break before the next delimiter;
 * that break belongs to the delimiter. */
static span part_span(const char *start, const char *delim)
{
    const char *end = delim;
    if (end > start && end[-1] == '\n')
        end--;
    if (end > start && end[-1] == '\r')
        end--;
    return (span){start, (size_t)(end - start)};
}

/* Splits body at boundary b into parts[0..max). *n counts the parts seen,
 * stopping at max + 1 so the caller can tell "too many" without reading
 * the rest. The body must be closed by "--b--"; what precedes the first
 * delimiter and follows the last is ignored, as MIME says. */
static mt_status multipart_split(span body, const char *b, span *parts, size_t max, size_t *n)
{
    cursor c = {body.p, body.p + body.n};
    size_t bn = strlen(b);
    const char *start = NULL;
    span line;

    *n = 0;
    while (line_next(&c, &line)) {
        int kind = delimiter_kind(line, b, bn);
        if (kind == 0)
            continue;
        if (start) {
            if (*n < max)
                parts[*n] = part_span(start, line.p);
            if (++*n > max)
                return mt_ok();
        }
        if (kind == 2)
            return mt_ok();
        start = c.p;
    }
    return bad_batch("a multipart body is not closed by its boundary");
}

/* ------------------------------------------------------------------------ */
/* Headers                                                                   */

static void headers_free(az_header *hs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(hs[i].name);
        free(hs[i].value);
    }
    free(hs);
}

static const char *header_find(const az_header *hs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (span_ieq(hs[i].name, strlen(hs[i].name), name))
            return hs[i].value;
    return NULL;
}

/* A line that starts with a space (obsolete folding) fails here. */
bool az_header_name_valid(const char *s, size_t n)
{
    size_t i;
    if (n == 0)
        return false;
    for (i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] > 0x7e)
            return false;
    return true;
}

static mt_status header_push(az_header **hs, size_t *n, span name, span value)
{
    az_header *grown;
    if (*n >= AZ_PART_HEADERS_MAX)
        return bad_batch("a part has too many headers");
    grown = realloc(*hs, (*n + 1) * sizeof *grown);
    if (!grown)
        return out_of_memory();
    *hs = grown;
    grown[*n].name = memdup0(name.p, name.n);
    grown[*n].value = memdup0(value.p, value.n);
    if (!grown[*n].name || !grown[*n].value) {
        free(grown[*n].name);
        free(grown[*n].value);
        return out_of_memory();
    }
    (*n)++;
    return mt_ok();
}

static mt_status header_add(az_header **hs, size_t *n, span line)
{
    const char *colon = memchr(line.p, ':', line.n);
    span name, value;

    if (!colon || memchr(line.p, '\0', line.n))
        return bad_batch("a header line is malformed");
    name.p = line.p;
    name.n = (size_t)(colon - line.p);
    value.p = colon + 1;
    value.n = line.n - name.n - 1;
    if (!az_header_name_valid(name.p, name.n))
        return bad_batch("a header name is malformed");
    return header_push(hs, n, name, span_trim(value));
}

/* Header lines up to a blank line or the end of c (a lone query's
 * headers may run straight into the closing delimiter). */
static mt_status headers_read(cursor *c, az_header **hs, size_t *n)
{
    span line;
    while (line_next(c, &line)) {
        mt_status st;
        if (line.n == 0)
            break;
        st = header_add(hs, n, line);
        if (!mt_is_ok(&st))
            return st;
    }
    return mt_ok();
}

/* Reads the MIME headers of a part: what its Content-Type is and, when
 * content_id is not NULL, a copy of its Content-ID (or NULL). */
static mt_status part_headers_read(cursor *c, ct_kind *kind, char **boundary, char **content_id)
{
    az_header *hs = NULL;
    size_t n = 0;
    mt_status st = headers_read(c, &hs, &n);
    *kind = CT_OTHER;
    *boundary = NULL;
    if (mt_is_ok(&st)) {
        *kind = content_type_read(header_find(hs, n, "Content-Type"), boundary);
        if (content_id && header_find(hs, n, "Content-ID")) {
            const char *v = header_find(hs, n, "Content-ID");
            if (!(*content_id = memdup0(v, strlen(v))))
                st = mt_oom();
        }
        if (*kind == CT_OOM)
            st = mt_oom();
    }
    headers_free(hs, n);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Operation URLs                                                            */

static bool account_like(span seg)
{
    size_t i;
    if (seg.n == 0 || seg.n > 63)
        return false;
    for (i = 0; i < seg.n; i++) {
        char c = seg.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

/* The path after the account segment (see the top of this file). */
static char *path_after_account(span path, bool relative)
{
    const char *slash;
    span first;
    if (relative || path.n == 0) {
        char *s = malloc(path.n + 2);
        if (!s)
            return NULL;
        s[0] = '/';
        memcpy(s + 1, path.p, path.n);
        s[path.n + 1] = '\0';
        return s;
    }
    slash = memchr(path.p + 1, '/', path.n - 1);
    first.p = path.p + 1;
    first.n = slash ? (size_t)(slash - first.p) : 0;
    if (slash && account_like(first))
        return memdup0(slash, (size_t)(path.p + path.n - slash));
    return memdup0(path.p, path.n);
}

static mt_status url_split(const char *url, char **path, char **query)
{
    const char *p = url, *end, *q;
    bool relative = false;
    span pathpart;

    if (starts_with_i(url, "http://"))
        p += 7;
    else if (starts_with_i(url, "https://"))
        p += 8;
    if (p != url) {
        const char *host_end = p + strcspn(p, "/?#");
        if (host_end == p)
            return bad_batch("an operation URL has no host");
        p = host_end;
    } else {
        relative = *p != '/';
    }
    end = p + strcspn(p, "#");
    q = memchr(p, '?', (size_t)(end - p));
    pathpart.p = p;
    pathpart.n = (size_t)((q ? q : end) - p);
    *path = path_after_account(pathpart, relative);
    if (q && q + 1 < end)
        *query = memdup0(q + 1, (size_t)(end - q - 1));
    if (!*path || (q && q + 1 < end && !*query))
        return out_of_memory();
    return mt_ok();
}

/* ------------------------------------------------------------------------ */
/* Operations                                                                */

static bool method_known(span m)
{
    static const char *const methods[] = {"POST", "PUT", "MERGE", "DELETE", "GET", "PATCH"};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
        if (m.n == strlen(methods[i]) && memcmp(m.p, methods[i], m.n) == 0)
            return true;
    return false;
}

/* Splits off the next space-separated word of *line. */
static span word_next(span *line)
{
    span w;
    while (line->n && *line->p == ' ')
        line->p++, line->n--;
    w.p = line->p;
    while (line->n && *line->p != ' ')
        line->p++, line->n--;
    w.n = (size_t)(line->p - w.p);
    return w;
}

/* "METHOD URL HTTP/1.1"; the version may be missing, as in OData's own
 * examples. Methods are case-sensitive, as in HTTP. */
static mt_status request_line_parse(span line, az_batch_part *p)
{
    span method, url, version;
    if (memchr(line.p, '\0', line.n))
        return bad_batch("a request line holds a NUL byte");
    method = word_next(&line);
    url = word_next(&line);
    version = word_next(&line);
    if (word_next(&line).n != 0 || url.n == 0)
        return bad_batch("a request line is not METHOD URL HTTP/1.1");
    if (version.n && (version.n < 5 || memcmp(version.p, "HTTP/", 5) != 0))
        return bad_batch("a request line has no HTTP version");
    if (!method_known(method))
        return bad_batch("an operation uses a method a batch does not allow");
    p->method = memdup0(method.p, method.n);
    p->url = memdup0(url.p, url.n);
    if (!p->method || !p->url)
        return out_of_memory();
    return url_split(p->url, &p->path, &p->query);
}

/* Blank lines around a body carry nothing (see the top of this file). */
static mt_status body_read(cursor *c, az_batch_part *p)
{
    const char *b = c->p, *e = c->end;
    while (b < e && (*b == '\r' || *b == '\n'))
        b++;
    while (e > b && (e[-1] == '\r' || e[-1] == '\n'))
        e--;
    p->len = (size_t)(e - b);
    p->body = memdup0(b, p->len);
    return p->body ? mt_ok() : out_of_memory();
}

/* OData lets a client put Content-ID among the MIME headers of a part
 * rather than the request's; either way it ends up among the request's
 * headers, where az_batch_write looks for it. */
static mt_status content_id_adopt(az_batch_part *p, const char *content_id)
{
    if (!content_id || header_find(p->headers, p->nheaders, "Content-ID"))
        return mt_ok();
    return header_push(&p->headers, &p->nheaders, (span){"Content-ID", 10},
                       (span){content_id, strlen(content_id)});
}

/* One application/http part: its MIME headers, then the request. */
static mt_status operation_parse(span content, az_batch_part *p)
{
    cursor c = {content.p, content.p + content.n};
    char *nested = NULL, *content_id = NULL;
    ct_kind kind;
    span line = {NULL, 0};
    mt_status st = part_headers_read(&c, &kind, &nested, &content_id);

    free(nested);
    if (mt_is_ok(&st) && kind != CT_HTTP)
        st = bad_batch("an operation is not an application/http part");
    while (mt_is_ok(&st) && line_next(&c, &line) && line.n == 0)
        ;
    if (mt_is_ok(&st) && line.n == 0)
        st = bad_batch("an operation has no request line");
    if (mt_is_ok(&st))
        st = request_line_parse(line, p);
    if (mt_is_ok(&st))
        st = headers_read(&c, &p->headers, &p->nheaders);
    if (mt_is_ok(&st))
        st = content_id_adopt(p, content_id);
    if (mt_is_ok(&st))
        st = body_read(&c, p);
    free(content_id);
    return st;
}

static mt_status changeset_parse(span body, az_batch *out)
{
    span ops[MT_BATCH_MAX];
    size_t i, n;
    mt_status st = multipart_split(body, out->changeset_boundary, ops, MT_BATCH_MAX, &n);

    if (!mt_is_ok(&st))
        return st;
    if (n > MT_BATCH_MAX) {
        st = mt_error(400, MT_ERR_INVALID_INPUT, AZ_TOO_MANY_OPS);
        st.index = MT_BATCH_MAX - 1;
        return st;
    }
    if (n == 0)
        return bad_batch("the change set holds no operations");
    out->parts = calloc(n, sizeof *out->parts);
    if (!out->parts)
        return out_of_memory();
    out->n = n;
    for (i = 0; i < n; i++) {
        st = operation_parse(ops[i], &out->parts[i]);
        if (mt_is_ok(&st) && strcmp(out->parts[i].method, "GET") == 0)
            st = bad_batch("a query may not share a batch with changes");
        if (!mt_is_ok(&st)) {
            st.index = (int)i;
            return st;
        }
    }
    return mt_ok();
}

bool az_batch_too_many(const mt_status *st)
{
    return st->http == 400 && strcmp(st->code, MT_ERR_INVALID_INPUT) == 0 &&
           strcmp(st->message, AZ_TOO_MANY_OPS) == 0;
}

/* The lone query of a batch that holds no change set. */
static mt_status query_part_parse(span part, az_batch *out)
{
    mt_status st;
    out->parts = calloc(1, sizeof *out->parts);
    if (!out->parts)
        return out_of_memory();
    out->n = 1;
    st = operation_parse(part, &out->parts[0]);
    if (mt_is_ok(&st) && strcmp(out->parts[0].method, "GET") != 0)
        st = bad_batch("an operation outside a change set must be a query");
    return st;
}

/* The single part of the batch: a change set or a query. */
static mt_status batch_part_parse(span part, az_batch *out)
{
    cursor c = {part.p, part.p + part.n};
    char *boundary = NULL;
    ct_kind kind;
    mt_status st = part_headers_read(&c, &kind, &boundary, NULL);

    if (!mt_is_ok(&st))
        return st;
    if (kind == CT_MULTIPART && boundary) {
        out->changeset_boundary = boundary;
        return changeset_parse((span){c.p, (size_t)(c.end - c.p)}, out);
    }
    free(boundary);
    if (kind == CT_HTTP)
        return query_part_parse(part, out);
    return bad_batch("the batch holds neither a change set nor a query");
}

mt_status az_batch_parse(const char *content_type, const char *body, size_t len, az_batch *out)
{
    span part;
    size_t n;
    mt_status st;

    memset(out, 0, sizeof *out);
    if (!body && len)
        return bad_batch("no body");
    ct_kind kind = content_type_read(content_type, &out->boundary);
    if (kind != CT_MULTIPART || !out->boundary) {
        az_batch_clear(out);
        return kind == CT_OOM
                   ? mt_oom()
                   : bad_batch("the Content-Type is not multipart/mixed with a boundary");
    }
    st = multipart_split((span){body ? body : "", len}, out->boundary, &part, 1, &n);
    if (mt_is_ok(&st) && n == 0)
        st = bad_batch("the batch is empty");
    else if (mt_is_ok(&st) && n > 1)
        st = bad_batch("a batch holds one change set or one query");
    if (mt_is_ok(&st))
        st = batch_part_parse(part, out);
    if (!mt_is_ok(&st))
        az_batch_clear(out);
    return st;
}

static void part_clear(az_batch_part *p)
{
    free(p->method);
    free(p->url);
    free(p->path);
    free(p->query);
    headers_free(p->headers, p->nheaders);
    free(p->body);
}

void az_batch_clear(az_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        part_clear(&b->parts[i]);
    free(b->parts);
    free(b->boundary);
    free(b->changeset_boundary);
    memset(b, 0, sizeof *b);
}

const char *az_batch_part_header(const az_batch_part *p, const char *name)
{
    if (!p || !name)
        return NULL;
    return header_find(p->headers, p->nheaders, name);
}

/*
 * az_http_parse.c -- the reader of one HTTP/1.1 answer of the table
 * service, fed the bytes as they arrive (az_conn.c), no I/O of its own.
 *
 * What it takes: a status line "HTTP/1.x NNN reason", header lines ending
 * CRLF, then a body delimited by Content-Length, by chunked transfer coding
 * (chunk extensions and trailers skipped), or by the end of the connection
 * when neither is given. Interim 1xx answers are skipped (the client never
 * sends Expect: 100-continue, but a server may still send one). 204 and 304
 * have no body. Any other transfer coding, a Content-Length that is not a
 * number or disagrees with another, a head over AZ_HEAD_MAX or a body over
 * AZ_BODY_MAX end the answer as unreadable rather than guessed at: the
 * caller then treats the outcome of the request as unknown.
 *
 * The headers the client reads (ETag, Content-Type, the continuation
 * headers) go to az_resp_header, the body to az_resp_body (both here, and
 * used by the libcurl path too); whether the server keeps the connection
 * open is p->close.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "az_client_internal.h"

#define AZ_HEAD_MAX ((size_t)64 << 10)
#define AZ_LINE_MAX 4096 /* a chunk-size line or a trailer line */

void az_resp_clear(az_resp *r)
{
    free(r->body.p);
    free(r->next_pk);
    free(r->next_rk);
    free(r->next_table);
    memset(r, 0, sizeof *r);
}

bool az_header_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

void az_copy_field(char *dst, size_t cap, const char *v, size_t n)
{
    if (n >= cap)
        n = 0; /* an oversized value is as good as absent */
    memcpy(dst, v, n);
    dst[n] = '\0';
}

bool az_resp_header(az_resp *r, const char *name, size_t nl, const char *v, size_t vl)
{
    if (!name) { /* a new answer begins */
        r->etag[0] = r->content_type[0] = '\0';
        return true;
    }
    char **next = NULL;
    if (az_header_is(name, nl, "ETag"))
        az_copy_field(r->etag, sizeof r->etag, v, vl);
    else if (az_header_is(name, nl, "Content-Type"))
        az_copy_field(r->content_type, sizeof r->content_type, v, vl);
    else if (az_header_is(name, nl, "x-ms-continuation-NextPartitionKey"))
        next = &r->next_pk;
    else if (az_header_is(name, nl, "x-ms-continuation-NextRowKey"))
        next = &r->next_rk;
    else if (az_header_is(name, nl, "x-ms-continuation-NextTableName"))
        next = &r->next_table;
    if (next && vl) {
        free(*next);
        if (!(*next = strndup(v, vl)))
            return false;
    }
    return true;
}

bool az_resp_body(az_resp *r, const char *s, size_t n)
{
    if (r->body.len + n > AZ_BODY_MAX) {
        r->too_large = true;
        return false;
    }
    mt_buf_put(&r->body, s, n);
    return !r->body.oom;
}

/* ------------------------------------------------------------------------ */
/* The answer, byte by byte.                                                 */

void az_hparse_init(az_hparse *p, az_resp *r)
{
    memset(p, 0, sizeof *p);
    p->r = r;
}

void az_hparse_clear(az_hparse *p)
{
    mt_buf_clear(&p->line);
}

/* Does the comma-separated list v[0..n) hold token tok (case ignored)? */
static bool list_has(const char *v, size_t n, const char *tok, bool last_only)
{
    size_t tl = strlen(tok);
    bool found = false;
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        bool is = e - s == tl && strncasecmp(v + s, tok, tl) == 0;
        if (e > s)
            found = last_only ? is : found || is;
    }
    return found;
}

/* A decimal number of at most 18 digits, nothing else. */
static bool parse_len(const char *v, size_t n, uint64_t *out)
{
    if (n == 0 || n > 18)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return true;
}

/* "HTTP/1.x NNN ...": the status, and whether the version is 1.0. */
static bool parse_status_line(const char *s, size_t n, long *status, bool *v10)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return false;
    for (int i = 9; i < 12; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    if (n > 12 && s[12] != ' ')
        return false;
    *status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    *v10 = s[7] == '0';
    return *status >= 100;
}

typedef struct hp_head {
    bool v10, keep_alive, chunked, has_len;
    uint64_t len;
} hp_head;

/* One header line s[0..n) (no CRLF). */
static bool parse_header(az_hparse *p, hp_head *h, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s)
        return false;
    size_t nl = (size_t)(colon - s);
    for (size_t i = 0; i < nl; i++)
        if (s[i] == ' ' || s[i] == '\t' || (unsigned char)s[i] < 0x21)
            return false;
    const char *v = colon + 1;
    size_t vl = n - nl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    if (az_header_is(s, nl, "Content-Length")) {
        uint64_t x;
        if (!parse_len(v, vl, &x) || (h->has_len && x != h->len))
            return false;
        h->has_len = true;
        h->len = x;
    } else if (az_header_is(s, nl, "Transfer-Encoding")) {
        /* Only chunked, and last: no other coding is asked for. */
        if (!list_has(v, vl, "chunked", true) || list_has(v, vl, "gzip", false) ||
            list_has(v, vl, "deflate", false) || list_has(v, vl, "compress", false))
            return false;
        h->chunked = true;
    } else if (az_header_is(s, nl, "Connection")) {
        if (list_has(v, vl, "close", false))
            p->close = true;
        if (list_has(v, vl, "keep-alive", false))
            h->keep_alive = true;
    } else {
        return az_resp_header(p->r, s, nl, v, vl);
    }
    return true;
}

/* The head s[0..n), its final CRLF CRLF included. */
static az_hp_rc parse_head(az_hparse *p, const char *s, size_t n)
{
    hp_head h = {0};
    const char *end = s + n - 2; /* the empty line */
    const char *eol = memchr(s, '\r', n);
    if (!eol || eol[1] != '\n' || !parse_status_line(s, (size_t)(eol - s), &p->status, &h.v10))
        return AZ_HP_BAD;
    p->close = false;
    az_resp_header(p->r, NULL, 0, NULL, 0); /* a new answer begins */
    for (const char *l = eol + 2; l < end; l = eol + 2) {
        eol = memchr(l, '\r', (size_t)(end - l) + 1);
        if (!eol || eol[1] != '\n' || !parse_header(p, &h, l, (size_t)(eol - l)))
            return AZ_HP_BAD;
    }
    if (h.v10 && !h.keep_alive)
        p->close = true;
    if (p->status < 200) { /* interim: the real answer follows */
        p->state = AZ_HP_HEAD;
        return p->status == 101 ? AZ_HP_BAD : AZ_HP_MORE;
    }
    if (p->status == 204 || p->status == 304) {
        p->state = AZ_HP_DONE;
    } else if (h.chunked) {
        p->close = p->close || h.has_len; /* both: a smuggling shape; do not reuse */
        p->state = AZ_HP_CHUNK_SIZE;
    } else if (h.has_len) {
        if (h.len > AZ_BODY_MAX)
            return AZ_HP_BIG;
        p->remain = h.len;
        p->state = h.len ? AZ_HP_LEN : AZ_HP_DONE;
    } else {
        p->close = true;
        p->state = AZ_HP_EOF;
    }
    return AZ_HP_MORE;
}

/* Gathers the head; *k bytes of s used. */
static az_hp_rc feed_head(az_hparse *p, const char *s, size_t n, size_t *k)
{
    size_t old = p->line.len;
    size_t take = n;
    if (old + take > AZ_HEAD_MAX)
        take = AZ_HEAD_MAX - old;
    mt_buf_put(&p->line, s, take);
    if (p->line.oom)
        return AZ_HP_BAD;
    size_t from = old > 3 ? old - 3 : 0;
    const char *b = p->line.p;
    for (size_t i = from; i + 4 <= p->line.len; i++) {
        if (b[i] == '\r' && b[i + 1] == '\n' && b[i + 2] == '\r' && b[i + 3] == '\n') {
            size_t hl = i + 4;
            *k = hl - old;
            az_hp_rc rc = parse_head(p, b, hl);
            p->line.len = 0;
            return rc;
        }
    }
    *k = take;
    return p->line.len >= AZ_HEAD_MAX ? AZ_HP_BAD : AZ_HP_MORE;
}

/* Gathers one line (chunk size, chunk end, trailer) into p->line; true
 * once it is whole, its CRLF dropped. */
static bool feed_line(az_hparse *p, const char *s, size_t n, size_t *k, bool *bad)
{
    const char *nl = memchr(s, '\n', n);
    size_t take = nl ? (size_t)(nl - s) + 1 : n;
    *k = take;
    if (p->line.len + take > AZ_LINE_MAX) {
        *bad = true;
        return false;
    }
    mt_buf_put(&p->line, s, take);
    if (p->line.oom) {
        *bad = true;
        return false;
    }
    if (!nl)
        return false;
    if (p->line.len < 2 || p->line.p[p->line.len - 2] != '\r') {
        *bad = true;
        return false;
    }
    p->line.len -= 2;
    return true;
}

/* "1a3;ext": the chunk's size. */
static bool parse_chunk_size(const char *s, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    size_t i = 0;
    for (; i < n && i < 16; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0)
            break;
        x = x * 16 + (uint64_t)d;
    }
    if (i == 0 || i == 16 || (i < n && s[i] != ';' && s[i] != ' ' && s[i] != '\t'))
        return false;
    *out = x;
    return true;
}

static az_hp_rc feed_chunked(az_hparse *p, const char *s, size_t n, size_t *k)
{
    bool bad = false;
    switch (p->state) {
    case AZ_HP_CHUNK_SIZE:
        if (!feed_line(p, s, n, k, &bad))
            return bad ? AZ_HP_BAD : AZ_HP_MORE;
        if (!parse_chunk_size(p->line.p, p->line.len, &p->remain))
            return AZ_HP_BAD;
        p->line.len = 0;
        if (p->remain > AZ_BODY_MAX)
            return AZ_HP_BIG;
        p->state = p->remain ? AZ_HP_CHUNK_DATA : AZ_HP_TRAILER;
        return AZ_HP_MORE;
    case AZ_HP_CHUNK_END:
        if (!feed_line(p, s, n, k, &bad))
            return bad ? AZ_HP_BAD : AZ_HP_MORE;
        if (p->line.len != 0)
            return AZ_HP_BAD;
        p->state = AZ_HP_CHUNK_SIZE;
        return AZ_HP_MORE;
    default: /* AZ_HP_TRAILER: lines up to an empty one */
        if (!feed_line(p, s, n, k, &bad))
            return bad ? AZ_HP_BAD : AZ_HP_MORE;
        if (p->line.len == 0)
            p->state = AZ_HP_DONE;
        p->line.len = 0;
        return AZ_HP_MORE;
    }
}

/* Body bytes: at most p->remain of them unless the body runs to EOF. */
static az_hp_rc feed_body(az_hparse *p, const char *s, size_t n, size_t *k)
{
    size_t take = n;
    if (p->state != AZ_HP_EOF && take > p->remain)
        take = (size_t)p->remain;
    *k = take;
    if (!az_resp_body(p->r, s, take))
        return p->r->too_large ? AZ_HP_BIG : AZ_HP_BAD;
    if (p->state == AZ_HP_EOF)
        return AZ_HP_MORE;
    p->remain -= take;
    if (p->remain == 0)
        p->state = p->state == AZ_HP_LEN ? AZ_HP_DONE : AZ_HP_CHUNK_END;
    return AZ_HP_MORE;
}

az_hp_rc az_hparse_feed(az_hparse *p, const char *s, size_t n, size_t *used)
{
    size_t off = 0;
    while (p->state != AZ_HP_DONE && off < n) {
        size_t k = 0;
        az_hp_rc rc;
        if (p->state == AZ_HP_HEAD)
            rc = feed_head(p, s + off, n - off, &k);
        else if (p->state == AZ_HP_LEN || p->state == AZ_HP_CHUNK_DATA || p->state == AZ_HP_EOF)
            rc = feed_body(p, s + off, n - off, &k);
        else
            rc = feed_chunked(p, s + off, n - off, &k);
        off += k;
        if (rc != AZ_HP_MORE) {
            *used = off;
            return rc;
        }
    }
    *used = off;
    return p->state == AZ_HP_DONE ? AZ_HP_END : AZ_HP_MORE;
}

az_hp_rc az_hparse_eof(az_hparse *p)
{
    if (p->state == AZ_HP_EOF) {
        p->state = AZ_HP_DONE;
        return AZ_HP_END;
    }
    return p->state == AZ_HP_DONE ? AZ_HP_END : AZ_HP_BAD;
}

/*
 * az_batch_write.c -- the multipart response to an entity group
 * transaction, whose request az_batch.c reads.
 *
 * The writer lays a response out the way the service does and the SDKs
 * parse it: "--batchresponse_<uuid>", a change set "--changesetresponse_
 * <uuid>" (split on by both JavaScript SDKs), and per operation
 * "HTTP/1.1 <status> <reason>" with CRLF line ends (one SDK splits on
 * "\r\n") and Content-ID echoed after the status line, where the older SDK
 * reads it to match responses to requests.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "az_internal.h"

/* ------------------------------------------------------------------------ */
/* Boundaries and status lines.                                              */

/* Boundaries only need to be unlikely to occur in a body; random bytes
 * from OpenSSL are thread-safe and need no shared counter. Should the
 * generator fail, the clock and a stack address still make a boundary
 * that is well-formed, which is all a parser checks. */
static void uuid_make(char out[37])
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof r) != 1) {
        struct timespec ts;
        uint64_t x;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)&ts;
        for (size_t i = 0; i < sizeof r; i++) {
            x ^= x >> 33;
            x *= UINT64_C(0xff51afd7ed558ccd);
            r[i] = (unsigned char)(x >> 56);
        }
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

static const char *reason_phrase(int status)
{
    static const struct {
        int status;
        const char *reason;
    } reasons[] = {{200, "OK"},
                   {201, "Created"},
                   {202, "Accepted"},
                   {204, "No Content"},
                   {400, "Bad Request"},
                   {403, "Forbidden"},
                   {404, "Not Found"},
                   {405, "Method Not Allowed"},
                   {409, "Conflict"},
                   {411, "Length Required"},
                   {412, "Precondition Failed"},
                   {413, "Request Entity Too Large"},
                   {415, "Unsupported Media Type"},
                   {500, "Internal Server Error"},
                   {501, "Not Implemented"},
                   {503, "Service Unavailable"}};
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Unknown";
}

static bool reply_has(const az_batch_reply *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (r->headers[i].name && strcasecmp(r->headers[i].name, name) == 0)
            return true;
    return false;
}

/* Writes "name: value" with CR and LF in the value turned into spaces, so
 * a header can never end early and smuggle in another one. Headers with
 * unusable names are left out. */
static void header_write(mt_buf *b, const char *name, const char *value)
{
    if (!name || !az_header_name_valid(name, strlen(name)) || strchr(name, ':'))
        return;
    mt_buf_puts(b, name);
    mt_buf_puts(b, ": ");
    for (const char *v = value ? value : ""; *v; v++)
        mt_buf_put(b, (*v == '\r' || *v == '\n') ? " " : v, 1);
    mt_buf_puts(b, "\r\n");
}

/* One operation's response, the way the service writes it: the status
 * line, Content-ID, the service's standing headers unless the caller set
 * them, the caller's headers, a blank line, the body. */
static void reply_write(mt_buf *b, const az_batch_reply *r, const char *content_id)
{
    int status = (r->status >= 100 && r->status <= 599) ? r->status : 500;
    mt_buf_puts(b, "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n");
    mt_buf_printf(b, "HTTP/1.1 %d %s\r\n", status, reason_phrase(status));
    if (content_id && !reply_has(r, "Content-ID"))
        header_write(b, "Content-ID", content_id);
    if (!reply_has(r, "X-Content-Type-Options"))
        header_write(b, "X-Content-Type-Options", "nosniff");
    if (!reply_has(r, "Cache-Control"))
        header_write(b, "Cache-Control", "no-cache");
    if (!reply_has(r, "DataServiceVersion"))
        header_write(b, "DataServiceVersion", status == 204 ? "1.0;" : "3.0;");
    for (size_t i = 0; i < r->nheaders; i++)
        header_write(b, r->headers[i].name, r->headers[i].value);
    mt_buf_puts(b, "\r\n");
    if (r->body && r->len)
        mt_buf_put(b, r->body, r->len);
    mt_buf_puts(b, "\r\n");
}

/* Content-ID is echoed only when every operation has its reply; a lone
 * failing reply cannot be matched to its request here, so the caller
 * puts the Content-ID among its headers when it wants one. */
static const char *content_id_for(const az_batch *req, size_t n, size_t i)
{
    if (!req || n != req->n || i >= req->n)
        return NULL;
    return az_batch_part_header(&req->parts[i], "Content-ID");
}

char *az_batch_write(const az_batch *req, const az_batch_reply *replies, size_t n,
                     char **content_type, size_t *len)
{
    char bid[37], cid[37];
    bool changeset = !req || req->changeset_boundary;
    mt_buf b = {0};

    *content_type = NULL;
    *len = 0;
    if (n && !replies)
        return NULL;
    uuid_make(bid);
    uuid_make(cid);
    if (changeset) {
        mt_buf_printf(&b, "--batchresponse_%s\r\n", bid);
        mt_buf_printf(&b, "Content-Type: multipart/mixed; boundary=changesetresponse_%s\r\n\r\n",
                      cid);
    }
    for (size_t i = 0; i < n; i++) {
        if (changeset)
            mt_buf_printf(&b, "--changesetresponse_%s\r\n", cid);
        else
            mt_buf_printf(&b, "--batchresponse_%s\r\n", bid);
        reply_write(&b, &replies[i], content_id_for(req, n, i));
    }
    if (changeset)
        mt_buf_printf(&b, "--changesetresponse_%s--\r\n", cid);
    mt_buf_printf(&b, "--batchresponse_%s--\r\n", bid);
    if (!b.oom) {
        char ct[80];
        snprintf(ct, sizeof ct, "multipart/mixed; boundary=batchresponse_%s", bid);
        *content_type = strdup(ct);
    }
    if (b.oom || !*content_type) {
        mt_buf_clear(&b);
        free(*content_type);
        *content_type = NULL;
        return NULL;
    }
    return mt_buf_take(&b, len);
}

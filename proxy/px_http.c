/*
 * px_http.c -- what the proxy's two libmicrohttpd listeners (the table
 * endpoint in px_server.c, the admin endpoint in px_admin_http.c) share:
 * request bodies within limits, raw query strings, sending a px_resp,
 * addresses and start-up messages.
 *
 * libmicrohttpd normally unescapes the URL before we see it; a Shared Key
 * signature covers the path as the client sent it, so px_http_keep_raw
 * keeps paths and query arguments raw and the wire library decodes them.
 */
#include "px_http.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* Rebuilds the raw query string from libmicrohttpd's (unescaped-as-raw)
 * arguments, in order. */
static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    mt_buf *b = cls;
    if (b->len)
        mt_buf_puts(b, "&");
    mt_buf_puts(b, key);
    if (value) {
        mt_buf_puts(b, "=");
        mt_buf_puts(b, value);
    }
    return MHD_YES;
}

bool px_http_raw_query(struct MHD_Connection *c, char **out)
{
    mt_buf b = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &b);
    bool any = b.p || b.oom;
    *out = any ? mt_buf_take(&b, NULL) : NULL;
    return !any || *out;
}

/* The answer when even the answer cannot be built: 503 ServerBusy with a
 * fixed body, nothing allocated here (libmicrohttpd copies the headers). */
static enum MHD_Result px_http_send_busy(struct MHD_Connection *c)
{
    static const char body[] = "{\"odata.error\":{\"code\":\"ServerBusy\",\"message\":{"
                               "\"lang\":\"en-US\",\"value\":\"The server is out of memory. "
                               "Please retry.\"}}}";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO; /* closes the connection: the client retries */
    MHD_add_response_header(resp, "Content-Type", "application/json;odata=minimalmetadata");
    MHD_add_response_header(resp, "x-ms-error-code", MT_ERR_SERVER_BUSY);
    MHD_add_response_header(resp, "Retry-After", "1");
    enum MHD_Result ret = MHD_queue_response(c, 503, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result px_http_send(struct MHD_Connection *c, px_resp *r)
{
    if (r->oom) {
        px_resp_clear(r);
        return px_http_send_busy(c);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->len, r->body ? r->body : (void *)"",
                                        r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        px_resp_clear(r);
        return px_http_send_busy(c);
    }
    r->body = NULL;
    for (size_t i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)(r->status ? r->status : 500), resp);
    MHD_destroy_response(resp);
    px_resp_clear(r);
    return ret;
}

bool px_http_upload_step(void **con_cls, const char *data, size_t *size, px_upload **out)
{
    px_upload *up = *con_cls;
    if (!up) {
        *con_cls = up = calloc(1, sizeof(px_upload));
        if (!up) {
            *out = NULL; /* the caller answers 503 at once */
            return true;
        }
        return false;
    }
    *out = up;
    if (*size == 0)
        return true;
    if (!up->too_large && !up->oom && up->len + *size > PX_MAX_BODY) {
        up->too_large = true;
        free(up->buf);
        up->buf = NULL;
        up->len = 0;
    }
    if (!up->too_large && !up->oom && up->len + *size + 1 > up->cap) {
        size_t cap = (up->len + *size + 1) * 2;
        char *grown = realloc(up->buf, cap);
        if (grown) {
            up->buf = grown;
            up->cap = cap;
        } else { /* read the rest, keep none of it, answer 503 */
            up->oom = true;
            free(up->buf);
            up->buf = NULL;
            up->len = up->cap = 0;
        }
    }
    if (!up->too_large && !up->oom) {
        memcpy(up->buf + up->len, data, *size);
        up->len += *size;
        up->buf[up->len] = '\0';
    }
    *size = 0;
    return false;
}

void px_http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                       enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    px_upload *up = *con_cls;
    if (up) {
        free(up->buf);
        px_resp_clear(&up->resp);
        free(up);
    }
    *con_cls = NULL;
}

size_t px_http_keep_raw(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/* libmicrohttpd's own messages (a failed bind, say) go to the debug log:
 * start-up failures are reported once, in one line, by start_one. */
void px_http_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (!px_log_enabled(PX_LOG_DEBUG))
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    px_log(PX_LOG_DEBUG, "http server: %s", line);
}

bool px_http_addr(const char *host, int port, struct sockaddr_in *sa, FILE *err)
{
    *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        fprintf(err, "mtable-proxy: cannot listen on '%s:%d': not an IPv4 address\n", host, port);
        return false;
    }
    return true;
}

void px_http_bind_failed(const char *host, int port, FILE *err)
{
    fprintf(err,
            "mtable-proxy: cannot listen on %s:%d: the port is in use or not permitted "
            "(choose another with --listen / --admin-listen)\n",
            host, port);
}

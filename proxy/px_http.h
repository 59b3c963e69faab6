/*
 * px_http.h -- what the proxy's two listeners share on libmicrohttpd:
 * request bodies, raw query strings, sending a px_resp, addresses and
 * messages. Internal to proxy/.
 */
#ifndef PX_HTTP_H
#define PX_HTTP_H

#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>

#include "px.h"

/* Per-connection state: the body as it arrives, and for the admin
 * listener a request parked or handed to a worker and its answer. */
typedef struct px_upload {
    char *buf;
    size_t len, cap;
    bool too_large;
    bool oom;     /* memory ran out while it arrived: answer 503 */
    int stage;    /* admin listener: see px_admin_http.c */
    px_resp resp; /* admin listener: a worker's answer */
} px_upload;

/* Accumulates the body into *con_cls; true once the whole request is in
 * (*out is then the upload, or NULL when memory for it ran out: answer
 * 503 at once). */
bool px_http_upload_step(void **con_cls, const char *data, size_t *size, px_upload **out);
/* MHD_OPTION_NOTIFY_COMPLETED: frees the upload. */
void px_http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                       enum MHD_RequestTerminationCode toe);
/* The query string as sent into *out (malloc'd; NULL when there is none).
 * False when memory ran out. */
bool px_http_raw_query(struct MHD_Connection *c, char **out);
/* Queues r (and clears it); 503 ServerBusy instead when r->oom is set or
 * the response cannot be made. */
enum MHD_Result px_http_send(struct MHD_Connection *c, px_resp *r);
/* MHD_OPTION_UNESCAPE_CALLBACK that keeps URLs and arguments raw. */
size_t px_http_keep_raw(void *cls, struct MHD_Connection *c, char *s);
/* MHD_OPTION_EXTERNAL_LOGGER: libmicrohttpd's messages at debug level. */
void px_http_log(void *cls, const char *fmt, va_list ap);
/* host:port as an IPv4 address; false with one line on err. */
bool px_http_addr(const char *host, int port, struct sockaddr_in *sa, FILE *err);
/* The one line for a listener that could not bind. */
void px_http_bind_failed(const char *host, int port, FILE *err);

#endif

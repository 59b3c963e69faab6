/*
 * px_reply.h -- a table-endpoint request and its response, and the helpers
 * (px_reply.c) that read the one and build the other. The listener
 * (px_server.c) fills a px_req; a handler answers into a px_resp; both
 * include this header, and it includes nothing of theirs.
 */
#ifndef PX_REPLY_H
#define PX_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "az.h"
#include "mt.h"

#define PX_MAX_HEADERS 24
/* Bytes of header text a response holds in itself: a usual response's
 * headers fit, so adding one allocates nothing. */
#define PX_RESP_TEXT 768

typedef struct px_app px_app; /* px.h */

/* ------------------------------------------------------------------------ */
/* One table-endpoint request and its response.                             */

typedef struct px_req {
    px_app *app;
    void *conn; /* struct MHD_Connection * */
    const char *method;
    const char *path;  /* after the account segment, still encoded */
    const char *query; /* raw, NULL when none */
    const char *body;
    size_t len;
    az_resource res;
    az_format fmt;
    az_metadata md;
    char base_url[256];
    char request_id[40];
    char version[32];
    az_grant grant;
} px_req;

typedef struct px_resp {
    int status;
    az_header headers[PX_MAX_HEADERS];
    size_t nheaders;
    char *body; /* owned */
    size_t len;
    bool oom; /* memory ran out building it: it goes out as 503 ServerBusy */
    /* Where the headers' names and values are: in text while it has room,
     * else allocated (bit i of heap set for header i). */
    unsigned heap;
    size_t used;
    char text[PX_RESP_TEXT];
} px_resp;

/* A header of the request (case-insensitive), or NULL. */
const char *px_req_header(const px_req *q, const char *name);
/* Adds a response header (copies both, into r itself when they fit;
 * sets r->oom when it cannot). */
void px_resp_header(px_resp *r, const char *name, const char *value);
/* Sets an error response for st in the request's format. */
void px_resp_error(const px_req *q, px_resp *r, const mt_status *st);
/* Sets a payload response with the content type of the request's format.
 * Takes body; a NULL body is a writer that ran out of memory (r->oom). */
void px_resp_payload(const px_req *q, px_resp *r, int status, char *body, size_t len);
void px_resp_clear(px_resp *r);

/* Continuation tokens: opaque, header-safe encodings of a key. NULL when
 * out of memory; decode also when tok is not a token. */
char *px_token_encode(const char *s);
char *px_token_decode(const char *tok);

#endif

/*
 * az_client_internal.h -- declarations shared between the files of the
 * backend client (azure/client/) and nowhere else: the table
 * (az_client.c), its wire forms (az_client_wire.c) and its requests
 * (az_client_http.c). The client reaches the wire library through az.h
 * only.
 */
#ifndef AZ_CLIENT_INTERNAL_H
#define AZ_CLIENT_INTERNAL_H

#include "az.h"
#include "az_client.h"

#define AZ_ACCEPT "application/json;odata=minimalmetadata"
#define AZ_JSON "application/json"
#define AZ_ERR_TABLE_NOT_FOUND "TableNotFound"

typedef struct az_table {
    mt_table base;
    az_client *c; /* borrowed, unless owns_client */
    bool owns_client;
    char name[64];
} az_table;

/* Which attempts of a request may be sent again (az_client_http.c). */
typedef enum az_replay {
    AZ_REPLAY_ANY,   /* reads: retry on 5xx, timeouts, transport errors */
    AZ_REPLAY_TOKEN, /* a write that can apply at most once */
    AZ_REPLAY_NONE,  /* other writes: only when the request never left */
} az_replay;

typedef struct az_req {
    const char *method;
    const char *path;  /* after the endpoint, from '/', percent-encoded */
    const char *query; /* percent-encoded, without '?', or NULL */
    const char *content_type;
    const char *body;
    size_t len;
    const char *if_match;
    bool no_content; /* Prefer: return-no-content */
    az_replay replay;
} az_req;

typedef struct az_resp {
    long status;
    mt_buf body;
    bool too_large;
    bool sent; /* some of the request went out */
    char etag[MT_ETAG_MAX];
    char content_type[256];
    char *next_pk, *next_rk, *next_table; /* continuation headers */
    bool ambiguous;                       /* an earlier attempt had an unknown outcome */
    int requests_out;                     /* times curl sent the request in one attempt */
    bool bearer;                          /* sent with a token of this generation: */
    unsigned token_gen;
} az_resp;

#define AZ_ERR_SIZE 256 /* why an attempt failed */

/* How one attempt ended. */
typedef enum az_outcome {
    AZ_ANSWERED, /* an answer is in the az_resp */
    AZ_NOT_SENT, /* the request provably never left */
    AZ_UNKNOWN,  /* sent, no answer: it may have applied */
    AZ_FATAL,    /* retrying cannot help */
} az_outcome;

/* Runs q under its retry class. On success *r holds an answer (any status:
 * the caller reads it, and r->ambiguous says whether an earlier attempt's
 * outcome was unknown). A status is returned only when there is no answer
 * to read. The caller clears *r with az_resp_clear either way. */
mt_status az_call(az_client *c, const az_req *q, az_resp *r);
void az_resp_clear(az_resp *r);
/* The status of an error answer (status >= 300): code and message from
 * the body, the "<index>:" prefix Azure puts on batch errors into .index. */
mt_status az_error_of(long status, const char *body, size_t len);
mt_status az_resp_error(const az_resp *r);
/* 404, 409 and 412: what a replay of an applied write would answer. */
bool az_is_state_failure(int http);
mt_status az_oom(void);
mt_status az_bad_reply(const char *what);
/* 500 OperationTimedOut: the write may have applied. */
mt_status az_outcome_unknown(const char *why);
/* nhex random hex digits and a NUL into out: boundaries and request ids. */
void az_hex_token(char *out, size_t nhex);
/* A header of an answer (name[0..nl), value v[0..vl), trimmed) into r:
 * ETag, Content-Type, the continuation headers; others ignored. A NULL
 * name says a new answer begins (after an interim 1xx). False when out of
 * memory. */
bool az_resp_header(az_resp *r, const char *name, size_t nl, const char *v, size_t vl);
/* Body bytes into r->body; false when out of memory or when the body
 * would pass AZ_BODY_MAX (then r->too_large). */
bool az_resp_body(az_resp *r, const char *s, size_t n);
#define AZ_BODY_MAX ((size_t)256 << 20) /* a page of 1000 large rows fits */
/* Is s[0..n) the header name name (ASCII case ignored)? */
bool az_header_is(const char *s, size_t n, const char *name);
/* v[0..n) into dst as a string; empty when it does not fit. */
void az_copy_field(char *dst, size_t cap, const char *v, size_t n);
const char *az_client_endpoint(const az_client *c); /* no trailing '/' */
int az_client_page_size(const az_client *c);        /* 0: the service's */

/* One entity object of a reply; its ETag is etag, else odata.etag. The
 * caller frees *out. */
mt_status az_wire_entity_parse(const char *s, size_t n, const char *etag, mt_entity **out);
/* Calls fn with the raw text of each element of the feed's "value". */
typedef mt_status (*az_span_fn)(void *ctx, const char *s, size_t n);
mt_status az_wire_feed_each(const char *s, size_t n, az_span_fn fn, void *ctx);
/* "/table(PartitionKey='pk',RowKey='rk')", percent-encoded; the caller
 * frees it. NULL when out of memory. */
char *az_wire_entity_path(const az_table *t, const char *pk, const char *rk);
/* The result of a successful op: 201 for an Insert, else 204, and its new
 * ETag unless it deleted. */
void az_wire_fill_result(const mt_op *op, const char *etag, mt_op_result *res);
/* Sends ops[0..n) as one call: a lone op as its single-entity call, more as
 * a $batch changeset. */
mt_status az_wire_send(az_table *t, const mt_op *ops, size_t n, mt_op_result *res);

/* ------------------------------------------------------------------------ */
/* The transport under the client (az_conn.c) and its answer reader        */
/* (az_http_parse.c).                                                        */

typedef enum az_hp_state {
    AZ_HP_HEAD,
    AZ_HP_LEN,        /* Content-Length bytes */
    AZ_HP_CHUNK_SIZE, /* chunked: a size line */
    AZ_HP_CHUNK_DATA,
    AZ_HP_CHUNK_END, /* the CRLF after a chunk */
    AZ_HP_TRAILER,
    AZ_HP_EOF, /* a body up to the end of the connection */
    AZ_HP_DONE,
} az_hp_state;

typedef enum az_hp_rc {
    AZ_HP_MORE, /* feed more */
    AZ_HP_END,  /* the answer is whole */
    AZ_HP_BAD,  /* not an answer this reader takes (or out of memory) */
    AZ_HP_BIG,  /* the body passes AZ_BODY_MAX */
} az_hp_rc;

typedef struct az_hparse {
    az_hp_state state;
    long status;
    bool close;      /* the server ends the connection after this answer */
    uint64_t remain; /* of the body or of the current chunk */
    mt_buf line;     /* the head, or a chunk-size or trailer line, so far */
    az_resp *r;      /* borrowed: headers and body go there */
} az_hparse;

void az_hparse_init(az_hparse *p, az_resp *r);
/* Feeds s[0..n); *used says how many bytes belong to this answer. */
az_hp_rc az_hparse_feed(az_hparse *p, const char *s, size_t n, size_t *used);
/* The connection ended: AZ_HP_END when that ends the body, else AZ_HP_BAD. */
az_hp_rc az_hparse_eof(az_hparse *p);
void az_hparse_clear(az_hparse *p);

/* The same through libcurl (az_client_curl.c): a pool of easy handles.
 * ca_file is borrowed for the pool's life. headers: "Name: value\r\n"
 * lines. */
typedef struct az_curlpool az_curlpool;
az_curlpool *az_curlpool_new(const char *ca_file, long connect_ms); /* NULL: out of memory */
void az_curlpool_free(az_curlpool *cp);
az_outcome az_curlpool_send(az_curlpool *cp, const char *method, const char *url,
                            const char *headers, const char *body, size_t bl, long timeout_ms,
                            az_resp *r, char *err, size_t cap);

/* Keep-alive connections to one http or https endpoint. */
typedef struct az_pool az_pool;
/* A pool for endpoint ("http[s]://host[:port][/...]"); ca_file (may be
 * NULL: the system's CAs) verifies https. NULL with why filled when the
 * endpoint is not one it serves or TLS cannot be set up. */
az_pool *az_pool_new(const char *endpoint, const char *ca_file, long connect_ms, char *why,
                     size_t cap);
void az_pool_free(az_pool *p);
/* "host[:port]" as the endpoint spells it: the Host header. */
const char *az_pool_authority(const az_pool *p);
/* Sends head[0..hl) and body[0..bl) on a pooled connection (a new one when
 * none is idle) and reads the answer into r, all within timeout_ms. A
 * reused connection the server closed meanwhile is detected and the
 * request sent again once on a new one (counted in r->requests_out when
 * it was sent whole). err (cap bytes) says why when not AZ_ANSWERED. */
az_outcome az_pool_send(az_pool *p, const char *head, size_t hl, const char *body, size_t bl,
                        long timeout_ms, az_resp *r, char *err, size_t cap);

/* ------------------------------------------------------------------------ */
/* Microsoft Entra ID tokens for the backend client (az_token.c).            */

typedef struct az_token_src az_token_src;
/* A cached token source for cred (copied); ca_file (may be NULL) verifies
 * an https token endpoint. NULL with *st set when out of memory. */
az_token_src *az_token_src_new(const az_cred *cred, const char *ca_file, mt_status *st);
void az_token_src_free(az_token_src *t);
/* A valid access token (the caller frees it), refreshed first when due,
 * and its generation in *gen (may be NULL); NULL with *st set (503
 * ServerBusy) when none can be had. Thread-safe. */
char *az_token_get(az_token_src *t, mt_status *st, unsigned *gen);
/* The service refused the token of generation gen: unless a newer one
 * came meanwhile, the next az_token_get fetches a new one. */
void az_token_invalidate(az_token_src *t, unsigned gen);
/* az_client_set_ca_file's path, or NULL. */
const char *az_default_ca_file(void);

#endif

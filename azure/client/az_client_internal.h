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

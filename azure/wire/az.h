/*
 * az.h -- the public contract of the Azure Table wire library.
 *
 * Everything the proxy (and, later, the backend client) needs to speak the
 * Azure Table REST protocol: entity and table payloads in JSON (cJSON) and
 * Atom (libxml2), error bodies, date formats, request paths and query
 * options, $batch multipart bodies, and request authentication (Shared Key,
 * Shared Key Lite, account and table SAS) over OpenSSL.
 *
 * What it must never do: touch the network or the disk, hold global mutable
 * state (it is called from many server threads at once), or trust input:
 * every parser here is fuzzed, bounds every length it reads and returns a
 * 4xx mt_status with the Azure error code on bad input.
 *
 * Ownership: returned char * and structures are the caller's (free with
 * free() or the matching *_clear); pointer arguments are borrowed.
 */
#ifndef AZ_H
#define AZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mt.h"

/* ------------------------------------------------------------------------ */
/* Formats (az_format.c).                                                    */

/* Edm.DateTime text uses mt_datetime_format / mt_datetime_parse (core). */
#define AZ_DATETIME_MAX MT_DATETIME_MAX
/* RFC 1123 ("Tue, 01 Jan 2030 00:00:00 GMT") for Date headers. */
void az_rfc1123_format(time_t t, char out[32]);
bool az_rfc1123_parse(const char *s, time_t *out);
/* Standard base64 (OpenSSL); decode returns false on bad input. */
char *az_base64_encode(const uint8_t *p, size_t n);
bool az_base64_decode(const char *s, size_t len, uint8_t **out, size_t *outlen);
/* Percent-decoding of a URL component; '+' is left alone. NULL on a bad
 * escape or an encoded NUL. */
char *az_url_decode(const char *s, size_t len);
/* Whether az_url_decode would succeed given the memory: tells a bad escape
 * (400) from an allocation that failed (503). */
bool az_url_escapes_valid(const char *s, size_t len);
/* Percent-encoding of everything but unreserved characters. */
char *az_url_encode(const char *s);
/* Appends table(PartitionKey='pk',RowKey='rk') to b: each key in quotes, a
 * quote doubled, every byte but the unreserved characters and those of
 * keep ("" for none) percent-encoded. */
void az_entity_path(mt_buf *b, const char *table, const char *pk, const char *rk, const char *keep);

/* ------------------------------------------------------------------------ */
/* Request paths and query options (az_url.c).                               */

typedef enum az_resource_kind {
    AZ_RES_SERVICE,      /* "/"            ?restype=service&comp=properties|stats */
    AZ_RES_TABLES,       /* "/Tables" or "/Tables()" */
    AZ_RES_TABLE,        /* "/Tables('name')" */
    AZ_RES_TABLE_ACL,    /* "/name?comp=acl" */
    AZ_RES_ENTITIES,     /* "/name" or "/name()" */
    AZ_RES_ENTITY,       /* "/name(PartitionKey='a',RowKey='b')" */
    AZ_RES_BATCH,        /* "/$batch" */
    AZ_RES_METADATA,     /* "/$metadata" */
} az_resource_kind;

typedef struct az_resource {
    az_resource_kind kind;
    char *table; /* TABLE, TABLE_ACL, ENTITIES, ENTITY */
    char *pk;    /* ENTITY: decoded key values ('' unescaped) */
    char *rk;
} az_resource;

/* Parses the path after the account segment, still percent-encoded as sent
 * (e.g. "/t(PartitionKey='a%20b',RowKey='')"), with the raw query string
 * (may be NULL) for comp=acl and restype=service. 400 InvalidUri /
 * InvalidInput on anything Azure would reject; one trailing slash is
 * ignored ("/Tables/"), as the service ignores it. */
mt_status az_resource_parse(const char *path, const char *query, az_resource *out);
void az_resource_clear(az_resource *r);
/* Azure's rule for the name of a table one creates: a letter, then letters
 * and digits, 3 to 63 characters; "tables" is reserved. */
bool az_table_name_valid(const char *name);

/* Finds query parameter name (ASCII case ignored) in a raw query string.
 * *out is its value, percent-decoded with '+' read as a space as the
 * service reads queries ("" when the parameter has no '='), or NULL when
 * absent; the caller frees it. Parameters whose names do not decode
 * cannot be the one asked for and are skipped; a bad escape in the value
 * asked for, or an overlong query, is 400 InvalidUri. */
mt_status az_query_find(const char *query, const char *name, char **out);
/* The same, NULL when absent or badly encoded. */
char *az_query_get(const char *query, const char *name);

/* Query options of Query Entities / Query Tables. */
typedef struct az_query_opts {
    mt_filter *filter; /* NULL = none */
    int top;           /* 0..1000 when has_top, else 0 */
    bool has_top;      /* $top was given ($top=0 asks for no rows) */
    char **select;     /* NULL = all */
    size_t nselect;
    /* Continuations, as raw values: write each x-ms-continuation-* header
     * as az_url_encode(value); clients echo it encoded once more. */
    char *next_pk; /* NextPartitionKey / NextRowKey continuation */
    char *next_rk;
    char *next_table; /* NextTableName */
} az_query_opts;

/* Reads $filter, $top, $select, NextPartitionKey, NextRowKey, NextTableName
 * (400 InvalidInput / OutOfRangeInput on bad values, e.g. $top > 1000). */
mt_status az_query_opts_parse(const char *query, az_query_opts *out);
void az_query_opts_clear(az_query_opts *o);

/* ------------------------------------------------------------------------ */
/* Payloads (az_payload.c; az_json*.c, az_atom*.c).                          */

typedef enum az_metadata {
    AZ_META_NONE,    /* application/json;odata=nometadata */
    AZ_META_MINIMAL, /* application/json;odata=minimalmetadata (default JSON) */
    AZ_META_FULL,    /* application/json;odata=fullmetadata */
} az_metadata;

typedef enum az_format { AZ_FMT_JSON, AZ_FMT_ATOM } az_format;

/* Picks the response format from Accept (and $format) the way Azure does;
 * returns false for an unsupported Accept value (415/406 territory). */
bool az_format_negotiate(const char *accept, const char *format_param, az_format *fmt,
                         az_metadata *md);

/* The format of a request body from its Content-Type: JSON for
 * application/json, Atom for application/atom+xml and application/xml
 * (parameters aside). No Content-Type reads as JSON; any other type is 415
 * MediaTypeNotSupported, as the service refuses it, rather than a body
 * guessed at. */
mt_status az_body_format(const char *content_type, az_format *fmt);

/* What a payload writer needs to know about the request. */
typedef struct az_payload_ctx {
    az_metadata md;
    const char *base_url; /* "http://127.0.0.1:10002/devstoreaccount1" */
    const char *account;
    const char *table;
    char *const *select; /* $select: write only these (plus what Azure adds) */
    size_t nselect;
} az_payload_ctx;

/* Reads an entity body (JSON with optional "@odata.type" annotations, or an
 * Atom entry). PartitionKey/RowKey are taken from the body when present;
 * Timestamp and odata.* members are ignored. 400 InvalidInput (or the
 * specific Azure code) on a malformed body, a bad value for its type, or a
 * property Azure would reject. */
mt_status az_entity_read(az_format fmt, const char *body, size_t len, mt_entity **out);
/* The same, and which keys the body gave a value (AZ_KEY_PK, AZ_KEY_RK; a
 * null key counts as absent): an Insert needs both, an Update or a Merge
 * takes the URL's. */
enum { AZ_KEY_PK = 1, AZ_KEY_RK = 2 };
mt_status az_entity_read_keys(az_format fmt, const char *body, size_t len, mt_entity **out,
                              unsigned *keys);
/* One entity of a JSON reply (the backend's): read as az_entity_read reads
 * it, and its odata.etag and Timestamp taken too, from the same pass. */
mt_status az_json_entity_read_reply(const char *body, size_t len, mt_entity **out);
/* One entity as returned by Get Entity / Insert Entity. */
char *az_entity_write(az_format fmt, const az_payload_ctx *c, const mt_entity *e, size_t *len);
/* A Query Entities response body (the "value" array or Atom feed). */
char *az_entities_write(az_format fmt, const az_payload_ctx *c, const mt_entity_list *rows,
                        size_t *len);

/* Create Table body: the TableName. */
mt_status az_table_read(az_format fmt, const char *body, size_t len, char **name);
char *az_table_write(az_format fmt, const az_payload_ctx *c, const char *name, size_t *len);
char *az_tables_write(az_format fmt, const az_payload_ctx *c, char *const *names, size_t n,
                      size_t *len);

/* Whether the JSON form of v needs an "@odata.type" annotation for its
 * type to be read back, as "Payload format for Table service operations"
 * lists them: Int64, DateTime, Guid and Binary (JSON strings), and a Double
 * that is NaN or infinite (the strings "NaN", "Infinity", "-Infinity"). A
 * finite Double is a JSON number with a '.' or an exponent, and String,
 * Int32 and Boolean are JSON's own types: none of them needs one. Payloads
 * in minimal and full metadata annotate exactly these. */
bool az_json_needs_annotation(const mt_value *v);
/* The JSON body of an entity sent to the service (Insert, Update, Merge,
 * a $batch part): PartitionKey, RowKey and every property, annotated where
 * az_json_needs_annotation says and on every Double (see az_json_write.c).
 * NULL when out of memory; the caller frees it. */
char *az_entity_request_body(const mt_entity *e, size_t *len);

/* Error body: JSON {"odata.error":{"code":..,"message":{"lang":"en-US",
 * "value":..}}} or the XML/Atom error document. */
char *az_error_write(az_format fmt, const char *code, const char *message, size_t *len);

/* ------------------------------------------------------------------------ */
/* XML bodies of Get/Set Table ACL and Table Service Properties (az_xml.c).  */

#define AZ_ACL_MAX 5

typedef struct az_signed_identifier {
    char id[65];
    char start[AZ_DATETIME_MAX];  /* "" when absent */
    char expiry[AZ_DATETIME_MAX]; /* "" when absent */
    char permission[8];           /* subset of "raud" */
} az_signed_identifier;

typedef struct az_acl {
    az_signed_identifier ids[AZ_ACL_MAX];
    size_t n;
} az_acl;

mt_status az_acl_read(const char *body, size_t len, az_acl *out);
char *az_acl_write(const az_acl *acl, size_t *len);
/* Service properties (az_service.c) are validated and normalised, then
 * stored as XML. _read normalises a Set's body: only the sections it holds.
 * _update lays a Set's body over the stored document (one these calls
 * wrote): the sections the body leaves out keep their stored values, as
 * with the service. */
mt_status az_service_properties_read(const char *body, size_t len, char **normalised);
mt_status az_service_properties_update(const char *stored, const char *body, size_t len,
                                       char **merged);
char *az_service_properties_default(size_t *len);

/* CORS rules (az_cors.c): how the service answers a cross-origin request. */
#define AZ_CORS_MAX_RULES 5
typedef struct az_cors_rule {
    char *origins, *methods, *exposed, *allowed; /* comma-separated, no blanks */
    int64_t max_age;
} az_cors_rule;
typedef struct az_cors {
    az_cors_rule rules[AZ_CORS_MAX_RULES];
    size_t n;
} az_cors;
/* The rules of a stored service-properties document (one the calls above
 * wrote). */
mt_status az_service_properties_cors(const char *doc, az_cors *out);
void az_cors_clear(az_cors *c);
/* The first rule that allows origin and method, or NULL; for a preflight,
 * also every header of request_headers (comma-separated; NULL for none
 * and for actual requests). Origins and methods compare case-insensitively;
 * "*" allows every origin or header, "x-ms-*" every header so prefixed. */
const az_cors_rule *az_cors_match(const az_cors *c, const char *origin, const char *method,
                                  const char *request_headers, bool preflight);
/* Access-Control-Expose-Headers of a response holding the headers
 * names[0..n) under rule r: those names the rule's ExposedHeaders cover,
 * then its whole names not among them. The caller frees it. */
char *az_cors_expose(const az_cors_rule *r, const char *const *names, size_t n);

/* ------------------------------------------------------------------------ */
/* $batch (az_batch.c, az_batch_write.c).                                    */

typedef struct az_header {
    char *name;
    char *value;
} az_header;

typedef struct az_batch_part {
    char *method;  /* "POST", "PUT", "MERGE", "DELETE", "GET", "PATCH" */
    char *url;     /* the request URL as written in the part */
    char *path;    /* its path after the account segment, still encoded */
    char *query;   /* its query string or NULL */
    az_header *headers;
    size_t nheaders;
    char *body;
    size_t len;
} az_batch_part;

typedef struct az_batch {
    char *boundary;           /* the batch boundary of the request */
    char *changeset_boundary; /* NULL for a batch holding a lone query */
    az_batch_part *parts;
    size_t n;
} az_batch;

/* Parses a multipart/mixed $batch body (one changeset of up to 100
 * operations, or one GET). 400 InvalidInput on anything malformed (index =
 * the failing operation, or -1), and, as the service answers, 400
 * InvalidInput with index 99 for more than 100 operations. */
mt_status az_batch_parse(const char *content_type, const char *body, size_t len, az_batch *out);
void az_batch_clear(az_batch *b);
/* Is st az_batch_parse's refusal of more than 100 operations? The service
 * reports that one inside a 202 batch response, as a failed change set,
 * where other malformed batches get a plain 400. */
bool az_batch_too_many(const mt_status *st);
/* The value of header name in a part (case-insensitive), or NULL. */
const char *az_batch_part_header(const az_batch_part *p, const char *name);

typedef struct az_batch_reply {
    int status;
    az_header *headers;
    size_t nheaders;
    const char *body;
    size_t len;
} az_batch_reply;

/* The response body of a changeset: n replies on success, or the single
 * failing reply (whose error message the caller prefixed with "<index>:").
 * With n == req->n each reply echoes its request's Content-ID; a lone
 * failing reply carries its own among its headers. X-Content-Type-Options,
 * Cache-Control and DataServiceVersion are added unless a reply has them.
 * *content_type receives the multipart/mixed type with its boundary. */
char *az_batch_write(const az_batch *req, const az_batch_reply *replies, size_t n,
                     char **content_type, size_t *len);

/* ------------------------------------------------------------------------ */
/* Authentication (az_auth.c, az_auth_sas.c).                                */

typedef struct az_account {
    const char *name;
    const uint8_t *key; /* decoded account key */
    size_t key_len;
} az_account;

/* The request as received, for signature checks. */
typedef struct az_http_request {
    const char *method;
    const char *path;  /* as sent, percent-encoded, with the account segment */
    const char *query; /* raw, without '?', or NULL */
    const char *(*header)(void *ctx, const char *name); /* NULL when absent */
    void *ctx;
    const char *client_ip; /* for SAS sip */
    bool https;            /* for SAS spr */
    time_t now;
} az_http_request;

enum {
    AZ_PERM_READ = 1,   /* r: query */
    AZ_PERM_ADD = 2,    /* a: insert (and upserts with u) */
    AZ_PERM_UPDATE = 4, /* u: update, merge (and upserts with a) */
    AZ_PERM_DELETE = 8, /* d */
    AZ_PERM_LIST = 16,  /* l: list tables (account SAS) */
    AZ_PERM_CREATE = 32,/* c: create table (account SAS) */
    AZ_PERM_WRITE = 64, /* w: account SAS write */
};

/* What an authenticated request may do. A Shared Key request may do
 * anything; a SAS is limited to its permissions, its table (table SAS),
 * and its key ranges. */
typedef struct az_grant {
    bool shared_key;
    unsigned perms;
    char table[64];        /* table SAS: the table ("" for account SAS) */
    bool service_table;    /* account SAS: srt includes s (service) */
    bool container_table;  /* account SAS: srt includes c (tables) */
    bool object_table;     /* account SAS: srt includes o (entities) */
    char spk[1024], srk[1024], epk[1024], erk[1024]; /* table SAS ranges */
} az_grant;

/* Authenticates req against acct: Shared Key / Shared Key Lite from the
 * Authorization header, or a SAS from the query string (sv, ss, srt, sp, st,
 * se, sip, spr, tn, spk, srk, epk, erk, si, sig). A stored access policy
 * (si) is looked up through acl_lookup (may be NULL). 403
 * AuthenticationFailed (or AuthorizationFailure / the code Azure gives) on
 * failure, with a message saying why. */
typedef bool (*az_acl_lookup)(void *ctx, const char *table, const char *id,
                              az_signed_identifier *out);
mt_status az_auth_check(const az_account *acct, const az_http_request *req,
                        az_acl_lookup acl_lookup, void *acl_ctx, az_grant *grant);

/* May the grant do perm on table (and, for entity operations, the row
 * pk/rk, which may be NULL for table-level checks)? 403
 * AuthorizationPermissionMismatch / AuthorizationResourceTypeMismatch /
 * AuthorizationFailure as Azure answers. */
mt_status az_grant_check(const az_grant *g, unsigned perm, bool table_level, const char *table,
                         const char *pk, const char *rk);

/* The key range a table SAS confines its entity operations to, as a filter
 * a query can be narrowed with: *range is a new filter the caller frees,
 * or NULL when the grant has no range; *start (may be NULL; the caller
 * clears it) gets the first key of the range when it has a start. Every key
 * az_grant_check allows matches *range; with coarse, *range bounds the
 * partition key only (at most two comparisons) and may match more. False
 * when out of memory. */
bool az_grant_key_range(const az_grant *g, bool coarse, mt_filter **range, mt_key *start);

/* Computes a Shared Key signature (for tests and the backend client):
 * base64(HMAC-SHA256(key, string_to_sign)). */
char *az_sign(const uint8_t *key, size_t key_len, const char *string_to_sign);

/* Connection strings (az_connstr.c) come with the backend client. */

#endif

/*
 * az_internal.h -- declarations shared between the files of azure/ and
 * nowhere else.
 *
 * The payload entry points of az.h take a format and dispatch on it in
 * az_payload.c, through the codec of JSON (az_json.c, az_json_write.c) or
 * Atom (az_atom_read.c, az_atom.c). What a codec holds keeps the ownership
 * rules of az.h: returned buffers are malloc'd and the caller's, *len
 * receives their length, and readers return a 4xx mt_status on bad input.
 */
#ifndef AZ_INTERNAL_H
#define AZ_INTERNAL_H

#include <cJSON.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "az.h"
#include "az_client.h"

/* One payload format's readers and writers, as the calls of az.h take them. */
typedef struct az_codec {
    mt_status (*entity_read)(const char *body, size_t len, mt_entity **out, unsigned *keys);
    char *(*entity_write)(const az_payload_ctx *c, const mt_entity *e, size_t *len);
    char *(*entities_write)(const az_payload_ctx *c, const mt_entity_list *rows, size_t *len);
    mt_status (*table_read)(const char *body, size_t len, char **name);
    char *(*table_write)(const az_payload_ctx *c, const char *name, size_t *len);
    char *(*tables_write)(const az_payload_ctx *c, char *const *names, size_t n, size_t *len);
    char *(*error_write)(const char *code, const char *message, size_t *len);
} az_codec;

extern const az_codec az_json_codec; /* az_json_write.c */
extern const az_codec az_atom_codec; /* az_atom.c */

/* The JSON readers (az_json.c), for the JSON codec. */
mt_status az_json_entity_read(const char *body, size_t len, mt_entity **out, unsigned *keys);
mt_status az_json_table_read(const char *body, size_t len, char **name);

/* The Atom functions, for the Atom codec and the tests. */
mt_status az_atom_entity_read(const char *body, size_t len, mt_entity **out);
mt_status az_atom_entity_read_keys(const char *body, size_t len, mt_entity **out, unsigned *keys);
char *az_atom_entity_write(const az_payload_ctx *c, const mt_entity *e, size_t *len);
char *az_atom_entities_write(const az_payload_ctx *c, const mt_entity_list *rows, size_t *len);
mt_status az_atom_table_read(const char *body, size_t len, char **name);
char *az_atom_table_write(const az_payload_ctx *c, const char *name, size_t *len);
char *az_atom_tables_write(const az_payload_ctx *c, char *const *names, size_t n, size_t *len);
char *az_xml_error_write(const char *code, const char *message, size_t *len);

/* The Atom and OData namespaces: Atom, data properties (d:), metadata (m:). */
#define AZ_NS_ATOM "http://www.w3.org/2005/Atom"
#define AZ_NS_D "http://schemas.microsoft.com/ado/2007/08/dataservices"
#define AZ_NS_M "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"
/* Only an XML name can become a d: element. */
bool az_atom_name_ok(const char *name);

/* Is name among the payload's $select? A NULL select takes everything. */
bool az_payload_selected(const az_payload_ctx *c, const char *name);

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

/* ------------------------------------------------------------------------ */
/* Text formats (az_format.c).                                               */

/* 'k' as a key in a resource path: in quotes, a quote doubled, every byte
 * but the unreserved characters and those of keep ("" for none)
 * percent-encoded. */
void az_path_key(mt_buf *b, const char *k, const char *keep);
/* table(PartitionKey='pk',RowKey='rk'), the keys as az_path_key puts them. */
void az_entity_path(mt_buf *b, const char *table, const char *pk, const char *rk, const char *keep);
/* A Guid in any form .NET reads: 32 hex digits, bare or dashed 8-4-4-4-12,
 * the dashed form also in braces or parentheses. */
bool az_guid_parse(const char *s, size_t n, uint8_t g[16]);

/* ------------------------------------------------------------------------ */
/* JSON values, for the payload reader and writer and the backend client.    */

/* The suffix of a type annotation's member name, "Price@odata.type". */
#define AZ_ODATA_TYPE "@odata.type"

/* A finite double from JSON number text (RFC 8259 grammar); false when the
 * text is not one or overflows. */
bool az_json_parse_double(const char *s, size_t n, double *out);
/* The shortest of %.15g..%.17g that reads back exactly, with ".0" added to
 * a whole number so that it stays a Double when read without annotation. */
void az_json_double_text(double d, char out[48]);
/* The JSON item of a value, without its annotation; NULL when out of
 * memory. The caller owns it. */
cJSON *az_json_value(const mt_value *v);
/* Adds "name@odata.type": "Edm.X" to o. */
bool az_json_annotate(cJSON *o, const char *name, mt_edm t);

/* ------------------------------------------------------------------------ */
/* $batch: read in az_batch.c, written in az_batch_write.c.                  */

/* A header name: one or more bytes, each printable ASCII but a space. */
bool az_header_name_valid(const char *s, size_t n);

/* ------------------------------------------------------------------------ */
/* Authentication: Shared Key in az_auth.c, SAS in az_auth_sas.c.            */

#define AZ_ERR_AUTHN "AuthenticationFailed"

/* 403 with code and msg. */
mt_status az_auth_deny(const char *code, const char *msg);
/* One string-to-sign field (NULL: an empty one) and its newline. */
void az_sts_line(mt_buf *b, const char *s);
/* Does sig (as received) equal base64(HMAC-SHA256(key, msg))? False as
 * well after a failed allocation in msg. */
bool az_sig_matches(const az_account *acct, const mt_buf *msg, const char *sig);
/* Decodes the values of names[0..n) found in query into vals (NULL when
 * absent; free them with az_query_free). Refuses a repeated name, a bad
 * escape and an overlong value, naming the culprit in *bad. */
bool az_query_collect(const char *query, const char *const *names, size_t n, char **vals,
                      const char **bad);
void az_query_free(char **vals, size_t n);
/* Authenticates req by the SAS in its query: what az_auth_check does for a
 * request without an Authorization header. */
mt_status az_sas_check(const az_account *acct, const az_http_request *req, az_acl_lookup lookup,
                       void *ctx, az_grant *g);

/* ------------------------------------------------------------------------ */
/* XML documents (az_xml_doc.c), for Atom payloads and plain XML bodies.     */

/* Parses body (at most max bytes) into a document with a root element, or
 * fails with code (400) and NULL. Forbids the network, DTDs and entity
 * expansion. The caller frees the document with xmlFreeDoc. */
xmlDocPtr az_xml_doc_read(const char *body, size_t len, size_t max, const char *code,
                          mt_status *st);
/* A writer into a fresh buffer, the XML declaration written. */
xmlTextWriterPtr az_xml_writer_new(xmlBufferPtr *buf, bool standalone);
/* Closes what is open and returns the document (the caller's), or NULL
 * when !ok or on a writer error. Always frees w and buf. */
char *az_xml_writer_finish(xmlTextWriterPtr w, xmlBufferPtr buf, bool ok, size_t *len);

/* The strict walk of the plain XML bodies (az_xml.c), which ACLs and
 * service properties (az_service.c) share. Errors are the service's. */
#define AZ_XML_E_DOCUMENT "InvalidXmlDocument"
#define AZ_XML_E_VALUE "InvalidXmlNodeValue"
#define AZ_XML_E_MISSING "MissingRequiredXmlNode"
#define AZ_XML_E_UNSUPPORTED "UnsupportedXmlNode"
/* Those bodies are a few kilobytes at most; anything near this is hostile. */
#define AZ_XML_SMALL_BODY (256 * 1024)

typedef struct az_xml_field {
    const char *name;
    xmlNodePtr node; /* filled by az_xml_fields */
} az_xml_field;

mt_status az_xml_oom(void);
bool az_xml_named(xmlNodePtr n, const char *name);
/* Text between child elements must be blank; comments and PIs are fine. */
mt_status az_xml_check_node(xmlNodePtr n);
/* Matches each child element of parent with one of f[0..nf), each at most
 * once; any other element is unsupported. */
mt_status az_xml_fields(xmlNodePtr parent, az_xml_field *f, size_t nf);
mt_status az_xml_missing(const char *name);
mt_status az_xml_bad_value(const char *name);
/* The text of a leaf element, trimmed, as a malloc'd string. */
mt_status az_xml_leaf(xmlNodePtr n, char **out);
/* true/false/1/0; a missing node is MissingRequiredXmlNode. */
mt_status az_xml_bool(xmlNodePtr n, const char *name, bool *out);
/* A decimal integer in [lo, hi]. */
mt_status az_xml_int(xmlNodePtr n, const char *name, int64_t lo, int64_t hi, int64_t *out);
/* The root element, which must be called name; *doc is the caller's. */
mt_status az_xml_root(const char *body, size_t len, const char *name, xmlDocPtr *doc,
                      xmlNodePtr *root);

/* ------------------------------------------------------------------------ */
/* The backend client: the table (az_client.c), its wire forms               */
/* (az_client_wire.c) and its requests (az_client_http.c).                   */

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

#endif

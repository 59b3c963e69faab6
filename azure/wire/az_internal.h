/*
 * az_internal.h -- declarations shared between the files of the wire
 * library (azure/wire/) and nowhere else: the backend client and every
 * other module see only az.h.
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
/* Text formats (az_format.c).                                               */

/* 'k' as a key in a resource path: in quotes, a quote doubled, every byte
 * but the unreserved characters and those of keep ("" for none)
 * percent-encoded. */
void az_path_key(mt_buf *b, const char *k, const char *keep);
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

#endif

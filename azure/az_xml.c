/*
 * az_xml.c -- the plain XML bodies of the Table service: stored access
 * policies (Get/Set Table ACL) and service properties (Get/Set Table
 * Service Properties).
 *
 * These bodies are small, so each is read into a DOM and walked strictly,
 * which is simpler to get right than a streaming reader. Every document
 * passes through the hardened reader of az_xml_doc.c, as Atom bodies do.
 *
 * Errors are the service's: InvalidXmlDocument for a body that is not
 * well-formed or not the expected shape, MissingRequiredXmlNode,
 * UnsupportedXmlNode, InvalidXmlNodeValue for a value out of range.
 * Service properties are rebuilt from what was validated rather than
 * echoed, so the stored document is always one this file wrote.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "az_internal.h"

#define AZ_XML_E_DOCUMENT "InvalidXmlDocument"
#define AZ_XML_E_VALUE "InvalidXmlNodeValue"
#define AZ_XML_E_MISSING "MissingRequiredXmlNode"
#define AZ_XML_E_UNSUPPORTED "UnsupportedXmlNode"

/* Both bodies are a few kilobytes at most; anything near this is hostile. */
#define AZ_XML_SMALL_BODY (256 * 1024)

#define AZ_ACL_ID_MAX 64
#define AZ_CORS_MAX_RULES 5
#define AZ_CORS_MAX_ITEMS 64
#define AZ_CORS_MAX_PREFIXED 2
#define AZ_CORS_MAX_ITEM_LEN 256
#define AZ_CORS_MAX_TOTAL 2048
#define AZ_RETENTION_MAX_DAYS 365

/* ------------------------------------------------------------------------ */
/* Walking a document strictly.                                              */

static mt_status az_xml_oom(void)
{
    return mt_error(500, MT_ERR_INTERNAL, "Out of memory.");
}

typedef struct az_xml_field {
    const char *name;
    xmlNodePtr node; /* filled by az_xml_fields */
} az_xml_field;

static bool az_xml_is_space(const xmlChar *s)
{
    for (; s && *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return false;
    return true;
}

static bool az_xml_named(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* Text between child elements must be blank; comments and PIs are fine. */
static mt_status az_xml_check_node(xmlNodePtr n)
{
    if (n->type == XML_TEXT_NODE && !az_xml_is_space(n->content))
        return mt_error(400, AZ_XML_E_DOCUMENT, "Unexpected text in element '%.40s'.",
                        (const char *)n->parent->name);
    if (n->type == XML_ENTITY_REF_NODE)
        return mt_error(400, AZ_XML_E_DOCUMENT, "Entity references are not allowed.");
    return mt_ok();
}

/* Matches each child element of parent with one of f[0..nf), each at most
 * once; any other element is unsupported. */
static mt_status az_xml_fields(xmlNodePtr parent, az_xml_field *f, size_t nf)
{
    for (size_t i = 0; i < nf; i++)
        f[i].node = NULL;
    for (xmlNodePtr c = parent->children; c; c = c->next) {
        mt_status st = az_xml_check_node(c);
        size_t i;
        if (!mt_is_ok(&st))
            return st;
        if (c->type != XML_ELEMENT_NODE)
            continue;
        for (i = 0; i < nf && !az_xml_named(c, f[i].name); i++)
            ;
        if (i == nf)
            return mt_error(400, AZ_XML_E_UNSUPPORTED, "The XML node '%.40s' is not supported.",
                            (const char *)c->name);
        if (f[i].node)
            return mt_error(400, AZ_XML_E_DOCUMENT, "The XML node '%.40s' appears twice.",
                            f[i].name);
        f[i].node = c;
    }
    return mt_ok();
}

static mt_status az_xml_missing(const char *name)
{
    return mt_error(400, AZ_XML_E_MISSING, "The XML node '%s' is required.", name);
}

static mt_status az_xml_bad_value(const char *name)
{
    return mt_error(400, AZ_XML_E_VALUE, "The value of XML node '%s' is not valid.", name);
}

/* The text of a leaf element, trimmed, as a malloc'd string. */
static mt_status az_xml_leaf(xmlNodePtr n, char **out)
{
    xmlChar *raw;
    const char *s, *e;

    *out = NULL;
    for (xmlNodePtr c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE || c->type == XML_ENTITY_REF_NODE)
            return mt_error(400, AZ_XML_E_DOCUMENT, "The XML node '%.40s' must hold a value.",
                            (const char *)n->name);
    raw = xmlNodeGetContent(n);
    s = raw ? (const char *)raw : "";
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        e--;
    *out = strndup(s, (size_t)(e - s));
    xmlFree(raw);
    return *out ? mt_ok() : az_xml_oom();
}

static mt_status az_xml_bool(xmlNodePtr n, const char *name, bool *out)
{
    char *v;
    mt_status st;

    if (!n)
        return az_xml_missing(name);
    st = az_xml_leaf(n, &v);
    if (!mt_is_ok(&st))
        return st;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        st = az_xml_bad_value(name);
    free(v);
    return st;
}

/* A decimal integer in [lo, hi]. */
static mt_status az_xml_int(xmlNodePtr n, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    char *v;
    int64_t x = 0;
    size_t i = 0;
    mt_status st;

    if (!n)
        return az_xml_missing(name);
    st = az_xml_leaf(n, &v);
    if (!mt_is_ok(&st))
        return st;
    if (v[0] == '+')
        i++;
    if (v[i] == '\0')
        st = az_xml_bad_value(name);
    for (; mt_is_ok(&st) && v[i]; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (hi - (v[i] - '0')) / 10)
            st = az_xml_bad_value(name);
        else
            x = x * 10 + (v[i] - '0');
    }
    if (mt_is_ok(&st) && x < lo)
        st = az_xml_bad_value(name);
    free(v);
    *out = x;
    return st;
}

/* The root element, which must be called name. */
static mt_status az_xml_root(const char *body, size_t len, const char *name, xmlDocPtr *doc,
                             xmlNodePtr *root)
{
    mt_status st;

    *doc = az_xml_doc_read(body, len, AZ_XML_SMALL_BODY, AZ_XML_E_DOCUMENT, &st);
    if (!*doc)
        return st;
    *root = xmlDocGetRootElement(*doc);
    if (!az_xml_named(*root, name)) {
        xmlFreeDoc(*doc);
        *doc = NULL;
        return mt_error(400, AZ_XML_E_DOCUMENT, "The root element must be '%s'.", name);
    }
    return mt_ok();
}

static bool az_xml_blank(const char *body, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n')
            return false;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Table ACL.                                                                */

/* A Start or Expiry time: any form Azure accepts, kept in the form it
 * returns, so that SAS checks compare like with like. */
static mt_status az_acl_time(xmlNodePtr n, const char *name, char out[AZ_DATETIME_MAX])
{
    char *v;
    int64_t ticks;
    mt_status st;

    out[0] = '\0';
    if (!n)
        return mt_ok();
    st = az_xml_leaf(n, &v);
    if (!mt_is_ok(&st))
        return st;
    if (v[0] != '\0') {
        if (mt_datetime_parse(v, strlen(v), &ticks))
            mt_datetime_format(ticks, out);
        else
            st = az_xml_bad_value(name);
    }
    free(v);
    return st;
}

/* Permission letters, any order, kept in the canonical order "raud". */
static mt_status az_acl_permission(xmlNodePtr n, char out[8])
{
    static const char order[] = "raud";
    bool has[4] = {false, false, false, false};
    size_t k = 0;
    char *v;
    mt_status st;

    out[0] = '\0';
    if (!n)
        return mt_ok();
    st = az_xml_leaf(n, &v);
    if (!mt_is_ok(&st))
        return st;
    for (size_t i = 0; v[i] && mt_is_ok(&st); i++) {
        const char *p = strchr(order, v[i]);
        if (!p)
            st =
                mt_error(400, AZ_XML_E_DOCUMENT, "Permission '%c' is not valid for a table.", v[i]);
        else
            has[p - order] = true;
    }
    free(v);
    for (size_t i = 0; i < 4; i++)
        if (has[i])
            out[k++] = order[i];
    out[k] = '\0';
    return st;
}

static mt_status az_acl_policy(xmlNodePtr n, az_signed_identifier *id)
{
    az_xml_field f[] = {{"Start", NULL}, {"Expiry", NULL}, {"Permission", NULL}};
    mt_status st = az_xml_fields(n, f, 3);

    if (mt_is_ok(&st))
        st = az_acl_time(f[0].node, "Start", id->start);
    if (mt_is_ok(&st))
        st = az_acl_time(f[1].node, "Expiry", id->expiry);
    if (mt_is_ok(&st))
        st = az_acl_permission(f[2].node, id->permission);
    return st;
}

static mt_status az_acl_identifier(xmlNodePtr n, az_signed_identifier *id)
{
    az_xml_field f[] = {{"Id", NULL}, {"AccessPolicy", NULL}};
    mt_status st = az_xml_fields(n, f, 2);
    char *v;

    memset(id, 0, sizeof *id);
    if (!mt_is_ok(&st))
        return st;
    if (!f[0].node)
        return az_xml_missing("Id");
    st = az_xml_leaf(f[0].node, &v);
    if (!mt_is_ok(&st))
        return st;
    if (v[0] == '\0' || strlen(v) > AZ_ACL_ID_MAX)
        st = az_xml_bad_value("Id");
    else
        memcpy(id->id, v, strlen(v) + 1);
    free(v);
    if (mt_is_ok(&st) && f[1].node)
        st = az_acl_policy(f[1].node, id);
    return st;
}

static mt_status az_acl_walk(xmlNodePtr root, az_acl *out)
{
    for (xmlNodePtr c = root->children; c; c = c->next) {
        mt_status st = az_xml_check_node(c);
        if (!mt_is_ok(&st))
            return st;
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!az_xml_named(c, "SignedIdentifier"))
            return mt_error(400, AZ_XML_E_UNSUPPORTED, "The XML node '%.40s' is not supported.",
                            (const char *)c->name);
        if (out->n == AZ_ACL_MAX)
            return mt_error(400, AZ_XML_E_DOCUMENT, "At most %d signed identifiers are allowed.",
                            AZ_ACL_MAX);
        st = az_acl_identifier(c, &out->ids[out->n]);
        if (!mt_is_ok(&st))
            return st;
        out->n++;
    }
    return mt_ok();
}

/* An empty body clears the ACL, as with the service. */
mt_status az_acl_read(const char *body, size_t len, az_acl *out)
{
    xmlDocPtr doc;
    xmlNodePtr root;
    mt_status st;

    memset(out, 0, sizeof *out);
    if (az_xml_blank(body, len))
        return mt_ok();
    st = az_xml_root(body, len, "SignedIdentifiers", &doc, &root);
    if (!mt_is_ok(&st))
        return st;
    st = az_acl_walk(root, out);
    xmlFreeDoc(doc);
    if (!mt_is_ok(&st))
        memset(out, 0, sizeof *out);
    return st;
}

static bool az_acl_write_one(xmlTextWriterPtr w, const az_signed_identifier *id)
{
    bool ok = xmlTextWriterStartElement(w, BAD_CAST "SignedIdentifier") >= 0 &&
              xmlTextWriterWriteElement(w, BAD_CAST "Id", BAD_CAST id->id) >= 0 &&
              xmlTextWriterStartElement(w, BAD_CAST "AccessPolicy") >= 0;
    if (ok && id->start[0])
        ok = xmlTextWriterWriteElement(w, BAD_CAST "Start", BAD_CAST id->start) >= 0;
    if (ok && id->expiry[0])
        ok = xmlTextWriterWriteElement(w, BAD_CAST "Expiry", BAD_CAST id->expiry) >= 0;
    if (ok && id->permission[0])
        ok = xmlTextWriterWriteElement(w, BAD_CAST "Permission", BAD_CAST id->permission) >= 0;
    return ok && xmlTextWriterEndElement(w) >= 0 && xmlTextWriterEndElement(w) >= 0;
}

char *az_acl_write(const az_acl *acl, size_t *len)
{
    xmlBufferPtr buf;
    xmlTextWriterPtr w = az_xml_writer_new(&buf, false);
    bool ok;

    if (!w)
        return NULL;
    ok = xmlTextWriterStartElement(w, BAD_CAST "SignedIdentifiers") >= 0;
    for (size_t i = 0; ok && acl && i < acl->n && i < AZ_ACL_MAX; i++)
        ok = az_acl_write_one(w, &acl->ids[i]);
    return az_xml_writer_finish(w, buf, ok, len);
}

/* ------------------------------------------------------------------------ */
/* Service properties: the validated model.                                  */

typedef struct az_sp_retention {
    bool enabled;
    int days; /* 1..365 when enabled */
} az_sp_retention;

typedef struct az_sp_logging {
    bool del, read, write;
    az_sp_retention rp;
} az_sp_logging;

typedef struct az_sp_metrics {
    bool enabled;
    bool apis; /* IncludeAPIs, meaningful only when enabled */
    az_sp_retention rp;
} az_sp_metrics;

typedef struct az_sp_cors {
    char *origins, *methods, *exposed, *allowed; /* normalised lists, owned */
    int64_t max_age;
} az_sp_cors;

typedef struct az_sp {
    bool has_logging, has_hour, has_minute, has_cors;
    az_sp_logging logging;
    az_sp_metrics hour, minute;
    az_sp_cors rules[AZ_CORS_MAX_RULES];
    size_t nrules;
} az_sp;

static void az_sp_clear(az_sp *p)
{
    for (size_t i = 0; i < p->nrules; i++) {
        free(p->rules[i].origins);
        free(p->rules[i].methods);
        free(p->rules[i].exposed);
        free(p->rules[i].allowed);
    }
    p->nrules = 0;
}

/* ------------------------------------------------------------------------ */
/* Service properties: reading Logging and the metrics.                      */

static mt_status az_sp_version(xmlNodePtr n)
{
    char *v;
    mt_status st;

    if (!n)
        return az_xml_missing("Version");
    st = az_xml_leaf(n, &v);
    if (mt_is_ok(&st) && strcmp(v, "1.0") != 0)
        st = az_xml_bad_value("Version");
    free(v);
    return st;
}

/* Days is required when the policy is enabled and dropped when it is not. */
static mt_status az_sp_retention_read(xmlNodePtr n, az_sp_retention *rp)
{
    az_xml_field f[] = {{"Enabled", NULL}, {"Days", NULL}};
    int64_t days = 0;
    mt_status st;

    if (!n)
        return az_xml_missing("RetentionPolicy");
    st = az_xml_fields(n, f, 2);
    if (mt_is_ok(&st))
        st = az_xml_bool(f[0].node, "Enabled", &rp->enabled);
    if (mt_is_ok(&st) && rp->enabled)
        st = az_xml_int(f[1].node, "Days", 1, AZ_RETENTION_MAX_DAYS, &days);
    rp->days = rp->enabled ? (int)days : 0;
    return st;
}

static mt_status az_sp_logging_read(xmlNodePtr n, az_sp_logging *l)
{
    az_xml_field f[] = {{"Version", NULL},
                        {"Delete", NULL},
                        {"Read", NULL},
                        {"Write", NULL},
                        {"RetentionPolicy", NULL}};
    mt_status st = az_xml_fields(n, f, 5);

    if (mt_is_ok(&st))
        st = az_sp_version(f[0].node);
    if (mt_is_ok(&st))
        st = az_xml_bool(f[1].node, "Delete", &l->del);
    if (mt_is_ok(&st))
        st = az_xml_bool(f[2].node, "Read", &l->read);
    if (mt_is_ok(&st))
        st = az_xml_bool(f[3].node, "Write", &l->write);
    if (mt_is_ok(&st))
        st = az_sp_retention_read(f[4].node, &l->rp);
    return st;
}

/* IncludeAPIs is required when metrics are enabled and dropped otherwise. */
static mt_status az_sp_metrics_read(xmlNodePtr n, az_sp_metrics *m)
{
    az_xml_field f[] = {
        {"Version", NULL}, {"Enabled", NULL}, {"IncludeAPIs", NULL}, {"RetentionPolicy", NULL}};
    mt_status st = az_xml_fields(n, f, 4);

    if (mt_is_ok(&st))
        st = az_sp_version(f[0].node);
    if (mt_is_ok(&st))
        st = az_xml_bool(f[1].node, "Enabled", &m->enabled);
    if (mt_is_ok(&st) && m->enabled)
        st = az_xml_bool(f[2].node, "IncludeAPIs", &m->apis);
    if (mt_is_ok(&st))
        st = az_sp_retention_read(f[3].node, &m->rp);
    if (!m->enabled)
        m->apis = false;
    return st;
}

/* ------------------------------------------------------------------------ */
/* Service properties: reading CORS rules.                                   */

typedef enum az_cors_list { AZ_CORS_ORIGINS, AZ_CORS_METHODS, AZ_CORS_HEADERS } az_cors_list;

static bool az_cors_method_ok(const char *m, size_t n)
{
    static const char *const methods[] = {"DELETE", "GET",     "HEAD", "MERGE",
                                          "POST",   "OPTIONS", "PUT",  "PATCH"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strlen(methods[i]) == n && memcmp(methods[i], m, n) == 0)
            return true;
    return false;
}

static bool az_cors_item_ok(az_cors_list kind, const char *s, size_t n, size_t *prefixed)
{
    if (n == 0 || n > AZ_CORS_MAX_ITEM_LEN)
        return false;
    if (kind == AZ_CORS_METHODS)
        return az_cors_method_ok(s, n);
    if (kind == AZ_CORS_HEADERS && n > 1 && s[n - 1] == '*')
        (*prefixed)++;
    return true;
}

/* A comma-separated list, validated and rewritten without blanks around
 * the items. Header lists may be empty; the others may not. */
static mt_status az_cors_list_read(xmlNodePtr n, const char *name, az_cors_list kind, char **out)
{
    size_t items = 0, prefixed = 0, k = 0;
    char *v;
    mt_status st;

    *out = NULL;
    if (!n)
        return az_xml_missing(name);
    st = az_xml_leaf(n, &v);
    if (!mt_is_ok(&st))
        return st;
    if (v[0] == '\0' && kind != AZ_CORS_HEADERS)
        st = az_xml_bad_value(name);
    for (const char *p = v; mt_is_ok(&st) && *p;) {
        const char *e = strchr(p, ',');
        const char *end = e ? e : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (!az_cors_item_ok(kind, p, (size_t)(end - p), &prefixed) ||
            ++items > AZ_CORS_MAX_ITEMS || prefixed > AZ_CORS_MAX_PREFIXED)
            st = az_xml_bad_value(name);
        else {
            if (k)
                v[k++] = ',';
            memmove(v + k, p, (size_t)(end - p));
            k += (size_t)(end - p);
        }
        p = e ? e + 1 : end + strlen(end);
        if (e && *p == '\0')
            st = az_xml_bad_value(name); /* a trailing comma */
    }
    if (!mt_is_ok(&st)) {
        free(v);
        return st;
    }
    v[k] = '\0';
    *out = v;
    return st;
}

static mt_status az_cors_rule_read(xmlNodePtr n, az_sp_cors *r)
{
    az_xml_field f[] = {{"AllowedOrigins", NULL},
                        {"AllowedMethods", NULL},
                        {"MaxAgeInSeconds", NULL},
                        {"ExposedHeaders", NULL},
                        {"AllowedHeaders", NULL}};
    mt_status st = az_xml_fields(n, f, 5);

    if (mt_is_ok(&st))
        st = az_cors_list_read(f[0].node, "AllowedOrigins", AZ_CORS_ORIGINS, &r->origins);
    if (mt_is_ok(&st))
        st = az_cors_list_read(f[1].node, "AllowedMethods", AZ_CORS_METHODS, &r->methods);
    if (mt_is_ok(&st))
        st = az_xml_int(f[2].node, "MaxAgeInSeconds", 0, INT32_MAX, &r->max_age);
    if (mt_is_ok(&st))
        st = az_cors_list_read(f[3].node, "ExposedHeaders", AZ_CORS_HEADERS, &r->exposed);
    if (mt_is_ok(&st))
        st = az_cors_list_read(f[4].node, "AllowedHeaders", AZ_CORS_HEADERS, &r->allowed);
    return st;
}

static size_t az_cors_rule_size(const az_sp_cors *r)
{
    return strlen(r->origins) + strlen(r->methods) + strlen(r->exposed) + strlen(r->allowed);
}

/* Up to five rules, whose values together stay within 2 KiB. */
static mt_status az_sp_cors_read(xmlNodePtr n, az_sp *p)
{
    size_t total = 0;

    for (xmlNodePtr c = n->children; c; c = c->next) {
        mt_status st = az_xml_check_node(c);
        if (!mt_is_ok(&st))
            return st;
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!az_xml_named(c, "CorsRule"))
            return mt_error(400, AZ_XML_E_UNSUPPORTED, "The XML node '%.40s' is not supported.",
                            (const char *)c->name);
        if (p->nrules == AZ_CORS_MAX_RULES)
            return mt_error(400, AZ_XML_E_DOCUMENT, "At most %d CORS rules are allowed.",
                            AZ_CORS_MAX_RULES);
        memset(&p->rules[p->nrules], 0, sizeof p->rules[0]);
        p->nrules++; /* counted first, so that a partial rule is freed */
        st = az_cors_rule_read(c, &p->rules[p->nrules - 1]);
        if (!mt_is_ok(&st))
            return st;
        total += az_cors_rule_size(&p->rules[p->nrules - 1]);
        if (total > AZ_CORS_MAX_TOTAL)
            return az_xml_bad_value("Cors");
    }
    return mt_ok();
}

static mt_status az_sp_walk(xmlNodePtr root, az_sp *p)
{
    az_xml_field f[] = {
        {"Logging", NULL}, {"HourMetrics", NULL}, {"MinuteMetrics", NULL}, {"Cors", NULL}};
    mt_status st = az_xml_fields(root, f, 4);

    p->has_logging = f[0].node != NULL;
    p->has_hour = f[1].node != NULL;
    p->has_minute = f[2].node != NULL;
    p->has_cors = f[3].node != NULL;
    if (mt_is_ok(&st) && p->has_logging)
        st = az_sp_logging_read(f[0].node, &p->logging);
    if (mt_is_ok(&st) && p->has_hour)
        st = az_sp_metrics_read(f[1].node, &p->hour);
    if (mt_is_ok(&st) && p->has_minute)
        st = az_sp_metrics_read(f[2].node, &p->minute);
    if (mt_is_ok(&st) && p->has_cors)
        st = az_sp_cors_read(f[3].node, p);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Service properties: writing.                                              */

static bool az_sp_el(xmlTextWriterPtr w, const char *name, const char *value)
{
    return xmlTextWriterWriteElement(w, BAD_CAST name, BAD_CAST value) >= 0;
}

static bool az_sp_bool(xmlTextWriterPtr w, const char *name, bool v)
{
    return az_sp_el(w, name, v ? "true" : "false");
}

static bool az_sp_retention_write(xmlTextWriterPtr w, const az_sp_retention *rp)
{
    char days[16];
    bool ok = xmlTextWriterStartElement(w, BAD_CAST "RetentionPolicy") >= 0 &&
              az_sp_bool(w, "Enabled", rp->enabled);
    if (ok && rp->enabled) {
        snprintf(days, sizeof days, "%d", rp->days);
        ok = az_sp_el(w, "Days", days);
    }
    return ok && xmlTextWriterEndElement(w) >= 0;
}

static bool az_sp_logging_write(xmlTextWriterPtr w, const az_sp_logging *l)
{
    return xmlTextWriterStartElement(w, BAD_CAST "Logging") >= 0 && az_sp_el(w, "Version", "1.0") &&
           az_sp_bool(w, "Delete", l->del) && az_sp_bool(w, "Read", l->read) &&
           az_sp_bool(w, "Write", l->write) && az_sp_retention_write(w, &l->rp) &&
           xmlTextWriterEndElement(w) >= 0;
}

static bool az_sp_metrics_write(xmlTextWriterPtr w, const char *name, const az_sp_metrics *m)
{
    bool ok = xmlTextWriterStartElement(w, BAD_CAST name) >= 0 && az_sp_el(w, "Version", "1.0") &&
              az_sp_bool(w, "Enabled", m->enabled);
    if (ok && m->enabled)
        ok = az_sp_bool(w, "IncludeAPIs", m->apis);
    return ok && az_sp_retention_write(w, &m->rp) && xmlTextWriterEndElement(w) >= 0;
}

static bool az_sp_cors_write(xmlTextWriterPtr w, const az_sp *p)
{
    char age[24];
    bool ok = xmlTextWriterStartElement(w, BAD_CAST "Cors") >= 0;
    for (size_t i = 0; ok && i < p->nrules; i++) {
        const az_sp_cors *r = &p->rules[i];
        snprintf(age, sizeof age, "%lld", (long long)r->max_age);
        ok = xmlTextWriterStartElement(w, BAD_CAST "CorsRule") >= 0 &&
             az_sp_el(w, "AllowedOrigins", r->origins) &&
             az_sp_el(w, "AllowedMethods", r->methods) && az_sp_el(w, "MaxAgeInSeconds", age) &&
             az_sp_el(w, "ExposedHeaders", r->exposed) &&
             az_sp_el(w, "AllowedHeaders", r->allowed) && xmlTextWriterEndElement(w) >= 0;
    }
    return ok && xmlTextWriterEndElement(w) >= 0;
}

/* The sections in the service's order; absent sections are left out. */
static char *az_sp_write(const az_sp *p, size_t *len)
{
    xmlBufferPtr buf;
    xmlTextWriterPtr w = az_xml_writer_new(&buf, false);
    bool ok;

    if (!w)
        return NULL;
    ok = xmlTextWriterStartElement(w, BAD_CAST "StorageServiceProperties") >= 0;
    if (ok && p->has_logging)
        ok = az_sp_logging_write(w, &p->logging);
    if (ok && p->has_hour)
        ok = az_sp_metrics_write(w, "HourMetrics", &p->hour);
    if (ok && p->has_minute)
        ok = az_sp_metrics_write(w, "MinuteMetrics", &p->minute);
    if (ok && p->has_cors)
        ok = az_sp_cors_write(w, p);
    return az_xml_writer_finish(w, buf, ok, len);
}

/* ------------------------------------------------------------------------ */
/* Service properties: the entry points.                                     */

/* The normalised document holds only the sections the request carried;
 * keeping the stored values of the others is the caller's business. */
mt_status az_service_properties_read(const char *body, size_t len, char **normalised)
{
    az_sp p;
    xmlDocPtr doc;
    xmlNodePtr root;
    mt_status st;

    *normalised = NULL;
    memset(&p, 0, sizeof p);
    st = az_xml_root(body, len, "StorageServiceProperties", &doc, &root);
    if (!mt_is_ok(&st))
        return st;
    st = az_sp_walk(root, &p);
    xmlFreeDoc(doc);
    if (mt_is_ok(&st)) {
        *normalised = az_sp_write(&p, NULL);
        if (!*normalised)
            st = az_xml_oom();
    }
    az_sp_clear(&p);
    return st;
}

/* What a new account reports: logging and metrics off, no CORS rules. */
char *az_service_properties_default(size_t *len)
{
    az_sp p;

    memset(&p, 0, sizeof p);
    p.has_logging = p.has_hour = p.has_minute = p.has_cors = true;
    return az_sp_write(&p, len);
}

/*
 * az_service.c -- Get/Set Table Service Properties: the XML document of
 * logging, metrics and CORS rules, validated, normalised and merged.
 *
 * A Set carries any of the four sections; the ones it leaves out keep
 * their stored values, as with the service, so the stored document is
 * read back and the new sections laid over it (az_service_properties_update).
 * Properties are rebuilt from what was validated rather than echoed, so the
 * stored document is always one this file wrote, which is what lets the
 * CORS rules be read back from it (az_service_properties_cors) without
 * a second model.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "az_internal.h"

#define AZ_CORS_MAX_ITEMS 64
#define AZ_CORS_MAX_PREFIXED 2
#define AZ_CORS_MAX_ITEM_LEN 256
#define AZ_CORS_MAX_TOTAL 2048
#define AZ_RETENTION_MAX_DAYS 365

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

typedef struct az_sp {
    bool has_logging, has_hour, has_minute, has_cors;
    az_sp_logging logging;
    az_sp_metrics hour, minute;
    az_cors cors; /* the rules, normalised lists */
} az_sp;

static void az_sp_clear(az_sp *p)
{
    az_cors_clear(&p->cors);
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

static mt_status az_cors_rule_read(xmlNodePtr n, az_cors_rule *r)
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

static size_t az_cors_rule_size(const az_cors_rule *r)
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
        if (p->cors.n == AZ_CORS_MAX_RULES)
            return mt_error(400, AZ_XML_E_DOCUMENT, "At most %d CORS rules are allowed.",
                            AZ_CORS_MAX_RULES);
        memset(&p->cors.rules[p->cors.n], 0, sizeof p->cors.rules[0]);
        p->cors.n++; /* counted first, so that a partial rule is freed */
        st = az_cors_rule_read(c, &p->cors.rules[p->cors.n - 1]);
        if (!mt_is_ok(&st))
            return st;
        total += az_cors_rule_size(&p->cors.rules[p->cors.n - 1]);
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
    for (size_t i = 0; ok && i < p->cors.n; i++) {
        const az_cors_rule *r = &p->cors.rules[i];
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

/* The validated model of a document; *p is cleared on failure too. */
static mt_status az_sp_parse(const char *body, size_t len, az_sp *p)
{
    xmlDocPtr doc;
    xmlNodePtr root;
    mt_status st;

    memset(p, 0, sizeof *p);
    st = az_xml_root(body, len, "StorageServiceProperties", &doc, &root);
    if (!mt_is_ok(&st))
        return st;
    st = az_sp_walk(root, p);
    xmlFreeDoc(doc);
    if (!mt_is_ok(&st))
        az_sp_clear(p);
    return st;
}

static mt_status az_sp_finish(const az_sp *p, char **out)
{
    *out = az_sp_write(p, NULL);
    return *out ? mt_ok() : az_xml_oom();
}

/* The normalised document holds only the sections the request carried. */
mt_status az_service_properties_read(const char *body, size_t len, char **normalised)
{
    az_sp p;
    mt_status st;

    *normalised = NULL;
    st = az_sp_parse(body, len, &p);
    if (mt_is_ok(&st))
        st = az_sp_finish(&p, normalised);
    az_sp_clear(&p);
    return st;
}

mt_status az_service_properties_update(const char *stored, const char *body, size_t len,
                                       char **merged)
{
    az_sp cur, req;
    mt_status st;

    *merged = NULL;
    st = az_sp_parse(body, len, &req);
    if (!mt_is_ok(&st))
        return st;
    st = az_sp_parse(stored, strlen(stored), &cur);
    if (!mt_is_ok(&st)) {
        az_sp_clear(&req);
        return st;
    }
    if (req.has_logging) {
        cur.has_logging = true;
        cur.logging = req.logging;
    }
    if (req.has_hour) {
        cur.has_hour = true;
        cur.hour = req.hour;
    }
    if (req.has_minute) {
        cur.has_minute = true;
        cur.minute = req.minute;
    }
    if (req.has_cors) { /* the rules move over: an empty <Cors/> clears them */
        az_cors_clear(&cur.cors);
        cur.has_cors = true;
        cur.cors = req.cors;
        memset(&req.cors, 0, sizeof req.cors);
    }
    st = az_sp_finish(&cur, merged);
    az_sp_clear(&cur);
    az_sp_clear(&req);
    return st;
}

mt_status az_service_properties_cors(const char *doc, az_cors *out)
{
    az_sp p;
    mt_status st = az_sp_parse(doc, strlen(doc), &p);

    memset(out, 0, sizeof *out);
    if (mt_is_ok(&st)) {
        *out = p.cors;
        memset(&p.cors, 0, sizeof p.cors);
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

/*
 * az_xml.c -- the plain XML bodies of the Table service: the strict walk
 * they share, and stored access policies (Get/Set Table ACL). Service
 * properties, the other such body, are az_service.c's.
 *
 * These bodies are small, so each is read into a DOM and walked strictly,
 * which is simpler to get right than a streaming reader. Every document
 * passes through the hardened reader of az_xml_doc.c, as Atom bodies do.
 *
 * Errors are the service's: InvalidXmlDocument for a body that is not
 * well-formed or not the expected shape, MissingRequiredXmlNode,
 * UnsupportedXmlNode, InvalidXmlNodeValue for a value out of range.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "az_internal.h"

#define AZ_ACL_ID_MAX 64

/* ------------------------------------------------------------------------ */
/* Walking a document strictly.                                              */

mt_status az_xml_oom(void)
{
    return mt_oom();
}

static bool az_xml_is_space(const xmlChar *s)
{
    for (; s && *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return false;
    return true;
}

bool az_xml_named(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* Text between child elements must be blank; comments and PIs are fine. */
mt_status az_xml_check_node(xmlNodePtr n)
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
mt_status az_xml_fields(xmlNodePtr parent, az_xml_field *f, size_t nf)
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

mt_status az_xml_missing(const char *name)
{
    return mt_error(400, AZ_XML_E_MISSING, "The XML node '%s' is required.", name);
}

mt_status az_xml_bad_value(const char *name)
{
    return mt_error(400, AZ_XML_E_VALUE, "The value of XML node '%s' is not valid.", name);
}

/* The text of a leaf element, trimmed, as a malloc'd string. */
mt_status az_xml_leaf(xmlNodePtr n, char **out)
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

mt_status az_xml_bool(xmlNodePtr n, const char *name, bool *out)
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
mt_status az_xml_int(xmlNodePtr n, const char *name, int64_t lo, int64_t hi, int64_t *out)
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
mt_status az_xml_root(const char *body, size_t len, const char *name, xmlDocPtr *doc,
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

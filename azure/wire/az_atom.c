/*
 * az_atom.c -- writing entities and tables as Atom (OData v1-v3 over
 * AtomPub), the payload format of Table service versions before 2015-12-11
 * and of any client that asks for application/atom+xml, plus the XML error
 * document.
 *
 * Writing follows what the service emits: an <entry> (or a <feed> of
 * them) in the Atom namespace with the d: (data) and m: (metadata)
 * namespaces, the ETag as m:etag, id / category / edit link built from
 * the table and keys, and the properties as d:Name elements inside
 * <content type="application/xml"><m:properties>, typed with m:type
 * except for strings. DateTime has seven fractional digits, Binary is
 * base64, doubles print the shortest text that reads back to the same
 * bits, with INF, -INF and NaN for the special values as XmlConvert does.
 *
 * Element text is escaped here rather than by libxml2, because XML 1.0
 * cannot carry C0 controls and libxml2 would copy them through raw,
 * leaving a document no client can parse: they become character
 * references (which a tolerant reader accepts), a carriage return stays
 * a carriage return, and ill-formed UTF-8 becomes U+FFFD.
 *
 * Reading is az_atom_read.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "az_internal.h"

#define AZ_SCHEME AZ_NS_D "/scheme"

/* 0001-01-01 to 1970-01-01 in 100 ns ticks. */
#define AZ_UNIX_EPOCH_TICKS INT64_C(621355968000000000)

/* ------------------------------------------------------------------------ */
/* Small helpers.                                                            */

static const char *az_str(const char *s)
{
    return s ? s : "";
}

/* a, sep and b concatenated; the caller frees. */
static char *az_atom_join(const char *a, const char *sep, const char *b)
{
    mt_buf s = {0};
    mt_buf_puts(&s, a);
    mt_buf_puts(&s, sep);
    mt_buf_puts(&s, b);
    return mt_buf_take(&s, NULL);
}

/* ------------------------------------------------------------------------ */
/* Escaping element text.                                                    */

static void az_escape_cp(mt_buf *b, uint32_t cp, const unsigned char *raw, size_t n)
{
    char ref[16];

    switch (cp) {
    case '&':
        mt_buf_puts(b, "&amp;");
        return;
    case '<':
        mt_buf_puts(b, "&lt;");
        return;
    case '>':
        mt_buf_puts(b, "&gt;");
        return;
    case '\r': /* a parser would fold a raw CR into LF */
        mt_buf_puts(b, "&#13;");
        return;
    default:
        break;
    }
    if ((cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0xFFFE || cp == 0xFFFF) {
        snprintf(ref, sizeof ref, "&#x%X;", (unsigned)cp);
        mt_buf_puts(b, ref);
        return;
    }
    mt_buf_put(b, (const char *)raw, n);
}

/* s[0..n) as XML element text; the caller frees. */
static char *az_atom_escape(const char *s, size_t n)
{
    mt_buf b = {0};
    const unsigned char *u = (const unsigned char *)s;

    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = mt_utf8_seq(u + i, n - i, &cp);
        if (k == 0) {
            mt_buf_puts(&b, "\xEF\xBF\xBD");
            i++;
            continue;
        }
        az_escape_cp(&b, cp, u + i, k);
        i += k;
    }
    return mt_buf_take(&b, NULL);
}

static bool az_atom_text(xmlTextWriterPtr w, const char *s, size_t n)
{
    char *t = az_atom_escape(s, n);
    bool ok = t && xmlTextWriterWriteRaw(w, BAD_CAST t) >= 0;
    free(t);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Value text.                                                               */

/* Shortest text that strtod reads back to the same double. */
static void az_atom_double(double d, char out[40])
{
    if (isnan(d)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(d)) {
        strcpy(out, d > 0 ? "INF" : "-INF");
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(out, 40, "%.*g", p, d);
        if (strtod(out, NULL) == d)
            return;
    }
}

/* The text of a fixed-size value. */
static void az_atom_scalar(const mt_value *v, char out[MT_DATETIME_MAX + 8])
{
    switch (v->type) {
    case MT_EDM_INT32:
        snprintf(out, 16, "%d", (int)v->u.i32);
        break;
    case MT_EDM_INT64:
        snprintf(out, 24, "%lld", (long long)v->u.i64);
        break;
    case MT_EDM_DOUBLE:
        az_atom_double(v->u.dbl, out);
        break;
    case MT_EDM_BOOLEAN:
        strcpy(out, v->u.b ? "true" : "false");
        break;
    case MT_EDM_DATETIME:
        mt_datetime_format(v->u.ticks, out);
        break;
    case MT_EDM_GUID:
        mt_guid_format(v->u.guid, out);
        break;
    default:
        out[0] = '\0';
        break;
    }
}

static bool az_atom_value(xmlTextWriterPtr w, const mt_value *v)
{
    char text[MT_DATETIME_MAX + 8];
    bool ok = true;

    if (v->type != MT_EDM_STRING)
        ok = xmlTextWriterWriteAttribute(w, BAD_CAST "m:type", BAD_CAST mt_edm_name(v->type)) >= 0;
    if (!ok)
        return false;
    if (v->type == MT_EDM_STRING)
        return az_atom_text(w, v->u.bytes.ptr, v->u.bytes.len);
    if (v->type == MT_EDM_BINARY) {
        char *b64 = az_base64_encode((const uint8_t *)v->u.bytes.ptr, v->u.bytes.len);
        ok = b64 && xmlTextWriterWriteString(w, BAD_CAST b64) >= 0;
        free(b64);
        return ok;
    }
    az_atom_scalar(v, text);
    return xmlTextWriterWriteString(w, BAD_CAST text) >= 0;
}

/* ------------------------------------------------------------------------ */
/* Writing properties.                                                       */

/* Stored names are identifiers (the service refuses anything else), so
 * this only guards the output. */
bool az_atom_name_ok(const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    if (!*s || (*s >= '0' && *s <= '9') || *s == '-' || *s == '.')
        return false;
    for (; *s; s++)
        if (*s < 0x80 && !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                           (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

static bool az_atom_prop(xmlTextWriterPtr w, const char *name, const mt_value *v)
{
    char *el;
    bool ok;

    if (!az_atom_name_ok(name))
        return true; /* not representable; skipped */
    el = az_atom_join("d", ":", name);
    ok = el && xmlTextWriterStartElement(w, BAD_CAST el) >= 0;
    if (ok && v)
        ok = az_atom_value(w, v);
    else if (ok)
        ok = xmlTextWriterWriteAttribute(w, BAD_CAST "m:null", BAD_CAST "true") >= 0;
    free(el);
    return ok && xmlTextWriterEndElement(w) >= 0;
}

static bool az_atom_is_system(const char *name)
{
    return strcmp(name, "PartitionKey") == 0 || strcmp(name, "RowKey") == 0 ||
           strcmp(name, "Timestamp") == 0;
}

static bool az_atom_system_props(xmlTextWriterPtr w, const az_payload_ctx *c, const mt_entity *e)
{
    mt_value pk = mt_v_str(e->pk), rk = mt_v_str(e->rk), ts = mt_v_datetime(e->timestamp);
    bool ok = true;

    if (az_payload_selected(c, "PartitionKey"))
        ok = az_atom_prop(w, "PartitionKey", &pk);
    if (ok && az_payload_selected(c, "RowKey"))
        ok = az_atom_prop(w, "RowKey", &rk);
    if (ok && e->timestamp && az_payload_selected(c, "Timestamp"))
        ok = az_atom_prop(w, "Timestamp", &ts);
    return ok;
}

/* Under $select, each selected name once, in the order asked, and a
 * selected property the entity lacks as m:null, as the service does. */
static bool az_atom_selected_props(xmlTextWriterPtr w, const az_payload_ctx *c, const mt_entity *e)
{
    for (size_t i = 0; i < c->nselect; i++) {
        const char *name = c->select[i];
        bool seen = false;
        if (!name || az_atom_is_system(name))
            continue;
        for (size_t j = 0; j < i && !seen; j++)
            seen = c->select[j] && strcmp(c->select[j], name) == 0;
        if (!seen && !az_atom_prop(w, name, mt_entity_get(e, name)))
            return false;
    }
    return true;
}

static bool az_atom_props(xmlTextWriterPtr w, const az_payload_ctx *c, const mt_entity *e)
{
    bool ok = xmlTextWriterStartElement(w, BAD_CAST "content") >= 0 &&
              xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST "application/xml") >= 0 &&
              xmlTextWriterStartElement(w, BAD_CAST "m:properties") >= 0 &&
              az_atom_system_props(w, c, e);
    if (ok && c->select)
        ok = az_atom_selected_props(w, c, e);
    for (size_t i = 0; ok && !c->select && i < e->nprops; i++)
        ok = az_atom_prop(w, e->props[i].name, &e->props[i].value);
    return ok && xmlTextWriterEndElement(w) >= 0 && xmlTextWriterEndElement(w) >= 0;
}

/* ------------------------------------------------------------------------ */
/* Writing entries and feeds.                                                */

static int64_t az_atom_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 10000000 + ts.tv_nsec / 100 + AZ_UNIX_EPOCH_TICKS;
}

/* "table(PartitionKey='pk',RowKey='rk')"; the caller frees. */
static char *az_atom_entity_path(const char *table, const mt_entity *e)
{
    mt_buf b = {0};
    az_entity_path(&b, table, e->pk, e->rk, "");
    return mt_buf_take(&b, NULL);
}

/* "Tables('name')"; the caller frees. */
static char *az_atom_table_path(const char *name)
{
    mt_buf b = {0};
    mt_buf_puts(&b, "Tables(");
    az_path_key(&b, name, "");
    mt_buf_puts(&b, ")");
    return mt_buf_take(&b, NULL);
}

/* Opens <entry> or <feed>: xml:base and the namespaces when it is the
 * document's root, then the ETag. */
static bool az_atom_open(xmlTextWriterPtr w, const az_payload_ctx *c, const char *el, bool root,
                         const char *etag)
{
    char *base = az_atom_join(az_str(c->base_url), "", "/");
    bool ok = base && xmlTextWriterStartElement(w, BAD_CAST el) >= 0;
    if (ok && root)
        ok = xmlTextWriterWriteAttribute(w, BAD_CAST "xml:base", BAD_CAST base) >= 0 &&
             xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns", BAD_CAST AZ_NS_ATOM) >= 0 &&
             xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns:d", BAD_CAST AZ_NS_D) >= 0 &&
             xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns:m", BAD_CAST AZ_NS_M) >= 0;
    if (ok && etag)
        ok = xmlTextWriterWriteAttribute(w, BAD_CAST "m:etag", BAD_CAST etag) >= 0;
    free(base);
    return ok;
}

static bool az_atom_updated(xmlTextWriterPtr w, int64_t ticks)
{
    char t[MT_DATETIME_MAX];
    mt_datetime_format(ticks, t);
    return xmlTextWriterWriteElement(w, BAD_CAST "updated", BAD_CAST t) >= 0;
}

/* id, category, edit link, title, updated and author of an entry. */
static bool az_atom_entry_head(xmlTextWriterPtr w, const az_payload_ctx *c, const char *path,
                               const char *set, int64_t updated)
{
    char *id = az_atom_join(az_str(c->base_url), "/", path);
    char *term = az_atom_join(az_str(c->account), ".", set);
    bool ok =
        id && term && xmlTextWriterWriteElement(w, BAD_CAST "id", BAD_CAST id) >= 0 &&
        xmlTextWriterStartElement(w, BAD_CAST "category") >= 0 &&
        xmlTextWriterWriteAttribute(w, BAD_CAST "term", BAD_CAST term) >= 0 &&
        xmlTextWriterWriteAttribute(w, BAD_CAST "scheme", BAD_CAST AZ_SCHEME) >= 0 &&
        xmlTextWriterEndElement(w) >= 0 && xmlTextWriterStartElement(w, BAD_CAST "link") >= 0 &&
        xmlTextWriterWriteAttribute(w, BAD_CAST "rel", BAD_CAST "edit") >= 0 &&
        xmlTextWriterWriteAttribute(w, BAD_CAST "title", BAD_CAST set) >= 0 &&
        xmlTextWriterWriteAttribute(w, BAD_CAST "href", BAD_CAST path) >= 0 &&
        xmlTextWriterEndElement(w) >= 0 && xmlTextWriterStartElement(w, BAD_CAST "title") >= 0 &&
        xmlTextWriterEndElement(w) >= 0 && az_atom_updated(w, updated) &&
        xmlTextWriterStartElement(w, BAD_CAST "author") >= 0 &&
        xmlTextWriterStartElement(w, BAD_CAST "name") >= 0 && xmlTextWriterEndElement(w) >= 0 &&
        xmlTextWriterEndElement(w) >= 0;
    free(id);
    free(term);
    return ok;
}

static bool az_atom_entity_entry(xmlTextWriterPtr w, const az_payload_ctx *c, const mt_entity *e,
                                 bool root)
{
    const char *table = az_str(c->table);
    char *path = az_atom_entity_path(table, e);
    bool ok = path && az_atom_open(w, c, "entry", root, e->etag) &&
              az_atom_entry_head(w, c, path, table, e->timestamp ? e->timestamp : az_atom_now()) &&
              az_atom_props(w, c, e) && xmlTextWriterEndElement(w) >= 0;
    free(path);
    return ok;
}

/* id, title, updated and self link of a feed. */
static bool az_atom_feed_head(xmlTextWriterPtr w, const az_payload_ctx *c, const char *set)
{
    char *id = az_atom_join(az_str(c->base_url), "/", set);
    bool ok = id && az_atom_open(w, c, "feed", true, NULL) &&
              xmlTextWriterWriteElement(w, BAD_CAST "id", BAD_CAST id) >= 0 &&
              xmlTextWriterStartElement(w, BAD_CAST "title") >= 0 &&
              xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST "text") >= 0 &&
              xmlTextWriterWriteString(w, BAD_CAST set) >= 0 && xmlTextWriterEndElement(w) >= 0 &&
              az_atom_updated(w, az_atom_now()) &&
              xmlTextWriterStartElement(w, BAD_CAST "link") >= 0 &&
              xmlTextWriterWriteAttribute(w, BAD_CAST "rel", BAD_CAST "self") >= 0 &&
              xmlTextWriterWriteAttribute(w, BAD_CAST "title", BAD_CAST set) >= 0 &&
              xmlTextWriterWriteAttribute(w, BAD_CAST "href", BAD_CAST set) >= 0 &&
              xmlTextWriterEndElement(w) >= 0;
    free(id);
    return ok;
}

char *az_atom_entity_write(const az_payload_ctx *c, const mt_entity *e, size_t *len)
{
    xmlBufferPtr buf;
    xmlTextWriterPtr w = az_xml_writer_new(&buf, true);

    if (!w)
        return NULL;
    return az_xml_writer_finish(w, buf, az_atom_entity_entry(w, c, e, true), len);
}

char *az_atom_entities_write(const az_payload_ctx *c, const mt_entity_list *rows, size_t *len)
{
    xmlBufferPtr buf;
    xmlTextWriterPtr w = az_xml_writer_new(&buf, true);
    bool ok;

    if (!w)
        return NULL;
    ok = az_atom_feed_head(w, c, az_str(c->table));
    for (size_t i = 0; ok && rows && i < rows->n; i++)
        ok = az_atom_entity_entry(w, c, rows->v[i], false);
    return az_xml_writer_finish(w, buf, ok, len);
}

/* One table as an entry; the service gives tables no ETag. */
static bool az_atom_table_entry(xmlTextWriterPtr w, const az_payload_ctx *c, const char *name,
                                bool root, int64_t now)
{
    char *path = az_atom_table_path(name);
    mt_value v = mt_v_str(name);
    bool ok = path && az_atom_open(w, c, "entry", root, NULL) &&
              az_atom_entry_head(w, c, path, "Tables", now) &&
              xmlTextWriterStartElement(w, BAD_CAST "content") >= 0 &&
              xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST "application/xml") >= 0 &&
              xmlTextWriterStartElement(w, BAD_CAST "m:properties") >= 0 &&
              az_atom_prop(w, "TableName", &v) && xmlTextWriterEndElement(w) >= 0 &&
              xmlTextWriterEndElement(w) >= 0 && xmlTextWriterEndElement(w) >= 0;
    free(path);
    return ok;
}

char *az_atom_table_write(const az_payload_ctx *c, const char *name, size_t *len)
{
    xmlBufferPtr buf;
    xmlTextWriterPtr w = az_xml_writer_new(&buf, true);

    if (!w)
        return NULL;
    return az_xml_writer_finish(w, buf,
                                az_atom_table_entry(w, c, az_str(name), true, az_atom_now()), len);
}

char *az_atom_tables_write(const az_payload_ctx *c, char *const *names, size_t n, size_t *len)
{
    xmlBufferPtr buf;
    xmlTextWriterPtr w = az_xml_writer_new(&buf, true);
    int64_t now = az_atom_now();
    bool ok;

    if (!w)
        return NULL;
    ok = az_atom_feed_head(w, c, "Tables");
    for (size_t i = 0; ok && i < n; i++)
        ok = az_atom_table_entry(w, c, az_str(names[i]), false, now);
    return az_xml_writer_finish(w, buf, ok, len);
}

char *az_xml_error_write(const char *code, const char *message, size_t *len)
{
    xmlBufferPtr buf;
    xmlTextWriterPtr w = az_xml_writer_new(&buf, false);
    const char *msg = az_str(message);
    bool ok;

    if (!w)
        return NULL;
    ok = xmlTextWriterStartElement(w, BAD_CAST "error") >= 0 &&
         xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns", BAD_CAST AZ_NS_M) >= 0 &&
         xmlTextWriterStartElement(w, BAD_CAST "code") >= 0 &&
         az_atom_text(w, az_str(code), strlen(az_str(code))) && xmlTextWriterEndElement(w) >= 0 &&
         xmlTextWriterStartElement(w, BAD_CAST "message") >= 0 &&
         xmlTextWriterWriteAttribute(w, BAD_CAST "xml:lang", BAD_CAST "en-US") >= 0 &&
         az_atom_text(w, msg, strlen(msg)) && xmlTextWriterEndElement(w) >= 0;
    return az_xml_writer_finish(w, buf, ok, len);
}

const az_codec az_atom_codec = {
    az_atom_entity_read_keys, az_atom_entity_write, az_atom_entities_write, az_atom_table_read,
    az_atom_table_write, az_atom_tables_write, az_xml_error_write,
};

/*
 * az_atom.c -- entities and tables as Atom (OData v1-v3 over AtomPub), the
 * payload format of Table service versions before 2015-12-11 and of any
 * client that asks for application/atom+xml, plus the XML error document.
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
 * Reading accepts the entries clients send: m:properties inside content
 * (or directly inside the entry), each property typed by m:type, a
 * missing m:type meaning Edm.String, m:null="true" meaning no value.
 * Lexical forms are those of XmlConvert: surrounding blanks are allowed
 * for everything but strings, booleans are true/false/1/0, Guids may be
 * braced. A bad value, an unknown type or any other element where a
 * value belongs is 400 InvalidInput; the property count is bounded as
 * the service bounds it, which also bounds the work of a hostile body.
 * Parsing goes through the hardened reader in az_xml.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "az.h"
#include "az_internal.h"

/* The hardened reader and the writer set-up, defined in az_xml.c. */
xmlDocPtr az_xml_doc_read(const char *body, size_t len, size_t max, const char *code,
                          mt_status *st);
xmlTextWriterPtr az_xml_writer_new(xmlBufferPtr *buf, bool standalone);
char *az_xml_writer_finish(xmlTextWriterPtr w, xmlBufferPtr buf, bool ok, size_t *len);

#define AZ_NS_ATOM "http://www.w3.org/2005/Atom"
#define AZ_NS_D "http://schemas.microsoft.com/ado/2007/08/dataservices"
#define AZ_NS_M "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"
#define AZ_SCHEME AZ_NS_D "/scheme"

#define AZ_ERR_DUP_PROP "DuplicatePropertiesSpecified"
#define AZ_ERR_DUP_KEY "DuplicateKeyPropertySpecified"

/* The proxy's request cap; an entity is at most 1 MiB on the wire. */
#define AZ_ATOM_MAX_BODY (4 * 1024 * 1024)
/* 0001-01-01 to 1970-01-01 in 100 ns ticks. */
#define AZ_UNIX_EPOCH_TICKS INT64_C(621355968000000000)

/* ------------------------------------------------------------------------ */
/* A growable string.                                                        */

typedef struct az_sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} az_sbuf;

static void az_sbuf_put(az_sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void az_sbuf_puts(az_sbuf *b, const char *s)
{
    az_sbuf_put(b, s, strlen(s));
}

/* The string (the caller's), or NULL after an allocation failure. */
static char *az_sbuf_take(az_sbuf *b)
{
    if (b->oom || !b->p) {
        free(b->p);
        return b->oom ? NULL : strdup("");
    }
    return b->p;
}

static const char *az_str(const char *s)
{
    return s ? s : "";
}

/* a, sep and b concatenated; the caller frees. */
static char *az_atom_join(const char *a, const char *sep, const char *b)
{
    az_sbuf s = {0};
    az_sbuf_puts(&s, a);
    az_sbuf_puts(&s, sep);
    az_sbuf_puts(&s, b);
    return az_sbuf_take(&s);
}

/* ------------------------------------------------------------------------ */
/* Escaping element text.                                                    */

/* Length of the well-formed UTF-8 sequence at s (1..4), 0 if ill-formed;
 * *cp receives the code point. Overlongs and surrogates are ill-formed. */
static size_t az_utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0], min;
    size_t len;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, min = 0x80, c &= 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, min = 0x800, c &= 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, min = 0x10000, c &= 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static void az_escape_cp(az_sbuf *b, unsigned cp, const unsigned char *raw, size_t n)
{
    char ref[16];

    switch (cp) {
    case '&':
        az_sbuf_puts(b, "&amp;");
        return;
    case '<':
        az_sbuf_puts(b, "&lt;");
        return;
    case '>':
        az_sbuf_puts(b, "&gt;");
        return;
    case '\r': /* a parser would fold a raw CR into LF */
        az_sbuf_puts(b, "&#13;");
        return;
    default:
        break;
    }
    if ((cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0xFFFE || cp == 0xFFFF) {
        snprintf(ref, sizeof ref, "&#x%X;", cp);
        az_sbuf_puts(b, ref);
        return;
    }
    az_sbuf_put(b, (const char *)raw, n);
}

/* s[0..n) as XML element text; the caller frees. */
static char *az_atom_escape(const char *s, size_t n)
{
    az_sbuf b = {0};
    const unsigned char *u = (const unsigned char *)s;

    for (size_t i = 0; i < n;) {
        unsigned cp;
        size_t k = az_utf8_seq(u + i, n - i, &cp);
        if (k == 0) {
            az_sbuf_puts(&b, "\xEF\xBF\xBD");
            i++;
            continue;
        }
        az_escape_cp(&b, cp, u + i, k);
        i += k;
    }
    return az_sbuf_take(&b);
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

static void az_atom_guid(const uint8_t g[16], char out[40])
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;

    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[k++] = '-';
        out[k++] = hex[g[i] >> 4];
        out[k++] = hex[g[i] & 15];
    }
    out[k] = '\0';
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
        az_atom_guid(v->u.guid, out);
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

/* Only an XML name can become a d: element. Stored names are identifiers
 * (the service refuses anything else), so this only guards the output. */
static bool az_atom_name_ok(const char *name)
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

static bool az_atom_selected(const az_payload_ctx *c, const char *name)
{
    if (!c->select)
        return true;
    for (size_t i = 0; i < c->nselect; i++)
        if (c->select[i] && strcmp(c->select[i], name) == 0)
            return true;
    return false;
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

    if (az_atom_selected(c, "PartitionKey"))
        ok = az_atom_prop(w, "PartitionKey", &pk);
    if (ok && az_atom_selected(c, "RowKey"))
        ok = az_atom_prop(w, "RowKey", &rk);
    if (ok && e->timestamp && az_atom_selected(c, "Timestamp"))
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

/* A key inside a resource path: quotes doubled, then everything but
 * unreserved characters and the quote percent-encoded. */
static void az_atom_key(az_sbuf *b, const char *k)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)k; *p; p++) {
        char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~'", *p);
        if (*p == '\'')
            az_sbuf_put(b, "''", 2);
        else if (plain)
            az_sbuf_put(b, (const char *)p, 1);
        else
            az_sbuf_put(b, esc, 3);
    }
}

/* "table(PartitionKey='pk',RowKey='rk')"; the caller frees. */
static char *az_atom_entity_path(const char *table, const mt_entity *e)
{
    az_sbuf b = {0};
    az_sbuf_puts(&b, table);
    az_sbuf_puts(&b, "(PartitionKey='");
    az_atom_key(&b, e->pk);
    az_sbuf_puts(&b, "',RowKey='");
    az_atom_key(&b, e->rk);
    az_sbuf_puts(&b, "')");
    return az_sbuf_take(&b);
}

/* "Tables('name')"; the caller frees. */
static char *az_atom_table_path(const char *name)
{
    az_sbuf b = {0};
    az_sbuf_puts(&b, "Tables('");
    az_atom_key(&b, name);
    az_sbuf_puts(&b, "')");
    return az_sbuf_take(&b);
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

/* ------------------------------------------------------------------------ */
/* Reading: finding the properties.                                          */

static mt_status az_atom_bad(const char *what)
{
    return mt_error(400, MT_ERR_INVALID_INPUT, "%s", what);
}

static bool az_atom_is(xmlNodePtr n, const char *ns, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           strcmp((const char *)n->ns->href, ns) == 0 && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr az_atom_child(xmlNodePtr parent, const char *ns, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
        if (az_atom_is(c, ns, name))
            return c;
    return NULL;
}

/* Parses an entry; *props is its m:properties, or NULL when it has none.
 * The caller frees *doc. */
static mt_status az_atom_open_entry(const char *body, size_t len, xmlDocPtr *doc, xmlNodePtr *props)
{
    mt_status st;
    xmlNodePtr root;

    *props = NULL;
    *doc = az_xml_doc_read(body, len, AZ_ATOM_MAX_BODY, MT_ERR_INVALID_INPUT, &st);
    if (!*doc)
        return st;
    root = xmlDocGetRootElement(*doc);
    if (!az_atom_is(root, AZ_NS_ATOM, "entry")) {
        xmlFreeDoc(*doc);
        *doc = NULL;
        return az_atom_bad("The body must be an Atom entry.");
    }
    *props = az_atom_child(az_atom_child(root, AZ_NS_ATOM, "content"), AZ_NS_M, "properties");
    if (!*props)
        *props = az_atom_child(root, AZ_NS_M, "properties");
    return mt_ok();
}

/* The text of a property element (malloc'd, NUL-terminated). A property
 * holds text only: a nested element would be a complex value. */
static mt_status az_atom_prop_text(xmlNodePtr n, char **out, size_t *len)
{
    az_sbuf b = {0};

    *out = NULL;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
            az_sbuf_puts(&b, c->content ? (const char *)c->content : "");
        else if (c->type == XML_ELEMENT_NODE || c->type == XML_ENTITY_REF_NODE) {
            free(b.p);
            return mt_error(400, MT_ERR_INVALID_INPUT, "Property '%.64s' must hold a value.",
                            (const char *)n->name);
        }
    }
    *out = az_sbuf_take(&b);
    *len = *out ? strlen(*out) : 0;
    return *out ? mt_ok() : mt_error(500, MT_ERR_INTERNAL, "Out of memory.");
}

/* ------------------------------------------------------------------------ */
/* Reading: lexical forms.                                                   */

static bool az_xml_blank_char(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void az_atom_trim(const char **s, size_t *n)
{
    while (*n && az_xml_blank_char(**s))
        (*s)++, (*n)--;
    while (*n && az_xml_blank_char((*s)[*n - 1]))
        (*n)--;
}

/* [+-]digits within [lo, hi]. */
static bool az_atom_int(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out)
{
    bool neg = false;
    uint64_t mag = 0, limit;
    size_t i = 0;

    az_atom_trim(&s, &n);
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    limit = neg ? (uint64_t)(-(lo + 1)) + 1 : (uint64_t)hi;
    if (i == n)
        return false;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (mag > (limit - (uint64_t)(s[i] - '0')) / 10)
            return false;
        mag = mag * 10 + (uint64_t)(s[i] - '0');
    }
    *out = neg ? (mag == 0 ? 0 : -(int64_t)(mag - 1) - 1) : (int64_t)mag;
    return true;
}

/* [+-](digits[.digits*] | .digits)([eE][+-]digits), checked before strtod
 * so that hex floats, "inf" and "nan" are not let through. */
static bool az_atom_float_syntax(const char *s, size_t n)
{
    size_t i = 0, d = 0;

    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        d++;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            d++;
    if (d == 0)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e = 0;
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            e++;
        if (e == 0)
            return false;
    }
    return i == n;
}

static bool az_atom_span_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static bool az_atom_dbl(const char *s, size_t n, double *out)
{
    char *tmp;

    az_atom_trim(&s, &n);
    if (az_atom_span_is(s, n, "NaN")) {
        *out = NAN;
        return true;
    }
    if (az_atom_span_is(s, n, "INF") || az_atom_span_is(s, n, "Infinity") ||
        az_atom_span_is(s, n, "-INF") || az_atom_span_is(s, n, "-Infinity")) {
        *out = s[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (!az_atom_float_syntax(s, n) || !(tmp = strndup(s, n)))
        return false;
    *out = strtod(tmp, NULL);
    free(tmp);
    /* Underflow reads as the nearest value, as in .NET; overflow is an
     * error rather than a silent infinity. */
    return !isinf(*out);
}

static bool az_atom_bool(const char *s, size_t n, bool *out)
{
    az_atom_trim(&s, &n);
    if (az_atom_span_is(s, n, "true") || az_atom_span_is(s, n, "1"))
        *out = true;
    else if (az_atom_span_is(s, n, "false") || az_atom_span_is(s, n, "0"))
        *out = false;
    else
        return false;
    return true;
}

static int az_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 32 hex digits, with dashes after 8, 12, 16 and 20 when dashed. */
static bool az_atom_guid_digits(const char *s, size_t n, bool dashed, uint8_t g[16])
{
    size_t i = 0, k = 0;

    if (n != (dashed ? 36u : 32u))
        return false;
    while (i < n) {
        if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i++] != '-')
                return false;
            continue;
        }
        int hi = az_hex(s[i]), lo = az_hex(s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        g[k++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return k == 16;
}

/* The D, N, B and P forms of a Guid. */
static bool az_atom_guid_read(const char *s, size_t n, uint8_t g[16])
{
    az_atom_trim(&s, &n);
    if (n == 38 && ((s[0] == '{' && s[37] == '}') || (s[0] == '(' && s[37] == ')')))
        return az_atom_guid_digits(s + 1, 36, true, g);
    return az_atom_guid_digits(s, n, n == 36, g);
}

/* Base64 with blanks anywhere, as Convert.FromBase64String allows.
 * *out is malloc'd (possibly empty). */
static bool az_atom_binary(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
    char *tmp = malloc(n + 1);
    size_t k = 0;
    bool ok;

    if (!tmp)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!az_xml_blank_char(s[i]))
            tmp[k++] = s[i];
    tmp[k] = '\0';
    if (k == 0) {
        *out = malloc(1);
        *outlen = 0;
        ok = *out != NULL;
    } else
        ok = az_base64_decode(tmp, k, out, outlen);
    free(tmp);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Reading: typed values.                                                    */

static bool az_atom_type(const char *name, mt_edm *t)
{
    static const mt_edm all[] = {MT_EDM_STRING,  MT_EDM_INT32,    MT_EDM_INT64, MT_EDM_DOUBLE,
                                 MT_EDM_BOOLEAN, MT_EDM_DATETIME, MT_EDM_GUID,  MT_EDM_BINARY};
    if (!name) {
        *t = MT_EDM_STRING;
        return true;
    }
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, mt_edm_name(all[i])) == 0) {
            *t = all[i];
            return true;
        }
    return false;
}

/* Fills *v from text; a String or Binary value borrows text or *owned. */
static bool az_atom_parse(mt_edm t, const char *text, size_t n, mt_value *v, uint8_t **owned)
{
    int64_t x;
    size_t blen;
    const char *s = text;
    size_t tn = n;

    v->type = t;
    switch (t) {
    case MT_EDM_STRING:
        *v = mt_v_strn(text, n);
        return true;
    case MT_EDM_INT32:
        if (!az_atom_int(text, n, INT32_MIN, INT32_MAX, &x))
            return false;
        *v = mt_v_i32((int32_t)x);
        return true;
    case MT_EDM_INT64:
        return az_atom_int(text, n, INT64_MIN, INT64_MAX, &v->u.i64);
    case MT_EDM_DOUBLE:
        return az_atom_dbl(text, n, &v->u.dbl);
    case MT_EDM_BOOLEAN:
        return az_atom_bool(text, n, &v->u.b);
    case MT_EDM_DATETIME:
        az_atom_trim(&s, &tn);
        return mt_datetime_parse(s, tn, &v->u.ticks);
    case MT_EDM_GUID:
        return az_atom_guid_read(text, n, v->u.guid);
    case MT_EDM_BINARY:
        if (!az_atom_binary(text, n, owned, &blen))
            return false;
        *v = mt_v_binary(*owned, blen);
        return true;
    }
    return false;
}

/* Reads m:type and m:null of n. *null is true for m:null="true". */
static mt_status az_atom_attrs(xmlNodePtr n, mt_edm *t, bool *null)
{
    xmlChar *type = xmlGetNsProp(n, BAD_CAST "type", BAD_CAST AZ_NS_M);
    xmlChar *nul = xmlGetNsProp(n, BAD_CAST "null", BAD_CAST AZ_NS_M);
    mt_status st = mt_ok();

    *null = false;
    if (!az_atom_type((const char *)type, t))
        st = mt_error(400, MT_ERR_INVALID_INPUT, "Property '%.64s' has an unknown type '%.32s'.",
                      (const char *)n->name, (const char *)type);
    else if (nul && strcmp((const char *)nul, "true") == 0)
        *null = true;
    else if (nul && strcmp((const char *)nul, "false") != 0)
        st = mt_error(400, MT_ERR_INVALID_INPUT, "Property '%.64s' has a bad m:null.",
                      (const char *)n->name);
    xmlFree(type);
    xmlFree(nul);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Reading: entities.                                                        */

typedef struct az_atom_reader {
    mt_entity *e;
    bool have_pk, have_rk;
} az_atom_reader;

/* PartitionKey and RowKey: strings, at most once each. */
static mt_status az_atom_key_prop(az_atom_reader *r, bool is_pk, mt_edm t, bool null, char *text)
{
    bool *have = is_pk ? &r->have_pk : &r->have_rk;
    char **slot = is_pk ? &r->e->pk : &r->e->rk;
    const char *name = is_pk ? "PartitionKey" : "RowKey";

    if (t != MT_EDM_STRING)
        return mt_error(400, MT_ERR_INVALID_INPUT, "%s must be an Edm.String.", name);
    if (*have)
        return mt_error(400, AZ_ERR_DUP_KEY, "%s is specified more than once.", name);
    *have = true;
    if (null)
        return mt_ok();
    free(*slot);
    *slot = text; /* taken */
    return mt_ok();
}

static mt_status az_atom_user_prop(az_atom_reader *r, const char *name, mt_edm t, char *text,
                                   size_t n)
{
    mt_value v;
    uint8_t *owned = NULL;
    size_t before = r->e->nprops;

    if (mt_entity_get(r->e, name))
        return mt_error(400, AZ_ERR_DUP_PROP, "Property '%.64s' is specified more than once.",
                        name);
    if (r->e->nprops >= MT_MAX_USER_PROPS)
        return mt_error(400, MT_ERR_TOO_MANY_PROPS, "The entity has more than %d properties.",
                        MT_MAX_USER_PROPS);
    memset(&v, 0, sizeof v);
    if (!az_atom_parse(t, text, n, &v, &owned)) {
        free(owned);
        return mt_error(400, MT_ERR_INVALID_INPUT,
                        "The value of property '%.64s' is not a valid %s.", name, mt_edm_name(t));
    }
    mt_entity_set(r->e, name, &v);
    free(owned);
    if (r->e->nprops == before)
        return mt_error(500, MT_ERR_INTERNAL, "Out of memory.");
    return mt_ok();
}

/* A property whose m:null is true carries no value, as the service
 * stores none; its m:type is still checked. */
static mt_status az_atom_prop_read(az_atom_reader *r, xmlNodePtr n)
{
    const char *name = (const char *)n->name;
    mt_edm t;
    bool null;
    char *text = NULL;
    size_t len = 0;
    mt_status st = az_atom_attrs(n, &t, &null);

    if (mt_is_ok(&st))
        st = az_atom_prop_text(n, &text, &len);
    if (!mt_is_ok(&st))
        return st;
    if (strcmp(name, "PartitionKey") == 0 || strcmp(name, "RowKey") == 0) {
        st = az_atom_key_prop(r, name[0] == 'P', t, null, text);
        if (!mt_is_ok(&st) || null)
            free(text);
        return st;
    }
    if (strcmp(name, "Timestamp") != 0 && !null)
        st = az_atom_user_prop(r, name, t, text, len);
    free(text);
    return st;
}

static mt_status az_atom_props_read(az_atom_reader *r, xmlNodePtr props)
{
    for (xmlNodePtr c = props ? props->children : NULL; c; c = c->next) {
        mt_status st;
        if (c->type == XML_ENTITY_REF_NODE)
            return az_atom_bad("Entity references are not allowed.");
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!c->ns || !c->ns->href || strcmp((const char *)c->ns->href, AZ_NS_D) != 0 ||
            !az_atom_name_ok((const char *)c->name))
            return mt_error(400, MT_ERR_INVALID_INPUT,
                            "Element '%.64s' in m:properties is not a data property.",
                            (const char *)c->name);
        st = az_atom_prop_read(r, c);
        if (!mt_is_ok(&st))
            return st;
    }
    return mt_ok();
}

mt_status az_atom_entity_read(const char *body, size_t len, mt_entity **out)
{
    az_atom_reader r = {0};
    xmlDocPtr doc;
    xmlNodePtr props;
    mt_status st;

    *out = NULL;
    st = az_atom_open_entry(body, len, &doc, &props);
    if (!mt_is_ok(&st))
        return st;
    r.e = mt_entity_new(NULL, NULL);
    if (!r.e)
        st = mt_error(500, MT_ERR_INTERNAL, "Out of memory.");
    else
        st = az_atom_props_read(&r, props);
    xmlFreeDoc(doc);
    if (!mt_is_ok(&st)) {
        mt_entity_free(r.e);
        return st;
    }
    *out = r.e;
    return st;
}

/* ------------------------------------------------------------------------ */
/* Reading: Create Table.                                                    */

mt_status az_atom_table_read(const char *body, size_t len, char **name)
{
    xmlDocPtr doc;
    xmlNodePtr props, n;
    mt_edm t;
    bool null = false;
    size_t tlen;
    mt_status st;

    *name = NULL;
    st = az_atom_open_entry(body, len, &doc, &props);
    if (!mt_is_ok(&st))
        return st;
    n = az_atom_child(props, AZ_NS_D, "TableName");
    if (!n)
        st = az_atom_bad("The TableName property is required.");
    else
        st = az_atom_attrs(n, &t, &null);
    if (mt_is_ok(&st) && (t != MT_EDM_STRING || null))
        st = az_atom_bad("TableName must be a non-null Edm.String.");
    if (mt_is_ok(&st))
        st = az_atom_prop_text(n, name, &tlen);
    xmlFreeDoc(doc);
    return st;
}

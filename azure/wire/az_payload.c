/*
 * az_payload.c -- the payload calls of az.h: which format a response takes
 * (format negotiation), and each call handed to that format's reader or
 * writer, JSON (az_json.c, az_json_write.c) or Atom (az_atom.c,
 * az_atom_read.c, and az_xml_error_write for errors).
 *
 * The formats are tables of functions (az_codec) rather than a switch in
 * every call, so a call names what it does once and a format says in one
 * place what it implements.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "az_internal.h"

/* ------------------------------------------------------------------------ */
/* Format negotiation.                                                       */

static bool az_span_ieq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

static void az_trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t'))
        (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* A weight "0", "1" or "0.xyz" (RFC 7231), by hand: atof would follow the
 * locale's decimal point. Anything else weighs 0, i.e. not acceptable. */
static double az_qvalue(const char *s, size_t n)
{
    if (n == 0 || (s[0] != '0' && s[0] != '1') || (n > 1 && s[1] != '.'))
        return 0;
    double q = s[0] - '0', scale = 0.1;
    for (size_t i = 2; i < n && i < 5; i++, scale /= 10) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        q += (s[i] - '0') * scale;
    }
    return q > 1 ? 1 : q;
}

/* One parameter of a media range: odata=... sets the level, q=... the
 * weight; others (charset, streaming, IEEE754Compatible) do not matter. */
static bool az_media_param(const char *s, size_t n, az_metadata *md, double *q)
{
    const char *eq = memchr(s, '=', n);
    if (!eq)
        return true;
    const char *k = s, *v = eq + 1;
    size_t kn = (size_t)(eq - s), vn = n - kn - 1;
    az_trim(&k, &kn);
    az_trim(&v, &vn);
    if (az_span_ieq(k, kn, "q")) {
        *q = az_qvalue(v, vn);
    } else if (az_span_ieq(k, kn, "odata")) {
        if (az_span_ieq(v, vn, "nometadata"))
            *md = AZ_META_NONE;
        else if (az_span_ieq(v, vn, "minimalmetadata"))
            *md = AZ_META_MINIMAL;
        else if (az_span_ieq(v, vn, "fullmetadata"))
            *md = AZ_META_FULL;
        else
            return false; /* verbose and anything else: not served */
    }
    return true;
}

/* One media range of Accept. A wildcard gets JSON with minimal metadata:
 * that is what the service answers from 2015-12-11 on, and a caller that
 * serves an older x-ms-version and wants Atom there must decide so itself,
 * since the version is not an argument here. */
static bool az_media_range(const char *s, size_t n, az_format *fmt, az_metadata *md, double *q)
{
    const char *semi = memchr(s, ';', n);
    size_t tn = semi ? (size_t)(semi - s) : n;
    const char *t = s;
    az_trim(&t, &tn);
    *fmt = AZ_FMT_JSON;
    *md = AZ_META_MINIMAL;
    *q = 1.0;
    bool json = az_span_ieq(t, tn, "application/json");
    if (az_span_ieq(t, tn, "application/atom+xml") || az_span_ieq(t, tn, "application/xml"))
        *fmt = AZ_FMT_ATOM;
    else if (!json && !az_span_ieq(t, tn, "*/*") && !az_span_ieq(t, tn, "application/*"))
        return false;
    while (semi) {
        const char *p = semi + 1, *next = memchr(p, ';', n - (size_t)(p - s));
        size_t pn = next ? (size_t)(next - p) : n - (size_t)(p - s);
        az_metadata pmd = *md;
        if (!az_media_param(p, pn, &pmd, q))
            return false;
        if (json)
            *md = pmd;
        semi = next;
    }
    return *q > 0;
}

/* The acceptable range with the highest weight; the first on a tie. */
static bool az_accept_list(const char *s, az_format *fmt, az_metadata *md)
{
    double best = -1;
    for (const char *p = s; p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        az_format f;
        az_metadata m;
        double q;
        if (az_media_range(p, n, &f, &m, &q) && q > best) {
            best = q;
            *fmt = f;
            *md = m;
        }
        p = comma ? comma + 1 : NULL;
    }
    return best > 0;
}

static bool az_blank(const char *s)
{
    return !s || s[strspn(s, " \t")] == '\0';
}

bool az_format_negotiate(const char *accept, const char *format_param, az_format *fmt,
                         az_metadata *md)
{
    *fmt = AZ_FMT_JSON;
    *md = AZ_META_MINIMAL;
    /* $format wins over Accept (OData 3.0); it may also be a short name. */
    const char *src = az_blank(format_param) ? accept : format_param;
    if (az_blank(src))
        return true;
    if (src == format_param && (strcasecmp(src, "json") == 0))
        return true;
    if (src == format_param && (strcasecmp(src, "atom") == 0 || strcasecmp(src, "xml") == 0)) {
        *fmt = AZ_FMT_ATOM;
        return true;
    }
    if (az_accept_list(src, fmt, md))
        return true;
    *fmt = AZ_FMT_JSON;
    *md = AZ_META_MINIMAL;
    return false;
}

mt_status az_body_format(const char *content_type, az_format *fmt)
{
    *fmt = AZ_FMT_JSON;
    if (az_blank(content_type))
        return mt_ok();
    const char *semi = strchr(content_type, ';');
    const char *t = content_type;
    size_t n = semi ? (size_t)(semi - t) : strlen(t);
    az_trim(&t, &n);
    if (az_span_ieq(t, n, "application/json"))
        return mt_ok();
    if (az_span_ieq(t, n, "application/atom+xml") || az_span_ieq(t, n, "application/xml")) {
        *fmt = AZ_FMT_ATOM;
        return mt_ok();
    }
    return mt_error(415, "MediaTypeNotSupported", "None of the provided media types are supported");
}

/* ------------------------------------------------------------------------ */
/* Dispatch.                                                                 */

/* Anything but Atom is JSON. */
static const az_codec *az_codec_of(az_format fmt)
{
    return fmt == AZ_FMT_ATOM ? &az_atom_codec : &az_json_codec;
}

mt_status az_entity_read(az_format fmt, const char *body, size_t len, mt_entity **out)
{
    unsigned keys;
    return az_entity_read_keys(fmt, body, len, out, &keys);
}

mt_status az_entity_read_keys(az_format fmt, const char *body, size_t len, mt_entity **out,
                              unsigned *keys)
{
    *out = NULL;
    *keys = 0;
    return az_codec_of(fmt)->entity_read(body, len, out, keys);
}

char *az_entity_write(az_format fmt, const az_payload_ctx *c, const mt_entity *e, size_t *len)
{
    return az_codec_of(fmt)->entity_write(c, e, len);
}

char *az_entities_write(az_format fmt, const az_payload_ctx *c, const mt_entity_list *rows,
                        size_t *len)
{
    return az_codec_of(fmt)->entities_write(c, rows, len);
}

mt_status az_table_read(az_format fmt, const char *body, size_t len, char **name)
{
    *name = NULL;
    return az_codec_of(fmt)->table_read(body, len, name);
}

char *az_table_write(az_format fmt, const az_payload_ctx *c, const char *name, size_t *len)
{
    return az_codec_of(fmt)->table_write(c, name, len);
}

char *az_tables_write(az_format fmt, const az_payload_ctx *c, char *const *names, size_t n,
                      size_t *len)
{
    return az_codec_of(fmt)->tables_write(c, names, n, len);
}

char *az_error_write(az_format fmt, const char *code, const char *message, size_t *len)
{
    return az_codec_of(fmt)->error_write(code, message, len);
}

bool az_payload_selected(const az_payload_ctx *c, const char *name)
{
    if (!c->select)
        return true;
    for (size_t i = 0; i < c->nselect; i++)
        if (c->select[i] && strcmp(c->select[i], name) == 0)
            return true;
    return false;
}

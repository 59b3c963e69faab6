/*
 * az_json.c -- entity and table payloads in JSON (OData v3 "JSON light"),
 * format negotiation, error bodies, and the dispatch of every payload call
 * of az.h to JSON here or to Atom in az_atom.c.
 *
 * Writing follows what the service emits at each metadata level, because
 * SDKs infer types from it:
 *   - nometadata: values only; Int64 and the other non-JSON types become
 *     plain strings and the client must know what they are.
 *   - minimalmetadata: odata.metadata and odata.etag, plus "P@odata.type"
 *     before every user property whose JSON form does not say its type:
 *     Int64, DateTime, Guid, Binary, and a Double that is NaN or infinite
 *     (written as the strings "NaN", "Infinity", "-Infinity").
 *   - fullmetadata: also odata.type, odata.id and odata.editLink, and the
 *     Timestamp annotation (the declared key properties carry none in
 *     minimal metadata because the client has the model).
 * A finite Double is always written with a '.' or an exponent ("5.0", not
 * "5"), as the service does, so that reading it back without annotations
 * still yields a Double and not an Int32.
 *
 * Reading is where the hostile input is. cJSON checks the structure, but it
 * keeps only the double value of a number, and "5" (Int32) versus "5.0"
 * (Double) or a 19-digit Int64 cannot be told apart from that. So one
 * cheap pass over the raw bytes first records the text of every number
 * token in document order (and rejects what cJSON would let through:
 * control characters and ill-formed UTF-8 in strings, an escaped NUL that
 * would silently cut a C string); the members of the parsed object then
 * take those texts in the same order. Nested objects and arrays are
 * rejected before the mapping is used, so the order is the member order.
 * Values are validated for their type, with the service's error codes.
 *
 * Where the service and Azurite differ, the service wins: an unannotated
 * whole number outside the Int32 range becomes a Double (Azurite keeps an
 * Int32), and a $select naming a property an entity lacks yields that
 * property as null. Accepted leniently, as Azurite and the SDKs expect:
 * Int32/Int64/Double/Boolean values given as strings with an annotation,
 * and annotations after their property as well as before.
 */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "az_internal.h"

/* ------------------------------------------------------------------------ */
/* Limits and the service's messages.                                        */

#define AZ_PROP_NAME_MAX 255        /* UTF-16 code units */
#define AZ_STRING_MAX (32 * 1024)   /* UTF-16 code units: 64 KiB */
#define AZ_BINARY_MAX (64 * 1024)   /* bytes */
#define AZ_ENTITY_MAX (1024 * 1024) /* bytes, as the service counts them */
/* Members of one body, annotations and odata.* included. Far above what a
 * legal entity needs (252 properties, each with an annotation), and it
 * keeps the duplicate check's quadratic scan cheap on hostile input. */
#define AZ_MEMBERS_MAX 1024
#define AZ_NUMBER_TEXT_MAX 400

#define AZ_MSG_INVALID "One of the request inputs is not valid."
#define AZ_ODATA_TYPE "@odata.type"

static mt_status az_bad(const char *code, const char *msg)
{
    return mt_error(400, code, "%s", msg);
}

static mt_status az_invalid(void)
{
    return az_bad(MT_ERR_INVALID_INPUT, AZ_MSG_INVALID);
}

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

/* ------------------------------------------------------------------------ */
/* Reading, step 1: the raw pass over the bytes.                             */

typedef struct az_num {
    const char *s; /* into the reader's copy of the body */
    size_t n;
} az_num;

typedef struct az_reader {
    char *buf; /* NUL-terminated copy of the body, for cJSON */
    size_t len;
    az_num *nums;
    size_t nnums, capnums;
    cJSON *root;
} az_reader;

/* Length of the well-formed UTF-8 sequence at p (at most avail bytes), or
 * 0: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t az_utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

static int az_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Skips the string whose opening quote is at *i; false when it holds
 * something cJSON would accept but the service (or a C string) cannot. */
static bool az_scan_string(const char *s, size_t len, size_t *i)
{
    size_t j = *i + 1;
    while (j < len) {
        unsigned char c = (unsigned char)s[j];
        if (c == '"') {
            *i = j + 1;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (j + 1 < len && s[j + 1] == 'u') {
                int v = 0;
                for (size_t k = 2; k < 6; k++) {
                    int h = j + k < len ? az_hex_digit((unsigned char)s[j + k]) : -1;
                    if (h < 0)
                        return false;
                    v = v << 4 | h;
                }
                if (v == 0)
                    return false;
                j += 6;
            } else {
                j += 2;
            }
            continue;
        }
        size_t n = c < 0x80 ? 1 : az_utf8_seq((const unsigned char *)s + j, len - j);
        if (n == 0)
            return false;
        j += n;
    }
    return false;
}

static bool az_push_num(az_reader *r, const char *s, size_t n)
{
    if (r->nnums == r->capnums) {
        size_t cap = r->capnums ? r->capnums * 2 : 16;
        az_num *v = realloc(r->nums, cap * sizeof *v);
        if (!v)
            return false;
        r->nums = v;
        r->capnums = cap;
    }
    r->nums[r->nnums].s = s;
    r->nums[r->nnums].n = n;
    r->nnums++;
    return true;
}

static bool az_num_char(int c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

static bool az_json_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Records number tokens in document order; the span taken is a superset of
 * what cJSON's number parser consumes, and where they differ cJSON fails. */
static mt_status az_scan(az_reader *r)
{
    const char *s = r->buf;
    size_t i = 0;
    while (i < r->len) {
        int c = (unsigned char)s[i];
        if (c == '"') {
            if (!az_scan_string(s, r->len, &i))
                return az_invalid();
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            while (j < r->len && az_num_char((unsigned char)s[j]))
                j++;
            if (!az_push_num(r, s + i, j - i))
                return mt_error(500, MT_ERR_INTERNAL, "out of memory");
            i = j;
        } else if (c < 0x20 && !az_json_space(c)) {
            return az_invalid(); /* cJSON would take any control byte for a space */
        } else {
            i++;
        }
    }
    return mt_ok();
}

/* Copies the body (so cJSON never reads past it), scans it and parses it;
 * the root must be one object with nothing but whitespace after it. */
static mt_status az_reader_open(az_reader *r, const char *body, size_t len)
{
    memset(r, 0, sizeof *r);
    if (!body || len == 0)
        return az_invalid();
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) /* a BOM */
        body += 3, len -= 3;
    if (!(r->buf = malloc(len + 1)))
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    memcpy(r->buf, body, len);
    r->buf[len] = '\0';
    r->len = len;
    mt_status st = az_scan(r);
    if (!mt_is_ok(&st))
        return st;
    const char *end = NULL;
    r->root = cJSON_ParseWithLengthOpts(r->buf, len, &end, 0);
    if (!r->root || !cJSON_IsObject(r->root))
        return az_invalid();
    for (size_t i = (size_t)(end - r->buf); i < len; i++)
        if (!az_json_space((unsigned char)r->buf[i]))
            return az_invalid();
    return mt_ok();
}

static void az_reader_close(az_reader *r)
{
    cJSON_Delete(r->root);
    free(r->nums);
    free(r->buf);
}

/* ------------------------------------------------------------------------ */
/* Reading, step 2: scalar texts.                                            */

/* RFC 8259 number grammar; *integral when there is no fraction and no
 * exponent. */
static bool az_num_syntax(const char *s, size_t n, bool *integral)
{
    size_t i = 0;
    *integral = true;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return false;
    if (i < n && s[i] == '.') {
        *integral = false;
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        *integral = false;
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    return i == n;
}

/* [+-]?digits within the Int64 range (leading zeros allowed, as .NET
 * parses them). */
static bool az_parse_int64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == n)
        return false;
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* A finite double from JSON number text. strtod follows the C locale's
 * decimal point, so the point is swapped for the current one first, as
 * cJSON does. */
static bool az_parse_double(const char *s, size_t n, double *out)
{
    bool integral;
    char tmp[AZ_NUMBER_TEXT_MAX + 1];
    if (n > AZ_NUMBER_TEXT_MAX || !az_num_syntax(s, n, &integral))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *dot = strchr(tmp, '.');
    if (dot)
        *dot = localeconv()->decimal_point[0];
    char *end;
    double d = strtod(tmp, &end);
    if (*end != '\0' || isinf(d))
        return false; /* the service rejects what overflows a double */
    *out = d;
    return true;
}

static bool az_parse_special_double(const char *s, double *out)
{
    if (strcmp(s, "NaN") == 0)
        *out = NAN;
    else if (strcmp(s, "Infinity") == 0 || strcmp(s, "INF") == 0)
        *out = INFINITY;
    else if (strcmp(s, "-Infinity") == 0 || strcmp(s, "-INF") == 0)
        *out = -INFINITY;
    else
        return false;
    return true;
}

/* 32 hex digits, dashed as 8-4-4-4-12 or not at all, optionally in braces
 * or parentheses (the forms .NET parses). Bytes are kept in textual order,
 * as the filter parser keeps them. */
static bool az_parse_guid(const char *s, size_t n, uint8_t g[16])
{
    if (n == 38 && ((s[0] == '{' && s[37] == '}') || (s[0] == '(' && s[37] == ')')))
        s++, n -= 2;
    if (n != 36 && n != 32)
        return false;
    size_t i = 0;
    for (int nb = 0; nb < 16; nb++) {
        if (n == 36 && (i == 8 || i == 13 || i == 18 || i == 23) && s[i++] != '-')
            return false;
        int hi = az_hex_digit((unsigned char)s[i]), lo = az_hex_digit((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        g[nb] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return i == n;
}

/* Length in UTF-16 code units, the unit of the service's size limits. */
static size_t az_utf16_len(const char *s, size_t n)
{
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) != 0x80)
            u += c >= 0xF0 ? 2 : 1;
    }
    return u;
}

/* ------------------------------------------------------------------------ */
/* Reading, step 3: one property value.                                      */

/* A value being read: the JSON item, its number text, and what it became.
 * bin owns decoded Binary bytes until the entity copies them. */
typedef struct az_val {
    const cJSON *item;
    const az_num *num;
    mt_value v;
    uint8_t *bin;
} az_val;

static mt_status az_read_integer(az_val *x, int64_t lo, int64_t hi, int64_t *out)
{
    bool integral;
    const char *s;
    size_t n;
    if (cJSON_IsNumber(x->item)) {
        if (!az_num_syntax(x->num->s, x->num->n, &integral) || !integral)
            return az_invalid();
        s = x->num->s, n = x->num->n;
    } else if (cJSON_IsString(x->item)) {
        s = x->item->valuestring, n = strlen(s);
    } else {
        return az_invalid();
    }
    if (!az_parse_int64(s, n, out) || *out < lo || *out > hi)
        return az_invalid();
    return mt_ok();
}

static mt_status az_read_double(az_val *x)
{
    double d;
    if (cJSON_IsNumber(x->item)) {
        if (!az_parse_double(x->num->s, x->num->n, &d))
            return az_invalid();
    } else if (cJSON_IsString(x->item)) {
        const char *s = x->item->valuestring;
        if (!az_parse_special_double(s, &d) && !az_parse_double(s, strlen(s), &d))
            return az_invalid();
    } else {
        return az_invalid();
    }
    x->v = mt_v_dbl(d);
    return mt_ok();
}

static mt_status az_read_boolean(az_val *x)
{
    const cJSON *it = x->item;
    if (cJSON_IsBool(it))
        x->v = mt_v_bool(cJSON_IsTrue(it));
    else if (cJSON_IsString(it) && strcmp(it->valuestring, "true") == 0)
        x->v = mt_v_bool(true);
    else if (cJSON_IsString(it) && strcmp(it->valuestring, "false") == 0)
        x->v = mt_v_bool(false);
    else
        return az_invalid();
    return mt_ok();
}

static mt_status az_read_string(az_val *x)
{
    if (!cJSON_IsString(x->item))
        return az_invalid();
    const char *s = x->item->valuestring;
    size_t n = strlen(s);
    if (az_utf16_len(s, n) > AZ_STRING_MAX)
        return az_bad(MT_ERR_PROPERTY_TOO_LARGE,
                      "The property value is larger than the maximum size permitted.");
    x->v = mt_v_strn(s, n);
    return mt_ok();
}

/* DateTime, Guid and Binary: strings with a syntax of their own. */
static mt_status az_read_text_typed(az_val *x, mt_edm t)
{
    if (!cJSON_IsString(x->item))
        return az_invalid();
    const char *s = x->item->valuestring;
    size_t n = strlen(s), blen;
    int64_t ticks;
    uint8_t g[16];
    if (t == MT_EDM_DATETIME && mt_datetime_parse(s, n, &ticks)) {
        x->v = mt_v_datetime(ticks);
    } else if (t == MT_EDM_GUID && az_parse_guid(s, n, g)) {
        x->v = mt_v_guid(g);
    } else if (t == MT_EDM_BINARY && az_base64_decode(s, n, &x->bin, &blen)) {
        if (blen > AZ_BINARY_MAX)
            return az_bad(MT_ERR_PROPERTY_TOO_LARGE,
                          "The property value is larger than the maximum size permitted.");
        x->v = mt_v_binary(x->bin, blen);
    } else {
        return az_invalid();
    }
    return mt_ok();
}

/* No annotation: the JSON type decides; a whole number outside Int32 is a
 * Double, as the service reads it. */
static mt_status az_read_inferred(az_val *x)
{
    bool integral;
    int64_t i;
    if (cJSON_IsString(x->item))
        return az_read_string(x);
    if (cJSON_IsBool(x->item))
        return az_read_boolean(x);
    if (!cJSON_IsNumber(x->item))
        return az_invalid();
    if (az_num_syntax(x->num->s, x->num->n, &integral) && integral &&
        az_parse_int64(x->num->s, x->num->n, &i) && i >= INT32_MIN && i <= INT32_MAX) {
        x->v = mt_v_i32((int32_t)i);
        return mt_ok();
    }
    return az_read_double(x);
}

/* type < 0: no annotation. */
static mt_status az_read_value(az_val *x, int type)
{
    int64_t i = 0;
    mt_status st;
    switch (type) {
    case MT_EDM_STRING:
        return az_read_string(x);
    case MT_EDM_INT32:
        st = az_read_integer(x, INT32_MIN, INT32_MAX, &i);
        x->v = mt_v_i32((int32_t)i);
        return st;
    case MT_EDM_INT64:
        st = az_read_integer(x, INT64_MIN, INT64_MAX, &i);
        x->v = mt_v_i64(i);
        return st;
    case MT_EDM_DOUBLE:
        return az_read_double(x);
    case MT_EDM_BOOLEAN:
        return az_read_boolean(x);
    case MT_EDM_DATETIME:
    case MT_EDM_GUID:
    case MT_EDM_BINARY:
        return az_read_text_typed(x, (mt_edm)type);
    default:
        return az_read_inferred(x);
    }
}

/* ------------------------------------------------------------------------ */
/* Reading, step 4: the members of the entity object.                        */

typedef enum az_kind {
    AZ_K_IGNORED, /* odata.*, Timestamp, annotations other than type */
    AZ_K_PK,
    AZ_K_RK,
    AZ_K_PROP,
    AZ_K_TYPE, /* "Name@odata.type" */
} az_kind;

typedef struct az_member {
    const cJSON *item;
    const char *name;
    az_kind kind;
    size_t target_len; /* AZ_K_TYPE: length of the annotated name */
    int type;          /* PK/RK/PROP: the annotated mt_edm, or -1 */
    const az_num *num; /* the number text when item is a number */
} az_member;

typedef struct az_members {
    az_member *m;
    size_t n;
} az_members;

/* A C# identifier, as the service asks of property names: a letter or
 * '_', then letters, digits and '_'. Non-ASCII code points count as
 * letters; telling Unicode categories apart would need tables the service
 * applies and we cannot see. */
static mt_status az_check_name(const char *s)
{
    size_t n = strlen(s);
    if (az_utf16_len(s, n) > AZ_PROP_NAME_MAX)
        return az_bad("PropertyNameTooLong",
                      "The property name exceeds the maximum allowed length.");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = c >= 0x80 || c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return az_bad("PropertyNameInvalid", "The property name is invalid.");
    }
    if (n == 0)
        return az_bad("PropertyNameInvalid", "The property name is invalid.");
    return mt_ok();
}

static int az_edm_from_name(const char *s)
{
    for (int t = MT_EDM_STRING; t <= MT_EDM_BINARY; t++)
        if (strcmp(s, mt_edm_name((mt_edm)t)) == 0)
            return t;
    return -1;
}

static mt_status az_classify(az_member *m)
{
    const char *name = m->name, *at = strchr(name, '@');
    m->type = -1;
    if (strncmp(name, "odata.", 6) == 0 || strcmp(name, "Timestamp") == 0) {
        m->kind = AZ_K_IGNORED;
    } else if (at) {
        /* Only the type annotation means anything to the table service. */
        m->kind = strcmp(at, AZ_ODATA_TYPE) == 0 && at != name ? AZ_K_TYPE : AZ_K_IGNORED;
        m->target_len = (size_t)(at - name);
    } else if (strcmp(name, "PartitionKey") == 0) {
        m->kind = AZ_K_PK;
    } else if (strcmp(name, "RowKey") == 0) {
        m->kind = AZ_K_RK;
    } else {
        m->kind = AZ_K_PROP;
        return az_check_name(name);
    }
    return mt_ok();
}

/* Fills the member table, giving each number member its text. */
static mt_status az_members_collect(az_reader *r, az_members *ms)
{
    size_t count = 0, ni = 0;
    for (const cJSON *it = r->root->child; it; it = it->next)
        if (++count > AZ_MEMBERS_MAX)
            return az_bad(MT_ERR_TOO_MANY_PROPS,
                          "The entity contains more properties than allowed.");
    if (count && !(ms->m = calloc(count, sizeof *ms->m)))
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    for (const cJSON *it = r->root->child; it; it = it->next) {
        az_member *m = &ms->m[ms->n++];
        m->item = it;
        m->name = it->string ? it->string : "";
        if (cJSON_IsObject(it) || cJSON_IsArray(it))
            return az_invalid(); /* properties are scalars */
        if (cJSON_IsNumber(it)) {
            if (ni >= r->nnums)
                return az_invalid();
            m->num = &r->nums[ni++];
        }
        mt_status st = az_classify(m);
        if (!mt_is_ok(&st))
            return st;
    }
    /* Every number token must have gone to a member, or the texts and the
     * parsed numbers would not correspond. */
    return ni == r->nnums ? mt_ok() : az_invalid();
}

static mt_status az_members_unique(const az_members *ms)
{
    for (size_t i = 0; i < ms->n; i++) {
        if (ms->m[i].kind == AZ_K_IGNORED)
            continue;
        for (size_t j = i + 1; j < ms->n; j++)
            if (strcmp(ms->m[i].name, ms->m[j].name) == 0)
                return az_bad("DuplicatePropertiesSpecified",
                              "A property is specified more than one time.");
    }
    return mt_ok();
}

/* The member named by an annotation (the first target_len bytes of its
 * name), or NULL. Timestamp counts as present, though it is ignored. */
static az_member *az_member_target(az_members *ms, const az_member *a, bool *timestamp)
{
    *timestamp = a->target_len == 9 && strncmp(a->name, "Timestamp", 9) == 0;
    for (size_t i = 0; i < ms->n; i++) {
        az_member *m = &ms->m[i];
        if ((m->kind == AZ_K_PK || m->kind == AZ_K_RK || m->kind == AZ_K_PROP) &&
            strlen(m->name) == a->target_len && strncmp(m->name, a->name, a->target_len) == 0)
            return m;
    }
    return NULL;
}

/* Attaches every type annotation to its property. */
static mt_status az_members_bind(az_members *ms)
{
    for (size_t i = 0; i < ms->n; i++) {
        const az_member *a = &ms->m[i];
        if (a->kind != AZ_K_TYPE)
            continue;
        bool timestamp;
        az_member *m = az_member_target(ms, a, &timestamp);
        int t = cJSON_IsString(a->item) ? az_edm_from_name(a->item->valuestring) : -1;
        if (t < 0 || (!m && !timestamp))
            return az_invalid();
        if (m && m->kind != AZ_K_PROP && t != MT_EDM_STRING)
            return az_invalid(); /* keys are strings */
        if (m)
            m->type = t;
    }
    return mt_ok();
}

/* The service's own measure of an entity (Understanding the Table service
 * data model): 4 bytes, the keys as UTF-16, and per property 8 bytes, the
 * name as UTF-16 and the value's size. */
static size_t az_prop_size(const char *name, const mt_value *v)
{
    static const size_t fixed[] = {
        [MT_EDM_INT32] = 4,   [MT_EDM_INT64] = 8,    [MT_EDM_DOUBLE] = 8,
        [MT_EDM_BOOLEAN] = 1, [MT_EDM_DATETIME] = 8, [MT_EDM_GUID] = 16,
    };
    size_t s = 8 + az_utf16_len(name, strlen(name)) * 2;
    if (v->type == MT_EDM_STRING)
        return s + 4 + az_utf16_len(v->u.bytes.ptr, v->u.bytes.len) * 2;
    if (v->type == MT_EDM_BINARY)
        return s + 4 + v->u.bytes.len;
    return s + fixed[v->type];
}

static mt_status az_key_value(const az_member *m, const char **key)
{
    if (!m || cJSON_IsNull(m->item))
        return mt_ok(); /* absent: the caller takes the key from the URL */
    if (!cJSON_IsString(m->item))
        return az_invalid();
    *key = m->item->valuestring;
    return mt_ok();
}

static mt_status az_entity_keys(az_members *ms, mt_entity **out)
{
    const az_member *pk = NULL, *rk = NULL;
    for (size_t i = 0; i < ms->n; i++) {
        if (ms->m[i].kind == AZ_K_PK)
            pk = &ms->m[i];
        if (ms->m[i].kind == AZ_K_RK)
            rk = &ms->m[i];
    }
    const char *pks = "", *rks = "";
    mt_status st = az_key_value(pk, &pks);
    if (mt_is_ok(&st))
        st = az_key_value(rk, &rks);
    if (mt_is_ok(&st) && !(*out = mt_entity_new(pks, rks)))
        st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
    return st;
}

/* Reads one user property into e; a null value means absent, as the
 * service treats it. */
static mt_status az_entity_add(mt_entity *e, const az_member *m, size_t *size)
{
    if (cJSON_IsNull(m->item))
        return mt_ok();
    az_val x = {.item = m->item, .num = m->num};
    mt_status st = az_read_value(&x, m->type);
    if (mt_is_ok(&st) && e->nprops == MT_MAX_USER_PROPS)
        st = az_bad(MT_ERR_TOO_MANY_PROPS, "The entity contains more properties than allowed.");
    if (mt_is_ok(&st) && (*size += az_prop_size(m->name, &x.v)) > AZ_ENTITY_MAX)
        st = az_bad(MT_ERR_ENTITY_TOO_LARGE,
                    "The entity is larger than the maximum size permitted.");
    if (mt_is_ok(&st)) {
        size_t before = e->nprops;
        mt_entity_set(e, m->name, &x.v);
        if (e->nprops == before)
            st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    free(x.bin);
    return st;
}

static mt_status az_entity_build(az_members *ms, mt_entity **out)
{
    mt_status st = az_entity_keys(ms, out);
    size_t size = 4;
    if (mt_is_ok(&st)) {
        size += 2 * az_utf16_len((*out)->pk, strlen((*out)->pk));
        size += 2 * az_utf16_len((*out)->rk, strlen((*out)->rk));
    }
    for (size_t i = 0; i < ms->n && mt_is_ok(&st); i++)
        if (ms->m[i].kind == AZ_K_PROP)
            st = az_entity_add(*out, &ms->m[i], &size);
    if (!mt_is_ok(&st)) {
        mt_entity_free(*out);
        *out = NULL;
    }
    return st;
}

static mt_status az_json_entity_read(const char *body, size_t len, mt_entity **out)
{
    az_reader r;
    az_members ms = {0};
    mt_status st = az_reader_open(&r, body, len);
    if (mt_is_ok(&st))
        st = az_members_collect(&r, &ms);
    if (mt_is_ok(&st))
        st = az_members_unique(&ms);
    if (mt_is_ok(&st))
        st = az_members_bind(&ms);
    if (mt_is_ok(&st))
        st = az_entity_build(&ms, out);
    free(ms.m);
    az_reader_close(&r);
    return st;
}

static mt_status az_json_table_read(const char *body, size_t len, char **name)
{
    az_reader r;
    mt_status st = az_reader_open(&r, body, len);
    if (mt_is_ok(&st)) {
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(r.root, "TableName");
        if (!cJSON_IsString(tn))
            st = az_invalid();
        else if (!(*name = strdup(tn->valuestring)))
            st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    az_reader_close(&r);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Writing: text pieces.                                                     */

/* A growable string for the URLs and names the writer builds. */
typedef struct az_str {
    char *p;
    size_t n, cap;
    bool oom;
} az_str;

static void az_str_put(az_str *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
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

static void az_str_puts(az_str *b, const char *s)
{
    az_str_put(b, s ? s : "", s ? strlen(s) : 0);
}

/* The service root without a trailing slash, then "/". */
static void az_str_base(az_str *b, const az_payload_ctx *c)
{
    const char *base = c->base_url ? c->base_url : "";
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    az_str_put(b, base, n);
    az_str_puts(b, "/");
}

/* 'value' as a key in a resource path: quotes doubled, then what a path
 * segment cannot hold percent-encoded. */
static void az_str_key(az_str *b, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    az_str_puts(b, "'");
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        unsigned char c = *p;
        if (c == '\'') {
            az_str_puts(b, "''");
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   strchr("-._~!$&()*+,;=:@", c)) {
            az_str_put(b, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            az_str_put(b, e, 3);
        }
    }
    az_str_puts(b, "'");
}

/* table(PartitionKey='..',RowKey='..') */
static void az_str_entity_path(az_str *b, const az_payload_ctx *c, const mt_entity *e)
{
    az_str_puts(b, c->table);
    az_str_puts(b, "(PartitionKey=");
    az_str_key(b, e->pk);
    az_str_puts(b, ",RowKey=");
    az_str_key(b, e->rk);
    az_str_puts(b, ")");
}

/* Shortest of %.15g..%.17g that reads back exactly, with ".0" added to a
 * whole number so that it stays a Double when read without annotation. */
static void az_format_double(double d, char out[48])
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, d);
        char *p = strpbrk(out, ",."); /* a locale's decimal point */
        if (p)
            *p = '.';
        double back;
        if (az_parse_double(out, strlen(out), &back) && back == d)
            break;
    }
    if (!strpbrk(out, ".eE"))
        strcat(out, ".0");
}

/* ------------------------------------------------------------------------ */
/* Writing: values and entities.                                             */

static bool az_needs_annotation(const mt_value *v)
{
    switch (v->type) {
    case MT_EDM_INT64:
    case MT_EDM_DATETIME:
    case MT_EDM_GUID:
    case MT_EDM_BINARY:
        return true;
    case MT_EDM_DOUBLE:
        return !isfinite(v->u.dbl);
    default:
        return false;
    }
}

static bool az_add_annotation(cJSON *o, const char *name, mt_edm t)
{
    az_str n = {0};
    az_str_puts(&n, name);
    az_str_puts(&n, AZ_ODATA_TYPE);
    bool ok = !n.oom && cJSON_AddStringToObject(o, n.p, mt_edm_name(t));
    free(n.p);
    return ok;
}

static void az_guid_text(const uint8_t g[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[g[i] >> 4];
        *p++ = hex[g[i] & 15];
    }
    *p = '\0';
}

/* The JSON item for a value, without its annotation. */
static cJSON *az_value_item(const mt_value *v)
{
    char tmp[64];
    switch (v->type) {
    case MT_EDM_STRING:
        return cJSON_CreateString(v->u.bytes.ptr ? v->u.bytes.ptr : "");
    case MT_EDM_INT32:
        snprintf(tmp, sizeof tmp, "%d", (int)v->u.i32);
        return cJSON_CreateRaw(tmp);
    case MT_EDM_INT64:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i64);
        return cJSON_CreateString(tmp);
    case MT_EDM_DOUBLE:
        if (isnan(v->u.dbl))
            return cJSON_CreateString("NaN");
        if (isinf(v->u.dbl))
            return cJSON_CreateString(v->u.dbl < 0 ? "-Infinity" : "Infinity");
        az_format_double(v->u.dbl, tmp);
        return cJSON_CreateRaw(tmp);
    case MT_EDM_BOOLEAN:
        return cJSON_CreateBool(v->u.b);
    case MT_EDM_DATETIME:
        mt_datetime_format(v->u.ticks, tmp);
        return cJSON_CreateString(tmp);
    case MT_EDM_GUID:
        az_guid_text(v->u.guid, tmp);
        return cJSON_CreateString(tmp);
    case MT_EDM_BINARY: {
        char *b64 = az_base64_encode((const uint8_t *)v->u.bytes.ptr, v->u.bytes.len);
        cJSON *it = b64 ? cJSON_CreateString(b64) : NULL;
        free(b64);
        return it;
    }
    }
    return NULL;
}

static bool az_add_value(cJSON *o, const char *name, const mt_value *v, az_metadata md)
{
    if (md != AZ_META_NONE && az_needs_annotation(v) && !az_add_annotation(o, name, v->type))
        return false;
    cJSON *it = az_value_item(v);
    if (!it)
        return false;
    cJSON_AddItemToObject(o, name, it);
    return true;
}

static bool az_add_built(cJSON *o, const char *name, az_str *s)
{
    bool ok = !s->oom && cJSON_AddStringToObject(o, name, s->p ? s->p : "");
    free(s->p);
    return ok;
}

/* $select: NULL selects everything. */
static bool az_selected(const az_payload_ctx *c, const char *name)
{
    if (!c->select)
        return true;
    for (size_t i = 0; i < c->nselect; i++)
        if (c->select[i] && strcmp(c->select[i], name) == 0)
            return true;
    return false;
}

/* odata.metadata of a single entity, and for fullmetadata its identity. */
static bool az_entity_head(cJSON *o, const az_payload_ctx *c, const mt_entity *e, bool single)
{
    az_str s = {0};
    if (single && c->md != AZ_META_NONE) {
        az_str_base(&s, c);
        az_str_puts(&s, "$metadata#");
        az_str_puts(&s, c->table);
        az_str_puts(&s, "/@Element");
        if (!az_add_built(o, "odata.metadata", &s))
            return false;
        memset(&s, 0, sizeof s);
    }
    if (c->md == AZ_META_FULL) {
        az_str_puts(&s, c->account);
        az_str_puts(&s, ".");
        az_str_puts(&s, c->table);
        if (!az_add_built(o, "odata.type", &s))
            return false;
        memset(&s, 0, sizeof s);
        az_str_base(&s, c);
        az_str_entity_path(&s, c, e);
        if (!az_add_built(o, "odata.id", &s))
            return false;
        memset(&s, 0, sizeof s);
    }
    if (c->md != AZ_META_NONE && e->etag && !cJSON_AddStringToObject(o, "odata.etag", e->etag))
        return false;
    if (c->md == AZ_META_FULL) {
        az_str_entity_path(&s, c, e);
        if (!az_add_built(o, "odata.editLink", &s))
            return false;
    }
    return true;
}

static bool az_entity_system(cJSON *o, const az_payload_ctx *c, const mt_entity *e)
{
    if (az_selected(c, "PartitionKey") && !cJSON_AddStringToObject(o, "PartitionKey", e->pk))
        return false;
    if (az_selected(c, "RowKey") && !cJSON_AddStringToObject(o, "RowKey", e->rk))
        return false;
    if (e->timestamp && az_selected(c, "Timestamp")) {
        if (c->md == AZ_META_FULL && !az_add_annotation(o, "Timestamp", MT_EDM_DATETIME))
            return false;
        char ts[MT_DATETIME_MAX];
        mt_datetime_format(e->timestamp, ts);
        if (!cJSON_AddStringToObject(o, "Timestamp", ts))
            return false;
    }
    return true;
}

/* A selected property the entity lacks comes back as null, as the
 * service returns it. */
static bool az_entity_missing(cJSON *o, const az_payload_ctx *c)
{
    for (size_t i = 0; c->select && i < c->nselect; i++) {
        const char *n = c->select[i];
        if (!n || strncmp(n, "odata.", 6) == 0 || cJSON_GetObjectItemCaseSensitive(o, n))
            continue;
        if (strcmp(n, "PartitionKey") == 0 || strcmp(n, "RowKey") == 0 ||
            strcmp(n, "Timestamp") == 0)
            continue;
        if (!cJSON_AddNullToObject(o, n))
            return false;
    }
    return true;
}

static cJSON *az_entity_object(const az_payload_ctx *c, const mt_entity *e, bool single)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && az_entity_head(o, c, e, single) && az_entity_system(o, c, e);
    for (size_t i = 0; ok && i < e->nprops; i++)
        if (az_selected(c, e->props[i].name))
            ok = az_add_value(o, e->props[i].name, &e->props[i].value, c->md);
    if (ok)
        ok = az_entity_missing(o, c);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Prints and frees the tree; NULL (and *len 0) when anything failed. */
static char *az_print(cJSON *root, size_t *len)
{
    char *out = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (len)
        *len = out ? strlen(out) : 0;
    return out;
}

/* The feed wrapper: odata.metadata (not in nometadata) and "value". */
static cJSON *az_feed(const az_payload_ctx *c, const char *set, cJSON **value)
{
    cJSON *root = cJSON_CreateObject();
    if (root && c->md != AZ_META_NONE) {
        az_str s = {0};
        az_str_base(&s, c);
        az_str_puts(&s, "$metadata#");
        az_str_puts(&s, set);
        if (!az_add_built(root, "odata.metadata", &s)) {
            cJSON_Delete(root);
            return NULL;
        }
    }
    if (root && !(*value = cJSON_AddArrayToObject(root, "value"))) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static char *az_json_entity_write(const az_payload_ctx *c, const mt_entity *e, size_t *len)
{
    return az_print(e ? az_entity_object(c, e, true) : NULL, len);
}

static char *az_json_entities_write(const az_payload_ctx *c, const mt_entity_list *rows,
                                    size_t *len)
{
    cJSON *value = NULL, *root = az_feed(c, c->table ? c->table : "", &value);
    for (size_t i = 0; root && rows && i < rows->n; i++) {
        cJSON *o = az_entity_object(c, rows->v[i], false);
        if (!o) {
            cJSON_Delete(root);
            root = NULL;
        } else {
            cJSON_AddItemToArray(value, o);
        }
    }
    return az_print(root, len);
}

/* ------------------------------------------------------------------------ */
/* Writing: tables and errors.                                               */

static cJSON *az_table_object(const az_payload_ctx *c, const char *name, bool single)
{
    cJSON *o = cJSON_CreateObject();
    az_str s = {0};
    bool ok = o != NULL;
    if (ok && single && c->md != AZ_META_NONE) {
        az_str_base(&s, c);
        az_str_puts(&s, "$metadata#Tables/@Element");
        ok = az_add_built(o, "odata.metadata", &s);
        memset(&s, 0, sizeof s);
    }
    if (ok && c->md == AZ_META_FULL) {
        az_str_puts(&s, c->account);
        az_str_puts(&s, ".Tables");
        ok = az_add_built(o, "odata.type", &s);
        memset(&s, 0, sizeof s);
        az_str_base(&s, c);
        az_str_puts(&s, "Tables(");
        az_str_key(&s, name);
        az_str_puts(&s, ")");
        ok = ok && az_add_built(o, "odata.id", &s);
        memset(&s, 0, sizeof s);
        az_str_puts(&s, "Tables(");
        az_str_key(&s, name);
        az_str_puts(&s, ")");
        ok = ok && az_add_built(o, "odata.editLink", &s);
    }
    if (ok)
        ok = cJSON_AddStringToObject(o, "TableName", name) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static char *az_json_tables_write(const az_payload_ctx *c, char *const *names, size_t n,
                                  size_t *len)
{
    cJSON *value = NULL, *root = az_feed(c, "Tables", &value);
    for (size_t i = 0; root && i < n; i++) {
        cJSON *o = az_table_object(c, names[i] ? names[i] : "", false);
        if (!o) {
            cJSON_Delete(root);
            root = NULL;
        } else {
            cJSON_AddItemToArray(value, o);
        }
    }
    return az_print(root, len);
}

static char *az_json_error_write(const char *code, const char *message, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = root ? cJSON_AddObjectToObject(root, "odata.error") : NULL;
    cJSON *msg = NULL;
    bool ok = err && cJSON_AddStringToObject(err, "code", code ? code : "") &&
              (msg = cJSON_AddObjectToObject(err, "message")) &&
              cJSON_AddStringToObject(msg, "lang", "en-US") &&
              cJSON_AddStringToObject(msg, "value", message ? message : "");
    if (!ok) {
        cJSON_Delete(root);
        root = NULL;
    }
    return az_print(root, len);
}

/* ------------------------------------------------------------------------ */
/* The payload calls of az.h: JSON here, Atom in az_atom.c.                  */

mt_status az_entity_read(az_format fmt, const char *body, size_t len, mt_entity **out)
{
    *out = NULL;
    if (fmt == AZ_FMT_ATOM)
        return az_atom_entity_read(body, len, out);
    return az_json_entity_read(body, len, out);
}

char *az_entity_write(az_format fmt, const az_payload_ctx *c, const mt_entity *e, size_t *len)
{
    if (fmt == AZ_FMT_ATOM)
        return az_atom_entity_write(c, e, len);
    return az_json_entity_write(c, e, len);
}

char *az_entities_write(az_format fmt, const az_payload_ctx *c, const mt_entity_list *rows,
                        size_t *len)
{
    if (fmt == AZ_FMT_ATOM)
        return az_atom_entities_write(c, rows, len);
    return az_json_entities_write(c, rows, len);
}

mt_status az_table_read(az_format fmt, const char *body, size_t len, char **name)
{
    *name = NULL;
    if (fmt == AZ_FMT_ATOM)
        return az_atom_table_read(body, len, name);
    return az_json_table_read(body, len, name);
}

char *az_table_write(az_format fmt, const az_payload_ctx *c, const char *name, size_t *len)
{
    if (fmt == AZ_FMT_ATOM)
        return az_atom_table_write(c, name, len);
    return az_print(az_table_object(c, name ? name : "", true), len);
}

char *az_tables_write(az_format fmt, const az_payload_ctx *c, char *const *names, size_t n,
                      size_t *len)
{
    if (fmt == AZ_FMT_ATOM)
        return az_atom_tables_write(c, names, n, len);
    return az_json_tables_write(c, names, n, len);
}

char *az_error_write(az_format fmt, const char *code, const char *message, size_t *len)
{
    if (fmt == AZ_FMT_ATOM)
        return az_xml_error_write(code, message, len);
    return az_json_error_write(code, message, len);
}

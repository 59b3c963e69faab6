/*
 * az_json.c -- reading entity and table payloads in JSON (OData v3 "JSON
 * light"); az_json_write.c writes them, az_payload.c picks the format.
 *
 * Reading is where the hostile input is, and on the backend client's path
 * it is paid on every row, so it is one pass over the bytes and no tree:
 * the body is copied once, its syntax checked as it is walked, string
 * members decoded in place (a decoded string is never longer than its
 * text, so the copy ends each one with a NUL where its closing quote
 * was), and every top-level member recorded as a name, a JSON kind and a
 * text. A number keeps its text, so "5" (Int32) and "5.0" (Double) and a
 * 19-digit Int64 are told apart. Nested objects and arrays are walked for
 * their syntax only; the entity reader refuses them. Values are then
 * validated for their type, with the service's error codes.
 *
 * What is accepted is exactly what the earlier cJSON-based reader
 * accepted (test/fuzz/oracle_json.c keeps it, and a differential fuzz
 * target holds the two to the same answers): whitespace is space, tab, CR
 * and LF; strings are well-formed UTF-8 with no control characters and no
 * escaped NUL, surrogates only in pairs; a number is a run of
 * [0-9+-.eE] that strtod takes whole (the strict JSON grammar is applied
 * later, to values that are read as numbers);
 * containers nest less than 1000 deep; one UTF-8 BOM is skipped, and a
 * second when at least five bytes follow the first.
 *
 * Where the service and Azurite differ, the service wins: an unannotated
 * whole number outside the Int32 range becomes a Double (Azurite keeps an
 * Int32). Accepted leniently, as Azurite and the SDKs expect:
 * Int32/Int64/Double/Boolean values given as strings with an annotation,
 * and annotations after their property as well as before.
 */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
#define AZ_NESTING_MAX 1000  /* containers nest less deep than this */
#define AZ_MEMBERS_INLINE 32 /* members held without an allocation */

#define AZ_MSG_INVALID "One of the request inputs is not valid."

static mt_status az_bad(const char *code, const char *msg)
{
    return mt_error(400, code, "%s", msg);
}

static mt_status az_invalid(void)
{
    return az_bad(MT_ERR_INVALID_INPUT, AZ_MSG_INVALID);
}

/* ------------------------------------------------------------------------ */
/* Reading, step 1: one pass over the bytes.                                 */

typedef enum az_jtype {
    AZ_J_NULL,
    AZ_J_FALSE,
    AZ_J_TRUE,
    AZ_J_NUMBER, /* text: the number's token */
    AZ_J_STRING, /* text: the decoded string, NUL-terminated */
    AZ_J_NESTED, /* an object or an array */
} az_jtype;

typedef enum az_kind {
    AZ_K_IGNORED, /* odata.*, Timestamp, annotations other than type */
    AZ_K_PK,
    AZ_K_RK,
    AZ_K_PROP,
    AZ_K_TYPE, /* "Name@odata.type" */
} az_kind;

/* One top-level member: its decoded name (NUL-terminated, in the reader's
 * copy), its JSON kind and text, and what step 4 makes of it. */
typedef struct az_member {
    const char *name;
    size_t name_len;
    az_jtype jt;
    const char *s; /* AZ_J_NUMBER, AZ_J_STRING */
    size_t n;
    az_kind kind;
    size_t target_len; /* AZ_K_TYPE: length of the annotated name */
    int type;          /* PK/RK/PROP: the annotated mt_edm, or -1 */
} az_member;

typedef struct az_reader {
    char *buf; /* the copy of the body, NUL-terminated */
    size_t len, i;
    az_member *m; /* the members, in order */
    size_t nm, capm;
    az_member inline_m[AZ_MEMBERS_INLINE];
} az_reader;

static bool az_json_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void az_skip_ws(az_reader *r)
{
    while (r->i < r->len && az_json_space((unsigned char)r->buf[r->i]))
        r->i++;
}

/* Four hex digits at s (at least 4 bytes before end), or -1. */
static long az_hex4(const char *s, const char *end)
{
    long v = 0;
    if (end - s < 4)
        return -1;
    for (int k = 0; k < 4; k++) {
        int h = mt_hex_digit((unsigned char)s[k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

static char *az_put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* A \u escape at s (s[0..1] is "\u"); *used gets 6 or 12 (a surrogate
 * pair). False for bad hex, an escaped NUL or a lone surrogate. */
static bool az_unicode_escape(const char *s, const char *end, uint32_t *cp, size_t *used)
{
    long hi = az_hex4(s + 2, end), lo;
    if (hi <= 0 || (hi >= 0xDC00 && hi <= 0xDFFF))
        return false;
    *cp = (uint32_t)hi;
    *used = 6;
    if (hi < 0xD800 || hi > 0xDBFF)
        return true;
    if (end - s < 12 || s[6] != '\\' || s[7] != 'u')
        return false;
    lo = az_hex4(s + 8, end);
    if (lo < 0xDC00 || lo > 0xDFFF)
        return false;
    *cp = 0x10000 + (((uint32_t)hi & 0x3FF) << 10 | ((uint32_t)lo & 0x3FF));
    *used = 12;
    return true;
}

/* One escape sequence at s (s[0] is '\\') decoded to o; returns the next
 * output position and advances *s, or NULL when it is not valid. */
static char *az_escape(const char **s, const char *end, char *o)
{
    static const char plain[] = "\"\\/bfnrt", out[] = "\"\\/\b\f\n\r\t";
    if (end - *s < 2)
        return NULL;
    char c = (*s)[1];
    if (c == 'u') {
        uint32_t cp;
        size_t used;
        if (!az_unicode_escape(*s, end, &cp, &used))
            return NULL;
        *s += used;
        return az_put_utf8(o, cp);
    }
    const char *p = c ? strchr(plain, c) : NULL;
    if (!p)
        return NULL;
    *o++ = out[p - plain];
    *s += 2;
    return o;
}

/* The string whose opening quote is at r->i, decoded in place; *s and *n
 * get the text (its closing quote becomes a NUL). */
static bool az_string(az_reader *r, const char **s, size_t *n)
{
    char *start = r->buf + r->i + 1, *o = start;
    const char *p = start, *end = r->buf + r->len;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *o = '\0';
            *s = start;
            *n = (size_t)(o - start);
            r->i = (size_t)(p - r->buf) + 1;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (!(o = az_escape(&p, end, o)))
                return false;
        } else if (c < 0x80) {
            *o++ = *p++;
        } else {
            size_t k = mt_utf8_seq((const unsigned char *)p, (size_t)(end - p), NULL);
            if (k == 0)
                return false;
            memmove(o, p, k);
            o += k, p += k;
        }
    }
    return false;
}

static bool az_num_char(int c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

static size_t az_digits(const char *s, size_t n, size_t i)
{
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

/* Whether strtod takes all of s[0..n) (a run of number characters that
 * starts with '-' or a digit): -? (D+ (. D*)? | . D+) ([eE] [+-]? D+)? */
static bool az_strtod_whole(const char *s, size_t n)
{
    size_t i = s[0] == '-' ? 1 : 0, d = az_digits(s, n, i);
    bool mant = d > i;
    i = d;
    if (i < n && s[i] == '.') {
        d = az_digits(s, n, ++i);
        mant = mant || d > i;
        i = d;
    }
    if (!mant)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        d = az_digits(s, n, i);
        if (d == i)
            return false;
        i = d;
    }
    return i == n;
}

static bool az_number(az_reader *r, const char **s, size_t *n)
{
    size_t j = r->i;
    while (j < r->len && az_num_char((unsigned char)r->buf[j]))
        j++;
    *s = r->buf + r->i;
    *n = j - r->i;
    r->i = j;
    return az_strtod_whole(*s, *n);
}

static bool az_literal(az_reader *r, const char *word, size_t n)
{
    if (r->len - r->i < n || memcmp(r->buf + r->i, word, n) != 0)
        return false;
    r->i += n;
    return true;
}

static bool az_value(az_reader *r, int depth, az_jtype *jt, const char **s, size_t *n);

/* The rest of an object or array whose opening bracket is at r->i;
 * members go nowhere: only its syntax matters. */
static bool az_container(az_reader *r, int depth)
{
    bool object = r->buf[r->i] == '{';
    char close = object ? '}' : ']';
    az_jtype jt;
    const char *s;
    size_t n;
    if (depth >= AZ_NESTING_MAX)
        return false;
    r->i++;
    az_skip_ws(r);
    if (r->i < r->len && r->buf[r->i] == close) {
        r->i++;
        return true;
    }
    for (;;) {
        az_skip_ws(r);
        if (object) {
            if (r->i >= r->len || r->buf[r->i] != '"' || !az_string(r, &s, &n))
                return false;
            az_skip_ws(r);
            if (r->i >= r->len || r->buf[r->i] != ':')
                return false;
            r->i++;
            az_skip_ws(r);
        }
        if (!az_value(r, depth + 1, &jt, &s, &n))
            return false;
        az_skip_ws(r);
        if (r->i < r->len && r->buf[r->i] == ',') {
            r->i++;
            continue;
        }
        if (r->i < r->len && r->buf[r->i] == close) {
            r->i++;
            return true;
        }
        return false;
    }
}

/* One value at r->i (depth: the nesting of a container there). */
static bool az_value(az_reader *r, int depth, az_jtype *jt, const char **s, size_t *n)
{
    *s = NULL;
    *n = 0;
    if (r->i >= r->len)
        return false;
    char c = r->buf[r->i];
    switch (c) {
    case '"':
        *jt = AZ_J_STRING;
        return az_string(r, s, n);
    case '{':
    case '[':
        *jt = AZ_J_NESTED;
        return az_container(r, depth);
    case 'n':
        *jt = AZ_J_NULL;
        return az_literal(r, "null", 4);
    case 't':
        *jt = AZ_J_TRUE;
        return az_literal(r, "true", 4);
    case 'f':
        *jt = AZ_J_FALSE;
        return az_literal(r, "false", 5);
    default:
        *jt = AZ_J_NUMBER;
        return (c == '-' || (c >= '0' && c <= '9')) && az_number(r, s, n);
    }
}

static bool az_member_push(az_reader *r, const az_member *m)
{
    if (r->nm == r->capm) {
        size_t cap = r->capm * 2;
        az_member *v =
            r->m == r->inline_m ? malloc(cap * sizeof *v) : realloc(r->m, cap * sizeof *v);
        if (!v)
            return false;
        if (r->m == r->inline_m)
            memcpy(v, r->inline_m, sizeof r->inline_m);
        r->m = v;
        r->capm = cap;
    }
    r->m[r->nm++] = *m;
    return true;
}

/* The members of the root object, recorded; false on a syntax error. */
static mt_status az_root(az_reader *r)
{
    az_skip_ws(r);
    if (r->i >= r->len || r->buf[r->i] != '{')
        return az_invalid();
    r->i++;
    az_skip_ws(r);
    if (r->i < r->len && r->buf[r->i] == '}') {
        r->i++;
        return mt_ok();
    }
    for (;;) {
        az_member m = {0};
        az_skip_ws(r);
        if (r->i >= r->len || r->buf[r->i] != '"' || !az_string(r, &m.name, &m.name_len))
            return az_invalid();
        az_skip_ws(r);
        if (r->i >= r->len || r->buf[r->i] != ':')
            return az_invalid();
        r->i++;
        az_skip_ws(r);
        if (!az_value(r, 1, &m.jt, &m.s, &m.n))
            return az_invalid();
        if (!az_member_push(r, &m))
            return mt_oom();
        az_skip_ws(r);
        if (r->i < r->len && r->buf[r->i] == ',') {
            r->i++;
            continue;
        }
        if (r->i < r->len && r->buf[r->i] == '}') {
            r->i++;
            return mt_ok();
        }
        return az_invalid();
    }
}

/* Copies the body and reads it through; the root must be one object with
 * nothing but whitespace after it. */
static mt_status az_reader_open(az_reader *r, const char *body, size_t len)
{
    memset(r, 0, sizeof *r);
    r->m = r->inline_m;
    r->capm = AZ_MEMBERS_INLINE;
    if (!body || len == 0)
        return az_invalid();
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) /* a BOM */
        body += 3, len -= 3;
    if (len >= 5 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) /* and a second */
        body += 3, len -= 3;
    if (!(r->buf = malloc(len + 1)))
        return mt_oom();
    memcpy(r->buf, body, len);
    r->buf[len] = '\0';
    r->len = len;
    mt_status st = az_root(r);
    if (!mt_is_ok(&st))
        return st;
    az_skip_ws(r);
    return r->i == r->len ? mt_ok() : az_invalid();
}

static void az_reader_close(az_reader *r)
{
    if (r->m != r->inline_m)
        free(r->m);
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
bool az_json_parse_double(const char *s, size_t n, double *out)
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

/* A value being read: the member, and what it became. bin owns decoded
 * Binary bytes until the entity copies them. */
typedef struct az_val {
    const az_member *m;
    mt_value v;
    uint8_t *bin;
} az_val;

static mt_status az_read_integer(az_val *x, int64_t lo, int64_t hi, int64_t *out)
{
    bool integral;
    const char *s;
    size_t n;
    if (x->m->jt == AZ_J_NUMBER) {
        if (!az_num_syntax(x->m->s, x->m->n, &integral) || !integral)
            return az_invalid();
        s = x->m->s, n = x->m->n;
    } else if (x->m->jt == AZ_J_STRING) {
        s = x->m->s, n = x->m->n;
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
    if (x->m->jt == AZ_J_NUMBER) {
        if (!az_json_parse_double(x->m->s, x->m->n, &d))
            return az_invalid();
    } else if (x->m->jt == AZ_J_STRING) {
        const char *s = x->m->s;
        if (!az_parse_special_double(s, &d) && !az_json_parse_double(s, x->m->n, &d))
            return az_invalid();
    } else {
        return az_invalid();
    }
    x->v = mt_v_dbl(d);
    return mt_ok();
}

static mt_status az_read_boolean(az_val *x)
{
    const az_member *m = x->m;
    if (m->jt == AZ_J_TRUE || m->jt == AZ_J_FALSE)
        x->v = mt_v_bool(m->jt == AZ_J_TRUE);
    else if (m->jt == AZ_J_STRING && strcmp(m->s, "true") == 0)
        x->v = mt_v_bool(true);
    else if (m->jt == AZ_J_STRING && strcmp(m->s, "false") == 0)
        x->v = mt_v_bool(false);
    else
        return az_invalid();
    return mt_ok();
}

static mt_status az_read_string(az_val *x)
{
    if (x->m->jt != AZ_J_STRING)
        return az_invalid();
    const char *s = x->m->s;
    size_t n = x->m->n;
    if (az_utf16_len(s, n) > AZ_STRING_MAX)
        return az_bad(MT_ERR_PROPERTY_TOO_LARGE,
                      "The property value is larger than the maximum size permitted.");
    x->v = mt_v_strn(s, n);
    return mt_ok();
}

/* DateTime, Guid and Binary: strings with a syntax of their own. */
static mt_status az_read_text_typed(az_val *x, mt_edm t)
{
    if (x->m->jt != AZ_J_STRING)
        return az_invalid();
    const char *s = x->m->s;
    size_t n = x->m->n, blen;
    int64_t ticks;
    uint8_t g[16];
    if (t == MT_EDM_DATETIME && mt_datetime_parse(s, n, &ticks)) {
        x->v = mt_v_datetime(ticks);
    } else if (t == MT_EDM_GUID && az_guid_parse(s, n, g)) {
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
    const az_member *m = x->m;
    if (m->jt == AZ_J_STRING)
        return az_read_string(x);
    if (m->jt == AZ_J_TRUE || m->jt == AZ_J_FALSE)
        return az_read_boolean(x);
    if (m->jt != AZ_J_NUMBER)
        return az_invalid();
    if (az_num_syntax(m->s, m->n, &integral) && integral && az_parse_int64(m->s, m->n, &i) &&
        i >= INT32_MIN && i <= INT32_MAX) {
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

/* A C# identifier, as the service asks of property names: a letter or
 * '_', then letters, digits and '_'. Non-ASCII code points count as
 * letters; telling Unicode categories apart would need tables the service
 * applies and we cannot see. */
static mt_status az_check_name(const char *s, size_t n)
{
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

static bool az_name_is(const az_member *m, const char *name, size_t n)
{
    return m->name_len == n && memcmp(m->name, name, n) == 0;
}

static mt_status az_classify(az_member *m)
{
    const char *name = m->name, *at = memchr(name, '@', m->name_len);
    m->type = -1;
    if (strncmp(name, "odata.", 6) == 0 || az_name_is(m, "Timestamp", 9)) {
        m->kind = AZ_K_IGNORED;
    } else if (at) {
        /* Only the type annotation means anything to the table service. */
        m->kind = strcmp(at, AZ_ODATA_TYPE) == 0 && at != name ? AZ_K_TYPE : AZ_K_IGNORED;
        m->target_len = (size_t)(at - name);
    } else if (az_name_is(m, "PartitionKey", 12)) {
        m->kind = AZ_K_PK;
    } else if (az_name_is(m, "RowKey", 6)) {
        m->kind = AZ_K_RK;
    } else {
        m->kind = AZ_K_PROP;
        return az_check_name(name, m->name_len);
    }
    return mt_ok();
}

/* Classifies every member; properties are scalars. */
static mt_status az_members_check(az_reader *r)
{
    if (r->nm > AZ_MEMBERS_MAX)
        return az_bad(MT_ERR_TOO_MANY_PROPS, "The entity contains more properties than allowed.");
    for (size_t i = 0; i < r->nm; i++) {
        if (r->m[i].jt == AZ_J_NESTED)
            return az_invalid();
        mt_status st = az_classify(&r->m[i]);
        if (!mt_is_ok(&st))
            return st;
    }
    return mt_ok();
}

static mt_status az_members_unique(const az_reader *r)
{
    for (size_t i = 0; i < r->nm; i++) {
        if (r->m[i].kind == AZ_K_IGNORED)
            continue;
        for (size_t j = i + 1; j < r->nm; j++)
            if (az_name_is(&r->m[j], r->m[i].name, r->m[i].name_len))
                return az_bad("DuplicatePropertiesSpecified",
                              "A property is specified more than one time.");
    }
    return mt_ok();
}

/* The member named by an annotation (the first target_len bytes of its
 * name), or NULL. Timestamp counts as present, though it is ignored. */
static az_member *az_member_target(az_reader *r, const az_member *a, bool *timestamp)
{
    *timestamp = a->target_len == 9 && strncmp(a->name, "Timestamp", 9) == 0;
    for (size_t i = 0; i < r->nm; i++) {
        az_member *m = &r->m[i];
        if ((m->kind == AZ_K_PK || m->kind == AZ_K_RK || m->kind == AZ_K_PROP) &&
            az_name_is(m, a->name, a->target_len))
            return m;
    }
    return NULL;
}

/* Attaches every type annotation to its property. */
static mt_status az_members_bind(az_reader *r)
{
    for (size_t i = 0; i < r->nm; i++) {
        const az_member *a = &r->m[i];
        if (a->kind != AZ_K_TYPE)
            continue;
        bool timestamp;
        az_member *m = az_member_target(r, a, &timestamp);
        int t = a->jt == AZ_J_STRING ? az_edm_from_name(a->s) : -1;
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
static size_t az_prop_size(const az_member *m, const mt_value *v)
{
    static const size_t fixed[] = {
        [MT_EDM_INT32] = 4,   [MT_EDM_INT64] = 8,    [MT_EDM_DOUBLE] = 8,
        [MT_EDM_BOOLEAN] = 1, [MT_EDM_DATETIME] = 8, [MT_EDM_GUID] = 16,
    };
    size_t s = 8 + az_utf16_len(m->name, m->name_len) * 2;
    if (v->type == MT_EDM_STRING)
        return s + 4 + az_utf16_len(v->u.bytes.ptr, v->u.bytes.len) * 2;
    if (v->type == MT_EDM_BINARY)
        return s + 4 + v->u.bytes.len;
    return s + fixed[v->type];
}

static mt_status az_key_value(const az_member *m, const char **key)
{
    if (!m || m->jt == AZ_J_NULL)
        return mt_ok(); /* absent: the caller takes the key from the URL */
    if (m->jt != AZ_J_STRING)
        return az_invalid();
    *key = m->s;
    return mt_ok();
}

static mt_status az_entity_keys(az_reader *r, mt_entity **out, unsigned *keys)
{
    const az_member *pk = NULL, *rk = NULL;
    for (size_t i = 0; i < r->nm; i++) {
        if (r->m[i].kind == AZ_K_PK)
            pk = &r->m[i];
        if (r->m[i].kind == AZ_K_RK)
            rk = &r->m[i];
    }
    const char *pks = "", *rks = "";
    if (pk && pk->jt != AZ_J_NULL)
        *keys |= AZ_KEY_PK;
    if (rk && rk->jt != AZ_J_NULL)
        *keys |= AZ_KEY_RK;
    mt_status st = az_key_value(pk, &pks);
    if (mt_is_ok(&st))
        st = az_key_value(rk, &rks);
    if (mt_is_ok(&st) && !(*out = mt_entity_new(pks, rks)))
        st = mt_oom();
    return st;
}

/* Reads one user property into e; a null value means absent, as the
 * service treats it. */
static mt_status az_entity_add(mt_entity *e, const az_member *m, size_t *size)
{
    if (m->jt == AZ_J_NULL)
        return mt_ok();
    az_val x = {.m = m};
    mt_status st = az_read_value(&x, m->type);
    if (mt_is_ok(&st) && e->nprops == MT_MAX_USER_PROPS)
        st = az_bad(MT_ERR_TOO_MANY_PROPS, "The entity contains more properties than allowed.");
    if (mt_is_ok(&st) && (*size += az_prop_size(m, &x.v)) > AZ_ENTITY_MAX)
        st = az_bad(MT_ERR_ENTITY_TOO_LARGE,
                    "The entity is larger than the maximum size permitted.");
    if (mt_is_ok(&st)) {
        size_t before = e->nprops;
        mt_entity_set(e, m->name, &x.v);
        if (e->nprops == before)
            st = mt_oom();
    }
    free(x.bin);
    return st;
}

static mt_status az_entity_build(az_reader *r, mt_entity **out, unsigned *keys)
{
    mt_status st = az_entity_keys(r, out, keys);
    size_t size = 4;
    if (mt_is_ok(&st)) {
        size += 2 * az_utf16_len((*out)->pk, strlen((*out)->pk));
        size += 2 * az_utf16_len((*out)->rk, strlen((*out)->rk));
    }
    for (size_t i = 0; i < r->nm && mt_is_ok(&st); i++)
        if (r->m[i].kind == AZ_K_PROP)
            st = az_entity_add(*out, &r->m[i], &size);
    if (!mt_is_ok(&st)) {
        mt_entity_free(*out);
        *out = NULL;
    }
    return st;
}

/* The first member called name, or NULL. */
static const az_member *az_member_named(const az_reader *r, const char *name, size_t n)
{
    for (size_t i = 0; i < r->nm; i++)
        if (az_name_is(&r->m[i], name, n))
            return &r->m[i];
    return NULL;
}

/* What a reply adds: odata.etag and Timestamp, the first member of each
 * name, when it is a string. */
static void az_entity_meta(const az_reader *r, mt_entity *e)
{
    const az_member *et = az_member_named(r, "odata.etag", 10);
    const az_member *ts = az_member_named(r, "Timestamp", 9);
    int64_t ticks;
    if (et && et->jt == AZ_J_STRING)
        mt_entity_set_etag(e, et->s);
    if (ts && ts->jt == AZ_J_STRING && mt_datetime_parse(ts->s, ts->n, &ticks))
        e->timestamp = ticks;
}

static mt_status az_json_entity_read_r(az_reader *r, const char *body, size_t len, mt_entity **out,
                                       unsigned *keys)
{
    mt_status st = az_reader_open(r, body, len);
    if (mt_is_ok(&st))
        st = az_members_check(r);
    if (mt_is_ok(&st))
        st = az_members_unique(r);
    if (mt_is_ok(&st))
        st = az_members_bind(r);
    if (mt_is_ok(&st))
        st = az_entity_build(r, out, keys);
    return st;
}

mt_status az_json_entity_read(const char *body, size_t len, mt_entity **out, unsigned *keys)
{
    az_reader r;
    mt_status st = az_json_entity_read_r(&r, body, len, out, keys);
    az_reader_close(&r);
    return st;
}

mt_status az_json_entity_read_reply(const char *body, size_t len, mt_entity **out)
{
    az_reader r;
    unsigned keys = 0;
    *out = NULL;
    mt_status st = az_json_entity_read_r(&r, body, len, out, &keys);
    if (mt_is_ok(&st))
        az_entity_meta(&r, *out);
    az_reader_close(&r);
    return st;
}

mt_status az_json_table_read(const char *body, size_t len, char **name)
{
    az_reader r;
    mt_status st = az_reader_open(&r, body, len);
    if (mt_is_ok(&st)) {
        const az_member *tn = az_member_named(&r, "TableName", 9);
        if (!tn || tn->jt != AZ_J_STRING)
            st = az_invalid();
        else if (!(*name = strdup(tn->s)))
            st = mt_oom();
    }
    az_reader_close(&r);
    return st;
}

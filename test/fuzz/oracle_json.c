/*
 * oracle_json.c -- the JSON entity and table readers as they were built on
 * cJSON, kept in the test tree only as the oracle of the one-pass readers
 * of azure/wire/az_json.c: the differential fuzz target (fuzz_json_diff.c)
 * and the unit test (test_az_json_diff.c) hold the two to the same
 * answers. Not linked into any program.
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
#include "oracle_json.h"

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

static mt_status az_bad(const char *code, const char *msg)
{
    return mt_error(400, code, "%s", msg);
}

static mt_status az_invalid(void)
{
    return az_bad(MT_ERR_INVALID_INPUT, AZ_MSG_INVALID);
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
                    int h = j + k < len ? mt_hex_digit((unsigned char)s[j + k]) : -1;
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
        size_t n = mt_utf8_seq((const unsigned char *)s + j, len - j, NULL);
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
                return mt_oom();
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
        return mt_oom();
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
        if (!az_json_parse_double(x->num->s, x->num->n, &d))
            return az_invalid();
    } else if (cJSON_IsString(x->item)) {
        const char *s = x->item->valuestring;
        if (!az_parse_special_double(s, &d) && !az_json_parse_double(s, strlen(s), &d))
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
        return mt_oom();
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

static mt_status az_entity_keys(az_members *ms, mt_entity **out, unsigned *keys)
{
    const az_member *pk = NULL, *rk = NULL;
    for (size_t i = 0; i < ms->n; i++) {
        if (ms->m[i].kind == AZ_K_PK)
            pk = &ms->m[i];
        if (ms->m[i].kind == AZ_K_RK)
            rk = &ms->m[i];
    }
    const char *pks = "", *rks = "";
    if (pk && !cJSON_IsNull(pk->item))
        *keys |= AZ_KEY_PK;
    if (rk && !cJSON_IsNull(rk->item))
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
            st = mt_oom();
    }
    free(x.bin);
    return st;
}

static mt_status az_entity_build(az_members *ms, mt_entity **out, unsigned *keys)
{
    mt_status st = az_entity_keys(ms, out, keys);
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

mt_status oracle_json_entity_read(const char *body, size_t len, mt_entity **out, unsigned *keys)
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
        st = az_entity_build(&ms, out, keys);
    free(ms.m);
    az_reader_close(&r);
    return st;
}

mt_status oracle_json_table_read(const char *body, size_t len, char **name)
{
    az_reader r;
    mt_status st = az_reader_open(&r, body, len);
    if (mt_is_ok(&st)) {
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(r.root, "TableName");
        if (!cJSON_IsString(tn))
            st = az_invalid();
        else if (!(*name = strdup(tn->valuestring)))
            st = mt_oom();
    }
    az_reader_close(&r);
    return st;
}

mt_status oracle_json_entity_read_reply(const char *body, size_t len, mt_entity **out)
{
    unsigned keys = 0;
    *out = NULL;
    mt_status st = oracle_json_entity_read(body, len, out, &keys);
    if (!mt_is_ok(&st))
        return st;
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
        body += 3, len -= 3; /* as the reader skips it (cJSON skips a second) */
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *et = cJSON_GetObjectItemCaseSensitive(root, "odata.etag");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "Timestamp");
    int64_t ticks;
    if (cJSON_IsString(et))
        mt_entity_set_etag(*out, et->valuestring);
    if (cJSON_IsString(ts) && mt_datetime_parse(ts->valuestring, strlen(ts->valuestring), &ticks))
        (*out)->timestamp = ticks;
    cJSON_Delete(root);
    return st;
}

/*
 * az_json_write.c -- writing entity and table payloads and error bodies in
 * JSON (OData v3 "JSON light"), and the JSON form of a single value, which
 * the backend client sends as well.
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
 * Where the service and Azurite differ, the service wins: a $select naming
 * a property an entity lacks yields that property as null.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "az_internal.h"

/* ------------------------------------------------------------------------ */
/* Writing: text pieces.                                                     */

/* What a key in a path may hold unencoded besides the unreserved
 * characters: the rest of RFC 3986's pchar. */
#define AZ_PCHAR_KEEP "!$&()*+,;=:@"

/* The service root without a trailing slash, then "/". */
static void az_put_base(mt_buf *b, const az_payload_ctx *c)
{
    const char *base = c->base_url ? c->base_url : "";
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    mt_buf_put(b, base, n);
    mt_buf_puts(b, "/");
}

/* Shortest of %.15g..%.17g that reads back exactly, with ".0" added to a
 * whole number so that it stays a Double when read without annotation. */
void az_json_double_text(double d, char out[48])
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, d);
        char *p = strpbrk(out, ",."); /* a locale's decimal point */
        if (p)
            *p = '.';
        double back;
        if (az_json_parse_double(out, strlen(out), &back) && back == d)
            break;
    }
    if (!strpbrk(out, ".eE"))
        strcat(out, ".0");
}

/* ------------------------------------------------------------------------ */
/* Writing: values and entities.                                             */

bool az_json_needs_annotation(const mt_value *v)
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

/* Adds the string built in s as member name; s is empty again. */
static bool az_add_built(cJSON *o, const char *name, mt_buf *s)
{
    char *v = mt_buf_take(s, NULL);
    bool ok = v && cJSON_AddStringToObject(o, name, v);
    free(v);
    return ok;
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
        mt_buf s = {0};
        az_put_base(&s, c);
        mt_buf_puts(&s, "$metadata#");
        mt_buf_puts(&s, set);
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

/* ------------------------------------------------------------------------ */
/* Writing entities straight into text.                                      */
/*
 * Entities are what every read answers with, a page up to 1000 of them, so
 * they are written directly, byte for byte as cJSON_PrintUnformatted
 * prints the tree az_entity_object builds (same members, same order, same
 * escapes), without building the tree.
 */

/* Below this many bytes a string or a member name goes out in one put. */
#define AZ_SHORT_PUT 256

/* A JSON string as cJSON prints one: up to the first NUL, escaping '"',
 * '\\', the five short control escapes and other bytes below 0x20 as
 * \u00xx; every other byte as is. */
static void az_put_jstr(mt_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[AZ_SHORT_PUT];
    size_t n = 0;
    while (n + 2 < sizeof tmp && s[n] && (unsigned char)s[n] >= 0x20 && s[n] != '"' && s[n] != '\\')
        n++;
    if (!s[n]) { /* short, nothing to escape: one put */
        tmp[0] = '"';
        memcpy(tmp + 1, s, n);
        tmp[n + 1] = '"';
        mt_buf_put(b, tmp, n + 2);
        return;
    }
    mt_buf_put(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        mt_buf_put(b, run, (size_t)(s - run));
        run = s + 1;
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (ch) {
        case '"':
        case '\\':
            esc[1] = (char)ch;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            n = 6;
        }
        mt_buf_put(b, esc, n);
    }
    mt_buf_put(b, run, (size_t)(s - run));
    mt_buf_put(b, "\"", 1);
}

/* One member: a comma unless it is the object's first, the name, ':'. */
static void az_put_key(mt_buf *b, bool *first, const char *name, const char *suffix)
{
    char tmp[AZ_SHORT_PUT];
    size_t n = 0, k = *first ? 0 : 1;
    while (!suffix && n + k + 3 < sizeof tmp && (unsigned char)name[n] >= 0x20 && name[n] != '"' &&
           name[n] != '\\')
        n++;
    if (!suffix && !name[n]) { /* short, nothing to escape: one put */
        tmp[0] = ',';
        tmp[k] = '"';
        memcpy(tmp + k + 1, name, n);
        memcpy(tmp + k + 1 + n, "\":", 2);
        mt_buf_put(b, tmp, k + n + 3);
        *first = false;
        return;
    }
    if (!*first)
        mt_buf_put(b, ",", 1);
    *first = false;
    if (!suffix) {
        az_put_jstr(b, name);
    } else {
        mt_buf kb = {0};
        mt_buf_puts(&kb, name);
        mt_buf_puts(&kb, suffix);
        az_put_jstr(b, kb.p ? kb.p : "");
        if (kb.oom)
            b->oom = true;
        mt_buf_clear(&kb);
    }
    mt_buf_put(b, ":", 1);
}

static void az_put_member(mt_buf *b, bool *first, const char *name, const char *v)
{
    az_put_key(b, first, name, NULL);
    az_put_jstr(b, v);
}

/* Adds the string built in s as member name; s is empty again. */
static void az_put_built(mt_buf *b, bool *first, const char *name, mt_buf *s)
{
    az_put_member(b, first, name, s->p ? s->p : "");
    if (s->oom)
        b->oom = true;
    mt_buf_clear(s);
}

/* false when the value cannot be written (out of memory). */
static bool az_put_value(mt_buf *b, const mt_value *v)
{
    char tmp[64];
    switch (v->type) {
    case MT_EDM_STRING:
        az_put_jstr(b, v->u.bytes.ptr ? v->u.bytes.ptr : "");
        return true;
    case MT_EDM_INT32:
        snprintf(tmp, sizeof tmp, "%d", (int)v->u.i32);
        mt_buf_puts(b, tmp);
        return true;
    case MT_EDM_INT64:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i64);
        az_put_jstr(b, tmp);
        return true;
    case MT_EDM_DOUBLE:
        if (isnan(v->u.dbl) || isinf(v->u.dbl)) {
            az_put_jstr(b, isnan(v->u.dbl) ? "NaN" : v->u.dbl < 0 ? "-Infinity" : "Infinity");
            return true;
        }
        az_json_double_text(v->u.dbl, tmp);
        mt_buf_puts(b, tmp);
        return true;
    case MT_EDM_BOOLEAN:
        mt_buf_puts(b, v->u.b ? "true" : "false");
        return true;
    case MT_EDM_DATETIME:
        mt_datetime_format(v->u.ticks, tmp);
        az_put_jstr(b, tmp);
        return true;
    case MT_EDM_GUID:
        mt_guid_format(v->u.guid, tmp);
        az_put_jstr(b, tmp);
        return true;
    case MT_EDM_BINARY: {
        char *b64 = az_base64_encode((const uint8_t *)v->u.bytes.ptr, v->u.bytes.len);
        if (!b64)
            return false;
        az_put_jstr(b, b64);
        free(b64);
        return true;
    }
    }
    return false;
}

static void az_put_head(mt_buf *b, bool *first, const az_payload_ctx *c, const mt_entity *e,
                        bool single)
{
    mt_buf s = {0};
    if (single && c->md != AZ_META_NONE) {
        az_put_base(&s, c);
        mt_buf_puts(&s, "$metadata#");
        mt_buf_puts(&s, c->table);
        mt_buf_puts(&s, "/@Element");
        az_put_built(b, first, "odata.metadata", &s);
    }
    if (c->md == AZ_META_FULL) {
        mt_buf_puts(&s, c->account);
        mt_buf_puts(&s, ".");
        mt_buf_puts(&s, c->table);
        az_put_built(b, first, "odata.type", &s);
        az_put_base(&s, c);
        az_entity_path(&s, c->table, e->pk, e->rk, AZ_PCHAR_KEEP);
        az_put_built(b, first, "odata.id", &s);
    }
    if (c->md != AZ_META_NONE && e->etag)
        az_put_member(b, first, "odata.etag", e->etag);
    if (c->md == AZ_META_FULL) {
        az_entity_path(&s, c->table, e->pk, e->rk, AZ_PCHAR_KEEP);
        az_put_built(b, first, "odata.editLink", &s);
    }
}

/* Whether the object az_entity_object builds already holds member n when
 * it reaches c->select[upto] (those before it may have added nulls). */
static bool az_entity_has(const az_payload_ctx *c, const mt_entity *e, const char *n, size_t upto)
{
    size_t tl = strlen(AZ_ODATA_TYPE);
    if (c->md == AZ_META_FULL && e->timestamp && az_payload_selected(c, "Timestamp") &&
        strcmp(n, "Timestamp" AZ_ODATA_TYPE) == 0)
        return true;
    for (size_t i = 0; i < e->nprops; i++) {
        const char *p = e->props[i].name;
        if (!az_payload_selected(c, p))
            continue;
        if (strcmp(p, n) == 0)
            return true;
        size_t pl = strlen(p);
        if (c->md != AZ_META_NONE && az_json_needs_annotation(&e->props[i].value) &&
            strncmp(n, p, pl) == 0 && strcmp(n + pl, AZ_ODATA_TYPE) == 0 && strlen(n) == pl + tl)
            return true;
    }
    for (size_t j = 0; j < upto; j++) {
        const char *m = c->select[j];
        if (m && strcmp(m, n) == 0)
            return true; /* added as null (or present) by an earlier name */
    }
    return false;
}

/* The members after the head: keys, Timestamp, the user properties and
 * the nulls a $select asks for. false when a value cannot be written. */
static bool az_put_props(mt_buf *b, const az_payload_ctx *c, const mt_entity *e, bool *first_p)
{
    bool first = *first_p;
    if (az_payload_selected(c, "PartitionKey"))
        az_put_member(b, &first, "PartitionKey", e->pk);
    if (az_payload_selected(c, "RowKey"))
        az_put_member(b, &first, "RowKey", e->rk);
    if (e->timestamp && az_payload_selected(c, "Timestamp")) {
        if (c->md == AZ_META_FULL)
            az_put_member(b, &first, "Timestamp" AZ_ODATA_TYPE, mt_edm_name(MT_EDM_DATETIME));
        char ts[MT_DATETIME_MAX];
        mt_datetime_format(e->timestamp, ts);
        az_put_member(b, &first, "Timestamp", ts);
    }
    for (size_t i = 0; i < e->nprops; i++) {
        const mt_prop *p = &e->props[i];
        if (!az_payload_selected(c, p->name))
            continue;
        if (c->md != AZ_META_NONE && az_json_needs_annotation(&p->value)) {
            az_put_key(b, &first, p->name, AZ_ODATA_TYPE);
            az_put_jstr(b, mt_edm_name(p->value.type));
        }
        az_put_key(b, &first, p->name, NULL);
        if (!az_put_value(b, &p->value))
            return false;
    }
    for (size_t i = 0; c->select && i < c->nselect; i++) {
        const char *n = c->select[i];
        if (!n || strncmp(n, "odata.", 6) == 0 || strcmp(n, "PartitionKey") == 0 ||
            strcmp(n, "RowKey") == 0 || strcmp(n, "Timestamp") == 0 || az_entity_has(c, e, n, i))
            continue;
        az_put_key(b, &first, n, NULL);
        mt_buf_puts(b, "null");
    }
    *first_p = first;
    return true;
}

/* ------------------------------------------------------------------------ */
/* The memo: a stored row's members, written once per form.                  */
/*
 * A frozen row (a row of an embedded table, lent to the reader rather than
 * copied: see core/entity.c) keeps what az_put_props writes for it in the
 * two forms that do not depend on the request: nometadata, and
 * minimalmetadata's (annotations on the values that need them). A page of
 * such rows is then the head of each (odata.etag, written per request)
 * and a copy of its text. fullmetadata adds the Timestamp annotation and a
 * $select changes the members: both are written in full every time.
 *
 * Memory: each form costs about the row's JSON size, kept as long as the
 * row is stored (a write replaces the row and its memo with it), and only
 * for rows that were read in that form; a row whose text passes
 * AZ_MEMO_MAX is written every time instead, so a memo never holds more
 * than that per form.
 */

#define AZ_MEMO_MAX (16 * 1024)

typedef struct az_memo_text {
    size_t len;
    char text[];
} az_memo_text;

typedef struct az_json_memo {
    mt_memo base;
    az_memo_text *form[2]; /* nometadata, minimalmetadata; atomic */
    bool big[2];           /* too long to keep: written every time */
} az_json_memo;

static const char az_json_memo_kind = 'j'; /* its address tags our memos */

static void az_json_memo_release(mt_memo *m)
{
    az_json_memo *j = (az_json_memo *)m;
    free(j->form[0]);
    free(j->form[1]);
    free(j);
}

/* The row's memo, attached now if it has none; NULL when it cannot be
 * (out of memory, or another writer's memo is there). */
static az_json_memo *az_json_memo_of(const mt_entity *e)
{
    mt_memo *m = mt_entity_memo(e);
    if (!m) {
        az_json_memo *j = calloc(1, sizeof *j);
        if (!j)
            return NULL;
        j->base.kind = &az_json_memo_kind;
        j->base.release = az_json_memo_release;
        if (!mt_entity_memo_attach(e, &j->base))
            free(j);
        m = mt_entity_memo(e);
    }
    return m && m->kind == &az_json_memo_kind ? (az_json_memo *)m : NULL;
}

/* The row's text in form md (NONE or MINIMAL), written now if it is not
 * kept yet; NULL when it cannot be kept (write it in full instead). */
static const az_memo_text *az_memo_text_of(const mt_entity *e, az_metadata md)
{
    az_json_memo *j = az_json_memo_of(e);
    int i = md == AZ_META_NONE ? 0 : 1;
    if (!j || __atomic_load_n(&j->big[i], __ATOMIC_RELAXED))
        return NULL;
    az_memo_text *t = __atomic_load_n(&j->form[i], __ATOMIC_ACQUIRE);
    if (t)
        return t;
    az_payload_ctx c = {.md = md};
    mt_buf b = {0};
    bool first = true;
    if (!az_put_props(&b, &c, e, &first) || b.oom || b.len > AZ_MEMO_MAX) {
        if (!b.oom && b.len > AZ_MEMO_MAX)
            __atomic_store_n(&j->big[i], true, __ATOMIC_RELAXED);
        mt_buf_clear(&b);
        return NULL;
    }
    t = malloc(sizeof *t + b.len);
    if (t) {
        t->len = b.len;
        memcpy(t->text, b.p, b.len);
        az_memo_text *none = NULL;
        if (!__atomic_compare_exchange_n(&j->form[i], &none, t, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
            free(t); /* another reader wrote it first: the same text */
            t = none;
        }
    }
    mt_buf_clear(&b);
    return t;
}

/* Writes e's members from its memo when it is a frozen row and the form
 * allows; false when it was not (the caller writes them). */
static bool az_put_memo(mt_buf *b, const az_payload_ctx *c, const mt_entity *e, bool *first)
{
    if (!e->frozen || c->select || c->md == AZ_META_FULL)
        return false;
    const az_memo_text *t = az_memo_text_of(e, c->md);
    if (!t)
        return false;
    if (!*first)
        mt_buf_put(b, ",", 1);
    mt_buf_put(b, t->text, t->len);
    *first = false;
    return true;
}

/* az_entity_object printed: false when out of memory. */
static bool az_put_entity(mt_buf *b, const az_payload_ctx *c, const mt_entity *e, bool single)
{
    bool first = true;
    if (!e->pk || !e->rk)
        return false; /* as cJSON refuses a NULL string */
    mt_buf_put(b, "{", 1);
    az_put_head(b, &first, c, e, single);
    if (!az_put_memo(b, c, e, &first) && !az_put_props(b, c, e, &first))
        return false;
    mt_buf_put(b, "}", 1);
    return !b->oom;
}

/* The buffer's text, or NULL (and *len 0) when anything failed. */
static char *az_put_done(mt_buf *b, bool ok, size_t *len)
{
    if (!ok || b->oom) {
        mt_buf_clear(b);
        if (len)
            *len = 0;
        return NULL;
    }
    size_t n = 0;
    char *out = mt_buf_take(b, &n);
    if (len)
        *len = out ? n : 0;
    return out;
}

/* What a request annotates: what az_json_needs_annotation says, and every
 * Double. The service reads 5.0 as a Double, but a reader that parses JSON
 * numbers into one type (Azurite, which the tests and many users run
 * against) cannot tell it from 5 and would store an Int32. */
static bool az_request_needs_annotation(const mt_value *v)
{
    return v->type == MT_EDM_DOUBLE || az_json_needs_annotation(v);
}

/* A request's entity: the keys and the properties, each annotated as
 * az_request_needs_annotation says, in the response writer's form. */
char *az_entity_request_body(const mt_entity *e, size_t *len)
{
    mt_buf b = {0};
    bool first = true, ok = e->pk && e->rk;
    mt_buf_put(&b, "{", 1);
    if (ok) {
        az_put_member(&b, &first, "PartitionKey", e->pk);
        az_put_member(&b, &first, "RowKey", e->rk);
    }
    for (size_t i = 0; ok && i < e->nprops; i++) {
        const mt_prop *p = &e->props[i];
        if (az_request_needs_annotation(&p->value)) {
            az_put_key(&b, &first, p->name, AZ_ODATA_TYPE);
            az_put_jstr(&b, mt_edm_name(p->value.type));
        }
        az_put_key(&b, &first, p->name, NULL);
        ok = az_put_value(&b, &p->value);
    }
    mt_buf_put(&b, "}", 1);
    return az_put_done(&b, ok, len);
}

static char *az_json_entity_write(const az_payload_ctx *c, const mt_entity *e, size_t *len)
{
    mt_buf b = {0};
    bool ok = e && az_put_entity(&b, c, e, true);
    return az_put_done(&b, ok, len);
}

/* Appends o to the feed's "value"; a NULL o (out of memory) takes the
 * whole feed with it. */
static void az_feed_add(cJSON **root, cJSON *value, cJSON *o)
{
    if (!o) {
        cJSON_Delete(*root);
        *root = NULL;
    } else {
        cJSON_AddItemToArray(value, o);
    }
}

/* About how long row e's text will be: its memo's length and the head's
 * when it has one, else a guess. */
static size_t az_entity_size_hint(const az_payload_ctx *c, const mt_entity *e)
{
    const az_memo_text *t = NULL;
    if (e->frozen && !c->select && c->md != AZ_META_FULL)
        t = az_memo_text_of(e, c->md);
    size_t head = c->md != AZ_META_NONE && e->etag ? strlen(e->etag) + 24 : 0;
    return (t ? t->len + 4 : 256) + head;
}

static char *az_json_entities_write(const az_payload_ctx *c, const mt_entity_list *rows,
                                    size_t *len)
{
    mt_buf b = {0};
    bool first = true, ok = true;
    size_t hint = 256;
    for (size_t i = 0; rows && i < rows->n; i++)
        hint += az_entity_size_hint(c, rows->v[i]);
    mt_buf_grow(&b, hint); /* one allocation instead of a doubling series */
    mt_buf_put(&b, "{", 1);
    if (c->md != AZ_META_NONE) {
        mt_buf s = {0};
        az_put_base(&s, c);
        mt_buf_puts(&s, "$metadata#");
        mt_buf_puts(&s, c->table ? c->table : "");
        az_put_built(&b, &first, "odata.metadata", &s);
    }
    az_put_key(&b, &first, "value", NULL);
    mt_buf_put(&b, "[", 1);
    for (size_t i = 0; ok && rows && i < rows->n; i++) {
        if (i)
            mt_buf_put(&b, ",", 1);
        ok = az_put_entity(&b, c, rows->v[i], false);
    }
    mt_buf_put(&b, "]}", 2);
    return az_put_done(&b, ok, len);
}

/* ------------------------------------------------------------------------ */
/* Writing: tables and errors.                                               */

static cJSON *az_table_object(const az_payload_ctx *c, const char *name, bool single)
{
    cJSON *o = cJSON_CreateObject();
    mt_buf s = {0};
    bool ok = o != NULL;
    if (ok && single && c->md != AZ_META_NONE) {
        az_put_base(&s, c);
        mt_buf_puts(&s, "$metadata#Tables/@Element");
        ok = az_add_built(o, "odata.metadata", &s);
    }
    if (ok && c->md == AZ_META_FULL) {
        mt_buf_puts(&s, c->account);
        mt_buf_puts(&s, ".Tables");
        ok = az_add_built(o, "odata.type", &s);
        az_put_base(&s, c);
        mt_buf_puts(&s, "Tables(");
        az_path_key(&s, name, AZ_PCHAR_KEEP);
        mt_buf_puts(&s, ")");
        ok = ok && az_add_built(o, "odata.id", &s);
        mt_buf_puts(&s, "Tables(");
        az_path_key(&s, name, AZ_PCHAR_KEEP);
        mt_buf_puts(&s, ")");
        ok = ok && az_add_built(o, "odata.editLink", &s);
    }
    mt_buf_clear(&s); /* what a failed step left */
    if (ok)
        ok = cJSON_AddStringToObject(o, "TableName", name) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static char *az_json_table_write(const az_payload_ctx *c, const char *name, size_t *len)
{
    return az_print(az_table_object(c, name ? name : "", true), len);
}

static char *az_json_tables_write(const az_payload_ctx *c, char *const *names, size_t n,
                                  size_t *len)
{
    cJSON *value = NULL, *root = az_feed(c, "Tables", &value);
    for (size_t i = 0; root && i < n; i++)
        az_feed_add(&root, value, az_table_object(c, names[i] ? names[i] : "", false));
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

const az_codec az_json_codec = {
    az_json_entity_read, az_json_entity_write, az_json_entities_write, az_json_table_read,
    az_json_table_write, az_json_tables_write, az_json_error_write,
};

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

bool az_json_annotate(cJSON *o, const char *name, mt_edm t)
{
    mt_buf n = {0};
    mt_buf_puts(&n, name);
    mt_buf_puts(&n, AZ_ODATA_TYPE);
    char *key = mt_buf_take(&n, NULL);
    bool ok = key && cJSON_AddStringToObject(o, key, mt_edm_name(t));
    free(key);
    return ok;
}

cJSON *az_json_value(const mt_value *v)
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
        az_json_double_text(v->u.dbl, tmp);
        return cJSON_CreateRaw(tmp);
    case MT_EDM_BOOLEAN:
        return cJSON_CreateBool(v->u.b);
    case MT_EDM_DATETIME:
        mt_datetime_format(v->u.ticks, tmp);
        return cJSON_CreateString(tmp);
    case MT_EDM_GUID:
        mt_guid_format(v->u.guid, tmp);
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

/* What a request annotates: what az_json_needs_annotation says, and every
 * Double. The service reads 5.0 as a Double, but a reader that parses JSON
 * numbers into one type (Azurite, which the tests and many users run
 * against) cannot tell it from 5 and would store an Int32. */
static bool az_request_needs_annotation(const mt_value *v)
{
    return v->type == MT_EDM_DOUBLE || az_json_needs_annotation(v);
}

char *az_entity_request_body(const mt_entity *e, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "PartitionKey", e->pk) &&
              cJSON_AddStringToObject(o, "RowKey", e->rk);
    for (size_t i = 0; ok && i < e->nprops; i++) {
        const mt_prop *p = &e->props[i];
        if (az_request_needs_annotation(&p->value))
            ok = az_json_annotate(o, p->name, p->value.type);
        cJSON *it = ok ? az_json_value(&p->value) : NULL;
        if (it)
            cJSON_AddItemToObject(o, p->name, it);
        ok = it != NULL;
    }
    char *out = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    *len = out ? strlen(out) : 0;
    return out;
}

static bool az_add_value(cJSON *o, const char *name, const mt_value *v, az_metadata md)
{
    if (md != AZ_META_NONE && az_json_needs_annotation(v) && !az_json_annotate(o, name, v->type))
        return false;
    cJSON *it = az_json_value(v);
    if (!it)
        return false;
    cJSON_AddItemToObject(o, name, it);
    return true;
}

/* Adds the string built in s as member name; s is empty again. */
static bool az_add_built(cJSON *o, const char *name, mt_buf *s)
{
    char *v = mt_buf_take(s, NULL);
    bool ok = v && cJSON_AddStringToObject(o, name, v);
    free(v);
    return ok;
}

/* odata.metadata of a single entity, and for fullmetadata its identity. */
static bool az_entity_head(cJSON *o, const az_payload_ctx *c, const mt_entity *e, bool single)
{
    mt_buf s = {0};
    if (single && c->md != AZ_META_NONE) {
        az_put_base(&s, c);
        mt_buf_puts(&s, "$metadata#");
        mt_buf_puts(&s, c->table);
        mt_buf_puts(&s, "/@Element");
        if (!az_add_built(o, "odata.metadata", &s))
            return false;
    }
    if (c->md == AZ_META_FULL) {
        mt_buf_puts(&s, c->account);
        mt_buf_puts(&s, ".");
        mt_buf_puts(&s, c->table);
        if (!az_add_built(o, "odata.type", &s))
            return false;
        az_put_base(&s, c);
        az_entity_path(&s, c->table, e->pk, e->rk, AZ_PCHAR_KEEP);
        if (!az_add_built(o, "odata.id", &s))
            return false;
    }
    if (c->md != AZ_META_NONE && e->etag && !cJSON_AddStringToObject(o, "odata.etag", e->etag))
        return false;
    if (c->md == AZ_META_FULL) {
        az_entity_path(&s, c->table, e->pk, e->rk, AZ_PCHAR_KEEP);
        if (!az_add_built(o, "odata.editLink", &s))
            return false;
    }
    return true;
}

static bool az_entity_system(cJSON *o, const az_payload_ctx *c, const mt_entity *e)
{
    if (az_payload_selected(c, "PartitionKey") &&
        !cJSON_AddStringToObject(o, "PartitionKey", e->pk))
        return false;
    if (az_payload_selected(c, "RowKey") && !cJSON_AddStringToObject(o, "RowKey", e->rk))
        return false;
    if (e->timestamp && az_payload_selected(c, "Timestamp")) {
        if (c->md == AZ_META_FULL && !az_json_annotate(o, "Timestamp", MT_EDM_DATETIME))
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
        if (az_payload_selected(c, e->props[i].name))
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

static char *az_json_entity_write(const az_payload_ctx *c, const mt_entity *e, size_t *len)
{
    return az_print(e ? az_entity_object(c, e, true) : NULL, len);
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

static char *az_json_entities_write(const az_payload_ctx *c, const mt_entity_list *rows,
                                    size_t *len)
{
    cJSON *value = NULL, *root = az_feed(c, c->table ? c->table : "", &value);
    for (size_t i = 0; root && rows && i < rows->n; i++)
        az_feed_add(&root, value, az_entity_object(c, rows->v[i], false));
    return az_print(root, len);
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

/*
 * fuzz_url.c -- libFuzzer target for request paths and query options.
 *
 * Input: the first line is the path after the account segment, the second
 * (when present) the query string. Beyond "never crash or leak", it checks
 * the promises the router builds on: a rejected path is a 400 with one of
 * the service's codes and nothing allocated; an accepted one has exactly
 * the fields its kind calls for, keys in valid UTF-8; and a key, written
 * back into a path the way an SDK would write it, parses to the same key.
 * The query options are a 400 on rejection with nothing left behind, and
 * in range on success; a continuation token, minted and echoed the way
 * the proxy and the SDKs do, comes back as the same value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "az.h"

static void fz_fail(const char *what, const char *path, const char *query)
{
    fprintf(stderr, "fuzz_url: %s (path [%s] query [%s])\n", what, path, query ? query : "(null)");
    abort();
}

/* Percent-encodes a key the way an SDK writes it into a path: quotes
 * doubled and left raw, everything else outside the unreserved set
 * escaped. */
static char *fz_encode_key(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(6 * strlen(s) + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c)) {
            *o++ = (char)c;
        } else if (c == '\'') {
            memcpy(o, "''", 2);
            o += 2;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

static bool fz_str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Writes the keys back as "/t(PartitionKey='..',RowKey='..')" and reads
 * them again. */
static void fz_key_round_trip(const az_resource *r, const char *path, const char *query)
{
    char *pk = fz_encode_key(r->pk), *rk = fz_encode_key(r->rk);
    size_t n = strlen(pk) + strlen(rk) + 64;
    char *p = malloc(n);
    az_resource again;
    mt_status st;
    snprintf(p, n, "/t01(PartitionKey='%s',RowKey='%s')", pk, rk);
    st = az_resource_parse(p, NULL, &again);
    if (!mt_is_ok(&st) || again.kind != AZ_RES_ENTITY || !fz_str_eq(again.pk, r->pk) ||
        !fz_str_eq(again.rk, r->rk))
        fz_fail("a key does not survive being written back", path, query);
    az_resource_clear(&again);
    free(p);
    free(pk);
    free(rk);
}

static void fz_check_resource(const char *path, const char *query)
{
    static const char *const codes[] = {"InvalidUri", "InvalidResourceName", "OutOfRangeInput",
                                        "InvalidQueryParameterValue"};
    az_resource r;
    mt_status st = az_resource_parse(path, query, &r);
    bool known = false, has_table, has_keys;
    if (!mt_is_ok(&st)) {
        for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
            known |= strcmp(st.code, codes[i]) == 0;
        if (st.http != 400 || !known || r.table || r.pk || r.rk)
            fz_fail("a path rejection is not a clean 400", path, query);
        return;
    }
    has_table = r.kind == AZ_RES_TABLE || r.kind == AZ_RES_TABLE_ACL || r.kind == AZ_RES_ENTITIES ||
                r.kind == AZ_RES_ENTITY;
    has_keys = r.kind == AZ_RES_ENTITY;
    if ((r.table != NULL) != has_table || (r.pk != NULL) != has_keys || (r.rk != NULL) != has_keys)
        fz_fail("a resource has the wrong fields for its kind", path, query);
    if (r.table && (strlen(r.table) < 3 || strlen(r.table) > 63))
        fz_fail("a table name is out of range", path, query);
    if (has_keys)
        fz_key_round_trip(&r, path, query);
    az_resource_clear(&r);
}

/* A continuation value minted as az_url_encode(value) and echoed encoded
 * once more comes back as the value. */
static void fz_token_round_trip(const char *value, const char *path, const char *query)
{
    char *token = az_url_encode(value), *echoed = az_url_encode(token);
    size_t n = strlen(echoed) + 32;
    char *q = malloc(n);
    az_query_opts o;
    mt_status st;
    snprintf(q, n, "NextPartitionKey=%s", echoed);
    st = az_query_opts_parse(q, &o);
    if (!mt_is_ok(&st) || !fz_str_eq(o.next_pk, value))
        fz_fail("a continuation token does not round-trip", path, query);
    az_query_opts_clear(&o);
    free(q);
    free(echoed);
    free(token);
}

static void fz_check_opts(const char *path, const char *query)
{
    az_query_opts o;
    mt_status st = az_query_opts_parse(query, &o);
    char *v;
    if (!mt_is_ok(&st)) {
        if (st.http != 400 || o.filter || o.select || o.nselect || o.top || o.next_pk ||
            o.next_rk || o.next_table)
            fz_fail("an options rejection is not a clean 400", path, query);
        return;
    }
    if (o.top < 0 || o.top > 1000 || (o.select == NULL) != (o.nselect == 0) || o.nselect > 1024)
        fz_fail("options out of range", path, query);
    for (size_t i = 0; i < o.nselect; i++)
        if (!o.select[i][0] || strlen(o.select[i]) > 255)
            fz_fail("a bad $select name was accepted", path, query);
    if (o.next_pk)
        fz_token_round_trip(o.next_pk, path, query);
    az_query_opts_clear(&o);
    v = az_query_get(query, "comp");
    free(v);
}

/* Copies the next line of [*p, end) into a new string. */
static char *fz_line(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = (size_t)((nl ? nl : end) - *p);
    char *s = malloc(n + 1);
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nl ? nl + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *path = fz_line(&p, end);
    char *query = memchr(data, '\n', size) ? fz_line(&p, end) : NULL;
    fz_check_resource(path, query);
    fz_check_opts(path, query);
    free(path);
    free(query);
    return 0;
}

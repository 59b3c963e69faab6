/*
 * test_az_url.c -- request paths and query options: every resource shape,
 * keys as the SDKs escape them (quotes, spaces, '%', '/', accents,
 * characters outside the BMP), paths the service rejects and the codes it
 * rejects them with, query parameters, and the options of the two query
 * operations ($filter, $top, $select, continuation tokens).
 *
 * The paths and query strings marked "as sent" were captured from
 * @azure/data-tables and azure-storage talking to a local listener, so the
 * cases cover what clients really write rather than what the
 * documentation suggests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "az.h"

/* The key both SDKs were given: a quote, a space, '%', '/', an accent and
 * an emoji outside the Basic Multilingual Plane. */
#define SDK_PK "p'k %/ \xc3\xa9\xf0\x9f\x98\x80"

/* ------------------------------------------------------------------------ */
/* Resource paths that parse                                                 */

typedef struct path_case {
    const char *path;
    const char *query;
    az_resource_kind kind;
    const char *table;
    const char *pk;
    const char *rk;
} path_case;

static const path_case good_paths[] = {
    /* The account root. */
    {"/", "restype=service&comp=properties", AZ_RES_SERVICE, NULL, NULL, NULL},
    {"/", "comp=properties&restype=service", AZ_RES_SERVICE, NULL, NULL, NULL}, /* as sent */
    {"", "restype=service&comp=properties", AZ_RES_SERVICE, NULL, NULL, NULL},
    {"/", "restype=service&comp=stats", AZ_RES_SERVICE, NULL, NULL, NULL},
    {"/", "restype=Service&comp=Properties&timeout=30", AZ_RES_SERVICE, NULL, NULL, NULL},
    /* The table list and one table. */
    {"/Tables", NULL, AZ_RES_TABLES, NULL, NULL, NULL},
    {"/Tables()", NULL, AZ_RES_TABLES, NULL, NULL, NULL},
    {"/Tables", "NextTableName=abc", AZ_RES_TABLES, NULL, NULL, NULL},     /* as sent */
    {"/Tables('mytable')", NULL, AZ_RES_TABLE, "mytable", NULL, NULL},     /* as sent */
    {"/Tables(%27mytable%27)", NULL, AZ_RES_TABLE, "mytable", NULL, NULL}, /* as sent */
    {"/Tables( 'mytable' )", NULL, AZ_RES_TABLE, "mytable", NULL, NULL},
    {"/mytable", "comp=acl", AZ_RES_TABLE_ACL, "mytable", NULL, NULL}, /* as sent */
    {"/mytable", "comp=ACL", AZ_RES_TABLE_ACL, "mytable", NULL, NULL},
    /* Entities. */
    {"/mytable", NULL, AZ_RES_ENTITIES, "mytable", NULL, NULL},
    {"/mytable()", NULL, AZ_RES_ENTITIES, "mytable", NULL, NULL},
    {"/mytable()", "$top=5&$select=X%2CY", AZ_RES_ENTITIES, "mytable", NULL, NULL},
    {"/abc", NULL, AZ_RES_ENTITIES, "abc", NULL, NULL},
    {"/A12345678901234567890123456789012345678901234567890123456789012", NULL, AZ_RES_ENTITIES,
     "A12345678901234567890123456789012345678901234567890123456789012", NULL, NULL},
    {"/$MetricsHourPrimaryTransactionsTable", NULL, AZ_RES_ENTITIES,
     "$MetricsHourPrimaryTransactionsTable", NULL, NULL},
    {"/$Metrics1234567890123456789012345678901234567890123456789012345", NULL, AZ_RES_ENTITIES,
     "$Metrics1234567890123456789012345678901234567890123456789012345", NULL, NULL},
    {"/t01(PartitionKey='a',RowKey='b')", NULL, AZ_RES_ENTITY, "t01", "a", "b"},
    {"/t01(RowKey='b',PartitionKey='a')", NULL, AZ_RES_ENTITY, "t01", "a", "b"},
    {"/t01(PartitionKey='a', RowKey='b')", NULL, AZ_RES_ENTITY, "t01", "a", "b"},
    {"/t01(PartitionKey = 'a' , RowKey = 'b')", NULL, AZ_RES_ENTITY, "t01", "a", "b"},
    {"/t01(PartitionKey='',RowKey='')", NULL, AZ_RES_ENTITY, "t01", "", ""},
    {"/t01(PartitionKey='''',RowKey='''''')", NULL, AZ_RES_ENTITY, "t01", "'", "''"},
    {"/t01(PartitionKey='a,b)',RowKey='RowKey=''x''')", NULL, AZ_RES_ENTITY, "t01", "a,b)",
     "RowKey='x'"},
    {"/t01(PartitionKey='a%2Fb%3Fc%23d',RowKey='%5C')", NULL, AZ_RES_ENTITY, "t01", "a/b?c#d",
     "\\"},
    {"/t01(PartitionKey='a+b',RowKey='%2B')", NULL, AZ_RES_ENTITY, "t01", "a+b", "+"},
    {"/t01(PartitionKey=%27%27,RowKey=%27x%27)", NULL, AZ_RES_ENTITY, "t01", "", "x"},
    /* As sent by @azure/data-tables (quotes raw, doubled). */
    {"/mytable(PartitionKey='p''k%20%25%2F%20%C3%A9%F0%9F%98%80',RowKey='r''2%20%25%F0%9F%98%80')",
     "$select=A%2CB", AZ_RES_ENTITY, "mytable", SDK_PK, "r'2 %\xf0\x9f\x98\x80"},
    {"/mytable(PartitionKey='p''k%20%25%2F%20%C3%A9%F0%9F%98%80',RowKey='r')", NULL, AZ_RES_ENTITY,
     "mytable", SDK_PK, "r"},
    /* As sent by azure-storage (quotes percent-encoded). */
    {"/mytable(PartitionKey=%27p%27%27k%20%25%2F%20%C3%A9%F0%9F%98%80%27,RowKey=%27r%27%272%27)",
     NULL, AZ_RES_ENTITY, "mytable", SDK_PK, "r'2"},
    /* Lower-case escapes, a key of CJK and a supplementary-plane letter. */
    {"/t01(PartitionKey='%e4%b8%ad%e6%96%87',RowKey='%f0%90%90%80')", NULL, AZ_RES_ENTITY, "t01",
     "\xe4\xb8\xad\xe6\x96\x87", "\xf0\x90\x90\x80"},
    {"/$batch", NULL, AZ_RES_BATCH, NULL, NULL, NULL},
    {"/%24batch", NULL, AZ_RES_BATCH, NULL, NULL, NULL},
    {"/$metadata", NULL, AZ_RES_METADATA, NULL, NULL, NULL},
    /* One trailing slash names the same resource. */
    {"/Tables/", NULL, AZ_RES_TABLES, NULL, NULL, NULL},
    {"/mytable/", NULL, AZ_RES_ENTITIES, "mytable", NULL, NULL},
    {"/t01(PartitionKey='a',RowKey='b')/", NULL, AZ_RES_ENTITY, "t01", "a", "b"},
    {"/Tables('mytable')/", NULL, AZ_RES_TABLE, "mytable", NULL, NULL},
};

static void check_str(const char *want, const char *got, const char *what, const char *path)
{
    if (!want && !got)
        return;
    if (!want || !got || strcmp(want, got) != 0)
        fail_msg("%s of [%s]: want [%s] got [%s]", what, path, want ? want : "(null)",
                 got ? got : "(null)");
}

static void test_paths_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_paths / sizeof *good_paths; i++) {
        const path_case *c = &good_paths[i];
        az_resource r;
        mt_status st = az_resource_parse(c->path, c->query, &r);
        if (!mt_is_ok(&st))
            fail_msg("[%s] failed: %d %s %s", c->path, st.http, st.code, st.message);
        if (r.kind != c->kind)
            fail_msg("[%s]: kind %d, want %d", c->path, r.kind, c->kind);
        check_str(c->table, r.table, "table", c->path);
        check_str(c->pk, r.pk, "pk", c->path);
        check_str(c->rk, r.rk, "rk", c->path);
        az_resource_clear(&r);
        assert_null(r.table);
    }
}

/* ------------------------------------------------------------------------ */
/* Resource paths the service rejects                                        */

typedef struct bad_path {
    const char *path;
    const char *query;
    const char *code;
} bad_path;

static const bad_path bad_paths[] = {
    {"/a/b", NULL, "InvalidUri"},
    {"/mytable//", NULL, "InvalidUri"},
    {"/Tables//", NULL, "InvalidUri"},
    {"//", NULL, "InvalidUri"},
    {"//mytable", NULL, "InvalidUri"},
    {"/ab", NULL, "OutOfRangeInput"},
    {"/A123456789012345678901234567890123456789012345678901234567890123", NULL, "OutOfRangeInput"},
    {"/1abc", NULL, "InvalidResourceName"},
    {"/ab-c", NULL, "InvalidResourceName"},
    {"/ab_c", NULL, "InvalidResourceName"},
    {"/my%20table", NULL, "InvalidResourceName"},
    {"/t%C3%A9st", NULL, "InvalidResourceName"},
    {"/$Logs", NULL, "InvalidResourceName"},
    {"/$Metrics-x", NULL, "InvalidResourceName"},
    {"/$Metrics12345678901234567890123456789012345678901234567890123456", NULL, "OutOfRangeInput"},
    {"/()", NULL, "OutOfRangeInput"},
    {"/t01(", NULL, "InvalidUri"},
    {"/t01)", NULL, "InvalidResourceName"},
    {"/t01('a')", NULL, "InvalidUri"},
    {"/t01(PartitionKey='a')", NULL, "InvalidUri"},
    {"/t01(RowKey='b')", NULL, "InvalidUri"},
    {"/t01(PartitionKey='a',RowKey='b'", NULL, "InvalidUri"},
    {"/t01(PartitionKey='a',RowKey='b')x", NULL, "InvalidUri"},
    {"/t01(PartitionKey='a',RowKey='b')()", NULL, "InvalidUri"},
    {"/t01(PartitionKey='a,RowKey='b')", NULL, "InvalidUri"},
    {"/t01(PartitionKey='a',PartitionKey='b')", NULL, "InvalidUri"},
    {"/t01(PartitionKey='a',RowKey='b',RowKey='c')", NULL, "InvalidUri"},
    {"/t01(Partitionkey='a',RowKey='b')", NULL, "InvalidUri"},
    {"/t01(Foo='a',RowKey='b')", NULL, "InvalidUri"},
    {"/t01(PartitionKey=a,RowKey=b)", NULL, "InvalidUri"},
    {"/t01(PartitionKey=\"a\",RowKey=\"b\")", NULL, "InvalidUri"},
    {"/t01(PartitionKey='a';RowKey='b')", NULL, "InvalidUri"},
    {"/t01(PartitionKey='%ZZ',RowKey='b')", NULL, "InvalidUri"},
    {"/t01(PartitionKey='%',RowKey='b')", NULL, "InvalidUri"},
    {"/t01(PartitionKey='a%2',RowKey='b')", NULL, "InvalidUri"},
    {"/t01(PartitionKey='%00',RowKey='b')", NULL, "InvalidUri"},
    {"/t01(PartitionKey='%C3%28',RowKey='b')", NULL, "InvalidUri"},       /* bad UTF-8 */
    {"/t01(PartitionKey='%ED%A0%80',RowKey='b')", NULL, "InvalidUri"},    /* a surrogate */
    {"/t01(PartitionKey='%C0%AF',RowKey='b')", NULL, "InvalidUri"},       /* overlong '/' */
    {"/t01(PartitionKey='%F4%90%80%80',RowKey='b')", NULL, "InvalidUri"}, /* > U+10FFFF */
    {"/t01(PartitionKey='a',RowKey='%F0%9F%98')", NULL, "InvalidUri"},    /* truncated */
    {"/Tables('ab')", NULL, "OutOfRangeInput"},
    {"/Tables('my-table')", NULL, "InvalidResourceName"},
    {"/Tables('mytable'", NULL, "InvalidUri"},
    {"/Tables(mytable)", NULL, "InvalidUri"},
    {"/Tables('mytable')x", NULL, "InvalidUri"},
    {"/Tables('a''b')", NULL, "InvalidResourceName"},
    {"/", NULL, "InvalidUri"},
    {"/", "comp=properties", "InvalidUri"},
    {"/", "restype=service", "InvalidUri"},
    {"/", "restype=container&comp=list", "InvalidQueryParameterValue"},
    {"/", "restype=service&comp=acl", "InvalidQueryParameterValue"},
    {"/", "restype=service&comp=%ZZ", "InvalidUri"},
    {"/mytable", "comp=list", "InvalidQueryParameterValue"},
    {"/mytable", "comp=", "InvalidQueryParameterValue"},
    {"/mytable(PartitionKey='a',RowKey='b')", "comp=acl", "InvalidQueryParameterValue"},
};

static void test_paths_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_paths / sizeof *bad_paths; i++) {
        const bad_path *c = &bad_paths[i];
        az_resource r;
        mt_status st = az_resource_parse(c->path, c->query, &r);
        if (st.http != 400 || strcmp(st.code, c->code) != 0)
            fail_msg("[%s?%s]: got %d %s (%s), want 400 %s", c->path, c->query ? c->query : "",
                     st.http, st.code, st.message, c->code);
        assert_true(st.message[0] != '\0');
        assert_null(r.table);
        assert_null(r.pk);
        assert_null(r.rk);
    }
}

static void test_paths_bounded(void **state)
{
    size_t n = 70 * 1024;
    char *p = malloc(n + 2);
    az_resource r;
    mt_status st;
    (void)state;
    p[0] = '/';
    memset(p + 1, 'a', n);
    p[n + 1] = '\0';
    st = az_resource_parse(p, NULL, &r);
    assert_int_equal(st.http, 400);
    assert_string_equal(st.code, "InvalidUri");
    st = az_resource_parse(NULL, NULL, &r);
    assert_int_equal(st.http, 400);
    free(p);
    az_resource_clear(NULL);
}

/* A key of 1 KiB of four-byte characters, fully percent-encoded: the
 * longest key the service stores, in its longest spelling. */
static void test_long_key(void **state)
{
    const char *prefix = "/t01(PartitionKey='", *mid = "',RowKey='x')";
    size_t chars = 256, n = strlen(prefix) + chars * 12 + strlen(mid) + 1;
    char *p = malloc(n), *q;
    az_resource r;
    mt_status st;
    (void)state;
    q = p + sprintf(p, "%s", prefix);
    for (size_t i = 0; i < chars; i++)
        q += sprintf(q, "%%F0%%9F%%98%%80");
    strcpy(q, mid);
    st = az_resource_parse(p, NULL, &r);
    assert_true(mt_is_ok(&st));
    assert_int_equal(strlen(r.pk), chars * 4);
    assert_string_equal(r.rk, "x");
    az_resource_clear(&r);
    free(p);
}

/* ------------------------------------------------------------------------ */
/* Query parameters                                                          */

typedef struct get_case {
    const char *query;
    const char *name;
    const char *want; /* NULL: absent */
} get_case;

static const get_case get_cases[] = {
    {"a=1&b=2", "b", "2"},
    {"a=1&b=2", "a", "1"},
    {"?a=1", "a", "1"},
    {"%24filter=x%20eq%201", "$filter", "x eq 1"}, /* as sent by azure-storage */
    {"$filter=x", "$FILTER", "x"},
    {"comp=acl", "COMP", "acl"},
    {"a=x+y", "a", "x y"},
    {"a=x%2By", "a", "x+y"},
    {"a+b=1", "a b", "1"},
    {"a=1=2", "a", "1=2"},
    {"a", "a", ""},
    {"a=", "a", ""},
    {"a=1&a=2", "a", "1"},
    {"&&a=1&&", "a", "1"},
    {"ab=1", "a", NULL},
    {"a=1", "b", NULL},
    {"", "a", NULL},
    {"a=%ZZ", "a", NULL},
    {"%ZZ=1&a=2", "a", "2"},
    {"a=%C3%A9", "a", "\xc3\xa9"},
};

static void test_query_get(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof get_cases / sizeof *get_cases; i++) {
        const get_case *c = &get_cases[i];
        char *v = az_query_get(c->query, c->name);
        check_str(c->want, v, "value", c->query);
        free(v);
    }
    assert_null(az_query_get(NULL, "a"));
    assert_null(az_query_get("a=1", NULL));
}

/* ------------------------------------------------------------------------ */
/* Query options                                                             */

static az_query_opts opts_ok(const char *query)
{
    az_query_opts o;
    mt_status st = az_query_opts_parse(query, &o);
    if (!mt_is_ok(&st))
        fail_msg("[%s]: %d %s %s", query ? query : "(null)", st.http, st.code, st.message);
    return o;
}

static void opts_fail(const char *query, const char *code)
{
    az_query_opts o;
    mt_status st = az_query_opts_parse(query, &o);
    if (st.http != 400 || strcmp(st.code, code) != 0)
        fail_msg("[%s]: got %d %s (%s), want 400 %s", query, st.http, st.code, st.message, code);
    assert_null(o.filter);
    assert_null(o.select);
    assert_int_equal(o.nselect, 0);
    assert_int_equal(o.top, 0);
    assert_null(o.next_pk);
    assert_null(o.next_rk);
    assert_null(o.next_table);
}

/* A query without the options (a SAS alone) is told apart in one pass;
 * names that only decoding or case folding reveal, and a query too long,
 * still go through the full parse. */
static void test_opts_names_found(void **state)
{
    (void)state;
    az_query_opts o = opts_ok("sv=2019-02-02&tn=t&sig=a%2Bb&sp=r&&se=x&NextRow=1&topx=2");
    assert_null(o.filter);
    assert_false(o.has_top);
    assert_null(o.next_rk);
    o = opts_ok("sv=1&%24top=5");
    assert_true(o.has_top);
    assert_int_equal(o.top, 5);
    o = opts_ok("sig=x&$TOP=7&nextpartitionkey=1%21YQ--");
    assert_int_equal(o.top, 7);
    assert_non_null(o.next_pk);
    az_query_opts_clear(&o);
    o = opts_ok("sv=1&NEXTROWKEY");
    assert_non_null(o.next_rk);
    az_query_opts_clear(&o);
    size_t n = 64 * 1024 + 8;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = '\0';
    memcpy(big, "sv=", 3);
    opts_fail(big, "InvalidUri");
    free(big);
}

static void test_opts_empty(void **state)
{
    const char *queries[] = {NULL, "", "timeout=30", "$filter=&$select=", "$select=*"};
    (void)state;
    for (size_t i = 0; i < sizeof queries / sizeof *queries; i++) {
        az_query_opts o = opts_ok(queries[i]);
        assert_null(o.filter);
        assert_int_equal(o.top, 0);
        assert_null(o.select);
        assert_null(o.next_pk);
        assert_null(o.next_rk);
        assert_null(o.next_table);
        az_query_opts_clear(&o);
    }
    az_query_opts_clear(NULL);
}

/* A page of Query Entities as @azure/data-tables asks for it. */
static void test_opts_data_tables(void **state)
{
    az_query_opts o = opts_ok("$top=5&$select=X%2CY&$filter=PartitionKey%20eq%20%27p%27%27k%20"
                              "%25%2F%20%C3%A9%F0%9F%98%80%27%20and%20X%20gt%201");
    (void)state;
    assert_int_equal(o.top, 5);
    assert_int_equal(o.nselect, 2);
    assert_string_equal(o.select[0], "X");
    assert_string_equal(o.select[1], "Y");
    assert_non_null(o.filter);
    assert_int_equal(mt_filter_count_comparisons(o.filter), 2);
    assert_string_equal(mt_filter_pinned_partition(o.filter), SDK_PK);
    az_query_opts_clear(&o);
    assert_null(o.filter);
}

/* The same as azure-storage asks for it, resuming from a continuation. */
static void test_opts_azure_storage(void **state)
{
    az_query_opts o = opts_ok("%24select=X%2CY&%24filter=PartitionKey%20eq%20%27p%27%27k%20%25%2F"
                              "%20%C3%A9%F0%9F%98%80%27&%24top=5&NextPartitionKey=np&"
                              "NextRowKey=nr%27x");
    (void)state;
    assert_int_equal(o.top, 5);
    assert_int_equal(o.nselect, 2);
    assert_string_equal(mt_filter_pinned_partition(o.filter), SDK_PK);
    assert_string_equal(o.next_pk, "np");
    assert_string_equal(o.next_rk, "nr'x");
    assert_null(o.next_table);
    az_query_opts_clear(&o);
}

static void test_opts_tables(void **state)
{
    az_query_opts o = opts_ok("$top=3&$filter=TableName%20ge%20%27a%27&NextTableName=abc");
    (void)state;
    assert_int_equal(o.top, 3);
    assert_non_null(o.filter);
    assert_string_equal(o.next_table, "abc");
    az_query_opts_clear(&o);
}

/* A token is minted as the encoded key and echoed encoded once more, as
 * every SDK does; the options hand back the raw key. */
static void test_opts_token_round_trip(void **state)
{
    const char *keys[] = {"", "a", SDK_PK, "100%", "a+b c", "%41", "\xf0\x90\x90\x80"};
    (void)state;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char *token = az_url_encode(keys[i]), *echoed = az_url_encode(token);
        size_t n = 3 * strlen(echoed) + 64;
        char *query = malloc(n);
        az_query_opts o;
        snprintf(query, n, "NextPartitionKey=%s&NextRowKey=%s&NextTableName=%s", echoed, echoed,
                 echoed);
        o = opts_ok(query);
        assert_string_equal(o.next_pk, keys[i]);
        assert_string_equal(o.next_rk, keys[i]);
        assert_string_equal(o.next_table, keys[i]);
        az_query_opts_clear(&o);
        /* Spliced in unencoded: still right while the value has no '%'. */
        if (!strchr(keys[i], '%')) {
            snprintf(query, n, "NextPartitionKey=%s", token);
            o = opts_ok(query);
            assert_string_equal(o.next_pk, keys[i]);
            az_query_opts_clear(&o);
        }
        free(query);
        free(echoed);
        free(token);
    }
}

static void test_opts_top(void **state)
{
    const char *ok[] = {"$top=1", "$top=1000", "$top=0001", "%24top=42", "$top=0", "$top=000"};
    const int want[] = {1, 1000, 1, 42, 0, 0};
    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        az_query_opts o = opts_ok(ok[i]);
        assert_int_equal(o.top, want[i]);
        assert_true(o.has_top);
        az_query_opts_clear(&o);
    }
    opts_fail("$top=1001", "OutOfRangeInput");
    opts_fail("$top=99999999999999999999999", "OutOfRangeInput");
    opts_fail("$top=", "InvalidInput");
    opts_fail("$top", "InvalidInput");
    opts_fail("$top=abc", "InvalidInput");
    opts_fail("$top=-1", "InvalidInput");
    opts_fail("$top=5x", "InvalidInput");
    opts_fail("$top=+5", "InvalidInput");
    opts_fail("$top=1.5", "InvalidInput");
    opts_fail("$top=%ZZ", "InvalidUri");
}

static void test_opts_select(void **state)
{
    az_query_opts o = opts_ok("$select=%20A%20,B,PartitionKey");
    char *big;
    size_t n;
    (void)state;
    assert_int_equal(o.nselect, 3);
    assert_string_equal(o.select[0], "A");
    assert_string_equal(o.select[1], "B");
    assert_string_equal(o.select[2], "PartitionKey");
    az_query_opts_clear(&o);
    o = opts_ok("$select=A,*");
    assert_null(o.select);
    assert_int_equal(o.nselect, 0);
    az_query_opts_clear(&o);
    opts_fail("$select=A,,B", "InvalidInput");
    opts_fail("$select=A,", "InvalidInput");
    opts_fail("$select=,", "InvalidInput");
    /* A 256-character name, then 1025 names. */
    big = malloc(8 * 1100 + 16);
    n = (size_t)sprintf(big, "$select=");
    memset(big + n, 'a', 256);
    big[n + 256] = '\0';
    opts_fail(big, "InvalidInput");
    big[n + 255] = '\0';
    o = opts_ok(big);
    assert_int_equal(o.nselect, 1);
    az_query_opts_clear(&o);
    for (int i = 0; i < 1025; i++)
        n += (size_t)sprintf(big + n, "%sP%d", i ? "," : "", i);
    opts_fail(big + 0, "InvalidInput");
    free(big);
}

static void test_opts_filter_errors(void **state)
{
    (void)state;
    opts_fail("$filter=PartitionKey%20eq", "InvalidInput");
    opts_fail("$filter=X%20EQ%201", "InvalidInput");
    opts_fail("$filter=%ZZ", "InvalidUri");
    /* An error after a good $filter leaves nothing behind. */
    opts_fail("$filter=X%20eq%201&$top=1001", "OutOfRangeInput");
    opts_fail("$filter=X%20eq%201&$select=a,,b", "InvalidInput");
}

static void test_opts_token_errors(void **state)
{
    (void)state;
    opts_fail("NextPartitionKey=%25ZZ", "InvalidInput");
    opts_fail("NextRowKey=%2500", "InvalidInput");
    opts_fail("NextTableName=%25C3%2528", "InvalidInput");
    opts_fail("$top=5&NextPartitionKey=a&NextRowKey=%25", "InvalidInput");
    opts_fail("NextPartitionKey=%ZZ", "InvalidUri");
}

/* The one rule for table names, which Create Table, the table map and
 * connection strings apply; a path may also name an analytics table. */
static void test_table_name_rule(void **state)
{
    (void)state;
    assert_true(az_table_name_valid("abc"));
    assert_true(az_table_name_valid("A1b2C3"));
    char long_ok[64], too_long[65];
    memset(long_ok, 'a', 63), long_ok[63] = '\0';
    memset(too_long, 'a', 64), too_long[64] = '\0';
    assert_true(az_table_name_valid(long_ok));
    assert_false(az_table_name_valid(too_long));
    assert_false(az_table_name_valid(NULL));
    assert_false(az_table_name_valid("ab"));
    assert_false(az_table_name_valid("1abc"));
    assert_false(az_table_name_valid("a-bc"));
    assert_false(az_table_name_valid("a_bc"));
    assert_false(az_table_name_valid("Tables"));
    assert_false(az_table_name_valid("$MetricsHourPrimaryTransactionsTable"));
    az_resource r;
    assert_int_equal(az_resource_parse("/$MetricsHourPrimaryTransactionsTable()", NULL, &r).http,
                     0);
    az_resource_clear(&r);
    assert_int_equal(az_resource_parse("/ab()", NULL, &r).http, 400);
    az_resource_clear(&r);
    assert_int_equal(az_resource_parse("/a_b()", NULL, &r).http, 400);
    az_resource_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_parse),
        cmocka_unit_test(test_paths_rejected),
        cmocka_unit_test(test_paths_bounded),
        cmocka_unit_test(test_long_key),
        cmocka_unit_test(test_table_name_rule),
        cmocka_unit_test(test_query_get),
        cmocka_unit_test(test_opts_empty),
        cmocka_unit_test(test_opts_data_tables),
        cmocka_unit_test(test_opts_azure_storage),
        cmocka_unit_test(test_opts_tables),
        cmocka_unit_test(test_opts_token_round_trip),
        cmocka_unit_test(test_opts_top),
        cmocka_unit_test(test_opts_select),
        cmocka_unit_test(test_opts_names_found),
        cmocka_unit_test(test_opts_filter_errors),
        cmocka_unit_test(test_opts_token_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

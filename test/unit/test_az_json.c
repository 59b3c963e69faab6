/*
 * test_az_json.c -- entity and table payloads in JSON: format negotiation,
 * the exact bodies written at each metadata level, reading every EDM type
 * with and without annotations, every rejection with its Azure error code,
 * and write -> read round trips over edge values.
 *
 * Bodies are compared as exact strings: the member order (metadata first,
 * then the keys, then each annotation just before its property) is the
 * one the service writes, and SDKs that stream the body rely on it.
 * Rejections are a table of (body, error code) run by one loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "az_internal.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

#define BASE "http://127.0.0.1:10002/devstoreaccount1"

static az_payload_ctx ctx(az_metadata md)
{
    az_payload_ctx c = {
        .md = md, .base_url = BASE, .account = "devstoreaccount1", .table = "people"};
    return c;
}

static mt_entity *read_ok(const char *json)
{
    mt_entity *e = NULL;
    mt_status st = az_entity_read(AZ_FMT_JSON, json, strlen(json), &e);
    if (!mt_is_ok(&st))
        fail_msg("read of [%.200s] failed: %d %s", json, st.http, st.code);
    assert_non_null(e);
    return e;
}

static void read_fails(const char *json, size_t len, const char *code)
{
    mt_entity *e = (mt_entity *)&e;
    mt_status st = az_entity_read(AZ_FMT_JSON, json, len, &e);
    if (mt_is_ok(&st))
        fail_msg("[%.200s] was accepted", json);
    assert_null(e);
    assert_int_equal(st.http, 400);
    if (strcmp(st.code, code) != 0)
        fail_msg("[%.200s]: code %s, expected %s", json, st.code, code);
}

static char *write_one(az_metadata md, const mt_entity *e)
{
    az_payload_ctx c = ctx(md);
    size_t len = 0;
    char *out = az_entity_write(AZ_FMT_JSON, &c, e, &len);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    return out;
}

static void expect_body(char *got, const char *want)
{
    if (strcmp(got, want) != 0)
        fail_msg("body\n got: %s\nwant: %s", got, want);
    free(got);
}

static void expect_prop(const mt_entity *e, const char *name, mt_value want)
{
    const mt_value *v = mt_entity_get(e, name);
    if (!v)
        fail_msg("property %s missing", name);
    if (!mt_value_equal(v, &want))
        fail_msg("property %s: type %s, expected %s", name, mt_edm_name(v->type),
                 mt_edm_name(want.type));
}

/* Reads {"PartitionKey":"p","RowKey":"r",<members>} and checks property
 * X equals want. */
static void check_read(const char *members, mt_value want)
{
    char body[512];
    snprintf(body, sizeof body, "{\"PartitionKey\":\"p\",\"RowKey\":\"r\",%s}", members);
    mt_entity *e = read_ok(body);
    assert_int_equal(e->nprops, 1);
    expect_prop(e, "X", want);
    mt_entity_free(e);
}

static const uint8_t guid_bytes[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                       0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};

/* One property of every type and the awkward values. */
static mt_entity *sample_entity(void)
{
    static const uint8_t bytes[] = {0, 1, 2, 255};
    mt_entity *e = mt_entity_new("pk1", "rk1");
    e->timestamp = INT64_C(637134336001234567);
    mt_entity_set_etag(e, "W/\"datetime'2020-01-01T00%3A00%3A00.1234567Z'\"");
    mt_value v;
    mt_entity_set(e, "Str", (v = mt_v_str("h\xC3\xA9llo"), &v));
    mt_entity_set(e, "I32", (v = mt_v_i32(-42), &v));
    mt_entity_set(e, "I64", (v = mt_v_i64(INT64_MAX), &v));
    mt_entity_set(e, "Dbl", (v = mt_v_dbl(0.1), &v));
    mt_entity_set(e, "Whole", (v = mt_v_dbl(2.0), &v));
    mt_entity_set(e, "Nan", (v = mt_v_dbl(NAN), &v));
    mt_entity_set(e, "Inf", (v = mt_v_dbl(INFINITY), &v));
    mt_entity_set(e, "NInf", (v = mt_v_dbl(-INFINITY), &v));
    mt_entity_set(e, "NegZero", (v = mt_v_dbl(-0.0), &v));
    mt_entity_set(e, "Flag", (v = mt_v_bool(false), &v));
    mt_entity_set(e, "When", (v = mt_v_datetime(0), &v));
    mt_entity_set(e, "Id", (v = mt_v_guid(guid_bytes), &v));
    mt_entity_set(e, "Bytes", (v = mt_v_binary(bytes, sizeof bytes), &v));
    mt_entity_set(e, "Empty", (v = mt_v_binary("", 0), &v));
    return e;
}

#define ETAG_JSON "\"W/\\\"datetime'2020-01-01T00%3A00%3A00.1234567Z'\\\"\""
#define KEYS "\"PartitionKey\":\"pk1\",\"RowKey\":\"rk1\","
#define TS "\"Timestamp\":\"2020-01-01T00:00:00.1234567Z\","
#define TS_FULL "\"Timestamp@odata.type\":\"Edm.DateTime\"," TS
#define PROPS_PLAIN                                                                                \
    "\"Str\":\"h\xC3\xA9llo\",\"I32\":-42,\"I64\":\"9223372036854775807\",\"Dbl\":0.1,"            \
    "\"Whole\":2.0,\"Nan\":\"NaN\",\"Inf\":\"Infinity\",\"NInf\":\"-Infinity\","                   \
    "\"NegZero\":-0.0,\"Flag\":false,\"When\":\"0001-01-01T00:00:00.0000000Z\","                   \
    "\"Id\":\"00112233-4455-6677-8899-aabbccddeeff\",\"Bytes\":\"AAEC/w==\",\"Empty\":\"\""
#define PROPS_TYPED                                                                                \
    "\"Str\":\"h\xC3\xA9llo\",\"I32\":-42,"                                                        \
    "\"I64@odata.type\":\"Edm.Int64\",\"I64\":\"9223372036854775807\",\"Dbl\":0.1,"                \
    "\"Whole\":2.0,\"Nan@odata.type\":\"Edm.Double\",\"Nan\":\"NaN\","                             \
    "\"Inf@odata.type\":\"Edm.Double\",\"Inf\":\"Infinity\","                                      \
    "\"NInf@odata.type\":\"Edm.Double\",\"NInf\":\"-Infinity\","                                   \
    "\"NegZero\":-0.0,\"Flag\":false,"                                                             \
    "\"When@odata.type\":\"Edm.DateTime\",\"When\":\"0001-01-01T00:00:00.0000000Z\","              \
    "\"Id@odata.type\":\"Edm.Guid\",\"Id\":\"00112233-4455-6677-8899-aabbccddeeff\","              \
    "\"Bytes@odata.type\":\"Edm.Binary\",\"Bytes\":\"AAEC/w==\","                                  \
    "\"Empty@odata.type\":\"Edm.Binary\",\"Empty\":\"\""
#define FULL_IDENTITY                                                                              \
    "\"odata.type\":\"devstoreaccount1.people\","                                                  \
    "\"odata.id\":\"" BASE "/people(PartitionKey='pk1',RowKey='rk1')\","                           \
    "\"odata.etag\":" ETAG_JSON ","                                                                \
    "\"odata.editLink\":\"people(PartitionKey='pk1',RowKey='rk1')\","

/* ------------------------------------------------------------------------ */
/* Negotiation                                                               */

typedef struct nego_case {
    const char *accept, *format;
    bool ok;
    az_format fmt;
    az_metadata md;
} nego_case;

static void test_negotiate(void **state)
{
    (void)state;
    static const nego_case cases[] = {
        {"application/json;odata=nometadata", NULL, true, AZ_FMT_JSON, AZ_META_NONE},
        {"application/json;odata=minimalmetadata", NULL, true, AZ_FMT_JSON, AZ_META_MINIMAL},
        {"application/json;odata=fullmetadata", NULL, true, AZ_FMT_JSON, AZ_META_FULL},
        {"application/json", NULL, true, AZ_FMT_JSON, AZ_META_MINIMAL},
        {"Application/JSON; odata=FullMetadata", NULL, true, AZ_FMT_JSON, AZ_META_FULL},
        {"application/json;odata=nometadata;streaming=true;charset=utf-8", NULL, true, AZ_FMT_JSON,
         AZ_META_NONE},
        {"application/json;charset=utf-8;odata=fullmetadata", NULL, true, AZ_FMT_JSON,
         AZ_META_FULL},
        {"application/atom+xml", NULL, true, AZ_FMT_ATOM, AZ_META_MINIMAL},
        {"application/xml", NULL, true, AZ_FMT_ATOM, AZ_META_MINIMAL},
        {"application/atom+xml,application/xml", NULL, true, AZ_FMT_ATOM, AZ_META_MINIMAL},
        {"*/*", NULL, true, AZ_FMT_JSON, AZ_META_MINIMAL},
        {"application/*", NULL, true, AZ_FMT_JSON, AZ_META_MINIMAL},
        {NULL, NULL, true, AZ_FMT_JSON, AZ_META_MINIMAL},
        {"", NULL, true, AZ_FMT_JSON, AZ_META_MINIMAL},
        {"  ", "", true, AZ_FMT_JSON, AZ_META_MINIMAL},
        /* A list: the highest weight wins, the first on a tie. */
        {"text/html, application/json;odata=nometadata", NULL, true, AZ_FMT_JSON, AZ_META_NONE},
        {"application/atom+xml;q=0.5, application/json;odata=fullmetadata", NULL, true, AZ_FMT_JSON,
         AZ_META_FULL},
        {"application/json;odata=fullmetadata;q=0.1, application/atom+xml;q=0.9", NULL, true,
         AZ_FMT_ATOM, AZ_META_MINIMAL},
        {"application/json;odata=nometadata, application/json;odata=fullmetadata", NULL, true,
         AZ_FMT_JSON, AZ_META_NONE},
        {"application/json;q=0, application/xml", NULL, true, AZ_FMT_ATOM, AZ_META_MINIMAL},
        /* $format overrides Accept. */
        {"application/atom+xml", "application/json;odata=nometadata", true, AZ_FMT_JSON,
         AZ_META_NONE},
        {"application/json;odata=nometadata", "json", true, AZ_FMT_JSON, AZ_META_MINIMAL},
        {"application/json", "atom", true, AZ_FMT_ATOM, AZ_META_MINIMAL},
        {"application/json;odata=fullmetadata", "", true, AZ_FMT_JSON, AZ_META_FULL},
        /* Not served: falls back to JSON minimal and says so. */
        {"application/json;odata=verbose", NULL, false, AZ_FMT_JSON, AZ_META_MINIMAL},
        {"application/json;odata=bogus", NULL, false, AZ_FMT_JSON, AZ_META_MINIMAL},
        {"text/html", NULL, false, AZ_FMT_JSON, AZ_META_MINIMAL},
        {"text/plain, image/png", NULL, false, AZ_FMT_JSON, AZ_META_MINIMAL},
        {"application/json;q=0", NULL, false, AZ_FMT_JSON, AZ_META_MINIMAL},
        {"application/jsonx", NULL, false, AZ_FMT_JSON, AZ_META_MINIMAL},
        {NULL, "text/csv", false, AZ_FMT_JSON, AZ_META_MINIMAL},
        {"application/json", "application/json;odata=verbose", false, AZ_FMT_JSON, AZ_META_MINIMAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const nego_case *k = &cases[i];
        az_format fmt = AZ_FMT_ATOM;
        az_metadata md = AZ_META_FULL;
        bool ok = az_format_negotiate(k->accept, k->format, &fmt, &md);
        if (ok != k->ok || fmt != k->fmt || (fmt == AZ_FMT_JSON && md != k->md))
            fail_msg("case %zu [%s | %s]: ok %d fmt %d md %d", i, k->accept ? k->accept : "-",
                     k->format ? k->format : "-", ok, fmt, md);
    }
}

/* ------------------------------------------------------------------------ */
/* Writing entities                                                          */

static void test_write_entity_levels(void **state)
{
    (void)state;
    mt_entity *e = sample_entity();
    expect_body(write_one(AZ_META_NONE, e), "{" KEYS TS PROPS_PLAIN "}");
    expect_body(write_one(AZ_META_MINIMAL, e),
                "{\"odata.metadata\":\"" BASE "/$metadata#people/@Element\","
                "\"odata.etag\":" ETAG_JSON "," KEYS TS PROPS_TYPED "}");
    expect_body(write_one(AZ_META_FULL, e),
                "{\"odata.metadata\":\"" BASE
                "/$metadata#people/@Element\"," FULL_IDENTITY KEYS TS_FULL PROPS_TYPED "}");
    mt_entity_free(e);
}

static char *write_list(az_metadata md, const mt_entity_list *l)
{
    az_payload_ctx c = ctx(md);
    size_t len = 0;
    char *out = az_entities_write(AZ_FMT_JSON, &c, l, &len);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    return out;
}

static void test_write_entity_lists(void **state)
{
    (void)state;
    mt_entity_list l = {0};
    mt_entity_list_push(&l, sample_entity());
    mt_entity_list_push(&l, mt_entity_new("pk2", "")); /* no etag, no timestamp */
    expect_body(write_list(AZ_META_NONE, &l), "{\"value\":[{" KEYS TS PROPS_PLAIN
                                              "},{\"PartitionKey\":\"pk2\",\"RowKey\":\"\"}]}");
    expect_body(write_list(AZ_META_MINIMAL, &l),
                "{\"odata.metadata\":\"" BASE
                "/$metadata#people\",\"value\":[{\"odata.etag\":" ETAG_JSON "," KEYS TS PROPS_TYPED
                "},{\"PartitionKey\":\"pk2\",\"RowKey\":\"\"}]}");
    expect_body(write_list(AZ_META_FULL, &l),
                "{\"odata.metadata\":\"" BASE
                "/$metadata#people\",\"value\":[{" FULL_IDENTITY KEYS TS_FULL PROPS_TYPED
                "},{\"odata.type\":\"devstoreaccount1.people\","
                "\"odata.id\":\"" BASE "/people(PartitionKey='pk2',RowKey='')\","
                "\"odata.editLink\":\"people(PartitionKey='pk2',RowKey='')\","
                "\"PartitionKey\":\"pk2\",\"RowKey\":\"\"}]}");
    mt_entity_list_clear(&l);
    expect_body(write_list(AZ_META_NONE, &l), "{\"value\":[]}");
    expect_body(write_list(AZ_META_MINIMAL, &l),
                "{\"odata.metadata\":\"" BASE "/$metadata#people\",\"value\":[]}");
}

/* $select: only what was named, a missing property as null, the metadata
 * the level always carries; keys only when selected. */
static void test_write_select(void **state)
{
    (void)state;
    mt_entity *e = sample_entity();
    char *sel[] = {"I64", "Missing", "RowKey", "Flag", "I64", "Timestamp"};
    az_payload_ctx c = ctx(AZ_META_MINIMAL);
    c.select = sel;
    c.nselect = 6;
    size_t len;
    expect_body(az_entity_write(AZ_FMT_JSON, &c, e, &len),
                "{\"odata.metadata\":\"" BASE "/$metadata#people/@Element\","
                "\"odata.etag\":" ETAG_JSON ",\"RowKey\":\"rk1\"," TS
                "\"I64@odata.type\":\"Edm.Int64\",\"I64\":\"9223372036854775807\","
                "\"Flag\":false,\"Missing\":null}");
    c.md = AZ_META_NONE;
    c.nselect = 2;
    expect_body(az_entity_write(AZ_FMT_JSON, &c, e, &len),
                "{\"I64\":\"9223372036854775807\",\"Missing\":null}");
    /* An empty selection keeps the metadata only. */
    c.md = AZ_META_MINIMAL;
    c.nselect = 0;
    mt_entity_list l = {0};
    mt_entity_list_push(&l, e);
    expect_body(az_entities_write(AZ_FMT_JSON, &c, &l, &len),
                "{\"odata.metadata\":\"" BASE
                "/$metadata#people\",\"value\":[{\"odata.etag\":" ETAG_JSON "}]}");
    mt_entity_list_clear(&l);
}

/* Keys in odata.id and odata.editLink: quotes doubled, the rest as a path
 * segment holds it; a base URL with a trailing slash. */
static void test_write_key_paths(void **state)
{
    (void)state;
    mt_entity *e = mt_entity_new("a'b c", "\xC3\xA9%/?#");
    az_payload_ctx c = ctx(AZ_META_FULL);
    c.base_url = BASE "/";
    size_t len;
    expect_body(
        az_entity_write(AZ_FMT_JSON, &c, e, &len),
        "{\"odata.metadata\":\"" BASE "/$metadata#people/@Element\","
        "\"odata.type\":\"devstoreaccount1.people\","
        "\"odata.id\":\"" BASE "/people(PartitionKey='a''b%20c',RowKey='%C3%A9%25%2F%3F%23')\","
        "\"odata.editLink\":\"people(PartitionKey='a''b%20c',RowKey='%C3%A9%25%2F%3F%23')\","
        "\"PartitionKey\":\"a'b c\",\"RowKey\":\"\xC3\xA9%/?#\"}");
    mt_entity_free(e);
}

/* Doubles: shortest text that reads back exactly, never mistaken for an
 * Int32. */
static void test_write_doubles(void **state)
{
    (void)state;
    static const struct {
        double d;
        const char *text;
    } cases[] = {
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {1.0, "1.0"},
        {-3.0, "-3.0"},
        {0.1, "0.1"},
        {1.5, "1.5"},
        {1e21, "1e+21"},
        {1e15, "1e+15"},
        {123456789.0, "123456789.0"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {-DBL_MAX, "-1.7976931348623157e+308"},
        {DBL_MIN, "2.2250738585072014e-308"},
        {5e-324, "4.94065645841247e-324"},
        {2147483648.0, "2147483648.0"},
        {1.0 / 3, "0.3333333333333333"},
        {9007199254740993.0, "9007199254740992.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mt_entity *e = mt_entity_new("p", "r");
        mt_value v = mt_v_dbl(cases[i].d);
        mt_entity_set(e, "D", &v);
        char want[128];
        snprintf(want, sizeof want, "{\"PartitionKey\":\"p\",\"RowKey\":\"r\",\"D\":%s}",
                 cases[i].text);
        expect_body(write_one(AZ_META_NONE, e), want);
        mt_entity_free(e);
    }
}

/* Strings: JSON escapes, non-BMP characters kept as UTF-8. */
static void test_write_strings(void **state)
{
    (void)state;
    mt_entity *e = mt_entity_new("\xF0\x9F\x98\x80", "");
    mt_value v = mt_v_str("q\"b\\s/\b\f\n\r\t\x01\x1f\x7f\xF4\x8F\xBF\xBF");
    mt_entity_set(e, "S", &v);
    expect_body(write_one(AZ_META_MINIMAL, e),
                "{\"odata.metadata\":\"" BASE "/$metadata#people/@Element\","
                "\"PartitionKey\":\"\xF0\x9F\x98\x80\",\"RowKey\":\"\","
                "\"S\":\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xF4\x8F\xBF\xBF\"}");
    mt_entity_free(e);
}

/* ------------------------------------------------------------------------ */
/* Writing tables and errors                                                 */

static void test_write_tables(void **state)
{
    (void)state;
    char *names[] = {"alpha", "Beta2"};
    size_t len;
    for (int md = AZ_META_NONE; md <= AZ_META_FULL; md++) {
        az_payload_ctx c = ctx((az_metadata)md);
        c.table = NULL;
        char *one = az_table_write(AZ_FMT_JSON, &c, "alpha", &len);
        char *all = az_tables_write(AZ_FMT_JSON, &c, names, 2, &len);
        char *none = az_tables_write(AZ_FMT_JSON, &c, NULL, 0, &len);
        assert_int_equal(len, strlen(none));
        if (md == AZ_META_NONE) {
            expect_body(one, "{\"TableName\":\"alpha\"}");
            expect_body(all, "{\"value\":[{\"TableName\":\"alpha\"},{\"TableName\":\"Beta2\"}]}");
            expect_body(none, "{\"value\":[]}");
        } else if (md == AZ_META_MINIMAL) {
            expect_body(one, "{\"odata.metadata\":\"" BASE "/$metadata#Tables/@Element\","
                             "\"TableName\":\"alpha\"}");
            expect_body(all, "{\"odata.metadata\":\"" BASE "/$metadata#Tables\",\"value\":["
                             "{\"TableName\":\"alpha\"},{\"TableName\":\"Beta2\"}]}");
            expect_body(none, "{\"odata.metadata\":\"" BASE "/$metadata#Tables\",\"value\":[]}");
        } else {
#define TFULL(n)                                                                                   \
    "\"odata.type\":\"devstoreaccount1.Tables\",\"odata.id\":\"" BASE "/Tables('" n "')\","        \
    "\"odata.editLink\":\"Tables('" n "')\",\"TableName\":\"" n "\""
            expect_body(one, "{\"odata.metadata\":\"" BASE
                             "/$metadata#Tables/@Element\"," TFULL("alpha") "}");
            expect_body(all, "{\"odata.metadata\":\"" BASE "/$metadata#Tables\",\"value\":[{" TFULL(
                                 "alpha") "},{" TFULL("Beta2") "}]}");
            expect_body(none, "{\"odata.metadata\":\"" BASE "/$metadata#Tables\",\"value\":[]}");
        }
    }
}

static void test_write_error(void **state)
{
    (void)state;
    size_t len;
    char *b = az_error_write(AZ_FMT_JSON, "ResourceNotFound",
                             "The specified resource does not exist.\nRequestId:x", &len);
    assert_int_equal(len, strlen(b));
    expect_body(b,
                "{\"odata.error\":{\"code\":\"ResourceNotFound\",\"message\":{\"lang\":"
                "\"en-US\",\"value\":\"The specified resource does not exist.\\nRequestId:x\"}}}");
    expect_body(
        az_error_write(AZ_FMT_JSON, "X\"", "", &len),
        "{\"odata.error\":{\"code\":\"X\\\"\",\"message\":{\"lang\":\"en-US\",\"value\":\"\"}}}");
}

/* ------------------------------------------------------------------------ */
/* Reading values                                                            */

static void test_read_annotated(void **state)
{
    (void)state;
    check_read("\"X@odata.type\":\"Edm.String\",\"X\":\"12\"", mt_v_str("12"));
    check_read("\"X@odata.type\":\"Edm.Int32\",\"X\":-2147483648", mt_v_i32(INT32_MIN));
    check_read("\"X@odata.type\":\"Edm.Int32\",\"X\":2147483647", mt_v_i32(INT32_MAX));
    check_read("\"X@odata.type\":\"Edm.Int64\",\"X\":\"-9223372036854775808\"",
               mt_v_i64(INT64_MIN));
    check_read("\"X@odata.type\":\"Edm.Int64\",\"X\":\"9223372036854775807\"", mt_v_i64(INT64_MAX));
    check_read("\"X@odata.type\":\"Edm.Int64\",\"X\":\"0\"", mt_v_i64(0));
    check_read("\"X@odata.type\":\"Edm.Double\",\"X\":1.25", mt_v_dbl(1.25));
    check_read("\"X@odata.type\":\"Edm.Double\",\"X\":3", mt_v_dbl(3.0));
    check_read("\"X@odata.type\":\"Edm.Double\",\"X\":\"NaN\"", mt_v_dbl(NAN));
    check_read("\"X@odata.type\":\"Edm.Double\",\"X\":\"Infinity\"", mt_v_dbl(INFINITY));
    check_read("\"X@odata.type\":\"Edm.Double\",\"X\":\"-Infinity\"", mt_v_dbl(-INFINITY));
    check_read("\"X@odata.type\":\"Edm.Double\",\"X\":-0.0", mt_v_dbl(-0.0));
    check_read("\"X@odata.type\":\"Edm.Double\",\"X\":1.7976931348623157e308", mt_v_dbl(DBL_MAX));
    check_read("\"X@odata.type\":\"Edm.Boolean\",\"X\":true", mt_v_bool(true));
    check_read("\"X@odata.type\":\"Edm.DateTime\",\"X\":\"2020-02-29T12:34:56.1234567Z\"",
               mt_v_datetime(INT64_C(637185764961234567)));
    check_read("\"X@odata.type\":\"Edm.DateTime\",\"X\":\"2020-02-29T13:34:56.1234567+01:00\"",
               mt_v_datetime(INT64_C(637185764961234567)));
    check_read("\"X@odata.type\":\"Edm.DateTime\",\"X\":\"2020-02-29T12:34:56.123Z\"",
               mt_v_datetime(INT64_C(637185764961230000)));
    check_read("\"X@odata.type\":\"Edm.Guid\",\"X\":\"00112233-4455-6677-8899-AABBCCDDEEFF\"",
               mt_v_guid(guid_bytes));
    check_read("\"X@odata.type\":\"Edm.Binary\",\"X\":\"AAEC/w==\"",
               mt_v_binary("\x00\x01\x02\xff", 4));
    check_read("\"X@odata.type\":\"Edm.Binary\",\"X\":\"\"", mt_v_binary("", 0));
}

static void test_read_inferred(void **state)
{
    (void)state;
    check_read("\"X\":\"text\"", mt_v_str("text"));
    check_read("\"X\":\"\"", mt_v_str(""));
    check_read("\"X\":\"\\ud83d\\ude00\\u00e9\\n\"", mt_v_str("\xF0\x9F\x98\x80\xC3\xA9\n"));
    check_read("\"X\":5", mt_v_i32(5));
    check_read("\"X\":-0", mt_v_i32(0));
    check_read("\"X\":2147483647", mt_v_i32(INT32_MAX));
    check_read("\"X\":-2147483648", mt_v_i32(INT32_MIN));
    /* Whole numbers outside Int32 become Doubles, as the service reads them. */
    check_read("\"X\":2147483648", mt_v_dbl(2147483648.0));
    check_read("\"X\":-2147483649", mt_v_dbl(-2147483649.0));
    check_read("\"X\":9223372036854775808", mt_v_dbl(9223372036854775808.0));
    check_read("\"X\":5.0", mt_v_dbl(5.0));
    check_read("\"X\":-0.0", mt_v_dbl(-0.0));
    check_read("\"X\":1e3", mt_v_dbl(1000.0));
    check_read("\"X\":1E-2", mt_v_dbl(0.01));
    check_read("\"X\":0.1", mt_v_dbl(0.1));
    check_read("\"X\":true", mt_v_bool(true));
    check_read("\"X\":false", mt_v_bool(false));
    /* An unannotated "NaN" is just text. */
    check_read("\"X\":\"NaN\"", mt_v_str("NaN"));
}

/* What SDKs and Azurite send beyond the strict form. */
static void test_read_lenient(void **state)
{
    (void)state;
    check_read("\"X\":\"12\",\"X@odata.type\":\"Edm.Int64\"", mt_v_i64(12)); /* after */
    check_read("\"X@odata.type\":\"Edm.Int32\",\"X\":\"-12\"", mt_v_i32(-12));
    check_read("\"X@odata.type\":\"Edm.Int32\",\"X\":\"+7\"", mt_v_i32(7));
    check_read("\"X@odata.type\":\"Edm.Int64\",\"X\":-9223372036854775808", mt_v_i64(INT64_MIN));
    check_read("\"X@odata.type\":\"Edm.Int64\",\"X\":\"007\"", mt_v_i64(7));
    check_read("\"X@odata.type\":\"Edm.Double\",\"X\":\"6824053932181\"",
               mt_v_dbl(6824053932181.0));
    check_read("\"X@odata.type\":\"Edm.Double\",\"X\":\"1.5e2\"", mt_v_dbl(150.0));
    check_read("\"X@odata.type\":\"Edm.Double\",\"X\":\"INF\"", mt_v_dbl(INFINITY));
    check_read("\"X@odata.type\":\"Edm.Double\",\"X\":\"-INF\"", mt_v_dbl(-INFINITY));
    check_read("\"X@odata.type\":\"Edm.Boolean\",\"X\":\"false\"", mt_v_bool(false));
    check_read("\"X@odata.type\":\"Edm.Guid\",\"X\":\"{00112233-4455-6677-8899-aabbccddeeff}\"",
               mt_v_guid(guid_bytes));
    check_read("\"X@odata.type\":\"Edm.Guid\",\"X\":\"(00112233-4455-6677-8899-aabbccddeeff)\"",
               mt_v_guid(guid_bytes));
    check_read("\"X@odata.type\":\"Edm.Guid\",\"X\":\"00112233445566778899aabbccddeeff\"",
               mt_v_guid(guid_bytes));
    /* Metadata members, Timestamp and foreign annotations are ignored. */
    check_read("\"odata.etag\":\"W/\\\"1\\\"\",\"odata.metadata\":\"x\",\"odata.type\":5,"
               "\"Timestamp\":\"bogus\",\"Timestamp@odata.type\":\"Edm.DateTime\","
               "\"X@odata.foo\":1,\"@odata.context\":\"c\",\"X\":1",
               mt_v_i32(1));
    /* A null value is an absent property. */
    check_read("\"Y\":null,\"Z@odata.type\":\"Edm.Int64\",\"Z\":null,\"X\":1", mt_v_i32(1));
    check_read("\"PartitionKey@odata.type\":\"Edm.String\",\"X\":2", mt_v_i32(2));
}

static void test_read_layout(void **state)
{
    (void)state;
    /* Whitespace, a BOM, property order kept, keys anywhere. */
    const char *body = "\xEF\xBB\xBF \n{ \"B\" : 1 ,\r\n\t\"RowKey\":\"r\", \"A\":\"x\","
                       "\"PartitionKey\" : \"p\" } \n";
    mt_entity *e = read_ok(body);
    assert_string_equal(e->pk, "p");
    assert_string_equal(e->rk, "r");
    assert_int_equal(e->nprops, 2);
    assert_string_equal(e->props[0].name, "B");
    assert_string_equal(e->props[1].name, "A");
    assert_int_equal(e->timestamp, 0);
    assert_null(e->etag);
    mt_entity_free(e);
    /* Absent or null keys read as empty: the URL supplies them. */
    e = read_ok("{\"A\":1}");
    assert_string_equal(e->pk, "");
    assert_string_equal(e->rk, "");
    mt_entity_free(e);
    e = read_ok("{\"PartitionKey\":null,\"RowKey\":\"\\ud83d\\ude00\"}");
    assert_string_equal(e->pk, "");
    assert_string_equal(e->rk, "\xF0\x9F\x98\x80");
    assert_int_equal(e->nprops, 0);
    mt_entity_free(e);
    e = read_ok("{}");
    mt_entity_free(e);
    /* The length bounds the body. */
    const char *two = "{\"A\":1}{\"B\":2}";
    e = NULL;
    mt_status st = az_entity_read(AZ_FMT_JSON, two, 7, &e);
    assert_true(mt_is_ok(&st));
    assert_non_null(mt_entity_get(e, "A"));
    mt_entity_free(e);
}

/* ------------------------------------------------------------------------ */
/* Rejections                                                                */

typedef struct bad_case {
    const char *body;
    const char *code;
} bad_case;

#define INV MT_ERR_INVALID_INPUT
#define DUP "DuplicatePropertiesSpecified"
#define NAME "PropertyNameInvalid"

static const bad_case bad_cases[] = {
    /* Not one JSON object. */
    {"", INV},
    {" ", INV},
    {"[]", INV},
    {"1", INV},
    {"\"x\"", INV},
    {"null", INV},
    {"{", INV},
    {"{}x", INV},
    {"{}{}", INV},
    {"{\"a\":1,}", INV},
    {"{'a':1}", INV},
    {"{a:1}", INV},
    {"{\"a\" 1}", INV},
    {"{\"a\":1 \"b\":2}", INV},
    {"{\x01\"a\":1}", INV},
    {"{\"a\":1}\x0b", INV},
    {"\xEF\xBB{}", INV},
    /* Numbers outside JSON. */
    {"{\"a\":NaN}", INV},
    {"{\"a\":Infinity}", INV},
    {"{\"a\":-Infinity}", INV},
    {"{\"a\":01}", INV},
    {"{\"a\":1.}", INV},
    {"{\"a\":.5}", INV},
    {"{\"a\":-}", INV},
    {"{\"a\":+1}", INV},
    {"{\"a\":0x10}", INV},
    {"{\"a\":1e}", INV},
    {"{\"a\":1e+}", INV},
    {"{\"a\":--1}", INV},
    {"{\"a\":1.5.5}", INV},
    {"{\"a\":1e400}", INV},
    {"{\"a\":-1e400}", INV},
    {"{\"a\":tru}", INV},
    {"{\"a\":undefined}", INV},
    /* Nested values. */
    {"{\"a\":{}}", INV},
    {"{\"a\":[]}", INV},
    {"{\"a\":[1,2]}", INV},
    {"{\"odata.x\":{\"y\":1}}", INV},
    {"{\"Timestamp\":[]}", INV},
    /* Strings JSON or C cannot carry. */
    {"{\"a\":\"x\ty\"}", INV},
    {"{\"a\":\"\x01\"}", INV},
    {"{\"a\":\"\xff\"}", INV},
    {"{\"a\":\"\xc0\xaf\"}", INV},
    {"{\"a\":\"\xed\xa0\x80\"}", INV},
    {"{\"a\":\"\xe2\x82\"}", INV},
    {"{\"a\":\"\xf4\x90\x80\x80\"}", INV},
    {"{\"a\":\"\xf8\x88\x80\x80\x80\"}", INV},
    {"{\"a\":\"\\u0000\"}", INV},
    {"{\"a\\u0000\":1}", INV},
    {"{\"a\":\"\\ud800\"}", INV},
    {"{\"a\":\"\\udc00\"}", INV},
    {"{\"a\":\"\\ud800x\"}", INV},
    {"{\"a\":\"\\x\"}", INV},
    {"{\"a\":\"\\u12\"}", INV},
    {"{\"a\":\"abc}", INV},
    {"{\"\xff\":1}", INV},
    /* Keys. */
    {"{\"PartitionKey\":1}", INV},
    {"{\"RowKey\":true}", INV},
    {"{\"PartitionKey\":1.5}", INV},
    {"{\"PartitionKey@odata.type\":\"Edm.Int32\",\"PartitionKey\":\"1\"}", INV},
    {"{\"RowKey@odata.type\":\"Edm.Guid\",\"RowKey\":\"00112233-4455-6677-8899-aabbccddeeff\"}",
     INV},
    /* Duplicates. */
    {"{\"a\":1,\"a\":2}", DUP},
    {"{\"a\":1,\"a\":null}", DUP},
    {"{\"PartitionKey\":\"p\",\"PartitionKey\":\"p\"}", DUP},
    {"{\"RowKey\":\"r\",\"RowKey\":\"s\"}", DUP},
    {"{\"a@odata.type\":\"Edm.Int64\",\"a@odata.type\":\"Edm.Int64\",\"a\":\"1\"}", DUP},
    /* Property names. */
    {"{\"1a\":1}", NAME},
    {"{\"a-b\":1}", NAME},
    {"{\"a b\":1}", NAME},
    {"{\"\":1}", NAME},
    {"{\"a.b\":1}", NAME},
    {"{\"a$\":1}", NAME},
    {"{\"Name\\n\":1}", NAME},
    {"{\"odata\":1,\"x/y\":1}", NAME},
    /* Annotations. */
    {"{\"a@odata.type\":\"Edm.Decimal\",\"a\":\"1\"}", INV},
    {"{\"a@odata.type\":\"Edm.DateTimeOffset\",\"a\":\"2020-01-01T00:00:00Z\"}", INV},
    {"{\"a@odata.type\":\"edm.int64\",\"a\":\"1\"}", INV},
    {"{\"a@odata.type\":5,\"a\":\"1\"}", INV},
    {"{\"a@odata.type\":null,\"a\":\"1\"}", INV},
    {"{\"a@odata.type\":\"Edm.Int64\"}", INV},
    {"{\"a@odata.type\":\"Edm.Int64\",\"b\":\"1\"}", INV},
    {"{\"Timestamp@odata.type\":\"Edm.Bogus\"}", INV},
    /* Values that do not fit their type. */
    {"{\"a@odata.type\":\"Edm.Int32\",\"a\":\"abc\"}", INV},
    {"{\"a@odata.type\":\"Edm.Int32\",\"a\":1.5}", INV},
    {"{\"a@odata.type\":\"Edm.Int32\",\"a\":1.0}", INV},
    {"{\"a@odata.type\":\"Edm.Int32\",\"a\":1e2}", INV},
    {"{\"a@odata.type\":\"Edm.Int32\",\"a\":2147483648}", INV},
    {"{\"a@odata.type\":\"Edm.Int32\",\"a\":\"-2147483649\"}", INV},
    {"{\"a@odata.type\":\"Edm.Int32\",\"a\":\"\"}", INV},
    {"{\"a@odata.type\":\"Edm.Int32\",\"a\":\" 1\"}", INV},
    {"{\"a@odata.type\":\"Edm.Int32\",\"a\":true}", INV},
    {"{\"a@odata.type\":\"Edm.Int64\",\"a\":\"12a\"}", INV},
    {"{\"a@odata.type\":\"Edm.Int64\",\"a\":\"\"}", INV},
    {"{\"a@odata.type\":\"Edm.Int64\",\"a\":\"-\"}", INV},
    {"{\"a@odata.type\":\"Edm.Int64\",\"a\":\"9223372036854775808\"}", INV},
    {"{\"a@odata.type\":\"Edm.Int64\",\"a\":\"-9223372036854775809\"}", INV},
    {"{\"a@odata.type\":\"Edm.Int64\",\"a\":\"1e3\"}", INV},
    {"{\"a@odata.type\":\"Edm.Int64\",\"a\":1.0}", INV},
    {"{\"a@odata.type\":\"Edm.Int64\",\"a\":9223372036854775808}", INV},
    {"{\"a@odata.type\":\"Edm.Double\",\"a\":\"abc\"}", INV},
    {"{\"a@odata.type\":\"Edm.Double\",\"a\":\"1e400\"}", INV},
    {"{\"a@odata.type\":\"Edm.Double\",\"a\":\"1.797693134862316e308\"}", INV},
    {"{\"a@odata.type\":\"Edm.Double\",\"a\":\"nan\"}", INV},
    {"{\"a@odata.type\":\"Edm.Double\",\"a\":\" 1\"}", INV},
    {"{\"a@odata.type\":\"Edm.Double\",\"a\":\"0x10\"}", INV},
    {"{\"a@odata.type\":\"Edm.Double\",\"a\":true}", INV},
    {"{\"a@odata.type\":\"Edm.Boolean\",\"a\":\"yes\"}", INV},
    {"{\"a@odata.type\":\"Edm.Boolean\",\"a\":1}", INV},
    {"{\"a@odata.type\":\"Edm.Boolean\",\"a\":\"True\"}", INV},
    {"{\"a@odata.type\":\"Edm.DateTime\",\"a\":\"garbage\"}", INV},
    {"{\"a@odata.type\":\"Edm.DateTime\",\"a\":\"2020-01-01\"}", INV},
    {"{\"a@odata.type\":\"Edm.DateTime\",\"a\":\"\"}", INV},
    {"{\"a@odata.type\":\"Edm.DateTime\",\"a\":\"2020-01-01T00:00:00.12345678Z\"}", INV},
    {"{\"a@odata.type\":\"Edm.DateTime\",\"a\":637134336000000000}", INV},
    {"{\"a@odata.type\":\"Edm.Guid\",\"a\":\"xyz\"}", INV},
    {"{\"a@odata.type\":\"Edm.Guid\",\"a\":\"00112233-4455-6677-8899-aabbccddeefg\"}", INV},
    {"{\"a@odata.type\":\"Edm.Guid\",\"a\":\"0011223-34455-6677-8899-aabbccddeeff\"}", INV},
    {"{\"a@odata.type\":\"Edm.Guid\",\"a\":\"{00112233-4455-6677-8899-aabbccddeeff)\"}", INV},
    {"{\"a@odata.type\":\"Edm.Guid\",\"a\":\"{00112233445566778899aabbccddeeff}\"}", INV},
    {"{\"a@odata.type\":\"Edm.Guid\",\"a\":\"\"}", INV},
    {"{\"a@odata.type\":\"Edm.Guid\",\"a\":1}", INV},
    {"{\"a@odata.type\":\"Edm.Binary\",\"a\":\"Zg=\"}", INV},
    {"{\"a@odata.type\":\"Edm.Binary\",\"a\":\"Zg\"}", INV},
    {"{\"a@odata.type\":\"Edm.Binary\",\"a\":\"!!!!\"}", INV},
    {"{\"a@odata.type\":\"Edm.Binary\",\"a\":\"Zm9v YmFy\"}", INV},
    {"{\"a@odata.type\":\"Edm.Binary\",\"a\":12}", INV},
    {"{\"a@odata.type\":\"Edm.String\",\"a\":5}", INV},
    {"{\"a@odata.type\":\"Edm.String\",\"a\":true}", INV},
};

static void test_read_rejects(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
        read_fails(bad_cases[i].body, strlen(bad_cases[i].body), bad_cases[i].code);
    read_fails(NULL, 0, INV);
    read_fails("{\"a\":1}", 0, INV);
    read_fails("{\"a\":1\0}", 8, INV); /* a NUL inside the length */
    read_fails("{\"a\":1}\0", 8, INV);
    read_fails("{\"a\":\"x\0y\"}", 11, INV);
}

/* Builds {"PartitionKey":"p","RowKey":"r", n properties "Pi": value}. */
static char *body_with_props(size_t n, const char *value)
{
    size_t vlen = strlen(value), cap = 64 + n * (vlen + 24);
    char *b = malloc(cap), *p = b;
    if (!b)
        return NULL;
    p += sprintf(p, "{\"PartitionKey\":\"p\",\"RowKey\":\"r\"");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, ",\"P%zu\":%s", i, value);
    strcpy(p, "}");
    return b;
}

/* A JSON string of n copies of unit. */
static char *json_repeat(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *s = malloc(n * u + 3), *p = s;
    *p++ = '"';
    for (size_t i = 0; i < n; i++, p += u)
        memcpy(p, unit, u);
    strcpy(p, "\"");
    return s;
}

static void test_read_limits(void **state)
{
    (void)state;
    /* 252 user properties are fine, 253 are too many. */
    char *b = body_with_props(252, "1");
    mt_entity_free(read_ok(b));
    free(b);
    b = body_with_props(253, "1");
    read_fails(b, strlen(b), MT_ERR_TOO_MANY_PROPS);
    free(b);
    /* So is a body of more than a thousand members of any kind. */
    b = body_with_props(1100, "null");
    read_fails(b, strlen(b), MT_ERR_TOO_MANY_PROPS);
    free(b);

    /* Strings: 32 Ki UTF-16 units; a non-BMP character counts two. */
    char *v = json_repeat("a", 32768);
    b = body_with_props(1, v);
    mt_entity *e = read_ok(b);
    assert_int_equal(mt_entity_get(e, "P0")->u.bytes.len, 32768);
    mt_entity_free(e);
    free(b);
    free(v);
    v = json_repeat("a", 32769);
    b = body_with_props(1, v);
    read_fails(b, strlen(b), MT_ERR_PROPERTY_TOO_LARGE);
    free(b);
    free(v);
    v = json_repeat("\xF0\x9F\x98\x80", 16385);
    b = body_with_props(1, v);
    read_fails(b, strlen(b), MT_ERR_PROPERTY_TOO_LARGE);
    free(b);
    free(v);

    /* Binary: 64 KiB. */
    uint8_t *raw = calloc(65537, 1);
    for (size_t n = 65536; n <= 65537; n++) {
        char *enc = az_base64_encode(raw, n);
        size_t blen = strlen(enc) + 128;
        b = malloc(blen);
        snprintf(b, blen, "{\"B@odata.type\":\"Edm.Binary\",\"B\":\"%s\"}", enc);
        if (n == 65536) {
            e = read_ok(b);
            assert_int_equal(mt_entity_get(e, "B")->u.bytes.len, 65536);
            mt_entity_free(e);
        } else {
            read_fails(b, strlen(b), MT_ERR_PROPERTY_TOO_LARGE);
        }
        free(b);
        free(enc);
    }
    free(raw);

    /* The entity: 1 MiB as the service counts (strings as UTF-16). */
    v = json_repeat("a", 32000);
    b = body_with_props(16, v);
    mt_entity_free(read_ok(b));
    free(b);
    b = body_with_props(17, v);
    read_fails(b, strlen(b), MT_ERR_ENTITY_TOO_LARGE);
    free(b);
    free(v);

    /* Property names: 255 UTF-16 units. */
    char name[300];
    char body[400];
    memset(name, 'n', 255);
    name[255] = '\0';
    snprintf(body, sizeof body, "{\"%s\":1}", name);
    mt_entity_free(read_ok(body));
    snprintf(body, sizeof body, "{\"%sn\":1}", name);
    read_fails(body, strlen(body), "PropertyNameTooLong");
    /* Non-ASCII letters and underscores are name characters. */
    mt_entity_free(read_ok("{\"_x\":1,\"\xC3\xA9t\xC3\xA9\":2,\"a_1\":3,\"_mtable_x\":4}"));
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                               */

/* What nometadata leaves of a value: the types JSON cannot say become
 * their text. */
static void project_nometadata(mt_entity *e)
{
    for (size_t i = 0; i < e->nprops; i++) {
        mt_value *v = &e->props[i].value, s;
        char tmp[64], *text = tmp;
        char *heap = NULL;
        switch (v->type) {
        case MT_EDM_INT64:
            snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i64);
            break;
        case MT_EDM_DATETIME:
            mt_datetime_format(v->u.ticks, tmp);
            break;
        case MT_EDM_GUID:
            for (int k = 0, o = 0; k < 16; k++)
                o += sprintf(tmp + o, "%s%02x", k == 4 || k == 6 || k == 8 || k == 10 ? "-" : "",
                             v->u.guid[k]);
            break;
        case MT_EDM_BINARY:
            text = heap = az_base64_encode((const uint8_t *)v->u.bytes.ptr, v->u.bytes.len);
            break;
        case MT_EDM_DOUBLE:
            if (isfinite(v->u.dbl))
                continue;
            snprintf(tmp, sizeof tmp, "%s",
                     isnan(v->u.dbl) ? "NaN"
                     : v->u.dbl > 0  ? "Infinity"
                                     : "-Infinity");
            break;
        default:
            continue;
        }
        s = mt_v_str(text);
        mt_value_clear(v);
        mt_value_copy(v, &s);
        free(heap);
    }
}

static void round_trip(const mt_entity *e)
{
    for (int md = AZ_META_NONE; md <= AZ_META_FULL; md++) {
        char *body = write_one((az_metadata)md, e);
        mt_entity *back = read_ok(body);
        mt_entity *want = mt_entity_clone(e);
        if (md == AZ_META_NONE)
            project_nometadata(want);
        if (!mt_entity_same_content(back, want))
            fail_msg("round trip at level %d changed the entity: %.300s", md, body);
        mt_entity_free(want);
        mt_entity_free(back);
        free(body);
    }
}

static void test_round_trip_edges(void **state)
{
    (void)state;
    mt_entity *e = sample_entity();
    round_trip(e);
    mt_entity_free(e);

    static const double dbls[] = {0.0,
                                  -0.0,
                                  1.0,
                                  -1.0,
                                  0.1,
                                  1e21,
                                  1e-7,
                                  DBL_MAX,
                                  -DBL_MAX,
                                  DBL_MIN,
                                  5e-324,
                                  2147483648.0,
                                  4294967296.0,
                                  9007199254740993.0,
                                  123456789012345678.0,
                                  NAN,
                                  INFINITY,
                                  -INFINITY};
    static const int64_t i64s[] = {INT64_MIN, INT64_MIN + 1,          -1,       0,
                                   1,         INT32_MAX + INT64_C(1), INT64_MAX};
    static const int32_t i32s[] = {INT32_MIN, -1, 0, 1, INT32_MAX};
    static const int64_t ticks[] = {0, 1, INT64_C(637134336001234567),
                                    INT64_C(3155378975999999999)};
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    uint8_t g0[16] = {0}, g1[16];
    memset(g1, 0xff, 16);

    e = mt_entity_new("\xF0\x9F\x98\x80 pk", "");
    mt_value v;
    char name[32];
    for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++) {
        snprintf(name, sizeof name, "D%zu", i);
        mt_entity_set(e, name, (v = mt_v_dbl(dbls[i]), &v));
    }
    for (size_t i = 0; i < sizeof i64s / sizeof i64s[0]; i++) {
        snprintf(name, sizeof name, "L%zu", i);
        mt_entity_set(e, name, (v = mt_v_i64(i64s[i]), &v));
    }
    for (size_t i = 0; i < sizeof i32s / sizeof i32s[0]; i++) {
        snprintf(name, sizeof name, "I%zu", i);
        mt_entity_set(e, name, (v = mt_v_i32(i32s[i]), &v));
    }
    for (size_t i = 0; i < sizeof ticks / sizeof ticks[0]; i++) {
        snprintf(name, sizeof name, "T%zu", i);
        mt_entity_set(e, name, (v = mt_v_datetime(ticks[i]), &v));
    }
    mt_entity_set(e, "S0", (v = mt_v_str(""), &v));
    mt_entity_set(e, "S1", (v = mt_v_str("\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF\xEF\xBF\xBF"), &v));
    mt_entity_set(e, "S2", (v = mt_v_str("\"\\/\b\f\n\r\t\x01\x1f\x7f"), &v));
    mt_entity_set(e, "S3", (v = mt_v_str("12"), &v));
    mt_entity_set(e, "S4", (v = mt_v_str("NaN"), &v));
    mt_entity_set(e, "B0", (v = mt_v_binary("", 0), &v));
    mt_entity_set(e, "B1", (v = mt_v_binary(all, 256), &v));
    mt_entity_set(e, "G0", (v = mt_v_guid(g0), &v));
    mt_entity_set(e, "G1", (v = mt_v_guid(g1), &v));
    mt_entity_set(e, "Y", (v = mt_v_bool(true), &v));
    mt_entity_set(e, "N", (v = mt_v_bool(false), &v));
    round_trip(e);
    mt_entity_free(e);

    /* The largest string. */
    char *big = malloc(32769);
    memset(big, 'z', 32768);
    big[32768] = '\0';
    e = mt_entity_new("p", "r");
    mt_entity_set(e, "Big", (v = mt_v_str(big), &v));
    round_trip(e);
    mt_entity_free(e);
    free(big);
}

/* Random entities of every type, as a small deterministic fuzz. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static mt_value random_value(char *buf)
{
    union {
        uint64_t u;
        double d;
    } bits = {.u = rnd()};
    uint8_t g[16];
    switch (rnd() % 8) {
    case 0:
        for (int i = 0; i < 12; i++)
            buf[i] = (char)(0x20 + rnd() % 95);
        buf[12] = '\0';
        return mt_v_str(buf);
    case 1:
        return mt_v_i32((int32_t)rnd());
    case 2:
        return mt_v_i64((int64_t)rnd());
    case 3:
        if (isnan(bits.d))
            bits.d = NAN; /* the one NaN the wire carries */
        return mt_v_dbl(bits.d);
    case 4:
        return mt_v_bool(rnd() & 1);
    case 5:
        return mt_v_datetime((int64_t)(rnd() % INT64_C(3155378976000000000)));
    case 6:
        for (int i = 0; i < 16; i++)
            g[i] = (uint8_t)rnd();
        return mt_v_guid(g);
    default:
        for (int i = 0; i < 20; i++)
            buf[i] = (char)rnd();
        return mt_v_binary(buf, rnd() % 21);
    }
}

static void test_round_trip_random(void **state)
{
    (void)state;
    for (int n = 0; n < 300; n++) {
        mt_entity *e = mt_entity_new("p", "r");
        size_t k = rnd() % 20;
        for (size_t i = 0; i < k; i++) {
            char name[16], buf[32];
            snprintf(name, sizeof name, "P%zu", i);
            mt_value v = random_value(buf);
            mt_entity_set(e, name, &v);
        }
        round_trip(e);
        mt_entity_free(e);
    }
}

/* Strings of every length around the writer's one-put limit, with every
 * kind of byte (escaped, control, UTF-8, plain) anywhere in them, as keys,
 * property names and values: the body is what cJSON prints for the same
 * members, byte for byte. */
static void random_text(char *buf, size_t n)
{
    static const char pick[] = "aZ09 \"\\/\b\f\n\r\t\x01\x1f\x7f\xC3\xA9{}:,";
    for (size_t i = 0; i < n; i++)
        buf[i] = rnd() % 3 ? (char)('a' + rnd() % 26) : pick[rnd() % (sizeof pick - 1)];
    buf[n] = '\0';
}

static void test_write_matches_cjson(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 2, 100, 250, 251, 252, 253, 254, 255, 256, 600};
    const size_t nl = sizeof lens / sizeof *lens;
    for (int n = 0; n < 400; n++) {
        char pk[700], rk[700], name[700], val[700];
        random_text(pk, lens[rnd() % nl]);
        random_text(rk, lens[rnd() % nl]);
        mt_entity *e = mt_entity_new(pk, rk);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "PartitionKey", pk);
        cJSON_AddStringToObject(o, "RowKey", rk);
        size_t k = rnd() % 4;
        for (size_t i = 0; i < k; i++) {
            size_t len = lens[rnd() % nl];
            random_text(name, len < 2 ? 2 : len);
            name[0] = 'N'; /* names are distinct and never empty */
            name[1] = (char)('0' + i);
            random_text(val, lens[rnd() % nl]);
            mt_value v = mt_v_str(val);
            mt_entity_set(e, name, &v);
            cJSON_AddStringToObject(o, name, val);
        }
        char *want = cJSON_PrintUnformatted(o);
        expect_body(write_one(AZ_META_NONE, e), want);
        free(want);
        cJSON_Delete(o);
        mt_entity_free(e);
    }
}

/* A frozen row (an embedded table's, lent to readers) is written from the
 * text it keeps per form: the bytes are those of the same row written in
 * full, at every metadata level, alone and in a list, the first time (when
 * the text is made) and after (when it is reused), and a change to the row
 * drops the kept text. */
static void expect_frozen_same(const mt_entity *plain, const mt_entity *frozen)
{
    static const az_metadata mds[] = {AZ_META_NONE, AZ_META_MINIMAL, AZ_META_FULL};
    for (size_t i = 0; i < 3; i++) {
        for (int pass = 0; pass < 2; pass++) {
            char *want = write_one(mds[i], plain);
            expect_body(write_one(mds[i], frozen), want);
            free(want);
            mt_entity_list lp = {0}, lf = {0};
            mt_entity_list_push(&lp, mt_entity_clone(plain));
            mt_entity_list_push(&lp, mt_entity_clone(plain));
            mt_entity_list_push(&lf, mt_entity_ref(frozen));
            mt_entity_list_push(&lf, mt_entity_ref(frozen));
            want = write_list(mds[i], &lp);
            expect_body(write_list(mds[i], &lf), want);
            free(want);
            mt_entity_list_clear(&lp);
            mt_entity_list_clear(&lf); /* lets go of both references */
        }
    }
}

static void test_write_frozen_rows(void **state)
{
    (void)state;
    for (int n = 0; n < 200; n++) {
        char pk[64], rk[64];
        random_text(pk, rnd() % 40);
        random_text(rk, rnd() % 40);
        mt_entity *e = mt_entity_new(pk, rk);
        e->timestamp = n % 3 ? (int64_t)(rnd() % INT64_C(3155378976000000000)) : 0;
        if (n % 4)
            mt_entity_set_etag(e, "W/\"datetime'2024-01-02T03%3A04%3A05.1234567Z'\"");
        size_t k = rnd() % 12;
        for (size_t i = 0; i < k; i++) {
            char name[16], buf[32];
            snprintf(name, sizeof name, "P%zu", i);
            mt_value v = random_value(buf);
            mt_entity_set(e, name, &v);
        }
        mt_entity *f = mt_entity_clone(e);
        mt_entity_freeze(f);
        expect_frozen_same(e, f);
        assert_non_null(mt_entity_memo(f));
        mt_value v = mt_v_str("changed");
        mt_entity_set(e, "P0", &v);
        mt_entity_set(f, "P0", &v); /* unshared: a change thaws it */
        assert_null(mt_entity_memo(f));
        assert_false(f->frozen);
        mt_entity_freeze(f);
        expect_frozen_same(e, f);
        mt_entity_free(f);
        mt_entity_free(e);
    }
}

/* ------------------------------------------------------------------------ */
/* Tables                                                                    */

static void test_table_read(void **state)
{
    (void)state;
    char *name = NULL;
    const char *ok = "{\"odata.metadata\":\"x\",\"TableName\":\"mytable\"}";
    mt_status st = az_table_read(AZ_FMT_JSON, ok, strlen(ok), &name);
    assert_true(mt_is_ok(&st));
    assert_string_equal(name, "mytable");
    free(name);
    static const char *const bad[] = {
        "",
        "{}",
        "[]",
        "{\"TableName\":5}",
        "{\"TableName\":null}",
        "{\"tablename\":\"x\"}",
        "{\"TableName\":\"x\"",
        "{\"TableName\":\"\\u0000\"}",
        "{\"TableName\":\"\xff\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        name = (char *)"untouched";
        st = az_table_read(AZ_FMT_JSON, bad[i], strlen(bad[i]), &name);
        if (mt_is_ok(&st))
            fail_msg("[%s] accepted", bad[i]);
        assert_int_equal(st.http, 400);
        assert_string_equal(st.code, MT_ERR_INVALID_INPUT);
        assert_null(name);
    }
}

/* ------------------------------------------------------------------------ */
/* Dispatch to Atom                                                          */

/* The payload calls hand AZ_FMT_ATOM to az_atom.c; an entity read from
 * JSON survives being written and read as Atom. */
static void test_atom_dispatch(void **state)
{
    (void)state;
    size_t len = 0;
    char *err = az_error_write(AZ_FMT_ATOM, "InvalidInput", "bad", &len);
    assert_non_null(err);
    assert_int_equal(len, strlen(err));
    assert_non_null(strstr(err, "InvalidInput"));
    assert_null(strstr(err, "odata.error"));
    free(err);

    mt_entity *e = sample_entity(), *back = NULL;
    az_payload_ctx c = ctx(AZ_META_MINIMAL);
    char *xml = az_entity_write(AZ_FMT_ATOM, &c, e, &len);
    assert_non_null(xml);
    assert_int_equal(xml[0], '<');
    mt_status st = az_entity_read(AZ_FMT_ATOM, xml, len, &back);
    if (!mt_is_ok(&st))
        fail_msg("atom read back failed: %s %s", st.code, st.message);
    assert_true(mt_entity_same_content(back, e));
    mt_entity_free(back);
    free(xml);
    mt_entity_free(e);

    /* A JSON body is not an Atom entry. */
    const char *json = "{\"PartitionKey\":\"p\",\"RowKey\":\"r\"}";
    back = (mt_entity *)&back;
    st = az_entity_read(AZ_FMT_ATOM, json, strlen(json), &back);
    assert_int_equal(st.http, 400);
    assert_null(back);
    char *name = (char *)"x";
    st = az_table_read(AZ_FMT_ATOM, json, strlen(json), &name);
    assert_int_equal(st.http, 400);
    assert_null(name);
}

/* The one rule for "@odata.type" annotations, as the service's payload
 * format lists them: written in minimal metadata exactly where it says, and
 * in request bodies also on every Double (Azurite reads 5.0 as 5). */
static void test_annotation_rule(void **state)
{
    (void)state;
    uint8_t g[16] = {1, 2, 3};
    mt_value yes[] = {mt_v_i64(5),   mt_v_datetime(0),   mt_v_guid(g),       mt_v_binary("x", 1),
                      mt_v_dbl(NAN), mt_v_dbl(INFINITY), mt_v_dbl(-INFINITY)};
    mt_value no[] = {mt_v_str("s"), mt_v_i32(5), mt_v_bool(true), mt_v_dbl(5.0), mt_v_dbl(0.5)};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        assert_true(az_json_needs_annotation(&yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_false(az_json_needs_annotation(&no[i]));

    mt_entity *e = mt_entity_new("p", "r");
    mt_entity_set(e, "d", &no[3]);
    mt_entity_set(e, "n", &no[1]);
    mt_entity_set(e, "l", &yes[0]);
    size_t len;
    az_payload_ctx c = ctx(AZ_META_MINIMAL);
    char *out = az_entity_write(AZ_FMT_JSON, &c, e, &len);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"d\":5.0"));
    assert_null(strstr(out, "d@odata.type"));
    assert_null(strstr(out, "n@odata.type"));
    assert_non_null(strstr(out, "\"l@odata.type\":\"Edm.Int64\""));
    free(out);
    out = az_entity_request_body(e, &len);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"d@odata.type\":\"Edm.Double\""));
    assert_null(strstr(out, "n@odata.type"));
    assert_non_null(strstr(out, "\"l@odata.type\":\"Edm.Int64\""));
    assert_int_equal(len, strlen(out));
    free(out);
    mt_entity_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiate),           cmocka_unit_test(test_write_entity_levels),
        cmocka_unit_test(test_write_entity_lists),  cmocka_unit_test(test_write_select),
        cmocka_unit_test(test_write_key_paths),     cmocka_unit_test(test_write_doubles),
        cmocka_unit_test(test_write_strings),       cmocka_unit_test(test_write_tables),
        cmocka_unit_test(test_write_error),         cmocka_unit_test(test_read_annotated),
        cmocka_unit_test(test_read_inferred),       cmocka_unit_test(test_read_lenient),
        cmocka_unit_test(test_read_layout),         cmocka_unit_test(test_read_rejects),
        cmocka_unit_test(test_read_limits),         cmocka_unit_test(test_round_trip_edges),
        cmocka_unit_test(test_round_trip_random),   cmocka_unit_test(test_table_read),
        cmocka_unit_test(test_atom_dispatch),       cmocka_unit_test(test_annotation_rule),
        cmocka_unit_test(test_write_matches_cjson), cmocka_unit_test(test_write_frozen_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

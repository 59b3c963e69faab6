/*
 * test_az_atom.c -- Atom entities and tables, the XML error document, the
 * Table ACL and service properties bodies.
 *
 * Outputs are checked against golden documents (with the clock-dependent
 * <updated> of feeds masked), values by writing and reading back every
 * EDM type at its edges, and the readers by what they must refuse: bad
 * lexical forms, bad structure, and hostile XML (entity expansion,
 * external entities, deep nesting, oversized bodies), which must be
 * refused quickly and without reading anything outside the body.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libxml/parser.h>

#include "az.h"
#include "az_internal.h"

#define NS_DECLS                                                                                   \
    "xmlns=\"http://www.w3.org/2005/Atom\" "                                                       \
    "xmlns:d=\"http://schemas.microsoft.com/ado/2007/08/dataservices\" "                           \
    "xmlns:m=\"http://schemas.microsoft.com/ado/2007/08/dataservices/metadata\""

static const az_payload_ctx ctx = {
    .md = AZ_META_FULL,
    .base_url = "http://127.0.0.1:10002/devstoreaccount1",
    .account = "devstoreaccount1",
    .table = "mytable",
};

/* ------------------------------------------------------------------------ */
/* Helpers.                                                                  */

/* An entry as a client sends it, around a fragment of properties. */
static char *entry_with(const char *props)
{
    static const char head[] = "<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>"
                               "<entry " NS_DECLS "><title/><updated>2024-01-01T00:00:00Z"
                               "</updated><author><name/></author><id/>"
                               "<content type=\"application/xml\"><m:properties>";
    static const char tail[] = "</m:properties></content></entry>";
    size_t n = strlen(head) + strlen(props) + strlen(tail) + 1;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "%s%s%s", head, props, tail);
    return s;
}

static mt_entity *read_ok(const char *props)
{
    char *body = entry_with(props);
    mt_entity *e = NULL;
    mt_status st = az_atom_entity_read(body, strlen(body), &e);
    free(body);
    if (!mt_is_ok(&st))
        fail_msg("read failed: %d %s %s", st.http, st.code, st.message);
    assert_non_null(e);
    return e;
}

static void read_fails_raw(const char *body, int http, const char *code)
{
    mt_entity *e = (mt_entity *)1;
    mt_status st = az_atom_entity_read(body, strlen(body), &e);
    if (st.http != http || strcmp(st.code, code) != 0)
        fail_msg("expected %d %s, got %d %s (%s) for %.200s", http, code, st.http, st.code,
                 st.message, body);
    assert_null(e);
}

static void read_fails(const char *props, const char *code)
{
    char *body = entry_with(props);
    read_fails_raw(body, 400, code);
    free(body);
}

/* Replaces the text of the first <updated> after `after` with a fixed
 * value, so feeds compare against golden text. */
static void mask_updated(char *doc, const char *after)
{
    char *p = strstr(doc, after);
    assert_non_null(p);
    p = strstr(p, "<updated>");
    assert_non_null(p);
    p += strlen("<updated>");
    char *end = strstr(p, "</updated>");
    assert_non_null(end);
    assert_int_equal(end - p, 28);
    memcpy(p, "2000-01-01T00:00:00.0000000Z", 28);
}

static mt_entity *round_trip(const mt_entity *e)
{
    size_t len = 0;
    char *doc = az_atom_entity_write(&ctx, e, &len);
    assert_non_null(doc);
    assert_int_equal(len, strlen(doc));
    mt_entity *r = NULL;
    mt_status st = az_atom_entity_read(doc, len, &r);
    if (!mt_is_ok(&st))
        fail_msg("read back failed: %s %s\n%s", st.code, st.message, doc);
    free(doc);
    assert_true(mt_entity_same_content(e, r));
    return r;
}

static void check_value_round_trip(const mt_value *v)
{
    mt_entity *e = mt_entity_new("pk", "rk");
    mt_entity_set(e, "V", v);
    mt_entity *r = round_trip(e);
    const mt_value *got = mt_entity_get(r, "V");
    assert_non_null(got);
    assert_true(mt_value_equal(v, got));
    mt_entity_free(r);
    mt_entity_free(e);
}

/* ------------------------------------------------------------------------ */
/* Golden outputs.                                                           */

static mt_entity *golden_entity(void)
{
    static const uint8_t g[16] = {0xc9, 0xda, 0x64, 0x55, 0x21, 0x3d, 0x42, 0xc9,
                                  0x9a, 0x79, 0x3e, 0x91, 0x49, 0xa5, 0x78, 0x33};
    mt_entity *e = mt_entity_new("my pk", "it's");
    mt_value v;
    assert_true(mt_datetime_parse("2013-10-07T23:55:35.3567007Z", 28, &e->timestamp));
    mt_entity_set_etag(e, "W/\"datetime'2013-10-07T23%3A55%3A35.3567007Z'\"");
    v = mt_v_str("Mountain View & <co>");
    mt_entity_set(e, "Address", &v);
    v = mt_v_i32(23);
    mt_entity_set(e, "Age", &v);
    v = mt_v_dbl(200.23);
    mt_entity_set(e, "AmountDue", &v);
    v = mt_v_guid(g);
    mt_entity_set(e, "CustomerCode", &v);
    v = mt_v_datetime(e->timestamp);
    mt_entity_set(e, "CustomerSince", &v);
    v = mt_v_bool(true);
    mt_entity_set(e, "IsActive", &v);
    v = mt_v_i64(255);
    mt_entity_set(e, "NumOfOrders", &v);
    v = mt_v_binary("\x01\x02\x03", 3);
    mt_entity_set(e, "Bytes", &v);
    return e;
}

#define GOLDEN_ENTRY_BODY                                                                          \
    "<id>http://127.0.0.1:10002/devstoreaccount1/mytable(PartitionKey='my%20pk',"                  \
    "RowKey='it''s')</id>"                                                                         \
    "<category term=\"devstoreaccount1.mytable\" "                                                 \
    "scheme=\"http://schemas.microsoft.com/ado/2007/08/dataservices/scheme\"/>"                    \
    "<link rel=\"edit\" title=\"mytable\" "                                                        \
    "href=\"mytable(PartitionKey='my%20pk',RowKey='it''s')\"/>"                                    \
    "<title/><updated>2013-10-07T23:55:35.3567007Z</updated><author><name/></author>"              \
    "<content type=\"application/xml\"><m:properties>"                                             \
    "<d:PartitionKey>my pk</d:PartitionKey><d:RowKey>it's</d:RowKey>"                              \
    "<d:Timestamp m:type=\"Edm.DateTime\">2013-10-07T23:55:35.3567007Z</d:Timestamp>"              \
    "<d:Address>Mountain View &amp; &lt;co&gt;</d:Address>"                                        \
    "<d:Age m:type=\"Edm.Int32\">23</d:Age>"                                                       \
    "<d:AmountDue m:type=\"Edm.Double\">200.23</d:AmountDue>"                                      \
    "<d:CustomerCode m:type=\"Edm.Guid\">c9da6455-213d-42c9-9a79-3e9149a57833</d:CustomerCode>"    \
    "<d:CustomerSince m:type=\"Edm.DateTime\">2013-10-07T23:55:35.3567007Z</d:CustomerSince>"      \
    "<d:IsActive m:type=\"Edm.Boolean\">true</d:IsActive>"                                         \
    "<d:NumOfOrders m:type=\"Edm.Int64\">255</d:NumOfOrders>"                                      \
    "<d:Bytes m:type=\"Edm.Binary\">AQID</d:Bytes>"                                                \
    "</m:properties></content></entry>"

#define GOLDEN_ETAG "m:etag=\"W/&quot;datetime'2013-10-07T23%3A55%3A35.3567007Z'&quot;\""

static void test_golden_entity(void **state)
{
    (void)state;
    static const char want[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>"
        "<entry xml:base=\"http://127.0.0.1:10002/devstoreaccount1/\" " NS_DECLS " " GOLDEN_ETAG
        ">" GOLDEN_ENTRY_BODY "\n";
    mt_entity *e = golden_entity();
    size_t len = 0;
    char *doc = az_atom_entity_write(&ctx, e, &len);
    assert_non_null(doc);
    assert_string_equal(doc, want);
    assert_int_equal(len, strlen(want));
    free(doc);
    mt_entity_free(e);
}

static void test_golden_feed(void **state)
{
    (void)state;
    static const char want[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>"
        "<feed xml:base=\"http://127.0.0.1:10002/devstoreaccount1/\" " NS_DECLS ">"
        "<id>http://127.0.0.1:10002/devstoreaccount1/mytable</id>"
        "<title type=\"text\">mytable</title><updated>2000-01-01T00:00:00.0000000Z</updated>"
        "<link rel=\"self\" title=\"mytable\" href=\"mytable\"/>"
        "<entry " GOLDEN_ETAG ">" GOLDEN_ENTRY_BODY "</feed>\n";
    mt_entity_list rows = {0};
    mt_entity_list_push(&rows, golden_entity());
    size_t len = 0;
    char *doc = az_atom_entities_write(&ctx, &rows, &len);
    assert_non_null(doc);
    mask_updated(doc, "<feed");
    assert_string_equal(doc, want);
    free(doc);

    /* An empty page is a feed with no entries. */
    mt_entity_list_clear(&rows);
    doc = az_atom_entities_write(&ctx, &rows, &len);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "<link rel=\"self\" title=\"mytable\" href=\"mytable\"/></feed>"));
    free(doc);
}

static void test_golden_tables(void **state)
{
    (void)state;
#define TABLE_ENTRY(n)                                                                             \
    "<id>http://127.0.0.1:10002/devstoreaccount1/Tables('" n "')</id>"                             \
    "<category term=\"devstoreaccount1.Tables\" "                                                  \
    "scheme=\"http://schemas.microsoft.com/ado/2007/08/dataservices/scheme\"/>"                    \
    "<link rel=\"edit\" title=\"Tables\" href=\"Tables('" n "')\"/><title/>"                       \
    "<updated>2000-01-01T00:00:00.0000000Z</updated><author><name/></author>"                      \
    "<content type=\"application/xml\"><m:properties><d:TableName>" n                              \
    "</d:TableName></m:properties></content></entry>"
    static const char want_one[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>"
        "<entry xml:base=\"http://127.0.0.1:10002/devstoreaccount1/\" " NS_DECLS
        ">" TABLE_ENTRY("orders") "\n";
    static const char want_feed[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>"
        "<feed xml:base=\"http://127.0.0.1:10002/devstoreaccount1/\" " NS_DECLS ">"
        "<id>http://127.0.0.1:10002/devstoreaccount1/Tables</id>"
        "<title type=\"text\">Tables</title><updated>2000-01-01T00:00:00.0000000Z</updated>"
        "<link rel=\"self\" title=\"Tables\" href=\"Tables\"/>"
        "<entry>" TABLE_ENTRY("a1") "<entry>" TABLE_ENTRY("b2") "</feed>\n";
    char *names[] = {"a1", "b2"};
    size_t len;
    char *doc = az_atom_table_write(&ctx, "orders", &len);
    assert_non_null(doc);
    mask_updated(doc, "<entry");
    assert_string_equal(doc, want_one);
    free(doc);

    doc = az_atom_tables_write(&ctx, names, 2, &len);
    assert_non_null(doc);
    mask_updated(doc, "<feed");
    mask_updated(doc, "Tables('a1')");
    mask_updated(doc, "Tables('b2')");
    assert_string_equal(doc, want_feed);
    free(doc);
#undef TABLE_ENTRY
}

static void test_error_document(void **state)
{
    (void)state;
    size_t len = 0;
    char *doc = az_xml_error_write("ResourceNotFound",
                                   "The specified resource does not exist.\n"
                                   "RequestId:1 <&>",
                                   &len);
    assert_non_null(doc);
    assert_string_equal(doc, "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                             "<error xmlns=\"http://schemas.microsoft.com/ado/2007/08/dataservices/"
                             "metadata\"><code>ResourceNotFound</code><message xml:lang=\"en-US\">"
                             "The specified resource does not exist.\nRequestId:1 &lt;&amp;&gt;"
                             "</message></error>\n");
    assert_int_equal(len, strlen(doc));
    free(doc);

    doc = az_xml_error_write(NULL, NULL, NULL);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "<code></code><message xml:lang=\"en-US\"></message>"));
    free(doc);
}

/* $select: only the names asked for, and a missing one as m:null. */
static void test_select(void **state)
{
    (void)state;
    char *sel[] = {"Age", "Missing", "RowKey", "Age"};
    az_payload_ctx c = ctx;
    c.select = sel;
    c.nselect = 4;
    mt_entity *e = golden_entity();
    char *doc = az_atom_entity_write(&c, e, NULL);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "<m:properties><d:RowKey>it's</d:RowKey>"
                                "<d:Age m:type=\"Edm.Int32\">23</d:Age>"
                                "<d:Missing m:null=\"true\"/></m:properties>"));
    assert_null(strstr(doc, "PartitionKey>"));
    assert_null(strstr(doc, "Address"));
    free(doc);
    mt_entity_free(e);
}

/* Text XML 1.0 cannot hold is still written as well-formed as it can be:
 * CR survives as a reference; ill-formed UTF-8 becomes U+FFFD. */
static void test_string_escapes(void **state)
{
    (void)state;
    mt_entity *e = mt_entity_new("p", "r");
    mt_value v = mt_v_str("a\r\nb\x01\xff]]>");
    mt_entity_set(e, "S", &v);
    char *doc = az_atom_entity_write(&ctx, e, NULL);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "<d:S>a&#13;\nb&#x1;\xEF\xBF\xBD]]&gt;</d:S>"));
    free(doc);
    mt_entity_free(e);
}

/* ------------------------------------------------------------------------ */
/* Round trips of every EDM type.                                            */

static void test_round_trip_strings(void **state)
{
    (void)state;
    static const char *const strs[] = {
        "",
        " ",
        "  lead and trail  ",
        "tab\there\nnewline",
        "cr\r\ncrlf\r",
        "<![CDATA[x]]>",
        "&amp; &lt; \"quoted\" 'single'",
        "caf\xC3\xA9 \xE2\x82\xAC",
        "\xF0\x9F\x98\x80 outside the BMP",
        "\xEF\xBF\xBD",
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        mt_value v = mt_v_str(strs[i]);
        check_value_round_trip(&v);
    }
    /* A long one. */
    char *big = malloc(70000);
    assert_non_null(big);
    for (size_t i = 0; i < 69999; i++)
        big[i] = (char)('a' + i % 26);
    big[69999] = '\0';
    mt_value v = mt_v_str(big);
    check_value_round_trip(&v);
    free(big);
}

static void test_round_trip_numbers(void **state)
{
    (void)state;
    static const int32_t i32s[] = {0, 1, -1, INT32_MAX, INT32_MIN};
    static const int64_t i64s[] = {0, -1, INT64_MAX, INT64_MIN, (int64_t)1 << 53};
    const double dbls[] = {0.0,
                           -0.0,
                           0.1,
                           -1.5e-300,
                           1e300,
                           DBL_MAX,
                           -DBL_MAX,
                           DBL_MIN,
                           4.9e-324,
                           1.0 / 3,
                           123456789012345678.0,
                           NAN,
                           INFINITY,
                           -INFINITY};
    for (size_t i = 0; i < sizeof i32s / sizeof i32s[0]; i++) {
        mt_value v = mt_v_i32(i32s[i]);
        check_value_round_trip(&v);
    }
    for (size_t i = 0; i < sizeof i64s / sizeof i64s[0]; i++) {
        mt_value v = mt_v_i64(i64s[i]);
        check_value_round_trip(&v);
    }
    for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++) {
        mt_value v = mt_v_dbl(dbls[i]);
        check_value_round_trip(&v);
    }
}

static void test_round_trip_others(void **state)
{
    (void)state;
    static const int64_t ticks[] = {0, 1, 9999999, INT64_C(638000000000000000),
                                    INT64_C(3155378975999999999)};
    uint8_t zero[16] = {0}, ones[16], bytes[256];
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 256; i++)
        bytes[i] = (uint8_t)i;

    mt_value v = mt_v_bool(true);
    check_value_round_trip(&v);
    v = mt_v_bool(false);
    check_value_round_trip(&v);
    for (size_t i = 0; i < sizeof ticks / sizeof ticks[0]; i++) {
        v = mt_v_datetime(ticks[i]);
        check_value_round_trip(&v);
    }
    v = mt_v_guid(zero);
    check_value_round_trip(&v);
    v = mt_v_guid(ones);
    check_value_round_trip(&v);
    v = mt_v_binary(bytes, 0);
    check_value_round_trip(&v);
    for (size_t n = 1; n <= 4; n++) {
        v = mt_v_binary(bytes, n);
        check_value_round_trip(&v);
    }
    v = mt_v_binary(bytes, sizeof bytes);
    check_value_round_trip(&v);
}

/* Keys with quotes, blanks, non-ASCII and the empty string; a full
 * entity of many properties. */
static void test_round_trip_entity(void **state)
{
    (void)state;
    static const char *const keys[] = {
        "", "'", "a''b", "with space", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "%41+&="};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        mt_entity *e = mt_entity_new(keys[i], keys[(i + 1) % 7]);
        mt_entity *r = round_trip(e);
        assert_string_equal(r->pk, e->pk);
        assert_string_equal(r->rk, e->rk);
        mt_entity_free(r);
        mt_entity_free(e);
    }
    mt_entity *e = golden_entity();
    for (int i = 0; i < 200; i++) {
        char name[16];
        snprintf(name, sizeof name, "P%03d", i);
        mt_value v = mt_v_i64(i);
        mt_entity_set(e, name, &v);
    }
    mt_entity *r = round_trip(e);
    /* Timestamp and ETag are the server's: never read from a body. */
    assert_int_equal(r->timestamp, 0);
    assert_null(r->etag);
    mt_entity_free(r);
    mt_entity_free(e);
}

/* ------------------------------------------------------------------------ */
/* Reading what clients send.                                                */

static void test_read_client_forms(void **state)
{
    (void)state;
    mt_entity *e =
        read_ok("<d:PartitionKey>p</d:PartitionKey><d:RowKey>r</d:RowKey>"
                "<d:Timestamp m:type=\"Edm.DateTime\">0001-01-01T00:00:00</d:Timestamp>"
                "<d:S>plain</d:S><d:S2 m:type=\"Edm.String\"> kept </d:S2>"
                "<d:I m:type=\"Edm.Int32\"> +42\n</d:I><d:L m:type=\"Edm.Int64\">-9</d:L>"
                "<d:D m:type=\"Edm.Double\">1E+20</d:D><d:D2 m:type=\"Edm.Double\">.5</d:D2>"
                "<d:D3 m:type=\"Edm.Double\">-INF</d:D3><d:D4 m:type=\"Edm.Double\">NaN</d:D4>"
                "<d:B m:type=\"Edm.Boolean\">1</d:B><d:B2 m:type=\"Edm.Boolean\">false</d:B2>"
                "<d:T m:type=\"Edm.DateTime\">2008-07-10T00:00:00</d:T>"
                "<d:T2 m:type=\"Edm.DateTime\">2008-07-10T02:00:00.5+02:00</d:T2>"
                "<d:G m:type=\"Edm.Guid\">{C9DA6455-213D-42C9-9A79-3E9149A57833}</d:G>"
                "<d:G2 m:type=\"Edm.Guid\">c9da6455213d42c99a793e9149a57833</d:G2>"
                "<d:X m:type=\"Edm.Binary\">AQ\n ID</d:X>"
                "<d:N m:type=\"Edm.Int32\" m:null=\"true\"/>"
                "<d:C><![CDATA[<raw> & ]]>text</d:C><d:E/>");
    const mt_value *v;
    assert_string_equal(e->pk, "p");
    assert_string_equal(e->rk, "r");
    assert_int_equal(e->timestamp, 0);
    assert_null(mt_entity_get(e, "Timestamp"));
    assert_null(mt_entity_get(e, "N"));
    assert_string_equal(mt_entity_get(e, "S")->u.bytes.ptr, "plain");
    assert_string_equal(mt_entity_get(e, "S2")->u.bytes.ptr, " kept ");
    assert_int_equal(mt_entity_get(e, "I")->u.i32, 42);
    assert_int_equal(mt_entity_get(e, "L")->u.i64, -9);
    assert_true(mt_entity_get(e, "D")->u.dbl == 1e20);
    assert_true(mt_entity_get(e, "D2")->u.dbl == 0.5);
    assert_true(isinf(mt_entity_get(e, "D3")->u.dbl) && mt_entity_get(e, "D3")->u.dbl < 0);
    assert_true(isnan(mt_entity_get(e, "D4")->u.dbl));
    assert_true(mt_entity_get(e, "B")->u.b);
    assert_false(mt_entity_get(e, "B2")->u.b);
    assert_int_equal(mt_entity_get(e, "T")->u.ticks + 5000000, mt_entity_get(e, "T2")->u.ticks);
    assert_memory_equal(mt_entity_get(e, "G")->u.guid, mt_entity_get(e, "G2")->u.guid, 16);
    assert_int_equal(mt_entity_get(e, "G")->u.guid[0], 0xc9);
    v = mt_entity_get(e, "X");
    assert_int_equal(v->type, MT_EDM_BINARY);
    assert_int_equal(v->u.bytes.len, 3);
    assert_memory_equal(v->u.bytes.ptr, "\x01\x02\x03", 3);
    assert_string_equal(mt_entity_get(e, "C")->u.bytes.ptr, "<raw> & text");
    assert_int_equal(mt_entity_get(e, "E")->u.bytes.len, 0);
    assert_int_equal(e->nprops, 17);
    mt_entity_free(e);
}

static void test_read_shapes(void **state)
{
    (void)state;
    /* No keys in the body: they come from the URL. */
    mt_entity *e = read_ok("<d:A>1</d:A>");
    assert_string_equal(e->pk, "");
    assert_string_equal(e->rk, "");
    mt_entity_free(e);

    /* m:properties straight under the entry; no content at all. */
    static const char *const bodies[] = {
        "<entry " NS_DECLS "><m:properties><d:A>x</d:A></m:properties></entry>",
        "<entry " NS_DECLS "/>",
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><entry " NS_DECLS "><content "
        "type=\"application/xml\"><m:properties><d:A>\xe9</d:A></m:properties></content></entry>",
    };
    for (size_t i = 0; i < 3; i++) {
        mt_status st = az_atom_entity_read(bodies[i], strlen(bodies[i]), &e);
        assert_true(mt_is_ok(&st));
        assert_int_equal(e->nprops, i == 1 ? 0 : 1);
        if (i == 2)
            assert_string_equal(mt_entity_get(e, "A")->u.bytes.ptr, "\xC3\xA9");
        mt_entity_free(e);
    }
}

static void test_read_bad_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "<d:A m:type=\"Edm.Int32\">2147483648</d:A>",
        "<d:A m:type=\"Edm.Int32\">-2147483649</d:A>",
        "<d:A m:type=\"Edm.Int32\">1.5</d:A>",
        "<d:A m:type=\"Edm.Int32\"></d:A>",
        "<d:A m:type=\"Edm.Int32\">- 1</d:A>",
        "<d:A m:type=\"Edm.Int64\">9223372036854775808</d:A>",
        "<d:A m:type=\"Edm.Int64\">12L</d:A>",
        "<d:A m:type=\"Edm.Double\">0x1p3</d:A>",
        "<d:A m:type=\"Edm.Double\">inf</d:A>",
        "<d:A m:type=\"Edm.Double\">nan</d:A>",
        "<d:A m:type=\"Edm.Double\">1e999</d:A>",
        "<d:A m:type=\"Edm.Double\">1e</d:A>",
        "<d:A m:type=\"Edm.Double\">.</d:A>",
        "<d:A m:type=\"Edm.Boolean\">yes</d:A>",
        "<d:A m:type=\"Edm.Boolean\">True</d:A>",
        "<d:A m:type=\"Edm.DateTime\">2024-13-01T00:00:00Z</d:A>",
        "<d:A m:type=\"Edm.DateTime\">yesterday</d:A>",
        "<d:A m:type=\"Edm.Guid\">c9da6455-213d-42c9-9a79-3e9149a5783</d:A>",
        "<d:A m:type=\"Edm.Guid\">c9da6455-213d-42c9-9a79_3e9149a57833</d:A>",
        "<d:A m:type=\"Edm.Guid\">{c9da6455-213d-42c9-9a79-3e9149a57833)</d:A>",
        "<d:A m:type=\"Edm.Binary\">AQI</d:A>",
        "<d:A m:type=\"Edm.Binary\">A=QI</d:A>",
        "<d:A m:type=\"Edm.Decimal\">1</d:A>",
        "<d:A m:type=\"edm.int32\">1</d:A>",
        "<d:A m:null=\"maybe\">1</d:A>",
        "<d:A><d:B>nested</d:B></d:A>",
        "<d:PartitionKey m:type=\"Edm.Int32\">1</d:PartitionKey>",
        "<other xmlns=\"urn:x\">1</other>",
        "<m:A>1</m:A>",
        "<d:A:B>1</d:A:B>",
        "<x:A>1</x:A>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        read_fails(bad[i], MT_ERR_INVALID_INPUT);
}

static void test_read_duplicates_and_limits(void **state)
{
    (void)state;
    read_fails("<d:A>1</d:A><d:A>2</d:A>", "DuplicatePropertiesSpecified");
    read_fails("<d:A>1</d:A><d:A m:type=\"Edm.Int32\">2</d:A>", "DuplicatePropertiesSpecified");
    read_fails("<d:RowKey>1</d:RowKey><d:RowKey>2</d:RowKey>", "DuplicateKeyPropertySpecified");

    /* 252 user properties are fine; the 253rd is one too many. */
    char *props = malloc(253 * 32);
    assert_non_null(props);
    props[0] = '\0';
    size_t n = 0;
    for (int i = 0; i < 252; i++)
        n += (size_t)sprintf(props + n, "<d:P%d>x</d:P%d>", i, i);
    mt_entity *e = read_ok(props);
    assert_int_equal(e->nprops, 252);
    mt_entity_free(e);
    sprintf(props + n, "<d:Q>x</d:Q>");
    read_fails(props, MT_ERR_TOO_MANY_PROPS);
    free(props);
}

static void test_read_not_an_entry(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not xml",
        "{\"PartitionKey\":\"p\"}",
        "<entry " NS_DECLS ">",
        "<entry><content><m:properties/></content></entry>",
        "<feed " NS_DECLS "/>",
        "<entry xmlns=\"urn:other\"/>",
        "<entry " NS_DECLS "><content><m:properties><d:A>&undefined;</d:A>"
        "</m:properties></content></entry>",
        "<entry " NS_DECLS "><d:A>\x01</d:A></entry>",
        "<entry " NS_DECLS "><content><m:properties><d:A>&#1;</d:A>"
        "</m:properties></content></entry>",
        "<entry " NS_DECLS "/><entry " NS_DECLS "/>",
        "<entry " NS_DECLS "><content><m:properties><d:A>\xff\xfe</d:A>"
        "</m:properties></content></entry>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        read_fails_raw(bad[i], 400, MT_ERR_INVALID_INPUT);
}

/* ------------------------------------------------------------------------ */
/* Hostile XML.                                                              */

static void test_billion_laughs(void **state)
{
    (void)state;
    static const char body[] =
        "<?xml version=\"1.0\"?><!DOCTYPE entry [<!ENTITY a \"aaaaaaaaaa\">"
        "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c "
        "\"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
        "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\"><!ENTITY e "
        "\"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\">"
        "<!ENTITY f \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\"><!ENTITY g "
        "\"&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;\">"
        "<!ENTITY h \"&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;\"><!ENTITY i "
        "\"&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;\">]>"
        "<entry " NS_DECLS "><content><m:properties><d:A>&i;</d:A></m:properties></content>"
        "</entry>";
    read_fails_raw(body, 400, MT_ERR_INVALID_INPUT);

    az_acl acl;
    static const char acl_body[] =
        "<!DOCTYPE SignedIdentifiers [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;\">]>"
        "<SignedIdentifiers><SignedIdentifier><Id>&b;</Id></SignedIdentifier></SignedIdentifiers>";
    mt_status st = az_acl_read(acl_body, strlen(acl_body), &acl);
    assert_int_equal(st.http, 400);
    assert_string_equal(st.code, "InvalidXmlDocument");
    assert_int_equal(acl.n, 0);
}

/* An external entity or subset is never fetched: the document is refused
 * at its DOCTYPE, so nothing of the file can reach a value. */
static void test_external_entities(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "<?xml version=\"1.0\"?><!DOCTYPE entry [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
        "<entry " NS_DECLS "><content><m:properties><d:A>&x;</d:A></m:properties></content>"
        "</entry>",
        "<?xml version=\"1.0\"?><!DOCTYPE entry SYSTEM \"file:///etc/passwd\">"
        "<entry " NS_DECLS "/>",
        "<?xml version=\"1.0\"?><!DOCTYPE entry [<!ENTITY % p SYSTEM "
        "\"http://127.0.0.1:9/x.dtd\"> %p;]><entry " NS_DECLS "/>",
        "<!DOCTYPE entry><entry " NS_DECLS "/>",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        read_fails_raw(bodies[i], 400, MT_ERR_INVALID_INPUT);

    /* XInclude is never processed: the element is just an element. */
    static const char xi[] = "<entry " NS_DECLS " xmlns:xi=\"http://www.w3.org/2001/XInclude\">"
                             "<xi:include href=\"file:///etc/passwd\" parse=\"text\"/>"
                             "<content><m:properties><d:A>x</d:A></m:properties></content></entry>";
    mt_entity *e;
    mt_status st = az_atom_entity_read(xi, strlen(xi), &e);
    assert_true(mt_is_ok(&st));
    assert_int_equal(e->nprops, 1);
    assert_string_equal(mt_entity_get(e, "A")->u.bytes.ptr, "x");
    mt_entity_free(e);

    char *name = (char *)1;
    static const char tbl[] = "<!DOCTYPE entry [<!ENTITY x SYSTEM \"file:///etc/hostname\">]>"
                              "<entry " NS_DECLS "><content><m:properties><d:TableName>&x;"
                              "</d:TableName></m:properties></content></entry>";
    st = az_atom_table_read(tbl, strlen(tbl), &name);
    assert_int_equal(st.http, 400);
    assert_null(name);
}

static void test_deep_and_big(void **state)
{
    (void)state;
    /* Nesting far past libxml2's limit. */
    size_t depth = 100000, n = 0;
    char *body = malloc(depth * 7 + 64);
    assert_non_null(body);
    n += (size_t)sprintf(body, "<entry " NS_DECLS ">");
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(body + n, "<a>");
    read_fails_raw(body, 400, MT_ERR_INVALID_INPUT);
    free(body);

    /* Bigger than any request the proxy takes. */
    size_t big = 4 * 1024 * 1024 + 1;
    body = malloc(big + 1);
    assert_non_null(body);
    memset(body, ' ', big);
    body[big] = '\0';
    mt_entity *e;
    mt_status st = az_atom_entity_read(body, big, &e);
    assert_int_equal(st.http, 413);
    free(body);
}

/* ------------------------------------------------------------------------ */
/* Create Table bodies.                                                      */

static void test_table_read(void **state)
{
    (void)state;
    char *name = NULL;
    char *body = entry_with("<d:TableName>orders</d:TableName>");
    mt_status st = az_atom_table_read(body, strlen(body), &name);
    assert_true(mt_is_ok(&st));
    assert_string_equal(name, "orders");
    free(name);
    free(body);

    static const char *const bad[] = {
        "<d:Name>orders</d:Name>",
        "<d:TableName m:type=\"Edm.Int32\">1</d:TableName>",
        "<d:TableName m:null=\"true\"/>",
        "<d:TableName><d:x/></d:TableName>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        body = entry_with(bad[i]);
        name = (char *)1;
        st = az_atom_table_read(body, strlen(body), &name);
        assert_int_equal(st.http, 400);
        assert_string_equal(st.code, MT_ERR_INVALID_INPUT);
        assert_null(name);
        free(body);
    }
    /* What this file writes, it reads. */
    char *doc = az_atom_table_write(&ctx, "t1", NULL);
    st = az_atom_table_read(doc, strlen(doc), &name);
    assert_true(mt_is_ok(&st));
    assert_string_equal(name, "t1");
    free(name);
    free(doc);
}

/* ------------------------------------------------------------------------ */
/* Table ACL.                                                                */

static void acl_fails(const char *body, const char *code)
{
    az_acl acl;
    mt_status st = az_acl_read(body, strlen(body), &acl);
    if (st.http != 400 || strcmp(st.code, code) != 0)
        fail_msg("expected 400 %s, got %d %s (%s) for %s", code, st.http, st.code, st.message,
                 body);
    assert_int_equal(acl.n, 0);
}

static void test_acl_round_trip(void **state)
{
    (void)state;
    static const char body[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<SignedIdentifiers>\n"
        "  <SignedIdentifier><Id>MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=</Id>"
        "<AccessPolicy><Start>2030-01-01T00:00:00Z</Start><Expiry>2031-01-01T10:30:00.5+01:00"
        "</Expiry><Permission>dua r</Permission></AccessPolicy></SignedIdentifier>\n"
        "  <SignedIdentifier><Id>only-id</Id></SignedIdentifier>\n"
        "  <SignedIdentifier><Id>read</Id><AccessPolicy><Permission>r</Permission>"
        "</AccessPolicy></SignedIdentifier>\n"
        "</SignedIdentifiers>";
    az_acl acl, again;
    mt_status st = az_acl_read(body, strlen(body), &acl);
    assert_int_equal(st.http, 400); /* the blank inside "dua r" is not a letter */

    char *fixed = strdup(body);
    memcpy(strstr(fixed, "dua r"), "duar ", 5);
    st = az_acl_read(fixed, strlen(fixed), &acl);
    free(fixed);
    if (!mt_is_ok(&st))
        fail_msg("%s %s", st.code, st.message);
    assert_int_equal(acl.n, 3);
    assert_string_equal(acl.ids[0].id, "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=");
    assert_string_equal(acl.ids[0].start, "2030-01-01T00:00:00.0000000Z");
    assert_string_equal(acl.ids[0].expiry, "2031-01-01T09:30:00.5000000Z");
    assert_string_equal(acl.ids[0].permission, "raud");
    assert_string_equal(acl.ids[1].start, "");
    assert_string_equal(acl.ids[1].permission, "");
    assert_string_equal(acl.ids[2].permission, "r");

    size_t len = 0;
    char *doc = az_acl_write(&acl, &len);
    assert_non_null(doc);
    assert_string_equal(doc,
                        "<?xml version=\"1.0\" encoding=\"utf-8\"?><SignedIdentifiers>"
                        "<SignedIdentifier><Id>MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=</Id>"
                        "<AccessPolicy><Start>2030-01-01T00:00:00.0000000Z</Start>"
                        "<Expiry>2031-01-01T09:30:00.5000000Z</Expiry><Permission>raud</Permission>"
                        "</AccessPolicy></SignedIdentifier>"
                        "<SignedIdentifier><Id>only-id</Id><AccessPolicy/></SignedIdentifier>"
                        "<SignedIdentifier><Id>read</Id><AccessPolicy><Permission>r</Permission>"
                        "</AccessPolicy></SignedIdentifier></SignedIdentifiers>\n");
    st = az_acl_read(doc, len, &again);
    assert_true(mt_is_ok(&st));
    assert_memory_equal(&acl, &again, sizeof acl);
    free(doc);

    /* Empty ACLs: no body, a blank body, an empty element. */
    static const char *const empty[] = {"", " \n", "<SignedIdentifiers/>"};
    for (size_t i = 0; i < 3; i++) {
        st = az_acl_read(empty[i], strlen(empty[i]), &acl);
        assert_true(mt_is_ok(&st));
        assert_int_equal(acl.n, 0);
    }
    doc = az_acl_write(&acl, NULL);
    assert_string_equal(doc, "<?xml version=\"1.0\" encoding=\"utf-8\"?><SignedIdentifiers/>\n");
    free(doc);
}

static void test_acl_rejects(void **state)
{
    (void)state;
#define SI(id, pol) "<SignedIdentifier><Id>" id "</Id>" pol "</SignedIdentifier>"
#define ACL(x) "<SignedIdentifiers>" x "</SignedIdentifiers>"
    az_acl acl;
    char five[1024];
    snprintf(five, sizeof five, ACL(SI("1", "") SI("2", "") SI("3", "") SI("4", "") SI("5", "")));
    mt_status st = az_acl_read(five, strlen(five), &acl);
    assert_true(mt_is_ok(&st));
    assert_int_equal(acl.n, 5);

    acl_fails(ACL(SI("1", "") SI("2", "") SI("3", "") SI("4", "") SI("5", "") SI("6", "")),
              "InvalidXmlDocument");
    acl_fails(ACL(SI("1", "<AccessPolicy><Permission>rw</Permission></AccessPolicy>")),
              "InvalidXmlDocument");
    acl_fails(ACL(SI("12345678901234567890123456789012345678901234567890123456789012345", "")),
              "InvalidXmlNodeValue");
    acl_fails(ACL(SI("", "")), "InvalidXmlNodeValue");
    acl_fails(ACL(SI("1", "<AccessPolicy><Start>tomorrow</Start></AccessPolicy>")),
              "InvalidXmlNodeValue");
    acl_fails(ACL(SI("1", "<AccessPolicy><Expiry>2024-02-30T00:00:00Z</Expiry></AccessPolicy>")),
              "InvalidXmlNodeValue");
    acl_fails(ACL("<SignedIdentifier><AccessPolicy/></SignedIdentifier>"),
              "MissingRequiredXmlNode");
    acl_fails(ACL("<Identifier/>"), "UnsupportedXmlNode");
    acl_fails(ACL(SI("1", "<AccessPolicy><Foo/></AccessPolicy>")), "UnsupportedXmlNode");
    acl_fails(ACL("<SignedIdentifier><Id>1</Id><Id>2</Id></SignedIdentifier>"),
              "InvalidXmlDocument");
    acl_fails(ACL(SI("<b>1</b>", "")), "InvalidXmlDocument");
    acl_fails(ACL("text" SI("1", "")), "InvalidXmlDocument");
    acl_fails("<Other/>", "InvalidXmlDocument");
    acl_fails("<SignedIdentifiers>", "InvalidXmlDocument");
    acl_fails("garbage", "InvalidXmlDocument");
#undef SI
#undef ACL
}

/* ------------------------------------------------------------------------ */
/* Service properties.                                                       */

#define SP(x)                                                                                      \
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><StorageServiceProperties>" x                       \
    "</StorageServiceProperties>"
#define RP_OFF "<RetentionPolicy><Enabled>false</Enabled></RetentionPolicy>"
#define LOGGING(rp)                                                                                \
    "<Logging><Version>1.0</Version><Delete>true</Delete><Read>false</Read>"                       \
    "<Write>true</Write>" rp "</Logging>"
#define METRICS(el, body) "<" el "><Version>1.0</Version>" body "</" el ">"
#define RULE(o, m, age, e, a)                                                                      \
    "<CorsRule><AllowedOrigins>" o "</AllowedOrigins><AllowedMethods>" m "</AllowedMethods>"       \
    "<MaxAgeInSeconds>" age "</MaxAgeInSeconds><ExposedHeaders>" e "</ExposedHeaders>"             \
    "<AllowedHeaders>" a "</AllowedHeaders></CorsRule>"

static void sp_fails(const char *body, const char *code)
{
    char *norm = (char *)1;
    mt_status st = az_service_properties_read(body, strlen(body), &norm);
    if (st.http != 400 || strcmp(st.code, code) != 0)
        fail_msg("expected 400 %s, got %d %s (%s) for %s", code, st.http, st.code, st.message,
                 body);
    assert_null(norm);
}

static void test_service_properties_default(void **state)
{
    (void)state;
    size_t len = 0;
    char *doc = az_service_properties_default(&len);
    assert_non_null(doc);
    assert_string_equal(
        doc, SP("<Logging><Version>1.0</Version><Delete>false</Delete><Read>false</Read>"
                "<Write>false</Write>" RP_OFF
                "</Logging>" METRICS("HourMetrics", "<Enabled>false</Enabled>" RP_OFF)
                    METRICS("MinuteMetrics", "<Enabled>false</Enabled>" RP_OFF) "<Cors/>") "\n");
    assert_int_equal(len, strlen(doc));
    /* The default is itself a valid request that normalises to itself. */
    char *norm = NULL;
    mt_status st = az_service_properties_read(doc, len, &norm);
    assert_true(mt_is_ok(&st));
    assert_string_equal(norm, doc);
    free(norm);
    free(doc);
}

static void test_service_properties_normalise(void **state)
{
    (void)state;
    /* clang-format off */
    static const char body[] = SP(
        "\n  "
        LOGGING("<RetentionPolicy><Enabled>1</Enabled><Days> 7 </Days></RetentionPolicy>")
        "<!-- comment -->"
        METRICS("HourMetrics",
                "<Enabled>true</Enabled><IncludeAPIs>false</IncludeAPIs>"
                "<RetentionPolicy><Enabled>false</Enabled><Days>9999</Days></RetentionPolicy>")
        METRICS("MinuteMetrics",
                "<Enabled>false</Enabled><IncludeAPIs>true</IncludeAPIs>" RP_OFF)
        "<Cors>"
        RULE("http://a.example, https://b.example", "GET,PUT , MERGE", "3600",
             "x-ms-meta-*", " x-ms-meta-abc,x-ms-meta-data* ")
        RULE("*", "OPTIONS", "0", "", "")
        "</Cors>");
    static const char want[] = SP(
        LOGGING("<RetentionPolicy><Enabled>true</Enabled><Days>7</Days></RetentionPolicy>")
        METRICS("HourMetrics",
                "<Enabled>true</Enabled><IncludeAPIs>false</IncludeAPIs>" RP_OFF)
        METRICS("MinuteMetrics", "<Enabled>false</Enabled>" RP_OFF)
        "<Cors>"
        RULE("http://a.example,https://b.example", "GET,PUT,MERGE", "3600",
             "x-ms-meta-*", "x-ms-meta-abc,x-ms-meta-data*")
        "<CorsRule><AllowedOrigins>*</AllowedOrigins>"
        "<AllowedMethods>OPTIONS</AllowedMethods><MaxAgeInSeconds>0</MaxAgeInSeconds>"
        "<ExposedHeaders></ExposedHeaders><AllowedHeaders></AllowedHeaders></CorsRule>"
        "</Cors>") "\n";
    /* clang-format on */
    char *norm = NULL, *again = NULL;
    mt_status st = az_service_properties_read(body, strlen(body), &norm);
    if (!mt_is_ok(&st))
        fail_msg("%s %s", st.code, st.message);
    assert_string_equal(norm, want);
    st = az_service_properties_read(norm, strlen(norm), &again);
    assert_true(mt_is_ok(&st));
    assert_string_equal(again, norm);
    free(norm);
    free(again);

    /* Sections may be left out; only those given are kept. */
    static const char part[] = SP("<Cors/>");
    st = az_service_properties_read(part, strlen(part), &norm);
    assert_true(mt_is_ok(&st));
    assert_string_equal(norm, SP("<Cors/>") "\n");
    free(norm);
}

static void test_service_properties_rejects(void **state)
{
    (void)state;
    char big[4096], rule[1200];
    sp_fails(SP("<Logging><Version>2.0</Version><Delete>true</Delete><Read>true</Read>"
                "<Write>true</Write>" RP_OFF "</Logging>"),
             "InvalidXmlNodeValue");
    sp_fails(SP(LOGGING("<RetentionPolicy><Enabled>true</Enabled><Days>0</Days>"
                        "</RetentionPolicy>")),
             "InvalidXmlNodeValue");
    sp_fails(SP(LOGGING("<RetentionPolicy><Enabled>true</Enabled><Days>366</Days>"
                        "</RetentionPolicy>")),
             "InvalidXmlNodeValue");
    sp_fails(SP(LOGGING("<RetentionPolicy><Enabled>true</Enabled></RetentionPolicy>")),
             "MissingRequiredXmlNode");
    sp_fails(SP(LOGGING("")), "MissingRequiredXmlNode");
    sp_fails(SP(LOGGING("<RetentionPolicy><Enabled>yes</Enabled></RetentionPolicy>")),
             "InvalidXmlNodeValue");
    sp_fails(SP(METRICS("HourMetrics", "<Enabled>true</Enabled>" RP_OFF)),
             "MissingRequiredXmlNode");
    sp_fails(SP(METRICS("HourMetrics", "<Enabled>false</Enabled>" RP_OFF "<Extra/>")),
             "UnsupportedXmlNode");
    sp_fails(SP(METRICS("HourMetrics", "<Enabled>false</Enabled>" RP_OFF RP_OFF)),
             "InvalidXmlDocument");
    sp_fails(SP("<DefaultServiceVersion>2020-01-01</DefaultServiceVersion>"), "UnsupportedXmlNode");
#define R1 RULE("*", "GET", "1", "", "")
    sp_fails(SP("<Cors>" R1 R1 R1 R1 R1 R1 "</Cors>"), "InvalidXmlDocument");
#undef R1
    sp_fails(SP("<Cors>" RULE("*", "GET,FETCH", "1", "", "") "</Cors>"), "InvalidXmlNodeValue");
    sp_fails(SP("<Cors>" RULE("*", "get", "1", "", "") "</Cors>"), "InvalidXmlNodeValue");
    sp_fails(SP("<Cors>" RULE("", "GET", "1", "", "") "</Cors>"), "InvalidXmlNodeValue");
    sp_fails(SP("<Cors>" RULE("a,,b", "GET", "1", "", "") "</Cors>"), "InvalidXmlNodeValue");
    sp_fails(SP("<Cors>" RULE("a,", "GET", "1", "", "") "</Cors>"), "InvalidXmlNodeValue");
    sp_fails(SP("<Cors>" RULE("*", "GET", "-1", "", "") "</Cors>"), "InvalidXmlNodeValue");
    sp_fails(SP("<Cors>" RULE("*", "GET", "99999999999", "", "") "</Cors>"), "InvalidXmlNodeValue");
    sp_fails(SP("<Cors>" RULE("*", "GET", "1", "", "a*,b*,c*") "</Cors>"), "InvalidXmlNodeValue");
    sp_fails(SP("<Cors><CorsRule><AllowedOrigins>*</AllowedOrigins></CorsRule></Cors>"),
             "MissingRequiredXmlNode");
    sp_fails(SP("<Cors><Rule/></Cors>"), "UnsupportedXmlNode");

    /* 65 origins; then rules whose values together pass 2 KiB. */
    size_t n = (size_t)snprintf(big, sizeof big,
                                "<StorageServiceProperties><Cors><CorsRule><AllowedOrigins>");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%so%d", i ? "," : "", i);
    snprintf(big + n, sizeof big - n,
             "</AllowedOrigins><AllowedMethods>GET</AllowedMethods><MaxAgeInSeconds>1"
             "</MaxAgeInSeconds><ExposedHeaders/><AllowedHeaders/></CorsRule></Cors>"
             "</StorageServiceProperties>");
    sp_fails(big, "InvalidXmlNodeValue");

    char origin[251];
    memset(origin, 'o', 250);
    origin[250] = '\0';
    snprintf(rule, sizeof rule, RULE("%s,%s,%s", "GET", "1", "", ""), origin, origin, origin);
    snprintf(big, sizeof big, SP("<Cors>%s%s%s</Cors>"), rule, rule, rule);
    sp_fails(big, "InvalidXmlNodeValue");
    snprintf(big, sizeof big, SP("<Cors>%s%s</Cors>"), rule, rule);
    char *norm = NULL;
    mt_status st = az_service_properties_read(big, strlen(big), &norm);
    assert_true(mt_is_ok(&st));
    free(norm);

    sp_fails("<ServiceProperties/>", "InvalidXmlDocument");
    sp_fails("", "InvalidXmlDocument");
    sp_fails(SP("text"), "InvalidXmlDocument");
    sp_fails("<!DOCTYPE StorageServiceProperties [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
             "<StorageServiceProperties>&x;</StorageServiceProperties>",
             "InvalidXmlDocument");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_entity),
        cmocka_unit_test(test_golden_feed),
        cmocka_unit_test(test_golden_tables),
        cmocka_unit_test(test_error_document),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_round_trip_strings),
        cmocka_unit_test(test_round_trip_numbers),
        cmocka_unit_test(test_round_trip_others),
        cmocka_unit_test(test_round_trip_entity),
        cmocka_unit_test(test_read_client_forms),
        cmocka_unit_test(test_read_shapes),
        cmocka_unit_test(test_read_bad_values),
        cmocka_unit_test(test_read_duplicates_and_limits),
        cmocka_unit_test(test_read_not_an_entry),
        cmocka_unit_test(test_billion_laughs),
        cmocka_unit_test(test_external_entities),
        cmocka_unit_test(test_deep_and_big),
        cmocka_unit_test(test_table_read),
        cmocka_unit_test(test_acl_round_trip),
        cmocka_unit_test(test_acl_rejects),
        cmocka_unit_test(test_service_properties_default),
        cmocka_unit_test(test_service_properties_normalise),
        cmocka_unit_test(test_service_properties_rejects),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    xmlCleanupParser(); /* only so that leak checkers see a clean exit */
    return failed;
}

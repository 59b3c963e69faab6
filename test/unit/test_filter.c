/*
 * test_filter.c -- the OData filter: parsing every literal type, grammar
 * (precedence, associativity, not, parentheses), canonical printing and
 * round trips, evaluation under Azure's rules, structural questions, and
 * rejection of malformed input.
 *
 * Most cases are tables of strings run by one loop, so adding a case is one
 * line. Trees are compared structurally with doubles compared bitwise: that
 * is the equality the printer promises.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mt.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static bool filter_equal(const mt_filter *a, const mt_filter *b)
{
    if (!a || !b)
        return a == b;
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case MT_F_CMP:
        return strcmp(a->u.cmp.prop, b->u.cmp.prop) == 0 && a->u.cmp.op == b->u.cmp.op &&
               mt_value_equal(&a->u.cmp.lit, &b->u.cmp.lit);
    case MT_F_AND:
    case MT_F_OR:
        return filter_equal(a->u.bin.l, b->u.bin.l) && filter_equal(a->u.bin.r, b->u.bin.r);
    case MT_F_NOT:
        return filter_equal(a->u.sub, b->u.sub);
    case MT_F_TRUE:
        return a->u.b == b->u.b;
    }
    return false;
}

static mt_filter *parse_ok(const char *text)
{
    mt_filter *f = NULL;
    mt_status st = mt_filter_parse(text, strlen(text), &f);
    if (!mt_is_ok(&st))
        fail_msg("parse of [%s] failed: %d %s %s", text, st.http, st.code, st.message);
    assert_non_null(f);
    return f;
}

static void parse_fails(const char *text, size_t len)
{
    mt_filter *f = (mt_filter *)1;
    mt_status st = mt_filter_parse(text, len, &f);
    if (st.http != 400) {
        char *p = mt_is_ok(&st) ? mt_filter_print(f) : NULL;
        fail_msg("parse of [%.*s] gave %d (%s)", (int)len, text, st.http, p ? p : "");
    }
    assert_string_equal(st.code, MT_ERR_INVALID_INPUT);
    assert_null(f);
    assert_true(strlen(st.message) > 0);
}

static void bad(const char *text)
{
    parse_fails(text, strlen(text));
}

/* Parses "P eq <lit>" and hands back the tree; *v points at its literal. */
static mt_filter *parse_lit(const char *lit, const mt_value **v)
{
    char text[512];
    snprintf(text, sizeof text, "P eq %s", lit);
    mt_filter *f = parse_ok(text);
    assert_int_equal(f->kind, MT_F_CMP);
    assert_string_equal(f->u.cmp.prop, "P");
    assert_int_equal(f->u.cmp.op, MT_EQ);
    *v = &f->u.cmp.lit;
    return f;
}

static void bad_lit(const char *lit)
{
    char text[512];
    snprintf(text, sizeof text, "P eq %s", lit);
    bad(text);
}

static void check_i32(const char *lit, int32_t want)
{
    const mt_value *v;
    mt_filter *f = parse_lit(lit, &v);
    assert_int_equal(v->type, MT_EDM_INT32);
    assert_int_equal(v->u.i32, want);
    mt_filter_free(f);
}

static void check_i64(const char *lit, int64_t want)
{
    const mt_value *v;
    mt_filter *f = parse_lit(lit, &v);
    assert_int_equal(v->type, MT_EDM_INT64);
    assert_true(v->u.i64 == want);
    mt_filter_free(f);
}

static void check_dbl(const char *lit, double want)
{
    const mt_value *v;
    mt_filter *f = parse_lit(lit, &v);
    assert_int_equal(v->type, MT_EDM_DOUBLE);
    assert_memory_equal(&v->u.dbl, &want, sizeof want);
    mt_filter_free(f);
}

static void check_ticks(const char *lit, int64_t want)
{
    const mt_value *v;
    mt_filter *f = parse_lit(lit, &v);
    assert_int_equal(v->type, MT_EDM_DATETIME);
    if (v->u.ticks != want)
        fail_msg("%s: ticks %lld, want %lld", lit, (long long)v->u.ticks, (long long)want);
    mt_filter_free(f);
}

static void check_bytes(const char *lit, mt_edm type, const char *want, size_t n)
{
    const mt_value *v;
    mt_filter *f = parse_lit(lit, &v);
    assert_int_equal(v->type, type);
    assert_int_equal(v->u.bytes.len, n);
    if (n)
        assert_memory_equal(v->u.bytes.ptr, want, n);
    if (type == MT_EDM_STRING)
        assert_int_equal(v->u.bytes.ptr[n], '\0');
    mt_filter_free(f);
}

/* parse -> print == want, and printing is a fixed point. */
static void check_print(const char *text, const char *want)
{
    mt_filter *f = parse_ok(text);
    char *p = mt_filter_print(f);
    assert_non_null(p);
    assert_string_equal(p, want);
    mt_filter *g = parse_ok(p);
    assert_true(filter_equal(f, g));
    char *q = mt_filter_print(g);
    assert_string_equal(p, q);
    free(q);
    free(p);
    mt_filter_free(g);
    mt_filter_free(f);
}

/* Parses text and a fully parenthesised spelling; both trees must agree. */
static void check_same_tree(const char *text, const char *explicit_form)
{
    mt_filter *f = parse_ok(text), *g = parse_ok(explicit_form);
    if (!filter_equal(f, g))
        fail_msg("[%s] and [%s] differ", text, explicit_form);
    mt_filter_free(f);
    mt_filter_free(g);
}

/* ------------------------------------------------------------------------ */
/* Literals                                                                  */

static void test_string_literals(void **state)
{
    (void)state;
    check_bytes("'abc'", MT_EDM_STRING, "abc", 3);
    check_bytes("''", MT_EDM_STRING, "", 0);
    check_bytes("'it''s'", MT_EDM_STRING, "it's", 4);
    check_bytes("''''", MT_EDM_STRING, "'", 1);
    check_bytes("'a''''b'", MT_EDM_STRING, "a''b", 4);
    check_bytes("' spaced  out '", MT_EDM_STRING, " spaced  out ", 13);
    check_bytes("'and or not eq ( )'", MT_EDM_STRING, "and or not eq ( )", 17);
    check_bytes("'h\xc3\xa9llo \xe6\x97\xa5\xf0\x9f\x98\x80'", MT_EDM_STRING,
                "h\xc3\xa9llo \xe6\x97\xa5\xf0\x9f\x98\x80", 14);
    bad_lit("'abc");
    bad_lit("'abc''");
    bad_lit("'");
    bad_lit("'\xff'");             /* not UTF-8 */
    bad_lit("'\xc0\xaf'");         /* overlong */
    bad_lit("'\xed\xa0\x80'");     /* surrogate */
    bad_lit("'\xf4\x90\x80\x80'"); /* above U+10FFFF */
    bad_lit("'\xe6\x97'");         /* truncated */
}

static void test_bool_literals(void **state)
{
    (void)state;
    const mt_value *v;
    mt_filter *f = parse_lit("true", &v);
    assert_int_equal(v->type, MT_EDM_BOOLEAN);
    assert_true(v->u.b);
    mt_filter_free(f);
    f = parse_lit("false", &v);
    assert_int_equal(v->type, MT_EDM_BOOLEAN);
    assert_false(v->u.b);
    mt_filter_free(f);
    /* Any casing, as the service reads them. */
    const char *spellings[] = {"True", "TRUE", "tRuE", "False", "FALSE", "fAlSe"};
    for (size_t i = 0; i < sizeof spellings / sizeof *spellings; i++) {
        f = parse_lit(spellings[i], &v);
        assert_int_equal(v->type, MT_EDM_BOOLEAN);
        assert_int_equal(v->u.b, i < 3);
        mt_filter_free(f);
    }
    bad_lit("Truee");
    bad_lit("tru");
}

static void test_int32_literals(void **state)
{
    (void)state;
    check_i32("0", 0);
    check_i32("-0", 0);
    check_i32("42", 42);
    check_i32("+42", 42);
    check_i32("007", 7);
    check_i32("2147483647", INT32_MAX);
    check_i32("-2147483648", INT32_MIN);
    bad_lit("2147483648");
    bad_lit("-2147483649");
    bad_lit("99999999999999999999999");
    bad_lit("12abc");
    bad_lit("1.2.3");
    bad_lit("- 1");
    bad_lit("--1");
    bad_lit("1m");
    bad_lit("1f");
}

static void test_int64_literals(void **state)
{
    (void)state;
    check_i64("0L", 0);
    check_i64("123L", 123);
    check_i64("123l", 123);
    check_i64("-5L", -5);
    check_i64("2147483648L", INT64_C(2147483648));
    check_i64("9223372036854775807L", INT64_MAX);
    check_i64("-9223372036854775808L", INT64_MIN);
    bad_lit("9223372036854775808L");
    bad_lit("-9223372036854775809L");
    bad_lit("18446744073709551616L");
    bad_lit("1.5L");
    bad_lit("1e3L");
    bad_lit("1LL");
    bad_lit("1L2");
}

static void test_double_literals(void **state)
{
    (void)state;
    check_dbl("1.5", 1.5);
    check_dbl("0.1", 0.1);
    check_dbl("2.0", 2.0);
    check_dbl("2d", 2.0);
    check_dbl("2.5D", 2.5);
    check_dbl("-0.0", -0.0);
    check_dbl("1e308", 1e308);
    check_dbl("1E+308", 1e308);
    check_dbl("1.7976931348623157e308", 1.7976931348623157e308);
    check_dbl("5e-324", 5e-324);
    check_dbl("2.2250738585072014e-308", 2.2250738585072014e-308);
    check_dbl("-1.25e-3", -1.25e-3);
    check_dbl("INF", INFINITY);
    check_dbl("-INF", -INFINITY);
    check_dbl("+INF", INFINITY);

    const mt_value *v;
    mt_filter *f = parse_lit("NaN", &v);
    assert_int_equal(v->type, MT_EDM_DOUBLE);
    assert_true(isnan(v->u.dbl));
    mt_filter_free(f);

    bad_lit("1e309");
    bad_lit("-1e309");
    bad_lit("1.");
    bad_lit(".5");
    bad_lit("1e");
    bad_lit("1e+");
    bad_lit("1.5x");
    bad_lit("inf");
    bad_lit("nan");
    bad_lit("-NaN");
    bad_lit("1dd");
}

static void test_datetime_literals(void **state)
{
    (void)state;
    check_ticks("datetime'0001-01-01T00:00:00Z'", 0);
    check_ticks("datetime'0001-01-01T00:00:00.0000001Z'", 1);
    check_ticks("datetime'1970-01-01T00:00:00Z'", INT64_C(621355968000000000));
    check_ticks("datetime'2020-02-29T12:34:56.1234567Z'", INT64_C(637185764961234567));
    check_ticks("datetime'2020-02-29T12:34:56.5Z'", INT64_C(637185764965000000));
    check_ticks("datetime'9999-12-31T23:59:59.9999999Z'", INT64_C(3155378975999999999));
    /* Seconds optional; no zone reads as UTC; offsets go to UTC. */
    check_ticks("datetime'2020-01-01T00:00Z'", INT64_C(637134336000000000));
    check_ticks("datetime'2020-01-01T00:00:00'", INT64_C(637134336000000000));
    check_ticks("datetime'2020-01-01T01:30:00+01:30'", INT64_C(637134336000000000));
    check_ticks("datetime'2019-12-31T23:00:00-01:00'", INT64_C(637134336000000000));
    check_ticks("datetime'2020-01-01T14:00:00+14:00'", INT64_C(637134336000000000));
    check_ticks("DateTime'2020-01-01T00:00:00Z'", INT64_C(637134336000000000));

    bad_lit("datetime'2019-02-29T00:00:00Z'");
    bad_lit("datetime'2100-02-29T00:00:00Z'");
    bad_lit("datetime'2020-13-01T00:00:00Z'");
    bad_lit("datetime'2020-00-01T00:00:00Z'");
    bad_lit("datetime'2020-04-31T00:00:00Z'");
    bad_lit("datetime'2020-01-01T24:00:00Z'");
    bad_lit("datetime'2020-01-01T00:60:00Z'");
    bad_lit("datetime'2020-01-01T00:00:60Z'");
    bad_lit("datetime'2020-01-01T00:00:00.12345678Z'");
    bad_lit("datetime'2020-01-01T00:00:00.Z'");
    check_ticks("datetime'2020-01-01T00:00:00.1'", INT64_C(637134336001000000));
    bad_lit("datetime'2020-01-01 00:00:00Z'");
    bad_lit("datetime'2020-01-01T00:00:00z'");
    bad_lit("datetime'2020-01-01T00:00:00+15:00'");
    bad_lit("datetime'2020-01-01T00:00:00+01'");
    bad_lit("datetime'2020-01-01T00:00:00ZZ'");
    bad_lit("datetime'2020-1-01T00:00:00Z'");
    bad_lit("datetime'0000-12-31T00:00:00Z'");
    bad_lit("datetime'0001-01-01T00:00:00+00:01'"); /* before year 1 */
    bad_lit("datetime'9999-12-31T23:59:59-00:01'"); /* after year 9999 */
    bad_lit("datetime''");
    bad_lit("datetime'2020-01-01T00:00:00Z");
    bad_lit("datetime '2020-01-01T00:00:00Z'");
}

static void test_guid_literals(void **state)
{
    (void)state;
    static const uint8_t want[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
                                     0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    const mt_value *v;
    mt_filter *f = parse_lit("guid'12345678-9abc-DEF0-0123-456789ABCDEF'", &v);
    assert_int_equal(v->type, MT_EDM_GUID);
    assert_memory_equal(v->u.guid, want, 16);
    mt_filter_free(f);
    f = parse_lit("GUID'12345678-9abc-def0-0123-456789abcdef'", &v);
    assert_memory_equal(v->u.guid, want, 16);
    mt_filter_free(f);

    bad_lit("guid'12345678-9abc-def0-0123-456789abcde'");
    bad_lit("guid'12345678-9abc-def0-0123-456789abcdef0'");
    bad_lit("guid'123456789abcdef00123456789abcdef'");
    bad_lit("guid'12345678-9abc-def0-0123_456789abcdef'");
    bad_lit("guid'1234567g-9abc-def0-0123-456789abcdef'");
    bad_lit("guid'{12345678-9abc-def0-0123-456789abcdef}'");
    bad_lit("guid''");
    bad_lit("guid'12345678-9abc-def0-0123-456789abcdef");
}

static void test_binary_literals(void **state)
{
    (void)state;
    check_bytes("X'0aFF'", MT_EDM_BINARY, "\x0a\xff", 2);
    check_bytes("x'00'", MT_EDM_BINARY, "\0", 1);
    check_bytes("binary'deadbeef'", MT_EDM_BINARY, "\xde\xad\xbe\xef", 4);
    check_bytes("X''", MT_EDM_BINARY, "", 0);
    bad_lit("X'abc'");
    bad_lit("X'zz'");
    bad_lit("X'0 '");
    bad_lit("X'00");
    bad_lit("Y'00'");
    bad_lit("blob'00'");
}

/* ------------------------------------------------------------------------ */
/* Grammar                                                                   */

static void test_precedence_and_associativity(void **state)
{
    (void)state;
    check_same_tree("A eq 1 or B eq 2 and C eq 3", "(A eq 1) or ((B eq 2) and (C eq 3))");
    check_same_tree("A eq 1 and B eq 2 or C eq 3", "((A eq 1) and (B eq 2)) or (C eq 3)");
    check_same_tree("A eq 1 and B eq 2 and C eq 3", "((A eq 1) and (B eq 2)) and (C eq 3)");
    check_same_tree("A eq 1 or B eq 2 or C eq 3", "((A eq 1) or (B eq 2)) or (C eq 3)");
    check_same_tree("A eq 1 and (B eq 2 or C eq 3)", "(A eq 1) and ((B eq 2) or (C eq 3))");
    check_same_tree("not (A eq 1) and B eq 2", "(not (A eq 1)) and (B eq 2)");
    check_same_tree("not not (A eq 1)", "not (not (A eq 1))");
    check_same_tree("((((A eq 1))))", "A eq 1");
    check_same_tree("(A) eq 1", "A eq 1");
    check_same_tree("A eq (1)", "A eq 1");
    check_same_tree("  A   eq\t1\r\n", "A eq 1");
    check_same_tree("(A eq 1)and(B eq 2)", "(A eq 1) and (B eq 2)");

    mt_filter *f = parse_ok("A eq 1 or B eq 2 and C eq 3");
    assert_int_equal(f->kind, MT_F_OR);
    assert_int_equal(f->u.bin.l->kind, MT_F_CMP);
    assert_int_equal(f->u.bin.r->kind, MT_F_AND);
    mt_filter_free(f);
}

static void test_operators_and_flipping(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        mt_cmp_op op;
    } cases[] = {
        {"Age eq 30", MT_EQ}, {"Age ne 30", MT_NE}, {"Age gt 30", MT_GT}, {"Age ge 30", MT_GE},
        {"Age lt 30", MT_LT}, {"Age le 30", MT_LE}, {"30 eq Age", MT_EQ}, {"30 ne Age", MT_NE},
        {"30 gt Age", MT_LT}, {"30 ge Age", MT_LE}, {"30 lt Age", MT_GT}, {"30 le Age", MT_GE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mt_filter *f = parse_ok(cases[i].text);
        assert_int_equal(f->kind, MT_F_CMP);
        assert_string_equal(f->u.cmp.prop, "Age");
        assert_int_equal(f->u.cmp.op, cases[i].op);
        assert_int_equal(f->u.cmp.lit.type, MT_EDM_INT32);
        assert_int_equal(f->u.cmp.lit.u.i32, 30);
        mt_filter_free(f);
    }
    check_same_tree("'x' lt RowKey", "RowKey gt 'x'");
}

static void test_boolean_literals_as_filters(void **state)
{
    (void)state;
    mt_filter *f = parse_ok("true");
    assert_int_equal(f->kind, MT_F_TRUE);
    assert_true(f->u.b);
    mt_filter_free(f);
    f = parse_ok("(false)");
    assert_int_equal(f->kind, MT_F_TRUE);
    assert_false(f->u.b);
    mt_filter_free(f);
    f = parse_ok("not false or A eq 1");
    assert_int_equal(f->kind, MT_F_OR);
    assert_int_equal(f->u.bin.l->kind, MT_F_NOT);
    assert_int_equal(f->u.bin.l->u.sub->kind, MT_F_TRUE);
    mt_filter_free(f);
    f = parse_ok("Flag eq true and true");
    assert_int_equal(f->kind, MT_F_AND);
    assert_int_equal(f->u.bin.l->kind, MT_F_CMP);
    assert_int_equal(f->u.bin.l->u.cmp.lit.type, MT_EDM_BOOLEAN);
    assert_int_equal(f->u.bin.r->kind, MT_F_TRUE);
    mt_filter_free(f);
}

static void test_names(void **state)
{
    (void)state;
    char name[300];
    memset(name, 'n', 255);
    strcpy(name + 255, " eq 1");
    mt_filter *f = parse_ok(name);
    assert_int_equal(strlen(f->u.cmp.prop), 255);
    mt_filter_free(f);
    memset(name, 'n', 256);
    strcpy(name + 256, " eq 1");
    bad(name);

    f = parse_ok("_under_score9 eq 1");
    assert_string_equal(f->u.cmp.prop, "_under_score9");
    mt_filter_free(f);
    bad("9abc eq 1");
    bad("a-b eq 1");
    bad("na\xc3\xafve eq 1");
}

/* ------------------------------------------------------------------------ */
/* Printing                                                                  */

static void test_print_canonical(void **state)
{
    (void)state;
    check_print("PartitionKey eq 'a' and (RowKey eq 'x' or not (Age lt 30))",
                "(PartitionKey eq 'a') and ((RowKey eq 'x') or "
                "(not (Age lt 30)))");
    check_print("A eq 1 or B eq 2 or C eq 3", "((A eq 1) or (B eq 2)) or (C eq 3)");
    check_print("30 gt Age", "Age lt 30");
    check_print("true", "true");
    check_print("not false", "not (false)");
    check_print("S eq 'it''s'", "S eq 'it''s'");
    check_print("S eq ''''''", "S eq ''''''");
    check_print("S eq 'h\xc3\xa9\xf0\x9f\x98\x80'", "S eq 'h\xc3\xa9\xf0\x9f\x98\x80'");
    check_print("I eq -2147483648", "I eq -2147483648");
    check_print("L eq -9223372036854775808L", "L eq -9223372036854775808L");
    check_print("L eq 7l", "L eq 7L");
    check_print("D eq 2d", "D eq 2.0");
    check_print("D eq 0.1", "D eq 0.1");
    check_print("D eq 1.5e3", "D eq 1500.0");
    check_print("D eq -0.0", "D eq -0.0");
    check_print("D eq 1e308", "D eq 1e+308");
    check_print("D eq 5e-324", "D eq 4.94065645841247e-324");
    check_print("D eq 0.30000000000000004", "D eq 0.30000000000000004");
    check_print("D eq NaN", "D eq NaN");
    check_print("D eq INF", "D eq INF");
    check_print("D eq -INF", "D eq -INF");
    check_print("B eq false", "B eq false");
    check_print("T eq datetime'2020-01-01T01:30:00+01:30'",
                "T eq datetime'2020-01-01T00:00:00.0000000Z'");
    check_print("T eq datetime'2020-02-29T12:34:56.1234567Z'",
                "T eq datetime'2020-02-29T12:34:56.1234567Z'");
    check_print("T eq datetime'0001-01-01T00:00:00Z'",
                "T eq datetime'0001-01-01T00:00:00.0000000Z'");
    check_print("T eq datetime'9999-12-31T23:59:59.9999999Z'",
                "T eq datetime'9999-12-31T23:59:59.9999999Z'");
    check_print("G eq guid'12345678-9ABC-DEF0-0123-456789ABCDEF'",
                "G eq guid'12345678-9abc-def0-0123-456789abcdef'");
    check_print("X eq binary'00FF10'", "X eq X'00ff10'");
    check_print("X eq X''", "X eq X''");
}

static const char *const roundtrip_cases[] = {
    "PartitionKey eq 'p1'",
    "PartitionKey eq 'p1' and RowKey ge 'a' and RowKey lt 'b'",
    "(PartitionKey eq 'a' or PartitionKey eq 'b') and not (Age ge 18)",
    "Name eq 'O''Brien' or Name eq ''",
    "Price gt 1.0000000000000002 and Price lt 1.7976931348623157e308",
    "Tiny eq 2.2250738585072009e-308",
    "V eq NaN or V eq -INF or V ne INF",
    "Big le -9223372036854775808L or Big ge 9223372036854775807L",
    "When gt datetime'1601-01-01T00:00:00Z' and When lt datetime'2999-06-30T"
    "23:59:59.0000001-08:00'",
    "Timestamp ge datetime'2021-03-04T05:06:07.89Z'",
    "Id eq guid'00000000-0000-0000-0000-000000000000' or Id eq "
    "guid'ffffffff-ffff-ffff-ffff-ffffffffffff'",
    "Blob lt X'00' or Blob gt binary'ffff'",
    "not (not (not (Flag eq true)))",
    "true and (false or not true)",
    "'k' le RowKey",
    "Greek eq '\xce\xb1\xce\xb2\xce\xb3' and Emoji gt '\xf0\x9f\x98\x80'",
};

static void test_print_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof roundtrip_cases / sizeof *roundtrip_cases; i++) {
        mt_filter *f = parse_ok(roundtrip_cases[i]);
        char *p = mt_filter_print(f);
        mt_filter *g = parse_ok(p);
        if (!filter_equal(f, g))
            fail_msg("round trip of [%s] via [%s] differs", roundtrip_cases[i], p);
        char *q = mt_filter_print(g);
        assert_string_equal(p, q);
        mt_filter *c = mt_filter_clone(f);
        assert_true(filter_equal(f, c));
        free(p);
        free(q);
        mt_filter_free(c);
        mt_filter_free(g);
        mt_filter_free(f);
    }
}

static void test_builders(void **state)
{
    (void)state;
    mt_value pk = mt_v_str("p"), meta = mt_v_str(MT_RK_META);
    mt_value age = mt_v_i32(30);
    mt_filter *f = mt_filter_and(mt_filter_cmp("PartitionKey", MT_EQ, &pk),
                                 mt_filter_or(mt_filter_cmp("RowKey", MT_EQ, &meta),
                                              mt_filter_not(mt_filter_cmp("Age", MT_LT, &age))));
    assert_non_null(f);
    char *p = mt_filter_print(f);
    assert_string_equal(p, "(PartitionKey eq 'p') and ((RowKey eq "
                           "'_mtable_partition_meta') or (not (Age lt 30)))");
    mt_filter *g = parse_ok(p);
    assert_true(filter_equal(f, g));
    mt_filter *c = mt_filter_clone(f);
    assert_true(filter_equal(f, c));
    assert_ptr_not_equal(c->u.bin.l->u.cmp.lit.u.bytes.ptr, f->u.bin.l->u.cmp.lit.u.bytes.ptr);
    assert_string_equal(mt_filter_pinned_partition(c), "p");
    assert_int_equal(mt_filter_count_comparisons(c), 3);
    free(p);
    mt_filter_free(c);
    mt_filter_free(g);
    mt_filter_free(f);

    /* A builder given NULL (an upstream allocation failure) frees the
     * other operand and passes NULL on. */
    assert_null(mt_filter_and(mt_filter_cmp("A", MT_EQ, &age), NULL));
    assert_null(mt_filter_or(NULL, mt_filter_cmp("A", MT_EQ, &age)));
    assert_null(mt_filter_not(NULL));
    assert_null(mt_filter_clone(NULL));
    assert_null(mt_filter_print(NULL));
    mt_filter_free(NULL);
}

/* ------------------------------------------------------------------------ */
/* Evaluation                                                                */

static const uint8_t guid_mid[16] = {0x80};

static mt_entity *sample_entity(void)
{
    mt_entity *e = mt_entity_new("p1", "r\xc3\xa9");
    mt_value v;
    e->timestamp = INT64_C(637134336000000000); /* 2020-01-01 */
    v = mt_v_i32(30);
    mt_entity_set(e, "Age", &v);
    v = mt_v_i64(INT64_C(5000000000));
    mt_entity_set(e, "Big", &v);
    v = mt_v_dbl(2.5);
    mt_entity_set(e, "Price", &v);
    v = mt_v_dbl(NAN);
    mt_entity_set(e, "Nan", &v);
    v = mt_v_dbl(-0.0);
    mt_entity_set(e, "NegZero", &v);
    v = mt_v_bool(true);
    mt_entity_set(e, "Flag", &v);
    v = mt_v_str("Bob");
    mt_entity_set(e, "Name", &v);
    v = mt_v_str("\xf0\x9f\x98\x80"); /* U+1F600: UTF-16 D83D DE00 */
    mt_entity_set(e, "Emoji", &v);
    v = mt_v_datetime(INT64_C(621355968000000000)); /* 1970-01-01 */
    mt_entity_set(e, "When", &v);
    v = mt_v_guid(guid_mid);
    mt_entity_set(e, "Id", &v);
    v = mt_v_binary("\x01\x02", 2);
    mt_entity_set(e, "Blob", &v);
    return e;
}

static const struct {
    const char *text;
    bool want;
} eval_cases[] = {
    /* Comparisons per type. */
    {"Age eq 30", true},
    {"Age ne 30", false},
    {"Age gt 29 and Age ge 30 and Age lt 31 and Age le 30", true},
    {"Age gt 30 or Age lt 30", false},
    {"Big eq 5000000000L", true},
    {"Big gt 4999999999L and Big lt 5000000001L", true},
    {"Price eq 2.5 and Price gt 2.4999999999999996 and Price le 2.5", true},
    {"Price lt INF and Price gt -INF", true},
    {"Flag eq true and Flag gt false and Flag ge true", true},
    {"Flag eq True and Flag ne FALSE", true},
    {"Flag lt true", false},
    {"Name eq 'Bob' and Name gt 'Bo' and Name lt 'Bob ' and Name lt 'bob'", true},
    {"When eq datetime'1970-01-01T00:00:00Z'", true},
    {"When gt datetime'1969-12-31T23:59:59.9999999Z'", true},
    {"When lt datetime'1970-01-01T01:00:00+01:00'", false},
    {"Id gt guid'7fffffff-ffff-ffff-ffff-ffffffffffff'", true},
    {"Id lt guid'80000000-0000-0000-0000-000000000001'", true},
    {"Id eq guid'80000000-0000-0000-0000-000000000000'", true},
    {"Blob eq X'0102'", true},
    {"Blob gt X'01' and Blob lt X'010200' and Blob lt X'02'", true},
    {"Blob gt X'' and Blob ne X''", true},
    /* Strings order as UTF-16 code units: U+1F600 is a surrogate pair and
     * sorts below U+E000 but above U+D7FF. */
    {"Emoji lt '\xee\x80\x80' and Emoji gt '\xed\x9f\xbf'", true},
    /* Missing properties: every comparison false, "not" flips it. */
    {"Missing eq 1", false},
    {"Missing ne 1", false},
    {"Missing lt 1 or Missing ge 1", false},
    {"not (Missing eq 1)", true},
    {"not (Missing ne 1)", true},
    /* An Int32 literal is widened to an Int64 property. */
    {"Big gt 3 and Big ge 3 and Big ne 3", true},
    {"Big lt 3 or Big le 3 or Big eq 3", false},
    {"Big gt -2147483648 and Big gt 2147483647", true},
    {"not (Big lt 3)", true},
    /* ...and never to a Double one: every comparison false. */
    {"Price lt 3 or Price gt 2 or Price ne 2 or Price eq 2", false},
    {"NegZero eq 0 or NegZero ge 0 or Nan ne 0", false},
    {"not (Price lt 3)", true},
    /* Any other difference of EDM type is false, never coerced. */
    {"Age eq 30L", false},
    {"Age eq 30.0", false},
    {"Age ne 30.0", false},
    {"Age eq '30'", false},
    {"Big eq 5000000000.0", false},
    {"Price gt 2L", false},
    {"Price lt 3L", false},
    {"Flag eq 1 or When gt 1 or Id ne 0 or Blob ne 0 or Name ne 0", false},
    {"Flag eq 1", false},
    {"Name ne 1", false},
    {"When eq 621355968000000000L", false},
    {"not (Age eq 30L)", true},
    /* NaN: unordered, so only "ne" holds, even against NaN itself. */
    {"Nan eq NaN", false},
    {"Nan ne NaN", true},
    {"Nan lt 1.0 or Nan gt 1.0 or Nan le INF or Nan ge -INF", false},
    {"Nan ne 1.0", true},
    {"Price eq NaN", false},
    {"Price ne NaN", true},
    /* -0 equals +0 numerically. */
    {"NegZero eq 0.0 and NegZero eq -0.0 and NegZero ge 0.0", true},
    /* System properties. */
    {"PartitionKey eq 'p1' and RowKey eq 'r\xc3\xa9'", true},
    {"PartitionKey gt 'p' and PartitionKey lt 'p2'", true},
    {"RowKey gt 'r' and RowKey gt 'rz'", true},
    {"PartitionKey eq 1", false},
    {"Timestamp eq datetime'2020-01-01T00:00:00Z'", true},
    {"Timestamp gt datetime'2019-12-31T23:59:59Z'", true},
    {"Timestamp eq '2020-01-01T00:00:00Z'", false},
    {"partitionkey eq 'p1'", false},
    /* Bare booleans and structure. */
    {"true", true},
    {"false", false},
    {"not false", true},
    {"false or Age eq 30", true},
    {"true and Age eq 31", false},
    {"not (Age eq 30 and Flag eq false)", true},
};

static void test_eval(void **state)
{
    (void)state;
    mt_entity *e = sample_entity();
    for (size_t i = 0; i < sizeof eval_cases / sizeof *eval_cases; i++) {
        mt_filter *f = parse_ok(eval_cases[i].text);
        if (mt_filter_eval(f, e) != eval_cases[i].want)
            fail_msg("[%s] should be %s", eval_cases[i].text,
                     eval_cases[i].want ? "true" : "false");
        mt_filter_free(f);
    }
    assert_true(mt_filter_eval(NULL, e));
    mt_entity_free(e);
}

static void test_eval_unset_timestamp(void **state)
{
    (void)state;
    mt_entity *e = mt_entity_new("p", "r");
    mt_filter *f = parse_ok("Timestamp ge datetime'0001-01-01T00:00:00Z'");
    assert_false(mt_filter_eval(f, e));
    e->timestamp = 1;
    assert_true(mt_filter_eval(f, e));
    mt_filter_free(f);
    mt_entity_free(e);
}

/* ------------------------------------------------------------------------ */
/* Structure                                                                 */

static void test_pinned_partition(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *pin;
    } cases[] = {
        {"PartitionKey eq 'x'", "x"},
        {"'x' eq PartitionKey", "x"},
        {"PartitionKey eq 'x' and RowKey gt 'a'", "x"},
        {"RowKey gt 'a' and PartitionKey eq 'y'", "y"},
        {"PartitionKey eq 'x' and PartitionKey eq 'y'", "x"},
        {"PartitionKey eq 'x' or PartitionKey eq 'x'", "x"},
        {"(PartitionKey eq 'x' and A eq 1) or (B eq 2 and PartitionKey eq "
         "'x')",
         "x"},
        {"PartitionKey eq 'it''s'", "it's"},
        {"PartitionKey eq 'x' or PartitionKey eq 'y'", NULL},
        {"PartitionKey eq 'x' or A eq 1", NULL},
        {"PartitionKey ge 'x' and PartitionKey le 'x'", NULL},
        {"not (PartitionKey ne 'x')", NULL},
        {"not (PartitionKey eq 'x')", NULL},
        {"PartitionKey ne 'x'", NULL},
        {"PartitionKey eq 1", NULL},
        {"partitionKey eq 'x'", NULL},
        {"RowKey eq 'x'", NULL},
        {"true", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mt_filter *f = parse_ok(cases[i].text);
        const char *pin = mt_filter_pinned_partition(f);
        if (cases[i].pin && (!pin || strcmp(pin, cases[i].pin) != 0))
            fail_msg("[%s] pins %s", cases[i].text, pin ? pin : "nothing");
        if (!cases[i].pin && pin)
            fail_msg("[%s] pins %s", cases[i].text, pin);
        mt_filter_free(f);
    }
    assert_null(mt_filter_pinned_partition(NULL));
}

/* The key part goes to the side of a merge that must not see the rest of
 * the filter: it keeps exactly the conjuncts that read keys alone. */
static void test_key_part(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *keys; /* printed, or NULL */
    } cases[] = {
        {"PartitionKey eq 'x'", "PartitionKey eq 'x'"},
        {"PartitionKey eq 'x' and A eq 1", "PartitionKey eq 'x'"},
        {"A eq 1 and (RowKey ge 'a' and RowKey lt 'b')", "(RowKey ge 'a') and (RowKey lt 'b')"},
        {"(PartitionKey gt 'p' or RowKey ge 'r') and A eq 1 and not (RowKey eq 'z')",
         "((PartitionKey gt 'p') or (RowKey ge 'r')) and (not (RowKey eq 'z'))"},
        {"PartitionKey eq 'x' or A eq 1", NULL},
        {"not (PartitionKey eq 'x' and A eq 1)", NULL},
        {"A eq 1", NULL},
        {"Timestamp gt datetime'2024-01-01T00:00:00Z'", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mt_filter *f = parse_ok(cases[i].text);
        mt_filter *k = mt_filter_key_part(f);
        if (!cases[i].keys) {
            if (k)
                fail_msg("[%s] has a key part", cases[i].text);
        } else {
            mt_filter *want = parse_ok(cases[i].keys);
            if (!k || !filter_equal(k, want))
                fail_msg("[%s] key part differs from [%s]", cases[i].text, cases[i].keys);
            mt_filter_free(want);
        }
        mt_filter_free(k);
        mt_filter_free(f);
    }
    assert_null(mt_filter_key_part(NULL));
}

static void test_count_comparisons(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t n;
    } cases[] = {
        {"true", 0},
        {"not (true or false)", 0},
        {"A eq 1", 1},
        {"A eq 1 and true", 1},
        {"not (A eq 1)", 1},
        {"A eq 1 and B eq 2 or not (C eq 3)", 3},
        {"A eq 1 or A eq 2 or A eq 3 or A eq 4 or A eq 5 or A eq 6 or A eq 7 "
         "or A eq 8 or A eq 9 or A eq 10 or A eq 11 or A eq 12 or A eq 13 or "
         "A eq 14 or A eq 15 or A eq 16",
         16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mt_filter *f = parse_ok(cases[i].text);
        assert_int_equal(mt_filter_count_comparisons(f), cases[i].n);
        mt_filter_free(f);
    }
    assert_int_equal(mt_filter_count_comparisons(NULL), 0);
}

/* ------------------------------------------------------------------------ */
/* Malformed input                                                           */

static const char *const malformed[] = {
    "",
    "   ",
    "PartitionKey",
    "(PartitionKey)",
    "Age",
    "not Age",
    "not Age lt 30",
    "Age eq",
    "eq 1",
    "Age eq 1 and",
    "and Age eq 1",
    "Age eq 1 or or Age eq 2",
    "Age == 1",
    "Age EQ 1",
    "Age Eq 1",
    "Age foo 1",
    "Age eq 1 AND B eq 2",
    "Age eq 1 && B eq 2",
    "NOT (Age eq 1)",
    "Age eq 1 B",
    "Age eq 1 eq true",
    "(Age eq 1) eq true",
    "Age eq 1)",
    "(Age eq 1",
    "((Age eq 1)",
    "()",
    "Age eq B",
    "1 eq 1",
    "'a' eq 'a'",
    "Age eq null",
    "Age eq 1 and 5",
    "Age eq 1 or 'x'",
    "not 3",
    "S eq 'unterminated",
    "S eq 'still '' unterminated",
    "S eq foo'x'",
    "S eq 'a' 'b'",
    "T eq datetime'2020-01-01T00:00:00Q'",
    "Age eq -",
    "Age eq 1 ; drop",
    "Age eq 1 %20",
    "Age/Sub eq 1",
    "Age.Sub eq 1",
    "Age eq 1,2",
    "Age ge -INFx",
    "eq eq 1",
    "and eq 1",
    "Age eq not",
    "Age in (1, 2)",
    "startswith(Name, 'a')",
};

static void test_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++)
        bad(malformed[i]);
}

static void test_error_message_names_position(void **state)
{
    (void)state;
    mt_filter *f = NULL;
    const char *text = "Age eq 1 xyz";
    mt_status st = mt_filter_parse(text, strlen(text), &f);
    assert_int_equal(st.http, 400);
    assert_string_equal(st.code, MT_ERR_INVALID_INPUT);
    assert_non_null(strstr(st.message, "offset 9"));
    assert_non_null(strstr(st.message, "xyz"));
    text = "Age eq";
    st = mt_filter_parse(text, strlen(text), &f);
    assert_non_null(strstr(st.message, "end of input"));
}

/* The text is (pointer, length): nothing past len is ever read, and a NUL
 * inside it is rejected rather than silently ending the string. */
static void test_length_not_terminator(void **state)
{
    (void)state;
    const char *text = "Age eq 1 garbage that is ignored";
    mt_filter *f = NULL;
    mt_status st = mt_filter_parse(text, 8, &f);
    assert_true(mt_is_ok(&st));
    assert_int_equal(f->u.cmp.lit.u.i32, 1);
    mt_filter_free(f);

    /* Heap copies without a terminator, so ASan/valgrind see over-reads. */
    static const char *const cuts[] = {"S eq 'abc", "Age eq 12", "T eq X'0", "T eq datetime'2020",
                                       "(",         "not",       "A",        "Age eq -IN"};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        size_t n = strlen(cuts[i]);
        char *copy = malloc(n);
        memcpy(copy, cuts[i], n);
        st = mt_filter_parse(copy, n, &f);
        if (mt_is_ok(&st))
            mt_filter_free(f);
        free(copy);
    }
    parse_fails("Age eq 1\0 or B eq 2", 19);
    parse_fails("S eq 'a\0b'", 10);
    parse_fails(NULL, 0);
}

static char *repeat(const char *head, int n, const char *mid, const char *tail, int m)
{
    size_t hl = strlen(head), ml = strlen(mid), tl = strlen(tail);
    char *s = malloc(hl * n + ml + tl * m + 1), *p = s;
    for (int i = 0; i < n; i++, p += hl)
        memcpy(p, head, hl);
    memcpy(p, mid, ml);
    p += ml;
    for (int i = 0; i < m; i++, p += tl)
        memcpy(p, tail, tl);
    *p = '\0';
    return s;
}

static void test_nesting_limits(void **state)
{
    (void)state;
    char *s = repeat("(", 128, "A eq 1", ")", 128);
    mt_filter_free(parse_ok(s));
    free(s);
    s = repeat("(", 129, "A eq 1", ")", 129);
    bad(s);
    free(s);
    s = repeat("(", 100000, "A eq 1", ")", 100000);
    bad(s);
    free(s);
    s = repeat("not ", 60, "true", "", 0);
    mt_filter_free(parse_ok(s));
    free(s);
    s = repeat("not ", 65, "true", "", 0);
    bad(s);
    free(s);
    /* The printer's worst case, two levels of text per level of tree. */
    s = repeat("not (", 63, "true", ")", 63);
    mt_filter *f = parse_ok(s);
    char *p = mt_filter_print(f);
    mt_filter_free(parse_ok(p));
    free(p);
    mt_filter_free(f);
    free(s);
    s = repeat("not (", 65, "true", ")", 65);
    bad(s);
    free(s);
    /* A long flat chain builds a tall tree too; it is capped the same way
     * (the service would refuse it anyway: 15 comparisons at most). */
    s = repeat("A eq 1 or ", 40, "A eq 1", "", 0);
    mt_filter_free(parse_ok(s));
    free(s);
    s = repeat("A eq 1 or ", 100, "A eq 1", "", 0);
    bad(s);
    free(s);
    s = repeat(" ", 300 * 1024, "A eq 1", "", 0);
    bad(s);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_literals),
        cmocka_unit_test(test_bool_literals),
        cmocka_unit_test(test_int32_literals),
        cmocka_unit_test(test_int64_literals),
        cmocka_unit_test(test_double_literals),
        cmocka_unit_test(test_datetime_literals),
        cmocka_unit_test(test_guid_literals),
        cmocka_unit_test(test_binary_literals),
        cmocka_unit_test(test_precedence_and_associativity),
        cmocka_unit_test(test_operators_and_flipping),
        cmocka_unit_test(test_boolean_literals_as_filters),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_print_canonical),
        cmocka_unit_test(test_print_roundtrip),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_eval),
        cmocka_unit_test(test_eval_unset_timestamp),
        cmocka_unit_test(test_pinned_partition),
        cmocka_unit_test(test_key_part),
        cmocka_unit_test(test_count_comparisons),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_error_message_names_position),
        cmocka_unit_test(test_length_not_terminator),
        cmocka_unit_test(test_nesting_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

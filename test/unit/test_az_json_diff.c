/*
 * test_az_json_diff.c -- the one-pass JSON readers against the cJSON-based
 * oracle they replaced (test/fuzz/oracle_json.c): thousands of generated
 * entity bodies (every EDM type, annotations before, after or absent,
 * Int64 and Double as strings, Double's special values, escapes and
 * surrogate pairs in names and values, odata.* members, Timestamp,
 * duplicates, nested members), each also cut short and with bytes
 * changed, and a list of edge cases of the JSON syntax itself, must get
 * the same answer from both: acceptance, error code and message, keys,
 * properties in order, ETag, Timestamp and table name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "oracle_json.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void same_answer(const char *body, size_t len)
{
    const char *why = oracle_json_diff(body, len);
    if (why) {
        mt_entity *e = NULL, *f = NULL;
        unsigned k;
        mt_status a = az_json_entity_read(body, len, &e, &k);
        mt_status b = oracle_json_entity_read(body, len, &f, &k);
        mt_entity_free(e);
        mt_entity_free(f);
        fail_msg("%s (%s / %s) for [%.*s]", why, a.code, b.code, (int)(len > 400 ? 400 : len),
                 body);
    }
}

static bool accepted(const char *body, size_t len)
{
    mt_entity *e = NULL;
    unsigned keys = 0;
    mt_status st = az_json_entity_read(body, len, &e, &keys);
    mt_entity_free(e);
    return mt_is_ok(&st);
}

/* ------------------------------------------------------------------------ */
/* Generated bodies                                                          */

static const char *const names[] = {
    "Name",
    "Age",
    "_x",
    "Prop2",
    "Caf\\u00e9",
    "\\u0041ge",
    "Naïve",
    "x@odata.type",
    "odata.etag",
    "odata.metadata",
    "Timestamp",
    "PartitionKey",
    "RowKey",
    "Part\\u0069tionKey",
    "Bad Name",
    "9lives",
    "",
    "a@odata.other",
    "Emoji\\ud83d\\ude00",
};

static const char *const types[] = {
    "Edm.String",   "Edm.Int32", "Edm.Int64",  "Edm.Double", "Edm.Boolean",
    "Edm.DateTime", "Edm.Guid",  "Edm.Binary", "Edm.Nope",   "Edm.\\u0049nt32",
};

static const char *const values[] = {
    "\"text\"",
    "\"\"",
    "\"tab\\there \\\"quoted\\\" \\\\ \\/\"",
    "\"\\u00e9\\u4e2d\\ud83d\\ude00\"",
    "\"\\ud800\"",
    "\"\\udc00x\"",
    "\"\\u0000\"",
    "\"caf\xc3\xa9\"",
    "\"bad\xc3\"",
    "5",
    "-5",
    "0",
    "-0",
    "01",
    "5.0",
    "1e3",
    "1E+3",
    "-2.5e-3",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "1.",
    "-.5",
    "1e999",
    "12345678901234567890123456789012345678901234567890123456789012",
    "1234567890123456789012345678901234567890123456789012345678901234",
    "\"5\"",
    "\"-9223372036854775808\"",
    "\"+7\"",
    "\"NaN\"",
    "\"Infinity\"",
    "\"-Infinity\"",
    "\"INF\"",
    "\"-INF\"",
    "\"1.5\"",
    "\"true\"",
    "\"false\"",
    "true",
    "false",
    "null",
    "\"2024-01-02T03:04:05.1234567Z\"",
    "\"2024-01-02T03:04:05Z\"",
    "\"2024-13-02T03:04:05Z\"",
    "\"0d8f2c6e-3b6a-4c1e-9a9d-1f2e3d4c5b6a\"",
    "\"0d8f2c6e3b6a4c1e9a9d1f2e3d4c5b6a\"",
    "\"AQID\"",
    "\"AQI=\"",
    "\"A\"",
    "\"W/\\\"datetime'2024'\\\"\"",
    "{}",
    "[]",
    "{\"a\":[1,{}]}",
    "[1,2",
    "tru",
    "nul",
    "\"\\x\"",
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void put(char *b, size_t cap, size_t *o, const char *s)
{
    size_t n = strlen(s);
    if (*o + n < cap) {
        memcpy(b + *o, s, n);
        *o += n;
        b[*o] = '\0';
    }
}

/* A space or none, at random. */
static void ws(char *b, size_t cap, size_t *o)
{
    static const char *const spaces[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
    put(b, cap, o, spaces[rnd(N(spaces))]);
}

static void member(char *b, size_t cap, size_t *o, const char *name, const char *value)
{
    put(b, cap, o, "\"");
    put(b, cap, o, name);
    put(b, cap, o, "\"");
    ws(b, cap, o);
    put(b, cap, o, ":");
    ws(b, cap, o);
    put(b, cap, o, value);
}

/* One entity body: keys (or not), then members with annotations before,
 * after or without their property. */
static size_t gen_body(char *b, size_t cap)
{
    size_t o = 0;
    char name[64];
    b[0] = '\0';
    if (rnd(8) == 0)
        put(b, cap, &o, "\xEF\xBB\xBF");
    ws(b, cap, &o);
    put(b, cap, &o, "{");
    bool first = true;
    unsigned n = rnd(9);
    for (unsigned i = 0; i < n; i++) {
        const char *nm = names[rnd(N(names))];
        if (rnd(3) == 0) {
            snprintf(name, sizeof name, "P%u", rnd(12));
            nm = name;
        }
        const char *val = values[rnd(N(values))];
        int annot = (int)rnd(4); /* 0: none, 1: before, 2: after, 3: none */
        char an[96];
        snprintf(an, sizeof an, "%s@odata.type", nm);
        char tv[32];
        snprintf(tv, sizeof tv, "\"%s\"", types[rnd(N(types))]);
        if (annot == 1) {
            put(b, cap, &o, first ? "" : ",");
            ws(b, cap, &o);
            member(b, cap, &o, an, rnd(10) ? tv : "5");
            first = false;
        }
        put(b, cap, &o, first ? "" : ",");
        ws(b, cap, &o);
        member(b, cap, &o, nm, val);
        first = false;
        if (annot == 2) {
            put(b, cap, &o, ",");
            member(b, cap, &o, an, tv);
        }
    }
    ws(b, cap, &o);
    put(b, cap, &o, "}");
    ws(b, cap, &o);
    return o;
}

static void generated_bodies_agree(void **state)
{
    (void)state;
    char b[4096];
    unsigned ok = 0;
    rng_state = 0x9E3779B97F4A7C15u;
    for (int round = 0; round < 6000; round++) {
        size_t n = gen_body(b, sizeof b);
        same_answer(b, n);
        ok += accepted(b, n);
        /* The same body cut short, and with one byte changed. */
        size_t cut = n ? rnd((uint32_t)n) : 0;
        same_answer(b, cut);
        if (n) {
            char keep = b[cut];
            static const char repl[] = "\"\\{}[],:0-.eEu\x01\x80 ";
            b[cut] = repl[rnd(sizeof repl - 1)];
            same_answer(b, n);
            b[cut] = keep;
        }
    }
    /* Not a test of rejections only: a good share reads as entities. */
    assert_true(ok > 600);
}

/* ------------------------------------------------------------------------ */
/* Edge cases of the syntax                                                  */

static void syntax_edges_agree(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{}",
        " {} ",
        "{ }",
        "{}x",
        "{},",
        "[]",
        "\"x\"",
        "5",
        "",
        " ",
        "{",
        "}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{,\"a\":1}",
        "{\"a\":1 \"b\":2}",
        "{'a':1}",
        "{a:1}",
        "\xEF\xBB\xBF{}",
        "\xEF\xBB\xBF\xEF\xBB\xBF{}",
        "\xEF\xBB\xBF\xEF\xBB\xBF{} ",
        "\xEF\xBB\xBF\xEF\xBB\xBF\xEF\xBB\xBF{}",
        "\xEF\xBB\xBF",
        "\xEF\xBB\xBF \xEF\xBB\xBF{}",
        "{\"a\":1}\x0b",
        "\x0c{}",
        "{\"a\":\x01 1}",
        "{\"a\":\"\x7f\"}",
        "{\"a\":+1}",
        "{\"a\":1.5.5}",
        "{\"a\":1e}",
        "{\"a\":1e+}",
        "{\"a\":-}",
        "{\"a\":--1}",
        "{\"a\":.5}",
        "{\"a\":0x10}",
        "{\"a\":1-2}",
        "{\"a\":Infinity}",
        "{\"a\":NaN}",
        "{\"a\":-Infinity}",
        "{\"odata.x\":01}",
        "{\"odata.x\":1.}",
        "{\"odata.x\":-.5e+3}",
        "{\"odata.x\":1e5e5}",
        "{\"Timestamp\":[[[{}]]]}",
        "{\"odata.x\":{\"a\":[1,2,{\"b\":null}]}}",
        "{\"a@x\":\"\\uD83D\\uDE00\"}",
        "{\"a@x\":\"\\uD83D\"}",
        "{\"a@x\":\"\\uD83D\\u0041\"}",
        "{\"a@x\":\"\\uDE00\"}",
        "{\"a@x\":\"\\u00\"}",
        "{\"a@x\":\"\\u00G0\"}",
        "{\"a@x\":\"\\\"\"}",
        "{\"a@x\":\"\\'\"}",
        "{\"a@x\":\"\\U0041\"}",
        "{\"a\":\"x",
        "{\"a\":\"\\",
        "{\"a\":\"\\u",
        "{\"a\":tru}",
        "{\"a\":truex}",
        "{\"a\":nulll}",
        "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xf4\x90\x80\x80\"}",
        "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":\"\xe2\x82\"}",
        "{\"TableName\":\"t1\"}",
        "{\"TableName\":5}",
        "{\"TableName\":\"a\",\"TableName\":\"b\"}",
        "{\"TableName\":1,\"TableName\":\"b\"}",
        "{\"T\\u0061bleName\":\"x\\ny\"}",
        "{\"TableName\":\"t\",\"x\":{\"y\":[]}}",
        "{\"PartitionKey\":null,\"RowKey\":null}",
        "{\"PartitionKey\":5}",
        "{\"PartitionKey\":\"p\",\"PartitionKey@odata.type\":\"Edm.Int32\"}",
        "{\"Timestamp@odata.type\":\"Edm.DateTime\"}",
        "{\"@odata.type\":\"Edm.String\"}",
        "{\"x@odata.type\":\"Edm.String\"}",
        "{\"a\":1,\"a\":2}",
        "{\"odata.a\":1,\"odata.a\":2}",
        "{\"a\":1,\"A\":2}",
        "{\"a\":\"\\u00e9\",\"\\u0061\":2}",
        "{\"odata.etag\":\"W/\\\"x\\\"\",\"Timestamp\":\"2024-01-02T03:04:05Z\",\"a\":1}",
        "{\"odata.etag\":5,\"odata.etag\":\"e\"}",
        "{\"Timestamp\":\"bad\"}",
        "{\"Timestamp\":\"2024-01-02T03:04:05Z\",\"Timestamp\":\"2025-01-02T03:04:05Z\"}",
    };
    for (size_t i = 0; i < N(bodies); i++)
        same_answer(bodies[i], strlen(bodies[i]));
    same_answer("{\"a\":1}\0", 8); /* a NUL after the object */
}

/* Long and deep bodies: numbers of up to 400 digits, nesting
 * around 1000, member counts around 1024, a string of 32 Ki units. */
static void limits_agree(void **state)
{
    (void)state;
    size_t cap = 1 << 20;
    char *b = malloc(cap);
    assert_non_null(b);
    for (int digits = 60; digits <= 400; digits += 17) {
        size_t o = (size_t)snprintf(b, cap, "{\"odata.n\":");
        memset(b + o, '7', (size_t)digits);
        o += (size_t)digits;
        o += (size_t)snprintf(b + o, cap - o, "}");
        same_answer(b, o);
    }
    for (int depth = 997; depth <= 1001; depth++) {
        size_t o = (size_t)snprintf(b, cap, "{\"TableName\":\"t\",\"x\":");
        for (int d = 0; d < depth; d++)
            b[o++] = '[';
        for (int d = 0; d < depth; d++)
            b[o++] = ']';
        b[o++] = '}';
        same_answer(b, o);
    }
    for (int count = 1022; count <= 1027; count++) {
        size_t o = (size_t)snprintf(b, cap, "{");
        for (int k = 0; k < count; k++)
            o += (size_t)snprintf(b + o, cap - o, "%s\"odata.m%d\":%d", k ? "," : "", k, k);
        o += (size_t)snprintf(b + o, cap - o, ",\"TableName\":\"t\",\"P\":1}");
        same_answer(b, o);
    }
    for (int units = 32766; units <= 32769; units++) {
        size_t o = (size_t)snprintf(b, cap, "{\"S\":\"");
        memset(b + o, 'x', (size_t)units);
        o += (size_t)units;
        o += (size_t)snprintf(b + o, cap - o, "\"}");
        same_answer(b, o);
    }
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(generated_bodies_agree),
        cmocka_unit_test(syntax_edges_agree),
        cmocka_unit_test(limits_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

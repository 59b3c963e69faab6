/*
 * test_entity.c -- EDM values, entities, key order, phases and statuses.
 *
 * The key-order cases matter most: the proxy merge-joins two backends'
 * streams, so mt_str_cmp must agree with the backends' ordinal UTF-16
 * order, including the surrogate-pair case where it differs from UTF-8
 * byte order, and must stay a total order on ill-formed input.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mt.h"

/* ------------------------------------------------------------------------ */
/* Status.                                                                   */

static void test_status(void **state)
{
    (void)state;
    mt_status ok = mt_ok();
    assert_true(mt_is_ok(&ok));
    assert_int_equal(ok.index, -1);
    assert_string_equal(ok.code, "");

    mt_status e = mt_error(404, MT_ERR_NOT_FOUND, "row %s/%d", "p", 7);
    assert_false(mt_is_ok(&e));
    assert_int_equal(e.http, 404);
    assert_int_equal(e.index, -1);
    assert_string_equal(e.code, "ResourceNotFound");
    assert_string_equal(e.message, "row p/7");

    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    e = mt_error(400, MT_ERR_INVALID_INPUT, "%s", big);
    assert_int_equal(strlen(e.message), MT_MSG_MAX - 1);
}

/* ------------------------------------------------------------------------ */
/* Values.                                                                   */

/* Stores v in an entity, clones the entity, and checks the clone's value
 * is equal to v but owns its own bytes. */
static void round_trip(const mt_value *v, mt_edm type)
{
    assert_int_equal(v->type, type);
    mt_entity *e = mt_entity_new("p", "r");
    mt_entity_set(e, "v", v);
    mt_entity *c = mt_entity_clone(e);
    mt_entity_free(e);
    const mt_value *got = mt_entity_get(c, "v");
    assert_non_null(got);
    assert_int_equal(got->type, type);
    assert_true(mt_value_equal(got, v));
    if (type == MT_EDM_STRING || type == MT_EDM_BINARY) {
        assert_ptr_not_equal(got->u.bytes.ptr, v->u.bytes.ptr);
        assert_int_equal(got->u.bytes.ptr[got->u.bytes.len], '\0');
    }

    mt_value copy;
    mt_value_copy(&copy, got);
    assert_true(mt_value_equal(&copy, v));
    mt_value_clear(&copy);
    mt_entity_free(c);
}

static void test_value_round_trips(void **state)
{
    (void)state;
    mt_value v = mt_v_str("héllo \xF0\x9F\x98\x80");
    round_trip(&v, MT_EDM_STRING);
    v = mt_v_str("");
    round_trip(&v, MT_EDM_STRING);
    v = mt_v_strn("abcdef", 3);
    assert_int_equal(v.u.bytes.len, 3);
    round_trip(&v, MT_EDM_STRING);

    v = mt_v_i32(INT32_MIN);
    round_trip(&v, MT_EDM_INT32);
    v = mt_v_i64(INT64_MAX);
    round_trip(&v, MT_EDM_INT64);
    v = mt_v_dbl(3.25);
    round_trip(&v, MT_EDM_DOUBLE);
    v = mt_v_dbl(-INFINITY);
    round_trip(&v, MT_EDM_DOUBLE);
    v = mt_v_dbl(NAN);
    round_trip(&v, MT_EDM_DOUBLE);
    v = mt_v_bool(true);
    round_trip(&v, MT_EDM_BOOLEAN);
    v = mt_v_datetime(636000000000000000LL);
    round_trip(&v, MT_EDM_DATETIME);
    const uint8_t g[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    v = mt_v_guid(g);
    round_trip(&v, MT_EDM_GUID);
    const char bin[5] = {0, 1, 0, (char)0xFF, 0};
    v = mt_v_binary(bin, sizeof bin);
    round_trip(&v, MT_EDM_BINARY);
    v = mt_v_binary(bin, 0);
    round_trip(&v, MT_EDM_BINARY);
}

static void test_value_equality(void **state)
{
    (void)state;
    mt_value a = mt_v_dbl(NAN), b = mt_v_dbl(NAN);
    assert_true(mt_value_equal(&a, &b)); /* the same NaN bits */
    a = mt_v_dbl(0.0), b = mt_v_dbl(-0.0);
    assert_false(mt_value_equal(&a, &b));
    b = mt_v_dbl(0.0);
    assert_true(mt_value_equal(&a, &b));

    a = mt_v_i32(1), b = mt_v_i64(1);
    assert_false(mt_value_equal(&a, &b)); /* types differ */
    a = mt_v_datetime(1), b = mt_v_i64(1);
    assert_false(mt_value_equal(&a, &b));
    a = mt_v_str("ab"), b = mt_v_binary("ab", 2);
    assert_false(mt_value_equal(&a, &b));
    a = mt_v_str("ab"), b = mt_v_strn("abc", 2);
    assert_true(mt_value_equal(&a, &b));
    b = mt_v_str("abc");
    assert_false(mt_value_equal(&a, &b));

    uint8_t g1[16] = {0}, g2[16] = {0};
    g2[15] = 1;
    a = mt_v_guid(g1), b = mt_v_guid(g2);
    assert_false(mt_value_equal(&a, &b));
    a = mt_v_bool(false), b = mt_v_bool(true);
    assert_false(mt_value_equal(&a, &b));
}

static void test_edm_names(void **state)
{
    (void)state;
    assert_string_equal(mt_edm_name(MT_EDM_STRING), "Edm.String");
    assert_string_equal(mt_edm_name(MT_EDM_INT32), "Edm.Int32");
    assert_string_equal(mt_edm_name(MT_EDM_INT64), "Edm.Int64");
    assert_string_equal(mt_edm_name(MT_EDM_DOUBLE), "Edm.Double");
    assert_string_equal(mt_edm_name(MT_EDM_BOOLEAN), "Edm.Boolean");
    assert_string_equal(mt_edm_name(MT_EDM_DATETIME), "Edm.DateTime");
    assert_string_equal(mt_edm_name(MT_EDM_GUID), "Edm.Guid");
    assert_string_equal(mt_edm_name(MT_EDM_BINARY), "Edm.Binary");
}

/* ------------------------------------------------------------------------ */
/* Entities.                                                                 */

static void test_entity_props(void **state)
{
    (void)state;
    mt_entity *e = mt_entity_new("pk", "rk");
    assert_string_equal(e->pk, "pk");
    assert_string_equal(e->rk, "rk");
    assert_null(e->etag);
    assert_int_equal(e->nprops, 0);

    char name[8];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "p%d", i);
        mt_value v = mt_v_i32(i);
        mt_entity_set(e, name, &v);
    }
    assert_int_equal(e->nprops, 20);

    /* Overwrite keeps the position and may change the type. */
    mt_value s = mt_v_str("five");
    mt_entity_set(e, "p5", &s);
    assert_int_equal(e->nprops, 20);
    assert_string_equal(e->props[5].name, "p5");
    assert_true(mt_value_equal(mt_entity_get(e, "p5"), &s));

    /* Setting a property from its own value is safe. */
    mt_entity_set(e, "p5", mt_entity_get(e, "p5"));
    assert_true(mt_value_equal(mt_entity_get(e, "p5"), &s));

    /* Remove keeps insertion order of the rest. */
    assert_true(mt_entity_remove(e, "p3"));
    assert_false(mt_entity_remove(e, "p3"));
    assert_null(mt_entity_get(e, "p3"));
    assert_int_equal(e->nprops, 19);
    assert_string_equal(e->props[2].name, "p2");
    assert_string_equal(e->props[3].name, "p4");
    assert_null(mt_entity_get(e, "missing"));

    mt_entity_set_etag(e, "W/\"x\"");
    assert_string_equal(e->etag, "W/\"x\"");
    mt_entity_set_etag(e, e->etag); /* aliasing its own string */
    assert_string_equal(e->etag, "W/\"x\"");
    mt_entity_set_etag(e, NULL);
    assert_null(e->etag);
    mt_entity_free(e);
    mt_entity_free(NULL);
}

static void test_entity_clone(void **state)
{
    (void)state;
    mt_entity *e = mt_entity_new("p", "r");
    mt_value v = mt_v_str("x");
    mt_entity_set(e, "a", &v);
    mt_entity_set_etag(e, "W/\"1\"");
    e->timestamp = 42;
    mt_entity *c = mt_entity_clone(e);
    assert_ptr_not_equal(c->pk, e->pk);
    assert_string_equal(c->etag, "W/\"1\"");
    assert_int_equal(c->timestamp, 42);
    assert_true(mt_entity_same_content(e, c));
    /* The clone is independent. */
    mt_value w = mt_v_str("y");
    mt_entity_set(c, "a", &w);
    assert_true(mt_value_equal(mt_entity_get(e, "a"), &v));
    mt_entity_free(e);
    mt_entity_free(c);
}

static void test_entity_same_content(void **state)
{
    (void)state;
    mt_value one = mt_v_i32(1), two = mt_v_i64(2), s = mt_v_str("s");
    mt_entity *a = mt_entity_new("p", "r");
    mt_entity *b = mt_entity_new("p", "r");
    mt_entity_set(a, "x", &one);
    mt_entity_set(a, "y", &two);
    mt_entity_set(b, "y", &two); /* other order */
    mt_entity_set(b, "x", &one);
    mt_entity_set_etag(a, "W/\"a\"");
    b->timestamp = 99;
    assert_true(mt_entity_same_content(a, b)); /* order, ETag, time ignored */

    mt_entity_set(b, "z", &s);
    assert_false(mt_entity_same_content(a, b)); /* extra property */
    assert_false(mt_entity_same_content(b, a));
    mt_entity_remove(b, "z");
    mt_value one64 = mt_v_i64(1);
    mt_entity_set(b, "x", &one64);
    assert_false(mt_entity_same_content(a, b)); /* type differs */
    mt_entity_set(b, "x", &one);
    assert_true(mt_entity_same_content(a, b));

    mt_entity *c = mt_entity_new("p", "r2");
    mt_entity_set(c, "x", &one);
    mt_entity_set(c, "y", &two);
    assert_false(mt_entity_same_content(a, c)); /* keys differ */
    mt_entity_free(a);
    mt_entity_free(b);
    mt_entity_free(c);
}

/* ------------------------------------------------------------------------ */
/* Key order.                                                                */

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

static void assert_less(const char *a, const char *b)
{
    assert_int_equal(sign(mt_str_cmp(a, b)), -1);
    assert_int_equal(sign(mt_str_cmp(b, a)), 1);
}

static void test_key_order_ascii(void **state)
{
    (void)state;
    assert_int_equal(mt_str_cmp("abc", "abc"), 0);
    assert_int_equal(mt_str_cmp("", ""), 0);
    assert_less("", "a");
    assert_less("a", "aa");
    assert_less("a", "b");
    assert_less("A", "a"); /* ordinal: case matters, upper first */
    assert_less("Z", "a");
    assert_less("0", "A");
    assert_less("a b", "ab");
    assert_less("row10", "row9"); /* not numeric */
    assert_less("\x7f", "\xc2\x80");
}

static void test_key_order_unicode(void **state)
{
    (void)state;
    const char *grin = "\xF0\x9F\x98\x80";   /* U+1F600 = D83D DE00 */
    const char *e000 = "\xEE\x80\x80";       /* U+E000 */
    const char *fffd = "\xEF\xBF\xBD";       /* U+FFFD */
    const char *d7ff = "\xED\x9F\xBF";       /* U+D7FF */
    const char *max = "\xF4\x8F\xBF\xBF";    /* U+10FFFF = DBFF DFFF */
    const char *u10000 = "\xF0\x90\x80\x80"; /* U+10000 = D800 DC00 */

    /* UTF-8 byte order would put the astral code points above U+E000;
     * UTF-16 order puts them below. */
    assert_true(strcmp(grin, e000) > 0);
    assert_less(grin, e000);
    assert_less(grin, fffd);
    assert_less(max, e000);
    assert_less(d7ff, u10000);
    assert_less(u10000, grin);
    assert_less(grin, max);
    assert_less("z", "\xC3\xA9");        /* U+00E9 after ASCII */
    assert_less("\xC3\xA9", "\xDF\xBF"); /* U+00E9 < U+07FF */
    assert_less("\xDF\xBF", "\xE0\xA0\x80");
    /* Decided by the first differing unit even with a longer tail. */
    assert_less("a\xF0\x9F\x98\x80zzz", "a\xEE\x80\x80");
    assert_less("ab", "ab\xF0\x9F\x98\x80");
    assert_int_equal(mt_str_cmp(grin, "\xF0\x9F\x98\x80"), 0);
}

static void test_key_order_invalid_utf8(void **state)
{
    (void)state;
    /* Ill-formed inputs: lone continuation, truncated sequences, overlong
     * forms, an encoded surrogate, a stray lead byte, beyond U+10FFFF. */
    const char *s[] = {
        "",
        "a",
        "\x80",
        "\xC3",
        "\xC3\xA9",
        "\xE9",
        "\xF0\x9F",
        "\xF0\x9F\x98\x80",
        "\xC0\xAF",
        "/",
        "\xED\xA0\x80",
        "\xED\x9F\xBF",
        "\xF5\x80",
        "\xFF",
        "\xEE\x80\x80",
        "\xE0\x80\x80",
        "a\xC3",
        "a\xC3\xA9",
        "\xF4\x90\x80\x80",
    };
    size_t n = sizeof s / sizeof *s;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            int c = sign(mt_str_cmp(s[i], s[j]));
            /* Antisymmetric, and equal only for identical strings. */
            assert_int_equal(c, -sign(mt_str_cmp(s[j], s[i])));
            assert_int_equal(c == 0, strcmp(s[i], s[j]) == 0);
            /* Transitive. */
            for (size_t k = 0; k < n; k++) {
                if (c < 0 && mt_str_cmp(s[j], s[k]) < 0)
                    assert_true(mt_str_cmp(s[i], s[k]) < 0);
            }
        }
    }
    /* A stray 0xE9 byte and a well-formed U+00E9 are distinct keys. */
    assert_int_not_equal(mt_str_cmp("\xE9", "\xC3\xA9"), 0);
}

static void test_key_cmp(void **state)
{
    (void)state;
    assert_int_equal(mt_key_cmp("p", "r", "p", "r"), 0);
    assert_true(mt_key_cmp("a", "z", "b", "a") < 0); /* pk first */
    assert_true(mt_key_cmp("b", "a", "a", "z") > 0);
    assert_true(mt_key_cmp("p", "a", "p", "b") < 0);
    assert_true(mt_key_cmp("p", "", "p", "a") < 0);
    assert_true(mt_key_cmp("p\xF0\x9F\x98\x80", "", "p\xEE\x80\x80", "") < 0);
}

static void test_key_set(void **state)
{
    (void)state;
    mt_key k = {0};
    mt_key_set(&k, "p", "r");
    assert_string_equal(k.pk, "p");
    assert_string_equal(k.rk, "r");
    mt_key_set(&k, k.rk, k.pk); /* from its own strings */
    assert_string_equal(k.pk, "r");
    assert_string_equal(k.rk, "p");
    mt_key_clear(&k);
    assert_null(k.pk);
    assert_null(k.rk);
    mt_key_clear(&k);
}

static void test_entity_list(void **state)
{
    (void)state;
    mt_entity_list l = {0};
    for (int i = 0; i < 100; i++) {
        char rk[24];
        snprintf(rk, sizeof rk, "%03d", i);
        mt_entity_list_push(&l, mt_entity_new("p", rk));
    }
    assert_int_equal(l.n, 100);
    assert_string_equal(l.v[57]->rk, "057");
    mt_entity_list_clear(&l);
    assert_int_equal(l.n, 0);
    assert_null(l.v);
    mt_entity_list_clear(&l);
}

/* ------------------------------------------------------------------------ */
/* Phases.                                                                   */

static void test_phase_names(void **state)
{
    (void)state;
    static const char *names[MT_PHASE_COUNT] = {
        "use_old_hide_metadata", "prefer_old", "prefer_new", "use_new_with_tombstones",
        "use_new_hide_metadata",
    };
    for (int i = 0; i < MT_PHASE_COUNT; i++) {
        assert_string_equal(mt_phase_name((mt_phase)i), names[i]);
        mt_phase p = (mt_phase)-1;
        assert_true(mt_phase_parse(names[i], &p));
        assert_int_equal(p, i);
    }
    mt_phase p = MT_PHASE_PREFER_NEW;
    assert_false(mt_phase_parse("PREFER_OLD", &p));
    assert_false(mt_phase_parse("", &p));
    assert_false(mt_phase_parse("prefer_old ", &p));
    assert_false(mt_phase_parse(NULL, &p));
    assert_int_equal(p, MT_PHASE_PREFER_NEW); /* untouched on failure */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_value_round_trips),
        cmocka_unit_test(test_value_equality),
        cmocka_unit_test(test_edm_names),
        cmocka_unit_test(test_entity_props),
        cmocka_unit_test(test_entity_clone),
        cmocka_unit_test(test_entity_same_content),
        cmocka_unit_test(test_key_order_ascii),
        cmocka_unit_test(test_key_order_unicode),
        cmocka_unit_test(test_key_order_invalid_utf8),
        cmocka_unit_test(test_key_cmp),
        cmocka_unit_test(test_key_set),
        cmocka_unit_test(test_entity_list),
        cmocka_unit_test(test_phase_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_az_format.c -- the small text formats: Edm.DateTime text (core's
 * datetime.c, which every payload and the filter share), RFC 1123 dates,
 * base64 and percent-encoding.
 *
 * Known values come from the RFCs and from .NET's tick arithmetic; the
 * sweeps check that format and parse are inverse over the whole range,
 * including the calendar's corners (leap days, century years, year 1 and
 * year 9999).
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

#define TICKS_PER_SECOND INT64_C(10000000)
#define TICKS_PER_DAY (INT64_C(86400) * TICKS_PER_SECOND)
#define TICKS_MAX INT64_C(3155378975999999999)
#define TICKS_UNIX_EPOCH INT64_C(621355968000000000)

/* ------------------------------------------------------------------------ */
/* Edm.DateTime                                                              */

static void check_format(int64_t ticks, const char *want)
{
    char out[MT_DATETIME_MAX];
    mt_datetime_format(ticks, out);
    assert_string_equal(out, want);
}

static void check_parse(const char *text, int64_t want)
{
    int64_t t = -1;
    if (!mt_datetime_parse(text, strlen(text), &t))
        fail_msg("[%s] did not parse", text);
    assert_int_equal(t, want);
}

static void check_reject(const char *text)
{
    int64_t t = 42;
    if (mt_datetime_parse(text, strlen(text), &t))
        fail_msg("[%s] parsed to %lld", text, (long long)t);
    assert_int_equal(t, 42);
}

static void test_datetime_format(void **state)
{
    (void)state;
    check_format(0, "0001-01-01T00:00:00.0000000Z");
    check_format(1, "0001-01-01T00:00:00.0000001Z");
    check_format(TICKS_UNIX_EPOCH, "1970-01-01T00:00:00.0000000Z");
    check_format(INT64_C(637185764961234567), "2020-02-29T12:34:56.1234567Z");
    check_format(TICKS_MAX, "9999-12-31T23:59:59.9999999Z");
    /* Year ends of a 400-year cycle and of a leap cycle. */
    check_format(INT64_C(630822816000000000) - 1, "1999-12-31T23:59:59.9999999Z");
    check_format(INT64_C(630822816000000000), "2000-01-01T00:00:00.0000000Z");
    check_format(INT64_C(631139040000000000) - TICKS_PER_DAY, "2000-12-31T00:00:00.0000000Z");
    check_format(INT64_C(631139040000000000), "2001-01-01T00:00:00.0000000Z");
    check_format(INT64_C(599266080000000000), "1900-01-01T00:00:00.0000000Z");
    check_format(INT64_C(599266080000000000) + 59 * TICKS_PER_DAY,
                 "1900-03-01T00:00:00.0000000Z"); /* 1900 has no 29 Feb */
    check_format(146097 * TICKS_PER_DAY - 1, "0400-12-31T23:59:59.9999999Z");
    check_format(146097 * TICKS_PER_DAY, "0401-01-01T00:00:00.0000000Z");
    check_format(1460 * TICKS_PER_DAY, "0004-12-31T00:00:00.0000000Z");
    /* Out of range: clamped to what Azure can hold. */
    check_format(-1, "0001-01-01T00:00:00.0000000Z");
    check_format(INT64_MIN, "0001-01-01T00:00:00.0000000Z");
    check_format(INT64_MAX, "9999-12-31T23:59:59.9999999Z");
}

static void test_datetime_parse(void **state)
{
    (void)state;
    check_parse("0001-01-01T00:00:00Z", 0);
    check_parse("0001-01-01T00:00:00.0000001Z", 1);
    check_parse("1970-01-01T00:00:00Z", TICKS_UNIX_EPOCH);
    check_parse("2020-02-29T12:34:56.1234567Z", INT64_C(637185764961234567));
    check_parse("9999-12-31T23:59:59.9999999Z", TICKS_MAX);
    /* 0..7 fractional digits, optional seconds, suffixes. */
    check_parse("2020-01-01T00:00Z", INT64_C(637134336000000000));
    check_parse("2020-01-01T00:00", INT64_C(637134336000000000));
    check_parse("2020-01-01T00:00:00", INT64_C(637134336000000000));
    check_parse("2020-01-01T00:00:00.1", INT64_C(637134336001000000));
    check_parse("2020-01-01T00:00:00.12Z", INT64_C(637134336001200000));
    check_parse("2020-01-01T00:00:00.123Z", INT64_C(637134336001230000));
    check_parse("2020-01-01T00:00:00.123456Z", INT64_C(637134336001234560));
    check_parse("2020-01-01T00:00:00.0000000Z", INT64_C(637134336000000000));
    check_parse("2020-01-01T01:30:00+01:30", INT64_C(637134336000000000));
    check_parse("2019-12-31T23:00:00-01:00", INT64_C(637134336000000000));
    check_parse("2020-01-01T14:00:00+14:00", INT64_C(637134336000000000));
    check_parse("2019-12-31T10:00:00-14:00", INT64_C(637134336000000000));
    check_parse("2020-01-01T00:00:00+00:00", INT64_C(637134336000000000));
    check_parse("0001-01-01T00:00:00-00:01", 60 * TICKS_PER_SECOND);
    check_parse("9999-12-31T23:59:59+01:00", TICKS_MAX - 3600 * TICKS_PER_SECOND - 9999999);
}

static void test_datetime_reject(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "2020",
        "2020-01-01",
        "2020-01-01T",
        "2020-01-01T00",
        "2020-01-01T00:0",
        "2019-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2020-13-01T00:00:00Z",
        "2020-00-01T00:00:00Z",
        "2020-04-31T00:00:00Z",
        "2020-01-00T00:00:00Z",
        "2020-01-01T24:00:00Z",
        "2020-01-01T00:60:00Z",
        "2020-01-01T00:00:60Z",
        "2020-01-01T00:00:00.12345678Z",
        "2020-01-01T00:00:00.Z",
        "2020-01-01T00:00:00.",
        "2020-01-01 00:00:00Z",
        "2020-01-01t00:00:00Z",
        "2020-01-01T00:00:00z",
        "2020-01-01T00:00:00+15:00",
        "2020-01-01T00:00:00+14:01",
        "2020-01-01T00:00:00+01",
        "2020-01-01T00:00:00+0100",
        "2020-01-01T00:00:00+01:60",
        "2020-01-01T00:00:00ZZ",
        "2020-01-01T00:00:00Z ",
        " 2020-01-01T00:00:00Z",
        "2020-1-01T00:00:00Z",
        "0000-12-31T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "-001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-00:01",
        "2020-01-01T00:00:00GMT",
        "2020-01-01T00:00:.5Z",
        "２020-01-01T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_reject(bad[i]);
    /* The length bounds the text: no terminator is needed or read. */
    const char buf[] = "2020-01-01T00:00:00Zjunk";
    int64_t t;
    assert_true(mt_datetime_parse(buf, 20, &t));
    assert_int_equal(t, INT64_C(637134336000000000));
    assert_false(mt_datetime_parse(buf, 21, &t));
    assert_false(mt_datetime_parse(NULL, 0, &t));
}

/* format then parse is the identity on the whole range. */
static void test_datetime_round_trip(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t ticks = (int64_t)(x % (uint64_t)(TICKS_MAX + 1));
        if (i < 4000) /* every day boundary of the first and last years */
            ticks = i < 2000 ? i * TICKS_PER_DAY - (i & 1) : TICKS_MAX - (i - 2000) * TICKS_PER_DAY;
        char text[MT_DATETIME_MAX];
        int64_t back;
        mt_datetime_format(ticks, text);
        assert_int_equal(strlen(text), 28);
        if (!mt_datetime_parse(text, strlen(text), &back) || back != ticks)
            fail_msg("%lld -> %s -> %lld", (long long)ticks, text, (long long)back);
    }
}

/* ------------------------------------------------------------------------ */
/* RFC 1123                                                                  */

static void check_rfc1123(time_t t, const char *want)
{
    char out[32];
    time_t back;
    az_rfc1123_format(t, out);
    assert_string_equal(out, want);
    assert_true(az_rfc1123_parse(out, &back));
    assert_int_equal(back, t);
}

static void test_rfc1123(void **state)
{
    (void)state;
    check_rfc1123(0, "Thu, 01 Jan 1970 00:00:00 GMT");
    check_rfc1123(1893456000, "Tue, 01 Jan 2030 00:00:00 GMT");
    check_rfc1123(1709210096, "Thu, 29 Feb 2024 12:34:56 GMT");
    check_rfc1123(951782400, "Tue, 29 Feb 2000 00:00:00 GMT");
    check_rfc1123(784111777, "Sun, 06 Nov 1994 08:49:37 GMT"); /* RFC 7231's example */
    check_rfc1123(-1, "Wed, 31 Dec 1969 23:59:59 GMT");
    check_rfc1123(-2208988800, "Mon, 01 Jan 1900 00:00:00 GMT");
    check_rfc1123(253402300799, "Fri, 31 Dec 9999 23:59:59 GMT");
    check_rfc1123(-62135596800, "Mon, 01 Jan 0001 00:00:00 GMT");
    /* Every day for sixty years round-trips and names the right weekday. */
    static const char *const wd[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    for (int64_t d = -10000; d < 12000; d++) {
        char out[32];
        time_t back;
        az_rfc1123_format((time_t)(d * 86400 + 3661), out);
        assert_memory_equal(out, wd[((d % 7) + 7) % 7], 3);
        assert_true(az_rfc1123_parse(out, &back));
        assert_int_equal(back, d * 86400 + 3661);
    }
}

static void test_rfc1123_reject(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "Thu, 01 Jan 1970 00:00:00 UTC",
        "Thu, 01 Jan 1970 00:00:00 gmt",
        "thu, 01 Jan 1970 00:00:00 GMT",
        "Thu, 01 jan 1970 00:00:00 GMT",
        "Xyz, 01 Jan 1970 00:00:00 GMT",
        "Thu, 1 Jan 1970 00:00:00 GMT",
        "Thu, 01 Jan 70 00:00:00 GMT",
        "Thu, 32 Jan 1970 00:00:00 GMT",
        "Thu, 00 Jan 1970 00:00:00 GMT",
        "Thu, 29 Feb 2023 00:00:00 GMT",
        "Thu, 01 Jan 1970 24:00:00 GMT",
        "Thu, 01 Jan 1970 00:60:00 GMT",
        "Thu, 01 Jan 1970 00:00:60 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT ",
        "Thu 01 Jan 1970 00:00:00 GMTx",
        "Thursday, 01-Jan-70 00:00:00 GMT",
        "Thu Jan  1 00:00:00 1970",
        "Thu, 01 Jan 0000 00:00:00 GMT",
        "Thu, 01 Jan 1970 0a:00:00 GMT",
    };
    time_t t = 7;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (az_rfc1123_parse(bad[i], &t))
            fail_msg("[%s] parsed", bad[i]);
    assert_false(az_rfc1123_parse(NULL, &t));
    assert_int_equal(t, 7);
    /* The weekday is a name, not checked against the date (as HTTP does). */
    assert_true(az_rfc1123_parse("Mon, 01 Jan 1970 00:00:00 GMT", &t));
    assert_int_equal(t, 0);
}

/* ------------------------------------------------------------------------ */
/* Base64                                                                    */

static void check_b64(const char *plain, const char *coded)
{
    char *e = az_base64_encode((const uint8_t *)plain, strlen(plain));
    assert_string_equal(e, coded);
    free(e);
    uint8_t *d = NULL;
    size_t n = 99;
    assert_true(az_base64_decode(coded, strlen(coded), &d, &n));
    assert_non_null(d);
    assert_int_equal(n, strlen(plain));
    assert_memory_equal(d, plain, n);
    free(d);
}

static void test_base64_vectors(void **state)
{
    (void)state;
    /* RFC 4648, section 10. */
    check_b64("", "");
    check_b64("f", "Zg==");
    check_b64("fo", "Zm8=");
    check_b64("foo", "Zm9v");
    check_b64("foob", "Zm9vYg==");
    check_b64("fooba", "Zm9vYmE=");
    check_b64("foobar", "Zm9vYmFy");
    const uint8_t all[] = {0xfb, 0xff, 0xbf, 0x00, 0x10};
    char *e = az_base64_encode(all, sizeof all);
    assert_string_equal(e, "+/+/ABA=");
    free(e);
}

static void test_base64_reject(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zg",       "Zg=",  "Z===", "====",  "Zm9v YmFy", "Zm9v\n",  " Zm9v",   "Zm9v ",
        "Zg==Zg==", "Zm-v", "Zm_v", "Zm9v=", "Z=9v",      "Zm9vYmF", "Zm9\x80", "=Zm9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *d = (uint8_t *)"untouched";
        size_t n = 5;
        if (az_base64_decode(bad[i], strlen(bad[i]), &d, &n))
            fail_msg("[%s] decoded", bad[i]);
        assert_string_equal((char *)d, "untouched");
    }
    uint8_t *d;
    size_t n;
    assert_false(az_base64_decode(NULL, 0, &d, &n));
    /* The length bounds the input. */
    assert_true(az_base64_decode("Zm9vjunk", 4, &d, &n));
    assert_int_equal(n, 3);
    free(d);
}

/* Large buffers cross the encoder's internal chunks. */
static void test_base64_large(void **state)
{
    (void)state;
    size_t sizes[] = {1, 2, 3, 49151, 49152, 49153, 65536, 200001};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        uint8_t *p = malloc(n);
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)(i * 131 + (i >> 8));
        char *e = az_base64_encode(p, n);
        assert_int_equal(strlen(e), (n + 2) / 3 * 4);
        uint8_t *d;
        size_t dn;
        assert_true(az_base64_decode(e, strlen(e), &d, &dn));
        assert_int_equal(dn, n);
        assert_memory_equal(d, p, n);
        free(d);
        free(e);
        free(p);
    }
}

/* ------------------------------------------------------------------------ */
/* Percent-encoding                                                          */

static void check_decode(const char *in, const char *want)
{
    char *d = az_url_decode(in, strlen(in));
    if (!want) {
        if (d)
            fail_msg("[%s] decoded to [%s]", in, d);
        return;
    }
    assert_non_null(d);
    assert_string_equal(d, want);
    free(d);
}

static void test_url_decode(void **state)
{
    (void)state;
    check_decode("", "");
    check_decode("abc", "abc");
    check_decode("a%20b", "a b");
    check_decode("a+b", "a+b");
    check_decode("%2B%2b", "++");
    check_decode("%27%27", "''");
    check_decode("%C3%A9%F0%9F%98%80", "\xC3\xA9\xF0\x9F\x98\x80");
    check_decode("%25", "%");
    check_decode("%", NULL);
    check_decode("%2", NULL);
    check_decode("a%2", NULL);
    check_decode("%zz", NULL);
    check_decode("%2g", NULL);
    check_decode("%00", NULL);
    check_decode("a%00b", NULL);
    /* A raw NUL inside the given length is refused too. */
    assert_null(az_url_decode("a\0b", 3));
    /* The length bounds the input. */
    char *d = az_url_decode("a%20bcd", 5);
    assert_string_equal(d, "a b");
    free(d);
    assert_null(az_url_decode(NULL, 0));
}

static void check_encode(const char *in, const char *want)
{
    char *e = az_url_encode(in);
    assert_string_equal(e, want);
    char *back = az_url_decode(e, strlen(e));
    assert_string_equal(back, in);
    free(back);
    free(e);
}

static void test_url_encode(void **state)
{
    (void)state;
    check_encode("", "");
    check_encode("AZaz09-._~", "AZaz09-._~");
    check_encode("a b/c?d#e", "a%20b%2Fc%3Fd%23e");
    check_encode("'x'+y=z&", "%27x%27%2By%3Dz%26");
    check_encode("\xC3\xA9\xF0\x9F\x98\x80", "%C3%A9%F0%9F%98%80");
    check_encode("%", "%25");
    check_encode("\x01\x7f\xff", "%01%7F%FF");
    assert_null(az_url_encode(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_datetime_format), cmocka_unit_test(test_datetime_parse),
        cmocka_unit_test(test_datetime_reject), cmocka_unit_test(test_datetime_round_trip),
        cmocka_unit_test(test_rfc1123),         cmocka_unit_test(test_rfc1123_reject),
        cmocka_unit_test(test_base64_vectors),  cmocka_unit_test(test_base64_reject),
        cmocka_unit_test(test_base64_large),    cmocka_unit_test(test_url_decode),
        cmocka_unit_test(test_url_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

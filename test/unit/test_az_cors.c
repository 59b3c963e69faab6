/*
 * test_az_cors.c -- service properties as a Set changes them, and the CORS
 * rules they hold applied to requests: a Set of some sections keeps the
 * others (as the service does), an empty <Cors/> clears the rules, a bad
 * body changes nothing; a rule matches by origin, method and (for a
 * preflight) every requested header, the first match wins, and the
 * exposed headers are the response's names the rule covers plus its own.
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

#define SP(x)                                                                                      \
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><StorageServiceProperties>" x                       \
    "</StorageServiceProperties>"

#define LOGGING_READ                                                                               \
    "<Logging><Version>1.0</Version><Delete>false</Delete><Read>true</Read>"                       \
    "<Write>false</Write><RetentionPolicy><Enabled>true</Enabled><Days>7</Days>"                   \
    "</RetentionPolicy></Logging>"

#define HOUR_ON                                                                                    \
    "<HourMetrics><Version>1.0</Version><Enabled>true</Enabled><IncludeAPIs>false</IncludeAPIs>"   \
    "<RetentionPolicy><Enabled>false</Enabled></RetentionPolicy></HourMetrics>"

#define RULE(o, m, age, ex, al)                                                                    \
    "<CorsRule><AllowedOrigins>" o "</AllowedOrigins><AllowedMethods>" m "</AllowedMethods>"       \
    "<MaxAgeInSeconds>" age "</MaxAgeInSeconds><ExposedHeaders>" ex "</ExposedHeaders>"            \
    "<AllowedHeaders>" al "</AllowedHeaders></CorsRule>"

/* Applies the Sets in order to the default document. */
static char *apply(const char *const *sets, size_t n)
{
    char *doc = az_service_properties_default(NULL);
    for (size_t i = 0; i < n; i++) {
        char *next = NULL;
        mt_status st = az_service_properties_update(doc, sets[i], strlen(sets[i]), &next);
        if (!mt_is_ok(&st))
            fail_msg("set %zu: %d %s %s", i, st.http, st.code, st.message);
        free(doc);
        doc = next;
    }
    return doc;
}

static void test_update_keeps_absent_sections(void **state)
{
    (void)state;
    const char *sets[] = {
        SP(LOGGING_READ HOUR_ON),
        SP("<Cors>" RULE("http://a.example", "GET", "60", "x-ms-*", "") "</Cors>"),
    };
    char *doc = apply(sets, 2);
    assert_non_null(strstr(doc, "<Read>true</Read>"));
    assert_non_null(strstr(doc, "<Days>7</Days>"));
    assert_non_null(strstr(doc, "<IncludeAPIs>false</IncludeAPIs>"));
    assert_non_null(strstr(doc, "<MinuteMetrics>"));
    assert_non_null(strstr(doc, "<AllowedOrigins>http://a.example</AllowedOrigins>"));

    /* Logging alone now: the rule and the hour metrics stay. */
    const char *more[] = {SP("<Logging><Version>1.0</Version><Delete>true</Delete>"
                             "<Read>false</Read><Write>false</Write><RetentionPolicy>"
                             "<Enabled>false</Enabled></RetentionPolicy></Logging>")};
    char *next = NULL;
    mt_status st = az_service_properties_update(doc, more[0], strlen(more[0]), &next);
    assert_true(mt_is_ok(&st));
    assert_non_null(strstr(next, "<Delete>true</Delete>"));
    assert_null(strstr(next, "<Read>true</Read>"));
    assert_non_null(strstr(next, "<IncludeAPIs>false</IncludeAPIs>"));
    assert_non_null(strstr(next, "<AllowedOrigins>http://a.example</AllowedOrigins>"));
    free(doc);
    free(next);
}

static void test_update_empty_cors_clears(void **state)
{
    (void)state;
    const char *sets[] = {
        SP("<Cors>" RULE("*", "GET", "1", "", "") "</Cors>"),
        SP("<Cors/>"),
    };
    char *doc = apply(sets, 2);
    assert_null(strstr(doc, "<CorsRule>"));
    az_cors c;
    mt_status st = az_service_properties_cors(doc, &c);
    assert_true(mt_is_ok(&st));
    assert_int_equal(c.n, 0);
    free(doc);
}

static void test_update_bad_body_changes_nothing(void **state)
{
    (void)state;
    char *doc = az_service_properties_default(NULL);
    char *next = (char *)"untouched";
    const char *bad = SP("<Logging><Version>2.0</Version></Logging>");
    mt_status st = az_service_properties_update(doc, bad, strlen(bad), &next);
    assert_int_equal(st.http, 400);
    assert_null(next);
    free(doc);
}

/* The rules of a document holding the given <Cors> content. */
static az_cors rules_of(const char *cors)
{
    char body[4096];
    snprintf(body, sizeof body, SP("<Cors>%s</Cors>"), cors);
    char *doc = NULL;
    mt_status st = az_service_properties_read(body, strlen(body), &doc);
    if (!mt_is_ok(&st))
        fail_msg("%d %s %s", st.http, st.code, st.message);
    az_cors c;
    st = az_service_properties_cors(doc, &c);
    assert_true(mt_is_ok(&st));
    free(doc);
    return c;
}

static void test_match(void **state)
{
    (void)state;
    az_cors c = rules_of(RULE("http://a.example,http://b.example", "GET,PUT", "500", "x-ms-meta-*",
                              "x-ms-*,content-type") RULE("*", "DELETE", "7", "", "*"));
    assert_int_equal(c.n, 2);
    const az_cors_rule *r = az_cors_match(&c, "http://b.example", "PUT", NULL, true);
    assert_ptr_equal(r, &c.rules[0]);
    assert_int_equal(r->max_age, 500);
    /* Origins and methods compare case-insensitively. */
    assert_ptr_equal(az_cors_match(&c, "HTTP://A.example", "get", NULL, true), &c.rules[0]);
    /* Every requested header must be allowed, by name or by prefix. */
    assert_ptr_equal(az_cors_match(&c, "http://a.example", "GET", "x-ms-date, Content-Type", true),
                     &c.rules[0]);
    assert_null(az_cors_match(&c, "http://a.example", "GET", "x-ms-date,authorization", true));
    /* Actual requests are not checked against AllowedHeaders. */
    assert_ptr_equal(az_cors_match(&c, "http://a.example", "GET", "authorization", false),
                     &c.rules[0]);
    assert_null(az_cors_match(&c, "http://c.example", "GET", NULL, true));
    assert_null(az_cors_match(&c, "http://a.example", "MERGE", NULL, true));
    /* The second rule: any origin, any header, DELETE only. */
    assert_ptr_equal(az_cors_match(&c, "http://c.example", "DELETE", "anything", true),
                     &c.rules[1]);
    assert_null(az_cors_match(&c, NULL, "GET", NULL, true));
    az_cors none = {0};
    assert_null(az_cors_match(&none, "http://a.example", "GET", NULL, true));
    az_cors_clear(&c);
}

static void test_expose(void **state)
{
    (void)state;
    az_cors c = rules_of(RULE("*", "GET", "1", "x-ms-*,ETag,x-custom", ""));
    const char *names[] = {"x-ms-request-id", "Content-Type", "ETag", "X-MS-Version"};
    char *e = az_cors_expose(&c.rules[0], names, 4);
    assert_string_equal(e, "x-ms-request-id,ETag,X-MS-Version,x-custom");
    free(e);
    e = az_cors_expose(&c.rules[0], NULL, 0);
    assert_string_equal(e, "ETag,x-custom");
    free(e);
    az_cors_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_keeps_absent_sections),
        cmocka_unit_test(test_update_empty_cors_clears),
        cmocka_unit_test(test_update_bad_body_changes_nothing),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_expose),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_px_log.c -- the proxy's log lines: the text format as it always was,
 * and the JSON format (one object a line, RFC 3339 UTC time with
 * milliseconds, every message escaped so the line parses, whatever bytes
 * the message carried), the fields beyond the three (present only where
 * they apply, escaped the same way, quoted in text), and the request a
 * thread serves (its ids on its lines, the first backend failure kept as
 * its reason).
 *
 * Each case sends stderr to a temporary file for the call and reads back
 * what px_log wrote.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "px.h"

/* What one px_log_with call (level, fields, fixed text) writes, or with
 * NULL fields one px_log call, NUL-terminated; the caller frees it. */
static char *capture_with(int level, const px_log_fields *f, const char *msg)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(fileno(stderr));
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), fileno(stderr)) >= 0);
    if (f)
        px_log_with(level, f, "%s", msg);
    else
        px_log(level, "%s", msg);
    fflush(stderr);
    assert_true(dup2(saved, fileno(stderr)) >= 0);
    close(saved);
    assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
    long n = ftell(tmp);
    assert_true(n >= 0);
    rewind(tmp);
    char *out = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return out;
}

static char *capture(int level, const char *msg)
{
    return capture_with(level, NULL, msg);
}

static bool matches(const char *re, const char *s)
{
    regex_t r;
    assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

/* Parses a captured JSON line: exactly one line, one object with the three
 * string members and no others. Returns the object. */
static cJSON *parse_line(const char *line)
{
    size_t n = strlen(line);
    assert_true(n > 1);
    assert_int_equal(line[n - 1], '\n');
    assert_null(memchr(line, '\n', n - 1));
    cJSON *o = cJSON_Parse(line);
    assert_non_null(o);
    assert_true(cJSON_IsObject(o));
    assert_int_equal(cJSON_GetArraySize(o), 3);
    const char *keys[] = {"time", "level", "msg"};
    for (size_t i = 0; i < 3; i++)
        assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, keys[i])));
    return o;
}

static const char *member(cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key)->valuestring;
}

static int setup(void **state)
{
    (void)state;
    px_log_set_level("info");
    px_log_set_format("text");
    px_log_set_proxy_id("");
    px_log_request_end();
    return 0;
}

/* A JSON line with any members; the three always there. */
static cJSON *parse_any(const char *line)
{
    size_t n = strlen(line);
    assert_true(n > 1);
    assert_int_equal(line[n - 1], '\n');
    assert_null(memchr(line, '\n', n - 1));
    cJSON *o = cJSON_Parse(line);
    assert_non_null(o);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "msg")));
    return o;
}

static void test_json_fields_present_only_where_given(void **state)
{
    (void)state;
    px_log_set_format("json");
    px_log_fields f = {.request_id = "r-1",
                       .op = "insert",
                       .table = "orders",
                       .status = 503,
                       .error_code = "ServerBusy",
                       .phase = "prefer_new",
                       .backend = "new",
                       .reason = "new: 503 ServerBusy: The server is busy.",
                       .duration_ms = 12.3456,
                       .timed = true};
    char *line = capture_with(PX_LOG_WARN, &f, "POST /acct/orders -> 503");
    cJSON *o = parse_any(line);
    assert_string_equal(member(o, "request_id"), "r-1");
    assert_string_equal(member(o, "op"), "insert");
    assert_string_equal(member(o, "table"), "orders");
    assert_string_equal(member(o, "error_code"), "ServerBusy");
    assert_string_equal(member(o, "phase"), "prefer_new");
    assert_string_equal(member(o, "backend"), "new");
    assert_string_equal(member(o, "reason"), "new: 503 ServerBusy: The server is busy.");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "status")->valueint, 503);
    assert_true(cJSON_GetObjectItemCaseSensitive(o, "duration_ms")->valuedouble > 12.34 &&
                cJSON_GetObjectItemCaseSensitive(o, "duration_ms")->valuedouble < 12.35);
    /* Absent fields are left out, not written empty. */
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "client_request_id"));
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "proxy_id"));
    assert_int_equal(cJSON_GetArraySize(o), 12);
    cJSON_Delete(o);
    free(line);
}

static void test_json_field_values_are_escaped(void **state)
{
    (void)state;
    px_log_set_format("json");
    /* A client controls its request id header and the table name. */
    const char *crid = "id \"quoted\"\nnext\\ \x01";
    px_log_fields f = {.client_request_id = crid, .table = "t\xFFx", .reason = "a\tb"};
    char *line = capture_with(PX_LOG_WARN, &f, "m");
    cJSON *o = parse_any(line);
    assert_string_equal(member(o, "client_request_id"), crid);
    assert_string_equal(member(o, "table"), "t\xEF\xBF\xBDx");
    assert_string_equal(member(o, "reason"), "a\tb");
    cJSON_Delete(o);
    free(line);
}

static void test_text_fields_follow_the_message(void **state)
{
    (void)state;
    px_log_fields f = {.op = "get_entity", .status = 500, .reason = "old: 500 \"x\""};
    char *line = capture_with(PX_LOG_WARN, &f, "GET /a/t() -> 500");
    const char *want = " warn GET /a/t() -> 500 op=get_entity reason=\"old: 500 \\\"x\\\"\" "
                       "status=500\n";
    size_t n = strlen(line), k = strlen(want);
    assert_true(n > k);
    assert_string_equal(line + n - k, want);
    free(line);
}

static void test_proxy_id_on_every_line_unless_named(void **state)
{
    (void)state;
    px_log_set_format("json");
    px_log_set_proxy_id("px3");
    char *line = capture(PX_LOG_INFO, "lease regained");
    cJSON *o = parse_any(line);
    assert_string_equal(member(o, "proxy_id"), "px3");
    cJSON_Delete(o);
    free(line);
    px_log_fields f = {.proxy_id = "px7"};
    line = capture_with(PX_LOG_WARN, &f, "push: waiting for px7");
    o = parse_any(line);
    assert_string_equal(member(o, "proxy_id"), "px7");
    cJSON_Delete(o);
    free(line);
    px_log_set_proxy_id("");
}

static void test_request_context_names_the_request_and_keeps_the_first_failure(void **state)
{
    (void)state;
    px_log_set_format("json");
    px_log_request_begin("req-9", "client-9");
    /* A line logged on the way (a slow backend call) carries the ids. */
    char *line = capture(PX_LOG_WARN, "slow backend");
    cJSON *o = parse_any(line);
    assert_string_equal(member(o, "request_id"), "req-9");
    assert_string_equal(member(o, "client_request_id"), "client-9");
    cJSON_Delete(o);
    free(line);
    const char *backend, *reason, *code;
    px_log_request_failure(&backend, &reason, &code);
    assert_null(backend);
    assert_null(reason);
    /* The first backend failure is the cause; a retry's is not. */
    px_log_backend_failed("new", "new: 503 ServerBusy: busy");
    px_log_backend_failed("old", "old: 500 InternalError: later");
    px_log_request_answered(503, "ServerBusy", "The server is busy.");
    assert_int_equal(px_log_request_failure(&backend, &reason, &code), 503);
    assert_string_equal(backend, "new");
    assert_string_equal(reason, "new: 503 ServerBusy: busy");
    assert_string_equal(code, "ServerBusy");
    px_log_request_end();
    /* Outside a request nothing is kept and lines carry no ids. */
    px_log_backend_failed("old", "ignored");
    px_log_request_failure(&backend, &reason, &code);
    assert_null(reason);
    line = capture(PX_LOG_INFO, "after");
    o = parse_line(line);
    cJSON_Delete(o);
    free(line);
    /* Without a backend failure the answered error is the reason. */
    px_log_request_begin("req-10", NULL);
    px_log_request_answered(503, "ServerBusy", "this proxy holds no lease");
    px_log_request_failure(&backend, &reason, &code);
    assert_null(backend);
    assert_string_equal(reason, "this proxy holds no lease");
    px_log_request_end();
}

static void test_text_line_has_time_level_and_message(void **state)
{
    (void)state;
    char *line = capture(PX_LOG_WARN, "backend slow");
    assert_true(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]+Z "
                        "warn backend slow\n$",
                        line));
    free(line);
}

static void test_json_line_has_time_level_and_message(void **state)
{
    (void)state;
    px_log_set_format("json");
    char *line = capture(PX_LOG_INFO, "serving account devstoreaccount1");
    cJSON *o = parse_line(line);
    assert_string_equal(member(o, "level"), "info");
    assert_string_equal(member(o, "msg"), "serving account devstoreaccount1");
    /* RFC 3339, UTC, milliseconds */
    assert_true(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                        member(o, "time")));
    /* The members in the documented order. */
    assert_true(matches("^\\{\"time\":\"[^\"]+\",\"level\":\"info\",\"msg\":", line));
    cJSON_Delete(o);
    free(line);
}

static void test_json_escapes_quotes_backslashes_and_controls(void **state)
{
    (void)state;
    px_log_set_format("json");
    const char *msg = "table \"t\\1\"\nsecond line\ttab \x01 bell\x07 end";
    char *line = capture(PX_LOG_ERROR, msg);
    cJSON *o = parse_line(line);
    assert_string_equal(member(o, "level"), "error");
    assert_string_equal(member(o, "msg"), msg);
    assert_non_null(strstr(line, "\\\"t\\\\1\\\""));
    assert_non_null(strstr(line, "\\n"));
    assert_non_null(strstr(line, "\\u0001"));
    cJSON_Delete(o);
    free(line);
}

static void test_json_keeps_utf8_and_replaces_invalid_bytes(void **state)
{
    (void)state;
    px_log_set_format("json");
    /* é (2 bytes), € (3), 😀 (4) kept; a stray 0xFF, an overlong '/'
     * (C0 AF), a surrogate (ED A0 80) and a sequence cut at the end (E2 82)
     * each become U+FFFD, one per offending byte. */
    char *line = capture(PX_LOG_INFO, "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 "
                                      "x\xFFy \xC0\xAF \xED\xA0\x80 z\xE2\x82");
    cJSON *o = parse_line(line);
    assert_string_equal(member(o, "msg"),
                        "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 "
                        "x\xEF\xBF\xBDy \xEF\xBF\xBD\xEF\xBF\xBD "
                        "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD z\xEF\xBF\xBD\xEF\xBF\xBD");
    cJSON_Delete(o);
    free(line);
}

static void test_json_long_message_is_cut_and_still_parses(void **state)
{
    (void)state;
    px_log_set_format("json");
    /* 2000 bytes of "é": the cut at 1023 bytes splits a character. */
    char msg[2001];
    for (int i = 0; i < 2000; i += 2)
        memcpy(msg + i, "\xC3\xA9", 2);
    msg[2000] = '\0';
    char *line = capture(PX_LOG_INFO, msg);
    cJSON *o = parse_line(line);
    const char *got = member(o, "msg");
    assert_int_equal(strlen(got), 1022 + 3);
    assert_memory_equal(got + 1022, "\xEF\xBF\xBD", 3);
    cJSON_Delete(o);
    free(line);
}

static void test_level_filter_applies_to_both_formats(void **state)
{
    (void)state;
    const char *formats[] = {"text", "json"};
    for (size_t i = 0; i < 2; i++) {
        px_log_set_format(formats[i]);
        char *line = capture(PX_LOG_DEBUG, "hidden");
        assert_string_equal(line, "");
        free(line);
        px_log_set_level("debug");
        line = capture(PX_LOG_DEBUG, "shown");
        assert_non_null(strstr(line, "shown"));
        assert_non_null(strstr(line, "debug"));
        free(line);
        px_log_set_level("info");
    }
}

static void test_unknown_format_name_changes_nothing(void **state)
{
    (void)state;
    px_log_set_format("json");
    px_log_set_format("yaml");
    char *line = capture(PX_LOG_INFO, "still json");
    cJSON *o = parse_line(line);
    cJSON_Delete(o);
    free(line);
    px_log_set_format("text");
    line = capture(PX_LOG_INFO, "text again");
    assert_int_equal(line[0] != '{', 1);
    assert_non_null(strstr(line, " info text again\n"));
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_text_line_has_time_level_and_message, setup),
        cmocka_unit_test_setup(test_json_line_has_time_level_and_message, setup),
        cmocka_unit_test_setup(test_json_escapes_quotes_backslashes_and_controls, setup),
        cmocka_unit_test_setup(test_json_keeps_utf8_and_replaces_invalid_bytes, setup),
        cmocka_unit_test_setup(test_json_long_message_is_cut_and_still_parses, setup),
        cmocka_unit_test_setup(test_level_filter_applies_to_both_formats, setup),
        cmocka_unit_test_setup(test_unknown_format_name_changes_nothing, setup),
        cmocka_unit_test_setup(test_json_fields_present_only_where_given, setup),
        cmocka_unit_test_setup(test_json_field_values_are_escaped, setup),
        cmocka_unit_test_setup(test_text_fields_follow_the_message, setup),
        cmocka_unit_test_setup(test_proxy_id_on_every_line_unless_named, setup),
        cmocka_unit_test_setup(test_request_context_names_the_request_and_keeps_the_first_failure,
                               setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

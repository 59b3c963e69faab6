/*
 * test_px_log.c -- the proxy's log lines: the text format as it always was,
 * and the JSON format (one object a line, RFC 3339 UTC time with
 * milliseconds, every message escaped so the line parses, whatever bytes
 * the message carried).
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

/* What one px_log call (level, fixed text) writes, NUL-terminated; the
 * caller frees it. */
static char *capture(int level, const char *msg)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(fileno(stderr));
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), fileno(stderr)) >= 0);
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
    return 0;
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

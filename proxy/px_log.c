/*
 * px_log.c -- one line per event on stderr.
 *
 * Two formats, chosen once at start-up (--log-format):
 *   text  "<UTC time> <level> <message>", for a person at a terminal;
 *   json  {"time":"2024-01-02T03:04:05.678Z","level":"info","msg":"..."},
 *         one object a line, for a log collector (RFC 3339 UTC time with
 *         milliseconds).
 *
 * The level is set once at start-up (--log-level); lines below it cost one
 * comparison. A single fprintf per line keeps lines whole across threads.
 *
 * JSON lines are built with cJSON rather than by hand, so quotes, control
 * characters and backslashes in a message are escaped as JSON requires.
 * cJSON passes bytes above 0x7F through untouched, so a message is first
 * made valid UTF-8 (a client's table name, or a message cut at the buffer's
 * end, may not be): every byte that does not start a well-formed sequence
 * becomes U+FFFD. A collector that rejects one bad line would otherwise
 * drop it silently.
 */
#include "px.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <string.h>

/* A message is cut to this many bytes, NUL included. */
enum { MSG_MAX = 1024 };

static int threshold = PX_LOG_INFO;
static bool json_lines;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void px_log_set_level(const char *name)
{
    for (int i = 0; i <= PX_LOG_DEBUG; i++)
        if (strcmp(level_names[i], name) == 0)
            threshold = i;
}

void px_log_set_format(const char *name)
{
    if (strcmp(name, "text") == 0)
        json_lines = false;
    else if (strcmp(name, "json") == 0)
        json_lines = true;
}

bool px_log_enabled(int level)
{
    return level <= threshold;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), 0 when there is none. */
static int utf8_seq_len(const unsigned char *p)
{
    unsigned c = p[0];
    int n = 0;
    if (c < 0x80)
        n = 1;
    else if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) /* also stops at the terminating NUL */
            return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] > 0x8F))
        return 0;
    return n;
}

/* Copies s into out, which holds at least 3 * strlen(s) + 1 bytes,
 * replacing each byte that starts no well-formed sequence with U+FFFD. */
static void utf8_clean(const char *s, char *out)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = utf8_seq_len(p);
        if (n > 0) {
            memcpy(out, p, (size_t)n);
            out += n;
            p += n;
        } else {
            memcpy(out, "\xEF\xBF\xBD", 3);
            out += 3;
            p++;
        }
    }
    *out = '\0';
}

static void log_json(const char *when, int level, const char *msg)
{
    /* "2024-01-02T03:04:05.1234567Z" -> "2024-01-02T03:04:05.123Z" */
    char time_ms[32], clean[3 * MSG_MAX];
    snprintf(time_ms, sizeof time_ms, "%.23sZ", when);
    utf8_clean(msg, clean);
    cJSON *o = cJSON_CreateObject();
    char *line = NULL;
    if (o && cJSON_AddStringToObject(o, "time", time_ms) &&
        cJSON_AddStringToObject(o, "level", level_names[level]) &&
        cJSON_AddStringToObject(o, "msg", clean))
        line = cJSON_PrintUnformatted(o);
    if (line)
        fprintf(stderr, "%s\n", line);
    else /* out of memory: still say something, in the same shape */
        fprintf(stderr,
                "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"(log line lost: out of memory)\"}\n",
                time_ms, level_names[level]);
    cJSON_free(line);
    cJSON_Delete(o);
}

void px_log(int level, const char *fmt, ...)
{
    if (!px_log_enabled(level))
        return;
    char when[MT_DATETIME_MAX], msg[MSG_MAX];
    mt_datetime_format(mt_rt_pthread()->ops->now_ticks(mt_rt_pthread()), when);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (json_lines)
        log_json(when, level, msg);
    else
        fprintf(stderr, "%s %s %s\n", when, level_names[level], msg);
}

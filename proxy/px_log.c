/*
 * px_log.c -- one line per event on stderr, with the fields a collector
 * filters on, and the request a thread is serving.
 *
 * Two formats, chosen once at start-up (--log-format):
 *   text  "<UTC time> <level> <message> key=value ...", for a person at a
 *         terminal (values with spaces are quoted);
 *   json  {"time":"2024-01-02T03:04:05.678Z","level":"info","msg":"...",
 *         "request_id":"...", ...}, one object a line, for a log collector
 *         (RFC 3339 UTC time with milliseconds).
 * Fields beyond the three are present only where they apply (px_log_fields);
 * a sidecar's proxy_id is on each of its lines.
 *
 * A table request runs on one thread from start to answer, so the request
 * it serves is kept per thread (px_log_request_begin): a line logged on the
 * way (a slow backend call) names the request, and the first backend
 * failure met is kept as the reason the request's own line gives for a 5xx.
 * Passing that context down through the core would widen every interface
 * for the sake of one log line.
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
#include <time.h>

/* A message is cut to this many bytes, NUL included. */
enum { MSG_MAX = 1024 };

static int threshold = PX_LOG_INFO;
static bool json_lines;
static char default_proxy_id[128];

/* The request this thread serves (px_log_request_begin). */
static __thread struct {
    bool active;
    char request_id[48];
    char client_request_id[128];
    char backend[8];
    char reason[256]; /* the first backend failure */
    int error_status; /* the last error answered */
    char error_code[64];
    char error_msg[256];
} current;

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

void px_log_set_proxy_id(const char *id)
{
    snprintf(default_proxy_id, sizeof default_proxy_id, "%s", id ? id : "");
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

/* A field's value, made valid UTF-8 and cut to fit (a client's header may
 * be long), in out (3 * cap bytes). */
static const char *clean_value(const char *v, char *out, size_t cap)
{
    char cut[256];
    snprintf(cut, sizeof cut < cap ? sizeof cut : cap, "%s", v);
    utf8_clean(cut, out);
    return out;
}

/* The fields that apply: those given, else the thread's request. */
typedef struct resolved {
    const char *str_keys[10];
    const char *str_vals[10];
    size_t nstr;
    int status;
    double duration_ms;
    bool timed;
} resolved;

static void add_str(resolved *r, const char *key, const char *v)
{
    if (v && *v)
        r->str_keys[r->nstr] = key, r->str_vals[r->nstr++] = v;
}

static void resolve(const px_log_fields *f, resolved *r)
{
    static const px_log_fields none = {0};
    if (!f)
        f = &none;
    *r = (resolved){.status = f->status, .duration_ms = f->duration_ms, .timed = f->timed};
    add_str(r, "request_id",
            f->request_id    ? f->request_id
            : current.active ? current.request_id
                             : NULL);
    add_str(r, "client_request_id",
            f->client_request_id ? f->client_request_id
            : current.active     ? current.client_request_id
                                 : NULL);
    add_str(r, "op", f->op);
    add_str(r, "table", f->table);
    add_str(r, "error_code", f->error_code);
    add_str(r, "phase", f->phase);
    add_str(r, "proxy_id", f->proxy_id ? f->proxy_id : default_proxy_id);
    add_str(r, "backend", f->backend);
    add_str(r, "reason", f->reason);
}

static char *json_line(const char *time_ms, int level, const char *msg, const resolved *f)
{
    char clean[3 * MSG_MAX], v[3 * 256];
    utf8_clean(msg, clean);
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "time", time_ms) &&
              cJSON_AddStringToObject(o, "level", level_names[level]) &&
              cJSON_AddStringToObject(o, "msg", clean);
    for (size_t i = 0; ok && i < f->nstr; i++)
        ok = cJSON_AddStringToObject(o, f->str_keys[i], clean_value(f->str_vals[i], v, 256));
    if (ok && f->status)
        ok = cJSON_AddNumberToObject(o, "status", f->status);
    if (ok && f->timed) /* whole microseconds: no float noise in the line */
        ok = cJSON_AddNumberToObject(o, "duration_ms",
                                     (double)(long long)(f->duration_ms * 1000) / 1000);
    char *line = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return line;
}

static void log_json(const char *when, int level, const char *msg, const resolved *f)
{
    /* "2024-01-02T03:04:05.1234567Z" -> "2024-01-02T03:04:05.123Z" */
    char time_ms[32];
    snprintf(time_ms, sizeof time_ms, "%.23sZ", when);
    char *line = json_line(time_ms, level, msg, f);
    if (line)
        fprintf(stderr, "%s\n", line);
    else /* out of memory: still say something, in the same shape */
        fprintf(stderr,
                "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"(log line lost: out of memory)\"}\n",
                time_ms, level_names[level]);
    cJSON_free(line);
}

/* key=value, or key="value" when it has a space, a quote or nothing. */
static void text_field(mt_buf *b, const char *key, const char *v)
{
    bool quote = !*v || strpbrk(v, " \t\"=") != NULL;
    mt_buf_printf(b, quote ? " %s=\"" : " %s=", key);
    if (!quote) {
        mt_buf_put(b, v, strlen(v));
        return;
    }
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            mt_buf_put(b, "\\", 1);
        mt_buf_put(b, *p == '\n' ? " " : p, 1);
    }
    mt_buf_put(b, "\"", 1);
}

static void log_text(const char *when, int level, const char *msg, const resolved *f)
{
    mt_buf b = {0};
    char v[3 * 256];
    mt_buf_printf(&b, "%s %s %s", when, level_names[level], msg);
    for (size_t i = 0; i < f->nstr; i++)
        text_field(&b, f->str_keys[i], clean_value(f->str_vals[i], v, 256));
    if (f->status)
        mt_buf_printf(&b, " status=%d", f->status);
    if (f->timed)
        mt_buf_printf(&b, " duration_ms=%.3f", f->duration_ms);
    if (b.p && !b.oom)
        fprintf(stderr, "%s\n", b.p);
    else
        fprintf(stderr, "%s %s %s\n", when, level_names[level], msg);
    mt_buf_clear(&b);
}

static void log_v(int level, const px_log_fields *fields, const char *fmt, va_list ap)
{
    char when[MT_DATETIME_MAX], msg[MSG_MAX];
    mt_datetime_format(mt_rt_pthread()->ops->now_ticks(mt_rt_pthread()), when);
    vsnprintf(msg, sizeof msg, fmt, ap);
    resolved f;
    resolve(fields, &f);
    if (json_lines)
        log_json(when, level, msg, &f);
    else
        log_text(when, level, msg, &f);
}

void px_log(int level, const char *fmt, ...)
{
    if (!px_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(level, NULL, fmt, ap);
    va_end(ap);
}

void px_log_with(int level, const px_log_fields *fields, const char *fmt, ...)
{
    if (!px_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(level, fields, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* The request this thread serves.                                          */

/* s (NULL: "") into out, cut to cap - 1 bytes: on every request's path,
 * where a format string cost more than the copy. */
static void copy_cut(char *out, size_t cap, const char *s)
{
    size_t n = s ? strnlen(s, cap - 1) : 0;
    if (n)
        memcpy(out, s, n);
    out[n] = '\0';
}

void px_log_request_begin(const char *request_id, const char *client_request_id)
{
    current.active = true;
    copy_cut(current.request_id, sizeof current.request_id, request_id);
    copy_cut(current.client_request_id, sizeof current.client_request_id, client_request_id);
    current.backend[0] = current.reason[0] = '\0';
    current.error_code[0] = current.error_msg[0] = '\0';
    current.error_status = 0;
}

void px_log_request_end(void)
{
    current.active = false;
}

void px_log_backend_failed(const char *backend, const char *reason)
{
    if (!current.active || current.reason[0])
        return; /* the first failure is the cause; retries repeat it */
    snprintf(current.backend, sizeof current.backend, "%s", backend);
    snprintf(current.reason, sizeof current.reason, "%s", reason);
}

const char *px_log_request_id(void)
{
    return current.active ? current.request_id : "";
}

void px_log_request_answered(int status, const char *code, const char *message)
{
    if (!current.active)
        return;
    current.error_status = status;
    snprintf(current.error_code, sizeof current.error_code, "%s", code ? code : "");
    snprintf(current.error_msg, sizeof current.error_msg, "%s", message ? message : "");
}

int px_log_request_failure(const char **backend, const char **reason, const char **error_code)
{
    *backend = *reason = *error_code = NULL;
    if (!current.active)
        return 0;
    if (current.reason[0]) {
        *backend = current.backend;
        *reason = current.reason;
    } else if (current.error_msg[0]) {
        *reason = current.error_msg;
    }
    if (current.error_code[0])
        *error_code = current.error_code;
    return current.error_status;
}

uint64_t px_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

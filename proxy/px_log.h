/*
 * px_log.h -- the proxy's log: levels, text or JSON lines, the fields a line
 * may carry, and the request a thread is serving (px_log.c). It depends on
 * nothing else of the proxy, so every file of it may log.
 */
#ifndef PX_LOG_H
#define PX_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum { PX_LOG_ERROR, PX_LOG_WARN, PX_LOG_INFO, PX_LOG_DEBUG };
void px_log_set_level(const char *name); /* "error", "warn", "info", "debug" */
/* "text" (default: "<time> <level> <message>") or "json" (one object a line:
 * {"time": RFC 3339 UTC with milliseconds, "level", "msg"}); other names
 * are ignored. */
void px_log_set_format(const char *name);
bool px_log_enabled(int level);
/* The proxy id on every line that names no other (a sidecar's own). */
void px_log_set_proxy_id(const char *id);
void px_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The fields a line may carry beyond time, level and msg; NULL or ""
 * strings and a zero status are left out, duration_ms only when timed.
 * request_id and client_request_id default to the thread's request. */
typedef struct px_log_fields {
    const char *request_id;        /* x-ms-request-id the proxy answered */
    const char *client_request_id; /* x-ms-client-request-id the client sent */
    const char *op;                /* e.g. "insert", as in the metrics */
    const char *table;
    const char *error_code; /* Azure error code answered */
    const char *phase;
    const char *proxy_id;
    const char *backend; /* "old" or "new" */
    const char *reason;  /* why: the backend's error or the internal cause */
    int status;
    double duration_ms;
    bool timed;
} px_log_fields;
void px_log_with(int level, const px_log_fields *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The table request this thread serves, from its start to its answer: its
 * ids go on every line logged meanwhile. Strings are copied. */
void px_log_request_begin(const char *request_id, const char *client_request_id);
void px_log_request_end(void);
/* A backend call of the thread's request failed (5xx, timeout): the first
 * such failure is kept as the request's reason. No-op outside a request. */
void px_log_backend_failed(const char *backend, const char *reason);
/* The thread's request id, "" outside a request (the thread's own string:
 * valid until its next px_log_request_begin). */
const char *px_log_request_id(void);
/* The thread's request is answered with an error, or a batch operation
 * of it is (the last one counts). */
void px_log_request_answered(int status, const char *code, const char *message);
/* Why the thread's request failed: the first backend failure (with its
 * side), else the message of the error answered; and the error code
 * answered. NULL where there is none; the strings live until the next
 * px_log_request_begin on this thread. Returns the status of the error
 * answered, 0 when none. */
int px_log_request_failure(const char **backend, const char **reason, const char **error_code);

/* The monotonic clock that request and backend-call durations are measured
 * with, in nanoseconds. */
uint64_t px_now_ns(void);

#endif

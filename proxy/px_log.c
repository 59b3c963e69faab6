/*
 * px_log.c -- one line per event on stderr: "<UTC time> <level> <message>".
 *
 * The level is set once at start-up (--log-level); lines below it cost one
 * comparison. A single fprintf per line keeps lines whole across threads.
 */
#include "px.h"

#include <stdarg.h>
#include <string.h>

static int threshold = PX_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void px_log_set_level(const char *name)
{
    for (int i = 0; i <= PX_LOG_DEBUG; i++)
        if (strcmp(level_names[i], name) == 0)
            threshold = i;
}

bool px_log_enabled(int level)
{
    return level <= threshold;
}

void px_log(int level, const char *fmt, ...)
{
    if (!px_log_enabled(level))
        return;
    char when[MT_DATETIME_MAX], msg[1024];
    mt_datetime_format(mt_rt_pthread()->ops->now_ticks(mt_rt_pthread()), when);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s %s\n", when, level_names[level], msg);
}

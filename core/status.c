/*
 * status.c -- building mt_status values.
 *
 * Errors in the core travel as plain values rather than through errno or
 * longjmp: a status is copied back up the call chain and can be stored in a
 * test history or turned into an HTTP response without further allocation.
 * That is why the message is a fixed-size buffer (truncated if long) and
 * not a heap string that someone would have to free.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mt.h"

mt_status mt_error(int http, const char *code, const char *fmt, ...)
{
    mt_status st = mt_ok();
    va_list ap;

    st.http = http;
    snprintf(st.code, sizeof st.code, "%s", code ? code : "");
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(st.message, sizeof st.message, fmt, ap);
        va_end(ap);
    }
    return st;
}

bool mt_table_gone(const mt_status *st)
{
    return st->http == 404 && strcmp(st->code, MT_ERR_TABLE_NOT_FOUND) == 0;
}

mt_status mt_oom(void)
{
    return mt_error(503, MT_ERR_SERVER_BUSY, "The server is out of memory. Please retry.");
}

/*
 * buf.c -- the growable string every text the project builds goes through:
 * filters printed for a backend, URLs, payload names, strings to sign,
 * multipart bodies.
 *
 * A failed allocation does not stop the caller mid-sentence: it sets oom,
 * and from then on every call does nothing, so a builder of twenty pieces
 * checks once, at the end, rather than twenty times. The string is always
 * NUL-terminated once anything was put, so it can be handed to a C API
 * without another copy.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt.h"

/* Room for n more bytes and the terminator; false (and oom) when there is
 * none to be had. */
static bool mt_buf_reserve(mt_buf *b, size_t n)
{
    if (b->oom)
        return false;
    if (n > SIZE_MAX / 4 - b->len) {
        b->oom = true;
        return false;
    }
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void mt_buf_grow(mt_buf *b, size_t n)
{
    if (mt_buf_reserve(b, n))
        b->p[b->len] = '\0';
}

void mt_buf_put(mt_buf *b, const char *s, size_t n)
{
    if (!mt_buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void mt_buf_puts(mt_buf *b, const char *s)
{
    if (s)
        mt_buf_put(b, s, strlen(s));
}

void mt_buf_printf(mt_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->oom = true;
        return;
    }
    if (!mt_buf_reserve(b, (size_t)k))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)k;
}

char *mt_buf_take(mt_buf *b, size_t *len)
{
    char *p = NULL;
    if (b->oom)
        free(b->p);
    else
        p = b->p ? b->p : strdup("");
    if (len)
        *len = p ? b->len : 0;
    *b = (mt_buf){0};
    return p;
}

void mt_buf_clear(mt_buf *b)
{
    free(b->p);
    *b = (mt_buf){0};
}

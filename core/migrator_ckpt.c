/*
 * migrator_ckpt.c -- the copy checkpoint as text.
 *
 * The checkpoint is handed to the caller's store (a file, a table row, a
 * control-plane record) as an opaque string, so it is plain text, one line,
 * versioned, and a reader rejects anything it does not fully understand:
 * resuming from a misread checkpoint could skip partitions that were never
 * copied, while refusing costs an operator a look.
 *
 *   v1 \t table \t rows_total \t partitions_total \t rows_done \t
 *   partitions_done \t ("-" | "=" pk)
 *
 * The partition key comes last and is escaped (%XX for '%', control
 * characters and DEL), so it can hold any byte the backend allowed and the
 * line stays one line. Azure forbids control characters in keys, but the
 * checkpoint must not be the place that finds out.
 */
#include "migrator_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MT_CKPT_VERSION "v1"
#define MT_CKPT_FIELDS 7

static bool mt_ckpt_needs_escape(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == '%';
}

char *mt_copy_ckpt_format(const mt_copy_ckpt *c)
{
    mt_buf b = {0};
    mt_buf_printf(&b, MT_CKPT_VERSION "\t%zu\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t",
                  c->table, c->rows_total, c->partitions_total, c->rows_done, c->partitions_done);
    if (!c->pk) {
        mt_buf_puts(&b, "-");
        return mt_buf_take(&b, NULL);
    }
    mt_buf_puts(&b, "=");
    for (const unsigned char *p = (const unsigned char *)c->pk; *p; p++) {
        if (mt_ckpt_needs_escape(*p))
            mt_buf_printf(&b, "%%%02X", *p);
        else
            mt_buf_put(&b, (const char *)p, 1);
    }
    return mt_buf_take(&b, NULL);
}

/* Undoes the escaping of s[0..n); NULL when malformed or out of memory. */
static char *mt_ckpt_unescape(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; out && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? mt_hex_digit(s[i + 1]) : -1;
            int lo = hi >= 0 ? mt_hex_digit(s[i + 2]) : -1;
            if (lo < 0 || hi * 16 + lo == 0) {
                free(out);
                return NULL;
            }
            out[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (mt_ckpt_needs_escape(c)) {
            free(out);
            return NULL;
        } else {
            out[k++] = (char)c;
        }
    }
    if (out)
        out[k] = '\0';
    return out;
}

/* A decimal integer filling s[0..n) exactly, at least min. */
static bool mt_ckpt_int(const char *s, size_t n, int64_t min, int64_t *out)
{
    char tmp[24];
    if (n == 0 || n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end = NULL;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end || v < min)
        return false;
    *out = v;
    return true;
}

/* Splits text at tabs into MT_CKPT_FIELDS fields; the last one takes the
 * rest of the line (the escaped key holds no tab). */
static bool mt_ckpt_split(const char *text, const char *f[], size_t len[])
{
    const char *p = text;
    for (int i = 0; i < MT_CKPT_FIELDS; i++) {
        const char *tab = i + 1 < MT_CKPT_FIELDS ? strchr(p, '\t') : NULL;
        if (i + 1 < MT_CKPT_FIELDS && !tab)
            return false;
        f[i] = p;
        len[i] = tab ? (size_t)(tab - p) : strlen(p);
        p = tab ? tab + 1 : p + len[i];
    }
    return true;
}

static mt_status mt_ckpt_bad(const char *why)
{
    return mt_error(400, MT_ERR_INVALID_INPUT, "not a copy checkpoint: %s", why);
}

mt_status mt_copy_ckpt_parse(const char *text, mt_copy_ckpt *out)
{
    *out = (mt_copy_ckpt){.rows_total = -1, .partitions_total = -1};
    const char *f[MT_CKPT_FIELDS];
    size_t len[MT_CKPT_FIELDS];
    if (!text || !mt_ckpt_split(text, f, len))
        return mt_ckpt_bad("wrong number of fields");
    if (len[0] != strlen(MT_CKPT_VERSION) || memcmp(f[0], MT_CKPT_VERSION, len[0]) != 0)
        return mt_ckpt_bad("unknown version");
    int64_t v[5];
    const int64_t min[5] = {0, -1, -1, 0, 0};
    for (int i = 0; i < 5; i++)
        if (!mt_ckpt_int(f[i + 1], len[i + 1], min[i], &v[i]))
            return mt_ckpt_bad("bad number");
    out->table = (size_t)v[0];
    out->rows_total = v[1];
    out->partitions_total = v[2];
    out->rows_done = v[3];
    out->partitions_done = v[4];
    if (len[6] == 1 && f[6][0] == '-')
        return mt_ok();
    if (len[6] < 1 || f[6][0] != '=')
        return mt_ckpt_bad("bad partition key");
    out->pk = mt_ckpt_unescape(f[6] + 1, len[6] - 1);
    return out->pk ? mt_ok() : mt_ckpt_bad("bad partition key escape");
}

void mt_copy_ckpt_clear(mt_copy_ckpt *c)
{
    free(c->pk);
    c->pk = NULL;
}

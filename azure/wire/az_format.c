/*
 * az_format.c -- the small text formats around the payloads: RFC 1123
 * dates for the Date and x-ms-date headers, base64 for Edm.Binary and
 * keys, percent-encoding for URLs and the keys in resource paths, and the
 * forms of a Guid that .NET reads.
 *
 * Each is hand-written only as far as no library does it safely: strftime
 * and strptime depend on the process locale (a German locale would print
 * "Di, 01 Jan"), and timegm is not in C11, so dates use fixed name tables
 * and the core's calendar arithmetic. Base64 goes through OpenSSL's EVP block coder,
 * but its decoder is lax (it skips spaces, accepts '=' mid-block and counts
 * padding as data), so input is first checked against the strict alphabet
 * and the padding is taken off the result here.
 *
 * Everything here is called with client input on server threads: no
 * global state, every length bounded, NULL or false on bad input.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "az_internal.h"

/* ------------------------------------------------------------------------ */
/* RFC 1123 dates.                                                           */

static const char az_wday[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
static const char az_month[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* 0001-01-01 .. 1970-01-01 in days: time_t counts from the later one. */
#define AZ_DAYS_TO_1970 INT64_C(719162)

/* Days from 1970-01-01 to y-m-d (negative before it). */
static int64_t az_days_from_civil(int64_t y, int m, int d)
{
    return mt_days_from_civil(y, m, d) - AZ_DAYS_TO_1970;
}

/* Floor division, so that times before 1970 land on the right day. */
static int64_t az_floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static void az_put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

void az_rfc1123_format(time_t t, char out[32])
{
    int64_t days = az_floor_div((int64_t)t, 86400), secs = (int64_t)t - days * 86400;
    /* Years 1..9999 only: that is all four digits can say. */
    if (days < az_days_from_civil(1, 1, 1))
        days = az_days_from_civil(1, 1, 1), secs = 0;
    if (days > az_days_from_civil(9999, 12, 31))
        days = az_days_from_civil(9999, 12, 31), secs = 86399;
    int64_t y;
    int m, d;
    mt_civil_from_days(days + AZ_DAYS_TO_1970, &y, &m, &d);
    int wd = (int)(((days % 7) + 7) % 7);
    memcpy(out, az_wday[wd], 3);
    memcpy(out + 3, ", ", 2);
    az_put2(out + 5, d);
    out[7] = ' ';
    memcpy(out + 8, az_month[m - 1], 3);
    out[11] = ' ';
    az_put2(out + 12, (int)(y / 100));
    az_put2(out + 14, (int)(y % 100));
    out[16] = ' ';
    az_put2(out + 17, (int)(secs / 3600));
    out[19] = ':';
    az_put2(out + 20, (int)(secs / 60 % 60));
    out[22] = ':';
    az_put2(out + 23, (int)(secs % 60));
    memcpy(out + 25, " GMT", 5); /* with the terminator */
}

/* n digits at s, or -1. */
static int az_read_digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int az_name_index(const char *s, const char (*names)[4], int n)
{
    for (int i = 0; i < n; i++)
        if (memcmp(s, names[i], 3) == 0)
            return i;
    return -1;
}

/* "Www, DD Mon YYYY hh:mm:ss GMT", the IMF-fixdate of RFC 7231. The
 * weekday must be a day name but is not checked against the date, as HTTP
 * servers commonly do; every other field must be in range. */
bool az_rfc1123_parse(const char *s, time_t *out)
{
    if (!s || strlen(s) != 29)
        return false;
    if (az_name_index(s, az_wday, 7) < 0 || memcmp(s + 3, ", ", 2) != 0 || s[7] != ' ' ||
        s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':' ||
        memcmp(s + 25, " GMT", 4) != 0)
        return false;
    int d = az_read_digits(s + 5, 2), mon = az_name_index(s + 8, az_month, 12);
    int y = az_read_digits(s + 12, 4), h = az_read_digits(s + 17, 2);
    int mi = az_read_digits(s + 20, 2), sec = az_read_digits(s + 23, 2);
    if (d < 1 || mon < 0 || y < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 ||
        d > mt_days_in_month(y, mon + 1))
        return false;
    int64_t t = az_days_from_civil(y, mon + 1, d) * 86400 + h * 3600 + mi * 60 + sec;
    if ((int64_t)(time_t)t != t)
        return false;
    *out = (time_t)t;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Base64.                                                                   */

/* Bytes encoded per EVP call: a multiple of 3 so chunks join seamlessly,
 * and small enough that the int lengths of the EVP API never overflow. */
#define AZ_B64_CHUNK (3 * 16384)

char *az_base64_encode(const uint8_t *p, size_t n)
{
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i += AZ_B64_CHUNK) {
        size_t k = n - i < AZ_B64_CHUNK ? n - i : AZ_B64_CHUNK;
        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, p + i, (int)k);
    }
    out[o] = '\0';
    return out;
}

static bool az_b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* The standard alphabet, whole 4-character groups, and '=' only as one or
 * two characters of padding at the very end. */
static bool az_b64_valid(const char *s, size_t len, size_t *pad)
{
    if (len % 4 != 0)
        return false;
    *pad = 0;
    if (len > 0 && s[len - 1] == '=')
        *pad = s[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - *pad; i++)
        if (!az_b64_char((unsigned char)s[i]))
            return false;
    return true;
}

bool az_base64_decode(const char *s, size_t len, uint8_t **out, size_t *outlen)
{
    size_t pad;
    if (!s || !az_b64_valid(s, len, &pad))
        return false;
    /* One spare byte so that an empty result is still a distinct
     * allocation the caller can free. */
    uint8_t *b = malloc(len / 4 * 3 + 1);
    if (!b)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < len; i += AZ_B64_CHUNK / 3 * 4) {
        size_t k = len - i < AZ_B64_CHUNK / 3 * 4 ? len - i : AZ_B64_CHUNK / 3 * 4;
        int r = EVP_DecodeBlock(b + o, (const unsigned char *)s + i, (int)k);
        if (r < 0) {
            free(b);
            return false;
        }
        o += (size_t)r;
    }
    *out = b;
    *outlen = o - pad;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Percent-encoding.                                                         */

/* Percent-decodes s[0..len) into out (when not NULL), NUL-terminated;
 * false on a bad escape or a NUL, raw or encoded, which would silently cut
 * the C string short. The one reading of escapes that az_url_decode and
 * az_url_escapes_valid share. */
static bool url_decode_into(const char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return false;
            int hi = mt_hex_digit((unsigned char)s[i + 1]);
            int lo = mt_hex_digit((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = hi << 4 | lo;
            i += 2;
        }
        if (c == 0)
            return false;
        if (out)
            out[o++] = (char)c;
    }
    if (out)
        out[o] = '\0';
    return true;
}

bool az_url_escapes_valid(const char *s, size_t len)
{
    return s && len != SIZE_MAX && url_decode_into(s, len, NULL);
}

char *az_url_decode(const char *s, size_t len)
{
    if (!s || len == SIZE_MAX)
        return NULL;
    char *out = malloc(len + 1);
    if (out && !url_decode_into(s, len, out)) {
        free(out);
        out = NULL;
    }
    return out;
}

static bool az_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* "%XX" for c, into out[0..3). */
static void az_pct_byte(char *out, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    out[0] = '%';
    out[1] = hex[c >> 4];
    out[2] = hex[c & 15];
}

char *az_url_encode(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(n * 3 + 1), *p = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (az_unreserved(c)) {
            *p++ = (char)c;
        } else {
            az_pct_byte(p, c);
            p += 3;
        }
    }
    *p = '\0';
    return out;
}

/* 'k' with a quote doubled and every byte but the unreserved characters
 * and those of keep percent-encoded. */
void az_path_key(mt_buf *b, const char *k, const char *keep)
{
    mt_buf_puts(b, "'");
    for (const unsigned char *p = (const unsigned char *)k; *p; p++) {
        if (*p == '\'') {
            mt_buf_puts(b, "''");
        } else if (az_unreserved(*p) || strchr(keep, *p)) {
            mt_buf_put(b, (const char *)p, 1);
        } else {
            char e[3];
            az_pct_byte(e, *p);
            mt_buf_put(b, e, 3);
        }
    }
    mt_buf_puts(b, "'");
}

void az_entity_path(mt_buf *b, const char *table, const char *pk, const char *rk, const char *keep)
{
    mt_buf_puts(b, table);
    mt_buf_puts(b, "(PartitionKey=");
    az_path_key(b, pk, keep);
    mt_buf_puts(b, ",RowKey=");
    az_path_key(b, rk, keep);
    mt_buf_puts(b, ")");
}

/* ------------------------------------------------------------------------ */
/* Guids.                                                                    */

/* 32 hex digits, dashed as 8-4-4-4-12 or not at all, optionally in braces
 * or parentheses (the forms .NET parses). Bytes are kept in textual order,
 * as the filter parser keeps them. */
bool az_guid_parse(const char *s, size_t n, uint8_t g[16])
{
    if (n == 38 && ((s[0] == '{' && s[37] == '}') || (s[0] == '(' && s[37] == ')')))
        s++, n -= 2;
    if (n != 36 && n != 32)
        return false;
    size_t i = 0;
    for (int nb = 0; nb < 16; nb++) {
        if (n == 36 && (i == 8 || i == 13 || i == 18 || i == 23) && s[i++] != '-')
            return false;
        int hi = mt_hex_digit((unsigned char)s[i]), lo = mt_hex_digit((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        g[nb] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return i == n;
}

/*
 * text.c -- the byte-level rules of text that every reader and writer of
 * the project shares: what well-formed UTF-8 is, what a hex digit is worth,
 * and how a Guid is spelt.
 *
 * One copy matters for the same reason as one DateTime parser: a key the
 * filter parser accepts must be a key the JSON and Atom readers accept, or
 * a row written through one path could not be named through another. The
 * UTF-8 rule is the strict one (no overlong forms, no surrogates, nothing
 * above U+10FFFF), because keys are ordered by their UTF-16 code units and
 * only well-formed text has those.
 */
#include "mt.h"

size_t mt_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c, min;
    size_t len;

    if (n == 0)
        return 0;
    c = s[0];
    if (c < 0x80)
        len = 1, min = 0;
    else if (c >= 0xC2 && c <= 0xDF)
        len = 2, min = 0x80, c &= 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, min = 0x800, c &= 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, min = 0x10000, c &= 0x07;
    else
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (i >= n || (s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    if (cp)
        *cp = c;
    return len;
}

bool mt_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = mt_utf8_seq(u + i, n - i, NULL);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

int mt_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void mt_guid_format(const uint8_t g[16], char out[MT_GUID_TEXT])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[g[i] >> 4];
        *p++ = hex[g[i] & 15];
    }
    *p = '\0';
}

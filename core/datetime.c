/*
 * datetime.c -- Edm.DateTime text <-> 100 ns ticks since 0001-01-01T00:00Z.
 *
 * One parser and one printer for every place a DateTime crosses text: the
 * OData filter literal datetime'...', JSON and Atom property values, and
 * the Timestamp system property. Keeping a single copy matters because the
 * proxy compares values that came in through different paths; two parsers
 * that disagree on a corner (an offset, a short fraction) would make a row
 * written as JSON fail to match a filter written by the same client.
 *
 * Ticks are the .NET unit Azure stores, so the calendar is the proleptic
 * Gregorian one from year 1 and every value is UTC. Output always carries
 * seven fractional digits and 'Z', exactly as the service writes them, so a
 * value read back compares equal as text as well as as a number. Input is
 * the subset of ISO 8601 the service accepts: seconds and fraction are
 * optional, the fraction has one to seven digits (more would need rounding,
 * which the service does not do for us), and an offset or 'Z' may follow;
 * no suffix means UTC. No libc time function is used: they depend on the
 * locale and time zone and cannot express year 1.
 */
#include <stdbool.h>
#include <string.h>

#include "mt.h"

#define MT_TICKS_PER_SECOND INT64_C(10000000)
#define MT_TICKS_PER_DAY (INT64_C(86400) * MT_TICKS_PER_SECOND)
/* 9999-12-31T23:59:59.9999999Z, the largest value Azure represents. */
#define MT_TICKS_MAX INT64_C(3155378975999999999)
/* The largest offset ISO 8601 time zones use (UTC+14:00). */
#define MT_OFFSET_MAX_MINUTES (14 * 60)

/* ------------------------------------------------------------------------ */
/* Calendar arithmetic, public so that other date formats (the RFC 1123      */
/* dates of HTTP headers) count days the same way.                           */

static bool dt_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int mt_days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && dt_is_leap(y) ? 29 : days[m - 1];
}

/* Days from 0001-01-01 to y-m-d. */
int64_t mt_days_from_civil(int64_t y, int m, int d)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t py = y - 1;
    int64_t days = py * 365 + py / 4 - py / 100 + py / 400;
    return days + before[m - 1] + (m > 2 && dt_is_leap(y)) + d - 1;
}

/* The inverse, for days >= 0: count whole 400-, 100-, 4- and 1-year
 * cycles, then walk the months of the last year. */
void mt_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t n400 = days / 146097, r = days % 146097;
    int64_t n100 = r / 36524;
    if (n100 == 4) /* the last day of a 400-year cycle */
        n100 = 3;
    r -= n100 * 36524;
    int64_t n4 = r / 1461;
    r -= n4 * 1461;
    int64_t n1 = r / 365;
    if (n1 == 4) /* the last day of a leap cycle */
        n1 = 3;
    r -= n1 * 365;
    *y = n400 * 400 + n100 * 100 + n4 * 4 + n1 + 1;
    int month = 1;
    while (r >= mt_days_in_month(*y, month)) {
        r -= mt_days_in_month(*y, month);
        month++;
    }
    *m = month;
    *d = (int)r + 1;
}

/* ------------------------------------------------------------------------ */
/* Printing.                                                                 */

/* Writes v as exactly n decimal digits (v is already known to fit). */
static char *dt_put(char *p, int64_t v, int n)
{
    for (int k = n - 1; k >= 0; k--, v /= 10)
        p[k] = (char)('0' + v % 10);
    return p + n;
}

void mt_datetime_format(int64_t ticks, char out[MT_DATETIME_MAX])
{
    /* Only parse (or the clock) produces ticks, so an out-of-range value
     * is a caller's bug; clamping keeps the text something Azure accepts
     * rather than a negative or five-digit year. */
    if (ticks < 0)
        ticks = 0;
    if (ticks > MT_TICKS_MAX)
        ticks = MT_TICKS_MAX;
    int64_t days = ticks / MT_TICKS_PER_DAY, rem = ticks % MT_TICKS_PER_DAY;
    int64_t y, secs = rem / MT_TICKS_PER_SECOND;
    int m, d;
    mt_civil_from_days(days, &y, &m, &d);
    char *p = dt_put(out, y, 4);
    *p++ = '-';
    p = dt_put(p, m, 2);
    *p++ = '-';
    p = dt_put(p, d, 2);
    *p++ = 'T';
    p = dt_put(p, secs / 3600, 2);
    *p++ = ':';
    p = dt_put(p, secs / 60 % 60, 2);
    *p++ = ':';
    p = dt_put(p, secs % 60, 2);
    *p++ = '.';
    p = dt_put(p, rem % MT_TICKS_PER_SECOND, 7);
    *p++ = 'Z';
    *p = '\0';
}

/* ------------------------------------------------------------------------ */
/* Parsing. The text is (pointer, length) with no terminator promised.       */

typedef struct dt_reader {
    const char *s;
    size_t len;
    size_t i;
} dt_reader;

static bool dt_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Exactly n decimal digits. */
static bool dt_digits(dt_reader *r, int n, int *out)
{
    int v = 0;
    for (int k = 0; k < n; k++, r->i++) {
        if (r->i >= r->len || !dt_is_digit((unsigned char)r->s[r->i]))
            return false;
        v = v * 10 + (r->s[r->i] - '0');
    }
    *out = v;
    return true;
}

static bool dt_char(dt_reader *r, char c)
{
    if (r->i >= r->len || r->s[r->i] != c)
        return false;
    r->i++;
    return true;
}

/* One to seven digits after the point, scaled to ticks. */
static bool dt_fraction(dt_reader *r, int64_t *out)
{
    int64_t frac = 0;
    int nd = 0;
    while (r->i < r->len && dt_is_digit((unsigned char)r->s[r->i])) {
        if (nd == 7)
            return false;
        frac = frac * 10 + (r->s[r->i++] - '0');
        nd++;
    }
    if (nd == 0)
        return false;
    for (; nd < 7; nd++)
        frac *= 10;
    *out = frac;
    return true;
}

/* Nothing (UTC), 'Z', or +hh:mm / -hh:mm, as minutes east of UTC. */
static bool dt_offset(dt_reader *r, int *minutes)
{
    int oh, om;
    *minutes = 0;
    if (r->i == r->len || dt_char(r, 'Z'))
        return true;
    int sign = r->s[r->i] == '-' ? -1 : 1;
    if (!dt_char(r, '+') && !dt_char(r, '-'))
        return false;
    if (!dt_digits(r, 2, &oh) || !dt_char(r, ':') || !dt_digits(r, 2, &om) || om > 59)
        return false;
    if (oh * 60 + om > MT_OFFSET_MAX_MINUTES)
        return false;
    *minutes = sign * (oh * 60 + om);
    return true;
}

bool mt_datetime_parse(const char *s, size_t len, int64_t *ticks)
{
    dt_reader r = {s, s ? len : 0, 0};
    int y, mo, d, h, mi, sec = 0, off;
    int64_t frac = 0;
    if (!dt_digits(&r, 4, &y) || !dt_char(&r, '-') || !dt_digits(&r, 2, &mo) || !dt_char(&r, '-') ||
        !dt_digits(&r, 2, &d) || !dt_char(&r, 'T') || !dt_digits(&r, 2, &h) || !dt_char(&r, ':') ||
        !dt_digits(&r, 2, &mi))
        return false;
    if (dt_char(&r, ':')) {
        if (!dt_digits(&r, 2, &sec))
            return false;
        if (dt_char(&r, '.') && !dt_fraction(&r, &frac))
            return false;
    }
    if (!dt_offset(&r, &off) || r.i != r.len)
        return false;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mt_days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 59)
        return false;
    int64_t minutes = mt_days_from_civil(y, mo, d) * 1440 + h * 60 + mi - off;
    int64_t t = (minutes * 60 + sec) * MT_TICKS_PER_SECOND + frac;
    if (t < 0 || t > MT_TICKS_MAX)
        return false;
    *ticks = t;
    return true;
}

/*
 * etag.c -- entity ETags as the Table service writes, reads and compares
 * them.
 *
 * The service derives an entity's ETag from its Timestamp:
 * W/"datetime'2026-12-06T02%3A43%3A13.1234567Z'", the Timestamp as Azure
 * formats it (seven fractional digits) with ':' percent-encoded. Clients
 * rely on that link: the legacy Python SDK (azure-cosmosdb-table) rebuilds
 * an entity's ETag from the Timestamp it read when the payload carries no
 * odata.etag, url-quoting the text, so the in-memory table writes the same
 * form and a conditional write compares ETags by the time they carry when
 * both are of this form (an If-Match that spells the colons '%3a' or ':'
 * names the same version). Anything else compares as an opaque string, as
 * ETags of other origins must.
 *
 * The syntax an If-Match must have is the service's: "*" or a weak ETag,
 * W/"..." (either case of the W), whatever it holds; a weak ETag that
 * matches nothing fails the condition (412), anything else is malformed
 * (400 InvalidInput, "The etag value '...' specified in one of the request
 * headers is not valid"). Evidence: the legacy storage emulator's and the
 * service's answers quoted in github.com/Azure/Azurite/issues/1229 (a weak
 * "W/\"wrong\"" gets 412 from Azure) and /issues/1829 and /issues/2013 (a
 * bare "MalformedETag" gets 400 InvalidInput), which Azurite reproduces in
 * src/table/utils/utils.ts (a weak ETag is required).
 */
#include <stdio.h>
#include <string.h>

#include "mt.h"

#define ETAG_PREFIX "W/\"datetime'"
#define ETAG_PREFIX_LEN (sizeof ETAG_PREFIX - 1)

void mt_etag_format(int64_t ticks, char out[MT_ETAG_MAX])
{
    char dt[MT_DATETIME_MAX];
    size_t n = 0;
    mt_datetime_format(ticks, dt);
    n += (size_t)snprintf(out, MT_ETAG_MAX, "%s", ETAG_PREFIX);
    for (const char *p = dt; *p && n + 8 < MT_ETAG_MAX; p++) {
        if (*p == ':') {
            memcpy(out + n, "%3A", 3);
            n += 3;
        } else {
            out[n++] = *p;
        }
    }
    memcpy(out + n, "'\"", 3);
}

bool mt_etag_time(const char *etag, int64_t *ticks)
{
    char text[MT_DATETIME_MAX];
    size_t n = 0;
    if (!etag || (etag[0] != 'W' && etag[0] != 'w') ||
        strncmp(etag + 1, &ETAG_PREFIX[1], ETAG_PREFIX_LEN - 1) != 0)
        return false;
    const char *p = etag + ETAG_PREFIX_LEN;
    const char *end = strchr(p, '\'');
    if (!end || strcmp(end, "'\"") != 0)
        return false;
    while (p < end) {
        int c = (unsigned char)*p;
        if (c == '%') {
            int hi = end - p > 2 ? mt_hex_digit(p[1]) : -1;
            int lo = hi >= 0 ? mt_hex_digit(p[2]) : -1;
            if (lo < 0)
                return false;
            c = hi * 16 + lo;
            p += 3;
        } else {
            p++;
        }
        if (n + 1 >= sizeof text)
            return false;
        text[n++] = (char)c;
    }
    return mt_datetime_parse(text, n, ticks);
}

bool mt_etag_valid(const char *if_match)
{
    if (!if_match)
        return false;
    if (strcmp(if_match, "*") == 0)
        return true;
    size_t n = strlen(if_match);
    if (n < 4 || (if_match[0] != 'W' && if_match[0] != 'w') || if_match[1] != '/' ||
        if_match[2] != '"' || if_match[n - 1] != '"')
        return false;
    /* Inside the quotes a '"' must be escaped (\"), as in Azurite's check. */
    for (size_t i = 3; i < n - 1; i++) {
        if (if_match[i] == '\\' && i + 1 < n - 1)
            i++;
        else if (if_match[i] == '"')
            return false;
    }
    return true;
}

bool mt_etag_matches(const char *if_match, const char *etag)
{
    int64_t a, b;
    if (!if_match)
        return false;
    if (strcmp(if_match, "*") == 0)
        return true;
    if (!etag)
        return false;
    if (strcmp(if_match, etag) == 0)
        return true;
    return mt_etag_time(if_match, &a) && mt_etag_time(etag, &b) && a == b;
}

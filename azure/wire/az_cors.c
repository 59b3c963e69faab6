/*
 * az_cors.c -- the CORS rules of the service properties applied to a
 * request: which rule, if any, allows a preflight or an actual
 * cross-origin request, and which response headers the rule exposes.
 *
 * Rules are tried in order and the first that matches wins, as with the
 * service. The lists were normalised when the properties were set (no
 * blanks around the items), so matching only splits on commas; the
 * request's own lists (Access-Control-Request-Headers) are trimmed here.
 * Nothing here allocates but az_cors_expose, which builds a header value.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "az_internal.h"

void az_cors_clear(az_cors *c)
{
    for (size_t i = 0; i < c->n && i < AZ_CORS_MAX_RULES; i++) {
        free(c->rules[i].origins);
        free(c->rules[i].methods);
        free(c->rules[i].exposed);
        free(c->rules[i].allowed);
    }
    memset(c, 0, sizeof *c);
}

/* The next item of a comma-separated list, spaces trimmed; false at the
 * end. *p moves past it. */
static bool az_cors_next(const char **p, const char **item, size_t *n)
{
    const char *s = *p, *e;
    if (!s || !*s)
        return false;
    e = strchr(s, ',');
    *p = e ? e + 1 : s + strlen(s);
    if (!e)
        e = s + strlen(s);
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *item = s;
    *n = (size_t)(e - s);
    return true;
}

static bool az_cors_ieq(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && strncasecmp(a, b, an) == 0;
}

/* Does the rule item (a name, or a prefix ending in '*') cover name? */
static bool az_cors_covers(const char *item, size_t n, const char *name, size_t nn)
{
    if (n > 0 && item[n - 1] == '*')
        return nn >= n - 1 && strncasecmp(item, name, n - 1) == 0;
    return az_cors_ieq(item, n, name, nn);
}

static bool az_cors_origin_ok(const char *origins, const char *origin)
{
    const char *p = origins, *it;
    size_t n, on = strlen(origin);
    while (az_cors_next(&p, &it, &n))
        if ((n == 1 && it[0] == '*') || az_cors_ieq(it, n, origin, on))
            return true;
    return false;
}

static bool az_cors_method_ok(const char *methods, const char *method)
{
    const char *p = methods, *it;
    size_t n, mn = strlen(method);
    while (az_cors_next(&p, &it, &n))
        if (az_cors_ieq(it, n, method, mn))
            return true;
    return false;
}

/* Is name covered by some item of list? */
static bool az_cors_listed(const char *list, const char *name, size_t nn)
{
    const char *p = list, *it;
    size_t n;
    while (az_cors_next(&p, &it, &n))
        if (n && az_cors_covers(it, n, name, nn))
            return true;
    return false;
}

/* Every header the preflight asks for must be allowed. */
static bool az_cors_headers_ok(const char *allowed, const char *requested)
{
    const char *p = requested, *h;
    size_t hn;
    while (az_cors_next(&p, &h, &hn))
        if (hn && !az_cors_listed(allowed, h, hn))
            return false;
    return true;
}

const az_cors_rule *az_cors_match(const az_cors *c, const char *origin, const char *method,
                                  const char *request_headers, bool preflight)
{
    if (!c || !origin || !method)
        return NULL;
    for (size_t i = 0; i < c->n && i < AZ_CORS_MAX_RULES; i++) {
        const az_cors_rule *r = &c->rules[i];
        if (!az_cors_origin_ok(r->origins, origin) || !az_cors_method_ok(r->methods, method))
            continue;
        if (preflight && request_headers && !az_cors_headers_ok(r->allowed, request_headers))
            continue;
        return r;
    }
    return NULL;
}

/* Appends name unless the list already holds it. */
static void az_cors_add(mt_buf *out, const char *name, size_t n)
{
    const char *p = out->p, *it;
    size_t in;
    if (n == 0)
        return;
    while (p && az_cors_next(&p, &it, &in))
        if (az_cors_ieq(it, in, name, n))
            return;
    if (out->len)
        mt_buf_put(out, ",", 1);
    mt_buf_put(out, name, n);
}

char *az_cors_expose(const az_cors_rule *r, const char *const *names, size_t n)
{
    mt_buf out = {0};
    const char *p = r->exposed, *it;
    size_t in;
    for (size_t i = 0; i < n; i++)
        if (names[i] && az_cors_listed(r->exposed, names[i], strlen(names[i])))
            az_cors_add(&out, names[i], strlen(names[i]));
    while (az_cors_next(&p, &it, &in))
        if (in && it[in - 1] != '*')
            az_cors_add(&out, it, in);
    return mt_buf_take(&out, NULL);
}

/*
 * json_diff.c -- the comparison behind the differential fuzz target and
 * its unit test: one body through the one-pass JSON readers and through
 * the cJSON-based oracle must get the same answer, to the byte.
 */
#include <stdlib.h>
#include <string.h>

#include "oracle_json.h"

static bool jd_str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool jd_status_eq(const mt_status *a, const mt_status *b)
{
    return a->http == b->http && jd_str_eq(a->code, b->code) && jd_str_eq(a->message, b->message);
}

/* Keys, then properties in order, names and values. */
static const char *jd_entity_diff(const mt_entity *a, const mt_entity *b)
{
    if (!a || !b)
        return a || b ? "one entity missing" : NULL;
    if (strcmp(a->pk, b->pk) != 0 || strcmp(a->rk, b->rk) != 0)
        return "keys differ";
    if (a->nprops != b->nprops)
        return "property counts differ";
    for (size_t i = 0; i < a->nprops; i++) {
        if (strcmp(a->props[i].name, b->props[i].name) != 0)
            return "property names or order differ";
        if (!mt_value_equal(&a->props[i].value, &b->props[i].value))
            return "property values differ";
    }
    if (!jd_str_eq(a->etag, b->etag))
        return "etags differ";
    if (a->timestamp != b->timestamp)
        return "timestamps differ";
    return NULL;
}

static const char *jd_entity(const char *d, size_t n)
{
    mt_entity *a = NULL, *b = NULL;
    unsigned ka = 0, kb = 0;
    mt_status sa = az_json_entity_read(d, n, &a, &ka);
    mt_status sb = oracle_json_entity_read(d, n, &b, &kb);
    const char *why = NULL;
    if (mt_is_ok(&sa) != mt_is_ok(&sb))
        why = mt_is_ok(&sa) ? "entity: accepted, the oracle rejects"
                            : "entity: rejected, the oracle accepts";
    else if (!jd_status_eq(&sa, &sb))
        why = "entity: different error answers";
    else if (mt_is_ok(&sa) && ka != kb)
        why = "entity: different key flags";
    else
        why = jd_entity_diff(a, b);
    mt_entity_free(a);
    mt_entity_free(b);
    return why;
}

static const char *jd_reply(const char *d, size_t n)
{
    mt_entity *a = NULL, *b = NULL;
    mt_status sa = az_json_entity_read_reply(d, n, &a);
    mt_status sb = oracle_json_entity_read_reply(d, n, &b);
    const char *why = NULL;
    if (!jd_status_eq(&sa, &sb))
        why = "reply: different answers";
    else
        why = jd_entity_diff(a, b);
    mt_entity_free(a);
    mt_entity_free(b);
    return why;
}

static const char *jd_table(const char *d, size_t n)
{
    char *a = NULL, *b = NULL;
    mt_status sa = az_json_table_read(d, n, &a);
    mt_status sb = oracle_json_table_read(d, n, &b);
    const char *why = NULL;
    if (!jd_status_eq(&sa, &sb))
        why = "table: different answers";
    else if (!jd_str_eq(a, b))
        why = "table: different names";
    free(a);
    free(b);
    return why;
}

const char *oracle_json_diff(const char *d, size_t n)
{
    const char *why = jd_entity(d, n);
    if (!why)
        why = jd_reply(d, n);
    if (!why)
        why = jd_table(d, n);
    return why;
}

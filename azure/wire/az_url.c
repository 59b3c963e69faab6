/*
 * az_url.c -- request paths and query options of the Table service.
 *
 * The proxy hands over the path after the account segment, still
 * percent-encoded, and the raw query string. This file says which resource
 * that names (service, table list, one table, its ACL, its entities, one
 * entity, $batch, $metadata) and reads the query options of the two query
 * operations. Both come straight from clients, so every function here
 * treats its input as hostile: lengths are capped before anything is
 * decoded, every loop is bounded by the text it walks, and every rejection
 * is a 400 with the code the real service uses.
 *
 * Paths are percent-decoded as a whole before they are read, as the
 * service does: SDKs differ in what they escape (one sends
 * "PartitionKey='a''b'", another "PartitionKey=%27a%27%27b%27"), and only
 * after decoding do both read the same. A quote inside a key is written
 * twice, so the key literal is scanned for its closing quote after
 * decoding; that is why an encoded '/' or ',' in a key is harmless, while
 * a raw '/' in the path is a second segment and names nothing.
 *
 * Query values are percent-decoded with '+' read as a space, the way the
 * service reads a query string (a SAS signature with a raw '+' fails there
 * for that reason). Parameter names are decoded too ("%24filter" is how
 * one SDK writes "$filter") and compared without regard to case.
 *
 * Continuation tokens (NextPartitionKey, NextRowKey, NextTableName) are
 * minted by the proxy, not by a backend: it writes each one into its
 * x-ms-continuation-* header as az_url_encode(raw value), which is
 * header-safe ASCII. Clients echo the header back as a query value,
 * percent-encoding it once more (every SDK does), so az_query_opts_parse
 * decodes twice and hands back the raw key or table name. The cost is a
 * hand-made client that splices the header into the URL unencoded: its
 * tokens come back right unless the value itself holds a '%'.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "az.h"

/* Far above what the proxy accepts in a request line, yet small enough that
 * a linear scan of a hostile path or query string costs nothing. */
#define AZ_PATH_MAX (64 * 1024)
#define AZ_QUERY_MAX (64 * 1024)
#define AZ_TABLE_NAME_MIN 3
#define AZ_TABLE_NAME_MAX 63
#define AZ_TOP_MAX 1000
/* Property names are at most 255 characters; a select list longer than
 * any entity can be is not a query anyone means. */
#define AZ_SELECT_NAME_MAX 255
#define AZ_SELECT_MAX 1024

#define AZ_ERR_INVALID_URI "InvalidUri"
#define AZ_ERR_BAD_QUERY_VALUE "InvalidQueryParameterValue"
#define AZ_ERR_RESOURCE_NAME "InvalidResourceName"

/* ------------------------------------------------------------------------ */
/* Characters and decoding                                                   */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ieq(const char *a, const char *b)
{
    while (*a && to_lower(*a) == to_lower(*b)) {
        a++;
        b++;
    }
    return *a == *b;
}

/* ieq for the n bytes at s, which hold no NUL. */
static bool raw_ieq(const char *s, size_t n, const char *b)
{
    size_t i = 0;
    while (i < n && b[i] && to_lower(s[i]) == to_lower(b[i]))
        i++;
    return i == n && !b[i];
}

/* Strict UTF-8 (mt_utf8_valid): keys are ordered by their UTF-16 code
 * units in the core, which needs well-formed text to do that. */
static bool utf8_valid(const char *s)
{
    return mt_utf8_valid(s, strlen(s));
}

/* A query component: '+' is a space, then percent-decoding. The '+' is
 * rewritten before decoding so that an encoded "%2B" stays a plus. */
static char *query_decode(const char *s, size_t len)
{
    size_t i, n = 0, plus = 0;
    char *tmp, *out;
    for (i = 0; i < len; i++)
        plus += s[i] == '+';
    if (plus == 0)
        return az_url_decode(s, len);
    tmp = malloc(len + 2 * plus + 1);
    if (!tmp)
        return NULL;
    for (i = 0; i < len; i++) {
        if (s[i] == '+') {
            memcpy(tmp + n, "%20", 3);
            n += 3;
        } else {
            tmp[n++] = s[i];
        }
    }
    tmp[n] = '\0';
    out = az_url_decode(tmp, n);
    free(tmp);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Query strings                                                             */

mt_status az_query_find(const char *query, const char *name, char **out)
{
    const char *p = query;
    *out = NULL;
    if (!query)
        return mt_ok();
    if (strlen(query) > AZ_QUERY_MAX)
        return mt_error(400, AZ_ERR_INVALID_URI, "The query string is too long.");
    if (*p == '?')
        p++;
    while (*p) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *name_end = eq ? eq : end;
        size_t nl = (size_t)(name_end - p);
        bool match;
        if (!memchr(p, '%', nl) && !memchr(p, '+', nl)) {
            match = raw_ieq(p, nl, name); /* decoding would change nothing */
        } else {
            char *n = query_decode(p, nl);
            if (!n && az_url_escapes_valid(p, nl))
                return mt_oom(); /* it might have been the one asked for */
            match = n && ieq(n, name);
            free(n);
        }
        if (match) {
            *out = eq ? query_decode(eq + 1, (size_t)(end - eq - 1)) : calloc(1, 1);
            if (!*out && (!eq || az_url_escapes_valid(eq + 1, (size_t)(end - eq - 1))))
                return mt_oom();
            if (!*out)
                return mt_error(400, AZ_ERR_INVALID_URI,
                                "The value of query parameter '%s' is not a valid "
                                "percent-encoded string.",
                                name);
            return mt_ok();
        }
        p = amp ? amp + 1 : end;
    }
    return mt_ok();
}

char *az_query_get(const char *query, const char *name)
{
    char *v = NULL;
    if (!name)
        return NULL;
    az_query_find(query, name, &v);
    return v;
}

/* ------------------------------------------------------------------------ */
/* Resource paths                                                            */

static mt_status bad_uri(const char *why)
{
    return mt_error(400, AZ_ERR_INVALID_URI,
                    "The requested URI does not name a resource of this account: %s.", why);
}

/* Azure's rule for table names: 3 to 63 letters and digits, starting with
 * a letter. */
static bool table_name_shape(const char *name)
{
    size_t n = strlen(name);
    if (n < AZ_TABLE_NAME_MIN || n > AZ_TABLE_NAME_MAX || !is_alpha(name[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_alnum(name[i]))
            return false;
    return true;
}

bool az_table_name_valid(const char *name)
{
    return name && table_name_shape(name) && strcasecmp(name, "tables") != 0;
}

/* A table in a request path. The read-only analytics tables
 * ($MetricsHour..., $MetricsCapacity...) exist in every real account, so
 * their names pass too; they simply are not found here. Otherwise the rule
 * of table_name_shape, and the error says which part a name breaks. */
static mt_status table_name_check(const char *name)
{
    size_t i, n = strlen(name);
    if (strncmp(name, "$Metrics", 8) == 0 && n <= AZ_TABLE_NAME_MAX) {
        for (i = 8; i < n && is_alnum(name[i]); i++)
            ;
        if (i == n)
            return mt_ok();
    }
    if (table_name_shape(name))
        return mt_ok();
    if (n < AZ_TABLE_NAME_MIN || n > AZ_TABLE_NAME_MAX)
        return mt_error(400, MT_ERR_OUT_OF_RANGE, "A table name must be %d to %d characters long.",
                        AZ_TABLE_NAME_MIN, AZ_TABLE_NAME_MAX);
    if (!is_alpha(name[0]))
        return mt_error(400, AZ_ERR_RESOURCE_NAME, "A table name must start with a letter.");
    return mt_error(400, AZ_ERR_RESOURCE_NAME, "A table name may hold only letters and digits.");
}

static void skip_spaces(const char **s)
{
    while (**s == ' ')
        (*s)++;
}

/* Reads a quoted OData string literal at *s: '...' with '' standing for
 * one quote. Returns the unescaped text, or NULL when *s does not start a
 * literal, the literal is not closed, or (*oom set) memory ran out. */
static char *literal_read(const char **s, bool *oom)
{
    const char *p = *s;
    size_t n = 0;
    char *out;
    if (*p != '\'')
        return NULL;
    out = malloc(strlen(p) + 1);
    if (!out) {
        *oom = true;
        return NULL;
    }
    for (p++;; p++) {
        if (*p == '\0') {
            free(out);
            return NULL;
        }
        if (*p == '\'') {
            if (p[1] != '\'')
                break;
            p++;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
    *s = p + 1;
    return out;
}

/* Reads one "Name='value'" of a key predicate into pk or rk. */
static bool key_read(const char **s, char **pk, char **rk, bool *oom)
{
    static const char PK[] = "PartitionKey", RK[] = "RowKey";
    char **slot;
    skip_spaces(s);
    if (strncmp(*s, PK, sizeof PK - 1) == 0) {
        slot = pk;
        *s += sizeof PK - 1;
    } else if (strncmp(*s, RK, sizeof RK - 1) == 0) {
        slot = rk;
        *s += sizeof RK - 1;
    } else {
        return false;
    }
    skip_spaces(s);
    if (*slot || **s != '=')
        return false;
    (*s)++;
    skip_spaces(s);
    *slot = literal_read(s, oom);
    return *slot != NULL;
}

/* "(PartitionKey='a',RowKey='b')", in either order, after the table name.
 * Both SDKs write PartitionKey first; OData does not fix the order, so the
 * other is read as well. */
static mt_status key_predicate_parse(const char *s, az_resource *out)
{
    bool oom = false;
    if (*s++ != '(')
        return bad_uri("a table name is followed by something other than a key");
    if (!key_read(&s, &out->pk, &out->rk, &oom))
        return oom ? mt_oom() : bad_uri("the key is not PartitionKey='...',RowKey='...'");
    skip_spaces(&s);
    if (*s++ != ',' || !key_read(&s, &out->pk, &out->rk, &oom))
        return oom ? mt_oom() : bad_uri("the key is not PartitionKey='...',RowKey='...'");
    skip_spaces(&s);
    if (s[0] != ')' || s[1] != '\0')
        return bad_uri("the key is not closed by ')'");
    if (!utf8_valid(out->pk) || !utf8_valid(out->rk))
        return bad_uri("a key is not valid UTF-8");
    out->kind = AZ_RES_ENTITY;
    return mt_ok();
}

/* "Tables('name')". */
static mt_status table_resource_parse(const char *s, az_resource *out)
{
    mt_status st;
    s += strlen("Tables(");
    skip_spaces(&s);
    bool oom = false;
    out->table = literal_read(&s, &oom);
    if (oom)
        return mt_oom();
    skip_spaces(&s);
    if (!out->table || s[0] != ')' || s[1] != '\0')
        return bad_uri("expected Tables('name')");
    st = table_name_check(out->table);
    if (!mt_is_ok(&st))
        return st;
    out->kind = AZ_RES_TABLE;
    return mt_ok();
}

/* comp on a table path: "acl" names its ACL, nothing else is known. */
static mt_status table_comp_parse(const char *query, bool bare, az_resource *out)
{
    char *comp = NULL;
    mt_status st = az_query_find(query, "comp", &comp);
    if (!mt_is_ok(&st))
        return st;
    if (comp && ieq(comp, "acl") && bare)
        out->kind = AZ_RES_TABLE_ACL;
    else if (comp)
        st = mt_error(400, AZ_ERR_BAD_QUERY_VALUE,
                      "The value of query parameter 'comp' is not valid for a table.");
    free(comp);
    return st;
}

/* "name", "name()", "name(PartitionKey='..',RowKey='..')". */
static mt_status entity_resource_parse(const char *s, const char *query, az_resource *out)
{
    const char *paren = strchr(s, '(');
    size_t n = paren ? (size_t)(paren - s) : strlen(s);
    mt_status st;
    out->table = malloc(n + 1);
    if (!out->table)
        return mt_oom();
    memcpy(out->table, s, n);
    out->table[n] = '\0';
    st = table_name_check(out->table);
    if (!mt_is_ok(&st))
        return st;
    if (!paren || strcmp(paren, "()") == 0)
        out->kind = AZ_RES_ENTITIES;
    else
        st = key_predicate_parse(paren, out);
    if (!mt_is_ok(&st))
        return st;
    return table_comp_parse(query, paren == NULL, out);
}

/* The account root answers only the service properties and statistics. */
static mt_status service_parse(const char *query, az_resource *out)
{
    char *restype = NULL, *comp = NULL;
    mt_status st = az_query_find(query, "restype", &restype);
    if (mt_is_ok(&st))
        st = az_query_find(query, "comp", &comp);
    if (!mt_is_ok(&st))
        goto done;
    if (!restype || !comp) {
        st = bad_uri("the account root needs restype=service and comp");
    } else if (!ieq(restype, "service") || (!ieq(comp, "properties") && !ieq(comp, "stats"))) {
        st = mt_error(400, AZ_ERR_BAD_QUERY_VALUE,
                      "The values of restype and comp do not name a service operation.");
    } else {
        out->kind = AZ_RES_SERVICE;
    }
done:
    free(restype);
    free(comp);
    return st;
}

static mt_status resource_route(const char *p, const char *query, az_resource *out)
{
    if (*p == '\0')
        return service_parse(query, out);
    if (strcmp(p, "$batch") == 0) {
        out->kind = AZ_RES_BATCH;
        return mt_ok();
    }
    if (strcmp(p, "$metadata") == 0) {
        out->kind = AZ_RES_METADATA;
        return mt_ok();
    }
    if (strcmp(p, "Tables") == 0 || strcmp(p, "Tables()") == 0) {
        out->kind = AZ_RES_TABLES;
        return mt_ok();
    }
    if (strncmp(p, "Tables(", 7) == 0)
        return table_resource_parse(p, out);
    return entity_resource_parse(p, query, out);
}

mt_status az_resource_parse(const char *path, const char *query, az_resource *out)
{
    mt_status st;
    char *decoded;
    size_t n;

    memset(out, 0, sizeof *out);
    if (!path)
        return bad_uri("no path");
    if (*path == '/')
        path++;
    n = strlen(path);
    if (n > AZ_PATH_MAX)
        return bad_uri("the path is too long");
    /* One trailing slash names the same resource ("Tables/"), as the
     * service reads its OData paths. */
    if (n > 1 && path[n - 1] == '/')
        n--;
    if (memchr(path, '/', n))
        return bad_uri("the path has more than one segment");
    decoded = az_url_decode(path, n);
    if (!decoded)
        return az_url_escapes_valid(path, n) ? mt_oom()
                                             : bad_uri("the path is not validly percent-encoded");
    st = resource_route(decoded, query, out);
    free(decoded);
    if (!mt_is_ok(&st))
        az_resource_clear(out);
    return st;
}

void az_resource_clear(az_resource *r)
{
    if (!r)
        return;
    free(r->table);
    free(r->pk);
    free(r->rk);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------------ */
/* Query options                                                             */

static mt_status opts_filter(const char *query, az_query_opts *o)
{
    char *text = NULL;
    mt_status st = az_query_find(query, "$filter", &text);
    if (mt_is_ok(&st) && text && *text)
        st = mt_filter_parse(text, strlen(text), &o->filter);
    free(text);
    return st;
}

/* $top is a count of 0..1000; the service answers anything else with 400
 * rather than clamping it. $top=0 is a query for no rows, answered 200 with
 * an empty result (the platform's answer as reported in
 * github.com/Azure/Azurite/issues/1428, where Azurite wrongly ignores it). */
static mt_status opts_top(const char *query, az_query_opts *o)
{
    char *text = NULL;
    mt_status st = az_query_find(query, "$top", &text);
    size_t i, n;
    long v = 0;
    if (!mt_is_ok(&st) || !text)
        return st;
    n = strlen(text);
    for (i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            break;
        if (v <= AZ_TOP_MAX)
            v = v * 10 + (text[i] - '0');
    }
    if (n == 0 || i < n)
        st = mt_error(400, MT_ERR_INVALID_INPUT, "The value of $top is not a whole number.");
    else if (v > AZ_TOP_MAX)
        st = mt_error(400, MT_ERR_OUT_OF_RANGE, "The value of $top must be 0 to %d.", AZ_TOP_MAX);
    else {
        o->top = (int)v;
        o->has_top = true;
    }
    free(text);
    return st;
}

/* Appends the name in text[0..n), spaces trimmed, to the select list. */
static mt_status select_add(az_query_opts *o, const char *text, size_t n)
{
    char *name, **grown;
    while (n && *text == ' ')
        text++, n--;
    while (n && text[n - 1] == ' ')
        n--;
    if (n == 0 || n > AZ_SELECT_NAME_MAX)
        return mt_error(400, MT_ERR_INVALID_INPUT, "$select holds an empty or overlong name.");
    if (o->nselect >= AZ_SELECT_MAX)
        return mt_error(400, MT_ERR_INVALID_INPUT, "$select names too many properties.");
    grown = realloc(o->select, (o->nselect + 1) * sizeof *grown);
    if (!grown)
        return mt_oom();
    o->select = grown;
    name = malloc(n + 1);
    if (!name)
        return mt_oom();
    memcpy(name, text, n);
    name[n] = '\0';
    o->select[o->nselect++] = name;
    return mt_ok();
}

static void select_clear(az_query_opts *o)
{
    for (size_t i = 0; i < o->nselect; i++)
        free(o->select[i]);
    free(o->select);
    o->select = NULL;
    o->nselect = 0;
}

/* $select is a comma list of property names; "*" (alone or among names)
 * means every property, which is also what an empty $select means. */
static mt_status opts_select(const char *query, az_query_opts *o)
{
    char *text = NULL;
    mt_status st = az_query_find(query, "$select", &text);
    bool all = false;
    const char *p;
    if (!mt_is_ok(&st) || !text || !*text) {
        free(text);
        return st;
    }
    for (p = text; mt_is_ok(&st);) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        st = select_add(o, p, n);
        if (mt_is_ok(&st) && strcmp(o->select[o->nselect - 1], "*") == 0)
            all = true;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (!mt_is_ok(&st) || all)
        select_clear(o);
    free(text);
    return st;
}

/* One continuation token: the query value decoded, then the token itself
 * (see the top of this file). */
static mt_status opts_token(const char *query, const char *name, char **out)
{
    char *raw = NULL;
    mt_status st = az_query_find(query, name, &raw);
    if (!mt_is_ok(&st) || !raw)
        return st;
    *out = az_url_decode(raw, strlen(raw));
    bool oom = !*out && az_url_escapes_valid(raw, strlen(raw));
    free(raw);
    if (oom)
        return mt_oom();
    if (!*out || !utf8_valid(*out)) {
        free(*out);
        *out = NULL;
        return mt_error(400, MT_ERR_INVALID_INPUT,
                        "The continuation token %s was not issued by this service.", name);
    }
    return mt_ok();
}

/* Whether query may hold any of the options: a name among them as it
 * stands, or one that only decoding could tell (a '%' or a '+'), or a
 * query too long, which az_query_find refuses. Most requests (a point
 * read with a SAS) hold none, and one pass then replaces a search for
 * each option. */
static bool opts_maybe_present(const char *query)
{
    static const char *const names[] = {"$filter",          "$top",       "$select",
                                        "NextPartitionKey", "NextRowKey", "NextTableName"};
    if (!query)
        return false;
    if (strlen(query) > AZ_QUERY_MAX)
        return true;
    for (const char *p = *query == '?' ? query + 1 : query; *p;) {
        size_t n = strcspn(p, "=&");
        if (memchr(p, '%', n) || memchr(p, '+', n))
            return true;
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            if (raw_ieq(p, n, names[i]))
                return true;
        p += n;
        p += strcspn(p, "&");
        if (*p)
            p++;
    }
    return false;
}

mt_status az_query_opts_parse(const char *query, az_query_opts *out)
{
    mt_status st;
    memset(out, 0, sizeof *out);
    if (!opts_maybe_present(query))
        return mt_ok();
    st = opts_filter(query, out);
    if (mt_is_ok(&st))
        st = opts_top(query, out);
    if (mt_is_ok(&st))
        st = opts_select(query, out);
    if (mt_is_ok(&st))
        st = opts_token(query, "NextPartitionKey", &out->next_pk);
    if (mt_is_ok(&st))
        st = opts_token(query, "NextRowKey", &out->next_rk);
    if (mt_is_ok(&st))
        st = opts_token(query, "NextTableName", &out->next_table);
    if (!mt_is_ok(&st))
        az_query_opts_clear(out);
    return st;
}

void az_query_opts_clear(az_query_opts *o)
{
    if (!o)
        return;
    mt_filter_free(o->filter);
    select_clear(o);
    free(o->next_pk);
    free(o->next_rk);
    free(o->next_table);
    memset(o, 0, sizeof *o);
}

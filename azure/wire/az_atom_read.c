/*
 * az_atom_read.c -- reading Atom entries: the entity of Insert, Update and
 * Merge, and the table of Create Table; az_atom.c writes Atom.
 *
 * Reading accepts the entries clients send: m:properties inside content
 * (or directly inside the entry), each property typed by m:type, a
 * missing m:type meaning Edm.String, m:null="true" meaning no value.
 * Lexical forms are those of XmlConvert: surrounding blanks are allowed
 * for everything but strings, booleans are true/false/1/0, Guids may be
 * braced. A bad value, an unknown type or any other element where a
 * value belongs is 400 InvalidInput; the property count is bounded as
 * the service bounds it, which also bounds the work of a hostile body.
 * Parsing goes through the hardened reader in az_xml_doc.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "az_internal.h"

#define AZ_ERR_DUP_PROP "DuplicatePropertiesSpecified"
#define AZ_ERR_DUP_KEY "DuplicateKeyPropertySpecified"

/* The proxy's request cap; an entity is at most 1 MiB on the wire. */
#define AZ_ATOM_MAX_BODY (4 * 1024 * 1024)

/* ------------------------------------------------------------------------ */
/* Reading: finding the properties.                                          */

static mt_status az_atom_bad(const char *what)
{
    return mt_error(400, MT_ERR_INVALID_INPUT, "%s", what);
}

static bool az_atom_is(xmlNodePtr n, const char *ns, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           strcmp((const char *)n->ns->href, ns) == 0 && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr az_atom_child(xmlNodePtr parent, const char *ns, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
        if (az_atom_is(c, ns, name))
            return c;
    return NULL;
}

/* Parses an entry; *props is its m:properties, or NULL when it has none.
 * The caller frees *doc. */
static mt_status az_atom_open_entry(const char *body, size_t len, xmlDocPtr *doc, xmlNodePtr *props)
{
    mt_status st;
    xmlNodePtr root;

    *props = NULL;
    *doc = az_xml_doc_read(body, len, AZ_ATOM_MAX_BODY, MT_ERR_INVALID_INPUT, &st);
    if (!*doc)
        return st;
    root = xmlDocGetRootElement(*doc);
    if (!az_atom_is(root, AZ_NS_ATOM, "entry")) {
        xmlFreeDoc(*doc);
        *doc = NULL;
        return az_atom_bad("The body must be an Atom entry.");
    }
    *props = az_atom_child(az_atom_child(root, AZ_NS_ATOM, "content"), AZ_NS_M, "properties");
    if (!*props)
        *props = az_atom_child(root, AZ_NS_M, "properties");
    return mt_ok();
}

/* The text of a property element (malloc'd, NUL-terminated). A property
 * holds text only: a nested element would be a complex value. */
static mt_status az_atom_prop_text(xmlNodePtr n, char **out, size_t *len)
{
    mt_buf b = {0};

    *out = NULL;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
            mt_buf_puts(&b, c->content ? (const char *)c->content : "");
        else if (c->type == XML_ELEMENT_NODE || c->type == XML_ENTITY_REF_NODE) {
            free(b.p);
            return mt_error(400, MT_ERR_INVALID_INPUT, "Property '%.64s' must hold a value.",
                            (const char *)n->name);
        }
    }
    *out = mt_buf_take(&b, NULL);
    *len = *out ? strlen(*out) : 0;
    return *out ? mt_ok() : mt_oom();
}

/* ------------------------------------------------------------------------ */
/* Reading: lexical forms.                                                   */

static bool az_xml_blank_char(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void az_atom_trim(const char **s, size_t *n)
{
    while (*n && az_xml_blank_char(**s))
        (*s)++, (*n)--;
    while (*n && az_xml_blank_char((*s)[*n - 1]))
        (*n)--;
}

/* [+-]digits within [lo, hi]. */
static bool az_atom_int(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out)
{
    bool neg = false;
    uint64_t mag = 0, limit;
    size_t i = 0;

    az_atom_trim(&s, &n);
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    limit = neg ? (uint64_t)(-(lo + 1)) + 1 : (uint64_t)hi;
    if (i == n)
        return false;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (mag > (limit - (uint64_t)(s[i] - '0')) / 10)
            return false;
        mag = mag * 10 + (uint64_t)(s[i] - '0');
    }
    *out = neg ? (mag == 0 ? 0 : -(int64_t)(mag - 1) - 1) : (int64_t)mag;
    return true;
}

/* [+-](digits[.digits*] | .digits)([eE][+-]digits), checked before strtod
 * so that hex floats, "inf" and "nan" are not let through. */
static bool az_atom_float_syntax(const char *s, size_t n)
{
    size_t i = 0, d = 0;

    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        d++;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            d++;
    if (d == 0)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e = 0;
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            e++;
        if (e == 0)
            return false;
    }
    return i == n;
}

static bool az_atom_span_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static bool az_atom_dbl(const char *s, size_t n, double *out)
{
    char *tmp;

    az_atom_trim(&s, &n);
    if (az_atom_span_is(s, n, "NaN")) {
        *out = NAN;
        return true;
    }
    if (az_atom_span_is(s, n, "INF") || az_atom_span_is(s, n, "Infinity") ||
        az_atom_span_is(s, n, "-INF") || az_atom_span_is(s, n, "-Infinity")) {
        *out = s[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (!az_atom_float_syntax(s, n) || !(tmp = strndup(s, n)))
        return false;
    *out = strtod(tmp, NULL);
    free(tmp);
    /* Underflow reads as the nearest value, as in .NET; overflow is an
     * error rather than a silent infinity. */
    return !isinf(*out);
}

static bool az_atom_bool(const char *s, size_t n, bool *out)
{
    az_atom_trim(&s, &n);
    if (az_atom_span_is(s, n, "true") || az_atom_span_is(s, n, "1"))
        *out = true;
    else if (az_atom_span_is(s, n, "false") || az_atom_span_is(s, n, "0"))
        *out = false;
    else
        return false;
    return true;
}

/* The D, N, B and P forms of a Guid, blanks around allowed. */
static bool az_atom_guid_read(const char *s, size_t n, uint8_t g[16])
{
    az_atom_trim(&s, &n);
    return az_guid_parse(s, n, g);
}

/* Base64 with blanks anywhere, as Convert.FromBase64String allows.
 * *out is malloc'd (possibly empty). */
static bool az_atom_binary(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
    char *tmp = malloc(n + 1);
    size_t k = 0;
    bool ok;

    if (!tmp)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!az_xml_blank_char(s[i]))
            tmp[k++] = s[i];
    tmp[k] = '\0';
    if (k == 0) {
        *out = malloc(1);
        *outlen = 0;
        ok = *out != NULL;
    } else
        ok = az_base64_decode(tmp, k, out, outlen);
    free(tmp);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Reading: typed values.                                                    */

static bool az_atom_type(const char *name, mt_edm *t)
{
    static const mt_edm all[] = {MT_EDM_STRING,  MT_EDM_INT32,    MT_EDM_INT64, MT_EDM_DOUBLE,
                                 MT_EDM_BOOLEAN, MT_EDM_DATETIME, MT_EDM_GUID,  MT_EDM_BINARY};
    if (!name) {
        *t = MT_EDM_STRING;
        return true;
    }
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, mt_edm_name(all[i])) == 0) {
            *t = all[i];
            return true;
        }
    return false;
}

/* Fills *v from text; a String or Binary value borrows text or *owned. */
static bool az_atom_parse(mt_edm t, const char *text, size_t n, mt_value *v, uint8_t **owned)
{
    int64_t x;
    size_t blen;
    const char *s = text;
    size_t tn = n;

    v->type = t;
    switch (t) {
    case MT_EDM_STRING:
        *v = mt_v_strn(text, n);
        return true;
    case MT_EDM_INT32:
        if (!az_atom_int(text, n, INT32_MIN, INT32_MAX, &x))
            return false;
        *v = mt_v_i32((int32_t)x);
        return true;
    case MT_EDM_INT64:
        return az_atom_int(text, n, INT64_MIN, INT64_MAX, &v->u.i64);
    case MT_EDM_DOUBLE:
        return az_atom_dbl(text, n, &v->u.dbl);
    case MT_EDM_BOOLEAN:
        return az_atom_bool(text, n, &v->u.b);
    case MT_EDM_DATETIME:
        az_atom_trim(&s, &tn);
        return mt_datetime_parse(s, tn, &v->u.ticks);
    case MT_EDM_GUID:
        return az_atom_guid_read(text, n, v->u.guid);
    case MT_EDM_BINARY:
        if (!az_atom_binary(text, n, owned, &blen))
            return false;
        *v = mt_v_binary(*owned, blen);
        return true;
    }
    return false;
}

/* Reads m:type and m:null of n. *null is true for m:null="true". */
static mt_status az_atom_attrs(xmlNodePtr n, mt_edm *t, bool *null)
{
    xmlChar *type = xmlGetNsProp(n, BAD_CAST "type", BAD_CAST AZ_NS_M);
    xmlChar *nul = xmlGetNsProp(n, BAD_CAST "null", BAD_CAST AZ_NS_M);
    mt_status st = mt_ok();

    *null = false;
    if (!az_atom_type((const char *)type, t))
        st = mt_error(400, MT_ERR_INVALID_INPUT, "Property '%.64s' has an unknown type '%.32s'.",
                      (const char *)n->name, (const char *)type);
    else if (nul && strcmp((const char *)nul, "true") == 0)
        *null = true;
    else if (nul && strcmp((const char *)nul, "false") != 0)
        st = mt_error(400, MT_ERR_INVALID_INPUT, "Property '%.64s' has a bad m:null.",
                      (const char *)n->name);
    xmlFree(type);
    xmlFree(nul);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Reading: entities.                                                        */

typedef struct az_atom_reader {
    mt_entity *e;
    bool have_pk, have_rk;
    unsigned keys; /* AZ_KEY_*: the keys given a value */
} az_atom_reader;

/* PartitionKey and RowKey: strings, at most once each. */
static mt_status az_atom_key_prop(az_atom_reader *r, bool is_pk, mt_edm t, bool null, char *text)
{
    bool *have = is_pk ? &r->have_pk : &r->have_rk;
    char **slot = is_pk ? &r->e->pk : &r->e->rk;
    const char *name = is_pk ? "PartitionKey" : "RowKey";

    if (t != MT_EDM_STRING)
        return mt_error(400, MT_ERR_INVALID_INPUT, "%s must be an Edm.String.", name);
    if (*have)
        return mt_error(400, AZ_ERR_DUP_KEY, "%s is specified more than once.", name);
    *have = true;
    if (null)
        return mt_ok();
    r->keys |= is_pk ? AZ_KEY_PK : AZ_KEY_RK;
    free(*slot);
    *slot = text; /* taken */
    return mt_ok();
}

static mt_status az_atom_user_prop(az_atom_reader *r, const char *name, mt_edm t, char *text,
                                   size_t n)
{
    mt_value v;
    uint8_t *owned = NULL;
    size_t before = r->e->nprops;

    if (mt_entity_get(r->e, name))
        return mt_error(400, AZ_ERR_DUP_PROP, "Property '%.64s' is specified more than once.",
                        name);
    if (r->e->nprops >= MT_MAX_USER_PROPS)
        return mt_error(400, MT_ERR_TOO_MANY_PROPS, "The entity has more than %d properties.",
                        MT_MAX_USER_PROPS);
    memset(&v, 0, sizeof v);
    if (!az_atom_parse(t, text, n, &v, &owned)) {
        free(owned);
        return mt_error(400, MT_ERR_INVALID_INPUT,
                        "The value of property '%.64s' is not a valid %s.", name, mt_edm_name(t));
    }
    mt_entity_set(r->e, name, &v);
    free(owned);
    if (r->e->nprops == before)
        return mt_oom();
    return mt_ok();
}

/* A property whose m:null is true carries no value, as the service
 * stores none; its m:type is still checked. */
static mt_status az_atom_prop_read(az_atom_reader *r, xmlNodePtr n)
{
    const char *name = (const char *)n->name;
    mt_edm t;
    bool null;
    char *text = NULL;
    size_t len = 0;
    mt_status st = az_atom_attrs(n, &t, &null);

    if (mt_is_ok(&st))
        st = az_atom_prop_text(n, &text, &len);
    if (!mt_is_ok(&st))
        return st;
    if (strcmp(name, "PartitionKey") == 0 || strcmp(name, "RowKey") == 0) {
        st = az_atom_key_prop(r, name[0] == 'P', t, null, text);
        if (!mt_is_ok(&st) || null)
            free(text);
        return st;
    }
    if (strcmp(name, "Timestamp") != 0 && !null)
        st = az_atom_user_prop(r, name, t, text, len);
    free(text);
    return st;
}

static mt_status az_atom_props_read(az_atom_reader *r, xmlNodePtr props)
{
    for (xmlNodePtr c = props ? props->children : NULL; c; c = c->next) {
        mt_status st;
        if (c->type == XML_ENTITY_REF_NODE)
            return az_atom_bad("Entity references are not allowed.");
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!c->ns || !c->ns->href || strcmp((const char *)c->ns->href, AZ_NS_D) != 0 ||
            !az_atom_name_ok((const char *)c->name))
            return mt_error(400, MT_ERR_INVALID_INPUT,
                            "Element '%.64s' in m:properties is not a data property.",
                            (const char *)c->name);
        st = az_atom_prop_read(r, c);
        if (!mt_is_ok(&st))
            return st;
    }
    return mt_ok();
}

mt_status az_atom_entity_read(const char *body, size_t len, mt_entity **out)
{
    unsigned keys;
    return az_atom_entity_read_keys(body, len, out, &keys);
}

mt_status az_atom_entity_read_keys(const char *body, size_t len, mt_entity **out, unsigned *keys)
{
    az_atom_reader r = {0};
    xmlDocPtr doc;
    xmlNodePtr props;
    mt_status st;

    *out = NULL;
    *keys = 0;
    st = az_atom_open_entry(body, len, &doc, &props);
    if (!mt_is_ok(&st))
        return st;
    r.e = mt_entity_new(NULL, NULL);
    if (!r.e)
        st = mt_oom();
    else
        st = az_atom_props_read(&r, props);
    xmlFreeDoc(doc);
    if (!mt_is_ok(&st)) {
        mt_entity_free(r.e);
        return st;
    }
    *out = r.e;
    *keys = r.keys;
    return st;
}

/* ------------------------------------------------------------------------ */
/* Reading: Create Table.                                                    */

mt_status az_atom_table_read(const char *body, size_t len, char **name)
{
    xmlDocPtr doc;
    xmlNodePtr props, n;
    mt_edm t;
    bool null = false;
    size_t tlen;
    mt_status st;

    *name = NULL;
    st = az_atom_open_entry(body, len, &doc, &props);
    if (!mt_is_ok(&st))
        return st;
    n = az_atom_child(props, AZ_NS_D, "TableName");
    if (!n)
        st = az_atom_bad("The TableName property is required.");
    else
        st = az_atom_attrs(n, &t, &null);
    if (mt_is_ok(&st) && (t != MT_EDM_STRING || null))
        st = az_atom_bad("TableName must be a non-null Edm.String.");
    if (mt_is_ok(&st))
        st = az_atom_prop_text(n, name, &tlen);
    xmlFreeDoc(doc);
    return st;
}

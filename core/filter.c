/*
 * filter.c -- the OData filter tree: build, copy, free, evaluate, print, and
 * answer structural questions. The parser lives in filter_parse.c.
 *
 * Evaluation follows the service, not SQL: a comparison against a missing
 * property, or against a property whose EDM type differs from the
 * literal's, is simply false (no three-valued logic), and "not" negates that
 * boolean. So "not (Age lt 30)" matches an entity without Age. This is what
 * lets the proxy re-apply a client's filter to merged rows and get exactly
 * the rows one Azure table would have returned.
 *
 * The one exception to "a different type is false": an Int32 literal (a
 * number without a suffix or a fraction, which is how most clients write
 * every number) against an Int64 property is compared as a number, as if
 * it had the L suffix. Nothing else is converted. The evidence:
 *   - Int32 literal, Double property: no match. Microsoft confirmed that
 *     "Score gt 5" finds nothing where "Score gt 5.0" finds the entity
 *     (github.com/Azure/azure-storage-net/issues/122, "We were able to
 *     confirm this bug", fixed in the SDK's filter builder, not the
 *     service); the e2e suite asserts the same ("dbl gt 3").
 *   - Int32 literal, Int64 property: a match. On a real account a query by
 *     the Int32 value 64 finds the entity whose Int64 property is 64, while
 *     the Int64 value 64L does not find an Int32 property of 64
 *     (github.com/microsoft/AzureStorageExplorer/issues/5346).
 *   - Int64 or Double literal against an Int32 property, Int64 literal
 *     against a Double: no match (the same reports; nothing is narrowed).
 * Azurite converts freely between numeric types and is no guide here.
 *
 * Printing is canonical rather than pretty: every binary operand and every
 * "not" operand is parenthesised, so precedence never matters, and every
 * literal is spelt so that it parses back to the same bits (doubles take
 * the shortest of %.15g..%.17g that round-trips). parse(print(f)) is
 * structurally equal to f; the protocol relies on it when it widens a
 * client's filter and sends it to a backend.
 *
 * All walks recurse. Parsed trees are at most MT_FILTER_MAX_DEPTH high
 * (see filter_parse.c); trees built in code are the protocol's few levels.
 */
#include "mt.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Building, copying, freeing                                                */

void mt_filter_free(mt_filter *f)
{
    if (!f)
        return;
    switch (f->kind) {
    case MT_F_CMP:
        free(f->u.cmp.prop);
        mt_value_clear(&f->u.cmp.lit);
        break;
    case MT_F_AND:
    case MT_F_OR:
        mt_filter_free(f->u.bin.l);
        mt_filter_free(f->u.bin.r);
        break;
    case MT_F_NOT:
        mt_filter_free(f->u.sub);
        break;
    case MT_F_TRUE:
        break;
    }
    free(f);
}

/* Returns NULL when out of memory. */
mt_filter *mt_filter_cmp(const char *prop, mt_cmp_op op, const mt_value *lit)
{
    mt_filter *f;
    if (!prop || !lit)
        return NULL;
    f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->kind = MT_F_CMP;
    f->u.cmp.op = op;
    f->u.cmp.prop = strdup(prop);
    if (!f->u.cmp.prop) {
        free(f);
        return NULL;
    }
    mt_value_copy(&f->u.cmp.lit, lit);
    if ((lit->type == MT_EDM_STRING || lit->type == MT_EDM_BINARY) && !f->u.cmp.lit.u.bytes.ptr) {
        mt_filter_free(f); /* the copy ran out of memory */
        return NULL;
    }
    return f;
}

/* On failure both operands are freed, so a caller never leaks them. */
static mt_filter *mt_filter_binary(mt_filter_kind kind, mt_filter *l, mt_filter *r)
{
    mt_filter *f = (l && r) ? calloc(1, sizeof *f) : NULL;
    if (!f) {
        mt_filter_free(l);
        mt_filter_free(r);
        return NULL;
    }
    f->kind = kind;
    f->u.bin.l = l;
    f->u.bin.r = r;
    return f;
}

mt_filter *mt_filter_and(mt_filter *l, mt_filter *r)
{
    return mt_filter_binary(MT_F_AND, l, r);
}

mt_filter *mt_filter_or(mt_filter *l, mt_filter *r)
{
    return mt_filter_binary(MT_F_OR, l, r);
}

mt_filter *mt_filter_not(mt_filter *sub)
{
    mt_filter *f = sub ? calloc(1, sizeof *f) : NULL;
    if (!f) {
        mt_filter_free(sub);
        return NULL;
    }
    f->kind = MT_F_NOT;
    f->u.sub = sub;
    return f;
}

/* Returns NULL for NULL or when out of memory. */
mt_filter *mt_filter_clone(const mt_filter *f)
{
    mt_filter *c;
    if (!f)
        return NULL;
    switch (f->kind) {
    case MT_F_CMP:
        return mt_filter_cmp(f->u.cmp.prop, f->u.cmp.op, &f->u.cmp.lit);
    case MT_F_AND:
    case MT_F_OR:
        return mt_filter_binary(f->kind, mt_filter_clone(f->u.bin.l), mt_filter_clone(f->u.bin.r));
    case MT_F_NOT:
        return mt_filter_not(mt_filter_clone(f->u.sub));
    case MT_F_TRUE:
        c = calloc(1, sizeof *c);
        if (c)
            *c = *f;
        return c;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Evaluation                                                                */

static bool mt_apply_order(mt_cmp_op op, int c)
{
    switch (op) {
    case MT_EQ:
        return c == 0;
    case MT_NE:
        return c != 0;
    case MT_GT:
        return c > 0;
    case MT_GE:
        return c >= 0;
    case MT_LT:
        return c < 0;
    case MT_LE:
        return c <= 0;
    }
    return false;
}

/* IEEE comparisons as they are: with NaN on either side every operator
 * but "ne" is false, which is what the service does. */
static bool mt_apply_double(mt_cmp_op op, double a, double b)
{
    switch (op) {
    case MT_EQ:
        return a == b;
    case MT_NE:
        return a != b;
    case MT_GT:
        return a > b;
    case MT_GE:
        return a >= b;
    case MT_LT:
        return a < b;
    case MT_LE:
        return a <= b;
    }
    return false;
}

#define MT_ORDER(a, b) ((a) < (b) ? -1 : (a) > (b))

/* Lexicographic over bytes, a proper prefix first. */
static int mt_bytes_cmp(const void *a, size_t an, const void *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0 || an == bn)
        return c;
    return an < bn ? -1 : 1;
}

/* a and b have the same type. */
static bool mt_value_matches(const mt_value *a, mt_cmp_op op, const mt_value *b)
{
    int c = 0;
    switch (a->type) {
    case MT_EDM_DOUBLE:
        return mt_apply_double(op, a->u.dbl, b->u.dbl);
    case MT_EDM_STRING:
        c = mt_str_cmp(a->u.bytes.ptr, b->u.bytes.ptr);
        break;
    case MT_EDM_INT32:
        c = MT_ORDER(a->u.i32, b->u.i32);
        break;
    case MT_EDM_INT64:
        c = MT_ORDER(a->u.i64, b->u.i64);
        break;
    case MT_EDM_BOOLEAN:
        c = MT_ORDER(a->u.b, b->u.b);
        break;
    case MT_EDM_DATETIME:
        c = MT_ORDER(a->u.ticks, b->u.ticks);
        break;
    case MT_EDM_GUID:
        c = memcmp(a->u.guid, b->u.guid, 16);
        break;
    case MT_EDM_BINARY:
        c = mt_bytes_cmp(a->u.bytes.ptr, a->u.bytes.len, b->u.bytes.ptr, b->u.bytes.len);
        break;
    }
    return mt_apply_order(op, c);
}

/* The entity's value of prop into *tmp (system properties) or a pointer
 * into e (user properties); NULL when the entity has none. */
static const mt_value *mt_lookup(const mt_entity *e, const char *prop, mt_value *tmp)
{
    if (strcmp(prop, "PartitionKey") == 0 || strcmp(prop, "RowKey") == 0) {
        const char *k = prop[0] == 'P' ? e->pk : e->rk;
        if (!k)
            return NULL;
        *tmp = mt_v_str(k);
        return tmp;
    }
    if (strcmp(prop, "Timestamp") == 0) {
        if (e->timestamp == 0)
            return NULL;
        *tmp = mt_v_datetime(e->timestamp);
        return tmp;
    }
    return mt_entity_get(e, prop);
}

/* An Int32 literal widened to an Int64 property's type (see the top of
 * this file); false for every other pair of types. */
static bool mt_widen_literal(const mt_value *lit, mt_edm to, mt_value *out)
{
    if (lit->type != MT_EDM_INT32 || to != MT_EDM_INT64)
        return false;
    *out = mt_v_i64(lit->u.i32);
    return true;
}

static bool mt_eval_cmp(const mt_filter *f, const mt_entity *e)
{
    mt_value tmp, wide;
    const mt_value *v = mt_lookup(e, f->u.cmp.prop, &tmp);
    const mt_value *lit = &f->u.cmp.lit;
    if (!v)
        return false;
    if (v->type != lit->type) {
        if (!mt_widen_literal(lit, v->type, &wide))
            return false;
        lit = &wide;
    }
    return mt_value_matches(v, f->u.cmp.op, lit);
}

/* A NULL filter matches everything, as a query without $filter does. */
bool mt_filter_eval(const mt_filter *f, const mt_entity *e)
{
    if (!f)
        return true;
    switch (f->kind) {
    case MT_F_CMP:
        return mt_eval_cmp(f, e);
    case MT_F_AND:
        return mt_filter_eval(f->u.bin.l, e) && mt_filter_eval(f->u.bin.r, e);
    case MT_F_OR:
        return mt_filter_eval(f->u.bin.l, e) || mt_filter_eval(f->u.bin.r, e);
    case MT_F_NOT:
        return !mt_filter_eval(f->u.sub, e);
    case MT_F_TRUE:
        return f->u.b;
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* Printing                                                                  */

static void mt_print_string(mt_buf *b, const mt_value *v)
{
    const char *s = v->u.bytes.ptr;
    size_t start = 0;
    mt_buf_puts(b, "'");
    for (size_t i = 0; i < v->u.bytes.len; i++) {
        if (s[i] == '\'') {
            mt_buf_put(b, s + start, i + 1 - start);
            mt_buf_puts(b, "'");
            start = i + 1;
        }
    }
    mt_buf_put(b, s + start, v->u.bytes.len - start);
    mt_buf_puts(b, "'");
}

/* The shortest of %.15g..%.17g that reads back to the same double (%.17g
 * always does), with ".0" added so that it parses as a Double, not Int32. */
static void mt_print_double(mt_buf *b, double v)
{
    char tmp[48];
    if (isnan(v)) {
        mt_buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        mt_buf_puts(b, v < 0 ? "-INF" : "INF");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    mt_buf_puts(b, tmp);
    if (!strpbrk(tmp, ".e"))
        mt_buf_puts(b, ".0");
}

/* datetime'...' with the text Azure writes (datetime.c). */
static void mt_print_datetime(mt_buf *b, int64_t ticks)
{
    char tmp[MT_DATETIME_MAX];
    mt_datetime_format(ticks, tmp);
    mt_buf_puts(b, "datetime'");
    mt_buf_puts(b, tmp);
    mt_buf_puts(b, "'");
}

static void mt_print_hex(mt_buf *b, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        char two[2] = {digits[p[i] >> 4], digits[p[i] & 15]};
        mt_buf_put(b, two, 2);
    }
}

static void mt_print_guid(mt_buf *b, const uint8_t g[16])
{
    char tmp[MT_GUID_TEXT];
    mt_guid_format(g, tmp);
    mt_buf_puts(b, "guid'");
    mt_buf_puts(b, tmp);
    mt_buf_puts(b, "'");
}

static void mt_print_value(mt_buf *b, const mt_value *v)
{
    char tmp[32];
    switch (v->type) {
    case MT_EDM_STRING:
        mt_print_string(b, v);
        return;
    case MT_EDM_INT32:
        snprintf(tmp, sizeof tmp, "%" PRId32, v->u.i32);
        break;
    case MT_EDM_INT64:
        snprintf(tmp, sizeof tmp, "%" PRId64 "L", v->u.i64);
        break;
    case MT_EDM_DOUBLE:
        mt_print_double(b, v->u.dbl);
        return;
    case MT_EDM_BOOLEAN:
        snprintf(tmp, sizeof tmp, "%s", v->u.b ? "true" : "false");
        break;
    case MT_EDM_DATETIME:
        mt_print_datetime(b, v->u.ticks);
        return;
    case MT_EDM_GUID:
        mt_print_guid(b, v->u.guid);
        return;
    case MT_EDM_BINARY:
        mt_buf_puts(b, "X'");
        mt_print_hex(b, (const uint8_t *)v->u.bytes.ptr, v->u.bytes.len);
        mt_buf_puts(b, "'");
        return;
    }
    mt_buf_puts(b, tmp);
}

static const char *const mt_op_names[] = {"eq", "ne", "gt", "ge", "lt", "le"};

static void mt_print_node(mt_buf *b, const mt_filter *f);

static void mt_print_paren(mt_buf *b, const mt_filter *f)
{
    mt_buf_puts(b, "(");
    mt_print_node(b, f);
    mt_buf_puts(b, ")");
}

static void mt_print_node(mt_buf *b, const mt_filter *f)
{
    switch (f->kind) {
    case MT_F_CMP:
        mt_buf_puts(b, f->u.cmp.prop);
        mt_buf_puts(b, " ");
        mt_buf_puts(b, mt_op_names[f->u.cmp.op]);
        mt_buf_puts(b, " ");
        mt_print_value(b, &f->u.cmp.lit);
        break;
    case MT_F_AND:
    case MT_F_OR:
        mt_print_paren(b, f->u.bin.l);
        mt_buf_puts(b, f->kind == MT_F_AND ? " and " : " or ");
        mt_print_paren(b, f->u.bin.r);
        break;
    case MT_F_NOT:
        mt_buf_puts(b, "not ");
        mt_print_paren(b, f->u.sub);
        break;
    case MT_F_TRUE:
        mt_buf_puts(b, f->u.b ? "true" : "false");
        break;
    }
}

/* Returns NULL for NULL or when out of memory. */
char *mt_filter_print(const mt_filter *f)
{
    mt_buf b = {0};
    if (!f)
        return NULL;
    mt_print_node(&b, f);
    return mt_buf_take(&b, NULL);
}

/* ------------------------------------------------------------------------ */
/* Structure                                                                 */

size_t mt_filter_count_comparisons(const mt_filter *f)
{
    if (!f)
        return 0;
    switch (f->kind) {
    case MT_F_CMP:
        return 1;
    case MT_F_AND:
    case MT_F_OR:
        return mt_filter_count_comparisons(f->u.bin.l) + mt_filter_count_comparisons(f->u.bin.r);
    case MT_F_NOT:
        return mt_filter_count_comparisons(f->u.sub);
    case MT_F_TRUE:
        return 0;
    }
    return 0;
}

/* Sound, not complete: NULL only means no pin was proven. "not" and
 * ranges are not analysed; a client that wants a partition query writes
 * PartitionKey eq '...'. */
const char *mt_filter_pinned_partition(const mt_filter *f)
{
    const char *l, *r;
    if (!f)
        return NULL;
    switch (f->kind) {
    case MT_F_CMP:
        if (f->u.cmp.op == MT_EQ && f->u.cmp.lit.type == MT_EDM_STRING &&
            strcmp(f->u.cmp.prop, "PartitionKey") == 0)
            return f->u.cmp.lit.u.bytes.ptr;
        return NULL;
    case MT_F_AND:
        l = mt_filter_pinned_partition(f->u.bin.l);
        return l ? l : mt_filter_pinned_partition(f->u.bin.r);
    case MT_F_OR:
        l = mt_filter_pinned_partition(f->u.bin.l);
        r = mt_filter_pinned_partition(f->u.bin.r);
        return (l && r && strcmp(l, r) == 0) ? l : NULL;
    default:
        return NULL;
    }
}

/* Does f read nothing but the primary key? */
static bool keys_only(const mt_filter *f)
{
    switch (f->kind) {
    case MT_F_CMP:
        return strcmp(f->u.cmp.prop, "PartitionKey") == 0 || strcmp(f->u.cmp.prop, "RowKey") == 0;
    case MT_F_AND:
    case MT_F_OR:
        return keys_only(f->u.bin.l) && keys_only(f->u.bin.r);
    case MT_F_NOT:
        return keys_only(f->u.sub);
    case MT_F_TRUE:
        return true;
    }
    return false;
}

/* The conjuncts of the top-level "and" chain that read only the keys;
 * mixed conjuncts are dropped, which only widens the result. */
mt_filter *mt_filter_key_part(const mt_filter *f)
{
    if (!f)
        return NULL;
    if (keys_only(f))
        return mt_filter_clone(f);
    if (f->kind != MT_F_AND)
        return NULL;
    mt_filter *l = mt_filter_key_part(f->u.bin.l), *r = mt_filter_key_part(f->u.bin.r);
    if (l && r)
        return mt_filter_and(l, r);
    return l ? l : r;
}

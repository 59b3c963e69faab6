/*
 * fuzz_filter.c -- libFuzzer target for the OData $filter parser.
 *
 * Arbitrary bytes go to mt_filter_parse exactly as libFuzzer hands them
 * over: not NUL-terminated, so AddressSanitizer catches any read past the
 * end. Beyond "never crash", it checks the promises the protocol builds on:
 * a rejection is 400 InvalidInput; whatever parses prints to a string that
 * parses back to the same tree (doubles bitwise) and prints identically; a
 * clone is equal; and the original, the re-parse and the clone evaluate
 * alike against a fixed entity. A broken promise aborts, which libFuzzer
 * reports as a crash with the input saved.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt.h"

static bool fz_equal(const mt_filter *a, const mt_filter *b)
{
    if (!a || !b)
        return a == b;
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case MT_F_CMP:
        return strcmp(a->u.cmp.prop, b->u.cmp.prop) == 0 && a->u.cmp.op == b->u.cmp.op &&
               mt_value_equal(&a->u.cmp.lit, &b->u.cmp.lit);
    case MT_F_AND:
    case MT_F_OR:
        return fz_equal(a->u.bin.l, b->u.bin.l) && fz_equal(a->u.bin.r, b->u.bin.r);
    case MT_F_NOT:
        return fz_equal(a->u.sub, b->u.sub);
    case MT_F_TRUE:
        return a->u.b == b->u.b;
    }
    return false;
}

static void fz_set(mt_entity *e, const char *name, mt_value v)
{
    mt_entity_set(e, name, &v);
}

/* One property of each type under the names a fuzzer is likely to try,
 * plus the system properties. Built once; reachable, so never a leak. */
static const mt_entity *fz_entity(void)
{
    static mt_entity *e;
    static const uint8_t g[16] = {0xc9, 0xda, 0x64, 0x55, 0x21, 0x3d, 0x42, 0xc9,
                                  0x9a, 0x79, 0x3e, 0x91, 0x49, 0xa5, 0x78, 0x33};
    if (e)
        return e;
    e = mt_entity_new("p", "r\xc3\xa9");
    e->timestamp = INT64_C(637134336000000000);
    fz_set(e, "A", mt_v_i32(1));
    fz_set(e, "Age", mt_v_i32(30));
    fz_set(e, "L", mt_v_i64(INT64_MIN));
    fz_set(e, "D", mt_v_dbl(NAN));
    fz_set(e, "Price", mt_v_dbl(-0.0));
    fz_set(e, "B", mt_v_bool(true));
    fz_set(e, "S", mt_v_str("a'b\xf0\x9f\x98\x80"));
    fz_set(e, "T", mt_v_datetime(0));
    fz_set(e, "G", mt_v_guid(g));
    fz_set(e, "X", mt_v_binary("\x0a\xff", 2));
    return e;
}

static void fz_fail(const char *what, const char *printed)
{
    fprintf(stderr, "fuzz_filter: %s (printed: %s)\n", what, printed ? printed : "(null)");
    abort();
}

static void fz_check_tree(mt_filter *f)
{
    const mt_entity *e = fz_entity();
    mt_filter *g = NULL, *c;
    char *p = mt_filter_print(f), *q;
    mt_status st;
    if (!p)
        fz_fail("print returned NULL", NULL);
    st = mt_filter_parse(p, strlen(p), &g);
    if (!mt_is_ok(&st))
        fz_fail(st.message, p);
    if (!fz_equal(f, g))
        fz_fail("re-parse differs", p);
    q = mt_filter_print(g);
    if (!q || strcmp(p, q) != 0)
        fz_fail("print is not stable", p);
    c = mt_filter_clone(f);
    if (!fz_equal(f, c))
        fz_fail("clone differs", p);
    bool r = mt_filter_eval(f, e);
    if (mt_filter_eval(g, e) != r || mt_filter_eval(c, e) != r)
        fz_fail("evaluation differs", p);
    if (mt_filter_count_comparisons(f) != mt_filter_count_comparisons(g))
        fz_fail("comparison counts differ", p);
    const char *pf = mt_filter_pinned_partition(f);
    const char *pg = mt_filter_pinned_partition(g);
    if ((pf == NULL) != (pg == NULL) || (pf && strcmp(pf, pg) != 0))
        fz_fail("pinned partitions differ", p);
    free(q);
    free(p);
    mt_filter_free(c);
    mt_filter_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_filter *f = NULL;
    mt_status st = mt_filter_parse((const char *)data, size, &f);
    if (!mt_is_ok(&st)) {
        if (st.http != 400 || strcmp(st.code, MT_ERR_INVALID_INPUT) != 0 || f != NULL)
            fz_fail("rejection is not a clean 400 InvalidInput", st.message);
        return 0;
    }
    if (!f)
        fz_fail("success without a tree", NULL);
    fz_check_tree(f);
    mt_filter_free(f);
    return 0;
}

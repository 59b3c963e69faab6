/*
 * fuzz_entity_json.c -- libFuzzer target for the JSON entity reader and
 * writer.
 *
 * Arbitrary bytes go to az_entity_read(AZ_FMT_JSON) as libFuzzer hands them
 * over, not NUL-terminated, so AddressSanitizer sees any read past the end.
 * A rejection must be a 400 with one of the codes the reader documents and
 * no entity. What is accepted is written back at every metadata level and
 * read again, and must come back with the same content: exactly for
 * minimal and full metadata, and for nometadata as the service's clients
 * see it (the types JSON cannot express arrive as their text). A $select
 * of part of the properties must come back as exactly that part. A broken
 * promise aborts, which libFuzzer reports with the input saved.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "az_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void fz_fail(const char *what, const char *body)
{
    fprintf(stderr, "fuzz_entity_json: %s\nbody: %.2000s\n", what, body ? body : "(none)");
    abort();
}

static bool fz_known_code(const char *code)
{
    static const char *const codes[] = {
        MT_ERR_INVALID_INPUT,    "DuplicatePropertiesSpecified", "PropertyNameInvalid",
        "PropertyNameTooLong",   MT_ERR_PROPERTY_TOO_LARGE,      MT_ERR_TOO_MANY_PROPS,
        MT_ERR_ENTITY_TOO_LARGE,
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

/* What nometadata leaves of a value: the types JSON cannot say become
 * their text. */
static void fz_project_nometadata(mt_entity *e)
{
    for (size_t i = 0; i < e->nprops; i++) {
        mt_value *v = &e->props[i].value, s;
        char tmp[64], *text = tmp, *heap = NULL;
        switch (v->type) {
        case MT_EDM_INT64:
            snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i64);
            break;
        case MT_EDM_DATETIME:
            mt_datetime_format(v->u.ticks, tmp);
            break;
        case MT_EDM_GUID:
            for (int k = 0, o = 0; k < 16; k++)
                o += snprintf(tmp + o, sizeof tmp - (size_t)o, "%s%02x",
                              k == 4 || k == 6 || k == 8 || k == 10 ? "-" : "", v->u.guid[k]);
            break;
        case MT_EDM_BINARY:
            text = heap = az_base64_encode((const uint8_t *)v->u.bytes.ptr, v->u.bytes.len);
            if (!heap)
                fz_fail("base64 of a binary value failed", NULL);
            break;
        case MT_EDM_DOUBLE:
            if (isfinite(v->u.dbl))
                continue;
            snprintf(tmp, sizeof tmp, "%s",
                     isnan(v->u.dbl) ? "NaN"
                     : v->u.dbl > 0  ? "Infinity"
                                     : "-Infinity");
            break;
        default:
            continue;
        }
        s = mt_v_str(text);
        mt_value_clear(v);
        mt_value_copy(v, &s);
        free(heap);
    }
}

static mt_entity *fz_reread(const char *body, size_t len)
{
    mt_entity *back = NULL;
    mt_status st = az_entity_read(AZ_FMT_JSON, body, len, &back);
    if (!mt_is_ok(&st))
        fz_fail("what was written does not read back", body);
    return back;
}

static void fz_round_trip(const mt_entity *e, az_metadata md)
{
    az_payload_ctx c = {.md = md,
                        .base_url = "http://127.0.0.1:10002/devstoreaccount1/",
                        .account = "devstoreaccount1",
                        .table = "fuzz"};
    size_t len = 0;
    char *body = az_entity_write(AZ_FMT_JSON, &c, e, &len);
    if (!body || len != strlen(body))
        fz_fail("write failed", NULL);
    mt_entity *back = fz_reread(body, len);
    mt_entity *want = mt_entity_clone(e);
    if (md == AZ_META_NONE)
        fz_project_nometadata(want);
    if (!mt_entity_same_content(back, want))
        fz_fail("round trip changed the entity", body);
    mt_entity_free(want);
    mt_entity_free(back);
    free(body);
}

/* $select of every other property, RowKey and a name the entity lacks:
 * exactly those come back (the lacking one as a null, which reads as
 * absent), and PartitionKey does not. */
static void fz_select(const mt_entity *e)
{
    char **sel = calloc(e->nprops + 2, sizeof *sel);
    size_t n = 0;
    mt_entity *want = mt_entity_new("", e->rk);
    if (!sel || !want)
        fz_fail("out of memory", NULL);
    for (size_t i = 0; i < e->nprops; i += 2) {
        sel[n++] = e->props[i].name;
        mt_entity_set(want, e->props[i].name, &e->props[i].value);
    }
    sel[n++] = "RowKey";
    if (!mt_entity_get(e, "NotThere"))
        sel[n++] = "NotThere";
    az_payload_ctx c = {.md = AZ_META_MINIMAL,
                        .base_url = "http://h/a",
                        .account = "a",
                        .table = "t",
                        .select = sel,
                        .nselect = n};
    size_t len = 0;
    char *body = az_entity_write(AZ_FMT_JSON, &c, e, &len);
    if (!body)
        fz_fail("select write failed", NULL);
    mt_entity *back = fz_reread(body, len);
    if (!mt_entity_same_content(back, want))
        fz_fail("select returned the wrong properties", body);
    mt_entity_free(back);
    mt_entity_free(want);
    free(body);
    free(sel);
}

/* The list form must be one JSON object that holds the entity; reading it
 * back as an entity must fail cleanly (its only property is an array). */
static void fz_list(const mt_entity *e)
{
    mt_entity_list l = {0};
    mt_entity_list_push(&l, mt_entity_clone(e));
    az_payload_ctx c = {.md = AZ_META_FULL, .base_url = "http://h/a", .account = "a", .table = "t"};
    size_t len = 0;
    char *body = az_entities_write(AZ_FMT_JSON, &c, &l, &len);
    if (!body)
        fz_fail("list write failed", NULL);
    mt_entity *back = (mt_entity *)&back;
    mt_status st = az_entity_read(AZ_FMT_JSON, body, len, &back);
    if (mt_is_ok(&st) || back)
        fz_fail("a feed read as an entity", body);
    free(body);
    mt_entity_list_clear(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    mt_entity *e = (mt_entity *)&e;
    mt_status st = az_entity_read(AZ_FMT_JSON, (const char *)d, n, &e);
    if (!mt_is_ok(&st)) {
        if (e || st.http != 400 || !fz_known_code(st.code))
            fz_fail("bad rejection", st.code);
        return 0;
    }
    if (!e)
        fz_fail("accepted without an entity", NULL);
    /* What the proxy adds before writing: a timestamp and an ETag. */
    e->timestamp = INT64_C(638000000001234567);
    mt_entity_set_etag(e, "W/\"datetime'2022-01-01T00%3A00%3A00.1234567Z'\"");
    for (int md = AZ_META_NONE; md <= AZ_META_FULL; md++)
        fz_round_trip(e, (az_metadata)md);
    fz_select(e);
    fz_list(e);
    mt_entity_free(e);
    return 0;
}

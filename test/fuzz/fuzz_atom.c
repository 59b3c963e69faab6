/*
 * fuzz_atom.c -- libFuzzer target over the XML readers: Atom entities
 * (and Create Table entries), Table ACLs and service properties. The
 * first byte picks the reader, the rest is the body.
 *
 * Beyond not crashing, each reader must be a fixed point of its writer:
 * an accepted entity written back and read again has the same keys and
 * properties, an accepted ACL writes a document that reads back to the
 * same ACL, and normalised service properties normalise to themselves
 * (and, laid over the defaults, give CORS rules that match requests
 * without failing).
 * A mismatch traps, so that libFuzzer keeps the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "az.h"
#include "az_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static const az_payload_ctx fuzz_ctx = {
    .md = AZ_META_FULL,
    .base_url = "http://127.0.0.1:10002/devstoreaccount1",
    .account = "devstoreaccount1",
    .table = "fuzz",
};

static void fuzz_check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

static void fuzz_entity(const char *body, size_t len)
{
    mt_entity *e = NULL, *again = NULL;
    char *name = NULL;
    mt_status st = az_atom_table_read(body, len, &name);

    fuzz_check(mt_is_ok(&st) == (name != NULL));
    free(name);
    st = az_atom_entity_read(body, len, &e);
    fuzz_check(mt_is_ok(&st) == (e != NULL));
    if (!e)
        return;
    size_t outlen = 0;
    char *doc = az_atom_entity_write(&fuzz_ctx, e, &outlen);
    fuzz_check(doc != NULL);
    st = az_atom_entity_read(doc, outlen, &again);
    fuzz_check(mt_is_ok(&st));
    fuzz_check(mt_entity_same_content(e, again));
    free(doc);
    mt_entity_free(again);
    mt_entity_free(e);
}

static void fuzz_acl(const char *body, size_t len)
{
    az_acl acl, again;
    mt_status st = az_acl_read(body, len, &acl);

    if (!mt_is_ok(&st)) {
        fuzz_check(acl.n == 0);
        return;
    }
    size_t outlen = 0;
    char *doc = az_acl_write(&acl, &outlen);
    fuzz_check(doc != NULL);
    st = az_acl_read(doc, outlen, &again);
    fuzz_check(mt_is_ok(&st));
    fuzz_check(memcmp(&acl, &again, sizeof acl) == 0);
    free(doc);
}

static void fuzz_service_properties(const char *body, size_t len)
{
    char *norm = NULL, *again = NULL;
    mt_status st = az_service_properties_read(body, len, &norm);

    fuzz_check(mt_is_ok(&st) == (norm != NULL));
    if (!norm)
        return;
    st = az_service_properties_read(norm, strlen(norm), &again);
    fuzz_check(mt_is_ok(&st));
    fuzz_check(strcmp(norm, again) == 0);
    free(again);

    /* Laid over the defaults, a valid body is accepted and its CORS rules
     * read back; matching them never fails on odd requests. */
    char *base = az_service_properties_default(NULL), *merged = NULL;
    st = az_service_properties_update(base, body, len, &merged);
    fuzz_check(mt_is_ok(&st) && merged != NULL);
    az_cors cors;
    st = az_service_properties_cors(merged, &cors);
    fuzz_check(mt_is_ok(&st));
    for (size_t i = 0; i < cors.n; i++) {
        const az_cors_rule *r =
            az_cors_match(&cors, cors.rules[i].origins, "GET", "x-ms-date, ,a*", true);
        const char *names[] = {"x-ms-request-id", "", "ETag"};
        char *expose = az_cors_expose(&cors.rules[i], names, 3);
        fuzz_check(expose != NULL);
        free(expose);
        (void)r;
    }
    az_cors_clear(&cors);
    free(base);
    free(merged);
    free(norm);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n == 0)
        return 0;
    const char *body = (const char *)d + 1;
    switch (d[0] % 3) {
    case 0:
        fuzz_entity(body, n - 1);
        break;
    case 1:
        fuzz_acl(body, n - 1);
        break;
    default:
        fuzz_service_properties(body, n - 1);
        break;
    }
    return 0;
}

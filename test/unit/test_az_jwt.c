/*
 * test_az_jwt.c -- JSON Web Key Sets and bearer tokens: a token signed by
 * a key of the set, from the expected issuer, for an expected audience and
 * within its lifetime is accepted and its claims read; every other token
 * is refused with 403 AuthenticationFailed naming the check, and a key set
 * without a usable key is refused with 400.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "az_jwt.h"

#define NOW 1704164645
#define ISS "https://sts.windows.net/tenant-1/"
#define AUD "https://storage.azure.com"

static EVP_PKEY *key_a, *key_b; /* a is in the set as "ka"; b is not */
static char *jwks_text;

static char *b64url(const void *data, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const uint8_t *p = data;
    char *out = malloc(n * 4 / 3 + 4), *o = out;
    assert_non_null(out);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = a[v >> 18 & 63];
        *o++ = a[v >> 12 & 63];
        if (i + 1 < n)
            *o++ = a[v >> 6 & 63];
        if (i + 2 < n)
            *o++ = a[v & 63];
    }
    *o = '\0';
    return out;
}

static char *bn_b64url(EVP_PKEY *k, const char *name)
{
    BIGNUM *bn = NULL;
    assert_true(EVP_PKEY_get_bn_param(k, name, &bn));
    int n = BN_num_bytes(bn);
    uint8_t *buf = malloc((size_t)n);
    assert_non_null(buf);
    BN_bn2bin(bn, buf);
    char *s = b64url(buf, (size_t)n);
    free(buf);
    BN_free(bn);
    return s;
}

/* {"kty":"RSA","kid":kid,"n":...,"e":...} of k. */
static void jwk_of(EVP_PKEY *k, const char *kid, char *out, size_t cap)
{
    char *n = bn_b64url(k, OSSL_PKEY_PARAM_RSA_N), *e = bn_b64url(k, OSSL_PKEY_PARAM_RSA_E);
    snprintf(out, cap, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}",
             kid, n, e);
    free(n);
    free(e);
}

/* header.payload signed RS256 with k (NULL: an empty signature). */
static char *token(const char *header, const char *payload, EVP_PKEY *k)
{
    char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 2;
    char *body = malloc(n);
    assert_non_null(body);
    snprintf(body, n, "%s.%s", h, p);
    uint8_t sig[512];
    size_t slen = 0;
    if (k) {
        slen = sizeof sig;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
        assert_int_equal(EVP_DigestSign(md, sig, &slen, (uint8_t *)body, strlen(body)), 1);
        EVP_MD_CTX_free(md);
    }
    char *s = b64url(sig, slen);
    char *out = malloc(strlen(body) + strlen(s) + 2);
    assert_non_null(out);
    sprintf(out, "%s.%s", body, s);
    free(h);
    free(p);
    free(body);
    free(s);
    return out;
}

static int setup(void **state)
{
    (void)state;
    key_a = EVP_RSA_gen(2048);
    key_b = EVP_RSA_gen(2048);
    char a[2048], b[2048];
    jwk_of(key_a, "ka", a, sizeof a);
    jwk_of(key_b, "kb", b, sizeof b);
    (void)b;
    jwks_text = malloc(8192);
    snprintf(jwks_text, 8192,
             "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"},"
             "{\"kty\":\"RSA\",\"kid\":\"small\",\"n\":\"AQAB\",\"e\":\"AQAB\"},%s]}",
             a);
    return key_a && key_b && jwks_text ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    free(jwks_text);
    return 0;
}

static az_jwks *keys(void)
{
    az_jwks *k = NULL;
    mt_status st = az_jwks_parse(jwks_text, strlen(jwks_text), &k);
    assert_true(mt_is_ok(&st));
    return k;
}

static const az_jwt_expect want = {.issuer = ISS,
                                   .audiences = {AUD, "https://acct.table.core.windows.net", NULL},
                                   .now = NOW,
                                   .skew_s = 60};

/* The claims of a good token, with one field replaced by extra ("" for
 * none); printf-style via a fixed template. */
static char *claims(const char *aud, const char *iss, long nbf_off, long exp_off, const char *more)
{
    char *s = malloc(1024);
    assert_non_null(s);
    snprintf(s, 1024, "{\"aud\":%s,\"iss\":\"%s\",\"iat\":%ld,\"nbf\":%ld,\"exp\":%ld%s}", aud, iss,
             (long)NOW, (long)NOW + nbf_off, (long)NOW + exp_off, more);
    return s;
}

static mt_status check(const char *tok, az_jwt_claims *c)
{
    az_jwks *k = keys();
    mt_status st = az_jwt_verify(tok, strlen(tok), k, &want, c);
    az_jwks_free(k);
    return st;
}

static void expect_refused(const char *tok, const char *why)
{
    az_jwt_claims c;
    mt_status st = check(tok, &c);
    assert_int_equal(st.http, 403);
    assert_string_equal(st.code, "AuthenticationFailed");
    if (!strstr(st.message, why))
        fail_msg("message '%s' lacks '%s'", st.message, why);
    assert_string_equal(c.oid, "");
}

static void test_jwks(void **state)
{
    (void)state;
    az_jwks *k = keys();
    assert_int_equal(az_jwks_count(k), 1); /* the EC and the small key skipped */
    assert_true(az_jwks_has(k, "ka"));
    assert_false(az_jwks_has(k, "small"));
    az_jwks_free(k);
    static const char *const bad[] = {
        "",
        "[]",
        "{\"keys\":{}}",
        "{\"keys\":[]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
        "{\"keys\":[1,\"x\",null]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mt_status st = az_jwks_parse(bad[i], strlen(bad[i]), &k);
        assert_int_equal(st.http, 400);
        assert_null(k);
    }
}

static void test_valid(void **state)
{
    (void)state;
    char *p = claims("\"" AUD "\"", ISS, -5, 3600,
                     ",\"oid\":\"o-1\",\"appid\":\"app-1\",\"tid\":\"tenant-1\","
                     "\"roles\":[\"Storage Table Data Reader\",7]");
    char *t = token("{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"ka\"}", p, key_a);
    az_jwt_claims c;
    mt_status st = check(t, &c);
    assert_true(mt_is_ok(&st));
    assert_string_equal(c.oid, "o-1");
    assert_string_equal(c.appid, "app-1");
    assert_string_equal(c.tid, "tenant-1");
    assert_int_equal(c.nroles, 1);
    assert_string_equal(c.roles[0], "Storage Table Data Reader");
    assert_int_equal(c.exp, NOW + 3600);
    free(t);
    /* No kid: any key of the set; an array audience; v2's azp; within the
     * skew on both ends. */
    free(p);
    p = claims("[\"x\",\"https://acct.table.core.windows.net\"]", ISS, 50, -50,
               ",\"azp\":\"app-2\"");
    t = token("{\"alg\":\"RS256\"}", p, key_a);
    st = check(t, &c);
    assert_true(mt_is_ok(&st));
    assert_string_equal(c.appid, "app-2");
    free(t);
    free(p);
}

static void test_refused(void **state)
{
    (void)state;
    const char *h = "{\"alg\":\"RS256\",\"kid\":\"ka\"}";
    struct {
        char *payload;
        const char *header;
        EVP_PKEY *key;
        const char *why;
    } cases[] = {
        {claims("\"" AUD "\"", ISS, -5, -61, ""), h, key_a, "expired"},
        {claims("\"" AUD "\"", ISS, 61, 3600, ""), h, key_a, "not yet valid"},
        {claims("\"" AUD "\"", "https://sts.windows.net/other/", 0, 3600, ""), h, key_a, "Issuer"},
        {claims("\"https://vault.azure.net\"", ISS, 0, 3600, ""), h, key_a, "Audience"},
        {claims("[]", ISS, 0, 3600, ""), h, key_a, "Audience"},
        {claims("\"" AUD "\"", ISS, 0, 3600, ""), h, key_b, "Signature"},
        {claims("\"" AUD "\"", ISS, 0, 3600, ""), "{\"alg\":\"RS256\",\"kid\":\"kb\"}", key_b,
         "Signature"},
        {claims("\"" AUD "\"", ISS, 0, 3600, ""), "{\"alg\":\"none\"}", NULL, "RS256"},
        {claims("\"" AUD "\"", ISS, 0, 3600, ""), "{\"alg\":\"HS256\",\"kid\":\"ka\"}", key_a,
         "RS256"},
        {claims("\"" AUD "\"", ISS, 0, 3600, ""), "[1]", key_a, "not a JSON Web Token"},
        {strdup("{\"aud\":\"" AUD "\",\"iss\":\"" ISS "\"}"), h, key_a, "no expiry"},
        {strdup("[\"not an object\"]"), h, key_a, "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *t = token(cases[i].header, cases[i].payload, cases[i].key);
        expect_refused(t, cases[i].why);
        free(t);
        free(cases[i].payload);
    }
    static const char *const shapes[] = {"", "a", "a.b", "a.b.c.d", "..", "e30.e30.", "!!.e30.e30"};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        expect_refused(shapes[i], "Server failed to authenticate");
    /* A valid token with one signature byte changed. */
    char *p = claims("\"" AUD "\"", ISS, 0, 3600, "");
    char *t = token(h, p, key_a);
    size_t n = strlen(t);
    t[n - 3] = t[n - 3] == 'A' ? 'B' : 'A';
    expect_refused(t, "Signature");
    free(t);
    free(p);
    /* No key set at all. */
    az_jwt_claims c;
    mt_status st = az_jwt_verify("a.b.c", 5, NULL, &want, &c);
    assert_int_equal(st.http, 403);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwks),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * fuzz_jwt.c -- libFuzzer target for the JSON Web Key Set parser and the
 * bearer token check (azure/az_jwt.c).
 *
 * Input: one flag byte, then a key set and a token separated by the first
 * '\n'. Flag bits: 0 use the target's own key set (one RSA key, kid
 * "fz") instead of the input's; 1 sign the token's first two parts with
 * the target's key, replacing its third. A fuzzer cannot forge RS256, so
 * bit 1 lets the claim checks behind the signature see arbitrary headers
 * and claims.
 *
 * Promises checked beyond "never crash or leak": a key set is either
 * refused with a 400 or holds at least one key; a token is either refused
 * with a 403 AuthenticationFailed or its claims say it is unexpired at the
 * check's time; a token is never accepted against an empty key set.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "az_jwt.h"

#define FZ_NOW 1704164645
#define FZ_SKEW 60

static EVP_PKEY *fz_priv;
static char *fz_jwks;

static char *b64url(const uint8_t *p, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n * 4 / 3 + 4), *o = out;
    if (!out)
        abort();
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
    if (!EVP_PKEY_get_bn_param(k, name, &bn))
        abort();
    int n = BN_num_bytes(bn);
    uint8_t *buf = malloc((size_t)n);
    if (!buf)
        abort();
    BN_bn2bin(bn, buf);
    char *s = b64url(buf, (size_t)n);
    free(buf);
    BN_free(bn);
    return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_priv = EVP_RSA_gen(2048);
    if (!fz_priv)
        abort();
    char *n = bn_b64url(fz_priv, OSSL_PKEY_PARAM_RSA_N),
         *e = bn_b64url(fz_priv, OSSL_PKEY_PARAM_RSA_E);
    size_t cap = strlen(n) + strlen(e) + 128;
    fz_jwks = malloc(cap);
    if (!fz_jwks)
        abort();
    snprintf(
        fz_jwks, cap,
        "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"fz\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}]}",
        n, e);
    free(n);
    free(e);
    return 0;
}

/* header.payload of tok signed with the target's key. */
static char *fz_resign(const char *tok, size_t len)
{
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    size_t body = d2 ? (size_t)(d2 - tok) : len;
    uint8_t sig[512];
    size_t slen = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, fz_priv) != 1 ||
        EVP_DigestSign(md, sig, &slen, (const uint8_t *)tok, body) != 1)
        abort();
    EVP_MD_CTX_free(md);
    char *s = b64url(sig, slen);
    char *out = malloc(body + strlen(s) + 2);
    if (!out)
        abort();
    memcpy(out, tok, body);
    out[body] = '.';
    strcpy(out + body + 1, s);
    free(s);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    unsigned flags = data[0];
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    const char *nl = memchr(rest, '\n', n);
    size_t klen = nl ? (size_t)(nl - rest) : n;
    const char *tok = nl ? nl + 1 : "";
    size_t tlen = nl ? n - klen - 1 : 0;

    az_jwks *keys = NULL;
    mt_status st = (flags & 1) ? az_jwks_parse(fz_jwks, strlen(fz_jwks), &keys)
                               : az_jwks_parse(rest, klen, &keys);
    if (mt_is_ok(&st) != (keys != NULL) || (!keys && st.http != 400) ||
        (keys && az_jwks_count(keys) == 0))
        abort();

    char *copy = malloc(tlen + 1);
    if (!copy)
        abort();
    memcpy(copy, tok, tlen);
    copy[tlen] = '\0';
    char *signed_tok = (flags & 2) && tlen < 16384 ? fz_resign(copy, tlen) : NULL;
    const char *t = signed_tok ? signed_tok : copy;
    az_jwt_expect want = {.issuer = "https://sts.windows.net/t/",
                          .audiences = {"https://storage.azure.com", NULL},
                          .now = FZ_NOW,
                          .skew_s = FZ_SKEW};
    az_jwt_claims c;
    st = az_jwt_verify(t, strlen(t), keys, &want, &c);
    if (!mt_is_ok(&st) && (st.http != 403 || strcmp(st.code, "AuthenticationFailed") != 0))
        abort();
    if (mt_is_ok(&st) && (!keys || c.exp + FZ_SKEW < FZ_NOW))
        abort();
    free(signed_tok);
    free(copy);
    az_jwks_free(keys);
    return 0;
}

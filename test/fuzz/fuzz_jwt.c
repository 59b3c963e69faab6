/*
 * fuzz_jwt.c -- libFuzzer target for the JSON Web Key Set parser and the
 * bearer token check (azure/wire/az_jwt.c).
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
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "az_jwt.h"

#define FZ_NOW 1704164645
#define FZ_SKEW 60

/* The target's signing key, made for this target alone (parsing it is
 * much faster than making one for each replayed input). */
static const char fz_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC0s/9+C7UIKiss\n"
                             "mmHQJg3ctTbj45mHggFG3XMk2SSq5CVcXhAU0o2gCcgUFQlqyebtL3Nq4XMqhDgR\n"
                             "36R9qIu4Ifar5MPC9S5zKKiGakPRckMDXMNLaDLjLO3u9J9X16BN+qhr0q9mktyg\n"
                             "B7X6bgTPrdFp+UhavxyYDP/29KY6iCYl8ral7WBZb/4vZANS+6P9J07SZqN9K2ch\n"
                             "EFblF+/W6MVMzZICvMMz40bNSBx0hkCsEuf9X44eRhM/iDNVpNdvdL0Wib3NjVwb\n"
                             "PW5eHlh+cVKfvgPbWSYJ5b4ObcIGtZr3vbkXfzFwVqNSdyGB6h35JNkMZO7lf0Kk\n"
                             "Nae2MOQjAgMBAAECggEAJwuxzDmZX29FLvkY45IlcqhReQKH/SjRP8+//plQ/AAa\n"
                             "NpA4p1crtQYIDpbRFxsTY/LZ3KFkci5psysA7woJTrtAArqGtkymQcnqSEkT6GDp\n"
                             "LAPSSyvzuvTNYNHI0IFOKStdUxcOQXrAY2/nGXrGXV2wn1Z3FOywsAY3FNSeSo0c\n"
                             "qm8RTjyr3xI5OQoVtxcTggZ3YZ3iewhhSVlnhd5oP6bfa0Z/rGYHY3jHyovZWSUa\n"
                             "VTS5Bk7nRXZPoYqUlHgVN+D7Avj5BKx9Va95wA96k5PgnvtpzlUvfH04y7k8oRTF\n"
                             "2Q/0oUnIpqbBrllAXfmFDRK1n7LUH5l7z3beinI1iQKBgQD686lxGJK8MrZIAnwk\n"
                             "hiPuWHblLzyG+S5yam6IdUPytVbNxpDwcv74F7odIv9CZ4rKqT28bKbT83nWEurj\n"
                             "0kqaP6RuOkz6D4EcxvclvvxYMCdLBFFoCmZY+UNFUZhaePwWPgvbXJ6YITjUfkX6\n"
                             "kMbzcN7kDUO9ILeQY1nOq521XwKBgQC4VpK+ocOr4AoZLtEBnWkCHFQeNxcqAMzF\n"
                             "0w5UcVkOuEPCzogSHahbYUmNrxBJxZEVG74waNx+JGfjJj9NwjcVU2xk2AHnRYzM\n"
                             "cQWOpTiNASSWQwFI01W54+pYCSz3kuffC44BW2IAQR3pDtHQmSL3gYjZtbUcP5Jb\n"
                             "/KguasojvQKBgQDVu3sfyMcIpMRc9kjXLqwhjpTMw3twlX+6kO1NKVrStyGUJr9B\n"
                             "GyAPGt43fJwc6WTrEFN1TLCVqjOlYP1PRcamMvgPrXXsMBJN+SN7sXrofTKqEKZo\n"
                             "zxq2Qq3JtyHkRFCnfPbKQMsOVJU7XcSqEG5x3jrnzmhYBypwPj256K5sTwKBgGRF\n"
                             "a2NY2PgoUTXrmnNXbaRhRnx9GROXBcxiBvx1/6ybHPjdoXTBPzAd1oXEgYavekDS\n"
                             "K31nvPC82unbhznD+HSYQXEFctuboIAgxpYWV5GT2pQF9K/pjUslp/alXxl4hrp0\n"
                             "LZWdYMyknyGEFytx8WxSwN80EUVBa1qwL8e3/Sa9AoGAUhbWBfJ7LqSUbTHIz4KE\n"
                             "aVhLQyxF/nJ2T818f/8YMmglUz5XwfEJCXBSM2fUPYFdOVXqATX9OlDOw7kOz+fQ\n"
                             "tJn4n65T8qGuaYbSo5oZmeWZ6i9QPI1i1sbgc9fka7fOU8JgLN2kQfAHbXg81G4j\n"
                             "BGVIA0QhPK2QWvTVAw1AfQ8=\n"
                             "-----END PRIVATE KEY-----\n";

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
    BIO *bio = BIO_new_mem_buf(fz_pem, -1);
    fz_priv = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
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

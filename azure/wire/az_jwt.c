/*
 * az_jwt.c -- JSON Web Key Sets and the check of a Microsoft Entra ID
 * access token against one (see az_jwt.h).
 *
 * A token is header.payload.signature, each base64url without padding.
 * The checks, in order, each failure a 403 AuthenticationFailed naming the
 * check: the shape (three parts, at most AZ_JWT_MAX bytes, JSON objects);
 * the algorithm, RS256 only (never "none", never an HMAC whose key would
 * be the public key); the signature, with the key named by "kid" or, when
 * the header names none, any key of the set; "exp" (required) and "nbf"
 * (if present) against now with skew_s either way; "iss" equal to the
 * expected issuer; "aud" (a string or an array) one of the expected
 * audiences. The signature comes before the claims, so nothing an
 * unsigned token says is believed.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "az.h"
#include "az_jwt.h"

#define JWT_AUTHN "AuthenticationFailed"
#define JWT_PREFIX "Server failed to authenticate the request. "

typedef struct jwk {
    char kid[128];
    EVP_PKEY *key;
} jwk;

struct az_jwks {
    jwk keys[AZ_JWKS_MAX_KEYS];
    size_t n;
};

static mt_status deny(const char *why)
{
    return mt_error(403, JWT_AUTHN, JWT_PREFIX "%s", why);
}

/* base64url (padding optional) into a new buffer; false on bad input. */
static bool b64url_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (n % 4 == 1)
        return false;
    while (n && s[n - 1] == '=')
        n--;
    char *t = malloc(n + 4);
    if (!t)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (c == '+' || c == '/' || c == '=')
            c = '!'; /* not base64url: refused below */
        t[i] = c;
    }
    size_t m = n;
    while (m % 4)
        t[m++] = '=';
    bool ok = az_base64_decode(t, m, out, outlen);
    free(t);
    return ok;
}

static cJSON *json_part(const char *s, size_t n)
{
    uint8_t *raw;
    size_t len;
    if (!b64url_decode(s, n, &raw, &len))
        return NULL;
    cJSON *j = cJSON_ParseWithLength((const char *)raw, len);
    free(raw);
    if (j && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void copy_str(char *dst, size_t cap, const char *s)
{
    if (s && strlen(s) < cap)
        memcpy(dst, s, strlen(s) + 1);
    else
        dst[0] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Key sets.                                                                  */

static EVP_PKEY *rsa_key(const char *n64, const char *e64)
{
    uint8_t *n = NULL, *e = NULL;
    size_t nl = 0, el = 0;
    EVP_PKEY *key = NULL;
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (!b64url_decode(n64, strlen(n64), &n, &nl) || !b64url_decode(e64, strlen(e64), &e, &el))
        goto done;
    if (nl < 256 || nl > 2048 || el == 0 || el > 8) /* 2048 to 16384 bits */
        goto done;
    bn = BN_bin2bn(n, (int)nl, NULL);
    be = BN_bin2bn(e, (int)el, NULL);
    if (!bn || !be || BN_num_bits(bn) < 2048 || BN_is_zero(be) || !BN_is_odd(be))
        goto done;
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        goto done;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        key = NULL;
done:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return key;
}

static void jwks_add(az_jwks *k, const cJSON *item)
{
    if (!cJSON_IsObject(item) || k->n >= AZ_JWKS_MAX_KEYS)
        return;
    const char *kty = str_of(item, "kty"), *use = str_of(item, "use"), *alg = str_of(item, "alg");
    const char *kid = str_of(item, "kid"), *n = str_of(item, "n"), *e = str_of(item, "e");
    if (!kty || strcmp(kty, "RSA") != 0 || !n || !e || (use && strcmp(use, "sig") != 0) ||
        (alg && strcmp(alg, "RS256") != 0) || (kid && strlen(kid) >= sizeof k->keys[0].kid))
        return;
    EVP_PKEY *key = rsa_key(n, e);
    if (!key)
        return;
    copy_str(k->keys[k->n].kid, sizeof k->keys[k->n].kid, kid);
    k->keys[k->n++].key = key;
}

mt_status az_jwks_parse(const char *json, size_t len, az_jwks **out)
{
    *out = NULL;
    cJSON *root = json ? cJSON_ParseWithLength(json, len) : NULL;
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
    if (!cJSON_IsArray(keys)) {
        cJSON_Delete(root);
        return mt_error(400, MT_ERR_INVALID_INPUT,
                        "The signing keys are not a JSON Web Key Set ({\"keys\": [...]}).");
    }
    az_jwks *k = calloc(1, sizeof *k);
    if (!k) {
        cJSON_Delete(root);
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, keys) jwks_add(k, item);
    cJSON_Delete(root);
    if (!k->n) {
        az_jwks_free(k);
        return mt_error(400, MT_ERR_INVALID_INPUT,
                        "The key set holds no RSA signing key of 2048 bits or more.");
    }
    *out = k;
    return mt_ok();
}

void az_jwks_free(az_jwks *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->keys[i].key);
    free(k);
}

size_t az_jwks_count(const az_jwks *k)
{
    return k ? k->n : 0;
}

bool az_jwks_has(const az_jwks *k, const char *kid)
{
    for (size_t i = 0; k && kid && i < k->n; i++)
        if (strcmp(k->keys[i].kid, kid) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------------ */
/* Tokens.                                                                    */

static bool rs256_ok(EVP_PKEY *key, const char *data, size_t dlen, const uint8_t *sig, size_t slen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
              EVP_DigestVerify(md, sig, slen, (const uint8_t *)data, dlen) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

static bool signature_ok(const az_jwks *keys, const char *kid, const char *data, size_t dlen,
                         const uint8_t *sig, size_t slen)
{
    for (size_t i = 0; keys && i < keys->n; i++) {
        if (kid && strcmp(keys->keys[i].kid, kid) != 0)
            continue;
        if (rs256_ok(keys->keys[i].key, data, dlen, sig, slen))
            return true;
    }
    return false;
}

/* A NumericDate claim: a finite number within reason. */
static bool num_claim(const cJSON *o, const char *name, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v) || !(v->valuedouble > -1e12 && v->valuedouble < 1e12))
        return false;
    *out = v->valuedouble;
    return true;
}

static bool audience_ok(const cJSON *aud, const az_jwt_expect *want)
{
    const cJSON *one = aud;
    bool array = cJSON_IsArray(aud);
    if (array)
        one = aud->child;
    for (; one; one = array ? one->next : NULL) {
        if (!cJSON_IsString(one))
            continue;
        for (size_t i = 0; i < AZ_JWT_AUD_MAX && want->audiences[i]; i++)
            if (strcmp(one->valuestring, want->audiences[i]) == 0)
                return true;
    }
    return false;
}

static void take_claims(const cJSON *p, az_jwt_claims *out)
{
    copy_str(out->oid, sizeof out->oid, str_of(p, "oid"));
    const char *app = str_of(p, "appid");
    copy_str(out->appid, sizeof out->appid, app ? app : str_of(p, "azp"));
    copy_str(out->sub, sizeof out->sub, str_of(p, "sub"));
    copy_str(out->tid, sizeof out->tid, str_of(p, "tid"));
    const cJSON *roles = cJSON_GetObjectItemCaseSensitive(p, "roles"), *r;
    if (!cJSON_IsArray(roles))
        return;
    cJSON_ArrayForEach(r, roles)
    {
        if (out->nroles >= sizeof out->roles / sizeof out->roles[0])
            break;
        if (cJSON_IsString(r) && strlen(r->valuestring) < sizeof out->roles[0])
            copy_str(out->roles[out->nroles++], sizeof out->roles[0], r->valuestring);
    }
}

/* The claims of a payload whose signature was checked. */
static mt_status claims_check(const cJSON *p, const az_jwt_expect *want, az_jwt_claims *out)
{
    double exp, nbf;
    if (!num_claim(p, "exp", &exp))
        return deny("The token has no expiry (exp).");
    if ((double)want->now > exp + (double)want->skew_s)
        return deny("Lifetime validation failed. The token is expired.");
    if (cJSON_GetObjectItemCaseSensitive(p, "nbf") &&
        (!num_claim(p, "nbf", &nbf) || (double)want->now + (double)want->skew_s < nbf))
        return deny("Lifetime validation failed. The token is not yet valid.");
    const char *iss = str_of(p, "iss");
    if (!iss || !want->issuer || strcmp(iss, want->issuer) != 0)
        return deny("Issuer validation failed.");
    if (!audience_ok(cJSON_GetObjectItemCaseSensitive(p, "aud"), want))
        return deny("Audience validation failed.");
    out->exp = (time_t)exp;
    take_claims(p, out);
    return mt_ok();
}

mt_status az_jwt_verify(const char *token, size_t len, const az_jwks *keys,
                        const az_jwt_expect *want, az_jwt_claims *out)
{
    memset(out, 0, sizeof *out);
    if (!token || !want || len == 0 || len > AZ_JWT_MAX)
        return deny("The bearer token is missing or too long.");
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return deny("The bearer token is not a JSON Web Token.");
    cJSON *head = json_part(token, (size_t)(dot1 - token));
    const char *alg = str_of(head, "alg"), *kid = str_of(head, "kid");
    if (!head || !alg) {
        cJSON_Delete(head);
        return deny("The bearer token is not a JSON Web Token.");
    }
    copy_str(out->kid, sizeof out->kid, kid);
    if (strcmp(alg, "RS256") != 0) {
        cJSON_Delete(head);
        return deny("The token's signature algorithm is not RS256.");
    }
    uint8_t *sig = NULL;
    size_t slen = 0;
    bool sig_read = b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), &sig, &slen);
    bool signed_ok = sig_read && signature_ok(keys, kid ? out->kid : NULL, token,
                                              (size_t)(dot2 - token), sig, slen);
    free(sig);
    cJSON_Delete(head);
    if (!signed_ok)
        return deny("Signature validation failed.");
    cJSON *payload = json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!payload)
        return deny("The token's claims are not a JSON object.");
    char kept[sizeof out->kid];
    memcpy(kept, out->kid, sizeof kept);
    mt_status st = claims_check(payload, want, out);
    cJSON_Delete(payload);
    if (!mt_is_ok(&st)) {
        memset(out, 0, sizeof *out);
        memcpy(out->kid, kept, sizeof kept);
    }
    return st;
}

/*
 * az_jwt.h -- Microsoft Entra ID access tokens as the table endpoint
 * receives them: a JSON Web Key Set (the issuer's signing keys) and the
 * check of one JWT against it (RS256 signature, issuer, audience,
 * lifetime).
 *
 * Both parsers take untrusted bytes: any input gives a status, never a
 * crash, and nothing is read past len. Every refusal of a token is 403
 * AuthenticationFailed with a message saying which check failed, and
 * never echoes the token.
 *
 * Ownership: as in az.h -- returned pointers are the caller's; arguments
 * are borrowed for the call. A key set is immutable once parsed and may
 * be shared by threads.
 */
#ifndef AZ_JWT_H
#define AZ_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "mt.h"

#define AZ_JWT_MAX 16384    /* longest token accepted, in bytes */
#define AZ_JWKS_MAX_KEYS 64 /* keys kept from one set */
#define AZ_JWT_AUD_MAX 8    /* audiences one check accepts */

typedef struct az_jwks az_jwks;

/* {"keys": [{"kty": "RSA", "kid", "n", "e", ...}, ...]}: the RSA keys of at
 * least 2048 bits whose "use" (if any) is "sig"; other keys are skipped.
 * 400 InvalidInput when the text is not a key set or holds no usable key. */
mt_status az_jwks_parse(const char *json, size_t len, az_jwks **out);
void az_jwks_free(az_jwks *k);
size_t az_jwks_count(const az_jwks *k);
/* Does the set hold a key with this kid? */
bool az_jwks_has(const az_jwks *k, const char *kid);

/* What a token must show. */
typedef struct az_jwt_expect {
    const char *issuer;                    /* exact "iss" */
    const char *audiences[AZ_JWT_AUD_MAX]; /* any of them, NULL-terminated */
    time_t now;
    long skew_s; /* tolerance on exp and nbf */
} az_jwt_expect;

/* What a valid token says about its caller (empty strings when absent). */
typedef struct az_jwt_claims {
    char kid[128];   /* the header's, also when the check failed */
    char oid[128];   /* object id of the user or service principal */
    char appid[128]; /* appid (v1) or azp (v2) */
    char sub[128];
    char tid[128];
    char roles[16][64]; /* the "roles" claim, at most 16, longer ones dropped */
    size_t nroles;
    time_t exp;
} az_jwt_claims;

/* Checks token (the text after "Bearer ") against keys and want; fills
 * *out (zeroed first). 403 AuthenticationFailed on any failure. */
mt_status az_jwt_verify(const char *token, size_t len, const az_jwks *keys,
                        const az_jwt_expect *want, az_jwt_claims *out);

#endif

/*
 * px_entra.h -- Microsoft Entra ID bearer tokens on the table endpoint:
 * the issuer's signing keys (a JWKS file or URL, kept fresh), the check
 * of a token (az_jwt.h) and the caller's data role as a grant.
 *
 * Threads: px_entra_check may run on every connection thread at once.
 */
#ifndef PX_ENTRA_H
#define PX_ENTRA_H

#include <stdbool.h>
#include <stdio.h>

#include "az.h"

typedef struct px_entra px_entra;

/* Loads the keys from jwks (a file path, or an http(s) URL) and the role
 * map from roles_file (NULL or "": roles from the tokens' "roles" claim
 * only). issuer is the exact "iss" tokens must carry. NULL with one line
 * on err when the keys or the map cannot be read. ca (NULL or "": the
 * system's) verifies an https URL. */
px_entra *px_entra_new(const char *jwks, const char *issuer, const char *roles_file,
                       const char *account, const char *ca, FILE *err);
void px_entra_free(px_entra *e);

/* Checks the token of "Authorization: Bearer <token>" for a request that
 * came in over tls (false: refused, as the service refuses bearer tokens
 * over http); fills *grant with
 * the caller's role: a reader may read and list, a contributor may do
 * what Shared Key may but table ACLs. 403 AuthenticationFailed for a bad
 * token, 403 AuthorizationPermissionMismatch (at the operation) for a
 * valid one without a data role. */
mt_status px_entra_check(px_entra *e, const char *token, bool tls, az_grant *grant);

#endif

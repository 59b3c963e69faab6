/*
 * px_entra.c -- Microsoft Entra ID bearer tokens from the applications:
 * the issuer's signing keys, the check of a token, and the caller's data
 * role.
 *
 * Keys: --jwks names a JWKS file or an http(s) URL (Entra ID's is
 * https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys). It is
 * read at start (a failure stops the start) and again when a token names a
 * key the set lacks (the issuer rolled its keys) or the set is older than
 * PX_JWKS_MAX_AGE_S, at most once every PX_JWKS_MIN_GAP_S (so tokens with
 * made-up key ids cannot make the proxy hammer the issuer); a failed reload
 * is logged and the old set kept. Checks hold a reference to the set they
 * use, so a reload never frees a set under a check.
 *
 * Audiences accepted: https://storage.azure.com (the SDKs' default scope)
 * and the account's endpoint https://<account>.table.core.windows.net,
 * each with or without a trailing slash; never one derived from the
 * request. Clock skew: PX_TOKEN_SKEW_S either way.
 *
 * Roles: a caller is a contributor when its token's "roles" claim holds
 * "Storage Table Data Contributor" or the role map gives it that role,
 * a reader likewise with "Storage Table Data Reader". The role map
 * (--token-roles) is a text file of lines "<id> <role>", where id is an
 * object id (oid), an application id (appid/azp) or "*" for every valid
 * token, and role is one of the two names (or "reader" / "contributor");
 * blank lines and lines starting with '#' are skipped.
 */
#include "px_entra.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "az_jwt.h"
#include "px.h"

#define PX_JWKS_MAX_AGE_S 3600
#define PX_JWKS_MIN_GAP_S 10
#define PX_JWKS_BODY_MAX (1 << 20)
#define PX_TOKEN_SKEW_S 60
#define PX_ROLE_READER "Storage Table Data Reader"
#define PX_ROLE_CONTRIBUTOR "Storage Table Data Contributor"

enum { ROLE_NONE = 0, ROLE_READER = 1, ROLE_CONTRIBUTOR = 2 };

typedef struct role_entry {
    char id[128];
    int role;
} role_entry;

/* A key set and the checks using it. */
typedef struct keyset {
    az_jwks *keys;
    int refs;
} keyset;

struct px_entra {
    char *source; /* file path or URL */
    char *ca;     /* CA bundle for an https URL, or NULL */
    char *issuer;
    char account[64];
    role_entry *roles;
    size_t nroles;
    pthread_mutex_t mu;
    keyset *cur;
    time_t loaded;   /* when cur was read */
    time_t last_try; /* the last reload attempt */
    bool reloading;
};

/* ------------------------------------------------------------------------ */
/* Reading the key set.                                                       */

static bool is_url(const char *s)
{
    return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
}

/* The source's bytes into *b; false with why set. */
static bool read_source(const char *src, const char *ca, mt_buf *b, char *why, size_t cap)
{
    if (!is_url(src)) {
        FILE *f = fopen(src, "rb");
        if (!f) {
            snprintf(why, cap, "cannot open %s", src);
            return false;
        }
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b->len <= PX_JWKS_BODY_MAX)
            mt_buf_put(b, chunk, n);
        fclose(f);
        if (b->oom || b->len > PX_JWKS_BODY_MAX) {
            snprintf(why, cap, "%s is too large", src);
            return false;
        }
        return true;
    }
    az_fetch_req q = {.url = src, .ca_file = ca, .timeout_ms = 10000, .max = PX_JWKS_BODY_MAX};
    long status = 0;
    char err[256];
    if (!az_fetch(&q, &status, b, err, sizeof err)) {
        snprintf(why, cap, "%s: %s", src, err);
        return false;
    }
    if (status != 200) {
        snprintf(why, cap, "%s: HTTP %ld", src, status);
        return false;
    }
    return true;
}

static az_jwks *load_keys(const char *src, const char *ca, char *why, size_t cap)
{
    mt_buf b = {0};
    az_jwks *k = NULL;
    if (read_source(src, ca, &b, why, cap)) {
        mt_status st = az_jwks_parse(b.p ? b.p : "", b.len, &k);
        if (!mt_is_ok(&st))
            snprintf(why, cap, "%s: %s", src, st.message);
    }
    free(b.p);
    return k;
}

/* ------------------------------------------------------------------------ */
/* The role map.                                                              */

static int role_named(const char *s)
{
    if (strcasecmp(s, PX_ROLE_READER) == 0 || strcasecmp(s, "reader") == 0)
        return ROLE_READER;
    if (strcasecmp(s, PX_ROLE_CONTRIBUTOR) == 0 || strcasecmp(s, "contributor") == 0)
        return ROLE_CONTRIBUTOR;
    return ROLE_NONE;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static bool load_roles(px_entra *e, const char *path, FILE *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(err, "mtable-proxy: cannot read --token-roles (MTABLE_TOKEN_ROLES) %s\n", path);
        return false;
    }
    char line[512];
    int no = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        no++;
        char *s = trim(line), *sp = s;
        if (!*s || *s == '#')
            continue;
        while (*sp && !isspace((unsigned char)*sp))
            sp++;
        if (*sp)
            *sp++ = '\0';
        int role = role_named(trim(sp));
        role_entry *grown = role ? realloc(e->roles, (e->nroles + 1) * sizeof *grown) : NULL;
        if (!role || strlen(s) >= sizeof grown->id || !grown) {
            if (grown)
                e->roles = grown;
            fprintf(err,
                    "mtable-proxy: --token-roles %s line %d: expected '<object id, app id or *> "
                    "<" PX_ROLE_READER " | " PX_ROLE_CONTRIBUTOR ">'\n",
                    path, no);
            ok = false;
            break;
        }
        e->roles = grown;
        snprintf(e->roles[e->nroles].id, sizeof e->roles[0].id, "%s", s);
        e->roles[e->nroles++].role = role;
    }
    fclose(f);
    return ok;
}

static int role_of(const px_entra *e, const az_jwt_claims *c)
{
    int role = ROLE_NONE;
    for (size_t i = 0; i < c->nroles; i++) {
        int r = role_named(c->roles[i]);
        role = r > role ? r : role;
    }
    for (size_t i = 0; i < e->nroles; i++) {
        const char *id = e->roles[i].id;
        bool match = strcmp(id, "*") == 0 || (c->oid[0] && strcmp(id, c->oid) == 0) ||
                     (c->appid[0] && strcmp(id, c->appid) == 0);
        if (match && e->roles[i].role > role)
            role = e->roles[i].role;
    }
    return role;
}

/* ------------------------------------------------------------------------ */
/* Lifecycle.                                                                 */

px_entra *px_entra_new(const char *jwks, const char *issuer, const char *roles_file,
                       const char *account, const char *ca, FILE *err)
{
    px_entra *e = calloc(1, sizeof *e);
    if (!e || !(e->source = strdup(jwks)) || !(e->issuer = strdup(issuer)) ||
        (ca && *ca && !(e->ca = strdup(ca))) || !(e->cur = calloc(1, sizeof *e->cur)) ||
        pthread_mutex_init(&e->mu, NULL) != 0) {
        fprintf(err, "mtable-proxy: out of memory\n");
        if (e) {
            free(e->ca);
            free(e->source);
            free(e->issuer);
            free(e->cur);
        }
        free(e);
        return NULL;
    }
    snprintf(e->account, sizeof e->account, "%s", account);
    char why[512] = "";
    e->cur->keys = load_keys(jwks, e->ca, why, sizeof why);
    e->cur->refs = 1;
    e->loaded = time(NULL); /* last_try stays 0: a first rollover reloads at once */
    if (!e->cur->keys) {
        fprintf(err, "mtable-proxy: cannot use --jwks (MTABLE_JWKS): %s\n", why);
        px_entra_free(e);
        return NULL;
    }
    if (roles_file && *roles_file && !load_roles(e, roles_file, err)) {
        px_entra_free(e);
        return NULL;
    }
    px_log(PX_LOG_INFO, "bearer tokens from %s: %zu signing keys from %s", issuer,
           az_jwks_count(e->cur->keys), jwks);
    return e;
}

static void keyset_release(keyset *k)
{
    if (k && --k->refs == 0) {
        az_jwks_free(k->keys);
        free(k);
    }
}

void px_entra_free(px_entra *e)
{
    if (!e)
        return;
    keyset_release(e->cur);
    pthread_mutex_destroy(&e->mu);
    free(e->roles);
    free(e->ca);
    free(e->source);
    free(e->issuer);
    free(e);
}

/* Reloads the set when it lacks kid or is old, at most once a gap. */
static void maybe_reload(px_entra *e, const char *kid)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&e->mu);
    bool stale =
        now - e->loaded >= PX_JWKS_MAX_AGE_S || (kid && *kid && !az_jwks_has(e->cur->keys, kid));
    bool go = stale && !e->reloading && now - e->last_try >= PX_JWKS_MIN_GAP_S;
    if (go) {
        e->reloading = true;
        e->last_try = now;
    }
    pthread_mutex_unlock(&e->mu);
    if (!go)
        return;
    char why[512] = "";
    az_jwks *fresh = load_keys(e->source, e->ca, why, sizeof why);
    keyset *k = fresh ? calloc(1, sizeof *k) : NULL;
    pthread_mutex_lock(&e->mu);
    e->reloading = false;
    if (k) {
        k->keys = fresh;
        k->refs = 1;
        keyset_release(e->cur);
        e->cur = k;
        e->loaded = now;
    }
    pthread_mutex_unlock(&e->mu);
    if (k)
        px_log(PX_LOG_INFO, "signing keys reloaded: %zu from %s", az_jwks_count(fresh), e->source);
    else {
        az_jwks_free(fresh);
        px_log(PX_LOG_WARN, "cannot reload the signing keys (kept the old ones): %s",
               why[0] ? why : "out of memory");
    }
}

/* ------------------------------------------------------------------------ */
/* One token.                                                                 */

/* The audiences accepted; strings in buf. Never derived from the request
 * (its Host header is the caller's to choose: a token for another
 * resource must not become valid by naming that resource as host). */
static void audiences(const px_entra *e, az_jwt_expect *want, char buf[2][320])
{
    size_t n = 0;
    want->audiences[n++] = "https://storage.azure.com";
    want->audiences[n++] = "https://storage.azure.com/";
    snprintf(buf[0], sizeof buf[0], "https://%s.table.core.windows.net", e->account);
    snprintf(buf[1], sizeof buf[1], "https://%s.table.core.windows.net/", e->account);
    want->audiences[n++] = buf[0];
    want->audiences[n++] = buf[1];
    want->audiences[n] = NULL;
}

static mt_status verify_with_current(px_entra *e, const char *token, const az_jwt_expect *want,
                                     az_jwt_claims *c)
{
    pthread_mutex_lock(&e->mu);
    keyset *k = e->cur;
    k->refs++;
    pthread_mutex_unlock(&e->mu);
    mt_status st = az_jwt_verify(token, strlen(token), k->keys, want, c);
    pthread_mutex_lock(&e->mu);
    keyset_release(k);
    pthread_mutex_unlock(&e->mu);
    return st;
}

mt_status px_entra_check(px_entra *e, const char *token, bool tls, az_grant *grant)
{
    memset(grant, 0, sizeof *grant);
    if (!e)
        return mt_error(403, "AuthenticationFailed",
                        "Server failed to authenticate the request. This endpoint does not "
                        "take bearer tokens (no --jwks).");
    if (!tls)
        return mt_error(403, "AuthenticationFailed",
                        "Server failed to authenticate the request. Authentication scheme "
                        "Bearer is not allowed with HTTP.");
    while (*token == ' ')
        token++;
    az_jwt_expect want = {.issuer = e->issuer, .now = time(NULL), .skew_s = PX_TOKEN_SKEW_S};
    char buf[2][320];
    audiences(e, &want, buf);
    az_jwt_claims c;
    mt_status st = verify_with_current(e, token, &want, &c);
    if (!mt_is_ok(&st) && strstr(st.message, "Signature validation failed")) {
        maybe_reload(e, c.kid); /* the issuer may have rolled its keys */
        st = verify_with_current(e, token, &want, &c);
    } else {
        maybe_reload(e, NULL);
    }
    if (!mt_is_ok(&st))
        return st;
    int role = role_of(e, &c);
    grant->service_table = grant->container_table = grant->object_table = true;
    if (role == ROLE_CONTRIBUTOR)
        grant->perms = AZ_PERM_READ | AZ_PERM_ADD | AZ_PERM_UPDATE | AZ_PERM_DELETE | AZ_PERM_LIST |
                       AZ_PERM_CREATE | AZ_PERM_WRITE;
    else if (role == ROLE_READER)
        grant->perms = AZ_PERM_READ | AZ_PERM_LIST;
    return mt_ok();
}

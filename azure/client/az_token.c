/*
 * az_token.c -- Microsoft Entra ID access tokens for the backend client:
 * getting one from a token endpoint, caching it, refreshing it before it
 * expires.
 *
 * Three credentials, as the Azure SDKs name them:
 *   - ClientSecret: a service principal. POST to
 *     {authority}/{tenant}/oauth2/v2.0/token with grant_type
 *     client_credentials, client_id, client_secret and the scope below.
 *   - WorkloadIdentity: the same request with client_assertion_type
 *     urn:ietf:params:oauth:client-assertion-type:jwt-bearer and, as
 *     client_assertion, the federated token file's contents, read again
 *     at every request (the kubelet rotates the file).
 *   - ManagedIdentity: GET the instance metadata service
 *     (http://169.254.169.254/metadata/identity/oauth2/token,
 *     api-version 2018-02-01, header "Metadata: true"), or, where
 *     IDENTITY_ENDPOINT and IDENTITY_HEADER are set (App Service,
 *     Functions, Container Apps), that endpoint with api-version
 *     2019-08-01 and header X-IDENTITY-HEADER; resource
 *     https://storage.azure.com/ and client_id for a user-assigned one.
 * The scope is https://storage.azure.com/.default. The answer is JSON with
 * access_token and expires_in (a number or a string of one), or
 * expires_on (seconds since the epoch) from the identity endpoints.
 *
 * Caching: one token per client, shared by its threads. A token is
 * refreshed once half its lifetime has passed, which for the usual
 * one-hour token is half an hour early and for any token of ten minutes
 * or more at least five minutes early; it is used until a minute (or a
 * quarter of its lifetime, if shorter) before it expires. One thread
 * refreshes; the others
 * keep using the current token while it is valid, and wait for the
 * refresh only when there is none. A failed refresh is logged (the reason,
 * never a secret) and tried again on the next request at least
 * AZ_TOKEN_RETRY_S later, the current token serving meanwhile; a request
 * that finds no valid token tries once itself and, failing, fails as not
 * sent, so the client's own retry rules (az_client_http.c) try again after
 * a backoff. When the service refuses a token (401, or 403
 * AuthenticationFailed: revoked, or a clock far off), the client
 * invalidates that token (az_token_invalidate) and sends the request once
 * more with a new one; a refused request was not executed, so sending it
 * again is safe for every kind of write.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <curl/curl.h>

#include "az_client_internal.h"

/* Kept here rather than calling the client's own helper, so that the token
 * source does not depend on the request code that depends on it. */
static mt_status token_oom(void)
{
    return mt_error(500, MT_ERR_INTERNAL, "out of memory");
}

#define AZ_TOKEN_SCOPE "https://storage.azure.com/.default"
#define AZ_TOKEN_RESOURCE "https://storage.azure.com/"
#define AZ_AUTHORITY_DEFAULT "https://login.microsoftonline.com"
#define AZ_IMDS_DEFAULT "http://169.254.169.254/metadata/identity/oauth2/token"
#define AZ_TOKEN_RETRY_S 1.0        /* between failed refreshes */
#define AZ_TOKEN_BODY_MAX (1 << 20) /* a token answer */
#define AZ_TOKEN_FILE_MAX (1 << 16) /* a federated token */
#define AZ_TOKEN_TIMEOUT_MS 10000L
#define AZ_TOKEN_MARGIN_S 60.0 /* a token is not sent in its last minute */

/* ------------------------------------------------------------------------ */
/* Process-wide settings: the CA bundle and where to report.                 */

static char *az_ca_default;
static void (*az_log_fn)(bool warn, const char *msg);

bool az_client_set_ca_file(const char *path)
{
    char *copy = path ? strdup(path) : NULL;
    if (path && !copy)
        return false;
    free(az_ca_default);
    az_ca_default = copy;
    return true;
}

const char *az_default_ca_file(void)
{
    return az_ca_default;
}

void az_client_set_log(void (*fn)(bool warn, const char *msg))
{
    az_log_fn = fn;
}

static void az_report(bool warn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void az_report(bool warn, const char *fmt, ...)
{
    if (!az_log_fn)
        return;
    char msg[MT_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    az_log_fn(warn, msg);
}

/* ------------------------------------------------------------------------ */
/* The token source.                                                          */

struct az_token_src {
    az_cred cred; /* own copies */
    char *ca_file;
    char *where; /* the token endpoint, for messages */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *token;       /* NULL before the first success */
    double expires;    /* monotonic seconds */
    double refresh_at; /* monotonic seconds */
    double next_try;   /* after a failure */
    bool refreshing;
    bool failing; /* the last refresh failed */
    unsigned gen; /* counts the tokens got */
    char last_error[MT_MSG_MAX];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *dup_or_null(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

/* base without trailing slashes, then tail. */
static char *join_url(const char *base, const char *tail)
{
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    mt_buf b = {0};
    mt_buf_put(&b, base, n);
    mt_buf_puts(&b, tail);
    return mt_buf_take(&b, NULL);
}

static char *token_endpoint(const az_cred *c)
{
    if (c->kind == AZ_CRED_MANAGED)
        return strdup(c->identity_endpoint ? c->identity_endpoint : AZ_IMDS_DEFAULT);
    mt_buf b = {0};
    mt_buf_printf(&b, "/%s/oauth2/v2.0/token", c->tenant_id);
    char *tail = mt_buf_take(&b, NULL);
    char *url =
        tail ? join_url(c->authority_host ? c->authority_host : AZ_AUTHORITY_DEFAULT, tail) : NULL;
    free(tail);
    return url;
}

az_token_src *az_token_src_new(const az_cred *cred, const char *ca_file, mt_status *st)
{
    *st = mt_ok();
    az_token_src *t = calloc(1, sizeof *t);
    if (!t) {
        *st = token_oom();
        return NULL;
    }
    bool ok = true;
    t->cred.kind = cred->kind;
    t->cred.tenant_id = dup_or_null(cred->tenant_id, &ok);
    t->cred.client_id = dup_or_null(cred->client_id, &ok);
    t->cred.client_secret = dup_or_null(cred->client_secret, &ok);
    t->cred.token_file = dup_or_null(cred->token_file, &ok);
    t->cred.authority_host = dup_or_null(cred->authority_host, &ok);
    t->cred.identity_endpoint = dup_or_null(cred->identity_endpoint, &ok);
    t->cred.identity_header = dup_or_null(cred->identity_header, &ok);
    t->ca_file = dup_or_null(ca_file, &ok);
    t->where = ok ? token_endpoint(&t->cred) : NULL;
    if (!ok || !t->where || pthread_mutex_init(&t->mu, NULL) != 0) {
        az_connstr cs = {.cred = t->cred}; /* wipes the secret */
        az_connstr_clear(&cs);
        free(t->ca_file);
        free(t->where);
        free(t);
        *st = token_oom();
        return NULL;
    }
    pthread_cond_init(&t->cv, NULL);
    return t;
}

void az_token_src_free(az_token_src *t)
{
    if (!t)
        return;
    az_connstr cs = {.cred = t->cred};
    az_connstr_clear(&cs);
    if (t->token)
        explicit_bzero(t->token, strlen(t->token));
    free(t->token);
    free(t->ca_file);
    free(t->where);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* ------------------------------------------------------------------------ */
/* One request to the token endpoint.                                         */

/* "&name=value", the value form-encoded. */
static bool form_add(mt_buf *b, CURL *h, const char *name, const char *value)
{
    char *v = curl_easy_escape(h, value, 0);
    if (!v)
        return false;
    mt_buf_printf(b, "%s%s=%s", b->len ? "&" : "", name, v);
    curl_free(v);
    return !b->oom;
}

/* The federated token, trimmed; NULL with why set. */
static char *read_token_file(const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, cap, "cannot read the federated token file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(AZ_TOKEN_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, AZ_TOKEN_FILE_MAX, f) : 0;
    fclose(f);
    if (!buf) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    if (!n) {
        snprintf(why, cap, "the federated token file %s is empty", path);
        free(buf);
        return NULL;
    }
    return buf;
}

/* The POST body of a client-secret or workload-identity request. */
static char *token_form(const az_token_src *t, CURL *h, char *why, size_t cap)
{
    mt_buf b = {0};
    bool ok = form_add(&b, h, "grant_type", "client_credentials") &&
              form_add(&b, h, "client_id", t->cred.client_id) &&
              form_add(&b, h, "scope", AZ_TOKEN_SCOPE);
    if (ok && t->cred.kind == AZ_CRED_CLIENT_SECRET)
        ok = form_add(&b, h, "client_secret", t->cred.client_secret);
    if (ok && t->cred.kind == AZ_CRED_WORKLOAD) {
        char *assertion = read_token_file(t->cred.token_file, why, cap);
        ok = assertion &&
             form_add(&b, h, "client_assertion_type",
                      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") &&
             form_add(&b, h, "client_assertion", assertion);
        free(assertion);
        if (!assertion) {
            free(b.p);
            return NULL;
        }
    }
    char *s = mt_buf_take(&b, NULL);
    if (!ok || !s) {
        snprintf(why, cap, "out of memory");
        if (s)
            explicit_bzero(s, strlen(s));
        free(s);
        return NULL;
    }
    return s;
}

/* The managed identity's URL with its query. */
static char *identity_url(const az_token_src *t, CURL *h)
{
    mt_buf b = {0};
    char *res = curl_easy_escape(h, AZ_TOKEN_RESOURCE, 0);
    char *cid = t->cred.client_id ? curl_easy_escape(h, t->cred.client_id, 0) : NULL;
    mt_buf_printf(&b, "%s%sapi-version=%s&resource=%s", t->where, strchr(t->where, '?') ? "&" : "?",
                  t->cred.identity_header ? "2019-08-01" : "2018-02-01", res ? res : "");
    if (cid)
        mt_buf_printf(&b, "&client_id=%s", cid);
    curl_free(res);
    curl_free(cid);
    return res && (cid || !t->cred.client_id) ? mt_buf_take(&b, NULL) : (free(b.p), NULL);
}

/* A number, or a string holding one. */
static bool json_seconds(const cJSON *v, double *out)
{
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return true;
    }
    if (!cJSON_IsString(v))
        return false;
    char *end;
    errno = 0;
    double d = strtod(v->valuestring, &end);
    if (end == v->valuestring || *end || errno)
        return false;
    *out = d;
    return true;
}

/* Reads a token answer: *token (malloc'd) and its lifetime in seconds. */
static bool token_parse(long status, const mt_buf *body, char **token, double *lifetime, char *why,
                        size_t cap)
{
    cJSON *root = body->p ? cJSON_ParseWithLength(body->p, body->len) : NULL;
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(root, "access_token");
    double in = 0, on = 0;
    bool has_in = json_seconds(cJSON_GetObjectItemCaseSensitive(root, "expires_in"), &in);
    bool has_on = json_seconds(cJSON_GetObjectItemCaseSensitive(root, "expires_on"), &on);
    if (status != 200 || !cJSON_IsString(at) || !at->valuestring[0]) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "error_description");
        if (cJSON_IsObject(e)) { /* the identity endpoints' shape */
            d = cJSON_GetObjectItemCaseSensitive(e, "message");
            e = cJSON_GetObjectItemCaseSensitive(e, "code");
        }
        snprintf(why, cap, "HTTP %ld%s%.80s%s%.200s", status, cJSON_IsString(e) ? " " : "",
                 cJSON_IsString(e) ? e->valuestring : "", cJSON_IsString(d) ? ": " : "",
                 cJSON_IsString(d) ? d->valuestring : "");
        why[strcspn(why, "\r\n")] = '\0';
        cJSON_Delete(root);
        return false;
    }
    if (!has_in && has_on)
        in = on - (double)time(NULL);
    if ((!has_in && !has_on) || in <= 0 || in > 1e7) {
        snprintf(why, cap, "HTTP 200 without a usable expires_in");
        cJSON_Delete(root);
        return false;
    }
    *token = strdup(at->valuestring);
    *lifetime = in;
    cJSON_Delete(root);
    if (!*token)
        snprintf(why, cap, "out of memory");
    return *token != NULL;
}

/* One token from the endpoint, or NULL with why set. */
static char *token_fetch(const az_token_src *t, double *lifetime, char *why, size_t cap)
{
    CURL *h = curl_easy_init(); /* for curl_easy_escape */
    if (!h) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    char hdr[1024] = "";
    char *form = NULL, *url = NULL, *token = NULL;
    mt_buf body = {0};
    if (t->cred.kind == AZ_CRED_MANAGED) {
        url = identity_url(t, h);
        if (t->cred.identity_header)
            snprintf(hdr, sizeof hdr, "X-IDENTITY-HEADER: %s", t->cred.identity_header);
        else
            snprintf(hdr, sizeof hdr, "Metadata: true");
        if (!url)
            snprintf(why, cap, "out of memory");
    } else {
        url = strdup(t->where);
        form = url ? token_form(t, h, why, cap) : NULL;
        if (!url)
            snprintf(why, cap, "out of memory");
    }
    if (url && (form || t->cred.kind == AZ_CRED_MANAGED)) {
        az_fetch_req q = {.url = url,
                          .form = form,
                          .header = hdr[0] ? hdr : NULL,
                          .ca_file = t->ca_file,
                          .timeout_ms = AZ_TOKEN_TIMEOUT_MS,
                          .max = AZ_TOKEN_BODY_MAX};
        long status = 0;
        if (az_fetch(&q, &status, &body, why, cap))
            token_parse(status, &body, &token, lifetime, why, cap);
    }
    explicit_bzero(hdr, sizeof hdr);
    if (form)
        explicit_bzero(form, strlen(form));
    if (body.p)
        explicit_bzero(body.p, body.len);
    free(form);
    free(url);
    free(body.p);
    curl_easy_cleanup(h);
    return token;
}

/* ------------------------------------------------------------------------ */
/* The cache.                                                                 */

/* Called with t->mu held and t->refreshing set by this thread; drops the
 * lock while the request runs. */
static void token_refresh(az_token_src *t)
{
    pthread_mutex_unlock(&t->mu);
    char why[MT_MSG_MAX] = "";
    double lifetime = 0, started = now_s();
    char *fresh = token_fetch(t, &lifetime, why, sizeof why);
    pthread_mutex_lock(&t->mu);
    t->refreshing = false;
    pthread_cond_broadcast(&t->cv);
    if (!fresh) {
        t->next_try = now_s() + AZ_TOKEN_RETRY_S;
        snprintf(t->last_error, sizeof t->last_error, "%s", why);
        bool valid = t->token && now_s() < t->expires;
        t->failing = true;
        az_report(true, "cannot get a Microsoft Entra ID token from %s: %s (%s)", t->where, why,
                  valid ? "the current token serves until it expires; retrying"
                        : "no valid token; requests wait and retry");
        return;
    }
    if (t->failing)
        az_report(false, "got a Microsoft Entra ID token from %s again", t->where);
    t->failing = false;
    if (t->token)
        explicit_bzero(t->token, strlen(t->token));
    free(t->token);
    t->token = fresh;
    t->gen++;
    /* Not used in its last minute (or quarter of its lifetime, if
     * shorter): the answer's whole seconds, the request's way to the
     * service and the service's clock all eat into it. */
    double margin = lifetime / 4 < AZ_TOKEN_MARGIN_S ? lifetime / 4 : AZ_TOKEN_MARGIN_S;
    t->expires = started + lifetime - margin;
    t->refresh_at = started + lifetime / 2;
    t->next_try = 0;
}

void az_token_invalidate(az_token_src *t, unsigned gen)
{
    pthread_mutex_lock(&t->mu);
    if (t->gen == gen && t->token && t->expires > 0) {
        t->expires = 0;
        az_report(true, "the table service refused the token from %s; getting a new one", t->where);
    }
    pthread_mutex_unlock(&t->mu);
}

char *az_token_get(az_token_src *t, mt_status *st, unsigned *gen)
{
    *st = mt_ok();
    bool tried = false;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        double now = now_s();
        bool valid = t->token && now < t->expires;
        bool due = !valid || now >= t->refresh_at;
        /* Without a valid token every request may try (its caller backs
         * off); with one, a failed refresh waits AZ_TOKEN_RETRY_S. */
        if (due && !t->refreshing && !tried && (!valid || now >= t->next_try)) {
            t->refreshing = true;
            tried = true;
            token_refresh(t);
            continue;
        }
        if (valid)
            break;
        if (!t->refreshing) { /* this thread's attempt failed */
            *st = mt_error(503, MT_ERR_SERVER_BUSY,
                           "No Microsoft Entra ID token for the table service: %s",
                           t->last_error[0] ? t->last_error : "none yet");
            pthread_mutex_unlock(&t->mu);
            return NULL;
        }
        pthread_cond_wait(&t->cv, &t->mu);
    }
    char *copy = strdup(t->token);
    if (gen)
        *gen = t->gen;
    pthread_mutex_unlock(&t->mu);
    if (!copy)
        *st = token_oom();
    return copy;
}

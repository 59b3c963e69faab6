/*
 * cfg_http.c -- the client's transport to a remote authority over HTTP.
 *
 *   GET  ENDPOINT/config/v1/state?after=N&wait_ms=M[&settled=0]
 *        -> 200 {"config_version": N, "phase": NAME, "lease_ms": L,
 *                "settled": B}
 *   PUT  ENDPOINT/config/v1/acks/ID  {"config_version": N,
 *        "migration_id": M, "fingerprint": F}  -> 204 (409 when N is not
 *        current, M is another migration or F other backends)
 *   DELETE ENDPOINT/config/v1/acks/ID  -> 204 (the lease is given back)
 *
 * ENDPOINT may list several authority replicas, comma-separated: calls go
 * to one until it fails to answer (or answers that no replica leads), then
 * to the next. A standby answers 307 with the leader's URL, which curl
 * follows (keeping the method and body), so any replica may be listed.
 *
 * One curl handle, reused, so a renewal normally costs one round trip on a
 * kept-alive connection. Every call is bounded: connecting by a short
 * timeout, the whole exchange by the long poll's wait plus a few seconds,
 * so an authority that vanishes mid-call never holds a renewal past the
 * lease.
 *
 * An https:// endpoint is verified (peer and host name) against the CA
 * file given by cfg_http_set_ca, else the system's trust store; a failed
 * verification is an AuthorityTlsError naming the endpoint and the TLS
 * library's reason, never a fallback to an unverified connection.
 */
#include "cfg.h"
#include "cfg_json.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_MS 2000L
#define EXTRA_TIMEOUT_MS 3000L
#define MAX_ANSWER (64 * 1024)

#define MAX_ENDPOINTS 8

struct cfg_http {
    CURL *h;
    char *endpoint; /* the one in use: one of list[] */
    char *list[MAX_ENDPOINTS];
    size_t n, at;
    struct curl_slist *headers;
    char *ca_file; /* NULL: the system's CAs */
    char *body;    /* the last answer */
    size_t len;
    volatile int stopping; /* cfg_http_stop: abandon the call in progress */
};

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    const cfg_http *h = arg;
    return __atomic_load_n(&h->stopping, __ATOMIC_RELAXED) ? 1 : 0;
}

void cfg_http_stop(cfg_http *h)
{
    if (h)
        __atomic_store_n(&h->stopping, 1, __ATOMIC_RELAXED);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    cfg_http *h = arg;
    size_t add = size * n;
    if (h->len + add > MAX_ANSWER)
        return 0;
    char *grown = realloc(h->body, h->len + add + 1);
    if (!grown)
        return 0;
    memcpy(grown + h->len, p, add);
    h->body = grown;
    h->len += add;
    h->body[h->len] = '\0';
    return add;
}

/* The next listed replica, for the next call. */
static void rotate(cfg_http *h)
{
    if (h->n > 1) {
        h->at = (h->at + 1) % h->n;
        h->endpoint = h->list[h->at];
    }
}

/* Failures of the TLS handshake or of the certificate's verification. */
static bool tls_failed(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
        return true;
    default:
        return false;
    }
}

/* One exchange; *code is the HTTP status. */
static mt_status exchange(cfg_http *h, const char *url, const char *method, const char *put_body,
                          long timeout_ms, long *code)
{
    free(h->body);
    h->body = NULL;
    h->len = 0;
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_reset(h->h);
    curl_easy_setopt(h->h, CURLOPT_URL, url);
    curl_easy_setopt(h->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h->h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h->h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h->h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h->h, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(h->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h->h, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(h->h, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h->h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h->h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h->h, CURLOPT_XFERINFODATA, h);
    curl_easy_setopt(h->h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h->h, CURLOPT_MAXREDIRS, 3L);
    if (h->ca_file)
        curl_easy_setopt(h->h, CURLOPT_CAINFO, h->ca_file);
    if (method)
        curl_easy_setopt(h->h, CURLOPT_CUSTOMREQUEST, method);
    if (put_body)
        curl_easy_setopt(h->h, CURLOPT_POSTFIELDS, put_body);
    CURLcode rc = curl_easy_perform(h->h);
    if (rc != CURLE_OK) {
        mt_status st = tls_failed(rc)
                           ? mt_error(503, CFG_ERR_AUTHORITY_TLS, "TLS with %s failed: %s", url,
                                      err[0] ? err : curl_easy_strerror(rc))
                           : mt_error(503, "AuthorityUnreachable", "%s: %s", h->endpoint,
                                      err[0] ? err : curl_easy_strerror(rc));
        rotate(h);
        return st;
    }
    curl_easy_getinfo(h->h, CURLINFO_RESPONSE_CODE, code);
    if (*code == 503 || *code == 307) /* no leader there now: try another next time */
        rotate(h);
    return mt_ok();
}

/* The error an unexpected answer becomes, with the authority's message. */
static mt_status answer_error(cfg_http *h, long code)
{
    cJSON *doc = h->body ? cJSON_Parse(h->body) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    mt_status st = mt_error((int)code, cJSON_IsString(c) ? c->valuestring : "AuthorityError",
                            "%s answered %ld: %s", h->endpoint, code,
                            cJSON_IsString(m) ? m->valuestring : "not the configuration API");
    cJSON_Delete(doc);
    return st;
}

static mt_status http_get_state(void *ctx, int64_t after, bool known_settled, int64_t wait_ms,
                                cfg_view *out)
{
    cfg_http *h = ctx;
    char url[1024];
    snprintf(url, sizeof url, "%s/config/v1/state?after=%lld&wait_ms=%lld%s", h->endpoint,
             (long long)after, (long long)wait_ms, known_settled ? "" : "&settled=0");
    long code = 0;
    mt_status st = exchange(h, url, NULL, NULL, (long)wait_ms + EXTRA_TIMEOUT_MS, &code);
    if (!mt_is_ok(&st))
        return st;
    if (code != 200)
        return answer_error(h, code);
    st = cfg_view_parse(h->body ? h->body : "", h->len, out);
    if (!mt_is_ok(&st))
        st = mt_error(502, "AuthorityError", "%s: %s", h->endpoint, st.message);
    return st;
}

/* ENDPOINT/config/v1/acks/ID into url; false on out of memory. */
static bool ack_url(cfg_http *h, const char *id, char *url, size_t cap)
{
    char *esc = curl_easy_escape(h->h, id, 0);
    if (!esc)
        return false;
    snprintf(url, cap, "%s/config/v1/acks/%s", h->endpoint, esc);
    curl_free(esc);
    return true;
}

static mt_status http_ack(void *ctx, const cfg_ack *ack)
{
    cfg_http *h = ctx;
    char url[1024];
    char *body = cfg_ack_json(ack);
    if (!body || !ack_url(h, ack->id, url, sizeof url)) {
        free(body);
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    long code = 0;
    mt_status st = exchange(h, url, "PUT", body, CONNECT_TIMEOUT_MS + EXTRA_TIMEOUT_MS, &code);
    free(body);
    if (!mt_is_ok(&st))
        return st;
    if (code == 204 || code == 200)
        return mt_ok();
    return answer_error(h, code);
}

static mt_status http_release(void *ctx, const char *id)
{
    cfg_http *h = ctx;
    char url[1024];
    if (!ack_url(h, id, url, sizeof url))
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    __atomic_store_n(&h->stopping, 0, __ATOMIC_RELAXED); /* the last call, after a stop */
    long code = 0;
    mt_status st = exchange(h, url, "DELETE", NULL, CONNECT_TIMEOUT_MS, &code);
    if (!mt_is_ok(&st))
        return st;
    return code == 204 || code == 200 ? mt_ok() : answer_error(h, code);
}

mt_status cfg_http_announce(cfg_http *h, const char *id, const char *url)
{
    char *esc = curl_easy_escape(h->h, id, 0);
    char *body = cfg_replica_json(url);
    if (!esc || !body) {
        curl_free(esc);
        free(body);
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/config/v1/replicas/%s", h->endpoint, esc);
    curl_free(esc);
    long code = 0;
    mt_status st = exchange(h, path, "PUT", body, CONNECT_TIMEOUT_MS + EXTRA_TIMEOUT_MS, &code);
    free(body);
    if (mt_is_ok(&st) && code != 204 && code != 200)
        st = answer_error(h, code);
    return st;
}

cfg_transport cfg_http_transport(cfg_http *h)
{
    return (cfg_transport){
        .get_state = http_get_state, .ack = http_ack, .release = http_release, .ctx = h};
}

cfg_http *cfg_http_new(const char *endpoint, const char *token)
{
    cfg_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->h = curl_easy_init();
    char *all = strdup(endpoint), *save = NULL;
    for (char *p = all ? strtok_r(all, ",", &save) : NULL; p && h->n < MAX_ENDPOINTS;
         p = strtok_r(NULL, ",", &save)) {
        while (*p == ' ')
            p++;
        size_t len = strlen(p);
        while (len > 0 && (p[len - 1] == '/' || p[len - 1] == ' '))
            p[--len] = '\0';
        if (len > 0)
            h->list[h->n++] = strdup(p);
    }
    free(all);
    h->endpoint = h->n ? h->list[0] : NULL;
    h->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (token && *token) {
        char auth[512];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h->headers = curl_slist_append(h->headers, auth);
    }
    if (!h->h || !h->endpoint || !h->headers) {
        cfg_http_free(h);
        return NULL;
    }
    return h;
}

bool cfg_http_set_ca(cfg_http *h, const char *ca_file)
{
    free(h->ca_file);
    h->ca_file = ca_file && *ca_file ? strdup(ca_file) : NULL;
    return !(ca_file && *ca_file) || h->ca_file;
}

void cfg_http_free(cfg_http *h)
{
    if (!h)
        return;
    free(h->ca_file);
    if (h->h)
        curl_easy_cleanup(h->h);
    curl_slist_free_all(h->headers);
    for (size_t i = 0; i < h->n; i++)
        free(h->list[i]);
    free(h->body);
    free(h);
}

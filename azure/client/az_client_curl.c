/*
 * az_client_curl.c -- the backend client's requests through libcurl, kept
 * for the one configuration the client's own transport (az_conn.c) does
 * not serve: an HTTP proxy named by the environment (http_proxy,
 * HTTPS_PROXY, ALL_PROXY and NO_PROXY, read by libcurl itself), and
 * endpoints whose shape that transport does not take.
 *
 * A pool of easy handles; a handle keeps its connections alive across
 * requests, and one idle for more than 4 s is not reused (Node, hence
 * Azurite, closes idle connections after 5 s). libcurl silently sends a
 * request a second time when a reused connection dies before any answer;
 * the debug callback counts the request heads it sends (r->requests_out),
 * so a write sent twice is known to be ambiguous.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "az_client_internal.h"

#define AZ_CURL_POOL_MAX 32
#define AZ_IDLE_REUSE_S 4L

struct az_curlpool {
    const char *ca_file; /* borrowed from the client */
    long connect_ms;
    pthread_mutex_t mu;
    CURL *idle[AZ_CURL_POOL_MAX];
    size_t nidle;
};

az_curlpool *az_curlpool_new(const char *ca_file, long connect_ms)
{
    az_curlpool *cp = calloc(1, sizeof *cp);
    if (!cp || pthread_mutex_init(&cp->mu, NULL) != 0) {
        free(cp);
        return NULL;
    }
    cp->ca_file = ca_file;
    cp->connect_ms = connect_ms;
    return cp;
}

void az_curlpool_free(az_curlpool *cp)
{
    if (!cp)
        return;
    for (size_t i = 0; i < cp->nidle; i++)
        curl_easy_cleanup(cp->idle[i]);
    pthread_mutex_destroy(&cp->mu);
    free(cp);
}

static CURL *handle_get(az_curlpool *cp)
{
    CURL *h = NULL;
    pthread_mutex_lock(&cp->mu);
    if (cp->nidle)
        h = cp->idle[--cp->nidle];
    pthread_mutex_unlock(&cp->mu);
    return h ? h : curl_easy_init();
}

/* Back to the pool with no option pointing at the caller's memory; a reset
 * keeps the handle's live connections. */
static void handle_put(az_curlpool *cp, CURL *h)
{
    curl_easy_reset(h);
    pthread_mutex_lock(&cp->mu);
    if (cp->nidle < AZ_CURL_POOL_MAX) {
        cp->idle[cp->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&cp->mu);
    if (h)
        curl_easy_cleanup(h);
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    az_resp *r = ud;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) { /* a new response begins */
        az_resp_header(r, NULL, 0, NULL, 0);
        return n;
    }
    const char *colon = memchr(buf, ':', n);
    if (!colon)
        return n;
    size_t nl = (size_t)(colon - buf);
    const char *v = colon + 1;
    size_t vl = n - nl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    return az_resp_header(r, buf, nl, v, vl) ? n : 0;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    return az_resp_body(ud, buf, n) ? n : 0;
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ctx)
{
    (void)h;
    (void)data;
    (void)size;
    if (type == CURLINFO_HEADER_OUT)
        ((az_resp *)ctx)->requests_out++;
    return 0;
}

static void set_transfer(const az_curlpool *cp, CURL *h, const char *method, const char *body,
                         size_t bl, long timeout_ms, az_resp *r, char *err)
{
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, r);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cp->connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (cp->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, cp->ca_file);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, AZ_IDLE_REUSE_S);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        return;
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bl);
    }
}

static bool fatal_code(CURLcode rc)
{
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_NOT_BUILT_IN:
        return true;
    default:
        return false;
    }
}

/* "Name: value\r\n" lines into a curl list; "Expect:" added (curl would
 * otherwise send Expect: 100-continue with larger bodies). */
static struct curl_slist *header_list(const char *lines)
{
    struct curl_slist *l = curl_slist_append(NULL, "Expect:");
    for (const char *s = lines; l && *s;) {
        const char *e = strstr(s, "\r\n");
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char *line = strndup(s, n);
        struct curl_slist *nl = line ? curl_slist_append(l, line) : NULL;
        if (line) {
            explicit_bzero(line, n);
            free(line);
        }
        if (!nl) {
            curl_slist_free_all(l);
            return NULL;
        }
        l = nl;
        s += n + (e ? 2 : 0);
    }
    return l;
}

az_outcome az_curlpool_send(az_curlpool *cp, const char *method, const char *url,
                            const char *headers, const char *body, size_t bl, long timeout_ms,
                            az_resp *r, char *err, size_t cap)
{
    char cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hl = header_list(headers);
    CURL *h = hl ? handle_get(cp) : NULL;
    if (!h) {
        snprintf(err, cap, "out of memory");
        curl_slist_free_all(hl);
        return AZ_FATAL;
    }
    set_transfer(cp, h, method, body, bl, timeout_ms, r, cerr);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    CURLcode rc = curl_easy_perform(h);
    long sent = 0;
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    r->sent = sent > 0;
    handle_put(cp, h);
    curl_slist_free_all(hl);
    snprintf(err, cap, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
    if (rc == CURLE_OK)
        return AZ_ANSWERED;
    if (r->too_large) {
        snprintf(err, cap, "the reply is larger than %zu bytes", AZ_BODY_MAX);
        return AZ_FATAL;
    }
    if (fatal_code(rc))
        return AZ_FATAL;
    return sent == 0 ? AZ_NOT_SENT : AZ_UNKNOWN;
}

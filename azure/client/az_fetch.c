/*
 * az_fetch.c -- one small HTTP exchange outside the table protocol: a
 * token endpoint's answer, an issuer's key set. No retries, a bounded
 * body, https verified (against the given CA bundle, else the system's).
 */
#include "az_client.h"

#include <curl/curl.h>
#include <stdio.h>

typedef struct fetch_body {
    mt_buf *b;
    size_t max;
} fetch_body;

static size_t on_fetch_body(char *buf, size_t size, size_t nmemb, void *ud)
{
    fetch_body *f = ud;
    size_t n = size * nmemb;
    if (f->b->len + n > f->max)
        return 0;
    mt_buf_put(f->b, buf, n);
    return f->b->oom ? 0 : n;
}

bool az_fetch(const az_fetch_req *q, long *status, mt_buf *body, char *why, size_t cap)
{
    *status = 0;
    CURL *h = curl_easy_init();
    struct curl_slist *hl = q->header ? curl_slist_append(NULL, q->header) : NULL;
    if (!h || (q->header && !hl)) {
        snprintf(why, cap, "out of memory");
        curl_slist_free_all(hl);
        curl_easy_cleanup(h);
        return false;
    }
    char err[CURL_ERROR_SIZE] = "";
    fetch_body fb = {body, q->max};
    curl_easy_setopt(h, CURLOPT_URL, q->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, q->timeout_ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (q->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, q->ca_file);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_fetch_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &fb);
    if (hl)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (q->form)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->form);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        snprintf(why, cap, "%s", err[0] ? err : curl_easy_strerror(rc));
        return false;
    }
    return true;
}

/*
 * az_client_http.c -- one request of the backend client to the table
 * service: the client and its pool of connections, the headers and the
 * signature, the retry rules, and the status an error answer carries.
 *
 * Requests are signed with Shared Key (az_sign), carry the SAS of the
 * connection string, or carry a Microsoft Entra ID bearer token from the
 * client's token source (az_token.c; a request that cannot get one counts
 * as not sent and is retried like one). The Table service takes bearer
 * tokens from x-ms-version 2019-02-02 on, and over https only.
 *
 * Connections: the client's own transport (az_conn.c) keeps up to 32
 * keep-alive connections to the endpoint, one request at a time on each,
 * so steady traffic reuses TCP and TLS sessions; a connection idle for
 * more than 4 s, or one the server closed, is not reused (servers close
 * idle connections: Node, hence Azurite, after 5 s). When the environment
 * names an HTTP proxy, requests go through libcurl instead
 * (az_client_curl.c), under the same rules. Timeouts: 5 s to connect and
 * 30 s per attempt by default (the service's own limit for a write is
 * 30 s; a shorter client timeout makes "did it apply?" questions more
 * frequent). https always verifies the peer and the host name.
 *
 * Retries, and why a write is never replayed blindly. An attempt ends in
 * one of three ways: the service answered; the request provably never left
 * (name resolution, connect or TLS handshake failed, nothing written to
 * the socket); or the outcome is unknown (a
 * timeout or a reset after the request was sent). Three classes of
 * request:
 *   - Reads (queries, retrieve, list tables) and create-table-if-missing
 *     are retried on 5xx answers (503 ServerBusy included), timeouts and
 *     transport errors, up to max_attempts, with exponential backoff and
 *     full jitter (a delay drawn from [d/2, d], d doubling from
 *     backoff_base_ms up to backoff_max_ms).
 *   - Writes that can apply at most once: a single op or a batch holding at
 *     least one op conditioned on a specific ETag (If-Match: E, not *).
 *     ETags are never reused, so whichever of several attempts commits
 *     first consumes E and every other attempt fails. Such a write is
 *     replayed after an unknown outcome or a 5xx. If a replay succeeds, it
 *     is the one that applied, and no earlier attempt can still apply. If
 *     a replay fails with 404, 409 or 412 after an earlier attempt had an
 *     unknown outcome, that earlier attempt may be the cause, so the
 *     result is 500 OperationTimedOut ("outcome unknown"), never the 4xx.
 *   - Every other write (Insert, If-Match * ops, upserts, a lone
 *     DeleteIfExists, delete table) is sent again only when the previous
 *     attempt provably never left. A 5xx answer is returned as is (503
 *     ServerBusy included: the caller may throttle and retry at its
 *     level); an unknown outcome is 500 OperationTimedOut with a message
 *     saying the write may have applied -- the same ambiguity the service
 *     itself reports with that code. Replaying these blindly could apply a
 *     write twice around someone else's (an insert that reappears after a
 *     concurrent delete), which no linearization explains.
 * Reading the row back cannot settle an unknown outcome either: a timed-out
 * request may still be queued at the service and apply after the read.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cJSON.h>
#include <curl/curl.h>

#include "az_client_internal.h"

#define AZ_API_VERSION "2019-02-02"

#define AZ_ERR_TIMED_OUT "OperationTimedOut"

/* ------------------------------------------------------------------------ */
/* Small helpers.                                                            */

mt_status az_oom(void)
{
    return mt_oom();
}

mt_status az_bad_reply(const char *what)
{
    return mt_error(500, MT_ERR_INTERNAL, "Unreadable reply from the table service: %s", what);
}

mt_status az_outcome_unknown(const char *why)
{
    return mt_error(500, AZ_ERR_TIMED_OUT,
                    "The outcome of the write is unknown (%s); it may have applied.", why);
}

/* xorshift64, one state per thread: jitter and boundaries only. */
static uint64_t az_rand(void)
{
    static _Thread_local uint64_t s;
    if (!s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&s;
        s = s ? s : 0x9E3779B97F4A7C15ULL;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

void az_hex_token(char *out, size_t nhex)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t r = 0;
    for (size_t i = 0; i < nhex; i++) {
        if (i % 16 == 0)
            r = az_rand();
        out[i] = hex[r & 15];
        r >>= 4;
    }
    out[nhex] = '\0';
}

/* ------------------------------------------------------------------------ */
/* The client: credentials, options, its connections.                        */

struct az_client {
    az_connstr cs;      /* own copy of the endpoint and the credential */
    const char *prefix; /* the endpoint's path ("" or "/account"), in cs */
    char *ca_file;
    az_token_src *tokens; /* with a token credential */
    az_client_opts opts;
    az_pool *pool;     /* the client's own transport, or NULL: */
    az_curlpool *curl; /* libcurl (a proxy from the environment) */
};

static pthread_once_t az_curl_once = PTHREAD_ONCE_INIT;
static CURLcode az_curl_init_rc;

static void az_curl_init(void)
{
    az_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void opts_resolve(az_client_opts *o, const az_client_opts *in)
{
    static const az_client_opts none;
    *o = in ? *in : none;
    if (o->connect_timeout_ms <= 0)
        o->connect_timeout_ms = 5000;
    if (o->timeout_ms <= 0)
        o->timeout_ms = 30000;
    if (o->max_attempts <= 0)
        o->max_attempts = 4;
    if (o->backoff_base_ms <= 0)
        o->backoff_base_ms = 100;
    if (o->backoff_max_ms <= 0)
        o->backoff_max_ms = 5000;
    if (o->backoff_max_ms < o->backoff_base_ms)
        o->backoff_max_ms = o->backoff_base_ms;
    if (o->page_size < 0 || o->page_size > 1000)
        o->page_size = 0;
    o->ca_file = NULL; /* kept as the client's own copy */
}

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

/* Does libcurl's reading of the environment name a proxy for endpoint?
 * (It reads http_proxy in lower case only.) */
static bool env_proxy(const char *endpoint)
{
    if (env_set("ALL_PROXY") || env_set("all_proxy"))
        return true;
    if (strncasecmp(endpoint, "https:", 6) == 0)
        return env_set("HTTPS_PROXY") || env_set("https_proxy");
    return env_set("http_proxy");
}

/* The transport: the client's own, unless a proxy is configured or the
 * endpoint is of a shape only libcurl takes. */
static bool transport_new(az_client *c)
{
    char why[256];
    if (!env_proxy(c->cs.endpoint))
        c->pool =
            az_pool_new(c->cs.endpoint, c->ca_file, c->opts.connect_timeout_ms, why, sizeof why);
    if (!c->pool)
        c->curl = az_curlpool_new(c->ca_file, c->opts.connect_timeout_ms);
    return c->pool || c->curl;
}

az_client *az_client_new(const az_connstr *cs, const az_client_opts *opts, mt_status *st)
{
    *st = mt_ok();
    bool token = cs && cs->cred.kind != AZ_CRED_NONE;
    if (!cs || !cs->endpoint || (!cs->key && !cs->sas && !token) || (cs->key && !cs->account)) {
        *st = mt_error(400, MT_ERR_INVALID_INPUT,
                       "The connection string names no endpoint or no credential.");
        return NULL;
    }
    pthread_once(&az_curl_once, az_curl_init);
    if (az_curl_init_rc != CURLE_OK) {
        *st = mt_error(500, MT_ERR_INTERNAL, "libcurl did not initialise: %s",
                       curl_easy_strerror(az_curl_init_rc));
        return NULL;
    }
    az_client *c = calloc(1, sizeof *c);
    if (!c)
        goto nomem;
    opts_resolve(&c->opts, opts);
    c->cs.endpoint = strdup(cs->endpoint);
    c->cs.account = cs->account ? strdup(cs->account) : NULL;
    c->cs.sas = cs->sas ? strdup(cs->sas) : NULL;
    const char *ca = opts && opts->ca_file ? opts->ca_file : az_default_ca_file();
    c->ca_file = ca ? strdup(ca) : NULL;
    if (cs->key && (c->cs.key = malloc(cs->key_len)))
        memcpy(c->cs.key, cs->key, cs->key_len), c->cs.key_len = cs->key_len;
    if (!c->cs.endpoint || (cs->account && !c->cs.account) || (cs->sas && !c->cs.sas) ||
        (cs->key && !c->cs.key) || (ca && !c->ca_file) ||
        (token && !(c->tokens = az_token_src_new(&cs->cred, c->ca_file, st))) ||
        !transport_new(c)) {
        az_client_free(c);
        goto nomem;
    }
    const char *host = strstr(c->cs.endpoint, "://");
    const char *slash = host ? strchr(host + 3, '/') : NULL;
    c->prefix = slash ? slash : c->cs.endpoint + strlen(c->cs.endpoint);
    return c;
nomem:
    *st = az_oom();
    return NULL;
}

void az_client_free(az_client *c)
{
    if (!c)
        return;
    az_pool_free(c->pool);
    az_curlpool_free(c->curl);
    az_token_src_free(c->tokens);
    az_connstr_clear(&c->cs);
    free(c->ca_file);
    free(c);
}

const char *az_client_endpoint(const az_client *c)
{
    return c->cs.endpoint;
}

int az_client_page_size(const az_client *c)
{
    return c->opts.page_size;
}

/* ------------------------------------------------------------------------ */
/* One HTTP exchange, and the retry rules of the opening comment.            */

/* The request's header lines ("Name: value\r\n" each), signed when the
 * client has a key, with the bearer token when it has a token source. */
static void request_headers(const az_client *c, const az_req *q, const char *token, mt_buf *b)
{
    char date[32], rid[33];
    az_rfc1123_format(time(NULL), date);
    az_hex_token(rid, 32);
    mt_buf_printf(b,
                  "x-ms-version: " AZ_API_VERSION "\r\nx-ms-date: %s\r\n"
                  "x-ms-client-request-id: %.8s-%.4s-%.4s-%.4s-%.12s\r\n"
                  "Accept: " AZ_ACCEPT "\r\n"
                  "DataServiceVersion: 3.0;NetFx\r\nMaxDataServiceVersion: 3.0;NetFx\r\n",
                  date, rid, rid + 8, rid + 12, rid + 16, rid + 20);
    if (q->content_type)
        mt_buf_printf(b, "Content-Type: %s\r\n", q->content_type);
    if (q->if_match)
        mt_buf_printf(b, "If-Match: %s\r\n", q->if_match);
    if (q->no_content)
        mt_buf_puts(b, "Prefer: return-no-content\r\n");
    if (token) {
        mt_buf_puts(b, "Authorization: Bearer ");
        mt_buf_puts(b, token);
        mt_buf_puts(b, "\r\n");
    }
    if (c->cs.key) {
        /* Shared Key for the Table service: verb, Content-MD5 (empty),
         * Content-Type, the date, and "/account" + the path as sent. */
        mt_buf s = {0};
        mt_buf_printf(&s, "%s\n\n%s\n%s\n/%s", q->method, q->content_type ? q->content_type : "",
                      date, c->cs.account);
        mt_buf_puts(&s, c->prefix);
        mt_buf_puts(&s, q->path);
        char *sts = mt_buf_take(&s, NULL);
        char *sig = sts ? az_sign(c->cs.key, c->cs.key_len, sts) : NULL;
        if (sig)
            mt_buf_printf(b, "Authorization: SharedKey %s:%s\r\n", c->cs.account, sig);
        else
            b->oom = true;
        free(sts);
        free(sig);
    }
}

/* The path and query after the endpoint (its own path not included), the
 * SAS appended. */
static void request_target(const az_client *c, const az_req *q, mt_buf *b)
{
    mt_buf_puts(b, q->path);
    if (q->query && *q->query) {
        mt_buf_puts(b, "?");
        mt_buf_puts(b, q->query);
    }
    if (c->cs.sas) {
        mt_buf_puts(b, q->query && *q->query ? "&" : "?");
        mt_buf_puts(b, c->cs.sas);
    }
}

/* Frees b's text, wiped first when it held a token. */
static void buf_wipe(mt_buf *b, bool secret)
{
    if (secret && b->p)
        explicit_bzero(b->p, b->len);
    mt_buf_clear(b);
}

/* Whether a request of this method carries Content-Length without a body. */
static bool needs_length(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0 &&
           strcmp(method, "HEAD") != 0;
}

/* Through the client's own transport: the whole head in one buffer. */
static az_outcome attempt_own(az_client *c, const az_req *q, const char *token, az_resp *r,
                              char *err)
{
    mt_buf h = {0};
    mt_buf_puts(&h, q->method);
    mt_buf_puts(&h, " ");
    mt_buf_puts(&h, c->prefix);
    request_target(c, q, &h);
    mt_buf_puts(&h, " HTTP/1.1\r\nHost: ");
    mt_buf_puts(&h, az_pool_authority(c->pool));
    mt_buf_puts(&h, "\r\n");
    request_headers(c, q, token, &h);
    if (q->body || needs_length(q->method))
        mt_buf_printf(&h, "Content-Length: %zu\r\n", q->body ? q->len : 0);
    mt_buf_puts(&h, "\r\n");
    az_outcome o;
    if (h.oom) {
        snprintf(err, AZ_ERR_SIZE, "out of memory");
        o = AZ_FATAL;
    } else {
        o = az_pool_send(c->pool, h.p, h.len, q->body, q->body ? q->len : 0, c->opts.timeout_ms, r,
                         err, AZ_ERR_SIZE);
    }
    buf_wipe(&h, token != NULL);
    return o;
}

static az_outcome attempt_curl(az_client *c, const az_req *q, const char *token, az_resp *r,
                               char *err)
{
    mt_buf u = {0}, h = {0};
    mt_buf_puts(&u, c->cs.endpoint);
    request_target(c, q, &u);
    request_headers(c, q, token, &h);
    az_outcome o;
    if (u.oom || h.oom) {
        snprintf(err, AZ_ERR_SIZE, "out of memory");
        o = AZ_FATAL;
    } else {
        o = az_curlpool_send(c->curl, q->method, u.p, h.p, q->body, q->len, c->opts.timeout_ms, r,
                             err, AZ_ERR_SIZE);
    }
    mt_buf_clear(&u);
    buf_wipe(&h, token != NULL);
    return o;
}

/* One attempt. err (AZ_ERR_SIZE) receives the explanation. */
static az_outcome az_attempt(az_client *c, const az_req *q, az_resp *r, char *err)
{
    err[0] = '\0';
    char *token = NULL;
    if (c->tokens) {
        mt_status ts;
        r->bearer = true;
        if (!(token = az_token_get(c->tokens, &ts, &r->token_gen))) {
            snprintf(err, AZ_ERR_SIZE, "%s", ts.message);
            return ts.http == 503 ? AZ_NOT_SENT : AZ_FATAL;
        }
    }
    az_outcome o = c->pool ? attempt_own(c, q, token, r, err) : attempt_curl(c, q, token, r, err);
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    return o;
}

static void az_backoff(const az_client *c, int attempt)
{
    long d = c->opts.backoff_base_ms;
    for (int i = 1; i < attempt && d < c->opts.backoff_max_ms; i++)
        d *= 2;
    if (d > c->opts.backoff_max_ms)
        d = c->opts.backoff_max_ms;
    long ms = d / 2 + (long)(az_rand() % (uint64_t)(d / 2 + 1));
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Runs q under its retry class. On success *r holds an answer (any
 * status: the caller reads it, and r->ambiguous says whether an earlier
 * attempt's outcome was unknown). A status is returned only when there is
 * no answer to read. */
/* Did the service refuse the request's token itself (not its role)? */
static bool token_refused(const az_resp *r)
{
    if (!r->bearer || (r->status != 401 && r->status != 403))
        return false;
    mt_status st = az_resp_error(r);
    return r->status == 401 || strcmp(st.code, "AuthenticationFailed") == 0 ||
           strcmp(st.code, "InvalidAuthenticationInfo") == 0;
}

mt_status az_call(az_client *c, const az_req *q, az_resp *r)
{
    char err[AZ_ERR_SIZE];
    bool renewed = false;   /* a refused token was replaced once */
    bool ambiguous = false; /* decides what a write's answer means */
    bool unsure = false;    /* an earlier send may have applied, in any class */
    for (int attempt = 1;; attempt++) {
        az_resp_clear(r);
        az_outcome o = az_attempt(c, q, r, err);
        bool last = attempt >= c->opts.max_attempts;
        if (r->requests_out > 1) { /* curl itself sent it again */
            unsure = true;
            if (q->replay != AZ_REPLAY_ANY)
                ambiguous = true;
        }
        /* Reported for replayable requests too: a create-table retried
         * after an unknown outcome may meet the table its first attempt
         * made. */
        r->ambiguous = ambiguous || unsure;
        switch (o) {
        case AZ_FATAL: /* retrying cannot help */
            if (ambiguous || (r->sent && q->replay != AZ_REPLAY_ANY))
                return az_outcome_unknown(err);
            return mt_error(500, MT_ERR_INTERNAL, "Table service request failed: %s", err);
        case AZ_ANSWERED:
            /* A refused token: the request did not run; once more with a
             * new token. */
            if (!renewed && token_refused(r)) {
                renewed = true;
                az_token_invalidate(c->tokens, r->token_gen);
                continue;
            }
            /* A 5xx after an attempt that may have applied says nothing
             * about that attempt. */
            if (r->status >= 500 && ambiguous && (last || q->replay == AZ_REPLAY_NONE)) {
                snprintf(err, AZ_ERR_SIZE, "HTTP %ld after an attempt without an answer",
                         r->status);
                return az_outcome_unknown(err);
            }
            if (r->status < 500 || q->replay == AZ_REPLAY_NONE || last)
                return mt_ok();
            unsure = true;
            if (q->replay == AZ_REPLAY_TOKEN)
                ambiguous = true;
            break;
        case AZ_NOT_SENT:
            if (last)
                return ambiguous ? az_outcome_unknown(err)
                                 : mt_error(503, MT_ERR_SERVER_BUSY,
                                            "Cannot reach the table service: %s", err);
            break;
        case AZ_UNKNOWN:
            if (q->replay == AZ_REPLAY_NONE)
                return az_outcome_unknown(err);
            unsure = true;
            if (q->replay == AZ_REPLAY_TOKEN)
                ambiguous = true;
            if (last)
                return q->replay == AZ_REPLAY_ANY
                           ? mt_error(503, MT_ERR_SERVER_BUSY,
                                      "No answer from the table service after %d attempts: %s",
                                      attempt, err)
                           : az_outcome_unknown(err);
            break;
        }
        az_backoff(c, attempt);
    }
}

/* ------------------------------------------------------------------------ */
/* Error bodies.                                                             */

static void xml_field(const char *s, size_t n, const char *tag, char *out, size_t cap)
{
    char open[32];
    snprintf(open, sizeof open, "<%s>", tag);
    size_t ol = strlen(open);
    for (size_t i = 0; i + ol <= n; i++) {
        if (strncasecmp(s + i, open, ol) != 0)
            continue;
        const char *v = s + i + ol, *end = memchr(v, '<', n - i - ol);
        if (end)
            az_copy_field(out, cap, v, (size_t)(end - v) < cap ? (size_t)(end - v) : cap - 1);
        return;
    }
}

static void json_error(const char *s, size_t n, char *code, char *msg)
{
    cJSON *root = cJSON_ParseWithLength(s, n);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "odata.error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsObject(m))
        m = cJSON_GetObjectItemCaseSensitive(m, "value");
    if (cJSON_IsString(c))
        snprintf(code, MT_CODE_MAX, "%s", c->valuestring);
    if (cJSON_IsString(m))
        snprintf(msg, MT_MSG_MAX, "%s", m->valuestring);
    cJSON_Delete(root);
}

static const char *default_code(long status)
{
    switch (status) {
    case 400:
        return MT_ERR_INVALID_INPUT;
    case 403:
        return "AuthenticationFailed";
    case 404:
        return MT_ERR_NOT_FOUND;
    case 409:
        return "Conflict";
    case 412:
        return MT_ERR_CONDITION;
    case 503:
        return MT_ERR_SERVER_BUSY;
    default:
        return status >= 500 ? MT_ERR_INTERNAL : "";
    }
}

/* The status of an error answer (status >= 300): code and message from the
 * body, the "<index>:" prefix Azure puts on batch errors into .index. */
mt_status az_error_of(long status, const char *body, size_t len)
{
    char code[MT_CODE_MAX] = "", msg[MT_MSG_MAX] = "";
    if (body && len) {
        json_error(body, len, code, msg);
        if (!code[0])
            xml_field(body, len, "Code", code, sizeof code);
        if (!msg[0])
            xml_field(body, len, "Message", msg, sizeof msg);
    }
    int index = -1;
    char *m = msg;
    if (isdigit((unsigned char)m[0])) {
        char *end;
        long k = strtol(m, &end, 10);
        if (*end == ':' && k >= 0 && k < MT_BATCH_MAX) {
            index = (int)k;
            m = end + 1;
        }
    }
    m[strcspn(m, "\r\n")] = '\0';
    mt_status st = mt_error((int)status, code[0] ? code : default_code(status), "%s",
                            m[0] ? m : "The table service refused the request.");
    st.index = index;
    return st;
}

mt_status az_resp_error(const az_resp *r)
{
    return az_error_of(r->status, r->body.p, r->body.len);
}

bool az_is_state_failure(int http)
{
    return http == 404 || http == 409 || http == 412;
}

/*
 * az_client.c -- the backend table over a real Azure Table endpoint.
 *
 * It implements mt_table_ops (core/mt.h) with the Table REST API, version
 * 2019-02-02, in JSON with minimal metadata: every request body annotates
 * each value whose JSON form does not say its EDM type (Int64, Double,
 * DateTime, Guid, Binary), and responses are read by the wire library's
 * entity reader, which tells 5 (Int32) from 5.0 (Double) by the number's
 * text. Requests are signed with Shared Key (az_sign) or carry the SAS of
 * the connection string. One op is one single-entity call; 2..100 ops are
 * one $batch changeset; errors map back to the failing op by the "<index>:"
 * prefix of the service's message.
 *
 * Connections: each client keeps a small pool of curl easy handles; a
 * request takes one, and a handle keeps its connections alive across
 * requests, so steady traffic reuses TCP and TLS sessions. A connection
 * idle for more than 4 s is not reused: servers close idle connections
 * (Node, hence Azurite, after 5 s), and a write sent just as the server
 * closes would end with an unknown outcome for no reason. Timeouts: 5 s to
 * connect and 30 s per attempt by default (the service's own limit for a
 * write is 30 s; a shorter client timeout makes "did it apply?" questions
 * more frequent). https always verifies the peer and the host name.
 *
 * Retries, and why a write is never replayed blindly. An attempt ends in
 * one of three ways: the service answered; the request provably never left
 * (name resolution, connect or TLS handshake failed, nothing written to
 * the socket: curl's request size is 0); or the outcome is unknown (a
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
 *
 * DeleteIfExists has no REST equivalent. Alone, it is Delete with
 * If-Match: *, and a 404 ResourceNotFound counts as success: one request,
 * atomic at the service, so exactly linearizable. Inside a batch of several
 * ops: read the rows it names (RowKey eq ... chunks within the 15
 * comparison limit); a present row becomes Delete(If-Match: its ETag),
 * an absent row is left out of the wire batch; if the batch then fails
 * at such a Delete with 404 or 412, the row changed since the read, and
 * the whole batch is read and sent again (bounded; 503 ServerBusy when the
 * rows keep changing). A batch that ends up empty is not sent: its results
 * are all 204. The batch linearizes at its commit for present rows. For an
 * absent row there is no Azure operation that asserts absence without
 * creating the row, so the op linearizes at the read: the batch as a whole
 * is linearizable unless another writer creates that very row between our
 * read and our commit (then the row survives a batch that "deleted" it).
 * The core never sends such a batch from a client request (REST has no
 * DeleteIfExists); the migrator sends DeleteIfExists alone.
 *
 * Atomic reads. query_atomic asks for one partition and follows
 * continuations. The service guarantees atomicity per page only (at most
 * 1000 rows, at most 5 s of work, and a page may stop early, even empty),
 * so the result is atomic exactly when it comes in one page; otherwise it
 * is a sequence of atomic page reads, each later than the one before, in
 * key order. That is all Azure promises a client paging through a
 * partition, and all the proxy's atomic reads of a whole partition can
 * promise in turn: they are atomic while the partition's matching rows fit
 * one page. The protocol's writes do not rest on more: they read at most
 * 14 keys at a time and re-check what they read with the conditional batch
 * on the new table, which fails if anything changed since (and is then
 * retried); streams never promised atomicity across rows.
 *
 * Filters are sent as mt_filter_print prints them, and every returned row
 * is evaluated again with mt_filter_eval: where a server is more lenient
 * than Azure's typing rules (Azurite compares numbers across EDM types),
 * the result is still Azure's. A stream from a start key adds the key
 * range "PartitionKey gt P or (PartitionKey eq P and RowKey ge R)"; when
 * the filter and the range together exceed 15 comparisons, only the range
 * goes to the server and the filter is applied here alone.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cJSON.h>
#include <curl/curl.h>

#include "az.h"
#include "az_client.h"

#define AZ_API_VERSION "2019-02-02"
#define AZ_ACCEPT "application/json;odata=minimalmetadata"
#define AZ_JSON "application/json"
#define AZ_BODY_MAX ((size_t)256 << 20) /* a page of 1000 large rows fits */
#define AZ_POOL_MAX 32                  /* idle handles kept per client */
#define AZ_IDLE_REUSE_S 4L              /* below Node's (Azurite's) 5 s keep-alive */
#define AZ_DIE_ROUNDS 8
#define AZ_KEYS_PER_READ (MT_FILTER_MAX_COMPARISONS - 1)
#define AZ_ODATA_TYPE "@odata.type"

#define AZ_ERR_TIMED_OUT "OperationTimedOut"
#define AZ_ERR_TABLE_NOT_FOUND "TableNotFound"
#define AZ_ERR_TABLE_EXISTS "TableAlreadyExists"

/* ------------------------------------------------------------------------ */
/* Small helpers.                                                            */

typedef struct az_sb {
    char *p;
    size_t n, cap;
    bool oom;
} az_sb;

static void sb_putn(az_sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_puts(az_sb *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_printf(az_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(az_sb *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof tmp) {
        b->oom = true; /* only short pieces go through here */
        return;
    }
    sb_putn(b, tmp, (size_t)k);
}

/* The built string (the caller frees it), or NULL after any failure. */
static char *sb_take(az_sb *b)
{
    if (b->oom || !b->p) {
        free(b->p);
        b->p = NULL;
        return b->oom ? NULL : strdup("");
    }
    char *p = b->p;
    b->p = NULL;
    return p;
}

static mt_status oom(void)
{
    return mt_error(500, MT_ERR_INTERNAL, "out of memory");
}

static mt_status bad_reply(const char *what)
{
    return mt_error(500, MT_ERR_INTERNAL, "Unreadable reply from the table service: %s", what);
}

static mt_status outcome_unknown(const char *why)
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

static void az_hex_token(char *out, size_t nhex)
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
/* The client: credentials, options, a pool of easy handles.                 */

struct az_client {
    char *endpoint;     /* no trailing '/' */
    const char *prefix; /* the endpoint's path ("" or "/account"), in endpoint */
    char *account;
    uint8_t *key;
    size_t key_len;
    char *sas;
    char *ca_file;
    az_client_opts opts;
    pthread_mutex_t mu;
    CURL *idle[AZ_POOL_MAX];
    size_t nidle;
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

az_client *az_client_new(const az_connstr *cs, const az_client_opts *opts, mt_status *st)
{
    *st = mt_ok();
    if (!cs || !cs->endpoint || (!cs->key && !cs->sas) || (cs->key && !cs->account)) {
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
    c->endpoint = strdup(cs->endpoint);
    c->account = cs->account ? strdup(cs->account) : NULL;
    c->sas = cs->sas ? strdup(cs->sas) : NULL;
    c->ca_file = opts && opts->ca_file ? strdup(opts->ca_file) : NULL;
    if (cs->key && (c->key = malloc(cs->key_len)))
        memcpy(c->key, cs->key, cs->key_len), c->key_len = cs->key_len;
    if (!c->endpoint || (cs->account && !c->account) || (cs->sas && !c->sas) ||
        (cs->key && !c->key) || (opts && opts->ca_file && !c->ca_file) ||
        pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->endpoint);
        free(c->account);
        free(c->sas);
        free(c->ca_file);
        if (c->key)
            explicit_bzero(c->key, c->key_len);
        free(c->key);
        free(c);
        goto nomem;
    }
    const char *host = strstr(c->endpoint, "://");
    const char *slash = host ? strchr(host + 3, '/') : NULL;
    c->prefix = slash ? slash : c->endpoint + strlen(c->endpoint);
    return c;
nomem:
    *st = oom();
    return NULL;
}

void az_client_free(az_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    pthread_mutex_destroy(&c->mu);
    if (c->key)
        explicit_bzero(c->key, c->key_len);
    if (c->sas)
        explicit_bzero(c->sas, strlen(c->sas));
    free(c->key);
    free(c->sas);
    free(c->endpoint);
    free(c->account);
    free(c->ca_file);
    free(c);
}

static CURL *pool_get(az_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->nidle)
        h = c->idle[--c->nidle];
    pthread_mutex_unlock(&c->mu);
    return h ? h : curl_easy_init();
}

/* Back to the pool with no option pointing at the caller's memory; a reset
 * keeps the handle's live connections. */
static void pool_put(az_client *c, CURL *h)
{
    curl_easy_reset(h);
    pthread_mutex_lock(&c->mu);
    if (c->nidle < AZ_POOL_MAX) {
        c->idle[c->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_cleanup(h);
}

/* ------------------------------------------------------------------------ */
/* One HTTP exchange, and the retry rules of the opening comment.            */

typedef enum az_replay {
    AZ_REPLAY_ANY,   /* reads: retry on 5xx, timeouts, transport errors */
    AZ_REPLAY_TOKEN, /* a write that can apply at most once */
    AZ_REPLAY_NONE,  /* other writes: only when the request never left */
} az_replay;

typedef struct az_req {
    const char *method;
    const char *path;  /* after the endpoint, from '/', percent-encoded */
    const char *query; /* percent-encoded, without '?', or NULL */
    const char *content_type;
    const char *body;
    size_t len;
    const char *if_match;
    bool no_content; /* Prefer: return-no-content */
    az_replay replay;
} az_req;

typedef struct az_resp {
    long status;
    az_sb body;
    bool too_large;
    bool sent; /* some of the request went out */
    char etag[MT_ETAG_MAX];
    char content_type[256];
    char *next_pk, *next_rk, *next_table; /* continuation headers */
    bool ambiguous;                       /* an earlier attempt had an unknown outcome */
} az_resp;

static void resp_clear(az_resp *r)
{
    free(r->body.p);
    free(r->next_pk);
    free(r->next_rk);
    free(r->next_table);
    memset(r, 0, sizeof *r);
}

static bool header_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

static void copy_field(char *dst, size_t cap, const char *v, size_t n)
{
    if (n >= cap)
        n = 0; /* an oversized value is as good as absent */
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    az_resp *r = ud;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) { /* a new response begins */
        r->etag[0] = r->content_type[0] = '\0';
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
    char **next = NULL;
    if (header_is(buf, nl, "ETag"))
        copy_field(r->etag, sizeof r->etag, v, vl);
    else if (header_is(buf, nl, "Content-Type"))
        copy_field(r->content_type, sizeof r->content_type, v, vl);
    else if (header_is(buf, nl, "x-ms-continuation-NextPartitionKey"))
        next = &r->next_pk;
    else if (header_is(buf, nl, "x-ms-continuation-NextRowKey"))
        next = &r->next_rk;
    else if (header_is(buf, nl, "x-ms-continuation-NextTableName"))
        next = &r->next_table;
    if (next && vl) {
        free(*next);
        *next = strndup(v, vl);
    }
    return n;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *ud)
{
    az_resp *r = ud;
    size_t n = size * nmemb;
    if (r->body.n + n > AZ_BODY_MAX) {
        r->too_large = true;
        return 0;
    }
    sb_putn(&r->body, buf, n);
    return r->body.oom ? 0 : n;
}

typedef enum az_outcome { AZ_ANSWERED, AZ_NOT_SENT, AZ_UNKNOWN, AZ_FATAL } az_outcome;

static struct curl_slist *add_header(struct curl_slist *l, bool *ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static struct curl_slist *add_header(struct curl_slist *l, bool *ok, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    struct curl_slist *n = k >= 0 && (size_t)k < sizeof line ? curl_slist_append(l, line) : NULL;
    if (!n) {
        *ok = false;
        return l;
    }
    return n;
}

/* The request's headers, signed when the client has a key. */
static struct curl_slist *request_headers(const az_client *c, const az_req *q)
{
    char date[32], rid[33];
    az_rfc1123_format(time(NULL), date);
    az_hex_token(rid, 32);
    bool ok = true;
    struct curl_slist *l = NULL;
    l = add_header(l, &ok, "x-ms-version: %s", AZ_API_VERSION);
    l = add_header(l, &ok, "x-ms-date: %s", date);
    l = add_header(l, &ok, "x-ms-client-request-id: %.8s-%.4s-%.4s-%.4s-%.12s", rid, rid + 8,
                   rid + 12, rid + 16, rid + 20);
    l = add_header(l, &ok, "Accept: %s", AZ_ACCEPT);
    l = add_header(l, &ok, "DataServiceVersion: 3.0;NetFx");
    l = add_header(l, &ok, "MaxDataServiceVersion: 3.0;NetFx");
    l = add_header(l, &ok, "Expect:");
    if (q->content_type)
        l = add_header(l, &ok, "Content-Type: %s", q->content_type);
    if (q->if_match)
        l = add_header(l, &ok, "If-Match: %s", q->if_match);
    if (q->no_content)
        l = add_header(l, &ok, "Prefer: return-no-content");
    if (c->key) {
        /* Shared Key for the Table service: verb, Content-MD5 (empty),
         * Content-Type, the date, and "/account" + the path as sent. */
        az_sb s = {0};
        sb_printf(&s, "%s\n\n%s\n%s\n/%s", q->method, q->content_type ? q->content_type : "", date,
                  c->account);
        sb_puts(&s, c->prefix);
        sb_puts(&s, q->path);
        char *sts = sb_take(&s);
        char *sig = sts ? az_sign(c->key, c->key_len, sts) : NULL;
        if (sig)
            l = add_header(l, &ok, "Authorization: SharedKey %s:%s", c->account, sig);
        else
            ok = false;
        free(sts);
        free(sig);
    }
    if (!ok) {
        curl_slist_free_all(l);
        return NULL;
    }
    return l;
}

static char *request_url(const az_client *c, const az_req *q)
{
    az_sb u = {0};
    sb_puts(&u, c->endpoint);
    sb_puts(&u, q->path);
    if (q->query && *q->query) {
        sb_puts(&u, "?");
        sb_puts(&u, q->query);
    }
    if (c->sas) {
        sb_puts(&u, q->query && *q->query ? "&" : "?");
        sb_puts(&u, c->sas);
    }
    return sb_take(&u);
}

static void set_transfer(const az_client *c, CURL *h, const az_req *q, az_resp *r, char *err)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->opts.timeout_ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, AZ_IDLE_REUSE_S);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    if (strcmp(q->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        return;
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    if (q->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->len);
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

/* One attempt. err (CURL_ERROR_SIZE) receives curl's explanation. */
static az_outcome az_attempt(az_client *c, const az_req *q, az_resp *r, char *err)
{
    err[0] = '\0';
    struct curl_slist *hl = request_headers(c, q);
    char *url = request_url(c, q);
    CURL *h = hl && url ? pool_get(c) : NULL;
    if (!h) {
        snprintf(err, CURL_ERROR_SIZE, "out of memory");
        curl_slist_free_all(hl);
        free(url);
        return AZ_FATAL;
    }
    set_transfer(c, h, q, r, err);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    CURLcode rc = curl_easy_perform(h);
    long sent = 0;
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    r->sent = sent > 0;
    pool_put(c, h);
    curl_slist_free_all(hl);
    free(url);
    if (!err[0])
        snprintf(err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
    if (rc == CURLE_OK)
        return AZ_ANSWERED;
    if (r->too_large) {
        snprintf(err, CURL_ERROR_SIZE, "the reply is larger than %zu bytes", AZ_BODY_MAX);
        return AZ_FATAL;
    }
    if (fatal_code(rc))
        return AZ_FATAL;
    return sent == 0 ? AZ_NOT_SENT : AZ_UNKNOWN;
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
static mt_status az_call(az_client *c, const az_req *q, az_resp *r)
{
    char err[CURL_ERROR_SIZE];
    bool ambiguous = false;
    for (int attempt = 1;; attempt++) {
        resp_clear(r);
        az_outcome o = az_attempt(c, q, r, err);
        bool last = attempt >= c->opts.max_attempts;
        r->ambiguous = ambiguous;
        switch (o) {
        case AZ_FATAL: /* retrying cannot help */
            if (ambiguous || (r->sent && q->replay != AZ_REPLAY_ANY))
                return outcome_unknown(err);
            return mt_error(500, MT_ERR_INTERNAL, "Table service request failed: %s", err);
        case AZ_ANSWERED:
            if (r->status < 500 || q->replay == AZ_REPLAY_NONE || last)
                return mt_ok();
            if (q->replay == AZ_REPLAY_TOKEN)
                ambiguous = true;
            break;
        case AZ_NOT_SENT:
            if (last)
                return ambiguous ? outcome_unknown(err)
                                 : mt_error(503, MT_ERR_SERVER_BUSY,
                                            "Cannot reach the table service: %s", err);
            break;
        case AZ_UNKNOWN:
            if (q->replay == AZ_REPLAY_NONE)
                return outcome_unknown(err);
            if (q->replay == AZ_REPLAY_TOKEN)
                ambiguous = true;
            if (last)
                return q->replay == AZ_REPLAY_ANY
                           ? mt_error(503, MT_ERR_SERVER_BUSY,
                                      "No answer from the table service after %d attempts: %s",
                                      attempt, err)
                           : outcome_unknown(err);
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
            copy_field(out, cap, v, (size_t)(end - v) < cap ? (size_t)(end - v) : cap - 1);
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
static mt_status error_of(long status, const char *body, size_t len)
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

static mt_status error_of_resp(const az_resp *r)
{
    return error_of(r->status, r->body.p, r->body.n);
}

static bool is_state_failure(int http)
{
    return http == 404 || http == 409 || http == 412;
}

/* ------------------------------------------------------------------------ */
/* Entities on the wire.                                                     */

/* Shortest of %.15g..%.17g that reads back exactly, always with a '.' or
 * an exponent. */
static void double_text(double d, char out[48])
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, d);
        char *comma = strchr(out, ',');
        if (comma)
            *comma = '.';
        if (strtod(out, NULL) == d)
            break;
    }
    if (!strpbrk(out, ".eE"))
        strcat(out, ".0");
}

static bool needs_annotation(mt_edm t)
{
    return t != MT_EDM_STRING && t != MT_EDM_INT32 && t != MT_EDM_BOOLEAN;
}

static cJSON *value_item(const mt_value *v)
{
    char tmp[64];
    switch (v->type) {
    case MT_EDM_STRING:
        return cJSON_CreateString(v->u.bytes.ptr ? v->u.bytes.ptr : "");
    case MT_EDM_INT32:
        snprintf(tmp, sizeof tmp, "%" PRId32, v->u.i32);
        return cJSON_CreateRaw(tmp);
    case MT_EDM_INT64:
        snprintf(tmp, sizeof tmp, "%" PRId64, v->u.i64);
        return cJSON_CreateString(tmp);
    case MT_EDM_DOUBLE:
        if (isnan(v->u.dbl))
            return cJSON_CreateString("NaN");
        if (isinf(v->u.dbl))
            return cJSON_CreateString(v->u.dbl < 0 ? "-Infinity" : "Infinity");
        double_text(v->u.dbl, tmp);
        return cJSON_CreateRaw(tmp);
    case MT_EDM_BOOLEAN:
        return cJSON_CreateBool(v->u.b);
    case MT_EDM_DATETIME:
        mt_datetime_format(v->u.ticks, tmp);
        return cJSON_CreateString(tmp);
    case MT_EDM_GUID: {
        const uint8_t *g = v->u.guid;
        snprintf(tmp, sizeof tmp,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[0], g[1],
                 g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13], g[14],
                 g[15]);
        return cJSON_CreateString(tmp);
    }
    case MT_EDM_BINARY: {
        char *b64 = az_base64_encode((const uint8_t *)v->u.bytes.ptr, v->u.bytes.len);
        cJSON *it = b64 ? cJSON_CreateString(b64) : NULL;
        free(b64);
        return it;
    }
    }
    return NULL;
}

/* The JSON body of an entity: keys, then every property, annotated where
 * JSON alone would lose the type. The caller frees it. */
static char *entity_body(const mt_entity *e, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "PartitionKey", e->pk) &&
              cJSON_AddStringToObject(o, "RowKey", e->rk);
    for (size_t i = 0; ok && i < e->nprops; i++) {
        const mt_prop *p = &e->props[i];
        if (needs_annotation(p->value.type)) {
            az_sb n = {0};
            sb_puts(&n, p->name);
            sb_puts(&n, AZ_ODATA_TYPE);
            char *name = sb_take(&n);
            ok = name && cJSON_AddStringToObject(o, name, mt_edm_name(p->value.type));
            free(name);
        }
        cJSON *it = ok ? value_item(&p->value) : NULL;
        if (it)
            cJSON_AddItemToObject(o, p->name, it);
        ok = it != NULL;
    }
    char *out = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    *len = out ? strlen(out) : 0;
    return out;
}

/* One entity object of a reply: the wire library reads keys and values;
 * the ETag (etag, else odata.etag) and Timestamp are taken here. */
static mt_status entity_parse(const char *s, size_t n, const char *etag, mt_entity **out)
{
    mt_status st = az_entity_read(AZ_FMT_JSON, s, n, out);
    if (!mt_is_ok(&st))
        return bad_reply(st.message);
    cJSON *root = cJSON_ParseWithLength(s, n);
    const cJSON *et = cJSON_GetObjectItemCaseSensitive(root, "odata.etag");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "Timestamp");
    if (etag && *etag)
        mt_entity_set_etag(*out, etag);
    else if (cJSON_IsString(et))
        mt_entity_set_etag(*out, et->valuestring);
    int64_t ticks;
    if (cJSON_IsString(ts) && mt_datetime_parse(ts->valuestring, strlen(ts->valuestring), &ticks))
        (*out)->timestamp = ticks;
    cJSON_Delete(root);
    return mt_ok();
}

/* Raw-text walk of a feed: the number texts of each entity must reach the
 * entity reader untouched, so the "value" array is cut into the spans of
 * its elements rather than re-printed from a parsed tree. */
static void skip_ws(const char *s, size_t n, size_t *i)
{
    while (*i < n && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\r' || s[*i] == '\n'))
        (*i)++;
}

static bool skip_string(const char *s, size_t n, size_t *i)
{
    for (size_t j = *i + 1; j < n; j++) {
        if (s[j] == '\\')
            j++;
        else if (s[j] == '"') {
            *i = j + 1;
            return true;
        }
    }
    return false;
}

static bool skip_value(const char *s, size_t n, size_t *i)
{
    if (*i >= n)
        return false;
    if (s[*i] == '"')
        return skip_string(s, n, i);
    if (s[*i] != '{' && s[*i] != '[') {
        while (*i < n && !strchr(",}] \t\r\n", s[*i]))
            (*i)++;
        return true;
    }
    int depth = 0;
    while (*i < n) {
        char c = s[*i];
        if (c == '"') {
            if (!skip_string(s, n, i))
                return false;
            continue;
        }
        (*i)++;
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return true;
    }
    return false;
}

typedef mt_status (*span_fn)(void *ctx, const char *s, size_t n);

static mt_status feed_each(const char *s, size_t n, span_fn fn, void *ctx)
{
    size_t i = 0;
    skip_ws(s, n, &i);
    if (i >= n || s[i++] != '{')
        return bad_reply("the feed is not a JSON object");
    for (;;) {
        skip_ws(s, n, &i);
        if (i < n && s[i] == '}')
            return mt_ok();
        size_t k = i;
        if (i >= n || s[i] != '"' || !skip_string(s, n, &i))
            return bad_reply("bad member name in the feed");
        bool value = i - k == 7 && memcmp(s + k, "\"value\"", 7) == 0;
        skip_ws(s, n, &i);
        if (i >= n || s[i++] != ':')
            return bad_reply("missing ':' in the feed");
        skip_ws(s, n, &i);
        if (value && i < n && s[i] == '[') {
            i++;
            for (;;) {
                skip_ws(s, n, &i);
                if (i < n && s[i] == ']') {
                    i++;
                    break;
                }
                size_t start = i;
                if (!skip_value(s, n, &i))
                    return bad_reply("truncated entity in the feed");
                mt_status st = fn(ctx, s + start, i - start);
                if (!mt_is_ok(&st))
                    return st;
                skip_ws(s, n, &i);
                if (i < n && s[i] == ',')
                    i++;
            }
        } else if (!skip_value(s, n, &i)) {
            return bad_reply("truncated feed");
        }
        skip_ws(s, n, &i);
        if (i < n && s[i] == ',')
            i++;
        else if (i >= n || s[i] != '}')
            return bad_reply("bad separator in the feed");
    }
}

/* A key inside a resource path: quotes doubled (OData), everything but
 * unreserved characters and the quotes percent-encoded. */
static void sb_key(az_sb *b, const char *k)
{
    static const char hex[] = "0123456789ABCDEF";
    sb_puts(b, "'");
    for (const unsigned char *p = (const unsigned char *)k; *p; p++) {
        if (*p == '\'')
            sb_puts(b, "''");
        else if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~')
            sb_putn(b, (const char *)p, 1);
        else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            sb_putn(b, e, 3);
        }
    }
    sb_puts(b, "'");
}

/* ------------------------------------------------------------------------ */
/* The table.                                                                */

typedef struct az_table {
    mt_table base;
    az_client *c;
    bool owns_client;
    char name[64];
} az_table;

static const mt_table_ops az_table_ops;

static az_table *as_az(mt_table *t)
{
    return (az_table *)t;
}

static char *entity_path(const az_table *t, const char *pk, const char *rk)
{
    az_sb b = {0};
    sb_printf(&b, "/%s(PartitionKey=", t->name);
    sb_key(&b, pk);
    sb_puts(&b, ",RowKey=");
    sb_key(&b, rk);
    sb_puts(&b, ")");
    return sb_take(&b);
}

/* How an op goes on the wire. */
typedef struct az_wire {
    const char *method;
    bool url_keys; /* else POST to the table */
    bool body;
    const char *if_match;
} az_wire;

static az_wire op_wire(const mt_op *op)
{
    switch (op->kind) {
    case MT_OP_INSERT:
        return (az_wire){"POST", false, true, NULL};
    case MT_OP_REPLACE:
        return (az_wire){"PUT", true, true, op->if_match};
    case MT_OP_MERGE:
        return (az_wire){"MERGE", true, true, op->if_match};
    case MT_OP_DELETE:
        return (az_wire){"DELETE", true, false, op->if_match};
    case MT_OP_INSERT_OR_REPLACE:
        return (az_wire){"PUT", true, true, NULL};
    case MT_OP_INSERT_OR_MERGE:
        return (az_wire){"MERGE", true, true, NULL};
    case MT_OP_DELETE_IF_EXISTS:
        break;
    }
    return (az_wire){"DELETE", true, false, "*"};
}

/* Conditioned on a specific ETag: at most one attempt can apply. */
static bool op_has_token(const mt_op *op)
{
    return (op->kind == MT_OP_REPLACE || op->kind == MT_OP_MERGE || op->kind == MT_OP_DELETE) &&
           op->if_match && strcmp(op->if_match, "*") != 0;
}

static bool is_delete(mt_op_kind k)
{
    return k == MT_OP_DELETE || k == MT_OP_DELETE_IF_EXISTS;
}

static void fill_result(const mt_op *op, const char *etag, mt_op_result *res)
{
    res->http = op->kind == MT_OP_INSERT ? 201 : 204;
    res->etag[0] = '\0';
    if (!is_delete(op->kind) && etag)
        snprintf(res->etag, sizeof res->etag, "%s", etag);
}

/* ------------------------------------------------------------------------ */
/* Writes: one op.                                                           */

static mt_status single_op(az_table *t, const mt_op *op, mt_op_result *res)
{
    az_wire w = op_wire(op);
    size_t len = 0;
    char *body = w.body ? entity_body(op->entity, &len) : NULL;
    char *path = NULL;
    if (w.url_keys) {
        path = entity_path(t, op->entity->pk, op->entity->rk);
    } else {
        az_sb b = {0};
        sb_printf(&b, "/%s", t->name);
        path = sb_take(&b);
    }
    mt_status st = oom();
    if (path && (body || !w.body)) {
        az_req q = {.method = w.method,
                    .path = path,
                    .content_type = body ? AZ_JSON : NULL,
                    .body = body,
                    .len = len,
                    .if_match = w.if_match,
                    .no_content = op->kind == MT_OP_INSERT,
                    .replay = op_has_token(op) ? AZ_REPLAY_TOKEN : AZ_REPLAY_NONE};
        az_resp r = {0};
        st = az_call(t->c, &q, &r);
        if (mt_is_ok(&st) && r.status >= 200 && r.status < 300) {
            fill_result(op, r.etag, res);
        } else if (mt_is_ok(&st)) {
            st = error_of_resp(&r);
            if (op->kind == MT_OP_DELETE_IF_EXISTS && st.http == 404 &&
                strcmp(st.code, AZ_ERR_TABLE_NOT_FOUND) != 0) {
                fill_result(op, NULL, res);
                st = mt_ok();
            } else if (r.ambiguous && is_state_failure(st.http)) {
                st = outcome_unknown("a retried write was refused");
            }
            if (!mt_is_ok(&st))
                st.index = st.http < 500 ? 0 : -1;
        }
        resp_clear(&r);
    }
    free(body);
    free(path);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Writes: a $batch changeset.                                               */

typedef struct az_reply {
    int status;
    int content_id; /* 0 when absent */
    char etag[MT_ETAG_MAX];
    const char *body;
    size_t len;
} az_reply;

/* The next line of s[*i..n) without its line ending; false at the end. */
static bool next_line(const char *s, size_t n, size_t *i, const char **line, size_t *len)
{
    if (*i >= n)
        return false;
    const char *p = s + *i, *nl = memchr(p, '\n', n - *i);
    size_t l = nl ? (size_t)(nl - p) : n - *i;
    *line = p;
    *i += nl ? l + 1 : l;
    *len = l && p[l - 1] == '\r' ? l - 1 : l;
    return true;
}

/* Reads "Name: value" lines up to the empty line; keeps the few we use. */
static void part_headers(const char *s, size_t n, size_t *i, char *ctype, size_t ccap,
                         az_reply *rep)
{
    const char *line;
    size_t len;
    while (next_line(s, n, i, &line, &len) && len) {
        const char *colon = memchr(line, ':', len);
        if (!colon)
            continue;
        size_t nl = (size_t)(colon - line), vl = len - nl - 1;
        const char *v = colon + 1;
        while (vl && *v == ' ')
            v++, vl--;
        if (ctype && header_is(line, nl, "Content-Type"))
            copy_field(ctype, ccap, v, vl);
        else if (rep && header_is(line, nl, "ETag"))
            copy_field(rep->etag, sizeof rep->etag, v, vl);
        else if (rep && header_is(line, nl, "Content-ID"))
            rep->content_id = atoi(v);
    }
}

static bool boundary_of(const char *ctype, char *out, size_t cap)
{
    const char *b = ctype ? strstr(ctype, "boundary=") : NULL;
    if (!b)
        return false;
    b += 9;
    bool quoted = *b == '"';
    b += quoted;
    size_t n = strcspn(b, quoted ? "\"" : "; \t");
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, b, n);
    out[n] = '\0';
    return true;
}

typedef struct az_span {
    const char *p;
    size_t n;
} az_span;

/* The parts of a multipart body between "--boundary" lines; the count. */
static size_t multipart_split(const char *s, size_t n, const char *boundary, az_span *parts,
                              size_t max)
{
    size_t bl = strlen(boundary), count = 0;
    const char *open = NULL; /* where the current part's text begins */
    for (size_t i = 0; i + 2 + bl <= n; i++) {
        if ((i > 0 && s[i - 1] != '\n') || s[i] != '-' || s[i + 1] != '-' ||
            memcmp(s + i + 2, boundary, bl) != 0)
            continue;
        if (open) {
            size_t end = i;
            if (end > 0 && s[end - 1] == '\n')
                end--;
            if (end > 0 && s[end - 1] == '\r')
                end--;
            if (count == max)
                return count + 1; /* more than asked for */
            parts[count++] = (az_span){open, (size_t)(s + end - open)};
        }
        size_t j = i + 2 + bl;
        if (j + 1 < n && s[j] == '-' && s[j + 1] == '-')
            return count; /* the closing delimiter */
        const char *nl = memchr(s + j, '\n', n - j);
        if (!nl)
            return count;
        open = nl + 1;
        i = (size_t)(nl - s);
    }
    return count;
}

/* One "application/http" part: status line, headers, body. */
static bool http_part(const char *s, size_t n, az_reply *rep)
{
    size_t i = 0, len = 0;
    const char *line = NULL;
    memset(rep, 0, sizeof *rep);
    part_headers(s, n, &i, NULL, 0, NULL); /* Content-Type: application/http ... */
    while (next_line(s, n, &i, &line, &len) && len == 0)
        ;
    if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0)
        return false;
    rep->status = atoi(line + 9);
    part_headers(s, n, &i, NULL, 0, rep);
    rep->body = s + i;
    rep->len = n - i;
    return rep->status >= 100 && rep->status < 600;
}

/* The replies of a $batch answer: one per op, or one for the failing op. */
static mt_status batch_replies(const az_resp *r, az_reply *out, size_t max, size_t *count)
{
    char b[128], ctype[256] = "", cb[128];
    az_span outer[2], inner[MT_BATCH_MAX + 1];
    *count = 0;
    if (!boundary_of(r->content_type, b, sizeof b))
        return bad_reply("no multipart boundary in the $batch answer");
    if (multipart_split(r->body.p, r->body.n, b, outer, 2) < 1)
        return bad_reply("no part in the $batch answer");
    size_t i = 0;
    part_headers(outer[0].p, outer[0].n, &i, ctype, sizeof ctype, NULL);
    if (!boundary_of(ctype, cb, sizeof cb)) {
        /* Not a changeset: the whole batch was refused in one reply. */
        if (!http_part(outer[0].p, outer[0].n, &out[0]))
            return bad_reply("bad part in the $batch answer");
        *count = 1;
        return mt_ok();
    }
    size_t k = multipart_split(outer[0].p + i, outer[0].n - i, cb, inner, max);
    if (k == 0 || k > max)
        return bad_reply("wrong number of changeset replies");
    for (size_t j = 0; j < k; j++)
        if (!http_part(inner[j].p, inner[j].n, &out[j]))
            return bad_reply("bad changeset reply");
    *count = k;
    return mt_ok();
}

static void batch_part(az_sb *b, const az_table *t, const char *cs, const mt_op *op, size_t i,
                       const char *body)
{
    az_wire w = op_wire(op);
    sb_printf(b,
              "--%s\r\nContent-Type: application/http\r\n"
              "Content-Transfer-Encoding: binary\r\n\r\n",
              cs);
    sb_printf(b, "%s ", w.method);
    sb_puts(b, t->c->endpoint);
    if (w.url_keys) {
        char *p = entity_path(t, op->entity->pk, op->entity->rk);
        if (p)
            sb_puts(b, p);
        else
            b->oom = true;
        free(p);
    } else {
        sb_printf(b, "/%s", t->name);
    }
    sb_printf(b, " HTTP/1.1\r\nContent-ID: %zu\r\nAccept: %s\r\n", i + 1, AZ_ACCEPT);
    sb_puts(b, "DataServiceVersion: 3.0;\r\n");
    if (body)
        sb_printf(b, "Content-Type: %s\r\n", AZ_JSON);
    if (op->kind == MT_OP_INSERT)
        sb_puts(b, "Prefer: return-no-content\r\n");
    if (w.if_match) {
        sb_puts(b, "If-Match: ");
        sb_puts(b, w.if_match);
        sb_puts(b, "\r\n");
    }
    sb_puts(b, "\r\n");
    if (body) {
        sb_puts(b, body);
        sb_puts(b, "\r\n");
    }
}

static char *batch_body(const az_table *t, const mt_op *ops, size_t n, const char *bb,
                        const char *cs, size_t *len)
{
    az_sb b = {0};
    sb_printf(&b, "--%s\r\nContent-Type: multipart/mixed; boundary=%s\r\n\r\n", bb, cs);
    for (size_t i = 0; i < n && !b.oom; i++) {
        size_t bl;
        char *body = op_wire(&ops[i]).body ? entity_body(ops[i].entity, &bl) : NULL;
        if (op_wire(&ops[i]).body && !body)
            b.oom = true;
        batch_part(&b, t, cs, &ops[i], i, body);
        free(body);
    }
    sb_printf(&b, "--%s--\r\n--%s--\r\n", cs, bb);
    *len = b.n;
    return sb_take(&b);
}

/* The failing reply's status, its op index from the message prefix or
 * else from its Content-ID. */
static mt_status batch_failure(const az_reply *rep, size_t n, bool ambiguous)
{
    mt_status st = error_of(rep->status, rep->body, rep->len);
    if (st.index < 0 && rep->content_id >= 1)
        st.index = rep->content_id - 1;
    if (st.index >= (int)n)
        st.index = -1;
    if (ambiguous && is_state_failure(st.http)) {
        int index = st.index;
        st = outcome_unknown("a retried batch was refused");
        st.index = index;
    }
    return st;
}

static mt_status batch_send(az_table *t, const mt_op *ops, size_t n, mt_op_result *res)
{
    char bb[48] = "batch_", cs[48] = "changeset_";
    az_hex_token(bb + 6, 32);
    az_hex_token(cs + 10, 32);
    size_t len = 0;
    char *body = batch_body(t, ops, n, bb, cs, &len);
    char ctype[96];
    snprintf(ctype, sizeof ctype, "multipart/mixed; boundary=%s", bb);
    bool token = false;
    for (size_t i = 0; i < n; i++)
        token = token || op_has_token(&ops[i]);
    if (!body)
        return oom();
    az_req q = {.method = "POST",
                .path = "/$batch",
                .content_type = ctype,
                .body = body,
                .len = len,
                .replay = token ? AZ_REPLAY_TOKEN : AZ_REPLAY_NONE};
    az_resp r = {0};
    az_reply *reps = calloc(MT_BATCH_MAX + 1, sizeof *reps);
    size_t k = 0;
    mt_status st = reps ? az_call(t->c, &q, &r) : oom();
    if (mt_is_ok(&st) && r.status != 202) {
        st = error_of_resp(&r);
        if (r.ambiguous && is_state_failure(st.http))
            st = outcome_unknown("a retried batch was refused");
    } else if (mt_is_ok(&st)) {
        st = batch_replies(&r, reps, n, &k);
    }
    for (size_t j = 0; mt_is_ok(&st) && j < k; j++)
        if (reps[j].status >= 300)
            st = batch_failure(&reps[j], n, r.ambiguous);
    if (mt_is_ok(&st) && k != n)
        st = bad_reply("the changeset answer does not have one reply per op");
    for (size_t j = 0; mt_is_ok(&st) && j < n; j++) {
        size_t i = reps[j].content_id >= 1 && (size_t)reps[j].content_id <= n
                       ? (size_t)reps[j].content_id - 1
                       : j;
        fill_result(&ops[i], reps[j].etag, &res[i]);
    }
    free(reps);
    resp_clear(&r);
    free(body);
    return st;
}

/* One wire batch: a lone op goes as its single-entity call. */
static mt_status wire_send(az_table *t, const mt_op *ops, size_t n, mt_op_result *res)
{
    return n == 1 ? single_op(t, ops, res) : batch_send(t, ops, n, res);
}

/* ------------------------------------------------------------------------ */
/* Reads.                                                                    */

/* $filter (when f is given) and $top, percent-encoded; NULL on failure. */
static char *query_base(const az_table *t, const mt_filter *f)
{
    az_sb q = {0};
    if (f) {
        char *text = mt_filter_print(f);
        char *enc = text ? az_url_encode(text) : NULL;
        if (enc) {
            sb_puts(&q, "$filter=");
            sb_puts(&q, enc);
        } else {
            q.oom = true;
        }
        free(text);
        free(enc);
    }
    if (t->c->opts.page_size)
        sb_printf(&q, "%s$top=%d", q.n ? "&" : "", t->c->opts.page_size);
    return sb_take(&q);
}

typedef struct page_ctx {
    const mt_filter *local;
    mt_entity_list *out;
} page_ctx;

static mt_status page_row(void *ctx, const char *s, size_t n)
{
    page_ctx *pc = ctx;
    mt_entity *e = NULL;
    mt_status st = entity_parse(s, n, NULL, &e);
    if (!mt_is_ok(&st))
        return st;
    if (pc->local && !mt_filter_eval(pc->local, e)) {
        mt_entity_free(e);
        return mt_ok();
    }
    size_t before = pc->out->n;
    mt_entity_list_push(pc->out, e);
    return pc->out->n > before ? mt_ok() : oom();
}

static void list_truncate(mt_entity_list *l, size_t n)
{
    while (l->n > n)
        mt_entity_free(l->v[--l->n]);
}

/* One page of a query from continuation (npk, nrk) (NULL: the first
 * page). Rows matching local are appended to out; *next_pk and *next_rk get
 * the continuation (NULL at the end). On failure out is unchanged. */
static mt_status query_page(az_table *t, const char *base, const char *npk, const char *nrk,
                            const mt_filter *local, mt_entity_list *out, char **next_pk,
                            char **next_rk)
{
    *next_pk = *next_rk = NULL;
    az_sb path = {0}, qs = {0};
    sb_printf(&path, "/%s()", t->name);
    sb_puts(&qs, base);
    const char *names[2] = {"NextPartitionKey", "NextRowKey"}, *vals[2] = {npk, nrk};
    for (int i = 0; i < 2; i++) {
        char *enc = vals[i] ? az_url_encode(vals[i]) : NULL;
        if (vals[i] && !enc)
            qs.oom = true;
        if (enc)
            sb_printf(&qs, "%s%s=", qs.n ? "&" : "", names[i]), sb_puts(&qs, enc);
        free(enc);
    }
    char *p = sb_take(&path), *query = sb_take(&qs);
    mt_status st = oom();
    size_t n0 = out->n;
    if (p && query) {
        az_req q = {.method = "GET", .path = p, .query = query, .replay = AZ_REPLAY_ANY};
        az_resp r = {0};
        st = az_call(t->c, &q, &r);
        if (mt_is_ok(&st) && r.status != 200)
            st = error_of_resp(&r);
        page_ctx pc = {local, out};
        if (mt_is_ok(&st))
            st = feed_each(r.body.p ? r.body.p : "", r.body.n, page_row, &pc);
        if (mt_is_ok(&st) && r.next_pk) {
            *next_pk = r.next_pk, r.next_pk = NULL;
            *next_rk = r.next_rk, r.next_rk = NULL;
        }
        resp_clear(&r);
    }
    if (!mt_is_ok(&st))
        list_truncate(out, n0);
    free(p);
    free(query);
    return st;
}

static mt_status check_comparisons(const mt_filter *f, size_t implicit)
{
    size_t n = implicit + (f ? mt_filter_count_comparisons(f) : 0);
    if (n > MT_FILTER_MAX_COMPARISONS)
        return mt_error(400, MT_ERR_INVALID_INPUT,
                        "The filter holds %zu comparisons; at most %d are allowed.", n,
                        MT_FILTER_MAX_COMPARISONS);
    return mt_ok();
}

/* Every row of partition pk matching f, page after page. */
static mt_status query_partition(az_table *t, const char *pk, const mt_filter *f,
                                 mt_entity_list *out)
{
    mt_value v = mt_v_str(pk);
    mt_filter *pin = mt_filter_cmp("PartitionKey", MT_EQ, &v);
    mt_filter *sent = pin && f ? mt_filter_and(pin, mt_filter_clone(f)) : pin;
    char *base = sent ? query_base(t, sent) : NULL;
    mt_filter_free(sent);
    if (!base)
        return oom();
    size_t n0 = out->n;
    char *npk = NULL, *nrk = NULL;
    mt_status st;
    do {
        char *next_pk, *next_rk;
        st = query_page(t, base, npk, nrk, f, out, &next_pk, &next_rk);
        free(npk);
        free(nrk);
        npk = next_pk, nrk = next_rk;
    } while (mt_is_ok(&st) && npk);
    free(npk);
    free(nrk);
    free(base);
    if (!mt_is_ok(&st))
        list_truncate(out, n0);
    return st;
}

static mt_status az_query_atomic(mt_table *tt, const char *pk, const mt_filter *f,
                                 mt_entity_list *out)
{
    if (!pk)
        return mt_error(400, MT_ERR_INVALID_INPUT, "No partition key.");
    mt_status st = check_comparisons(f, 1); /* the partition pin counts */
    return mt_is_ok(&st) ? query_partition(as_az(tt), pk, f, out) : st;
}

static mt_status az_retrieve(mt_table *tt, const char *pk, const char *rk, mt_entity **out)
{
    az_table *t = as_az(tt);
    *out = NULL;
    if (!pk || !rk)
        return mt_error(400, MT_ERR_INVALID_INPUT, "No key.");
    char *path = entity_path(t, pk, rk);
    if (!path)
        return oom();
    az_req q = {.method = "GET", .path = path, .replay = AZ_REPLAY_ANY};
    az_resp r = {0};
    mt_status st = az_call(t->c, &q, &r);
    if (mt_is_ok(&st) && r.status != 200)
        st = error_of_resp(&r);
    if (mt_is_ok(&st))
        st = entity_parse(r.body.p ? r.body.p : "", r.body.n, r.etag, out);
    resp_clear(&r);
    free(path);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Streams: a page at a time, in the service's key order.                    */

typedef struct az_stream {
    mt_stream base;
    az_table *t;  /* borrowed; must outlive the stream */
    char *base_q; /* $filter / $top of every page */
    mt_filter *f; /* the caller's filter, applied to every row */
    mt_entity_list page;
    size_t pos;      /* next row of page to hand out */
    char *npk, *nrk; /* continuation of the next page */
    bool started, ended;
} az_stream;

/* Reads pages until one has a row left or the query ends; an empty page
 * with a continuation is normal. */
static mt_status stream_fill(az_stream *s)
{
    while (s->pos == s->page.n && !s->ended) {
        mt_entity_list_clear(&s->page);
        s->pos = 0;
        char *npk, *nrk;
        mt_status st = query_page(s->t, s->base_q, s->npk, s->nrk, s->f, &s->page, &npk, &nrk);
        if (!mt_is_ok(&st))
            return st; /* the same page is asked for again next time */
        free(s->npk);
        free(s->nrk);
        s->npk = npk, s->nrk = nrk;
        s->started = true;
        s->ended = npk == NULL;
    }
    return mt_ok();
}

static mt_status stream_next(mt_stream *base, mt_entity **out)
{
    az_stream *s = (az_stream *)base;
    *out = NULL;
    mt_status st = stream_fill(s);
    if (mt_is_ok(&st) && s->pos < s->page.n) {
        *out = s->page.v[s->pos];
        s->page.v[s->pos++] = NULL;
    }
    return st;
}

static mt_status stream_continuation(mt_stream *base, mt_key *out, bool *more)
{
    az_stream *s = (az_stream *)base;
    *more = false;
    mt_status st = stream_fill(s);
    if (mt_is_ok(&st) && s->pos < s->page.n) {
        const mt_entity *e = s->page.v[s->pos];
        mt_key_set(out, e->pk, e->rk);
        *more = true;
    }
    return st;
}

static void stream_close(mt_stream *base)
{
    az_stream *s = (az_stream *)base;
    if (!s)
        return;
    mt_entity_list_clear(&s->page);
    mt_filter_free(s->f);
    free(s->base_q);
    free(s->npk);
    free(s->nrk);
    free(s);
}

static const mt_stream_ops az_stream_ops = {
    .next = stream_next,
    .continuation = stream_continuation,
    .close = stream_close,
};

/* Keys >= start: "PartitionKey gt P or (PartitionKey eq P and RowKey ge
 * R)", or "PartitionKey ge P" when R is empty. */
static mt_filter *range_from(const mt_key *start)
{
    mt_value p = mt_v_str(start->pk), r = mt_v_str(start->rk ? start->rk : "");
    if (!start->rk || !*start->rk)
        return mt_filter_cmp("PartitionKey", MT_GE, &p);
    return mt_filter_or(mt_filter_cmp("PartitionKey", MT_GT, &p),
                        mt_filter_and(mt_filter_cmp("PartitionKey", MT_EQ, &p),
                                      mt_filter_cmp("RowKey", MT_GE, &r)));
}

static mt_status az_query_stream(mt_table *tt, const mt_filter *f, const mt_key *start,
                                 mt_stream **out)
{
    az_table *t = as_az(tt);
    *out = NULL;
    mt_status st = check_comparisons(f, 0);
    if (!mt_is_ok(&st))
        return st;
    az_stream *s = calloc(1, sizeof *s);
    if (!s)
        return oom();
    s->base.ops = &az_stream_ops;
    s->t = t;
    if (f && !(s->f = mt_filter_clone(f)))
        goto nomem;
    mt_filter *range = start && start->pk ? range_from(start) : NULL;
    if (start && start->pk && !range)
        goto nomem;
    mt_filter *sent = f ? mt_filter_clone(f) : NULL;
    if (range) {
        size_t total =
            mt_filter_count_comparisons(range) + (f ? mt_filter_count_comparisons(f) : 0);
        if (sent && total > MT_FILTER_MAX_COMPARISONS) {
            mt_filter_free(sent); /* the filter is applied here alone */
            sent = NULL;
        }
        sent = sent ? mt_filter_and(range, sent) : range;
    }
    s->base_q = query_base(t, sent);
    mt_filter_free(sent);
    if (!s->base_q)
        goto nomem;
    *out = &s->base;
    return mt_ok();
nomem:
    stream_close(&s->base);
    return oom();
}

/* ------------------------------------------------------------------------ */
/* Batches, and DeleteIfExists inside them.                                  */

static mt_status check_batch(const mt_op *ops, size_t n)
{
    if (!ops || n == 0 || n > MT_BATCH_MAX)
        return mt_error(400, MT_ERR_INVALID_INPUT, "A batch holds 1 to %d operations, not %zu.",
                        MT_BATCH_MAX, n);
    for (size_t i = 0; i < n; i++) {
        const mt_op *op = &ops[i];
        const mt_entity *e = op->entity;
        mt_status st = mt_ok();
        bool needs_match =
            op->kind == MT_OP_REPLACE || op->kind == MT_OP_MERGE || op->kind == MT_OP_DELETE;
        if ((unsigned)op->kind > MT_OP_DELETE_IF_EXISTS)
            st = mt_error(400, MT_ERR_INVALID_INPUT, "Unknown operation.");
        else if (!e || !e->pk || !e->rk)
            st = mt_error(400, MT_ERR_INVALID_INPUT, "Operation has no keys.");
        else if (needs_match && !op->if_match)
            st = mt_error(400, MT_ERR_INVALID_INPUT,
                          "The operation requires an If-Match condition.");
        else if (op->if_match && strpbrk(op->if_match, "\r\n"))
            st = mt_error(400, MT_ERR_INVALID_INPUT, "The If-Match value is malformed.");
        else if (i > 0 && strcmp(e->pk, ops[0].entity->pk) != 0)
            st = mt_error(400, MT_ERR_INVALID_INPUT,
                          "All operations of a batch must be in one partition.");
        for (size_t j = 0; mt_is_ok(&st) && j < i; j++)
            if (strcmp(e->rk, ops[j].entity->rk) == 0)
                st = mt_error(400, MT_ERR_INVALID_INPUT,
                              "The batch contains two operations on one row.");
        if (!mt_is_ok(&st)) {
            st.index = (int)i;
            return st;
        }
    }
    return mt_ok();
}

/* The current rows of the batch's DeleteIfExists ops, by chunks of keys. */
static mt_status read_die_rows(az_table *t, const mt_op *ops, size_t n, mt_entity_list *rows)
{
    size_t i = 0;
    while (i < n) {
        mt_filter *f = NULL;
        for (size_t k = 0; i < n && k < AZ_KEYS_PER_READ; i++) {
            if (ops[i].kind != MT_OP_DELETE_IF_EXISTS)
                continue;
            mt_value v = mt_v_str(ops[i].entity->rk);
            mt_filter *c = mt_filter_cmp("RowKey", MT_EQ, &v);
            f = f ? mt_filter_or(f, c) : c;
            k++;
        }
        if (!f)
            break;
        mt_status st = query_partition(t, ops[0].entity->pk, f, rows);
        mt_filter_free(f);
        if (!mt_is_ok(&st))
            return st;
    }
    return mt_ok();
}

static const mt_entity *find_rk(const mt_entity_list *l, const char *rk)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i]->rk, rk) == 0)
            return l->v[i];
    return NULL;
}

/* One round: read, build the wire batch, send. *again when a row named by
 * a DeleteIfExists changed in between. */
static mt_status die_round(az_table *t, const mt_op *ops, size_t n, mt_op_result *res, bool *again)
{
    mt_entity_list rows = {0};
    mt_op *wire = calloc(n, sizeof *wire);
    mt_op_result *wres = calloc(n, sizeof *wres);
    size_t *from = calloc(n, sizeof *from), m = 0;
    *again = false;
    mt_status st = wire && wres && from ? read_die_rows(t, ops, n, &rows) : oom();
    for (size_t i = 0; mt_is_ok(&st) && i < n; i++) {
        if (ops[i].kind != MT_OP_DELETE_IF_EXISTS) {
            wire[m] = ops[i];
        } else {
            const mt_entity *row = find_rk(&rows, ops[i].entity->rk);
            if (!row)
                continue; /* absent at the read: nothing to send */
            wire[m] = (mt_op){.kind = MT_OP_DELETE, .entity = ops[i].entity, .if_match = row->etag};
            if (!row->etag)
                st = bad_reply("a row without an ETag");
        }
        from[m++] = i;
    }
    if (mt_is_ok(&st) && m > 0)
        st = wire_send(t, wire, m, wres);
    if (!mt_is_ok(&st) && st.index >= 0 && (size_t)st.index < m) {
        size_t i = from[st.index];
        if (ops[i].kind == MT_OP_DELETE_IF_EXISTS && (st.http == 404 || st.http == 412) &&
            strcmp(st.code, AZ_ERR_TABLE_NOT_FOUND) != 0)
            *again = true;
        st.index = (int)i;
    }
    if (mt_is_ok(&st)) {
        for (size_t i = 0; i < n; i++)
            fill_result(&ops[i], NULL, &res[i]);
        for (size_t j = 0; j < m; j++)
            fill_result(&ops[from[j]], wres[j].etag, &res[from[j]]);
    }
    mt_entity_list_clear(&rows);
    free(wire);
    free(wres);
    free(from);
    return st;
}

static mt_status az_execute_batch(mt_table *tt, const mt_op *ops, size_t n, mt_op_result *results)
{
    az_table *t = as_az(tt);
    mt_status st = check_batch(ops, n);
    if (!mt_is_ok(&st))
        return st;
    bool die = false;
    for (size_t i = 0; i < n; i++)
        die = die || ops[i].kind == MT_OP_DELETE_IF_EXISTS;
    if (n == 1 || !die)
        return wire_send(t, ops, n, results);
    for (int round = 0; round < AZ_DIE_ROUNDS; round++) {
        bool again;
        st = die_round(t, ops, n, results, &again);
        if (!again)
            return st;
    }
    return mt_error(503, MT_ERR_SERVER_BUSY,
                    "Rows named by DeleteIfExists kept changing; the batch was not applied.");
}

/* ------------------------------------------------------------------------ */
/* Life cycle.                                                               */

static void az_destroy(mt_table *tt)
{
    az_table *t = as_az(tt);
    if (t->owns_client)
        az_client_free(t->c);
    free(t);
}

static const mt_table_ops az_table_ops = {
    .execute_batch = az_execute_batch,
    .query_atomic = az_query_atomic,
    .query_stream = az_query_stream,
    .retrieve = az_retrieve,
    .destroy = az_destroy,
};

static mt_status bad_table_name(void)
{
    return mt_error(400, "InvalidResourceName",
                    "The table name must be a letter then letters and digits, 3 to 63 in all.");
}

mt_table *az_client_table(az_client *c, const char *table, mt_status *st)
{
    *st = mt_ok();
    if (!c) {
        *st = mt_error(400, MT_ERR_INVALID_INPUT, "No client.");
        return NULL;
    }
    if (!az_table_name_valid(table)) {
        *st = bad_table_name();
        return NULL;
    }
    az_table *t = calloc(1, sizeof *t);
    if (!t) {
        *st = oom();
        return NULL;
    }
    t->base.ops = &az_table_ops;
    t->c = c;
    snprintf(t->name, sizeof t->name, "%s", table);
    return &t->base;
}

mt_table *az_table_open(const az_connstr *cs, const char *table, const az_client_opts *opts,
                        mt_status *st)
{
    if (!table && cs)
        table = cs->table;
    if (!az_table_name_valid(table)) {
        *st = table ? bad_table_name()
                    : mt_error(400, MT_ERR_INVALID_INPUT,
                               "No table: give one, or TableName in the connection string.");
        return NULL;
    }
    az_client *c = az_client_new(cs, opts, st);
    if (!c)
        return NULL;
    mt_table *t = az_client_table(c, table, st);
    if (!t) {
        az_client_free(c);
        return NULL;
    }
    as_az(t)->owns_client = true;
    return t;
}

az_client *az_table_client(mt_table *t)
{
    return t && t->ops == &az_table_ops ? as_az(t)->c : NULL;
}

/* ------------------------------------------------------------------------ */
/* Table-level operations.                                                   */

mt_status az_client_table_create(az_client *c, const char *table, bool *created)
{
    if (created)
        *created = false;
    if (!az_table_name_valid(table))
        return bad_table_name();
    char body[128];
    snprintf(body, sizeof body, "{\"TableName\":\"%s\"}", table);
    /* Replaying is safe here: "exists afterwards" is the whole promise,
     * and a 409 after a replay means just that. */
    az_req q = {.method = "POST",
                .path = "/Tables",
                .content_type = AZ_JSON,
                .body = body,
                .len = strlen(body),
                .no_content = true,
                .replay = AZ_REPLAY_ANY};
    az_resp r = {0};
    mt_status st = az_call(c, &q, &r);
    if (mt_is_ok(&st) && r.status >= 200 && r.status < 300) {
        if (created)
            *created = true;
    } else if (mt_is_ok(&st)) {
        st = error_of_resp(&r);
        if (st.http == 409 && strcmp(st.code, AZ_ERR_TABLE_EXISTS) == 0)
            st = mt_ok();
    }
    resp_clear(&r);
    return st;
}

mt_status az_client_table_delete(az_client *c, const char *table)
{
    if (!az_table_name_valid(table))
        return bad_table_name();
    char path[96];
    snprintf(path, sizeof path, "/Tables('%s')", table);
    az_req q = {.method = "DELETE", .path = path, .replay = AZ_REPLAY_NONE};
    az_resp r = {0};
    mt_status st = az_call(c, &q, &r);
    if (mt_is_ok(&st) && (r.status < 200 || r.status >= 300))
        st = error_of_resp(&r);
    resp_clear(&r);
    return st;
}

typedef struct names_ctx {
    char **v;
    size_t n, cap;
} names_ctx;

static mt_status table_name_of(void *ctx, const char *s, size_t n)
{
    names_ctx *nc = ctx;
    cJSON *o = cJSON_ParseWithLength(s, n);
    const cJSON *tn = cJSON_GetObjectItemCaseSensitive(o, "TableName");
    mt_status st = cJSON_IsString(tn) ? mt_ok() : bad_reply("a table without TableName");
    if (mt_is_ok(&st) && nc->n == nc->cap) {
        size_t cap = nc->cap ? nc->cap * 2 : 16;
        char **v = realloc(nc->v, cap * sizeof *v);
        if (v)
            nc->v = v, nc->cap = cap;
        else
            st = oom();
    }
    if (mt_is_ok(&st) && !(nc->v[nc->n] = strdup(tn->valuestring)))
        st = oom();
    if (mt_is_ok(&st))
        nc->n++;
    cJSON_Delete(o);
    return st;
}

mt_status az_client_tables_list(az_client *c, char ***names, size_t *n)
{
    names_ctx nc = {0};
    char *next = NULL;
    mt_status st = mt_ok();
    *names = NULL;
    *n = 0;
    do {
        char *enc = next ? az_url_encode(next) : NULL;
        az_sb qs = {0};
        if (enc)
            sb_puts(&qs, "NextTableName="), sb_puts(&qs, enc);
        char *query = sb_take(&qs);
        free(enc);
        free(next);
        next = NULL;
        if (!query) {
            st = oom();
            break;
        }
        az_req q = {.method = "GET", .path = "/Tables", .query = query, .replay = AZ_REPLAY_ANY};
        az_resp r = {0};
        st = az_call(c, &q, &r);
        if (mt_is_ok(&st) && r.status != 200)
            st = error_of_resp(&r);
        if (mt_is_ok(&st))
            st = feed_each(r.body.p ? r.body.p : "", r.body.n, table_name_of, &nc);
        if (mt_is_ok(&st))
            next = r.next_table, r.next_table = NULL;
        resp_clear(&r);
        free(query);
    } while (mt_is_ok(&st) && next);
    free(next);
    if (!mt_is_ok(&st)) {
        az_client_tables_free(nc.v, nc.n);
        return st;
    }
    *names = nc.v;
    *n = nc.n;
    return st;
}

void az_client_tables_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

/*
 * px_server.c -- starting and stopping the two listeners, and the life of
 * a table request: the account segment, the resource, format negotiation,
 * authentication, dispatch to a handler, common headers. What both
 * listeners share on libmicrohttpd (bodies, raw URLs, sending) is in
 * px_http.c; what handlers answer with, in px_reply.c.
 *
 * Threads: the core is blocking (a backend round trip, a lease, a key set
 * fetched for a token), so the table listener runs one thread per
 * connection, bounded by the connection cap (--max-connections). Where no
 * handler can block on anything but CPU (both backends embedded, this
 * process its own authority, no remote key set) it runs a small pool of
 * epoll threads instead, four per core: a thread per connection spends a
 * third of a point read's time waking up in select, and a pool thread
 * serves every ready connection in turn. The pool is not used with any
 * Azure backend: one slow backend call would stall every connection its
 * thread serves. (Suspending the connection and running the request on a
 * worker thread instead keeps the pool's threads free, but the hand-off
 * and the resume are two more wake-ups per request: over Azurite that
 * cost more CPU per request than the thread per connection.)
 *
 * Stopping (SIGTERM), the app drains first (new requests get 503), then
 * the requests being handled finish before the listener closes their
 * connections.
 */
#include "px.h"
#include "px_entra.h"
#include "px_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct px_servers {
    px_app *app;
    struct MHD_Daemon *table;
    bool counted;       /* a thread per connection: count in_flight */
    unsigned in_flight; /* table requests being handled (atomic) */
    px_admin_http *admin;
    char *tls_cert; /* PEM, kept while the table daemon runs */
    char *tls_key;
    px_entra *entra;
};

/* ------------------------------------------------------------------------ */
/* Requests.                                                                 */

static const char *header_cb(void *ctx, const char *name)
{
    return px_req_header(ctx, name);
}

/* 128 random bits per request id from a per-thread xorshift128+ seeded
 * once from OpenSSL's generator: an id only needs to be unique, and a
 * RAND_bytes call per request cost more than the rest of the id. */
static void request_id_bytes(uint8_t b[16])
{
    static _Thread_local uint64_t s[2];
    if (!s[0] && !s[1]) {
        if (RAND_bytes((unsigned char *)s, sizeof s) != 1 || (!s[0] && !s[1])) {
            s[0] = (uint64_t)(uintptr_t)s ^ 0x9E3779B97F4A7C15ULL;
            s[1] = (uint64_t)time(NULL) | 1;
        }
    }
    for (int i = 0; i < 2; i++) {
        uint64_t x = s[0], y = s[1];
        s[0] = y;
        x ^= x << 23;
        s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
        uint64_t v = s[1] + y;
        memcpy(b + 8 * i, &v, 8);
    }
}

static void new_request_id(char out[40])
{
    uint8_t b[16];
    request_id_bytes(b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    mt_guid_format(b, out); /* a GUID's text, without a format string */
}

/* Splits "/account/rest" into the account and "/rest". */
static bool split_account(const char *url, char *account, size_t cap, const char **rest)
{
    if (url[0] != '/')
        return false;
    const char *end = strchr(url + 1, '/');
    size_t n = end ? (size_t)(end - url - 1) : strlen(url + 1);
    if (n == 0 || n >= cap)
        return false;
    memcpy(account, url + 1, n);
    account[n] = '\0';
    *rest = end ? end : "/";
    return true;
}

/* A cross-origin request (one with Origin) gets the Access-Control headers
 * of the first CORS rule allowing its origin and method, exposing the
 * response headers that rule names; with rules but none matching, only
 * Vary: Origin; without rules, nothing (the browser then refuses it). */
static void cors_headers(const px_req *q, px_resp *r)
{
    const char *origin = px_req_header(q, "Origin");
    if (!origin)
        return;
    px_app *app = q->app;
    pthread_mutex_lock(&app->mu);
    const az_cors_rule *rule = az_cors_match(&app->cors, origin, q->method, NULL, false);
    bool any = app->cors.n > 0;
    bool star = rule && strcmp(rule->origins, "*") == 0;
    char *expose = NULL;
    if (rule) {
        const char *names[PX_MAX_HEADERS];
        for (size_t i = 0; i < r->nheaders; i++)
            names[i] = r->headers[i].name;
        expose = az_cors_expose(rule, names, r->nheaders);
    }
    pthread_mutex_unlock(&app->mu);
    if (rule) {
        px_resp_header(r, "Access-Control-Expose-Headers", expose);
        px_resp_header(r, "Access-Control-Allow-Origin", star ? "*" : origin);
        if (!star)
            px_resp_header(r, "Access-Control-Allow-Credentials", "true");
    }
    if (any && !star)
        px_resp_header(r, "Vary", "Origin");
    free(expose);
}

static void common_headers(const px_req *q, px_resp *r)
{
    char date[32];
    az_rfc1123_format(time(NULL), date);
    px_resp_header(r, "x-ms-request-id", q->request_id);
    const char *client_id = px_req_header(q, "x-ms-client-request-id");
    if (client_id && strlen(client_id) <= 1024)
        px_resp_header(r, "x-ms-client-request-id", client_id);
    px_resp_header(r, "x-ms-version", q->version);
    px_resp_header(r, "Date", date);
    px_resp_header(r, "Cache-Control", "no-cache");
    px_resp_header(r, "X-Content-Type-Options", "nosniff");
    if (q->fmt == AZ_FMT_JSON)
        px_resp_header(r, "DataServiceVersion", "3.0;");
    if (strcmp(q->method, "OPTIONS") != 0)
        cors_headers(q, r);
}

/* CORS preflight: answered without authentication, as the service does,
 * from the CORS rules of the service properties: 200 with the first
 * matching rule's answer, 403 CorsPreflightFailure when none allows the
 * origin, method and headers asked for (or there are no rules). */
static void handle_preflight(px_req *q, px_resp *r)
{
    const char *origin = px_req_header(q, "Origin");
    const char *method = px_req_header(q, "Access-Control-Request-Method");
    const char *hdrs = px_req_header(q, "Access-Control-Request-Headers");
    if (!origin || !method) {
        mt_status st =
            mt_error(400, "InvalidHeaderValue", "A required CORS header is not present.");
        px_resp_error(q, r, &st);
        return;
    }
    px_app *app = q->app;
    char age[24] = "";
    pthread_mutex_lock(&app->mu);
    const az_cors_rule *rule = az_cors_match(&app->cors, origin, method, hdrs, true);
    if (rule)
        snprintf(age, sizeof age, "%lld", (long long)rule->max_age);
    pthread_mutex_unlock(&app->mu);
    if (!rule) {
        mt_status st = mt_error(403, "CorsPreflightFailure",
                                "CORS not enabled or no matching rule found for this request.");
        px_resp_error(q, r, &st);
        return;
    }
    r->status = 200;
    px_resp_header(r, "Access-Control-Allow-Origin", origin);
    px_resp_header(r, "Access-Control-Allow-Methods", method);
    if (hdrs)
        px_resp_header(r, "Access-Control-Allow-Headers", hdrs);
    px_resp_header(r, "Access-Control-Max-Age", age);
    px_resp_header(r, "Access-Control-Allow-Credentials", "true");
}

static bool acl_lookup(void *ctx, const char *table, const char *id, az_signed_identifier *out)
{
    px_app *app = ctx;
    mt_status st;
    px_table *t = px_table_get(app->reg, table, &st);
    if (!t)
        return false;
    az_acl acl = px_table_acl(app->reg, t);
    px_table_release(app->reg, t);
    for (size_t i = 0; i < acl.n; i++)
        if (strcmp(acl.ids[i].id, id) == 0) {
            *out = acl.ids[i];
            return true;
        }
    return false;
}

static void dispatch(px_req *q, px_resp *r)
{
    switch (q->res.kind) {
    case AZ_RES_TABLES:
    case AZ_RES_TABLE:
        px_handle_tables(q, r);
        break;
    case AZ_RES_TABLE_ACL:
        px_handle_table_acl(q, r);
        break;
    case AZ_RES_SERVICE:
        px_handle_service(q, r);
        break;
    case AZ_RES_ENTITIES:
    case AZ_RES_ENTITY:
        px_handle_entities(q, r);
        break;
    case AZ_RES_BATCH:
        px_handle_batch(q, r);
        break;
    default: {
        mt_status st = mt_error(400, "InvalidUri",
                                "The requested URI does not represent any "
                                "resource on the server.");
        px_resp_error(q, r, &st);
    }
    }
}

/* The operation a request names, for metrics. */
static const char *op_label(const px_req *q)
{
    const char *m = q->method;
    const char *x = strcmp(m, "POST") == 0 ? px_req_header(q, "X-HTTP-Method") : NULL;
    if (x)
        m = x;
    /* Headers are looked up only where they tell operations apart. */
    bool conditional =
        (strcmp(m, "PUT") == 0 || strcmp(m, "MERGE") == 0) && px_req_header(q, "If-Match") != NULL;
    switch (q->res.kind) {
    case AZ_RES_TABLES:
        return strcmp(m, "POST") == 0 ? "create_table" : "query_tables";
    case AZ_RES_TABLE:
        return strcmp(m, "DELETE") == 0 ? "delete_table" : "query_tables";
    case AZ_RES_TABLE_ACL:
        return "table_acl";
    case AZ_RES_SERVICE:
        return "service";
    case AZ_RES_ENTITIES:
        return strcmp(m, "POST") == 0 ? "insert" : "query_entities";
    case AZ_RES_ENTITY:
        if (strcmp(m, "GET") == 0)
            return "get_entity";
        if (strcmp(m, "DELETE") == 0)
            return "delete";
        if (strcmp(m, "PUT") == 0)
            return conditional ? "update" : "upsert_replace";
        if (strcmp(m, "MERGE") == 0)
            return conditional ? "merge" : "upsert_merge";
        return "other";
    case AZ_RES_BATCH:
        return "batch";
    default:
        return "other";
    }
}

/* x-ms-version: a date no later than the newest version this proxy speaks
 * (the service refuses versions it does not know). */
static bool version_ok(const char *v)
{
    static const char newest[] = "2025-11-05";
    if (strlen(v) != 10 || v[4] != '-' || v[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (v[i] < '0' || v[i] > '9'))
            return false;
    return strcmp(v, newest) <= 0 && strcmp(v, "2009-09-19") >= 0;
}

/* The request's one line: at warn with its reason for a 5xx (each 5xx is
 * logged exactly once, here), at debug otherwise. A batch answers 202 with
 * its failed operation's status inside, which is what the client's SDK
 * reports: that status is the line's. */
static void log_request(const px_req *q, const char *url, const char *op, const px_resp *r,
                        uint64_t took_ns)
{
    const char *backend, *reason, *code;
    int answered = px_log_request_failure(&backend, &reason, &code);
    bool batch_failed = q->res.kind == AZ_RES_BATCH && r->status == 202 && answered >= 400;
    int status = batch_failed ? answered : r->status;
    int level = status >= 500 ? PX_LOG_WARN : PX_LOG_DEBUG;
    if (!px_log_enabled(level))
        return;
    px_log_fields f = {.op = op,
                       .table = q->res.table,
                       .status = status,
                       .error_code = status >= 400 ? code : NULL,
                       .phase = mt_phase_name(px_app_phase(q->app)),
                       .backend = backend,
                       .reason = status >= 500 ? reason : NULL,
                       .duration_ms = (double)took_ns / 1e6,
                       .timed = true};
    if (f.status >= 500 && !f.reason)
        f.reason = "no cause recorded";
    if (batch_failed)
        px_log_with(level, &f, "%s %s -> %d, an operation failed with %d", q->method, url,
                    r->status, status);
    else
        px_log_with(level, &f, "%s %s -> %d", q->method, url, r->status);
}

/* "http[s]://host/account" into q->base_url (host under 128 bytes, else
 * 127.0.0.1; account under 64), without a format string. */
static void base_url(px_req *q, bool https, const char *host, const char *account)
{
    if (!host || strlen(host) >= 128)
        host = "127.0.0.1";
    const char *parts[] = {https ? "https://" : "http://", host, "/", account};
    size_t at = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        size_t n = strlen(parts[i]);
        memcpy(q->base_url + at, parts[i], n);
        at += n;
    }
    q->base_url[at] = '\0';
}

/* A client's IPv4 address as text, without inet_ntop's format string. */
static void ipv4_text(const struct in_addr *a, char out[16])
{
    const uint8_t *b = (const uint8_t *)&a->s_addr;
    char *o = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *o++ = (char)('0' + v / 100);
        if (v >= 10)
            *o++ = (char)('0' + v / 10 % 10);
        *o++ = (char)('0' + v % 10);
        *o++ = i < 3 ? '.' : '\0';
    }
}

/* Everything between the parsed HTTP request and the response. */
static void handle_table_request(px_app *app, struct MHD_Connection *c, const char *url,
                                 const char *method, const px_upload *up, px_resp *r)
{
    uint64_t t0 = px_now_ns();
    px_req q = {.app = app, .conn = c, .method = method, .fmt = AZ_FMT_JSON, .md = AZ_META_MINIMAL};
    new_request_id(q.request_id);
    px_log_request_begin(q.request_id, px_req_header(&q, "x-ms-client-request-id"));
    const char *v = px_req_header(&q, "x-ms-version");
    if (!v || strlen(v) >= sizeof q.version)
        v = PX_DEFAULT_VERSION;
    memcpy(q.version, v, strlen(v) + 1);
    char *query = NULL;
    bool oom = !px_http_raw_query(c, &query) || up->oom;
    q.query = query;
    char *fmt_param = query ? az_query_get(query, "$format") : NULL;
    az_format_negotiate(px_req_header(&q, "Accept"), fmt_param, &q.fmt, &q.md);
    free(fmt_param);
    q.body = up->buf ? up->buf : "";
    q.len = up->len;

    char account[64];
    const char *rest = NULL;
    mt_status st = mt_ok();
    if (oom)
        st = mt_oom();
    else if (!version_ok(q.version))
        st = mt_error(400, "InvalidHeaderValue",
                      "The value for one of the HTTP headers is not in the correct format.");
    else if (!split_account(url, account, sizeof account, &rest) ||
             strcmp(account, app->settings.account) != 0)
        st = mt_error(400, "InvalidUri", "The account in the URL is not served here.");
    else if (up->too_large)
        st = mt_error(413, "RequestBodyTooLarge",
                      "The request body is too large and exceeds the maximum permissible limit.");
    if (mt_is_ok(&st)) {
        q.path = rest;
        base_url(&q, app->settings.tls_cert[0] != '\0', px_req_header(&q, "Host"), account);
    }
    /* Preflights are anonymous and may name any path, the root included. */
    bool preflight = mt_is_ok(&st) && strcmp(method, "OPTIONS") == 0;
    if (mt_is_ok(&st) && !preflight)
        st = az_resource_parse(rest, query, &q.res);
    if (preflight) {
        handle_preflight(&q, r);
    } else if (mt_is_ok(&st)) {
        az_http_request hr = {.method = method,
                              .path = url,
                              .query = query,
                              .header = header_cb,
                              .ctx = &q,
                              .now = time(NULL)};
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        char ip[64] = "";
        if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
            ipv4_text(&((const struct sockaddr_in *)ci->client_addr)->sin_addr, ip);
        hr.client_ip = ip;
        az_account acct = {.name = app->settings.account,
                           .key = app->settings.key,
                           .key_len = app->settings.key_len};
        const char *authz = px_req_header(&q, "Authorization");
        if (authz && strncasecmp(authz, "Bearer ", 7) == 0)
            st = px_entra_check(app->entra, authz + 7, app->settings.tls_cert[0] != '\0', &q.grant);
        else
            st = az_auth_check(&acct, &hr, acl_lookup, app, &q.grant);
        if (mt_is_ok(&st) && !px_app_serving(app))
            st = mt_error(503, MT_ERR_SERVER_BUSY,
                          "The server is currently unable to receive requests: this proxy %s. "
                          "Please retry.",
                          app->draining ? "is shutting down"
                                        : "holds no lease from its configuration authority");
        if (mt_is_ok(&st))
            dispatch(&q, r);
    }
    if (!mt_is_ok(&st))
        px_resp_error(&q, r, &st);
    common_headers(&q, r);
    const char *op = preflight ? "preflight" : op_label(&q);
    uint64_t took = px_now_ns() - t0;
    log_request(&q, url, op, r, took);
    px_metrics_request(app->metrics, op, r->status, px_app_phase(app), took);
    px_log_request_end();
    az_resource_clear(&q.res);
    free(query);
}

/* Before the listener stops, the requests being handled finish (a backend
 * call ends within its timeout), for at most DRAIN_MS; stopping the
 * daemon would close their connections unanswered. New requests meet 503
 * ServerBusy meanwhile (the app is draining). A count and a poll rather
 * than a lock: the count is on every request's path. Only with a thread
 * per connection: the event pool's handlers never block, and stopping
 * its threads lets each finish the call it is in. */
#define DRAIN_MS 60000
static void wait_in_flight(px_servers *s)
{
    for (int ms = 0; ms < DRAIN_MS && __atomic_load_n(&s->in_flight, __ATOMIC_ACQUIRE); ms += 10)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
}

static enum MHD_Result on_table_request(void *cls, struct MHD_Connection *c, const char *url,
                                        const char *method, const char *version, const char *data,
                                        size_t *size, void **con_cls)
{
    (void)version;
    px_servers *s = cls;
    px_upload *up = NULL;
    if (!px_http_upload_step(con_cls, data, size, &up))
        return MHD_YES;
    px_resp r = {.oom = !up};
    if (up) {
        if (s->counted)
            __atomic_add_fetch(&s->in_flight, 1, __ATOMIC_ACQ_REL);
        handle_table_request(s->app, c, url, method, up, &r);
        if (s->counted)
            __atomic_sub_fetch(&s->in_flight, 1, __ATOMIC_ACQ_REL);
    }
    return px_http_send(c, &r);
}

/* Whether no table request can wait on anything but CPU and the core's
 * locks: no Azure backend, no remote authority, no key set to fetch. */
static bool px_serve_never_blocks(const px_app *app)
{
    const px_settings *cf = &app->settings;
    return !app->old_client && !app->new_client && !cf->config_endpoint[0] &&
           strncasecmp(cf->jwks, "http", 4) != 0;
}

/* Event threads for a listener whose handlers never block: four per core,
 * at most 32; 0 for a thread per connection. More threads than cores cost
 * nothing measurable when the machine is idle, and on a busy one a thread
 * that is not scheduled holds up only its share of the connections (with
 * one per core, some rounds on a machine loaded by other processes lost a
 * third of the point reads' rate or more). */
static unsigned px_serve_pool_size(const px_app *app)
{
    if (!px_serve_never_blocks(app))
        return 0;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 4 : n > 8 ? 32 : 4 * (unsigned)n;
}

/* The table listener: a thread per connection, or pool event threads
 * (see the top of the file); https with cert and key (PEM text, NULL for
 * http). */
static struct MHD_Daemon *start_one(const char *host, int port, int max_conn, unsigned pool,
                                    const char *cert, const char *key,
                                    MHD_AccessHandlerCallback handler, void *cls, FILE *err)
{
    struct sockaddr_in sa;
    if (!px_http_addr(host, port, &sa, err))
        return NULL;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    flags |= pool ? MHD_USE_EPOLL : MHD_USE_THREAD_PER_CONNECTION;
    struct MHD_OptionItem tls[] = {
        {cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key},
        {MHD_OPTION_END, 0, NULL},
    };
    if (cert)
        flags |= MHD_USE_TLS;
    if (pool > (unsigned)max_conn)
        pool = (unsigned)max_conn; /* libmicrohttpd splits the cap among them */
    struct MHD_OptionItem threads[] = {
        {pool ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, pool, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, handler, cls, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_ARRAY, threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_conn,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_NOTIFY_COMPLETED,
        px_http_completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK, px_http_keep_raw, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, px_http_log, NULL, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!d && cert)
        fprintf(err,
                "mtable-proxy: cannot serve https on %s:%d: the port is in use or not "
                "permitted, or --tls-cert / --tls-key are not a matching PEM certificate and "
                "key\n",
                host, port);
    else if (!d)
        px_http_bind_failed(host, port, err);
    return d;
}

/* A whole PEM file as a string; NULL with one line on err. */
static char *read_pem(const char *path, const char *flag, FILE *err)
{
    FILE *f = fopen(path, "rb");
    mt_buf b = {0};
    char chunk[4096];
    size_t n;
    while (f && (n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < (1u << 20))
        mt_buf_put(&b, chunk, n);
    if (f)
        fclose(f);
    char *s = f ? mt_buf_take(&b, NULL) : NULL;
    if (!f)
        free(b.p);
    if (!s || !strstr(s, "-----BEGIN ")) {
        fprintf(err, "mtable-proxy: cannot read %s %s as PEM\n", flag, path);
        free(s);
        return NULL;
    }
    return s;
}

/* The https settings of the table endpoint: certificate, key, and the
 * bearer token check. */
static bool tls_setup(px_servers *s, px_app *app, FILE *err)
{
    const px_settings *cf = &app->settings;
    if (!cf->tls_cert[0])
        return true;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        fprintf(err, "mtable-proxy: this libmicrohttpd has no TLS: --tls-cert cannot be used\n");
        return false;
    }
    if (!(s->tls_cert = read_pem(cf->tls_cert, "--tls-cert", err)) ||
        !(s->tls_key = read_pem(cf->tls_key, "--tls-key", err)))
        return false;
    if (cf->jwks[0] && !(s->entra = px_entra_new(cf->jwks, cf->token_issuer, cf->token_roles,
                                                 cf->account, cf->backend_ca, err)))
        return false;
    app->entra = s->entra;
    return true;
}

px_servers *px_serve_start(px_app *app, FILE *err)
{
    px_servers *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(err, "mtable-proxy: out of memory starting the listeners\n");
        return NULL;
    }
    s->app = app;
    s->counted = px_serve_pool_size(app) == 0;
    const px_settings *cf = &app->settings;
    if (tls_setup(s, app, err))
        s->table =
            start_one(cf->listen_host, cf->listen_port, cf->max_connections,
                      px_serve_pool_size(app), s->tls_cert, s->tls_key, on_table_request, s, err);
    if (s->table)
        s->admin = px_admin_http_start(app, err);
    if (!s->table || !s->admin) {
        px_serve_stop(s);
        return NULL;
    }
    return s;
}

void px_serve_stop(px_servers *s)
{
    if (!s)
        return;
    if (s->table) {
        wait_in_flight(s);
        MHD_stop_daemon(s->table);
    }
    px_admin_http_stop(s->admin);
    px_entra_free(s->entra);
    if (s->tls_key)
        explicit_bzero(s->tls_key, strlen(s->tls_key));
    free(s->tls_cert);
    free(s->tls_key);
    free(s);
}

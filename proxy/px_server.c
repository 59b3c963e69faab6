/*
 * px_server.c -- the two HTTP listeners on libmicrohttpd, and the life of a
 * table request: body accumulation within limits, the account segment, the
 * resource, format negotiation, authentication, dispatch, common headers.
 *
 * libmicrohttpd normally unescapes the URL before we see it; a Shared Key
 * signature covers the path as the client sent it, so an identity unescape
 * callback keeps paths and query arguments raw and the wire library decodes
 * them itself.
 *
 * One thread per connection: the core is blocking, and a connection cap
 * (--max-connections) bounds the threads.
 */
#include "px.h"
#include "px_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct px_servers {
    struct MHD_Daemon *table;
    px_admin_http *admin;
};


/* ------------------------------------------------------------------------ */
/* Responses.                                                                */

void px_resp_header(px_resp *r, const char *name, const char *value)
{
    if (r->nheaders == PX_MAX_HEADERS || !value)
        return;
    r->headers[r->nheaders].name = strdup(name);
    r->headers[r->nheaders].value = strdup(value);
    r->nheaders++;
}

void px_resp_clear(px_resp *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->body);
    memset(r, 0, sizeof *r);
}

static const char *content_type_of(const px_req *q, bool entry)
{
    if (q->fmt == AZ_FMT_ATOM)
        return entry ? "application/atom+xml;type=entry;charset=utf-8"
                     : "application/atom+xml;type=feed;charset=utf-8";
    switch (q->md) {
    case AZ_META_NONE:
        return "application/json;odata=nometadata;streaming=true;charset=utf-8";
    case AZ_META_FULL:
        return "application/json;odata=fullmetadata;streaming=true;charset=utf-8";
    default:
        return "application/json;odata=minimalmetadata;streaming=true;charset=utf-8";
    }
}

void px_resp_payload(const px_req *q, px_resp *r, int status, char *body, size_t len)
{
    r->status = status;
    free(r->body);
    r->body = body;
    r->len = len;
    /* A single entity or table is an Atom entry; everything else a feed. */
    bool entry = q->res.kind == AZ_RES_ENTITY || q->res.kind == AZ_RES_TABLE ||
                 (q->res.kind == AZ_RES_ENTITIES && strcmp(q->method, "POST") == 0) ||
                 (q->res.kind == AZ_RES_TABLES && strcmp(q->method, "POST") == 0);
    px_resp_header(r, "Content-Type", content_type_of(q, entry));
}

void px_resp_error(const px_req *q, px_resp *r, const mt_status *st)
{
    size_t len = 0;
    char msg[MT_MSG_MAX + 128], now[MT_DATETIME_MAX];
    mt_datetime_format(mt_rt_pthread()->ops->now_ticks(mt_rt_pthread()), now);
    snprintf(msg, sizeof msg, "%s\nRequestId:%s\nTime:%s", st->message[0] ? st->message : st->code,
             q->request_id, now);
    char *body = az_error_write(q->fmt, st->code[0] ? st->code : MT_ERR_INTERNAL, msg, &len);
    r->status = st->http ? st->http : 500;
    free(r->body);
    r->body = body;
    r->len = body ? len : 0;
    px_resp_header(r, "Content-Type", q->fmt == AZ_FMT_ATOM ? "application/xml;charset=utf-8"
                                                            : content_type_of(q, false));
    px_resp_header(r, "x-ms-error-code", st->code);
}

/* ------------------------------------------------------------------------ */
/* Continuation tokens: "1!" + base64url of the key, safe in a header.      */

char *px_token_encode(const char *s)
{
    char *b = az_base64_encode((const uint8_t *)s, strlen(s));
    if (!b)
        return NULL;
    size_t n = strlen(b);
    char *out = malloc(n + 3);
    memcpy(out, "1!", 2);
    size_t j = 2;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '=')
            break;
        out[j++] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : b[i];
    }
    out[j] = '\0';
    free(b);
    return out;
}

char *px_token_decode(const char *tok)
{
    if (!tok || strncmp(tok, "1!", 2) != 0)
        return NULL;
    size_t n = strlen(tok + 2);
    if (n > 8192)
        return NULL;
    char *b = malloc(n + 4);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = tok[2 + i];
        b[j++] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    while (j % 4)
        b[j++] = '=';
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    bool ok = az_base64_decode(b, j, &raw, &rawlen);
    free(b);
    if (!ok || memchr(raw, '\0', rawlen)) {
        free(raw);
        return NULL;
    }
    char *s = malloc(rawlen + 1);
    memcpy(s, raw, rawlen);
    s[rawlen] = '\0';
    free(raw);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Requests.                                                                 */

const char *px_req_header(const px_req *q, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)q->conn, MHD_HEADER_KIND, name);
}

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
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

/* Rebuilds the raw query string from libmicrohttpd's (unescaped-as-raw)
 * arguments, in order. */
static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    mt_buf *b = cls;
    if (b->len)
        mt_buf_puts(b, "&");
    mt_buf_puts(b, key);
    if (value) {
        mt_buf_puts(b, "=");
        mt_buf_puts(b, value);
    }
    return MHD_YES;
}

/* NULL when the request has no arguments (or memory ran out). */
char *px_http_raw_query(struct MHD_Connection *c)
{
    mt_buf b = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &b);
    return b.p ? mt_buf_take(&b, NULL) : NULL;
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
        mt_status st = mt_error(400, "InvalidUri", "The requested URI does not represent any "
                                                   "resource on the server.");
        px_resp_error(q, r, &st);
    }
    }
}

/* The operation a request names, for metrics. */
static const char *op_label(const px_req *q)
{
    const char *m = q->method;
    const char *x = px_req_header(q, "X-HTTP-Method");
    if (x && strcmp(m, "POST") == 0)
        m = x;
    bool conditional = px_req_header(q, "If-Match") != NULL;
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

/* Everything between the parsed HTTP request and the response. */
static void handle_table_request(px_app *app, struct MHD_Connection *c, const char *url,
                                 const char *method, const px_upload *up, px_resp *r)
{
    uint64_t t0 = px_metrics_now_ns();
    px_req q = {.app = app, .conn = c, .method = method, .fmt = AZ_FMT_JSON,
                .md = AZ_META_MINIMAL};
    new_request_id(q.request_id);
    const char *v = px_req_header(&q, "x-ms-version");
    snprintf(q.version, sizeof q.version, "%s", v && strlen(v) < 32 ? v : PX_DEFAULT_VERSION);
    char *query = px_http_raw_query(c);
    q.query = query;
    char *fmt_param = query ? az_query_get(query, "$format") : NULL;
    az_format_negotiate(px_req_header(&q, "Accept"), fmt_param, &q.fmt, &q.md);
    free(fmt_param);
    q.body = up->buf ? up->buf : "";
    q.len = up->len;

    char account[64];
    const char *rest = NULL;
    mt_status st = mt_ok();
    if (!version_ok(q.version))
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
        const char *host = px_req_header(&q, "Host");
        snprintf(q.base_url, sizeof q.base_url, "http://%s/%s",
                 host && strlen(host) < 128 ? host : "127.0.0.1", account);
    }
    /* Preflights are anonymous and may name any path, the root included. */
    bool preflight = mt_is_ok(&st) && strcmp(method, "OPTIONS") == 0;
    if (mt_is_ok(&st) && !preflight)
        st = az_resource_parse(rest, query, &q.res);
    if (preflight) {
        handle_preflight(&q, r);
    } else if (mt_is_ok(&st)) {
        az_http_request hr = {.method = method, .path = url, .query = query,
                              .header = header_cb, .ctx = &q, .now = time(NULL)};
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        char ip[64] = "";
        if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, ip,
                      sizeof ip);
        hr.client_ip = ip;
        az_account acct = {.name = app->settings.account, .key = app->settings.key,
                           .key_len = app->settings.key_len};
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
    if (r->status >= 500)
        px_log(PX_LOG_WARN, "%s %s -> %d (request %s)", method, url, r->status, q.request_id);
    else
        px_log(PX_LOG_DEBUG, "%s %s -> %d (request %s)", method, url, r->status, q.request_id);
    px_metrics_request(app->metrics, preflight ? "preflight" : op_label(&q), r->status,
                       px_app_phase(app), px_metrics_now_ns() - t0);
    az_resource_clear(&q.res);
    free(query);
}

enum MHD_Result px_http_send(struct MHD_Connection *c, px_resp *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->len, r->body ? r->body : (void *)"",
                                        r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    r->body = NULL;
    for (size_t i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)(r->status ? r->status : 500), resp);
    MHD_destroy_response(resp);
    px_resp_clear(r);
    return ret;
}

bool px_http_upload_step(void **con_cls, const char *data, size_t *size, px_upload **out)
{
    px_upload *up = *con_cls;
    if (!up) {
        *con_cls = calloc(1, sizeof(px_upload));
        return false;
    }
    *out = up;
    if (*size == 0)
        return true;
    if (!up->too_large && up->len + *size > PX_MAX_BODY) {
        up->too_large = true;
        free(up->buf);
        up->buf = NULL;
        up->len = 0;
    }
    if (!up->too_large) {
        if (up->len + *size + 1 > up->cap) {
            up->cap = (up->len + *size + 1) * 2;
            up->buf = realloc(up->buf, up->cap);
        }
        memcpy(up->buf + up->len, data, *size);
        up->len += *size;
        up->buf[up->len] = '\0';
    }
    *size = 0;
    return false;
}

static enum MHD_Result on_table_request(void *cls, struct MHD_Connection *c, const char *url,
                                        const char *method, const char *version,
                                        const char *data, size_t *size, void **con_cls)
{
    (void)version;
    px_upload *up = NULL;
    if (!px_http_upload_step(con_cls, data, size, &up))
        return MHD_YES;
    px_resp r = {0};
    handle_table_request(cls, c, url, method, up, &r);
    return px_http_send(c, &r);
}

void px_http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                       enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    px_upload *up = *con_cls;
    if (up) {
        free(up->buf);
        px_resp_clear(&up->resp);
        free(up);
    }
    *con_cls = NULL;
}

size_t px_http_keep_raw(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/* libmicrohttpd's own messages (a failed bind, say) go to the debug log:
 * start-up failures are reported once, in one line, by start_one. */
void px_http_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (!px_log_enabled(PX_LOG_DEBUG))
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    px_log(PX_LOG_DEBUG, "http server: %s", line);
}

bool px_http_addr(const char *host, int port, struct sockaddr_in *sa, FILE *err)
{
    *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        fprintf(err, "mtable-proxy: cannot listen on '%s:%d': not an IPv4 address\n", host,
                port);
        return false;
    }
    return true;
}

void px_http_bind_failed(const char *host, int port, FILE *err)
{
    fprintf(err,
            "mtable-proxy: cannot listen on %s:%d: the port is in use or not permitted "
            "(choose another with --listen / --admin-listen)\n",
            host, port);
}

static struct MHD_Daemon *start_one(const char *host, int port, int max_conn,
                                    MHD_AccessHandlerCallback handler, void *cls, FILE *err)
{
    struct sockaddr_in sa;
    if (!px_http_addr(host, port, &sa, err))
        return NULL;
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, handler, cls, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_conn, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_NOTIFY_COMPLETED, px_http_completed, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, px_http_keep_raw, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        px_http_log, NULL, MHD_OPTION_END);
    if (!d)
        px_http_bind_failed(host, port, err);
    return d;
}

px_servers *px_serve_start(px_app *app, FILE *err)
{
    px_servers *s = calloc(1, sizeof *s);
    const px_settings *cf = &app->settings;
    s->table = start_one(cf->listen_host, cf->listen_port, cf->max_connections,
                         on_table_request, app, err);
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
    if (s->table)
        MHD_stop_daemon(s->table);
    px_admin_http_stop(s->admin);
    free(s);
}

/*
 * test_px_alloc.c -- allocation failures on the request path: the proxy
 * answers 503 ServerBusy (an SDK retries it) or succeeds, and never
 * crashes, hangs or leaks.
 *
 * The program is linked with -Wl,--wrap for malloc, calloc, realloc,
 * strdup and strndup, so every allocation the proxy's own code makes (the
 * proxy, the core, the wire library; not those inside cJSON, libxml2,
 * OpenSSL or libmicrohttpd, which are shared libraries) goes through the
 * wrappers below. A test arms them to fail the Nth allocation after the
 * arming, sends one request to a proxy served in this process (memory
 * backends, a free loopback port), and checks the answer; it does so for
 * N = 1, 2, ... until a request runs through without reaching its Nth
 * allocation, so that every allocation of that request has failed once.
 * Each request kind is one test: entity writes and reads, queries, $batch,
 * tables. Under ASan (the sanitized build runs the unit suite) a leak on
 * any of those failure paths fails the program at exit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "px.h"

/* ------------------------------------------------------------------------ */
/* The failing allocator.                                                    */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

static long fail_at; /* 0: never fail */
static long counted; /* allocations since arming */

static int should_fail(void)
{
    long at = __atomic_load_n(&fail_at, __ATOMIC_ACQUIRE);
    return at > 0 && __atomic_add_fetch(&counted, 1, __ATOMIC_ACQ_REL) == at;
}

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return should_fail() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return should_fail() ? NULL : __real_strndup(s, n);
}

static void arm(long n)
{
    __atomic_store_n(&counted, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&fail_at, n, __ATOMIC_RELEASE);
}

/* Disarms; true when the armed allocation was reached (and failed). */
static int disarm(void)
{
    long at = __atomic_exchange_n(&fail_at, 0, __ATOMIC_ACQ_REL);
    return at > 0 && __atomic_load_n(&counted, __ATOMIC_ACQUIRE) >= at;
}

/* ------------------------------------------------------------------------ */
/* The proxy, and requests to it.                                            */

#define ACCOUNT "devstoreaccount1"
#define MAX_N 4000

static px_app *app;
static px_servers *srv;
static int port;
static CURL *curl;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int p = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        p = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return p;
}

static int group_setup(void **state)
{
    (void)state;
    char listen[64], admin[64];
    px_settings s;
    for (int attempt = 0; attempt < 5 && !srv; attempt++) {
        port = free_port();
        snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
        snprintf(admin, sizeof admin, "127.0.0.1:%d", free_port());
        char *argv[] = {"test_px_alloc", "--listen",    listen,  "--admin-listen",
                        admin,           "--log-level", "error", NULL};
        if (px_settings_load(&s, 7, argv, stdout, stderr) != 0)
            return -1;
        px_log_set_level(s.log_level);
        app = px_app_new(&s, stderr);
        if (!app)
            return -1;
        srv = px_serve_start(app, stderr);
        if (!srv) {
            px_app_free(app);
            app = NULL;
        }
    }
    curl = curl_easy_init();
    return srv && curl ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    curl_easy_cleanup(curl);
    px_app_drain(app);
    px_serve_stop(srv);
    px_app_release(app);
    px_app_free(app);
    return 0;
}

static int last_reached;    /* the last request reached its failing allocation */
static char last_body[512]; /* the start of the last answer's body */
static size_t last_body_len;

static size_t keep_body(char *p, size_t size, size_t n, void *ctx)
{
    (void)ctx;
    size_t k = size * n, room = sizeof last_body - 1 - last_body_len;
    memcpy(last_body + last_body_len, p, k < room ? k : room);
    last_body_len += k < room ? k : room;
    last_body[last_body_len] = '\0';
    return k;
}

/* One request: method, path after the account (percent-encoded as sent),
 * optional query, body and extra header lines. Signed with Shared Key Lite
 * over the path; the body is JSON unless content_type says otherwise. The
 * allocator is armed to fail the fail_n-th allocation (0: none) while the
 * request is in flight. Returns the HTTP status, or -1 when no answer
 * came. */
static long request_n(long fail_n, const char *method, const char *path, const char *query,
                      const char *body, const char *content_type, const char *extra)
{
    char date[32], sts[512], url[1024], hdr[512];
    az_rfc1123_format(time(NULL), date);
    snprintf(sts, sizeof sts, "%s\n/%s%s", date, ACCOUNT, path);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/%s%s%s%s", port, ACCOUNT, path, query ? "?" : "",
             query ? query : "");
    struct curl_slist *h = NULL;
    char *sig = az_sign(app->settings.key, app->settings.key_len, sts);
    assert_non_null(sig);
    snprintf(hdr, sizeof hdr, "Authorization: SharedKeyLite %s:%s", ACCOUNT, sig);
    free(sig);
    h = curl_slist_append(h, hdr);
    snprintf(hdr, sizeof hdr, "x-ms-date: %s", date);
    h = curl_slist_append(h, hdr);
    h = curl_slist_append(h, "x-ms-version: 2019-02-02");
    h = curl_slist_append(h, "DataServiceVersion: 3.0");
    h = curl_slist_append(h, "Accept: application/json;odata=minimalmetadata");
    snprintf(hdr, sizeof hdr, "Content-Type: %s", content_type ? content_type : "application/json");
    h = curl_slist_append(h, hdr);
    if (extra)
        h = curl_slist_append(h, extra);
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    last_body_len = 0;
    last_body[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_body);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }
    long status = -1;
    arm(fail_n);
    CURLcode rc = curl_easy_perform(curl);
    last_reached = disarm();
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    return status;
}

static long request(const char *method, const char *path, const char *query, const char *body,
                    const char *content_type, const char *extra)
{
    return request_n(0, method, path, query, body, content_type, extra);
}

typedef struct req_case {
    const char *method, *path, *query, *body, *content_type, *extra;
    long ok; /* the status of a success */
    /* Run after each try, allocations disarmed: puts the state back. */
    void (*reset)(void);
} req_case;

/* Sends c with the Nth allocation failing, for every N the request
 * reaches; each answer must be c->ok or 503. Then once more without
 * failures, which must succeed. */
static void sweep(const req_case *c)
{
    long n, failed503 = 0, wrong = 0;
    for (n = 1; n <= MAX_N; n++) {
        long st = request_n(n, c->method, c->path, c->query, c->body, c->content_type, c->extra);
        int reached = last_reached;
        /* A change set answers 202 with its failing operation's reply:
         * that too must be a 503, never a 4xx blaming the request. */
        if (st == 202 && strstr(last_body, "HTTP/1.1 4"))
            st = 400;
        if (st != c->ok && st != 503 && wrong++ < 20)
            print_message("%s %s with allocation %ld failing: %ld, want %ld or 503: %.200s\n",
                          c->method, c->path, n, st, c->ok, last_body);
        failed503 += st == 503;
        if (c->reset)
            c->reset();
        if (!reached)
            break;
    }
    if (wrong)
        fail_msg("%s %s: %ld wrong answers", c->method, c->path, wrong);
    if (n > MAX_N)
        fail_msg("%s %s: still allocating after %d allocations", c->method, c->path, MAX_N);
    print_message("%s %s: %ld allocations failed one at a time, %ld answered 503\n", c->method,
                  c->path, n - 1, failed503);
    assert_int_equal(request(c->method, c->path, c->query, c->body, c->content_type, c->extra),
                     c->ok);
    if (c->reset)
        c->reset();
}

/* ------------------------------------------------------------------------ */
/* The requests.                                                             */

#define ROW "(PartitionKey='p',RowKey='r')"
#define ROW_BODY "{\"s\":\"text\",\"n@odata.type\":\"Edm.Int64\",\"n\":\"5\",\"d\":1.5}"

static void put_row(void)
{
    assert_int_equal(request("PUT", "/alloc" ROW, NULL, ROW_BODY, NULL, NULL), 204);
}

static int setup_table(void **state)
{
    (void)state;
    long st = request("POST", "/Tables", NULL, "{\"TableName\":\"alloc\"}", NULL, NULL);
    if (st != 201 && st != 409)
        return -1;
    put_row();
    return 0;
}

static void test_upsert(void **state)
{
    (void)state;
    req_case c = {"PUT", "/alloc" ROW, NULL, ROW_BODY, NULL, NULL, 204, NULL};
    sweep(&c);
}

static void test_merge(void **state)
{
    (void)state;
    req_case c = {"MERGE", "/alloc" ROW, NULL, "{\"m\":true}", NULL, "If-Match: *", 204, NULL};
    sweep(&c);
}

static void test_get(void **state)
{
    (void)state;
    req_case c = {"GET", "/alloc" ROW, NULL, NULL, NULL, NULL, 200, NULL};
    sweep(&c);
}

static void test_query(void **state)
{
    (void)state;
    req_case c = {"GET", "/alloc()", "$filter=PartitionKey%20eq%20'p'%20and%20n%20gt%204L&$top=5",
                  NULL,  NULL,       NULL,
                  200,   NULL};
    sweep(&c);
}

static void test_delete(void **state)
{
    (void)state;
    req_case c = {"DELETE", "/alloc" ROW, NULL, NULL, NULL, "If-Match: *", 204, NULL};
    /* A delete that failed may or may not have applied: put the row back. */
    c.reset = put_row;
    sweep(&c);
}

static int inserted;
static char insert_body[128];

/* Each try inserts a new key, so that a success is not a conflict later. */
static void next_insert(void)
{
    snprintf(insert_body, sizeof insert_body, "{\"PartitionKey\":\"i\",\"RowKey\":\"r%d\",\"v\":1}",
             ++inserted);
}

static void test_insert(void **state)
{
    (void)state;
    next_insert();
    req_case c = {"POST", "/alloc",   NULL, insert_body, NULL, "Prefer: return-no-content",
                  204,    next_insert};
    sweep(&c);
}

static void test_batch(void **state)
{
    (void)state;
    static const char body[] =
        "--batch_b\r\n"
        "Content-Type: multipart/mixed; boundary=changeset_c\r\n\r\n"
        "--changeset_c\r\n"
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "PUT http://127.0.0.1/" ACCOUNT "/alloc(PartitionKey='b',RowKey='1') HTTP/1.1\r\n"
        "Content-Type: application/json\r\nAccept: application/json;odata=minimalmetadata\r\n"
        "\r\n{\"v\":1}\r\n"
        "--changeset_c\r\n"
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "MERGE http://127.0.0.1/" ACCOUNT "/alloc(PartitionKey='b',RowKey='2') HTTP/1.1\r\n"
        "Content-Type: application/json\r\nAccept: application/json;odata=minimalmetadata\r\n"
        "\r\n{\"v\":2}\r\n"
        "--changeset_c--\r\n"
        "--batch_b--\r\n";
    req_case c = {"POST", "/$batch", NULL, body, "multipart/mixed; boundary=batch_b",
                  NULL,   202,       NULL};
    sweep(&c);
}

static void test_query_tables(void **state)
{
    (void)state;
    req_case c = {"GET", "/Tables", NULL, NULL, NULL, NULL, 200, NULL};
    sweep(&c);
}

static int tables_made;
static char table_body[64];
static char table_path[64];

static void drop_table(void)
{
    request("DELETE", table_path, NULL, NULL, NULL, NULL);
    tables_made++;
    snprintf(table_body, sizeof table_body, "{\"TableName\":\"made%d\"}", tables_made);
    snprintf(table_path, sizeof table_path, "/Tables('made%d')", tables_made);
}

static void test_create_table(void **state)
{
    (void)state;
    drop_table();
    req_case c = {"POST", "/Tables", NULL, table_body, NULL, "Prefer: return-no-content",
                  204,    drop_table};
    sweep(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_upsert, setup_table),
        cmocka_unit_test_setup(test_merge, setup_table),
        cmocka_unit_test_setup(test_get, setup_table),
        cmocka_unit_test_setup(test_query, setup_table),
        cmocka_unit_test_setup(test_delete, setup_table),
        cmocka_unit_test_setup(test_insert, setup_table),
        cmocka_unit_test_setup(test_batch, setup_table),
        cmocka_unit_test_setup(test_query_tables, setup_table),
        cmocka_unit_test_setup(test_create_table, setup_table),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = cmocka_run_group_tests_name("allocation failures on the request path", tests,
                                             group_setup, group_teardown);
    curl_global_cleanup();
    return failed;
}

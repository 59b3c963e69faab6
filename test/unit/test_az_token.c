/*
 * test_az_token.c -- the backend client's Microsoft Entra ID tokens
 * (azure/client/az_token.c) against a scripted token endpoint in this process:
 * the request each credential sends, one fetch shared by many threads, a
 * refresh once half the lifetime has passed, a refused token replaced
 * once, a failed refresh that keeps
 * the current token and is logged without secrets, and no token at all
 * when the endpoint refuses.
 */
#define _GNU_SOURCE /* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "az_client_internal.h"

/* ------------------------------------------------------------------------ */
/* The token endpoint: answers each request with the next scripted status. */

typedef struct endpoint {
    int lfd, port;
    pthread_t th;
    volatile int stop;
    pthread_mutex_t mu;
    int requests;
    int fail_next;   /* answer this many requests with 500 */
    int lifetime;    /* expires_in of the tokens */
    char last[8192]; /* the last request, head and body */
} endpoint;

static void serve_one(endpoint *e, int fd)
{
    char buf[8192];
    size_t n = 0;
    for (;;) { /* read the head and a Content-Length body */
        ssize_t k = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        char *cl = strcasestr(buf, "Content-Length:");
        size_t want = cl && cl < end ? (size_t)atol(cl + 15) : 0;
        if (n >= (size_t)(end + 4 - buf) + want)
            break;
    }
    pthread_mutex_lock(&e->mu);
    int no = ++e->requests;
    bool fail = e->fail_next > 0;
    if (fail)
        e->fail_next--;
    int life = e->lifetime;
    snprintf(e->last, sizeof e->last, "%s", buf);
    pthread_mutex_unlock(&e->mu);
    char body[256], resp[512];
    int status = fail ? 500 : 200;
    if (fail)
        snprintf(body, sizeof body,
                 "{\"error\":\"temporarily_unavailable\",\"error_description\":\"try later\"}");
    else
        snprintf(body, sizeof body,
                 "{\"token_type\":\"Bearer\",\"access_token\":\"tok-%d\","
                 "\"expires_in\":%d}",
                 no, life);
    int len = snprintf(resp, sizeof resp,
                       "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: "
                       "%zu\r\nConnection: close\r\n\r\n%s",
                       status, strlen(body), body);
    (void)!write(fd, resp, (size_t)len);
}

static void *serve(void *arg)
{
    endpoint *e = arg;
    while (!e->stop) {
        struct pollfd p = {.fd = e->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(e->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_one(e, fd);
        close(fd);
    }
    return NULL;
}

static void endpoint_start(endpoint *e, int lifetime)
{
    memset(e, 0, sizeof *e);
    e->lifetime = lifetime;
    pthread_mutex_init(&e->mu, NULL);
    e->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(e->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(e->lfd, 64), 0);
    getsockname(e->lfd, (struct sockaddr *)&sa, &sl);
    e->port = ntohs(sa.sin_port);
    pthread_create(&e->th, NULL, serve, e);
}

static void endpoint_stop(endpoint *e)
{
    e->stop = 1;
    pthread_join(e->th, NULL);
    close(e->lfd);
    pthread_mutex_destroy(&e->mu);
}

static void fail_next(endpoint *e, int n)
{
    pthread_mutex_lock(&e->mu);
    e->fail_next = n;
    pthread_mutex_unlock(&e->mu);
}

static int requests(endpoint *e)
{
    pthread_mutex_lock(&e->mu);
    int n = e->requests;
    pthread_mutex_unlock(&e->mu);
    return n;
}

/* ------------------------------------------------------------------------ */
/* The log. */

static char logged[4096];
static int warnings;

static void on_log(bool warn, const char *msg)
{
    warnings += warn;
    snprintf(logged + strlen(logged), sizeof logged - strlen(logged), "%s\n", msg);
}

static az_token_src *client_secret_src(const endpoint *e, char *url, size_t cap)
{
    snprintf(url, cap, "http://127.0.0.1:%d/", e->port);
    az_cred c = {.kind = AZ_CRED_CLIENT_SECRET,
                 .tenant_id = "tenant-1",
                 .client_id = "app-1",
                 .client_secret = "s3cr3t-value",
                 .authority_host = url};
    mt_status st;
    az_token_src *t = az_token_src_new(&c, NULL, &st);
    assert_non_null(t);
    return t;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------------ */

static void test_client_secret_request(void **state)
{
    (void)state;
    endpoint e;
    endpoint_start(&e, 3600);
    char url[64];
    az_token_src *t = client_secret_src(&e, url, sizeof url);
    mt_status st;
    char *tok = az_token_get(t, &st, NULL);
    assert_non_null(tok);
    assert_string_equal(tok, "tok-1");
    free(tok);
    assert_non_null(strstr(e.last, "POST /tenant-1/oauth2/v2.0/token HTTP/1.1"));
    assert_non_null(strstr(e.last, "grant_type=client_credentials"));
    assert_non_null(strstr(e.last, "client_id=app-1"));
    assert_non_null(strstr(e.last, "client_secret=s3cr3t-value"));
    assert_non_null(strstr(e.last, "scope=https%3A%2F%2Fstorage.azure.com%2F.default"));
    az_token_src_free(t);
    endpoint_stop(&e);
}

static void test_workload_and_managed_requests(void **state)
{
    (void)state;
    endpoint e;
    endpoint_start(&e, 3600);
    char url[64], path[PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/mtable-token-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "eyJfederated.token.sig\n", 23), 23);
    close(fd);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", e.port);
    az_cred w = {.kind = AZ_CRED_WORKLOAD,
                 .tenant_id = "t2",
                 .client_id = "app-2",
                 .token_file = path,
                 .authority_host = url};
    mt_status st;
    az_token_src *t = az_token_src_new(&w, NULL, &st);
    char *tok = az_token_get(t, &st, NULL);
    assert_non_null(tok);
    free(tok);
    assert_non_null(strstr(e.last, "POST /t2/oauth2/v2.0/token "));
    assert_non_null(strstr(e.last, "client_assertion=eyJfederated.token.sig"));
    assert_non_null(strstr(e.last, "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-"
                                   "assertion-type%3Ajwt-bearer"));
    assert_null(strstr(e.last, "client_secret"));
    az_token_src_free(t);
    unlink(path);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/msi/token", e.port);
    az_cred m = {.kind = AZ_CRED_MANAGED, .client_id = "mi-1", .identity_endpoint = url};
    t = az_token_src_new(&m, NULL, &st);
    tok = az_token_get(t, &st, NULL);
    assert_non_null(tok);
    free(tok);
    assert_non_null(strstr(e.last, "GET /msi/token?api-version=2018-02-01&resource=https%3A%2F%2F"
                                   "storage.azure.com%2F&client_id=mi-1 HTTP/1.1"));
    assert_non_null(strstr(e.last, "Metadata: true"));
    az_token_src_free(t);

    m.identity_header = "hdr-value"; /* App Service's variant */
    t = az_token_src_new(&m, NULL, &st);
    tok = az_token_get(t, &st, NULL);
    assert_non_null(tok);
    free(tok);
    assert_non_null(strstr(e.last, "api-version=2019-08-01"));
    assert_non_null(strstr(e.last, "X-IDENTITY-HEADER: hdr-value"));
    az_token_src_free(t);
    endpoint_stop(&e);
}

typedef struct getter {
    az_token_src *t;
    int bad;
} getter;

static void *get_many(void *arg)
{
    getter *g = arg;
    for (int i = 0; i < 200; i++) {
        mt_status st;
        char *tok = az_token_get(g->t, &st, NULL);
        if (!tok || strcmp(tok, "tok-1") != 0)
            g->bad++;
        free(tok);
    }
    return NULL;
}

static void test_invalidate(void **state)
{
    (void)state;
    endpoint e;
    endpoint_start(&e, 3600);
    char url[64];
    az_token_src *t = client_secret_src(&e, url, sizeof url);
    mt_status st;
    unsigned g1 = 0, g2 = 0, g3 = 0;
    char *tok = az_token_get(t, &st, &g1);
    assert_string_equal(tok, "tok-1");
    free(tok);
    az_token_invalidate(t, g1); /* the service refused tok-1 */
    tok = az_token_get(t, &st, &g2);
    assert_string_equal(tok, "tok-2");
    assert_int_not_equal(g1, g2);
    free(tok);
    az_token_invalidate(t, g1); /* a late refusal of tok-1: tok-2 stays */
    tok = az_token_get(t, &st, &g3);
    assert_string_equal(tok, "tok-2");
    assert_int_equal(g2, g3);
    free(tok);
    assert_int_equal(requests(&e), 2);
    az_token_src_free(t);
    endpoint_stop(&e);
}

static void test_one_fetch_for_many_threads(void **state)
{
    (void)state;
    endpoint e;
    endpoint_start(&e, 3600);
    char url[64];
    az_token_src *t = client_secret_src(&e, url, sizeof url);
    pthread_t th[8];
    getter g[8];
    for (int i = 0; i < 8; i++) {
        g[i] = (getter){.t = t};
        pthread_create(&th[i], NULL, get_many, &g[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(g[i].bad, 0);
    }
    assert_int_equal(requests(&e), 1);
    az_token_src_free(t);
    endpoint_stop(&e);
}

static void test_refresh_and_failures(void **state)
{
    (void)state;
    endpoint e;
    endpoint_start(&e, 8); /* refreshed after 4 s, used for 6 */
    char url[64];
    logged[0] = '\0';
    warnings = 0;
    az_client_set_log(on_log);
    az_token_src *t = client_secret_src(&e, url, sizeof url);
    mt_status st;
    char *tok = az_token_get(t, &st, NULL);
    assert_string_equal(tok, "tok-1");
    free(tok);
    sleep_ms(4100); /* past half the lifetime: due */
    fail_next(&e, 1);
    tok = az_token_get(t, &st, NULL); /* the refresh fails; the current token serves */
    assert_string_equal(tok, "tok-1");
    free(tok);
    assert_int_equal(warnings, 1);
    assert_non_null(strstr(logged, "HTTP 500 temporarily_unavailable: try later"));
    assert_non_null(strstr(logged, "the current token serves"));
    tok = az_token_get(t, &st, NULL); /* within the retry gap: no new request */
    assert_string_equal(tok, "tok-1");
    free(tok);
    assert_int_equal(requests(&e), 2);
    sleep_ms(1100);
    tok = az_token_get(t, &st, NULL); /* retried: a new token, and said so */
    assert_string_equal(tok, "tok-3");
    free(tok);
    assert_non_null(strstr(logged, "again"));
    assert_null(strstr(logged, "s3cr3t"));
    assert_null(strstr(logged, "tok-"));
    az_token_src_free(t);

    /* No token at all: every caller tries once and gets 503. */
    fail_next(&e, 2);
    t = client_secret_src(&e, url, sizeof url);
    assert_null(az_token_get(t, &st, NULL));
    assert_int_equal(st.http, 503);
    assert_string_equal(st.code, MT_ERR_SERVER_BUSY);
    assert_non_null(strstr(st.message, "HTTP 500"));
    assert_null(az_token_get(t, &st, NULL));
    tok = az_token_get(t, &st, NULL);
    assert_string_equal(tok, "tok-6");
    free(tok);
    az_token_src_free(t);
    az_client_set_log(NULL);
    endpoint_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_secret_request),
        cmocka_unit_test(test_workload_and_managed_requests),
        cmocka_unit_test(test_invalidate),
        cmocka_unit_test(test_one_fetch_for_many_threads),
        cmocka_unit_test(test_refresh_and_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

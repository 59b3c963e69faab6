/*
 * test_az_client_conn.c -- the backend client's transport: the reader of
 * HTTP/1.1 answers fed whole and byte by byte (lengths, chunks, interim
 * answers, a body up to the end of the connection, what it refuses), and
 * the connections against a keep-alive fake server in a thread: one
 * connection serves many requests, a connection the server closed while
 * idle is not used, one it closes as a request arrives is replaced once,
 * and a proxy named by the environment is used.
 */
#include "ut_az_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "az_client_internal.h"

/* ------------------------------------------------------------------------ */
/* The reader.                                                               */

typedef struct answer_case {
    const char *in;
    az_hp_rc rc; /* after the input and, when it wants more, the end */
    long status;
    const char *body;
    bool close;
} answer_case;

static const answer_case answer_cases[] = {
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: W/\"e\"\r\n\r\nhello", AZ_HP_END, 200, "hello",
     false},
    {"HTTP/1.1 204 No Content\r\nETag: W/\"e\"\r\n\r\n", AZ_HP_END, 204, "", false},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\n"
     "T: v\r\n\r\n",
     AZ_HP_END, 200, "hello!", false},
    {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", AZ_HP_END,
     201, "ok", false},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", AZ_HP_END, 200, "ok",
     true},
    {"HTTP/1.0 200 OK\r\n\r\nto the end", AZ_HP_END, 200, "to the end", true},
    {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", AZ_HP_BAD, 0, NULL, false},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", AZ_HP_BAD, 0, NULL,
     false},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", AZ_HP_BAD, 0, NULL, false},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", AZ_HP_BAD, 0, NULL, false},
    {"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", AZ_HP_BAD, 0, NULL, false},
    {"SSH-2.0-OpenSSH\r\n\r\n", AZ_HP_BAD, 0, NULL, false},
};

static az_hp_rc read_answer(const char *in, size_t piece, az_resp *r, az_hparse *p)
{
    az_hparse_init(p, r);
    size_t n = strlen(in), off = 0, used;
    az_hp_rc rc = AZ_HP_MORE;
    while (rc == AZ_HP_MORE && off < n) {
        size_t k = piece && n - off > piece ? piece : n - off;
        rc = az_hparse_feed(p, in + off, k, &used);
        off += used;
    }
    return rc == AZ_HP_MORE ? az_hparse_eof(p) : rc;
}

static void test_answer_reader(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof answer_cases / sizeof answer_cases[0]; i++) {
        const answer_case *c = &answer_cases[i];
        for (size_t piece = 0; piece <= 1; piece++) {
            az_resp r = {0};
            az_hparse p;
            az_hp_rc rc = read_answer(c->in, piece, &r, &p);
            if (rc != c->rc)
                fail_msg("case %zu (piece %zu): rc %d, want %d", i, piece, rc, c->rc);
            if (rc == AZ_HP_END) {
                assert_int_equal(p.status, c->status);
                assert_int_equal(r.body.len, strlen(c->body));
                assert_memory_equal(r.body.len ? r.body.p : "", c->body, strlen(c->body));
                assert_int_equal(p.close, c->close);
            }
            az_hparse_clear(&p);
            az_resp_clear(&r);
        }
    }
    /* The headers the client reads. */
    az_resp r = {0};
    az_hparse p;
    assert_int_equal(read_answer("HTTP/1.1 200 OK\r\netag:  W/\"1\" \r\nContent-Type: a/b\r\n"
                                 "x-ms-continuation-NextPartitionKey: 1!8!cA--\r\n"
                                 "Content-Length: 0\r\n\r\n",
                                 1, &r, &p),
                     AZ_HP_END);
    assert_string_equal(r.etag, "W/\"1\"");
    assert_string_equal(r.content_type, "a/b");
    assert_string_equal(r.next_pk, "1!8!cA--");
    az_hparse_clear(&p);
    az_resp_clear(&r);
}

/* ------------------------------------------------------------------------ */
/* A keep-alive fake server: each request gets the next action.              */

enum { KA_REPLY, KA_REPLY_THEN_CLOSE, KA_DROP };
#define KA_MAX 8

typedef struct ka_server {
    int lfd, port;
    pthread_t th;
    int acts[KA_MAX], nacts;
    const char *answer; /* head and body of every reply */
    int accepts, served;
    char first_line[KA_MAX][512];
    volatile int stop;
} ka_server;

/* One request's head (and Content-Length body); false at the end. */
static bool ka_read(int fd, char *line, size_t cap)
{
    char buf[8192];
    size_t n = 0;
    while (n + 1 < sizeof buf) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            return false;
        ssize_t k = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (k <= 0)
            return false;
        n += (size_t)k;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        char *cl = strstr(buf, "Content-Length: ");
        size_t need = (size_t)(end + 4 - buf) + (cl && cl < end ? (size_t)atol(cl + 16) : 0);
        if (n >= need)
            break;
    }
    snprintf(line, cap, "%.*s", (int)strcspn(buf, "\r"), buf);
    return true;
}

static void ka_serve(ka_server *s, int fd)
{
    for (;;) {
        char line[512];
        if (!ka_read(fd, line, sizeof line))
            return;
        int i = s->served < KA_MAX ? s->served : KA_MAX - 1;
        snprintf(s->first_line[i], sizeof s->first_line[i], "%s", line);
        int act = s->acts[s->served < s->nacts ? s->served : s->nacts - 1];
        s->served++;
        if (act == KA_DROP)
            return;
        if (send(fd, s->answer, strlen(s->answer), MSG_NOSIGNAL) < 0 || act == KA_REPLY_THEN_CLOSE)
            return;
    }
}

static void *ka_main(void *arg)
{
    ka_server *s = arg;
    while (!s->stop) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        s->accepts++;
        ka_serve(s, fd);
        close(fd);
    }
    return NULL;
}

static void ka_start(ka_server *s, const int *acts, int n, const char *answer)
{
    memset(s, 0, sizeof *s);
    memcpy(s->acts, acts, (size_t)n * sizeof *acts);
    s->nacts = n;
    s->answer = answer;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, ka_main, s), 0);
}

static void ka_stop(ka_server *s)
{
    s->stop = 1;
    pthread_join(s->th, NULL);
    close(s->lfd);
}

static mt_table *ka_table(int port, az_client **c)
{
    az_connstr cs = connstr_for(port);
    az_client_opts o = {.timeout_ms = 2000, .backoff_base_ms = 5, .backoff_max_ms = 20};
    mt_status st;
    *c = az_client_new(&cs, &o, &st);
    assert_ok(st);
    az_connstr_clear(&cs);
    mt_table *t = az_client_table(*c, "katable", &st);
    assert_ok(st);
    return t;
}

#define ROW_CHUNKED                                                                                \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json;odata=minimalmetadata\r\n"                  \
    "Transfer-Encoding: chunked\r\n\r\n"                                                           \
    "20\r\n{\"odata.etag\":\"W/\\\"e1\\\"\",\"Partit\r\n"                                          \
    "2D\r\nionKey\":\"p\",\"RowKey\":\"r\",\"Timestamp\":\"2024-01\r\n"                            \
    "1D\r\n-02T03:04:05.1234567Z\",\"n\":5}\r\n0\r\n\r\n"
#define CREATED                                                                                    \
    "HTTP/1.1 204 No Content\r\nETag: W/\"datetime'2024-01-01T00%3A00%3A00.1Z'\"\r\n"              \
    "Content-Length: 0\r\n\r\n"

static void retrieve_ok(mt_table *t)
{
    mt_entity *got = NULL;
    assert_ok(t->ops->retrieve(t, "p", "r", &got));
    assert_non_null(got);
    const mt_value *n = mt_entity_get(got, "n");
    assert_non_null(n);
    assert_int_equal(n->u.i32, 5);
    /* No ETag header: odata.etag, unescaped; the Timestamp read. */
    assert_string_equal(got->etag, "W/\"e1\"");
    int64_t ticks;
    assert_true(mt_datetime_parse("2024-01-02T03:04:05.1234567Z", 28, &ticks));
    assert_true(got->timestamp == ticks);
    mt_entity_free(got);
}

/* One connection serves every request while the server keeps it. */
static void test_keep_alive(void **state)
{
    (void)state;
    ka_server s;
    int acts[] = {KA_REPLY};
    ka_start(&s, acts, 1, ROW_CHUNKED);
    az_client *c;
    mt_table *t = ka_table(s.port, &c);
    for (int i = 0; i < 5; i++)
        retrieve_ok(t);
    assert_int_equal(s.accepts, 1);
    assert_int_equal(s.served, 5);
    assert_non_null(strstr(s.first_line[0], "GET /devstoreaccount1/katable(PartitionKey='p'"));
    mt_table_destroy(t);
    az_client_free(c);
    ka_stop(&s);
}

/* The server closed the idle connection: it is not used, and a write that
 * follows goes out once, with its answer taken as is. */
static void test_closed_while_idle(void **state)
{
    (void)state;
    ka_server s;
    int acts[] = {KA_REPLY_THEN_CLOSE, KA_REPLY};
    ka_start(&s, acts, 2, CREATED);
    az_client *c;
    mt_table *t = ka_table(s.port, &c);
    mt_entity *e = ent("p", "r");
    assert_ok(one(t, MT_OP_INSERT_OR_REPLACE, e, NULL, NULL));
    usleep(100 * 1000); /* the close reaches the client */
    mt_op_result res;
    assert_ok(one(t, MT_OP_REPLACE, e, "W/\"e1\"", &res));
    assert_int_equal(res.http, 204);
    assert_int_equal(s.served, 2);
    assert_int_equal(s.accepts, 2);
    mt_entity_free(e);
    mt_table_destroy(t);
    az_client_free(c);
    ka_stop(&s);
}

/* The server closes a kept connection as the next request arrives,
 * without answering: that request is sent once more on a new connection. */
static void test_closed_on_arrival(void **state)
{
    (void)state;
    ka_server s;
    int acts[] = {KA_REPLY, KA_DROP, KA_REPLY};
    ka_start(&s, acts, 3, ROW_CHUNKED);
    az_client *c;
    mt_table *t = ka_table(s.port, &c);
    retrieve_ok(t);
    retrieve_ok(t);
    assert_int_equal(s.served, 3);
    assert_int_equal(s.accepts, 2);
    mt_table_destroy(t);
    az_client_free(c);
    ka_stop(&s);
}

/* A proxy named by the environment gets the requests, in absolute form. */
static void test_env_proxy(void **state)
{
    (void)state;
    ka_server s;
    int acts[] = {KA_REPLY};
    ka_start(&s, acts, 1, ROW_CHUNKED);
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", s.port);
    setenv("http_proxy", proxy, 1);
    int port = ut_free_port(); /* nothing listens there: only the proxy answers */
    az_client *c;
    mt_table *t = ka_table(port, &c);
    retrieve_ok(t);
    unsetenv("http_proxy");
    assert_int_equal(s.served, 1);
    char want[64];
    snprintf(want, sizeof want, "GET http://127.0.0.1:%d/devstoreaccount1/katable(", port);
    assert_non_null(strstr(s.first_line[0], want));
    mt_table_destroy(t);
    az_client_free(c);
    ka_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_reader),     cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_closed_while_idle), cmocka_unit_test(test_closed_on_arrival),
        cmocka_unit_test(test_env_proxy),
    };
    return cmocka_run_group_tests_name("backend transport", tests, NULL, NULL);
}

/*
 * test_az_client_retry.c -- the Azure backend table against a scripted
 * fake HTTP server in a thread, for what a real service will not do on
 * demand: 5xx answers, dropped connections, silence, empty pages with a
 * continuation, a row that changes between the read and the batch of a
 * DeleteIfExists. These cases check the retry and idempotency rules and the
 * Shared Key signature on the wire.
 */
#define _GNU_SOURCE /* strcasestr */
#include "ut_az_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* A scripted HTTP server: each request gets the next action.                */

enum { FAKE_REPLY, FAKE_CLOSE, FAKE_HANG };
#define FAKE_MAX 16

typedef struct fake_action {
    int kind;
    const char *head; /* status line and headers, each ending "\r\n" */
    const char *body;
} fake_action;

typedef struct fake {
    int lfd, port;
    pthread_t th;
    fake_action acts[FAKE_MAX];
    int nacts;
    int served;
    char reqs[FAKE_MAX][8192]; /* the raw requests seen */
    volatile int stop;
} fake;

/* Reads one request (headers and Content-Length body) into buf. */
static bool fake_read(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    long need = -1;
    while (n + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            return false;
        ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
        if (k <= 0)
            return false;
        n += (size_t)k;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end && need < 0) {
            char *cl = strcasestr(buf, "\r\nContent-Length:");
            need = (long)(end + 4 - buf) + (cl && cl < end ? atol(cl + 17) : 0);
        }
        if (need >= 0 && (long)n >= need)
            return true;
    }
    return true; /* truncated: enough for the checks */
}

static void *fake_main(void *arg)
{
    fake *f = arg;
    while (!f->stop) {
        struct pollfd p = {.fd = f->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        int i = f->served < FAKE_MAX ? f->served : FAKE_MAX - 1;
        if (!fake_read(fd, f->reqs[i], sizeof f->reqs[i])) {
            close(fd);
            continue;
        }
        fake_action a = f->acts[f->served < f->nacts ? f->served : f->nacts - 1];
        f->served++;
        if (a.kind == FAKE_REPLY) {
            char out[16384];
            const char *body = a.body ? a.body : "";
            int k =
                snprintf(out, sizeof out, "%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         a.head, strlen(body), body);
            if (send(fd, out, (size_t)k, MSG_NOSIGNAL) < 0)
                perror("fake send");
        } else if (a.kind == FAKE_HANG) {
            char tmp[256];
            while (!f->stop) {
                struct pollfd q = {.fd = fd, .events = POLLIN};
                if (poll(&q, 1, 50) > 0 && recv(fd, tmp, sizeof tmp, 0) <= 0)
                    break; /* the client gave up */
            }
        }
        close(fd);
    }
    return NULL;
}

static void fake_start(fake *f, const fake_action *acts, int n)
{
    memset(f, 0, sizeof *f);
    assert_true(n > 0 && n <= FAKE_MAX);
    memcpy(f->acts, acts, (size_t)n * sizeof *acts);
    f->nacts = n;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 16), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(fake *f)
{
    f->stop = 1;
    pthread_join(f->th, NULL);
    close(f->lfd);
}

/* A table on the fake server with quick timeouts and backoff. */
static mt_table *fake_table(const fake *f, az_client **c, long timeout_ms)
{
    az_connstr cs = connstr_for(f->port);
    az_client_opts o = {.timeout_ms = timeout_ms, .backoff_base_ms = 5, .backoff_max_ms = 20};
    mt_status st;
    *c = az_client_new(&cs, &o, &st);
    assert_ok(st);
    az_connstr_clear(&cs);
    mt_table *t = az_client_table(*c, "faketable", &st);
    assert_ok(st);
    return t;
}

#define OK204 "HTTP/1.1 204 No Content\r\nETag: W/\"datetime'2024-01-01T00%3A00%3A00.1Z'\"\r\n"
#define BUSY503 "HTTP/1.1 503 Server Busy\r\nContent-Type: application/json\r\n"
#define BUSY_BODY                                                                                  \
    "{\"odata.error\":{\"code\":\"ServerBusy\",\"message\":{\"lang\":\"en-US\",\"value\":"         \
    "\"The server is busy.\"}}}"
#define JSON200 "HTTP/1.1 200 OK\r\nContent-Type: application/json;odata=minimalmetadata\r\n"
#define ROW_BODY                                                                                   \
    "{\"odata.metadata\":\"x\",\"odata.etag\":\"W/\\\"e1\\\"\",\"PartitionKey\":\"p\","            \
    "\"RowKey\":\"r\",\"Timestamp\":\"2024-01-02T03:04:05.1234567Z\",\"n\":5,\"d\":5.0}"

static void test_fake_read_retries(void **state)
{
    (void)state;
    fake f;
    fake_action acts[] = {
        {FAKE_REPLY, BUSY503, BUSY_BODY},
        {FAKE_CLOSE, NULL, NULL},
        {FAKE_REPLY, "HTTP/1.1 500 Internal Server Error\r\n", ""},
        {FAKE_REPLY, JSON200, ROW_BODY},
    };
    fake_start(&f, acts, 4);
    az_client *c;
    mt_table *t = fake_table(&f, &c, 2000);
    mt_entity *e = NULL;
    assert_ok(t->ops->retrieve(t, "p", "r", &e));
    assert_int_equal(f.served, 4);
    assert_string_equal(e->etag, "W/\"e1\"");
    assert_int_equal(mt_entity_get(e, "n")->type, MT_EDM_INT32);
    assert_int_equal(mt_entity_get(e, "d")->type, MT_EDM_DOUBLE);
    char ts[MT_DATETIME_MAX];
    mt_datetime_format(e->timestamp, ts);
    assert_string_equal(ts, "2024-01-02T03:04:05.1234567Z");
    mt_entity_free(e);
    /* Reads give up after max_attempts (4) with 503, which clients retry. */
    f.served = 0;
    f.nacts = 1;
    f.acts[0] = (fake_action){FAKE_REPLY, BUSY503, BUSY_BODY};
    assert_status(t->ops->retrieve(t, "p", "r", &e), 503, "ServerBusy");
    assert_int_equal(f.served, 4);
    mt_table_destroy(t);
    az_client_free(c);
    fake_stop(&f);
}

/* A write that may have applied is never sent again. */
static void test_fake_no_blind_replay(void **state)
{
    (void)state;
    static const mt_op_kind kinds[] = {MT_OP_INSERT, MT_OP_INSERT_OR_REPLACE, MT_OP_INSERT_OR_MERGE,
                                       MT_OP_DELETE_IF_EXISTS};
    mt_entity *e = ent("p", "r");
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        fake f;
        fake_action acts[] = {{FAKE_CLOSE, NULL, NULL}, {FAKE_REPLY, OK204, NULL}};
        fake_start(&f, acts, 2);
        az_client *c;
        mt_table *t = fake_table(&f, &c, 2000);
        assert_status(one(t, kinds[i], e, NULL, NULL), 500, "OperationTimedOut");
        assert_int_equal(f.served, 1);
        /* A 503 answer is passed on, not retried. */
        f.served = 0;
        f.acts[0] = (fake_action){FAKE_REPLY, BUSY503, BUSY_BODY};
        assert_status(one(t, kinds[i], e, NULL, NULL), 503, "ServerBusy");
        assert_int_equal(f.served, 1);
        mt_table_destroy(t);
        az_client_free(c);
        fake_stop(&f);
    }
    /* Delete If-Match * is not replayable either. */
    fake f;
    fake_action acts[] = {{FAKE_CLOSE, NULL, NULL}, {FAKE_REPLY, OK204, NULL}};
    fake_start(&f, acts, 2);
    az_client *c;
    mt_table *t = fake_table(&f, &c, 2000);
    assert_status(one(t, MT_OP_DELETE, e, "*", NULL), 500, "OperationTimedOut");
    assert_int_equal(f.served, 1);
    mt_table_destroy(t);
    az_client_free(c);
    fake_stop(&f);
    mt_entity_free(e);
}

#define PRECOND412 "HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\n"
#define PRECOND_BODY                                                                               \
    "{\"odata.error\":{\"code\":\"UpdateConditionNotSatisfied\",\"message\":{\"lang\":"            \
    "\"en-US\",\"value\":\"The update condition specified in the request was not "                 \
    "satisfied.\"}}}"

/* A write conditioned on a specific ETag can apply at most once: replayed;
 * a refusal after an unknown outcome is itself unknown. */
static void test_fake_token_replay(void **state)
{
    (void)state;
    mt_entity *e = ent("p", "r");
    set_i32(e, "n", 1);
    fake f;
    fake_action acts[] = {{FAKE_CLOSE, NULL, NULL}, {FAKE_REPLY, OK204, NULL}};
    fake_start(&f, acts, 2);
    az_client *c;
    mt_table *t = fake_table(&f, &c, 2000);
    mt_op_result res;
    assert_ok(one(t, MT_OP_REPLACE, e, "W/\"e1\"", &res));
    assert_int_equal(f.served, 2);
    assert_int_equal(res.http, 204);
    assert_string_equal(res.etag, "W/\"datetime'2024-01-01T00%3A00%3A00.1Z'\"");
    assert_non_null(strstr(f.reqs[1], "If-Match: W/\"e1\"\r\n"));

    f.served = 0;
    f.acts[1] = (fake_action){FAKE_REPLY, PRECOND412, PRECOND_BODY};
    assert_status(one(t, MT_OP_MERGE, e, "W/\"e1\"", &res), 500, "OperationTimedOut");
    assert_int_equal(f.served, 2);

    /* Without an earlier unknown outcome, a 412 is a 412. */
    f.served = 0;
    f.acts[0] = (fake_action){FAKE_REPLY, PRECOND412, PRECOND_BODY};
    mt_status st = one(t, MT_OP_DELETE, e, "W/\"e1\"", &res);
    assert_status(st, 412, MT_ERR_CONDITION);
    assert_int_equal(st.index, 0);
    assert_int_equal(f.served, 1);
    mt_table_destroy(t);
    az_client_free(c);
    fake_stop(&f);
    mt_entity_free(e);
}

/* Nothing listens: the request never left, so even an insert is retried,
 * and the end is 503 (the caller may retry too). */
static void test_fake_unreachable(void **state)
{
    (void)state;
    int port = ut_free_port();
    az_connstr cs = connstr_for(port);
    az_client_opts o = {.max_attempts = 3, .backoff_base_ms = 5, .backoff_max_ms = 10};
    mt_status st;
    mt_table *t = az_table_open(&cs, "nothere", &o, &st);
    assert_ok(st);
    mt_entity *e = ent("p", "r");
    st = one(t, MT_OP_INSERT, e, NULL, NULL);
    assert_status(st, 503, "ServerBusy");
    assert_non_null(strstr(st.message, "Cannot reach"));
    mt_table_destroy(t);
    mt_entity_free(e);
    az_connstr_clear(&cs);
}

/* Silence: reads retry after the timeout, writes report an unknown
 * outcome after one attempt. */
static void test_fake_timeout(void **state)
{
    (void)state;
    fake f;
    fake_action acts[] = {{FAKE_HANG, NULL, NULL}};
    fake_start(&f, acts, 1);
    az_client *c;
    mt_table *t = fake_table(&f, &c, 300);
    mt_entity *e = ent("p", "r");
    double t0 = now_s();
    assert_status(one(t, MT_OP_INSERT, e, NULL, NULL), 500, "OperationTimedOut");
    assert_int_equal(f.served, 1);
    assert_true(now_s() - t0 < 3.0);
    f.served = 0;
    mt_entity *got = NULL;
    assert_status(t->ops->retrieve(t, "p", "r", &got), 503, "ServerBusy");
    assert_int_equal(f.served, 4);
    mt_table_destroy(t);
    az_client_free(c);
    fake_stop(&f);
    mt_entity_free(e);
}

#define EMPTY_FEED "{\"odata.metadata\":\"x\",\"value\":[]}"
#define CONT(pk, rk)                                                                               \
    JSON200 "x-ms-continuation-NextPartitionKey: " pk "\r\nx-ms-continuation-NextRowKey: " rk "\r" \
            "\n"

/* Pages may be empty and still have a continuation: every reader loops. */
static void test_fake_empty_pages(void **state)
{
    (void)state;
    static const char one_row[] =
        "{\"value\":[{\"odata.etag\":\"W/\\\"e\\\"\",\"PartitionKey\":\"p\",\"RowKey\":\"a\","
        "\"n\":1}]}";
    fake f;
    fake_action acts[] = {
        {FAKE_REPLY, CONT("1!4!cA--", "1!4!YQ--"), EMPTY_FEED},
        {FAKE_REPLY, CONT("1!4!cB--", "1!4!Yg--"), one_row},
        {FAKE_REPLY, JSON200, EMPTY_FEED},
    };
    fake_start(&f, acts, 3);
    az_client *c;
    mt_table *t = fake_table(&f, &c, 2000);
    mt_stream *s = NULL;
    assert_ok(t->ops->query_stream(t, NULL, NULL, &s));
    mt_key k = {0};
    bool more;
    assert_ok(s->ops->continuation(s, &k, &more));
    assert_true(more);
    assert_string_equal(k.rk, "a");
    mt_key_clear(&k);
    mt_entity *e = NULL;
    assert_ok(s->ops->next(s, &e));
    assert_non_null(e);
    assert_string_equal(e->rk, "a");
    mt_entity_free(e);
    assert_ok(s->ops->next(s, &e));
    assert_null(e);
    assert_ok(s->ops->continuation(s, &k, &more));
    assert_false(more);
    s->ops->close(s);
    assert_int_equal(f.served, 3);
    /* The tokens go back as the service gave them, percent-encoded. */
    assert_non_null(strstr(f.reqs[1], "NextPartitionKey=1%214%21cA--&NextRowKey=1%214%21YQ--"));
    assert_non_null(strstr(f.reqs[2], "NextPartitionKey=1%214%21cB--"));

    /* query_atomic loops the same way. */
    f.served = 0;
    mt_entity_list rows = {0};
    assert_ok(t->ops->query_atomic(t, "p", NULL, &rows));
    assert_int_equal(rows.n, 1);
    mt_entity_list_clear(&rows);
    assert_non_null(strstr(f.reqs[0], "$filter=PartitionKey%20eq%20%27p%27"));
    mt_table_destroy(t);
    az_client_free(c);
    fake_stop(&f);
}

#define BATCH202                                                                                   \
    "HTTP/1.1 202 Accepted\r\nContent-Type: multipart/mixed; boundary=batchresponse_1\r\n"
#define CS_HEAD                                                                                    \
    "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_1\r\n\r\n"
#define CS_PART                                                                                    \
    "--changesetresponse_1\r\nContent-Type: application/http\r\n"                                  \
    "Content-Transfer-Encoding: binary\r\n\r\n"
#define CS_TAIL "--changesetresponse_1--\r\n--batchresponse_1--\r\n"

/* A row named by a DeleteIfExists changes between the read and the batch:
 * the whole batch is read and sent again. */
static void test_fake_delete_if_exists_race(void **state)
{
    (void)state;
    static const char row_d[] =
        "{\"value\":[{\"odata.etag\":\"W/\\\"e1\\\"\",\"PartitionKey\":\"p\",\"RowKey\":\"d\"}]}";
    static const char failed[] =
        CS_HEAD CS_PART "HTTP/1.1 412 Precondition Failed\r\nContent-ID: 2\r\n"
                        "Content-Type: application/json\r\n\r\n"
                        "{\"odata.error\":{\"code\":\"UpdateConditionNotSatisfied\",\"message\":"
                        "{\"lang\":\"en-US\",\"value\":\"1:The update condition specified in the "
                        "request was not satisfied.\\nRequestId:x\"}}}\r\n" CS_TAIL;
    fake f;
    fake_action acts[] = {
        {FAKE_REPLY, JSON200, row_d},
        {FAKE_REPLY, BATCH202, failed},
        {FAKE_REPLY, JSON200, EMPTY_FEED},
        {FAKE_REPLY, OK204, NULL},
    };
    fake_start(&f, acts, 4);
    az_client *c;
    mt_table *t = fake_table(&f, &c, 2000);
    mt_entity *a = ent("p", "a"), *d = ent("p", "d");
    mt_op ops[] = {{.kind = MT_OP_INSERT, .entity = a},
                   {.kind = MT_OP_DELETE_IF_EXISTS, .entity = d}};
    mt_op_result res[2];
    assert_ok(mt_table_batch(t, ops, 2, res));
    assert_int_equal(f.served, 4);
    assert_int_equal(res[0].http, 201);
    assert_int_equal(res[1].http, 204);
    assert_string_equal(res[1].etag, "");
    assert_non_null(strstr(f.reqs[1], "POST /devstoreaccount1/$batch HTTP/1.1"));
    assert_non_null(strstr(f.reqs[1], "If-Match: W/\"e1\"\r\n"));
    assert_non_null(strstr(f.reqs[3], "POST /devstoreaccount1/faketable HTTP/1.1"));
    mt_table_destroy(t);
    az_client_free(c);
    fake_stop(&f);
    mt_entity_free(a);
    mt_entity_free(d);
}

static const char *req_header(const char *req, const char *name, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\r\n%s: ", name);
    const char *p = strcasestr(req, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    size_t n = strcspn(p, "\r\n");
    snprintf(out, cap, "%.*s", (int)n, p);
    return out;
}

/* The Shared Key signature over what is on the wire; a SAS goes in the
 * query instead. */
static void test_fake_signing(void **state)
{
    (void)state;
    fake f;
    fake_action acts[] = {{FAKE_REPLY, JSON200, ROW_BODY}};
    fake_start(&f, acts, 1);
    az_client *c;
    mt_table *t = fake_table(&f, &c, 2000);
    mt_entity *e = NULL;
    assert_ok(t->ops->retrieve(t, "p q", "O'Brien", &e));
    mt_entity_free(e);
    const char *req = f.reqs[0];
    const char *path = "/devstoreaccount1/faketable(PartitionKey='p%20q',RowKey='O''Brien')";
    char line[256], date[64], auth[256], ver[64];
    snprintf(line, sizeof line, "GET %s HTTP/1.1\r\n", path);
    assert_non_null(strstr(req, line));
    assert_non_null(req_header(req, "x-ms-date", date, sizeof date));
    assert_non_null(req_header(req, "Authorization", auth, sizeof auth));
    assert_non_null(req_header(req, "x-ms-version", ver, sizeof ver));
    assert_string_equal(ver, "2019-02-02");
    assert_non_null(req_header(req, "Accept", line, sizeof line));
    assert_string_equal(line, "application/json;odata=minimalmetadata");
    char sts[512];
    snprintf(sts, sizeof sts, "GET\n\n\n%s\n/devstoreaccount1%s", date, path);
    uint8_t *key;
    size_t klen;
    assert_true(az_base64_decode(AZ_DEV_KEY, strlen(AZ_DEV_KEY), &key, &klen));
    char *sig = az_sign(key, klen, sts);
    char want[256];
    snprintf(want, sizeof want, "SharedKey devstoreaccount1:%s", sig);
    assert_string_equal(auth, want);
    free(sig);
    free(key);
    mt_table_destroy(t);
    az_client_free(c);

    char s[256];
    snprintf(s, sizeof s,
             "TableEndpoint=http://127.0.0.1:%d/acct;SharedAccessSignature=sv=2019-02-02&sig=abc",
             f.port);
    az_connstr cs;
    assert_ok(az_connstr_parse(s, &cs));
    mt_status st;
    t = az_table_open(&cs, "faketable", NULL, &st);
    assert_ok(st);
    f.served = 0;
    assert_ok(t->ops->retrieve(t, "p", "r", &e));
    mt_entity_free(e);
    assert_non_null(strstr(f.reqs[0], "RowKey='r')?sv=2019-02-02&sig=abc HTTP/1.1"));
    assert_null(strcasestr(f.reqs[0], "\r\nAuthorization:"));
    mt_table_destroy(t);
    az_connstr_clear(&cs);
    fake_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake_read_retries),
        cmocka_unit_test(test_fake_no_blind_replay),
        cmocka_unit_test(test_fake_token_replay),
        cmocka_unit_test(test_fake_unreachable),
        cmocka_unit_test(test_fake_timeout),
        cmocka_unit_test(test_fake_empty_pages),
        cmocka_unit_test(test_fake_delete_if_exists_race),
        cmocka_unit_test(test_fake_signing),
    };
    return cmocka_run_group_tests_name("fake server", tests, NULL, NULL);
}

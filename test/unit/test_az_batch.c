/*
 * test_az_batch.c -- $batch bodies: the requests both JavaScript SDKs
 * really send, the same bodies with their line ends swapped, the shapes
 * MIME allows and SDKs do not use, malformed bodies, the 100-operation
 * limit, and the response layout as the SDKs read it.
 *
 * The request fixtures in fixtures/batch/ were captured from
 * @azure/data-tables (CRLF, an extra CRLF before each body, PATCH for
 * merges) and azure-storage (LF only, quoted charset, MERGE, Content-ID on
 * all but the first operation, a lone query whose headers run into the
 * closing delimiter) sending transactions to a local listener. Each file
 * is the request's Content-Type on the first line and its body after.
 *
 * The response is checked with two readers written after the SDKs' own:
 * the one in @azure/data-tables splits on "--changesetresponse_", drops
 * the first and last pieces and picks status, ETag and RowKey out with
 * regular expressions; the one in azure-storage splits on the same (or on
 * "--batchresponse_" when there is no change set), starts at "HTTP/1.1",
 * splits lines on CRLF and reads Content-ID to match requests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "az.h"

#define SDK_PK "p'k %/ \xc3\xa9\xf0\x9f\x98\x80"
#define SDK_PK_PATH "'p''k%20%25%2F%20%C3%A9%F0%9F%98%80'"

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */

typedef struct fixture {
    char *data;
    char *content_type; /* points into data */
    char *body;         /* points into data */
    size_t len;
} fixture;

static char *file_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long n;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)n + 1);
    if (fread(data, 1, (size_t)n, f) != (size_t)n)
        fail_msg("short read of %s", path);
    fclose(f);
    data[n] = '\0';
    *len = (size_t)n;
    return data;
}

/* The fixtures sit beside this source file. The compiler saw it under a
 * path relative to the build directory, and a test may run from elsewhere,
 * so the directory of the executable is tried as well (build trees live
 * one level below the source root). */
static char *fixture_file(const char *name, size_t *len)
{
    char path[2 * PATH_MAX], exe[PATH_MAX];
    const char *src = __FILE__, *slash = strrchr(src, '/');
    char *data;
    ssize_t n;

    snprintf(path, sizeof path, "%.*s/fixtures/batch/%s", slash ? (int)(slash - src) : 1,
             slash ? src : ".", name);
    if ((data = file_read(path, len)))
        return data;
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (int up = 0; up < 3 && strrchr(exe, '/'); up++)
            *strrchr(exe, '/') = '\0';
        snprintf(path, sizeof path, "%s/../test/unit/fixtures/batch/%s", exe, name);
        if ((data = file_read(path, len)))
            return data;
    }
    fail_msg("fixture %s not found", name);
    return NULL;
}

static fixture fixture_load(const char *name)
{
    fixture f;
    size_t n;
    char *nl;
    f.data = fixture_file(name, &n);
    nl = strchr(f.data, '\n');
    assert_non_null(nl);
    *nl = '\0';
    f.content_type = f.data;
    f.body = nl + 1;
    f.len = n - (size_t)(f.body - f.data);
    return f;
}

static az_batch parse_ok(const char *ct, const char *body, size_t len)
{
    az_batch b;
    mt_status st = az_batch_parse(ct, body, len, &b);
    if (!mt_is_ok(&st))
        fail_msg("parse failed: %d %s [%d] %s", st.http, st.code, st.index, st.message);
    return b;
}

static mt_status parse_fails(const char *ct, const char *body)
{
    az_batch b;
    mt_status st = az_batch_parse(ct, body, strlen(body), &b);
    if (st.http != 400 || strcmp(st.code, "InvalidInput") != 0)
        fail_msg("want 400 InvalidInput, got %d %s (%s) for:\n%s", st.http, st.code, st.message,
                 body);
    assert_null(b.parts);
    assert_null(b.boundary);
    assert_null(b.changeset_boundary);
    assert_int_equal(b.n, 0);
    return st;
}

/* Every byte sequence with its LF line ends turned into CRLF, or its CRLF
 * into LF. */
static char *line_ends(const char *s, size_t len, bool crlf, size_t *out_len)
{
    char *out = malloc(2 * len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (crlf && s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            out[n++] = '\r';
        if (!crlf && s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
            continue;
        out[n++] = s[i];
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

static void check_entity_path(const az_batch_part *p, const char *rk)
{
    az_resource r;
    mt_status st = az_resource_parse(p->path, p->query, &r);
    assert_true(mt_is_ok(&st));
    assert_int_equal(r.kind, AZ_RES_ENTITY);
    assert_string_equal(r.table, "mytable");
    assert_string_equal(r.pk, SDK_PK);
    assert_string_equal(r.rk, rk);
    az_resource_clear(&r);
}

static bool body_is_json(const az_batch_part *p)
{
    return p->len > 2 && p->body[0] == '{' && p->body[p->len - 1] == '}' &&
           strlen(p->body) == p->len;
}

/* ------------------------------------------------------------------------ */
/* The SDKs' requests                                                        */

static const char *const dt_methods[] = {"POST", "PATCH", "PUT", "PATCH", "PUT", "DELETE"};
static const char *const as_methods[] = {"POST", "MERGE", "PUT", "MERGE", "PUT", "DELETE"};
static const char *const row_keys[] = {NULL,
                                       "r'2",
                                       "r 3",
                                       "r%4",
                                       "r\xf0\x9f\x98\x80"
                                       "5",
                                       "r6"};

static void check_six(const az_batch *b, const char *const *methods)
{
    assert_int_equal(b->n, 6);
    assert_non_null(b->changeset_boundary);
    for (size_t i = 0; i < 6; i++) {
        const az_batch_part *p = &b->parts[i];
        assert_string_equal(p->method, methods[i]);
        assert_null(p->query);
        assert_int_equal(strncmp(p->url, "http://127.0.0.1:", 17), 0);
        if (i == 0)
            assert_string_equal(p->path, "/mytable");
        else
            check_entity_path(p, row_keys[i]);
        if (i < 5)
            assert_true(body_is_json(p));
        else
            assert_int_equal(p->len, 0);
        assert_non_null(p->body);
    }
    assert_string_equal(az_batch_part_header(&b->parts[1], "if-match"),
                        "W/\"datetime'2024-01-01T00%3A00%3A00.0000000Z'\"");
    assert_string_equal(az_batch_part_header(&b->parts[2], "If-Match"), "*");
    assert_null(az_batch_part_header(&b->parts[3], "If-Match"));
    assert_string_equal(az_batch_part_header(&b->parts[5], "IF-MATCH"), "*");
}

static void test_data_tables_changeset(void **state)
{
    fixture f = fixture_load("datatables_changeset.batch");
    az_batch b = parse_ok(f.content_type, f.body, f.len);
    (void)state;
    assert_string_equal(b.boundary, "batch_b77174f1-fccd-4922-9120-cc306ec3e20b");
    assert_string_equal(b.changeset_boundary, "changeset_7834a4d2-68eb-40aa-a1cd-331533f16a2e");
    check_six(&b, dt_methods);
    assert_string_equal(az_batch_part_header(&b.parts[0], "Prefer"), "return-no-content");
    assert_string_equal(az_batch_part_header(&b.parts[0], "content-type"),
                        "application/json;odata=nometadata");
    assert_null(az_batch_part_header(&b.parts[0], "Content-ID"));
    assert_int_equal(strncmp(b.parts[0].body, "{\"PartitionKey\":\"p'k %/ ", 23), 0);
    az_batch_clear(&b);
    assert_null(b.parts);
    free(f.data);
}

static void test_data_tables_single(void **state)
{
    fixture f = fixture_load("datatables_single_delete.batch");
    az_batch b = parse_ok(f.content_type, f.body, f.len);
    (void)state;
    assert_int_equal(b.n, 1);
    assert_string_equal(b.parts[0].method, "DELETE");
    assert_string_equal(b.parts[0].path, "/mytable(PartitionKey='p',RowKey='r')");
    assert_int_equal(b.parts[0].len, 0);
    az_batch_clear(&b);
    free(f.data);
}

static void test_azure_storage_changeset(void **state)
{
    fixture f = fixture_load("azurestorage_changeset.batch");
    az_batch b = parse_ok(f.content_type, f.body, f.len);
    (void)state;
    assert_string_equal(b.boundary, "batch_448a88735ea5268aa4345447d1340fa4");
    assert_string_equal(b.changeset_boundary, "changeset_448a88735ea5268aa4345447d1340fa4");
    check_six(&b, as_methods);
    assert_null(az_batch_part_header(&b.parts[0], "content-id"));
    for (size_t i = 1; i < 6; i++) {
        char want[4];
        snprintf(want, sizeof want, "%zu", i);
        assert_string_equal(az_batch_part_header(&b.parts[i], "Content-ID"), want);
    }
    assert_string_equal(az_batch_part_header(&b.parts[0], "content-length"), "178");
    assert_int_equal(b.parts[0].len, 178);
    az_batch_clear(&b);
    free(f.data);
}

static void test_azure_storage_query(void **state)
{
    fixture f = fixture_load("azurestorage_query.batch");
    az_batch b = parse_ok(f.content_type, f.body, f.len);
    az_resource r;
    mt_status st;
    (void)state;
    assert_null(b.changeset_boundary);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.parts[0].method, "GET");
    assert_int_equal(b.parts[0].nheaders, 2);
    assert_string_equal(az_batch_part_header(&b.parts[0], "maxdataserviceversion"), "3.0;NetFx");
    assert_int_equal(b.parts[0].len, 0);
    st = az_resource_parse(b.parts[0].path, b.parts[0].query, &r);
    assert_true(mt_is_ok(&st));
    assert_string_equal(r.pk, SDK_PK);
    assert_string_equal(r.rk, "r'2 %\xf0\x9f\x98\x80");
    az_resource_clear(&r);
    az_batch_clear(&b);
    free(f.data);
}

/* Each fixture reads the same with LF and with CRLF line ends. */
static void test_line_ends_swapped(void **state)
{
    const char *names[] = {"datatables_changeset.batch", "azurestorage_changeset.batch",
                           "azurestorage_query.batch", "datatables_single_delete.batch"};
    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        fixture f = fixture_load(names[i]);
        az_batch want = parse_ok(f.content_type, f.body, f.len);
        for (int crlf = 0; crlf < 2; crlf++) {
            size_t n;
            char *body = line_ends(f.body, f.len, crlf, &n);
            az_batch got = parse_ok(f.content_type, body, n);
            assert_int_equal(got.n, want.n);
            for (size_t k = 0; k < got.n; k++) {
                assert_string_equal(got.parts[k].method, want.parts[k].method);
                assert_string_equal(got.parts[k].path, want.parts[k].path);
                assert_int_equal(got.parts[k].nheaders, want.parts[k].nheaders);
                assert_int_equal(got.parts[k].len, want.parts[k].len);
                assert_memory_equal(got.parts[k].body, want.parts[k].body, got.parts[k].len);
            }
            az_batch_clear(&got);
            free(body);
        }
        az_batch_clear(&want);
        free(f.data);
    }
}

/* Every prefix of a real body is either a whole batch or a clean 400:
 * the reader never runs past what it was given. */
static void test_truncated(void **state)
{
    fixture f = fixture_load("azurestorage_changeset.batch");
    (void)state;
    for (size_t n = 0; n < f.len; n++) {
        char *copy = malloc(n ? n : 1);
        az_batch b;
        mt_status st;
        memcpy(copy, f.body, n);
        st = az_batch_parse(f.content_type, copy, n, &b);
        if (!mt_is_ok(&st))
            assert_int_equal(st.http, 400);
        az_batch_clear(&b);
        free(copy);
    }
    free(f.data);
}

/* ------------------------------------------------------------------------ */
/* Shapes MIME allows                                                        */

#define CS_OPEN                                                                                    \
    "--b1\r\nContent-Type: multipart/mixed; boundary=c1\r\n\r\n--c1\r\n"                           \
    "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
#define CS_NEXT "\r\n--c1\r\nContent-Type: application/http\r\n\r\n"
#define CS_CLOSE "\r\n--c1--\r\n--b1--\r\n"

static void test_content_types(void **state)
{
    const char *cts[] = {
        "multipart/mixed; boundary=b1",
        "multipart/mixed;boundary=b1",
        "Multipart/Mixed; BOUNDARY=b1",
        "multipart/mixed; boundary=\"b1\"",
        "multipart/mixed; charset=\"utf-8\"; boundary=b1",
        "multipart/mixed; charset=\"a;b=c\"; boundary=b1; x=y",
        "multipart/mixed ; boundary = b1 ",
        "multipart/mixed; boundary=b1; boundary=b2",
    };
    const char *body = CS_OPEN "DELETE /acct/t01(PartitionKey='a',RowKey='b') HTTP/1.1\r\n"
                               "If-Match: *\r\n\r\n" CS_CLOSE;
    (void)state;
    for (size_t i = 0; i < sizeof cts / sizeof *cts; i++) {
        az_batch b = parse_ok(cts[i], body, strlen(body));
        assert_string_equal(b.boundary, "b1");
        assert_string_equal(b.changeset_boundary, "c1");
        assert_int_equal(b.n, 1);
        assert_string_equal(b.parts[0].path, "/t01(PartitionKey='a',RowKey='b')");
        az_batch_clear(&b);
    }
}

static void test_quoted_and_odd_boundaries(void **state)
{
    const char *body = "--batch_x y:z\r\nContent-Type: multipart/mixed; "
                       "boundary=\"changeset_(1)=\\\"q\\\"\"\r\n\r\n"
                       "--changeset_(1)=\"q\"\r\nContent-Type: application/http\r\n\r\n"
                       "POST /acct/t01 HTTP/1.1\r\n\r\n{\"a\":1}\r\n"
                       "--changeset_(1)=\"q\"--\r\n--batch_x y:z--";
    az_batch b = parse_ok("multipart/mixed; boundary=\"batch_x y:z\"", body, strlen(body));
    (void)state;
    assert_string_equal(b.boundary, "batch_x y:z");
    assert_string_equal(b.changeset_boundary, "changeset_(1)=\"q\"");
    assert_int_equal(b.n, 1);
    assert_string_equal(b.parts[0].body, "{\"a\":1}");
    az_batch_clear(&b);
}

/* A preamble, an epilogue, transport padding after delimiters, blank
 * lines before the request line, a body with inner blank lines. */
static void test_mime_slack(void **state)
{
    const char *body = "This is a preamble.\r\n--b1  \r\n"
                       "Content-Type: multipart/mixed; boundary=c1\r\n\r\n"
                       "changeset preamble\r\n--c1\t\r\nContent-Type: application/http\r\n\r\n"
                       "\r\nPUT /acct/t01(PartitionKey='a',RowKey='b') HTTP/1.1\r\n"
                       "X-Odd:   spaced value  \r\nEmpty:\r\n\r\n{\"a\":\r\n\r\n1}\r\n\r\n"
                       "--c1-- \r\nchangeset epilogue\r\n--b1--\r\nepilogue\r\n--b1\r\n";
    az_batch b = parse_ok("multipart/mixed; boundary=b1", body, strlen(body));
    (void)state;
    assert_int_equal(b.n, 1);
    assert_string_equal(b.parts[0].method, "PUT");
    assert_string_equal(az_batch_part_header(&b.parts[0], "x-odd"), "spaced value");
    assert_string_equal(az_batch_part_header(&b.parts[0], "empty"), "");
    assert_string_equal(b.parts[0].body, "{\"a\":\r\n\r\n1}");
    az_batch_clear(&b);
}

typedef struct url_case {
    const char *url;
    const char *path;
    const char *query;
} url_case;

static const url_case url_cases[] = {
    {"http://127.0.0.1:10002/devstoreaccount1/t01", "/t01", NULL},
    {"HTTPS://myaccount.table.core.windows.net/t01()", "/t01()", NULL},
    {"https://myaccount.table.core.windows.net/t01?$select=a", "/t01", "$select=a"},
    {"http://localhost:10002/devstoreaccount1-secondary/t01", "/t01", NULL},
    {"http://[::1]:10002/devstoreaccount1/t01(PartitionKey='a',RowKey='b')?x=1#frag",
     "/t01(PartitionKey='a',RowKey='b')", "x=1"},
    {"http://h/acct/t01(PartitionKey='a%2Fb',RowKey='c')", "/t01(PartitionKey='a%2Fb',RowKey='c')",
     NULL},
    {"http://h/t01(PartitionKey='a/b',RowKey='c')", "/t01(PartitionKey='a/b',RowKey='c')", NULL},
    {"http://h/acct/", "/", NULL},
    {"http://h", "/", NULL},
    {"http://h?x", "/", "x"},
    {"http://h/t01?", "/t01", NULL},
    {"/devstoreaccount1/t01", "/t01", NULL},
    {"/t01", "/t01", NULL},
    {"t01(PartitionKey='a',RowKey='b')", "/t01(PartitionKey='a',RowKey='b')", NULL},
    {"t01?$top=1", "/t01", "$top=1"},
};

static void test_operation_urls(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof url_cases / sizeof *url_cases; i++) {
        char body[512];
        az_batch b;
        snprintf(body, sizeof body, CS_OPEN "DELETE %s HTTP/1.1\r\n\r\n" CS_CLOSE,
                 url_cases[i].url);
        b = parse_ok("multipart/mixed; boundary=b1", body, strlen(body));
        assert_string_equal(b.parts[0].url, url_cases[i].url);
        assert_string_equal(b.parts[0].path, url_cases[i].path);
        if (url_cases[i].query)
            assert_string_equal(b.parts[0].query, url_cases[i].query);
        else
            assert_null(b.parts[0].query);
        az_batch_clear(&b);
    }
}

static void test_request_lines(void **state)
{
    const char *ok[] = {"MERGE /a/t01 HTTP/1.1", "PATCH /a/t01", "POST  /a/t01  HTTP/1.0"};
    const char *methods[] = {"MERGE", "PATCH", "POST"};
    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char body[256];
        az_batch b;
        snprintf(body, sizeof body, CS_OPEN "%s\r\n\r\n{}" CS_CLOSE, ok[i]);
        b = parse_ok("multipart/mixed; boundary=b1", body, strlen(body));
        assert_string_equal(b.parts[0].method, methods[i]);
        assert_string_equal(b.parts[0].path, "/t01");
        assert_string_equal(b.parts[0].body, "{}");
        az_batch_clear(&b);
    }
}

/* A Content-ID among a part's MIME headers, where OData puts it, is read
 * as one among the request's; the request's own wins. */
static void test_mime_content_id(void **state)
{
    const char *body = "--b1\r\nContent-Type: multipart/mixed; boundary=c1\r\n\r\n--c1\r\n"
                       "Content-Type: application/http\r\nContent-ID: 7\r\n\r\n"
                       "DELETE /a/t01 HTTP/1.1\r\nIf-Match: *\r\n\r\n\r\n--c1\r\n"
                       "Content-Type: application/http\r\ncontent-id: 8\r\n\r\n"
                       "DELETE /a/t02 HTTP/1.1\r\nContent-ID: 9\r\n\r\n" CS_CLOSE;
    az_batch b = parse_ok("multipart/mixed; boundary=b1", body, strlen(body));
    (void)state;
    assert_int_equal(b.n, 2);
    assert_string_equal(az_batch_part_header(&b.parts[0], "Content-ID"), "7");
    assert_int_equal(b.parts[0].nheaders, 2);
    assert_string_equal(az_batch_part_header(&b.parts[1], "Content-ID"), "9");
    assert_int_equal(b.parts[1].nheaders, 1);
    az_batch_clear(&b);
}

/* A body may hold any byte, NUL included; its length is what counts. */
static void test_binary_body(void **state)
{
    static const char body[] = CS_OPEN "POST /a/t01 HTTP/1.1\r\n\r\n{\"a\":\"\0\xff\"}" CS_CLOSE;
    az_batch b = parse_ok("multipart/mixed; boundary=b1", body, sizeof body - 1);
    (void)state;
    assert_int_equal(b.parts[0].len, 10);
    assert_memory_equal(b.parts[0].body, "{\"a\":\"\0\xff\"}", 10);
    az_batch_clear(&b);
}

/* ------------------------------------------------------------------------ */
/* Malformed batches                                                         */

static void test_bad_content_types(void **state)
{
    const char *body = CS_OPEN "DELETE /a/t01 HTTP/1.1\r\n\r\n" CS_CLOSE;
    const char *cts[] = {
        "",
        "application/json",
        "multipart/mixed",
        "multipart/mixed; boundary=",
        "multipart/mixed; boundary=\"\"",
        "multipart/mixed; boundary=\"b1",
        "multipart/mixed; boundary=\"b1 \"",
        "multipart/alternative; boundary=b1",
        "multipart/mixed; boundary=b\x01",
        ("multipart/mixed; boundary="
         "12345678901234567890123456789012345678901234567890123456789012345678901"),
    };
    az_batch b;
    mt_status st = az_batch_parse(NULL, body, strlen(body), &b);
    (void)state;
    assert_int_equal(st.http, 400);
    for (size_t i = 0; i < sizeof cts / sizeof *cts; i++)
        parse_fails(cts[i], body);
    st = az_batch_parse("multipart/mixed; boundary=b1", NULL, 5, &b);
    assert_int_equal(st.http, 400);
}

static const char *const bad_bodies[] = {
    "",
    "--b1--\r\n",
    "no delimiters at all",
    /* Not closed. */
    CS_OPEN "DELETE /a/t01 HTTP/1.1\r\n\r\n\r\n--c1--\r\n",
    CS_OPEN "DELETE /a/t01 HTTP/1.1\r\n\r\n",
    /* Changeset not closed. */
    CS_OPEN "DELETE /a/t01 HTTP/1.1\r\n\r\n\r\n--b1--\r\n",
    /* Two parts in the batch. */
    CS_OPEN "DELETE /a/t01 HTTP/1.1\r\n\r\n\r\n--c1--\r\n--b1\r\nContent-Type: "
            "application/http\r\n\r\nGET /a/t01 HTTP/1.1\r\n\r\n--b1--\r\n",
    "--b1\r\nContent-Type: application/http\r\n\r\nGET /a/t01 HTTP/1.1\r\n\r\n--b1\r\n"
    "Content-Type: application/http\r\n\r\nGET /a/t02 HTTP/1.1\r\n\r\n--b1--\r\n",
    /* A lone operation that is not a query. */
    "--b1\r\nContent-Type: application/http\r\n\r\nDELETE /a/t01 HTTP/1.1\r\n\r\n--b1--\r\n",
    /* The batch part is neither. */
    "--b1\r\nContent-Type: text/plain\r\n\r\nGET /a/t01 HTTP/1.1\r\n\r\n--b1--\r\n",
    "--b1\r\n\r\nGET /a/t01 HTTP/1.1\r\n\r\n--b1--\r\n",
    "--b1\r\nContent-Type: multipart/mixed\r\n\r\n--c1\r\n--c1--\r\n--b1--\r\n",
    /* An empty changeset. */
    "--b1\r\nContent-Type: multipart/mixed; boundary=c1\r\n\r\n--c1--\r\n--b1--\r\n",
    /* A nested changeset. */
    "--b1\r\nContent-Type: multipart/mixed; boundary=c1\r\n\r\n--c1\r\nContent-Type: "
    "multipart/mixed; boundary=c2\r\n\r\n--c2\r\nContent-Type: application/http\r\n\r\n"
    "DELETE /a/t01 HTTP/1.1\r\n\r\n--c2--\r\n--c1--\r\n--b1--\r\n",
    /* Bad request lines. */
    CS_OPEN "\r\n\r\n" CS_CLOSE,
    CS_OPEN CS_CLOSE,
    CS_OPEN "DELETE\r\n\r\n" CS_CLOSE,
    CS_OPEN "delete /a/t01 HTTP/1.1\r\n\r\n" CS_CLOSE,
    CS_OPEN "HEAD /a/t01 HTTP/1.1\r\n\r\n" CS_CLOSE,
    CS_OPEN "DELETE /a/t01 FTP/1.1\r\n\r\n" CS_CLOSE,
    CS_OPEN "DELETE /a/t01 HTTP/1.1 extra\r\n\r\n" CS_CLOSE,
    CS_OPEN "DELETE http:///a/t01 HTTP/1.1\r\n\r\n" CS_CLOSE,
    CS_OPEN "DELETE http://?x HTTP/1.1\r\n\r\n" CS_CLOSE,
    /* Bad headers. */
    CS_OPEN "DELETE /a/t01 HTTP/1.1\r\nNoColon\r\n\r\n" CS_CLOSE,
    CS_OPEN "DELETE /a/t01 HTTP/1.1\r\n: empty name\r\n\r\n" CS_CLOSE,
    CS_OPEN "DELETE /a/t01 HTTP/1.1\r\nBad Name: x\r\n\r\n" CS_CLOSE,
    CS_OPEN "DELETE /a/t01 HTTP/1.1\r\nA: b\r\n folded\r\n\r\n" CS_CLOSE,
    "--b1\r\nContent-Type: multipart/mixed; boundary=c1\r\n\r\n--c1\r\nnot a header\r\n\r\n"
    "DELETE /a/t01 HTTP/1.1\r\n\r\n--c1--\r\n--b1--\r\n",
    /* An operation that is not application/http. */
    "--b1\r\nContent-Type: multipart/mixed; boundary=c1\r\n\r\n--c1\r\nContent-Type: "
    "application/json\r\n\r\nDELETE /a/t01 HTTP/1.1\r\n\r\n--c1--\r\n--b1--\r\n",
    /* A query among changes. */
    CS_OPEN "GET /a/t01 HTTP/1.1\r\n\r\n" CS_CLOSE,
};

static void test_bad_bodies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_bodies / sizeof *bad_bodies; i++)
        parse_fails("multipart/mixed; boundary=b1", bad_bodies[i]);
}

/* NUL bytes are data in a body but never in a request line or header. */
static void test_nul_in_headers(void **state)
{
    static const char line[] = CS_OPEN "DELETE /a/t\0 HTTP/1.1\r\n\r\n" CS_CLOSE;
    static const char header[] = CS_OPEN "DELETE /a/t01 HTTP/1.1\r\nA: \0\r\n\r\n" CS_CLOSE;
    az_batch b;
    mt_status st = az_batch_parse("multipart/mixed; boundary=b1", line, sizeof line - 1, &b);
    (void)state;
    assert_int_equal(st.http, 400);
    st = az_batch_parse("multipart/mixed; boundary=b1", header, sizeof header - 1, &b);
    assert_int_equal(st.http, 400);
}

/* The failing operation's index travels with the error. */
static void test_error_index(void **state)
{
    const char *body = CS_OPEN "DELETE /a/t01 HTTP/1.1\r\n" CS_NEXT "PUT /a/t02 HTTP/1.1\r\n"
                               "\r\n{}" CS_NEXT "GET /a/t03 HTTP/1.1\r\n" CS_CLOSE;
    mt_status st = parse_fails("multipart/mixed; boundary=b1", body);
    (void)state;
    assert_int_equal(st.index, 2);
    body = CS_OPEN "DELETE /a/t01 HTTP/1.1\r\n" CS_NEXT "TRACE /a/t02 HTTP/1.1\r\n" CS_CLOSE;
    st = parse_fails("multipart/mixed; boundary=b1", body);
    assert_int_equal(st.index, 1);
    st = parse_fails("multipart/mixed; boundary=b1", "");
    assert_int_equal(st.index, -1);
}

static void test_too_many_headers(void **state)
{
    char *body = malloc(16 * 1024);
    size_t n = (size_t)sprintf(body, CS_OPEN "DELETE /a/t01 HTTP/1.1\r\n");
    az_batch b;
    (void)state;
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(body + n, "H%d: v\r\n", i);
    strcpy(body + n, "\r\n" CS_CLOSE);
    b = parse_ok("multipart/mixed; boundary=b1", body, strlen(body));
    assert_int_equal(b.parts[0].nheaders, 100);
    az_batch_clear(&b);
    sprintf(body + n, "H100: v\r\n\r\n" CS_CLOSE);
    parse_fails("multipart/mixed; boundary=b1", body);
    free(body);
}

/* ------------------------------------------------------------------------ */
/* The 100-operation limit                                                   */

static char *changeset_of(size_t ops)
{
    size_t cap = 256 + ops * 160, n;
    char *body = malloc(cap);
    n = (size_t)sprintf(body, "--b1\r\nContent-Type: multipart/mixed; boundary=c1\r\n\r\n");
    for (size_t i = 0; i < ops; i++)
        n += (size_t)sprintf(body + n,
                             "--c1\r\nContent-Type: application/http\r\n\r\nPOST "
                             "http://h/acct/t01 HTTP/1.1\r\nContent-ID: %zu\r\n\r\n"
                             "{\"PartitionKey\":\"p\",\"RowKey\":\"%zu\"}\r\n",
                             i, i);
    sprintf(body + n, "--c1--\r\n--b1--\r\n");
    return body;
}

static void test_hundred_ops(void **state)
{
    char *body = changeset_of(100);
    az_batch b = parse_ok("multipart/mixed; boundary=b1", body, strlen(body));
    (void)state;
    assert_int_equal(b.n, 100);
    assert_string_equal(az_batch_part_header(&b.parts[99], "Content-ID"), "99");
    assert_string_equal(b.parts[99].body, "{\"PartitionKey\":\"p\",\"RowKey\":\"99\"}");
    az_batch_clear(&b);
    free(body);
}

static void test_too_many_ops(void **state)
{
    const size_t counts[] = {101, 150, 1000};
    (void)state;
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        char *body = changeset_of(counts[i]);
        mt_status st = parse_fails("multipart/mixed; boundary=b1", body);
        assert_int_equal(st.index, 99);
        assert_string_equal(st.message, "The batch request operation exceeds the maximum 100 "
                                        "changes per change set.");
        free(body);
    }
}

/* ------------------------------------------------------------------------ */
/* Response readers after the SDKs                                           */

/* What @azure/data-tables takes from one sub-response. */
typedef struct dt_reply {
    int status;
    char etag[128];   /* "" when absent */
    char row_key[64]; /* "" when absent */
    char body[512];   /* "{...}" on one line, "" when absent */
} dt_reply;

/* Copies what follows the first match of key up to the end of its line
 * (JavaScript's '.' stops at CR and LF), or "" when absent. */
static void rest_of_line(const char *s, const char *key, char *out, size_t cap)
{
    const char *p = strstr(s, key);
    size_t n;
    out[0] = '\0';
    if (!p)
        return;
    p += strlen(key);
    n = strcspn(p, "\r\n");
    snprintf(out, cap, "%.*s", (int)n, p);
}

/* split(/--changesetresponse_/), drop the first and last pieces, then
 * /HTTP\/1.1 ([0-9]*)/, /\{(.*)\}/, /ETag: (.*)/, /RowKey='(.*)'/. */
static size_t dt_read(const char *resp, dt_reply *out, size_t max)
{
    const char *sep = "--changesetresponse_";
    const char *pieces[128];
    size_t np = 0, n = 0;
    for (const char *p = resp; p && np < 128;) {
        pieces[np++] = p;
        p = strstr(p, sep);
        if (p)
            p += strlen(sep);
    }
    for (size_t i = 1; i + 1 < np && n < max; i++, n++) {
        size_t len = (size_t)(pieces[i + 1] - pieces[i]) - strlen(sep);
        char *piece = strndup(pieces[i], len), line[512], *q;
        const char *http = strstr(piece, "HTTP/1.1 ");
        assert_non_null(http);
        out[n].status = atoi(http + 9);
        rest_of_line(piece, "ETag: ", out[n].etag, sizeof out[n].etag);
        rest_of_line(piece, "RowKey='", line, sizeof line);
        q = strrchr(line, '\'');
        snprintf(out[n].row_key, sizeof out[n].row_key, "%.*s", q ? (int)(q - line) : 0, line);
        out[n].body[0] = '\0';
        for (q = strchr(piece, '{'); q; q = strchr(q + 1, '{')) {
            size_t ln = strcspn(q, "\r\n");
            const char *close = NULL;
            for (size_t k = 0; k < ln; k++)
                if (q[k] == '}')
                    close = q + k;
            if (close) {
                snprintf(out[n].body, sizeof out[n].body, "%.*s", (int)(close - q + 1), q);
                break;
            }
        }
        free(piece);
    }
    return n;
}

/* What azure-storage takes from one sub-response. */
typedef struct as_reply {
    int status;
    char content_id[16];
    char etag[128];
    char body[512]; /* the lines after the blank line, joined */
    int nheaders;
} as_reply;

/* split on '--changesetresponse_' (or '--batchresponse_' when that
 * leaves one piece), skip pieces without 'HTTP/1.1', split the rest on
 * CRLF: status from the first line, headers to the blank line, body after. */
static size_t as_read(const char *resp, as_reply *out, size_t max)
{
    const char *sep =
        strstr(resp, "--changesetresponse_") ? "--changesetresponse_" : "--batchresponse_";
    size_t n = 0;
    const char *p = resp;
    while (p && n < max) {
        const char *next = strstr(p, sep);
        size_t len = next ? (size_t)(next - p) : strlen(p);
        char *piece = strndup(p, len), *http = strstr(piece, "HTTP/1.1");
        p = next ? next + strlen(sep) : NULL;
        if (!http) {
            free(piece);
            continue;
        }
        memset(&out[n], 0, sizeof out[n]);
        out[n].status = atoi(strchr(http, ' ') + 1);
        bool in_body = false;
        char *line = strstr(http, "\r\n") ? strstr(http, "\r\n") + 2 : http + strlen(http);
        while (*line || !in_body) {
            char *end = strstr(line, "\r\n");
            size_t ln = end ? (size_t)(end - line) : strlen(line);
            if (!in_body && ln == 0) {
                in_body = true;
            } else if (in_body) {
                strncat(out[n].body, line,
                        ln < sizeof out[n].body - strlen(out[n].body) - 1
                            ? ln
                            : sizeof out[n].body - strlen(out[n].body) - 1);
            } else {
                char *colon = memchr(line, ':', ln);
                out[n].nheaders++;
                if (colon && strncasecmp(line, "content-id", 10) == 0)
                    snprintf(out[n].content_id, sizeof out[n].content_id, "%.*s",
                             (int)(ln - (size_t)(colon + 1 - line)) - 1, colon + 2);
                if (colon && strncasecmp(line, "etag", 4) == 0)
                    snprintf(out[n].etag, sizeof out[n].etag, "%.*s",
                             (int)(ln - (size_t)(colon + 1 - line)) - 1, colon + 2);
            }
            if (!end)
                break;
            line = end + 2;
        }
        free(piece);
        n++;
    }
    return n;
}

/* Checks the multipart frame: the content type names the boundary the
 * body opens with and closes with. */
static void check_frame(const char *resp, size_t len, const char *ct)
{
    const char *prefix = "multipart/mixed; boundary=batchresponse_";
    char open[128], close[128];
    assert_int_equal(strncmp(ct, prefix, strlen(prefix)), 0);
    assert_int_equal(strlen(ct), strlen(prefix) + 36);
    snprintf(open, sizeof open, "--%s\r\n", ct + strlen("multipart/mixed; boundary="));
    snprintf(close, sizeof close, "--%s--\r\n", ct + strlen("multipart/mixed; boundary="));
    assert_int_equal(strlen(resp), len);
    assert_int_equal(strncmp(resp, open, strlen(open)), 0);
    assert_true(len > strlen(close));
    assert_string_equal(resp + len - strlen(close), close);
}

static void test_write_success(void **state)
{
    fixture f = fixture_load("azurestorage_changeset.batch");
    az_batch req = parse_ok(f.content_type, f.body, f.len);
    az_header h[6][2];
    az_batch_reply r[6];
    dt_reply dt[8];
    as_reply as[8];
    char etags[6][64], locs[6][160], *ct, *resp;
    size_t len;
    (void)state;
    for (int i = 0; i < 6; i++) {
        snprintf(etags[i], sizeof etags[i], "W/\"datetime'2024-01-0%dT00%%3A00%%3A00Z'\"", i + 1);
        snprintf(locs[i], sizeof locs[i],
                 "http://127.0.0.1:10002/devstoreaccount1/mytable(PartitionKey='p',RowKey='k%d')",
                 i);
        h[i][0] = (az_header){"ETag", etags[i]};
        h[i][1] = (az_header){"Location", locs[i]};
        r[i] = (az_batch_reply){i == 0 ? 201 : 204, h[i], i == 5 ? 0 : 2, NULL, 0};
    }
    r[0].body = "{\"PartitionKey\":\"p\",\"RowKey\":\"k0\"}";
    r[0].len = strlen(r[0].body);
    resp = az_batch_write(&req, r, 6, &ct, &len);
    assert_non_null(resp);
    check_frame(resp, len, ct);
    assert_non_null(strstr(resp, "Content-Type: multipart/mixed; boundary=changesetresponse_"));

    assert_int_equal(dt_read(resp, dt, 8), 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(dt[i].status, i == 0 ? 201 : 204);
        assert_string_equal(dt[i].etag, i == 5 ? "" : etags[i]);
        if (i < 5) {
            char want[8];
            snprintf(want, sizeof want, "k%d", i);
            assert_string_equal(dt[i].row_key, want);
        }
    }
    assert_string_equal(dt[0].body, r[0].body);
    assert_string_equal(dt[1].body, "");

    assert_int_equal(as_read(resp, as, 8), 6);
    for (int i = 0; i < 6; i++) {
        char want[8] = "";
        if (i > 0)
            snprintf(want, sizeof want, "%d", i);
        assert_int_equal(as[i].status, r[i].status);
        assert_string_equal(as[i].content_id, want);
    }
    assert_string_equal(as[0].body, r[0].body);
    assert_string_equal(as[3].body, "");
    assert_string_equal(as[2].etag, etags[2]);
    assert_non_null(strstr(resp, "HTTP/1.1 204 No Content\r\nContent-ID: 1\r\n"));
    assert_non_null(strstr(resp, "DataServiceVersion: 1.0;\r\n"));
    assert_non_null(strstr(resp, "DataServiceVersion: 3.0;\r\n"));
    free(resp);
    free(ct);
    az_batch_clear(&req);
    free(f.data);
}

static void test_write_failure(void **state)
{
    fixture f = fixture_load("datatables_changeset.batch");
    az_batch req = parse_ok(f.content_type, f.body, f.len);
    const char *err = "{\"odata.error\":{\"code\":\"EntityAlreadyExists\",\"message\":{\"lang\":"
                      "\"en-US\",\"value\":\"0:The specified entity already exists.\"}}}";
    az_header h[] = {{"Content-ID", "1"},
                     {"Content-Type", "application/json;odata=minimalmetadata;streaming=true;"
                                      "charset=utf-8"},
                     {"DataServiceVersion", "3.0;"}};
    az_batch_reply r = {409, h, 3, err, strlen(err)};
    dt_reply dt[4];
    as_reply as[4];
    char *ct, *resp;
    size_t len;
    (void)state;
    resp = az_batch_write(&req, &r, 1, &ct, &len);
    check_frame(resp, len, ct);
    assert_int_equal(dt_read(resp, dt, 4), 1);
    assert_int_equal(dt[0].status, 409);
    assert_string_equal(dt[0].body, err);
    assert_int_equal(as_read(resp, as, 4), 1);
    assert_int_equal(as[0].status, 409);
    assert_string_equal(as[0].content_id, "1");
    assert_string_equal(as[0].body, err);
    /* The caller's DataServiceVersion and Content-ID are not doubled. */
    assert_null(strstr(strstr(resp, "DataServiceVersion") + 1, "DataServiceVersion"));
    assert_null(strstr(strstr(resp, "Content-ID") + 1, "Content-ID"));
    assert_non_null(strstr(resp, "HTTP/1.1 409 Conflict\r\n"));
    free(resp);
    free(ct);
    az_batch_clear(&req);
    free(f.data);
}

/* A lone query is answered outside any change set. */
static void test_write_query(void **state)
{
    fixture f = fixture_load("azurestorage_query.batch");
    az_batch req = parse_ok(f.content_type, f.body, f.len);
    const char *entity = "{\"PartitionKey\":\"p\",\"RowKey\":\"r\",\"A\":1}";
    az_header h[] = {{"Content-Type", "application/json;odata=minimalmetadata"},
                     {"ETag", "W/\"x\""}};
    az_batch_reply r = {200, h, 2, entity, strlen(entity)};
    as_reply as[4];
    char *ct, *resp;
    size_t len;
    (void)state;
    resp = az_batch_write(&req, &r, 1, &ct, &len);
    check_frame(resp, len, ct);
    assert_null(strstr(resp, "changesetresponse"));
    assert_int_equal(as_read(resp, as, 4), 1);
    assert_int_equal(as[0].status, 200);
    assert_string_equal(as[0].etag, "W/\"x\"");
    assert_string_equal(as[0].body, entity);
    free(resp);
    free(ct);
    az_batch_clear(&req);
    free(f.data);
}

/* CR and LF in a header value cannot start a header of their own; names
 * that are not tokens are left out; odd statuses still make a status
 * line; every response gets its own boundaries. */
static void test_write_hostile_headers(void **state)
{
    az_header h[] = {{"ETag", "a\r\nX-Injected: 1"},
                     {"Bad Name", "v"},
                     {"", "v"},
                     {NULL, "v"},
                     {"N:x", "v"},
                     {"Ok", NULL}};
    az_batch_reply r = {42, h, 6, NULL, 0};
    char *ct, *ct2, *resp, *resp2;
    size_t len, len2;
    (void)state;
    resp = az_batch_write(NULL, &r, 1, &ct, &len);
    check_frame(resp, len, ct);
    assert_null(strstr(resp, "\nX-Injected"));
    assert_non_null(strstr(resp, "ETag: a  X-Injected: 1\r\n"));
    assert_null(strstr(resp, "Bad Name"));
    assert_null(strstr(resp, "N:x"));
    assert_non_null(strstr(resp, "Ok: \r\n"));
    assert_non_null(strstr(resp, "HTTP/1.1 500 Internal Server Error\r\n"));
    resp2 = az_batch_write(NULL, &r, 1, &ct2, &len2);
    assert_string_not_equal(ct, ct2);
    free(resp);
    free(resp2);
    free(ct);
    free(ct2);
}

static void test_write_empty(void **state)
{
    char *ct, *resp;
    size_t len;
    dt_reply dt[2];
    (void)state;
    resp = az_batch_write(NULL, NULL, 0, &ct, &len);
    check_frame(resp, len, ct);
    assert_int_equal(dt_read(resp, dt, 2), 0);
    free(resp);
    free(ct);
    assert_null(az_batch_write(NULL, NULL, 1, &ct, &len));
    assert_null(ct);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_tables_changeset),
        cmocka_unit_test(test_data_tables_single),
        cmocka_unit_test(test_azure_storage_changeset),
        cmocka_unit_test(test_azure_storage_query),
        cmocka_unit_test(test_line_ends_swapped),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_quoted_and_odd_boundaries),
        cmocka_unit_test(test_mime_slack),
        cmocka_unit_test(test_operation_urls),
        cmocka_unit_test(test_request_lines),
        cmocka_unit_test(test_mime_content_id),
        cmocka_unit_test(test_binary_body),
        cmocka_unit_test(test_bad_content_types),
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_nul_in_headers),
        cmocka_unit_test(test_error_index),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_hundred_ops),
        cmocka_unit_test(test_too_many_ops),
        cmocka_unit_test(test_write_success),
        cmocka_unit_test(test_write_failure),
        cmocka_unit_test(test_write_query),
        cmocka_unit_test(test_write_hostile_headers),
        cmocka_unit_test(test_write_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

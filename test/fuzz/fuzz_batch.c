/*
 * fuzz_batch.c -- libFuzzer target for the $batch reader and writer.
 *
 * Input: the first line is the request's Content-Type, the rest is its
 * body, handed over in a buffer of exactly its length (no NUL after it),
 * so AddressSanitizer sees any read past the end. Beyond "never crash or
 * leak", it checks the reader's promises: a rejection is a 400
 * InvalidInput with nothing left allocated; an accepted batch holds one
 * lone GET or 1..100 operations of known methods, each with a path for
 * az_resource_parse and a NUL-terminated body of the stated length. Every
 * accepted batch is then answered with az_batch_write, echoing each
 * operation's headers back as reply headers, and the response must be
 * framed exactly: opened and closed by its own boundary, with one
 * delimiter line per reply however hostile the echoed headers were. A
 * broken promise aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "az.h"

static void fz_fail(const char *what)
{
    fprintf(stderr, "fuzz_batch: %s\n", what);
    abort();
}

static bool fz_method_known(const char *m)
{
    static const char *const methods[] = {"POST", "PUT", "MERGE", "DELETE", "GET", "PATCH"};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
        if (strcmp(m, methods[i]) == 0)
            return true;
    return false;
}

static void fz_check_part(const az_batch_part *p)
{
    az_resource r;
    mt_status st;
    if (!p->method || !p->url || !p->path || !p->body)
        fz_fail("an operation lacks a field");
    if (!fz_method_known(p->method))
        fz_fail("an operation has an unknown method");
    if (p->path[0] != '/')
        fz_fail("a path does not start with '/'");
    if (p->body[p->len] != '\0')
        fz_fail("a body is not NUL-terminated at its length");
    if (p->nheaders > 100)
        fz_fail("too many headers");
    for (size_t i = 0; i < p->nheaders; i++)
        if (az_batch_part_header(p, p->headers[i].name) == NULL)
            fz_fail("a header cannot be found by its own name");
    st = az_resource_parse(p->path, p->query, &r);
    if (!mt_is_ok(&st) && (st.http != 400 || r.table || r.pk || r.rk))
        fz_fail("a path rejection is not a clean 400");
    az_resource_clear(&r);
}

/* Counts the lines of resp that start with "--" + boundary. */
static size_t fz_delimiters(const char *resp, const char *boundary)
{
    size_t n = 0, bn = strlen(boundary);
    for (const char *line = resp; line && *line;) {
        if (line[0] == '-' && line[1] == '-' && strncmp(line + 2, boundary, bn) == 0)
            n++;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return n;
}

static void fz_check_response(const az_batch *b)
{
    az_batch_reply replies[MT_BATCH_MAX];
    char *ct = NULL, *resp;
    size_t len;
    const char *bound, *cs;

    for (size_t i = 0; i < b->n; i++)
        replies[i] = (az_batch_reply){i == 0 ? 201 : 204, b->parts[i].headers, b->parts[i].nheaders,
                                      NULL, 0};
    resp = az_batch_write(b, replies, b->n, &ct, &len);
    if (!resp || !ct)
        fz_fail("the writer failed");
    if (strlen(resp) != len)
        fz_fail("the response length is wrong");
    bound = strstr(ct, "boundary=");
    if (!bound || strncmp(resp, "--", 2) != 0 ||
        strncmp(resp + 2, bound + 9, strlen(bound + 9)) != 0)
        fz_fail("the response does not open with its boundary");
    if (fz_delimiters(resp, bound + 9) != (b->changeset_boundary ? 2 : b->n + 1))
        fz_fail("the batch delimiters are off");
    cs = strstr(resp, "boundary=changesetresponse_");
    if (b->changeset_boundary) {
        char cid[64];
        if (!cs)
            fz_fail("the change set has no boundary");
        snprintf(cid, sizeof cid, "%.*s", (int)strcspn(cs + 9, "\r\n"), cs + 9);
        if (fz_delimiters(resp, cid) != b->n + 1)
            fz_fail("a reply header broke the change set framing");
    }
    free(resp);
    free(ct);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ctn = nl ? (size_t)(nl - data) : size;
    char *ct = malloc(ctn + 1), *body;
    size_t blen = nl ? size - ctn - 1 : 0;
    az_batch b;
    mt_status st;

    memcpy(ct, data, ctn);
    ct[ctn] = '\0';
    body = malloc(blen ? blen : 1);
    if (blen)
        memcpy(body, nl + 1, blen);
    st = az_batch_parse(ct, body, blen, &b);
    if (!mt_is_ok(&st)) {
        if (st.http != 400 || strcmp(st.code, MT_ERR_INVALID_INPUT) != 0)
            fz_fail("a rejection is not 400 InvalidInput");
        if (b.parts || b.n || b.boundary || b.changeset_boundary)
            fz_fail("a rejection left something behind");
    } else {
        if (!b.boundary || b.n < 1 || b.n > MT_BATCH_MAX)
            fz_fail("an accepted batch has a bad shape");
        if (!b.changeset_boundary && (b.n != 1 || strcmp(b.parts[0].method, "GET") != 0))
            fz_fail("a batch without a change set is not one query");
        for (size_t i = 0; i < b.n; i++) {
            fz_check_part(&b.parts[i]);
            if (b.changeset_boundary && strcmp(b.parts[i].method, "GET") == 0)
                fz_fail("a change set holds a query");
        }
        fz_check_response(&b);
    }
    az_batch_clear(&b);
    free(body);
    free(ct);
    return 0;
}

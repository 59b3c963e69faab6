/*
 * fuzz_http_answer.c -- libFuzzer target for the backend client's reader of
 * HTTP/1.1 answers (azure/client/az_http_parse.c).
 *
 * Input: the first byte picks how the rest is cut into pieces (1 to 64
 * bytes each, as reads from a socket would cut it); the rest is what a
 * server sent, and the connection ends after it. Beyond "never crash or
 * leak", it checks that the pieces make no difference: the answer read in
 * pieces and the answer read whole end the same way, with the same
 * status, ETag, continuation and body; that a whole answer never claims
 * more bytes than it was given, nor a body longer than the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "az_client_internal.h"

static void fz_fail(const char *what)
{
    fprintf(stderr, "fuzz_http_answer: %s\n", what);
    abort();
}

typedef struct fz_read {
    az_hp_rc rc;
    long status;
    size_t used;
    az_resp r;
} fz_read;

/* Reads s[0..n) in pieces of piece bytes (0: all at once), then the end of
 * the connection when the answer wants more. */
static void fz_read_answer(const uint8_t *s, size_t n, size_t piece, fz_read *out)
{
    memset(out, 0, sizeof *out);
    az_hparse p;
    az_hparse_init(&p, &out->r);
    az_hp_rc rc = AZ_HP_MORE;
    size_t off = 0;
    while (rc == AZ_HP_MORE && off < n) {
        size_t k = piece && n - off > piece ? piece : n - off, used = 0;
        rc = az_hparse_feed(&p, (const char *)s + off, k, &used);
        if (used > k)
            fz_fail("used more bytes than fed");
        if (rc == AZ_HP_MORE && used != k)
            fz_fail("wants more yet left bytes unused");
        off += used;
    }
    if (rc == AZ_HP_MORE)
        rc = az_hparse_eof(&p);
    out->rc = rc;
    out->status = p.status;
    out->used = off;
    az_hparse_clear(&p);
}

static bool fz_same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = 1 + data[0] % 64;
    data++, size--;
    fz_read whole, cut;
    fz_read_answer(data, size, 0, &whole);
    fz_read_answer(data, size, piece, &cut);
    if (whole.rc != cut.rc)
        fz_fail("pieces changed how the answer ended");
    if (whole.rc == AZ_HP_END) {
        if (whole.used != cut.used || whole.status != cut.status)
            fz_fail("pieces changed the answer's length or status");
        if (whole.status < 200 || whole.status > 999)
            fz_fail("a final answer with an interim or impossible status");
        if (whole.r.body.len != cut.r.body.len || whole.r.body.len > size ||
            (whole.r.body.len && memcmp(whole.r.body.p, cut.r.body.p, whole.r.body.len) != 0))
            fz_fail("pieces changed the body");
        if (strcmp(whole.r.etag, cut.r.etag) != 0 ||
            strcmp(whole.r.content_type, cut.r.content_type) != 0 ||
            !fz_same_str(whole.r.next_pk, cut.r.next_pk) ||
            !fz_same_str(whole.r.next_rk, cut.r.next_rk))
            fz_fail("pieces changed a header");
    }
    az_resp_clear(&whole.r);
    az_resp_clear(&cut.r);
    return 0;
}

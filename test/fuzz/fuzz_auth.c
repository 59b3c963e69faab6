/*
 * fuzz_auth.c -- libFuzzer target for request authentication.
 *
 * Input: one flag byte, then lines separated by '\n':
 *
 *   method, path, query, table, pk, rk, policy ("start|expiry|perms"),
 *   then up to eight "Name: value" headers.
 *
 * Flag bits: 0 https, 1-2 which client address, 3 sign the query as an
 * account SAS, 4 sign it as a table SAS, 5 pass no ACL lookup.
 *
 * A fuzzer cannot guess an HMAC, so without help it would never get past
 * signature checks. Flags 3 and 4 make the target sign the query's own
 * fields (read raw, up to the first '&') with the development key, so the
 * checks behind the signature -- times, addresses, protocols, letters,
 * stored policies, grants -- see arbitrary values too. The string-to-sign
 * is written out here from the documentation, independently of az_auth.c.
 *
 * Promises checked beyond "never crash or leak": a failure is a 403 (the
 * account is always configured, so never a 500), and leaves the grant
 * empty; an empty grant allows nothing; a Shared Key grant allows all.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "az.h"

#define FZ_LINES 15
#define FZ_HEADERS 8
#define FZ_NOW 1704164645 /* Tue, 02 Jan 2024 03:04:05 GMT */

/* The development account's key, Eby8vdM0...Gw== decoded, so that seeds
 * made by the SDKs carry valid signatures. */
static const uint8_t fz_key[64] = {
    0x11, 0xbc, 0xbc, 0xbd, 0xd3, 0x34, 0xdb, 0x13, 0x4e, 0x72, 0xa1, 0x65, 0xa9, 0x4c, 0x09, 0x3c,
    0xb9, 0x66, 0x12, 0xd9, 0x42, 0x0d, 0x72, 0x75, 0x39, 0x4c, 0xc5, 0x4f, 0x9d, 0x2e, 0x49, 0x16,
    0x7a, 0x20, 0x5b, 0x2e, 0x16, 0xad, 0x94, 0x54, 0x4a, 0xc2, 0xcf, 0x82, 0x3a, 0xb6, 0xaf, 0xca,
    0xd5, 0x26, 0x45, 0x3d, 0x33, 0xad, 0xaf, 0xf2, 0x81, 0x1c, 0x17, 0xa4, 0xb2, 0x81, 0x8c, 0x1b};

typedef struct fz_input {
    char *line[FZ_LINES]; /* each NUL-terminated, in one allocation */
    size_t n;
} fz_input;

static const char *fz_line(const fz_input *in, size_t i)
{
    return i < in->n ? in->line[i] : "";
}

static const char *fz_header(void *ctx, const char *name)
{
    const fz_input *in = ctx;
    size_t nlen = strlen(name);
    for (size_t i = 7; i < in->n && i < 7 + FZ_HEADERS; i++) {
        const char *l = in->line[i];
        if (strncasecmp(l, name, nlen) == 0 && l[nlen] == ':')
            return l[nlen + 1] == ' ' ? l + nlen + 2 : l + nlen + 1;
    }
    return NULL;
}

/* Policy line "start|expiry|perms", truncated to the identifier's fields. */
static bool fz_lookup(void *ctx, const char *table, const char *id, az_signed_identifier *out)
{
    const char *p = ctx;
    (void)table;
    memset(out, 0, sizeof *out);
    if (strcmp(id, "none") == 0)
        return false;
    snprintf(out->id, sizeof out->id, "%s", id);
    char *fields[3] = {out->start, out->expiry, out->permission};
    size_t caps[3] = {sizeof out->start, sizeof out->expiry, sizeof out->permission};
    for (int f = 0; f < 3 && p; f++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        snprintf(fields[f], caps[f], "%.*s", (int)len, p);
        p = bar ? bar + 1 : NULL;
    }
    return true;
}

/* The raw value of name in query, copied into out (empty when absent). */
static const char *fz_raw(const char *query, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    out[0] = '\0';
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            snprintf(out, cap, "%.*s", (int)(len - nlen - 1), p + nlen + 1);
            break;
        }
        p = amp ? amp + 1 : NULL;
    }
    return out;
}

/* Appends "&sig=<encoded signature>" over the documented string-to-sign. */
static char *fz_sign_query(const char *query, bool account)
{
    static const char *const acct_f[] = {"sp", "ss", "srt", "st", "se", "sip", "spr", "sv"};
    static const char *const table_f[] = {"sp",  "st", "se",  "",    "si",  "sip",
                                          "spr", "sv", "spk", "srk", "epk", "erk"};
    char sts[16384] = "", v[1024], *sig, *out;
    size_t n = 0, cap;

    if (account)
        n += (size_t)snprintf(sts + n, sizeof sts - n, "devstoreaccount1\n");
    /* Nine fields of at most 1023 bytes (twelve for a table SAS) fit in
     * sts, so no snprintf below can run past it. */
    for (size_t i = 0; account && i < 8; i++)
        n += (size_t)snprintf(sts + n, sizeof sts - n, "%s\n",
                              fz_raw(query, acct_f[i], v, sizeof v));
    if (account && strcmp(fz_raw(query, "sv", v, sizeof v), "2020-12-06") >= 0)
        n += (size_t)snprintf(sts + n, sizeof sts - n, "%s\n", fz_raw(query, "ses", v, sizeof v));
    for (size_t i = 0; !account && i < 12; i++) {
        if (i == 3) {
            fz_raw(query, "tn", v, sizeof v);
            for (char *c = v; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
            n += (size_t)snprintf(sts + n, sizeof sts - n, "/table/devstoreaccount1/%s\n", v);
        } else {
            n += (size_t)snprintf(sts + n, sizeof sts - n, i == 11 ? "%s" : "%s\n",
                                  fz_raw(query, table_f[i], v, sizeof v));
        }
        if (n >= sizeof sts)
            return NULL;
    }
    if (n >= sizeof sts || !(sig = az_sign(fz_key, sizeof fz_key, sts)))
        return NULL;
    cap = strlen(query) + 3 * strlen(sig) + 8;
    if ((out = malloc(cap))) {
        n = (size_t)snprintf(out, cap, "%s&sig=", query);
        for (const char *p = sig; *p; p++)
            n += (size_t)(*p == '+' || *p == '/' || *p == '='
                              ? snprintf(out + n, cap - n, "%%%02X", (unsigned char)*p)
                              : snprintf(out + n, cap - n, "%c", *p));
    }
    free(sig);
    return out;
}

static void fz_split(char *buf, fz_input *in)
{
    in->n = 0;
    in->line[in->n++] = buf;
    for (char *p = buf; *p && in->n < FZ_LINES; p++) {
        if (*p == '\n') {
            *p = '\0';
            in->line[in->n++] = p + 1;
        }
    }
}

/* Every operation shape the proxy asks about, on the fuzzed table/keys. */
static void fz_grants(const az_grant *g, const fz_input *in)
{
    static const unsigned perms[] = {0,
                                     AZ_PERM_READ,
                                     AZ_PERM_ADD,
                                     AZ_PERM_UPDATE,
                                     AZ_PERM_DELETE,
                                     AZ_PERM_ADD | AZ_PERM_UPDATE,
                                     AZ_PERM_LIST,
                                     AZ_PERM_CREATE,
                                     AZ_PERM_WRITE};
    const char *table = fz_line(in, 3), *pk = fz_line(in, 4), *rk = fz_line(in, 5);
    bool empty = !g->shared_key && !g->perms && !g->table[0];

    for (size_t i = 0; i < sizeof perms / sizeof *perms; i++) {
        for (int level = 0; level < 2; level++) {
            mt_status a = az_grant_check(g, perms[i], level, table, pk, rk);
            mt_status b = az_grant_check(g, perms[i], level, NULL, NULL, NULL);
            mt_status c = az_grant_check(g, perms[i], level, table, pk, NULL);
            if ((empty && (mt_is_ok(&a) || mt_is_ok(&b) || mt_is_ok(&c))) ||
                (g->shared_key && !(mt_is_ok(&a) && mt_is_ok(&b) && mt_is_ok(&c))) ||
                (!mt_is_ok(&a) && a.http != 403))
                abort();
        }
    }
}

/* A grant made straight from the input, so key ranges and table names
 * meet arbitrary bytes even without a valid SAS. */
static void fz_raw_grant(const fz_input *in, uint8_t flags)
{
    az_grant g;
    memset(&g, 0, sizeof g);
    g.perms = flags;
    g.object_table = flags & 1;
    g.container_table = flags & 2;
    g.service_table = flags & 4;
    snprintf(g.table, sizeof g.table, "%s", flags & 8 ? fz_line(in, 3) : "");
    snprintf(g.spk, sizeof g.spk, "%s", fz_line(in, 4));
    snprintf(g.srk, sizeof g.srk, "%s", fz_line(in, 5));
    snprintf(g.epk, sizeof g.epk, "%s", fz_line(in, 6));
    snprintf(g.erk, sizeof g.erk, "%s", fz_line(in, 2));
    fz_grants(&g, in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ips[] = {NULL, "127.0.0.1", "10.0.0.5", "::ffff:10.0.0.5"};
    az_account acct = {"devstoreaccount1", fz_key, sizeof fz_key};
    fz_input in;
    az_grant g;
    char *buf, *query = NULL;
    uint8_t flags;

    if (size < 1 || size > 16384)
        return 0;
    flags = data[0];
    if (!(buf = malloc(size)))
        return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    fz_split(buf, &in);

    if (flags & 0x18)
        query = fz_sign_query(fz_line(&in, 2), flags & 0x08);
    az_http_request req = {fz_line(&in, 0),
                           fz_line(&in, 1),
                           query ? query : (in.n > 2 ? in.line[2] : NULL),
                           fz_header,
                           &in,
                           ips[(flags >> 1) & 3],
                           flags & 1,
                           FZ_NOW};
    mt_status st =
        az_auth_check(&acct, &req, flags & 0x20 ? NULL : fz_lookup, (void *)fz_line(&in, 6), &g);
    if (!mt_is_ok(&st) && (st.http != 403 || g.shared_key || g.perms || g.table[0]))
        abort();
    fz_grants(&g, &in);
    fz_raw_grant(&in, flags);
    free(query);
    free(buf);
    return 0;
}

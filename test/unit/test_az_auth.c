/*
 * test_az_auth.c -- Shared Key, Shared Key Lite, account and table SAS,
 * and what a grant may do.
 *
 * The signatures below were produced by the real SDKs, not by this code:
 * @azure/data-tables 13.3.2 (its SharedKeyLite policy, generateTableSas,
 * generateAccountSas), legacy azure-storage 2.10.7 (SharedKeyTable,
 * generateSharedAccessSignature, generateAccountSharedAccessSignature) and
 * @azure/storage-blob 12.32.0 (account SAS of versions 2020-12-06 and later,
 * which carry the encryption-scope line). The "wire" cases are requests
 * those clients actually sent to a recording server, byte for byte, so
 * they also pin how a path-style URL is signed: the account segment of
 * the path follows the account name ("/devstoreaccount1/devstoreaccount1/
 * Tables"). If one of them fails, the proxy rejects a real client.
 *
 * Cases that need a SAS no SDK will write (a bad sip, ss without t, an old
 * version) sign their own string-to-sign, spelled out in the test from
 * the documentation rather than from az_auth.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "az.h"

#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

#define T_2024 1704164645 /* Tue, 02 Jan 2024 03:04:05 GMT */
#define T_ST 1704067200   /* 2024-01-01T00:00:00Z */
#define T_SE 1704240000   /* 2024-01-03T00:00:00Z */
#define T_WIRE 1795620657 /* Wed, 25 Nov 2026 15:30:57 GMT */
#define DATE_2024 "Tue, 02 Jan 2024 03:04:05 GMT"
#define DATE_WIRE "Wed, 25 Nov 2026 15:30:57 GMT"

static uint8_t dev_key[64];
static az_account dev;

static int setup(void **state)
{
    (void)state;
    uint8_t buf[72];
    int n = EVP_DecodeBlock(buf, (const unsigned char *)DEV_KEY, (int)strlen(DEV_KEY));
    if (n != 66) /* 64 bytes plus two of padding */
        return -1;
    memcpy(dev_key, buf, sizeof dev_key);
    dev = (az_account){"devstoreaccount1", dev_key, sizeof dev_key};
    return 0;
}

/* ------------------------------------------------------------------------ */
/* A request as the proxy would describe it.                                 */

typedef struct call {
    const char *method, *path, *query;
    const char *hname[6];
    const char *hval[6];
    time_t now;
    const char *ip;
    bool https;
} call;

static const char *get_header(void *ctx, const char *name)
{
    const call *c = ctx;
    for (int i = 0; i < 6 && c->hname[i]; i++)
        if (strcasecmp(c->hname[i], name) == 0)
            return c->hval[i];
    return NULL;
}

/* The stored access policies of table "mytable". */
static bool lookup(void *ctx, const char *table, const char *id, az_signed_identifier *out)
{
    int *calls = ctx;
    if (calls)
        (*calls)++;
    if (strcasecmp(table, "mytable") != 0)
        return false;
    memset(out, 0, sizeof *out);
    if (strcmp(id, "policy1") == 0) {
        strcpy(out->id, id);
        strcpy(out->permission, "r");
        strcpy(out->start, "2024-01-01T00:00:00.0000000Z");
        strcpy(out->expiry, "2024-01-03T00:00:00.0000000Z");
        return true;
    }
    if (strcmp(id, "open") == 0) { /* leaves every field to the SAS */
        strcpy(out->id, id);
        return true;
    }
    return false;
}

static mt_status check(call c, az_grant *g)
{
    az_http_request r = {c.method ? c.method : "GET", c.path,  c.query, get_header, &c,
                         c.ip ? c.ip : "127.0.0.1",   c.https, c.now};
    return az_auth_check(&dev, &r, lookup, NULL, g);
}

#define assert_ok(st)                                                                              \
    do {                                                                                           \
        mt_status st_ = (st);                                                                      \
        if (!mt_is_ok(&st_))                                                                       \
            fail_msg("%d %s: %s", st_.http, st_.code, st_.message);                                \
    } while (0)

#define assert_denied(st, c)                                                                       \
    do {                                                                                           \
        mt_status st_ = (st);                                                                      \
        if (st_.http != 403 || strcmp(st_.code, (c)) != 0)                                         \
            fail_msg("want 403 %s, got %d %s: %s", (c), st_.http, st_.code, st_.message);          \
        assert_true(st_.message[0] != '\0');                                                       \
    } while (0)

/* A SAS query: fields followed by sig over sts, percent-encoded. */
static void signed_query(char *out, size_t cap, const char *fields, const char *sts)
{
    char *sig = az_sign(dev_key, sizeof dev_key, sts);
    size_t n;
    assert_non_null(sig);
    n = (size_t)snprintf(out, cap, "%s&sig=", fields);
    for (const char *p = sig; *p && n + 4 < cap; p++) {
        if (*p == '+' || *p == '/' || *p == '=')
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", (unsigned char)*p);
        else
            out[n++] = *p;
    }
    out[n] = '\0';
    free(sig);
}

/* ------------------------------------------------------------------------ */
/* az_sign.                                                                  */

static void test_sign(void **state)
{
    (void)state;
    char *s = az_sign(dev_key, sizeof dev_key, "hello\nworld");
    assert_string_equal(s, "ST254um77q2sshBlZ4MRhMmJ69PxColm/Pudr2xlM/E=");
    free(s);
    s = az_sign(dev_key, sizeof dev_key, "");
    assert_string_equal(s, "RNeMV4QhAsdhJ2sGUgufA/AfRsaKXZU2cEJdUsvj4NY=");
    free(s);
    assert_null(az_sign(NULL, 0, "x"));
    assert_null(az_sign(dev_key, sizeof dev_key, NULL));
}

/* base64(HMAC-SHA256) computed afresh, beside the signer's kept ones. */
static void sign_fresh(const char *msg, char out[45])
{
    unsigned char mac[32];
    size_t n = 0;
    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, dev_key, sizeof dev_key,
                              (const unsigned char *)msg, strlen(msg), mac, sizeof mac, &n));
    assert_int_equal(n, 32);
    EVP_EncodeBlock((unsigned char *)out, mac, 32);
}

/* The signer keeps recent messages and their signatures: interleaved,
 * evicted, equal in length but one byte apart, or too long to keep, each
 * message still gets its own signature. */
static void test_sign_kept(void **state)
{
    (void)state;
    static char long_msg[3000];
    memset(long_msg, 'x', sizeof long_msg - 1);
    const char *msgs[] = {"GET\n/a", "GET\n/b", "GET\n/c", "GET\n/a", "GET\n/b",
                          "GET\n/a", "GET\n/d", "GET\n/a", long_msg,  long_msg,
                          "GET\n/d", "GET\n/c", "GET\n/c"};
    for (size_t i = 0; i < sizeof msgs / sizeof *msgs; i++) {
        char want[45];
        sign_fresh(msgs[i], want);
        char *got = az_sign(dev_key, sizeof dev_key, msgs[i]);
        assert_non_null(got);
        assert_string_equal(got, want);
        free(got);
    }
}

/* ------------------------------------------------------------------------ */
/* Shared Key Lite and Shared Key against the SDKs.                          */

static call lite(const char *method, const char *path, const char *query, const char *sig)
{
    static char auth[128];
    snprintf(auth, sizeof auth, "SharedKeyLite devstoreaccount1:%s", sig);
    return (call){.method = method,
                  .path = path,
                  .query = query,
                  .hname = {"x-ms-date", "Authorization"},
                  .hval = {DATE_2024, auth},
                  .now = T_2024};
}

static void test_lite_data_tables(void **state)
{
    (void)state;
    az_grant g;
    assert_ok(check(lite("GET", "/devstoreaccount1/Tables", NULL,
                         "vqH9cAkS8xJlO5MTje1QvTgbpxIibsQNqN4+xo6qZpI="),
                    &g));
    assert_true(g.shared_key);
    assert_ok(az_grant_check(&g, AZ_PERM_CREATE, true, "anything", NULL, NULL));
    assert_ok(check(lite("POST", "/devstoreaccount1/mytable", NULL,
                         "D/+AiS15bP7+j+7XZ1Itqp9tqCRgest5YrOcm0k4mn8="),
                    &g));
    assert_ok(check(lite("GET", "/devstoreaccount1/mytable(PartitionKey='p%201',RowKey='r''1')",
                         NULL, "WhjkORFZlVvsQ5OSilWmglVJdwc1fwIizOJ+CWfVn+o="),
                    &g));
    /* Only comp joins the resource; other query parameters do not. */
    assert_ok(check(lite("GET", "/devstoreaccount1/mytable", "comp=acl",
                         "HsfwQzG1mQcsQIdHGa/8koyMB6ALW2DpEogNGpMxDO0="),
                    &g));
    assert_ok(check(lite("GET", "/devstoreaccount1/mytable", "timeout=5&comp=acl&x=1",
                         "HsfwQzG1mQcsQIdHGa/8koyMB6ALW2DpEogNGpMxDO0="),
                    &g));
    /* Shared Key Lite does not sign the verb. */
    assert_ok(check(lite("DELETE", "/devstoreaccount1/Tables", NULL,
                         "vqH9cAkS8xJlO5MTje1QvTgbpxIibsQNqN4+xo6qZpI="),
                    &g));
}

/* Requests @azure/data-tables and azure-storage put on the wire. */
static void test_wire_captures(void **state)
{
    (void)state;
    az_grant g;
    call c = {
        .method = "POST",
        .path = "/devstoreaccount1/Tables",
        .hname = {"x-ms-date", "Content-Type", "Authorization"},
        .hval = {DATE_WIRE, "application/json;odata=nometadata",
                 "SharedKeyLite devstoreaccount1:fZWmXnDViSwbb01M+8W5F11s1dDKvlphrwOg3d8IPSY="},
        .now = T_WIRE};
    assert_ok(check(c, &g));

    c = (call){
        .method = "GET",
        .path = "/devstoreaccount1/mytable(PartitionKey='p%201',RowKey='r''1')",
        .hname = {"x-ms-date", "Authorization"},
        .hval = {DATE_WIRE,
                 "SharedKeyLite devstoreaccount1:5Bggx2Z495TEkHlfxtM+4VUGIDk96reku5ZjNyZvkX4="},
        .now = T_WIRE};
    assert_ok(check(c, &g));

    /* azure-storage signs the full Shared Key string. */
    c = (call){.method = "POST",
               .path = "/devstoreaccount1/Tables",
               .hname = {"x-ms-date", "Content-Type", "Authorization"},
               .hval = {DATE_WIRE, "application/json",
                        "SharedKey devstoreaccount1:K4ryksGQF3as0e7/EOglfMpzp+2iSglYclQFQlVvXi8="},
               .now = T_WIRE};
    assert_ok(check(c, &g));
    assert_true(g.shared_key);

    c = (call){.method = "GET",
               .path = "/devstoreaccount1/mytable(PartitionKey=%27p%201%27,RowKey=%27r%27%271%27)",
               .hname = {"x-ms-date", "Content-Type", "Authorization"},
               .hval = {DATE_WIRE, "",
                        "SharedKey devstoreaccount1:3GLl60MWT1Wm03quI6d3b3qmguZmkVeDbGmkNvSDoq4="},
               .now = T_WIRE};
    assert_ok(check(c, &g));

    c = (call){.method = "POST",
               .path = "/devstoreaccount1/mytable",
               .hname = {"x-ms-date", "Content-Type", "Authorization"},
               .hval = {DATE_WIRE, "application/json",
                        "SharedKey devstoreaccount1:/GJCvw+sCPolpDHTW5XRKovAvdswLhp5oIGDxt4jJko="},
               .now = T_WIRE};
    assert_ok(check(c, &g));
    /* Same request under another verb: Shared Key signs the verb. */
    c.method = "PUT";
    assert_denied(check(c, &g), "AuthenticationFailed");
    assert_false(g.shared_key);
}

static void test_shared_key_md5_comp(void **state)
{
    (void)state;
    az_grant g;
    call c = {.method = "PUT",
              .path = "/devstoreaccount1/mytable",
              .query = "comp=acl",
              .hname = {"x-ms-date", "Content-Type", "Content-MD5", "Authorization"},
              .hval = {DATE_2024, "application/xml", "1B2M2Y8AsgTpgAmY7PhCfg==",
                       "SharedKey devstoreaccount1:dN0EZLvZUREO0NbiDyyIXMJmAbAgteVMGkPOWWfgTR8="},
              .now = T_2024};
    assert_ok(check(c, &g));
    c.hval[2] = "AAAAAAAAAAAAAAAAAAAAAA==";
    assert_denied(check(c, &g), "AuthenticationFailed");
    c.hval[2] = "1B2M2Y8AsgTpgAmY7PhCfg==";
    c.query = "comp=properties";
    assert_denied(check(c, &g), "AuthenticationFailed");
    c.query = "comp=acl&comp=acl";
    assert_denied(check(c, &g), "AuthenticationFailed");
}

/* Date without x-ms-date, x-ms-date winning over Date, and the host-style
 * resource that lacks the doubled account. */
static void test_shared_key_dates_and_resource(void **state)
{
    (void)state;
    az_grant g;
    char auth[128];
    char *sig = az_sign(dev_key, sizeof dev_key,
                        "GET\n\n\n" DATE_2024 "\n/devstoreaccount1/devstoreaccount1/Tables");
    snprintf(auth, sizeof auth, "SharedKey devstoreaccount1:%s", sig);
    free(sig);
    call c = {.method = "GET",
              .path = "/devstoreaccount1/Tables",
              .hname = {"Date", "Authorization"},
              .hval = {DATE_2024, auth},
              .now = T_2024};
    assert_ok(check(c, &g));
    /* With x-ms-date present, Date is not what was signed. */
    c.hname[2] = "x-ms-date";
    c.hval[2] = "Tue, 02 Jan 2024 03:04:06 GMT";
    assert_denied(check(c, &g), "AuthenticationFailed");

    sig = az_sign(dev_key, sizeof dev_key, DATE_2024 "\n/devstoreaccount1/Tables");
    snprintf(auth, sizeof auth, "SharedKeyLite devstoreaccount1:%s", sig);
    free(sig);
    c = (call){.method = "GET",
               .path = "/devstoreaccount1/Tables",
               .hname = {"x-ms-date", "Authorization"},
               .hval = {DATE_2024, auth},
               .now = T_2024};
    assert_ok(check(c, &g));
    /* ... but only as the same resource. */
    c.path = "/devstoreaccount1/Tables()";
    assert_denied(check(c, &g), "AuthenticationFailed");
}

static void test_shared_key_rejections(void **state)
{
    (void)state;
    az_grant g;
    const char *good =
        "SharedKeyLite devstoreaccount1:vqH9cAkS8xJlO5MTje1QvTgbpxIibsQNqN4+xo6qZpI=";
    call c = {.method = "GET",
              .path = "/devstoreaccount1/Tables",
              .hname = {"x-ms-date", "Authorization"},
              .hval = {DATE_2024, good},
              .now = T_2024};
    assert_ok(check(c, &g));

    const char *bad_headers[] = {
        "Bearer abc",
        "SharedKeyLite",
        "SharedKeyLite devstoreaccount1",
        "sharedkeylite devstoreaccount1:vqH9cAkS8xJlO5MTje1QvTgbpxIibsQNqN4+xo6qZpI=",
        "SharedKeyLite otheraccount:vqH9cAkS8xJlO5MTje1QvTgbpxIibsQNqN4+xo6qZpI=",
        "SharedKey devstoreaccount1:vqH9cAkS8xJlO5MTje1QvTgbpxIibsQNqN4+xo6qZpI=",
        "SharedKeyLite devstoreaccount1:vqH9cAkS8xJlO5MTje1QvTgbpxIibsQNqN4+xo6qZpA=",
        "SharedKeyLite devstoreaccount1:vqH9cAkS8xJlO5MTje1QvTgbpxIibsQNqN4+xo6qZpI",
        /* the same length, differing only in the last character (the padding) */
        "SharedKeyLite devstoreaccount1:vqH9cAkS8xJlO5MTje1QvTgbpxIibsQNqN4+xo6qZpIx",
        "SharedKeyLite devstoreaccount1:",
        "",
    };
    for (size_t i = 0; i < sizeof bad_headers / sizeof *bad_headers; i++) {
        c.hval[1] = bad_headers[i];
        assert_denied(check(c, &g), "AuthenticationFailed");
        assert_false(g.shared_key);
    }
    c.hval[1] = good;

    /* Replay window: 15 minutes either way. */
    c.now = T_2024 + 15 * 60;
    assert_ok(check(c, &g));
    c.now = T_2024 + 15 * 60 + 1;
    assert_denied(check(c, &g), "AuthenticationFailed");
    c.now = T_2024 - 15 * 60 - 1;
    assert_denied(check(c, &g), "AuthenticationFailed");
    c.now = T_2024;

    /* No date, a malformed date. */
    c.hname[0] = "X-Other";
    assert_denied(check(c, &g), "AuthenticationFailed");
    c.hname[0] = "x-ms-date";
    const char *bad_dates[] = {"2024-01-02T03:04:05Z",
                               "Tue, 02 Jan 2024 03:04:05 UTC",
                               "Tue, 32 Jan 2024 03:04:05 GMT",
                               "Tue, 02 Jab 2024 03:04:05 GMT",
                               "Tue, 02 Jan 2024 24:04:05 GMT",
                               "Tue, 02 Jan 2024 03:04:5 GMT ",
                               ""};
    for (size_t i = 0; i < sizeof bad_dates / sizeof *bad_dates; i++) {
        c.hval[0] = bad_dates[i];
        assert_denied(check(c, &g), "AuthenticationFailed");
    }
}

static void test_no_credentials(void **state)
{
    (void)state;
    az_grant g;
    mt_status st = check((call){.path = "/devstoreaccount1/Tables", .now = T_2024}, &g);
    assert_denied(st, "AuthenticationFailed");
    assert_false(g.shared_key);
    assert_int_equal(g.perms, 0);
    st = check((call){.path = "/devstoreaccount1/Tables", .query = "$top=1", .now = T_2024}, &g);
    assert_denied(st, "AuthenticationFailed");
    /* SAS fields without sig. */
    st = check(
        (call){.path = "/devstoreaccount1/t", .query = "sv=2019-02-02&tn=t&sp=r", .now = T_2024},
        &g);
    assert_denied(st, "AuthenticationFailed");

    /* A misconfigured account is the server's fault, not the client's. */
    az_account none = {"devstoreaccount1", NULL, 0};
    az_http_request r = {"GET", "/devstoreaccount1/Tables", NULL, NULL, NULL, NULL, false, 0};
    st = az_auth_check(&none, &r, NULL, NULL, &g);
    assert_int_equal(st.http, 500);
    st = az_auth_check(&dev, &r, NULL, NULL, NULL);
    assert_int_equal(st.http, 500);
}

/* ------------------------------------------------------------------------ */
/* Table SAS.                                                                */

static call sas_call(const char *path, const char *query, time_t now)
{
    return (call){.method = "GET", .path = path, .query = query, .now = now};
}

static void test_table_sas_data_tables(void **state)
{
    (void)state;
    az_grant g;
    /* generateTableSas("MyTable", raud, st, se): the table name is signed
     * in lower case but kept as given for the grant. */
    const char *q1 = "sv=2019-02-02&st=2024-01-01T00%3A00%3A00Z&se=2024-01-03T00%3A00%3A00Z&sp=raud"
                     "&sig=Ae8TmUzJZzjPBBAvau93G9kry3cO1unUslpIzLOORFk%3D&tn=MyTable";
    assert_ok(check(sas_call("/devstoreaccount1/MyTable()", q1, T_2024), &g));
    assert_false(g.shared_key);
    assert_string_equal(g.table, "MyTable");
    assert_int_equal(g.perms, AZ_PERM_READ | AZ_PERM_ADD | AZ_PERM_UPDATE | AZ_PERM_DELETE);
    assert_string_equal(g.spk, "");
    assert_ok(check(sas_call("/devstoreaccount1/MyTable()", q1, T_ST), &g));
    assert_denied(check(sas_call("/devstoreaccount1/MyTable()", q1, T_ST - 1), &g),
                  "AuthenticationFailed");
    assert_denied(check(sas_call("/devstoreaccount1/MyTable()", q1, T_SE), &g),
                  "AuthenticationFailed");
    assert_ok(check(sas_call("/devstoreaccount1/MyTable()", q1, T_SE - 1), &g));

    /* IP range, https only, key ranges. */
    const char *q2 =
        "sv=2019-02-02&spr=https&se=2024-01-03T00%3A00%3A00Z&sip=10.0.0.1-10.0.0.9&sp=r"
        "&sig=P0J7Nr%2Bfk7hiri68O1bONk3DMgKiF0nnk2pQLSru%2Brk%3D&tn=mytable&srk=b&spk=a"
        "&epk=m&erk=z";
    call c = sas_call("/devstoreaccount1/mytable()", q2, T_2024);
    c.ip = "10.0.0.5";
    c.https = true;
    assert_ok(check(c, &g));
    assert_string_equal(g.spk, "a");
    assert_string_equal(g.srk, "b");
    assert_string_equal(g.epk, "m");
    assert_string_equal(g.erk, "z");
    assert_int_equal(g.perms, AZ_PERM_READ);
    c.ip = "10.0.0.1";
    assert_ok(check(c, &g));
    c.ip = "10.0.0.9";
    assert_ok(check(c, &g));
    c.ip = "::ffff:10.0.0.9"; /* a dual-stack listener's view of the same client */
    assert_ok(check(c, &g));
    c.ip = "10.0.0.10";
    assert_denied(check(c, &g), "AuthorizationSourceIPMismatch");
    c.ip = "fe80::1";
    assert_denied(check(c, &g), "AuthorizationSourceIPMismatch");
    c.ip = "not an ip";
    assert_denied(check(c, &g), "AuthorizationSourceIPMismatch");
    c.ip = "10.0.0.5";
    c.https = false;
    assert_denied(check(c, &g), "AuthorizationProtocolMismatch");
    /* Every signed field is signed: change one and the signature fails. */
    c.https = true;
    c.query = "sv=2019-02-02&spr=https&se=2024-01-03T00%3A00%3A00Z&sip=10.0.0.1-10.0.0.9&sp=r"
              "&sig=P0J7Nr%2Bfk7hiri68O1bONk3DMgKiF0nnk2pQLSru%2Brk%3D&tn=mytable&srk=b&spk=a"
              "&epk=n&erk=z";
    assert_denied(check(c, &g), "AuthenticationFailed");
}

/* A SAS verified once is kept by the thread (its fields and that its
 * signature matched): the same query again gives the same grant, every
 * term is still checked on every request, and neither another account key
 * nor another signature in otherwise the same query gets through. */
static void test_sas_kept(void **state)
{
    (void)state;
    az_grant first, again;
    const char *q = "sv=2019-02-02&spr=https&se=2024-01-03T00%3A00%3A00Z&sip=10.0.0.1-10.0.0.9"
                    "&sp=r&sig=P0J7Nr%2Bfk7hiri68O1bONk3DMgKiF0nnk2pQLSru%2Brk%3D&tn=mytable"
                    "&srk=b&spk=a&epk=m&erk=z";
    call c = sas_call("/devstoreaccount1/mytable()", q, T_2024);
    c.ip = "10.0.0.5";
    c.https = true;
    assert_ok(check(c, &first));
    for (int i = 0; i < 2; i++) {
        memset(&again, 0x55, sizeof again);
        assert_ok(check(c, &again));
        assert_memory_equal(&first, &again, sizeof first);
    }
    c.ip = "10.0.0.10";
    assert_denied(check(c, &again), "AuthorizationSourceIPMismatch");
    c.ip = "10.0.0.5";
    c.https = false;
    assert_denied(check(c, &again), "AuthorizationProtocolMismatch");
    c.https = true;
    c.now = T_SE;
    assert_denied(check(c, &again), "AuthenticationFailed");
    c.now = T_2024;

    uint8_t other_key[sizeof dev_key];
    memcpy(other_key, dev_key, sizeof other_key);
    other_key[0] ^= 1;
    az_account other = {dev.name, other_key, sizeof other_key};
    az_http_request r = {"GET", c.path, c.query, get_header, &c, c.ip, true, c.now};
    assert_denied(az_auth_check(&other, &r, lookup, NULL, &again), "AuthenticationFailed");
    az_account renamed = {"devstoreaccount2", dev_key, sizeof dev_key};
    assert_denied(az_auth_check(&renamed, &r, lookup, NULL, &again), "AuthenticationFailed");

    char forged[512];
    snprintf(forged, sizeof forged, "%s", q);
    char *sig = strstr(forged, "sig=") + 4;
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    assert_ok(check(c, &again)); /* kept again */
    c.query = forged;
    assert_denied(check(c, &again), "AuthenticationFailed");
    c.query = q;
    assert_ok(check(c, &again));
    assert_memory_equal(&first, &again, sizeof first);
}

static void test_table_sas_stored_policy(void **state)
{
    (void)state;
    az_grant g;
    int calls = 0;
    /* generateTableSas("mytable", { identifier: "policy1" }). */
    const char *q = "sv=2019-02-02&si=policy1&sig=7fk7F8vYktbK9ITerPezirtr6NZNSL8zDLE5ET8adv8%3D"
                    "&tn=mytable";
    call c = sas_call("/devstoreaccount1/mytable()", q, T_2024);
    az_http_request r = {"GET", c.path, c.query, get_header, &c, "127.0.0.1", false, T_2024};
    assert_ok(az_auth_check(&dev, &r, lookup, &calls, &g));
    assert_int_equal(calls, 1);
    assert_int_equal(g.perms, AZ_PERM_READ);
    assert_string_equal(g.table, "mytable");
    /* The policy's times apply. */
    r.now = T_SE;
    assert_denied(az_auth_check(&dev, &r, lookup, &calls, &g), "AuthenticationFailed");
    r.now = T_ST - 1;
    assert_denied(az_auth_check(&dev, &r, lookup, &calls, &g), "AuthenticationFailed");
    /* No lookup callback, or no such policy. */
    r.now = T_2024;
    assert_denied(az_auth_check(&dev, &r, NULL, NULL, &g), "AuthenticationFailed");

    char buf[512];
    signed_query(buf, sizeof buf, "sv=2019-02-02&si=nosuch&tn=mytable",
                 "\n\n\n/table/devstoreaccount1/mytable\nnosuch\n\n\n2019-02-02\n\n\n\n");
    assert_denied(check(sas_call("/devstoreaccount1/mytable()", buf, T_2024), &g),
                  "AuthenticationFailed");
    /* A field in both the SAS and the policy: the service fails the
     * authentication, in these words (its documentation says 400). */
    signed_query(buf, sizeof buf, "sv=2019-02-02&si=policy1&sp=r&tn=mytable",
                 "r\n\n\n/table/devstoreaccount1/mytable\npolicy1\n\n\n2019-02-02\n\n\n\n");
    mt_status both = check(sas_call("/devstoreaccount1/mytable()", buf, T_2024), &g);
    assert_denied(both, "AuthenticationFailed");
    assert_string_equal(both.message, "Access policy fields can be associated with signature or "
                                      "SAS identifier but not both");
    /* A policy that leaves sp and se to the SAS. */
    signed_query(buf, sizeof buf, "sv=2019-02-02&si=open&sp=ra&se=2024-01-03&tn=mytable",
                 "ra\n\n2024-01-03\n/table/devstoreaccount1/mytable\nopen\n\n\n2019-02-02\n\n\n\n");
    assert_ok(check(sas_call("/devstoreaccount1/mytable()", buf, T_2024), &g));
    assert_int_equal(g.perms, AZ_PERM_READ | AZ_PERM_ADD);
    /* ... and one that leaves them to nobody. */
    signed_query(buf, sizeof buf, "sv=2019-02-02&si=open&tn=mytable",
                 "\n\n\n/table/devstoreaccount1/mytable\nopen\n\n\n2019-02-02\n\n\n\n");
    assert_denied(check(sas_call("/devstoreaccount1/mytable()", buf, T_2024), &g),
                  "AuthenticationFailed");
    signed_query(buf, sizeof buf, "sv=2019-02-02&si=open&sp=r&tn=mytable",
                 "r\n\n\n/table/devstoreaccount1/mytable\nopen\n\n\n2019-02-02\n\n\n\n");
    assert_denied(check(sas_call("/devstoreaccount1/mytable()", buf, T_2024), &g),
                  "AuthenticationFailed");
}

static void test_table_sas_legacy_and_wire(void **state)
{
    (void)state;
    az_grant g;
    /* azure-storage generateSharedAccessSignature("MyTable", raud, st, se,
     * StartPk a, EndPk z), version 2018-03-28. */
    const char *q =
        "st=2024-01-01T00%3A00%3A00Z&se=2024-01-03T00%3A00%3A00Z&sp=raud&spk=a&epk=z"
        "&sv=2018-03-28&tn=mytable&sig=tnH%2F%2Fpfc3kq96Pwdihh445zO92ulGA27HohB7UqOxgk%3D";
    assert_ok(check(sas_call("/devstoreaccount1/mytable()", q, T_2024), &g));
    assert_string_equal(g.spk, "a");
    assert_string_equal(g.epk, "z");
    assert_string_equal(g.srk, "");

    /* A TableClient with an AzureSASCredential, as sent. */
    q = "sv=2019-02-02&se=2026-11-25T16%3A30%3A57Z&sp=ra"
        "&sig=a9KCWuzwe%2FaCbeI%2FrWctKNdLvuVJjyGismwsgdGPFf8%3D&tn=mytable";
    assert_ok(
        check(sas_call("/devstoreaccount1/mytable(PartitionKey='p',RowKey='r')", q, T_WIRE), &g));
    assert_int_equal(g.perms, AZ_PERM_READ | AZ_PERM_ADD);
    assert_ok(az_grant_check(&g, AZ_PERM_READ, false, "mytable", "p", "r"));
    assert_denied(az_grant_check(&g, AZ_PERM_DELETE, false, "mytable", "p", "r"),
                  "AuthorizationPermissionMismatch");
}

/* Versions before 2015-04-05 sign neither sip nor spr; before 2015-02-21
 * the resource has no service name. */
static void test_table_sas_old_versions(void **state)
{
    (void)state;
    az_grant g;
    char buf[512];
    signed_query(buf, sizeof buf, "sv=2015-02-21&sp=r&se=2024-01-03&tn=mytable",
                 "r\n\n2024-01-03\n/table/devstoreaccount1/mytable\n\n2015-02-21\n\n\n\n");
    assert_ok(check(sas_call("/devstoreaccount1/mytable()", buf, T_2024), &g));
    signed_query(buf, sizeof buf, "sv=2013-08-15&sp=r&se=2024-01-03&tn=MyTable",
                 "r\n\n2024-01-03\n/devstoreaccount1/mytable\n\n2013-08-15\n\n\n\n");
    assert_ok(check(sas_call("/devstoreaccount1/mytable()", buf, T_2024), &g));
    signed_query(buf, sizeof buf, "sv=2012-02-12&sp=r&se=2024-01-03&tn=mytable",
                 "r\n\n2024-01-03\n/devstoreaccount1/mytable\n\n2012-02-12\n\n\n\n");
    assert_ok(check(sas_call("/devstoreaccount1/mytable()", buf, T_2024), &g));
    /* An unsigned sip is still enforced: it can only narrow the SAS. */
    signed_query(buf, sizeof buf, "sv=2013-08-15&sp=r&se=2024-01-03&tn=mytable&sip=10.9.9.9",
                 "r\n\n2024-01-03\n/devstoreaccount1/mytable\n\n2013-08-15\n\n\n\n");
    assert_denied(check(sas_call("/devstoreaccount1/mytable()", buf, T_2024), &g),
                  "AuthorizationSourceIPMismatch");
    signed_query(buf, sizeof buf, "sv=2011-08-18&sp=r&se=2024-01-03&tn=mytable",
                 "r\n\n2024-01-03\n/devstoreaccount1/mytable\n\n2011-08-18\n\n\n\n");
    assert_denied(check(sas_call("/devstoreaccount1/mytable()", buf, T_2024), &g),
                  "AuthenticationFailed");
}

/* Every way a well-signed table SAS can still be refused. */
static void test_table_sas_rejections(void **state)
{
    (void)state;
    az_grant g;
    char buf[512];
    const char *path = "/devstoreaccount1/mytable()";
    struct {
        const char *fields, *sts, *code;
    } cases[] = {
        {"sv=2019-02-02&sp=rw&se=2024-01-03&tn=mytable",
         "rw\n\n2024-01-03\n/table/devstoreaccount1/mytable\n\n\n\n2019-02-02\n\n\n\n",
         "AuthenticationFailed"},
        {"sv=2019-02-02&sp=rr&se=2024-01-03&tn=mytable",
         "rr\n\n2024-01-03\n/table/devstoreaccount1/mytable\n\n\n\n2019-02-02\n\n\n\n",
         "AuthenticationFailed"},
        {"sv=2019-02-02&sp=r&se=2024-13-03&tn=mytable",
         "r\n\n2024-13-03\n/table/devstoreaccount1/mytable\n\n\n\n2019-02-02\n\n\n\n",
         "AuthenticationFailed"},
        {"sv=2019-02-02&sp=r&st=yesterday&se=2024-01-03&tn=mytable",
         "r\nyesterday\n2024-01-03\n/table/devstoreaccount1/mytable\n\n\n\n2019-02-02\n\n\n\n",
         "AuthenticationFailed"},
        {"sv=2019-02-02&sp=r&se=2024-01-03&tn=mytable&sip=10.0.0.9-10.0.0.1",
         "r\n\n2024-01-03\n/table/devstoreaccount1/"
         "mytable\n\n10.0.0.9-10.0.0.1\n\n2019-02-02\n\n\n\n",
         "AuthenticationFailed"},
        {"sv=2019-02-02&sp=r&se=2024-01-03&tn=mytable&sip=10.0.0",
         "r\n\n2024-01-03\n/table/devstoreaccount1/mytable\n\n10.0.0\n\n2019-02-02\n\n\n\n",
         "AuthenticationFailed"},
        {"sv=2019-02-02&sp=r&se=2024-01-03&tn=mytable&spr=http",
         "r\n\n2024-01-03\n/table/devstoreaccount1/mytable\n\n\nhttp\n2019-02-02\n\n\n\n",
         "AuthenticationFailed"},
        {"sv=2019-02-02&sp=r&se=2024-01-03&tn=mytable&srk=b",
         "r\n\n2024-01-03\n/table/devstoreaccount1/mytable\n\n\n\n2019-02-02\n\nb\n\n",
         "AuthenticationFailed"},
        {"sv=2019-02-02&sp=r&se=2024-01-03&tn=mytable&erk=b",
         "r\n\n2024-01-03\n/table/devstoreaccount1/mytable\n\n\n\n2019-02-02\n\n\n\nb",
         "AuthenticationFailed"},
        {"sv=2019-02-02&sp=r&se=2024-01-03&tn=",
         "r\n\n2024-01-03\n/table/devstoreaccount1/\n\n\n\n2019-02-02\n\n\n\n",
         "AuthenticationFailed"},
        {"sv=2019-2-02&sp=r&se=2024-01-03&tn=mytable",
         "r\n\n2024-01-03\n/table/devstoreaccount1/mytable\n\n\n\n2019-2-02\n\n\n\n",
         "AuthenticationFailed"},
        /* Expired and not yet valid (now is 2024-01-02T03:04:05Z). */
        {"sv=2019-02-02&sp=r&se=2024-01-02T03:04:05Z&tn=mytable",
         "r\n\n2024-01-02T03:04:05Z\n/table/devstoreaccount1/mytable\n\n\n\n2019-02-02\n\n\n\n",
         "AuthenticationFailed"},
        {"sv=2019-02-02&sp=r&st=2024-01-02T03:05Z&se=2024-01-03&tn=mytable",
         "r\n2024-01-02T03:05Z\n2024-01-03\n/table/devstoreaccount1/"
         "mytable\n\n\n\n2019-02-02\n\n\n\n",
         "AuthenticationFailed"},
        /* The same times written with an offset: 04:04+01:00 is 03:04Z. */
        {"sv=2019-02-02&sp=r&se=2024-01-02T04:04:05%2B01:00&tn=mytable",
         "r\n\n2024-01-02T04:04:05+01:00\n/table/devstoreaccount1/"
         "mytable\n\n\n\n2019-02-02\n\n\n\n",
         "AuthenticationFailed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        signed_query(buf, sizeof buf, cases[i].fields, cases[i].sts);
        mt_status st = check(sas_call(path, buf, T_2024), &g);
        if (st.http != 403 || strcmp(st.code, cases[i].code) != 0)
            fail_msg("case %zu: want %s, got %d %s: %s", i, cases[i].code, st.http, st.code,
                     st.message);
        assert_int_equal(g.perms, 0);
        assert_string_equal(g.table, "");
    }

    /* Times that are valid: fractions, offsets, a bare date. */
    signed_query(buf, sizeof buf,
                 "sv=2019-02-02&sp=r&st=2024-01-02T03:04:04.9999999Z&se=2024-01-02T05:04:06%2B02:00"
                 "&tn=mytable",
                 "r\n2024-01-02T03:04:04.9999999Z\n2024-01-02T05:04:06+02:00\n"
                 "/table/devstoreaccount1/mytable\n\n\n\n2019-02-02\n\n\n\n");
    assert_ok(check(sas_call(path, buf, T_2024), &g));

    /* Missing fields, repeated fields, bad escapes, a bad signature. */
    const char *raw[] = {
        "sv=2019-02-02&sp=r&se=2024-01-03&sig=abc",                    /* no tn */
        "sp=r&se=2024-01-03&tn=mytable&sig=abc",                       /* no sv */
        "sv=2019-02-02&se=2024-01-03&tn=mytable&sig=abc",              /* no sp */
        "sv=2019-02-02&sp=r&tn=mytable&sig=abc",                       /* no se */
        "sv=2019-02-02&sp=r&se=2024-01-03&tn=mytable&sig=abc",         /* short sig */
        "sv=2019-02-02&sp=r&se=2024-01-03&tn=mytable&sig=abc&sig=abc", /* repeated */
        "sv=2019-02-02&sp=r&se=2024-01-03&tn=my%zztable&sig=abc",      /* bad escape */
        "sv=2019-02-02&sp=r&se=2024-01-03&tn=my%00table&sig=abc",      /* encoded NUL */
        "sv=2019-02-02&sp=r&se=2024-01-03&tn=mytable&sig=%",           /* truncated */
        ("sv=2019-02-02&sp=r&se=2024-01-03&tn=mytable"
         "&sig=Ae8TmUzJZzjPBBAvau93G9kry3cO1unUslpIzLOORFk%3D"), /* someone else's */
    };
    for (size_t i = 0; i < sizeof raw / sizeof *raw; i++)
        assert_denied(check(sas_call(path, raw[i], T_2024), &g), "AuthenticationFailed");
}

/* The ISO 8601 forms a SAS time may take; now is 2024-01-02T03:04:05Z. */
static void test_sas_time_formats(void **state)
{
    (void)state;
    struct {
        const char *se;
        bool ok;
    } cases[] = {
        {"2024-01-03", true},
        {"2024-01-03T00:00Z", true},
        {"2024-01-03T00:00:00Z", true},
        {"2024-01-03T00:00:00.1Z", true},
        {"2024-01-03T00:00:00.1234567Z", true},
        {"2024-01-02T03:04:06Z", true},
        {"2024-01-02T03:04:05Z", false}, /* the expiry instant itself */
        {"2024-01-02T05:04:06+02:00", true},
        {"2024-01-02T02:04:06-01:00", true},
        {"2024-01-02T01:04:06-01:00", false},
        {"2400-02-29", true},
        {"2100-02-29", false},
        {"2024-02-30", false},
        {"0000-01-01", false},
        {"2024-01-03T24:00Z", false},
        {"2024-01-03T00:60Z", false},
        {"2024-01-03T00:00:60Z", false},
        {"2024-01-03T00:00:00.12345678Z", false},
        {"2024-01-03T00:00:00.Z", false},
        {"2024-01-03T00:00:0Z", false},
        {"2024-01-03T00Z", false},
        {"2024-01-03T", false},
        {"2024-01-03 00:00Z", false},
        {"2024-01-03T00:00:00", true}, /* no zone is UTC, as for Edm.DateTime */
        {"2024-01-03T00:00:00+0100", false},
        {"2024-01-03T00:00:00+24:00", false},
        {"2024-01-03T00:00:00+01:00x", false},
        {"2024-01-03T00:00:00*01:00", false},
        {"2024-01-03Z", false},
        {"24-01-03", false},
        {"", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char fields[256], sts[256], buf[512], enc[96];
        size_t n = 0;
        az_grant g;
        for (const char *p = cases[i].se; *p && n + 4 < sizeof enc; p++)
            n += (size_t)(*p == '+' ? snprintf(enc + n, sizeof enc - n, "%%2B")
                                    : snprintf(enc + n, sizeof enc - n, "%c", *p));
        enc[n] = '\0';
        snprintf(fields, sizeof fields, "sv=2019-02-02&sp=r&se=%s&tn=mytable", enc);
        snprintf(sts, sizeof sts,
                 "r\n\n%s\n/table/devstoreaccount1/mytable\n\n\n\n2019-02-02\n\n\n\n", cases[i].se);
        signed_query(buf, sizeof buf, fields, sts);
        mt_status st = check(sas_call("/devstoreaccount1/mytable()", buf, T_2024), &g);
        if (mt_is_ok(&st) != cases[i].ok)
            fail_msg("se=%s: %d %s", cases[i].se, st.http, st.message);
        if (!cases[i].ok)
            assert_string_equal(st.code, "AuthenticationFailed");
    }
}

/* Odd but legal encodings, and inputs at the limits. */
static void test_sas_limits(void **state)
{
    (void)state;
    az_grant g;
    char big[1100], fields[1400], sts[1400], buf[1600];

    /* Lower-case escapes decode like upper-case ones. */
    const char *q = "sv=2019-02-02&st=2024-01-01T00%3a00%3a00Z&se=2024-01-03T00%3a00%3a00Z&sp=raud"
                    "&sig=Ae8TmUzJZzjPBBAvau93G9kry3cO1unUslpIzLOORFk%3d&tn=MyTable";
    assert_ok(check(sas_call("/devstoreaccount1/MyTable()", q, T_2024), &g));

    /* A key bound of 1023 bytes fits the grant; 1024 does not. */
    memset(big, 'k', 1023);
    big[1023] = '\0';
    snprintf(fields, sizeof fields, "sv=2019-02-02&sp=r&se=2024-01-03&tn=t&spk=%s", big);
    snprintf(sts, sizeof sts,
             "r\n\n2024-01-03\n/table/devstoreaccount1/t\n\n\n\n2019-02-02\n%s\n\n\n", big);
    signed_query(buf, sizeof buf, fields, sts);
    assert_ok(check(sas_call("/devstoreaccount1/t()", buf, T_2024), &g));
    assert_int_equal(strlen(g.spk), 1023);
    big[1023] = 'k';
    big[1024] = '\0';
    snprintf(fields, sizeof fields, "sv=2019-02-02&sp=r&se=2024-01-03&tn=t&spk=%s", big);
    snprintf(sts, sizeof sts,
             "r\n\n2024-01-03\n/table/devstoreaccount1/t\n\n\n\n2019-02-02\n%s\n\n\n", big);
    signed_query(buf, sizeof buf, fields, sts);
    assert_denied(check(sas_call("/devstoreaccount1/t()", buf, T_2024), &g),
                  "AuthenticationFailed");

    /* A field longer than any SAS needs. */
    char *huge = malloc(5000 + 64);
    assert_non_null(huge);
    strcpy(huge, "sv=2019-02-02&sp=r&se=2024-01-03&tn=t&sig=");
    memset(huge + strlen(huge), 'A', 5000);
    huge[42 + 5000] = '\0';
    assert_denied(check(sas_call("/devstoreaccount1/t()", huge, T_2024), &g),
                  "AuthenticationFailed");
    free(huge);

    /* Account SAS letter rules: empty sp, repeated letters of either kind,
     * an empty sip bound. */
    const char *sets[][2] = {
        {"sv=2019-02-02&ss=t&srt=sco&sp=&se=2024-01-03",
         "devstoreaccount1\n\nt\nsco\n\n2024-01-03\n\n\n2019-02-02\n"},
        {"sv=2019-02-02&ss=t&srt=sco&sp=rpp&se=2024-01-03",
         "devstoreaccount1\nrpp\nt\nsco\n\n2024-01-03\n\n\n2019-02-02\n"},
        {"sv=2019-02-02&ss=tt&srt=sco&sp=r&se=2024-01-03",
         "devstoreaccount1\nr\ntt\nsco\n\n2024-01-03\n\n\n2019-02-02\n"},
        {"sv=2019-02-02&ss=t&srt=sco&sp=r&se=2024-01-03&sip=-10.0.0.1",
         "devstoreaccount1\nr\nt\nsco\n\n2024-01-03\n-10.0.0.1\n\n2019-02-02\n"},
        {"sv=2019-02-02&ss=t&srt=sco&sp=r&se=2024-01-03&sip=10.0.0.1-::1",
         "devstoreaccount1\nr\nt\nsco\n\n2024-01-03\n10.0.0.1-::1\n\n2019-02-02\n"},
    };
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
        signed_query(buf, sizeof buf, sets[i][0], sets[i][1]);
        assert_denied(check(sas_call("/devstoreaccount1/Tables", buf, T_2024), &g),
                      "AuthenticationFailed");
    }
    /* IPv6 ranges work; an IPv4 client is outside them. */
    signed_query(buf, sizeof buf,
                 "sv=2019-02-02&ss=t&srt=sco&sp=r&se=2024-01-03&sip=fd00::1-fd00::ff",
                 "devstoreaccount1\nr\nt\nsco\n\n2024-01-03\nfd00::1-fd00::ff\n\n2019-02-02\n");
    call c = sas_call("/devstoreaccount1/Tables", buf, T_2024);
    c.ip = "fd00::80";
    assert_ok(check(c, &g));
    c.ip = "fd00::100";
    assert_denied(check(c, &g), "AuthorizationSourceIPMismatch");
    c.ip = "10.0.0.1";
    assert_denied(check(c, &g), "AuthorizationSourceIPMismatch");

    /* A request the proxy could not describe. */
    az_http_request r = {NULL, "/", NULL, NULL, NULL, NULL, false, T_2024};
    assert_denied(az_auth_check(&dev, &r, NULL, NULL, &g), "AuthenticationFailed");
}

/* A path without the account segment, as a host-style client sends it,
 * is signed with the account in front. */
static void test_shared_key_path_without_account(void **state)
{
    (void)state;
    az_grant g;
    call c = {
        .method = "GET",
        .path = "/Tables",
        .hname = {"x-ms-date", "Authorization"},
        .hval = {DATE_2024,
                 "SharedKeyLite devstoreaccount1:vqH9cAkS8xJlO5MTje1QvTgbpxIibsQNqN4+xo6qZpI="},
        .now = T_2024};
    assert_denied(check(c, &g), "AuthenticationFailed");
    char *sig = az_sign(dev_key, sizeof dev_key, DATE_2024 "\n/devstoreaccount1/Tables");
    char auth[128];
    snprintf(auth, sizeof auth, "SharedKeyLite devstoreaccount1:%s", sig);
    free(sig);
    c.hval[1] = auth;
    assert_ok(check(c, &g));
    c.path = NULL; /* the root, "/" */
    assert_denied(check(c, &g), "AuthenticationFailed");
}

/* The resource signed without the doubled account (a host-style client's)
 * is accepted only when the path's first segment is the account itself: a
 * path under "/devstoreaccount1x" names another account, whatever the key. */
static void test_shared_key_account_prefix(void **state)
{
    (void)state;
    az_grant g;
    char auth[128];
    char *sig = az_sign(dev_key, sizeof dev_key, DATE_2024 "\n/devstoreaccount1/Tables");
    snprintf(auth, sizeof auth, "SharedKeyLite devstoreaccount1:%s", sig);
    free(sig);
    call c = {.method = "GET",
              .path = "/devstoreaccount1/Tables",
              .hname = {"x-ms-date", "Authorization"},
              .hval = {DATE_2024, auth},
              .now = T_2024};
    assert_ok(check(c, &g));

    sig = az_sign(dev_key, sizeof dev_key, DATE_2024 "\n/devstoreaccount1x/Tables");
    snprintf(auth, sizeof auth, "SharedKeyLite devstoreaccount1:%s", sig);
    free(sig);
    c.path = "/devstoreaccount1x/Tables";
    assert_denied(check(c, &g), "AuthenticationFailed");
    assert_false(g.shared_key);
}

/* ------------------------------------------------------------------------ */
/* Account SAS.                                                              */

static void test_account_sas_sdk(void **state)
{
    (void)state;
    az_grant g;
    /* generateAccountSas(rwdlau, sco, t, st, se). */
    const char *q =
        "sv=2019-02-02&ss=t&srt=sco&st=2024-01-01T00%3A00%3A00Z&se=2024-01-03T00%3A00%3A00Z"
        "&sp=rwdlau&sig=0qxpsReg%2F%2FJdBtB8%2B2FeHhOs%2FAx2Wt6LIJ9LnjQl04E%3D";
    assert_ok(check(sas_call("/devstoreaccount1/Tables", q, T_2024), &g));
    assert_false(g.shared_key);
    assert_string_equal(g.table, "");
    assert_true(g.service_table && g.container_table && g.object_table);
    assert_int_equal(g.perms, AZ_PERM_READ | AZ_PERM_WRITE | AZ_PERM_DELETE | AZ_PERM_LIST |
                                  AZ_PERM_ADD | AZ_PERM_UPDATE);
    assert_denied(check(sas_call("/devstoreaccount1/Tables", q, T_SE), &g), "AuthenticationFailed");
    assert_denied(check(sas_call("/devstoreaccount1/Tables", q, T_ST - 60), &g),
                  "AuthenticationFailed");

    /* generateAccountSas(rl, o, sip 127.0.0.1, https,http). */
    q = "sv=2019-02-02&ss=t&srt=o&spr=https%2Chttp&se=2024-01-03T00%3A00%3A00Z&sip=127.0.0.1&sp=rl"
        "&sig=sUI0HA6n429n0zo5g9vOp7ZbmZWCTtsEPWZqu05fSNE%3D";
    call c = sas_call("/devstoreaccount1/mytable()", q, T_2024);
    assert_ok(check(c, &g));
    assert_true(g.object_table && !g.container_table && !g.service_table);
    c.ip = "::ffff:127.0.0.1";
    assert_ok(check(c, &g));
    c.ip = "127.0.0.2";
    assert_denied(check(c, &g), "AuthorizationSourceIPMismatch");

    /* As a TableServiceClient with an AzureSASCredential sent it. */
    q = "sv=2019-02-02&ss=t&srt=sco&se=2026-11-25T16%3A30%3A57Z&sp=rl"
        "&sig=7ewrKsed2UDDVpaP%2B%2Brq6G92SJea04hCUK%2BdTj0nmO8%3D";
    assert_ok(check(sas_call("/devstoreaccount1/Tables", q, T_WIRE), &g));
    assert_ok(az_grant_check(&g, AZ_PERM_LIST, true, NULL, NULL, NULL));

    /* azure-storage generateAccountSharedAccessSignature (2018-03-28). */
    q = "sv=2018-03-28&ss=t&srt=sco&sp=rwdlacu&st=2024-01-01T00%3A00%3A00Z"
        "&se=2024-01-03T00%3A00%3A00Z&sig=UiwPSqcpqEp0ovyoP2fNMJtAvSHPrOxA6DY01KYLDhY%3D";
    assert_ok(check(sas_call("/devstoreaccount1/Tables", q, T_2024), &g));
    assert_true(g.perms & AZ_PERM_CREATE);

    /* @azure/storage-blob: 2021-08-06 signs an empty encryption scope line,
     * 2020-12-06 a named one. */
    q = "sv=2021-08-06&ss=bt&srt=sco&spr=https%2Chttp&st=2024-01-01T00%3A00%3A00Z"
        "&se=2024-01-03T00%3A00%3A00Z&sip=10.1.0.0-10.1.255.255&sp=rwdlacu"
        "&sig=WsNi%2FswLYN3BiEtXznN61wE1f3yMgbTt2czqnB65QSg%3D";
    c = sas_call("/devstoreaccount1/Tables", q, T_2024);
    c.ip = "10.1.200.3";
    assert_ok(check(c, &g));
    q = "sv=2020-12-06&ss=bt&srt=sco&spr=https%2Chttp&st=2024-01-01T00%3A00%3A00Z"
        "&se=2024-01-03T00%3A00%3A00Z&sip=10.1.0.0-10.1.255.255&ses=myscope&sp=rwdlacu"
        "&sig=b%2B38kgnj5o5jvPehH%2BgjjPbTPa8Zk%2BI9tDSQFWQWGDs%3D";
    c.query = q;
    assert_ok(check(c, &g));
    c.ip = "10.2.0.0";
    assert_denied(check(c, &g), "AuthorizationSourceIPMismatch");
}

static void test_account_sas_rejections(void **state)
{
    (void)state;
    az_grant g;
    char buf[512];
    const char *path = "/devstoreaccount1/Tables";
    struct {
        const char *fields, *sts, *code;
    } cases[] = {
        {"sv=2019-02-02&ss=bq&srt=sco&sp=rl&se=2024-01-03",
         "devstoreaccount1\nrl\nbq\nsco\n\n2024-01-03\n\n\n2019-02-02\n",
         "AuthorizationServiceMismatch"},
        {"sv=2019-02-02&ss=tz&srt=sco&sp=rl&se=2024-01-03",
         "devstoreaccount1\nrl\ntz\nsco\n\n2024-01-03\n\n\n2019-02-02\n", "AuthenticationFailed"},
        {"sv=2019-02-02&ss=t&srt=scx&sp=rl&se=2024-01-03",
         "devstoreaccount1\nrl\nt\nscx\n\n2024-01-03\n\n\n2019-02-02\n", "AuthenticationFailed"},
        {"sv=2019-02-02&ss=t&srt=sco&sp=rlq&se=2024-01-03",
         "devstoreaccount1\nrlq\nt\nsco\n\n2024-01-03\n\n\n2019-02-02\n", "AuthenticationFailed"},
        {"sv=2019-02-02&ss=t&srt=sco&sp=rl&se=2024-01-03&spr=https",
         "devstoreaccount1\nrl\nt\nsco\n\n2024-01-03\n\nhttps\n2019-02-02\n",
         "AuthorizationProtocolMismatch"},
        {"sv=2019-02-02&ss=t&srt=sco&sp=rl&se=2024-01-02",
         "devstoreaccount1\nrl\nt\nsco\n\n2024-01-02\n\n\n2019-02-02\n", "AuthenticationFailed"},
        {"sv=2015-02-21&ss=t&srt=sco&sp=rl&se=2024-01-03",
         "devstoreaccount1\nrl\nt\nsco\n\n2024-01-03\n\n\n2015-02-21\n", "AuthenticationFailed"},
        /* 2020-12-06 signs ses; a string without it no longer matches. */
        {"sv=2020-12-06&ss=t&srt=sco&sp=rl&se=2024-01-03",
         "devstoreaccount1\nrl\nt\nsco\n\n2024-01-03\n\n\n2020-12-06\n", "AuthenticationFailed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        signed_query(buf, sizeof buf, cases[i].fields, cases[i].sts);
        mt_status st = check(sas_call(path, buf, T_2024), &g);
        if (st.http != 403 || strcmp(st.code, cases[i].code) != 0)
            fail_msg("case %zu: want %s, got %d %s: %s", i, cases[i].code, st.http, st.code,
                     st.message);
    }
    /* Letters of other services are accepted and mean nothing here. */
    signed_query(buf, sizeof buf, "sv=2019-02-02&ss=bfqt&srt=sco&sp=rlptfxyi&se=2024-01-03",
                 "devstoreaccount1\nrlptfxyi\nbfqt\nsco\n\n2024-01-03\n\n\n2019-02-02\n");
    assert_ok(check(sas_call(path, buf, T_2024), &g));
    assert_int_equal(g.perms, AZ_PERM_READ | AZ_PERM_LIST);

    const char *raw[] = {
        "ss=t&srt=sco&sp=rl&se=2024-01-03&sig=abc",
        "sv=2019-02-02&ss=t&sp=rl&se=2024-01-03&sig=abc",
        "sv=2019-02-02&srt=sco&sp=rl&se=2024-01-03&sig=abc",
        "sv=2019-02-02&ss=t&srt=sco&se=2024-01-03&sig=abc",
        "sv=2019-02-02&ss=t&srt=sco&sp=rl&sig=abc",
        "sv=2019-02-02&ss=t&srt=sco&sp=rl&se=2024-01-03&sig=",
        "sv=2019-02-02&ss=t&ss=t&srt=sco&sp=rl&se=2024-01-03&sig=abc",
    };
    for (size_t i = 0; i < sizeof raw / sizeof *raw; i++)
        assert_denied(check(sas_call(path, raw[i], T_2024), &g), "AuthenticationFailed");
}

/* ------------------------------------------------------------------------ */
/* az_grant_check.                                                           */

static az_grant table_grant(const char *table, unsigned perms)
{
    az_grant g;
    memset(&g, 0, sizeof g);
    strcpy(g.table, table);
    g.perms = perms;
    return g;
}

static void test_grant_table_sas_permissions(void **state)
{
    (void)state;
    az_grant g = table_grant("MyTable", AZ_PERM_READ | AZ_PERM_ADD);
    assert_ok(az_grant_check(&g, AZ_PERM_READ, false, "MyTable", NULL, NULL));
    assert_ok(az_grant_check(&g, AZ_PERM_READ, false, "mytable", "p", "r")); /* any case */
    assert_ok(az_grant_check(&g, AZ_PERM_ADD, false, "MYTABLE", "p", "r"));
    /* Upserts need a and u; update, merge and delete need their own. */
    assert_denied(az_grant_check(&g, AZ_PERM_ADD | AZ_PERM_UPDATE, false, "mytable", "p", "r"),
                  "AuthorizationPermissionMismatch");
    assert_denied(az_grant_check(&g, AZ_PERM_UPDATE, false, "mytable", "p", "r"),
                  "AuthorizationPermissionMismatch");
    assert_denied(az_grant_check(&g, AZ_PERM_DELETE, false, "mytable", "p", "r"),
                  "AuthorizationPermissionMismatch");
    assert_denied(az_grant_check(&g, 0, false, "mytable", "p", "r"),
                  "AuthorizationPermissionMismatch");
    g.perms |= AZ_PERM_UPDATE;
    assert_ok(az_grant_check(&g, AZ_PERM_ADD | AZ_PERM_UPDATE, false, "mytable", "p", "r"));

    /* Other tables, and table-level operations, are out of reach. */
    assert_denied(az_grant_check(&g, AZ_PERM_READ, false, "othertable", NULL, NULL),
                  "AuthorizationFailure");
    assert_denied(az_grant_check(&g, AZ_PERM_READ, false, NULL, NULL, NULL),
                  "AuthorizationFailure");
    assert_denied(az_grant_check(&g, AZ_PERM_READ, false, "MyTable2", NULL, NULL),
                  "AuthorizationFailure");
    assert_denied(az_grant_check(&g, AZ_PERM_CREATE, true, "mytable", NULL, NULL),
                  "AuthorizationFailure");
    assert_denied(az_grant_check(&g, AZ_PERM_DELETE, true, "mytable", NULL, NULL),
                  "AuthorizationFailure");
    assert_denied(az_grant_check(&g, AZ_PERM_LIST, true, NULL, NULL, NULL), "AuthorizationFailure");
    assert_denied(az_grant_check(&g, AZ_PERM_READ, true, "mytable", NULL, NULL),
                  "AuthorizationFailure");
    assert_denied(az_grant_check(NULL, AZ_PERM_READ, false, "mytable", NULL, NULL),
                  "AuthenticationFailed");
}

static void test_grant_key_ranges(void **state)
{
    (void)state;
    az_grant g = table_grant("t", AZ_PERM_READ);
    strcpy(g.spk, "a");
    strcpy(g.srk, "b");
    strcpy(g.epk, "m");
    strcpy(g.erk, "z");
    struct {
        const char *pk, *rk;
        bool ok;
    } cases[] = {
        {"a", "b", true},   {"a", "a", false}, {"a", "bb", true},  {"a", "", false},
        {"0", "z", false},  {"b", "", true},   {"l", "zzz", true}, {"m", "z", true},
        {"m", "z0", false}, {"m", "a", true},  {"n", "", false},   {"ma", "a", false},
        {"a", NULL, true},  {"m", NULL, true}, {"z", NULL, false}, {"", NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mt_status st = az_grant_check(&g, AZ_PERM_READ, false, "t", cases[i].pk, cases[i].rk);
        if (mt_is_ok(&st) != cases[i].ok)
            fail_msg("case %zu (%s, %s): %s", i, cases[i].pk, cases[i].rk ? cases[i].rk : "-",
                     st.message);
        if (!cases[i].ok)
            assert_string_equal(st.code, "AuthorizationFailure");
    }
    /* A query that names no key is allowed; the caller narrows it. */
    assert_ok(az_grant_check(&g, AZ_PERM_READ, false, "t", NULL, NULL));

    /* Partition keys only: one partition. */
    g = table_grant("t", AZ_PERM_READ);
    strcpy(g.spk, "p");
    strcpy(g.epk, "p");
    assert_ok(az_grant_check(&g, AZ_PERM_READ, false, "t", "p", "anything"));
    assert_denied(az_grant_check(&g, AZ_PERM_READ, false, "t", "p0", ""), "AuthorizationFailure");
    assert_denied(az_grant_check(&g, AZ_PERM_READ, false, "t", "o", ""), "AuthorizationFailure");

    /* Keys compare as UTF-16, like the service: U+FFFD sorts above a
     * supplementary character although its UTF-8 bytes are smaller. */
    g = table_grant("t", AZ_PERM_READ);
    strcpy(g.epk, "\xef\xbf\xbd");                                                   /* U+FFFD */
    assert_ok(az_grant_check(&g, AZ_PERM_READ, false, "t", "\xf0\x9f\x98\x80", "")); /* U+1F600 */
}

/* The range as a query filter matches exactly the keys the grant allows
 * (the coarse one at least those), and starts where the range starts. */
static void test_grant_key_range_filter(void **state)
{
    (void)state;
    static const char *const keys[] = {"",  "0", "a",  "aa", "b", "bb",
                                       "l", "m", "ma", "n",  "z", "zzz"};
    static const struct {
        const char *spk, *srk, *epk, *erk;
    } ranges[] = {
        {"a", "b", "m", "z"}, {"p", "", "p", ""}, {"", "", "m", "b"},
        {"b", "l", "", ""},   {"", "x", "", ""},  {"a", "", "a", "m"},
    };
    for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++) {
        az_grant g = table_grant("t", AZ_PERM_READ);
        strcpy(g.spk, ranges[r].spk);
        strcpy(g.srk, ranges[r].srk);
        strcpy(g.epk, ranges[r].epk);
        strcpy(g.erk, ranges[r].erk);
        mt_filter *fine = NULL, *coarse = NULL;
        mt_key start = {0};
        assert_true(az_grant_key_range(&g, false, &fine, &start));
        assert_true(az_grant_key_range(&g, true, &coarse, NULL));
        bool ranged = g.spk[0] || g.epk[0];
        assert_true(!fine == !ranged);
        assert_true(!coarse == !ranged);
        if (coarse)
            assert_true(mt_filter_count_comparisons(coarse) <= 2);
        if (g.spk[0]) {
            assert_string_equal(start.pk, g.spk);
            assert_string_equal(start.rk, g.srk);
        } else {
            assert_null(start.pk);
        }
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
            for (size_t j = 0; j < sizeof keys / sizeof *keys; j++) {
                mt_entity *e = mt_entity_new(keys[i], keys[j]);
                mt_status st = az_grant_check(&g, AZ_PERM_READ, false, "t", e->pk, e->rk);
                bool in = !fine || mt_filter_eval(fine, e);
                if (in != mt_is_ok(&st))
                    fail_msg("range %zu, key (%s, %s): filter %d, grant %d", r, e->pk, e->rk, in,
                             mt_is_ok(&st));
                if (mt_is_ok(&st) && coarse && !mt_filter_eval(coarse, e))
                    fail_msg("range %zu, key (%s, %s): the coarse filter drops it", r, e->pk,
                             e->rk);
                mt_entity_free(e);
            }
        }
        mt_filter_free(fine);
        mt_filter_free(coarse);
        mt_key_clear(&start);
    }
    /* Shared Key and account SAS: no range. */
    az_grant sk = {.shared_key = true};
    mt_filter *f = NULL;
    assert_true(az_grant_key_range(&sk, false, &f, NULL));
    assert_null(f);
}

static void test_grant_account_sas(void **state)
{
    (void)state;
    az_grant g;
    memset(&g, 0, sizeof g);
    g.perms = AZ_PERM_READ | AZ_PERM_LIST;
    g.object_table = true;
    assert_ok(az_grant_check(&g, AZ_PERM_READ, false, "t", "p", "r"));
    assert_denied(az_grant_check(&g, AZ_PERM_ADD, false, "t", "p", "r"),
                  "AuthorizationPermissionMismatch");
    assert_denied(az_grant_check(&g, AZ_PERM_LIST, true, NULL, NULL, NULL),
                  "AuthorizationResourceTypeMismatch");
    assert_denied(az_grant_check(&g, AZ_PERM_READ, true, NULL, NULL, NULL),
                  "AuthorizationResourceTypeMismatch");

    /* Query Tables: l with srt c (the operation table) or s. */
    g.object_table = false;
    g.container_table = true;
    assert_ok(az_grant_check(&g, AZ_PERM_LIST, true, NULL, NULL, NULL));
    assert_denied(az_grant_check(&g, AZ_PERM_READ, false, "t", "p", "r"),
                  "AuthorizationResourceTypeMismatch");
    g.container_table = false;
    g.service_table = true;
    assert_ok(az_grant_check(&g, AZ_PERM_LIST, true, NULL, NULL, NULL));
    /* Service properties: r to read, w to write, srt s. */
    assert_ok(az_grant_check(&g, AZ_PERM_READ, true, NULL, NULL, NULL));
    assert_denied(az_grant_check(&g, AZ_PERM_WRITE, true, NULL, NULL, NULL),
                  "AuthorizationPermissionMismatch");

    /* Create Table: srt c with c or w; Delete Table: srt c with d. */
    memset(&g, 0, sizeof g);
    g.container_table = true;
    g.perms = AZ_PERM_WRITE;
    assert_ok(az_grant_check(&g, AZ_PERM_CREATE, true, "t", NULL, NULL));
    g.perms = AZ_PERM_CREATE;
    assert_ok(az_grant_check(&g, AZ_PERM_CREATE, true, "t", NULL, NULL));
    g.perms = AZ_PERM_ADD;
    assert_denied(az_grant_check(&g, AZ_PERM_CREATE, true, "t", NULL, NULL),
                  "AuthorizationPermissionMismatch");
    assert_denied(az_grant_check(&g, AZ_PERM_DELETE, true, "t", NULL, NULL),
                  "AuthorizationPermissionMismatch");
    g.perms = AZ_PERM_DELETE;
    assert_ok(az_grant_check(&g, AZ_PERM_DELETE, true, "t", NULL, NULL));
    g.container_table = false;
    g.object_table = true;
    assert_denied(az_grant_check(&g, AZ_PERM_DELETE, true, "t", NULL, NULL),
                  "AuthorizationResourceTypeMismatch");
    assert_ok(az_grant_check(&g, AZ_PERM_DELETE, false, "t", "p", "r"));

    /* Table ACLs: never with a SAS. */
    g.perms = ~0u;
    g.service_table = g.container_table = g.object_table = true;
    assert_denied(az_grant_check(&g, AZ_PERM_READ, true, "t", NULL, NULL), "AuthorizationFailure");
    assert_denied(az_grant_check(&g, AZ_PERM_WRITE, true, "t", NULL, NULL), "AuthorizationFailure");

    /* Shared Key may do everything. */
    memset(&g, 0, sizeof g);
    g.shared_key = true;
    assert_ok(az_grant_check(&g, AZ_PERM_WRITE, true, "t", NULL, NULL));
    assert_ok(az_grant_check(&g, 0, false, NULL, NULL, NULL));
}

/* A real account SAS, end to end: what each operation may do. */
static void test_grant_from_sdk_account_sas(void **state)
{
    (void)state;
    az_grant g;
    const char *q =
        "sv=2019-02-02&ss=t&srt=sco&st=2024-01-01T00%3A00%3A00Z&se=2024-01-03T00%3A00%3A00Z"
        "&sp=rwdlau&sig=0qxpsReg%2F%2FJdBtB8%2B2FeHhOs%2FAx2Wt6LIJ9LnjQl04E%3D";
    assert_ok(check(sas_call("/devstoreaccount1/Tables", q, T_2024), &g));
    assert_ok(az_grant_check(&g, AZ_PERM_CREATE, true, "newtable", NULL, NULL)); /* via w */
    assert_ok(az_grant_check(&g, AZ_PERM_DELETE, true, "newtable", NULL, NULL));
    assert_ok(az_grant_check(&g, AZ_PERM_LIST, true, NULL, NULL, NULL));
    assert_ok(az_grant_check(&g, AZ_PERM_ADD | AZ_PERM_UPDATE, false, "t", "p", "r"));
    assert_denied(az_grant_check(&g, AZ_PERM_WRITE, true, "t", NULL, NULL), "AuthorizationFailure");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign),
        cmocka_unit_test(test_sign_kept),
        cmocka_unit_test(test_lite_data_tables),
        cmocka_unit_test(test_wire_captures),
        cmocka_unit_test(test_shared_key_md5_comp),
        cmocka_unit_test(test_shared_key_dates_and_resource),
        cmocka_unit_test(test_shared_key_rejections),
        cmocka_unit_test(test_shared_key_account_prefix),
        cmocka_unit_test(test_no_credentials),
        cmocka_unit_test(test_table_sas_data_tables),
        cmocka_unit_test(test_sas_kept),
        cmocka_unit_test(test_table_sas_stored_policy),
        cmocka_unit_test(test_table_sas_legacy_and_wire),
        cmocka_unit_test(test_table_sas_old_versions),
        cmocka_unit_test(test_table_sas_rejections),
        cmocka_unit_test(test_sas_time_formats),
        cmocka_unit_test(test_sas_limits),
        cmocka_unit_test(test_shared_key_path_without_account),
        cmocka_unit_test(test_account_sas_sdk),
        cmocka_unit_test(test_account_sas_rejections),
        cmocka_unit_test(test_grant_table_sas_permissions),
        cmocka_unit_test(test_grant_key_ranges),
        cmocka_unit_test(test_grant_key_range_filter),
        cmocka_unit_test(test_grant_account_sas),
        cmocka_unit_test(test_grant_from_sdk_account_sas),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

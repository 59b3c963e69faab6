/*
 * az_auth.c -- who sent a request, and what they may do.
 *
 * Four ways to prove knowledge of the account key, as Azure Table storage
 * accepts them:
 *
 *   SharedKey      "SharedKey acct:sig", sig over
 *                  VERB \n Content-MD5 \n Content-Type \n Date \n resource
 *   SharedKeyLite  "SharedKeyLite acct:sig", sig over Date \n resource
 *   account SAS    sv ss srt sp [st] se [sip] [spr] [ses] sig in the query
 *   table SAS      sv tn [sp] [st] [se] [si] [sip] [spr] [spk srk epk erk] sig
 *
 * Date is x-ms-date when the request has one, else the Date header, and
 * must be within 15 minutes of now (the replay window Azure enforces). The
 * canonicalized resource is "/" + account + the path exactly as sent, plus
 * "?comp=<value>" when the query has comp. Clients of a path-style
 * endpoint (http://127.0.0.1:10002/devstoreaccount1/Tables) sign the path
 * with its account segment, so the account appears twice; every SDK we
 * checked does this. We also accept the resource without the doubled
 * account, which is what a client of a host-style endpoint signs, so a
 * rewriting front end does not break authentication.
 *
 * A SAS is judged in a fixed order: the fields its string-to-sign needs
 * must be present, then the signature must match, and only then are the
 * values examined (times, IP, protocol, permissions). A forged SAS thus
 * learns nothing beyond "signature did not match". Every repeated SAS field
 * is refused, so the signed value and the enforced value cannot differ.
 *
 * Signatures are compared with CRYPTO_memcmp; no message carries a key, a
 * computed signature or a string-to-sign.
 *
 * Dates are read by the parsers every other part of the proxy uses
 * (az_rfc1123_parse, and the core's Edm.DateTime parser for SAS times,
 * which also take a bare YYYY-MM-DD), so no two readings of a time differ.
 *
 * A SAS is not allowed everything its letters suggest: az_grant_check
 * applies Azure's table of operations, resource types and permissions.
 * How the caller describes an operation:
 *
 *   entity operations   table_level = false, table set, pk/rk when known
 *                       query r, insert a, update/merge u, upsert a|u, delete d
 *   Query Tables        table_level = true, table NULL, AZ_PERM_LIST
 *   Create Table        table_level = true, table set, AZ_PERM_CREATE
 *                       (an account SAS grants it with c or w)
 *   Delete Table        table_level = true, table set, AZ_PERM_DELETE
 *   service properties  table_level = true, table NULL, AZ_PERM_READ / WRITE
 *   table ACL           table_level = true, table set, AZ_PERM_READ / WRITE
 *                       (never with a SAS: only the key holder may)
 *
 * A table SAS reaches entities of its own table only; an empty spk/srk/
 * epk/erk counts as absent.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "az.h"

#define ERR_AUTHN "AuthenticationFailed"
#define ERR_AUTHZ "AuthorizationFailure"
#define ERR_PERM "AuthorizationPermissionMismatch"
#define ERR_RESTYPE "AuthorizationResourceTypeMismatch"
#define ERR_SERVICE "AuthorizationServiceMismatch"
#define ERR_IP "AuthorizationSourceIPMismatch"
#define ERR_PROTO "AuthorizationProtocolMismatch"

#define SIG_LEN 44            /* base64 of a 32-byte HMAC-SHA256 */
#define DATE_WINDOW (15 * 60) /* seconds a Shared Key request stays valid */
#define FIELD_MAX 4096        /* longest SAS field we decode */

#define MSG_BAD_MAC                                                                                \
    "Server failed to authenticate the request. Make sure the value of Authorization "             \
    "header is formed correctly including the signature."
#define MSG_BAD_SIG "Signature did not match. Check the sig of the shared access signature."

/* ------------------------------------------------------------------------ */
/* Small tools: statuses, a growing string, HMAC.                            */

static mt_status deny(const char *code, const char *msg)
{
    return mt_error(403, code, "%s", msg);
}

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t len)
{
    if (b->oom)
        return;
    if (len > SIZE_MAX / 4 - b->n) {
        b->oom = true;
        return;
    }
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

static void sb_add(sbuf *b, const char *s)
{
    if (s)
        sb_addn(b, s, strlen(s));
}

/* One string-to-sign field and its newline. */
static void sb_line(sbuf *b, const char *s)
{
    sb_add(b, s);
    sb_addn(b, "\n", 1);
}

/* base64(HMAC-SHA256(key, msg)) into out; false only if OpenSSL fails. */
static bool hmac_b64(const uint8_t *key, size_t key_len, const char *msg, size_t len,
                     char out[SIG_LEN + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    if (key_len > INT_MAX)
        return false;
    if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, len, mac, &mac_len) ||
        mac_len != 32)
        return false;
    EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
    return true;
}

/* Does sig (as received) equal the signature of msg? Constant time over
 * the signature bytes; the length of a valid signature is no secret. */
static bool sig_matches(const az_account *acct, const sbuf *msg, const char *sig)
{
    char want[SIG_LEN + 1];

    if (msg->oom || !msg->p || !sig || strlen(sig) != SIG_LEN)
        return false;
    if (!hmac_b64(acct->key, acct->key_len, msg->p, msg->n, want))
        return false;
    return CRYPTO_memcmp(want, sig, SIG_LEN) == 0;
}

char *az_sign(const uint8_t *key, size_t key_len, const char *string_to_sign)
{
    char *out;

    if (!key || !string_to_sign || !(out = malloc(SIG_LEN + 1)))
        return NULL;
    if (!hmac_b64(key, key_len, string_to_sign, strlen(string_to_sign), out)) {
        free(out);
        return NULL;
    }
    return out;
}

/* ------------------------------------------------------------------------ */
/* Query strings.                                                            */

typedef enum sas_field {
    F_SV,
    F_SS,
    F_SRT,
    F_SP,
    F_ST,
    F_SE,
    F_SIP,
    F_SPR,
    F_SES,
    F_TN,
    F_SPK,
    F_SRK,
    F_EPK,
    F_ERK,
    F_SI,
    F_SIG,
    F_COUNT
} sas_field;

static const char *const sas_names[F_COUNT] = {
    "sv",  "ss", "srt", "sp",  "st",  "se",  "sip", "spr",
    "ses", "tn", "spk", "srk", "epk", "erk", "si",  "sig",
};

/* Decodes the values of names[0..n) found in query into vals (NULL when
 * absent). Refuses a repeated name, a bad escape and an overlong value,
 * naming the culprit in *bad. */
static bool query_collect(const char *query, const char *const *names, size_t n, char **vals,
                          const char **bad)
{
    const char *p = query;

    while (p && *p) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        size_t klen = (size_t)((eq ? eq : end) - p);

        for (size_t i = 0; i < n; i++) {
            if (strlen(names[i]) != klen || memcmp(p, names[i], klen) != 0)
                continue;
            const char *v = eq ? eq + 1 : end;
            *bad = names[i];
            if (vals[i] || (size_t)(end - v) > FIELD_MAX)
                return false;
            /* '+' stays '+': SDKs send %2B for a plus in a signature,
             * and a raw one can only have meant a plus. */
            if (!(vals[i] = az_url_decode(v, (size_t)(end - v))))
                return false;
        }
        p = amp ? amp + 1 : NULL;
    }
    return true;
}

static void free_all(char **vals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(vals[i]);
        vals[i] = NULL;
    }
}

/* ------------------------------------------------------------------------ */
/* SAS times.                                                                */

#define TICKS_PER_SECOND INT64_C(10000000)
#define TICKS_AT_EPOCH INT64_C(621355968000000000) /* 1970-01-01 in 0001-based ticks */

/* A SAS time as ticks: the Edm.DateTime forms the core parses, plus the
 * bare date "YYYY-MM-DD" (midnight UTC) that a SAS may also carry. */
static bool sas_time(const char *s, int64_t *ticks)
{
    char day[24];
    size_t len = strlen(s);

    if (len == 10) {
        snprintf(day, sizeof day, "%sT00:00Z", s);
        return mt_datetime_parse(day, strlen(day), ticks);
    }
    return mt_datetime_parse(s, len, ticks);
}

/* now in ticks, saturating so that no clock value overflows. */
static int64_t now_ticks(time_t now)
{
    int64_t max = (INT64_MAX - TICKS_AT_EPOCH) / TICKS_PER_SECOND;
    if ((int64_t)now > max)
        return INT64_MAX;
    if ((int64_t)now < -TICKS_AT_EPOCH / TICKS_PER_SECOND)
        return 0;
    return (int64_t)now * TICKS_PER_SECOND + TICKS_AT_EPOCH;
}

/* ------------------------------------------------------------------------ */
/* Shared Key and Shared Key Lite.                                           */

static const char *header(const az_http_request *req, const char *name)
{
    return req->header ? req->header(req->ctx, name) : NULL;
}

typedef struct sk_auth {
    bool lite;
    const char *account; /* into a copy of the header */
    const char *sig;
} sk_auth;

/* Splits "SharedKey[Lite] account:signature" in the writable copy hdr. */
static bool parse_authorization(char *hdr, sk_auth *out)
{
    char *sp = strchr(hdr, ' ');
    char *colon;

    if (!sp)
        return false;
    *sp = '\0';
    if (strcmp(hdr, "SharedKey") == 0)
        out->lite = false;
    else if (strcmp(hdr, "SharedKeyLite") == 0)
        out->lite = true;
    else
        return false;
    if (!(colon = strchr(sp + 1, ':')))
        return false;
    *colon = '\0';
    out->account = sp + 1;
    out->sig = colon + 1;
    return true;
}

/* Appends "/account<path>[?comp=v]" (or "<path>[?comp=v]" for the
 * host-style variant). */
static void add_resource(sbuf *b, const char *account, const char *path, const char *comp,
                         bool doubled)
{
    if (doubled) {
        sb_addn(b, "/", 1);
        sb_add(b, account);
    }
    sb_add(b, path);
    if (comp) {
        sb_add(b, "?comp=");
        sb_add(b, comp);
    }
}

static void add_sk_prefix(sbuf *b, const az_http_request *req, bool lite, const char *date)
{
    if (!lite) {
        sb_line(b, req->method);
        sb_line(b, header(req, "Content-MD5"));
        sb_line(b, header(req, "Content-Type"));
    }
    sb_line(b, date);
}

/* Does sig match the Shared Key string of req under either resource form? */
static bool sk_signature_ok(const az_account *acct, const az_http_request *req, const sk_auth *a,
                            const char *date, const char *comp, bool *oom)
{
    const char *path = req->path && req->path[0] ? req->path : "/";
    size_t alen = strlen(acct->name);
    bool host_style_ok =
        path[0] == '/' && strncmp(path + 1, acct->name, alen) == 0 && path[1 + alen] == '/';
    bool ok = false;

    for (int doubled = 1; doubled >= 0 && !ok; doubled--) {
        sbuf b = {0};
        if (!doubled && !host_style_ok)
            break;
        add_sk_prefix(&b, req, a->lite, date);
        add_resource(&b, acct->name, path, comp, doubled);
        *oom = *oom || b.oom;
        ok = sig_matches(acct, &b, a->sig);
        free(b.p);
    }
    return ok;
}

/* The date the client signed, and whether it is fresh. */
static mt_status sk_date(const az_http_request *req, const char **date)
{
    time_t t;

    *date = header(req, "x-ms-date");
    if (!*date)
        *date = header(req, "Date");
    if (!*date)
        return deny(ERR_AUTHN, "The request has neither an x-ms-date nor a Date header.");
    if (!az_rfc1123_parse(*date, &t))
        return deny(ERR_AUTHN, "The x-ms-date or Date header is not an RFC 1123 date.");
    if ((int64_t)t < (int64_t)req->now - DATE_WINDOW ||
        (int64_t)t > (int64_t)req->now + DATE_WINDOW)
        return deny(ERR_AUTHN, "Request date header too old or too far in the future: it must be "
                               "within 15 minutes of the server time.");
    return mt_ok();
}

static mt_status shared_key_check(const az_account *acct, const az_http_request *req,
                                  const char *authorization, az_grant *grant)
{
    char *hdr = strdup(authorization);
    char *comp[1] = {NULL};
    const char *names[1] = {"comp"}, *bad = NULL, *date = NULL;
    sk_auth a;
    bool oom = false;
    mt_status st;

    if (!hdr)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    if (!parse_authorization(hdr, &a)) {
        st = deny(ERR_AUTHN, "The Authorization header is not of the form "
                             "'SharedKey account:signature' or 'SharedKeyLite account:signature'.");
        goto out;
    }
    if (strcmp(a.account, acct->name) != 0) {
        st = deny(ERR_AUTHN, "The account name in the Authorization header is not this account.");
        goto out;
    }
    st = sk_date(req, &date);
    if (!mt_is_ok(&st))
        goto out;
    if (!query_collect(req->query, names, 1, comp, &bad)) {
        st = deny(ERR_AUTHN, "The comp query parameter is malformed or repeated.");
        goto out;
    }
    if (!sk_signature_ok(acct, req, &a, date, comp[0], &oom)) {
        st = oom ? mt_error(500, MT_ERR_INTERNAL, "out of memory") : deny(ERR_AUTHN, MSG_BAD_MAC);
        goto out;
    }
    grant->shared_key = true;
    grant->perms = ~0u;
out:
    free(comp[0]);
    free(hdr);
    return st;
}

/* ------------------------------------------------------------------------ */
/* SAS values: letters, addresses, protocols.                                */

/* Turns the letters of s into bits; letters in ignored are skipped (an
 * account SAS may carry permissions of other services). False on an
 * unknown or a repeated letter. */
static bool parse_letters(const char *s, const char *known, const unsigned *bits,
                          const char *ignored, unsigned *out)
{
    unsigned seen = 0, ign_seen = 0;

    *out = 0;
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        const char *k = strchr(known, *p);
        const char *ig = ignored ? strchr(ignored, *p) : NULL;
        if (k) {
            unsigned bit = 1u << (k - known);
            if (seen & bit)
                return false;
            seen |= bit;
            *out |= bits[k - known];
        } else if (ig) {
            unsigned bit = 1u << (ig - ignored);
            if (ign_seen & bit)
                return false;
            ign_seen |= bit;
        } else {
            return false;
        }
    }
    return true;
}

static bool parse_table_perms(const char *s, unsigned *out)
{
    static const unsigned bits[] = {AZ_PERM_READ, AZ_PERM_ADD, AZ_PERM_UPDATE, AZ_PERM_DELETE};
    return parse_letters(s, "raud", bits, NULL, out);
}

static bool parse_account_perms(const char *s, unsigned *out)
{
    static const unsigned bits[] = {AZ_PERM_READ, AZ_PERM_WRITE,  AZ_PERM_DELETE, AZ_PERM_LIST,
                                    AZ_PERM_ADD,  AZ_PERM_CREATE, AZ_PERM_UPDATE};
    return parse_letters(s, "rwdlacu", bits, "xyptfi", out);
}

typedef struct ip_addr {
    int len; /* 4 or 16 */
    uint8_t b[16];
} ip_addr;

/* Parses one IPv4 or IPv6 address; IPv4-mapped IPv6 becomes IPv4 so that
 * a dual-stack listener's "::ffff:10.0.0.1" matches sip=10.0.0.1. */
static bool parse_ip(const char *s, size_t len, ip_addr *out)
{
    char buf[INET6_ADDRSTRLEN + 1];
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, out->b) == 1) {
        out->len = 4;
        return true;
    }
    if (inet_pton(AF_INET6, buf, out->b) != 1)
        return false;
    out->len = 16;
    if (memcmp(out->b, mapped, sizeof mapped) == 0) {
        memmove(out->b, out->b + 12, 4);
        out->len = 4;
    }
    return true;
}

/* sip is "a" or "a-b" (inclusive). *malformed tells a bad sip from a
 * client outside it. */
static bool ip_allowed(const char *sip, const char *client, bool *malformed)
{
    const char *dash = strchr(sip, '-');
    ip_addr lo, hi, c;

    *malformed = true;
    if (!parse_ip(sip, dash ? (size_t)(dash - sip) : strlen(sip), &lo))
        return false;
    hi = lo;
    if (dash && (!parse_ip(dash + 1, strlen(dash + 1), &hi) || hi.len != lo.len ||
                 memcmp(lo.b, hi.b, (size_t)lo.len) > 0))
        return false;
    *malformed = false;
    if (!client || !parse_ip(client, strlen(client), &c) || c.len != lo.len)
        return false;
    return memcmp(c.b, lo.b, (size_t)c.len) >= 0 && memcmp(c.b, hi.b, (size_t)c.len) <= 0;
}

/* "YYYY-MM-DD": versions compare as strings once they have this shape. */
static bool is_version(const char *v)
{
    static const char shape[] = "dddd-dd-dd";
    size_t i;

    for (i = 0; shape[i] && v[i]; i++)
        if (shape[i] == 'd' ? (v[i] < '0' || v[i] > '9') : v[i] != shape[i])
            return false;
    return !shape[i] && !v[i];
}

/* ------------------------------------------------------------------------ */
/* What every SAS must satisfy once its signature holds.                     */

typedef struct sas_terms {
    const char *st, *se, *sip, *spr;
} sas_terms;

static mt_status check_time(const az_http_request *req, const char *st, const char *se)
{
    int64_t start = INT64_MIN, expiry;
    int64_t now = now_ticks(req->now);

    if (!se)
        return deny(ERR_AUTHN, "The shared access signature has no expiry (se).");
    if (!sas_time(se, &expiry))
        return deny(ERR_AUTHN, "The signed expiry (se) is not a valid ISO 8601 time.");
    if (st && !sas_time(st, &start))
        return deny(ERR_AUTHN, "The signed start (st) is not a valid ISO 8601 time.");
    if (now < start || now >= expiry) {
        /* The server's clock in the message: clock skew is the usual cause. */
        char cur[MT_DATETIME_MAX];
        mt_datetime_format(now, cur);
        return mt_error(403, ERR_AUTHN,
                        "Signature not valid in the specified time frame: Start [%.40s] - "
                        "Expiry [%.40s] - Current [%s]",
                        st ? st : "", se, cur);
    }
    return mt_ok();
}

static mt_status check_terms(const az_http_request *req, const sas_terms *t)
{
    mt_status st = check_time(req, t->st, t->se);
    bool malformed;

    if (!mt_is_ok(&st))
        return st;
    if (t->sip && !ip_allowed(t->sip, req->client_ip, &malformed)) {
        if (malformed)
            return deny(ERR_AUTHN, "The signed IP (sip) is not an address or an address range.");
        return mt_error(403, ERR_IP,
                        "This request is not authorized to perform this operation "
                        "using this source IP %.64s.",
                        req->client_ip ? req->client_ip : "(unknown)");
    }
    if (t->spr && strcmp(t->spr, "https") != 0 && strcmp(t->spr, "https,http") != 0 &&
        strcmp(t->spr, "http,https") != 0)
        return deny(ERR_AUTHN, "The signed protocol (spr) must be https or https,http.");
    if (t->spr && strcmp(t->spr, "https") == 0 && !req->https)
        return deny(ERR_PROTO, "This request is not authorized to perform this operation using "
                               "this protocol: the shared access signature requires https.");
    return mt_ok();
}

/* ------------------------------------------------------------------------ */
/* Account SAS.                                                              */

static void account_sas_string(sbuf *b, const az_account *acct, char *const *v)
{
    sb_line(b, acct->name);
    sb_line(b, v[F_SP]);
    sb_line(b, v[F_SS]);
    sb_line(b, v[F_SRT]);
    sb_line(b, v[F_ST]);
    sb_line(b, v[F_SE]);
    sb_line(b, v[F_SIP]);
    sb_line(b, v[F_SPR]);
    sb_line(b, v[F_SV]);
    /* 2020-12-06 added the encryption scope, signed even when empty. */
    if (strcmp(v[F_SV], "2020-12-06") >= 0)
        sb_line(b, v[F_SES]);
}

static mt_status account_scope(char *const *v, az_grant *g)
{
    unsigned rt;
    static const unsigned rt_bits[] = {1, 2, 4};
    static const unsigned svc_bits[] = {1, 2, 4, 8};
    unsigned svc;

    if (!parse_letters(v[F_SS], "bqtf", svc_bits, NULL, &svc))
        return deny(ERR_AUTHN, "The signed services (ss) must be letters of bqtf.");
    if (!(svc & 4))
        return deny(ERR_SERVICE, "This request is not authorized to perform this operation "
                                 "using this service: ss does not include t (table).");
    if (!parse_letters(v[F_SRT], "sco", rt_bits, NULL, &rt))
        return deny(ERR_AUTHN, "The signed resource types (srt) must be letters of sco.");
    if (!parse_account_perms(v[F_SP], &g->perms))
        return deny(ERR_AUTHN, "The signed permissions (sp) hold an unknown or repeated letter.");
    g->service_table = rt & 1;
    g->container_table = rt & 2;
    g->object_table = rt & 4;
    return mt_ok();
}

static mt_status account_sas_check(const az_account *acct, const az_http_request *req,
                                   char *const *v, az_grant *g)
{
    sbuf b = {0};
    bool ok;
    mt_status st;

    if (!v[F_SV] || !v[F_SS] || !v[F_SRT] || !v[F_SP] || !v[F_SE])
        return deny(ERR_AUTHN, "An account SAS needs sv, ss, srt, sp, se and sig.");
    if (!is_version(v[F_SV]) || strcmp(v[F_SV], "2015-04-05") < 0)
        return deny(ERR_AUTHN, "The signed version (sv) of an account SAS must be 2015-04-05 or "
                               "later.");
    account_sas_string(&b, acct, v);
    ok = sig_matches(acct, &b, v[F_SIG]);
    if (b.oom) {
        free(b.p);
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    free(b.p);
    if (!ok)
        return deny(ERR_AUTHN, MSG_BAD_SIG);
    st = check_terms(req, &(sas_terms){v[F_ST], v[F_SE], v[F_SIP], v[F_SPR]});
    if (!mt_is_ok(&st))
        return st;
    return account_scope(v, g);
}

/* ------------------------------------------------------------------------ */
/* Table (service) SAS.                                                      */

static void table_resource(sbuf *b, const az_account *acct, const char *sv, const char *tn)
{
    /* The service name joined the resource in 2015-02-21; the table name
     * is always signed in lower case. */
    if (strcmp(sv, "2015-02-21") >= 0)
        sb_add(b, "/table");
    sb_addn(b, "/", 1);
    sb_add(b, acct->name);
    sb_addn(b, "/", 1);
    size_t start = b->n;
    sb_add(b, tn);
    for (size_t i = start; !b->oom && i < b->n; i++)
        if (b->p[i] >= 'A' && b->p[i] <= 'Z')
            b->p[i] = (char)(b->p[i] - 'A' + 'a');
    sb_addn(b, "\n", 1);
}

static void table_sas_string(sbuf *b, const az_account *acct, char *const *v)
{
    sb_line(b, v[F_SP]);
    sb_line(b, v[F_ST]);
    sb_line(b, v[F_SE]);
    table_resource(b, acct, v[F_SV], v[F_TN]);
    sb_line(b, v[F_SI]);
    /* sip and spr are signed from 2015-04-05 on. */
    if (strcmp(v[F_SV], "2015-04-05") >= 0) {
        sb_line(b, v[F_SIP]);
        sb_line(b, v[F_SPR]);
    }
    sb_line(b, v[F_SV]);
    sb_line(b, v[F_SPK]);
    sb_line(b, v[F_SRK]);
    sb_line(b, v[F_EPK]);
    sb_add(b, v[F_ERK]);
}

/* One field from the SAS or from the stored policy, never both. */
static bool merge_field(const char *sas, const char *policy, const char **out)
{
    if (sas && policy && *policy)
        return false;
    *out = sas ? sas : (policy && *policy ? policy : NULL);
    return true;
}

typedef struct table_terms {
    const char *sp, *st, *se;
    az_signed_identifier policy;
} table_terms;

/* Resolves sp/st/se through the stored access policy named by si. */
static mt_status table_policy(char *const *v, az_acl_lookup lookup, void *ctx, table_terms *t)
{
    bool found = false;

    memset(&t->policy, 0, sizeof t->policy);
    if (v[F_SI]) {
        found = lookup && lookup(ctx, v[F_TN], v[F_SI], &t->policy);
        if (!found)
            return deny(ERR_AUTHN, "The stored access policy named by si does not exist on the "
                                   "table.");
        t->policy.start[sizeof t->policy.start - 1] = '\0';
        t->policy.expiry[sizeof t->policy.expiry - 1] = '\0';
        t->policy.permission[sizeof t->policy.permission - 1] = '\0';
    }
    if (!merge_field(v[F_SP], t->policy.permission, &t->sp) ||
        !merge_field(v[F_ST], t->policy.start, &t->st) ||
        !merge_field(v[F_SE], t->policy.expiry, &t->se))
        return deny(ERR_AUTHN, "A field is given by both the SAS and its stored access policy.");
    if (!t->sp)
        return deny(ERR_AUTHN, "The shared access signature has no permissions (sp).");
    return mt_ok();
}

static bool copy_bound(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        return false;
    memcpy(dst, src ? src : "", n + 1);
    return true;
}

static mt_status table_scope(char *const *v, const table_terms *t, az_grant *g)
{
    if (!parse_table_perms(t->sp, &g->perms))
        return deny(ERR_AUTHN, "The signed permissions (sp) of a table SAS must be letters of "
                               "raud, each at most once.");
    if ((v[F_SRK] && *v[F_SRK] && !(v[F_SPK] && *v[F_SPK])) ||
        (v[F_ERK] && *v[F_ERK] && !(v[F_EPK] && *v[F_EPK])))
        return deny(ERR_AUTHN, "srk needs spk and erk needs epk.");
    if (!copy_bound(g->table, sizeof g->table, v[F_TN]) || !g->table[0])
        return deny(ERR_AUTHN, "The table name (tn) is not a valid table name.");
    if (!copy_bound(g->spk, sizeof g->spk, v[F_SPK]) ||
        !copy_bound(g->srk, sizeof g->srk, v[F_SRK]) ||
        !copy_bound(g->epk, sizeof g->epk, v[F_EPK]) ||
        !copy_bound(g->erk, sizeof g->erk, v[F_ERK]))
        return deny(ERR_AUTHN, "A key range bound (spk, srk, epk, erk) is too long.");
    return mt_ok();
}

static mt_status table_sas_check(const az_account *acct, const az_http_request *req, char *const *v,
                                 az_acl_lookup lookup, void *ctx, az_grant *g)
{
    sbuf b = {0};
    table_terms t;
    bool ok;
    mt_status st;

    if (!v[F_SV] || !v[F_TN])
        return deny(ERR_AUTHN, "A table SAS needs sv, tn and sig (an account SAS needs ss and "
                               "srt).");
    if (!v[F_SI] && (!v[F_SP] || !v[F_SE]))
        return deny(ERR_AUTHN, "A table SAS without a stored access policy (si) needs sp and se.");
    if (!is_version(v[F_SV]) || strcmp(v[F_SV], "2012-02-12") < 0)
        return deny(ERR_AUTHN, "The signed version (sv) of a table SAS must be 2012-02-12 or "
                               "later.");
    table_sas_string(&b, acct, v);
    ok = sig_matches(acct, &b, v[F_SIG]);
    if (b.oom) {
        free(b.p);
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    free(b.p);
    if (!ok)
        return deny(ERR_AUTHN, MSG_BAD_SIG);
    st = table_policy(v, lookup, ctx, &t);
    if (!mt_is_ok(&st))
        return st;
    st = check_terms(req, &(sas_terms){t.st, t.se, v[F_SIP], v[F_SPR]});
    if (!mt_is_ok(&st))
        return st;
    return table_scope(v, &t, g);
}

/* ------------------------------------------------------------------------ */
/* Entry points.                                                             */

static mt_status sas_check(const az_account *acct, const az_http_request *req, az_acl_lookup lookup,
                           void *ctx, az_grant *g)
{
    char *v[F_COUNT] = {0};
    const char *bad = NULL;
    bool any = false;
    mt_status st;

    if (!query_collect(req->query, sas_names, F_COUNT, v, &bad)) {
        st = mt_error(403, ERR_AUTHN,
                      "The SAS field %s is repeated, too long or badly "
                      "percent-encoded.",
                      bad ? bad : "?");
        goto out;
    }
    for (int i = 0; i < F_COUNT; i++)
        any = any || v[i];
    if (!v[F_SIG]) {
        st = deny(ERR_AUTHN, any ? "The shared access signature has no signature (sig)."
                                 : "The request carries neither an Authorization header nor a "
                                   "shared access signature.");
        goto out;
    }
    if (v[F_SS] || v[F_SRT])
        st = account_sas_check(acct, req, v, g);
    else
        st = table_sas_check(acct, req, v, lookup, ctx, g);
out:
    free_all(v, F_COUNT);
    return st;
}

mt_status az_auth_check(const az_account *acct, const az_http_request *req,
                        az_acl_lookup acl_lookup, void *acl_ctx, az_grant *grant)
{
    const char *auth;
    mt_status st;

    if (!grant)
        return mt_error(500, MT_ERR_INTERNAL, "no grant to fill");
    memset(grant, 0, sizeof *grant);
    if (!acct || !acct->name || !acct->name[0] || !acct->key || !acct->key_len)
        return mt_error(500, MT_ERR_INTERNAL, "no account name and key are configured");
    if (!req || !req->method)
        return deny(ERR_AUTHN, "The request cannot be authenticated.");
    auth = header(req, "Authorization");
    if (auth)
        st = shared_key_check(acct, req, auth, grant);
    else
        st = sas_check(acct, req, acl_lookup, acl_ctx, grant);
    if (!mt_is_ok(&st))
        memset(grant, 0, sizeof *grant);
    return st;
}

/* ------------------------------------------------------------------------ */
/* What a grant may do.                                                      */

/* Does have cover every bit of need? Creating a table is granted by c or
 * by w; nothing grants an operation that needs no permission. */
static bool perms_cover(unsigned have, unsigned need)
{
    if (!need)
        return false;
    if (need & AZ_PERM_CREATE) {
        if (!(have & (AZ_PERM_CREATE | AZ_PERM_WRITE)))
            return false;
        need &= ~(unsigned)AZ_PERM_CREATE;
    }
    return (have & need) == need;
}

/* Is pk/rk inside the inclusive ranges, as the service SAS table of
 * constraints defines them? A partition-level check (rk NULL) passes
 * when the partition overlaps the range. */
static bool key_in_range(const az_grant *g, const char *pk, const char *rk)
{
    int c;

    if (g->spk[0]) {
        c = mt_str_cmp(pk, g->spk);
        if (c < 0 || (c == 0 && g->srk[0] && rk && mt_str_cmp(rk, g->srk) < 0))
            return false;
    }
    if (g->epk[0]) {
        c = mt_str_cmp(pk, g->epk);
        if (c > 0 || (c == 0 && g->erk[0] && rk && mt_str_cmp(rk, g->erk) > 0))
            return false;
    }
    return true;
}

static mt_status permission_denied(void)
{
    return deny(ERR_PERM, "This request is not authorized to perform this operation using this "
                          "permission.");
}

static mt_status table_grant_check(const az_grant *g, unsigned perm, bool table_level,
                                   const char *table, const char *pk, const char *rk)
{
    if (table_level)
        return deny(ERR_AUTHZ, "This request is not authorized to perform this operation: a "
                               "table SAS cannot list, create or delete tables or use ACLs.");
    if (!table || strcasecmp(table, g->table) != 0)
        return deny(ERR_AUTHZ, "This request is not authorized to perform this operation: the "
                               "shared access signature is for another table.");
    if (!perms_cover(g->perms, perm))
        return permission_denied();
    if (pk && !key_in_range(g, pk, rk))
        return deny(ERR_AUTHZ, "This request is not authorized to perform this operation: the "
                               "entity is outside the key range of the shared access signature.");
    return mt_ok();
}

static mt_status account_grant_check(const az_grant *g, unsigned perm, bool table_level,
                                     const char *table)
{
    bool type_ok;

    if (!table_level)
        type_ok = g->object_table;
    else if (!table && (perm & AZ_PERM_LIST))
        /* Query Tables: the operation table says container, the resource
         * type list says service; honour either. */
        type_ok = g->container_table || g->service_table;
    else if (!table)
        type_ok = g->service_table;
    else if (perm & (AZ_PERM_CREATE | AZ_PERM_DELETE))
        type_ok = g->container_table;
    else
        return deny(ERR_AUTHZ, "This request is not authorized to perform this operation: table "
                               "ACLs need the account key.");
    if (!type_ok)
        return deny(ERR_RESTYPE, "This request is not authorized to perform this operation using "
                                 "this resource type.");
    if (!perms_cover(g->perms, perm))
        return permission_denied();
    return mt_ok();
}

mt_status az_grant_check(const az_grant *g, unsigned perm, bool table_level, const char *table,
                         const char *pk, const char *rk)
{
    if (!g)
        return deny(ERR_AUTHN, "The request was not authenticated.");
    if (g->shared_key)
        return mt_ok();
    if (g->table[0])
        return table_grant_check(g, perm, table_level, table, pk, rk);
    return account_grant_check(g, perm, table_level, table);
}

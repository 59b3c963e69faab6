/*
 * az_auth_sas.c -- shared access signatures: the account SAS and the table
 * (service) SAS, and what the grant of a request may do (az_grant_check).
 *
 * A SAS is judged in a fixed order: the fields its string-to-sign needs
 * must be present, then the signature must match, and only then are the
 * values examined (times, IP, protocol, permissions). A forged SAS thus
 * learns nothing beyond "signature did not match". Every repeated SAS field
 * is refused, so the signed value and the enforced value cannot differ.
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
 * epk/erk counts as absent. az_grant_key_range states the same key range
 * as a filter, so that a query can read the range rather than the table.
 */
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "az_internal.h"

#define ERR_AUTHZ "AuthorizationFailure"
#define ERR_PERM "AuthorizationPermissionMismatch"
#define ERR_RESTYPE "AuthorizationResourceTypeMismatch"
#define ERR_SERVICE "AuthorizationServiceMismatch"
#define ERR_IP "AuthorizationSourceIPMismatch"
#define ERR_PROTO "AuthorizationProtocolMismatch"

#define MSG_BAD_SIG "Signature did not match. Check the sig of the shared access signature."

/* ------------------------------------------------------------------------ */
/* The fields of a SAS.                                                      */

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

/* The values of fields f[0..n), one string-to-sign line each. */
static void sts_fields(mt_buf *b, char *const *v, const sas_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        az_sts_line(b, v[f[i]]);
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
/* What every SAS must satisfy: its version and signature, then its terms.   */

/* The signed version is at least min (or the SAS is refused with
 * too_old), and sig signs the string-to-sign that sts builds (known when
 * this thread verified the same SAS before: see sas_memo). */
static mt_status signed_check(const az_account *acct, char *const *v, bool known, const char *min,
                              void (*sts)(mt_buf *, const az_account *, char *const *),
                              const char *too_old)
{
    mt_buf b = {0};
    bool ok, oom;

    if (!is_version(v[F_SV]) || strcmp(v[F_SV], min) < 0)
        return az_auth_deny(AZ_ERR_AUTHN, too_old);
    if (known)
        return mt_ok();
    sts(&b, acct, v);
    ok = az_sig_matches(acct, &b, v[F_SIG]);
    oom = b.oom;
    mt_buf_clear(&b);
    if (oom)
        return mt_oom();
    return ok ? mt_ok() : az_auth_deny(AZ_ERR_AUTHN, MSG_BAD_SIG);
}

typedef struct sas_terms {
    const char *st, *se, *sip, *spr;
} sas_terms;

static mt_status check_time(const az_http_request *req, const char *st, const char *se)
{
    int64_t start = INT64_MIN, expiry;
    int64_t now = now_ticks(req->now);

    if (!se)
        return az_auth_deny(AZ_ERR_AUTHN, "The shared access signature has no expiry (se).");
    if (!sas_time(se, &expiry))
        return az_auth_deny(AZ_ERR_AUTHN, "The signed expiry (se) is not a valid ISO 8601 time.");
    if (st && !sas_time(st, &start))
        return az_auth_deny(AZ_ERR_AUTHN, "The signed start (st) is not a valid ISO 8601 time.");
    if (now < start || now >= expiry) {
        /* The server's clock in the message: clock skew is the usual cause. */
        char cur[MT_DATETIME_MAX];
        mt_datetime_format(now, cur);
        return mt_error(403, AZ_ERR_AUTHN,
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
            return az_auth_deny(AZ_ERR_AUTHN,
                                "The signed IP (sip) is not an address or an address range.");
        return mt_error(403, ERR_IP,
                        "This request is not authorized to perform this operation "
                        "using this source IP %.64s.",
                        req->client_ip ? req->client_ip : "(unknown)");
    }
    if (t->spr && strcmp(t->spr, "https") != 0 && strcmp(t->spr, "https,http") != 0 &&
        strcmp(t->spr, "http,https") != 0)
        return az_auth_deny(AZ_ERR_AUTHN, "The signed protocol (spr) must be https or https,http.");
    if (t->spr && strcmp(t->spr, "https") == 0 && !req->https)
        return az_auth_deny(ERR_PROTO,
                            "This request is not authorized to perform this operation using "
                            "this protocol: the shared access signature requires https.");
    return mt_ok();
}

/* ------------------------------------------------------------------------ */
/* Account SAS.                                                              */

static void account_sas_string(mt_buf *b, const az_account *acct, char *const *v)
{
    static const sas_field signed_fields[] = {F_SP, F_SS, F_SRT, F_ST, F_SE, F_SIP, F_SPR, F_SV};

    az_sts_line(b, acct->name);
    sts_fields(b, v, signed_fields, sizeof signed_fields / sizeof *signed_fields);
    /* 2020-12-06 added the encryption scope, signed even when empty. */
    if (strcmp(v[F_SV], "2020-12-06") >= 0)
        az_sts_line(b, v[F_SES]);
}

static mt_status account_scope(char *const *v, az_grant *g)
{
    unsigned rt;
    static const unsigned rt_bits[] = {1, 2, 4};
    static const unsigned svc_bits[] = {1, 2, 4, 8};
    unsigned svc;

    if (!parse_letters(v[F_SS], "bqtf", svc_bits, NULL, &svc))
        return az_auth_deny(AZ_ERR_AUTHN, "The signed services (ss) must be letters of bqtf.");
    if (!(svc & 4))
        return az_auth_deny(ERR_SERVICE, "This request is not authorized to perform this operation "
                                         "using this service: ss does not include t (table).");
    if (!parse_letters(v[F_SRT], "sco", rt_bits, NULL, &rt))
        return az_auth_deny(AZ_ERR_AUTHN,
                            "The signed resource types (srt) must be letters of sco.");
    if (!parse_account_perms(v[F_SP], &g->perms))
        return az_auth_deny(AZ_ERR_AUTHN,
                            "The signed permissions (sp) hold an unknown or repeated letter.");
    g->service_table = rt & 1;
    g->container_table = rt & 2;
    g->object_table = rt & 4;
    return mt_ok();
}

static mt_status account_sas_check(const az_account *acct, const az_http_request *req,
                                   char *const *v, bool known, az_grant *g)
{
    mt_status st;

    if (!v[F_SV] || !v[F_SS] || !v[F_SRT] || !v[F_SP] || !v[F_SE])
        return az_auth_deny(AZ_ERR_AUTHN, "An account SAS needs sv, ss, srt, sp, se and sig.");
    st = signed_check(acct, v, known, "2015-04-05", account_sas_string,
                      "The signed version (sv) of an account SAS must be 2015-04-05 or later.");
    if (!mt_is_ok(&st))
        return st;
    st = check_terms(req, &(sas_terms){v[F_ST], v[F_SE], v[F_SIP], v[F_SPR]});
    if (!mt_is_ok(&st))
        return st;
    return account_scope(v, g);
}

/* ------------------------------------------------------------------------ */
/* Table (service) SAS.                                                      */

static void table_resource(mt_buf *b, const az_account *acct, const char *sv, const char *tn)
{
    /* The service name joined the resource in 2015-02-21; the table name
     * is always signed in lower case. */
    if (strcmp(sv, "2015-02-21") >= 0)
        mt_buf_puts(b, "/table");
    mt_buf_put(b, "/", 1);
    mt_buf_puts(b, acct->name);
    mt_buf_put(b, "/", 1);
    size_t start = b->len;
    mt_buf_puts(b, tn);
    for (size_t i = start; !b->oom && i < b->len; i++)
        if (b->p[i] >= 'A' && b->p[i] <= 'Z')
            b->p[i] = (char)(b->p[i] - 'A' + 'a');
    mt_buf_put(b, "\n", 1);
}

static void table_sas_string(mt_buf *b, const az_account *acct, char *const *v)
{
    static const sas_field times[] = {F_SP, F_ST, F_SE}, ranges[] = {F_SV, F_SPK, F_SRK, F_EPK};

    sts_fields(b, v, times, sizeof times / sizeof *times);
    table_resource(b, acct, v[F_SV], v[F_TN]);
    az_sts_line(b, v[F_SI]);
    /* sip and spr are signed from 2015-04-05 on. */
    if (strcmp(v[F_SV], "2015-04-05") >= 0) {
        az_sts_line(b, v[F_SIP]);
        az_sts_line(b, v[F_SPR]);
    }
    sts_fields(b, v, ranges, sizeof ranges / sizeof *ranges);
    mt_buf_puts(b, v[F_ERK]);
}

/* One field from the SAS or from the stored policy, never both. The
 * documentation speaks of a 400 for a field given twice; the service
 * itself fails the authentication (403 AuthenticationFailed, with the
 * words below), and so does this. */
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
            return az_auth_deny(AZ_ERR_AUTHN,
                                "The stored access policy named by si does not exist on the "
                                "table.");
        t->policy.start[sizeof t->policy.start - 1] = '\0';
        t->policy.expiry[sizeof t->policy.expiry - 1] = '\0';
        t->policy.permission[sizeof t->policy.permission - 1] = '\0';
    }
    if (!merge_field(v[F_SP], t->policy.permission, &t->sp) ||
        !merge_field(v[F_ST], t->policy.start, &t->st) ||
        !merge_field(v[F_SE], t->policy.expiry, &t->se))
        return az_auth_deny(AZ_ERR_AUTHN, "Access policy fields can be associated with signature "
                                          "or SAS identifier but not both");
    if (!t->sp)
        return az_auth_deny(AZ_ERR_AUTHN,
                            "Signed permission must be specified in signature or SAS identifier");
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
        return az_auth_deny(AZ_ERR_AUTHN,
                            "The signed permissions (sp) of a table SAS must be letters of "
                            "raud, each at most once.");
    if ((v[F_SRK] && *v[F_SRK] && !(v[F_SPK] && *v[F_SPK])) ||
        (v[F_ERK] && *v[F_ERK] && !(v[F_EPK] && *v[F_EPK])))
        return az_auth_deny(AZ_ERR_AUTHN, "srk needs spk and erk needs epk.");
    if (!copy_bound(g->table, sizeof g->table, v[F_TN]) || !g->table[0])
        return az_auth_deny(AZ_ERR_AUTHN, "The table name (tn) is not a valid table name.");
    if (!copy_bound(g->spk, sizeof g->spk, v[F_SPK]) ||
        !copy_bound(g->srk, sizeof g->srk, v[F_SRK]) ||
        !copy_bound(g->epk, sizeof g->epk, v[F_EPK]) ||
        !copy_bound(g->erk, sizeof g->erk, v[F_ERK]))
        return az_auth_deny(AZ_ERR_AUTHN, "A key range bound (spk, srk, epk, erk) is too long.");
    return mt_ok();
}

static mt_status table_sas_check(const az_account *acct, const az_http_request *req, char *const *v,
                                 bool known, az_acl_lookup lookup, void *ctx, az_grant *g)
{
    table_terms t;
    mt_status st;

    if (!v[F_SV] || !v[F_TN])
        return az_auth_deny(AZ_ERR_AUTHN,
                            "A table SAS needs sv, tn and sig (an account SAS needs ss and "
                            "srt).");
    if (!v[F_SI] && (!v[F_SP] || !v[F_SE]))
        return az_auth_deny(AZ_ERR_AUTHN,
                            "A table SAS without a stored access policy (si) needs sp and se.");
    st = signed_check(acct, v, known, "2012-02-12", table_sas_string,
                      "The signed version (sv) of a table SAS must be 2012-02-12 or later.");
    if (!mt_is_ok(&st))
        return st;
    st = table_policy(v, lookup, ctx, &t);
    if (!mt_is_ok(&st))
        return st;
    st = check_terms(req, &(sas_terms){t.st, t.se, v[F_SIP], v[F_SPR]});
    if (!mt_is_ok(&st))
        return st;
    return table_scope(v, &t, g);
}

/* ------------------------------------------------------------------------ */
/* Verifying a SAS.                                                          */
/*
 * A client sends one SAS with every request, so each thread keeps the
 * last query whose signature it verified, for which account and key, and
 * the fields decoded from it: the same query text again needs neither the
 * decoding nor the string-to-sign and its HMAC. Everything else (the
 * version, the stored policy, times, IP, protocol, permissions and scope)
 * is checked on every request as before. Fixed buffers, so a thread that
 * ends leaves nothing behind; a query or a key that does not fit is
 * simply not kept. The query (which holds the signature) and the key are
 * compared in constant time, as the signature itself is.
 */

#define SAS_MEMO_QUERY 1024
#define SAS_MEMO_KEY 128
#define SAS_MEMO_NAME 64

typedef struct sas_memo {
    bool valid;
    size_t query_len;
    char query[SAS_MEMO_QUERY];
    char name[SAS_MEMO_NAME];
    uint8_t key[SAS_MEMO_KEY];
    size_t key_len;
    char text[SAS_MEMO_QUERY + F_COUNT]; /* the decoded fields, NUL-ended */
    int at[F_COUNT];                     /* where each starts in text; -1: absent */
} sas_memo;

static _Thread_local sas_memo memo;

/* Whether acct is the account memo was made for. */
static bool memo_same_account(const az_account *acct)
{
    return memo.key_len == acct->key_len && strcmp(memo.name, acct->name) == 0 &&
           CRYPTO_memcmp(memo.key, acct->key, acct->key_len) == 0;
}

/* Points v at the fields of query when the thread verified it last. */
static bool memo_lookup(const az_account *acct, const char *query, char **v)
{
    if (!memo.valid || !query || strlen(query) != memo.query_len ||
        CRYPTO_memcmp(memo.query, query, memo.query_len) != 0 || !memo_same_account(acct))
        return false;
    for (int i = 0; i < F_COUNT; i++)
        v[i] = memo.at[i] < 0 ? NULL : memo.text + memo.at[i];
    return true;
}

/* Keeps query and its decoded fields v, a SAS that passed every check. */
static void memo_keep(const az_account *acct, const char *query, char *const *v)
{
    size_t ql = strlen(query), nl = strlen(acct->name), used = 0;
    memo.valid = false;
    if (ql >= sizeof memo.query || nl >= sizeof memo.name || acct->key_len > sizeof memo.key)
        return;
    for (int i = 0; i < F_COUNT; i++) {
        memo.at[i] = -1;
        if (!v[i])
            continue;
        size_t n = strlen(v[i]) + 1;
        if (n > sizeof memo.text - used)
            return;
        memcpy(memo.text + used, v[i], n);
        memo.at[i] = (int)used;
        used += n;
    }
    memcpy(memo.query, query, ql + 1);
    memo.query_len = ql;
    memcpy(memo.name, acct->name, nl + 1);
    memcpy(memo.key, acct->key, acct->key_len);
    memo.key_len = acct->key_len;
    memo.valid = true;
}

mt_status az_sas_check(const az_account *acct, const az_http_request *req, az_acl_lookup lookup,
                       void *ctx, az_grant *g)
{
    char *v[F_COUNT] = {0};
    const char *bad = NULL;
    bool any = false;
    mt_status st;

    if (memo_lookup(acct, req->query, v)) {
        st = v[F_SS] || v[F_SRT] ? account_sas_check(acct, req, v, true, g)
                                 : table_sas_check(acct, req, v, true, lookup, ctx, g);
        return st; /* v points into the memo: nothing to free */
    }
    if (!az_query_collect(req->query, sas_names, F_COUNT, v, &bad)) {
        st = mt_error(403, AZ_ERR_AUTHN,
                      "The SAS field %s is repeated, too long or badly "
                      "percent-encoded.",
                      bad ? bad : "?");
        goto out;
    }
    for (int i = 0; i < F_COUNT; i++)
        any = any || v[i];
    if (!v[F_SIG]) {
        st = az_auth_deny(AZ_ERR_AUTHN,
                          any ? "The shared access signature has no signature (sig)."
                              : "The request carries neither an Authorization header nor a "
                                "shared access signature.");
        goto out;
    }
    if (v[F_SS] || v[F_SRT])
        st = account_sas_check(acct, req, v, false, g);
    else
        st = table_sas_check(acct, req, v, false, lookup, ctx, g);
    if (mt_is_ok(&st))
        memo_keep(acct, req->query, v);
out:
    az_query_free(v, F_COUNT);
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
    return az_auth_deny(ERR_PERM,
                        "This request is not authorized to perform this operation using this "
                        "permission.");
}

static mt_status table_grant_check(const az_grant *g, unsigned perm, bool table_level,
                                   const char *table, const char *pk, const char *rk)
{
    if (table_level)
        return az_auth_deny(ERR_AUTHZ,
                            "This request is not authorized to perform this operation: a "
                            "table SAS cannot list, create or delete tables or use ACLs.");
    if (!table || strcasecmp(table, g->table) != 0)
        return az_auth_deny(ERR_AUTHZ,
                            "This request is not authorized to perform this operation: the "
                            "shared access signature is for another table.");
    if (!perms_cover(g->perms, perm))
        return permission_denied();
    if (pk && !key_in_range(g, pk, rk))
        return az_auth_deny(ERR_AUTHZ,
                            "This request is not authorized to perform this operation: the "
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
        return az_auth_deny(ERR_AUTHZ,
                            "This request is not authorized to perform this operation: table "
                            "ACLs need the account key.");
    if (!type_ok)
        return az_auth_deny(ERR_RESTYPE,
                            "This request is not authorized to perform this operation using "
                            "this resource type.");
    if (!perms_cover(g->perms, perm))
        return permission_denied();
    return mt_ok();
}

mt_status az_grant_check(const az_grant *g, unsigned perm, bool table_level, const char *table,
                         const char *pk, const char *rk)
{
    if (!g)
        return az_auth_deny(AZ_ERR_AUTHN, "The request was not authenticated.");
    if (g->shared_key)
        return mt_ok();
    if (g->table[0])
        return table_grant_check(g, perm, table_level, table, pk, rk);
    return account_grant_check(g, perm, table_level, table);
}

/* ------------------------------------------------------------------------ */
/* A grant's key range as a query bound.                                     */

/* Keys at or after (pk, rk): "PartitionKey ge P" when rk is empty. */
static mt_filter *range_lower(const char *pk, const char *rk, bool coarse)
{
    mt_value p = mt_v_str(pk), r = mt_v_str(rk);
    if (!rk[0] || coarse)
        return mt_filter_cmp("PartitionKey", MT_GE, &p);
    return mt_filter_or(mt_filter_cmp("PartitionKey", MT_GT, &p),
                        mt_filter_and(mt_filter_cmp("PartitionKey", MT_EQ, &p),
                                      mt_filter_cmp("RowKey", MT_GE, &r)));
}

/* Keys at or before (pk, rk): "PartitionKey le P" when rk is empty. */
static mt_filter *range_upper(const char *pk, const char *rk, bool coarse)
{
    mt_value p = mt_v_str(pk), r = mt_v_str(rk);
    if (!rk[0] || coarse)
        return mt_filter_cmp("PartitionKey", MT_LE, &p);
    return mt_filter_or(mt_filter_cmp("PartitionKey", MT_LT, &p),
                        mt_filter_and(mt_filter_cmp("PartitionKey", MT_EQ, &p),
                                      mt_filter_cmp("RowKey", MT_LE, &r)));
}

bool az_grant_key_range(const az_grant *g, bool coarse, mt_filter **range, mt_key *start)
{
    *range = NULL;
    if (!g || g->shared_key || !g->table[0] || (!g->spk[0] && !g->epk[0]))
        return true;
    mt_filter *lo = g->spk[0] ? range_lower(g->spk, g->srk, coarse) : NULL;
    mt_filter *hi = g->epk[0] ? range_upper(g->epk, g->erk, coarse) : NULL;
    if ((g->spk[0] && !lo) || (g->epk[0] && !hi)) {
        mt_filter_free(lo);
        mt_filter_free(hi);
        return false;
    }
    *range = lo && hi ? mt_filter_and(lo, hi) : lo ? lo : hi;
    if (!*range)
        return false;
    if (start && g->spk[0])
        mt_key_set(start, g->spk, g->srk);
    return true;
}

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
 * Signatures are compared with CRYPTO_memcmp; no message carries a key, a
 * computed signature or a string-to-sign.
 *
 * Dates are read by the parsers every other part of the proxy uses
 * (az_rfc1123_parse, and the core's Edm.DateTime parser for SAS times,
 * which also take a bare YYYY-MM-DD), so no two readings of a time differ.
 *
 * A SAS is verified in az_auth_sas.c, which also says what the grant it
 * yields may do.
 */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "az_internal.h"

#define SIG_LEN 44            /* base64 of a 32-byte HMAC-SHA256 */
#define DATE_WINDOW (15 * 60) /* seconds a Shared Key request stays valid */
#define FIELD_MAX 4096        /* longest SAS field we decode */

#define MSG_BAD_MAC                                                                                \
    "Server failed to authenticate the request. Make sure the value of Authorization "             \
    "header is formed correctly including the signature."

/* ------------------------------------------------------------------------ */
/* Small tools: statuses, string-to-sign lines, HMAC.                        */

mt_status az_auth_deny(const char *code, const char *msg)
{
    return mt_error(403, code, "%s", msg);
}

void az_sts_line(mt_buf *b, const char *s)
{
    mt_buf_puts(b, s);
    mt_buf_put(b, "\n", 1);
}

/* HMAC-SHA256 contexts. Fetching the algorithm and deriving the padded key
 * cost more than hashing a short string-to-sign, and a request checks or
 * makes signatures with the same few keys (the proxy's account, the old
 * and the new backend), so each thread keeps a context per key for its
 * last HMAC_KEYS keys (freed with the thread, key copies cleansed) and
 * re-initialises one per message. Each slot also keeps the last
 * HMAC_KEPT messages it signed (up to HMAC_MSG_MAX bytes each) and their
 * signatures: every request with one SAS token has the same
 * string-to-sign, so a client reusing its token costs one comparison
 * instead of an HMAC. Two, because the thread that checks a client's
 * token with the account's key often signs the backend request with the
 * same key next (the development account, or a proxy given the backend's
 * key): with one kept message the two would evict each other. Nothing
 * secret is kept in plain: the message is built from the request, the
 * signature is the token's own. */
#define HMAC_KEYS 4
#define HMAC_KEPT 2
#define HMAC_MSG_MAX 1024

typedef struct hmac_kept {
    size_t len; /* 0: no message kept */
    char msg[HMAC_MSG_MAX];
    char sig[SIG_LEN + 1];
} hmac_kept;

typedef struct hmac_slot {
    EVP_MAC_CTX *ctx;
    uint8_t *key;
    size_t key_len;
    hmac_kept kept[HMAC_KEPT];
    unsigned kept_next; /* the entry the next new message replaces */
} hmac_slot;

typedef struct hmac_cache {
    hmac_slot slot[HMAC_KEYS];
    unsigned next; /* the slot a new key takes */
} hmac_cache;

static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static pthread_key_t hmac_tls;
static bool hmac_tls_ok;
static EVP_MAC *hmac_alg;

static void hmac_slot_clear(hmac_slot *sl)
{
    EVP_MAC_CTX_free(sl->ctx);
    if (sl->key)
        OPENSSL_cleanse(sl->key, sl->key_len);
    free(sl->key);
    memset(sl, 0, sizeof *sl);
}

static void hmac_cache_free(void *p)
{
    hmac_cache *hc = p;
    for (size_t i = 0; hc && i < HMAC_KEYS; i++)
        hmac_slot_clear(&hc->slot[i]);
    free(hc);
}

static void hmac_init_once(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    hmac_tls_ok = hmac_alg && pthread_key_create(&hmac_tls, hmac_cache_free) == 0;
}

static bool hmac_slot_key(hmac_slot *sl, const uint8_t *key, size_t key_len)
{
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    sl->key = malloc(key_len ? key_len : 1);
    sl->ctx = sl->key ? EVP_MAC_CTX_new(hmac_alg) : NULL;
    if (!sl->ctx || !EVP_MAC_init(sl->ctx, key, key_len, params)) {
        hmac_slot_clear(sl);
        return false;
    }
    memcpy(sl->key, key, key_len);
    sl->key_len = key_len;
    return true;
}

/* This thread's slot keyed with key; NULL when none can be made. */
static hmac_slot *hmac_slot_for(const uint8_t *key, size_t key_len)
{
    pthread_once(&hmac_once, hmac_init_once);
    if (!hmac_tls_ok)
        return NULL;
    hmac_cache *hc = pthread_getspecific(hmac_tls);
    if (!hc) {
        if (!(hc = calloc(1, sizeof *hc)) || pthread_setspecific(hmac_tls, hc) != 0) {
            free(hc);
            return NULL;
        }
    }
    for (size_t i = 0; i < HMAC_KEYS; i++) {
        hmac_slot *sl = &hc->slot[i];
        if (sl->ctx && sl->key_len == key_len && CRYPTO_memcmp(sl->key, key, key_len) == 0)
            return sl;
    }
    hmac_slot *sl = &hc->slot[hc->next];
    hc->next = (hc->next + 1) % HMAC_KEYS;
    hmac_slot_clear(sl);
    return hmac_slot_key(sl, key, key_len) ? sl : NULL;
}

/* base64(HMAC-SHA256(key, msg)) into out; false only if OpenSSL fails. */
static bool hmac_b64(const uint8_t *key, size_t key_len, const char *msg, size_t len,
                     char out[SIG_LEN + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;

    if (key_len > INT_MAX)
        return false;
    hmac_slot *sl = hmac_slot_for(key, key_len);
    if (!sl)
        return false;
    for (size_t i = 0; len && i < HMAC_KEPT; i++) {
        const hmac_kept *k = &sl->kept[i];
        if (k->len == len && memcmp(k->msg, msg, len) == 0) {
            memcpy(out, k->sig, SIG_LEN + 1);
            return true;
        }
    }
    if (!EVP_MAC_init(sl->ctx, NULL, 0, NULL) ||
        !EVP_MAC_update(sl->ctx, (const unsigned char *)msg, len) ||
        !EVP_MAC_final(sl->ctx, mac, &mac_len, sizeof mac) || mac_len != 32)
        return false;
    EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
    if (len && len <= HMAC_MSG_MAX) {
        hmac_kept *k = &sl->kept[sl->kept_next];
        sl->kept_next = (sl->kept_next + 1) % HMAC_KEPT;
        k->len = len;
        memcpy(k->msg, msg, len);
        memcpy(k->sig, out, SIG_LEN + 1);
    }
    return true;
}

/* Constant time over the signature bytes; the length of a valid signature
 * is no secret. */
bool az_sig_matches(const az_account *acct, const mt_buf *msg, const char *sig)
{
    char want[SIG_LEN + 1];

    if (msg->oom || !msg->p || !sig || strlen(sig) != SIG_LEN)
        return false;
    if (!hmac_b64(acct->key, acct->key_len, msg->p, msg->len, want))
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

bool az_query_collect(const char *query, const char *const *names, size_t n, char **vals,
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

void az_query_free(char **vals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(vals[i]);
        vals[i] = NULL;
    }
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
static void add_resource(mt_buf *b, const char *account, const char *path, const char *comp,
                         bool doubled)
{
    if (doubled) {
        mt_buf_put(b, "/", 1);
        mt_buf_puts(b, account);
    }
    mt_buf_puts(b, path);
    if (comp) {
        mt_buf_puts(b, "?comp=");
        mt_buf_puts(b, comp);
    }
}

static void add_sk_prefix(mt_buf *b, const az_http_request *req, bool lite, const char *date)
{
    if (!lite) {
        az_sts_line(b, req->method);
        az_sts_line(b, header(req, "Content-MD5"));
        az_sts_line(b, header(req, "Content-Type"));
    }
    az_sts_line(b, date);
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
        mt_buf b = {0};
        if (!doubled && !host_style_ok)
            break;
        add_sk_prefix(&b, req, a->lite, date);
        add_resource(&b, acct->name, path, comp, doubled);
        *oom = *oom || b.oom;
        ok = az_sig_matches(acct, &b, a->sig);
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
        return az_auth_deny(AZ_ERR_AUTHN,
                            "The request has neither an x-ms-date nor a Date header.");
    if (!az_rfc1123_parse(*date, &t))
        return az_auth_deny(AZ_ERR_AUTHN, "The x-ms-date or Date header is not an RFC 1123 date.");
    if ((int64_t)t < (int64_t)req->now - DATE_WINDOW ||
        (int64_t)t > (int64_t)req->now + DATE_WINDOW)
        return az_auth_deny(AZ_ERR_AUTHN,
                            "Request date header too old or too far in the future: it must be "
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
        return mt_oom();
    if (!parse_authorization(hdr, &a)) {
        st = az_auth_deny(AZ_ERR_AUTHN,
                          "The Authorization header is not of the form "
                          "'SharedKey account:signature' or 'SharedKeyLite account:signature'.");
        goto out;
    }
    if (strcmp(a.account, acct->name) != 0) {
        st = az_auth_deny(AZ_ERR_AUTHN,
                          "The account name in the Authorization header is not this account.");
        goto out;
    }
    st = sk_date(req, &date);
    if (!mt_is_ok(&st))
        goto out;
    if (!az_query_collect(req->query, names, 1, comp, &bad)) {
        st = az_auth_deny(AZ_ERR_AUTHN, "The comp query parameter is malformed or repeated.");
        goto out;
    }
    if (!sk_signature_ok(acct, req, &a, date, comp[0], &oom)) {
        st = oom ? mt_oom() : az_auth_deny(AZ_ERR_AUTHN, MSG_BAD_MAC);
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
/* The entry point.                                                          */

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
        return az_auth_deny(AZ_ERR_AUTHN, "The request cannot be authenticated.");
    auth = header(req, "Authorization");
    if (auth)
        st = shared_key_check(acct, req, auth, grant);
    else
        st = az_sas_check(acct, req, acl_lookup, acl_ctx, grant);
    if (!mt_is_ok(&st))
        memset(grant, 0, sizeof *grant);
    return st;
}

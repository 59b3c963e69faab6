/*
 * az_connstr.c -- Azure Storage connection strings, resolved to a table
 * endpoint and one credential.
 *
 * The format is Azure's: "Name=value" settings separated by ';', names
 * case-insensitive, a value running to the next ';' (a SAS holds '=' and
 * '&', never ';'). Empty segments are allowed (a trailing ';' is common).
 * Three shapes are accepted:
 *   - UseDevelopmentStorage=true, optionally with DevelopmentStorageProxyUri
 *     (its scheme and host replace http://127.0.0.1, the port stays 10002),
 *     and nothing else: the emulator's well-known account and key;
 *   - an account with AccountKey: the endpoint is TableEndpoint if given,
 *     else DefaultEndpointsProtocol (https by default) :// AccountName
 *     .table. EndpointSuffix (core.windows.net by default);
 *   - SharedAccessSignature, with TableEndpoint or with AccountName;
 *   - Credential=ClientSecret | WorkloadIdentity | ManagedIdentity (a
 *     Microsoft Entra ID token credential, see az_token.c), with
 *     TableEndpoint or with AccountName, and TenantId, ClientId,
 *     ClientSecret, FederatedTokenFile, AuthorityHost, IdentityEndpoint as
 *     the kind needs them. What the string leaves unset comes from the
 *     environment variables the Azure SDKs' credentials read
 *     (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
 *     AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST, IDENTITY_ENDPOINT,
 *     IDENTITY_HEADER), so a pod set up for workload identity needs only
 *     "AccountName=acct;Credential=WorkloadIdentity".
 * The settings of the other services (BlobEndpoint, QueueEndpoint,
 * FileEndpoint, *SecondaryEndpoint) are accepted and ignored, so a string
 * copied from the portal or from Azurite's documentation works as is. Our
 * one extension, TableName, names the table a backend uses.
 *
 * Everything else is refused rather than guessed: an unknown or repeated
 * setting, a key that is not base64, a key together with a SAS, a value
 * that is empty. A refusal names the setting, never echoes a secret, and
 * is a 400 InvalidInput status like every bad input of this library.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "az.h"
#include "az_client.h"

enum {
    S_PROTOCOL,
    S_ACCOUNT_NAME,
    S_ACCOUNT_KEY,
    S_TABLE_ENDPOINT,
    S_ENDPOINT_SUFFIX,
    S_SAS,
    S_DEV_STORAGE,
    S_DEV_PROXY,
    S_TABLE_NAME,
    S_CREDENTIAL,
    S_TENANT_ID,
    S_CLIENT_ID,
    S_CLIENT_SECRET,
    S_TOKEN_FILE,
    S_AUTHORITY_HOST,
    S_IDENTITY_ENDPOINT,
    S_IGNORED, /* the other services' endpoints; may repeat */
    S_COUNT = S_IGNORED,
};

typedef struct setting_name {
    const char *name;
    int id;
    bool secret; /* never echoed, not even in part */
} setting_name;

static const setting_name known[] = {
    {"DefaultEndpointsProtocol", S_PROTOCOL, false},
    {"AccountName", S_ACCOUNT_NAME, false},
    {"AccountKey", S_ACCOUNT_KEY, true},
    {"TableEndpoint", S_TABLE_ENDPOINT, false},
    {"EndpointSuffix", S_ENDPOINT_SUFFIX, false},
    {"SharedAccessSignature", S_SAS, true},
    {"UseDevelopmentStorage", S_DEV_STORAGE, false},
    {"DevelopmentStorageProxyUri", S_DEV_PROXY, false},
    {"TableName", S_TABLE_NAME, false},
    {"Credential", S_CREDENTIAL, false},
    {"TenantId", S_TENANT_ID, false},
    {"ClientId", S_CLIENT_ID, false},
    {"ClientSecret", S_CLIENT_SECRET, true},
    {"FederatedTokenFile", S_TOKEN_FILE, false},
    {"AuthorityHost", S_AUTHORITY_HOST, false},
    {"IdentityEndpoint", S_IDENTITY_ENDPOINT, false},
    {"BlobEndpoint", S_IGNORED, false},
    {"QueueEndpoint", S_IGNORED, false},
    {"FileEndpoint", S_IGNORED, false},
    {"TableSecondaryEndpoint", S_IGNORED, false},
    {"BlobSecondaryEndpoint", S_IGNORED, false},
    {"QueueSecondaryEndpoint", S_IGNORED, false},
    {"FileSecondaryEndpoint", S_IGNORED, false},
};

/* The settings of one string: spans into a private copy. */
typedef struct settings {
    char *buf;
    const char *v[S_COUNT]; /* NULL when absent */
} settings;

static mt_status bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static mt_status bad(const char *fmt, ...)
{
    char msg[MT_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mt_error(400, MT_ERR_INVALID_INPUT, "Invalid connection string: %s", msg);
}

static mt_status oom(void)
{
    return mt_oom();
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static const setting_name *lookup(const char *name)
{
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(known[i].name, name) == 0)
            return &known[i];
    return NULL;
}

/* Short and letters only: safe to echo in a message. */
static bool plain_name(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (!isalpha((unsigned char)s[i]))
            return false;
    return n <= 32;
}

/* Splits the string into settings; every segment must be name=value. */
static mt_status split(const char *s, settings *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return bad("it is empty");
    if (!(out->buf = strdup(s)))
        return oom();
    int seg = 0, nonempty = 0;
    for (char *save = NULL, *p = strtok_r(out->buf, ";", &save); p;
         p = strtok_r(NULL, ";", &save)) {
        seg++;
        char *part = trim(p);
        if (!*part)
            continue;
        nonempty++;
        char *eq = strchr(part, '=');
        if (!eq)
            return bad("segment %d is not Name=value", seg);
        *eq = '\0';
        char *name = trim(part), *value = trim(eq + 1);
        const setting_name *k = lookup(name);
        if (!*name)
            return bad("segment %d has no setting name", seg);
        if (!k && plain_name(name))
            return bad("unknown setting '%s'", name);
        if (!k) /* it may be a pasted secret: do not echo it */
            return bad("unknown setting in segment %d", seg);
        if (!*value)
            return bad("%s has an empty value", k->name);
        if (k->id == S_IGNORED)
            continue;
        if (out->v[k->id])
            return bad("%s is given more than once", k->name);
        out->v[k->id] = value;
    }
    if (!nonempty)
        return bad("it is empty");
    return mt_ok();
}

static void settings_clear(settings *st)
{
    if (st->buf) {
        explicit_bzero(st->buf, strlen(st->buf));
        free(st->buf);
    }
    memset(st, 0, sizeof *st);
}

/* http or https, case-insensitive; *https says which. */
static bool scheme_ok(const char *s, size_t n, bool *https)
{
    if (n == 4 && strncasecmp(s, "http", 4) == 0)
        *https = false;
    else if (n == 5 && strncasecmp(s, "https", 5) == 0)
        *https = true;
    else
        return false;
    return true;
}

static bool host_char(int c)
{
    return isalnum(c) || c == '.' || c == '-' || c == '_' || c == '[' || c == ']' || c == ':';
}

static bool path_char(int c)
{
    return c > 0x20 && c < 0x7f && c != '?' && c != '#' && c != '\\' && c != '"';
}

/* An absolute http(s) URL with a host and no query or fragment. On success
 * *host_at and *host_len locate the host[:port] and *norm is the URL with a
 * lowercase scheme and no trailing '/' (the caller frees it). */
static bool url_parse(const char *v, bool *https, size_t *host_at, size_t *host_len, char **norm)
{
    const char *sep = strstr(v, "://");
    if (!sep || !scheme_ok(v, (size_t)(sep - v), https))
        return false;
    const char *host = sep + 3, *p = host;
    while (*p && *p != '/') {
        if (!host_char((unsigned char)*p))
            return false;
        p++;
    }
    if (p == host || *host == ':')
        return false;
    for (const char *q = p; *q; q++)
        if (!path_char((unsigned char)*q))
            return false;
    size_t n = strlen(v);
    while (n > (size_t)(p - v) && v[n - 1] == '/')
        n--;
    const char *scheme = *https ? "https" : "http";
    size_t rest = n - (size_t)(host - v);
    *norm = malloc(strlen(scheme) + 3 + rest + 1);
    if (!*norm)
        return false;
    sprintf(*norm, "%s://%.*s", scheme, (int)rest, host);
    *host_at = strlen(scheme) + 3;
    *host_len = (size_t)(p - host);
    return true;
}

/* Account names: what a host label and a path segment can both hold. */
static bool account_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]))
            return false;
    return true;
}

static bool suffix_ok(const char *s)
{
    if (!*s || *s == '.' || *s == '-')
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
            return false;
    return true;
}

static mt_status set_key(az_connstr *out, const char *b64)
{
    uint8_t *key = NULL;
    size_t len = 0;
    if (!az_base64_decode(b64, strlen(b64), &key, &len) || len == 0) {
        if (key)
            explicit_bzero(key, len);
        free(key);
        return bad("AccountKey is not valid base64");
    }
    out->key = key;
    out->key_len = len;
    return mt_ok();
}

static mt_status resolve_dev(const settings *s, az_connstr *out)
{
    for (int i = 0; i < S_COUNT; i++)
        if (s->v[i] && i != S_DEV_STORAGE && i != S_DEV_PROXY && i != S_TABLE_NAME)
            return bad("UseDevelopmentStorage cannot be combined with %s", known[i].name);
    if (strcasecmp(s->v[S_DEV_STORAGE], "true") != 0)
        return bad("UseDevelopmentStorage accepts only the value true");
    char host[256] = "127.0.0.1";
    bool https = false;
    if (s->v[S_DEV_PROXY]) {
        size_t at, len;
        char *norm = NULL;
        if (!url_parse(s->v[S_DEV_PROXY], &https, &at, &len, &norm))
            return bad("DevelopmentStorageProxyUri is not an http(s) URL");
        /* The proxy's host only: the emulator's port and path stay. */
        const char *h = norm + at;
        size_t hl = len;
        const char *colon = h[0] == '[' ? memchr(h, ']', hl) : memchr(h, ':', hl);
        if (colon && *colon == ']')
            colon++;
        if (colon && (size_t)(colon - h) < hl)
            hl = (size_t)(colon - h);
        if (hl >= sizeof host) {
            free(norm);
            return bad("DevelopmentStorageProxyUri has too long a host");
        }
        memcpy(host, h, hl);
        host[hl] = '\0';
        free(norm);
    }
    char url[400];
    snprintf(url, sizeof url, "%s://%s:%d/%s", https ? "https" : "http", host, AZ_DEV_TABLE_PORT,
             AZ_DEV_ACCOUNT);
    out->dev_storage = true;
    if (!(out->endpoint = strdup(url)) || !(out->account = strdup(AZ_DEV_ACCOUNT)))
        return oom();
    return set_key(out, AZ_DEV_KEY);
}

static mt_status resolve_endpoint(const settings *s, az_connstr *out)
{
    bool https = true;
    if (s->v[S_PROTOCOL] && !scheme_ok(s->v[S_PROTOCOL], strlen(s->v[S_PROTOCOL]), &https))
        return bad("DefaultEndpointsProtocol must be http or https");
    if (s->v[S_TABLE_ENDPOINT]) {
        size_t at, len;
        if (!url_parse(s->v[S_TABLE_ENDPOINT], &https, &at, &len, &out->endpoint))
            return bad("TableEndpoint is not an http(s) URL without query");
        return mt_ok();
    }
    if (!s->v[S_ACCOUNT_NAME])
        return bad("AccountName or TableEndpoint is required");
    const char *suffix = s->v[S_ENDPOINT_SUFFIX] ? s->v[S_ENDPOINT_SUFFIX] : "core.windows.net";
    if (!suffix_ok(suffix))
        return bad("EndpointSuffix is not a DNS suffix");
    size_t n = strlen(suffix) + strlen(s->v[S_ACCOUNT_NAME]) + 32;
    if (!(out->endpoint = malloc(n)))
        return oom();
    snprintf(out->endpoint, n, "%s://%s.table.%s", https ? "https" : "http", s->v[S_ACCOUNT_NAME],
             suffix);
    return mt_ok();
}

/* The setting, else the environment variable, else NULL; copied. */
static mt_status pick(const settings *s, int id, const char *env, char **out)
{
    const char *v = s->v[id];
    if (!v && env)
        v = getenv(env);
    if (!v || !*v)
        return mt_ok();
    return (*out = strdup(v)) ? mt_ok() : oom();
}

static bool is_tenant(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)t[i]) && t[i] != '-' && t[i] != '.')
            return false;
    return true;
}

/* The Entra settings of s into out->cred. */
static mt_status resolve_cred(const settings *s, az_connstr *out)
{
    az_cred *c = &out->cred;
    const char *kind = s->v[S_CREDENTIAL];
    if (strcasecmp(kind, "ClientSecret") == 0)
        c->kind = AZ_CRED_CLIENT_SECRET;
    else if (strcasecmp(kind, "WorkloadIdentity") == 0)
        c->kind = AZ_CRED_WORKLOAD;
    else if (strcasecmp(kind, "ManagedIdentity") == 0)
        c->kind = AZ_CRED_MANAGED;
    else
        return bad("Credential must be ClientSecret, WorkloadIdentity or ManagedIdentity");
    bool entra = c->kind != AZ_CRED_MANAGED;
    mt_status st = pick(s, S_CLIENT_ID, "AZURE_CLIENT_ID", &c->client_id);
    if (mt_is_ok(&st) && entra)
        st = pick(s, S_TENANT_ID, "AZURE_TENANT_ID", &c->tenant_id);
    if (mt_is_ok(&st) && entra)
        st = pick(s, S_AUTHORITY_HOST, "AZURE_AUTHORITY_HOST", &c->authority_host);
    if (mt_is_ok(&st) && c->kind == AZ_CRED_CLIENT_SECRET)
        st = pick(s, S_CLIENT_SECRET, "AZURE_CLIENT_SECRET", &c->client_secret);
    if (mt_is_ok(&st) && c->kind == AZ_CRED_WORKLOAD)
        st = pick(s, S_TOKEN_FILE, "AZURE_FEDERATED_TOKEN_FILE", &c->token_file);
    if (mt_is_ok(&st) && !entra)
        st = pick(s, S_IDENTITY_ENDPOINT, "IDENTITY_ENDPOINT", &c->identity_endpoint);
    if (mt_is_ok(&st) && !entra && getenv("IDENTITY_HEADER") && *getenv("IDENTITY_HEADER") &&
        !(c->identity_header = strdup(getenv("IDENTITY_HEADER"))))
        st = oom();
    if (!mt_is_ok(&st))
        return st;
    if (entra && !c->tenant_id)
        return bad("Credential=%s needs TenantId (or AZURE_TENANT_ID)", kind);
    if (entra && !is_tenant(c->tenant_id))
        return bad("TenantId must be letters, digits, '-' and '.'");
    if (entra && !c->client_id)
        return bad("Credential=%s needs ClientId (or AZURE_CLIENT_ID)", kind);
    if (c->kind == AZ_CRED_CLIENT_SECRET && !c->client_secret)
        return bad("Credential=ClientSecret needs ClientSecret (or AZURE_CLIENT_SECRET)");
    if (c->kind == AZ_CRED_WORKLOAD && !c->token_file)
        return bad("Credential=WorkloadIdentity needs FederatedTokenFile (or "
                   "AZURE_FEDERATED_TOKEN_FILE)");
    const char *urls[2] = {c->authority_host, c->identity_endpoint};
    const char *names[2] = {"AuthorityHost", "IdentityEndpoint"};
    for (int i = 0; i < 2; i++) {
        bool https;
        size_t at, len;
        char *norm = NULL;
        if (!urls[i])
            continue;
        if (!url_parse(urls[i], &https, &at, &len, &norm))
            return bad("%s is not an http(s) URL without query", names[i]);
        free(norm);
    }
    for (int i = S_CREDENTIAL + 1; i <= S_IDENTITY_ENDPOINT; i++)
        if (s->v[i] && ((entra && i == S_IDENTITY_ENDPOINT) ||
                        (!entra && (i == S_TENANT_ID || i == S_AUTHORITY_HOST)) ||
                        (c->kind != AZ_CRED_CLIENT_SECRET && i == S_CLIENT_SECRET) ||
                        (c->kind != AZ_CRED_WORKLOAD && i == S_TOKEN_FILE)))
            return bad("%s does not apply to Credential=%s", known[i].name, kind);
    return mt_ok();
}

static mt_status resolve_token_account(const settings *s, az_connstr *out)
{
    const char *name = s->v[S_ACCOUNT_NAME];
    if (s->v[S_ACCOUNT_KEY] || s->v[S_SAS])
        return bad("give Credential or AccountKey or SharedAccessSignature, not two of them");
    if (name && !account_ok(name))
        return bad("AccountName must be 1 to 63 letters and digits");
    mt_status st = resolve_endpoint(s, out);
    if (mt_is_ok(&st) && name && !(out->account = strdup(name)))
        st = oom();
    return mt_is_ok(&st) ? resolve_cred(s, out) : st;
}

static mt_status resolve_account(const settings *s, az_connstr *out)
{
    if (s->v[S_DEV_PROXY])
        return bad("DevelopmentStorageProxyUri needs UseDevelopmentStorage=true");
    if (s->v[S_CREDENTIAL])
        return resolve_token_account(s, out);
    for (int i = S_TENANT_ID; i <= S_IDENTITY_ENDPOINT; i++)
        if (s->v[i])
            return bad("%s needs Credential", known[i].name);
    const char *name = s->v[S_ACCOUNT_NAME], *key = s->v[S_ACCOUNT_KEY], *sas = s->v[S_SAS];
    if (name && !account_ok(name))
        return bad("AccountName must be 1 to 63 letters and digits");
    if (key && sas)
        return bad("give AccountKey or SharedAccessSignature, not both");
    if (!key && !sas)
        return bad("no credential: AccountKey, SharedAccessSignature or Credential is required");
    if (key && !name)
        return bad("AccountKey needs AccountName");
    mt_status st = resolve_endpoint(s, out);
    if (!mt_is_ok(&st))
        return st;
    if (name && !(out->account = strdup(name)))
        return oom();
    if (key)
        return set_key(out, key);
    if (*sas == '?')
        sas++;
    if (!strstr(sas, "sig=") || strpbrk(sas, " \t#"))
        return bad("SharedAccessSignature is not a SAS query (no sig)");
    if (!(out->sas = strdup(sas)))
        return oom();
    return mt_ok();
}

mt_status az_connstr_parse(const char *s, az_connstr *out)
{
    settings set;
    memset(out, 0, sizeof *out);
    mt_status st = split(s, &set);
    if (mt_is_ok(&st) && set.v[S_TABLE_NAME] && !az_table_name_valid(set.v[S_TABLE_NAME]))
        st = bad("TableName must be a letter then letters and digits, 3 to 63 in all");
    if (mt_is_ok(&st))
        st = set.v[S_DEV_STORAGE] ? resolve_dev(&set, out) : resolve_account(&set, out);
    if (mt_is_ok(&st) && set.v[S_TABLE_NAME] && !(out->table = strdup(set.v[S_TABLE_NAME])))
        st = oom();
    settings_clear(&set);
    if (!mt_is_ok(&st))
        az_connstr_clear(out);
    return st;
}

void az_connstr_clear(az_connstr *cs)
{
    if (!cs)
        return;
    if (cs->key)
        explicit_bzero(cs->key, cs->key_len);
    if (cs->sas)
        explicit_bzero(cs->sas, strlen(cs->sas));
    free(cs->key);
    free(cs->sas);
    free(cs->endpoint);
    free(cs->account);
    free(cs->table);
    az_cred *c = &cs->cred;
    if (c->client_secret)
        explicit_bzero(c->client_secret, strlen(c->client_secret));
    if (c->identity_header)
        explicit_bzero(c->identity_header, strlen(c->identity_header));
    free(c->tenant_id);
    free(c->client_id);
    free(c->client_secret);
    free(c->token_file);
    free(c->authority_host);
    free(c->identity_endpoint);
    free(c->identity_header);
    memset(cs, 0, sizeof *cs);
}

char *az_connstr_describe(const az_connstr *cs)
{
    if (!cs || !cs->endpoint)
        return strdup("(no endpoint)");
    static const char *const creds[] = {"no credential", "Entra ID client secret",
                                        "Entra ID workload identity", "Entra ID managed identity"};
    const char *how = cs->key ? "Shared Key" : cs->sas ? "SAS" : creds[cs->cred.kind];
    size_t n = strlen(cs->endpoint) + (cs->account ? strlen(cs->account) : 0) +
               (cs->table ? strlen(cs->table) : 0) + 64;
    char *out = malloc(n);
    if (!out)
        return NULL;
    int k = snprintf(out, n, "%s (", cs->endpoint);
    if (cs->account)
        k += snprintf(out + k, n - (size_t)k, "account %s, ", cs->account);
    k += snprintf(out + k, n - (size_t)k, "%s", how);
    if (cs->table)
        k += snprintf(out + k, n - (size_t)k, ", table %s", cs->table);
    snprintf(out + k, n - (size_t)k, ")");
    return out;
}

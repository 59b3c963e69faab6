/*
 * px_config.c -- settings (defaults, environment, flags) and the process's
 * shared state.
 *
 * Each flag has an environment variable, so a container is configured by
 * environment alone; flags win over the environment, which wins over the
 * defaults. The defaults serve Azurite's well-known development account on
 * Azurite's table port, so `UseDevelopmentStorage=true` works unchanged.
 */
#include "px.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEV_ACCOUNT "devstoreaccount1"
#define DEV_KEY                                                                                \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

typedef enum opt_kind { OPT_ADDR, OPT_STR, OPT_INT } opt_kind;

typedef struct opt {
    const char *flag;
    const char *env;
    opt_kind kind;
    const char *arg;
    const char *help;
} opt;

static const opt opts[] = {
    {"--listen", "MTABLE_LISTEN", OPT_ADDR, "HOST:PORT",
     "table endpoint (default 127.0.0.1:10002)"},
    {"--admin-listen", "MTABLE_ADMIN_LISTEN", OPT_ADDR, "HOST:PORT",
     "admin and configuration endpoint (default 127.0.0.1:10090)"},
    {"--account", "MTABLE_ACCOUNT_NAME", OPT_STR, "NAME",
     "account name clients use (default devstoreaccount1)"},
    {"--account-key", "MTABLE_ACCOUNT_KEY", OPT_STR, "KEY",
     "base64 account key clients sign with (default: Azurite's development key)"},
    {"--old", "MTABLE_OLD", OPT_STR, "SPEC",
     "the old tables' backend: memory (default) or an Azure connection string"},
    {"--new", "MTABLE_NEW", OPT_STR, "SPEC",
     "the new tables' backend: memory (default) or an Azure connection string"},
    {"--backend-ca", "MTABLE_BACKEND_CA", OPT_STR, "FILE",
     "PEM CA bundle that verifies https to the backends, their token endpoints and a --jwks "
     "URL (default: the system's)"},
    {"--tls-cert", "MTABLE_TLS_CERT", OPT_STR, "FILE",
     "serve the table endpoint over https with this PEM certificate (chain) (default: http)"},
    {"--tls-key", "MTABLE_TLS_KEY", OPT_STR, "FILE", "the PEM private key of --tls-cert"},
    {"--jwks", "MTABLE_JWKS", OPT_STR, "FILE|URL",
     "accept Microsoft Entra ID bearer tokens on the https table endpoint, signed by a key of "
     "this JSON Web Key Set (default: Shared Key and SAS only)"},
    {"--token-issuer", "MTABLE_TOKEN_ISSUER", OPT_STR, "URL",
     "the exact issuer (iss) of accepted tokens, e.g. https://sts.windows.net/TENANT/ (required "
     "with --jwks)"},
    {"--token-roles", "MTABLE_TOKEN_ROLES", OPT_STR, "FILE",
     "lines '<object id, app id or *> <Storage Table Data Reader|Contributor>' giving callers "
     "their data role (default: the tokens' roles claim only)"},
    {"--config-endpoint", "MTABLE_CONFIG_ENDPOINT", OPT_STR, "URL",
     "the configuration authority's admin URL (default: this process is its own authority)"},
    {"--state-store", "MTABLE_STATE_STORE", OPT_STR, "SPEC",
     "authority state: memory, file:PATH, or an Azure connection string (default: table "
     "mtablestate of the new account when a backend is in Azure, else memory)"},
    {"--recover-phase", "MTABLE_RECOVER_PHASE", OPT_STR, "PHASE",
     "authority: the phase to write to an empty state store whose backends show a migration "
     "(recovering a lost state; the phase the fleet serves)"},
    {"--lease-ms", "MTABLE_LEASE_MS", OPT_INT, "MS",
     "authority: how long an acknowledgement lets a proxy serve (default 10000)"},
    {"--rest-lease-ms", "MTABLE_REST_LEASE_MS", OPT_INT, "MS",
     "authority: the lease before a migration starts and after it is done, so proxies serve "
     "through an authority outage that long (default 3900000, 65 minutes)"},
    {"--copy-parallel", "MTABLE_COPY_PARALLEL", OPT_INT, "N",
     "migrator: partitions copied at once, 1-64 (default 4)"},
    {"--copy-rate", "MTABLE_COPY_RATE", OPT_INT, "ROWS",
     "migrator: copy at most ROWS rows a second (default 0: unlimited)"},
    {"--admin-token", "MTABLE_ADMIN_TOKEN", OPT_STR, "TOKEN",
     "require Authorization: Bearer TOKEN on admin calls (and send it to --config-endpoint)"},
    {"--proxy-id", "MTABLE_PROXY_ID", OPT_STR, "ID", "this proxy's name (default: host:port)"},
    {"--replica-id", "MTABLE_REPLICA_ID", OPT_STR, "ID",
     "authority: run as one of several replicas sharing the state store, under this name "
     "(one leads, the others stand by; default: a single authority)"},
    {"--advertise-url", "MTABLE_ADVERTISE_URL", OPT_STR, "URL",
     "authority: the admin URL other replicas send callers to while this one leads (default: "
     "http://<admin host, or the hostname for 0.0.0.0>:<admin port>)"},
    {"--log-level", "MTABLE_LOG_LEVEL", OPT_STR, "LEVEL", "error, warn, info (default), debug"},
    {"--log-format", "MTABLE_LOG_FORMAT", OPT_STR, "FORMAT",
     "text (default: human-readable lines) or json (one object a line)"},
    {"--log-slow-backend-ms", "MTABLE_LOG_SLOW_BACKEND_MS", OPT_INT, "MS",
     "log a warning naming the backend for each backend call that has run MS, while it "
     "runs and when it ends (default 5000; 0: never)"},
    {"--admin-tls-cert", "MTABLE_ADMIN_TLS_CERT", OPT_STR, "FILE",
     "serve the admin and configuration endpoint over HTTPS with this PEM certificate (chain) "
     "(with --admin-tls-key)"},
    {"--admin-tls-key", "MTABLE_ADMIN_TLS_KEY", OPT_STR, "FILE",
     "the PEM private key of --admin-tls-cert"},
    {"--config-ca", "MTABLE_CONFIG_CA", OPT_STR, "FILE",
     "PEM certificates that an https:// --config-endpoint must chain to (default: the "
     "system's trusted CAs)"},
    {"--max-connections", "MTABLE_MAX_CONNECTIONS", OPT_INT, "N",
     "concurrent client connections, one thread each (a pool of four per core serves them "
     "when both backends are memory; default 256)"},
    {"--table-map", "MTABLE_TABLE_MAP", OPT_STR, "MAP",
     "tables the migration renames, OLD=NEW[,OLD=NEW...]: applications keep using OLD, which "
     "the new account holds as NEW; the same on every proxy (default: none)"},
};
#define NOPTS (sizeof opts / sizeof *opts)

void px_settings_usage(FILE *out)
{
    /* Two lines an option, so the help fits 80 columns however long a flag
     * or its text: "--flag ARG" and its variable, then the text indented
     * and wrapped at word boundaries. */
    enum { INDENT = 6, WIDTH = 79 };
    fprintf(out, "usage: mtable-proxy [options]\n\n"
                 "Serves the Azure Table REST protocol on --listen and runs every request\n"
                 "through the MigratingTable protocol over the old and new tables.\n\n"
                 "options (each also read from the environment variable shown;\n"
                 "flags win over the environment):\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char head[64];
        snprintf(head, sizeof head, "%s %s", opts[i].flag, opts[i].arg);
        fprintf(out, "  %-30s %s\n", head, opts[i].env);
        const char *p = opts[i].help;
        while (*p) {
            size_t room = WIDTH - INDENT, n = strlen(p);
            if (n > room) {
                n = room;
                while (n > 0 && p[n] != ' ')
                    n--;
                if (n == 0) /* one word longer than the line: cut it */
                    n = room;
            }
            fprintf(out, "%*s%.*s\n", INDENT, "", (int)n, p);
            p += n;
            while (*p == ' ')
                p++;
        }
    }
    fprintf(out, "  --help, -h\n"
                 "      print this text\n"
                 "  --version\n"
                 "      print the version\n");
}

static bool parse_addr(const char *v, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || (size_t)(colon - v) >= cap)
        return false;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535 || end == colon + 1)
        return false;
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    *port = (int)p;
    return true;
}

static bool parse_int(const char *v, long lo, long hi, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi)
        return false;
    *out = (int)n;
    return true;
}

/* One URL or several, comma-separated, each http(s)://, trailing slashes
 * dropped. */
static bool endpoint_list(const char *v, char *out, size_t cap)
{
    size_t k = 0;
    out[0] = '\0';
    for (const char *p = v; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n > 0 && p[n - 1] == '/')
            n--;
        if (!(n > 7 && strncmp(p, "http://", 7) == 0) && !(n > 8 && strncmp(p, "https://", 8) == 0))
            return false;
        if (k + n + 2 > cap)
            return false;
        if (k)
            out[k++] = ',';
        memcpy(out + k, p, n);
        k += n;
        out[k] = '\0';
        p = comma ? comma + 1 : p + strlen(p);
    }
    return k > 0;
}

static bool set_one(px_settings *s, const opt *o, const char *v, FILE *err)
{
    bool ok = true;
    if (strcmp(o->flag, "--listen") == 0)
        ok = parse_addr(v, s->listen_host, sizeof s->listen_host, &s->listen_port);
    else if (strcmp(o->flag, "--admin-listen") == 0)
        ok = parse_addr(v, s->admin_host, sizeof s->admin_host, &s->admin_port);
    else if (strcmp(o->flag, "--account") == 0)
        ok = snprintf(s->account, sizeof s->account, "%s", v) < (int)sizeof s->account && *v;
    else if (strcmp(o->flag, "--account-key") == 0)
        ok = snprintf(s->account_key, sizeof s->account_key, "%s", v) <
             (int)sizeof s->account_key;
    else if (strcmp(o->flag, "--old") == 0)
        ok = snprintf(s->old_spec, sizeof s->old_spec, "%s", v) < (int)sizeof s->old_spec;
    else if (strcmp(o->flag, "--new") == 0)
        ok = snprintf(s->new_spec, sizeof s->new_spec, "%s", v) < (int)sizeof s->new_spec;
    else if (strcmp(o->flag, "--backend-ca") == 0)
        ok = snprintf(s->backend_ca, sizeof s->backend_ca, "%s", v) < (int)sizeof s->backend_ca &&
             *v && access(v, R_OK) == 0;
    else if (strcmp(o->flag, "--tls-cert") == 0)
        ok = snprintf(s->tls_cert, sizeof s->tls_cert, "%s", v) < (int)sizeof s->tls_cert && *v;
    else if (strcmp(o->flag, "--tls-key") == 0)
        ok = snprintf(s->tls_key, sizeof s->tls_key, "%s", v) < (int)sizeof s->tls_key && *v;
    else if (strcmp(o->flag, "--jwks") == 0)
        ok = snprintf(s->jwks, sizeof s->jwks, "%s", v) < (int)sizeof s->jwks && *v;
    else if (strcmp(o->flag, "--token-issuer") == 0)
        ok = snprintf(s->token_issuer, sizeof s->token_issuer, "%s", v) <
                 (int)sizeof s->token_issuer &&
             *v;
    else if (strcmp(o->flag, "--token-roles") == 0)
        ok =
            snprintf(s->token_roles, sizeof s->token_roles, "%s", v) < (int)sizeof s->token_roles &&
            *v;
    else if (strcmp(o->flag, "--admin-token") == 0)
        ok = snprintf(s->admin_token, sizeof s->admin_token, "%s", v) <
             (int)sizeof s->admin_token;
    else if (strcmp(o->flag, "--replica-id") == 0)
        ok = snprintf(s->replica_id, sizeof s->replica_id, "%s", v) < (int)sizeof s->replica_id &&
             *v;
    else if (strcmp(o->flag, "--advertise-url") == 0)
        ok = (strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0) &&
             snprintf(s->advertise_url, sizeof s->advertise_url, "%s", v) <
                 (int)sizeof s->advertise_url;
    else if (strcmp(o->flag, "--proxy-id") == 0)
        ok = snprintf(s->proxy_id, sizeof s->proxy_id, "%s", v) < (int)sizeof s->proxy_id;
    else if (strcmp(o->flag, "--log-level") == 0)
        ok = strcmp(v, "error") == 0 || strcmp(v, "warn") == 0 || strcmp(v, "info") == 0 ||
             strcmp(v, "debug") == 0;
    if (ok && strcmp(o->flag, "--log-level") == 0)
        snprintf(s->log_level, sizeof s->log_level, "%s", v);
    if (strcmp(o->flag, "--log-format") == 0) {
        ok = strcmp(v, "text") == 0 || strcmp(v, "json") == 0;
        if (ok)
            snprintf(s->log_format, sizeof s->log_format, "%s", v);
    } else if (strcmp(o->flag, "--config-endpoint") == 0) {
        ok = endpoint_list(v, s->config_endpoint, sizeof s->config_endpoint);
    } else if (strcmp(o->flag, "--state-store") == 0) {
        ok = snprintf(s->state_store, sizeof s->state_store, "%s", v) <
             (int)sizeof s->state_store;
    } else if (strcmp(o->flag, "--recover-phase") == 0) {
        ok = mt_phase_parse(v, &s->recover_phase);
        s->recover = ok;
    } else if (strcmp(o->flag, "--lease-ms") == 0) {
        ok = parse_int(v, 1000, 600000, &s->lease_ms);
    } else if (strcmp(o->flag, "--rest-lease-ms") == 0) {
        ok = parse_int(v, 1000, 86400000, &s->rest_lease_ms);
    } else if (strcmp(o->flag, "--copy-parallel") == 0) {
        ok = parse_int(v, 1, 64, &s->copy_parallel);
    } else if (strcmp(o->flag, "--copy-rate") == 0) {
        ok = parse_int(v, 0, 100000000, &s->copy_rate);
    }
    if (strcmp(o->flag, "--max-connections") == 0)
        ok = parse_int(v, 1, 100000, &s->max_connections);
    else if (strcmp(o->flag, "--log-slow-backend-ms") == 0)
        ok = parse_int(v, 0, 86400000, &s->slow_backend_ms);
    else if (strcmp(o->flag, "--admin-tls-cert") == 0)
        ok = snprintf(s->admin_tls_cert, sizeof s->admin_tls_cert, "%s", v) <
             (int)sizeof s->admin_tls_cert;
    else if (strcmp(o->flag, "--admin-tls-key") == 0)
        ok = snprintf(s->admin_tls_key, sizeof s->admin_tls_key, "%s", v) <
             (int)sizeof s->admin_tls_key;
    else if (strcmp(o->flag, "--config-ca") == 0)
        ok = snprintf(s->config_ca, sizeof s->config_ca, "%s", v) < (int)sizeof s->config_ca;
    if (strcmp(o->flag, "--table-map") == 0) {
        char why[200];
        ok = px_table_map_parse(v, &s->table_map, why, sizeof why);
        if (!ok) {
            fprintf(err, "mtable-proxy: bad value for %s (%s): %s\n", o->flag, o->env, why);
            return false;
        }
    }
    if (!ok)
        fprintf(err, "mtable-proxy: bad value for %s (%s): '%s'\n", o->flag, o->env, v);
    return ok;
}

static const opt *find_opt(const char *flag)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].flag, flag) == 0)
            return &opts[i];
    return NULL;
}

static bool finish(px_settings *s, FILE *err)
{
    uint8_t *key = NULL;
    size_t n = 0;
    if (!az_base64_decode(s->account_key, strlen(s->account_key), &key, &n) || n == 0 ||
        n > sizeof s->key) {
        free(key);
        fprintf(err, "mtable-proxy: --account-key (MTABLE_ACCOUNT_KEY) is not a base64 key\n");
        return false;
    }
    memcpy(s->key, key, n);
    s->key_len = n;
    free(key);
    const char *specs[2] = {s->old_spec, s->new_spec}, *flags[2] = {"--old (MTABLE_OLD)",
                                                                     "--new (MTABLE_NEW)"};
    for (int i = 0; i < 2; i++) {
        if (strcmp(specs[i], "memory") == 0)
            continue;
        az_connstr cs;
        mt_status st = az_connstr_parse(specs[i], &cs);
        az_connstr_clear(&cs);
        if (!mt_is_ok(&st)) {
            fprintf(err, "mtable-proxy: %s is neither 'memory' nor a valid connection string: %s\n",
                    flags[i], st.message);
            return false;
        }
    }
    if (!s->tls_cert[0] != !s->tls_key[0]) {
        fprintf(err, "mtable-proxy: --tls-cert (MTABLE_TLS_CERT) and --tls-key (MTABLE_TLS_KEY) "
                     "go together\n");
        return false;
    }
    if (s->jwks[0] && (!s->tls_cert[0] || !s->token_issuer[0])) {
        fprintf(err, "mtable-proxy: --jwks (MTABLE_JWKS) needs --token-issuer "
                     "(MTABLE_TOKEN_ISSUER) and --tls-cert/--tls-key: bearer tokens are taken "
                     "over https only\n");
        return false;
    }
    if ((s->token_issuer[0] || s->token_roles[0]) && !s->jwks[0]) {
        fprintf(err, "mtable-proxy: --token-issuer and --token-roles need --jwks (MTABLE_JWKS)\n");
        return false;
    }
    bool loopback = strcmp(s->admin_host, "127.0.0.1") == 0 || strncmp(s->admin_host, "127.", 4) == 0;
    if (!loopback && !s->admin_token[0]) {
        fprintf(err, "mtable-proxy: refusing to serve the admin endpoint on %s without "
                     "--admin-token (MTABLE_ADMIN_TOKEN)\n",
                s->admin_host);
        return false;
    }
    bool azure = strcmp(s->old_spec, "memory") != 0 || strcmp(s->new_spec, "memory") != 0;
    if (!s->config_endpoint[0] && azure && strcmp(s->state_store, "memory") == 0) {
        fprintf(err, "mtable-proxy: --state-store memory (MTABLE_STATE_STORE) would forget the "
                     "migration's phase on restart while its tables are in Azure; leave it unset "
                     "(the state then lives in table " CFG_STATE_TABLE " of the new account) or "
                     "give file:PATH or a connection string\n");
        return false;
    }
    if (!s->admin_tls_cert[0] != !s->admin_tls_key[0]) {
        fprintf(err, "mtable-proxy: --admin-tls-cert (MTABLE_ADMIN_TLS_CERT) and "
                     "--admin-tls-key (MTABLE_ADMIN_TLS_KEY) go together\n");
        return false;
    }
    const char *files[3] = {s->admin_tls_cert, s->admin_tls_key, s->config_ca};
    const char *names[3] = {"--admin-tls-cert (MTABLE_ADMIN_TLS_CERT)",
                            "--admin-tls-key (MTABLE_ADMIN_TLS_KEY)",
                            "--config-ca (MTABLE_CONFIG_CA)"};
    for (int i = 0; i < 3; i++)
        if (files[i][0] && access(files[i], R_OK) != 0) {
            fprintf(err, "mtable-proxy: %s: cannot read '%s'\n", names[i], files[i]);
            return false;
        }
    if (!s->proxy_id[0])
        snprintf(s->proxy_id, sizeof s->proxy_id, "%.100s:%d", s->listen_host, s->listen_port);
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    if (!s->advertise_url[0])
        snprintf(s->advertise_url, sizeof s->advertise_url, "%s://%s:%d",
                 s->admin_tls_cert[0] ? "https" : "http",
                 strcmp(s->admin_host, "0.0.0.0") == 0 ? host : s->admin_host, s->admin_port);
    return true;
}

const char *px_settings_state_store(const px_settings *s)
{
    if (s->state_store[0])
        return s->state_store;
    if (strcmp(s->new_spec, "memory") != 0)
        return s->new_spec;
    if (strcmp(s->old_spec, "memory") != 0)
        return s->old_spec;
    return "memory";
}

/* One side: "memory", or "ENDPOINT|ACCOUNT|TABLE". */
static void side_text(const char *spec, mt_buf *b)
{
    if (strcmp(spec, "memory") == 0) {
        mt_buf_puts(b, "memory");
        return;
    }
    az_connstr cs;
    mt_status st = az_connstr_parse(spec, &cs);
    if (!mt_is_ok(&st)) {
        mt_buf_puts(b, "?");
        return;
    }
    mt_buf_printf(b, "%s|%s|%s", cs.endpoint ? cs.endpoint : "", cs.account ? cs.account : "",
                  cs.table ? cs.table : "");
    az_connstr_clear(&cs);
}

void px_settings_fingerprint(const px_settings *s, char out[CFG_FINGERPRINT_MAX], char *text,
                             size_t text_cap)
{
    mt_buf b = {0};
    mt_buf_puts(&b, "old=");
    side_text(s->old_spec, &b);
    mt_buf_puts(&b, " new=");
    side_text(s->new_spec, &b);
    if (s->table_map.n) { /* absent when empty: fingerprints from before stay */
        mt_buf_puts(&b, " map=");
        px_table_map_text(&s->table_map, &b);
    }
    size_t n = 0;
    char *all = mt_buf_take(&b, &n);
    uint64_t h = 1469598103934665603u; /* FNV-1a: stable across builds and hosts */
    for (size_t i = 0; all && i < n; i++)
        h = (h ^ (unsigned char)all[i]) * 1099511628211u;
    snprintf(out, CFG_FINGERPRINT_MAX, "%016llx", (unsigned long long)h);
    if (text && text_cap)
        snprintf(text, text_cap, "%s", all ? all : "?");
    free(all);
}

int px_settings_load(px_settings *s, int argc, char **argv, FILE *out, FILE *err)
{
    memset(s, 0, sizeof *s);
    strcpy(s->listen_host, "127.0.0.1");
    s->listen_port = 10002;
    strcpy(s->admin_host, "127.0.0.1");
    s->admin_port = 10090;
    strcpy(s->account, DEV_ACCOUNT);
    strcpy(s->account_key, DEV_KEY);
    strcpy(s->old_spec, "memory");
    strcpy(s->new_spec, "memory");
    strcpy(s->log_level, "info");
    strcpy(s->log_format, "text");
    s->max_connections = 256;
    s->lease_ms = 10000;
    s->rest_lease_ms = 3900000;
    s->copy_parallel = 4;
    s->slow_backend_ms = 5000;
    for (size_t i = 0; i < NOPTS; i++) {
        const char *v = getenv(opts[i].env);
        if (v && *v && !set_one(s, &opts[i], v, err))
            return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            px_settings_usage(out);
            return 1;
        }
        if (strcmp(argv[i], "--version") == 0) {
            fprintf(out, "mtable-proxy %s\n", MTABLE_VERSION);
            return 1;
        }
        const char *eq = strchr(argv[i], '=');
        char flag[64];
        size_t fl = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        snprintf(flag, sizeof flag, "%.*s", (int)fl, argv[i]);
        const opt *o = find_opt(flag);
        if (!o) {
            fprintf(err, "mtable-proxy: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            fprintf(err, "mtable-proxy: %s needs a value\n", flag);
            return 2;
        }
        if (!set_one(s, o, v, err))
            return 2;
    }
    return finish(s, err) ? 0 : 2;
}

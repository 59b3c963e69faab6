/*
 * mtablectl.c -- mtablectl, the operator's command line over mtable-proxy's
 * admin endpoint (docs/control-plane.md): status, phase changes, the built-in
 * migrator with a live progress display, pause and resume, verification.
 *
 * It speaks only the admin HTTP API (libcurl, cJSON) and links nothing of
 * the proxy, so it runs wherever the endpoint can be reached. Its exit codes
 * are an interface scripts rely on (0 done, 1 refused or failed, 2 usage,
 * 3 unreachable or not the API, 4 unauthorized), and every failure is one
 * line on stderr naming the URL and what to do next. Fields an older proxy
 * does not send are left out of the output rather than guessed, and a state
 * name it does not know is treated as "still running", so the tool keeps
 * working while the API grows.
 *
 * An https:// admin URL is verified against --ca (MTABLE_ADMIN_CA) or the
 * system's CAs; a certificate that does not verify ends the command
 * (exit 3) with the TLS library's reason, never an unverified retry.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#ifndef MTABLE_VERSION
#define MTABLE_VERSION "unknown"
#endif

#define CTL_DEFAULT_ADMIN "http://127.0.0.1:10090"
#define CTL_POLL_MS 500
#define CTL_LOG_EVERY_S 5.0
#define CTL_POLL_TRIES 10          /* consecutive unreachable polls tolerated */
#define CTL_MAX_BODY (8u << 20)    /* larger answers are not the admin API */
#define CTL_TIMEOUT_S 30L          /* status, migrate, pause, resume */
#define CTL_PHASE_TIMEOUT_S 300L   /* a push waits for every live proxy */
#define CTL_VERIFY_TIMEOUT_S 3600L /* verify scans both tables */

enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAILED = 1,
    CTL_EXIT_USAGE = 2,
    CTL_EXIT_UNREACHABLE = 3,
    CTL_EXIT_UNAUTHORIZED = 4,
    CTL_EXIT_INTERRUPTED = 130,
    CTL_CONTINUE = -1, /* internal: not an exit code */
    CTL_PARSE_HELP = -2,
    CTL_PARSE_VERSION = -3,
};

static const char *const ctl_phases[] = {"use_old_hide_metadata", "prefer_old", "prefer_new",
                                         "use_new_with_tombstones", "use_new_hide_metadata"};

typedef struct ctl {
    char *admin; /* base URL without trailing '/'; owned */
    const char *token, *cmd, *arg, *until, *old_after, *ca, *interval;
    bool json, no_wait, watch, reverse;
    double interval_s; /* status --watch */
    CURL *curl;
} ctl;

typedef struct ctl_reply {
    long http;
    char *body; /* owned, NUL-terminated */
    size_t len;
    char ctype[96];
    cJSON *doc; /* parsed body or NULL; owned */
} ctl_reply;

typedef struct ctl_cmd {
    const char *name;
    int (*run)(ctl *c);
    int nargs;                  /* positional arguments after the name */
    bool until, no_wait, watch; /* command flags it takes */
} ctl_cmd;

static volatile sig_atomic_t ctl_interrupted;
static bool ctl_bar_open; /* a progress line on stdout awaits its redraw */

/* ------------------------------------------------------------------------ */
/* Usage.                                                                    */

static void ctl_usage(FILE *out)
{
    fputs("usage: mtablectl [--admin URL] [--token TOKEN] [--ca FILE] [--json] COMMAND [ARGS]\n"
          "\n"
          "Drives mtable-proxy through its admin endpoint.\n"
          "\n"
          "commands:\n"
          "  status [--watch [--interval S]]\n"
          "                       phase, config version, migration progress, proxies\n"
          "                       and their leases, and during a push the proxies it\n"
          "                       waits for; --watch repeats it every S seconds\n"
          "                       (default 2), redrawn in place on a terminal, until\n"
          "                       Ctrl-C (with --json: one document a line)\n"
          "  phase NAME           move to phase NAME (one step forward at a time, or back\n"
          "                       from prefer_old to use_old_hide_metadata while no\n"
          "                       partition is switched); returns once every live proxy\n"
          "                       has acknowledged\n"
          "  migrate [--until PHASE] [--old-after empty|keep|delete] [--no-wait]\n"
          "                       start the built-in migrator and show its progress until\n"
          "                       it is done, failed or paused; --until PHASE stops once\n"
          "                       PHASE is reached and its work done; --old-after says\n"
          "                       what the cleanup makes of the old tables: empty them\n"
          "                       (the default: each deleted and created again), keep\n"
          "                       the application's rows as a rollback copy (only\n"
          "                       protocol rows go), or delete them;\n"
          "                       --no-wait returns as soon as it has started\n"
          "  migrate --reverse [--old-after empty|keep|delete] [--no-wait]\n"
          "                       after a finished migration, migrate the data back into\n"
          "                       the old account (refused while a table of the old\n"
          "                       account holds rows); --old-after then applies to the\n"
          "                       new account's tables\n"
          "  pause                ask the running migration to pause (status then shows\n"
          "                       paused)\n"
          "  resume [--no-wait]   resume a paused migration and wait as migrate does\n"
          "  verify               compare the old and new tables and print the report\n"
          "  abort                give up a migration that has switched no partition\n"
          "                       (phases 0 and 1): pause it, step the fleet back to\n"
          "                       use_old_hide_metadata, delete its protocol rows from old\n"
          "  help                 this text\n"
          "\n"
          "phases, in order: use_old_hide_metadata, prefer_old, prefer_new,\n"
          "  use_new_with_tombstones, use_new_hide_metadata\n"
          "\n"
          "options (anywhere on the line):\n"
          "  --admin URL     admin endpoint (default " CTL_DEFAULT_ADMIN "); several\n"
          "                  authority replicas may be listed, comma-separated\n"
          "  --token TOKEN   send Authorization: Bearer TOKEN (the proxy's --admin-token)\n"
          "  --ca FILE       PEM CA certificates an https:// admin URL must chain to\n"
          "                  (default: the system's)\n"
          "  --json          print the server's JSON instead of text; migrate and resume\n"
          "                  print the final status\n"
          "  --help, -h      this text\n"
          "  --version       print the version\n"
          "\n"
          "environment:\n"
          "  MTABLE_ADMIN_URL     default for --admin\n"
          "  MTABLE_ADMIN_TOKEN   default for --token\n"
          "  MTABLE_ADMIN_CA      default for --ca\n"
          "\n"
          "While migrate or resume waits, a terminal shows a progress bar redrawn in\n"
          "place; other output gets one line per state change and one every 5 s.\n"
          "Interrupting the wait (Ctrl-C, exit 130) leaves the migration running.\n"
          "\n"
          "exit codes:\n"
          "  0  success (migrate, resume: the migration is done or stopped at --until)\n"
          "  1  the server refused the request or the operation failed: a 4xx other\n"
          "     than 401/403, a 5xx, verify not ok, the migration failed or was paused\n"
          "  2  usage error\n"
          "  3  the admin endpoint cannot be reached or answered something that is not\n"
          "     the admin API\n"
          "  4  unauthorized (401/403): the admin token is missing or wrong\n",
          out);
}

static int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int ctl_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mtablectl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see mtablectl --help)\n", stderr);
    va_end(ap);
    return CTL_EXIT_USAGE;
}

/* One line on stderr, on a line of its own even below a progress bar. */
static void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void ctl_err(const char *fmt, ...)
{
    if (ctl_bar_open) {
        putchar('\n');
        fflush(stdout);
        ctl_bar_open = false;
    }
    va_list ap;
    va_start(ap, fmt);
    fputs("mtablectl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* Small helpers: JSON fields, a line buffer, time.                          */

static double ctl_num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *ctl_str(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

/* 1 true, 0 false, -1 absent. */
static int ctl_bool(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

typedef struct ctl_buf {
    char s[1024];
    size_t n;
} ctl_buf;

static void ctl_addf(ctl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ctl_addf(ctl_buf *b, const char *fmt, ...)
{
    if (b->n >= sizeof b->s - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->n = b->n + (size_t)k < sizeof b->s ? b->n + (size_t)k : sizeof b->s - 1;
}

static void ctl_duration(double s, char *out, size_t cap)
{
    long t = (long)(s + 0.5);
    if (t < 60)
        snprintf(out, cap, "%lds", t);
    else if (t < 3600)
        snprintf(out, cap, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(out, cap, "%ldh%02ldm", t / 3600, t % 3600 / 60);
}

static double ctl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ctl_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L};
    nanosleep(&ts, NULL); /* a signal cuts it short; the caller checks */
}

static bool ctl_phase_known(const char *name)
{
    for (size_t i = 0; i < sizeof ctl_phases / sizeof *ctl_phases; i++)
        if (strcmp(name, ctl_phases[i]) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------------ */
/* HTTP: one request, then judging the answer.                               */

static size_t ctl_on_data(char *p, size_t size, size_t n, void *ud)
{
    ctl_reply *r = ud;
    size_t len = size * n;
    if (r->len + len > CTL_MAX_BODY)
        return 0; /* aborts the transfer */
    char *b = realloc(r->body, r->len + len + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, p, len);
    r->len += len;
    b[r->len] = '\0';
    r->body = b;
    return len;
}

static void ctl_reply_free(ctl_reply *r)
{
    free(r->body);
    cJSON_Delete(r->doc);
    memset(r, 0, sizeof *r);
}

static struct curl_slist *ctl_headers(const ctl *c, bool has_body)
{
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    h = curl_slist_append(h, "Expect:");
    if (has_body)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (c->token) {
        size_t cap = strlen(c->token) + 32;
        char *auth = malloc(cap);
        if (auth) {
            snprintf(auth, cap, "Authorization: Bearer %s", c->token);
            h = curl_slist_append(h, auth);
            free(auth);
        }
    }
    return h;
}

/* Why a transfer failed, in words an operator can act on. */
static void ctl_reason(CURLcode rc, long os_errno, long timeout_s, const char *err, char *out,
                       size_t cap)
{
    if (rc == CURLE_COULDNT_CONNECT && os_errno) {
        snprintf(out, cap, "%s", strerror((int)os_errno));
        out[0] = (char)(out[0] >= 'A' && out[0] <= 'Z' ? out[0] - 'A' + 'a' : out[0]);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(out, cap, "no answer within %ld s", timeout_s);
    } else if (rc == CURLE_COULDNT_RESOLVE_HOST) {
        snprintf(out, cap, "cannot resolve the host name");
    } else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
               rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM) {
        snprintf(out, cap,
                 "TLS failed: %s; is --ca (MTABLE_ADMIN_CA) the CA of the admin "
                 "endpoint's certificate?",
                 err[0] ? err : curl_easy_strerror(rc));
    } else if (rc == CURLE_WRITE_ERROR) {
        snprintf(out, cap, "the answer is larger than %u MiB", CTL_MAX_BODY >> 20);
    } else {
        snprintf(out, cap, "%s", err[0] ? err : curl_easy_strerror(rc));
    }
}

/* One try of ctl_send against one admin URL (base). */
static CURLcode ctl_send_one(ctl *c, const char *base, const char *method, const char *path,
                             const char *body, long timeout_s, ctl_reply *r, char *why, size_t cap)
{
    char url[4096], err[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof url, "%s%s", base, path);
    struct curl_slist *h = ctl_headers(c, body != NULL);
    CURL *k = c->curl;
    curl_easy_reset(k); /* keeps the connection cache */
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(k, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(k, CURLOPT_USERAGENT, "mtablectl/" MTABLE_VERSION);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, ctl_on_data);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(k, CURLOPT_FOLLOWLOCATION, 1L); /* a standby replica names the leader */
    curl_easy_setopt(k, CURLOPT_MAXREDIRS, 3L);
    if (c->ca)
        curl_easy_setopt(k, CURLOPT_CAINFO, c->ca);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    }
    CURLcode rc = curl_easy_perform(k);
    long os_errno = 0;
    const char *ct = NULL;
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &r->http);
    curl_easy_getinfo(k, CURLINFO_OS_ERRNO, &os_errno);
    if (curl_easy_getinfo(k, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
        snprintf(r->ctype, sizeof r->ctype, "%s", ct);
    curl_slist_free_all(h);
    if (rc != CURLE_OK)
        ctl_reason(rc, os_errno, timeout_s, err, why, cap);
    return rc;
}

/* Sends METHOD PATH (BODY, when not NULL, as JSON) and fills r. --admin
 * may list authority replicas, comma-separated: the next is tried when one
 * cannot be reached or answers that no replica leads (503). On a transport
 * failure of every one returns the last curl code and its reason in why. */
static CURLcode ctl_send(ctl *c, const char *method, const char *path, const char *body,
                         long timeout_s, ctl_reply *r, char *why, size_t cap)
{
    char list[4096];
    snprintf(list, sizeof list, "%s", c->admin);
    CURLcode rc = CURLE_URL_MALFORMAT;
    char *save = NULL;
    for (char *base = strtok_r(list, ",", &save); base; base = strtok_r(NULL, ",", &save)) {
        free(r->body);
        r->body = NULL;
        r->len = 0;
        r->http = 0;
        rc = ctl_send_one(c, base, method, path, body, timeout_s, r, why, cap);
        if (rc == CURLE_OK && r->http != 503)
            break;
    }
    return rc;
}

static int ctl_fail_transport(const ctl *c, CURLcode rc, const char *why)
{
    if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
        ctl_err("invalid admin URL '%s' (%s): give http://HOST:PORT "
                "with --admin or MTABLE_ADMIN_URL",
                c->admin, why);
        return CTL_EXIT_USAGE;
    }
    if (strncmp(why, "TLS failed", 10) == 0)
        ctl_err("refusing to talk to %s: %s", c->admin, why);
    else
        ctl_err("cannot reach %s (%s): is mtable-proxy running? set --admin or "
                "MTABLE_ADMIN_URL",
                c->admin, why);
    return CTL_EXIT_UNREACHABLE;
}

static int ctl_fail_not_api(const ctl *c, const char *path, const ctl_reply *r, const char *what)
{
    char detail[160];
    if (what)
        snprintf(detail, sizeof detail, "%s", what);
    else
        snprintf(detail, sizeof detail, "HTTP %ld%s%s%s", r->http, r->ctype[0] ? " (" : "",
                 r->ctype, r->ctype[0] ? ")" : "");
    ctl_err("%s%s answered %s, not the mtable admin API: point --admin or "
            "MTABLE_ADMIN_URL at mtable-proxy's admin listener (--admin-listen, "
            "default " CTL_DEFAULT_ADMIN ")",
            c->admin, path, detail);
    return CTL_EXIT_UNREACHABLE;
}

static int ctl_fail_auth(const ctl *c, const ctl_reply *r)
{
    if (c->token)
        ctl_err("%s refused the admin token (%ld): check --token or "
                "MTABLE_ADMIN_TOKEN against the proxy's --admin-token",
                c->admin, r->http);
    else
        ctl_err("%s needs an admin token (%ld): pass --token or set "
                "MTABLE_ADMIN_TOKEN to the proxy's --admin-token",
                c->admin, r->http);
    return CTL_EXIT_UNAUTHORIZED;
}

/* What to do about a refusal, by the API's error code. */
static const char *ctl_hint(const char *code, long http)
{
    if (strcmp(code, "PhaseTransitionNotAllowed") == 0)
        return "see mtablectl status for the current phase and migration";
    if (strcmp(code, "MigrationRunning") == 0)
        return "watch it with mtablectl status, or pause it with mtablectl pause";
    if (strcmp(code, "MigrationPaused") == 0 || strcmp(code, "MigrationFailed") == 0)
        return "continue it with mtablectl resume";
    if (http == 404)
        return "this mtable-proxy does not have that call; upgrade it";
    if (http >= 500)
        return "the proxy's log has the details";
    return NULL;
}

static int ctl_fail_api(const ctl *c, const char *path, const ctl_reply *r, const cJSON *e)
{
    const char *code = ctl_str(e, "code", "Error");
    const char *msg = ctl_str(e, "message", "");
    const char *hint = ctl_hint(code, r->http);
    ctl_err("%s%s refused: %ld %s%s%s%s%s", c->admin, path, r->http, code, msg[0] ? ": " : "", msg,
            hint ? " -- " : "", hint ? hint : "");
    return CTL_EXIT_FAILED;
}

/* 0 when r is a 2xx JSON object; otherwise prints why and returns the exit code. */
static int ctl_judge(const ctl *c, const char *path, ctl_reply *r)
{
    r->doc = r->len ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r->doc, "error");
    bool api_error = cJSON_IsObject(e);
    if (r->http / 100 == 2 && cJSON_IsObject(r->doc) && !api_error)
        return 0;
    /* A 403 without the API's error body is most likely the table port. */
    if (r->http == 401 || (r->http == 403 && api_error))
        return ctl_fail_auth(c, r);
    if (api_error && r->http >= 400)
        return ctl_fail_api(c, path, r, e);
    return ctl_fail_not_api(c, path, r, NULL);
}

/* One admin call; 0 with r filled (free it with ctl_reply_free), or the exit
 * code after one line on stderr. Transport failures are retried tries-1 times. */
static int ctl_call_tries(ctl *c, const char *method, const char *path, const char *body,
                          long timeout_s, ctl_reply *r, int tries)
{
    char why[CURL_ERROR_SIZE + 64];
    for (int i = 1;; i++) {
        CURLcode rc = ctl_send(c, method, path, body, timeout_s, r, why, sizeof why);
        if (rc == CURLE_OK)
            return ctl_judge(c, path, r);
        ctl_reply_free(r);
        bool fatal = rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL;
        if (i >= tries || fatal || ctl_interrupted)
            return ctl_fail_transport(c, rc, why);
        ctl_sleep_ms(CTL_POLL_MS);
    }
}

static int ctl_call(ctl *c, const char *method, const char *path, const char *body, long timeout_s,
                    ctl_reply *r)
{
    return ctl_call_tries(c, method, path, body, timeout_s, r, 1);
}

static void ctl_print_raw(const ctl_reply *r)
{
    fputs(r->body, stdout);
    if (r->len == 0 || r->body[r->len - 1] != '\n')
        putchar('\n');
}

/* ------------------------------------------------------------------------ */
/* The migration as status reports it.                                       */

typedef struct ctl_mig {
    const char *state, *phase, *error;
    const char *stalled_since, *last_backend_error; /* NULL unless stalled */
    double copied, total, cleaned, clean_total, parts_done, parts_total, rate, eta;
    int copy_done, verified; /* 1, 0, -1 absent */
} ctl_mig;

static void ctl_mig_read(const cJSON *status, ctl_mig *m)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(status, "migration");
    m->state = ctl_str(j, "state", "unknown");
    m->phase = ctl_str(status, "phase", "?");
    m->error = ctl_str(j, "error", NULL);
    /* rows_done counts each row once across restarts; older proxies only
     * send rows_copied. */
    m->copied = ctl_num(j, "rows_done", ctl_num(j, "rows_copied", -1));
    bool stalled = ctl_bool(j, "stalled") == 1;
    m->stalled_since = stalled ? ctl_str(j, "stalled_since", "?") : NULL;
    m->last_backend_error = stalled ? ctl_str(j, "last_backend_error", "none") : NULL;
    m->total = ctl_num(j, "rows_total", -1);
    m->cleaned = ctl_num(j, "rows_cleaned", -1);
    double ct_old = ctl_num(j, "clean_total_old", -1), ct_new = ctl_num(j, "clean_total_new", -1);
    m->clean_total = ct_old >= 0 && ct_new >= 0 ? ct_old + ct_new : -1;
    m->parts_done = ctl_num(j, "partitions_done", -1);
    m->parts_total = ctl_num(j, "partitions_total", -1);
    m->rate = ctl_num(j, "rows_per_second", -1);
    m->eta = ctl_num(j, "eta_seconds", -1);
    m->copy_done = ctl_bool(j, "copy_done");
    m->verified = ctl_bool(j, "copy_verified");
}

static bool ctl_mig_running(const ctl_mig *m)
{
    static const char *const still[] = {"idle", "done", "failed", "paused"};
    for (size_t i = 0; i < sizeof still / sizeof *still; i++)
        if (strcmp(m->state, still[i]) == 0)
            return false;
    return true; /* pushing, copying, cleaning, verifying, or newer */
}

static int ctl_mig_percent(const ctl_mig *m)
{
    if (m->total <= 0 || m->copied < 0)
        return -1; /* unknown, or not counted yet */
    double p = m->copied * 100.0 / m->total;
    return p > 100 ? 100 : p < 0 ? 0 : (int)p;
}

/* Whether the cleanup is under way with known totals: the bar shows it. */
static bool ctl_mig_cleaning(const ctl_mig *m)
{
    return strcmp(m->state, "cleaning") == 0 && m->clean_total > 0 && m->cleaned >= 0;
}

static int ctl_clean_percent(const ctl_mig *m)
{
    double p = m->cleaned * 100.0 / m->clean_total;
    return p > 100 ? 100 : p < 0 ? 0 : (int)p;
}

/* "N/T rows copied (P%), N cleaned, N/T partitions, R rows/s, eta E, copy done". */
static void ctl_mig_counts(const ctl_mig *m, ctl_buf *b)
{
    int pct = ctl_mig_percent(m);
    if (pct >= 0)
        ctl_addf(b, ", %.0f/%.0f rows copied (%d%%)", m->copied, m->total, pct);
    else if (m->copied >= 0)
        ctl_addf(b, ", %.0f rows copied", m->copied);
    if (m->cleaned >= 0 && m->clean_total > 0)
        ctl_addf(b, ", %.0f/%.0f rows cleaned", m->cleaned, m->clean_total);
    else if (m->cleaned > 0)
        ctl_addf(b, ", %.0f cleaned", m->cleaned);
    if (m->parts_done >= 0 && m->parts_total > 0)
        ctl_addf(b, ", %.0f/%.0f partitions", m->parts_done, m->parts_total);
    else if (m->parts_done > 0)
        ctl_addf(b, ", %.0f partitions", m->parts_done);
    if (m->rate > 0 && ctl_mig_running(m))
        ctl_addf(b, ", %.0f rows/s", m->rate);
    char eta[32];
    ctl_duration(m->eta, eta, sizeof eta);
    if (m->eta >= 0 && ctl_mig_running(m))
        ctl_addf(b, ", eta %s", eta);
    if (m->copy_done == 1)
        ctl_addf(b, m->verified == 1 ? ", copy done and verified" : ", copy done");
    if (m->stalled_since && ctl_mig_running(m))
        ctl_addf(b, ", stalled since %s (last backend error: %s)", m->stalled_since,
                 m->last_backend_error);
}

/* "copying, phase prefer_new, 10/20 rows copied (50%), ..." */
static void ctl_mig_line(const ctl_mig *m, ctl_buf *b)
{
    ctl_addf(b, "%s, phase %s", m->state, m->phase);
    ctl_mig_counts(m, b);
}

/* ------------------------------------------------------------------------ */
/* status                                                                    */

static int ctl_get_status(ctl *c, ctl_reply *r, int tries)
{
    const char *path = "/admin/v1/status";
    int rc = ctl_call_tries(c, "GET", path, NULL, CTL_TIMEOUT_S, r, tries);
    if (rc != 0)
        return rc;
    const cJSON *mig = cJSON_GetObjectItemCaseSensitive(r->doc, "migration");
    if (!ctl_str(r->doc, "phase", NULL) || !ctl_str(mig, "state", NULL))
        return ctl_fail_not_api(c, path, r, "JSON without phase and migration.state");
    return 0;
}

static void ctl_print_proxy(const cJSON *p)
{
    ctl_buf b = {0};
    ctl_addf(&b, "proxy      %s:", ctl_str(p, "id", "?"));
    double v = ctl_num(p, "config_version", -1), lease = ctl_num(p, "lease_left_ms", -1);
    if (v >= 0)
        ctl_addf(&b, " version %.0f", v);
    if (ctl_str(p, "phase", NULL))
        ctl_addf(&b, ", phase %s", ctl_str(p, "phase", ""));
    if (lease >= 0)
        ctl_addf(&b, ", lease %.1f s left", lease / 1000.0);
    int live = ctl_bool(p, "live");
    if (live >= 0)
        ctl_addf(&b, live ? ", live" : ", not live");
    puts(b.s);
}

/* During a push: "waiting     px3 (lease 6.2 s left), px4 (...)". */
static void ctl_print_awaited(const cJSON *s)
{
    ctl_buf b = {0};
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(s, "proxies"))
    {
        if (ctl_bool(p, "awaited") != 1)
            continue;
        double left = ctl_num(p, "lease_left_ms", -1e15);
        ctl_addf(&b, "%s%s", b.n ? ", " : "waiting    for ", ctl_str(p, "id", "?"));
        if (left > 0)
            ctl_addf(&b, " (lease %.1f s left)", left / 1000.0);
        else if (left > -1e12)
            ctl_addf(&b, " (its lease ran out; waiting out the margin)");
    }
    if (b.n)
        puts(b.s);
}

static void ctl_print_status(const cJSON *s)
{
    ctl_mig m;
    ctl_mig_read(s, &m);
    printf("phase      %s\n", m.phase);
    if (ctl_str(s, "direction", NULL))
        printf("direction  %s\n", ctl_str(s, "direction", ""));
    double v = ctl_num(s, "config_version", -1);
    int settled = ctl_bool(s, "settled");
    if (v >= 0)
        printf("version    %.0f%s\n", v,
               settled < 0 ? ""
               : settled   ? ", settled"
                           : ", not settled (a push is under way)");
    if (ctl_str(s, "role", NULL))
        printf("role       %s\n", ctl_str(s, "role", ""));
    ctl_buf b = {0};
    ctl_addf(&b, "migration  %s", m.state);
    ctl_mig_counts(&m, &b);
    puts(b.s);
    if (m.error)
        printf("error      %s\n", m.error);
    ctl_print_awaited(s);
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(s, "proxies")) ctl_print_proxy(p);
}

static void ctl_on_sigint(int sig);

/* One sample of status --watch. With --json, the document on one line
 * (a stream of JSON lines, for a script); otherwise the text headed by the
 * time, the screen cleared first on a terminal. */
static void ctl_watch_frame(const ctl *c, bool tty, const ctl_reply *r)
{
    if (c->json) {
        char *line = cJSON_PrintUnformatted(r->doc);
        if (line)
            puts(line);
        free(line);
        fflush(stdout);
        return;
    }
    char when[16];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
    if (tty)
        fputs("\033[H\033[2J", stdout); /* home, clear the screen */
    printf("%s  %s  every %gs%s\n", when, c->admin, c->interval_s, tty ? "  (Ctrl-C to stop)" : "");
    ctl_print_status(r->doc);
    if (!tty)
        putchar('\n');
    fflush(stdout);
}

/* status --watch: the status every interval, redrawn in place on a
 * terminal, one block after another otherwise, so a log or a pipe keeps
 * every sample. Ends on Ctrl-C or SIGTERM (exit 0) or when the endpoint
 * cannot be reached for several tries. */
static int ctl_watch_status(ctl *c)
{
    bool tty = isatty(STDOUT_FILENO) == 1;
    struct sigaction sa = {.sa_handler = ctl_on_sigint}; /* no SA_RESTART: wake the sleep */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!ctl_interrupted) {
        ctl_reply r = {0};
        int rc = ctl_get_status(c, &r, CTL_POLL_TRIES);
        if (rc == 0)
            ctl_watch_frame(c, tty, &r);
        ctl_reply_free(&r);
        if (rc != 0)
            return ctl_interrupted ? CTL_EXIT_OK : rc;
        ctl_sleep_ms((long)(c->interval_s * 1000));
    }
    return CTL_EXIT_OK;
}

static int ctl_cmd_status(ctl *c)
{
    if (c->watch)
        return ctl_watch_status(c);
    ctl_reply r = {0};
    int rc = ctl_get_status(c, &r, 1);
    if (rc == 0 && c->json)
        ctl_print_raw(&r);
    else if (rc == 0)
        ctl_print_status(r.doc);
    ctl_reply_free(&r);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* phase                                                                     */

static int ctl_cmd_phase(ctl *c)
{
    char body[128];
    snprintf(body, sizeof body, "{\"phase\":\"%s\"}", c->arg); /* a known name */
    ctl_reply r = {0};
    int rc = ctl_call(c, "POST", "/admin/v1/phase", body, CTL_PHASE_TIMEOUT_S, &r);
    if (rc == 0 && c->json) {
        ctl_print_raw(&r);
    } else if (rc == 0) {
        double v = ctl_num(r.doc, "config_version", -1);
        printf("phase %s", ctl_str(r.doc, "phase", c->arg));
        if (v >= 0)
            printf(" (config version %.0f)", v);
        puts(": every live proxy has acknowledged");
    }
    ctl_reply_free(&r);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Waiting for a migration: a redrawn bar on a terminal, log lines otherwise. */

typedef struct ctl_watch {
    bool tty, saw_running;
    int still_polls;
    char state[32], phase[64];
    double last_log;
} ctl_watch;

static int ctl_columns(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}

/* "  42%  420/1000 rows  812 rows/s  eta 5s  prefer_new": the bar's neighbours. */
static void ctl_bar_tail(const ctl_mig *m, int pct, ctl_buf *b)
{
    bool cleaning = ctl_mig_cleaning(m);
    if (cleaning)
        ctl_addf(b, " %3d%%  %.0f/%.0f rows cleaned", pct, m->cleaned, m->clean_total);
    else if (pct >= 0)
        ctl_addf(b, " %3d%%  %.0f/%.0f rows", pct, m->copied, m->total);
    else if (m->copied >= 0)
        ctl_addf(b, "  %.0f rows", m->copied);
    if (m->rate >= 0 && ctl_mig_running(m))
        ctl_addf(b, "  %.0f rows/s", m->rate);
    char eta[32];
    ctl_duration(m->eta, eta, sizeof eta);
    if (m->eta >= 0 && ctl_mig_running(m))
        ctl_addf(b, "  eta %s", eta);
    if (m->stalled_since && ctl_mig_running(m))
        ctl_addf(b, "  STALLED since %s", m->stalled_since);
    ctl_addf(b, "  %s", m->phase);
}

static void ctl_draw_bar(const ctl_mig *m)
{
    int pct = ctl_mig_cleaning(m) ? ctl_clean_percent(m) : ctl_mig_percent(m);
    int cols = ctl_columns() - 1;
    ctl_buf tail = {0}, b = {0};
    ctl_bar_tail(m, pct, &tail);
    ctl_addf(&b, "%s", m->state);
    if (pct >= 0) {
        int width = cols - (int)(b.n + tail.n) - 3;
        width = width < 10 ? 10 : width > 40 ? 40 : width;
        char bar[41];
        for (int i = 0; i < width; i++)
            bar[i] = i < pct * width / 100 ? '#' : '-';
        bar[width] = '\0';
        ctl_addf(&b, " [%s]", bar);
    }
    ctl_addf(&b, "%s", tail.s);
    if (b.n > (size_t)cols)
        b.s[cols] = '\0';
    printf("\r%s\033[K", b.s);
    fflush(stdout);
    ctl_bar_open = true;
}

static void ctl_log_line(const ctl_mig *m)
{
    char when[16];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
    ctl_buf b = {0};
    ctl_mig_line(m, &b);
    printf("%s migration %s\n", when, b.s);
    fflush(stdout);
}

/* Ends a drawn bar's line so that what follows starts on its own. */
static void ctl_end_bar(void)
{
    if (ctl_bar_open)
        putchar('\n');
    ctl_bar_open = false;
}

static void ctl_show(ctl *c, ctl_watch *w, const ctl_mig *m)
{
    bool changed = strcmp(w->state, m->state) != 0 || strcmp(w->phase, m->phase) != 0;
    snprintf(w->state, sizeof w->state, "%s", m->state);
    snprintf(w->phase, sizeof w->phase, "%s", m->phase);
    if (c->json)
        return;
    if (w->tty) {
        ctl_draw_bar(m);
    } else if (changed || ctl_now() - w->last_log >= CTL_LOG_EVERY_S) {
        ctl_log_line(m);
        w->last_log = ctl_now();
    }
}

/* -1 while the migration runs, otherwise the exit code. "idle" or "paused"
 * may still be what the server showed before the start took effect, so they
 * end the wait once the run was seen, after a few polls, or (idle) in the
 * phase --until named. */
static int ctl_wait_end(const ctl *c, ctl_watch *w, const ctl_mig *m)
{
    if (strcmp(m->state, "done") == 0)
        return CTL_EXIT_OK;
    if (strcmp(m->state, "failed") == 0)
        return CTL_EXIT_FAILED;
    if (ctl_mig_running(m)) {
        w->saw_running = true;
        return -1;
    }
    bool seen = w->saw_running || ++w->still_polls >= 4;
    if (strcmp(m->state, "paused") == 0)
        return seen ? CTL_EXIT_FAILED : -1;
    bool at_until = c->until && strcmp(c->until, m->phase) == 0;
    return seen || at_until ? CTL_EXIT_OK : -1;
}

static void ctl_report_end(ctl *c, ctl_watch *w, const ctl_mig *m, const ctl_reply *r)
{
    ctl_end_bar();
    if (c->json)
        ctl_print_raw(r);
    else if (w->tty || strcmp(w->state, m->state) != 0)
        ctl_log_line(m); /* else the plain log has just printed it */
    if (strcmp(m->state, "failed") == 0)
        ctl_err("the migration failed on %s: %s -- see the proxy's log, "
                "fix the cause, then continue it with mtablectl resume",
                c->admin, m->error ? m->error : "no error given");
    else if (strcmp(m->state, "paused") == 0)
        ctl_err("the migration on %s is paused in phase %s before it "
                "finished: continue with mtablectl resume",
                c->admin, m->phase);
}

static void ctl_on_sigint(int sig)
{
    (void)sig;
    ctl_interrupted = 1;
}

static int ctl_interrupt(const ctl *c)
{
    ctl_err("stopped watching %s; the migration goes on -- follow it with "
            "mtablectl status",
            c->admin);
    return CTL_EXIT_INTERRUPTED;
}

static int ctl_wait(ctl *c)
{
    ctl_watch w = {.tty = isatty(STDOUT_FILENO) == 1, .last_log = ctl_now()};
    struct sigaction sa = {.sa_handler = ctl_on_sigint}; /* no SA_RESTART: wake the sleep */
    sigaction(SIGINT, &sa, NULL);
    for (;;) {
        ctl_reply r = {0};
        int rc = ctl_get_status(c, &r, CTL_POLL_TRIES);
        if (rc != 0) {
            ctl_reply_free(&r);
            return rc;
        }
        ctl_mig m;
        ctl_mig_read(r.doc, &m);
        int end = ctl_wait_end(c, &w, &m);
        if (end >= 0)
            ctl_report_end(c, &w, &m, &r);
        else
            ctl_show(c, &w, &m);
        ctl_reply_free(&r);
        if (end >= 0)
            return end;
        ctl_sleep_ms(CTL_POLL_MS);
        if (ctl_interrupted)
            return ctl_interrupt(c);
    }
}

/* ------------------------------------------------------------------------ */
/* migrate, pause, resume, verify                                            */

/* POSTs a start (migrate or resume), then waits unless --no-wait. */
static int ctl_start(ctl *c, const char *path, const char *body, const char *what)
{
    ctl_reply r = {0};
    int rc = ctl_call(c, "POST", path, body, CTL_TIMEOUT_S, &r);
    if (rc == 0 && c->json && c->no_wait)
        ctl_print_raw(&r);
    else if (rc == 0 && !c->json)
        printf("migration %s on %s\n", what, c->admin);
    fflush(stdout);
    ctl_reply_free(&r);
    if (rc != 0 || c->no_wait)
        return rc;
    return ctl_wait(c);
}

static int ctl_cmd_migrate(ctl *c)
{
    /* Both are known names (checked), so they need no escaping. */
    char body[160] = "", until[64] = "", old_after[48] = "";
    if (c->until)
        snprintf(until, sizeof until, "\"until\":\"%s\"", c->until);
    else if (c->reverse)
        snprintf(until, sizeof until, "\"reverse\":true");
    if (c->old_after)
        snprintf(old_after, sizeof old_after, "\"old_after\":\"%s\"", c->old_after);
    if (until[0] || c->old_after)
        snprintf(body, sizeof body, "{%s%s%s}", until, until[0] && c->old_after ? "," : "",
                 old_after);
    return ctl_start(c, "/admin/v1/migrate", body, c->reverse ? "back started" : "started");
}

static int ctl_cmd_resume(ctl *c)
{
    return ctl_start(c, "/admin/v1/migrate/resume", "", "resumed");
}

static int ctl_cmd_pause(ctl *c)
{
    ctl_reply r = {0};
    int rc = ctl_call(c, "POST", "/admin/v1/migrate/pause", "", CTL_TIMEOUT_S, &r);
    if (rc == 0 && c->json)
        ctl_print_raw(&r);
    else if (rc == 0)
        printf("migration %s on %s: mtablectl status shows paused once it has stopped\n",
               ctl_str(r.doc, "state", "pausing"), c->admin);
    ctl_reply_free(&r);
    return rc;
}

static int ctl_cmd_abort(ctl *c)
{
    ctl_reply r = {0};
    int rc = ctl_call(c, "POST", "/admin/v1/abort", "", CTL_PHASE_TIMEOUT_S, &r);
    if (rc == 0 && c->json)
        ctl_print_raw(&r);
    else if (rc == 0)
        printf("migration aborted on %s: every live proxy is in %s; %.0f protocol rows "
               "deleted from old\n",
               c->admin, ctl_str(r.doc, "phase", "use_old_hide_metadata"),
               ctl_num(r.doc, "protocol_rows_deleted", 0));
    ctl_reply_free(&r);
    return rc;
}

static void ctl_print_verify(const cJSON *v)
{
    static const char *const fields[][2] = {{"old_rows", "old rows"},
                                            {"new_rows", "new rows"},
                                            {"missing", "missing"},
                                            {"tombstones", "tombstones"},
                                            {"protocol_rows", "protocol rows"},
                                            {"reserved_props", "reserved properties"},
                                            {"unswitched", "unswitched partitions"}};
    printf("verify     %s\n",
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "ok")) ? "ok" : "NOT OK");
    if (ctl_str(v, "summary", NULL))
        printf("summary    %s\n", ctl_str(v, "summary", ""));
    ctl_buf b = {0};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        double n = ctl_num(v, fields[i][0], -1);
        if (n >= 0)
            ctl_addf(&b, "%s%s %.0f", b.n ? ", " : "", fields[i][1], n);
    }
    if (b.n)
        printf("counts     %s\n", b.s);
    const cJSON *fm = cJSON_GetObjectItemCaseSensitive(v, "first_missing");
    char *text = fm && !cJSON_IsNull(fm) ? cJSON_PrintUnformatted(fm) : NULL;
    if (text)
        printf("first missing %s\n", text);
    free(text);
}

static int ctl_cmd_verify(ctl *c)
{
    const char *path = "/admin/v1/verify";
    ctl_reply r = {0};
    int rc = ctl_call(c, "POST", path, "", CTL_VERIFY_TIMEOUT_S, &r);
    if (rc == 0 && !cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(r.doc, "ok")))
        rc = ctl_fail_not_api(c, path, &r, "JSON without ok");
    if (rc == 0) {
        bool ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.doc, "ok"));
        if (c->json)
            ctl_print_raw(&r);
        else
            ctl_print_verify(r.doc);
        if (!ok) {
            fflush(stdout);
            ctl_err("verify on %s: the tables do not match yet: %s", c->admin,
                    ctl_str(r.doc, "summary", "see the report"));
            rc = CTL_EXIT_FAILED;
        }
    }
    ctl_reply_free(&r);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Command line.                                                             */

static int ctl_cmd_help(ctl *c)
{
    (void)c;
    ctl_usage(stdout);
    return CTL_EXIT_OK;
}

static const ctl_cmd ctl_cmds[] = {
    {"status", ctl_cmd_status, 0, false, false, true},
    {"phase", ctl_cmd_phase, 1, false, false, false},
    {"migrate", ctl_cmd_migrate, 0, true, true, false},
    {"pause", ctl_cmd_pause, 0, false, false, false},
    {"resume", ctl_cmd_resume, 0, false, true, false},
    {"verify", ctl_cmd_verify, 0, false, false, false},
    {"abort", ctl_cmd_abort, 0, false, false, false},
    {"help", ctl_cmd_help, 0, false, false, false},
};

/* The value of flag NAME at argv[*i], as "NAME V" or "NAME=V"; NULL when
 * argv[*i] is another flag. *missing is set when the value is absent. */
static const char *ctl_flag_value(const char *name, int argc, char **argv, int *i, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* One flag at argv[*i]: 0 taken, or an exit code / CTL_PARSE_*. */
static int ctl_parse_flag(ctl *c, int argc, char **argv, int *i, const char **admin)
{
    static const char *const names[] = {"--admin",     "--token", "--until",
                                        "--old-after", "--ca",    "--interval"};
    const char **slots[] = {admin, &c->token, &c->until, &c->old_after, &c->ca, &c->interval};
    const char *a = argv[*i];
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        bool missing = false;
        const char *v = ctl_flag_value(names[k], argc, argv, i, &missing);
        if (missing)
            return ctl_usage_error("%s needs a value", names[k]);
        if (v) {
            *slots[k] = v;
            return 0;
        }
    }
    if (strcmp(a, "--json") == 0)
        c->json = true;
    else if (strcmp(a, "--no-wait") == 0)
        c->no_wait = true;
    else if (strcmp(a, "--watch") == 0)
        c->watch = true;
    else if (strcmp(a, "--reverse") == 0)
        c->reverse = true;
    else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
        return CTL_PARSE_HELP;
    else if (strcmp(a, "--version") == 0)
        return CTL_PARSE_VERSION;
    else
        return ctl_usage_error("unknown option '%s'", a);
    return 0;
}

static int ctl_parse_args(ctl *c, int argc, char **argv, const char **admin)
{
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            int rc = ctl_parse_flag(c, argc, argv, &i, admin);
            if (rc != 0)
                return rc;
        } else if (!c->cmd) {
            c->cmd = argv[i];
        } else if (!c->arg) {
            c->arg = argv[i];
        } else {
            return ctl_usage_error("unexpected argument '%s'", argv[i]);
        }
    }
    return 0;
}

static int ctl_check_phase(const char *what, const char *name)
{
    if (ctl_phase_known(name))
        return 0;
    return ctl_usage_error("%s: unknown phase '%s'; one of use_old_hide_metadata, prefer_old, "
                           "prefer_new, use_new_with_tombstones, use_new_hide_metadata",
                           what, name);
}

/* Checks the command and its arguments against ctl_cmds; sets *cmd. */
static int ctl_check_command(const ctl *c, const ctl_cmd **cmd)
{
    if (!c->cmd)
        return ctl_usage_error("no command given");
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof *ctl_cmds; i++)
        if (strcmp(c->cmd, ctl_cmds[i].name) == 0)
            *cmd = &ctl_cmds[i];
    if (!*cmd)
        return ctl_usage_error("unknown command '%s'", c->cmd);
    if ((*cmd)->nargs == 1 && !c->arg)
        return ctl_usage_error("%s needs an argument", c->cmd);
    if ((*cmd)->nargs == 0 && c->arg)
        return ctl_usage_error("unexpected argument '%s'", c->arg);
    if (c->until && !(*cmd)->until)
        return ctl_usage_error("--until applies only to migrate");
    if (c->no_wait && !(*cmd)->no_wait)
        return ctl_usage_error("--no-wait applies only to migrate and resume");
    if ((c->watch || c->interval) && !(*cmd)->watch)
        return ctl_usage_error("--watch and --interval apply only to status");
    if (c->interval && !c->watch)
        return ctl_usage_error("--interval applies only with --watch");
    if (c->interval) {
        char *end;
        double v = strtod(c->interval, &end);
        if (end == c->interval || *end || !(v >= 0.1 && v <= 3600))
            return ctl_usage_error("--interval: '%s' is not a number of seconds from 0.1 to "
                                   "3600",
                                   c->interval);
    }
    if (c->until && ctl_check_phase("--until", c->until) != 0)
        return CTL_EXIT_USAGE;
    if (c->reverse && (*cmd)->run != ctl_cmd_migrate)
        return ctl_usage_error("--reverse applies only to migrate");
    if (c->reverse && c->until)
        return ctl_usage_error("--reverse runs to the end: --until does not apply");
    if (c->old_after && (*cmd)->run != ctl_cmd_migrate)
        return ctl_usage_error("--old-after applies only to migrate");
    if (c->old_after && strcmp(c->old_after, "empty") != 0 && strcmp(c->old_after, "keep") != 0 &&
        strcmp(c->old_after, "delete") != 0)
        return ctl_usage_error("--old-after: unknown choice '%s'; one of empty, keep, delete",
                               c->old_after);
    if ((*cmd)->run == ctl_cmd_phase)
        return ctl_check_phase("phase", c->arg);
    return 0;
}

/* Flags win over the environment, which wins over the default. */
static int ctl_resolve_endpoint(ctl *c, const char *admin)
{
    const char *env = getenv("MTABLE_ADMIN_URL");
    if (!admin)
        admin = env && env[0] ? env : CTL_DEFAULT_ADMIN;
    if (!c->token) {
        const char *tok = getenv("MTABLE_ADMIN_TOKEN");
        c->token = tok && tok[0] ? tok : NULL;
    }
    if (!c->ca) {
        const char *ca = getenv("MTABLE_ADMIN_CA");
        c->ca = ca && ca[0] ? ca : NULL;
    }
    c->interval_s = c->interval ? strtod(c->interval, NULL) : 2.0;
    size_t n = strlen(admin);
    while (n > 0 && admin[n - 1] == '/')
        n--;
    if (n == 0 || n > 2048)
        return ctl_usage_error("invalid admin URL '%s'", admin);
    c->admin = strndup(admin, n);
    return c->admin ? 0 : CTL_EXIT_FAILED;
}

static int ctl_setup(ctl *c, int argc, char **argv, const ctl_cmd **cmd)
{
    const char *admin = NULL;
    int rc = ctl_parse_args(c, argc, argv, &admin);
    if (rc == CTL_PARSE_HELP) {
        ctl_usage(stdout);
        return CTL_EXIT_OK;
    }
    if (rc == CTL_PARSE_VERSION) {
        puts("mtablectl " MTABLE_VERSION);
        return CTL_EXIT_OK;
    }
    if (rc == 0)
        rc = ctl_check_command(c, cmd);
    if (rc == 0)
        rc = ctl_resolve_endpoint(c, admin);
    return rc != 0 ? rc : CTL_CONTINUE;
}

int main(int argc, char **argv)
{
    ctl c = {0};
    const ctl_cmd *cmd = NULL;
    int rc = ctl_setup(&c, argc, argv, &cmd);
    if (rc != CTL_CONTINUE)
        return rc;
    if (cmd->run == ctl_cmd_help) {
        rc = ctl_cmd_help(&c);
        free(c.admin);
        return rc;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c.curl = curl_easy_init())) {
        ctl_err("cannot initialise libcurl");
        free(c.admin);
        return CTL_EXIT_FAILED;
    }
    rc = cmd->run(&c);
    curl_easy_cleanup(c.curl);
    curl_global_cleanup();
    free(c.admin);
    return rc;
}

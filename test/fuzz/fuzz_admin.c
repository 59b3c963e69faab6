/*
 * fuzz_admin.c -- libFuzzer target for the admin endpoint's handler,
 * px_admin_handle: routing, authorization, the JSON bodies of phase,
 * migrate and acknowledgement calls, the long poll's query, and every
 * reply it renders.
 *
 * One application is built at start (memory backends, a memory state
 * store, admin token "t") and kept for the whole run, as the daemon keeps
 * it; its ticker thread runs. Input:
 *
 *   byte 0  bits 0-1 method (GET, POST, PUT, DELETE); bit 2 use the
 *           route's own method instead; bit 3 send the right token; bit 4
 *           no query at all; bits 5-7 which wait_ms the query starts with
 *   byte 1  route: 0-11 pick a known path (for the acks and replicas
 *           routes field 0 is the id), 12-15 field 0 is the whole url
 *   then    NUL-separated fields: url or id, query, authorization (used
 *           when bit 3 is clear), and the rest, NULs and all, is the body
 *
 * What the fuzzer must not be allowed to do is block: the long poll waits
 * up to 30 s for wait_ms, and the first wait_ms in a query wins, so the
 * target puts its own (0, 1 ms or malformed) in front of the fuzzed query.
 * A push waits for every proxy holding a lease, and the fuzzer can grant
 * leases through the ack route, so the authority's lease is set to 1 ms
 * (below what --lease-ms accepts). Phases only move forward, so once the
 * last one is reached and no migration runs, the application is freed and
 * built again -- at most every few seconds, since freeing it joins the
 * ticker, which sleeps 200 ms -- and the pushes are covered again, with
 * whatever leases the fuzzer grants in between. The teardown is fuzzed for
 * leaks that way too.
 *
 * Promises checked beyond "never crash or leak": every call gets a status
 * from 200 to 599; a body, when there is one, has the length given; and
 * nothing but /healthz and /readyz answers without the token.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "px.h"

#define FZ_TOKEN "t"

#define FZ_RESET_MS 5000

static px_app *fz_app; /* kept until the next reset: reachable, never a leak */
static px_settings fz_settings;
static int64_t fz_built_ms;

typedef struct fz_route {
    const char *method;
    const char *path;
} fz_route;

static const fz_route fz_routes[] = {
    {"GET", "/healthz"},
    {"GET", "/readyz"},
    {"GET", "/metrics"},
    {"GET", "/admin/v1/status"},
    {"POST", "/admin/v1/phase"},
    {"POST", "/admin/v1/migrate"},
    {"POST", "/admin/v1/migrate/pause"},
    {"POST", "/admin/v1/migrate/resume"},
    {"POST", "/admin/v1/verify"},
    {"POST", "/admin/v1/abort"},
    {"GET", "/config/v1/state"},
    {"PUT", "/config/v1/acks/"},     /* + field 0 */
    {"PUT", "/config/v1/replicas/"}, /* + field 0 */
};
#define FZ_NROUTES (sizeof fz_routes / sizeof *fz_routes)

static const char *const fz_methods[] = {"GET", "POST", "PUT", "DELETE"};
/* Each at most 1 ms of waiting; the last three are refused with a 400. */
static const char *const fz_waits[] = {"0", "1", "", " 0", "00", "-1", "x", "0x1"};

static int64_t fz_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fz_build(void)
{
    fz_app = px_app_new(&fz_settings, stderr);
    if (!fz_app)
        abort();
    fz_built_ms = fz_mono_ms();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char *args[] = {"fuzz_admin", "--admin-token", FZ_TOKEN, "--log-level", "error", NULL};
    if (px_settings_load(&fz_settings, 5, args, stdout, stderr) != 0)
        abort();
    px_log_set_level(fz_settings.log_level);
    fz_settings.lease_ms = 1;      /* see the opening comment */
    fz_settings.rest_lease_ms = 1; /* the same in phases 0 and 4 */
    fz_build();
    return 0;
}

/* Starts over once the phases are used up (see the opening comment). */
static void fz_maybe_reset(void)
{
    if (fz_mono_ms() - fz_built_ms < FZ_RESET_MS ||
        px_app_config(fz_app).phase != MT_PHASE_USE_NEW_HIDE_METADATA)
        return;
    cfg_migrate_info info;
    cfg_migrate_info_get(fz_app->mig, &info);
    if (info.running)
        return;
    px_app_free(fz_app);
    fz_build();
}

/* The next NUL-terminated field of [*p, end), or "" past the end. */
static const char *fz_field(const char **p, const char *end)
{
    if (*p >= end)
        return "";
    const char *f = *p, *nul = memchr(f, '\0', (size_t)(end - f));
    *p = nul ? nul + 1 : end;
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* One copy with a NUL after it, so the last field always ends. */
    char *in = malloc(size + 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    uint8_t flags = data[0], pick = data[1] % 16;
    const char *p = in + 2, *end = in + size;
    const char *f0 = fz_field(&p, end), *f1 = fz_field(&p, end), *f2 = fz_field(&p, end);
    size_t len = p < end ? (size_t)(end - p) : 0;
    /* The body exactly as long as said, so a read past it is caught. */
    char *body = len ? malloc(len) : NULL;
    if (len && !body) {
        free(in);
        return 0;
    }
    if (len)
        memcpy(body, p, len);

    const char *method = fz_methods[flags & 3];
    char *url;
    if (pick < FZ_NROUTES) {
        if (flags & 4)
            method = fz_routes[pick].method;
        const char *path = fz_routes[pick].path;
        const char *id = path[strlen(path) - 1] == '/' ? f0 : ""; /* acks/ID, replicas/ID */
        size_t n = strlen(fz_routes[pick].path) + strlen(id) + 1;
        url = malloc(n);
        if (url)
            snprintf(url, n, "%s%s", fz_routes[pick].path, id);
    } else {
        url = strdup(f0);
    }
    const char *wait = fz_waits[flags >> 5];
    size_t qn = strlen("wait_ms=&") + strlen(wait) + strlen(f1) + 1;
    char *query = malloc(qn);
    if (query)
        snprintf(query, qn, "wait_ms=%s&%s", wait, f1);
    if (!url || !query)
        goto out;

    const char *auth = flags & 8 ? "Bearer " FZ_TOKEN : f2;
    px_resp r = {0};
    px_admin_handle(fz_app, method, url, flags & 16 ? NULL : query, len ? body : "", len, auth, &r);
    bool unguarded =
        strcmp(method, "GET") == 0 && (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0);
    bool authed = strcmp(auth, "Bearer " FZ_TOKEN) == 0;
    if (r.status < 200 || r.status > 599 || (r.body && strlen(r.body) != r.len) ||
        (!r.body && r.len) || (!unguarded && !authed && r.status != 401)) {
        fprintf(stderr, "fuzz_admin: %s %s -> %d (%zu bytes)\n", method, url, r.status, r.len);
        abort();
    }
    px_resp_clear(&r);
    fz_maybe_reset();
out:
    free(query);
    free(url);
    free(body);
    free(in);
    return 0;
}

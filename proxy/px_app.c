/*
 * px_app.c -- the process's shared state: backends, the account's tables
 * and the control plane.
 *
 * A proxy is either the configuration authority (no --config-endpoint: it
 * keeps the phase in its state store and runs the migrator) or a client of
 * a remote one (--config-endpoint: it takes the phase from there and holds
 * a lease). A client's backend tables sit behind a guard, so nothing
 * reaches a backend while the lease is out, and its table endpoint answers
 * 503 ServerBusy until it holds one.
 *
 * Start-up errors are one line on err saying what to fix; nothing is
 * served until every part is up. The backends are opened first: an
 * authority that finds its store empty looks in them for signs that a
 * migration already ran (config/cfg_traces.c) before it writes a first state.
 */
#include "px.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How often the ticker settles a restarted authority's version. */
#define TICK_US 200000
/* Every 2 s a push that waits says for whom. */
#define AWAITED_LOG_TICKS 10
#define AWAITED_LOG_MAX 5

/* Connects one side; *client stays NULL for memory. */
static bool open_backend(const char *spec, const char *label, az_client **client, FILE *err)
{
    *client = NULL;
    if (strcmp(spec, "memory") == 0)
        return true;
    az_connstr cs;
    mt_status st = az_connstr_parse(spec, &cs);
    if (mt_is_ok(&st))
        *client = az_client_new(&cs, NULL, &st);
    char *where = mt_is_ok(&st) ? az_connstr_describe(&cs) : NULL;
    if (!mt_is_ok(&st)) {
        fprintf(err, "mtable-proxy: cannot use the %s backend (--%s): %s\n", label, label,
                st.message);
    } else { /* one cheap call now, so a wrong endpoint or key is named here */
        char **names = NULL;
        size_t n = 0;
        st = az_client_tables_list(*client, &names, &n);
        az_client_tables_free(names, n);
        if (!mt_is_ok(&st))
            fprintf(err,
                    "mtable-proxy: cannot list the tables of the %s backend (--%s, %s): is its "
                    "endpoint reachable and the key right? %d %s: %s\n",
                    label, label, where ? where : "?", st.http, st.code, st.message);
        else
            px_log(PX_LOG_INFO, "%s tables at %s", label, where ? where : "?");
    }
    free(where);
    az_connstr_clear(&cs);
    return mt_is_ok(&st);
}

/* Each side's account: the Azure client's, or the embedded memory one. */
static bool open_accounts(px_app *app, FILE *err)
{
    az_client *c[2] = {app->old_client, app->new_client};
    mt_account **a[2] = {&app->old_account, &app->new_account};
    for (int side = 0; side < 2; side++) {
        *a[side] =
            c[side] ? az_client_account(c[side]) : mt_memaccount_new(app->rt, side ? "new" : "old");
        if (!*a[side]) {
            fprintf(err, "mtable-proxy: cannot open the backends: out of memory\n");
            return false;
        }
    }
    return true;
}

/* This replica started or stopped leading: the migrator follows. A
 * standby that takes over resumes a migration its predecessor was running
 * from the last checkpoint, by itself; one that stops leading pauses its
 * own (its writes to the store are refused from now on anyway). */
static void leadership_moved(px_app *app, bool leading)
{
    cfg_leader_info l;
    cfg_authority_leader(app->auth, &l);
    if (!leading) {
        px_log(PX_LOG_WARN, "no longer the leading authority replica (leader: %s at %s)",
               l.id[0] ? l.id : "none", l.url[0] ? l.url : "?");
        cfg_migrate_stop_soon(app->mig);
        return;
    }
    px_log(PX_LOG_WARN, "took over as the leading authority replica (term %lld)",
           (long long)l.term);
    cfg_migrate_join(app->mig);
    if (cfg_migrate_restore(app->mig)) {
        mt_status st = cfg_migrate_start(app->mig, false, MT_PHASE_USE_NEW_HIDE_METADATA);
        px_log(mt_is_ok(&st) ? PX_LOG_WARN : PX_LOG_ERROR,
               "resuming the migration the previous leader was running: %s",
               mt_is_ok(&st) ? "started from its checkpoint" : st.message);
    }
}

/* A standby replica tells the leader every second that it stands by, so
 * the leader's status lists every replica. On a thread of its own: a
 * leader that does not answer must not slow the watch for its beats. */
static void *announcer_main(void *arg)
{
    px_app *app = arg;
    cfg_http *h = NULL;
    char url[CFG_URL_MAX] = "";
    while (!app->stopping) {
        cfg_leader_info l;
        if (!cfg_authority_leader(app->auth, &l) && l.url[0]) {
            if (strcmp(l.url, url) != 0) {
                cfg_http_free(h);
                h = cfg_http_new(l.url, app->settings.admin_token);
                if (h && !cfg_http_set_ca(h, app->settings.config_ca)) {
                    cfg_http_free(h);
                    h = NULL;
                }
                snprintf(url, sizeof url, "%s", l.url);
            }
            if (h)
                cfg_http_announce(h, app->settings.replica_id, app->settings.advertise_url);
        }
        for (int i = 0; i < 5 && !app->stopping; i++)
            usleep(TICK_US);
    }
    cfg_http_free(h);
    return NULL;
}

static void log_one_awaited(const cfg_proxy_info *p)
{
    char left[64] = "its lease ran out; waiting out the margin";
    if (p->lease_left_ms > 0)
        snprintf(left, sizeof left, "lease %.1f s left", (double)p->lease_left_ms / 1000.0);
    px_log_with(PX_LOG_WARN, &(px_log_fields){.proxy_id = p->id},
                "push: waiting for %s (%s, acknowledged version %lld)", p->id, left,
                (long long)p->acked_version);
}

/* While a push waits, which proxies it waits for and how long their
 * leases still run: a push held up by a dead sidecar names it, as soon as
 * the wait starts and then every AWAITED_LOG_TICKS (the first
 * AWAITED_LOG_MAX by name, then how many more). Returns whether the push
 * waits for anyone. */
static bool log_awaited(px_app *app, bool was_waiting, unsigned tick)
{
    cfg_view v;
    cfg_authority_poll(app->auth, -1, false, 0, &v); /* the view now, at once */
    if (v.settled)
        return false;
    size_t cap = cfg_authority_proxies(app->auth, NULL, 0) + 16; /* room for newcomers */
    cfg_proxy_info *info = malloc(cap * sizeof *info);
    size_t n = info ? cfg_authority_proxies(app->auth, info, cap) : 0;
    size_t waiting = 0;
    for (size_t i = 0; i < n && i < cap; i++)
        waiting += info[i].awaited;
    if (waiting && (!was_waiting || tick % AWAITED_LOG_TICKS == 0)) {
        size_t named = 0;
        for (size_t i = 0; i < n && i < cap && named < AWAITED_LOG_MAX; i++)
            if (info[i].awaited) {
                log_one_awaited(&info[i]);
                named++;
            }
        if (waiting > named)
            px_log(PX_LOG_WARN, "push: waiting for %zu more proxies", waiting - named);
    }
    free(info);
    return waiting > 0;
}

static void *ticker_main(void *arg)
{
    px_app *app = arg;
    bool was = cfg_authority_leader(app->auth, NULL);
    bool waiting = false;
    for (unsigned tick = 1; !app->stopping; tick++) {
        cfg_authority_tick(app->auth);
        waiting = was && log_awaited(app, waiting, tick);
        bool now = cfg_authority_leader(app->auth, NULL);
        if (now != was && app->up) {
            leadership_moved(app, now);
            was = now;
        } else if (now && app->up && app->mig && cfg_migrate_lost_lead(app->mig)) {
            leadership_moved(app, true); /* leading again after a lapse too short to see */
        }
        usleep(TICK_US);
    }
    return NULL;
}

static bool client_lease_ok(void *ctx)
{
    return cfg_client_lease_valid(ctx);
}

static bool leader_ok(void *ctx)
{
    return cfg_authority_leader(ctx, NULL);
}

/* Whether the store holds no state yet; false with a message on err when
 * it cannot be read. */
static bool store_empty(px_app *app, bool *empty, FILE *err)
{
    char *doc = NULL, etag[CFG_ETAG_MAX];
    mt_status st = app->store->ops->load(app->store, &doc, etag);
    free(doc);
    if (!mt_is_ok(&st)) {
        fprintf(err, "mtable-proxy: cannot read the state in %s: %s\n",
                app->store->ops->describe(app->store), st.message);
        return false;
    }
    *empty = doc == NULL;
    return true;
}

/* An empty store over backends a migration already touched is a lost or
 * misplaced state: refuse, unless the operator states the phase. */
static bool check_fresh_start(px_app *app, mt_phase *initial, FILE *err)
{
    const px_settings *s = &app->settings;
    bool empty = false;
    if (!store_empty(app, &empty, err))
        return false;
    if (!empty) {
        if (s->recover)
            px_log(PX_LOG_WARN, "--recover-phase ignored: %s already holds a state",
                   app->store->ops->describe(app->store));
        return true;
    }
    if (s->recover) {
        *initial = s->recover_phase;
        px_log(PX_LOG_WARN, "recovering: a new state in phase %s (--recover-phase)",
               mt_phase_name(*initial));
        return true;
    }
    char what[512];
    bool store_in_new = strcmp(px_settings_state_store(s), s->new_spec) == 0;
    mt_status st =
        cfg_traces_find(app->old_client, app->new_client, store_in_new, what, sizeof what);
    if (!mt_is_ok(&st)) {
        fprintf(err,
                "mtable-proxy: cannot look for an earlier migration in the backends: %d %s: "
                "%s\n",
                st.http, st.code, st.message);
        return false;
    }
    if (what[0]) {
        fprintf(err,
                "mtable-proxy: the state store %s is empty, but the backends show an earlier "
                "migration: %s. Point --state-store at that migration's state, or, if it is "
                "lost, start once with --recover-phase PHASE naming the phase the fleet serves\n",
                app->store->ops->describe(app->store), what);
        return false;
    }
    return true;
}

/* The authority: its store and state. */
static bool start_authority(px_app *app, FILE *err)
{
    mt_status st = mt_ok();
    const char *spec = px_settings_state_store(&app->settings);
    app->store = cfg_store_open(spec, &st);
    if (!app->store) {
        fprintf(err, "mtable-proxy: cannot open the state store (--state-store %s): %s\n",
                strncmp(spec, "file:", 5) == 0 || strcmp(spec, "memory") == 0 ? spec : "...",
                st.message);
        return false;
    }
    mt_phase initial = MT_PHASE_USE_OLD_HIDE_METADATA;
    if (!check_fresh_start(app, &initial, err))
        return false;
    char fp[CFG_FINGERPRINT_MAX];
    px_settings_fingerprint(&app->settings, fp, NULL, 0);
    /* Replicas need a store they can share, and a name each. */
    bool replicas = strcmp(spec, "memory") != 0 && app->settings.replica_id[0];
    if (app->settings.replica_id[0] && !replicas) {
        fprintf(err, "mtable-proxy: --replica-id needs a state store replicas can share "
                     "(file:PATH or a connection string), not memory\n");
        return false;
    }
    cfg_authority_opts opts = {.lease_ms = app->settings.lease_ms,
                               .rest_lease_ms = app->settings.rest_lease_ms,
                               .initial_phase = initial,
                               .fingerprint = fp,
                               .replica_id = replicas ? app->settings.replica_id : NULL,
                               .advertise_url = app->settings.advertise_url};
    app->auth = cfg_authority_new(app->rt, app->store, &opts, &st);
    if (!app->auth) {
        fprintf(err, "mtable-proxy: cannot read or write the state in %s: %s\n",
                app->store->ops->describe(app->store), st.message);
        return false;
    }
    app->cfg = cfg_authority_service(app->auth);
    app->ticker_started = pthread_create(&app->ticker, NULL, ticker_main, app) == 0;
    if (replicas)
        app->announcer_started = pthread_create(&app->announcer, NULL, announcer_main, app) == 0;
    px_log(PX_LOG_INFO, "configuration authority, state in %s",
           app->store->ops->describe(app->store));
    return true;
}

/* The configuration client's events, as log lines naming the authority. */
static void client_log(void *ctx, int level, const char *msg)
{
    px_app *app = ctx;
    int lv = level == CFG_LOG_ERROR  ? PX_LOG_ERROR
             : level == CFG_LOG_WARN ? PX_LOG_WARN
                                     : PX_LOG_INFO;
    px_log(lv, "config (authority %s): %s", app->settings.config_endpoint, msg);
}

/* A client of a remote authority. */
static bool start_client(px_app *app, FILE *err)
{
    char fp[CFG_FINGERPRINT_MAX], text[1024];
    px_settings_fingerprint(&app->settings, fp, text, sizeof text);
    app->http = cfg_http_new(app->settings.config_endpoint, app->settings.admin_token);
    if (app->http && !cfg_http_set_ca(app->http, app->settings.config_ca)) {
        cfg_http_free(app->http);
        app->http = NULL;
    }
    cfg_transport tr = app->http ? cfg_http_transport(app->http) : (cfg_transport){0};
    cfg_client_opts co = {
        .id = app->settings.proxy_id, .fingerprint = fp, .log = client_log, .log_ctx = app};
    app->client = app->http ? cfg_client_new(app->rt, &tr, &co) : NULL;
    if (!app->client) {
        fprintf(err, "mtable-proxy: cannot start the configuration client: out of memory\n");
        return false;
    }
    app->cfg = cfg_client_service(app->client);
    px_log(PX_LOG_INFO, "taking the phase from %s as proxy %s (backends %s: %s)",
           app->settings.config_endpoint, app->settings.proxy_id, fp, text);
    return true;
}

/* ------------------------------------------------------------------------ */
/* The migration run's world (cfg_migrate_env): the accounts' tables, the   */
/* log, and the rate the status shows.                                      */

static char **mig_list_tables(void *ctx, size_t *n, mt_status *st)
{
    px_app *app = ctx;
    return px_account_tables(app->reg, n, st);
}

typedef struct mig_tables {
    px_table **t;
    size_t n;
} mig_tables;

/* The named tables (see px_tables_named). */
static void *mig_open_tables(void *ctx, char *const *names, size_t n, mt_table_pair *pairs,
                             const char **labels)
{
    px_app *app = ctx;
    mig_tables *h = malloc(sizeof *h);
    px_table **t = h ? px_tables_named(app->reg, names, n) : NULL;
    if (!t) {
        free(h);
        return NULL;
    }
    *h = (mig_tables){.t = t, .n = n};
    for (size_t i = 0; i < n; i++) {
        pairs[i] = px_table_backends(t[i]);
        labels[i] = px_table_name(t[i]);
    }
    return h;
}

static void mig_close_tables(void *ctx, void *handle)
{
    px_app *app = ctx;
    mig_tables *h = handle;
    for (size_t i = 0; i < h->n; i++)
        px_table_release(app->reg, h->t[i]);
    free(h->t);
    free(h);
}

static mt_status mig_delete_old_table(void *ctx, const char *name)
{
    px_app *app = ctx;
    /* In a migration back the new account plays old. */
    return px_table_delete_old(app->reg, name, px_app_config(app).reversed ? 1 : 0);
}

static mt_status mig_recreate_old_table(void *ctx, const char *name)
{
    px_app *app = ctx;
    return px_table_recreate_old(app->reg, name, px_app_config(app).reversed ? 1 : 0);
}

static mt_status mig_create_table(void *ctx, const char *name)
{
    px_app *app = ctx;
    mt_status st = px_table_create(app->reg, name);
    return st.http == 409 ? mt_ok() : st; /* it existed in both */
}

static void mig_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    int lv = level == CFG_LOG_ERROR  ? PX_LOG_ERROR
             : level == CFG_LOG_WARN ? PX_LOG_WARN
                                     : PX_LOG_INFO;
    px_log(lv, "%s", msg);
}

/* Feeds the moving step's rate: a step that starts starts it afresh. */
static void mig_progress(void *ctx, cfg_migration_state s, const mt_migrator_stats *stats)
{
    px_app *app = ctx;
    pthread_mutex_lock(&app->mu);
    if (s != CFG_MIG_COPYING && s != CFG_MIG_CLEANING) {
        app->mig_rate_for = s;
    } else {
        int64_t now = app->rt->ops->mono_ms(app->rt);
        if (app->mig_rate_for != s)
            px_rate_reset(&app->mig_rate, now, cfg_migrate_moved(s, stats));
        else
            px_rate_note(&app->mig_rate, now, cfg_migrate_moved(s, stats));
        app->mig_rate_for = s;
    }
    pthread_mutex_unlock(&app->mu);
}

/* The authority's migration run, over the registry. */
static bool start_migrator(px_app *app, FILE *err)
{
    cfg_migrate_env env = {
        .list_tables = mig_list_tables,
        .open_tables = mig_open_tables,
        .delete_old_table = mig_delete_old_table,
        .recreate_old_table = mig_recreate_old_table,
        .create_table = mig_create_table,
        .close_tables = mig_close_tables,
        .log = mig_log,
        .progress = mig_progress,
        .ctx = app,
        .copy_parallel = app->settings.copy_parallel,
        .copy_rate = app->settings.copy_rate,
    };
    app->mig = cfg_migrate_new(app->rt, app->cfg, app->auth, &env);
    if (!app->mig)
        fprintf(err, "mtable-proxy: cannot start the migrator: out of memory\n");
    return app->mig != NULL;
}

/* Keeps app->phase equal to the applied phase; runs on the pushing thread. */
static void phase_apply(void *ctx, const mt_config *c)
{
    px_app *app = ctx;
    __atomic_store_n(&app->phase, (int)c->phase, __ATOMIC_RELEASE);
}

/* A callback subscription, held for the process's life, so that reading
 * the phase for a request's metrics label is one atomic load rather than a
 * subscription made and dropped (an allocation and the service's lock) on
 * every request. */
static bool follow_phase(px_app *app, FILE *err)
{
    mt_subscriber sub = {.apply = phase_apply, .ctx = app};
    mt_config c;
    app->phase_sub = app->cfg->ops->subscribe(app->cfg, &sub, &c);
    if (!app->phase_sub) {
        fprintf(err, "mtable-proxy: cannot follow the phase: out of memory\n");
        return false;
    }
    __atomic_store_n(&app->phase, (int)c.phase, __ATOMIC_RELEASE);
    return true;
}

px_app *px_app_new(const px_settings *s, FILE *err)
{
    px_app *app = calloc(1, sizeof *app);
    if (!app)
        return NULL;
    app->settings = *s;
    app->rt = mt_rt_pthread();
    app->metrics = px_metrics_new();
    if (app->metrics)
        px_metrics_set_slow_ms(app->metrics, s->slow_backend_ms);
    app->watch = px_watch_start(s->slow_backend_ms);
    if (s->config_endpoint[0])
        px_log_set_proxy_id(s->proxy_id);
    pthread_mutex_init(&app->mu, NULL);
    bool remote = s->config_endpoint[0] != '\0';
    if (!open_backend(s->old_spec, "old", &app->old_client, err) ||
        !open_backend(s->new_spec, "new", &app->new_client, err) ||
        !(remote ? start_client(app, err) : start_authority(app, err)) || !follow_phase(app, err)) {
        px_app_free(app);
        return NULL;
    }
    if (!open_accounts(app, err)) {
        px_app_free(app);
        return NULL;
    }
    mt_status st = mt_ok();
    /* A sidecar reaches its backends only under a lease; an authority
     * replica only while it leads (a standby, or a leader whose beats
     * stopped, must not write behind its successor's back). */
    px_guard guard = remote ? (px_guard){.valid = client_lease_ok, .ctx = app->client}
                            : (px_guard){.valid = leader_ok, .ctx = app->auth, .leader = true};
    app->reg = px_registry_new(
        app->rt, app->cfg, (px_backend){.account = app->old_account, .label = "old"},
        (px_backend){.account = app->new_account, .label = "new", .map = &app->settings.table_map},
        &guard, app->metrics, &st);
    if (!mt_is_ok(&st)) {
        fprintf(err,
                "mtable-proxy: cannot list the tables of the backends (is the endpoint "
                "reachable and the key right?): %d %s: %s\n",
                st.http, st.code, st.message);
        px_app_free(app);
        return NULL;
    }
    size_t n = 0;
    app->service_properties = az_service_properties_default(&n);
    app->started = time(NULL);
    if (app->auth && !start_migrator(app, err)) {
        px_app_free(app);
        return NULL;
    }
    if (app->auth && cfg_authority_leader(app->auth, NULL))
        cfg_migrate_restore(app->mig);
    app->up = true;
    return app;
}

void px_app_free(px_app *app)
{
    if (!app)
        return;
    app->stopping = true;
    if (app->mig) {
        cfg_migrate_stop_soon(app->mig);
        cfg_migrate_join(app->mig);
    }
    if (app->announcer_started)
        pthread_join(app->announcer, NULL);
    if (app->ticker_started)
        pthread_join(app->ticker, NULL);
    cfg_migrate_free(app->mig);
    px_registry_free(app->reg);
    mt_account_destroy(app->old_account);
    mt_account_destroy(app->new_account);
    if (app->phase_sub)
        app->cfg->ops->unsubscribe(app->cfg, app->phase_sub);
    az_client_free(app->old_client);
    az_client_free(app->new_client);
    cfg_http_stop(app->http); /* end the client's long poll now */
    cfg_client_free(app->client);
    cfg_http_free(app->http);
    cfg_authority_free(app->auth);
    if (app->store)
        app->store->ops->destroy(app->store);
    px_watch_stop(app->watch);
    px_metrics_free(app->metrics);
    free(app->service_properties);
    az_cors_clear(&app->cors);
    pthread_mutex_destroy(&app->mu);
    free(app);
}

mt_config px_app_config(px_app *app)
{
    return mt_config_now(app->cfg);
}

mt_phase px_app_phase(px_app *app)
{
    return (mt_phase)__atomic_load_n(&app->phase, __ATOMIC_ACQUIRE);
}

bool px_app_serving(px_app *app)
{
    if (app->draining)
        return false;
    if (app->auth)
        return cfg_authority_leader(app->auth, NULL);
    return cfg_client_lease_valid(app->client);
}

void px_app_drain(px_app *app)
{
    app->draining = true;
}

void px_app_release(px_app *app)
{
    cfg_http_stop(app->http); /* end the client's long poll now */
    cfg_client_release(app->client);
}

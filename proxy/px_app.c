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
 * served until every part is up.
 */
#include "px.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How often the ticker settles a restarted authority's version. */
#define TICK_US 200000

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
    if (!mt_is_ok(&st))
        fprintf(err, "mtable-proxy: cannot use the %s backend (--%s): %s\n", label, label,
                st.message);
    else
        px_log(PX_LOG_INFO, "%s tables at %s", label, where ? where : "?");
    free(where);
    az_connstr_clear(&cs);
    return mt_is_ok(&st);
}

static void *ticker_main(void *arg)
{
    px_app *app = arg;
    while (!app->stopping) {
        cfg_authority_tick(app->auth);
        usleep(TICK_US);
    }
    return NULL;
}

static bool client_lease_ok(void *ctx)
{
    return cfg_client_lease_valid(ctx);
}

/* The authority: its store and state. */
static bool start_authority(px_app *app, FILE *err)
{
    mt_status st = mt_ok();
    app->store = cfg_store_open(app->settings.state_store, &st);
    if (!app->store) {
        fprintf(err, "mtable-proxy: cannot open the state store (--state-store %s): %s\n",
                strncmp(app->settings.state_store, "file:", 5) == 0 ? app->settings.state_store
                                                                    : "...",
                st.message);
        return false;
    }
    cfg_authority_opts opts = {.lease_ms = app->settings.lease_ms};
    app->auth = cfg_authority_new(app->rt, app->store, &opts, &st);
    if (!app->auth) {
        fprintf(err, "mtable-proxy: cannot read or write the state in %s: %s\n",
                app->store->ops->describe(app->store), st.message);
        return false;
    }
    app->cfg = cfg_authority_service(app->auth);
    app->ticker_started = pthread_create(&app->ticker, NULL, ticker_main, app) == 0;
    px_log(PX_LOG_INFO, "configuration authority, state in %s",
           app->store->ops->describe(app->store));
    return true;
}

/* A client of a remote authority. */
static bool start_client(px_app *app, FILE *err)
{
    app->http = cfg_http_new(app->settings.config_endpoint, app->settings.admin_token);
    cfg_transport tr = app->http ? cfg_http_transport(app->http) : (cfg_transport){0};
    app->client = app->http ? cfg_client_new(app->rt, &tr, app->settings.proxy_id) : NULL;
    if (!app->client) {
        fprintf(err, "mtable-proxy: cannot start the configuration client: out of memory\n");
        return false;
    }
    app->cfg = cfg_client_service(app->client);
    px_log(PX_LOG_INFO, "taking the phase from %s as proxy %s", app->settings.config_endpoint,
           app->settings.proxy_id);
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
    pthread_mutex_init(&app->mu, NULL);
    pthread_mutex_init(&app->push_mu, NULL);
    bool remote = s->config_endpoint[0] != '\0';
    if (!(remote ? start_client(app, err) : start_authority(app, err)) ||
        !open_backend(s->old_spec, "old", &app->old_client, err) ||
        !open_backend(s->new_spec, "new", &app->new_client, err)) {
        px_app_free(app);
        return NULL;
    }
    mt_status st = mt_ok();
    px_guard guard = {.valid = remote ? client_lease_ok : NULL, .ctx = app->client};
    app->reg = px_registry_new(
        app->rt, app->cfg, (px_backend){.client = app->old_client, .label = "old"},
        (px_backend){.client = app->new_client, .label = "new"}, &guard, app->metrics, &st);
    if (!mt_is_ok(&st)) {
        fprintf(err,
                "mtable-proxy: cannot list the tables of the backends (is the endpoint in "
                "--old/--new reachable and the key right?): %d %s: %s\n",
                st.http, st.code, st.message);
        px_app_free(app);
        return NULL;
    }
    size_t n = 0;
    app->service_properties = az_service_properties_default(&n);
    app->started = time(NULL);
    if (app->auth)
        px_migrate_restore(app);
    return app;
}

void px_app_free(px_app *app)
{
    if (!app)
        return;
    app->stopping = true;
    pthread_mutex_lock(&app->mu);
    app->mig_pause = true;
    pthread_mutex_unlock(&app->mu);
    px_migrate_join(app);
    if (app->ticker_started)
        pthread_join(app->ticker, NULL);
    px_registry_free(app->reg);
    az_client_free(app->old_client);
    az_client_free(app->new_client);
    cfg_http_stop(app->http); /* end the client's long poll now */
    cfg_client_free(app->client);
    cfg_http_free(app->http);
    cfg_authority_free(app->auth);
    if (app->store)
        app->store->ops->destroy(app->store);
    px_metrics_free(app->metrics);
    free(app->service_properties);
    free(app->mig_checkpoint);
    px_names_free(app->mig_copy_names, app->mig_copy_n);
    pthread_mutex_destroy(&app->mu);
    pthread_mutex_destroy(&app->push_mu);
    free(app);
}

mt_config px_app_config(px_app *app)
{
    mt_config c;
    mt_subscription *sub = app->cfg->ops->subscribe(app->cfg, NULL, &c);
    app->cfg->ops->unsubscribe(app->cfg, sub);
    return c;
}

bool px_app_serving(px_app *app)
{
    return !app->client || cfg_client_lease_valid(app->client);
}

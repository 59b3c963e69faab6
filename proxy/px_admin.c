/*
 * px_admin.c -- the admin endpoint: status, phase changes, the background
 * migrator, health and metrics.
 *
 * Phase changes go one step at a time (skipping would put two proxies more
 * than one phase apart), and use_new_with_tombstones only after a copy has
 * completed, since from then on only the new table is read. A push returns
 * once every operation that started under the previous phase has finished,
 * so a 200 means the whole process is in the new phase.
 */
#include "px.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *state_name(px_migration_state s)
{
    static const char *const names[] = {"idle", "copying", "cleaning", "done", "failed",
                                        "pushing"};
    return names[s];
}

static void json_reply(px_resp *r, int status, cJSON *doc)
{
    r->status = status;
    r->body = cJSON_PrintUnformatted(doc);
    r->len = r->body ? strlen(r->body) : 0;
    px_resp_header(r, "Content-Type", "application/json");
    cJSON_Delete(doc);
}

static void error_reply(px_resp *r, int status, const char *code, const char *message)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(doc, "error");
    cJSON_AddStringToObject(err, "code", code);
    cJSON_AddStringToObject(err, "message", message);
    json_reply(r, status, doc);
}

static void status_reply(px_app *app, px_resp *r)
{
    mt_config c = px_app_config(app);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "phase", mt_phase_name(c.phase));
    cJSON_AddNumberToObject(doc, "config_version", (double)c.version);
    cJSON_AddBoolToObject(doc, "settled", c.settled);
    pthread_mutex_lock(&app->mu);
    cJSON *m = cJSON_AddObjectToObject(doc, "migration");
    cJSON_AddStringToObject(m, "state", state_name(app->mig_state));
    cJSON_AddBoolToObject(m, "copy_done", app->copy_done);
    cJSON_AddNumberToObject(m, "rows_copied", (double)app->mig_stats.rows_copied);
    cJSON_AddNumberToObject(m, "rows_cleaned", (double)app->mig_stats.rows_cleaned);
    cJSON_AddNumberToObject(m, "partitions_switched",
                            (double)app->mig_stats.partitions_switched);
    if (app->mig_error[0])
        cJSON_AddStringToObject(m, "error", app->mig_error);
    uint64_t total = app->requests_total, failed = app->requests_failed;
    pthread_mutex_unlock(&app->mu);
    cJSON *proxies = cJSON_AddArrayToObject(doc, "proxies");
    cJSON *me = cJSON_CreateObject();
    cJSON_AddStringToObject(me, "id", app->settings.proxy_id);
    cJSON_AddNumberToObject(me, "config_version", (double)c.version);
    cJSON_AddStringToObject(me, "phase", mt_phase_name(c.phase));
    cJSON_AddNumberToObject(me, "requests", (double)total);
    cJSON_AddNumberToObject(me, "requests_failed", (double)failed);
    cJSON_AddItemToArray(proxies, me);
    json_reply(r, 200, doc);
}

/* ------------------------------------------------------------------------ */
/* The migrator thread.                                                      */

static void on_progress(void *ctx, mt_migrator_step step, const mt_migrator_stats *stats)
{
    px_app *app = ctx;
    pthread_mutex_lock(&app->mu);
    app->mig_stats = *stats;
    switch (step) {
    case MT_STEP_PUSHING:
        app->mig_state = PX_MIG_PUSHING;
        break;
    case MT_STEP_COPYING:
        app->mig_state = PX_MIG_COPYING;
        break;
    case MT_STEP_COPIED:
        app->copy_done = true;
        break;
    case MT_STEP_CLEANING:
        app->mig_state = PX_MIG_CLEANING;
        break;
    case MT_STEP_DONE:
        app->mig_state = PX_MIG_DONE;
        break;
    }
    pthread_mutex_unlock(&app->mu);
}

static void *migrate_thread(void *arg)
{
    px_app *app = arg;
    size_t n = 0;
    px_table **all = px_table_all(app->reg, &n);
    mt_table_pair *pairs = calloc(n + 1, sizeof *pairs);
    for (size_t i = 0; i < n; i++)
        pairs[i] = px_table_backends(all[i]);
    pthread_mutex_lock(&app->mu);
    mt_migrator_hooks hooks = {.progress = on_progress, .ctx = app,
                               .stop_early = app->mig_stop_early, .until = app->mig_until,
                               .parallel = app->settings.copy_parallel,
                               .rows_per_second = app->settings.copy_rate};
    pthread_mutex_unlock(&app->mu);
    mt_migrator_stats stats = {0};
    pthread_mutex_lock(&app->push_mu);
    mt_status st = mt_migrate_tables(app->rt, app->cfg, pairs, n, &hooks, &stats);
    pthread_mutex_unlock(&app->push_mu);
    if (mt_is_ok(&st))
        px_log(PX_LOG_INFO, "migration finished: %lld rows copied, %lld cleaned",
               (long long)stats.rows_copied, (long long)stats.rows_cleaned);
    else
        px_log(PX_LOG_ERROR, "migration failed: %d %s: %s", st.http, st.code, st.message);
    pthread_mutex_lock(&app->mu);
    app->mig_stats = stats;
    app->mig_running = false;
    if (mt_is_ok(&st)) {
        app->mig_state = hooks.stop_early && hooks.until != MT_PHASE_USE_NEW_HIDE_METADATA
                             ? PX_MIG_IDLE
                             : PX_MIG_DONE;
    } else {
        app->mig_state = PX_MIG_FAILED;
        snprintf(app->mig_error, sizeof app->mig_error, "%d %s: %s", st.http, st.code,
                 st.message);
    }
    pthread_mutex_unlock(&app->mu);
    for (size_t i = 0; i < n; i++)
        px_table_release(app->reg, all[i]);
    free(all);
    free(pairs);
    return NULL;
}

static void migrate_reply(px_app *app, const char *body, size_t len, px_resp *r)
{
    /* Optional {"until": PHASE}: stop there, e.g. after the copy. */
    bool stop = false;
    mt_phase until = MT_PHASE_USE_NEW_HIDE_METADATA;
    if (len > 0) {
        cJSON *doc = cJSON_ParseWithLength(body, len);
        const cJSON *u = doc ? cJSON_GetObjectItemCaseSensitive(doc, "until") : NULL;
        bool ok = doc && (!u || (cJSON_IsString(u) && mt_phase_parse(u->valuestring, &until)));
        stop = u != NULL;
        cJSON_Delete(doc);
        if (!ok) {
            error_reply(r, 400, "InvalidInput",
                        "The body must be empty or {\"until\": PHASE}.");
            return;
        }
    }
    pthread_mutex_lock(&app->mu);
    if (app->mig_running) {
        pthread_mutex_unlock(&app->mu);
        error_reply(r, 409, "MigrationRunning", "A migration is already running.");
        return;
    }
    if (app->mig_thread_started)
        pthread_join(app->mig_thread, NULL);
    app->mig_running = true;
    app->mig_stop_early = stop;
    app->mig_until = until;
    app->mig_error[0] = '\0';
    app->mig_state = PX_MIG_PUSHING;
    app->mig_thread_started = pthread_create(&app->mig_thread, NULL, migrate_thread, app) == 0;
    if (!app->mig_thread_started)
        app->mig_running = false;
    pthread_mutex_unlock(&app->mu);
    if (!app->mig_thread_started) {
        error_reply(r, 500, "InternalError", "Could not start the migrator.");
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "state", "started");
    json_reply(r, 202, doc);
}

/* ------------------------------------------------------------------------ */
/* Phase changes.                                                            */

static void phase_reply(px_app *app, const char *body, size_t len, px_resp *r)
{
    cJSON *doc = cJSON_ParseWithLength(body, len);
    const cJSON *ph = doc ? cJSON_GetObjectItemCaseSensitive(doc, "phase") : NULL;
    mt_phase want;
    if (!cJSON_IsString(ph) || !mt_phase_parse(ph->valuestring, &want)) {
        cJSON_Delete(doc);
        error_reply(r, 400, "InvalidPhase",
                    "The body must be {\"phase\": NAME} with NAME one of use_old_hide_metadata, "
                    "prefer_old, prefer_new, use_new_with_tombstones, use_new_hide_metadata.");
        return;
    }
    cJSON_Delete(doc);
    pthread_mutex_lock(&app->mu);
    bool running = app->mig_running;
    pthread_mutex_unlock(&app->mu);
    if (running) {
        error_reply(r, 409, "PhaseTransitionNotAllowed",
                    "A migration is running; it moves the phases itself.");
        return;
    }
    pthread_mutex_lock(&app->push_mu);
    mt_config c = px_app_config(app);
    pthread_mutex_lock(&app->mu);
    bool copied = app->copy_done;
    running = app->mig_running;
    pthread_mutex_unlock(&app->mu);
    const char *why = NULL;
    if (running)
        why = "a migration is running; it moves the phases itself";
    else if (want != c.phase && want != c.phase + 1)
        why = "phases move one step at a time, forward";
    else if (want == MT_PHASE_USE_NEW_WITH_TOMBSTONES && c.phase != want && !copied)
        why = "use_new_with_tombstones needs a completed copy (POST /admin/v1/migrate)";
    mt_status st = mt_ok();
    if (!why && want != c.phase) {
        px_log(PX_LOG_INFO, "phase %s -> %s: pushing", mt_phase_name(c.phase),
               mt_phase_name(want));
        st = app->cfg->ops->push(app->cfg, want);
        px_log(PX_LOG_INFO, "phase %s: every operation of the previous phase has finished",
               mt_phase_name(want));
    }
    pthread_mutex_unlock(&app->push_mu);
    if (why) {
        char msg[256];
        snprintf(msg, sizeof msg, "Cannot move from %s to %s: %s.", mt_phase_name(c.phase),
                 mt_phase_name(want), why);
        error_reply(r, 409, "PhaseTransitionNotAllowed", msg);
        return;
    }
    if (!mt_is_ok(&st)) {
        error_reply(r, st.http ? st.http : 500, st.code, st.message);
        return;
    }
    status_reply(app, r);
}

/* ------------------------------------------------------------------------ */
/* Routing.                                                                  */

static void metrics_reply(px_app *app, px_resp *r)
{
    mt_config c = px_app_config(app);
    pthread_mutex_lock(&app->mu);
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "# TYPE mtable_requests_total counter\n"
                     "mtable_requests_total %llu\n"
                     "# TYPE mtable_requests_failed_total counter\n"
                     "mtable_requests_failed_total %llu\n"
                     "# TYPE mtable_phase gauge\n"
                     "mtable_phase %d\n"
                     "# TYPE mtable_config_version gauge\n"
                     "mtable_config_version %lld\n"
                     "# TYPE mtable_rows_copied_total counter\n"
                     "mtable_rows_copied_total %lld\n"
                     "# TYPE mtable_rows_cleaned_total counter\n"
                     "mtable_rows_cleaned_total %lld\n",
                     (unsigned long long)app->requests_total,
                     (unsigned long long)app->requests_failed, (int)c.phase,
                     (long long)c.version, (long long)app->mig_stats.rows_copied,
                     (long long)app->mig_stats.rows_cleaned);
    pthread_mutex_unlock(&app->mu);
    r->status = 200;
    r->body = strndup(buf, (size_t)n);
    r->len = strlen(r->body);
    px_resp_header(r, "Content-Type", "text/plain; version=0.0.4");
}

static bool authorized(const px_app *app, const char *authorization)
{
    if (!app->settings.admin_token[0])
        return true;
    if (!authorization || strncmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *tok = authorization + 7, *want = app->settings.admin_token;
    size_t n = strlen(want);
    if (strlen(tok) != n)
        return false;
    unsigned char diff = 0; /* constant time */
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(tok[i] ^ want[i]);
    return diff == 0;
}

void px_admin_handle(px_app *app, const char *method, const char *url, const char *body,
                     size_t len, const char *authorization, px_resp *r)
{
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (get && (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0)) {
        r->status = 200;
        r->body = strdup("ok\n");
        r->len = 3;
        px_resp_header(r, "Content-Type", "text/plain");
        return;
    }
    if (!authorized(app, authorization)) {
        error_reply(r, 401, "Unauthorized", "This endpoint needs Authorization: Bearer TOKEN.");
        return;
    }
    if (get && strcmp(url, "/metrics") == 0)
        metrics_reply(app, r);
    else if (get && strcmp(url, "/admin/v1/status") == 0)
        status_reply(app, r);
    else if (post && strcmp(url, "/admin/v1/phase") == 0)
        phase_reply(app, body, len, r);
    else if (post && strcmp(url, "/admin/v1/migrate") == 0)
        migrate_reply(app, body, len, r);
    else
        error_reply(r, 404, "NotFound", "No such admin resource.");
}

/*
 * px_migrate.c -- the authority's migrator: a background thread over every
 * table of the account, with its state kept in the state store.
 *
 * A run goes: the core migrator up to the end of the copy (pushing
 * prefer_old and prefer_new first when needed); a verify pass, which alone
 * makes use_new_with_tombstones allowed; the core migrator again for the
 * last two pushes and the cleanup; a final verify that no protocol data is
 * left. The copy saves checkpoints in the store, so a run that was paused,
 * or whose process was killed, resumes where it stopped instead of
 * starting over; after a restart the saved state says "paused".
 */
#include "px.h"
#include "cfg_json.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const state_names[] = {
    [PX_MIG_IDLE] = "idle",           [PX_MIG_PUSHING] = "pushing",   [PX_MIG_COPYING] = "copying",
    [PX_MIG_VERIFYING] = "verifying", [PX_MIG_CLEANING] = "cleaning", [PX_MIG_DONE] = "done",
    [PX_MIG_FAILED] = "failed",       [PX_MIG_PAUSED] = "paused",
};

const char *px_migration_state_name(px_migration_state s)
{
    return state_names[s];
}

bool px_migration_state_parse(const char *name, px_migration_state *out)
{
    for (size_t i = 0; i < sizeof state_names / sizeof *state_names; i++) {
        if (strcmp(state_names[i], name) == 0) {
            *out = (px_migration_state)i;
            return true;
        }
    }
    return false;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------ */
/* The saved state.                                                          */

static void stats_to_json(cJSON *o, const mt_migrator_stats *s)
{
    cJSON_AddNumberToObject(o, "rows_copied", (double)s->rows_copied);
    cJSON_AddNumberToObject(o, "rows_cleaned", (double)s->rows_cleaned);
    cJSON_AddNumberToObject(o, "partitions_switched", (double)s->partitions_switched);
    cJSON_AddNumberToObject(o, "rows_total", (double)s->rows_total);
    cJSON_AddNumberToObject(o, "partitions_total", (double)s->partitions_total);
    cJSON_AddNumberToObject(o, "rows_done", (double)s->rows_done);
    cJSON_AddNumberToObject(o, "partitions_done", (double)s->partitions_done);
    cJSON_AddNumberToObject(o, "rows_cleaned_old", (double)s->rows_cleaned_old);
    cJSON_AddNumberToObject(o, "rows_cleaned_new", (double)s->rows_cleaned_new);
    cJSON_AddNumberToObject(o, "clean_total_old", (double)s->clean_total_old);
    cJSON_AddNumberToObject(o, "clean_total_new", (double)s->clean_total_new);
    cJSON_AddNumberToObject(o, "tables_skipped", (double)s->tables_skipped);
}

static int64_t num(const cJSON *o, const char *name, int64_t dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    int64_t n;
    return cfg_json_int64(v, &n) ? n : dflt;
}

static void stats_from_json(const cJSON *o, mt_migrator_stats *s)
{
    s->rows_copied = num(o, "rows_copied", 0);
    s->rows_cleaned = num(o, "rows_cleaned", 0);
    s->partitions_switched = num(o, "partitions_switched", 0);
    s->rows_total = num(o, "rows_total", -1);
    s->partitions_total = num(o, "partitions_total", -1);
    s->rows_done = num(o, "rows_done", 0);
    s->partitions_done = num(o, "partitions_done", 0);
    s->rows_cleaned_old = num(o, "rows_cleaned_old", 0);
    s->rows_cleaned_new = num(o, "rows_cleaned_new", 0);
    s->clean_total_old = num(o, "clean_total_old", -1);
    s->clean_total_new = num(o, "clean_total_new", -1);
    s->tables_skipped = num(o, "tables_skipped", 0);
}

/* The document for the store; app->mu is held. */
static char *state_json(px_app *app)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "state", px_migration_state_name(app->mig_state));
    cJSON_AddBoolToObject(doc, "copy_done", app->copy_done);
    cJSON_AddBoolToObject(doc, "copy_verified", app->copy_verified);
    if (app->mig_checkpoint)
        cJSON_AddStringToObject(doc, "checkpoint", app->mig_checkpoint);
    if (app->mig_copy_names) {
        cJSON *names = cJSON_AddArrayToObject(doc, "copy_tables");
        for (size_t i = 0; i < app->mig_copy_n; i++)
            cJSON_AddItemToArray(names, cJSON_CreateString(app->mig_copy_names[i]));
    }
    if (app->mig_error[0])
        cJSON_AddStringToObject(doc, "error", app->mig_error);
    stats_to_json(cJSON_AddObjectToObject(doc, "stats"), &app->mig_stats);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return text;
}

void px_migrate_save(px_app *app)
{
    if (!app->auth)
        return;
    pthread_mutex_lock(&app->mu);
    char *text = state_json(app);
    pthread_mutex_unlock(&app->mu);
    mt_status st = text ? cfg_authority_save_migration(app->auth, text)
                        : mt_error(500, MT_ERR_INTERNAL, "out of memory");
    if (!mt_is_ok(&st))
        px_log(PX_LOG_ERROR, "cannot save the migration state: %d %s: %s", st.http, st.code,
               st.message);
    free(text);
}

static void drop_copy_names(px_app *app)
{
    px_names_free(app->mig_copy_names, app->mig_copy_n);
    app->mig_copy_names = NULL;
    app->mig_copy_n = 0;
}

/* The saved copy_tables array (app->mu held); left NULL when malformed. */
static void restore_copy_names(px_app *app, const cJSON *a)
{
    drop_copy_names(app);
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    char **names = cJSON_IsArray(a) ? calloc((size_t)n + 1, sizeof *names) : NULL;
    size_t k = 0;
    for (const cJSON *v = a ? a->child : NULL; names && v; v = v->next) {
        if (!cJSON_IsString(v) || !(names[k] = strdup(v->valuestring))) {
            px_names_free(names, k);
            return;
        }
        k++;
    }
    app->mig_copy_names = names;
    app->mig_copy_n = k;
}

bool px_migrate_restore(px_app *app)
{
    char *text = NULL;
    cfg_authority_load_migration(app->auth, &text);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!doc)
        return false;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, "state");
    const cJSON *cp = cJSON_GetObjectItemCaseSensitive(doc, "checkpoint");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
    pthread_mutex_lock(&app->mu);
    px_migration_state state = PX_MIG_IDLE;
    if (cJSON_IsString(s))
        px_migration_state_parse(s->valuestring, &state);
    app->copy_done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "copy_done"));
    app->copy_verified = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "copy_verified"));
    free(app->mig_checkpoint);
    app->mig_checkpoint = cJSON_IsString(cp) ? strdup(cp->valuestring) : NULL;
    restore_copy_names(app, cJSON_GetObjectItemCaseSensitive(doc, "copy_tables"));
    stats_from_json(cJSON_GetObjectItemCaseSensitive(doc, "stats"), &app->mig_stats);
    if (cJSON_IsString(e))
        snprintf(app->mig_error, sizeof app->mig_error, "%s", e->valuestring);
    bool cut = state == PX_MIG_PUSHING || state == PX_MIG_COPYING || state == PX_MIG_VERIFYING ||
               state == PX_MIG_CLEANING;
    app->mig_state = cut ? PX_MIG_PAUSED : state;
    if (cut)
        snprintf(app->mig_error, sizeof app->mig_error,
                 "interrupted while %s (the process stopped); resume to continue from the last "
                 "checkpoint",
                 px_migration_state_name(state));
    pthread_mutex_unlock(&app->mu);
    cJSON_Delete(doc);
    if (cut)
        px_log(PX_LOG_WARN,
               "a migration was interrupted while %s; it is paused (%lld rows "
               "copied so far): resume it with mtablectl resume",
               px_migration_state_name(state), (long long)app->mig_stats.rows_done);
    return cut;
}

/* ------------------------------------------------------------------------ */
/* Hooks the core migrator calls.                                            */

static void set_state(px_app *app, px_migration_state s)
{
    pthread_mutex_lock(&app->mu);
    bool changed = app->mig_state != s;
    app->mig_state = s;
    pthread_mutex_unlock(&app->mu);
    if (changed)
        px_migrate_save(app);
}

/* The rows the moving step has moved: copied, or cleaned on both sides. */
int64_t px_migrate_moved(px_migration_state s, const mt_migrator_stats *stats)
{
    return s == PX_MIG_CLEANING ? stats->rows_cleaned_old + stats->rows_cleaned_new
                                : stats->rows_done;
}

/* Feeds the current rate (app->mu held): a step that starts starts it. */
static void note_rate(px_app *app, px_migration_state s, const mt_migrator_stats *stats)
{
    if (s != PX_MIG_COPYING && s != PX_MIG_CLEANING)
        return;
    int64_t now = mono_ms();
    if (app->mig_rate_for != s)
        px_rate_reset(&app->mig_rate, now, px_migrate_moved(s, stats));
    else
        px_rate_note(&app->mig_rate, now, px_migrate_moved(s, stats));
    app->mig_rate_for = s;
}

static void on_progress(void *ctx, mt_migrator_step step, const mt_migrator_stats *stats)
{
    px_app *app = ctx;
    px_migration_state next;
    pthread_mutex_lock(&app->mu);
    app->mig_stats = *stats;
    next = app->mig_state;
    switch (step) {
    case MT_STEP_PUSHING:
        next = PX_MIG_PUSHING;
        break;
    case MT_STEP_COPYING:
        next = PX_MIG_COPYING;
        break;
    case MT_STEP_COPIED:
        app->copy_done = true;
        break;
    case MT_STEP_CLEANING:
        next = PX_MIG_CLEANING;
        break;
    case MT_STEP_DONE:
        break;
    }
    bool save = next != app->mig_state || step == MT_STEP_COPIED;
    app->mig_state = next;
    note_rate(app, next, stats);
    pthread_mutex_unlock(&app->mu);
    if (save)
        px_migrate_save(app);
}

static mt_status save_checkpoint(void *ctx, const char *checkpoint)
{
    px_app *app = ctx;
    char *copy = strdup(checkpoint);
    if (!copy)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    pthread_mutex_lock(&app->mu);
    free(app->mig_checkpoint);
    app->mig_checkpoint = copy;
    char *text = state_json(app);
    pthread_mutex_unlock(&app->mu);
    mt_status st = cfg_authority_save_migration(app->auth, text);
    free(text);
    return st;
}

static char *load_checkpoint(void *ctx)
{
    px_app *app = ctx;
    pthread_mutex_lock(&app->mu);
    char *copy = app->mig_checkpoint ? strdup(app->mig_checkpoint) : NULL;
    pthread_mutex_unlock(&app->mu);
    return copy;
}

static bool should_pause(void *ctx)
{
    px_app *app = ctx;
    pthread_mutex_lock(&app->mu);
    bool p = app->mig_pause;
    pthread_mutex_unlock(&app->mu);
    return p;
}

/* ------------------------------------------------------------------------ */
/* Verify.                                                                   */

typedef struct all_tables {
    px_table **t;
    mt_table_pair *pairs;
    const char **names;
    size_t n;
} all_tables;

/* The named tables (see px_tables_named). */
static mt_status tables_named(px_app *app, char *const *names, size_t n, all_tables *a)
{
    *a = (all_tables){.n = n};
    a->t = px_tables_named(app->reg, names, n);
    a->pairs = calloc(n + 1, sizeof *a->pairs);
    a->names = calloc(n + 1, sizeof *a->names);
    if (!a->t || !a->pairs || !a->names) {
        for (size_t i = 0; a->t && i < n; i++)
            px_table_release(app->reg, a->t[i]);
        free(a->t);
        free(a->pairs);
        free(a->names);
        *a = (all_tables){0};
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        a->pairs[i] = px_table_backends(a->t[i]);
        a->names[i] = px_table_name(a->t[i]);
    }
    return mt_ok();
}

/* Every table the accounts hold now (one created through any proxy
 * included), and the tables the last copy or cleanup walked: a table of
 * the migration deleted since is then accounted for (skipped and reported)
 * rather than forgotten. NULL with *st on failure. */
static char **tables_known(px_app *app, size_t *n, mt_status *st)
{
    char **names = px_account_tables(app->reg, n, st);
    if (!names) {
        if (mt_is_ok(st))
            *st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&app->mu);
    size_t extra = app->mig_copy_n;
    char **all = extra ? realloc(names, (*n + extra + 1) * sizeof *names) : names;
    for (size_t i = 0; all && i < extra; i++) {
        bool listed = false;
        for (size_t j = 0; j < *n && !listed; j++)
            listed = strcasecmp(all[j], app->mig_copy_names[i]) == 0;
        char *dup = listed ? NULL : strdup(app->mig_copy_names[i]);
        if (dup)
            all[(*n)++] = dup;
    }
    pthread_mutex_unlock(&app->mu);
    if (!all) {
        px_names_free(names, *n);
        *st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    return all;
}

/* What verify checks: tables_known. */
static mt_status tables_for_verify(px_app *app, all_tables *a)
{
    size_t n = 0;
    mt_status st = mt_ok();
    char **names = tables_known(app, &n, &st);
    if (!names)
        return st;
    st = tables_named(app, names, n, a);
    px_names_free(names, n);
    return st;
}

static void tables_put(px_app *app, all_tables *a)
{
    for (size_t i = 0; i < a->n; i++)
        px_table_release(app->reg, a->t[i]);
    free(a->t);
    free(a->pairs);
    free(a->names);
}

/* A verify pass over the tables in a for phase; records the report and,
 * in prefer_new, whether the copy is proven. */
static mt_status verify_tables(px_app *app, all_tables *a, mt_phase phase, bool after_cleanup,
                               mt_verify_report *rep)
{
    mt_status st = mt_verify_tables(app->rt, a->pairs, a->names, a->n, phase, after_cleanup, rep);
    if (!mt_is_ok(&st))
        return st;
    pthread_mutex_lock(&app->mu);
    app->verify = *rep;
    app->have_verify = true;
    if (phase == MT_PHASE_PREFER_NEW && app->copy_done)
        app->copy_verified = rep->ok;
    pthread_mutex_unlock(&app->mu);
    px_migrate_save(app);
    px_log(rep->ok ? PX_LOG_INFO : PX_LOG_ERROR, "verify (%s%s): %s", mt_phase_name(phase),
           after_cleanup ? ", after cleanup" : "", rep->summary);
    return st;
}

mt_status px_migrate_verify(px_app *app, mt_verify_report *rep)
{
    all_tables a;
    mt_status listed = tables_for_verify(app, &a);
    if (!mt_is_ok(&listed))
        return listed;
    mt_config c = px_app_config(app);
    pthread_mutex_lock(&app->mu);
    bool cleaned = app->mig_state == PX_MIG_DONE;
    pthread_mutex_unlock(&app->mu);
    mt_status st =
        verify_tables(app, &a, c.phase, c.phase == MT_PHASE_USE_NEW_HIDE_METADATA && cleaned, rep);
    tables_put(app, &a);
    return st;
}

/* ------------------------------------------------------------------------ */
/* The thread.                                                               */

static void table_gone(void *ctx, size_t table, const char *step)
{
    px_app *app = ctx;
    px_log(PX_LOG_WARN, "migration: table %s was deleted; skipped while %s",
           app->mig_names ? app->mig_names[table] : "?", step);
}

static mt_status run_core(px_app *app, all_tables *a, bool stop_early, mt_phase until)
{
    mt_migrator_hooks h = {
        .progress = on_progress,
        .ctx = app,
        .stop_early = stop_early,
        .until = until,
        .parallel = app->settings.copy_parallel,
        .rows_per_second = app->settings.copy_rate,
        .save_checkpoint = save_checkpoint,
        .load_checkpoint = load_checkpoint,
        .should_pause = should_pause,
        .table_gone = table_gone,
    };
    pthread_mutex_lock(&app->mu);
    mt_migrator_stats stats = app->mig_stats;
    pthread_mutex_unlock(&app->mu);
    app->mig_names = a->names;
    mt_status st = mt_migrate_tables(app->rt, app->cfg, a->pairs, a->n, &h, &stats);
    app->mig_names = NULL;
    return st;
}

/* One push, as the migrator's step. */
static mt_status push(px_app *app, mt_phase p)
{
    set_state(app, PX_MIG_PUSHING);
    px_log(PX_LOG_INFO, "migration: pushing %s", mt_phase_name(p));
    return app->cfg->ops->push(app->cfg, p);
}

/* The tables of the copy or the cleanup (the steps with checkpoints):
 * those the step started with when the checkpoint is the step's own (it
 * counts tables in that list; one deleted since answers 404 and is
 * skipped), else the accounts' list now, kept for a resume. A table
 * created after the step started needs nothing from it: created while every
 * proxy was in prefer_new (which writes user rows to new only) or in
 * use_new_hide_metadata (which writes no protocol data). */
static mt_status step_tables(px_app *app, const char *ckpt_prefix, all_tables *a)
{
    pthread_mutex_lock(&app->mu);
    bool resume = app->mig_checkpoint && app->mig_copy_names &&
                  strncmp(app->mig_checkpoint, ckpt_prefix, strlen(ckpt_prefix)) == 0;
    char **names = NULL;
    size_t n = 0;
    mt_status st = mt_ok();
    if (resume) {
        st = tables_named(app, app->mig_copy_names, app->mig_copy_n, a);
        pthread_mutex_unlock(&app->mu);
        return st;
    }
    pthread_mutex_unlock(&app->mu);
    /* The cleanup also walks the copy's tables, so that one deleted since
     * is skipped and reported there too. */
    bool cleanup = strcmp(ckpt_prefix, "c1\t") == 0;
    names = cleanup ? tables_known(app, &n, &st) : px_account_tables(app->reg, &n, &st);
    if (!names)
        return mt_is_ok(&st) ? mt_error(500, MT_ERR_INTERNAL, "out of memory") : st;
    st = tables_named(app, names, n, a);
    pthread_mutex_lock(&app->mu);
    drop_copy_names(app);
    app->mig_copy_names = names;
    app->mig_copy_n = n;
    pthread_mutex_unlock(&app->mu);
    px_migrate_save(app);
    return st;
}

/* Runs the core migrator over the tables of this step. Tables are listed
 * from the accounts again at each step because an application may create
 * or delete one at any time: listed only once every proxy is in
 * prefer_new, the copy cannot miss a table with rows in old, and listed
 * only once every proxy is in use_new_hide_metadata, the cleanup cannot
 * miss one with tombstones. A table deleted meanwhile is skipped (the core
 * meets 404 TableNotFound) and logged. */
static mt_status run_tables(px_app *app, mt_phase until)
{
    all_tables a;
    /* The copy's checkpoints start "v1", the cleanup's "c1". */
    mt_status st = step_tables(app, until == MT_PHASE_PREFER_NEW ? "v1\t" : "c1\t", &a);
    if (!mt_is_ok(&st))
        return st;
    st = run_core(app, &a, true, until);
    tables_put(app, &a);
    return st;
}

static mt_status verify_now(px_app *app, mt_phase phase, bool after_cleanup)
{
    set_state(app, PX_MIG_VERIFYING);
    all_tables a;
    mt_status st = tables_for_verify(app, &a);
    if (!mt_is_ok(&st))
        return st;
    mt_verify_report rep;
    st = verify_tables(app, &a, phase, after_cleanup, &rep);
    tables_put(app, &a);
    if (mt_is_ok(&st) && !rep.ok)
        st = mt_error(500, "VerifyFailed", "%s: %s",
                      after_cleanup ? "cleanup left data behind" : "the copy did not verify",
                      rep.summary);
    return st;
}

static void reset_for_new_migration(px_app *app)
{
    pthread_mutex_lock(&app->mu);
    free(app->mig_checkpoint);
    app->mig_checkpoint = NULL;
    drop_copy_names(app);
    app->copy_done = app->copy_verified = false;
    app->mig_stats = (mt_migrator_stats){
        .rows_total = -1, .partitions_total = -1, .clean_total_old = -1, .clean_total_new = -1};
    pthread_mutex_unlock(&app->mu);
}

/* From the current phase up to `last`: pushes one step at a time, the copy
 * and its verify in prefer_new, the cleanup and its verify at the end. */
static mt_status run(px_app *app, bool stop_early, mt_phase until)
{
    mt_phase last = stop_early ? until : MT_PHASE_USE_NEW_HIDE_METADATA;
    mt_phase phase = px_app_config(app).phase;
    if (phase == MT_PHASE_USE_OLD_HIDE_METADATA)
        reset_for_new_migration(app);
    mt_status st = mt_ok();
    while (mt_is_ok(&st) && phase < last && phase < MT_PHASE_PREFER_NEW)
        st = push(app, ++phase);
    pthread_mutex_lock(&app->mu);
    bool verified = app->copy_verified;
    pthread_mutex_unlock(&app->mu);
    if (mt_is_ok(&st) && phase == MT_PHASE_PREFER_NEW && !verified) {
        st = run_tables(app, MT_PHASE_PREFER_NEW);
        if (mt_is_ok(&st))
            st = verify_now(app, MT_PHASE_PREFER_NEW, false);
    }
    if (mt_is_ok(&st) && phase == MT_PHASE_PREFER_NEW && last > phase)
        st = push(app, ++phase);
    if (mt_is_ok(&st) && phase == MT_PHASE_USE_NEW_WITH_TOMBSTONES && last > phase)
        st = push(app, ++phase);
    if (mt_is_ok(&st) && phase == MT_PHASE_USE_NEW_HIDE_METADATA &&
        last == MT_PHASE_USE_NEW_HIDE_METADATA) {
        st = run_tables(app, MT_PHASE_USE_NEW_HIDE_METADATA);
        if (mt_is_ok(&st))
            st = verify_now(app, MT_PHASE_USE_NEW_HIDE_METADATA, true);
    }
    return st;
}

static void finish(px_app *app, const mt_status *st, bool stop_early, mt_phase until)
{
    pthread_mutex_lock(&app->mu);
    app->mig_running = false;
    if (st->http == 409 && strcmp(st->code, "MigrationPaused") == 0) {
        app->mig_state = PX_MIG_PAUSED;
        app->mig_error[0] = '\0';
    } else if (!mt_is_ok(st)) {
        app->mig_state = PX_MIG_FAILED;
        snprintf(app->mig_error, sizeof app->mig_error, "%d %s: %s", st->http, st->code,
                 st->message);
    } else {
        bool to_end = !stop_early || until == MT_PHASE_USE_NEW_HIDE_METADATA;
        app->mig_state = to_end ? PX_MIG_DONE : PX_MIG_IDLE;
        app->mig_error[0] = '\0';
    }
    px_migration_state s = app->mig_state;
    mt_migrator_stats stats = app->mig_stats;
    pthread_mutex_unlock(&app->mu);
    px_migrate_save(app);
    if (s == PX_MIG_FAILED)
        px_log(PX_LOG_ERROR, "migration failed: %d %s: %s", st->http, st->code, st->message);
    else
        px_log(PX_LOG_INFO, "migration %s: %lld rows copied, %lld cleaned in old and %lld in new",
               px_migration_state_name(s), (long long)stats.rows_done,
               (long long)stats.rows_cleaned_old, (long long)stats.rows_cleaned_new);
}

typedef struct run_args {
    px_app *app;
    bool stop_early;
    mt_phase until;
} run_args;

static void *migrate_thread(void *arg)
{
    run_args *ra = arg;
    px_app *app = ra->app;
    pthread_mutex_lock(&app->push_mu);
    mt_status st = run(app, ra->stop_early, ra->until);
    pthread_mutex_unlock(&app->push_mu);
    finish(app, &st, ra->stop_early, ra->until);
    free(ra);
    return NULL;
}

void px_migrate_join(px_app *app)
{
    pthread_mutex_lock(&app->mu);
    bool started = app->mig_thread_started;
    app->mig_thread_started = false;
    pthread_mutex_unlock(&app->mu);
    if (started)
        pthread_join(app->mig_thread, NULL);
}

mt_status px_migrate_start(px_app *app, bool stop_early, mt_phase until)
{
    pthread_mutex_lock(&app->mu);
    bool running = app->mig_running;
    pthread_mutex_unlock(&app->mu);
    if (running)
        return mt_error(409, "MigrationRunning", "A migration is already running.");
    px_migrate_join(app);
    run_args *ra = malloc(sizeof *ra);
    if (!ra)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    *ra = (run_args){.app = app, .stop_early = stop_early, .until = until};
    pthread_mutex_lock(&app->mu);
    app->mig_running = true;
    app->mig_pause = false;
    app->mig_error[0] = '\0';
    app->mig_state = PX_MIG_PUSHING;
    app->mig_rate_for = PX_MIG_IDLE; /* the next step starts the rate afresh */
    app->mig_thread_started = pthread_create(&app->mig_thread, NULL, migrate_thread, ra) == 0;
    bool ok = app->mig_thread_started;
    if (!ok)
        app->mig_running = false;
    pthread_mutex_unlock(&app->mu);
    if (!ok) {
        free(ra);
        return mt_error(500, MT_ERR_INTERNAL, "Could not start the migrator.");
    }
    return mt_ok();
}

mt_status px_migrate_pause(px_app *app)
{
    pthread_mutex_lock(&app->mu);
    bool running = app->mig_running;
    if (running)
        app->mig_pause = true;
    pthread_mutex_unlock(&app->mu);
    if (!running)
        return mt_error(409, "MigrationNotRunning", "No migration is running.");
    return mt_ok();
}

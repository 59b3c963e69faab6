/*
 * cfg_migrate.c -- the authority's migrator: a run over every table of the
 * account, on a thread of the runtime, with its state kept in the state
 * store (see cfg_migrate.h).
 *
 * A run goes: the core migrator up to the end of the copy (pushing
 * prefer_old and prefer_new first when needed); a verify pass, which alone
 * makes use_new_with_tombstones allowed; the core migrator again for the
 * last two pushes and the cleanup; a final verify that no protocol data is
 * left. The copy saves checkpoints in the store, so a run that was paused,
 * or whose process was killed, resumes where it stopped instead of
 * starting over; after a restart the saved state says "paused".
 */
#include "cfg_migrate.h"
#include "cfg_json.h"
#include "mt_bugs.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cfg_migrate {
    mt_rt *rt;
    mt_config_service *cfg;
    cfg_authority *auth;
    cfg_migrate_env env;

    mt_mutex *mu; /* guards everything below */
    cfg_migration_state mig_state;
    bool mig_running;
    bool mig_pause;     /* asked to pause at the next safe point */
    bool lost_lead;     /* the last run stopped because this replica stopped leading */
    bool copy_done;     /* a copy completed in this migration */
    bool copy_verified; /* and a verify pass proved it: phase 3 may follow */
    mt_migrator_stats mig_stats;
    char mig_error[256];
    char *mig_checkpoint; /* the copy's last checkpoint, or NULL */
    /* The tables the copy or the cleanup walks, listed from the accounts
     * when it started and kept with its checkpoint (whose table index is
     * into them). */
    char **mig_copy_names;
    size_t mig_copy_n;
    const char **mig_names;  /* the run's own thread's: its step's tables */
    mt_verify_report verify; /* the last verify pass */
    bool have_verify;
    mt_thread *mig_thread;
    mt_old_after old_after; /* what the cleanup makes of old, saved */
    mt_mutex *push_mu;      /* phase changes, one at a time */
};

static const char *const state_names[] = {
    [CFG_MIG_IDLE] = "idle",         [CFG_MIG_PUSHING] = "pushing",
    [CFG_MIG_COPYING] = "copying",   [CFG_MIG_VERIFYING] = "verifying",
    [CFG_MIG_CLEANING] = "cleaning", [CFG_MIG_DONE] = "done",
    [CFG_MIG_FAILED] = "failed",     [CFG_MIG_PAUSED] = "paused",
};

const char *cfg_migration_state_name(cfg_migration_state s)
{
    return state_names[s];
}

bool cfg_migration_state_parse(const char *name, cfg_migration_state *out)
{
    for (size_t i = 0; i < sizeof state_names / sizeof *state_names; i++) {
        if (strcmp(state_names[i], name) == 0) {
            *out = (cfg_migration_state)i;
            return true;
        }
    }
    return false;
}

void cfg_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

static void lock(cfg_migrate *m)
{
    m->rt->ops->lock(m->rt, m->mu);
}

static void unlock(cfg_migrate *m)
{
    m->rt->ops->unlock(m->rt, m->mu);
}

static void mig_log(cfg_migrate *m, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void mig_log(cfg_migrate *m, int level, const char *fmt, ...)
{
    if (!m->env.log)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    m->env.log(m->env.ctx, level, msg);
}

/* Tells the environment where the run stands (m->mu not held). */
static void tell_progress(cfg_migrate *m)
{
    if (!m->env.progress)
        return;
    lock(m);
    cfg_migration_state s = m->mig_state;
    mt_migrator_stats stats = m->mig_stats;
    unlock(m);
    m->env.progress(m->env.ctx, s, &stats);
}

static mt_config current_config(cfg_migrate *m)
{
    mt_config c;
    mt_subscription *sub = m->cfg->ops->subscribe(m->cfg, NULL, &c);
    m->cfg->ops->unsubscribe(m->cfg, sub);
    return c;
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

/* The document for the store; m->mu is held. */
static char *state_json(cfg_migrate *m)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "state", cfg_migration_state_name(m->mig_state));
    cJSON_AddBoolToObject(doc, "copy_done", m->copy_done);
    cJSON_AddBoolToObject(doc, "copy_verified", m->copy_verified);
    if (m->mig_checkpoint)
        cJSON_AddStringToObject(doc, "checkpoint", m->mig_checkpoint);
    if (m->mig_copy_names) {
        cJSON *names = cJSON_AddArrayToObject(doc, "copy_tables");
        for (size_t i = 0; i < m->mig_copy_n; i++)
            cJSON_AddItemToArray(names, cJSON_CreateString(m->mig_copy_names[i]));
    }
    if (m->mig_error[0])
        cJSON_AddStringToObject(doc, "error", m->mig_error);
    cJSON_AddStringToObject(doc, "old_after", mt_old_after_name(m->old_after));
    stats_to_json(cJSON_AddObjectToObject(doc, "stats"), &m->mig_stats);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return text;
}

void cfg_migrate_save(cfg_migrate *m)
{
    lock(m);
    char *text = state_json(m);
    unlock(m);
    mt_status st = text ? cfg_authority_save_migration(m->auth, text)
                        : mt_error(500, MT_ERR_INTERNAL, "out of memory");
    if (!mt_is_ok(&st))
        mig_log(m, CFG_LOG_ERROR, "cannot save the migration state: %d %s: %s", st.http, st.code,
                st.message);
    free(text);
}

static void drop_copy_names(cfg_migrate *m)
{
    cfg_names_free(m->mig_copy_names, m->mig_copy_n);
    m->mig_copy_names = NULL;
    m->mig_copy_n = 0;
}

/* The saved copy_tables array (m->mu held); left NULL when malformed. */
static void restore_copy_names(cfg_migrate *m, const cJSON *a)
{
    drop_copy_names(m);
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    char **names = cJSON_IsArray(a) ? calloc((size_t)n + 1, sizeof *names) : NULL;
    size_t k = 0;
    for (const cJSON *v = a ? a->child : NULL; names && v; v = v->next) {
        if (!cJSON_IsString(v) || !(names[k] = strdup(v->valuestring))) {
            cfg_names_free(names, k);
            return;
        }
        k++;
    }
    m->mig_copy_names = names;
    m->mig_copy_n = k;
}

bool cfg_migrate_restore(cfg_migrate *m)
{
    char *text = NULL;
    cfg_authority_load_migration(m->auth, &text);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!doc)
        return false;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, "state");
    const cJSON *cp = cJSON_GetObjectItemCaseSensitive(doc, "checkpoint");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
    const cJSON *oa = cJSON_GetObjectItemCaseSensitive(doc, "old_after");
    lock(m);
    m->old_after = MT_OLD_AFTER_EMPTY; /* also for a state saved before the choice existed */
    if (cJSON_IsString(oa))
        mt_old_after_parse(oa->valuestring, &m->old_after);
    cfg_migration_state state = CFG_MIG_IDLE;
    if (cJSON_IsString(s))
        cfg_migration_state_parse(s->valuestring, &state);
    m->copy_done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "copy_done"));
    m->copy_verified = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "copy_verified"));
    free(m->mig_checkpoint);
    m->mig_checkpoint =
        cJSON_IsString(cp) && !MT_BUG(ResumeFromScratch) ? strdup(cp->valuestring) : NULL;
    restore_copy_names(m, cJSON_GetObjectItemCaseSensitive(doc, "copy_tables"));
    stats_from_json(cJSON_GetObjectItemCaseSensitive(doc, "stats"), &m->mig_stats);
    if (cJSON_IsString(e))
        snprintf(m->mig_error, sizeof m->mig_error, "%s", e->valuestring);
    bool cut = state == CFG_MIG_PUSHING || state == CFG_MIG_COPYING || state == CFG_MIG_VERIFYING ||
               state == CFG_MIG_CLEANING;
    m->mig_state = cut ? CFG_MIG_PAUSED : state;
    if (cut)
        snprintf(m->mig_error, sizeof m->mig_error,
                 "interrupted while %s (the process stopped); resume to continue from the last "
                 "checkpoint",
                 cfg_migration_state_name(state));
    long long rows = (long long)m->mig_stats.rows_done;
    unlock(m);
    cJSON_Delete(doc);
    if (cut)
        mig_log(m, CFG_LOG_WARN,
                "a migration was interrupted while %s; it is paused (%lld rows "
                "copied so far): resume it with mtablectl resume",
                cfg_migration_state_name(state), rows);
    tell_progress(m);
    return cut;
}

/* ------------------------------------------------------------------------ */
/* Hooks the core migrator calls.                                            */

static void set_state(cfg_migrate *m, cfg_migration_state s)
{
    lock(m);
    bool changed = m->mig_state != s;
    m->mig_state = s;
    unlock(m);
    if (changed) {
        cfg_migrate_save(m);
        tell_progress(m);
    }
}

/* The rows the moving step has moved: copied, or cleaned on both sides. */
int64_t cfg_migrate_moved(cfg_migration_state s, const mt_migrator_stats *stats)
{
    return s == CFG_MIG_CLEANING ? stats->rows_cleaned_old + stats->rows_cleaned_new
                                 : stats->rows_done;
}

static void on_progress(void *ctx, mt_migrator_step step, const mt_migrator_stats *stats)
{
    cfg_migrate *m = ctx;
    cfg_migration_state next;
    lock(m);
    m->mig_stats = *stats;
    next = m->mig_state;
    switch (step) {
    case MT_STEP_PUSHING:
        next = CFG_MIG_PUSHING;
        break;
    case MT_STEP_COPYING:
        next = CFG_MIG_COPYING;
        break;
    case MT_STEP_COPIED:
        m->copy_done = true;
        break;
    case MT_STEP_CLEANING:
        next = CFG_MIG_CLEANING;
        break;
    case MT_STEP_DONE:
        break;
    }
    bool save = next != m->mig_state || step == MT_STEP_COPIED;
    m->mig_state = next;
    unlock(m);
    if (m->env.progress)
        m->env.progress(m->env.ctx, next, stats);
    if (save)
        cfg_migrate_save(m);
}

static mt_status save_checkpoint(void *ctx, const char *checkpoint)
{
    cfg_migrate *m = ctx;
    char *copy = strdup(checkpoint);
    if (!copy)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    lock(m);
    free(m->mig_checkpoint);
    m->mig_checkpoint = copy;
    char *text = state_json(m);
    unlock(m);
    mt_status st = text ? cfg_authority_save_migration(m->auth, text)
                        : mt_error(500, MT_ERR_INTERNAL, "out of memory");
    free(text);
    return st;
}

static char *load_checkpoint(void *ctx)
{
    cfg_migrate *m = ctx;
    lock(m);
    char *copy = m->mig_checkpoint ? strdup(m->mig_checkpoint) : NULL;
    unlock(m);
    return copy;
}

static bool should_pause(void *ctx)
{
    cfg_migrate *m = ctx;
    lock(m);
    bool p = m->mig_pause;
    unlock(m);
    return p;
}

/* ------------------------------------------------------------------------ */
/* Verify.                                                                   */

typedef struct all_tables {
    void *handle;
    mt_table_pair *pairs;
    const char **names;
    size_t n;
} all_tables;

/* The named tables, opened by the environment, in the roles the
 * configuration gives them now (swapped in a migration back). */
static mt_status tables_named(cfg_migrate *m, char *const *names, size_t n, all_tables *a)
{
    bool reversed = current_config(m).reversed;
    *a = (all_tables){.n = n};
    a->pairs = calloc(n + 1, sizeof *a->pairs);
    a->names = calloc(n + 1, sizeof *a->names);
    if (a->pairs && a->names)
        a->handle = m->env.open_tables(m->env.ctx, names, n, a->pairs, a->names);
    if (!a->handle) {
        free(a->pairs);
        free(a->names);
        *a = (all_tables){0};
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    for (size_t i = 0; reversed && i < n; i++)
        a->pairs[i] = (mt_table_pair){.old_t = a->pairs[i].new_t, .new_t = a->pairs[i].old_t};
    return mt_ok();
}

/* Every table the accounts hold now (one created through any proxy
 * included), and the tables the last copy or cleanup walked: a table of
 * the migration deleted since is then accounted for (skipped and reported)
 * rather than forgotten. NULL with *st on failure. */
static char **tables_known(cfg_migrate *m, size_t *n, mt_status *st)
{
    char **names = m->env.list_tables(m->env.ctx, n, st);
    if (!names) {
        if (mt_is_ok(st))
            *st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    lock(m);
    size_t extra = m->mig_copy_n;
    char **all = extra ? realloc(names, (*n + extra + 1) * sizeof *names) : names;
    for (size_t i = 0; all && i < extra; i++) {
        bool listed = false;
        for (size_t j = 0; j < *n && !listed; j++)
            listed = strcasecmp(all[j], m->mig_copy_names[i]) == 0;
        char *dup = listed ? NULL : strdup(m->mig_copy_names[i]);
        if (dup)
            all[(*n)++] = dup;
    }
    unlock(m);
    if (!all) {
        cfg_names_free(names, *n);
        *st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    return all;
}

/* What verify checks: tables_known. */
static mt_status tables_for_verify(cfg_migrate *m, all_tables *a)
{
    size_t n = 0;
    mt_status st = mt_ok();
    char **names = tables_known(m, &n, &st);
    if (!names)
        return st;
    st = tables_named(m, names, n, a);
    cfg_names_free(names, n);
    return st;
}

static void tables_put(cfg_migrate *m, all_tables *a)
{
    m->env.close_tables(m->env.ctx, a->handle);
    free(a->pairs);
    free(a->names);
}

/* A verify pass over the tables in a for phase; records the report and,
 * in prefer_new, whether the copy is proven. */
static mt_status verify_tables(cfg_migrate *m, all_tables *a, mt_phase phase, bool after_cleanup,
                               mt_verify_report *rep)
{
    lock(m);
    mt_old_after old_after = m->old_after;
    unlock(m);
    mt_status st = mt_verify_tables_after(m->rt, a->pairs, a->names, a->n, phase, after_cleanup,
                                          old_after, rep);
    if (!mt_is_ok(&st))
        return st;
    lock(m);
    m->verify = *rep;
    m->have_verify = true;
    if (phase == MT_PHASE_PREFER_NEW && m->copy_done)
        m->copy_verified = rep->ok;
    unlock(m);
    cfg_migrate_save(m);
    mig_log(m, rep->ok ? CFG_LOG_INFO : CFG_LOG_ERROR, "verify (%s%s): %s", mt_phase_name(phase),
            after_cleanup ? ", after cleanup" : "", rep->summary);
    return st;
}

mt_status cfg_migrate_verify(cfg_migrate *m, mt_verify_report *rep)
{
    all_tables a;
    mt_status listed = tables_for_verify(m, &a);
    if (!mt_is_ok(&listed))
        return listed;
    mt_config c = current_config(m);
    lock(m);
    bool cleaned = m->mig_state == CFG_MIG_DONE;
    unlock(m);
    mt_status st =
        verify_tables(m, &a, c.phase, c.phase == MT_PHASE_USE_NEW_HIDE_METADATA && cleaned, rep);
    tables_put(m, &a);
    return st;
}

/* ------------------------------------------------------------------------ */
/* The thread.                                                               */

static void table_gone(void *ctx, size_t table, const char *step)
{
    cfg_migrate *m = ctx;
    mig_log(m, CFG_LOG_WARN, "migration: table %s was deleted; skipped while %s",
            m->mig_names ? m->mig_names[table] : "?", step);
}

/* --old-after delete: the old table of the run's table `table`. */
static mt_status delete_old(void *ctx, size_t table)
{
    cfg_migrate *m = ctx;
    const char *name = m->mig_names ? m->mig_names[table] : NULL;
    if (!name || !m->env.delete_old_table)
        return mt_error(400, MT_ERR_INVALID_INPUT, "no account to delete the old table from");
    lock(m);
    mt_old_after old_after = m->old_after;
    unlock(m);
    mt_status st = m->env.delete_old_table(m->env.ctx, name);
    if (mt_is_ok(&st) && old_after == MT_OLD_AFTER_DELETE)
        mig_log(m, CFG_LOG_INFO, "migration: old table %s deleted", name);
    if (st.http == 403 && old_after == MT_OLD_AFTER_EMPTY)
        mig_log(m, CFG_LOG_WARN,
                "migration: may not delete old table %s to empty it (%d %s); deleting its rows "
                "instead",
                name, st.http, st.code);
    return st;
}

/* --old-after empty: the old table of the run's table `table`, again. */
static mt_status recreate_old(void *ctx, size_t table)
{
    cfg_migrate *m = ctx;
    const char *name = m->mig_names ? m->mig_names[table] : NULL;
    if (!name)
        return mt_error(400, MT_ERR_INVALID_INPUT, "no account to create the old table in");
    mt_status st = m->env.recreate_old_table(m->env.ctx, name);
    if (mt_is_ok(&st))
        mig_log(m, CFG_LOG_INFO, "migration: old table %s emptied (dropped and created again)",
                name);
    return st;
}

static mt_status run_core(cfg_migrate *m, all_tables *a, bool stop_early, mt_phase until)
{
    mt_migrator_hooks h = {
        .progress = on_progress,
        .ctx = m,
        .stop_early = stop_early,
        .until = until,
        .parallel = m->env.copy_parallel,
        .rows_per_second = m->env.copy_rate,
        .save_checkpoint = save_checkpoint,
        .load_checkpoint = load_checkpoint,
        .should_pause = should_pause,
        .table_gone = table_gone,
        .delete_old = delete_old,
        .recreate_old = m->env.recreate_old_table ? recreate_old : NULL,
    };
    lock(m);
    mt_migrator_stats stats = m->mig_stats;
    h.old_after = m->old_after;
    unlock(m);
    m->mig_names = a->names;
    mt_status st = mt_migrate_tables(m->rt, m->cfg, a->pairs, a->n, &h, &stats);
    m->mig_names = NULL;
    return st;
}

/* One push, as the migrator's step. */
static mt_status push(cfg_migrate *m, mt_phase p)
{
    set_state(m, CFG_MIG_PUSHING);
    mig_log(m, CFG_LOG_INFO, "migration: pushing %s", mt_phase_name(p));
    return m->cfg->ops->push(m->cfg, p);
}

/* The tables of the copy or the cleanup (the steps with checkpoints):
 * those the step started with when the checkpoint is the step's own (it
 * counts tables in that list; one deleted since answers 404 and is
 * skipped), else the accounts' list now, kept for a resume. A table
 * created after the step started needs nothing from it: created while every
 * proxy was in prefer_new (which writes user rows to new only) or in
 * use_new_hide_metadata (which writes no protocol data). */
static mt_status step_tables(cfg_migrate *m, const char *ckpt_prefix, all_tables *a)
{
    lock(m);
    bool resume = m->mig_checkpoint && m->mig_copy_names &&
                  strncmp(m->mig_checkpoint, ckpt_prefix, strlen(ckpt_prefix)) == 0;
    char **names = NULL;
    size_t n = 0;
    mt_status st = mt_ok();
    if (resume) {
        st = tables_named(m, m->mig_copy_names, m->mig_copy_n, a);
        unlock(m);
        return st;
    }
    unlock(m);
    /* The cleanup also walks the copy's tables, so that one deleted since
     * is skipped and reported there too. */
    bool cleanup = strcmp(ckpt_prefix, "c1\t") == 0;
    names = cleanup ? tables_known(m, &n, &st) : m->env.list_tables(m->env.ctx, &n, &st);
    if (!names)
        return mt_is_ok(&st) ? mt_error(500, MT_ERR_INTERNAL, "out of memory") : st;
    st = tables_named(m, names, n, a);
    lock(m);
    drop_copy_names(m);
    m->mig_copy_names = names;
    m->mig_copy_n = n;
    unlock(m);
    cfg_migrate_save(m);
    return st;
}

/* Runs the core migrator over the tables of this step. Tables are listed
 * from the accounts again at each step because an application may create
 * or delete one at any time: listed only once every proxy is in
 * prefer_new, the copy cannot miss a table with rows in old, and listed
 * only once every proxy is in use_new_hide_metadata, the cleanup cannot
 * miss one with tombstones. A table deleted meanwhile is skipped (the core
 * meets 404 TableNotFound) and logged. */
static mt_status run_tables(cfg_migrate *m, mt_phase until)
{
    all_tables a;
    /* The copy's checkpoints start "v1", the cleanup's "c1". */
    mt_status st = step_tables(m, until == MT_PHASE_PREFER_NEW ? "v1\t" : "c1\t", &a);
    if (!mt_is_ok(&st))
        return st;
    st = run_core(m, &a, true, until);
    tables_put(m, &a);
    return st;
}

static mt_status verify_now(cfg_migrate *m, mt_phase phase, bool after_cleanup)
{
    set_state(m, CFG_MIG_VERIFYING);
    all_tables a;
    mt_status st = tables_for_verify(m, &a);
    if (!mt_is_ok(&st))
        return st;
    mt_verify_report rep;
    st = verify_tables(m, &a, phase, after_cleanup, &rep);
    tables_put(m, &a);
    if (mt_is_ok(&st) && !rep.ok)
        st = mt_error(500, "VerifyFailed", "%s: %s",
                      after_cleanup ? "cleanup left data behind" : "the copy did not verify",
                      rep.summary);
    return st;
}

static void reset_for_new_migration(cfg_migrate *m)
{
    lock(m);
    free(m->mig_checkpoint);
    m->mig_checkpoint = NULL;
    drop_copy_names(m);
    m->copy_done = m->copy_verified = false;
    m->mig_stats = (mt_migrator_stats){
        .rows_total = -1, .partitions_total = -1, .clean_total_old = -1, .clean_total_new = -1};
    unlock(m);
}

/* The first push of a migration back: the roles swap where both ways read
 * and write the same single table. */
static mt_status swap_roles(cfg_migrate *m)
{
    if (!m->auth)
        return mt_error(409, "NotAuthority", "only the authority swaps the roles");
    set_state(m, CFG_MIG_PUSHING);
    mig_log(m, CFG_LOG_INFO,
            "migration back: pushing use_old_hide_metadata with the roles swapped (the new "
            "account plays old)");
    mt_status st = cfg_authority_push_swap(m->auth);
    if (mt_is_ok(&st))
        mig_log(m, CFG_LOG_INFO, "migration back: roles swapped on every proxy (generation %lld)",
                (long long)cfg_authority_generation(m->auth));
    return st;
}

/* From the current phase up to `last`: pushes one step at a time, the copy
 * and its verify in prefer_new, the cleanup and its verify at the end. */
static mt_status run(cfg_migrate *m, bool stop_early, mt_phase until, bool swap)
{
    if (swap) {
        mt_status sw = swap_roles(m);
        if (!mt_is_ok(&sw))
            return sw;
    }
    mt_phase last = stop_early ? until : MT_PHASE_USE_NEW_HIDE_METADATA;
    mt_phase phase = current_config(m).phase;
    if (phase == MT_PHASE_USE_OLD_HIDE_METADATA)
        reset_for_new_migration(m);
    mt_status st = mt_ok();
    /* A pause asked for here stops before the next push: before prefer_new,
     * an abort can still take the fleet back. */
    while (mt_is_ok(&st) && phase < last && phase < MT_PHASE_PREFER_NEW)
        st = should_pause(m) ? mt_error(409, "MigrationPaused", "paused before pushing %s",
                                        mt_phase_name(phase + 1))
                             : push(m, ++phase);
    lock(m);
    bool verified = m->copy_verified;
    unlock(m);
    if (mt_is_ok(&st) && phase == MT_PHASE_PREFER_NEW && !verified) {
        st = run_tables(m, MT_PHASE_PREFER_NEW);
        if (mt_is_ok(&st))
            st = verify_now(m, MT_PHASE_PREFER_NEW, false);
    }
    if (mt_is_ok(&st) && phase == MT_PHASE_PREFER_NEW && last > phase)
        st = push(m, ++phase);
    if (mt_is_ok(&st) && phase == MT_PHASE_USE_NEW_WITH_TOMBSTONES && last > phase)
        st = push(m, ++phase);
    if (mt_is_ok(&st) && phase == MT_PHASE_USE_NEW_HIDE_METADATA &&
        last == MT_PHASE_USE_NEW_HIDE_METADATA) {
        st = run_tables(m, MT_PHASE_USE_NEW_HIDE_METADATA);
        if (mt_is_ok(&st))
            st = verify_now(m, MT_PHASE_USE_NEW_HIDE_METADATA, true);
    }
    return st;
}

static void finish(cfg_migrate *m, const mt_status *st, bool stop_early, mt_phase until)
{
    lock(m);
    m->mig_running = false;
    bool lost_lead = strcmp(st->code, MT_ERR_NOT_LEADER) == 0;
    if (st->http == 409 && strcmp(st->code, "MigrationPaused") == 0) {
        m->mig_state = CFG_MIG_PAUSED;
        m->mig_error[0] = '\0';
    } else if (lost_lead) {
        /* Not the migration's failure: this replica stopped leading (a
         * takeover, or its own beats came too late on a starved machine).
         * The store keeps the last state saved while it led, which the
         * leader, this replica again included, resumes from its checkpoint. */
        m->mig_state = CFG_MIG_PAUSED;
        snprintf(m->mig_error, sizeof m->mig_error, "%s",
                 "interrupted: this authority replica stopped leading; the leader resumes "
                 "it from the last checkpoint");
        m->lost_lead = true;
    } else if (!mt_is_ok(st)) {
        m->mig_state = CFG_MIG_FAILED;
        snprintf(m->mig_error, sizeof m->mig_error, "%d %s: %s", st->http, st->code, st->message);
    } else {
        bool to_end = !stop_early || until == MT_PHASE_USE_NEW_HIDE_METADATA;
        m->mig_state = to_end ? CFG_MIG_DONE : CFG_MIG_IDLE;
        m->mig_error[0] = '\0';
    }
    cfg_migration_state s = m->mig_state;
    mt_migrator_stats stats = m->mig_stats;
    unlock(m);
    if (!lost_lead) /* refused anyway while not leading; the store's state is the one to resume */
        cfg_migrate_save(m);
    tell_progress(m);
    if (lost_lead)
        mig_log(m, CFG_LOG_WARN, "migration interrupted: %d %s: %s", st->http, st->code,
                st->message);
    else if (s == CFG_MIG_FAILED)
        mig_log(m, CFG_LOG_ERROR, "migration failed: %d %s: %s", st->http, st->code, st->message);
    else
        mig_log(m, CFG_LOG_INFO,
                "migration %s: %lld rows copied, %lld cleaned in old and %lld in new",
                cfg_migration_state_name(s), (long long)stats.rows_done,
                (long long)stats.rows_cleaned_old, (long long)stats.rows_cleaned_new);
}

typedef struct run_args {
    cfg_migrate *m;
    bool stop_early;
    mt_phase until;
    bool swap; /* a migration back: swap the roles first */
} run_args;

static void *migrate_thread(void *arg)
{
    run_args *ra = arg;
    cfg_migrate *m = ra->m;
    m->rt->ops->lock(m->rt, m->push_mu);
    mt_status st = run(m, ra->stop_early, ra->until, ra->swap);
    m->rt->ops->unlock(m->rt, m->push_mu);
    finish(m, &st, ra->stop_early, ra->until);
    free(ra);
    return NULL;
}

bool cfg_migrate_lost_lead(cfg_migrate *m)
{
    lock(m);
    bool lost = m->lost_lead && !m->mig_running;
    if (lost)
        m->lost_lead = false;
    unlock(m);
    return lost;
}

void cfg_migrate_join(cfg_migrate *m)
{
    lock(m);
    mt_thread *t = m->mig_thread;
    m->mig_thread = NULL;
    unlock(m);
    if (t)
        m->rt->ops->thread_join(m->rt, t);
}

/* Starts the run; choice (may be NULL: the saved one) is what its cleanup
 * makes of old, set under the same lock that marks it running. */
static mt_status start_run(cfg_migrate *m, bool stop_early, mt_phase until,
                           const mt_old_after *choice, bool swap)
{
    lock(m);
    bool running = m->mig_running;
    unlock(m);
    if (running)
        return mt_error(409, "MigrationRunning", "A migration is already running.");
    cfg_migrate_join(m);
    run_args *ra = malloc(sizeof *ra);
    if (!ra)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    *ra = (run_args){.m = m, .stop_early = stop_early, .until = until, .swap = swap};
    lock(m);
    if (m->mig_running) { /* another start won meanwhile */
        unlock(m);
        free(ra);
        return mt_error(409, "MigrationRunning", "A migration is already running.");
    }
    if (choice)
        m->old_after = *choice;
    m->mig_running = true;
    m->mig_pause = false;
    m->mig_error[0] = '\0';
    m->mig_state = CFG_MIG_PUSHING;
    mt_migrator_stats stats = m->mig_stats;
    unlock(m);
    if (m->env.progress) /* the next moving step starts its rate afresh */
        m->env.progress(m->env.ctx, CFG_MIG_PUSHING, &stats);
    lock(m);
    m->mig_thread = m->rt->ops->thread_start(m->rt, migrate_thread, ra, "migrator");
    bool ok = m->mig_thread != NULL;
    if (!ok)
        m->mig_running = false;
    unlock(m);
    if (!ok) {
        free(ra);
        return mt_error(500, MT_ERR_INTERNAL, "Could not start the migrator.");
    }
    return mt_ok();
}

mt_status cfg_migrate_start(cfg_migrate *m, bool stop_early, mt_phase until)
{
    return start_run(m, stop_early, until, NULL, false);
}

mt_status cfg_migrate_begin(cfg_migrate *m, bool stop_early, mt_phase until, mt_old_after old_after)
{
    return start_run(m, stop_early, until, &old_after, false);
}

/* Whether table t holds any row; a 404 (no such table) sets *missing
 * instead. */
static mt_status target_rows(mt_table *t, bool *rows, bool *missing)
{
    *rows = *missing = false;
    mt_stream *s = NULL;
    mt_status st = t->ops->query_stream(t, NULL, NULL, &s);
    mt_entity *e = NULL;
    if (mt_is_ok(&st))
        st = s->ops->next(s, &e);
    if (s)
        s->ops->close(s);
    *rows = e != NULL;
    mt_entity_free(e);
    if (st.http == 404) {
        *missing = true;
        st = mt_ok();
    }
    return st;
}

/* The account that plays old now is the target of a migration back: no
 * table of it may hold rows (a row there would reappear in the merged view
 * or block the copy), and a table it lacks is created. */
static mt_status prepare_target(cfg_migrate *m)
{
    size_t n = 0;
    mt_status st = mt_ok();
    char **names = m->env.list_tables(m->env.ctx, &n, &st);
    if (!names)
        return mt_is_ok(&st) ? mt_error(500, MT_ERR_INTERNAL, "out of memory") : st;
    all_tables a = {0};
    st = tables_named(m, names, n, &a);
    size_t nmissing = 0;
    for (size_t i = 0; mt_is_ok(&st) && i < a.n; i++) {
        bool rows, missing;
        st = target_rows(a.pairs[i].old_t, &rows, &missing);
        if (mt_is_ok(&st) && rows)
            st = mt_error(409, "ReverseTargetNotEmpty",
                          "Table %s still holds rows in the account to migrate back into (the "
                          "rollback copy that --old-after keep leaves, or rows written there "
                          "since). No proxy reads that account now: delete or empty its tables "
                          "there, then run mtablectl migrate --reverse again.",
                          a.names[i]);
        if (mt_is_ok(&st) && missing && !m->env.create_table)
            st = mt_error(409, "ReverseTargetNotEmpty",
                          "Table %s is missing in the account to migrate back into.", a.names[i]);
        if (mt_is_ok(&st) && missing) {
            st = m->env.create_table(m->env.ctx, a.names[i]);
            nmissing++;
        }
    }
    if (a.handle)
        tables_put(m, &a);
    cfg_names_free(names, n);
    if (mt_is_ok(&st) && nmissing)
        mig_log(m, CFG_LOG_INFO, "migration back: %zu tables created in the target account",
                nmissing);
    return st;
}

mt_status cfg_migrate_reverse(cfg_migrate *m, mt_old_after old_after)
{
    mt_config c = current_config(m);
    lock(m);
    cfg_migration_state state = m->mig_state;
    bool running = m->mig_running;
    unlock(m);
    if (running)
        return mt_error(409, "MigrationRunning", "A migration is already running.");
    if (c.phase != MT_PHASE_USE_NEW_HIDE_METADATA || state != CFG_MIG_DONE)
        return mt_error(409, "MigrationNotDone",
                        "A migration back starts from a finished migration (phase "
                        "use_new_hide_metadata, migration done); the fleet is in %s and the "
                        "migration is %s. Finish it first (mtablectl migrate or resume); before "
                        "prefer_new, mtablectl abort goes back instead.",
                        mt_phase_name(c.phase), cfg_migration_state_name(state));
    mt_status st = prepare_target(m);
    if (!mt_is_ok(&st))
        return st;
    return start_run(m, false, MT_PHASE_USE_NEW_HIDE_METADATA, &old_after, true);
}

mt_status cfg_migrate_pause(cfg_migrate *m)
{
    lock(m);
    bool running = m->mig_running;
    if (running)
        m->mig_pause = true;
    unlock(m);
    if (!running)
        return mt_error(409, "MigrationNotRunning", "No migration is running.");
    return mt_ok();
}

void cfg_migrate_stop_soon(cfg_migrate *m)
{
    lock(m);
    m->mig_pause = true;
    unlock(m);
}

/* ------------------------------------------------------------------------ */
/* What the status shows, and the phase rules.                               */

void cfg_migrate_info_get(cfg_migrate *m, cfg_migrate_info *out)
{
    lock(m);
    *out = (cfg_migrate_info){
        .state = m->mig_state,
        .running = m->mig_running,
        .copy_done = m->copy_done,
        .copy_verified = m->copy_verified,
        .stats = m->mig_stats,
        .have_verify = m->have_verify,
        .verify = m->verify,
        .old_after = m->old_after,
    };
    memcpy(out->error, m->mig_error, sizeof out->error);
    unlock(m);
}

const char *cfg_migrate_start_refusal(cfg_migrate *m, bool resume, char *msg, size_t cap)
{
    lock(m);
    cfg_migration_state state = m->mig_state;
    bool paused = state == CFG_MIG_PAUSED || state == CFG_MIG_FAILED;
    char why[sizeof m->mig_error];
    snprintf(why, sizeof why, "%s", m->mig_error);
    unlock(m);
    if (!resume && paused) {
        /* Starting would quietly continue it from its checkpoint: say so,
         * and let the operator choose resume knowingly. */
        snprintf(msg, cap,
                 "A migration is %s%s%s; continue it from where it stopped with mtablectl "
                 "resume.",
                 cfg_migration_state_name(state), why[0] ? ": " : "", why);
        return state == CFG_MIG_PAUSED ? "MigrationPaused" : "MigrationFailed";
    }
    if (resume && !paused) {
        snprintf(msg, cap,
                 "No paused or failed migration to resume; start one with "
                 "mtablectl migrate.");
        return "MigrationNotPaused";
    }
    return NULL;
}

const char *cfg_migrate_phase_refusal(cfg_migrate *m, mt_phase from, mt_phase want)
{
    lock(m);
    bool verified = m->copy_verified, running = m->mig_running;
    unlock(m);
    if (running)
        return "a migration is running; it moves the phases itself (pause it first)";
    if (want + 1 == from && from > MT_PHASE_PREFER_OLD)
        return "a step back is possible only from prefer_old, while no partition is switched: "
               "from prefer_new on every write switches its partition and the copy switches "
               "the rest, and the rows of a switched partition live in new, where "
               "use_old_hide_metadata does not look (a finished migration goes back by "
               "migrating the other way)";
    if (want != from && want != from + 1 && want + 1 != from)
        return "phases move one step at a time";
    if (want == MT_PHASE_USE_NEW_WITH_TOMBSTONES && from != want && !verified)
        return "use_new_with_tombstones needs a completed copy that a verify pass proved "
               "(mtablectl migrate, or the copy then mtablectl verify)";
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Going back before any partition is switched.                              */
/*                                                                           */
/* Phase 0 reads old alone, so the fleet may return to it only while every  */
/* row is in old: while no partition is switched. In prefer_old a partition */
/* is switched only by a 100-operation batch of a proxy that knows its      */
/* phase settled (no phase-0 proxy left). So the step back first pushes     */
/* prefer_old again, held (cfg_authority_push_held): once every proxy has   */
/* applied it unsettled, none switches a partition any more; then it looks  */
/* for a switched partition in every old table (mt_find_switched), refusing */
/* (and settling prefer_old again) when it finds one; then it pushes phase  */
/* 0, during which phases 0 and 1 coexist as on the way forward.            */

/* 409 naming a switched partition of the accounts' tables, if any. */
static mt_status check_unswitched(cfg_migrate *m)
{
    size_t n = 0;
    mt_status st = mt_ok();
    char **names = m->env.list_tables(m->env.ctx, &n, &st);
    if (!names)
        return mt_is_ok(&st) ? mt_error(500, MT_ERR_INTERNAL, "out of memory") : st;
    all_tables a;
    st = tables_named(m, names, n, &a);
    bool found = false;
    char where[200];
    if (mt_is_ok(&st)) {
        st = mt_find_switched(m->rt, a.pairs, a.names, a.n, &found, where, sizeof where);
        tables_put(m, &a);
    }
    cfg_names_free(names, n); /* after: a label may point into them */
    if (mt_is_ok(&st) && found)
        st = mt_error(409, "PhaseTransitionNotAllowed",
                      "Cannot move from prefer_old to use_old_hide_metadata: partition %s is "
                      "switched (a 100-operation batch in prefer_old moved it to new), and "
                      "use_old_hide_metadata would not see its rows there; go forward instead.",
                      where);
    return st;
}

/* The step back from prefer_old; push_mu held. */
static mt_status step_back(cfg_migrate *m)
{
    if (!m->auth)
        return mt_error(409, "NotAuthority", "only the authority moves the phase");
    mig_log(m, CFG_LOG_INFO,
            "phase prefer_old -> use_old_hide_metadata: holding prefer_old unsettled");
    mt_status st = cfg_authority_push_held(m->auth, MT_PHASE_PREFER_OLD);
    if (mt_is_ok(&st))
        st = check_unswitched(m);
    if (st.http == 409 && strcmp(st.code, "PhaseTransitionNotAllowed") == 0) {
        mig_log(m, CFG_LOG_WARN, "step back refused: %s", st.message);
        mt_status again = m->cfg->ops->push(m->cfg, MT_PHASE_PREFER_OLD);
        if (!mt_is_ok(&again))
            mig_log(m, CFG_LOG_ERROR, "prefer_old could not be settled again: %d %s: %s",
                    again.http, again.code, again.message);
        return st;
    }
    if (mt_is_ok(&st))
        st = m->cfg->ops->push(m->cfg, MT_PHASE_USE_OLD_HIDE_METADATA);
    if (mt_is_ok(&st))
        mig_log(m, CFG_LOG_INFO, "phase use_old_hide_metadata: every proxy stepped back");
    return st;
}

/* Forgets the run's progress, as for a migration never started. */
static void forget_run(cfg_migrate *m)
{
    reset_for_new_migration(m);
    lock(m);
    m->mig_state = CFG_MIG_IDLE;
    m->mig_error[0] = '\0';
    m->have_verify = false;
    m->old_after = MT_OLD_AFTER_EMPTY;
    unlock(m);
    cfg_migrate_save(m);
    tell_progress(m);
}

mt_status cfg_migrate_abort(cfg_migrate *m, int64_t *removed)
{
    *removed = 0;
    if (current_config(m).phase >= MT_PHASE_PREFER_NEW)
        return mt_error(409, "AbortNotAllowed",
                        "The fleet is in %s: from prefer_new on every write switches its "
                        "partition and the copy switches the rest, so rows live in new; finish "
                        "the migration and migrate back instead.",
                        mt_phase_name(current_config(m).phase));
    lock(m);
    bool running = m->mig_running;
    m->mig_pause = m->mig_pause || running;
    unlock(m);
    if (running)
        mig_log(m, CFG_LOG_INFO, "abort: pausing the running migration first");
    cfg_migrate_join(m);
    m->rt->ops->lock(m->rt, m->push_mu);
    mt_phase phase = current_config(m).phase; /* the run may have pushed meanwhile */
    mt_status st = mt_ok();
    if (phase >= MT_PHASE_PREFER_NEW)
        st = mt_error(409, "AbortNotAllowed",
                      "The migration reached %s before it paused; finish it and migrate back "
                      "instead.",
                      mt_phase_name(phase));
    else if (phase == MT_PHASE_PREFER_OLD)
        st = step_back(m);
    size_t n = 0;
    char **names = mt_is_ok(&st) ? m->env.list_tables(m->env.ctx, &n, &st) : NULL;
    if (mt_is_ok(&st) && !names)
        st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
    all_tables a = {0};
    if (mt_is_ok(&st))
        st = tables_named(m, names, n, &a);
    if (mt_is_ok(&st)) {
        st = mt_clean_protocol_rows(m->rt, a.pairs, a.n, removed);
        tables_put(m, &a);
    }
    cfg_names_free(names, n);
    if (mt_is_ok(&st))
        forget_run(m);
    m->rt->ops->unlock(m->rt, m->push_mu);
    if (mt_is_ok(&st))
        mig_log(m, CFG_LOG_INFO,
                "migration aborted: every proxy in use_old_hide_metadata, %lld protocol rows "
                "deleted from old",
                (long long)*removed);
    return st;
}

mt_status cfg_migrate_phase(cfg_migrate *m, mt_phase want, mt_phase *from)
{
    m->rt->ops->lock(m->rt, m->push_mu);
    mt_config c = current_config(m);
    *from = c.phase;
    const char *why = cfg_migrate_phase_refusal(m, c.phase, want);
    mt_status st = mt_ok();
    if (why) {
        st = mt_error(409, "PhaseTransitionNotAllowed", "Cannot move from %s to %s: %s.",
                      mt_phase_name(c.phase), mt_phase_name(want), why);
    } else if (want + 1 == c.phase) {
        st = step_back(m);
    } else if (want != c.phase) {
        mig_log(m, CFG_LOG_INFO, "phase %s -> %s: pushing", mt_phase_name(c.phase),
                mt_phase_name(want));
        st = m->cfg->ops->push(m->cfg, want);
        if (mt_is_ok(&st))
            mig_log(m, CFG_LOG_INFO, "phase %s: every proxy acknowledged or lost its lease",
                    mt_phase_name(want));
    }
    m->rt->ops->unlock(m->rt, m->push_mu);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Life.                                                                     */

cfg_migrate *cfg_migrate_new(mt_rt *rt, mt_config_service *cfg, cfg_authority *auth,
                             const cfg_migrate_env *env)
{
    cfg_migrate *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    *m = (cfg_migrate){.rt = rt, .cfg = cfg, .auth = auth, .env = *env};
    m->mu = rt->ops->mutex_new(rt);
    m->push_mu = rt->ops->mutex_new(rt);
    if (!m->mu || !m->push_mu) {
        cfg_migrate_free(m);
        return NULL;
    }
    return m;
}

void cfg_migrate_free(cfg_migrate *m)
{
    if (!m)
        return;
    if (m->mu) {
        cfg_migrate_stop_soon(m);
        cfg_migrate_join(m);
        m->rt->ops->mutex_free(m->rt, m->mu);
    }
    if (m->push_mu)
        m->rt->ops->mutex_free(m->rt, m->push_mu);
    free(m->mig_checkpoint);
    cfg_names_free(m->mig_copy_names, m->mig_copy_n);
    free(m);
}

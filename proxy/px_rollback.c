/*
 * px_rollback.c -- going back before any partition is switched: the step
 * from prefer_old back to use_old_hide_metadata, and abort (a migration
 * given up, the fleet back in phase 0, old as it was before it).
 *
 * Why only from prefer_old: phase 0 reads old alone, so it may return only
 * while every row is in old, i.e. while no partition is switched. From
 * prefer_new on every write switches its partition and the copy switches
 * the rest; a finished migration goes back by migrating the other way.
 * In prefer_old a partition is switched only by a 100-operation batch of a
 * proxy that knows its phase settled, so the step back (core/migrator_back.c
 * says why each step is needed):
 *   1. pushes prefer_old again, held: every proxy applies it as unsettled
 *      (or loses its lease), so from then on none switches a partition;
 *   2. looks for a switched partition in every old table; if there is one,
 *      pushes prefer_old again (settled) and refuses, naming it;
 *   3. pushes use_old_hide_metadata like any other push (phases 0 and 1
 *      coexist while it runs, as on the way forward).
 * Abort runs the step back when needed, then, with every proxy in phase 0,
 * deletes the protocol rows prefer_old's writes left in old and forgets the
 * migration's progress (checkpoints, copy flags, counts). new holds nothing
 * then but the empty tables created through the proxies.
 *
 * Both run on the admin thread that asked, under app->push_mu, so no other
 * push or migrator run interleaves.
 */
#include "px.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rb_tables {
    px_table **t;
    mt_table_pair *pairs;
    const char **names;
    size_t n;
} rb_tables;

static void rb_tables_put(px_app *app, rb_tables *a)
{
    for (size_t i = 0; a->t && i < a->n; i++)
        px_table_release(app->reg, a->t[i]);
    free(a->t);
    free(a->pairs);
    free(a->names);
    *a = (rb_tables){0};
}

/* Every table the accounts hold now. */
static mt_status rb_tables_get(px_app *app, rb_tables *a)
{
    *a = (rb_tables){0};
    size_t n = 0;
    mt_status st = mt_ok();
    char **names = px_account_tables(app->reg, &n, &st);
    if (!names)
        return mt_is_ok(&st) ? mt_error(500, MT_ERR_INTERNAL, "out of memory") : st;
    a->n = n;
    a->t = px_tables_named(app->reg, names, n);
    a->pairs = calloc(n + 1, sizeof *a->pairs);
    a->names = calloc(n + 1, sizeof *a->names);
    if (!a->t || !a->pairs || !a->names) {
        rb_tables_put(app, a);
        px_names_free(names, n);
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        a->pairs[i] = px_table_backends(a->t[i]);
        a->names[i] = px_table_name(a->t[i]);
    }
    px_names_free(names, n);
    return mt_ok();
}

/* Step 2: 409 naming a switched partition, if any. */
static mt_status rb_check_unswitched(px_app *app)
{
    rb_tables a;
    mt_status st = rb_tables_get(app, &a);
    bool found = false;
    char where[200];
    if (mt_is_ok(&st))
        st = mt_find_switched(app->rt, a.pairs, a.names, a.n, &found, where, sizeof where);
    rb_tables_put(app, &a);
    if (mt_is_ok(&st) && found)
        st = mt_error(409, "PhaseTransitionNotAllowed",
                      "partition %s is switched (a 100-operation batch in prefer_old moved it to "
                      "new), and use_old_hide_metadata would not see its rows there; go forward",
                      where);
    return st;
}

mt_status px_rollback_step_back(px_app *app)
{
    if (!app->auth)
        return mt_error(409, "NotAuthority", "only the authority moves the phase");
    px_log(PX_LOG_INFO, "phase prefer_old -> use_old_hide_metadata: holding prefer_old unsettled");
    mt_status st = cfg_authority_push_held(app->auth, MT_PHASE_PREFER_OLD);
    if (mt_is_ok(&st))
        st = rb_check_unswitched(app);
    if (st.http == 409 && strcmp(st.code, "PhaseTransitionNotAllowed") == 0) {
        px_log(PX_LOG_WARN, "step back refused: %s", st.message);
        mt_status again = cfg_authority_push(app->auth, MT_PHASE_PREFER_OLD);
        if (!mt_is_ok(&again))
            px_log(PX_LOG_ERROR, "prefer_old could not be settled again: %d %s: %s", again.http,
                   again.code, again.message);
        return st;
    }
    if (mt_is_ok(&st))
        st = cfg_authority_push(app->auth, MT_PHASE_USE_OLD_HIDE_METADATA);
    if (mt_is_ok(&st))
        px_log(PX_LOG_INFO, "phase use_old_hide_metadata: every proxy stepped back");
    return st;
}

/* Forgets the migration's progress (app->mu not held). */
static void rb_forget_run(px_app *app)
{
    pthread_mutex_lock(&app->mu);
    app->mig_state = PX_MIG_IDLE;
    app->mig_error[0] = '\0';
    free(app->mig_checkpoint);
    app->mig_checkpoint = NULL;
    px_names_free(app->mig_copy_names, app->mig_copy_n);
    app->mig_copy_names = NULL;
    app->mig_copy_n = 0;
    app->copy_done = app->copy_verified = false;
    app->have_verify = false;
    app->mig_stats = (mt_migrator_stats){
        .rows_total = -1, .partitions_total = -1, .clean_total_old = -1, .clean_total_new = -1};
    pthread_mutex_unlock(&app->mu);
    px_migrate_save(app);
}

/* A running migrator is asked to pause and waited for. */
static void rb_stop_migrator(px_app *app)
{
    pthread_mutex_lock(&app->mu);
    bool running = app->mig_running;
    pthread_mutex_unlock(&app->mu);
    if (!running)
        return;
    px_log(PX_LOG_INFO, "abort: pausing the running migration first");
    px_migrate_pause(app);
    px_migrate_join(app);
}

mt_status px_rollback_abort(px_app *app, int64_t *removed)
{
    *removed = 0;
    if (!app->auth)
        return mt_error(409, "NotAuthority", "only the authority aborts a migration");
    mt_phase phase = px_app_config(app).phase;
    if (phase >= MT_PHASE_PREFER_NEW)
        return mt_error(409, "AbortNotAllowed",
                        "the fleet is in %s: from prefer_new on partitions are switched (every "
                        "write switches its partition, the copy the rest) and their rows live in "
                        "new; finish the migration and migrate back instead",
                        mt_phase_name(phase));
    rb_stop_migrator(app);
    pthread_mutex_lock(&app->push_mu);
    phase = px_app_config(app).phase; /* the migrator may have pushed meanwhile */
    mt_status st = mt_ok();
    if (phase >= MT_PHASE_PREFER_NEW)
        st = mt_error(409, "AbortNotAllowed",
                      "the migration reached %s before it paused; finish it and migrate back "
                      "instead",
                      mt_phase_name(phase));
    else if (phase == MT_PHASE_PREFER_OLD)
        st = px_rollback_step_back(app);
    rb_tables a = {0};
    if (mt_is_ok(&st))
        st = rb_tables_get(app, &a);
    if (mt_is_ok(&st))
        st = mt_clean_protocol_rows(app->rt, a.pairs, a.n, removed);
    rb_tables_put(app, &a);
    if (mt_is_ok(&st))
        rb_forget_run(app);
    pthread_mutex_unlock(&app->push_mu);
    if (mt_is_ok(&st))
        px_log(PX_LOG_INFO,
               "migration aborted: every proxy in use_old_hide_metadata, %lld "
               "protocol rows deleted from old",
               (long long)*removed);
    return st;
}

/*
 * cfg_migrate.h -- the authority's migration run: its state machine, the
 * state it keeps in the authority's store, and the phase rules an operator's
 * push must follow.
 *
 * A run goes idle -> pushing -> copying -> verifying -> pushing -> cleaning
 * -> verifying -> done (or failed, or paused on request or when its process
 * stopped). It saves its state and the copy's checkpoints in the
 * authority's state document (cfg_authority_save_migration), so a run that
 * was paused, or whose process was killed, or whose replica lost the lead,
 * resumes from its last checkpoint instead of starting over.
 *
 * Everything concurrent goes through the mt_rt it is given (its thread, its
 * locks), so the tester runs the very same run under its scheduler. What
 * it needs from the world -- which tables the accounts hold, a backend pair
 * for each, a log -- comes through cfg_migrate_env. It never reaches a
 * backend except through the pairs the environment opens, nor writes the
 * store except through its authority.
 */
#ifndef CFG_MIGRATE_H
#define CFG_MIGRATE_H

#include "cfg.h"

typedef enum cfg_migration_state {
    CFG_MIG_IDLE,
    CFG_MIG_PUSHING,
    CFG_MIG_COPYING,
    CFG_MIG_VERIFYING,
    CFG_MIG_CLEANING,
    CFG_MIG_DONE,
    CFG_MIG_FAILED,
    CFG_MIG_PAUSED,
} cfg_migration_state;

const char *cfg_migration_state_name(cfg_migration_state s);
/* false when name is not a state. */
bool cfg_migration_state_parse(const char *name, cfg_migration_state *out);

/* What the run needs from the process it runs in. */
typedef struct cfg_migrate_env {
    /* The tables the accounts hold now, sorted case-insensitively; each
     * name and the array malloc'd (cfg_names_free). NULL with *st when a
     * backend cannot be listed. */
    char **(*list_tables)(void *ctx, size_t *n, mt_status *st);
    /* Opens the named tables: pairs[i] and labels[i] for names[i], valid
     * until close_tables(handle). A name the accounts no longer hold still
     * gets a pair, whose calls answer 404 TableNotFound. NULL when out of
     * memory. */
    void *(*open_tables)(void *ctx, char *const *names, size_t n, mt_table_pair *pairs,
                         const char **labels);
    void (*close_tables)(void *ctx, void *handle);
    /* One sentence for the operator (CFG_LOG_*); may be NULL. */
    void (*log)(void *ctx, int level, const char *msg);
    /* Every change of the state or the counters, outside the run's locks;
     * must be quick; may be NULL. */
    void (*progress)(void *ctx, cfg_migration_state s, const mt_migrator_stats *stats);
    /* Deletes table `name` of the account that plays old now (the new
     * account in a migration back) for --old-after delete; 404
     * TableNotFound when it is gone already. NULL: deleting is refused. */
    mt_status (*delete_old_table)(void *ctx, const char *name);
    /* Creates table `name` again in the account that plays old, after
     * delete_old_table, for --old-after empty: ok when it exists, 404
     * TableNotFound when the other account no longer holds it (the
     * application deleted it: nothing is created), 409 TableBeingDeleted
     * while the service still removes it. NULL: old is emptied row by row. */
    mt_status (*recreate_old_table)(void *ctx, const char *name);
    /* Creates table `name` in both accounts where it is missing (a
     * migration back into an account whose tables --old-after delete
     * removed); ok when it exists. NULL: the tables must exist. */
    mt_status (*create_table)(void *ctx, const char *name);
    void *ctx;
    int copy_parallel; /* partitions copied at once (mt_migrator_hooks) */
    int copy_rate;     /* rows a second, 0: unlimited */
} cfg_migrate_env;

typedef struct cfg_migrate cfg_migrate;

/* A run of the authority auth, pushing through cfg (its service); nothing
 * starts until cfg_migrate_start. Borrows rt, cfg, auth and env->ctx. NULL
 * on out of memory. */
cfg_migrate *cfg_migrate_new(mt_rt *rt, mt_config_service *cfg, cfg_authority *auth,
                             const cfg_migrate_env *env);
/* Asks a running run to pause, joins it, frees everything. */
void cfg_migrate_free(cfg_migrate *m);

/* Frees n malloc'd names and the array. */
void cfg_names_free(char **names, size_t n);

/* Restores the state saved by an earlier run (one cut short comes back as
 * paused); true when it was cut short. */
bool cfg_migrate_restore(cfg_migrate *m);
/* Starts the run's thread: from the current phase to the end, or (with
 * stop_early) until `until`; a paused run continues from its checkpoint.
 * 409 MigrationRunning when one runs. */
mt_status cfg_migrate_start(cfg_migrate *m, bool stop_early, mt_phase until);
/* The operator's start: the same, with what the cleanup is to make of old
 * (saved with the state, so a resume keeps it). */
mt_status cfg_migrate_begin(cfg_migrate *m, bool stop_early, mt_phase until,
                            mt_old_after old_after);
/* The operator's migration back, from a finished migration (phase
 * use_new_hide_metadata, run done): checks that the account that plays
 * old now holds no table with rows (409 ReverseTargetNotEmpty naming it:
 * --old-after keep left the rollback copy there, which must go first) and
 * creates its missing tables, then starts a run whose first push swaps the
 * roles (cfg_authority_push_swap) and which then migrates as any run does,
 * into the account that played old. 409 MigrationNotDone before the
 * migration is done, MigrationRunning while a run runs. */
mt_status cfg_migrate_reverse(cfg_migrate *m, mt_old_after old_after);
/* Asks the running run to pause at its next checkpoint; 409
 * MigrationNotRunning when none runs. */
mt_status cfg_migrate_pause(cfg_migrate *m);
/* The same without the answer: for a replica that stops leading and a
 * process that stops. */
void cfg_migrate_stop_soon(cfg_migrate *m);
/* Whether the last run stopped because this replica stopped leading, and
 * no run was started since; true once (the caller resumes it while it
 * leads again: a lapse of its own beats shorter than the leader's watch
 * shows no change of leader). */
bool cfg_migrate_lost_lead(cfg_migrate *m);
/* Joins a finished run's thread, if any. */
void cfg_migrate_join(cfg_migrate *m);
/* A verify pass for the current phase (blocking); its report is kept. */
mt_status cfg_migrate_verify(cfg_migrate *m, mt_verify_report *rep);
/* Saves the state (state, copy flags, checkpoint, counters) to the store. */
void cfg_migrate_save(cfg_migrate *m);

/* The run as the status shows it. */
typedef struct cfg_migrate_info {
    cfg_migration_state state;
    bool running;
    bool copy_done;     /* a copy completed in this migration */
    bool copy_verified; /* and a verify pass proved it: phase 3 may follow */
    mt_migrator_stats stats;
    char error[256];
    bool have_verify;
    mt_verify_report verify; /* the last verify pass */
    mt_old_after old_after;  /* what the cleanup makes of old */
} cfg_migrate_info;
void cfg_migrate_info_get(cfg_migrate *m, cfg_migrate_info *out);
/* The rows the step in state s has moved: copied, or cleaned (both sides). */
int64_t cfg_migrate_moved(cfg_migration_state s, const mt_migrator_stats *stats);

/* The phase rules. Why the run may not be started (resume false) or
 * resumed (resume true) now, as a 409 code and a message; NULL when it
 * may. */
const char *cfg_migrate_start_refusal(cfg_migrate *m, bool resume, char *msg, size_t cap);
/* Why an operator may not move the phase from `from` to `want`, or NULL:
 * not while a run moves the phases itself, one step at a time, back only
 * from prefer_old, and use_new_with_tombstones only after a copy a verify
 * pass proved. */
const char *cfg_migrate_phase_refusal(cfg_migrate *m, mt_phase from, mt_phase want);
/* An operator's push under those rules, one at a time with the run's own:
 * 409 PhaseTransitionNotAllowed with the reason, or the push's status.
 * *from is the phase it started from. */
mt_status cfg_migrate_phase(cfg_migrate *m, mt_phase want, mt_phase *from);
/* The step back from prefer_old to use_old_hide_metadata goes through
 * cfg_migrate_phase too; it is refused (409 PhaseTransitionNotAllowed,
 * naming the partition, the fleet left in prefer_old) once a partition is
 * switched. */

/* Gives up a migration that has switched no partition (phases 0 and 1): a
 * running run is paused first; the fleet steps back to phase 0; the
 * protocol rows prefer_old's writes left in old are deleted (counted in
 * *removed); the run's progress is forgotten. 409 AbortNotAllowed from
 * prefer_new on; 409 PhaseTransitionNotAllowed when a partition turned out
 * switched. Blocking. */
mt_status cfg_migrate_abort(cfg_migrate *m, int64_t *removed);

#endif

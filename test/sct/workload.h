/*
 * workload.h -- the scenarios the tester runs: who the actors are, what they
 * do, and what is checked afterwards.
 */
#ifndef SCT_WORKLOAD_H
#define SCT_WORKLOAD_H

#include <stdio.h>

#include "history.h"
#include "sched.h"

typedef enum sct_verdict_kind {
    SCT_VERDICT_OK,
    SCT_VERDICT_LINEARIZABILITY,
    SCT_VERDICT_STREAM,
    SCT_VERDICT_LIVENESS,
    SCT_VERDICT_CRASH,     /* an actor misused the runtime or crashed */
    SCT_VERDICT_MIGRATION, /* the migrator failed or left protocol data */
} sct_verdict_kind;

const char *sct_verdict_name(sct_verdict_kind k);

typedef struct sct_verdict {
    sct_verdict_kind kind;
    char why[512];
} sct_verdict;

typedef struct sct_scenario sct_scenario;

/* The scenarios, NULL-terminated. */
const sct_scenario *const *sct_scenarios(void);
const sct_scenario *sct_scenario_find(const char *name);
const char *sct_scenario_name(const sct_scenario *sc);
const char *sct_scenario_about(const sct_scenario *sc);
/* How many of every ten executions scenario "all" gives it (0: none, e.g.
 * the deliberately broken demos). */
int sct_scenario_share(const sct_scenario *sc);

/* Runs one execution of sc under s and judges it. With keep_history, the
 * history is left in *h for printing (cleared by the caller). */
sct_verdict sct_execute(sct_sched *s, const sct_scenario *sc, uint64_t seed,
                        sct_strategy strategy, int pct_depth, uint64_t max_steps,
                        sct_history *h);

/* Prints a history readably. */
void sct_history_print(const sct_history *h, sct_sched *s, FILE *out);

#endif

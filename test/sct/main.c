/*
 * main.c -- mt-sct, the systematic concurrency tester's command line.
 *
 *   mt-sct --list-bugs | --list-scenarios   (a bug: its name and the scenario
 *                                           that finds it)
 *   mt-sct [--bug NAME] [--strategy random|pct|portfolio] [--seed S]
 *          [--iterations N] [--scenario NAME|all] [--pct-depth D]
 *          [--max-steps N]
 *   mt-sct --replay SEED [same options]
 *
 * Execution i of a run uses seed mix(S)+i, where mix scrambles S so that
 * runs from nearby seeds explore unrelated executions; the seed printed is
 * that execution seed. Everything an execution does follows
 * from its seed and the options: the portfolio strategy takes PCT for odd
 * seeds and the random walk for even ones, and scenario "all" (the default)
 * deals seeds out to the scenarios by their shares. So a seed printed with a
 * violation replays exactly with --replay and the same options.
 *
 * Output contract: the first violation prints a line starting with
 * "VIOLATION <kind>" and the seed, then the trace and the history, and the
 * exit status is 1; otherwise "OK <N> iterations" and status 0.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SCT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SCT_SANITIZED 1
#endif
#endif
#ifdef SCT_SANITIZED
#include <sanitizer/common_interface_defs.h>
#endif

#include "history.h"
#include "mt_bugs.h"
#include "sched.h"
#include "workload.h"

/* PCT's horizon is pinned, not adaptive, so that a seed alone replays. It is
 * about the length of a typical execution of the scenarios. */
#define PCT_HORIZON 600

typedef struct opts {
    mt_bug bug;
    int strategy; /* -1 = portfolio */
    uint64_t seed;
    uint64_t iterations;
    const sct_scenario *scenario; /* NULL = all */
    int pct_depth;
    uint64_t max_steps;
    bool replay;
} opts;

static volatile uint64_t current_seed;
static const char *current_scenario = "";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mt-sct [--bug NAME] [--strategy random|pct|portfolio] [--seed S]\n"
            "              [--iterations N] [--scenario NAME|all] [--pct-depth D]\n"
            "              [--max-steps N]\n"
            "       mt-sct --replay SEED [options as above]\n"
            "       mt-sct --list-bugs | --list-scenarios\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s)
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end)
        return false;
    *out = v;
    return true;
}

static mt_bug bug_by_name(const char *name)
{
    for (int b = MT_BUG_NONE + 1; b < MT_BUG_COUNT; b++)
        if (strcmp(mt_seeded_bug_name((mt_bug)b), name) == 0)
            return (mt_bug)b;
    return MT_BUG_COUNT;
}

/* Scenario "all" deals executions out by the scenarios' shares: cheap
 * scenarios that reach deep bugs get more of them. */
static const sct_scenario *scenario_for(const opts *o, uint64_t seed)
{
    if (o->scenario)
        return o->scenario;
    int total = 0;
    for (const sct_scenario *const *sc = sct_scenarios(); *sc; sc++)
        total += sct_scenario_share(*sc);
    int pick = (int)((seed >> 1) % (uint64_t)total); /* bit 0 picks the strategy */
    for (const sct_scenario *const *sc = sct_scenarios(); *sc; sc++) {
        pick -= sct_scenario_share(*sc);
        if (pick < 0)
            return *sc;
    }
    return sct_scenarios()[0];
}

static sct_strategy strategy_for(const opts *o, uint64_t seed)
{
    if (o->strategy >= 0)
        return (sct_strategy)o->strategy;
    return (seed & 1) ? SCT_STRATEGY_PCT : SCT_STRATEGY_RANDOM;
}

static int parse_args(int argc, char **argv, opts *o)
{
    *o = (opts){.strategy = -1, .seed = 1, .iterations = 1000, .pct_depth = 3,
                .max_steps = 20000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--list-bugs") == 0) {
            for (int b = MT_BUG_NONE + 1; b < MT_BUG_COUNT; b++)
                printf("%s %s\n", mt_seeded_bug_name((mt_bug)b), mt_seeded_bug_scenario((mt_bug)b));
            return 0;
        } else if (strcmp(a, "--list-scenarios") == 0) {
            for (const sct_scenario *const *sc = sct_scenarios(); *sc; sc++)
                printf("%s\n", sct_scenario_name(*sc));
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "mt-sct: %s needs a value\n", a);
            return 2;
        }
        i++;
        uint64_t n = 0;
        if (strcmp(a, "--bug") == 0) {
            o->bug = bug_by_name(v);
            if (o->bug == MT_BUG_COUNT) {
                fprintf(stderr, "mt-sct: unknown bug '%s' (see --list-bugs)\n", v);
                return 2;
            }
        } else if (strcmp(a, "--strategy") == 0) {
            if (strcmp(v, "random") == 0)
                o->strategy = SCT_STRATEGY_RANDOM;
            else if (strcmp(v, "pct") == 0)
                o->strategy = SCT_STRATEGY_PCT;
            else if (strcmp(v, "portfolio") == 0)
                o->strategy = -1;
            else {
                fprintf(stderr, "mt-sct: unknown strategy '%s'\n", v);
                return 2;
            }
        } else if (strcmp(a, "--scenario") == 0) {
            o->scenario = strcmp(v, "all") == 0 ? NULL : sct_scenario_find(v);
            if (!o->scenario && strcmp(v, "all") != 0) {
                fprintf(stderr, "mt-sct: unknown scenario '%s' (see --list-scenarios)\n", v);
                return 2;
            }
        } else if (parse_u64(v, &n) && strcmp(a, "--seed") == 0) {
            o->seed = n;
        } else if (parse_u64(v, &n) && strcmp(a, "--replay") == 0) {
            o->seed = n;
            o->replay = true;
        } else if (parse_u64(v, &n) && n > 0 && strcmp(a, "--iterations") == 0) {
            o->iterations = n;
        } else if (parse_u64(v, &n) && n > 0 && n < 100 && strcmp(a, "--pct-depth") == 0) {
            o->pct_depth = (int)n;
        } else if (parse_u64(v, &n) && n > 0 && strcmp(a, "--max-steps") == 0) {
            o->max_steps = n;
        } else {
            fprintf(stderr, "mt-sct: bad option or value: %s %s\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

/* A crash inside an actor still names its seed. */
static void on_fatal_signal(int sig)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf,
                     "VIOLATION crash seed=%" PRIu64 " scenario=%s bug=%s: %s\n",
                     (uint64_t)current_seed, current_scenario,
                     mt_seeded_bug ? mt_seeded_bug_name(mt_seeded_bug) : "none",
                     sig == SIGABRT ? "aborted (or a sanitizer report above)" : strsignal(sig));
    if (n > 0)
        (void)!write(STDOUT_FILENO, buf, (size_t)n);
    _exit(1);
}

#ifdef SCT_SANITIZED
/* A memory error the sanitizer caught inside an execution is a crash of
 * that execution: name the seed that replays it. */
static void on_sanitizer_death(void)
{
    on_fatal_signal(SIGABRT);
}
#endif

static void install_crash_handler(void)
{
#ifdef SCT_SANITIZED
    __sanitizer_set_death_callback(on_sanitizer_death);
#endif
    static char altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    struct sigaction sa = {.sa_handler = on_fatal_signal, .sa_flags = SA_ONSTACK};
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaction(sigs[i], &sa, NULL);
}

static sct_verdict run_one(sct_sched *s, const opts *o, uint64_t seed, bool trace,
                           sct_history *h)
{
    const sct_scenario *sc = scenario_for(o, seed);
    current_seed = seed;
    current_scenario = sct_scenario_name(sc);
    mt_seeded_bug = o->bug;
    sct_sched_set_trace(s, trace);
    sct_sched_set_pct_horizon(s, PCT_HORIZON);
    return sct_execute(s, sc, seed, strategy_for(o, seed), o->pct_depth, o->max_steps, h);
}

static void print_replay_hint(const opts *o, uint64_t seed)
{
    printf("replay: mt-sct --replay %" PRIu64, seed);
    if (o->bug)
        printf(" --bug %s", mt_seeded_bug_name(o->bug));
    if (o->scenario)
        printf(" --scenario %s", sct_scenario_name(o->scenario));
    if (o->strategy >= 0)
        printf(" --strategy %s", sct_strategy_name((sct_strategy)o->strategy));
    if (o->pct_depth != 3)
        printf(" --pct-depth %d", o->pct_depth);
    printf("\n");
}

static void print_violation(sct_sched *s, const opts *o, uint64_t seed, const sct_verdict *v)
{
    printf("VIOLATION %s seed=%" PRIu64 " strategy=%s scenario=%s bug=%s: %s\n",
           sct_verdict_name(v->kind), seed, sct_strategy_name(strategy_for(o, seed)),
           sct_scenario_name(scenario_for(o, seed)),
           o->bug ? mt_seeded_bug_name(o->bug) : "none", v->why);
    print_replay_hint(o, seed);
    (void)s;
}

/* Runs seed again with tracing on and prints the trace and the history. */
static sct_verdict print_trace(sct_sched *s, const opts *o, uint64_t seed)
{
    sct_history h = {0};
    sct_verdict v = run_one(s, o, seed, true, &h);
    printf("--- trace (seed %" PRIu64 ", %s, scenario %s) ---\n", seed,
           sct_strategy_name(strategy_for(o, seed)), sct_scenario_name(scenario_for(o, seed)));
    fputs(sct_sched_trace_text(s), stdout);
    printf("--- history ---\n");
    sct_history_print(&h, s, stdout);
    sct_history_clear(&h);
    return v;
}

/* splitmix64's finalizer: a bijection that scatters nearby inputs. */
static uint64_t mix_seed(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return (x ^ (x >> 31)) >> 1; /* keep it readable as a positive number */
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    install_crash_handler();
    sct_sched *s = sct_sched_new();

    if (o.replay) {
        sct_verdict v = print_trace(s, &o, o.seed);
        if (v.kind != SCT_VERDICT_OK)
            print_violation(s, &o, o.seed, &v);
        else
            printf("OK 1 iterations\n");
        sct_sched_free(s);
        return v.kind == SCT_VERDICT_OK ? 0 : 1;
    }

    double t0 = now_seconds();
    uint64_t steps = 0;
    for (uint64_t i = 0; i < o.iterations; i++) {
        uint64_t seed = mix_seed(o.seed) + i;
        sct_history h = {0};
        sct_verdict v = run_one(s, &o, seed, false, &h);
        steps += sct_sched_steps(s);
        sct_history_clear(&h);
        if (v.kind != SCT_VERDICT_OK) {
            print_violation(s, &o, seed, &v);
            printf("found after %" PRIu64 " executions in %.2f s\n", i + 1,
                   now_seconds() - t0);
            print_trace(s, &o, seed);
            sct_sched_free(s);
            return 1;
        }
    }
    double dt = now_seconds() - t0;
    printf("OK %" PRIu64 " iterations\n", o.iterations);
    printf("%.0f executions/s, %.0f scheduling points per execution, %.2f s\n",
           (double)o.iterations / dt, (double)steps / (double)o.iterations, dt);
    sct_sched_free(s);
    return 0;
}

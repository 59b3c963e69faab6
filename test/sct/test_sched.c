/*
 * test_sched.c -- tests of the deterministic scheduler.
 *
 * Each test runs a tiny program under the scheduler for many seeds, since a
 * scheduler bug usually shows in a few interleavings only. Programs are
 * written against the mt_rt the scheduler hands out, exactly as the core
 * is, plus explicit points where a race needs room to happen. The last test
 * prints a throughput figure and asserts nothing about it: timing on a
 * shared machine is not a pass/fail signal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "sched.h"

#define SEEDS 300
#define MAX_STEPS 100000

static const sct_strategy strategies[] = {SCT_STRATEGY_RANDOM, SCT_STRATEGY_PCT};

/* ------------------------------------------------------------------------ */
/* Mutual exclusion: workers increment a counter with a point between the   */
/* read and the write; a lost update or two actors inside means a bug.       */

typedef struct excl_ctx {
    sct_sched *s;
    mt_rt *rt;
    mt_mutex *m;
    int iters;
    int inside;
    int counter;
    int violations;
} excl_ctx;

static void *excl_worker(void *p)
{
    excl_ctx *c = p;
    for (int i = 0; i < c->iters; i++) {
        c->rt->ops->lock(c->rt, c->m);
        if (c->inside)
            c->violations++;
        c->inside = 1;
        int v = c->counter;
        sct_point(c->s, "read");
        c->counter = v + 1;
        c->inside = 0;
        c->rt->ops->unlock(c->rt, c->m);
        sct_point(c->s, "outside");
    }
    return NULL;
}

static void *excl_main(void *p)
{
    excl_ctx *c = p;
    static const char *names[] = {"w1", "w2", "w3"};
    mt_thread *t[3];
    c->m = c->rt->ops->mutex_new(c->rt);
    for (int i = 0; i < 3; i++)
        t[i] = c->rt->ops->thread_start(c->rt, excl_worker, c, names[i]);
    for (int i = 0; i < 3; i++)
        c->rt->ops->thread_join(c->rt, t[i]);
    c->rt->ops->mutex_free(c->rt, c->m);
    return NULL;
}

static sct_run_result run_excl(sct_sched *s, uint64_t seed, sct_strategy st, excl_ctx *c)
{
    memset(c, 0, sizeof *c);
    c->s = s;
    c->rt = sct_sched_rt(s);
    c->iters = 5;
    return sct_sched_run(s, seed, st, 3, MAX_STEPS, excl_main, c);
}

static void test_mutual_exclusion(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    for (size_t k = 0; k < 2; k++) {
        int contended = 0;
        for (uint64_t seed = 1; seed <= SEEDS; seed++) {
            excl_ctx c;
            assert_int_equal(run_excl(s, seed, strategies[k], &c), SCT_RUN_OK);
            assert_int_equal(c.violations, 0);
            assert_int_equal(c.counter, 3 * c.iters);
            contended += strstr(sct_sched_trace_text(s), "blocks (held by") != NULL;
        }
        /* The test means something only if actors really met at the lock. */
        printf("%s: lock contended in %d of %d executions\n", sct_strategy_name(strategies[k]),
               contended, SEEDS);
        assert_true(contended > 0);
    }
    sct_sched_free(s);
}

/* ------------------------------------------------------------------------ */
/* Conditions: waiters sleep until a flag is set and broadcast.              */

typedef struct cond_ctx {
    mt_rt *rt;
    sct_sched *s;
    mt_mutex *m;
    mt_cond *cv;
    int flag;
    int woke;
} cond_ctx;

static void *cond_waiter(void *p)
{
    cond_ctx *c = p;
    c->rt->ops->lock(c->rt, c->m);
    while (!c->flag)
        c->rt->ops->cond_wait(c->rt, c->cv, c->m);
    c->woke++;
    c->rt->ops->unlock(c->rt, c->m);
    return NULL;
}

static void *cond_main(void *p)
{
    cond_ctx *c = p;
    static const char *names[] = {"waiter1", "waiter2", "waiter3"};
    mt_thread *t[3];
    c->m = c->rt->ops->mutex_new(c->rt);
    c->cv = c->rt->ops->cond_new(c->rt);
    for (int i = 0; i < 3; i++)
        t[i] = c->rt->ops->thread_start(c->rt, cond_waiter, c, names[i]);
    sct_point(c->s, "before signal");
    c->rt->ops->lock(c->rt, c->m);
    c->flag = 1;
    c->rt->ops->cond_broadcast(c->rt, c->cv);
    c->rt->ops->unlock(c->rt, c->m);
    for (int i = 0; i < 3; i++)
        c->rt->ops->thread_join(c->rt, t[i]);
    c->rt->ops->cond_free(c->rt, c->cv);
    c->rt->ops->mutex_free(c->rt, c->m);
    return NULL;
}

static void test_cond_broadcast_wakes_waiters(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    for (size_t k = 0; k < 2; k++) {
        int waited = 0, woken = 0;
        for (uint64_t seed = 1; seed <= SEEDS; seed++) {
            cond_ctx c = {.rt = sct_sched_rt(s), .s = s};
            sct_run_result r = sct_sched_run(s, seed, strategies[k], 2, MAX_STEPS, cond_main, &c);
            assert_int_equal(r, SCT_RUN_OK);
            assert_int_equal(c.woke, 3);
            const char *trace = sct_sched_trace_text(s);
            waited += strstr(trace, "wait c1, unlock m1") != NULL;
            woken += strstr(trace, "broadcast c1, wakes") != NULL;
        }
        assert_true(waited > 0);
        assert_true(woken > 0);
    }
    sct_sched_free(s);
}

/* ------------------------------------------------------------------------ */
/* Join returns the thread's result, whether it finished first or not.      */

typedef struct join_ctx {
    mt_rt *rt;
    sct_sched *s;
    intptr_t got;
} join_ctx;

static void *join_child(void *p)
{
    join_ctx *c = p;
    sct_point(c->s, "child works");
    return (void *)(intptr_t)42;
}

static void *join_main(void *p)
{
    join_ctx *c = p;
    mt_thread *t = c->rt->ops->thread_start(c->rt, join_child, c, "child");
    c->got = (intptr_t)c->rt->ops->thread_join(c->rt, t);
    return NULL;
}

static void test_join_returns_result(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    int blocked = 0;
    for (uint64_t seed = 1; seed <= 100; seed++) {
        join_ctx c = {.rt = sct_sched_rt(s), .s = s};
        assert_int_equal(sct_sched_run(s, seed, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, join_main, &c),
                         SCT_RUN_OK);
        assert_int_equal(c.got, 42);
        assert_int_equal(sct_sched_actor_count(s), 2);
        assert_string_equal(sct_sched_actor_name(s, 1), "child");
        blocked += strstr(sct_sched_trace_text(s), "join child blocks") != NULL;
    }
    assert_true(blocked > 0 && blocked < 100);
    sct_sched_free(s);
}

/* ------------------------------------------------------------------------ */
/* Determinism: the same seed gives the same trace, byte for byte.           */

static void test_same_seed_same_trace(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    sct_sched_set_pct_horizon(s, 250); /* a PCT replay pins the horizon */
    for (size_t k = 0; k < 2; k++) {
        for (uint64_t seed = 1; seed <= 20; seed++) {
            excl_ctx c;
            run_excl(s, seed, strategies[k], &c);
            char *first = strdup(sct_sched_trace_text(s));
            run_excl(s, seed + 1000, strategies[k], &c); /* disturb */
            run_excl(s, seed, strategies[k], &c);
            assert_string_equal(first, sct_sched_trace_text(s));
            free(first);
        }
    }
    sct_sched_free(s);
}

static void test_different_seeds_differ(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    for (size_t k = 0; k < 2; k++) {
        char *traces[20];
        int distinct = 0;
        for (int i = 0; i < 20; i++) {
            excl_ctx c;
            run_excl(s, (uint64_t)i + 1, strategies[k], &c);
            /* Skip the header line, which names the seed. */
            traces[i] = strdup(strchr(sct_sched_trace_text(s), '\n'));
            bool seen = false;
            for (int j = 0; j < i && !seen; j++)
                seen = strcmp(traces[i], traces[j]) == 0;
            distinct += !seen;
        }
        assert_true(distinct >= 10);
        for (int i = 0; i < 20; i++)
            free(traces[i]);
    }
    sct_sched_free(s);
}

/* ------------------------------------------------------------------------ */
/* Data choices through sct_sched_rand replay with the seed.                 */

static void *rand_main(void *p)
{
    uint64_t *out = p;
    sct_sched *s = (sct_sched *)(uintptr_t)out[0];
    for (int i = 1; i < 9; i++)
        out[i] = sct_sched_rand(s, 1000);
    return NULL;
}

static void test_rand_replays(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    uint64_t a[9] = {(uintptr_t)s}, b[9] = {(uintptr_t)s}, c[9] = {(uintptr_t)s};
    sct_sched_run(s, 7, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, rand_main, a);
    sct_sched_run(s, 8, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, rand_main, b);
    sct_sched_run(s, 7, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, rand_main, c);
    assert_memory_equal(a, c, sizeof a);
    assert_memory_not_equal(a + 1, b + 1, sizeof a - sizeof a[0]);
    for (int i = 1; i < 9; i++)
        assert_true(a[i] < 1000);
    assert_int_equal(sct_sched_rand(s, 1), 0);
    sct_sched_free(s);
}

/* ------------------------------------------------------------------------ */
/* The logical clocks.                                                        */

typedef struct clock_ctx {
    mt_rt *rt;
    sct_sched *s;
    int64_t ticks[10];
    uint64_t stamps[10];
} clock_ctx;

static void *clock_main(void *p)
{
    clock_ctx *c = p;
    for (int i = 0; i < 10; i++) {
        c->stamps[i] = sct_sched_clock(c->s);
        c->ticks[i] = c->rt->ops->now_ticks(c->rt);
    }
    return NULL;
}

static void test_clocks_increase(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    clock_ctx c = {.rt = sct_sched_rt(s), .s = s};
    sct_sched_run(s, 1, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, clock_main, &c);
    assert_true(c.ticks[0] > SCT_CLOCK_BASE_TICKS);
    for (int i = 1; i < 10; i++) {
        assert_true(c.ticks[i] > c.ticks[i - 1]);
        assert_true(c.stamps[i] > c.stamps[i - 1] + 1); /* the point bumped */
    }
    clock_ctx d = {.rt = sct_sched_rt(s), .s = s};
    sct_sched_run(s, 2, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, clock_main, &d);
    assert_memory_equal(c.ticks, d.ticks, sizeof c.ticks); /* restarts */
    sct_sched_free(s);
}

/* ------------------------------------------------------------------------ */
/* Liveness: deadlocks and endless runs are failures, with a report.        */

typedef struct stuck_ctx {
    mt_rt *rt;
    sct_sched *s;
    mt_mutex *m;
    mt_mutex *m2;
    mt_cond *cv;
} stuck_ctx;

static void *sleeper(void *p)
{
    stuck_ctx *c = p;
    c->rt->ops->lock(c->rt, c->m);
    c->rt->ops->cond_wait(c->rt, c->cv, c->m); /* nobody signals */
    c->rt->ops->unlock(c->rt, c->m);
    return NULL;
}

static void *sleeper_main(void *p)
{
    stuck_ctx *c = p;
    c->m = c->rt->ops->mutex_new(c->rt);
    c->cv = c->rt->ops->cond_new(c->rt);
    mt_thread *t = c->rt->ops->thread_start(c->rt, sleeper, c, "sleeper");
    c->rt->ops->thread_join(c->rt, t);
    return NULL;
}

static void test_unsignalled_wait_is_deadlock(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    for (size_t k = 0; k < 2; k++) {
        for (uint64_t seed = 1; seed <= 50; seed++) {
            stuck_ctx c = {.rt = sct_sched_rt(s), .s = s};
            assert_int_equal(sct_sched_run(s, seed, strategies[k], 2, MAX_STEPS, sleeper_main, &c),
                             SCT_RUN_DEADLOCK);
            const char *rep = sct_sched_report(s);
            assert_non_null(strstr(rep, "sleeper in wait c1"));
            assert_non_null(strstr(rep, "main in join sleeper"));
            assert_non_null(strstr(sct_sched_trace_text(s), "deadlock:"));
        }
    }
    sct_sched_free(s); /* frees the mutex and condition left behind */
}

static void *abba_a(void *p)
{
    stuck_ctx *c = p;
    c->rt->ops->lock(c->rt, c->m);
    sct_point(c->s, "between");
    c->rt->ops->lock(c->rt, c->m2);
    c->rt->ops->unlock(c->rt, c->m2);
    c->rt->ops->unlock(c->rt, c->m);
    return NULL;
}

static void *abba_b(void *p)
{
    stuck_ctx *c = p;
    c->rt->ops->lock(c->rt, c->m2);
    sct_point(c->s, "between");
    c->rt->ops->lock(c->rt, c->m);
    c->rt->ops->unlock(c->rt, c->m);
    c->rt->ops->unlock(c->rt, c->m2);
    return NULL;
}

static void *abba_main(void *p)
{
    stuck_ctx *c = p;
    c->m = c->rt->ops->mutex_new(c->rt);
    c->m2 = c->rt->ops->mutex_new(c->rt);
    mt_thread *a = c->rt->ops->thread_start(c->rt, abba_a, c, "ab");
    mt_thread *b = c->rt->ops->thread_start(c->rt, abba_b, c, "ba");
    c->rt->ops->thread_join(c->rt, a);
    c->rt->ops->thread_join(c->rt, b);
    c->rt->ops->mutex_free(c->rt, c->m);
    c->rt->ops->mutex_free(c->rt, c->m2);
    return NULL;
}

static void test_lock_order_deadlock_found(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    int ok = 0, dead = 0;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        stuck_ctx c = {.rt = sct_sched_rt(s), .s = s};
        sct_run_result r = sct_sched_run(s, seed, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, abba_main, &c);
        if (r == SCT_RUN_OK) {
            ok++;
            continue;
        }
        assert_int_equal(r, SCT_RUN_DEADLOCK);
        const char *rep = sct_sched_report(s);
        assert_non_null(strstr(rep, "ab in lock m2 (held by ba)"));
        assert_non_null(strstr(rep, "ba in lock m1 (held by ab)"));
        dead++;
    }
    assert_true(ok > 0 && dead > 0);
    sct_sched_free(s);
}

static void *spin_main(void *p)
{
    sct_sched *s = p;
    for (;;)
        sct_point(s, "spin");
    return NULL;
}

static void *noop_main(void *p)
{
    sct_point(p, "once");
    return NULL;
}

static void test_endless_run_hits_step_bound(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    assert_int_equal(sct_sched_run(s, 1, SCT_STRATEGY_RANDOM, 1, 1000, spin_main, s),
                     SCT_RUN_STEP_BOUND);
    assert_int_equal(sct_sched_steps(s), 1001);
    assert_non_null(strstr(sct_sched_report(s), "step bound"));
    assert_int_equal(sct_sched_run(s, 1, SCT_STRATEGY_PCT, 3, 1000, spin_main, s),
                     SCT_RUN_STEP_BOUND);
    /* Still usable afterwards. */
    assert_int_equal(sct_sched_run(s, 1, SCT_STRATEGY_RANDOM, 1, 1000, noop_main, s), SCT_RUN_OK);
    assert_string_equal(sct_sched_report(s), "");
    sct_sched_free(s);
}

/* ------------------------------------------------------------------------ */
/* Misuse of the runtime fails the execution instead of the process.        */

static void *bad_unlock_main(void *p)
{
    stuck_ctx *c = p;
    c->m = c->rt->ops->mutex_new(c->rt);
    c->rt->ops->unlock(c->rt, c->m);
    return NULL;
}

static void *abort_main(void *p)
{
    sct_sched_abort(p, "invariant %d broken", 7);
    return NULL;
}

static void test_misuse_and_abort(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    stuck_ctx c = {.rt = sct_sched_rt(s), .s = s};
    assert_int_equal(sct_sched_run(s, 1, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, bad_unlock_main, &c),
                     SCT_RUN_ABORTED);
    assert_non_null(strstr(sct_sched_report(s), "misuse by main: unlock m1"));
    assert_int_equal(sct_sched_run(s, 1, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, abort_main, s),
                     SCT_RUN_ABORTED);
    assert_string_equal(sct_sched_report(s), "abort by main: invariant 7 broken");
    sct_sched_free(s);
}

/* Shared state is set up outside an execution, then used inside one. */
static void test_setup_outside_execution(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    mt_rt *rt = sct_sched_rt(s);
    excl_ctx c = {.s = s, .rt = rt, .iters = 3};
    mt_mutex *m = rt->ops->mutex_new(rt);
    rt->ops->lock(rt, m);
    rt->ops->unlock(rt, m);
    assert_int_equal(sct_sched_current(s), -1);
    c.m = m;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        c.counter = 0;
        assert_int_equal(sct_sched_run(s, seed, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, excl_worker, &c),
                         SCT_RUN_OK);
        assert_int_equal(c.counter, 3);
    }
    assert_non_null(strstr(sct_sched_trace_text(s), "lock gm1"));
    rt->ops->mutex_free(rt, m);
    sct_sched_free(s);
}

/* ------------------------------------------------------------------------ */
/* Reuse: many executions, some abandoned, and the stack pool stays put.     */

static void test_reuse_many_executions(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    sct_sched_set_trace(s, false);
    for (uint64_t i = 0; i < 10000; i++) {
        stuck_ctx st = {.rt = sct_sched_rt(s), .s = s};
        excl_ctx ex;
        switch (i % 4) {
        case 0:
            assert_int_equal(run_excl(s, i, strategies[i / 4 % 2], &ex), SCT_RUN_OK);
            break;
        case 1:
            assert_int_equal(
                sct_sched_run(s, i, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, sleeper_main, &st),
                SCT_RUN_DEADLOCK);
            break;
        case 2:
            assert_int_equal(sct_sched_run(s, i, SCT_STRATEGY_PCT, 2, 50, spin_main, s),
                             SCT_RUN_STEP_BOUND);
            break;
        default:
            sct_sched_run(s, i, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, abba_main, &st);
            break;
        }
    }
    /* At most four actors were ever alive at once. */
    assert_true(sct_sched_stack_count(s) <= 4);
    sct_sched_free(s);
}

/* ------------------------------------------------------------------------ */
/* PCT finds a check-then-act race that needs one preemption in one exact  */
/* place, among a couple of hundred points of unrelated work.               */

typedef struct race_ctx {
    mt_rt *rt;
    sct_sched *s;
    int balance;
} race_ctx;

static void *race_withdraw(void *p)
{
    race_ctx *c = p;
    for (int i = 0; i < 50; i++)
        sct_point(c->s, "work");
    if (c->balance >= 10) {
        sct_point(c->s, "checked");
        c->balance -= 10;
    }
    for (int i = 0; i < 50; i++)
        sct_point(c->s, "work");
    return NULL;
}

static void *race_main(void *p)
{
    race_ctx *c = p;
    c->balance = 10;
    mt_thread *a = c->rt->ops->thread_start(c->rt, race_withdraw, c, "alice");
    mt_thread *b = c->rt->ops->thread_start(c->rt, race_withdraw, c, "bob");
    c->rt->ops->thread_join(c->rt, a);
    c->rt->ops->thread_join(c->rt, b);
    return NULL;
}

/* Executions until the balance goes negative, or 0 if it never does. */
static int race_hunt(int depth, int budget)
{
    sct_sched *s = sct_sched_new();
    sct_sched_set_trace(s, false);
    int found = 0;
    for (int i = 1; i <= budget && !found; i++) {
        race_ctx c = {.rt = sct_sched_rt(s), .s = s};
        assert_int_equal(
            sct_sched_run(s, (uint64_t)i, SCT_STRATEGY_PCT, depth, MAX_STEPS, race_main, &c),
            SCT_RUN_OK);
        if (c.balance < 0)
            found = i;
    }
    sct_sched_free(s);
    return found;
}

static void test_pct_finds_check_then_act(void **state)
{
    (void)state;
    /* Depth 1 never preempts, so it can never see the bug. */
    assert_int_equal(race_hunt(1, 300), 0);
    int found = race_hunt(2, 2000);
    printf("pct depth 2 found the check-then-act race at execution %d\n", found);
    assert_true(found > 0 && found <= 1000);
}

/* ------------------------------------------------------------------------ */
/* Virtual time: timed waits, time passing when everyone waits, and the     */
/* strategy's jumps.                                                          */

typedef struct time_ctx {
    mt_rt *rt;
    sct_sched *s;
    mt_mutex *m;
    mt_cond *cv;
    bool flag;
    int64_t deadline[3];
    int64_t woke_at[3];
    bool result[3];
    int spins;         /* points the spinner has taken */
    int spins_at_wake; /* ... when the sleeper woke */
} time_ctx;

typedef struct time_arg {
    time_ctx *c;
    int i;
} time_arg;

static void *timed_sleeper(void *p)
{
    time_arg *a = p;
    time_ctx *c = a->c;
    c->rt->ops->lock(c->rt, c->m);
    c->result[a->i] = c->rt->ops->cond_timedwait(c->rt, c->cv, c->m, c->deadline[a->i]);
    c->woke_at[a->i] = c->rt->ops->mono_ms(c->rt);
    c->spins_at_wake = c->spins;
    c->rt->ops->unlock(c->rt, c->m);
    return NULL;
}

static void *three_sleepers_main(void *p)
{
    time_ctx *c = p;
    time_arg args[3];
    mt_thread *t[3];
    c->m = c->rt->ops->mutex_new(c->rt);
    c->cv = c->rt->ops->cond_new(c->rt);
    for (int i = 0; i < 3; i++) {
        args[i] = (time_arg){c, i};
        t[i] = c->rt->ops->thread_start(c->rt, timed_sleeper, &args[i], "sleeper");
    }
    for (int i = 0; i < 3; i++)
        c->rt->ops->thread_join(c->rt, t[i]);
    c->rt->ops->cond_free(c->rt, c->cv);
    c->rt->ops->mutex_free(c->rt, c->m);
    return NULL;
}

/* Nobody signals: that is waiting, not a deadlock. Time moves to each
 * deadline in turn, exactly, and every wait reports that it timed out. */
static void test_timed_waits_end_at_their_deadlines(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    for (size_t k = 0; k < 2; k++) {
        for (uint64_t seed = 1; seed <= SEEDS; seed++) {
            time_ctx c = {.rt = sct_sched_rt(s), .s = s, .deadline = {300, 100, 200}};
            assert_int_equal(
                sct_sched_run(s, seed, strategies[k], 2, MAX_STEPS, three_sleepers_main, &c),
                SCT_RUN_OK);
            for (int i = 0; i < 3; i++) {
                assert_false(c.result[i]);
                assert_int_equal(c.woke_at[i], c.deadline[i]);
            }
            assert_int_equal(sct_sched_now_ms(s), 300);
        }
    }
    assert_non_null(strstr(sct_sched_trace_text(s), "time passes (all wait) +100 ms to 100 ms"));
    assert_non_null(strstr(sct_sched_trace_text(s), "timedwait c1 until 300 ms"));
    sct_sched_free(s);
}

static void *flag_waiter(void *p)
{
    time_arg *a = p;
    time_ctx *c = a->c;
    c->rt->ops->lock(c->rt, c->m);
    c->result[0] = true;
    while (!c->flag && c->result[0])
        c->result[0] = c->rt->ops->cond_timedwait(c->rt, c->cv, c->m, 1000);
    c->woke_at[0] = c->rt->ops->mono_ms(c->rt);
    c->rt->ops->unlock(c->rt, c->m);
    return NULL;
}

static void *flag_setter(void *p)
{
    time_ctx *c = p;
    sct_point(c->s, "before");
    c->rt->ops->lock(c->rt, c->m);
    c->flag = true;
    c->rt->ops->cond_broadcast(c->rt, c->cv);
    c->rt->ops->unlock(c->rt, c->m);
    return NULL;
}

static void *flag_main(void *p)
{
    time_ctx *c = p;
    time_arg a = {c, 0};
    c->m = c->rt->ops->mutex_new(c->rt);
    c->cv = c->rt->ops->cond_new(c->rt);
    mt_thread *w = c->rt->ops->thread_start(c->rt, flag_waiter, &a, "waiter");
    mt_thread *t = c->rt->ops->thread_start(c->rt, flag_setter, c, "setter");
    c->rt->ops->thread_join(c->rt, w);
    c->rt->ops->thread_join(c->rt, t);
    c->rt->ops->cond_free(c->rt, c->cv);
    c->rt->ops->mutex_free(c->rt, c->m);
    return NULL;
}

/* A broadcast before the deadline ends a timed wait with true, and no time
 * passes while someone can still run. */
static void test_broadcast_ends_timed_wait(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    for (size_t k = 0; k < 2; k++) {
        for (uint64_t seed = 1; seed <= SEEDS; seed++) {
            time_ctx c = {.rt = sct_sched_rt(s), .s = s};
            assert_int_equal(sct_sched_run(s, seed, strategies[k], 2, MAX_STEPS, flag_main, &c),
                             SCT_RUN_OK);
            assert_true(c.flag);
            assert_true(c.result[0]);
            assert_int_equal(c.woke_at[0], 0);
            assert_int_equal(sct_sched_now_ms(s), 0);
        }
    }
    sct_sched_free(s);
}

static void *passed_main(void *p)
{
    time_ctx *c = p;
    c->m = c->rt->ops->mutex_new(c->rt);
    c->cv = c->rt->ops->cond_new(c->rt);
    c->rt->ops->lock(c->rt, c->m);
    c->result[0] = c->rt->ops->cond_timedwait(c->rt, c->cv, c->m, 0);
    c->rt->ops->unlock(c->rt, c->m); /* still held: no misuse */
    c->woke_at[0] = c->rt->ops->mono_ms(c->rt);
    c->rt->ops->cond_free(c->rt, c->cv);
    c->rt->ops->mutex_free(c->rt, c->m);
    return NULL;
}

static void *mixed_main(void *p)
{
    stuck_ctx *c = p;
    c->m = c->rt->ops->mutex_new(c->rt);
    c->cv = c->rt->ops->cond_new(c->rt);
    mt_thread *t = c->rt->ops->thread_start(c->rt, sleeper, c, "sleeper");
    c->rt->ops->lock(c->rt, c->m);
    while (c->rt->ops->cond_timedwait(c->rt, c->cv, c->m, 50))
        ;
    c->rt->ops->unlock(c->rt, c->m);
    c->rt->ops->thread_join(c->rt, t);
    return NULL;
}

/* A deadline already passed returns at once with the mutex held; a wait
 * without a deadline still deadlocks once the timed ones are over. */
static void test_passed_deadline_and_untimed_deadlock(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    time_ctx c = {.rt = sct_sched_rt(s), .s = s};
    assert_int_equal(sct_sched_run(s, 1, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, passed_main, &c),
                     SCT_RUN_OK);
    assert_false(c.result[0]);
    assert_int_equal(c.woke_at[0], 0);
    assert_non_null(strstr(sct_sched_trace_text(s), "timedwait c1: deadline 0 ms passed"));
    for (size_t k = 0; k < 2; k++) {
        for (uint64_t seed = 1; seed <= 50; seed++) {
            stuck_ctx st = {.rt = sct_sched_rt(s), .s = s};
            assert_int_equal(sct_sched_run(s, seed, strategies[k], 2, MAX_STEPS, mixed_main, &st),
                             SCT_RUN_DEADLOCK);
            assert_int_equal(sct_sched_now_ms(s), 50);
            assert_non_null(strstr(sct_sched_report(s), "sleeper in wait c1"));
            assert_non_null(strstr(sct_sched_report(s), "main in join sleeper"));
        }
    }
    sct_sched_free(s);
}

static void *spinner(void *p)
{
    time_ctx *c = p;
    for (int i = 0; i < 100; i++) {
        sct_point(c->s, "spin");
        c->spins++;
    }
    return NULL;
}

static void *late_main(void *p)
{
    time_ctx *c = p;
    time_arg a = {c, 0};
    c->m = c->rt->ops->mutex_new(c->rt);
    c->cv = c->rt->ops->cond_new(c->rt);
    c->deadline[0] = 500;
    mt_thread *w = c->rt->ops->thread_start(c->rt, timed_sleeper, &a, "sleeper");
    mt_thread *t = c->rt->ops->thread_start(c->rt, spinner, c, "spinner");
    c->rt->ops->thread_join(c->rt, w);
    c->rt->ops->thread_join(c->rt, t);
    c->rt->ops->cond_free(c->rt, c->cv);
    c->rt->ops->mutex_free(c->rt, c->m);
    return NULL;
}

/* Without jumps time passes only when everyone waits, so the sleeper wakes
 * after the spinner is done. With jumps it sometimes wakes while the
 * spinner still runs: the spinner was late. Jumps replay from the seed, and
 * turned off they draw nothing from it. */
static void test_time_jumps_make_actors_late(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    for (size_t k = 0; k < 2; k++) {
        for (uint64_t seed = 1; seed <= 100; seed++) {
            time_ctx c = {.rt = sct_sched_rt(s), .s = s};
            assert_int_equal(sct_sched_run(s, seed, strategies[k], 3, MAX_STEPS, late_main, &c),
                             SCT_RUN_OK);
            assert_int_equal(c.spins_at_wake, 100);
            assert_int_equal(c.woke_at[0], 500);
        }
    }
    char *plain = strdup(sct_sched_trace_text(s));
    sct_sched_set_time_jumps(s, 0, 1000); /* off, explicitly */
    time_ctx c0 = {.rt = sct_sched_rt(s), .s = s};
    sct_sched_run(s, 100, SCT_STRATEGY_PCT, 3, MAX_STEPS, late_main, &c0);
    assert_string_equal(plain, sct_sched_trace_text(s));
    free(plain);

    sct_sched_set_time_jumps(s, 8, 200);
    int late = 0;
    for (size_t k = 0; k < 2; k++) {
        for (uint64_t seed = 1; seed <= 200; seed++) {
            time_ctx c = {.rt = sct_sched_rt(s), .s = s};
            assert_int_equal(sct_sched_run(s, seed, strategies[k], 3, MAX_STEPS, late_main, &c),
                             SCT_RUN_OK);
            assert_false(c.result[0]);
            assert_true(c.woke_at[0] >= 500);
            late += c.spins_at_wake < 100;
            char *first = strdup(sct_sched_trace_text(s));
            time_ctx d = {.rt = sct_sched_rt(s), .s = s};
            sct_sched_run(s, seed, strategies[k], 3, MAX_STEPS, late_main, &d);
            assert_string_equal(first, sct_sched_trace_text(s));
            assert_int_equal(c.woke_at[0], d.woke_at[0]);
            free(first);
        }
    }
    assert_true(late > 0);
    assert_non_null(strstr(sct_sched_trace_text(s), "time jumps +"));
    sct_sched_free(s);
}

static void *ticks_main(void *p)
{
    time_ctx *c = p;
    c->m = c->rt->ops->mutex_new(c->rt);
    c->cv = c->rt->ops->cond_new(c->rt);
    c->woke_at[0] = c->rt->ops->now_ticks(c->rt);
    c->rt->ops->lock(c->rt, c->m);
    while (c->rt->ops->cond_timedwait(c->rt, c->cv, c->m, 1234))
        ;
    c->rt->ops->unlock(c->rt, c->m);
    c->woke_at[1] = c->rt->ops->now_ticks(c->rt);
    c->woke_at[2] = c->rt->ops->mono_ms(c->rt);
    c->rt->ops->cond_free(c->rt, c->cv);
    c->rt->ops->mutex_free(c->rt, c->m);
    return NULL;
}

/* now_ticks follows the virtual time (plus 100 ns a step). */
static void test_now_ticks_follow_virtual_time(void **state)
{
    (void)state;
    sct_sched *s = sct_sched_new();
    time_ctx c = {.rt = sct_sched_rt(s), .s = s};
    assert_int_equal(sct_sched_run(s, 1, SCT_STRATEGY_RANDOM, 1, MAX_STEPS, ticks_main, &c),
                     SCT_RUN_OK);
    assert_int_equal(c.woke_at[2], 1234);
    int64_t at = SCT_CLOCK_BASE_TICKS + 1234 * SCT_TICKS_PER_MS;
    assert_true(c.woke_at[0] < SCT_CLOCK_BASE_TICKS + SCT_TICKS_PER_MS);
    assert_true(c.woke_at[1] > at);
    assert_true(c.woke_at[1] <= at + (int64_t)sct_sched_steps(s) * SCT_TICKS_PER_STEP);
    sct_sched_free(s);
}

/* ------------------------------------------------------------------------ */
/* Throughput, printed for the record.                                        */

typedef struct bench_ctx {
    mt_rt *rt;
    sct_sched *s;
    mt_mutex *m;
    int counter;
} bench_ctx;

/* About 100 scheduling points an actor: 20 rounds of lock, unlock and three
 * explicit points. */
static void *bench_worker(void *p)
{
    bench_ctx *c = p;
    for (int i = 0; i < 20; i++) {
        c->rt->ops->lock(c->rt, c->m);
        c->counter++;
        c->rt->ops->unlock(c->rt, c->m);
        sct_point(c->s, "backend.execute_batch");
        sct_point(c->s, "backend.query_atomic");
        sct_point(c->s, "backend.retrieve");
    }
    return NULL;
}

static void *bench_main(void *p)
{
    bench_ctx *c = p;
    static const char *names[] = {"client1", "client2", "migrator"};
    mt_thread *t[3];
    c->m = c->rt->ops->mutex_new(c->rt);
    for (int i = 0; i < 3; i++)
        t[i] = c->rt->ops->thread_start(c->rt, bench_worker, c, names[i]);
    for (int i = 0; i < 3; i++)
        c->rt->ops->thread_join(c->rt, t[i]);
    c->rt->ops->mutex_free(c->rt, c->m);
    return NULL;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_one(sct_strategy st, bool trace)
{
    sct_sched *s = sct_sched_new();
    sct_sched_set_trace(s, trace);
    uint64_t steps = 0;
    int n = 0;
    double start = now_seconds(), elapsed;
    do {
        for (int i = 0; i < 100; i++, n++) {
            bench_ctx c = {.rt = sct_sched_rt(s), .s = s};
            assert_int_equal(sct_sched_run(s, (uint64_t)n, st, 3, MAX_STEPS, bench_main, &c),
                             SCT_RUN_OK);
            steps += sct_sched_steps(s);
        }
        elapsed = now_seconds() - start;
    } while (elapsed < 0.5);
    printf("bench %-6s trace %-3s: %8.0f executions/s, %5.0f steps each, "
           "%.0f ns a step\n",
           sct_strategy_name(st), trace ? "on" : "off", n / elapsed, (double)steps / n,
           elapsed * 1e9 / (double)steps);
    sct_sched_free(s);
}

static void test_benchmark(void **state)
{
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        bench_one(strategies[k], true);
        bench_one(strategies[k], false);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutual_exclusion),
        cmocka_unit_test(test_cond_broadcast_wakes_waiters),
        cmocka_unit_test(test_join_returns_result),
        cmocka_unit_test(test_same_seed_same_trace),
        cmocka_unit_test(test_different_seeds_differ),
        cmocka_unit_test(test_rand_replays),
        cmocka_unit_test(test_clocks_increase),
        cmocka_unit_test(test_unsignalled_wait_is_deadlock),
        cmocka_unit_test(test_lock_order_deadlock_found),
        cmocka_unit_test(test_endless_run_hits_step_bound),
        cmocka_unit_test(test_misuse_and_abort),
        cmocka_unit_test(test_setup_outside_execution),
        cmocka_unit_test(test_reuse_many_executions),
        cmocka_unit_test(test_pct_finds_check_then_act),
        cmocka_unit_test(test_timed_waits_end_at_their_deadlines),
        cmocka_unit_test(test_broadcast_ends_timed_wait),
        cmocka_unit_test(test_passed_deadline_and_untimed_deadlock),
        cmocka_unit_test(test_time_jumps_make_actors_late),
        cmocka_unit_test(test_now_ticks_follow_virtual_time),
        cmocka_unit_test(test_benchmark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

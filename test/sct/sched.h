/*
 * sched.h -- the deterministic scheduler of the systematic concurrency tester.
 *
 * Every actor of an execution (the main function and every thread it starts
 * through the runtime) is a coroutine on one OS thread, and exactly one runs
 * at a time. The program under test reaches threads, locks, condition
 * variables and the clock only through the mt_rt this scheduler hands out,
 * and every one of those operations, plus every explicit sct_point(), is a
 * scheduling point: the place where a seeded strategy picks who runs next.
 * Between two points an actor runs alone, so the interleavings the tester
 * explores are exactly the sequences of choices at points, and a seed names
 * one of them. Same seed, same strategy, same program: same execution and a
 * byte-identical trace.
 *
 * Strategies:
 *   RANDOM  at each point, a uniform choice among the runnable actors
 *           (the current one included).
 *   PCT     probabilistic concurrency testing (Burckhardt et al., ASPLOS
 *           2010): actors get distinct random priorities as they are
 *           created, the highest-priority runnable actor always runs, and at
 *           depth-1 random steps in [1, horizon] the running actor drops
 *           below every initial priority. A bug that needs d ordering
 *           constraints is found with probability >= 1/(n * horizon^(d-1)).
 *           The horizon estimates an execution's length: by default the most
 *           steps any earlier execution of this scheduler took (at least
 *           200). Because it adapts, a PCT replay must pin it with
 *           sct_sched_set_pct_horizon(); the trace's first line prints it.
 *
 * Time is simulated too (see "Virtual time" below): it passes only when
 * everyone waits for a deadline or when the strategy makes it jump, so an
 * actor can be "late" -- runnable, yet not scheduled while time passes --
 * and a lease can run out under an operation in flight.
 *
 * An execution ends when every actor has returned (OK), when every live
 * actor is blocked and none waits with a deadline (DEADLOCK: a liveness
 * failure, never a success), when it
 * exceeds its step bound (STEP_BOUND), or when an actor misuses the runtime
 * or calls sct_sched_abort() (ABORTED). Unfinished coroutines are then
 * abandoned: their stacks go back to the pool and the scheduler is ready for
 * the next execution. Whatever they had allocated is leaked, and locks and
 * conditions they had created stay allocated until the program frees them
 * or the scheduler is freed.
 *
 * What it must never do: depend on addresses, time, or anything else that
 * is not the seed and the program, in any decision or in the trace.
 *
 * A scheduler is used by one OS thread at a time. Run several schedulers on
 * several threads (or processes) to test in parallel.
 */
#ifndef SCT_SCHED_H
#define SCT_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt.h"

typedef struct sct_sched sct_sched;

typedef enum sct_strategy {
    SCT_STRATEGY_RANDOM,
    SCT_STRATEGY_PCT,
} sct_strategy;

typedef enum sct_run_result {
    SCT_RUN_OK,         /* every actor returned */
    SCT_RUN_DEADLOCK,   /* every live actor blocked; see sct_sched_report */
    SCT_RUN_STEP_BOUND, /* more than max_steps scheduling points */
    SCT_RUN_ABORTED,    /* runtime misuse or sct_sched_abort; see report */
} sct_run_result;

/* "ok", "deadlock", "step-bound", "aborted". */
const char *sct_run_result_name(sct_run_result r);
/* "random", "pct". */
const char *sct_strategy_name(sct_strategy st);

/* A new scheduler; free it with sct_sched_free, after everything created
 * through its runtime has been freed (it frees the leftovers itself). */
sct_sched *sct_sched_new(void);
void sct_sched_free(sct_sched *s);

/* The runtime to give the code under test. Borrowed; valid until the
 * scheduler is freed. Outside an execution, mutex_new/free, cond_new/free,
 * lock and unlock of a free mutex, and broadcast work without scheduling (to
 * set up and tear down shared state); waiting, blocking and starting threads
 * need an execution. Thread handles are valid during their execution only. */
mt_rt *sct_sched_rt(sct_sched *s);

/* Runs main_fn(arg) as actor 0, named "main", until the execution ends (see
 * the opening comment). pct_depth (>= 1) counts for PCT only: the bug depth,
 * so depth-1 priority change points. max_steps bounds the scheduling points.
 * Seeds the execution's random source, clears the trace and the report. */
sct_run_result sct_sched_run(sct_sched *s, uint64_t seed, sct_strategy strategy, int pct_depth,
                             uint64_t max_steps, void *(*main_fn)(void *), void *arg);

/* PCT's horizon: 0 (the default) adapts as described above; any other value
 * is used as is. sct_sched_pct_horizon() returns the one the last (or the
 * current) execution used. */
void sct_sched_set_pct_horizon(sct_sched *s, uint64_t horizon);
uint64_t sct_sched_pct_horizon(const sct_sched *s);

/* An explicit scheduling point; label (borrowed) goes into the trace. A
 * no-op outside an execution. */
void sct_point(sct_sched *s, const char *label);

/* Ends the current execution as ABORTED with a report line; for a tester
 * that detects a failure inside an actor. Called from an actor it does not
 * return; outside an execution it only records the report. */
void sct_sched_abort(sct_sched *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Uniform in [0, n) (n >= 1) from the execution's seeded random source,
 * which the strategy also draws from, so data choices replay too. */
uint64_t sct_sched_rand(sct_sched *s, uint64_t n);

/* The running actor's id (0 = main, then in creation order), or -1 outside
 * an execution. */
int sct_sched_current(const sct_sched *s);
/* The name of actor id in the current or last execution, or NULL. Borrowed;
 * valid until the next execution. */
const char *sct_sched_actor_name(const sct_sched *s, int id);
/* Actors created by the current or last execution. */
int sct_sched_actor_count(const sct_sched *s);

/* Scheduling points taken so far in this execution. */
uint64_t sct_sched_steps(const sct_sched *s);
/* Bumps and returns the execution's logical clock. Every scheduling point
 * bumps it too, so the values stamped on invocations and responses are
 * distinct and ordered as they happened. Restarts at 0 with each run. */
uint64_t sct_sched_clock(sct_sched *s);

/* Virtual time. Each execution has a simulated monotonic clock in
 * milliseconds that starts at 0. The runtime's mono_ms reads it (a
 * scheduling point), cond_timedwait blocks like cond_wait but also until a
 * deadline on it, and now_ticks derives from it. Steps cost no time; time
 * moves only
 *   - when every live actor is blocked and some wait with a deadline: to the
 *     earliest deadline, waking the actors whose deadline it is (that is
 *     waiting, not a deadlock);
 *   - when the strategy makes it jump (sct_sched_set_time_jumps): at a
 *     scheduling point, with probability 1/one_in, either to the earliest
 *     pending deadline or by a uniform 1..max_ms, waking every actor whose
 *     deadline passed. Every actor that is runnable then is "late" by that
 *     much, which is how lease expiry comes to interleave with operations in
 *     flight.
 * Both are decisions of the seed and both are lines of the trace ("time
 * ..."), so replays stay byte-identical. */
int64_t sct_sched_now_ms(const sct_sched *s); /* no scheduling point */
/* Turns the strategy's time jumps on (one_in >= 1, max_ms >= 1) or off
 * (one_in = 0, the default). Off, the strategy draws nothing for them, so
 * executions that never read the clock are the same as without a clock.
 * Applies to the following executions. */
void sct_sched_set_time_jumps(sct_sched *s, uint64_t one_in, int64_t max_ms);

/* The runtime's now_ticks under the scheduler: a fixed start
 * (2026-01-01T00:00:00Z in .NET ticks) plus the virtual time plus 100 ns per
 * step, so that it strictly increases while staying within a few
 * milliseconds of the virtual time. */
#define SCT_CLOCK_BASE_TICKS INT64_C(639028224000000000)
#define SCT_TICKS_PER_MS INT64_C(10000)
#define SCT_TICKS_PER_STEP INT64_C(1)

/* Tracing is on by default; turning it off makes executions cheaper and
 * changes nothing else (use it for bulk exploration, then replay a failing
 * seed with tracing on). */
void sct_sched_set_trace(sct_sched *s, bool on);
/* Appends "[step] actor: text\n" to the execution's trace (outside an
 * execution the actor is "sched"). */
void sct_trace(sct_sched *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The trace of the current or last execution. Borrowed; valid until the
 * next run or trace call. Never NULL. */
const char *sct_sched_trace_text(const sct_sched *s);
/* Why the last execution failed (deadlock: who is blocked on what; step
 * bound; abort message), or "". Borrowed, like the trace. */
const char *sct_sched_report(const sct_sched *s);

/* Coroutine stacks mapped so far. They are pooled, so this stays at the
 * largest number of actors alive at once, however many executions ran. */
size_t sct_sched_stack_count(const sct_sched *s);

#endif

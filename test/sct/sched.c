/*
 * sched.c -- the deterministic scheduler: coroutines, scheduling points and
 * the two strategies. The runtime on top of them is sched_rt.c.
 *
 * Shape. Each actor is a ucontext coroutine on its own mmap'd stack (with a
 * guard page below it); the caller of sct_sched_run is the "host" context.
 * A scheduling point is a function call in the running actor: it counts the
 * step, asks the strategy for the next actor and, only if that is someone
 * else, swaps straight to it. There is no scheduler coroutine in between, so
 * a point that keeps the same actor costs no switch at all and one that
 * changes actor costs one swapcontext. The host is resumed only when the
 * execution ends. swapcontext also saves the signal mask (a system call);
 * a hand-written register switch would be faster still, but ucontext is
 * the switch AddressSanitizer understands, and it is fast enough.
 *
 * Blocking is a state, not a queue: a blocked actor records what it waits
 * on (a mutex, a condition, an actor to join), and a release scans the few
 * actors for those waiting on that object. Executions have a handful of
 * actors, so the scan is cheaper than maintaining queues, needs no
 * allocation, and wakes in id order, which keeps everything deterministic.
 * An explicit point switches before anything else happens; a returning
 * actor's point comes after it has woken its joiners.
 *
 * Time is a number, not a clock: it moves only at scheduling points, either
 * because nobody can run until a deadline (the earliest one is taken) or
 * because the strategy drew a jump. A deadline is a property of a blocked
 * actor, so waking by time is the same scan as waking by a broadcast.
 *
 * Nothing allocates per point: the trace buffer, the actor slots and the
 * stacks are kept and reused across executions. An abandoned execution
 * (deadlock, step bound, abort) simply never resumes its coroutines; their
 * stacks return to the pool.
 *
 * AddressSanitizer must be told about every stack switch, or it reports
 * false stack overflows and use-after-scope: every swapcontext is wrapped in
 * __sanitizer_start/finish_switch_fiber, and a reused stack is unpoisoned,
 * since an abandoned coroutine leaves its frames' redzones behind.
 */
#define _GNU_SOURCE

#include "sched_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SCT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SCT_ASAN 1
#endif
#endif

#ifdef SCT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
/* ASan's redzones make frames several times larger. */
#define SCT_STACK_SIZE (1024 * 1024)
#else
#define SCT_STACK_SIZE (256 * 1024)
#endif

#define SCT_PCT_MIN_HORIZON 200
#define SCT_TRACE_INITIAL (64 * 1024)

/* ------------------------------------------------------------------------ */
/* Small helpers.                                                             */

void sct_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sct: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void *sct_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        sct_fatal("out of memory");
    return p;
}

sct_sched *sct_of(mt_rt *rt)
{
    return (sct_sched *)((char *)rt - offsetof(sct_sched, rt));
}

static const char *sct_who(const sct_sched *s)
{
    return s->running && s->cur ? s->cur->name : "sched";
}

/* ------------------------------------------------------------------------ */
/* Random source: xoshiro256** seeded through splitmix64. Small, fast, and   */
/* the same on every platform, which a replay needs.                          */

static uint64_t sct_splitmix(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void sct_rng_seed(sct_sched *s, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        s->rng[i] = sct_splitmix(&seed);
}

static uint64_t sct_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t sct_rng_next(sct_sched *s)
{
    uint64_t *r = s->rng;
    uint64_t out = sct_rotl(r[1] * 5, 7) * 9;
    uint64_t t = r[1] << 17;
    r[2] ^= r[0];
    r[3] ^= r[1];
    r[1] ^= r[2];
    r[0] ^= r[3];
    r[2] ^= t;
    r[3] = sct_rotl(r[3], 45);
    return out;
}

/* Lemire's multiply-and-reject: unbiased, and almost never divides. */
uint64_t sct_sched_rand(sct_sched *s, uint64_t n)
{
    if (n <= 1)
        return 0;
    __uint128_t m = (__uint128_t)sct_rng_next(s) * n;
    if ((uint64_t)m < n) {
        uint64_t floor = -n % n;
        while ((uint64_t)m < floor)
            m = (__uint128_t)sct_rng_next(s) * n;
    }
    return (uint64_t)(m >> 64);
}

/* ------------------------------------------------------------------------ */
/* Trace and report.                                                          */

static void sct_trace_grow(sct_sched *s, size_t need)
{
    size_t cap = s->trace_cap ? s->trace_cap : SCT_TRACE_INITIAL;
    while (cap < need)
        cap *= 2;
    char *t = realloc(s->trace, cap);
    if (!t)
        sct_fatal("out of memory");
    s->trace = t;
    s->trace_cap = cap;
}

static void sct_trace_vadd(sct_sched *s, const char *who, const char *fmt, va_list ap)
{
    for (;;) {
        char *p = s->trace + s->trace_len;
        size_t room = s->trace_cap - s->trace_len;
        va_list aq;
        va_copy(aq, ap);
        int h = snprintf(p, room, "[%" PRIu64 "] %s: ", s->steps, who);
        size_t hu = (size_t)h < room ? (size_t)h : room;
        int b = vsnprintf(p + hu, room - hu, fmt, aq);
        va_end(aq);
        if (h < 0 || b < 0)
            return;
        size_t need = (size_t)h + (size_t)b + 2; /* newline, NUL */
        if (need <= room) {
            p[h + b] = '\n';
            p[h + b + 1] = '\0';
            s->trace_len += need - 1;
            return;
        }
        sct_trace_grow(s, s->trace_len + need);
    }
}

static void sct_trace_as(sct_sched *s, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sct_trace_as(sct_sched *s, const char *who, const char *fmt, ...)
{
    if (!s->trace_on)
        return;
    va_list ap;
    va_start(ap, fmt);
    sct_trace_vadd(s, who, fmt, ap);
    va_end(ap);
}

static void sct_trace_put(sct_sched *s, const char *str, size_t len)
{
    memcpy(s->trace + s->trace_len, str, len);
    s->trace_len += len;
}

/* The line of a scheduling point, "[step] who: label[ -> next]", built
 * without printf: it is written at every step, and formatting dominated the
 * cost of a traced execution. */
static void sct_trace_step(sct_sched *s, const char *who, const char *label, const char *next)
{
    char num[24];
    size_t n = 0, lw = strlen(who), ll = strlen(label);
    size_t ln = next ? strlen(next) : 0;
    uint64_t v = s->steps;
    do {
        num[sizeof num - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t need = s->trace_len + n + lw + ll + ln + 16;
    if (need > s->trace_cap)
        sct_trace_grow(s, need);
    sct_trace_put(s, "[", 1);
    sct_trace_put(s, num + sizeof num - n, n);
    sct_trace_put(s, "] ", 2);
    sct_trace_put(s, who, lw);
    sct_trace_put(s, ": ", 2);
    sct_trace_put(s, label, ll);
    if (next) {
        sct_trace_put(s, " -> ", 4);
        sct_trace_put(s, next, ln);
    }
    sct_trace_put(s, "\n", 1);
    s->trace[s->trace_len] = '\0';
}

void sct_trace(sct_sched *s, const char *fmt, ...)
{
    if (!s->trace_on)
        return;
    va_list ap;
    va_start(ap, fmt);
    sct_trace_vadd(s, sct_who(s), fmt, ap);
    va_end(ap);
}

/* Appends to the report, truncating silently: it is for humans. */
static void sct_report_add(sct_sched *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sct_report_add(sct_sched *s, const char *fmt, ...)
{
    size_t len = strlen(s->report);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->report + len, sizeof s->report - len, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* Stacks.                                                                    */

static void sct_stack_unpoison(sct_stack *st)
{
#ifdef SCT_ASAN
    __asan_unpoison_memory_region(st->base, st->size);
#else
    (void)st;
#endif
}

static sct_stack *sct_stack_get(sct_sched *s)
{
    sct_stack *st = s->pool;
    if (st) {
        s->pool = st->next;
        sct_stack_unpoison(st);
        return st;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    st = sct_xcalloc(1, sizeof *st);
    st->map_len = SCT_STACK_SIZE + page;
    st->map = mmap(NULL, st->map_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (st->map == MAP_FAILED)
        sct_fatal("cannot map a coroutine stack");
    /* Stacks grow down: an overflow hits the guard and faults. */
    if (mprotect(st->map, page, PROT_NONE) != 0)
        sct_fatal("cannot protect a stack guard page");
    st->base = st->map + page;
    st->size = SCT_STACK_SIZE;
    s->nstacks++;
    return st;
}

static void sct_stack_put(sct_sched *s, sct_stack *st)
{
    st->next = s->pool;
    s->pool = st;
}

/* ------------------------------------------------------------------------ */
/* Context switches.                                                          */

/* Leaves the running context (from; NULL = the host) for to (NULL = the
 * host) and returns when someone switches back. A context that will never
 * run again says so (dying), so that ASan drops its fake stack. */
static void sct_transfer(sct_sched *s, sct_actor *from, sct_actor *to, bool dying)
{
    ucontext_t *fc = from ? &from->ctx : &s->host;
    ucontext_t *tc = to ? &to->ctx : &s->host;
    s->cur = to;
#ifdef SCT_ASAN
    void *fake = NULL;
    const void *bottom = to ? to->stack->base : s->host_bottom;
    size_t size = to ? to->stack->size : s->host_size;
    __sanitizer_start_switch_fiber(dying ? NULL : &fake, bottom, size);
    swapcontext(fc, tc);
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    (void)dying;
    swapcontext(fc, tc);
#endif
}

/* Ends the execution from inside it: back to the host for good. */
__attribute__((noreturn)) static void sct_end(sct_sched *s, sct_run_result r)
{
    s->result = r;
    sct_transfer(s, s->cur, NULL, true);
    sct_fatal("an abandoned coroutine was resumed");
}

static void sct_actor_exit(sct_sched *s, sct_actor *a);

/* makecontext passes ints only, so the scheduler travels in two halves. */
static void sct_actor_entry(unsigned lo, unsigned hi)
{
    sct_sched *s = (sct_sched *)(((uintptr_t)hi << 32) | (uintptr_t)lo);
#ifdef SCT_ASAN
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(NULL, &bottom, &size);
    if (s->cur->id == 0) { /* main is always entered from the host */
        s->host_bottom = bottom;
        s->host_size = size;
    }
#endif
    sct_actor *a = s->cur;
    a->result = a->fn(a->arg);
    sct_actor_exit(s, a);
}

/* ------------------------------------------------------------------------ */
/* Strategies.                                                                */

static sct_actor *sct_pick_random(sct_sched *s)
{
    int n = 0;
    for (int i = 0; i < s->nactors; i++)
        n += s->actors[i]->state == SCT_A_RUNNABLE;
    if (n == 0)
        return NULL;
    uint64_t k = sct_sched_rand(s, (uint64_t)n);
    for (int i = 0; i < s->nactors; i++)
        if (s->actors[i]->state == SCT_A_RUNNABLE && k-- == 0)
            return s->actors[i];
    return NULL;
}

static sct_actor *sct_pick_pct(sct_sched *s)
{
    sct_actor *best = NULL;
    for (int i = 0; i < s->nactors; i++) {
        sct_actor *a = s->actors[i];
        if (a->state == SCT_A_RUNNABLE && (!best || a->prio > best->prio))
            best = a;
    }
    return best;
}

/* At the i-th change point (1-based) the running actor gets priority i,
 * below every initial priority (those are >= depth). */
static void sct_pct_change(sct_sched *s)
{
    if (s->next_change < s->nchange && s->change[s->next_change] == s->steps) {
        s->next_change++;
        s->cur->prio = (uint64_t)s->next_change;
        sct_trace_as(s, s->cur->name, "pct: priority drops to %d", s->next_change);
    }
}

/* A random initial priority, distinct from every other actor's. Independent
 * uniform draws order the actors by a uniform random permutation, whatever
 * the number of actors turns out to be. */
static uint64_t sct_pct_priority(sct_sched *s, const sct_actor *self)
{
    for (;;) {
        uint64_t p = (uint64_t)s->depth + (sct_rng_next(s) >> 2);
        bool clash = false;
        for (int i = 0; i < s->nactors && !clash; i++)
            clash = s->actors[i] != self && s->actors[i]->prio == p;
        if (!clash)
            return p;
    }
}

/* depth-1 distinct change points drawn uniformly from [1, horizon]. */
static void sct_pct_setup(sct_sched *s)
{
    uint64_t h = s->horizon_fixed;
    if (!h)
        h = s->longest > SCT_PCT_MIN_HORIZON ? s->longest : SCT_PCT_MIN_HORIZON;
    s->horizon_used = h;
    int n = s->depth - 1;
    if ((uint64_t)n > h)
        n = (int)h;
    s->nchange = 0;
    s->next_change = 0;
    while (s->nchange < n) {
        uint64_t c = 1 + sct_sched_rand(s, h);
        int i = s->nchange;
        bool dup = false;
        for (int j = 0; j < i; j++)
            dup |= s->change[j] == c;
        if (dup)
            continue;
        while (i > 0 && s->change[i - 1] > c) { /* insertion keeps order */
            s->change[i] = s->change[i - 1];
            i--;
        }
        s->change[i] = c;
        s->nchange++;
    }
}

static sct_actor *sct_pick(sct_sched *s)
{
    if (s->strategy == SCT_STRATEGY_PCT)
        return sct_pick_pct(s);
    return sct_pick_random(s);
}

/* ------------------------------------------------------------------------ */
/* Virtual time.                                                              */

static int64_t sct_earliest_deadline(const sct_sched *s)
{
    int64_t d = SCT_NO_DEADLINE;
    for (int i = 0; i < s->nactors; i++) {
        const sct_actor *a = s->actors[i];
        if (a->state == SCT_A_BLOCKED && a->deadline < d)
            d = a->deadline;
    }
    return d;
}

/* Moves time forward to `to` and wakes every actor whose deadline has come;
 * why says what moved it, for the trace. */
static void sct_time_set(sct_sched *s, int64_t to, const char *why)
{
    char names[SCT_LABEL_MAX];
    size_t len = 0;
    int n = 0;
    int64_t from = s->now_ms;
    names[0] = '\0';
    s->now_ms = to;
    for (int i = 0; i < s->nactors; i++) {
        sct_actor *a = s->actors[i];
        if (a->state != SCT_A_BLOCKED || a->deadline > to)
            continue;
        a->state = SCT_A_RUNNABLE;
        a->wait = SCT_W_NONE;
        a->wait_on = NULL;
        a->deadline = SCT_NO_DEADLINE;
        if (s->trace_on && len < sizeof names) {
            int k =
                snprintf(names + len, sizeof names - len, "%s%s", n ? " " : ", wakes ", a->name);
            len += k > 0 ? (size_t)k : 0;
        }
        n++;
    }
    sct_trace_as(s, "sched", "time %s +%" PRId64 " ms to %" PRId64 " ms%s", why, to - from, to,
                 names);
}

/* The strategy's time jump, drawn at a scheduling point: to the next
 * deadline someone waits for, or by a random amount. */
static void sct_time_jump(sct_sched *s)
{
    int64_t d = sct_earliest_deadline(s);
    int64_t to;
    if (d != SCT_NO_DEADLINE && sct_sched_rand(s, 2) == 0)
        to = d;
    else
        to = s->now_ms + 1 + (int64_t)sct_sched_rand(s, (uint64_t)s->jump_max_ms);
    sct_time_set(s, to, "jumps");
}

/* Nobody can run: if someone waits with a deadline, time passes until the
 * earliest one. False when nobody does (everyone returned, or a deadlock). */
static bool sct_time_wait_out(sct_sched *s)
{
    int64_t d = sct_earliest_deadline(s);
    if (d == SCT_NO_DEADLINE)
        return false;
    sct_time_set(s, d, "passes (all wait)");
    return true;
}

/* ------------------------------------------------------------------------ */
/* Scheduling points.                                                         */

const char *sct_owner_name(const sct_sched *s, const sct_mutex *m)
{
    if (m->owner == SCT_NOBODY)
        return "nobody";
    if (m->owner == SCT_HOST)
        return "sched";
    if (m->owner_gen != s->gen)
        return "an abandoned actor";
    return s->actors[m->owner]->name;
}

static void sct_report_deadlock(sct_sched *s)
{
    sct_report_add(s, "deadlock:");
    for (int i = 0; i < s->nactors; i++) {
        sct_actor *a = s->actors[i];
        if (a->state != SCT_A_BLOCKED)
            continue;
        if (a->wait == SCT_W_MUTEX) {
            const sct_mutex *m = a->wait_on;
            sct_report_add(s, " %s in lock %s (held by %s);", a->name, m->hdr.tag,
                           sct_owner_name(s, m));
        } else if (a->wait == SCT_W_COND) {
            const sct_cond *c = a->wait_on;
            sct_report_add(s, " %s in wait %s;", a->name, c->hdr.tag);
        } else {
            const sct_actor *t = a->wait_on;
            sct_report_add(s, " %s in join %s;", a->name, t->name);
        }
    }
}

/* Nobody can run: either everyone returned or everyone left is stuck. */
__attribute__((noreturn)) static void sct_end_stuck(sct_sched *s)
{
    for (int i = 0; i < s->nactors; i++) {
        if (s->actors[i]->state != SCT_A_DONE) {
            sct_report_deadlock(s);
            sct_trace_as(s, "sched", "%s", s->report);
            sct_end(s, SCT_RUN_DEADLOCK);
        }
    }
    sct_trace_as(s, "sched", "all actors returned");
    sct_end(s, SCT_RUN_OK);
}

/* One scheduling point of the running actor, which may have just blocked
 * or returned (then someone else must run). Returns when the strategy
 * picks this actor again; an actor that returned is never picked. */
static void sct_step(sct_sched *s, const char *label)
{
    sct_actor *a = s->cur;
    s->steps++;
    s->clock++;
    if (s->steps > s->max_steps) {
        sct_trace_as(s, a->name, "%s", label);
        sct_report_add(s, "step bound: more than %" PRIu64 " steps", s->max_steps);
        sct_trace_as(s, "sched", "%s", s->report);
        sct_end(s, SCT_RUN_STEP_BOUND);
    }
    if (s->strategy == SCT_STRATEGY_PCT)
        sct_pct_change(s);
    if (s->jump_one_in && sct_sched_rand(s, s->jump_one_in) == 0)
        sct_time_jump(s);
    sct_actor *next = sct_pick(s);
    while (!next && sct_time_wait_out(s))
        next = sct_pick(s);
    if (s->trace_on)
        sct_trace_step(s, a->name, label, next && next != a ? next->name : NULL);
    if (!next)
        sct_end_stuck(s);
    if (next != a)
        sct_transfer(s, a, next, a->state == SCT_A_DONE);
}

void sct_stepf(sct_sched *s, const char *fmt, ...)
{
    char label[SCT_LABEL_MAX];
    label[0] = '\0';
    if (s->trace_on) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(label, sizeof label, fmt, ap);
        va_end(ap);
    }
    sct_step(s, label);
}

void sct_point(sct_sched *s, const char *label)
{
    if (s->running)
        sct_step(s, label ? label : "point");
}

void sct_misuse(sct_sched *s, const char *fmt, ...)
{
    char msg[SCT_LABEL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!s->running)
        sct_fatal("%s (outside an execution)", msg);
    sct_report_add(s, "misuse by %s: %s", s->cur->name, msg);
    sct_trace_as(s, "sched", "%s", s->report);
    sct_end(s, SCT_RUN_ABORTED);
}

void sct_sched_abort(sct_sched *s, const char *fmt, ...)
{
    char msg[SCT_LABEL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sct_report_add(s, "abort by %s: %s", sct_who(s), msg);
    sct_trace_as(s, "sched", "%s", s->report);
    if (s->running)
        sct_end(s, SCT_RUN_ABORTED);
}

void sct_block(sct_sched *s, sct_wait w, const void *on)
{
    s->cur->state = SCT_A_BLOCKED;
    s->cur->wait = w;
    s->cur->wait_on = on;
    s->cur->deadline = SCT_NO_DEADLINE;
}

void sct_block_until(sct_sched *s, const void *cond, int64_t deadline)
{
    sct_block(s, SCT_W_COND, cond);
    s->cur->deadline = deadline;
}

int sct_wake(sct_sched *s, sct_wait w, const void *obj, char *names, size_t cap)
{
    int n = 0;
    size_t len = 0;
    names[0] = '\0';
    for (int i = 0; i < s->nactors; i++) {
        sct_actor *a = s->actors[i];
        if (a->state != SCT_A_BLOCKED || a->wait != w || a->wait_on != obj)
            continue;
        a->state = SCT_A_RUNNABLE;
        a->wait = SCT_W_NONE;
        a->wait_on = NULL;
        a->deadline = SCT_NO_DEADLINE;
        if (s->trace_on && len < cap) {
            int k = snprintf(names + len, cap - len, "%s%s", n ? " " : ", wakes ", a->name);
            len += k > 0 ? (size_t)k : 0;
        }
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Actors.                                                                    */

static sct_actor *sct_actor_slot(sct_sched *s)
{
    if (s->nactors == s->cap_actors) {
        int cap = s->cap_actors ? s->cap_actors * 2 : 8;
        sct_actor **v = realloc(s->actors, (size_t)cap * sizeof *v);
        if (!v)
            sct_fatal("out of memory");
        for (int i = s->cap_actors; i < cap; i++)
            v[i] = NULL;
        s->actors = v;
        s->cap_actors = cap;
    }
    sct_actor **slot = &s->actors[s->nactors];
    if (!*slot)
        *slot = sct_xcalloc(1, sizeof **slot);
    s->nactors++;
    return *slot;
}

/* Kept out of line: getcontext returns twice, which would oblige every
 * local of a caller to be treated as clobbered. */
__attribute__((noinline)) static void sct_actor_context(sct_sched *s, sct_actor *a)
{
    if (getcontext(&a->ctx) != 0)
        sct_fatal("getcontext failed");
    a->ctx.uc_stack.ss_sp = a->stack->base;
    a->ctx.uc_stack.ss_size = a->stack->size;
    a->ctx.uc_link = NULL; /* an actor never returns from its entry */
    uintptr_t p = (uintptr_t)s;
    makecontext(&a->ctx, (void (*)(void))sct_actor_entry, 2, (unsigned)(p & 0xffffffffu),
                (unsigned)(p >> 32));
#ifdef SCT_ASAN
    /* makecontext has placed the stack pointer; nothing reads uc_stack
     * again except ASan's swapcontext hook, which would otherwise wipe the
     * whole stack's shadow at every switch (a hundred times slower, and it
     * forgets the redzones of the frames being resumed). The fiber
     * annotations and the unpoisoning on reuse do that job properly. */
    a->ctx.uc_stack.ss_sp = NULL;
    a->ctx.uc_stack.ss_size = 0;
#endif
}

sct_actor *sct_spawn(sct_sched *s, void *(*fn)(void *), void *arg, const char *name)
{
    sct_actor *a = sct_actor_slot(s);
    a->id = s->nactors - 1;
    a->state = SCT_A_RUNNABLE;
    a->wait = SCT_W_NONE;
    a->wait_on = NULL;
    a->deadline = SCT_NO_DEADLINE;
    a->joined = false;
    a->fn = fn;
    a->arg = arg;
    a->result = NULL;
    a->prio = 0;
    if (name && *name)
        snprintf(a->name, sizeof a->name, "%s", name);
    else
        snprintf(a->name, sizeof a->name, "t%d", a->id);
    for (int i = 0; i < a->id; i++) {
        if (strcmp(s->actors[i]->name, a->name) == 0) {
            /* The trace names actors: a second thread of the same name
             * (say, a second proxy's cfg-client) gets its id. */
            char base[SCT_NAME_MAX];
            memcpy(base, a->name, sizeof base);
            snprintf(a->name, sizeof a->name, "%.*s#%d", SCT_NAME_MAX - 8, base, a->id);
            break;
        }
    }
    a->stack = sct_stack_get(s);
    sct_actor_context(s, a);
    if (s->strategy == SCT_STRATEGY_PCT)
        a->prio = sct_pct_priority(s, a);
    return a;
}

static void sct_actor_exit(sct_sched *s, sct_actor *a)
{
    char names[SCT_LABEL_MAX];
    a->state = SCT_A_DONE;
    sct_wake(s, SCT_W_JOIN, a, names, sizeof names);
    sct_stepf(s, "returns%s", names);
    sct_fatal("a finished actor was resumed");
}

/* ------------------------------------------------------------------------ */
/* Executions.                                                                */

static void sct_run_reset(sct_sched *s, uint64_t seed, sct_strategy strategy, int pct_depth,
                          uint64_t max_steps)
{
    s->gen++;
    s->result = SCT_RUN_OK;
    s->nactors = 0;
    s->steps = 0;
    s->clock = 0;
    s->now_ms = 0;
    s->seq[0] = s->seq[1] = 0;
    s->max_steps = max_steps;
    s->strategy = strategy;
    s->depth = pct_depth;
    if (s->depth < 1)
        s->depth = 1;
    if (s->depth > SCT_PCT_MAX_DEPTH)
        s->depth = SCT_PCT_MAX_DEPTH;
    s->report[0] = '\0';
    s->trace_len = 0;
    s->trace[0] = '\0';
    sct_rng_seed(s, seed);
    if (strategy == SCT_STRATEGY_PCT) {
        sct_pct_setup(s);
        sct_trace_as(s, "sched",
                     "run seed=%" PRIu64 " strategy=pct depth=%d horizon=%" PRIu64
                     " max_steps=%" PRIu64,
                     seed, s->depth, s->horizon_used, max_steps);
    } else {
        sct_trace_as(s, "sched", "run seed=%" PRIu64 " strategy=random max_steps=%" PRIu64, seed,
                     max_steps);
    }
}

/* Every coroutine of the execution is finished or abandoned: take their
 * stacks back. */
static void sct_run_release(sct_sched *s)
{
    for (int i = 0; i < s->nactors; i++) {
        sct_actor *a = s->actors[i];
        if (a->stack)
            sct_stack_put(s, a->stack);
        a->stack = NULL;
    }
}

sct_run_result sct_sched_run(sct_sched *s, uint64_t seed, sct_strategy strategy, int pct_depth,
                             uint64_t max_steps, void *(*main_fn)(void *), void *arg)
{
    if (s->running)
        sct_fatal("sct_sched_run: called from inside an execution");
    sct_run_reset(s, seed, strategy, pct_depth, max_steps);
    sct_actor *main_actor = sct_spawn(s, main_fn, arg, "main");
    s->running = true;
    sct_transfer(s, NULL, main_actor, false);
    s->running = false;
    s->cur = NULL;
    sct_run_release(s);
    if (s->result != SCT_RUN_STEP_BOUND && s->steps > s->longest)
        s->longest = s->steps;
    return s->result;
}

sct_sched *sct_sched_new(void)
{
    sct_sched *s = sct_xcalloc(1, sizeof *s);
    s->rt.ops = &sct_rt_ops;
    s->objs.next = s->objs.prev = &s->objs;
    s->trace_on = true;
    sct_trace_grow(s, SCT_TRACE_INITIAL);
    s->trace[0] = '\0';
    return s;
}

void sct_sched_free(sct_sched *s)
{
    if (!s)
        return;
    if (s->running)
        sct_fatal("sct_sched_free: called from inside an execution");
    while (s->objs.next != &s->objs) {
        sct_obj *o = s->objs.next;
        sct_obj_unlink(o);
        free(o); /* the header is first in both object kinds */
    }
    while (s->pool) {
        sct_stack *st = s->pool;
        s->pool = st->next;
        sct_stack_unpoison(st);
        munmap(st->map, st->map_len);
        free(st);
    }
    for (int i = 0; i < s->cap_actors; i++)
        free(s->actors[i]);
    free(s->actors);
    free(s->trace);
    free(s);
}

/* ------------------------------------------------------------------------ */
/* Accessors.                                                                 */

mt_rt *sct_sched_rt(sct_sched *s)
{
    return &s->rt;
}

void sct_sched_set_pct_horizon(sct_sched *s, uint64_t horizon)
{
    s->horizon_fixed = horizon;
}

uint64_t sct_sched_pct_horizon(const sct_sched *s)
{
    return s->horizon_used;
}

void sct_sched_set_trace(sct_sched *s, bool on)
{
    s->trace_on = on;
}

int sct_sched_current(const sct_sched *s)
{
    return s->running && s->cur ? s->cur->id : -1;
}

const char *sct_sched_actor_name(const sct_sched *s, int id)
{
    return id >= 0 && id < s->nactors ? s->actors[id]->name : NULL;
}

int sct_sched_actor_count(const sct_sched *s)
{
    return s->nactors;
}

uint64_t sct_sched_steps(const sct_sched *s)
{
    return s->steps;
}

uint64_t sct_sched_clock(sct_sched *s)
{
    return ++s->clock;
}

int64_t sct_sched_now_ms(const sct_sched *s)
{
    return s->now_ms;
}

void sct_sched_set_time_jumps(sct_sched *s, uint64_t one_in, int64_t max_ms)
{
    s->jump_one_in = one_in;
    s->jump_max_ms = max_ms > 0 ? max_ms : 1;
}

const char *sct_sched_trace_text(const sct_sched *s)
{
    return s->trace;
}

const char *sct_sched_report(const sct_sched *s)
{
    return s->report;
}

size_t sct_sched_stack_count(const sct_sched *s)
{
    return s->nstacks;
}

const char *sct_run_result_name(sct_run_result r)
{
    switch (r) {
    case SCT_RUN_OK:
        return "ok";
    case SCT_RUN_DEADLOCK:
        return "deadlock";
    case SCT_RUN_STEP_BOUND:
        return "step-bound";
    case SCT_RUN_ABORTED:
        return "aborted";
    }
    return "?";
}

const char *sct_strategy_name(sct_strategy st)
{
    return st == SCT_STRATEGY_PCT ? "pct" : "random";
}

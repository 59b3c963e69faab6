/*
 * rt_pthread.c -- the production runtime: mt_rt on POSIX threads.
 *
 * The core never touches pthreads directly; it goes through an mt_rt so that
 * the concurrency tester can substitute a runtime that owns every
 * interleaving. This file is the thin, real one: each mt_mutex is a
 * pthread_mutex_t, each mt_cond a pthread_cond_t, each mt_thread a pthread_t.
 *
 * Condition variables have Mesa semantics, as pthreads do: a wake-up is a
 * hint, spurious wake-ups happen, and a waiter must re-check its predicate
 * in a loop after cond_wait returns. The tester's runtime is allowed to wake
 * waiters in the same loose way, so code that is correct here is correct
 * there.
 *
 * Time is the wall clock (CLOCK_REALTIME) in .NET ticks, the unit Azure uses
 * for Edm.DateTime: 100 ns since 0001-01-01T00:00:00Z. It is not monotonic;
 * the core uses it only for timestamps, never to measure intervals.
 *
 * Failure policy: creating a mutex, a condition or a thread can fail for
 * lack of memory or resources; those calls return NULL and the caller
 * reports an error. Lock, unlock, wait and broadcast on valid objects cannot
 * fail in a correct program, so their return codes are not propagated (the
 * interface has nowhere to put them and library code must not abort).
 */
#define _GNU_SOURCE /* pthread_setname_np */

#include "mt.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mt_mutex {
    pthread_mutex_t m;
};

struct mt_cond {
    pthread_cond_t c;
};

struct mt_thread {
    pthread_t t;
};

/* Seconds from 0001-01-01 to 1970-01-01 (719162 days). */
#define MT_UNIX_EPOCH_SECONDS INT64_C(62135596800)
#define MT_TICKS_PER_SECOND INT64_C(10000000)
#define MT_NANOS_PER_TICK 100

/* Linux limits a thread name to 15 bytes plus the terminator. */
#define MT_THREAD_NAME_MAX 16

static mt_mutex *mt_rtp_mutex_new(mt_rt *rt)
{
    (void)rt;
    mt_mutex *m = malloc(sizeof(*m));
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->m, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void mt_rtp_mutex_free(mt_rt *rt, mt_mutex *m)
{
    (void)rt;
    if (!m)
        return;
    pthread_mutex_destroy(&m->m);
    free(m);
}

static void mt_rtp_lock(mt_rt *rt, mt_mutex *m)
{
    (void)rt;
    pthread_mutex_lock(&m->m);
}

static void mt_rtp_unlock(mt_rt *rt, mt_mutex *m)
{
    (void)rt;
    pthread_mutex_unlock(&m->m);
}

static mt_cond *mt_rtp_cond_new(mt_rt *rt)
{
    (void)rt;
    mt_cond *c = malloc(sizeof(*c));
    if (!c)
        return NULL;
    if (pthread_cond_init(&c->c, NULL) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

static void mt_rtp_cond_free(mt_rt *rt, mt_cond *c)
{
    (void)rt;
    if (!c)
        return;
    pthread_cond_destroy(&c->c);
    free(c);
}

/* Mesa semantics: the caller holds m and re-checks its predicate after this
 * returns, whether or not anyone broadcast. */
static void mt_rtp_cond_wait(mt_rt *rt, mt_cond *c, mt_mutex *m)
{
    (void)rt;
    pthread_cond_wait(&c->c, &m->m);
}

static void mt_rtp_cond_broadcast(mt_rt *rt, mt_cond *c)
{
    (void)rt;
    pthread_cond_broadcast(&c->c);
}

static mt_thread *mt_rtp_thread_start(mt_rt *rt, void *(*fn)(void *), void *arg, const char *name)
{
    (void)rt;
    mt_thread *t = malloc(sizeof(*t));
    if (!t)
        return NULL;
    if (pthread_create(&t->t, NULL, fn, arg) != 0) {
        free(t);
        return NULL;
    }
    /* The name only helps debuggers and top(1); failing to set it is fine. */
    if (name && *name) {
        char buf[MT_THREAD_NAME_MAX];
        size_t n = strlen(name);
        if (n >= sizeof(buf))
            n = sizeof(buf) - 1;
        memcpy(buf, name, n);
        buf[n] = '\0';
        (void)pthread_setname_np(t->t, buf);
    }
    return t;
}

static void *mt_rtp_thread_join(mt_rt *rt, mt_thread *t)
{
    (void)rt;
    void *result = NULL;
    if (!t)
        return NULL;
    if (pthread_join(t->t, &result) != 0)
        result = NULL;
    free(t);
    return result;
}

static int64_t mt_rtp_now_ticks(mt_rt *rt)
{
    (void)rt;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return ((int64_t)ts.tv_sec + MT_UNIX_EPOCH_SECONDS) * MT_TICKS_PER_SECOND +
           (int64_t)ts.tv_nsec / MT_NANOS_PER_TICK;
}

static int64_t mt_rtp_mono_ms(mt_rt *rt)
{
    (void)rt;
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + (int64_t)ts.tv_nsec / 1000000;
}

/* The conditions are created with the default (realtime) clock; the wait
 * converts the monotonic deadline into a realtime one. A wall-clock jump
 * during the wait only makes it return early or late, and every caller
 * re-checks mono_ms() in its loop. */
static bool mt_rtp_cond_timedwait(mt_rt *rt, mt_cond *c, mt_mutex *m, int64_t deadline_ms)
{
    int64_t left = deadline_ms - mt_rtp_mono_ms(rt);
    if (left <= 0)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(left / 1000);
    ts.tv_nsec += (long)(left % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&c->c, &m->m, &ts);
    return mt_rtp_mono_ms(rt) < deadline_ms;
}

static const mt_rt_ops mt_rtp_ops = {
    .mutex_new = mt_rtp_mutex_new,
    .mutex_free = mt_rtp_mutex_free,
    .lock = mt_rtp_lock,
    .unlock = mt_rtp_unlock,
    .cond_new = mt_rtp_cond_new,
    .cond_free = mt_rtp_cond_free,
    .cond_wait = mt_rtp_cond_wait,
    .cond_broadcast = mt_rtp_cond_broadcast,
    .thread_start = mt_rtp_thread_start,
    .thread_join = mt_rtp_thread_join,
    .now_ticks = mt_rtp_now_ticks,
    .mono_ms = mt_rtp_mono_ms,
    .cond_timedwait = mt_rtp_cond_timedwait,
};

/* Stateless, so one shared instance serves every caller. */
static mt_rt mt_rtp_instance = {.ops = &mt_rtp_ops};

mt_rt *mt_rt_pthread(void)
{
    return &mt_rtp_instance;
}

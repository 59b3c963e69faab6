/*
 * sched_rt.c -- the runtime the scheduler hands to the code under test
 * (mt_rt): mutexes, conditions, threads and the clock, each operation a
 * scheduling point of sched.c.
 *
 * Where the point sits: acquiring operations (lock, join, start, now)
 * switch before they act, releasing ones (unlock, broadcast) after, so a
 * woken actor can run right after the release. cond_wait releases the
 * mutex and blocks in one step, as pthreads does.
 *
 * A woken actor only becomes runnable; it re-checks its condition when it
 * runs (a mutex may have been taken again meanwhile), like pthreads and
 * unlike a hand-off lock, so the strategy also explores barging.
 *
 * The clock is the scheduler's virtual time (sched.h): mono_ms reads it,
 * now_ticks derives from it, and cond_timedwait is cond_wait with a
 * deadline the scheduler honours when time moves. A timed wait whose
 * deadline has already passed returns at once, keeping the mutex, as
 * pthread_cond_timedwait does.
 */
#define _GNU_SOURCE

#include "sched_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------------ */
/* The runtime: the life of mutexes and conditions.                          */

/* A new mutex (free) or condition, tagged and on the scheduler's list;
 * inside an execution that is a scheduling point. */
static sct_obj *sct_obj_new(sct_sched *s, bool is_cond)
{
    const char *kind = is_cond ? "c" : "m";
    sct_obj *o;
    if (is_cond) {
        o = &((sct_cond *)sct_xcalloc(1, sizeof(sct_cond)))->hdr;
    } else {
        sct_mutex *m = sct_xcalloc(1, sizeof *m);
        m->owner = SCT_NOBODY;
        o = &m->hdr;
    }
    if (s->running)
        snprintf(o->tag, sizeof o->tag, "%s%u", kind, ++s->seq[is_cond]);
    else
        snprintf(o->tag, sizeof o->tag, "g%s%u", kind, ++s->gseq[is_cond]);
    o->next = s->objs.next;
    o->prev = &s->objs;
    o->next->prev = o;
    s->objs.next = o;
    if (s->running)
        sct_stepf(s, "%s_new %s", is_cond ? "cond" : "mutex", o->tag);
    return o;
}

void sct_obj_unlink(sct_obj *o)
{
    o->prev->next = o->next;
    o->next->prev = o->prev;
}

static bool sct_has_waiters(const sct_sched *s, sct_wait w, const void *obj)
{
    for (int i = 0; i < s->nactors; i++) {
        const sct_actor *a = s->actors[i];
        if (a->state == SCT_A_BLOCKED && a->wait == w && a->wait_on == obj)
            return true;
    }
    return false;
}

/* Frees a mutex or condition (none when o is NULL). Inside an execution
 * that is a scheduling point, and freeing one that is held or waited for
 * is a misuse. */
static void sct_obj_free(sct_sched *s, sct_obj *o, bool is_cond)
{
    const sct_mutex *held = is_cond ? NULL : (const sct_mutex *)o;
    const char *kind = is_cond ? "cond" : "mutex";
    if (!o)
        return;
    if (s->running) {
        sct_stepf(s, "%s_free %s", kind, o->tag);
        if (held && held->owner != SCT_NOBODY && held->owner_gen == s->gen)
            sct_misuse(s, "mutex_free %s: held by %s", o->tag, sct_owner_name(s, held));
        if (sct_has_waiters(s, held ? SCT_W_MUTEX : SCT_W_COND, o))
            sct_misuse(s, "%s_free %s: actors wait %s it", kind, o->tag, held ? "for" : "on");
    }
    sct_obj_unlink(o);
    free(o); /* the header is first in both object kinds */
}

static mt_mutex *sct_rt_mutex_new(mt_rt *rt)
{
    return (mt_mutex *)sct_obj_new(sct_of(rt), false);
}

static mt_cond *sct_rt_cond_new(mt_rt *rt)
{
    return (mt_cond *)sct_obj_new(sct_of(rt), true);
}

static void sct_rt_mutex_free(mt_rt *rt, mt_mutex *m)
{
    sct_obj_free(sct_of(rt), (sct_obj *)m, false);
}

static void sct_rt_cond_free(mt_rt *rt, mt_cond *c)
{
    sct_obj_free(sct_of(rt), (sct_obj *)c, true);
}

/* ------------------------------------------------------------------------ */
/* The runtime: mutexes.                                                     */

static bool sct_held_by_current(const sct_sched *s, const sct_mutex *m)
{
    return m->owner == s->cur->id && m->owner_gen == s->gen;
}

/* Whether taking m must wait. Inside an execution any owner counts, even
 * one from an abandoned execution that will never release it: that is a
 * deadlock worth reporting. Outside, no actor will ever run again, so only
 * the host's own hold counts and the host may take over the rest. */
static bool sct_held(const sct_sched *s, const sct_mutex *m)
{
    if (s->running)
        return m->owner != SCT_NOBODY;
    return m->owner == SCT_HOST;
}

/* Takes m for the running actor, blocking while someone else holds it. */
static void sct_acquire(sct_sched *s, sct_mutex *m)
{
    while (sct_held(s, m)) {
        sct_block(s, SCT_W_MUTEX, m);
        sct_stepf(s, "lock %s blocks (held by %s)", m->hdr.tag, sct_owner_name(s, m));
    }
    m->owner = s->cur->id;
    m->owner_gen = s->gen;
}

static void sct_rt_lock(mt_rt *rt, mt_mutex *mv)
{
    sct_sched *s = sct_of(rt);
    sct_mutex *m = (sct_mutex *)mv;
    if (!s->running) {
        if (sct_held(s, m))
            sct_fatal("lock %s: already held outside an execution", m->hdr.tag);
        m->owner = SCT_HOST;
        return;
    }
    if (sct_held_by_current(s, m))
        sct_misuse(s, "lock %s: already held by this actor", m->hdr.tag);
    sct_stepf(s, "lock %s", m->hdr.tag);
    sct_acquire(s, m);
}

static void sct_rt_unlock(mt_rt *rt, mt_mutex *mv)
{
    sct_sched *s = sct_of(rt);
    sct_mutex *m = (sct_mutex *)mv;
    char names[SCT_LABEL_MAX];
    if (!s->running) {
        if (m->owner != SCT_HOST)
            sct_fatal("unlock %s: not held outside an execution", m->hdr.tag);
        m->owner = SCT_NOBODY;
        return;
    }
    if (!sct_held_by_current(s, m))
        sct_misuse(s, "unlock %s: held by %s", m->hdr.tag, sct_owner_name(s, m));
    m->owner = SCT_NOBODY;
    sct_wake(s, SCT_W_MUTEX, m, names, sizeof names);
    sct_stepf(s, "unlock %s%s", m->hdr.tag, names);
}

/* ------------------------------------------------------------------------ */
/* The runtime: conditions (Mesa: a woken waiter re-takes the mutex and must */
/* re-check its predicate).                                                   */

static void sct_rt_cond_wait(mt_rt *rt, mt_cond *cv, mt_mutex *mv)
{
    sct_sched *s = sct_of(rt);
    sct_cond *c = (sct_cond *)cv;
    sct_mutex *m = (sct_mutex *)mv;
    char names[SCT_LABEL_MAX];
    if (!s->running)
        sct_fatal("wait %s: outside an execution nobody can signal", c->hdr.tag);
    if (!sct_held_by_current(s, m))
        sct_misuse(s, "wait %s: mutex %s held by %s", c->hdr.tag, m->hdr.tag, sct_owner_name(s, m));
    m->owner = SCT_NOBODY;
    sct_wake(s, SCT_W_MUTEX, m, names, sizeof names);
    sct_block(s, SCT_W_COND, c);
    sct_stepf(s, "wait %s, unlock %s%s", c->hdr.tag, m->hdr.tag, names);
    sct_acquire(s, m);
}

static void sct_rt_cond_broadcast(mt_rt *rt, mt_cond *cv)
{
    sct_sched *s = sct_of(rt);
    sct_cond *c = (sct_cond *)cv;
    char names[SCT_LABEL_MAX];
    if (!s->running)
        return; /* no actor can be waiting */
    sct_wake(s, SCT_W_COND, c, names, sizeof names);
    sct_stepf(s, "broadcast %s%s", c->hdr.tag, names);
}

/* ------------------------------------------------------------------------ */
/* The runtime: threads and the clock.                                        */

static mt_thread *sct_rt_thread_start(mt_rt *rt, void *(*fn)(void *), void *arg, const char *name)
{
    sct_sched *s = sct_of(rt);
    if (!s->running)
        sct_fatal("thread_start %s: outside an execution", name ? name : "");
    sct_actor *a = sct_spawn(s, fn, arg, name);
    sct_stepf(s, "start %s", a->name);
    return (mt_thread *)a;
}

static void *sct_rt_thread_join(mt_rt *rt, mt_thread *t)
{
    sct_sched *s = sct_of(rt);
    sct_actor *a = (sct_actor *)t;
    if (!s->running)
        sct_fatal("thread_join: outside an execution");
    if (a == s->cur)
        sct_misuse(s, "join: an actor cannot join itself");
    if (a->joined)
        sct_misuse(s, "join %s: joined twice", a->name);
    a->joined = true;
    sct_stepf(s, "join %s", a->name);
    while (a->state != SCT_A_DONE) {
        sct_block(s, SCT_W_JOIN, a);
        sct_stepf(s, "join %s blocks", a->name);
    }
    return a->result;
}

static int64_t sct_rt_now_ticks(mt_rt *rt)
{
    sct_sched *s = sct_of(rt);
    if (s->running)
        sct_stepf(s, "now");
    return SCT_CLOCK_BASE_TICKS + s->now_ms * SCT_TICKS_PER_MS +
           (int64_t)s->steps * SCT_TICKS_PER_STEP;
}

static int64_t sct_rt_mono_ms(mt_rt *rt)
{
    sct_sched *s = sct_of(rt);
    if (s->running)
        sct_stepf(s, "mono");
    return s->now_ms;
}

/* True when woken before the deadline (by a broadcast); false once it has
 * passed. Either way the caller holds m again and re-checks. */
static bool sct_rt_cond_timedwait(mt_rt *rt, mt_cond *cv, mt_mutex *mv, int64_t deadline_ms)
{
    sct_sched *s = sct_of(rt);
    sct_cond *c = (sct_cond *)cv;
    sct_mutex *m = (sct_mutex *)mv;
    char names[SCT_LABEL_MAX];
    if (!s->running)
        sct_fatal("timedwait %s: outside an execution", c->hdr.tag);
    if (!sct_held_by_current(s, m))
        sct_misuse(s, "timedwait %s: mutex %s held by %s", c->hdr.tag, m->hdr.tag,
                   sct_owner_name(s, m));
    if (s->now_ms >= deadline_ms) {
        sct_stepf(s, "timedwait %s: deadline %" PRId64 " ms passed", c->hdr.tag, deadline_ms);
        return false;
    }
    m->owner = SCT_NOBODY;
    sct_wake(s, SCT_W_MUTEX, m, names, sizeof names);
    sct_block_until(s, c, deadline_ms);
    sct_stepf(s, "timedwait %s until %" PRId64 " ms, unlock %s%s", c->hdr.tag, deadline_ms,
              m->hdr.tag, names);
    sct_acquire(s, m);
    return s->now_ms < deadline_ms;
}

const mt_rt_ops sct_rt_ops = {
    .mutex_new = sct_rt_mutex_new,
    .mutex_free = sct_rt_mutex_free,
    .lock = sct_rt_lock,
    .unlock = sct_rt_unlock,
    .cond_new = sct_rt_cond_new,
    .cond_free = sct_rt_cond_free,
    .cond_wait = sct_rt_cond_wait,
    .cond_broadcast = sct_rt_cond_broadcast,
    .thread_start = sct_rt_thread_start,
    .thread_join = sct_rt_thread_join,
    .now_ticks = sct_rt_now_ticks,
    .mono_ms = sct_rt_mono_ms,
    .cond_timedwait = sct_rt_cond_timedwait,
};

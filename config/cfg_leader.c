/*
 * cfg_leader.c -- one leader among authority replicas that share a store.
 *
 * Several authority processes may run on one durable store, so that no
 * single process is on the fleet's serving path. The state document
 * carries a leader record {id, url, term, beat}. The leader rewrites it
 * (beat + 1) every third of the leader lease L, by compare-and-swap like
 * every other write, and acts as the authority -- grants leases, answers
 * long polls, pushes, runs the migrator -- only while its last successful
 * beat was *sent* less than L ago. A standby reads the record every third
 * of L; when the record has not changed for L plus half of L by its own
 * clock, the leader has stopped acting (its last beat was sent before the
 * standby saw it), and the standby takes over: compare-and-swap the record
 * to itself with term + 1. Two takeovers race on the ETag, and one wins.
 * Only monotonic clocks are compared with themselves; the half-L margin
 * covers their rates.
 *
 * A new leader knows nothing of the leases its predecessor granted, so,
 * like a restarted authority, it lets no push complete before one lease
 * (the rest lease in a rest phase) plus the margin has passed since it took
 * over; the sidecars meanwhile renew with it (their retries rotate through
 * the replicas, and standbys redirect them to the leader), so none loses
 * its lease when the takeover takes less than about half a lease.
 *
 * A replica that finds the record naming itself (a restart of the same
 * replica) takes over at once: the process that wrote it is gone.
 */
#include "cfg.h"
#include "cfg_authority_int.h"
#include "mt_bugs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t now_of(cfg_authority *a)
{
    return a->rt->ops->mono_ms(a->rt);
}

bool cfg_leader_active(cfg_authority *a, int64_t now)
{
    return a->leading && now < a->lead_until;
}

bool cfg_authority_leader(cfg_authority *a, cfg_leader_info *out)
{
    a->rt->ops->lock(a->rt, a->mu);
    bool active = cfg_leader_active(a, now_of(a));
    if (out)
        *out = a->leader_seen;
    a->rt->ops->unlock(a->rt, a->mu);
    return active;
}

/* Publishes what this replica knows of leadership. */
static void set_leading(cfg_authority *a, bool leading, int64_t until)
{
    a->rt->ops->lock(a->rt, a->mu);
    /* A beat only extends the lease: waking every long poll and push for it
     * would cost the whole fleet a wake-up every third of a leader lease. */
    bool moved = a->leading != leading || strcmp(a->leader_seen.id, a->leader.id) != 0 ||
                 a->leader_seen.term != a->leader.term;
    a->leading = leading;
    a->lead_until = until;
    a->leader_seen = a->leader;
    if (moved) {
        a->rt->ops->cond_broadcast(a->rt, a->changed);
        a->rt->ops->cond_broadcast(a->rt, a->acked);
    }
    a->rt->ops->unlock(a->rt, a->mu);
}

static bool same_record(const cfg_leader_info *x, const cfg_leader_info *y)
{
    return strcmp(x->id, y->id) == 0 && x->term == y->term && x->beat == y->beat;
}

/* Writes the leader record (and the rest of the document unchanged);
 * sent: when the write left. Holds store_mu. */
static mt_status write_record(cfg_authority *a, const cfg_leader_info *rec, int64_t *sent)
{
    a->rt->ops->lock(a->rt, a->mu);
    int64_t version = a->view.version;
    mt_phase phase = a->view.phase;
    int64_t generation = a->view.generation;
    a->rt->ops->unlock(a->rt, a->mu);
    cfg_leader_info before = a->leader;
    a->leader = *rec;
    *sent = now_of(a);
    mt_status st = cfg_doc_write(a, version, phase, generation, a->migration);
    if (!mt_is_ok(&st))
        a->leader = before;
    return st;
}

/* This replica takes over: the record becomes its own, the state is the
 * document's, and, after another replica (inherit), pushes wait out the
 * leases it cannot know; at start the load has set that grace already.
 * Holds store_mu. */
static mt_status take_over(cfg_authority *a, int64_t term, bool inherit)
{
    cfg_leader_info rec = {.term = term, .beat = 0};
    snprintf(rec.id, sizeof rec.id, "%s", a->self_id);
    snprintf(rec.url, sizeof rec.url, "%s", a->self_url);
    int64_t sent;
    mt_status st = write_record(a, &rec, &sent);
    if (!mt_is_ok(&st))
        return st;
    if (inherit && !MT_BUG(TakeOverWithoutGrace)) {
        a->rt->ops->lock(a->rt, a->mu);
        a->started_ms = sent; /* the grace: leases granted by the one before */
        a->fresh = false;
        a->grace_ms = a->view.lease_ms;
        a->view.settled = false;
        a->rt->ops->unlock(a->rt, a->mu);
    }
    a->next_beat = sent + a->leader_ms / 3;
    set_leading(a, true, sent + a->leader_ms);
    return st;
}

mt_status cfg_leader_start(cfg_authority *a, int64_t now)
{
    if (!a->ha) {
        a->rt->ops->lock(a->rt, a->mu);
        a->leading = true;
        a->lead_until = INT64_MAX;
        a->rt->ops->unlock(a->rt, a->mu);
        return mt_ok();
    }
    a->leader_changed_at = now;
    if (!a->leader.id[0] || strcmp(a->leader.id, a->self_id) == 0)
        return take_over(a, a->leader.term + 1, false);
    set_leading(a, false, 0);
    return mt_ok();
}

/* The leader's beat. Holds store_mu. */
static void beat(cfg_authority *a, int64_t now)
{
    if (strcmp(a->leader.id, a->self_id) != 0) { /* a reload showed another leader */
        a->leader_changed_at = now;
        set_leading(a, false, 0);
        return;
    }
    if (now < a->next_beat)
        return;
    cfg_leader_info rec = a->leader;
    rec.beat++;
    int64_t sent;
    mt_status st = write_record(a, &rec, &sent);
    if (mt_is_ok(&st)) {
        a->next_beat = sent + a->leader_ms / 3;
        set_leading(a, true, sent + a->leader_ms);
        return;
    }
    if (st.http == 412) { /* someone else wrote: still ours? */
        cfg_leader_info now_rec;
        mt_status re = cfg_doc_reload(a, &now_rec);
        if (mt_is_ok(&re)) {
            a->leader = now_rec;
            if (strcmp(now_rec.id, a->self_id) != 0) {
                a->leader_changed_at = now;
                set_leading(a, false, 0);
                return;
            }
        }
    }
    a->next_beat = now + a->leader_ms / 10; /* try again soon; leading lapses by itself */
}

/* A standby's watch. Holds store_mu. */
static void watch(cfg_authority *a, int64_t now)
{
    if (now < a->next_beat)
        return;
    a->next_beat = now + a->leader_ms / 3;
    cfg_leader_info rec, before = a->leader;
    mt_status st = cfg_doc_reload(a, &rec);
    if (!mt_is_ok(&st))
        return;
    if (!same_record(&rec, &before)) {
        a->leader = rec;
        a->leader_changed_at = now;
        set_leading(a, false, 0);
        return;
    }
    if (now - a->leader_changed_at < a->leader_ms + a->leader_ms / 2)
        return;
    mt_status won = take_over(a, rec.term + 1, true);
    if (!mt_is_ok(&won))
        a->leader_changed_at = now; /* lost the race: watch the winner */
}

void cfg_leader_tick(cfg_authority *a)
{
    if (!a->ha)
        return;
    mt_rt *rt = a->rt;
    rt->ops->lock(rt, a->store_mu);
    int64_t now = now_of(a);
    rt->ops->lock(rt, a->mu);
    bool leading = a->leading;
    rt->ops->unlock(rt, a->mu);
    if (leading)
        beat(a, now);
    else
        watch(a, now);
    rt->ops->unlock(rt, a->store_mu);
}

void cfg_authority_replica_seen(cfg_authority *a, const char *id, const char *url)
{
    a->rt->ops->lock(a->rt, a->mu);
    int64_t now = now_of(a);
    size_t at = CFG_REPLICAS_MAX, oldest = 0;
    for (size_t i = 0; i < CFG_REPLICAS_MAX; i++) {
        if (strcmp(a->replicas[i].id, id) == 0) {
            at = i;
            break;
        }
        if (a->replicas[i].at < a->replicas[oldest].at)
            oldest = i;
    }
    if (at == CFG_REPLICAS_MAX)
        at = oldest; /* a new one takes the place heard from longest ago */
    snprintf(a->replicas[at].id, sizeof a->replicas[at].id, "%s", id);
    snprintf(a->replicas[at].url, sizeof a->replicas[at].url, "%s", url);
    a->replicas[at].at = now;
    a->rt->ops->unlock(a->rt, a->mu);
}

size_t cfg_authority_replicas(cfg_authority *a, cfg_replica_info *out, size_t cap)
{
    a->rt->ops->lock(a->rt, a->mu);
    int64_t now = now_of(a);
    size_t n = 0;
    for (size_t i = 0; i < CFG_REPLICAS_MAX && n < cap; i++) {
        if (!a->replicas[i].id[0] || now - a->replicas[i].at > 5 * a->leader_ms)
            continue;
        memcpy(out[n].id, a->replicas[i].id, sizeof out[n].id);
        memcpy(out[n].url, a->replicas[i].url, sizeof out[n].url);
        out[n].since_ms = now - a->replicas[i].at;
        n++;
    }
    a->rt->ops->unlock(a->rt, a->mu);
    return n;
}

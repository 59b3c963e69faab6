/*
 * cfg_authority.c -- the configuration authority: the phase, its version
 * and the proxies' leases.
 *
 * State: the published view (version, phase, settled) and the migrator's
 * JSON live in one document in the store, written by compare-and-swap; the
 * registry of proxies and their leases lives in memory only (see cfg.h for
 * why a restart makes the first push wait one lease time).
 *
 * Locks: store_mu serializes writes of the document (a push and a
 * checkpoint may race); mu guards the published view and the registry and
 * is never held across store I/O, so long polls and acknowledgements are
 * not stalled behind an fsync or a round trip to a table. push_mu makes
 * pushes one at a time, as the local service does.
 *
 * A push, in order: write the new version durably; publish it (long polls
 * return, acknowledgements of the old version are refused from now on);
 * move this process's own operations (the local service drains those of
 * the old phase); wait for the remote proxies; mark the version settled.
 *
 * Leases at rest. Before a migration starts and after it is done (phases
 * use_old_hide_metadata and use_new_hide_metadata) nothing is in motion,
 * and a proxy should keep serving through a long authority outage. There
 * the authority grants the long rest lease. The price is paid by the next
 * push out of such a phase: it first *arms* -- publishes the same phase
 * again as a new version with short leases -- and waits as for any push,
 * i.e. until every proxy acknowledged it (its long lease becomes a short
 * one) or its long lease ran out; then it publishes the new phase. A proxy
 * that vanished with a long lease therefore holds up the start of a
 * migration by up to the rest lease, never its safety; status names it.
 * A restart in a rest phase waits out the rest lease for the same reason;
 * in the other phases no long lease can be outstanding, because the push
 * that left the rest phase had waited for all of them.
 */
#include "cfg.h"
#include "cfg_authority_int.h"
#include "cfg_json.h"
#include "mt_bugs.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(cfg_authority *a)
{
    return a->rt->ops->mono_ms(a->rt);
}

static bool rest_phase(mt_phase p)
{
    return p == MT_PHASE_USE_OLD_HIDE_METADATA || p == MT_PHASE_USE_NEW_HIDE_METADATA;
}

/* The lease an acknowledgement of a version in phase p earns. */
static int64_t lease_for(cfg_authority *a, mt_phase p)
{
    return rest_phase(p) ? a->rest_lease_ms : a->lease_ms;
}

/* ------------------------------------------------------------------------ */
/* The document.                                                             */

static char *doc_build(const char *id, int64_t version, mt_phase phase, int64_t generation,
                       const char *migration, const cfg_leader_info *leader)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "format", DOC_FORMAT);
    cJSON_AddStringToObject(doc, "migration_id", id);
    if (leader && leader->id[0]) {
        cJSON *l = cJSON_AddObjectToObject(doc, "leader");
        cJSON_AddStringToObject(l, "id", leader->id);
        cJSON_AddStringToObject(l, "url", leader->url);
        cJSON_AddNumberToObject(l, "term", (double)leader->term);
        cJSON_AddNumberToObject(l, "beat", (double)leader->beat);
    }
    cJSON_AddNumberToObject(doc, "config_version", (double)version);
    cJSON_AddStringToObject(doc, "phase", mt_phase_name(phase));
    if (generation > 0)
        cJSON_AddNumberToObject(doc, "generation", (double)generation);
    cJSON *mig = migration ? cJSON_Parse(migration) : NULL;
    if (mig)
        cJSON_AddItemToObject(doc, "migration", mig);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return text;
}

/* id is "" in a document written before migrations had identities. */
static mt_status doc_parse(const char *text, char id[CFG_MIGRATION_ID_MAX], int64_t *version,
                           mt_phase *phase, int64_t *generation, char **migration)
{
    cJSON *doc = cJSON_Parse(text);
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(doc, "migration_id");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "config_version");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "phase");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "migration");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(doc, "generation");
    mt_status st = mt_ok();
    int64_t n = 0, gen = 0;
    if (!cfg_json_int64(v, &n) || n < 1 || !cJSON_IsString(p) ||
        (g && (!cfg_json_int64(g, &gen) || gen < 0)) || !mt_phase_parse(p->valuestring, phase) ||
        (i && (!cJSON_IsString(i) || strlen(i->valuestring) >= CFG_MIGRATION_ID_MAX))) {
        st = mt_error(500, MT_ERR_INTERNAL,
                      "the stored state is not an mtable state document (config_version and "
                      "phase missing or invalid)");
    } else {
        *version = n;
        *generation = gen;
        snprintf(id, CFG_MIGRATION_ID_MAX, "%s", i ? i->valuestring : "");
        *migration = cJSON_IsObject(m) ? cJSON_PrintUnformatted(m) : NULL;
    }
    cJSON_Delete(doc);
    return st;
}

void cfg_doc_leader(const char *text, cfg_leader_info *out)
{
    memset(out, 0, sizeof *out);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(doc, "leader");
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(l, "id");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(l, "url");
    int64_t term = 0, beat = 0;
    if (cJSON_IsString(i) && cJSON_IsString(u) &&
        cfg_json_int64(cJSON_GetObjectItemCaseSensitive(l, "term"), &term) &&
        cfg_json_int64(cJSON_GetObjectItemCaseSensitive(l, "beat"), &beat)) {
        snprintf(out->id, sizeof out->id, "%s", i->valuestring);
        snprintf(out->url, sizeof out->url, "%s", u->valuestring);
        out->term = term;
        out->beat = beat;
    }
    cJSON_Delete(doc);
}

/* Writes (version, phase, migration) over the document this authority last
 * read or wrote, with its leader record. Holds store_mu. */
mt_status cfg_doc_write(cfg_authority *a, int64_t version, mt_phase phase, int64_t generation,
                        const char *migration)
{
    /* A replica writes only as the leader its last read or write of the
     * record names: after a reload that showed another leader, its ETag is
     * current, and only this check keeps a push that was already under
     * way from overwriting the new leader's state. */
    if (a->ha && a->leader.id[0] && strcmp(a->leader.id, a->self_id) != 0 &&
        !MT_BUG(WriteAfterLosingLead))
        return mt_error(503, MT_ERR_NOT_LEADER,
                        "this authority replica no longer leads (the leader is %s)",
                        a->leader.id[0] ? a->leader.id : "unknown");
    char *text = doc_build(a->view.migration_id, version, phase, generation, migration,
                           a->ha ? &a->leader : NULL);
    if (!text)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    char etag[CFG_ETAG_MAX];
    mt_status st = a->store->ops->cas(a->store, text, a->etag, etag);
    /* A store that failed, or could not say whether the write applied (a
     * table store whose answer was lost): read it back. Our document there
     * means it applied; the one we replaced means it did not (try again);
     * anything else means someone else wrote (412, as the CAS would say). */
    for (int tries = 0; tries < DOC_WRITE_TRIES && st.http >= 500; tries++) {
        char *now = NULL, now_etag[CFG_ETAG_MAX];
        mt_status ld = a->store->ops->load(a->store, &now, now_etag);
        if (!mt_is_ok(&ld)) {
            free(now);
            continue;
        }
        if (now && strcmp(now, text) == 0) {
            memcpy(etag, now_etag, sizeof etag);
            st = mt_ok();
        } else if (strcmp(now_etag, a->etag) == 0) {
            st = a->store->ops->cas(a->store, text, a->etag, etag);
        } else {
            st = mt_error(412, "ConditionNotMet", "the state changed while a write was in doubt");
        }
        free(now);
    }
    free(text);
    if (mt_is_ok(&st))
        memcpy(a->etag, etag, sizeof etag);
    return st;
}

/* Reads the document again after someone else changed it and publishes
 * what it says. Holds store_mu. */
mt_status cfg_doc_reload(cfg_authority *a, cfg_leader_info *leader)
{
    char *text = NULL, *migration = NULL;
    char etag[CFG_ETAG_MAX], id[CFG_MIGRATION_ID_MAX];
    int64_t version = 0, generation = 0;
    mt_phase phase = MT_PHASE_USE_OLD_HIDE_METADATA;
    mt_status st = a->store->ops->load(a->store, &text, etag);
    if (mt_is_ok(&st) && !text)
        st = mt_error(500, MT_ERR_INTERNAL, "the stored state disappeared");
    if (mt_is_ok(&st))
        st = doc_parse(text, id, &version, &phase, &generation, &migration);
    cfg_leader_info cur;
    if (mt_is_ok(&st))
        cfg_doc_leader(text, &cur);
    if (mt_is_ok(&st) && leader)
        *leader = cur;
    free(text);
    if (!mt_is_ok(&st))
        return st;
    memcpy(a->etag, etag, sizeof etag);
    free(a->migration);
    a->migration = migration;
    /* The ETag is now another writer's: if that writer leads, so must the
     * record this replica writes with, or its next beat or push would take
     * the document back (WriteAfterLosingLead). */
    bool other = a->ha && cur.id[0] && strcmp(cur.id, a->self_id) != 0;
    if (other)
        a->leader = cur;
    a->rt->ops->lock(a->rt, a->mu);
    if (other) {
        a->leading = false;
        a->leader_seen = cur;
    }
    bool moved = a->view.version != version;
    if (moved)
        a->holding = false; /* another replica's version: its own to settle */
    memcpy(a->view.migration_id, id, sizeof id);
    a->view.version = version;
    a->view.phase = phase;
    a->view.generation = generation;
    a->view.lease_ms = lease_for(a, phase);
    a->view.settled = false;
    a->rt->ops->cond_broadcast(a->rt, a->changed);
    a->rt->ops->cond_broadcast(a->rt, a->acked);
    a->rt->ops->unlock(a->rt, a->mu);
    if (moved)
        st = mt_config_local_set_roles(a->local, phase, generation, version, false);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Pushes.                                                                   */

/* Whether some proxy may still serve a version before `version`: it holds
 * a lease (plus the margin) and has not acknowledged it. Also true during
 * the grace period after start, when leases granted by an earlier
 * incarnation may be live. *wake: when to look again. Holds mu. */
static bool remote_pending(cfg_authority *a, int64_t version, int64_t now, int64_t *wake)
{
    bool pending = false;
    *wake = INT64_MAX;
    int64_t grace_end = a->started_ms + a->grace_ms + a->margin_ms;
    if (!a->fresh && now < grace_end) {
        pending = true;
        *wake = grace_end;
    }
    for (lease_rec *r = a->leases; r; r = r->next) {
        int64_t gone = r->until + a->margin_ms;
        if (r->mismatched || r->acked_version >= version || now >= gone)
            continue;
        pending = true;
        if (gone < *wake)
            *wake = gone;
    }
    return pending;
}

static void wait_remote(cfg_authority *a, int64_t version)
{
    mt_rt *rt = a->rt;
    rt->ops->lock(rt, a->mu);
    int64_t wake;
    while (!a->closing && a->view.version == version &&
           remote_pending(a, version, now_ms(a), &wake))
        rt->ops->cond_timedwait(rt, a->acked, a->mu, wake);
    if (a->view.version == version && !a->holding)
        a->view.settled = true;
    rt->ops->cond_broadcast(rt, a->changed);
    rt->ops->unlock(rt, a->mu);
}

/* The answer of a replica that does not lead now. Holds mu. */
static mt_status not_leader(cfg_authority *a)
{
    return mt_error(503, "NotLeader",
                    "this authority replica does not lead now%s%s; ask the leader or retry",
                    a->leader_seen.url[0] ? "; the leader is at " : "", a->leader_seen.url);
}

/* A proxy with other backends that called within the last lease: a push
 * must not go on while it may be serving something else. Holds mu. */
static const lease_rec *mismatched_live(cfg_authority *a, int64_t now)
{
    for (const lease_rec *r = a->leases; r; r = r->next)
        if (r->mismatched && now - r->seen_at < a->lease_ms)
            return r;
    return NULL;
}

/* Publishes (phase, generation, lease_ms) as the next version and waits as
 * a push does; settles it unless hold. Holds push_mu. */
static mt_status publish(cfg_authority *a, mt_phase phase, int64_t generation, int64_t lease_ms,
                         bool hold)
{
    mt_rt *rt = a->rt;
    rt->ops->lock(rt, a->store_mu);
    rt->ops->lock(rt, a->mu);
    int64_t version = a->view.version + 1;
    rt->ops->unlock(rt, a->mu);
    mt_status st = cfg_doc_write(a, version, phase, generation, a->migration);
    if (st.http == 412) {
        mt_status re = cfg_doc_reload(a, NULL);
        st = mt_is_ok(&re) ? mt_error(409, "PhaseConflict",
                                      "another authority changed the state first; it is now "
                                      "reloaded, try again")
                           : re;
    }
    rt->ops->unlock(rt, a->store_mu);
    if (mt_is_ok(&st)) {
        rt->ops->lock(rt, a->mu);
        a->view.version = version;
        a->view.phase = phase;
        a->view.generation = generation;
        a->view.lease_ms = lease_ms;
        a->view.settled = false;
        a->pushing = true;
        a->holding = hold;
        rt->ops->cond_broadcast(rt, a->changed);
        rt->ops->cond_broadcast(rt, a->acked);
        rt->ops->unlock(rt, a->mu);
        st = mt_config_local_set_roles(a->local, phase, generation, version, false);
        wait_remote(a, version);
        if (!hold)
            mt_config_local_settle(a->local, version);
        rt->ops->lock(rt, a->mu);
        a->pushing = false;
        rt->ops->unlock(rt, a->mu);
    }
    return st;
}

/* swap: phase must be use_old_hide_metadata, pushed from
 * use_new_hide_metadata as the next generation. */
static mt_status push_as(cfg_authority *a, mt_phase phase, bool hold, bool swap)
{
    mt_rt *rt = a->rt;
    rt->ops->lock(rt, a->mu);
    const lease_rec *odd = mismatched_live(a, now_ms(a));
    mt_status st =
        odd ? mt_error(409, "FleetMismatch",
                       "proxy %s serves other backends (fingerprint %s, this authority's %s); "
                       "fix its --old/--new or stop it, then push again",
                       odd->id, odd->fingerprint, a->fingerprint)
            : mt_ok();
    if (mt_is_ok(&st) && !cfg_leader_active(a, now_ms(a)))
        st = not_leader(a);
    rt->ops->unlock(rt, a->mu);
    if (!mt_is_ok(&st))
        return st;
    rt->ops->lock(rt, a->push_mu);
    rt->ops->lock(rt, a->mu);
    mt_phase from = a->view.phase;
    int64_t generation = a->view.generation;
    bool armed = a->view.lease_ms <= a->lease_ms;
    rt->ops->unlock(rt, a->mu);
    if (swap && from != MT_PHASE_USE_NEW_HIDE_METADATA && !MT_BUG(SwapBeforeCleanup))
        st = mt_error(409, "PhaseTransitionNotAllowed",
                      "the roles of the accounts are swapped only from %s, not from %s",
                      mt_phase_name(MT_PHASE_USE_NEW_HIDE_METADATA), mt_phase_name(from));
    if (mt_is_ok(&st) && !armed) /* long leases become short ones first */
        st = publish(a, from, generation, a->lease_ms, false);
    if (mt_is_ok(&st))
        st = publish(a, phase, swap ? generation + 1 : generation, lease_for(a, phase), hold);
    rt->ops->unlock(rt, a->push_mu);
    return st;
}

mt_status cfg_authority_push(cfg_authority *a, mt_phase phase)
{
    return push_as(a, phase, false, false);
}

mt_status cfg_authority_push_held(cfg_authority *a, mt_phase phase)
{
    return push_as(a, phase, true, false);
}

mt_status cfg_authority_push_swap(cfg_authority *a)
{
    return push_as(a, MT_PHASE_USE_OLD_HIDE_METADATA, false, true);
}

int64_t cfg_authority_generation(cfg_authority *a)
{
    a->rt->ops->lock(a->rt, a->mu);
    int64_t g = a->view.generation;
    a->rt->ops->unlock(a->rt, a->mu);
    return g;
}

/* ------------------------------------------------------------------------ */
/* Long polls and acknowledgements.                                          */

void cfg_authority_poll(cfg_authority *a, int64_t after, bool known_settled, int64_t wait_ms,
                        cfg_view *out)
{
    mt_rt *rt = a->rt;
    rt->ops->lock(rt, a->mu);
    int64_t deadline = now_ms(a) + (wait_ms > 0 ? wait_ms : 0);
    while (!a->closing && a->view.version == after && (known_settled || !a->view.settled)) {
        if (!rt->ops->cond_timedwait(rt, a->changed, a->mu, deadline))
            break;
    }
    *out = a->view;
    rt->ops->unlock(rt, a->mu);
}

void cfg_authority_migration_id(cfg_authority *a, char out[CFG_MIGRATION_ID_MAX])
{
    a->rt->ops->lock(a->rt, a->mu);
    memcpy(out, a->view.migration_id, CFG_MIGRATION_ID_MAX);
    a->rt->ops->unlock(a->rt, a->mu);
}

static lease_rec **bucket_of(cfg_authority *a, const char *id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return &a->buckets[h % LEASE_BUCKETS];
}

/* The record of id, made when missing (NULL on out of memory). Holds mu. */
static lease_rec *lease_find(cfg_authority *a, const char *id)
{
    lease_rec **b = bucket_of(a, id);
    for (lease_rec *r = *b; r; r = r->hnext)
        if (strcmp(r->id, id) == 0)
            return r;
    lease_rec *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    snprintf(r->id, sizeof r->id, "%s", id);
    r->next = a->leases;
    a->leases = r;
    r->hnext = *b;
    *b = r;
    return r;
}

/* Takes r out of its bucket (the caller unlinks it from the list). */
static void lease_unhash(cfg_authority *a, lease_rec *r)
{
    for (lease_rec **pp = bucket_of(a, r->id); *pp; pp = &(*pp)->hnext) {
        if (*pp == r) {
            *pp = r->hnext;
            return;
        }
    }
}

static bool given(const char *s)
{
    return s && *s;
}

mt_status cfg_authority_ack(cfg_authority *a, const cfg_ack *ack)
{
    const char *id = ack->id;
    int64_t version = ack->version;
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= CFG_ID_MAX)
        return mt_error(400, MT_ERR_INVALID_INPUT, "a proxy id has 1 to %d characters",
                        CFG_ID_MAX - 1);
    if ((given(ack->fingerprint) && strlen(ack->fingerprint) >= CFG_FINGERPRINT_MAX) ||
        (given(ack->migration_id) && strlen(ack->migration_id) >= CFG_MIGRATION_ID_MAX))
        return mt_error(400, MT_ERR_INVALID_INPUT, "the fingerprint or migration id is too long");
    mt_rt *rt = a->rt;
    mt_status st = mt_ok();
    rt->ops->lock(rt, a->mu);
    int64_t now = now_ms(a);
    if (!cfg_leader_active(a, now)) {
        st = not_leader(a);
        rt->ops->unlock(rt, a->mu);
        return st;
    }
    bool odd = given(ack->fingerprint) && a->fingerprint[0] &&
               strcmp(ack->fingerprint, a->fingerprint) != 0;
    lease_rec *r = lease_find(a, id);
    if (!r) {
        st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
    } else if (odd) {
        r->mismatched = true;
        r->seen_at = now;
        r->until = 0;
        snprintf(r->fingerprint, sizeof r->fingerprint, "%s", ack->fingerprint);
        st = mt_error(409, "FingerprintMismatch",
                      "this proxy's backends (fingerprint %s) are not the authority's (%s); "
                      "give it the authority's --old and --new",
                      ack->fingerprint, a->fingerprint);
    } else if (given(ack->migration_id) && a->view.migration_id[0] &&
               strcmp(ack->migration_id, a->view.migration_id) != 0) {
        r->seen_at = now;
        st = mt_error(409, "MigrationMismatch",
                      "this authority serves migration %s, not %s; fetch the state again",
                      a->view.migration_id, ack->migration_id);
    } else if (version != a->view.version) {
        r->seen_at = now;
        st = mt_error(409, "StaleConfigVersion",
                      "version %lld is not the current one (%lld); fetch the state again",
                      (long long)version, (long long)a->view.version);
    } else {
        r->mismatched = false;
        if (given(ack->fingerprint))
            snprintf(r->fingerprint, sizeof r->fingerprint, "%s", ack->fingerprint);
        r->acked_version = version;
        r->acked_at = now;
        r->seen_at = now;
        r->until = now + a->view.lease_ms;
        rt->ops->cond_broadcast(rt, a->acked);
    }
    rt->ops->unlock(rt, a->mu);
    return st;
}

void cfg_authority_release(cfg_authority *a, const char *id)
{
    mt_rt *rt = a->rt;
    rt->ops->lock(rt, a->mu);
    for (lease_rec **pp = &a->leases; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) == 0) {
            lease_rec *r = *pp;
            *pp = r->next;
            lease_unhash(a, r);
            free(r);
            rt->ops->cond_broadcast(rt, a->acked);
            break;
        }
    }
    rt->ops->unlock(rt, a->mu);
}

size_t cfg_authority_proxies(cfg_authority *a, cfg_proxy_info *out, size_t cap)
{
    mt_rt *rt = a->rt;
    rt->ops->lock(rt, a->mu);
    int64_t now = now_ms(a);
    size_t n = 0;
    for (lease_rec **pp = &a->leases; *pp;) {
        lease_rec *r = *pp;
        int64_t last = r->until > r->seen_at ? r->until : r->seen_at;
        if (now - last > 10 * a->lease_ms) { /* long gone: forget it */
            *pp = r->next;
            lease_unhash(a, r);
            free(r);
            continue;
        }
        if (n < cap) {
            cfg_proxy_info *p = &out[n];
            memcpy(p->id, r->id, sizeof p->id);
            p->acked_version = r->acked_version;
            p->since_ack_ms = now - r->acked_at;
            p->lease_left_ms = r->mismatched ? 0 : r->until - now;
            p->mismatched = r->mismatched;
            /* remote_pending's rule, proxy by proxy */
            p->awaited = !a->view.settled && !r->mismatched && r->acked_version < a->view.version &&
                         now < r->until + a->margin_ms;
            memcpy(p->fingerprint, r->fingerprint, sizeof p->fingerprint);
        }
        n++;
        pp = &r->next;
    }
    rt->ops->unlock(rt, a->mu);
    return n;
}

/* ------------------------------------------------------------------------ */
/* The migrator's part of the document.                                      */

mt_status cfg_authority_load_migration(cfg_authority *a, char **json)
{
    a->rt->ops->lock(a->rt, a->store_mu);
    *json = a->migration ? strdup(a->migration) : NULL;
    a->rt->ops->unlock(a->rt, a->store_mu);
    return mt_ok();
}

mt_status cfg_authority_save_migration(cfg_authority *a, const char *json)
{
    char *copy = json ? strdup(json) : NULL;
    if (json && !copy)
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    a->rt->ops->lock(a->rt, a->store_mu);
    a->rt->ops->lock(a->rt, a->mu);
    cfg_view v = a->view;
    mt_status st = cfg_leader_active(a, now_ms(a)) ? mt_ok() : not_leader(a);
    a->rt->ops->unlock(a->rt, a->mu);
    if (mt_is_ok(&st))
        st = cfg_doc_write(a, v.version, v.phase, v.generation, copy);
    if (mt_is_ok(&st)) {
        free(a->migration);
        a->migration = copy;
    } else {
        free(copy);
        if (st.http == 412) {
            mt_status re = cfg_doc_reload(a, NULL);
            st = mt_is_ok(&re)
                     ? mt_error(409, "PhaseConflict", "another authority changed the state first")
                     : re;
        }
    }
    a->rt->ops->unlock(a->rt, a->store_mu);
    return st;
}

/* ------------------------------------------------------------------------ */
/* The service, creation and teardown.                                       */

static cfg_authority *of(mt_config_service *s)
{
    return (cfg_authority *)s;
}

static mt_subscription *svc_subscribe(mt_config_service *s, const mt_subscriber *sub,
                                      mt_config *current)
{
    mt_config_service *local = of(s)->local;
    return local->ops->subscribe(local, sub, current);
}

static void svc_unsubscribe(mt_config_service *s, mt_subscription *sub)
{
    mt_config_service *local = of(s)->local;
    local->ops->unsubscribe(local, sub);
}

static mt_status svc_push(mt_config_service *s, mt_phase phase)
{
    return cfg_authority_push(of(s), phase);
}

static void svc_destroy(mt_config_service *s)
{
    (void)s; /* owned by the authority */
}

static const mt_config_ops authority_ops = {
    .subscribe = svc_subscribe,
    .unsubscribe = svc_unsubscribe,
    .push = svc_push,
    .destroy = svc_destroy,
};

mt_config_service *cfg_authority_service(cfg_authority *a)
{
    return &a->svc;
}

/* A new migration's identity: 128 random bits as hex. */
static void new_migration_id(char out[CFG_MIGRATION_ID_MAX])
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, b, sizeof b) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)sizeof b) { /* no urandom: time and pid still differ */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x =
            (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < sizeof b; i++, x = x * 6364136223846793005u + 1442695040888963407u)
            b[i] = (unsigned char)(x >> 56);
    }
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Reads the stored state, or stores the initial one. A state stored
 * before migrations had identities gets one now. */
static mt_status authority_load(cfg_authority *a, const cfg_authority_opts *opts)
{
    char *text = NULL;
    mt_status st = a->store->ops->load(a->store, &text, a->etag);
    if (!mt_is_ok(&st))
        return st;
    int64_t version = 1, generation = 0;
    mt_phase phase = opts ? opts->initial_phase : MT_PHASE_USE_OLD_HIDE_METADATA;
    a->fresh = text == NULL;
    if (text)
        st = doc_parse(text, a->view.migration_id, &version, &phase, &generation, &a->migration);
    cfg_doc_leader(text, &a->leader);
    if (mt_is_ok(&st) && !a->view.migration_id[0]) {
        if (opts && given(opts->migration_id))
            snprintf(a->view.migration_id, sizeof a->view.migration_id, "%s", opts->migration_id);
        else
            new_migration_id(a->view.migration_id);
        st = cfg_doc_write(a, version, phase, generation, a->migration);
    }
    free(text);
    if (!mt_is_ok(&st))
        return st;
    a->view.version = version;
    a->view.phase = phase;
    a->view.generation = generation;
    a->view.settled = false;
    a->view.lease_ms = lease_for(a, phase);
    /* Leases granted before this start: long ones only in a rest phase
     * (leaving one waited for all of them). */
    a->grace_ms = a->view.lease_ms;
    st = mt_config_local_set_roles(a->local, phase, generation, version, false);
    if (mt_is_ok(&st))
        st = cfg_leader_start(a, now_ms(a));
    return st;
}

cfg_authority *cfg_authority_new(mt_rt *rt, cfg_store *store, const cfg_authority_opts *opts,
                                 mt_status *st)
{
    cfg_authority *a = calloc(1, sizeof *a);
    if (!a) {
        *st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    a->svc.ops = &authority_ops;
    a->rt = rt;
    a->store = store;
    a->lease_ms = opts && opts->lease_ms > 0 ? opts->lease_ms : 10000;
    a->margin_ms = opts && opts->margin_ms > 0 ? opts->margin_ms : a->lease_ms / 2;
    a->rest_lease_ms =
        opts && opts->rest_lease_ms > a->lease_ms ? opts->rest_lease_ms : a->lease_ms;
    a->local = mt_config_local_new(rt, MT_PHASE_USE_OLD_HIDE_METADATA);
    a->push_mu = rt->ops->mutex_new(rt);
    a->store_mu = rt->ops->mutex_new(rt);
    a->mu = rt->ops->mutex_new(rt);
    a->changed = rt->ops->cond_new(rt);
    a->acked = rt->ops->cond_new(rt);
    a->started_ms = rt->ops->mono_ms(rt);
    if (!a->local || !a->push_mu || !a->store_mu || !a->mu || !a->changed || !a->acked) {
        *st = mt_error(500, MT_ERR_INTERNAL, "out of memory");
        cfg_authority_free(a);
        return NULL;
    }
    if (opts && given(opts->fingerprint))
        snprintf(a->fingerprint, sizeof a->fingerprint, "%s", opts->fingerprint);
    a->ha = opts && given(opts->replica_id);
    if (a->ha) {
        snprintf(a->self_id, sizeof a->self_id, "%s", opts->replica_id);
        snprintf(a->self_url, sizeof a->self_url, "%s",
                 given(opts->advertise_url) ? opts->advertise_url : "");
        a->leader_ms = opts->leader_ms > 0 ? opts->leader_ms : a->lease_ms / 4;
    }
    rt->ops->lock(rt, a->store_mu);
    *st = authority_load(a, opts);
    rt->ops->unlock(rt, a->store_mu);
    if (!mt_is_ok(st)) {
        cfg_authority_free(a);
        return NULL;
    }
    /* Settled once every lease a previous incarnation granted is over. */
    int64_t version = a->view.version;
    rt->ops->lock(rt, a->mu);
    int64_t wake;
    a->view.settled = !remote_pending(a, version, a->started_ms, &wake);
    rt->ops->unlock(rt, a->mu);
    return a;
}

/* Marks the current version settled if the grace period after start is
 * over and nothing else is pending; the proxy calls it now and then (it
 * is cheap) so that a restarted authority settles without a push. */
void cfg_authority_tick(cfg_authority *a)
{
    cfg_leader_tick(a);
    mt_rt *rt = a->rt;
    rt->ops->lock(rt, a->mu);
    int64_t wake;
    if (!a->view.settled && !a->pushing && !a->holding &&
        !remote_pending(a, a->view.version, now_ms(a), &wake)) {
        a->view.settled = true;
        rt->ops->cond_broadcast(rt, a->changed);
    }
    int64_t version = a->view.version;
    bool settled = a->view.settled;
    rt->ops->unlock(rt, a->mu);
    if (settled)
        mt_config_local_settle(a->local, version);
}

void cfg_authority_close(cfg_authority *a)
{
    a->rt->ops->lock(a->rt, a->mu);
    a->closing = true;
    a->rt->ops->cond_broadcast(a->rt, a->changed);
    a->rt->ops->cond_broadcast(a->rt, a->acked);
    a->rt->ops->unlock(a->rt, a->mu);
}

void cfg_authority_free(cfg_authority *a)
{
    if (!a)
        return;
    mt_rt *rt = a->rt;
    if (a->mu) {
        rt->ops->lock(rt, a->mu);
        a->closing = true;
        if (a->changed)
            rt->ops->cond_broadcast(rt, a->changed);
        if (a->acked)
            rt->ops->cond_broadcast(rt, a->acked);
        rt->ops->unlock(rt, a->mu);
    }
    while (a->leases) {
        lease_rec *r = a->leases;
        a->leases = r->next;
        free(r);
    }
    if (a->local)
        a->local->ops->destroy(a->local);
    if (a->changed)
        rt->ops->cond_free(rt, a->changed);
    if (a->acked)
        rt->ops->cond_free(rt, a->acked);
    if (a->mu)
        rt->ops->mutex_free(rt, a->mu);
    if (a->store_mu)
        rt->ops->mutex_free(rt, a->store_mu);
    if (a->push_mu)
        rt->ops->mutex_free(rt, a->push_mu);
    free(a->migration);
    free(a);
}

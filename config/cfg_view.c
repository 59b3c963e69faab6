/*
 * cfg_view.c -- the published state as a proxy reads it, and the rule that
 * keeps a proxy from ever going backwards.
 *
 * A proxy trusts its authority for *which* phase comes next, but not
 * blindly: an authority restarted on an empty or lost store, or a proxy
 * pointed at another authority, would otherwise hand out version 1 in
 * use_old_hide_metadata and send a fleet that already serves from the new
 * tables back to the retired old ones. So a proxy follows only a state
 * that can come after its own in the same migration: same identity, a
 * higher version (or the same one, unchanged, when it merely settled), at
 * most one phase back, and at most one phase ahead while it holds a lease
 * (a proxy that lost its lease while the fleet moved on catches up like a
 * new one: it serves nothing meanwhile). A refused state leaves the proxy
 * on its current phase until its lease runs out; then it fails closed.
 *
 * A migration back keeps the identity: the authority swaps the roles of
 * the two accounts in one push, from use_new_hide_metadata to
 * use_old_hide_metadata of the next generation. Both states read and write
 * the same single table and hide the protocol's metadata, so the swap is a
 * step of no phase on the line generation * 4 + phase, which the rules
 * above measure; a swap from anywhere else is a jump on that line, refused
 * like any other.
 */
#include "cfg.h"
#include "mt_bugs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void describe(const cfg_view *v, char *out, size_t cap)
{
    snprintf(out, cap, "version %lld, %s%s, migration %s", (long long)v->version,
             mt_phase_name(v->phase), v->generation % 2 ? " reversed" : "",
             v->migration_id[0] ? v->migration_id : "(unnamed)");
}

int64_t cfg_view_position(const cfg_view *v)
{
    return v->generation * 4 + (int64_t)v->phase;
}

static bool refuse(const cfg_view *have, const cfg_view *next, const char *reason, char *why,
                   size_t whylen)
{
    char h[160], n[160];
    describe(have, h, sizeof h);
    describe(next, n, sizeof n);
    if (why && whylen)
        snprintf(why, whylen, "refused state (%s): %s; this proxy keeps (%s)", n, reason, h);
    return false;
}

bool cfg_view_follows(const cfg_view *have, const cfg_view *next, bool leased, char *why,
                      size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    if (have->version == 0)
        return true;
    if ((have->migration_id[0] || next->migration_id[0]) &&
        strcmp(have->migration_id, next->migration_id) != 0)
        return refuse(have, next, "it belongs to another migration", why, whylen);
    if (next->version < have->version) {
        if (!MT_BUG(ClientTakesLowerVersion))
            return refuse(have, next, "its version is lower than the one applied", why, whylen);
    }
    if (next->version == have->version &&
        (next->phase != have->phase || next->generation != have->generation))
        return refuse(have, next, "same version, another phase", why, whylen);
    if (next->generation < have->generation)
        return refuse(have, next, "its roles were swapped back", why, whylen);
    int64_t step = cfg_view_position(next) - cfg_view_position(have);
    if (step < -1)
        return refuse(have, next, "it is more than one phase back", why, whylen);
    if (step > 1 && leased)
        return refuse(have, next, "it is more than one phase ahead of a leased proxy", why, whylen);
    return true;
}

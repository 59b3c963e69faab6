/*
 * phase.c -- the names of the migration phases.
 *
 * The names are part of the stable interface (admin endpoint, configuration
 * endpoint, state store), so they live in one table that both directions
 * read; adding a phase cannot make the printer and the parser disagree.
 */
#include <string.h>

#include "mt.h"

static const char *const phase_names[MT_PHASE_COUNT] = {
    [MT_PHASE_USE_OLD_HIDE_METADATA] = "use_old_hide_metadata",
    [MT_PHASE_PREFER_OLD] = "prefer_old",
    [MT_PHASE_PREFER_NEW] = "prefer_new",
    [MT_PHASE_USE_NEW_WITH_TOMBSTONES] = "use_new_with_tombstones",
    [MT_PHASE_USE_NEW_HIDE_METADATA] = "use_new_hide_metadata",
};

/* Returns a static string; "unknown" for a value that is not a phase. */
const char *mt_phase_name(mt_phase p)
{
    if ((unsigned)p >= MT_PHASE_COUNT)
        return "unknown";
    return phase_names[p];
}

bool mt_phase_parse(const char *name, mt_phase *out)
{
    if (!name)
        return false;
    for (int i = 0; i < MT_PHASE_COUNT; i++) {
        if (strcmp(name, phase_names[i]) == 0) {
            if (out)
                *out = (mt_phase)i;
            return true;
        }
    }
    return false;
}

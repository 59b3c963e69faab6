/*
 * bugs.c -- the switch for the seeded bugs (built only with MT_SEEDED_BUGS).
 *
 * The tester sets mt_seeded_bug before each execution; MT_BUG(Name) in the
 * protocol code reads it. The production library does not contain this file.
 */
#include "mt_bugs.h"

#include <stddef.h>

mt_bug mt_seeded_bug = MT_BUG_NONE;

/* Both tables from MT_BUG_LIST (mt_bugs.h). */
#define BUG_NAME_(name, scenario) [MT_BUG_##name] = #name,
static const char *const bug_names[MT_BUG_COUNT] = {MT_BUG_LIST(BUG_NAME_)};
#define BUG_SCENARIO_(name, scenario) [MT_BUG_##name] = scenario,
static const char *const bug_scenarios[MT_BUG_COUNT] = {MT_BUG_LIST(BUG_SCENARIO_)};

const char *mt_seeded_bug_name(mt_bug b)
{
    if (b <= MT_BUG_NONE || b >= MT_BUG_COUNT)
        return NULL;
    return bug_names[b];
}

const char *mt_seeded_bug_scenario(mt_bug b)
{
    if (b <= MT_BUG_NONE || b >= MT_BUG_COUNT)
        return NULL;
    return bug_scenarios[b];
}

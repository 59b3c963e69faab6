/*
 * bugs.c -- the switch for the seeded bugs (built only with MT_SEEDED_BUGS).
 *
 * The tester sets mt_seeded_bug before each execution; MT_BUG(Name) in the
 * protocol code reads it. The production library does not contain this file.
 */
#include "mt_bugs.h"

#include <stddef.h>

mt_bug mt_seeded_bug = MT_BUG_NONE;

static const char *const bug_names[MT_BUG_COUNT] = {
    [MT_BUG_QueryAtomicFilterShadowing] = "QueryAtomicFilterShadowing",
    [MT_BUG_QueryStreamedFilterShadowing] = "QueryStreamedFilterShadowing",
    [MT_BUG_QueryStreamedLock] = "QueryStreamedLock",
    [MT_BUG_QueryStreamedBackUpNewStream] = "QueryStreamedBackUpNewStream",
    [MT_BUG_QueryStreamedSaveNewConfig] = "QueryStreamedSaveNewConfig",
    [MT_BUG_DeleteNoLeaveTombstonesETag] = "DeleteNoLeaveTombstonesETag",
    [MT_BUG_DeletePrimaryKey] = "DeletePrimaryKey",
    [MT_BUG_EnsurePartitionSwitchedFromPopulated] = "EnsurePartitionSwitchedFromPopulated",
    [MT_BUG_TombstoneOutputETag] = "TombstoneOutputETag",
    [MT_BUG_MigrateSkipPreferOld] = "MigrateSkipPreferOld",
    [MT_BUG_MigrateSkipUseNewWithTombstones] = "MigrateSkipUseNewWithTombstones",
    [MT_BUG_InsertBehindMigrator] = "InsertBehindMigrator",
    [MT_BUG_DeleteIfExistsOmitted] = "DeleteIfExistsOmitted",
    [MT_BUG_AckBeforeDrain] = "AckBeforeDrain",
    [MT_BUG_ClientFollowsAnyVersion] = "ClientFollowsAnyVersion",
    [MT_BUG_LeaseNotCut] = "LeaseNotCut",
    [MT_BUG_WriteAfterLosingLead] = "WriteAfterLosingLead",
    [MT_BUG_TakeOverWithoutGrace] = "TakeOverWithoutGrace",
    [MT_BUG_ResumeFromScratch] = "ResumeFromScratch",
    [MT_BUG_ClientTakesLowerVersion] = "ClientTakesLowerVersion",
};

/* The tester scenario that finds each bug, where "all" (the default, which
 * deals executions out to the data-path scenarios) does not run the code it
 * lives in: the control plane's bugs are found by the lease scenario. */
static const char *const bug_scenarios[MT_BUG_COUNT] = {
    [MT_BUG_AckBeforeDrain] = "leases",
    [MT_BUG_ClientFollowsAnyVersion] = "leases",
    [MT_BUG_LeaseNotCut] = "leases",
    [MT_BUG_WriteAfterLosingLead] = "failover",
    [MT_BUG_TakeOverWithoutGrace] = "failover",
    [MT_BUG_ResumeFromScratch] = "failover",
    [MT_BUG_ClientTakesLowerVersion] = "leases",
};

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
    return bug_scenarios[b] ? bug_scenarios[b] : "all";
}

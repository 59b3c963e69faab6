/*
 * mt_bugs.h -- known-wrong variants of the protocol, for the tester only.
 *
 * Test builds compile the core a second time with MT_SEEDED_BUGS defined;
 * there MT_BUG(Name) is true when the tester switched that one variant on.
 * Production builds define MT_BUG(Name) as 0, so the compiler drops every
 * seeded path and the library carries none of them (a test checks).
 */
#ifndef MT_BUGS_H
#define MT_BUGS_H

typedef enum mt_bug {
    MT_BUG_NONE = 0,
    MT_BUG_QueryAtomicFilterShadowing,
    MT_BUG_QueryStreamedFilterShadowing,
    MT_BUG_QueryStreamedLock,
    MT_BUG_QueryStreamedBackUpNewStream,
    MT_BUG_QueryStreamedSaveNewConfig,
    MT_BUG_DeleteNoLeaveTombstonesETag,
    MT_BUG_DeletePrimaryKey,
    MT_BUG_EnsurePartitionSwitchedFromPopulated,
    MT_BUG_TombstoneOutputETag,
    MT_BUG_MigrateSkipPreferOld,
    MT_BUG_MigrateSkipUseNewWithTombstones,
    MT_BUG_InsertBehindMigrator,
    MT_BUG_DeleteIfExistsOmitted,
    MT_BUG_AckBeforeDrain,
    MT_BUG_ClientFollowsAnyVersion,
    MT_BUG_LeaseNotCut,
    MT_BUG_WriteAfterLosingLead,
    MT_BUG_TakeOverWithoutGrace,
    MT_BUG_ResumeFromScratch,
    MT_BUG_ClientTakesLowerVersion,
    MT_BUG_COUNT
} mt_bug;

#ifdef MT_SEEDED_BUGS
extern mt_bug mt_seeded_bug;
#define MT_BUG(name) (mt_seeded_bug == MT_BUG_##name)
/* "QueryAtomicFilterShadowing", ...; NULL for MT_BUG_NONE or out of range. */
const char *mt_seeded_bug_name(mt_bug b);
/* The tester scenario that finds bug b ("all" or a scenario's name); NULL
 * for MT_BUG_NONE or out of range. */
const char *mt_seeded_bug_scenario(mt_bug b);
#else
#define MT_BUG(name) 0
#endif

#endif

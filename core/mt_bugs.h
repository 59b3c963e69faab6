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

/* The one list of seeded bugs: each name, and the tester scenario that
 * finds it ("all", the default, deals executions out to the data-path
 * scenarios and does not run the control plane, whose bugs the lease and
 * failover scenarios find). The enum below, the names and scenarios that
 * bugs.c gives and `mt-sct --list-bugs` prints, the tester's run matrix
 * (test/sct/run.sh) and the check that production carries none of them
 * (test/unit/check_no_seeded_bugs.sh) all come from it. */
#define MT_BUG_LIST(X)                                                                             \
    X(QueryAtomicFilterShadowing, "all")                                                           \
    X(QueryStreamedFilterShadowing, "all")                                                         \
    X(QueryStreamedLock, "all")                                                                    \
    X(QueryStreamedBackUpNewStream, "all")                                                         \
    X(QueryStreamedSaveNewConfig, "all")                                                           \
    X(DeleteNoLeaveTombstonesETag, "all")                                                          \
    X(DeletePrimaryKey, "all")                                                                     \
    X(EnsurePartitionSwitchedFromPopulated, "all")                                                 \
    X(TombstoneOutputETag, "all")                                                                  \
    X(MigrateSkipPreferOld, "all")                                                                 \
    X(MigrateSkipUseNewWithTombstones, "all")                                                      \
    X(InsertBehindMigrator, "all")                                                                 \
    X(DeleteIfExistsOmitted, "all")                                                                \
    X(AckBeforeDrain, "leases")                                                                    \
    X(ClientFollowsAnyVersion, "leases")                                                           \
    X(LeaseNotCut, "leases")                                                                       \
    X(WriteAfterLosingLead, "failover")                                                            \
    X(TakeOverWithoutGrace, "failover")                                                            \
    X(ResumeFromScratch, "failover")                                                               \
    X(ClientTakesLowerVersion, "leases")                                                           \
    X(SwapBeforeCleanup, "reverse")

#define MT_BUG_ENUM_(name, scenario) MT_BUG_##name,
typedef enum mt_bug { MT_BUG_NONE = 0, MT_BUG_LIST(MT_BUG_ENUM_) MT_BUG_COUNT } mt_bug;
#undef MT_BUG_ENUM_

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

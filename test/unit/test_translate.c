/*
 * test_translate.c -- the MigratingTable's write translation onto the new
 * table, combination by combination.
 *
 * docs/protocol.md (section 4.3) says, for phases prefer_new,
 * use_new_with_tombstones and use_new_hide_metadata (and prefer_old once a
 * partition is switched), how each client op kind is translated against what
 * the new table holds for the row: nothing, a tombstone
 * (_mtable_deleted=true), or a live row with or without
 * _mtable_deleted=false. Every combination of phase, op kind, prior
 * row and If-Match is one row of a static table below, with the status the
 * client must get and the exact row new must hold afterwards, so a broken
 * combination is reported by name instead of being buried in a scenario.
 *
 * For every case the test also checks that the ETag handed back is the one
 * new stores (none for deletes), that reads through the MigratingTable never
 * show a tombstone or an _mtable_* property, and that a failed batch leaves
 * both backends exactly as they were. A decorator of new records the batch the
 * MigratingTable sends, so each case also pins the translated op and its
 * If-Match: the resulting row alone cannot tell a conditional Replace from an
 * unconditional upsert, yet only the former makes the batch on new fail when
 * the row changed since it was read. Multi-op cases check that a batch whose
 * second op fails applies nothing and reports index 1.
 *
 * The backends are set up directly (old's meta row says SWITCHED, the prior
 * row is written straight into new), so nothing but the translation under
 * test runs before the client's batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt.h"

#define PK "p"
/* A live row of the same partition that no case writes. */
#define RK_OTHER "other"

/* What new holds for a row before the client's write. */
typedef enum prior {
    P_ABSENT, /* no row */
    P_TOMB,   /* _mtable_deleted=true and no user property */
    P_LIVE,   /* user properties, no _mtable_deleted */
    P_LIVE_F, /* user properties and _mtable_deleted=false */
} prior;

/* The client's If-Match. */
typedef enum match {
    M_NONE,  /* the op takes none */
    M_CUR,   /* the ETag new holds for the row */
    M_ANY,   /* "*" */
    M_STALE, /* an ETag the row had before its last write */
} match;

/* What new holds for the row afterwards. */
typedef enum after {
    A_SAME,     /* exactly what it held before, ETag included */
    A_ABSENT,   /* no row */
    A_TOMB,     /* _mtable_deleted=true and no user property */
    A_CLIENT,   /* the client's properties alone */
    A_CLIENT_F, /* the client's properties and _mtable_deleted=false */
    A_MERGED,   /* the prior properties overlaid with the client's */
    A_MERGED_F, /* the same and _mtable_deleted=false */
} after;

/* ------------------------------------------------------------------------ */
/* The expectations.                                                         */

/* The one op the MigratingTable must send to new for a client op, with its
 * If-Match: "cur" is the ETag new held for the row when it was read, which
 * makes the batch on new fail if the row changed since. */
typedef enum sent {
    X_NOTHING,          /* the check failed: the op is not sent */
    X_INSERT,           /* Insert */
    X_REPLACE_CUR,      /* Replace, If-Match: cur */
    X_MERGE_CUR,        /* Merge, If-Match: cur */
    X_DELETE_CUR,       /* Delete, If-Match: cur */
    X_UPSERT_REPLACE,   /* InsertOrReplace */
    X_UPSERT_MERGE,     /* InsertOrMerge */
    X_DELETE_IF_EXISTS, /* DeleteIfExists */
} sent;

typedef struct write_case {
    mt_phase phase;
    mt_op_kind kind;
    prior prior;
    match match;
    int http;    /* 201/204: the op succeeds; 404/409/412: it fails */
    after after; /* A_SAME exactly when it fails */
    sent sent;   /* X_NOTHING exactly when it fails */
} write_case;

/* clang-format off */
/* prefer_old on a switched partition, prefer_new and use_new_with_tombstones
 * translate alike: deletes leave tombstones, and no live write adds the flag
 * (InsertOrMerge is translated against the row, as in every phase). */
#define CASES_WITH_TOMBSTONES(ph)                                                                  \
    /* Insert: absent -> Insert; tombstone -> Replace; live -> 409. */                             \
    {ph, MT_OP_INSERT, P_ABSENT, M_NONE, 201, A_CLIENT, X_INSERT},                                 \
    {ph, MT_OP_INSERT, P_TOMB, M_NONE, 201, A_CLIENT, X_REPLACE_CUR},                              \
    {ph, MT_OP_INSERT, P_LIVE, M_NONE, 409, A_SAME, X_NOTHING},                                    \
    {ph, MT_OP_INSERT, P_LIVE_F, M_NONE, 409, A_SAME, X_NOTHING},                                  \
    /* Replace: absent or tombstone -> 404; ETag mismatch -> 412; the flag is dropped. */          \
    {ph, MT_OP_REPLACE, P_ABSENT, M_ANY, 404, A_SAME, X_NOTHING},                                  \
    {ph, MT_OP_REPLACE, P_ABSENT, M_STALE, 404, A_SAME, X_NOTHING},                                \
    {ph, MT_OP_REPLACE, P_TOMB, M_CUR, 404, A_SAME, X_NOTHING},                                    \
    {ph, MT_OP_REPLACE, P_TOMB, M_ANY, 404, A_SAME, X_NOTHING},                                    \
    {ph, MT_OP_REPLACE, P_TOMB, M_STALE, 404, A_SAME, X_NOTHING},                                  \
    {ph, MT_OP_REPLACE, P_LIVE, M_CUR, 204, A_CLIENT, X_REPLACE_CUR},                              \
    {ph, MT_OP_REPLACE, P_LIVE, M_ANY, 204, A_CLIENT, X_REPLACE_CUR},                              \
    {ph, MT_OP_REPLACE, P_LIVE, M_STALE, 412, A_SAME, X_NOTHING},                                  \
    {ph, MT_OP_REPLACE, P_LIVE_F, M_CUR, 204, A_CLIENT, X_REPLACE_CUR},                            \
    {ph, MT_OP_REPLACE, P_LIVE_F, M_ANY, 204, A_CLIENT, X_REPLACE_CUR},                            \
    {ph, MT_OP_REPLACE, P_LIVE_F, M_STALE, 412, A_SAME, X_NOTHING},                                \
    /* Merge: checked as Replace; the row keeps whatever flag it had. */                           \
    {ph, MT_OP_MERGE, P_ABSENT, M_ANY, 404, A_SAME, X_NOTHING},                                    \
    {ph, MT_OP_MERGE, P_ABSENT, M_STALE, 404, A_SAME, X_NOTHING},                                  \
    {ph, MT_OP_MERGE, P_TOMB, M_CUR, 404, A_SAME, X_NOTHING},                                      \
    {ph, MT_OP_MERGE, P_TOMB, M_ANY, 404, A_SAME, X_NOTHING},                                      \
    {ph, MT_OP_MERGE, P_TOMB, M_STALE, 404, A_SAME, X_NOTHING},                                    \
    {ph, MT_OP_MERGE, P_LIVE, M_CUR, 204, A_MERGED, X_MERGE_CUR},                                  \
    {ph, MT_OP_MERGE, P_LIVE, M_ANY, 204, A_MERGED, X_MERGE_CUR},                                  \
    {ph, MT_OP_MERGE, P_LIVE, M_STALE, 412, A_SAME, X_NOTHING},                                    \
    {ph, MT_OP_MERGE, P_LIVE_F, M_CUR, 204, A_MERGED_F, X_MERGE_CUR},                              \
    {ph, MT_OP_MERGE, P_LIVE_F, M_ANY, 204, A_MERGED_F, X_MERGE_CUR},                              \
    {ph, MT_OP_MERGE, P_LIVE_F, M_STALE, 412, A_SAME, X_NOTHING},                                  \
    /* Delete: checked as Replace, then replaced by a tombstone. */                                \
    {ph, MT_OP_DELETE, P_ABSENT, M_ANY, 404, A_SAME, X_NOTHING},                                   \
    {ph, MT_OP_DELETE, P_ABSENT, M_STALE, 404, A_SAME, X_NOTHING},                                 \
    {ph, MT_OP_DELETE, P_TOMB, M_CUR, 404, A_SAME, X_NOTHING},                                     \
    {ph, MT_OP_DELETE, P_TOMB, M_ANY, 404, A_SAME, X_NOTHING},                                     \
    {ph, MT_OP_DELETE, P_TOMB, M_STALE, 404, A_SAME, X_NOTHING},                                   \
    {ph, MT_OP_DELETE, P_LIVE, M_CUR, 204, A_TOMB, X_REPLACE_CUR},                                 \
    {ph, MT_OP_DELETE, P_LIVE, M_ANY, 204, A_TOMB, X_REPLACE_CUR},                                 \
    {ph, MT_OP_DELETE, P_LIVE, M_STALE, 412, A_SAME, X_NOTHING},                                   \
    {ph, MT_OP_DELETE, P_LIVE_F, M_CUR, 204, A_TOMB, X_REPLACE_CUR},                               \
    {ph, MT_OP_DELETE, P_LIVE_F, M_ANY, 204, A_TOMB, X_REPLACE_CUR},                               \
    {ph, MT_OP_DELETE, P_LIVE_F, M_STALE, 412, A_SAME, X_NOTHING},                                 \
    /* InsertOrReplace: the same op; a replace drops the flag. */                                  \
    {ph, MT_OP_INSERT_OR_REPLACE, P_ABSENT, M_NONE, 204, A_CLIENT, X_UPSERT_REPLACE},              \
    {ph, MT_OP_INSERT_OR_REPLACE, P_TOMB, M_NONE, 204, A_CLIENT, X_UPSERT_REPLACE},                \
    {ph, MT_OP_INSERT_OR_REPLACE, P_LIVE, M_NONE, 204, A_CLIENT, X_UPSERT_REPLACE},                \
    {ph, MT_OP_INSERT_OR_REPLACE, P_LIVE_F, M_NONE, 204, A_CLIENT, X_UPSERT_REPLACE},              \
    /* InsertOrMerge: absent -> Insert, tombstone -> Replace, live -> Merge; no flag. */           \
    {ph, MT_OP_INSERT_OR_MERGE, P_ABSENT, M_NONE, 204, A_CLIENT, X_INSERT},                        \
    {ph, MT_OP_INSERT_OR_MERGE, P_TOMB, M_NONE, 204, A_CLIENT, X_REPLACE_CUR},                     \
    {ph, MT_OP_INSERT_OR_MERGE, P_LIVE, M_NONE, 204, A_MERGED, X_MERGE_CUR},                       \
    {ph, MT_OP_INSERT_OR_MERGE, P_LIVE_F, M_NONE, 204, A_MERGED_F, X_MERGE_CUR},                   \
    /* DeleteIfExists: upsert a tombstone. */                                                      \
    {ph, MT_OP_DELETE_IF_EXISTS, P_ABSENT, M_NONE, 204, A_TOMB, X_UPSERT_REPLACE},                 \
    {ph, MT_OP_DELETE_IF_EXISTS, P_TOMB, M_NONE, 204, A_TOMB, X_UPSERT_REPLACE},                   \
    {ph, MT_OP_DELETE_IF_EXISTS, P_LIVE, M_NONE, 204, A_TOMB, X_UPSERT_REPLACE},                   \
    {ph, MT_OP_DELETE_IF_EXISTS, P_LIVE_F, M_NONE, 204, A_TOMB, X_UPSERT_REPLACE}

/* use_new_hide_metadata: writes carry no _mtable_* property and deletes
 * delete. A row that already has _mtable_deleted=false keeps it under a
 * merge (cleanup removes it later), but no write adds it. */
#define CASES_HIDING_METADATA(ph)                                                                  \
    {ph, MT_OP_INSERT, P_ABSENT, M_NONE, 201, A_CLIENT, X_INSERT},                                 \
    {ph, MT_OP_INSERT, P_TOMB, M_NONE, 201, A_CLIENT, X_REPLACE_CUR},                              \
    {ph, MT_OP_INSERT, P_LIVE, M_NONE, 409, A_SAME, X_NOTHING},                                    \
    {ph, MT_OP_INSERT, P_LIVE_F, M_NONE, 409, A_SAME, X_NOTHING},                                  \
    {ph, MT_OP_REPLACE, P_ABSENT, M_ANY, 404, A_SAME, X_NOTHING},                                  \
    {ph, MT_OP_REPLACE, P_ABSENT, M_STALE, 404, A_SAME, X_NOTHING},                                \
    {ph, MT_OP_REPLACE, P_TOMB, M_CUR, 404, A_SAME, X_NOTHING},                                    \
    {ph, MT_OP_REPLACE, P_TOMB, M_ANY, 404, A_SAME, X_NOTHING},                                    \
    {ph, MT_OP_REPLACE, P_TOMB, M_STALE, 404, A_SAME, X_NOTHING},                                  \
    {ph, MT_OP_REPLACE, P_LIVE, M_CUR, 204, A_CLIENT, X_REPLACE_CUR},                              \
    {ph, MT_OP_REPLACE, P_LIVE, M_ANY, 204, A_CLIENT, X_REPLACE_CUR},                              \
    {ph, MT_OP_REPLACE, P_LIVE, M_STALE, 412, A_SAME, X_NOTHING},                                  \
    {ph, MT_OP_REPLACE, P_LIVE_F, M_CUR, 204, A_CLIENT, X_REPLACE_CUR},                            \
    {ph, MT_OP_REPLACE, P_LIVE_F, M_ANY, 204, A_CLIENT, X_REPLACE_CUR},                            \
    {ph, MT_OP_REPLACE, P_LIVE_F, M_STALE, 412, A_SAME, X_NOTHING},                                \
    {ph, MT_OP_MERGE, P_ABSENT, M_ANY, 404, A_SAME, X_NOTHING},                                    \
    {ph, MT_OP_MERGE, P_ABSENT, M_STALE, 404, A_SAME, X_NOTHING},                                  \
    {ph, MT_OP_MERGE, P_TOMB, M_CUR, 404, A_SAME, X_NOTHING},                                      \
    {ph, MT_OP_MERGE, P_TOMB, M_ANY, 404, A_SAME, X_NOTHING},                                      \
    {ph, MT_OP_MERGE, P_TOMB, M_STALE, 404, A_SAME, X_NOTHING},                                    \
    {ph, MT_OP_MERGE, P_LIVE, M_CUR, 204, A_MERGED, X_MERGE_CUR},                                  \
    {ph, MT_OP_MERGE, P_LIVE, M_ANY, 204, A_MERGED, X_MERGE_CUR},                                  \
    {ph, MT_OP_MERGE, P_LIVE, M_STALE, 412, A_SAME, X_NOTHING},                                    \
    {ph, MT_OP_MERGE, P_LIVE_F, M_CUR, 204, A_MERGED_F, X_MERGE_CUR},                              \
    {ph, MT_OP_MERGE, P_LIVE_F, M_ANY, 204, A_MERGED_F, X_MERGE_CUR},                              \
    {ph, MT_OP_MERGE, P_LIVE_F, M_STALE, 412, A_SAME, X_NOTHING},                                  \
    /* Delete: checked as Replace, then really deleted. */                                         \
    {ph, MT_OP_DELETE, P_ABSENT, M_ANY, 404, A_SAME, X_NOTHING},                                   \
    {ph, MT_OP_DELETE, P_ABSENT, M_STALE, 404, A_SAME, X_NOTHING},                                 \
    {ph, MT_OP_DELETE, P_TOMB, M_CUR, 404, A_SAME, X_NOTHING},                                     \
    {ph, MT_OP_DELETE, P_TOMB, M_ANY, 404, A_SAME, X_NOTHING},                                     \
    {ph, MT_OP_DELETE, P_TOMB, M_STALE, 404, A_SAME, X_NOTHING},                                   \
    {ph, MT_OP_DELETE, P_LIVE, M_CUR, 204, A_ABSENT, X_DELETE_CUR},                                \
    {ph, MT_OP_DELETE, P_LIVE, M_ANY, 204, A_ABSENT, X_DELETE_CUR},                                \
    {ph, MT_OP_DELETE, P_LIVE, M_STALE, 412, A_SAME, X_NOTHING},                                   \
    {ph, MT_OP_DELETE, P_LIVE_F, M_CUR, 204, A_ABSENT, X_DELETE_CUR},                              \
    {ph, MT_OP_DELETE, P_LIVE_F, M_ANY, 204, A_ABSENT, X_DELETE_CUR},                              \
    {ph, MT_OP_DELETE, P_LIVE_F, M_STALE, 412, A_SAME, X_NOTHING},                                 \
    {ph, MT_OP_INSERT_OR_REPLACE, P_ABSENT, M_NONE, 204, A_CLIENT, X_UPSERT_REPLACE},              \
    {ph, MT_OP_INSERT_OR_REPLACE, P_TOMB, M_NONE, 204, A_CLIENT, X_UPSERT_REPLACE},                \
    {ph, MT_OP_INSERT_OR_REPLACE, P_LIVE, M_NONE, 204, A_CLIENT, X_UPSERT_REPLACE},                \
    {ph, MT_OP_INSERT_OR_REPLACE, P_LIVE_F, M_NONE, 204, A_CLIENT, X_UPSERT_REPLACE},              \
    /* InsertOrMerge: absent -> Insert, tombstone -> Replace, live -> Merge. */                    \
    {ph, MT_OP_INSERT_OR_MERGE, P_ABSENT, M_NONE, 204, A_CLIENT, X_INSERT},                        \
    {ph, MT_OP_INSERT_OR_MERGE, P_TOMB, M_NONE, 204, A_CLIENT, X_REPLACE_CUR},                     \
    {ph, MT_OP_INSERT_OR_MERGE, P_LIVE, M_NONE, 204, A_MERGED, X_MERGE_CUR},                       \
    {ph, MT_OP_INSERT_OR_MERGE, P_LIVE_F, M_NONE, 204, A_MERGED_F, X_MERGE_CUR},                   \
    /* DeleteIfExists: delete, ignoring absence (still one op on new). */                          \
    {ph, MT_OP_DELETE_IF_EXISTS, P_ABSENT, M_NONE, 204, A_ABSENT, X_DELETE_IF_EXISTS},             \
    {ph, MT_OP_DELETE_IF_EXISTS, P_TOMB, M_NONE, 204, A_ABSENT, X_DELETE_IF_EXISTS},               \
    {ph, MT_OP_DELETE_IF_EXISTS, P_LIVE, M_NONE, 204, A_ABSENT, X_DELETE_IF_EXISTS},               \
    {ph, MT_OP_DELETE_IF_EXISTS, P_LIVE_F, M_NONE, 204, A_ABSENT, X_DELETE_IF_EXISTS}

static const write_case write_cases[] = {
    CASES_WITH_TOMBSTONES(MT_PHASE_PREFER_OLD),
    CASES_WITH_TOMBSTONES(MT_PHASE_PREFER_NEW),
    CASES_WITH_TOMBSTONES(MT_PHASE_USE_NEW_WITH_TOMBSTONES),
    CASES_HIDING_METADATA(MT_PHASE_USE_NEW_HIDE_METADATA),
};

/* clang-format on */

#define N_WRITE_CASES (sizeof write_cases / sizeof write_cases[0])

/* One op of a multi-op batch. http, after and sent apply when the batch
 * succeeds; when it fails every row must stay as it was. */
typedef struct op_spec {
    mt_op_kind kind;
    prior prior;
    match match;
    int http;
    after after;
    sent sent;
} op_spec;

typedef struct batch_case {
    mt_phase phase;
    op_spec ops[2];
    int http;  /* 0: the batch succeeds; else the status it fails with */
    int index; /* the failing op, when it fails */
} batch_case;

/* clang-format off */
#define FAILING(kind, prior, match) {kind, prior, match, 0, A_SAME, X_NOTHING}

/* A batch whose op 1 fails applies none of its ops, whatever op 0 is. */
#define BATCH_FAILURES(ph)                                                                         \
    {ph,                                                                                           \
     {FAILING(MT_OP_INSERT, P_ABSENT, M_NONE), FAILING(MT_OP_INSERT, P_LIVE, M_NONE)},             \
     409,                                                                                          \
     1},                                                                                           \
    {ph,                                                                                           \
     {FAILING(MT_OP_DELETE, P_LIVE, M_CUR), FAILING(MT_OP_REPLACE, P_ABSENT, M_ANY)},              \
     404,                                                                                          \
     1},                                                                                           \
    {ph,                                                                                           \
     {FAILING(MT_OP_DELETE_IF_EXISTS, P_ABSENT, M_NONE), FAILING(MT_OP_MERGE, P_LIVE, M_STALE)},   \
     412,                                                                                          \
     1},                                                                                           \
    {ph,                                                                                           \
     {FAILING(MT_OP_INSERT_OR_MERGE, P_TOMB, M_NONE), FAILING(MT_OP_DELETE, P_TOMB, M_ANY)},       \
     404,                                                                                          \
     1},                                                                                           \
    {ph,                                                                                           \
     {FAILING(MT_OP_INSERT_OR_REPLACE, P_LIVE_F, M_NONE), FAILING(MT_OP_REPLACE, P_TOMB, M_CUR)},  \
     404,                                                                                          \
     1},                                                                                           \
    {ph,                                                                                           \
     {FAILING(MT_OP_REPLACE, P_LIVE, M_CUR), FAILING(MT_OP_DELETE, P_LIVE_F, M_STALE)},            \
     412,                                                                                          \
     1},                                                                                           \
    {ph,                                                                                           \
     {FAILING(MT_OP_MERGE, P_LIVE_F, M_ANY), FAILING(MT_OP_INSERT, P_LIVE_F, M_NONE)},             \
     409,                                                                                          \
     1},                                                                                           \
    {ph,                                                                                           \
     {FAILING(MT_OP_INSERT, P_TOMB, M_NONE), FAILING(MT_OP_MERGE, P_ABSENT, M_STALE)},             \
     404,                                                                                          \
     1},                                                                                           \
    {ph,                                                                                           \
     {FAILING(MT_OP_DELETE_IF_EXISTS, P_LIVE, M_NONE), FAILING(MT_OP_REPLACE, P_LIVE, M_STALE)},   \
     412,                                                                                          \
     1}

/* Two ops that both succeed, in the phases that leave tombstones. */
#define BATCH_SUCCESSES_WITH_TOMBSTONES(ph)                                                        \
    {ph,                                                                                           \
     {{MT_OP_DELETE, P_LIVE, M_CUR, 204, A_TOMB, X_REPLACE_CUR},                                   \
      {MT_OP_INSERT, P_ABSENT, M_NONE, 201, A_CLIENT, X_INSERT}},                                  \
     0,                                                                                            \
     -1},                                                                                          \
    {ph,                                                                                           \
     {{MT_OP_DELETE_IF_EXISTS, P_ABSENT, M_NONE, 204, A_TOMB, X_UPSERT_REPLACE},                   \
      {MT_OP_INSERT_OR_MERGE, P_TOMB, M_NONE, 204, A_CLIENT, X_REPLACE_CUR}},                      \
     0,                                                                                            \
     -1},                                                                                          \
    {ph,                                                                                           \
     {{MT_OP_MERGE, P_LIVE_F, M_ANY, 204, A_MERGED_F, X_MERGE_CUR},                                \
      {MT_OP_REPLACE, P_LIVE, M_CUR, 204, A_CLIENT, X_REPLACE_CUR}},                               \
     0,                                                                                            \
     -1},                                                                                          \
    {ph,                                                                                           \
     {{MT_OP_DELETE_IF_EXISTS, P_ABSENT, M_NONE, 204, A_TOMB, X_UPSERT_REPLACE},                   \
      {MT_OP_INSERT, P_ABSENT, M_NONE, 201, A_CLIENT, X_INSERT}},                                  \
     0,                                                                                            \
     -1},                                                                                          \
    {ph,                                                                                           \
     {{MT_OP_INSERT_OR_MERGE, P_LIVE, M_NONE, 204, A_MERGED, X_MERGE_CUR},                         \
      {MT_OP_DELETE_IF_EXISTS, P_TOMB, M_NONE, 204, A_TOMB, X_UPSERT_REPLACE}},                    \
     0,                                                                                            \
     -1}

/* The same batches in use_new_hide_metadata. A DeleteIfExists of an absent
 * row changes nothing in new, yet the op after it must get its own result. */
#define BATCH_SUCCESSES_HIDING_METADATA(ph)                                                        \
    {ph,                                                                                           \
     {{MT_OP_DELETE, P_LIVE, M_CUR, 204, A_ABSENT, X_DELETE_CUR},                                  \
      {MT_OP_INSERT, P_ABSENT, M_NONE, 201, A_CLIENT, X_INSERT}},                                  \
     0,                                                                                            \
     -1},                                                                                          \
    {ph,                                                                                           \
     {{MT_OP_DELETE_IF_EXISTS, P_ABSENT, M_NONE, 204, A_ABSENT, X_DELETE_IF_EXISTS},               \
      {MT_OP_INSERT_OR_MERGE, P_TOMB, M_NONE, 204, A_CLIENT, X_REPLACE_CUR}},                      \
     0,                                                                                            \
     -1},                                                                                          \
    {ph,                                                                                           \
     {{MT_OP_MERGE, P_LIVE_F, M_ANY, 204, A_MERGED_F, X_MERGE_CUR},                                \
      {MT_OP_REPLACE, P_LIVE, M_CUR, 204, A_CLIENT, X_REPLACE_CUR}},                               \
     0,                                                                                            \
     -1},                                                                                          \
    {ph,                                                                                           \
     {{MT_OP_DELETE_IF_EXISTS, P_ABSENT, M_NONE, 204, A_ABSENT, X_DELETE_IF_EXISTS},               \
      {MT_OP_INSERT, P_ABSENT, M_NONE, 201, A_CLIENT, X_INSERT}},                                  \
     0,                                                                                            \
     -1},                                                                                          \
    {ph,                                                                                           \
     {{MT_OP_INSERT_OR_MERGE, P_LIVE, M_NONE, 204, A_MERGED, X_MERGE_CUR},                         \
      {MT_OP_DELETE_IF_EXISTS, P_TOMB, M_NONE, 204, A_ABSENT, X_DELETE_IF_EXISTS}},                \
     0,                                                                                            \
     -1}

static const batch_case batch_cases[] = {
    BATCH_FAILURES(MT_PHASE_PREFER_OLD),
    BATCH_FAILURES(MT_PHASE_PREFER_NEW),
    BATCH_FAILURES(MT_PHASE_USE_NEW_WITH_TOMBSTONES),
    BATCH_FAILURES(MT_PHASE_USE_NEW_HIDE_METADATA),
    BATCH_SUCCESSES_WITH_TOMBSTONES(MT_PHASE_PREFER_OLD),
    BATCH_SUCCESSES_WITH_TOMBSTONES(MT_PHASE_PREFER_NEW),
    BATCH_SUCCESSES_WITH_TOMBSTONES(MT_PHASE_USE_NEW_WITH_TOMBSTONES),
    BATCH_SUCCESSES_HIDING_METADATA(MT_PHASE_USE_NEW_HIDE_METADATA),
};

/* clang-format on */

#define N_BATCH_CASES (sizeof batch_cases / sizeof batch_cases[0])

/* ------------------------------------------------------------------------ */
/* Names, for the failure messages.                                          */

static const char *kind_name(mt_op_kind k)
{
    switch (k) {
    case MT_OP_INSERT:
        return "Insert";
    case MT_OP_REPLACE:
        return "Replace";
    case MT_OP_MERGE:
        return "Merge";
    case MT_OP_DELETE:
        return "Delete";
    case MT_OP_INSERT_OR_REPLACE:
        return "InsertOrReplace";
    case MT_OP_INSERT_OR_MERGE:
        return "InsertOrMerge";
    case MT_OP_DELETE_IF_EXISTS:
        return "DeleteIfExists";
    }
    return "?";
}

static const char *prior_name(prior p)
{
    static const char *const names[] = {"absent", "tombstone", "live",
                                        "live(_mtable_deleted=false)"};
    return names[p];
}

static const char *match_name(match m)
{
    static const char *const names[] = {"", " If-Match=current", " If-Match=*", " If-Match=stale"};
    return names[m];
}

static bool is_delete_kind(mt_op_kind k)
{
    return k == MT_OP_DELETE || k == MT_OP_DELETE_IF_EXISTS;
}

static bool takes_if_match(mt_op_kind k)
{
    return k == MT_OP_REPLACE || k == MT_OP_MERGE || k == MT_OP_DELETE;
}

static const char *code_for(int http)
{
    switch (http) {
    case 404:
        return MT_ERR_NOT_FOUND;
    case 409:
        return MT_ERR_ENTITY_EXISTS;
    case 412:
        return MT_ERR_CONDITION;
    }
    return "?";
}

static const char *sent_name(sent x)
{
    static const char *const names[] = {
        "nothing",
        "Insert",
        "Replace(If-Match: cur)",
        "Merge(If-Match: cur)",
        "Delete(If-Match: cur)",
        "InsertOrReplace",
        "InsertOrMerge",
        "DeleteIfExists",
    };
    return names[x];
}

/* ------------------------------------------------------------------------ */
/* Verdicts: every mismatch of a case is printed under the case's name, so  */
/* one run lists every broken combination.                                   */

typedef struct verdict {
    const char *name;
    int mismatches;
} verdict;

static void expect(verdict *v, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void expect(verdict *v, bool ok, const char *fmt, ...)
{
    if (ok)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (v->mismatches++ == 0)
        print_error("FAIL %s\n", v->name);
    print_error("    %s\n", msg);
}

static void append(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

/* "absent" or "{a='x', b=1, _mtable_deleted=true}" into buf. */
static const char *describe(const mt_entity *e, char *buf, size_t size)
{
    buf[0] = '\0';
    if (!e) {
        append(buf, size, "absent");
        return buf;
    }
    append(buf, size, "{");
    for (size_t i = 0; i < e->nprops; i++) {
        const mt_prop *p = &e->props[i];
        append(buf, size, "%s%s=", i ? ", " : "", p->name);
        switch (p->value.type) {
        case MT_EDM_STRING:
            append(buf, size, "'%s'", p->value.u.bytes.ptr);
            break;
        case MT_EDM_INT32:
            append(buf, size, "%d", (int)p->value.u.i32);
            break;
        case MT_EDM_BOOLEAN:
            append(buf, size, "%s", p->value.u.b ? "true" : "false");
            break;
        default:
            append(buf, size, "<%s>", mt_edm_name(p->value.type));
            break;
        }
    }
    append(buf, size, "}");
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Rows.                                                                     */

typedef enum flag { F_NONE, F_FALSE, F_TRUE } flag;

/* A row with user property a (a string, unless NULL), b and c (Int32s,
 * unless 0) and the given _mtable_deleted. */
static mt_entity *row_of(const char *rk, const char *a, int32_t b, int32_t c, flag f)
{
    mt_entity *e = mt_entity_new(PK, rk);
    mt_value v;
    if (a) {
        v = mt_v_str(a);
        mt_entity_set(e, "a", &v);
    }
    if (b) {
        v = mt_v_i32(b);
        mt_entity_set(e, "b", &v);
    }
    if (c) {
        v = mt_v_i32(c);
        mt_entity_set(e, "c", &v);
    }
    if (f != F_NONE) {
        v = mt_v_bool(f == F_TRUE);
        mt_entity_set(e, MT_PROP_DELETED, &v);
    }
    return e;
}

/* The prior live row is {a='before', b=1}; the client writes
 * {a='after', c=2}, so a merge gives {a='after', b=1, c=2}. */
static mt_entity *prior_row(const char *rk, prior p)
{
    switch (p) {
    case P_ABSENT:
        return NULL;
    case P_TOMB:
        return row_of(rk, NULL, 0, 0, F_TRUE);
    case P_LIVE:
        return row_of(rk, "before", 1, 0, F_NONE);
    case P_LIVE_F:
        return row_of(rk, "before", 1, 0, F_FALSE);
    }
    return NULL;
}

static mt_entity *client_row(const char *rk)
{
    return row_of(rk, "after", 0, 2, F_NONE);
}

/* What new must hold for the row afterwards (NULL: no row). */
static mt_entity *expected_row(const char *rk, prior p, after a)
{
    switch (a) {
    case A_SAME:
        return prior_row(rk, p);
    case A_ABSENT:
        return NULL;
    case A_TOMB:
        return row_of(rk, NULL, 0, 0, F_TRUE);
    case A_CLIENT:
        return row_of(rk, "after", 0, 2, F_NONE);
    case A_CLIENT_F:
        return row_of(rk, "after", 0, 2, F_FALSE);
    case A_MERGED:
        return row_of(rk, "after", 1, 2, F_NONE);
    case A_MERGED_F:
        return row_of(rk, "after", 1, 2, F_FALSE);
    }
    return NULL;
}

static bool is_tombstone(const mt_entity *e)
{
    const mt_value *v = e ? mt_entity_get(e, MT_PROP_DELETED) : NULL;
    return v && v->type == MT_EDM_BOOLEAN && v->u.b;
}

static bool has_reserved_prop(const mt_entity *e)
{
    for (size_t i = 0; i < e->nprops; i++)
        if (strncmp(e->props[i].name, MT_RESERVED_PREFIX, strlen(MT_RESERVED_PREFIX)) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------------ */
/* A decorator of new that remembers the batches the MigratingTable sends,  */
/* so the translated ops themselves can be checked, If-Match included.      */

#define MAX_OPS 2
#define MAX_SENT 4

typedef struct sent_op {
    mt_op_kind kind;
    char rk[16];
    bool has_if_match;
    char if_match[MT_ETAG_MAX];
} sent_op;

typedef struct recorder {
    mt_table base;
    mt_table *inner;
    size_t batches; /* batches sent */
    size_t empty;   /* of which had no op */
    size_t n;       /* ops of the last one */
    sent_op ops[MAX_SENT];
} recorder;

static mt_status rec_execute_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *results)
{
    recorder *r = (recorder *)t;
    r->batches++;
    if (n == 0)
        r->empty++;
    r->n = n;
    for (size_t i = 0; i < n && i < MAX_SENT; i++) {
        sent_op *s = &r->ops[i];
        s->kind = ops[i].kind;
        snprintf(s->rk, sizeof s->rk, "%s", ops[i].entity ? ops[i].entity->rk : "");
        s->has_if_match = ops[i].if_match != NULL;
        snprintf(s->if_match, sizeof s->if_match, "%s", ops[i].if_match ? ops[i].if_match : "");
    }
    return mt_table_batch(r->inner, ops, n, results);
}

static mt_status rec_query_atomic(mt_table *t, const char *pk, const mt_filter *f,
                                  mt_entity_list *out)
{
    mt_table *in = ((recorder *)t)->inner;
    return in->ops->query_atomic(in, pk, f, out);
}

static mt_status rec_query_stream(mt_table *t, const mt_filter *f, const mt_key *start,
                                  mt_stream **out)
{
    mt_table *in = ((recorder *)t)->inner;
    return in->ops->query_stream(in, f, start, out);
}

static mt_status rec_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    mt_table *in = ((recorder *)t)->inner;
    return in->ops->retrieve(in, pk, rk, out);
}

static void rec_destroy(mt_table *t)
{
    (void)t; /* the recorder lives in its world */
}

static const mt_table_ops rec_ops = {
    .execute_batch = rec_execute_batch,
    .query_atomic = rec_query_atomic,
    .query_stream = rec_query_stream,
    .retrieve = rec_retrieve,
    .destroy = rec_destroy,
};

/* ------------------------------------------------------------------------ */
/* The world: two in-memory backends, a switched partition, one client.     */

typedef struct world {
    mt_rt *rt;
    mt_config_service *cfg;
    mt_table *old_t, *new_t, *mt;
    recorder rec; /* new as the MigratingTable sees it */
} world;

/* Runs one op straight on a backend; setup must not fail. */
static void direct(mt_table *t, mt_op_kind kind, const mt_entity *e, const char *if_match,
                   char *etag)
{
    mt_op op = {.kind = kind, .entity = e, .if_match = if_match};
    mt_op_result res;
    mt_status st = mt_table_batch(t, &op, 1, &res);
    if (!mt_is_ok(&st))
        print_error("setup: %s of %s failed: %d %s\n", kind_name(kind), e->rk, st.http, st.message);
    assert_true(mt_is_ok(&st));
    if (etag)
        snprintf(etag, MT_ETAG_MAX, "%s", res.etag);
}

static void world_init(world *w, mt_phase phase)
{
    w->rt = mt_rt_pthread();
    w->cfg = mt_config_local_new(w->rt, phase);
    w->old_t = mt_memtable_new(w->rt, "old");
    w->new_t = mt_memtable_new(w->rt, "new");
    w->rec = (recorder){.base.ops = &rec_ops, .inner = w->new_t};
    w->mt = mt_migrating_new(w->rt, w->cfg, w->old_t, &w->rec.base);

    mt_entity *meta = mt_entity_new(PK, MT_RK_META);
    mt_value v = mt_v_i32(MT_PARTITION_SWITCHED);
    mt_entity_set(meta, MT_PROP_STATE, &v);
    direct(w->old_t, MT_OP_INSERT, meta, NULL, NULL);
    mt_entity_free(meta);

    mt_entity *other = row_of(RK_OTHER, "untouched", 7, 0, F_NONE);
    direct(w->new_t, MT_OP_INSERT, other, NULL, NULL);
    mt_entity_free(other);
}

static void world_clear(world *w)
{
    mt_table_destroy(w->mt);
    mt_table_destroy(w->old_t);
    mt_table_destroy(w->new_t);
    w->cfg->ops->destroy(w->cfg);
}

typedef struct seeded {
    char cur[MT_ETAG_MAX];   /* the row's ETag now; "" when absent */
    char stale[MT_ETAG_MAX]; /* the ETag of the version before */
} seeded;

/* Puts the prior row into new, after an earlier version of it whose ETag
 * becomes the stale one (for an absent row: a version since deleted). */
static void seed(world *w, const char *rk, prior p, seeded *s)
{
    mt_entity *earlier = row_of(rk, "earlier", 0, 0, F_NONE);
    direct(w->new_t, MT_OP_INSERT, earlier, NULL, s->stale);
    mt_entity_free(earlier);
    s->cur[0] = '\0';
    if (p == P_ABSENT) {
        mt_entity *keys = mt_entity_new(PK, rk);
        direct(w->new_t, MT_OP_DELETE, keys, s->stale, NULL);
        mt_entity_free(keys);
        return;
    }
    mt_entity *e = prior_row(rk, p);
    direct(w->new_t, MT_OP_REPLACE, e, s->stale, s->cur);
    mt_entity_free(e);
}

static const char *if_match_for(match m, const seeded *s)
{
    switch (m) {
    case M_NONE:
        return NULL;
    case M_CUR:
        return s->cur;
    case M_ANY:
        return "*";
    case M_STALE:
        return s->stale;
    }
    return NULL;
}

static mt_entity *get_row(mt_table *t, const char *rk)
{
    mt_entity *e = NULL;
    mt_status st = t->ops->retrieve(t, PK, rk, &e);
    return mt_is_ok(&st) ? e : NULL;
}

static bool is_one_of(const char *rk, const char *const *rks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rk, rks[i]) == 0)
            return true;
    return false;
}

/* Checks that the rows of before and now, leaving out the row keys in skip,
 * are the same, ETags included. */
static void expect_unchanged(verdict *v, const char *table, const mt_entity_list *before,
                             const mt_entity_list *now, const char *const *skip, size_t nskip)
{
    size_t i = 0, j = 0;
    for (;;) {
        while (i < before->n && is_one_of(before->v[i]->rk, skip, nskip))
            i++;
        while (j < now->n && is_one_of(now->v[j]->rk, skip, nskip))
            j++;
        if (i == before->n || j == now->n)
            break;
        const mt_entity *a = before->v[i], *b = now->v[j];
        char da[512], db[512];
        expect(v,
               mt_entity_same_content(a, b) && a->etag && b->etag && strcmp(a->etag, b->etag) == 0,
               "%s: row %s/%s changed: was %s %s, now %s/%s %s %s", table, a->pk, a->rk,
               describe(a, da, sizeof da), a->etag ? a->etag : "(no ETag)", b->pk, b->rk,
               describe(b, db, sizeof db), b->etag ? b->etag : "(no ETag)");
        i++;
        j++;
    }
    expect(v, i == before->n, "%s: row %s disappeared", table,
           i < before->n ? before->v[i]->rk : "");
    expect(v, j == now->n, "%s: row %s appeared", table, j < now->n ? now->v[j]->rk : "");
}

static void scan(mt_table *t, mt_entity_list *out)
{
    mt_status st = mt_table_scan(t, NULL, out);
    assert_true(mt_is_ok(&st));
}

/* What a client must read for a row whose new-table state is want: nothing
 * for no row or a tombstone, else the user properties alone. */
static void expect_client_view(verdict *v, world *w, const char *rk, const mt_entity *want,
                               const mt_entity *in_new)
{
    char d1[512], d2[512];
    mt_entity *seen = NULL;
    mt_status st = w->mt->ops->retrieve(w->mt, PK, rk, &seen);
    if (!want || is_tombstone(want)) {
        expect(v, st.http == 404, "retrieve %s through the MigratingTable: want 404, got %d %s", rk,
               st.http, describe(seen, d1, sizeof d1));
        mt_entity_free(seen);
        return;
    }
    expect(v, mt_is_ok(&st) && seen, "retrieve %s through the MigratingTable: got %d %s", rk,
           st.http, st.message);
    if (!seen)
        return;
    mt_entity *user = mt_entity_clone(want);
    mt_entity_remove(user, MT_PROP_DELETED);
    expect(v, !has_reserved_prop(seen), "retrieve %s shows an _mtable_* property: %s", rk,
           describe(seen, d1, sizeof d1));
    expect(v, mt_entity_same_content(seen, user), "retrieve %s: want %s, got %s", rk,
           describe(user, d1, sizeof d1), describe(seen, d2, sizeof d2));
    expect(v, in_new && seen->etag && in_new->etag && strcmp(seen->etag, in_new->etag) == 0,
           "retrieve %s: ETag %s, but new holds %s", rk, seen->etag ? seen->etag : "(none)",
           in_new && in_new->etag ? in_new->etag : "(none)");
    mt_entity_free(user);
    mt_entity_free(seen);
}

/* The partition as a client queries it (how: "query_atomic" or "stream"):
 * no protocol row, no tombstone, no _mtable_* property; the untouched row and
 * exactly the visible targets. */
static void expect_rows_view(verdict *v, const char *how, const mt_entity_list *rows,
                             const char *const *rks, mt_entity *const *want, size_t n)
{
    size_t visible = 1;
    for (size_t i = 0; i < n; i++)
        if (want[i] && !is_tombstone(want[i]))
            visible++;
    char d[512];
    for (size_t i = 0; i < rows->n; i++) {
        const mt_entity *e = rows->v[i];
        expect(v, !has_reserved_prop(e), "%s shows an _mtable_* property on %s: %s", how, e->rk,
               describe(e, d, sizeof d));
        bool known = strcmp(e->rk, RK_OTHER) == 0;
        for (size_t k = 0; k < n; k++)
            if (strcmp(e->rk, rks[k]) == 0) {
                known = true;
                expect(v, want[k] && !is_tombstone(want[k]),
                       "%s shows %s, which must be hidden: %s", how, e->rk,
                       describe(e, d, sizeof d));
            }
        expect(v, known, "%s shows an unexpected row %s", how, e->rk);
    }
    expect(v, rows->n == visible, "%s returned %zu rows, want %zu", how, rows->n, visible);
}

static void expect_partition_view(verdict *v, world *w, const char *const *rks,
                                  mt_entity *const *want, size_t n)
{
    mt_entity_list rows = {0};
    mt_status st = w->mt->ops->query_atomic(w->mt, PK, NULL, &rows);
    expect(v, mt_is_ok(&st), "query_atomic: %d %s", st.http, st.message);
    expect_rows_view(v, "query_atomic", &rows, rks, want, n);
    mt_entity_list_clear(&rows);

    st = mt_table_scan(w->mt, NULL, &rows);
    expect(v, mt_is_ok(&st), "stream: %d %s", st.http, st.message);
    expect_rows_view(v, "stream", &rows, rks, want, n);
    mt_entity_list_clear(&rows);
}

/* The batch the MigratingTable sent to new: one batch holding, for each
 * client op, exactly the translation the case names; none when the client's
 * batch failed its checks. */
static void expect_sent(verdict *v, const recorder *r, const op_spec *ops, size_t n,
                        const char *const *rks, const seeded *seeds, bool fails)
{
    expect(v, r->empty == 0, "%zu empty batches were sent to new", r->empty);
    if (fails) {
        expect(v, r->batches == 0, "a failing batch still sent %zu batches to new", r->batches);
        return;
    }
    expect(v, r->batches == 1 && r->n == n,
           "sent %zu batches to new, the last of %zu ops; want one of %zu", r->batches, r->n, n);
    if (r->batches == 0)
        return;
    static const mt_op_kind kinds[] = {
        [X_INSERT] = MT_OP_INSERT,
        [X_REPLACE_CUR] = MT_OP_REPLACE,
        [X_MERGE_CUR] = MT_OP_MERGE,
        [X_DELETE_CUR] = MT_OP_DELETE,
        [X_UPSERT_REPLACE] = MT_OP_INSERT_OR_REPLACE,
        [X_UPSERT_MERGE] = MT_OP_INSERT_OR_MERGE,
        [X_DELETE_IF_EXISTS] = MT_OP_DELETE_IF_EXISTS,
    };
    for (size_t i = 0; i < n; i++) {
        const sent_op *got = NULL;
        for (size_t j = 0; j < r->n && j < MAX_SENT; j++)
            if (strcmp(r->ops[j].rk, rks[i]) == 0)
                got = &r->ops[j];
        sent x = ops[i].sent;
        bool cond = x == X_REPLACE_CUR || x == X_MERGE_CUR || x == X_DELETE_CUR;
        if (!got) {
            expect(v, false, "op %zu: want %s sent to new, but nothing for %s was", i, sent_name(x),
                   rks[i]);
            continue;
        }
        bool ok = got->kind == kinds[x] &&
                  (cond ? got->has_if_match && strcmp(got->if_match, seeds[i].cur) == 0
                        : !got->has_if_match);
        expect(v, ok, "op %zu: want %s (cur = %s) sent to new, got %s with If-Match %s", i,
               sent_name(x), seeds[i].cur, kind_name(got->kind),
               got->has_if_match ? got->if_match : "(none)");
    }
}

/* ------------------------------------------------------------------------ */
/* Running a case.                                                           */

/* Runs ops[0..n) as one client batch in phase; fail_http 0 means it must
 * succeed, else it must fail with that status at fail_index. Returns whether
 * everything matched. */
static bool run_case(const char *name, mt_phase phase, const op_spec *ops, size_t n, int fail_http,
                     int fail_index)
{
    verdict v = {.name = name, .mismatches = 0};
    world w;
    world_init(&w, phase);

    char rks[MAX_OPS][8];
    const char *rkp[MAX_OPS];
    seeded seeds[MAX_OPS];
    for (size_t i = 0; i < n; i++) {
        snprintf(rks[i], sizeof rks[i], "r%zu", i);
        rkp[i] = rks[i];
        seed(&w, rks[i], ops[i].prior, &seeds[i]);
    }
    mt_entity_list old_before = {0}, new_before = {0};
    scan(w.old_t, &old_before);
    scan(w.new_t, &new_before);

    /* Deletes carry the client's properties too: only the keys may count. */
    mt_entity *ents[MAX_OPS];
    mt_op batch[MAX_OPS];
    mt_op_result res[MAX_OPS];
    for (size_t i = 0; i < n; i++) {
        ents[i] = client_row(rks[i]);
        batch[i] = (mt_op){.kind = ops[i].kind,
                           .entity = ents[i],
                           .if_match = if_match_for(ops[i].match, &seeds[i])};
        res[i].http = -1;
        snprintf(res[i].etag, sizeof res[i].etag, "(unset)");
    }
    mt_status st = mt_table_batch(w.mt, batch, n, res);
    expect_sent(&v, &w.rec, ops, n, rkp, seeds, fail_http != 0);

    mt_entity_list old_after = {0}, new_after = {0};
    scan(w.old_t, &old_after);
    scan(w.new_t, &new_after);
    expect_unchanged(&v, "old", &old_before, &old_after, NULL, 0);

    if (fail_http) {
        expect(&v, st.http == fail_http && st.index == fail_index,
               "status: want %d at index %d, got %d at index %d (%s)", fail_http, fail_index,
               st.http, st.index, st.message);
        expect(&v, strcmp(st.code, code_for(fail_http)) == 0, "error code: want %s, got '%s'",
               code_for(fail_http), st.code);
        expect_unchanged(&v, "new", &new_before, &new_after, NULL, 0);
    } else {
        expect(&v, mt_is_ok(&st), "status: want success, got %d at index %d %s (%s)", st.http,
               st.index, st.code, st.message);
        expect_unchanged(&v, "new", &new_before, &new_after, rkp, n);
    }

    mt_entity *want[MAX_OPS];
    mt_entity *in_new[MAX_OPS];
    char d1[512], d2[512];
    for (size_t i = 0; i < n; i++) {
        after a = fail_http ? A_SAME : ops[i].after;
        want[i] = expected_row(rks[i], ops[i].prior, a);
        in_new[i] = get_row(w.new_t, rks[i]);
        bool same =
            want[i] ? in_new[i] && mt_entity_same_content(want[i], in_new[i]) : in_new[i] == NULL;
        expect(&v, same, "new %s afterwards: want %s, got %s", rks[i],
               describe(want[i], d1, sizeof d1), describe(in_new[i], d2, sizeof d2));

        if (!fail_http && mt_is_ok(&st)) {
            expect(&v, res[i].http == ops[i].http, "result %zu: want %d, got %d", i, ops[i].http,
                   res[i].http);
            if (is_delete_kind(ops[i].kind))
                expect(&v, res[i].etag[0] == '\0', "result %zu: a delete returned ETag '%s'", i,
                       res[i].etag);
            else
                expect(&v,
                       in_new[i] && in_new[i]->etag && strcmp(res[i].etag, in_new[i]->etag) == 0,
                       "result %zu: ETag '%s', but new holds %s", i, res[i].etag,
                       in_new[i] && in_new[i]->etag ? in_new[i]->etag : "(no row)");
        }
        expect_client_view(&v, &w, rks[i], want[i], in_new[i]);
    }
    expect_partition_view(&v, &w, rkp, want, n);

    for (size_t i = 0; i < n; i++) {
        mt_entity_free(want[i]);
        mt_entity_free(in_new[i]);
        mt_entity_free(ents[i]);
    }
    mt_entity_list_clear(&old_before);
    mt_entity_list_clear(&new_before);
    mt_entity_list_clear(&old_after);
    mt_entity_list_clear(&new_after);
    world_clear(&w);
    return v.mismatches == 0;
}

static void write_case_name(const write_case *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s: %s on %s%s -> %d", mt_phase_name(c->phase), kind_name(c->kind),
             prior_name(c->prior), match_name(c->match), c->http);
}

static void run_write_cases(mt_phase phase)
{
    size_t ran = 0, failed = 0;
    for (size_t i = 0; i < N_WRITE_CASES; i++) {
        const write_case *c = &write_cases[i];
        if (c->phase != phase)
            continue;
        char name[160];
        write_case_name(c, name, sizeof name);
        bool fails = c->http >= 400;
        op_spec op = {c->kind, c->prior, c->match, fails ? 0 : c->http, c->after, c->sent};
        ran++;
        if (!run_case(name, phase, &op, 1, fails ? c->http : 0, 0))
            failed++;
    }
    print_message("%s: %zu of %zu single-op cases passed\n", mt_phase_name(phase), ran - failed,
                  ran);
    assert_true(ran > 0);
    assert_int_equal(failed, 0);
}

static void test_prefer_old_switched(void **state)
{
    (void)state;
    run_write_cases(MT_PHASE_PREFER_OLD);
}

static void test_prefer_new(void **state)
{
    (void)state;
    run_write_cases(MT_PHASE_PREFER_NEW);
}

static void test_use_new_with_tombstones(void **state)
{
    (void)state;
    run_write_cases(MT_PHASE_USE_NEW_WITH_TOMBSTONES);
}

static void test_use_new_hide_metadata(void **state)
{
    (void)state;
    run_write_cases(MT_PHASE_USE_NEW_HIDE_METADATA);
}

static void test_batches(void **state)
{
    (void)state;
    size_t failed = 0;
    for (size_t i = 0; i < N_BATCH_CASES; i++) {
        const batch_case *c = &batch_cases[i];
        char name[320];
        snprintf(name, sizeof name, "%s: [%s on %s%s; %s on %s%s] -> ", mt_phase_name(c->phase),
                 kind_name(c->ops[0].kind), prior_name(c->ops[0].prior),
                 match_name(c->ops[0].match), kind_name(c->ops[1].kind),
                 prior_name(c->ops[1].prior), match_name(c->ops[1].match));
        if (c->http)
            append(name, sizeof name, "%d at index %d", c->http, c->index);
        else
            append(name, sizeof name, "[%d, %d]", c->ops[0].http, c->ops[1].http);
        if (!run_case(name, c->phase, c->ops, 2, c->http, c->index))
            failed++;
    }
    print_message("%zu of %zu batch cases passed\n", N_BATCH_CASES - failed, N_BATCH_CASES);
    assert_int_equal(failed, 0);
}

/* The table names every combination exactly once, so a row cannot go
 * missing (or be doubled) unnoticed. */
static void test_table_is_complete(void **state)
{
    (void)state;
    static const mt_phase phases[] = {MT_PHASE_PREFER_OLD, MT_PHASE_PREFER_NEW,
                                      MT_PHASE_USE_NEW_WITH_TOMBSTONES,
                                      MT_PHASE_USE_NEW_HIDE_METADATA};
    size_t expected = 0;
    int bad = 0;
    for (size_t p = 0; p < sizeof phases / sizeof phases[0]; p++)
        for (int k = MT_OP_INSERT; k <= MT_OP_DELETE_IF_EXISTS; k++)
            for (int pr = P_ABSENT; pr <= P_LIVE_F; pr++)
                for (int m = M_NONE; m <= M_STALE; m++) {
                    bool applies = takes_if_match((mt_op_kind)k)
                                       ? m != M_NONE && !(m == M_CUR && pr == P_ABSENT)
                                       : m == M_NONE;
                    if (!applies)
                        continue;
                    expected++;
                    size_t hits = 0;
                    for (size_t i = 0; i < N_WRITE_CASES; i++) {
                        const write_case *c = &write_cases[i];
                        if (c->phase == phases[p] && (int)c->kind == k && (int)c->prior == pr &&
                            (int)c->match == m)
                            hits++;
                    }
                    if (hits != 1) {
                        print_error("%s: %s on %s%s appears %zu times\n", mt_phase_name(phases[p]),
                                    kind_name((mt_op_kind)k), prior_name((prior)pr),
                                    match_name((match)m), hits);
                        bad++;
                    }
                }
    for (size_t i = 0; i < N_WRITE_CASES; i++) {
        const write_case *c = &write_cases[i];
        bool fails = c->http >= 400;
        if (fails != (c->after == A_SAME) || fails != (c->sent == X_NOTHING)) {
            char name[160];
            write_case_name(c, name, sizeof name);
            print_error("%s: a failure leaves the row as it was and sends nothing; a success "
                        "says what it sends and leaves\n",
                        name);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
    assert_int_equal(N_WRITE_CASES, expected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_complete),
        cmocka_unit_test(test_prefer_old_switched),
        cmocka_unit_test(test_prefer_new),
        cmocka_unit_test(test_use_new_with_tombstones),
        cmocka_unit_test(test_use_new_hide_metadata),
        cmocka_unit_test(test_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

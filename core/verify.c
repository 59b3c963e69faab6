/*
 * verify.c -- the verify pass: proves what a migration promised, by reading.
 *
 * Per table, one stream over old and one over new, merged by primary key
 * (both come in key order), so memory stays constant however large the
 * tables are. What is checked depends on where the migration stands:
 *   - through use_new_with_tombstones (after the copy): every user row of
 *     old has a row with its key in new, live or tombstone (a tombstone is
 *     the record of a client's delete, so it counts), and every partition
 *     of old with user rows has a SWITCHED meta row;
 *   - in use_new_hide_metadata after cleanup: no row of new is a tombstone
 *     or carries an _mtable_ property, and old is what the cleanup was asked
 *     to make of it (mt_old_after): empty (no rows at all), kept (no
 *     protocol row; the application's rows may stay) or deleted (the old
 *     table answers 404 TableNotFound).
 * use_new_hide_metadata before cleanup promises neither (deletes there
 * delete, so an old row may rightly have no counterpart), and is refused.
 *
 * A table deleted meanwhile (404 TableNotFound from new, or from old unless
 * old was to be deleted) holds nothing to check: it is skipped and named in
 * the report, and does not make it fail.
 *
 * The two streams read at different instants. That is sound for the checks
 * above while clients run, because in those phases nothing removes a
 * counterpart from new (deletes leave tombstones) and nothing adds
 * protocol data after cleanup.
 */
#include "migrator_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Transient errors are ridden out as the migrator does. */
#define MT_VERIFY_ATTEMPTS 8
#define MT_VERIFY_BUSY_ATTEMPTS 16

/* The old partition being walked. */
typedef struct mt_verify_part {
    char *pk; /* owned, or NULL before the first row */
    bool has_user_rows;
    bool switched;
} mt_verify_part;

typedef struct mt_verify_walk {
    mt_verify_report *r;
    const char *name; /* the table's label */
    mt_verify_part part;
} mt_verify_walk;

static void mt_verify_close_part(mt_verify_walk *w)
{
    if (w->part.pk && w->part.has_user_rows && !w->part.switched)
        w->r->unswitched++;
    free(w->part.pk);
    w->part = (mt_verify_part){0};
}

static bool mt_verify_is_switched_meta(const mt_entity *e)
{
    const mt_value *v = mt_entity_get(e, MT_PROP_STATE);
    return strcmp(e->rk, MT_RK_META) == 0 && v && v->type == MT_EDM_INT32 &&
           v->u.i32 == MT_PARTITION_SWITCHED;
}

/* One row of old; matched says new has a row with its key. */
static mt_status mt_verify_old_row(mt_verify_walk *w, const mt_entity *e, bool matched)
{
    if (!w->part.pk || strcmp(w->part.pk, e->pk) != 0) {
        mt_verify_close_part(w);
        w->part.pk = strdup(e->pk);
        if (!w->part.pk)
            return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    }
    if (mt_mig_is_protocol_rk(e->rk)) {
        w->r->protocol_rows++;
        w->part.switched = w->part.switched || mt_verify_is_switched_meta(e);
        return mt_ok();
    }
    w->r->old_rows++;
    w->part.has_user_rows = true;
    if (matched)
        return mt_ok();
    if (w->r->missing++ == 0)
        snprintf(w->r->first_missing, sizeof w->r->first_missing, "%s: %s / %s", w->name, e->pk,
                 e->rk);
    return mt_ok();
}

static void mt_verify_new_row(mt_verify_walk *w, const mt_entity *e)
{
    if (mt_mig_is_tombstone(e))
        w->r->tombstones++;
    else
        w->r->new_rows++;
    if (mt_mig_has_reserved_prop(e))
        w->r->reserved_props++;
}

/* Advances *e to the stream's next row (NULL at its end; s NULL: a table
 * that is not there, with no rows). */
static mt_status mt_verify_next(mt_stream *s, mt_entity **e)
{
    mt_entity_free(*e);
    *e = NULL;
    return s ? s->ops->next(s, e) : mt_ok();
}

/* The merge join of the two streams of one table. */
static mt_status mt_verify_join(mt_verify_walk *w, mt_stream *so, mt_stream *sn)
{
    mt_entity *o = NULL, *nw = NULL;
    mt_status st = mt_verify_next(so, &o);
    if (mt_is_ok(&st))
        st = mt_verify_next(sn, &nw);
    while (mt_is_ok(&st) && (o || nw)) {
        int c = !o ? 1 : !nw ? -1 : mt_key_cmp(o->pk, o->rk, nw->pk, nw->rk);
        if (c <= 0)
            st = mt_verify_old_row(w, o, c == 0);
        if (c >= 0)
            mt_verify_new_row(w, nw);
        if (mt_is_ok(&st) && c <= 0)
            st = mt_verify_next(so, &o);
        if (mt_is_ok(&st) && c >= 0)
            st = mt_verify_next(sn, &nw);
    }
    mt_entity_free(o);
    mt_entity_free(nw);
    mt_verify_close_part(w);
    return st;
}

/* Whether table t exists: a read of its first row (a stream may only
 * report 404 TableNotFound when it reads, not when it opens). */
static mt_status mt_verify_exists(mt_table *t, bool *exists)
{
    mt_stream *s = NULL;
    mt_entity *e = NULL;
    mt_status st = t->ops->query_stream(t, NULL, NULL, &s);
    if (mt_is_ok(&st))
        st = s->ops->next(s, &e);
    mt_entity_free(e);
    if (s)
        s->ops->close(s);
    *exists = !mt_table_gone(&st);
    return mt_table_gone(&st) ? mt_ok() : st;
}

/* old_deleted: the cleanup was to delete old, so its absence is expected
 * (old then reads as empty) and its presence is counted in
 * old_tables_left. */
static mt_status mt_verify_table(mt_table *old_t, mt_table *new_t, const char *name,
                                 bool old_deleted, mt_verify_report *r)
{
    mt_stream *so = NULL, *sn = NULL;
    bool old_there = true;
    mt_status st = old_deleted ? mt_verify_exists(old_t, &old_there) : mt_ok();
    if (mt_is_ok(&st) && old_there && old_deleted)
        r->old_tables_left++;
    if (mt_is_ok(&st) && old_there)
        st = old_t->ops->query_stream(old_t, NULL, NULL, &so);
    if (mt_is_ok(&st))
        st = new_t->ops->query_stream(new_t, NULL, NULL, &sn);
    mt_verify_walk w = {.r = r, .name = name};
    if (mt_is_ok(&st))
        st = mt_verify_join(&w, so, sn);
    if (so)
        so->ops->close(so);
    if (sn)
        sn->ops->close(sn);
    return st;
}

/* ", N deleted tables skipped (a, b)" after a summary, when any was. */
static void mt_verify_note_skipped(mt_verify_report *r)
{
    size_t len = strlen(r->summary);
    if (!r->tables_skipped || len >= sizeof r->summary)
        return;
    int k = snprintf(r->summary + len, sizeof r->summary - len,
                     "; %" PRId64 " deleted table%s skipped (%s)", r->tables_skipped,
                     r->tables_skipped == 1 ? "" : "s", r->skipped);
    if (k < 0) /* a summary cut short is still a summary */
        r->summary[len] = '\0';
}

static void mt_verify_judge_copy(mt_verify_report *r)
{
    r->ok = r->missing == 0 && r->unswitched == 0;
    if (r->ok) {
        snprintf(r->summary, sizeof r->summary, "ok: %" PRId64 " rows in old all present in new",
                 r->old_rows);
        return;
    }
    int k = 0;
    if (r->missing)
        k = snprintf(r->summary, sizeof r->summary,
                     "%" PRId64 " rows of old missing in new, first: %s", r->missing,
                     r->first_missing);
    if (r->unswitched && k >= 0 && (size_t)k < sizeof r->summary)
        snprintf(r->summary + k, sizeof r->summary - (size_t)k,
                 "%s%" PRId64 " partitions of old not switched", k ? "; " : "", r->unswitched);
}

/* Whether old is what the cleanup promised to make of it. */
static bool mt_verify_old_as_promised(const mt_verify_report *r, mt_old_after old_after)
{
    int64_t old_total = r->old_rows + r->protocol_rows;
    switch (old_after) {
    case MT_OLD_AFTER_KEEP:
        return r->protocol_rows == 0;
    case MT_OLD_AFTER_DELETE:
        return r->old_tables_left == 0;
    case MT_OLD_AFTER_EMPTY:
        break;
    }
    return old_total == 0;
}

static void mt_verify_judge_cleanup(mt_verify_report *r, mt_old_after old_after)
{
    r->ok = mt_verify_old_as_promised(r, old_after) && r->tombstones == 0 && r->reserved_props == 0;
    char old_part[128];
    if (old_after == MT_OLD_AFTER_DELETE)
        snprintf(old_part, sizeof old_part, "%" PRId64 " old tables not deleted",
                 r->old_tables_left);
    else
        snprintf(old_part, sizeof old_part, "%" PRId64 " rows in old (%" PRId64 " protocol rows)",
                 old_after == MT_OLD_AFTER_KEEP ? r->protocol_rows : r->old_rows + r->protocol_rows,
                 r->protocol_rows);
    if (!r->ok)
        snprintf(r->summary, sizeof r->summary,
                 "protocol data left: %s, %" PRId64 " tombstones and %" PRId64
                 " rows with _mtable_ properties in new",
                 old_part, r->tombstones, r->reserved_props);
    else if (old_after == MT_OLD_AFTER_KEEP)
        snprintf(r->summary, sizeof r->summary,
                 "ok: old keeps %" PRId64 " rows of the application and no protocol row, and "
                 "the %" PRId64 " rows of new carry no protocol data",
                 r->old_rows, r->new_rows);
    else if (old_after == MT_OLD_AFTER_DELETE)
        snprintf(r->summary, sizeof r->summary,
                 "ok: every old table is deleted and the %" PRId64
                 " rows of new carry no protocol data",
                 r->new_rows);
    else
        snprintf(r->summary, sizeof r->summary,
                 "ok: old is empty and the %" PRId64 " rows of new carry no protocol data",
                 r->new_rows);
}

/* Notes a table found deleted (its label appended to r->skipped). */
static void mt_verify_skip(mt_verify_report *r, const char *name)
{
    size_t len = strlen(r->skipped);
    if (len + 1 < sizeof r->skipped)
        snprintf(r->skipped + len, sizeof r->skipped - len, "%s%s", len ? ", " : "", name);
    r->tables_skipped++;
}

static mt_status mt_verify_all(mt_backoff *bo, const mt_table_pair *tables,
                               const char *const *names, size_t n, bool old_deleted,
                               mt_verify_report *r)
{
    mt_status st = mt_ok();
    for (size_t i = 0; i < n && mt_is_ok(&st); i++) {
        char label[32];
        snprintf(label, sizeof label, "#%zu", i);
        const char *name = names && names[i] ? names[i] : label;
        mt_table *o = mt_mig_retrying_backoff_new(tables[i].old_t, MT_VERIFY_ATTEMPTS,
                                                  MT_VERIFY_BUSY_ATTEMPTS, bo);
        mt_table *nw = mt_mig_retrying_backoff_new(tables[i].new_t, MT_VERIFY_ATTEMPTS,
                                                   MT_VERIFY_BUSY_ATTEMPTS, bo);
        mt_verify_report before = *r;
        st = o && nw ? mt_verify_table(o, nw, name, old_deleted, r)
                     : mt_error(500, MT_ERR_INTERNAL, "out of memory");
        if (mt_table_gone(&st)) {
            /* Deleted meanwhile: nothing of it to promise. Whatever was
             * counted of it before the 404 is forgotten. */
            *r = before;
            mt_verify_skip(r, name);
            st = mt_ok();
        }
        mt_table_destroy(o);
        mt_table_destroy(nw);
    }
    return st;
}

mt_status mt_verify_tables(mt_rt *rt, const mt_table_pair *tables, const char *const *names,
                           size_t n, mt_phase phase, bool after_cleanup, mt_verify_report *report)
{
    return mt_verify_tables_after(rt, tables, names, n, phase, after_cleanup, MT_OLD_AFTER_EMPTY,
                                  report);
}

mt_status mt_verify_tables_after(mt_rt *rt, const mt_table_pair *tables, const char *const *names,
                                 size_t n, mt_phase phase, bool after_cleanup,
                                 mt_old_after old_after, mt_verify_report *report)
{
    *report = (mt_verify_report){0};
    if (after_cleanup != (phase == MT_PHASE_USE_NEW_HIDE_METADATA))
        return mt_error(400, MT_ERR_INVALID_INPUT,
                        "verify checks the copy through use_new_with_tombstones and the "
                        "cleanup in use_new_hide_metadata, not %s %s cleanup",
                        mt_phase_name(phase), after_cleanup ? "after" : "before");
    mt_backoff bo;
    if (!mt_backoff_init(&bo, rt))
        return mt_error(500, MT_ERR_INTERNAL, "out of memory");
    bool old_deleted = after_cleanup && old_after == MT_OLD_AFTER_DELETE;
    mt_status st = mt_verify_all(&bo, tables, names, n, old_deleted, report);
    mt_backoff_clear(&bo);
    if (!mt_is_ok(&st)) {
        report->ok = false;
        snprintf(report->summary, sizeof report->summary, "verify failed: %d %s", st.http, st.code);
        return st;
    }
    if (after_cleanup)
        mt_verify_judge_cleanup(report, old_after);
    else
        mt_verify_judge_copy(report);
    mt_verify_note_skipped(report);
    return st;
}

/*
 * migrating_query.c -- the MigratingTable protocol: reads.
 *
 * Every read presents the merged view: old's rows, shadowed by new's rows of
 * switched partitions, with protocol rows, tombstones and _mtable_*
 * properties hidden. Two rules keep that view correct:
 *
 *   R1  Shadowing ignores the client's filter. A row in new that fails the
 *       filter still hides old's copy that passes it (the old copy is stale),
 *       so new is read without the client's filter and the filter is
 *       applied after the merge. Only the filter's conditions on the keys
 *       alone (mt_filter_key_part: a key range, a pinned partition) go to
 *       new as well: they pass or fail a row and its shadow together, and
 *       they keep a narrow query from reading all of new.
 *   R2  The partition state is read before (or with) old's rows, never after:
 *       once a partition is switched its old rows are frozen, so a state read
 *       first can only make us consult new more than needed, never less.
 *
 * The streamed query is long-lived and crosses configuration changes. It
 * holds a callback subscription; the callback runs under the stream's lock,
 * remembers the new configuration, computes where the merged stream stands
 * (the next key either side would return) and opens or restarts the backend
 * streams from there. Every read catches up the same way, so the backend
 * streams always match the configuration the stream last heard of.
 */
#include "migrating_internal.h"

#include <stdlib.h>
#include <string.h>

/* e with the _mtable_ properties stripped: e itself when it has none; a
 * stripped copy of a frozen row (which is shared, so never changed), e
 * released; NULL when that copy cannot be made. */
static mt_entity *stripped(mt_entity *e)
{
    if (!mt_mig_has_reserved_prop(e))
        return e;
    if (e->frozen) {
        mt_entity *c = mt_entity_clone(e);
        mt_entity_free(e);
        if (!(e = c))
            return NULL;
    }
    mt_mig_strip(e);
    return e;
}

/* Drops protocol rows, rows failing f and tombstones; strips the rest. A
 * copy that cannot be made marks the list oom. */
static void finish_rows(mt_entity_list *rows, const mt_filter *f)
{
    size_t keep = 0;
    for (size_t i = 0; i < rows->n; i++) {
        mt_entity *e = rows->v[i];
        /* A frozen row knows whether it has _mtable_ properties, without
         * which it is neither a tombstone nor in need of stripping. */
        bool plain = e->frozen && !e->reserved;
        if (mt_mig_is_protocol_rk(e->rk) || (!plain && mt_mig_is_tombstone(e)) ||
            (f && !mt_filter_eval(f, e))) {
            mt_entity_free(e);
            continue;
        }
        if (!plain && !(e = stripped(e))) {
            rows->oom = true;
            continue;
        }
        rows->v[keep++] = e;
    }
    rows->n = keep;
}

static int partition_state_of(const mt_entity_list *rows)
{
    for (size_t i = 0; i < rows->n; i++) {
        if (strcmp(rows->v[i]->rk, MT_RK_META) != 0)
            continue;
        const mt_value *v = mt_entity_get(rows->v[i], MT_PROP_STATE);
        return (v && v->type == MT_EDM_INT32) ? v->u.i32 : MT_PARTITION_POPULATED;
    }
    return 0;
}

/* Merges two key-ordered lists of one partition; new wins. Takes both. */
static void merge_rows(mt_entity_list *olds, mt_entity_list *news, mt_entity_list *out)
{
    size_t i = 0, j = 0;
    while (i < olds->n || j < news->n) {
        int c = (i == olds->n)   ? 1
                : (j == news->n) ? -1
                                 : mt_str_cmp(olds->v[i]->rk, news->v[j]->rk);
        if (c < 0) {
            mt_entity_list_push(out, olds->v[i++]);
        } else {
            if (c == 0)
                mt_entity_free(olds->v[i++]);
            mt_entity_list_push(out, news->v[j++]);
        }
    }
    out->oom = out->oom || olds->oom || news->oom;
    olds->n = news->n = 0;
    mt_entity_list_clear(olds);
    mt_entity_list_clear(news);
}

/* Phases 1-2: old (with the meta row), then all of new if switched. */
static mt_status query_merged(mt_migrating *m, const char *pk, const mt_filter *f,
                              mt_entity_list *out)
{
    mt_entity_list olds = {.share = out->share}, news = {.share = out->share};
    mt_status st;
    mt_filter *wide = NULL;
    mt_value meta_key = mt_v_str(MT_RK_META);
    /* The widened filter needs two more comparisons (PartitionKey and the
     * meta row's key); past the limit, read the meta row first (R2). */
    size_t need = (f ? mt_filter_count_comparisons(f) : 0) + 2;
    if (f && need > MT_FILTER_MAX_COMPARISONS) {
        mt_entity *meta = NULL;
        st = m->old_t->ops->retrieve(m->old_t, pk, MT_RK_META, &meta);
        if (mt_is_ok(&st))
            mt_entity_list_push(&olds, meta);
        else if (st.http != 404)
            return st;
        st = m->old_t->ops->query_atomic(m->old_t, pk, f, &olds);
    } else {
        if (f)
            wide = mt_filter_or(mt_filter_cmp("RowKey", MT_EQ, &meta_key), mt_filter_clone(f));
        st = m->old_t->ops->query_atomic(m->old_t, pk, wide, &olds);
        mt_filter_free(wide);
    }
    if (mt_is_ok(&st) && partition_state_of(&olds) == MT_PARTITION_SWITCHED) {
        mt_filter *keys =
            MT_BUG(QueryAtomicFilterShadowing) ? mt_filter_clone(f) : mt_filter_key_part(f);
        if (keys && mt_filter_count_comparisons(keys) + 1 > MT_FILTER_MAX_COMPARISONS) {
            mt_filter_free(keys); /* the partition pin counts too */
            keys = NULL;
        }
        st = m->new_t->ops->query_atomic(m->new_t, pk, keys, &news);
        mt_filter_free(keys);
    }
    if (!mt_is_ok(&st)) {
        mt_entity_list_clear(&olds);
        mt_entity_list_clear(&news);
        return st;
    }
    merge_rows(&olds, &news, out);
    return st;
}

mt_status mt_mig_query_atomic(mt_table *t, const char *pk, const mt_filter *f,
                              mt_entity_list *out)
{
    mt_migrating *given = (mt_migrating *)t, view, *m = &view;
    mt_config c;
    mt_subscription *sub = given->cfg->ops->subscribe(given->cfg, NULL, &c);
    if (!sub)
        return mt_oom();
    mt_mig_oriented(given, &c, &view);
    mt_entity_list rows = {.share = out->share};
    mt_status st;
    if (c.phase == MT_PHASE_USE_OLD_HIDE_METADATA)
        st = m->old_t->ops->query_atomic(m->old_t, pk, f, &rows);
    else if (c.phase >= MT_PHASE_USE_NEW_WITH_TOMBSTONES)
        st = m->new_t->ops->query_atomic(m->new_t, pk, f, &rows);
    else
        st = query_merged(m, pk, f, &rows);
    m->cfg->ops->unsubscribe(m->cfg, sub);
    if (!mt_is_ok(&st)) {
        mt_entity_list_clear(&rows);
        return st;
    }
    /* One backend read with the client's filter needs no second check; the
     * merged read does (R1: new is read without it). */
    bool merged =
        c.phase > MT_PHASE_USE_OLD_HIDE_METADATA && c.phase < MT_PHASE_USE_NEW_WITH_TOMBSTONES;
    finish_rows(&rows, merged ? f : NULL);
    for (size_t i = 0; i < rows.n; i++)
        mt_entity_list_push(out, rows.v[i]);
    if (rows.oom || out->oom)
        st = mt_oom(); /* rows are missing: no partial answer */
    rows.n = 0;
    mt_entity_list_clear(&rows);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Read marks: what a cache of one-partition reads compares (mt.h).         */

bool mt_read_mark_take(mt_table *t, bool hold, mt_read_mark *m)
{
    memset(m, 0, sizeof *m);
    if (t->ops->query_atomic != mt_mig_query_atomic)
        return false;
    mt_migrating *g = (mt_migrating *)t;
    uint64_t o = 0, n = 0;
    if (!mt_table_write_version(g->old_t, &o))
        return false; /* an Azure table: no subscription for nothing */
    mt_config c;
    mt_subscription *sub = g->cfg->ops->subscribe(g->cfg, NULL, &c);
    if (!sub)
        return false;
    /* After the configuration: a write version read later can only be
     * newer, never older than what a read under c would see. */
    if (!mt_table_write_version(g->old_t, &o) || !mt_table_write_version(g->new_t, &n)) {
        g->cfg->ops->unsubscribe(g->cfg, sub);
        return false;
    }
    m->writes = o > n ? o : n;
    m->phase = c.phase;
    m->version = c.version;
    m->generation = c.generation;
    m->reversed = c.reversed;
    if (hold)
        m->held = sub;
    else
        g->cfg->ops->unsubscribe(g->cfg, sub);
    return true;
}

void mt_read_mark_release(mt_table *t, mt_read_mark *m)
{
    if (m->held)
        ((mt_migrating *)t)->cfg->ops->unsubscribe(((mt_migrating *)t)->cfg, m->held);
    m->held = NULL;
}

bool mt_read_mark_equal(const mt_read_mark *a, const mt_read_mark *b)
{
    return a->writes == b->writes && a->phase == b->phase && a->version == b->version &&
           a->generation == b->generation && a->reversed == b->reversed;
}

/* ------------------------------------------------------------------------ */
/* Point reads: the filter is the key alone, so new's row for that key is   */
/* all that can shadow old's, and no whole-partition read is needed. A     */
/* shared read (share) asks the backends for their frozen rows; a row with */
/* _mtable_ properties is then copied to strip them (finish_rows).          */

/* A partition this proxy knows to be switched: new first; only a row new
 * lacks (not even as a tombstone) is looked up in old, whose rows are
 * frozen, so the pair of reads is a snapshot of the moment new was read. */
static mt_status retrieve_switched(mt_migrating *m, const char *pk, const char *rk,
                                   mt_entity_list *rows)
{
    mt_entity *e = NULL;
    mt_status st = mt_table_retrieve(m->new_t, pk, rk, rows->share, &e);
    if (st.http == 404)
        st = mt_table_retrieve(m->old_t, pk, rk, rows->share, &e);
    if (mt_is_ok(&st))
        mt_entity_list_push(rows, e);
    return st.http == 404 ? mt_ok() : st;
}

static mt_status retrieve_merged(mt_migrating *m, const char *pk, const char *rk,
                                 mt_entity_list *rows)
{
    if (mt_mig_switched_known(m, pk))
        return retrieve_switched(m, pk, rk, rows);
    const char *keys[2] = {MT_RK_META, rk};
    mt_status st = mt_mig_read_keys(m->old_t, pk, keys, 2, rows);
    if (!mt_is_ok(&st) || partition_state_of(rows) != MT_PARTITION_SWITCHED)
        return st;
    mt_entity *fresh = NULL;
    st = mt_table_retrieve(m->new_t, pk, rk, rows->share, &fresh);
    if (st.http == 404)
        return mt_ok();
    if (!mt_is_ok(&st))
        return st;
    mt_entity_list_clear(rows);
    mt_entity_list_push(rows, fresh);
    return st;
}

static mt_status mig_retrieve_as(mt_table *t, const char *pk, const char *rk, bool share,
                                 mt_entity **out)
{
    mt_migrating *given = (mt_migrating *)t, view, *m = &view;
    *out = NULL;
    /* A key no write accepts names no row: answered here, so that the
     * answer never depends on how a backend takes such a key (Azurite
     * refuses a long one with 431). */
    if (mt_mig_is_protocol_rk(rk) || mt_key_check("PartitionKey", pk).http ||
        mt_key_check("RowKey", rk).http)
        return mt_error(404, MT_ERR_NOT_FOUND, "The specified resource does not exist.");
    mt_config c;
    mt_subscription *sub = given->cfg->ops->subscribe(given->cfg, NULL, &c);
    if (!sub)
        return mt_oom();
    mt_mig_oriented(given, &c, &view);
    mt_entity_list rows = {.share = share};
    mt_entity *one = NULL;
    mt_status st;
    if (c.phase == MT_PHASE_USE_OLD_HIDE_METADATA || c.phase >= MT_PHASE_USE_NEW_WITH_TOMBSTONES) {
        mt_table *src = c.phase == MT_PHASE_USE_OLD_HIDE_METADATA ? m->old_t : m->new_t;
        st = mt_table_retrieve(src, pk, rk, share, &one);
        if (mt_is_ok(&st))
            mt_entity_list_push(&rows, one);
        else if (st.http == 404)
            st = mt_ok();
    } else {
        st = retrieve_merged(m, pk, rk, &rows);
    }
    m->cfg->ops->unsubscribe(m->cfg, sub);
    if (mt_is_ok(&st) && rows.oom)
        st = mt_oom();
    if (mt_is_ok(&st)) {
        finish_rows(&rows, NULL);
        for (size_t i = 0; i < rows.n && !*out; i++)
            if (strcmp(rows.v[i]->rk, rk) == 0) {
                *out = rows.v[i];
                rows.v[i] = NULL; /* taken */
            }
        if (!*out)
            st = mt_error(404, MT_ERR_NOT_FOUND, "The specified resource does not exist.");
    }
    mt_entity_list_clear(&rows);
    return st;
}

mt_status mt_mig_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    return mig_retrieve_as(t, pk, rk, false, out);
}

mt_status mt_mig_retrieve_shared(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    return mig_retrieve_as(t, pk, rk, true, out);
}

/* ------------------------------------------------------------------------ */
/* The streamed query.                                                       */

typedef struct mig_stream {
    mt_stream base;
    mt_migrating *m;   /* &view */
    mt_migrating view; /* the table in the roles of `applied` */
    mt_mutex *lock;
    mt_subscription *sub;
    mt_config cfg;     /* the latest configuration */
    mt_phase applied;  /* the phase the backend streams are set up for */
    mt_filter *filter; /* the client's, or NULL */
    mt_filter *keys;   /* what of it new may be asked for (R1), or NULL */
    mt_stream *old_s, *new_s;
    mt_entity *old_next, *new_next; /* each side's head, read ahead */
    mt_status failed;               /* a backend error met by the callback */
} mig_stream;

static void stream_lock(mig_stream *s)
{
    if (!MT_BUG(QueryStreamedLock))
        s->m->rt->ops->lock(s->m->rt, s->lock);
}

static void stream_unlock(mig_stream *s)
{
    if (!MT_BUG(QueryStreamedLock))
        s->m->rt->ops->unlock(s->m->rt, s->lock);
}

static mt_status side_advance(mt_stream *side, mt_entity **head)
{
    mt_entity_free(*head);
    *head = NULL;
    return side ? side->ops->next(side, head) : mt_ok();
}

static void side_close(mt_stream **side, mt_entity **head)
{
    if (*side)
        (*side)->ops->close(*side);
    *side = NULL;
    mt_entity_free(*head);
    *head = NULL;
}

static mt_status side_open(mt_table *t, const mt_filter *f, const mt_key *start, mt_stream **side,
                           mt_entity **head)
{
    mt_status st = t->ops->query_stream(t, f, start, side);
    if (!mt_is_ok(&st))
        return st;
    return side_advance(*side, head);
}

/* What new is asked for when it is opened in phase to: the keys alone while
 * old may still be merged in (R1); from phase 3 on old is never read again,
 * nothing is shadowed, and new takes the whole filter. */
static const mt_filter *new_side_filter(const mig_stream *s, mt_phase to)
{
    if (MT_BUG(QueryStreamedFilterShadowing) || to >= MT_PHASE_USE_NEW_WITH_TOMBSTONES)
        return s->filter;
    return s->keys;
}

/* <0: old's head comes first, >0: new's, 0: same key, 2: both ended. */
static int next_side(const mig_stream *s)
{
    if (!s->old_next && !s->new_next)
        return 2;
    if (!s->old_next)
        return 1;
    if (!s->new_next)
        return -1;
    return mt_key_cmp(s->old_next->pk, s->old_next->rk, s->new_next->pk, s->new_next->rk);
}

/* The key the merged stream would return next; false at the end. */
static bool continuation_key(const mig_stream *s, mt_key *k)
{
    int c = next_side(s);
    if (c == 2)
        return false;
    const mt_entity *e = c <= 0 ? s->old_next : s->new_next;
    mt_key_set(k, e->pk, e->rk);
    return true;
}

/* Brings the backend streams in line with s->cfg. The callback does it
 * eagerly, so a push completes only once the stream has moved; next() and
 * continuation() do it too, which is what makes remembering the new
 * configuration matter. */
/* Moves the stream to the other roles, where it reads the same single
 * table: use_new_hide_metadata of one way is use_old_hide_metadata of the
 * other. A configuration never swaps the roles anywhere else. */
static void stream_swap_roles(mig_stream *s)
{
    mt_table *t = s->view.old_t;
    s->view.old_t = s->view.new_t;
    s->view.new_t = t;
    s->view.reversed = !s->view.reversed;
    s->view.generation = s->cfg.generation;
    mt_stream *side = s->old_s;
    s->old_s = s->new_s;
    s->new_s = side;
    mt_entity *head = s->old_next;
    s->old_next = s->new_next;
    s->new_next = head;
    if (s->applied == MT_PHASE_USE_NEW_HIDE_METADATA)
        s->applied = MT_PHASE_USE_OLD_HIDE_METADATA;
    else if (s->applied == MT_PHASE_USE_OLD_HIDE_METADATA)
        s->applied = MT_PHASE_USE_NEW_HIDE_METADATA;
    else if (mt_is_ok(&s->failed))
        s->failed = mt_error(503, MT_ERR_SERVER_BUSY,
                             "the tables' roles were swapped in phase %s; query again",
                             mt_phase_name(s->applied));
}

static void stream_catch_up(mig_stream *s)
{
    if (s->cfg.reversed != s->view.reversed)
        stream_swap_roles(s);
    mt_phase from = s->applied, to = s->cfg.phase;
    if (from == to)
        return;
    mt_key k = {0};
    bool more = continuation_key(s, &k);
    const mt_filter *nf = new_side_filter(s, to);
    mt_status st = mt_ok();
    bool just_started = false;

    if (to > MT_PHASE_USE_OLD_HIDE_METADATA && from <= MT_PHASE_USE_OLD_HIDE_METADATA && more) {
        side_close(&s->new_s, &s->new_next);
        st = side_open(s->m->new_t, nf, &k, &s->new_s, &s->new_next);
        just_started = true;
    }
    if (to >= MT_PHASE_USE_NEW_HIDE_METADATA && from < MT_PHASE_USE_NEW_HIDE_METADATA) {
        side_close(&s->old_s, &s->old_next);
        /* The new stream may have run ahead while old rows that it did not
         * have yet were being returned; back it up to where we stand. */
        if (mt_is_ok(&st) && more && !just_started && !MT_BUG(QueryStreamedBackUpNewStream)) {
            side_close(&s->new_s, &s->new_next);
            st = side_open(s->m->new_t, nf, &k, &s->new_s, &s->new_next);
        }
    }
    if (!mt_is_ok(&st) && mt_is_ok(&s->failed))
        s->failed = st;
    s->applied = to;
    mt_key_clear(&k);
}

static void stream_apply(void *ctx, const mt_config *nc)
{
    mig_stream *s = ctx;
    stream_lock(s);
    if (!MT_BUG(QueryStreamedSaveNewConfig))
        s->cfg = *nc;
    stream_catch_up(s);
    stream_unlock(s);
}

/* Pulls the next merged row, or NULL at the end, under the lock. */
static mt_status stream_pull(mig_stream *s, mt_entity **out)
{
    *out = NULL;
    stream_catch_up(s);
    for (;;) {
        if (!mt_is_ok(&s->failed))
            return s->failed;
        int c = next_side(s);
        if (c == 2)
            return mt_ok();
        mt_entity *from_old = NULL, *from_new = NULL;
        mt_status st = mt_ok();
        if (c <= 0) {
            from_old = s->old_next;
            s->old_next = NULL;
            st = side_advance(s->old_s, &s->old_next);
        }
        if (c >= 0 && mt_is_ok(&st)) {
            from_new = s->new_next;
            s->new_next = NULL;
            st = side_advance(s->new_s, &s->new_next);
        }
        mt_entity *e = from_new ? from_new : from_old;
        if (e == from_new)
            mt_entity_free(from_old);
        if (!mt_is_ok(&st)) {
            mt_entity_free(e);
            return st;
        }
        if (!mt_mig_is_protocol_rk(e->rk) && !mt_mig_is_tombstone(e) &&
            (!s->filter || mt_filter_eval(s->filter, e))) {
            mt_mig_strip(e);
            *out = e;
            return mt_ok();
        }
        mt_entity_free(e);
    }
}

static mt_status stream_next(mt_stream *base, mt_entity **out)
{
    mig_stream *s = (mig_stream *)base;
    stream_lock(s);
    mt_status st = stream_pull(s, out);
    stream_unlock(s);
    return st;
}

/* The next key the merged stream may return: a row at this key or later.
 * Rows skipped there (protocol rows, tombstones, filtered out) are safe to
 * restart from. */
static mt_status stream_continuation(mt_stream *base, mt_key *out, bool *more)
{
    mig_stream *s = (mig_stream *)base;
    stream_lock(s);
    stream_catch_up(s);
    *more = continuation_key(s, out);
    mt_status st = s->failed;
    stream_unlock(s);
    return st;
}

static void stream_close(mt_stream *base)
{
    mig_stream *s = (mig_stream *)base;
    /* Unsubscribe without the lock: a push may be applying to us and needs
     * it; unsubscribe waits for that callback to finish. */
    s->m->cfg->ops->unsubscribe(s->m->cfg, s->sub);
    side_close(&s->old_s, &s->old_next);
    side_close(&s->new_s, &s->new_next);
    mt_filter_free(s->filter);
    mt_filter_free(s->keys);
    s->m->rt->ops->mutex_free(s->m->rt, s->lock);
    free(s);
}

static const mt_stream_ops mig_stream_ops = {
    .next = stream_next,
    .continuation = stream_continuation,
    .close = stream_close,
};

static mt_status stream_start(mig_stream *s, const mt_key *start)
{
    mt_migrating *m = s->m;
    mt_subscriber me = {.apply = stream_apply, .ctx = s};
    s->sub = m->cfg->ops->subscribe(m->cfg, &me, &s->cfg);
    if (!s->sub)
        return mt_oom();
    mt_migrating given = s->view;
    mt_mig_oriented(&given, &s->cfg, &s->view);
    s->applied = s->cfg.phase;
    mt_status st = mt_ok();
    if (s->cfg.phase < MT_PHASE_USE_NEW_WITH_TOMBSTONES)
        st = side_open(m->old_t, s->filter, start, &s->old_s, &s->old_next);
    if (mt_is_ok(&st) && s->cfg.phase > MT_PHASE_USE_OLD_HIDE_METADATA) {
        const mt_filter *nf = new_side_filter(s, s->cfg.phase);
        st = side_open(m->new_t, nf, start, &s->new_s, &s->new_next);
    }
    return st;
}

mt_status mt_mig_query_stream(mt_table *t, const mt_filter *f, const mt_key *start,
                              mt_stream **out)
{
    mt_migrating *m = (mt_migrating *)t;
    *out = NULL;
    mig_stream *s = calloc(1, sizeof *s);
    if (!s)
        return mt_oom();
    s->base.ops = &mig_stream_ops;
    s->view = *m;
    s->m = &s->view;
    s->failed = mt_ok();
    s->filter = f ? mt_filter_clone(f) : NULL;
    s->keys = mt_filter_key_part(f);
    s->lock = m->rt->ops->mutex_new(m->rt);
    if (!s->lock) {
        mt_filter_free(s->filter);
        mt_filter_free(s->keys);
        free(s);
        return mt_oom();
    }
    stream_lock(s);
    mt_status st = stream_start(s, start);
    stream_unlock(s);
    if (!mt_is_ok(&st)) {
        stream_close(&s->base);
        return st;
    }
    *out = &s->base;
    return st;
}

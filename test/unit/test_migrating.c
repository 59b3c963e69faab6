/*
 * test_migrating.c -- the MigratingTable protocol, phase by phase: where each
 * op kind lands in the backends, what the merged view shows, and how reads
 * and streams behave across a configuration change.
 *
 * The backends are inspected directly, so these tests pin the translation
 * docs/protocol.md (section 4) specifies; the concurrency tester checks
 * that it is correct under interleavings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt.h"

typedef struct fixture {
    mt_rt *rt;
    mt_config_service *cfg;
    mt_table *old_t, *new_t, *mt;
} fixture;

static fixture *fx_new(mt_phase phase)
{
    fixture *f = calloc(1, sizeof *f);
    f->rt = mt_rt_pthread();
    f->cfg = mt_config_local_new(f->rt, phase);
    f->old_t = mt_memtable_new(f->rt, "old");
    f->new_t = mt_memtable_new(f->rt, "new");
    f->mt = mt_migrating_new(f->rt, f->cfg, f->old_t, f->new_t);
    return f;
}

static void fx_free(fixture *f)
{
    mt_table_destroy(f->mt);
    mt_table_destroy(f->old_t);
    mt_table_destroy(f->new_t);
    f->cfg->ops->destroy(f->cfg);
    free(f);
}

static void fx_push(fixture *f, mt_phase p)
{
    mt_status st = f->cfg->ops->push(f->cfg, p);
    assert_true(mt_is_ok(&st));
}

static mt_entity *ent(const char *pk, const char *rk, const char *color)
{
    mt_entity *e = mt_entity_new(pk, rk);
    if (color) {
        mt_value v = mt_v_str(color);
        mt_entity_set(e, "color", &v);
    }
    return e;
}

/* Runs a one-op batch; returns the status, the ETag into etag if given. */
static mt_status write1(mt_table *t, mt_op_kind kind, const char *pk, const char *rk,
                        const char *color, const char *if_match, char *etag)
{
    mt_entity *e = ent(pk, rk, color);
    mt_op op = {.kind = kind, .entity = e, .if_match = if_match};
    mt_op_result res;
    mt_status st = mt_table_batch(t, &op, 1, &res);
    if (mt_is_ok(&st) && etag)
        strcpy(etag, res.etag);
    mt_entity_free(e);
    return st;
}

static mt_entity *get(mt_table *t, const char *pk, const char *rk)
{
    mt_entity *e = NULL;
    mt_status st = t->ops->retrieve(t, pk, rk, &e);
    return mt_is_ok(&st) ? e : NULL;
}

static const char *color_of(const mt_entity *e)
{
    const mt_value *v = e ? mt_entity_get(e, "color") : NULL;
    return v ? v->u.bytes.ptr : NULL;
}

static bool is_tombstone(const mt_entity *e)
{
    const mt_value *v = e ? mt_entity_get(e, MT_PROP_DELETED) : NULL;
    return v && v->type == MT_EDM_BOOLEAN && v->u.b;
}

static int partition_state(mt_table *old_t, const char *pk)
{
    mt_entity *m = get(old_t, pk, MT_RK_META);
    int s = 0;
    if (m) {
        s = mt_entity_get(m, MT_PROP_STATE)->u.i32;
        mt_entity_free(m);
    }
    return s;
}

static void test_phase0_passes_through(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_USE_OLD_HIDE_METADATA);
    mt_status st = write1(f->mt, MT_OP_INSERT, "p", "a", "red", NULL, NULL);
    assert_true(mt_is_ok(&st));
    assert_int_equal(mt_memtable_count(f->old_t), 1);
    assert_int_equal(mt_memtable_count(f->new_t), 0);
    mt_entity *e = get(f->mt, "p", "a");
    assert_string_equal(color_of(e), "red");
    mt_entity_free(e);
    fx_free(f);
}

static void test_reserved_names_rejected(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_PREFER_NEW);
    mt_status st = write1(f->mt, MT_OP_INSERT, "p", MT_RK_META, "red", NULL, NULL);
    assert_int_equal(st.http, 400);
    assert_int_equal(st.index, 0);

    mt_entity *a = ent("p", "a", "red"), *b = ent("p", "b", "red");
    mt_value v = mt_v_bool(true);
    mt_entity_set(b, MT_PROP_DELETED, &v);
    mt_op ops[2] = {{.kind = MT_OP_INSERT, .entity = a}, {.kind = MT_OP_INSERT, .entity = b}};
    mt_op_result res[2];
    st = mt_table_batch(f->mt, ops, 2, res);
    assert_int_equal(st.http, 400);
    assert_int_equal(st.index, 1);
    assert_int_equal(mt_memtable_count(f->old_t) + mt_memtable_count(f->new_t), 0);
    mt_entity_free(a);
    mt_entity_free(b);

    /* All 252 user properties fit, in every phase: no live row carries a
     * property of the protocol. */
    mt_entity *wide = ent("p", "w", NULL);
    char name[16];
    for (int i = 0; i <= MT_MAX_USER_PROPS; i++) {
        snprintf(name, sizeof name, "p%d", i);
        mt_value v = mt_v_i32(i);
        mt_entity_set(wide, name, &v);
    }
    mt_op op = {.kind = MT_OP_INSERT, .entity = wide};
    st = mt_table_batch(f->mt, &op, 1, res);
    assert_int_equal(st.http, 400);
    assert_string_equal(st.code, MT_ERR_TOO_MANY_PROPS);
    mt_entity_remove(wide, "p0");
    st = mt_table_batch(f->mt, &op, 1, res);
    assert_true(mt_is_ok(&st));
    mt_entity_free(wide);

    /* A row may appear once in a batch. */
    mt_entity *x = ent("p", "x", "red"), *y = ent("p", "y", "red");
    mt_op dup[3] = {{.kind = MT_OP_INSERT, .entity = x},
                    {.kind = MT_OP_INSERT, .entity = y},
                    {.kind = MT_OP_MERGE, .entity = x, .if_match = "*"}};
    mt_op_result dres[3];
    st = mt_table_batch(f->mt, dup, 3, dres);
    assert_int_equal(st.http, 400);
    assert_string_equal(st.code, "InvalidDuplicateRow");
    assert_int_equal(st.index, 2);
    mt_entity_free(x);
    mt_entity_free(y);
    fx_free(f);
}

static void test_phase1_marks_populated_and_hides_it(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_PREFER_OLD);
    char etag[MT_ETAG_MAX];
    mt_status st = write1(f->mt, MT_OP_INSERT, "p", "a", "red", NULL, etag);
    assert_true(mt_is_ok(&st));
    assert_int_equal(partition_state(f->old_t, "p"), MT_PARTITION_POPULATED);
    mt_entity *as = get(f->old_t, "p", MT_RK_ASSERTION);
    assert_non_null(as);
    mt_entity_free(as);
    assert_int_equal(mt_memtable_count(f->new_t), 0);

    /* The client sees only its row, with the ETag it was handed. */
    mt_entity_list rows = {0};
    st = f->mt->ops->query_atomic(f->mt, "p", NULL, &rows);
    assert_true(mt_is_ok(&st));
    assert_int_equal(rows.n, 1);
    assert_string_equal(rows.v[0]->rk, "a");
    assert_string_equal(rows.v[0]->etag, etag);
    mt_entity_list_clear(&rows);

    /* Failure indexes are the client's, not shifted by the guard. */
    mt_entity *b = ent("p", "b", "x"), *a = ent("p", "a", "y");
    mt_op ops[2] = {{.kind = MT_OP_INSERT, .entity = b}, {.kind = MT_OP_INSERT, .entity = a}};
    mt_op_result res[2];
    st = mt_table_batch(f->mt, ops, 2, res);
    assert_int_equal(st.http, 409);
    assert_int_equal(st.index, 1);
    mt_entity_free(a);
    mt_entity_free(b);
    fx_free(f);
}

typedef struct push_arg {
    mt_config_service *cfg;
    mt_phase phase;
} push_arg;

static void *push_thread(void *arg)
{
    push_arg *p = arg;
    p->cfg->ops->push(p->cfg, p->phase);
    return NULL;
}

static void test_phase1_full_batch_waits_until_settled(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_USE_OLD_HIDE_METADATA);
    mt_entity *es[MT_BATCH_MAX];
    mt_op ops[MT_BATCH_MAX];
    mt_op_result res[MT_BATCH_MAX];
    char rk[16];
    for (int i = 0; i < MT_BATCH_MAX; i++) {
        snprintf(rk, sizeof rk, "r%03d", i);
        es[i] = ent("p", rk, "red");
        ops[i] = (mt_op){.kind = MT_OP_INSERT, .entity = es[i]};
    }
    /* An operation of phase 0 is still running while phase 1 is pushed. */
    mt_config c;
    mt_subscription *held = f->cfg->ops->subscribe(f->cfg, NULL, &c);
    push_arg pa = {.cfg = f->cfg, .phase = MT_PHASE_PREFER_OLD};
    pthread_t t;
    pthread_create(&t, NULL, push_thread, &pa);
    for (;;) { /* wait until the push has begun */
        mt_subscription *probe = f->cfg->ops->subscribe(f->cfg, NULL, &c);
        f->cfg->ops->unsubscribe(f->cfg, probe);
        if (c.phase == MT_PHASE_PREFER_OLD)
            break;
        usleep(1000);
    }
    /* 100 ops leave no room for the guard; switching is unsafe yet. */
    mt_status st = mt_table_batch(f->mt, ops, MT_BATCH_MAX, res);
    assert_int_equal(st.http, 503);
    assert_string_equal(st.code, MT_ERR_SERVER_BUSY);
    assert_int_equal(mt_memtable_count(f->old_t) + mt_memtable_count(f->new_t), 0);

    f->cfg->ops->unsubscribe(f->cfg, held);
    pthread_join(t, NULL);
    /* Settled: the partition is switched and the batch goes to new. */
    st = mt_table_batch(f->mt, ops, MT_BATCH_MAX, res);
    assert_true(mt_is_ok(&st));
    assert_int_equal(res[0].http, 201);
    assert_int_equal(partition_state(f->old_t, "p"), MT_PARTITION_SWITCHED);
    assert_int_equal(mt_memtable_count(f->new_t), MT_BATCH_MAX);
    for (int i = 0; i < MT_BATCH_MAX; i++)
        mt_entity_free(es[i]);
    fx_free(f);
}

static void test_phase1_falls_through_when_switched(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_PREFER_OLD);
    mt_status st = write1(f->mt, MT_OP_INSERT, "p", "a", "red", NULL, NULL);
    assert_true(mt_is_ok(&st));
    /* A prefer_new peer (its own proxy, same backends) writes the partition
     * and so switches it. */
    mt_config_service *peer_cfg = mt_config_local_new(f->rt, MT_PHASE_PREFER_NEW);
    mt_table *peer = mt_migrating_new(f->rt, peer_cfg, f->old_t, f->new_t);
    st = write1(peer, MT_OP_INSERT, "p", "b", "red", NULL, NULL);
    assert_true(mt_is_ok(&st));
    assert_int_equal(partition_state(f->old_t, "p"), MT_PARTITION_SWITCHED);
    /* The prefer_old client's guard now fails, so it writes new too. */
    st = write1(f->mt, MT_OP_MERGE, "p", "a", "blue", "*", NULL);
    assert_true(mt_is_ok(&st));
    mt_entity *o = get(f->old_t, "p", "a"), *n = get(f->new_t, "p", "a");
    assert_string_equal(color_of(o), "red");
    assert_string_equal(color_of(n), "blue");
    mt_entity_free(o);
    mt_entity_free(n);
    /* A streamed query in prefer_old reads the switched partition from
     * new: a blue (not old's red) and b, which only new has. */
    mt_stream *s = NULL;
    st = f->mt->ops->query_stream(f->mt, NULL, NULL, &s);
    assert_true(mt_is_ok(&st));
    mt_entity *e = NULL;
    s->ops->next(s, &e);
    assert_non_null(e);
    assert_string_equal(e->rk, "a");
    assert_string_equal(color_of(e), "blue");
    mt_entity_free(e);
    s->ops->next(s, &e);
    assert_non_null(e);
    assert_string_equal(e->rk, "b");
    mt_entity_free(e);
    s->ops->next(s, &e);
    assert_null(e);
    s->ops->close(s);
    mt_table_destroy(peer);
    peer_cfg->ops->destroy(peer_cfg);
    fx_free(f);
}

/* Phase 2 on a partition whose rows are still only in old. */
static void test_phase2_switches_and_copies(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_USE_OLD_HIDE_METADATA);
    char e_old[MT_ETAG_MAX];
    write1(f->mt, MT_OP_INSERT, "p", "a", "red", NULL, e_old);
    write1(f->mt, MT_OP_INSERT, "p", "b", "red", NULL, NULL);
    fx_push(f, MT_PHASE_PREFER_OLD);
    write1(f->mt, MT_OP_INSERT, "p", "c", "red", NULL, NULL); /* marks it populated */
    fx_push(f, MT_PHASE_PREFER_NEW);

    /* Insert of a row that exists only in old still conflicts. */
    mt_status st = write1(f->mt, MT_OP_INSERT, "p", "a", "blue", NULL, NULL);
    assert_int_equal(st.http, 409);
    assert_int_equal(partition_state(f->old_t, "p"), MT_PARTITION_SWITCHED);
    mt_entity *as = get(f->old_t, "p", MT_RK_ASSERTION);
    assert_null(as);
    /* ...and it was copied to new on the way. */
    mt_entity *copied = get(f->new_t, "p", "a");
    assert_non_null(copied);
    assert_string_equal(color_of(copied), "red");

    /* The copy has a new ETag: the old one no longer matches. */
    st = write1(f->mt, MT_OP_REPLACE, "p", "a", "green", e_old, NULL);
    assert_int_equal(st.http, 412);
    char e_new[MT_ETAG_MAX];
    st = write1(f->mt, MT_OP_REPLACE, "p", "a", "green", copied->etag, e_new);
    assert_true(mt_is_ok(&st));
    mt_entity_free(copied);

    /* Old rows stay frozen; the merged view shows new over old. */
    mt_entity *o = get(f->old_t, "p", "a");
    assert_string_equal(color_of(o), "red");
    mt_entity_free(o);
    mt_entity *seen = get(f->mt, "p", "a");
    assert_string_equal(color_of(seen), "green");
    assert_string_equal(seen->etag, e_new);
    mt_entity_free(seen);
    fx_free(f);
}

static void test_phase2_delete_leaves_tombstone(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_USE_OLD_HIDE_METADATA);
    write1(f->mt, MT_OP_INSERT, "p", "a", "red", NULL, NULL);
    fx_push(f, MT_PHASE_PREFER_OLD);
    fx_push(f, MT_PHASE_PREFER_NEW);
    mt_status st = write1(f->mt, MT_OP_DELETE, "p", "a", NULL, "*", NULL);
    assert_true(mt_is_ok(&st));
    mt_entity *t = get(f->new_t, "p", "a");
    assert_true(is_tombstone(t));
    mt_entity_free(t);
    mt_entity *o = get(f->old_t, "p", "a"); /* shadowed, not deleted */
    assert_non_null(o);
    mt_entity_free(o);
    assert_null(get(f->mt, "p", "a"));
    mt_entity_list rows = {0};
    f->mt->ops->query_atomic(f->mt, "p", NULL, &rows);
    assert_int_equal(rows.n, 0);
    /* Deleting again: 404. Inserting revives it. */
    st = write1(f->mt, MT_OP_DELETE, "p", "a", NULL, "*", NULL);
    assert_int_equal(st.http, 404);
    st = write1(f->mt, MT_OP_INSERT, "p", "a", "blue", NULL, NULL);
    assert_true(mt_is_ok(&st));
    mt_entity *e = get(f->mt, "p", "a");
    assert_string_equal(color_of(e), "blue");
    assert_null(mt_entity_get(e, MT_PROP_DELETED)); /* hidden from clients */
    mt_entity_free(e);
    /* DeleteIfExists of a row that never existed still leaves a tombstone. */
    st = write1(f->mt, MT_OP_DELETE_IF_EXISTS, "p", "zz", NULL, NULL, NULL);
    assert_true(mt_is_ok(&st));
    t = get(f->new_t, "p", "zz");
    assert_true(is_tombstone(t));
    mt_entity_free(t);
    /* InsertOrMerge revives a tombstone, and the live row is clean. */
    st = write1(f->mt, MT_OP_INSERT_OR_MERGE, "p", "zz", "red", NULL, NULL);
    assert_true(mt_is_ok(&st));
    t = get(f->new_t, "p", "zz");
    assert_false(is_tombstone(t));
    assert_null(mt_entity_get(t, MT_PROP_DELETED));
    mt_entity_free(t);
    fx_free(f);
}

static void test_phase4_writes_stay_clean(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_USE_NEW_WITH_TOMBSTONES);
    write1(f->mt, MT_OP_INSERT, "p", "a", "red", NULL, NULL);
    write1(f->mt, MT_OP_DELETE, "p", "a", NULL, "*", NULL); /* tombstone */
    fx_push(f, MT_PHASE_USE_NEW_HIDE_METADATA);
    assert_null(get(f->mt, "p", "a"));
    /* InsertOrMerge over a tombstone: replaced, without the flag. */
    mt_status st = write1(f->mt, MT_OP_INSERT_OR_MERGE, "p", "a", "blue", NULL, NULL);
    assert_true(mt_is_ok(&st));
    mt_entity *e = get(f->new_t, "p", "a");
    assert_string_equal(color_of(e), "blue");
    assert_null(mt_entity_get(e, MT_PROP_DELETED));
    mt_entity_free(e);
    /* Delete really deletes now. */
    st = write1(f->mt, MT_OP_DELETE, "p", "a", NULL, "*", NULL);
    assert_true(mt_is_ok(&st));
    assert_null(get(f->new_t, "p", "a"));
    /* DeleteIfExists of an absent row succeeds and leaves nothing. */
    st = write1(f->mt, MT_OP_DELETE_IF_EXISTS, "p", "a", NULL, NULL, NULL);
    assert_true(mt_is_ok(&st));
    assert_int_equal(mt_memtable_count(f->new_t), 0);
    fx_free(f);
}

/* A reader that lends its list (share) sees the same rows, stripped; the
 * rows that carried _mtable_ properties were copied to strip them, the
 * stored rows keep them, and clean rows are the stored rows themselves. */
static void test_shared_read_strips_copies(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_USE_NEW_WITH_TOMBSTONES);
    write1(f->new_t, MT_OP_INSERT, "p", "a", "red", NULL, NULL);
    mt_entity *b = ent("p", "b", "blue");
    mt_value no = mt_v_bool(false);
    mt_entity_set(b, MT_PROP_DELETED, &no); /* as a write of the migration left it */
    mt_op op = {.kind = MT_OP_INSERT, .entity = b};
    mt_op_result res;
    assert_true(mt_table_batch(f->new_t, &op, 1, &res).http == 0);
    mt_entity_free(b);
    for (int round = 0; round < 2; round++) {
        if (round)
            fx_push(f, MT_PHASE_USE_NEW_HIDE_METADATA);
        mt_entity_list shared = {.share = true}, plain = {0};
        assert_true(f->mt->ops->query_atomic(f->mt, "p", NULL, &shared).http == 0);
        assert_true(f->mt->ops->query_atomic(f->mt, "p", NULL, &plain).http == 0);
        assert_int_equal(shared.n, 2);
        assert_int_equal(plain.n, 2);
        for (size_t i = 0; i < 2; i++)
            assert_true(mt_entity_same_content(shared.v[i], plain.v[i]));
        assert_null(mt_entity_get(shared.v[1], MT_PROP_DELETED));
        assert_true(shared.v[0]->frozen);  /* the stored row itself */
        assert_false(shared.v[1]->frozen); /* a stripped copy */
        mt_entity_list_clear(&shared);
        mt_entity_list_clear(&plain);
        mt_entity *stored = get(f->new_t, "p", "b");
        assert_non_null(mt_entity_get(stored, MT_PROP_DELETED)); /* still flagged */
        mt_entity_free(stored);
    }
    fx_free(f);
}

/* Shared and plain point reads of every key through t agree: the same
 * status, content and ETag, and never an _mtable_ property. */
static void check_shared_retrieve(mt_table *t)
{
    const char *keys[] = {"a", "b", "c", "d", "zz", MT_RK_META};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        mt_entity *lent = NULL, *copy = NULL;
        mt_status s1 = mt_table_retrieve(t, "p", keys[i], true, &lent);
        mt_status s2 = mt_table_retrieve(t, "p", keys[i], false, &copy);
        assert_int_equal(s1.http, s2.http);
        assert_string_equal(s1.code, s2.code);
        assert_true((lent == NULL) == (copy == NULL));
        if (lent) {
            assert_true(mt_entity_same_content(lent, copy));
            assert_string_equal(lent->etag, copy->etag);
            assert_false(copy->frozen);
            for (size_t j = 0; j < lent->nprops; j++)
                assert_false(strncmp(lent->props[j].name, MT_RESERVED_PREFIX,
                                     strlen(MT_RESERVED_PREFIX)) == 0);
        }
        mt_entity_free(copy);
        mt_entity_free(lent);
    }
}

/* A shared point read (retrieve_shared) answers as retrieve does in every
 * phase, through a view that knows the partition switched and one that
 * does not; a clean row is lent (frozen), and keeps what it held after a
 * write replaces it. */
static void test_shared_retrieve_every_phase(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_USE_OLD_HIDE_METADATA);
    for (int p = MT_PHASE_USE_OLD_HIDE_METADATA; p < MT_PHASE_COUNT; p++) {
        if (p > MT_PHASE_USE_OLD_HIDE_METADATA)
            fx_push(f, (mt_phase)p);
        if (p == MT_PHASE_USE_OLD_HIDE_METADATA) {
            write1(f->mt, MT_OP_INSERT, "p", "a", "red", NULL, NULL);
            write1(f->mt, MT_OP_INSERT, "p", "b", "red", NULL, NULL);
            write1(f->mt, MT_OP_INSERT, "p", "c", "red", NULL, NULL);
        } else if (p == MT_PHASE_PREFER_OLD) {
            write1(f->mt, MT_OP_INSERT, "p", "d", "red", NULL, NULL); /* populated */
        } else if (p == MT_PHASE_PREFER_NEW) {
            write1(f->mt, MT_OP_INSERT_OR_REPLACE, "p", "b", "blue", NULL, NULL);
            write1(f->mt, MT_OP_DELETE, "p", "c", NULL, "*", NULL); /* a tombstone */
        }
        /* A second view over the same backends has not seen the switch. */
        mt_table *fresh = mt_migrating_new(f->rt, f->cfg, f->old_t, f->new_t);
        check_shared_retrieve(f->mt);
        check_shared_retrieve(fresh);
        mt_table_destroy(fresh);

        mt_entity *lent = NULL;
        assert_true(mt_table_retrieve(f->mt, "p", "a", true, &lent).http == 0);
        assert_true(lent->frozen);
        char before[16];
        snprintf(before, sizeof before, "%s", color_of(lent));
        const char *next = strcmp(before, "red") == 0 ? "green" : "red";
        assert_true(write1(f->mt, MT_OP_INSERT_OR_REPLACE, "p", "a", next, NULL, NULL).http == 0);
        assert_string_equal(color_of(lent), before);
        mt_entity *now = get(f->mt, "p", "a");
        assert_string_equal(color_of(now), next);
        mt_entity_free(now);
        mt_entity_free(lent);
    }
    fx_free(f);
}

/* A row in new that fails the filter still hides old's row that passes. */
static void test_query_shadowing_ignores_filter(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_USE_OLD_HIDE_METADATA);
    write1(f->mt, MT_OP_INSERT, "p", "a", "red", NULL, NULL);
    write1(f->mt, MT_OP_INSERT, "p", "b", "red", NULL, NULL);
    fx_push(f, MT_PHASE_PREFER_OLD);
    fx_push(f, MT_PHASE_PREFER_NEW);
    write1(f->mt, MT_OP_INSERT_OR_REPLACE, "p", "a", "blue", NULL, NULL);

    mt_filter *red = NULL;
    mt_status st = mt_filter_parse("color eq 'red'", 14, &red);
    assert_true(mt_is_ok(&st));
    mt_entity_list rows = {0};
    st = f->mt->ops->query_atomic(f->mt, "p", red, &rows);
    assert_true(mt_is_ok(&st));
    assert_int_equal(rows.n, 1);
    assert_string_equal(rows.v[0]->rk, "b");
    mt_entity_list_clear(&rows);

    mt_stream *s = NULL;
    st = f->mt->ops->query_stream(f->mt, red, NULL, &s);
    assert_true(mt_is_ok(&st));
    mt_entity *e = NULL;
    s->ops->next(s, &e);
    assert_non_null(e);
    assert_string_equal(e->rk, "b");
    mt_entity_free(e);
    s->ops->next(s, &e);
    assert_null(e);
    s->ops->close(s);
    mt_filter_free(red);
    fx_free(f);
}

/* A stream opened in phase 0 goes on through every phase. */
/* A table that counts the calls made to it. */
typedef struct counting {
    mt_table base;
    mt_table *inner;
    int calls;
} counting;

static mt_status c_batch(mt_table *t, const mt_op *ops, size_t n, mt_op_result *r)
{
    counting *c = (counting *)t;
    c->calls++;
    return mt_table_batch(c->inner, ops, n, r);
}

static mt_status c_query(mt_table *t, const char *pk, const mt_filter *f, mt_entity_list *out)
{
    counting *c = (counting *)t;
    c->calls++;
    return c->inner->ops->query_atomic(c->inner, pk, f, out);
}

static mt_status c_stream(mt_table *t, const mt_filter *f, const mt_key *k, mt_stream **out)
{
    counting *c = (counting *)t;
    c->calls++;
    return c->inner->ops->query_stream(c->inner, f, k, out);
}

static mt_status c_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out)
{
    counting *c = (counting *)t;
    c->calls++;
    return c->inner->ops->retrieve(c->inner, pk, rk, out);
}

static void c_destroy(mt_table *t)
{
    free(t);
}

static const mt_table_ops counting_ops = {c_batch,   c_query, c_stream, c_retrieve,
                                          c_destroy, NULL,    NULL,     NULL};

/* Backend calls per operation in prefer_new, on a partition this proxy has
 * seen switched: at most 3 for a write (the original protocol made 5). */
static void test_round_trips_in_prefer_new(void **state)
{
    (void)state;
    mt_rt *rt = mt_rt_pthread();
    mt_config_service *cfg = mt_config_local_new(rt, MT_PHASE_PREFER_NEW);
    mt_table *old_m = mt_memtable_new(rt, "old"), *new_m = mt_memtable_new(rt, "new");
    counting *co = calloc(1, sizeof *co), *cn = calloc(1, sizeof *cn);
    *co = (counting){.base.ops = &counting_ops, .inner = old_m};
    *cn = (counting){.base.ops = &counting_ops, .inner = new_m};
    mt_table *mt = mt_migrating_new(rt, cfg, &co->base, &cn->base);

    char etag[MT_ETAG_MAX];
    mt_status st = write1(mt, MT_OP_INSERT, "p", "a", "red", NULL, etag); /* switches p */
    assert_true(mt_is_ok(&st));

    co->calls = cn->calls = 0;
    st = write1(mt, MT_OP_REPLACE, "p", "a", "blue", etag, etag);
    assert_true(mt_is_ok(&st));
    assert_int_equal(co->calls, 0); /* switched and present in new: old not read */
    assert_int_equal(cn->calls, 2); /* read new, conditional batch */

    co->calls = cn->calls = 0;
    st = write1(mt, MT_OP_INSERT, "p", "b", "red", NULL, NULL);
    assert_true(mt_is_ok(&st));
    assert_int_equal(co->calls, 1); /* the row may still be only in old */
    assert_int_equal(cn->calls, 2);

    co->calls = cn->calls = 0;
    mt_entity *e = get(mt, "p", "a");
    assert_string_equal(color_of(e), "blue");
    mt_entity_free(e);
    assert_int_equal(co->calls + cn->calls, 1); /* new alone answers */

    mt_table_destroy(mt);
    mt_table_destroy(&co->base);
    mt_table_destroy(&cn->base);
    mt_table_destroy(old_m);
    mt_table_destroy(new_m);
    cfg->ops->destroy(cfg);
}

static void test_stream_survives_every_phase(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_USE_OLD_HIDE_METADATA);
    const char *keys[] = {"a", "b", "c", "d", "e", "f"};
    for (int i = 0; i < 6; i++)
        write1(f->mt, MT_OP_INSERT, "p", keys[i], "red", NULL, NULL);
    mt_stream *s = NULL;
    mt_status st = f->mt->ops->query_stream(f->mt, NULL, NULL, &s);
    assert_true(mt_is_ok(&st));
    mt_entity *e = NULL;
    for (int i = 0; i < 6; i++) {
        st = s->ops->next(s, &e);
        assert_true(mt_is_ok(&st));
        assert_non_null(e);
        assert_string_equal(e->rk, keys[i]);
        for (size_t j = 0; j < e->nprops; j++)
            assert_true(strncmp(e->props[j].name, MT_RESERVED_PREFIX, 8) != 0);
        if (i == 2 || i == 3)
            assert_string_equal(color_of(e), "blue");
        mt_entity_free(e);
        if (i == 0) {
            fx_push(f, MT_PHASE_PREFER_OLD);
            write1(f->mt, MT_OP_MERGE, "p", "c", "blue", "*", NULL);
        }
        if (i == 1) {
            fx_push(f, MT_PHASE_PREFER_NEW);
            write1(f->mt, MT_OP_MERGE, "p", "d", "blue", "*", NULL);
        }
        if (i == 2) {
            /* The rest of the migration, cleanup included, mid-stream. */
            mt_migrator_stats stats = {0};
            st = mt_migrate(f->rt, f->cfg, f->old_t, f->new_t, &stats);
            assert_true(mt_is_ok(&st));
            assert_int_equal(mt_memtable_count(f->old_t), 0);
        }
    }
    st = s->ops->next(s, &e);
    assert_null(e);
    s->ops->close(s);
    fx_free(f);
}

/* A stream opened before the roles swap keeps reading the one table both
 * ways share, and one opened after it reads that table as old; the writes
 * of the reversed prefer_old go to the table given as new (it plays old). */
static void test_stream_survives_the_swap(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_USE_NEW_HIDE_METADATA);
    const char *keys[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        write1(f->mt, MT_OP_INSERT, "p", keys[i], "red", NULL, NULL);
    assert_int_equal(mt_memtable_count(f->new_t), 4);
    assert_int_equal(mt_memtable_count(f->old_t), 0);
    mt_stream *s = NULL;
    mt_status st = f->mt->ops->query_stream(f->mt, NULL, NULL, &s);
    assert_true(mt_is_ok(&st));
    mt_entity *e = NULL;
    for (int i = 0; i < 4; i++) {
        st = s->ops->next(s, &e);
        assert_true(mt_is_ok(&st));
        assert_non_null(e);
        assert_string_equal(e->rk, keys[i]);
        if (i == 3)
            assert_string_equal(color_of(e), "blue");
        mt_entity_free(e);
        if (i == 0) {
            st = mt_config_local_set_roles(f->cfg, MT_PHASE_USE_OLD_HIDE_METADATA, 1, 10, true);
            assert_true(mt_is_ok(&st));
            write1(f->mt, MT_OP_MERGE, "p", "c", "green", "*", NULL);
        }
        if (i == 1) {
            fx_push(f, MT_PHASE_PREFER_OLD);
            write1(f->mt, MT_OP_MERGE, "p", "d", "blue", "*", NULL);
        }
    }
    st = s->ops->next(s, &e);
    assert_null(e);
    s->ops->close(s);
    /* prefer_old of the swapped roles marks its partition in the table
     * given as new; the one given as old stays empty until the copy */
    assert_int_equal(partition_state(f->new_t, "p"), MT_PARTITION_POPULATED);
    assert_int_equal(mt_memtable_count(f->old_t), 0);
    e = get(f->mt, "p", "c");
    assert_string_equal(color_of(e), "green");
    mt_entity_free(e);
    fx_free(f);
}

/* What a proxy learnt about switched partitions belongs to one generation
 * of the roles: there and back again, a partition switched the first time
 * is not switched the third, even on a proxy that served nothing between. */
static void test_switched_cache_per_generation(void **state)
{
    (void)state;
    fixture *f = fx_new(MT_PHASE_PREFER_NEW);
    mt_status st = write1(f->mt, MT_OP_INSERT, "p", "a", "red", NULL, NULL);
    assert_true(mt_is_ok(&st)); /* switches p, and this proxy remembers it */
    mt_migrator_stats stats = {0};
    st = mt_migrate(f->rt, f->cfg, f->old_t, f->new_t, &stats);
    assert_true(mt_is_ok(&st));
    st = mt_config_local_set_roles(f->cfg, MT_PHASE_USE_OLD_HIDE_METADATA, 1, 20, true);
    assert_true(mt_is_ok(&st));
    st = mt_migrate(f->rt, f->cfg, f->new_t, f->old_t, &stats); /* back */
    assert_true(mt_is_ok(&st));
    st = mt_config_local_set_roles(f->cfg, MT_PHASE_USE_OLD_HIDE_METADATA, 2, 40, true);
    assert_true(mt_is_ok(&st));
    fx_push(f, MT_PHASE_PREFER_OLD);
    fx_push(f, MT_PHASE_PREFER_NEW);
    st = write1(f->mt, MT_OP_INSERT, "p", "b", "blue", NULL, NULL);
    assert_true(mt_is_ok(&st));
    assert_int_equal(partition_state(f->old_t, "p"), MT_PARTITION_SWITCHED);
    mt_entity *e = get(f->mt, "p", "b");
    assert_non_null(e);
    assert_string_equal(color_of(e), "blue");
    mt_entity_free(e);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phase0_passes_through),
        cmocka_unit_test(test_reserved_names_rejected),
        cmocka_unit_test(test_phase1_marks_populated_and_hides_it),
        cmocka_unit_test(test_phase1_full_batch_waits_until_settled),
        cmocka_unit_test(test_phase1_falls_through_when_switched),
        cmocka_unit_test(test_phase2_switches_and_copies),
        cmocka_unit_test(test_phase2_delete_leaves_tombstone),
        cmocka_unit_test(test_phase4_writes_stay_clean),
        cmocka_unit_test(test_query_shadowing_ignores_filter),
        cmocka_unit_test(test_shared_read_strips_copies),
        cmocka_unit_test(test_shared_retrieve_every_phase),
        cmocka_unit_test(test_stream_survives_every_phase),
        cmocka_unit_test(test_stream_survives_the_swap),
        cmocka_unit_test(test_switched_cache_per_generation),
        cmocka_unit_test(test_round_trips_in_prefer_new),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

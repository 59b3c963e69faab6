/*
 * test_config.c -- the in-process configuration service: subscriptions,
 * push-and-wait, callbacks, settling; and phase names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "mt.h"

static void test_phase_names(void **state)
{
    (void)state;
    for (int p = 0; p < MT_PHASE_COUNT; p++) {
        mt_phase back;
        assert_true(mt_phase_parse(mt_phase_name((mt_phase)p), &back));
        assert_int_equal(back, p);
    }
    assert_string_equal(mt_phase_name(MT_PHASE_PREFER_NEW), "prefer_new");
    mt_phase dummy;
    assert_false(mt_phase_parse("prefer_newer", &dummy));
    assert_false(mt_phase_parse("", &dummy));
}

static void test_subscribe_sees_current(void **state)
{
    (void)state;
    mt_config_service *s = mt_config_local_new(mt_rt_pthread(), MT_PHASE_PREFER_OLD);
    mt_config c;
    mt_subscription *sub = s->ops->subscribe(s, NULL, &c);
    assert_non_null(sub);
    assert_int_equal(c.phase, MT_PHASE_PREFER_OLD);
    assert_int_equal(c.version, 1);
    assert_true(c.settled);
    s->ops->unsubscribe(s, sub);

    mt_status st = s->ops->push(s, MT_PHASE_PREFER_NEW);
    assert_true(mt_is_ok(&st));
    sub = s->ops->subscribe(s, NULL, &c);
    assert_int_equal(c.phase, MT_PHASE_PREFER_NEW);
    assert_int_equal(c.version, 2);
    assert_true(c.settled);
    s->ops->unsubscribe(s, sub);
    s->ops->destroy(s);
}

typedef struct pusher {
    mt_config_service *s;
    atomic_bool done;
} pusher;

static void *push_thread(void *arg)
{
    pusher *p = arg;
    p->s->ops->push(p->s, MT_PHASE_PREFER_OLD);
    atomic_store(&p->done, true);
    return NULL;
}

static void test_push_waits_for_fixed_subscription(void **state)
{
    (void)state;
    mt_config_service *s = mt_config_local_new(mt_rt_pthread(), MT_PHASE_USE_OLD_HIDE_METADATA);
    mt_config c;
    mt_subscription *held = s->ops->subscribe(s, NULL, &c);
    pusher p = {.s = s};
    pthread_t t;
    pthread_create(&t, NULL, push_thread, &p);
    usleep(50 * 1000);
    /* The push cannot complete while an operation of the old phase runs. */
    assert_false(atomic_load(&p.done));

    /* A new operation meanwhile already sees the new phase, unsettled. */
    mt_config c2;
    mt_subscription *fresh = s->ops->subscribe(s, NULL, &c2);
    assert_int_equal(c2.phase, MT_PHASE_PREFER_OLD);
    assert_false(c2.settled);

    s->ops->unsubscribe(s, held);
    pthread_join(t, NULL);
    assert_true(atomic_load(&p.done));
    /* ...and the push did not wait for the operation that began after it. */
    s->ops->unsubscribe(s, fresh);
    s->ops->subscribe(s, NULL, &c2);
    assert_true(c2.settled);
    s->ops->destroy(s);
}

typedef struct recorder {
    mt_phase seen[8];
    int n;
} recorder;

static void record_apply(void *ctx, const mt_config *c)
{
    recorder *r = ctx;
    r->seen[r->n++] = c->phase;
}

static void test_callback_subscription_is_applied(void **state)
{
    (void)state;
    mt_config_service *s = mt_config_local_new(mt_rt_pthread(), MT_PHASE_USE_OLD_HIDE_METADATA);
    recorder r = {.n = 0};
    mt_subscriber sub = {.apply = record_apply, .ctx = &r};
    mt_config c;
    mt_subscription *h = s->ops->subscribe(s, &sub, &c);
    /* A callback subscription does not block pushes: it is applied. */
    s->ops->push(s, MT_PHASE_PREFER_OLD);
    s->ops->push(s, MT_PHASE_PREFER_NEW);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.seen[0], MT_PHASE_PREFER_OLD);
    assert_int_equal(r.seen[1], MT_PHASE_PREFER_NEW);
    s->ops->unsubscribe(s, h);
    s->ops->push(s, MT_PHASE_USE_NEW_WITH_TOMBSTONES);
    assert_int_equal(r.n, 2);
    s->ops->destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phase_names),
        cmocka_unit_test(test_subscribe_sees_current),
        cmocka_unit_test(test_push_waits_for_fixed_subscription),
        cmocka_unit_test(test_callback_subscription_is_applied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

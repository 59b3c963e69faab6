/*
 * test_px_rate.c -- the migrator's current rate and stall, on a fake clock:
 * the rate covers the last 10 s and not the whole run, falls to 0 when the
 * counter stops without any new sample, survives samples far closer and
 * far sparser than its spacing, and "stalled" comes exactly when the
 * counter has not moved for 30 s, and goes when it moves again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "px.h"

/* Notes value every step_ms from t0 to t1 (inclusive), value rising by
 * per_ms * elapsed. Returns the last value. */
static int64_t feed(px_rate *r, int64_t t0, int64_t t1, int64_t step_ms, int64_t v0, double per_ms)
{
    int64_t v = v0;
    for (int64_t t = t0; t <= t1; t += step_ms) {
        v = v0 + (int64_t)(per_ms * (double)(t - t0));
        px_rate_note(r, t, v);
    }
    return v;
}

static void test_rate_is_recent_not_lifetime(void **state)
{
    (void)state;
    px_rate r;
    px_rate_reset(&r, 1000, 0);
    assert_true(px_rate_per_second(&r, 1000) == 0); /* one sample: no rate */
    /* 60 s at 1000 rows/s, then 20 s at 100 rows/s. */
    int64_t v = feed(&r, 1100, 61000, 100, 0, 1.0);
    double fast = px_rate_per_second(&r, 61000);
    assert_true(fast > 990 && fast < 1010);
    v = feed(&r, 61100, 81000, 100, v, 0.1);
    double slow = px_rate_per_second(&r, 81000);
    /* A lifetime average would say about 770 rows/s. */
    assert_true(slow > 95 && slow < 105);
    (void)v;
}

static void test_rate_falls_when_nothing_moves(void **state)
{
    (void)state;
    px_rate r;
    px_rate_reset(&r, 0, 500);
    feed(&r, 50, 20000, 50, 500, 2.0); /* samples closer than the spacing */
    double before = px_rate_per_second(&r, 20000);
    assert_true(before > 1980 && before < 2020);
    /* No sample after 20 s: 5 s later the window holds half the rows. */
    double later = px_rate_per_second(&r, 25000);
    assert_true(later > 980 && later < 1020);
    assert_true(px_rate_per_second(&r, 30000) == 0);
    assert_true(px_rate_per_second(&r, 90000) == 0);
}

static void test_sparse_samples(void **state)
{
    (void)state;
    px_rate r;
    px_rate_reset(&r, 0, 0);
    /* One sample every 7 s at 300 rows/s: the base is the newest sample at
     * least 10 s old, so the rate is still right. */
    feed(&r, 7000, 70000, 7000, 0, 0.3);
    double rate = px_rate_per_second(&r, 70000);
    assert_true(rate > 295 && rate < 305);
}

static void test_stall(void **state)
{
    (void)state;
    px_rate r;
    px_rate_reset(&r, 0, 0);
    feed(&r, 100, 5000, 100, 0, 1.0);
    assert_false(px_rate_stalled(&r, 5000));
    /* The counter stands still, though progress keeps being noted. */
    for (int64_t t = 5100; t < 35000; t += 100)
        px_rate_note(&r, t, 4900);
    assert_int_equal(px_rate_still_ms(&r, 34999), 29999);
    assert_false(px_rate_stalled(&r, 34999));
    assert_true(px_rate_stalled(&r, 35000));
    assert_true(px_rate_per_second(&r, 35000) == 0);
    /* It moves again: no longer stalled. */
    px_rate_note(&r, 36000, 4901);
    assert_false(px_rate_stalled(&r, 36000));
    assert_int_equal(px_rate_still_ms(&r, 36500), 500);
    /* A reset (a new step) starts the clock again. */
    px_rate_reset(&r, 100000, 4901);
    assert_false(px_rate_stalled(&r, 129999));
    assert_true(px_rate_stalled(&r, 130000));
}

static void test_clock_going_back(void **state)
{
    (void)state;
    px_rate r;
    px_rate_reset(&r, 10000, 0);
    px_rate_note(&r, 9000, 10); /* never happens with a monotonic clock */
    assert_true(px_rate_per_second(&r, 8000) == 0);
    assert_int_equal(px_rate_still_ms(&r, 8000), 0);
    assert_false(px_rate_stalled(&r, 8000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_is_recent_not_lifetime),
        cmocka_unit_test(test_rate_falls_when_nothing_moves),
        cmocka_unit_test(test_sparse_samples),
        cmocka_unit_test(test_stall),
        cmocka_unit_test(test_clock_going_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

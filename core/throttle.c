/*
 * throttle.c -- the token bucket that limits the migrator's copy rate.
 *
 * Pure arithmetic on a clock value the caller passes in, so it is tested
 * without time passing; migrator_copy.c supplies rt->ops->mono_ms and does
 * the waiting. Invariants: tokens never exceed cap; a grant never happens
 * while tokens are below what was asked (or below cap, for a request larger
 * than cap), so over any interval the rows granted are at most
 * initial tokens + rate * elapsed + one request.
 */
#include "migrator_internal.h"

#include <math.h>

/* The longest wait one answer asks for; the caller asks again after it. */
#define MT_BUCKET_WAIT_MAX_MS 60000

void mt_bucket_init(mt_bucket *b, double rate, int64_t now_ms)
{
    b->rate = rate;
    b->cap = rate; /* one second's worth: bursts stay short */
    b->tokens = b->cap < MT_BATCH_MAX ? b->cap : MT_BATCH_MAX;
    b->last_ms = now_ms;
}

static void mt_bucket_refill(mt_bucket *b, int64_t now_ms)
{
    if (now_ms <= b->last_ms)
        return; /* a clock that stood still or went back adds nothing */
    b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
    if (b->tokens > b->cap)
        b->tokens = b->cap;
    b->last_ms = now_ms;
}

int64_t mt_bucket_take(mt_bucket *b, double n, int64_t now_ms)
{
    mt_bucket_refill(b, now_ms);
    /* A request larger than the cap could never be covered: grant it on a
     * full bucket and let the debt slow the next ones. */
    double need = n < b->cap ? n : b->cap;
    if (b->tokens >= need) {
        b->tokens -= n;
        return 0;
    }
    double ms = ceil((need - b->tokens) * 1000.0 / b->rate);
    if (!(ms < MT_BUCKET_WAIT_MAX_MS)) /* also NaN, for an absurd rate */
        return MT_BUCKET_WAIT_MAX_MS;
    return ms < 1 ? 1 : (int64_t)ms;
}

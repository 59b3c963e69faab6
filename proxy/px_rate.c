/*
 * px_rate.c -- how fast the migrator moves rows now, and whether it stalled.
 *
 * The status endpoint shows the rate over the last 10 s, not a lifetime
 * average (which hides a slowdown for as long as the run has lasted), and
 * "stalled" once the counter has not moved for 30 s. Both come from
 * samples (time, count) of the step's counter, noted at each progress
 * report: the rate is what the counter gained since the newest sample at
 * least a window old (or the oldest one kept), divided by the time since
 * then up to now, so a counter that stops moving sees its rate fall to 0
 * without any new sample.
 *
 * Pure arithmetic on the monotonic times the caller passes in, so it is
 * tested with a fake clock. The caller locks.
 */
#include "px.h"

void px_rate_reset(px_rate *r, int64_t now_ms, int64_t value)
{
    *r = (px_rate){.n = 1, .moved_ms = now_ms};
    r->t[0] = now_ms;
    r->v[0] = value;
}

/* The i-th newest sample (0: the newest). */
static size_t px_rate_at(const px_rate *r, size_t i)
{
    return (r->head + PX_RATE_SAMPLES - i) % PX_RATE_SAMPLES;
}

void px_rate_note(px_rate *r, int64_t now_ms, int64_t value)
{
    if (r->n == 0) {
        px_rate_reset(r, now_ms, value);
        return;
    }
    size_t newest = px_rate_at(r, 0);
    if (value != r->v[newest])
        r->moved_ms = now_ms;
    /* Samples closer than the spacing replace the newest one, so the ring
     * always spans at least PX_RATE_SAMPLES * spacing, more than a window. */
    bool close = r->n >= 2 && now_ms - r->t[px_rate_at(r, 1)] < PX_RATE_SPACING_MS;
    if (!close) {
        r->head = (r->head + 1) % PX_RATE_SAMPLES;
        if (r->n < PX_RATE_SAMPLES)
            r->n++;
        newest = r->head;
    }
    r->t[newest] = now_ms;
    r->v[newest] = value;
}

double px_rate_per_second(const px_rate *r, int64_t now_ms)
{
    if (r->n < 2)
        return 0;
    size_t newest = px_rate_at(r, 0), base = px_rate_at(r, r->n - 1);
    for (size_t i = 0; i < r->n; i++) {
        size_t k = px_rate_at(r, i);
        if (now_ms - r->t[k] >= PX_RATE_WINDOW_MS) {
            base = k;
            break;
        }
    }
    int64_t ms = now_ms - r->t[base];
    int64_t gained = r->v[newest] - r->v[base];
    if (ms <= 0 || gained <= 0)
        return 0;
    return (double)gained * 1000.0 / (double)ms;
}

int64_t px_rate_still_ms(const px_rate *r, int64_t now_ms)
{
    if (r->n == 0 || now_ms < r->moved_ms)
        return 0;
    return now_ms - r->moved_ms;
}

bool px_rate_stalled(const px_rate *r, int64_t now_ms)
{
    return r->n > 0 && px_rate_still_ms(r, now_ms) >= PX_STALL_MS;
}

/*
 * px_watch.c -- backend calls in flight, and a thread that warns about
 * those running too long.
 *
 * A backend that hangs holds its caller for the client's timeout, and the
 * call is retried, so a line logged when the call returns may come minutes
 * late. Here each thread that calls a backend owns one slot in a fixed
 * array, claimed on its first call and given back when the thread ends (a
 * pthread key's destructor); a call writes its start time and what it is
 * into the slot and clears it when it returns. One watcher thread scans
 * the slots a few times a second and logs, once per call, any that has run
 * for --log-slow-backend-ms, while it still runs.
 *
 * The hot path takes no lock: a thread-local pointer, a few stores, and a
 * release store of the start time that publishes them. The watcher reads
 * the start time, copies what the call is, and reads the start again; a
 * call that changed meanwhile is skipped until the next scan. Slots beyond
 * SLOTS threads at once go unwatched (the line at the call's end remains).
 */
#include "px.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SLOTS = 2048, SCAN_US = 250000 };

typedef struct slot {
    uint64_t start_ns; /* atomic; 0: no call in flight */
    uint64_t warned;   /* the watcher's: the start it warned about */
    const char *side, *call;
    char request_id[48];
    int in_use; /* atomic */
} slot;

struct px_watch {
    pthread_t thread;
    uint64_t slow_ns;
    int stopping; /* atomic */
};

static slot slots[SLOTS];
static pthread_key_t slot_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t claim_mu = PTHREAD_MUTEX_INITIALIZER;
static int watching; /* atomic: a watcher runs */

static void slot_release(void *p)
{
    slot *s = p;
    __atomic_store_n(&s->start_ns, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&s->in_use, 0, __ATOMIC_RELEASE);
}

static void key_create(void)
{
    pthread_key_create(&slot_key, slot_release);
}

/* This thread's slot, claimed on first use; NULL when all are taken. */
static slot *slot_mine(void)
{
    slot *s = pthread_getspecific(slot_key);
    if (s)
        return s;
    pthread_mutex_lock(&claim_mu);
    for (size_t i = 0; i < SLOTS && !s; i++)
        if (!__atomic_load_n(&slots[i].in_use, __ATOMIC_ACQUIRE)) {
            s = &slots[i];
            __atomic_store_n(&s->in_use, 1, __ATOMIC_RELEASE);
        }
    pthread_mutex_unlock(&claim_mu);
    if (s && pthread_setspecific(slot_key, s) != 0) {
        slot_release(s);
        s = NULL;
    }
    return s;
}

void px_watch_call_begin(const char *side, const char *call, uint64_t start_ns)
{
    if (!__atomic_load_n(&watching, __ATOMIC_RELAXED))
        return;
    slot *s = slot_mine();
    if (!s)
        return;
    s->side = side;
    s->call = call;
    const char *id = px_log_request_id();
    size_t n = strnlen(id, sizeof s->request_id - 1);
    memcpy(s->request_id, id, n);
    s->request_id[n] = '\0';
    __atomic_store_n(&s->start_ns, start_ns ? start_ns : 1, __ATOMIC_RELEASE);
}

void px_watch_call_end(void)
{
    if (!__atomic_load_n(&watching, __ATOMIC_RELAXED))
        return;
    slot *s = pthread_getspecific(slot_key);
    if (s)
        __atomic_store_n(&s->start_ns, 0, __ATOMIC_RELEASE);
}

/* Warns about slot s when its call has run for slow_ns and was not warned
 * about yet. */
static void scan_one(slot *s, uint64_t now, uint64_t slow_ns)
{
    uint64_t start = __atomic_load_n(&s->start_ns, __ATOMIC_ACQUIRE);
    if (!start || now < start || now - start < slow_ns || s->warned == start)
        return;
    const char *side = s->side, *call = s->call;
    char rid[sizeof s->request_id];
    memcpy(rid, s->request_id, sizeof rid);
    rid[sizeof rid - 1] = '\0';
    if (__atomic_load_n(&s->start_ns, __ATOMIC_ACQUIRE) != start)
        return; /* it ended, or another call began: next scan */
    s->warned = start;
    double ms = (double)(now - start) / 1e6;
    px_log_with(
        PX_LOG_WARN,
        &(px_log_fields){
            .backend = side, .request_id = rid[0] ? rid : NULL, .duration_ms = ms, .timed = true},
        "slow backend: a %s call to the %s backend has been running for %.1f s", call, side,
        ms / 1000);
}

static void *watch_main(void *arg)
{
    px_watch *w = arg;
    while (!__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE)) {
        usleep(SCAN_US);
        uint64_t now = px_now_ns();
        for (size_t i = 0; i < SLOTS; i++)
            if (__atomic_load_n(&slots[i].in_use, __ATOMIC_ACQUIRE))
                scan_one(&slots[i], now, w->slow_ns);
    }
    return NULL;
}

px_watch *px_watch_start(int slow_ms)
{
    if (slow_ms <= 0 || pthread_once(&key_once, key_create) != 0)
        return NULL;
    px_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->slow_ns = (uint64_t)slow_ms * 1000000u;
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        free(w);
        return NULL;
    }
    __atomic_store_n(&watching, 1, __ATOMIC_RELEASE);
    return w;
}

void px_watch_stop(px_watch *w)
{
    if (!w)
        return;
    __atomic_store_n(&watching, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&w->stopping, 1, __ATOMIC_RELEASE);
    pthread_join(w->thread, NULL);
    free(w);
}

/*
 * sched_internal.h -- what the scheduler core (sched.c) and the runtime it
 * hands out (sched_rt.c) share; nothing else includes it.
 */
#ifndef SCT_SCHED_INTERNAL_H
#define SCT_SCHED_INTERNAL_H

#include <ucontext.h>

#include "sched.h"

#define SCT_PCT_MAX_DEPTH 64
#define SCT_NAME_MAX 32
#define SCT_LABEL_MAX 160
#define SCT_REPORT_MAX 2048

/* An actor that waits without a deadline. */
#define SCT_NO_DEADLINE INT64_MAX

/* Mutex owners that are not actors. */
#define SCT_NOBODY (-1)
#define SCT_HOST (-2)

typedef struct sct_stack {
    struct sct_stack *next; /* in the pool */
    char *map;              /* the mapping, guard page included */
    size_t map_len;
    char *base; /* lowest usable byte */
    size_t size;
} sct_stack;

typedef enum sct_astate {
    SCT_A_RUNNABLE,
    SCT_A_BLOCKED,
    SCT_A_DONE,
} sct_astate;

typedef enum sct_wait {
    SCT_W_NONE,
    SCT_W_MUTEX,
    SCT_W_COND,
    SCT_W_JOIN,
} sct_wait;

/* Mutexes and conditions hang on the scheduler's list, so that those an
 * abandoned execution never freed are still freed with the scheduler (and
 * LeakSanitizer sees them reachable meanwhile). The tag names them in the
 * trace: "m3" is the third created in this execution, "gm3" outside one. */
typedef struct sct_obj {
    struct sct_obj *prev, *next;
    char tag[16];
} sct_obj;

typedef struct sct_mutex {
    sct_obj hdr;
    int owner;          /* actor id, SCT_NOBODY or SCT_HOST */
    uint64_t owner_gen; /* the execution the owner belongs to */
} sct_mutex;

typedef struct sct_cond {
    sct_obj hdr;
} sct_cond;

typedef struct sct_actor {
    int id;
    sct_astate state;
    sct_wait wait;
    const void *wait_on;
    int64_t deadline; /* SCT_W_COND from cond_timedwait: virtual ms */
    bool joined;
    uint64_t prio; /* PCT only */
    void *(*fn)(void *);
    void *arg;
    void *result;
    sct_stack *stack;
    ucontext_t ctx;
    char name[SCT_NAME_MAX];
} sct_actor;

struct sct_sched {
    mt_rt rt;

    /* The execution. */
    bool running;
    uint64_t gen; /* counts executions */
    sct_run_result result;
    sct_actor *cur;
    sct_actor **actors; /* slots reused across executions */
    int nactors;
    int cap_actors;
    uint64_t steps;
    uint64_t max_steps;
    uint64_t clock;
    int64_t now_ms; /* virtual monotonic time */
    uint64_t rng[4];
    unsigned seq[2];  /* object tags inside executions: mutexes, conds */
    unsigned gseq[2]; /* the same outside executions */

    /* Strategy. */
    sct_strategy strategy;
    int depth;
    uint64_t change[SCT_PCT_MAX_DEPTH]; /* sorted step numbers */
    int nchange;
    int next_change;
    uint64_t horizon_fixed;
    uint64_t horizon_used;
    uint64_t longest;     /* most steps of an execution within its bound */
    uint64_t jump_one_in; /* time jumps: 0 = none */
    int64_t jump_max_ms;

    /* The host: the caller of sct_sched_run. */
    ucontext_t host;
    const void *host_bottom; /* its stack, for ASan */
    size_t host_size;

    sct_stack *pool;
    size_t nstacks;
    sct_obj objs; /* list head */

    bool trace_on;
    char *trace;
    size_t trace_len;
    size_t trace_cap;
    char report[SCT_REPORT_MAX];
};

/* The core (sched.c), for the runtime. */

/* Harness misuse outside an execution: there is no run to fail, and
 * carrying on would only corrupt the next one. */
void sct_fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void *sct_xcalloc(size_t n, size_t size); /* never NULL */
sct_sched *sct_of(mt_rt *rt);
/* Who holds m, for messages. */
const char *sct_owner_name(const sct_sched *s, const sct_mutex *m);
/* A scheduling point whose label is formatted only when someone will read
 * it. Returns when the strategy picks the running actor again. */
void sct_stepf(sct_sched *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Misuse by the running actor fails the execution; by the host, the
 * process. */
void sct_misuse(sct_sched *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The running actor waits for w on on; it runs again once woken. */
void sct_block(sct_sched *s, sct_wait w, const void *on);
/* The same for a condition, and also until virtual time reaches deadline. */
void sct_block_until(sct_sched *s, const void *cond, int64_t deadline);
/* Makes every actor waiting on obj runnable; their names go into names
 * (", wakes a b") when tracing. Returns how many woke. */
int sct_wake(sct_sched *s, sct_wait w, const void *obj, char *names, size_t cap);
/* A new runnable actor running fn(arg). */
sct_actor *sct_spawn(sct_sched *s, void *(*fn)(void *), void *arg, const char *name);

/* The runtime (sched_rt.c), for the core. */

extern const mt_rt_ops sct_rt_ops;
/* Takes a mutex or condition off the scheduler's list. */
void sct_obj_unlink(sct_obj *o);

#endif

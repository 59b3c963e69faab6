/*
 * test_cfg_store.c -- the state stores of the control plane (config/cfg.h):
 * memory, file and Azure table, each held to the same compare-and-swap
 * contract, plus what only one of them can get wrong.
 *
 *   - memory: the contract, and threads racing on increments;
 *   - file: the contract, a reload by a new store object, damaged files
 *     (load and cas answer 500 naming the file, never crash, never
 *     overwrite), directories that cannot be used (refused at creation),
 *     processes and threads racing on increments (the flock), and a writer
 *     killed with SIGKILL at random moments while it replaces documents of
 *     1 B to 200 KiB: the file must always hold a whole document that
 *     matches its ETag, and stay writable;
 *   - table: the contract against a real Azurite, started by this program on
 *     a free loopback port (in memory, no telemetry) and stopped by PID.
 *     Without MTABLE_AZURITE_MAIN (or node) those cases are skipped with the
 *     reason, and the program fails (meson installs Azurite before it runs
 *     this test).
 *
 * The file cases run in a scratch directory under /tmp, removed at the end.
 */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "az_client.h"
#include "cfg.h"
#include "ut_azurite.h"

/* ------------------------------------------------------------------------ */
/* Helpers.                                                                  */

#define assert_ok(st)                                                                              \
    do {                                                                                           \
        mt_status st_ = (st);                                                                      \
        if (!mt_is_ok(&st_))                                                                       \
            fail_msg("%d %s %s", st_.http, st_.code, st_.message);                                 \
    } while (0)

#define assert_status(st, want_http, want_code)                                                    \
    do {                                                                                           \
        mt_status st_ = (st);                                                                      \
        if (st_.http != (want_http) || strcmp(st_.code, (want_code)) != 0)                         \
            fail_msg("got %d %s (%s), want %d %s", st_.http, st_.code, st_.message, (want_http),   \
                     (want_code));                                                                 \
    } while (0)

static char scratch[64]; /* the file cases' directory */

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A fresh path in the scratch directory, for one case. */
static void state_path(char out[PATH_MAX], const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", scratch, name);
}

static void load_expect(cfg_store *s, const char *want_doc, const char *want_etag)
{
    char *doc = NULL, etag[CFG_ETAG_MAX];
    assert_ok(s->ops->load(s, &doc, etag));
    if (!want_doc)
        assert_null(doc);
    else
        assert_string_equal(doc, want_doc);
    assert_string_equal(etag, want_etag);
    free(doc);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* The whole file, NUL-terminated; *len its size. The caller frees it. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(512 << 10);
    assert_non_null(buf);
    *len = fread(buf, 1, (512 << 10) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static int count_prefixed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------------ */
/* The contract every store keeps: a and b are two store objects on the    */
/* same storage (the same object for memory), which holds nothing yet.      */

static void check_contract(cfg_store *a, cfg_store *b)
{
    char e1[CFG_ETAG_MAX], e2[CFG_ETAG_MAX], e3[CFG_ETAG_MAX], junk[CFG_ETAG_MAX];
    load_expect(a, NULL, "");
    assert_ok(a->ops->cas(a, "{\"v\":1}", "", e1));
    assert_true(e1[0] != '\0');
    load_expect(b, "{\"v\":1}", e1);

    /* A second first write, and a made-up ETag, change nothing. */
    assert_status(b->ops->cas(b, "{\"v\":99}", "", junk), 412, "ConditionNotMet");
    assert_status(b->ops->cas(b, "{\"v\":99}", "W/\"no-such-etag\"", junk), 412, "ConditionNotMet");
    load_expect(a, "{\"v\":1}", e1);

    assert_ok(a->ops->cas(a, "{\"v\":2}", e1, e2));
    assert_string_not_equal(e1, e2);
    /* b read e1; its write must lose, and leave a's document. */
    assert_status(b->ops->cas(b, "{\"v\":3}", e1, junk), 412, "ConditionNotMet");
    load_expect(b, "{\"v\":2}", e2);

    /* Text round-trips byte for byte, and an equal document is a new ETag. */
    const char *utf8 = "{\"s\":\"caf\xc3\xa9 \xf0\x9f\x90\xa2 <&> '\\\"' \\n\"}";
    assert_ok(b->ops->cas(b, utf8, e2, e3));
    assert_string_not_equal(e3, e1);
    assert_string_not_equal(e3, e2);
    load_expect(a, utf8, e3);
    assert_ok(a->ops->cas(a, utf8, e3, e1));
    assert_string_not_equal(e1, e3);
    load_expect(b, utf8, e1);
}

/* ------------------------------------------------------------------------ */
/* Increments racing on one store: a lost update shows as a short count.    */

typedef struct incr_job {
    cfg_store *s;
    int times;
    int conflicts; /* 412s seen and retried */
} incr_job;

/* Reads n, writes n + 1 if nobody wrote meanwhile; false on any error. */
static bool incr_once(cfg_store *s, int *conflicts)
{
    for (;;) {
        char *doc = NULL, etag[CFG_ETAG_MAX], out[CFG_ETAG_MAX], next[32];
        mt_status st = s->ops->load(s, &doc, etag);
        if (!mt_is_ok(&st))
            return false;
        snprintf(next, sizeof next, "%ld", doc ? atol(doc) + 1 : 1L);
        free(doc);
        st = s->ops->cas(s, next, etag, out);
        if (mt_is_ok(&st))
            return true;
        if (st.http != 412)
            return false;
        (*conflicts)++;
    }
}

static void *incr_main(void *arg)
{
    incr_job *j = arg;
    for (int i = 0; i < j->times; i++)
        if (!incr_once(j->s, &j->conflicts))
            return (void *)1;
    return NULL;
}

/* Runs nthreads increment loops on s; the sum of their conflicts. */
static int incr_threads(cfg_store *s, int nthreads, int times)
{
    pthread_t th[8];
    incr_job jobs[8];
    int conflicts = 0;
    for (int i = 0; i < nthreads; i++) {
        jobs[i] = (incr_job){.s = s, .times = times};
        assert_int_equal(pthread_create(&th[i], NULL, incr_main, &jobs[i]), 0);
    }
    for (int i = 0; i < nthreads; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        assert_null(rc);
        conflicts += jobs[i].conflicts;
    }
    return conflicts;
}

static long load_long(cfg_store *s)
{
    char *doc = NULL, etag[CFG_ETAG_MAX];
    assert_ok(s->ops->load(s, &doc, etag));
    assert_non_null(doc);
    long v = atol(doc);
    free(doc);
    return v;
}

/* ------------------------------------------------------------------------ */
/* Memory.                                                                   */

static void test_memory_contract(void **state)
{
    (void)state;
    cfg_store *s = cfg_store_memory_new();
    assert_non_null(s);
    assert_string_equal(s->ops->describe(s), "memory");
    check_contract(s, s);
    s->ops->destroy(s);
}

static void test_memory_threads(void **state)
{
    (void)state;
    cfg_store *s = cfg_store_memory_new();
    int conflicts = incr_threads(s, 4, 2000);
    assert_int_equal(load_long(s), 8000);
    print_message("memory: 4 threads x 2000 increments, %d conflicts retried\n", conflicts);
    s->ops->destroy(s);
}

/* ------------------------------------------------------------------------ */
/* File: the contract, and a reload.                                         */

static void test_file_contract(void **state)
{
    (void)state;
    char path[PATH_MAX], want[PATH_MAX + 8];
    state_path(path, "contract");
    mt_status st;
    cfg_store *a = cfg_store_file_new(path, &st);
    assert_ok(st);
    cfg_store *b = cfg_store_file_new(path, &st);
    assert_ok(st);
    snprintf(want, sizeof want, "file:%s", path);
    assert_string_equal(a->ops->describe(a), want);
    check_contract(a, b);
    /* Nothing left behind but the state and its lock. */
    assert_int_equal(count_prefixed(scratch, "contract.tmp."), 0);
    assert_int_equal(access(path, F_OK), 0);
    a->ops->destroy(a);
    b->ops->destroy(b);
}

static void test_file_reload(void **state)
{
    (void)state;
    char path[PATH_MAX], etag[CFG_ETAG_MAX], prev[CFG_ETAG_MAX] = "";
    state_path(path, "reload");
    mt_status st;
    cfg_store *s = cfg_store_file_new(path, &st);
    assert_ok(st);
    for (int i = 0; i < 5; i++) {
        char doc[32];
        snprintf(doc, sizeof doc, "doc %d", i);
        assert_ok(s->ops->cas(s, doc, prev, etag));
        assert_string_not_equal(etag, prev);
        snprintf(prev, sizeof prev, "%s", etag);
    }
    s->ops->destroy(s);

    /* A new object (as after a restart) sees the last document and ETag... */
    s = cfg_store_file_new(path, &st);
    assert_ok(st);
    load_expect(s, "doc 4", prev);
    /* ...and the counter goes on, so an ETag from before never comes back. */
    assert_ok(s->ops->cas(s, "doc 5", prev, etag));
    assert_string_equal(etag, "6");
    /* Through cfg_store_open too. */
    char spec[PATH_MAX + 8];
    snprintf(spec, sizeof spec, "file:%s", path);
    cfg_store *o = cfg_store_open(spec, &st);
    assert_ok(st);
    load_expect(o, "doc 5", "6");
    o->ops->destroy(o);
    s->ops->destroy(s);
}

/* ------------------------------------------------------------------------ */
/* File: damaged files.                                                      */

/* What load and cas must say about the file as it is: 500 naming it, and
 * the file left exactly as it was. */
static void check_refused(cfg_store *s, const char *path, const char *why)
{
    size_t before_len, after_len;
    char *before = read_file(path, &before_len);
    char *doc = (char *)"sentinel", etag[CFG_ETAG_MAX] = "x", out[CFG_ETAG_MAX];
    mt_status st = s->ops->load(s, &doc, etag);
    if (st.http != 500 || strcmp(st.code, "InternalError") != 0)
        fail_msg("%s: load gave %d %s (%s)", why, st.http, st.code, st.message);
    assert_null(doc);
    assert_string_equal(etag, "");
    assert_non_null(strstr(st.message, path));
    print_message("%-22s -> %s\n", why, st.message);
    assert_status(s->ops->cas(s, "new", "", out), 500, "InternalError");
    assert_status(s->ops->cas(s, "new", "1", out), 500, "InternalError");
    char *after = read_file(path, &after_len);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    free(before);
    free(after);
}

static void test_file_damaged(void **state)
{
    (void)state;
    char path[PATH_MAX];
    state_path(path, "damaged");
    mt_status st;
    cfg_store *s = cfg_store_file_new(path, &st);
    assert_ok(st);
    char etag[CFG_ETAG_MAX];
    assert_ok(s->ops->cas(s, "{\"phase\":\"prefer_old\"}", "", etag));
    size_t good_len;
    char *good = read_file(path, &good_len);

    write_file(path, "", 0);
    check_refused(s, path, "empty");
    write_file(path, "hello world\n", 12);
    check_refused(s, path, "garbage");
    write_file(path, good, good_len - 3);
    check_refused(s, path, "truncated");
    write_file(path, good, 10);
    check_refused(s, path, "truncated header");
    char *longer = malloc(good_len + 2);
    memcpy(longer, good, good_len);
    memcpy(longer + good_len, "}}", 2);
    write_file(path, longer, good_len + 2);
    check_refused(s, path, "trailing bytes");
    memcpy(longer, good, good_len);
    longer[good_len - 4] ^= 0x20; /* one bit of the document */
    write_file(path, longer, good_len);
    check_refused(s, path, "flipped bit");
    memcpy(longer, good, good_len);
    longer[good_len - 4] = '\0';
    write_file(path, longer, good_len);
    check_refused(s, path, "NUL in document");
    const char *bad_headers[] = {
        "mtable-state 1 0 2 0000000000000000\n{}",     "mtable-state 1 +1 2 0000000000000000\n{}",
        "mtable-state 2 1 2 0000000000000000\n{}",     "mtable-state 1 1 2\n{}",
        "mtable-state 1 99999999999999999999 2 0\n{}", "mtable-state 1 1 -2 0000000000000000\n{}",
    };
    for (size_t i = 0; i < sizeof bad_headers / sizeof *bad_headers; i++) {
        write_file(path, bad_headers[i], strlen(bad_headers[i]));
        check_refused(s, path, "bad header");
    }
    free(longer);

    /* The good bytes put back: everything works again. */
    write_file(path, good, good_len);
    load_expect(s, "{\"phase\":\"prefer_old\"}", etag);
    assert_ok(s->ops->cas(s, "{}", etag, etag));
    free(good);
    s->ops->destroy(s);
}

/* ------------------------------------------------------------------------ */
/* File: directories and paths that cannot be used.                          */

static void check_unusable(const char *path, int want_http, const char *want_text)
{
    mt_status st;
    cfg_store *s = cfg_store_file_new(path, &st);
    if (s)
        fail_msg("%s: accepted", path);
    if (st.http != want_http || !strstr(st.message, want_text))
        fail_msg("%s: got %d %s (%s), want %d with '%s'", path, st.http, st.code, st.message,
                 want_http, want_text);
    print_message("%s -> %s\n", path, st.message);
}

/* Whether this process is refused a store at path, as unwritable. */
static bool refused_unwritable(const char *path)
{
    mt_status st;
    cfg_store *s = cfg_store_file_new(path, &st);
    printf("(uid %d) %s -> %s\n", (int)geteuid(), path, s ? "accepted" : st.message);
    fflush(stdout);
    if (s)
        s->ops->destroy(s);
    return !s && st.http == 500 && strstr(st.message, "not writable");
}

/* A directory the process may not write to, by its mode. Root writes
 * anywhere, so as root the check runs in a child that became nobody. */
static void check_unusable_mode(void)
{
    char dir[64] = "/tmp/mtable-cfgro-XXXXXX", path[PATH_MAX];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/state", dir);
    if (geteuid() != 0) {
        assert_int_equal(chmod(dir, 0500), 0);
        bool refused = refused_unwritable(path);
        rmdir(dir);
        assert_true(refused);
        return;
    }
    assert_int_equal(chmod(dir, 0755), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        _exit(refused_unwritable(path) ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    rmdir(dir);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
        print_message("cannot become nobody: the mode case is left to /sys\n");
    else
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_file_unusable(void **state)
{
    (void)state;
    char path[PATH_MAX];
    state_path(path, "no-such-dir/state");
    check_unusable(path, 500, "does not exist");
    state_path(path, "plainfile");
    write_file(path, "x", 1);
    state_path(path, "plainfile/state");
    check_unusable(path, 500, "is not a directory");
    state_path(path, "");
    check_unusable(path, 400, "not a file name");
    check_unusable("", 400, "not a file name");
    state_path(path, "adir");
    assert_int_equal(mkdir(path, 0700), 0);
    check_unusable(path, 500, "not a regular file");
    /* sysfs refuses new files even to root. */
    check_unusable("/sys/mtable-state", 500, "not writable");
    check_unusable_mode();
    mt_status st;
    assert_null(cfg_store_open("file:", &st));
    assert_int_equal(st.http, 400);
}

/* ------------------------------------------------------------------------ */
/* File: processes and threads racing.                                       */

static void test_file_processes(void **state)
{
    (void)state;
    enum { PROCS = 3, THREADS = 2, TIMES = 40 };
    char path[PATH_MAX];
    state_path(path, "race");
    pid_t pids[PROCS];
    double t0 = now_s();
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            /* One store per process, shared by its threads: the flock
             * orders the processes, the mutex the threads. */
            mt_status st;
            cfg_store *s = cfg_store_file_new(path, &st);
            if (!s)
                _exit(2);
            pthread_t th[THREADS];
            incr_job jobs[THREADS];
            bool ok = true;
            for (int i = 0; i < THREADS; i++) {
                jobs[i] = (incr_job){.s = s, .times = TIMES};
                pthread_create(&th[i], NULL, incr_main, &jobs[i]);
            }
            for (int i = 0; i < THREADS; i++) {
                void *rc;
                pthread_join(th[i], &rc);
                ok = ok && rc == NULL;
            }
            _exit(ok ? 0 : 1);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    mt_status st;
    cfg_store *s = cfg_store_file_new(path, &st);
    assert_ok(st);
    assert_int_equal(load_long(s), PROCS * THREADS * TIMES);
    char want[32];
    snprintf(want, sizeof want, "%d", PROCS * THREADS * TIMES);
    load_expect(s, want, want); /* one ETag step per write, none lost */
    print_message("file: %d processes x %d threads x %d increments in %.2f s\n", PROCS, THREADS,
                  TIMES, now_s() - t0);
    s->ops->destroy(s);
}

/* ------------------------------------------------------------------------ */
/* File: kill -9 in the middle of writes.                                    */

#define KILL_DOC_MAX (200 << 10)

/* Document number n (the file store's ETag after its n-th write): its
 * length and bytes follow from n alone, so a reader can tell whether the
 * document it got is the one its ETag names. */
static size_t kill_doc_len(uint64_t n)
{
    uint64_t h = (n + 1) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
    return n % 3 == 0 ? 1 + (size_t)(h % 64) : 1 + (size_t)(h % KILL_DOC_MAX);
}

static char *kill_doc(uint64_t n)
{
    size_t len = kill_doc_len(n);
    char *d = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        d[i] = (char)('a' + (n * 7 + i * 11) % 26);
    d[len] = '\0';
    return d;
}

/* The child: write document e + 1 over document e, forever. */
static void kill_writer(const char *path)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    mt_status st;
    cfg_store *s = cfg_store_file_new(path, &st);
    if (!s)
        _exit(2);
    for (;;) {
        char *doc = NULL, etag[CFG_ETAG_MAX], out[CFG_ETAG_MAX];
        st = s->ops->load(s, &doc, etag);
        if (!mt_is_ok(&st))
            _exit(3);
        free(doc);
        uint64_t n = strtoull(etag, NULL, 10) + 1;
        char *next = kill_doc(n);
        st = s->ops->cas(s, next, etag, out);
        free(next);
        if (!mt_is_ok(&st) || strtoull(out, NULL, 10) != n)
            _exit(4);
    }
}

/* After a kill: the file holds a whole document that is its ETag's; returns
 * that ETag's number (0 when nothing was written yet). */
static uint64_t kill_check(cfg_store *s)
{
    char *doc = NULL, etag[CFG_ETAG_MAX];
    assert_ok(s->ops->load(s, &doc, etag));
    if (!etag[0]) {
        assert_null(doc);
        return 0;
    }
    uint64_t n = strtoull(etag, NULL, 10);
    assert_true(n > 0);
    char *want = kill_doc(n);
    assert_non_null(doc);
    assert_int_equal(strlen(doc), strlen(want));
    assert_memory_equal(doc, want, strlen(want));
    free(want);
    free(doc);
    return n;
}

static void test_file_kill9(void **state)
{
    (void)state;
    enum { ROUNDS = 40 };
    char path[PATH_MAX];
    state_path(path, "killed");
    unsigned seed = 20240607;
    uint64_t last = 0, child_writes = 0;
    int torn_tmp = 0;
    for (int r = 0; r < ROUNDS; r++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            kill_writer(path);
        sleep_ms(3 + rand_r(&seed) % 48);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status))
            fail_msg("round %d: the writer exited with %d before the kill", r, WEXITSTATUS(status));
        /* A temporary left behind means the kill landed inside a write. */
        torn_tmp += count_prefixed(scratch, "killed.tmp.") > 0;

        mt_status st;
        cfg_store *s = cfg_store_file_new(path, &st);
        assert_ok(st);
        assert_int_equal(count_prefixed(scratch, "killed.tmp."), 0); /* swept */
        uint64_t n = kill_check(s);
        assert_true(n >= last);
        child_writes += n - last;
        /* The parent can still write after whatever the kill interrupted. */
        char etag[CFG_ETAG_MAX], out[CFG_ETAG_MAX];
        if (n)
            snprintf(etag, sizeof etag, "%llu", (unsigned long long)n);
        else
            etag[0] = '\0';
        char *next = kill_doc(n + 1);
        assert_ok(s->ops->cas(s, next, etag, out));
        free(next);
        last = kill_check(s);
        assert_int_equal(last, n + 1);
        s->ops->destroy(s);
    }
    print_message("kill -9: %d rounds, %llu writes by the killed writers, %d kills inside a "
                  "write (temporary left behind), never torn\n",
                  ROUNDS, (unsigned long long)child_writes, torn_tmp);
    assert_true(child_writes > 0);
}

/* ------------------------------------------------------------------------ */
/* Azurite.                                                                  */

static struct {
    ut_azurite a; /* a.skip: why the table cases are skipped; "" when running */
    char connstr[512];
} az;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void connstr_for(int port, char *out, size_t cap)
{
    snprintf(out, cap,
             "DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
             "TableEndpoint=http://127.0.0.1:%d/%s",
             AZ_DEV_ACCOUNT, AZ_DEV_KEY, port, AZ_DEV_ACCOUNT);
}

static int azurite_setup(void **state)
{
    (void)state;
    if (!ut_azurite_start(&az.a)) {
        if (!az.a.skip[0])
            return -1;
        print_message("SKIP: the Azurite cases are skipped: %s\n", az.a.skip);
        return 0;
    }
    connstr_for(az.a.port, az.connstr, sizeof az.connstr);
    return 0;
}

static int azurite_teardown(void **state)
{
    (void)state;
    ut_azurite_stop(&az.a);
    return 0;
}

#define NEED_AZURITE()                                                                             \
    do {                                                                                           \
        if (az.a.skip[0]) {                                                                          \
            print_message("SKIP: %s\n", az.a.skip);                                                  \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* Removes the state entity, so that a case starts from nothing. */
static void table_reset(void)
{
    az_connstr cs;
    assert_ok(az_connstr_parse(az.connstr, &cs));
    mt_status st;
    mt_table *t = az_table_open(&cs, "mtablestate", NULL, &st);
    assert_ok(st);
    mt_entity *e = mt_entity_new("mtable", "state");
    mt_op op = {.kind = MT_OP_DELETE_IF_EXISTS, .entity = e};
    mt_op_result res;
    assert_ok(mt_table_batch(t, &op, 1, &res));
    mt_entity_free(e);
    mt_table_destroy(t);
    az_connstr_clear(&cs);
}

/* First: the table does not exist yet, opening creates it. */
static void test_table_contract(void **state)
{
    (void)state;
    NEED_AZURITE();
    mt_status st;
    cfg_store *a = cfg_store_open(az.connstr, &st);
    assert_ok(st);
    cfg_store *b = cfg_store_open(az.connstr, &st);
    assert_ok(st);
    char want[128];
    snprintf(want, sizeof want, "table mtablestate at http://127.0.0.1:%d/%s", az.a.port,
             AZ_DEV_ACCOUNT);
    assert_memory_equal(a->ops->describe(a), want, strlen(want));
    assert_null(strstr(a->ops->describe(a), AZ_DEV_KEY));
    print_message("describe: %s\n", a->ops->describe(a));
    check_contract(a, b);
    a->ops->destroy(a);
    b->ops->destroy(b);
}

static void test_table_limits(void **state)
{
    (void)state;
    NEED_AZURITE();
    table_reset();
    mt_status st;
    cfg_store *s = cfg_store_open(az.connstr, &st);
    assert_ok(st);
    char etag[CFG_ETAG_MAX], out[CFG_ETAG_MAX];
    /* 32 KiB of text, the largest allowed, round-trips; one byte more is
     * refused before it is sent, and nothing changes. */
    char *big = malloc((32 << 10) + 2);
    memset(big, 'x', (32 << 10) + 1);
    big[32 << 10] = '\0';
    assert_ok(s->ops->cas(s, big, "", etag));
    load_expect(s, big, etag);
    big[32 << 10] = 'y';
    big[(32 << 10) + 1] = '\0';
    mt_status too = s->ops->cas(s, big, etag, out);
    assert_int_equal(too.http, 413);
    print_message("too large -> %d %s: %s\n", too.http, too.code, too.message);
    big[32 << 10] = '\0';
    load_expect(s, big, etag);
    free(big);
    /* The entity deleted behind the store: an ETag no longer matches. */
    table_reset();
    assert_status(s->ops->cas(s, "{}", etag, out), 412, "ConditionNotMet");
    load_expect(s, NULL, "");
    s->ops->destroy(s);
}

static void test_open_specs(void **state)
{
    (void)state;
    mt_status st;
    cfg_store *s = cfg_store_open("memory", &st);
    assert_ok(st);
    assert_string_equal(s->ops->describe(s), "memory");
    s->ops->destroy(s);
    assert_null(cfg_store_open("", &st));
    assert_int_equal(st.http, 400);
    assert_null(cfg_store_open("nonsense", &st));
    assert_int_equal(st.http, 400);
    print_message("bad spec -> %s\n", st.message);
    /* A key must never reach a message. */
    assert_null(cfg_store_open("AccountName=x;AccountKey=c2VjcmV0;Bogus=1", &st));
    assert_int_equal(st.http, 400);
    assert_null(strstr(st.message, "c2VjcmV0"));
    /* Nothing listening: refused at opening, not at the first write. */
    char cs[512];
    connstr_for(ut_free_port(), cs, sizeof cs);
    double t0 = now_s();
    assert_null(cfg_store_open(cs, &st));
    assert_false(mt_is_ok(&st));
    assert_null(strstr(st.message, AZ_DEV_KEY));
    print_message("unreachable (%.1f s) -> %d %s: %s\n", now_s() - t0, st.http, st.code,
                  st.message);
}

/* ------------------------------------------------------------------------ */

static int scratch_setup(void **state)
{
    (void)state;
    snprintf(scratch, sizeof scratch, "/tmp/mtable-cfgstore-XXXXXX");
    return mkdtemp(scratch) ? 0 : -1;
}

static int scratch_teardown(void **state)
{
    (void)state;
    nftw(scratch, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

int main(void)
{
    const struct CMUnitTest local_tests[] = {
        cmocka_unit_test(test_memory_contract), cmocka_unit_test(test_memory_threads),
        cmocka_unit_test(test_file_contract),   cmocka_unit_test(test_file_reload),
        cmocka_unit_test(test_file_damaged),    cmocka_unit_test(test_file_unusable),
        cmocka_unit_test(test_file_processes),  cmocka_unit_test(test_file_kill9),
    };
    const struct CMUnitTest azurite_tests[] = {
        cmocka_unit_test(test_table_contract),
        cmocka_unit_test(test_table_limits),
        cmocka_unit_test(test_open_specs),
    };
    int failed =
        cmocka_run_group_tests_name("local stores", local_tests, scratch_setup, scratch_teardown);
    failed +=
        cmocka_run_group_tests_name("table store", azurite_tests, azurite_setup, azurite_teardown);
    if (failed)
        return failed;
    if (az.a.skip[0]) {
        /* Not a skip: the build provides Azurite (test/e2e's packages). */
        fprintf(stderr, "FAIL: the Azurite cases did not run: %s\n", az.a.skip);
        return 1;
    }
    return 0;
}

/*
 * cfg_store.c -- the state stores that need no network: one in memory (a
 * single process, and the tests) and one in a local file.
 *
 * The file store keeps the document and its ETag together in one file,
 *
 *     mtable-state 1 <counter> <length> <fnv-1a 64, 16 hex digits>\n
 *     <length bytes of document>
 *
 * so the two can only change together. A write goes to PATH.tmp.<pid>, is
 * fsync'd, renamed over PATH, and then the directory is fsync'd: rename is
 * atomic, so a crash or a kill -9 at any point leaves either the old file or
 * the new one, and the directory fsync is what makes the rename itself
 * survive a power cut. The header's length and checksum are for what an
 * atomic rename cannot prevent (a file edited or truncated by hand, a disk
 * that lies): load refuses such a file with a 500 that names it rather than
 * serve half a state. We chose a checksum over nothing at all because the
 * cost is one pass over a small document.
 *
 * Compare-and-swap: load, compare, write, all under an exclusive flock() on
 * PATH.lock, so two authority processes on one file cannot both win. The
 * lock file is opened for each write, never kept: an flock belongs to the
 * open file, and a descriptor kept in the store would be shared by its
 * threads and across a fork(), which would then all "hold" the lock at once.
 * A mutex lines the threads of one process up before they reach the flock.
 * Readers take no lock: opening PATH yields the old inode or the new one,
 * both whole.
 *
 * The ETag is the counter, which only grows while the file exists (deleting
 * the file by hand restarts it at 1: that is the operator's doing).
 *
 * What it must never do: leave PATH holding anything but a whole document
 * with its own ETag, report a write done before it is durable, or crash or
 * abort on a damaged file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"

#define CFG_ERR_CONDITION "ConditionNotMet"
#define CFG_FILE_MAGIC "mtable-state 1 "
#define CFG_FILE_MAX ((size_t)64 << 20) /* far above any state; bounds a bad file */
#define CFG_HEADER_MAX 96

/* ------------------------------------------------------------------------ */
/* What both stores share.                                                   */

static mt_status cfg_oom(void)
{
    return mt_error(500, MT_ERR_INTERNAL, "out of memory");
}

static void cfg_etag_format(uint64_t counter, char etag[CFG_ETAG_MAX])
{
    if (counter == 0)
        etag[0] = '\0';
    else
        snprintf(etag, CFG_ETAG_MAX, "%" PRIu64, counter);
}

/* Whether the stored state, at counter, is still what the caller read. */
static bool cfg_etag_matches(uint64_t counter, const char *expected)
{
    char cur[CFG_ETAG_MAX];
    cfg_etag_format(counter, cur);
    return strcmp(cur, expected ? expected : "") == 0;
}

static mt_status cfg_condition_failed(const char *where, uint64_t counter, const char *expected)
{
    char cur[CFG_ETAG_MAX];
    cfg_etag_format(counter, cur);
    return mt_error(412, CFG_ERR_CONDITION, "%s: the state changed (ETag '%s', expected '%s')",
                    where, cur, expected ? expected : "");
}

/* ------------------------------------------------------------------------ */
/* The memory store.                                                         */

typedef struct cfg_mem_store {
    cfg_store base;
    pthread_mutex_t mu;
    char *doc;
    uint64_t counter;
} cfg_mem_store;

static mt_status cfg_mem_load(cfg_store *s, char **doc, char etag[CFG_ETAG_MAX])
{
    cfg_mem_store *m = (cfg_mem_store *)s;
    mt_status st = mt_ok();
    pthread_mutex_lock(&m->mu);
    *doc = m->doc ? strdup(m->doc) : NULL;
    if (m->doc && !*doc)
        st = cfg_oom();
    cfg_etag_format(mt_is_ok(&st) ? m->counter : 0, etag);
    pthread_mutex_unlock(&m->mu);
    return st;
}

static mt_status cfg_mem_cas(cfg_store *s, const char *doc, const char *expected,
                             char etag_out[CFG_ETAG_MAX])
{
    cfg_mem_store *m = (cfg_mem_store *)s;
    if (!doc)
        return mt_error(400, MT_ERR_INVALID_INPUT, "state document is missing");
    char *copy = strdup(doc); /* before the lock: nothing can fail under it */
    if (!copy)
        return cfg_oom();
    pthread_mutex_lock(&m->mu);
    mt_status st = mt_ok();
    if (!cfg_etag_matches(m->counter, expected)) {
        st = cfg_condition_failed("memory", m->counter, expected);
        free(copy);
    } else {
        free(m->doc);
        m->doc = copy;
        cfg_etag_format(++m->counter, etag_out);
    }
    pthread_mutex_unlock(&m->mu);
    return st;
}

static const char *cfg_mem_describe(cfg_store *s)
{
    (void)s;
    return "memory";
}

static void cfg_mem_destroy(cfg_store *s)
{
    cfg_mem_store *m = (cfg_mem_store *)s;
    pthread_mutex_destroy(&m->mu);
    free(m->doc);
    free(m);
}

static const cfg_store_ops cfg_mem_ops = {
    .load = cfg_mem_load,
    .cas = cfg_mem_cas,
    .describe = cfg_mem_describe,
    .destroy = cfg_mem_destroy,
};

cfg_store *cfg_store_memory_new(void)
{
    cfg_mem_store *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base.ops = &cfg_mem_ops;
    pthread_mutex_init(&m->mu, NULL);
    return &m->base;
}

/* ------------------------------------------------------------------------ */
/* The file store: layout and checks.                                        */

typedef struct cfg_file_store {
    cfg_store base;
    pthread_mutex_t mu;
    char *path;      /* absolute, so a later chdir() changes nothing */
    char *dir;       /* its directory, absolute */
    char *base_name; /* its last component, for spotting stale temporaries */
    char *lock_path; /* path.lock */
    char *desc;      /* "file:" path */
} cfg_file_store;

static mt_status cfg_file_fail(const cfg_file_store *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static mt_status cfg_file_fail(const cfg_file_store *f, const char *fmt, ...)
{
    char what[MT_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mt_error(500, MT_ERR_INTERNAL, "state file %s: %s", f->path, what);
}

static char *cfg_join(const char *a, const char *sep, const char *b)
{
    size_t n = strlen(a) + strlen(sep) + strlen(b) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s", a, sep, b);
    return s;
}

static uint64_t cfg_fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static int cfg_digit(char c, int base)
{
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 99;
    return v < base ? v : -1;
}

/* One header field: digits only (no sign, no blanks, no overflow), ended
 * by `end`. The buffer is NUL-terminated, so a short one stops the scan. */
static bool cfg_parse_field(const char **p, int base, char end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    int d;
    if (cfg_digit(*s, base) < 0)
        return false;
    for (; (d = cfg_digit(*s, base)) >= 0; s++) {
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (*s != end)
        return false;
    *p = s + 1;
    *out = v;
    return true;
}

/* buf[len] is NUL. *doc (may be NULL when the caller wants the counter
 * only) gets a copy of the document. */
static mt_status cfg_file_parse(const cfg_file_store *f, const char *buf, size_t len, char **doc,
                                uint64_t *counter)
{
    size_t magic = strlen(CFG_FILE_MAGIC);
    uint64_t dlen, sum;
    const char *p = buf + magic;
    if (len < magic || memcmp(buf, CFG_FILE_MAGIC, magic) != 0)
        return cfg_file_fail(f, "not an mtable state file (%zu bytes, no header)", len);
    if (!cfg_parse_field(&p, 10, ' ', counter) || *counter == 0 ||
        !cfg_parse_field(&p, 10, ' ', &dlen) || !cfg_parse_field(&p, 16, '\n', &sum))
        return cfg_file_fail(f, "damaged header; move the file away to start afresh");
    size_t have = len - (size_t)(p - buf);
    if (dlen != have)
        return cfg_file_fail(f, "torn: the header says %" PRIu64 " bytes, the file holds %zu", dlen,
                             have);
    if (memchr(p, '\0', have) || cfg_fnv1a(p, have) != sum)
        return cfg_file_fail(f, "checksum mismatch: the document was modified or damaged");
    if (doc && !(*doc = strndup(p, have)))
        return cfg_oom();
    return mt_ok();
}

/* ------------------------------------------------------------------------ */
/* The file store: reading and writing.                                      */

/* 0, or the errno that stopped it (EIO when the file shrank under us). */
static int cfg_read_all(int fd, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t k = read(fd, buf + got, len - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno;
        if (k == 0)
            return EIO;
        got += (size_t)k;
    }
    return 0;
}

static bool cfg_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return false;
        p += k;
        len -= (size_t)k;
    }
    return true;
}

/* Reads the open file fd into a NUL-terminated buffer, then parses it. */
static mt_status cfg_file_read_fd(const cfg_file_store *f, int fd, char **doc, uint64_t *counter)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return cfg_file_fail(f, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return cfg_file_fail(f, "not a regular file");
    if ((uint64_t)sb.st_size > CFG_FILE_MAX)
        return cfg_file_fail(f, "too large (%lld bytes)", (long long)sb.st_size);
    size_t len = (size_t)sb.st_size;
    char *buf = malloc(len + 1);
    if (!buf)
        return cfg_oom();
    mt_status st = mt_ok();
    int e = cfg_read_all(fd, buf, len);
    if (e)
        st = cfg_file_fail(f, "cannot read: %s", strerror(e));
    if (mt_is_ok(&st)) {
        buf[len] = '\0';
        st = cfg_file_parse(f, buf, len, doc, counter);
    }
    free(buf);
    return st;
}

/* The stored document and counter; NULL and 0 when there is no file. */
static mt_status cfg_file_read(const cfg_file_store *f, char **doc, uint64_t *counter)
{
    if (doc)
        *doc = NULL;
    *counter = 0;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? mt_ok() : cfg_file_fail(f, "cannot open: %s", strerror(errno));
    mt_status st = cfg_file_read_fd(f, fd, doc, counter);
    close(fd);
    if (!mt_is_ok(&st) && doc) {
        free(*doc);
        *doc = NULL;
    }
    return st;
}

/* Makes the rename durable. EINVAL: the filesystem cannot sync directories
 * (some network ones); its renames are as durable as it makes them. */
static mt_status cfg_file_sync_dir(const cfg_file_store *f)
{
    int fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cfg_file_fail(f, "cannot open directory to sync it: %s", strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL)
        return cfg_file_fail(f,
                             "replaced, but syncing the directory failed (%s): the new state "
                             "may not survive a crash",
                             strerror(e));
    return mt_ok();
}

/* The whole file into tmp, durable; the caller renames it. */
static mt_status cfg_file_write_tmp(const cfg_file_store *f, const char *tmp, const char *doc,
                                    uint64_t counter)
{
    size_t dlen = strlen(doc);
    char hdr[CFG_HEADER_MAX];
    int hlen = snprintf(hdr, sizeof hdr, CFG_FILE_MAGIC "%" PRIu64 " %zu %016" PRIx64 "\n", counter,
                        dlen, cfg_fnv1a(doc, dlen));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return cfg_file_fail(f, "cannot create %s: %s", tmp, strerror(errno));
    const char *step = "write";
    bool ok = cfg_write_all(fd, hdr, (size_t)hlen) && cfg_write_all(fd, doc, dlen);
    if (ok && !(ok = fsync(fd) == 0))
        step = "fsync";
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        step = "close";
        e = errno;
    }
    if (!ok)
        return cfg_file_fail(f, "cannot %s %s: %s", step, tmp, strerror(e));
    return mt_ok();
}

static mt_status cfg_file_write(const cfg_file_store *f, const char *doc, uint64_t counter)
{
    /* The pid is taken now, not at creation, so a store used on both sides
     * of a fork() never shares a temporary. */
    char pid[32];
    snprintf(pid, sizeof pid, ".tmp.%ld", (long)getpid());
    char *tmp = cfg_join(f->path, pid, "");
    if (!tmp)
        return cfg_oom();
    mt_status st = cfg_file_write_tmp(f, tmp, doc, counter);
    if (mt_is_ok(&st) && rename(tmp, f->path) != 0)
        st = cfg_file_fail(f, "cannot rename %s over it: %s", tmp, strerror(errno));
    if (!mt_is_ok(&st))
        unlink(tmp);
    else
        st = cfg_file_sync_dir(f);
    free(tmp);
    return st;
}

/* Takes the cross-process lock: *fd is to be closed to release it. */
static mt_status cfg_file_lock(const cfg_file_store *f, int *fd)
{
    *fd = open(f->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS))
        return cfg_file_fail(f, "directory %s is not writable (%s)", f->dir, strerror(errno));
    if (*fd < 0)
        return cfg_file_fail(f, "cannot open lock file %s: %s", f->lock_path, strerror(errno));
    while (flock(*fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(*fd);
            *fd = -1;
            return cfg_file_fail(f, "cannot lock %s: %s", f->lock_path, strerror(e));
        }
    }
    return mt_ok();
}

/* ------------------------------------------------------------------------ */
/* The file store: operations.                                               */

static mt_status cfg_file_load(cfg_store *s, char **doc, char etag[CFG_ETAG_MAX])
{
    uint64_t counter;
    mt_status st = cfg_file_read((cfg_file_store *)s, doc, &counter);
    cfg_etag_format(mt_is_ok(&st) ? counter : 0, etag);
    return st;
}

static mt_status cfg_file_cas(cfg_store *s, const char *doc, const char *expected,
                              char etag_out[CFG_ETAG_MAX])
{
    cfg_file_store *f = (cfg_file_store *)s;
    if (!doc)
        return mt_error(400, MT_ERR_INVALID_INPUT, "state document is missing");
    /* What load would refuse to read back must not be written. */
    if (strlen(doc) > CFG_FILE_MAX - CFG_HEADER_MAX)
        return mt_error(413, "RequestBodyTooLarge",
                        "%s: a state document of %zu bytes is too large", f->desc, strlen(doc));
    int lfd = -1;
    uint64_t counter = 0;
    pthread_mutex_lock(&f->mu);
    mt_status st = cfg_file_lock(f, &lfd);
    if (mt_is_ok(&st))
        st = cfg_file_read(f, NULL, &counter);
    if (mt_is_ok(&st) && !cfg_etag_matches(counter, expected))
        st = cfg_condition_failed(f->desc, counter, expected);
    if (mt_is_ok(&st))
        st = cfg_file_write(f, doc, counter + 1);
    if (mt_is_ok(&st))
        cfg_etag_format(counter + 1, etag_out);
    if (lfd >= 0)
        close(lfd); /* releases the flock */
    pthread_mutex_unlock(&f->mu);
    return st;
}

static const char *cfg_file_describe(cfg_store *s)
{
    return ((cfg_file_store *)s)->desc;
}

static void cfg_file_destroy(cfg_store *s)
{
    cfg_file_store *f = (cfg_file_store *)s;
    if (!f)
        return;
    pthread_mutex_destroy(&f->mu);
    free(f->path);
    free(f->dir);
    free(f->base_name);
    free(f->lock_path);
    free(f->desc);
    free(f);
}

static const cfg_store_ops cfg_file_ops = {
    .load = cfg_file_load,
    .cas = cfg_file_cas,
    .describe = cfg_file_describe,
    .destroy = cfg_file_destroy,
};

/* ------------------------------------------------------------------------ */
/* The file store: creation.                                                 */

/* Splits path into its directory, resolved to an absolute one, and its
 * last component; fills f->path and friends. *st names the problem. */
static bool cfg_file_names(cfg_file_store *f, const char *path, mt_status *st)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dlen = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = slash ? strndup(path, dlen) : strdup(".");
    char real[PATH_MAX];
    bool ok = dir && realpath(dir, real);
    int e = errno;
    if (!dir)
        *st = cfg_oom();
    else if (!ok)
        *st = mt_error(500, MT_ERR_INTERNAL, "state file %s: directory %s %s", path, dir,
                       e == ENOENT ? "does not exist" : strerror(e));
    free(dir);
    if (!ok)
        return false;
    f->dir = strdup(real);
    f->base_name = strdup(base);
    f->path = cfg_join(real, strcmp(real, "/") == 0 ? "" : "/", base);
    f->lock_path = f->path ? cfg_join(f->path, ".lock", "") : NULL;
    f->desc = f->path ? cfg_join("file:", f->path, "") : NULL;
    if (!f->dir || !f->base_name || !f->path || !f->lock_path || !f->desc)
        *st = cfg_oom();
    return mt_is_ok(st);
}

/* The directory must be one, and PATH, if there, a regular file. */
static bool cfg_file_check_kinds(cfg_file_store *f, mt_status *st)
{
    struct stat sb;
    if (stat(f->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        *st = cfg_file_fail(f, "%s is not a directory", f->dir);
    else if (stat(f->path, &sb) == 0 && !S_ISREG(sb.st_mode))
        *st = cfg_file_fail(f, "exists and is not a regular file");
    return mt_is_ok(st);
}

/* Under the lock every PATH.tmp.* is a leftover of a writer that died
 * (writers only create one while they hold the lock): remove them, best
 * effort, so kill -9s do not pile up files. */
static void cfg_file_sweep(const cfg_file_store *f)
{
    char *prefix = cfg_join(f->base_name, ".tmp.", "");
    DIR *d = prefix ? opendir(f->dir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            unlinkat(dirfd(d), de->d_name, 0);
    if (d)
        closedir(d);
    free(prefix);
}

/* Creating the lock file and a temporary is the only sure test that the
 * directory is writable (access() asks about the real uid, and root). */
static bool cfg_file_probe(cfg_file_store *f, mt_status *st)
{
    int lfd;
    *st = cfg_file_lock(f, &lfd);
    if (!mt_is_ok(st))
        return false;
    cfg_file_sweep(f);
    char *probe = cfg_join(f->path, ".tmp.", "probe");
    int fd = probe ? open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    if (!probe)
        *st = cfg_oom();
    else if (fd < 0)
        *st = cfg_file_fail(f, "directory %s is not writable (%s)", f->dir, strerror(errno));
    if (fd >= 0) {
        close(fd);
        unlink(probe);
    }
    free(probe);
    close(lfd);
    return mt_is_ok(st);
}

cfg_store *cfg_store_file_new(const char *path, mt_status *st)
{
    *st = mt_ok();
    size_t n = path ? strlen(path) : 0;
    if (n == 0 || path[n - 1] == '/') {
        *st = mt_error(400, MT_ERR_INVALID_INPUT, "state file '%s': not a file name",
                       path ? path : "");
        return NULL;
    }
    cfg_file_store *f = calloc(1, sizeof *f);
    if (!f) {
        *st = cfg_oom();
        return NULL;
    }
    f->base.ops = &cfg_file_ops;
    pthread_mutex_init(&f->mu, NULL);
    if (!cfg_file_names(f, path, st) || !cfg_file_check_kinds(f, st) || !cfg_file_probe(f, st)) {
        cfg_file_destroy(&f->base);
        return NULL;
    }
    return &f->base;
}

/*
 * fuzz_state.c -- libFuzzer target for the control plane's two formats: the
 * file store's state file and the authority's state document inside it.
 *
 * Each input is written, byte for byte, as the state file at one fixed
 * path in a directory made once per process (removed at exit); a file
 * store made once reads it. Then the document -- the one the file held
 * when it loaded, else the raw input itself, since a fuzzer cannot forge
 * the header's checksum by mutation -- is put in a memory store and an
 * authority is started over it.
 *
 * Promises checked beyond "never crash or leak":
 *   - a file the store refuses is a 500 with no document and no ETag; one
 *     it accepts yields exactly the bytes after the header line, and the
 *     header's counter as its ETag;
 *   - a compare-and-swap against a wrong ETag agrees with load: the same
 *     500 on a refused file, 412 on an accepted one, and never writes;
 *   - a document the authority refuses gives NULL and a 500; one it takes
 *     publishes a version >= 1 and a phase, its migration part is NULL or a
 *     JSON object, and after saving that part back a second authority over
 *     the same store sees the same version, phase and migration.
 * A broken promise aborts, which libFuzzer reports as a crash.
 */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"

static char fz_dir[256];
static char fz_path[300];
static cfg_store *fz_file; /* kept for the whole run: reachable, never a leak */

static void fz_fail(const char *what, const mt_status *st)
{
    fprintf(stderr, "fuzz_state: %s (status %d %s: %s)\n", what, st ? st->http : 0,
            st ? st->code : "", st ? st->message : "");
    abort();
}

static void fz_cleanup(void)
{
    char p[400];
    const char *suffix[] = {"", ".lock"};
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        snprintf(p, sizeof p, "%s%s", fz_path, suffix[i]);
        unlink(p);
    }
    rmdir(fz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(fz_dir, sizeof fz_dir, "%s/fuzz_state.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fz_dir)) {
        perror("fuzz_state: mkdtemp");
        abort();
    }
    snprintf(fz_path, sizeof fz_path, "%s/state", fz_dir);
    atexit(fz_cleanup);
    mt_status st;
    fz_file = cfg_store_file_new(fz_path, &st);
    if (!fz_file)
        fz_fail("cannot make the file store", &st);
    return 0;
}

static void fz_write_file(const uint8_t *data, size_t size)
{
    int fd = open(fz_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror("fuzz_state: open");
        abort();
    }
    for (size_t off = 0; off < size;) {
        ssize_t k = write(fd, data + off, size - off);
        if (k <= 0) {
            perror("fuzz_state: write");
            abort();
        }
        off += (size_t)k;
    }
    close(fd);
}

/* The file store: load, and a CAS that must fail without writing. The
 * loaded document (or NULL) is returned for the authority. */
static char *fz_file_check(const uint8_t *data, size_t size)
{
    char *doc = NULL, etag[CFG_ETAG_MAX] = "junk";
    mt_status st = fz_file->ops->load(fz_file, &doc, etag);
    if (!mt_is_ok(&st)) {
        if (st.http != 500 || doc || etag[0])
            fz_fail("a refused file must be a 500 with no document and no ETag", &st);
    } else {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t off = nl ? (size_t)(nl - data) + 1 : size;
        /* "mtable-state 1 " then the counter in decimal (leading zeros
         * allowed): the ETag is that number. */
        char want[CFG_ETAG_MAX];
        unsigned long long counter = 0;
        for (size_t i = 15; i < off && data[i] >= '0' && data[i] <= '9'; i++)
            counter = counter * 10 + (unsigned)(data[i] - '0');
        snprintf(want, sizeof want, "%llu", counter);
        if (!doc || !nl || strlen(doc) != size - off || memcmp(doc, data + off, size - off) ||
            strcmp(etag, want) != 0)
            fz_fail("an accepted file must yield its body and its counter as the ETag", &st);
    }
    char out[CFG_ETAG_MAX] = "";
    mt_status cas = fz_file->ops->cas(fz_file, "{}", "wrong", out);
    if (mt_is_ok(&st) ? cas.http != 412 : (cas.http != st.http || strcmp(cas.message, st.message)))
        fz_fail("CAS with a wrong ETag must agree with load", &cas);
    return doc;
}

static cfg_authority *fz_authority(cfg_store *store, mt_status *st)
{
    cfg_authority_opts opts = {.lease_ms = 1000};
    cfg_authority *a = cfg_authority_new(mt_rt_pthread(), store, &opts, st);
    if (!a && (mt_is_ok(st) || st->http != 500))
        fz_fail("a refused document must give NULL and a 500", st);
    if (a && !mt_is_ok(st))
        fz_fail("an authority came with an error status", st);
    return a;
}

static void fz_authority_check(const char *doc)
{
    cfg_store *store = cfg_store_memory_new();
    char etag[CFG_ETAG_MAX];
    mt_status st = store->ops->cas(store, doc, "", etag);
    if (!mt_is_ok(&st))
        fz_fail("a memory store refused its first document", &st);
    cfg_authority *a = fz_authority(store, &st);
    if (!a) {
        store->ops->destroy(store);
        return;
    }
    cfg_view v, v2;
    cfg_authority_poll(a, -1, true, 0, &v);
    if (v.version < 1 || (int)v.phase < 0 || (int)v.phase >= MT_PHASE_COUNT || v.lease_ms != 1000)
        fz_fail("the published view is out of range", NULL);

    char *mig = NULL, *mig2 = NULL;
    st = cfg_authority_load_migration(a, &mig);
    cJSON *parsed = mig ? cJSON_Parse(mig) : NULL;
    if (!mt_is_ok(&st) || (mig && !cJSON_IsObject(parsed)))
        fz_fail("the migration part must be NULL or a JSON object", &st);
    cJSON_Delete(parsed);

    st = cfg_authority_save_migration(a, mig);
    if (!mt_is_ok(&st))
        fz_fail("saving the migration part back failed", &st);
    cfg_authority *b = fz_authority(store, &st);
    if (!b)
        fz_fail("a second authority refused what the first wrote", &st);
    cfg_authority_poll(b, -1, true, 0, &v2);
    cfg_authority_load_migration(b, &mig2);
    if (v2.version != v.version || v2.phase != v.phase || !mig != !mig2 ||
        (mig && strcmp(mig, mig2) != 0)) {
        fprintf(stderr, "fuzz_state: %s\nvs\n%s\n", mig ? mig : "(null)", mig2 ? mig2 : "(null)");
        fz_fail("a reloaded authority sees another state", NULL);
    }
    free(mig);
    free(mig2);
    cfg_authority_free(b);
    cfg_authority_free(a);
    store->ops->destroy(store);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write_file(data, size);
    char *doc = fz_file_check(data, size);
    if (!doc) {
        doc = malloc(size + 1);
        if (!doc)
            return 0;
        memcpy(doc, data, size);
        doc[size] = '\0';
    }
    fz_authority_check(doc);
    free(doc);
    /* The same bytes as the configuration endpoint's answer, as a sidecar
     * reads it: accepted only with a positive lease and a known phase. */
    cfg_view v = {.version = -7};
    mt_status st = cfg_view_parse((const char *)data, size, &v);
    if (mt_is_ok(&st) && (v.lease_ms <= 0 || v.phase > MT_PHASE_USE_NEW_HIDE_METADATA))
        abort();
    if (!mt_is_ok(&st) && v.version != -7)
        abort();
    return 0;
}

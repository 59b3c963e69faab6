/*
 * replay.c -- runs a fuzz target once over its corpus, without libFuzzer.
 *
 *   replay_NAME PATH...
 *
 * Each PATH is an input file or a directory of them (not recursive, in name
 * order); each input is passed once to the target's LLVMFuzzerTestOneInput,
 * after its LLVMFuzzerInitialize when it has one, in a child process of its
 * own (as `fuzz_NAME FILE` would run it), so that one input's state cannot
 * change the next one's outcome. Builds without libFuzzer link the fuzz
 * targets with this driver, so suite fuzz-corpus replays the committed
 * corpus in every build: an input that crashes, aborts, makes a sanitizer
 * report or runs longer than 60 s fails the test, and is named. Prints the
 * number of inputs; no input at all is a failure.
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Feeds one file to the target; 0, or -1 when it cannot be read. */
static int feed_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *data = malloc(cap);
    size_t n;
    while (data && (n = fread(data + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *bigger = realloc(data, cap * 2);
            if (!bigger) {
                free(data);
                data = NULL;
                break;
            }
            data = bigger;
            cap *= 2;
        }
    }
    int bad = ferror(f) || !data;
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(data);
        return -1;
    }
    /* A copy of exactly len bytes, so a read past the input is caught by
     * the sanitizers as it would be under libFuzzer. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(data);
        return -1;
    }
    memcpy(exact, data, len);
    free(data);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int g_argc;
static char **g_argv;

/* Replays one file in a child; 0 when it ran to its end, else -1 (named). */
static int replay_file(const char *path)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        alarm(60);
        if (LLVMFuzzerInitialize)
            LLVMFuzzerInitialize(&g_argc, &g_argv);
        int rc = feed_file(path);
        fflush(NULL);
        exit(rc == 0 ? 0 : 3);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (WIFSIGNALED(st))
        fprintf(stderr, "replay: %s: killed by signal %d%s\n", path, WTERMSIG(st),
                WTERMSIG(st) == SIGALRM ? " (ran longer than 60 s)" : "");
    else
        fprintf(stderr, "replay: %s: exit %d\n", path, WEXITSTATUS(st));
    return -1;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    long inputs = 0;
    int errors = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            errors++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            errors += replay_file(argv[i]) != 0;
            inputs++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, by_name);
        if (n < 0) {
            perror(argv[i]);
            errors++;
            continue;
        }
        for (int k = 0; k < n; k++) {
            char path[4096];
            struct stat fst;
            snprintf(path, sizeof path, "%s/%s", argv[i], names[k]->d_name);
            if (stat(path, &fst) == 0 && S_ISREG(fst.st_mode)) {
                errors += replay_file(path) != 0;
                inputs++;
            }
            free(names[k]);
        }
        free(names);
    }
    printf("replayed %ld inputs, %d failed\n", inputs, errors);
    return errors || inputs == 0 ? 1 : 0;
}

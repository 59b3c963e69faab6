/*
 * ut_azurite.c -- starting and stopping Azurite for unit tests.
 *
 * The child dies with the test (PR_SET_PDEATHSIG), so a crashed test leaves
 * no server behind; its output goes to azurite.log in a scratch directory
 * that stop removes.
 */
#define _GNU_SOURCE

#include "ut_azurite.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
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

#define UT_DEFAULT_MAIN "../test/e2e/node_modules/azurite/dist/src/table/main.js"

int ut_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

bool ut_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

void ut_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void ut_azurite_stop(ut_azurite *a)
{
    if (a->pid > 0) {
        kill(a->pid, SIGTERM);
        int status;
        for (int i = 0; i < 100 && waitpid(a->pid, &status, WNOHANG) == 0; i++)
            ut_sleep_ms(100);
        if (waitpid(a->pid, &status, WNOHANG) == 0) {
            kill(a->pid, SIGKILL);
            waitpid(a->pid, &status, 0);
        }
        a->pid = 0;
    }
    if (a->dir[0]) {
        nftw(a->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        a->dir[0] = '\0';
    }
}

static void log_tail(const ut_azurite *a)
{
    char path[128], buf[2048];
    snprintf(path, sizeof path, "%s/azurite.log", a->dir);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    fprintf(stderr, "azurite log:\n%s\n", buf);
}

static void exec_azurite(const ut_azurite *a, const char *main_js)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char log[128], port[16];
    snprintf(log, sizeof log, "%s/azurite.log", a->dir);
    snprintf(port, sizeof port, "%d", a->port);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0 && chdir(a->dir) == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    execlp("node", "node", main_js, "--tableHost", "127.0.0.1", "--tablePort", port,
           "--inMemoryPersistence", "--disableTelemetry", "--silent", (char *)NULL);
    _exit(127);
}

/* Waits for the port: true when it opened, false when the child died. */
static bool wait_port(ut_azurite *a)
{
    for (int i = 0; i < 600; i++) {
        int status;
        if (waitpid(a->pid, &status, WNOHANG) == a->pid) {
            a->pid = 0;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                snprintf(a->skip, sizeof a->skip, "node is not installed (not on PATH)");
            else
                log_tail(a);
            return false;
        }
        if (ut_port_open(a->port))
            return true;
        ut_sleep_ms(100);
    }
    return false;
}

bool ut_azurite_start(ut_azurite *a)
{
    static char main_js[PATH_MAX];
    const char *m = getenv("MTABLE_AZURITE_MAIN");
    if (!m || !m[0])
        m = UT_DEFAULT_MAIN;
    if (!realpath(m, main_js)) {
        snprintf(a->skip, sizeof a->skip,
                 "Azurite is not installed (%s is missing): run 'npm ci' in test/e2e", m);
        return false;
    }
    for (int attempt = 0; attempt < 3 && !a->skip[0]; attempt++) {
        snprintf(a->dir, sizeof a->dir, "/tmp/mtable-azurite-XXXXXX");
        if (!mkdtemp(a->dir)) {
            snprintf(a->skip, sizeof a->skip, "cannot make a scratch directory: %s",
                     strerror(errno));
            a->dir[0] = '\0';
            return false;
        }
        a->port = ut_free_port();
        a->pid = fork();
        if (a->pid == 0)
            exec_azurite(a, main_js);
        if (wait_port(a))
            return true;
        ut_azurite_stop(a); /* most likely the port was taken meanwhile */
    }
    return false;
}

/*
 * ut_azurite.h -- a real Azurite (table service, in memory, no telemetry)
 * for the unit tests that need one, started on a free loopback port and
 * stopped by PID. Shared by test_az_client and test_cfg_store.
 */
#ifndef UT_AZURITE_H
#define UT_AZURITE_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct ut_azurite {
    pid_t pid;
    int port;
    char dir[64];   /* its scratch directory (and azurite.log) */
    char skip[512]; /* why it cannot run here; "" when it runs or failed */
} ut_azurite;

/* A port nothing listens on right now, or -1. */
int ut_free_port(void);
/* Whether something accepts connections on 127.0.0.1:port. */
bool ut_port_open(int port);
void ut_sleep_ms(long ms);

/* Starts Azurite (MTABLE_AZURITE_MAIN, else test/e2e's install) with up to
 * three attempts. Not installed, or node missing: false with a->skip set.
 * Installed but not starting: false with a->skip empty (a failure). */
bool ut_azurite_start(ut_azurite *a);
void ut_azurite_stop(ut_azurite *a);

#endif

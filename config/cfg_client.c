/* cfg_client.c -- being written. */
#include "cfg.h"

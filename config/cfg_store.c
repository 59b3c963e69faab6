/* cfg_store.c -- being written. */
#include "cfg.h"

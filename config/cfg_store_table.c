/* cfg_store_table.c -- being written. */
#include "cfg.h"

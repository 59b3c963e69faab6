/* cfg_authority.c -- being written. */
#include "cfg.h"

/* cfg_http.c -- being written. */
#include "cfg.h"

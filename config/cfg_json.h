/*
 * cfg_json.h -- reading numbers out of JSON documents the control plane
 * exchanges (the state document, the configuration endpoint's answers and
 * bodies). cJSON keeps every number as a double; casting one that is not a
 * whole number in range to an integer is undefined behaviour, and these
 * documents come from files and from the network.
 */
#ifndef CFG_JSON_H
#define CFG_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* *out = v when v is a whole number within +-9e18; false otherwise. */
static inline bool cfg_json_int64(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= -9.0e18 && v->valuedouble <= 9.0e18) ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

#endif

/*
 * fuzz_json_diff.c -- differential libFuzzer target for the JSON readers:
 * arbitrary bytes (not NUL-terminated, so AddressSanitizer sees any read
 * past the end) go to the one-pass readers of azure/wire/az_json.c and to
 * the cJSON-based oracle (oracle_json.c); any difference in acceptance,
 * error answer or what was read aborts, which libFuzzer reports with the
 * input saved.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "oracle_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    const char *why = oracle_json_diff((const char *)d, n);
    if (why) {
        fprintf(stderr, "fuzz_json_diff: %s\nbody: %.*s\n", why, (int)(n > 2000 ? 2000 : n),
                (const char *)d);
        abort();
    }
    return 0;
}

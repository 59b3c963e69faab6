/*
 * fuzz_tablemap.c -- libFuzzer target for the --table-map parser
 * (px_table_map_parse, proxy/px_tablemap.c).
 *
 * Any input either is refused with a reason and leaves an empty map, or
 * gives a map whose every entry translates both ways (to_new(app) is new,
 * from_new(new) is app) and whose text form (the one in the fingerprint)
 * parses again into a map of the same size with the same text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "px.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    static px_table_map m, again;
    char why[200];
    if (!px_table_map_parse(text, &m, why, sizeof why)) {
        if (!why[0] || m.n != 0)
            abort();
        free(text);
        return 0;
    }
    for (size_t i = 0; i < m.n; i++) {
        if (strcmp(px_table_map_to_new(&m, m.app[i]), m.new_name[i]) != 0)
            abort();
        const char *back = px_table_map_from_new(&m, m.new_name[i]);
        if (!back || strcmp(back, m.app[i]) != 0)
            abort();
    }
    mt_buf b = {0}, b2 = {0};
    px_table_map_text(&m, &b);
    size_t n = 0, n2 = 0;
    char *t = mt_buf_take(&b, &n);
    if (t && !px_table_map_parse(t, &again, why, sizeof why))
        abort();
    if (t) {
        px_table_map_text(&again, &b2);
        char *t2 = mt_buf_take(&b2, &n2);
        if (again.n != m.n || !t2 || strcmp(t, t2) != 0)
            abort();
        free(t2);
    }
    free(t);
    free(text);
    return 0;
}

/*
 * oracle_json.h -- the cJSON-based JSON readers kept as a test oracle
 * (oracle_json.c): same contracts as az_json_entity_read,
 * az_json_entity_read_reply and az_json_table_read; and the comparison of
 * their answers with the one-pass readers' (json_diff.c).
 */
#ifndef ORACLE_JSON_H
#define ORACLE_JSON_H

#include "az_internal.h"

mt_status oracle_json_entity_read(const char *body, size_t len, mt_entity **out, unsigned *keys);
mt_status oracle_json_entity_read_reply(const char *body, size_t len, mt_entity **out);
mt_status oracle_json_table_read(const char *body, size_t len, char **name);

/* Reads d[0..n) with both readers, as an entity, a reply entity and a
 * table body: NULL when every answer agrees (the same acceptance, error
 * status, code and message, key flags, keys, properties in order with
 * bitwise-equal values, ETag and Timestamp, table name), else what
 * differed (json_diff.c). */
const char *oracle_json_diff(const char *d, size_t n);

#endif

/*
 * az_internal.h -- declarations shared between the files of azure/ and
 * nowhere else.
 *
 * The payload entry points of az.h take a format and dispatch on it in
 * az_json.c; the Atom and XML side lives in az_atom.c. These are the
 * functions that dispatch reaches, with the same ownership rules as az.h:
 * returned buffers are malloc'd and the caller's, *len receives their
 * length, and readers return a 4xx mt_status on bad input.
 */
#ifndef AZ_INTERNAL_H
#define AZ_INTERNAL_H

#include "az.h"

mt_status az_atom_entity_read(const char *body, size_t len, mt_entity **out);
char *az_atom_entity_write(const az_payload_ctx *c, const mt_entity *e, size_t *len);
char *az_atom_entities_write(const az_payload_ctx *c, const mt_entity_list *rows, size_t *len);
mt_status az_atom_table_read(const char *body, size_t len, char **name);
char *az_atom_table_write(const az_payload_ctx *c, const char *name, size_t *len);
char *az_atom_tables_write(const az_payload_ctx *c, char *const *names, size_t n, size_t *len);
char *az_xml_error_write(const char *code, const char *message, size_t *len);

#endif

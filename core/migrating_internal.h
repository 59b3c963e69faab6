/*
 * migrating_internal.h -- what migrating.c, migrating_query.c and migrator.c
 * share. Not part of the public contract.
 */
#ifndef MT_MIGRATING_INTERNAL_H
#define MT_MIGRATING_INTERNAL_H

#include "mt.h"
#include "mt_bugs.h"

/* Partitions this proxy saw switched, sorted (see migrating.c), in the
 * roles' generation `generation`: a cache kept in another generation (the
 * migration before a swap of roles) is emptied on first use. */
typedef struct mt_mig_cache {
    mt_mutex *mu;
    int64_t generation;
    char **switched;
    size_t nswitched, capswitched;
} mt_mig_cache;

/* The table, and the same seen by one operation: every operation works on
 * a copy whose old_t and new_t are the tables in the roles its
 * configuration gives them (mt_mig_oriented). */
typedef struct mt_migrating {
    mt_table base;
    mt_rt *rt;
    mt_config_service *cfg;
    mt_table *old_t;
    mt_table *new_t;
    bool reversed;      /* old_t and new_t are the given tables swapped */
    int64_t generation; /* of the roles (mt_config.generation) */
    mt_mig_cache *cache;
} mt_migrating;

/* The table as an operation under configuration c sees it (a copy: only
 * the cache is shared). */
void mt_mig_oriented(const mt_migrating *m, const mt_config *c, mt_migrating *out);

/* Empties the switched-partition cache (its lock held, or no sharing). */
void mt_mig_forget_switched(mt_mig_cache *cache);

/* True when this proxy already knows pk is switched (read paths may use it
 * to skip the meta row). */
bool mt_mig_switched_known(mt_migrating *m, const char *pk);

/* Row keys of the two protocol rows of the old table. */
bool mt_mig_is_protocol_rk(const char *rk);
/* A row of the new table that records a deletion. */
bool mt_mig_is_tombstone(const mt_entity *e);
/* True when the entity carries any property named _mtable_*. */
bool mt_mig_has_reserved_prop(const mt_entity *e);
/* Removes every _mtable_* property. */
void mt_mig_strip(mt_entity *e);

/* Makes sure partition pk's meta row in old says SWITCHED. */
mt_status mt_mig_ensure_switched(mt_table *old_t, const char *pk);

/* Reads the rows with the given row keys of partition pk from t, in chunks
 * that respect the backend's comparison limit, appending to *out. */
mt_status mt_mig_read_keys(mt_table *t, const char *pk, const char *const *rks, size_t n,
                           mt_entity_list *out);

/* Inserts a copy of old row e into new (user properties only); a row that
 * is already there is fine. */
mt_status mt_mig_copy_row(mt_table *new_t, const mt_entity *e);

/* A view of inner that repeats a call failing with a 5xx (up to attempts
 * times in all) and reopens a failed stream at its last key; for the
 * migrator, whose calls are all safe to repeat (retrying.c). Destroying it
 * leaves inner alone. */
mt_table *mt_mig_retrying_new(mt_table *inner, int attempts);

/* The streamed query (migrating_query.c). */
mt_status mt_mig_query_stream(mt_table *t, const mt_filter *f, const mt_key *start,
                              mt_stream **out);
mt_status mt_mig_query_atomic(mt_table *t, const char *pk, const mt_filter *f,
                              mt_entity_list *out);
mt_status mt_mig_retrieve(mt_table *t, const char *pk, const char *rk, mt_entity **out);
mt_status mt_mig_retrieve_shared(mt_table *t, const char *pk, const char *rk, mt_entity **out);

#endif

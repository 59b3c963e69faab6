/*
 * fleet.h -- the control plane under the tester: one configuration
 * authority and a fleet of proxies, each with its own configuration client,
 * its own link to the authority and its own lease-guarded views of the
 * shared backends (the "leases" scenario).
 *
 * Everything is the production code of config/ (built with the seeded
 * bugs): cfg_authority over a memory state store, cfg_client, cfg_guard.
 * What the tester supplies is the world around it, with faults drawn from
 * the execution's seed:
 *   - a link per proxy (the cfg_transport), a direct call into the
 *     authority with a scheduling point on each leg; it may go down for a
 *     while (every call times out: the proxy stops renewing and its lease
 *     runs out) or lag (each leg takes up to a quarter lease, so the proxy
 *     hears of a version late and its acknowledgements arrive late);
 *   - a proxy may stall in front of a backend call (a pause of the process:
 *     the operation stays in flight, under its phase, while time passes);
 *   - a call the guard let through reaches the backend within the
 *     authority's margin, or never (sct_backend_view): the one assumption
 *     the lease protocol makes about the network.
 * Time is the scheduler's virtual time, so leases expire exactly when the
 * seed says.
 */
#ifndef SCT_FLEET_H
#define SCT_FLEET_H

#include "cfg.h"
#include "sched.h"

#define SCT_FLEET_MAX 4

typedef struct sct_fleet sct_fleet;

typedef struct sct_fleet_opts {
    int proxies;           /* 1..SCT_FLEET_MAX */
    int64_t lease_ms;      /* the authority's lease */
    int64_t margin_ms;     /* and its margin */
    int64_t rest_lease_ms; /* its lease in the rest phases */
    /* 2: two authority replicas on the store, "a" leading at first, each
     * with a ticker (beats, takeovers) and its own link to the store; the
     * proxies' links reach whichever leads. 0 or 1: one authority. */
    int replicas;
} sct_fleet_opts;

/* Starts the authority (state in a memory store) and the proxies that start
 * with the run, and waits, as an orchestrator's readiness probe would, until
 * the authority's grace period after its start is over and every started
 * proxy holds a lease. Draws the faults from the seed. Runs inside an
 * execution; NULL with *why set when that fails. */
sct_fleet *sct_fleet_new(sct_sched *s, mt_table *old_t, mt_table *new_t, const sct_fleet_opts *o,
                         char *why, size_t whylen);

/* The authority's configuration service, for the migrator and for readers
 * that run on the authority's process. Borrowed. */
mt_config_service *sct_fleet_service(sct_fleet *f);

/* With replicas: replica r's configuration service, and the tables its
 * migrator writes, guarded by its leadership (as in the daemon) and
 * arriving within half a leader lease of the check. Borrowed. */
mt_config_service *sct_fleet_replica_service(sct_fleet *f, int r);
mt_table_pair sct_fleet_replica_tables(sct_fleet *f, int r);
/* Replica r's authority, for the migration run on it (its saved state).
 * Borrowed. */
cfg_authority *sct_fleet_replica_authority(sct_fleet *f, int r);
/* Whether replica r leads now. */
bool sct_fleet_replica_leads(sct_fleet *f, int r);
/* Cuts replica r off its store for good (a zombie: a paused process, or
 * one partitioned from the store but not from the backends): its beats
 * fail, its leadership lapses, the other replica takes over. */
void sct_fleet_replica_cut(sct_fleet *f, int r);

/* Proxy i's MigratingTable (its client's service over its guarded views).
 * A proxy drawn to join late has none until sct_fleet_join. Borrowed. */
mt_table *sct_fleet_table(sct_fleet *f, int i);
/* Starts proxy i late: waits a random time, starts its client, and waits
 * (boundedly) for its first lease, as the service's readiness would. Call
 * from the actor that uses it. */
mt_table *sct_fleet_join(sct_fleet *f, int i);

/* Stops every client, then frees the proxies, the authority and the store.
 * Runs inside the execution, after every user of the proxies returned. */
void sct_fleet_free(sct_fleet *f);

#endif

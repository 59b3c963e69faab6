/*
 * cfg_authority_int.h -- the authority's state, shared by the files that
 * make it up: cfg_authority.c (the view, pushes, leases) and cfg_leader.c
 * (which of several replicas on one store leads). Internal to config/.
 */
#ifndef CFG_AUTHORITY_INT_H
#define CFG_AUTHORITY_INT_H

#include "cfg.h"

#define DOC_FORMAT 1
/* Reads back after a store error before a write gives up. */
#define DOC_WRITE_TRIES 4

/* Proxies by id: a fleet of thousands acknowledges every few seconds. */
#define LEASE_BUCKETS 4096

typedef struct lease_rec {
    struct lease_rec *next;  /* every record, newest first */
    struct lease_rec *hnext; /* the next in its bucket */
    char id[CFG_ID_MAX];
    int64_t acked_version;
    int64_t acked_at; /* mono ms */
    int64_t until;    /* mono ms; the lease as the authority counts it */
    int64_t seen_at;  /* mono ms; its last acknowledgement, accepted or not */
    bool mismatched;  /* its backends are not ours: it holds no lease */
    char fingerprint[CFG_FINGERPRINT_MAX];
} lease_rec;

struct cfg_authority {
    mt_config_service svc; /* first: the service handed to callers */
    mt_rt *rt;
    cfg_store *store;
    mt_config_service *local;
    int64_t lease_ms, margin_ms;
    int64_t rest_lease_ms; /* the lease in a rest phase */
    int64_t grace_ms;      /* leases a previous incarnation may have granted */
    int64_t started_ms;
    bool fresh; /* the store held no state: no lease can predate this start */
    char fingerprint[CFG_FINGERPRINT_MAX];

    mt_mutex *push_mu;
    mt_mutex *store_mu; /* guards etag and migration */
    char etag[CFG_ETAG_MAX];
    char *migration; /* JSON object text or NULL */

    mt_mutex *mu;     /* guards everything below */
    mt_cond *changed; /* the published view moved (or closing) */
    mt_cond *acked;   /* an acknowledgement or a release arrived (or the view moved) */
    cfg_view view;
    lease_rec *leases;
    lease_rec *buckets[LEASE_BUCKETS];
    bool pushing; /* a push is between publishing and settling */
    bool holding; /* the current version stays unsettled (cfg_authority_push_held) */
    bool closing;
    /* Leadership (cfg_leader.c): under mu, whether this replica may act as
     * the authority now, until when, and who leads as far as it knows. */
    bool leading;
    int64_t lead_until; /* mono ms */
    cfg_leader_info leader_seen;
    struct {
        char id[CFG_ID_MAX];
        char url[CFG_URL_MAX];
        int64_t at; /* mono ms */
    } replicas[CFG_REPLICAS_MAX];

    /* Under store_mu: the leader record this replica last read or wrote,
     * and when it last changed (a standby's clock for a silent leader). */
    bool ha; /* replicas: a leader record in the document */
    char self_id[CFG_ID_MAX];
    char self_url[CFG_URL_MAX];
    int64_t leader_ms;
    cfg_leader_info leader;
    int64_t leader_changed_at; /* mono ms */
    int64_t next_beat;         /* mono ms */
};

/* The document (cfg_authority.c). Both hold store_mu. */
mt_status cfg_doc_write(cfg_authority *a, int64_t version, mt_phase phase, int64_t generation,
                        const char *migration);
/* Reads the document and publishes what it says; *leader (may be NULL)
 * receives its leader record. */
mt_status cfg_doc_reload(cfg_authority *a, cfg_leader_info *leader);
/* Parses a document's leader record ("" id when it has none). */
void cfg_doc_leader(const char *text, cfg_leader_info *out);

/* Leadership (cfg_leader.c). */
/* At start, after the document is loaded: lead at once (no replicas, the
 * record is this replica's own, or there is none) or stand by. Holds
 * store_mu. */
mt_status cfg_leader_start(cfg_authority *a, int64_t now);
/* Beats as the leader, or watches for a silent one as a standby and takes
 * over. Takes store_mu. */
void cfg_leader_tick(cfg_authority *a);
/* Whether this replica may act now. Holds mu. */
bool cfg_leader_active(cfg_authority *a, int64_t now);

#endif

/*
 * cfg.h -- the control plane: where the migration phase lives and how every
 * proxy agrees on it.
 *
 * One process is the *authority*: it keeps the phase, its version and the
 * migrator's checkpoints in a durable *state store*, serves them to the
 * other proxies (the HTTP side is the proxy's admin listener), and completes
 * a push only when every proxy that may still serve the previous phase has
 * acknowledged the new one or lost its lease. Every other proxy runs a
 * *client*: it fetches the state, drains the operations of the old phase,
 * acknowledges, renews its lease well inside the lease time, and fails
 * closed (its backends answer 503 ServerBusy) while it holds no lease.
 *
 * The lease protocol, as the authority sees it:
 *   - a proxy holds a lease for lease_ms from the moment the authority
 *     accepted its acknowledgement of the *current* version; an
 *     acknowledgement of an older version is refused (409) and grants
 *     nothing, so a proxy cannot keep serving an old phase by renewing;
 *   - a push writes the new state to the store (durable before visible),
 *     publishes it, and returns when every proxy whose lease was live at the
 *     push has acknowledged the new version or its lease ran out, plus a
 *     margin for clock drift and for backend calls already on the wire;
 *   - after a start on a stored state (the registry of leases is memory
 *     only) no push completes before one lease time plus the margin has
 *     passed, so a proxy leased by the previous incarnation has either
 *     come back or stopped. A start on an empty store has no such past.
 * As a client sees it: its lease runs from the moment it *sent* the
 * acknowledgement (earlier than the authority's clock), so it always gives
 * up before the authority stops waiting for it.
 *
 * Everything here reaches threads, locks and time only through mt_rt, and
 * talks to the other side through a transport, so the concurrency tester
 * runs authority and clients with a simulated clock and lossy links.
 *
 * What it must never do: make a state visible before it is durable, let a
 * client serve without a live lease, or complete a push while a proxy may
 * still be serving the phase before it.
 */
#ifndef CFG_H
#define CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt.h"

#define CFG_ETAG_MAX 128
#define CFG_ID_MAX 128
/* A migration's identity: 32 hex digits, made with its first state. */
#define CFG_MIGRATION_ID_MAX 40
/* What a proxy's backends are (accounts and endpoints, never keys), as a
 * short hash; proxies of one migration must all agree on it. */
#define CFG_FINGERPRINT_MAX 80
/* The table an Azure state store keeps its document in; never an
 * application's table. */
#define CFG_STATE_TABLE "mtablestate"
#define CFG_URL_MAX 512

/* ------------------------------------------------------------------------ */
/* State store: one small document, replaced by compare-and-swap.            */

typedef struct cfg_store cfg_store;

typedef struct cfg_store_ops {
    /* The stored document (*doc malloc'd, the caller frees it) and its
     * ETag; *doc = NULL and etag "" when nothing is stored yet. */
    mt_status (*load)(cfg_store *s, char **doc, char etag[CFG_ETAG_MAX]);
    /* Replaces the document if its ETag is still `expected` ("" = nothing
     * stored yet); otherwise 412 ConditionNotMet and nothing changes. On
     * success the new document is durable and etag_out holds its ETag. */
    mt_status (*cas)(cfg_store *s, const char *doc, const char *expected,
                     char etag_out[CFG_ETAG_MAX]);
    /* Human-readable location ("memory", "file:/var/lib/...", "table ..."). */
    const char *(*describe)(cfg_store *s);
    void (*destroy)(cfg_store *s);
} cfg_store_ops;

struct cfg_store {
    const cfg_store_ops *ops;
};

cfg_store *cfg_store_memory_new(void);
/* A file replaced atomically (write a temporary, fsync, rename, fsync the
 * directory); its ETag is a counter kept in the file. A kill -9 at any
 * point leaves either the old or the new document. NULL with *st set when
 * the directory cannot be used. */
cfg_store *cfg_store_file_new(const char *path, mt_status *st);
/* "memory", "file:PATH", or an Azure connection string (the document is
 * one entity of table `mtablestate`, created when missing; the CAS is an
 * If-Match on its ETag). NULL with *st set on a bad spec or an unreachable
 * table. */
cfg_store *cfg_store_open(const char *spec, mt_status *st);

typedef struct az_client az_client;
/* Signs in the backends that a migration already ran (cfg_traces.c), for an
 * authority that found its store empty: what into what ("" when none),
 * or an error when a backend cannot be read. store_in_new: the state
 * store is the new account's state table. */
mt_status cfg_traces_find(az_client *old_c, az_client *new_c, bool store_in_new, char *what,
                          size_t cap);

/* ------------------------------------------------------------------------ */
/* What the authority publishes.                                             */

typedef struct cfg_view {
    int64_t version;
    mt_phase phase;
    bool settled; /* every proxy leased at the push acknowledged it */
    int64_t lease_ms;
    /* The migration this state belongs to; "" from an authority that
     * predates identities (accepted, but then never mixed with one). */
    char migration_id[CFG_MIGRATION_ID_MAX];
    /* How many times the roles of the two accounts were swapped (a
     * migration back, `migrate --reverse`): odd means the new account
     * plays old and the old account plays new. A swap moves from
     * use_new_hide_metadata to use_old_hide_metadata of the next
     * generation, two states that read and write the same one table. */
    int64_t generation;
} cfg_view;

/* Where a state stands on the migration's single line: generation * 4 +
 * phase, so that use_new_hide_metadata of one generation and
 * use_old_hide_metadata of the next stand at the same place. */
int64_t cfg_view_position(const cfg_view *v);

/* Whether a proxy that applied `have` may move to `next`, and if not, why
 * (into why, a sentence naming both states). A state only moves forward
 * within one migration: never to a lower version, never to another
 * migration's state, never to the same version with another phase or
 * generation, never to an earlier generation, never more than one phase
 * back (positions, cfg_view_position). While the proxy holds a lease,
 * never more than one phase forward either (a real authority cannot have
 * completed the step between while this proxy was leased); without one it
 * catches up as a new proxy would. The swap of roles moves by no phase at
 * all. Anything goes before the first state (have->version == 0). */
bool cfg_view_follows(const cfg_view *have, const cfg_view *next, bool leased, char *why,
                      size_t whylen);

/* What an acknowledgement carries. */
typedef struct cfg_ack {
    const char *id;
    int64_t version;
    const char *migration_id; /* NULL or "": not checked */
    const char *fingerprint;  /* NULL or "": not checked */
} cfg_ack;

/* ------------------------------------------------------------------------ */
/* The authority.                                                            */

/* Who leads, as the state document records it: several authority
 * replicas may run on one store; one leads (it beats, i.e. rewrites this
 * record, every third of its leader lease) and the others stand by, and
 * take over when the beats stop for a leader lease and a half. */
typedef struct cfg_leader_info {
    char id[CFG_ID_MAX];   /* "" when none is recorded */
    char url[CFG_URL_MAX]; /* where it serves the admin API */
    int64_t term;          /* grows by one with every takeover */
    int64_t beat;
} cfg_leader_info;

typedef struct cfg_authority cfg_authority;

typedef struct cfg_authority_opts {
    int64_t lease_ms;  /* default 10000 */
    int64_t margin_ms; /* default lease_ms / 2 */
    /* Phase of the initial state written to an empty store (default
     * use_old_hide_metadata): how an operator recovers a fleet whose state
     * store was lost, by stating the phase it is in. */
    mt_phase initial_phase;
    /* This authority's backends (see CFG_FINGERPRINT_MAX); "" or NULL: any
     * proxy's is accepted. */
    const char *fingerprint;
    /* The identity given to a new migration; NULL or "": random. */
    const char *migration_id;
    /* This replica's name and admin URL: with a name, the authority is
     * one of possibly several replicas on the store and leads only while
     * it holds the leader lease; without, it always leads. */
    const char *replica_id;
    const char *advertise_url;
    int64_t leader_ms; /* the leader lease; default lease_ms / 4 */
    /* The lease granted while nothing is in motion (phases
     * use_old_hide_metadata and use_new_hide_metadata), so that proxies
     * ride out a long authority outage there; 0: lease_ms. A push out of
     * such a phase first publishes the same phase with lease_ms leases and
     * waits until every long lease was renewed as a short one or ran out
     * (plus the margin); only then does it publish the new phase. */
    int64_t rest_lease_ms;
} cfg_authority_opts;

/* Loads the state from store (or writes the initial one: version 1 in
 * opts->initial_phase, with a new migration identity). Borrows rt and
 * store. NULL with *st set when the store cannot be read or written. */
cfg_authority *cfg_authority_new(mt_rt *rt, cfg_store *store, const cfg_authority_opts *opts,
                                 mt_status *st);
void cfg_authority_free(cfg_authority *a);
/* Whether this replica leads now, and the leader record as it last read
 * it (who to send a standby's callers to). */
bool cfg_authority_leader(cfg_authority *a, cfg_leader_info *out);

/* The leader hears from its standbys (PUT /config/v1/replicas/ID): who
 * they are and where; listed by cfg_authority_replicas while heard from
 * within the last five leader leases. */
#define CFG_REPLICAS_MAX 16
typedef struct cfg_replica_info {
    char id[CFG_ID_MAX];
    char url[CFG_URL_MAX];
    int64_t since_ms; /* since it was last heard from */
} cfg_replica_info;
void cfg_authority_replica_seen(cfg_authority *a, const char *id, const char *url);
size_t cfg_authority_replicas(cfg_authority *a, cfg_replica_info *out, size_t cap);

/* Ends every wait in progress (a push waiting for the fleet, a long poll)
 * at once, for shutting down; the authority answers nothing new after. */
void cfg_authority_close(cfg_authority *a);

/* The configuration service this process's own operations and its
 * migrator use: subscribe/unsubscribe are local, push is cfg_authority_push.
 * Borrowed; valid until cfg_authority_free. */
mt_config_service *cfg_authority_service(cfg_authority *a);

/* Makes phase the next version: durable, then visible, then waits as the
 * opening comment says. 409 PhaseConflict when the store changed behind
 * this authority (another replica pushed; the state is reloaded). */
mt_status cfg_authority_push(cfg_authority *a, mt_phase phase);

/* Like cfg_authority_push, but the version it publishes is never marked
 * settled: it returns once every proxy has applied the phase (or lost its
 * lease) as not settled, and stays so until the next push. For a step back
 * from prefer_old: a prefer_old proxy that does not know its phase settled
 * switches no partition (it cannot know that no phase-0 proxy is left). */
mt_status cfg_authority_push_held(cfg_authority *a, mt_phase phase);

/* The swap of roles, from use_new_hide_metadata: publishes
 * use_old_hide_metadata of the next generation (the current new account
 * plays old from now on) and waits as a push does. 409
 * PhaseTransitionNotAllowed from any other phase. */
mt_status cfg_authority_push_swap(cfg_authority *a);
/* The current generation (cfg_view.generation). */
int64_t cfg_authority_generation(cfg_authority *a);

/* Settles the current version once nothing is pending (the grace period
 * after start is over, no push running): call it now and then, so that a
 * restarted authority settles without a push. Cheap. */
void cfg_authority_tick(cfg_authority *a);

/* The long poll: returns at once when the published version differs from
 * `after`, or when it equals it, is settled, and the caller does not know
 * that yet (known_settled false); otherwise waits up to wait_ms for either. */
void cfg_authority_poll(cfg_authority *a, int64_t after, bool known_settled, int64_t wait_ms,
                        cfg_view *out);

/* An acknowledgement (and lease renewal): 204 when version is the
 * published one (the lease runs lease_ms from now); 409
 * StaleConfigVersion (no lease) when it is not; 409 MigrationMismatch
 * when it names another migration; 409 FingerprintMismatch when the
 * proxy's backends are not this authority's (the proxy is remembered as
 * mismatched and blocks pushes while it keeps calling); 400 on a bad id. */
mt_status cfg_authority_ack(cfg_authority *a, const cfg_ack *ack);

/* Proxy id gives its lease back (it stopped serving): pushes stop waiting
 * for it at once. Unknown ids are fine. */
void cfg_authority_release(cfg_authority *a, const char *id);

/* The current migration's identity (borrowed; changes only when the state
 * is reloaded from a store another authority replaced). */
void cfg_authority_migration_id(cfg_authority *a, char out[CFG_MIGRATION_ID_MAX]);

typedef struct cfg_proxy_info {
    char id[CFG_ID_MAX];
    int64_t acked_version;
    int64_t since_ack_ms;  /* since its last accepted acknowledgement */
    int64_t lease_left_ms; /* <= 0: expired */
    bool mismatched;       /* its backends are not the authority's */
    bool awaited;          /* the push under way waits for its acknowledgement or its lease's end */
    char fingerprint[CFG_FINGERPRINT_MAX];
} cfg_proxy_info;

/* Proxies seen since start, most recent first; fills up to cap, returns
 * how many there are. Proxies expired for over ten lease times are
 * forgotten. */
size_t cfg_authority_proxies(cfg_authority *a, cfg_proxy_info *out, size_t cap);

/* The migrator's own part of the state document (a JSON object as text, or
 * NULL), kept across restarts. load: the caller frees *json. */
mt_status cfg_authority_load_migration(cfg_authority *a, char **json);
mt_status cfg_authority_save_migration(cfg_authority *a, const char *json);

/* ------------------------------------------------------------------------ */
/* The client.                                                               */

/* How a client reaches the authority: HTTP in production (cfg_http.c), direct
 * calls with faults in the tester. Each returns an error status when the
 * authority could not be reached or answered badly. */
typedef struct cfg_transport {
    mt_status (*get_state)(void *ctx, int64_t after, bool known_settled, int64_t wait_ms,
                           cfg_view *out);
    /* ok (204), 409 StaleConfigVersion / MigrationMismatch /
     * FingerprintMismatch, or an error. */
    mt_status (*ack)(void *ctx, const cfg_ack *ack);
    /* Gives the lease of proxy id back; may be NULL. */
    mt_status (*release)(void *ctx, const char *id);
    void *ctx;
} cfg_transport;

/* The configuration endpoint's documents, both ends (cfg_api.c). Each
 * writer returns malloc'd text (NULL on out of memory); each reader takes
 * text that need not be NUL-terminated. */
/* The answer to GET /config/v1/state. */
char *cfg_view_json(const cfg_view *v);
/* Reads it; 502 AuthorityError when it is not one, and *out is then
 * untouched. */
mt_status cfg_view_parse(const char *text, size_t len, cfg_view *out);
/* The body of PUT /config/v1/acks/ID: {"config_version": N} with optional
 * "migration_id" and "fingerprint" strings. */
char *cfg_ack_json(const cfg_ack *ack);
typedef struct cfg_ack_doc {
    int64_t version;
    char migration_id[CFG_MIGRATION_ID_MAX]; /* "": not given */
    char fingerprint[CFG_FINGERPRINT_MAX];   /* "": not given */
} cfg_ack_doc;
/* 400 InvalidInput when the body is not one; *out is then untouched. */
mt_status cfg_ack_parse(const char *body, size_t len, cfg_ack_doc *out);
/* The body of PUT /config/v1/replicas/ID: {"url": URL}. */
char *cfg_replica_json(const char *url);
/* 400 InvalidInput (and url "") unless the body names a non-empty URL
 * that fits. */
mt_status cfg_replica_parse(const char *body, size_t len, char url[CFG_URL_MAX]);

/* The HTTP transport: GET ENDPOINT/config/v1/state and PUT
 * ENDPOINT/config/v1/acks/ID, with `Authorization: Bearer token` when token
 * is non-empty. endpoint may list replicas, comma-separated (up to 8); a
 * call that fails moves to the next. One caller at a time (the client's
 * thread). NULL on out of memory or an empty list. */
typedef struct cfg_http cfg_http;
cfg_http *cfg_http_new(const char *endpoint, const char *token);
void cfg_http_free(cfg_http *h);
/* PEM CA certificates that an https:// endpoint must chain to (NULL or "":
 * the system's); false on out of memory. A verification that fails is
 * 503 CFG_ERR_AUTHORITY_TLS, naming the URL and the TLS library's reason. */
#define CFG_ERR_AUTHORITY_TLS "AuthorityTlsError"
bool cfg_http_set_ca(cfg_http *h, const char *ca_file);
/* Makes the call in progress (a long poll) and every later one fail at
 * once; for shutting down. Safe from any thread. */
void cfg_http_stop(cfg_http *h);
cfg_transport cfg_http_transport(cfg_http *h);
/* A standby replica tells the leader at h's endpoint that it stands by:
 * PUT ENDPOINT/config/v1/replicas/ID {"url": URL}. */
mt_status cfg_http_announce(cfg_http *h, const char *id, const char *url);

typedef struct cfg_client cfg_client;

enum { CFG_LOG_ERROR, CFG_LOG_WARN, CFG_LOG_INFO };

typedef struct cfg_client_opts {
    const char *id;          /* this proxy's name */
    const char *fingerprint; /* its backends; NULL or "": none sent */
    /* Control-plane events (a phase applied, a lease lost or regained, the
     * authority unreachable or refusing us, a state refused), one sentence
     * each; called from the client's thread; may be NULL. */
    void (*log)(void *ctx, int level, const char *msg);
    void *log_ctx;
} cfg_client_opts;

/* A client; starts its thread, which fetches, acknowledges and renews
 * until cfg_client_free. Until its first lease it serves nothing. Borrows
 * rt and the transport's ctx. NULL on out of memory. */
cfg_client *cfg_client_new(mt_rt *rt, const cfg_transport *tr, const cfg_client_opts *o);
/* Stops the thread, drops the lease and gives it back to the authority
 * (one try): call once nothing is served any more. Idempotent; also done
 * by cfg_client_free (which does not give the lease back). */
void cfg_client_release(cfg_client *c);
void cfg_client_free(cfg_client *c);

/* The configuration service this proxy's operations use. Borrowed. */
mt_config_service *cfg_client_service(cfg_client *c);

/* Whether the proxy may reach its backends now (it holds a live lease). */
bool cfg_client_lease_valid(cfg_client *c);

typedef struct cfg_client_info {
    int64_t version; /* applied, 0 before the first fetch */
    mt_phase phase;
    bool leased;
    int64_t lease_left_ms;
    int64_t acked_version;
    int64_t failures; /* consecutive failed calls to the authority */
    char last_error[256];
    /* Why the last state the authority offered was refused ("" if none
     * was, or a later one was applied). */
    char refused[512];
    char migration_id[CFG_MIGRATION_ID_MAX];
} cfg_client_info;
void cfg_client_info_get(cfg_client *c, cfg_client_info *out);

/* A backend table that refuses every call with 503 ServerBusy while
 * valid(ctx) is false: what keeps a proxy without a lease off its backends.
 * Borrows inner. */
mt_table *cfg_guard_new(mt_table *inner, bool (*valid)(void *ctx), void *ctx);
/* The same in front of an authority replica's tables, valid while it
 * leads: refusals are 503 NotLeader, which the migrator does not repeat. */
mt_table *cfg_guard_leader_new(mt_table *inner, bool (*valid)(void *ctx), void *ctx);

#endif

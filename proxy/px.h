/*
 * px.h -- the proxy daemon's internal contract.
 *
 * The proxy is one process serving two listeners: the table endpoint that
 * applications' SDKs talk to, and the admin endpoint operators use. A table
 * request runs parse -> authenticate -> route -> one core call (through the
 * table's MigratingTable) -> serialize. The core is blocking, so each
 * connection is served on its own thread, up to a configured cap.
 *
 * What it must never do: crash or leak on bad input, answer a request it
 * could not authenticate, or reach a backend table except through the core.
 */
#ifndef PX_H
#define PX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "az.h"
#include "az_client.h"
#include "cfg.h"
#include "cfg_migrate.h"
#include "mt.h"
#include "px_log.h"
#include "px_pagecache.h"
#include "px_reply.h"

#define PX_MAX_BODY (4u * 1024 * 1024)
#define PX_DEFAULT_VERSION "2019-02-02"

/* ------------------------------------------------------------------------ */
/* --table-map: tables the migration renames (px_tablemap.c).               */

#define PX_TABLE_MAP_MAX 32

/* Applications use app[i] (the old account's name); the new account holds
 * it as new_name[i]. */
typedef struct px_table_map {
    size_t n;
    char app[PX_TABLE_MAP_MAX][64];
    char new_name[PX_TABLE_MAP_MAX][64];
} px_table_map;

/* Parses "OLD=NEW[,OLD=NEW...]" ("": no renames); false with the reason in
 * why (may be NULL) on a bad name, a name mapped twice, two names mapped to
 * one, or more than PX_TABLE_MAP_MAX entries. */
bool px_table_map_parse(const char *text, px_table_map *m, char *why, size_t cap);
/* The new account's name for application table name (itself when not
 * mapped). m may be NULL: no renames. */
const char *px_table_map_to_new(const px_table_map *m, const char *name);
/* The application's name for the new account's table name; NULL when that
 * table is none of the application's (it bears a mapped application name,
 * whose data lives under the mapped name). */
const char *px_table_map_from_new(const px_table_map *m, const char *name);
/* The map as "old=new,..." sorted and lower-cased (for the fingerprint). */
void px_table_map_text(const px_table_map *m, mt_buf *b);
/* inner as applications see it: names translated by map (NULL: none) on
 * the way in and out, names no application table has left out of lists,
 * and the state table (CFG_STATE_TABLE) neither listed, created, opened
 * nor deleted. Borrows inner and map; NULL when out of memory. */
mt_account *px_table_map_account(mt_account *inner, const px_table_map *map);

/* ------------------------------------------------------------------------ */
/* Settings: flags, each also an environment variable (px_config.c).        */

typedef struct px_settings {
    char listen_host[128];
    int listen_port;
    char admin_host[128];
    int admin_port;
    char account[64];
    char account_key[256]; /* base64, as given */
    uint8_t key[128];      /* decoded */
    size_t key_len;
    char old_spec[1024];
    char new_spec[1024];
    char backend_ca[1024]; /* "": the system's CA bundle */
    char tls_cert[1024];   /* "": the table endpoint serves http */
    char tls_key[1024];
    char jwks[1024]; /* "": no bearer tokens */
    char token_issuer[512];
    char token_roles[1024];
    char admin_token[256];
    char proxy_id[128];
    char log_level[16];
    char log_format[8];        /* "text" or "json" */
    char config_endpoint[512]; /* "": this process is the authority */
    char state_store[1024];    /* authority only; "": chosen from the backends */
    int lease_ms;              /* authority only */
    char replica_id[128];      /* authority only: this replica's name */
    char advertise_url[512];   /* authority only: its admin URL for the others */
    int rest_lease_ms;         /* authority only: the lease in phases 0 and 4 */
    bool recover;              /* authority: --recover-phase was given */
    mt_phase recover_phase;
    int copy_parallel;
    int copy_rate; /* rows a second, 0: unlimited */
    int max_connections;
    px_table_map table_map;    /* --table-map */
    int slow_backend_ms;       /* a backend call this slow is logged; 0: never */
    char admin_tls_cert[1024]; /* "": the admin endpoint speaks plain HTTP */
    char admin_tls_key[1024];
    char config_ca[1024]; /* sidecar: CAs for an https:// --config-endpoint */
} px_settings;

/* The backends' fingerprint (endpoints, accounts and the table map, never
 * keys) as a
 * short hash in out, and as readable text in text (may be NULL). */
void px_settings_fingerprint(const px_settings *s, char out[CFG_FINGERPRINT_MAX], char *text,
                             size_t text_cap);
/* Where the authority keeps its state when --state-store is not given: the
 * new account's table when a backend is in Azure (a restart must find the
 * migration again), memory when both are. */
const char *px_settings_state_store(const px_settings *s);

/* Fills s from defaults, then the environment, then argv. Returns 0 to run,
 * 1 when --help or --version was printed, 2 on a bad flag (message on err). */
int px_settings_load(px_settings *s, int argc, char **argv, FILE *out, FILE *err);
void px_settings_usage(FILE *out);

/* ------------------------------------------------------------------------ */
/* The account's tables (px_tables.c).                                       */

typedef struct px_registry px_registry;
typedef struct px_table px_table;

/* A side's backend: an account (an Azure Table account or the embedded
 * memory account; the registry borrows it) and its renames. */
typedef struct px_backend {
    mt_account *account;
    const char *label;       /* "old" or "new" */
    const px_table_map *map; /* the new side's renames; NULL: none */
} px_backend;

/* Keeps a proxy without a lease off its backends (cfg_guard_new). */
typedef struct px_guard {
    bool (*valid)(void *ctx); /* NULL: no guard */
    void *ctx;
    bool leader; /* an authority replica's leadership, not a lease */
} px_guard;

/* The registry starts with the union of both accounts' tables; *st
 * reports a backend that could not be listed. guard may be NULL. */
typedef struct px_metrics px_metrics;
px_registry *px_registry_new(mt_rt *rt, mt_config_service *cfg, px_backend old_b,
                             px_backend new_b, const px_guard *guard, px_metrics *metrics,
                             mt_status *st);
void px_registry_free(px_registry *r);

/* Creates name in both accounts: ok when either made it, else 409
 * TableAlreadyExists; 400 InvalidResourceName on a bad name. */
mt_status px_table_create(px_registry *r, const char *name);
/* Deletes application table name from one account only, side 0 (old) or 1
 * (new): the one playing old, for the cleanup's --old-after delete; the
 * registry keeps it, its data being in the other. 404 TableNotFound when
 * that account has no such table. */
mt_status px_table_delete_old(px_registry *r, const char *name, int side);
/* Creates table name of account side (0 old, 1 new) again after
 * px_table_delete_old, only while the other account still holds it: 404
 * TableNotFound when it does not; ok when it exists already. */
mt_status px_table_recreate_old(px_registry *r, const char *name, int side);
/* Deletes name from both accounts; 404 ResourceNotFound when neither
 * holds it. */
mt_status px_table_delete(px_registry *r, const char *name);
/* A reference to the table (NULL and 404 TableNotFound when absent); the
 * caller releases it. */
px_table *px_table_get(px_registry *r, const char *name, mt_status *st);
void px_table_release(px_registry *r, px_table *t);
mt_table *px_table_view(px_table *t);     /* the MigratingTable */
const char *px_table_name(px_table *t);   /* as created */
px_pagecache *px_table_pages(px_table *t); /* kept answers; may be NULL */
az_acl px_table_acl(px_registry *r, px_table *t);
void px_table_set_acl(px_registry *r, px_table *t, const az_acl *acl);
void px_names_free(char **names, size_t n);
mt_table_pair px_table_backends(px_table *t);
/* The tables the accounts hold now (the union of both accounts' lists, as
 * applications name them), sorted case-insensitively, for px_names_free.
 * NULL with *st when a backend cannot be listed. */
char **px_account_tables(px_registry *r, size_t *n, mt_status *st);
/* A reference to each named table (release each, then free the array):
 * the registry's, or for a name it does not hold a detached table over the
 * same backend tables (whose calls answer 404 TableNotFound when the table
 * was deleted). NULL when out of memory. */
px_table **px_tables_named(px_registry *r, char *const *names, size_t n);

/* ------------------------------------------------------------------------ */
/* The migrator's current rate and stall (px_rate.c): pure, on times the    */
/* caller passes in (monotonic ms).                                          */

#define PX_RATE_WINDOW_MS 10000 /* the rate is over this much recent time */
#define PX_RATE_SPACING_MS 250  /* samples closer than this replace the newest */
#define PX_RATE_SAMPLES 64      /* kept: 16 s at the closest spacing */
#define PX_STALL_MS 30000       /* no move for this long: stalled */

typedef struct px_rate {
    int64_t t[PX_RATE_SAMPLES], v[PX_RATE_SAMPLES]; /* a ring of samples */
    size_t head, n;                                 /* newest at head; n kept */
    int64_t moved_ms;                               /* when the value last changed */
} px_rate;

/* Starts over from one sample (a new step; the counter need not be 0). */
void px_rate_reset(px_rate *r, int64_t now_ms, int64_t value);
/* The counter is `value` at now_ms. */
void px_rate_note(px_rate *r, int64_t now_ms, int64_t value);
/* Per second over the last PX_RATE_WINDOW_MS up to now (0 with one sample). */
double px_rate_per_second(const px_rate *r, int64_t now_ms);
/* How long the counter has not moved; stalled once that is PX_STALL_MS. */
int64_t px_rate_still_ms(const px_rate *r, int64_t now_ms);
bool px_rate_stalled(const px_rate *r, int64_t now_ms);

/* ------------------------------------------------------------------------ */
/* The application state shared by both listeners.                           */

typedef struct px_app {
    px_settings settings;
    struct px_entra *entra; /* bearer tokens on the table endpoint, or NULL */
    struct px_watch *watch; /* backend calls running too long */
    mt_rt *rt;
    mt_config_service *cfg; /* the authority's or the client's */
    px_registry *reg;
    az_client *old_client; /* NULL: memory */
    az_client *new_client;
    mt_account *old_account; /* over old_client, or the memory account */
    mt_account *new_account;
    px_metrics *metrics;

    /* Exactly one of these two sides is set. */
    cfg_store *store; /* the authority: its state store and itself */
    cfg_authority *auth;
    cfg_http *http; /* a proxy of a remote authority: its transport and client */
    cfg_client *client;
    pthread_t ticker;
    bool ticker_started;
    pthread_t announcer; /* a replica: tells the leader it stands by */
    bool announcer_started;
    volatile bool stopping;
    volatile bool draining; /* stopping: not ready, new requests 503 */
    volatile bool up;       /* px_app_new is done: leadership may move the migrator */

    cfg_migrate *mig; /* the authority's migration run */

    pthread_mutex_t mu;               /* guards the rate */
    px_rate mig_rate;                 /* the moving step's counter (copy or cleanup) */
    cfg_migration_state mig_rate_for; /* the step mig_rate follows */
    char *service_properties;         /* XML */
    az_cors cors;                     /* its CORS rules, as preflights read them */
    mt_subscription *phase_sub;       /* keeps `phase` up to date */
    int phase;                        /* the applied phase, read lock-free (__atomic) */
    time_t started;
} px_app;

/* NULL with a one-line message on err when something cannot start (a
 * backend, the state store, the configuration endpoint's URL). */
px_app *px_app_new(const px_settings *s, FILE *err);
void px_app_free(px_app *app);
mt_config px_app_config(px_app *app);
/* The phase this proxy serves now, without a subscription or a lock: for
 * labels, where being a push late is harmless. */
mt_phase px_app_phase(px_app *app);
/* Whether table requests may be served now: always on the authority; on a
 * proxy of a remote authority only while it holds a lease. */
bool px_app_serving(px_app *app);
/* Shutting down, step one: stop being ready; table requests answer 503
 * ServerBusy (an SDK retries them against another instance). */
void px_app_drain(px_app *app);
/* Step two, once no request is in flight: give the lease back, so the
 * next push does not wait for it. */
void px_app_release(px_app *app);

/* Metrics (px_metrics.c): counters the admin endpoint renders. */
px_metrics *px_metrics_new(void);
void px_metrics_free(px_metrics *m);
/* Backend calls that take ms or longer are logged at warn (0: none);
 * 5000 until set. */
void px_metrics_set_slow_ms(px_metrics *m, int ms);

/* Backend calls in flight (px_watch.c): a thread that logs, while it still
 * runs, each backend call that has run for slow_ms (NULL when slow_ms is
 * 0 or the thread cannot start). The decorator of px_metrics_table marks
 * its calls; without a watcher that costs one load. */
typedef struct px_watch px_watch;
px_watch *px_watch_start(int slow_ms);
void px_watch_stop(px_watch *w);
/* side and call: static strings; start_ns: the call's px_now_ns(). */
void px_watch_call_begin(const char *side, const char *call, uint64_t start_ns);
void px_watch_call_end(void);
/* One table-endpoint request: operation label (e.g. "insert"), status, the
 * phase it was served in and how long it took. */
void px_metrics_request(px_metrics *m, const char *op, int status, mt_phase phase,
                        uint64_t duration_ns);
/* Requests counted so far, and those among them answered 400 or more: the
 * sums of the request series, which /admin/v1/status reports. */
void px_metrics_totals(px_metrics *m, uint64_t *requests, uint64_t *failed);
/* A backend table that counts calls and their latency per side. Borrows
 * inner. */
mt_table *px_metrics_table(px_metrics *m, mt_table *inner, int side);
/* The last backend error (status >= 500) a counted table met, as
 * "<side>: <http> <code>: <message>", or "" when none. */
void px_metrics_last_error(px_metrics *m, char *out, size_t cap);
/* Appends the Prometheus text of the counters. */
void px_metrics_render(px_metrics *m, mt_buf *out);

/* Handlers. */
void px_handle_tables(px_req *q, px_resp *r); /* Tables, Tables('x') */
void px_handle_table_acl(px_req *q, px_resp *r);
void px_handle_service(px_req *q, px_resp *r);
void px_handle_entities(px_req *q, px_resp *r); /* t(), t(PK,RK) */
void px_handle_batch(px_req *q, px_resp *r);

/* Runs one entity write (Insert, Update, Merge, Delete, upserts) described
 * by method/headers/body against table t; shared by the single-request
 * path and $batch. Fills w for the caller to execute. */
typedef struct px_write {
    mt_op op;
    mt_entity *entity; /* owned */
    char if_match[MT_ETAG_MAX];
    bool return_content; /* Insert: echo the entity (no Prefer header) */
    bool is_insert;
} px_write;
mt_status px_write_prepare(const char *method, const char *x_http_method, const char *if_match,
                           const char *prefer, const char *content_type, const az_resource *res,
                           const char *body, size_t len, px_write *w);
void px_write_clear(px_write *w);
/* The SAS permissions w needs (AZ_PERM_*; upserts need add and update). */
unsigned px_write_perm(const px_write *w);
/* Fills a successful write's response (status, ETag, body for inserts). */
void px_write_respond(const px_req *q, const px_write *w, const mt_op_result *res, px_resp *r);

/* Starts both listeners; returns false (with a message on err) when a port
 * cannot be bound. px_serve_stop stops them. */
/* The admin and configuration listener (px_admin_http.c): event-driven,
 * so that thousands of sidecars' long polls cost no thread each; calls
 * that may block (a push, a verify) run on a thread of their own. */
typedef struct px_admin_http px_admin_http;
px_admin_http *px_admin_http_start(px_app *app, FILE *err);
void px_admin_http_stop(px_admin_http *h);

/* For px_admin_http.c: the configuration endpoint's long poll. When query
 * is a well-formed GET /config/v1/state that has nothing new to say yet,
 * true with what it waits for; false when it can be answered at once. */
bool px_admin_state_waits(px_app *app, const char *query, int64_t *after, bool *known_settled,
                          int64_t *wait_ms);
/* The state as it is now, as GET /config/v1/state answers it. */
void px_admin_state_now(px_app *app, px_resp *r);
/* Whether an admin call may block for long (a push, a migration, a
 * verify) and so must not run on the listener's own threads. */
bool px_admin_call_blocks(const char *method, const char *url);
/* Whether authorization (the header, or NULL) may make admin calls. */
bool px_admin_authorized(const px_app *app, const char *authorization);

typedef struct px_servers px_servers;
px_servers *px_serve_start(px_app *app, FILE *err);
void px_serve_stop(px_servers *s);

/* The admin listener's request handler (px_admin.c). */
void px_admin_handle(px_app *app, const char *method, const char *url, const char *query,
                     const char *body, size_t len, const char *authorization, px_resp *r);

#endif

/*
 * az_client.h -- a backend table that talks to a real Azure Table endpoint
 * (Azure, or Azurite in tests) over libcurl, and the connection strings
 * that name such an endpoint.
 *
 * az_table_open returns an mt_table: the same contract as the in-memory
 * table (core/mt.h), so the MigratingTable runs over it unchanged. The
 * client pages, batches, signs (Shared Key, or a SAS appended to every
 * URL), reuses connections, and retries only what is safe to retry; the
 * rules, and where the service's guarantees are weaker than mt.h asks
 * (atomic reads across pages, DeleteIfExists inside a batch), are written
 * at the top of az_client.c and az_client_http.c.
 *
 * What it must never do: print, log or put into a status message an
 * account key or a SAS signature; replay a write whose first attempt may
 * have applied unless the replay can apply at most once; turn a transport
 * failure into a success.
 *
 * Threads: an az_client and its tables may be used from many threads at
 * once; a stream belongs to one thread at a time.
 *
 * Ownership: as in az.h -- returned pointers are the caller's and say how
 * to free them; pointer arguments are borrowed for the call.
 */
#ifndef AZ_CLIENT_H
#define AZ_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt.h"

/* ------------------------------------------------------------------------ */
/* Connection strings (az_connstr.c).                                        */

/* The development account every emulator knows (UseDevelopmentStorage). */
#define AZ_DEV_ACCOUNT "devstoreaccount1"
#define AZ_DEV_KEY                                                                                 \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define AZ_DEV_TABLE_PORT 10002

/* How a client gets Microsoft Entra ID tokens (az_token.c). */
typedef enum az_cred_kind {
    AZ_CRED_NONE = 0,      /* Shared Key or SAS */
    AZ_CRED_CLIENT_SECRET, /* a service principal and its secret */
    AZ_CRED_WORKLOAD,      /* a federated token file (workload identity) */
    AZ_CRED_MANAGED,       /* the host's managed identity */
} az_cred_kind;

/* A token credential, resolved from the connection string and the
 * environment variables the Azure SDKs read. Strings are NULL when unset. */
typedef struct az_cred {
    az_cred_kind kind;
    char *tenant_id;
    char *client_id; /* optional for a managed identity (a user-assigned one) */
    char *client_secret;
    char *token_file;        /* workload identity: the federated token */
    char *authority_host;    /* default https://login.microsoftonline.com */
    char *identity_endpoint; /* managed identity: default IMDS, or IDENTITY_ENDPOINT */
    char *identity_header;   /* managed identity: IDENTITY_HEADER (App Service) */
} az_cred;

/* What a connection string says, resolved: the table endpoint and one way
 * to authenticate (a key, a SAS or a token credential). */
typedef struct az_connstr {
    char *endpoint; /* table service root without a trailing slash, e.g.
                       "https://acct.table.core.windows.net" or
                       "http://127.0.0.1:10002/devstoreaccount1" */
    char *account;  /* NULL only with a SAS and an explicit TableEndpoint */
    uint8_t *key;   /* decoded AccountKey; NULL with a SAS */
    size_t key_len;
    char *sas;        /* SAS query without '?'; NULL with a key */
    char *table;      /* our ";TableName=..." extension; NULL when absent */
    bool dev_storage; /* UseDevelopmentStorage=true */
    az_cred cred;     /* kind AZ_CRED_NONE with a key or a SAS */
} az_connstr;

/* Parses a connection string as Azure defines it (DefaultEndpointsProtocol,
 * AccountName, AccountKey, TableEndpoint, EndpointSuffix,
 * SharedAccessSignature, UseDevelopmentStorage, DevelopmentStorageProxyUri;
 * BlobEndpoint, QueueEndpoint, FileEndpoint and the *SecondaryEndpoint
 * settings are accepted and ignored) plus TableName, and the Entra ID
 * settings Credential (ClientSecret, WorkloadIdentity, ManagedIdentity),
 * TenantId, ClientId, ClientSecret, FederatedTokenFile, AuthorityHost and
 * IdentityEndpoint; a token credential takes what the string leaves unset
 * from AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
 * AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST, IDENTITY_ENDPOINT and
 * IDENTITY_HEADER, as the Azure SDKs do. Setting names are
 * case-insensitive. On failure *out is empty and the status is 400
 * InvalidInput with a message naming the offending setting -- never its
 * value when that value is a secret. */
mt_status az_connstr_parse(const char *s, az_connstr *out);
/* Frees what *cs owns (wiping the key first); *cs is empty afterwards. */
void az_connstr_clear(az_connstr *cs);
/* "http://127.0.0.1:10002/devstoreaccount1 (account devstoreaccount1,
 * Shared Key)" -- safe to log. The caller frees it. */
char *az_connstr_describe(const az_connstr *cs);

/* ------------------------------------------------------------------------ */
/* The client (az_client.c, az_client_wire.c, az_client_http.c).             */

/* Zero means the default for every field. */
typedef struct az_client_opts {
    long connect_timeout_ms; /* default 5000 */
    long timeout_ms;         /* one attempt, end to end; default 30000 */
    int max_attempts;        /* per request, first try included; default 4 */
    long backoff_base_ms;    /* first retry delay before jitter; default 100 */
    long backoff_max_ms;     /* cap on one delay; default 5000 */
    int page_size;           /* $top of every query, 1..1000; default none
                                (the service's 1000) */
    const char *ca_file;     /* PEM bundle for https; default az_client_set_ca_file's, else
                                the system's */
} az_client_opts;

/* The process-wide default CA bundle for https to the table service and to
 * the token endpoints (NULL: the system's). Call before any client exists;
 * the string is copied. False when out of memory. */
bool az_client_set_ca_file(const char *path);

/* Where the client reports what no caller sees: a token refresh that
 * failed (warn = true) or succeeded after a failure. Messages name the
 * endpoint and the reason, never a secret or a token. NULL: silent. Call
 * before any client exists. */
void az_client_set_log(void (*fn)(bool warn, const char *msg));

/* One small HTTP exchange outside the table protocol (az_fetch.c): GET
 * url, or POST form (application/x-www-form-urlencoded) when form is set,
 * with one extra header line ("Name: value") when header is set; https is
 * verified against ca_file (NULL: the system's CAs). */
typedef struct az_fetch_req {
    const char *url;
    const char *form;
    const char *header;
    const char *ca_file;
    long timeout_ms;
    size_t max; /* a longer body fails the exchange */
} az_fetch_req;
/* The answer's status in *status and its body appended to body; false
 * with the reason in why when no answer came (the transport failed, the
 * body was too long, out of memory). No retries. */
bool az_fetch(const az_fetch_req *q, long *status, mt_buf *body, char *why, size_t cap);

/* One account endpoint: credentials, options, and a pool of reusable
 * connections shared by its tables. */
typedef struct az_client az_client;

/* Returns a new client (no network traffic yet), or NULL with *st set.
 * opts may be NULL. Free it with az_client_free after every table opened
 * on it is destroyed. */
az_client *az_client_new(const az_connstr *cs, const az_client_opts *opts, mt_status *st);
void az_client_free(az_client *c);

/* A backend table named table on c. Borrows c, which must outlive it.
 * Does not check that the table exists: the first call fails with 404
 * TableNotFound if it does not. Destroy with mt_table_destroy. NULL with
 * *st set (400 InvalidResourceName) on a bad name. */
mt_table *az_client_table(az_client *c, const char *table, mt_status *st);

/* The same over a client of its own, which mt_table_destroy frees; table
 * NULL means the connection string's TableName. */
mt_table *az_table_open(const az_connstr *cs, const char *table, const az_client_opts *opts,
                        mt_status *st);

/* The client behind a table from az_client_table / az_table_open
 * (borrowed), or NULL when t is some other kind of table. */
az_client *az_table_client(mt_table *t);

/* Table-level operations. */

/* Creates table unless it exists; *created (may be NULL) says which. A
 * 409 TableAlreadyExists that follows an attempt with an unknown outcome
 * counts as created: that attempt most likely made it. */
mt_status az_client_table_create(az_client *c, const char *table, bool *created);
/* Deletes table; 404 ResourceNotFound when there is none. */
mt_status az_client_table_delete(az_client *c, const char *table);
/* Every table of the account, following continuations. On success *names
 * holds *n strings; free them with az_client_tables_free. */
mt_status az_client_tables_list(az_client *c, char ***names, size_t *n);
void az_client_tables_free(char **names, size_t n);

/* The account behind c as an mt_account (az_account.c): open is
 * az_client_table, create answers 409 TableAlreadyExists for a table that
 * existed, delete 404 for one that does not. Borrows c, which must outlive
 * it; NULL when out of memory. Destroy with mt_account_destroy. */
mt_account *az_client_account(az_client *c);

#endif

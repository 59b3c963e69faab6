/*
 * cfg_store_table.c -- the state store in an Azure table, and
 * cfg_store_open, which picks a store from its spec.
 *
 * The document is the String property Document of one entity (PartitionKey
 * "mtable", RowKey "state") of table mtablestate, created when missing. The
 * compare-and-swap is the service's own: the first write is an Insert, which
 * fails with 409 when someone wrote first; every later one is a Replace with
 * If-Match on the ETag the caller read, which fails with 412 (or 404, when
 * the entity was deleted) when anyone wrote since. All of these become 412
 * ConditionNotMet, the one answer of the store contract for "the state
 * changed". A write whose outcome az_client could not learn stays 500
 * OperationTimedOut (it never replays an Insert blindly, see
 * az_client_http.c), and the caller must load again before it decides.
 *
 * Documents are kept to 32 KiB: a String property holds 64 KiB of UTF-16,
 * which is at least 32 KiB of UTF-8 whatever the text, and one property
 * spares us framing a document split over several.
 *
 * What it must never do: put an account key or a SAS into a message or into
 * describe(), or report a write done that the service did not acknowledge.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "az_client.h"
#include "cfg.h"

#define CFG_ERR_CONDITION "ConditionNotMet"
#define CFG_TABLE_NAME CFG_STATE_TABLE
#define CFG_TABLE_PK "mtable"
#define CFG_TABLE_RK "state"
#define CFG_TABLE_PROP "Document"
#define CFG_TABLE_DOC_MAX ((size_t)32 << 10)

typedef struct cfg_table_store {
    cfg_store base;
    az_client *client;
    mt_table *table;
    char *desc; /* "table mtablestate at <endpoint (account, auth)>" */
} cfg_table_store;

static mt_status cfg_table_oom(void)
{
    return mt_error(500, MT_ERR_INTERNAL, "out of memory");
}

/* The service's status, with the store named in front of its message. */
static mt_status cfg_table_fail(const cfg_table_store *t, mt_status st)
{
    return mt_error(st.http, st.code, "%s: %s", t->desc, st.message);
}

static mt_status cfg_table_load(cfg_store *s, char **doc, char etag[CFG_ETAG_MAX])
{
    cfg_table_store *t = (cfg_table_store *)s;
    mt_entity *e = NULL;
    *doc = NULL;
    etag[0] = '\0';
    mt_status st = t->table->ops->retrieve(t->table, CFG_TABLE_PK, CFG_TABLE_RK, &e);
    if (st.http == 404 && strcmp(st.code, MT_ERR_NOT_FOUND) == 0)
        return mt_ok(); /* nothing stored yet (a missing table is TableNotFound) */
    if (!mt_is_ok(&st))
        return cfg_table_fail(t, st);
    const mt_value *v = mt_entity_get(e, CFG_TABLE_PROP);
    if (!v || v->type != MT_EDM_STRING)
        st = mt_error(500, MT_ERR_INTERNAL, "%s: the state entity has no String property %s",
                      t->desc, CFG_TABLE_PROP);
    else if (!e->etag || !e->etag[0] || strlen(e->etag) >= CFG_ETAG_MAX)
        st = mt_error(500, MT_ERR_INTERNAL, "%s: the state entity came without a usable ETag",
                      t->desc);
    else if (!(*doc = strndup(v->u.bytes.ptr, v->u.bytes.len)))
        st = cfg_table_oom();
    else
        snprintf(etag, CFG_ETAG_MAX, "%s", e->etag);
    mt_entity_free(e);
    return st;
}

/* What a refused write means for the caller: 412 when the state changed. */
static mt_status cfg_table_refused(const cfg_table_store *t, mt_status st, bool insert,
                                   const char *expected)
{
    bool changed =
        insert ? st.http == 409 && strcmp(st.code, MT_ERR_ENTITY_EXISTS) == 0
               : st.http == 412 || (st.http == 404 && strcmp(st.code, MT_ERR_NOT_FOUND) == 0);
    if (!changed)
        return cfg_table_fail(t, st);
    return mt_error(412, CFG_ERR_CONDITION, "%s: the state changed (expected ETag '%s')", t->desc,
                    expected);
}

static mt_status cfg_table_cas(cfg_store *s, const char *doc, const char *expected,
                               char etag_out[CFG_ETAG_MAX])
{
    cfg_table_store *t = (cfg_table_store *)s;
    if (!doc)
        return mt_error(400, MT_ERR_INVALID_INPUT, "state document is missing");
    size_t len = strlen(doc);
    if (len > CFG_TABLE_DOC_MAX)
        return mt_error(413, "RequestBodyTooLarge",
                        "%s: a state document of %zu bytes exceeds the limit of %zu", t->desc, len,
                        CFG_TABLE_DOC_MAX);
    expected = expected ? expected : "";
    bool insert = expected[0] == '\0';
    mt_entity *e = mt_entity_new(CFG_TABLE_PK, CFG_TABLE_RK);
    if (!e)
        return cfg_table_oom();
    mt_value v = mt_v_strn(doc, len);
    mt_entity_set(e, CFG_TABLE_PROP, &v);
    mt_op op = {.kind = insert ? MT_OP_INSERT : MT_OP_REPLACE,
                .entity = e,
                .if_match = insert ? NULL : expected};
    mt_op_result res = {0};
    mt_status st = mt_table_batch(t->table, &op, 1, &res);
    mt_entity_free(e);
    if (!mt_is_ok(&st))
        return cfg_table_refused(t, st, insert, expected);
    if (!res.etag[0])
        return mt_error(500, MT_ERR_INTERNAL, "%s: the write was acknowledged without an ETag",
                        t->desc);
    snprintf(etag_out, CFG_ETAG_MAX, "%s", res.etag);
    return mt_ok();
}

static const char *cfg_table_describe(cfg_store *s)
{
    return ((cfg_table_store *)s)->desc;
}

static void cfg_table_destroy(cfg_store *s)
{
    cfg_table_store *t = (cfg_table_store *)s;
    if (!t)
        return;
    mt_table_destroy(t->table); /* before its client, which it borrows */
    az_client_free(t->client);
    free(t->desc);
    free(t);
}

static const cfg_store_ops cfg_table_ops = {
    .load = cfg_table_load,
    .cas = cfg_table_cas,
    .describe = cfg_table_describe,
    .destroy = cfg_table_destroy,
};

/* The client and the description, from a parsed connection string. */
static bool cfg_table_client(cfg_table_store *t, const az_connstr *cs, mt_status *st)
{
    t->client = az_client_new(cs, NULL, st);
    if (!t->client)
        return false;
    char *where = az_connstr_describe(cs);
    size_t n = where ? strlen(where) + sizeof "table " CFG_TABLE_NAME " at " : 0;
    t->desc = where ? malloc(n) : NULL;
    if (t->desc)
        snprintf(t->desc, n, "table %s at %s", CFG_TABLE_NAME, where);
    free(where);
    if (!t->desc)
        *st = cfg_table_oom();
    return t->desc != NULL;
}

/* The table, created when missing: the one network call at opening, so an
 * unreachable or refusing service shows at start. */
static bool cfg_table_attach(cfg_table_store *t, mt_status *st)
{
    *st = az_client_table_create(t->client, CFG_TABLE_NAME, NULL);
    if (!mt_is_ok(st)) {
        *st = cfg_table_fail(t, *st);
        return false;
    }
    t->table = az_client_table(t->client, CFG_TABLE_NAME, st);
    return t->table != NULL;
}

static cfg_store *cfg_store_table_new(const char *spec, mt_status *st)
{
    az_connstr cs;
    *st = az_connstr_parse(spec, &cs);
    if (!mt_is_ok(st)) {
        /* Never echo the spec: it may hold a key. */
        *st = mt_error(400, MT_ERR_INVALID_INPUT,
                       "state store: neither 'memory', 'file:PATH' nor a valid connection "
                       "string: %s",
                       st->message);
        return NULL;
    }
    cfg_table_store *t = calloc(1, sizeof *t);
    if (!t)
        *st = cfg_table_oom();
    else
        t->base.ops = &cfg_table_ops;
    bool ok = t && cfg_table_client(t, &cs, st) && cfg_table_attach(t, st);
    az_connstr_clear(&cs);
    if (!ok) {
        cfg_table_destroy(t ? &t->base : NULL);
        return NULL;
    }
    return &t->base;
}

cfg_store *cfg_store_open(const char *spec, mt_status *st)
{
    *st = mt_ok();
    if (!spec || !spec[0]) {
        *st = mt_error(400, MT_ERR_INVALID_INPUT, "state store: empty spec");
        return NULL;
    }
    if (strcmp(spec, "memory") == 0) {
        cfg_store *s = cfg_store_memory_new();
        if (!s)
            *st = cfg_table_oom();
        return s;
    }
    if (strncmp(spec, "file:", 5) == 0)
        return cfg_store_file_new(spec + 5, st);
    return cfg_store_table_new(spec, st);
}

/*
 * cfg_api.c -- the configuration endpoint's documents, both ends: what the
 * authority answers to GET /config/v1/state and what a proxy reads from it,
 * the acknowledgement a proxy sends with PUT /config/v1/acks/ID and what
 * the authority reads from it, and a standby replica's PUT
 * /config/v1/replicas/ID. The HTTP around them (routes, queries, status
 * codes) is the proxy's and cfg_http.c's; keeping each document's writer
 * next to its reader keeps the two from drifting apart.
 *
 * Every reader takes bytes from the network: it checks each member's type
 * and range (cfg_json.h) and never trusts a length.
 */
#include "cfg.h"
#include "cfg_json.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *print_and_free(cJSON *doc)
{
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    return text;
}

char *cfg_view_json(const cfg_view *v)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "config_version", (double)v->version);
    cJSON_AddStringToObject(doc, "phase", mt_phase_name(v->phase));
    cJSON_AddNumberToObject(doc, "lease_ms", (double)v->lease_ms);
    cJSON_AddBoolToObject(doc, "settled", v->settled);
    cJSON_AddStringToObject(doc, "migration_id", v->migration_id);
    cJSON_AddNumberToObject(doc, "generation", (double)v->generation);
    return print_and_free(doc);
}

mt_status cfg_view_parse(const char *text, size_t len, cfg_view *out)
{
    cJSON *doc = cJSON_ParseWithLength(text, len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "config_version");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "phase");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(doc, "lease_ms");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, "settled");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "migration_id");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(doc, "generation");
    cfg_view got = {0};
    bool ok = cfg_json_int64(v, &got.version) && cJSON_IsString(p) &&
              mt_phase_parse(p->valuestring, &got.phase) && cfg_json_int64(l, &got.lease_ms) &&
              got.lease_ms > 0 &&
              (!m || (cJSON_IsString(m) && strlen(m->valuestring) < CFG_MIGRATION_ID_MAX)) &&
              (!g || (cfg_json_int64(g, &got.generation) && got.generation >= 0));
    got.settled = cJSON_IsTrue(s);
    if (ok && m)
        memcpy(got.migration_id, m->valuestring, strlen(m->valuestring) + 1);
    cJSON_Delete(doc);
    if (!ok)
        return mt_error(502, "AuthorityError", "the state is not a configuration document");
    *out = got;
    return mt_ok();
}

char *cfg_ack_json(const cfg_ack *ack)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "config_version", (double)ack->version);
    if (ack->migration_id && *ack->migration_id)
        cJSON_AddStringToObject(doc, "migration_id", ack->migration_id);
    if (ack->fingerprint && *ack->fingerprint)
        cJSON_AddStringToObject(doc, "fingerprint", ack->fingerprint);
    return print_and_free(doc);
}

/* The optional string member name of doc into out; false when present but
 * not a string that fits. */
static bool opt_string(const cJSON *doc, const char *name, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
    out[0] = '\0';
    if (!v)
        return true;
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap)
        return false;
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return true;
}

mt_status cfg_ack_parse(const char *body, size_t len, cfg_ack_doc *out)
{
    cJSON *doc = cJSON_ParseWithLength(body, len);
    const cJSON *v = doc ? cJSON_GetObjectItemCaseSensitive(doc, "config_version") : NULL;
    cfg_ack_doc got = {0};
    bool ok = cfg_json_int64(v, &got.version) &&
              opt_string(doc, "migration_id", got.migration_id, sizeof got.migration_id) &&
              opt_string(doc, "fingerprint", got.fingerprint, sizeof got.fingerprint);
    cJSON_Delete(doc);
    if (!ok)
        return mt_error(400, "InvalidInput",
                        "The body must be {\"config_version\": N} with optional \"migration_id\" "
                        "and \"fingerprint\" strings.");
    *out = got;
    return mt_ok();
}

char *cfg_replica_json(const char *url)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "url", url);
    return print_and_free(doc);
}

mt_status cfg_replica_parse(const char *body, size_t len, char url[CFG_URL_MAX])
{
    cJSON *doc = cJSON_ParseWithLength(body, len);
    bool ok = doc && opt_string(doc, "url", url, CFG_URL_MAX) && url[0];
    cJSON_Delete(doc);
    if (!ok) {
        url[0] = '\0';
        return mt_error(400, "InvalidInput", "The body must be {\"url\": URL}.");
    }
    return mt_ok();
}

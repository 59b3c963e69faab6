/*
 * px_admin.c -- the admin endpoint: status, phase changes, the migrator,
 * verify, health, metrics, and (on the authority) the configuration
 * endpoint the other proxies poll.
 *
 * Phase changes go one step at a time (skipping would put two proxies more
 * than one phase apart), and use_new_with_tombstones only after a copy that
 * a verify pass proved, since from then on only the new table is read. A
 * push returns once every proxy that may still serve the previous phase has
 * acknowledged the new one or lost its lease, so a 200 means the whole
 * fleet is in the new phase.
 *
 * Only the authority changes phases and runs the migrator; a proxy of a
 * remote authority answers those calls with 409 NotAuthority.
 */
#include "px.h"
#include "cfg_json.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A long poll never holds a connection longer than this. */
#define MAX_WAIT_MS 30000

static void json_reply(px_resp *r, int status, cJSON *doc)
{
    r->status = status;
    r->body = doc ? cJSON_PrintUnformatted(doc) : NULL;
    r->len = r->body ? strlen(r->body) : 0;
    r->oom = r->oom || !r->body; /* sent as 503 */
    px_resp_header(r, "Content-Type", "application/json");
    cJSON_Delete(doc);
}

static void error_reply(px_resp *r, int status, const char *code, const char *message)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(doc, "error");
    cJSON_AddStringToObject(err, "code", code);
    cJSON_AddStringToObject(err, "message", message);
    json_reply(r, status, doc);
}

static void status_error(px_resp *r, const mt_status *st)
{
    error_reply(r, st->http ? st->http : 500, st->code, st->message);
}

static void text_reply(px_resp *r, int status, const char *text)
{
    r->status = status;
    r->body = strdup(text);
    r->len = r->body ? strlen(r->body) : 0;
    r->oom = r->oom || !r->body; /* sent as 503 */
    px_resp_header(r, "Content-Type", "text/plain");
}

/* ------------------------------------------------------------------------ */
/* Status.                                                                   */

/* RFC 3339 UTC, to the second. */
static void utc_text(time_t t, char *out, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A count never shown above its total: a total counted before a table went
 * away, or restored from an older state, gives way to what was done. */
static int64_t total_at_least(int64_t total, int64_t done)
{
    return total >= 0 && total < done ? done : total;
}

/* Rate, ETA and stall of the moving step (app->mu held). */
static void add_motion(px_app *app, cJSON *m, cfg_migration_state st, const mt_migrator_stats *s)
{
    bool moving = (st == CFG_MIG_COPYING || st == CFG_MIG_CLEANING) && app->mig_rate_for == st;
    int64_t now = app->rt->ops->mono_ms(app->rt);
    double rate = moving ? px_rate_per_second(&app->mig_rate, now) : 0, eta = -1;
    int64_t done = cfg_migrate_moved(st, s), total = -1;
    if (st == CFG_MIG_COPYING)
        total = total_at_least(s->rows_total, s->rows_done);
    else if (st == CFG_MIG_CLEANING && s->clean_total_old >= 0 && s->clean_total_new >= 0)
        total = total_at_least(s->clean_total_old + s->clean_total_new, done);
    if (rate > 0 && total >= 0)
        eta = (double)(total - done) / rate;
    cJSON_AddNumberToObject(m, "rows_per_second", rate);
    cJSON_AddNumberToObject(m, "eta_seconds", eta);
    bool stalled = moving && px_rate_stalled(&app->mig_rate, now);
    cJSON_AddBoolToObject(m, "stalled", stalled);
    if (!stalled)
        return;
    int64_t still = px_rate_still_ms(&app->mig_rate, now);
    char since[32], last[200];
    utc_text(time(NULL) - (time_t)(still / 1000), since, sizeof since);
    cJSON_AddStringToObject(m, "stalled_since", since);
    cJSON_AddNumberToObject(m, "stalled_seconds", (double)(still / 1000));
    px_metrics_last_error(app->metrics, last, sizeof last);
    if (!last[0])
        snprintf(last, sizeof last, "%s", s->last_error);
    cJSON_AddStringToObject(m, "last_backend_error", last[0] ? last : "none");
}

static void add_migration(px_app *app, cJSON *doc)
{
    cfg_migrate_info info = {0}; /* a proxy of a remote authority runs none: idle */
    if (app->mig)
        cfg_migrate_info_get(app->mig, &info);
    mt_migrator_stats s = info.stats;
    cJSON *m = cJSON_AddObjectToObject(doc, "migration");
    cJSON_AddStringToObject(m, "state", cfg_migration_state_name(info.state));
    cJSON_AddBoolToObject(m, "copy_done", info.copy_done);
    cJSON_AddBoolToObject(m, "copy_verified", info.copy_verified);
    cJSON_AddStringToObject(m, "old_after", mt_old_after_name(info.old_after));
    /* Rows copied is what the checkpoint holds as copied, as /metrics
     * says: repeats after a restart are not counted twice. */
    cJSON_AddNumberToObject(m, "rows_copied", (double)s.rows_done);
    cJSON_AddNumberToObject(m, "rows_done", (double)s.rows_done);
    cJSON_AddNumberToObject(m, "rows_total", (double)total_at_least(s.rows_total, s.rows_done));
    cJSON_AddNumberToObject(m, "partitions_done", (double)s.partitions_done);
    cJSON_AddNumberToObject(m, "partitions_total",
                            (double)total_at_least(s.partitions_total, s.partitions_done));
    cJSON_AddNumberToObject(m, "partitions_switched", (double)s.partitions_switched);
    cJSON_AddNumberToObject(m, "rows_cleaned", (double)(s.rows_cleaned_old + s.rows_cleaned_new));
    cJSON_AddNumberToObject(m, "rows_cleaned_old", (double)s.rows_cleaned_old);
    cJSON_AddNumberToObject(m, "rows_cleaned_new", (double)s.rows_cleaned_new);
    cJSON_AddNumberToObject(m, "clean_total_old",
                            (double)total_at_least(s.clean_total_old, s.rows_cleaned_old));
    cJSON_AddNumberToObject(m, "clean_total_new",
                            (double)total_at_least(s.clean_total_new, s.rows_cleaned_new));
    cJSON_AddNumberToObject(m, "tables_skipped", (double)s.tables_skipped);
    cJSON_AddNumberToObject(m, "backoffs", (double)s.backoffs);
    pthread_mutex_lock(&app->mu);
    add_motion(app, m, info.state, &s);
    pthread_mutex_unlock(&app->mu);
    if (info.error[0])
        cJSON_AddStringToObject(m, "error", info.error);
    if (info.have_verify) {
        cJSON *v = cJSON_AddObjectToObject(m, "last_verify");
        cJSON_AddBoolToObject(v, "ok", info.verify.ok);
        cJSON_AddStringToObject(v, "summary", info.verify.summary);
        cJSON_AddNumberToObject(v, "tables_skipped", (double)info.verify.tables_skipped);
    }
}

static void add_proxies(px_app *app, const mt_config *c, cJSON *doc)
{
    cJSON *list = cJSON_AddArrayToObject(doc, "proxies");
    cJSON *me = cJSON_CreateObject();
    cJSON_AddStringToObject(me, "id", app->settings.proxy_id);
    cJSON_AddStringToObject(me, "role", app->auth ? "authority" : "proxy");
    cJSON_AddNumberToObject(me, "config_version", (double)c->version);
    cJSON_AddStringToObject(me, "phase", mt_phase_name(c->phase));
    if (app->client) {
        cfg_client_info ci;
        cfg_client_info_get(app->client, &ci);
        cJSON_AddNumberToObject(me, "lease_left_ms", (double)ci.lease_left_ms);
        cJSON_AddBoolToObject(me, "live", ci.leased);
        if (ci.last_error[0] && !ci.leased)
            cJSON_AddStringToObject(me, "last_error", ci.last_error);
        if (ci.refused[0])
            cJSON_AddStringToObject(me, "refused", ci.refused);
    } else {
        cJSON_AddBoolToObject(me, "live", true);
    }
    cJSON_AddItemToArray(list, me);
    if (!app->auth)
        return;
    size_t cap = cfg_authority_proxies(app->auth, NULL, 0) + 16; /* room for newcomers */
    cfg_proxy_info *info = malloc(cap * sizeof *info);
    size_t n = info ? cfg_authority_proxies(app->auth, info, cap) : 0;
    size_t live = 0, mismatched = 0;
    for (size_t i = 0; i < n && i < cap; i++) {
        live += info[i].lease_left_ms > 0;
        mismatched += info[i].mismatched;
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "id", info[i].id);
        cJSON_AddStringToObject(p, "role", "proxy");
        cJSON_AddNumberToObject(p, "config_version", (double)info[i].acked_version);
        cJSON_AddNumberToObject(p, "since_ack_ms", (double)info[i].since_ack_ms);
        cJSON_AddNumberToObject(p, "lease_left_ms", (double)info[i].lease_left_ms);
        cJSON_AddBoolToObject(p, "live", info[i].lease_left_ms > 0);
        cJSON_AddBoolToObject(p, "mismatched", info[i].mismatched);
        cJSON_AddBoolToObject(p, "awaited", info[i].awaited);
        if (info[i].fingerprint[0])
            cJSON_AddStringToObject(p, "fingerprint", info[i].fingerprint);
        cJSON_AddItemToArray(list, p);
    }
    free(info);
    cJSON_AddNumberToObject(doc, "proxies_live", (double)live);
    cJSON_AddNumberToObject(doc, "proxies_mismatched", (double)mismatched);
}

/* Every authority replica this one knows of: itself, the leader, and (on
 * the leader) the standbys that announced themselves. */
static void add_replicas(px_app *app, bool leading, const cfg_leader_info *l, cJSON *doc)
{
    if (!app->settings.replica_id[0])
        return;
    cJSON *list = cJSON_AddArrayToObject(doc, "replicas");
    cJSON *me = cJSON_CreateObject();
    cJSON_AddStringToObject(me, "id", app->settings.replica_id);
    cJSON_AddStringToObject(me, "url", app->settings.advertise_url);
    cJSON_AddStringToObject(me, "role", leading ? "authority" : "standby");
    cJSON_AddItemToArray(list, me);
    if (!leading && l->id[0] && strcmp(l->id, app->settings.replica_id) != 0) {
        cJSON *ld = cJSON_CreateObject();
        cJSON_AddStringToObject(ld, "id", l->id);
        cJSON_AddStringToObject(ld, "url", l->url);
        cJSON_AddStringToObject(ld, "role", "authority");
        cJSON_AddItemToArray(list, ld);
    }
    if (!leading)
        return;
    cfg_replica_info rs[CFG_REPLICAS_MAX];
    size_t n = cfg_authority_replicas(app->auth, rs, CFG_REPLICAS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rs[i].id, app->settings.replica_id) == 0)
            continue;
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "id", rs[i].id);
        cJSON_AddStringToObject(p, "url", rs[i].url);
        cJSON_AddStringToObject(p, "role", "standby");
        cJSON_AddNumberToObject(p, "since_ms", (double)rs[i].since_ms);
        cJSON_AddItemToArray(list, p);
    }
}

static void status_reply(px_app *app, px_resp *r)
{
    mt_config c = px_app_config(app);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "phase", mt_phase_name(c.phase));
    cJSON_AddStringToObject(doc, "direction", c.reversed ? "reverse" : "forward");
    cJSON_AddNumberToObject(doc, "config_version", (double)c.version);
    cJSON_AddBoolToObject(doc, "settled", c.settled);
    cfg_leader_info l = {0};
    bool leading = app->auth && cfg_authority_leader(app->auth, &l);
    cJSON_AddStringToObject(doc, "role", app->auth ? (leading ? "authority" : "standby") : "proxy");
    cJSON_AddStringToObject(doc, "proxy_id", app->settings.proxy_id);
    if (app->auth) {
        cJSON *ld = cJSON_AddObjectToObject(doc, "leader");
        cJSON_AddStringToObject(ld, "id", l.id);
        cJSON_AddStringToObject(ld, "url", l.url);
        cJSON_AddNumberToObject(ld, "term", (double)l.term);
        cJSON_AddStringToObject(doc, "replica_id", app->settings.replica_id);
        add_replicas(app, leading, &l, doc);
    }
    char fp[CFG_FINGERPRINT_MAX], mig[CFG_MIGRATION_ID_MAX] = "";
    px_settings_fingerprint(&app->settings, fp, NULL, 0);
    cJSON_AddStringToObject(doc, "fingerprint", fp);
    if (app->auth) {
        cfg_authority_migration_id(app->auth, mig);
    } else {
        cfg_client_info ci;
        cfg_client_info_get(app->client, &ci);
        memcpy(mig, ci.migration_id, sizeof mig);
    }
    cJSON_AddStringToObject(doc, "migration_id", mig);
    if (app->client)
        cJSON_AddStringToObject(doc, "config_endpoint", app->settings.config_endpoint);
    else
        cJSON_AddStringToObject(doc, "state_store", app->store->ops->describe(app->store));
    add_migration(app, doc);
    add_proxies(app, &c, doc);
    uint64_t requests = 0, failed = 0;
    px_metrics_totals(app->metrics, &requests, &failed);
    cJSON_AddNumberToObject(doc, "requests", (double)requests);
    cJSON_AddNumberToObject(doc, "requests_failed", (double)failed);
    cJSON_AddNumberToObject(doc, "uptime_seconds", (double)(time(NULL) - app->started));
    json_reply(r, 200, doc);
}

/* ------------------------------------------------------------------------ */
/* The migrator and verify.                                                  */

/* Optional {"until": PHASE, "old_after": "empty"|"keep"|"delete",
 * "reverse": BOOL}; false (and a 400 in r) when the body is bad. */
static bool parse_until(const char *body, size_t len, bool *stop, mt_phase *until,
                        mt_old_after *old_after, bool *reverse, px_resp *r)
{
    *stop = false;
    *reverse = false;
    *until = MT_PHASE_USE_NEW_HIDE_METADATA;
    *old_after = MT_OLD_AFTER_EMPTY;
    if (len == 0)
        return true;
    cJSON *doc = cJSON_ParseWithLength(body, len);
    const cJSON *u = doc ? cJSON_GetObjectItemCaseSensitive(doc, "until") : NULL;
    const cJSON *o = doc ? cJSON_GetObjectItemCaseSensitive(doc, "old_after") : NULL;
    const cJSON *b = doc ? cJSON_GetObjectItemCaseSensitive(doc, "reverse") : NULL;
    bool ok = cJSON_IsObject(doc) && (!b || cJSON_IsBool(b)) && !(b && cJSON_IsTrue(b) && u) &&
              (!u || (cJSON_IsString(u) && mt_phase_parse(u->valuestring, until))) &&
              (!o || (cJSON_IsString(o) && mt_old_after_parse(o->valuestring, old_after)));
    *stop = u != NULL;
    *reverse = cJSON_IsTrue(b);
    cJSON_Delete(doc);
    if (!ok)
        error_reply(r, 400, "InvalidInput",
                    "The body must be empty or {\"until\": PHASE, \"old_after\": \"empty\" | "
                    "\"keep\" | \"delete\", \"reverse\": true | false} (all optional; until "
                    "not with reverse).");
    return ok;
}

static void migrate_reply(px_app *app, const char *body, size_t len, bool resume, px_resp *r)
{
    bool stop;
    mt_phase until;
    mt_old_after old_after;
    bool reverse;
    if (!parse_until(body, len, &stop, &until, &old_after, &reverse, r))
        return;
    char msg[512];
    const char *code =
        reverse ? NULL : cfg_migrate_start_refusal(app->mig, resume, msg, sizeof msg);
    if (code) {
        error_reply(r, 409, code, msg);
        return;
    }
    /* A resume keeps the choice the migration was started with. */
    mt_status st = resume    ? cfg_migrate_start(app->mig, stop, until)
                   : reverse ? cfg_migrate_reverse(app->mig, old_after)
                             : cfg_migrate_begin(app->mig, stop, until, old_after);
    if (!mt_is_ok(&st)) {
        status_error(r, &st);
        return;
    }
    px_log(
        PX_LOG_INFO, "migration %s%s%s%s%s",
        resume    ? "resumed"
        : reverse ? "back started"
                  : "started",
        stop ? ", until " : "", stop ? mt_phase_name(until) : "",
        resume ? "" : ", old tables after cleanup: ", resume ? "" : mt_old_after_name(old_after));
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "state", "started");
    json_reply(r, 202, doc);
}

static void pause_reply(px_app *app, px_resp *r)
{
    mt_status st = cfg_migrate_pause(app->mig);
    if (!mt_is_ok(&st)) {
        status_error(r, &st);
        return;
    }
    px_log(PX_LOG_INFO, "migration pausing at the next checkpoint");
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "state", "pausing");
    json_reply(r, 202, doc);
}

static void abort_reply(px_app *app, px_resp *r)
{
    int64_t removed = 0;
    mt_status st = cfg_migrate_abort(app->mig, &removed);
    if (!mt_is_ok(&st)) {
        status_error(r, &st);
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "state", "aborted");
    cJSON_AddStringToObject(doc, "phase", mt_phase_name(px_app_config(app).phase));
    cJSON_AddNumberToObject(doc, "protocol_rows_deleted", (double)removed);
    json_reply(r, 200, doc);
}

static void verify_reply(px_app *app, px_resp *r)
{
    mt_verify_report rep;
    mt_status st = cfg_migrate_verify(app->mig, &rep);
    if (!mt_is_ok(&st)) {
        status_error(r, &st);
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddBoolToObject(doc, "ok", rep.ok);
    cJSON_AddStringToObject(doc, "phase", mt_phase_name(px_app_config(app).phase));
    cJSON_AddStringToObject(doc, "summary", rep.summary);
    cJSON_AddNumberToObject(doc, "old_rows", (double)rep.old_rows);
    cJSON_AddNumberToObject(doc, "new_rows", (double)rep.new_rows);
    cJSON_AddNumberToObject(doc, "tombstones", (double)rep.tombstones);
    cJSON_AddNumberToObject(doc, "missing", (double)rep.missing);
    cJSON_AddNumberToObject(doc, "protocol_rows", (double)rep.protocol_rows);
    cJSON_AddNumberToObject(doc, "reserved_props", (double)rep.reserved_props);
    cJSON_AddNumberToObject(doc, "unswitched", (double)rep.unswitched);
    cJSON_AddStringToObject(doc, "first_missing", rep.first_missing);
    cJSON_AddNumberToObject(doc, "tables_skipped", (double)rep.tables_skipped);
    cJSON_AddStringToObject(doc, "skipped", rep.skipped);
    cJSON_AddNumberToObject(doc, "old_tables_left", (double)rep.old_tables_left);
    json_reply(r, 200, doc);
}

/* ------------------------------------------------------------------------ */
/* Phase changes.                                                            */

static void phase_reply(px_app *app, const char *body, size_t len, px_resp *r)
{
    cJSON *doc = cJSON_ParseWithLength(body, len);
    const cJSON *ph = doc ? cJSON_GetObjectItemCaseSensitive(doc, "phase") : NULL;
    mt_phase want;
    bool ok = cJSON_IsString(ph) && mt_phase_parse(ph->valuestring, &want);
    cJSON_Delete(doc);
    if (!ok) {
        error_reply(r, 400, "InvalidPhase",
                    "The body must be {\"phase\": NAME} with NAME one of use_old_hide_metadata, "
                    "prefer_old, prefer_new, use_new_with_tombstones, use_new_hide_metadata.");
        return;
    }
    mt_phase from;
    mt_status st = cfg_migrate_phase(app->mig, want, &from);
    if (!mt_is_ok(&st)) {
        status_error(r, &st);
        return;
    }
    status_reply(app, r);
}

/* ------------------------------------------------------------------------ */
/* The configuration endpoint (authority only).                              */

/* The value of name in a raw query string, as a number; dflt when absent.
 * *bad when it is not an integer or not validly encoded. */
static int64_t query_num(const char *query, const char *name, int64_t dflt, bool *bad)
{
    char *v = NULL;
    mt_status st = az_query_find(query, name, &v);
    int64_t out = dflt;
    if (!mt_is_ok(&st)) {
        *bad = true;
    } else if (v) {
        char *end;
        out = strtoll(v, &end, 10);
        if (*end)
            *bad = true;
    }
    free(v);
    return out;
}

/* The long poll's arguments; false when they are not integers. */
static bool state_args(const char *query, int64_t *after, bool *known_settled, int64_t *wait)
{
    bool bad = false;
    *after = query_num(query, "after", -1, &bad);
    *wait = query_num(query, "wait_ms", 0, &bad);
    *known_settled = query_num(query, "settled", 1, &bad) != 0;
    if (*wait > MAX_WAIT_MS)
        *wait = MAX_WAIT_MS;
    return !bad && *wait >= 0;
}

static void view_reply(const cfg_view *v, px_resp *r);

static void state_reply(px_app *app, const char *query, px_resp *r)
{
    int64_t after, wait;
    bool known_settled;
    if (!state_args(query, &after, &known_settled, &wait)) {
        error_reply(r, 400, "InvalidQueryParameterValue",
                    "after, wait_ms and settled must be integers (wait_ms >= 0).");
        return;
    }
    cfg_view v;
    cfg_authority_poll(app->auth, after, known_settled, wait, &v);
    view_reply(&v, r);
}

bool px_admin_state_waits(px_app *app, const char *query, int64_t *after, bool *known_settled,
                          int64_t *wait_ms)
{
    if (!state_args(query, after, known_settled, wait_ms) || *wait_ms == 0)
        return false;
    cfg_view v;
    cfg_authority_poll(app->auth, *after, *known_settled, 0, &v);
    return v.version == *after && (*known_settled || !v.settled);
}

void px_admin_state_now(px_app *app, px_resp *r)
{
    cfg_view v;
    cfg_authority_poll(app->auth, -1, false, 0, &v);
    view_reply(&v, r);
}

static void view_reply(const cfg_view *v, px_resp *r)
{
    r->status = 200;
    r->body = cfg_view_json(v);
    r->len = r->body ? strlen(r->body) : 0;
    px_resp_header(r, "Content-Type", "application/json");
}

/* The proxy id in an acks URL, percent-decoded (curl_easy_escape's form)
 * and cut at CFG_ID_MAX bytes; "" when it is not validly encoded. */
static void decode_id(const char *id, char decoded[CFG_ID_MAX + 1])
{
    char *d = az_url_decode(id, strlen(id));
    size_t n = d ? strlen(d) : 0;
    if (n > CFG_ID_MAX)
        n = CFG_ID_MAX;
    if (n)
        memcpy(decoded, d, n);
    decoded[n] = '\0';
    free(d);
}

static void ack_reply(px_app *app, const char *id, const char *body, size_t len, px_resp *r)
{
    cfg_ack_doc doc;
    mt_status st = cfg_ack_parse(body, len, &doc);
    if (!mt_is_ok(&st)) {
        status_error(r, &st);
        return;
    }
    char decoded[CFG_ID_MAX + 1];
    decode_id(id, decoded);
    cfg_ack ack = {.id = decoded,
                   .version = doc.version,
                   .migration_id = doc.migration_id,
                   .fingerprint = doc.fingerprint};
    st = cfg_authority_ack(app->auth, &ack);
    if (!mt_is_ok(&st)) {
        status_error(r, &st);
        return;
    }
    r->status = 204;
}

static void replica_reply(px_app *app, const char *id, const char *body, size_t len, px_resp *r)
{
    char url[CFG_URL_MAX];
    mt_status st = cfg_replica_parse(body, len, url);
    char decoded[CFG_ID_MAX + 1];
    decode_id(id, decoded);
    if (mt_is_ok(&st) && !decoded[0])
        st = mt_error(400, "InvalidInput", "The body must be {\"url\": URL}.");
    if (!mt_is_ok(&st)) {
        status_error(r, &st);
        return;
    }
    cfg_authority_replica_seen(app->auth, decoded, url);
    r->status = 204;
}

static void release_reply(px_app *app, const char *id, px_resp *r)
{
    char decoded[CFG_ID_MAX + 1];
    decode_id(id, decoded);
    cfg_authority_release(app->auth, decoded);
    px_log(PX_LOG_INFO, "proxy %s gave its lease back", decoded);
    r->status = 204;
}

/* ------------------------------------------------------------------------ */
/* Health and metrics.                                                       */

static void ready_reply(px_app *app, px_resp *r)
{
    char msg[1200];
    cfg_client_info ci = {0};
    if (app->client)
        cfg_client_info_get(app->client, &ci);
    cfg_leader_info l;
    if (app->draining) {
        text_reply(r, 503, "not ready: shutting down\n");
    } else if (app->auth && !cfg_authority_leader(app->auth, &l)) {
        snprintf(msg, sizeof msg, "not ready: a standby authority replica (leader: %s at %s)\n",
                 l.id[0] ? l.id : "none yet", l.url[0] ? l.url : "?");
        text_reply(r, 503, msg);
    } else if (px_app_serving(app)) {
        /* Still leased, so still right to serve; but say what was refused. */
        bool back = px_app_config(app).reversed;
        snprintf(msg, sizeof msg, "ready%s%s%s\n",
                 back ? " (direction reverse: the new account plays old)" : "",
                 ci.refused[0] ? "; " : "", ci.refused);
        text_reply(r, 200, msg);
    } else {
        const char *why = ci.refused[0] ? ci.refused : ci.last_error;
        snprintf(msg, sizeof msg, "not ready: no lease from %s%s%s\n",
                 app->settings.config_endpoint, why[0] ? ": " : "", why);
        text_reply(r, 503, msg);
    }
}

static void metrics_reply(px_app *app, px_resp *r)
{
    mt_config c = px_app_config(app);
    mt_buf b = {0};
    char line[1024];
    px_metrics_render(app->metrics, &b);
    snprintf(line, sizeof line,
             "# HELP mtable_phase The phase this proxy serves (0-4).\n"
             "# TYPE mtable_phase gauge\nmtable_phase %d\n"
             "# HELP mtable_config_version The configuration version this proxy applied.\n"
             "# TYPE mtable_config_version gauge\nmtable_config_version %lld\n",
             (int)c.phase, (long long)c.version);
    mt_buf_puts(&b, line);
    if (app->client) {
        cfg_client_info ci;
        cfg_client_info_get(app->client, &ci);
        snprintf(line, sizeof line,
                 "# HELP mtable_lease_valid Whether this proxy holds a lease (1) or fails "
                 "closed (0).\n# TYPE mtable_lease_valid gauge\nmtable_lease_valid %d\n"
                 "# HELP mtable_lease_remaining_seconds Seconds left on this proxy's lease.\n"
                 "# TYPE mtable_lease_remaining_seconds gauge\n"
                 "mtable_lease_remaining_seconds %.3f\n",
                 ci.leased ? 1 : 0, ci.lease_left_ms > 0 ? (double)ci.lease_left_ms / 1000 : 0);
        mt_buf_puts(&b, line);
    } else {
        size_t n = cfg_authority_proxies(app->auth, NULL, 0);
        snprintf(line, sizeof line,
                 "# HELP mtable_proxies Proxies the authority has seen recently.\n"
                 "# TYPE mtable_proxies gauge\nmtable_proxies %zu\n",
                 n);
        mt_buf_puts(&b, line);
    }
    snprintf(line, sizeof line,
             "# HELP mtable_direction_reversed Whether the accounts' roles are swapped (1: a "
             "migration back, the new account plays old).\n"
             "# TYPE mtable_direction_reversed gauge\nmtable_direction_reversed %d\n",
             px_app_config(app).reversed ? 1 : 0);
    mt_buf_puts(&b, line);
    cfg_migrate_info info = {0};
    if (app->mig)
        cfg_migrate_info_get(app->mig, &info);
    mt_migrator_stats s = info.stats;
    int state = (int)info.state;
    snprintf(line, sizeof line,
             "# HELP mtable_rows_copied_total Rows the migration's copy has covered, a resumed "
             "copy's earlier part included (status: migration.rows_done).\n"
             "# TYPE mtable_rows_copied_total counter\nmtable_rows_copied_total %lld\n"
             "# HELP mtable_rows_cleaned_total Rows the cleanup made clean in new or deleted "
             "from old.\n# TYPE mtable_rows_cleaned_total counter\n"
             "mtable_rows_cleaned_total{side=\"old\"} %lld\n"
             "mtable_rows_cleaned_total{side=\"new\"} %lld\n"
             "# HELP mtable_migration_state The migrator's state: 1 for the current one.\n"
             "# TYPE mtable_migration_state gauge\n",
             (long long)s.rows_done, (long long)s.rows_cleaned_old, (long long)s.rows_cleaned_new);
    mt_buf_puts(&b, line);
    for (int i = CFG_MIG_IDLE; i <= CFG_MIG_PAUSED; i++) {
        snprintf(line, sizeof line, "mtable_migration_state{state=\"%s\"} %d\n",
                 cfg_migration_state_name((cfg_migration_state)i), i == state);
        mt_buf_puts(&b, line);
    }
    r->status = 200;
    r->body = mt_buf_take(&b, &r->len);
    px_resp_header(r, "Content-Type", "text/plain; version=0.0.4");
}

/* ------------------------------------------------------------------------ */
/* Routing.                                                                  */

bool px_admin_call_blocks(const char *method, const char *url)
{
    return strcmp(method, "POST") == 0 &&
           (strcmp(url, "/admin/v1/phase") == 0 || strncmp(url, "/admin/v1/migrate", 17) == 0 ||
            strcmp(url, "/admin/v1/verify") == 0 || strcmp(url, "/admin/v1/abort") == 0);
}

bool px_admin_authorized(const px_app *app, const char *authorization)
{
    if (!app->settings.admin_token[0])
        return true;
    if (!authorization || strncmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *tok = authorization + 7, *want = app->settings.admin_token;
    size_t n = strlen(want);
    if (strlen(tok) != n)
        return false;
    unsigned char diff = 0; /* constant time */
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(tok[i] ^ want[i]);
    return diff == 0;
}

/* Calls only the authority takes. */
static bool authority_route(px_app *app, bool get, bool post, bool put, bool del, const char *url,
                            const char *query, const char *body, size_t len, px_resp *r)
{
    if (get && strcmp(url, "/config/v1/state") == 0)
        state_reply(app, query, r);
    else if (put && strncmp(url, "/config/v1/acks/", 16) == 0 && url[16])
        ack_reply(app, url + 16, body, len, r);
    else if (del && strncmp(url, "/config/v1/acks/", 16) == 0 && url[16])
        release_reply(app, url + 16, r);
    else if (put && strncmp(url, "/config/v1/replicas/", 20) == 0 && url[20])
        replica_reply(app, url + 20, body, len, r);
    else if (post && strcmp(url, "/admin/v1/phase") == 0)
        phase_reply(app, body, len, r);
    else if (post && strcmp(url, "/admin/v1/migrate") == 0)
        migrate_reply(app, body, len, false, r);
    else if (post && strcmp(url, "/admin/v1/migrate/resume") == 0)
        migrate_reply(app, body, len, true, r);
    else if (post && strcmp(url, "/admin/v1/migrate/pause") == 0)
        pause_reply(app, r);
    else if (post && strcmp(url, "/admin/v1/verify") == 0)
        verify_reply(app, r);
    else if (post && strcmp(url, "/admin/v1/abort") == 0)
        abort_reply(app, r);
    else
        return false;
    return true;
}

static bool is_authority_call(const char *url)
{
    return strncmp(url, "/config/v1/", 11) == 0 || strcmp(url, "/admin/v1/phase") == 0 ||
           strncmp(url, "/admin/v1/migrate", 17) == 0 || strcmp(url, "/admin/v1/verify") == 0 ||
           strcmp(url, "/admin/v1/abort") == 0;
}

/* A standby replica sends authority calls to the leader: 307 keeps the
 * method and the body, and the configuration client and mtablectl follow
 * it. Without a known leader (a takeover under way), 503 and retry. */
static void to_leader(px_app *app, const char *url, const char *query, px_resp *r)
{
    cfg_leader_info l;
    cfg_authority_leader(app->auth, &l);
    if (!l.url[0]) {
        error_reply(r, 503, "NotLeader",
                    "No authority replica leads at the moment (a takeover is under way); "
                    "retry in a second.");
        return;
    }
    char *loc = malloc(strlen(l.url) + strlen(url) + (query ? strlen(query) : 0) + 2);
    if (!loc) {
        error_reply(r, 503, "ServerBusy", "Out of memory.");
        return;
    }
    sprintf(loc, "%s%s%s%s", l.url, url, query && *query ? "?" : "", query ? query : "");
    px_resp_header(r, "Location", loc);
    free(loc);
    char msg[CFG_URL_MAX + 128];
    snprintf(msg, sizeof msg, "This authority replica stands by; the leader is %s at %s.", l.id,
             l.url);
    error_reply(r, 307, "NotLeader", msg);
}

static void admin_route(px_app *app, const char *method, const char *url, const char *query,
                        const char *body, size_t len, const char *authorization, px_resp *r)
{
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0,
         put = strcmp(method, "PUT") == 0, del = strcmp(method, "DELETE") == 0;
    if (get && strcmp(url, "/healthz") == 0) {
        text_reply(r, 200, "ok\n");
        return;
    }
    if (get && strcmp(url, "/readyz") == 0) {
        ready_reply(app, r);
        return;
    }
    if (!px_admin_authorized(app, authorization)) {
        error_reply(r, 401, "Unauthorized", "This endpoint needs Authorization: Bearer TOKEN.");
        return;
    }
    if (get && strcmp(url, "/metrics") == 0) {
        metrics_reply(app, r);
    } else if (get && strcmp(url, "/admin/v1/status") == 0) {
        status_reply(app, r);
    } else if (app->auth && is_authority_call(url) && !cfg_authority_leader(app->auth, NULL)) {
        to_leader(app, url, query, r);
    } else if (app->auth && authority_route(app, get, post, put, del, url, query, body, len, r)) {
        return;
    } else if (!app->auth && is_authority_call(url)) {
        char msg[800];
        snprintf(msg, sizeof msg,
                 "This proxy follows the configuration authority at %s; send phase, migrate "
                 "and verify calls there.",
                 app->settings.config_endpoint);
        error_reply(r, 409, "NotAuthority", msg);
    } else {
        error_reply(r, 404, "NotFound", "No such admin resource.");
    }
}

/* A 5xx of the admin endpoint is logged once, with its reason (the
 * error's message), as the table endpoint's are: mtablectl's hint for a
 * 5xx sends the operator to this log. /readyz's 503 is a state, not a
 * failure. */
static void log_admin_failure(const char *method, const char *url, const px_resp *r)
{
    cJSON *doc = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    px_log_fields f = {.status = r->status,
                       .error_code = cJSON_IsString(code) ? code->valuestring : NULL,
                       .reason = cJSON_IsString(msg) ? msg->valuestring : "no cause recorded"};
    px_log_with(PX_LOG_WARN, &f, "admin %s %s -> %d", method, url, r->status);
    cJSON_Delete(doc);
}

void px_admin_handle(px_app *app, const char *method, const char *url, const char *query,
                     const char *body, size_t len, const char *authorization, px_resp *r)
{
    admin_route(app, method, url, query, body, len, authorization, r);
    if (r->status >= 500 && strcmp(url, "/readyz") != 0)
        log_admin_failure(method, url, r);
}

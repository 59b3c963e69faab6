/*
 * px_admin_http.c -- the admin and configuration listener.
 *
 * Every sidecar of a fleet keeps one connection here with a long poll
 * almost always open, so the listener must hold thousands of waiting
 * requests without a thread each, and must not let idle or hostile
 * connections crowd them out. So, unlike the table listener:
 *   - libmicrohttpd runs event-driven (epoll) on a small pool of threads;
 *   - a long poll that has nothing new to say is *parked*: the connection
 *     is suspended and put on a list; one notifier thread waits on the
 *     authority's published view and resumes the parked connections whose
 *     answer changed or whose wait ran out, and they are answered then;
 *   - a call that may block for long (a push waits for the fleet, a verify
 *     reads every table) is handed to a thread of its own and its
 *     connection suspended meanwhile, so it never holds a listener thread;
 *   - connections are cheap, so the limit is high (file descriptors
 *     permitting), and one that sends nothing for IDLE_S seconds is closed:
 *     a half-open or slow client costs a descriptor for a while, never a
 *     sidecar's lease.
 * Everything answered on the listener's threads is quick: health, status,
 * metrics, acknowledgements, the configuration state, errors.
 *
 * With --admin-tls-cert/--admin-tls-key the listener speaks HTTPS only
 * (libmicrohttpd's TLS, on GnuTLS): the admin token and the fleet's
 * configuration then never cross the network in clear. The files are read
 * once at start-up; a certificate is replaced by restarting the replica
 * (the others serve meanwhile).
 */
#include "px.h"
#include "px_http.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define POOL_THREADS 2
#define IDLE_S 15
/* Descriptors kept for everything but admin connections. */
#define FD_RESERVE 1024
#define MAX_CONNECTIONS 60000
/* The notifier looks at deadlines at least this often. */
#define TICK_MS 100
/* Per connection: requests here are small (bodies are copied out as they
 * arrive), and libmicrohttpd's default of 32 KiB is 160 MB for 5,000. */
#define CONN_MEMORY (8 * 1024)

/* The stages of an admin connection's request (px_upload.stage). */
enum { STAGE_NEW, STAGE_PARKED, STAGE_WORKING, STAGE_ANSWERED };

typedef struct parked {
    struct parked *next;
    struct MHD_Connection *c;
    int64_t after;
    bool known_settled;
    int64_t deadline; /* mono ms */
} parked;

struct px_admin_http {
    px_app *app;
    struct MHD_Daemon *d;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t workers_done;
    parked *waiting;
    int workers;
    bool stopping;
    pthread_t notifier;
    bool notifier_started;
    char *tls_cert, *tls_key; /* PEM, NULL without TLS; outlive the daemon */
};

/* ------------------------------------------------------------------------ */
/* Parked long polls.                                                        */

static bool park(px_admin_http *h, struct MHD_Connection *c, int64_t after, bool known_settled,
                 int64_t wait_ms)
{
    parked *p = calloc(1, sizeof *p);
    if (!p)
        return false;
    *p = (parked){.c = c,
                  .after = after,
                  .known_settled = known_settled,
                  .deadline = h->app->rt->ops->mono_ms(h->app->rt) + wait_ms};
    pthread_mutex_lock(&h->mu);
    if (h->stopping) {
        pthread_mutex_unlock(&h->mu);
        free(p);
        return false;
    }
    MHD_suspend_connection(c);
    p->next = h->waiting;
    h->waiting = p;
    pthread_mutex_unlock(&h->mu);
    return true;
}

/* Resumes the parked polls that are due: the view moved past what they
 * know, their wait ran out, or everything is stopping. */
static void wake_due(px_admin_http *h, const cfg_view *v, bool all)
{
    int64_t now = h->app->rt->ops->mono_ms(h->app->rt);
    pthread_mutex_lock(&h->mu);
    for (parked **pp = &h->waiting; *pp;) {
        parked *p = *pp;
        bool due = all || v->version != p->after || (v->settled && !p->known_settled) ||
                   now >= p->deadline;
        if (!due) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        MHD_resume_connection(p->c);
        free(p);
    }
    pthread_mutex_unlock(&h->mu);
}

static void *notifier_main(void *arg)
{
    px_admin_http *h = arg;
    cfg_view v = {0};
    cfg_authority_poll(h->app->auth, -1, false, 0, &v);
    for (;;) {
        pthread_mutex_lock(&h->mu);
        bool stop = h->stopping;
        pthread_mutex_unlock(&h->mu);
        if (stop)
            break;
        /* Returns at once on a new version or a newly settled one. */
        cfg_authority_poll(h->app->auth, v.version, v.settled, TICK_MS, &v);
        wake_due(h, &v, false);
    }
    wake_due(h, &v, true);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Calls that run on a thread of their own.                                  */

typedef struct job {
    px_admin_http *h;
    struct MHD_Connection *c;
    px_upload *up;
    char *method, *url, *query, *auth;
} job;

static void job_free(job *j)
{
    free(j->method);
    free(j->url);
    free(j->query);
    free(j->auth);
    free(j);
}

static void *job_main(void *arg)
{
    job *j = arg;
    px_admin_http *h = j->h;
    px_admin_handle(h->app, j->method, j->url, j->query, j->up->buf ? j->up->buf : "", j->up->len,
                    j->auth, &j->up->resp);
    pthread_mutex_lock(&h->mu);
    j->up->stage = STAGE_ANSWERED;
    MHD_resume_connection(j->c);
    h->workers--;
    pthread_cond_broadcast(&h->workers_done);
    pthread_mutex_unlock(&h->mu);
    job_free(j);
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Hands the request to a thread; false (nothing started) when it cannot. */
static bool hand_off(px_admin_http *h, struct MHD_Connection *c, px_upload *up, const char *method,
                     const char *url, const char *query, const char *auth)
{
    job *j = calloc(1, sizeof *j);
    if (!j)
        return false;
    *j = (job){.h = h,
               .c = c,
               .up = up,
               .method = strdup(method),
               .url = strdup(url),
               .query = dup_or_null(query),
               .auth = dup_or_null(auth)};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&h->mu);
    bool ok = !h->stopping && j->method && j->url && (!query || j->query) && (!auth || j->auth);
    if (ok) {
        up->stage = STAGE_WORKING;
        MHD_suspend_connection(c);
        pthread_t t;
        ok = pthread_create(&t, &attr, job_main, j) == 0;
        if (ok) {
            h->workers++;
        } else {
            up->stage = STAGE_NEW;
            MHD_resume_connection(c);
        }
    }
    pthread_mutex_unlock(&h->mu);
    pthread_attr_destroy(&attr);
    if (!ok)
        job_free(j);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Requests.                                                                 */

static enum MHD_Result busy(struct MHD_Connection *c, const char *method, const char *url)
{
    px_log_with(PX_LOG_WARN,
                &(px_log_fields){.status = 503,
                                 .reason = "the admin listener cannot park the call or start a "
                                           "thread for it (out of memory or threads, or stopping)"},
                "admin %s %s -> 503", method, url);
    px_resp r = {.status = 503};
    px_resp_header(&r, "Retry-After", "1");
    return px_http_send(c, &r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    (void)version;
    px_admin_http *h = cls;
    px_upload *up = NULL;
    if (!px_http_upload_step(con_cls, data, size, &up))
        return MHD_YES;
    if (!up || up->oom)
        return busy(c, method, url);
    if (up->stage == STAGE_ANSWERED)
        return px_http_send(c, &up->resp);
    if (up->stage == STAGE_PARKED) { /* resumed: the answer is the state now */
        px_resp r = {0};
        px_admin_state_now(h->app, &r);
        return px_http_send(c, &r);
    }
    px_resp r = {0};
    if (up->too_large) {
        r.status = 413;
        return px_http_send(c, &r);
    }
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    char *query = NULL;
    if (!px_http_raw_query(c, &query))
        return busy(c, method, url);
    enum MHD_Result ret = MHD_YES;
    int64_t after = 0, wait_ms = 0;
    bool known_settled = true;
    if (h->app->auth && strcmp(method, "GET") == 0 && strcmp(url, "/config/v1/state") == 0 &&
        px_admin_authorized(h->app, auth) && cfg_authority_leader(h->app->auth, NULL) &&
        px_admin_state_waits(h->app, query, &after, &known_settled, &wait_ms)) {
        up->stage = STAGE_PARKED;
        if (!park(h, c, after, known_settled, wait_ms)) {
            up->stage = STAGE_NEW;
            ret = busy(c, method, url);
        }
    } else if (px_admin_call_blocks(method, url) && px_admin_authorized(h->app, auth)) {
        if (!hand_off(h, c, up, method, url, query, auth))
            ret = busy(c, method, url);
    } else {
        px_admin_handle(h->app, method, url, query, up->buf ? up->buf : "", up->len, auth, &r);
        ret = px_http_send(c, &r);
    }
    free(query);
    return ret;
}

/* ------------------------------------------------------------------------ */
/* Start and stop.                                                           */

/* As many connections as the descriptors allow, leaving room for the
 * table listener and the backends. */
static unsigned connection_limit(const px_app *app)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 512;
    rlim_t have = rl.rlim_cur, keep = (rlim_t)app->settings.max_connections * 2 + FD_RESERVE;
    if (have == RLIM_INFINITY || have > MAX_CONNECTIONS + keep)
        return MAX_CONNECTIONS;
    return have > keep + 64 ? (unsigned)(have - keep) : 64;
}

/* The whole of a small file, NUL-terminated; NULL with a line on err. */
static char *read_pem(const char *path, const char *flag, FILE *err)
{
    FILE *f = fopen(path, "rb");
    mt_buf b = {0};
    char chunk[4096];
    size_t n;
    if (!f) {
        fprintf(err, "mtable-proxy: cannot read %s '%s': %s\n", flag, path, strerror(errno));
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < 1024 * 1024)
        mt_buf_put(&b, chunk, n);
    fclose(f);
    char *pem = mt_buf_take(&b, NULL);
    if (pem && !strstr(pem, "-----BEGIN ")) {
        fprintf(err, "mtable-proxy: %s '%s' is not PEM\n", flag, path);
        free(pem);
        return NULL;
    }
    if (!pem)
        fprintf(err, "mtable-proxy: cannot read %s '%s': out of memory\n", flag, path);
    return pem;
}

/* Reads the certificate and key when TLS is configured; false with a line
 * on err when it is and cannot be served. */
static bool tls_load(px_admin_http *h, const px_settings *s, FILE *err)
{
    if (!s->admin_tls_cert[0])
        return true;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        fprintf(err, "mtable-proxy: --admin-tls-cert: this libmicrohttpd was built without TLS\n");
        return false;
    }
    h->tls_cert = read_pem(s->admin_tls_cert, "--admin-tls-cert", err);
    h->tls_key = h->tls_cert ? read_pem(s->admin_tls_key, "--admin-tls-key", err) : NULL;
    return h->tls_key != NULL;
}

static struct MHD_Daemon *daemon_start(px_admin_http *h, const px_settings *s,
                                       const struct sockaddr_in *sa)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    if (h->tls_cert)
        flags |= MHD_USE_TLS;
    else
        tls[0].option = MHD_OPTION_END;
    return MHD_start_daemon(
        flags, (uint16_t)s->admin_port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)POOL_THREADS, MHD_OPTION_CONNECTION_LIMIT,
        connection_limit(h->app), MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED,
        px_http_completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK, px_http_keep_raw, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, px_http_log, NULL, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
}

px_admin_http *px_admin_http_start(px_app *app, FILE *err)
{
    const px_settings *s = &app->settings;
    struct sockaddr_in sa;
    if (!px_http_addr(s->admin_host, s->admin_port, &sa, err))
        return NULL;
    px_admin_http *h = calloc(1, sizeof *h);
    if (!h) {
        fprintf(err, "mtable-proxy: out of memory\n");
        return NULL;
    }
    h->app = app;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->workers_done, NULL);
    if (!tls_load(h, s, err)) {
        px_admin_http_stop(h);
        return NULL;
    }
    h->d = daemon_start(h, s, &sa);
    if (!h->d) {
        if (h->tls_cert)
            fprintf(err,
                    "mtable-proxy: cannot serve HTTPS on %s:%d: the port is in use, or "
                    "--admin-tls-cert/--admin-tls-key are not a matching PEM certificate and "
                    "key (run with --log-level debug for the TLS library's reason)\n",
                    s->admin_host, s->admin_port);
        else
            px_http_bind_failed(s->admin_host, s->admin_port, err);
        px_admin_http_stop(h);
        return NULL;
    }
    if (app->auth) {
        h->notifier_started = pthread_create(&h->notifier, NULL, notifier_main, h) == 0;
        if (!h->notifier_started) {
            fprintf(err, "mtable-proxy: cannot start the configuration endpoint's thread\n");
            px_admin_http_stop(h);
            return NULL;
        }
    }
    return h;
}

void px_admin_http_stop(px_admin_http *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_mutex_unlock(&h->mu);
    if (h->notifier_started)
        pthread_join(h->notifier, NULL); /* it resumes every parked poll */
    if (h->app->auth)
        cfg_authority_close(h->app->auth); /* a push in a worker returns now */
    /* A suspended connection must be resumed before the daemon stops:
     * wait for the calls running on their own threads. */
    pthread_mutex_lock(&h->mu);
    while (h->workers > 0)
        pthread_cond_wait(&h->workers_done, &h->mu);
    pthread_mutex_unlock(&h->mu);
    if (h->d)
        MHD_stop_daemon(h->d);
    pthread_cond_destroy(&h->workers_done);
    pthread_mutex_destroy(&h->mu);
    free(h->tls_cert);
    free(h->tls_key);
    free(h);
}

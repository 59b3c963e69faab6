/*
 * az_conn.c -- the transport under the backend client: a pool of
 * keep-alive HTTP/1.1 connections to one endpoint, plain TCP or TLS
 * (OpenSSL), one request at a time per connection.
 *
 * Why not libcurl here. The table requests are one shape only (a head, an
 * optional body, an answer with a length or chunks), and at one request
 * at a time libcurl's per-transfer machinery (options, its URL parser,
 * its connection cache and state machine, header callbacks per line) cost
 * about half of the proxy's CPU per point read. This file does only what
 * that shape needs: the head and the body leave in one sendmsg, the answer
 * is read in 16 KiB reads and parsed in place (az_http_parse.c). libcurl
 * stays for what this does not do: an HTTP proxy named by the environment
 * (az_client_http.c chooses), and the one-shot fetches of az_fetch.c.
 *
 * Connections: TCP_NODELAY and SO_KEEPALIVE on every socket; sockets are
 * non-blocking and every wait is a poll bounded by the attempt's deadline
 * (connect_ms for the connect and the TLS handshake, the attempt's timeout
 * for all of it). Idle connections are kept (up to AZ_CONN_IDLE_MAX, the
 * most recently used first) and reused only when idle for less than 4 s
 * (Node, hence Azurite, closes idle ones after 5 s) and when the socket
 * has nothing to read: a readable idle socket is one the server closed, or
 * one holding bytes nobody asked for, and is dropped before it is used.
 *
 * Stale connections. A server may still close an idle connection just as
 * a request goes out on it. When writing on a reused connection fails, or
 * it ends before the first byte of an answer, the server did not process
 * the request (it closed the connection before reading it), and the
 * request is sent once more on a new connection. The second send is
 * counted in r->requests_out, so the retry rules of az_client_http.c still
 * treat a write sent twice as one whose 404/409/412 may be its own doing.
 *
 * TLS: TLS 1.2 or later, the peer's certificate verified against ca_file
 * (else the system's CAs) and its name against the endpoint's host (or IP
 * address), SNI for a host name; sessions are resumed across connections.
 * OpenSSL writes with write(2), which raises SIGPIPE on a closed socket: a
 * process that does not ignore SIGPIPE (the proxy does) gets it blocked
 * around each TLS write and any pending one consumed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "az_client_internal.h"

#define AZ_CONN_IDLE_MAX 32
#define AZ_IDLE_REUSE_S 4.0 /* below Node's (Azurite's) 5 s keep-alive */
#define AZ_READ_CHUNK 16384

typedef struct az_conn {
    int fd;
    SSL *ssl;
    double idle_since;
} az_conn;

struct az_pool {
    bool tls, ip_literal, guard_sigpipe;
    char host[256]; /* without brackets */
    char port[8];
    char authority[300];
    char broken[256]; /* why every request fails (the CA bundle), or "" */
    long connect_ms;
    SSL_CTX *ctx;
    pthread_mutex_t mu;
    SSL_SESSION *session; /* the latest, to resume */
    az_conn *idle[AZ_CONN_IDLE_MAX];
    size_t nidle;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for events on fd until deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - mono_s();
        if (left <= 0)
            return 0;
        struct pollfd pf = {.fd = fd, .events = events};
        int rc = poll(&pf, 1, (int)(left * 1000.0) + 1);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/* ------------------------------------------------------------------------ */
/* The pool.                                                                 */

static bool parse_port(az_pool *p, const char *s, size_t n)
{
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    memcpy(p->port, s, n);
    p->port[n] = '\0';
    return true;
}

/* "http[s]://host[:port][/...]" into p; false for any other shape. */
static bool parse_endpoint(az_pool *p, const char *ep)
{
    const char *h;
    if (strncasecmp(ep, "http://", 7) == 0)
        h = ep + 7;
    else if (strncasecmp(ep, "https://", 8) == 0)
        h = ep + 8, p->tls = true;
    else
        return false;
    size_t al = strcspn(h, "/?#");
    if (al == 0 || al >= sizeof p->authority || memchr(h, '@', al))
        return false;
    memcpy(p->authority, h, al);
    p->authority[al] = '\0';
    const char *hs = h, *he, *port = NULL;
    if (h[0] == '[') {
        const char *rb = memchr(h, ']', al);
        if (!rb || (rb + 1 < h + al && rb[1] != ':'))
            return false;
        hs = h + 1, he = rb;
        port = rb + 1 < h + al ? rb + 2 : NULL;
    } else {
        const char *colon = memchr(h, ':', al);
        he = colon ? colon : h + al;
        port = colon ? colon + 1 : NULL;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof p->host)
        return false;
    memcpy(p->host, hs, hl);
    p->host[hl] = '\0';
    if (port && !parse_port(p, port, (size_t)(h + al - port)))
        return false;
    if (!port)
        snprintf(p->port, sizeof p->port, "%s", p->tls ? "443" : "80");
    unsigned char addr[16];
    p->ip_literal =
        inet_pton(AF_INET, p->host, addr) == 1 || inet_pton(AF_INET6, p->host, addr) == 1;
    return true;
}

/* A new session ticket: kept as the one the next connection resumes. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    az_pool *p = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    pthread_mutex_lock(&p->mu);
    SSL_SESSION_free(p->session);
    p->session = sess;
    pthread_mutex_unlock(&p->mu);
    return 1; /* the reference is ours */
}

static bool tls_setup(az_pool *p, const char *ca_file, char *why, size_t cap)
{
    p->ctx = SSL_CTX_new(TLS_client_method());
    if (!p->ctx) {
        snprintf(why, cap, "TLS could not be set up");
        return false;
    }
    SSL_CTX_set_min_proto_version(p->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(p->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_app_data(p->ctx, p);
    SSL_CTX_set_session_cache_mode(p->ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(p->ctx, on_new_session);
    int ok = ca_file ? SSL_CTX_load_verify_locations(p->ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(p->ctx);
    if (!ok)
        snprintf(p->broken, sizeof p->broken, "cannot read the CA certificates in %s",
                 ca_file ? ca_file : "the system's default locations");
    ERR_clear_error();
    return true;
}

az_pool *az_pool_new(const char *endpoint, const char *ca_file, long connect_ms, char *why,
                     size_t cap)
{
    az_pool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    if (!parse_endpoint(p, endpoint)) {
        snprintf(why, cap, "not an http or https endpoint this client serves: %s", endpoint);
        free(p);
        return NULL;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        snprintf(why, cap, "out of memory");
        free(p);
        return NULL;
    }
    p->connect_ms = connect_ms;
    if (p->tls) {
        struct sigaction sa;
        p->guard_sigpipe = sigaction(SIGPIPE, NULL, &sa) != 0 || sa.sa_handler != SIG_IGN;
        if (!tls_setup(p, ca_file, why, cap)) {
            az_pool_free(p);
            return NULL;
        }
    }
    return p;
}

static void conn_close(az_conn *k)
{
    if (!k)
        return;
    SSL_free(k->ssl); /* no close_notify: nothing waits for it */
    close(k->fd);
    free(k);
}

void az_pool_free(az_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nidle; i++)
        conn_close(p->idle[i]);
    SSL_SESSION_free(p->session);
    SSL_CTX_free(p->ctx);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

const char *az_pool_authority(const az_pool *p)
{
    return p->authority;
}

/* Fit for reuse: recently used, and nothing to read (a readable idle
 * socket was closed by the server, or holds bytes nobody asked for). */
static bool conn_reusable(const az_conn *k, double now)
{
    if (now - k->idle_since > AZ_IDLE_REUSE_S)
        return false;
    struct pollfd pf = {.fd = k->fd, .events = POLLIN};
    return poll(&pf, 1, 0) == 0;
}

static az_conn *pool_take(az_pool *p)
{
    double now = mono_s();
    for (;;) {
        az_conn *k = NULL;
        pthread_mutex_lock(&p->mu);
        if (p->nidle)
            k = p->idle[--p->nidle];
        pthread_mutex_unlock(&p->mu);
        if (!k || conn_reusable(k, now))
            return k;
        conn_close(k);
    }
}

static void pool_put(az_pool *p, az_conn *k)
{
    k->idle_since = mono_s();
    pthread_mutex_lock(&p->mu);
    if (p->nidle < AZ_CONN_IDLE_MAX) {
        p->idle[p->nidle++] = k;
        k = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    conn_close(k);
}

/* ------------------------------------------------------------------------ */
/* Opening a connection: TCP, then TLS.                                      */

static void set_sockopts(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

/* One address: a connected socket, or -1 with errno set. */
static int connect_one(const struct addrinfo *ai, double deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno == EINPROGRESS) {
        int w = wait_fd(fd, POLLOUT, deadline);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (w > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
            return fd;
        errno = w == 0 ? ETIMEDOUT : soerr ? soerr : errno;
    }
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

static int tcp_connect(const az_pool *p, double deadline, char *err, size_t cap)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(p->host, p->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, cap, "could not resolve %s: %s", p->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, last = ECONNREFUSED;
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        if ((fd = connect_one(ai, deadline)) < 0)
            last = errno;
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, cap, "could not connect to %s port %s: %s", p->host, p->port, strerror(last));
        return -1;
    }
    set_sockopts(fd);
    return fd;
}

typedef struct sigpipe_guard {
    bool on, pending;
    sigset_t old;
} sigpipe_guard;

static void sigpipe_block(const az_pool *p, sigpipe_guard *g)
{
    g->on = p->guard_sigpipe;
    if (!g->on)
        return;
    sigset_t s, pend;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigpending(&pend);
    g->pending = sigismember(&pend, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &s, &g->old);
}

static void sigpipe_unblock(sigpipe_guard *g)
{
    if (!g->on)
        return;
    if (!g->pending) { /* consume the one our write raised, if any */
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        struct timespec zero = {0, 0};
        while (sigtimedwait(&s, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* Waits for what SSL_get_error asks; false when the deadline passed. */
static bool tls_wait(const az_conn *k, int e, double deadline)
{
    return wait_fd(k->fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, deadline) > 0;
}

static az_outcome tls_handshake(az_pool *p, az_conn *k, double deadline, char *err, size_t cap)
{
    if (!(k->ssl = SSL_new(p->ctx)) || !SSL_set_fd(k->ssl, k->fd)) {
        snprintf(err, cap, "out of memory");
        return AZ_FATAL;
    }
    X509_VERIFY_PARAM *vp = SSL_get0_param(k->ssl);
    if (p->ip_literal) {
        X509_VERIFY_PARAM_set1_ip_asc(vp, p->host);
    } else {
        SSL_set_tlsext_host_name(k->ssl, p->host);
        SSL_set1_host(k->ssl, p->host);
    }
    pthread_mutex_lock(&p->mu);
    if (p->session)
        SSL_set_session(k->ssl, p->session);
    pthread_mutex_unlock(&p->mu);
    sigpipe_guard g;
    sigpipe_block(p, &g);
    az_outcome o = AZ_ANSWERED;
    for (;;) {
        ERR_clear_error();
        int rc = SSL_connect(k->ssl);
        if (rc == 1)
            break;
        int e = SSL_get_error(k->ssl, rc);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && tls_wait(k, e, deadline))
            continue;
        long v = SSL_get_verify_result(k->ssl);
        char why[256] = "timed out";
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            ERR_error_string_n(ERR_peek_last_error(), why, sizeof why);
        if (v != X509_V_OK)
            snprintf(err, cap, "the certificate of %s failed verification: %s", p->host,
                     X509_verify_cert_error_string(v));
        else
            snprintf(err, cap, "TLS handshake with %s failed: %s", p->host, why);
        o = v != X509_V_OK ? AZ_FATAL : AZ_NOT_SENT;
        break;
    }
    sigpipe_unblock(&g);
    ERR_clear_error();
    return o;
}

/* A new connection into *out; AZ_ANSWERED means connected. */
static az_outcome conn_open(az_pool *p, az_conn **out, double deadline, char *err, size_t cap)
{
    double cd = mono_s() + (double)p->connect_ms / 1000.0;
    if (cd > deadline)
        cd = deadline;
    az_conn *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(err, cap, "out of memory");
        return AZ_FATAL;
    }
    if ((k->fd = tcp_connect(p, cd, err, cap)) < 0) {
        free(k);
        return AZ_NOT_SENT;
    }
    az_outcome o = p->tls ? tls_handshake(p, k, cd, err, cap) : AZ_ANSWERED;
    if (o != AZ_ANSWERED) {
        conn_close(k);
        return o;
    }
    *out = k;
    return AZ_ANSWERED;
}

/* ------------------------------------------------------------------------ */
/* One exchange on one connection.                                           */

typedef enum ex_result { EX_DONE, EX_STALE, EX_NOT_SENT, EX_UNKNOWN, EX_FATAL } ex_result;

/* Everything of iov[0..n) onto a plain socket; *wrote counts the bytes. */
static bool plain_write(az_conn *k, struct iovec *iov, int n, double deadline, size_t *wrote,
                        char *err, size_t cap)
{
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(k->fd, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(k->fd, POLLOUT, deadline) > 0)
                continue;
            snprintf(err, cap, "sending the request failed: %s",
                     errno == EAGAIN ? "timed out" : strerror(errno));
            return false;
        }
        *wrote += (size_t)w;
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len)
            left -= iov->iov_len, iov++, n--;
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return true;
}

/* s[0..len) as TLS records; *wrote is len once SSL_write took it all. */
static bool tls_write(az_pool *p, az_conn *k, const char *s, size_t len, double deadline,
                      size_t *wrote, char *err, size_t cap)
{
    sigpipe_guard g;
    sigpipe_block(p, &g);
    bool ok = false;
    for (;;) {
        ERR_clear_error();
        int rc = SSL_write(k->ssl, s, (int)len);
        if (rc > 0) {
            *wrote = len;
            ok = true;
            break;
        }
        int e = SSL_get_error(k->ssl, rc);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && tls_wait(k, e, deadline))
            continue;
        snprintf(err, cap, "sending the request failed (TLS)");
        *wrote = 1; /* some records may have left */
        break;
    }
    sigpipe_unblock(&g);
    return ok;
}

static bool conn_write(az_pool *p, az_conn *k, const char *head, size_t hl, const char *body,
                       size_t bl, double deadline, size_t *wrote, char *err, size_t cap)
{
    *wrote = 0;
    if (!k->ssl) {
        struct iovec iov[2] = {{(void *)head, hl}, {(void *)body, bl}};
        return plain_write(k, iov, bl ? 2 : 1, deadline, wrote, err, cap);
    }
    if (!bl)
        return tls_write(p, k, head, hl, deadline, wrote, err, cap);
    char *all = malloc(hl + bl); /* one record for head and body */
    if (!all) {
        snprintf(err, cap, "out of memory");
        return false;
    }
    memcpy(all, head, hl);
    memcpy(all + hl, body, bl);
    bool ok = tls_write(p, k, all, hl + bl, deadline, wrote, err, cap);
    free(all);
    return ok;
}

/* Some bytes of the answer: > 0 bytes, 0 the end of the connection, -1 an
 * error, -2 the deadline passed. wait_first: poll before reading. */
static ssize_t conn_read(az_conn *k, char *buf, size_t cap, double deadline, bool wait_first)
{
    for (;;) {
        if (wait_first) {
            int w = wait_fd(k->fd, POLLIN, deadline);
            if (w <= 0)
                return w == 0 ? -2 : -1;
        }
        wait_first = true;
        if (!k->ssl) {
            ssize_t n = recv(k->fd, buf, cap, 0);
            if (n >= 0)
                return n;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return -1;
            continue;
        }
        ERR_clear_error();
        int n = SSL_read(k->ssl, buf, (int)cap);
        if (n > 0)
            return n;
        int e = SSL_get_error(k->ssl, n);
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
            return 0;
        if (e == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(k->fd, POLLOUT, deadline) <= 0)
                return -2;
            wait_first = false;
            continue;
        }
        if (e != SSL_ERROR_WANT_READ)
            return -1;
    }
}

/* Reads the answer into r; *keep says whether the connection may serve
 * another request. */
static ex_result read_answer(az_conn *k, bool reused, double deadline, long timeout_ms, az_resp *r,
                             bool *keep, char *err, size_t cap)
{
    char buf[AZ_READ_CHUNK];
    az_hparse hp;
    az_hparse_init(&hp, r);
    size_t got = 0;
    ex_result x = EX_UNKNOWN;
    for (bool first = true;; first = false) {
        ssize_t n = conn_read(k, buf, sizeof buf, deadline, first);
        if (n == -2) {
            snprintf(err, cap, "no answer within %ld ms (%zu bytes received)", timeout_ms, got);
            break;
        }
        az_hp_rc rc;
        size_t used = 0;
        if (n <= 0) {
            if (n == 0 && az_hparse_eof(&hp) == AZ_HP_END) {
                x = EX_DONE;
                break;
            }
            if (!got && reused) {
                x = EX_STALE;
                break;
            }
            snprintf(err, cap, "the connection ended %s",
                     got ? "in the middle of the answer" : "without an answer");
            break;
        }
        got += (size_t)n;
        rc = az_hparse_feed(&hp, buf, (size_t)n, &used);
        if (rc == AZ_HP_END) {
            *keep = !hp.close && used == (size_t)n;
            x = EX_DONE;
            break;
        }
        if (rc == AZ_HP_BIG) {
            r->too_large = true;
            snprintf(err, cap, "the reply is larger than %zu bytes", AZ_BODY_MAX);
            x = EX_FATAL;
            break;
        }
        if (rc == AZ_HP_BAD) {
            snprintf(err, cap, "an answer that is not HTTP/1.1 this client reads");
            break;
        }
    }
    if (x == EX_DONE)
        r->status = hp.status;
    az_hparse_clear(&hp);
    return x;
}

static ex_result exchange(az_pool *p, az_conn *k, bool reused, const char *head, size_t hl,
                          const char *body, size_t bl, double deadline, long timeout_ms, az_resp *r,
                          bool *keep, char *err, size_t cap)
{
    *keep = false;
    size_t wrote = 0;
    if (!conn_write(p, k, head, hl, body, bl, deadline, &wrote, err, cap)) {
        if (reused)
            return EX_STALE; /* a request cut short is not processed */
        r->sent = r->sent || wrote > 0;
        return wrote ? EX_UNKNOWN : EX_NOT_SENT;
    }
    r->sent = true;
    r->requests_out++;
    return read_answer(k, reused, deadline, timeout_ms, r, keep, err, cap);
}

az_outcome az_pool_send(az_pool *p, const char *head, size_t hl, const char *body, size_t bl,
                        long timeout_ms, az_resp *r, char *err, size_t cap)
{
    if (p->broken[0]) {
        snprintf(err, cap, "%s", p->broken);
        return AZ_FATAL;
    }
    double deadline = mono_s() + (double)timeout_ms / 1000.0;
    for (int round = 0;; round++) {
        az_conn *k = round == 0 ? pool_take(p) : NULL; /* a retry: a new connection */
        bool reused = k != NULL;
        if (!k) {
            az_outcome o = conn_open(p, &k, deadline, err, cap);
            if (o != AZ_ANSWERED)
                return o;
        }
        bool keep = false;
        ex_result x =
            exchange(p, k, reused, head, hl, body, bl, deadline, timeout_ms, r, &keep, err, cap);
        if (keep)
            pool_put(p, k);
        else
            conn_close(k);
        switch (x) {
        case EX_DONE:
            return AZ_ANSWERED;
        case EX_STALE:
            continue;
        case EX_NOT_SENT:
            return AZ_NOT_SENT;
        case EX_FATAL:
            return AZ_FATAL;
        default:
            return AZ_UNKNOWN;
        }
    }
}

/*
 * px_main.c -- mtable-proxy: read the settings, start both listeners, serve
 * until SIGINT or SIGTERM.
 *
 * Stopping is graceful, in an order that lets a push go on without this
 * proxy at once: stop being ready (table requests answer 503 ServerBusy,
 * which SDKs retry), let the requests in flight finish (stopping the
 * listeners waits for them), then give the lease back to the authority.
 */
#include "px.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* The backend client's token refreshes, in this process's log. */
static void on_backend_log(bool warn, const char *msg)
{
    px_log(warn ? PX_LOG_WARN : PX_LOG_INFO, "%s", msg);
}

int main(int argc, char **argv)
{
    px_settings s;
    int rc = px_settings_load(&s, argc, argv, stdout, stderr);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    px_log_set_level(s.log_level);
    px_log_set_format(s.log_format);
    az_client_set_log(on_backend_log);
    if (s.backend_ca[0] && !az_client_set_ca_file(s.backend_ca))
        return 1;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    px_app *app = px_app_new(&s, stderr);
    if (!app)
        return 1;
    px_servers *srv = px_serve_start(app, stderr);
    if (!srv) {
        px_app_free(app);
        return 1;
    }
    px_log(PX_LOG_INFO,
           "serving account %s on %s://%s:%d/%s (admin on %s://%s:%d), old=%s new=%s, phase %s",
           s.account, s.tls_cert[0] ? "https" : "http", s.listen_host, s.listen_port, s.account,
           s.admin_tls_cert[0] ? "https" : "http", s.admin_host, s.admin_port,
           strcmp(s.old_spec, "memory") == 0 ? "memory" : "azure",
           strcmp(s.new_spec, "memory") == 0 ? "memory" : "azure",
           mt_phase_name(px_app_config(app).phase));
    while (!stop)
        pause();
    px_log(PX_LOG_INFO, "stopping: not ready, finishing the requests in flight");
    px_app_drain(app);
    px_serve_stop(srv);
    px_app_release(app);
    px_app_free(app);
    px_log(PX_LOG_INFO, "stopped");
    return 0;
}

/*
 * test_px_settings.c -- mtable-proxy's settings: defaults, environment,
 * flags, and the refusals (bad values, admin beyond loopback without a
 * token), the table map; and the continuation tokens the proxy hands to
 * clients.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "px.h"

static int load(px_settings *s, int argc, char **argv)
{
    FILE *null = fopen("/dev/null", "w");
    int rc = px_settings_load(s, argc, argv, null, null);
    fclose(null);
    return rc;
}

static void clear_env(void)
{
    const char *vars[] = {"MTABLE_LISTEN",
                          "MTABLE_ADMIN_LISTEN",
                          "MTABLE_ACCOUNT_NAME",
                          "MTABLE_ACCOUNT_KEY",
                          "MTABLE_OLD",
                          "MTABLE_NEW",
                          "MTABLE_ADMIN_TOKEN",
                          "MTABLE_PROXY_ID",
                          "MTABLE_LOG_LEVEL",
                          "MTABLE_MAX_CONNECTIONS",
                          "MTABLE_CONFIG_ENDPOINT",
                          "MTABLE_STATE_STORE",
                          "MTABLE_LEASE_MS",
                          "MTABLE_COPY_PARALLEL",
                          "MTABLE_COPY_RATE",
                          "MTABLE_LOG_FORMAT",
                          "MTABLE_RECOVER_PHASE",
                          "MTABLE_REST_LEASE_MS",
                          "MTABLE_TABLE_MAP"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
}

static void test_defaults_serve_the_development_account(void **state)
{
    (void)state;
    clear_env();
    px_settings s;
    char *argv[] = {"mtable-proxy"};
    assert_int_equal(load(&s, 1, argv), 0);
    assert_string_equal(s.listen_host, "127.0.0.1");
    assert_int_equal(s.listen_port, 10002);
    assert_int_equal(s.admin_port, 10090);
    assert_string_equal(s.account, "devstoreaccount1");
    assert_int_equal(s.key_len, 64);
    assert_string_equal(s.old_spec, "memory");
    assert_string_equal(s.new_spec, "memory");
    assert_string_equal(s.proxy_id, "127.0.0.1:10002");
}

static void test_control_plane_settings(void **state)
{
    (void)state;
    clear_env();
    px_settings s;
    char *none[] = {"mtable-proxy"};
    assert_int_equal(load(&s, 1, none), 0);
    assert_string_equal(s.config_endpoint, ""); /* its own authority */
    assert_string_equal(s.state_store, "");      /* chosen from the backends: */
    assert_string_equal(px_settings_state_store(&s), "memory"); /* both in memory */
    assert_int_equal(s.lease_ms, 10000);
    assert_int_equal(s.rest_lease_ms, 3900000); /* over an hour of authority outage */
    assert_int_equal(s.copy_parallel, 4);
    assert_int_equal(s.copy_rate, 0);
    assert_string_equal(s.log_format, "text");

    setenv("MTABLE_STATE_STORE", "file:/var/lib/mtable/state.json", 1);
    setenv("MTABLE_LEASE_MS", "3000", 1);
    char *argv[] = {"mtable-proxy", "--config-endpoint", "http://authority:10090/",
                    "--copy-parallel", "16", "--copy-rate=2500", "--log-format", "json"};
    assert_int_equal(load(&s, 8, argv), 0);
    assert_string_equal(s.config_endpoint, "http://authority:10090"); /* slash dropped */
    assert_string_equal(s.state_store, "file:/var/lib/mtable/state.json");
    assert_int_equal(s.lease_ms, 3000);
    assert_int_equal(s.copy_parallel, 16);
    assert_int_equal(s.copy_rate, 2500);
    assert_string_equal(s.log_format, "json");
    clear_env();

    char *bad[][3] = {
        {"mtable-proxy", "--config-endpoint", "authority:10090"}, /* no scheme */
        {"mtable-proxy", "--lease-ms", "500"},                    /* below a second */
        {"mtable-proxy", "--copy-parallel", "0"},
        {"mtable-proxy", "--copy-parallel", "65"},
        {"mtable-proxy", "--copy-rate", "-1"},
        {"mtable-proxy", "--log-format", "xml"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(load(&s, 3, bad[i]), 2);
}

#define AZ_OLD "DefaultEndpointsProtocol=http;AccountName=a1;AccountKey=" KEY ";TableEndpoint=http://127.0.0.1:1/a1"
#define AZ_NEW "DefaultEndpointsProtocol=http;AccountName=a2;AccountKey=" KEY ";TableEndpoint=http://127.0.0.1:2/a2"
#define KEY "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

/* With a backend in Azure the authority's state must survive a restart:
 * by default it lives in the new account, and memory is refused. */
static void test_state_is_durable_with_azure_backends(void **state)
{
    (void)state;
    clear_env();
    px_settings s;
    char *dflt[] = {"mtable-proxy", "--old", AZ_OLD, "--new", AZ_NEW};
    assert_int_equal(load(&s, 5, dflt), 0);
    assert_string_equal(px_settings_state_store(&s), AZ_NEW);
    char *mem[] = {"mtable-proxy", "--old", AZ_OLD, "--new", AZ_NEW, "--state-store", "memory"};
    assert_int_equal(load(&s, 7, mem), 2);
    char *file[] = {"mtable-proxy", "--old", AZ_OLD, "--new", AZ_NEW, "--state-store", "file:/x"};
    assert_int_equal(load(&s, 7, file), 0);
    assert_string_equal(px_settings_state_store(&s), "file:/x");
    /* A sidecar keeps no state: memory is not its store to refuse. */
    char *side[] = {"mtable-proxy", "--old", AZ_OLD, "--new", AZ_NEW, "--state-store", "memory",
                    "--config-endpoint", "http://127.0.0.1:9"};
    assert_int_equal(load(&s, 9, side), 0);
    char *rec[] = {"mtable-proxy", "--recover-phase", "prefer_new"};
    assert_int_equal(load(&s, 3, rec), 0);
    assert_true(s.recover);
    assert_int_equal(s.recover_phase, MT_PHASE_PREFER_NEW);
    char *badrec[] = {"mtable-proxy", "--recover-phase", "sideways"};
    assert_int_equal(load(&s, 3, badrec), 2);
}

/* The fingerprint names the backends, never the keys, and tells two
 * different sets apart. */
static void test_fingerprint_names_endpoints_not_keys(void **state)
{
    (void)state;
    clear_env();
    px_settings a, b;
    char *one[] = {"mtable-proxy", "--old", AZ_OLD, "--new", AZ_NEW};
    char *other[] = {"mtable-proxy", "--old", AZ_NEW, "--new", AZ_OLD};
    assert_int_equal(load(&a, 5, one), 0);
    assert_int_equal(load(&b, 5, other), 0);
    char fa[CFG_FINGERPRINT_MAX], fb[CFG_FINGERPRINT_MAX], fa2[CFG_FINGERPRINT_MAX], text[1024];
    px_settings_fingerprint(&a, fa, text, sizeof text);
    px_settings_fingerprint(&b, fb, NULL, 0);
    px_settings_fingerprint(&a, fa2, NULL, 0);
    assert_string_equal(fa, fa2);
    assert_string_not_equal(fa, fb);
    assert_non_null(strstr(text, "http://127.0.0.1:1/a1"));
    assert_null(strstr(text, "Eby8"));
}

/* --table-map: what it accepts, how it maps both ways, and that it is part
 * of the fingerprint (the same map in another order or case gives the
 * same one). */
static void test_table_map(void **state)
{
    (void)state;
    clear_env();
    px_table_map m;
    char why[200];
    assert_true(px_table_map_parse("", &m, why, sizeof why));
    assert_int_equal(m.n, 0);
    assert_true(px_table_map_parse("Orders=Orders2026,users=people", &m, why, sizeof why));
    assert_int_equal(m.n, 2);
    assert_string_equal(px_table_map_to_new(&m, "orders"), "Orders2026");
    assert_string_equal(px_table_map_to_new(&m, "Users"), "people");
    assert_string_equal(px_table_map_to_new(&m, "other"), "other");
    assert_string_equal(px_table_map_to_new(NULL, "other"), "other");
    assert_string_equal(px_table_map_from_new(&m, "ORDERS2026"), "Orders");
    assert_string_equal(px_table_map_from_new(&m, "other"), "other");
    /* The new account's own "Orders" is not the application's Orders. */
    assert_null(px_table_map_from_new(&m, "orders"));

    const char *bad[] = {"a=bcd",
                         "abc=",
                         "abc",
                         "abc=def,",
                         "abc=d-f",
                         "abc=ABC",
                         "abc=def,ABC=ghi",
                         "abc=def,ghi=DEF",
                         "1bc=def",
                         "abc=mtablestate",
                         "tables=abc",
                         ",abc=def"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (px_table_map_parse(bad[i], &m, why, sizeof why))
            fail_msg("accepted '%s'", bad[i]);
        assert_true(why[0] != '\0');
        assert_int_equal(m.n, 0);
    }

    px_settings a, b, c;
    char *plain[] = {"mtable-proxy", "--old", AZ_OLD, "--new", AZ_NEW};
    char *one[] = {"mtable-proxy", "--old",       AZ_OLD,           "--new",
                   AZ_NEW,         "--table-map", "abc=def,ghi=jkl"};
    assert_int_equal(load(&a, 5, plain), 0);
    assert_int_equal(load(&b, 7, one), 0);
    setenv("MTABLE_TABLE_MAP", "GHI=jkl,abc=DEF", 1);
    assert_int_equal(load(&c, 5, plain), 0);
    unsetenv("MTABLE_TABLE_MAP");
    char fa[CFG_FINGERPRINT_MAX], fb[CFG_FINGERPRINT_MAX], fc[CFG_FINGERPRINT_MAX], text[1024];
    px_settings_fingerprint(&a, fa, NULL, 0);
    px_settings_fingerprint(&b, fb, text, sizeof text);
    px_settings_fingerprint(&c, fc, NULL, 0);
    assert_string_not_equal(fa, fb);
    assert_string_equal(fb, fc);
    assert_non_null(strstr(text, " map=abc=def,ghi=jkl"));
    char *broken[] = {"mtable-proxy", "--table-map", "abc=def,abc=xyz"};
    assert_int_equal(load(&a, 3, broken), 2);
}

static void test_flags_win_over_environment(void **state)
{
    (void)state;
    clear_env();
    setenv("MTABLE_LISTEN", "127.0.0.1:2000", 1);
    setenv("MTABLE_ADMIN_LISTEN", "127.0.0.1:2001", 1);
    px_settings s;
    char *argv[] = {"mtable-proxy", "--listen", "localhost:3000", "--proxy-id=p7"};
    assert_int_equal(load(&s, 4, argv), 0);
    assert_int_equal(s.listen_port, 3000);
    assert_string_equal(s.listen_host, "127.0.0.1");
    assert_int_equal(s.admin_port, 2001); /* from the environment */
    assert_string_equal(s.proxy_id, "p7");
    clear_env();
}

static void test_bad_values_are_refused(void **state)
{
    (void)state;
    clear_env();
    px_settings s;
    char *bad_port[] = {"mtable-proxy", "--listen", "127.0.0.1:99999"};
    assert_int_equal(load(&s, 3, bad_port), 2);
    char *no_port[] = {"mtable-proxy", "--listen", "127.0.0.1"};
    assert_int_equal(load(&s, 3, no_port), 2);
    char *bad_key[] = {"mtable-proxy", "--account-key", "not*base64"};
    assert_int_equal(load(&s, 3, bad_key), 2);
    char *unknown[] = {"mtable-proxy", "--frobnicate"};
    assert_int_equal(load(&s, 2, unknown), 2);
    char *missing[] = {"mtable-proxy", "--account"};
    assert_int_equal(load(&s, 2, missing), 2);
    char *level[] = {"mtable-proxy", "--log-level", "loud"};
    assert_int_equal(load(&s, 3, level), 2);
    setenv("MTABLE_MAX_CONNECTIONS", "0", 1);
    char *plain[] = {"mtable-proxy"};
    assert_int_equal(load(&s, 1, plain), 2);
    clear_env();
}

static void test_admin_beyond_loopback_needs_a_token(void **state)
{
    (void)state;
    clear_env();
    px_settings s;
    char *open_admin[] = {"mtable-proxy", "--admin-listen", "0.0.0.0:10090"};
    assert_int_equal(load(&s, 3, open_admin), 2);
    char *with_token[] = {"mtable-proxy", "--admin-listen", "0.0.0.0:10090", "--admin-token",
                          "s3cret"};
    assert_int_equal(load(&s, 5, with_token), 0);
    assert_string_equal(s.admin_token, "s3cret");
}

/* https and bearer tokens: the certificate and key go together, tokens
 * need https and an issuer, an unreadable CA file is refused. */
static void test_tls_and_token_settings(void **state)
{
    (void)state;
    clear_env();
    const char *vars[] = {"MTABLE_TLS_CERT",     "MTABLE_TLS_KEY",     "MTABLE_JWKS",
                          "MTABLE_TOKEN_ISSUER", "MTABLE_TOKEN_ROLES", "MTABLE_BACKEND_CA"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    px_settings s;
    char *cert_only[] = {"mtable-proxy", "--tls-cert", "c.pem"};
    assert_int_equal(load(&s, 3, cert_only), 2);
    char *both[] = {"mtable-proxy", "--tls-cert", "c.pem", "--tls-key", "k.pem"};
    assert_int_equal(load(&s, 5, both), 0);
    assert_string_equal(s.tls_cert, "c.pem");
    assert_string_equal(s.tls_key, "k.pem");
    char *jwks_http[] = {"mtable-proxy", "--jwks", "keys.json", "--token-issuer", "https://i/"};
    assert_int_equal(load(&s, 5, jwks_http), 2);
    char *jwks_no_issuer[] = {"mtable-proxy", "--tls-cert", "c", "--tls-key", "k",
                              "--jwks",       "keys.json"};
    assert_int_equal(load(&s, 7, jwks_no_issuer), 2);
    char *jwks_ok[] = {"mtable-proxy",
                       "--tls-cert",
                       "c",
                       "--tls-key",
                       "k",
                       "--jwks",
                       "keys.json",
                       "--token-issuer",
                       "https://sts.windows.net/t/"};
    assert_int_equal(load(&s, 9, jwks_ok), 0);
    assert_string_equal(s.token_issuer, "https://sts.windows.net/t/");
    char *issuer_alone[] = {"mtable-proxy", "--token-issuer", "https://i/"};
    assert_int_equal(load(&s, 3, issuer_alone), 2);
    char *no_ca[] = {"mtable-proxy", "--backend-ca", "/nonexistent/ca.pem"};
    assert_int_equal(load(&s, 3, no_ca), 2);
    setenv("MTABLE_TLS_KEY", "k.pem", 1); /* from the environment as well */
    assert_int_equal(load(&s, 3, cert_only), 0);
    unsetenv("MTABLE_TLS_KEY");
}

static void test_help_and_version(void **state)
{
    (void)state;
    clear_env();
    px_settings s;
    char *help[] = {"mtable-proxy", "--help"};
    assert_int_equal(load(&s, 2, help), 1);
    char *version[] = {"mtable-proxy", "--version"};
    assert_int_equal(load(&s, 2, version), 1);
}

static void test_continuation_tokens_round_trip(void **state)
{
    (void)state;
    const char *keys[] = {"", "p1", "a'b", "with space/and?", "\xf0\x9f\x98\x80 emoji",
                          "\xe4\xb8\xad\xe6\x96\x87"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char *tok = px_token_encode(keys[i]);
        assert_non_null(tok);
        /* header-safe: printable ASCII without separators */
        for (const char *p = tok; *p; p++)
            assert_true(*p > 32 && *p < 127 && *p != '/' && *p != '+' && *p != '=');
        char *back = px_token_decode(tok);
        assert_non_null(back);
        assert_string_equal(back, keys[i]);
        free(tok);
        free(back);
    }
    assert_null(px_token_decode("garbage"));
    assert_null(px_token_decode("1!***"));
    assert_null(px_token_decode(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_serve_the_development_account),
        cmocka_unit_test(test_flags_win_over_environment),
        cmocka_unit_test(test_control_plane_settings),
        cmocka_unit_test(test_state_is_durable_with_azure_backends),
        cmocka_unit_test(test_fingerprint_names_endpoints_not_keys),
        cmocka_unit_test(test_table_map),
        cmocka_unit_test(test_bad_values_are_refused),
        cmocka_unit_test(test_admin_beyond_loopback_needs_a_token),
        cmocka_unit_test(test_tls_and_token_settings),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_continuation_tokens_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_az_connstr.c -- connection strings: every accepted form resolves to
 * the right endpoint and credential, every malformed one is refused with a
 * 400 that names the setting and never echoes a secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "az.h"
#include "az_client.h"

/* A 64-byte key, base64: "0123456789abcdef" four times. */
#define KEY_B64                                                                                    \
    "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg=="
#define SAS "sv=2019-02-02&ss=t&srt=sco&sp=rwdlacu&se=2030-01-01T00:00:00Z&sig=c2VjcmV0c2ln%3D"

static az_connstr parse_ok(const char *s)
{
    az_connstr cs;
    mt_status st = az_connstr_parse(s, &cs);
    if (!mt_is_ok(&st))
        fail_msg("'%s' refused: %d %s %s", s, st.http, st.code, st.message);
    return cs;
}

/* Refused with 400 InvalidInput, a message containing want, none of the
 * secrets, and an empty result. */
static void parse_bad(const char *s, const char *want)
{
    az_connstr cs;
    memset(&cs, 0x5a, sizeof cs);
    mt_status st = az_connstr_parse(s, &cs);
    if (st.http != 400)
        fail_msg("'%s' gave %d, not 400", s ? s : "(null)", st.http);
    assert_string_equal(st.code, MT_ERR_INVALID_INPUT);
    if (!strstr(st.message, want))
        fail_msg("'%s': message '%s' lacks '%s'", s ? s : "(null)", st.message, want);
    assert_null(strstr(st.message, "MDEyMzQ1"));
    assert_null(strstr(st.message, "c2VjcmV0"));
    assert_null(strstr(st.message, "Eby8vdM0"));
    assert_null(cs.endpoint);
    assert_null(cs.account);
    assert_null(cs.key);
    assert_null(cs.sas);
    assert_null(cs.table);
}

static void test_dev_storage(void **state)
{
    (void)state;
    az_connstr cs = parse_ok("UseDevelopmentStorage=true");
    assert_string_equal(cs.endpoint, "http://127.0.0.1:10002/devstoreaccount1");
    assert_string_equal(cs.account, AZ_DEV_ACCOUNT);
    assert_true(cs.dev_storage);
    assert_int_equal(cs.key_len, 64);
    uint8_t *key;
    size_t len;
    assert_true(az_base64_decode(AZ_DEV_KEY, strlen(AZ_DEV_KEY), &key, &len));
    assert_memory_equal(cs.key, key, len);
    free(key);
    assert_null(cs.sas);
    assert_null(cs.table);
    az_connstr_clear(&cs);
    assert_null(cs.endpoint);
    az_connstr_clear(&cs); /* twice is harmless */

    /* Names are case-insensitive, so is the value true; blanks and empty
     * segments are fine. */
    cs = parse_ok("  usedevelopmentstorage = TRUE ;;");
    assert_string_equal(cs.endpoint, "http://127.0.0.1:10002/devstoreaccount1");
    az_connstr_clear(&cs);

    cs = parse_ok("UseDevelopmentStorage=true;TableName=Orders");
    assert_string_equal(cs.table, "Orders");
    az_connstr_clear(&cs);
}

static void test_dev_proxy(void **state)
{
    (void)state;
    static const struct {
        const char *proxy, *endpoint;
    } cases[] = {
        {"http://myproxy", "http://myproxy:10002/devstoreaccount1"},
        {"http://myproxy:8888/", "http://myproxy:10002/devstoreaccount1"},
        {"HTTPS://ipv4.fiddler:8888/some/path", "https://ipv4.fiddler:10002/devstoreaccount1"},
        {"http://[::1]:8080", "http://[::1]:10002/devstoreaccount1"},
        {"http://[::1]", "http://[::1]:10002/devstoreaccount1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char s[256];
        snprintf(s, sizeof s, "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=%s",
                 cases[i].proxy);
        az_connstr cs = parse_ok(s);
        assert_string_equal(cs.endpoint, cases[i].endpoint);
        assert_string_equal(cs.account, AZ_DEV_ACCOUNT);
        az_connstr_clear(&cs);
    }
}

static void test_account_key(void **state)
{
    (void)state;
    az_connstr cs = parse_ok("DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=" KEY_B64
                             ";EndpointSuffix=core.windows.net");
    assert_string_equal(cs.endpoint, "https://myacct.table.core.windows.net");
    assert_string_equal(cs.account, "myacct");
    assert_int_equal(cs.key_len, 64);
    assert_memory_equal(cs.key, "0123456789abcdef0123456789abcdef", 32);
    assert_null(cs.sas);
    assert_false(cs.dev_storage);
    az_connstr_clear(&cs);

    /* Defaults: https and core.windows.net. */
    cs = parse_ok("AccountName=myacct;AccountKey=" KEY_B64);
    assert_string_equal(cs.endpoint, "https://myacct.table.core.windows.net");
    az_connstr_clear(&cs);

    cs = parse_ok("DefaultEndpointsProtocol=HTTP;AccountName=a1;AccountKey=" KEY_B64
                  ";EndpointSuffix=core.chinacloudapi.cn");
    assert_string_equal(cs.endpoint, "http://a1.table.core.chinacloudapi.cn");
    az_connstr_clear(&cs);
}

static void test_table_endpoint(void **state)
{
    (void)state;
    /* Azurite's documented form, with the other services' endpoints. */
    az_connstr cs =
        parse_ok("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" KEY_B64
                 ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
                 "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
                 "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1/;");
    assert_string_equal(cs.endpoint, "http://127.0.0.1:10002/devstoreaccount1");
    assert_string_equal(cs.account, "devstoreaccount1");
    az_connstr_clear(&cs);

    /* TableEndpoint decides the scheme, whatever the protocol says. */
    cs = parse_ok("DefaultEndpointsProtocol=http;AccountName=a1;AccountKey=" KEY_B64
                  ";TableEndpoint=HTTPS://custom.example.com:8443");
    assert_string_equal(cs.endpoint, "https://custom.example.com:8443");
    az_connstr_clear(&cs);

    cs = parse_ok("AccountName=a1;AccountKey=" KEY_B64
                  ";TableSecondaryEndpoint=https://a1-secondary.table.core.windows.net;"
                  "FileEndpoint=https://a1.file.core.windows.net");
    assert_string_equal(cs.endpoint, "https://a1.table.core.windows.net");
    az_connstr_clear(&cs);
}

static void test_sas(void **state)
{
    (void)state;
    az_connstr cs = parse_ok("TableEndpoint=https://acct.table.core.windows.net/;"
                             "SharedAccessSignature=" SAS);
    assert_string_equal(cs.endpoint, "https://acct.table.core.windows.net");
    assert_null(cs.account);
    assert_null(cs.key);
    assert_string_equal(cs.sas, SAS);
    az_connstr_clear(&cs);

    /* A leading '?' is dropped; AccountName alone gives the endpoint. */
    cs = parse_ok("AccountName=acct;SharedAccessSignature=?" SAS);
    assert_string_equal(cs.sas, SAS);
    assert_string_equal(cs.endpoint, "https://acct.table.core.windows.net");
    assert_string_equal(cs.account, "acct");
    az_connstr_clear(&cs);
}

static void test_table_name(void **state)
{
    (void)state;
    az_connstr cs = parse_ok("AccountName=a1;AccountKey=" KEY_B64 ";tablename=abc");
    assert_string_equal(cs.table, "abc");
    az_connstr_clear(&cs);
    parse_bad("UseDevelopmentStorage=true;TableName=ab", "TableName");
    parse_bad("UseDevelopmentStorage=true;TableName=tables", "TableName");
    parse_bad("UseDevelopmentStorage=true;TableName=9lives", "TableName");
}

static void test_rejections(void **state)
{
    (void)state;
    parse_bad(NULL, "empty");
    parse_bad("", "empty");
    parse_bad(" ; ;; ", "empty");
    parse_bad("AccountName", "segment 1 is not Name=value");
    parse_bad("AccountName=a1;" KEY_B64, "unknown setting in segment 2");
    parse_bad("AccountName=a1;MDEyMzQ1Njc4OWFiY2RlZjAx", "segment 2 is not Name=value");
    parse_bad("=x", "no setting name");
    parse_bad("AccountName=a1;AccountKey=" KEY_B64 ";Colour=blue", "unknown setting 'Colour'");
    parse_bad("AccountName=a1;AccountName=a2;AccountKey=" KEY_B64,
              "AccountName is given more than once");
    parse_bad("AccountName=a1;accountkey=" KEY_B64 ";AccountKey=" KEY_B64,
              "AccountKey is given more than once");
    parse_bad("AccountName=;AccountKey=" KEY_B64, "AccountName has an empty value");
    parse_bad("AccountName=a1;AccountKey=MDEy!!!!", "AccountKey is not valid base64");
    parse_bad("AccountName=a1;AccountKey=MDEyMzQ1Njc", "AccountKey is not valid base64");
    parse_bad("AccountName=a1;AccountKey=" KEY_B64 ";SharedAccessSignature=" SAS, "not both");
    parse_bad("AccountName=a1", "no credential");
    parse_bad("TableEndpoint=http://h/x", "no credential");
    parse_bad("AccountKey=" KEY_B64, "AccountKey needs AccountName");
    parse_bad("SharedAccessSignature=" SAS, "AccountName or TableEndpoint is required");
    parse_bad("SharedAccessSignature=sv=2019-02-02&sp=r;AccountName=a1", "no sig");
    parse_bad("DefaultEndpointsProtocol=ftp;AccountName=a1;AccountKey=" KEY_B64,
              "DefaultEndpointsProtocol must be http or https");
    parse_bad("AccountName=a1;AccountKey=" KEY_B64 ";TableEndpoint=ftp://h", "TableEndpoint");
    parse_bad("AccountName=a1;AccountKey=" KEY_B64 ";TableEndpoint=http://", "TableEndpoint");
    parse_bad("AccountName=a1;AccountKey=" KEY_B64 ";TableEndpoint=http://h/t?x=1",
              "TableEndpoint");
    parse_bad("AccountName=a1;AccountKey=" KEY_B64 ";TableEndpoint=h.example.com", "TableEndpoint");
    parse_bad("AccountName=a1;AccountKey=" KEY_B64 ";EndpointSuffix=core/windows",
              "EndpointSuffix");
    parse_bad("AccountName=a.b;AccountKey=" KEY_B64, "AccountName must be");
    parse_bad("UseDevelopmentStorage=false", "only the value true");
    parse_bad("UseDevelopmentStorage=yes", "only the value true");
    parse_bad("UseDevelopmentStorage=true;AccountName=devstoreaccount1",
              "cannot be combined with AccountName");
    parse_bad("UseDevelopmentStorage=true;AccountKey=" KEY_B64,
              "cannot be combined with AccountKey");
    parse_bad("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=not a url",
              "DevelopmentStorageProxyUri");
    parse_bad("AccountName=a1;AccountKey=" KEY_B64 ";DevelopmentStorageProxyUri=http://p",
              "needs UseDevelopmentStorage");
}

/* The Entra ID credentials, from the string and from the environment. */
static void test_token_credentials(void **state)
{
    (void)state;
    static const char *const vars[] = {"AZURE_TENANT_ID",      "AZURE_CLIENT_ID",
                                       "AZURE_CLIENT_SECRET",  "AZURE_FEDERATED_TOKEN_FILE",
                                       "AZURE_AUTHORITY_HOST", "IDENTITY_ENDPOINT",
                                       "IDENTITY_HEADER"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    az_connstr cs = parse_ok("AccountName=acct;Credential=ClientSecret;TenantId=t-1;ClientId=app;"
                             "ClientSecret=c2VjcmV0;AuthorityHost=https://login.example/");
    assert_int_equal(cs.cred.kind, AZ_CRED_CLIENT_SECRET);
    assert_string_equal(cs.endpoint, "https://acct.table.core.windows.net");
    assert_string_equal(cs.cred.tenant_id, "t-1");
    assert_string_equal(cs.cred.client_id, "app");
    assert_string_equal(cs.cred.client_secret, "c2VjcmV0");
    assert_string_equal(cs.cred.authority_host, "https://login.example/");
    assert_null(cs.key);
    assert_null(cs.sas);
    char *d = az_connstr_describe(&cs);
    assert_string_equal(d, "https://acct.table.core.windows.net (account acct, Entra ID client "
                           "secret)");
    free(d);
    az_connstr_clear(&cs);

    /* A pod set up for workload identity: everything but the kind from the
     * environment; the string wins where it says something. */
    setenv("AZURE_TENANT_ID", "env-tenant", 1);
    setenv("AZURE_CLIENT_ID", "env-client", 1);
    setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token", 1);
    cs = parse_ok("AccountName=acct;Credential=workloadidentity;ClientId=mine");
    assert_int_equal(cs.cred.kind, AZ_CRED_WORKLOAD);
    assert_string_equal(cs.cred.tenant_id, "env-tenant");
    assert_string_equal(cs.cred.client_id, "mine");
    assert_string_equal(cs.cred.token_file, "/var/run/token");
    assert_null(cs.cred.authority_host);
    az_connstr_clear(&cs);

    /* A managed identity needs nothing; IDENTITY_* come with it. */
    cs = parse_ok("TableEndpoint=https://h/acct;Credential=ManagedIdentity");
    assert_int_equal(cs.cred.kind, AZ_CRED_MANAGED);
    assert_string_equal(cs.cred.client_id, "env-client");
    assert_null(cs.cred.identity_endpoint);
    az_connstr_clear(&cs);
    setenv("IDENTITY_ENDPOINT", "http://localhost:42356/msi/token", 1);
    setenv("IDENTITY_HEADER", "hdr", 1);
    cs = parse_ok("TableEndpoint=https://h/acct;Credential=ManagedIdentity");
    assert_string_equal(cs.cred.identity_endpoint, "http://localhost:42356/msi/token");
    assert_string_equal(cs.cred.identity_header, "hdr");
    az_connstr_clear(&cs);
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);

    parse_bad("AccountName=a;Credential=Password", "Credential must be");
    parse_bad("AccountName=a;Credential=ClientSecret;ClientId=c;ClientSecret=c2VjcmV0",
              "needs TenantId");
    parse_bad("AccountName=a;Credential=ClientSecret;TenantId=t;ClientId=c", "needs ClientSecret");
    parse_bad("AccountName=a;Credential=ClientSecret;TenantId=t;ClientSecret=c2VjcmV0",
              "needs ClientId");
    parse_bad("AccountName=a;Credential=WorkloadIdentity;TenantId=t;ClientId=c",
              "needs FederatedTokenFile");
    parse_bad("AccountName=a;Credential=ClientSecret;TenantId=t/x;ClientId=c;ClientSecret=s",
              "TenantId must be");
    parse_bad("AccountName=a;AccountKey=" KEY_B64 ";Credential=ManagedIdentity", "not two");
    parse_bad("AccountName=a;Credential=ManagedIdentity;ClientSecret=c2VjcmV0", "does not apply");
    parse_bad("AccountName=a;Credential=ManagedIdentity;TenantId=t", "does not apply");
    parse_bad("AccountName=a;Credential=ManagedIdentity;IdentityEndpoint=ftp://x",
              "IdentityEndpoint is not");
    parse_bad("AccountName=a;Credential=ClientSecret;TenantId=t;ClientId=c;ClientSecret=s;"
              "AuthorityHost=nope",
              "AuthorityHost is not");
    parse_bad("AccountName=a;AccountKey=" KEY_B64 ";TenantId=t", "TenantId needs Credential");
    parse_bad("UseDevelopmentStorage=true;Credential=ManagedIdentity", "cannot be combined");
    parse_bad("AccountName=a;Credential=ClientSecret;TenantId=t;ClientId=c;ClientSecret=c2VjcmV0;"
              "ClientSecret=c2VjcmV0",
              "more than once");
}

static void test_describe(void **state)
{
    (void)state;
    az_connstr cs = parse_ok("UseDevelopmentStorage=true;TableName=Orders");
    char *d = az_connstr_describe(&cs);
    assert_string_equal(d, "http://127.0.0.1:10002/devstoreaccount1 (account devstoreaccount1, "
                           "Shared Key, table Orders)");
    assert_null(strstr(d, "Eby8"));
    free(d);
    az_connstr_clear(&cs);

    cs = parse_ok("TableEndpoint=https://acct.table.core.windows.net;SharedAccessSignature=" SAS);
    d = az_connstr_describe(&cs);
    assert_string_equal(d, "https://acct.table.core.windows.net (SAS)");
    free(d);
    az_connstr_clear(&cs);

    d = az_connstr_describe(NULL);
    assert_non_null(d);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dev_storage),
        cmocka_unit_test(test_dev_proxy),
        cmocka_unit_test(test_account_key),
        cmocka_unit_test(test_table_endpoint),
        cmocka_unit_test(test_sas),
        cmocka_unit_test(test_table_name),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_token_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

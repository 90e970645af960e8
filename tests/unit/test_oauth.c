/* test_oauth.c - request building and response parsing (common/oauth.c).
 *
 * Table-driven: encodings, every grant x client_auth x body style with the
 * exact URL, body and headers, every response body of the four vendor
 * documents, Glewlwyd's quirks, and the malformed responses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "oauth.h"
#include "secret.h"

#define NOW 1700000000
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static char *dup(const char *s)
{
    char *p = s != NULL ? strdup(s) : NULL;

    assert_true(s == NULL || p != NULL);
    return p;
}

/* A profile built by hand (config.c is not under test here). */
static void prof_init(po_profile *p)
{
    memset(p, 0, sizeof(*p));
    p->name = dup("test");
    p->source = dup("/etc/pam-oauth/pam-oauth.conf:3");
    p->token_url = dup("https://auth.example.test/oauth/token");
    p->client_id = dup("c li:ent&=");
    p->client_secret = dup("s%e:c+r&et \xc3\xa9");
    p->scope = dup("api read");
    p->default_lifetime = 3600;
    p->connect_timeout_ms = 5000;
    p->timeout_ms = 20000;
    p->retries = 2;
}

static void prof_add_param(po_profile *p, const char *name, const char *value)
{
    p->params = realloc(p->params, (p->nparams + 1) * sizeof(*p->params));
    assert_non_null(p->params);
    p->params[p->nparams].name = dup(name);
    p->params[p->nparams].value = dup(value);
    p->nparams++;
}

static void prof_free(po_profile *p)
{
    size_t i;

    free(p->name);
    free(p->source);
    free(p->token_url);
    free(p->client_id);
    free(p->client_secret);
    free(p->scope);
    free(p->audience);
    free(p->resource);
    for (i = 0; i < p->nparams; i++) {
        free(p->params[i].name);
        free(p->params[i].value);
    }
    free(p->params);
    memset(p, 0, sizeof(*p));
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (want == NULL)
        assert_null(got);
    else
        assert_string_equal(got, want);
}

/* ------------------------------------------------------------------ */
/* encodings                                                           */

static void test_form_encode(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"abcXYZ019", "abcXYZ019"},
        {"-._*", "-._*"},
        {"~", "%7E"},
        {"a b", "a+b"},
        {"&=+%", "%26%3D%2B%25"},
        {"\"'\\", "%22%27%5C"},
        {":/?#[]@!$(),;", "%3A%2F%3F%23%5B%5D%40%21%24%28%29%2C%3B"},
        {"\xc3\xa9\xe2\x82\xac", "%C3%A9%E2%82%AC"},
        {"\x01\t\n\r\x1f\x7f", "%01%09%0A%0D%1F%7F"},
        {"b0b p@ss+w0rd&=%", "b0b+p%40ss%2Bw0rd%26%3D%25"},
    };
    size_t i;
    po_buf b;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_buf_init(&b, 1024, 1);
        assert_int_equal(po_form_encode(&b, cases[i].in), PO_OK);
        assert_string_equal(b.data != NULL ? b.data : "", cases[i].out);
        po_buf_free(&b);
    }
    /* the cap holds */
    po_buf_init(&b, 5, 1);
    assert_int_equal(po_form_encode(&b, "&&"), PO_TOO_LARGE);
    po_buf_free(&b);
}

static void test_json_quote(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", "\"\""},
        {"abc", "\"abc\""},
        {"a\"b", "\"a\\\"b\""},
        {"back\\slash", "\"back\\\\slash\""},
        {"/&=+% ", "\"/&=+% \""},
        {"\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\""},
        {"\x01\x1f", "\"\\u0001\\u001f\""},
        {"\x7f", "\"\x7f\""},
        {"\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80",
         "\"\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80\""},
        {"p &=+%\"'\\\xc3\xbc;#?/", "\"p &=+%\\\"'\\\\\xc3\xbc;#?/\""},
    };
    size_t i;
    po_buf b;
    json_object *o;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_buf_init(&b, 1024, 1);
        assert_int_equal(po_json_quote(&b, cases[i].in), PO_OK);
        assert_string_equal(b.data, cases[i].out);
        /* json-c reads back the original */
        o = json_tokener_parse(b.data);
        assert_non_null(o);
        assert_string_equal(json_object_get_string(o), cases[i].in);
        json_object_put(o);
        po_buf_free(&b);
    }
}

/* ------------------------------------------------------------------ */
/* building                                                            */

static const struct build_case {
    po_grant grant;
    po_client_auth auth;
    po_body_style style;
    const char *url, *content_type, *body, *authorization;
} build_cases[] = {
    {PO_GRANT_CLIENT_CREDENTIALS, PO_CLIENT_AUTH_BASIC, PO_BODY_FORM,
     "https://auth.example.test/oauth/token",
     "application/x-www-form-urlencoded",
     "grant_type=client_credentials&scope=api+read",
     "Basic YytsaSUzQWVudCUyNiUzRDpzJTI1ZSUzQWMlMkJyJTI2ZXQrJUMzJUE5"},
    {PO_GRANT_CLIENT_CREDENTIALS, PO_CLIENT_AUTH_BASIC, PO_BODY_JSON,
     "https://auth.example.test/oauth/token", "application/json",
     "{\"grant_type\":\"client_credentials\",\"scope\":\"api read\"}",
     "Basic YytsaSUzQWVudCUyNiUzRDpzJTI1ZSUzQWMlMkJyJTI2ZXQrJUMzJUE5"},
    {PO_GRANT_CLIENT_CREDENTIALS, PO_CLIENT_AUTH_BASIC, PO_BODY_QUERY,
     "https://auth.example.test/oauth/"
     "token?grant_type=client_credentials&scope=api+read",
     NULL, NULL,
     "Basic YytsaSUzQWVudCUyNiUzRDpzJTI1ZSUzQWMlMkJyJTI2ZXQrJUMzJUE5"},
    {PO_GRANT_CLIENT_CREDENTIALS, PO_CLIENT_AUTH_POST, PO_BODY_FORM,
     "https://auth.example.test/oauth/token",
     "application/x-www-form-urlencoded",
     "grant_type=client_credentials&client_id=c+li%3Aent%26%3D&client_secret=s%"
     "25e%3Ac%2Br%26et+%C3%A9&scope=api+read",
     NULL},
    {PO_GRANT_CLIENT_CREDENTIALS, PO_CLIENT_AUTH_POST, PO_BODY_JSON,
     "https://auth.example.test/oauth/token", "application/json",
     "{\"grant_type\":\"client_credentials\",\"client_id\":\"c "
     "li:ent&=\",\"client_secret\":\"s%e:c+r&et \xc3"
     "\xa9"
     "\",\"scope\":\"api read\"}",
     NULL},
    {PO_GRANT_CLIENT_CREDENTIALS, PO_CLIENT_AUTH_POST, PO_BODY_QUERY,
     "https://auth.example.test/oauth/"
     "token?grant_type=client_credentials&client_id=c+li%3Aent%26%3D&client_"
     "secret=s%25e%3Ac%2Br%26et+%C3%A9&scope=api+read",
     NULL, NULL, NULL},
    {PO_GRANT_CLIENT_CREDENTIALS, PO_CLIENT_AUTH_NONE, PO_BODY_FORM,
     "https://auth.example.test/oauth/token",
     "application/x-www-form-urlencoded",
     "grant_type=client_credentials&client_id=c+li%3Aent%26%3D&scope=api+read",
     NULL},
    {PO_GRANT_CLIENT_CREDENTIALS, PO_CLIENT_AUTH_NONE, PO_BODY_JSON,
     "https://auth.example.test/oauth/token", "application/json",
     "{\"grant_type\":\"client_credentials\",\"client_id\":\"c "
     "li:ent&=\",\"scope\":\"api read\"}",
     NULL},
    {PO_GRANT_CLIENT_CREDENTIALS, PO_CLIENT_AUTH_NONE, PO_BODY_QUERY,
     "https://auth.example.test/oauth/"
     "token?grant_type=client_credentials&client_id=c+li%3Aent%26%3D&scope=api+"
     "read",
     NULL, NULL, NULL},
    {PO_GRANT_PASSWORD, PO_CLIENT_AUTH_BASIC, PO_BODY_FORM,
     "https://auth.example.test/oauth/token",
     "application/x-www-form-urlencoded",
     "grant_type=password&username=bob&password=b0b+p%40ss%2Bw0rd%26%3D%25&"
     "scope=api+read",
     "Basic YytsaSUzQWVudCUyNiUzRDpzJTI1ZSUzQWMlMkJyJTI2ZXQrJUMzJUE5"},
    {PO_GRANT_PASSWORD, PO_CLIENT_AUTH_BASIC, PO_BODY_JSON,
     "https://auth.example.test/oauth/token", "application/json",
     "{\"grant_type\":\"password\",\"username\":\"bob\",\"password\":\"b0b "
     "p@ss+w0rd&=%\",\"scope\":\"api read\"}",
     "Basic YytsaSUzQWVudCUyNiUzRDpzJTI1ZSUzQWMlMkJyJTI2ZXQrJUMzJUE5"},
    {PO_GRANT_PASSWORD, PO_CLIENT_AUTH_BASIC, PO_BODY_QUERY,
     "https://auth.example.test/oauth/"
     "token?grant_type=password&username=bob&password=b0b+p%40ss%2Bw0rd%26%3D%"
     "25&scope=api+read",
     NULL, NULL,
     "Basic YytsaSUzQWVudCUyNiUzRDpzJTI1ZSUzQWMlMkJyJTI2ZXQrJUMzJUE5"},
    {PO_GRANT_PASSWORD, PO_CLIENT_AUTH_POST, PO_BODY_FORM,
     "https://auth.example.test/oauth/token",
     "application/x-www-form-urlencoded",
     "grant_type=password&username=bob&password=b0b+p%40ss%2Bw0rd%26%3D%25&"
     "client_id=c+li%3Aent%26%3D&client_secret=s%25e%3Ac%2Br%26et+%C3%A9&scope="
     "api+read",
     NULL},
    {PO_GRANT_PASSWORD, PO_CLIENT_AUTH_POST, PO_BODY_JSON,
     "https://auth.example.test/oauth/token", "application/json",
     "{\"grant_type\":\"password\",\"username\":\"bob\",\"password\":\"b0b "
     "p@ss+w0rd&=%\",\"client_id\":\"c "
     "li:ent&=\",\"client_secret\":\"s%e:c+r&et \xc3"
     "\xa9"
     "\",\"scope\":\"api read\"}",
     NULL},
    {PO_GRANT_PASSWORD, PO_CLIENT_AUTH_POST, PO_BODY_QUERY,
     "https://auth.example.test/oauth/"
     "token?grant_type=password&username=bob&password=b0b+p%40ss%2Bw0rd%26%3D%"
     "25&client_id=c+li%3Aent%26%3D&client_secret=s%25e%3Ac%2Br%26et+%C3%A9&"
     "scope=api+read",
     NULL, NULL, NULL},
    {PO_GRANT_PASSWORD, PO_CLIENT_AUTH_NONE, PO_BODY_FORM,
     "https://auth.example.test/oauth/token",
     "application/x-www-form-urlencoded",
     "grant_type=password&username=bob&password=b0b+p%40ss%2Bw0rd%26%3D%25&"
     "client_id=c+li%3Aent%26%3D&scope=api+read",
     NULL},
    {PO_GRANT_PASSWORD, PO_CLIENT_AUTH_NONE, PO_BODY_JSON,
     "https://auth.example.test/oauth/token", "application/json",
     "{\"grant_type\":\"password\",\"username\":\"bob\",\"password\":\"b0b "
     "p@ss+w0rd&=%\",\"client_id\":\"c li:ent&=\",\"scope\":\"api read\"}",
     NULL},
    {PO_GRANT_PASSWORD, PO_CLIENT_AUTH_NONE, PO_BODY_QUERY,
     "https://auth.example.test/oauth/"
     "token?grant_type=password&username=bob&password=b0b+p%40ss%2Bw0rd%26%3D%"
     "25&client_id=c+li%3Aent%26%3D&scope=api+read",
     NULL, NULL, NULL},
    {PO_GRANT_REFRESH_TOKEN, PO_CLIENT_AUTH_BASIC, PO_BODY_FORM,
     "https://auth.example.test/oauth/token",
     "application/x-www-form-urlencoded",
     "grant_type=refresh_token&refresh_token=rt%2F%2B%3D+%C3%A9&scope=api+read",
     "Basic YytsaSUzQWVudCUyNiUzRDpzJTI1ZSUzQWMlMkJyJTI2ZXQrJUMzJUE5"},
    {PO_GRANT_REFRESH_TOKEN, PO_CLIENT_AUTH_BASIC, PO_BODY_JSON,
     "https://auth.example.test/oauth/token", "application/json",
     "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"rt/+= \xc3"
     "\xa9"
     "\",\"scope\":\"api read\"}",
     "Basic YytsaSUzQWVudCUyNiUzRDpzJTI1ZSUzQWMlMkJyJTI2ZXQrJUMzJUE5"},
    {PO_GRANT_REFRESH_TOKEN, PO_CLIENT_AUTH_BASIC, PO_BODY_QUERY,
     "https://auth.example.test/oauth/"
     "token?grant_type=refresh_token&refresh_token=rt%2F%2B%3D+%C3%A9&scope="
     "api+read",
     NULL, NULL,
     "Basic YytsaSUzQWVudCUyNiUzRDpzJTI1ZSUzQWMlMkJyJTI2ZXQrJUMzJUE5"},
    {PO_GRANT_REFRESH_TOKEN, PO_CLIENT_AUTH_POST, PO_BODY_FORM,
     "https://auth.example.test/oauth/token",
     "application/x-www-form-urlencoded",
     "grant_type=refresh_token&refresh_token=rt%2F%2B%3D+%C3%A9&client_id=c+li%"
     "3Aent%26%3D&client_secret=s%25e%3Ac%2Br%26et+%C3%A9&scope=api+read",
     NULL},
    {PO_GRANT_REFRESH_TOKEN, PO_CLIENT_AUTH_POST, PO_BODY_JSON,
     "https://auth.example.test/oauth/token", "application/json",
     "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"rt/+= \xc3"
     "\xa9"
     "\",\"client_id\":\"c li:ent&=\",\"client_secret\":\"s%e:c+r&et \xc3"
     "\xa9"
     "\",\"scope\":\"api read\"}",
     NULL},
    {PO_GRANT_REFRESH_TOKEN, PO_CLIENT_AUTH_POST, PO_BODY_QUERY,
     "https://auth.example.test/oauth/"
     "token?grant_type=refresh_token&refresh_token=rt%2F%2B%3D+%C3%A9&client_"
     "id=c+li%3Aent%26%3D&client_secret=s%25e%3Ac%2Br%26et+%C3%A9&scope=api+"
     "read",
     NULL, NULL, NULL},
    {PO_GRANT_REFRESH_TOKEN, PO_CLIENT_AUTH_NONE, PO_BODY_FORM,
     "https://auth.example.test/oauth/token",
     "application/x-www-form-urlencoded",
     "grant_type=refresh_token&refresh_token=rt%2F%2B%3D+%C3%A9&client_id=c+li%"
     "3Aent%26%3D&scope=api+read",
     NULL},
    {PO_GRANT_REFRESH_TOKEN, PO_CLIENT_AUTH_NONE, PO_BODY_JSON,
     "https://auth.example.test/oauth/token", "application/json",
     "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"rt/+= \xc3"
     "\xa9"
     "\",\"client_id\":\"c li:ent&=\",\"scope\":\"api read\"}",
     NULL},
    {PO_GRANT_REFRESH_TOKEN, PO_CLIENT_AUTH_NONE, PO_BODY_QUERY,
     "https://auth.example.test/oauth/"
     "token?grant_type=refresh_token&refresh_token=rt%2F%2B%3D+%C3%A9&client_"
     "id=c+li%3Aent%26%3D&scope=api+read",
     NULL, NULL, NULL},
};

/* The 2.3.1 pair the Basic header must carry for the profile's client. */
#define BASIC_PAIR "c+li%3Aent%26%3D:s%25e%3Ac%2Br%26et+%C3%A9"

static void check_basic(const char *header)
{
    unsigned char out[256];
    int n;
    const char *b64;

    assert_non_null(header);
    assert_memory_equal(header, "Basic ", 6);
    b64 = header + 6;
    n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)strlen(b64));
    assert_true(n >= 0);
    /* EVP_DecodeBlock counts the padding bytes as zeros */
    while (n > 0 && out[n - 1] == '\0')
        n--;
    out[n] = '\0';
    assert_string_equal((char *)out, BASIC_PAIR);
}

static void test_build_matrix(void **state)
{
    size_t i;

    (void)state;
    assert_int_equal(ARRAY_LEN(build_cases), 27);
    for (i = 0; i < ARRAY_LEN(build_cases); i++) {
        const struct build_case *c = &build_cases[i];
        po_profile p;
        po_grant_input g = {c->grant, "bob", "b0b p@ss+w0rd&=%",
                            "rt/+= \xc3\xa9", NULL};
        po_oauth_req r;
        po_err err;

        prof_init(&p);
        p.grant = c->grant;
        p.client_auth = c->auth;
        p.body = c->style;
        po_err_clear(&err);
        print_message("case %zu\n", i);
        assert_int_equal(po_oauth_build(&p, &g, &r, &err), PO_OK);
        assert_string_equal(r.url, c->url);
        assert_str_or_null(r.content_type, c->content_type);
        assert_str_or_null(r.body, c->body);
        assert_int_equal(r.body_len, c->body != NULL ? strlen(c->body) : 0);
        assert_str_or_null(r.authorization, c->authorization);
        if (c->auth == PO_CLIENT_AUTH_BASIC)
            check_basic(r.authorization);
        if (c->style == PO_BODY_JSON) {
            json_object *o = json_tokener_parse(r.body);
            assert_non_null(o);
            assert_true(json_object_is_type(o, json_type_object));
            json_object_put(o);
        }
        po_oauth_req_free(&r);
        assert_null(r.url);
        assert_null(r.body);
        prof_free(&p);
    }
}

static void test_build_vendor_extras(void **state)
{
    po_profile p;
    po_grant_input g = {PO_GRANT_CLIENT_CREDENTIALS, NULL, NULL, NULL, NULL};
    po_oauth_req r;

    (void)state;
    /* Wave / Bloom: form body with audience, secret in the parameters */
    prof_init(&p);
    free(p.scope);
    p.scope = NULL;
    free(p.client_id);
    p.client_id = dup("wave-client");
    free(p.client_secret);
    p.client_secret = dup("wave-secret");
    p.audience = dup("https://api.wave.test");
    p.resource = dup("https://rs.example/a b");
    p.client_auth = PO_CLIENT_AUTH_POST;
    prof_add_param(&p, "tenant", "acme & co");
    prof_add_param(&p, "x-empty", "");
    assert_int_equal(po_oauth_build(&p, &g, &r, NULL), PO_OK);
    assert_string_equal(r.body,
                        "grant_type=client_credentials&client_id=wave-client"
                        "&client_secret=wave-secret"
                        "&audience=https%3A%2F%2Fapi.wave.test"
                        "&resource=https%3A%2F%2Frs.example%2Fa+b"
                        "&tenant=acme+%26+co&x-empty=");
    po_oauth_req_free(&r);

    /* Froomle: the same as a JSON object */
    p.body = PO_BODY_JSON;
    assert_int_equal(po_oauth_build(&p, &g, &r, NULL), PO_OK);
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(r.body, "{\"grant_type\":\"client_credentials\","
                                "\"client_id\":\"wave-client\","
                                "\"client_secret\":\"wave-secret\","
                                "\"audience\":\"https://api.wave.test\","
                                "\"resource\":\"https://rs.example/a b\","
                                "\"tenant\":\"acme & co\",\"x-empty\":\"\"}");
    po_oauth_req_free(&r);
    prof_free(&p);
}

static void test_build_query_url(void **state)
{
    static const struct {
        const char *token_url, *want;
    } cases[] = {
        {"https://a.test/oauth/token",
         "https://a.test/oauth/token?grant_type=password&username=u"},
        {"https://a.test/oauth/token?x=1",
         "https://a.test/oauth/token?x=1&grant_type=password&username=u"},
        {"https://a.test/oauth/token?",
         "https://a.test/oauth/token?grant_type=password&username=u"},
        {"https://a.test/oauth/token?x=1&",
         "https://a.test/oauth/token?x=1&grant_type=password&username=u"},
        {"https://a.test/oauth/token#frag",
         "https://a.test/oauth/token?grant_type=password&username=u"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_profile p;
        po_grant_input g = {PO_GRANT_PASSWORD, "u", "pw", NULL, NULL};
        po_oauth_req r;
        size_t n;

        prof_init(&p);
        free(p.token_url);
        p.token_url = dup(cases[i].token_url);
        p.body = PO_BODY_QUERY;
        p.client_auth = PO_CLIENT_AUTH_NONE;
        assert_int_equal(po_oauth_build(&p, &g, &r, NULL), PO_OK);
        n = strlen(cases[i].want);
        assert_memory_equal(r.url, cases[i].want, n);
        assert_string_equal(r.url + n, "&password=pw&client_id=c+li%3Aent%26%3D"
                                       "&scope=api+read");
        assert_null(r.body);
        assert_null(r.content_type);
        assert_null(r.authorization);
        po_oauth_req_free(&r);
        prof_free(&p);
    }
}

static void test_build_fluent_seed(void **state)
{
    /* The seed's example request, parameter for parameter. */
    po_profile p;
    po_grant_input g = {PO_GRANT_PASSWORD, "fluent-api", "fluent-staging", NULL,
                        NULL};
    po_oauth_req r;

    (void)state;
    prof_init(&p);
    free(p.token_url);
    p.token_url =
        dup("https://ACCOUNT.sandbox.api.fluentretail.com/oauth/token");
    free(p.client_id);
    p.client_id = dup("fluent-api");
    free(p.client_secret);
    p.client_secret = dup("ca5ce9a8-2f2e-4b4a-b8da-767f79fc81a9");
    free(p.scope);
    p.scope = dup("api");
    p.client_auth = PO_CLIENT_AUTH_POST;
    p.body = PO_BODY_QUERY;
    assert_int_equal(po_oauth_build(&p, &g, &r, NULL), PO_OK);
    assert_string_equal(
        r.url, "https://ACCOUNT.sandbox.api.fluentretail.com/oauth/token"
               "?grant_type=password&username=fluent-api"
               "&password=fluent-staging&client_id=fluent-api"
               "&client_secret=ca5ce9a8-2f2e-4b4a-b8da-767f79fc81a9"
               "&scope=api");
    po_oauth_req_free(&r);
    prof_free(&p);
}

static void test_build_missing(void **state)
{
    static const struct {
        po_grant grant;
        po_client_auth auth;
        const char *user, *password, *refresh;
        int drop; /* 1 secret, 2 client_id, 3 token_url */
        const char *msg_part;
    } cases[] = {
        {PO_GRANT_PASSWORD, PO_CLIENT_AUTH_BASIC, NULL, "pw", NULL, 0,
         "needs a user name"},
        {PO_GRANT_PASSWORD, PO_CLIENT_AUTH_BASIC, "", "pw", NULL, 0,
         "needs a user name"},
        {PO_GRANT_PASSWORD, PO_CLIENT_AUTH_BASIC, "u", NULL, NULL, 0,
         "needs a password"},
        {PO_GRANT_PASSWORD, PO_CLIENT_AUTH_BASIC, "u", "", NULL, 0,
         "needs a password"},
        {PO_GRANT_REFRESH_TOKEN, PO_CLIENT_AUTH_BASIC, NULL, NULL, NULL, 0,
         "needs a refresh token"},
        {PO_GRANT_CLIENT_CREDENTIALS, PO_CLIENT_AUTH_BASIC, NULL, NULL, NULL, 1,
         "no client secret"},
        {PO_GRANT_CLIENT_CREDENTIALS, PO_CLIENT_AUTH_POST, NULL, NULL, NULL, 1,
         "no client secret"},
        {PO_GRANT_CLIENT_CREDENTIALS, PO_CLIENT_AUTH_NONE, NULL, NULL, NULL, 2,
         "client_id is not set"},
        {PO_GRANT_CLIENT_CREDENTIALS, PO_CLIENT_AUTH_NONE, NULL, NULL, NULL, 3,
         "token_url is not set"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_profile p;
        po_grant_input g = {cases[i].grant, cases[i].user, cases[i].password,
                            cases[i].refresh, NULL};
        po_oauth_req r;
        po_err err;

        prof_init(&p);
        p.client_auth = cases[i].auth;
        if (cases[i].drop == 1) {
            free(p.client_secret);
            p.client_secret = NULL;
        } else if (cases[i].drop == 2) {
            free(p.client_id);
            p.client_id = NULL;
        } else if (cases[i].drop == 3) {
            free(p.token_url);
            p.token_url = NULL;
        }
        po_err_clear(&err);
        assert_int_equal(po_oauth_build(&p, &g, &r, &err), PO_CONFIG);
        assert_int_equal(err.rc, PO_CONFIG);
        assert_non_null(strstr(err.msg, cases[i].msg_part));
        assert_non_null(strstr(err.msg, "profile test "
                                        "(/etc/pam-oauth/pam-oauth.conf:3)"));
        assert_null(r.url);
        assert_null(r.body);
        assert_null(r.authorization);
        prof_free(&p);
    }
}

static void test_build_repeated_param(void **state)
{
    po_profile p;
    po_grant_input g = {PO_GRANT_CLIENT_CREDENTIALS, NULL, NULL, NULL, NULL};
    po_oauth_req r;
    po_err err;

    (void)state;
    prof_init(&p);
    prof_add_param(&p, "scope", "more");
    assert_int_equal(po_oauth_build(&p, &g, &r, &err), PO_CONFIG);
    assert_non_null(strstr(err.msg, "param.scope"));
    prof_free(&p);

    /* client_id as an extra is fine with Basic (it is not sent otherwise) */
    prof_init(&p);
    prof_add_param(&p, "client_id", "c li:ent&=");
    assert_int_equal(po_oauth_build(&p, &g, &r, &err), PO_OK);
    assert_string_equal(r.body, "grant_type=client_credentials&scope=api+read"
                                "&client_id=c+li%3Aent%26%3D");
    po_oauth_req_free(&r);
    prof_free(&p);
}

/* ------------------------------------------------------------------ */
/* parsing: the vendor documents                                       */

static po_rc parse(long status, const char *body, po_token *t, po_err *err)
{
    po_err_clear(err);
    return po_oauth_parse(status, body, body != NULL ? strlen(body) : 0, NOW,
                          3600, t, err);
}

static void test_parse_bloom_seed(void **state)
{
    po_token t;
    po_err err;

    (void)state;
    assert_int_equal(
        parse(200,
              "{\n  \"access_token\": \"<ACCESS_TOKEN_WILL_BE_HERE>\",\n"
              "  \"scope\": \"read:consumers write:consumers "
              "read:credit.bloom.score.vantage3...\",\n"
              "  \"expires_in\": 86400,\n  \"token_type\": \"Bearer\"\n}\n",
              &t, &err),
        PO_OK);
    assert_string_equal(t.access_token, "<ACCESS_TOKEN_WILL_BE_HERE>");
    assert_string_equal(t.token_type, "Bearer");
    assert_string_equal(t.scope, "read:consumers write:consumers "
                                 "read:credit.bloom.score.vantage3...");
    assert_null(t.refresh_token);
    assert_null(t.id_token);
    assert_null(t.extra_json);
    assert_int_equal(t.obtained_at, NOW);
    assert_int_equal(t.expires_at, NOW + 86400);
    assert_true(t.has_expires_in);
    assert_int_equal(err.http_status, 200);
    po_token_free(&t);
    assert_null(t.access_token);
}

static const char fluent_password_ok[] =
    "{\n\"access_token\": \"cf02e220-86ea-408d-9b80-fb55f517725b\",\n"
    "\"token_type\": \"bearer\",\n"
    "\"refresh_token\": \"xlUuQ5e-h9Y2pRw5G4Du4fAdRfk\",\n"
    "\"expires_in\": 86386,\n\"scope\": \"api\",\n\"Retailer_id\": 1,\n"
    "\"FirstName\": \"Fluent\",\n\"LastName\": \"Commerce\",\n"
    "\"Roles\": []\n}";

static void test_parse_fluent_seed_success(void **state)
{
    static const struct {
        const char *body, *access, *refresh, *scope, *extra;
        long lifetime;
    } cases[] = {
        {fluent_password_ok, "cf02e220-86ea-408d-9b80-fb55f517725b",
         "xlUuQ5e-h9Y2pRw5G4Du4fAdRfk", "api",
         "{\"Retailer_id\":1,\"FirstName\":\"Fluent\",\"LastName\":"
         "\"Commerce\",\"Roles\":[]}",
         86386},
        /* FLUENT_INTEGRATION */
        {"{\"access_token\": \"O1ogEE-LnvZIp_c3DCgKXfhiJII\",\n"
         "\"token_type\": \"bearer\",\n"
         "\"refresh_token\": \"fx25qnHPXER80FUx-Qo9ce02ITs\",\n"
         "\"expires_in\": 1799,\n\"scope\": \"retailer\",\n"
         "\"Retailer_id\": 5,\n\"Roles\": [\"RETAILER\"],\n"
         "\"FirstName\": \"Fluent\",\n\"LastName\": \"Commerce\"\n}",
         "O1ogEE-LnvZIp_c3DCgKXfhiJII", "fx25qnHPXER80FUx-Qo9ce02ITs",
         "retailer",
         "{\"Retailer_id\":5,\"Roles\":[\"RETAILER\"],\"FirstName\":"
         "\"Fluent\",\"LastName\":\"Commerce\"}",
         1799},
        /* the refresh example, with its trailing blank line */
        {"{\"access_token\": \"cf02e220-86ea-408d-9b80-fb55f517725b\",\n"
         "\"token_type\": \"bearer\",\n"
         "\"refresh_token\": \"xlUuQ5e-h9Y2pRw5G4Du4fAdRfk\",\n"
         "\"expires_in\": 86386,\n\"scope\": \"api\",\n"
         "\"Retailer_id\": 1,\n\"FirstName\": \"Fluent\",\n"
         "\"LastName\": \"Commerce\",\n\"Roles\": []\n}\n\n",
         "cf02e220-86ea-408d-9b80-fb55f517725b", "xlUuQ5e-h9Y2pRw5G4Du4fAdRfk",
         "api",
         "{\"Retailer_id\":1,\"FirstName\":\"Fluent\",\"LastName\":"
         "\"Commerce\",\"Roles\":[]}",
         86386},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_token t;
        po_err err;

        assert_int_equal(parse(200, cases[i].body, &t, &err), PO_OK);
        assert_string_equal(t.access_token, cases[i].access);
        assert_string_equal(t.token_type, "bearer");
        assert_string_equal(t.refresh_token, cases[i].refresh);
        assert_string_equal(t.scope, cases[i].scope);
        assert_string_equal(t.extra_json, cases[i].extra);
        assert_int_equal(t.expires_at - t.obtained_at, cases[i].lifetime);
        /* never the tokens in extra_json */
        assert_null(strstr(t.extra_json, cases[i].access));
        assert_null(strstr(t.extra_json, cases[i].refresh));
        assert_null(strstr(t.extra_json, "token"));
        po_token_free(&t);
    }
}

static const struct err_case {
    long status;
    const char *body;
    po_rc rc;
    const char *msg;
} error_cases[] = {
    /* Fluent's documents */
    {400,
     "{\n\"errors\": [\n{\n\"code\": \"400\",\n\"message\": {\n"
     "\"error\": \"invalid_grant\",\n"
     "\"error_description\": \"Bad credentials\"\n}\n}\n]\n}",
     PO_INVALID_GRANT,
     "token endpoint answered HTTP 400: invalid_grant: Bad credentials"},
    {401,
     "{\n\"error\": \"invalid_client\",\n"
     "\"error_description\": \"Bad client credentials\"\n}",
     PO_INVALID_CLIENT,
     "token endpoint answered HTTP 401: invalid_client: Bad client "
     "credentials"},
    {400,
     "{\n\"error\": \"invalid_grant\",\n"
     "\"error_description\": \"Invalid refresh token\"\n}",
     PO_INVALID_GRANT,
     "token endpoint answered HTTP 400: invalid_grant: Invalid refresh "
     "token"},
    /* Glewlwyd: a wrong password is an empty 403 */
    {403, "", PO_INVALID_GRANT,
     "token endpoint answered HTTP 403 with an empty body"},
    {403, "{}", PO_INVALID_GRANT,
     "token endpoint answered HTTP 403 without an error code"},
    {403, "Forbidden", PO_INVALID_GRANT,
     "token endpoint answered HTTP 403 with a body that is not JSON"},
    {401, "", PO_INVALID_CLIENT,
     "token endpoint answered HTTP 401 with an empty body"},
    /* RFC 6749 5.2 codes */
    {400, "{\"error\":\"invalid_request\"}", PO_INVALID_REQUEST,
     "token endpoint answered HTTP 400: invalid_request"},
    {400, "{\"error\":\"unsupported_grant_type\"}", PO_INVALID_REQUEST,
     "token endpoint answered HTTP 400: unsupported_grant_type"},
    {400, "{\"error\":\"unauthorized_client\",\"error_description\":\"no\"}",
     PO_UNAUTHORIZED_CLIENT,
     "token endpoint answered HTTP 400: unauthorized_client: no"},
    {400, "{\"error\":\"invalid_scope\",\"error_uri\":\"https://x.test/e\"}",
     PO_INVALID_SCOPE, "token endpoint answered HTTP 400: invalid_scope"},
    /* RFC 8628 3.5 (the device grant's polls) */
    {400, "{\"error\":\"slow_down\"}", PO_SLOW_DOWN,
     "token endpoint answered HTTP 400: slow_down"},
    {400, "{\"error\":\"authorization_pending\"}", PO_AUTHORIZATION_PENDING,
     "token endpoint answered HTTP 400: authorization_pending"},
    {400,
     "{\"error\":\"access_denied\",\"error_description\":\"The user "
     "denied\"}",
     PO_ACCESS_DENIED,
     "token endpoint answered HTTP 400: access_denied: The user denied"},
    {400, "{\"error\":\"expired_token\"}", PO_EXPIRED_TOKEN,
     "token endpoint answered HTTP 400: expired_token"},
    /* more than a password is needed (OIDC Core 3.1.2.6, Auth0, Azure) */
    {400, "{\"error\":\"interaction_required\"}", PO_INTERACTION_REQUIRED,
     "token endpoint answered HTTP 400: interaction_required"},
    {403,
     "{\"error\":\"mfa_required\",\"error_description\":\"Multifactor "
     "authentication required\",\"mfa_token\":\"Fe26...\"}",
     PO_INTERACTION_REQUIRED,
     "token endpoint answered HTTP 403: mfa_required: Multifactor "
     "authentication required"},
    {400, "{\"error\":\"consent_required\"}", PO_INTERACTION_REQUIRED,
     "token endpoint answered HTTP 400: consent_required"},
    {400, "{\"error\":\"login_required\"}", PO_INTERACTION_REQUIRED,
     "token endpoint answered HTTP 400: login_required"},
    {500, "{\"error\":\"server_error\"}", PO_SERVER_ERROR,
     "token endpoint answered HTTP 500: server_error"},
    {503, "{\"error\":\"temporarily_unavailable\"}", PO_SERVER_ERROR,
     "token endpoint answered HTTP 503: temporarily_unavailable"},
    {400, "{\"error\":\"INVALID_GRANT\"}", PO_INVALID_GRANT,
     "token endpoint answered HTTP 400: INVALID_GRANT"},
    /* unknown codes: the status decides between overload and the rest */
    {400, "{\"error\":\"no_such_thing\"}", PO_INVALID_REQUEST,
     "token endpoint answered HTTP 400: no_such_thing"},
    {429,
     "{\"error\":\"too_many_requests\",\"error_description\":\"Rate limit "
     "exceeded\"}",
     PO_RATE_LIMITED,
     "token endpoint answered HTTP 429: too_many_requests: Rate limit "
     "exceeded"},
    {502, "{\"error\":\"bad_gateway\"}", PO_SERVER_ERROR,
     "token endpoint answered HTTP 502: bad_gateway"},
    /* no usable body: the status */
    {400, "", PO_INVALID_REQUEST,
     "token endpoint answered HTTP 400 with an empty body"},
    {404, "<html>Not Found</html>", PO_INVALID_REQUEST,
     "token endpoint answered HTTP 404 with a body that is not JSON"},
    {429, "", PO_RATE_LIMITED,
     "token endpoint answered HTTP 429 with an empty body"},
    {500, "<h1>oops</h1>", PO_SERVER_ERROR,
     "token endpoint answered HTTP 500 with a body that is not JSON"},
    {503, "", PO_SERVER_ERROR,
     "token endpoint answered HTTP 503 with an empty body"},
    {302, "", PO_MALFORMED_RESPONSE,
     "token endpoint answered HTTP 302: a redirect"},
    {400, "{\"error\":42}", PO_INVALID_REQUEST,
     "token endpoint answered HTTP 400 without an error code"},
    {400, "[\"invalid_grant\"]", PO_INVALID_REQUEST,
     "token endpoint answered HTTP 400 without an error code"},
    /* an error code in a 200 */
    {200, "{\"error\":\"invalid_grant\",\"error_description\":\"x\"}",
     PO_INVALID_GRANT, "token endpoint answered HTTP 200: invalid_grant: x"},
    /* Fluent's envelope, variants */
    {401, "{\"errors\":[{\"code\":\"401\",\"message\":\"Bad credentials\"}]}",
     PO_INVALID_CLIENT, "token endpoint answered HTTP 401: Bad credentials"},
    {400,
     "{\"errors\":[{\"code\":400,\"message\":{\"error\":\"invalid_scope\"}}]}",
     PO_INVALID_SCOPE, "token endpoint answered HTTP 400: invalid_scope"},
    {403,
     "{\"errors\":[{\"code\":\"403\",\"message\":{\"error_description\":"
     "\"Forbidden\"}}]}",
     PO_INVALID_GRANT, "token endpoint answered HTTP 403: Forbidden"},
    {400, "{\"errors\":[]}", PO_INVALID_REQUEST,
     "token endpoint answered HTTP 400 without an error code"},
    {400,
     "{\"errors\":[{\"code\":\"400\",\"message\":{\"error\":\"invalid_grant\","
     "\"error_description\":\"Bad credentials\"}},{\"code\":\"500\","
     "\"message\":\"second\"}]}",
     PO_INVALID_GRANT,
     "token endpoint answered HTTP 400: invalid_grant: Bad credentials"},
    {500, "{\"errors\":[{\"code\":\"500\",\"message\":{}}]}", PO_SERVER_ERROR,
     "token endpoint answered HTTP 500 without an error code"},
    /* control characters are stripped from the server's text */
    {400,
     "{\"error\":\"invalid_grant\\u001b[31m\",\"error_description\":"
     "\"line1\\nline2\\r\\u0007\\u0085end\"}",
     PO_INVALID_REQUEST,
     "token endpoint answered HTTP 400: invalid_grant[31m: line1line2end"},
};

static void test_parse_errors(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(error_cases); i++) {
        const struct err_case *c = &error_cases[i];
        po_token t;
        po_err err;

        print_message("case %zu\n", i);
        assert_int_equal(parse(c->status, c->body, &t, &err), c->rc);
        assert_int_equal(err.rc, c->rc);
        assert_int_equal(err.http_status, c->status);
        assert_string_equal(err.msg, c->msg);
        assert_null(t.access_token);
        assert_null(t.refresh_token);
    }
}

static void test_parse_description_truncated(void **state)
{
    char body[4096], *p;
    po_token t;
    po_err err;
    size_t n;

    (void)state;
    /* 1000 x 'A', then a multi-byte character straddling the limit */
    p = body + sprintf(body, "{\"error\":\"invalid_grant\","
                             "\"error_description\":\"");
    memset(p, 'A', 199);
    p += 199;
    p += sprintf(p, "\xc3\xa9");
    memset(p, 'B', 800);
    p += 800;
    strcpy(p, "\"}");
    assert_int_equal(parse(400, body, &t, &err), PO_INVALID_GRANT);
    assert_memory_equal(err.msg,
                        "token endpoint answered HTTP 400: invalid_grant: "
                        "AAAA",
                        53);
    n = strlen(err.msg);
    assert_true(n < 300);
    /* cut before the 2-byte character, not inside it */
    assert_string_equal(err.msg + n - 4, "A...");
    assert_null(strstr(err.msg, "B"));

    /* a long error code is cut too */
    p = body + sprintf(body, "{\"error\":\"");
    memset(p, 'x', 500);
    p += 500;
    strcpy(p, "\"}");
    assert_int_equal(parse(400, body, &t, &err), PO_INVALID_REQUEST);
    assert_true(strlen(err.msg) < 150);
    assert_string_equal(err.msg + strlen(err.msg) - 3, "...");
}

/* ------------------------------------------------------------------ */
/* parsing: success variants and malformed responses                   */

static void test_parse_glewlwyd_style(void **state)
{
    po_token t;
    po_err err;

    (void)state;
    assert_int_equal(
        parse(200,
              "{\"access_token\":\"eyJhbGciOiJSUzI1NiJ9.e30.sig\","
              "\"token_type\":\"bearer\",\"expires_in\":3600,"
              "\"refresh_token\":\"rt-1\",\"id_token\":\"eyJ.id.tok\","
              "\"scope\":\"pam\",\"iat\":1700000000}",
              &t, &err),
        PO_OK);
    assert_string_equal(t.token_type, "bearer");
    assert_string_equal(t.id_token, "eyJ.id.tok");
    assert_string_equal(t.refresh_token, "rt-1");
    assert_string_equal(t.extra_json, "{\"iat\":1700000000}");
    po_token_free(&t);
}

static void test_parse_token_type(void **state)
{
    static const struct {
        const char *type_member;
        po_rc rc;
        const char *msg;
    } cases[] = {
        {"\"token_type\":\"Bearer\"", PO_OK, ""},
        {"\"token_type\":\"bearer\"", PO_OK, ""},
        {"\"token_type\":\"BEARER\"", PO_OK, ""},
        {"\"token_type\":\"mac\"", PO_MALFORMED_RESPONSE,
         "token endpoint answered HTTP 200: token_type 'mac' is not bearer"},
        {"\"token_type\":\"N_A\"", PO_MALFORMED_RESPONSE,
         "token endpoint answered HTTP 200: token_type 'N_A' is not bearer"},
        {"\"token_type\":\"bearer \"", PO_MALFORMED_RESPONSE,
         "token endpoint answered HTTP 200: token_type 'bearer ' is not "
         "bearer"},
        {"\"token_type\":\"\"", PO_MALFORMED_RESPONSE,
         "token endpoint answered HTTP 200: token_type '' is not bearer"},
        {"\"token_type\":1", PO_MALFORMED_RESPONSE,
         "token endpoint answered HTTP 200 without token_type"},
        {"\"tokentype\":\"bearer\"", PO_MALFORMED_RESPONSE,
         "token endpoint answered HTTP 200 without token_type"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        char body[256];
        po_token t;
        po_err err;

        snprintf(body, sizeof(body), "{\"access_token\":\"a\",%s}",
                 cases[i].type_member);
        assert_int_equal(parse(200, body, &t, &err), cases[i].rc);
        assert_string_equal(err.msg, cases[i].msg);
        po_token_free(&t);
    }
}

static void test_parse_expires_in(void **state)
{
    static const struct {
        const char *member; /* "" = absent */
        po_rc rc;
        int has;
        long lifetime;
    } cases[] = {
        {"", PO_OK, 0, 3600}, /* the default lifetime */
        {",\"expires_in\":null", PO_OK, 0, 3600},
        {",\"expires_in\":1", PO_OK, 1, 1},
        {",\"expires_in\":3600", PO_OK, 1, 3600},
        {",\"expires_in\":\"3600\"", PO_OK, 1, 3600},
        {",\"expires_in\":316224000", PO_OK, 1, 316224000}, /* 10 years */
        {",\"expires_in\":316224001", PO_MALFORMED_RESPONSE, 0, 0},
        {",\"expires_in\":0", PO_MALFORMED_RESPONSE, 0, 0},
        {",\"expires_in\":-1", PO_MALFORMED_RESPONSE, 0, 0},
        {",\"expires_in\":\"-5\"", PO_MALFORMED_RESPONSE, 0, 0},
        {",\"expires_in\":\"12abc\"", PO_MALFORMED_RESPONSE, 0, 0},
        {",\"expires_in\":\" 60\"", PO_MALFORMED_RESPONSE, 0, 0},
        {",\"expires_in\":\"\"", PO_MALFORMED_RESPONSE, 0, 0},
        {",\"expires_in\":\"9999999999999\"", PO_MALFORMED_RESPONSE, 0, 0},
        {",\"expires_in\":99999999999999999999999", PO_MALFORMED_RESPONSE, 0,
         0},
        {",\"expires_in\":9223372036854775807", PO_MALFORMED_RESPONSE, 0, 0},
        {",\"expires_in\":3600.5", PO_MALFORMED_RESPONSE, 0, 0},
        {",\"expires_in\":3600.0", PO_MALFORMED_RESPONSE, 0, 0},
        {",\"expires_in\":1e3", PO_MALFORMED_RESPONSE, 0, 0},
        {",\"expires_in\":true", PO_MALFORMED_RESPONSE, 0, 0},
        {",\"expires_in\":[3600]", PO_MALFORMED_RESPONSE, 0, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        char body[256];
        po_token t;
        po_err err;

        snprintf(body, sizeof(body),
                 "{\"access_token\":\"a\",\"token_type\":\"Bearer\"%s}",
                 cases[i].member);
        print_message("case %zu\n", i);
        assert_int_equal(parse(200, body, &t, &err), cases[i].rc);
        if (cases[i].rc == PO_OK) {
            assert_int_equal(t.has_expires_in, cases[i].has);
            assert_int_equal(t.obtained_at, NOW);
            assert_int_equal(t.expires_at, NOW + cases[i].lifetime);
        } else {
            assert_string_equal(err.msg,
                                "token endpoint answered HTTP 200: "
                                "expires_in is not a whole number of seconds "
                                "between 1 and 10 years");
            assert_null(t.access_token);
        }
        po_token_free(&t);
    }
}

static void test_parse_malformed_200(void **state)
{
    static const struct {
        long status;
        const char *body;
        size_t len; /* 0: strlen */
        const char *msg;
    } cases[] = {
        {200, "{\"token_type\":\"Bearer\",\"expires_in\":3600}", 0,
         "token endpoint answered HTTP 200 without access_token"},
        {200, "{\"access_token\":\"\",\"token_type\":\"Bearer\"}", 0,
         "token endpoint answered HTTP 200: access_token is not a non-empty "
         "string"},
        {200, "{\"access_token\":123,\"token_type\":\"Bearer\"}", 0,
         "token endpoint answered HTTP 200: access_token is not a non-empty "
         "string"},
        {200, "{\"access_token\":null,\"token_type\":\"Bearer\"}", 0,
         "token endpoint answered HTTP 200: access_token is not a non-empty "
         "string"},
        {200, "{\"access_token\":\"a\\u0000b\",\"token_type\":\"Bearer\"}", 0,
         "token endpoint answered HTTP 200: access_token is not a non-empty "
         "string"},
        {200, "<html><body><h1>502 Bad Gateway</h1></body></html>", 0,
         "token endpoint answered HTTP 200 with a body that is not JSON"},
        {200, "", 0, "token endpoint answered HTTP 200 with an empty body"},
        {200, "{\"access_token\":\"a\",\"token_type\":\"Bearer\"", 0,
         "token endpoint answered HTTP 200 with a body that is not JSON"},
        {200, "{\"access_token\":\"a\",\"token_type\":\"Bearer\"} x", 0,
         "token endpoint answered HTTP 200 with a body that is not JSON"},
        {200, "{\"access_token\":\"a\",\"token_type\":\"Bearer\"}{}", 0,
         "token endpoint answered HTTP 200 with a body that is not JSON"},
        {200, "{\"access_token\":\"a\",\"token_type\":\"Bearer\"}\0junk", 49,
         "token endpoint answered HTTP 200 with a body that is not JSON"},
        {200, "{'access_token':'a','token_type':'Bearer'}", 0,
         "token endpoint answered HTTP 200 with a body that is not JSON"},
        {200, "[{\"access_token\":\"a\",\"token_type\":\"Bearer\"}]", 0,
         "token endpoint answered HTTP 200 without access_token"},
        {200, "\"access_token\"", 0,
         "token endpoint answered HTTP 200 without access_token"},
        {201, "null", 0,
         "token endpoint answered HTTP 201 without access_token"},
        {204, "", 0, "token endpoint answered HTTP 204 with an empty body"},
        {301, "{\"access_token\":\"a\",\"token_type\":\"Bearer\"}", 0,
         "token endpoint answered HTTP 301: a redirect"},
        {100, "", 0, "token endpoint answered HTTP 100 with an empty body"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_token t;
        po_err err;
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].body);

        print_message("case %zu\n", i);
        po_err_clear(&err);
        assert_int_equal(po_oauth_parse(cases[i].status, cases[i].body, len,
                                        NOW, 3600, &t, &err),
                         PO_MALFORMED_RESPONSE);
        assert_string_equal(err.msg, cases[i].msg);
        assert_int_equal(err.http_status, cases[i].status);
        assert_null(t.access_token);
    }
    /* a NULL body with a length is an empty body */
    assert_int_equal(
        po_oauth_parse(200, NULL, 10, NOW, 3600, &(po_token){0}, NULL),
        PO_MALFORMED_RESPONSE);
}

static void test_parse_optional_members(void **state)
{
    po_token t;
    po_err err;

    (void)state;
    /* empty or non-string optional members count as absent; other
     * members, nested or not, go to extra_json verbatim */
    assert_int_equal(parse(200,
                           "{\"access_token\":\"at\",\"token_type\":\"Bearer\","
                           "\"refresh_token\":\"\",\"scope\":[\"a\",\"b\"],"
                           "\"id_token\":null,\"roles\":[\"dev\",\"x\\\"y\"],"
                           "\"nested\":{\"k\":\"a/b \\u00e9\"},\"n\":null}",
                           &t, &err),
                     PO_OK);
    assert_null(t.refresh_token);
    assert_null(t.scope);
    assert_null(t.id_token);
    assert_string_equal(t.extra_json,
                        "{\"roles\":[\"dev\",\"x\\\"y\"],"
                        "\"nested\":{\"k\":\"a/b \xc3\xa9\"},\"n\":null}");
    po_token_free(&t);

    /* the default lifetime applies as given */
    assert_int_equal(po_oauth_parse(200,
                                    "{\"access_token\":\"at\","
                                    "\"token_type\":\"bearer\"}",
                                    43, NOW, 86400, &t, &err),
                     PO_OK);
    assert_int_equal(t.expires_at, NOW + 86400);
    assert_false(t.has_expires_in);
    po_token_free(&t);
}

static void test_parse_deep_nesting(void **state)
{
    char body[2048];
    size_t i, o = 0;
    po_token t;
    po_err err;

    (void)state;
    o += (size_t)sprintf(body, "{\"access_token\":\"a\",\"token_type\":"
                               "\"Bearer\",\"x\":");
    for (i = 0; i < 500; i++)
        body[o++] = '[';
    for (i = 0; i < 500; i++)
        body[o++] = ']';
    body[o++] = '}';
    body[o] = '\0';
    assert_int_equal(parse(200, body, &t, &err), PO_MALFORMED_RESPONSE);
}

static void test_token_copy(void **state)
{
    po_token t, c;
    po_err err;

    (void)state;
    assert_int_equal(parse(200, fluent_password_ok, &t, &err), PO_OK);
    assert_int_equal(po_token_copy(&c, &t, &err), PO_OK);
    assert_string_equal(c.access_token, t.access_token);
    assert_ptr_not_equal(c.access_token, t.access_token);
    assert_string_equal(c.refresh_token, t.refresh_token);
    assert_string_equal(c.token_type, t.token_type);
    assert_string_equal(c.scope, t.scope);
    assert_string_equal(c.extra_json, t.extra_json);
    assert_null(c.id_token);
    assert_int_equal(c.expires_at, t.expires_at);
    assert_int_equal(c.obtained_at, t.obtained_at);
    assert_int_equal(c.has_expires_in, t.has_expires_in);
    po_token_free(&t);
    po_token_free(&c);
    po_token_free(&c); /* twice is harmless */
}

/* ------------------------------------------------------------------ */
/* po_oauth_token_request without a network                            */

typedef struct log_capture {
    char lines[16][1024];
    int n;
} log_capture;

static void capture(void *ctx, int priority, const char *msg)
{
    log_capture *c = ctx;

    (void)priority;
    if (c->n < 16)
        snprintf(c->lines[c->n++], sizeof(c->lines[0]), "%s", msg);
}

static void test_token_request_local_failures(void **state)
{
    po_profile p;
    po_grant_input g = {PO_GRANT_PASSWORD, "bob", "b0b p@ss+w0rd&=%", NULL,
                        NULL};
    po_token t;
    po_err err;
    log_capture cap = {.n = 0};
    po_log log = {capture, &cap, 1};
    int i;

    (void)state;
    prof_init(&p);
    free(p.token_url);
    p.token_url = dup("http://auth.example.test/token?client_secret=leak");

    assert_int_equal(po_oauth_token_request(&p, &g, 1, 0, NOW, &log, &t, &err),
                     PO_CONFIG);
    assert_string_equal(err.msg, "http://auth.example.test/token: http:// "
                                 "refused, use https:// (allow_http permits "
                                 "http:// to a loopback host only)");
    assert_null(t.access_token);

    /* missing password: refused before any request */
    free(p.token_url);
    p.token_url = dup("https://auth.example.test/token");
    g.password = NULL;
    assert_int_equal(po_oauth_token_request(&p, &g, 1, 0, NOW, &log, &t, &err),
                     PO_CONFIG);

    assert_true(cap.n > 0);
    for (i = 0; i < cap.n; i++) {
        assert_null(strstr(cap.lines[i], "leak"));
        assert_null(strstr(cap.lines[i], "b0b"));
        assert_null(strstr(cap.lines[i], "r&et"));
        assert_non_null(strstr(cap.lines[i], "grant password"));
    }
    prof_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_encode),
        cmocka_unit_test(test_json_quote),
        cmocka_unit_test(test_build_matrix),
        cmocka_unit_test(test_build_vendor_extras),
        cmocka_unit_test(test_build_query_url),
        cmocka_unit_test(test_build_fluent_seed),
        cmocka_unit_test(test_build_missing),
        cmocka_unit_test(test_build_repeated_param),
        cmocka_unit_test(test_parse_bloom_seed),
        cmocka_unit_test(test_parse_fluent_seed_success),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_description_truncated),
        cmocka_unit_test(test_parse_glewlwyd_style),
        cmocka_unit_test(test_parse_token_type),
        cmocka_unit_test(test_parse_expires_in),
        cmocka_unit_test(test_parse_malformed_200),
        cmocka_unit_test(test_parse_optional_members),
        cmocka_unit_test(test_parse_deep_nesting),
        cmocka_unit_test(test_token_copy),
        cmocka_unit_test(test_token_request_local_failures),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

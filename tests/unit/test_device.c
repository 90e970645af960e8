/* test_device.c - the device authorization grant's pure parts
 * (common/device.c, common/qr.c, and the requests of common/oauth.c):
 * every member of the device authorization response, good and bad, the
 * request in each body style and client authentication, the device_code
 * token request, the text shown to the user and the QR code's geometry.
 * Polling is tested end to end against the test server
 * (tests/integration/test_device.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "oauth.h"
#include "qr.h"
#include "secret.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FULL "\xe2\x96\x88"
#define UPPER "\xe2\x96\x80"
#define LOWER "\xe2\x96\x84"

static char *dup(const char *s)
{
    char *p = s != NULL ? strdup(s) : NULL;

    assert_true(s == NULL || p != NULL);
    return p;
}

static void prof_init(po_profile *p)
{
    memset(p, 0, sizeof(*p));
    p->name = dup("dev");
    p->source = dup("/etc/pam-oauth/pam-oauth.conf:7");
    p->token_url = dup("https://idp.example.test/oauth/token");
    p->client_id = dup("login-client");
    p->client_secret = dup("s3cret");
    p->scope = dup("openid profile");
    p->default_lifetime = 3600;
    p->timeout_ms = 20000;
    p->device_timeout = 300;
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

/* ------------------------------------------------------------------ */
/* the response                                                        */

#define GOOD_CODE "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS"

static void test_parse_rfc_example(void **state)
{
    /* RFC 8628 3.2's example, with verification_uri_complete */
    static const char body[] =
        "{\"device_code\": \"" GOOD_CODE "\",\n"
        " \"user_code\": \"WDJB-MJHT\",\n"
        " \"verification_uri\": \"https://example.com/device\",\n"
        " \"verification_uri_complete\":\n"
        "     \"https://example.com/device?user_code=WDJB-MJHT\",\n"
        " \"expires_in\": 1800,\n"
        " \"interval\": 5}";
    po_device_auth da;
    po_err err;

    (void)state;
    assert_int_equal(po_device_parse(200, body, strlen(body), 0, &da, &err),
                     PO_OK);
    assert_string_equal(da.device_code, GOOD_CODE);
    assert_string_equal(da.user_code, "WDJB-MJHT");
    assert_string_equal(da.verification_uri, "https://example.com/device");
    assert_string_equal(da.verification_uri_complete,
                        "https://example.com/device?user_code=WDJB-MJHT");
    assert_int_equal(da.expires_in, 1800);
    assert_int_equal(da.interval, 5);
    assert_int_equal(da.issued_ms, 0);
    po_device_auth_free(&da);
    assert_null(da.device_code);
}

static const struct good_case {
    const char *body;
    int allow_http;
    const char *user_code, *uri, *complete;
    long expires_in, interval;
} good_cases[] = {
    /* no interval: 5 s (RFC 8628 3.2); no complete URI */
    {"{\"device_code\":\"d\",\"user_code\":\"ABCD\",\"verification_uri\":"
     "\"https://idp.test/d\",\"expires_in\":600}",
     0, "ABCD", "https://idp.test/d", NULL, 600, 5},
    /* Google: verification_url; Azure AD v1: numbers as strings */
    {"{\"device_code\":\"d\",\"user_code\":\"GQVQ-JKEC\",\"verification_url\":"
     "\"https://www.google.com/device\",\"expires_in\":\"1800\",\"interval\":"
     "\"5\"}",
     0, "GQVQ-JKEC", "https://www.google.com/device", NULL, 1800, 5},
    /* interval 0 is never a busy loop */
    {"{\"device_code\":\"d\",\"user_code\":\"X\",\"verification_uri\":"
     "\"https://idp.test/d\",\"expires_in\":1,\"interval\":0}",
     0, "X", "https://idp.test/d", NULL, 1, 1},
    /* http to a loopback host, with allow_http */
    {"{\"device_code\":\"d\",\"user_code\":\"X\",\"verification_uri\":"
     "\"http://127.0.0.1:8080/device\",\"verification_uri_complete\":"
     "\"http://127.0.0.1:8080/device?c=X\",\"expires_in\":60,"
     "\"interval\":300}",
     1, "X", "http://127.0.0.1:8080/device", "http://127.0.0.1:8080/device?c=X",
     60, 300},
    /* a user code in another script; other members and a null ignored */
    {"{\"device_code\":\"d\",\"user_code\":\"\xd0\x9a\xd0\x9e\xd0\x94-42\","
     "\"verification_uri\":\"https://idp.test/d\",\"expires_in\":60,"
     "\"message\":\"Go to https://idp.test/d\",\"verification_uri_complete\":"
     "null}",
     0, "\xd0\x9a\xd0\x9e\xd0\x94-42", "https://idp.test/d", NULL, 60, 5},
    /* a 201 is a success too; an empty complete URI counts as absent */
    {"{\"device_code\":\"d\",\"user_code\":\"A\",\"verification_uri\":"
     "\"https://idp.test/d\",\"verification_uri_complete\":\"\","
     "\"expires_in\":86400}",
     0, "A", "https://idp.test/d", NULL, 86400, 5},
};

static void test_parse_good(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(good_cases); i++) {
        const struct good_case *c = &good_cases[i];
        po_device_auth da;
        po_err err;

        print_message("case %zu\n", i);
        po_err_clear(&err);
        assert_int_equal(po_device_parse(i == 5 ? 201 : 200, c->body,
                                         strlen(c->body), c->allow_http, &da,
                                         &err),
                         PO_OK);
        assert_string_equal(da.device_code, "d");
        assert_string_equal(da.user_code, c->user_code);
        assert_string_equal(da.verification_uri, c->uri);
        if (c->complete == NULL)
            assert_null(da.verification_uri_complete);
        else
            assert_string_equal(da.verification_uri_complete, c->complete);
        assert_int_equal(da.expires_in, c->expires_in);
        assert_int_equal(da.interval, c->interval);
        po_device_auth_free(&da);
    }
}

static const struct bad_case {
    long status;
    const char *body;
    po_rc rc;
    const char *msg;
} bad_cases[] = {
    /* error responses: the typed outcome of the code */
    {400, "{\"error\":\"invalid_client\",\"error_description\":\"no\"}",
     PO_INVALID_CLIENT,
     "device authorization endpoint answered HTTP 400: invalid_client: no"},
    {401, "", PO_INVALID_CLIENT,
     "device authorization endpoint answered HTTP 401 with an empty body"},
    {400, "{\"error\":\"unauthorized_client\"}", PO_UNAUTHORIZED_CLIENT,
     "device authorization endpoint answered HTTP 400: unauthorized_client"},
    {400, "{\"error\":\"invalid_scope\"}", PO_INVALID_SCOPE,
     "device authorization endpoint answered HTTP 400: invalid_scope"},
    {500, "<html>", PO_SERVER_ERROR,
     "device authorization endpoint answered HTTP 500 with a body that is "
     "not JSON"},
    {404, "", PO_INVALID_REQUEST,
     "device authorization endpoint answered HTTP 404 with an empty body"},
    {200, "{\"error\":\"access_denied\"}", PO_ACCESS_DENIED,
     "device authorization endpoint answered HTTP 200: access_denied"},
    {200, "", PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered HTTP 200 with an empty body"},
    {200, "<html>", PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered HTTP 200 with a body that is "
     "not JSON"},
    {200, "[1]", PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered HTTP 200 with JSON that is not "
     "an object"},
    {200, "{}", PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered without device_code"},
    {200, "{\"error\":42}", PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered HTTP 200 without device_code"},
    /* the members */
    {200,
     "{\"device_code\":5,\"user_code\":\"A\",\"verification_uri\":"
     "\"https://i.test/d\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with a device_code that is not "
     "a string"},
    {200,
     "{\"device_code\":\"\",\"user_code\":\"A\",\"verification_uri\":"
     "\"https://i.test/d\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered without device_code"},
    {200,
     "{\"device_code\":\"a\\u0000b\",\"user_code\":\"A\",\"verification_uri\":"
     "\"https://i.test/d\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with a device_code longer than "
     "4096 bytes or holding a control character"},
    {200,
     "{\"device_code\":\"d\",\"verification_uri\":\"https://i.test/d\","
     "\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered without user_code"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":[],\"verification_uri\":"
     "\"https://i.test/d\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with a user_code that is not a "
     "string"},
    /* a terminal escape, a C1 control, invalid UTF-8 in the user code */
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"\\u001b]0;pwned\\u0007\","
     "\"verification_uri\":\"https://i.test/d\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with a user_code longer than "
     "128 bytes, holding a control character or not UTF-8"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"AB\\u009bCD\","
     "\"verification_uri\":\"https://i.test/d\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with a user_code longer than "
     "128 bytes, holding a control character or not UTF-8"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"AB\xff\","
     "\"verification_uri\":\"https://i.test/d\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with a user_code longer than "
     "128 bytes, holding a control character or not UTF-8"},
    /* json-c lets bytes that are not UTF-8 through (0xff above, an overlong
     * NUL here); the user code check does not */
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"AB\xc0\x80\","
     "\"verification_uri\":\"https://i.test/d\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with a user_code longer than "
     "128 bytes, holding a control character or not UTF-8"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"0123456789012345678901234567890"
     "1234567890123456789012345678901234567890123456789012345678901234567890"
     "12345678901234567890123456789\",\"verification_uri\":"
     "\"https://i.test/d\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with a user_code longer than "
     "128 bytes, holding a control character or not UTF-8"},
    /* the URIs */
    {200, "{\"device_code\":\"d\",\"user_code\":\"A\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered without verification_uri"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"A\",\"verification_uri\":"
     "\"http://idp.test/d\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with a verification_uri that is "
     "refused: http://idp.test/d: http:// refused, use https:// (allow_http "
     "permits http:// to a loopback host only)"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"A\",\"verification_uri\":"
     "\"https://i.test/d\",\"verification_uri_complete\":"
     "\"javascript:alert(1)\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with a verification_uri_complete "
     "that is refused: javascript:alert(1): not an absolute https:// URL"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"A\",\"verification_uri\":"
     "\"https://i.test/d ev\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with a verification_uri that "
     "holds a space, a control character or non-ASCII"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"A\",\"verification_uri\":"
     "\"https://i.test/\\u001b[2J\",\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with a verification_uri that "
     "holds a space, a control character or non-ASCII"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"A\",\"verification_url\":"
     "true,\"expires_in\":60}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with a verification_url that is "
     "not a string"},
    /* expires_in and interval */
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"A\",\"verification_uri\":"
     "\"https://i.test/d\"}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered without expires_in"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"A\",\"verification_uri\":"
     "\"https://i.test/d\",\"expires_in\":0}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with an expires_in that is not a "
     "whole number of seconds from 1 to 86400"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"A\",\"verification_uri\":"
     "\"https://i.test/d\",\"expires_in\":86401}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with an expires_in that is not a "
     "whole number of seconds from 1 to 86400"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"A\",\"verification_uri\":"
     "\"https://i.test/d\",\"expires_in\":1.5}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with an expires_in that is not a "
     "whole number of seconds from 1 to 86400"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"A\",\"verification_uri\":"
     "\"https://i.test/d\",\"expires_in\":\"-5\"}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with an expires_in that is not a "
     "whole number of seconds from 1 to 86400"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"A\",\"verification_uri\":"
     "\"https://i.test/d\",\"expires_in\":60,\"interval\":-1}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with an interval that is not a "
     "whole number of seconds from 0 to 300"},
    {200,
     "{\"device_code\":\"d\",\"user_code\":\"A\",\"verification_uri\":"
     "\"https://i.test/d\",\"expires_in\":60,\"interval\":301}",
     PO_MALFORMED_RESPONSE,
     "device authorization endpoint answered with an interval that is not a "
     "whole number of seconds from 0 to 300"},
};

static void test_parse_bad(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        po_device_auth da;
        po_err err;

        print_message("case %zu\n", i);
        po_err_clear(&err);
        assert_int_equal(
            po_device_parse(c->status, c->body, strlen(c->body), 0, &da, &err),
            c->rc);
        assert_int_equal(err.rc, c->rc);
        assert_int_equal(err.http_status, c->status);
        assert_string_equal(err.msg, c->msg);
        assert_null(da.device_code);
        assert_null(da.user_code);
        assert_null(da.verification_uri);
    }
    /* a body with a NUL inside is cut there: not JSON */
    {
        static const char body[] = "{\"device_code\":\"d\"\0}";
        po_device_auth da;
        po_err err;
        assert_int_equal(
            po_device_parse(200, body, sizeof(body) - 1, 0, &da, &err),
            PO_MALFORMED_RESPONSE);
        assert_int_equal(po_device_parse(200, NULL, 5, 0, &da, &err),
                         PO_MALFORMED_RESPONSE);
    }
}

/* ------------------------------------------------------------------ */
/* the requests                                                        */

static const struct build_case {
    po_client_auth auth;
    po_body_style style;
    const char *url, *content_type, *body;
    int basic;
} device_build_cases[] = {
    {PO_CLIENT_AUTH_BASIC, PO_BODY_FORM, "https://idp.example.test/device",
     "application/x-www-form-urlencoded",
     "scope=openid+profile&audience=https%3A%2F%2Fapi.test&tenant=t1", 1},
    {PO_CLIENT_AUTH_POST, PO_BODY_FORM, "https://idp.example.test/device",
     "application/x-www-form-urlencoded",
     "client_id=login-client&client_secret=s3cret&scope=openid+profile&"
     "audience=https%3A%2F%2Fapi.test&tenant=t1",
     0},
    {PO_CLIENT_AUTH_NONE, PO_BODY_JSON, "https://idp.example.test/device",
     "application/json",
     "{\"client_id\":\"login-client\",\"scope\":\"openid profile\","
     "\"audience\":\"https://api.test\",\"tenant\":\"t1\"}",
     0},
    {PO_CLIENT_AUTH_NONE, PO_BODY_QUERY,
     "https://idp.example.test/device?client_id=login-client&scope=openid+"
     "profile&audience=https%3A%2F%2Fapi.test&tenant=t1",
     NULL, NULL, 0},
};

static void test_build_device_request(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(device_build_cases); i++) {
        const struct build_case *c = &device_build_cases[i];
        po_profile p;
        po_oauth_req r;
        po_err err;

        print_message("case %zu\n", i);
        prof_init(&p);
        p.client_auth = c->auth;
        p.body = c->style;
        p.audience = dup("https://api.test");
        p.params = calloc(1, sizeof(*p.params));
        assert_non_null(p.params);
        p.params[0].name = dup("tenant");
        p.params[0].value = dup("t1");
        p.nparams = 1;
        if (c->auth == PO_CLIENT_AUTH_NONE) {
            free(p.client_secret);
            p.client_secret = NULL;
        }
        assert_int_equal(po_oauth_build_device(
                             &p, "https://idp.example.test/device", &r, &err),
                         PO_OK);
        assert_string_equal(r.url, c->url);
        if (c->content_type == NULL) {
            assert_null(r.content_type);
            assert_null(r.body);
        } else {
            assert_string_equal(r.content_type, c->content_type);
            assert_string_equal(r.body, c->body);
        }
        if (c->basic)
            /* base64("login-client:s3cret") */
            assert_string_equal(r.authorization,
                                "Basic bG9naW4tY2xpZW50OnMzY3JldA==");
        else
            assert_null(r.authorization);
        po_oauth_req_free(&r);
        prof_free(&p);
    }
}

static void test_build_device_code_grant(void **state)
{
    po_profile p;
    po_grant_input g;
    po_oauth_req r;
    po_err err;

    (void)state;
    prof_init(&p);
    p.client_auth = PO_CLIENT_AUTH_POST;
    p.resource = dup("https://api.test/");
    memset(&g, 0, sizeof(g));
    g.grant = PO_GRANT_DEVICE_CODE;
    g.device_code = "GmRh+/=";
    assert_int_equal(po_oauth_build(&p, &g, &r, &err), PO_OK);
    /* RFC 8628 3.4: no scope or resource again; the code stands for them */
    assert_string_equal(r.body,
                        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%"
                        "3Adevice_code&device_code=GmRh%2B%2F%3D&client_id="
                        "login-client&client_secret=s3cret");
    po_oauth_req_free(&r);
    /* without a device code: a configuration error naming the profile */
    g.device_code = NULL;
    assert_int_equal(po_oauth_build(&p, &g, &r, &err), PO_CONFIG);
    assert_string_equal(err.msg, "profile dev (/etc/pam-oauth/pam-oauth.conf:"
                                 "7): the device grant needs a device code");
    /* no endpoint */
    assert_int_equal(po_oauth_build_device(&p, NULL, &r, &err), PO_CONFIG);
    assert_string_equal(err.msg, "profile dev (/etc/pam-oauth/pam-oauth.conf:"
                                 "7): no device authorization endpoint");
    prof_free(&p);
}

static void test_parse_error_detail(void **state)
{
    static const char body[] =
        "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS50076: "
        "Due to a configuration change made by your administrator, you must "
        "use multi-factor authentication\\u0007.\"}";
    po_oauth_error oe;
    po_err err;

    (void)state;
    assert_int_equal(po_oauth_parse_error("token endpoint", 400, body,
                                          strlen(body), &oe, &err),
                     PO_INVALID_GRANT);
    assert_string_equal(oe.code, "invalid_grant");
    assert_string_equal(oe.description,
                        "AADSTS50076: Due to a configuration change made by "
                        "your administrator, you must use multi-factor "
                        "authentication.");
    assert_int_equal(
        po_oauth_parse_error("token endpoint", 403, "", 0, &oe, &err),
        PO_INVALID_GRANT);
    assert_string_equal(oe.code, "");
    assert_string_equal(oe.description, "");
}

/* ------------------------------------------------------------------ */
/* what the user sees                                                  */

static void make_auth(po_device_auth *da, int complete)
{
    memset(da, 0, sizeof(*da));
    da->device_code = dup("d");
    da->user_code = dup("WDJB-MJHT");
    da->verification_uri = dup("https://example.com/device");
    if (complete)
        da->verification_uri_complete =
            dup("https://example.com/device?user_code=WDJB-MJHT");
    da->expires_in = 1800;
    da->interval = 5;
}

static void test_message(void **state)
{
    po_device_auth da;
    po_buf b;
    po_err qerr, err;

    (void)state;
    make_auth(&da, 0);
    po_buf_init(&b, 64 * 1024, 0);
    assert_int_equal(po_device_message(&da, 300, 0, &b, &qerr, &err), PO_OK);
    assert_string_equal(b.data, "To log in, open https://example.com/device\n"
                                "and enter the code WDJB-MJHT\n"
                                "The code is valid for 5 minutes.");
    assert_int_equal(qerr.rc, PO_OK);
    po_buf_free(&b);
    po_device_auth_free(&da);

    make_auth(&da, 1);
    assert_int_equal(po_device_message(&da, 45, 0, &b, &qerr, &err), PO_OK);
    assert_string_equal(
        b.data,
        "To log in, open https://example.com/device?user_code=WDJB-MJHT\n"
        "or open https://example.com/device and enter the code "
        "WDJB-MJHT\n"
        "The code is valid for 45 seconds.");
    po_buf_free(&b);

    /* with the QR code: the text, then the picture, no trailing newline */
    assert_int_equal(po_device_message(&da, 0, 1, &b, &qerr, &err), PO_OK);
    assert_int_equal(qerr.rc, PO_OK);
    assert_non_null(strstr(b.data, "enter the code WDJB-MJHT\n"
                                   "Or scan this QR code:\n" FULL FULL));
    assert_true(b.data[b.len - 1] != '\n');
    po_buf_free(&b);

    /* a message that does not fit leaves the buffer as it was */
    po_buf_init(&b, 20, 0);
    assert_int_equal(po_device_message(&da, 0, 0, &b, &qerr, &err),
                     PO_TOO_LARGE);
    assert_int_equal(b.len, 0);
    po_buf_free(&b);
    /* the text fits, the picture does not: the text alone */
    po_buf_init(&b, 400, 0);
    assert_int_equal(po_device_message(&da, 0, 1, &b, &qerr, &err), PO_OK);
    assert_int_equal(qerr.rc, PO_TOO_LARGE);
    assert_null(strstr(b.data, "QR"));
    po_buf_free(&b);
    po_device_auth_free(&da);
}

static void test_seconds_left(void **state)
{
    po_device_auth da;
    po_profile p;

    (void)state;
    make_auth(&da, 0);
    prof_init(&p);
    assert_int_equal(po_device_deadline(&p, 1000), 301000);
    da.issued_ms = 1000;
    da.expires_in = 60;
    /* the code expires before device_timeout */
    assert_int_equal(po_device_seconds_left(&da, 301000, 1000), 60);
    assert_int_equal(po_device_seconds_left(&da, 301000, 31500), 29);
    assert_int_equal(po_device_seconds_left(&da, 301000, 90000), 0);
    /* device_timeout before the code */
    da.expires_in = 1800;
    assert_int_equal(po_device_seconds_left(&da, 301000, 1000), 300);
    p.device_timeout = 0; /* the default */
    assert_int_equal(po_device_deadline(&p, 0), 300000);
    prof_free(&p);
    po_device_auth_free(&da);
}

/* ------------------------------------------------------------------ */
/* the QR code                                                         */

/* The light/dark matrix back from the half blocks: size x size. */
static int unpack(const char *text, int *light, int max, int *size)
{
    int row = 0, col, n = 0;
    const char *s = text;

    *size = 0;
    while (*s != '\0') {
        col = 0;
        while (*s != '\n' && *s != '\0') {
            int top, bottom;
            if (strncmp(s, FULL, 3) == 0) {
                top = bottom = 1;
                s += 3;
            } else if (strncmp(s, UPPER, 3) == 0) {
                top = 1;
                bottom = 0;
                s += 3;
            } else if (strncmp(s, LOWER, 3) == 0) {
                top = 0;
                bottom = 1;
                s += 3;
            } else if (*s == ' ') {
                top = bottom = 0;
                s++;
            } else {
                return -1;
            }
            if (col >= max || 2 * row + 1 >= max)
                return -1;
            light[(2 * row) * max + col] = top;
            light[(2 * row + 1) * max + col] = bottom;
            col++;
        }
        if (*size == 0)
            *size = col;
        else if (col != *size)
            return -1; /* ragged */
        if (*s == '\n')
            s++;
        row++;
        n++;
    }
    return n;
}

static void check_finder(const int *light, int max, int x0, int y0)
{
    int x, y;

    for (y = 0; y < 7; y++)
        for (x = 0; x < 7; x++) {
            int ring = x == 0 || y == 0 || x == 6 || y == 6;
            int core = x >= 2 && x <= 4 && y >= 2 && y <= 4;
            /* dark ring, light gap, dark 3x3 core */
            assert_int_equal(light[(y0 + y) * max + x0 + x], !(ring || core));
        }
}

static void test_qr_geometry(void **state)
{
    static int light[200 * 200];
    po_buf b;
    po_err err;
    int lines, size, q = PO_QR_QUIET, w, x;

    (void)state;
    po_buf_init(&b, 256 * 1024, 0);
    assert_int_equal(
        po_qr_text("https://example.com/device?user_code=WDJB-MJHT", &b, &err),
        PO_OK);
    lines = unpack(b.data, light, 200, &size);
    /* 47 bytes need version 3 at level L: 29 modules */
    w = 29;
    assert_int_equal(size, w + 2 * q);
    assert_int_equal(lines, (w + 2 * q + 1) / 2);
    assert_int_equal(b.data[b.len - 1], '\n');
    /* the quiet zone is light all round */
    for (x = 0; x < size; x++) {
        assert_int_equal(light[0 * 200 + x], 1);
        assert_int_equal(light[x * 200 + 0], 1);
        assert_int_equal(light[(size - 1) * 200 + x], 1);
        assert_int_equal(light[x * 200 + size - 1], 1);
    }
    /* three finder patterns where the standard puts them */
    check_finder(light, 200, q, q);
    check_finder(light, 200, q + w - 7, q);
    check_finder(light, 200, q, q + w - 7);
    /* timing pattern on row 6: alternating from the finders */
    for (x = 8; x < w - 8; x++)
        assert_int_equal(light[(q + 6) * 200 + q + x], x % 2);
    po_buf_free(&b);

    /* an empty text, and one too long for a terminal */
    assert_int_equal(po_qr_text("", &b, &err), PO_USAGE);
    {
        char big[700];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(po_qr_text(big, &b, &err), PO_TOO_LARGE);
        assert_int_equal(b.len, 0);
    }
    /* a buffer too small keeps nothing half drawn */
    po_buf_init(&b, 100, 0);
    assert_int_equal(po_buf_puts(&b, "kept"), PO_OK);
    assert_int_equal(po_qr_text("x", &b, &err), PO_TOO_LARGE);
    assert_string_equal(b.data, "kept");
    po_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_rfc_example),
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_build_device_request),
        cmocka_unit_test(test_build_device_code_grant),
        cmocka_unit_test(test_parse_error_detail),
        cmocka_unit_test(test_message),
        cmocka_unit_test(test_seconds_left),
        cmocka_unit_test(test_qr_geometry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

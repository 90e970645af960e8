/*
 * fuzz_request - the token request built from what users and
 * configurations chose (po_oauth_build): a user name and password from the
 * PAM conversation, a refresh token from the server, client credentials,
 * scope, audience, resource and param.NAME from the configuration, in
 * every grant, client authentication and body style (form, JSON, query).
 *
 * Input: one byte choosing grant, client_auth, body and the token_url's
 * shape (sel % 3, sel / 3 % 3, sel / 9 % 3, sel >> 6; sel / 27 % 3 == 2
 * is the device grant: its token request and its device authorization
 * request), then the fields separated by NUL bytes: client_id,
 * client_secret, scope, audience, resource, username, password,
 * refresh_token (the device code for the device grant), a parameter name
 * and its value.  Configuration values go through
 * po_profile_set, as a file's lines do (so a value it refuses is skipped).
 *
 * Property (encode(decode(x))): the request decodes (form-decoding written
 * here, json-c for JSON, po_b64_decode for the Basic header) to exactly the
 * parameters RFC 6749 and the profile call for, in order; the URL carries
 * no parameter unless the body style is query; messages are printable.
 */
#include "fuzz.h"

#include <json.h>

#include "b64.h"
#include "config.h"
#include "oauth.h"
#include "util.h"
#include "secret.h"

#define FIELDS 10
#define MAXP 16

typedef struct param {
    const char *name;
    const char *value;
} param;

/* "a=b&c=d" decodes to want[0..n). */
static void check_form(const char *text, size_t len, const param *want,
                       size_t n)
{
    const char *p = text, *end = text + len;
    size_t i;

    for (i = 0; i < n; i++) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        char *k, *v;

        FUZZ_CHECK(eq != NULL, "parameter %zu without '='", i);
        k = fuzz_form_decode(p, (size_t)(eq - p), NULL);
        v = fuzz_form_decode(eq + 1, (size_t)(stop - eq - 1), NULL);
        FUZZ_CHECK(k != NULL && v != NULL, "parameter %zu not form-encoded", i);
        FUZZ_CHECK(strcmp(k, want[i].name) == 0, "parameter %zu is %s, not %s",
                   i, k, want[i].name);
        FUZZ_CHECK(strcmp(v, want[i].value) == 0,
                   "parameter %s has another value", k);
        free(k);
        po_secret_free(v);
        FUZZ_CHECK((amp == NULL) == (i + 1 == n), "parameter count");
        p = stop + 1;
    }
}

static void check_json(const char *text, const param *want, size_t n)
{
    json_object *o = json_tokener_parse(text);
    size_t i = 0;

    FUZZ_CHECK(o != NULL && json_object_is_type(o, json_type_object),
               "the JSON body is not an object");
    FUZZ_CHECK((size_t)json_object_object_length(o) == n, "%d members, %zu",
               json_object_object_length(o), n);
    json_object_object_foreach(o, key, val)
    {
        FUZZ_CHECK(strcmp(key, want[i].name) == 0, "member %zu is %s", i, key);
        FUZZ_CHECK(json_object_is_type(val, json_type_string) &&
                       strcmp(json_object_get_string(val), want[i].value) == 0,
                   "member %s has another value", key);
        i++;
    }
    json_object_put(o);
}

static void check_basic(const char *hdr, const char *id, const char *secret)
{
    unsigned char *raw = NULL;
    size_t n = 0;
    char *colon, *a, *b;

    FUZZ_CHECK(strncmp(hdr, "Basic ", 6) == 0, "not Basic");
    FUZZ_CHECK(po_b64_decode(hdr + 6, strlen(hdr + 6), "basic", &raw, &n,
                             NULL) == PO_OK,
               "Basic is not base64");
    colon = memchr(raw, ':', n);
    FUZZ_CHECK(colon != NULL, "no ':'");
    a = fuzz_form_decode((char *)raw, (size_t)(colon - (char *)raw), NULL);
    b = fuzz_form_decode(colon + 1, n - (size_t)(colon + 1 - (char *)raw),
                         NULL);
    FUZZ_CHECK(a != NULL && b != NULL && strcmp(a, id) == 0 &&
                   strcmp(b, secret) == 0,
               "Basic does not decode to the client credentials");
    free(a);
    po_secret_free(b);
    po_cleanse(raw, n);
    free(raw);
}

static int set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* r, built from p, carries exactly want[0..n): in the Authorization
 * header (basic), the query or the body, as p's style says. */
static void check_request(const po_profile *p, const po_oauth_req *r,
                          const param *want, size_t n)
{
    size_t base;

    if (p->client_auth == PO_CLIENT_AUTH_BASIC)
        check_basic(r->authorization, p->client_id, p->client_secret);
    else
        FUZZ_CHECK(r->authorization == NULL, "Authorization without basic");
    base = strcspn(p->token_url, "#");
    FUZZ_CHECK(strncmp(r->url, p->token_url, base) == 0, "URL base changed");
    if (p->body == PO_BODY_QUERY) {
        const char *q = r->url + base;
        if (memchr(p->token_url, '?', base) == NULL) {
            FUZZ_CHECK(*q == '?', "no '?'");
            q++;
        } else if (r->url[base - 1] != '?' && r->url[base - 1] != '&') {
            FUZZ_CHECK(*q == '&', "no '&'");
            q++;
        }
        check_form(q, strlen(q), want, n);
        FUZZ_CHECK(r->body == NULL && r->content_type == NULL,
                   "a body with the query style");
    } else {
        FUZZ_CHECK(strcmp(r->url, p->token_url) == 0, "parameters in the URL");
        FUZZ_CHECK(r->body != NULL && strlen(r->body) == r->body_len,
                   "body length");
        if (p->body == PO_BODY_JSON)
            check_json(r->body, want, n);
        else
            check_form(r->body, r->body_len, want, n);
    }
}

/* The client authentication, then (with_extras) scope, audience and
 * resource, then the param.NAME of p, appended to want from *n on. */
static void want_client(const po_profile *p, int with_extras, param *want,
                        size_t *n)
{
    size_t i;

    if (p->client_auth != PO_CLIENT_AUTH_BASIC)
        want[(*n)++] = (param){"client_id", p->client_id};
    if (p->client_auth == PO_CLIENT_AUTH_POST)
        want[(*n)++] = (param){"client_secret", p->client_secret};
    if (with_extras && set(p->scope))
        want[(*n)++] = (param){"scope", p->scope};
    if (with_extras && set(p->audience))
        want[(*n)++] = (param){"audience", p->audience};
    if (with_extras && set(p->resource))
        want[(*n)++] = (param){"resource", p->resource};
    for (i = 0; i < p->nparams; i++)
        want[(*n)++] = (param){p->params[i].name, p->params[i].value};
}

static void build_ok(po_rc rc, const po_err *err)
{
    FUZZ_CHECK(fuzz_no_controls(err->msg), "control character in \"%s\"",
               err->msg);
    FUZZ_CHECK(rc == PO_OK || rc == PO_CONFIG || rc == PO_TOO_LARGE,
               "build: %s", po_rc_name(rc));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const urls[4] = {
        "https://auth.example.test/oauth/token",
        "https://auth.example.test/oauth/token?tenant=a%20b",
        "https://auth.example.test/oauth/token?",
        "https://auth.example.test/t?x=1&#frag"};
    static const char *const grants[3] = {"client_credentials", "password",
                                          "refresh_token"};
    static const char *const auths[3] = {"basic", "post", "none"};
    static const char *const bodies[3] = {"form", "json", "query"};
    static const char *const keys[5] = {"client_id", "client_secret", "scope",
                                        "audience", "resource"};
    fuzz_in in = {data, size};
    unsigned sel = fuzz_byte(&in);
    int device = (sel / 27) % 3 == 2;
    const char *f[FIELDS] = {NULL};
    char *all = fuzz_rest(&in, &size), *name = NULL;
    param want[MAXP];
    size_t n = 0, i;
    po_grant_input g;
    po_oauth_req r;
    po_profile p;
    po_err err;
    po_rc rc;

    for (i = 0; i < FIELDS; i++) {
        size_t off = 0;
        if (i > 0) {
            off = (size_t)(f[i - 1] - all) + strlen(f[i - 1]) + 1;
            if (off > size)
                break;
        }
        f[i] = all + off;
    }
    if (po_profile_init(&p, "fuzz", NULL) != PO_OK)
        abort();
    if (po_profile_set(&p, "token_url", urls[(sel >> 6) & 3], "fuzz", NULL) ||
        po_profile_set(&p, "grant", device ? "device" : grants[sel % 3], "fuzz",
                       NULL) ||
        po_profile_set(&p, "client_auth", auths[(sel / 3) % 3], "fuzz", NULL) ||
        po_profile_set(&p, "body", bodies[(sel / 9) % 3], "fuzz", NULL))
        abort();
    for (i = 0; i < 5; i++)
        if (f[i] != NULL)
            (void)po_profile_set(&p, keys[i], f[i], "fuzz", NULL);
    if (f[8] != NULL && f[9] != NULL && f[8][0] != '\0' &&
        (name = po_concat3("param.", f[8], "")) != NULL)
        (void)po_profile_set(&p, name, f[9], "fuzz", NULL);
    /* a device login polls with the device code (the refresh token's
     * field) */
    g = device ? (po_grant_input){PO_GRANT_DEVICE_CODE, NULL, NULL, NULL, f[7]}
               : (po_grant_input){p.grant, f[5], f[6], f[7], NULL};

    po_err_clear(&err);
    rc = po_oauth_build(&p, &g, &r, &err);
    build_ok(rc, &err);
    if (rc == PO_OK) {
        /* what RFC 6749 (RFC 8628 3.4) and the profile call for, in the
         * builder's order; a device code stands for the scope, audience
         * and resource sent with the device authorization request */
        want[n++] = (param){"grant_type", device ? PO_DEVICE_CODE_GRANT_TYPE
                                                 : grants[p.grant]};
        if (g.grant == PO_GRANT_PASSWORD) {
            want[n++] = (param){"username", g.username};
            want[n++] = (param){"password", g.password};
        } else if (g.grant == PO_GRANT_REFRESH_TOKEN) {
            want[n++] = (param){"refresh_token", g.refresh_token};
        } else if (g.grant == PO_GRANT_DEVICE_CODE) {
            want[n++] = (param){"device_code", g.device_code};
        }
        want_client(&p, !device, want, &n);
        check_request(&p, &r, want, n);
        po_oauth_req_free(&r);
    }
    if (device) {
        /* the device authorization request (RFC 8628 3.1): no grant_type,
         * the client and the extras */
        po_err_clear(&err);
        rc = po_oauth_build_device(&p, p.token_url, &r, &err);
        build_ok(rc, &err);
        if (rc == PO_OK) {
            n = 0;
            want_client(&p, 1, want, &n);
            check_request(&p, &r, want, n);
            po_oauth_req_free(&r);
        }
    }
    po_profile_free(&p);
    free(name);
    po_cleanse(all, size);
    free(all);
    return 0;
}

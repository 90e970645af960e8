/*
 * fuzz_token_response - a token endpoint's answer, as po_oauth_token_request
 * reads it: the HTTP status and the response headers (po_http_header, line
 * by line, as libcurl hands them over), then the body (po_oauth_parse),
 * with every vendor's success and error shape (RFC 6749 5.1/5.2, Fluent's
 * "errors" envelope, Glewlwyd's empty 403).
 *
 * Input: two bytes of status (big-endian, modulo 1000, so nonsense
 * statuses come too), one byte choosing default_lifetime, then header
 * lines up to an empty line, then the body.
 *
 * Properties: a success is a 2xx with a non-empty bearer access token, a
 * sane lifetime and an extra-members object that holds none of the tokens;
 * a failure leaves the token empty and records the status; no message
 * holds a control character; header fields stay in their bounds.
 */
#include "fuzz.h"

#include <json.h>
#include <strings.h>

#include "http.h"
#include "jwks.h"
#include "oauth.h"

#define NOW 1700000000LL
#define TEN_YEARS (10LL * 366 * 86400)

static void check_token(long status, const po_token *t, long lifetime)
{
    json_object *extra;

    FUZZ_CHECK(status >= 200 && status < 300, "success with HTTP %ld", status);
    FUZZ_CHECK(t->access_token != NULL && t->access_token[0] != '\0',
               "no access token");
    FUZZ_CHECK(t->token_type != NULL &&
                   strcasecmp(t->token_type, "bearer") == 0,
               "token_type %s", t->token_type ? t->token_type : "(null)");
    FUZZ_CHECK(t->obtained_at == NOW, "obtained_at %lld",
               (long long)t->obtained_at);
    FUZZ_CHECK(t->expires_at > NOW && t->expires_at - NOW <= TEN_YEARS,
               "expires_at %lld", (long long)t->expires_at);
    FUZZ_CHECK(t->has_expires_in || t->expires_at - NOW == lifetime,
               "default lifetime not applied");
    FUZZ_CHECK(t->refresh_token == NULL || t->refresh_token[0] != '\0',
               "empty refresh token kept");
    if (t->extra_json == NULL)
        return;
    extra = json_tokener_parse(t->extra_json);
    FUZZ_CHECK(extra != NULL && json_object_is_type(extra, json_type_object),
               "extra_json is not an object");
    FUZZ_CHECK(!json_object_object_get_ex(extra, "access_token", NULL) &&
                   !json_object_object_get_ex(extra, "refresh_token", NULL) &&
                   !json_object_object_get_ex(extra, "id_token", NULL),
               "a token in extra_json");
    json_object_put(extra);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long lifetimes[4] = {3600, 1, 86400, 315360000};
    fuzz_in in = {data, size};
    po_http_resp resp;
    po_token t;
    po_err err;
    long status, lifetime;
    char *body;
    size_t len;
    po_rc rc;

    status = (long)((fuzz_byte(&in) << 8 | fuzz_byte(&in)) % 1000);
    lifetime = lifetimes[fuzz_byte(&in) & 3];

    memset(&resp, 0, sizeof(resp));
    resp.retry_after = -1;
    for (;;) {
        char *line;

        if (in.n == 0)
            break;
        line = fuzz_line(&in, &len);
        if (len == 0 || (len == 1 && line[0] == '\r')) {
            free(line);
            break;
        }
        po_http_header(&resp, line, len, NOW);
        free(line);
    }
    FUZZ_CHECK(memchr(resp.content_type, '\0', sizeof(resp.content_type)) !=
                   NULL,
               "Content-Type not terminated");
    FUZZ_CHECK(memchr(resp.cache_control, '\0', sizeof(resp.cache_control)) !=
                   NULL,
               "Cache-Control not terminated");
    FUZZ_CHECK(resp.retry_after >= -1 && resp.retry_after <= 366L * 86400,
               "Retry-After %ld", resp.retry_after);
    len = po_jwks_max_age(resp.cache_control);
    FUZZ_CHECK(len >= PO_JWKS_TTL_MIN && len <= PO_JWKS_TTL_MAX, "max-age %zu",
               len);

    body = fuzz_rest(&in, &len);
    po_err_clear(&err);
    rc = po_oauth_parse(status, body, len, NOW, lifetime, &t, &err);
    FUZZ_CHECK(err.http_status == status, "http_status %ld", err.http_status);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc == PO_OK) {
        check_token(status, &t, lifetime);
    } else {
        FUZZ_CHECK(err.rc == rc, "err.rc %d, rc %d", err.rc, rc);
        FUZZ_CHECK(err.msg[0] != '\0', "no message for %s", po_rc_name(rc));
        FUZZ_CHECK(t.access_token == NULL && t.refresh_token == NULL &&
                       t.id_token == NULL && t.extra_json == NULL,
                   "a failure left a token");
    }
    po_token_free(&t);
    free(body);
    return 0;
}

/* verify.c - the verify modes: JWT with the issuer's keys, RFC 7662
 * introspection, and the binding of the token to the user. */
#include "verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <json-c/json.h>

#include "cache.h"
#include "http.h"
#include "secret.h"
#include "util.h"

#define INTROSPECT_BODY_MAX (PO_JWT_MAX * 4 + 8192)
#define URL_SHOWN_MAX 512

po_rc po_verifier_init(po_verifier *v, const char *cache_dir, const po_log *log,
                       po_err *err)
{
    memset(v, 0, sizeof(*v));
    po_jwks_cache_init(&v->jwks);
    v->log = log;
    if (cache_dir != NULL && (v->cache_dir = strdup(cache_dir)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    return PO_OK;
}

void po_verifier_free(po_verifier *v)
{
    if (v == NULL)
        return;
    po_jwks_cache_free(&v->jwks);
    free(v->cache_dir);
    memset(v, 0, sizeof(*v));
}

void po_verified_free(po_verified *v)
{
    if (v == NULL)
        return;
    free(v->claims_json);
    memset(v, 0, sizeof(*v));
}

po_rc po_verify_cache_dir(const po_profile *p, int system, char **out,
                          po_err *err)
{
    *out = NULL;
    if (p->jwks_cache_dir != NULL && p->jwks_cache_dir[0] != '\0') {
        if ((*out = strdup(p->jwks_cache_dir)) == NULL)
            return po_fail(err, PO_NOMEM, "out of memory");
        return PO_OK;
    }
    if (system) {
        if ((*out = strdup(PO_JWKS_SYSTEM_DIR)) == NULL)
            return po_fail(err, PO_NOMEM, "out of memory");
        return PO_OK;
    }
    return po_cache_dir(p, out, err);
}

po_rc po_verify_policy(const po_profile *p, po_verify_which which,
                       po_jwt_policy *pol, po_err *err)
{
    po_rc rc;

    memset(pol, 0, sizeof(*pol));
    pol->issuer = p->issuer != NULL && p->issuer[0] != '\0' ? p->issuer : NULL;
    if (p->jwt_audience != NULL && p->jwt_audience[0] != '\0')
        pol->audience = p->jwt_audience;
    else if (which == PO_VERIFY_ACCESS_TOKEN && p->audience != NULL &&
             p->audience[0] != '\0')
        pol->audience = p->audience;
    else
        pol->audience = p->client_id;
    if (pol->audience == NULL)
        return po_fail(err, PO_CONFIG,
                       "profile '%s': no audience to check tokens against "
                       "(set jwt_audience or client_id)",
                       p->name != NULL ? p->name : "");
    pol->leeway = p->jwt_leeway;
    pol->typ = p->jwt_typ != NULL && p->jwt_typ[0] != '\0' ? p->jwt_typ : NULL;
    if ((rc = po_jwt_algset_parse(p->jwt_algorithms != NULL
                                      ? p->jwt_algorithms
                                      : PO_JWT_ALGORITHMS_DEFAULT,
                                  &pol->algs, err)) != PO_OK)
        return rc;
    return PO_OK;
}

int po_verify_is_verdict(po_rc rc)
{
    switch (rc) {
    case PO_JWT_MALFORMED:
    case PO_JWT_ALG_REFUSED:
    case PO_JWT_UNKNOWN_KEY:
    case PO_JWT_BAD_SIGNATURE:
    case PO_JWT_EXPIRED:
    case PO_JWT_NOT_YET_VALID:
    case PO_JWT_WRONG_ISSUER:
    case PO_JWT_WRONG_AUDIENCE:
    case PO_JWT_WRONG_TYPE:
    case PO_JWT_MISSING_CLAIM:
    case PO_TOKEN_INACTIVE:
    case PO_TOKEN_UNVERIFIED:
    case PO_USER_MISMATCH:
        return 1;
    default:
        return 0;
    }
}

/* A printable copy of s. */
static void printable(const char *s, char *out, size_t n)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i + 1 < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[i] = '\0';
}

/* user_claim (or, for introspection, "username") must equal user. */
static po_rc bind_user(const po_profile *p, struct json_object *claims,
                       const char *user, int introspected, po_verified *out,
                       po_err *err)
{
    const char *claim = p->user_claim != NULL && p->user_claim[0] != '\0'
                            ? p->user_claim
                            : "preferred_username";
    struct json_object *v = po_json_path(claims, claim);
    char have[128], want[128];

    if (v == NULL && introspected) {
        claim = "username";
        v = po_json_path(claims, claim);
    }
    if (v == NULL)
        return po_fail(err, PO_JWT_MISSING_CLAIM,
                       "the verified token has no \"%s\" claim to bind it to "
                       "the user",
                       claim);
    if (!json_object_is_type(v, json_type_string))
        return po_fail(err, PO_USER_MISMATCH,
                       "the token's \"%s\" claim is not a string", claim);
    printable(json_object_get_string(v), have, sizeof(have));
    if (strcmp(json_object_get_string(v), user) != 0) {
        printable(user, want, sizeof(want));
        return po_fail(err, PO_USER_MISMATCH,
                       "the token's \"%s\" is \"%s\", not the user \"%s\"",
                       claim, have, want);
    }
    (void)snprintf(out->user, sizeof(out->user), "%s", have);
    return PO_OK;
}

static po_rc claims_text(struct json_object *claims, po_verified *out,
                         po_err *err)
{
    const char *s = json_object_to_json_string_ext(
        claims, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

    if (s == NULL || (out->claims_json = strdup(s)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    return PO_OK;
}

/* ------------------------------------------------------------------ */
/* JWT                                                                 */

static po_rc verify_jwt(po_verifier *v, const po_profile *p,
                        po_verify_which which, const char *token,
                        const char *user, uint64_t deadline_ms, int64_t now,
                        po_verified *out, po_err *err)
{
    po_jwks_source src;
    po_jwt_policy pol;
    const po_jwks *keys = NULL;
    po_jwt j, pre;
    int refetched = 0;
    po_rc rc;
    po_err e;

    memset(&j, 0, sizeof(j));
    memset(&pre, 0, sizeof(pre));
    if ((rc = po_verify_policy(p, which, &pol, err)) != PO_OK)
        goto out;
    if (pol.issuer == NULL) {
        rc = po_fail(err, PO_CONFIG,
                     "profile '%s': verify needs issuer to check JWTs",
                     p->name != NULL ? p->name : "");
        goto out;
    }
    /* Refuse what needs no key before fetching any. */
    if ((rc = po_jwt_parse(token, &pre, err)) != PO_OK)
        goto out;
    if ((pol.algs & PO_JWT_ALG_BIT(pre.alg)) == 0) {
        rc = po_fail(err, PO_JWT_ALG_REFUSED,
                     "token algorithm %s is not in jwt_algorithms",
                     po_jwt_alg_name(pre.alg));
        goto out;
    }
    memset(&src, 0, sizeof(src));
    src.issuer = pol.issuer;
    src.jwks_uri = p->jwks_uri;
    src.cache_dir = v->cache_dir;
    src.ca_file = p->ca_file;
    src.connect_timeout_ms = p->connect_timeout_ms;
    src.retries = p->retries;
    src.allow_http = p->allow_http;
    src.deadline_ms = deadline_ms;
    src.log = v->log;
    if ((rc = po_jwks_get(&v->jwks, &src, now, &keys, err)) != PO_OK)
        goto out;
    rc = po_jwt_verify(token, keys, &pol, now, &j, err);
    if (rc == PO_JWT_UNKNOWN_KEY) {
        po_err_clear(&e);
        if (po_jwks_refetch(&v->jwks, &src, now, &refetched, &e) != PO_OK)
            po_logf(v->log, LOG_WARNING,
                    "fetching the key set again failed: %s", e.msg);
        if (refetched)
            rc = po_jwt_verify(token, &v->jwks.keys, &pol, now, &j, err);
    }
    if (rc != PO_OK)
        goto out;
    (void)snprintf(out->alg, sizeof(out->alg), "%s", po_jwt_alg_name(j.alg));
    if (j.kid != NULL)
        printable(j.kid, out->kid, sizeof(out->kid));
    if (user != NULL &&
        (rc = bind_user(p, j.claims, user, 0, out, err)) != PO_OK)
        goto out;
    if ((rc = claims_text(j.claims, out, err)) != PO_OK)
        goto out;
    out->method = PO_VERIFY_JWT;
    po_logf(v->log, LOG_DEBUG, "token verified: %s, kid \"%s\", issuer %s",
            out->alg, out->kid, pol.issuer);
out:
    po_jwt_free(&pre);
    po_jwt_free(&j);
    return rc;
}

/* ------------------------------------------------------------------ */
/* RFC 7662 introspection                                              */

static po_rc verify_introspect(po_verifier *v, const po_profile *p,
                               const char *token, const char *user,
                               uint64_t deadline_ms, int64_t now,
                               po_verified *out, po_err *err)
{
    struct json_object *root = NULL, *active;
    po_http_opts opts;
    po_http_req req;
    po_http_resp resp;
    po_jwt_policy pol;
    char *body = NULL, *auth = NULL, show[URL_SHOWN_MAX];
    po_buf b;
    po_rc rc;

    memset(&resp, 0, sizeof(resp));
    po_buf_init(&resp.body, PO_HTTP_BODY_MAX, 1);
    po_buf_init(&b, INTROSPECT_BODY_MAX, 1);
    if (p->introspection_url == NULL || p->introspection_url[0] == '\0') {
        rc = po_fail(err, PO_CONFIG,
                     "profile '%s': no introspection_url to verify the token "
                     "with",
                     p->name != NULL ? p->name : "");
        goto out;
    }
    po_http_redact_url(p->introspection_url, show, sizeof(show));
    if ((rc = po_verify_policy(p, PO_VERIFY_ACCESS_TOKEN, &pol, err)) != PO_OK)
        goto out;
    if (strlen(token) > PO_JWT_MAX * 4) {
        rc = po_fail(err, PO_JWT_MALFORMED, "token too large to introspect");
        goto out;
    }
    if ((rc = po_buf_puts(&b, "token=")) != PO_OK ||
        (rc = po_form_encode(&b, token)) != PO_OK ||
        (rc = po_buf_puts(&b, "&token_type_hint=access_token")) != PO_OK)
        goto build_failed;
    if (p->client_auth == PO_CLIENT_AUTH_BASIC) {
        if ((rc = po_oauth_basic_auth(p->client_id != NULL ? p->client_id : "",
                                      p->client_secret, &auth)) != PO_OK)
            goto build_failed;
    } else {
        if ((rc = po_buf_puts(&b, "&client_id=")) != PO_OK ||
            (rc = po_form_encode(&b, p->client_id != NULL ? p->client_id
                                                          : "")) != PO_OK)
            goto build_failed;
        if (p->client_auth == PO_CLIENT_AUTH_POST &&
            ((rc = po_buf_puts(&b, "&client_secret=")) != PO_OK ||
             (rc =
                  po_form_encode(&b, p->client_secret != NULL ? p->client_secret
                                                              : "")) != PO_OK))
            goto build_failed;
    }
    if ((rc = po_buf_detach(&b, &body)) != PO_OK)
        goto build_failed;

    memset(&opts, 0, sizeof(opts));
    opts.ca_file = p->ca_file;
    opts.connect_timeout_ms = p->connect_timeout_ms;
    opts.deadline_ms = deadline_ms;
    opts.retries = p->retries;
    opts.allow_http = p->allow_http;
    opts.log = v->log;
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = p->introspection_url;
    req.content_type = "application/x-www-form-urlencoded";
    req.body = body;
    req.body_len = strlen(body);
    req.authorization = auth;
    po_logf(v->log, LOG_DEBUG, "introspecting the token at %s", show);
    if ((rc = po_http_request(&opts, &req, &resp, err)) != PO_OK)
        goto out;
    if (resp.status != 200) {
        if (err != NULL)
            err->http_status = resp.status;
        rc =
            po_fail(err,
                    resp.status == 401 || resp.status == 403 ? PO_INVALID_CLIENT
                    : resp.status >= 500                     ? PO_SERVER_ERROR
                                         : PO_MALFORMED_RESPONSE,
                    "POST %s (introspection): HTTP %ld", show, resp.status);
        goto out;
    }
    po_oom_reset();
    root = json_tokener_parse(resp.body.data != NULL ? resp.body.data : "");
    if (po_out_of_memory()) {
        rc = po_fail(err, PO_NOMEM, "%s: out of memory reading the answer",
                     show);
        goto out;
    }
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "%s: the introspection answer is not a JSON object", show);
        goto out;
    }
    if (!json_object_object_get_ex(root, "active", &active) ||
        !json_object_is_type(active, json_type_boolean) ||
        !json_object_get_boolean(active)) {
        rc = po_fail(err, PO_TOKEN_INACTIVE,
                     "%s: the issuer says the token is not active", show);
        goto out;
    }
    if ((rc = po_jwt_check_claims(root, &pol, now, PO_CLAIMS_WHERE_PRESENT,
                                  err)) != PO_OK)
        goto out;
    if (user != NULL && (rc = bind_user(p, root, user, 1, out, err)) != PO_OK)
        goto out;
    json_object_object_del(root, "active");
    if ((rc = claims_text(root, out, err)) != PO_OK)
        goto out;
    out->method = PO_VERIFY_INTROSPECT;
    po_logf(v->log, LOG_DEBUG, "token verified by introspection at %s", show);
    goto out;
build_failed:
    rc = po_fail(err, rc, "cannot build the introspection request");
out:
    if (root != NULL)
        json_object_put(root);
    po_http_resp_free(&resp);
    po_buf_free(&b);
    po_secret_free(body);
    po_secret_free(auth);
    return rc;
}

po_rc po_verify_token(po_verifier *v, const po_profile *p,
                      po_verify_which which, const char *token,
                      const char *user, uint64_t deadline_ms, int64_t now,
                      po_verified *out, po_err *err)
{
    po_verify_mode mode = p->verify;
    po_rc rc;

    memset(out, 0, sizeof(*out));
    if (token == NULL || token[0] == '\0')
        return po_fail(err, PO_JWT_MALFORMED, "no token to verify");
    if (deadline_ms == 0)
        deadline_ms = po_mono_ms() +
                      (uint64_t)(p->timeout_ms > 0 ? p->timeout_ms : 20000);
    if (mode == PO_VERIFY_AUTO) {
        if (which == PO_VERIFY_ID_TOKEN || po_jwt_looks_like(token))
            mode = PO_VERIFY_JWT;
        else if (p->introspection_url != NULL &&
                 p->introspection_url[0] != '\0')
            mode = PO_VERIFY_INTROSPECT;
        else
            return po_fail(err, PO_TOKEN_UNVERIFIED,
                           "the token is not a JWT and no "
                           "introspection_url is configured: it cannot be "
                           "verified");
    }
    switch (mode) {
    case PO_VERIFY_NONE:
        out->method = PO_VERIFY_NONE;
        return PO_OK;
    case PO_VERIFY_JWT:
        rc = verify_jwt(v, p, which, token, user, deadline_ms, now, out, err);
        break;
    case PO_VERIFY_INTROSPECT:
        if (which == PO_VERIFY_ID_TOKEN)
            return po_fail(err, PO_CONFIG,
                           "an id_token cannot be introspected");
        rc = verify_introspect(v, p, token, user, deadline_ms, now, out, err);
        break;
    default:
        return po_fail(err, PO_CONFIG, "unknown verify mode");
    }
    if (rc != PO_OK)
        po_verified_free(out);
    else
        po_err_clear(err); /* a refetch may have left a message */
    return rc;
}

po_rc po_verify_response(po_verifier *v, const po_profile *p, const po_token *t,
                         const char *user, uint64_t deadline_ms, int64_t now,
                         po_verified *out, po_err *err)
{
    const char *token = t->access_token;

    memset(out, 0, sizeof(*out));
    if (p->verify_token == PO_VERIFY_ID_TOKEN) {
        token = t->id_token;
        if (token == NULL || token[0] == '\0')
            return po_fail(err, PO_TOKEN_UNVERIFIED,
                           "verify_token is id but the token response has no "
                           "id_token (is the openid scope requested?)");
    }
    return po_verify_token(v, p, p->verify_token, token, user, deadline_ms, now,
                           out, err);
}

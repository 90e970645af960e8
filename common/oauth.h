/*
 * oauth.h - OAuth 2.0 token requests (RFC 6749 sections 4.3, 4.4, 6) and
 * responses (5.1, 5.2), with the vendors' variants.
 *
 * Request building and response parsing are pure functions, unit-tested
 * without a network; po_oauth_token_request ties them to po_http_request.
 */
#ifndef PO_OAUTH_H
#define PO_OAUTH_H

#include <stdint.h>
#include "config.h"
#include "err.h"
#include "http.h"

/* The longest token lifetime believed, from a server (expires_in) or a
 * cache file: 10 years, in seconds. */
#define PO_TOKEN_LIFETIME_MAX (10LL * 366 * 86400)

/* A token and what came with it.  Strings are malloc'd or NULL. */
typedef struct po_token {
    char *access_token;  /* secret                                   */
    char *refresh_token; /* secret, NULL when none                   */
    char *token_type;    /* as sent, e.g. "bearer"                   */
    char *scope;         /* granted scope, or NULL                   */
    char *id_token;      /* secret, NULL when none                   */
    int64_t obtained_at; /* wall clock, s                            */
    int64_t expires_at;  /* wall clock, s (expires_in, or the
                            profile's default_lifetime)              */
    int has_expires_in;  /* whether the server sent expires_in       */
    char *extra_json;    /* the other response members as a JSON object
                            text (Fluent's Retailer_id, Roles, ...), or
                            NULL; never holds the tokens             */
} po_token;

/* Free a token's contents, cleansing the secrets; t is zeroed. */
void po_token_free(po_token *t);

/* Deep copy (dst uninitialised). */
po_rc po_token_copy(po_token *dst, const po_token *src, po_err *err);

/* The grant_type of RFC 8628 3.4 (PO_GRANT_DEVICE_CODE). */
#define PO_DEVICE_CODE_GRANT_TYPE "urn:ietf:params:oauth:grant-type:device_code"

/* Whether token text t may be used: not empty, only visible ASCII
 * (0x21..0x7e; RFC 6750's b64token is a subset).  An access or refresh
 * token goes into HTTP headers, curl config lines, git's line protocol and
 * the cache, so no server may smuggle in a CR, LF, NUL, space or control
 * character.  Both frontends refuse a token that fails this. */
int po_token_text_ok(const char *t);

/* What to ask for. */
typedef struct po_grant_input {
    po_grant grant;
    const char *username;      /* password grant                     */
    const char *password;      /* password grant (secret)            */
    const char *refresh_token; /* refresh_token grant (secret)       */
    const char *device_code;   /* device grant (secret)              */
} po_grant_input;

/* The error code and description of an error response, as shown in
 * messages (control characters dropped, shortened); "" when absent. */
typedef struct po_oauth_error {
    char code[68];
    char description[204];
} po_oauth_error;

/* A built request: every member is owned and may hold secrets. */
typedef struct po_oauth_req {
    char *url;          /* token_url, plus the parameters for query style */
    char *content_type; /* NULL for query style (no body)              */
    char *body;         /* NULL for query style                        */
    size_t body_len;
    char *authorization; /* "Basic base64(enc(id):enc(secret))" or NULL */
} po_oauth_req;

/* Append to out the application/x-www-form-urlencoded encoding of s:
 * ALPHA DIGIT - . _ * kept, space as '+', every other byte %XX. */
po_rc po_form_encode(po_buf *out, const char *s);

/* Append to out s as a JSON string literal (quotes included), escaping
 * '"', '\\' and control characters; bytes >= 0x80 pass through. */
po_rc po_json_quote(po_buf *out, const char *s);

/* Append to out one more member of a JSON object being written:
 * ,"key":VALUE where VALUE is val quoted (po_json_quote), or null when val
 * is NULL.  key is written as it is (a literal of the caller's). */
po_rc po_json_member(po_buf *out, const char *key, const char *val);

/* The Authorization header value for client_secret_basic (RFC 6749
 * 2.3.1): "Basic " base64(form(id) ":" form(secret)), into *out (a secret
 * the caller frees with po_secret_free).  A NULL secret counts as "". */
po_rc po_oauth_basic_auth(const char *id, const char *secret, char **out);

/* Build the request for profile p and grant g: grant_type, the grant's
 * parameters, client authentication (basic | post | none), audience,
 * scope, resource and param.* in p's body style (the device grant sends no
 * scope, audience or resource: its device code stands for the ones of the
 * device authorization request).  The client secret must already be
 * loaded (po_profile_load_secret).  PO_CONFIG when something the grant
 * needs is missing. */
po_rc po_oauth_build(const po_profile *p, const po_grant_input *g,
                     po_oauth_req *out, po_err *err);

/* Build the device authorization request of RFC 8628 3.1 to url: client
 * authentication as for token requests, scope, audience, resource and
 * param.*, in p's body style. */
po_rc po_oauth_build_device(const po_profile *p, const char *url,
                            po_oauth_req *out, po_err *err);

/* Cleanse and free a built request. */
void po_oauth_req_free(po_oauth_req *r);

/* Interpret an HTTP response from a token endpoint.  now is the wall clock
 * when the request was sent and default_lifetime applies when expires_in
 * is absent.  On HTTP 200 with a valid body: PO_OK and *out filled.  On an
 * error body (RFC 6749 5.2, Fluent's {"errors":[{"code","message":{...}}]},
 * or no/non-JSON body) the typed outcome from the error code or, failing
 * that, the HTTP status; err->msg carries the server's error and
 * error_description.  A 200 without access_token, a token_type that is not
 * bearer (case-insensitive), or a nonsensical expires_in (negative, not a
 * number, over 10 years) is PO_MALFORMED_RESPONSE. */
po_rc po_oauth_parse(long status, const char *body, size_t len, int64_t now,
                     long default_lifetime, po_token *out, po_err *err);

/* The typed outcome of an error response from endpoint (a name for
 * messages: "token endpoint", "device authorization endpoint"): the error
 * code (RFC 6749 5.2, RFC 8628 3.5, OpenID Connect's
 * interaction_required and kin, Fluent's envelope) or, failing that, the
 * HTTP status, with err->msg "ENDPOINT answered HTTP N: CODE: DESCRIPTION".
 * oe (may be NULL) receives the code and description. */
po_rc po_oauth_parse_error(const char *endpoint, long status, const char *body,
                           size_t len, po_oauth_error *oe, po_err *err);

/* Parse body as one JSON value with json-c, for answers that hold secrets:
 * json-c's string buffer is sized once and cleansed before it is freed.
 * *out is NULL (and *valid 0) when the body is empty, over
 * PO_HTTP_BODY_MAX or not exactly one JSON value.  PO_NOMEM when json-c
 * ran out of memory (it would call the body not JSON, or drop members). */
struct json_object;
po_rc po_oauth_json(const char *body, size_t len, struct json_object **out,
                    int *valid);

/* A whole number of seconds in member name of root: a JSON integer or a
 * string of digits (Azure AD's v1 endpoint sends strings).  1 with *out
 * set when present and within [lo, hi], 0 when absent (or null), -1
 * otherwise (a fraction, a boolean, out of range). */
int po_oauth_json_seconds(struct json_object *root, const char *name, long lo,
                          long hi, long *out);

/* Cleanse, in place, the string values of root's members names[0..n)
 * before the tree is freed. */
void po_oauth_json_cleanse(struct json_object *root, const char *const *names,
                           size_t n);

/* Build, send and parse one token request within deadline_ms (absolute,
 * po_mono_ms()), with po_http_opts.flags http_flags (PO_HTTP_*).  now is
 * the wall clock used for obtained_at/expires_at.
 * One difference from po_oauth_parse: an HTTP 400 without an error code
 * in answer to a refresh_token grant is PO_INVALID_GRANT (Glewlwyd
 * answers a used or unknown refresh token with an empty 400). */
po_rc po_oauth_token_request(const po_profile *p, const po_grant_input *g,
                             uint64_t deadline_ms, unsigned http_flags,
                             int64_t now, const po_log *log, po_token *out,
                             po_err *err);

/* po_oauth_token_request that also hands back the server's error code and
 * description in *oe (may be NULL; "" when there was none). */
po_rc po_oauth_request(const po_profile *p, const po_grant_input *g,
                       uint64_t deadline_ms, unsigned http_flags, int64_t now,
                       const po_log *log, po_token *out, po_oauth_error *oe,
                       po_err *err);

#endif

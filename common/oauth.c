/*
 * oauth.c - token requests (RFC 6749 4.3, 4.4, 6) and responses (5.1,
 * 5.2), with the vendors' variants: Froomle's JSON body, Wave's and
 * Bloom's audience, Fluent's query-string POST and error envelope, and
 * Glewlwyd's empty 403 (bad password) and 400 (rejected refresh token).
 *
 * Requests are written by hand into secret po_bufs (json-c would keep
 * copies of the secrets we cannot cleanse); responses are parsed with
 * json-c, whose copies of the tokens are cleansed before they are freed.
 */
#define _GNU_SOURCE
#include "oauth.h"

#include <json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "b64.h"
#include "http.h"
#include "secret.h"
#include "util.h"

#define REQ_MAX (256 * 1024) /* a built URL or body            */
#define DESC_MAX 200         /* server's description in messages */
#define CODE_MAX 64          /* server's error code in messages  */
#define JSON_DEPTH 32

_Static_assert(sizeof(((po_oauth_error *)0)->code) == CODE_MAX + 4,
               "po_oauth_error.code holds a cleaned code");
_Static_assert(sizeof(((po_oauth_error *)0)->description) == DESC_MAX + 4,
               "po_oauth_error.description holds a cleaned description");

/* ------------------------------------------------------------------ */
/* tokens                                                              */

void po_token_free(po_token *t)
{
    if (t == NULL)
        return;
    po_secret_free(t->access_token);
    po_secret_free(t->refresh_token);
    po_secret_free(t->id_token);
    free(t->token_type);
    free(t->scope);
    free(t->extra_json);
    memset(t, 0, sizeof(*t));
}

int po_token_text_ok(const char *t)
{
    const unsigned char *s = (const unsigned char *)t;

    if (s == NULL || *s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (*s < 0x21 || *s > 0x7e)
            return 0;
    return 1;
}

po_rc po_token_copy(po_token *dst, const po_token *src, po_err *err)
{
    memset(dst, 0, sizeof(*dst));
    dst->obtained_at = src->obtained_at;
    dst->expires_at = src->expires_at;
    dst->has_expires_in = src->has_expires_in;
    if ((src->access_token &&
         !(dst->access_token = po_strdup(src->access_token))) ||
        (src->refresh_token &&
         !(dst->refresh_token = po_strdup(src->refresh_token))) ||
        (src->token_type && !(dst->token_type = po_strdup(src->token_type))) ||
        (src->scope && !(dst->scope = po_strdup(src->scope))) ||
        (src->id_token && !(dst->id_token = po_strdup(src->id_token))) ||
        (src->extra_json && !(dst->extra_json = po_strdup(src->extra_json)))) {
        po_token_free(dst);
        return po_fail(err, PO_NOMEM, "out of memory copying a token");
    }
    return PO_OK;
}

/* ------------------------------------------------------------------ */
/* encoding                                                            */

po_rc po_form_encode(po_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    po_rc rc = PO_OK;
    char esc[3];

    for (; *s != '\0' && rc == PO_OK; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '*') {
            rc = po_buf_append(out, s, 1);
        } else if (c == ' ') {
            rc = po_buf_append(out, "+", 1);
        } else {
            esc[0] = '%';
            esc[1] = hex[c >> 4];
            esc[2] = hex[c & 15];
            rc = po_buf_append(out, esc, 3);
        }
    }
    po_cleanse(esc, sizeof(esc));
    return rc;
}

po_rc po_json_member(po_buf *out, const char *key, const char *val)
{
    po_rc rc;

    if ((rc = po_buf_printf(out, ",\"%s\":", key)) != PO_OK)
        return rc;
    return val == NULL ? po_buf_puts(out, "null") : po_json_quote(out, val);
}

po_rc po_json_quote(po_buf *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    po_rc rc;
    char esc[6] = {'\\', 'u', '0', '0', 0, 0};
    const char *run;

    if ((rc = po_buf_append(out, "\"", 1)) != PO_OK)
        return rc;
    while (*s != '\0') {
        /* copy a run of characters that need no escape in one go */
        for (run = s;
             *s != '\0' && *s != '"' && *s != '\\' && (unsigned char)*s >= 0x20;
             s++)
            ;
        if (s > run &&
            (rc = po_buf_append(out, run, (size_t)(s - run))) != PO_OK)
            goto out;
        if (*s == '\0')
            break;
        switch (*s) {
        case '"':
            rc = po_buf_append(out, "\\\"", 2);
            break;
        case '\\':
            rc = po_buf_append(out, "\\\\", 2);
            break;
        case '\b':
            rc = po_buf_append(out, "\\b", 2);
            break;
        case '\f':
            rc = po_buf_append(out, "\\f", 2);
            break;
        case '\n':
            rc = po_buf_append(out, "\\n", 2);
            break;
        case '\r':
            rc = po_buf_append(out, "\\r", 2);
            break;
        case '\t':
            rc = po_buf_append(out, "\\t", 2);
            break;
        default:
            esc[4] = hex[(unsigned char)*s >> 4];
            esc[5] = hex[*s & 15];
            rc = po_buf_append(out, esc, 6);
            break;
        }
        if (rc != PO_OK)
            goto out;
        s++;
    }
    rc = po_buf_append(out, "\"", 1);
out:
    po_cleanse(esc, sizeof(esc));
    return rc;
}

/* ------------------------------------------------------------------ */
/* building requests                                                   */

typedef struct kv {
    const char *name;
    const char *value;
} kv;

static const char *grant_name(po_grant g)
{
    switch (g) {
    case PO_GRANT_CLIENT_CREDENTIALS:
        return "client_credentials";
    case PO_GRANT_PASSWORD:
        return "password";
    case PO_GRANT_REFRESH_TOKEN:
        return "refresh_token";
    case PO_GRANT_DEVICE_CODE:
        return PO_DEVICE_CODE_GRANT_TYPE;
    }
    return "unknown";
}

static int is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* "profile NAME (file:line)" for messages. */
#define PROF_FMT "profile %s%s%s%s"
#define PROF_ARGS(p)                                                           \
    (p)->name != NULL ? (p)->name : "?", (p)->source != NULL ? " (" : "",      \
        (p)->source != NULL ? (p)->source : "", (p)->source != NULL ? ")" : ""

static po_rc encode_params(po_buf *out, const kv *params, size_t n,
                           po_body_style style)
{
    po_rc rc = PO_OK;
    size_t i;

    if (style == PO_BODY_JSON) {
        rc = po_buf_append(out, "{", 1);
        for (i = 0; i < n && rc == PO_OK; i++) {
            if (i > 0)
                rc = po_buf_append(out, ",", 1);
            if (rc == PO_OK)
                rc = po_json_quote(out, params[i].name);
            if (rc == PO_OK)
                rc = po_buf_append(out, ":", 1);
            if (rc == PO_OK)
                rc = po_json_quote(out, params[i].value);
        }
        if (rc == PO_OK)
            rc = po_buf_append(out, "}", 1);
        return rc;
    }
    for (i = 0; i < n && rc == PO_OK; i++) {
        if (i > 0)
            rc = po_buf_append(out, "&", 1);
        if (rc == PO_OK)
            rc = po_form_encode(out, params[i].name);
        if (rc == PO_OK)
            rc = po_buf_append(out, "=", 1);
        if (rc == PO_OK)
            rc = po_form_encode(out, params[i].value);
    }
    return rc;
}

po_rc po_oauth_basic_auth(const char *id, const char *secret, char **out)
{
    po_rc rc;
    po_buf pair, hdr;

    *out = NULL;
    po_buf_init(&pair, REQ_MAX, 1);
    po_buf_init(&hdr, REQ_MAX, 1);
    if ((rc = po_form_encode(&pair, id)) != PO_OK ||
        (rc = po_buf_append(&pair, ":", 1)) != PO_OK ||
        (rc = po_form_encode(&pair, secret != NULL ? secret : "")) != PO_OK ||
        (rc = po_buf_puts(&hdr, "Basic ")) != PO_OK ||
        (rc = po_b64_append(&hdr, pair.data, pair.len)) != PO_OK ||
        (rc = po_buf_detach(&hdr, out)) != PO_OK)
        goto out;
out:
    po_buf_free(&pair);
    po_buf_free(&hdr);
    return rc;
}

/* What build_request sends besides the grant's own parameters. */
enum {
    WITH_GRANT_TYPE = 1u, /* a token request: grant_type first         */
    WITH_EXTRAS = 2u      /* scope, audience, resource                  */
};

/* Build a request to url (token_url or the device authorization endpoint)
 * for p: the grant's parameters (own[0..nown)), client authentication
 * (basic | post | none), scope, audience and resource when flags say so,
 * then param.*, in p's body style. */
static po_rc build_request(const po_profile *p, const char *url, const kv *own,
                           size_t nown, unsigned flags, po_oauth_req *out,
                           po_err *err)
{
    po_rc rc = PO_OK;
    kv *params = NULL;
    size_t n = 0, i, j;
    po_buf ubuf, body;
    const char *secret = p->client_secret;

    memset(out, 0, sizeof(*out));
    po_buf_init(&ubuf, REQ_MAX, 1);
    po_buf_init(&body, REQ_MAX, 1);

    if (!is_set(p->client_id)) {
        rc = po_fail(err, PO_CONFIG, PROF_FMT ": client_id is not set",
                     PROF_ARGS(p));
        goto out;
    }
    if (p->client_auth != PO_CLIENT_AUTH_NONE && !is_set(secret)) {
        rc = po_fail(err, PO_CONFIG,
                     PROF_FMT ": no client secret (set client_secret, "
                              "client_secret_file or client_secret_command, "
                              "or client_auth = none)",
                     PROF_ARGS(p));
        goto out;
    }
    if ((params = calloc(nown + 8 + p->nparams, sizeof(*params))) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < nown; i++)
        params[n++] = own[i];
    if (p->client_auth == PO_CLIENT_AUTH_POST ||
        p->client_auth == PO_CLIENT_AUTH_NONE)
        params[n++] = (kv){"client_id", p->client_id};
    if (p->client_auth == PO_CLIENT_AUTH_POST)
        params[n++] = (kv){"client_secret", secret};
    if ((flags & WITH_EXTRAS) && is_set(p->scope))
        params[n++] = (kv){"scope", p->scope};
    if ((flags & WITH_EXTRAS) && is_set(p->audience))
        params[n++] = (kv){"audience", p->audience};
    if ((flags & WITH_EXTRAS) && is_set(p->resource))
        params[n++] = (kv){"resource", p->resource};
    for (i = 0; i < p->nparams; i++) {
        if (p->params[i].name == NULL || p->params[i].value == NULL)
            continue;
        for (j = 0; j < n; j++)
            if (strcmp(params[j].name, p->params[i].name) == 0) {
                rc = po_fail(err, PO_CONFIG,
                             PROF_FMT ": param.%s repeats a parameter "
                                      "that is already sent",
                             PROF_ARGS(p), p->params[i].name);
                goto out;
            }
        params[n++] = (kv){p->params[i].name, p->params[i].value};
    }

    if (p->client_auth == PO_CLIENT_AUTH_BASIC &&
        (rc = po_oauth_basic_auth(p->client_id, secret, &out->authorization)) !=
            PO_OK)
        goto encode_failed;

    if (p->body == PO_BODY_QUERY) {
        /* Fluent: the parameters go in the query string of a POST with
         * an empty body.  A fragment is never sent: drop it. */
        size_t base = strcspn(url, "#");
        const char *q = memchr(url, '?', base);
        if ((rc = po_buf_append(&ubuf, url, base)) != PO_OK)
            goto encode_failed;
        if (q == NULL)
            rc = po_buf_append(&ubuf, "?", 1);
        else if (ubuf.data[ubuf.len - 1] != '?' &&
                 ubuf.data[ubuf.len - 1] != '&')
            rc = po_buf_append(&ubuf, "&", 1);
        if (rc != PO_OK ||
            (rc = encode_params(&ubuf, params, n, PO_BODY_FORM)) != PO_OK ||
            (rc = po_buf_detach(&ubuf, &out->url)) != PO_OK)
            goto encode_failed;
    } else {
        if ((rc = po_buf_puts(&ubuf, url)) != PO_OK ||
            (rc = encode_params(&body, params, n, p->body)) != PO_OK)
            goto encode_failed;
        out->body_len = body.len;
        if ((rc = po_buf_detach(&ubuf, &out->url)) != PO_OK ||
            (rc = po_buf_detach(&body, &out->body)) != PO_OK)
            goto encode_failed;
        out->content_type = po_strdup(
            p->body == PO_BODY_JSON ? "application/json"
                                    : "application/x-www-form-urlencoded");
        if (out->content_type == NULL) {
            rc = PO_NOMEM;
            goto encode_failed;
        }
    }
    goto out;
encode_failed:
    rc = po_fail(err, rc, PROF_FMT ": cannot build the %s: %s", PROF_ARGS(p),
                 (flags & WITH_GRANT_TYPE) ? "token request"
                                           : "device authorization request",
                 rc == PO_TOO_LARGE ? "larger than 256 KiB" : "out of memory");
out:
    if (rc != PO_OK)
        po_oauth_req_free(out);
    free(params); /* pointers only */
    po_buf_free(&ubuf);
    po_buf_free(&body);
    return rc;
}

po_rc po_oauth_build(const po_profile *p, const po_grant_input *g,
                     po_oauth_req *out, po_err *err)
{
    kv own[3];
    size_t n = 0;
    unsigned flags = WITH_GRANT_TYPE | WITH_EXTRAS;

    memset(out, 0, sizeof(*out));
    if (!is_set(p->token_url))
        return po_fail(err, PO_CONFIG, PROF_FMT ": token_url is not set",
                       PROF_ARGS(p));
    own[n++] = (kv){"grant_type", grant_name(g->grant)};
    switch (g->grant) {
    case PO_GRANT_CLIENT_CREDENTIALS:
        break;
    case PO_GRANT_PASSWORD:
        if (!is_set(g->username))
            return po_fail(err, PO_CONFIG,
                           PROF_FMT ": the password grant needs a user name",
                           PROF_ARGS(p));
        if (!is_set(g->password))
            return po_fail(err, PO_CONFIG,
                           PROF_FMT ": the password grant needs a password",
                           PROF_ARGS(p));
        own[n++] = (kv){"username", g->username};
        own[n++] = (kv){"password", g->password};
        break;
    case PO_GRANT_REFRESH_TOKEN:
        if (!is_set(g->refresh_token))
            return po_fail(err, PO_CONFIG,
                           PROF_FMT ": the refresh_token grant needs a "
                                    "refresh token",
                           PROF_ARGS(p));
        own[n++] = (kv){"refresh_token", g->refresh_token};
        break;
    case PO_GRANT_DEVICE_CODE:
        /* RFC 8628 3.4: the scope, audience and resource went with the
         * device authorization request; the device code stands for them */
        if (!is_set(g->device_code))
            return po_fail(err, PO_CONFIG,
                           PROF_FMT ": the device grant needs a device code",
                           PROF_ARGS(p));
        own[n++] = (kv){"device_code", g->device_code};
        flags = WITH_GRANT_TYPE;
        break;
    default:
        return po_fail(err, PO_CONFIG, PROF_FMT ": unknown grant %d",
                       PROF_ARGS(p), (int)g->grant);
    }
    return build_request(p, p->token_url, own, n, flags, out, err);
}

po_rc po_oauth_build_device(const po_profile *p, const char *url,
                            po_oauth_req *out, po_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!is_set(url))
        return po_fail(err, PO_CONFIG,
                       PROF_FMT ": no device authorization endpoint",
                       PROF_ARGS(p));
    return build_request(p, url, NULL, 0, WITH_EXTRAS, out, err);
}

void po_oauth_req_free(po_oauth_req *r)
{
    if (r == NULL)
        return;
    po_secret_free(r->url);
    free(r->content_type);
    if (r->body != NULL) {
        po_cleanse(r->body, r->body_len);
        po_secret_free(r->body);
    }
    po_secret_free(r->authorization);
    memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------ */
/* parsing responses                                                   */

/* Copy untrusted server text into out (size n) for a message: control
 * characters (C0, DEL, C1 in UTF-8) dropped, at most max bytes, cut at a
 * UTF-8 character boundary, "..." when shortened. */
static void clean_text(char *out, size_t n, const char *s, size_t max)
{
    size_t o = 0, i = 0, len = strlen(s);

    if (max > n - 4)
        max = n - 4;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t clen = 1;
        if (c < 0x20 || c == 0x7f) {
            i++;
            continue;
        }
        if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9f) {
            i += 2; /* U+0080..U+009F */
            continue;
        }
        if (c >= 0xc0) /* a multi-byte sequence's lead byte */
            while (i + clen < len && clen < 4 &&
                   ((unsigned char)s[i + clen] & 0xc0) == 0x80)
                clen++;
        if (o + clen > max) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, s + i, clen);
        o += clen;
        i += clen;
    }
    out[o] = '\0';
}

static void cleanse_tokens(json_object *root);

/* Parse body as one JSON value (nothing but white space after it).
 * *out is NULL when the body is empty or not JSON.  The tokener's string
 * buffer is sized for the whole body before parsing, so that json-c never
 * reallocates (and frees uncleansed) a buffer that held part of a token,
 * and is cleansed before it is freed.  PO_NOMEM when json-c ran out of
 * memory (it would call the body not JSON, or drop members). */
po_rc po_oauth_json(const char *body, size_t len, struct json_object **out,
                    int *valid)
{
    struct json_tokener *tok;
    json_object *o;
    size_t end;
    po_rc rc = PO_OK;

    *out = NULL;
    *valid = 0;
    if (body == NULL || len == 0 || len > PO_HTTP_BODY_MAX)
        return PO_OK;
    if ((tok = json_tokener_new_ex(JSON_DEPTH)) == NULL)
        return PO_NOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    /* json-c 0.16 exposes struct json_tokener (json_tokener.h) with its
     * string buffer pb; its fields are documented as internal, but there
     * is no other way to pre-size and cleanse that buffer. */
    if (printbuf_memset(tok->pb, 0, 0, (int)len + 1) < 0) {
        json_tokener_free(tok);
        return PO_NOMEM;
    }
    printbuf_reset(tok->pb);
    po_oom_reset();
    o = json_tokener_parse_ex(tok, body, (int)len);
    end = json_tokener_get_parse_end(tok);
    if (o == NULL && json_tokener_get_error(tok) == json_tokener_continue) {
        /* the whole body read, a value not known to be complete (a bare
         * literal or number): a NUL marks the end of the input */
        o = json_tokener_parse_ex(tok, "", 1);
        end = len;
    }
    /* (a JSON null is a NULL object) */
    if (po_out_of_memory()) {
        /* json-c gave up or dropped part of the body: the body is not at
         * fault */
        rc = PO_NOMEM;
    } else if (json_tokener_get_error(tok) == json_tokener_success) {
        while (end < len && strchr(" \t\r\n", body[end]) != NULL &&
               body[end] != '\0')
            end++;
        if (end == len) {
            *out = o;
            *valid = 1;
        }
    }
    if (!*valid && o != NULL) {
        cleanse_tokens(o);
        json_object_put(o);
    }
    po_cleanse(tok->pb->buf, (size_t)tok->pb->size);
    json_tokener_free(tok);
    return rc;
}

static const char *const token_members[] = {
    "access_token",  "token_type", "expires_in",
    "refresh_token", "scope",      "id_token",
};

void po_oauth_json_cleanse(struct json_object *root, const char *const *names,
                           size_t n)
{
    json_object *v;
    size_t i;

    if (root == NULL || !json_object_is_type(root, json_type_object))
        return;
    for (i = 0; i < n; i++)
        if (json_object_object_get_ex(root, names[i], &v) &&
            json_object_is_type(v, json_type_string))
            po_cleanse((char *)(uintptr_t)json_object_get_string(v),
                       (size_t)json_object_get_string_len(v));
}

/* Overwrite json-c's copies of the tokens before the tree is freed. */
static void cleanse_tokens(json_object *root)
{
    static const char *const secrets[] = {"access_token", "refresh_token",
                                          "id_token"};

    po_oauth_json_cleanse(root, secrets, sizeof(secrets) / sizeof(secrets[0]));
}

/* The member name of root as a string, or NULL. */
static const char *get_str(json_object *obj, const char *name)
{
    json_object *v;

    if (obj == NULL || !json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, name, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static const struct {
    const char *code;
    po_rc rc;
} error_codes[] = {
    {"invalid_grant", PO_INVALID_GRANT},
    {"invalid_client", PO_INVALID_CLIENT},
    {"unauthorized_client", PO_UNAUTHORIZED_CLIENT},
    {"invalid_scope", PO_INVALID_SCOPE},
    {"invalid_request", PO_INVALID_REQUEST},
    {"unsupported_grant_type", PO_INVALID_REQUEST},
    /* OpenID Connect Core 3.1.2.6, Auth0, Azure AD: more than the password
     * is needed (a second factor, consent, an interactive login) */
    {"interaction_required", PO_INTERACTION_REQUIRED},
    {"mfa_required", PO_INTERACTION_REQUIRED},
    {"consent_required", PO_INTERACTION_REQUIRED},
    {"login_required", PO_INTERACTION_REQUIRED},
    /* RFC 8628 3.5 */
    {"authorization_pending", PO_AUTHORIZATION_PENDING},
    {"slow_down", PO_SLOW_DOWN},
    {"access_denied", PO_ACCESS_DENIED},
    {"expired_token", PO_EXPIRED_TOKEN},
    {"server_error", PO_SERVER_ERROR},
    {"temporarily_unavailable", PO_SERVER_ERROR},
};

/* The outcome from the HTTP status alone (no error code in the body). */
static po_rc rc_for_status(long status)
{
    if (status == 401)
        return PO_INVALID_CLIENT;
    if (status == 403) /* Glewlwyd: a wrong password, with an empty body */
        return PO_INVALID_GRANT;
    if (status == 429)
        return PO_RATE_LIMITED;
    if (status >= 500 && status < 600)
        return PO_SERVER_ERROR;
    if (status >= 400 && status < 500)
        return PO_INVALID_REQUEST;
    return PO_MALFORMED_RESPONSE; /* 1xx, 2xx, 3xx, nonsense */
}

static po_rc rc_for_code(const char *code, long status)
{
    size_t i;

    for (i = 0; i < sizeof(error_codes) / sizeof(error_codes[0]); i++)
        if (strcasecmp(code, error_codes[i].code) == 0)
            return error_codes[i].rc;
    /* An unknown code: the status still says whether the server is
     * overloaded or broken; anything else the server explains. */
    if (status == 429)
        return PO_RATE_LIMITED;
    if (status >= 500 && status < 600)
        return PO_SERVER_ERROR;
    return PO_INVALID_REQUEST;
}

/* An error response (RFC 6749 5.2, Fluent's envelope, or none at all) of
 * endpoint ("token endpoint", ...).  *coded tells whether the body carried
 * an error code; oe (may be NULL) receives the code and description. */
static po_rc parse_error(const char *endpoint, long status, json_object *root,
                         int valid, size_t len, int *coded, po_oauth_error *oe,
                         po_err *err)
{
    const char *code = NULL, *desc = NULL;
    char c[CODE_MAX + 4], d[DESC_MAX + 4];
    json_object *errors, *first, *msg;
    po_rc rc;

    if (root != NULL && json_object_is_type(root, json_type_object)) {
        if ((code = get_str(root, "error")) != NULL) {
            desc = get_str(root, "error_description");
        } else if (json_object_object_get_ex(root, "errors", &errors) &&
                   json_object_is_type(errors, json_type_array) &&
                   json_object_array_length(errors) > 0 &&
                   (first = json_object_array_get_idx(errors, 0)) != NULL &&
                   json_object_is_type(first, json_type_object) &&
                   json_object_object_get_ex(first, "message", &msg)) {
            /* Fluent: {"errors":[{"code":"400","message":{"error":...,
             * "error_description":...}}]}, or a plain message string */
            if (json_object_is_type(msg, json_type_object)) {
                code = get_str(msg, "error");
                desc = get_str(msg, "error_description");
            } else if (json_object_is_type(msg, json_type_string)) {
                desc = json_object_get_string(msg);
            }
        }
    }
    if (code != NULL && code[0] == '\0')
        code = NULL;
    if (desc != NULL && desc[0] == '\0')
        desc = NULL;
    *coded = code != NULL;
    if (code != NULL)
        rc = rc_for_code(code, status);
    else
        rc = rc_for_status(status);
    if (code != NULL)
        clean_text(c, sizeof(c), code, CODE_MAX);
    if (desc != NULL)
        clean_text(d, sizeof(d), desc, DESC_MAX);
    if (oe != NULL) {
        memset(oe, 0, sizeof(*oe));
        if (code != NULL)
            memcpy(oe->code, c, strlen(c) + 1);
        if (desc != NULL)
            memcpy(oe->description, d, strlen(d) + 1);
    }

    if (code != NULL && desc != NULL)
        return po_fail(err, rc, "%s answered HTTP %ld: %s: %s", endpoint,
                       status, c, d);
    if (code != NULL)
        return po_fail(err, rc, "%s answered HTTP %ld: %s", endpoint, status,
                       c);
    if (desc != NULL)
        return po_fail(err, rc, "%s answered HTTP %ld: %s", endpoint, status,
                       d);
    if (status >= 300 && status < 400)
        return po_fail(err, rc, "%s answered HTTP %ld: a redirect", endpoint,
                       status);
    if (len == 0)
        return po_fail(err, rc, "%s answered HTTP %ld with an empty body",
                       endpoint, status);
    if (!valid)
        return po_fail(err, rc,
                       "%s answered HTTP %ld with a body that is not JSON",
                       endpoint, status);
    if (status >= 200 && status < 300)
        return po_fail(err, rc, "%s answered HTTP %ld without access_token",
                       endpoint, status);
    return po_fail(err, rc, "%s answered HTTP %ld without an error code",
                   endpoint, status);
}

int po_oauth_json_seconds(struct json_object *root, const char *name, long lo,
                          long hi, long *out)
{
    json_object *v;
    const char *str;
    int64_t x = 0;
    size_t i;

    if (root == NULL || !json_object_object_get_ex(root, name, &v) || v == NULL)
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        x = json_object_get_int64(v);
    } else if (json_object_is_type(v, json_type_string)) {
        str = json_object_get_string(v);
        if (str[0] == '\0' || strlen(str) > 12)
            return -1;
        for (i = 0; str[i] != '\0'; i++) {
            if (str[i] < '0' || str[i] > '9')
                return -1;
            x = x * 10 + (str[i] - '0');
        }
    } else {
        return -1; /* double, boolean, object, array */
    }
    if (x < lo || x > hi)
        return -1;
    *out = (long)x;
    return 1;
}

/* Copy the optional string member name into *dst (NULL when absent, not
 * a string, or empty). */
static po_rc copy_opt(json_object *root, const char *name, char **dst)
{
    const char *s = get_str(root, name);

    *dst = NULL;
    if (s == NULL || s[0] == '\0')
        return PO_OK;
    return (*dst = po_strdup(s)) != NULL ? PO_OK : PO_NOMEM;
}

/* Every member but the RFC 6749 5.1 ones, as a JSON object text, or NULL
 * when there is none. */
static po_rc extra_members(json_object *root, char **out)
{
    json_object *extra;
    const char *text;
    size_t i;
    int n = 0;
    po_rc rc = PO_OK;

    *out = NULL;
    if ((extra = json_object_new_object()) == NULL)
        return PO_NOMEM;
    json_object_object_foreach(root, key, val)
    {
        for (i = 0; i < sizeof(token_members) / sizeof(token_members[0]); i++)
            if (strcmp(key, token_members[i]) == 0)
                break;
        if (i < sizeof(token_members) / sizeof(token_members[0]))
            continue;
        if (json_object_object_add(extra, key, json_object_get(val)) != 0) {
            json_object_put(val);
            rc = PO_NOMEM;
            goto out;
        }
        n++;
    }
    if (n > 0) {
        text = json_object_to_json_string_ext(
            extra, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (text == NULL || (*out = po_strdup(text)) == NULL)
            rc = PO_NOMEM;
    }
out:
    json_object_put(extra);
    return rc;
}

/* A successful response (RFC 6749 5.1). */
static po_rc parse_token(long status, json_object *root, int64_t now,
                         long default_lifetime, po_token *t, po_err *err)
{
    json_object *v;
    const char *type;
    char shown[48];
    long expires_in = 0;
    int has;

    if (!json_object_object_get_ex(root, "access_token", &v))
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "token endpoint answered HTTP %ld without "
                       "access_token",
                       status);
    if (!json_object_is_type(v, json_type_string) ||
        json_object_get_string_len(v) == 0 ||
        strlen(json_object_get_string(v)) !=
            (size_t)json_object_get_string_len(v))
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "token endpoint answered HTTP %ld: access_token is "
                       "not a non-empty string",
                       status);
    if ((type = get_str(root, "token_type")) == NULL)
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "token endpoint answered HTTP %ld without token_type",
                       status);
    if (strcasecmp(type, "bearer") != 0) {
        clean_text(shown, sizeof(shown), type, 40);
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "token endpoint answered HTTP %ld: token_type '%s' is "
                       "not bearer",
                       status, shown);
    }
    if ((has = po_oauth_json_seconds(root, "expires_in", 1,
                                     PO_TOKEN_LIFETIME_MAX, &expires_in)) < 0)
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "token endpoint answered HTTP %ld: expires_in is not "
                       "a whole number of seconds between 1 and 10 years",
                       status);
    t->obtained_at = now;
    t->has_expires_in = has;
    t->expires_at = now + (has ? expires_in : (int64_t)default_lifetime);
    if ((t->access_token = po_strdup(json_object_get_string(v))) == NULL ||
        (t->token_type = po_strdup(type)) == NULL ||
        copy_opt(root, "refresh_token", &t->refresh_token) != PO_OK ||
        copy_opt(root, "scope", &t->scope) != PO_OK ||
        copy_opt(root, "id_token", &t->id_token) != PO_OK ||
        extra_members(root, &t->extra_json) != PO_OK)
        return po_fail(err, PO_NOMEM, "out of memory reading the token");
    return PO_OK;
}

static po_rc parse_response(long status, const char *body, size_t len,
                            int64_t now, long default_lifetime, po_token *out,
                            int *coded, po_oauth_error *oe, po_err *err)
{
    po_rc rc;
    json_object *root = NULL;
    po_token t;
    int valid;

    *coded = 0;
    memset(out, 0, sizeof(*out));
    memset(&t, 0, sizeof(t));
    if (oe != NULL)
        memset(oe, 0, sizeof(*oe));
    if (body == NULL)
        len = 0;
    if ((rc = po_oauth_json(body, len, &root, &valid)) != PO_OK) {
        rc = po_fail(err, rc, "out of memory parsing the token response");
        goto out;
    }
    if (status >= 200 && status < 300 && root != NULL &&
        json_object_is_type(root, json_type_object) &&
        (json_object_object_get_ex(root, "access_token", NULL) ||
         get_str(root, "error") == NULL))
        rc = parse_token(status, root, now, default_lifetime, &t, err);
    else
        rc = parse_error("token endpoint", status, root, valid, len, coded, oe,
                         err);
    if (rc == PO_OK) {
        *out = t;
        memset(&t, 0, sizeof(t));
    }
out:
    if (err != NULL)
        err->http_status = status;
    po_token_free(&t);
    cleanse_tokens(root);
    json_object_put(root);
    return rc;
}

po_rc po_oauth_parse(long status, const char *body, size_t len, int64_t now,
                     long default_lifetime, po_token *out, po_err *err)
{
    int coded;

    return parse_response(status, body, len, now, default_lifetime, out, &coded,
                          NULL, err);
}

po_rc po_oauth_parse_error(const char *endpoint, long status, const char *body,
                           size_t len, po_oauth_error *oe, po_err *err)
{
    json_object *root = NULL;
    int valid = 0, coded = 0;
    po_rc rc;

    if (body == NULL)
        len = 0;
    if ((rc = po_oauth_json(body, len, &root, &valid)) != PO_OK)
        return po_fail(err, rc, "out of memory parsing the %s's answer",
                       endpoint);
    rc = parse_error(endpoint, status, root, valid, len, &coded, oe, err);
    if (err != NULL)
        err->http_status = status;
    json_object_put(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the request                                                         */

po_rc po_oauth_token_request(const po_profile *p, const po_grant_input *g,
                             uint64_t deadline_ms, unsigned http_flags,
                             int64_t now, const po_log *log, po_token *out,
                             po_err *err)
{
    return po_oauth_request(p, g, deadline_ms, http_flags, now, log, out, NULL,
                            err);
}

po_rc po_oauth_request(const po_profile *p, const po_grant_input *g,
                       uint64_t deadline_ms, unsigned http_flags, int64_t now,
                       const po_log *log, po_token *out, po_oauth_error *oe,
                       po_err *err)
{
    po_rc rc;
    po_err e;
    po_oauth_req req;
    po_http_resp resp;
    po_http_opts opts;
    po_http_req hreq;
    char shown[256];
    int coded = 0, answered = 0;

    memset(out, 0, sizeof(*out));
    memset(&resp, 0, sizeof(resp));
    if (oe != NULL)
        memset(oe, 0, sizeof(*oe));
    po_buf_init(&resp.body, PO_HTTP_BODY_MAX, 1);
    po_err_clear(&e);
    po_http_redact_url(p->token_url, shown, sizeof(shown));

    if ((rc = po_oauth_build(p, g, &req, &e)) != PO_OK)
        goto out;
    opts = (po_http_opts){
        .ca_file = p->ca_file,
        .connect_timeout_ms = p->connect_timeout_ms,
        .deadline_ms = deadline_ms,
        .retries = p->retries,
        .allow_http = p->allow_http,
        .flags = http_flags,
        .log = log,
    };
    hreq = (po_http_req){
        .method = "POST",
        .url = req.url,
        .content_type = req.content_type,
        .body = req.body,
        .body_len = req.body_len,
        .authorization = req.authorization,
    };
    po_logf(log, LOG_DEBUG, "token request: grant %s to %s",
            grant_name(g->grant), shown);
    if ((rc = po_http_request(&opts, &hreq, &resp, &e)) != PO_OK)
        goto out;
    answered = 1;
    rc = parse_response(resp.status, resp.body.data, resp.body.len, now,
                        p->default_lifetime, out, &coded, oe, &e);
    if ((resp.status == 429 || resp.status == 503) && resp.retry_after > 0) {
        char until[40];
        po_format_utc(now + resp.retry_after, until, sizeof(until));
        e.retry_after = resp.retry_after;
        po_err_append(&e, "; the server asks to wait %ld s: try again after %s",
                      resp.retry_after, until);
    }
    if (rc == PO_INVALID_REQUEST && !coded && resp.status == 400 &&
        g->grant == PO_GRANT_REFRESH_TOKEN) {
        /* Glewlwyd answers a used, revoked or unknown refresh token with an
         * empty 400; the refresh token is the request's only variable
         * part, so this is the invalid_grant that makes the caller drop
         * it and fall back to its primary grant. */
        size_t n = strlen(e.msg);
        (void)snprintf(e.msg + n, sizeof(e.msg) - n,
                       " (taken as a rejected refresh token)");
        rc = PO_INVALID_GRANT;
    }
out:
    if (rc != PO_OK && resp.attempts > 1)
        po_err_append(&e, " (after %d attempts)", resp.attempts);
    if (rc == PO_OK)
        po_logf(log, LOG_DEBUG,
                "token request: grant %s to %s: HTTP %ld after %d "
                "attempt(s): ok, %s, expires in %lds%s",
                grant_name(g->grant), shown, resp.status, resp.attempts,
                out->has_expires_in ? "expires_in sent" : "default lifetime",
                (long)(out->expires_at - out->obtained_at),
                out->refresh_token != NULL ? ", with a refresh token" : "");
    else if (answered)
        po_logf(log, LOG_DEBUG,
                "token request: grant %s to %s: HTTP %ld after %d "
                "attempt(s): %s: %s",
                grant_name(g->grant), shown, resp.status, resp.attempts,
                po_rc_name(rc), e.msg);
    else
        /* No answer to interpret: a status curl saw on the way (a 200
         * whose body was cut off) is not the outcome. */
        po_logf(log, LOG_DEBUG,
                "token request: grant %s to %s: failed after %d "
                "attempt(s): %s: %s",
                grant_name(g->grant), shown, resp.attempts, po_rc_name(rc),
                e.msg);
    if (err != NULL) {
        *err = e;
        err->rc = rc;
    }
    po_oauth_req_free(&req);
    po_http_resp_free(&resp);
    return rc;
}

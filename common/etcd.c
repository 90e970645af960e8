/*
 * etcd.c - the etcd engine of the shared store: etcd's v3 JSON gateway
 * through http.c (libcurl) and json-c.
 *
 * Part one parses answers (pure functions over bytes); part two is the
 * session: endpoints and failover, authentication, and the engine's
 * calls (get, put_if, lock with a watch, unlock).
 */
#define _GNU_SOURCE
#include "etcd.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <syslog.h>

#include "b64.h"
#include "config.h"
#include "http.h"
#include "secret.h"
#include "util.h"

#define JSON_DEPTH 16
#define GRPC_DEADLINE_EXCEEDED 4
#define GRPC_NOT_FOUND 5
#define GRPC_PERMISSION_DENIED 7
#define GRPC_UNAVAILABLE 14
#define GRPC_UNAUTHENTICATED 16
#define BACKOFF_MIN_MS 50u
#define BACKOFF_MAX_MS 1000u
#define DEAD_ROUNDS 2 /* rounds without any answer before giving up */
#define ATTEMPT_MIN_MS 500u
#define ATTEMPT_MAX_MS 2000u
#define SHOW_MAX 256  /* an endpoint URL in messages          */
#define HOLDER_MAX 96 /* the lock holder's name in messages   */

/* ================================================================== */
/* Part one: answers                                                  */

/* Parse n bytes of JSON into *out, which must be an object.  The text is
 * parsed from a copy that is cleansed afterwards, as is the tokener's
 * buffer: an authenticate answer holds a token. */
static po_rc parse_object(const char *body, size_t n, const char *what,
                          json_object **out, po_err *err)
{
    po_rc rc = PO_OK;
    json_tokener *tok = NULL;
    enum json_tokener_error jerr;
    json_object *o = NULL;
    size_t end;

    *out = NULL;
    if (n == 0 || n > PO_ETCD_ANSWER_MAX || n > INT_MAX) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE, "%s: %s", what,
                     n == 0 ? "empty" : "too large");
        goto out;
    }
    if ((tok = json_tokener_new_ex(JSON_DEPTH)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    /* etcd writes strict JSON: no comments */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, body, (int)n);
    jerr = json_tokener_get_error(tok);
    if (o == NULL || jerr != json_tokener_success) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE, "%s: not JSON (%s)", what,
                     jerr == json_tokener_continue
                         ? "truncated"
                         : json_tokener_error_desc(jerr));
        goto out;
    }
    for (end = json_tokener_get_parse_end(tok); end < n; end++)
        if (body[end] == '\0' || strchr(" \t\r\n", body[end]) == NULL) {
            rc = po_fail(err, PO_MALFORMED_RESPONSE,
                         "%s: data after the JSON object", what);
            goto out;
        }
    if (!json_object_is_type(o, json_type_object)) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE, "%s: not a JSON object", what);
        goto out;
    }
    *out = o;
    o = NULL;
out:
    if (o != NULL)
        json_object_put(o);
    if (tok != NULL) {
        if (tok->pb != NULL && tok->pb->buf != NULL && tok->pb->size > 0)
            po_cleanse(tok->pb->buf, (size_t)tok->pb->size);
        json_tokener_free(tok);
    }
    return rc;
}

/* Member key of o, or NULL. */
static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

/* A 64-bit integer member: grpc-gateway writes int64 as a decimal string;
 * a JSON number is accepted too.  Absent: 0. */
static po_rc get_i64(json_object *o, const char *key, const char *where,
                     int64_t *out, po_err *err)
{
    json_object *v = member(o, key);
    const char *s;
    int64_t x = 0;
    int neg = 0, len, i;

    *out = 0;
    if (v == NULL)
        return PO_OK;
    if (json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        return PO_OK;
    }
    if (!json_object_is_type(v, json_type_string))
        goto bad;
    s = json_object_get_string(v);
    len = json_object_get_string_len(v);
    i = 0;
    if (len > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i >= len || len - i > 19)
        goto bad;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || x > (INT64_MAX - (s[i] - '0')) / 10)
            goto bad;
        x = x * 10 + (s[i] - '0');
    }
    *out = neg ? -x : x;
    return PO_OK;
bad:
    return po_fail(err, PO_MALFORMED_RESPONSE,
                   "%s: \"%s\" is not a decimal 64-bit integer", where, key);
}

/* A base64 member, decoded (malloc'd, NUL-terminated); absent: NULL. */
static po_rc get_b64(json_object *o, const char *key, const char *where,
                     char **out, size_t *len, po_err *err)
{
    json_object *v = member(o, key);
    unsigned char *d = NULL;
    po_err e;
    po_rc rc;

    *out = NULL;
    *len = 0;
    if (v == NULL)
        return PO_OK;
    if (!json_object_is_type(v, json_type_string))
        return po_fail(err, PO_MALFORMED_RESPONSE, "%s: \"%s\" is not a string",
                       where, key);
    rc = po_b64_decode(json_object_get_string(v),
                       (size_t)json_object_get_string_len(v), key, &d, len, &e);
    if (rc != PO_OK)
        return po_fail(err, rc == PO_NOMEM ? PO_NOMEM : PO_MALFORMED_RESPONSE,
                       "%s: %s", where, e.msg);
    *out = (char *)d;
    return PO_OK;
}

static void kv_free(po_etcd_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

static po_rc parse_kv(json_object *o, const char *where, po_etcd_kv *kv,
                      po_err *err)
{
    po_rc rc;

    memset(kv, 0, sizeof(*kv));
    if (!json_object_is_type(o, json_type_object))
        return po_fail(err, PO_MALFORMED_RESPONSE, "%s: not an object", where);
    if ((rc = get_b64(o, "key", where, &kv->key, &kv->key_len, err)) ||
        (rc = get_b64(o, "value", where, &kv->value, &kv->value_len, err)) ||
        (rc =
             get_i64(o, "create_revision", where, &kv->create_revision, err)) ||
        (rc = get_i64(o, "mod_revision", where, &kv->mod_revision, err)) ||
        (rc = get_i64(o, "version", where, &kv->version, err)) ||
        (rc = get_i64(o, "lease", where, &kv->lease, err))) {
        kv_free(kv);
        return rc;
    }
    return PO_OK;
}

/* The first kv of a range answer r (an object with "kvs"), if any. */
static po_rc first_kv(json_object *r, const char *where, po_etcd_answer *a,
                      po_err *err)
{
    json_object *kvs = member(r, "kvs");

    if (kvs == NULL)
        return PO_OK;
    if (!json_object_is_type(kvs, json_type_array))
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "%s: \"kvs\" is not an array", where);
    if (json_object_array_length(kvs) == 0)
        return PO_OK;
    a->has_kv = 1;
    return parse_kv(json_object_array_get_idx(kvs, 0), where, &a->kv, err);
}

void po_etcd_answer_free(po_etcd_answer *a)
{
    if (a == NULL)
        return;
    kv_free(&a->kv);
    po_secret_free(a->token);
    memset(a, 0, sizeof(*a));
}

po_rc po_etcd_parse_answer(const char *body, size_t n, po_etcd_answer *out,
                           po_err *err)
{
    po_rc rc = PO_OK;
    json_object *o = NULL, *v, *resps;
    size_t i;

    memset(out, 0, sizeof(*out));
    if ((rc = parse_object(body, n, "etcd answer", &o, err)) != PO_OK)
        goto out;
    if ((rc = get_i64(member(o, "header"), "revision", "etcd answer header",
                      &out->revision, err)) != PO_OK ||
        (rc = get_i64(o, "ID", "etcd answer", &out->lease_id, err)) != PO_OK ||
        (rc = get_i64(o, "TTL", "etcd answer", &out->ttl, err)) != PO_OK ||
        (rc = first_kv(o, "etcd range answer", out, err)) != PO_OK)
        goto out;
    if ((v = member(o, "succeeded")) != NULL) {
        if (!json_object_is_type(v, json_type_boolean)) {
            rc = po_fail(err, PO_MALFORMED_RESPONSE,
                         "etcd txn answer: \"succeeded\" is not a boolean");
            goto out;
        }
        out->succeeded = json_object_get_boolean(v);
    }
    /* A txn: the kv of its first response_range (our failure branch). */
    if ((resps = member(o, "responses")) != NULL) {
        if (!json_object_is_type(resps, json_type_array)) {
            rc = po_fail(err, PO_MALFORMED_RESPONSE,
                         "etcd txn answer: \"responses\" is not an array");
            goto out;
        }
        for (i = 0; i < json_object_array_length(resps) && !out->has_kv; i++) {
            v = member(json_object_array_get_idx(resps, i), "response_range");
            if (v != NULL &&
                (rc = first_kv(v, "etcd txn answer", out, err)) != PO_OK)
                goto out;
        }
    }
    if ((v = member(o, "token")) != NULL) {
        if (!json_object_is_type(v, json_type_string)) {
            rc = po_fail(err, PO_MALFORMED_RESPONSE,
                         "etcd authenticate answer: \"token\" is not a "
                         "string");
            goto out;
        }
        if ((out->token = po_strndup(json_object_get_string(v),
                                     (size_t)json_object_get_string_len(v))) ==
            NULL) {
            rc = po_fail(err, PO_NOMEM, "out of memory");
            goto out;
        }
    }
out:
    if (o != NULL) {
        /* json-c's copy of the token */
        if ((v = member(o, "token")) != NULL &&
            json_object_is_type(v, json_type_string))
            po_cleanse((void *)(uintptr_t)json_object_get_string(v),
                       (size_t)json_object_get_string_len(v));
        json_object_put(o);
    }
    if (rc != PO_OK)
        po_etcd_answer_free(out);
    return rc;
}

/* Copy s (n bytes) into out as printable ASCII ('?' for anything else). */
static void printable(const char *s, size_t n, char *out, size_t size)
{
    size_t i, o = 0;

    if (size == 0)
        return;
    for (i = 0; i < n && o + 1 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[o] = '\0';
}

void po_etcd_parse_error(const char *body, size_t n, int *code, char *msg,
                         size_t msg_size)
{
    json_object *o = NULL, *v;
    po_err e;
    int64_t c = -1;

    *code = -1;
    if (msg_size > 0)
        msg[0] = '\0';
    if (body == NULL || n == 0)
        return;
    if (parse_object(body, n, "etcd error", &o, &e) != PO_OK) {
        /* not etcd's JSON: its first line */
        const char *nl = memchr(body, '\n', n);
        printable(body, nl != NULL ? (size_t)(nl - body) : n, msg, msg_size);
        return;
    }
    /* {"error","message","code"}, or {"error":{"grpc_code","message"}} in
     * a stream */
    if ((v = member(o, "error")) != NULL &&
        json_object_is_type(v, json_type_object)) {
        (void)get_i64(v, "grpc_code", "etcd error", &c, &e);
        if (c == 0)
            (void)get_i64(v, "code", "etcd error", &c, &e);
        v = member(v, "message");
    } else {
        if (member(o, "code") != NULL)
            (void)get_i64(o, "code", "etcd error", &c, &e);
        if ((v = member(o, "message")) == NULL)
            v = member(o, "error");
    }
    if (v != NULL && json_object_is_type(v, json_type_string))
        printable(json_object_get_string(v),
                  (size_t)json_object_get_string_len(v), msg, msg_size);
    *code = c >= 0 && c <= 100 ? (int)c : -1;
    json_object_put(o);
}

void po_etcd_watch_msg_free(po_etcd_watch_msg *m)
{
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < m->nevents; i++)
        free(m->events[i].key);
    free(m->events);
    memset(m, 0, sizeof(*m));
}

static po_rc parse_events(json_object *evs, po_etcd_watch_msg *out, po_err *err)
{
    size_t i, n;
    po_etcd_kv kv;
    json_object *ev, *type;
    po_rc rc;

    if (!json_object_is_type(evs, json_type_array))
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "etcd watch message: \"events\" is not an array");
    n = json_object_array_length(evs);
    if (n == 0)
        return PO_OK;
    if ((out->events = calloc(n, sizeof(*out->events))) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    for (i = 0; i < n; i++) {
        ev = json_object_array_get_idx(evs, i);
        if ((rc = parse_kv(member(ev, "kv"), "etcd watch event", &kv, err)) !=
            PO_OK)
            return rc;
        type = member(ev, "type");
        if (type != NULL &&
            (!json_object_is_type(type, json_type_string) ||
             (strcmp(json_object_get_string(type), "DELETE") != 0 &&
              strcmp(json_object_get_string(type), "PUT") != 0))) {
            kv_free(&kv);
            return po_fail(err, PO_MALFORMED_RESPONSE,
                           "etcd watch event: unknown \"type\"");
        }
        out->events[i].is_delete =
            type != NULL && strcmp(json_object_get_string(type), "DELETE") == 0;
        out->events[i].key = kv.key;
        out->events[i].key_len = kv.key_len;
        out->events[i].mod_revision = kv.mod_revision;
        kv.key = NULL;
        out->nevents = i + 1;
        kv_free(&kv);
    }
    return PO_OK;
}

po_rc po_etcd_parse_watch(const char *msg, size_t n, po_etcd_watch_msg *out,
                          po_err *err)
{
    po_rc rc = PO_OK;
    json_object *o = NULL, *r, *v;
    int code;

    memset(out, 0, sizeof(*out));
    out->error_code = -1;
    if ((rc = parse_object(msg, n, "etcd watch message", &o, err)) != PO_OK)
        goto out;
    if (member(o, "error") != NULL) {
        po_etcd_parse_error(msg, n, &code, out->error, sizeof(out->error));
        out->error_code = code >= 0 ? code : GRPC_UNAVAILABLE;
        goto out;
    }
    if ((r = member(o, "result")) == NULL ||
        !json_object_is_type(r, json_type_object)) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "etcd watch message: no \"result\" object");
        goto out;
    }
    if ((rc = get_i64(member(r, "header"), "revision", "etcd watch message",
                      &out->revision, err)) != PO_OK ||
        (rc = get_i64(r, "compact_revision", "etcd watch message",
                      &out->compact_revision, err)) != PO_OK)
        goto out;
    v = member(r, "created");
    out->created = v != NULL && json_object_get_boolean(v);
    v = member(r, "canceled");
    out->canceled = v != NULL && json_object_get_boolean(v);
    if ((v = member(r, "cancel_reason")) != NULL &&
        json_object_is_type(v, json_type_string))
        printable(json_object_get_string(v),
                  (size_t)json_object_get_string_len(v), out->error,
                  sizeof(out->error));
    if ((v = member(r, "events")) != NULL &&
        (rc = parse_events(v, out, err)) != PO_OK)
        goto out;
out:
    if (o != NULL)
        json_object_put(o);
    if (rc != PO_OK)
        po_etcd_watch_msg_free(out);
    return rc;
}

/* ================================================================== */
/* Part two: the session                                              */

typedef struct etcd {
    const po_profile *p;
    const po_log *log;
    char **ep; /* endpoints, without trailing '/'      */
    size_t nep, cur;
    char *token; /* the auth token (secret), or NULL      */
    int no_auth; /* the cluster has authentication off    */
    po_http_conn conn;
    int64_t lease;  /* our lease, 0 when none                */
    char *lock_key; /* the lock we hold, or NULL             */
} etcd;

/* How a failed call goes on. */
typedef enum next_step { STEP_FAIL, STEP_RETRY, STEP_REAUTH } next_step;

static void shown_endpoint(const etcd *c, char *out, size_t n)
{
    po_http_redact_url(c->ep[c->cur], out, n);
}

/* Move to the next endpoint, dropping the kept connection. */
static void next_endpoint(etcd *c)
{
    po_http_conn_close(&c->conn);
    c->cur = (c->cur + 1) % c->nep;
}

static po_rc parse_endpoints(etcd *c, po_err *err)
{
    const char *s = c->p->shared_cache_endpoints, *w;
    size_t n, count = 0;
    po_err e;
    po_rc rc;

    while (s != NULL && po_next_word(&s, &n) != NULL)
        count++;
    if (count == 0)
        return po_fail(err, PO_CONFIG,
                       "profile %s: shared_cache_endpoints is not set",
                       c->p->name);
    if ((c->ep = calloc(count, sizeof(*c->ep))) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    s = c->p->shared_cache_endpoints;
    while (c->nep < count && (w = po_next_word(&s, &n)) != NULL) {
        while (n > 0 && w[n - 1] == '/')
            n--;
        if ((c->ep[c->nep] = po_strndup(w, n)) == NULL)
            return po_fail(err, PO_NOMEM, "out of memory");
        po_err_clear(&e);
        if ((rc = po_http_check_url(c->ep[c->nep++], c->p->allow_http, &e)) !=
            PO_OK)
            return po_fail(err, PO_CONFIG,
                           "profile %s: shared_cache_endpoints: %s", c->p->name,
                           e.msg);
    }
    return PO_OK;
}

static po_rc etcd_open(const po_profile *p, const po_log *log, void **ctx,
                       po_err *err)
{
    etcd *c;
    unsigned r;
    po_rc rc;

    *ctx = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    c->p = p;
    c->log = log;
    if ((rc = parse_endpoints(c, err)) != PO_OK) {
        size_t i;
        for (i = 0; i < c->nep; i++)
            free(c->ep[i]);
        free(c->ep);
        free(c);
        return rc;
    }
    /* Spread the fleet over the cluster, as etcd's own clients do. */
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
        c->cur = r % c->nep;
    *ctx = c;
    return PO_OK;
}

/* What to do after HTTP status with the error body: retry on another
 * endpoint, authenticate again, or fail with a message that says why. */
static next_step classify(etcd *c, const char *path, long status,
                          const po_buf *body, int reauthed, po_rc *rc,
                          po_err *err)
{
    char shown[SHOW_MAX], msg[256];
    int code;

    shown_endpoint(c, shown, sizeof(shown));
    po_etcd_parse_error(body->data, body->len, &code, msg, sizeof(msg));
    if (status >= 500 || code == GRPC_UNAVAILABLE ||
        code == GRPC_DEADLINE_EXCEEDED) {
        *rc = po_fail(err, PO_SERVER_ERROR, "etcd %s%s: HTTP %ld: %s", shown,
                      path, status, msg[0] ? msg : "unavailable");
        return STEP_RETRY;
    }
    if (code == GRPC_UNAUTHENTICATED && c->p->shared_cache_user != NULL &&
        !reauthed)
        return STEP_REAUTH;
    if (strstr(msg, "CommonName of client") != NULL)
        *rc = po_fail(err, PO_CONFIG,
                      "etcd %s refuses a client certificate with a "
                      "CommonName while its authentication is on (its JSON "
                      "gateway cannot use it): issue "
                      "shared_cache_client_cert without a CN and set "
                      "shared_cache_user",
                      shown);
    else if (strstr(msg, "user name is empty") != NULL)
        *rc = po_fail(err, PO_CONFIG,
                      "etcd %s has authentication on: set shared_cache_user "
                      "and shared_cache_password_file",
                      shown);
    else if (strstr(msg, "authentication failed") != NULL)
        *rc = po_fail(err, PO_CONFIG,
                      "etcd %s: user %s: %s (shared_cache_user, "
                      "shared_cache_password_file)",
                      shown,
                      c->p->shared_cache_user ? c->p->shared_cache_user : "?",
                      msg);
    else if (code == GRPC_PERMISSION_DENIED || status == 403)
        *rc = po_fail(err, PO_CONFIG,
                      "etcd %s%s: permission denied: the role of user %s must "
                      "grant readwrite on the prefix %s",
                      shown, path,
                      c->p->shared_cache_user ? c->p->shared_cache_user
                                              : "(none)",
                      c->p->shared_cache_prefix);
    else if (status == 404 && code < 0)
        *rc = po_fail(err, PO_CONFIG,
                      "etcd %s%s: HTTP 404: not an etcd v3 JSON gateway "
                      "(etcd 3.4 or later)",
                      shown, path);
    else if (code == GRPC_UNAUTHENTICATED)
        *rc = po_fail(err, PO_CONFIG, "etcd %s: %s", shown,
                      msg[0] ? msg : "authentication refused");
    else
        *rc = po_fail(err, PO_SERVER_ERROR, "etcd %s%s: HTTP %ld: %s", shown,
                      path, status, msg[0] ? msg : "error");
    return STEP_FAIL;
}

/* One request to the current endpoint. */
static po_rc send_one(etcd *c, const char *path, const char *body, size_t len,
                      int with_token, uint64_t deadline, const po_http_req *tpl,
                      po_http_resp *resp, po_err *err)
{
    po_http_opts o;
    po_http_req r;
    char *url = NULL;
    po_rc rc;

    if ((url = po_concat3(c->ep[c->cur], path, "")) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    memset(&o, 0, sizeof(o));
    o.ca_file = c->p->shared_cache_ca_file;
    o.cert_file = c->p->shared_cache_client_cert;
    o.key_file = c->p->shared_cache_client_key;
    o.conn = &c->conn;
    o.connect_timeout_ms = c->p->connect_timeout_ms;
    o.deadline_ms = deadline;
    o.retries = 0; /* failover is ours */
    o.allow_http = c->p->allow_http;
    o.log = c->log;
    if (tpl != NULL)
        r = *tpl;
    else
        memset(&r, 0, sizeof(r));
    r.method = "POST";
    r.url = url;
    r.content_type = "application/json";
    r.body = body;
    r.body_len = len;
    r.authorization = with_token ? c->token : NULL;
    rc = po_http_request(&o, &r, resp, err);
    free(url);
    return rc;
}

/* The bound of one attempt: a third of shared_cache_timeout (0.5 s to
 * 2 s), so that a member stuck in an election (a proposal waits for a
 * leader) leaves time to try the others. */
static uint64_t attempt_deadline(const etcd *c, uint64_t deadline)
{
    uint64_t now = po_mono_ms(),
             t = (uint64_t)c->p->shared_cache_timeout_ms / 3;

    if (t < ATTEMPT_MIN_MS)
        t = ATTEMPT_MIN_MS;
    if (t > ATTEMPT_MAX_MS)
        t = ATTEMPT_MAX_MS;
    return now + t < deadline ? now + t : deadline;
}

/* Sleep before another round over the endpoints, within deadline. */
static void backoff(unsigned *ms, uint64_t deadline)
{
    uint64_t now = po_mono_ms(), d = *ms;

    if (now >= deadline)
        return;
    if (d > deadline - now)
        d = deadline - now;
    po_sleep_ms(d);
    if (*ms < BACKOFF_MAX_MS)
        *ms = *ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *ms * 2;
}

static po_rc authenticate(etcd *c, uint64_t deadline, po_err *err);

/* POST body to path, failing over between endpoints until deadline, and
 * parse the answer.  with_token: send the auth token (authenticating
 * first when the profile has a user). */
static po_rc call(etcd *c, const char *path, const char *body, size_t len,
                  int with_token, uint64_t deadline, po_etcd_answer *ans,
                  po_err *err)
{
    po_rc rc = PO_OK;
    po_http_resp resp;
    po_err e, last;
    unsigned wait = BACKOFF_MIN_MS;
    size_t failed = 0;
    int reauthed = 0, answered = 0, dead_rounds = 0, alive = 0;
    uint64_t now = po_mono_ms(),
             soft = now + (uint64_t)c->p->shared_cache_timeout_ms,
             patient = deadline - (uint64_t)c->p->timeout_ms / 4;
    char shown[SHOW_MAX];
    next_step step;

    if (soft > deadline)
        soft = deadline;
    if (patient < soft || patient > deadline)
        patient = soft;
    memset(ans, 0, sizeof(*ans));
    memset(&resp, 0, sizeof(resp));
    po_err_clear(&last);
    for (;;) {
        /* shared_cache_timeout bounds a store that does not answer; one
         * whose members answer, if only "unavailable" or by taking the
         * request and then stalling (a leader election), is worth a
         * longer wait, since a host that gives up renews alone (with
         * single-use refresh tokens that can cost the fleet its token):
         * up to three quarters of the caller's timeout, the last quarter
         * being left for a request of its own. */
        now = po_mono_ms();
        if (now >= deadline || now >= (alive ? patient : soft) ||
            dead_rounds >= DEAD_ROUNDS) {
            if (last.msg[0] == '\0')
                (void)po_fail(&last, PO_TIMEOUT, "etcd %s: no time left", path);
            rc = po_fail(err, last.rc, "%s%s", last.msg,
                         c->nep > 1 && failed >= c->nep
                             ? " (and every other endpoint)"
                             : "");
            goto out;
        }
        if (with_token && c->p->shared_cache_user != NULL && c->token == NULL &&
            !c->no_auth && (rc = authenticate(c, deadline, err)) != PO_OK)
            goto out;
        po_err_clear(&e);
        rc = send_one(c, path, body, len, with_token,
                      attempt_deadline(c, deadline), NULL, &resp, &e);
        if (rc == PO_OK && resp.status == 200) {
            rc = po_etcd_parse_answer(resp.body.data, resp.body.len, ans, &e);
            if (rc != PO_OK) {
                shown_endpoint(c, shown, sizeof(shown));
                rc = po_fail(err, rc, "etcd %s%s: %s", shown, path, e.msg);
            }
            goto out;
        }
        if (rc == PO_OK) {
            step =
                classify(c, path, resp.status, &resp.body, reauthed, &rc, &e);
            if (step == STEP_FAIL) {
                if (err != NULL)
                    *err = e;
                goto out;
            }
            if (step == STEP_REAUTH) {
                reauthed = 1;
                po_secret_clear(&c->token);
                po_http_resp_free(&resp);
                continue;
            }
        } else if (rc != PO_NETWORK && rc != PO_TIMEOUT && rc != PO_TLS &&
                   rc != PO_MALFORMED_RESPONSE) {
            if (err != NULL)
                *err = e;
            goto out;
        }
        /* Unreachable or unavailable: the next endpoint.  Rounds in which
         * every endpoint answered "unavailable" go on until deadline (an
         * election); rounds in which none answered at all end it sooner:
         * the cluster is down, and the caller has a fallback. */
        last = e;
        answered |= rc == PO_OK || resp.connected;
        alive |= rc == PO_OK || resp.connected;
        po_logf(c->log, LOG_INFO, "shared cache: %s; trying the next endpoint",
                e.msg);
        po_http_resp_free(&resp);
        next_endpoint(c);
        if (++failed % c->nep == 0) {
            dead_rounds = answered ? 0 : dead_rounds + 1;
            answered = 0;
            if (dead_rounds < DEAD_ROUNDS)
                backoff(&wait, deadline);
        }
    }
out:
    po_http_resp_free(&resp);
    return rc;
}

static po_rc authenticate(etcd *c, uint64_t deadline, po_err *err)
{
    po_rc rc = PO_OK;
    po_etcd_answer a;
    char label[128], *password = NULL;
    po_buf b;
    po_err e;

    memset(&a, 0, sizeof(a));
    po_buf_init(&b, 64 * 1024, 1);
    (void)snprintf(label, sizeof(label), "profile %s", c->p->name);
    if ((rc = po_secret_file_line(c->p->shared_cache_password_file,
                                  "shared_cache_password_file", label,
                                  &password, err)) != PO_OK)
        goto out;
    if ((rc = po_buf_puts(&b, "{\"name\":")) != PO_OK ||
        (rc = po_json_quote(&b, c->p->shared_cache_user)) != PO_OK ||
        (rc = po_buf_puts(&b, ",\"password\":")) != PO_OK ||
        (rc = po_json_quote(&b, password)) != PO_OK ||
        (rc = po_buf_puts(&b, "}")) != PO_OK) {
        rc = po_fail(err, rc, "etcd authentication: out of memory");
        goto out;
    }
    po_err_clear(&e);
    rc = call(c, "/v3/auth/authenticate", b.data, b.len, 0, deadline, &a, &e);
    if (rc == PO_SERVER_ERROR &&
        strstr(e.msg, "authentication is not enabled") != NULL) {
        /* A cluster without authentication: mutual TLS is all. */
        po_logf(c->log, LOG_DEBUG, "shared cache: %s", e.msg);
        c->no_auth = 1;
        rc = PO_OK;
        goto out;
    }
    if (rc != PO_OK) {
        if (err != NULL)
            *err = e;
        goto out;
    }
    if (a.token == NULL || a.token[0] == '\0') {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "etcd authentication: the answer has no token");
        goto out;
    }
    c->token = a.token;
    a.token = NULL;
out:
    po_etcd_answer_free(&a);
    po_secret_free(password);
    po_buf_free(&b);
    return rc;
}

/* ---- request bodies ---- */

static po_rc put_b64(po_buf *b, const char *s, size_t n)
{
    po_rc rc;

    if ((rc = po_buf_puts(b, "\"")) != PO_OK ||
        (rc = po_b64_append(b, s, n)) != PO_OK)
        return rc;
    return po_buf_puts(b, "\"");
}

/* {"key":K} or {"key":K,"serializable":true} */
static po_rc range_body(po_buf *b, const char *key, int serializable)
{
    po_rc rc;

    if ((rc = po_buf_puts(b, "{\"key\":")) != PO_OK ||
        (rc = put_b64(b, key, strlen(key))) != PO_OK)
        return rc;
    return po_buf_puts(b, serializable ? ",\"serializable\":true}" : "}");
}

/* A txn: compare, then put on success, range the key on failure. */
static po_rc txn_body(po_buf *b, const char *key, const char *compare,
                      const char *value, size_t n, int64_t lease)
{
    po_rc rc;

    if ((rc = po_buf_puts(b, "{\"compare\":[{\"key\":")) != PO_OK ||
        (rc = put_b64(b, key, strlen(key))) != PO_OK ||
        (rc = po_buf_printf(b, ",%s}],\"success\":[{\"request_put\":{\"key\":",
                            compare)) != PO_OK ||
        (rc = put_b64(b, key, strlen(key))) != PO_OK ||
        (rc = po_buf_puts(b, ",\"value\":")) != PO_OK ||
        (rc = put_b64(b, value, n)) != PO_OK)
        return rc;
    if (lease != 0 && (rc = po_buf_printf(b, ",\"lease\":\"%lld\"",
                                          (long long)lease)) != PO_OK)
        return rc;
    if ((rc = po_buf_puts(
             b, "}}],\"failure\":[{\"request_range\":{\"key\":")) != PO_OK ||
        (rc = put_b64(b, key, strlen(key))) != PO_OK)
        return rc;
    return po_buf_puts(b, "}}]}");
}

static po_rc body_rc(po_rc rc, po_err *err)
{
    return po_fail(err, rc, "etcd: request too large or out of memory");
}

/* ---- the engine's calls ---- */

static po_rc etcd_get(void *ctx, const char *key, int consistent,
                      uint64_t deadline, po_buf *value, int64_t *rev,
                      int64_t *now, po_err *err)
{
    etcd *c = ctx;
    po_etcd_answer a;
    po_buf b;
    po_rc rc;

    *rev = 0;
    *now = 0;
    po_buf_init(&b, 64 * 1024, 0);
    if ((rc = range_body(&b, key, !consistent)) != PO_OK) {
        rc = body_rc(rc, err);
        goto out;
    }
    if ((rc = call(c, "/v3/kv/range", b.data, b.len, 1, deadline, &a, err)) !=
        PO_OK)
        goto out;
    *now = a.revision;
    if (a.has_kv && a.kv.value != NULL) {
        *rev = a.kv.mod_revision;
        if ((rc = po_buf_append(value, a.kv.value, a.kv.value_len)) != PO_OK)
            rc = po_fail(err, rc, "etcd: the value of %s is too large", key);
    }
    po_etcd_answer_free(&a);
out:
    po_buf_free(&b);
    return rc;
}

static po_rc etcd_put_if(void *ctx, const char *key, const char *value,
                         size_t n, int64_t expect, uint64_t deadline, int *done,
                         int64_t *rev, po_err *err)
{
    etcd *c = ctx;
    po_etcd_answer a;
    char compare[128];
    po_buf b;
    po_rc rc;

    *done = 0;
    *rev = 0;
    memset(&a, 0, sizeof(a));
    po_buf_init(&b, PO_HTTP_BODY_MAX, 0);
    if (expect == 0)
        (void)snprintf(compare, sizeof(compare),
                       "\"target\":\"VERSION\",\"version\":\"0\","
                       "\"result\":\"EQUAL\"");
    else
        (void)snprintf(compare, sizeof(compare),
                       "\"target\":\"MOD\",\"mod_revision\":\"%lld\","
                       "\"result\":\"EQUAL\"",
                       (long long)expect);
    if ((rc = txn_body(&b, key, compare, value, n, 0)) != PO_OK) {
        rc = body_rc(rc, err);
        goto out;
    }
    if ((rc = call(c, "/v3/kv/txn", b.data, b.len, 1, deadline, &a, err)) !=
        PO_OK)
        goto out;
    if (a.succeeded) {
        *done = 1;
        *rev = a.revision;
    } else if (a.has_kv) {
        *rev = a.kv.mod_revision;
        /* An earlier attempt of ours landed before a failover: the value
         * is ours to the byte (a sealed value's nonce is random). */
        *done = a.kv.value_len == n && memcmp(a.kv.value, value, n) == 0;
    }
out:
    po_etcd_answer_free(&a);
    po_buf_free(&b);
    return rc;
}

/* ---- lock and watch ---- */

typedef enum watch_outcome {
    WATCH_NONE = 0,
    WATCH_CHANGED,  /* the watched entry changed         */
    WATCH_RELEASED, /* the lock was deleted              */
    WATCH_BROKEN,   /* the stream failed: watch again    */
    WATCH_REAUTH    /* the token expired: authenticate   */
} watch_outcome;

typedef struct watch_state {
    const char *lock_key, *entry_key;
    int64_t entry_rev; /* entry events after this count            */
    int64_t lock_rev;  /* lock deletions after this count          */
    int64_t progress;  /* the last event revision seen             */
    watch_outcome outcome;
    po_buf line;
    char why[256];
} watch_state;

static int key_is(const po_etcd_event *ev, const char *key)
{
    return ev->key_len == strlen(key) && memcmp(ev->key, key, ev->key_len) == 0;
}

/* One message of the stream. */
static void watch_message(watch_state *w, const char *msg, size_t n)
{
    po_etcd_watch_msg m;
    po_err e;
    size_t i;

    if (po_etcd_parse_watch(msg, n, &m, &e) != PO_OK) {
        (void)snprintf(w->why, sizeof(w->why), "%.200s", e.msg);
        w->outcome = WATCH_BROKEN;
        return;
    }
    if (m.error_code >= 0) {
        (void)snprintf(w->why, sizeof(w->why), "watch: %.200s", m.error);
        w->outcome =
            m.error_code == GRPC_UNAUTHENTICATED ? WATCH_REAUTH : WATCH_BROKEN;
    } else if (m.compact_revision > 0 || m.canceled) {
        /* History gone: the caller reads the entry again. */
        w->outcome = WATCH_CHANGED;
    }
    for (i = 0; i < m.nevents && w->outcome == WATCH_NONE; i++) {
        const po_etcd_event *ev = &m.events[i];
        if (ev->mod_revision > w->progress)
            w->progress = ev->mod_revision;
        if (key_is(ev, w->entry_key) && ev->mod_revision > w->entry_rev)
            w->outcome = WATCH_CHANGED;
        else if (key_is(ev, w->lock_key) && ev->is_delete &&
                 ev->mod_revision > w->lock_rev)
            w->outcome = WATCH_RELEASED;
    }
    po_etcd_watch_msg_free(&m);
}

/* The stream's bytes: newline-framed messages. */
static int watch_sink(void *ctx, const char *data, size_t n)
{
    watch_state *w = ctx;
    char *nl;
    size_t used;

    if (po_buf_append(&w->line, data, n) != PO_OK) {
        (void)snprintf(w->why, sizeof(w->why), "watch message too large");
        w->outcome = WATCH_BROKEN;
        return 1;
    }
    while (w->outcome == WATCH_NONE && w->line.len > 0 &&
           (nl = memchr(w->line.data, '\n', w->line.len)) != NULL) {
        used = (size_t)(nl - w->line.data) + 1;
        if (used > 1)
            watch_message(w, w->line.data, used - 1);
        memmove(w->line.data, w->line.data + used, w->line.len - used + 1);
        w->line.len -= used;
    }
    return w->outcome != WATCH_NONE;
}

/* The longest common prefix of a and b that ends in '/'. */
static size_t common_dir(const char *a, const char *b)
{
    size_t i, dir = 0;

    for (i = 0; a[i] != '\0' && a[i] == b[i]; i++)
        if (a[i] == '/')
            dir = i + 1;
    return dir;
}

/* Watch the directory of lock_key and entry_key from revision start
 * until an outcome, wait_deadline (PO_LOCKED by the caller) or a broken
 * stream (failover, and the watch resumes where it was). */
static po_rc watch(etcd *c, watch_state *w, int64_t start,
                   uint64_t wait_deadline, po_err *err)
{
    po_rc rc = PO_OK;
    po_http_req tpl;
    po_http_resp resp;
    size_t dir = common_dir(w->lock_key, w->entry_key), failed = 0;
    unsigned wait = BACKOFF_MIN_MS;
    char *end = NULL, shown[SHOW_MAX];
    po_buf b;
    po_err e;

    memset(&resp, 0, sizeof(resp));
    po_buf_init(&b, 64 * 1024, 0);
    po_buf_init(&w->line, PO_ETCD_ANSWER_MAX, 0);
    if (dir == 0) {
        rc = po_fail(err, PO_USAGE, "watch: %s and %s share no directory",
                     w->lock_key, w->entry_key);
        goto out;
    }
    if ((end = po_strndup(w->lock_key, dir)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    end[dir - 1]++; /* the range [dir, dir + 1) */
    w->progress = start - 1;
    for (;;) {
        if (po_mono_ms() >= wait_deadline) {
            rc = po_fail(err, PO_TIMEOUT, "watch: time is up");
            goto out;
        }
        if (c->p->shared_cache_user != NULL && c->token == NULL &&
            !c->no_auth && (rc = authenticate(c, wait_deadline, err)) != PO_OK)
            goto out;
        po_buf_free(&b);
        w->line.len = 0;
        w->outcome = WATCH_NONE;
        if ((rc = po_buf_puts(&b, "{\"create_request\":{\"key\":")) != PO_OK ||
            (rc = put_b64(&b, w->lock_key, dir)) != PO_OK ||
            (rc = po_buf_puts(&b, ",\"range_end\":")) != PO_OK ||
            (rc = put_b64(&b, end, dir)) != PO_OK ||
            (rc = po_buf_printf(&b, ",\"start_revision\":\"%lld\"}}",
                                (long long)(w->progress + 1))) != PO_OK) {
            rc = body_rc(rc, err);
            goto out;
        }
        memset(&tpl, 0, sizeof(tpl));
        tpl.sink = watch_sink;
        tpl.sink_ctx = w;
        po_err_clear(&e);
        rc = send_one(c, "/v3/watch", b.data, b.len, 1, wait_deadline, &tpl,
                      &resp, &e);
        po_http_resp_free(&resp);
        /* The transfer ended: the kept connection is of no more use. */
        po_http_conn_close(&c->conn);
        if (rc == PO_OK && w->outcome == WATCH_CHANGED) {
            goto out;
        }
        if (rc == PO_OK && w->outcome == WATCH_RELEASED)
            goto out;
        if (rc == PO_OK && w->outcome == WATCH_REAUTH) {
            po_secret_clear(&c->token);
            continue;
        }
        if (rc == PO_OK && resp.status != 200 && w->outcome == WATCH_NONE) {
            /* an error answer, left in the line buffer */
            next_step step =
                classify(c, "/v3/watch", resp.status, &w->line, 0, &rc, &e);
            if (step == STEP_FAIL) {
                if (err != NULL)
                    *err = e;
                goto out;
            }
            if (step == STEP_REAUTH) {
                po_secret_clear(&c->token);
                continue;
            }
        }
        if (rc == PO_TIMEOUT && po_mono_ms() >= wait_deadline)
            goto out;
        if (rc != PO_OK && rc != PO_NETWORK && rc != PO_TIMEOUT &&
            rc != PO_TLS) {
            if (err != NULL)
                *err = e;
            goto out;
        }
        shown_endpoint(c, shown, sizeof(shown));
        po_logf(c->log, LOG_INFO,
                "shared cache: etcd %s/v3/watch: %s; watching again from "
                "revision %lld on the next endpoint",
                shown,
                rc != PO_OK         ? e.msg
                : w->why[0] != '\0' ? w->why
                                    : "the stream ended",
                (long long)(w->progress + 1));
        rc = PO_OK;
        next_endpoint(c);
        if (++failed % c->nep == 0)
            backoff(&wait, wait_deadline);
    }
out:
    free(end);
    po_buf_free(&b);
    po_buf_free(&w->line);
    return rc;
}

static po_rc grant(etcd *c, long ttl_s, uint64_t deadline, po_err *err)
{
    po_etcd_answer a;
    char body[64];
    po_rc rc;

    (void)snprintf(body, sizeof(body), "{\"TTL\":%ld}", ttl_s);
    if ((rc = call(c, "/v3/lease/grant", body, strlen(body), 1, deadline, &a,
                   err)) != PO_OK)
        return rc;
    if (a.lease_id == 0)
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "etcd lease grant: the answer has no lease ID");
    else
        c->lease = a.lease_id;
    po_etcd_answer_free(&a);
    return rc;
}

static po_rc revoke(etcd *c, uint64_t deadline, po_err *err)
{
    po_etcd_answer a;
    char body[64];
    po_err e;
    po_rc rc;

    if (c->lease == 0)
        return PO_OK;
    (void)snprintf(body, sizeof(body), "{\"ID\":\"%lld\"}",
                   (long long)c->lease);
    po_err_clear(&e);
    rc = call(c, "/v3/lease/revoke", body, strlen(body), 1, deadline, &a, &e);
    po_etcd_answer_free(&a);
    if (rc != PO_OK && strstr(e.msg, "lease not found") != NULL)
        rc = PO_OK; /* it ran out already */
    if (rc != PO_OK && err != NULL)
        *err = e;
    c->lease = 0;
    po_secret_clear(&c->lock_key);
    return rc;
}

static po_rc etcd_lock(void *ctx, const char *key, const char *holder,
                       long ttl_s, const char *watch_key, int64_t watch_rev,
                       uint64_t wait_deadline, uint64_t deadline, int *got,
                       po_err *err)
{
    etcd *c = ctx;
    po_rc rc = PO_OK;
    po_etcd_answer a;
    watch_state w;
    char who[HOLDER_MAX] = "another host";
    char compare[] = "\"target\":\"CREATE\",\"create_revision\":\"0\","
                     "\"result\":\"EQUAL\"";
    uint64_t start = po_mono_ms();
    po_buf b;
    po_err e;

    *got = 0;
    memset(&a, 0, sizeof(a));
    po_buf_init(&b, 64 * 1024, 0);
    if (c->lock_key != NULL) {
        *got = 1;
        goto out;
    }
    if (c->lease == 0 && (rc = grant(c, ttl_s, deadline, err)) != PO_OK)
        goto out;
    for (;;) {
        po_buf_free(&b);
        po_etcd_answer_free(&a);
        if ((rc = txn_body(&b, key, compare, holder, strlen(holder),
                           c->lease)) != PO_OK) {
            rc = body_rc(rc, err);
            goto out;
        }
        if ((rc = call(c, "/v3/kv/txn", b.data, b.len, 1, deadline, &a, err)) !=
            PO_OK)
            goto out;
        if (a.succeeded || (a.has_kv && a.kv.lease == c->lease)) {
            if ((c->lock_key = po_strdup(key)) == NULL) {
                rc = po_fail(err, PO_NOMEM, "out of memory");
                goto out;
            }
            po_logf(c->log, LOG_DEBUG,
                    "shared cache: took %s (lease %llx, %ld s)", key,
                    (unsigned long long)c->lease, ttl_s);
            *got = 1;
            goto out;
        }
        if (a.has_kv && a.kv.value != NULL)
            printable(a.kv.value, a.kv.value_len, who, sizeof(who));
        po_logf(c->log, LOG_DEBUG,
                "shared cache: %s is held by %s; waiting on a watch from "
                "revision %lld",
                key, who,
                (long long)(watch_rev < a.revision ? watch_rev : a.revision) +
                    1);
        memset(&w, 0, sizeof(w));
        w.lock_key = key;
        w.entry_key = watch_key;
        w.entry_rev = watch_rev;
        w.lock_rev = a.revision;
        po_err_clear(&e);
        rc = watch(c, &w, (watch_rev < a.revision ? watch_rev : a.revision) + 1,
                   wait_deadline, &e);
        if (rc == PO_TIMEOUT) {
            rc = po_fail(err, PO_LOCKED,
                         "the fleet lock %s is held by %s for more than %llu "
                         "ms",
                         key, who, (unsigned long long)(po_mono_ms() - start));
            goto out;
        }
        if (rc != PO_OK) {
            if (err != NULL)
                *err = e;
            goto out;
        }
        if (w.outcome == WATCH_CHANGED)
            goto out; /* *got = 0: read the entry again */
        /* released: try again */
    }
out:
    po_etcd_answer_free(&a);
    po_buf_free(&b);
    return rc;
}

static po_rc etcd_unlock(void *ctx, uint64_t deadline, po_err *err)
{
    etcd *c = ctx;

    return revoke(c, deadline, err);
}

static void etcd_close(void *ctx, uint64_t deadline)
{
    etcd *c = ctx;
    po_err e;
    size_t i;

    if (c == NULL)
        return;
    if (c->lease != 0 && revoke(c, deadline, &e) != PO_OK)
        po_logf(c->log, LOG_DEBUG,
                "shared cache: %s (the lease ends by itself)", e.msg);
    po_http_conn_close(&c->conn);
    for (i = 0; i < c->nep; i++)
        free(c->ep[i]);
    free(c->ep);
    po_secret_free(c->token);
    po_secret_free(c->lock_key);
    free(c);
}

const po_store_engine po_etcd_engine = {
    .name = "etcd",
    .open = etcd_open,
    .close = etcd_close,
    .get = etcd_get,
    .put_if = etcd_put_if,
    .lock = etcd_lock,
    .unlock = etcd_unlock,
};

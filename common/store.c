/*
 * store.c - the shared store of fleet mode: key names, sealing, the
 * fleet's entry and budget record, over an engine (etcd.c) that moves
 * bytes.
 */
#define _GNU_SOURCE
#include "store.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "etcd.h"
#include "oauth.h"
#include "seal.h"
#include "util.h"

#define USAGE_VERSION 1
#define USAGE_MAX 4096  /* bytes of a budget record's JSON           */
#define COUNT_TRIES 100 /* compare-and-swap rounds of one count       */
#define CLOSE_BOUND_MS 2000u

struct po_store {
    const po_profile *p;
    const po_log *log;
    const po_store_engine *eng;
    void *ctx;
    po_seal_key key;
    char *k_token, *k_lock, *k_budget;
    char host[256];
    char holder[320];
    int64_t warned_rev; /* the last ignored value logged (once each) */
};

/* The engines, by the value of shared_cache. */
static const po_store_engine *engine_for(po_shared_cache which)
{
    switch (which) {
    case PO_SHARED_ETCD:
        return &po_etcd_engine;
    case PO_SHARED_NONE:
    default:
        return NULL;
    }
}

int po_store_enabled(const po_profile *p)
{
    return p != NULL && p->shared_cache != PO_SHARED_NONE;
}

po_rc po_store_key(const po_profile *p, const char *what, char **out,
                   po_err *err)
{
    const char *prefix =
        p->shared_cache_prefix != NULL ? p->shared_cache_prefix : "/pam-oauth/";

    if (asprintf(out, "%s%s/%s", prefix, p->name, what) < 0) {
        *out = NULL;
        return po_fail(err, PO_NOMEM, "out of memory");
    }
    return PO_OK;
}

po_rc po_store_open(const po_profile *p, const po_log *log, po_store **out,
                    po_err *err)
{
    po_rc rc = PO_OK;
    po_store *s = NULL;

    *out = NULL;
    if (p == NULL || p->name == NULL || engine_for(p->shared_cache) == NULL) {
        rc = po_fail(err, PO_USAGE, "no shared store is configured");
        goto out;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    s->p = p;
    s->log = log;
    s->eng = engine_for(p->shared_cache);
    if (gethostname(s->host, sizeof(s->host) - 1) != 0 || s->host[0] == '\0')
        (void)snprintf(s->host, sizeof(s->host), "unknown");
    (void)snprintf(s->holder, sizeof(s->holder), "host %s pid %ld", s->host,
                   (long)getpid());
    if ((rc = po_seal_key_load(p->shared_cache_key_file, &s->key, err)) !=
            PO_OK ||
        (rc = po_store_key(p, "token", &s->k_token, err)) != PO_OK ||
        (rc = po_store_key(p, "lock", &s->k_lock, err)) != PO_OK ||
        (rc = po_store_key(p, "budget", &s->k_budget, err)) != PO_OK ||
        (rc = s->eng->open(p, log, &s->ctx, err)) != PO_OK)
        goto out;
    *out = s;
    s = NULL;
out:
    if (s != NULL)
        po_store_close(s, 0);
    return rc;
}

void po_store_close(po_store *s, uint64_t deadline)
{
    uint64_t bound = po_mono_ms() + CLOSE_BOUND_MS;

    if (s == NULL)
        return;
    if (s->ctx != NULL)
        s->eng->close(s->ctx,
                      deadline != 0 && deadline < bound ? deadline : bound);
    po_seal_key_clear(&s->key);
    free(s->k_token);
    free(s->k_lock);
    free(s->k_budget);
    free(s);
}

void po_store_entry_free(po_store_entry *e)
{
    if (e == NULL)
        return;
    po_cache_entry_free(&e->entry);
    memset(e, 0, sizeof(*e));
}

/* Log that the value of key at revision rev is not used (once per value
 * and session). */
static void ignored(po_store *s, const char *key, int64_t rev, const char *why)
{
    if (rev != 0 && rev == s->warned_rev)
        return;
    s->warned_rev = rev;
    po_logf(s->log, LOG_WARNING,
            "shared cache: the value of %s (revision %lld) is ignored: %s; "
            "it will be replaced",
            key, (long long)rev, why);
}

/* Read key and open its sealed value into *plain (a secret).  An absent
 * value leaves *plain NULL; one that does not open is logged and leaves
 * *plain NULL too.  *rev and *now as the engine's get. */
static po_rc read_sealed(po_store *s, const char *key, int consistent,
                         uint64_t deadline, char **plain, size_t *len,
                         int64_t *rev, int64_t *now, po_err *err)
{
    po_rc rc = PO_OK;
    po_buf v;
    po_err e;

    *plain = NULL;
    *len = 0;
    po_buf_init(&v, PO_SEAL_VALUE_MAX, 0);
    if ((rc = s->eng->get(s->ctx, key, consistent, deadline, &v, rev, now,
                          err)) != PO_OK ||
        *rev == 0)
        goto out;
    po_err_clear(&e);
    if ((rc = po_unseal(&s->key, key, s->p->name, v.data != NULL ? v.data : "",
                        v.len, plain, len, &e)) != PO_OK) {
        if (rc != PO_MALFORMED_RESPONSE)
            goto fail;
        ignored(s, key, *rev, e.msg);
        rc = PO_OK;
    }
    goto out;
fail:
    if (err != NULL)
        *err = e;
out:
    po_buf_free(&v);
    return rc;
}

po_rc po_store_get(po_store *s, int consistent, uint64_t deadline, int64_t now,
                   po_store_entry *out, po_err *err)
{
    po_rc rc = PO_OK;
    char *plain = NULL, what[512];
    size_t len = 0;
    po_err e;

    memset(out, 0, sizeof(*out));
    if ((rc = read_sealed(s, s->k_token, consistent, deadline, &plain, &len,
                          &out->revision, &out->seen, err)) != PO_OK ||
        plain == NULL)
        goto out;
    (void)snprintf(what, sizeof(what), "shared cache key %s", s->k_token);
    po_err_clear(&e);
    rc = po_cache_entry_decode(plain, len, s->p, what, now, s->log, &out->entry,
                               &e);
    if (rc == PO_IO) {
        ignored(s, s->k_token, out->revision, e.msg);
        rc = PO_OK;
    } else if (rc != PO_OK) {
        rc = po_fail(err, rc, "shared cache key %s: %s", s->k_token, e.msg);
        goto out;
    }
    /* The budget lives in its own record. */
    out->entry.budget_month[0] = '\0';
    out->entry.budget_count = 0;
out:
    if (plain != NULL) {
        po_cleanse(plain, len);
        free(plain);
    }
    if (rc != PO_OK)
        po_store_entry_free(out);
    return rc;
}

po_rc po_store_lock(po_store *s, int64_t seen, uint64_t wait_deadline,
                    uint64_t deadline, int *got, po_err *err)
{
    uint64_t now = po_mono_ms();
    long ttl;

    *got = 0;
    /* The lease covers everything this host may still do: until deadline
     * (plus a second of rounding); a host that dies frees the lock when
     * it ends. */
    ttl = deadline > now ? (long)((deadline - now + 999) / 1000) + 1 : 2;
    if (ttl < 2)
        ttl = 2;
    return s->eng->lock(s->ctx, s->k_lock, s->holder, ttl, s->k_token, seen,
                        wait_deadline < deadline ? wait_deadline : deadline,
                        deadline, got, err);
}

/* Seal plain (n bytes) for key and write it if key's revision is expect. */
static po_rc write_sealed(po_store *s, const char *key, const char *plain,
                          size_t n, int64_t expect, uint64_t deadline,
                          int *done, int64_t *rev, po_err *err)
{
    po_rc rc;
    po_buf v;

    po_buf_init(&v, PO_SEAL_VALUE_MAX, 0);
    if ((rc = po_seal(&s->key, key, s->p->name, plain, n, &v, err)) == PO_OK)
        rc = s->eng->put_if(s->ctx, key, v.data, v.len, expect, deadline, done,
                            rev, err);
    po_buf_free(&v);
    return rc;
}

po_rc po_store_publish(po_store *s, const po_cache_entry *e, int64_t expect,
                       uint64_t deadline, int *won, int64_t *rev, po_err *err)
{
    po_cache_entry copy = *e;
    po_rc rc;
    po_buf b;

    *won = 0;
    *rev = 0;
    copy.budget_month[0] = '\0';
    copy.budget_count = 0;
    po_buf_init(&b, PO_CACHE_FILE_MAX, 1);
    if ((rc = po_cache_entry_encode(s->p, &copy, &b)) != PO_OK) {
        rc = po_fail(err, rc, "shared cache: the entry is too large");
        goto out;
    }
    /* A rotated refresh token that is not published is lost to the
     * fleet: like every call, this goes on through a leader election
     * until the caller's deadline. */
    rc = write_sealed(s, s->k_token, b.data, b.len, expect, deadline, won, rev,
                      err);
out:
    po_buf_free(&b);
    return rc;
}

/* ---- the budget record ---- */

po_rc po_store_usage_encode(const po_store_usage *u, po_buf *out)
{
    po_rc rc;

    if ((rc =
             po_buf_printf(out, "{\"version\":%d,\"month\":", USAGE_VERSION)) ||
        (rc = po_json_quote(out, u->month)) ||
        (rc = po_buf_printf(out, ",\"count\":%ld,\"host\":", u->count)) ||
        (rc = po_json_quote(out, u->host)) ||
        (rc = po_buf_printf(out, ",\"at\":%lld}", (long long)u->at)))
        return rc;
    return PO_OK;
}

po_rc po_store_usage_decode(const char *text, size_t n, po_store_usage *out,
                            po_err *err)
{
    po_rc rc = PO_OK;
    json_tokener *tok = NULL;
    json_object *o = NULL, *v;
    const char *s;
    int64_t x;

    memset(out, 0, sizeof(*out));
    if (n == 0 || n > USAGE_MAX) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE, "budget record: %s",
                     n == 0 ? "empty" : "too large");
        goto out;
    }
    if ((tok = json_tokener_new_ex(4)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    o = json_tokener_parse_ex(tok, text, (int)n);
    if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != n ||
        !json_object_is_type(o, json_type_object)) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "budget record: not a JSON object");
        goto out;
    }
    if (!json_object_object_get_ex(o, "version", &v) ||
        !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) != USAGE_VERSION) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "budget record: \"version\" is missing or not %d",
                     USAGE_VERSION);
        goto out;
    }
    if (!json_object_object_get_ex(o, "month", &v) ||
        !json_object_is_type(v, json_type_string) ||
        !po_is_month(s = json_object_get_string(v),
                     (size_t)json_object_get_string_len(v))) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "budget record: \"month\" is not YYYY-MM");
        goto out;
    }
    memcpy(out->month, s, 8);
    if (!json_object_object_get_ex(o, "count", &v) ||
        !json_object_is_type(v, json_type_int) ||
        (x = json_object_get_int64(v)) < 0 || x > 1000000000L) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "budget record: \"count\" is not a count");
        goto out;
    }
    out->count = (long)x;
    if (json_object_object_get_ex(o, "host", &v) &&
        json_object_is_type(v, json_type_string)) {
        po_safe_text(json_object_get_string(v), out->host, sizeof(out->host));
    }
    if (json_object_object_get_ex(o, "at", &v) &&
        json_object_is_type(v, json_type_int))
        out->at = json_object_get_int64(v);
out:
    if (o != NULL)
        json_object_put(o);
    if (tok != NULL)
        json_tokener_free(tok);
    if (rc != PO_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* The budget record and its revision; one that does not open or parse
 * is logged and read as empty. */
static po_rc read_usage(po_store *s, uint64_t deadline, po_store_usage *u,
                        int64_t *rev, po_err *err)
{
    po_rc rc;
    char *plain = NULL;
    size_t len = 0;
    int64_t now;
    po_err e;

    memset(u, 0, sizeof(*u));
    if ((rc = read_sealed(s, s->k_budget, 1, deadline, &plain, &len, rev, &now,
                          err)) != PO_OK ||
        plain == NULL)
        return rc;
    po_err_clear(&e);
    if (po_store_usage_decode(plain, len, u, &e) != PO_OK)
        ignored(s, s->k_budget, *rev, e.msg);
    po_cleanse(plain, len);
    free(plain);
    return PO_OK;
}

po_rc po_store_usage_get(po_store *s, uint64_t deadline, po_store_usage *out,
                         po_err *err)
{
    int64_t rev = 0;

    return read_usage(s, deadline, out, &rev, err);
}

po_rc po_store_count(po_store *s, const char *month, long budget, int force,
                     int64_t now, uint64_t deadline, long *count, po_err *err)
{
    po_rc rc = PO_OK;
    po_store_usage u;
    int64_t rev = 0, newrev = 0;
    int done = 0, tries;
    po_buf b;

    *count = 0;
    po_buf_init(&b, USAGE_MAX, 0);
    for (tries = 0; tries < COUNT_TRIES && !done; tries++) {
        if ((rc = read_usage(s, deadline, &u, &rev, err)) != PO_OK)
            goto out;
        if (strcmp(u.month, month) != 0) {
            (void)snprintf(u.month, sizeof(u.month), "%s", month);
            u.count = 0;
        }
        *count = u.count;
        if (budget > 0 && u.count >= budget && !force) {
            rc = PO_BUDGET; /* the caller words the message */
            goto out;
        }
        u.count++;
        (void)snprintf(u.host, sizeof(u.host), "%s", s->host);
        u.at = now;
        po_buf_free(&b);
        if ((rc = po_store_usage_encode(&u, &b)) != PO_OK) {
            rc = po_fail(err, rc, "shared cache: budget record too large");
            goto out;
        }
        if ((rc = write_sealed(s, s->k_budget, b.data, b.len, rev, deadline,
                               &done, &newrev, err)) != PO_OK)
            goto out;
    }
    if (!done) {
        rc = po_fail(err, PO_LOCKED,
                     "shared cache: %s changed under us %d times in a row",
                     s->k_budget, COUNT_TRIES);
        goto out;
    }
    *count = u.count;
out:
    po_buf_free(&b);
    return rc;
}

po_rc po_store_unlock(po_store *s, uint64_t deadline, po_err *err)
{
    return s->eng->unlock(s->ctx, deadline, err);
}

/* flow.c - a valid token for a profile: the cache, the refresh policy, the
 * monthly budget and single-flight (one request per profile at a time,
 * under the cache lock). */
#include "flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "flow_impl.h"
#include "secret.h"
#include "store.h"
#include "util.h"

#define MARGIN_MIN 5 /* s: auto margin bounds */
#define MARGIN_MAX 300
#define BACKOFF_FIRST 10     /* s: no renewal this long after a failure */
#define BACKOFF_MAX 600      /* s: doubling per failure, up to this      */
#define RETRY_AFTER_CAP 3600 /* s: the longest Retry-After honoured      */

_Static_assert(RETRY_AFTER_CAP <= PO_CACHE_RENEWAL_WAIT_MAX &&
                   BACKOFF_MAX <= PO_CACHE_RENEWAL_WAIT_MAX,
               "the cache accepts every wait the flow notes");

/* a + b and a - b, saturated to the range of int64_t: times come from
 * files and servers, so no sum of two of them may overflow. */
static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;

    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
    int64_t r;

    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

long po_flow_margin(const po_profile *p, const po_token *t)
{
    int64_t life, m;

    if (p->refresh_margin >= 0)
        return p->refresh_margin;
    life = sat_sub(t->expires_at, t->obtained_at);
    m = life > 0 ? life / 10 : 0;
    if (m < MARGIN_MIN)
        m = MARGIN_MIN;
    if (m > MARGIN_MAX)
        m = MARGIN_MAX;
    return (long)m;
}

int64_t po_flow_fresh_until(const po_profile *p, const po_token *t)
{
    int64_t until = sat_sub(t->expires_at, (int64_t)po_flow_margin(p, t));
    int64_t by_interval;

    if (p->refresh_interval > 0) {
        by_interval = sat_add(t->obtained_at, (int64_t)p->refresh_interval);
        if (by_interval < until)
            until = by_interval;
    }
    return until;
}

int po_flow_is_fresh(const po_profile *p, const po_token *t, int64_t now)
{
    if (t == NULL || t->access_token == NULL)
        return 0;
    return now < po_flow_fresh_until(p, t);
}

void po_flow_month(int64_t now, char buf[8])
{
    struct tm tm;
    time_t t = (time_t)now;
    unsigned y, m;

    if (gmtime_r(&t, &tm) == NULL) {
        memcpy(buf, "0000-00", 8);
        return;
    }
    y = tm.tm_year + 1900 < 0 ? 0u : (unsigned)(tm.tm_year + 1900) % 10000u;
    m = (unsigned)(tm.tm_mon + 1) % 100u;
    (void)snprintf(buf, 8, "%04u-%02u", y, m);
}

/* The first day of the month after month ("YYYY-MM"), "YYYY-MM-01". */
static void next_month(const char *month, char out[16])
{
    unsigned y = 0, m = 0;

    if (sscanf(month, "%4u-%2u", &y, &m) != 2 || m < 1 || m > 12) {
        (void)snprintf(out, 16, "the 1st");
        return;
    }
    if (++m > 12) {
        m = 1;
        y++;
    }
    (void)snprintf(out, 16, "%04u-%02u-01", y % 10000u, m);
}

/* What to add to "oauth-token login" in messages for p. */
static const char *login_flag(const po_profile *p)
{
    return p->grant == PO_GRANT_DEVICE_CODE ? " --device" : "";
}

static int64_t flow_now(const po_flow *f)
{
    return f->clock != NULL ? f->clock(f->clock_ctx) : (int64_t)time(NULL);
}

static uint64_t flow_deadline(const po_flow *f)
{
    long t = f->profile->timeout_ms > 0 ? f->profile->timeout_ms : 20000;

    return f->deadline_ms != 0 ? f->deadline_ms : po_mono_ms() + (uint64_t)t;
}

static po_rc flow_dir(const po_flow *f, char **out, po_err *err)
{
    if (f->cache_dir == NULL)
        return po_cache_dir(f->profile, out, err);
    if ((*out = po_strdup(f->cache_dir)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    return PO_OK;
}

/* Create the directory and take the lock, waiting at most lock_timeout_ms
 * and never past the deadline; not at all with nowait (PO_LOCKED when
 * another process holds it). */
static po_rc flow_lock(const po_flow *f, const char *dir, uint64_t deadline,
                       int nowait, po_lock *lk, po_err *err)
{
    uint64_t now = po_mono_ms();
    long wait = f->profile->lock_timeout_ms;
    po_rc rc;

    if (now >= deadline || nowait)
        wait = 0;
    else if (wait < 0 || (uint64_t)wait > deadline - now)
        wait = (long)(deadline - now);
    if ((rc = po_cache_ensure_dir(dir, err)) != PO_OK)
        return rc;
    return po_cache_lock(dir, f->profile, wait, lk, err);
}

/* Did a request that ended in rc reach the token endpoint (and so count
 * against the budget)? */
static int reached_server(po_rc rc, const po_err *e)
{
    return rc == PO_OK || (rc >= PO_INVALID_GRANT && rc <= PO_SERVER_ERROR) ||
           e->http_status > 0;
}

/* One token request for grant g, accounted in e's budget counter.  The
 * caller holds the lock.  *counted is set when the counter changed (the
 * entry must then be written, whatever the outcome). */
static po_rc flow_request(const po_flow *f, const po_grant_input *g,
                          unsigned flags, uint64_t deadline, po_cache_entry *e,
                          int *counted, po_token *tok, po_err *err)
{
    po_profile *p = f->profile;
    char month[8], next[16];
    int64_t now = flow_now(f);
    po_err rerr;
    po_rc rc;

    po_err_clear(&rerr);
    po_flow_month(now, month);
    if (strcmp(e->budget_month, month) != 0) {
        memcpy(e->budget_month, month, sizeof(month));
        e->budget_count = 0;
    }
    if (p->budget > 0 && e->budget_count >= p->budget &&
        !(flags & PO_FLOW_IGNORE_BUDGET)) {
        next_month(month, next);
        return po_fail(err, PO_BUDGET,
                       "monthly token budget of %ld requests for profile %s "
                       "is used up (resets on %s); use --force to override",
                       p->budget, p->name, next);
    }
    /* The secret is loaded only now that a request is certain. */
    if ((rc = po_profile_load_secret(p, f->log, err)) != PO_OK)
        return rc;
    rc = po_oauth_token_request(p, g, deadline, f->http_flags, flow_now(f),
                                f->log, tok, &rerr);
    if (reached_server(rc, &rerr)) {
        e->budget_count++;
        *counted = 1;
        if (p->budget > 0 && e->budget_count * 5 > p->budget * 4)
            po_logf(f->log, LOG_WARNING,
                    "profile %s has used %ld of its monthly budget of %ld "
                    "token requests",
                    p->name, e->budget_count, p->budget);
    }
    if (rc == PO_RATE_LIMITED && p->budget > 0)
        /* Wave: "a limit of 1000 tokens per month" for the client. */
        po_err_append(&rerr,
                      "; the identity provider limits this client to a "
                      "number of tokens a month (budget = %ld here): its "
                      "monthly quota for client %s is probably used up "
                      "(%ld requests made from this machine in %s; other "
                      "machines with the same client count too)",
                      p->budget, p->client_id, e->budget_count, month);
    else if (rc == PO_RATE_LIMITED && rerr.retry_after > 86400)
        po_err_append(&rerr, "; a wait of more than a day: a quota of the "
                             "identity provider, not a short rate limit");
    if (rc != PO_OK && err != NULL)
        *err = rerr;
    return rc;
}

/* Write e after a failed request so that the counter (and a dropped
 * refresh token) persists; a write failure is logged, the request's error
 * is what the caller reports. */
static void write_after_failure(const po_flow *f, const char *dir,
                                const po_cache_entry *e)
{
    po_err werr;

    if (po_cache_write(dir, f->profile, e, &werr) != PO_OK)
        po_logf(f->log, LOG_WARNING, "%s", werr.msg);
}

/* Replace e's token with *tok (taken over: tok is left empty); a note of
 * a failed renewal is over. */
static void take_token(po_cache_entry *e, po_token *tok)
{
    po_token_free(&e->token);
    e->token = *tok;
    memset(tok, 0, sizeof(*tok));
    memset(&e->renewal, 0, sizeof(e->renewal));
}

/* Whether t can still be used at now, due for renewal or not. */
static int still_valid(const po_token *t, int64_t now)
{
    return t->access_token != NULL && now < t->expires_at;
}

/* Seconds before the next attempt after the failures-th failure in a row,
 * the server's Retry-After (seconds, 0 if none) considered. */
static int64_t backoff_s(long failures, long retry_after)
{
    int64_t d = BACKOFF_FIRST;
    long i;

    for (i = 1; i < failures && d < BACKOFF_MAX; i++)
        d *= 2;
    if (d > BACKOFF_MAX)
        d = BACKOFF_MAX;
    if (retry_after > d)
        d = retry_after < RETRY_AFTER_CAP ? retry_after : RETRY_AFTER_CAP;
    return d;
}

/* Copy e's still-valid token into out, telling note that it is stale
 * because of r. */
static po_rc serve_stale(const po_cache_entry *e, const po_renewal *r,
                         po_token *out, po_flow_note *note, po_err *err)
{
    po_rc rc = po_token_copy(out, &e->token, err);

    if (rc == PO_OK && note != NULL) {
        note->stale = 1;
        note->renewal = *r;
    }
    return rc;
}

/* Within the backoff of a failed renewal (r): the still-valid token, or the
 * noted failure at once. */
static po_rc held_off(const po_cache_entry *e, int64_t now, po_token *out,
                      po_flow_note *note, po_err *err)
{
    const po_renewal *r = &e->renewal;
    char at[40], after[40];

    if (still_valid(&e->token, now))
        return serve_stale(e, r, out, note, err);
    po_format_utc(r->failed_at, at, sizeof(at));
    po_format_utc(r->after, after, sizeof(after));
    return po_fail(err, r->rc,
                   "%s (at %s; not tried again before %s, unless with "
                   "'oauth-token refresh')",
                   r->msg, at, after);
}

/* A renewal of e's token ended in rc, err saying why.  With backoff, an
 * "unavailable" outcome is noted in e with its backoff; e is written when
 * the note or the budget counter changed.  A token still valid is then
 * served stale (unless the caller insisted on a new one) instead of the
 * failure.  The fleet tier passes no backoff: its hosts wait for each
 * other on the store, and a store failure says nothing about the
 * identity provider. */
static po_rc renewal_failed(const po_flow *f, const char *dir, unsigned flags,
                            po_cache_entry *e, int counted, int backoff,
                            int64_t now, po_rc rc, po_err *err, po_token *out,
                            po_flow_note *note)
{
    po_renewal r;
    int noted = backoff && po_rc_unavailable(rc);

    memset(&r, 0, sizeof(r));
    r.failed_at = now;
    r.after = now;
    r.rc = rc;
    po_safe_text(err != NULL ? err->msg : po_rc_name(rc), r.msg, sizeof(r.msg));
    if (noted) {
        r.failures = e->renewal.failed_at != 0 ? e->renewal.failures + 1 : 1;
        r.after = sat_add(
            now, backoff_s(r.failures, err != NULL ? err->retry_after : 0));
        e->renewal = r;
    } else if (backoff) {
        memset(&e->renewal, 0, sizeof(e->renewal));
    }
    if (noted || counted)
        write_after_failure(f, dir, e);
    if ((po_rc_unavailable(rc) || rc == PO_BUDGET) &&
        !(flags & PO_FLOW_FORCE_NEW) && still_valid(&e->token, now))
        return serve_stale(e, &r, out, note, err);
    return rc;
}

po_rc po_flow_get(const po_flow *f, unsigned flags, po_token *out,
                  po_flow_note *note, po_err *err)
{
    po_rc rc = PO_OK;
    po_profile *p = f->profile;
    po_cache_entry e;
    po_token tok;
    po_grant_input g;
    po_lock lk = {-1};
    po_err refused; /* the refresh grant's outcome */
    char *dir = NULL;
    uint64_t deadline = flow_deadline(f);
    int64_t now;
    int counted = 0, handled = 0;

    memset(out, 0, sizeof(*out));
    memset(&e, 0, sizeof(e));
    memset(&tok, 0, sizeof(tok));
    if (note != NULL)
        memset(note, 0, sizeof(*note));
    po_err_clear(&refused);
    if ((flags & PO_FLOW_CACHE_ONLY) && (flags & PO_FLOW_FORCE_NEW)) {
        rc = po_fail(err, PO_USAGE,
                     "a new token was asked for without "
                     "network access");
        goto out;
    }
    if ((rc = flow_dir(f, &dir, err)) != PO_OK)
        goto out;

    /* 1. Without the lock: a fresh token is returned at once.  Warnings
     * about an unusable file come from the locked read below. */
    if (!(flags & PO_FLOW_FORCE_NEW)) {
        now = flow_now(f);
        rc = po_cache_read_at(
            dir, p, now, (flags & PO_FLOW_CACHE_ONLY) ? f->log : NULL, &e, err);
        if (rc != PO_OK)
            goto out;
        if (po_flow_is_fresh(p, &e.token, now)) {
            rc = po_token_copy(out, &e.token, err);
            goto out;
        }
        if (flags & PO_FLOW_CACHE_ONLY) {
            rc = po_fail(err, PO_NOT_FOUND,
                         "no fresh token cached for profile %s in %s", p->name,
                         dir);
            goto out;
        }
        /* A renewal failed moments ago: nobody waits for the same
         * failure again. */
        if (e.renewal.failed_at != 0 && now < e.renewal.after) {
            rc = held_off(&e, now, out, note, err);
            goto out;
        }
        /* Due but still valid: a process holding the lock is renewing
         * it, and this one is good meanwhile. */
        if (still_valid(&e.token, now)) {
            rc = flow_lock(f, dir, deadline, 1, &lk, err);
            if (rc == PO_LOCKED) {
                if (e.renewal.failed_at != 0)
                    rc = serve_stale(&e, &e.renewal, out, note, err);
                else
                    rc = po_token_copy(out, &e.token, err);
                goto out;
            }
            if (rc != PO_OK)
                goto out;
        }
        po_cache_entry_free(&e);
    }

    /* 2. Under the lock: another process may have refreshed (or failed
     * to) meanwhile. */
    if (lk.fd == -1 && (rc = flow_lock(f, dir, deadline, 0, &lk, err)) != PO_OK)
        goto out;
    now = flow_now(f);
    if ((rc = po_cache_read_at(dir, p, now, f->log, &e, err)) != PO_OK)
        goto out;
    if (!(flags & PO_FLOW_FORCE_NEW)) {
        if (po_flow_is_fresh(p, &e.token, now)) {
            rc = po_token_copy(out, &e.token, err);
            goto out;
        }
        if (e.renewal.failed_at != 0 && now < e.renewal.after) {
            rc = held_off(&e, now, out, note, err);
            goto out;
        }
    }
    /* Fleet mode: the shared store before the token endpoint.  A renewal
     * there that failed for want of the identity provider (or of the
     * store, with shared_cache_fallback = fail) still leaves this host's
     * valid token to serve. */
    if (po_store_enabled(p) &&
        ((rc = po_fleet_get(f, flags, deadline, dir, &e, out, &handled, err)) !=
             PO_OK ||
         handled)) {
        if (rc != PO_OK && (po_rc_unavailable(rc) || rc == PO_BUDGET))
            rc = renewal_failed(f, dir, flags, &e, 0, 0, flow_now(f), rc, err,
                                out, note);
        goto out;
    }

    /* 3. The refresh token first. */
    if (e.token.refresh_token != NULL) {
        memset(&g, 0, sizeof(g));
        g.grant = PO_GRANT_REFRESH_TOKEN;
        g.refresh_token = e.token.refresh_token;
        rc = flow_request(f, &g, flags, deadline, &e, &counted, &tok, &refused);
        if (rc != PO_OK && err != NULL)
            *err = refused;
        if (rc == PO_OK) {
            /* A server that does not rotate it: keep the one we have. */
            if (tok.refresh_token == NULL) {
                tok.refresh_token = e.token.refresh_token;
                e.token.refresh_token = NULL;
            }
            take_token(&e, &tok);
            goto store;
        }
        if (rc != PO_INVALID_GRANT) {
            rc = renewal_failed(f, dir, flags, &e, counted, 1, flow_now(f), rc,
                                &refused, out, note);
            if (rc != PO_OK && err != NULL)
                *err = refused;
            goto out;
        }
        /* Rejected: never send it again. */
        po_secret_clear(&e.token.refresh_token);
        memset(&e.renewal, 0, sizeof(e.renewal));
        if ((rc = po_cache_write(dir, p, &e, err)) != PO_OK)
            goto out;
        if (p->grant != PO_GRANT_CLIENT_CREDENTIALS) {
            /* The server's words say why (expired, revoked, reused). */
            rc = po_fail(err, PO_INVALID_GRANT,
                         "the refresh token was rejected (%s); run "
                         "'oauth-token login%s' (profile %s)",
                         refused.msg, login_flag(p), p->name);
            goto out;
        }
        po_logf(f->log, LOG_INFO,
                "the refresh token was rejected (%s); using the %s grant",
                refused.msg, "client_credentials");
        counted = 0;
    }

    /* The primary grant. */
    if (p->grant != PO_GRANT_CLIENT_CREDENTIALS) {
        if (e.token.access_token == NULL)
            rc = po_fail(err, PO_NOT_FOUND,
                         "no token cached for profile %s; run 'oauth-token "
                         "login%s'",
                         p->name, login_flag(p));
        else
            rc = po_fail(err, PO_NOT_FOUND,
                         "the cached token for profile %s has expired and "
                         "there is no refresh token; run 'oauth-token "
                         "login%s'",
                         p->name, login_flag(p));
        goto out;
    }
    memset(&g, 0, sizeof(g));
    g.grant = PO_GRANT_CLIENT_CREDENTIALS;
    rc = flow_request(f, &g, flags, deadline, &e, &counted, &tok, err);
    if (rc != PO_OK) {
        rc = renewal_failed(f, dir, flags, &e, counted, 1, flow_now(f), rc, err,
                            out, note);
        goto out;
    }
    take_token(&e, &tok);
    free(e.username);
    e.username = NULL;

store:
    /* 4. Written (a rotated refresh token included) before the lock is
     * released. */
    memset(&e.renewal, 0, sizeof(e.renewal));
    if ((rc = po_cache_write(dir, p, &e, err)) != PO_OK ||
        (rc = po_token_copy(out, &e.token, err)) != PO_OK)
        goto out;
out:
    po_cache_unlock(&lk);
    po_token_free(&tok);
    po_cache_entry_free(&e);
    free(dir);
    if (rc != PO_OK)
        po_token_free(out);
    return rc;
}

po_rc po_flow_login(const po_flow *f, const char *username,
                    const char *password, unsigned flags, po_token *out,
                    po_err *err)
{
    po_rc rc = PO_OK;
    po_profile *p = f->profile;
    po_cache_entry e;
    po_token tok;
    po_grant_input g;
    po_lock lk = {-1};
    char *dir = NULL;
    uint64_t deadline = flow_deadline(f);
    int counted = 0, handled = 0;

    memset(out, 0, sizeof(*out));
    memset(&e, 0, sizeof(e));
    memset(&tok, 0, sizeof(tok));
    if (username == NULL || password == NULL || (flags & PO_FLOW_CACHE_ONLY)) {
        rc = po_fail(err, PO_USAGE,
                     "login for profile %s needs a user name "
                     "and a password",
                     p->name);
        goto out;
    }
    if ((rc = flow_dir(f, &dir, err)) != PO_OK ||
        (rc = flow_lock(f, dir, deadline, 0, &lk, err)) != PO_OK ||
        (rc = po_cache_read_at(dir, p, flow_now(f), f->log, &e, err)) != PO_OK)
        goto out;
    memset(&g, 0, sizeof(g));
    g.grant = PO_GRANT_PASSWORD;
    g.username = username;
    g.password = password;
    if (po_store_enabled(p) &&
        ((rc = po_fleet_login(f, &g, flags, deadline, dir, &e, out, &handled,
                              err)) != PO_OK ||
         handled))
        goto out;
    rc = flow_request(f, &g, flags, deadline, &e, &counted, &tok, err);
    if (rc != PO_OK) {
        if (counted)
            write_after_failure(f, dir, &e);
        goto out;
    }
    take_token(&e, &tok);
    if ((rc = po_str_replace(&e.username, username)) != PO_OK) {
        rc = po_fail(err, rc, "out of memory");
        goto out;
    }
    if ((rc = po_cache_write(dir, p, &e, err)) != PO_OK ||
        (rc = po_token_copy(out, &e.token, err)) != PO_OK)
        goto out;
out:
    po_cache_unlock(&lk);
    po_token_free(&tok);
    po_cache_entry_free(&e);
    free(dir);
    if (rc != PO_OK)
        po_token_free(out);
    return rc;
}

/* Whether e's budget (for the month of now) is used up; *next receives
 * the first day of the next month for the message. */
static int budget_spent(const po_profile *p, const po_cache_entry *e,
                        int64_t now, char next[16])
{
    char month[8];

    po_flow_month(now, month);
    next_month(month, next);
    return p->budget > 0 && strcmp(e->budget_month, month) == 0 &&
           e->budget_count >= p->budget;
}

po_rc po_flow_device_login(const po_flow *f, const po_flow_device_ui *ui,
                           unsigned flags, po_token *out, po_device_stats *st,
                           po_err *err)
{
    po_rc rc = PO_OK;
    po_profile *p = f->profile;
    po_cache_entry e;
    po_device_auth da;
    po_device_poll_opts popts;
    po_token tok;
    po_lock lk = {-1};
    char *dir = NULL, month[8], next[16];
    uint64_t deadline = po_device_deadline(p, po_mono_ms());

    memset(out, 0, sizeof(*out));
    memset(&e, 0, sizeof(e));
    memset(&da, 0, sizeof(da));
    memset(&tok, 0, sizeof(tok));
    if (flags & PO_FLOW_CACHE_ONLY) {
        rc = po_fail(err, PO_USAGE, "a device login needs the network");
        goto out;
    }
    if (po_store_enabled(p)) {
        /* the fleet tier publishes what its own grant obtains under the
         * fleet lock; a login that waits minutes for a person does not fit
         * that lock, and a person's token is not the fleet's */
        rc = po_fail(err, PO_CONFIG,
                     "profile %s: a device login is not shared through "
                     "shared_cache; use a profile without it",
                     p->name);
        goto out;
    }
    /* the budget, before the user is asked to do anything */
    if ((rc = flow_dir(f, &dir, err)) != PO_OK ||
        (rc = po_cache_read(dir, p, f->log, &e, err)) != PO_OK)
        goto out;
    if (!(flags & PO_FLOW_IGNORE_BUDGET) &&
        budget_spent(p, &e, flow_now(f), next)) {
        rc = po_fail(err, PO_BUDGET,
                     "monthly token budget of %ld requests for profile %s "
                     "is used up (resets on %s); use --force to override",
                     p->budget, p->name, next);
        goto out;
    }
    po_cache_entry_free(&e);
    if ((rc = po_profile_load_secret(p, f->log, err)) != PO_OK ||
        (rc = po_device_start(p, deadline, f->log, &da, err)) != PO_OK)
        goto out;
    if (ui != NULL && ui->show != NULL &&
        (rc = ui->show(ui->ctx, &da,
                       po_device_seconds_left(&da, deadline, po_mono_ms()),
                       err)) != PO_OK)
        goto out;
    memset(&popts, 0, sizeof(popts));
    popts.deadline_ms = deadline;
    popts.wait = ui != NULL ? ui->wait : NULL;
    popts.wait_ctx = ui != NULL ? ui->ctx : NULL;
    popts.log = f->log;
    if ((rc = po_device_poll(p, &da, &popts, &tok, st, err)) != PO_OK)
        goto out;

    /* Stored under the lock, counted as one request. */
    if ((rc = flow_lock(f, dir,
                        po_mono_ms() + (uint64_t)(p->lock_timeout_ms > 0
                                                      ? p->lock_timeout_ms
                                                      : 0),
                        0, &lk, err)) != PO_OK ||
        (rc = po_cache_read(dir, p, f->log, &e, err)) != PO_OK)
        goto out;
    po_flow_month(flow_now(f), month);
    if (strcmp(e.budget_month, month) != 0) {
        memcpy(e.budget_month, month, sizeof(month));
        e.budget_count = 0;
    }
    e.budget_count++;
    take_token(&e, &tok);
    free(e.username); /* the approver is the identity provider's to say */
    e.username = NULL;
    if ((rc = po_cache_write(dir, p, &e, err)) != PO_OK ||
        (rc = po_token_copy(out, &e.token, err)) != PO_OK)
        goto out;
out:
    po_cache_unlock(&lk);
    po_device_auth_free(&da);
    po_token_free(&tok);
    po_cache_entry_free(&e);
    free(dir);
    if (rc != PO_OK)
        po_token_free(out);
    return rc;
}

po_rc po_flow_invalidate(const po_flow *f, const char *token, int *done,
                         po_err *err)
{
    po_rc rc = PO_OK;
    po_cache_entry e;
    po_lock lk = {-1};
    char *dir = NULL;

    *done = 0;
    memset(&e, 0, sizeof(e));
    if ((rc = flow_dir(f, &dir, err)) != PO_OK ||
        (rc = flow_lock(f, dir, flow_deadline(f), 0, &lk, err)) != PO_OK ||
        (rc = po_cache_read_at(dir, f->profile, flow_now(f), f->log, &e,
                               err)) != PO_OK)
        goto out;
    if (e.token.access_token == NULL) {
        *done = token == NULL;
        goto out;
    }
    if (token != NULL && !po_secret_equal(token, e.token.access_token))
        goto out; /* a newer token: leave it */
    po_secret_clear(&e.token.access_token);
    po_secret_clear(&e.token.id_token);
    if ((rc = po_cache_write(dir, f->profile, &e, err)) != PO_OK)
        goto out;
    *done = 1;
out:
    if (rc == PO_OK && dir != NULL && po_store_enabled(f->profile))
        rc = po_fleet_drop(f, token, 0, err);
    po_cache_unlock(&lk);
    po_cache_entry_free(&e);
    free(dir);
    return rc;
}

po_rc po_flow_erase(const po_flow *f, po_err *err)
{
    po_rc rc = PO_OK;
    po_cache_entry e;
    po_lock lk = {-1};
    char *dir = NULL;

    memset(&e, 0, sizeof(e));
    if ((rc = flow_dir(f, &dir, err)) != PO_OK ||
        (rc = flow_lock(f, dir, flow_deadline(f), 0, &lk, err)) != PO_OK ||
        (rc = po_cache_read_at(dir, f->profile, flow_now(f), f->log, &e,
                               err)) != PO_OK)
        goto out;
    if (e.token.access_token == NULL && e.token.refresh_token == NULL &&
        e.username == NULL)
        goto out; /* nothing to erase */
    po_token_free(&e.token);
    free(e.username);
    e.username = NULL;
    rc = po_cache_write(dir, f->profile, &e, err);
out:
    if (rc == PO_OK && dir != NULL && po_store_enabled(f->profile))
        rc = po_fleet_drop(f, NULL, 1, err);
    po_cache_unlock(&lk);
    po_cache_entry_free(&e);
    free(dir);
    return rc;
}

po_rc po_flow_status(const po_flow *f, po_cache_entry *out, po_err *err)
{
    po_rc rc = PO_OK;
    char *dir = NULL;

    memset(out, 0, sizeof(*out));
    if ((rc = flow_dir(f, &dir, err)) != PO_OK)
        goto out;
    rc = po_cache_read_at(dir, f->profile, flow_now(f), f->log, out, err);
out:
    free(dir);
    return rc;
}

/* ------------------------------------------------------------------ */
/* For fleet.c (flow_impl.h)                                           */

int64_t po_flowi_now(const po_flow *f)
{
    return flow_now(f);
}

uint64_t po_flowi_deadline(const po_flow *f)
{
    return flow_deadline(f);
}

po_rc po_flowi_request(const po_flow *f, const po_grant_input *g,
                       unsigned flags, uint64_t deadline, po_cache_entry *e,
                       int *counted, po_token *tok, po_err *err)
{
    return flow_request(f, g, flags, deadline, e, counted, tok, err);
}

void po_flowi_write_after_failure(const po_flow *f, const char *dir,
                                  const po_cache_entry *e)
{
    write_after_failure(f, dir, e);
}

void po_flowi_take_token(po_cache_entry *e, po_token *tok)
{
    take_token(e, tok);
}

void po_flowi_next_month(const char *month, char out[16])
{
    next_month(month, out);
}

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

long po_flow_margin(const po_profile *p, const po_token *t)
{
    int64_t life, m;

    if (p->refresh_margin >= 0)
        return p->refresh_margin;
    life = t->expires_at - t->obtained_at;
    m = life > 0 ? life / 10 : 0;
    if (m < MARGIN_MIN)
        m = MARGIN_MIN;
    if (m > MARGIN_MAX)
        m = MARGIN_MAX;
    return (long)m;
}

int64_t po_flow_fresh_until(const po_profile *p, const po_token *t)
{
    int64_t until = t->expires_at - (int64_t)po_flow_margin(p, t);

    if (p->refresh_interval > 0 &&
        t->obtained_at + (int64_t)p->refresh_interval < until)
        until = t->obtained_at + (int64_t)p->refresh_interval;
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
 * and never past the deadline. */
static po_rc flow_lock(const po_flow *f, const char *dir, uint64_t deadline,
                       po_lock *lk, po_err *err)
{
    uint64_t now = po_mono_ms();
    long wait = f->profile->lock_timeout_ms;
    po_rc rc;

    if (now >= deadline)
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
    rc =
        po_oauth_token_request(p, g, deadline, flow_now(f), f->log, tok, &rerr);
    if (reached_server(rc, &rerr)) {
        e->budget_count++;
        *counted = 1;
        if (p->budget > 0 && e->budget_count * 5 > p->budget * 4)
            po_logf(f->log, LOG_WARNING,
                    "profile %s has used %ld of its monthly budget of %ld "
                    "token requests",
                    p->name, e->budget_count, p->budget);
    }
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

/* Replace e's token with *tok (taken over: tok is left empty). */
static void take_token(po_cache_entry *e, po_token *tok)
{
    po_token_free(&e->token);
    e->token = *tok;
    memset(tok, 0, sizeof(*tok));
}

po_rc po_flow_get(const po_flow *f, unsigned flags, po_token *out, po_err *err)
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
        rc = po_cache_read(dir, p, (flags & PO_FLOW_CACHE_ONLY) ? f->log : NULL,
                           &e, err);
        if (rc != PO_OK)
            goto out;
        if (po_flow_is_fresh(p, &e.token, flow_now(f))) {
            rc = po_token_copy(out, &e.token, err);
            goto out;
        }
        if (flags & PO_FLOW_CACHE_ONLY) {
            rc = po_fail(err, PO_NOT_FOUND,
                         "no fresh token cached for profile %s in %s", p->name,
                         dir);
            goto out;
        }
        po_cache_entry_free(&e);
    }

    /* 2. Under the lock: another process may have refreshed meanwhile. */
    if ((rc = flow_lock(f, dir, deadline, &lk, err)) != PO_OK ||
        (rc = po_cache_read(dir, p, f->log, &e, err)) != PO_OK)
        goto out;
    if (!(flags & PO_FLOW_FORCE_NEW) &&
        po_flow_is_fresh(p, &e.token, flow_now(f))) {
        rc = po_token_copy(out, &e.token, err);
        goto out;
    }
    /* Fleet mode: the shared store before the token endpoint. */
    if (po_store_enabled(p) &&
        ((rc = po_fleet_get(f, flags, deadline, dir, &e, out, &handled, err)) !=
             PO_OK ||
         handled))
        goto out;

    /* 3. The refresh token first. */
    if (e.token.refresh_token != NULL) {
        memset(&g, 0, sizeof(g));
        g.grant = PO_GRANT_REFRESH_TOKEN;
        g.refresh_token = e.token.refresh_token;
        rc = flow_request(f, &g, flags, deadline, &e, &counted, &tok, err);
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
            if (counted)
                write_after_failure(f, dir, &e);
            goto out;
        }
        /* Rejected: never send it again. */
        po_secret_clear(&e.token.refresh_token);
        if ((rc = po_cache_write(dir, p, &e, err)) != PO_OK)
            goto out;
        if (p->grant != PO_GRANT_CLIENT_CREDENTIALS) {
            rc = po_fail(err, PO_INVALID_GRANT,
                         "the refresh token was rejected; run 'oauth-token "
                         "login%s' (profile %s)",
                         login_flag(p), p->name);
            goto out;
        }
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
        if (counted)
            write_after_failure(f, dir, &e);
        goto out;
    }
    take_token(&e, &tok);
    free(e.username);
    e.username = NULL;

store:
    /* 4. Written (a rotated refresh token included) before the lock is
     * released. */
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
        (rc = flow_lock(f, dir, deadline, &lk, err)) != PO_OK ||
        (rc = po_cache_read(dir, p, f->log, &e, err)) != PO_OK)
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
                        &lk, err)) != PO_OK ||
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
        (rc = flow_lock(f, dir, flow_deadline(f), &lk, err)) != PO_OK ||
        (rc = po_cache_read(dir, f->profile, f->log, &e, err)) != PO_OK)
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
        (rc = flow_lock(f, dir, flow_deadline(f), &lk, err)) != PO_OK ||
        (rc = po_cache_read(dir, f->profile, f->log, &e, err)) != PO_OK)
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
    rc = po_cache_read(dir, f->profile, f->log, out, err);
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

/*
 * fleet.c - the fleet tier of the flow module: the shared store (store.h)
 * behind the local token cache.  po_flow_get, po_flow_login,
 * po_flow_invalidate and po_flow_erase call it under the local lock, once
 * the local entry is missing or due, so at most one process per host talks
 * to the store.  Part of the flow module (flow.h); what it shares with
 * flow.c is in flow_impl.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "flow.h"
#include "flow_impl.h"
#include "secret.h"
#include "store.h"
#include "util.h"

/* A store failure why (rc): with shared_cache_fallback = local, warn
 * (once per call: the caller stops using the store) and return PO_OK so
 * that the caller carries on with the local cache alone; with fail, the
 * error stands. */
static po_rc fleet_failed(const po_flow *f, po_rc rc, const po_err *why,
                          uint64_t deadline, po_err *err)
{
    if (deadline != 0 && po_mono_ms() >= deadline)
        return po_fail(err, PO_TIMEOUT,
                       "the profile's timeout of %ld ms passed in the shared "
                       "cache (%s)",
                       f->profile->timeout_ms, why->msg);
    if (rc == PO_NOMEM || f->profile->shared_cache_fallback == PO_FALLBACK_FAIL)
        return po_fail(err, rc, "shared cache: %s", why->msg);
    po_logf(f->log, LOG_WARNING,
            "shared cache unavailable, using this host's token cache alone "
            "(shared_cache_fallback = local): %s",
            why->msg);
    return PO_OK;
}

/* Whether the fleet's entry se gives this caller what it wants: a fresh
 * token, and with PO_FLOW_FORCE_NEW one published after revision first
 * (the one the caller wanted replaced). */
static int fleet_usable(const po_flow *f, unsigned flags, int64_t first,
                        const po_store_entry *se)
{
    if (!po_flow_is_fresh(f->profile, &se->entry.token, po_flowi_now(f)))
        return 0;
    return !(flags & PO_FLOW_FORCE_NEW) || se->revision > first;
}

/* Take the fleet's token and user into the local entry e (its budget
 * counter stays), write it, and copy the token to out. */
static po_rc fleet_adopt(const po_flow *f, const char *dir, po_cache_entry *e,
                         po_store_entry *se, po_token *out, po_err *err)
{
    po_rc rc;

    po_flowi_take_token(e, &se->entry.token);
    free(e->username);
    e->username = se->entry.username;
    se->entry.username = NULL;
    if ((rc = po_cache_write(dir, f->profile, e, err)) != PO_OK)
        return rc;
    return po_token_copy(out, &e->token, err);
}

/* Hold the fleet lock, with the fleet's entry read under it into se; or,
 * when accept is set, stop early with *usable = 1 when another host has
 * published a token that fleet_usable() accepts.  first is the revision
 * the caller saw first.  Waits at most lock_timeout_ms, never past
 * deadline (then PO_LOCKED); other failures are the store's (why). */
static po_rc fleet_acquire(const po_flow *f, po_store *s, unsigned flags,
                           int accept, int64_t first, uint64_t deadline,
                           po_store_entry *se, int *usable, po_err *why)
{
    uint64_t now = po_mono_ms(), wait = deadline;
    long lt = f->profile->lock_timeout_ms;
    int got = 0;
    po_rc rc;

    *usable = 0;
    if (lt >= 0 && now + (uint64_t)lt < deadline)
        wait = now + (uint64_t)lt;
    for (;;) {
        if ((rc = po_store_lock(s, se->seen, wait, deadline, &got, why)) !=
            PO_OK)
            return rc;
        po_store_entry_free(se);
        if ((rc = po_store_get(s, 1, deadline, po_flowi_now(f), se, why)) !=
            PO_OK)
            return rc;
        if (accept && fleet_usable(f, flags, first, se)) {
            *usable = 1;
            return PO_OK;
        }
        if (got)
            return PO_OK;
        /* It changed, but not into something usable: the lock again. */
    }
}

/* Count one request in the fleet's budget, then make it (flow_request,
 * which keeps this host's own count in e). */
static po_rc fleet_request(const po_flow *f, po_store *s,
                           const po_grant_input *g, unsigned flags,
                           uint64_t deadline, po_cache_entry *e, int *counted,
                           po_token *tok, po_err *err)
{
    po_profile *p = f->profile;
    char month[8], next[16];
    int64_t now = po_flowi_now(f);
    long count = 0;
    po_err why;
    po_rc rc;

    po_err_clear(&why);
    po_flow_month(now, month);
    rc = po_store_count(s, month, p->budget,
                        (flags & PO_FLOW_IGNORE_BUDGET) != 0, now, deadline,
                        &count, &why);
    if (rc == PO_BUDGET) {
        po_flowi_next_month(month, next);
        return po_fail(err, PO_BUDGET,
                       "the fleet's monthly token budget of %ld requests for "
                       "profile %s is used up (%ld in %s across the fleet; "
                       "resets on %s); use --force to override",
                       p->budget, p->name, count, month, next);
    }
    if (rc != PO_OK) {
        if ((rc = fleet_failed(f, rc, &why, deadline, err)) != PO_OK)
            return rc;
    } else if (p->budget > 0 && count * 5 > p->budget * 4) {
        po_logf(f->log, LOG_WARNING,
                "profile %s: the fleet has used %ld of its monthly budget of "
                "%ld token requests",
                p->name, count, p->budget);
    }
    return po_flowi_request(f, g, flags, deadline, e, counted, tok, err);
}

/* Publish se's entry over the revision it was read at.  A failure loses
 * nothing on this host (the caller keeps the token): it is logged. */
static void fleet_publish(const po_flow *f, po_store *s, po_store_entry *se,
                          uint64_t deadline)
{
    int64_t rev = 0;
    int won = 0;
    po_err why;

    po_err_clear(&why);
    if (po_store_publish(s, &se->entry, se->revision, deadline, &won, &rev,
                         &why) != PO_OK)
        po_logf(f->log, LOG_WARNING,
                "shared cache: the new token was not published (%s); this "
                "host keeps it, other hosts will renew theirs",
                why.msg);
    else if (!won)
        po_logf(f->log, LOG_WARNING,
                "shared cache: another host published a token meanwhile (this "
                "host's lease had run out); this host keeps its own, the fleet "
                "keeps the other");
    else
        se->revision = rev;
}

/* A renewal of the fleet's token failed with rc.  When the identity
 * provider was unavailable (or the budget is spent) and the fleet's token
 * is still valid and newer than this host's, take it into e and return 1
 * (e is then to be written), so that the caller serves it stale as it
 * would this host's own: a host that has no copy yet is not the only one
 * to fail during an outage. */
static int keep_fleet_token(const po_flow *f, po_rc rc, po_cache_entry *e,
                            po_store_entry *se)
{
    po_token *ft = &se->entry.token;
    int64_t now = po_flowi_now(f);

    if (!(po_rc_unavailable(rc) || rc == PO_BUDGET) ||
        ft->access_token == NULL || now >= ft->expires_at)
        return 0;
    if (e->token.access_token != NULL && now < e->token.expires_at &&
        e->token.obtained_at >= ft->obtained_at)
        return 0;
    po_flowi_take_token(e, ft);
    free(e->username);
    e->username = se->entry.username;
    se->entry.username = NULL;
    return 1;
}

/* Under the fleet lock: renew the fleet's token se (the refresh token
 * first, then the primary grant), publish it, and take it locally. */
static po_rc fleet_renew(const po_flow *f, po_store *s, unsigned flags,
                         uint64_t deadline, const char *dir, po_cache_entry *e,
                         po_store_entry *se, po_token *out, po_err *err)
{
    po_profile *p = f->profile;
    po_cache_entry *fe = &se->entry;
    po_grant_input g;
    po_token tok;
    int counted = 0;
    po_rc rc = PO_OK;

    memset(&tok, 0, sizeof(tok));
    /* A fleet without a token yet starts from this host's (logged in
     * before fleet mode, or a publish that failed). */
    if (fe->token.access_token == NULL && fe->token.refresh_token == NULL &&
        e->token.refresh_token != NULL) {
        if ((rc = po_token_copy(&fe->token, &e->token, err)) != PO_OK ||
            (rc = po_str_replace(&fe->username, e->username)) != PO_OK)
            goto out;
    }
    if (fe->token.refresh_token != NULL) {
        memset(&g, 0, sizeof(g));
        g.grant = PO_GRANT_REFRESH_TOKEN;
        g.refresh_token = fe->token.refresh_token;
        rc = fleet_request(f, s, &g, flags, deadline, e, &counted, &tok, err);
        if (rc == PO_OK) {
            if (tok.refresh_token == NULL) {
                tok.refresh_token = fe->token.refresh_token;
                fe->token.refresh_token = NULL;
            }
            po_flowi_take_token(fe, &tok);
            goto publish;
        }
        if (rc != PO_INVALID_GRANT) {
            if (keep_fleet_token(f, rc, e, se) || counted)
                po_flowi_write_after_failure(f, dir, e);
            goto out;
        }
        /* Rejected: no host may send it again. */
        po_secret_clear(&fe->token.refresh_token);
        fleet_publish(f, s, se, deadline);
        po_secret_clear(&e->token.refresh_token);
        po_flowi_write_after_failure(f, dir, e);
        if (p->grant != PO_GRANT_CLIENT_CREDENTIALS) {
            rc = po_fail(err, PO_INVALID_GRANT,
                         "the fleet's refresh token was rejected; run "
                         "'oauth-token login' on one host (profile %s)",
                         p->name);
            goto out;
        }
        counted = 0;
    }
    if (p->grant != PO_GRANT_CLIENT_CREDENTIALS) {
        if (fe->token.access_token == NULL)
            rc = po_fail(err, PO_NOT_FOUND,
                         "neither this host nor the fleet has a token for "
                         "profile %s; run 'oauth-token login' on one host",
                         p->name);
        else
            rc = po_fail(err, PO_NOT_FOUND,
                         "the fleet's token for profile %s has expired and "
                         "there is no refresh token; run 'oauth-token login' "
                         "on one host",
                         p->name);
        goto out;
    }
    memset(&g, 0, sizeof(g));
    g.grant = PO_GRANT_CLIENT_CREDENTIALS;
    if ((rc = fleet_request(f, s, &g, flags, deadline, e, &counted, &tok,
                            err)) != PO_OK) {
        if (keep_fleet_token(f, rc, e, se) || counted)
            po_flowi_write_after_failure(f, dir, e);
        goto out;
    }
    po_flowi_take_token(fe, &tok);
    free(fe->username);
    fe->username = NULL;
publish:
    fleet_publish(f, s, se, deadline);
    rc = fleet_adopt(f, dir, e, se, out, err);
out:
    po_token_free(&tok);
    return rc;
}

/* po_flow_get's fleet step: the fleet's token when it is fresh, else the
 * fleet lock and a renewal by this host.  *handled = 0 (with PO_OK) when
 * the store failed and the caller goes on alone. */
po_rc po_fleet_get(const po_flow *f, unsigned flags, uint64_t deadline,
                   const char *dir, po_cache_entry *e, po_token *out,
                   int *handled, po_err *err)
{
    po_store *s = NULL;
    po_store_entry se;
    int usable = 0;
    int64_t first;
    po_err why;
    po_rc rc;

    *handled = 1;
    memset(&se, 0, sizeof(se));
    po_err_clear(&why);
    /* Any member's copy will do to find a fresh token; a forced renewal
     * reads linearizably, since what it wants replaced is the latest. */
    if ((rc = po_store_open(f->profile, f->log, &s, &why)) != PO_OK ||
        (rc = po_store_get(s, (flags & PO_FLOW_FORCE_NEW) != 0, deadline,
                           po_flowi_now(f), &se, &why)) != PO_OK)
        goto failed;
    first = se.revision;
    if (!(flags & PO_FLOW_FORCE_NEW) && fleet_usable(f, flags, first, &se)) {
        rc = fleet_adopt(f, dir, e, &se, out, err);
        goto out;
    }
    rc = fleet_acquire(f, s, flags, 1, first, deadline, &se, &usable, &why);
    if (rc == PO_LOCKED) {
        rc = po_fail(err, rc, "%s", why.msg);
        goto out;
    }
    if (rc != PO_OK)
        goto failed;
    if (usable) {
        rc = fleet_adopt(f, dir, e, &se, out, err);
        goto out;
    }
    rc = fleet_renew(f, s, flags, deadline, dir, e, &se, out, err);
    goto out;
failed:
    if ((rc = fleet_failed(f, rc, &why, deadline, err)) == PO_OK) {
        *handled = 0;
        /* What the fleet had may still help this host on its own: its
         * refresh token, when it is newer than this host's (a single-use
         * one rotated by another host). */
        if (se.entry.token.refresh_token != NULL &&
            (e->token.refresh_token == NULL ||
             se.entry.token.obtained_at > e->token.obtained_at)) {
            po_flowi_take_token(e, &se.entry.token);
            free(e->username);
            e->username = se.entry.username;
            se.entry.username = NULL;
        }
    }
out:
    po_store_close(s, deadline);
    po_store_entry_free(&se);
    return rc;
}

/* po_flow_login's fleet step: the password grant g under the fleet lock,
 * its result published for every host.  *handled as for fleet_get. */
po_rc po_fleet_login(const po_flow *f, const po_grant_input *g, unsigned flags,
                     uint64_t deadline, const char *dir, po_cache_entry *e,
                     po_token *out, int *handled, po_err *err)
{
    po_store *s = NULL;
    po_store_entry se;
    po_token tok;
    int usable = 0, counted = 0;
    po_err why;
    po_rc rc;

    *handled = 1;
    memset(&se, 0, sizeof(se));
    memset(&tok, 0, sizeof(tok));
    po_err_clear(&why);
    if ((rc = po_store_open(f->profile, f->log, &s, &why)) != PO_OK ||
        (rc = po_store_get(s, 0, deadline, po_flowi_now(f), &se, &why)) !=
            PO_OK)
        goto failed;
    rc = fleet_acquire(f, s, flags, 0, 0, deadline, &se, &usable, &why);
    if (rc == PO_LOCKED) {
        rc = po_fail(err, rc, "%s", why.msg);
        goto out;
    }
    if (rc != PO_OK)
        goto failed;
    if ((rc = fleet_request(f, s, g, flags, deadline, e, &counted, &tok,
                            err)) != PO_OK) {
        if (counted)
            po_flowi_write_after_failure(f, dir, e);
        goto out;
    }
    po_flowi_take_token(&se.entry, &tok);
    if ((rc = po_str_replace(&se.entry.username, g->username)) != PO_OK) {
        rc = po_fail(err, rc, "out of memory");
        goto out;
    }
    fleet_publish(f, s, &se, deadline);
    rc = fleet_adopt(f, dir, e, &se, out, err);
    goto out;
failed:
    if ((rc = fleet_failed(f, rc, &why, deadline, err)) == PO_OK)
        *handled = 0;
out:
    po_store_close(s, deadline);
    po_store_entry_free(&se);
    po_token_free(&tok);
    return rc;
}

/* The fleet's side of po_flow_invalidate (all 0: drop the fleet's access
 * token when it is token, or any with token NULL) and po_flow_erase
 * (all 1: drop every token).  Compare-and-swap, again if another host
 * wrote meanwhile. */
po_rc po_fleet_drop(const po_flow *f, const char *token, int all, po_err *err)
{
    po_store *s = NULL;
    po_store_entry se;
    uint64_t deadline = po_flowi_deadline(f);
    int64_t rev = 0;
    int won = 0, tries;
    po_err why;
    po_rc rc;

    memset(&se, 0, sizeof(se));
    po_err_clear(&why);
    if ((rc = po_store_open(f->profile, f->log, &s, &why)) != PO_OK)
        goto failed;
    for (tries = 0; tries < 10 && !won; tries++) {
        po_store_entry_free(&se);
        if ((rc = po_store_get(s, 1, deadline, po_flowi_now(f), &se, &why)) !=
            PO_OK)
            goto failed;
        if (se.entry.token.access_token == NULL &&
            (!all || se.entry.token.refresh_token == NULL))
            goto out; /* nothing to drop */
        if (!all && token != NULL && se.entry.token.access_token != NULL &&
            !po_secret_equal(token, se.entry.token.access_token))
            goto out; /* a newer token: leave it */
        po_secret_clear(&se.entry.token.access_token);
        po_secret_clear(&se.entry.token.id_token);
        if (all) {
            po_token_free(&se.entry.token);
            po_secret_clear(&se.entry.username);
        }
        if ((rc = po_store_publish(s, &se.entry, se.revision, deadline, &won,
                                   &rev, &why)) != PO_OK)
            goto failed;
    }
    goto out;
failed:
    rc = fleet_failed(f, rc, &why, deadline, err);
out:
    po_store_close(s, deadline);
    po_store_entry_free(&se);
    return rc;
}

po_rc po_flow_fleet_status(const po_flow *f, po_cache_entry *entry,
                           po_store_usage *usage, po_err *err)
{
    po_rc rc = PO_OK;
    po_store *s = NULL;
    po_store_entry se;
    uint64_t deadline = po_flowi_deadline(f);

    memset(entry, 0, sizeof(*entry));
    memset(usage, 0, sizeof(*usage));
    memset(&se, 0, sizeof(se));
    if (!po_store_enabled(f->profile)) {
        rc = po_fail(err, PO_USAGE, "profile %s has no shared cache",
                     f->profile->name);
        goto out;
    }
    if ((rc = po_store_open(f->profile, f->log, &s, err)) != PO_OK ||
        (rc = po_store_get(s, 0, deadline, po_flowi_now(f), &se, err)) !=
            PO_OK ||
        (rc = po_store_usage_get(s, deadline, usage, err)) != PO_OK)
        goto out;
    *entry = se.entry;
    memset(&se.entry, 0, sizeof(se.entry));
out:
    po_store_close(s, deadline);
    po_store_entry_free(&se);
    return rc;
}

/*
 * flow.h - getting a valid token: the cache, the refresh policy, the
 * budget and single-flight, once for both frontends.
 *
 * po_flow_get:
 *   1. read the cache without the lock; a fresh token is returned at once
 *      (no lock, no network, libcurl never loaded);
 *   2. otherwise take the profile's lock (bounded by lock_timeout_ms),
 *      read again (another process may have refreshed meanwhile);
 *   3. with a cached refresh token, use the refresh_token grant; when it is
 *      rejected (invalid_grant), drop it and fall back to the primary
 *      grant (client_credentials) or, for the password grant, fail with
 *      PO_INVALID_GRANT telling the user to run `oauth-token login`;
 *   4. write the new entry (rotated refresh token included) atomically,
 *      then release the lock.
 * A token is fresh while now < expires_at - margin and, when
 * refresh_interval is set, now < obtained_at + refresh_interval.
 *
 * A token that is due (not fresh) but still valid (now < expires_at) is
 * served through an outage, as a "stale" token the caller is told about
 * (po_flow_note):
 *   - when its renewal fails with an outcome po_rc_unavailable() names
 *     (network, timeout, TLS, HTTP 5xx, 429, a malformed answer) or
 *     because the monthly budget is used up;
 *   - when another process holds the lock (it is renewing the token): the
 *     caller does not wait for it;
 *   - while an earlier renewal's failure is recent: it is noted in the
 *     cache entry (po_renewal) with the time before which nobody tries
 *     again: 10 s after the first failure, doubling with each one after it
 *     up to 10 min, or the server's Retry-After up to 1 h.  Meanwhile an
 *     expired token fails at once with the noted error instead of every
 *     caller waiting for the same timeout.
 * In fleet mode the same holds when the fleet tier's renewal fails so (or
 * the store does, with shared_cache_fallback = fail), without a backoff
 * note (the hosts wait for each other on the store).  An expired token, a
 * rejection (invalid_grant, invalid_client, ...) and PO_FLOW_FORCE_NEW
 * (which also ignores the backoff) fail as before.  A successful renewal
 * clears the note.
 *
 * Fleet mode (shared_cache, store.h) adds a tier between 2 and 3: the
 * fleet's token when it is fresh; otherwise the fleet lock (waiting on a
 * watch while another host renews, bounded by lock_timeout), the entry
 * read again, and this host renews, counts the request in the fleet's
 * budget first, and publishes the result (compare-and-swap on the
 * revision it read) before taking it locally.  When the store fails,
 * shared_cache_fallback decides: local (a warning, then steps 3 and 4
 * alone) or fail.  login, invalidate and erase act on the fleet's entry
 * too.
 */
#ifndef PO_FLOW_H
#define PO_FLOW_H

#include <stdint.h>
#include "cache.h"
#include "config.h"
#include "device.h"
#include "err.h"
#include "oauth.h"
#include "store.h"

typedef int64_t (*po_clock_fn)(void *ctx); /* wall clock, seconds */

typedef struct po_flow {
    po_profile *profile;   /* client secret loaded only when needed  */
    const char *cache_dir; /* NULL = po_cache_dir(profile)           */
    const po_log *log;
    po_clock_fn clock; /* NULL = time(NULL)                      */
    void *clock_ctx;
    uint64_t deadline_ms; /* absolute po_mono_ms(); 0 = now +
                             profile->timeout_ms                    */
    unsigned http_flags;  /* po_http_opts.flags of its requests:
                             PO_HTTP_LAZY_BIND for oauth-token only  */
} po_flow;

#define PO_FLOW_FORCE_NEW 1u     /* request a new token even if fresh   */
#define PO_FLOW_IGNORE_BUDGET 2u /* --force: request beyond the budget  */
#define PO_FLOW_CACHE_ONLY 4u    /* never request; PO_NOT_FOUND if stale */

/* The refresh margin in seconds that applies to t under p. */
long po_flow_margin(const po_profile *p, const po_token *t);

/* The time from which t is no longer fresh under p: expires_at - margin,
 * or obtained_at + refresh_interval when that is earlier. */
int64_t po_flow_fresh_until(const po_profile *p, const po_token *t);

/* Whether t is fresh at now under p (see above): now < fresh_until. */
int po_flow_is_fresh(const po_profile *p, const po_token *t, int64_t now);

/* What po_flow_get says beside the token. */
typedef struct po_flow_note {
    int stale;          /* out is a cached token that was due for renewal and is
                           still valid, but was not renewed: renewal says why */
    po_renewal renewal; /* rc po_rc_unavailable() or PO_BUDGET, msg, when it
                           failed, and after: no new attempt before it */
} po_flow_note;

/* A fresh token for f->profile, per the steps above, or a stale but still
 * valid one (then note->stale is set; note may be NULL).  On PO_OK out
 * holds a copy the caller frees with po_token_free.  PO_BUDGET when the
 * monthly budget is used up (unless PO_FLOW_IGNORE_BUDGET); a warning is
 * logged when a request takes the count past 80 % of it. */
po_rc po_flow_get(const po_flow *f, unsigned flags, po_token *out,
                  po_flow_note *note, po_err *err);

/* The password grant for username/password, under the lock, and the result
 * stored in the cache (only the tokens: the password is never stored). */
po_rc po_flow_login(const po_flow *f, const char *username,
                    const char *password, unsigned flags, po_token *out,
                    po_err *err);

/* How a device login reaches its user: show is called once, with the
 * device authorization and the seconds the user has to approve, before
 * polling starts (a failure from it ends the login); wait (NULL:
 * po_sleep_ms) waits between polls and may stop the login. */
typedef struct po_flow_device_ui {
    po_rc (*show)(void *ctx, const po_device_auth *da, long seconds,
                  po_err *err);
    po_device_wait_fn wait;
    void *ctx;
} po_flow_device_ui;

/* The device grant (device.h) for f->profile, bounded by device_timeout,
 * and the tokens stored in the cache like po_flow_login's.  The lock is
 * taken only to store the result: a user who takes minutes to approve
 * blocks nobody.  The budget is checked before the device authorization
 * request and counts the login as one request (the polls are not
 * counted).  A profile with a shared_cache (fleet mode) is refused
 * (PO_CONFIG).  st (may be NULL) receives the polling statistics. */
po_rc po_flow_device_login(const po_flow *f, const po_flow_device_ui *ui,
                           unsigned flags, po_token *out, po_device_stats *st,
                           po_err *err);

/* Under the lock: when token is NULL or equals the cached access token,
 * drop the cached access token (keeping the refresh token and the budget)
 * and set *done to 1; otherwise leave the cache alone (a newer token
 * fetched by another process survives) and set *done to 0. */
po_rc po_flow_invalidate(const po_flow *f, const char *token, int *done,
                         po_err *err);

/* Under the lock: drop the cached access and refresh tokens, keeping the
 * budget counter. */
po_rc po_flow_erase(const po_flow *f, po_err *err);

/* Read the entry for status display (no lock, no network). */
po_rc po_flow_status(const po_flow *f, po_cache_entry *out, po_err *err);

/* Fleet mode (store.h): the fleet's entry and budget record, for status
 * display (no lock; read from any member of the store).  PO_USAGE when
 * the profile has no shared store; a store failure is its error. */
po_rc po_flow_fleet_status(const po_flow *f, po_cache_entry *entry,
                           po_store_usage *usage, po_err *err);

/* The current month "YYYY-MM" (UTC) of wall time now, into buf[8]. */
void po_flow_month(int64_t now, char buf[8]);

#endif

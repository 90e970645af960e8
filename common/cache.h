/*
 * cache.h - the per-user token cache, shared by the helper and the PAM
 * module (which writes it at login, as the user).
 *
 * Layout: one directory per user (mode 0700, owned by the user), and in it
 * per profile NAME:
 *     NAME.json  the cached token and the monthly request counter (0600)
 *     NAME.lock  the lock file (0600), held across read -> request -> write
 * The directory is, in order: the profile's cache_dir; $OAUTH_TOKEN_CACHE_DIR
 * (exported by pam_oauth at login); $XDG_RUNTIME_DIR/pam-oauth;
 * $XDG_CACHE_HOME/pam-oauth; ~/.cache/pam-oauth.  The environment is not
 * consulted when AT_SECURE.
 *
 * NAME.json is a JSON object:
 *     {"version":1, "profile":..., "token_url":..., "client_id":...,
 *      "username":..., "access_token":..., "token_type":...,
 *      "refresh_token":..., "scope":..., "id_token":..., "obtained_at":N,
 *      "expires_at":N, "has_expires_in":B, "extra":{...},
 *      "budget_month":"YYYY-MM", "budget_count":N,
 *      "renewal":{"failed_at":N, "after":N, "failures":N,
 *                 "outcome":"network", "message":"..."} or absent,
 *      "stored_by":"pam_oauth" or absent}
 * stored_by is present only on an entry pam_oauth wrote at login
 * (store_token) and the refreshes of it: the session-refresh helper
 * renews only such entries.  The user owns the file, so the marker is the
 * entry's declared purpose, not a proof: the helper also requires the
 * profile's store_token, the caller's own file and the IdP user pam_oauth
 * would log the caller in as (po_flow_renew_session).
 * A token is only used when token_url, client_id and username match the
 * profile (so two profiles never share a token).  Files are written to a
 * temporary file in the same directory, fsync'd, renamed into place and the
 * directory fsync'd, so a reader sees the old or the new state, never a
 * mix.  Every open uses O_NOFOLLOW.
 */
#ifndef PO_CACHE_H
#define PO_CACHE_H

#include <stdint.h>
#include <sys/types.h>
#include "config.h"
#include "err.h"
#include "oauth.h"
#include "proc.h"

#define PO_CACHE_FILE_MAX (256 * 1024)

/* The last renewal of the token that failed because the identity provider
 * was unavailable (flow.h), so that other callers wait before trying
 * again instead of each waiting for the same failure. */
typedef struct po_renewal {
    int64_t failed_at; /* wall clock of the failed attempt; 0: none     */
    int64_t after;     /* no new attempt before this (unless forced)    */
    long failures;     /* consecutive failed attempts                   */
    po_rc rc;          /* the failure's outcome (po_rc_unavailable)     */
    char msg[256];     /* and its message (never holds a secret)        */
} po_renewal;

/* The longest wait a renewal note may ask for, in seconds. */
#define PO_CACHE_RENEWAL_WAIT_MAX 86400

typedef struct po_cache_entry {
    po_token token;       /* token.access_token NULL: none cached       */
    char *username;       /* the user the token was issued to, or NULL  */
    char budget_month[8]; /* "YYYY-MM" (UTC) of budget_count, "" if none */
    long budget_count;    /* token requests that month                   */
    po_renewal renewal;   /* failed_at 0: no failed renewal noted        */
    int from_pam;         /* "stored_by":"pam_oauth": a session token    */
} po_cache_entry;

/* Free an entry's contents (cleansed); e is zeroed. */
void po_cache_entry_free(po_cache_entry *e);

/* The cache directory for the current user and profile p (see above),
 * malloc'd.  Does not create it. */
po_rc po_cache_dir(const po_profile *p, char **out, po_err *err);

/* The cache directory pam_oauth uses for user u being logged in: the
 * profile's cache_dir (with %u -> u->name, %U -> uid, %h -> home
 * expanded), else /run/user/UID/pam-oauth when /run/user/UID exists and is
 * owned by uid, else HOME/.cache/pam-oauth.  malloc'd.  A user name that
 * cannot be one directory name (empty, "." or "..", holding a '/' or a
 * control character) is refused: PO_CONFIG naming the user and why.  The
 * same rule holds for %u in po_cache_dir. */
po_rc po_cache_user_dir(const po_profile *p, const po_user *u, char **out,
                        po_err *err);

/* Create dir (and missing parents, 0700) and check that it is a directory
 * owned by the effective (fs) uid and not writable by group or others.  A
 * symlinked or foreign directory is PO_IO with a message saying why. */
po_rc po_cache_ensure_dir(const char *dir, po_err *err);

/* The earliest obtained_at believed (2000-01-01T00:00:00Z), and how far in
 * the future of the reader's clock it may lie (clocks of machines sharing
 * a home directory, a clock stepped back). */
#define PO_CACHE_TIME_MIN 946684800LL
#define PO_CACHE_CLOCK_SKEW 300

/* Read profile p's entry, judging its times by the wall clock now
 * (seconds).  Returns PO_OK with an empty entry when there is no file; when
 * the file is unusable (corrupt, truncated, a symlink, not owned by the
 * effective uid, group/world-writable, a budget counter out of range) it
 * logs a warning naming the file and the reason and returns PO_OK with an
 * empty entry.  A token whose times are not sane (obtained_at before
 * PO_CACHE_TIME_MIN or more than PO_CACHE_CLOCK_SKEW after now, a lifetime
 * not between 1 s and PO_TOKEN_LIFETIME_MAX) is dropped with such a
 * warning, the budget counter kept; so is a renewal note whose times are
 * not sane (failed_at likewise, after not within
 * PO_CACHE_RENEWAL_WAIT_MAX of it) or whose outcome is not an
 * "unavailable" one.  A token for another
 * token_url/client_id is dropped (the budget counter is kept).  Other
 * failures (out of memory) are errors. */
po_rc po_cache_read_at(const char *dir, const po_profile *p, int64_t now,
                       const po_log *log, po_cache_entry *out, po_err *err);

/* po_cache_read_at with now = time(NULL). */
po_rc po_cache_read(const char *dir, const po_profile *p, const po_log *log,
                    po_cache_entry *out, po_err *err);

/* Decode len bytes of a cache entry's JSON text (need not be
 * NUL-terminated) into *out, as po_cache_read_at does after reading the
 * file at wall time now (the shared store after opening a sealed value):
 * one JSON object with nothing but white space after it, of the layout
 * above, version 1, each member of its type, budget_month "YYYY-MM",
 * budget_count within 0..10^9.  what names the source in messages and log
 * lines (a path, a store key).  A token for another token_url/client_id
 * than p's is dropped with an info line (the budget counter is kept), one
 * whose times are not sane (see po_cache_read_at) with a warning.  PO_IO
 * with the reason in err when the text is not a usable entry (out is then
 * empty; the caller decides what to say), PO_NOMEM.  Every copy json-c
 * made of the text is cleansed.  Pure apart from those lines. */
po_rc po_cache_entry_decode(const char *text, size_t len, const po_profile *p,
                            const char *what, int64_t now, const po_log *log,
                            po_cache_entry *out, po_err *err);

/* Append entry e of profile p as the JSON text of a cache file (one line)
 * to out, which should be a secret po_buf (it holds the tokens):
 * PO_TOO_LARGE at its cap, PO_NOMEM.  extra_json is re-serialised by
 * json-c, or null when it is not a JSON object, so that no text can
 * corrupt the file.  po_cache_entry_decode(po_cache_entry_encode(e)) gives
 * e back, for p's token_url and client_id.  Pure (the shared store seals
 * the same text). */
po_rc po_cache_entry_encode(const po_profile *p, const po_cache_entry *e,
                            po_buf *out);

/* Write profile p's entry atomically (temp file 0600, fsync, rename, fsync
 * of the directory).  username may be NULL. */
po_rc po_cache_write(const char *dir, const po_profile *p,
                     const po_cache_entry *e, po_err *err);

/* Remove profile p's entry file (not the lock).  No file is not an error. */
po_rc po_cache_remove(const char *dir, const po_profile *p, po_err *err);

/* The full path of profile p's entry file, malloc'd. */
po_rc po_cache_file(const char *dir, const po_profile *p, char **out,
                    po_err *err);

/* An exclusive lock on profile p's lock file.  Waits at most timeout_ms;
 * after that PO_LOCKED with a message naming the lock file ("held by
 * another process for more than N ms").  Never returns without the lock on
 * PO_OK.  Once it holds the lock it removes p's temporary files
 * (NAME.json.XXXXXX) left by a writer that was killed. */
typedef struct po_lock {
    int fd;
} po_lock;
po_rc po_cache_lock(const char *dir, const po_profile *p, long timeout_ms,
                    po_lock *out, po_err *err);

/* Release (no-op on an unlocked po_lock with fd -1). */
void po_cache_unlock(po_lock *l);

/* For pam_oauth, running as root: store token t for user u in dir (from
 * po_cache_user_dir).  The work is done by a child that dropped to u for
 * good (po_proc_run_as: the user's groups only, so no group of the host
 * opens a directory the user could not write): it creates the missing
 * directories (0700, the user's), takes the lock, keeps the budget
 * counter, writes atomically.  One directory only is made by root: when
 * p's cache_dir puts %u or %U in a component whose parent is root's alone
 * (it and every directory above it owned by root and not writable by
 * group or others, po_check_dir_chain), the user's own directory there,
 * 0700 and owned by u, since the user could not make it.  Lines the child
 * logs (a corrupt entry replaced) go to log.  username (the IdP user) may
 * be NULL.  Bounded by p's lock_timeout plus 10 s. */
po_rc po_cache_store_as(const po_profile *p, const po_user *u, const char *dir,
                        const po_token *t, const char *username,
                        const po_log *log, po_err *err);

/* Remove profile p's entry in dir as user u, in the same kind of child
 * (close_session).  A missing directory or entry is not an error. */
po_rc po_cache_remove_as(const po_profile *p, const po_user *u, const char *dir,
                         const po_log *log, po_err *err);

#endif

/*
 * store.h - the shared store behind the local token cache (fleet mode):
 * what the flow calls, and the interface a store engine implements.
 *
 * With shared_cache = etcd, the hosts of a fleet keep one token per
 * profile in the store, so that the fleet makes one token request per
 * token lifetime and counts one monthly budget.  Under
 * shared_cache_prefix, per profile NAME:
 *
 *     PREFIX NAME/token   the fleet's token entry: the token cache's JSON
 *                         (cache.h), sealed (seal.h)
 *     PREFIX NAME/lock    the fleet lock: exists while a host renews the
 *                         token, bound to a lease that ends by itself
 *                         when the host dies; its value names the host
 *     PREFIX NAME/budget  the fleet's request counter for the month and
 *                         who made the last request, sealed
 *
 * Every value but the lock's is sealed with AES-256-GCM under
 * shared_cache_key_file, the key name and the profile name being the
 * associated data; a value that does not open is treated as absent and
 * logged (never used).  Writes are compare-and-swap on the revision read
 * (fencing): a host whose lease ran out mid-request can never overwrite
 * a newer entry.
 *
 * Every call is bounded by its deadline (absolute, po_mono_ms()) and, while
 * no member of the store answers, by shared_cache_timeout (a cluster that
 * answers but is electing a leader is waited for, up to the deadline);
 * failing over between shared_cache_endpoints happens inside that bound.
 * Failures are PO_NETWORK, PO_TIMEOUT, PO_TLS, PO_SERVER_ERROR (the store is
 * unavailable or answered an error), PO_CONFIG (the store refused us:
 * credentials, permissions, a gateway that is not etcd's) or
 * PO_MALFORMED_RESPONSE, each with a message that names the endpoint and what
 * happened.
 */
#ifndef PO_STORE_H
#define PO_STORE_H

#include <stdint.h>
#include "cache.h"
#include "config.h"
#include "err.h"
#include "secret.h"

/* ------------------------------------------------------------------ */
/* What the flow calls                                                 */

typedef struct po_store po_store;

/* Whether profile p keeps its tokens in a shared store (shared_cache is
 * not none).  No allocation, no library loaded. */
int po_store_enabled(const po_profile *p);

/* Open the store of profile p (which must outlive the store): read the
 * sealing key (libcrypto is loaded here) and the store's credentials;
 * nothing is sent yet.  PO_CONFIG for a missing or bad key file or
 * setting. */
po_rc po_store_open(const po_profile *p, const po_log *log, po_store **out,
                    po_err *err);

/* Release the fleet lock if it is still held (bounded by deadline; if
 * the store is unreachable the lease ends by itself) and free s.  NULL is
 * allowed. */
void po_store_close(po_store *s, uint64_t deadline);

/* The fleet's entry. */
typedef struct po_store_entry {
    po_cache_entry entry; /* the token and user; budget fields unused   */
    int64_t revision;     /* the value's revision (the fence); 0: none  */
    int64_t seen;         /* the store's revision when it was read      */
} po_store_entry;

void po_store_entry_free(po_store_entry *e);

/* Read the fleet's entry.  An absent value, or one that does not open or
 * parse (logged as a warning naming the key and the reason) is PO_OK with
 * no token, its revision kept so that a publish can replace it.  With
 * consistent 0 any member's copy will do (it may be a little behind);
 * with 1 the read is linearizable.  The entry's times are judged by the
 * wall clock now (po_cache_read_at: a token obtained in the future or
 * with an impossible lifetime is not used). */
po_rc po_store_get(po_store *s, int consistent, uint64_t deadline, int64_t now,
                   po_store_entry *out, po_err *err);

/* Take the fleet lock, or wait for the fleet entry to change.  *got = 1:
 * this host holds the lock (a lease covering deadline).  *got = 0: the
 * entry changed after revision seen (another host published; read it
 * again).  While another host holds the lock this waits on a watch (no
 * polling), until wait_deadline: then PO_LOCKED naming the holder. */
po_rc po_store_lock(po_store *s, int64_t seen, uint64_t wait_deadline,
                    uint64_t deadline, int *got, po_err *err);

/* Publish e as the fleet's entry if the entry's revision is still expect
 * (0: no value).  *won = 0 when another value was published meanwhile
 * (nothing written); *rev receives the new revision when written. */
po_rc po_store_publish(po_store *s, const po_cache_entry *e, int64_t expect,
                       uint64_t deadline, int *won, int64_t *rev, po_err *err);

/* Count one token request in the fleet's budget for month ("YYYY-MM"),
 * before it is sent: atomically (compare-and-swap), with this host's name
 * and the time now as the last request.  When budget > 0 and the month's
 * count has reached it, nothing is counted and the result is PO_BUDGET
 * (unless force).  *count receives the count including this request. */
po_rc po_store_count(po_store *s, const char *month, long budget, int force,
                     int64_t now, uint64_t deadline, long *count, po_err *err);

/* Release the fleet lock (no-op when not held). */
po_rc po_store_unlock(po_store *s, uint64_t deadline, po_err *err);

/* The fleet's budget record. */
typedef struct po_store_usage {
    char month[8];  /* "YYYY-MM", "" when none                      */
    long count;     /* requests in month                            */
    char host[256]; /* who made the last request ("" when unknown)  */
    int64_t at;     /* when (wall clock, s)                         */
} po_store_usage;

/* Read the fleet's budget record (for status); none is PO_OK with an
 * empty record. */
po_rc po_store_usage_get(po_store *s, uint64_t deadline, po_store_usage *out,
                         po_err *err);

/* Pure, for tests and fuzzing: the budget record as JSON, and back.
 * PO_MALFORMED_RESPONSE naming what is wrong. */
po_rc po_store_usage_encode(const po_store_usage *u, po_buf *out);
po_rc po_store_usage_decode(const char *text, size_t n, po_store_usage *out,
                            po_err *err);

/* The name of profile p's key what ("token", "lock", "budget") in the
 * store, malloc'd. */
po_rc po_store_key(const po_profile *p, const char *what, char **out,
                   po_err *err);

/* ------------------------------------------------------------------ */
/* What an engine implements                                           */

/* An engine moves bytes; the store module above it names keys, seals,
 * encodes and counts.  Every call is bounded by deadline, and by
 * shared_cache_timeout while the store does not answer at all. */
typedef struct po_store_engine {
    const char *name; /* the shared_cache value */
    /* Set up a session for p (no request yet). */
    po_rc (*open)(const po_profile *p, const po_log *log, void **ctx,
                  po_err *err);
    /* Release the lock if held (best effort, within deadline), free. */
    void (*close)(void *ctx, uint64_t deadline);
    /* key's value into value (*rev its revision, 0 when absent; *now the
     * store's revision at the read).  consistent: linearizable. */
    po_rc (*get)(void *ctx, const char *key, int consistent, uint64_t deadline,
                 po_buf *value, int64_t *rev, int64_t *now, po_err *err);
    /* Write value at key if key's revision is expect (0: absent): *done
     * 1 and *rev the new revision; else *done 0 and *rev the current one.
     * A retried write that had landed counts as done. */
    po_rc (*put_if)(void *ctx, const char *key, const char *value, size_t n,
                    int64_t expect, uint64_t deadline, int *done, int64_t *rev,
                    po_err *err);
    /* Take the lock key (value holder) under a lease of ttl_s seconds:
     * *got 1.  Else wait until it is released (then try again) or
     * watch_key changes after revision watch_rev (*got 0), until
     * wait_deadline: PO_LOCKED naming the holder. */
    po_rc (*lock)(void *ctx, const char *key, const char *holder, long ttl_s,
                  const char *watch_key, int64_t watch_rev,
                  uint64_t wait_deadline, uint64_t deadline, int *got,
                  po_err *err);
    /* Release the lock (no-op when not held). */
    po_rc (*unlock)(void *ctx, uint64_t deadline, po_err *err);
} po_store_engine;

#endif

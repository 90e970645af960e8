/*
 * etcd.h - the etcd engine of the shared store (store.h), over etcd's v3
 * JSON gateway (etcd 3.4 and later: POST /v3/kv/range, /v3/kv/txn,
 * /v3/lease/grant, /v3/lease/revoke, /v3/watch, /v3/auth/authenticate),
 * with the http module's libcurl and json-c: no etcd library.
 *
 * The session: the endpoints of shared_cache_endpoints, tried in turn on
 * a connection failure, a timeout or an "unavailable" answer (no leader,
 * leader changed), with one kept connection to the current one; mutual
 * TLS with shared_cache_client_cert and shared_cache_client_key; an etcd
 * user (shared_cache_user, password from shared_cache_password_file)
 * authenticated once per session, again if its token expires.  Keys and
 * values travel base64-encoded in JSON; 64-bit numbers as decimal
 * strings.
 *
 * The lock is etcd's usual recipe (clientv3/concurrency): a key bound to a
 * lease, created with a transaction whose compare is "the key does not
 * exist"; while another host holds it, waiters watch the profile's keys
 * (the lock's deletion, or a new entry) from the revision they read, so
 * that nothing between the read and the watch is missed.  Unlocking
 * revokes the lease.  A write that may have landed before a failover is
 * recognised on retry: a transaction whose compare failed returns the
 * current value, and the value (or the lock's lease) is ours.
 *
 * The answer parsers are pure functions over bytes, for tests and fuzzing.
 */
#ifndef PO_ETCD_H
#define PO_ETCD_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "store.h"

extern const po_store_engine po_etcd_engine;

#define PO_ETCD_ANSWER_MAX (1024 * 1024) /* bytes of one answer or message */

/* A key-value pair of an answer: key and value decoded from base64
 * (malloc'd, NUL-terminated), NULL when absent. */
typedef struct po_etcd_kv {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int64_t create_revision, mod_revision, version, lease;
} po_etcd_kv;

/* What a successful (HTTP 200) answer says; members absent from the
 * answer are 0 / NULL. */
typedef struct po_etcd_answer {
    int64_t revision; /* header.revision: the store's revision        */
    int succeeded;    /* txn: whether the compare held                */
    int has_kv;       /* range, or a txn's first response_range: a kv */
    po_etcd_kv kv;    /* ... its first kv                             */
    int64_t lease_id; /* lease grant: ID                              */
    int64_t ttl;      /* lease grant: TTL                             */
    char *token;      /* authenticate: the token (a secret)           */
} po_etcd_answer;

/* Parse the n bytes of an HTTP 200 answer.  PO_MALFORMED_RESPONSE naming
 * the member that is wrong (not JSON, not an object, a number that is not
 * a decimal int64, bad base64).  Free *out with po_etcd_answer_free. */
po_rc po_etcd_parse_answer(const char *body, size_t n, po_etcd_answer *out,
                           po_err *err);

void po_etcd_answer_free(po_etcd_answer *a);

/* An error answer: the gRPC code (-1 when none) and message (printable,
 * truncated to fit msg; the body's start when it is not etcd's JSON). */
void po_etcd_parse_error(const char *body, size_t n, int *code, char *msg,
                         size_t msg_size);

/* One event of a watch message. */
typedef struct po_etcd_event {
    int is_delete;
    char *key; /* decoded, malloc'd */
    size_t key_len;
    int64_t mod_revision;
} po_etcd_event;

/* One message of a watch stream ({"result":{...}} or {"error":{...}}). */
typedef struct po_etcd_watch_msg {
    int created, canceled;
    int64_t revision;         /* header.revision                       */
    int64_t compact_revision; /* > 0: the start revision was compacted */
    int error_code;           /* an {"error"} message: its code, or -1  */
    char error[256];          /* ... its message, or the cancel reason  */
    po_etcd_event *events;
    size_t nevents;
} po_etcd_watch_msg;

/* Parse one watch message (n bytes, without the newline that frames it).
 * PO_MALFORMED_RESPONSE as for po_etcd_parse_answer.  Free *out with
 * po_etcd_watch_msg_free. */
po_rc po_etcd_parse_watch(const char *msg, size_t n, po_etcd_watch_msg *out,
                          po_err *err);

void po_etcd_watch_msg_free(po_etcd_watch_msg *m);

#endif

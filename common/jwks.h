/*
 * jwks.h - JSON Web Keys (RFC 7517, 7518 section 6, 8037): building
 * OpenSSL public keys from a JWK Set, and getting an issuer's key set over
 * HTTPS with OpenID Connect discovery, a memory cache and a disk cache.
 *
 * Where keys come from: the profile's jwks_uri, or else
 * ISSUER/.well-known/openid-configuration, whose "issuer" must equal the
 * configured issuer exactly and whose "jwks_uri" must pass the same URL
 * rules as the token endpoint.  Every request goes through
 * po_http_request (GET), so TLS, timeouts and retries are those of token
 * requests.
 *
 * Caching:
 *   - in memory, in a po_jwks_cache the caller owns (one per call context:
 *     a PAM handle, a helper run; nothing is global);
 *   - on disk, one file per key source in a directory the caller names
 *     (the helper: the user's cache directory; pam_oauth: the root-owned
 *     PO_JWKS_SYSTEM_DIR), "jwks-HASH.json", HASH = the first 32 hex digits
 *     of SHA-256(issuer "\n" jwks_uri).  Written atomically (temporary file
 *     0600 with O_EXCL|O_NOFOLLOW, fsync, rename, fsync of the directory);
 *     a file that is a symlink, not regular, not owned by the effective uid
 *     or writable by group/others is ignored with a warning, and so is one
 *     whose issuer/jwks_uri differ from the source's.
 *   - lifetime: Cache-Control max-age, bounded to [PO_JWKS_TTL_MIN,
 *     PO_JWKS_TTL_MAX]; PO_JWKS_TTL_DEFAULT when absent; no-store/no-cache
 *     count as the minimum (keys must be kept a little, or every login
 *     would fetch them).
 *   - an unknown kid makes one more fetch (key rotation), at most once per
 *     PO_JWKS_REFETCH_MIN seconds per source; the time of the last such
 *     fetch is recorded in the disk file, under a lock (jwks-HASH.lock), so
 *     that a flood of tokens with made-up kids, in one process or many,
 *     cannot make us hammer the provider.
 */
#ifndef PO_JWKS_H
#define PO_JWKS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct evp_pkey_st;
struct json_object;

#define PO_JWKS_SYSTEM_DIR "/var/cache/pam-oauth"
#define PO_JWKS_TTL_MIN 60L           /* s */
#define PO_JWKS_TTL_MAX 86400L        /* s */
#define PO_JWKS_TTL_DEFAULT 3600L     /* s */
#define PO_JWKS_REFETCH_MIN 60L       /* s between unknown-kid fetches    */
#define PO_JWKS_KEYS_MAX 64           /* keys kept from one set           */
#define PO_JWKS_BODY_MAX (128 * 1024) /* bytes of a key set document      */
#define PO_JWKS_FILE_MAX (512 * 1024) /* bytes of a disk cache file       */
#define PO_JWKS_LOCK_MS 5000L         /* bound on waiting for the lock    */
#define PO_RSA_BITS_MIN 2048          /* smaller RSA keys are skipped     */

/* One public key. */
typedef struct po_jwk {
    char *kid;                /* NULL when absent                     */
    char *kty;                /* "RSA", "EC", "OKP"                   */
    char *crv;                /* "P-256", "P-384", "Ed25519"; or NULL */
    char *alg;                /* the JWK's own alg, or NULL           */
    char *use;                /* NULL when absent                     */
    struct evp_pkey_st *pkey; /* the public key                       */
} po_jwk;

/* A key set. */
typedef struct po_jwks {
    po_jwk *keys;
    size_t n;
} po_jwks;

/* Build one key from a JWK object: RSA (n, e; at least PO_RSA_BITS_MIN
 * bits), EC (crv P-256/P-384, x, y of the curve's size, point checked) or
 * OKP (crv Ed25519, x of 32 bytes), with OSSL_PARAM and EVP_PKEY_fromdata.
 * Private members are ignored.  PO_NOT_FOUND for a key type this module
 * does not use (oct, Ed448, P-521, ...), PO_MALFORMED_RESPONSE for a bad
 * member (what says which), PO_NOMEM. */
po_rc po_jwk_from_json(struct json_object *obj, po_jwk *out, po_err *err);

/* Free one key's contents; k is zeroed. */
void po_jwk_free(po_jwk *k);

/* Parse a JWK Set document {"keys":[...]}: usable keys are kept (at most
 * PO_JWKS_KEYS_MAX), others skipped and counted in *skipped (may be NULL).
 * PO_MALFORMED_RESPONSE when the text is not a JSON object with a "keys"
 * array or a usable key is malformed; PO_NOMEM (json-c or OpenSSL ran out
 * of memory: no key is skipped for that). */
po_rc po_jwks_parse(const char *text, size_t len, po_jwks *out, size_t *skipped,
                    po_err *err);

/* Free a key set; ks is left empty. */
void po_jwks_free(po_jwks *ks);

/* Seconds to keep a key set given its Cache-Control header value (NULL or
 * "" when absent), within [PO_JWKS_TTL_MIN, PO_JWKS_TTL_MAX]. */
long po_jwks_max_age(const char *cache_control);

/* Where a key set comes from and how to reach it. */
typedef struct po_jwks_source {
    const char *issuer;    /* the configured issuer                  */
    const char *jwks_uri;  /* NULL or "": discovery from issuer      */
    const char *cache_dir; /* NULL: memory only                      */
    const char *ca_file;
    long connect_timeout_ms;
    int retries;
    int allow_http;
    uint64_t deadline_ms; /* absolute po_mono_ms()                  */
    const po_log *log;
} po_jwks_source;

/* The memory cache of one call context.  Zero-initialise it (or
 * po_jwks_cache_init) and free it with po_jwks_cache_free. */
typedef struct po_jwks_cache {
    char *id; /* issuer "\n" jwks_uri of the keys held  */
    po_jwks keys;
    int64_t fetched_at; /* wall clock, s                          */
    int64_t expires_at;
    int64_t refetch_at; /* the last unknown-kid fetch, or 0       */
    unsigned fetches;   /* key set fetches made through it        */
} po_jwks_cache;

void po_jwks_cache_init(po_jwks_cache *c);
void po_jwks_cache_free(po_jwks_cache *c);

/* The current keys of src into *out (pointing into c, valid until the
 * next call on c): from memory while fresh, else from the disk file while
 * fresh, else fetched (discovery first when there is no jwks_uri) and
 * stored in both.  Network outcomes as po_http_request; a non-200 answer
 * is PO_SERVER_ERROR (5xx) or PO_MALFORMED_RESPONSE; a discovery document
 * for another issuer is PO_JWT_WRONG_ISSUER. */
po_rc po_jwks_get(po_jwks_cache *c, const po_jwks_source *src, int64_t now,
                  const po_jwks **out, po_err *err);

/* A token named a kid not in the keys: fetch them again unless that was
 * done for src less than PO_JWKS_REFETCH_MIN seconds ago (in this or
 * another process: the disk file records it).  *refetched is 1 when new
 * keys are in c, 0 when rate-limited (PO_OK either way). */
po_rc po_jwks_refetch(po_jwks_cache *c, const po_jwks_source *src, int64_t now,
                      int *refetched, po_err *err);

/* The disk cache file for src in src->cache_dir, malloc'd. */
po_rc po_jwks_cache_file(const po_jwks_source *src, char **out, po_err *err);

/* Create dir (0700, parents too) when missing and check it: a directory,
 * not a symlink, owned by the effective uid, no access for group or others
 * (PO_IO saying why otherwise). */
po_rc po_jwks_ensure_dir(const char *dir, po_err *err);

#endif

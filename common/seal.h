/*
 * seal.h - values sealed for a shared store: AES-256-GCM under a key file
 * every host of a fleet holds, bound to the name they are stored under.
 *
 * A sealed value is printable text:
 *
 *     "pam-oauth-sealed:1:" base64( key_id[4] nonce[12] ciphertext tag[16] )
 *
 * key_id names the key (the first 4 bytes of SHA-256 over a fixed label
 * and the key), so a value sealed under another key is reported as such
 * rather than as tampered.  The associated data is a fixed label, the
 * store key name and the profile name, so a value copied under another
 * name, or to another profile, fails authentication.  Nonces are 96
 * random bits from getrandom(2).
 *
 * libcrypto is not linked: the first seal or key load opens
 * "libcrypto.so.3" with dlopen(RTLD_NOW) (pthread_once), so only the
 * store path loads it; a cache hit of oauth-token never does (the store
 * path also makes HTTPS requests, whose libcurl loads libcrypto anyway).
 * po_seal_parse and po_seal_key_parse are pure and never load it.
 */
#ifndef PO_SEAL_H
#define PO_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "secret.h"

#define PO_SEAL_KEY_LEN 32
#define PO_SEAL_ID_LEN 4
#define PO_SEAL_NONCE_LEN 12
#define PO_SEAL_TAG_LEN 16
#define PO_SEAL_PREFIX "pam-oauth-sealed:1:"
#define PO_SEAL_VALUE_MAX (512 * 1024) /* a sealed value, in bytes      */

typedef struct po_seal_key {
    unsigned char key[PO_SEAL_KEY_LEN]; /* secret                       */
    unsigned char id[PO_SEAL_ID_LEN];   /* set by po_seal_key_load      */
} po_seal_key;

/* The parts of a sealed value; pointers into blob (malloc'd). */
typedef struct po_sealed {
    unsigned char *blob; /* the decoded base64                      */
    size_t blob_len;
    const unsigned char *id, *nonce, *ciphertext, *tag;
    size_t ciphertext_len;
} po_sealed;

/* The key in the n bytes of a key file: exactly PO_SEAL_KEY_LEN raw bytes,
 * or their padded base64 (44 characters) with an optional trailing
 * newline.  PO_CONFIG naming path and what is wrong (never the bytes).
 * Pure: the key id is not computed. */
po_rc po_seal_key_parse(const char *path, const unsigned char *data, size_t n,
                        po_seal_key *out, po_err *err);

/* Read the key file at path (a regular file, not a symbolic link, not
 * readable or writable by group or others, owned by the effective uid or
 * root), parse it and compute its id (loads libcrypto).  PO_CONFIG with
 * the path and the reason. */
po_rc po_seal_key_load(const char *path, po_seal_key *out, po_err *err);

/* Overwrite the key. */
void po_seal_key_clear(po_seal_key *k);

/* Create a new key file at path: 32 bytes from getrandom(2), written to a
 * temporary file in the same directory (O_EXCL, O_NOFOLLOW, mode 0600),
 * fsync'd, then linked to path, which is never replaced: an existing path
 * (file, link or anything else) is PO_IO "already exists".  The directory
 * is fsync'd.  Nothing is left behind on failure. */
po_rc po_seal_keygen(const char *path, po_err *err);

/* Split the n bytes of value into its parts (*out: free with
 * po_sealed_free).  PO_MALFORMED_RESPONSE: "not a sealed pam-oauth value"
 * (no prefix), bad base64, or "truncated" (shorter than id, nonce and
 * tag).  Pure: no library, for fuzzing. */
po_rc po_seal_parse(const char *value, size_t n, po_sealed *out, po_err *err);

void po_sealed_free(po_sealed *s);

/* Seal the n bytes at plain for store key name and profile into out
 * (appended, printable, at most PO_SEAL_VALUE_MAX).  PO_IO when no
 * random nonce can be had, PO_CONFIG when libcrypto cannot be loaded,
 * PO_TOO_LARGE, PO_NOMEM. */
po_rc po_seal(const po_seal_key *k, const char *name, const char *profile,
              const void *plain, size_t n, po_buf *out, po_err *err);

/* Open a sealed value: *plain (malloc'd, NUL-terminated, a secret: free
 * with po_secret_free) and *plain_len.  PO_MALFORMED_RESPONSE when it is
 * not a sealed value, is truncated, was sealed under another key ("key id
 * X, ours Y"), or fails authentication (tampered, or sealed for another
 * name or profile); the message never holds the data. */
po_rc po_unseal(const po_seal_key *k, const char *name, const char *profile,
                const char *value, size_t n, char **plain, size_t *plain_len,
                po_err *err);

/* The key id as 8 lower-case hex digits, into out[9]. */
void po_seal_id_hex(const unsigned char id[PO_SEAL_ID_LEN], char out[9]);

#endif

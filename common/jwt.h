/*
 * jwt.h - JSON Web Tokens signed with JWS (RFC 7515, 7518, 7519, 8037):
 * strict parsing, signature verification with OpenSSL EVP, and the claim
 * checks (iss, aud, exp, nbf, iat, typ).
 *
 * Everything here is a pure function of its arguments: no network, no
 * files, no clock (the caller passes now), so it is unit-tested alone.
 * Keys come from jwks.h; fetching and caching them is jwks.c's job.
 *
 * Algorithms: RS256 RS384 RS512 PS256 ES256 ES384 EdDSA (Ed25519).  "none"
 * and HMAC (HS*) are never accepted, whatever the configuration says, and
 * a JWK's kty, crv, use and alg must agree with the token's alg, so a
 * public key can never be used as an HMAC secret (the alg confusion
 * attack) nor an RSA key for an EC algorithm.
 *
 * Every failure is one of the PO_JWT_* outcomes of err.h with a message
 * that names what is wrong (never the token: tokens are secrets).
 */
#ifndef PO_JWT_H
#define PO_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "claims.h"
#include "jwtalg.h"

struct json_object;
struct po_jwk;
struct po_jwks;

#define PO_JWT_MAX (16 * 1024)    /* bytes in a compact JWS             */
#define PO_JWT_LEEWAY_DEFAULT 60L /* s, for exp, nbf and iat            */
/* Whether token has the shape of a compact JWS: at most PO_JWT_MAX bytes,
 * exactly two dots, only base64url characters, and a first segment that
 * decodes to a JSON object.  Used by verify=auto to choose between JWT
 * verification and introspection; it proves nothing about the token. */
int po_jwt_looks_like(const char *token);

/* A parsed, not yet verified token. */
typedef struct po_jwt {
    po_jwt_alg alg;
    char *kid;                  /* NULL when the header has none       */
    char *typ;                  /* NULL when the header has none       */
    struct json_object *header; /* the JOSE header object              */
    struct json_object *claims; /* the payload object                  */
    unsigned char *sig;         /* the signature bytes                 */
    size_t sig_len;
    char *signing_input; /* "header.payload" as sent (secret)   */
    size_t signing_input_len;
} po_jwt;

/* Parse a compact JWS: size at most PO_JWT_MAX, three segments, each
 * strict base64url, header and payload JSON objects (nothing after them),
 * header "alg" one this module implements (none/HS* refused as
 * PO_JWT_ALG_REFUSED), no "crit" header, non-empty signature.  On PO_OK
 * *out must be freed with po_jwt_free.  The signature is NOT checked. */
po_rc po_jwt_parse(const char *token, po_jwt *out, po_err *err);

/* Free a parsed token (cleansing the signing input); j is zeroed. */
void po_jwt_free(po_jwt *j);

/* Whether key can verify alg: kty (RSA, EC, OKP), crv (P-256 for ES256,
 * P-384 for ES384, Ed25519 for EdDSA), use ("sig" or absent) and the key's
 * own alg (absent or equal).  PO_OK or PO_JWT_ALG_REFUSED saying which;
 * PO_NOMEM when OpenSSL ran out of memory answering. */
po_rc po_jwk_check_alg(const struct po_jwk *key, po_jwt_alg alg, po_err *err);

/* Verify j's signature with key (after po_jwk_check_alg).  ES256/ES384
 * signatures are the raw r||s of RFC 7518 3.4 (exactly 64/96 bytes; a DER
 * signature is refused); PS256 uses MGF1-SHA256 with a 32-byte salt.
 * PO_OK, PO_JWT_BAD_SIGNATURE, PO_JWT_ALG_REFUSED, PO_NOMEM. */
po_rc po_jwt_verify_sig(const po_jwt *j, const struct po_jwk *key, po_err *err);

/* The claim checks. */
typedef struct po_jwt_policy {
    const char *issuer;   /* iss must equal it; required             */
    const char *audience; /* aud (string or array) must contain it;
                             required                                 */
    po_jwt_algset algs;   /* allowed algorithms; 0 = the default set  */
    long leeway;          /* s of clock skew allowed; < 0 = default   */
    const char *typ;      /* header typ must match ("at+jwt" matches
                             "application/at+jwt"); NULL = any        */
} po_jwt_policy;

/* Flags of po_jwt_check_claims. */
#define PO_CLAIMS_EXP_REQUIRED 1u /* exp must be present (a JWT)        */
#define PO_CLAIMS_WHERE_PRESENT                                                \
    2u /* iss and aud checked only when the                                    \
          object has them (introspection);                                     \
          iss skipped when pol->issuer is NULL */

/* Check iss, aud, exp, nbf and iat of a claims object (a JWT payload or an
 * introspection response) at wall time now, as flags say.  PO_OK or the
 * PO_JWT_* outcome of the first failed check. */
po_rc po_jwt_check_claims(struct json_object *claims, const po_jwt_policy *pol,
                          int64_t now, unsigned flags, po_err *err);

/* Find the keys for j in keys: the key with j's kid, or, when j has no
 * kid, every key that can verify j's alg.  Each candidate must pass
 * po_jwk_check_alg.  PO_OK with *n keys put in out[0..max-1];
 * PO_JWT_UNKNOWN_KEY when no key has the kid (or none fits a kid-less
 * token); PO_JWT_ALG_REFUSED when the kid's key does not fit the alg;
 * PO_NOMEM. */
po_rc po_jwt_select_keys(const po_jwt *j, const struct po_jwks *keys,
                         const struct po_jwk **out, size_t max, size_t *n,
                         po_err *err);

/* The whole check with a given key set: parse, algorithm allowed by pol,
 * key selection, signature, typ, then po_jwt_check_claims.  On PO_OK *out
 * (when not NULL) receives the parsed token; free it with po_jwt_free.
 * PO_JWT_UNKNOWN_KEY leaves *out unset: the caller may fetch the keys
 * again and retry. */
po_rc po_jwt_verify(const char *token, const struct po_jwks *keys,
                    const po_jwt_policy *pol, int64_t now, po_jwt *out,
                    po_err *err);

#endif

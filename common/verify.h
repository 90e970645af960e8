/*
 * verify.h - proving that a token was issued by the profile's issuer, for
 * us, is current and names the user: the profile's verify mode on top of
 * jwt.h (JWS checks), jwks.h (the issuer's keys) and RFC 7662
 * introspection.
 *
 *   verify = none        nothing is checked; no claims are trusted
 *   verify = jwt         the token must be a JWS: po_jwt_verify with the
 *                        issuer's keys; an unknown kid fetches the key set
 *                        once more (rate-limited, see jwks.h)
 *   verify = introspect  POST token=...&token_type_hint=access_token to
 *                        introspection_url with the profile's client
 *                        authentication; "active": true required; iss,
 *                        aud, exp, nbf, iat checked where present
 *   verify = auto        jwt when po_jwt_looks_like(token), else introspect
 *                        when introspection_url is set, else
 *                        PO_TOKEN_UNVERIFIED
 *
 * User binding: when a user is given, the claim user_claim (a member name
 * or dotted path) of the verified claims must be a string equal to it
 * (for introspection, RFC 7662's "username" is used when user_claim is
 * absent).  Missing: PO_JWT_MISSING_CLAIM; different: PO_USER_MISMATCH.
 *
 * The verified claims come back as JSON text, for the PAM account checks
 * (roles_source = token): claims of a token that was not verified are
 * never handed out.
 */
#ifndef PO_VERIFY_H
#define PO_VERIFY_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "jwks.h"
#include "jwt.h"
#include "oauth.h"

/* One call context's verification state: the memory key cache.  Nothing
 * here is global: the PAM module keeps one per authentication. */
typedef struct po_verifier {
    po_jwks_cache jwks;
    char *cache_dir; /* key set disk cache, or NULL: memory only */
    const po_log *log;
} po_verifier;

/* Initialise v; cache_dir (copied, may be NULL) is where key sets are kept
 * on disk.  PO_NOMEM. */
po_rc po_verifier_init(po_verifier *v, const char *cache_dir, const po_log *log,
                       po_err *err);
void po_verifier_free(po_verifier *v);

/* The key set cache directory for profile p: jwks_cache_dir when set;
 * else PO_JWKS_SYSTEM_DIR when system is set (pam_oauth), else the user's
 * token cache directory (po_cache_dir).  malloc'd. */
po_rc po_verify_cache_dir(const po_profile *p, int system, char **out,
                          po_err *err);

/* What verification proved. */
typedef struct po_verified {
    po_verify_mode method; /* PO_VERIFY_JWT or PO_VERIFY_INTROSPECT when
                              verified; PO_VERIFY_NONE when not        */
    char *claims_json;     /* the verified claims (a JSON object), or
                              NULL when nothing was verified           */
    char alg[16];          /* JWT: the JWS algorithm, else ""          */
    char kid[80];          /* JWT: the key id (printable), else ""     */
    char user[256];        /* the bound user_claim value, else ""      */
} po_verified;

void po_verified_free(po_verified *v);

/* The claim checks of p for the token kind which: issuer, audience
 * (jwt_audience; else the audience key for an access token; else the
 * client_id), algorithms, leeway and typ.  The strings point into p. */
po_rc po_verify_policy(const po_profile *p, po_verify_which which,
                       po_jwt_policy *pol, po_err *err);

/* Verify token (the access token, or an id_token when which says so)
 * under p's verify mode; user (may be NULL) is bound through user_claim.
 * For introspection the client secret must be loaded.  deadline_ms bounds
 * every request (absolute po_mono_ms()), now is the wall clock.  On PO_OK
 * *out is filled (free with po_verified_free).  Failures: the PO_JWT_*
 * outcomes, PO_TOKEN_INACTIVE, PO_TOKEN_UNVERIFIED, PO_USER_MISMATCH,
 * PO_JWT_MISSING_CLAIM, network outcomes from fetching keys or
 * introspecting, PO_CONFIG. */
po_rc po_verify_token(po_verifier *v, const po_profile *p,
                      po_verify_which which, const char *token,
                      const char *user, uint64_t deadline_ms, int64_t now,
                      po_verified *out, po_err *err);

/* po_verify_token on the token of response t that p's verify_token names
 * (id: the id_token, which must then be present). */
po_rc po_verify_response(po_verifier *v, const po_profile *p, const po_token *t,
                         const char *user, uint64_t deadline_ms, int64_t now,
                         po_verified *out, po_err *err);

/* Whether rc is a verdict on the token (forged, expired, another user's,
 * ...) rather than a failure to reach a verdict (network, configuration,
 * memory). */
int po_verify_is_verdict(po_rc rc);

#endif

/*
 * err.h - the one result type of pam-oauth, and the logging sink.
 *
 * Every function in common/ that can fail returns a po_rc and, when it is
 * given a non-NULL po_err, fills it with the same code and a message for a
 * human.  The idiom in every function is:
 *
 *     po_rc rc = PO_OK;
 *     if ((rc = step(..., err)) != PO_OK) goto out;
 *   out:
 *     cleanup;
 *     return rc;
 *
 * A po_err message never holds a password, client secret, access token or
 * refresh token: callers format only names, paths, keys, URLs without query
 * strings, HTTP status codes and the server's error/error_description.
 */
#ifndef PO_ERR_H
#define PO_ERR_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define PO_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define PO_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define PO_PRINTF(f, a)
#define PO_WARN_UNUSED
#endif

/* The typed outcome.  The first block is what a token request can end in
 * (issue 2's list, RFC 8628's device grant answers); the second block is
 * local conditions.  Order matters: everything from PO_INVALID_GRANT to
 * PO_SERVER_ERROR is an answer from the server (flow.c counts those
 * requests against the budget). */
typedef enum po_rc {
    PO_OK = 0,
    PO_INVALID_GRANT,         /* bad user credentials or refresh token      */
    PO_INVALID_CLIENT,        /* client authentication failed               */
    PO_UNAUTHORIZED_CLIENT,   /* client may not use this grant              */
    PO_INVALID_SCOPE,         /* scope unknown or not allowed               */
    PO_INVALID_REQUEST,       /* invalid_request, unsupported_grant_type,
                                 other 4xx the server explains              */
    PO_INTERACTION_REQUIRED,  /* interaction_required, mfa_required,
                                 consent_required, login_required: the
                                 password alone is not enough             */
    PO_AUTHORIZATION_PENDING, /* device grant: not approved yet (RFC 8628
                                 3.5)                                     */
    PO_SLOW_DOWN,             /* device grant: poll 5 s slower; elsewhere,
                                 like rate_limited                          */
    PO_ACCESS_DENIED,         /* device grant: the user or the identity
                                 provider refused the authorization         */
    PO_EXPIRED_TOKEN,         /* device grant: the device code expired, or
                                 was not approved within device_timeout    */
    PO_RATE_LIMITED,          /* HTTP 429, slow_down                        */
    PO_SERVER_ERROR,          /* HTTP 5xx, server_error,
                                 temporarily_unavailable                    */
    PO_NETWORK,               /* DNS, connect, reset, closed mid-response   */
    PO_TIMEOUT,               /* a deadline passed                          */
    PO_TLS,                   /* certificate or handshake failure           */
    PO_MALFORMED_RESPONSE,    /* not what RFC 6749 5.1/5.2 allows           */
    PO_CONFIG,                /* bad or unreadable configuration            */
    /* local conditions */
    PO_NOMEM,
    PO_IO,        /* a local file or process could not be used          */
    PO_TOO_LARGE, /* a bounded buffer would overflow its cap            */
    PO_LOCKED,    /* the cache lock was not obtained within its bound   */
    PO_BUDGET,    /* the monthly token budget is used up                */
    PO_NOT_FOUND, /* no such profile, no cached token                   */
    PO_USAGE,     /* a caller passed an invalid argument                */
    /* token verification (jwt, jwks, verify) */
    PO_JWT_MALFORMED,      /* not a well-formed JWS: segments, base64url,
                              JSON, over PO_JWT_MAX bytes                */
    PO_JWT_ALG_REFUSED,    /* alg none, HS*, not in jwt_algorithms, or a
                              JWK whose alg/kty/crv/use disagrees        */
    PO_JWT_UNKNOWN_KEY,    /* no key in the issuer's key set for the kid */
    PO_JWT_BAD_SIGNATURE,  /* the signature does not verify              */
    PO_JWT_EXPIRED,        /* exp (plus leeway) has passed               */
    PO_JWT_NOT_YET_VALID,  /* nbf or iat (less leeway) in the future     */
    PO_JWT_WRONG_ISSUER,   /* iss is not the configured issuer           */
    PO_JWT_WRONG_AUDIENCE, /* aud does not contain the audience          */
    PO_JWT_WRONG_TYPE,     /* typ is not the configured one              */
    PO_JWT_MISSING_CLAIM,  /* a required claim (exp, user_claim) absent  */
    PO_TOKEN_INACTIVE,     /* introspection: "active" is not true        */
    PO_TOKEN_UNVERIFIED,   /* the profile requires verification and the
                              token cannot be verified                   */
    PO_USER_MISMATCH,      /* user_claim names another user              */
    PO_RC_COUNT
} po_rc;

typedef struct po_err {
    po_rc rc;
    long http_status; /* 0 when no HTTP response was involved          */
    long retry_after; /* seconds a 429 or 503 asked to wait
                         (Retry-After), 0 when it did not              */
    char msg[512];    /* human-readable, never holds a secret          */
} po_err;

/* Stable lower-case name of rc ("invalid_grant", "timeout", ...). */
const char *po_rc_name(po_rc rc);

/* The po_rc whose po_rc_name is name, or PO_RC_COUNT when there is none. */
po_rc po_rc_from_name(const char *name);

/* Whether rc means the identity provider could not be reached or gave no
 * usable answer (network, timeout, tls, HTTP 5xx, 429, a malformed
 * response): the same request may succeed later, so a PAM stack falls
 * back to its next module and the helper reports "unreachable". */
int po_rc_unavailable(po_rc rc);

/* Record rc and a formatted message in err (when err is not NULL), and
 * return rc, so that callers can write `return po_fail(err, PO_IO, ...)`.
 * The message is truncated to fit; it must not contain secrets. */
po_rc po_fail(po_err *err, po_rc rc, const char *fmt, ...) PO_PRINTF(3, 4);

/* Append formatted text to err's message (truncated to fit); err->rc is
 * left alone.  Same rule: no secrets. */
void po_err_append(po_err *err, const char *fmt, ...) PO_PRINTF(2, 3);

/* Copy s into out (size n) so that it is safe to put in a message: bytes
 * outside printable ASCII become '?', and a copy cut short ends in "...".
 * For names that come from untrusted input (a kid, an algorithm). */
void po_safe_text(const char *s, char *out, size_t n); /* n >= 4 */

/* Running out of memory inside json-c (0.16) or OpenSSL comes back as the
 * failure bad input gives (not JSON, an invalid key, a bad signature);
 * malloc sets errno to ENOMEM.  Call po_oom_reset() before such a call and,
 * when it fails (or json-c returns less than it was given),
 * po_out_of_memory() tells whether an allocation failed meanwhile: report
 * PO_NOMEM then, not a verdict on the input.  Best effort: json-c clears
 * errno itself when it parses a number, so a member it dropped before a
 * number goes unnoticed (the checks that follow still refuse what is
 * missing). */
void po_oom_reset(void);
int po_out_of_memory(void);

/* Clear err to PO_OK with an empty message. */
void po_err_clear(po_err *err);

/*
 * The logging sink.  The frontend supplies fn: syslog for the PAM module,
 * stderr for the helper.  priority is a syslog priority (LOG_ERR ...).
 * debug enables LOG_DEBUG lines.  A NULL po_log or NULL fn drops lines.
 */
typedef void (*po_log_fn)(void *ctx, int priority, const char *msg);
typedef struct po_log {
    po_log_fn fn;
    void *ctx;
    int debug;
} po_log;

/* Format and send one line to log.  LOG_DEBUG lines go out only when
 * log->debug is set.  Never pass a secret as an argument. */
void po_logf(const po_log *log, int priority, const char *fmt, ...)
    PO_PRINTF(3, 4);

#endif

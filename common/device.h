/*
 * device.h - the OAuth 2.0 device authorization grant (RFC 8628), for both
 * frontends: the device authorization request (3.1) and its response
 * (3.2), the text shown to the user (3.3), and the polling of the token
 * endpoint (3.4, 3.5).
 *
 * A device login, with one deadline for all of it:
 *
 *     deadline = po_device_deadline(p, po_mono_ms());
 *     po_device_start(p, deadline, log, &da, &err);     endpoint + request
 *     po_device_message(&da, po_device_seconds_left(&da, deadline, now),
 *                       p->device_qr, &text, &qr_problem, &err);  shown
 *     po_device_poll(p, &da, &opts, &token, &stats, &err);   waits, maybe
 *                                                            in rounds
 *
 * The endpoint is device_authorization_url, or else the
 * device_authorization_endpoint member of the issuer's OpenID discovery
 * document (RFC 8628 section 4).  The requests use the profile's body
 * style and client authentication, like token requests (oauth.h).
 *
 * Polling answers (RFC 8628 3.5), as typed outcomes of po_oauth_parse:
 *   authorization_pending  PO_AUTHORIZATION_PENDING: poll again after the
 *                          interval
 *   slow_down              PO_SLOW_DOWN: the interval grows by 5 s, for this
 *                          and every later poll
 *   access_denied          PO_ACCESS_DENIED: stop
 *   expired_token          PO_EXPIRED_TOKEN: stop
 * A poll that cannot reach the server (network, timeout, TLS, 5xx, 429)
 * is tried again with the interval doubled each time (at most 60 s), as
 * 3.5 asks; any other answer ends the login with its outcome.  When the
 * deadline or the code's expires_in passes first, the outcome is
 * PO_EXPIRED_TOKEN, or the last "unavailable" outcome when the server
 * could not be reached at all since the last answer.
 *
 * The user code, the URIs and the device code are checked before anything
 * is shown: the URIs must be https (http only to a loopback host with
 * allow_http), and nothing may hold a control character (no terminal
 * escape sequence reaches a screen).
 */
#ifndef PO_DEVICE_H
#define PO_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "oauth.h"
#include "secret.h"

#define PO_DEVICE_INTERVAL_DEFAULT 5L /* s, RFC 8628 3.2                 */
#define PO_DEVICE_SLOW_DOWN_STEP 5L   /* s added on slow_down, RFC 3.5   */
#define PO_DEVICE_BACKOFF_MAX 60L     /* s, polls that reach nobody     */
#define PO_DEVICE_INTERVAL_MAX 300L   /* s, a larger interval is refused */
#define PO_DEVICE_EXPIRES_MAX 86400L  /* s, a longer expires_in refused  */
#define PO_DEVICE_CODE_MAX 4096       /* bytes of a device code          */
#define PO_DEVICE_USER_CODE_MAX 128   /* bytes of a user code            */
#define PO_DEVICE_URI_MAX 2048        /* bytes of a verification URI     */

/* A device authorization response.  Strings are malloc'd, or NULL. */
typedef struct po_device_auth {
    char *device_code;               /* secret: whoever polls with it gets
                                        the token                         */
    char *user_code;                 /* shown to the user                 */
    char *verification_uri;          /* where the user enters the code    */
    char *verification_uri_complete; /* with the code in it, or NULL      */
    long expires_in;                 /* s the codes are valid             */
    long interval;                   /* s between polls (default 5); grows
                                        by 5 s with each slow_down        */
    uint64_t issued_ms;              /* po_mono_ms() when the request was
                                        sent (po_device_start); 0 after
                                        po_device_parse alone            */
    uint64_t polled_ms;              /* po_mono_ms() of the last poll, or 0:
                                        po_device_poll keeps the pace
                                        across calls                     */
} po_device_auth;

/* Free the strings (the device code cleansed); da is zeroed. */
void po_device_auth_free(po_device_auth *da);

/* Interpret the HTTP response to a device authorization request (status,
 * body of len bytes; a pure function, no I/O).  HTTP 2xx with a JSON
 * object: device_code, user_code, verification_uri (or Google's
 * verification_url), expires_in (a number or a string of digits, 1 to
 * PO_DEVICE_EXPIRES_MAX) required; verification_uri_complete and interval
 * (0 to PO_DEVICE_INTERVAL_MAX; 0 counts as 1) optional.  A member that is
 * missing, of the wrong type, too long, holding a control character or
 * invalid UTF-8, or a URI that po_http_check_url(allow_http) refuses is
 * PO_MALFORMED_RESPONSE naming the member.  An error response is the
 * typed outcome of po_oauth_parse_error ("device authorization endpoint
 * answered HTTP 401: invalid_client: ...").  On PO_OK *out is filled. */
po_rc po_device_parse(long status, const char *body, size_t len, int allow_http,
                      po_device_auth *out, po_err *err);

/* The absolute po_mono_ms() deadline of a device login starting at
 * now_ms: device_timeout later (default 300 s). */
uint64_t po_device_deadline(const po_profile *p, uint64_t now_ms);

/* The device authorization endpoint of p, malloc'd: device_authorization_url,
 * else the issuer's discovery document (one GET, bounded by deadline_ms).
 * PO_CONFIG when neither is configured, or the issuer publishes none. */
po_rc po_device_endpoint(const po_profile *p, uint64_t deadline_ms,
                         const po_log *log, char **url, po_err *err);

/* Find the endpoint, send the device authorization request and parse the
 * answer into *out, everything bounded by deadline_ms and each request by
 * the profile's timeout.  The client secret must be loaded
 * (po_profile_load_secret).  Outcomes as po_http_request, po_device_parse
 * and po_device_endpoint. */
po_rc po_device_start(const po_profile *p, uint64_t deadline_ms,
                      const po_log *log, po_device_auth *out, po_err *err);

/* The seconds a user has to approve: until deadline_ms or the code's
 * expiry, whichever comes first, from now_ms (at least 0). */
long po_device_seconds_left(const po_device_auth *da, uint64_t deadline_ms,
                            uint64_t now_ms);

/* Append to out (not secret) what the user is told, one line each:
 *   To log in, open URI
 *   and enter the code CODE
 * or, with a verification_uri_complete,
 *   To log in, open URI_COMPLETE
 *   or open URI and enter the code CODE
 * then "The code is valid for N minutes." (when seconds > 0), and, with
 * qr, "Or scan this QR code:" and the QR code of verification_uri_complete
 * (else verification_uri) drawn by po_qr_text.  No trailing newline.
 * When the QR code cannot be drawn (libqrencode missing, a URI too long)
 * the text goes without it and *qr_problem (may be NULL) says why; it is
 * PO_OK otherwise.  PO_NOMEM or PO_TOO_LARGE when the text itself does not
 * fit (out is then unchanged). */
po_rc po_device_message(const po_device_auth *da, long seconds, int qr,
                        po_buf *out, po_err *qr_problem, po_err *err);

/* Waits between polls: return nonzero to stop the login (Ctrl-C).  NULL
 * means po_sleep_ms. */
typedef int (*po_device_wait_fn)(void *ctx, uint64_t ms);

typedef struct po_device_poll_opts {
    uint64_t deadline_ms; /* absolute po_mono_ms(); the code's expiry
                             (issued_ms + expires_in) bounds it too     */
    po_device_wait_fn wait;
    void *wait_ctx;
    const po_log *log;
} po_device_poll_opts;

/* What polling did, for logs and tests. */
typedef struct po_device_stats {
    unsigned polls;      /* token requests sent                       */
    unsigned pending;    /* authorization_pending answers             */
    unsigned slow_downs; /* slow_down answers                         */
    unsigned failures;   /* polls that reached nobody (retried)       */
    long interval;       /* s between polls at the end                */
} po_device_stats;

/* Poll the token endpoint with da's device code until a token, a final
 * answer, the deadline or a stop from opts->wait.  A poll comes interval
 * seconds after the previous one (da->polled_ms), or after da->issued_ms
 * for the first: at once when that has passed, as after a user pressed
 * Enter.  da->interval and da->polled_ms are updated, so that a later
 * call (the PAM module polls in rounds between prompts) keeps the pace a
 * slow_down set.  Each request is bounded by the profile's timeout and the
 * deadline.  On PO_OK *out holds the token.  A stop from wait is PO_USAGE
 * "interrupted".  st (may be NULL) counts this call's polls. */
po_rc po_device_poll(const po_profile *p, po_device_auth *da,
                     const po_device_poll_opts *opts, po_token *out,
                     po_device_stats *st, po_err *err);

/* Whether da's code has expired at now_ms (issued_ms + expires_in). */
int po_device_expired(const po_device_auth *da, uint64_t now_ms);

#endif

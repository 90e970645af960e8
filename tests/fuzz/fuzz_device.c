/*
 * fuzz_device - what a device login (RFC 8628) reads: the device
 * authorization endpoint's answer (po_device_parse, then the text shown
 * to the user, po_device_message) or one answer to a poll of the token
 * endpoint with the device code (po_oauth_parse, whose typed outcomes
 * po_device_poll acts on: authorization_pending, slow_down, access_denied,
 * expired_token, a token).
 *
 * Input: one byte of flags (bit 0: allow_http; bit 1: a poll answer, else
 * a device authorization answer; bit 2: draw the QR code too), two bytes
 * of HTTP status (big-endian, modulo 1000), then the body.
 *
 * Properties: a device authorization is accepted only from a 2xx answer,
 * with a device code, a user code and URIs that hold no control character
 * (the user code and URIs reach a terminal), URIs that pass
 * po_http_check_url, an expires_in within 1..PO_DEVICE_EXPIRES_MAX and an
 * interval within 1..PO_DEVICE_INTERVAL_MAX; the text shown holds the
 * user code and URI and no control character but newlines; a poll is
 * told to wait (pending, slow_down) or to stop (access_denied,
 * expired_token) only by an answer with that error code, and gets a token
 * only from a 2xx; a failure leaves nothing behind and says why in a
 * printable message.
 */
#define _GNU_SOURCE
#include "fuzz.h"

#include <strings.h>

#include "device.h"
#include "http.h"
#include "oauth.h"

#define NOW 1700000000LL

static int printable_lines(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\n') ||
            (unsigned char)s[i] == 0x7f)
            return 0;
    return memchr(s, '\0', n) == NULL;
}

static void check_auth(const po_device_auth *da, int allow_http, int qr)
{
    po_buf text;
    po_err err, qr_problem;
    po_rc rc;

    FUZZ_CHECK(da->device_code != NULL && da->device_code[0] != '\0' &&
                   strlen(da->device_code) <= PO_DEVICE_CODE_MAX,
               "device code");
    FUZZ_CHECK(fuzz_no_controls(da->device_code) &&
                   strchr(da->device_code, '\t') == NULL,
               "device code with a control character");
    FUZZ_CHECK(da->user_code != NULL && da->user_code[0] != '\0' &&
                   strlen(da->user_code) <= PO_DEVICE_USER_CODE_MAX &&
                   fuzz_no_controls(da->user_code) &&
                   strchr(da->user_code, '\t') == NULL,
               "user code");
    FUZZ_CHECK(da->verification_uri != NULL &&
                   po_http_check_url(da->verification_uri, allow_http, NULL) ==
                       PO_OK &&
                   fuzz_no_controls(da->verification_uri),
               "verification_uri");
    FUZZ_CHECK(da->verification_uri_complete == NULL ||
                   (po_http_check_url(da->verification_uri_complete, allow_http,
                                      NULL) == PO_OK &&
                    fuzz_no_controls(da->verification_uri_complete)),
               "verification_uri_complete");
    FUZZ_CHECK(da->expires_in >= 1 && da->expires_in <= PO_DEVICE_EXPIRES_MAX,
               "expires_in %ld", da->expires_in);
    FUZZ_CHECK(da->interval >= 1 && da->interval <= PO_DEVICE_INTERVAL_MAX,
               "interval %ld", da->interval);
    FUZZ_CHECK(da->issued_ms == 0 && da->polled_ms == 0, "times set");

    po_buf_init(&text, 64 * 1024, 0);
    po_err_clear(&err);
    po_err_clear(&qr_problem);
    rc = po_device_message(da, da->expires_in, qr, &text, &qr_problem, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg) && fuzz_no_controls(qr_problem.msg),
               "control character in a message");
    if (rc == PO_OK) {
        FUZZ_CHECK(printable_lines(text.data, text.len),
                   "control character in the text shown");
        FUZZ_CHECK(memmem(text.data, text.len, da->user_code,
                          strlen(da->user_code)) != NULL &&
                       memmem(text.data, text.len, da->verification_uri,
                              strlen(da->verification_uri)) != NULL,
                   "the text lacks the code or the URI");
    } else {
        FUZZ_CHECK(rc == PO_NOMEM || rc == PO_TOO_LARGE, "message: %s",
                   po_rc_name(rc));
    }
    po_buf_free(&text);
}

/* Whether the n bytes at s hold word, in any case. */
static int has_word(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word), i;

    for (i = 0; i + w <= n; i++)
        if (strncasecmp(s + i, word, w) == 0)
            return 1;
    return 0;
}

static void poll_answer(long status, const char *body, size_t len)
{
    po_token t;
    po_err err;
    po_rc rc;

    po_err_clear(&err);
    rc = po_oauth_parse(status, body, len, NOW, 3600, &t, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc == PO_OK) {
        FUZZ_CHECK(status >= 200 && status < 300, "a token with HTTP %ld",
                   status);
        FUZZ_CHECK(t.access_token != NULL && t.access_token[0] != '\0',
                   "no access token");
    } else {
        FUZZ_CHECK(t.access_token == NULL && t.refresh_token == NULL &&
                       t.id_token == NULL && t.extra_json == NULL,
                   "a failure left a token");
        FUZZ_CHECK(err.rc == rc && err.msg[0] != '\0', "no message for %s",
                   po_rc_name(rc));
        if (rc == PO_AUTHORIZATION_PENDING || rc == PO_SLOW_DOWN ||
            rc == PO_ACCESS_DENIED || rc == PO_EXPIRED_TOKEN) {
            const char *code = rc == PO_AUTHORIZATION_PENDING
                                   ? "authorization_pending"
                               : rc == PO_SLOW_DOWN     ? "slow_down"
                               : rc == PO_ACCESS_DENIED ? "access_denied"
                                                        : "expired_token";
            /* error codes are matched without regard to case */
            FUZZ_CHECK(has_word(body, len, code), "%s without its error code",
                       po_rc_name(rc));
        }
    }
    po_token_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    unsigned flags = fuzz_byte(&in);
    int allow_http = flags & 1, qr = (flags & 4) != 0;
    long status;
    po_device_auth da;
    po_err err;
    char *body;
    size_t len;
    po_rc rc;

    status = (long)((fuzz_byte(&in) << 8 | fuzz_byte(&in)) % 1000);
    body = fuzz_rest(&in, &len);
    if (flags & 2) {
        poll_answer(status, body, len);
        free(body);
        return 0;
    }
    po_err_clear(&err);
    rc = po_device_parse(status, body, len, allow_http, &da, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc == PO_OK) {
        FUZZ_CHECK(status >= 200 && status < 300,
                   "a device authorization with HTTP %ld", status);
        check_auth(&da, allow_http, qr);
        po_device_auth_free(&da);
        FUZZ_CHECK(da.device_code == NULL && da.user_code == NULL,
                   "po_device_auth_free left strings");
    } else {
        FUZZ_CHECK(err.rc == rc && err.msg[0] != '\0', "no message for %s",
                   po_rc_name(rc));
        FUZZ_CHECK(err.http_status == status, "http_status %ld",
                   err.http_status);
        FUZZ_CHECK(da.device_code == NULL && da.user_code == NULL &&
                       da.verification_uri == NULL &&
                       da.verification_uri_complete == NULL,
                   "a failure left strings");
    }
    free(body);
    return 0;
}

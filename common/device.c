/*
 * device.c - the device authorization grant (RFC 8628): the request and
 * its response, the text for the user, and polling.
 *
 * The request is built by oauth.c (po_oauth_build_device), so body styles
 * and client authentication are those of token requests; the polls are
 * token requests with grant PO_GRANT_DEVICE_CODE (po_oauth_request).
 */
#define _GNU_SOURCE
#include "device.h"

#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "discovery.h"
#include "http.h"
#include "qr.h"
#include "util.h"

#define ENDPOINT "device authorization endpoint"
#define DEFAULT_TIMEOUT_S 300L
#define DEFAULT_REQUEST_MS 20000L
#define MESSAGE_MAX (64 * 1024)

void po_device_auth_free(po_device_auth *da)
{
    if (da == NULL)
        return;
    po_secret_free(da->device_code);
    free(da->user_code);
    free(da->verification_uri);
    free(da->verification_uri_complete);
    memset(da, 0, sizeof(*da));
}

/* ------------------------------------------------------------------ */
/* the response (RFC 8628 3.2)                                         */

/* Whether s (n bytes) is valid UTF-8 without C0, DEL or C1 controls, so
 * that it can be shown on a terminal as it is. */
static int displayable(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k, len;
    unsigned cp;

    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07u;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (cp >= 0x80 && cp <= 0x9f))
            return 0;
        i += len;
    }
    return 1;
}

/* The string member name of root: 1 and *out when present, 0 when absent
 * (or null), -1 when present but not a string. */
static int member_str(json_object *root, const char *name, const char **out,
                      size_t *len)
{
    json_object *v;

    *out = NULL;
    *len = 0;
    if (!json_object_object_get_ex(root, name, &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    *out = json_object_get_string(v);
    *len = (size_t)json_object_get_string_len(v);
    return 1;
}

/* A URI member: ASCII without spaces, at most PO_DEVICE_URI_MAX bytes,
 * https (or loopback http with allow_http).  Returns PO_OK with *dst set
 * (NULL when absent and optional). */
static po_rc take_uri(json_object *root, const char *name, const char *alias,
                      int required, int allow_http, char **dst, po_err *err)
{
    const char *s = NULL, *used = name;
    size_t len = 0, i;
    po_err e;
    int r;

    *dst = NULL;
    if ((r = member_str(root, name, &s, &len)) == 0 && alias != NULL) {
        used = alias;
        r = member_str(root, alias, &s, &len);
    }
    if (r == 0 || (r == 1 && len == 0)) {
        if (!required)
            return PO_OK;
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       ENDPOINT " answered without %s", name);
    }
    if (r < 0)
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       ENDPOINT " answered with a %s that is not a string",
                       used);
    if (len > PO_DEVICE_URI_MAX || strlen(s) != len)
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       ENDPOINT " answered with a %s longer than %d bytes",
                       used, PO_DEVICE_URI_MAX);
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return po_fail(err, PO_MALFORMED_RESPONSE,
                           ENDPOINT " answered with a %s that holds a space, "
                                    "a control character or non-ASCII",
                           used);
    po_err_clear(&e);
    if (po_http_check_url(s, allow_http, &e) != PO_OK)
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       ENDPOINT " answered with a %s that is refused: %s", used,
                       e.msg);
    if ((*dst = po_strdup(s)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    return PO_OK;
}

static po_rc parse_auth(json_object *root, int allow_http, po_device_auth *d,
                        po_err *err)
{
    const char *s;
    size_t len;
    int r;
    po_rc rc;

    r = member_str(root, "device_code", &s, &len);
    if (r <= 0 || len == 0)
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       r < 0 ? ENDPOINT " answered with a device_code that "
                                        "is not a string"
                             : ENDPOINT " answered without device_code");
    if (len > PO_DEVICE_CODE_MAX || strlen(s) != len || !displayable(s, len))
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       ENDPOINT " answered with a device_code longer than %d "
                                "bytes or holding a control character",
                       PO_DEVICE_CODE_MAX);
    if ((d->device_code = po_strndup(s, len)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");

    r = member_str(root, "user_code", &s, &len);
    if (r <= 0 || len == 0)
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       r < 0 ? ENDPOINT " answered with a user_code that is "
                                        "not a string"
                             : ENDPOINT " answered without user_code");
    if (len > PO_DEVICE_USER_CODE_MAX || strlen(s) != len ||
        !displayable(s, len))
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       ENDPOINT " answered with a user_code longer than %d "
                                "bytes, holding a control character or not "
                                "UTF-8",
                       PO_DEVICE_USER_CODE_MAX);
    if ((d->user_code = po_strndup(s, len)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");

    /* Google's endpoint (and Azure AD v1) call it verification_url */
    if ((rc = take_uri(root, "verification_uri", "verification_url", 1,
                       allow_http, &d->verification_uri, err)) != PO_OK ||
        (rc = take_uri(root, "verification_uri_complete",
                       "verification_url_complete", 0, allow_http,
                       &d->verification_uri_complete, err)) != PO_OK)
        return rc;

    r = po_oauth_json_seconds(root, "expires_in", 1, PO_DEVICE_EXPIRES_MAX,
                              &d->expires_in);
    if (r <= 0)
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       r < 0 ? ENDPOINT " answered with an expires_in that is "
                                        "not a whole number of seconds from "
                                        "1 to %ld"
                             : ENDPOINT " answered without expires_in",
                       PO_DEVICE_EXPIRES_MAX);
    r = po_oauth_json_seconds(root, "interval", 0, PO_DEVICE_INTERVAL_MAX,
                              &d->interval);
    if (r < 0)
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       ENDPOINT " answered with an interval that is not a "
                                "whole number of seconds from 0 to %ld",
                       PO_DEVICE_INTERVAL_MAX);
    if (r == 0)
        d->interval = PO_DEVICE_INTERVAL_DEFAULT;
    else if (d->interval < 1)
        d->interval = 1; /* never a busy loop */
    return PO_OK;
}

po_rc po_device_parse(long status, const char *body, size_t len, int allow_http,
                      po_device_auth *out, po_err *err)
{
    static const char *const secrets[] = {"device_code"};
    json_object *root = NULL;
    po_device_auth d;
    int valid = 0;
    po_rc rc;

    memset(out, 0, sizeof(*out));
    memset(&d, 0, sizeof(d));
    if (body == NULL)
        len = 0;
    if (!(status >= 200 && status < 300)) {
        rc = po_oauth_parse_error(ENDPOINT, status, body, len, NULL, err);
        goto out;
    }
    if ((rc = po_oauth_json(body, len, &root, &valid)) != PO_OK) {
        rc =
            po_fail(err, rc, "out of memory parsing the " ENDPOINT "'s answer");
        goto out;
    }
    if (root == NULL || !json_object_is_type(root, json_type_object) ||
        (!json_object_object_get_ex(root, "device_code", NULL) &&
         json_object_object_get_ex(root, "error", NULL))) {
        /* an error body with a 2xx status, or no JSON object at all */
        rc = po_oauth_parse_error(ENDPOINT, status, body, len, NULL, err);
        if (rc == PO_MALFORMED_RESPONSE && root != NULL &&
            json_object_is_type(root, json_type_object))
            rc = po_fail(err, PO_MALFORMED_RESPONSE,
                         ENDPOINT " answered HTTP %ld without device_code",
                         status);
        else if (rc == PO_MALFORMED_RESPONSE && valid)
            rc = po_fail(err, PO_MALFORMED_RESPONSE,
                         ENDPOINT " answered HTTP %ld with JSON that is not "
                                  "an object",
                         status);
        goto out;
    }
    if ((rc = parse_auth(root, allow_http, &d, err)) != PO_OK)
        goto out;
    *out = d;
    memset(&d, 0, sizeof(d));
out:
    if (err != NULL && rc != PO_OK)
        err->http_status = status;
    po_device_auth_free(&d);
    po_oauth_json_cleanse(root, secrets, 1);
    json_object_put(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the request (RFC 8628 3.1)                                          */

uint64_t po_device_deadline(const po_profile *p, uint64_t now_ms)
{
    long s = p->device_timeout > 0 ? p->device_timeout : DEFAULT_TIMEOUT_S;

    return now_ms + (uint64_t)s * 1000u;
}

/* The deadline of one request: the profile's timeout, within deadline. */
static uint64_t request_deadline(const po_profile *p, uint64_t deadline)
{
    long t = p->timeout_ms > 0 ? p->timeout_ms : DEFAULT_REQUEST_MS;
    uint64_t d = po_mono_ms() + (uint64_t)t;

    return d < deadline ? d : deadline;
}

/* How one request for p is made, bounded by deadline too. */
static void request_opts(const po_profile *p, uint64_t deadline,
                         const po_log *log, po_http_opts *opts)
{
    *opts = (po_http_opts){
        .ca_file = p->ca_file,
        .connect_timeout_ms = p->connect_timeout_ms,
        .deadline_ms = request_deadline(p, deadline),
        .retries = p->retries,
        .allow_http = p->allow_http,
        .log = log,
    };
}

po_rc po_device_endpoint(const po_profile *p, uint64_t deadline_ms,
                         const po_log *log, char **url, po_err *err)
{
    po_http_opts opts;
    po_err e;
    po_rc rc;

    *url = NULL;
    if (p->device_authorization_url != NULL &&
        p->device_authorization_url[0] != '\0') {
        if ((*url = po_strdup(p->device_authorization_url)) == NULL)
            return po_fail(err, PO_NOMEM, "out of memory");
        return PO_OK;
    }
    if (p->issuer == NULL || p->issuer[0] == '\0')
        return po_fail(err, PO_CONFIG,
                       "profile %s: no device authorization endpoint: set "
                       "device_authorization_url, or issuer (whose OpenID "
                       "discovery document names it)",
                       p->name != NULL ? p->name : "?");
    request_opts(p, deadline_ms, log, &opts);
    po_err_clear(&e);
    rc = po_discovery_url(&opts, p->issuer, "device_authorization_endpoint",
                          url, &e);
    if (rc == PO_NOT_FOUND) {
        /* the issuer does not offer the device grant (RFC 8628 4) */
        char msg[sizeof(e.msg)];
        memcpy(msg, e.msg, sizeof(msg));
        rc = po_fail(&e, PO_CONFIG,
                     "%s; the issuer does not offer the device grant, or "
                     "set device_authorization_url",
                     msg);
    }
    if (err != NULL && rc != PO_OK)
        *err = e;
    return rc;
}

po_rc po_device_start(const po_profile *p, uint64_t deadline_ms,
                      const po_log *log, po_device_auth *out, po_err *err)
{
    po_oauth_req req;
    po_http_opts opts;
    po_http_req hreq;
    po_http_resp resp;
    char *url = NULL, shown[256];
    uint64_t sent;
    po_rc rc;

    memset(out, 0, sizeof(*out));
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    po_buf_init(&resp.body, PO_HTTP_BODY_MAX, 1);
    if ((rc = po_device_endpoint(p, deadline_ms, log, &url, err)) != PO_OK ||
        (rc = po_http_check_url(url, p->allow_http, err)) != PO_OK ||
        (rc = po_oauth_build_device(p, url, &req, err)) != PO_OK)
        goto out;
    po_http_redact_url(url, shown, sizeof(shown));
    request_opts(p, deadline_ms, log, &opts);
    hreq = (po_http_req){
        .method = "POST",
        .url = req.url,
        .content_type = req.content_type,
        .body = req.body,
        .body_len = req.body_len,
        .authorization = req.authorization,
    };
    po_logf(log, LOG_DEBUG, "device authorization request to %s", shown);
    sent = po_mono_ms();
    if ((rc = po_http_request(&opts, &hreq, &resp, err)) != PO_OK)
        goto out;
    if ((rc = po_device_parse(resp.status, resp.body.data, resp.body.len,
                              p->allow_http, out, err)) != PO_OK)
        goto out;
    out->issued_ms = sent;
    po_logf(log, LOG_DEBUG,
            "device authorization from %s: code valid %ld s, polls every "
            "%ld s%s",
            shown, out->expires_in, out->interval,
            out->verification_uri_complete != NULL
                ? ", with verification_uri_complete"
                : "");
out:
    if (rc != PO_OK)
        po_logf(log, LOG_DEBUG, "device authorization request: %s: %s",
                po_rc_name(rc), err != NULL ? err->msg : "");
    po_oauth_req_free(&req);
    po_http_resp_free(&resp);
    free(url);
    return rc;
}

/* ------------------------------------------------------------------ */
/* what the user is told (RFC 8628 3.3, 3.3.1)                         */

long po_device_seconds_left(const po_device_auth *da, uint64_t deadline_ms,
                            uint64_t now_ms)
{
    uint64_t end = deadline_ms;

    if (da->issued_ms != 0 &&
        da->issued_ms + (uint64_t)da->expires_in * 1000u < end)
        end = da->issued_ms + (uint64_t)da->expires_in * 1000u;
    return end > now_ms ? (long)((end - now_ms) / 1000u) : 0;
}

po_rc po_device_message(const po_device_auth *da, long seconds, int qr,
                        po_buf *out, po_err *qr_problem, po_err *err)
{
    const char *scan = da->verification_uri_complete != NULL
                           ? da->verification_uri_complete
                           : da->verification_uri;
    size_t before = out->len, mark;
    po_rc rc;

    if (qr_problem != NULL)
        po_err_clear(qr_problem);
    if (da->verification_uri_complete != NULL)
        rc = po_buf_printf(out,
                           "To log in, open %s\n"
                           "or open %s and enter the code %s",
                           da->verification_uri_complete, da->verification_uri,
                           da->user_code);
    else
        rc = po_buf_printf(out,
                           "To log in, open %s\n"
                           "and enter the code %s",
                           da->verification_uri, da->user_code);
    if (rc == PO_OK && seconds >= 120)
        rc = po_buf_printf(out, "\nThe code is valid for %ld minutes.",
                           (seconds + 30) / 60);
    else if (rc == PO_OK && seconds > 0)
        rc =
            po_buf_printf(out, "\nThe code is valid for %ld seconds.", seconds);
    if (rc != PO_OK) {
        if (out->data != NULL) {
            out->len = before;
            out->data[before] = '\0';
        }
        return po_fail(err, rc, "building the device login message: %s",
                       po_rc_name(rc));
    }
    if (!qr)
        return PO_OK;
    mark = out->len;
    if (po_buf_puts(out, "\nOr scan this QR code:\n") != PO_OK ||
        po_qr_text(scan, out, qr_problem) != PO_OK) {
        /* the text goes without the picture */
        if (qr_problem != NULL && qr_problem->rc == PO_OK)
            (void)po_fail(qr_problem, PO_TOO_LARGE,
                          "the QR code does not fit the message");
        out->len = mark;
        out->data[mark] = '\0';
        return PO_OK;
    }
    if (out->data[out->len - 1] == '\n') /* no trailing newline */
        out->data[--out->len] = '\0';
    return PO_OK;
}

/* ------------------------------------------------------------------ */
/* polling (RFC 8628 3.4, 3.5)                                         */

/* Wait ms, or until the caller's wait says stop (nonzero). */
static int wait_ms(const po_device_poll_opts *o, uint64_t ms)
{
    if (ms == 0)
        return 0;
    if (o->wait != NULL)
        return o->wait(o->wait_ctx, ms);
    po_sleep_ms(ms);
    return 0;
}

int po_device_expired(const po_device_auth *da, uint64_t now_ms)
{
    return da->issued_ms != 0 &&
           now_ms >= da->issued_ms + (uint64_t)da->expires_in * 1000u;
}

po_rc po_device_poll(const po_profile *p, po_device_auth *da,
                     const po_device_poll_opts *opts, po_token *out,
                     po_device_stats *st, po_err *err)
{
    po_device_stats local;
    po_device_stats *s = st != NULL ? st : &local;
    po_grant_input g;
    po_err e, last_unavail;
    uint64_t deadline = opts->deadline_ms, expiry, last, now, wake;
    long backoff = 0; /* s: the wait after polls that reached nobody */
    int code_expires_first = 0;
    po_rc rc = PO_OK, unavail = PO_OK;

    memset(out, 0, sizeof(*out));
    memset(s, 0, sizeof(*s));
    po_err_clear(&e);
    po_err_clear(&last_unavail);
    if (da->device_code == NULL) {
        rc = po_fail(err, PO_USAGE, "no device code to poll with");
        goto out;
    }
    if (da->interval <= 0)
        da->interval = PO_DEVICE_INTERVAL_DEFAULT;
    if (da->issued_ms == 0)
        da->issued_ms = po_mono_ms();
    last = da->polled_ms != 0 ? da->polled_ms : da->issued_ms;
    expiry = da->issued_ms + (uint64_t)da->expires_in * 1000u;
    if (da->expires_in > 0 && expiry <= deadline) {
        deadline = expiry;
        code_expires_first = 1;
    }
    memset(&g, 0, sizeof(g));
    g.grant = PO_GRANT_DEVICE_CODE;
    g.device_code = da->device_code;

    for (;;) {
        long pause = backoff > 0 ? backoff : da->interval;
        now = po_mono_ms();
        if (now >= deadline)
            break;
        wake = last + (uint64_t)pause * 1000u;
        if (wake > now) {
            if (wake >= deadline) {
                /* no poll fits before the deadline: wait for it, then say
                 * so (a poll after the code's expiry is pointless) */
                if (wait_ms(opts, deadline - now))
                    goto interrupted;
                break;
            }
            if (wait_ms(opts, wake - now))
                goto interrupted;
        }
        last = da->polled_ms = po_mono_ms();
        s->polls++;
        rc = po_oauth_request(p, &g, request_deadline(p, deadline), 0,
                              (int64_t)time(NULL), opts->log, out, NULL, &e);
        switch (rc) {
        case PO_OK:
            goto out;
        case PO_AUTHORIZATION_PENDING:
            s->pending++;
            backoff = 0;
            unavail = PO_OK;
            continue;
        case PO_SLOW_DOWN:
            /* RFC 8628 3.5: +5 s for this and all later requests */
            s->slow_downs++;
            da->interval += PO_DEVICE_SLOW_DOWN_STEP;
            backoff = 0;
            unavail = PO_OK;
            po_logf(opts->log, LOG_DEBUG,
                    "device login: slow_down: polling every %ld s",
                    da->interval);
            continue;
        default:
            break;
        }
        if (po_rc_unavailable(rc) && rc != PO_MALFORMED_RESPONSE) {
            /* RFC 8628 3.5: back off exponentially and try again */
            s->failures++;
            backoff = backoff > 0 ? backoff * 2 : da->interval * 2;
            if (backoff > PO_DEVICE_BACKOFF_MAX)
                backoff = PO_DEVICE_BACKOFF_MAX;
            unavail = rc;
            last_unavail = e;
            po_logf(opts->log, LOG_DEBUG,
                    "device login: poll %u failed (%s: %s); next in %ld s",
                    s->polls, po_rc_name(rc), e.msg, backoff);
            continue;
        }
        /* access_denied, expired_token, invalid_client, ...: final */
        if (err != NULL)
            *err = e;
        goto out;
    }
    /* the deadline */
    if (unavail != PO_OK) {
        rc = unavail;
        if (err != NULL) {
            *err = last_unavail;
            err->rc = rc;
        }
    } else if (code_expires_first) {
        rc = po_fail(err, PO_EXPIRED_TOKEN,
                     "the device code expired after %ld s before the login "
                     "was approved",
                     da->expires_in);
    } else {
        rc = po_fail(err, PO_EXPIRED_TOKEN,
                     "the login was not approved within device_timeout "
                     "(%ld s)",
                     p->device_timeout > 0 ? p->device_timeout
                                           : DEFAULT_TIMEOUT_S);
    }
    goto out;
interrupted:
    rc = po_fail(err, PO_USAGE, "interrupted");
out:
    s->interval = da->interval;
    if (rc != PO_OK)
        po_token_free(out);
    return rc;
}

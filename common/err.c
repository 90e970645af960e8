/* err.c - result names, error recording and the logging sink. */
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static const char *const rc_names[PO_RC_COUNT] = {
    [PO_OK] = "ok",
    [PO_INVALID_GRANT] = "invalid_grant",
    [PO_INVALID_CLIENT] = "invalid_client",
    [PO_UNAUTHORIZED_CLIENT] = "unauthorized_client",
    [PO_INVALID_SCOPE] = "invalid_scope",
    [PO_INVALID_REQUEST] = "invalid_request",
    [PO_INTERACTION_REQUIRED] = "interaction_required",
    [PO_AUTHORIZATION_PENDING] = "authorization_pending",
    [PO_SLOW_DOWN] = "slow_down",
    [PO_ACCESS_DENIED] = "access_denied",
    [PO_EXPIRED_TOKEN] = "expired_token",
    [PO_RATE_LIMITED] = "rate_limited",
    [PO_SERVER_ERROR] = "server_error",
    [PO_NETWORK] = "network",
    [PO_TIMEOUT] = "timeout",
    [PO_TLS] = "tls",
    [PO_MALFORMED_RESPONSE] = "malformed_response",
    [PO_CONFIG] = "config",
    [PO_NOMEM] = "out_of_memory",
    [PO_IO] = "io",
    [PO_TOO_LARGE] = "too_large",
    [PO_LOCKED] = "locked",
    [PO_BUDGET] = "budget_exhausted",
    [PO_NOT_FOUND] = "not_found",
    [PO_USAGE] = "usage",
    [PO_JWT_MALFORMED] = "malformed_token",
    [PO_JWT_ALG_REFUSED] = "algorithm_refused",
    [PO_JWT_UNKNOWN_KEY] = "unknown_key",
    [PO_JWT_BAD_SIGNATURE] = "bad_signature",
    [PO_JWT_EXPIRED] = "expired",
    [PO_JWT_NOT_YET_VALID] = "not_yet_valid",
    [PO_JWT_WRONG_ISSUER] = "wrong_issuer",
    [PO_JWT_WRONG_AUDIENCE] = "wrong_audience",
    [PO_JWT_WRONG_TYPE] = "wrong_type",
    [PO_JWT_MISSING_CLAIM] = "missing_claim",
    [PO_TOKEN_INACTIVE] = "token_inactive",
    [PO_TOKEN_UNVERIFIED] = "token_unverified",
    [PO_USER_MISMATCH] = "user_mismatch",
};

const char *po_rc_name(po_rc rc)
{
    if ((int)rc < 0 || rc >= PO_RC_COUNT || rc_names[rc] == NULL)
        return "unknown";
    return rc_names[rc];
}

po_rc po_rc_from_name(const char *name)
{
    int i;

    for (i = 0; name != NULL && i < PO_RC_COUNT; i++)
        if (rc_names[i] != NULL && strcmp(rc_names[i], name) == 0)
            return (po_rc)i;
    return PO_RC_COUNT;
}

int po_rc_unavailable(po_rc rc)
{
    switch (rc) {
    case PO_RATE_LIMITED:
    case PO_SLOW_DOWN:
    case PO_SERVER_ERROR:
    case PO_NETWORK:
    case PO_TIMEOUT:
    case PO_TLS:
    case PO_MALFORMED_RESPONSE:
        return 1;
    default:
        return 0;
    }
}

po_rc po_fail(po_err *err, po_rc rc, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return rc;
    err->rc = rc;
    va_start(ap, fmt);
    (void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return rc;
}

void po_err_append(po_err *err, const char *fmt, ...)
{
    size_t used;
    va_list ap;

    if (err == NULL)
        return;
    used = strnlen(err->msg, sizeof(err->msg));
    if (used + 1 >= sizeof(err->msg))
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err->msg + used, sizeof(err->msg) - used, fmt, ap);
    va_end(ap);
}

void po_safe_text(const char *s, char *out, size_t n)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i + 4 < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i] != '\0' && i + 4 >= n) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

void po_oom_reset(void)
{
    errno = 0;
}

int po_out_of_memory(void)
{
    return errno == ENOMEM;
}

void po_err_clear(po_err *err)
{
    if (err == NULL)
        return;
    err->rc = PO_OK;
    err->http_status = 0;
    err->retry_after = 0;
    err->msg[0] = '\0';
}

void po_logf(const po_log *log, int priority, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (log == NULL || log->fn == NULL)
        return;
    if (priority == LOG_DEBUG && !log->debug)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log->fn(log->ctx, priority, line);
}

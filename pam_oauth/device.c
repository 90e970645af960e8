/*
 * device.c - a PAM login with the device authorization grant (RFC 8628):
 * grant = device, or the password grant handing over to it
 * (password_fallback = device).
 *
 * The user is shown the URL and the code (and a QR code with device_qr)
 * in one PAM_TEXT_INFO message, then, with device_prompt (the default),
 * asked "Press Enter once you have approved the login:" with a
 * PAM_PROMPT_ECHO_ON prompt.  The prompt is there for sshd: its
 * keyboard-interactive conversation keeps PAM_TEXT_INFO messages until the
 * module's next prompt and sends them with it, so a module that shows the
 * code and polls at once shows an ssh user nothing until it is over
 * (that is why pam_oauth2_device and SSSD's idp provider prompt too).
 *
 * Pressing Enter early does no harm: polling starts, and goes on while the
 * user approves; when POLL_ROUND intervals (30 s at the usual 5 s) pass
 * without an answer, the user is asked again, with a reminder, until the
 * deadline.  Each poll keeps the interval (slow_down's +5 s included)
 * across the rounds.  The answer typed at the prompt is ignored (and
 * cleansed).
 *
 * Whoever approves the code gets the token: the caller (auth.c) accepts
 * it only after verification binds it to the user (verify = jwt,
 * introspect or auto; user_claim equal to the mapped user name), which
 * po_profile_validate_pam makes a configuration requirement; this file
 * refuses to start without it as well.
 */
#define _GNU_SOURCE /* strcasestr */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include <security/pam_ext.h>

#include "device.h"
#include "internal.h"
#include "secret.h"
#include "util.h"

#define MESSAGE_MAX (64 * 1024)
#define POLL_ROUND 6 /* polls after Enter without an answer, then ask again */

static const char prompt_first[] =
    "Press Enter once you have approved the login: ";
static const char prompt_again[] =
    "The login has not been approved yet. Approve it with the code above, "
    "then press Enter: ";

int po_pam_device_fallback(const po_pam_args *args, po_rc rc,
                           const po_oauth_error *oe, const char *what)
{
    const po_profile *p = args->profile;
    const char *list = p->device_fallback_on, *s, *end;
    char entry[256];
    size_t n;

    if (p->password_fallback != PO_FALLBACK_DEVICE)
        return 0;
    if (rc == PO_INTERACTION_REQUIRED) {
        po_logf(&args->log, LOG_NOTICE,
                "%s: the identity provider wants more than the password "
                "(%s): continuing with a device login",
                what, oe != NULL && oe->code[0] != '\0' ? oe->code : "?");
        return 1;
    }
    if (rc != PO_INVALID_GRANT || list == NULL || oe == NULL ||
        oe->description[0] == '\0')
        return 0;
    /* device_fallback_on: '|'-separated texts, each matched (ignoring
     * case) anywhere in the description; a wrong password matches none */
    for (s = list; *s != '\0'; s = *end == '|' ? end + 1 : end) {
        end = s + strcspn(s, "|");
        while (s < end && (*s == ' ' || *s == '\t'))
            s++;
        n = (size_t)(end - s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == 0 || n >= sizeof(entry))
            continue;
        memcpy(entry, s, n);
        entry[n] = '\0';
        if (strcasestr(oe->description, entry) != NULL) {
            po_logf(&args->log, LOG_NOTICE,
                    "%s: invalid_grant \"%s\" is listed in "
                    "device_fallback_on (\"%s\"): continuing with a device "
                    "login",
                    what, oe->description, entry);
            return 1;
        }
    }
    return 0;
}

/* Ask the user to press Enter.  PAM_SUCCESS, or the conversation's
 * failure (logged; over sshd's password authentication, which answers no
 * prompt with echo, it says what to configure). */
static int ask_enter(const po_pam_args *args, const char *text,
                     const char *what)
{
    char *resp = NULL;
    int pamret;

    pamret = pam_prompt(args->pamh, PAM_PROMPT_ECHO_ON, &resp, "%s", text);
    po_secret_free(resp); /* whatever was typed: not used */
    if (pamret == PAM_SUCCESS)
        return PAM_SUCCESS;
    po_logf(&args->log, LOG_ERR,
            "%s: device login: the Enter prompt got no answer (%s): the user "
            "went away, or the application answers no prompt with echo "
            "(sshd's password authentication: use KbdInteractiveAuthentication "
            "yes; other programs that show messages at once: device_prompt = "
            "no)",
            what, pam_strerror(args->pamh, pamret));
    return pamret == PAM_CONV_AGAIN ? PAM_CONV_ERR : pamret;
}

/* Tell the user (PAM_ERROR_MSG) how the login ended, unless PAM_SILENT. */
static void tell(const po_pam_args *args, const char *msg)
{
    if (!(args->flags & PAM_SILENT))
        (void)pam_error(args->pamh, "%s", msg);
}

int po_pam_device_login(po_pam_args *args, const char *what, int fallback,
                        po_token *out)
{
    po_profile *p = args->profile;
    po_device_auth da;
    po_device_poll_opts opts;
    po_device_stats st, total;
    po_buf msg;
    po_err err, qerr;
    uint64_t deadline, now;
    int pamret = PAM_SUCCESS, rounds = 0;
    po_rc rc;

    memset(out, 0, sizeof(*out));
    memset(&da, 0, sizeof(da));
    memset(&total, 0, sizeof(total));
    po_buf_init(&msg, MESSAGE_MAX, 0);
    po_err_clear(&err);
    if (p->verify == PO_VERIFY_NONE) {
        /* po_profile_validate_pam refuses this profile already */
        po_logf(&args->log, LOG_ERR,
                "%s: a device login needs verify = jwt, introspect or auto: "
                "refused",
                what);
        pamret = PAM_SERVICE_ERR;
        goto out;
    }
    deadline = po_device_deadline(p, po_mono_ms());
    po_logf(&args->log, LOG_DEBUG, "%s: device login%s", what,
            fallback ? " (after the password grant)" : "");
    if ((rc = po_device_start(p, deadline, &args->log, &da, &err)) != PO_OK) {
        pamret = po_pam_map_rc(args, rc, &err, what);
        goto out;
    }
    if (fallback &&
        po_buf_puts(&msg, "Your identity provider asks for more than a "
                          "password.\n") != PO_OK) {
        pamret = PAM_BUF_ERR;
        goto out;
    }
    rc = po_device_message(&da,
                           po_device_seconds_left(&da, deadline, po_mono_ms()),
                           p->device_qr, &msg, &qerr, &err);
    if (rc != PO_OK) {
        pamret = po_pam_map_rc(args, rc, &err, what);
        goto out;
    }
    if (p->device_qr && qerr.rc != PO_OK)
        po_logf(&args->log, LOG_WARNING, "%s: %s", what, qerr.msg);
    /* The code must reach the user, PAM_SILENT or not. */
    if ((pamret = pam_info(args->pamh, "%s", msg.data)) != PAM_SUCCESS) {
        po_logf(&args->log, LOG_ERR,
                "%s: device login: cannot show the code to the user (%s)", what,
                pam_strerror(args->pamh, pamret));
        goto out;
    }
    po_logf(&args->log, LOG_DEBUG,
            "%s: device login: code %s shown, valid %ld s, polling every "
            "%ld s",
            what, da.user_code,
            po_device_seconds_left(&da, deadline, po_mono_ms()), da.interval);

    memset(&opts, 0, sizeof(opts));
    opts.log = &args->log;
    for (;;) {
        if (p->device_prompt &&
            (pamret = ask_enter(args, rounds == 0 ? prompt_first : prompt_again,
                                what)) != PAM_SUCCESS)
            goto out;
        rounds++;
        now = po_mono_ms();
        opts.deadline_ms = deadline;
        if (p->device_prompt &&
            now + (uint64_t)(POLL_ROUND * da.interval) * 1000u < deadline)
            opts.deadline_ms =
                now + (uint64_t)(POLL_ROUND * da.interval) * 1000u;
        po_err_clear(&err); /* http_status 0 tells our deadline apart */
        rc = po_device_poll(p, &da, &opts, out, &st, &err);
        total.polls += st.polls;
        total.slow_downs += st.slow_downs;
        total.failures += st.failures;
        if (rc == PO_EXPIRED_TOKEN && opts.deadline_ms < deadline &&
            err.http_status == 0 && !po_device_expired(&da, po_mono_ms()))
            continue; /* this round is over, the login is not: ask again */
        break;
    }
    po_logf(&args->log, LOG_DEBUG,
            "%s: device login: %u poll(s), %u slow_down, %u unanswered, %d "
            "prompt(s); interval %ld s",
            what, total.polls, total.slow_downs, total.failures, rounds,
            da.interval);
    switch (rc) {
    case PO_OK:
        break;
    case PO_ACCESS_DENIED:
        tell(args, "The login was denied.");
        pamret = po_pam_map_rc(args, rc, &err, what);
        goto out;
    case PO_EXPIRED_TOKEN:
        tell(args, "The login was not approved in time.");
        pamret = po_pam_map_rc(args, rc, &err, what);
        goto out;
    default:
        pamret = po_pam_map_rc(args, rc, &err, what);
        goto out;
    }
out:
    if (pamret != PAM_SUCCESS)
        po_token_free(out);
    po_device_auth_free(&da);
    po_buf_free(&msg);
    return pamret;
}

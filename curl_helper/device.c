/*
 * device.c - `oauth-token login --device`: the device authorization grant
 * (RFC 8628) on a terminal.
 *
 * The user is told what to do on standard error: the URL and the code
 * (and a QR code when device_qr is set and standard error is a terminal),
 * or, with --format json, one line of JSON a program can read:
 *   {"user_code":..,"verification_uri":..,"verification_uri_complete":..,
 *    "expires_in":N,"interval":N}
 * Standard output receives nothing but the token, once the login is
 * approved (like `oauth-token get`, bare or with --format json), so that
 * TOKEN=$(oauth-token login --device) works.
 *
 * While it waits, SIGINT, SIGTERM, SIGHUP and SIGQUIT stop the login: they
 * are blocked except while waiting between polls (ppoll), so a Ctrl-C
 * during a request takes effect when the request is over (bounded by the
 * profile's timeout).  Nothing is stored, the dispositions are restored
 * and the signal is raised again, so the shell sees how we ended.  The
 * terminal's modes are never changed.
 */
#define _GNU_SOURCE /* ppoll */
#include "helper.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "util.h"

#define MESSAGE_MAX (64 * 1024)

static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
    caught = sig;
}

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NSTOP (sizeof(stop_signals) / sizeof(stop_signals[0]))

typedef struct device_ui {
    ot_ctx *c;
    sigset_t waitmask; /* the mask while waiting: stop signals open */
    int json;
} device_ui;

/* Wait ms or until a stop signal arrives (nonzero: stop). */
static int wait_stop(void *ctx, uint64_t ms)
{
    device_ui *ui = ctx;
    uint64_t end = po_mono_ms() + ms, now;
    struct timespec ts;

    while (!caught && (now = po_mono_ms()) < end) {
        ts.tv_sec = (time_t)((end - now) / 1000u);
        ts.tv_nsec = (long)((end - now) % 1000u) * 1000000L;
        if (ppoll(NULL, 0, &ts, &ui->waitmask) == -1 && errno != EINTR)
            break;
    }
    return caught != 0;
}

/* The JSON line: what a program needs to show the user. */
static po_rc show_json(const po_device_auth *da, long seconds, po_buf *b)
{
    po_rc rc;

    if ((rc = po_buf_puts(b, "{\"user_code\":")) == PO_OK)
        rc = po_json_quote(b, da->user_code);
    if (rc == PO_OK)
        rc = po_buf_puts(b, ",\"verification_uri\":");
    if (rc == PO_OK)
        rc = po_json_quote(b, da->verification_uri);
    if (rc == PO_OK)
        rc = po_buf_puts(b, ",\"verification_uri_complete\":");
    if (rc == PO_OK)
        rc = da->verification_uri_complete != NULL
                 ? po_json_quote(b, da->verification_uri_complete)
                 : po_buf_puts(b, "null");
    if (rc == PO_OK)
        rc = po_buf_printf(b, ",\"expires_in\":%ld,\"interval\":%ld}\n",
                           seconds, da->interval);
    return rc;
}

static po_rc show(void *ctx, const po_device_auth *da, long seconds,
                  po_err *err)
{
    device_ui *ui = ctx;
    const po_profile *p = ui->c->profile;
    int qr = p->device_qr && isatty(STDERR_FILENO);
    po_err qerr;
    po_buf b;
    po_rc rc;

    po_buf_init(&b, MESSAGE_MAX, 0);
    if (ui->json) {
        if ((rc = show_json(da, seconds, &b)) != PO_OK) {
            rc = po_fail(err, rc, "building the output: %s", po_rc_name(rc));
            goto out;
        }
    } else {
        if ((rc = po_device_message(da, seconds, qr, &b, &qerr, err)) !=
                PO_OK ||
            (rc = po_buf_puts(&b, "\n")) != PO_OK)
            goto out;
        if (qr && qerr.rc != PO_OK)
            po_logf(&ui->c->log, LOG_WARNING, "%s", qerr.msg);
        if (p->device_qr && !qr)
            po_logf(&ui->c->log, LOG_DEBUG,
                    "no QR code: standard error is not a terminal");
    }
    rc = ot_write_all(STDERR_FILENO, b.data, b.len, err);
out:
    po_buf_free(&b);
    return rc;
}

po_rc ot_device_login(ot_ctx *c, po_err *err)
{
    struct sigaction sa, old[NSTOP];
    sigset_t block, oldmask;
    po_flow_device_ui fui;
    po_device_stats st;
    device_ui ui;
    po_token t;
    char when[64];
    size_t i;
    int sig;
    po_rc rc;

    memset(&t, 0, sizeof(t));
    memset(&ui, 0, sizeof(ui));
    ui.c = c;
    ui.json = c->opts.format == OT_FORMAT_JSON;

    caught = 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a signal ends the wait */
    sigemptyset(&block);
    for (i = 0; i < NSTOP; i++)
        sigaddset(&block, stop_signals[i]);
    (void)sigprocmask(SIG_BLOCK, &block, &oldmask);
    for (i = 0; i < NSTOP; i++)
        (void)sigaction(stop_signals[i], &sa, &old[i]);
    ui.waitmask = oldmask;
    for (i = 0; i < NSTOP; i++)
        sigdelset(&ui.waitmask, stop_signals[i]);

    fui.show = show;
    fui.wait = wait_stop;
    fui.ctx = &ui;
    rc = po_flow_device_login(&c->flow, &fui,
                              c->opts.force ? PO_FLOW_IGNORE_BUDGET : 0, &t,
                              &st, err);
    po_logf(&c->log, LOG_DEBUG,
            "device login: %u poll(s), %u pending, %u slow_down, %u "
            "unanswered; interval %ld s at the end",
            st.polls, st.pending, st.slow_downs, st.failures, st.interval);
    if (caught) {
        po_token_free(&t);
        rc = po_fail(err, PO_USAGE, "login cancelled; nothing was stored");
    }
    if (rc == PO_OK && !po_token_text_ok(t.access_token)) {
        int done;
        (void)po_flow_invalidate(&c->flow, t.access_token, &done, NULL);
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "the access token holds characters not allowed in an "
                     "HTTP header (space, control or non-ASCII); refused and "
                     "dropped from the cache");
    }
    if (rc == PO_OK) {
        po_format_utc(t.expires_at, when, sizeof(when));
        if (!ui.json)
            ot_error(c, "logged in; token valid until %s%s", when,
                     t.refresh_token != NULL ? ", refresh token cached" : "");
        rc = ot_print_token(c, &t, err);
    }

    for (i = 0; i < NSTOP; i++)
        (void)sigaction(stop_signals[i], &old[i], NULL);
    (void)sigprocmask(SIG_SETMASK, &oldmask, NULL);
    po_token_free(&t);
    if ((sig = caught) != 0) {
        caught = 0;
        for (i = 0; i < NSTOP && stop_signals[i] != sig; i++)
            ;
        if (i < NSTOP && old[i].sa_handler != SIG_IGN) {
            /* we end by the signal: say why first */
            ot_error(c, "%s", "login cancelled; nothing was stored");
            (void)raise(sig); /* with its original disposition */
        }
    }
    return rc;
}

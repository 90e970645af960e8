/* test_http.c - URL rules, redaction, and po_http_request against a
 * scripted plain-HTTP server on 127.0.0.1 (allow_http), for the retry,
 * Retry-After, redirect, size-cap, timeout and signal-mask behaviour.
 * TLS and the vendor endpoints are covered by the integration tests. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* po_http_check_url                                                   */

static void test_check_url(void **state)
{
    static const struct {
        const char *url;
        int allow_http;
        po_rc rc;
        const char *msg_part;
    } cases[] = {
        {"https://auth.example.test/oauth/token", 0, PO_OK, NULL},
        {"HTTPS://Auth.Example.Test/x", 0, PO_OK, NULL},
        {"https://a.test", 0, PO_OK, NULL},
        {"https://a.test:8443/x?y=1&z=%20", 0, PO_OK, NULL},
        {"https://a.test?x=1", 0, PO_OK, NULL},
        {"https://[2001:db8::1]:443/t", 0, PO_OK, NULL},
        {"https://127.0.0.1/t", 0, PO_OK, NULL},
        {"http://127.0.0.1:8080/t", 1, PO_OK, NULL},
        {"http://127.1.2.3/t", 1, PO_OK, NULL},
        {"http://127.255.255.255/", 1, PO_OK, NULL},
        {"http://localhost/t", 1, PO_OK, NULL},
        {"HTTP://LocalHost:80/t", 1, PO_OK, NULL},
        {"http://[::1]:8080/t", 1, PO_OK, NULL},
        {"http://[0:0:0:0:0:0:0:1]/t", 1, PO_OK, NULL},
        /* http:// */
        {"http://127.0.0.1:8080/t", 0, PO_CONFIG, "http:// refused"},
        {"http://localhost/t", 0, PO_CONFIG, "http:// refused"},
        {"http://auth.example.test/t", 1, PO_CONFIG, "loopback host"},
        {"http://128.0.0.1/t", 1, PO_CONFIG, "loopback host"},
        {"http://10.0.0.1/t", 1, PO_CONFIG, "loopback host"},
        {"http://127.0.0.1.evil.test/t", 1, PO_CONFIG, "loopback host"},
        {"http://localhost.evil.test/t", 1, PO_CONFIG, "loopback host"},
        {"http://127.1/t", 1, PO_CONFIG, "loopback host"},
        {"http://0x7f000001/t", 1, PO_CONFIG, "loopback host"},
        {"http://2130706433/t", 1, PO_CONFIG, "loopback host"},
        {"http://[::ffff:127.0.0.1]/t", 1, PO_CONFIG, "loopback host"},
        {"http://[::2]/t", 1, PO_CONFIG, "loopback host"},
        {"http://evil.test#@127.0.0.1/", 1, PO_CONFIG, "loopback host"},
        {"http://evil.test?@127.0.0.1/", 1, PO_CONFIG, "loopback host"},
        /* other schemes and shapes */
        {"ftp://a.test/t", 1, PO_CONFIG, "scheme not allowed"},
        {"ldaps://a.test/t", 0, PO_CONFIG, "scheme not allowed"},
        {"httpss://a.test/t", 0, PO_CONFIG, "scheme not allowed"},
        {"file:///etc/shadow", 0, PO_CONFIG, "no host name"},
        {"https:///path", 0, PO_CONFIG, "no host name"},
        {"https://:443/path", 0, PO_CONFIG, "no host name"},
        {"https://[]/path", 0, PO_CONFIG, "no host name"},
        {"https://a.test:44x/t", 0, PO_CONFIG, "bad port"},
        {"https://[::1/t", 0, PO_CONFIG, "not an absolute"},
        {"https://[::1]x/t", 0, PO_CONFIG, "not an absolute"},
        {"//a.test/t", 0, PO_CONFIG, "not an absolute"},
        {"a.test/oauth/token", 0, PO_CONFIG, "not an absolute"},
        {"https:/a.test/t", 0, PO_CONFIG, "not an absolute"},
        {"https://a\\b.test/t", 0, PO_CONFIG, "backslash"},
        {"https://user:pw@a.test/t", 0, PO_CONFIG, "user name or password"},
        {"https://a.test@evil.test/t", 0, PO_CONFIG, "user name or password"},
        {"http://127.0.0.1:80@evil.test/", 1, PO_CONFIG,
         "user name or password"},
        {"https://a.test/p ath", 0, PO_CONFIG, "space or control"},
        {" https://a.test/t", 0, PO_CONFIG, "space or control"},
        {"https://a.test/t\n", 0, PO_CONFIG, "space or control"},
        {"https://a.test/t\x7f", 0, PO_CONFIG, "space or control"},
        {"https://a.test/t?x=\x01", 0, PO_CONFIG, "space or control"},
        {"", 0, PO_CONFIG, "empty"},
        {NULL, 0, PO_CONFIG, "empty"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_err err;

        po_err_clear(&err);
        print_message("case %zu\n", i);
        assert_int_equal(
            po_http_check_url(cases[i].url, cases[i].allow_http, &err),
            cases[i].rc);
        if (cases[i].rc != PO_OK) {
            assert_int_equal(err.rc, cases[i].rc);
            assert_non_null(strstr(err.msg, cases[i].msg_part));
            assert_null(strchr(err.msg, '\n'));
        }
    }
}

static void test_check_url_message_redacted(void **state)
{
    po_err err;

    (void)state;
    assert_int_equal(
        po_http_check_url("https://user:hunter2@a.test/t?client_secret=s3c", 0,
                          &err),
        PO_CONFIG);
    assert_string_equal(err.msg, "https://a.test/t: user name or password "
                                 "in the URL refused (use client_id and "
                                 "client_secret)");
    assert_int_equal(po_http_check_url("http://a.test/t?password=s3c", 1, &err),
                     PO_CONFIG);
    assert_string_equal(err.msg, "http://a.test/t: http:// is only allowed "
                                 "to a loopback host (127.0.0.0/8, ::1, "
                                 "localhost)");
    assert_int_equal(
        po_http_check_url("https://a.test/t?password=s 3c", 0, &err),
        PO_CONFIG);
    assert_string_equal(err.msg, "https://a.test/t: URL contains a space or "
                                 "control character");
}

/* ------------------------------------------------------------------ */
/* po_http_redact_url                                                  */

static void test_redact_url(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"https://a.test/x?y=1", "https://a.test/x"},
        {"https://u:p@a.test:8443/x/y?q=s#f", "https://a.test:8443/x/y"},
        {"https://a.test@b.test/x", "https://b.test/x"},
        {"https://a.test#frag?x", "https://a.test"},
        {"https://a.test?password=x", "https://a.test"},
        {"https://[::1]:8443/t?x", "https://[::1]:8443/t"},
        {"https://a.test/p ath\n", "https://a.test/p%20ath%0A"},
        {"https://a.test/\x1b[31m", "https://a.test/%1B[31m"},
        {"not a url?secret", "not%20a%20url"},
        {"u:p@host/x?y", "host/x"},
        {"", ""},
    };
    char out[256];
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_http_redact_url(cases[i].in, out, sizeof(out));
        assert_string_equal(out, cases[i].out);
    }
    po_http_redact_url(NULL, out, sizeof(out));
    assert_string_equal(out, "");
    /* truncated to the buffer, an escape never cut in half */
    po_http_redact_url("https://a.test/abcdef", out, 10);
    assert_string_equal(out, "https://a");
    po_http_redact_url("https://a.test/ab cd", out, 19);
    assert_string_equal(out, "https://a.test/ab");
    po_http_redact_url("https://a.test/x", out, 1);
    assert_string_equal(out, "");
}

/* ------------------------------------------------------------------ */
/* a scripted HTTP/1.1 server on 127.0.0.1                             */

enum act { SEND, STALL, CLOSE_EARLY };

typedef struct step {
    enum act act;
    const char *response; /* SEND: the raw response; others: ignored */
    size_t pad;           /* SEND: bytes of 'x' appended after it */
} step;

typedef struct server {
    int fd;
    int port;
    pthread_t thread;
    const step *steps;
    size_t nsteps;
    size_t served;
    char requests[8][8192]; /* what arrived, for assertions */
} server;

static void read_request(int c, char *buf, size_t n)
{
    size_t used = 0;
    long want = -1;
    char *hdr_end;

    buf[0] = '\0';
    while (used + 1 < n) {
        struct pollfd p = {c, POLLIN, 0};
        ssize_t r;
        if (poll(&p, 1, 5000) <= 0)
            break;
        r = read(c, buf + used, n - 1 - used);
        if (r <= 0)
            break;
        used += (size_t)r;
        buf[used] = '\0';
        if ((hdr_end = strstr(buf, "\r\n\r\n")) != NULL) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (want < 0)
                want = (long)(hdr_end + 4 - buf) +
                       (cl != NULL ? strtol(cl + 17, NULL, 10) : 0);
            if ((long)used >= want)
                break;
        }
    }
}

static void write_all(int c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *serve(void *arg)
{
    server *s = arg;
    size_t i;

    for (i = 0; i < s->nsteps; i++) {
        const step *st = &s->steps[i];
        char pad[4096];
        size_t left;
        int c = accept(s->fd, NULL, NULL);

        if (c < 0)
            break;
        read_request(c, s->requests[i < 8 ? i : 7], sizeof(s->requests[0]));
        s->served++;
        if (st->act == STALL) {
            /* wait until the client gives up */
            char b;
            struct pollfd p = {c, POLLIN, 0};
            (void)poll(&p, 1, 10000);
            if (read(c, &b, 1) < 0)
                b = 0;
        } else if (st->act == CLOSE_EARLY) {
            const char *partial = "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n"
                                  "Content-Type: application/json\r\n\r\n"
                                  "{\"access_token\":\"trunc";
            write_all(c, partial, strlen(partial));
        } else {
            write_all(c, st->response, strlen(st->response));
            memset(pad, 'x', sizeof(pad));
            for (left = st->pad; left > 0;) {
                size_t n = left < sizeof(pad) ? left : sizeof(pad);
                write_all(c, pad, n);
                left -= n;
            }
        }
        close(c);
    }
    return NULL;
}

static void server_start(server *s, const step *steps, size_t n)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int one = 1;

    memset(s, 0, sizeof(*s));
    s->steps = steps;
    s->nsteps = n;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    (void)setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(server *s)
{
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->thread, NULL);
}

typedef struct log_capture {
    char lines[16][1024];
    int prio[16];
    int n;
} log_capture;

static void capture(void *ctx, int priority, const char *msg)
{
    log_capture *c = ctx;

    if (c->n < 16) {
        c->prio[c->n] = priority;
        snprintf(c->lines[c->n++], sizeof(c->lines[0]), "%s", msg);
    }
}

typedef struct run {
    po_rc rc;
    po_err err;
    po_http_resp resp;
    uint64_t ms;
    log_capture log;
} run;

/* POST to the server's /token?client_secret=qsecret with a secret body
 * and Authorization header. */
static void do_request(server *s, uint64_t budget_ms, int retries,
                       const char *content_type, run *r)
{
    char url[128];
    po_log log = {capture, &r->log, 1};
    po_http_opts opts = {NULL, 2000, 0, retries, 1, 0, &log, NULL, NULL, NULL};
    po_http_req req = {"POST",
                       url,
                       content_type,
                       content_type ? "password=bsecret" : NULL,
                       content_type ? 16 : 0,
                       "Basic YXNlY3JldA==",
                       NULL,
                       NULL};
    uint64_t t0 = po_mono_ms();

    memset(&r->log, 0, sizeof(r->log));
    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/token?client_secret=qsecret", s->port);
    opts.deadline_ms = t0 + budget_ms;
    po_err_clear(&r->err);
    r->rc = po_http_request(&opts, &req, &r->resp, &r->err);
    r->ms = po_mono_ms() - t0;
}

static void assert_no_secrets(const run *r)
{
    int i;

    for (i = 0; i < r->log.n; i++) {
        assert_null(strstr(r->log.lines[i], "secret"));
        assert_null(strstr(r->log.lines[i], "YXNlY3JldA"));
    }
    assert_null(strstr(r->err.msg, "secret"));
}

#define OK_JSON                                                                \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"                    \
    "Content-Length: 2\r\nConnection: close\r\n\r\n{}"

static void test_request_headers(void **state)
{
    static const step steps[] = {{SEND, OK_JSON, 0}, {SEND, OK_JSON, 0}};
    server s;
    run r;
    const char *q;

    (void)state;
    server_start(&s, steps, ARRAY_LEN(steps));
    do_request(&s, 5000, 0, "application/x-www-form-urlencoded", &r);
    assert_int_equal(r.rc, PO_OK);
    assert_int_equal(r.resp.status, 200);
    assert_int_equal(r.resp.attempts, 1);
    assert_string_equal(r.resp.body.data, "{}");
    assert_string_equal(r.resp.content_type, "application/json");
    assert_int_equal(r.resp.retry_after, -1);
    assert_int_equal(r.err.http_status, 200);
    po_http_resp_free(&r.resp);
    q = s.requests[0];
    assert_non_null(
        strstr(q, "POST /token?client_secret=qsecret HTTP/1.1\r\n"));
    assert_non_null(strstr(q, "\r\nUser-Agent: pam-oauth/" PO_VERSION "\r\n"));
    assert_non_null(strstr(q, "\r\nAccept: application/json\r\n"));
    assert_non_null(strstr(q, "\r\nAuthorization: Basic YXNlY3JldA==\r\n"));
    assert_non_null(strstr(q, "\r\nContent-Type: "
                              "application/x-www-form-urlencoded\r\n"));
    assert_non_null(strstr(q, "\r\nContent-Length: 16\r\n"));
    assert_null(strcasestr(q, "\r\nExpect:"));
    assert_non_null(strstr(q, "\r\n\r\npassword=bsecret"));

    /* query style: an empty POST without a Content-Type */
    do_request(&s, 5000, 0, NULL, &r);
    assert_int_equal(r.rc, PO_OK);
    po_http_resp_free(&r.resp);
    q = s.requests[1];
    assert_non_null(
        strstr(q, "POST /token?client_secret=qsecret HTTP/1.1\r\n"));
    assert_non_null(strstr(q, "\r\nContent-Length: 0\r\n"));
    assert_null(strcasestr(q, "\r\nContent-Type:"));
    server_stop(&s);
}

static void test_retry_5xx_then_ok(void **state)
{
    static const step steps[] = {
        {SEND, "HTTP/1.1 500 Internal\r\nContent-Length: 0\r\n\r\n", 0},
        {SEND, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", 0},
        {SEND, OK_JSON, 0},
    };
    server s;
    run r;
    int i;

    (void)state;
    server_start(&s, steps, ARRAY_LEN(steps));
    do_request(&s, 10000, 2, "application/json", &r);
    assert_int_equal(r.rc, PO_OK);
    assert_int_equal(r.resp.status, 200);
    assert_int_equal(r.resp.attempts, 3);
    /* backoff 200 ms and 400 ms, +-25 % */
    assert_true(r.ms >= 450);
    assert_int_equal(r.log.n, 2);
    for (i = 0; i < 2; i++)
        assert_int_equal(r.log.prio[i], LOG_INFO);
    assert_non_null(strstr(r.log.lines[0], "HTTP 500; retrying in"));
    assert_non_null(strstr(r.log.lines[0], "(attempt 2 of 3)"));
    assert_non_null(strstr(r.log.lines[1], "HTTP 502; retrying in"));
    assert_non_null(strstr(r.log.lines[1], "(attempt 3 of 3)"));
    assert_no_secrets(&r);
    po_http_resp_free(&r.resp);
    server_stop(&s);
}

static void test_retries_exhausted(void **state)
{
    static const step steps[] = {
        {SEND, "HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy", 0},
        {SEND, "HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy", 0},
    };
    server s;
    run r;

    (void)state;
    server_start(&s, steps, ARRAY_LEN(steps));
    do_request(&s, 10000, 1, "application/json", &r);
    /* a response was received: the caller interprets the 503 */
    assert_int_equal(r.rc, PO_OK);
    assert_int_equal(r.resp.status, 503);
    assert_int_equal(r.resp.attempts, 2);
    assert_string_equal(r.resp.body.data, "busy");
    po_http_resp_free(&r.resp);
    server_stop(&s);
}

/* The header parser alone: each line as libcurl hands it over. */
static void test_header_lines(void **state)
{
    /* Sun, 06 Nov 1994 08:49:37 GMT */
    static const int64_t when = 784111777;
    static const struct {
        const char *line;
        const char *content_type, *cache_control;
        long retry_after;
    } cases[] = {
        {"Content-Type: application/json\r\n", "application/json", "", -1},
        {"content-type:\t text/plain ; charset=x \r\n",
         "text/plain ; charset=x", "", -1},
        {"Cache-Control: max-age=60, public\r\n", "", "max-age=60, public", -1},
        {"Retry-After: 120\r\n", "", "", 120},
        {"Retry-After: 99999999999999999999\r\n", "", "", 366L * 86400},
        {"Retry-After: 12a\r\n", "", "", -1},
        {"Retry-After: \r\n", "", "", -1},
        {"Retry-After: Sun, 06 Nov 1994 08:50:37 GMT\r\n", "", "", 60},
        {"Retry-After: Sun, 06 Nov 1994 08:48:37 GMT\r\n", "", "", 0},
        {"Retry-After: Sun, 06 Foo 1994 08:50:37 GMT\r\n", "", "", -1},
        {"Retry-After: Sunday, 06-Nov-94 08:49:37 GMT\r\n", "", "", -1},
        {"X-Content-Type: a\r\n", "", "", -1},
        {"no colon at all\r\n", "", "", -1},
        {"\r\n", "", "", -1},
    };
    po_http_resp r;
    char longv[400];
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        memset(&r, 0, sizeof(r));
        r.retry_after = -1;
        po_http_header(&r, cases[i].line, strlen(cases[i].line), when);
        if (strcmp(r.content_type, cases[i].content_type) != 0 ||
            strcmp(r.cache_control, cases[i].cache_control) != 0 ||
            r.retry_after != cases[i].retry_after)
            fail_msg("\"%s\": \"%s\" \"%s\" %ld", cases[i].line, r.content_type,
                     r.cache_control, r.retry_after);
    }
    /* long values are cut to the field; a new status line clears all */
    memset(&r, 0, sizeof(r));
    memcpy(longv, "Cache-Control: ", 15);
    memset(longv + 15, 'x', sizeof(longv) - 15);
    po_http_header(&r, longv, sizeof(longv), when);
    assert_int_equal(strlen(r.cache_control), sizeof(r.cache_control) - 1);
    po_http_header(&r, "Retry-After: 5", 14, when);
    assert_int_equal(r.retry_after, 5);
    po_http_header(&r, "HTTP/1.1 200 OK\r\n", 17, when);
    assert_string_equal(r.cache_control, "");
    assert_int_equal(r.retry_after, -1);
    /* only n bytes are read */
    po_http_header(&r, "Retry-After: 77", 14, when);
    assert_int_equal(r.retry_after, 7);
}

static void test_retry_after(void **state)
{
    static char date_resp[256];
    step steps[] = {
        {SEND,
         "HTTP/1.1 429 Too Many\r\nRetry-After: 1\r\n"
         "Content-Length: 0\r\n\r\n",
         0},
        {SEND, date_resp, 0},
        {SEND, OK_JSON, 0},
    };
    server s;
    run r;
    struct tm tm;
    time_t when = time(NULL) + 2;
    char date[64];

    (void)state;
    gmtime_r(&when, &tm);
    /* IMF-fixdate, built without the locale */
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
    static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};
    snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
             days[tm.tm_wday], tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    snprintf(
        date_resp, sizeof(date_resp),
        "HTTP/1.1 503 Busy\r\nRetry-After: %s\r\nContent-Length: 0\r\n\r\n",
        date);
    server_start(&s, steps, ARRAY_LEN(steps));
    do_request(&s, 15000, 2, "application/json", &r);
    assert_int_equal(r.rc, PO_OK);
    assert_int_equal(r.resp.status, 200);
    assert_int_equal(r.resp.attempts, 3);
    /* 1 s, then about 2 s (the date has a 1 s resolution) */
    assert_true(r.ms >= 1000 + 900);
    assert_non_null(strstr(r.log.lines[0], "HTTP 429; retrying in 1000 ms"));
    assert_non_null(strstr(r.log.lines[1], "HTTP 503; retrying in"));
    po_http_resp_free(&r.resp);
    server_stop(&s);
}

static void test_retry_after_past_deadline(void **state)
{
    static const step steps[] = {
        {SEND,
         "HTTP/1.1 429 Too Many\r\nRetry-After: 30\r\n"
         "Content-Length: 0\r\n\r\n",
         0},
    };
    server s;
    run r;

    (void)state;
    server_start(&s, steps, ARRAY_LEN(steps));
    do_request(&s, 3000, 2, "application/json", &r);
    /* no sleep past the deadline: the 429 is the answer */
    assert_int_equal(r.rc, PO_OK);
    assert_int_equal(r.resp.status, 429);
    assert_int_equal(r.resp.retry_after, 30);
    assert_int_equal(r.resp.attempts, 1);
    assert_true(r.ms < 1000);
    assert_int_equal(r.log.n, 0);
    po_http_resp_free(&r.resp);
    server_stop(&s);
}

static void test_no_retry_4xx(void **state)
{
    static const step steps[] = {
        {SEND,
         "HTTP/1.1 400 Bad\r\nContent-Length: 25\r\n\r\n"
         "{\"error\":\"invalid_grant\"}",
         0},
    };
    server s;
    run r;

    (void)state;
    server_start(&s, steps, ARRAY_LEN(steps));
    do_request(&s, 3000, 2, "application/json", &r);
    assert_int_equal(r.rc, PO_OK);
    assert_int_equal(r.resp.status, 400);
    assert_int_equal(r.resp.attempts, 1);
    po_http_resp_free(&r.resp);
    server_stop(&s);
}

static void test_redirect_refused(void **state)
{
    static const step steps[] = {
        {SEND,
         "HTTP/1.1 302 Found\r\nLocation: https://evil.test/\r\n"
         "Content-Length: 0\r\n\r\n",
         0},
    };
    server s;
    run r;
    char want[128];

    (void)state;
    server_start(&s, steps, ARRAY_LEN(steps));
    do_request(&s, 3000, 2, "application/json", &r);
    assert_int_equal(r.rc, PO_MALFORMED_RESPONSE);
    assert_int_equal(r.resp.status, 302);
    assert_int_equal(r.err.http_status, 302);
    assert_int_equal(r.resp.attempts, 1);
    snprintf(want, sizeof(want),
             "POST http://127.0.0.1:%d/token: HTTP 302: redirect refused",
             s.port);
    assert_string_equal(r.err.msg, want);
    assert_null(r.resp.body.data);
    server_stop(&s);
}

static void test_body_cap(void **state)
{
    static const step steps[] = {
        /* announced too large */
        {SEND, "HTTP/1.1 200 OK\r\nContent-Length: 2097152\r\n\r\n", 2097152},
        /* not announced (read until close) */
        {SEND, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 2097152},
        /* exactly the cap is fine */
        {SEND, "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n", 1048576},
    };
    server s;
    run r;
    int i;

    (void)state;
    server_start(&s, steps, ARRAY_LEN(steps));
    for (i = 0; i < 2; i++) {
        do_request(&s, 5000, 2, "application/json", &r);
        assert_int_equal(r.rc, PO_MALFORMED_RESPONSE);
        assert_non_null(strstr(r.err.msg, "response body larger than 1 MiB"));
        assert_int_equal(r.resp.attempts, 1);
        assert_int_equal(r.resp.status, 200);
    }
    do_request(&s, 5000, 2, "application/json", &r);
    assert_int_equal(r.rc, PO_OK);
    assert_int_equal(r.resp.body.len, 1048576);
    po_http_resp_free(&r.resp);
    server_stop(&s);
}

static void test_stall_times_out(void **state)
{
    static const step steps[] = {{STALL, NULL, 0}};
    server s;
    run r;

    (void)state;
    server_start(&s, steps, ARRAY_LEN(steps));
    do_request(&s, 700, 2, "application/json", &r);
    assert_int_equal(r.rc, PO_TIMEOUT);
    assert_int_equal(r.resp.attempts, 1);
    assert_true(r.ms >= 650 && r.ms < 2000);
    assert_non_null(strstr(r.err.msg, "timed out (curl: "));
    assert_no_secrets(&r);
    server_stop(&s);
}

static void test_closed_mid_response(void **state)
{
    static const step steps[] = {{CLOSE_EARLY, NULL, 0},
                                 {CLOSE_EARLY, NULL, 0}};
    server s;
    run r;

    (void)state;
    server_start(&s, steps, ARRAY_LEN(steps));
    do_request(&s, 5000, 1, "application/json", &r);
    assert_int_equal(r.rc, PO_NETWORK);
    assert_int_equal(r.resp.attempts, 2);
    assert_null(r.resp.body.data);
    assert_int_equal(r.log.n, 1);
    assert_int_equal(r.log.prio[0], LOG_INFO);
    assert_non_null(strstr(r.log.lines[0], "network error"));
    assert_non_null(strstr(r.log.lines[0], "retrying in"));
    assert_no_secrets(&r);
    server_stop(&s);
}

static void test_connection_refused(void **state)
{
    server s;
    run r;
    char want[128];

    (void)state;
    /* a port nobody listens on: bind one, close it */
    server_start(&s, NULL, 0);
    server_stop(&s);
    do_request(&s, 10000, 2, "application/json", &r);
    assert_int_equal(r.rc, PO_NETWORK);
    assert_int_equal(r.resp.attempts, 3);
    assert_int_equal(r.resp.status, 0);
    assert_int_equal(r.err.http_status, 0);
    snprintf(want, sizeof(want),
             "POST http://127.0.0.1:%d/token: network "
             "error (curl: ",
             s.port);
    assert_memory_equal(r.err.msg, want, strlen(want));
    assert_int_equal(r.log.n, 2);
    assert_no_secrets(&r);
}

static void test_deadline_and_usage(void **state)
{
    po_http_opts opts = {NULL, 1000, 0, 2, 1, 0, NULL, NULL, NULL, NULL};
    po_http_req req = {
        "POST", "http://127.0.0.1:9/t?secret=x", NULL, NULL, 0, NULL, NULL,
        NULL};
    po_http_resp resp;
    po_err err;

    (void)state;
    opts.deadline_ms = 0;
    assert_int_equal(po_http_request(&opts, &req, &resp, &err), PO_USAGE);
    assert_int_equal(resp.attempts, 0);

    opts.deadline_ms = po_mono_ms() - 1;
    assert_int_equal(po_http_request(&opts, &req, &resp, &err), PO_TIMEOUT);
    assert_string_equal(err.msg, "POST http://127.0.0.1:9/t: deadline "
                                 "reached before attempt 1");
    assert_int_equal(resp.attempts, 0);

    opts.deadline_ms = po_mono_ms() + 1000;
    opts.allow_http = 0;
    assert_int_equal(po_http_request(&opts, &req, &resp, &err), PO_CONFIG);
    assert_int_equal(resp.attempts, 0);
    assert_null(strstr(err.msg, "secret"));

    req.method = "PUT";
    assert_int_equal(po_http_request(&opts, &req, &resp, &err), PO_USAGE);
    po_http_resp_free(&resp);
}

static void test_sigpipe_mask_restored(void **state)
{
    static const step steps[] = {{SEND, OK_JSON, 0}, {SEND, OK_JSON, 0}};
    server s;
    run r;
    sigset_t set, before, after;

    (void)state;
    server_start(&s, steps, ARRAY_LEN(steps));
    /* SIGPIPE unblocked before: unblocked after */
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    do_request(&s, 5000, 0, "application/json", &r);
    assert_int_equal(r.rc, PO_OK);
    po_http_resp_free(&r.resp);
    pthread_sigmask(SIG_BLOCK, NULL, &after);
    assert_false(sigismember(&after, SIGPIPE));

    /* blocked before: blocked after, and a pending SIGPIPE that was
     * there before stays pending */
    pthread_sigmask(SIG_BLOCK, &set, &before);
    raise(SIGPIPE);
    do_request(&s, 5000, 0, "application/json", &r);
    assert_int_equal(r.rc, PO_OK);
    po_http_resp_free(&r.resp);
    pthread_sigmask(SIG_BLOCK, NULL, &after);
    assert_true(sigismember(&after, SIGPIPE));
    sigpending(&after);
    assert_true(sigismember(&after, SIGPIPE));
    {
        const struct timespec zero = {0, 0};
        assert_int_equal(sigtimedwait(&set, NULL, &zero), SIGPIPE);
    }
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_url),
        cmocka_unit_test(test_check_url_message_redacted),
        cmocka_unit_test(test_redact_url),
        cmocka_unit_test(test_request_headers),
        cmocka_unit_test(test_retry_5xx_then_ok),
        cmocka_unit_test(test_retries_exhausted),
        cmocka_unit_test(test_header_lines),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_retry_after_past_deadline),
        cmocka_unit_test(test_no_retry_4xx),
        cmocka_unit_test(test_redirect_refused),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_stall_times_out),
        cmocka_unit_test(test_closed_mid_response),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_deadline_and_usage),
        cmocka_unit_test(test_sigpipe_mask_restored),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

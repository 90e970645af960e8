/*
 * fuzz_etcd - what etcd's v3 JSON gateway answers the shared store (the
 * fleet's token cache): a range, txn, lease grant or authenticate answer
 * (po_etcd_parse_answer), an error answer (po_etcd_parse_error) and one
 * message of a watch stream (po_etcd_parse_watch).  The same bytes go to
 * all three, as etcd.c may hand any answer to any of them.
 *
 * Input: the answer's body (a watch message without its framing newline).
 *
 * Properties: an answer is one object with nothing but white space after
 * it; decoded keys and values are NUL-terminated at their length; an
 * authenticate token is a NUL-terminated copy; an error's
 * message is printable ASCII and its gRPC code -1 or 0..100; a watch
 * message's events are all there with their keys; a failure leaves
 * nothing behind and says why in a printable message.
 */
#define _GNU_SOURCE
#include "fuzz.h"

#include "etcd.h"

static int printable_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static void check_kv(const po_etcd_kv *kv)
{
    FUZZ_CHECK(kv->key == NULL ? kv->key_len == 0
                               : kv->key[kv->key_len] == '\0',
               "key not terminated at its length");
    FUZZ_CHECK(kv->value == NULL ? kv->value_len == 0
                                 : kv->value[kv->value_len] == '\0',
               "value not terminated at its length");
}

static void answer(const char *body, size_t n)
{
    po_etcd_answer a;
    po_err err;
    po_rc rc;

    po_err_clear(&err);
    rc = po_etcd_parse_answer(body, n, &a, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc == PO_OK) {
        /* one object and nothing but white space after it */
        size_t end = n;
        while (end > 0 && body[end - 1] != '\0' &&
               strchr(" \t\r\n", body[end - 1]) != NULL)
            end--;
        FUZZ_CHECK(end > 0 && body[end - 1] == '}',
                   "accepted with something after the object");
        check_kv(&a.kv);
        FUZZ_CHECK(a.has_kv || (a.kv.key == NULL && a.kv.value == NULL),
                   "a kv without has_kv");
        FUZZ_CHECK(a.succeeded == 0 || a.succeeded == 1, "succeeded %d",
                   a.succeeded);
        FUZZ_CHECK(a.token == NULL ||
                       memmem(body, n, a.token, strlen(a.token)) != NULL ||
                       strchr(body, '\\') != NULL,
                   "a token that is not in the answer");
        po_etcd_answer_free(&a);
        FUZZ_CHECK(a.token == NULL && a.kv.key == NULL, "free left data");
    } else {
        FUZZ_CHECK(rc == PO_MALFORMED_RESPONSE || rc == PO_NOMEM, "answer: %s",
                   po_rc_name(rc));
        FUZZ_CHECK(err.rc == rc && strncmp(err.msg, "etcd ", 5) == 0,
                   "message \"%s\" does not name the answer", err.msg);
        FUZZ_CHECK(a.token == NULL && a.kv.key == NULL && a.kv.value == NULL &&
                       a.has_kv == 0,
                   "a failure left data");
    }
}

static void error_answer(const char *body, size_t n)
{
    char msg[200];
    int code = 12345;

    memset(msg, 'x', sizeof(msg));
    po_etcd_parse_error(body, n, &code, msg, sizeof(msg));
    FUZZ_CHECK(memchr(msg, '\0', sizeof(msg)) != NULL, "msg not terminated");
    FUZZ_CHECK(printable_ascii(msg), "error message not printable");
    FUZZ_CHECK(code == -1 || (code >= 0 && code <= 100), "code %d", code);
    /* a buffer of one byte, and none */
    po_etcd_parse_error(body, n, &code, msg, 1);
    FUZZ_CHECK(msg[0] == '\0', "a one-byte buffer holds text");
    po_etcd_parse_error(body, n, &code, NULL, 0);
}

static void watch(const char *body, size_t n)
{
    po_etcd_watch_msg m;
    po_err err;
    size_t i;
    po_rc rc;

    po_err_clear(&err);
    rc = po_etcd_parse_watch(body, n, &m, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc == PO_OK) {
        FUZZ_CHECK(memchr(m.error, '\0', sizeof(m.error)) != NULL &&
                       printable_ascii(m.error),
                   "watch error or cancel reason not printable");
        FUZZ_CHECK(m.error_code == -1 ||
                       (m.error_code >= 0 && m.error_code <= 100),
                   "error_code %d", m.error_code);
        FUZZ_CHECK(m.error_code == -1 || m.nevents == 0,
                   "events in an error message");
        FUZZ_CHECK(m.nevents == 0 || m.events != NULL, "%zu events, events %p",
                   m.nevents, (void *)m.events);
        for (i = 0; i < m.nevents; i++)
            FUZZ_CHECK(m.events[i].key == NULL
                           ? m.events[i].key_len == 0
                           : m.events[i].key[m.events[i].key_len] == '\0',
                       "event %zu's key not terminated", i);
        po_etcd_watch_msg_free(&m);
    } else {
        FUZZ_CHECK(rc == PO_MALFORMED_RESPONSE || rc == PO_NOMEM, "watch: %s",
                   po_rc_name(rc));
        FUZZ_CHECK(err.rc == rc && strncmp(err.msg, "etcd ", 5) == 0,
                   "message \"%s\" does not name the message", err.msg);
        FUZZ_CHECK(m.events == NULL && m.nevents == 0, "a failure left events");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    size_t n;
    char *body = fuzz_rest(&in, &n);

    answer(body, n);
    error_answer(body, n);
    watch(body, n);
    free(body);
    return 0;
}

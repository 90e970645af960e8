/*
 * fuzz_clients - what container and Kubernetes clients hand the helper:
 * a docker-credential-helpers store request (po_docker_parse_creds, from
 * docker, podman, skopeo...) and kubectl's KUBERNETES_EXEC_INFO
 * (po_kube_api_version); and the answers written back
 * (po_docker_creds_json, po_kube_credential) with what was read.
 *
 * Input: one byte (bit 0: KUBERNETES_EXEC_INFO, else a store request),
 * then the text.
 *
 * Properties: a parsed store request has a non-empty server URL and
 * strings without a NUL; get's answer for it decodes back (json-c) to the
 * same server, user name and secret, and parses again as a store request
 * to the same three; an apiVersion is one of the two supported, and an
 * ExecCredential written in it with the input as token decodes to that
 * apiVersion and token; messages are printable and never hold the secret.
 */
#define _GNU_SOURCE
#include "fuzz.h"

#include <json.h>

#include "dockercred.h"
#include "kube.h"
#include "secret.h"

static const char *member(json_object *o, const char *a, const char *b)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(o, a, &v))
        return NULL;
    if (b != NULL && !json_object_object_get_ex(v, b, &v))
        return NULL;
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                    : NULL;
}

static void store_request(const char *text, size_t n)
{
    po_docker_creds c, again;
    json_object *o;
    po_err err;
    po_buf b;
    po_rc rc;

    po_err_clear(&err);
    rc = po_docker_parse_creds(text, n, &c, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc != PO_OK) {
        FUZZ_CHECK(err.msg[0] != '\0', "no message for %s", po_rc_name(rc));
        return;
    }
    FUZZ_CHECK(c.server_url != NULL && c.server_url[0] != '\0' &&
                   c.username != NULL && c.secret != NULL,
               "store request without its members");
    FUZZ_CHECK(c.secret[0] == '\0' || strlen(c.secret) < 8 ||
                   strstr(err.msg, c.secret) == NULL,
               "the secret in a message");
    po_buf_init(&b, 256 * 1024, 1);
    rc = po_docker_creds_json(&b, c.server_url, c.username, c.secret);
    if (rc == PO_OK) {
        FUZZ_CHECK(b.len > 0 && b.data[b.len - 1] == '\n', "no newline");
        o = json_tokener_parse(b.data);
        FUZZ_CHECK(o != NULL, "get's answer is not JSON: %s", b.data);
        FUZZ_CHECK(member(o, "ServerURL", NULL) != NULL &&
                       strcmp(member(o, "ServerURL", NULL), c.server_url) ==
                           0 &&
                       member(o, "Username", NULL) != NULL &&
                       strcmp(member(o, "Username", NULL), c.username) == 0 &&
                       member(o, "Secret", NULL) != NULL &&
                       strcmp(member(o, "Secret", NULL), c.secret) == 0,
                   "get's answer does not decode to what was stored");
        json_object_put(o);
        rc = po_docker_parse_creds(b.data, b.len, &again, &err);
        FUZZ_CHECK(rc == PO_OK, "get's answer is not a store request: %s",
                   err.msg);
        FUZZ_CHECK(strcmp(again.server_url, c.server_url) == 0 &&
                       strcmp(again.username, c.username) == 0 &&
                       strcmp(again.secret, c.secret) == 0,
                   "store(get(x)) != x");
        po_docker_creds_free(&again);
    } else {
        FUZZ_CHECK(rc == PO_TOO_LARGE || rc == PO_NOMEM, "answer: %s",
                   po_rc_name(rc));
    }
    po_buf_free(&b);
    po_docker_creds_free(&c);
}

static void exec_info(const char *text, size_t n)
{
    const char *version = NULL;
    json_object *o;
    po_err err;
    po_buf b;
    po_rc rc;

    po_err_clear(&err);
    rc = po_kube_api_version(text, &version, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc != PO_OK) {
        FUZZ_CHECK(rc == PO_USAGE && err.msg[0] != '\0', "exec info: %s",
                   po_rc_name(rc));
        return;
    }
    FUZZ_CHECK(version != NULL && (strcmp(version, PO_KUBE_V1) == 0 ||
                                   strcmp(version, PO_KUBE_V1BETA1) == 0),
               "apiVersion %s", version ? version : "(null)");
    if (n == 0 || memchr(text, '\0', n) != NULL)
        return; /* the token below is the whole input */
    po_buf_init(&b, 2 * 1024 * 1024, 1);
    rc = po_kube_credential(&b, version, text, 1800000000, &err);
    if (rc == PO_OK) {
        o = json_tokener_parse(b.data);
        FUZZ_CHECK(o != NULL, "ExecCredential is not JSON");
        FUZZ_CHECK(
            member(o, "apiVersion", NULL) != NULL &&
                strcmp(member(o, "apiVersion", NULL), version) == 0 &&
                member(o, "status", "token") != NULL &&
                strcmp(member(o, "status", "token"), text) == 0,
            "ExecCredential does not decode to its apiVersion and token");
        json_object_put(o);
    }
    po_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    unsigned flags = fuzz_byte(&in);
    size_t n;
    char *text = fuzz_rest(&in, &n);

    if (flags & 1)
        exec_info(text, n);
    else
        store_request(text, n);
    free(text);
    return 0;
}

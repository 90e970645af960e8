/* discovery.c - one endpoint URL from an issuer's OpenID discovery
 * document. */
#define _GNU_SOURCE
#include "discovery.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"

#define URL_SHOWN_MAX 512
#define DOC_MAX (256 * 1024) /* bytes of a discovery document        */

/* s for a message: printable ASCII, '?' for anything else, cut to n. */
static void shown(const char *s, char *out, size_t n)
{
    size_t i;

    for (i = 0; s != NULL && s[i] != '\0' && i + 1 < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[i] = '\0';
}

po_rc po_discovery_url(const po_http_opts *opts, const char *issuer,
                       const char *member, char **url, po_err *err)
{
    struct json_object *root = NULL, *v = NULL;
    po_http_resp resp;
    char *doc = NULL, show[URL_SHOWN_MAX], iss[256];
    size_t n;
    po_buf b;
    po_err e;
    po_rc rc;

    *url = NULL;
    po_buf_init(&b, 8192, 0);
    memset(&resp, 0, sizeof(resp));
    po_buf_init(&resp.body, PO_HTTP_BODY_MAX, 1);
    if (issuer == NULL || issuer[0] == '\0') {
        rc = po_fail(err, PO_CONFIG,
                     "no issuer is configured: its discovery document would "
                     "name the %s",
                     member);
        goto out;
    }
    n = strlen(issuer);
    if (issuer[n - 1] == '/')
        n--;
    if ((rc = po_buf_append(&b, issuer, n)) != PO_OK ||
        (rc = po_buf_puts(&b, PO_DISCOVERY_PATH)) != PO_OK ||
        (rc = po_buf_detach(&b, &doc)) != PO_OK) {
        rc = po_fail(err, rc, "issuer too long");
        goto out;
    }
    po_http_redact_url(doc, show, sizeof(show));
    if ((rc = po_http_get(opts, doc, "discovery document", &resp, err)) !=
        PO_OK)
        goto out;
    if (resp.body.len > DOC_MAX) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "%s: the discovery document is larger than %d bytes", show,
                     DOC_MAX);
        goto out;
    }
    root = json_tokener_parse(resp.body.data != NULL ? resp.body.data : "");
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "%s: the discovery document is not a JSON object", show);
        goto out;
    }
    if (!json_object_object_get_ex(root, "issuer", &v) ||
        !json_object_is_type(v, json_type_string) ||
        strcmp(json_object_get_string(v), issuer) != 0) {
        shown(v != NULL && json_object_is_type(v, json_type_string)
                  ? json_object_get_string(v)
                  : "(none)",
              iss, sizeof(iss));
        rc = po_fail(err, PO_JWT_WRONG_ISSUER,
                     "%s: the discovery document is for issuer \"%s\", not "
                     "the configured \"%s\"",
                     show, iss, issuer);
        goto out;
    }
    if (!json_object_object_get_ex(root, member, &v) ||
        !json_object_is_type(v, json_type_string)) {
        rc = po_fail(err, PO_NOT_FOUND, "%s: the discovery document has no %s",
                     show, member);
        goto out;
    }
    po_err_clear(&e);
    if (po_http_check_url(json_object_get_string(v), opts->allow_http, &e) !=
        PO_OK) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "%s: the discovery document's %s is refused: %s", show,
                     member, e.msg);
        goto out;
    }
    if ((*url = strdup(json_object_get_string(v))) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
out:
    if (root != NULL)
        json_object_put(root);
    po_http_resp_free(&resp);
    po_buf_free(&b);
    free(doc);
    return rc;
}

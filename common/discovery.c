/* discovery.c - one endpoint URL from an issuer's OpenID discovery
 * document. */
#define _GNU_SOURCE
#include "discovery.h"

#include <json-c/json.h>
#include <stddef.h>
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

po_rc po_discovery_parse(const char *text, size_t len, const char *issuer,
                         const char *member, int allow_http, const char *where,
                         char **url, po_err *err)
{
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL, *v = NULL;
    char iss[256];
    po_err e;
    po_rc rc = PO_OK;

    *url = NULL;
    if (len > DOC_MAX) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "%s: the discovery document is larger than %d bytes",
                     where, DOC_MAX);
        goto out;
    }
    if ((tok = json_tokener_new_ex(16)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "%s: out of memory", where);
        goto out;
    }
    po_oom_reset();
    root = json_tokener_parse_ex(tok, text != NULL ? text : "", (int)len);
    if (po_out_of_memory()) {
        rc = po_fail(err, PO_NOMEM, "%s: out of memory", where);
        goto out;
    }
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(root, json_type_object)) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "%s: the discovery document is not a JSON object", where);
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
                     where, iss, issuer);
        goto out;
    }
    if (!json_object_object_get_ex(root, member, &v) ||
        !json_object_is_type(v, json_type_string)) {
        rc = po_fail(err, PO_NOT_FOUND, "%s: the discovery document has no %s",
                     where, member);
        goto out;
    }
    po_err_clear(&e);
    if (po_http_check_url(json_object_get_string(v), allow_http, &e) != PO_OK) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "%s: the discovery document's %s is refused: %s", where,
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
    if (tok != NULL)
        json_tokener_free(tok);
    return rc;
}

po_rc po_discovery_url(const po_http_opts *opts, const char *issuer,
                       const char *member, char **url, po_err *err)
{
    po_http_resp resp;
    char *doc = NULL, show[URL_SHOWN_MAX];
    size_t n;
    po_buf b;
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
    rc = po_discovery_parse(resp.body.data, resp.body.len, issuer, member,
                            opts->allow_http, show, url, err);
out:
    po_http_resp_free(&resp);
    po_buf_free(&b);
    free(doc);
    return rc;
}

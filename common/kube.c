/*
 * kube.c - the Kubernetes ExecCredential (kube.h).
 */
#include "kube.h"

#include <json-c/json.h>
#include <string.h>
#include <time.h>

#include "oauth.h"

po_rc po_kube_api_version(const char *exec_info, const char **out, po_err *err)
{
    json_tokener *tok = NULL;
    json_object *root = NULL, *v;
    const char *version;
    char shown[84];
    size_t len;
    po_rc rc = PO_OK;

    *out = PO_KUBE_V1;
    if (exec_info == NULL || exec_info[0] == '\0')
        return PO_OK;
    if ((len = strlen(exec_info)) > PO_KUBE_EXEC_INFO_MAX)
        return po_fail(err, PO_USAGE,
                       "KUBERNETES_EXEC_INFO: longer than %d bytes",
                       PO_KUBE_EXEC_INFO_MAX);
    if ((tok = json_tokener_new()) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    root = json_tokener_parse_ex(tok, exec_info, (int)len);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        tok->char_offset != (int)len ||
        !json_object_is_type(root, json_type_object)) {
        rc = po_fail(err, PO_USAGE,
                     "KUBERNETES_EXEC_INFO: not a JSON object (kubectl sets "
                     "it to an ExecCredential)");
        goto out;
    }
    if (json_object_object_get_ex(root, "kind", &v) &&
        (!json_object_is_type(v, json_type_string) ||
         strcmp(json_object_get_string(v), "ExecCredential") != 0)) {
        rc = po_fail(err, PO_USAGE,
                     "KUBERNETES_EXEC_INFO: kind is not ExecCredential");
        goto out;
    }
    if (!json_object_object_get_ex(root, "apiVersion", &v) ||
        !json_object_is_type(v, json_type_string)) {
        rc = po_fail(err, PO_USAGE,
                     "KUBERNETES_EXEC_INFO: no apiVersion string");
        goto out;
    }
    version = json_object_get_string(v);
    if (strcmp(version, PO_KUBE_V1) == 0) {
        *out = PO_KUBE_V1;
    } else if (strcmp(version, PO_KUBE_V1BETA1) == 0) {
        *out = PO_KUBE_V1BETA1;
    } else {
        /* the kubeconfig's text: no control character reaches a terminal */
        po_safe_text(version, shown, sizeof(shown));
        rc = po_fail(err, PO_USAGE,
                     "KUBERNETES_EXEC_INFO: apiVersion '%s' is not "
                     "supported (use %s, or %s for kubectl before 1.22, in "
                     "the kubeconfig's exec entry)",
                     shown, PO_KUBE_V1, PO_KUBE_V1BETA1);
    }
out:
    if (root != NULL)
        json_object_put(root);
    json_tokener_free(tok);
    return rc;
}

po_rc po_kube_credential(po_buf *out, const char *api_version,
                         const char *token, int64_t expires, po_err *err)
{
    time_t t = (time_t)expires;
    char when[32];
    struct tm tm;
    po_rc rc;

    if ((int64_t)t != expires || gmtime_r(&t, &tm) == NULL ||
        tm.tm_year + 1900 < 1970 || tm.tm_year + 1900 > 9999 ||
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return po_fail(err, PO_USAGE,
                       "the token's expiry (%lld) is not a valid time",
                       (long long)expires);
    rc = po_buf_puts(out, "{\"apiVersion\":");
    if (rc == PO_OK)
        rc = po_json_quote(out, api_version);
    if (rc == PO_OK)
        rc = po_buf_printf(out,
                           ",\"kind\":\"ExecCredential\",\"status\":{"
                           "\"expirationTimestamp\":\"%s\",\"token\":",
                           when);
    if (rc == PO_OK)
        rc = po_json_quote(out, token);
    if (rc == PO_OK)
        rc = po_buf_puts(out, "}}\n");
    if (rc != PO_OK)
        return po_fail(err, rc, "building the ExecCredential: %s",
                       po_rc_name(rc));
    return PO_OK;
}

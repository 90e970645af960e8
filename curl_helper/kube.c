/*
 * kube.c - `oauth-token --format exec-credential`: the token for a
 * kubeconfig `exec:` entry (kube.h has the format).
 *
 * The expirationTimestamp given to kubectl is when the profile's policy
 * wants the token renewed (po_flow_fresh_until), so that a long-running
 * client runs oauth-token again then and not only at the token's expiry;
 * when that moment has already passed (a stale but still valid token),
 * the token's own expiry.
 */
#include "helper.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kube.h"
#include "util.h"

#define KUBE_OUT_MAX (1024 * 1024)

po_rc ot_exec_credential(ot_ctx *c, po_err *err)
{
    const char *version = NULL;
    int64_t until, now;
    po_token t;
    po_buf b;
    po_rc rc;

    memset(&t, 0, sizeof(t));
    po_buf_init(&b, KUBE_OUT_MAX, 1);
    /* a bad KUBERNETES_EXEC_INFO is reported before any request */
    if ((rc = po_kube_api_version(po_secure_getenv("KUBERNETES_EXEC_INFO"),
                                  &version, err)) != PO_OK ||
        (rc = ot_token(c, 0, &t, err)) != PO_OK)
        goto out;
    now = (int64_t)time(NULL);
    until = po_flow_fresh_until(c->profile, &t);
    if (until <= now || until > t.expires_at)
        until = t.expires_at;
    if ((rc = po_kube_credential(&b, version, t.access_token, until, err)) !=
        PO_OK)
        goto out;
    rc = ot_write_all(STDOUT_FILENO, b.data, b.len, err);
out:
    po_buf_free(&b);
    po_token_free(&t);
    return rc;
}

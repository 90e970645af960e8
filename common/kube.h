/*
 * kube.h - the Kubernetes client-go credential plugin format
 * (client.authentication.k8s.io ExecCredential), so that a kubeconfig
 * `exec:` entry can run oauth-token directly, as it runs kubelogin.
 *
 * kubectl passes KUBERNETES_EXEC_INFO, an ExecCredential whose apiVersion
 * is the one configured in the kubeconfig, and expects the same apiVersion
 * back, with status.token and status.expirationTimestamp (RFC 3339, here
 * always UTC: "2026-01-02T03:04:05Z").  v1 and v1beta1 are supported;
 * v1alpha1 was removed from Kubernetes in 1.24.
 */
#ifndef PO_KUBE_H
#define PO_KUBE_H

#include <stdint.h>
#include "err.h"
#include "secret.h"

#define PO_KUBE_V1 "client.authentication.k8s.io/v1"
#define PO_KUBE_V1BETA1 "client.authentication.k8s.io/v1beta1"
#define PO_KUBE_EXEC_INFO_MAX                                                  \
    (1024 * 1024) /* bytes of KUBERNETES_EXEC_INFO                             \
                   */

/* The apiVersion to answer in, from exec_info (the text of
 * KUBERNETES_EXEC_INFO): PO_KUBE_V1 when exec_info is NULL or empty.
 * PO_USAGE, naming KUBERNETES_EXEC_INFO, when it is not a JSON object, its
 * kind is not ExecCredential, or its apiVersion is missing or not one of
 * the two supported.  *out points to a constant string. */
po_rc po_kube_api_version(const char *exec_info, const char **out, po_err *err);

/* Append the ExecCredential for token, valid until expires (wall clock,
 * seconds), in api_version (one of the two above), and a newline, to out
 * (a secret buffer).  PO_USAGE when expires cannot be written as a
 * four-digit-year UTC time. */
po_rc po_kube_credential(po_buf *out, const char *api_version,
                         const char *token, int64_t expires, po_err *err);

#endif

/*
 * dockercred.h - the messages of the docker-credential-helpers protocol
 * (docker, podman, skopeo, buildah, crane and oras all speak it):
 *
 *   get     stdin: a server URL; stdout: {"ServerURL","Username","Secret"}
 *   store   stdin: {"ServerURL","Username","Secret"}; stdout: nothing
 *   erase   stdin: a server URL; stdout: nothing
 *   list    stdout: {"SERVER URL": "USERNAME", ...}
 *
 * A failure is a message on standard output and exit status 1; a server
 * the helper has nothing for is the exact message PO_DOCKER_NOT_FOUND,
 * which clients take as "no credentials" (anonymous access).
 */
#ifndef PO_DOCKERCRED_H
#define PO_DOCKERCRED_H

#include <stddef.h>
#include "err.h"
#include "secret.h"

#define PO_DOCKER_NOT_FOUND "credentials not found in native keychain"
#define PO_DOCKER_NO_SERVER "no credentials server URL"
#define PO_DOCKER_INPUT_MAX (64 * 1024) /* bytes of a request        */

/* What `store` is given.  secret is a secret (cleansed when freed). */
typedef struct po_docker_creds {
    char *server_url;
    char *username; /* "" when absent                         */
    char *secret;   /* "" when absent                         */
} po_docker_creds;

/* Parse the len bytes at json, a store request: a JSON object whose
 * ServerURL, Username and Secret members are strings (others ignored).
 * PO_USAGE saying what is wrong (never quoting the secret);
 * PO_DOCKER_NO_SERVER when ServerURL is missing or empty. */
po_rc po_docker_parse_creds(const char *json, size_t len, po_docker_creds *out,
                            po_err *err);

/* Free c's contents, cleansing the secret. */
void po_docker_creds_free(po_docker_creds *c);

/* Append get's answer and a newline to out (a secret buffer). */
po_rc po_docker_creds_json(po_buf *out, const char *server_url,
                           const char *username, const char *secret);

#endif

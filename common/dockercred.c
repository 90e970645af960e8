/*
 * dockercred.c - docker-credential-helpers messages (dockercred.h).
 */
#include "dockercred.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "oauth.h"

void po_docker_creds_free(po_docker_creds *c)
{
    if (c == NULL)
        return;
    free(c->server_url);
    free(c->username);
    po_secret_free(c->secret);
    memset(c, 0, sizeof(*c));
}

/* The string member key of obj, copied into *out ("" when absent). */
static po_rc member(json_object *obj, const char *key, char **out, po_err *err)
{
    json_object *v;
    const char *s = "";

    if (json_object_object_get_ex(obj, key, &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_string))
            return po_fail(err, PO_USAGE,
                           "the credentials' %s is not a JSON string", key);
        s = json_object_get_string(v);
        if (strlen(s) != (size_t)json_object_get_string_len(v))
            return po_fail(err, PO_USAGE, "the credentials' %s holds a NUL",
                           key);
    }
    if ((*out = strdup(s)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    return PO_OK;
}

po_rc po_docker_parse_creds(const char *json, size_t len, po_docker_creds *out,
                            po_err *err)
{
    json_tokener *tok = NULL;
    json_object *root = NULL;
    po_rc rc;

    memset(out, 0, sizeof(*out));
    if (len > PO_DOCKER_INPUT_MAX)
        return po_fail(err, PO_USAGE,
                       "the credentials are longer than %d bytes",
                       PO_DOCKER_INPUT_MAX);
    if ((tok = json_tokener_new()) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    root = json_tokener_parse_ex(tok, json, (int)len);
    /* what follows the object may only be white space (a newline) */
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        strspn(json + tok->char_offset, " \t\r\n") !=
            len - (size_t)tok->char_offset ||
        !json_object_is_type(root, json_type_object)) {
        rc = po_fail(err, PO_USAGE,
                     "the credentials are not a JSON object with ServerURL, "
                     "Username and Secret");
        goto out;
    }
    if ((rc = member(root, "ServerURL", &out->server_url, err)) != PO_OK ||
        (rc = member(root, "Username", &out->username, err)) != PO_OK ||
        (rc = member(root, "Secret", &out->secret, err)) != PO_OK)
        goto out;
    if (out->server_url[0] == '\0')
        rc = po_fail(err, PO_USAGE, "%s", PO_DOCKER_NO_SERVER);
out:
    if (root != NULL)
        json_object_put(root); /* json-c does not cleanse: the input does */
    json_tokener_free(tok);
    if (rc != PO_OK)
        po_docker_creds_free(out);
    return rc;
}

po_rc po_docker_creds_json(po_buf *out, const char *server_url,
                           const char *username, const char *secret)
{
    po_rc rc;

    if ((rc = po_buf_puts(out, "{\"ServerURL\":")) == PO_OK &&
        (rc = po_json_quote(out, server_url)) == PO_OK &&
        (rc = po_buf_puts(out, ",\"Username\":")) == PO_OK &&
        (rc = po_json_quote(out, username)) == PO_OK &&
        (rc = po_buf_puts(out, ",\"Secret\":")) == PO_OK &&
        (rc = po_json_quote(out, secret)) == PO_OK)
        rc = po_buf_puts(out, "}\n");
    return rc;
}

/*
 * claims.c - where the account checks find the user's roles.
 *
 * A claim source turns the state left by authentication into a list of
 * strings for a claim path; the profile's roles_source picks one:
 *   response  the token response's extra members (po_token.extra_json:
 *             Fluent's "Roles", a server's "roles"), which came to us over
 *             the TLS connection we opened to the configured endpoint;
 *   token     the claims that verify proved at authentication
 *             (po_pam_state.verified_claims: common/verify.h).
 * Claims inside a token that was not verified are never read.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "claims.h"
#include "secret.h"

#define CLAIM_PATH_MAX 256

void po_pam_strlist_free(po_pam_strlist *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static po_rc strlist_add(po_pam_strlist *l, const char *s, size_t len)
{
    char **nv;

    if ((nv = realloc(l->v, (l->n + 1) * sizeof(*nv))) == NULL)
        return PO_NOMEM;
    l->v = nv;
    if ((l->v[l->n] = po_strndup(s, len)) == NULL)
        return PO_NOMEM;
    l->n++;
    return PO_OK;
}

po_rc po_pam_split_words(const char *s, po_pam_strlist *out)
{
    const char *w;
    po_rc rc;

    while (s != NULL && *s != '\0') {
        while (*s != '\0' && isspace((unsigned char)*s))
            s++;
        for (w = s; *s != '\0' && !isspace((unsigned char)*s); s++)
            ;
        if (s > w && (rc = strlist_add(out, w, (size_t)(s - w))) != PO_OK)
            return rc;
    }
    return PO_OK;
}

int po_pam_strlist_has(const po_pam_strlist *l, const char *s)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

/* Find path in obj: first as one member name, then as a dotted path of
 * nested objects ("realm_access.roles"). */
static struct json_object *lookup(struct json_object *obj, const char *path)
{
    struct json_object *cur = obj, *next = NULL;
    char part[CLAIM_PATH_MAX];
    const char *p = path, *dot;
    size_t len;

    if (json_object_object_get_ex(obj, path, &next))
        return next;
    while (*p != '\0') {
        dot = strchr(p, '.');
        len = dot != NULL ? (size_t)(dot - p) : strlen(p);
        if (len == 0 || len >= sizeof(part) ||
            !json_object_is_type(cur, json_type_object))
            return NULL;
        memcpy(part, p, len);
        part[len] = '\0';
        if (!json_object_object_get_ex(cur, part, &next))
            return NULL;
        cur = next;
        p += len;
        if (*p == '.')
            p++;
    }
    return cur == obj ? NULL : cur;
}

/* The value of a claim as strings: an array of strings, or one string of
 * space-separated words. */
static po_rc claim_strings(struct json_object *v, const char *path,
                           const char *source, po_pam_strlist *out, po_err *err)
{
    size_t i, n;
    po_rc rc;

    if (json_object_is_type(v, json_type_string))
        return po_pam_split_words(json_object_get_string(v), out);
    if (!json_object_is_type(v, json_type_array))
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "%s: \"%s\" is neither a string nor an array of "
                       "strings",
                       source, path);
    n = json_object_array_length(v);
    for (i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        const char *s;

        if (!json_object_is_type(e, json_type_string))
            return po_fail(err, PO_MALFORMED_RESPONSE,
                           "%s: \"%s\"[%zu] is not a string", source, path, i);
        s = json_object_get_string(e);
        if ((rc = strlist_add(out, s, strlen(s))) != PO_OK)
            return po_fail(err, rc, "out of memory");
    }
    return PO_OK;
}

/* The claim path of a JSON object text from source. */
static po_rc text_claims(const char *text, const char *source, const char *path,
                         po_pam_strlist *out, po_err *err)
{
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL, *v;
    po_rc rc = PO_OK;

    if (text == NULL || text[0] == '\0') {
        rc = po_fail(err, PO_NOT_FOUND, "%s: no member \"%s\"", source, path);
        goto out;
    }
    if ((tok = json_tokener_new()) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    root = json_tokener_parse_ex(tok, text, (int)strlen(text));
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "%s: the extra members are not a JSON object", source);
        goto out;
    }
    if ((v = lookup(root, path)) == NULL) {
        rc = po_fail(err, PO_NOT_FOUND, "%s: no member \"%s\"", source, path);
        goto out;
    }
    rc = claim_strings(v, path, source, out, err);
out:
    if (root != NULL)
        json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    return rc;
}

/* roles_source = response: the members of the token response beside the
 * tokens, which came over the TLS connection to the token endpoint. */
static po_rc response_claims(const po_pam_state *st, const char *path,
                             po_pam_strlist *out, po_err *err)
{
    return text_claims(st->token.extra_json, "token response", path, out, err);
}

/* roles_source = token: the claims that verify proved at authentication
 * (a JWT whose signature, issuer, audience and lifetime were checked, or
 * an introspection answer).  Nothing else: an unverified JWT's claims are
 * whatever its bytes say. */
static po_rc token_claims(const po_pam_state *st, const char *path,
                          po_pam_strlist *out, po_err *err)
{
    if (st->verified_claims == NULL)
        return po_fail(err, PO_NOT_FOUND,
                       "verified token: no token was verified at "
                       "authentication (roles_source is token)");
    return text_claims(st->verified_claims, "verified token", path, out, err);
}

po_rc po_pam_claim(const po_pam_state *st, po_roles_source source,
                   const char *path, po_pam_strlist *out, po_err *err)
{
    po_rc rc;

    if (path == NULL || path[0] == '\0' || strlen(path) >= CLAIM_PATH_MAX)
        return po_fail(err, PO_CONFIG, "roles_claim: empty or too long");
    rc = source == PO_ROLES_TOKEN ? token_claims(st, path, out, err)
                                  : response_claims(st, path, out, err);
    if (rc != PO_OK)
        po_pam_strlist_free(out);
    return rc;
}

/* claims.c - string lists read from a JSON claims set. */
#include "claims.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "secret.h"

void po_strlist_free(po_strlist *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static po_rc strlist_add(po_strlist *l, const char *s, size_t len)
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

po_rc po_strlist_split(const char *s, po_strlist *out)
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

int po_strlist_has(const po_strlist *l, const char *s)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

struct json_object *po_json_path(struct json_object *obj, const char *path)
{
    struct json_object *cur = obj, *next = NULL;
    char part[PO_CLAIM_PATH_MAX];
    const char *p = path, *dot;
    size_t len;

    if (obj == NULL || path == NULL || path[0] == '\0')
        return NULL;
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
                           const char *source, po_strlist *out, po_err *err)
{
    size_t i, n;
    po_rc rc;

    if (json_object_is_type(v, json_type_string))
        return po_strlist_split(json_object_get_string(v), out);
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

po_rc po_claim_strings(const char *text, const char *source, const char *path,
                       po_strlist *out, po_err *err)
{
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL, *v;
    po_rc rc = PO_OK;

    if (path == NULL || path[0] == '\0' || strlen(path) >= PO_CLAIM_PATH_MAX) {
        rc = po_fail(err, PO_CONFIG, "claim path: empty or too long");
        goto out;
    }
    if (text == NULL || text[0] == '\0') {
        rc = po_fail(err, PO_NOT_FOUND, "%s: no member \"%s\"", source, path);
        goto out;
    }
    if ((tok = json_tokener_new()) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    po_oom_reset();
    root = json_tokener_parse_ex(tok, text, (int)strlen(text));
    if (po_out_of_memory()) {
        rc = po_fail(err, PO_NOMEM, "%s: out of memory", source);
        goto out;
    }
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "%s: the extra members are not a JSON object", source);
        goto out;
    }
    if ((v = po_json_path(root, path)) == NULL) {
        rc = po_fail(err, PO_NOT_FOUND, "%s: no member \"%s\"", source, path);
        goto out;
    }
    rc = claim_strings(v, path, source, out, err);
out:
    if (rc != PO_OK)
        po_strlist_free(out);
    if (root != NULL)
        json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    return rc;
}

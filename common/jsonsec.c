/* jsonsec.c - parsing and freeing JSON that may hold secrets (jsonsec.h). */
#include "jsonsec.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "secret.h"

/* Overwrite the strings of the tree v in place. */
static void cleanse_tree(json_object *v)
{
    size_t i, n;

    switch (json_object_get_type(v)) {
    case json_type_string: {
        const char *s = json_object_get_string(v);
        int len = json_object_get_string_len(v);
        if (s != NULL && len > 0)
            po_cleanse((void *)(uintptr_t)s, (size_t)len);
        break;
    }
    case json_type_object: {
        json_object_object_foreach(v, key, child)
        {
            (void)key;
            cleanse_tree(child);
        }
        break;
    }
    case json_type_array:
        n = json_object_array_length(v);
        for (i = 0; i < n; i++)
            cleanse_tree(json_object_array_get_idx(v, i));
        break;
    default:
        break;
    }
}

void po_json_put_secret(json_object *o)
{
    if (o == NULL)
        return;
    cleanse_tree(o);
    json_object_put(o);
}

po_rc po_json_parse_secret(const char *text, size_t len, int depth,
                           json_object **out, po_err *err)
{
    po_rc rc = PO_OK;
    json_tokener *tok = NULL;
    json_object *o = NULL;
    enum json_tokener_error jerr;
    size_t end;
    int i;

    *out = NULL;
    if (text == NULL || len == 0) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE, "empty");
        goto out;
    }
    if (len >= INT_MAX) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE, "too large");
        goto out;
    }
    if ((tok = json_tokener_new_ex(depth)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    /* json-c 0.16 exposes struct json_tokener with its string buffer pb
     * (documented as internal, but there is no other way to pre-size and
     * cleanse it). */
    if (printbuf_memset(tok->pb, 0, 0, (int)len + 1) < 0) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    printbuf_reset(tok->pb);
    /* What we read here we wrote (cache entries, verifiers): strict JSON.
     * json-c's default mode skips C and C++ comments, also after the
     * value, where the check for trailing data below would not see them;
     * what follows the value is that check's to name. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                                    JSON_TOKENER_ALLOW_TRAILING_CHARS);
    po_oom_reset();
    o = json_tokener_parse_ex(tok, text, (int)len);
    jerr = json_tokener_get_error(tok);
    if (po_out_of_memory()) {
        /* json-c calls that the text's fault, or drops a member */
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    if (jerr != json_tokener_success) {
        rc = jerr == json_tokener_continue
                 ? po_fail(err, PO_MALFORMED_RESPONSE, "truncated JSON")
                 : po_fail(err, PO_MALFORMED_RESPONSE, "invalid JSON: %s",
                           json_tokener_error_desc(jerr));
        goto out;
    }
    for (end = json_tokener_get_parse_end(tok); end < len; end++) {
        if (strchr(" \t\r\n", text[end]) == NULL || text[end] == '\0') {
            rc = po_fail(err, PO_MALFORMED_RESPONSE,
                         "data after the JSON value");
            goto out;
        }
    }
    *out = o;
    o = NULL;
out:
    po_json_put_secret(o);
    if (tok != NULL) {
        /* After a failed parse the partial tree is still on the tokener's
         * stack (json_tokener_free frees it). */
        for (i = 0; i <= tok->depth && i < tok->max_depth; i++)
            if (tok->stack[i].current != NULL && tok->stack[i].current != *out)
                cleanse_tree(tok->stack[i].current);
        if (tok->pb != NULL && tok->pb->buf != NULL && tok->pb->size > 0)
            po_cleanse(tok->pb->buf, (size_t)tok->pb->size);
        json_tokener_free(tok);
    }
    return rc;
}

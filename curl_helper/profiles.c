/*
 * profiles.c - `oauth-token profiles`: the names of the profiles in the
 * configuration files the helper reads (the same -c / $PAM_OAUTH_CONFIG /
 * default search as every command), one a line, or with --format json an
 * array of {"name", "source", "match"}.  Shell completion calls it, so that
 * no shell script parses the configuration itself.  Nothing printed is a
 * secret and no profile is validated: a half-written profile is listed too.
 */
#include "helper.h"

#include <unistd.h>

#define PROFILES_OUT_MAX (1024 * 1024)

static po_rc profile_json(po_buf *b, const po_profile *p, int first)
{
    po_rc rc;

    if ((rc = po_buf_puts(b, first ? "\n  {\"name\":" : ",\n  {\"name\":")) !=
            PO_OK ||
        (rc = po_json_quote(b, p->name)) != PO_OK ||
        (rc = po_buf_puts(b, ",\"source\":")) != PO_OK)
        return rc;
    rc = p->source != NULL ? po_json_quote(b, p->source)
                           : po_buf_puts(b, "null");
    if (rc == PO_OK)
        rc = po_buf_puts(b, ",\"match\":");
    if (rc == PO_OK)
        rc = p->match != NULL ? po_json_quote(b, p->match)
                              : po_buf_puts(b, "null");
    if (rc == PO_OK)
        rc = po_buf_puts(b, "}");
    return rc;
}

po_rc ot_cmd_profiles(ot_ctx *c, po_err *err)
{
    int json = c->opts.format == OT_FORMAT_JSON;
    po_buf b;
    po_rc rc;
    size_t i;

    po_buf_init(&b, PROFILES_OUT_MAX, 0);
    if ((rc = ot_load_config(c, err)) != PO_OK)
        goto out;
    rc = json ? po_buf_puts(&b, "[") : PO_OK;
    for (i = 0; rc == PO_OK && i < c->cfg.nprofiles; i++) {
        const po_profile *p = &c->cfg.profiles[i];
        rc = json ? profile_json(&b, p, i == 0)
                  : po_buf_printf(&b, "%s\n", p->name);
    }
    if (rc == PO_OK && json)
        rc = po_buf_puts(&b, c->cfg.nprofiles > 0 ? "\n]\n" : "]\n");
    if (rc != PO_OK) {
        rc = po_fail(err, rc, "building the list of profiles: %s",
                     po_rc_name(rc));
        goto out;
    }
    if (b.len > 0)
        rc = ot_write_all(STDOUT_FILENO, b.data, b.len, err);
out:
    po_buf_free(&b);
    return rc;
}

/*
 * fuzz_config - a whole configuration file through the parser and the
 * option table (po_config_load_buffer, the path po_config_load_file takes
 * after reading the file), each profile through po_profile_validate and a
 * deep copy, then the same text through check-config's reporting
 * (po_config_check_buffer).
 *
 * Input: one byte choosing the file's mode (bit 0: 0600, or 0644 for the
 * client_secret rule) and the rules (bit 1: pam_oauth's, PO_CFG_PAM_RULES),
 * then the file.
 *
 * Properties: check-config finds no problem exactly when the file loads
 * and every profile validates; no message holds a control character;
 * every profile name is valid; a copy equals its original.
 */
#include "fuzz.h"

#include <sys/stat.h>

#include "config.h"
#include "secret.h"

typedef struct diags {
    unsigned n;
} diags;

static void diag(void *ctx, const char *msg)
{
    diags *d = ctx;

    FUZZ_CHECK(fuzz_no_controls(msg), "control character in \"%s\"", msg);
    FUZZ_CHECK(msg[0] != '\0', "empty diagnostic");
    d->n++;
}

static int same(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static void check_copy(const po_profile *p)
{
    po_profile c;
    size_t i;

    if (po_profile_copy(&c, p, NULL) != PO_OK)
        return;
    FUZZ_CHECK(same(c.name, p->name) && same(c.source, p->source) &&
                   same(c.token_url, p->token_url) &&
                   same(c.client_id, p->client_id) &&
                   same(c.client_secret, p->client_secret) &&
                   same(c.match, p->match) && same(c.scope, p->scope) &&
                   c.nparams == p->nparams && c.timeout_ms == p->timeout_ms &&
                   c.grant == p->grant && c.verify == p->verify,
               "copy of profile %s differs", p->name);
    for (i = 0; i < p->nparams; i++)
        FUZZ_CHECK(same(c.params[i].name, p->params[i].name) &&
                       same(c.params[i].value, p->params[i].value),
                   "param %zu differs", i);
    po_profile_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    unsigned first = fuzz_byte(&in);
    mode_t mode = S_IFREG | ((first & 1) ? 0644 : 0600);
    unsigned flags = (first & 2) ? PO_CFG_PAM_RULES : 0;
    po_config cfg;
    po_err err;
    diags d = {0};
    po_rc load, check;
    int all_valid = 1;
    size_t i;

    po_config_init(&cfg);
    po_err_clear(&err);
    load = po_config_load_buffer(&cfg, "fuzz.conf", mode, (const char *)in.p,
                                 in.n, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (load != PO_OK) {
        FUZZ_CHECK(cfg.nprofiles == 0, "a failed load kept profiles");
        FUZZ_CHECK(err.msg[0] != '\0', "no message");
        all_valid = 0;
    }
    for (i = 0; i < cfg.nprofiles; i++) {
        const po_profile *p = &cfg.profiles[i];

        FUZZ_CHECK(p->name != NULL && p->name[0] != '\0' && p->name[0] != '.' &&
                       strlen(p->name) <= PO_PROFILE_NAME_MAX &&
                       strchr(p->name, '/') == NULL,
                   "bad profile name");
        FUZZ_CHECK(po_config_find(&cfg, p->name) == p, "profile %s twice",
                   p->name);
        po_err_clear(&err);
        if ((flags ? po_profile_validate_pam(p, &err)
                   : po_profile_validate(p, &err)) != PO_OK)
            all_valid = 0;
        FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
                   err.msg);
        check_copy(p);
    }
    po_config_free(&cfg);

    check = po_config_check_buffer("fuzz.conf", mode, flags, (const char *)in.p,
                                   in.n, diag, &d);
    if (check != PO_NOMEM && load != PO_NOMEM)
        FUZZ_CHECK((check == PO_OK) == all_valid,
                   "check-config says %s, load and validate say %s",
                   po_rc_name(check), all_valid ? "ok" : "not ok");
    FUZZ_CHECK((check == PO_OK) == (d.n == 0), "%u diagnostics and %s", d.n,
               po_rc_name(check));
    return 0;
}

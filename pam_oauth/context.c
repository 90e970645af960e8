/*
 * context.c - what survives between PAM calls on one handle, and the local
 * account of the user.
 *
 * Authentication leaves a po_pam_state on the handle with pam_set_data.
 * Its cleanup (run by pam_end, or when the state is replaced) cleanses the
 * token, so nothing outlives the handle.
 */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <security/pam_ext.h>

#include "internal.h"
#include "secret.h"

void po_pam_state_free(po_pam_state *st)
{
    if (st == NULL)
        return;
    po_token_free(&st->token);
    free(st->user);
    free(st->local_name);
    free(st->idp_user);
    free(st->profile_name);
    free(st->requested_scope);
    free(st->home);
    free(st->cache_dir);
    free(st->verified_claims);
    po_offline_grants_free(&st->offline_grants);
    po_cleanse(st, sizeof(*st));
    free(st);
}

static void state_cleanup(pam_handle_t *pamh, void *data, int error_status)
{
    (void)pamh;
    (void)error_status;
    po_pam_state_free(data);
}

po_pam_state *po_pam_state_get(pam_handle_t *pamh)
{
    union {
        const void *c;
        po_pam_state *p;
    } data;

    data.c = NULL;
    if (pam_get_data(pamh, PO_PAM_DATA, &data.c) != PAM_SUCCESS)
        return NULL;
    return data.p;
}

int po_pam_state_set(pam_handle_t *pamh, po_pam_state *st)
{
    int pamret = pam_set_data(pamh, PO_PAM_DATA, st, state_cleanup);

    if (pamret != PAM_SUCCESS) {
        pam_syslog(pamh, LOG_ERR, "cannot keep the login state: %s",
                   pam_strerror(pamh, pamret));
        po_pam_state_free(st);
    }
    return pamret;
}

void po_pam_state_clear(pam_handle_t *pamh)
{
    if (po_pam_state_get(pamh) != NULL)
        (void)pam_set_data(pamh, PO_PAM_DATA, NULL, NULL);
}

po_user po_pam_state_user(const po_pam_state *st)
{
    po_user u = {st->local_name, st->uid, st->gid, st->home};

    return u;
}

int po_pam_lookup_user(const po_pam_args *args, const char *user, char **name,
                       uid_t *uid, gid_t *gid, char **home)
{
    struct passwd pw, *res = NULL;
    long max = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t size = max > 0 ? (size_t)max : 16384;
    char *buf = NULL, *nbuf;
    char shown[80];
    int e, pamret = PAM_SUCCESS;

    *home = NULL;
    *name = NULL;
    po_pam_printable(user, shown, sizeof(shown));
    for (;;) {
        if ((nbuf = realloc(buf, size)) == NULL) {
            po_logf(&args->log, LOG_CRIT, "out of memory");
            pamret = PAM_BUF_ERR;
            goto out;
        }
        buf = nbuf;
        e = getpwnam_r(user, &pw, buf, size, &res);
        if (e != ERANGE || size >= 1024 * 1024)
            break;
        size *= 2;
    }
    if (e != 0) {
        po_logf(&args->log, LOG_ERR, "cannot look up user %s: %s", shown,
                strerror(e));
        pamret = PAM_SYSTEM_ERR;
        goto out;
    }
    if (res == NULL) {
        po_logf(&args->log, LOG_DEBUG, "user %s is not a local user", shown);
        pamret = PAM_USER_UNKNOWN;
        goto out;
    }
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    if ((*home = strdup(pw.pw_dir != NULL ? pw.pw_dir : "/")) == NULL ||
        (*name = strdup(pw.pw_name != NULL ? pw.pw_name : user)) == NULL) {
        free(*home);
        *home = NULL;
        po_logf(&args->log, LOG_CRIT, "out of memory");
        pamret = PAM_BUF_ERR;
    }
out:
    free(buf);
    return pamret;
}

const char *po_pam_current_user(const po_pam_args *args)
{
    const void *item = NULL;
    const char *user;
    size_t i;

    if (pam_get_item(args->pamh, PAM_USER, &item) != PAM_SUCCESS ||
        item == NULL)
        return NULL;
    user = item;
    for (i = 0; user[i] != '\0'; i++)
        if ((unsigned char)user[i] < 0x20 || user[i] == 0x7f ||
            i >= PO_PAM_USER_MAX)
            return NULL;
    return i > 0 ? user : NULL;
}

po_pam_state *po_pam_state_for_user(const po_pam_args *args)
{
    po_pam_state *st = po_pam_state_get(args->pamh);
    const char *user;
    char shown[80], now[80];

    if (st == NULL)
        return NULL;
    user = po_pam_current_user(args);
    if (user == NULL || strcmp(user, st->user) != 0) {
        po_pam_printable(st->user, shown, sizeof(shown));
        po_pam_printable(user, now, sizeof(now));
        po_logf(&args->log, LOG_WARNING,
                "the token obtained for user %s is not used for user %s "
                "(PAM_USER changed since authentication)",
                shown, user != NULL ? now : "(none)");
        return NULL;
    }
    return st;
}

int po_pam_load_state_profile(po_pam_args *args, const po_pam_state *st)
{
    int pamret = po_pam_load_profile(args);

    if (pamret != PAM_SUCCESS)
        return pamret;
    if (strcmp(args->profile->name, st->profile_name) != 0) {
        po_logf(&args->log, LOG_ERR,
                "the user authenticated with profile [%s] but this line "
                "names profile [%s]: give every pam_oauth line of the "
                "stack the same profile= argument",
                st->profile_name, args->profile->name);
        return PAM_SERVICE_ERR;
    }
    return PAM_SUCCESS;
}

/*
 * handoff.c - the token of a login, from pam_sm_authenticate to the
 * session, when the two run in different processes.
 *
 * OpenSSH's sshd runs keyboard-interactive authentication (the only way a
 * device login reaches an ssh user) in a child process: pam_authenticate
 * and pam_acct_mgmt happen there, and what the module keeps with
 * pam_set_data dies with the child.  The child hands the PAM environment
 * back to sshd, which opens the session.  So, as pam_krb5 does with
 * PAM_KRB5CCNAME, a login with store_token leaves its token in a root-only
 * directory, PO_PAM_HANDOFF_DIR/handoff.UID.XXXXXX (0700, the entry 0600,
 * written by common/cache.c), and names it in the PAM environment
 * (PO_PAM_ENV_HANDOFF).  pam_sm_setcred / pam_sm_open_session without the
 * in-memory state take the token from there, checking the directory (ours,
 * 0700, not a link, under PO_PAM_HANDOFF_DIR, for the PAM user's uid, at
 * most PO_PAM_HANDOFF_MAX_AGE old), remove it and the variable, and go on
 * as if authentication had happened in the same process.  When it did, the
 * session removes the hand-off unread.  Hand-offs never collected (a login
 * refused after authentication) are removed by the next login after
 * PO_PAM_HANDOFF_MAX_AGE.  Only root writes them: a module that runs as
 * the user (a screen locker) has no session to hand to.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_ext.h>

#include "cache.h"
#include "internal.h"
#include "secret.h"
#include "util.h"

#define PREFIX "handoff."

/* Remove the entries of dir (flat: the cache writes files only) and dir. */
static void remove_dir(const char *dir)
{
    DIR *d;
    struct dirent *de;
    int fd;

    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
        return;
    if ((d = fdopendir(fd)) == NULL) {
        close(fd);
        return;
    }
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            (void)unlinkat(fd, de->d_name, 0);
    closedir(d);
    (void)rmdir(dir);
}

/* The base directory, made (0700) when missing; 0 when it is not ours
 * alone (logged). */
static int base_ok(const po_pam_args *args)
{
    struct stat st;

    if (mkdir(PO_PAM_HANDOFF_DIR, 0700) == -1 && errno != EEXIST) {
        po_logf(&args->log, LOG_WARNING, "cannot create %s: %s",
                PO_PAM_HANDOFF_DIR, strerror(errno));
        return 0;
    }
    if (lstat(PO_PAM_HANDOFF_DIR, &st) == -1 || !S_ISDIR(st.st_mode) ||
        st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        po_logf(&args->log, LOG_WARNING,
                "%s is not a directory of uid %lu closed to others: no token "
                "hand-off to the session",
                PO_PAM_HANDOFF_DIR, (unsigned long)geteuid());
        return 0;
    }
    return 1;
}

/* Remove hand-offs older than PO_PAM_HANDOFF_MAX_AGE. */
static void sweep(void)
{
    DIR *d;
    struct dirent *de;
    struct stat st;
    char path[512];
    time_t now = time(NULL);

    if ((d = opendir(PO_PAM_HANDOFF_DIR)) == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, PREFIX, strlen(PREFIX)) != 0)
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", PO_PAM_HANDOFF_DIR,
                     de->d_name) >= (int)sizeof(path))
            continue;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
            now - st.st_mtime > PO_PAM_HANDOFF_MAX_AGE)
            remove_dir(path);
    }
    closedir(d);
}

void po_pam_handoff_put(const po_pam_args *args, const po_pam_state *st)
{
    char dir[512], *env = NULL;
    po_cache_entry e;
    po_err err;

    memset(&e, 0, sizeof(e));
    po_err_clear(&err);
    if (args->profile == NULL || !args->profile->store_token || st == NULL)
        return;
    if (geteuid() != 0) {
        po_logf(&args->log, LOG_DEBUG,
                "not root: no token hand-off to another process");
        return;
    }
    if (!base_ok(args))
        return;
    sweep();
    (void)snprintf(dir, sizeof(dir), "%s/" PREFIX "%lu.XXXXXX",
                   PO_PAM_HANDOFF_DIR, (unsigned long)st->uid);
    if (mkdtemp(dir) == NULL) {
        po_logf(&args->log, LOG_WARNING, "cannot create a hand-off in %s: %s",
                PO_PAM_HANDOFF_DIR, strerror(errno));
        goto out;
    }
    if (po_token_copy(&e.token, &st->token, &err) != PO_OK ||
        (e.username = strdup(st->idp_user)) == NULL) {
        po_logf(&args->log, LOG_CRIT, "out of memory");
        remove_dir(dir);
        goto out;
    }
    if (po_cache_write(dir, args->profile, &e, &err) != PO_OK) {
        po_logf(&args->log, LOG_WARNING, "token hand-off: %s", err.msg);
        remove_dir(dir);
        goto out;
    }
    if ((env = po_concat3(PO_PAM_ENV_HANDOFF, "=", dir)) == NULL ||
        pam_putenv(args->pamh, env) != PAM_SUCCESS) {
        po_logf(&args->log, LOG_WARNING, "cannot set %s", PO_PAM_ENV_HANDOFF);
        remove_dir(dir);
        goto out;
    }
    po_logf(&args->log, LOG_DEBUG, "token handed to the session in %s", dir);
out:
    free(env);
    po_cache_entry_free(&e);
}

/* The hand-off named in the PAM environment, checked: its path into buf
 * (size n), 1; 0 when there is none or it is refused (logged). */
static int named_handoff(const po_pam_args *args, uid_t uid, char *buf,
                         size_t n)
{
    const char *dir = pam_getenv(args->pamh, PO_PAM_ENV_HANDOFF);
    char want[128];
    const char *rest;
    struct stat st;
    size_t k;

    if (dir == NULL)
        return 0;
    (void)snprintf(want, sizeof(want), "%s/" PREFIX "%lu.", PO_PAM_HANDOFF_DIR,
                   (unsigned long)uid);
    if (strncmp(dir, want, strlen(want)) != 0 ||
        strlen(dir) != strlen(want) + 6 || strlen(dir) >= n)
        goto refused;
    for (rest = dir + strlen(want), k = 0; k < 6; k++)
        if (!((rest[k] >= 'a' && rest[k] <= 'z') ||
              (rest[k] >= 'A' && rest[k] <= 'Z') ||
              (rest[k] >= '0' && rest[k] <= '9')))
            goto refused;
    if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode) ||
        st.st_uid != geteuid() || (st.st_mode & 077) != 0 ||
        time(NULL) - st.st_mtime > PO_PAM_HANDOFF_MAX_AGE)
        goto refused;
    memcpy(buf, dir, strlen(dir) + 1);
    return 1;
refused:
    po_logf(&args->log, LOG_WARNING,
            "%s does not name a fresh hand-off of this user's login: "
            "ignored",
            PO_PAM_ENV_HANDOFF);
    (void)pam_putenv(args->pamh, PO_PAM_ENV_HANDOFF);
    return 0;
}

void po_pam_handoff_drop(const po_pam_args *args, const po_pam_state *st)
{
    char dir[512];

    if (st == NULL || pam_getenv(args->pamh, PO_PAM_ENV_HANDOFF) == NULL)
        return;
    if (named_handoff(args, st->uid, dir, sizeof(dir))) {
        remove_dir(dir);
        (void)pam_putenv(args->pamh, PO_PAM_ENV_HANDOFF);
        po_logf(&args->log, LOG_DEBUG,
                "the refused login's token hand-off %s was removed", dir);
    }
}

po_pam_state *po_pam_session_state(po_pam_args *args)
{
    po_pam_state *st = po_pam_state_for_user(args), *fresh = NULL;
    const char *user;
    char dir[512];
    po_cache_entry e;
    po_err err;
    uid_t uid = 0;
    gid_t gid = 0;
    char *home = NULL, *local = NULL;

    memset(&e, 0, sizeof(e));
    po_err_clear(&err);
    if (pam_getenv(args->pamh, PO_PAM_ENV_HANDOFF) == NULL)
        return st;
    user = po_pam_current_user(args);
    if (user == NULL ||
        po_pam_lookup_user(args, user, &local, &uid, &gid, &home) !=
            PAM_SUCCESS ||
        !named_handoff(args, uid, dir, sizeof(dir)))
        goto out;
    if (st != NULL) {
        /* authentication ran in this process: nothing to take */
        remove_dir(dir);
        (void)pam_putenv(args->pamh, PO_PAM_ENV_HANDOFF);
        goto out;
    }
    if (po_pam_load_profile(args) != PAM_SUCCESS)
        goto out;
    if (po_cache_read(dir, args->profile, &args->log, &e, &err) != PO_OK ||
        e.token.access_token == NULL || e.username == NULL) {
        po_logf(&args->log, LOG_WARNING, "token hand-off in %s unusable: %s",
                dir, err.msg[0] != '\0' ? err.msg : "no token");
        goto cleanup;
    }
    if ((fresh = calloc(1, sizeof(*fresh))) == NULL ||
        (fresh->user = strdup(user)) == NULL ||
        (fresh->profile_name = strdup(args->profile->name)) == NULL) {
        po_logf(&args->log, LOG_CRIT, "out of memory");
        po_pam_state_free(fresh);
        goto cleanup;
    }
    fresh->idp_user = e.username;
    e.username = NULL;
    fresh->token = e.token;
    memset(&e.token, 0, sizeof(e.token));
    fresh->uid = uid;
    fresh->gid = gid;
    fresh->home = home;
    home = NULL;
    fresh->local_name = local;
    local = NULL;
    if (po_pam_state_set(args->pamh, fresh) == PAM_SUCCESS) {
        st = po_pam_state_get(args->pamh);
        po_logf(&args->log, LOG_DEBUG,
                "the login's token came from the hand-off %s (authentication "
                "ran in another process)",
                dir);
    }
cleanup:
    remove_dir(dir);
    (void)pam_putenv(args->pamh, PO_PAM_ENV_HANDOFF);
out:
    po_cache_entry_free(&e);
    free(home);
    free(local);
    return st;
}

/*
 * session-refresh - renew the calling user's pam_oauth session token with
 * a client secret the user cannot read (renew.h; session-refresh(8)).
 *
 * Installed setgid to the group pam-oauth (mode 2755), which may read the
 * client secret file (root:pam-oauth 0640) and the rate limit's state
 * directory, and nothing else.  Not setuid: the cache is the user's and is
 * written as the user (the real and effective uid are the caller's from
 * start to end), so root is never needed; the group is dropped for good
 * (setresgid to the real gid) once the secret is in memory and the rate
 * limit's state file is open, before the cache is touched.  Like
 * unix_chkpwd: one job, for the caller only, its interface argv[1] and the
 * exit status; the environment is cleared, the configuration is the fixed
 * system file, nothing is printed, everything is logged to syslog
 * (LOG_AUTHPRIV) with the caller's uid.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "err.h"
#include "flow.h"
#include "renew.h"
#include "secret.h"

/* syslog, one line per call; the caller's uid on every line. */
typedef struct sr_log {
    uid_t uid;
    const char *profile;
} sr_log;

static void sr_syslog(void *ctx, int priority, const char *msg)
{
    const sr_log *l = ctx;

    syslog(priority, "uid %lu, profile %s: %s", (unsigned long)l->uid,
           l->profile != NULL ? l->profile : "-", msg);
}

/* The rate limit: the state file of (uid, profile), opened while the
 * group is held; read, checked and written through the descriptor after
 * the group is gone (permissions are checked at open). */
typedef struct sr_gate {
    int fd;
    int64_t now;
} sr_gate;

static po_rc gate_open(uid_t uid, const char *profile, sr_gate *g, po_err *err)
{
    struct stat st;
    char name[PO_PROFILE_NAME_MAX + 32];
    int dfd;

    g->fd = -1;
    dfd = open(PO_RENEW_STATE_DIR,
               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd == -1)
        return po_fail(err, PO_CONFIG,
                       "rate limit directory %s: %s (the package makes it "
                       "with systemd-tmpfiles: root:%s 0770)",
                       PO_RENEW_STATE_DIR, strerror(errno), PO_RENEW_GROUP);
    if (fstat(dfd, &st) == -1 || st.st_uid != 0 || st.st_gid != getegid() ||
        (st.st_mode & 07) != 0) {
        close(dfd);
        return po_fail(err, PO_CONFIG,
                       "rate limit directory %s must be owned by root, of "
                       "group %s (this program's), with no access for "
                       "others; refused",
                       PO_RENEW_STATE_DIR, PO_RENEW_GROUP);
    }
    (void)snprintf(name, sizeof(name), "%lu.%s", (unsigned long)uid, profile);
    g->fd = openat(dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
    close(dfd);
    if (g->fd == -1)
        return po_fail(err, PO_IO, "rate limit state %s/%s: %s",
                       PO_RENEW_STATE_DIR, name, strerror(errno));
    if (flock(g->fd, LOCK_EX) == -1)
        return po_fail(err, PO_IO, "rate limit state %s/%s: lock: %s",
                       PO_RENEW_STATE_DIR, name, strerror(errno));
    return PO_OK;
}

/* po_flow_admit_fn: refuse within PO_RENEW_MIN_INTERVAL of the last
 * request, else record this one. */
static po_rc gate_admit(void *ctx, po_err *err)
{
    sr_gate *g = ctx;
    char buf[32];
    ssize_t n;
    long long last = 0;
    int len;

    n = pread(g->fd, buf, sizeof(buf) - 1, 0);
    if (n > 0) {
        buf[n] = '\0';
        last = strtoll(buf, NULL, 10);
    }
    if (last > 0 && g->now >= last && g->now - last < PO_RENEW_MIN_INTERVAL)
        return po_fail(err, PO_RATE_LIMITED,
                       "refused: the last refresh was %lld s ago (at most "
                       "one per %d s)",
                       (long long)(g->now - last), PO_RENEW_MIN_INTERVAL);
    len = snprintf(buf, sizeof(buf), "%lld\n", (long long)g->now);
    if (ftruncate(g->fd, 0) == -1 || pwrite(g->fd, buf, (size_t)len, 0) != len)
        return po_fail(err, PO_IO, "cannot record the refresh in %s: %s",
                       PO_RENEW_STATE_DIR, strerror(errno));
    return PO_OK;
}

/* The system file: root's, as pam_oauth requires it. */
static po_rc load_config(po_config *cfg, po_err *err)
{
    struct stat st;

    if (lstat(PO_SYSTEM_CONFIG, &st) == -1)
        return po_fail(err, PO_CONFIG, "%s: %s", PO_SYSTEM_CONFIG,
                       strerror(errno));
    if (st.st_uid != 0)
        return po_fail(err, PO_CONFIG, "%s is not owned by root; refused",
                       PO_SYSTEM_CONFIG);
    return po_config_load_file(cfg, PO_SYSTEM_CONFIG, PO_CFG_STRICT_OWNER, err);
}

/* Give up the group for good: all three gids the caller's real gid. */
static po_rc drop_group(gid_t gid, po_err *err)
{
    gid_t r, e, s;

    if (setresgid(gid, gid, gid) == -1)
        return po_fail(err, PO_IO, "setresgid(%lu): %s", (unsigned long)gid,
                       strerror(errno));
    if (getresgid(&r, &e, &s) == -1 || r != gid || e != gid || s != gid)
        return po_fail(err, PO_IO, "the group was not dropped");
    return PO_OK;
}

static int run(int argc, char **argv, sr_log *lg)
{
    po_log log = {sr_syslog, lg, 0};
    po_config cfg;
    po_profile *p = NULL, check;
    po_flow f;
    po_user u;
    sr_gate gate = {-1, 0};
    struct passwd pw, *res = NULL;
    char pwbuf[4096], *dir = NULL, *idp = NULL;
    const char *name;
    int renewed = 0, internal = 0, status;
    po_err err;
    po_rc rc = PO_OK;

    po_err_clear(&err);
    po_config_init(&cfg);
    memset(&check, 0, sizeof(check));
    if (argc != 2 || argv[1] == NULL) {
        rc = po_fail(&err, PO_USAGE, "usage: session-refresh PROFILE");
        goto out;
    }
    rc = po_profile_init(&check, argv[1], &err);
    po_profile_free(&check);
    if (rc != PO_OK) {
        rc = po_fail(&err, PO_USAGE,
                     "usage: session-refresh PROFILE: not a valid profile "
                     "name");
        goto out;
    }
    name = argv[1];
    lg->profile = name;
    if (getpwuid_r(lg->uid, &pw, pwbuf, sizeof(pwbuf), &res) != 0 ||
        res == NULL) {
        rc = po_fail(&err, PO_ACCESS_DENIED, "no passwd entry for the caller");
        goto out;
    }
    if ((rc = load_config(&cfg, &err)) != PO_OK)
        goto out;
    if ((p = po_config_find(&cfg, name)) == NULL) {
        rc = po_fail(&err, PO_CONFIG, "no profile [%s] in %s", name,
                     PO_SYSTEM_CONFIG);
        goto out;
    }
    if ((rc = po_profile_validate_pam(p, &err)) != PO_OK)
        goto out;
    if (!p->store_token) {
        rc = po_fail(&err, PO_CONFIG,
                     "profile [%s] has store_token off: pam_oauth stores no "
                     "session token for it; refused",
                     name);
        goto out;
    }
    if ((long)lg->uid < p->minimum_uid) {
        rc = po_fail(&err, PO_ACCESS_DENIED,
                     "uid %lu is below the profile's minimum_uid %ld; refused",
                     (unsigned long)lg->uid, p->minimum_uid);
        goto out;
    }
    if ((rc = po_profile_map_user(p->username_format, pw.pw_name, &idp,
                                  &err)) != PO_OK)
        goto out;
    u.name = pw.pw_name;
    u.uid = pw.pw_uid;
    u.gid = pw.pw_gid;
    u.home = pw.pw_dir;
    if ((rc = po_cache_user_dir(p, &u, &dir, &err)) != PO_OK)
        goto out;
    /* With the group: the secret and the rate limit's file; then never
     * again. */
    gate.now = (int64_t)time(NULL);
    if ((rc = gate_open(lg->uid, name, &gate, &err)) != PO_OK ||
        (rc = po_profile_load_secret(p, &log, &err)) != PO_OK)
        goto out;
    if ((rc = drop_group(getgid(), &err)) != PO_OK) {
        internal = 1;
        goto out;
    }
    memset(&f, 0, sizeof(f));
    f.profile = p;
    f.cache_dir = dir;
    f.log = &log;
    rc = po_flow_renew_session(&f, idp, gate_admit, &gate, &renewed, &err);
    if (rc == PO_OK)
        syslog(LOG_INFO, "uid %lu, profile %s: %s", (unsigned long)lg->uid,
               name,
               renewed ? "session token refreshed" : "session token is fresh");
out:
    /* Whatever happened, the group is not kept to the end (so that no
     * exit handler runs with it). */
    if (getegid() != getgid() && drop_group(getgid(), &err) != PO_OK) {
        rc = PO_IO;
        internal = 1;
    }
    status = internal ? PO_RENEW_EXIT_INTERNAL : po_renew_exit_status(rc);
    if (rc != PO_OK)
        syslog(rc == PO_ACCESS_DENIED || rc == PO_RATE_LIMITED ? LOG_NOTICE
                                                               : LOG_ERR,
               "uid %lu, profile %s: %s (exit %d)", (unsigned long)lg->uid,
               lg->profile != NULL ? lg->profile : "-", err.msg, status);
    if (gate.fd != -1)
        close(gate.fd);
    free(idp);
    free(dir);
    po_config_free(&cfg);
    return status;
}

int main(int argc, char **argv)
{
    struct rlimit none = {0, 0};
    sr_log lg;
    int fd;

    /* No core file, no ptrace by the caller (a setgid program is not
     * dumpable already), nothing from the environment, private files. */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    (void)setrlimit(RLIMIT_CORE, &none);
    (void)clearenv();
    (void)umask(077);
    /* 0, 1 and 2 open, so that no file we open becomes one of them. */
    while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
        ;
    if (fd > 2)
        close(fd);
    lg.uid = getuid();
    lg.profile = NULL;
    openlog("pam-oauth-session-refresh", LOG_PID, LOG_AUTHPRIV);
    return run(argc, argv, &lg);
}

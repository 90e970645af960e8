/* files.c - private files in a checked directory (files.h). */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"
#include "util.h"

/* A single path component: not empty, no '/', not "." or "..". */
static int component_ok(const char *name)
{
    return name != NULL && name[0] != '\0' && strchr(name, '/') == NULL &&
           strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Check the directory open at fd (fstat) against uid and forbid. */
static po_rc check_dir(int fd, const char *path, uid_t uid, mode_t forbid,
                       const char *what, po_err *err)
{
    struct stat st;

    if (fstat(fd, &st) == -1)
        return po_fail(err, PO_IO, "cannot stat %s %s: %s", what, path,
                       strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return po_fail(err, PO_IO, "%s %s is not a directory", what, path);
    if (st.st_uid != uid)
        return po_fail(err, PO_IO,
                       "%s %s is owned by uid %lu, not %lu; refusing to use it",
                       what, path, (unsigned long)st.st_uid,
                       (unsigned long)uid);
    if ((st.st_mode & forbid) != 0)
        return po_fail(err, PO_IO,
                       "%s %s has mode %04o, which gives group or others "
                       "access it must not have; refusing to use it (chmod "
                       "%04o %s)",
                       what, path, (unsigned)(st.st_mode & 07777),
                       (unsigned)(st.st_mode & 07777 & ~forbid), path);
    return PO_OK;
}

/* Why open(2) of a directory failed, as a message; is_link tells whether
 * the path is a symbolic link (O_DIRECTORY | O_NOFOLLOW on a link fails
 * with ENOTDIR, not ELOOP). */
static po_rc open_dir_error(int e, int is_link, const char *path,
                            const char *what, po_err *err)
{
    if (e == ENOENT)
        return po_fail(err, PO_NOT_FOUND, "%s %s does not exist", what, path);
    if (e == ELOOP || is_link)
        return po_fail(err, PO_IO,
                       "%s %s is a symbolic link; refusing to use it", what,
                       path);
    if (e == ENOTDIR)
        return po_fail(err, PO_IO,
                       "%s %s is not a directory; refusing to use it", what,
                       path);
    return po_fail(err, PO_IO, "cannot open %s %s: %s", what, path,
                   strerror(e));
}

/* The end of both directory opens: fd is the open(2) result (errno in e,
 * is_link whether the path is a symbolic link), checked and kept in *out
 * or closed. */
static po_rc adopt_dir(int fd, int e, int is_link, const char *path, uid_t uid,
                       mode_t forbid, const char *what, int *out, po_err *err)
{
    po_rc rc;

    if (fd == -1)
        return open_dir_error(e, is_link, path, what, err);
    if ((rc = check_dir(fd, path, uid, forbid, what, err)) != PO_OK) {
        close(fd);
        return rc;
    }
    *out = fd;
    return PO_OK;
}

/* Make the missing components of path (modified in place and restored)
 * with mode 0700. */
static po_rc make_parents(char *path, const char *what, po_err *err)
{
    struct stat st;
    char *s, c;

    if (lstat(path, &st) == 0 || errno != ENOENT)
        return PO_OK;
    for (s = path + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        c = *s;
        *s = '\0';
        if (lstat(path, &st) == -1) {
            if (errno != ENOENT ||
                (mkdir(path, 0700) == -1 && errno != EEXIST)) {
                po_rc rc = po_fail(err, PO_IO, "cannot create %s: mkdir %s: %s",
                                   what, path, strerror(errno));
                *s = c;
                return rc;
            }
        }
        *s = c;
        if (c == '\0')
            break;
    }
    return PO_OK;
}

po_rc po_dir_open(const char *dir, int create, uid_t uid, mode_t forbid,
                  const char *what, int *dfd, po_err *err)
{
    po_rc rc = PO_OK;
    char *path = NULL;
    struct stat st;
    size_t n;
    int fd, e;

    *dfd = -1;
    if (dir == NULL || dir[0] != '/') {
        rc = po_fail(err, PO_CONFIG, "%s '%s' is not an absolute path", what,
                     dir != NULL ? dir : "");
        goto out;
    }
    /* Without its trailing slashes: "dir/" would make O_NOFOLLOW follow a
     * link named dir. */
    for (n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
        ;
    if ((path = po_strndup(dir, n)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    if (create && (rc = make_parents(path, what, err)) != PO_OK)
        goto out;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    e = errno;
    rc = adopt_dir(fd, e,
                   fd == -1 && lstat(path, &st) == 0 && S_ISLNK(st.st_mode),
                   path, uid, forbid, what, dfd, err);
out:
    free(path);
    return rc;
}

po_rc po_dir_open_at(int dfd, const char *dir, const char *name, int create,
                     uid_t uid, mode_t forbid, const char *what, int *out,
                     po_err *err)
{
    po_rc rc = PO_OK;
    char *path = NULL;
    struct stat st;
    int fd, e;

    *out = -1;
    if (!component_ok(name)) {
        rc = po_fail(err, PO_USAGE, "%s: invalid directory name", what);
        goto out;
    }
    if ((path = po_concat3(dir, "/", name)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1 && errno == ENOENT && create) {
        if (mkdirat(dfd, name, 0700) == -1 && errno != EEXIST) {
            rc = po_fail(err, PO_IO, "cannot create %s %s: %s", what, path,
                         strerror(errno));
            goto out;
        }
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    e = errno;
    rc = adopt_dir(fd, e,
                   fd == -1 &&
                       fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                       S_ISLNK(st.st_mode),
                   path, uid, forbid, what, out, err);
out:
    free(path);
    return rc;
}

po_rc po_file_read_at(int dfd, const char *name, uid_t uid, size_t max,
                      char **out, size_t *len, po_err *err)
{
    po_rc rc = PO_OK;
    struct stat st;
    int fd = -1, e;

    *out = NULL;
    *len = 0;
    if (!component_ok(name)) {
        rc = po_fail(err, PO_USAGE, "invalid file name");
        goto out;
    }
    fd = openat(dfd, name,
                O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd == -1) {
        e = errno;
        if (e == ENOENT)
            rc = po_fail(err, PO_NOT_FOUND, "no file");
        else if (e == ELOOP)
            rc = po_fail(err, PO_IO, "it is a symbolic link");
        else
            rc = po_fail(err, PO_IO, "cannot open it: %s", strerror(e));
        goto out;
    }
    if (fstat(fd, &st) == -1) {
        rc = po_fail(err, PO_IO, "cannot stat it: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = po_fail(err, PO_IO, "not a regular file");
        goto out;
    }
    if (st.st_uid != uid) {
        rc = po_fail(err, PO_IO, "owned by uid %lu, not %lu",
                     (unsigned long)st.st_uid, (unsigned long)uid);
        goto out;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        rc = po_fail(err, PO_IO,
                     "mode %04o gives group or others access (must be 0600)",
                     (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = po_fail(err, PO_IO, "larger than %zu bytes", max);
        goto out;
    }
    rc = po_read_fd(fd, (size_t)st.st_size, 1, out, len, err);
out:
    if (fd != -1)
        close(fd);
    return rc;
}

/* prefix + PO_TEMP_SUFFIX_LEN random characters, malloc'd. */
static char *temp_name(const char *prefix)
{
    static const char alnum[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[PO_TEMP_SUFFIX_LEN];
    char sfx[PO_TEMP_SUFFIX_LEN + 1];
    size_t i;

    if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        /* Only uniqueness matters here (O_EXCL catches a clash). */
        uint64_t x =
            po_mono_ms() ^ ((uint64_t)getpid() << 20) ^ (uint64_t)(uintptr_t)r;
        for (i = 0; i < sizeof(r); i++, x = x * 6364136223846793005u + 1)
            r[i] = (unsigned char)(x >> 56);
    }
    for (i = 0; i < PO_TEMP_SUFFIX_LEN; i++)
        sfx[i] = alnum[r[i] % (sizeof(alnum) - 1)];
    sfx[PO_TEMP_SUFFIX_LEN] = '\0';
    return po_concat3(prefix, sfx, "");
}

po_rc po_file_replace_at(int dfd, const char *dir, const char *name,
                         const char *tmp_prefix, const void *data, size_t len,
                         po_err *err)
{
    po_rc rc = PO_OK;
    char *tmp = NULL;
    int fd = -1, tries, created = 0;

    if (!component_ok(name) || !component_ok(tmp_prefix)) {
        rc = po_fail(err, PO_USAGE, "%s: invalid file name", dir);
        goto out;
    }
    for (tries = 0; tries < 100; tries++) {
        free(tmp);
        if ((tmp = temp_name(tmp_prefix)) == NULL) {
            rc = po_fail(err, PO_NOMEM, "out of memory");
            goto out;
        }
        fd = openat(dfd, tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd != -1 || errno != EEXIST)
            break;
    }
    if (fd == -1) {
        rc = po_fail(err, PO_IO, "cannot create a temporary file in %s: %s",
                     dir, strerror(errno));
        goto out;
    }
    created = 1;
    if (fchmod(fd, 0600) == -1 || po_write_all(fd, data, len) == -1 ||
        fsync(fd) == -1) {
        rc = po_fail(err, PO_IO, "cannot write %s/%s: %s", dir, name,
                     strerror(errno));
        goto out;
    }
    if (close(fd) == -1) {
        fd = -1;
        rc = po_fail(err, PO_IO, "cannot write %s/%s: %s", dir, name,
                     strerror(errno));
        goto out;
    }
    fd = -1;
    if (renameat(dfd, tmp, dfd, name) == -1) {
        rc = po_fail(err, PO_IO, "cannot rename %s/%s to %s: %s", dir, tmp,
                     name, strerror(errno));
        goto out;
    }
    created = 0;
    if (fsync(dfd) == -1 && errno != EINVAL) {
        rc = po_fail(err, PO_IO, "cannot sync directory %s: %s", dir,
                     strerror(errno));
        goto out;
    }
out:
    if (fd != -1)
        close(fd);
    if (created)
        (void)unlinkat(dfd, tmp, 0);
    free(tmp);
    return rc;
}

po_rc po_file_remove_at(int dfd, const char *dir, const char *name, po_err *err)
{
    if (!component_ok(name))
        return po_fail(err, PO_USAGE, "%s: invalid file name", dir);
    if (unlinkat(dfd, name, 0) == -1 && errno != ENOENT)
        return po_fail(err, PO_IO, "cannot remove %s/%s: %s", dir, name,
                       strerror(errno));
    return PO_OK;
}

void po_file_remove_temps_at(int dfd, const char *tmp_prefix)
{
    size_t pl = strlen(tmp_prefix), i;
    struct dirent *de;
    DIR *d;
    int fd;

    if ((fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
        return;
    if ((d = fdopendir(fd)) == NULL) {
        close(fd);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;

        if (strncmp(n, tmp_prefix, pl) != 0 ||
            strlen(n + pl) != PO_TEMP_SUFFIX_LEN)
            continue;
        for (i = 0; i < PO_TEMP_SUFFIX_LEN; i++) {
            char c = n[pl + i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  (c >= '0' && c <= '9')))
                break;
        }
        if (i == PO_TEMP_SUFFIX_LEN)
            (void)unlinkat(dfd, n, 0);
    }
    closedir(d);
}

po_rc po_file_lock_at(int dfd, const char *dir, const char *name,
                      long timeout_ms, po_flock *out, po_err *err)
{
    po_rc rc = PO_OK;
    struct stat st;
    uint64_t start, now, step = 2, left;
    int fd = -1;

    out->fd = -1;
    if (!component_ok(name)) {
        rc = po_fail(err, PO_USAGE, "%s: invalid lock file name", dir);
        goto out;
    }
    fd = openat(dfd, name,
                O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
                    O_NOCTTY,
                0600);
    if (fd == -1) {
        rc =
            po_fail(err, PO_IO, "cannot open lock %s/%s: %s", dir, name,
                    errno == ELOOP ? "it is a symbolic link" : strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        rc = po_fail(err, PO_IO, "lock %s/%s is not a regular file", dir, name);
        goto out;
    }
    start = po_mono_ms();
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            break;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            rc = po_fail(err, PO_IO, "cannot lock %s/%s: %s", dir, name,
                         strerror(errno));
            goto out;
        }
        now = po_mono_ms();
        if (timeout_ms <= 0 || now - start >= (uint64_t)timeout_ms) {
            rc = po_fail(err, PO_LOCKED,
                         "lock %s/%s is held by another process for more "
                         "than %ld ms",
                         dir, name, timeout_ms < 0 ? 0 : timeout_ms);
            goto out;
        }
        left = (uint64_t)timeout_ms - (now - start);
        po_sleep_ms(step < left ? step : left);
        if (step < 50)
            step = step * 2 > 50 ? 50 : step * 2;
    }
    out->fd = fd;
    fd = -1;
out:
    if (fd != -1)
        close(fd);
    return rc;
}

void po_file_unlock(po_flock *l)
{
    if (l == NULL || l->fd == -1)
        return;
    (void)flock(l->fd, LOCK_UN);
    close(l->fd);
    l->fd = -1;
}

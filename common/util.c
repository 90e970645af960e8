/* util.c - clocks, safe file reading and the environment. */
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "secret.h"

uint64_t po_mono_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void po_sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

void po_format_utc(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (n == 0)
        return;
    if (gmtime_r(&tt, &tm) == NULL ||
        strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        (void)snprintf(buf, n, "%lld", (long long)t);
}

const char *po_secure_getenv(const char *name)
{
    if (getauxval(AT_SECURE) != 0)
        return NULL;
    return getenv(name);
}

po_rc po_read_fd(int fd, size_t size, int secret, char **out, size_t *len,
                 po_err *err)
{
    po_rc rc = PO_OK;
    char *buf = NULL;
    size_t used = 0;

    *out = NULL;
    *len = 0;
    if ((buf = malloc(size + 1)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    while (used < size) {
        ssize_t n = read(fd, buf + used, size - used);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            rc = po_fail(err, PO_IO, "read error: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    buf[used] = '\0';
    *out = buf;
    *len = used;
    buf = NULL;
out:
    if (buf != NULL) {
        if (secret)
            po_cleanse(buf, size + 1);
        free(buf);
    }
    return rc;
}

po_rc po_read_file(const char *path, size_t max, int secret, char **out,
                   size_t *len, struct stat *st_out, po_err *err)
{
    po_rc rc = PO_OK;
    struct stat st;
    size_t used = 0;
    int fd = -1;
    po_err e;

    *out = NULL;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd == -1) {
        if (errno == ENOENT)
            rc = po_fail(err, PO_NOT_FOUND, "%s: no such file", path);
        else if (errno == ELOOP)
            rc = po_fail(err, PO_IO, "%s: is a symbolic link, refused", path);
        else
            rc = po_fail(err, PO_IO, "%s: cannot open: %s", path,
                         strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) == -1) {
        rc = po_fail(err, PO_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = po_fail(err, PO_IO, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = po_fail(err, PO_TOO_LARGE, "%s: larger than %zu bytes", path, max);
        goto out;
    }
    if ((rc = po_read_fd(fd, (size_t)st.st_size, secret, out, &used, &e)) !=
        PO_OK) {
        rc = po_fail(err, rc, "%s: %s", path, e.msg);
        goto out;
    }
    if (len != NULL)
        *len = used;
    if (st_out != NULL)
        *st_out = st;
out:
    if (fd != -1)
        close(fd);
    return rc;
}

po_rc po_home_dir(char **out, po_err *err)
{
    const char *home = po_secure_getenv("HOME");
    struct passwd pw, *res = NULL;
    char buf[4096];

    if (home == NULL || home[0] != '/') {
        if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) != 0 ||
            res == NULL || pw.pw_dir == NULL || pw.pw_dir[0] != '/')
            return po_fail(err, PO_IO,
                           "cannot find the home directory of uid %lu",
                           (unsigned long)geteuid());
        home = pw.pw_dir;
    }
    if ((*out = strdup(home)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    return PO_OK;
}

/* a + b + c, malloc'd. */
char *po_concat3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);

    if (s != NULL)
        (void)snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

po_rc po_check_dir_chain(const char *dir, uid_t uid, po_err *err)
{
    char *path = realpath(dir, NULL), *slash;
    struct stat st;
    po_rc rc = PO_OK;

    if (path == NULL)
        return po_fail(err, PO_IO, "cannot resolve directory %s: %s", dir,
                       strerror(errno));
    for (;;) {
        if (stat(path, &st) == -1) {
            rc = po_fail(err, PO_IO, "cannot stat directory %s: %s", path,
                         strerror(errno));
            goto out;
        }
        if (!S_ISDIR(st.st_mode)) {
            rc = po_fail(err, PO_IO, "%s is not a directory", path);
            goto out;
        }
        if (st.st_uid != 0 && st.st_uid != uid) {
            rc = po_fail(
                err, PO_IO, "directory %s is owned by uid %lu, not by root%s",
                path, (unsigned long)st.st_uid, uid != 0 ? " or the user" : "");
            goto out;
        }
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
            !(st.st_uid == 0 && (st.st_mode & S_ISVTX))) {
            rc = po_fail(err, PO_IO,
                         "directory %s is writable by %s (mode %04o)", path,
                         (st.st_mode & S_IWOTH) ? "others" : "its group",
                         (unsigned)(st.st_mode & 07777));
            goto out;
        }
        if (strcmp(path, "/") == 0)
            break;
        slash = strrchr(path, '/');
        if (slash == path)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
out:
    free(path);
    return rc;
}

const char *po_next_word(const char **s, size_t *n)
{
    const char *w = *s;

    while (*w == ' ' || *w == '\t')
        w++;
    if (*w == '\0') {
        *s = w;
        return NULL;
    }
    *n = strcspn(w, " \t");
    *s = w + *n;
    return w;
}

int po_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w == -1 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int po_is_month(const char *s, size_t n)
{
    size_t i;

    if (s == NULL || n != 7 || s[4] != '-')
        return 0;
    for (i = 0; i < 7; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9'))
            return 0;
    return (s[5] == '0' && s[6] >= '1') || (s[5] == '1' && s[6] <= '2');
}

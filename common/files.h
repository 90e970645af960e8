/*
 * files.h - private files in a checked directory: every access relative
 * to a directory descriptor, no symbolic link followed, files replaced
 * atomically and locked with flock.
 *
 * The caller opens a directory once with po_dir_open (which checks its
 * owner and mode) and then names files in it by one path component, so a
 * rename or a link planted in a parent between two calls cannot redirect
 * a later one.  dir (the path the descriptor was opened with) only names
 * the directory in messages.  Names must be single components: no '/',
 * not "." or "..".
 */
#ifndef PO_FILES_H
#define PO_FILES_H

#include <stddef.h>
#include <sys/types.h>
#include "err.h"

#define PO_TEMP_SUFFIX_LEN 6 /* tmp_prefix + 6 of [A-Za-z0-9] */

/* Open the directory dir (an absolute path; a symbolic link as its last
 * component is refused) into *dfd and check that it is owned by uid and
 * that none of the mode bits in forbid are set (S_IWGRP | S_IWOTH: not
 * writable by others; 077: private).  With create, missing components are
 * made first with mode 0700.  what names the directory in messages
 * ("offline verifier directory").  PO_NOT_FOUND when it does not exist
 * (and create is 0), PO_IO with the reason otherwise. */
po_rc po_dir_open(const char *dir, int create, uid_t uid, mode_t forbid,
                  const char *what, int *dfd, po_err *err);

/* The same for the subdirectory name of the directory dfd (dir is its
 * path, for messages): opened without following a link, made with mode
 * 0700 when create is set and it is missing, and checked like
 * po_dir_open. */
po_rc po_dir_open_at(int dfd, const char *dir, const char *name, int create,
                     uid_t uid, mode_t forbid, const char *what, int *out,
                     po_err *err);

/* Read the file name in dfd into a NUL-terminated malloc'd buffer (*out,
 * *len bytes), treated as a secret (cleansed on every error path).  The
 * file must be a regular file (no link followed), owned by uid, with no
 * group or other permission bits, at most max bytes.  PO_NOT_FOUND when
 * it does not exist; PO_IO with the reason ("it is a symbolic link",
 * "owned by uid 5, not 0", "mode 0644 gives group or others access")
 * when it is unusable; PO_NOMEM. */
po_rc po_file_read_at(int dfd, const char *name, uid_t uid, size_t max,
                      char **out, size_t *len, po_err *err);

/* Replace the file name in dfd with len bytes of data: a new temporary
 * file tmp_prefix + 6 random characters (O_CREAT | O_EXCL | O_NOFOLLOW,
 * mode 0600), written, fsync'd, renamed over name, then the directory
 * fsync'd.  A reader sees the old file or the new one, never a mix; on
 * failure the temporary file is removed and name is left as it was.
 * PO_IO naming dir/name and the reason. */
po_rc po_file_replace_at(int dfd, const char *dir, const char *name,
                         const char *tmp_prefix, const void *data, size_t len,
                         po_err *err);

/* Remove the file name from dfd; one that does not exist is not an
 * error.  PO_IO naming dir/name otherwise. */
po_rc po_file_remove_at(int dfd, const char *dir, const char *name,
                        po_err *err);

/* Remove the files of dfd named tmp_prefix followed by exactly
 * PO_TEMP_SUFFIX_LEN characters of [A-Za-z0-9]: what po_file_replace_at
 * leaves behind when its process is killed.  Call it only while holding
 * the lock that every writer of those files takes. */
void po_file_remove_temps_at(int dfd, const char *tmp_prefix);

/* An exclusive flock on the lock file name in dfd (created, mode 0600,
 * without following a link).  Waits at most timeout_ms, then PO_LOCKED
 * with a message naming dir/name ("held by another process for more than
 * N ms").  On PO_OK the lock is held until po_file_unlock. */
typedef struct po_flock {
    int fd; /* -1: not held */
} po_flock;
po_rc po_file_lock_at(int dfd, const char *dir, const char *name,
                      long timeout_ms, po_flock *out, po_err *err);

/* Release a lock taken by po_file_lock_at; a no-op when fd is -1. */
void po_file_unlock(po_flock *l);

#endif

/*
 * util.h - clocks, safe file access and the process environment.
 */
#ifndef PO_UTIL_H
#define PO_UTIL_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include "err.h"

/* Milliseconds on CLOCK_MONOTONIC: for deadlines. */
uint64_t po_mono_ms(void);

/* Sleep ms milliseconds (restarting after signals). */
void po_sleep_ms(uint64_t ms);

/* getenv(name), or NULL when the process runs with elevated privileges
 * (getauxval(AT_SECURE): setuid/setgid/capabilities), so that nothing a
 * caller controls through the environment is trusted there. */
const char *po_secure_getenv(const char *name);

/* Read the whole regular file at path into a NUL-terminated malloc'd
 * buffer, refusing symlinks (O_NOFOLLOW), non-regular files and files
 * larger than max bytes.  When secret is set the buffer is treated as a
 * secret (cleansed on error paths).  On success *out and *len are set; st
 * (when not NULL) receives the fstat of the opened file. */
struct stat;
po_rc po_read_file(const char *path, size_t max, int secret, char **out,
                   size_t *len, struct stat *st, po_err *err);

/* Read up to size bytes (a regular file's size from fstat: a file that
 * grew meanwhile is read only that far) from fd into a NUL-terminated
 * malloc'd buffer, *out, with *len the bytes read.  When secret is set a
 * buffer abandoned on error is cleansed.  PO_NOMEM, or PO_IO with
 * "read error: REASON". */
po_rc po_read_fd(int fd, size_t size, int secret, char **out, size_t *len,
                 po_err *err);

/* A directory path for the current user, malloc'd, or NULL with err set:
 * the home directory from $HOME (unless AT_SECURE) or the password
 * database. */
po_rc po_home_dir(char **out, po_err *err);

/* Wall-clock time t (seconds) as "YYYY-MM-DD HH:MM:SS UTC" into buf (size
 * n); the number itself when it is out of gmtime's range. */
void po_format_utc(int64_t t, char *buf, size_t n);

/* sshd's StrictModes rule for the directories that hold a file: dir and
 * every directory above it (after resolving links with realpath) are
 * owned by root or by uid, and not writable by group or others, except a
 * root-owned sticky directory such as /tmp (where nobody else can rename
 * or remove what root put there).  PO_IO with a message naming the first
 * directory that breaks the rule and why ("directory /x is writable by
 * group or others (mode 0775)"), or that cannot be resolved. */
po_rc po_check_dir_chain(const char *dir, uid_t uid, po_err *err);

/* The next word of the space- or tab-separated list at *s: returns it
 * (not NUL-terminated; *n its length) and moves *s past it; NULL when only
 * white space is left. */
const char *po_next_word(const char **s, size_t *n);

/* write(2) all n bytes at p to fd, restarting after EINTR and short
 * writes.  0, or -1 with errno set. */
int po_write_all(int fd, const void *p, size_t n);

/* a, b and c concatenated, malloc'd; NULL when out of memory. */
char *po_concat3(const char *a, const char *b, const char *c);

/* Whether the n bytes at s are a month "YYYY-MM": four digits, '-', and
 * 01 to 12 (the budget months of cache entries and the fleet's record). */
int po_is_month(const char *s, size_t n);

#endif

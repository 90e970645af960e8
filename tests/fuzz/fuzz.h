/*
 * fuzz.h - what the fuzz targets in tests/fuzz/ share.
 *
 * Each fuzz_NAME.c defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize) and calls the real core functions on the bytes it
 * is given, with no network and no files.  The same file builds two ways:
 * with clang -fsanitize=fuzzer (make fuzz: libFuzzer's main, coverage
 * guided) and with the project's compiler and standalone.c's main (make
 * check: each corpus file once, in the build's sanitizer setting).
 *
 * A property the target checks fails with FUZZ_CHECK, which prints what
 * failed and aborts, so that libFuzzer saves the input as a crash.
 */
#ifndef PO_FUZZ_H
#define PO_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__,          \
                    __LINE__, #cond);                                          \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* A reader over the input, for targets that take several fields. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in;

/* The next byte, or 0 when the input is used up. */
static inline unsigned fuzz_byte(fuzz_in *in)
{
    unsigned b;

    if (in->n == 0)
        return 0;
    b = in->p[0];
    in->p++;
    in->n--;
    return b;
}

/* The bytes up to the next '\n' (not included, consumed) or the end, as a
 * malloc'd NUL-terminated string (a NUL inside stays: C functions see the
 * part before it).  Aborts when out of memory. */
static inline char *fuzz_line(fuzz_in *in, size_t *len)
{
    const uint8_t *nl = memchr(in->p, '\n', in->n);
    size_t n = nl != NULL ? (size_t)(nl - in->p) : in->n;
    char *s = malloc(n + 1);

    if (s == NULL)
        abort();
    if (n > 0)
        memcpy(s, in->p, n);
    s[n] = '\0';
    in->p += n + (nl != NULL);
    in->n -= n + (nl != NULL);
    if (len != NULL)
        *len = n;
    return s;
}

/* The rest of the input as a malloc'd NUL-terminated copy. */
static inline char *fuzz_rest(fuzz_in *in, size_t *len)
{
    char *s = malloc(in->n + 1);

    if (s == NULL)
        abort();
    if (in->n > 0)
        memcpy(s, in->p, in->n);
    s[in->n] = '\0';
    if (len != NULL)
        *len = in->n;
    in->p += in->n;
    in->n = 0;
    return s;
}

/* Whether the NUL-terminated s is free of control characters (C0 but
 * TAB, and DEL): what every message and log line must be, so that no input
 * can forge a log line or drive a terminal.  A TAB is allowed, as
 * po_cfg_shown allows it in a configuration value. */
static inline int fuzz_no_controls(const char *s)
{
    for (; *s != '\0'; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') ||
            (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

/* A po_log line function for targets whose code logs: a log line, like
 * every message, must be free of control characters.  Use it as
 * static const po_log fuzz_log = {fuzz_log_line, NULL, 1}; */
static inline void fuzz_log_line(void *ctx, int priority, const char *msg)
{
    (void)ctx;
    (void)priority;
    FUZZ_CHECK(fuzz_no_controls(msg), "control character in \"%s\"", msg);
}

static inline int fuzz_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower case is not what the encoder writes */
}

/* Form-decode (application/x-www-form-urlencoded) n bytes of s into a
 * malloc'd NUL-terminated string, its length in *len (may be NULL); NULL
 * when s is not in the encoder's output alphabet (unreserved characters,
 * '+' and upper-case %XX).  Written here, independently of the encoder
 * under test.  Aborts when out of memory. */
static inline char *fuzz_form_decode(const char *s, size_t n, size_t *len)
{
    char *out = malloc(n + 1);
    size_t i, o = 0;

    if (out == NULL)
        abort();
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            out[o++] = ' ';
        } else if (c == '%' && i + 2 < n && fuzz_hexval(s[i + 1]) >= 0 &&
                   fuzz_hexval(s[i + 2]) >= 0) {
            out[o++] =
                (char)(fuzz_hexval(s[i + 1]) << 4 | fuzz_hexval(s[i + 2]));
            i += 2;
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                   (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                   c == '*') {
            out[o++] = (char)c;
        } else {
            free(out);
            return NULL;
        }
    }
    out[o] = '\0';
    if (len != NULL)
        *len = o;
    return out;
}

#endif

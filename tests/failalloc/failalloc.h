/*
 * failalloc.h - allocation failure injection for tests (make check builds
 * it into $(B)/tests/failalloc/, never into what is installed).
 *
 * Programs and modules linked with $(FA_WRAP) (-Wl,--wrap=malloc,...)
 * send every malloc, calloc, realloc, strdup, strndup, asprintf and
 * vasprintf call of the objects linked that way (the core, pam_oauth,
 * the helper, and json-c and libcrypto linked statically for it) to
 * wrap.c, which counts them and fails the Nth one (NULL, errno ENOMEM),
 * the way pam-u2f's fuzz/wrap.c fails libc calls.  A module built so
 * finds the wrappers in the program that loads it (pam-failwalk exports
 * them).
 *
 * With PO_FAILALLOC=N in the environment, a program armed at start fails
 * its Nth allocation (0: count only) and reports at exit, on standard
 * error: "failalloc: COUNT allocations, failure injected at N|none".
 */
#ifndef PO_FAILALLOC_H
#define PO_FAILALLOC_H

/* Count allocations from now on and fail the nth (1-based); 0 counts
 * only. */
void po_failalloc_arm(long n);

/* Stop counting; returns the number counted since po_failalloc_arm. */
long po_failalloc_disarm(void);

/* Whether the armed failure has been injected. */
int po_failalloc_injected(void);

#endif

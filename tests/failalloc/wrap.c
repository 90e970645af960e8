/*
 * wrap.c - the allocation wrappers of failalloc.h: __wrap_X for each X
 * the link wraps (--wrap=X makes every reference to X in the wrapped
 * objects a reference to __wrap_X, and __real_X the real one).  Counting
 * is atomic: libcurl's resolver threads allocate too, though not through
 * here.  The test state is global on purpose: it belongs to the test
 * program, never to the module.
 */
#define _GNU_SOURCE
#include "failalloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);

/* Exported (the build hides symbols by default): a module linked with
 * the wrap finds them in the program. */
#define WRAPPER __attribute__((visibility("default")))
WRAPPER void *__wrap_malloc(size_t n);
WRAPPER void *__wrap_calloc(size_t n, size_t size);
WRAPPER void *__wrap_realloc(void *p, size_t n);
WRAPPER char *__wrap_strdup(const char *s);
WRAPPER char *__wrap_strndup(const char *s, size_t n);
WRAPPER int __wrap_vasprintf(char **out, const char *fmt, va_list ap);
WRAPPER int __wrap_asprintf(char **out, const char *fmt, ...);
WRAPPER int __wrap___vasprintf_chk(char **out, int flag, const char *fmt,
                                   va_list ap);
WRAPPER int __wrap___asprintf_chk(char **out, int flag, const char *fmt, ...);

/* The state lives in a MAP_SHARED page, so that a child the module forks
 * (pam_oauth writes a user's token from a child that dropped to the user)
 * counts in the same walk: its allocations are walked too, and a failure
 * it had is one the parent reports as injected. */
typedef struct fa_state {
    long armed;    /* 1 while counting                        */
    long fail_at;  /* the allocation to fail, 0 = none        */
    long count;    /* allocations counted since arming        */
    long injected; /* whether fail_at was reached             */
} fa_state;

static fa_state private_state;
static fa_state *st = &private_state;

void po_failalloc_arm(long n)
{
    __atomic_store_n(&st->count, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&st->injected, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&st->fail_at, n, __ATOMIC_SEQ_CST);
    __atomic_store_n(&st->armed, 1, __ATOMIC_SEQ_CST);
}

long po_failalloc_disarm(void)
{
    __atomic_store_n(&st->armed, 0, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&st->count, __ATOMIC_SEQ_CST);
}

int po_failalloc_injected(void)
{
    return __atomic_load_n(&st->injected, __ATOMIC_SEQ_CST) != 0;
}

/* Whether this allocation is the one to fail. */
static int fail_now(void)
{
    long n;

    if (!__atomic_load_n(&st->armed, __ATOMIC_SEQ_CST))
        return 0;
    n = __atomic_add_fetch(&st->count, 1, __ATOMIC_SEQ_CST);
    if (n != __atomic_load_n(&st->fail_at, __ATOMIC_SEQ_CST))
        return 0;
    __atomic_store_n(&st->injected, 1, __ATOMIC_SEQ_CST);
    errno = ENOMEM;
    return 1;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fail_now() ? NULL : __real_strndup(s, n);
}

int __wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
    if (fail_now()) {
        *out = NULL;
        return -1;
    }
    return __real_vasprintf(out, fmt, ap);
}

int __wrap_asprintf(char **out, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = __wrap_vasprintf(out, fmt, ap);
    va_end(ap);
    return r;
}

/* _FORTIFY_SOURCE turns asprintf into __asprintf_chk (json-c is built
 * so): the checks are the format's, which vasprintf makes as well. */
int __wrap___vasprintf_chk(char **out, int flag, const char *fmt, va_list ap)
{
    (void)flag;
    return __wrap_vasprintf(out, fmt, ap);
}

int __wrap___asprintf_chk(char **out, int flag, const char *fmt, ...)
{
    va_list ap;
    int r;

    (void)flag;
    va_start(ap, fmt);
    r = __wrap_vasprintf(out, fmt, ap);
    va_end(ap);
    return r;
}

/* A crash: where it happened, as "failalloc: frame FILE+0xOFFSET" lines
 * (addr2line -f -e FILE OFFSET names the function, static json-c and
 * libcrypto included), then the default action.  The sanitizer build
 * leaves this to AddressSanitizer, which prints its own stack. */
static void crashed(int sig)
{
    void *frames[64];
    char line[4200];
    Dl_info info;
    int n, i, len;

    len = snprintf(line, sizeof(line), "failalloc: crash: signal %d\n", sig);
    (void)!write(2, line, (size_t)len);
    n = backtrace(frames, 64);
    for (i = 0; i < n; i++) {
        if (dladdr(frames[i], &info) == 0 || info.dli_fname == NULL)
            continue;
        /* a return address: the call is the byte before it */
        len = snprintf(
            line, sizeof(line), "failalloc: frame %s+0x%lx\n", info.dli_fname,
            (unsigned long)((char *)frames[i] - 1 - (char *)info.dli_fbase));
        if (len > 0 && (size_t)len < sizeof(line))
            (void)!write(2, line, (size_t)len);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* PO_FAILALLOC=N: armed from the start (oauth-token). */
__attribute__((constructor)) static void from_environment(void)
{
    const char *v = getenv("PO_FAILALLOC");
    void *shared;
#ifndef __SANITIZE_ADDRESS__
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    void *warm[1];
    size_t i;

    (void)backtrace(warm, 1); /* loads libgcc_s now, not in the handler */
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], crashed);
#else
    (void)crashed;
#endif
    shared = mmap(NULL, sizeof(fa_state), PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared != MAP_FAILED)
        st = shared; /* zeroed: not armed */
    if (v != NULL && *v != '\0')
        po_failalloc_arm(strtol(v, NULL, 10));
}

__attribute__((destructor)) static void report(void)
{
    char line[96];
    int n;

    if (getenv("PO_FAILALLOC") == NULL)
        return;
    n = snprintf(line, sizeof(line),
                 "failalloc: %ld allocations, failure injected at %s%ld\n",
                 __atomic_load_n(&st->count, __ATOMIC_SEQ_CST),
                 po_failalloc_injected() ? "" : "none, armed ",
                 __atomic_load_n(&st->fail_at, __ATOMIC_SEQ_CST));
    if (n > 0)
        (void)!write(2, line, (size_t)n);
}

/*
 * pam-failwalk - walk an allocation failure over a PAM login: for
 * N = FROM, FROM+STEP, ... run one transaction (pam_start, pam_authenticate,
 * then, when that succeeded, the operations of OPS, then pam_end) with the
 * Nth allocation of pam_oauth.so (its core, json-c and libcrypto: see
 * failalloc.h) failing, until a transaction makes fewer than N
 * allocations.  Before the walk one transaction runs without a failure
 * (the warm-up: libcurl and OpenSSL initialise once per process) and
 * counts the allocations.
 *
 *   pam-failwalk [-o OPS] [-f FROM] [-t TO] [-s STEP] [-c CACHEFILE]
 *                [-m MODULE] SERVICE USER < password
 *
 * STEP (default 1) lets walks run side by side: -f 1 -s 2 and -f 2 -s 2
 * together cover every N.
 *
 * -m loads MODULE (the service's pam_oauth.so) first with RTLD_NODELETE,
 * so that libpam's dlclose at pam_end does not unload it: its static
 * libcrypto then initialises once, in the warm-up, as a shared libcrypto
 * does in a daemon, and the walk covers what a login does.
 * One line per transaction:
 *   N authenticate RC [OP RC ...] [cache ok|absent|BAD] injected 0|1
 *   allocations COUNT [leaked]
 * (the warm-up is N 0), then "done".  "leaked": built with
 * AddressSanitizer, LeakSanitizer found memory leaked since the last
 * check (its report is on standard error); the walk then stops with
 * exit status 3, since every later check would report that leak again.  -c
 * checks after each transaction that CACHEFILE, when it exists, is a whole
 * entry (written by po_cache_entry_encode: one line from {"version":1 to }).
 * The caller judges the codes: this program only reports them.  Exit status 0,
 * 2 on a usage error, 3 after a leak.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "failalloc.h"
#include "pam-driver.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
/* A leak check after each transaction names the N that leaked (the
 * report goes to standard error); 1 when there were leaks. */
static int leaked(void)
{
    return __lsan_do_recoverable_leak_check() != 0;
}
#else
static int leaked(void)
{
    return 0;
}
#endif

static int usage(void)
{
    fprintf(stderr, "usage: pam-failwalk [-o OPS] [-f FROM] [-t TO] [-s STEP] "
                    "[-c CACHEFILE] [-m MODULE] SERVICE USER < password\n");
    return 2;
}

/* "ok", "absent" or "BAD" for the cache file at path. */
static const char *cache_state(const char *path)
{
    static const char head[] = "{\"version\":1,";
    char buf[64 * 1024];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd == -1)
        return errno == ENOENT ? "absent" : "BAD";
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < (ssize_t)sizeof(head) + 1 ||
        memcmp(buf, head, sizeof(head) - 1) != 0 || buf[n - 1] != '\n' ||
        buf[n - 2] != '}' || memchr(buf, '\n', (size_t)n - 1) != NULL)
        return "BAD";
    return "ok";
}

/* One transaction; its codes are printed after "N injected I". */
static void transaction(const char *service, const char *user,
                        struct pam_conv *pc, const char **ops, int nops,
                        char *line, size_t size)
{
    pam_handle_t *h = NULL;
    size_t used = strlen(line);
    int rc, k;

    rc = pam_start(service, user, pc, &h);
    if (rc != PAM_SUCCESS) {
        (void)snprintf(line + used, size - used, " pam_start %d", rc);
        return;
    }
    rc = pam_authenticate(h, 0);
    used += (size_t)snprintf(line + used, size - used, " authenticate %d", rc);
    for (k = 0; rc == PAM_SUCCESS && k < nops && used < size; k++)
        used += (size_t)snprintf(line + used, size - used, " %s %d", ops[k],
                                 run_op(h, ops[k]));
    pam_end(h, rc);
}

int main(int argc, char **argv)
{
    long from = 1, to = 0, step = 1, n, total;
    const char *ops[MAX_OPS], *cachefile = NULL;
    char password[1024], opsbuf[256] = "", line[512], *end;
    struct conv_data data;
    struct pam_conv pc;
    int opt, nops = 0, injected, leak;
    size_t len;

    while ((opt = getopt(argc, argv, "o:f:t:s:c:m:")) != -1) {
        switch (opt) {
        case 'o':
            if (strlen(optarg) >= sizeof(opsbuf))
                return usage();
            strcpy(opsbuf, optarg);
            break;
        case 'f':
        case 't':
        case 's':
            errno = 0;
            n = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || n < 0)
                return usage();
            *(opt == 'f' ? &from : opt == 't' ? &to : &step) = n;
            break;
        case 'c':
            cachefile = optarg;
            break;
        case 'm':
            if (dlopen(optarg, RTLD_NOW | RTLD_NODELETE) == NULL) {
                fprintf(stderr, "pam-failwalk: %s\n", dlerror());
                return 2;
            }
            break;
        default:
            return usage();
        }
    }
    if (argc - optind != 2 || from < 1 || step < 1 ||
        parse_ops(opsbuf, ops, &nops) != 0)
        return usage();
    conv_init(&pc, &data, password, sizeof(password));

    for (n = 0;; n = n == 0 ? from : n + step) {
        if (to > 0 && n > to)
            break;
        (void)snprintf(line, sizeof(line), "%ld", n);
        po_failalloc_arm(n);
        transaction(argv[optind], argv[optind + 1], &pc, ops, nops, line,
                    sizeof(line));
        injected = po_failalloc_injected();
        total = po_failalloc_disarm();
        len = strlen(line);
        if (cachefile != NULL)
            (void)snprintf(line + len, sizeof(line) - len, " cache %s",
                           cache_state(cachefile));
        leak = leaked();
        printf("%s injected %d allocations %ld%s\n", line, injected, total,
               leak ? " leaked" : "");
        fflush(stdout);
        if (leak) {
            /* LeakSanitizer reports every leak it sees, the old ones too:
             * stop, so that each leak is named by one N */
            explicit_bzero(password, sizeof(password));
            return 3;
        }
        if (n > 0 && !injected)
            break;
    }
    explicit_bzero(password, sizeof(password));
    printf("done\n");
    return 0;
}

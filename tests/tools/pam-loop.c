/*
 * pam-loop - run many PAM transactions in one process, for valgrind and
 * for memory growth checks of pam_oauth.so.
 *
 *   pam-loop [-n CYCLES] [-a] [-s] [-o OPS] [-e CODE] [-w] [-S] SERVICE USER
 *            < password
 *
 * Each cycle is pam_start, pam_authenticate (the conversation answers
 * every echo-off prompt with the password read from standard input, first
 * line), then, when it succeeded, the operations of OPS in order, then
 * pam_end.  OPS is a comma-separated list of acct (pam_acct_mgmt), estab
 * (pam_setcred PAM_ESTABLISH_CRED), refresh (PAM_REFRESH_CRED), open
 * (pam_open_session), close (pam_close_session) and delete (pam_setcred
 * PAM_DELETE_CRED: pamtester cannot send that flag).  -a is "-o acct", -s
 * is "-o estab,open,close,delete".  Each operation's result is printed as
 * "OP CODE" on the first cycle.  After cycles 1, 10, 100
 * and every 100th it prints "cycle N VmRSS K" (kB, from /proc/self/status).
 * Every pam_authenticate must return CODE (default 0, PAM_SUCCESS); the
 * exit status is 0 when all did, 1 otherwise, 2 on a usage error.
 * The password is read without stdio buffering and cleansed after the last
 * cycle, so that pam-loop itself keeps no copy.  So that a test can look at
 * the memory the module left behind (gcore): with -S it then prints
 * "paused PID" and waits for SIGUSR1 (sleeping, not stopped: gdb cannot
 * attach to a stopped process); with -w it prints "waiting PID" and waits
 * for the end of its standard input.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "pam-driver.h"

static long vm_rss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "re");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static int usage(void)
{
    fprintf(stderr, "usage: pam-loop [-n CYCLES] [-a] [-s] [-o OPS] [-e CODE] "
                    "[-w] [-S] SERVICE USER < password\n"
                    "  OPS: acct,estab,refresh,open,close,delete\n");
    return 2;
}

int main(int argc, char **argv)
{
    long cycles = 1000, i, failures = 0;
    int opt, expect = PAM_SUCCESS, nops = 0, k, wait_end = 0, stop = 0;
    char password[1024], opsbuf[256] = "";
    const char *ops[MAX_OPS];
    struct conv_data data;
    struct pam_conv pc;
    char *end;
    const char *add;

    while ((opt = getopt(argc, argv, "n:aso:e:wS")) != -1) {
        switch (opt) {
        case 'n':
            errno = 0;
            cycles = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || cycles < 1)
                return usage();
            break;
        case 'a':
        case 's':
        case 'o':
            add = opt == 'a'   ? "acct"
                  : opt == 's' ? "estab,open,close,delete"
                               : optarg;
            if (strlen(opsbuf) + strlen(add) + 2 > sizeof(opsbuf))
                return usage();
            if (opsbuf[0] != '\0')
                strcat(opsbuf, ",");
            strcat(opsbuf, add);
            break;
        case 'e':
            expect = (int)strtol(optarg, &end, 10);
            if (*end != '\0')
                return usage();
            break;
        case 'w':
            wait_end = 1;
            break;
        case 'S':
            stop = 1;
            break;
        default:
            return usage();
        }
    }
    if (argc - optind != 2)
        return usage();
    if (parse_ops(opsbuf, ops, &nops) != 0)
        return usage();
    conv_init(&pc, &data, password, sizeof(password));

    for (i = 1; i <= cycles; i++) {
        pam_handle_t *h = NULL;
        int rc = pam_start(argv[optind], argv[optind + 1], &pc, &h);

        if (rc != PAM_SUCCESS) {
            fprintf(stderr, "pam-loop: pam_start: %d\n", rc);
            return 1;
        }
        rc = pam_authenticate(h, 0);
        if (i == 1)
            printf("authenticate %d\n", rc);
        if (rc != expect) {
            if (failures++ < 5)
                fprintf(stderr, "pam-loop: cycle %ld: pam_authenticate: %s\n",
                        i, pam_strerror(h, rc));
        } else if (rc == PAM_SUCCESS) {
            for (k = 0; k < nops; k++) {
                int r = run_op(h, ops[k]);

                if (i == 1)
                    printf("%s %d\n", ops[k], r);
                if (r != PAM_SUCCESS && failures++ < 5)
                    fprintf(stderr, "pam-loop: cycle %ld: %s: %s\n", i, ops[k],
                            pam_strerror(h, r));
            }
        }
        pam_end(h, rc);
        if (i == 1 || i == 10 || i % 100 == 0) {
            printf("cycle %ld VmRSS %ld\n", i, vm_rss_kb());
            fflush(stdout);
        }
    }
    explicit_bzero(password, sizeof(password));
    if (stop) {
        sigset_t set, old;

        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        (void)sigprocmask(SIG_BLOCK, &set, &old);
        printf("paused %ld\n", (long)getpid());
        fflush(stdout);
        while (sigwait(&set, &k) != 0 || k != SIGUSR1)
            ;
        (void)sigprocmask(SIG_SETMASK, &old, NULL);
    }
    printf("done %ld cycles, %ld failures\n", cycles, failures);
    if (wait_end) {
        /* the conversation's copies are ours: freed and cleansed above */
        printf("waiting %ld\n", (long)getpid());
        fflush(stdout);
        while (getchar() != EOF)
            ;
    }
    return failures == 0 ? 0 : 1;
}

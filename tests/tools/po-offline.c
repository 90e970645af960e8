/*
 * po-offline - the cost of one offline verifier check, measured in process
 * through the core (common/offline.h), beside the check pam_unix makes for
 * a Debian /etc/shadow password (yescrypt through libcrypt), for
 * `make bench`.
 *
 *   po-offline [-n RUNS] [-y COST] DIR
 *
 * Stores a verifier for user "bench" under DIR (an offline_dir: made 0700),
 * then times RUNS stores, RUNS checks of the right password and RUNS
 * checks of a wrong one (each wrong one is counted, so the profile allows
 * more failures than RUNS), and RUNS yescrypt computations with libcrypt's
 * setting for COST (default 5, Debian's YESCRYPT_COST_FACTOR).  Prints
 * one line per measurement, wall clock and the CPU time of the process
 * (which a busy machine does not inflate):
 *     params m=KIB t=T p=P
 *     store|match|wrong|decoy|yescrypt median MS min MS max MS cpu MS
 * (cpu: the median CPU time).  decoy is po_offline_decoy, what a login
 * with no verifier to check spends.
 * Exit status 0, or 1 when a check gave the wrong verdict, 2 on usage.
 */
#define _GNU_SOURCE
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "offline.h"
#include "secret.h"
#include "util.h"

#define MAX_RUNS 1000
#define PASSWORD "bench offline password 1234"

static double clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

static double cpu_ms(void)
{
    return clock_ms(CLOCK_PROCESS_CPUTIME_ID);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof(*t), cmp);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void report(const char *what, double *t, double *c, int n)
{
    double m = median(t, n);

    printf("%s median %.2f min %.2f max %.2f cpu %.2f\n", what, m, t[0],
           t[n - 1], median(c, n));
}

static int check(const po_profile *p, const char *pw, po_offline_verdict want)
{
    po_offline_result r;
    po_err err;
    int ok;

    ok = po_offline_check(p, "bench", pw, (int64_t)time(NULL), NULL, &r,
                          &err) == PO_OK &&
         r.verdict == want;
    if (!ok)
        fprintf(stderr, "po-offline: check: %s (verdict %s)\n", err.msg,
                po_offline_verdict_name(r.verdict));
    po_offline_result_free(&r);
    return ok;
}

int main(int argc, char **argv)
{
    static double t[MAX_RUNS], c[MAX_RUNS];
    int opt, runs = 30, cost = 5, i;
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = NULL;
    po_profile p;
    po_err err;
    double a, b;

    while ((opt = getopt(argc, argv, "n:y:")) != -1) {
        if (opt == 'n')
            runs = atoi(optarg);
        else if (opt == 'y')
            cost = atoi(optarg);
        else
            return 2;
    }
    if (argc - optind != 1 || runs < 1 || runs > MAX_RUNS || cost < 1 ||
        cost > 11) {
        fprintf(stderr, "usage: po-offline [-n RUNS] [-y COST] DIR\n");
        return 2;
    }
    if (po_profile_init(&p, "bench", &err) != PO_OK ||
        po_str_replace(&p.token_url, "https://idp.invalid/token") != PO_OK ||
        po_str_replace(&p.client_id, "bench") != PO_OK ||
        po_str_replace(&p.offline_dir, argv[optind]) != PO_OK) {
        fprintf(stderr, "po-offline: cannot set up the profile\n");
        return 1;
    }
    p.offline_login = 1;
    p.offline_max_failures = 1000;
    printf("params m=%u t=%u p=%u\n", PO_OFFLINE_M_COST, PO_OFFLINE_T_COST,
           PO_OFFLINE_LANES);
    for (i = 0; i < runs; i++) {
        a = now_ms();
        b = cpu_ms();
        if (po_offline_store(&p, "bench", PASSWORD, NULL, (int64_t)time(NULL),
                             &err) != PO_OK) {
            fprintf(stderr, "po-offline: store: %s\n", err.msg);
            return 1;
        }
        t[i] = now_ms() - a;
        c[i] = cpu_ms() - b;
    }
    report("store", t, c, runs);
    for (i = 0; i < runs; i++) {
        a = now_ms();
        b = cpu_ms();
        if (!check(&p, PASSWORD, PO_OFFLINE_MATCH))
            return 1;
        t[i] = now_ms() - a;
        c[i] = cpu_ms() - b;
    }
    report("match", t, c, runs);
    for (i = 0; i < runs; i++) {
        a = now_ms();
        b = cpu_ms();
        if (!check(&p, "not the password", PO_OFFLINE_WRONG))
            return 1;
        t[i] = now_ms() - a;
        c[i] = cpu_ms() - b;
    }
    report("wrong", t, c, runs);
    for (i = 0; i < runs; i++) {
        a = now_ms();
        b = cpu_ms();
        if (po_offline_decoy(&err) != PO_OK) {
            fprintf(stderr, "po-offline: decoy: %s\n", err.msg);
            return 1;
        }
        t[i] = now_ms() - a;
        c[i] = cpu_ms() - b;
    }
    report("decoy", t, c, runs);
    if (crypt_gensalt_rn("$y$", (unsigned long)cost, NULL, 0, setting,
                         sizeof(setting)) == NULL ||
        (cd = calloc(1, sizeof(*cd))) == NULL) {
        fprintf(stderr, "po-offline: libcrypt has no yescrypt\n");
        return 1;
    }
    for (i = 0; i < runs; i++) {
        a = now_ms();
        b = cpu_ms();
        if (crypt_rn(PASSWORD, setting, cd, (int)sizeof(*cd)) == NULL) {
            fprintf(stderr, "po-offline: crypt_rn failed\n");
            return 1;
        }
        t[i] = now_ms() - a;
        c[i] = cpu_ms() - b;
    }
    printf("setting %.7s\n", setting);
    report("yescrypt", t, c, runs);
    po_cleanse(cd, sizeof(*cd));
    free(cd);
    po_profile_free(&p);
    return 0;
}

/*
 * standalone.c - a main() for the fuzz targets without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on each file named, and on each file of each
 * directory named (libFuzzer's flags, which start with '-', are ignored).
 * It is the regression run of make check where clang is not installed:
 * the committed corpus, built with the project's compiler and, with
 * SANITIZE=1, its sanitizers.  Prints "N inputs" and exits 0; a failed
 * property aborts, as under libFuzzer.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "util.h"

/* Targets that need set-up define it; the others leave it out. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int run_file(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    po_err err;

    if (po_read_file(path, 64u * 1024 * 1024, 0, &data, &len, NULL, &err) !=
        PO_OK) {
        fprintf(stderr, "standalone: %s\n", err.msg);
        return -1;
    }
    fprintf(stderr, "Running: %s (%zu bytes)\n", path, len);
    (void)LLVMFuzzerTestOneInput((const uint8_t *)data, len);
    free(data);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    struct stat st;
    long inputs = 0;
    int i, j, n;

    if (LLVMFuzzerInitialize != NULL)
        (void)LLVMFuzzerInitialize(&argc, &argv);
    for (i = 1; i < argc; i++) {
        struct dirent **ents = NULL;

        if (argv[i][0] == '-')
            continue;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "standalone: %s: %s\n", argv[i], strerror(errno));
            return 2;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) != 0)
                return 2;
            inputs++;
            continue;
        }
        if ((n = scandir(argv[i], &ents, NULL, by_name)) < 0) {
            fprintf(stderr, "standalone: %s: %s\n", argv[i], strerror(errno));
            return 2;
        }
        for (j = 0; j < n; j++) {
            char *path = po_concat3(argv[i], "/", ents[j]->d_name);

            if (path == NULL)
                return 2;
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (run_file(path) != 0)
                    return 2;
                inputs++;
            }
            free(path);
            free(ents[j]);
        }
        free(ents);
    }
    printf("standalone: %ld inputs\n", inputs);
    return 0;
}

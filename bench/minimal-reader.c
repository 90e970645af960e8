/*
 * minimal-reader - the floor for a cache hit: open one small file, print it.
 *
 *   minimal-reader FILE
 *
 * Built by bench/run with the project's compiler; no library but libc.  It
 * does what any cache-hit path must do at the least (exec, open, read,
 * write, exit) and nothing else: no parsing, no locking, no checks.
 */
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char buf[64 * 1024];
    ssize_t n;
    int fd;

    if (argc != 2 || (fd = open(argv[1], O_RDONLY | O_CLOEXEC)) == -1)
        return 2;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (write(STDOUT_FILENO, buf, (size_t)n) != n)
            return 1;
    close(fd);
    return n == 0 ? 0 : 1;
}

/* What one store written back and fenced costs here.  Each PMEM fence
 * waits for the write-backs of the stores made since the one before, so a
 * call that must make a store durable before it returns takes about this
 * long at least: a malloc or a free of pm-pmem makes one (G3 allows no
 * fewer; tests/test_flushcount.c counts them), an update transaction four.
 * What this gives estimates the most pm-pmem / PMDK can be on the machine
 * that measures it, an estimate that calls doing other work between their
 * fences have passed by 10% (bench/README.md, "The PMEM ceiling"). */
#define _POSIX_C_SOURCE 200809L   /* mkstemp, ftruncate, mmap, clock_gettime */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <persistent_mem.h>

#include "persist.h"

double persist_ns(const char *dir)
{
    char f[512];
    if (snprintf(f, sizeof f, "%s/pm-persist-XXXXXX", dir) >= (int)sizeof f)
        return -1;
    int fd = mkstemp(f);
    if (fd < 0)
        return -1;
    unlink(f);
    uint64_t *p = MAP_FAILED;
    if (ftruncate(fd, 4096) == 0)
        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return -1;
    enum { N = 100000 };
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (uint64_t i = 0; i < N; i++) {
        uint64_t *q = p + (i & 15) * 8;
        *q = i;                         /* persistent_persist is a call: made */
        persistent_persist(q, sizeof *q);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    munmap(p, 4096);
    return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / N;
}

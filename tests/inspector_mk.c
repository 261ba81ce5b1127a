/* Makes spaces for test_inspector.py:  inspector_mk MODE PATH
 *   healthy   blocks of several classes, a large hole between large
 *             blocks, two roots; closed cleanly
 *   dirty     the same, then the process ends without closing
 *   corrupt   healthy, then a superblock's header overwritten in the file
 *   garbage   a file that is not a space
 *   live      a writer at work on it until killed ("ready" on stdout)
 *   big       192 MiB of blocks written (a copy takes a while) */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static allocator_space_t *make(const char *path, uint64_t *victim)
{
    unlink(path);
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 8u << 20;
    allocator_space_t *s;
    if (persistent_space_open(path, &o, &s) != 0) {
        fprintf(stderr, "%s\n", persistent_errormsg());
        exit(1);
    }
    /* 100 blocks of 48 bytes, every other one freed; 10 of 1000 */
    void *small[100];
    for (int i = 0; i < 100; i++)
        memset(small[i] = persistent_malloc(s, 48), 0x11, 48);
    for (int i = 0; i < 100; i += 2)
        persistent_free(s, small[i]);
    for (int i = 0; i < 10; i++)
        memset(persistent_malloc(s, 1000), 0x22, 1000);
    char *r1 = persistent_root_get(s, 0x6b657931, 64, NULL);
    char *r2 = persistent_root_get(s, 0xfedcba9876543210ull, 4000, NULL);
    if (!r1 || !r2)
        exit(1);
    strcpy(r1, "root");
    /* three large blocks of 20 pages (above the largest class, 64 KiB),
     * the middle one freed: a hole (last: nothing else is allocated to
     * fill it) */
    struct persistent_info in;
    persistent_space_info(s, &in);
    void *a = persistent_malloc(s, 20 * (size_t)in.page_size);
    void *b = persistent_malloc(s, 20 * (size_t)in.page_size);
    void *c = persistent_malloc(s, 20 * (size_t)in.page_size);
    if (!a || !b || !c)
        exit(1);
    persistent_free(s, b);
    struct pm_rt *rt = pm_rt_of(s);
    uint64_t off = (uint64_t)((char *)small[1] - rt->base);
    uint32_t f1 = pm_pagemap_first1(rt->pagemap[(off - rt->data_off) >> rt->page_shift]);
    *victim = rt->data_off + ((uint64_t)(f1 - 1) << rt->page_shift);
    return s;
}

/* A writer at work until it is killed: publishing allocations and frees
 * of all sizes into a root's table, and transactions, without pause. */
static void live(const char *path)
{
    uint64_t victim;
    allocator_space_t *s = make(path, &victim);
    enum { SLOTS = 512 };
    persistent_offset_t *tab = persistent_root_get(s, 0x6c697665, SLOTS * sizeof *tab, NULL);
    if (tab == NULL)
        exit(1);
    printf("ready\n");
    fflush(stdout);
    uint64_t x = 88172645463325252ull;
    for (;;) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        persistent_offset_t *slot = &tab[x % SLOTS];
        if (*slot != 0) {
            if (persistent_free_from(s, slot) != 0)
                exit(1);
        } else {
            size_t size = (x >> 20) % 7 == 0 ? 20000 + (x >> 40) % 200000 : 16 + (x >> 40) % 2000;
            if (persistent_alloc_into(s, slot, size) == 0)
                memset(persistent_offset_to_ptr(s, *slot), (int)x, size);
        }
        if (x % 16 == 0 && persistent_tx_begin(s) == 0) {
            persistent_offset_t *t = &tab[(x >> 24) % SLOTS];
            if (persistent_tx_add(s, t, sizeof *t) == 0 && *t == 0) {
                void *b = persistent_tx_alloc(s, 100);
                if (b != NULL)
                    *t = ptr_to_persistent_offset(s, b);
            }
            persistent_tx_commit(s);
        }
    }
}

/* A 1 MiB space with one block, closed: in durability dur, growable to
 * max (0: fixed).  The exit status. */
static int small_space(const char *path, uint32_t dur, uint64_t max)
{
    unlink(path);
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 1u << 20;
    o.max_size = max;
    o.durability = dur;
    allocator_space_t *s;
    if (persistent_space_open(path, &o, &s) != 0) {
        fprintf(stderr, "%s\n", persistent_errormsg());
        return 1;
    }
    memset(persistent_malloc(s, 100), 0x33, 100);
    return persistent_space_close(s) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    const char *mode = argv[1], *path = argv[2];
    uint64_t victim;
    if (strcmp(mode, "garbage") == 0) {
        FILE *f = fopen(path, "w");
        if (f == NULL)
            return 1;
        for (int i = 0; i < 100000; i++)
            fputs("not a space ", f);
        return fclose(f) == 0 ? 0 : 1;
    }
    if (strcmp(mode, "live") == 0)
        live(path);
    if (strcmp(mode, "pmem") == 0)     /* the file records another durability */
        return small_space(path, PERSISTENT_DURABILITY_PMEM, 0);
    if (strcmp(mode, "sync") == 0)     /* than a view's own */
        return small_space(path, PERSISTENT_DURABILITY_SYNC, 0);
    if (strcmp(mode, "sparse") == 0)   /* the run bitmaps' tail is holes */
        return small_space(path, PERSISTENT_DURABILITY_DEFAULT, UINT64_C(1) << 40);
    if (strcmp(mode, "big") == 0) {
        unlink(path);
        allocator_space_t *b = create_persistent_allocator(path, 200u << 20);
        char *p = b != NULL ? persistent_malloc(b, 192u << 20) : NULL;
        if (p == NULL)
            return 1;
        memset(p, 0x5a, 192u << 20);
        return persistent_space_close(b) == 0 ? 0 : 1;
    }
    allocator_space_t *s = make(path, &victim);
    if (strcmp(mode, "dirty") == 0)
        _exit(0);
    if (persistent_space_close(s) != 0)
        return 1;
    if (strcmp(mode, "corrupt") == 0) {
        int fd = open(path, O_WRONLY);
        uint32_t zero = 0;
        if (fd < 0 || pwrite(fd, &zero, sizeof zero, (off_t)victim) != (ssize_t)sizeof zero)
            return 1;
        close(fd);
    }
    return 0;
}

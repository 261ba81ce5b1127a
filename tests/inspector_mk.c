/* Makes spaces for test_inspector.py:  inspector_mk MODE PATH
 *   healthy   blocks of several classes, a large hole between large
 *             blocks, two roots; closed cleanly
 *   dirty     the same, then the process ends without closing
 *   corrupt   healthy, then a superblock's header overwritten in the file
 *   garbage   a file that is not a space */
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
    /* three large blocks of 5 pages, the middle one freed: a hole (last:
     * nothing else is allocated to fill it) */
    struct persistent_info in;
    persistent_space_info(s, &in);
    void *a = persistent_malloc(s, 5 * (size_t)in.page_size);
    void *b = persistent_malloc(s, 5 * (size_t)in.page_size);
    void *c = persistent_malloc(s, 5 * (size_t)in.page_size);
    if (!a || !b || !c)
        exit(1);
    persistent_free(s, b);
    struct pm_rt *rt = pm_rt_of(s);
    uint64_t off = (uint64_t)((char *)small[1] - rt->base);
    uint32_t f1 = rt->pagemap[(off - rt->data_off) >> rt->page_shift];
    *victim = rt->data_off + ((uint64_t)(f1 - 1) << rt->page_shift);
    return s;
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

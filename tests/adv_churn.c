/* Thread churn on a small fixed space: many short-lived threads each take
 * blocks of many classes, free most, keep a few (published into slots),
 * and exit.  What a thread held must come back at its exit (G5b): after
 * every churn round the space, with only the kept blocks live, must still
 * serve a large share of its capacity to one thread.
 *   adv_churn SEED ROUNDS */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "persistent_mem.h"

static allocator_space_t *S;
static persistent_offset_t *slots;
enum { NSLOT = 64, SPACE = 2 << 20 };
static uint64_t seed;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31; x *= 0x7fb5d329728ea185ull; x ^= x >> 27; x *= 0x81dadef4bc2dd44dull;
    return x ^ (x >> 33);
}

static void *th(void *arg)
{
    uint64_t r = mix(seed ^ (uint64_t)(uintptr_t)arg);
    void *p[200];
    int n = 0;
    for (int i = 0; i < 200; i++) {
        r = mix(r + i);
        size_t sz = 1 + r % (i % 7 == 0 ? 60000 : 2000);
        void *b = persistent_malloc(S, sz);
        if (b) { memset(b, 0x5a, sz); p[n++] = b; }
    }
    /* free from another order */
    for (int i = 0; i < n; i++)
        persistent_free(S, p[(i * 7) % n == i ? i : i]);
    /* keep one in a slot, freeing what was there */
    int k = (int)(mix(r) % NSLOT);
    persistent_free_from(S, &slots[k]);
    persistent_alloc_into(S, &slots[k], 1 + mix(r + 1) % 4000);
    return NULL;
}

/* one thread takes all it can in 1 KiB blocks, then gives it back; at its
 * NULL no other thread lives, so G5b's words apply exactly: no free page
 * and no free block of its class or a larger one may be left */
static int false_null;
static size_t fill_all(void)
{
    static void *held[1 << 16];
    size_t n = 0;
    void *b;
    while (n < (1 << 16) && (b = persistent_malloc(S, 1024)))
        held[n++] = b;
    struct persistent_frag fr;
    if (n < (1 << 16) && persistent_frag_get(S, &fr) == 0) {
        uint64_t fb = 0;
        for (uint32_t c = 0; c < fr.n_classes && c < PERSISTENT_N_CLASSES; c++)
            if (fr.cls[c].block_size >= 1024 && fr.cls[c].capacity_blocks > fr.cls[c].live_blocks)
                fb += (fr.cls[c].capacity_blocks - fr.cls[c].live_blocks) * fr.cls[c].block_size;
        if (fr.free_pages || fb) {
            printf("FINDING: malloc(1024) NULL after %zu blocks with %" PRIu64 " free pages and %" PRIu64
                   " B of free blocks of 1 KiB or more\n", n, fr.free_pages, fb);
            false_null = 1;
        }
    }
    for (size_t i = 0; i < n; i++)
        persistent_free(S, held[i]);
    return n * 1024;
}

int main(int argc, char **argv)
{
    seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
    int rounds = argc > 2 ? atoi(argv[2]) : 20;
    char path[] = "/dev/shm/advchurn-XXXXXX";
    close(mkstemp(path));
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = SPACE;
    if (persistent_space_open(path, &o, &S)) { fprintf(stderr, "open: %s\n", persistent_errormsg()); return 2; }
    slots = persistent_root_get(S, 1, NSLOT * sizeof *slots, NULL);
    size_t base = fill_all();
    int bad = 0;
    for (int rd = 0; rd < rounds; rd++) {
        for (int i = 0; i < 50; i++) {
            pthread_t t[4];
            for (int j = 0; j < 4; j++)
                pthread_create(&t[j], NULL, th, (void *)(uintptr_t)(rd * 1000 + i * 4 + j));
            for (int j = 0; j < 4; j++)
                pthread_join(t[j], NULL);
        }
        size_t got = fill_all();
        struct persistent_stats st;
        persistent_stats_get(S, &st);
        printf("round %d: one thread got %zu KiB (at start %zu KiB); live %" PRIu64 " B in %" PRIu64
               " blocks, %" PRIu64 " superblocks (%" PRIu64 " empty), free pages %" PRIu64 " B\n",
               rd, got >> 10, base >> 10, st.live_bytes, st.live_blocks, st.superblocks,
               st.empty_superblocks, st.free_bytes);
        /* what is left is held by superblocks of smaller classes, each
         * pinned by a kept block (given back only when empty: docs/design.md,
         * Known limits); "got" against "at start" is reported, not judged:
         * the old bound (256 KiB + twice the live bytes) ignored that one
         * kept block of a few bytes pins a 32 KiB superblock, and fired
         * with nothing free anywhere for the 1 KiB requests */
        if (false_null)
            bad = 1;
    }
    struct persistent_check_report rep;
    int rc = persistent_check(S, &rep);
    if (rc) { printf("FINDING: check %d %s\n", rc, rep.first_error); bad = 1; }
    persistent_space_close(S);
    unlink(path);
    return bad;
}

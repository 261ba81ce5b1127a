/* Thread churn with transactions and publishing calls: short-lived threads
 * each run one transaction and one alloc_into/free_from, then exit.  What
 * the library keeps per thread (logs, lanes) must not pile up. */
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
static uint64_t *cell;
static persistent_offset_t *slot;
static int fails;

static void *th(void *arg)
{
    (void)arg;
    if (persistent_tx_begin(S) != 0) { __atomic_add_fetch(&fails, 1, __ATOMIC_RELAXED); return NULL; }
    persistent_tx_add(S, cell, 8);
    (*cell)++;
    void *p = persistent_tx_alloc(S, 100);
    if (!p) __atomic_add_fetch(&fails, 1, __ATOMIC_RELAXED);
    else persistent_tx_free(S, p);
    persistent_tx_commit(S);
    persistent_offset_t *d = &slot[(uintptr_t)arg % 4];
    if (persistent_alloc_into(S, d, 64) != 0) __atomic_add_fetch(&fails, 1, __ATOMIC_RELAXED);
    persistent_free_from(S, d);
    return NULL;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    char path[] = "/dev/shm/advtxchurn-XXXXXX";
    close(mkstemp(path));
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 2 << 20;
    if (persistent_space_open(path, &o, &S)) return 2;
    cell = persistent_root_get(S, 1, 64, NULL);
    slot = persistent_root_get(S, 2, 64, NULL);
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 100; i++) {
            pthread_t t[4];
            for (int j = 0; j < 4; j++) pthread_create(&t[j], NULL, th, (void *)(uintptr_t)(i * 4 + j));
            for (int j = 0; j < 4; j++) pthread_join(t[j], NULL);
        }
        struct persistent_stats st;
        persistent_stats_get(S, &st);
        printf("round %d (%d threads): cell %" PRIu64 ", live %" PRIu64 " B in %" PRIu64 " blocks, free pages %" PRIu64 " B, fails %d\n",
               r, (r + 1) * 400, *cell, st.live_bytes, st.live_blocks, st.free_bytes, fails);
    }
    struct persistent_check_report rep;
    int rc = persistent_check(S, &rep);
    printf("check %d %s\n", rc, rc ? rep.first_error : "");
    persistent_space_close(S);
    unlink(path);
    return fails || rc;
}

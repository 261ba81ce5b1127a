/* instr: the loops whose instructions bench/instr.py counts with
 * callgrind, to give instructions per malloc + free pair beside the peers.
 *
 *   instr BACKEND PATTERN N [DIR]
 *
 * BACKEND  pm    persistent_malloc / persistent_free on a space in DIR
 *                (default /dev/shm), PROCESS durability
 *          libc  the process's malloc / free: glibc, or a peer LD_PRELOADed
 *          none  a bump pointer and no free: what the loop itself costs,
 *                which instr.py subtracts
 * PATTERN  pair    malloc(64), one store, free; N times
 *          lifo    64 blocks of 16..128 bytes, freed newest first; N pairs
 *          spread  4,096 blocks of 64 bytes, freed oldest first (they span
 *                  several superblocks or pages); N pairs
 *          update  (pm only) bench/txbench.c's update without a
 *                  transaction: a 64-byte block allocated and linked from a
 *                  64-byte record, the block it replaces freed; N times
 *          tx      (pm only) the same update as a transaction: begin, the
 *                  record snapshotted, persistent_tx_alloc, persistent_tx_free,
 *                  commit; N transactions
 *
 * Only the functions named loop_* are counted (--toggle-collect=loop_*);
 * each pattern runs twice, the first time to warm caches and heaps, and
 * the count is of the second run only (warm_* is not collected). */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <persistent_mem.h>

enum { SPREAD = 4096 };

static allocator_space_t *space;
static char *bump;

#define PATTERNS(B, MALLOC, FREE)                                             \
    __attribute__((noinline)) static void pair_##B(long n)                    \
    {                                                                         \
        for (long i = 0; i < n; i++) {                                        \
            char *p = MALLOC(64);                                             \
            *(volatile char *)p = 1;                                          \
            FREE(p);                                                          \
        }                                                                     \
    }                                                                         \
    __attribute__((noinline)) static void lifo_##B(long n)                    \
    {                                                                         \
        void *a[64];                                                          \
        for (long r = 0; r < n / 64; r++) {                                   \
            for (int i = 0; i < 64; i++)                                      \
                a[i] = MALLOC(16 + (size_t)(i & 7) * 16);                     \
            for (int i = 63; i >= 0; i--)                                     \
                FREE(a[i]);                                                   \
        }                                                                     \
    }                                                                         \
    __attribute__((noinline)) static void spread_##B(long n, void **a)        \
    {                                                                         \
        for (long r = 0; r < n / SPREAD; r++) {                               \
            for (int i = 0; i < SPREAD; i++)                                  \
                a[i] = MALLOC(64);                                            \
            for (int i = 0; i < SPREAD; i++)                                  \
                FREE(a[i]);                                                   \
        }                                                                     \
    }

#define PM_MALLOC(n) persistent_malloc(space, (n))
#define PM_FREE(p) persistent_free(space, (p))
#define LIBC_MALLOC(n) malloc(n)
#define LIBC_FREE(p) free(p)
#define NONE_MALLOC(n) (bump += ((n) + 15) & ~(size_t)15)
#define NONE_FREE(p) ((void)(p))

PATTERNS(pm, PM_MALLOC, PM_FREE)
PATTERNS(libc, LIBC_MALLOC, LIBC_FREE)
PATTERNS(none, NONE_MALLOC, NONE_FREE)

/* update and tx: the record, and one update with or without a
 * transaction (a failed call ends the program: a count of a loop that
 * did less would mislead) */
struct record {
    uint64_t a[7];
    uint64_t link;                      /* offset of the block it names */
};
static struct record *record;

static void must(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "instr: %s failed\n", what);
        exit(1);
    }
}

__attribute__((always_inline)) static inline void update_pm(long i, bool tx)
{
    struct record *r = record;
    if (tx) {
        must(persistent_tx_begin(space) == 0, "persistent_tx_begin");
        must(persistent_tx_add(space, r, sizeof *r) == 0, "persistent_tx_add");
    }
    uint64_t *b = tx ? persistent_tx_alloc(space, 64) : persistent_malloc(space, 64);
    must(b != NULL, "allocation");
    b[0] = (uint64_t)i;
    if (r->link != 0) {
        void *old = persistent_offset_to_ptr(space, r->link);
        if (tx)
            must(persistent_tx_free(space, old) == 0, "persistent_tx_free");
        else
            persistent_free(space, old);
    }
    r->a[0] = (uint64_t)i;
    r->link = ptr_to_persistent_offset(space, b);
    if (tx)
        must(persistent_tx_commit(space) == 0, "persistent_tx_commit");
}

__attribute__((noinline)) static void update_plain(long n)
{
    for (long i = 0; i < n; i++)
        update_pm(i, false);
}

__attribute__((noinline)) static void update_tx(long n)
{
    for (long i = 0; i < n; i++)
        update_pm(i, true);
}

/* The same calls under two names: warm_ is not counted, loop_ is. */
__attribute__((noinline)) static void run(int backend, int pattern, long n, void **a)
{
    if (pattern == 3) {
        update_plain(n);
        return;
    }
    if (pattern == 4) {
        update_tx(n);
        return;
    }
    switch (backend * 3 + pattern) {
    case 0: pair_pm(n); break;
    case 1: lifo_pm(n); break;
    case 2: spread_pm(n, a); break;
    case 3: pair_libc(n); break;
    case 4: lifo_libc(n); break;
    case 5: spread_libc(n, a); break;
    case 6: pair_none(n); break;
    case 7: lifo_none(n); break;
    default: spread_none(n, a); break;
    }
}

__attribute__((noinline, used)) static void warm_run(int backend, int pattern, long n, void **a)
{
    run(backend, pattern, n, a);
}

__attribute__((noinline, used)) static void loop_run(int backend, int pattern, long n, void **a)
{
    run(backend, pattern, n, a);
}

static int index_of(const char *s, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

int main(int argc, char **argv)
{
    static const char *const backends[] = {"pm", "libc", "none"};
    static const char *const patterns[] = {"pair", "lifo", "spread", "update", "tx"};
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: instr pm|libc|none pair|lifo|spread|update|tx N [DIR]\n");
        return 2;
    }
    int backend = index_of(argv[1], backends, 3);
    int pattern = index_of(argv[2], patterns, 5);
    long n = atol(argv[3]);
    if (backend < 0 || pattern < 0 || n < SPREAD || (pattern >= 3 && backend != 0)) {
        fprintf(stderr, "instr: bad backend, pattern or N (N >= %d; update and tx: pm)\n",
                SPREAD);
        return 2;
    }
    n -= n % SPREAD;                    /* whole rounds of every pattern */
    void **a = malloc(SPREAD * sizeof *a);
    char path[4096] = "";
    if (backend == 0) {
        snprintf(path, sizeof path, "%s/pm-instr-XXXXXX", argc == 5 ? argv[4] : "/dev/shm");
        int fd = mkstemp(path);
        if (fd < 0) {
            perror(path);
            return 1;
        }
        close(fd);
        unlink(path);
        space = create_persistent_allocator(path, (size_t)64 << 20);
        if (space == NULL) {
            perror("create_persistent_allocator");
            return 1;
        }
        /* only where it is used: the other patterns' counts (and the
         * blocks they get) stay as they were without it */
        if (pattern >= 3 && (record = persistent_calloc(space, 1, sizeof *record)) == NULL)
            return 1;
    } else if (backend == 2) {
        /* every allocation of both runs, never reused */
        bump = malloc((size_t)n * 2 * 144 + 4096);
        if (bump == NULL)
            return 1;
    }
    if (a == NULL)
        return 1;
    warm_run(backend, pattern, n, a);
    loop_run(backend, pattern, n, a);
    if (backend == 0) {
        destroy_persistent_allocator(space);
        unlink(path);
    }
    printf("%ld\n", n);                 /* the pairs counted */
    return 0;
}

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
 *          floor   (pm only) the same update as a deliberately minimal
 *                  undo-log transaction in this library's log format, to
 *                  measure what such a transaction cannot avoid (below,
 *                  "floor"); not a transaction
 *          floor-mark     floor, the blocks it allocates and frees marked
 *          floor-nocheck  floor with entries written without their checks
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

#include "layout.h"                     /* the log entry and its check */

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

/* floor: what an undo-log transaction in this log's format cannot avoid
 * (docs/design.md, Transactions, "Speed").  Per call, the calling
 * thread's transaction found (a thread-local pointer, its space
 * compared) and a status returned, which the loop checks as update_pm
 * does; begin writes the state word; the snapshot copies the record into
 * a log entry with its check (src/layout.h's steps, as tx.c's
 * entry_fill: the length known only at run time, the last word padded);
 * the allocation and the free each write an entry with its check; the
 * free is pushed on a list; the commit writes the state word, frees,
 * writes it again.  Nothing validated, flushed or made room for (the log
 * and lists hold one transaction), no list of snapshots or allocations
 * (an abort could walk the log): it could not be recovered, so it is what
 * the transactions issue's PROCESS aim is measured against, not a
 * transaction.  MARK: the blocks it allocates and frees marked in a
 * shared bitmap, as persistent_tx_alloc and _free mark theirs (an atomic
 * OR each, and an AND at commit): the least that refusing another
 * thread's free of them adds.  CHECK false: the entries without their
 * checks. */
struct floor_tx {
    allocator_space_t *space;
    char *base;                         /* where offset 0 is */
    uint64_t gen, key, state, pos, n_alloc, n_free;  /* key: as a log's (pm_txlog_key) */
    uint64_t alloc[4], free[4];
    uint64_t log[64];
};
static _Thread_local struct floor_tx *floor_cur;
static uint64_t floor_marks[1024];
static volatile size_t floor_len = sizeof(struct record);  /* known at run time */

__attribute__((always_inline)) static inline struct floor_tx *floor_of(allocator_space_t *s)
{
    struct floor_tx *t = floor_cur;     /* set before the loop */
    return __builtin_expect(t->space == s, 1) ? t : NULL;
}

__attribute__((always_inline)) static inline void
floor_entry(struct floor_tx *t, uint32_t kind, uint64_t off, uint64_t len, const void *data,
            bool check)
{
    struct pm_txent *e = (struct pm_txent *)(void *)(t->log + t->pos);
    uint64_t *to = (uint64_t *)(void *)(e + 1);
    e->kind_len = kind | len << 8;
    e->off = off;
    e->reserved = 0;
    uint64_t x = check ? pm_txent_check_head(t->gen, t->key, e->kind_len, off) : 0;
    uint64_t words = 0;
    if (data != NULL) {
        const char *from = data;
        size_t i = 0;
        for (; i + 8 <= len; i += 8) {
            uint64_t w;
            memcpy(&w, from + i, 8);
            *to++ = w;
            if (check)
                x = pm_txent_check_word(x, w);
        }
        if (i < len) {
            uint64_t w = 0;
            memcpy(&w, from + i, len - i);
            *to = w;
            if (check)
                x = pm_txent_check_word(x, w);
        }
        words = (len + 7) / 8;
    }
    e->check = check ? pm_txent_check_end(x) : 1;
    t->pos += sizeof *e / 8 + words;
}

static inline bool floor_mark(uint64_t off, bool set)
{
    uint64_t g = (off >> 4) & (sizeof floor_marks * 8 - 1), bit = UINT64_C(1) << (g & 63);
    if (set)
        return !(__atomic_fetch_or(&floor_marks[g >> 6], bit, __ATOMIC_ACQ_REL) & bit);
    __atomic_fetch_and(&floor_marks[g >> 6], ~bit, __ATOMIC_RELEASE);
    return true;
}

#define FLOOR(V, CHECK, MARK)                                                  \
    __attribute__((noinline)) static int V##_begin(allocator_space_t *s)       \
    {                                                                          \
        struct floor_tx *t = floor_of(s);                                      \
        if (t == NULL)                                                         \
            return -1;                                                         \
        t->gen++;                                                              \
        t->pos = 0;                                                            \
        t->state = PM_TX_ACTIVE | t->gen << 8;                                 \
        return 0;                                                              \
    }                                                                          \
    __attribute__((noinline)) static int V##_add(allocator_space_t *s, void *p, size_t len) \
    {                                                                          \
        struct floor_tx *t = floor_of(s);                                      \
        if (t == NULL)                                                         \
            return -1;                                                         \
        floor_entry(t, PM_TXE_SNAPSHOT, (uint64_t)((char *)p - t->base), len, p, CHECK); \
        return 0;                                                              \
    }                                                                          \
    __attribute__((noinline)) static void *V##_alloc(allocator_space_t *s, size_t size) \
    {                                                                          \
        struct floor_tx *t = floor_of(s);                                      \
        void *b = t != NULL ? persistent_malloc(s, size) : NULL;               \
        if (b == NULL)                                                         \
            return NULL;                                                       \
        uint64_t off = (uint64_t)((char *)b - t->base);                        \
        floor_entry(t, PM_TXE_ALLOC, off, size, NULL, CHECK);                  \
        if (MARK) {                                                            \
            (void)floor_mark(off, true);                                       \
            t->alloc[t->n_alloc++] = off;                                      \
        }                                                                      \
        return b;                                                              \
    }                                                                          \
    __attribute__((noinline)) static int V##_free(allocator_space_t *s, void *p) \
    {                                                                          \
        struct floor_tx *t = floor_of(s);                                      \
        if (t == NULL)                                                         \
            return -1;                                                         \
        uint64_t off = (uint64_t)((char *)p - t->base);                        \
        if (MARK && !floor_mark(off, true))                                    \
            return -1;                  /* another's already */                \
        floor_entry(t, PM_TXE_FREE, off, 0, NULL, CHECK);                      \
        t->free[t->n_free++] = off;                                            \
        return 0;                                                              \
    }                                                                          \
    __attribute__((noinline)) static int V##_commit(allocator_space_t *s)      \
    {                                                                          \
        struct floor_tx *t = floor_of(s);                                      \
        if (t == NULL)                                                         \
            return -1;                                                         \
        t->state = PM_TX_COMMITTED | t->gen << 8;                              \
        for (uint64_t i = 0; i < t->n_free; i++)                               \
            persistent_free(s, t->base + t->free[i]);                          \
        for (uint64_t i = 0; MARK && i < t->n_free; i++)                       \
            (void)floor_mark(t->free[i], false);                               \
        for (uint64_t i = 0; MARK && i < t->n_alloc; i++)                      \
            (void)floor_mark(t->alloc[i], false);                              \
        t->state = PM_TX_IDLE | t->gen << 8;                                   \
        t->n_alloc = t->n_free = 0;                                            \
        return 0;                                                              \
    }                                                                          \
    __attribute__((noinline)) static void V##_loop(long n)                     \
    {                                                                          \
        for (long i = 0; i < n; i++) {                                         \
            struct record *r = record;                                         \
            must(V##_begin(space) == 0, "floor begin");                        \
            must(V##_add(space, r, floor_len) == 0, "floor add");              \
            uint64_t *b = V##_alloc(space, 64);                                \
            must(b != NULL, "floor alloc");                                    \
            b[0] = (uint64_t)i;                                                \
            if (r->link != 0)                                                  \
                must(V##_free(space, persistent_offset_to_ptr(space, r->link)) == 0, \
                     "floor free");                                            \
            r->a[0] = (uint64_t)i;                                             \
            r->link = ptr_to_persistent_offset(space, b);                      \
            must(V##_commit(space) == 0, "floor commit");                      \
        }                                                                      \
    }

FLOOR(floor, true, false)
FLOOR(floor_mark, true, true)
FLOOR(floor_nocheck, false, false)

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
    if (pattern >= 5) {
        static struct floor_tx ft;      /* the calling thread's */
        ft.space = space;
        ft.base = (char *)record - ptr_to_persistent_offset(space, record);
        ft.key = (uint64_t)((char *)ft.log - ft.base);
        floor_cur = &ft;
        if (pattern == 5)
            floor_loop(n);
        else if (pattern == 6)
            floor_mark_loop(n);
        else
            floor_nocheck_loop(n);
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
    static const char *const patterns[] = {"pair",  "lifo",       "spread",       "update",
                                           "tx",    "floor",      "floor-mark",
                                           "floor-nocheck"};
    enum { N_PATTERNS = sizeof patterns / sizeof patterns[0] };
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: instr pm|libc|none pair|lifo|spread|update|tx|floor|"
                        "floor-mark|floor-nocheck N [DIR]\n");
        return 2;
    }
    int backend = index_of(argv[1], backends, 3);
    int pattern = index_of(argv[2], patterns, N_PATTERNS);
    long n = atol(argv[3]);
    if (backend < 0 || pattern < 0 || n < SPREAD || (pattern >= 3 && backend != 0)) {
        fprintf(stderr, "instr: bad backend, pattern or N (N >= %d; update, tx, floor: pm)\n",
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

/* The allocation calls, one edge case at a time. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#include <stdint.h>

#include "internal.h"                  /* test hooks */

static allocator_space_t *s;
static char s_path[256];
static struct t_misuse mis;

static void expect_misuse(int code, const void *ptr, const char *what)
{
    if (mis.count != 1 || mis.last_code != code || mis.last_ptr != ptr) {
        fprintf(stderr, "%s: %d reports, last code %d ptr %p (want %d %p)\n", what,
                mis.count, mis.last_code, mis.last_ptr, code, ptr);
        t_failures++;
    }
    mis = (struct t_misuse){0};
}

static void test_malloc(void)
{
    errno = 0;
    CHECK(persistent_malloc(s, 0) == NULL);
    errno = 0;
    CHECK(persistent_malloc(s, SIZE_MAX) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK(persistent_malloc(s, SIZE_MAX / 2) == NULL);
    CHECK(persistent_malloc(s, (64u << 20) + 1) == NULL);    /* above capacity */
    for (size_t n = 1; n <= 70000; n += (n < 300 ? 1 : n / 7)) {
        char *p = persistent_malloc(s, n);
        REQUIRE(p != NULL);
        CHECK((uintptr_t)p % 16 == 0);
        size_t u = persistent_usable_size(s, p);
        CHECK(u >= n);
        if (n >= 64 && n <= 65536)
            CHECK(u - n <= n / 4);              /* waste within a class */
        memset(p, 0xab, u);
        persistent_free(s, p);
        CHECK_EQ(persistent_usable_size(s, p), 0);   /* freed: no longer live */
    }
    CHECK_EQ(persistent_usable_size(s, NULL), 0);
    CHECK_EQ(mis.count, 0);
}

static void test_calloc(void)
{
    errno = 0;
    CHECK(persistent_calloc(s, SIZE_MAX / 2, 4) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK(persistent_calloc(s, (size_t)1 << 33, (size_t)1 << 33) == NULL);
    /* dirty a block, free it, calloc the same size: zeroed */
    for (size_t n = 8; n <= 200000; n *= 5) {
        unsigned char *d = persistent_malloc(s, n);
        REQUIRE(d != NULL);
        memset(d, 0xff, n);
        persistent_free(s, d);
        unsigned char *z = persistent_calloc(s, n / 4, 4);
        REQUIRE(z != NULL);
        size_t bad = 0;
        for (size_t i = 0; i < n / 4 * 4; i++)
            bad += z[i] != 0;
        CHECK_EQ(bad, 0);
        persistent_free(s, z);
    }
}

static void test_aligned(void)
{
    for (size_t a = 1; a <= (2u << 20); a <<= 1) {
        static const size_t sizes[] = {1, 24, 100, 4096, 5000, 70000};
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            void *p = persistent_aligned_alloc(s, a, sizes[i]);
            REQUIRE(p != NULL);
            CHECK((uintptr_t)p % a == 0);
            CHECK((uintptr_t)p % 16 == 0);
            CHECK(persistent_usable_size(s, p) >= sizes[i]);
            memset(p, 1, sizes[i]);
            persistent_free(s, p);
        }
    }
    errno = 0;
    CHECK(persistent_aligned_alloc(s, 3, 10) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(persistent_aligned_alloc(s, 0, 10) == NULL);
    CHECK(persistent_aligned_alloc(s, 4u << 20, 10) == NULL);
    CHECK(persistent_aligned_alloc(s, 64, 0) == NULL);
    CHECK_EQ(mis.count, 0);
}

static void test_realloc(void)
{
    /* the seed's macro: false for NULL, size 0 and exhaustion, ptr intact */
    char *p = NULL;
    CHECK(!persistent_realloc(s, p, 10));
    p = persistent_malloc(s, 40);
    REQUIRE(p != NULL);
    strcpy(p, "keep me");
    char *q = p;
    CHECK(!persistent_realloc(s, p, 0));
    CHECK(p == q);
    CHECK(!persistent_realloc(s, p, SIZE_MAX / 2));
    CHECK(p == q && strcmp(p, "keep me") == 0);

    /* shrink a little: same block; grow: moved, contents kept */
    CHECK(persistent_realloc(s, p, 33));
    CHECK(p == q);
    CHECK(persistent_realloc(s, p, 48));            /* its class's size */
    CHECK(p == q);
    CHECK(persistent_realloc(s, p, 1));             /* a block of 64 or less stays */
    CHECK(p == q);
    CHECK(strcmp(p, "keep me") == 0);
    /* a block over 64 bytes moves when shrunk to half its size or less,
     * and stays above; the old block is free after a move */
    char *k = persistent_malloc(s, 1000);          /* a 1 KiB block */
    REQUIRE(k != NULL);
    memset(k, 'k', 1000);
    char *k0 = k;
    CHECK(persistent_realloc(s, k, 513));
    CHECK(k == k0);
    CHECK(persistent_realloc(s, k, 512));
    CHECK(k != k0);
    CHECK_EQ(persistent_usable_size(s, k0), 0);
    CHECK(persistent_usable_size(s, k) >= 512 && persistent_usable_size(s, k) < 1024);
    CHECK(k[0] == 'k' && k[511] == 'k');
    persistent_free(s, k);
    for (size_t n = 100; n < 300000; n = n * 3 + 7) {
        char *old = p;
        REQUIRE(persistent_realloc(s, p, n));
        CHECK(strcmp(p, "keep me") == 0);
        CHECK(persistent_usable_size(s, p) >= n);
        if (p != old)
            CHECK_EQ(persistent_usable_size(s, old), 0);
    }
    /* a large block grows in place when the next pages are free */
    void *big = persistent_malloc(s, 100000);
    REQUIRE(big != NULL);
    void *fence = persistent_malloc(s, 300000);  /* so it is not the last run */
    REQUIRE(fence != NULL);
    persistent_free(s, fence);
    void *before = big;
    REQUIRE(persistent_realloc(s, big, 250000));
    CHECK(big == before);
    /* and shrinks in place, giving the tail back */
    REQUIRE(persistent_realloc(s, big, 150000));
    CHECK(big == before);
    CHECK(persistent_usable_size(s, big) < 160000);
    /* shrinking far below moves it into a small class */
    REQUIRE(persistent_realloc(s, big, 100));
    CHECK(persistent_usable_size(s, big) < 200);
    persistent_free(s, big);
    persistent_free(s, p);

    /* the libc-style call */
    char *r = persistent_reallocate(s, NULL, 20);
    REQUIRE(r != NULL);
    strcpy(r, "abc");
    r = persistent_reallocate(s, r, 5000);
    REQUIRE(r != NULL);
    CHECK(strcmp(r, "abc") == 0);
    char *keep = r;
    CHECK(persistent_reallocate(s, r, SIZE_MAX / 2) == NULL);
    CHECK(strcmp(keep, "abc") == 0);
    CHECK(persistent_reallocate(s, keep, 0) == NULL);     /* frees */
    CHECK_EQ(persistent_usable_size(s, keep), 0);
    CHECK_EQ(mis.count, 0);
}

static void *free_elsewhere(void *p)
{
    persistent_free(s, p);
    return NULL;
}

static void *free_twice_elsewhere(void *p)
{
    persistent_free(s, p);
    persistent_free(s, p);
    return NULL;
}

/* A double free whose other half is a remote free in progress: the
 * other thread has set its remote bit and not yet its summary bit (it is
 * parked there, PM_HOOK_REMOTE_PUSH) when the owner frees the same block.
 * The owner must see the remote bit and refuse; had it looked only at the
 * summary, it would have freed the block, handed it out again, and the
 * remote free collected later would have freed the new owner's live block
 * (found by a review of the free path, 2026-12-02). */
static _Atomic int dfw_stage;
static _Thread_local int dfw_victim;

static void dfw_hook(int point)
{
    if (point != PM_HOOK_REMOTE_PUSH || !dfw_victim)
        return;
    dfw_victim = 0;
    atomic_store(&dfw_stage, 1);
    while (atomic_load(&dfw_stage) != 2)
        usleep(100);
}

static void *dfw_remote(void *p)
{
    dfw_victim = 1;
    persistent_free(s, p);
    return NULL;
}

static void test_double_free_beside_remote_free(void)
{
    char *p = persistent_malloc(s, 64);
    REQUIRE(p != NULL);
    atomic_store(&dfw_stage, 0);
    pm_store_release(&pm_test_hook, dfw_hook);
    pthread_t th;
    pthread_create(&th, NULL, dfw_remote, p);
    while (atomic_load(&dfw_stage) != 1)
        usleep(100);
    persistent_free(s, p);                  /* the owner's half */
    expect_misuse(PERSISTENT_E_DOUBLE_FREE, p, "owner's free beside a remote one");
    /* had the owner's free been taken, p's remote bit would keep it out of
     * every free mask until a collect, which would then report the remote
     * half as a double free (mis.count below) */
    char *q = persistent_malloc(s, 64);
    REQUIRE(q != NULL);
    atomic_store(&dfw_stage, 2);
    pthread_join(th, NULL);
    pm_store_release(&pm_test_hook, (pm_hook_fn *)NULL);
    CHECK_EQ(mis.count, 0);                 /* the remote half was a free */
    /* every block of the class until the owner has collected: q never
     * comes back while it is live */
    int again = 0;
    void *held[4096];
    int n = 0;
    for (; n < 4096; n++) {
        held[n] = persistent_malloc(s, 64);
        REQUIRE(held[n] != NULL);
        again += held[n] == q;
    }
    CHECK_EQ(again, 0);
    for (int i = 0; i < n; i++)
        persistent_free(s, held[i]);
    persistent_free(s, q);
    CHECK_EQ(mis.count, 0);
}

static void test_misuse(void)
{
    persistent_free(s, NULL);
    CHECK_EQ(mis.count, 0);

    char *p = persistent_malloc(s, 100);
    REQUIRE(p != NULL);
    persistent_free(s, p + 16);                        /* interior */
    expect_misuse(PERSISTENT_E_BAD_POINTER, p + 16, "interior small");
    persistent_free(s, p + 1);
    expect_misuse(PERSISTENT_E_BAD_POINTER, p + 1, "misaligned small");
    persistent_free(s, p);
    CHECK_EQ(mis.count, 0);
    persistent_free(s, p);                             /* double */
    expect_misuse(PERSISTENT_E_DOUBLE_FREE, p, "double small");

    /* freed by another thread (a remote free, not yet collected: alloc
     * and remote bit set), then used by its owner: the block is not live,
     * and freeing it again is a double free, reported at once */
    char *q = persistent_malloc(s, 100);
    REQUIRE(q != NULL);
    pthread_t th;
    pthread_create(&th, NULL, free_elsewhere, q);
    pthread_join(th, NULL);
    CHECK_EQ(mis.count, 0);
    CHECK_EQ(persistent_usable_size(s, q), 0);
    char *q0 = q;
    CHECK(!persistent_realloc(s, q, 200));
    CHECK(q == q0);
    expect_misuse(PERSISTENT_E_BAD_POINTER, q0, "realloc after a remote free");
    persistent_free(s, q0);
    expect_misuse(PERSISTENT_E_DOUBLE_FREE, q0, "owner's free after a remote free");

    /* freed twice by another thread: the second remote free is refused */
    char *q2 = persistent_malloc(s, 100);
    REQUIRE(q2 != NULL);
    pthread_create(&th, NULL, free_twice_elsewhere, q2);
    pthread_join(th, NULL);
    expect_misuse(PERSISTENT_E_DOUBLE_FREE, q2, "second remote free");

    char *big = persistent_malloc(s, 1u << 20);
    REQUIRE(big != NULL);
    persistent_free(s, big + 4096);                    /* interior of a run */
    expect_misuse(PERSISTENT_E_BAD_POINTER, big + 4096, "interior large");
    persistent_free(s, big);
    persistent_free(s, big);
    expect_misuse(PERSISTENT_E_BAD_POINTER, big, "double large");

    int on_stack;
    persistent_free(s, &on_stack);                     /* foreign */
    expect_misuse(PERSISTENT_E_BAD_POINTER, &on_stack, "stack pointer");
    void *heap = malloc(32);
    persistent_free(s, heap);
    expect_misuse(PERSISTENT_E_BAD_POINTER, heap, "libc pointer");
    free(heap);
    persistent_free(s, (char *)s + 64);                /* the header */
    expect_misuse(PERSISTENT_E_BAD_POINTER, (char *)s + 64, "header");

    /* realloc of a small block that is not live, or of a pointer inside
     * one: refused and reported, the pointer left as it was (the small
     * blocks' own lookup in alloc.c: realloc_small) */
    char *f = persistent_malloc(s, 100);
    REQUIRE(f != NULL);
    persistent_free(s, f);
    char *f0 = f;
    errno = 0;
    CHECK(!persistent_realloc(s, f, 300));
    CHECK(f == f0);
    CHECK_EQ(errno, EINVAL);
    expect_misuse(PERSISTENT_E_BAD_POINTER, f0, "realloc of a freed small block");
    errno = 0;
    CHECK(persistent_reallocate(s, f0, 20) == NULL);
    CHECK_EQ(errno, EINVAL);
    expect_misuse(PERSISTENT_E_BAD_POINTER, f0, "reallocate of a freed small block");
    char *g = persistent_malloc(s, 100);
    REQUIRE(g != NULL);
    char *gi = g + 16;
    CHECK(!persistent_realloc(s, gi, 300));
    CHECK(gi == g + 16);
    expect_misuse(PERSISTENT_E_BAD_POINTER, g + 16, "realloc of an interior pointer");
    CHECK(persistent_usable_size(s, g) >= 100);       /* untouched */
    persistent_free(s, g);
    CHECK_EQ(mis.count, 0);

    void *x = persistent_malloc(s, 64);
    REQUIRE(x != NULL);
    CHECK(!persistent_realloc(s, heap, 10));
    expect_misuse(PERSISTENT_E_BAD_POINTER, heap, "realloc of a foreign pointer");
    persistent_free(s, x);

    /* after all that the heap is intact and holds nothing */
    t_check_clean(s, "after misuse");
    struct persistent_check_report rep;
    persistent_check(s, &rep);
    CHECK_EQ(rep.live_blocks, 0);
}

static void test_stats(void)
{
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    uint64_t base_live = st.live_bytes;
    void *a = persistent_malloc(s, 100);     /* class 112 */
    void *b = persistent_malloc(s, 1u << 20);
    REQUIRE(a && b);
    REQUIRE(persistent_stats_get(s, &st) == 0);
    CHECK_EQ(st.live_bytes, base_live + 112 + (1u << 20));
    CHECK_EQ(st.large_runs, 1);
    CHECK(st.cls[6].live_blocks >= 1);
    CHECK_EQ(st.cls[6].block_size, 112);
    CHECK(st.file_size > st.capacity);
    CHECK(st.free_bytes < st.capacity);
    persistent_free(s, a);
    persistent_free(s, b);
    REQUIRE(persistent_stats_get(s, &st) == 0);
    CHECK_EQ(st.live_bytes, base_live);
    /* the thread's current superblock of a class stays when it empties */
    CHECK(st.empty_superblocks >= 1);
    CHECK(st.empty_superblocks <= st.superblocks);
}

/* The index in persistent_stats.cls of a's class of blocks of size bytes. */
static uint32_t class_of_size(allocator_space_t *a, uint32_t size)
{
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(a, &st) == 0);
    uint32_t c = 0;
    while (c < st.n_classes && st.cls[c].block_size != size)
        c++;
    REQUIRE(c < st.n_classes);
    return c;
}

/* A superblock the thread has set aside (full, a newer one current) and
 * then empties, by the free fast path as by the general one, stays the
 * thread's as a spare (superblock.c), and is the next one it allocates
 * from: no superblock is carved while it has one. */
static void test_set_aside_spare(void)
{
    const char *p = t_path("alloc-aside");
    allocator_space_t *a = create_persistent_allocator(p, 16u << 20);
    REQUIRE(a != NULL);
    struct persistent_stats st;
    uint32_t c = class_of_size(a, 1024);
    static void *b[4096];
    int n = 0, first = -1;
    do {
        REQUIRE(n < 4096 && (b[n++] = persistent_malloc(a, 1000)) != NULL);
        REQUIRE(persistent_stats_get(a, &st) == 0);
        if (first < 0 && st.cls[c].superblocks == 2)
            first = n - 1;              /* blocks in the first superblock */
    } while (st.cls[c].superblocks < 3);
    REQUIRE(first > 1);
    for (int i = 0; i < first; i++)
        persistent_free(a, b[i]);       /* the first, set aside, empties */
    REQUIRE(persistent_stats_get(a, &st) == 0);
    CHECK_EQ(st.empty_superblocks, 1);  /* kept */
    CHECK_EQ(st.cls[c].superblocks, 3);
    /* the third (current) has first - 1 blocks free: the next first
     * mallocs take them and one block of the spare */
    for (int i = 0; i < first; i++)
        REQUIRE((b[i] = persistent_malloc(a, 1000)) != NULL);
    REQUIRE(persistent_stats_get(a, &st) == 0);
    CHECK_EQ(st.empty_superblocks, 0);
    CHECK_EQ(st.cls[c].superblocks, 3);
    for (int i = 0; i < n; i++)
        persistent_free(a, b[i]);
    t_check_clean(a, "set-aside superblock kept");
    destroy_persistent_allocator(a);
    unlink(p);
}

/* Fills class c's superblocks with size-byte blocks up to bytes, then
 * frees them in the order they came; the number of blocks. */
static int fill_and_free(allocator_space_t *a, size_t size, uint64_t bytes, void **b, int max)
{
    int n = 0;
    for (uint64_t got = 0; got < bytes; got += size) {
        REQUIRE(n < max && (b[n] = persistent_malloc(a, size)) != NULL);
        t_fill(b[n], 64, size);
        n++;
    }
    for (int i = 0; i < n; i++) {
        CHECK(t_verify(b[i], 64, size));
        persistent_free(a, b[i]);
    }
    return n;
}

/* The spares a thread keeps are bounded: at most a sixteenth of a space
 * smaller than 64 MiB (PM_SPARE_BYTES, 4 MiB, above), by their classes'
 * preferred lengths, and of a growable one as large as it is now; the
 * rest of what it empties goes back at once. */
static void test_spare_bound(uint64_t max)
{
    const char *p = t_path("alloc-spare-bound");
    uint64_t cap = 4u << 20;
    allocator_space_t *a = t_create(p, cap, max);
    static void *b[4096];
    struct persistent_stats st;
    uint32_t c = class_of_size(a, 1024);
    /* three rounds: the spares one leaves are the next one's first
     * superblocks, and the count of the thread's spares follows them */
    for (int round = 0; round < 3; round++) {
        int n = 0;
        for (uint64_t got = 0; got < (2u << 20); got += 1000)
            REQUIRE(n < 4096 && (b[n++] = persistent_malloc(a, 1000)) != NULL);
        REQUIRE(persistent_stats_get(a, &st) == 0);
        uint64_t sb_bytes = st.superblock_bytes / st.cls[c].superblocks;
        REQUIRE(st.cls[c].superblocks > 8);
        for (int i = 0; i < n; i++)
            persistent_free(a, b[i]);
        REQUIRE(persistent_stats_get(a, &st) == 0);
        printf("spares, max %" PRIu64 " MiB, round %d: %" PRIu64 " superblocks of %" PRIu64
               " bytes held empty of %" PRIu64 " bytes of 1 KiB blocks freed, the bound %"
               PRIu64 "\n", max >> 20, round, st.empty_superblocks, sb_bytes,
               (uint64_t)n * 1024, cap / 16);
        CHECK_EQ(st.superblocks, st.empty_superblocks);
        CHECK(st.empty_superblocks >= 2);   /* the current one and a spare */
        CHECK(st.superblock_bytes <= cap / 16 + sb_bytes);
    }
    t_check_clean(a, "spares bounded");
    persistent_space_close(a);
    unlink(p);
}

/* A thread gives its spares back before it grows the space: another
 * class's blocks fill their pages first. */
static void test_spare_before_growth(void)
{
    const char *p = t_path("alloc-spare-grow");
    /* 16 MiB: a sixteenth holds the spares of both classes below */
    allocator_space_t *a = t_create(p, 16u << 20, 64u << 20);
    enum { MAXB = 1 << 19 };
    static void *b[MAXB];
    struct persistent_info in;
    struct persistent_stats st;
    uint32_t c = class_of_size(a, 1024);
    REQUIRE(persistent_space_info(a, &in) == 0);
    uint64_t cap0 = in.capacity;
    /* six superblocks' worth, fewer than an owned set holds: none is
     * detached (a detached one that empties goes to the partial list,
     * which only a scavenge empties) */
    (void)fill_and_free(a, 1000, 6 * 60000, b, MAXB);
    REQUIRE(persistent_stats_get(a, &st) == 0);
    uint32_t held = st.cls[c].superblocks;
    CHECK(held >= 2);                   /* the current one and spares */
    /* 64-byte blocks until the space grows */
    int n = 0;
    do {
        REQUIRE(n < MAXB && (b[n++] = persistent_malloc(a, 64)) != NULL);
        REQUIRE(persistent_space_info(a, &in) == 0);
    } while (in.capacity == cap0);
    REQUIRE(persistent_stats_get(a, &st) == 0);
    printf("spares before growth: %u superblocks of 1 KiB blocks held, %u when"
           " %d blocks of 64 bytes grew the space\n", held, st.cls[c].superblocks, n);
    CHECK(st.cls[c].superblocks <= 1);  /* its current one, if any */
    for (int i = 0; i < n; i++)
        persistent_free(a, b[i]);
    /* and before a large block grows it */
    uint64_t cap1 = in.capacity;
    (void)fill_and_free(a, 1000, 6 * 60000, b, MAXB);
    REQUIRE(persistent_stats_get(a, &st) == 0);
    held = st.cls[c].superblocks;
    CHECK(held >= 2);
    n = 0;
    do {
        REQUIRE(n < MAXB && (b[n++] = persistent_malloc(a, 256u << 10)) != NULL);
        REQUIRE(persistent_space_info(a, &in) == 0);
    } while (in.capacity == cap1);
    REQUIRE(persistent_stats_get(a, &st) == 0);
    printf("spares before growth: %u superblocks of 1 KiB blocks held, %u when"
           " %d blocks of 256 KiB grew the space\n", held, st.cls[c].superblocks, n);
    CHECK(st.cls[c].superblocks <= 1);
    for (int i = 0; i < n; i++)
        persistent_free(a, b[i]);
    t_check_clean(a, "spares before growth");
    persistent_space_close(a);
    unlink(p);
}

/* Spares fill the owned set of a space large enough for eight of them;
 * the thread's frees into the superblocks it detached (full, the set
 * full) still find room there, a spare giving way, and go the local way:
 * nothing is left on the partial list with all its blocks freed. */
static void test_spare_full_set(void)
{
    const char *p = t_path("alloc-spare-set");
    allocator_space_t *a = create_persistent_allocator(p, 64u << 20);
    REQUIRE(a != NULL);
    static void *b[4096];
    struct persistent_stats st;
    uint32_t c = class_of_size(a, 1024);
    for (int round = 0; round < 2; round++) {
        int n = fill_and_free(a, 1000, 20 * 60000, b, 4096);
        REQUIRE(persistent_stats_get(a, &st) == 0);
        printf("spares, a full set, round %d: %u superblocks of 1 KiB blocks left"
               " after %d blocks freed\n", round, st.cls[c].superblocks, n);
        CHECK(st.cls[c].superblocks >= 2);
        CHECK(st.cls[c].superblocks <= 1 + 8);  /* current and owned set */
    }
    t_check_clean(a, "spares, a full set");
    destroy_persistent_allocator(a);
    unlink(p);
}

/* An aborted transaction's allocations are freed together: their bits
 * first, then each block's bookkeeping, every one of which finds the
 * set-aside superblock empty.  It becomes one spare, counted once: the
 * thread keeps spares afterwards. */
static void test_spare_after_abort(void)
{
    const char *p = t_path("alloc-spare-abort");
    allocator_space_t *a = create_persistent_allocator(p, 64u << 20);
    REQUIRE(a != NULL);
    static void *b[4096];
    struct persistent_stats st;
    uint32_t c = class_of_size(a, 1024);
    REQUIRE(persistent_tx_begin(a) == 0);
    for (int i = 0; i < 3 * 64; i++)
        REQUIRE(persistent_tx_alloc(a, 1000) != NULL);
    REQUIRE(persistent_tx_abort(a) == 0);
    for (int round = 0; round < 2; round++) {
        /* six superblocks' worth, all kept (the current one and five
         * spares) but for the abort's three, which the rounds take first */
        (void)fill_and_free(a, 1000, 6 * 60000, b, 4096);
        REQUIRE(persistent_stats_get(a, &st) == 0);
        printf("spares after an abort, round %d: %u superblocks of 1 KiB blocks left\n",
               round, st.cls[c].superblocks);
        CHECK(st.cls[c].superblocks >= 5);
    }
    t_check_clean(a, "spares after an abort");
    destroy_persistent_allocator(a);
    unlink(p);
}

/* Blocks freed into the thread's current superblock are handed out again
 * before another superblock is carved: the free fast path notes their
 * words in the free-word hint (the current word's too), where a malloc
 * that runs out of its word looks next. */
static void test_current_reused(void)
{
    const char *p = t_path("alloc-reuse");
    allocator_space_t *a = create_persistent_allocator(p, 16u << 20);
    REQUIRE(a != NULL);
    struct persistent_stats st;
    uint32_t c = class_of_size(a, 64);
    static void *b[3 * 4096];
    int n = 0, first = -1;
    do {                                /* the first superblock full */
        REQUIRE(n < 4096 && (b[n++] = persistent_malloc(a, 64)) != NULL);
        REQUIRE(persistent_stats_get(a, &st) == 0);
        if (st.cls[c].superblocks == 2)
            first = n - 1;
    } while (first < 0);
    REQUIRE(first > 8);
    /* half of the second one (current) taken and freed, newest first and
     * oldest first, then nearly a superblock's worth asked for */
    for (int i = 0; i < first / 2; i++)
        REQUIRE((b[n++] = persistent_malloc(a, 64)) != NULL);
    for (int i = n - 1; i >= n - first / 4; i--)
        persistent_free(a, b[i]);
    for (int i = first; i < n - first / 4; i++)
        persistent_free(a, b[i]);
    n = first;
    for (int i = 0; i < first - 2; i++)
        REQUIRE((b[n++] = persistent_malloc(a, 64)) != NULL);
    REQUIRE(persistent_stats_get(a, &st) == 0);
    CHECK_EQ(st.cls[c].superblocks, 2);
    for (int i = 0; i < n; i++)
        persistent_free(a, b[i]);
    t_check_clean(a, "current superblock's blocks reused");
    destroy_persistent_allocator(a);
    unlink(p);
}

/* Issue 10, defect 2: on a nearly full space an aligned request fell back
 * to a larger class whose blocks are less aligned (4096 asked, 2048 got).
 * Spaces of several sizes (so page sizes from 512 B to 4 KiB) are filled
 * with blocks of a class that is only 2 KiB aligned, a quarter is freed,
 * and every alignment is asked for until the space says no. */
static void test_aligned_when_full(void)
{
    static const uint64_t sizes[] = {16u << 10, 64u << 10, 1u << 20, 16u << 20};
    static const size_t aligns[] = {32, 64, 128, 256, 512, 1024, 2048, 4096,
                                    8192, 65536, 1u << 21};
    static const size_t asks[] = {1, 30, 100, 1000, 5000, 20000};
    for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
        const char *p = t_path("aligned-full");
        allocator_space_t *sp = create_persistent_allocator(p, sizes[z]);
        REQUIRE(sp != NULL);
        enum { MAXB = 4096 };
        static void *b[MAXB];
        int n = 0;
        while (n < MAXB && (b[n] = persistent_malloc(sp, 6000)) != NULL)
            n++;
        CHECK(n > 0);
        for (int i = 0; i < n; i += 4)
            persistent_free(sp, b[i]);
        int got = 0, bad = 0;
        for (int round = 0; round < 40; round++) {
            for (size_t a = 0; a < sizeof aligns / sizeof *aligns; a++) {
                for (size_t k = 0; k < sizeof asks / sizeof *asks; k++) {
                    char *q = persistent_aligned_alloc(sp, aligns[a], asks[k]);
                    if (q == NULL)
                        continue;
                    got++;
                    if ((uintptr_t)q % aligns[a] != 0) {
                        if (bad++ < 5)
                            fprintf(stderr, "space %llu: aligned_alloc(%zu, %zu) = "
                                    "%p, %zu off\n", (unsigned long long)sizes[z],
                                    aligns[a], asks[k], (void *)q,
                                    (size_t)((uintptr_t)q % aligns[a]));
                    }
                    CHECK(persistent_usable_size(sp, q) >= asks[k]);
                    memset(q, 0x5a, asks[k]);
                }
            }
        }
        CHECK_EQ(bad, 0);
        CHECK(got > 0);
        t_check_clean(sp, "aligned allocations on a full space");
        destroy_persistent_allocator(sp);
        unlink(p);
    }
}

/* Calls a thread makes after its exit destructor ran (glibc's own thread
 * clean-up frees there; so may a destructor of a key made after the
 * library's): each takes a thread record that no destructor hands back,
 * and the library hands it back once the thread is gone.  More threads
 * than there are records: without that, the 4,096th fails with EAGAIN. */
static pthread_key_t late_key;

static void late_free(void *blk)
{
    persistent_free(s, blk);            /* after the library's destructor */
}

static void *late_thread(void *arg)
{
    (void)arg;
    void *a = persistent_malloc(s, 48);     /* a record, the library's key set */
    void *b = persistent_malloc(s, 48);
    if (a == NULL || b == NULL)
        return (void *)1;
    persistent_free(s, a);
    (void)pthread_setspecific(late_key, b);
    return NULL;
}

static void test_calls_after_thread_exit(void)
{
    struct persistent_stats st0, st;
    REQUIRE(persistent_stats_get(s, &st0) == 0);
    REQUIRE(pthread_key_create(&late_key, late_free) == 0);     /* after the library's */
    int failed = 0;
    for (int i = 0; i < 4500 && !failed; i++) {
        pthread_t t;
        void *r;
        REQUIRE(pthread_create(&t, NULL, late_thread, NULL) == 0);
        pthread_join(t, &r);
        failed = r != NULL;
        if (failed)
            fprintf(stderr, "thread %d: malloc failed: %s\n", i, strerror(errno));
    }
    CHECK(!failed);
    REQUIRE(persistent_stats_get(s, &st) == 0);
    CHECK_EQ(st.live_blocks, st0.live_blocks);      /* every late free done */
    pthread_key_delete(late_key);
}

/* A NULL space is no space: in a thread that never used one (its cache
 * is empty), and after a lookup of an unknown space emptied the cache of
 * one that is open, which must not then serve NULL. */
static void *null_space_fresh(void *arg)
{
    char *blk = arg;
    errno = 0;
    CHECK(persistent_malloc(NULL, 8) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(persistent_calloc(NULL, 1, 8) == NULL);
    CHECK_EQ(errno, EINVAL);
    persistent_free(NULL, blk);
    return NULL;
}

static void test_null_space(void)
{
    char *a = persistent_malloc(s, 48), *b = persistent_malloc(s, 5000);
    REQUIRE(a && b);
    pthread_t th;
    pthread_create(&th, NULL, null_space_fresh, a);
    pthread_join(th, NULL);
    expect_misuse(PERSISTENT_E_BAD_POINTER, a, "free of a block with a NULL space, new thread");
    /* this thread's cache names s; an unknown space empties it */
    errno = 0;
    CHECK(persistent_malloc((allocator_space_t *)(uintptr_t)0x1000, 8) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(persistent_malloc(NULL, 8) == NULL);
    CHECK_EQ(errno, EINVAL);
    persistent_free(NULL, a);
    expect_misuse(PERSISTENT_E_BAD_POINTER, a, "free of a small block with a NULL space");
    persistent_free(NULL, b);
    expect_misuse(PERSISTENT_E_BAD_POINTER, b, "free of a large block with a NULL space");
    CHECK(persistent_usable_size(s, a) >= 48);   /* still live */
    CHECK(persistent_usable_size(s, b) >= 5000);
    persistent_free(s, a);
    persistent_free(s, b);
    CHECK_EQ(mis.count, 0);
}

/* persistent_free_check: what a free would say, nothing reported or
 * changed */
static void test_free_check(void)
{
    CHECK_EQ(persistent_free_check(s, NULL), 0);
    char *p = persistent_malloc(s, 100), *big = persistent_malloc(s, 1u << 20);
    REQUIRE(p != NULL && big != NULL);
    CHECK_EQ(persistent_free_check(s, p), 0);
    CHECK_EQ(persistent_free_check(s, big), 0);
    CHECK_EQ(persistent_free_check(s, p + 16), PERSISTENT_E_BAD_POINTER);
    CHECK_EQ(persistent_free_check(s, p + 1), PERSISTENT_E_BAD_POINTER);
    CHECK_EQ(persistent_free_check(s, big + 4096), PERSISTENT_E_BAD_POINTER);
    int on_stack;
    CHECK_EQ(persistent_free_check(s, &on_stack), PERSISTENT_E_BAD_POINTER);
    CHECK_EQ(persistent_free_check(s, (char *)s + 64), PERSISTENT_E_BAD_POINTER);
    CHECK_EQ(persistent_free_check(NULL, p), -EINVAL);
    CHECK_EQ(mis.count, 0);
    CHECK(persistent_usable_size(s, p) >= 100);     /* nothing changed */
    CHECK(persistent_usable_size(s, big) >= (1u << 20));

    /* freed: as free would report it (a small block's second free is a
     * double free, a large one's a bad pointer); a remote free not yet
     * collected too */
    char *q = persistent_malloc(s, 100);
    REQUIRE(q != NULL);
    pthread_t th;
    pthread_create(&th, NULL, free_elsewhere, q);
    pthread_join(th, NULL);
    CHECK_EQ(persistent_free_check(s, q), PERSISTENT_E_DOUBLE_FREE);
    persistent_free(s, p);
    persistent_free(s, big);
    CHECK_EQ(persistent_free_check(s, p), PERSISTENT_E_DOUBLE_FREE);
    CHECK_EQ(persistent_free_check(s, big), PERSISTENT_E_BAD_POINTER);
    CHECK_EQ(mis.count, 0);

    /* a root's block; blocks of an open transaction (held by a snapshot,
     * freed by it, allocated by it), the caller's own */
    const uint64_t tag = UINT64_C(0x66726565636b);
    char *r = persistent_malloc_root(s, tag, 40);
    REQUIRE(r != NULL);
    CHECK_EQ(persistent_free_check(s, r), PERSISTENT_E_ROOT_BLOCK);
    REQUIRE(persistent_root_remove(s, tag) == 0);
    char *held = persistent_malloc(s, 64), *gone = persistent_malloc(s, 5000);
    REQUIRE(held != NULL && gone != NULL);
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_add(s, held, 8) == 0);
    REQUIRE(persistent_tx_free(s, gone) == 0);
    char *fresh = persistent_tx_alloc(s, 64);
    REQUIRE(fresh != NULL);
    CHECK_EQ(persistent_free_check(s, held), PERSISTENT_E_TX_BLOCK);
    CHECK_EQ(persistent_free_check(s, gone), PERSISTENT_E_TX_BLOCK);
    CHECK_EQ(persistent_free_check(s, fresh), PERSISTENT_E_TX_BLOCK);
    REQUIRE(persistent_tx_commit(s) == 0);
    CHECK_EQ(persistent_free_check(s, held), 0);
    CHECK_EQ(persistent_free_check(s, fresh), 0);
    CHECK_EQ(persistent_free_check(s, gone), PERSISTENT_E_DOUBLE_FREE);  /* at the commit */
    CHECK_EQ(mis.count, 0);

    /* a superblock header's block count overwritten (a stray write): the
     * check finds the block by its page map entry, as free does, and reads
     * nothing past the bitmap (a review: it read 512 MiB past the header
     * for one count, and called a live block freed for another) */
    char *hv = persistent_malloc(s, 64);
    REQUIRE(hv != NULL);
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(s, &rt);
    uint32_t sb, c, idx, n;
    struct pm_sb_header *h;
    REQUIRE(rec != NULL && pm_locate_small(rt, rec, hv, &sb, &h, &c, &idx, &n));
    uint32_t nb = h->n_blocks;
    h->n_blocks = UINT32_C(0xFFFFFF00);
    CHECK_EQ(persistent_free_check(s, hv), 0);
    h->n_blocks = UINT32_C(0xFFFFFFFF);
    CHECK_EQ(persistent_free_check(s, hv), 0);
    h->n_blocks = nb;
    persistent_free(s, hv);
    CHECK_EQ(persistent_free_check(s, hv), PERSISTENT_E_DOUBLE_FREE);

    /* a read-only open beside the writer: nothing is freed there */
    struct persistent_options ro = {.flags = PERSISTENT_OPEN_READONLY};
    allocator_space_t *v = NULL;
    REQUIRE(persistent_space_open(s_path, &ro, &v) == 0);
    char *in_view = (char *)v + ((char *)held - (char *)s);
    CHECK_EQ(persistent_free_check(v, in_view), -EROFS);
    persistent_space_close(v);
    persistent_free(s, held);
    persistent_free(s, fresh);
    CHECK_EQ(mis.count, 0);
}

int main(void)
{
    /* before any space was opened or closed: the thread's cache is empty
     * and the close epoch has never moved */
    persistent_error_hook_set(t_misuse_hook, &mis);
    errno = 0;
    CHECK(persistent_malloc(NULL, 8) == NULL);
    CHECK_EQ(errno, EINVAL);
    int local;
    persistent_free(NULL, &local);
    expect_misuse(PERSISTENT_E_BAD_POINTER, &local, "free with a NULL space, nothing open");

    const char *p = t_path("alloc");
    snprintf(s_path, sizeof s_path, "%s", p);
    s = create_persistent_allocator(p, 64u << 20);
    REQUIRE(s != NULL);
    test_malloc();
    test_calloc();
    test_aligned();
    test_aligned_when_full();
    test_realloc();
    test_misuse();
    test_null_space();
    test_double_free_beside_remote_free();
    test_stats();
    test_set_aside_spare();
    test_spare_bound(0);
    test_spare_bound(256u << 20);
    test_spare_before_growth();
    test_spare_full_set();
    test_spare_after_abort();
    test_current_reused();
    test_calls_after_thread_exit();
    test_free_check();                  /* last: its transaction keeps a log */
    t_check_clean(s, "at the end");
    destroy_persistent_allocator(s);
    unlink(p);
    return t_done();
}

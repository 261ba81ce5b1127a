/* Multithreaded stress: usage `test_stress THREADS [OPS [tight]]`.
 *
 * Each thread keeps a set of live blocks of mixed sizes (1 B .. 4 MiB,
 * mostly small) and at random allocates, frees, reallocates (chains of
 * growth and shrinking), or hands a block to another thread through shared
 * slots, so many frees are cross-thread.  Every block carries a pattern
 * derived from its address and a generation, verified before every free
 * and after every realloc.  At the end everything is freed, the check must
 * pass and report no live byte.
 *
 * tight: a fixed 8 MiB space, which the threads' blocks overfill, so that
 * allocations fail all along: every failure scavenges (partial lists
 * sorted while others pop and list, other threads' superblocks revoked
 * while they allocate and free) and the patterns must still hold; a NULL
 * is expected there, not an error. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define SLOTS 512
#define HANDOFF 64

struct blk {
    char *p;
    size_t n;
    uint64_t gen;
};

static allocator_space_t *space;
static int n_threads;
static long ops_per_thread;
static _Atomic(struct blk *) handoff[HANDOFF];   /* descriptors in transit */
static _Atomic long verify_failures, null_allocs;

static size_t pick_size(uint64_t *seed)
{
    uint64_t r = t_rand(seed);
    unsigned pct = (unsigned)(r % 1000);
    unsigned bits;
    if (pct < 900)
        bits = 1 + (unsigned)((r >> 10) % 10);       /* 1 B .. 1 KiB */
    else if (pct < 995)
        bits = 10 + (unsigned)((r >> 10) % 7);       /* 1 KiB .. 64 KiB */
    else
        bits = 16 + (unsigned)((r >> 10) % 7);       /* 64 KiB .. 4 MiB */
    uint64_t lo = (uint64_t)1 << (bits - 1), hi = (uint64_t)1 << bits;
    return (size_t)(lo + (r >> 20) % (hi - lo + 1));
}

static void verify_free(struct blk *b)
{
    if (!t_verify(b->p, b->n, b->gen))
        verify_failures++;
    persistent_free(space, b->p);
    b->p = NULL;
}

static bool fresh(struct blk *b, size_t n, uint64_t gen, uint64_t *seed)
{
    unsigned kind = (unsigned)(t_rand(seed) % 20);
    if (kind == 0)
        b->p = persistent_calloc(space, 1, n);
    else if (kind == 1)
        b->p = persistent_aligned_alloc(space, (size_t)64 << (t_rand(seed) % 8), n);
    else
        b->p = persistent_malloc(space, n);
    if (b->p == NULL) {
        null_allocs++;
        return false;
    }
    if (kind == 0)
        for (size_t i = 0; i < n; i++)
            if (b->p[i] != 0) {
                verify_failures++;
                break;
            }
    b->n = n;
    b->gen = gen;
    t_fill(b->p, n, gen);
    return true;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t seed = 0x5eed0000u + (uint64_t)id * 7919;
    struct blk *live = calloc(SLOTS, sizeof *live);
    uint64_t gen = (uint64_t)id << 40;
    for (long op = 0; op < ops_per_thread; op++) {
        struct blk *b = &live[t_rand(&seed) % SLOTS];
        unsigned what = (unsigned)(t_rand(&seed) % 16);
        if (b->p == NULL) {
            fresh(b, pick_size(&seed), ++gen, &seed);
        } else if (what < 6) {
            verify_free(b);
        } else if (what < 10) {
            /* realloc chain: grow or shrink, the kept prefix must survive */
            size_t n = (what & 1) ? b->n * 2 + 1 : (b->n > 2 ? b->n / 2 : 1);
            if (n > (4u << 20))
                n = 1;
            char *old = b->p;
            if (!persistent_realloc(space, b->p, n)) {
                null_allocs++;
                continue;
            }
            size_t keep = n < b->n ? n : b->n;
            if (!t_verify_as(b->p, keep, old, b->gen))
                verify_failures++;
            b->n = n;
            b->gen = ++gen;
            t_fill(b->p, n, b->gen);
        } else {
            /* hand it over; whatever was in the slot is ours to free */
            struct blk *d = malloc(sizeof *d);
            *d = *b;
            b->p = NULL;
            struct blk *got = atomic_exchange(&handoff[t_rand(&seed) % HANDOFF], d);
            if (got) {
                verify_free(got);
                free(got);
            }
        }
    }
    for (int i = 0; i < SLOTS; i++)
        if (live[i].p)
            verify_free(&live[i]);
    free(live);
    return NULL;
}

int main(int argc, char **argv)
{
    n_threads = argc > 1 ? atoi(argv[1]) : 4;
    ops_per_thread = argc > 2 ? atol(argv[2]) : 200000 / n_threads + 20000;
    const char *scale = getenv("PM_STRESS_SCALE");   /* sanitizer builds */
    if (scale)
        ops_per_thread = (long)(ops_per_thread * atof(scale));
    bool tight = argc > 3 && strcmp(argv[3], "tight") == 0;
    const char *p = t_path("stress");
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 64u << 20;
    o.max_size = 2048u << 20;        /* growth under load too */
    if (tight)
        o.size = o.max_size = 8u << 20;
    REQUIRE(persistent_space_open(p, &o, &space) == 0);
    struct t_misuse mis = {0};
    persistent_error_hook_set(t_misuse_hook, &mis);

    uint64_t t0 = t_now_ns();
    pthread_t *th = calloc((size_t)n_threads, sizeof *th);
    for (int i = 0; i < n_threads; i++)
        pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    for (int i = 0; i < n_threads; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < HANDOFF; i++) {
        struct blk *d = atomic_exchange(&handoff[i], NULL);
        if (d) {
            verify_free(d);
            free(d);
        }
    }
    printf("%d threads, %ld ops each, %.2f s, %ld NULLs\n", n_threads, ops_per_thread,
           (double)(t_now_ns() - t0) / 1e9, (long)null_allocs);
    CHECK_EQ(verify_failures, 0);
    if (tight)
        CHECK(null_allocs > 0);      /* it was full */
    else
        CHECK_EQ(null_allocs, 0);
    CHECK_EQ(mis.count, 0);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(space, &rep), 0);
    CHECK_EQ(rep.live_blocks, 0);
    CHECK_EQ(rep.live_bytes, 0);
    if (rep.n_errors)
        fprintf(stderr, "check: %s\n", rep.first_error);
    destroy_persistent_allocator(space);

    /* and once more after a reopen: nothing live, everything reusable */
    space = create_persistent_allocator(p, 0);
    REQUIRE(space != NULL);
    CHECK_EQ(persistent_check(space, &rep), 0);
    CHECK_EQ(rep.live_blocks, 0);
    destroy_persistent_allocator(space);
    unlink(p);
    free(th);
    return t_done();
}

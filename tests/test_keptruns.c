/* The page runs a thread keeps after freeing them (pages.c), under
 * contention: usage `test_keptruns [THREADS [OPS]]`.
 *
 * THREADS threads (four by default: more than this machine's cores)
 * allocate, grow in place, hand to each other and free page runs in a
 * space small enough to be full most of the time.  So threads take runs
 * they kept while others, about to report exhaustion, give every kept run
 * back (pg_cache_reclaim), frees by other threads fill a thread's slots
 * with runs it never had, and realloc grows blocks into kept runs.  Every
 * block carries a pattern, checked before it is freed and after every
 * realloc: a run handed out twice, or grown into while another block held
 * it, breaks one of them.  At the end everything is freed, the check must
 * pass with nothing live, and one thread gets the space back in long runs:
 * no page stays kept or lost. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

#define SPACE (8u << 20)
#define LIVE 24
#define HANDOFF 32

struct blk {
    unsigned char *p;
    size_t n;
    uint64_t gen;
};

static allocator_space_t *space;
static long ops_per_thread;
static _Atomic(struct blk *) handoff[HANDOFF];
static _Atomic long verify_failures, enomem, allocated, grown_in_place;

/* the space's largest class and longest kept run, in bytes */
static size_t max_small, run_max;

static size_t pick_size(uint64_t *seed)
{
    uint64_t r = t_rand(seed);
    unsigned pct = (unsigned)(r % 100);
    if (pct < 88)                       /* page runs short enough to be kept */
        return max_small + 1 + (size_t)((r >> 8) % (run_max - max_small));
    if (pct < 96)                       /* up to four times longer: never kept */
        return run_max + 1 + (size_t)((r >> 8) % (3 * run_max));
    return 16 + (size_t)((r >> 8) % 2000);      /* small, for the pages */
}

static void verify_free(struct blk *b)
{
    if (!t_verify(b->p, b->n, b->gen))
        verify_failures++;
    persistent_free(space, b->p);
    b->p = NULL;
}

static bool fresh(struct blk *b, size_t n, uint64_t gen)
{
    b->p = persistent_malloc(space, n);
    if (b->p == NULL) {
        CHECK_EQ(errno, ENOMEM);
        enomem++;
        return false;
    }
    allocated++;
    b->n = n;
    b->gen = gen;
    t_fill(b->p, n, gen);
    return true;
}

static void *worker(void *arg)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(uintptr_t)arg + 1;
    struct blk live[LIVE] = {{0}};
    uint64_t gen = (uint64_t)(uintptr_t)arg << 40;
    for (long op = 0; op < ops_per_thread; op++) {
        uint64_t r = t_rand(&seed);
        struct blk *b = &live[r % LIVE];
        unsigned what = (unsigned)((r >> 8) % 10);
        if (b->p != NULL && what == 0 && b->n > max_small) {
            /* grow by half: in place when the pages after it are free or
             * kept by this thread, else moved; the old bytes kept */
            size_t n = b->n + b->n / 2;
            unsigned char *old = b->p, *q = old;
            if (!persistent_realloc(space, q, n)) {
                CHECK_EQ(errno, ENOMEM);
                enomem++;
                verify_free(b);
                continue;
            }
            if (!t_verify_as(q, b->n, old, b->gen))
                verify_failures++;
            grown_in_place += q == old;
            b->p = q;
            b->n = n;
            b->gen = ++gen;
            t_fill(q, n, b->gen);
            continue;
        }
        if (b->p != NULL) {
            if (what < 4) {
                /* to another thread, which frees it into its own slots */
                struct blk *d = malloc(sizeof *d);
                REQUIRE(d != NULL);
                *d = *b;
                b->p = NULL;
                d = atomic_exchange(&handoff[(r >> 16) % HANDOFF], d);
                if (d != NULL) {
                    verify_free(d);
                    free(d);
                }
            } else {
                verify_free(b);
            }
        }
        if (!fresh(b, pick_size(&seed), ++gen)) {
            /* full: make room from what this thread holds */
            for (int i = 0; i < LIVE; i++)
                if (live[i].p != NULL && t_rand(&seed) % 2)
                    verify_free(&live[i]);
        }
    }
    for (int i = 0; i < LIVE; i++)
        if (live[i].p != NULL)
            verify_free(&live[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    ops_per_thread = argc > 2 ? atol(argv[2]) : 30000;
    const char *scale = getenv("PM_STRESS_SCALE");   /* sanitizer builds */
    if (scale != NULL && argc <= 2)
        ops_per_thread = (long)((double)ops_per_thread * atof(scale));
    REQUIRE(threads > 0 && threads <= 64 && ops_per_thread > 0);
    const char *path = t_path("keptruns");
    space = create_persistent_allocator(path, SPACE);
    REQUIRE(space != NULL);
    {
        struct pm_rt *rt = pm_rt_of(space);
        max_small = rt->max_small;
        run_max = (size_t)rt->run_max << rt->page_shift;
        REQUIRE(run_max > max_small);
        printf("classes up to %zu bytes, runs up to %zu kept\n", max_small, run_max);
    }
    pthread_t th[64];
    uint64_t t0 = t_now_ns();
    for (int i = 0; i < threads; i++)
        REQUIRE(pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < HANDOFF; i++) {
        struct blk *d = atomic_exchange(&handoff[i], NULL);
        if (d != NULL) {
            verify_free(d);
            free(d);
        }
    }
    printf("%d threads x %ld ops: %ld blocks, %ld ENOMEM, %ld grown in place, %.2f s\n",
           threads, ops_per_thread, (long)allocated, (long)enomem, (long)grown_in_place,
           (double)(t_now_ns() - t0) / 1e9);
    CHECK_EQ(verify_failures, 0);
    CHECK(grown_in_place > 0);
    /* nothing claimed but the runs the file has (superblocks left listed),
     * once every kept run is given back: no page claimed and lost */
    struct pm_rt *rt = pm_rt_of(space);
    REQUIRE(rt != NULL);
    (void)pg_cache_reclaim(rt);
    uint64_t n_pages = pm_load_acquire(&rt->n_pages), wrong = 0, in_run = 0;
    unsigned char *run = calloc(n_pages, 1);
    REQUIRE(run != NULL);
    for (uint64_t pg = 0; (pg = pg_next_set(rt->start_bits, pg, n_pages)) != PG_NONE;) {
        uint64_t last = pg_next_set(rt->end_bits, pg, n_pages);
        REQUIRE(last != PG_NONE);
        for (; pg <= last; pg++)
            run[pg] = 1;
    }
    for (uint64_t pg = 0; pg < n_pages; pg++) {
        in_run += run[pg];
        wrong += run[pg] != pg_bit(rt->used, pg);
    }
    free(run);
    printf("pages claimed but in no run, or in a run but not claimed: %llu (%llu in runs)\n",
           (unsigned long long)wrong, (unsigned long long)in_run);
    CHECK_EQ(wrong, 0);
    /* the space was full often, and served all the same */
    CHECK(enomem > 0);
    CHECK(allocated > enomem * 4);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(space, &rep), 0);
    CHECK_EQ(rep.n_errors, 0);
    CHECK_EQ(rep.live_blocks, 0);
    /* every page back, in runs longer than any kept one */
    uint64_t got = 0;
    void *held[64];
    int n = 0;
    while (n < 64 && (held[n] = persistent_malloc(space, 256u << 10)) != NULL)
        got += persistent_usable_size(space, held[n++]);
    printf("then %d blocks of 256 KiB: %.1f%% of the space\n", n, 100.0 * (double)got / SPACE);
    CHECK(got >= SPACE / 100 * 85);
    for (int i = 0; i < n; i++)
        persistent_free(space, held[i]);
    t_check_clean(space, "at the end");
    destroy_persistent_allocator(space);
    unlink(path);
    return t_done();
}

/* The page allocator under contention: threads claim and release random
 * runs (some aligned, some extended in place); a shadow owner array proves
 * no page is ever held twice; in the end everything is free again. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

#define PAGES 4096

static struct pm_rt rt;
static _Atomic int owner[PAGES];
static _Atomic long overlaps, fails;

struct run {
    uint64_t first, n;
};

static void take(int id, struct run r)
{
    for (uint64_t p = r.first; p < r.first + r.n; p++) {
        int z = 0;
        if (!atomic_compare_exchange_strong(&owner[p], &z, id))
            overlaps++;
    }
}

static void give(int id, struct run r)
{
    for (uint64_t p = r.first; p < r.first + r.n; p++) {
        int me = id;
        if (!atomic_compare_exchange_strong(&owner[p], &me, 0))
            overlaps++;
    }
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t seed = 99 + (uint64_t)id;
    struct run held[32] = {{0, 0}};
    for (int op = 0; op < 20000; op++) {
        struct run *r = &held[t_rand(&seed) % 32];
        if (r->n) {
            if (t_rand(&seed) % 4 == 0 && pg_claim_at(&rt, r->first + r->n, 3)) {
                take(id, (struct run){r->first + r->n, 3});    /* grow in place */
                r->n += 3;
            }
            give(id, *r);
            pg_release(&rt, r->first, r->n);
            r->n = 0;
            continue;
        }
        uint64_t n = 1 + t_rand(&seed) % 24;
        uint64_t align = t_rand(&seed) % 3 == 0 ? 16 : 1;
        uint64_t f = pg_alloc(&rt, n, align);
        if (f == PG_NONE) {
            fails++;
            continue;
        }
        if ((f + (rt.data_off >> rt.page_shift)) % align != 0)
            overlaps++;
        *r = (struct run){f, n};
        take(id, *r);
    }
    for (int i = 0; i < 32; i++)
        if (held[i].n) {
            give(id, held[i]);
            pg_release(&rt, held[i].first, held[i].n);
        }
    return NULL;
}

/* First fit against the obvious search, on random bitmaps: runs inside a
 * word, across words and longer than a word. */
static void test_first_fit(void)
{
    uint64_t seed = 4242;
    for (int round = 0; round < 2000; round++) {
        unsigned density = (unsigned)(t_rand(&seed) % 100);
        for (uint64_t w = 0; w < PAGES / 64; w++) {
            uint64_t x = 0;
            for (int b = 0; b < 64; b++)
                if (t_rand(&seed) % 100 < density)
                    x |= UINT64_C(1) << b;
            atomic_store(&rt.used[w], x);
        }
        for (unsigned h = 0; h < PM_PAGE_HINTS; h++)
            atomic_store(&rt.hints[h], 0);
        uint64_t n = 1 + t_rand(&seed) % (round % 4 == 0 ? 150 : 20);
        uint64_t want = PG_NONE, run = 0;
        for (uint64_t p = 0; p < PAGES; p++) {
            run = (atomic_load(&rt.used[p / 64]) >> (p % 64)) & 1 ? 0 : run + 1;
            if (run == n) {
                want = p + 1 - n;
                break;
            }
        }
        uint64_t got = pg_alloc(&rt, n, 1);
        if (got != want) {
            fprintf(stderr, "density %u n %llu: got %lld want %lld\n", density,
                    (unsigned long long)n, (long long)got, (long long)want);
            t_failures++;
        }
    }
    memset((void *)rt.used, 0, PAGES / 8);
    pg_init(&rt);
}

/* A request longer than 16 pages starts from its length bucket's hint
 * (17-31, 32-63, ... 512 up): one that skips the shorter holes below it,
 * and that a free of a run as long as the bucket's shortest request
 * lowers again.  For lengths L in every bucket: two runs of L pages with
 * a page between them, the first freed; a request of L pages (L - 1 where
 * that is in the same bucket) must take the freed one, not a page above
 * the second. */
static void test_bucket_hints(void)
{
    static const uint64_t lens[] = {17, 20, 32, 40, 64, 100, 128, 200, 256, 300, 512, 600};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        uint64_t L = lens[k];
        uint64_t a = pg_alloc(&rt, L, 1), gap = pg_alloc(&rt, 1, 1), b = pg_alloc(&rt, L, 1);
        CHECK_EQ(a, 0);
        CHECK_EQ(gap, L);
        CHECK_EQ(b, L + 1);
        pg_release(&rt, a, L);
        /* a bucket's shortest length itself (else the request would be
         * one of the bucket below, whose hint these runs never raised) */
        uint64_t want = L == 17 || (L & (L - 1)) == 0 ? L : L - 1;
        uint64_t c = pg_alloc(&rt, want, 1);
        if (c != 0) {
            fprintf(stderr, "bucket of %llu pages: a request of %llu got %lld, not the "
                            "freed run at 0\n",
                    (unsigned long long)L, (unsigned long long)want, (long long)c);
            t_failures++;
        }
        pg_release(&rt, c, want);
        pg_release(&rt, gap, 1);
        pg_release(&rt, b, L);
    }
    for (uint64_t w = 0; w < PAGES / 64; w++)
        CHECK_EQ(atomic_load(&rt.used[w]), 0);
    pg_init(&rt);
}

int main(void)
{
    rt.page_shift = 12;
    rt.page_size = 4096;
    rt.data_off = 3 * 4096;                 /* alignment is absolute */
    rt.max_pages = PAGES;
    atomic_store(&rt.n_pages, PAGES);
    rt.used = calloc(PAGES / 64, sizeof *rt.used);
    pg_init(&rt);

    /* sequential basics */
    uint64_t a = pg_alloc(&rt, 10, 1);
    CHECK_EQ(a, 0);
    CHECK(!pg_claim_at(&rt, 5, 2));
    CHECK(pg_claim_at(&rt, 10, 5));
    uint64_t b = pg_alloc(&rt, 1, 8);
    CHECK_EQ((b + 3) % 8, 0);
    pg_release(&rt, 0, 15);
    pg_release(&rt, b, 1);
    CHECK_EQ(pg_alloc(&rt, PAGES, 1), 0);
    CHECK_EQ(pg_alloc(&rt, 1, 1), PG_NONE);
    pg_release(&rt, 0, PAGES);
    test_first_fit();
    test_bucket_hints();

    enum { T = 8 };
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        pthread_create(&th[i], NULL, worker, (void *)(intptr_t)(i + 1));
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(overlaps, 0);
    CHECK_EQ(fails, 0);
    for (uint64_t w = 0; w < PAGES / 64; w++)
        CHECK_EQ(atomic_load(&rt.used[w]), 0);
    /* the hint never hides free pages: the whole range is one run again */
    CHECK_EQ(pg_alloc(&rt, PAGES, 1), 0);
    free((void *)rt.used);
    return t_done();
}

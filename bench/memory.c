/* pmbench memory efficiency: peak footprint / peak live bytes.
 *
 * frag (the aim applies here): the mixed workload's sizes, log-uniform
 * 16 B..64 KiB with 1% log-uniform 64 KiB..1 MiB.  Each thread fills its
 * share of the target, then, four times as often as it holds blocks, frees
 * a random block and allocates until its share is reached again.  Random
 * replacement of mixed sizes fragments any heap that cannot move blocks;
 * a perfect allocator would stay at 1.0.
 *
 * frag-shift (harsher, for comparison): the size distribution shifts
 * under a constant live target, so pages held by a few survivors cannot
 * serve the new sizes.  Each thread, on its share of the target:
 *   A  fill with small blocks (log-uniform 16 B..1 KiB)
 *   B  free a random 3/4 of them, leaving survivors on every page
 *   C  fill up again with bigger blocks (log-uniform 1 KiB..64 KiB, 1% up
 *      to 1 MiB), which the small holes do not fit
 *   D  as many times as there are blocks: free a random block, allocate
 *      from the whole range until the share is reached again
 *   E  free a random half, fill up with small blocks
 * Without moving blocks, B and C alone force about 1.7x on any allocator.
 *
 * Every block is written in full, so a volatile allocator's resident set
 * holds it.  Live bytes are the sizes asked for.  Footprint: the physical
 * size of the file (st_blocks) where the file grows with the heap
 * (persistent_mem on a growable space, Boost's sparse file), sampled every
 * FR_SAMPLE operations and at the end of each phase; otherwise the peak
 * resident set (VmHWM) minus the resident set before the fill (volatile
 * allocators, and PMDK, whose pool file is allocated in full at creation
 * and whose mapping is resident only where it was touched). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define FR_SAMPLE 2048

struct fslot {
    void *p;
    uint64_t n;
};

struct fthread {
    int tid;
    uint64_t target;
    struct fslot *s;
    size_t cap, n;
    bool shift;
    uint64_t rng;
    uint64_t ops;
};

static atomic_uint_least64_t live, live_peak, file_peak;

static void sample_file(void)
{
    if (!B->file_footprint)
        return;
    uint64_t f = B->file_bytes();
    uint64_t old = atomic_load(&file_peak);
    while (f > old && !atomic_compare_exchange_weak(&file_peak, &old, f))
        ;
}

static void count(struct fthread *t)
{
    if (++t->ops % FR_SAMPLE == 0)
        sample_file();
}

static void put(struct fthread *t, size_t n)
{
    void *p = B->alloc(n);
    if (p == NULL) {
        fprintf(stderr, "frag: %s returned NULL for %zu bytes at %llu live\n",
                B->name, n, (unsigned long long)atomic_load(&live));
        fflush(stderr);
        _exit(3);
    }
    memset(p, (int)(n & 0xff), n);
    t->s[t->n].p = p;
    t->s[t->n].n = n;
    t->n++;
    uint64_t l = atomic_fetch_add(&live, n) + n;
    uint64_t old = atomic_load(&live_peak);
    while (l > old && !atomic_compare_exchange_weak(&live_peak, &old, l))
        ;
    count(t);
}

static void drop(struct fthread *t, size_t i)
{
    B->free(t->s[i].p);
    atomic_fetch_sub(&live, t->s[i].n);
    t->s[i] = t->s[--t->n];
    count(t);
}

static void fill(struct fthread *t, const struct size_tab *tab, uint64_t *mine)
{
    while (*mine < t->target && t->n < t->cap) {
        size_t n = size_draw(tab, rng_next(&t->rng) >> 20);
        put(t, n);
        *mine += n;
    }
}

static void free_fraction(struct fthread *t, uint64_t *mine, unsigned keep_of_4)
{
    for (size_t i = 0; i < t->n;) {
        if (rng_next(&t->rng) % 4 >= keep_of_4) {
            *mine -= t->s[i].n;
            drop(t, i);             /* moves the last slot into i */
        } else {
            i++;
        }
    }
}

/* free random blocks, each followed by allocations up to the target */
static void churn(struct fthread *t, const struct size_tab *tab, uint64_t *mine,
                  size_t rounds)
{
    for (size_t k = 0; k < rounds && t->n > 0; k++) {
        size_t i = (size_t)(rng_next(&t->rng) % t->n);
        *mine -= t->s[i].n;
        drop(t, i);
        fill(t, tab, mine);
    }
}

static bool diag_on;

static void diag(const char *phase)
{
    if (diag_on && B->diag)
        B->diag(phase, atomic_load(&live));
}

static void *frag_thread(void *arg)
{
    struct fthread *t = arg;
    struct size_tab *small = malloc(sizeof *small);
    struct size_tab *big = malloc(sizeof *big);
    struct size_tab *all = malloc(sizeof *all);
    if (!small || !big || !all)
        abort();
    size_tab_loguniform(small, t->rng, 16, 1024);
    size_tab_mixed(big, t->rng + 1, 1024, 65536, 0.01, 1 << 20);
    size_tab_mixed(all, t->rng + 2, 16, 65536, 0.01, 1 << 20);
    uint64_t mine = 0;

    if (!t->shift) {
        fill(t, all, &mine);
        sample_file();
        diag("fill");
        churn(t, all, &mine, 4 * t->n);
        sample_file();
        diag("churn");
    } else {
        fill(t, small, &mine);                      /* A */
        sample_file();
        diag("A");
        free_fraction(t, &mine, 1);                 /* B */
        sample_file();
        diag("B");
        fill(t, big, &mine);                        /* C */
        sample_file();
        diag("C");
        churn(t, all, &mine, t->n);                 /* D */
        sample_file();
        diag("D");
        free_fraction(t, &mine, 2);                 /* E */
        fill(t, small, &mine);
        sample_file();
        diag("E");
    }

    while (t->n > 0)
        drop(t, t->n - 1);
    free(small);
    free(big);
    free(all);
    return NULL;
}

int frag_run(int threads, uint64_t live_target, bool shift)
{
    if (threads < 1 || threads > 64)
        return -1;
    struct fthread ft[64];
    pthread_t th[64];
    for (int i = 0; i < threads; i++) {
        ft[i].tid = i;
        ft[i].target = live_target / (uint64_t)threads;
        /* small blocks average about 240 B; a quarter of that bounds the
         * count with room to spare */
        ft[i].cap = (size_t)(ft[i].target / 60) + 1024;
        ft[i].s = malloc(ft[i].cap * sizeof *ft[i].s);
        if (ft[i].s == NULL)
            return -1;
        memset(ft[i].s, 0, ft[i].cap * sizeof *ft[i].s);   /* resident now */
        ft[i].n = 0;
        ft[i].shift = shift;
        ft[i].rng = rng_seed(6, (uint64_t)i);
        ft[i].ops = 0;
    }
    diag_on = threads == 1;   /* a heap walk is exact only when nobody allocates */
    atomic_store(&live, 0);
    atomic_store(&live_peak, 0);
    atomic_store(&file_peak, 0);
    sample_file();
    uint64_t file_start = atomic_load(&file_peak);
    uint64_t rss_base = rss_now();
    rss_peak_reset();

    double t0 = now_sec();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, frag_thread, &ft[i]);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double t1 = now_sec();

    uint64_t hwm = rss_peak();
    uint64_t rss_delta = hwm > rss_base ? hwm - rss_base : 0;
    uint64_t fpk = atomic_load(&file_peak);
    uint64_t lpk = atomic_load(&live_peak);
    uint64_t ops = 0;
    for (int i = 0; i < threads; i++) {
        ops += ft[i].ops;
        free(ft[i].s);
    }
    uint64_t footprint = B->file_footprint ? fpk : rss_delta;
    printf("RESULT workload=%s threads=%d live_peak=%llu file_start=%llu "
           "file_peak=%llu rss_peak=%llu footprint=%llu source=%s ratio=%.4f "
           "ops=%llu secs=%.4f\n",
           shift ? "frag-shift" : "frag", threads, (unsigned long long)lpk, (unsigned long long)file_start,
           (unsigned long long)fpk, (unsigned long long)rss_delta,
           (unsigned long long)footprint, B->file_footprint ? "file" : "rss",
           lpk ? (double)footprint / (double)lpk : 0.0, (unsigned long long)ops,
           t1 - t0);
    return 0;
}

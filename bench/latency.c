/* pmbench latency: percentiles of single malloc and free calls.  Each
 * thread replaces random slots of a 4096-slot array with blocks of
 * 16..1024 B and times the free and the malloc of every replacement
 * separately.  On x86-64 the clock is the TSC read between LFENCEs,
 * calibrated against CLOCK_MONOTONIC; the cost of reading it (reported as
 * timer_ns) is included in every sample, the same for every backend. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_TSC 1
#else
#define HAVE_TSC 0
#endif

#include "bench.h"

#define LT_SLOTS 4096

static inline uint64_t tick(void)
{
#if HAVE_TSC
    _mm_lfence();               /* earlier instructions have finished */
    uint64_t t = __rdtsc();
    _mm_lfence();               /* later ones have not started */
    return t;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

static double ticks_per_ns(void)
{
#if HAVE_TSC
    double t0 = now_sec();
    uint64_t c0 = tick();
    sleep_sec(0.1);
    double t1 = now_sec();
    uint64_t c1 = tick();
    return (double)(c1 - c0) / ((t1 - t0) * 1e9);
#else
    return 1.0;
#endif
}

struct lthread {
    pthread_barrier_t *bar;
    uint64_t samples;
    uint32_t *t_malloc, *t_free;
    int tid;
};

static uint32_t clamp32(uint64_t x)
{
    return x > UINT32_MAX ? UINT32_MAX : (uint32_t)x;
}

static void *lat_thread(void *arg)
{
    struct lthread *t = arg;
    uint64_t s = rng_seed(7, (uint64_t)t->tid);
    void **a = malloc(LT_SLOTS * sizeof *a);
    if (a == NULL)
        abort();
    for (int i = 0; i < LT_SLOTS; i++) {
        a[i] = B->alloc(16 + rng_next(&s) % 1009);
        if (a[i] == NULL)
            abort();
    }
    pthread_barrier_wait(t->bar);
    for (uint64_t k = 0; k < t->samples; k++) {
        uint64_t x = rng_next(&s);
        size_t i = (size_t)(x % LT_SLOTS);
        size_t n = 16 + (size_t)((x >> 32) % 1009);
        uint64_t c0 = tick();
        B->free(a[i]);
        uint64_t c1 = tick();
        void *p = B->alloc(n);
        uint64_t c2 = tick();
        if (p == NULL) {
            fprintf(stderr, "latency: %s returned NULL\n", B->name);
            _exit(3);
        }
        *(volatile char *)p = 1;
        a[i] = p;
        t->t_free[k] = clamp32(c1 - c0);
        t->t_malloc[k] = clamp32(c2 - c1);
    }
    for (int i = 0; i < LT_SLOTS; i++)
        B->free(a[i]);
    free(a);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, size_t n, double p, double tpn)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / tpn;
}

int latency_run(int threads, uint64_t samples)
{
    if (threads < 1 || threads > 64 || samples == 0)
        return -1;
    double tpn = ticks_per_ns();
    /* the cost of one clock reading pair, as a median */
    uint32_t ov[4001];
    for (int i = 0; i < 4001; i++) {
        uint64_t a = tick();
        uint64_t b = tick();
        ov[i] = clamp32(b - a);
    }
    qsort(ov, 4001, sizeof ov[0], cmp_u32);

    size_t total = (size_t)samples * (size_t)threads;
    uint32_t *tm = malloc(total * sizeof *tm);
    uint32_t *tf = malloc(total * sizeof *tf);
    if (tm == NULL || tf == NULL)
        return -1;
    memset(tm, 0, total * sizeof *tm);
    memset(tf, 0, total * sizeof *tf);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    struct lthread lt[64];
    pthread_t th[64];
    for (int i = 0; i < threads; i++) {
        lt[i].bar = &bar;
        lt[i].samples = samples;
        lt[i].t_malloc = tm + (size_t)i * samples;
        lt[i].t_free = tf + (size_t)i * samples;
        lt[i].tid = i;
        pthread_create(&th[i], NULL, lat_thread, &lt[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    qsort(tm, total, sizeof *tm, cmp_u32);
    qsort(tf, total, sizeof *tf, cmp_u32);
    printf("RESULT workload=latency threads=%d samples=%zu timer_ns=%.1f "
           "malloc_p50=%.1f malloc_p99=%.1f malloc_p999=%.1f malloc_max=%.1f "
           "free_p50=%.1f free_p99=%.1f free_p999=%.1f free_max=%.1f\n",
           threads, total, (double)ov[2000] / tpn, pct(tm, total, 0.5, tpn),
           pct(tm, total, 0.99, tpn), pct(tm, total, 0.999, tpn),
           (double)tm[total - 1] / tpn, pct(tf, total, 0.5, tpn),
           pct(tf, total, 0.99, tpn), pct(tf, total, 0.999, tpn),
           (double)tf[total - 1] / tpn);
    free(tm);
    free(tf);
    return 0;
}

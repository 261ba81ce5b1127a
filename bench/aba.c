/* aba: what guarding a lock-free stack against ABA costs, three ways, in
 * one run: the design card allows tagged 64-bit words or libatomic_ops'
 * double-width CAS, and the library uses C11 atomics on tagged words
 * (src/atomic.h).  Each thread pops a node off a shared Treiber stack and
 * pushes it back, as fast as it can; medians of 5 runs of 0.3 s, the three
 * alternating, at 1, 2 and 4 threads:
 *   c11-tagged   one 64-bit word, index | counter << 32, C11
 *                atomic_compare_exchange_weak (what the library does)
 *   ao-tagged    the same word with libatomic_ops' AO_compare_and_swap_full
 *   ao-double    pointer + counter in a double word, libatomic_ops'
 *                AO_compare_double_and_swap_double_full (CMPXCHG16B)
 * Prints million pop+push pairs per second and the ratios to c11-tagged.
 * Built only where libatomic_ops is installed (meson looks for it). */
#define _GNU_SOURCE
#include <atomic_ops.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NODES 1024
#define MAXT 4

struct node {
    uint32_t next;                      /* index + 1, 0 = none */
    struct node *pnext;
};
static struct node nodes[NODES];

static _Atomic uint64_t c11_head;       /* index + 1 | counter << 32 */
static volatile AO_t ao_head;
static volatile AO_double_t ao_dhead;   /* AO_val1 pointer, AO_val2 counter */

static atomic_int stop;
static int mode;
static pthread_barrier_t bar;

/* The three follow the same steps (a fresh load before each try), so that
 * only the primitive differs. */
static uint64_t c11_pop_push(void)
{
    uint64_t h, n;
    uint32_t i;
    do {
        h = atomic_load_explicit(&c11_head, memory_order_acquire);
        i = (uint32_t)h;
        if (i == 0)
            return 0;
        n = (uint64_t)nodes[i - 1].next | ((h >> 32) + 1) << 32;
    } while (!atomic_compare_exchange_strong_explicit(&c11_head, &h, n, memory_order_acq_rel,
                                                      memory_order_acquire));
    do {
        h = atomic_load_explicit(&c11_head, memory_order_relaxed);
        nodes[i - 1].next = (uint32_t)h;
        n = (uint64_t)i | ((h >> 32) + 1) << 32;
    } while (!atomic_compare_exchange_strong_explicit(&c11_head, &h, n, memory_order_acq_rel,
                                                      memory_order_relaxed));
    return 1;
}

static uint64_t ao_pop_push(void)
{
    AO_t h, n;
    uint32_t i;
    do {
        h = AO_load_acquire(&ao_head);
        i = (uint32_t)h;
        if (i == 0)
            return 0;
        n = (AO_t)nodes[i - 1].next | (((AO_t)h >> 32) + 1) << 32;
    } while (!AO_compare_and_swap_full(&ao_head, h, n));
    do {
        h = AO_load(&ao_head);
        nodes[i - 1].next = (uint32_t)h;
        n = (AO_t)i | (((AO_t)h >> 32) + 1) << 32;
    } while (!AO_compare_and_swap_full(&ao_head, h, n));
    return 1;
}

static uint64_t aod_pop_push(void)
{
    AO_t p, c;
    struct node *nd;
    do {
        p = ao_dhead.AO_val1;
        c = ao_dhead.AO_val2;
        nd = (struct node *)p;
        if (nd == NULL)
            return 0;
    } while (!AO_compare_double_and_swap_double_full(&ao_dhead, p, c, (AO_t)nd->pnext, c + 1));
    do {
        p = ao_dhead.AO_val1;
        c = ao_dhead.AO_val2;
        nd->pnext = (struct node *)p;
    } while (!AO_compare_double_and_swap_double_full(&ao_dhead, p, c, (AO_t)nd, c + 1));
    return 1;
}

static void reset(void)
{
    for (uint32_t i = 0; i < NODES; i++) {
        nodes[i].next = i + 1 < NODES ? i + 2 : 0;
        nodes[i].pnext = i + 1 < NODES ? &nodes[i + 1] : NULL;
    }
    atomic_store(&c11_head, 1);
    AO_store(&ao_head, 1);
    ao_dhead.AO_val1 = (AO_t)&nodes[0];
    ao_dhead.AO_val2 = 0;
}

static void *worker(void *arg)
{
    uint64_t *ops = arg, n = 0;
    pthread_barrier_wait(&bar);
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        for (int k = 0; k < 256; k++)
            n += mode == 0 ? c11_pop_push() : mode == 1 ? ao_pop_push() : aod_pop_push();
    *ops = n;
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double run(int m, int threads)
{
    pthread_t t[MAXT];
    uint64_t ops[MAXT];
    mode = m;
    reset();
    atomic_store(&stop, 0);
    pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, &ops[i]);
    pthread_barrier_wait(&bar);
    double t0 = now();
    struct timespec d = {0, 300000000};
    nanosleep(&d, NULL);
    atomic_store(&stop, 1);
    uint64_t total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += ops[i];
    }
    double el = now() - t0;
    pthread_barrier_destroy(&bar);
    return (double)total / el / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    static const char *name[3] = {"c11-tagged", "ao-tagged", "ao-double"};
    printf("| threads | %s | %s | %s | ao-tagged / c11 | ao-double / c11 |\n|--:|--:|--:|--:|--:|--:|\n",
           name[0], name[1], name[2]);
    for (int threads = 1; threads <= MAXT; threads *= 2) {
        double r[3][5], med[3];
        for (int rep = 0; rep < 5; rep++)
            for (int m = 0; m < 3; m++)
                r[m][rep] = run(m, threads);
        for (int m = 0; m < 3; m++) {
            qsort(r[m], 5, sizeof r[m][0], cmp);
            med[m] = r[m][2];
        }
        printf("| %d | %.1f | %.1f | %.1f | %.2f | %.2f |\n", threads, med[0], med[1], med[2],
               med[1] / med[0], med[2] / med[0]);
    }
    printf("\nM pop+push pairs per second (medians of 5 runs of 0.3 s).\n");
    return 0;
}

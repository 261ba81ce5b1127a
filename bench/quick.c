/* quick: persistent_mem beside glibc malloc on two workloads, in one run.
 *
 *   threadtest  each thread allocates N objects of 8..128 bytes, then
 *               frees them all, in rounds (all frees are local)
 *   xthread     each thread replaces random slots of an array with blocks
 *               of 16..512 bytes; every round the arrays move on to the
 *               next thread, so most frees are cross-thread
 *
 * Prints Mops/s (one op = one malloc or one free), the median of 5 runs,
 * at 1, 2 and 4 threads, and the ratio persistent_mem / glibc.
 * This is the quick check of the allocator issue; run.py runs the full
 * comparison (see README.md). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <persistent_mem.h>

static allocator_space_t *space;
static int use_pm;
static pthread_barrier_t bar;

static inline void *xmalloc(size_t n)
{
    return use_pm ? persistent_malloc(space, n) : malloc(n);
}

static inline void xfree(void *p)
{
    if (use_pm)
        persistent_free(space, p);
    else
        free(p);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- threadtest ---- */

#define TT_N 20000
#define TT_ROUNDS 50

static void *threadtest(void *arg)
{
    uint64_t seed = 88172645463325252ull + (uint64_t)(uintptr_t)arg;
    void **p = malloc(TT_N * sizeof *p);
    pthread_barrier_wait(&bar);
    for (int r = 0; r < TT_ROUNDS; r++) {
        for (int i = 0; i < TT_N; i++) {
            p[i] = xmalloc(8 + rnd(&seed) % 121);
            *(char *)p[i] = 1;
        }
        for (int i = 0; i < TT_N; i++)
            xfree(p[i]);
    }
    free(p);
    return NULL;
}

/* ---- xthread ---- */

#define XT_SLOTS 4096
#define XT_ROUNDS 40
#define XT_OPS 20000

static void **arrays[64];
static int n_threads;

static void *xthread(void *arg)
{
    int id = (int)(uintptr_t)arg;
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)id;
    for (int r = 0; r < XT_ROUNDS; r++) {
        void **a = arrays[(id + r) % n_threads];   /* someone else's last round */
        for (int i = 0; i < XT_OPS; i++) {
            uint64_t x = rnd(&seed);
            size_t k = x % XT_SLOTS;
            if (a[k])
                xfree(a[k]);
            a[k] = xmalloc(16 + (x >> 20) % 497);
            *(char *)a[k] = 1;
        }
        pthread_barrier_wait(&bar);
    }
    return NULL;
}

static double run(int workload, int threads)
{
    n_threads = threads;
    pthread_barrier_init(&bar, NULL, (unsigned)threads + (workload == 0));
    pthread_t th[64];
    if (workload == 1)
        for (int i = 0; i < threads; i++)
            arrays[i] = calloc(XT_SLOTS, sizeof(void *));
    double t0 = now();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, workload == 0 ? threadtest : xthread,
                       (void *)(uintptr_t)i);
    if (workload == 0) {
        pthread_barrier_wait(&bar);
        t0 = now();
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double t = now() - t0;
    double ops;
    if (workload == 0) {
        ops = 2.0 * TT_N * TT_ROUNDS * threads;
    } else {
        ops = 2.0 * XT_OPS * XT_ROUNDS * threads;
        for (int i = 0; i < threads; i++) {
            for (int k = 0; k < XT_SLOTS; k++)
                if (arrays[i][k])
                    xfree(arrays[i][k]);
            free(arrays[i]);
        }
    }
    pthread_barrier_destroy(&bar);
    return ops / t / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    char path[256];
    snprintf(path, sizeof path, "%s/pm-quick-%d.space",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
    unlink(path);
    space = create_persistent_allocator(path, 1u << 30);
    if (!space) {
        fprintf(stderr, "%s\n", persistent_errormsg());
        return 1;
    }
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    static const char *names[] = {"threadtest", "xthread"};
    printf("%-11s %3s %14s %14s %8s\n", "workload", "thr", "glibc Mops/s",
           "pm Mops/s", "pm/glibc");
    for (int w = 0; w < 2; w++) {
        for (int t = 1; t <= 4; t *= 2) {
            double g[16], p[16];
            for (int i = 0; i < reps; i++) {   /* alternate the backends */
                use_pm = 0;
                g[i] = run(w, t);
                use_pm = 1;
                p[i] = run(w, t);
            }
            qsort(g, (size_t)reps, sizeof *g, cmp);
            qsort(p, (size_t)reps, sizeof *p, cmp);
            printf("%-11s %3d %14.1f %14.1f %8.2f\n", names[w], t, g[reps / 2],
                   p[reps / 2], p[reps / 2] / g[reps / 2]);
            fflush(stdout);
        }
    }
    destroy_persistent_allocator(space);
    unlink(path);
    return 0;
}

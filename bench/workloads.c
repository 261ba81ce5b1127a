/* pmbench throughput workloads.  Each runs for a fixed wall-clock time:
 * the main thread releases the workers, sleeps, raises a stop flag, and
 * stops the clock when every worker has finished the unit of work it was
 * in (a round, or a batch of 256 operations).  Setup (filling slot arrays)
 * and teardown (freeing what is left) are outside the timed span.  One
 * operation is one malloc, free or realloc call.
 *
 *   threadtest  each thread allocates TT_N objects of 8..128 B, then frees
 *               them all, in rounds; every free is local
 *   larson      each thread replaces random slots of a 5000-slot array with
 *               blocks of 8..1000 B; after every round of LA_ROUND
 *               replacements the arrays move on to the next thread, so the
 *               blocks freed were mostly allocated by another thread
 *   prodcons    pairs of threads: the producer allocates 16..512 B blocks
 *               and hands them over through a ring, the consumer frees
 *               them (every free is remote); one thread alone alternates
 *               the two roles on batches of PC_BATCH
 *   mixed       each thread replaces random slots of a 1000-slot array;
 *               sizes log-uniform 16 B..64 KiB, 1% log-uniform 64 KiB..1 MiB
 *   realloc     each thread keeps 256 strings; a step appends 8..256 bytes
 *               (realloc + writing them) until the string reaches its target
 *               length (log-uniform 256 B..64 KiB), then halves it step by
 *               step down to 16 B, frees it and starts a new one
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define MAX_THREADS 256

struct counter {
    _Alignas(64) uint64_t ops;
};

struct runner {
    int threads;
    atomic_int stop;
    pthread_barrier_t start, end;      /* workers + the main thread */
    pthread_barrier_t round;           /* workers only (larson) */
    atomic_int go;                     /* larson: another round? */
    struct counter count[MAX_THREADS];
    void (*body)(struct runner *r, int tid);
};

struct worker_arg {
    struct runner *r;
    int tid;
};

static void oom(const char *where, size_t n)
{
    fprintf(stderr, "%s: %s returned NULL for %zu bytes\n", where, B->name, n);
    fflush(stderr);
    _exit(3);
}

static inline bool stopped(struct runner *r)
{
    /* relaxed: a late look only makes one more batch */
    return atomic_load_explicit(&r->stop, memory_order_relaxed) != 0;
}

static void ready(struct runner *r)
{
    pthread_barrier_wait(&r->start);
}

static void done(struct runner *r, int tid, uint64_t ops)
{
    r->count[tid].ops = ops;
    pthread_barrier_wait(&r->end);
}

static inline void *xalloc(size_t n, const char *where)
{
    void *p = B->alloc(n);
    if (p == NULL)
        oom(where, n);
    *(volatile char *)p = (char)n;
    return p;
}

/* ---- threadtest ---- */

#define TT_N 20000

static void threadtest(struct runner *r, int tid)
{
    uint64_t s = rng_seed(1, (uint64_t)tid);
    void **p = malloc(TT_N * sizeof *p);
    if (p == NULL)
        oom("threadtest", 0);
    uint64_t ops = 0;
    ready(r);
    while (!stopped(r)) {
        for (int i = 0; i < TT_N; i++)
            p[i] = xalloc(8 + rng_next(&s) % 121, "threadtest");
        for (int i = 0; i < TT_N; i++)
            B->free(p[i]);
        ops += 2 * TT_N;
    }
    done(r, tid, ops);
    free(p);
}

/* ---- larson ---- */

#define LA_SLOTS 5000
#define LA_ROUND 10000

static void **la_arrays[MAX_THREADS];

static inline size_t la_size(uint64_t x)
{
    return 8 + (size_t)((x >> 32) % 993);
}

static void larson(struct runner *r, int tid)
{
    uint64_t s = rng_seed(2, (uint64_t)tid);
    void **mine = la_arrays[tid];
    for (int i = 0; i < LA_SLOTS; i++)
        mine[i] = xalloc(la_size(rng_next(&s)), "larson");
    uint64_t ops = 0;
    ready(r);
    for (int round = 0;; round++) {
        void **a = la_arrays[(tid + round) % r->threads];
        for (int k = 0; k < LA_ROUND; k++) {
            uint64_t x = rng_next(&s);
            size_t i = (size_t)(x % LA_SLOTS);
            B->free(a[i]);
            a[i] = xalloc(la_size(x), "larson");
        }
        ops += 2 * LA_ROUND;
        /* all threads agree on whether to go on: the serial thread of the
         * first barrier decides, the second publishes the decision */
        if (pthread_barrier_wait(&r->round) == PTHREAD_BARRIER_SERIAL_THREAD)
            atomic_store(&r->go, !stopped(r));
        pthread_barrier_wait(&r->round);
        if (!atomic_load(&r->go))
            break;
    }
    done(r, tid, ops);
    /* teardown: every thread frees one array; all rounds are over */
    for (int i = 0; i < LA_SLOTS; i++)
        B->free(mine[i]);
}

/* ---- prodcons ---- */

#define PC_RING 1024
#define PC_BATCH 1024

struct ring {
    _Alignas(64) atomic_size_t head;   /* consumer's position */
    _Alignas(64) atomic_size_t tail;   /* producer's position */
    _Alignas(64) void *buf[PC_RING];
};

static struct ring *pc_rings;

static void producer(struct runner *r, int tid, struct ring *q)
{
    uint64_t s = rng_seed(3, (uint64_t)tid);
    size_t tail = 0, head = 0;
    uint64_t ops = 0;
    ready(r);
    for (bool last = false; !last;) {
        last = stopped(r);
        for (int k = 0; k < 256; k++) {
            void *p = last ? NULL : xalloc(16 + rng_next(&s) % 497, "prodcons");
            while (tail - head == PC_RING) {
                /* acquire: the consumer is done with the slot it freed */
                head = atomic_load_explicit(&q->head, memory_order_acquire);
                if (tail - head == PC_RING)
                    sched_yield();
            }
            q->buf[tail % PC_RING] = p;
            tail++;
            /* release: the block's first byte and the slot are visible */
            atomic_store_explicit(&q->tail, tail, memory_order_release);
            if (last)
                break;
            ops++;
        }
    }
    done(r, tid, ops);
}

static void consumer(struct runner *r, int tid, struct ring *q)
{
    size_t head = 0, tail = 0;
    uint64_t ops = 0;
    ready(r);
    for (;;) {
        while (head == tail) {
            /* acquire: pairs with the producer's release of tail */
            tail = atomic_load_explicit(&q->tail, memory_order_acquire);
            if (head == tail)
                sched_yield();
        }
        void *p = q->buf[head % PC_RING];
        head++;
        /* release: the producer may reuse the slot */
        atomic_store_explicit(&q->head, head, memory_order_release);
        if (p == NULL)
            break;
        (void)*(volatile char *)p;
        B->free(p);
        ops++;
    }
    done(r, tid, ops);
}

static void prodcons_alone(struct runner *r, int tid)
{
    uint64_t s = rng_seed(3, (uint64_t)tid);
    void **p = malloc(PC_BATCH * sizeof *p);
    if (p == NULL)
        oom("prodcons", 0);
    uint64_t ops = 0;
    ready(r);
    while (!stopped(r)) {
        for (int i = 0; i < PC_BATCH; i++)
            p[i] = xalloc(16 + rng_next(&s) % 497, "prodcons");
        for (int i = 0; i < PC_BATCH; i++) {
            (void)*(volatile char *)p[i];
            B->free(p[i]);
        }
        ops += 2 * PC_BATCH;
    }
    done(r, tid, ops);
    free(p);
}

static void prodcons(struct runner *r, int tid)
{
    int pairs = r->threads / 2;
    if (tid >= 2 * pairs)
        prodcons_alone(r, tid);        /* one thread, or the odd one out */
    else if (tid % 2 == 0)
        producer(r, tid, &pc_rings[tid / 2]);
    else
        consumer(r, tid, &pc_rings[tid / 2]);
}

/* ---- mixed ---- */

#define MX_SLOTS 1000

static void mixed(struct runner *r, int tid)
{
    uint64_t s = rng_seed(4, (uint64_t)tid);
    struct size_tab *tab = malloc(sizeof *tab);
    void **a = malloc(MX_SLOTS * sizeof *a);
    if (tab == NULL || a == NULL)
        oom("mixed", 0);
    size_tab_mixed(tab, s, 16, 65536, 0.01, 1 << 20);
    for (int i = 0; i < MX_SLOTS; i++)
        a[i] = xalloc(size_draw(tab, rng_next(&s)), "mixed");
    uint64_t ops = 0;
    ready(r);
    while (!stopped(r)) {
        for (int k = 0; k < 256; k++) {
            uint64_t x = rng_next(&s);
            size_t i = (size_t)(x % MX_SLOTS);
            B->free(a[i]);
            a[i] = xalloc(size_draw(tab, x >> 40), "mixed");
        }
        ops += 2 * 256;
    }
    done(r, tid, ops);
    for (int i = 0; i < MX_SLOTS; i++)
        B->free(a[i]);
    free(a);
    free(tab);
}

/* ---- realloc ---- */

#define RC_CHAINS 256

struct chain {
    char *p;
    uint32_t len, target;
    bool shrinking;
};

static void chain_start(struct chain *c, const struct size_tab *tab, uint64_t x)
{
    c->p = xalloc(16, "realloc");
    memset(c->p, 'a', 16);
    c->len = 16;
    c->target = (uint32_t)size_draw(tab, x);
    c->shrinking = false;
}

static void realloc_chains(struct runner *r, int tid)
{
    uint64_t s = rng_seed(5, (uint64_t)tid);
    struct size_tab *tab = malloc(sizeof *tab);
    struct chain *ch = malloc(RC_CHAINS * sizeof *ch);
    if (tab == NULL || ch == NULL)
        oom("realloc", 0);
    size_tab_loguniform(tab, s, 256, 65536);
    for (int i = 0; i < RC_CHAINS; i++)
        chain_start(&ch[i], tab, rng_next(&s));
    uint64_t ops = 0;
    ready(r);
    while (!stopped(r)) {
        for (int k = 0; k < 256; k++) {
            uint64_t x = rng_next(&s);
            struct chain *c = &ch[x % RC_CHAINS];
            uint32_t nl;
            if (!c->shrinking) {
                nl = c->len + 8 + (uint32_t)((x >> 32) % 249);
                if (nl >= c->target) {
                    nl = c->target;
                    c->shrinking = true;
                }
            } else {
                nl = c->len / 2;
                if (nl < 16) {
                    B->free(c->p);
                    chain_start(c, tab, x >> 40);
                    ops += 2;
                    continue;
                }
            }
            char *q = B->realloc(c->p, c->len, nl);
            if (q == NULL)
                oom("realloc", nl);
            if (nl > c->len)
                memset(q + c->len, 'b', nl - c->len);
            c->p = q;
            c->len = nl;
            ops++;
        }
    }
    done(r, tid, ops);
    for (int i = 0; i < RC_CHAINS; i++)
        B->free(ch[i].p);
    free(ch);
    free(tab);
}

/* ---- the runner ---- */

static const struct {
    const char *name;
    void (*body)(struct runner *r, int tid);
} workloads[] = {
    {"threadtest", threadtest},
    {"larson", larson},
    {"prodcons", prodcons},
    {"mixed", mixed},
    {"realloc", realloc_chains},
};

bool tput_known(const char *name)
{
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        if (strcmp(workloads[i].name, name) == 0)
            return true;
    return false;
}

static void *worker(void *p)
{
    struct worker_arg *a = p;
    a->r->body(a->r, a->tid);
    return NULL;
}

int tput_run(const char *name, int threads, double duration,
             struct tput_result *res)
{
    static struct runner r;
    r.body = NULL;
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        if (strcmp(workloads[i].name, name) == 0)
            r.body = workloads[i].body;
    if (r.body == NULL || threads < 1 || threads > MAX_THREADS)
        return -1;
    r.threads = threads;
    atomic_store(&r.stop, 0);
    atomic_store(&r.go, 1);
    pthread_barrier_init(&r.start, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&r.end, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&r.round, NULL, (unsigned)threads);
    if (r.body == larson)
        for (int i = 0; i < threads; i++) {
            la_arrays[i] = calloc(LA_SLOTS, sizeof(void *));
            if (la_arrays[i] == NULL)
                oom("larson", 0);
        }
    if (r.body == prodcons) {
        pc_rings = aligned_alloc(64, sizeof *pc_rings * (size_t)(threads / 2 + 1));
        if (pc_rings == NULL)
            oom("prodcons", 0);
        for (int i = 0; i < threads / 2 + 1; i++) {
            atomic_init(&pc_rings[i].head, 0);
            atomic_init(&pc_rings[i].tail, 0);
        }
    }

    pthread_t th[MAX_THREADS];
    struct worker_arg args[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        args[i].r = &r;
        args[i].tid = i;
        if (pthread_create(&th[i], NULL, worker, &args[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            _exit(3);
        }
    }
    pthread_barrier_wait(&r.start);
    double t0 = now_sec();
    sleep_sec(duration);
    atomic_store(&r.stop, 1);
    pthread_barrier_wait(&r.end);
    double t1 = now_sec();
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);

    res->ops = 0;
    for (int i = 0; i < threads; i++)
        res->ops += r.count[i].ops;
    res->secs = t1 - t0;
    if (r.body == larson)
        for (int i = 0; i < threads; i++)
            free(la_arrays[i]);
    if (r.body == prodcons)
        free(pc_rings);
    pthread_barrier_destroy(&r.start);
    pthread_barrier_destroy(&r.end);
    pthread_barrier_destroy(&r.round);
    return 0;
}

/* txbench: transactions, persistent_mem beside PMDK libpmemobj, in one run.
 *
 *   update   1 snapshot of a 64-byte record, 1 allocation of 64 bytes
 *            linked from it, the block it replaces freed, commit
 *   insert   a hash-map insert: the bucket head snapshotted, a 48-byte
 *            node allocated and linked, commit
 *
 * Each thread works on its own record and its own buckets (transactions
 * give atomicity, not isolation), at 1, 2 and 4 threads; the median of 5
 * runs of DUR seconds per cell, backends alternating within each round:
 *   pm-process  PROCESS durability (no flushes)
 *   pm-pmem     PMEM durability, CLWB (PERSISTENT_MEM_FLUSH=clwb)
 *   pmemobj     PMDK transactions, PMEM_IS_PMEM_FORCE=1 (cache-line
 *               flushes, as pm-pmem does), when PMDK was found
 *   no-tx       the same update in PROCESS durability without a
 *               transaction (plain malloc/free): what a transaction costs
 * Prints a markdown table of million transactions per second and the
 * ratios the transactions issue asks for.  Fences per transaction in PMEM
 * durability are counted by the test tx-fences (4 for update, with or
 * without the free); the last line is the ceiling they put on pm-pmem /
 * pmemobj on this machine (persist_ns, persist.c). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <persistent_mem.h>

#include "persist.h"
#ifdef TXBENCH_HAVE_PMEMOBJ
#include <libpmemobj.h>
#endif

#define MAXT 4
#define BUCKETS 4096
/* Fences of one update transaction in PMEM durability, each after stores
 * it must make durable first (the test tx-fences counts them and fails if
 * they change). */
#define UPDATE_FENCES 4
#define POOL (1024ull << 20)

static double dur = 0.5;
static const char *dir = "/dev/shm";

enum backend { PM_PROCESS, PM_PMEM, PMEMOBJ, NO_TX, N_BACKENDS };
static const char *bname[N_BACKENDS] = {"pm-process", "pm-pmem", "pmemobj", "no-tx"};
enum workload { UPDATE, INSERT, N_WORKLOADS };
static const char *wname[N_WORKLOADS] = {"update", "insert"};

struct record {
    uint64_t a[7];
    uint64_t link;           /* offset of the block it names */
};

struct node {
    uint64_t key, value, next, pad[3];
};

struct tdata {
    struct record *rec;
    uint64_t *buckets;       /* offsets of the first nodes */
};

static allocator_space_t *S;
#ifdef TXBENCH_HAVE_PMEMOBJ
static PMEMobjpool *pop;
#endif
static char path[512];
static struct tdata td[MAXT];
static pthread_barrier_t bar;
static atomic_int stop;
static enum backend cur_b;
static enum workload cur_w;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- persistent_mem ---- */

static void pm_update(struct tdata *t, uint64_t i, bool tx)
{
    struct record *r = t->rec;
    if (tx) {
        persistent_tx_begin(S);
        persistent_tx_add(S, r, sizeof *r);
    }
    uint64_t *n = tx ? persistent_tx_alloc(S, 64) : persistent_malloc(S, 64);
    n[0] = i;
    if (r->link) {
        void *old = persistent_offset_to_ptr(S, r->link);
        if (tx)
            persistent_tx_free(S, old);
        else
            persistent_free(S, old);
    }
    r->a[0] = i;
    r->link = ptr_to_persistent_offset(S, n);
    if (tx)
        persistent_tx_commit(S);
}

static void pm_insert(struct tdata *t, uint64_t key)
{
    uint64_t *head = &t->buckets[key % BUCKETS];
    persistent_tx_begin(S);
    persistent_tx_add(S, head, sizeof *head);
    struct node *n = persistent_tx_alloc(S, sizeof *n);
    n->key = key;
    n->value = key * 3;
    n->next = *head;
    *head = ptr_to_persistent_offset(S, n);
    persistent_tx_commit(S);
}

/* ---- PMDK ---- */

#ifdef TXBENCH_HAVE_PMEMOBJ
static void po_update(struct tdata *t, uint64_t i)
{
    struct record *r = t->rec;
    TX_BEGIN(pop) {
        pmemobj_tx_add_range_direct(r, sizeof *r);
        PMEMoid n = pmemobj_tx_alloc(64, 1);
        ((uint64_t *)pmemobj_direct(n))[0] = i;
        if (r->link) {
            PMEMoid old = {n.pool_uuid_lo, r->link};
            pmemobj_tx_free(old);
        }
        r->a[0] = i;
        r->link = n.off;
    } TX_END
}

static void po_insert(struct tdata *t, uint64_t key)
{
    uint64_t *head = &t->buckets[key % BUCKETS];
    TX_BEGIN(pop) {
        pmemobj_tx_add_range_direct(head, sizeof *head);
        PMEMoid o = pmemobj_tx_alloc(sizeof(struct node), 2);
        struct node *n = pmemobj_direct(o);
        n->key = key;
        n->value = key * 3;
        n->next = *head;
        *head = o.off;
    } TX_END
}
#endif

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    struct tdata *d = &td[t];
    uint64_t i = (uint64_t)t << 40, *ops = malloc(sizeof *ops);
    pthread_barrier_wait(&bar);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int k = 0; k < 64; k++, i++) {
            if (cur_w == UPDATE) {
                if (cur_b == PMEMOBJ) {
#ifdef TXBENCH_HAVE_PMEMOBJ
                    po_update(d, i);
#endif
                } else {
                    pm_update(d, i, cur_b != NO_TX);
                }
            } else {
                if (cur_b == PMEMOBJ) {
#ifdef TXBENCH_HAVE_PMEMOBJ
                    po_insert(d, i * 2654435761u);
#endif
                } else {
                    pm_insert(d, i * 2654435761u);
                }
            }
        }
    }
    *ops = i - ((uint64_t)t << 40);
    return ops;
}

static int setup(enum backend b, int threads)
{
    snprintf(path, sizeof path, "%s/txbench-%d-%s.pool", dir, (int)getpid(), bname[b]);
    unlink(path);
    if (b == PMEMOBJ) {
#ifdef TXBENCH_HAVE_PMEMOBJ
        pop = pmemobj_create(path, "txbench", POOL, 0600);
        if (pop == NULL)
            return -1;
        for (int t = 0; t < threads; t++) {
            PMEMoid r, bk;
            if (pmemobj_zalloc(pop, &r, sizeof(struct record), 3) ||
                pmemobj_zalloc(pop, &bk, BUCKETS * sizeof(uint64_t), 4))
                return -1;
            td[t].rec = pmemobj_direct(r);
            td[t].buckets = pmemobj_direct(bk);
        }
        return 0;
#else
        return -1;
#endif
    }
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = POOL;
    o.durability = b == PM_PMEM ? PERSISTENT_DURABILITY_PMEM : PERSISTENT_DURABILITY_PROCESS;
    if (persistent_space_open(path, &o, &S) != 0)
        return -1;
    for (int t = 0; t < threads; t++) {
        td[t].rec = persistent_calloc(S, 1, sizeof(struct record));
        td[t].buckets = persistent_calloc(S, BUCKETS, sizeof(uint64_t));
        if (td[t].rec == NULL || td[t].buckets == NULL)
            return -1;
    }
    return 0;
}

static void teardown(enum backend b)
{
    if (b == PMEMOBJ) {
#ifdef TXBENCH_HAVE_PMEMOBJ
        pmemobj_close(pop);
#endif
    } else {
        persistent_space_close(S);
    }
    unlink(path);
}

/* One cell: million transactions per second, or -1 if unavailable. */
static double run_cell(enum backend b, enum workload w, int threads)
{
    if (setup(b, threads) != 0) {
        teardown(b);
        return -1;
    }
    cur_b = b;
    cur_w = w;
    atomic_store(&stop, 0);
    pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
    pthread_t th[MAXT];
    for (int t = 0; t < threads; t++)
        pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
    pthread_barrier_wait(&bar);
    double t0 = now();
    struct timespec ts = {(time_t)dur, (long)((dur - (double)(time_t)dur) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    uint64_t ops = 0;
    for (int t = 0; t < threads; t++) {
        void *r;
        pthread_join(th[t], &r);
        ops += *(uint64_t *)r;
        free(r);
    }
    double secs = now() - t0;
    pthread_barrier_destroy(&bar);
    teardown(b);
    return (double)ops / secs / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dur") == 0 && i + 1 < argc)
            dur = atof(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
    }
    if (reps < 1 || reps > 15)
        reps = 5;
    setenv("PERSISTENT_MEM_FLUSH", "clwb", 0);
    setenv("PMEM_IS_PMEM_FORCE", "1", 0);
    printf("txbench: %s, medians of %d runs of %.1f s, backends alternating; "
           "flush %s, PMEM_IS_PMEM_FORCE=%s\n\n", dir, reps, dur,
           persistent_flush_method(), getenv("PMEM_IS_PMEM_FORCE"));
    static const int thr[] = {1, 2, 4};
    double po_update_1 = -1, pm_pmem_update_1 = -1;  /* update at 1 thread */
    printf("| workload | thr | pm-process | pm-pmem | pmemobj | no-tx | pm-pmem / pmemobj "
           "| pm-process / pmemobj | no-tx / pm-process |\n");
    printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (int w = 0; w < N_WORKLOADS; w++) {
        for (size_t ti = 0; ti < sizeof thr / sizeof *thr; ti++) {
            double v[N_BACKENDS][15];
            for (int r = 0; r < reps; r++)
                for (int b = 0; b < N_BACKENDS; b++)
                    v[b][r] = (b == NO_TX && w != UPDATE)
                                  ? -1
                                  : run_cell((enum backend)b, (enum workload)w, thr[ti]);
            double med[N_BACKENDS];
            for (int b = 0; b < N_BACKENDS; b++) {
                qsort(v[b], (size_t)reps, sizeof v[b][0], cmp_double);
                med[b] = v[b][reps / 2];
            }
            if (w == UPDATE && thr[ti] == 1) {
                po_update_1 = med[PMEMOBJ];
                pm_pmem_update_1 = med[PM_PMEM];
            }
            printf("| %s | %d |", wname[w], thr[ti]);
            for (int b = 0; b < N_BACKENDS; b++)
                med[b] < 0 ? printf(" - |") : printf(" %.2f |", med[b]);
            med[PMEMOBJ] > 0 ? printf(" %.2f | %.2f |", med[PM_PMEM] / med[PMEMOBJ],
                                      med[PM_PROCESS] / med[PMEMOBJ])
                             : printf(" - | - |");
            med[NO_TX] > 0 ? printf(" %.2f |\n", med[NO_TX] / med[PM_PROCESS])
                           : printf(" - |\n");
            fflush(stdout);
        }
    }
    printf("\nMtx/s: million transactions per second (no-tx: updates without one).\n");
    /* Each fence of a PMEM update waits for the write-back of stores made
     * since the one before, so the four cannot overlap: pm-pmem's update
     * takes at least UPDATE_FENCES write-backs, and its ratio to PMDK at
     * 1 thread cannot pass PMDK's time over that.  The least of five
     * measures (a ceiling must not be lowered by this machine's other
     * work). */
    double least = -1;
    for (int r = 0; r < 5; r++) {
        double x = persist_ns(dir);
        if (x > 0 && (least < 0 || x < least))
            least = x;
    }
    if (po_update_1 <= 0 || pm_pmem_update_1 <= 0)
        printf("PMEM ceiling: not measured (%s did not run).\n",
               po_update_1 <= 0 ? "pmemobj" : "pm-pmem");
    else if (strcmp(persistent_flush_method(), "none") == 0)
        printf("PMEM ceiling: not measured (PERSISTENT_MEM_FLUSH=none: nothing is written "
               "back; pm-pmem above is its transactions without their flushes).\n");
    else if (least <= 0)
        printf("PMEM ceiling: not measured (no file for it in %s).\n", dir);
    else
        printf("PMEM: a store written back and fenced takes %.0f ns here (%s, the least of "
               "5); an update transaction makes %d fences, so pm-pmem takes at least %.0f ns "
               "an update, and with pmemobj's %.0f ns, pm-pmem / pmemobj cannot pass %.2f "
               "at 1 thread.\n",
               least, persistent_flush_method(), UPDATE_FENCES, UPDATE_FENCES * least,
               1e3 / po_update_1, 1e3 / po_update_1 / (UPDATE_FENCES * least));
    return 0;
}

/* pmbench reopen: how long persistent_space_open takes on a big space, after
 * a clean close and after the writer was SIGKILLed under load.
 *
 *   1. A child creates the space (cfg->pool_size bytes, fixed), allocates
 *      `blocks` blocks of 16..96 B from two threads, records their offsets
 *      in a root array and closes cleanly.
 *   2. Each repetition: this process times a clean open (and the close);
 *      then a child opens the space and two threads replace random blocks
 *      (free, malloc, store the offset) until it is SIGKILLed in the middle
 *      of that; this process times the open that recovers the space.
 *      Then the same with each replacement a transaction (the slot
 *      snapshotted, the old block freed and a new one allocated in it),
 *      so that the open finds transactions to roll back: it tries each
 *      rollback on a private mapping first (recover.c rollback_trial).
 *
 * The first recovered open is also checked (persistent_check, untimed).
 * The space's file lives in cfg->dir and is deleted at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <persistent_mem.h>

#include "bench.h"

#define RO_TAG UINT64_C(0x62656e63686d6172)   /* "benchmar" */
#define RO_THREADS 2

struct ro_thread {
    allocator_space_t *space;
    persistent_offset_t *table;
    uint64_t blocks;
    int tid;
    int ready_fd;               /* churn: write one byte after warm-up */
    bool tx;                    /* churn: each replacement a transaction */
};

static uint32_t durability_of(const char *backend)
{
    if (strcmp(backend, "pm-pmem") == 0)
        return PERSISTENT_DURABILITY_PMEM;
    if (strcmp(backend, "pm-sync") == 0)
        return PERSISTENT_DURABILITY_SYNC;
    return PERSISTENT_DURABILITY_PROCESS;
}

static size_t ro_size(uint64_t x)
{
    return 16 + (size_t)((x >> 33) % 81);
}

static void *build_thread(void *arg)
{
    struct ro_thread *t = arg;
    uint64_t s = rng_seed(8, (uint64_t)t->tid);
    for (uint64_t i = (uint64_t)t->tid; i < t->blocks; i += RO_THREADS) {
        void *p = persistent_malloc(t->space, ro_size(rng_next(&s)));
        if (p == NULL) {
            fprintf(stderr, "reopen: build: persistent_malloc failed at block %llu\n",
                    (unsigned long long)i);
            _exit(3);
        }
        t->table[i] = ptr_to_persistent_offset(t->space, p);
    }
    return NULL;
}

static void *churn_thread(void *arg)
{
    struct ro_thread *t = arg;
    uint64_t s = rng_seed(9, (uint64_t)t->tid ^ (uint64_t)getpid() << 8);
    for (uint64_t k = 0;; k++) {
        uint64_t x = rng_next(&s);
        /* each thread has its own residue class of slots */
        uint64_t i = (x % (t->blocks / RO_THREADS)) * RO_THREADS + (uint64_t)t->tid;
        persistent_offset_t off = t->table[i];
        if (t->tx) {
            /* all or nothing: the slot, the free and the allocation */
            if (persistent_tx_begin(t->space) != 0 ||
                persistent_tx_add(t->space, &t->table[i], sizeof t->table[i]) != 0)
                _exit(3);
            void *p = persistent_tx_alloc(t->space, ro_size(x));
            if (p == NULL || (off != 0 && persistent_tx_free(t->space, persistent_offset_to_ptr(
                                                                   t->space, off)) != 0))
                _exit(3);
            t->table[i] = ptr_to_persistent_offset(t->space, p);
            if (persistent_tx_commit(t->space) != 0)
                _exit(3);
        } else {
            /* clear the slot first: a kill between the two steps leaks the
             * block, it never leaves a slot naming a freed block */
            t->table[i] = 0;
            if (off != 0)
                persistent_free(t->space, persistent_offset_to_ptr(t->space, off));
            void *p = persistent_malloc(t->space, ro_size(x));
            if (p == NULL)
                _exit(3);
            t->table[i] = ptr_to_persistent_offset(t->space, p);
        }
        if (k == (t->tx ? 50000 : 200000) && t->tid == 0) {
            char c = 1;
            if (write(t->ready_fd, &c, 1) != 1)
                _exit(3);
        }
    }
    return NULL;
}

static void run_threads(void *(*fn)(void *), allocator_space_t *space,
                        persistent_offset_t *table, uint64_t blocks, int ready_fd, bool tx)
{
    struct ro_thread t[RO_THREADS];
    pthread_t th[RO_THREADS];
    for (int i = 0; i < RO_THREADS; i++) {
        t[i].space = space;
        t[i].table = table;
        t[i].blocks = blocks;
        t[i].tid = i;
        t[i].ready_fd = ready_fd;
        t[i].tx = tx;
        pthread_create(&th[i], NULL, fn, &t[i]);
    }
    for (int i = 0; i < RO_THREADS; i++)
        pthread_join(th[i], NULL);
}

static void child_build(const char *path, uint64_t size, uint32_t dur, uint64_t blocks)
{
    struct persistent_options o;
    memset(&o, 0, sizeof o);
    o.flags = PERSISTENT_OPEN_CREATE | PERSISTENT_OPEN_EXCL;
    o.durability = dur;
    o.size = size;
    allocator_space_t *space;
    if (persistent_space_open(path, &o, &space) != 0) {
        fprintf(stderr, "reopen: create %s: %s\n", path, persistent_errormsg());
        _exit(3);
    }
    double t0 = now_sec();
    persistent_offset_t *table =
        persistent_root_get(space, RO_TAG, blocks * sizeof *table, NULL);
    if (table == NULL) {
        fprintf(stderr, "reopen: no room for the table of %llu blocks\n",
                (unsigned long long)blocks);
        _exit(3);
    }
    run_threads(build_thread, space, table, blocks, -1, false);
    double t1 = now_sec();
    struct persistent_stats st;
    if (persistent_stats_get(space, &st) == 0)
        printf("INFO reopen_build_secs=%.3f live_blocks=%llu live_bytes=%llu "
               "file_size=%llu\n",
               t1 - t0, (unsigned long long)st.live_blocks,
               (unsigned long long)st.live_bytes, (unsigned long long)st.file_size);
    fflush(stdout);
    if (persistent_space_close(space) != 0)
        _exit(3);
    _exit(0);
}

static void child_churn(const char *path, uint64_t blocks, int ready_fd, bool tx)
{
    allocator_space_t *space;
    struct persistent_options o;
    memset(&o, 0, sizeof o);
    if (persistent_space_open(path, &o, &space) != 0) {
        fprintf(stderr, "reopen: churn open: %s\n", persistent_errormsg());
        _exit(3);
    }
    persistent_offset_t *table = persistent_find_root(space, RO_TAG);
    if (table == NULL)
        _exit(3);
    run_threads(churn_thread, space, table, blocks, ready_fd, tx);
    _exit(0);
}

static int wait_child(pid_t pid, bool killed)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (killed)
        return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? 0 : -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int timed_open(const char *path, double *open_ms, double *close_ms,
                      bool check, struct persistent_info *info)
{
    allocator_space_t *space;
    struct persistent_options o;
    memset(&o, 0, sizeof o);
    double t0 = now_sec();
    int r = persistent_space_open(path, &o, &space);
    double t1 = now_sec();
    if (r != 0) {
        fprintf(stderr, "reopen: open: %s\n", persistent_errormsg());
        return -1;
    }
    persistent_space_info(space, info);
    if (check) {
        struct persistent_check_report rep;
        memset(&rep, 0, sizeof rep);
        double c0 = now_sec();
        r = persistent_check(space, &rep);
        printf("INFO reopen_check errors=%llu live_blocks=%llu in_flight_lanes=%llu "
               "orphan_bits=%llu check_ms=%.1f%s%s\n",
               (unsigned long long)rep.n_errors, (unsigned long long)rep.live_blocks,
               (unsigned long long)rep.in_flight_lanes,
               (unsigned long long)rep.orphan_bits, (now_sec() - c0) * 1e3,
               rep.n_errors ? " first_error=" : "", rep.n_errors ? rep.first_error : "");
        if (r != 0)
            return -1;
    }
    double t2 = now_sec();
    if (persistent_space_close(space) != 0)
        return -1;
    *open_ms = (t1 - t0) * 1e3;
    *close_ms = (now_sec() - t2) * 1e3;
    return 0;
}

/* A child replaces blocks (in transactions with tx) until it is killed in
 * the middle of that; the open that recovers the space, timed. */
static int killed_open(const char *path, uint64_t blocks, bool tx, bool check,
                       double *open_ms, double *close_ms, struct persistent_info *info)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child_churn(path, blocks, fds[1], tx);
    }
    close(fds[1]);
    char c;
    ssize_t got = read(fds[0], &c, 1);
    close(fds[0]);
    if (pid > 0)
        kill(pid, SIGKILL);     /* in the middle of replacing blocks */
    if (pid < 0 || got != 1 || wait_child(pid, true) != 0) {
        fprintf(stderr, "reopen: the loaded child did not run\n");
        return -1;
    }
    return timed_open(path, open_ms, close_ms, check, info);
}

int reopen_run(const struct bench_config *cfg, uint64_t blocks, int reps)
{
    char path[512];
    backend_path(path, sizeof path, cfg->dir, "reopen");
    unlink(path);
    uint32_t dur = durability_of(B->name);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        child_build(path, cfg->pool_size, dur, blocks);
    if (pid < 0 || wait_child(pid, false) != 0) {
        fprintf(stderr, "reopen: building the space failed\n");
        unlink(path);
        return -1;
    }
    int rc = 0;
    for (int rep = 0; rep < reps && rc == 0; rep++) {
        struct persistent_info ci, di;
        double clean_ms, clean_close_ms, dirty_ms, dirty_close_ms;
        if (timed_open(path, &clean_ms, &clean_close_ms, false, &ci) != 0) {
            rc = -1;
            break;
        }
        struct persistent_info ti;
        double tx_ms, tx_close_ms;
        if (killed_open(path, blocks, false, rep == 0, &dirty_ms, &dirty_close_ms, &di) != 0 ||
            killed_open(path, blocks, true, rep == 0, &tx_ms, &tx_close_ms, &ti) != 0) {
            rc = -1;
            break;
        }
        if (!ci.clean_at_open || di.clean_at_open || !di.recovered || !ti.recovered) {
            fprintf(stderr, "reopen: clean flags wrong (clean open %u, killed open %u "
                    "recovered %u)\n", ci.clean_at_open, di.clean_at_open, di.recovered);
            rc = -1;
        }
        printf("RESULT workload=reopen rep=%d blocks=%llu file_size=%llu "
               "clean_open_ms=%.3f clean_close_ms=%.3f killed_open_ms=%.3f "
               "killed_close_ms=%.3f killed_tx_open_ms=%.3f\n",
               rep, (unsigned long long)blocks, (unsigned long long)di.file_size,
               clean_ms, clean_close_ms, dirty_ms, dirty_close_ms, tx_ms);
        fflush(stdout);
    }
    unlink(path);
    return rc;
}

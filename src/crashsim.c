/* Test support: deterministic crash points and simulated power failure.
 *
 * Inert until a test calls pm_crash_arm().  From then on every space opened
 * in the process routes each persist through crash_ops: every flush and
 * every fence is a numbered crash point, and at point `at` the process
 * kills itself with SIGKILL.
 *
 * The power model (PM_CRASH_POWER, PM_CRASH_POWER_EVICT) is that of x86
 * persistent memory, at the granularity the hardware guarantees.  The space
 * is mapped privately, so a store reaches only "the cache"; a line reaches
 * "the media" (the file) when it is written back:
 *   - a flush records the line for the flushing thread, with its content at
 *     that moment;
 *   - a fence (drain) makes durable the lines the fencing thread flushed,
 *     and only those, each with its content from some moment between its
 *     flush and the fence (the flush-time content or the latest, at random,
 *     but never older than an earlier write-back of the line left: a cache
 *     writes back what it has, which only moves forward);
 *   - at the crash, every line flushed and not yet fenced, by any thread,
 *     lands in pieces: each 8-byte word, the only unit that is power-fail
 *     atomic, keeps its old value or takes its flush-time or latest value,
 *     independently; with PM_CRASH_POWER_EVICT every dirty line never
 *     flushed lands the same way (old or latest per word), as a cache may
 *     evict any line at any time;
 *   - the file size: growth extends the file at once (fallocate), but the
 *     new size is durable only after an fsync (pm_crash_synced); at the
 *     crash an extension not synced since is undone half the time.  Holes
 *     punched are gone at once (the worse case for their contents).
 * Threads run concurrently between persists; flushes and fences are
 * serialised on a mutex (test support only, never in normal use), and the
 * crash comes from whichever thread reaches the point, with every other
 * thread's unfenced lines still pending.  What the file then holds is what
 * persistent memory would hold after a power failure at that instant.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define LINE PM_CACHE_LINE
#define WORDS (LINE / 8)

static pm_atomic_u64 crash_at;          /* 0: disarmed */
static pm_atomic_u64 crash_count;
static pm_atomic_u64 fence_count;
static int crash_mode;
static uint64_t crash_seed;
static const struct pm_flush_ops *inner;

/* the private mapping of the simulated space and its file */
static char *sim_base;
static uint64_t sim_len;                /* bytes that may be written back */
static uint64_t sim_durable;            /* file size as of the last fsync */
static int sim_fd = -1;
static pthread_mutex_t sim_lock = PTHREAD_MUTEX_INITIALIZER;  /* tests only */

/* A line one thread flushed and has not fenced. */
struct pline {
    uint64_t off;
    uint64_t step;                      /* when it was flushed */
    uint64_t snap[WORDS];               /* its content then */
};
struct tpend {
    struct pline *v;
    size_t n, cap;
    struct tpend *next;
};
static _Thread_local struct tpend *my_pend;
static struct tpend *all_pend;          /* every thread's, under sim_lock */
static uint64_t step;                   /* orders flushes and write-backs */

/* The step of the content each line last got written back with (open
 * addressing on the line offset; 0 = never). */
static struct wb {
    uint64_t off1, step;                /* off1: line offset + 1, 0 empty */
} *wbs;
static size_t wb_cap, wb_n;

/* xorshift64*, high bits used: its low bits are weak */
static uint64_t rng(void)
{
    crash_seed ^= crash_seed >> 12;
    crash_seed ^= crash_seed << 25;
    crash_seed ^= crash_seed >> 27;
    return (crash_seed * UINT64_C(0x2545f4914f6cdd1d)) >> 32;
}

static struct wb *wb_slot(uint64_t off)
{
    size_t i = (size_t)((off / LINE) * 0x9e3779b97f4a7c15u) & (wb_cap - 1);
    while (wbs[i].off1 != 0 && wbs[i].off1 != off + 1)
        i = (i + 1) & (wb_cap - 1);
    return &wbs[i];
}

static uint64_t wb_get(uint64_t off)
{
    return wb_cap ? wb_slot(off)->step : 0;
}

static void wb_set(uint64_t off, uint64_t s)
{
    if (2 * (wb_n + 1) > wb_cap) {
        struct wb *old = wbs;
        size_t old_cap = wb_cap;
        wb_cap = wb_cap ? wb_cap * 2 : 4096;
        wbs = calloc(wb_cap, sizeof *wbs);
        if (wbs == NULL)
            abort();
        wb_n = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].off1) {
                *wb_slot(old[i].off1 - 1) = old[i];
                wb_n++;
            }
        free(old);
    }
    struct wb *w = wb_slot(off);
    if (w->off1 == 0)
        wb_n++;
    w->off1 = off + 1;
    w->step = s;
}

/* The line's content in memory now, a word at a time (other threads may
 * be storing to it).  A line can hold free memory beside a block: ASan,
 * which poisons free memory (memcheck.c), does not check this read. */
#ifdef PM_ASAN
__attribute__((no_sanitize_address))
#endif
static void read_mem(uint64_t off, uint64_t *out)
{
    const uint64_t *p = (const uint64_t *)(void *)(sim_base + off);
    for (unsigned i = 0; i < WORDS; i++)
        out[i] = __atomic_load_n(&p[i], __ATOMIC_RELAXED);
}

static void write_line(uint64_t off, const uint64_t *words)
{
    if (off + LINE <= sim_len)
        (void)os_pwrite_all(sim_fd, words, LINE, off);
}

/* A pending line at the crash: each word old, flush-time or latest. */
static void land_torn(const struct pline *pl)
{
    uint64_t file[WORDS], now[WORDS];
    if (pl->off + LINE > sim_len || os_pread_all(sim_fd, file, LINE, pl->off) != 0)
        return;
    read_mem(pl->off, now);
    bool snap_ok = pl->step > wb_get(pl->off);
    for (unsigned i = 0; i < WORDS; i++) {
        uint64_t r = rng() % 3;
        if (r == 1 && snap_ok)
            file[i] = pl->snap[i];
        else if (r == 2)
            file[i] = now[i];
    }
    write_line(pl->off, file);
}

/* Every dirty line never flushed: each word old or latest. */
static void evict_dirty(void)
{
    enum { CHUNK = 1u << 16 };
    static uint64_t file[CHUNK / 8], now[CHUNK / 8];
    for (uint64_t base = 0; base < sim_len; base += CHUNK) {
        uint64_t len = sim_len - base < CHUNK ? sim_len - base : CHUNK;
        len -= len % LINE;
        if (len == 0 || os_pread_all(sim_fd, file, len, base) != 0)
            break;
        for (uint64_t o = 0; o < len; o += LINE) {
            read_mem(base + o, &now[o / 8]);
            if (memcmp(&file[o / 8], &now[o / 8], LINE) == 0)
                continue;
            for (unsigned i = 0; i < WORDS; i++)
                if (rng() & 1)
                    file[o / 8 + i] = now[o / 8 + i];
            write_line(base + o, &file[o / 8]);
        }
    }
}

/* Called with sim_lock held. */
static void crash(void)
{
    if (crash_mode >= PM_CRASH_POWER && sim_base != NULL) {
        for (struct tpend *t = all_pend; t != NULL; t = t->next)
            for (size_t i = 0; i < t->n; i++)
                land_torn(&t->v[i]);
        if (crash_mode == PM_CRASH_POWER_EVICT)
            evict_dirty();
        uint64_t size;
        if (os_file_size(sim_fd, &size) == 0 && size > sim_durable && (rng() & 1))
            (void)os_truncate(sim_fd, sim_durable);
    }
    raise(SIGKILL);
    _exit(137);
}

static void tick(void)
{
    uint64_t at = pm_load_relaxed(&crash_at);
    uint64_t c = pm_fetch_add_acq_rel(&crash_count, 1) + 1;
    if (c == at)
        crash();
}

/* A crash point where a write is durable without a flush table: the
 * repairs recovery writes with pwrite (recover.c), which the kill model
 * sweeps through (the power model never takes that path: rt->flush_sim). */
void pm_crash_point(void)
{
    if (!pm_crash_armed())
        return;
    pthread_mutex_lock(&sim_lock);
    tick();
    pthread_mutex_unlock(&sim_lock);
}

static struct tpend *pend_of_thread(void)
{
    if (my_pend == NULL) {
        my_pend = calloc(1, sizeof *my_pend);
        if (my_pend == NULL)
            abort();
        my_pend->next = all_pend;
        all_pend = my_pend;
    }
    return my_pend;
}

static void crash_flush(const void *addr, size_t len)
{
    pthread_mutex_lock(&sim_lock);
    tick();
    if (crash_mode >= PM_CRASH_POWER && sim_base != NULL) {
        struct tpend *t = pend_of_thread();
        uintptr_t b = (uintptr_t)sim_base;
        PM_FOR_EACH_LINE(a, addr, len) {
            if (a < b || a - b + LINE > sim_len)
                continue;
            if (t->n == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 256;
                t->v = realloc(t->v, t->cap * sizeof *t->v);
                if (t->v == NULL)
                    abort();
            }
            struct pline *pl = &t->v[t->n++];
            pl->off = a - b;
            pl->step = ++step;
            read_mem(pl->off, pl->snap);
        }
    } else if (inner != NULL) {
        inner->flush(addr, len);
    }
    pthread_mutex_unlock(&sim_lock);
}

static void crash_drain(void)
{
    pthread_mutex_lock(&sim_lock);
    pm_fetch_add_relaxed(&fence_count, 1);
    tick();
    if (crash_mode >= PM_CRASH_POWER && sim_base != NULL) {
        struct tpend *t = pend_of_thread();
        for (size_t i = 0; i < t->n; i++) {
            struct pline *pl = &t->v[i];
            uint64_t now[WORDS];
            if (pl->step > wb_get(pl->off) && (rng() & 1)) {
                write_line(pl->off, pl->snap);          /* the flush moment */
                wb_set(pl->off, pl->step);
            } else {
                read_mem(pl->off, now);                 /* the latest */
                write_line(pl->off, now);
                wb_set(pl->off, ++step);
            }
        }
        t->n = 0;
    } else if (inner != NULL) {
        inner->drain();
    }
    pthread_mutex_unlock(&sim_lock);
}

static const struct pm_flush_ops crash_ops = {"crash-sim", crash_flush, crash_drain};

void pm_crash_arm(uint64_t at, int mode, uint64_t seed)
{
    crash_mode = mode;
    /* splitmix64 of the seed: nearby seeds give unrelated sequences */
    uint64_t z = seed + UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    crash_seed = (z ^ (z >> 31)) | 1;
    pm_store_relaxed(&crash_count, 0);
    pm_store_relaxed(&fence_count, 0);
    pm_store_release(&crash_at, at ? at : UINT64_MAX);
}

uint64_t pm_crash_points(void)
{
    return pm_load_acquire(&crash_count);
}

uint64_t pm_crash_fences(void)
{
    return pm_load_acquire(&fence_count);
}

bool pm_crash_armed(void)
{
    return pm_load_acquire(&crash_at) != 0;
}

int pm_crash_mode(void)
{
    return pm_crash_armed() ? crash_mode : PM_CRASH_NONE;
}

const struct pm_flush_ops *pm_crash_wrap(const struct pm_flush_ops *real)
{
    /* every thread's persistent_persist comes here while armed; inner is
     * read under the lock */
    pthread_mutex_lock(&sim_lock);
    inner = real;
    pthread_mutex_unlock(&sim_lock);
    return &crash_ops;
}

static void forget_pending(void)
{
    for (struct tpend *t = all_pend; t != NULL; t = t->next)
        t->n = 0;
    free(wbs);
    wbs = NULL;
    wb_cap = wb_n = 0;
}

void pm_crash_attach(char *base, uint64_t len, int fd)
{
    pthread_mutex_lock(&sim_lock);
    sim_base = base;
    sim_len = len;
    sim_fd = fd;
    if (os_file_size(fd, &sim_durable) != 0)
        sim_durable = len;
    forget_pending();
    pthread_mutex_unlock(&sim_lock);
}

void pm_crash_detach(char *base)
{
    if (!pm_crash_armed())
        return;                         /* no lock outside the tests */
    pthread_mutex_lock(&sim_lock);
    if (sim_base == base) {
        sim_base = NULL;
        sim_fd = -1;
        forget_pending();
    }
    pthread_mutex_unlock(&sim_lock);
}

void pm_crash_resize(char *base, uint64_t len)
{
    if (!pm_crash_armed())
        return;                         /* no lock outside the tests */
    pthread_mutex_lock(&sim_lock);
    if (sim_base == base && len > sim_len)
        sim_len = len;
    pthread_mutex_unlock(&sim_lock);
}

void pm_crash_synced(char *base)
{
    if (!pm_crash_armed())
        return;                         /* no lock outside the tests */
    pthread_mutex_lock(&sim_lock);
    if (sim_base == base && os_file_size(sim_fd, &sim_durable) != 0)
        sim_durable = sim_len;
    pthread_mutex_unlock(&sim_lock);
}

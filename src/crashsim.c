/* Test support: deterministic crash points and simulated power failure.
 *
 * Inert until a test calls pm_crash_arm().  From then on every space opened
 * in the process routes each persist through crash_ops: every flush and
 * every fence is a numbered crash point, and at point `at` the process
 * kills itself with SIGKILL.
 *
 * PM_CRASH_POWER maps the space privately, so stores reach only process
 * memory, and models the cache: a flush records the lines, a fence writes
 * the recorded lines' current contents to the file.  At the crash, lines
 * flushed but not yet fenced reach the file as a random subset (seeded), and
 * with PM_CRASH_POWER_EVICT so does a random subset of the dirty lines that
 * were never flushed (the cache may evict any line at any time).  What the
 * file then holds is what persistent memory would hold after a power
 * failure at that instant.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define LINE PM_CACHE_LINE

static pm_atomic_u64 crash_at;          /* 0: disarmed */
static pm_atomic_u64 crash_count;
static int crash_mode;
static uint64_t crash_seed;
static const struct pm_flush_ops *inner;

/* the private mapping of the simulated space and its file */
static char *sim_base;
static uint64_t sim_len;
static int sim_fd = -1;
static pthread_mutex_t sim_lock = PTHREAD_MUTEX_INITIALIZER;  /* tests only */
static uint64_t *pending;
static size_t n_pending, cap_pending;

static uint64_t rng(void)
{
    crash_seed ^= crash_seed << 13;
    crash_seed ^= crash_seed >> 7;
    crash_seed ^= crash_seed << 17;
    return crash_seed;
}

static void write_line(uint64_t off)
{
    if (off + LINE <= sim_len)
        (void)os_pwrite_all(sim_fd, sim_base + off, LINE, off);
}

static void evict_dirty(void)
{
    char buf[LINE];
    for (uint64_t off = 0; off + LINE <= sim_len; off += LINE) {
        if (os_pread_all(sim_fd, buf, LINE, off) != 0)
            break;
        if (memcmp(buf, sim_base + off, LINE) != 0 && (rng() & 1))
            write_line(off);
    }
}

static void crash(void)
{
    if (crash_mode >= PM_CRASH_POWER && sim_base != NULL) {
        for (size_t i = 0; i < n_pending; i++)
            if (rng() & 1)
                write_line(pending[i]);
        if (crash_mode == PM_CRASH_POWER_EVICT)
            evict_dirty();
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

static void crash_flush(const void *addr, size_t len)
{
    pthread_mutex_lock(&sim_lock);
    tick();
    if (crash_mode >= PM_CRASH_POWER && sim_base != NULL) {
        uintptr_t b = (uintptr_t)sim_base;
        PM_FOR_EACH_LINE(a, addr, len) {
            if (a < b || a - b >= sim_len)
                continue;
            if (n_pending == cap_pending) {
                cap_pending = cap_pending ? cap_pending * 2 : 1024;
                pending = realloc(pending, cap_pending * sizeof *pending);
            }
            pending[n_pending++] = a - b;
        }
    } else if (inner != NULL) {
        inner->flush(addr, len);
    }
    pthread_mutex_unlock(&sim_lock);
}

static void crash_drain(void)
{
    pthread_mutex_lock(&sim_lock);
    tick();
    if (crash_mode >= PM_CRASH_POWER && sim_base != NULL) {
        for (size_t i = 0; i < n_pending; i++)
            write_line(pending[i]);
        n_pending = 0;
    } else if (inner != NULL) {
        inner->drain();
    }
    pthread_mutex_unlock(&sim_lock);
}

static const struct pm_flush_ops crash_ops = {"crash-sim", crash_flush, crash_drain};

void pm_crash_arm(uint64_t at, int mode, uint64_t seed)
{
    crash_mode = mode;
    crash_seed = seed | 1;
    pm_store_relaxed(&crash_count, 0);
    pm_store_release(&crash_at, at ? at : UINT64_MAX);
}

uint64_t pm_crash_points(void)
{
    return pm_load_acquire(&crash_count);
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
    inner = real;
    return &crash_ops;
}

void pm_crash_attach(char *base, uint64_t len, int fd)
{
    pthread_mutex_lock(&sim_lock);
    sim_base = base;
    sim_len = len;
    sim_fd = fd;
    n_pending = 0;
    pthread_mutex_unlock(&sim_lock);
}

void pm_crash_detach(char *base)
{
    pthread_mutex_lock(&sim_lock);
    if (sim_base == base) {
        sim_base = NULL;
        sim_fd = -1;
        n_pending = 0;
    }
    pthread_mutex_unlock(&sim_lock);
}

void pm_crash_resize(char *base, uint64_t len)
{
    pthread_mutex_lock(&sim_lock);
    if (sim_base == base)
        sim_len = len;
    pthread_mutex_unlock(&sim_lock);
}

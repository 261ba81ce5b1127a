/* pmbench: shared declarations of the benchmark harness, grouped by the
 * file that defines them.  One process runs one measurement of one backend
 * (run.py starts a process per measurement so that LD_PRELOAD can swap the
 * volatile allocators); results are printed as "RESULT key=value ..." lines
 * that run.py parses. */
#ifndef PMBENCH_H
#define PMBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- backends (backend.c, backend_pmemobj.c, backend_boost.cpp) ---- */

/* What the harness asks of a backend. */
struct bench_config {
    const char *dir;          /* where file-backed backends put their file */
    uint64_t pool_size;       /* bytes asked for a fixed-size pool/space */
    uint64_t max_size;        /* > 0: growable space up to this (pm only) */
};

struct bench_backend {
    const char *name;
    const char *note;         /* printed once, e.g. the flush method */
    int (*open)(const struct bench_config *cfg);
    void (*close)(void);
    void *(*alloc)(size_t n);
    void (*free)(void *p);
    /* old_size is what the caller knows it holds (Boost needs it to copy) */
    void *(*realloc)(void *p, size_t old_size, size_t n);
    uint64_t (*file_bytes)(void);     /* physical bytes of its file, 0 if none */
    bool file_footprint;   /* the file grows with the heap: its physical size
                              is the footprint (else the resident set is) */
    /* optional: print where the footprint goes ("INFO diag ..."); only
     * called while no other thread allocates */
    void (*diag)(const char *phase, uint64_t requested_live);
};

const struct bench_backend *backend_find(const char *name);
void backend_list(void);       /* prints "BACKEND name available|missing" */
/* unique file name for this process's pool in dir */
void backend_path(char *buf, size_t len, const char *dir, const char *tag);
uint64_t file_physical_bytes(const char *path);

#ifdef PMBENCH_HAVE_PMEMOBJ
extern const struct bench_backend backend_pmemobj;
#endif
#ifdef PMBENCH_HAVE_BOOST
extern const struct bench_backend backend_boost;
#endif

/* the one active backend of this process */
extern const struct bench_backend *B;

/* ---- util.c ---- */

static inline uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: fast, good enough to pick slots and sizes */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(0x2545f4914f6cdd1d);
}

uint64_t rng_seed(uint64_t a, uint64_t b);
double now_sec(void);
void sleep_sec(double s);

/* A table of sizes drawn from a distribution, indexed by random bits: the
 * draw costs a mask and a load instead of a call to exp(). */
#define SIZE_TAB 4096
struct size_tab {
    uint32_t v[SIZE_TAB];
};
/* log-uniform in [lo, hi] */
void size_tab_loguniform(struct size_tab *t, uint64_t seed, double lo, double hi);
/* log-uniform lo..hi, except a fraction big_frac log-uniform hi..big_hi */
void size_tab_mixed(struct size_tab *t, uint64_t seed, double lo, double hi,
                    double big_frac, double big_hi);
static inline size_t size_draw(const struct size_tab *t, uint64_t r)
{
    return t->v[r & (SIZE_TAB - 1)];
}

uint64_t rss_now(void);        /* VmRSS in bytes */
uint64_t rss_peak(void);       /* VmHWM in bytes */
void rss_peak_reset(void);     /* clear_refs 5, where permitted */

/* ---- workloads.c: throughput ---- */

struct tput_result {
    uint64_t ops;
    double secs;
};

/* name: threadtest, larson, prodcons, mixed, realloc.  0 or -1. */
int tput_run(const char *name, int threads, double duration,
             struct tput_result *res);
bool tput_known(const char *name);

/* ---- memory.c ---- */

int frag_run(int threads, uint64_t live_target, bool shift);

/* ---- latency.c ---- */

int latency_run(int threads, uint64_t samples);

/* ---- reopen.c ---- */

int reopen_run(const struct bench_config *cfg, uint64_t blocks, int reps);

#endif

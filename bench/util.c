/* pmbench utilities: seeds, clocks, size tables, resident set size. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"

uint64_t rng_seed(uint64_t a, uint64_t b)
{
    /* splitmix64 of both, so nearby thread ids give unrelated streams */
    uint64_t z = a * UINT64_C(0x9e3779b97f4a7c15) + b + UINT64_C(0x632be59bd9b4e019);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    z ^= z >> 31;
    return z ? z : 1;
}

double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void sleep_sec(double s)
{
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static double unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

void size_tab_loguniform(struct size_tab *t, uint64_t seed, double lo, double hi)
{
    size_tab_mixed(t, seed, lo, hi, 0.0, hi);
}

void size_tab_mixed(struct size_tab *t, uint64_t seed, double lo, double hi,
                    double big_frac, double big_hi)
{
    uint64_t s = rng_seed(seed, 0x5123);
    for (int i = 0; i < SIZE_TAB; i++) {
        double a = lo, b = hi;
        if (big_frac > 0 && unit(&s) < big_frac) {
            a = hi;
            b = big_hi;
        }
        double x = exp(log(a) + unit(&s) * (log(b) - log(a)));
        t->v[i] = (uint32_t)(x < a ? a : x > b ? b : x);
    }
}

static uint64_t status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    char line[256];
    uint64_t v = 0;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            unsigned long long kb = 0;
            if (sscanf(line + klen + 1, "%llu", &kb) == 1)
                v = (uint64_t)kb * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

uint64_t rss_now(void)
{
    return status_kb("VmRSS");
}

uint64_t rss_peak(void)
{
    return status_kb("VmHWM");
}

void rss_peak_reset(void)
{
    /* "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0) */
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

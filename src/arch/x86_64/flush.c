/* x86-64 cache-line write-back: CLWB, CLFLUSHOPT, CLFLUSH.
 *
 * Built without -m flags: each variant is compiled for its instruction with
 * a target attribute (a GNU extension, hence this file alone uses them) and
 * only ever called after CPUID said the CPU has it. */
#include <cpuid.h>
#include <immintrin.h>

#include "../../persist.h"

uint32_t arch_cpu_features(void)
{
    unsigned a, b, c, d;
    uint32_t f = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) && (d & (1u << 19)))
        f |= PM_CPU_CLFLUSH;
    if (__get_cpuid_max(0, 0) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if (b & (1u << 23))
            f |= PM_CPU_CLFLUSHOPT;
        if (b & (1u << 24))
            f |= PM_CPU_CLWB;
    }
    return f;
}

__attribute__((target("clwb")))
static void flush_clwb(const void *addr, size_t len)
{
    PM_FOR_EACH_LINE(p, addr, len)
        _mm_clwb((void *)p);
}

__attribute__((target("clflushopt")))
static void flush_clflushopt(const void *addr, size_t len)
{
    PM_FOR_EACH_LINE(p, addr, len)
        _mm_clflushopt((void *)p);
}

/* CLFLUSH is ordered with other stores and CLFLUSHes by itself, so its
 * drain has nothing to wait for; the two weaker ones need SFENCE. */
static void flush_clflush(const void *addr, size_t len)
{
    PM_FOR_EACH_LINE(p, addr, len)
        _mm_clflush((const void *)p);
}

static void drain_sfence(void)
{
    _mm_sfence();
}

static void drain_none(void)
{
}

static const struct pm_flush_ops ops_clwb = {"clwb", flush_clwb, drain_sfence};
static const struct pm_flush_ops ops_clflushopt = {"clflushopt", flush_clflushopt,
                                                   drain_sfence};
static const struct pm_flush_ops ops_clflush = {"clflush", flush_clflush,
                                                drain_none};

int arch_flush_variants(uint32_t features, const struct pm_flush_ops **ops,
                        int max)
{
    int n = 0;
    if ((features & PM_CPU_CLWB) && n < max)
        ops[n++] = &ops_clwb;
    if ((features & PM_CPU_CLFLUSHOPT) && n < max)
        ops[n++] = &ops_clflushopt;
    if ((features & PM_CPU_CLFLUSH) && n < max)
        ops[n++] = &ops_clflush;
    return n;
}

/* AArch64 write-back to the point of persistence: DC CVAP where the CPU
 * has it (ARMv8.2 DCPoP, reported in HWCAP), else none and persist.c falls
 * back to msync.  Inline assembly is the only way to name the instruction,
 * hence the GNU extension in this file. */
#include <sys/auxv.h>

#include "../../persist.h"

#ifndef HWCAP_DCPOP
#define HWCAP_DCPOP (1u << 16)
#endif

uint32_t arch_cpu_features(void)
{
    return (getauxval(AT_HWCAP) & HWCAP_DCPOP) ? PM_CPU_DC_CVAP : 0;
}

static void flush_cvap(const void *addr, size_t len)
{
    PM_FOR_EACH_LINE(p, addr, len)
        __asm__ volatile("dc cvap, %0" : : "r"(p) : "memory");
}

static void drain_dsb(void)
{
    __asm__ volatile("dsb ish" : : : "memory");
}

static const struct pm_flush_ops ops_cvap = {"dc_cvap", flush_cvap, drain_dsb};

int arch_flush_variants(uint32_t features, const struct pm_flush_ops **ops,
                        int max)
{
    int n = 0;
    if ((features & PM_CPU_DC_CVAP) && n < max)
        ops[n++] = &ops_cvap;
    return n;
}

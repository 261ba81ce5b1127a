/* AArch64 write-back to the point of persistence: DC CVAP where the CPU
 * has it (ARMv8.2 DCPoP, reported in HWCAP), else none and persist.c falls
 * back to msync.  Inline assembly is the only way to name the instruction,
 * hence the GNU extension in this file.
 *
 * DC CVAP is written by its system-instruction encoding (SYS #3, C7, C12,
 * #1): the mnemonic needs -march=armv8.2-a or later, and the library is
 * built for baseline ARMv8.0 so that it runs on every AArch64 CPU; the
 * instruction is only ever executed after HWCAP said the CPU has it.
 *
 * The write-back granule is the CPU's smallest data cache line
 * (CTR_EL0.DminLine), not PM_CACHE_LINE: a CPU with 32-byte lines (as
 * QEMU's "max" CPU reports) would otherwise leave every other line dirty.
 * The drain is DSB SY, as the Linux kernel's clean to the point of
 * persistence (dcache_clean_pop) does: the point of persistence lies
 * outside every shareability domain. */
#include <stdatomic.h>
#include <sys/auxv.h>

#include "../../persist.h"

#ifndef HWCAP_DCPOP
#define HWCAP_DCPOP (1u << 16)
#endif

uint32_t arch_cpu_features(void)
{
    return (getauxval(AT_HWCAP) & HWCAP_DCPOP) ? PM_CPU_DC_CVAP : 0;
}

/* CTR_EL0 is readable at EL0 on Linux (directly, or trapped and emulated
 * by the kernel); read once, 0 until then. */
static size_t dcache_line(void)
{
    static _Atomic size_t line;
    size_t n = atomic_load_explicit(&line, memory_order_relaxed);
    if (n == 0) {
        uint64_t ctr;
        __asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
        n = (size_t)4 << ((ctr >> 16) & 0xf);   /* DminLine: log2 words */
        atomic_store_explicit(&line, n, memory_order_relaxed);
    }
    return n;
}

static void flush_cvap(const void *addr, size_t len)
{
    if (len == 0)
        return;
    uintptr_t step = dcache_line();
    uintptr_t end = (uintptr_t)addr + len;
    for (uintptr_t p = (uintptr_t)addr & ~(step - 1); p < end; p += step)
        __asm__ volatile("sys #3, c7, c12, #1, %0" /* dc cvap, %0 */
                         : : "r"(p) : "memory");
}

static void drain_dsb(void)
{
    __asm__ volatile("dsb sy" : : : "memory");
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

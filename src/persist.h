/* The persistence table: flush / drain chosen once per process.
 * Core code calls pm_flush / pm_drain / pm_persist through it and never an
 * instruction; the CPU variants live under arch/. */
#ifndef PM_PERSIST_H
#define PM_PERSIST_H

#include <stddef.h>
#include <stdint.h>

struct pm_flush_ops {
    const char *name;
    void (*flush)(const void *addr, size_t len);  /* write back lines */
    void (*drain)(void);                          /* wait for write-backs */
};

/* Every cache line that [addr, addr + len) touches, once, in order: the
 * loop all the write-back variants share (tested on its own). */
#define PM_CACHE_LINE 64u
#define PM_FOR_EACH_LINE(p, addr, len)                                        \
    for (uintptr_t p = (uintptr_t)(addr) & ~(uintptr_t)(PM_CACHE_LINE - 1),   \
                   p##_end = (len) ? (uintptr_t)(addr) + (len) : 0;           \
         p < p##_end; p += PM_CACHE_LINE)

/* arch/<cpu>/flush.c: fills ops[] with the variants this build can run on
 * this CPU (given CPUID-like feature bits), best first; returns the count. */
#define PM_CPU_CLFLUSH     0x1u
#define PM_CPU_CLFLUSHOPT  0x2u
#define PM_CPU_CLWB        0x4u
#define PM_CPU_DC_CVAP     0x8u
uint32_t arch_cpu_features(void);
int arch_flush_variants(uint32_t features, const struct pm_flush_ops **ops,
                        int max);

/* persist.c */
extern const struct pm_flush_ops pm_ops_msync, pm_ops_none;
const struct pm_flush_ops *pm_flush_ops_get(void);  /* the process's choice */
int pm_flush_select(const char *name, uint32_t features);  /* for tests */
int pm_flush_check(void);   /* PERSISTENT_E_FLUSH if the forced one failed */
int pm_flush_forced(void);  /* 1 if PERSISTENT_MEM_FLUSH names a method */

#endif

/* The persistence table, chosen once per process: CLWB > CLFLUSHOPT >
 * CLFLUSH by CPUID (or the CPU's equivalent), msync for files that are not
 * persistent memory, none for process-crash-only use.  The environment
 * variable PERSISTENT_MEM_FLUSH=clwb|clflushopt|clflush|dc_cvap|msync|none
 * forces a choice; naming one this CPU lacks makes every open fail with
 * PERSISTENT_E_FLUSH (and persistent_flush_method() say why) rather than
 * crash on an illegal instruction. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "persist.h"

static void flush_msync(const void *addr, size_t len)
{
    (void)os_msync((void *)(uintptr_t)addr, len);
}

static void flush_none(const void *addr, size_t len)
{
    (void)addr;
    (void)len;
}

static void drain_none(void)
{
}

const struct pm_flush_ops pm_ops_msync = {"msync", flush_msync, drain_none};
const struct pm_flush_ops pm_ops_none = {"none", flush_none, drain_none};

static const struct pm_flush_ops *_Atomic active;
static int select_error;
static char select_msg[160];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

int pm_flush_select(const char *name, uint32_t features)
{
    const struct pm_flush_ops *v[8];
    int n = arch_flush_variants(features, v, 8);
    const struct pm_flush_ops *pick = NULL;

    if (name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0) {
        pick = n > 0 ? v[0] : &pm_ops_msync;
    } else if (strcmp(name, "msync") == 0) {
        pick = &pm_ops_msync;
    } else if (strcmp(name, "none") == 0) {
        pick = &pm_ops_none;
    } else {
        for (int i = 0; i < n; i++)
            if (strcmp(v[i]->name, name) == 0)
                pick = v[i];
        if (pick == NULL) {
            snprintf(select_msg, sizeof select_msg,
                     "PERSISTENT_MEM_FLUSH=%s: %s", name,
                     (strcmp(name, "clwb") == 0 || strcmp(name, "clflushopt") == 0 ||
                      strcmp(name, "clflush") == 0 || strcmp(name, "dc_cvap") == 0)
                         ? "this CPU does not have that instruction"
                         : "unknown method (clwb, clflushopt, clflush, dc_cvap, msync, none)");
            return PERSISTENT_E_FLUSH;
        }
    }
    pm_store_release(&active, pick);
    return 0;
}

static void select_default(void)
{
    uint32_t f = arch_cpu_features();
    const char *env = getenv("PERSISTENT_MEM_FLUSH");
    select_error = pm_flush_select(env, f);
    if (select_error != 0)
        (void)pm_flush_select("auto", f);
}

static const struct pm_flush_ops *real_ops(void)
{
    const struct pm_flush_ops *o = pm_load_acquire(&active);
    if (PM_LIKELY(o != NULL))
        return o;
    pthread_once(&init_once, select_default);
    return pm_load_acquire(&active);
}

const struct pm_flush_ops *pm_flush_ops_get(void)
{
    return real_ops();
}

/* The public calls go through the crash simulation when a test armed it,
 * so an application's own persists are crash points and reach the
 * simulated file like the library's. */
static const struct pm_flush_ops *public_ops(void)
{
    const struct pm_flush_ops *o = real_ops();
    return PM_UNLIKELY(pm_crash_armed()) ? pm_crash_wrap(o) : o;
}

int pm_flush_check(void)
{
    (void)pm_flush_ops_get();
    if (select_error)
        return pm_err(select_error, "%s", select_msg);
    return 0;
}

int pm_flush_forced(void)
{
    const char *env = getenv("PERSISTENT_MEM_FLUSH");
    return env != NULL && env[0] != '\0' && strcmp(env, "auto") != 0;
}

void persistent_flush(const void *addr, size_t len)
{
    public_ops()->flush(addr, len);
}

void persistent_drain(void)
{
    public_ops()->drain();
}

void persistent_persist(const void *addr, size_t len)
{
    const struct pm_flush_ops *o = public_ops();
    o->flush(addr, len);
    o->drain();
}

const char *persistent_flush_method(void)
{
    return real_ops()->name;
}

/* pmbench backends: the process's malloc (glibc, or jemalloc/mimalloc when
 * run.py preloads them) and persistent_mem in each durability mode.  PMDK
 * and Boost.Interprocess live in their own files because they are optional
 * dependencies. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <persistent_mem.h>

#include "bench.h"

const struct bench_backend *B;

void backend_path(char *buf, size_t len, const char *dir, const char *tag)
{
    snprintf(buf, len, "%s/pmbench-%d-%s.pool", dir, (int)getpid(), tag);
}

uint64_t file_physical_bytes(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    return (uint64_t)st.st_blocks * 512;
}

/* ---- the process's malloc ---- */

static int sys_open(const struct bench_config *cfg)
{
    (void)cfg;
    return 0;
}

static void sys_close(void)
{
}

static void *sys_alloc(size_t n)
{
    return malloc(n);
}

static void sys_free(void *p)
{
    free(p);
}

static void *sys_realloc(void *p, size_t old_size, size_t n)
{
    (void)old_size;
    return realloc(p, n);
}

static uint64_t no_file(void)
{
    return 0;
}

static const struct bench_backend backend_malloc = {
    .name = "malloc",
    .note = "",
    .open = sys_open,
    .close = sys_close,
    .alloc = sys_alloc,
    .free = sys_free,
    .realloc = sys_realloc,
    .file_bytes = no_file,
    .file_footprint = false,
};

/* ---- persistent_mem ---- */

static allocator_space_t *space;
static char pm_file[512];
static char pm_note[128];

static int pm_open_mode(const struct bench_config *cfg, uint32_t durability)
{
    backend_path(pm_file, sizeof pm_file, cfg->dir, "pm");
    unlink(pm_file);
    struct persistent_options o;
    memset(&o, 0, sizeof o);
    o.flags = PERSISTENT_OPEN_CREATE | PERSISTENT_OPEN_EXCL;
    o.durability = durability;
    o.size = cfg->pool_size;
    o.max_size = cfg->max_size;
    int r = persistent_space_open(pm_file, &o, &space);
    if (r != 0) {
        fprintf(stderr, "persistent_space_open %s: %s\n", pm_file,
                persistent_errormsg());
        return -1;
    }
    struct persistent_info info;
    if (persistent_space_info(space, &info) == 0 && info.durability != durability) {
        fprintf(stderr, "persistent_mem: asked for durability %u, got %u\n",
                durability, info.durability);
        return -1;
    }
    snprintf(pm_note, sizeof pm_note, "durability=%s flush=%s",
             durability == PERSISTENT_DURABILITY_PMEM   ? "pmem"
             : durability == PERSISTENT_DURABILITY_SYNC ? "sync"
                                                        : "process",
             durability == PERSISTENT_DURABILITY_PMEM ? persistent_flush_method()
                                                      : "none");
    return 0;
}

static int pm_open_process(const struct bench_config *cfg)
{
    return pm_open_mode(cfg, PERSISTENT_DURABILITY_PROCESS);
}

static int pm_open_sync(const struct bench_config *cfg)
{
    return pm_open_mode(cfg, PERSISTENT_DURABILITY_SYNC);
}

static int pm_open_pmem(const struct bench_config *cfg)
{
    /* run.py sets PERSISTENT_MEM_FLUSH=clwb; refuse to measure anything
     * else silently (a CPU without CLWB makes the open fail instead) */
    const char *want = getenv("PERSISTENT_MEM_FLUSH");
    if (want == NULL || want[0] == '\0') {
        fprintf(stderr, "pm-pmem: set PERSISTENT_MEM_FLUSH (run.py uses clwb)\n");
        return -1;
    }
    int r = pm_open_mode(cfg, PERSISTENT_DURABILITY_PMEM);
    if (r == 0 && strcmp(persistent_flush_method(), want) != 0) {
        fprintf(stderr, "pm-pmem: flush method is %s, not %s\n",
                persistent_flush_method(), want);
        return -1;
    }
    return r;
}

static void pm_close(void)
{
    if (persistent_space_close(space) != 0)
        fprintf(stderr, "persistent_space_close: %s\n", persistent_errormsg());
    space = NULL;
    unlink(pm_file);
}

static void *pm_alloc(size_t n)
{
    return persistent_malloc(space, n);
}

static void pm_free(void *p)
{
    persistent_free(space, p);
}

static void *pm_realloc(void *p, size_t old_size, size_t n)
{
    (void)old_size;
    return persistent_reallocate(space, p, n);
}

static uint64_t pm_file_bytes(void)
{
    return file_physical_bytes(pm_file);
}

static void pm_diag(const char *phase, uint64_t requested_live)
{
    struct persistent_stats st;
    struct persistent_info info;
    if (persistent_stats_get(space, &st) != 0 || persistent_space_info(space, &info) != 0)
        return;
    printf("INFO diag phase=%s requested=%llu usable_live=%llu small_live=%llu "
           "superblock_bytes=%llu superblocks=%llu empty_superblocks=%llu "
           "large_live=%llu large_bytes=%llu free_bytes=%llu capacity=%llu "
           "used_size=%llu file_size=%llu meta_size=%llu\n",
           phase, (unsigned long long)requested_live, (unsigned long long)st.live_bytes,
           (unsigned long long)st.small_live_bytes,
           (unsigned long long)st.superblock_bytes, (unsigned long long)st.superblocks,
           (unsigned long long)st.empty_superblocks,
           (unsigned long long)st.large_live_bytes, (unsigned long long)st.large_bytes,
           (unsigned long long)st.free_bytes, (unsigned long long)st.capacity,
           (unsigned long long)info.used_size, (unsigned long long)st.file_size,
           (unsigned long long)info.meta_size);
}

#define PM_BACKEND(id, label, opener)                                        \
    static const struct bench_backend id = {                                 \
        .name = label,                                                       \
        .note = pm_note,                                                     \
        .open = opener,                                                      \
        .close = pm_close,                                                   \
        .alloc = pm_alloc,                                                   \
        .free = pm_free,                                                     \
        .realloc = pm_realloc,                                               \
        .file_bytes = pm_file_bytes,                                         \
        .file_footprint = true,                                              \
        .diag = pm_diag,                                                     \
    }

PM_BACKEND(backend_pm_process, "pm-process", pm_open_process);
PM_BACKEND(backend_pm_sync, "pm-sync", pm_open_sync);
PM_BACKEND(backend_pm_pmem, "pm-pmem", pm_open_pmem);

/* ---- registry ---- */

static const struct bench_backend *const all[] = {
    &backend_malloc,
    &backend_pm_process,
    &backend_pm_sync,
    &backend_pm_pmem,
#ifdef PMBENCH_HAVE_PMEMOBJ
    &backend_pmemobj,
#endif
#ifdef PMBENCH_HAVE_BOOST
    &backend_boost,
#endif
};

static const char *const optional[] = {"pmemobj", "boost"};

const struct bench_backend *backend_find(const char *name)
{
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

void backend_list(void)
{
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        printf("BACKEND name=%s available=1\n", all[i]->name);
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
        if (backend_find(optional[i]) == NULL)
            printf("BACKEND name=%s available=0\n", optional[i]);
    /* where malloc comes from: tells run.py whether LD_PRELOAD worked */
    Dl_info di;
    void *(*m)(size_t) = malloc;
    if (dladdr((void *)(uintptr_t)m, &di) && di.dli_fname)
        printf("MALLOC from=%s\n", di.dli_fname);
}

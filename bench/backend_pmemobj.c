/* pmbench backend: PMDK libpmemobj, non-transactional atomic allocation
 * (pmemobj_alloc / pmemobj_free / pmemobj_realloc) into volatile PMEMoids.
 *
 * On /dev/shm libpmem would make every flush an msync; run.py sets
 * PMEM_IS_PMEM_FORCE=1 so it treats the pool as persistent memory and
 * flushes with cache-line instructions, the same work persistent_mem's
 * pmem mode does.  The harness passes pointers around, so an oid is
 * rebuilt from the pointer with the pool's uuid (what pmemobj_oid() does,
 * without its pool lookup). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <libpmemobj.h>

#include "bench.h"

static PMEMobjpool *pop;
static uint64_t uuid_lo;
static char path[512];
static char note[128];

static int po_open(const struct bench_config *cfg)
{
    backend_path(path, sizeof path, cfg->dir, "pmemobj");
    unlink(path);
    size_t size = cfg->max_size > cfg->pool_size ? cfg->max_size : cfg->pool_size;
    if (size < PMEMOBJ_MIN_POOL)
        size = PMEMOBJ_MIN_POOL;
    pop = pmemobj_create(path, "pmbench", size, 0600);
    if (pop == NULL) {
        fprintf(stderr, "pmemobj_create %s: %s\n", path, pmemobj_errormsg());
        return -1;
    }
    PMEMoid oid;
    if (pmemobj_alloc(pop, &oid, 64, 1, NULL, NULL) != 0) {
        fprintf(stderr, "pmemobj_alloc: %s\n", pmemobj_errormsg());
        return -1;
    }
    uuid_lo = oid.pool_uuid_lo;
    pmemobj_free(&oid);
    const char *force = getenv("PMEM_IS_PMEM_FORCE");
    snprintf(note, sizeof note, "PMEM_IS_PMEM_FORCE=%s (%s)",
             force ? force : "unset",
             force && force[0] == '1' ? "cache-line flushes" : "msync per flush");
    return 0;
}

static void po_close(void)
{
    pmemobj_close(pop);
    pop = NULL;
    unlink(path);
}

static inline PMEMoid oid_of(void *p)
{
    PMEMoid oid = {uuid_lo, (uint64_t)((char *)p - (char *)pop)};
    return oid;
}

static void *po_alloc(size_t n)
{
    PMEMoid oid;
    if (pmemobj_alloc(pop, &oid, n, 1, NULL, NULL) != 0)
        return NULL;
    return (char *)pop + oid.off;
}

static void po_free(void *p)
{
    if (p == NULL)
        return;
    PMEMoid oid = oid_of(p);
    pmemobj_free(&oid);
}

static void *po_realloc(void *p, size_t old_size, size_t n)
{
    (void)old_size;
    PMEMoid oid = p ? oid_of(p) : OID_NULL;
    if (pmemobj_realloc(pop, &oid, n, 1) != 0)
        return NULL;
    return OID_IS_NULL(oid) ? NULL : (char *)pop + oid.off;
}

static uint64_t po_file_bytes(void)
{
    return file_physical_bytes(path);
}

const struct bench_backend backend_pmemobj = {
    .name = "pmemobj",
    .note = note,
    .open = po_open,
    .close = po_close,
    .alloc = po_alloc,
    .free = po_free,
    .realloc = po_realloc,
    .file_bytes = po_file_bytes,
    .file_footprint = false,   /* the pool is allocated in full: use RSS */
};

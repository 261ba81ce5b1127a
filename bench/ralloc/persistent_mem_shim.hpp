/* persistent_mem behind the pm_* calls of Ralloc's benchmark drivers.
 *
 * build.sh makes the drivers' allocator-selection header include this file
 * when PERSISTENT_MEM is defined (ahead of its RALLOC case), so the drivers
 * themselves are compiled unchanged.  The space is created at pm_init() with
 * the size the header gives Ralloc's region (REGION_SIZE, 6 GiB + 24 B) in
 * the file named by $PM_SPACE (default /dev/shm/persistent_mem_bench.<pid>);
 * a new space on an ordinary file gets PROCESS durability (no flushes).
 * The caller removes the file afterwards (run.sh does, between runs).
 */
#ifndef PERSISTENT_MEM_RALLOC_SHIM_HPP
#define PERSISTENT_MEM_RALLOC_SHIM_HPP

#include <persistent_mem.h>

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

#ifndef REGION_SIZE
#define REGION_SIZE (6 * 1024 * 1024 * 1024ULL + 24)
#endif

static allocator_space_t *pm_shim_space = nullptr;

inline int pm_init()
{
    char fallback[64];
    const char *path = getenv("PM_SPACE");
    if (path == nullptr || *path == '\0') {
        snprintf(fallback, sizeof fallback,
                 "/dev/shm/persistent_mem_bench.%ld", (long)getpid());
        path = fallback;
    }
    pm_shim_space = create_persistent_allocator(path, (size_t)REGION_SIZE);
    if (pm_shim_space == nullptr) {
        fprintf(stderr, "persistent_mem: cannot create %s: %s\n", path,
                strerror(errno));
        exit(1);
    }
    return 0;
}

inline void pm_close()
{
    destroy_persistent_allocator(pm_shim_space);
    pm_shim_space = nullptr;
}

inline void *pm_malloc(size_t s) { return persistent_malloc(pm_shim_space, s); }
inline void pm_free(void *p) { persistent_free(pm_shim_space, p); }

inline void *pm_calloc(size_t num, size_t size)
{
    if (size != 0 && num > (size_t)-1 / size)
        return nullptr;
    void *p = persistent_malloc(pm_shim_space, num * size);
    if (p != nullptr)
        memset(p, 0, num * size);
    return p;
}

inline void *pm_realloc(void *ptr, size_t new_size)
{
    if (ptr == nullptr)
        return pm_malloc(new_size);
    if (new_size == 0) {
        pm_free(ptr);
        return nullptr;
    }
    return persistent_realloc_impl(pm_shim_space, &ptr, new_size) ? ptr
                                                                   : nullptr;
}

inline void pm_recover() { assert(0 && "not used by these drivers"); }

#endif

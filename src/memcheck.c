/* Valgrind memcheck (meson -Dvalgrind=enabled) and AddressSanitizer (a
 * build with -fsanitize=address) see the program's blocks.
 *
 * Under ASan the same calls poison and unpoison: a block handed out is
 * unpoisoned over its usable size, a freed one and all free memory are
 * poisoned, so an overflow into free memory or the next free block, or a
 * use after free, is an ASan report.  The library's own reads of whole
 * pages or lines (automatic transactions, the crash simulator) go through
 * pm_copy_raw, which ASan does not check; before the mapping goes, its
 * shadow is cleared.
 *
 * A block handed to the program is a heap block to memcheck
 * (VALGRIND_MALLOCLIKE_BLOCK over its usable size, which the program may
 * use: persistent_usable_size): its bytes are undefined until written
 * (zeroed ones defined), a read or write past its end is an invalid
 * access, and once freed (VALGRIND_FREELIKE_BLOCK) any access is a use
 * after free, reported with the stacks of the allocation and the free.
 * Memory the library itself takes back (superblock headers, log pages,
 * tables) is made undefined before it writes there, and the copies of
 * whole pages an automatic transaction makes are not reported.
 *
 * Leaks: at close, every block the program got in this process that no
 * root reaches -- through words holding a block's offset or address, in
 * the root blocks and what they reach, as a conservative collector reads
 * them -- is left allocated in memcheck's books, so that its leak check at
 * exit reports it ("definitely lost": the mapping is gone), with the stack
 * of its allocation; the reachable ones are retired quietly.
 *
 * Blocks that were in the file before this process opened it are not
 * memcheck's: reads of them are never reported, and freeing one makes it
 * inaccessible (a use after free is reported, without an allocation
 * stack); they are not leak-checked.  Which blocks memcheck knows is kept
 * in rt->vgknown, one bit per 16-byte granule like the marks.
 *
 * Every call returns at once unless the process runs under valgrind
 * (RUNNING_ON_VALGRIND: a few instructions); builds without the option
 * have none of it (internal.h). */
#include "internal.h"

#if defined(PM_VALGRIND) || defined(PM_ASAN)
#include <stdlib.h>
#include <string.h>
#ifdef PM_VALGRIND
#include <valgrind/memcheck.h>
#else
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_MALLOCLIKE_BLOCK(p, n, rz, z) ((void)(p), (void)(n), (void)(z))
#define VALGRIND_FREELIKE_BLOCK(p, rz) ((void)(p))
#define VALGRIND_RESIZEINPLACE_BLOCK(p, o, n, rz) ((void)(p), (void)(o), (void)(n))
#define VALGRIND_MAKE_MEM_NOACCESS(p, n) ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#define VALGRIND_DISABLE_ERROR_REPORTING ((void)0)
#define VALGRIND_ENABLE_ERROR_REPORTING ((void)0)
#endif
pm_atomic_u32 pm_vg_active;

#ifdef PM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#define ACTIVE 1
#else
#define POISON(p, n) ((void)0)
#define UNPOISON(p, n) ((void)0)
#define ACTIVE RUNNING_ON_VALGRIND
#endif

/* Bytes the library moves whole (pages, cache lines), free memory among
 * them: not checked. */
#ifdef PM_ASAN
__attribute__((no_sanitize_address))
#endif
void pm_copy_raw(void *dst, const void *src, size_t n)
{
#ifdef PM_ASAN
    /* not memcpy: ASan's interceptor would check it (volatile, so that the
     * compiler does not turn the loop back into a call to it) */
    volatile unsigned char *d = dst;
    const volatile unsigned char *q = src;
    for (size_t i = 0; i < n; i++)
        d[i] = q[i];
#else
    VALGRIND_DISABLE_ERROR_REPORTING;
    memcpy(dst, src, n);
    VALGRIND_ENABLE_ERROR_REPORTING;
#endif
}

static bool known_set(struct pm_rt *rt, uint64_t off, bool on)
{
    uint64_t g = (off - rt->data_off) >> 4, bit = UINT64_C(1) << (g & 63);
    pm_atomic_u64 *w = &rt->vgknown[g >> 6];
    uint64_t old = on ? pm_fetch_or_acq_rel(w, bit) : pm_fetch_and_acq_rel(w, ~bit);
    return (old & bit) != 0;
}

void pm_vg_user_(struct pm_rt *rt, void *p, size_t n, bool zeroed)
{
    if (p == NULL || !ACTIVE || rt->vgknown == NULL)
        return;
    if (n == 0)
        n = pm_usable(rt, p);
    if (n == 0)
        return;
    UNPOISON(p, n);
    VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, zeroed);
    (void)known_set(rt, (uint64_t)((char *)p - rt->base), true);
}

void pm_vg_unuser_(struct pm_rt *rt, void *p)
{
    if (p == NULL || !ACTIVE || rt->vgknown == NULL)
        return;
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)rt->base;
    if (a < b || a - b >= pm_data_limit(rt))
        return;
    uint64_t off = a - b;
    size_t n = pm_usable(rt, p);
    /* only a free that will happen: a live block that is no root's or
     * open transaction's (those are refused, and reported as misuse) */
    if (n == 0 || pm_block_held(rt, UINT32_MAX, off) != 0)
        return;
    if (known_set(rt, off, false))
        VALGRIND_FREELIKE_BLOCK(p, 0);
    else
        VALGRIND_MAKE_MEM_NOACCESS(p, n);
    POISON(p, n);
}

void pm_vg_forget_(struct pm_rt *rt, void *p, size_t n)
{
    if (p == NULL || !ACTIVE || rt->vgknown == NULL)
        return;
    if (n == 0)
        n = pm_usable(rt, p);
    if (known_set(rt, (uint64_t)((char *)p - rt->base), false))
        VALGRIND_FREELIKE_BLOCK(p, 0);
    else if (n)
        VALGRIND_MAKE_MEM_NOACCESS(p, n);
    POISON(p, n);
}

void pm_vg_resized_(struct pm_rt *rt, void *p, size_t old_usable, size_t n)
{
    if (p == NULL || !ACTIVE || rt->vgknown == NULL)
        return;
    if (n > old_usable)
        UNPOISON(p, n);
    else
        POISON((char *)p + n, old_usable - n);
    uint64_t g = ((uint64_t)((char *)p - rt->base) - rt->data_off) >> 4;
    bool known = (pm_load_acquire(&rt->vgknown[g >> 6]) >> (g & 63)) & 1;
    if (known && n != old_usable)
        VALGRIND_RESIZEINPLACE_BLOCK(p, old_usable, n, 0);
}

void pm_vg_internal_(void *p, size_t n)
{
    if (p == NULL || !ACTIVE)
        return;
    UNPOISON(p, n);
    VALGRIND_MAKE_MEM_UNDEFINED(p, n);
}

void pm_vg_defined_(void *p, size_t n)
{
    if (p != NULL && RUNNING_ON_VALGRIND)
        VALGRIND_MAKE_MEM_DEFINED(p, n);
}

void pm_vg_quiet_(bool on)
{
    if (!RUNNING_ON_VALGRIND)
        return;
    if (on)
        VALGRIND_DISABLE_ERROR_REPORTING;
    else
        VALGRIND_ENABLE_ERROR_REPORTING;
}

void pm_vg_noaccess_(void *p, size_t n)
{
    if (p == NULL || !ACTIVE)
        return;
    POISON(p, n);
    VALGRIND_MAKE_MEM_NOACCESS(p, n);
}

void pm_vg_unmap(struct pm_rt *rt)
{
    /* only pages in the space were ever poisoned (not the reservation up to
     * the maximum: its shadow is an eighth of it, 8 GiB for 64 GiB) */
    (void)rt;
    uint64_t n = pm_load_acquire(&rt->n_pages);
    if (ACTIVE && rt->data != NULL && n != 0)
        UNPOISON(rt->data, n << rt->page_shift);
}

/* After an automatic transaction's abort put its pages back: every block
 * memcheck knew is forgotten (the abort may have taken it back, and
 * brought back blocks the transaction freed), and the whole space is
 * readable and defined again, as a fresh mapping is; pm_vg_open then
 * marks what is free, as at an open.  Before the rebuild, which reads
 * the headers put back: a superblock carved during the transaction in a
 * released one's pages had the old header's bitmap words marked as its
 * free blocks (an ASan report in the rebuild, the fuzzer found). */
void pm_vg_reset(struct pm_rt *rt)
{
    uint64_t n = pm_load_acquire(&rt->n_pages);
    if (!ACTIVE || rt->data == NULL || n == 0)
        return;
    UNPOISON(rt->data, n << rt->page_shift);
    if (!RUNNING_ON_VALGRIND || rt->vgknown == NULL)
        return;
    uint64_t words = ((n << rt->page_shift) / 16 + 63) / 64;
    for (uint64_t w = 0; w < words; w++) {
        uint64_t k = pm_load_relaxed(&rt->vgknown[w]);
        if (k == 0)
            continue;
        pm_store_relaxed(&rt->vgknown[w], 0);
        for (; k != 0; k &= k - 1)
            VALGRIND_FREELIKE_BLOCK(rt->data + ((w * 64 + pm_ctz64(k)) << 4), 0);
    }
    VALGRIND_MAKE_MEM_DEFINED(rt->data, n << rt->page_shift);
}

/* ---- open: what is free, memcheck may not touch ---- */

struct gap {
    uint64_t next;              /* the first page after the last run */
};

static int free_parts(struct pm_rt *rt, const struct pm_run *r, void *arg)
{
    struct gap *g = arg;
    if (r->first > g->next)
        pm_vg_noaccess(rt->data + (g->next << rt->page_shift),
                       (r->first - g->next) << rt->page_shift);
    g->next = r->last + 1;
    const struct pm_sb_header *h = r->h;
    if (h == NULL)
        return 0;
    char *d = r->at + h->data_start;
    for (uint32_t i = 0; i < h->n_blocks; i++) {
        uint64_t bit = UINT64_C(1) << (i & 63);
        if (!(pm_load_relaxed(&h->bits[i >> 6]) & bit) ||
            (pm_load_relaxed(&h->bits[h->n_words + (i >> 6)]) & bit))
            pm_vg_noaccess(d + (size_t)i * h->block_size, h->block_size);
    }
    return 0;
}

void pm_vg_open(struct pm_rt *rt)
{
    if (!ACTIVE || rt->vgknown == NULL)
        return;
    pm_store_relaxed(&pm_vg_active, 1u);
    struct gap g = {0};
    const char *why;
    uint64_t where;
    if (pm_walk_runs(rt, free_parts, &g, &why, &where) != 0)
        return;
    uint64_t n = pm_load_acquire(&rt->n_pages);
    if (n > g.next)
        pm_vg_noaccess(rt->data + (g.next << rt->page_shift), (n - g.next) << rt->page_shift);
}

/* ---- leaks ---- */

struct blk {
    uint64_t off, len;
    bool reached;
};

struct walk {
    struct blk *v;
    size_t n, cap;
};

static int add(struct walk *w, uint64_t off, uint64_t len)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        struct blk *nv = realloc(w->v, cap * sizeof *nv);
        if (nv == NULL)
            return -1;
        w->v = nv;
        w->cap = cap;
    }
    w->v[w->n++] = (struct blk){off, len, false};
    return 0;
}

static int each_block(struct pm_rt *rt, const struct pm_run *r, void *arg)
{
    struct walk *w = arg;
    uint64_t start = rt->data_off + (r->first << rt->page_shift);
    if (r->h == NULL)
        return add(w, start, (r->last - r->first + 1) << rt->page_shift);
    const struct pm_sb_header *h = r->h;
    for (uint32_t i = 0; i < h->n_blocks; i++) {
        uint64_t bit = UINT64_C(1) << (i & 63);
        if ((pm_load_relaxed(&h->bits[i >> 6]) & bit) &&
            !(pm_load_relaxed(&h->bits[h->n_words + (i >> 6)]) & bit) &&
            add(w, start + h->data_start + (uint64_t)i * h->block_size, h->block_size) != 0)
            return -1;
    }
    return 0;
}

/* The block holding offset x, or NULL. */
static struct blk *holding(struct walk *w, uint64_t x)
{
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w->v[mid].off + w->v[mid].len <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->n && w->v[lo].off <= x ? &w->v[lo] : NULL;
}

void pm_vg_close(struct pm_rt *rt)
{
    if (!RUNNING_ON_VALGRIND || rt->vgknown == NULL)
        return;
    struct walk w = {0};
    const char *why;
    uint64_t where;
    size_t *stack = NULL;
    if (pm_walk_runs(rt, each_block, &w, &why, &where) != 0)
        goto out;                       /* runs are in order: w is sorted */
    stack = malloc((w.n ? w.n : 1) * sizeof *stack);
    if (stack == NULL)
        goto out;
    size_t top = 0;
    struct persistent_root_iter it = {0};
    uint64_t tag;
    void *p;
    while (persistent_root_next((allocator_space_t *)rt->base, &it, &tag, &p) == 1) {
        struct blk *b = holding(&w, (uint64_t)((char *)p - rt->base));
        if (b != NULL && !b->reached) {
            b->reached = true;
            stack[top++] = (size_t)(b - w.v);
        }
    }
    uint64_t limit = pm_data_limit(rt), base = (uint64_t)(uintptr_t)rt->base;
    /* the program's bytes, undefined ones too: read as a conservative
     * collector reads them, nothing to report */
    VALGRIND_DISABLE_ERROR_REPORTING;
    while (top > 0) {
        struct blk *b = &w.v[stack[--top]];
        const unsigned char *q = (const unsigned char *)rt->base + b->off;
        for (uint64_t i = 0; i + 8 <= b->len; i += 8) {
            uint64_t x;
            memcpy(&x, q + i, 8);
            if (x >= base && x - base < limit)
                x -= base;              /* an address inside the space */
            if (x < rt->data_off || x >= limit)
                continue;
            struct blk *t = holding(&w, x);
            if (t != NULL && !t->reached) {
                t->reached = true;
                stack[top++] = (size_t)(t - w.v);
            }
        }
    }
    VALGRIND_ENABLE_ERROR_REPORTING;
    for (size_t i = 0; i < w.n; i++)
        if (w.v[i].reached && known_set(rt, w.v[i].off, false))
            VALGRIND_FREELIKE_BLOCK(rt->base + w.v[i].off, 0);
out:
    free(stack);
    free(w.v);
}
#endif

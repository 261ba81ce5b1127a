/* Large blocks: runs of whole pages with no header; the run bits say where
 * they start and end (layout.h).
 *
 * Order of persists (PMEM durability; each fenced before the next)
 *   alloc:   pages claimed (volatile); END set; START set (the commit)
 *   free:    START cleared (the commit); END cleared; pages released, or
 *            kept claimed by the freeing thread (pages.c)
 *   grow:    following pages claimed (the space grown first when they lie
 *            past its end); new END set; old END cleared (commit)
 *   shrink:  new END set (the commit); old END cleared; tail released
 * A crash between two steps leaves an END bit that belongs to no START,
 * which recovery clears.
 */
#include <errno.h>

#include "internal.h"

/* Whether a run of n pages, its first page aligned as pg_alloc aligns it,
 * fits in the free pages at the end of the space and what growth to the
 * maximum would add.  If not, no growth helps, and none is made: a call
 * that fails all the same would leave the file at its maximum (G5b). */
static bool growth_fits(struct pm_rt *rt, uint64_t n, uint64_t align_pages)
{
    uint64_t np = pm_load_acquire(&rt->n_pages);
    uint64_t last = np ? pg_prev_set(rt->used, np - 1) : PG_NONE;
    uint64_t lo = last == PG_NONE ? 0 : last + 1;
    uint64_t phase = rt->data_off >> rt->page_shift;
    lo += (align_pages - (lo + phase) % align_pages) % align_pages;
    return lo <= rt->max_pages && rt->max_pages - lo >= n;
}

uint64_t lg_reserve(struct pm_rt *rt, struct pm_trec *rec, size_t size,
                    size_t align, uint64_t *n_pages)
{
    uint64_t page = rt->page_size;
    if (size == 0 || align > PM_BASE_ALIGN) {
        errno = EINVAL;
        return PG_NONE;
    }
    if (size > (rt->max_pages << rt->page_shift)) {
        errno = ENOMEM;
        return PG_NONE;
    }
    uint64_t n = ((uint64_t)size + page - 1) >> rt->page_shift;
    uint64_t align_pages = align > page ? align >> rt->page_shift : 1;
    bool reclaimed = false;
    struct sb_starve st = {0, false, 0};
    uint64_t got, first = align_pages == 1 ? pg_cache_take(rec, n, n, &got) : PG_NONE;
    for (;;) {
        if (first == PG_NONE)
            first = pg_alloc(rt, n, align_pages);
        if (first != PG_NONE) {
            sb_starve_end(rt, &st);
            pm_hook(PM_HOOK_LARGE_CLAIM);
            *n_pages = n;
            return first;
        }
        /* what follows may touch this thread's superblocks (its spares,
         * held frees, a scavenge's give-back): a large malloc's flag names
         * none up to here (a publishing call's and a transaction's name
         * all, and this is nothing for them) */
        (void)sb_widen_any(rt, rec, UINT32_MAX);
        /* runs kept by threads, this one's held frees (PMEM) and its spare
         * superblocks first: growing past them wastes the file */
        if (!reclaimed) {
            reclaimed = true;
            bool runs = pm_tx_settle_own(rt, rec);
            runs |= pg_cache_reclaim(rt);
            if (sb_release_spares(rt, rec) || runs)
                continue;
        }
        uint64_t seen = pm_load_acquire(&rt->n_pages);
        if (growth_fits(rt, n, align_pages) &&
            pm_space_grow(rt, seen, n + align_pages - 1) == 0)
            continue;
        if (sb_starving(rt, rec, UINT32_MAX, &st))
            continue;
        sb_starve_end(rt, &st);
        errno = ENOMEM;
        return PG_NONE;
    }
}

void *lg_commit(struct pm_rt *rt, uint64_t first, uint64_t n)
{
    pm_marks_carved(&rt->ctl[first]);
    pg_bit_set(rt, rt->end_bits, first + n - 1);
    pg_bit_set(rt, rt->start_bits, first);      /* commit */
    return rt->data + (first << rt->page_shift);
}

void *lg_alloc(struct pm_rt *rt, struct pm_trec *rec, size_t size, size_t align)
{
    uint64_t n;
    uint64_t first = lg_reserve(rt, rec, size, align, &n);
    return first == PG_NONE ? NULL : lg_commit(rt, first, n);
}

bool lg_is_block(struct pm_rt *rt, const void *ptr, uint64_t *first,
                 uint64_t *last)
{
    uintptr_t p = (uintptr_t)ptr, d = (uintptr_t)rt->data;
    uint64_t n = pm_load_acquire(&rt->n_pages);
    if (p < d || p - d >= (n << rt->page_shift) || ((p - d) & (rt->page_size - 1)))
        return false;
    uint64_t f = (p - d) >> rt->page_shift;
    if (!pg_bit(rt->start_bits, f) || pg_bit(rt->kind_bits, f))
        return false;
    uint64_t l = pg_next_set(rt->end_bits, f, n);
    if (l == PG_NONE)
        return false;
    *first = f;
    *last = l;
    return true;
}

int lg_free(struct pm_rt *rt, struct pm_trec *rec, void *ptr)
{
    uint64_t first, last;
    if (!lg_is_block(rt, ptr, &first, &last))
        return PERSISTENT_E_BAD_POINTER;
    pm_atomic_u64 *w = &rt->start_bits[first >> 6];
    uint64_t bit = UINT64_C(1) << (first & 63);
    /* two threads freeing the same block: only one clears the bit */
    if (!(pm_fetch_and_acq_rel(w, ~bit) & bit))
        return PERSISTENT_E_DOUBLE_FREE;
    pm_persist(rt, w, sizeof *w);                   /* commit */
    pg_bit_clear(rt, rt->end_bits, last);
    pm_hook(PM_HOOK_LARGE_FREED);
    pg_release_cached(rt, rec, first, last - first + 1);
    return 0;
}

size_t lg_usable(struct pm_rt *rt, const void *ptr)
{
    uint64_t first, last;
    if (!lg_is_block(rt, ptr, &first, &last))
        return 0;
    return (size_t)((last - first + 1) << rt->page_shift);
}

/* Claims the add pages after page last.  A block that ends in the last
 * pages of the space, with only free pages after it, grows the space to
 * take them: a buffer grown again and again (realloc by 1.5) then stays
 * where it is instead of being copied to the end of an ever larger file,
 * its old runs left behind as free pages. */
static bool claim_after(struct pm_rt *rt, struct pm_trec *rec, uint64_t last, uint64_t add)
{
    if (add > rt->max_pages - (last + 1))
        return false;               /* past the maximum: no growth helps */
    /* pages [last + 1, p) are claimed: taken back from the runs this
     * thread keeps, or claimed between them */
    uint64_t p = last + 1, end = last + 1 + add;
    while (p < end) {
        uint64_t k = pg_cache_take_at(rec, p, end - p);
        if (k != 0) {
            p += k;
            continue;
        }
        uint64_t stop = pg_cache_next(rec, p, end);
        if (pg_claim_at(rt, p, stop - p)) {
            p = stop;
            continue;
        }
        /* as often as growth succeeds, as lg_reserve: each success raised
         * the page count (up to the maximum), perhaps only to another
         * thread's smaller target, which this call finished (a helper's
         * hunt: two of those, and a cap of two growths, failed a realloc
         * that fitted in place at the maximum) */
        uint64_t n = pm_load_acquire(&rt->n_pages);
        if (stop <= n || pg_next_set(rt->used, p, n) != PG_NONE ||
            pm_space_grow(rt, n, stop - n) != 0) {
            /* a used page in the way, no growth helps */
            if (p > last + 1)
                pg_release(rt, last + 1, p - (last + 1));
            return false;
        }
    }
    return true;
}

bool lg_resize_in_place(struct pm_rt *rt, struct pm_trec *rec, void *ptr, size_t new_size)
{
    uint64_t first, last;
    /* a size no space can hold would wrap the page count below */
    if (!lg_is_block(rt, ptr, &first, &last) || new_size == 0 ||
        new_size > (rt->max_pages << rt->page_shift))
        return false;
    uint64_t n_old = last - first + 1;
    uint64_t n_new = ((uint64_t)new_size + rt->page_size - 1) >> rt->page_shift;
    if (n_new == n_old)
        return true;
    if (n_new < n_old) {
        /* memcheck first: once released, the tail may be another thread's
         * block, which a late poisoning would make unreadable */
        pm_vg_resized(rt, ptr, n_old << rt->page_shift, n_new << rt->page_shift);
        pg_bit_set(rt, rt->end_bits, first + n_new - 1);  /* commit */
        pg_bit_clear(rt, rt->end_bits, last);
        pg_release_large(rt, first + n_new, n_old - n_new);
        pm_hook(PM_HOOK_LARGE_SHRUNK);
        return true;
    }
    if (!claim_after(rt, rec, last, n_new - n_old))
        return false;
    if (!pg_back(rt, last + 1, n_new - n_old)) {
        pg_release(rt, last + 1, n_new - n_old);
        return false;
    }
    pg_bit_set(rt, rt->end_bits, first + n_new - 1);
    pg_bit_clear(rt, rt->end_bits, last);                 /* commit */
    pm_vg_resized(rt, ptr, n_old << rt->page_shift, n_new << rt->page_shift);
    return true;
}

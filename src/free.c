/* The free entry point: finds whether a pointer is a small block (through
 * the page map), a large run (through the run bits) or neither, and checks
 * it is a live block before anything is changed.  Misuse goes to the error
 * hook and changes nothing. */
#include "internal.h"

void pm_free_block(struct pm_rt *rt, struct pm_trec *rec, void *ptr)
{
    uint32_t s, idx;
    struct pm_sb_header *h;
    uint64_t off = (uint64_t)((char *)ptr - rt->base);
    int r = sb_locate(rt, ptr, &s, &h, &idx);
    if (r == 0) {
        r = pm_block_held(rt, s, off);
        if (r == 0)
            pm_free_small(rt, rec, s, h, idx);
    } else if (r == 1) {
        r = pm_block_held(rt, UINT32_MAX, off);
        if (r == 0)
            r = lg_free(rt, ptr);
    }
    if (r != 0)
        pm_misuse(rt, r, ptr, "persistent_free");
}

/* A small block's superblock and index, from the page map; false for
 * anything else (a large block or not a block start: the general path
 * sorts those out). */
static inline bool locate_small(struct pm_rt *rt, const void *ptr, uint32_t *sp,
                                struct pm_sb_header **hp, uint32_t *ip)
{
    uint64_t off = (uint64_t)((uintptr_t)ptr - (uintptr_t)rt->data);
    if (PM_UNLIKELY(off >= (pm_load_relaxed(&rt->n_pages) << rt->page_shift)))
        return false;
    uint32_t f1 = pm_load_relaxed(&rt->pagemap[off >> rt->page_shift]);
    if (PM_UNLIKELY(f1 == 0))
        return false;
    struct pm_sb_header *h = sb_header(rt, f1 - 1);
    if (PM_UNLIKELY(h->cls >= rt->n_small))
        return false;
    const struct pm_class *k = &rt->cls[h->cls];
    uint64_t x = (uint64_t)((uintptr_t)ptr - (uintptr_t)h) - h->data_start;
    uint64_t idx = (x * k->recip) >> 40;
    if (PM_UNLIKELY(idx >= h->n_blocks || idx * k->block_size != x))
        return false;
    *sp = f1 - 1;
    *hp = h;
    *ip = (uint32_t)idx;
    return true;
}

/* The owner freeing one of its own small blocks (the anchor said so), in
 * one piece: check, clear the bit.  A revocation in progress, misuse or a
 * superblock emptied are left to the general path; false then, with
 * nothing changed. */
static inline bool free_fast(struct pm_rt *rt, struct pm_trec *rec, uint32_t s,
                             struct pm_sb_header *h, uint32_t idx)
{
    uint32_t c = h->cls;
    uint32_t w = idx >> 6;
    uint64_t bit = UINT64_C(1) << (idx & 63);
    pm_atomic_u64 *aw = &h->bits[w];
    pm_op_begin(rec);
    /* revokes after busy: see the revocation protocol in superblock.c */
    uint64_t word = pm_load_relaxed(aw);
    struct pm_tcache *t = &rec->cls[c];
    if (PM_UNLIKELY(pm_load_relaxed(&rec->revokes) != rec->seen_revokes ||
                    !(word & bit) || (pm_load_relaxed(&h->bits[h->n_words + w]) & bit) ||
                    ((word & ~bit) == 0 && t->sb != s))) {
        pm_op_end(rec);
        return false;
    }
    pm_store_relaxed(aw, word & ~bit);
    pm_persist(rt, aw, sizeof *aw);
    if (t->sb == s) {
        if (t->word == w)
            t->mask |= bit;         /* reuse it soon: it is in cache */
        else
            t->freemap |= UINT64_C(1) << w;
    } else {
        pm_atomic_u16 *f = &rt->ctl[s].frees;   /* set aside: count it */
        pm_store_relaxed(f, pm_load_relaxed(f) + 1);
    }
    pm_op_end(rec);
    return true;
}

void persistent_free(allocator_space_t *space, void *ptr)
{
    if (ptr == NULL)
        return;
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (PM_UNLIKELY(rec == NULL)) {
        pm_misuse(pm_rt_of(space), PERSISTENT_E_BAD_POINTER, ptr,
                  "persistent_free (space not open for writing here)");
        return;
    }
    pm_vg_unuser(rt, ptr);
    uint32_t s, idx;
    struct pm_sb_header *h;
    if (PM_LIKELY(locate_small(rt, ptr, &s, &h, &idx))) {
        int held = pm_block_held(rt, s, (uint64_t)((char *)ptr - rt->base));
        if (PM_UNLIKELY(held != 0)) {
            pm_misuse(rt, held, ptr, "persistent_free");
            return;
        }
        uint64_t a = pm_load_relaxed(&rt->ctl[s].anchor);
        if (PM_LIKELY(pm_anchor_owner(a) == rec->id)) {
            if (pm_anchor_state(a) == PM_SB_OWNED && free_fast(rt, rec, s, h, idx))
                return;
            pm_free_small(rt, rec, s, h, idx);  /* re-adoption, misuse, ... */
            return;
        }
        /* another thread's superblock: atomic bits only, no busy flag */
        sb_free_remote(rt, rec, s, h, idx);
        return;
    }
    pm_free_block(rt, rec, ptr);
}

/* The allocation entry points: malloc's fast path, calloc, aligned
 * allocation, usable size and realloc.
 *
 * The fast path takes the next free block of the thread's current word:
 * a bit from the cached mask, one plain load and store of the allocation
 * word (this thread owns the superblock, see superblock.c), no atomic
 * read-modify-write.  Everything else is sb_refill_alloc(). */
#include <errno.h>
#include <string.h>

#include "internal.h"

static void *large_alloc(struct pm_rt *rt, struct pm_trec *rec, size_t size,
                         size_t align)
{
    /* pages, none of this thread's superblocks, until the search finds no
     * room (lg_reserve widens the flag before its reclaim and scavenge) */
    pm_op_enter_as(rt, rec, PM_BUSY_NONE);
    void *p = lg_alloc(rt, rec, size, align);
    pm_op_end(rec);
    return p;
}

/* Everything but the fast path; called inside the operation.  align: what
 * the caller needs (class c's blocks all have it; a fallback must too). */
__attribute__((noinline)) static void *small_alloc_slow(struct pm_rt *rt,
                                                        struct pm_trec *rec,
                                                        uint32_t c, size_t align)
{
    pm_auto_gate(rt, rec);
    void *p = sb_refill_alloc(rt, rec, c, align);
    if (PM_UNLIKELY(p == NULL))
        /* no superblock to be had for the class: a run of pages is still a
         * block of that size (G5b: no false exhaustion) */
        p = large_alloc(rt, rec, pm_class_size(c), align > 16 ? align : 0);
    return p;
}

/* The next free block of the class's current word, inside the operation;
 * m is t->mask, not 0, and w is t->aword: one plain load and store of the
 * allocation word.  The bit is not yet durable (taken_end). */
__attribute__((always_inline)) static inline void *
take_cached(struct pm_tcache *t, uint64_t m, pm_atomic_u64 *w)
{
    uint64_t i = pm_ctz64_nz(m);
    t->mask = m & (m - 1);
    pm_store_relaxed(w, pm_load_relaxed(w) | (UINT64_C(1) << i));
    return t->wbase + i * t->bsize;
}

/* Where the mode flushes (PMEM, and every mode under the crash tests): the
 * bit durable before the block is handed out.  Out of line, so that the
 * fast path around it needs no stack frame. */
__attribute__((noinline)) static void *taken_durable(struct pm_rt *rt,
                                                     struct pm_trec *rec,
                                                     pm_atomic_u64 *w, void *p)
{
    pm_persist(rt, w, sizeof *w);
    pm_op_end(rec);
    return p;
}

/* Ends the operation of take_cached. */
__attribute__((always_inline)) static inline void *
taken_end(struct pm_rt *rt, struct pm_trec *rec, pm_atomic_u64 *w, void *p)
{
    if (PM_UNLIKELY(rt->flush != NULL))
        return taken_durable(rt, rec, w, p);
    pm_op_end(rec);
    return p;
}

/* always_inline: a call would cost as much again as the cached case (a
 * GNU attribute). */
__attribute__((always_inline)) static inline void *
small_alloc(struct pm_rt *rt, struct pm_trec *rec, uint32_t c, size_t align)
{
    struct pm_tcache *t = &rec->cls[c];
    /* class c's books only (superblock.c, refill_in: what goes past them
     * widens the flag first) */
    pm_op_begin_as(rec, PM_BUSY_CLASS(c));
    uint64_t m = t->mask;
    if (PM_LIKELY(m != 0 && pm_load_relaxed(&rec->revokes) == rec->seen_revokes)) {
        pm_atomic_u64 *w = t->aword;
        void *p = take_cached(t, m, w);
        return taken_end(rt, rec, w, p);
    }
    return small_alloc_slow(rt, rec, c, align);
}

/* All of malloc; persistent_malloc tries its commonest case first. */
__attribute__((noinline)) static void *malloc_general(allocator_space_t *space,
                                                      size_t size)
{
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (PM_UNLIKELY(rec == NULL))
        return NULL;
    void *p;
    if (PM_LIKELY(size - 1 < (size_t)rt->max_small))
        p = small_alloc(rt, rec, pm_size_class(size), 16);
    else if (size == 0)
        return NULL;
    else
        p = large_alloc(rt, rec, size, 0);
    pm_vg_user(rt, p, 0, false);
    return p;
}

/* malloc_general for the fast path once it has found pm_tls.space to be
 * the caller's space, so that it keeps no register for it (as
 * free_general_here does). */
__attribute__((noinline)) static void *malloc_general_here(size_t size)
{
    return malloc_general((allocator_space_t *)pm_tls.space, size);
}

/* The fast path's next step when the current word is used up but the
 * superblock's free-word hint names others: the next word with a free
 * block and a block from it, still inside the operation the fast path
 * began and without the general path's lookups (a tenth of larson's
 * mallocs came here through malloc_general and refill).  It takes what
 * the fast path found from pm_tls again (nothing between writes it), so
 * that the fast path keeps no register for it. */
__attribute__((noinline)) static void *malloc_next_word(size_t size)
{
    allocator_space_t *space = (allocator_space_t *)pm_tls.space;
    struct pm_rt *rt = pm_tls.rt;
    struct pm_trec *rec = pm_tls.rec;
    uint32_t c = pm_size_class(size);
    struct pm_tcache *t = &rec->cls[c];
    /* the fast path's flag names t->aword, a word of the current
     * superblock (set_current puts it there before any is chosen); widened
     * to the class all the same, so that what a thief may take here does
     * not rest on that: the counter is read again after it */
    pm_op_widen_to(rec, PM_BUSY_CLASS(c));
    if (PM_LIKELY(pm_load_relaxed(&rec->revokes) == rec->seen_revokes &&
                  sb_next_word(rt, t))) {
        pm_atomic_u64 *w = t->aword;
        void *p = take_cached(t, t->mask, w);
        p = taken_end(rt, rec, w, p);
        pm_vg_user(rt, p, 0, false);
        return p;
    }
    pm_op_end(rec);
    return malloc_general(space, size);
}

/* The fast path: the space this thread used last (its record cached), a
 * size class (up to 64 KiB; a table lookup up to 1 KiB, until 2026-12-04
 * the fast path's limit), a block left in the class's
 * current word and no revocation.  It changes nothing until it is sure
 * and otherwise ends in a tail call, so it needs no stack frame (see
 * docs/design.md "Small blocks" for what that saves). */
void *persistent_malloc(allocator_space_t *space, size_t size)
{
    if (PM_LIKELY(pm_tls.space == space &&
                  pm_tls.epoch == pm_load_relaxed(&pm_close_epoch))) {
        /* a class past the space's last (rt->n_small: a small space serves
         * it from page runs) never has a superblock, so its mask is 0 */
        /* a size_t index: as an int promoted from the table's byte, gcc 12
         * computed t's address twice (3 instructions more, 2026-12-03) */
        size_t c;
        if (PM_LIKELY(size - 1 < 1024))
            c = pm_class_of_granule[(size + 15) >> 4];  /* one test, as before */
        else if (size - 1 < PM_MAX_SMALL)
            c = pm_size_class(size);
        else
            return malloc_general_here(size);
        struct pm_rt *rt = pm_tls.rt;
        struct pm_trec *rec = pm_tls.rec;
        struct pm_tcache *t = &rec->cls[c];
        /* the word it takes from, if m is not 0, names the operation's
         * superblock for a thief: it takes the thread's others while this
         * thread is stopped here (pm_op_begin_word) */
        pm_atomic_u64 *w = t->aword;
        pm_op_begin_word(rec, w);
        uint64_t m = t->mask;
        if (PM_LIKELY(m != 0 && pm_load_relaxed(&rec->revokes) == rec->seen_revokes)) {
            void *p = take_cached(t, m, w);
            p = taken_end(rt, rec, w, p);
            pm_vg_user(rt, p, 0, false);
            return p;
        }
        if (t->freemap != 0)
            return malloc_next_word(size);
        pm_op_end(rec);
        return malloc_general_here(size);
    }
    return malloc_general(space, size);
}

void *pm_alloc(struct pm_rt *rt, struct pm_trec *rec, size_t size, size_t align)
{
    if (size == 0)
        size = 1;
    if (align <= 16) {
        if (size <= rt->max_small)
            return small_alloc(rt, rec, pm_size_class(size), 16);
        return large_alloc(rt, rec, size, 0);
    }
    if (size <= rt->max_small && align <= rt->page_size) {
        /* a class whose every block is aligned enough */
        for (uint32_t c = pm_size_class(size); c < rt->n_small; c++)
            if (rt->cls[c].align >= align)
                return small_alloc(rt, rec, c, align);
    }
    return large_alloc(rt, rec, size, align);
}

void *persistent_calloc(allocator_space_t *space, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = persistent_malloc(space, total);
    if (p != NULL) {
        struct pm_rt *rt;
        struct pm_trec *rec = pm_thread_rec(space, &rt);   /* as the malloc's */
        pm_fill_block(rt, rec, p, NULL, total);
    }
    return p;
}

void *persistent_aligned_alloc(allocator_space_t *space, size_t alignment,
                               size_t size)
{
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 ||
        alignment > PM_BASE_ALIGN) {
        errno = EINVAL;
        return NULL;
    }
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (rec == NULL)
        return NULL;
    if (size == 0)
        return NULL;
    void *p = pm_alloc(rt, rec, size, alignment);
    pm_vg_user(rt, p, 0, false);
    return p;
}

/* 0 for anything but a live block of the program's: the library's own
 * blocks (a log, a table) are none, so that realloc, usable_size,
 * realloc_into, root_publish and tx_realloc given a stale pointer to one
 * report it instead of resizing or naming it. */
size_t pm_usable(struct pm_rt *rt, const void *ptr)
{
    uint32_t s, idx;
    struct pm_sb_header *h;
    uint64_t off = (uint64_t)((uintptr_t)ptr - (uintptr_t)rt->base);
    int r = sb_locate(rt, ptr, &s, &h, &idx);
    if (r == 1) {
        size_t n = lg_usable(rt, ptr);
        return n && pm_own_block(rt, off) ? 0 : n;
    }
    if (r != 0)
        return 0;
    uint64_t bit = UINT64_C(1) << (idx & 63);
    if (!(pm_load_relaxed(&h->bits[idx >> 6]) & bit) ||
        (pm_load_relaxed(&h->bits[h->n_words + (idx >> 6)]) & bit))
        return 0;
    if (PM_UNLIKELY(pm_load_relaxed(&rt->ctl[s].marks) != 0) && pm_own_block(rt, off))
        return 0;
    return h->block_size;
}

size_t pm_usable_settled(struct pm_rt *rt, const void *ptr)
{
    uint64_t seen = pm_auto_settle(rt);
    pm_hook(PM_HOOK_LOOKUP_SETTLED);
    for (;;) {
        size_t n = pm_usable(rt, ptr);
        if (n != 0 || !pm_auto_moved(rt, seen))
            return n;
        seen = pm_auto_settle(rt);
    }
}

/* pm_fill_block past one piece (PM_FILL_PIECE): an operation keeps an
 * automatic transaction's begin waiting (it refuses while another thread
 * is inside one), so a copy of many megabytes is several.  (Until
 * 2026-12-07 an operation also kept the thread's superblocks from a
 * thief's revocation, and a long one would let a thread that needed room
 * give up first, G5b; a fill's operation now names none of them,
 * PM_BUSY_NONE.)
 * Inside operations: another thread's automatic transaction that began
 * between the allocation and these writes (the thread not inside a call
 * then) made them plain writes of the program's, caught at a page's
 * first write, and its abort stopped the process (a review: a realloc's
 * copy).  Now they wait at the gate for its end, as any call does, and
 * go on, on the heap the commit or the abort left; the block, allocated
 * before that transaction began, is the caller's on either. */
void pm_fill_pieces(struct pm_rt *rt, struct pm_trec *rec, void *dst, const void *src,
                    size_t n)
{
    char *d = dst;
    const char *s = src;
    while (n > 0) {
        size_t k = n < PM_FILL_PIECE ? n : PM_FILL_PIECE;
        pm_fill_piece(rt, rec, d, s, k);
        d += k;
        s = s != NULL ? s + k : NULL;
        n -= k;
    }
}

size_t persistent_usable_size(allocator_space_t *space, const void *ptr)
{
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL || ptr == NULL)
        return 0;
    if (!rt->can_alloc) {
        /* a reader's page map is as of its open and the file may be
         * damaged: ask the run bits */
        pm_follow(rt);
        uintptr_t p = (uintptr_t)ptr, b = (uintptr_t)rt->base;
        return p > b && p - b < rt->reserve_size ? (size_t)pm_block_live(rt, p - b) : 0;
    }
    return pm_usable_settled(rt, ptr);
}

/* A realloc's move of the block at p (us usable bytes) to a new one of n.
 * The old block is freed the general way, which looks it up again: even
 * where the caller has found it, pm_alloc may have waited for another
 * thread's automatic transaction, and that one's abort rebuilds the page
 * map and the marks (the block may be a root's again, its superblock
 * gone). */
static void *realloc_move(struct pm_rt *rt, struct pm_trec *rec, void *p, size_t n,
                          size_t us)
{
    void *q = pm_alloc(rt, rec, n, 0);
    if (q == NULL)
        return NULL;
    pm_vg_user(rt, q, 0, false);
    pm_fill_block(rt, rec, q, p, n < us ? n : us);
    pm_vg_unuser(rt, p);
    pm_free_block(rt, rec, p);
    return q;
}

/* realloc of a small block in a superblock with no mark (no root's,
 * transaction's or library's block in it): one lookup through the page
 * map, as free's fast path makes, where the general way looked the block
 * up twice to answer (its usable size, whether it is small) and asked
 * the four mark bitmaps whether it may move.  The same answers: the same
 * misuse report for a block that is not live, the same rule for staying
 * in place. */
static void *realloc_small(struct pm_rt *rt, struct pm_trec *rec, void *p, size_t n,
                           struct pm_sb_header *h, uint32_t c, uint32_t idx, uint32_t nb)
{
    uint64_t bit = UINT64_C(1) << (idx & 63);
    if (!(pm_load_relaxed(&h->bits[idx >> 6]) & bit) ||
        (pm_load_relaxed(&h->bits[((nb + 63) >> 6) + (idx >> 6)]) & bit)) {
        pm_misuse(rt, PERSISTENT_E_BAD_POINTER, p, "persistent_realloc");
        errno = EINVAL;
        return NULL;
    }
    size_t us = rec->cls[c].bsize;      /* the class's, the header's too */
    if (n <= us && (us <= 64 || n > us / 2))
        return p;                       /* same block, little waste */
    int e = errno;
    void *q = realloc_move(rt, rec, p, n, us);  /* not at h: see realloc_move */
    if (q == NULL && n <= us) {
        errno = e;
        return p;   /* a shrink with no room for the smaller block: it stays */
    }
    return q;
}

/* The lookups before the operations wait for another thread's automatic
 * transaction first, and a miss looks again after an abort's rebuild, as
 * free's general way does: a realloc of a live block in the rebuild was
 * refused as a foreign pointer (a review). */
static void *realloc_core(struct pm_rt *rt, struct pm_trec *rec, void *p, size_t n)
{
    uint32_t s, c, idx, nb;
    struct pm_sb_header *h;
    uint64_t seen = pm_auto_settle(rt);
    pm_hook(PM_HOOK_LOOKUP_SETTLED);
    size_t us;
    for (;;) {
        if (PM_LIKELY(pm_locate_small(rt, rec, p, &s, &h, &c, &idx, &nb)) &&
            PM_LIKELY(pm_load_relaxed(&rt->ctl[s].marks) == 0))
            return realloc_small(rt, rec, p, n, h, c, idx, nb);
        us = pm_usable(rt, p);
        if (us != 0 || !pm_auto_moved(rt, seen))
            break;
        seen = pm_auto_settle(rt);
    }
    if (us == 0) {
        pm_misuse(rt, PERSISTENT_E_BAD_POINTER, p, "persistent_realloc");
        errno = EINVAL;
        return NULL;
    }
    bool small = sb_locate(rt, p, &s, &h, &idx) == 0;
    if (small) {
        if (n <= us && (us <= 64 || n > us / 2))
            return p;                   /* same block, little waste */
    } else if (pm_snap_held(rt, (uint64_t)((char *)p - rt->base))) {
        /* an open transaction's snapshot is in it: not resized, not moved */
        pm_misuse(rt, PERSISTENT_E_TX_BLOCK, p, "persistent_realloc");
        errno = EINVAL;
        return NULL;
    } else if (n > rt->max_small || n > us / 2) {
        /* pages only: none of this thread's superblocks */
        pm_op_enter_as(rt, rec, PM_BUSY_NONE);
        bool ok = lg_resize_in_place(rt, rec, p, n);
        pm_op_end(rec);
        if (ok)
            return p;                   /* lg_resize_in_place told memcheck */
    }
    int held = pm_block_held(rt, UINT32_MAX, (uint64_t)((char *)p - rt->base));
    if (held != 0) {
        /* moving it would free a root's block, or an open transaction's */
        pm_misuse(rt, held, p, "persistent_realloc");
        errno = EINVAL;
        return NULL;
    }
    int e = errno;
    void *q = realloc_move(rt, rec, p, n, us);
    if (q == NULL && n <= us) {
        /* a shrink with no room for the smaller block: it stays, a large
         * one cut to the pages it needs where it can be (no snapshot of an
         * open transaction is in it: looked at above) */
        if (!small) {
            pm_op_enter_as(rt, rec, PM_BUSY_NONE);
            (void)lg_resize_in_place(rt, rec, p, n);
            pm_op_end(rec);
        }
        errno = e;
        return p;
    }
    return q;
}

bool persistent_realloc_impl(allocator_space_t *space, void **ptr, size_t new_size)
{
    if (ptr == NULL || *ptr == NULL || new_size == 0) {
        errno = EINVAL;
        return false;
    }
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (rec == NULL)
        return false;
    void *q = realloc_core(rt, rec, *ptr, new_size);
    if (q == NULL)
        return false;
    *ptr = q;
    return true;
}

void *persistent_reallocate(allocator_space_t *space, void *ptr, size_t size)
{
    if (ptr == NULL)
        return persistent_malloc(space, size);
    if (size == 0) {
        persistent_free(space, ptr);
        return NULL;
    }
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (rec == NULL)
        return NULL;
    return realloc_core(rt, rec, ptr, size);
}

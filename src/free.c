/* The free entry point: finds whether a pointer is a small block (through
 * the page map), a large run (through the run bits) or neither, and checks
 * it is a live block before anything is changed.  Misuse goes to the error
 * hook and changes nothing. */
#include <errno.h>

#include "internal.h"

/* pm_free_block without the report of a refusal */
static int free_block_quiet(struct pm_rt *rt, struct pm_trec *rec, void *ptr)
{
    uint32_t s, idx;
    struct pm_sb_header *h;
    uint64_t off = (uint64_t)((char *)ptr - rt->base);
    int r = sb_locate(rt, ptr, &s, &h, &idx);
    if (r == 0) {
        r = pm_block_held(rt, s, off);
        if (r == 0)     /* the class as sb_locate found it valid: its own
                           check inside the operation judges it again */
            pm_free_small(rt, rec, s, h, idx, h->cls);
    } else if (r == 1) {
        /* a large block's marks are counted at its first page, which its
         * start is; no mark can be at a pointer that is not one */
        uint64_t page = (off - rt->data_off) >> rt->page_shift;
        r = pm_block_held(rt, page < rt->max_pages ? (uint32_t)page : UINT32_MAX, off);
        if (r == 0) {
            /* inside an operation, as a large malloc is: an automatic
             * transaction's abort, which rebuilds the used bitmap from the
             * file, must see that this thread is between the file's bits
             * and its volatile release of the pages; it touches none of
             * this thread's superblocks */
            pm_op_enter_as(rt, rec, PM_BUSY_NONE);
            r = lg_free(rt, rec, ptr);
            pm_op_end(rec);
        }
    }
    return r;
}

/* A lookup before the operation, as free's general way makes it: another
 * thread's automatic transaction waited for, and a refusal looked at again
 * after an abort's rebuild (a review: a realloc's move freed the old block
 * in one, its lookup missed, and the block was reported and leaked). */
int pm_free_block(struct pm_rt *rt, struct pm_trec *rec, void *ptr)
{
    uint64_t seen = pm_auto_settle(rt);
    pm_hook(PM_HOOK_LOOKUP_SETTLED);
    int r;
    while ((r = free_block_quiet(rt, rec, ptr)) != 0 && pm_auto_moved(rt, seen))
        seen = pm_auto_settle(rt);
    if (r != 0)
        pm_misuse(rt, r, ptr, "persistent_free");
    return r;
}

/* What a free of ptr would say, changing nothing: 0 when it would free
 * it.  In free's order: marks first, then the bits.  A small block is
 * found by its page map entry, as free finds it (the header's fields are
 * not trusted: a stray write there could send the bitmap's index
 * anywhere, a review found). */
static int free_judge(struct pm_rt *rt, const struct pm_trec *rec, const void *ptr)
{
    uint32_t s, c, idx, n;
    struct pm_sb_header *h;
    uint64_t off = (uint64_t)((const char *)ptr - rt->base);
    if (pm_locate_small(rt, rec, ptr, &s, &h, &c, &idx, &n)) {
        int r = pm_block_held(rt, s, off);
        if (r != 0)
            return r;
        /* not live, or a pending remote free: a double free */
        uint64_t bit = UINT64_C(1) << (idx & 63);
        uint32_t w = idx >> 6, n_words = (n + 63) >> 6;     /* n <= PM_SB_MAX_BLOCKS */
        if (!(pm_load_acquire(&h->bits[w]) & bit) ||
            (pm_load_acquire(&h->bits[n_words + w]) & bit))
            return PERSISTENT_E_DOUBLE_FREE;
        return 0;
    }
    int r = sb_locate(rt, ptr, &s, &h, &idx);
    if (r == 0)                         /* a header that says a block its entry does not */
        return PERSISTENT_E_BAD_POINTER;
    if (r == 1) {
        if (pm_usable(rt, ptr) == 0)    /* not a large block's start */
            return PERSISTENT_E_BAD_POINTER;
        uint64_t page = (off - rt->data_off) >> rt->page_shift;
        return pm_block_held(rt, page < rt->max_pages ? (uint32_t)page : UINT32_MAX, off);
    }
    return r;
}

int persistent_free_check(allocator_space_t *space, const void *ptr)
{
    if (ptr == NULL)
        return 0;
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (rec == NULL)
        return -errno;
    /* as free's lookup: after another thread's automatic transaction, and
     * again after an abort's rebuild */
    uint64_t seen = pm_auto_settle(rt);
    int r;
    while ((r = free_judge(rt, rec, ptr)) != 0 && pm_auto_moved(rt, seen))
        seen = pm_auto_settle(rt);
    return r;
}

/* All of free; persistent_free tries its commonest case first. */
__attribute__((noinline)) static void free_general(allocator_space_t *space,
                                                   void *ptr)
{
    if (ptr == NULL)
        return;
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (PM_UNLIKELY(rec == NULL)) {
        pm_misuse(pm_rt_of(space), PERSISTENT_E_BAD_POINTER, ptr,
                  errno == EAGAIN ? "persistent_free (too many threads in the space: "
                                    "the block is left as it is)"
                  : errno == EMFILE ? "persistent_free (this thread uses too many "
                                      "spaces: the block is left as it is)"
                                    : "persistent_free (space not open for writing here)");
        return;
    }
    pm_vg_unuser(rt, ptr);
    uint64_t seen = pm_auto_settle(rt);
    pm_hook(PM_HOOK_FREE_SETTLED);
again:;
    uint32_t s, c, idx, n;
    struct pm_sb_header *h;
    if (PM_LIKELY(pm_locate_small(rt, rec, ptr, &s, &h, &c, &idx, &n))) {
        int held = pm_block_held(rt, s, (uint64_t)((char *)ptr - rt->base));
        if (PM_UNLIKELY(held != 0)) {
            if (pm_auto_moved(rt, seen)) {
                seen = pm_auto_settle(rt);
                goto again;
            }
            pm_misuse(rt, held, ptr, "persistent_free");
            return;
        }
        uint64_t a = pm_load_relaxed(&rt->ctl[s].anchor);
        if (pm_anchor_owner(a) == rec->id) {
            pm_free_small(rt, rec, s, h, idx, c);  /* re-adoption, misuse, ... */
            return;
        }
        /* another thread's superblock: atomic bits only (inside an
         * operation for an automatic transaction's sake: pm_auto_gate),
         * none of this thread's superblocks, as in the fast path */
        pm_op_enter_as(rt, rec, PM_BUSY_NONE);
        sb_free_remote(rt, rec, s, h, idx, (n + 63) >> 6, ptr);
        pm_op_end(rec);
        return;
    }
    int r = free_block_quiet(rt, rec, ptr);
    if (r != 0 && pm_auto_moved(rt, seen)) {
        seen = pm_auto_settle(rt);
        goto again;
    }
    if (r != 0)
        pm_misuse(rt, r, ptr, "persistent_free");
}

/* free_general for the fast path, which found pm_tls.space to be the
 * caller's space (so that it need not keep that in a register: fewer
 * registers to save).  Nothing on the way writes pm_tls (a signal handler
 * calling the library could; no call is async-signal-safe).  pm_tls keeps
 * the handle const; it is the caller's. */
__attribute__((noinline)) static void free_general_here(void *ptr)
{
    free_general((allocator_space_t *)pm_tls.space, ptr);
}

/* Where the mode flushes (PMEM, and every mode under the crash tests): the
 * cleared bit durable before the operation ends.  Out of line, so that
 * the fast path around it needs no stack frame. */
__attribute__((noinline)) static void freed_durable(struct pm_rt *rt,
                                                    struct pm_trec *rec,
                                                    pm_atomic_u64 *aw)
{
    pm_persist(rt, aw, sizeof *aw);
    pm_op_end(rec);
}

/* The fast path's second half, for a superblock the thread owns (the
 * class's current one, or one its anchor says; a revocation shows in the
 * counter read after busy is raised): true when the block is freed.
 * Whether it is the class's current superblock decides only what is noted
 * where, and that is done with masks, not branches: in larson's random
 * frees the two cases come in no order, and a branch on them was
 * mispredicted on almost every other free (docs/design.md "Small
 * blocks"). */
__attribute__((always_inline)) static inline bool
free_owned(struct pm_rt *rt, struct pm_trec *rec, struct pm_tcache *t,
           struct pm_sbctl *ctl, pm_atomic_u64 *aw, size_t n_words, uint32_t idx,
           bool current)
{
    uint64_t bit = UINT64_C(1) << (idx & 63);
    /* the word in the current superblock's free-word hint, 0 in another */
    uint64_t hint = (UINT64_C(1) << (idx >> 6)) & ((uint64_t)0 - current);
    /* s alone: a thief takes the thread's other superblocks while it is
     * stopped here (pm_op_begin_word) */
    pm_op_begin_word(rec, aw);
    /* revokes after busy: see the revocation protocol in superblock.c */
    uint64_t word = pm_load_relaxed(aw);
    /* the remote word itself (n_words on), not its summary bit: a remote
     * free of the same block sets the summary bit only after its remote
     * bit (and a flush), and an owner that missed the remote bit would
     * hand the block out again while that free goes on (docs/design.md);
     * a set-aside superblock (hint 0, the test gcc 12 compiles shorter
     * than !current) whose word this empties goes the general way, which
     * keeps it as a spare or releases it when it holds nothing */
    if (PM_UNLIKELY(pm_load_relaxed(&rec->revokes) != rec->seen_revokes ||
                    !(word & bit) || (pm_load_relaxed(aw + n_words) & bit) ||
                    ((word & ~bit) == 0 && hint == 0))) {
        pm_op_end(rec);
        return false;
    }
    pm_store_relaxed(aw, word & ~bit);
    /* the current superblock: the word in its free-word hint, where the
     * malloc that runs out of the current word finds it (also when it is
     * the current word); a set-aside one: its count of frees, which picks
     * the next current one (the current one's count is zeroed when it is
     * set aside, so counting it too costs nothing) */
    t->freemap |= hint;
    pm_store_relaxed(&ctl->frees, (uint16_t)(pm_load_relaxed(&ctl->frees) + 1));
    if (PM_UNLIKELY(rt->flush != NULL))
        freed_durable(rt, rec, aw);
    else
        pm_op_end(rec);
    return true;
}

/* The fast path's free into another thread's superblock, inside the
 * operation the caller began: atomic bits only.  Out of line and the
 * caller's last call (a jump), so that the fast path needs no frame. */
__attribute__((noinline)) static void free_remote_fast(struct pm_rt *rt,
                                                       struct pm_trec *rec, uint32_t s,
                                                       uint32_t idx, uint32_t n, void *ptr)
{
    struct pm_sb_header *h = sb_header(rt, s);
    sb_free_remote(rt, rec, s, h, idx, (n + 63) >> 6, ptr);
    pm_op_end(rec);
}

/* Whether a transaction's snapshot may hold the block at ptr (in the
 * pages): any count of holds beyond a bit (pm_hold_at) anywhere, which the
 * general way looks up (pm_snap_held), or else its bit.  In that order: a
 * hold in place throughout is in the bit whenever no count exists (the
 * bit is cleared only by a release that finds no count, and while the
 * hold stays a later hold finds the bit set and counts), whereas a count
 * may move to the bit (pm_snap_holders) after the bit was read.  No call
 * here, and a branch, not a mask: either made the fast path save another
 * register. */
static inline bool held_here(struct pm_rt *rt, const void *ptr)
{
    if (pm_load_seq_cst(&rt->n_cohold) != 0)
        return true;
    uint64_t g = (uint64_t)((const char *)ptr - rt->base - rt->data_off) >> 4;
    return (pm_load_seq_cst(&rt->snapmark[g >> 6]) >> (g & 63)) & 1;
}

/* The fast path: the space this thread used last, a small block of a
 * superblock the thread owns (its current one for the class, or one its
 * anchor says; a revocation shows in the counter read after busy is
 * raised), no root or transaction mark in the superblock, the block live,
 * and not the last block of a set-aside superblock.  The same checks as
 * the general way, fewer lookups; it changes nothing until it is sure and
 * otherwise ends in a tail call (docs/design.md "Small blocks"). */
void persistent_free(allocator_space_t *space, void *ptr)
{
    if (PM_LIKELY(pm_tls.space == space &&
                  pm_tls.epoch == pm_load_relaxed(&pm_close_epoch) && !PM_VG_ACTIVE)) {
        struct pm_rt *rt = pm_tls.rt;
        struct pm_trec *rec = pm_tls.rec;
        uint32_t s, c, idx, n;
        struct pm_sb_header *h;
        if (PM_UNLIKELY(!pm_locate_small(rt, rec, ptr, &s, &h, &c, &idx, &n)))
            goto here;                  /* NULL, foreign, large or no block start */
        struct pm_tcache *t = &rec->cls[c];
        struct pm_sbctl *ctl = &rt->ctl[s];
        uint16_t marks = pm_load_relaxed(&ctl->marks);
        if (PM_UNLIKELY(marks != 0) && (marks != PM_MARKS_HOLD || held_here(rt, ptr)))
            goto here;                  /* a mark in the run; or a hold on the block */
        bool current = t->sb == s;
        uint64_t a = pm_load_relaxed(&ctl->anchor);
        if (PM_LIKELY(((uint32_t)a == rec->owned_low) | current)) {
            /* the thread's: the class's current one, or owner and state
             * in one compare (see the owned set in superblock.c); | not
             * ||, so that whether it is current is no branch */
            if (PM_LIKELY(free_owned(rt, rec, t, ctl, &h->bits[idx >> 6], (n + 63) >> 6,
                                     idx, current)))
                return;
        } else if (pm_anchor_owner(a) != rec->id) {
            /* another thread's superblock: atomic bits only, as
             * free_general does (which waits for an automatic
             * transaction on the space: pm_auto_gate); none of this
             * thread's superblocks (s is not, and nothing but this
             * thread could make it so), so a thief may take them all
             * meanwhile (PM_BUSY_NONE) */
            pm_op_begin_as(rec, PM_BUSY_NONE);
            if (PM_UNLIKELY(pm_load_relaxed(&pm_auto_rt) == rt)) {
                pm_op_end(rec);
                goto here;
            }
            free_remote_fast(rt, rec, s, idx, n, ptr);
            return;
        }
        goto here;
    }
    free_general(space, ptr);
    return;
here:
    free_general_here(ptr);
}

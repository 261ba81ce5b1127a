/* Superblocks: carving, ownership, the slow halves of the owner's malloc and
 * free, remote frees, partial lists, collection, release, scavenging and
 * revocation.
 *
 * Invariants
 *  - Only the owner (anchor OWNED with its record id) writes a superblock's
 *    allocation bitmap, and only between pm_op_begin() and pm_op_end(); it
 *    uses plain (relaxed) loads and stores, no read-modify-write.  Any
 *    thread may set remote bits (atomic OR); only the owner clears them.
 *  - A superblock a thread owns is its current one for the class or is in
 *    its owned set for the class (at most PM_OWNED_MAX).  When the current
 *    one has no free block left the owner sets it aside in the owned set
 *    and makes current the owned one most likely to have free blocks: the
 *    most frees by the owner since it was set aside (ctl->frees, counted
 *    by the free path), pending remote frees counting as many.  Only when
 *    the set is full does it detach one (ORPHAN); that one comes back
 *    through a remote free (which lists it) or through its last owner
 *    freeing into it (which re-adopts it).  Keeping full superblocks owned
 *    spares the detach / re-adopt round trip (two CASes and a rescan)
 *    that a class whose superblocks are all nearly full would otherwise
 *    pay on almost every free-then-malloc; the price is that remote frees
 *    into an owned superblock wait for its owner's next refill of the
 *    class (or a revocation).
 *  - A set-aside superblock its owner's frees empty stays in the owned set
 *    as a *spare* (t->spare), up to rt->spare_max pages per thread and a
 *    sixteenth of the space as it is, and is the first one switch_owned
 *    takes (its score is every block it had): released at once, it went
 *    back to the pages and was carved again, by whichever thread came
 *    first, at the next round of mallocs (with two threads, a third of
 *    threadtest's time; docs/design.md "Spare superblocks").  Spares go
 *    before the thread grows the space (sb_release_spares), under
 *    pressure (give_back), to a scavenge (its own, or a thief's), at the
 *    thread's exit, and one gives way to an orphan the thread re-adopts
 *    (sb_readopt) when the owned set is full.
 *  - LISTED <=> in exactly one of its class's two partial lists; only the
 *    thread that pops it moves it out of LISTED.
 *  - A remote free sets its remote bit, then the summary bit, then reads the
 *    anchor; a detaching owner CASes the anchor to ORPHAN, then reads the
 *    summary.  All four are seq_cst, so at least one of the two sees the
 *    other and a superblock with pending frees is never left unlisted.
 *  - Control words (struct pm_sbctl) are indexed by first page and never
 *    freed, so a late access through a stale index lands on a control word,
 *    not on block memory; the worst a stale remote free can do is list a
 *    superblock spuriously, and adoption copes with that.
 *  - Revocation: a thief CASes OWNED(v) to REVOKING(v), bumps v's revokes
 *    counter, issues membarrier(2), then reads v's busy flag.  An owner
 *    reads its revokes counter right after raising busy, so either the
 *    thief sees busy (and gives the superblock back) or the owner sees the
 *    bump (and re-validates before touching anything).  Nobody waits.
 *    What busy names narrows "inside an operation": a fast path's flag is
 *    the bitmap word it works on, and the thief takes every superblock
 *    but the one holding it (busy_keeps, pm_op_begin_word).
 *    The thief's decision is a CAS from exactly the REVOKING word it made
 *    or found: a REVOKING superblock is any thief's to go on with (its own
 *    bump, fence and look at busy), so a thief stopped between its CAS
 *    and its decision strands nothing, and of two deciding only the first
 *    counts.
 *  - An owner inside an operation that finds its superblock REVOKING(v)
 *    takes it back itself with a CAS (own, own_move) instead of dropping
 *    it: the thief only acts after its own CAS from that REVOKING word,
 *    which then fails.  Dropping it instead would strand it, because a
 *    thief that saw busy gives it back to an owner that no longer lists it
 *    (and remote frees into an OWNED superblock are never listed).  So a
 *    superblock in an owner's books leaves them only by that owner's own
 *    successful CAS, or by a thief's successful one (then it is the
 *    thief's to hand back).  An entry whose pages the thief released and
 *    the owner's same operation took again, for the operation's class
 *    (PM_BUSY_CLASS), finds an anchor OWNED by the owner at its page: the
 *    entry is recognised as stale by its class (own), not by its anchor.
 *
 * Order of persists (PMEM durability; each step fenced before the next)
 *   carve:       header and bitmaps; KIND and END; START (the commit)
 *   release:     START cleared (the commit); END and KIND cleared
 *   malloc:      alloc bit set, then the block is returned
 *   local free:  alloc bit cleared
 *   remote free: remote bit set
 *   collect:     alloc bits cleared; then remote bits cleared
 *   (a crash between the two steps of a collect leaves alloc 0 remote 1,
 *   which recovery clears)
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

static inline struct pm_sbctl *ctl_of(struct pm_rt *rt, uint32_t first)
{
    return &rt->ctl[first];
}

static inline pm_atomic_u64 *alloc_bits(struct pm_sb_header *h)
{
    return h->bits;
}

static inline pm_atomic_u64 *remote_bits(struct pm_sb_header *h)
{
    return h->bits + h->n_words;
}

static inline bool owned_by(uint64_t a, uint32_t id)
{
    return pm_anchor_state(a) == PM_SB_OWNED && pm_anchor_owner(a) == id;
}

bool sb_header_valid(struct pm_rt *rt, const struct pm_sb_header *h,
                     uint64_t first)
{
    if (h->magic != PM_SB_MAGIC || h->check != pm_sb_check(h) ||
        h->cls >= rt->n_small)
        return false;
    const struct pm_class *k = &rt->cls[h->cls];
    uint32_t n_blocks, data_start;
    return h->block_size == k->block_size && h->n_pages >= k->floor_pages &&
           h->n_pages <= k->n_pages &&
           pm_sb_geometry(rt, h->cls, h->n_pages, &n_blocks, &data_start) &&
           h->n_blocks == n_blocks && h->data_start == data_start &&
           h->n_words == (n_blocks + 63) / 64 &&
           first + h->n_pages <= pm_load_acquire(&rt->n_pages);
}

/* ---- partial lists: Treiber stacks with a 32-bit tag against ABA ----
 *
 * Two a class: superblocks are listed on side 0; a scavenge puts what it
 * looked at and kept on the other side, one superblock at a time (see
 * sort_lists).  A pop takes from side 0, then side 1 (partial_pop). */

static void push_side(struct pm_rt *rt, uint32_t c, int side, uint32_t s)
{
    pm_atomic_u64 *head = &rt->partial[c][side];
    uint64_t h = pm_load_relaxed(head);
    uint64_t nh;
    do {
        pm_store_relaxed(&ctl_of(rt, s)->next, (uint32_t)h);
        nh = (((h >> 32) + 1) << 32) | (uint64_t)(s + 1);
    } while (!pm_cas_weak_acq_rel(head, &h, nh));
}

static void partial_push(struct pm_rt *rt, uint32_t c, uint32_t s)
{
    push_side(rt, c, 0, s);
}

static uint32_t pop_side(struct pm_rt *rt, uint32_t c, int side)
{
    pm_atomic_u64 *head = &rt->partial[c][side];
    uint64_t h = pm_load_acquire(head);
    while ((uint32_t)h != 0) {
        uint32_t s = (uint32_t)h - 1;
        /* racy if s was popped meanwhile; the tag makes that CAS fail */
        uint64_t next = pm_load_relaxed(&ctl_of(rt, s)->next);
        uint64_t nh = (((h >> 32) + 1) << 32) | next;
        if (pm_cas_weak_acq_rel(head, &h, nh))
            return s;
    }
    return PM_NO_SB;
}

/* Side 0, then side 1.  Two looks are not a snapshot: a scavenge moving a
 * superblock from one side to the other can take it before the look at
 * its side and put it on the other after the look there (until 2026-12-04
 * a refill then carved, or with every page taken scavenged and tried
 * again, and several threads starving at once could see ENOMEM).  So a
 * pop that found both sides empty looks again whenever rt->sort_moves[c]
 * moved meanwhile: a scavenge raises it before each take and after each
 * put.  Of the superblocks listed when the pop began and not taken by
 * another refill, what it can still miss is one a scavenging thread holds
 * from before the pop's first look to after its last (taken and not yet
 * put back): one per scavenging thread, and only while it is stopped or
 * slower than the pop.  Each look again follows a raise by some scavenge,
 * and every scavenge is bounded, so the pop waits for nobody (G1). */
static uint32_t partial_pop(struct pm_rt *rt, uint32_t c)
{
    for (;;) {
        uint64_t seen = pm_load_seq_cst(&rt->sort_moves[c]);
        uint32_t s = pop_side(rt, c, 0);
        if (s != PM_NO_SB)
            return s;
        pm_hook(PM_HOOK_POP_SIDE0);
        s = pop_side(rt, c, 1);
        if (s != PM_NO_SB)
            return s;
        pm_hook(PM_HOOK_POP_LOOKED);
        if (pm_load_seq_cst(&rt->sort_moves[c]) == seen)
            return PM_NO_SB;
    }
}

/* ---- anchor transitions ---- */

static bool anchor_move(struct pm_rt *rt, uint32_t s, uint32_t from_state,
                        uint32_t from_owner, bool any_owner, uint32_t to_state,
                        uint32_t to_owner)
{
    pm_atomic_u64 *a = &ctl_of(rt, s)->anchor;
    uint64_t old = pm_load_acquire(a);
    for (;;) {
        if (pm_anchor_state(old) != from_state ||
            (!any_owner && pm_anchor_owner(old) != from_owner))
            return false;
        if (pm_cas_strong_seq_cst(a, &old, pm_anchor_make(old, to_state, to_owner)))
            return true;
    }
}

/* Whether rec owns s, listed in its books for class c, taking it back
 * first from a thief that is revoking it (see the invariants): the caller
 * is inside an operation.  A superblock of another class at s is not the
 * one the books mean, whatever its anchor says: a thief took and released
 * the one they mean while this thread was inside an operation that names
 * one class (PM_BUSY_CLASS), and that same operation carved or adopted
 * the pages again for its own class, OWNED by this thread (a review's
 * schedule, test_revoke parked-reuse; the books kept it in two classes,
 * and one block went out twice).  The same class cannot come back so:
 * such a thief takes no superblock of the operation's class, and every
 * later operation reads the revocation counter, and syncs, before it
 * takes a superblock. */
static bool own(struct pm_rt *rt, struct pm_trec *rec, uint32_t s, uint32_t c)
{
    if (pm_load_relaxed(&ctl_of(rt, s)->cls) != c)
        return false;
    pm_atomic_u64 *a = &ctl_of(rt, s)->anchor;
    pm_hook(PM_HOOK_OWNER_ANCHOR);
    uint64_t old = pm_load_acquire(a);
    bool mine;
    for (;;) {
        mine = pm_anchor_owner(old) == rec->id &&
               pm_anchor_state(old) == PM_SB_OWNED;
        if (pm_anchor_owner(old) != rec->id || pm_anchor_state(old) != PM_SB_REVOKING)
            break;
        if (pm_cas_strong_seq_cst(a, &old, pm_anchor_make(old, PM_SB_OWNED, rec->id))) {
            mine = true;
            break;
        }
    }
    pm_hook(PM_HOOK_OWNER_ANCHOR_DONE);
    return mine;
}

/* The owner's own transition of s (OWNED by rec, or REVOKING from rec) to
 * state; false when someone else owns s (a thief won it). */
static bool own_move(struct pm_rt *rt, struct pm_trec *rec, uint32_t s,
                     uint32_t state, uint32_t owner)
{
    pm_atomic_u64 *a = &ctl_of(rt, s)->anchor;
    pm_hook(PM_HOOK_OWNER_ANCHOR);
    uint64_t old = pm_load_acquire(a);
    bool moved = false;
    while (pm_anchor_owner(old) == rec->id &&
           (pm_anchor_state(old) == PM_SB_OWNED ||
            pm_anchor_state(old) == PM_SB_REVOKING)) {
        if (pm_cas_strong_seq_cst(a, &old, pm_anchor_make(old, state, owner))) {
            moved = true;
            break;
        }
    }
    pm_hook(PM_HOOK_OWNER_ANCHOR_DONE);
    return moved;
}

/* ---- carving and releasing ---- */

static void format(struct pm_rt *rt, uint32_t first, uint32_t n_pages, uint32_t c,
                   uint32_t owner)
{
    struct pm_sb_header *h = sb_header(rt, first);
    uint32_t n_blocks = 0, data_start = 0;
    (void)pm_sb_geometry(rt, c, n_pages, &n_blocks, &data_start);
    uint32_t n_words = (n_blocks + 63) / 64;
    pm_vg_internal(h, sizeof *h + 16u * n_words);  /* pages a block may have had */
    memset(h, 0, sizeof *h + 16u * n_words);
    h->magic = PM_SB_MAGIC;
    h->cls = (uint16_t)c;
    h->n_words = (uint16_t)n_words;
    h->n_blocks = n_blocks;
    h->block_size = rt->cls[c].block_size;
    h->n_pages = n_pages;
    h->data_start = data_start;
    h->check = pm_sb_check(h);
    pm_persist(rt, h, sizeof *h + 16u * n_words);
    pm_vg_noaccess((char *)h + data_start, (size_t)n_blocks * h->block_size);

    struct pm_sbctl *ctl = ctl_of(rt, first);
    pm_store_relaxed(&ctl->summary, 0);
    pm_store_relaxed(&ctl->cls, c);
    pm_store_relaxed(&ctl->n_pub, 0);
    pm_marks_carved(ctl);
    uint64_t a = pm_load_relaxed(&ctl->anchor);
    pm_store_release(&ctl->anchor, pm_anchor_make(a, PM_SB_OWNED, owner));
    uint64_t e = pm_pagemap_entry(first, pm_geom_make(c, n_blocks, data_start));
    for (uint32_t i = 0; i < n_pages; i++)
        pm_store_relaxed(&rt->pagemap[first + i], e);

    pg_bit_set(rt, rt->kind_bits, first);
    pg_bit_set(rt, rt->end_bits, first + n_pages - 1);
    pg_bit_set(rt, rt->start_bits, first);      /* commit */
}

/* The caller owns s and s holds no live block. */
static bool release(struct pm_rt *rt, struct pm_trec *rec, uint32_t s)
{
    struct pm_sb_header *h = sb_header(rt, s);
    uint32_t n = h->n_pages;
    if (!own_move(rt, rec, s, PM_SB_FREE, 0))
        return false;                           /* a thief has it */
    pg_bit_clear(rt, rt->start_bits, s);        /* commit */
    pg_bit_clear(rt, rt->end_bits, s + n - 1);
    pg_bit_clear(rt, rt->kind_bits, s);
    for (uint32_t i = 0; i < n; i++)
        pm_store_relaxed(&rt->pagemap[s + i], UINT64_C(0));
    pg_release(rt, s, n);
    return true;
}

/* A new superblock in the lowest hole that holds its class's minimum,
 * up to the preferred length (see sizeclass.c). */
static uint32_t carve(struct pm_rt *rt, struct pm_trec *rec, uint32_t c)
{
    const struct pm_class *k = &rt->cls[c];
    uint64_t n = k->n_pages;
    /* not from the runs the thread keeps: a large block's pages that turn
     * into a superblock header at once tore a live byte copy (the
     * inspector's copy) three times as often */
    uint64_t first = pg_alloc_flex(rt, k->min_pages, k->n_pages, &n);
    if (first == PG_NONE)
        return PM_NO_SB;
    pm_hook(PM_HOOK_SB_TAKEN);
    format(rt, (uint32_t)first, (uint32_t)n, c, rec->id);
    return (uint32_t)first;
}

/* ---- collection of remote frees (owner only) ---- */

static bool all_clear(struct pm_sb_header *h)
{
    pm_atomic_u64 *al = alloc_bits(h);
    for (uint32_t w = 0; w < h->n_words; w++)
        if (pm_load_relaxed(&al[w]) != 0)
            return false;
    return true;
}

static bool collect(struct pm_rt *rt, uint32_t s)
{
    struct pm_sbctl *ctl = ctl_of(rt, s);
    if (pm_load_relaxed(&ctl->summary) == 0)
        return false;
    uint64_t sum = pm_exchange_acq_rel(&ctl->summary, 0);
    if (sum == 0)
        return false;
    struct pm_sb_header *h = sb_header(rt, s);
    pm_atomic_u64 *al = alloc_bits(h), *rm = remote_bits(h);
    uint64_t r[64];
    for (uint64_t m = sum; m; m &= m - 1)
        r[pm_ctz64(m)] = pm_load_acquire(&rm[pm_ctz64(m)]);
    /* A publishing free raises n_pub before it sets its remote bit, so a bit
     * read above implies its n_pub is visible here; its block must not be
     * reused until its lane record is retired, so leave everything for a
     * later collection. */
    if (pm_load_acquire(&ctl->n_pub) != 0) {
        pm_fetch_or_acq_rel(&ctl->summary, sum);
        return false;
    }
    bool freed = false;
    for (uint64_t m = sum; m; m &= m - 1) {
        uint32_t w = pm_ctz64(m);
        if (r[w] == 0)
            continue;
        uint64_t a = pm_load_relaxed(&al[w]);
        for (uint64_t bad = r[w] & ~a; bad; bad &= bad - 1)
            /* remote bits on free blocks: double frees seen late */
            pm_misuse(rt, PERSISTENT_E_DOUBLE_FREE,
                      (char *)h + h->data_start +
                          (size_t)(w * 64 + pm_ctz64(bad)) * h->block_size,
                      "persistent_free");
        pm_store_relaxed(&al[w], a & ~r[w]);
        pm_persist(rt, &al[w], sizeof al[w]);
        pm_fetch_and_acq_rel(&rm[w], ~r[w]);
        pm_persist(rt, &rm[w], sizeof rm[w]);
        freed = freed || (a & r[w]) != 0;
    }
    return freed;
}

/* ---- the owner's per-class cache ---- */

/* Which words of t's superblock have a free block right now. */
static void rebuild_freemap(struct pm_rt *rt, struct pm_tcache *t)
{
    struct pm_sb_header *h = sb_header(rt, t->sb);
    pm_atomic_u64 *al = alloc_bits(h), *rm = remote_bits(h);
    uint64_t fm = 0;
    for (uint32_t w = 0; w < h->n_words; w++) {
        uint64_t valid = sb_word_valid(h, w);
        if (~(pm_load_relaxed(&al[w]) | pm_load_relaxed(&rm[w])) & valid)
            fm |= UINT64_C(1) << w;
    }
    t->freemap = fm;
}

static void set_current(struct pm_rt *rt, struct pm_tcache *t, uint32_t s)
{
    struct pm_sb_header *h = sb_header(rt, s);
    t->sb = s;
    t->word = h->n_words;           /* none yet */
    t->aword = alloc_bits(h);       /* in s all the same: malloc's fast path
                                       names its word to a thief before it
                                       looks at the mask (pm_op_begin_word) */
    t->mask = 0;
    t->bsize = h->block_size;
    rebuild_freemap(rt, t);
}

static void drop_current(struct pm_tcache *t)
{
    t->sb = PM_NO_SB;
    t->mask = 0;
    t->freemap = 0;
}

/* Moves t to the lowest word of its superblock the free-word hint names
 * that really has a free block.  Reads the bitmaps and writes only t, so
 * malloc's fast path calls it too (sb_next_word). */
static bool next_word(struct pm_rt *rt, struct pm_tcache *t)
{
    struct pm_sb_header *h = sb_header(rt, t->sb);
    pm_atomic_u64 *al = alloc_bits(h), *rm = remote_bits(h);
    while (t->freemap) {
        uint32_t w = pm_ctz64(t->freemap);
        t->freemap &= t->freemap - 1;
        uint64_t valid = sb_word_valid(h, w);
        uint64_t m = ~(pm_load_relaxed(&al[w]) | pm_load_relaxed(&rm[w])) & valid;
        if (m) {
            t->word = w;
            t->mask = m;
            t->aword = &al[w];
            t->wbase = (char *)h + h->data_start + (size_t)w * 64 * h->block_size;
            return true;
        }
    }
    t->mask = 0;
    return false;
}

bool sb_next_word(struct pm_rt *rt, struct pm_tcache *t)
{
    return t->sb != PM_NO_SB && next_word(rt, t);
}

/* Takes owned[i] out of t's owned set (the last entry moves into its
 * place, with its spare bit); a spare's pages leave the thread's count. */
static void owned_drop(struct pm_rt *rt, struct pm_trec *rec, struct pm_tcache *t,
                       uint32_t i)
{
    uint32_t last = --t->n_owned;
    if (t->spare & (1u << i))
        rec->spare_pages -= rt->cls[t - rec->cls].n_pages;
    uint32_t moved = (t->spare >> last) & 1u;
    t->spare &= ~((1u << i) | (1u << last));
    t->owned[i] = t->owned[last];
    if (i != last)
        t->spare |= moved << i;
}

/* Hands a superblock the caller owns to everyone: released if empty,
 * else listed. */
static void hand_back(struct pm_rt *rt, struct pm_trec *rec, uint32_t s,
                      uint32_t c)
{
    if (!own(rt, rec, s, c))
        return;
    collect(rt, s);
    if (all_clear(sb_header(rt, s)) && release(rt, rec, s))
        return;
    if (own_move(rt, rec, s, PM_SB_LISTED, 0))
        partial_push(rt, c, s);
}

/* s, owned by rec and neither current nor in the owned set, has no free
 * block: detach it. */
static void detach_sb(struct pm_rt *rt, struct pm_trec *rec, uint32_t s, uint32_t c)
{
    if (!own_move(rt, rec, s, PM_SB_ORPHAN, rec->id))
        return;                         /* a thief has it */
    struct pm_sbctl *ctl = ctl_of(rt, s);
    if (pm_load_seq_cst(&ctl->summary) == 0 || pm_load_seq_cst(&ctl->n_pub) != 0)
        return;     /* nothing pending, or a publishing free lists it later */
    /* a remote free raced with the detach and may have seen OWNED */
    if (anchor_move(rt, s, PM_SB_ORPHAN, 0, true, PM_SB_LISTED, 0))
        partial_push(rt, c, s);
}

/* The current superblock of t has no free block: detach it. */
static void detach(struct pm_rt *rt, struct pm_trec *rec, struct pm_tcache *t,
                   uint32_t c)
{
    uint32_t s = t->sb;
    drop_current(t);
    detach_sb(rt, rec, s, c);
}

/* Makes s (just adopted, owned by rec) current if it has a free block,
 * else detaches it again. */
static bool use_adopted(struct pm_rt *rt, struct pm_trec *rec,
                        struct pm_tcache *t, uint32_t s, uint32_t c)
{
    collect(rt, s);
    set_current(rt, t, s);
    if (next_word(rt, t))
        return true;
    detach(rt, rec, t, c);
    return false;
}

/* How likely s, in the owned set, is to have a free block: 0 for none. */
static uint32_t owned_score(struct pm_rt *rt, uint32_t s)
{
    struct pm_sbctl *ctl = ctl_of(rt, s);
    return pm_load_relaxed(&ctl->frees) +
           (pm_load_relaxed(&ctl->summary) != 0 ? 64u : 0u);
}

/* Puts s (owned, full) in t's owned set, or detaches it when the set is
 * full. */
static void set_aside(struct pm_rt *rt, struct pm_trec *rec, struct pm_tcache *t,
                      uint32_t s, uint32_t c)
{
    if (t->n_owned < PM_OWNED_MAX) {
        pm_store_relaxed(&ctl_of(rt, s)->frees, 0u);
        t->owned[t->n_owned++] = s;
    } else {
        detach_sb(rt, rec, s, c);
    }
}

/* Refill from the owned set: the current superblock (if any, full) is set
 * aside and the owned one with the best score becomes current.  False when
 * no owned superblock has a free block. */
static bool switch_owned(struct pm_rt *rt, struct pm_trec *rec,
                         struct pm_tcache *t, uint32_t c)
{
    for (;;) {
        uint32_t best = PM_OWNED_MAX, best_score = 0;
        for (uint32_t i = 0; i < t->n_owned; i++) {
            uint32_t sc = owned_score(rt, t->owned[i]);
            if (sc > best_score) {
                best = i;
                best_score = sc;
            }
        }
        uint32_t s = best < PM_OWNED_MAX ? t->owned[best] : PM_NO_SB;
        if (s != PM_NO_SB)
            owned_drop(rt, rec, t, best);
        if (t->sb != PM_NO_SB) {
            uint32_t full = t->sb;
            drop_current(t);
            set_aside(rt, rec, t, full, c);
        }
        if (s == PM_NO_SB)
            return false;
        /* a thief may have taken it while this thread was outside an
         * operation (sb_owner_sync drops those too) */
        if (own(rt, rec, s, c) && use_adopted(rt, rec, t, s, c))
            return true;
    }
}

bool sb_owner_sync(struct pm_rt *rt, struct pm_trec *rec)
{
    rec->seen_revokes = pm_load_acquire(&rec->revokes);
    bool lost = false;
    for (uint32_t c = 0; c < rt->n_small; c++) {
        struct pm_tcache *t = &rec->cls[c];
        if (t->sb != PM_NO_SB && !own(rt, rec, t->sb, c)) {
            drop_current(t);
            lost = true;
        }
        for (uint32_t i = 0; i < t->n_owned;) {
            if (!own(rt, rec, t->owned[i], c)) {
                owned_drop(rt, rec, t, i);
                lost = true;
            } else {
                i++;
            }
        }
    }
    return lost;
}

/* Every superblock the thread owns goes back (collected; released when
 * empty, else listed), but class keep's current one (UINT32_MAX: none):
 * what an owner does under pressure (sb_starving).  Inside an
 * operation. */
static void give_back(struct pm_rt *rt, struct pm_trec *rec, uint32_t keep)
{
    for (uint32_t c = 0; c < rt->n_small; c++) {
        struct pm_tcache *t = &rec->cls[c];
        if (t->sb != PM_NO_SB && c != keep) {
            uint32_t s = t->sb;
            drop_current(t);
            hand_back(rt, rec, s, c);
        }
        while (t->n_owned > 0) {
            uint32_t s = t->owned[t->n_owned - 1];
            owned_drop(rt, rec, t, t->n_owned - 1);
            hand_back(rt, rec, s, c);
        }
    }
}

bool sb_release_spares(struct pm_rt *rt, struct pm_trec *rec)
{
    bool any = false;
    for (uint32_t c = 0; c < rt->n_small && rec->spare_pages != 0; c++) {
        struct pm_tcache *t = &rec->cls[c];
        for (uint32_t i = 0; i < t->n_owned;) {
            uint32_t s = t->owned[i];
            if (!(t->spare & (1u << i))) {
                i++;
                continue;
            }
            owned_drop(rt, rec, t, i);
            hand_back(rt, rec, s, c);   /* nothing if a thief has it */
            any = true;
        }
    }
    return any;
}

/* sb_owner_sync for a thread that saw its revocation counter move; when
 * another thread is about to report ENOMEM (a thief that found this one
 * inside a call bumped it), its superblocks go back too. */
static void owner_sync_pressed(struct pm_rt *rt, struct pm_trec *rec, uint32_t keep)
{
    sb_owner_sync(rt, rec);
    if (PM_UNLIKELY(pm_load_acquire(&rt->pressure) != 0))
        give_back(rt, rec, keep);
}

bool sb_widen_any(struct pm_rt *rt, struct pm_trec *rec, uint32_t keep)
{
    /* under ANY already: a thief has kept every superblock since it went
     * up, and what a thief took before (the publishing calls' and the
     * transactions' logs raise ANY and read no counter) own() refuses
     * where the books are used */
    if (pm_load_relaxed(&rec->busy) == PM_BUSY_ANY)
        return false;
    pm_op_widen(rec);
    if (pm_load_relaxed(&rec->revokes) == rec->seen_revokes)
        return false;
    owner_sync_pressed(rt, rec, keep);
    return true;
}

/* Makes rec's cache for class c hold a free block (t->mask != 0): the
 * current superblock, then one it owns, then the partial list, then a new
 * one, growing the space or scavenging when pages run out.  The caller is
 * inside an operation; false (errno ENOMEM) when nothing can be found.
 * Its flag may name class c alone (PM_BUSY_CLASS): up to the carve this
 * touches class c's books and superblocks only (its current one, its
 * owned set, its partial lists, a new one); a revocation's sync, the
 * reclaim (every class's spares, the held frees), growth and the
 * starvation rounds widen it first (sb_widen_any). */
static bool refill_in(struct pm_rt *rt, struct pm_trec *rec, uint32_t c,
                      bool may_carve, struct sb_starve *st)
{
    struct pm_tcache *t = &rec->cls[c];
    const struct pm_class *k = &rt->cls[c];
    bool reclaimed = false;

    if (pm_load_relaxed(&rec->revokes) != rec->seen_revokes) {
        pm_op_widen(rec);       /* the sync looks at every class's books */
        owner_sync_pressed(rt, rec, c);
    }
    for (;;) {
        if (t->mask != 0)
            return true;
        if (t->sb != PM_NO_SB) {
            if (next_word(rt, t))
                return true;
            if (collect(rt, t->sb)) {
                rebuild_freemap(rt, t);
                if (next_word(rt, t))
                    return true;
            }
        }
        if (switch_owned(rt, rec, t, c))
            return true;
        uint32_t s;
        while ((s = partial_pop(rt, c)) != PM_NO_SB) {
            if (!anchor_move(rt, s, PM_SB_LISTED, 0, true, PM_SB_OWNED, rec->id))
                continue;
            pm_hook(PM_HOOK_SB_TAKEN);
            if (use_adopted(rt, rec, t, s, c))
                return true;
        }
        if (!may_carve)
            return false;
        s = carve(rt, rec, c);
        if (s != PM_NO_SB) {
            set_current(rt, t, s);
            if (next_word(rt, t))
                return true;
            continue;
        }
        /* nothing more of class c's own: what follows may touch every
         * class's superblocks (spares, held frees, a scavenge's give-back) */
        if (sb_widen_any(rt, rec, c))
            continue;
        /* runs kept by threads, this one's held frees (PMEM) and spares
         * first: growing past them wastes the file */
        if (!reclaimed) {
            reclaimed = true;
            bool runs = pm_tx_settle_own(rt, rec);
            runs |= pg_cache_reclaim(rt);
            if (sb_release_spares(rt, rec) || runs)
                continue;
        }
        uint64_t seen = pm_load_acquire(&rt->n_pages);
        if (pm_space_grow(rt, seen, k->n_pages) == 0)
            continue;
        if (sb_starving(rt, rec, c, st))
            continue;
        errno = ENOMEM;
        return false;
    }
}

static bool refill(struct pm_rt *rt, struct pm_trec *rec, uint32_t c,
                   bool may_carve)
{
    struct sb_starve st = {0, false, 0};
    bool got = refill_in(rt, rec, c, may_carve, &st);
    sb_starve_end(rt, &st);
    return got;
}

/* Takes the next free block of the current word out of the cache without
 * marking it allocated; *aword and *bit say how to commit it. */
static void *take(struct pm_tcache *t, pm_atomic_u64 **aword, uint64_t *bit)
{
    uint64_t m = t->mask;
    uint32_t i = pm_ctz64(m);
    t->mask = m & (m - 1);
    *aword = t->aword;
    *bit = UINT64_C(1) << i;
    return t->wbase + (size_t)i * t->bsize;
}

/* When no superblock of class c can be carved: a free block of a larger
 * class whose blocks are all aligned to align, else NULL (the caller tries
 * a page run).  A larger class may be less aligned (6 KiB blocks are only
 * 2 KiB aligned), so an aligned request only looks at those that are. */
static void *take_larger(struct pm_rt *rt, struct pm_trec *rec, uint32_t c,
                         size_t align, pm_atomic_u64 **w, uint64_t *bit)
{
    /* other classes' books: refill_in reads the counter after this */
    pm_op_widen(rec);
    for (uint32_t d = c + 1; d < rt->n_small; d++)
        if (rt->cls[d].align >= align && refill(rt, rec, d, false))
            return take(&rec->cls[d], w, bit);
    return NULL;
}

void *sb_refill_alloc(struct pm_rt *rt, struct pm_trec *rec, uint32_t c,
                      size_t align)
{
    pm_atomic_u64 *w;
    uint64_t bit;
    void *p;
    if (refill(rt, rec, c, true))
        p = take(&rec->cls[c], &w, &bit);
    else if ((p = take_larger(rt, rec, c, align, &w, &bit)) == NULL) {
        pm_op_end(rec);
        return NULL;
    }
    pm_store_relaxed(w, pm_load_relaxed(w) | bit);
    pm_persist(rt, w, sizeof *w);
    pm_op_end(rec);
    return p;
}

void *sb_reserve(struct pm_rt *rt, struct pm_trec *rec, uint32_t c,
                 pm_atomic_u64 **aword, uint64_t *bit, uint32_t *bsize)
{
    struct pm_tcache *t = &rec->cls[c];
    if (PM_LIKELY(t->mask != 0 && pm_load_relaxed(&rec->revokes) == rec->seen_revokes)) {
        *bsize = t->bsize;                  /* what refill would find first */
        return take(t, aword, bit);
    }
    if (refill(rt, rec, c, true)) {
        *bsize = rec->cls[c].bsize;
        return take(&rec->cls[c], aword, bit);
    }
    for (uint32_t d = c + 1; d < rt->n_small; d++)
        if (refill(rt, rec, d, false)) {
            *bsize = rec->cls[d].bsize;
            return take(&rec->cls[d], aword, bit);
        }
    return NULL;
}

/* ---- frees ---- */

int sb_locate(struct pm_rt *rt, const void *ptr, uint32_t *first,
              struct pm_sb_header **hp, uint32_t *idx)
{
    uintptr_t p = (uintptr_t)ptr, d = (uintptr_t)rt->data;
    uint64_t limit = pm_load_acquire(&rt->n_pages) << rt->page_shift;
    if (p < d || p - d >= limit)
        return PERSISTENT_E_BAD_POINTER;
    uint32_t f1 = pm_pagemap_first1(pm_load_relaxed(&rt->pagemap[(p - d) >> rt->page_shift]));
    if (f1 == 0)
        return 1;                               /* not in a superblock */
    struct pm_sb_header *h = sb_header(rt, f1 - 1);
    if (h->magic != PM_SB_MAGIC || h->cls >= rt->n_small)
        return PERSISTENT_E_BAD_POINTER;
    const struct pm_class *k = &rt->cls[h->cls];
    uintptr_t b0 = (uintptr_t)h + h->data_start;
    if (p < b0)
        return PERSISTENT_E_BAD_POINTER;
    /* a 32-bit count is below UINT64_MAX / block_size: the compare also
     * refuses an interior pointer (pm_block_index) */
    uint64_t i = pm_block_index(p - b0, k->inv, k->bshift);
    if (i >= h->n_blocks)
        return PERSISTENT_E_BAD_POINTER;        /* interior pointer */
    *first = f1 - 1;
    *hp = h;
    *idx = (uint32_t)i;
    return 0;
}

/* After an owner cleared block idx of s: keep the freed block handy if it
 * is in the current word; when s holds nothing and is not the current
 * superblock, keep it as a spare, or release it past the thread's bound. */
void sb_after_local_free(struct pm_rt *rt, struct pm_trec *rec, uint32_t s,
                         struct pm_sb_header *h, uint32_t idx)
{
    struct pm_tcache *t = &rec->cls[h->cls];
    if (t->sb == s) {
        if (t->word == idx >> 6)
            t->mask |= UINT64_C(1) << (idx & 63);
        else
            t->freemap |= UINT64_C(1) << (idx >> 6);
        return;                                  /* the current one stays */
    }
    pm_atomic_u16 *f = &ctl_of(rt, s)->frees;
    pm_store_relaxed(f, pm_load_relaxed(f) + 1);
    if (pm_load_relaxed(&alloc_bits(h)[idx >> 6]) == 0 && all_clear(h) &&
        pm_load_relaxed(&ctl_of(rt, s)->summary) == 0 &&
        pm_load_relaxed(&ctl_of(rt, s)->n_pub) == 0) {
        uint32_t i = 0;
        while (i < t->n_owned && t->owned[i] != s)
            i++;
        if (i < t->n_owned && (t->spare & (1u << i)))
            return;     /* a spare already: frees finished together (a
                           transaction's) each find it empty */
        uint32_t pages = rt->cls[h->cls].n_pages;
        /* at most rt->spare_max, and a sixteenth of the space as it is now
         * (a growable one may be far below its maximum) */
        uint64_t now = pm_load_relaxed(&rt->n_pages) / 16;
        if (i < t->n_owned && rec->spare_pages + pages <= rt->spare_max &&
            rec->spare_pages + pages <= now) {
            t->spare |= 1u << i;        /* kept: a spare */
            rec->spare_pages += pages;
            return;
        }
        if (i < t->n_owned)
            owned_drop(rt, rec, t, i);
        (void)release(rt, rec, s);
    }
}

void sb_free_local(struct pm_rt *rt, struct pm_trec *rec, uint32_t s,
                   struct pm_sb_header *h, uint32_t idx)
{
    uint32_t w = idx >> 6;
    uint64_t bit = UINT64_C(1) << (idx & 63);
    pm_atomic_u64 *aw = &alloc_bits(h)[w];
    uint64_t a = pm_load_relaxed(aw);
    if (!(a & bit) || (pm_load_relaxed(&remote_bits(h)[w]) & bit)) {
        pm_misuse(rt, PERSISTENT_E_DOUBLE_FREE,
                  (char *)h + h->data_start + (size_t)idx * h->block_size,
                  "persistent_free");
        return;
    }
    pm_store_relaxed(aw, a & ~bit);
    pm_persist(rt, aw, sizeof *aw);
    sb_after_local_free(rt, rec, s, h, idx);
}

/* Re-adopts an orphan this thread owned last, so its frees are local. */
bool sb_readopt(struct pm_rt *rt, struct pm_trec *rec, uint32_t s, uint32_t c)
{
    struct pm_tcache *t = &rec->cls[c];
    if (t->n_owned >= PM_OWNED_MAX && t->spare != 0) {
        /* a superblock with live blocks the thread frees into is worth
         * more than a spare: without the room its frees would be remote */
        uint32_t i = (uint32_t)pm_ctz64(t->spare);
        uint32_t sp = t->owned[i];
        owned_drop(rt, rec, t, i);
        hand_back(rt, rec, sp, c);
    }
    if (t->n_owned >= PM_OWNED_MAX)
        return false;
    if (!anchor_move(rt, s, PM_SB_ORPHAN, rec->id, false, PM_SB_OWNED, rec->id))
        return false;
    pm_store_relaxed(&ctl_of(rt, s)->frees, 0u);   /* the caller's free counts */
    t->owned[t->n_owned++] = s;
    return true;
}

/* A remote free's last step: a detached superblock with a free block must
 * be findable, so the freer lists it.  Only control words are read: once
 * the remote bit is set the owner may collect the block, release the
 * superblock and its pages may hold anything.  The class comes from the
 * control word, between reading the anchor and the CAS that moves it, so
 * a superblock released and carved again for another class meanwhile
 * (its anchor's tag changed) is left alone. */
void sb_list_if_orphan(struct pm_rt *rt, uint32_t s)
{
    struct pm_sbctl *ctl = ctl_of(rt, s);
    uint64_t a = pm_load_seq_cst(&ctl->anchor);
    if (pm_anchor_state(a) != PM_SB_ORPHAN)
        return;
    uint32_t c = pm_load_relaxed(&ctl->cls);
    if (pm_cas_strong_seq_cst(&ctl->anchor, &a, pm_anchor_make(a, PM_SB_LISTED, 0)))
        partial_push(rt, c, s);
}

/* Reads the superblock's bitmap words, not its header's line. */
void sb_free_remote(struct pm_rt *rt, struct pm_trec *rec, uint32_t s,
                    struct pm_sb_header *h, uint32_t idx, uint32_t n_words,
                    const void *blk)
{
    (void)rec;
    uint32_t w = idx >> 6;
    uint64_t bit = UINT64_C(1) << (idx & 63);
    if (!(pm_load_relaxed(&alloc_bits(h)[w]) & bit)) {
        pm_misuse(rt, PERSISTENT_E_DOUBLE_FREE, blk, "persistent_free");
        return;
    }
    pm_atomic_u64 *rw = &alloc_bits(h)[n_words + w];
    uint64_t old = pm_fetch_or_seq_cst(rw, bit);
    if (old & bit) {
        pm_misuse(rt, PERSISTENT_E_DOUBLE_FREE, blk, "persistent_free");
        return;
    }
    pm_persist(rt, rw, sizeof *rw);
    pm_hook(PM_HOOK_REMOTE_PUSH);
    pm_fetch_or_seq_cst(&ctl_of(rt, s)->summary, UINT64_C(1) << w);
    sb_list_if_orphan(rt, s);
}

void pm_free_small(struct pm_rt *rt, struct pm_trec *rec, uint32_t s,
                   struct pm_sb_header *h, uint32_t idx, uint32_t c)
{
    /* c: the class the caller's lookup found (the page map's), and then
     * the operation touches that class's superblocks only (the block's,
     * a spare a re-adoption gives back, the block's superblock
     * released); UINT32_MAX: any */
    if (c == UINT32_MAX)
        pm_op_enter(rt, rec);
    else
        pm_op_enter_as(rt, rec, PM_BUSY_CLASS(c));
    if (pm_load_relaxed(&rec->revokes) != rec->seen_revokes) {
        pm_op_widen(rec);       /* the sync looks at every class's books */
        owner_sync_pressed(rt, rec, UINT32_MAX);
    }
    /* a superblock the thread owns, or an orphan it owned last, keeps the
     * class it was carved with until the thread releases it; any other
     * may have been carved again meanwhile, and then the flag is widened
     * rather than trusted (its re-adoption fails: the anchor moved) */
    if (c != UINT32_MAX && pm_load_relaxed(&ctl_of(rt, s)->cls) != c) {
        c = UINT32_MAX;
        (void)sb_widen_any(rt, rec, UINT32_MAX);
    }
    pm_hook(PM_HOOK_OWNER_FREE);
    uint64_t a = pm_load_relaxed(&ctl_of(rt, s)->anchor);
    if (owned_by(a, rec->id) ||
        (pm_anchor_state(a) == PM_SB_ORPHAN && pm_anchor_owner(a) == rec->id &&
         sb_readopt(rt, rec, s, c == UINT32_MAX ? h->cls : c)))
        sb_free_local(rt, rec, s, h, idx);
    else
        sb_free_remote(rt, rec, s, h, idx, h->n_words,
                       (char *)h + h->data_start + (size_t)idx * h->block_size);
    pm_op_end(rec);
}

/* ---- thread exit, recovery, scavenging ---- */

void sb_thread_exit(struct pm_rt *rt, struct pm_trec *rec)
{
    pm_op_enter(rt, rec);
    sb_owner_sync(rt, rec);
    give_back(rt, rec, UINT32_MAX);
    pm_op_end(rec);
}

/* Recovery: s was found live with n_used blocks; make it reachable.  h is
 * its header as the caller read it (the open's copy, or the mapping). */
void sb_adopt_rebuilt(struct pm_rt *rt, uint32_t s, const struct pm_sb_header *h,
                      uint32_t n_used)
{
    struct pm_sbctl *ctl = ctl_of(rt, s);
    pm_store_relaxed(&ctl->summary, 0);
    pm_store_relaxed(&ctl->n_pub, 0);
    pm_store_relaxed(&ctl->cls, h->cls);
    uint64_t e = pm_pagemap_entry(s, pm_geom_make(h->cls, h->n_blocks, h->data_start));
    for (uint32_t i = 0; i < h->n_pages; i++)
        pm_store_relaxed(&rt->pagemap[s + i], e);
    uint64_t a = pm_load_relaxed(&ctl->anchor);
    if (n_used < h->n_blocks) {
        pm_store_release(&ctl->anchor, pm_anchor_make(a, PM_SB_LISTED, 0));
        partial_push(rt, h->cls, s);
    } else {
        pm_store_release(&ctl->anchor, pm_anchor_make(a, PM_SB_ORPHAN, 0));
    }
}

/* Whether an owner whose busy flag reads b, after the thief's fence, may
 * touch superblock s (which it owns, REVOKING: its header is stable) in
 * the operation it is in: any of its superblocks, none, those of one
 * class (PM_BUSY_CLASS), or the one holding the bitmap word b names
 * (pm_op_begin_word).  An operation that
 * goes on to others widens its flag and then reads its revocation counter
 * (pm_op_widen), which the thief bumped before its fence: one the thief
 * saw narrow sees the bump there and re-validates. */
/* Nothing of s's pages is read: s's REVOKING word may be stale by now
 * (its owner took it back and released it, and the pages hold another
 * superblock's header being formatted, or a block being written); the
 * decision is then thrown away by the CAS from that word, but a read of
 * the header would race with those writes.  The page map says which
 * superblock b's page is in, and it is s's while that word stands. */
static bool busy_keeps(struct pm_rt *rt, uintptr_t b, uint32_t s)
{
    if (b == 0 || b == PM_BUSY_NONE)
        return false;
    if (b == PM_BUSY_ANY)
        return true;
    if (pm_busy_is_class(b))
        /* s's class, from its control word as sb_list_if_orphan takes
         * it: written at the carve, before s was anyone's, and the same
         * while the REVOKING word stands */
        return pm_load_relaxed(&ctl_of(rt, s)->cls) == pm_busy_class(b);
    uintptr_t off = b - (uintptr_t)rt->data;
    if (off >= (pm_load_acquire(&rt->n_pages) << rt->page_shift))
        return false;
    return pm_pagemap_first1(pm_load_relaxed(&rt->pagemap[off >> rt->page_shift])) == s + 1;
}

/* Takes superblocks from other threads that are not inside an operation,
 * or are inside one that touches none of them or only another superblock
 * (busy_keeps); each stolen one is collected and released if empty, else
 * listed. */
/* *kept: superblocks other threads keep because they were inside a call
 * (or NULL); *reowned (or NULL): those and the ones their owners took
 * back themselves meanwhile (a call begun after the counter moved). */
static uint32_t revoke_others(struct pm_rt *rt, struct pm_trec *rec, uint32_t *kept,
                              uint32_t *reowned)
{
    if (os_membarrier_init() != 0) {
        if (kept)
            *kept = UINT32_MAX;         /* cannot tell: nothing revoked */
        if (reowned)
            *reowned = UINT32_MAX;
        return 0;
    }
    enum { BATCH = 256 };
    uint32_t cand[BATCH];
    uint64_t word[BATCH];               /* the REVOKING anchor each goes on from */
    uint32_t freed = 0;
    uint64_t limit = pm_load_acquire(&rt->n_pages);
    uint64_t p = 0;
    while (p < limit) {
        uint32_t n = 0;
        while (n < BATCH && (p = pg_next_set(rt->start_bits, p, limit)) != PG_NONE) {
            uint32_t s = (uint32_t)p++;
            if (!pg_bit(rt->kind_bits, s))
                continue;
            pm_atomic_u64 *aw = &ctl_of(rt, s)->anchor;
            uint64_t a = pm_load_acquire(aw);
            uint32_t v = pm_anchor_owner(a);
            if (v == rec->id)
                continue;
            if (pm_anchor_state(a) == PM_SB_OWNED) {
                uint64_t r = pm_anchor_make(a, PM_SB_REVOKING, v);
                if (!pm_cas_strong_seq_cst(aw, &a, r))
                    continue;
                a = r;
            } else if (pm_anchor_state(a) != PM_SB_REVOKING) {
                continue;
            }
            /* REVOKING: this thief's now, or another's that may be stopped
             * for good between its CAS and its decision (a review: its
             * batch was out of everyone's reach).  Either way the same
             * steps from that word: the bump, the fence, the look at busy,
             * and a CAS from exactly that word, so of two thieves on it
             * only the first decision counts, and a word an owner took
             * back and a later thief made REVOKING again is not this one. */
            pm_fetch_add_acq_rel(&rt->recs[v].revokes, 1u);
            word[n] = a;
            cand[n++] = s;
        }
        if (p == PG_NONE)
            p = limit;
        if (n == 0)
            continue;
        bool fenced = os_membarrier() == 0;
        pm_hook(PM_HOOK_REVOKE_DECIDE);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t s = cand[i];
            pm_atomic_u64 *aw = &ctl_of(rt, s)->anchor;
            uint64_t a = word[i];
            uint32_t v = pm_anchor_owner(a);
            /* each CAS below fails when the owner took s back meanwhile,
             * or another thief decided first */
            if (!fenced || busy_keeps(rt, pm_load_acquire(&rt->recs[v].busy), s)) {
                if (pm_cas_strong_seq_cst(aw, &a, pm_anchor_make(a, PM_SB_OWNED, v)) && kept)
                    ++*kept;
                if (reowned && owned_by(pm_load_acquire(aw), v))
                    ++*reowned;
                continue;
            }
            if (!pm_cas_strong_seq_cst(aw, &a, pm_anchor_make(a, PM_SB_OWNED, rec->id))) {
                if (reowned && owned_by(pm_load_acquire(aw), v))
                    ++*reowned;
                continue;
            }
            uint32_t c = sb_header(rt, s)->cls;
            collect(rt, s);
            if (all_clear(sb_header(rt, s)) && release(rt, rec, s)) {
                freed++;
                continue;
            }
            if (own_move(rt, rec, s, PM_SB_LISTED, 0))
                partial_push(rt, c, s);
        }
    }
    return freed;
}

/* The partial lists of every class sorted: empty superblocks released,
 * the others listed again.  Each one taken is put back, on the other side,
 * before the next is taken, so a thread stopped here holds one superblock
 * at most.  (Until 2026-12-04 the kept ones went on a private chain until
 * the class was done: a thread stopped there held the class's partial
 * superblocks, and the others' mallocs of that class found nothing to
 * take: docs/design.md, G5b.)  Side 1 first, to side 0; then side 0, with
 * those, to side 1: every superblock listed when it began is looked at
 * once or twice.  Each pass takes at most as many superblocks as the class
 * can have in the space, so that two scavenges moving the same superblocks
 * to and fro both end. */
static uint32_t sort_lists(struct pm_rt *rt, struct pm_trec *rec)
{
    uint32_t freed = 0;
    uint64_t n_pages = pm_load_acquire(&rt->n_pages);
    for (uint32_t c = 0; c < rt->n_small; c++)
        for (int from = 1; from >= 0; from--) {
            uint64_t bound = n_pages / rt->cls[c].floor_pages + 1;
            for (uint64_t taken = 0; taken < bound; taken++) {
                /* raised before the take and after the put: a pop that
                 * looked at both sides in between looks again (an empty
                 * side is left alone, so that a scavenge does not send
                 * every class's pops round again) */
                if ((uint32_t)pm_load_acquire(&rt->partial[c][from]) == 0)
                    break;
                pm_fetch_add_seq_cst(&rt->sort_moves[c], 1);
                uint32_t s = pop_side(rt, c, from);
                if (s == PM_NO_SB)
                    break;
                if (!anchor_move(rt, s, PM_SB_LISTED, 0, true, PM_SB_OWNED, rec->id))
                    continue;
                pm_hook(PM_HOOK_SCAVENGE_HELD);
                collect(rt, s);
                if (all_clear(sb_header(rt, s)) && release(rt, rec, s)) {
                    freed++;
                    continue;
                }
                if (own_move(rt, rec, s, PM_SB_LISTED, 0))
                    push_side(rt, c, 1 - from, s);
                pm_fetch_add_seq_cst(&rt->sort_moves[c], 1);
            }
        }
    return freed;
}

uint32_t sb_scavenge(struct pm_rt *rt, struct pm_trec *rec, uint32_t *reowned)
{
    /* the thread's books first: its own superblocks are collected below,
     * and one a thief took while it was between calls is another's now
     * (an owner re-validates before it touches anything: the revocation
     * protocol above).  A large malloc, a lane's first log and a
     * transaction's next segment reach here with nothing synced, and a
     * collect of a superblock its new owner allocates from could lose
     * that owner's allocation bit (docs/design.md, G5b). */
    if (pm_load_relaxed(&rec->revokes) != rec->seen_revokes)
        sb_owner_sync(rt, rec);
    uint32_t freed = sort_lists(rt, rec);
    /* this thread's own empty superblocks */
    for (uint32_t c = 0; c < rt->n_small; c++) {
        struct pm_tcache *t = &rec->cls[c];
        for (uint32_t i = 0; i < t->n_owned;) {
            uint32_t s = t->owned[i];
            collect(rt, s);
            if (all_clear(sb_header(rt, s)) && release(rt, rec, s)) {
                owned_drop(rt, rec, t, i);
                freed++;
            } else {
                i++;
            }
        }
    }
    freed += revoke_others(rt, rec, NULL, reowned);
    return freed;
}

/* How long a thread that found no free block goes on asking owners that
 * were inside a call for their superblocks before malloc reports ENOMEM:
 * a call takes well under a microsecond, a thread descheduled a few
 * milliseconds; an owner stopped for good keeps them (docs/design.md). */
#define STARVE_NS (10u * 1000u * 1000u)

/* The last step of a malloc that found no free block and no page: a
 * scavenge (every partial list, this thread's empty superblocks, other
 * threads' superblocks unless they are inside a call).  When owners
 * inside a call kept some, rt->pressure says so: each such owner, at its
 * next call (the revocation moved its counter), gives back every
 * superblock but its current one (owner_sync_pressed); the caller tries
 * again, between scavenges yielding, for up to STARVE_NS.  True: try
 * again. */
bool sb_starving(struct pm_rt *rt, struct pm_trec *rec, uint32_t keep, struct sb_starve *st)
{
    if (st->round > 0) {
        if (!st->pressing || os_mono_ns() >= st->until)
            return false;
        os_yield();
        /* another starving thread may be asking this one */
        if (pm_load_relaxed(&rec->revokes) != rec->seen_revokes)
            owner_sync_pressed(rt, rec, keep);
    }
    uint32_t kept = 0;                  /* by owners inside a call */
    sb_scavenge(rt, rec, &kept);
    st->round++;
    if (kept != 0 && kept != UINT32_MAX && !st->pressing) {
        st->pressing = true;
        pm_fetch_add_acq_rel(&rt->pressure, 1u);
        st->until = os_mono_ns() + STARVE_NS;
    }
    return true;
}

void sb_starve_end(struct pm_rt *rt, struct sb_starve *st)
{
    if (st->pressing)
        pm_fetch_sub_acq_rel(&rt->pressure, 1u);
    st->pressing = false;
}

int sb_revoke_all(struct pm_rt *rt, struct pm_trec *rec)
{
    uint32_t kept = 0;
    (void)revoke_others(rt, rec, &kept, NULL);
    if (kept == 0)
        return 0;
    /* without membarrier nothing is taken: fine only if nobody else owns
     * a superblock */
    if (kept == UINT32_MAX)
        return sb_others_own(rt, rec) ? -ENOSYS : 0;
    return -EBUSY;
}

bool sb_others_own(struct pm_rt *rt, struct pm_trec *rec)
{
    uint64_t limit = pm_load_acquire(&rt->n_pages), p = 0;
    while ((p = pg_next_set(rt->start_bits, p, limit)) != PG_NONE) {
        uint64_t a = pm_load_acquire(&ctl_of(rt, (uint32_t)p)->anchor);
        if (pg_bit(rt->kind_bits, p) &&
            (pm_anchor_state(a) == PM_SB_OWNED || pm_anchor_state(a) == PM_SB_REVOKING) &&
            pm_anchor_owner(a) != rec->id)
            return true;
        p++;
    }
    return false;
}

void sb_forget_thread(struct pm_trec *rec)
{
    for (uint32_t c = 0; c < PM_N_CLASSES; c++) {
        struct pm_tcache *t = &rec->cls[c];
        drop_current(t);
        t->n_owned = 0;
        t->spare = 0;
        t->freemap = 0;
    }
    rec->spare_pages = 0;
}

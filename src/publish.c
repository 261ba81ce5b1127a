/* Publishing calls: allocate-into, free-from and realloc-into a location
 * inside the space, crash-atomic through a lane (an intent record, one
 * cache line in the file).  Roots use the same mechanism.
 *
 * Each thread holds one lane while it lives; lanes beyond those in the
 * metadata come from overflow tables chained from the header, so a thread
 * always gets one without waiting.
 *
 * Protocol (every step persisted and fenced before the next in PMEM mode):
 *   alloc-into   reserve a block (taken from the thread's cache or pages
 *                claimed, nothing persistent yet); lane = ALLOC(dest, blk);
 *                commit the block (alloc bit / START); *dest = blk; lane idle.
 *   free-from    lane = FREE(dest, blk); *dest = 0; free blk; lane idle;
 *                only then may blk be reused (pages released, superblock
 *                released, remote bit collected: n_pub holds collection off).
 *   realloc-into reserve new, copy; lane = REALLOC(dest, new, old); commit
 *                new; *dest = new; free old; lane idle.
 * Recovery of a lane that is not idle:
 *   ALLOC    *dest == blk ? keep blk : free blk
 *   FREE     *dest == blk ? *dest = 0 ; free blk (idempotent)
 *   REALLOC  *dest == new ? keep new, free old : free new
 * "free" there is idempotent because no block named by a live lane can have
 * been reused (pins, below), so after a crash at any point either both the
 * block and *dest changed or neither did.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define LANE_CHUNK PM_LANE_CHUNK
#define LANE_MAX_CHUNKS PM_LANE_MAX_CHUNKS

/* ---- lanes ---- */

static uint32_t n_meta_lanes(struct pm_rt *rt)
{
    return rt->fixed.n_lanes;
}

static struct pm_lane *lane_at(struct pm_rt *rt, uint32_t i)
{
    uint32_t n = n_meta_lanes(rt);
    if (i < n)
        return (struct pm_lane *)(rt->base + rt->fixed.lanes_off) + i;
    struct pm_lane_table *t = pm_load_acquire(&rt->lane_chunk[(i - n) / LANE_CHUNK]);
    return &t->lane[(i - n) % LANE_CHUNK];
}

/* Walks the chain of overflow tables, caching each over what the cache
 * held (never cleared first: pub_lanes_rescan); returns the link word at
 * its end (NULL when the chain is full, or broken: an open verified it,
 * pm_verify, so only a table added meanwhile can be seen half made), and
 * in *found (if not NULL) how many tables it cached. */
static pm_atomic_u64 *chunks_walk(struct pm_rt *rt, uint32_t *found)
{
    pm_atomic_u64 *link = &rt->hdr->live.lanes_next_off, *end = NULL;
    uint32_t k = 0;
    for (; k < LANE_MAX_CHUNKS; k++) {
        uint64_t off = pm_load_acquire(link);
        if (off == 0) {
            end = link;
            break;
        }
        pm_hook(PM_HOOK_LANES_RESCAN);
        /* the thread that linked it may not have written the link back
         * yet: a lane taken in a table whose link a power failure loses
         * would hold a record nobody recovers (G3) */
        if (rt->mode == PM_MODE_WRITER)
            pm_persist(rt, link, sizeof *link);
        struct pm_lane_table *t = pm_lane_table_at(rt, off, NULL);
        if (t == NULL)
            break;
        pm_store_release(&rt->lane_chunk[k], t);
        uint32_t have = pm_load_acquire(&rt->n_lane_chunks);
        while (have < k + 1 &&
               !pm_cas_weak_acq_rel(&rt->n_lane_chunks, &have, k + 1))
            ;
        link = &t->next_off;
    }
    if (found != NULL)
        *found = k;
    return end;
}

static pm_atomic_u64 *chunks_discover(struct pm_rt *rt)
{
    return chunks_walk(rt, NULL);
}

static uint64_t table_link(struct pm_rt *rt, struct pm_trec *rec, struct pm_lane *l,
                           pm_atomic_u64 *link, size_t size, void (*init)(void *, void *),
                           void *arg);

static void chunk_init(void *blk, void *arg)
{
    (void)arg;
    struct pm_lane_table *t = blk;
    memset(t, 0, sizeof *t + LANE_CHUNK * sizeof(struct pm_lane));
    t->magic = PM_LANE_TABLE_MAGIC;
    t->n = LANE_CHUNK;
}

/* chunk_add through the header's chunk lane, which the caller holds: an
 * allocation into the link at the chain's end (table_link), so that a
 * crash between the table's commit and its link leaves a record recovery
 * rolls back (the table freed), never a table nobody names.  A link
 * another thread took first: the caller looks for a lane again (there
 * are new ones). */
static bool chunk_add_laned(struct pm_rt *rt, struct pm_trec *rec, size_t size)
{
    pm_op_enter(rt, rec);
    pm_atomic_u64 *link = chunks_discover(rt);
    uint64_t off = link != NULL ? table_link(rt, rec, &rt->hdr->chunk_lane, link, size,
                                             chunk_init, NULL)
                                : 0;
    pm_op_end(rec);
    if (off == 0)
        return false;
    chunks_discover(rt);
    return true;
}

/* The header's chunk lane, for one call of the thread that takes it: a
 * volatile flag (the lane record is in the file, no thread's). */
static bool chunk_lane_take(struct pm_rt *rt)
{
    uint32_t idle = 0;
    return pm_load_relaxed(&rt->chunk_lane_busy) == 0 &&
           pm_cas_strong_acq_rel(&rt->chunk_lane_busy, &idle, 1u);
}

static void chunk_lane_give(struct pm_rt *rt)
{
    pm_store_release(&rt->chunk_lane_busy, 0u);
}

/* chunk_add when another thread holds the header's chunk lane (two
 * threads need a table at once, and that one may be stopped for good):
 * with no record to roll back by, the table is linked before its block is
 * committed.  Reserved (nothing in the file yet), filled and written
 * back, linked at the chain's end, then committed, all inside one
 * operation (no revocation takes the reserved block from under it).  A
 * crash before the link leaves the block free; one between the link and
 * the commit a linked table whose place is free, which pm_verify accepts
 * and recovery commits (pm_lanes_recover).  Until 2026-12-07 this way
 * allocated the table and then linked it, and a crash between the two
 * leaked it. */
static bool chunk_add_unlaned(struct pm_rt *rt, struct pm_trec *rec, size_t size)
{
    pm_op_enter(rt, rec);
    struct pm_resv rv;
    if (pub_reserve(rt, rec, size, &rv) == NULL) {
        pm_op_end(rec);
        return false;
    }
    pm_vg_internal(rv.blk, size);
    chunk_init(rv.blk, NULL);
    pm_persist(rt, rv.blk, size);
    uint64_t off = (uint64_t)((char *)rv.blk - rt->base);
    for (;;) {
        pm_atomic_u64 *link = chunks_discover(rt);
        if (link == NULL) {
            /* never committed: free in the file; a page run goes back to
             * the page bitmap */
            pm_vg_forget(rt, rv.blk, rv.usable);
            if (rv.large)
                pg_release(rt, rv.first, rv.n);
            pm_op_end(rec);
            return false;
        }
        uint64_t zero = 0;
        if (pm_cas_strong_seq_cst(link, &zero, off)) {
            pm_persist(rt, link, sizeof *link);
            pm_hook(PM_HOOK_CHUNK_LINKED);
            pub_commit(rt, &rv);
            pm_own_mark(rt, off);
            pm_op_end(rec);
            chunks_discover(rt);
            return true;
        }
    }
}

/* A lane table more at the chain's end: through the header's chunk lane
 * when no other thread holds it, else chunk_add_unlaned. */
static bool chunk_add(struct pm_rt *rt, struct pm_trec *rec)
{
    size_t size = PM_LANE_TABLE_BYTES;
    if (chunk_lane_take(rt)) {
        bool ok = chunk_add_laned(rt, rec, size);
        chunk_lane_give(rt);
        return ok;
    }
    return chunk_add_unlaned(rt, rec, size);
}

struct pm_lane *pub_lane(struct pm_rt *rt, struct pm_trec *rec)
{
    if (rec->lane >= 0)
        return lane_at(rt, (uint32_t)rec->lane);
    for (;;) {
        uint32_t chunks = pm_load_acquire(&rt->n_lane_chunks);
        uint32_t total = n_meta_lanes(rt) + chunks * LANE_CHUNK;
        for (uint32_t i = 0; i < total; i++) {
            uint32_t zero = 0;
            if (pm_load_relaxed(&rt->lane_owner[i]) == 0 &&
                pm_cas_strong_acq_rel(&rt->lane_owner[i], &zero, rec->id)) {
                rec->lane = (int32_t)i;
                return lane_at(rt, i);
            }
        }
        if (!chunk_add(rt, rec)) {
            /* no room for a table of its own, or the chain full: tables
             * other threads added since the look above have lanes (many
             * threads with none add one each at once) */
            chunks_discover(rt);
            if (pm_load_acquire(&rt->n_lane_chunks) != chunks)
                continue;
            errno = ENOMEM;
            return NULL;
        }
    }
}

/* pub_lane, or where no lane can be had (every lane a live thread's, and
 * no room for a lane table: a full space) the header's chunk lane when no
 * other thread holds it; *chunk says which, for pub_lane_done.  A thread
 * keeps its lane for life, so without this a full space refused every
 * free_from and root_remove of a thread that had none yet, and
 * alloc_into's that a malloc would have served (a helper's hunt: 72
 * threads each with a lane in a 1 MiB space).  The chunk lane is then
 * busy for the call: a thread adding a lane table meanwhile takes the
 * way without a lane (chunk_add). */
static struct pm_lane *pub_lane_any(struct pm_rt *rt, struct pm_trec *rec, bool *chunk)
{
    *chunk = false;
    struct pm_lane *l = pub_lane(rt, rec);
    if (l != NULL)
        return l;
    if (chunk_lane_take(rt)) {
        *chunk = true;
        return &rt->hdr->chunk_lane;
    }
    errno = ENOMEM;
    return NULL;
}

static void pub_lane_done(struct pm_rt *rt, bool chunk)
{
    if (chunk)
        chunk_lane_give(rt);
}

static void lane_set(struct pm_rt *rt, struct pm_lane *l, uint64_t op,
                     uint64_t dest, uint64_t blk, uint64_t old, uint64_t size)
{
    l->dest_off = dest;
    l->block_off = blk;
    l->old_off = old;
    l->size = size;
    /* last, with the check that tells a whole record from a torn one */
    pm_store_release(&l->op, op | pm_lane_check(op, dest, blk, old, size) << 8);
    pm_persist(rt, l, sizeof *l);
}

static void lane_clear(struct pm_rt *rt, struct pm_lane *l)
{
    pm_store_release(&l->op, (uint64_t)PM_LANE_IDLE);
    pm_persist(rt, &l->op, sizeof l->op);
}

/* A block just committed under lane l (an allocation its location did
 * not take: another thread's was there first) freed under the same lane,
 * which is then idle: a crash on the way has recovery free it (ALLOC, the
 * location not naming it), idempotently. */
static void free_under_lane(struct pm_rt *rt, struct pm_trec *rec, struct pm_lane *l,
                            void *blk, size_t usable);

/* ---- reserve and commit ---- */

void *pub_reserve(struct pm_rt *rt, struct pm_trec *rec, size_t size,
                  struct pm_resv *rv)
{
    memset(rv, 0, sizeof *rv);
    if (size == 0)
        size = 1;
    if (size <= rt->max_small) {
        uint32_t bsize = 0;
        rv->blk = sb_reserve(rt, rec, pm_size_class(size), &rv->aword, &rv->bit, &bsize);
        if (rv->blk != NULL) {
            rv->usable = bsize;
            return rv->blk;
        }
    }
    uint64_t first = lg_reserve(rt, rec, size, 0, &rv->n);
    if (first == PG_NONE)
        return NULL;
    rv->large = true;
    rv->usable = rv->n << rt->page_shift;
    rv->first = first;
    rv->blk = rt->data + (first << rt->page_shift);
    return rv->blk;
}

void pub_commit(struct pm_rt *rt, struct pm_resv *rv)
{
    if (rv->large) {
        lg_commit(rt, rv->first, rv->n);
    } else {
        pm_store_relaxed(rv->aword, pm_load_relaxed(rv->aword) | rv->bit);
        pm_persist(rt, rv->aword, sizeof *rv->aword);
    }
}

/* ---- the free half ---- */

static int prepare(struct pm_rt *rt, struct pm_trec *rec, void *blk, struct pm_pubfree *pf,
                   bool local_ok);

int pub_free_prepare(struct pm_rt *rt, struct pm_trec *rec, void *blk,
                     struct pm_pubfree *pf)
{
    return prepare(rt, rec, blk, pf, true);
}

bool pub_free_live(const struct pm_pubfree *pf)
{
    if (pf->large)
        return true;
    uint32_t w = pf->idx >> 6;
    uint64_t bit = UINT64_C(1) << (pf->idx & 63);
    return (pm_load_relaxed(&pf->h->bits[w]) & bit) &&
           !(pm_load_relaxed(&pf->h->bits[pf->h->n_words + w]) & bit);
}

/* The block at blk, small or large, into pf; 0, or why it is no block. */
int pub_free_locate(struct pm_rt *rt, const void *blk, struct pm_pubfree *pf)
{
    memset(pf, 0, sizeof *pf);
    int r = sb_locate(rt, blk, &pf->s, &pf->h, &pf->idx);
    if (r == 1 && lg_is_block(rt, blk, &pf->first, &pf->last)) {
        pf->large = true;
        return 0;
    }
    return r == 1 ? PERSISTENT_E_BAD_POINTER : r;
}

/* A located block (pub_free_locate) prepared for its free. */
static int prepare_located(struct pm_rt *rt, struct pm_trec *rec, struct pm_pubfree *pf,
                           bool local_ok)
{
    if (pf->large)
        return 0;
    if (!pub_free_live(pf))
        return PERSISTENT_E_DOUBLE_FREE;
    uint64_t a = pm_load_relaxed(&rt->ctl[pf->s].anchor);
    pf->local = local_ok &&
                ((pm_anchor_state(a) == PM_SB_OWNED && pm_anchor_owner(a) == rec->id) ||
                 (pm_anchor_state(a) == PM_SB_ORPHAN && pm_anchor_owner(a) == rec->id &&
                  sb_readopt(rt, rec, pf->s, pf->h->cls)));
    if (!pf->local)   /* before the remote bit: see collect() */
        pm_fetch_add_seq_cst(&rt->ctl[pf->s].n_pub, 1u);
    return 0;
}

/* As pub_free_prepare for a located block, but a small block is always
 * freed as another thread frees it (its remote bit), so that it stays out
 * of reach until pub_free_finish however long that takes: the owner's
 * cache never sees it, and n_pub holds its collection off. */
int pub_free_prepare_held_at(struct pm_rt *rt, struct pm_trec *rec, struct pm_pubfree *pf)
{
    return prepare_located(rt, rec, pf, false);
}

int pub_free_prepare_at(struct pm_rt *rt, struct pm_trec *rec, struct pm_pubfree *pf)
{
    return prepare_located(rt, rec, pf, true);
}

static int prepare(struct pm_rt *rt, struct pm_trec *rec, void *blk, struct pm_pubfree *pf,
                   bool local_ok)
{
    int r = pub_free_locate(rt, blk, pf);
    return r != 0 ? r : prepare_located(rt, rec, pf, local_ok);
}

static void clear_bit(struct pm_rt *rt, pm_atomic_u64 *w, uint64_t bit, bool fence)
{
    pm_fetch_and_acq_rel(w, ~bit);
    if (fence)
        pm_persist(rt, w, sizeof *w);
    else
        pm_flush(rt, w, sizeof *w);
}

/* The block stops being live; it cannot be reused until pub_free_finish.
 * fence: made durable before it returns; else only written back (the
 * caller fences; a large block's start bit is fenced all the same). */
static void free_bits(struct pm_rt *rt, struct pm_pubfree *pf, bool fence)
{
    if (pf->large) {
        /* the start bit first, durable: an end bit cleared without it
         * would join the run to the next one */
        clear_bit(rt, &rt->start_bits[pf->first >> 6], UINT64_C(1) << (pf->first & 63),
                  true);                                    /* commit */
        clear_bit(rt, &rt->end_bits[pf->last >> 6], UINT64_C(1) << (pf->last & 63), fence);
        return;
    }
    uint32_t w = pf->idx >> 6;
    uint64_t bit = UINT64_C(1) << (pf->idx & 63);
    if (pf->local) {
        pm_atomic_u64 *aw = &pf->h->bits[w];
        pm_store_relaxed(aw, pm_load_relaxed(aw) & ~bit);
        if (fence)
            pm_persist(rt, aw, sizeof *aw);
        else
            pm_flush(rt, aw, sizeof *aw);
    } else {
        pm_atomic_u64 *rw = &pf->h->bits[pf->h->n_words + w];
        pm_fetch_or_seq_cst(rw, bit);
        if (fence)
            pm_persist(rt, rw, sizeof *rw);
        else
            pm_flush(rt, rw, sizeof *rw);
        pm_fetch_or_seq_cst(&rt->ctl[pf->s].summary, UINT64_C(1) << w);
    }
}

void pub_free_do(struct pm_rt *rt, struct pm_pubfree *pf)
{
    free_bits(rt, pf, true);
}

void pub_free_flush(struct pm_rt *rt, struct pm_pubfree *pf)
{
    free_bits(rt, pf, false);
}

/* A prepared free that will not happen (its location changed): undo the
 * preparation. */
void pub_free_abandon(struct pm_rt *rt, struct pm_trec *rec, struct pm_pubfree *pf)
{
    (void)rec;
    if (!pf->large && !pf->local) {
        pm_fetch_sub_seq_cst(&rt->ctl[pf->s].n_pub, 1u);
        sb_list_if_orphan(rt, pf->s);
    }
}

/* After the lane is idle: the block may be reused from here on. */
void pub_free_finish(struct pm_rt *rt, struct pm_trec *rec, struct pm_pubfree *pf)
{
    if (pf->large) {
        pg_release_cached(rt, rec, pf->first, pf->last - pf->first + 1);
        return;
    }
    if (pf->local) {
        sb_after_local_free(rt, rec, pf->s, pf->h, pf->idx);
        return;
    }
    /* seq_cst against detach(): one of us lists the superblock */
    pm_fetch_sub_seq_cst(&rt->ctl[pf->s].n_pub, 1u);
    sb_list_if_orphan(rt, pf->s);
}

/* ---- pins: no block a live lane names is reused ----
 * Recovery frees the block of an ALLOC or FREE lane whose location no
 * longer names it (a REALLOC lane's new block likewise).  That is right
 * only if no other thread freed the block meanwhile and had it reused, and
 * others could: a free_from that lost the race for a location wrote its
 * lane first, and the winner freed the block, which was allocated again
 * elsewhere; or another thread freed, from the location alloc_into had
 * just filled, a block the alloc's lane still named.  A SIGKILL before
 * that lane was idle then had recovery free a live, published block (a
 * review found both, 2026-12-06).
 *
 * So a thread pins the block its lane will name (rec->pin): before the
 * block is in the location (alloc_into, realloc_into's new block, a root's
 * creation), or for a free before it reads the location again and writes
 * its lane (free_from, root_remove).  A free's pin is a seq_cst store and
 * the location's change a seq_cst CAS, so the thread whose CAS takes the
 * block out of the location sees every pin of a lane that may name it; an
 * allocation's pin comes before the release that puts the block where that
 * thread reads it.  If there
 * is one, it frees the block as held (a small block's remote bit with
 * n_pub raised, as a thread that is not the owner does; a run's pages
 * claimed still) and hands the finish, which makes it reusable, to the
 * pinning thread (PM_PIN_DEFER), which does it when it drops its pin, once
 * its lane is idle, or hands it on to another thread that pins the block
 * still.  Nobody waits: a thread stopped with a pin keeps that block from
 * reuse, and for a small one (n_pub raised) its superblock's remote frees
 * from collection, as a thread stopped inside free_from always did. */

/* For a free: seq_cst, before the location is read again. */
static void pin_set(struct pm_trec *rec, uint64_t off)
{
    pm_store_seq_cst(&rec->pin, off);
}

/* For a block not yet in its location: a release store is enough, the
 * location's store or CAS (a release) comes after it, and a thread that
 * finds the block there (an acquire) sees the pin. */
static void pin_new(struct pm_trec *rec, uint64_t off)
{
    pm_store_release(&rec->pin, off);
}

/* Whether another thread's pin names the block at off. */
static bool pinned_by_other(struct pm_rt *rt, struct pm_trec *rec, uint64_t off)
{
    uint32_t n = pm_load_acquire(&rt->n_recs);
    for (uint32_t id = 1; id <= n && id < PM_MAX_RECS; id++)
        if (&rt->recs[id] != rec && pm_load_seq_cst(&rt->recs[id].pin) == off)
            return true;
    return false;
}

/* The finish of the free of the block at off, held (pages: its run's
 * length, 0 for a small block), handed to another thread whose pin names
 * it; whether one took it.  What it finds in its pin says so, instead of
 * the offset it knows. */
static bool pin_hand_on(struct pm_rt *rt, struct pm_trec *rec, uint64_t off, uint64_t pages)
{
    uint32_t n = pm_load_acquire(&rt->n_recs);
    for (uint32_t id = 1; id <= n && id < PM_MAX_RECS; id++) {
        struct pm_trec *r = &rt->recs[id];
        uint64_t exp = off;
        if (r != rec && pm_load_seq_cst(&r->pin) == off &&
            pm_cas_strong_seq_cst(&r->pin, &exp, pages << 1 | PM_PIN_DEFER))
            return true;
    }
    return false;
}

/* The free of the block at off was left to this thread: finished (the
 * block reusable), or handed on. */
static void finish_handed(struct pm_rt *rt, struct pm_trec *rec, uint64_t off, uint64_t pages)
{
    if (pin_hand_on(rt, rec, off, pages))
        return;
    if (pages != 0) {
        pg_release_cached(rt, rec, (off - rt->data_off) >> rt->page_shift, pages);
        return;
    }
    /* n_pub holds the superblock: its page map entry is there */
    uint32_t s = pm_run_first(rt, off);
    pm_fetch_sub_seq_cst(&rt->ctl[s].n_pub, 1u);
    sb_list_if_orphan(rt, s);
}

/* After the lane is idle: the pin dropped, and a free handed to this
 * thread meanwhile finished.  Only pin_hand_on writes another thread's
 * pin, and only from an offset, so the value found is this thread's. */
static void pin_drop(struct pm_rt *rt, struct pm_trec *rec, uint64_t off)
{
    uint64_t v = off;
    if (pm_cas_strong_seq_cst(&rec->pin, &v, (uint64_t)0))
        return;
    pm_store_seq_cst(&rec->pin, (uint64_t)0);
    finish_handed(rt, rec, off, v >> 1);
}

/* The block at off, just taken out of its location by this thread's CAS,
 * freed under its lane l (pf prepared): as held if a pin names it, its
 * finish then handed to the pinning thread. */
static void free_taken(struct pm_rt *rt, struct pm_trec *rec, struct pm_lane *l, uint64_t off,
                       struct pm_pubfree *pf)
{
    bool pinned = pinned_by_other(rt, rec, off);
    if (pinned && !pf->large && pf->local) {
        pf->local = false;              /* before the remote bit: collect() */
        pm_fetch_add_seq_cst(&rt->ctl[pf->s].n_pub, 1u);
    }
    pub_free_do(rt, pf);
    lane_clear(rt, l);
    if (!pinned || !pin_hand_on(rt, rec, off, pf->large ? pf->last - pf->first + 1 : 0))
        pub_free_finish(rt, rec, pf);
}

/* ---- the calls ---- */

/* Whether the word at off (in the pages) lies in a live block of the
 * program's: not in a superblock's header or a free block, in no free page,
 * in none of the library's own blocks (lane and root tables, transaction
 * logs).  A stale location there would have a call write the library's
 * metadata (a review: alloc_into through one into a superblock's header
 * made the heap unreadable).  A small block is found through the page map
 * (entries the library wrote, each one load: a superblock's geometry as
 * its carve or recovery left it), a run through its start and end bits. */
static bool dest_in_block(struct pm_rt *rt, uint64_t off)
{
    uint64_t page = (off - rt->data_off) >> rt->page_shift;
    uint64_t e = pm_load_acquire(&rt->pagemap[page]);
    uint32_t f1 = pm_pagemap_first1(e), g = pm_pagemap_geom(e);
    uint64_t start;
    if (f1 != 0) {
        uint32_t c = pm_geom_cls(g), nb = pm_geom_n_blocks(g);
        uint64_t b0 = rt->data_off + ((uint64_t)(f1 - 1) << rt->page_shift) +
                      pm_geom_data_start(g);
        uint64_t bsize = rt->cls[c].block_size;
        uint64_t idx = off >= b0 ? (off - b0) / bsize : UINT64_MAX;
        if (idx >= nb)
            return false;
        const pm_atomic_u64 *bits = sb_header(rt, f1 - 1)->bits;
        uint64_t bit = UINT64_C(1) << (idx & 63);
        if (!(pm_load_acquire((pm_atomic_u64 *)&bits[idx >> 6]) & bit) ||
            (pm_load_acquire((pm_atomic_u64 *)&bits[(nb + 63) / 64 + (idx >> 6)]) & bit))
            return false;
        start = b0 + idx * bsize;
    } else {
        uint64_t s = pg_prev_set(rt->start_bits, page);
        if (s == PG_NONE || pg_bit(rt->kind_bits, s))
            return false;               /* no run, or a superblock's pages */
        uint64_t last = pg_next_set(rt->end_bits, s, pm_load_acquire(&rt->n_pages));
        if (last == PG_NONE || page > last)
            return false;
        start = rt->data_off + (s << rt->page_shift);
    }
    return !pm_marked(rt, rt->ownmark, start);
}

static int dest_check(struct pm_rt *rt, const persistent_offset_t *dest,
                      uint64_t *off)
{
    uintptr_t d = (uintptr_t)dest, b = (uintptr_t)rt->base;
    uint64_t limit = rt->data_off + (pm_load_acquire(&rt->n_pages) << rt->page_shift);
    if (dest == NULL || d < b + rt->data_off || d - b > limit - sizeof *dest ||
        (d & (sizeof *dest - 1)) != 0)
        return pm_err(-EINVAL, "destination %p is not an aligned word inside the space",
                      (const void *)dest);
    uint64_t seen = pm_auto_settle(rt);
    while (!dest_in_block(rt, d - b)) {
        if (!pm_auto_moved(rt, seen))
            return pm_err(-EINVAL, "destination %p is in no live block of the program's",
                          (const void *)dest);
        seen = pm_auto_settle(rt);
    }
    *off = d - b;
    return 0;
}

static inline pm_atomic_u64 *dest_word(persistent_offset_t *dest)
{
    return (pm_atomic_u64 *)(void *)dest;
}

/* The publishing calls' work under the lane l (pub_lane_any). */
static int alloc_into_under(struct pm_rt *rt, struct pm_trec *rec, persistent_offset_t *dest,
                            uint64_t doff, size_t size, struct pm_lane *l);
static int free_from_under(struct pm_rt *rt, struct pm_trec *rec, persistent_offset_t *dest,
                           uint64_t doff, struct pm_lane *l);
static int realloc_into_under(struct pm_rt *rt, struct pm_trec *rec, persistent_offset_t *dest,
                              uint64_t doff, size_t size, void *old, uint64_t ooff, size_t us,
                              struct pm_lane *l);

int persistent_alloc_into(allocator_space_t *space, persistent_offset_t *dest,
                          size_t size)
{
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (rec == NULL)
        return pm_err(-errno, "alloc_into: %s", persistent_strerror(-errno));
    uint64_t doff = 0;
    int r = dest_check(rt, dest, &doff);
    if (r < 0)
        return r;
    if (size == 0)
        return pm_err(-EINVAL, "alloc_into: size 0");
    bool chunk;
    struct pm_lane *l = pub_lane_any(rt, rec, &chunk);
    if (l == NULL)
        return pm_err(-ENOMEM, "alloc_into: no lane");
    r = alloc_into_under(rt, rec, dest, doff, size, l);
    pub_lane_done(rt, chunk);
    return r;
}

static int alloc_into_under(struct pm_rt *rt, struct pm_trec *rec, persistent_offset_t *dest,
                            uint64_t doff, size_t size, struct pm_lane *l)
{
    pm_op_enter(rt, rec);
    struct pm_resv rv;
    if (pub_reserve(rt, rec, size, &rv) == NULL) {
        pm_op_end(rec);
        return pm_err(-ENOMEM, "alloc_into: out of space");
    }
    /* memcheck before *dest names it: another thread may free it from
     * there at once */
    pm_vg_user(rt, rv.blk, rv.usable, false);
    uint64_t boff = (uint64_t)((char *)rv.blk - rt->base);
    pin_new(rec, boff);                 /* before *dest names it */
    lane_set(rt, l, PM_LANE_ALLOC, doff, boff, 0, size);
    pub_commit(rt, &rv);
    pm_store_release(dest_word(dest), boff);
    pm_persist(rt, dest, sizeof *dest);
    pm_hook(PM_HOOK_PUB_PUBLISHED);
    lane_clear(rt, l);
    pin_drop(rt, rec, boff);
    pm_op_end(rec);
    return 0;
}

int persistent_free_from(allocator_space_t *space, persistent_offset_t *dest)
{
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (rec == NULL)
        return pm_err(-errno, "free_from: %s", persistent_strerror(-errno));
    uint64_t doff = 0;
    int r = dest_check(rt, dest, &doff);
    if (r < 0)
        return r;
    bool chunk;
    struct pm_lane *l = pub_lane_any(rt, rec, &chunk);
    if (l == NULL)
        return pm_err(-ENOMEM, "free_from: no lane");
    r = free_from_under(rt, rec, dest, doff, l);
    pub_lane_done(rt, chunk);
    return r;
}

static int free_from_under(struct pm_rt *rt, struct pm_trec *rec, persistent_offset_t *dest,
                           uint64_t doff, struct pm_lane *l)
{
    int r;
    uint64_t seen = pm_auto_settle(rt);
    for (;;) {
        uint64_t boff = pm_load_acquire(dest_word(dest));
        if (boff == 0)
            return 0;                   /* nothing there, or taken meanwhile */
        if (!pm_in_data(rt, boff, 1)) {
            pm_misuse(rt, PERSISTENT_E_BAD_POINTER, dest,
                      "persistent_free_from (*dest is not a block's offset)");
            return pm_err(-EINVAL, "free_from: *dest holds %#llx, not a block's offset",
                          (unsigned long long)boff);
        }
        pm_hook(PM_HOOK_PUB_FREE_READ);
        int held = pm_block_held(rt, UINT32_MAX, boff);
        if (held != 0 && pm_auto_moved(rt, seen)) {
            seen = pm_auto_settle(rt);
            continue;
        }
        if (held != 0) {
            /* boff was read before: another thread may have taken the
             * block out of *dest since and it became a root's (or a
             * transaction's) block.  A misuse only if *dest still names it
             * once pinned (no free and reuse of it after that, as below);
             * else the location is read again. */
            pm_op_enter(rt, rec);
            pin_set(rec, boff);
            if (pm_load_seq_cst(dest_word(dest)) == boff)
                held = pm_block_held(rt, UINT32_MAX, boff);
            else
                held = 0;
            pin_drop(rt, rec, boff);
            pm_op_end(rec);
            if (held == 0)
                continue;
            pm_misuse(rt, held, rt->base + boff, "persistent_free_from");
            return pm_err(-EINVAL, "free_from: %s", persistent_strerror(held));
        }
        pm_op_enter(rt, rec);
        if (pm_load_relaxed(&rec->revokes) != rec->seen_revokes)
            sb_owner_sync(rt, rec);
        /* pinned, then *dest read again, then located: a lane is written
         * only for a block that a thread taking it from *dest will see
         * pinned, and while the pin stays, the block found at boff is the
         * one *dest named (no free and reuse of it between, which could
         * give it another length) */
        uint64_t was = boff;
        pin_set(rec, was);
        if (pm_load_seq_cst(dest_word(dest)) != was) {
            pin_drop(rt, rec, was);
            pm_op_end(rec);
            continue;
        }
        struct pm_pubfree pf;
        r = pub_free_prepare(rt, rec, rt->base + boff, &pf);
        if (r != 0) {
            pin_drop(rt, rec, was);
            pm_op_end(rec);
            if (pm_load_acquire(dest_word(dest)) != boff)
                continue;               /* another thread took it first */
            pm_misuse(rt, r, rt->base + boff, "persistent_free_from");
            return pm_err(-EINVAL, "free_from: %s", persistent_strerror(r));
        }
        lane_set(rt, l, PM_LANE_FREE, doff, boff, 0, 0);
        pm_hook(PM_HOOK_PUB_FREE_LANE);
        /* take the block out of *dest: of two threads freeing from the same
         * location, one gets it */
        if (!pm_cas_strong_seq_cst(dest_word(dest), &boff, (uint64_t)0)) {
            lane_clear(rt, l);
            pub_free_abandon(rt, rec, &pf);
            pin_drop(rt, rec, was);
            pm_op_end(rec);
            continue;
        }
        pm_persist(rt, dest, sizeof *dest);
        pm_vg_unuser(rt, rt->base + boff);
        free_taken(rt, rec, l, boff, &pf);
        pin_drop(rt, rec, was);
        pm_op_end(rec);
        return 0;
    }
}

int persistent_realloc_into(allocator_space_t *space, persistent_offset_t *dest,
                            size_t size)
{
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (rec == NULL)
        return pm_err(-errno, "realloc_into: %s", persistent_strerror(-errno));
    uint64_t doff = 0;
    int r = dest_check(rt, dest, &doff);
    if (r < 0)
        return r;
    uint64_t ooff = pm_load_acquire(dest_word(dest));
    if (ooff == 0)
        return persistent_alloc_into(space, dest, size);
    if (size == 0)
        return pm_err(-EINVAL, "realloc_into: size 0 (use persistent_free_from)");
    if (!pm_in_data(rt, ooff, 1)) {
        pm_misuse(rt, PERSISTENT_E_BAD_POINTER, dest,
                  "persistent_realloc_into (*dest is not a block's offset)");
        return pm_err(-EINVAL, "realloc_into: *dest holds %#llx, not a block's offset",
                      (unsigned long long)ooff);
    }
    void *old = rt->base + ooff;
    size_t us = pm_usable_settled(rt, old);
    if (us == 0) {
        pm_misuse(rt, PERSISTENT_E_BAD_POINTER, old, "persistent_realloc_into");
        return pm_err(-EINVAL, "realloc_into: *dest is not a live block");
    }
    int held = pm_block_held(rt, UINT32_MAX, ooff);
    /* in place: nothing about *dest changes, and a large resize is
     * crash-atomic by itself (large.c) */
    if (us <= rt->max_small && size <= us && (us <= 64 || size > us / 2) &&
        lg_usable(rt, old) == 0)
        return 0;
    if (lg_usable(rt, old) != 0 && pm_snap_held(rt, ooff)) {
        /* an open transaction's snapshot is in it: not resized, not moved */
        pm_misuse(rt, PERSISTENT_E_TX_BLOCK, old, "persistent_realloc_into");
        return pm_err(-EINVAL, "realloc_into: %s", persistent_strerror(PERSISTENT_E_TX_BLOCK));
    }
    if (lg_usable(rt, old) != 0 && (size > rt->max_small || size > us / 2)) {
        pm_op_enter(rt, rec);
        bool ok = lg_resize_in_place(rt, rec, old, size);
        pm_op_end(rec);
        if (ok)
            return 0;                   /* lg_resize_in_place told memcheck */
    }
    if (held != 0) {            /* moving it would free a root's block */
        pm_misuse(rt, held, old, "persistent_realloc_into");
        return pm_err(-EINVAL, "realloc_into: %s; it cannot move", persistent_strerror(held));
    }
    bool chunk;
    struct pm_lane *l = pub_lane_any(rt, rec, &chunk);
    if (l == NULL)
        return pm_err(-ENOMEM, "realloc_into: no lane");
    r = realloc_into_under(rt, rec, dest, doff, size, old, ooff, us, l);
    pub_lane_done(rt, chunk);
    return r;
}

static int realloc_into_under(struct pm_rt *rt, struct pm_trec *rec, persistent_offset_t *dest,
                              uint64_t doff, size_t size, void *old, uint64_t ooff, size_t us,
                              struct pm_lane *l)
{
    int r;
    pm_op_enter(rt, rec);
    if (pm_load_relaxed(&rec->revokes) != rec->seen_revokes)
        sb_owner_sync(rt, rec);
    struct pm_resv rv;
    if (pub_reserve(rt, rec, size, &rv) == NULL) {
        if (size <= us) {
            /* a shrink with no room for the smaller block: it stays, a
             * large one cut in place to the pages it needs (as realloc) */
            if (lg_usable(rt, old) != 0)
                (void)lg_resize_in_place(rt, rec, old, size);
            pm_op_end(rec);
            return 0;
        }
        pm_op_end(rec);
        return pm_err(-ENOMEM, "realloc_into: out of space");
    }
    pm_vg_user(rt, rv.blk, rv.usable, false);
    memcpy(rv.blk, old, size < us ? size : us);
    pm_persist(rt, rv.blk, size < us ? size : us);
    /* the old block is not pinned: located here and taken out of *dest
     * by the CAS below, it could only have been freed and reused between
     * by a free_from and an alloc_into of the same location meanwhile,
     * which the header forbids beside a realloc_into */
    struct pm_pubfree pf;
    r = pub_free_prepare(rt, rec, old, &pf);
    if (r != 0) {
        /* the reserved block was never committed: in the file it is still
         * free, and a page run goes back to the page bitmap */
        pm_vg_forget(rt, rv.blk, rv.usable);
        if (rv.large)
            pg_release(rt, rv.first, rv.n);
        pm_op_end(rec);
        pm_misuse(rt, r, old, "persistent_realloc_into");
        return pm_err(-EINVAL, "realloc_into: %s", persistent_strerror(r));
    }
    uint64_t noff = (uint64_t)((char *)rv.blk - rt->base);
    pin_new(rec, noff);                 /* before *dest names it */
    lane_set(rt, l, PM_LANE_REALLOC, doff, noff, ooff, size);
    pub_commit(rt, &rv);
    uint64_t cur = ooff;
    if (!pm_cas_strong_seq_cst(dest_word(dest), &cur, noff)) {
        /* *dest changed under us: the new block goes, still under the
         * lane (recovery would free it too), the old one stays */
        pub_free_abandon(rt, rec, &pf);
        free_under_lane(rt, rec, l, rv.blk, rv.usable);
        pin_drop(rt, rec, noff);
        pm_op_end(rec);
        return pm_err(-EAGAIN, "realloc_into: the location changed meanwhile");
    }
    pm_persist(rt, dest, sizeof *dest);
    pm_vg_forget(rt, old, us);
    /* the old block: a free_from that lost *dest to this call may pin it */
    free_taken(rt, rec, l, ooff, &pf);
    pin_drop(rt, rec, noff);
    pm_op_end(rec);
    return 0;
}

/* ---- roots (roots.c) publish through a lane too ---- */

static void *root_create_under(struct pm_rt *rt, struct pm_trec *rec, pm_atomic_u64 *val,
                               size_t size, uint64_t *winner, struct pm_lane *l);

void *pub_root_create(struct pm_rt *rt, struct pm_trec *rec, pm_atomic_u64 *val,
                      size_t size, uint64_t *winner)
{
    bool chunk;
    struct pm_lane *l = pub_lane_any(rt, rec, &chunk);
    if (l == NULL)
        return NULL;
    void *blk = root_create_under(rt, rec, val, size, winner, l);
    pub_lane_done(rt, chunk);
    return blk;
}

static void *root_create_under(struct pm_rt *rt, struct pm_trec *rec, pm_atomic_u64 *val,
                               size_t size, uint64_t *winner, struct pm_lane *l)
{
    pm_op_enter(rt, rec);
    struct pm_resv rv;
    if (pub_reserve(rt, rec, size, &rv) == NULL) {
        pm_op_end(rec);
        return NULL;
    }
    pm_vg_user(rt, rv.blk, rv.usable, false);
    memset(rv.blk, 0, size ? size : 1);
    pm_persist(rt, rv.blk, size ? size : 1);
    uint64_t voff = (uint64_t)((char *)val - rt->base);
    uint64_t boff = (uint64_t)((char *)rv.blk - rt->base);
    pin_new(rec, boff);                 /* before the root names it */
    lane_set(rt, l, PM_LANE_ALLOC, voff, boff, 0, size);
    pub_commit(rt, &rv);
    pm_hook(PM_HOOK_ROOT_INSERT);
    (void)pm_root_mark(rt, boff);       /* a fresh block: nobody's root */
    uint64_t cur = 0;
    if (pm_cas_strong_seq_cst(val, &cur, boff)) {
        pm_persist(rt, val, sizeof *val);
        lane_clear(rt, l);
        pin_drop(rt, rec, boff);
        pm_op_end(rec);
        *winner = boff;
        return rv.blk;
    }
    /* another thread's root won: ours goes, still under the lane */
    pm_root_unmark(rt, boff);
    free_under_lane(rt, rec, l, rv.blk, rv.usable);
    pin_drop(rt, rec, boff);
    pm_op_end(rec);
    *winner = cur;
    return NULL;
}

/* ---- the library's overflow root tables (roots.c) too ----
 *
 * The record names the link the table goes in: a crash between the
 * table's commit and the link leaves an allocation recovery rolls back,
 * never a table nobody names (the first version allocated the table,
 * then linked it with a CAS: a helper's kill sweep left a 64 KiB table
 * live for good, at every crash point between the two, and the loser of
 * the CAS had the same window before its free).  Called inside an
 * operation, which it leaves for pub_lane only (the lane may need a lane
 * table, an allocation of its own).  The link's value afterwards: this
 * table's offset, the one another thread linked first, or 0 when there
 * is no room (errno ENOMEM). */
uint64_t pub_table_create(struct pm_rt *rt, struct pm_trec *rec, pm_atomic_u64 *link,
                          size_t size, void (*init)(void *, void *), void *arg)
{
    pm_op_end(rec);
    struct pm_lane *l = pub_lane(rt, rec);
    pm_op_enter(rt, rec);
    if (l == NULL) {
        errno = ENOMEM;
        return 0;
    }
    return table_link(rt, rec, l, link, size, init, arg);
}

static void free_under_lane(struct pm_rt *rt, struct pm_trec *rec, struct pm_lane *l,
                            void *blk, size_t usable)
{
    pm_vg_forget(rt, blk, usable);
    struct pm_pubfree pf;
    if (pub_free_prepare(rt, rec, blk, &pf) == 0) {
        pub_free_do(rt, &pf);
        lane_clear(rt, l);
        pub_free_finish(rt, rec, &pf);
    } else {
        lane_clear(rt, l);
    }
}

/* A table of size bytes filled by init(blk, arg), written back, and
 * linked at *link (0 until then) through lane l, inside an operation: an
 * allocation into the link, committed, then the link's CAS.  The link's
 * value afterwards: this table's offset, or the one another thread linked
 * first (this one then freed under the lane); 0 with no room (ENOMEM). */
static uint64_t table_link(struct pm_rt *rt, struct pm_trec *rec, struct pm_lane *l,
                           pm_atomic_u64 *link, size_t size, void (*init)(void *, void *),
                           void *arg)
{
    struct pm_resv rv;
    if (pub_reserve(rt, rec, size, &rv) == NULL) {
        errno = ENOMEM;
        return 0;
    }
    pm_vg_internal(rv.blk, size);
    init(rv.blk, arg);
    pm_persist(rt, rv.blk, size);
    uint64_t loff = (uint64_t)((char *)link - rt->base);
    uint64_t boff = (uint64_t)((char *)rv.blk - rt->base);
    pin_new(rec, boff);
    lane_set(rt, l, PM_LANE_ALLOC, loff, boff, 0, size);
    pub_commit(rt, &rv);
    uint64_t cur = 0;
    if (pm_cas_strong_seq_cst(link, &cur, boff)) {
        pm_persist(rt, link, sizeof *link);
        pm_own_mark(rt, boff);
        lane_clear(rt, l);
        pin_drop(rt, rec, boff);
        return boff;
    }
    free_under_lane(rt, rec, l, rv.blk, rv.usable);
    pin_drop(rt, rec, boff);
    return cur;
}

/* ---- a thread's transaction log (tx.c) publishes through its lane ----
 *
 * The record names the lane's own tx_off: a crash between the run's
 * commit and tx_off leaves an allocation recovery rolls back (the run
 * freed), never a log nobody names (the first version allocated the log
 * and then set tx_off: a leak of the log's 64 KiB per crash there). */
void *pub_txlog_create(struct pm_rt *rt, struct pm_trec *rec, struct pm_lane *l,
                       size_t size, size_t align, void (*init)(struct pm_rt *, void *))
{
    pm_op_enter(rt, rec);
    uint64_t n = 0;
    uint64_t first = lg_reserve(rt, rec, size, align, &n);
    if (first == PG_NONE) {
        pm_op_end(rec);
        errno = ENOMEM;
        return NULL;
    }
    void *blk = rt->data + (first << rt->page_shift);
    init(rt, blk);
    uint64_t boff = (uint64_t)((char *)blk - rt->base);
    lane_set(rt, l, PM_LANE_ALLOC, (uint64_t)((char *)&l->tx_off - rt->base), boff, 0, size);
    lg_commit(rt, first, n);
    pm_store_release(&l->tx_off, boff);
    pm_persist(rt, &l->tx_off, sizeof l->tx_off);
    lane_clear(rt, l);
    pm_own_mark(rt, boff);
    pm_op_end(rec);
    return blk;
}

void pub_own_marks(struct pm_rt *rt)
{
    pub_lanes_rescan(rt);
    uint32_t n = pm_load_acquire(&rt->n_lane_chunks);
    for (uint32_t k = 0; k < n; k++) {
        struct pm_lane_table *t = pm_load_acquire(&rt->lane_chunk[k]);
        if (t != NULL)
            pm_own_mark(rt, (uint64_t)((char *)t - rt->base));
    }
    struct pm_lane *l;
    for (uint32_t i = 0; (l = pub_lane_at(rt, i)) != NULL; i++) {
        uint64_t off = pm_load_acquire(&l->tx_off);
        if (off != 0 && pm_txlog_head_ok(rt, off))
            pm_own_mark(rt, off);
    }
}

static int root_remove_under(struct pm_rt *rt, struct pm_trec *rec, pm_atomic_u64 *val,
                             struct pm_lane *l);

int pub_root_remove(struct pm_rt *rt, struct pm_trec *rec, pm_atomic_u64 *val)
{
    bool chunk;
    struct pm_lane *l = pub_lane_any(rt, rec, &chunk);
    if (l == NULL)
        return -ENOMEM;
    int r = root_remove_under(rt, rec, val, l);
    pub_lane_done(rt, chunk);
    return r;
}

static int root_remove_under(struct pm_rt *rt, struct pm_trec *rec, pm_atomic_u64 *val,
                             struct pm_lane *l)
{
    pm_op_enter(rt, rec);
    if (pm_load_relaxed(&rec->revokes) != rec->seen_revokes)
        sb_owner_sync(rt, rec);
    uint64_t v = pm_load_acquire(val);
    if (v == 0 || !pm_in_data(rt, v, 1)) {
        pm_op_end(rec);
        return -ENOENT;
    }
    if (pm_snap_held(rt, v)) {
        /* an open transaction's snapshot is in it */
        pm_op_end(rec);
        pm_misuse(rt, PERSISTENT_E_TX_BLOCK, rt->base + v, "persistent_root_remove");
        return -EBUSY;
    }
    /* pinned, read again, then located: see free_from */
    uint64_t was = v;
    pin_set(rec, was);
    struct pm_pubfree pf;
    if (pm_load_seq_cst(val) != was || pub_free_prepare(rt, rec, rt->base + v, &pf) != 0) {
        pin_drop(rt, rec, was);
        pm_op_end(rec);
        return -ENOENT;
    }
    uint64_t voff = (uint64_t)((char *)val - rt->base);
    lane_set(rt, l, PM_LANE_FREE, voff, v, 0, 0);
    if (!pm_cas_strong_seq_cst(val, &v, (uint64_t)0)) {
        /* removed by another thread meanwhile: undo our preparation */
        lane_clear(rt, l);
        pub_free_abandon(rt, rec, &pf);
        pin_drop(rt, rec, was);
        pm_op_end(rec);
        return -ENOENT;
    }
    pm_persist(rt, val, sizeof *val);
    pm_root_unmark(rt, v);              /* a plain block from here on */
    pm_vg_forget(rt, rt->base + v, 0);
    free_taken(rt, rec, l, v, &pf);
    pin_drop(rt, rec, was);
    pm_op_end(rec);
    return 0;
}

/* ---- recovery ---- */

/* Before the rebuild walk, from the persistent bits alone. */
void pub_ensure(struct pm_rt *rt, uint64_t boff, bool live)
{
    uint64_t n = pm_load_acquire(&rt->n_pages);
    if (boff < rt->data_off || boff >= rt->data_off + (n << rt->page_shift))
        return;
    uint64_t page = (boff - rt->data_off) >> rt->page_shift;
    uint64_t s = pg_prev_set(rt->start_bits, page);
    if (s != PG_NONE && pg_bit(rt->kind_bits, s)) {
        struct pm_sb_header *h = sb_header(rt, (uint32_t)s);
        if (sb_header_valid(rt, h, s) && page < s + h->n_pages) {
            uint64_t x = boff - (rt->data_off + (s << rt->page_shift)) - h->data_start;
            if (x % h->block_size != 0 || x / h->block_size >= h->n_blocks)
                return;
            uint64_t idx = x / h->block_size;
            uint64_t bit = UINT64_C(1) << (idx & 63);
            pm_atomic_u64 *aw = &h->bits[idx >> 6], *rw = &h->bits[h->n_words + (idx >> 6)];
            pm_snap_forget(rt, aw, sizeof *aw);     /* the open's copy of them */
            pm_snap_forget(rt, rw, sizeof *rw);
            uint64_t a = pm_load_relaxed(aw);
            pm_store_relaxed(aw, live ? a | bit : a & ~bit);
            pm_persist(rt, aw, sizeof *aw);
            pm_store_relaxed(rw, pm_load_relaxed(rw) & ~bit);
            pm_persist(rt, rw, sizeof *rw);
            return;
        }
    }
    if (live || (boff - rt->data_off) % rt->page_size != 0 ||
        !pg_bit(rt->start_bits, page) || pg_bit(rt->kind_bits, page))
        return;
    uint64_t e = pg_next_set(rt->end_bits, page, n);
    pg_bit_clear(rt, rt->start_bits, page);            /* commit */
    if (e != PG_NONE)
        pg_bit_clear(rt, rt->end_bits, e);
}

/* The overflow lane tables found again from the file (an open, after the
 * page images went back; an automatic transaction's abort, in
 * pm_engine_reset).  Each cached table is overwritten in place, and only
 * the entries past the chain are cleared, afterwards: another thread can
 * read the cache meanwhile.  A thread keeps its lane for life, and its
 * next publishing call finds it through lane_at (pub_lane) outside any
 * operation, so an abort of another thread's automatic transaction runs
 * beside it (that call waited for the transaction in dest_check, before
 * this one began).  Until 2026-12-06 the cache was cleared first and
 * filled again: such a call read a NULL table (fuzz_space: UBSan, member
 * access within a null struct pm_lane_table in lane_at, nine threads with
 * lanes in the first overflow table beside automatic transactions that
 * aborted; test_tx test_lanes_rescan_beside_lane). */
void pub_lanes_rescan(struct pm_rt *rt)
{
    uint32_t found;
    (void)chunks_walk(rt, &found);
    pm_store_release(&rt->n_lane_chunks, found);
    for (uint32_t k = found; k < LANE_MAX_CHUNKS; k++)
        pm_store_release(&rt->lane_chunk[k], (struct pm_lane_table *)NULL);
}

/* One lane's record carried out or rolled back (pm_lanes_recover). */
static int lane_recover(struct pm_rt *rt, struct pm_lane *l, uint32_t i)
{
    uint64_t word = pm_load_acquire(&l->op);
    uint64_t op = pm_lane_op(l, word);
    /* what is written here besides pub_ensure's bits (the lane, the
     * destination in a live block) is no superblock's header in a
     * verified heap; forgotten from the open's copy all the same */
    if (op == PM_LANE_IDLE) {
        if (word != PM_LANE_IDLE) {
            pm_snap_forget(rt, l, sizeof *l);
            lane_clear(rt, l);          /* torn: its call never started */
        }
        return 0;
    }
    /* pm_verify refused the space if a record is invalid; this only
     * keeps an address from ever being made of one */
    if (op > PM_LANE_REALLOC || !pm_lane_dest_ok(rt, l, op))
        return pm_err(PERSISTENT_E_CORRUPT, "publish lane %u holds an invalid record", i);
    pm_atomic_u64 *dest = (pm_atomic_u64 *)(rt->base + l->dest_off);
    uint64_t cur = pm_load_acquire(dest);
    if (op == PM_LANE_ALLOC) {
        pub_ensure(rt, l->block_off, cur == l->block_off);
    } else if (op == PM_LANE_FREE) {
        if (cur == l->block_off) {
            pm_snap_forget(rt, dest, sizeof *dest);
            pm_store_release(dest, (uint64_t)0);
            pm_persist(rt, dest, sizeof *dest);
        }
        pub_ensure(rt, l->block_off, false);
    } else {
        bool forward = cur == l->block_off;
        pub_ensure(rt, l->block_off, forward);
        if (forward)
            pub_ensure(rt, l->old_off, false);
    }
    pm_snap_forget(rt, l, sizeof *l);
    lane_clear(rt, l);
    return 0;
}

/* A lane table the chain links whose block was never committed (a crash
 * inside chunk_add_unlaned): committed now, before the rebuild, which
 * would take its place for free.  pm_verify accepted the place: a free
 * block of a valid superblock, or pages no run holds. */
static void chunk_commit_pending(struct pm_rt *rt, const struct pm_lane_table *t)
{
    uint64_t off = (uint64_t)((const char *)t - rt->base);
    uint64_t size = PM_LANE_TABLE_BYTES;
    struct pm_sb_header *h, hc;
    uint32_t idx;
    if (pm_block_live(rt, off) >= size || !pm_block_place(rt, off, &h, &hc, &idx))
        return;
    if (h != NULL) {
        pub_ensure(rt, off, true);
        return;
    }
    uint64_t first = (off - rt->data_off) >> rt->page_shift;
    uint64_t n = (size + rt->page_size - 1) >> rt->page_shift;
    /* END and KIND bits of no run that a crash left among these pages
     * (the rebuild clears such bits, but after this): an END would end
     * the run short of the table, a KIND make it a superblock */
    for (uint64_t p = first; p < first + n; p++) {
        if (p + 1 < first + n && pg_bit(rt->end_bits, p))
            pg_bit_clear(rt, rt->end_bits, p);
        if (pg_bit(rt->kind_bits, p))
            pg_bit_clear(rt, rt->kind_bits, p);
    }
    pg_bit_set(rt, rt->end_bits, first + n - 1);
    pg_bit_set(rt, rt->start_bits, first);      /* commit */
}

int pm_lanes_recover(struct pm_rt *rt)
{
    /* the chain as it is now: the rollback of an automatic transaction may
     * have put back a page holding a link of it (the fuzzer found lanes
     * recovered from a table found before, verified by nobody) */
    pub_lanes_rescan(rt);
    uint32_t n_tables = pm_load_acquire(&rt->n_lane_chunks);
    for (uint32_t k = 0; k < n_tables; k++)
        chunk_commit_pending(rt, pm_load_acquire(&rt->lane_chunk[k]));
    uint32_t total = n_meta_lanes(rt) + n_tables * LANE_CHUNK;
    for (uint32_t i = 0; i < total; i++) {
        int r = lane_recover(rt, lane_at(rt, i), i);
        if (r < 0)
            return r;
    }
    /* the header's chunk lane: a table added or not, whole either way */
    return lane_recover(rt, &rt->hdr->chunk_lane, total);
}

int pm_lanes_in_flight(struct pm_rt *rt)
{
    chunks_discover(rt);
    uint32_t total = n_meta_lanes(rt) + pm_load_acquire(&rt->n_lane_chunks) * LANE_CHUNK;
    int n = 0;
    for (uint32_t i = 0; i < total; i++)
        if (pm_lane_op(lane_at(rt, i), pm_load_acquire(&lane_at(rt, i)->op)) != PM_LANE_IDLE)
            n++;
    struct pm_lane *cl = &rt->hdr->chunk_lane;
    return n + (pm_lane_op(cl, pm_load_acquire(&cl->op)) != PM_LANE_IDLE);
}

struct pm_lane *pub_lane_at(struct pm_rt *rt, uint32_t i)
{
    if (i == 0)
        chunks_discover(rt);
    uint32_t total = n_meta_lanes(rt) + pm_load_acquire(&rt->n_lane_chunks) * LANE_CHUNK;
    return i < total ? lane_at(rt, i) : NULL;
}

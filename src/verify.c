/* The rules a space's metadata must follow, judged from the file alone.
 *
 * A writer's open (and a private open that recovers) refuses a space that
 * breaks one of them before it writes a byte; persistent_check reports
 * every break.  Both run pm_verify, so they judge alike (G8): a space check
 * calls consistent opens for writing, and one a writer refuses is reported
 * by check.  The runtime's own walks of the same structures (root lookups,
 * lane tables) use the same predicates below.
 *
 * Everything here only reads, and only inside the pages the file holds:
 * every offset taken from the file is range-checked before it becomes an
 * address, and every chain is bounded (root tables double in size along
 * their chain, lane tables are at most LANE_MAX_CHUNKS), so any input,
 * damaged or forged, gets a verdict in bounded time.
 *
 * The rules
 *   runs     every START bit below n_pages has an END bit at or after it and
 *            before the next START; a superblock's header is valid for its
 *            class and as long as its run; no bitmap bit past its last block.
 *   tail     no START, END or KIND bit at or past n_pages (growth hands
 *            those pages out as empty).
 *   lanes    each record is idle or names a location a publishing call can
 *            name and blocks where a block can start, and one rolled
 *            forward names a live block; each overflow lane table is a
 *            live block of the right shape, or one linked before its
 *            commit whose place is free (recovery commits it), that no
 *            lane frees; the chain ends.
 *   roots    each overflow root table is a live block, of the capacity its
 *            place in the chain gives it, that no lane frees; a slot with a
 *            block has a tag;
 *            after the lanes are rolled forward or back (as recovery will),
 *            every root names a live block, and no block is the root of two
 *            tags.
 * Crash leftovers that recovery clears (END/KIND bits of no run, remote
 * bits on free blocks, lanes in flight) are counted, not errors. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void bad(struct persistent_check_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void bad(struct persistent_check_report *rep, const char *fmt, ...)
{
    if (rep->n_errors++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rep->first_error, sizeof rep->first_error, fmt, ap);
        va_end(ap);
    }
}

/* ---- locations ---- */

/* The live run that holds page, from the run bits: its first and last page
 * and, for a superblock, its header (*h, in the mapping) and a copy of
 * its fields that was validated (*hc); false if page is in none.  Use the
 * copy's fields: another process may change the mapping's under a view
 * (a review toggled block_size to 0 after the check: SIGFPE). */
static bool run_of(struct pm_rt *rt, uint64_t page, uint64_t *first,
                   uint64_t *last, struct pm_sb_header **h, struct pm_sb_header *hc)
{
    uint64_t n = pm_load_acquire(&rt->n_pages);
    if (page >= n)
        return false;
    uint64_t s = pg_prev_set(rt->start_bits, page);
    if (s == PG_NONE)
        return false;
    uint64_t e = pg_next_set(rt->end_bits, s, n);
    if (e == PG_NONE || e < page)
        return false;
    *h = NULL;
    if (pg_bit(rt->kind_bits, s)) {
        struct pm_sb_header *sh = sb_header(rt, (uint32_t)s);
        memcpy(hc, sh, sizeof *hc);
        if (!sb_header_valid(rt, hc, s) || s + hc->n_pages - 1 != e)
            return false;
        pm_hook(PM_HOOK_RUN_VALIDATED);
        *h = sh;
    }
    *first = s;
    *last = e;
    return true;
}

/* Where a block could start at off: in a valid superblock at a block
 * boundary (*h, *idx), or a page outside superblocks (*h NULL, a large
 * block's first page).  Says nothing of whether it is live. */
bool pm_block_place(struct pm_rt *rt, uint64_t off, struct pm_sb_header **h,
                    struct pm_sb_header *hc, uint32_t *idx)
{
    if (!pm_in_data(rt, off, 1))
        return false;
    uint64_t rel = off - rt->data_off;
    uint64_t page = rel >> rt->page_shift;
    uint64_t first, last;
    struct pm_sb_header *sh;
    if (run_of(rt, page, &first, &last, &sh, hc) && sh != NULL) {
        uint64_t x = rel - (first << rt->page_shift);
        if (x < hc->data_start || (x - hc->data_start) % hc->block_size != 0 ||
            (x - hc->data_start) / hc->block_size >= hc->n_blocks)
            return false;
        *h = sh;
        *idx = (uint32_t)((x - hc->data_start) / hc->block_size);
        return true;
    }
    if (rel & (rt->page_size - 1))
        return false;
    /* a page that starts no superblock (it may be a superblock's page only
     * if it is not inside a live one, checked above) */
    if (pg_bit(rt->start_bits, page) && pg_bit(rt->kind_bits, page))
        return false;
    *h = NULL;
    return true;
}

/* Bytes usable in the live block that starts at off, 0 if none does; from
 * the persistent bits alone (a reader's view). */
uint64_t pm_block_live(struct pm_rt *rt, uint64_t off)
{
    struct pm_sb_header *h, hc;
    uint32_t idx;
    if (!pm_block_place(rt, off, &h, &hc, &idx))
        return 0;
    if (h != NULL) {
        uint64_t bit = UINT64_C(1) << (idx & 63);
        if (!(pm_load_acquire(&h->bits[idx >> 6]) & bit) ||
            (pm_load_acquire(&h->bits[hc.n_words + (idx >> 6)]) & bit))
            return 0;
        return hc.block_size;
    }
    uint64_t page = (off - rt->data_off) >> rt->page_shift;
    if (!pg_bit(rt->start_bits, page))
        return 0;
    uint64_t e = pg_next_set(rt->end_bits, page, pm_load_acquire(&rt->n_pages));
    return e == PG_NONE ? 0 : (e - page + 1) << rt->page_shift;
}

/* ---- tables in the heap ---- */

/* The capacity of the root table that follows one of capacity cap (the
 * chain doubles, so it ends within log2 of the file size). */
uint64_t pm_root_next_cap(uint64_t cap)
{
    return cap * 2 > 4096 ? cap * 2 : 4096;
}

struct pm_root_table *pm_root_table_at(struct pm_rt *rt, uint64_t off, uint64_t cap)
{
    if (off % 64 != 0 || !pm_in_data(rt, off, sizeof(struct pm_root_table)))
        return NULL;
    uint64_t size = sizeof(struct pm_root_table) + cap * sizeof(struct pm_root_slot);
    struct pm_root_table *t = (struct pm_root_table *)(rt->base + off);
    if (t->magic != PM_ROOT_TABLE_MAGIC || t->cap != cap ||
        pm_block_live(rt, off) < size)
        return NULL;
    return t;
}

/* Whether a block of size bytes could be committed at off with nothing
 * live in its way: a free block of a valid superblock, at least size
 * long, or pages no run holds (from the persistent bits alone). */
static bool place_free(struct pm_rt *rt, uint64_t off, uint64_t size)
{
    struct pm_sb_header *h, hc;
    uint32_t idx;
    if (!pm_block_place(rt, off, &h, &hc, &idx))
        return false;
    if (h != NULL)
        return hc.block_size >= size &&
               !(pm_load_acquire(&h->bits[idx >> 6]) & (UINT64_C(1) << (idx & 63)));
    uint64_t first = (off - rt->data_off) >> rt->page_shift;
    uint64_t n = (size + rt->page_size - 1) >> rt->page_shift;
    uint64_t np = pm_load_acquire(&rt->n_pages);
    if (first >= np || n > np - first)
        return false;
    /* one look back from its last page, not one from each page (each a
     * word at a time to the START before it: a chain of tables far past
     * the last run, judged once for each lane record, took minutes) */
    uint64_t s = pg_prev_set(rt->start_bits, first + n - 1);
    if (s == PG_NONE)
        return true;
    if (s >= first)
        return false;               /* a run starts among its pages */
    uint64_t e = pg_next_set(rt->end_bits, s, np);
    return e == PG_NONE || e < first;
}

struct pm_lane_table *pm_lane_table_at(struct pm_rt *rt, uint64_t off, bool *pending)
{
    uint64_t size = PM_LANE_TABLE_BYTES;
    if (off % 64 != 0 || !pm_in_data(rt, off, size))
        return NULL;
    struct pm_lane_table *t = (struct pm_lane_table *)(rt->base + off);
    if (t->magic != PM_LANE_TABLE_MAGIC || t->n != PM_LANE_CHUNK)
        return NULL;
    /* the free place first: at run time a linked table only goes from
     * free to live (its commit), so a place found taken was taken by the
     * commit, and the table is live by the time it is asked (in the other
     * order a commit between the two questions made a table neither, and
     * another thread's call stopped at it: -ENOMEM) */
    bool free_place = place_free(rt, off, size);
    if (!free_place && pm_block_live(rt, off) < size)
        return NULL;
    if (pending != NULL)
        *pending = free_place;
    return t;
}

/* A location a publishing call may name: an aligned word in the pages, or
 * a root value word of the table in the metadata, or root 0's. */
bool pm_dest_ok(struct pm_rt *rt, uint64_t off)
{
    const struct pm_fixed *f = &rt->fixed;
    if (off % 8 != 0)
        return false;
    if (pm_in_data(rt, off, 8))
        return true;
    if (off == offsetof(struct pm_header, live.root0_val))
        return true;
    return off >= f->roots_off &&
           off < f->roots_off + (uint64_t)f->roots_cap * sizeof(struct pm_root_slot) &&
           (off - f->roots_off) % sizeof(struct pm_root_slot) ==
               offsetof(struct pm_root_slot, val);
}

/* A thread's transaction log is made through its own lane, the record
 * naming the lane's tx_off (publish.c pub_txlog_create); no other record
 * may name that word: a forged free there would drop a log recovery
 * needs. */
bool pm_lane_dest_ok(struct pm_rt *rt, const struct pm_lane *l, uint64_t op)
{
    uint64_t d = l->dest_off;
    if (op == PM_LANE_ALLOC && d == (uint64_t)((const char *)&l->tx_off - rt->base))
        return true;
    /* the first overflow root table is made through a lane naming its
     * link in the header (publish.c pub_table_create), and the first lane
     * table through the header's chunk lane (chunk_add); the later ones'
     * links are in the tables before them, in the pages */
    if (op == PM_LANE_ALLOC && (d == offsetof(struct pm_header, live.roots_next_off) ||
                                d == offsetof(struct pm_header, live.lanes_next_off)))
        return true;
    if (!pm_dest_ok(rt, d))
        return false;
    /* the header's lanes are outside the pages pm_dest_ok accepts; those
     * of the overflow tables in the heap are not (a review found a record
     * naming one accepted) */
    const pm_atomic_u64 *link = &rt->hdr->live.lanes_next_off;
    for (uint32_t k = 0; k < PM_LANE_MAX_CHUNKS; k++) {
        uint64_t off = pm_load_acquire((pm_atomic_u64 *)link);
        /* the shape alone (no table judged again for each record: see
         * place_free); a chain pm_verify accepts is all tables anyway */
        uint64_t tsize = PM_LANE_TABLE_BYTES;
        if (off == 0 || off % 64 != 0 || !pm_in_data(rt, off, tsize))
            break;
        const struct pm_lane_table *t = (const struct pm_lane_table *)(rt->base + off);
        if (t->magic != PM_LANE_TABLE_MAGIC || t->n != PM_LANE_CHUNK)
            break;
        uint64_t first = (uint64_t)((const char *)&t->lane[0] - rt->base);
        uint64_t end = first + PM_LANE_CHUNK * sizeof(struct pm_lane);
        if (d >= first && d < end &&
            (d - first) % sizeof(struct pm_lane) == offsetof(struct pm_lane, tx_off))
            return false;
        link = &t->next_off;
    }
    return true;
}

/* ---- runs ---- */

_Thread_local void (*pm_walk_progress)(uint64_t done, uint64_t total, void *arg);
_Thread_local void *pm_walk_progress_arg;

int pm_walk_runs(struct pm_rt *rt, int (*fn)(struct pm_rt *, const struct pm_run *, void *),
                 void *arg, const char **why, uint64_t *where)
{
    uint64_t n = pm_load_acquire(&rt->n_pages);
    uint64_t p = 0, s, k = 0;
    /* the header and both bitmaps of the superblock at hand, copied (a
     * union: a structure with a flexible array member is no member of a
     * structure, C11 6.7.2.1) */
    union {
        struct pm_sb_header h;
        uint64_t room[(sizeof(struct pm_sb_header) + 2 * (PM_SB_MAX_BLOCKS / 64) * 8) / 8];
    } copy;
    while (p < n && (s = pg_next_set(rt->start_bits, p, n)) != PG_NONE) {
        if (PM_UNLIKELY(pm_walk_progress != NULL) && (++k & 255) == 0)
            pm_walk_progress(s, n, pm_walk_progress_arg);
        struct pm_run r = {s, pg_next_set(rt->end_bits, s, n), NULL,
                           rt->data + (s << rt->page_shift)};
        *where = s;
        if (r.last == PG_NONE) {
            *why = "run has no end";
            return PERSISTENT_E_CORRUPT;
        }
        if (pg_next_set(rt->start_bits, s + 1, r.last + 1) != PG_NONE) {
            *why = "runs overlap";
            return PERSISTENT_E_CORRUPT;
        }
        if (pg_bit(rt->kind_bits, s)) {
            /* an open's walk (no fn) may read the open's copy; the
             * header is judged, and then used, as copied here: the file
             * of a view may change under it (the bitmaps are copied too
             * when a callback reads them, a word at a time: each word is
             * one moment's, which is all a live file gives) */
            const struct pm_sb_header *m =
                fn == NULL ? sb_header_seen(rt, (uint32_t)s) : sb_header(rt, (uint32_t)s);
            memcpy(&copy.h, m, sizeof copy.h);
            if (!sb_header_valid(rt, &copy.h, s) || s + copy.h.n_pages - 1 != r.last) {
                *why = "superblock header is invalid";
                return PERSISTENT_E_CORRUPT;
            }
            uint32_t nw = copy.h.n_words;      /* <= PM_SB_MAX_BLOCKS / 64: valid */
            for (uint32_t w = fn == NULL ? nw - 1 : 0; w < nw; w++) {
                pm_store_relaxed(&copy.h.bits[w], pm_load_relaxed(&m->bits[w]));
                pm_store_relaxed(&copy.h.bits[nw + w], pm_load_relaxed(&m->bits[nw + w]));
            }
            r.h = &copy.h;
            if ((pm_load_relaxed(&copy.h.bits[nw - 1]) & ~sb_last_mask(r.h)) ||
                (pm_load_relaxed(&copy.h.bits[2 * nw - 1]) & ~sb_last_mask(r.h))) {
                *why = "superblock bitmap has bits past its last block";
                return PERSISTENT_E_CORRUPT;
            }
            pm_hook(PM_HOOK_WALK_VALIDATED);
        }
        if (fn != NULL) {
            int rc = fn(rt, &r, arg);
            if (rc != 0)
                return rc;
        }
        p = r.last + 1;
    }
    if (PM_UNLIKELY(pm_walk_progress != NULL))
        pm_walk_progress(n, n, pm_walk_progress_arg);
    return 0;
}

static int count_run(struct pm_rt *rt, const struct pm_run *r, void *arg)
{
    struct persistent_check_report *rep = arg;
    rep->runs++;
    if (r->h == NULL) {
        rep->large_runs++;
        rep->live_blocks++;
        rep->live_bytes += (r->last - r->first + 1) << rt->page_shift;
        for (uint64_t q = pg_next_set(rt->kind_bits, r->first + 1, r->last + 1);
             q != PG_NONE; q = pg_next_set(rt->kind_bits, q + 1, r->last + 1))
            rep->orphan_bits++;
        return 0;
    }
    rep->superblocks++;
    const struct pm_sb_header *h = r->h;
    const pm_atomic_u64 *al = h->bits, *rm = h->bits + h->n_words;
    for (uint32_t w = 0; w < h->n_words; w++) {
        uint64_t a = pm_load_relaxed(&al[w]), m = pm_load_relaxed(&rm[w]);
        rep->pending_remote_frees += pm_popcount64(a & m);
        rep->orphan_bits += pm_popcount64(m & ~a);
        rep->live_blocks += pm_popcount64(a & ~m);
        rep->live_bytes += (uint64_t)pm_popcount64(a & ~m) * h->block_size;
    }
    for (uint64_t q = pg_next_set(rt->kind_bits, r->first + 1, r->last + 1);
         q != PG_NONE; q = pg_next_set(rt->kind_bits, q + 1, r->last + 1))
        rep->orphan_bits++;
    return 0;
}

/* tail_set without a descriptor of its own (no /proc, none left): the
 * program's descriptor, once verified to be the space's, read with pread
 * (which backs no hole and leaves the file position, the descriptor's
 * mark, alone); the mapping is read only where a word of the file is not
 * zero, so where the file holds data, as with SEEK_DATA.  Reads the whole
 * tail (96 MiB for 1 TiB), but never through a hole.  With no verified
 * descriptor, through the mapping, holes and all. */
static uint64_t tail_set_read(struct pm_rt *rt, uint64_t foff, const pm_atomic_u64 *bits,
                              uint64_t n)
{
    uint64_t lim = rt->max_pages, words = (lim + 63) / 64;
    if (!pm_fd_ours(rt))
        return pg_next_set(bits, n, lim);
    uint64_t buf[512];
    for (uint64_t w = n / 64, k = 1; w < words; k++) {
        uint64_t cnt = words - w < 512 ? words - w : 512;
        /* verified again now and then: the tail of a 1 TiB maximum is
         * 24,576 reads, time for the program to close and reuse it */
        if ((k % 64 == 0 && !pm_fd_ours(rt)) ||
            os_pread_all(rt->fd, buf, cnt * 8, foff + w * 8) != 0)
            return pg_next_set(bits, w * 64 > n ? w * 64 : n, lim);
        for (uint64_t i = 0; i < cnt; i++) {
            if (buf[i] == 0)
                continue;
            uint64_t from = (w + i) * 64, to = from + 64 < lim ? from + 64 : lim;
            uint64_t p = pg_next_set(bits, from > n ? from : n, to);
            if (p != PG_NONE)
                return p;
        }
        w += cnt;
    }
    return PG_NONE;
}

/* The first bit set in [n, max_pages) of the run bitmap at file offset
 * foff, PG_NONE if none.  With pfd (a descriptor of the file), the ranges
 * the file holds as holes are skipped: they read as zeros, and a bitmap
 * past the pages ever used is one, so neither an open nor a check reads in
 * proportion to the maximum size (a 64 GiB maximum cost an open 9 ms, a
 * 1 TiB one a check 0.31 s).  The verdict is the same as reading it all. */
static uint64_t tail_set(struct pm_rt *rt, int pfd, uint64_t foff, const pm_atomic_u64 *bits,
                         uint64_t n)
{
    uint64_t lim = rt->max_pages;
    if (pfd < 0)
        return tail_set_read(rt, foff, bits, n);
    uint64_t end = foff + (lim + 63) / 64 * 8;
    for (uint64_t b = n; b < lim;) {
        uint64_t d = os_next_data(pfd, foff + (b >> 6) * 8, end);
        if (d >= end)
            return PG_NONE;
        uint64_t from = ((d - foff) / 8) * 64;
        if (from < b)
            from = b;
        uint64_t h = os_next_hole(pfd, d, end);
        uint64_t to = (h - foff + 7) / 8 * 64;
        if (to > lim)
            to = lim;
        if (to <= from)
            to = from + 64 < lim ? from + 64 : lim;     /* no progress: read on */
        uint64_t p = pg_next_set(bits, from, to);
        if (p != PG_NONE)
            return p;
        b = to;
    }
    return PG_NONE;
}

static void verify_runs(struct pm_rt *rt, struct persistent_check_report *rep,
                        bool counts)
{
    const char *why = NULL;
    uint64_t where = 0;
    if (pm_walk_runs(rt, counts ? count_run : NULL, rep, &why, &where) < 0)
        bad(rep, "page %llu: %s", (unsigned long long)where, why);

    uint64_t n = pm_load_acquire(&rt->n_pages);
    const pm_atomic_u64 *tail[3] = {rt->start_bits, rt->end_bits, rt->kind_bits};
    const struct pm_fixed *f = &rt->fixed;
    uint64_t foff[3] = {f->start_bits_off, f->end_bits_off, f->kind_bits_off};
    /* the holes skipped by an open and by a check alike.  Nothing writes
     * a tail but a stray store or a rollback's page image: a store through
     * a shared mapping makes its page data at once (tmpfs, and the delayed
     * allocation of ext4 and XFS, report it as data), and an image that
     * would set a bit there is never put back (page_restore), since in a
     * view's private mapping the file's hole stays a hole on ext4.  Read
     * through the mapping instead, a hole becomes a page of the file on
     * tmpfs (a read fault there backs one) and, on a full file system, a
     * SIGBUS: what checks did until 2026-12-05.  Where the file cannot be
     * opened again, the program's descriptor is read (tail_set_read) */
    int pfd = pm_fd_again(rt);
    for (int i = 0; i < 3; i++) {
        uint64_t p = tail_set(rt, pfd, foff[i], tail[i], n);
        if (p != PG_NONE) {
            bad(rep, "run bits set past the end of the space (page %llu of %llu)",
                (unsigned long long)p, (unsigned long long)n);
            break;
        }
    }
    if (pfd >= 0)
        os_close(pfd);
    if (!counts)
        return;
    /* END and KIND bits outside every run: crash leftovers */
    uint64_t p = 0, e;
    while ((e = pg_next_set(rt->end_bits, p, n)) != PG_NONE) {
        uint64_t s = pg_prev_set(rt->start_bits, e);
        if (s == PG_NONE || pg_next_set(rt->end_bits, s, n) != e)
            rep->orphan_bits++;
        p = e + 1;
    }
    p = 0;
    while ((e = pg_next_set(rt->kind_bits, p, n)) != PG_NONE) {
        if (!pg_bit(rt->start_bits, e))
            rep->orphan_bits++;
        p = e + 1;
    }
}

/* ---- lanes ---- */

/* Calls fn for every lane record, in the metadata and in the overflow
 * tables; reports a broken chain.  Returns the number of lanes. */
static uint32_t walk_lanes(struct pm_rt *rt, struct persistent_check_report *rep,
                           void (*fn)(struct pm_rt *, uint32_t, const struct pm_lane *, void *),
                           void *arg, uint64_t *tables, uint32_t *n_tables)
{
    *n_tables = 0;
    const struct pm_fixed *f = &rt->fixed;
    const struct pm_lane *meta = (const struct pm_lane *)(rt->base + f->lanes_off);
    uint32_t i = 0;
    for (; i < f->n_lanes; i++)
        fn(rt, i, &meta[i], arg);
    pm_atomic_u64 *link = &rt->hdr->live.lanes_next_off;
    for (uint32_t k = 0;; k++) {
        uint64_t off = pm_load_acquire(link);
        if (off == 0)
            break;
        bool pending = false;
        struct pm_lane_table *t =
            k < PM_LANE_MAX_CHUNKS ? pm_lane_table_at(rt, off, &pending) : NULL;
        if (t == NULL) {
            bad(rep, k < PM_LANE_MAX_CHUNKS
                         ? "overflow lane table %u at %#llx is not a lane table, live or "
                           "in a free place"
                         : "overflow lane tables: chain longer than %u (%#llx)",
                k < PM_LANE_MAX_CHUNKS ? k : PM_LANE_MAX_CHUNKS, (unsigned long long)off);
            break;
        }
        /* linked before its commit (publish.c chunk_add_unlaned), which
         * recovery makes: counted as a call in flight */
        if (pending)
            rep->in_flight_lanes++;
        /* two tables whose bytes overlap: only tables in free places can
         * (a live block is no other's), and the writer's open would
         * commit both, runs over runs, one's lane records over the
         * other's head */
        uint64_t tsize = PM_LANE_TABLE_BYTES;
        for (uint32_t q = 0; q < *n_tables; q++)
            if (off < tables[q] + tsize && tables[q] < off + tsize) {
                bad(rep, "overflow lane tables %u and %u overlap (%#llx, %#llx)", q, k,
                    (unsigned long long)tables[q], (unsigned long long)off);
                t = NULL;
                break;
            }
        if (t == NULL)
            break;
        tables[(*n_tables)++] = off;
        for (uint32_t j = 0; j < PM_LANE_CHUNK; j++, i++)
            fn(rt, i, &t->lane[j], arg);
        link = &t->next_off;
    }
    /* the header's chunk lane (publish.c chunk_add): no thread's, so it
     * names no transaction log */
    const struct pm_lane *cl = &rt->hdr->chunk_lane;
    if (pm_load_acquire((pm_atomic_u64 *)&cl->tx_off) != 0)
        bad(rep, "the chunk lane names a transaction log");
    else
        fn(rt, i++, cl, arg);
    return i;
}

struct lane_rec {
    uint64_t op, dest, blk, old, cur;
};

struct lanes {
    struct persistent_check_report *rep;
    struct lane_rec *v;
    uint32_t n, cap;
    bool oom;
    /* made once every lane is read (lanes_index), sorted: the blocks
     * recovery frees, and the value words it clears; so that each root
     * and each table is one search, not a pass over every record (a
     * helper's hunt: 2,000 roots and a log of FREE entries took a check
     * 25 s) */
    uint64_t *freed, *cleared;
    uint64_t n_freed, n_cleared;
};

static bool place_ok(struct pm_rt *rt, uint64_t off)
{
    struct pm_sb_header *h, hc;
    uint32_t idx;
    return pm_block_place(rt, off, &h, &hc, &idx);
}

static bool lanes_push(struct lanes *ls, uint64_t op, uint64_t dest, uint64_t blk,
                       uint64_t old, uint64_t cur)
{
    if (ls->n == ls->cap) {
        uint32_t cap = ls->cap ? ls->cap * 2 : 64;
        struct lane_rec *v = realloc(ls->v, cap * sizeof *v);
        if (v == NULL) {
            ls->oom = true;
            return false;
        }
        ls->v = v;
        ls->cap = cap;
    }
    ls->v[ls->n++] = (struct lane_rec){op, dest, blk, old, cur};
    return true;
}

/* Whether [off, off + len) lies inside one live block (user data: a
 * snapshot restored there cannot touch the allocator's metadata). */
static bool range_in_live_block(struct pm_rt *rt, uint64_t off, uint64_t len)
{
    if (len == 0 || !pm_in_data(rt, off, len))
        return false;
    uint64_t rel = off - rt->data_off;
    uint64_t first, last;
    struct pm_sb_header *h, hc;
    if (!run_of(rt, rel >> rt->page_shift, &first, &last, &h, &hc))
        return false;
    uint64_t run = rt->data_off + (first << rt->page_shift);
    if (h == NULL)
        return off + len <= rt->data_off + ((last + 1) << rt->page_shift);
    uint64_t x = off - run;
    if (x < hc.data_start)
        return false;
    uint64_t idx = (x - hc.data_start) / hc.block_size;
    uint64_t start = run + hc.data_start + idx * hc.block_size;
    return idx < hc.n_blocks && pm_block_live(rt, start) != 0 &&
           off + len <= start + hc.block_size;
}

/* Whether a page image of len bytes for file offset off would put a run
 * bit of a page in [n_pages, max_pages) into one of the three run
 * bitmaps.  No image a transaction took does (a page is imaged before the
 * transaction first writes it, and the committed count never goes down),
 * and where the file has a hole there (the bitmaps are sized for the
 * maximum) a check that skips holes (verify_runs) may not see such a bit
 * in a private mapping: page_restore puts none back. */
bool pm_image_sets_tail(const struct pm_rt *rt, uint64_t off, const void *img, uint64_t len)
{
    const struct pm_fixed *f = &rt->fixed;
    const uint64_t bits_off[3] = {f->start_bits_off, f->end_bits_off, f->kind_bits_off};
    uint64_t n = pm_load_acquire(&rt->n_pages), max = f->max_pages;
    for (int i = 0; i < 3 && n < max; i++) {
        uint64_t lo = bits_off[i] + n / 64 * 8, hi = bits_off[i] + (max + 63) / 64 * 8;
        uint64_t a = lo > off ? lo : off, b = hi < off + len ? hi : off + len;
        for (uint64_t w = a; w + 8 <= b; w += 8) {
            uint64_t first = (w - bits_off[i]) / 8 * 64;  /* the word's first page */
            uint64_t v;
            memcpy(&v, (const char *)img + (w - off), sizeof v);
            if (first < n)
                v &= ~((UINT64_C(1) << (n - first)) - 1);
            if (max - first < 64)
                v &= (UINT64_C(1) << (max - first)) - 1;   /* not the padding */
            if (v != 0)
                return true;
        }
    }
    return false;
}

/* The transaction log a lane names (tx.c): its head, and, for one that
 * recovery will roll back or finish, every entry; what it frees joins the
 * lanes' frees. */
static void tx_rule(struct pm_rt *rt, uint32_t i, const struct pm_lane *l,
                    struct lanes *ls)
{
    uint64_t off = pm_load_acquire((pm_atomic_u64 *)&l->tx_off);
    if (off == 0)
        return;
    if (!pm_txlog_head_ok(rt, off)) {
        bad(ls->rep, "lane %u names a transaction log at %#llx that is not one", i,
            (unsigned long long)off);
        return;
    }
    const struct pm_txlog *lg = (const struct pm_txlog *)(rt->base + off);
    uint64_t state = pm_load_acquire((pm_atomic_u64 *)&lg->state), gen = state >> 8;
    uint64_t phase = state & PM_TX_PHASE;
    bool prev = (state & PM_TX_PREV) != 0;
    if (phase > PM_TX_COMMITTED ||
        (prev && (phase != PM_TX_ACTIVE || !pm_txlog_two_streams(lg->magic)))) {
        bad(ls->rep, "transaction log at %#llx is in an unknown state", (unsigned long long)off);
        return;
    }
    /* the log's own block must outlive what recovery frees */
    lanes_push(ls, PM_LANE_IDLE, 0, off, 0, 0);
    if (phase == PM_TX_IDLE)
        return;
    if (phase == PM_TX_ACTIVE)
        ls->rep->open_transactions++;
    /* the previous transaction's frees (the other stream), then this one's */
    for (int pass = prev ? 0 : 1; pass < 2; pass++) {
        uint64_t g = pass == 0 ? (gen - 1) & PM_TX_GEN_MASK : gen;
        struct pm_txit it;
        pm_txit_start(rt, lg, g, &it);
        /* every walk keeps its segments: a forged JUMP cycle ends it (a
         * COMMITTED log's or the PREV stream's walk went round until its
         * budget, data_limit / 32 entries, was spent: a check of a sparse
         * 64 GiB file took 54 s, a helper's hunt) */
        it.track = true;
        const struct pm_txent *e;
        while ((e = pm_txit_next(rt, &it)) != NULL) {
            uint64_t kind = e->kind_len & 0xff, len = e->kind_len >> 8;
            bool undo = pass == 1 && phase == PM_TX_ACTIVE;
            if (undo && (kind == PM_TXE_SNAPSHOT || kind == PM_TXE_PAGE) &&
                !pm_txit_clear(&it, e->off, len)) {
                bad(ls->rep, "transaction log at %#llx: a %s at %#llx of %llu bytes would "
                             "be put back over the log itself", (unsigned long long)off,
                    kind == PM_TXE_PAGE ? "page image" : "snapshot",
                    (unsigned long long)e->off, (unsigned long long)len);
                pm_txit_done(&it);
                return;
            }
            if (undo && kind == PM_TXE_SNAPSHOT && !range_in_live_block(rt, e->off, len)) {
                bad(ls->rep, "transaction log at %#llx: a snapshot of [%#llx, +%llu) is in "
                             "no live block", (unsigned long long)off,
                    (unsigned long long)e->off, (unsigned long long)len);
                pm_txit_done(&it);
                return;
            }
            if (undo && kind == PM_TXE_PAGE &&
                (len < 4096 || (len & (len - 1)) != 0 || e->off % len != 0 ||
                 e->off > pm_data_limit(rt) || len > pm_data_limit(rt) - e->off)) {
                bad(ls->rep, "transaction log at %#llx: a page snapshot at %#llx of %llu "
                             "bytes is not a page of the file", (unsigned long long)off,
                    (unsigned long long)e->off, (unsigned long long)len);
                pm_txit_done(&it);
                return;
            }
            bool frees = (undo && kind == PM_TXE_ALLOC) || (!undo && kind == PM_TXE_FREE);
            if ((kind == PM_TXE_ALLOC || kind == PM_TXE_FREE) && !place_ok(rt, e->off)) {
                bad(ls->rep, "transaction log at %#llx names a place no block starts "
                             "(%#llx)", (unsigned long long)off, (unsigned long long)e->off);
                pm_txit_done(&it);
                return;
            }
            if (frees)
                lanes_push(ls, PM_LANE_FREE, 0, e->off, 0, 0);
        }
        bool oom = it.oom;
        pm_txit_done(&it);
        if (oom) {
            bad(ls->rep, "out of memory while checking the transaction log at %#llx",
                (unsigned long long)off);
            return;
        }
    }
}

static void lane_rule(struct pm_rt *rt, uint32_t i, const struct pm_lane *l, void *arg)
{
    struct lanes *ls = arg;
    tx_rule(rt, i, l, ls);
    uint64_t word = pm_load_acquire((pm_atomic_u64 *)&l->op);
    uint64_t op = pm_lane_op(l, word);
    if (op == PM_LANE_IDLE) {
        if ((word & 0xff) != PM_LANE_IDLE)
            ls->rep->orphan_bits++;         /* torn: never started */
        return;
    }
    ls->rep->in_flight_lanes++;
    if (op > PM_LANE_REALLOC || !pm_lane_dest_ok(rt, l, op) ||
        !place_ok(rt, l->block_off) ||
        (op == PM_LANE_REALLOC && (!place_ok(rt, l->old_off) || l->old_off == l->block_off))) {
        bad(ls->rep, "publish lane %u holds an invalid record (op %llu, dest %#llx, "
                     "block %#llx)", i, (unsigned long long)op,
            (unsigned long long)l->dest_off, (unsigned long long)l->block_off);
        return;
    }
    /* rolled forward, a block was committed before *dest was set */
    uint64_t cur = pm_load_acquire((pm_atomic_u64 *)(rt->base + l->dest_off));
    if (op != PM_LANE_FREE && cur == l->block_off && pm_block_live(rt, l->block_off) == 0) {
        bad(ls->rep, "publish lane %u: its location holds block %#llx, which is not "
                     "a live block", i, (unsigned long long)l->block_off);
        return;
    }
    lanes_push(ls, op, l->dest_off, l->block_off, l->old_off, cur);
}

/* ---- roots ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool sorted_has(const uint64_t *v, uint64_t n, uint64_t x)
{
    return n != 0 && bsearch(&x, v, n, sizeof *v, cmp_u64) != NULL;
}

/* The sorted lists of struct lanes: what recovery frees (a FREE record's
 * block, or an ALLOC's or REALLOC's new block rolled back, or a REALLOC's
 * old block rolled forward) and the value words a FREE record rolled
 * forward clears. */
static void lanes_index(struct lanes *ls)
{
    ls->freed = malloc((2 * (size_t)ls->n + 1) * sizeof *ls->freed);
    ls->cleared = malloc(((size_t)ls->n + 1) * sizeof *ls->cleared);
    if (ls->freed == NULL || ls->cleared == NULL) {
        ls->oom = true;
        return;
    }
    for (uint32_t i = 0; i < ls->n; i++) {
        const struct lane_rec *l = &ls->v[i];
        if (l->op == PM_LANE_IDLE)
            continue;                       /* a transaction log's head */
        bool forward = l->cur == l->blk;
        if (l->op == PM_LANE_FREE || !forward)
            ls->freed[ls->n_freed++] = l->blk;
        if (l->op == PM_LANE_REALLOC && forward)
            ls->freed[ls->n_freed++] = l->old;
        if (l->op == PM_LANE_FREE && forward)
            ls->cleared[ls->n_cleared++] = l->dest;
    }
    qsort(ls->freed, ls->n_freed, sizeof *ls->freed, cmp_u64);
    qsort(ls->cleared, ls->n_cleared, sizeof *ls->cleared, cmp_u64);
}

/* What recovery will make of a root's value word and of the blocks the
 * lanes name, so roots are judged as they will be after it. */
static uint64_t after_lanes_val(const struct lanes *ls, uint64_t word_off, uint64_t v)
{
    return sorted_has(ls->cleared, ls->n_cleared, word_off) ? 0 : v;
}

static bool freed_by_lanes(const struct lanes *ls, uint64_t blk)
{
    return sorted_has(ls->freed, ls->n_freed, blk);
}

struct roots {
    struct persistent_check_report *rep;
    const struct lanes *ls;
    uint64_t *vals;
    uint64_t n, cap;
    bool oom;
};

static void root_rule(struct pm_rt *rt, struct roots *rs, uint64_t key, uint64_t word_off,
                      uint64_t v)
{
    if (v == 0)
        return;
    if (key == 0) {
        bad(rs->rep, "root slot at %#llx has a block but no tag", (unsigned long long)word_off);
        return;
    }
    v = after_lanes_val(rs->ls, word_off, v);
    if (v == 0)
        return;
    rs->rep->roots++;
    bool live = !freed_by_lanes(rs->ls, v) && pm_block_live(rt, v) != 0;
    if (!live) {
        bad(rs->rep, "root %#llx names %#llx, which is not a live block",
            (unsigned long long)(key == UINT64_MAX ? 0 : key), (unsigned long long)v);
        return;
    }
    if (rs->n == rs->cap) {
        uint64_t cap = rs->cap ? rs->cap * 2 : 64;
        uint64_t *nv = realloc(rs->vals, cap * sizeof *nv);
        if (nv == NULL) {
            rs->oom = true;
            return;
        }
        rs->vals = nv;
        rs->cap = cap;
    }
    rs->vals[rs->n++] = v;
}

/* own: the library's blocks the lanes name (logs, lane tables), n_own of
 * them, or NULL; no root may name one of those or of the root tables. */
static void verify_roots(struct pm_rt *rt, struct persistent_check_report *rep,
                         const struct lanes *ls, const uint64_t *own, uint64_t n_own)
{
    struct roots rs = {rep, ls, NULL, 0, 0, false};
    uint64_t tables[64];                /* the overflow root tables */
    uint32_t n_tables = 0;
    const struct pm_fixed *f = &rt->fixed;
    /* tag 0 lives in the header; UINT64_MAX stands for its "tag" here */
    root_rule(rt, &rs, UINT64_MAX, offsetof(struct pm_header, live.root0_val),
              pm_load_acquire(&rt->hdr->live.root0_val));
    struct pm_root_slot *slot = (struct pm_root_slot *)(rt->base + f->roots_off);
    uint64_t cap = f->roots_cap;
    pm_atomic_u64 *next = &rt->hdr->live.roots_next_off;
    for (uint32_t table = 0;; table++) {
        for (uint64_t i = 0; i < cap; i++)
            root_rule(rt, &rs, pm_load_acquire(&slot[i].key),
                      (uint64_t)((char *)&slot[i].val - rt->base),
                      pm_load_acquire(&slot[i].val));
        uint64_t off = pm_load_acquire(next);
        if (off == 0)
            break;
        cap = pm_root_next_cap(cap);
        struct pm_root_table *tb = pm_root_table_at(rt, off, cap);
        if (tb == NULL) {
            bad(rep, "overflow root table %u at %#llx is not a live root table of "
                     "%llu slots", table + 1, (unsigned long long)off,
                (unsigned long long)cap);
            break;
        }
        if (freed_by_lanes(ls, off)) {
            bad(rep, "overflow root table %u at %#llx is a block a publish lane frees",
                table + 1, (unsigned long long)off);
            break;
        }
        if (n_tables < sizeof tables / sizeof *tables)
            tables[n_tables++] = off;
        slot = tb->slot;
        next = &tb->next_off;
    }
    if (rs.oom) {
        bad(rep, "out of memory while checking the roots");
    } else if (rs.n > 0) {
        qsort(rs.vals, rs.n, sizeof *rs.vals, cmp_u64);
        for (uint64_t i = 1; i < rs.n; i++)
            if (rs.vals[i] == rs.vals[i - 1]) {
                bad(rep, "block %#llx is the root of two tags",
                    (unsigned long long)rs.vals[i]);
                break;
            }
        /* a root naming the library's own block (a forged file): its
         * removal would free a log or a table still in use (a helper's
         * hunt: a removal lost 172 of 300 roots, or had a new block land
         * on a live log) */
        for (uint64_t i = 0; i < n_own + n_tables; i++) {
            uint64_t b = i < n_own ? own[i] : tables[i - n_own];
            if (sorted_has(rs.vals, rs.n, b)) {
                bad(rep, "a root names %#llx, a block of the library's own (%s)",
                    (unsigned long long)b,
                    i >= n_own ? "an overflow root table" : "a transaction log or lane table");
                break;
            }
        }
    }
    free(rs.vals);
}

/* ---- all of it ---- */

/* counts: fill in the report's counts of runs, blocks and crash leftovers
 * (check); a writer's open wants the verdict only, and reads each
 * superblock's bitmap once, in the rebuild that follows. */
int pm_verify(struct pm_rt *rt, struct persistent_check_report *rep, bool counts)
{
    memset(rep, 0, sizeof *rep);
    verify_runs(rt, rep, counts);
    /* lanes and roots are read through the run structure: only judged when
     * it holds */
    if (rep->n_errors == 0) {
        struct lanes ls = {rep, NULL, 0, 0, false, NULL, NULL, 0, 0};
        uint64_t tables[PM_LANE_MAX_CHUNKS];
        uint32_t n_tables;
        walk_lanes(rt, rep, lane_rule, &ls, tables, &n_tables);
        if (!ls.oom)
            lanes_index(&ls);
        if (ls.oom) {
            bad(rep, "out of memory while checking the lanes");
            free(ls.v);
            free(ls.freed);
            free(ls.cleared);
            return PERSISTENT_E_CORRUPT;
        }
        /* the library's own blocks: every transaction log once (two lanes
         * naming one had two threads write it, and a kill lose one's
         * rollback: a helper's hunt), and the overflow lane tables */
        uint64_t *own = malloc(((size_t)ls.n + n_tables + 1) * sizeof *own);
        uint64_t n_own = 0;
        if (own == NULL) {
            bad(rep, "out of memory while checking the lanes");
        } else {
            for (uint32_t k = 0; k < ls.n; k++)
                if (ls.v[k].op == PM_LANE_IDLE)
                    own[n_own++] = ls.v[k].blk;
            qsort(own, n_own, sizeof *own, cmp_u64);
            for (uint64_t k = 1; k < n_own; k++)
                if (own[k] == own[k - 1]) {
                    bad(rep, "two lanes name the transaction log at %#llx",
                        (unsigned long long)own[k]);
                    break;
                }
            for (uint32_t k = 0; k < n_tables; k++)
                own[n_own++] = tables[k];
        }
        /* the lanes are judged after recovery too: a table they free is
         * one recovery would leave the chain naming */
        for (uint32_t k = 0; k < n_tables; k++)
            if (freed_by_lanes(&ls, tables[k])) {
                bad(rep, "overflow lane table %u at %#llx is a block a publish lane "
                         "frees", k, (unsigned long long)tables[k]);
                break;
            }
        for (uint32_t k = 0; k < ls.n; k++)
            if (ls.v[k].op == PM_LANE_IDLE && freed_by_lanes(&ls, ls.v[k].blk)) {
                bad(rep, "transaction log at %#llx is a block recovery frees",
                    (unsigned long long)ls.v[k].blk);
                break;
            }
        verify_roots(rt, rep, &ls, own, n_own);
        free(own);
        free(ls.v);
        free(ls.freed);
        free(ls.cleared);
    }
    return rep->n_errors ? PERSISTENT_E_CORRUPT : 0;
}

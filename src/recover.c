/* Building the volatile runtime of an open space from the persistent truth,
 * and recovery after an unclean shutdown.
 *
 * Every open walks the run bitmaps once: it marks the claimed pages, maps
 * superblock pages to their superblock, and lists every superblock with a
 * free block in its class's partial lists, so no thread-cached state of a
 * previous process matters.  A writer also repairs, idempotently:
 *   - remote-free bits are applied (alloc &= ~remote, remote = 0): frees
 *     that were pending in a dead process take effect;
 *   - superblocks with no live block are released;
 *   - END and KIND bits that belong to no live run (left by a crash in the
 *     middle of a carve, free or resize) are cleared;
 *   - publish lanes are rolled forward or back (publish.c).
 * Before it writes anything a writer verifies the whole space by the rules
 * of verify.c (runs, lanes, roots), so a damaged file is refused with
 * PERSISTENT_E_CORRUPT and left unchanged; a private open that would
 * recover falls back to the heap as it is on file.
 * A crash during recovery is recovered by the next open: every step can be
 * repeated.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static uint64_t round_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

static void clear_bits_in(struct pm_rt *rt, pm_atomic_u64 *bits, uint64_t from,
                          uint64_t to)
{
    uint64_t q = from;
    while ((q = pg_next_set(bits, q, to)) != PG_NONE)
        pg_bit_clear(rt, bits, q++);
}

/* ---- the open's copy of the superblock headers ----
 *
 * An open reads every superblock's header and bitmaps twice (verification,
 * then the rebuild), and a first touch of a mapped page costs more than a
 * read of it: on the 2-core guest of 2026-12-02 a first touch cost 13-17
 * us, a pread of 1 KiB 1.3-2 us, so a 1 GiB space of 9,731 superblocks took
 * 150-200 ms to open, nearly all of it page faults.  A writer's open
 * therefore reads the headers with pread into volatile memory before it
 * verifies anything and verifies and rebuilds from that copy; the program
 * pays for mapping a superblock's page when it first uses the superblock.
 *
 * The copy is of the file as a writer found it, under its lock: no other
 * process writes the file, and only recovery writes superblocks between the
 * copy and the rebuild.  Each write recovery makes first forgets the copies
 * it may overlap (pm_snap_forget: the bits a rolled back transaction or a
 * publishing call in flight changes), and a restored page image drops the
 * copy whole (pm_snap_drop); the superblocks forgotten are then read
 * through the mapping.  A rollback's trial (rollback_trial) writes to a
 * private mapping, forgetting as it goes, and hands what is left of the
 * copy to the open that recovers for real.  The rebuild's repairs go
 * into the copy and from it to the file with pwrite, durable at once where
 * the mode flushes (repair_words), or through the mapping where there is
 * no copy of that superblock, the crash simulator's power model watches,
 * or a write is not possible (rebuild's can_write). */
struct pm_snap {
    uint64_t n;                 /* superblocks copied */
    uint64_t *idx;              /* ascending: first page << 32 | offset / 8 */
    char *arena;                /* the copies */
    size_t size;                /* bytes reserved for idx and arena */
};

/* the most a header and its two bitmaps take, and what each superblock's
 * one read asks for: a read of a header and bitmaps of up to 1,024 blocks,
 * followed by a second one where the bitmaps were longer, took 19.7-20.5
 * ms to open the 1 GiB space of 10 M blocks (12,204 reads) where one read
 * of this much takes 16.6-18.7 (9,740) on the guest of 2026-12-05; before
 * the arena had huge pages the longer copies cost more than the reads */
#define SNAP_MAX (sizeof(struct pm_sb_header) + 2 * sizeof(uint64_t) * (PM_SB_MAX_BLOCKS / 64))

/* At most this much copy (a 1 GiB space of 10 M blocks takes 3 MiB, a
 * heap of 16-byte blocks 1.7% of its size): superblocks past it are read
 * through the mapping */
#define SNAP_ARENA_MAX (UINT64_C(256) << 20)
uint64_t pm_snap_arena_max = SNAP_ARENA_MAX;    /* tests lower it */

/* an index entry's offset once its copy is forgotten (pm_snap_forget):
 * the arena is at most SNAP_ARENA_MAX, so no copy is at this one */
#define SNAP_GONE UINT64_C(0xffffffff)

/* A writer's open of a space of this many superblocks or more reads their
 * headers with more than one thread: as many readers (the opening thread
 * and helpers) as the CPUs the opening thread may run on, at most
 * SNAP_THREADS_MAX, and never more than one a run of SNAP_RUN_MIN.  A
 * pread of a header costs 1.7-3.5 us on the guest of 2026-12-05, nearly
 * all of it the system call and the page cache's lookup, which a second
 * CPU does beside the first (the 9,740 reads of a 1 GiB space of 10 M
 * blocks: 16.7 ms from one thread, 9.5 from two; io_uring, tried, took as
 * long as pread).  Below it a thread's start costs more than it saves.
 * PERSISTENT_MEM_OPEN_THREADS=N (1 to 16) sets the number whatever the
 * size; unset, 0 or not a number, the rule above. */
#define SNAP_PARALLEL_MIN 1024u
#define SNAP_THREADS_MAX 4u
#define SNAP_RUN_MIN 8u             /* superblocks a reader takes at a time */

unsigned pm_snap_readers(uint64_t n_sb)
{
    unsigned t = 0;
    const char *env = getenv("PERSISTENT_MEM_OPEN_THREADS");
    if (env != NULL && *env >= '0' && *env <= '9') {
        int saved = errno;
        char *end;
        unsigned long v = strtoul(env, &end, 10);
        errno = saved;
        if (*end == '\0' && v >= 1)
            t = v < OS_PARALLEL_MAX ? (unsigned)v : OS_PARALLEL_MAX;
    }
    if (t == 0) {                       /* unset, 0 or not a number */
        if (n_sb < SNAP_PARALLEL_MIN)
            return 1;
        t = os_ncpu();
        if (t > SNAP_THREADS_MAX)
            t = SNAP_THREADS_MAX;
    }
    /* a run for each at least */
    uint64_t most = n_sb / SNAP_RUN_MIN;
    return most < t ? (most > 0 ? (unsigned)most : 1u) : t;
}

/* Copies the header and bitmaps of superblock s to dst (room for SNAP_MAX
 * bytes): the bytes the copy keeps (a multiple of 8; only the header where
 * it is not valid, and *bad set), or 0 when the read failed.  One read of
 * the most there can be: the next copy overwrites what this one does not
 * keep. */
static size_t snap_copy(struct pm_rt *rt, uint64_t s, char *dst, bool *bad)
{
    ssize_t got = os_pread_upto(rt->fd, dst, SNAP_MAX, rt->data_off + (s << rt->page_shift));
    if (got < 0)
        return 0;
    memset(dst + got, 0, SNAP_MAX - (size_t)got);
    struct pm_sb_header *h = (struct pm_sb_header *)dst;
    *bad = !sb_header_valid(rt, h, s);
    return sizeof *h + (*bad ? 0 : 2 * sizeof(uint64_t) * h->n_words);
}

/* The readers' work.  The superblocks idx[lo, hi) of a lane are taken in
 * runs of `per` from both ends (the superblocks not yet taken in `ends`:
 * the first in the low half, one past the last in the high half), one
 * reader copying from the front of the lane's part of the arena upwards
 * and another from its back downwards, each packing its copies densely, so
 * the two never wait for each other and never meet: the part has room for
 * every superblock of the lane at its most (SNAP_MAX), and each reader's
 * copies take at most that for the superblocks it took.  (Runs handed out
 * in advance, one half each, waited for the slower reader: one half took
 * 24 ms, the other 13.) */
struct snap_lane {
    pm_atomic_u64 ends;
    size_t start, end;          /* its part of the arena */
    size_t front, back;         /* out: where the front reader's copies end,
                                   where the back reader's begin */
};

struct snap_reader {
    struct pm_rt *rt;
    struct pm_snap *sn;
    struct snap_lane *lane;
    uint64_t per;
    bool back;                  /* the lane's back reader */
    bool failed;                /* out: a read failed */
    uint64_t first_bad;         /* out: the first superblock it found bad
                                   (UINT64_MAX: none) */
};

/* The next run from the front (or the back) of the lane: false when none is
 * left. */
static bool snap_take(struct snap_lane *lane, uint64_t per, bool back, uint64_t *lo,
                      uint64_t *hi)
{
    uint64_t e = pm_load_relaxed(&lane->ends), n;
    do {
        uint64_t f = (uint32_t)e, b = e >> 32;
        if (f >= b)
            return false;
        uint64_t k = b - f < per ? b - f : per;
        *lo = back ? b - k : f;
        *hi = back ? b : f + k;
        n = back ? f | (b - k) << 32 : (f + k) | b << 32;
    } while (!pm_cas_weak_acq_rel(&lane->ends, &e, n));
    return true;
}

static void snap_read(void *arg)
{
    struct snap_reader *r = arg;
    struct pm_snap *sn = r->sn;
    struct snap_lane *lane = r->lane;
    size_t cur = r->back ? lane->end : lane->start;
    uint64_t lo, hi;
    bool bad = false;
    while (!(bad && !r->back) && snap_take(lane, r->per, r->back, &lo, &hi)) {
        if (!r->back) {
            for (uint64_t k = lo; k < hi; k++) {
                size_t keep = snap_copy(r->rt, sn->idx[k] >> 32, sn->arena + cur, &bad);
                if (keep == 0) {
                    r->failed = true;
                    goto out;
                }
                sn->idx[k] = (sn->idx[k] >> 32) << 32 | cur / 8;
                cur += keep;
                if (bad) {
                    /* what follows it is not needed (lookups past it read
                     * the mapping) */
                    r->first_bad = k;
                    break;
                }
            }
            continue;
        }
        /* the back reader: each copy read below the last, then moved up
         * against it */
        for (uint64_t k = hi; k-- > lo;) {
            char *dst = sn->arena + cur - SNAP_MAX;
            bool b = false;
            size_t keep = snap_copy(r->rt, sn->idx[k] >> 32, dst, &b);
            if (keep == 0) {
                r->failed = true;
                goto out;
            }
            cur -= keep;
            if (keep < SNAP_MAX)
                memmove(sn->arena + cur, dst, keep);
            sn->idx[k] = (sn->idx[k] >> 32) << 32 | cur / 8;
            if (b && k < r->first_bad)
                r->first_bad = k;
        }
    }
out:
    if (r->back)
        lane->back = cur;
    else
        lane->front = cur;
}

static void snap_build(struct pm_rt *rt)
{
    if (rt->mode != PM_MODE_WRITER || rt->map_mode != PM_MODE_WRITER || rt->fd < 0)
        return;
    /* sized by the pages, not by counting superblocks first: a forged file
     * may set the bits of every page of a huge maximum, and only the
     * verification after this refuses it (the reservation is only
     * touched as far as it is used) */
    uint64_t n = pm_load_acquire(&rt->n_pages);
    if (n == 0)
        return;
    uint64_t cap = pm_snap_arena_max < SNAP_ARENA_MAX ? pm_snap_arena_max : SNAP_ARENA_MAX;
    uint64_t arena = n < cap / SNAP_MAX ? n * SNAP_MAX : cap;
    uint64_t max_n = n < arena / sizeof(struct pm_sb_header) ? n
                                                             : arena / sizeof(struct pm_sb_header);
    struct pm_snap *sn = malloc(sizeof *sn);
    size_t size = (size_t)(max_n * sizeof(uint64_t) + arena);
    char *v = sn != NULL ? os_vol_alloc(size) : NULL;
    if (v == NULL) {
        free(sn);
        return;                         /* the mapping serves, only slower */
    }
    sn->idx = (uint64_t *)v;
    sn->arena = v + max_n * sizeof(uint64_t);
    /* the arena is filled densely from each lane's two ends, and let go
     * when the open is done: in huge pages where there are any (see the
     * runtime's in pm_engine_prepare); the index takes 8 bytes a
     * superblock */
    os_vol_hugepages(sn->arena, (size_t)arena);
    sn->size = size;
    /* The superblocks that have room in the arena at their most, in order
     * (all of them but in a space of hundreds of thousands): each index
     * entry says "forgotten" (read through the mapping) until its copy is
     * made. */
    uint64_t m = 0, s = 0;
    while (m < max_n && (m + 1) * SNAP_MAX <= arena &&
           (s = pg_next_set(rt->kind_bits, s, n)) != PG_NONE) {
        if (pg_bit(rt->start_bits, s))
            sn->idx[m++] = s << 32 | SNAP_GONE;
        s++;
    }
    /* two readers a lane; runs of 1/16 of a reader's share, of
     * SNAP_RUN_MIN superblocks at least */
    unsigned t = pm_snap_readers(m), lanes = (t + 1) / 2;
    uint64_t per = (m + 16u * t - 1) / (16u * t);
    if (per < SNAP_RUN_MIN)
        per = SNAP_RUN_MIN;
    struct snap_lane lane[(OS_PARALLEL_MAX + 1) / 2];
    struct snap_reader rd[OS_PARALLEL_MAX];
    void *args[OS_PARALLEL_MAX];
    for (unsigned j = 0; j < lanes; j++) {
        /* a lane's share by its readers: with an odd count the last lane
         * has one */
        uint64_t lo = m * (2 * j < t ? 2 * j : t) / t;
        uint64_t hi = m * (2 * j + 2 < t ? 2 * j + 2 : t) / t;
        pm_store_relaxed(&lane[j].ends, lo | hi << 32);
        lane[j].start = lane[j].front = (size_t)(lo * SNAP_MAX);
        /* the last lane's part runs to the arena's end: room for what
         * follows the superblocks listed */
        lane[j].end = lane[j].back = j + 1 < lanes ? (size_t)(hi * SNAP_MAX) : (size_t)arena;
    }
    for (unsigned i = 0; i < t; i++) {
        rd[i] = (struct snap_reader){rt, sn, &lane[i / 2], per, (i & 1) != 0, false, UINT64_MAX};
        args[i] = &rd[i];
    }
    os_run_parallel(snap_read, args, t);
    /* every superblock up to the first bad header has its copy */
    bool failed = false;
    uint64_t first_bad = UINT64_MAX;
    for (unsigned i = 0; i < t; i++) {
        failed = failed || rd[i].failed;
        if (rd[i].first_bad < first_bad)
            first_bad = rd[i].first_bad;
    }
    sn->n = first_bad < m ? first_bad + 1 : m;
    /* Past those, where the arena had no room at the most for each of
     * them: in the room the lanes left between their two readers (a copy
     * keeps only the bitmaps its header has), one after another as long as
     * one fits. */
    bool bad = first_bad != UINT64_MAX;
    for (unsigned j = 0; j < lanes && !failed && !bad && s != PG_NONE; j++) {
        size_t used = lane[j].front;
        while (sn->n < max_n && used + SNAP_MAX <= lane[j].back &&
               (s = pg_next_set(rt->kind_bits, s, n)) != PG_NONE) {
            if (pg_bit(rt->start_bits, s)) {
                size_t keep = snap_copy(rt, s, sn->arena + used, &bad);
                if (keep == 0) {
                    failed = true;
                    break;
                }
                sn->idx[sn->n++] = s << 32 | used / 8;
                used += keep;
                if (bad)
                    break;
            }
            s++;
        }
    }
    if (failed) {
        os_vol_free(v, size);
        free(sn);
        return;                         /* the mapping serves, only slower */
    }
    rt->snap = sn;
}

/* the first index entry whose superblock starts at page first or after */
static uint64_t snap_lower(const struct pm_snap *sn, uint64_t first)
{
    uint64_t lo = 0, hi = sn->n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (sn->idx[mid] >> 32 < first)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct pm_sb_header *pm_snap_header(struct pm_rt *rt, uint32_t first)
{
    const struct pm_snap *sn = rt->snap;
    uint64_t k = snap_lower(sn, first);
    if (k == sn->n || sn->idx[k] >> 32 != first || (sn->idx[k] & SNAP_GONE) == SNAP_GONE)
        return NULL;
    return (struct pm_sb_header *)(sn->arena + (sn->idx[k] & SNAP_GONE) * 8);
}

/* Recovery writes [at, at + len) of the mapping: the copies that bytes may
 * overlap are forgotten, and those superblocks are read through the
 * mapping from then on.  A copy holds at most SNAP_MAX bytes from its
 * superblock's first page; judged by that, not by what it keeps, so a
 * forgotten copy may be one the write missed, never the reverse.  (In
 * every space the library makes, a header and its bitmaps lie in the
 * superblock's first page: pages under 4 KiB come with superblocks of one
 * page.  The reach back past a page serves only a forged geometry, which
 * no test builds.) */
void pm_snap_forget(struct pm_rt *rt, const void *at, size_t len)
{
    struct pm_snap *sn = rt->snap;
    if (sn == NULL || len == 0)
        return;
    uintptr_t a = (uintptr_t)at, d = (uintptr_t)rt->data;
    if (a + len <= d)
        return;                         /* before the pages: no copy there */
    uint64_t lo = a > d ? (uint64_t)(a - d) : 0, hi = (uint64_t)(a + len - d);
    uint64_t from = lo < SNAP_MAX ? 0 : (lo - SNAP_MAX) >> rt->page_shift;
    for (uint64_t k = snap_lower(sn, from); k < sn->n; k++) {
        uint64_t start = (sn->idx[k] >> 32) << rt->page_shift;
        if (start >= hi)
            break;
        if (lo < start + SNAP_MAX)
            sn->idx[k] |= SNAP_GONE;
    }
}

void pm_snap_drop(struct pm_rt *rt)
{
    struct pm_snap *sn = rt->snap;
    if (sn == NULL)
        return;
    rt->snap = NULL;
    os_vol_free(sn->idx, sn->size);
    free(sn);
}

/* The rebuild's repair of superblock wh's bitmap words lo..hi, which h
 * (the open's copy in volatile memory, or wh itself) already holds for the
 * allocation words: the allocation words first, then the remote words
 * cleared, as a collect orders them (a crash between the two leaves remote
 * bits on free blocks, which the next recovery clears; a power failure
 * within either keeps any of its words, each of which is a state of that
 * order).
 *
 * From a copy, by_write writes the words with pwrite, not through the
 * mapping: after a SIGKILL a few hundred of a 1 GiB space's superblocks
 * have remote frees pending, and a first store to each header page is a
 * write fault on the file's mapping, 15-40 us each on the guest of
 * 2026-12-05 (5-21 ms of an open of 17 ms; docs/design.md "Recovery").
 * Where the mode writes back every change (rt->flush: PMEM), each write is
 * durable before the next begins (RWF_DSYNC), as a store written back and
 * fenced is.  Never under the crash simulator's power model, whose
 * flushes must see each line (its kill model has a crash point after each
 * write); only from the open's copy in a writer's own mapping of the file
 * (the page cache, or the persistent memory, pwrite writes is the one the
 * mapping shows).  A failed write leaves the words to the mapping.  The
 * caller is the only thread inside a call on the space (an open, or
 * pm_engine_reset): remote words that were zero in lo..hi are written
 * zero again, which a remote free running meanwhile would lose. */
static int write_words(struct pm_rt *rt, const pm_atomic_u64 *from, pm_atomic_u64 *to,
                       size_t len)
{
    uint64_t at = (uint64_t)((char *)to - rt->base);
    int r = rt->flush != NULL ? os_pwrite_durable(rt->fd, (const void *)from, len, at)
                              : os_pwrite_all(rt->fd, (const void *)from, len, at);
    if (r == 0)
        pm_crash_point();       /* the kill sweeps end here too */
    return r;
}

static void repair_words(struct pm_rt *rt, const struct pm_sb_header *h,
                         struct pm_sb_header *wh, uint32_t lo, uint32_t hi, bool by_write)
{
    size_t len = (size_t)(hi - lo + 1) * sizeof(uint64_t);
    uint32_t nw = h->n_words;
    if (by_write && write_words(rt, &h->bits[lo], &wh->bits[lo], len) == 0 &&
        write_words(rt, &h->bits[nw + lo], &wh->bits[nw + lo], len) == 0)
        return;
    if (h != wh)
        for (uint32_t w = lo; w <= hi; w++)
            pm_store_relaxed(&wh->bits[w], pm_load_relaxed(&h->bits[w]));
    pm_persist(rt, &wh->bits[lo], len);
    for (uint32_t w = lo; w <= hi; w++)
        pm_store_relaxed(&wh->bits[nw + w], 0);
    pm_persist(rt, &wh->bits[nw + lo], len);
}

static void rebuild(struct pm_rt *rt, bool repair)
{
    uint64_t n = pm_load_acquire(&rt->n_pages);
    uint64_t p = 0;
    /* repairs by pwrite (repair_words): a writer's open with the copy, not
     * under the crash simulator's power model, a descriptor still the
     * file's and no file size limit below the file's end; else through the
     * mapping */
    bool can_write = repair && rt->snap != NULL && rt->mode == PM_MODE_WRITER &&
                     rt->map_mode == PM_MODE_WRITER && rt->fd >= 0 && !rt->flush_sim &&
                     os_write_fits(rt->data_off + (n << rt->page_shift)) &&
                     os_fd_verify(rt->fd, &rt->fid) == 0;
    for (;;) {
        uint64_t s = pg_next_set(rt->start_bits, p, n);
        uint64_t gap_end = s == PG_NONE ? n : s;
        if (repair) {
            clear_bits_in(rt, rt->end_bits, p, gap_end);
            clear_bits_in(rt, rt->kind_bits, p, gap_end);
        }
        if (s == PG_NONE)
            break;
        uint64_t e = pg_next_set(rt->end_bits, s, n);
        if (e == PG_NONE)
            break;                              /* tolerant (read-only) walk */
        if (repair)
            clear_bits_in(rt, rt->kind_bits, s + 1, e + 1);
        p = e + 1;
        if (!pg_bit(rt->kind_bits, s)) {
            pg_mark_used(rt, s, e - s + 1);
            continue;
        }
        /* read from h (the open's copy, if any), written through the
         * mapping or, from the copy, with pwrite (repair_words) */
        struct pm_sb_header *h = sb_header_seen(rt, (uint32_t)s);
        if (!sb_header_valid(rt, h, s))
            continue;                           /* tolerant walk only */
        pm_atomic_u64 *al = h->bits, *rm = h->bits + h->n_words;
        struct pm_sb_header *wh = sb_header(rt, (uint32_t)s);
        uint32_t lo = UINT32_MAX, hi = 0;       /* the words repaired */
        uint32_t used = 0;
        for (uint32_t w = 0; w < h->n_words; w++) {
            uint64_t a = pm_load_relaxed(&al[w]);
            uint64_t r = pm_load_relaxed(&rm[w]);
            if (r != 0 && repair) {
                /* the allocation word in h, the copy or the file's own
                 * (then its remote word is cleared after it is durable);
                 * a copy's remote word at once */
                pm_store_relaxed(&al[w], a & ~r);
                if (h != wh)
                    pm_store_relaxed(&rm[w], 0);
                lo = w < lo ? w : lo;
                hi = w;
            }
            used += pm_popcount64(a & ~r);
        }
        if (lo <= hi)
            repair_words(rt, h, wh, lo, hi, can_write && h != wh);
        if (used == 0 && repair) {
            pg_bit_clear(rt, rt->start_bits, s);    /* commit */
            pg_bit_clear(rt, rt->end_bits, e);
            pg_bit_clear(rt, rt->kind_bits, s);
            continue;
        }
        pg_mark_used(rt, s, e - s + 1);
        sb_adopt_rebuilt(rt, (uint32_t)s, h, used);
    }
}

/* A page image page_restore refused: the heap judged damaged (rep). */
static bool tail_image_refused(struct pm_rt *rt, struct persistent_check_report *rep)
{
    if (rt->tail_image == 0)
        return false;
    memset(rep, 0, sizeof *rep);
    rep->n_errors = 1;
    snprintf(rep->first_error, sizeof rep->first_error,
             "a transaction's page image at %#llx would write run bits past the end "
             "of the space", (unsigned long long)(rt->tail_image - 1));
    return true;
}

/* What a rollback writes is judged before it is written (G8).  pm_verify
 * judges the shape of a log's entries (a snapshot inside a live block, a
 * page image a page of the file), not the bytes they put back: an
 * automatic transaction's page images hold metadata (superblock headers,
 * run bits, the root table, lanes), and an explicit snapshot may cover a
 * block the library keeps (a root or lane table, a log).  Forged or
 * damaged, those bytes were written and only then refused: a writer left
 * the file changed, a private open a damaged heap after its recovery.  So
 * when a log says a transaction is to be rolled back, the rollback is
 * tried first on a copy-on-write mapping of the file, with nothing written
 * back: its page images, the heap verified, the rest of the rollback, the
 * heap verified again.  1 when both hold, 0 when not (*rep says why;
 * *rolled whether the rollback had changed anything by then), or an
 * error.  rt's mapping is the copy. */
static int rollback_steps(struct pm_rt *rt, struct persistent_check_report *rep,
                          bool counts, bool *rolled)
{
    rt->tail_image = 0;
    int r = pm_tx_restore_pages(rt);
    if (r < 0)
        return r;
    *rolled = r > 0;
    if (tail_image_refused(rt, rep))
        return 0;
    if (r == 0)
        snap_build(rt);         /* the mapping is the file's yet: a writer
                                   reads its headers with pread (a first
                                   touch of each through the mapping cost
                                   ten times as much) */
    if (pm_verify(rt, rep, counts) != 0) {
        pm_snap_drop(rt);
        return 0;
    }
    uint64_t open = rep->open_transactions;
    *rolled = true;
    r = pm_tx_recover(rt);
    if (r < 0)
        return r;
    if (tail_image_refused(rt, rep))
        return 0;
    r = pm_verify(rt, rep, counts) == 0;
    rep->open_transactions = open;      /* the ones rolled back */
    return r;
}

/* An open that recovers: the trial in its own mapping, made copy-on-write
 * for it at the same address and then mapped as before.  The open
 * recovers for real only if the trial holds, on a file that is byte for
 * byte what the trial saw (the writer's lock), so it ends where the trial
 * did, and its verification of the heap with the page images back is the
 * one the open would make next (the same bytes): 1 when the trial holds,
 * 2 when there is nothing to roll back. */
static int rollback_trial(struct pm_rt *rt, struct persistent_check_report *rep,
                          bool *rolled)
{
    *rolled = false;
    if (!pm_tx_rollback_pending(rt))
        return 2;
    const struct pm_flush_ops *flush = rt->flush;
    rt->flush = NULL;           /* nothing to write back (nor for the crash
                                   simulator to see) */
    int r = pm_space_map(rt, PM_MODE_PRIVATE, false);
    if (r == 0)
        r = rollback_steps(rt, rep, false, rolled);
    /* The copy is of the file, and what the trial wrote (to its private
     * mapping, never to the file) forgot the copies it overlapped: what
     * is left of it is still the file's, and serves the open that now
     * recovers for real (the same writes, forgetting the same copies) and
     * its rebuild.  Kept only when the trial holds. */
    if (r != 1)
        pm_snap_drop(rt);
    int back = pm_space_map(rt, rt->map_mode, rt->map_sync);
    rt->flush = flush;
    pm_store_relaxed(&rt->n_lane_chunks, 0u);   /* found again from the file */
    if (back < 0)
        return pm_err(back, "mmap: %s", persistent_strerror(back));
    return r;
}

static int judge_locked(struct pm_rt *rt, int fd, struct persistent_check_report *rep);

/* The file must hold still while it is judged (the walks trust what they
 * verified, as a writer's open may under its lock): a review found the
 * shadow's copy-on-write pages following a live writer's file, its
 * entries rewritten between the verification and the restores, and a
 * check crashing on a copy far out of range.  A live writer's open
 * transactions are not to be rolled back by anybody anyway.  So the judge
 * runs only under a shared lock taken without waiting (os_lock_judge):
 * none while a writer has the space open or waits for it (then the heap
 * is judged as it is).  The lock is taken on a description of the file of
 * its own, checked to be the view's file (a second review: a descriptor
 * the program closed and the number reused had a check turn a writer's
 * exclusive lock into a shared one and drop it; and two threads' judges
 * on one description shared one lock, the first to end dropping it). */
int pm_rollback_judge(struct pm_rt *rt, struct persistent_check_report *rep)
{
    if (rt->can_alloc || !pm_tx_rollback_pending(rt))
        return 0;
    int fd = pm_fd_again(rt);
    if (fd < 0)
        return 0;
    int r;
    if (os_lock_judge(fd)) {
        pm_hook(PM_HOOK_JUDGE_LOCKED);
        r = judge_locked(rt, fd, rep);
        /* unlocked, not only closed: a child forked meanwhile has a copy
         * of the descriptor, which would keep the lock, and every writer
         * out, for as long as it lives */
        os_unlock(fd);
    } else {
        /* a writer has the space, or waits for it: a live one's
         * transactions are its own, but it may be one that has not rolled
         * back yet what a crash left (a review found a view calling such a
         * file corrupt while a writer waited) */
        r = PM_JUDGE_REFUSED;
    }
    os_close(fd);
    return r;
}

static int judge_locked(struct pm_rt *rt, int fd, struct persistent_check_report *rep)
{
    /* the writer may have ended its transactions before it closed */
    if (!pm_tx_rollback_pending(rt))
        return 0;
    struct pm_rt *sh = malloc(sizeof *sh);
    bool at_pref;
    char *base = sh != NULL ? os_reserve(0, rt->reserve_size, PM_BASE_ALIGN, &at_pref) : NULL;
    if (base == NULL) {
        free(sh);
        return -ENOMEM;
    }
    /* the runtime as it is, but for where the file is mapped: recovery
     * and verification read and write the file's bytes through it, and
     * nothing volatile but the lane tables they find (pub_lane_at) */
    memcpy(sh, rt, sizeof *sh);
    sh->base = base;
    sh->hdr = (struct pm_header *)base;
    sh->data = base + rt->data_off;
    sh->start_bits = (pm_atomic_u64 *)(base + ((char *)rt->start_bits - rt->base));
    sh->end_bits = (pm_atomic_u64 *)(base + ((char *)rt->end_bits - rt->base));
    sh->kind_bits = (pm_atomic_u64 *)(base + ((char *)rt->kind_bits - rt->base));
    sh->flush = NULL;
    sh->snap = NULL;
    sh->fd = fd;
    sh->fid.mark = UINT64_MAX;          /* the judge's description: no mark */
    memset(sh->lane_chunk, 0, sizeof sh->lane_chunk);
    pm_store_relaxed(&sh->n_lane_chunks, 0u);
    /* as far as the view follows the file now (pm_follow saw it that
     * long), should the private mapping have to stop at its end (strict
     * overcommit: a review found the shadow reading unmapped pages) */
    uint64_t pages = pm_load_acquire(&rt->n_pages);
    pm_store_relaxed(&sh->n_pages, pages);
    sh->st.n_pages = pages;
    sh->st.file_size = rt->data_off + (pages << rt->page_shift);
    sh->own_copy = true;                /* thrown away after the judgement */
    int r = pm_space_map(sh, PM_MODE_PRIVATE, false);
    bool rolled = false;
    if (r == 0)
        r = rollback_steps(sh, rep, true, &rolled);
    pm_snap_drop(sh);       /* none today (snap_build copies for writers
                               only, and a writer's open judges in its
                               trial), but never left behind */
    os_unmap(base, rt->reserve_size);
    free(sh);
    if (r < 0)
        return r;
    if (r == 0 && rolled) {
        static const char pre[] = "once an unfinished transaction is rolled back: ";
        char why[sizeof rep->first_error];
        size_t n = strlen(rep->first_error);
        if (n > sizeof why - sizeof pre)
            n = sizeof why - sizeof pre;
        memcpy(why, pre, sizeof pre - 1);
        memcpy(why + sizeof pre - 1, rep->first_error, n);
        why[sizeof pre - 1 + n] = '\0';
        memcpy(rep->first_error, why, sizeof why);
    }
    return r ? 1 : PERSISTENT_E_CORRUPT;
}

/* The rebuild writes the page map entry of every page of a superblock
 * and the control word of every superblock's first page.  Where the file's
 * superblocks are dense (a 1 GiB heap of 64 KiB superblocks: 512 B of
 * control words and 128 B of entries a superblock), nearly every page of
 * both arrays is written, and a first touch of each was a page fault: on
 * the guest of 2026-12-05, 2,300 faults of 5-8 us each, half of a 40 ms
 * open (docs/design.md "Recovery").  Huge pages there make one fault of
 * 2 MiB out of 512 of 4 KiB.  Only where the rebuild will write at least
 * half of a huge page's small pages, counted from the START and KIND bits
 * (an array's small page is written when a superblock starts in the pages
 * it covers; a longer superblock may write more of the page map's), so
 * that a huge page takes at most twice the memory the small pages would:
 * superblocks packed at the start of a large space, or a space of large
 * runs with a superblock here and there, keep small pages where they do
 * not fill them, and so does everything past the pages the file has now
 * (growth touches it page by page, as the program uses it). */
static void runtime_hugepages(struct pm_rt *rt)
{
    uint64_t n = pm_load_acquire(&rt->n_pages);
    n = n < rt->max_pages ? n : rt->max_pages;
    uint64_t psz = os_page_size();
    /* pages of the space whose control words, or page map entries, share
     * one small page (128 and 512 with 4 KiB), and one huge page */
    const uint64_t g_ctl = psz / sizeof(struct pm_sbctl), g_map = psz / sizeof(pm_atomic_u64);
    const uint64_t per_ctl = OS_HUGE / sizeof(struct pm_sbctl);
    const uint64_t per_map = OS_HUGE / sizeof(pm_atomic_u64);
    const uint64_t half = OS_HUGE / psz / 2;
    _Static_assert(OS_HUGE / sizeof(struct pm_sbctl) % 64 == 0,
                   "a huge page of control words covers whole words of run bits");
    if (g_ctl % 64 != 0 || half == 0)
        return;                         /* no page size Linux has */
    uint64_t t_ctl = 0, t_map = 0;      /* small pages written, this huge page */
    bool w_ctl = false, w_map = false;  /* this small page written */
    for (uint64_t w = 0; w * 64 < n; w++) {
        uint64_t m = pm_load_relaxed(&rt->start_bits[w]) & pm_load_relaxed(&rt->kind_bits[w]);
        uint64_t q = (w + 1) * 64;      /* the next word's first page */
        if (q > n)
            m &= (UINT64_C(1) << (n - w * 64)) - 1;
        w_ctl |= m != 0;
        w_map |= m != 0;
        if (q % g_ctl == 0 || q >= n) {
            t_ctl += w_ctl;
            w_ctl = false;
        }
        if (q % g_map == 0 || q >= n) {
            t_map += w_map;
            w_map = false;
        }
        /* each array's region is a whole number of huge pages when it is
         * one or more (pm_engine_prepare), so a hint never reaches past it */
        if (q % per_ctl == 0 || q >= n) {
            if (t_ctl >= half && rt->max_pages >= per_ctl)
                os_vol_hugepages(&rt->ctl[(q - 1) / per_ctl * per_ctl], OS_HUGE);
            t_ctl = 0;
        }
        if (q % per_map == 0 || q >= n) {
            if (t_map >= half && rt->max_pages >= per_map)
                os_vol_hugepages(&rt->pagemap[(q - 1) / per_map * per_map], OS_HUGE);
            t_map = 0;
        }
    }
}

int pm_engine_prepare(struct pm_rt *rt)
{
    uint64_t mp = rt->max_pages;
    size_t used_sz = round_up((mp + 63) / 64 * 8, 64);
    size_t map_sz = round_up(mp * sizeof(pm_atomic_u64), 64);
    size_t ctl_sz = round_up(mp * sizeof(struct pm_sbctl), 64);
    size_t rec_sz = round_up(PM_MAX_RECS * sizeof(struct pm_trec), 64);
    size_t lane_sz = round_up((rt->fixed.n_lanes + PM_LANE_CHUNK * PM_LANE_MAX_CHUNKS) *
                                  sizeof(pm_atomic_u32), 64);
    /* one bit per 16-byte granule of the pages, three times (roots.c) */
    size_t mark_sz = round_up(((mp << rt->page_shift) / 16 + 63) / 64 * 8, 64);
    /* the page map and the control words first, each at a multiple of
     * OS_HUGE and a whole number of them when it is that big (a
     * reservation that big starts at one): see runtime_hugepages */
    size_t map_at = 0, ctl_at = map_sz >= OS_HUGE ? round_up(map_sz, OS_HUGE) : map_sz;
    if (ctl_sz >= OS_HUGE)
        ctl_at = round_up(ctl_at, OS_HUGE);
    size_t rest_at = ctl_at + (ctl_sz >= OS_HUGE ? round_up(ctl_sz, OS_HUGE) : ctl_sz);
    rt->vol_size = rest_at + 2 * used_sz + rec_sz + lane_sz + (4 + PM_VG_MARKS) * mark_sz;
    char *v = os_vol_alloc(rt->vol_size);
    if (v == NULL)
        return pm_err(-ENOMEM, "cannot reserve %zu bytes for the runtime",
                      rt->vol_size);
    rt->vol = v;
    rt->pagemap = (pm_atomic_u64 *)(v + map_at);
    rt->ctl = (struct pm_sbctl *)(v + ctl_at);
    runtime_hugepages(rt);
    v += rest_at;
    rt->used = (pm_atomic_u64 *)v;
    v += used_sz;
    rt->punched = (pm_atomic_u64 *)v;
    v += used_sz;
    rt->recs = (struct pm_trec *)v;
    v += rec_sz;
    rt->lane_owner = (pm_atomic_u32 *)v;
    v += lane_sz;
    rt->rootmark = (pm_atomic_u64 *)v;
    v += mark_sz;
    rt->txmark = (pm_atomic_u64 *)v;
    v += mark_sz;
    rt->snapmark = (pm_atomic_u64 *)v;
    v += mark_sz;
    rt->ownmark = (pm_atomic_u64 *)v;
    v += mark_sz;
    rt->vgknown = PM_VG_MARKS ? (pm_atomic_u64 *)v : NULL;
    rt->used_words = (mp + 63) / 64;
    pm_classes_init(rt);
    pg_init(rt);
    if (rt->can_alloc) {
        /* everything recovery and the allocator will act on, before a byte
         * is written (G8) */
        struct persistent_check_report rep;
        bool rolled;
        int ok = rollback_trial(rt, &rep, &rolled);
        if (ok < 0)
            return ok;
        const char *what = rolled ? "space is damaged once an unfinished transaction "
                                    "is rolled back"
                                  : "space is damaged";
        if (ok) {
            /* an automatic transaction's pages, where a crash cut its
             * rollback short, first: see pm_tx_restore_pages */
            int r = pm_tx_restore_pages(rt);
            if (r < 0)
                return r;
            if (ok == 2) {              /* else the trial verified this */
                snap_build(rt);
                ok = pm_verify(rt, &rep, false) == 0;
            }
        }
        if (!ok) {
            if (rt->mode == PM_MODE_WRITER)
                return pm_err(PERSISTENT_E_CORRUPT, "%s: %s; not opened for "
                              "writing (a private or read-only open can inspect "
                              "it)", what, rep.first_error);
            /* a private open still gives the heap as it is on file */
            rt->can_alloc = false;
            rt->recovery_skipped = true;
            rt->follows = rt->map_pages == rt->max_pages;
            pm_err(PERSISTENT_E_CORRUPT, "%s: %s; opened privately without "
                   "recovery (read the heap as it is on file; no allocation)",
                   what, rep.first_error);
        }
    }
    return 0;
}

int pm_engine_start(struct pm_rt *rt)
{
    bool repair = rt->can_alloc;
    uint64_t holes = pm_load_acquire(&rt->hdr->live.no_holes);
    if (rt->mode == PM_MODE_WRITER && !(rt->open_flags & PERSISTENT_OPEN_LAZY) &&
        holes != PM_HOLES_NONE && holes != PM_HOLES_TAIL) {
        /* holes punched before a crash (or a close) were never backed
         * again.  Only when one may have been punched: a file create
         * allocated needs no second pass (on tmpfs, pages allocated and
         * never written read as holes, and backing 6 GiB again took
         * seconds).  After a lazy writer the file is allocated, but for the
         * run bitmaps' tail (pm_back_file): its holes may be anywhere, and
         * where SEEK_HOLE is not supported os_fill_holes would find none */
        int r = pm_back_file(rt->fd, &rt->fixed, pm_load_acquire(&rt->n_pages),
                             holes != PM_HOLES_LAZY);
        if (r == 0 && rt->durability != PM_DUR_PROCESS)
            r = os_fdatasync(rt->fd);   /* backed before the word says so */
        if (r < 0)
            return pm_err(r, "cannot fill the holes of the space: %s",
                          persistent_strerror(r));
        pm_store_release(&rt->hdr->live.no_holes, pm_backed_word(&rt->fixed));
        pm_persist(rt, &rt->hdr->live.no_holes, sizeof rt->hdr->live.no_holes);
    }
    if (rt->mode == PM_MODE_WRITER) {
        /* a writer killed inside a growth, between the file's extension
         * and the header's page count, left a file longer than the space
         * (validate accepts it): cut back to the pages the header counts,
         * which nothing maps or names, so that the file is the size the
         * space says (G5b; it kept 64 MiB more through every open until
         * another growth covered it, a helper's hunt found) */
        uint64_t size, want = rt->data_off + (pm_load_acquire(&rt->n_pages) << rt->page_shift);
        if (os_file_size(rt->fd, &size) == 0 && size > want &&
            pm_fd_check(rt, "cutting the file back") == 0)
            (void)os_truncate(rt->fd, want);    /* failed: longer, as before */
    }
    if (repair) {
        /* transactions, then lanes, first: rolling one back can empty a
         * superblock, and a transaction's log may go on in pages no run
         * holds */
        int r = pm_tx_recover(rt);
        if (r == 0)
            r = pm_lanes_recover(rt);
        if (r < 0)
            return r;
        pm_tx_salt_logs(rt);
    }
    /* a restored page image dropped the copy, or none was made (a trial
     * that restored pages builds none): read now, the file is what the
     * rebuild must see (docs/design.md, "Reopen of a space with many
     * superblocks") */
    if (rt->snap == NULL)
        snap_build(rt);
    rebuild(rt, repair);
    pm_snap_drop(rt);
    if (repair)
        pm_root_marks_rebuild(rt);
    rt->recovered = repair && !rt->clean_at_open;
    return 0;
}

/* After an automatic transaction's pages were restored (tx.c): the
 * volatile runtime rebuilt from the file as an open builds it.  The caller
 * is the only thread inside a call on the space, and no other thread owns
 * a superblock (the transaction revoked them all when it began). */
void pm_engine_reset(struct pm_rt *rt, struct pm_trec *rec)
{
    /* nothing past the pages in use was ever set */
    uint64_t mp = pm_load_acquire(&rt->n_pages);
    for (uint64_t w = 0; w < (mp + 63) / 64; w++)
        pm_store_relaxed(&rt->used[w], 0);
    for (uint64_t p = 0; p < mp; p++)
        pm_store_relaxed(&rt->pagemap[p], UINT64_C(0));
    for (uint64_t p = 0; p < mp; p++) {
        struct pm_sbctl *c = &rt->ctl[p];
        uint64_t a = pm_load_relaxed(&c->anchor);
        pm_store_relaxed(&c->anchor, pm_anchor_make(a, PM_SB_FREE, 0));
        pm_store_relaxed(&c->summary, 0);
        pm_store_relaxed(&c->n_pub, 0u);
        pm_store_relaxed(&c->marks, (uint16_t)0);
    }
    uint64_t marks = ((mp << rt->page_shift) / 16 + 63) / 64;
    for (uint64_t w = 0; w < marks; w++) {
        pm_store_relaxed(&rt->rootmark[w], 0);
        pm_store_relaxed(&rt->txmark[w], 0);
        pm_store_relaxed(&rt->snapmark[w], 0);
        pm_store_relaxed(&rt->ownmark[w], 0);
    }
    for (uint32_t i = 0; i < PM_COHOLD_SLOTS; i++)
        pm_store_relaxed(&rt->cohold[i], 0);
    pm_store_relaxed(&rt->n_cohold, 0);
    for (uint32_t c = 0; c < PM_N_CLASSES; c++)
        for (int side = 0; side < 2; side++) {
            uint64_t h = pm_load_relaxed(&rt->partial[c][side]);
            pm_store_relaxed(&rt->partial[c][side], ((h >> 32) + 1) << 32);
        }
    pm_hook(PM_HOOK_AUTO_RESET);
    pg_init(rt);
    pg_cache_forget(rt);
    sb_forget_thread(rec);
    rebuild(rt, true);
    pm_root_marks_rebuild(rt);
}

void pm_engine_close(struct pm_rt *rt)
{
    pm_snap_drop(rt);
    if (rt->vol) {
        os_vol_free(rt->vol, rt->vol_size);
        rt->vol = NULL;
        rt->used = NULL;
        rt->punched = NULL;
        rt->pagemap = NULL;
        rt->ctl = NULL;
        rt->recs = NULL;
        rt->lane_owner = NULL;
        rt->rootmark = NULL;
        rt->txmark = NULL;
        rt->snapmark = NULL;
        rt->vgknown = NULL;
    }
}

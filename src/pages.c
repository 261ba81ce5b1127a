/* The page allocator and the persistent run bitmaps.
 *
 * Claims: a volatile bitmap (rt->used, one bit per page) says which pages a
 * run, a superblock or an allocation in progress holds.  A claim sets the
 * bits of [first, first + n) word by word with CAS and rolls back if another
 * thread got there first, so it never waits.  Coalescing is implicit: a
 * freed run is only cleared bits.  rt->used is rebuilt at every open from
 * the START/END bits, so a claim that never became a run costs nothing
 * after a crash.
 *
 * Search is first fit, lowest address first, to keep the file's used part
 * small, a 64-bit word at a time.  rt->hints[n - 1] is a lower bound on
 * where a run of n free pages can start (bits 0..39), with a version (bits
 * 40..63), for n up to 16; longer requests share one per length bucket
 * (17-31, 32-63, ... 512 up: hint_of), a bound for the bucket's shortest.
 * Per length, so that a request does not scan again and again past the
 * holes too short for it that first fit leaves in the low part of the
 * space (one hint for every request over 16 pages had a 256-page one scan
 * past every hole of 17-255, docs/design.md "Pages and runs").  Frees lower the hints
 * of every length they could serve and bump their versions; an allocation
 * raises its own with a CAS that fails if anything changed meanwhile.  When the hinted search fails a full scan
 * from page 0 runs before anyone reports exhaustion, so a stale hint can
 * cost time but never a false ENOMEM (G5b).
 *
 * Persistent run bits (START/END/KIND, see layout.h) are set and cleared
 * with atomic RMW because neighbouring runs share words; each change is
 * persisted before the next dependent one.
 */
#include <errno.h>

#include "internal.h"

#define HINT_PAGE_MASK ((UINT64_C(1) << 40) - 1)
#define N_EXACT 16u /* hints 0..15: requests of exactly 1..16 pages */

/* The hint a request of n pages (n >= 1) starts from: its own length's up
 * to 16 pages, then its bucket's: 17-31, 32-63, 64-127, 128-255, 256-511,
 * 512 and up.  A hint for a bucket is a lower bound on where a run of the
 * bucket's shortest length (hint_len) can start, so it is one for every
 * longer request too. */
static uint32_t hint_of(uint64_t n)
{
    if (n <= N_EXACT)
        return (uint32_t)n - 1;
    uint32_t b = 63 - pm_clz64(n) - 4;             /* 17-31: 0, 32-63: 1, ... */
    return N_EXACT + (b < PM_PAGE_HINTS - N_EXACT - 1 ? b : PM_PAGE_HINTS - N_EXACT - 1);
}

/* The shortest request hint i serves. */
static uint64_t hint_len(uint32_t i)
{
    if (i < N_EXACT)
        return i + 1;
    return i == N_EXACT ? N_EXACT + 1 : UINT64_C(1) << (i - N_EXACT + 4);
}

static uint64_t mask_of(uint64_t lo, uint64_t cnt)
{
    return (cnt >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << cnt) - 1) << lo;
}

/* ---- persistent run bits ---- */

bool pg_bit(const pm_atomic_u64 *bits, uint64_t page)
{
    return (pm_load_acquire((pm_atomic_u64 *)&bits[page >> 6]) >> (page & 63)) & 1;
}

void pg_bit_set(struct pm_rt *rt, pm_atomic_u64 *bits, uint64_t page)
{
    pm_atomic_u64 *w = &bits[page >> 6];
    pm_fetch_or_acq_rel(w, UINT64_C(1) << (page & 63));
    pm_persist(rt, w, sizeof *w);
}

void pg_bit_clear(struct pm_rt *rt, pm_atomic_u64 *bits, uint64_t page)
{
    pm_atomic_u64 *w = &bits[page >> 6];
    pm_fetch_and_acq_rel(w, ~(UINT64_C(1) << (page & 63)));
    pm_persist(rt, w, sizeof *w);
}

/* First set bit in [from, limit), PG_NONE if none. */
uint64_t pg_next_set(const pm_atomic_u64 *bits, uint64_t from, uint64_t limit)
{
    if (from >= limit)
        return PG_NONE;
    uint64_t w = from >> 6;
    uint64_t x = pm_load_acquire((pm_atomic_u64 *)&bits[w]) & (~UINT64_C(0) << (from & 63));
    for (;;) {
        if (x) {
            uint64_t p = (w << 6) + pm_ctz64(x);
            return p < limit ? p : PG_NONE;
        }
        if (++w << 6 >= limit)
            return PG_NONE;
        x = pm_load_acquire((pm_atomic_u64 *)&bits[w]);
    }
}

/* Last set bit at or before at, PG_NONE if none. */
uint64_t pg_prev_set(const pm_atomic_u64 *bits, uint64_t at)
{
    uint64_t w = at >> 6;
    uint64_t x = pm_load_acquire((pm_atomic_u64 *)&bits[w]) &
                 (~UINT64_C(0) >> (63 - (at & 63)));
    for (;;) {
        if (x)
            return (w << 6) + 63 - pm_clz64(x);
        if (w == 0)
            return PG_NONE;
        x = pm_load_acquire((pm_atomic_u64 *)&bits[--w]);
    }
}

/* First clear bit in [from, limit), PG_NONE if none. */
static uint64_t next_clear(const pm_atomic_u64 *bits, uint64_t from, uint64_t limit)
{
    if (from >= limit)
        return PG_NONE;
    uint64_t w = from >> 6;
    uint64_t x = ~pm_load_relaxed((pm_atomic_u64 *)&bits[w]) & (~UINT64_C(0) << (from & 63));
    for (;;) {
        if (x) {
            uint64_t p = (w << 6) + pm_ctz64(x);
            return p < limit ? p : PG_NONE;
        }
        if (++w << 6 >= limit)
            return PG_NONE;
        x = ~pm_load_relaxed((pm_atomic_u64 *)&bits[w]);
    }
}

uint64_t pg_run_end(struct pm_rt *rt, uint64_t first)
{
    return pg_next_set(rt->end_bits, first, pm_load_acquire(&rt->n_pages));
}

/* ---- claims ---- */

int pg_init(struct pm_rt *rt)
{
    for (uint32_t i = 0; i < PM_PAGE_HINTS; i++)
        pm_store_relaxed(&rt->hints[i], 0);
    return 0;
}

/* Recovery only (single-threaded): mark a live run. */
void pg_mark_used(struct pm_rt *rt, uint64_t first, uint64_t n)
{
    for (uint64_t p = first; p < first + n;) {
        uint64_t lo = p & 63, cnt = 64 - lo < first + n - p ? 64 - lo : first + n - p;
        pm_fetch_or_acq_rel(&rt->used[p >> 6], mask_of(lo, cnt));
        p += cnt;
    }
}

static void clear_range(struct pm_rt *rt, uint64_t first, uint64_t end)
{
    for (uint64_t p = first; p < end;) {
        uint64_t lo = p & 63, cnt = 64 - lo < end - p ? 64 - lo : end - p;
        pm_fetch_and_acq_rel(&rt->used[p >> 6], ~mask_of(lo, cnt));
        p += cnt;
    }
}

static void hint_lower(pm_atomic_u64 *hint, uint64_t page)
{
    uint64_t h = pm_load_relaxed(hint);
    /* above the hint the hint stays right; skipping the CAS there keeps
     * frees from all contending on one word (an allocation racing with
     * such a free may leave the hint above it until the next free below:
     * a page unused a while, never a false ENOMEM, see pg_alloc) */
    if (page > (h & HINT_PAGE_MASK))
        return;
    for (;;) {
        uint64_t hp = h & HINT_PAGE_MASK;
        uint64_t nh = (((h >> 40) + 1) << 40) | (page < hp ? page : hp);
        if (pm_cas_weak_acq_rel(hint, &h, nh))
            return;
    }
}

/* Pages [first, first + n) became free: every request length they could
 * serve may now be served at first.  (Freed next to free pages they may
 * serve longer requests too; missing that only delays their reuse until a
 * free below the hint or a full scan.) */
static void hints_lower(struct pm_rt *rt, uint64_t first, uint64_t n)
{
    if (n == 0)
        return;
    for (uint32_t i = 0, top = hint_of(n); i <= top; i++)
        if (first <= (pm_load_relaxed(&rt->hints[i]) & HINT_PAGE_MASK))
            hint_lower(&rt->hints[i], first);
}

bool pg_claim_at(struct pm_rt *rt, uint64_t first, uint64_t n)
{
    uint64_t end = first + n;
    if (n == 0 || end > pm_load_acquire(&rt->n_pages) || end < first)
        return false;
    for (uint64_t p = first; p < end;) {
        uint64_t lo = p & 63, cnt = 64 - lo < end - p ? 64 - lo : end - p;
        uint64_t m = mask_of(lo, cnt);
        pm_atomic_u64 *w = &rt->used[p >> 6];
        uint64_t old = pm_load_relaxed(w);
        do {
            if (old & m) {
                /* someone may have skipped these pages as used meanwhile:
                 * with the free pages next to them they can make a run up
                 * to n pages long, so every hint up to n's comes down (a
                 * hint is a lower bound: lowering one is always safe) */
                clear_range(rt, first, p);
                if (p > first)
                    hints_lower(rt, first, n);
                return false;
            }
        } while (!pm_cas_weak_acq_rel(w, &old, old | m));
        p += cnt;
    }
    return true;
}

void pg_release(struct pm_rt *rt, uint64_t first, uint64_t n)
{
    clear_range(rt, first, first + n);
    hints_lower(rt, first, n);
}

/* Bits i of the result are set where x has n (1..64) set bits starting at
 * bit i, within the word: O(log n) shifts. */
static uint64_t runs_of(uint64_t x, uint64_t n)
{
    uint64_t k = 1;
    while (2 * k <= n) {
        x &= x >> k;
        k *= 2;
    }
    if (n > k)
        x &= x >> (n - k);
    return x;
}

/* Lowest run of n free pages in [from, limit), a word at a time: runs
 * inside a word by runs_of, runs across words by carrying the free pages
 * at the top of the previous word.  *first_free gets the first free page
 * seen. */
static uint64_t find_free_any(struct pm_rt *rt, uint64_t from, uint64_t n,
                              uint64_t track, uint64_t limit, uint64_t *first_free)
{
    uint64_t carry = 0;                 /* free pages ending at word start */
    for (uint64_t w = from >> 6; (w << 6) < limit; w++) {
        /* *first_free: the first place a run of track pages starts */
        uint64_t x = ~pm_load_relaxed(&rt->used[w]);
        if (w == from >> 6)
            x &= ~UINT64_C(0) << (from & 63);
        if (((w + 1) << 6) > limit)
            x &= (UINT64_C(1) << (limit & 63)) - 1;
        if (x == 0) {
            carry = 0;
            continue;
        }
        uint64_t low = ~x ? pm_ctz64(~x) : 64;     /* free pages at bit 0 up */
        if (*first_free == PG_NONE && track < n) {
            if (carry + low >= track)
                *first_free = (w << 6) - carry;
            else if (track <= 64 && ~x != 0 && runs_of(x, track))
                *first_free = (w << 6) + pm_ctz64(runs_of(x, track));
        }
        if (carry + low >= n) {
            if (*first_free == PG_NONE)
                *first_free = (w << 6) - carry;
            return (w << 6) - carry;
        }
        if (~x == 0) {
            carry += 64;
            continue;
        }
        if (n <= 64) {
            uint64_t r = runs_of(x, n);
            if (r) {
                if (*first_free == PG_NONE)
                    *first_free = (w << 6) + pm_ctz64(r);
                return (w << 6) + pm_ctz64(r);
            }
        }
        carry = (x >> 63) ? pm_clz64(~x) : 0;       /* free pages at the top */
    }
    return PG_NONE;
}

/* Lowest run of n free pages at or after from whose first page p has
 * (p + phase) % align == 0; *first_free gets the first free page seen. */
static uint64_t find_free(struct pm_rt *rt, uint64_t from, uint64_t n,
                          uint64_t track, uint64_t align, uint64_t phase,
                          uint64_t limit, uint64_t *first_free)
{
    *first_free = PG_NONE;
    if (align == 1)
        return find_free_any(rt, from, n, track, limit, first_free);
    uint64_t p = from;
    while (p < limit && limit - p >= n) {
        uint64_t z = next_clear(rt->used, p, limit);
        if (z == PG_NONE)
            return PG_NONE;
        if (*first_free == PG_NONE)
            *first_free = z;
        z += (align - (z + phase) % align) % align;
        if (z >= limit || limit - z < n)
            return PG_NONE;
        uint64_t s = pg_next_set(rt->used, z, z + n);
        if (s == PG_NONE)
            return z;
        p = s + 1;
    }
    return PG_NONE;
}

/* ---- holes ----
 * A huge freed run (2 MiB or more) is punched out of the file while its
 * pages are still claimed: the file system gets the blocks back, as a
 * volatile allocator would unmap a huge block, and the pages are marked in
 * rt->punched.  Whoever claims punched pages backs them again first with
 * fallocate, so a full disk shows as a failed allocation, never as SIGBUS on
 * a store.  After a crash the marks are gone: a writer's open fills every
 * hole in the file but the run bitmaps' tail (pm_back_file) before
 * anything runs.
 *
 * Only huge runs: a punch and a later fallocate cost tens of microseconds
 * (the kernel zeroes what it backs again), which only a block that size
 * can pay for; punching from 128 KiB up made the mixed benchmark (1% of
 * blocks between 64 KiB and 1 MiB) fifteen times slower. */
#define PUNCH_BYTES (UINT64_C(2) << 20)

static void bits_range(pm_atomic_u64 *bits, uint64_t first, uint64_t n, bool set)
{
    for (uint64_t p = first; p < first + n;) {
        uint64_t lo = p & 63, cnt = 64 - lo < first + n - p ? 64 - lo : first + n - p;
        if (set)
            pm_fetch_or_acq_rel(&bits[p >> 6], mask_of(lo, cnt));
        else
            pm_fetch_and_acq_rel(&bits[p >> 6], ~mask_of(lo, cnt));
        p += cnt;
    }
}

bool pg_back(struct pm_rt *rt, uint64_t first, uint64_t n)
{
    if (!rt->can_punch || (rt->open_flags & PERSISTENT_OPEN_LAZY) ||
        pg_next_set(rt->punched, first, first + n) == PG_NONE)
        return true;                /* lazily: backed when written */
    if (pm_fd_check(rt, "backing punched pages") < 0 ||
        os_allocate(rt->fd, rt->data_off + (first << rt->page_shift),
                    n << rt->page_shift) != 0)
        return false;
    bits_range(rt->punched, first, n, false);
    return true;
}

/* The file may have a hole from here on (how: PM_HOLES_PUNCHED or
 * PM_HOLES_LAZY): said durably first, so that the next eager writer's open
 * (after a crash too) backs it.  LAZY, once said, stays: it is the one
 * that makes that open back the whole file (but the run bitmaps' tail). */
void pm_holes_announce(struct pm_rt *rt, uint64_t how)
{
    pm_atomic_u64 *nh = &rt->hdr->live.no_holes;
    uint64_t cur = pm_load_acquire(nh);
    while (cur != how && cur != PM_HOLES_LAZY) {
        if (pm_cas_strong_acq_rel(nh, &cur, how)) {
            pm_persist(rt, nh, sizeof *nh);
            return;
        }
    }
}

void pg_release_large(struct pm_rt *rt, uint64_t first, uint64_t n)
{
    /* not while an automatic transaction is open on the space: the punch
     * changes the file with no store through the mapping, so no fault
     * snapshots the pages, and a rollback that makes the block live again
     * would find it zeroed (a review found exactly that) */
    if (rt->can_punch && (n << rt->page_shift) >= PUNCH_BYTES &&
        pm_load_acquire(&pm_auto_rt) != rt && pm_fd_check(rt, "punching a hole") == 0) {
        pm_holes_announce(rt, PM_HOLES_PUNCHED);
        if (os_punch(rt->fd, rt->data_off + (first << rt->page_shift),
                     n << rt->page_shift) == 0)
            bits_range(rt->punched, first, n, true);
    }
    pg_release(rt, first, n);
}

/* ---- a thread's freed runs ----
 * A thread that frees a run of up to rt->run_max pages (four times the
 * largest class, sizeclass.c) clears its run bits as every free does --
 * the file says the pages are free, so a crash loses nothing and readers,
 * checks and recovery see a free run -- but
 * keeps the pages claimed in rt->used, in a slot of its record.  Its next
 * large block of that length or shorter takes them back with one CAS, no
 * search of the shared bitmap and no hint to move (the rest of a longer
 * run stays kept; superblocks are not carved from them, docs/design.md).  That search, its claims and the
 * hints' CASes took half the time of the mixed benchmark at two threads
 * and more, every thread's large blocks contending on the same words.
 *
 * Only the owner fills a slot (a plain store into an empty one); any thread
 * may empty one with a CAS: the owner to reuse the run; a thread's exit
 * (pg_cache_drop) and any thread about to grow the space or report
 * exhaustion (pg_cache_reclaim), to give the pages back, so that runs kept
 * by a thread that went quiet never cause a false ENOMEM (G5b) and grow
 * the file only when they could not serve.  Runs long enough to be punched
 * (PUNCH_BYTES) are never kept. */
#define RUN_LEN(v) ((v) & 0xff)
#define RUN_FIRST(v) ((v) >> 8)
_Static_assert(PM_RUN_MAX_PAGES <= 0xff, "a run's length fits its slot");

/* A kept run of at least min pages, the shortest there is (one of exactly
 * min first): its first max pages or fewer (*n), the rest kept. */
uint64_t pg_cache_take(struct pm_trec *rec, uint64_t min, uint64_t max, uint64_t *n)
{
    if (rec == NULL || min > PM_RUN_MAX_PAGES)   /* no slot holds it */
        return PG_NONE;
    uint32_t best = PM_RUN_SLOTS;
    uint64_t bv = 0;
    for (uint32_t i = 0; i < PM_RUN_SLOTS; i++) {
        uint64_t v = pm_load_relaxed(&rec->runs[i]);
        if (v == 0 || RUN_LEN(v) < min || (bv != 0 && RUN_LEN(v) >= RUN_LEN(bv)))
            continue;
        best = i;
        bv = v;
        if (RUN_LEN(v) == min)
            break;
    }
    if (best == PM_RUN_SLOTS)
        return PG_NONE;
    pm_hook(PM_HOOK_RUN_TAKE);
    uint64_t got = RUN_LEN(bv) < max ? RUN_LEN(bv) : max;
    /* the rest stays kept, in the same CAS (a reclaim never finds the
     * slot empty with pages still kept): released, it would contend with
     * every other thread's claims on the shared words.  The CAS fails only
     * if another thread gave the run back meanwhile. */
    uint64_t rest = RUN_LEN(bv) > got ? (RUN_FIRST(bv) + got) << 8 | (RUN_LEN(bv) - got) : 0;
    if (!pm_cas_strong_acq_rel(&rec->runs[best], &bv, rest))
        return PG_NONE;
    *n = got;
    return RUN_FIRST(bv);
}

/* Up to max pages from first on, if a run rec keeps starts there (a large
 * block growing in place into it); how many. */
uint64_t pg_cache_take_at(struct pm_trec *rec, uint64_t first, uint64_t max)
{
    for (uint32_t i = 0; rec != NULL && i < PM_RUN_SLOTS; i++) {
        uint64_t v = pm_load_relaxed(&rec->runs[i]);
        if (v == 0 || RUN_FIRST(v) != first)
            continue;
        uint64_t n = RUN_LEN(v) < max ? RUN_LEN(v) : max;
        uint64_t rest = RUN_LEN(v) > n ? (first + n) << 8 | (RUN_LEN(v) - n) : 0;
        if (pm_cas_strong_acq_rel(&rec->runs[i], &v, rest))
            return n;
    }
    return 0;
}

/* The first page after p and before end where a run rec keeps starts;
 * end if none. */
uint64_t pg_cache_next(struct pm_trec *rec, uint64_t p, uint64_t end)
{
    for (uint32_t i = 0; rec != NULL && i < PM_RUN_SLOTS; i++) {
        uint64_t v = pm_load_relaxed(&rec->runs[i]);
        if (v != 0 && RUN_FIRST(v) > p && RUN_FIRST(v) < end)
            end = RUN_FIRST(v);
    }
    return end;
}

/* Pages [first, first + n) of a freed large block (run bits cleared): kept
 * by rec when they fit a slot, else released. */
void pg_release_cached(struct pm_rt *rt, struct pm_trec *rec, uint64_t first, uint64_t n)
{
    /* kept only where first fit would look first anyway (at or below the
     * hint for its length): a run kept above it would be reused before
     * the lower holes, and the heap would stop settling low (the frag
     * benchmark's footprint went from 1.33 to 1.49 times the live bytes).
     * A kept run serves any shorter request of 17 pages or more
     * (pg_cache_take), so a longer one is judged by the hint of the
     * shortest bucket, 17-31, not by its own */
    if (rec != NULL && n <= rt->run_max && (n << rt->page_shift) < PUNCH_BYTES &&
        first <= (pm_load_relaxed(&rt->hints[hint_of(n <= N_EXACT ? n : N_EXACT + 1)]) &
                  HINT_PAGE_MASK)) {
        /* joined to a kept run it touches, as the shared bitmap would join
         * it to a free neighbour: in one CAS of that slot, so that the
         * pages are in a slot at every moment */
        for (uint32_t i = 0; i < PM_RUN_SLOTS; i++) {
            uint64_t v = pm_load_relaxed(&rec->runs[i]);
            if (v == 0 || (RUN_FIRST(v) + RUN_LEN(v) != first && RUN_FIRST(v) != first + n) ||
                RUN_LEN(v) + n > rt->run_max ||
                ((RUN_LEN(v) + n) << rt->page_shift) >= PUNCH_BYTES)
                continue;
            uint64_t f = RUN_FIRST(v) < first ? RUN_FIRST(v) : first;
            if (pm_cas_strong_acq_rel(&rec->runs[i], &v, f << 8 | (RUN_LEN(v) + n)))
                return;
        }
        uint32_t low = 0;
        uint64_t lv = UINT64_MAX;
        for (uint32_t i = 0; i < PM_RUN_SLOTS; i++) {
            uint64_t v = pm_load_relaxed(&rec->runs[i]);
            if (v == 0) {
                pm_store_release(&rec->runs[i], first << 8 | n);
                return;
            }
            if (RUN_LEN(v) < RUN_LEN(lv)) {
                low = i;
                lv = v;
            }
        }
        /* full: the shortest run makes room for a longer one (the longer
         * ones serve more requests, and tails of them end up short) */
        if (RUN_LEN(lv) < n) {
            /* swapped in one CAS; one that fails found the slot emptied */
            if (pm_cas_strong_acq_rel(&rec->runs[low], &lv, first << 8 | n))
                pg_release(rt, RUN_FIRST(lv), RUN_LEN(lv));
            else
                pm_store_release(&rec->runs[low], first << 8 | n);
            return;
        }
    }
    pg_release_large(rt, first, n);
}

/* Empties rec's slots, releasing their runs; whether there was any. */
static bool cache_empty(struct pm_rt *rt, struct pm_trec *rec)
{
    bool any = false;
    for (uint32_t i = 0; i < PM_RUN_SLOTS; i++) {
        uint64_t v = pm_load_acquire(&rec->runs[i]);
        while (v != 0 && !pm_cas_weak_acq_rel(&rec->runs[i], &v, 0))
            ;
        if (v != 0) {
            pg_release(rt, RUN_FIRST(v), RUN_LEN(v));
            any = true;
        }
    }
    return any;
}

void pg_cache_drop(struct pm_rt *rt, struct pm_trec *rec)
{
    (void)cache_empty(rt, rec);
}

bool pg_cache_reclaim(struct pm_rt *rt)
{
    bool any = false;
    uint32_t n = pm_load_acquire(&rt->n_recs);
    for (uint32_t id = 1; id <= n && id < PM_MAX_RECS; id++)
        any |= cache_empty(rt, &rt->recs[id]);
    return any;
}

/* After rt->used was rebuilt from the file (pm_engine_reset): the slots
 * name pages that are no longer claimed. */
void pg_cache_forget(struct pm_rt *rt)
{
    uint32_t n = pm_load_acquire(&rt->n_recs);
    for (uint32_t id = 1; id <= n && id < PM_MAX_RECS; id++)
        for (uint32_t i = 0; i < PM_RUN_SLOTS; i++)
            pm_store_relaxed(&rt->recs[id].runs[i], 0);
}

/* Where a search goes on after the run [p, p + n) could not be backed:
 * the end of the first stretch of punched pages in it (every run that
 * starts before would hold some of them too); PG_NONE at limit. */
static uint64_t past_punched(struct pm_rt *rt, uint64_t p, uint64_t n, uint64_t limit)
{
    uint64_t q = pg_next_set(rt->punched, p, p + n);
    if (q == PG_NONE)
        return p + n < limit ? p + n : PG_NONE;
    return next_clear(rt->punched, q, limit);      /* past q, or PG_NONE */
}

uint64_t pg_alloc(struct pm_rt *rt, uint64_t n, uint64_t align)
{
    uint64_t phase = rt->data_off >> rt->page_shift;
    if (n == 0 || align == 0)
        return PG_NONE;
    /* the hint for this length; aligned requests use the one for a page */
    uint32_t hi = align == 1 ? hint_of(n) : 0;
    uint64_t track = hint_len(hi);
    pm_atomic_u64 *hint = &rt->hints[hi];
    bool unbacked = false;
    for (int pass = 0; pass < 2; pass++) {
        uint64_t limit = pm_load_acquire(&rt->n_pages);
        uint64_t h = pm_load_acquire(hint);
        uint64_t from = pass == 0 ? (h & HINT_PAGE_MASK) : 0;
        for (;;) {
            uint64_t first_free;
            uint64_t p = find_free(rt, from, n, track, align, phase, limit, &first_free);
            if (p == PG_NONE)
                break;
            if (pg_claim_at(rt, p, n)) {
                if (!pg_back(rt, p, n)) {
                    /* its punched pages could not be backed (a full file
                     * system): free pages still backed may lie above them */
                    pg_release(rt, p, n);
                    unbacked = true;
                    from = past_punched(rt, p, n, limit);
                    if (from == PG_NONE)
                        break;
                    continue;
                }
                /* nothing this hint covers starts below first_free; if that
                 * is what was just taken, the next candidate is after it */
                if (pass == 0 && first_free <= p && !unbacked) {
                    uint64_t next = first_free == p ? p + n : first_free;
                    (void)pm_cas_strong_acq_rel(hint, &h,
                                                (h & ~HINT_PAGE_MASK) | next);
                }
                return p;
            }
            from = p;          /* lost a race for part of it: look again */
        }
    }
    if (unbacked)
        errno = ENOSPC;
    return PG_NONE;
}

/* Pages up to the highest one ever claimed in this open, or recorded. */
uint64_t pm_hwm_pages(struct pm_rt *rt)
{
    uint64_t h = rt->st.hwm_pages;
    if (rt->used == NULL)
        return h;
    for (uint64_t w = pm_load_acquire(&rt->n_pages) / 64 + 1; w-- > 0;) {
        uint64_t x = w < rt->used_words ? pm_load_relaxed(&rt->used[w]) : 0;
        if (x) {
            uint64_t top = w * 64 + 64 - pm_clz64(x);
            return top > h ? top : h;
        }
    }
    return h;
}

/* The lowest run of at least min free pages, taken up to max pages long;
 * *n gets the length.  Superblocks are carved this way (sizeclass.c). */
uint64_t pg_alloc_flex(struct pm_rt *rt, uint64_t min, uint64_t max, uint64_t *n)
{
    if (min == 0 || min > max)
        return PG_NONE;
    bool unbacked = false;
    uint64_t floor = 0;                 /* past runs that could not be backed */
    /* tries counts the searches that went back to the floor (a stale hint,
     * a lost race), not the runs that could not be backed: each of those
     * raises the floor, and a file with more punched runs than tries once
     * failed the carve with backed pages above them */
    bool hinted = true;
    for (int tries = 0; tries < 64;) {
        uint64_t limit = pm_load_acquire(&rt->n_pages);
        pm_atomic_u64 *hint = &rt->hints[hint_of(min)];
        uint64_t h = pm_load_acquire(hint);
        uint64_t first_free;
        uint64_t from = hinted ? (h & HINT_PAGE_MASK) : floor;
        hinted = false;
        uint64_t p = find_free(rt, from, min, hint_len(hint_of(min)), 1, 0, limit,
                               &first_free);
        if (p == PG_NONE) {
            if (from == floor)
                break;
            tries++;
            continue;                   /* the hint may be stale: a full scan */
        }
        uint64_t stop = p + max < limit ? p + max : limit;
        uint64_t end = pg_next_set(rt->used, p + min, stop);
        uint64_t len = (end == PG_NONE ? stop : end) - p;
        if (!pg_claim_at(rt, p, len)) {
            tries++;
            continue;                   /* lost a race: look again */
        }
        if (!pg_back(rt, p, len)) {
            /* as in pg_alloc: backed free pages may lie above, or before
             * the punched ones (enough of them: those alone) */
            unbacked = true;
            uint64_t q = pg_next_set(rt->punched, p, p + len);
            if (q != PG_NONE && q - p >= min) {
                pg_release(rt, q, p + len - q);
                len = q - p;
            } else {
                pg_release(rt, p, len);
                floor = past_punched(rt, p, len, limit);
                if (floor == PG_NONE)
                    break;
                continue;
            }
        }
        if (first_free == p && !unbacked)
            (void)pm_cas_strong_acq_rel(hint, &h, (h & ~HINT_PAGE_MASK) | (p + len));
        *n = len;
        return p;
    }
    if (unbacked)
        errno = ENOSPC;
    return PG_NONE;
}

/* Transactions: failure-atomic updates of the program's own data, by undo
 * logging in a log per thread (layout.h: struct pm_txlog, pm_txent).
 *
 * A thread's log is a block found from its lane (pm_lane.tx_off) and kept
 * by the lane from one thread to the next.  A transaction has a generation
 * (in the log's state word); its entries go in the stream of its
 * generation's parity (pm_txlog_stream: half the block each) and carry a
 * check over the generation and their contents, so the first entry whose
 * check fails ends the stream: nothing about entries has to be counted or
 * made durable apart from the entries themselves.  A stream that outgrows
 * its half goes on in pages the transaction claims (JUMP entries),
 * released when its entries are no longer needed.
 *
 * Order of persists (PMEM durability: "persist" = write back + fence,
 * "flush" = write back only; PROCESS and SYNC do neither, and program
 * order, which a killed process keeps, gives the same order)
 *   begin   nothing: the state word is written with the first entry
 *   first entry: state = ACTIVE | gen (| PREV), flushed, fenced with it
 *   add     SNAPSHOT entry (the range's bytes) persisted; then the caller
 *           changes the range                                  1 fence
 *   alloc   block reserved; ALLOC entry persisted; its allocation bit set
 *           and flushed (the commit fences it; a crash before that leaves
 *           the entry, and rolling it back frees the block)   1 fence
 *   free    FREE entry flushed (the commit fences it)
 *   commit  the previous transaction's frees done (bits cleared and
 *           flushed), snapshotted ranges and allocated blocks flushed,
 *           then one fence: data, entries, bits durable        1 fence
 *           state = IDLE | gen, or COMMITTED | gen if it frees,
 *           persisted: the commit point                        1 fence
 *           now the previous transaction's freed blocks may be reused;
 *           this one's frees wait for the next commit (or abort, thread
 *           exit, close), its FREE entries kept in its stream.
 *           PROCESS and SYNC, where nothing waits for a fence: this
 *           one's frees done right after the commit point, then state =
 *           IDLE | gen, then the blocks reusable (commit_frees_now);
 *           nothing is left for the next commit
 *   abort   snapshots copied back newest first and flushed, allocated
 *           blocks and the previous transaction's frees freed (not
 *           reusable yet); one fence; state = IDLE persisted; then the
 *           blocks may be reused
 * So a transaction of one snapshot, one small allocation and any number of
 * small frees takes four fences.  A large allocation takes two more (its
 * run bits), a large free one (its start bit).
 *
 * Recovery (pm_tx_recover, at a writer's open before anything else reads
 * the heap): ACTIVE rolls back as abort does (and with PREV finishes the
 * previous generation's frees, from the other stream), COMMITTED finishes
 * the frees; all idempotent, ending with state = IDLE.  Finishing a free
 * late is safe because no block is reused before the state word has moved
 * past the transaction that freed it.  pm_verify judged every log first
 * (verify.c).
 *
 * Blocks a transaction allocated or frees are marked (roots.c) while it is
 * open, and the blocks it freed until their frees are done: other frees of
 * them are refused, and they cannot become roots (roots are not
 * transactional: an abort would free one).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define LOG_BYTES (64u << 10)   /* the block of a thread's log */
#define SEG_BYTES (64u << 10)   /* a claimed continuation, at least */
#define ENT ((uint64_t)sizeof(struct pm_txent))

/* The memory page size, read once (any thread may be first). */
static size_t page_of_os(void)
{
    static pm_atomic_u64 cached;
    uint64_t p = pm_load_relaxed(&cached);
    if (p == 0) {
        p = os_page_size();
        pm_store_relaxed(&cached, p);
    }
    return (size_t)p;
}

struct pm_tx_oset {
    uint64_t *key;                /* 0: an empty slot */
    uint8_t *flags;               /* OSET_* */
    size_t cap, n;                /* cap: a power of 2, or 0 */
};

struct range {
    uint64_t off, len;
    const struct pm_txent *ent;   /* snapshots: the entry holding them */
};

struct vec {
    struct range *v;
    size_t n, cap;
};

struct pm_tx {
    uint32_t depth;               /* its changes from and to 0 in
                                     rec->tx_open (depth_set) */
    struct pm_trec *rec;          /* whose (set by each begin) */
    bool automatic;               /* pages caught by protection */
    bool fenced;                  /* automatic: its begin fenced every
                                     thread (membarrier) after taking the
                                     space */
    uint64_t gen;
    uint64_t key;                 /* of its entries' checks (pm_txlog_key) */
    struct pm_txlog *log;
    char *at, *end;               /* next entry; end of the segment less the
                                     room for a JUMP */
    uint64_t entries;             /* written in this transaction */
    struct vec snaps;             /* (offset, length, entry) */
    struct vec allocs;            /* (offset, usable size) */
    struct vec frees;             /* (offset) */
    struct vec marks;             /* blocks this transaction marked: its
                                     allocations and the blocks it frees
                                     (len: the run the mark counts at) */
    struct vec holds;             /* blocks it snapshotted and holds in
                                     rt->snapmark (plain frees refused) */
    struct pm_tx_oset mset;       /* the same blocks, with whether it frees
                                     them, once there are many (indexed) */
    bool indexed;
    struct vec segs;              /* claimed pages: (first, count) */
    struct pm_pubfree *held;      /* the frees of the last transaction that
                                     committed some: done, not yet reusable
                                     (finished by the next commit) */
    size_t n_held, held_cap;
    struct pm_pubfree *floc;      /* where each of frees is (tx_free) */
    size_t floc_cap;
    struct vec pend_segs;         /* the pages its stream went on in */
    bool written;                 /* the state word says ACTIVE | gen */
    uint32_t roomy;               /* calls of tx_add, tx_alloc and tx_free
                                     known to have room (tx_room) */
    uint32_t room_empty;          /* roomy when those lists are empty */
    struct pm_pubfree *pf;        /* room to free the allocations at once */
    size_t pf_cap;
    size_t free0_words;           /* room in free0 */
    uint64_t *free0;              /* automatic: the page bitmap at its begin
                                     (pages in use then), of n0 pages */
    uint64_t n0, seg_from;        /* where the next segment is looked for */
};

/* A transaction's own volatile state (the structure, its lists and
 * tables) lives in pages mapped for it, not in the C library's heap: a
 * malloc may take a lock (a sanitizer's allocator does, glibc's arenas
 * may), and a thread stopped inside one would hold up every other
 * thread's transaction that needs room (G7; test_heaplock).  A mapping
 * takes no lock a stopped thread could keep.  Room comes in whole pages:
 * a list starts with a page of it. */

/* A mapping of at least *bytes (rounded up to pages: *bytes says how
 * much) holding the first old bytes of p, which is let go; NULL (errno
 * ENOMEM), p untouched, when there is no memory.  p NULL: zeroed pages.
 * os_vol_free lets it go (with as many bytes as are in use, or more). */
static void *vol_grow(void *p, size_t old, size_t *bytes)
{
    size_t pg = page_of_os();
    if (*bytes > SIZE_MAX - pg) {
        errno = ENOMEM;
        return NULL;
    }
    size_t want = (*bytes + pg - 1) & ~(pg - 1);
    void *n = os_vol_alloc(want);
    if (n == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (p != NULL) {
        memcpy(n, p, old);
        os_vol_free(p, old);
    }
    *bytes = want;
    return n;
}

/* Room for at least need elements of size each where v has room for
 * *cap of them: v, or its copy in a larger mapping (*cap updated); NULL
 * when out of memory (v and *cap unchanged). */
static void *vol_room(void *v, size_t *cap, size_t size, size_t need)
{
    if (need <= *cap && v != NULL)
        return v;
    size_t c = *cap ? *cap : 1;
    while (c < need) {
        if (c > SIZE_MAX / 2 / size) {
            errno = ENOMEM;
            return NULL;
        }
        c *= 2;
    }
    size_t bytes = c * size;
    void *n = vol_grow(v, *cap * size, &bytes);
    if (n != NULL)
        *cap = bytes / size;
    return n;
}

/* Doubles v's room; false when out of memory. */
__attribute__((noinline)) static bool vec_grow(struct vec *v)
{
    struct range *n = vol_room(v->v, &v->cap, sizeof *v->v, v->cap + 1);
    if (n == NULL)
        return false;
    v->v = n;
    return true;
}

/* Room for one more in v (so that what follows cannot fail). */
static inline bool vec_room(struct vec *v)
{
    return PM_LIKELY(v->n < v->cap) || vec_grow(v);
}

static inline bool vec_push(struct vec *v, uint64_t off, uint64_t len, const struct pm_txent *e)
{
    if (!vec_room(v))
        return false;
    v->v[v->n++] = (struct range){off, len, e};
    return true;
}

/* Room for need frees in *v (so that what follows cannot fail). */
static bool pf_room(struct pm_pubfree **v, size_t *cap, size_t need)
{
    struct pm_pubfree *n = vol_room(*v, cap, sizeof **v, need);
    if (n == NULL)
        return false;
    *v = n;
    return true;
}

static uint64_t round8(uint64_t x)
{
    return (x + 7) & ~UINT64_C(7);
}

/* ---- entries ---- */

/* A snapshot of up to this many bytes is copied and checked in one pass. */
#define FUSED_MAX 256u

/* Inline everywhere (a GNU attribute): the entries without data fold to a
 * few stores and the check's head and end. */
__attribute__((always_inline)) static inline void
entry_fill(struct pm_txent *e, uint64_t gen, uint64_t key, uint32_t kind, uint64_t off,
           uint64_t len, const void *data)
{
    e->kind_len = kind | len << 8;
    e->off = off;
    e->reserved = 0;
    uint64_t n_words = 0;
    if (data != NULL && kind == PM_TXE_SNAPSHOT && len <= FUSED_MAX) {
        /* copied and checked in one pass, a word at a time (the last one
         * padded with zeros), without a call to memcpy */
        uint64_t x = pm_txent_check_head(gen, key, e->kind_len, off);
        uint64_t *to = (uint64_t *)(void *)(e + 1);
        const char *from = data;
        size_t i = 0;
        for (; i + 8 <= len; i += 8) {
            uint64_t w;
            memcpy(&w, from + i, 8);
            *to++ = w;
            x = pm_txent_check_word(x, w);
        }
        if (i < len) {
            uint64_t w = 0;
            memcpy(&w, from + i, len - i);
            *to = w;
            x = pm_txent_check_word(x, w);
        }
        pm_vg_defined(e + 1, len);      /* the log holds whatever was there */
        e->check = pm_txent_check_end(x);
        return;
    }
    if (data != NULL) {
        if (kind == PM_TXE_PAGE)
            pm_copy_raw(e + 1, data, len);  /* a whole page: free blocks too */
        else
            memcpy(e + 1, data, len);
        pm_vg_defined(e + 1, len);      /* the log holds whatever was there */
        if (len % 8 != 0)
            memset((char *)(e + 1) + len, 0, round8(len) - len);
        n_words = round8(len) / 8;
    }
    e->check = pm_txent_check(gen, key, e->kind_len, off, (const uint64_t *)(e + 1), n_words);
}

/* Whether [off, off + len) is a run of whole free pages a log may go on in
 * (claimed by its transaction, in no run). */
static bool segment_inside(struct pm_rt *rt, uint64_t off, uint64_t len)
{
    return len != 0 && (off - rt->data_off) % rt->page_size == 0 && len % rt->page_size == 0 &&
           pm_in_data(rt, off, len);
}

static bool segment_ok(struct pm_rt *rt, uint64_t off, uint64_t len)
{
    if (!segment_inside(rt, off, len))
        return false;
    uint64_t first = (off - rt->data_off) >> rt->page_shift;
    uint64_t n = len >> rt->page_shift;
    if (pg_next_set(rt->start_bits, first, first + n) != PG_NONE)
        return false;
    uint64_t s = first ? pg_prev_set(rt->start_bits, first - 1) : PG_NONE;
    if (s != PG_NONE) {
        uint64_t e = pg_next_set(rt->end_bits, s, pm_load_acquire(&rt->n_pages));
        if (e == PG_NONE || e >= first)
            return false;
    }
    return true;
}

bool pm_txlog_head_ok(struct pm_rt *rt, uint64_t off)
{
    if (off % 64 != 0 || !pm_in_data(rt, off, sizeof(struct pm_txlog)))
        return false;
    const struct pm_txlog *lg = (const struct pm_txlog *)(rt->base + off);
    uint64_t live = pm_block_live(rt, off);
    bool two = pm_txlog_two_streams(lg->magic);
    /* room for two streams of at least one line each, in every format:
     * the first format's log becomes the third's, two streams, at its
     * first transaction (log_attach); a smaller one made streams of 0
     * bytes, whose room (tx_start: end - ENT - at) wrapped, and the
     * transaction wrote past its log (a helper's hunt, 2026-12-06) */
    uint64_t min = sizeof *lg + 4 * ENT;
    return (two || lg->magic == PM_TXLOG_MAGIC_V1) &&
           lg->size >= min && lg->size <= live && pm_in_data(rt, off, lg->size);
}

void pm_txit_start(struct pm_rt *rt, const struct pm_txlog *lg, uint64_t gen,
                   struct pm_txit *it)
{
    it->gen = gen;
    it->key = pm_txlog_key(lg, (uint64_t)((const char *)lg - rt->base), gen);
    pm_txlog_stream(lg, (uint64_t)((const char *)lg - rt->base), gen, &it->at, &it->end);
    it->budget = pm_data_limit(rt) / ENT;
    it->loose = false;
    it->track = false;
    it->oom = false;
    it->log_off = (uint64_t)((const char *)lg - rt->base);
    it->log_size = lg->size;
    it->segmap = NULL;
    it->data_off = rt->data_off;
    it->page_shift = rt->page_shift;
    it->n_pages = pm_load_acquire(&rt->n_pages);
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* A restore (newest first) must never write over an entry not yet
 * restored: no transaction writes its own log (its pages are left
 * writable, and an explicit snapshot lies in a block the program owns),
 * but a forged or damaged one can, and the restores then read entries
 * the ones before rewrote (the fuzzer found a page image restored over
 * the log, the next entry read with length 0 and a copy of 2^64 bytes).
 * A page the log went on in only after the image was taken (free then)
 * is clear: its segment comes later in the walk. */
bool pm_txit_clear(const struct pm_txit *it, uint64_t off, uint64_t len)
{
    if (it->oom || overlaps(off, len, it->log_off, it->log_size))
        return false;
    if (it->segmap == NULL || len == 0 || off + len <= it->data_off)
        return true;
    /* a bit per page: a forged log's JUMPs cost the walk linear time, not
     * a scan of every segment per entry (a review: a JUMP cycle made a
     * check of 8 MiB take 23 s) */
    uint64_t first = off < it->data_off ? 0 : (off - it->data_off) >> it->page_shift;
    uint64_t last = (off + len - 1 - it->data_off) >> it->page_shift;
    for (uint64_t p = first; p <= last && p < it->n_pages; p++)
        if ((it->segmap[p >> 6] >> (p & 63)) & 1)
            return false;
    return true;
}

void pm_txit_done(struct pm_txit *it)
{
    free(it->segmap);
    it->segmap = NULL;
}

/* The next entry of the log's transaction, following JUMPs; NULL at its
 * end.  Only reads, inside the pages, and stops on anything that does not
 * check out, so it ends on any input. */
const struct pm_txent *pm_txit_next(struct pm_rt *rt, struct pm_txit *it)
{
    while (it->budget-- > 0) {
        if (it->at > it->end || it->end - it->at < ENT || !pm_in_data(rt, it->at, ENT))
            return NULL;
        const struct pm_txent *e = (const struct pm_txent *)(rt->base + it->at);
        uint64_t kind = e->kind_len & 0xff, len = e->kind_len >> 8;
        uint64_t data = kind == PM_TXE_SNAPSHOT || kind == PM_TXE_PAGE ? round8(len) : 0;
        if (kind < PM_TXE_SNAPSHOT || kind > PM_TXE_PAGE || len > pm_data_limit(rt) ||
            data > it->end - it->at - ENT)
            return NULL;
        if (e->check != pm_txent_check(it->gen, it->key, e->kind_len, e->off,
                                       (const uint64_t *)(e + 1), data / 8))
            return NULL;
        if (kind == PM_TXE_JUMP) {
            if (it->loose ? !segment_inside(rt, e->off, len) : !segment_ok(rt, e->off, len))
                return NULL;
            if (it->track) {
                if (it->segmap == NULL &&
                    (it->segmap = calloc((it->n_pages + 63) / 64 + 1, 8)) == NULL) {
                    it->oom = true;         /* nothing is clear from here */
                    return NULL;
                }
                /* no honest log goes on in its own block or in a segment
                 * twice: a forged one that does ends here */
                if (!pm_txit_clear(it, e->off, len))
                    return NULL;
                uint64_t first = (e->off - it->data_off) >> it->page_shift;
                for (uint64_t p = first; p < first + (len >> it->page_shift) && p < it->n_pages;
                     p++)
                    it->segmap[p >> 6] |= UINT64_C(1) << (p & 63);
            }
            it->at = e->off;
            it->end = e->off + len;
            continue;
        }
        it->at += ENT + data;
        return e;
    }
    return NULL;
}

/* Inline (a GNU attribute): three in every transaction, and the test
 * hook made gcc call it out of line. */
__attribute__((always_inline)) static inline void
set_state(struct pm_rt *rt, struct pm_tx *tx, uint32_t phase, bool fence)
{
    pm_hook(PM_HOOK_TX_STATE);
    pm_store_release(&tx->log->state, (uint64_t)phase | tx->gen << 8);
    if (fence)
        pm_persist(rt, &tx->log->state, sizeof tx->log->state);
    else
        pm_flush(rt, &tx->log->state, sizeof tx->log->state);
}

/* Whether page p was in use when the automatic transaction began. */
static bool used_at_begin(const struct pm_tx *tx, uint64_t p)
{
    return p < tx->n0 && (tx->free0[p >> 6] >> (p & 63)) & 1;
}

/* n pages (a multiple of unit, at a multiple of unit) for an automatic
 * transaction's log to go on in, or PG_NONE.  It takes only pages
 * that were free when it began (or past the end then): a page freed since
 * may hold a block the rollback makes live again, and the log's own
 * writes are not snapshotted (a review found a freed block's contents
 * overwritten by PAGE entries, after an abort and after a crash alike). */
static uint64_t seg_claim(struct pm_rt *rt, struct pm_tx *tx, uint64_t n, uint64_t unit)
{
    uint64_t limit = pm_load_acquire(&rt->n_pages);
    uint64_t phase = (rt->data_off >> rt->page_shift) % unit;
    for (int pass = 0; pass < 2; pass++) {
        /* from where the last one was found, then from the start */
        uint64_t p = pass == 0 ? tx->seg_from : 0, stop = pass == 0 ? limit : tx->seg_from;
        p += (unit - (p + phase) % unit) % unit;
        while (p + n <= limit && p < stop) {
            uint64_t q = p;
            while (q < p + n && !used_at_begin(tx, q))
                q++;
            if (q == p + n) {
                if (pg_claim_at(rt, p, n)) {
                    if (!pg_back(rt, p, n)) {
                        pg_release(rt, p, n);
                        return PG_NONE;
                    }
                    tx->seg_from = p + n;
                    return p;
                }
                q = p;                  /* in use now: the next unit */
            }
            p = q + 1;
            p += (unit - (p + phase) % unit) % unit;
        }
    }
    return PG_NONE;
}

/* Room for an entry of bytes (head included) at tx->at, in a claimed
 * continuation when the current segment is full; false (errno ENOMEM) when
 * no pages are left.  The first one says the transaction is active (the
 * entry's persist fences the state word). */
static inline void log_first(struct pm_rt *rt, struct pm_tx *tx)
{
    if (!tx->written) {
        set_state(rt, tx, PM_TX_ACTIVE | (tx->n_held ? PM_TX_PREV : 0), false);
        tx->written = true;
    }
}

__attribute__((noinline)) static bool log_room_slow(struct pm_rt *rt, struct pm_tx *tx,
                                                    uint64_t bytes)
{
    log_first(rt, tx);
    if ((uint64_t)(tx->end - tx->at) < bytes) {
        uint64_t want = bytes + ENT > SEG_BYTES ? bytes + ENT : SEG_BYTES;
        /* whole memory pages, so that protecting around them (automatic
         * transactions) protects nothing else */
        uint64_t unit = page_of_os() > rt->page_size ? page_of_os() >> rt->page_shift : 1;
        uint64_t n = (want + rt->page_size - 1) >> rt->page_shift;
        n = (n + unit - 1) / unit * unit;
        uint64_t first;
        if (!tx->automatic) {
            /* pages as a large block's: the thread's kept runs, free pages,
             * then the runs other threads keep and this one's spare
             * superblocks, growth, a scavenge (G5b: a segment fails only
             * where a malloc of its size would).  The caller is outside
             * any operation.  An automatic transaction's log (below) may
             * be claimed inside its fault handler, which a write of the
             * allocator's own may raise inside an operation, and takes
             * only pages free when it began: no scavenge there. */
            uint64_t got;
            pm_op_enter(rt, tx->rec);
            first = lg_reserve(rt, tx->rec, n << rt->page_shift,
                               unit > 1 ? unit << rt->page_shift : 0, &got);
            pm_op_end(tx->rec);
        } else {
            first = seg_claim(rt, tx, n, unit);
            if (first == PG_NONE && pg_cache_reclaim(rt))
                first = seg_claim(rt, tx, n, unit);
            for (int grown = 0; first == PG_NONE && grown < 4; grown++) {
                /* inside a fault, the header's page may be one the
                 * transaction has not written: growth writes only its
                 * page count there, which a rollback does not restore, so
                 * it is made writable for the growth alone (a later write
                 * by the transaction is caught again, and snapshotted
                 * once more) */
                (void)os_protect(rt->base, page_of_os(), true);
                int r = pm_space_grow(rt, pm_load_acquire(&rt->n_pages), n);
                (void)os_protect(rt->base, page_of_os(), false);
                if (r != 0)
                    break;
                first = seg_claim(rt, tx, n, unit);
            }
        }
        /* an automatic transaction made room for its list of segments when
         * it began: no allocation inside a fault */
        if (first == PG_NONE || (tx->automatic && tx->segs.n == tx->segs.cap) ||
            !vec_push(&tx->segs, first, n, NULL)) {
            if (first != PG_NONE)
                pg_release(rt, first, n);
            errno = ENOMEM;
            return false;
        }
        uint64_t seg = rt->data_off + (first << rt->page_shift);
        pm_vg_internal(rt->base + seg, n << rt->page_shift);
        pm_vg_defined(rt->base + seg, n << rt->page_shift);    /* as log_init */
        if (tx->automatic)
            (void)os_protect(rt->base + seg, n << rt->page_shift, true);
        struct pm_txent *j = (struct pm_txent *)(void *)tx->at;
        entry_fill(j, tx->gen, tx->key, PM_TXE_JUMP, seg, n << rt->page_shift, NULL);
        pm_flush(rt, j, ENT);         /* fenced with the entry that follows */
        tx->at = rt->base + seg;
        tx->end = tx->at + (n << rt->page_shift) - ENT;
    }
    return true;
}

/* log_room_slow, after the commonest case: room left in the segment (the
 * state word written first if this is the first entry: once in every
 * transaction, so inline too). */
static inline bool log_room(struct pm_rt *rt, struct pm_tx *tx, uint64_t bytes)
{
    if (PM_LIKELY((uint64_t)(tx->end - tx->at) >= bytes)) {
        log_first(rt, tx);
        return true;
    }
    return log_room_slow(rt, tx, bytes);
}

/* The next entry of bytes; NULL (errno ENOMEM) as log_room. */
static struct pm_txent *log_entry(struct pm_rt *rt, struct pm_tx *tx, uint64_t bytes)
{
    if (!log_room(rt, tx, bytes))
        return NULL;
    struct pm_txent *e = (struct pm_txent *)(void *)tx->at;
    tx->at += bytes;
    tx->entries++;
    return e;
}

/* ---- the calling thread's transaction ---- */

/* tx_open's answer when there is no open transaction to give. */
__attribute__((noinline)) static struct pm_tx *tx_open_fail(struct pm_trec *rec,
                                                             const char *what, int *err)
{
    if (rec == NULL) {
        *err = -errno;
        pm_err(*err, "%s: %s", what, persistent_strerror(*err));
        return NULL;
    }
    *err = -EINVAL;
    pm_err(*err, "%s: no transaction is open in this thread", what);
    errno = EINVAL;
    return NULL;
}

/* The calling thread's open transaction; NULL with *err (-EINVAL when
 * none is open, -EROFS, ...) and the message set. */
static inline struct pm_tx *tx_open(allocator_space_t *space, struct pm_rt **rtp,
                                    struct pm_trec **recp, const char *what, int *err)
{
    struct pm_trec *rec = pm_thread_rec(space, rtp);
    *recp = rec;
    if (PM_UNLIKELY(rec == NULL || rec->tx == NULL || rec->tx->depth == 0))
        return tx_open_fail(rec, what, err);
    return rec->tx;
}

/* Fresh salts for both streams of the log (not 0: the key would be the
 * third format's). */
static void salts_draw(struct pm_txlog *lg)
{
    uint64_t r[2];
    os_random(r, sizeof r);
    pm_store_relaxed(&lg->salt[0], r[0] | 1);
    pm_store_relaxed(&lg->salt[1], r[1] | 1);
}

/* A new log's head, written back before anything names it. */
static void log_init(struct pm_rt *rt, void *blk)
{
    struct pm_txlog *lg = blk;
    /* defined: the log is read past its last entry, whatever the file
     * holds there, and each entry checked (pm_txit_next) */
    pm_vg_internal(lg, LOG_BYTES);
    pm_vg_defined(lg, LOG_BYTES);
    memset(lg, 0, sizeof *lg + ENT);
    lg->magic = PM_TXLOG_MAGIC;
    lg->size = LOG_BYTES;
    salts_draw(lg);
    pm_store_relaxed(&lg->state, (uint64_t)PM_TX_IDLE);
    pm_persist(rt, lg, sizeof *lg + ENT);
}

/* The thread's log: its lane's, or made on its first transaction through
 * the lane (publish.c pub_txlog_create: a crash in between leaves a record
 * recovery rolls back, never a block nobody names). */
static int log_attach(struct pm_rt *rt, struct pm_trec *rec, struct pm_tx *tx)
{
    if (tx->log != NULL)
        return 0;
    struct pm_lane *l = pub_lane(rt, rec);
    if (l == NULL)
        return -ENOMEM;
    uint64_t off = pm_load_acquire(&l->tx_off);
    if (off != 0) {
        tx->log = (struct pm_txlog *)(rt->base + off);
        if (tx->log->magic != PM_TXLOG_MAGIC &&
            (pm_load_acquire(&tx->log->state) & PM_TX_PHASE) == PM_TX_IDLE) {
            /* an earlier format's, idle since recovery (no entry is read
             * again): two streams from here on (the first format's size
             * allows them: pm_txlog_head_ok), and checks keyed by the log
             * (the second's had the generation alone) and salts (the
             * third's had none: its slots were reserved words), written
             * back before the magic that says they count.  Inside an
             * operation, as every write of the library to the space:
             * another thread's automatic transaction took it for the
             * program's plain write, and its abort stopped the process (a
             * review) */
            pm_op_enter(rt, rec);
            salts_draw(tx->log);
            pm_persist(rt, tx->log->salt, sizeof tx->log->salt);    /* before the magic */
            tx->log->magic = PM_TXLOG_MAGIC;
            pm_persist(rt, &tx->log->magic, sizeof tx->log->magic);
            pm_op_end(rec);
        }
        return 0;
    }
    /* memory-page aligned: an automatic transaction leaves it writable */
    struct pm_txlog *lg = pub_txlog_create(rt, rec, l, LOG_BYTES, page_of_os(), log_init);
    if (lg == NULL)
        return -ENOMEM;
    tx->log = lg;
    return 0;
}

/* ---- the blocks a transaction marked, by offset ----
 *
 * An open-addressing table (linear probing, offsets are never 0, no
 * removal but all at once), so that a free of one of the transaction's
 * own blocks, or a second free of one, is told apart in constant time
 * however many blocks the transaction holds. */
#define OSET_MARKED 1u                   /* marked by this transaction */
#define OSET_FREED  2u                   /* and freed by it */
#define OSET_ALLOC  4u                   /* allocated by it */
#define OSET_HELD   8u                   /* snapshotted by it, held (snapmark) */
#define OSET_MIN    512u                 /* slots: a page of keys */

static void oset_free(struct pm_tx_oset *o)
{
    os_vol_free(o->key, o->cap * sizeof *o->key);
    os_vol_free(o->flags, o->cap);
}

static uint64_t oset_hash(uint64_t off, size_t cap)
{
    return ((off >> 4) * UINT64_C(0x9e3779b97f4a7c15)) >> 17 & (cap - 1);
}

/* The flags of off, 0 if absent; *slot its slot or where it would go. */
static uint32_t oset_get(const struct pm_tx_oset *o, uint64_t off, size_t *slot)
{
    *slot = 0;
    if (o->cap == 0)
        return 0;
    size_t i = oset_hash(off, o->cap);
    while (o->key[i] != 0 && o->key[i] != off)
        i = (i + 1) & (o->cap - 1);
    *slot = i;
    return o->key[i] == off ? o->flags[i] : 0;
}

/* Room for want keys in all (so that what follows cannot fail). */
static bool oset_reserve(struct pm_tx_oset *o, size_t want)
{
    if (want * 2 <= o->cap)
        return true;
    size_t cap = o->cap ? o->cap : OSET_MIN;
    while (cap < want * 2) {
        if (cap > SIZE_MAX / 2 / sizeof *o->key) {
            errno = ENOMEM;
            return false;
        }
        cap *= 2;
    }
    size_t kb = cap * sizeof *o->key, fb = cap;
    struct pm_tx_oset n = {vol_grow(NULL, 0, &kb), vol_grow(NULL, 0, &fb), cap, o->n};
    if (n.key == NULL || n.flags == NULL) {
        os_vol_free(n.key, kb);
        os_vol_free(n.flags, fb);
        return false;
    }
    for (size_t i = 0; i < o->cap; i++)
        if (o->key[i] != 0) {
            size_t j;
            (void)oset_get(&n, o->key[i], &j);
            n.key[j] = o->key[i];
            n.flags[j] = o->flags[i];
        }
    oset_free(o);
    *o = n;
    return true;
}

/* Sets flags on off (room made with oset_reserve if it may be new). */
static void oset_set(struct pm_tx_oset *o, uint64_t off, uint32_t flags)
{
    size_t i;
    if (oset_get(o, off, &i) == 0) {
        o->key[i] = off;
        o->flags[i] = 0;
        o->n++;
    }
    o->flags[i] |= (uint8_t)flags;
}

/* Empty again; a table much larger than its last use is let go. */
static void oset_clear(struct pm_tx_oset *o)
{
    if (o->n == 0)
        return;
    if (o->cap > 8 * OSET_MIN && o->n * 8 < o->cap) {
        oset_free(o);
        *o = (struct pm_tx_oset){NULL, NULL, 0, 0};
        return;
    }
    memset(o->key, 0, o->cap * sizeof *o->key);
    o->n = 0;
}

static bool in_vec(const struct vec *v, uint64_t off)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->v[i].off == off)
            return true;
    return false;
}

/* A transaction that marks few blocks looks through its lists; the table
 * is built when it marks more (so a small one pays nothing for it). */
#define OSET_FROM 32u

/* What this transaction did with the block at off: its marks (OSET_MARKED,
 * OSET_FREED). */
static uint32_t tx_flags(const struct pm_tx *tx, uint64_t off)
{
    size_t slot;
    if (tx->indexed)
        return oset_get(&tx->mset, off, &slot) & (OSET_MARKED | OSET_FREED);
    return in_vec(&tx->frees, off)   ? OSET_MARKED | OSET_FREED
           : in_vec(&tx->marks, off) ? OSET_MARKED
                                     : 0;
}

/* Whether this transaction allocated the block that starts at off: every
 * one of them, however many (a snapshot inside one must never be logged:
 * its rollback frees the block before the log is retired, and a log
 * naming a range in no live block is damage to verify.c). */
static bool tx_has(const struct pm_tx *tx, uint64_t off, uint32_t flag, const struct vec *v)
{
    size_t slot;
    if (tx->indexed)
        return oset_get(&tx->mset, off, &slot) & flag;
    return in_vec(v, off);
}
#define tx_allocated(tx, off) tx_has((tx), (off), OSET_ALLOC, &(tx)->allocs)
/* Whether this transaction holds the block at off for its snapshots. */
#define tx_held(tx, off) tx_has((tx), (off), OSET_HELD, &(tx)->holds)

/* A transaction's free of a block and another's snapshot of it must not
 * both go on: the free would leave the snapshot in a free block.  Each
 * sets its own bit first (the free its mark, the snapshot its hold), then
 * looks at the other's, all sequentially consistent (pm_mark, pm_hold):
 * of two racing, at least one sees the other and gives up.  The run's
 * mark word is looked at first (a hold flags it, a mark counts in it). */
static bool sc_bit(pm_atomic_u64 *bits, struct pm_rt *rt, uint64_t off)
{
    uint64_t g = (off - rt->data_off) >> 4;
    return (pm_load_seq_cst(&bits[g >> 6]) >> (g & 63)) & 1;
}

/* Another transaction frees the block at off or made it (run: its first
 * page). */
static bool tx_marked_by_other(struct pm_rt *rt, const struct pm_tx *tx, uint32_t run,
                               uint64_t off)
{
    return (pm_load_seq_cst(&rt->ctl[run].marks) & ~PM_MARKS_HOLD) != 0 &&
           sc_bit(rt->txmark, rt, off) && !(tx_flags(tx, off) & OSET_MARKED);
}

/* Another transaction holds the block at off for a snapshot: more holds
 * than this one's. */
static bool tx_held_by_other(struct pm_rt *rt, const struct pm_tx *tx, uint32_t run,
                             uint64_t off)
{
    if ((pm_load_seq_cst(&rt->ctl[run].marks) & PM_MARKS_HOLD) == 0)
        return false;
    uint64_t n = pm_snap_holders(rt, off);
    return n > 1 || (n == 1 && !tx_held(tx, off));
}

/* The holds let go: by their bits alone while no block has a count (the
 * commonest case, a loop with no call), else each through pm_unhold. */
__attribute__((noinline)) static void tx_unhold_counted(struct pm_rt *rt, struct vec *holds)
{
    for (size_t i = 0; i < holds->n; i++)
        pm_unhold(rt, holds->v[i].off);
}

/* Room to note one more block (so that tx_note cannot fail): the table
 * built when the lists grow past OSET_FROM.  tx_note_room below first. */
__attribute__((noinline)) static bool tx_note_room_slow(struct pm_tx *tx)
{
    if (tx->indexed)
        return oset_reserve(&tx->mset, tx->mset.n + 1);
    size_t n = tx->marks.n + tx->allocs.n + tx->holds.n;
    if (!oset_reserve(&tx->mset, n + 1))
        return false;
    for (size_t i = 0; i < tx->marks.n; i++)
        oset_set(&tx->mset, tx->marks.v[i].off, OSET_MARKED);
    for (size_t i = 0; i < tx->frees.n; i++)
        oset_set(&tx->mset, tx->frees.v[i].off, OSET_FREED);
    for (size_t i = 0; i < tx->allocs.n; i++)
        oset_set(&tx->mset, tx->allocs.v[i].off, OSET_ALLOC);
    for (size_t i = 0; i < tx->holds.n; i++)
        oset_set(&tx->mset, tx->holds.v[i].off, OSET_HELD);
    tx->indexed = true;
    return true;
}

/* tx_note_room_slow after the common case: no table, and few blocks. */
static inline bool tx_note_room(struct pm_tx *tx)
{
    return (!tx->indexed && tx->marks.n + tx->allocs.n + tx->holds.n + 1 < OSET_FROM) ||
           tx_note_room_slow(tx);
}

/* The block at off is marked by this transaction (and freed by it). */
static void tx_note(struct pm_tx *tx, uint64_t off, uint32_t flags)
{
    if (tx->indexed)
        oset_set(&tx->mset, off, flags);
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Room for one more call of persistent_tx_add, _alloc or _free, made
 * before it changes anything (so that what follows cannot fail): each
 * call adds at most one range to each list, one location to pf or to held
 * and floc, and two blocks to the count past which the blocks are
 * indexed.  How many more calls the lists have room for is counted in
 * tx->roomy, so that those calls look at nothing else (lists only grow,
 * and empty at a transaction's end); an indexed transaction looks every
 * time (the table's room).  Until the index is built the count bounds
 * roomy (at most 15) and every list but the snapshots' has at most 31
 * entries, less than its first page; the snapshots, which the count
 * leaves out, can outgrow theirs. */
__attribute__((noinline)) static bool tx_room_slow(struct pm_tx *tx)
{
    if (!vec_room(&tx->snaps) || !vec_room(&tx->holds) || !vec_room(&tx->allocs) ||
        !vec_room(&tx->marks) || !vec_room(&tx->frees) || !tx_note_room(tx) ||
        !pf_room(&tx->pf, &tx->pf_cap, tx->allocs.n + 1) ||
        !pf_room(&tx->held, &tx->held_cap, tx->frees.n + 1) ||
        !pf_room(&tx->floc, &tx->floc_cap, tx->frees.n + 1))
        return false;
    const struct vec *v[] = {&tx->snaps, &tx->holds, &tx->allocs, &tx->marks, &tx->frees};
    size_t c = min_size(tx->pf_cap, min_size(tx->held_cap, tx->floc_cap));
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        c = min_size(c, v[i]->cap);
    tx->room_empty = (uint32_t)min_size(c, (OSET_FROM - 1) / 2);
    size_t r = 0;
    if (!tx->indexed) {
        /* tx_note_room held: the count plus one is below OSET_FROM */
        r = (OSET_FROM - 1 - (tx->marks.n + tx->allocs.n + tx->holds.n)) / 2;
        for (size_t i = 0; i < sizeof v / sizeof *v; i++)
            r = min_size(r, v[i]->cap - v[i]->n);
        r = min_size(r, tx->pf_cap - tx->allocs.n);
        r = min_size(r, min_size(tx->held_cap, tx->floc_cap) - tx->frees.n);
    }
    tx->roomy = r > 0 ? (uint32_t)(r - 1) : 0;     /* this call takes one */
    return true;
}

/* A transaction's end: every list tx_room looks at is empty (tx_unmark,
 * which comes first, emptied marks and holds and dropped the index;
 * tx_reset the others), so the next one has room for as many calls as
 * the smallest list holds, or as the count allows before the index is
 * built. */
static void tx_room_reset(struct pm_tx *tx)
{
    tx->roomy = (tx->marks.n | tx->holds.n) == 0 && !tx->indexed ? tx->room_empty : 0;
}

static inline bool tx_room(struct pm_tx *tx)
{
    if (PM_LIKELY(tx->roomy != 0)) {
        tx->roomy--;
        return true;
    }
    return tx_room_slow(tx);
}

/* Its blocks are the program's again: after the frees that end it (the
 * blocks are not live, so no other free takes them) and before they can
 * be reused, so that a block handed to someone else is never unmarked
 * late. */
static void tx_unmark(struct pm_rt *rt, struct pm_tx *tx)
{
    for (size_t i = 0; i < tx->marks.n; i++)
        pm_unmark_at(rt, rt->txmark, tx->marks.v[i].off, (uint32_t)tx->marks.v[i].len);
    tx->marks.n = 0;
    if (tx->holds.n != 0) {
        if (PM_UNLIKELY(pm_load_seq_cst(&rt->n_cohold) != 0))
            tx_unhold_counted(rt, &tx->holds);
        else
            for (size_t i = 0; i < tx->holds.n; i++)
                pm_unhold_bit(rt, tx->holds.v[i].off);
    }
    tx->holds.n = 0;
    if (tx->indexed) {
        oset_clear(&tx->mset);
        tx->indexed = false;
    }
}

static void segs_release(struct pm_rt *rt, struct vec *segs)
{
    for (size_t i = 0; i < segs->n; i++)
        pg_release(rt, segs->v[i].off, segs->v[i].len);
    segs->n = 0;
}

/* The transaction's depth; whether it is 0 where other threads look
 * (tx_begin_auto). */
static void depth_set(struct pm_tx *tx, uint32_t d)
{
    tx->depth = d;
    pm_store_release(&tx->rec->tx_open, d != 0 ? 1u : 0u);
}

/* The end of a transaction, either way (its marks dealt with). */
static void tx_reset(struct pm_rt *rt, struct pm_tx *tx)
{
    segs_release(rt, &tx->segs);
    tx->snaps.n = tx->allocs.n = tx->frees.n = 0;
    tx_room_reset(tx);
    tx->entries = 0;
    tx->written = false;
    depth_set(tx, 0);
}

/* The next generation, in its stream; the state word is written with
 * the first entry. */
static void tx_start(struct pm_rt *rt, struct pm_tx *tx)
{
    /* modulo the 56 bits the state word holds, as recovery reads it (the
     * generation after the last was written as 0 and its entries checked
     * with 2^56: none passed, and a transaction killed open was not rolled
     * back; a helper's hunt, 2026-12-06) */
    tx->gen = ((pm_load_acquire(&tx->log->state) >> 8) + 1) & PM_TX_GEN_MASK;
    /* the stream's salt as the file holds it: drawn at this open, or when
     * the log was made (pm_tx_salt_logs) */
    tx->key = pm_txlog_key(tx->log, (uint64_t)((char *)tx->log - rt->base), tx->gen);
    uint64_t start, end;
    pm_txlog_stream(tx->log, (uint64_t)((char *)tx->log - rt->base), tx->gen, &start, &end);
    tx->at = rt->base + start;
    tx->end = rt->base + end - ENT;
    tx->entries = 0;
    tx->written = false;
}

/* rec's transaction structure, made (zeroed) at its first begin; NULL
 * when there is no memory. */
static struct pm_tx *tx_of(struct pm_trec *rec)
{
    if (rec->tx == NULL) {
        size_t bytes = sizeof *rec->tx;
        rec->tx = vol_grow(NULL, 0, &bytes);
    }
    return rec->tx;
}

int persistent_tx_begin(allocator_space_t *space)
{
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (rec == NULL)
        return pm_err(-errno, "tx_begin: %s", persistent_strerror(-errno));
    if (tx_of(rec) == NULL)
        return pm_err(-ENOMEM, "tx_begin: out of memory");
    struct pm_tx *tx = rec->tx;
    tx->rec = rec;
    if (tx->depth > 0) {
        tx->depth++;
        return 0;
    }
    int r = log_attach(rt, rec, tx);
    if (r < 0)
        return pm_err(r, "tx_begin: no room for the transaction log");
    /* Inside an operation: another thread's automatic transaction on the
     * space makes this begin wait for its end (pm_auto_gate), since every
     * call of this transaction writes its log; and a begin_auto that comes
     * later sees either the busy flag or the depth (it looks at both after
     * its membarrier) and refuses. */
    pm_op_enter(rt, rec);
    tx_start(rt, tx);
    tx->automatic = false;
    depth_set(tx, 1);
    pm_op_end(rec);
    return 0;
}

int persistent_tx_depth(allocator_space_t *space)
{
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL || !rt->can_alloc)
        return 0;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    return rec != NULL && rec->tx != NULL ? (int)rec->tx->depth : 0;
}

/* The live block that holds [off, off + len): its start, size and run
 * (the first page, which its marks are counted at). */
static bool block_holding(struct pm_rt *rt, uint64_t off, uint64_t len, uint64_t *start,
                          uint64_t *size, uint32_t *run)
{
    if (len == 0 || !pm_in_data(rt, off, len))
        return false;
    uint64_t page = (off - rt->data_off) >> rt->page_shift;
    uint32_t f1 = pm_pagemap_first1(pm_load_acquire(&rt->pagemap[page]));
    if (f1 != 0) {
        const struct pm_sb_header *h = sb_header(rt, f1 - 1);
        uint64_t sb = rt->data_off + ((uint64_t)(f1 - 1) << rt->page_shift);
        uint64_t x = off - sb;
        if (x < h->data_start || h->block_size == 0 || h->cls >= rt->n_small)
            return false;
        /* x / block_size without a division (pm_class_recip); the class's
         * size is the header's (checked when it was carved or opened) */
        uint64_t idx = ((x - h->data_start) * rt->cls[h->cls].recip) >> 40;
        if (idx >= h->n_blocks)
            return false;
        uint64_t bit = UINT64_C(1) << (idx & 63);
        if (!(pm_load_acquire(&h->bits[idx >> 6]) & bit) ||
            (pm_load_acquire(&h->bits[h->n_words + (idx >> 6)]) & bit))
            return false;
        *start = sb + h->data_start + idx * h->block_size;
        *size = h->block_size;
        *run = f1 - 1;
    } else {
        uint64_t s = pg_prev_set(rt->start_bits, page);
        if (s == PG_NONE || pg_bit(rt->kind_bits, s))
            return false;
        uint64_t e = pg_next_set(rt->end_bits, s, pm_load_acquire(&rt->n_pages));
        if (e == PG_NONE || e < page)
            return false;
        *start = rt->data_off + (s << rt->page_shift);
        *size = (e - s + 1) << rt->page_shift;
        *run = (uint32_t)s;
    }
    /* the library's own blocks (a log: a snapshot there would be put back
     * over the log itself) are no block of the program's */
    if (PM_UNLIKELY(pm_load_relaxed(&rt->ctl[*run].marks) != 0) && pm_own_block(rt, *start))
        return false;
    return off + len <= *start + *size;
}

/* Whether one of the newest COVER_LOOK snapshots in v holds [off, off +
 * len).  Only the newest: a range snapshotted twice costs log room and
 * nothing else (restores go newest first, so the oldest bytes land last),
 * and a transaction of n snapshots must not take n * n / 2 comparisons.
 * (Blocks the transaction made are looked up exactly: tx_allocated.) */
#define COVER_LOOK 64u
static bool covered(const struct vec *v, uint64_t off, uint64_t len)
{
    for (size_t i = v->n > COVER_LOOK ? v->n - COVER_LOOK : 0; i < v->n; i++)
        if (off >= v->v[i].off && off + len <= v->v[i].off + v->v[i].len)
            return true;
    return false;
}

int persistent_tx_add(allocator_space_t *space, void *ptr, size_t len)
{
    struct pm_rt *rt;
    struct pm_trec *rec;
    int err;
    struct pm_tx *tx = tx_open(space, &rt, &rec, "tx_add", &err);
    if (tx == NULL)
        return err;
    if (len == 0 || tx->automatic)
        return 0;                           /* automatic: pages are caught */
    uintptr_t p = (uintptr_t)ptr, b = (uintptr_t)rt->base;
    uint64_t off = p - b, start, size;
    uint32_t run;
    if (p < b || p - b >= rt->reserve_size || !block_holding(rt, off, len, &start, &size, &run))
        return pm_err(-EINVAL, "tx_add: [%p, +%zu) is not inside a live block of the space",
                      ptr, len);
    /* already snapshotted (lately), or in a block this transaction made */
    if (covered(&tx->snaps, off, len) || tx_allocated(tx, start))
        return 0;
    if (!tx_room(tx))
        return pm_err(-ENOMEM, "tx_add: out of memory");
    /* the block is held until the end: a plain free or resize of it would
     * leave the snapshot to be restored where the block no longer is (held
     * by every transaction that snapshotted it, each counted: pm_hold_at) */
    bool own = tx_held(tx, start), hold = !own;
    if (hold && !pm_hold_at(rt, start, run))
        return pm_err(-ENOMEM, "tx_add: the block at %p is held by another open "
                      "transaction, and the table of blocks held by more than one "
                      "has no room for it now",
                      (void *)(rt->base + start));
    if (!own && tx_marked_by_other(rt, tx, run, start)) {
        /* another transaction frees it, or made it (an abort frees it):
         * its end would leave this snapshot in a free block */
        if (hold)
            pm_unhold(rt, start);
        pm_misuse(rt, PERSISTENT_E_TX_BLOCK, ptr, "persistent_tx_add");
        return pm_err(-EINVAL, "tx_add: %s", persistent_strerror(PERSISTENT_E_TX_BLOCK));
    }
    struct pm_txent *e = log_entry(rt, tx, ENT + round8(len));
    if (e == NULL) {
        if (hold)
            pm_unhold(rt, start);
        return pm_err(-ENOMEM, "tx_add: no room for the transaction log");
    }
    if (hold) {
        (void)vec_push(&tx->holds, start, 0, NULL);     /* room made above */
        tx_note(tx, start, OSET_HELD);
    }
    entry_fill(e, tx->gen, tx->key, PM_TXE_SNAPSHOT, off, len, ptr);
    pm_persist(rt, e, ENT + round8(len));   /* before the caller's change */
    (void)vec_push(&tx->snaps, off, len, e);   /* room made above */
    pm_compiler_fence();
    return 0;
}

void *persistent_tx_alloc(allocator_space_t *space, size_t size)
{
    struct pm_rt *rt;
    struct pm_trec *rec;
    int err;
    struct pm_tx *tx = tx_open(space, &rt, &rec, "tx_alloc", &err);
    if (tx == NULL) {
        errno = -err;
        return NULL;
    }
    if (size == 0) {
        errno = EINVAL;
        return NULL;
    }
    if (tx->automatic) {                    /* its pages are caught */
        void *p = pm_alloc(rt, rec, size, 16);
        pm_vg_user(rt, p, 0, false);
        return p;
    }
    if (!tx_room(tx)) {
        /* nothing fails after the block is taken */
        errno = ENOMEM;
        return NULL;
    }
    /* the entry's room too, before the block: one reserved and then given
     * up would be lost to the thread's cache until its superblock's free
     * map is rebuilt */
    if (!log_room(rt, tx, ENT))
        return NULL;
    pm_op_enter(rt, rec);
    if (pm_load_relaxed(&rec->revokes) != rec->seen_revokes)
        sb_owner_sync(rt, rec);
    struct pm_resv rv;
    uint32_t run;                           /* where its mark counts */
    struct pm_tcache *t = size - 1 < PM_MAX_SMALL ? &rec->cls[pm_size_class(size)] : NULL;
    uint64_t m;
    if (PM_LIKELY(t != NULL && (m = t->mask) != 0 &&
                  pm_load_relaxed(&rec->revokes) == rec->seen_revokes)) {
        /* pub_reserve's commonest case: the next block of the class's
         * current word (a class past the space's last has mask 0) */
        uint32_t i = pm_ctz64(m);
        t->mask = m & (m - 1);
        rv.blk = t->wbase + (size_t)i * t->bsize;
        rv.usable = t->bsize;
        rv.large = false;
        rv.aword = t->aword;
        rv.bit = UINT64_C(1) << i;
        run = t->sb;
    } else {
        if (pub_reserve(rt, rec, size, &rv) == NULL) {
            pm_op_end(rec);
            errno = ENOMEM;
            return NULL;
        }
        run = rv.large ? (uint32_t)rv.first
                       : pm_run_first(rt, (uint64_t)((char *)rv.blk - rt->base));
    }
    struct pm_txent *e = log_entry(rt, tx, ENT);     /* room made above */
    uint64_t off = (uint64_t)((char *)rv.blk - rt->base);
    entry_fill(e, tx->gen, tx->key, PM_TXE_ALLOC, off, size, NULL);
    pm_persist(rt, e, ENT);                 /* before the block is live */
    uint64_t usable = rv.usable;
    if (rv.large) {
        lg_commit(rt, rv.first, rv.n);
    } else {
        pm_store_relaxed(rv.aword, pm_load_relaxed(rv.aword) | rv.bit);
        pm_flush(rt, rv.aword, sizeof *rv.aword);   /* the commit fences it */
    }
    pm_op_end(rec);
    /* a fresh block: nobody's mark, and not in this transaction's list */
    bool marked = pm_mark_at(rt, rt->txmark, off, run);
    if (marked)
        (void)vec_push(&tx->marks, off, run, NULL);   /* room made above */
    tx_note(tx, off, OSET_ALLOC | (marked ? OSET_MARKED : 0));
    (void)vec_push(&tx->allocs, off, usable, NULL);
    pm_vg_user(rt, rv.blk, usable, false);
    return rv.blk;
}

void *persistent_tx_zalloc(allocator_space_t *space, size_t size)
{
    void *p = persistent_tx_alloc(space, size);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}

/* pm_marked for a block known to be in the pages. */
static inline bool mark_bit(struct pm_rt *rt, pm_atomic_u64 *bits, uint64_t off)
{
    uint64_t g = (off - rt->data_off) >> 4;
    return bits != NULL && (pm_load_acquire(&bits[g >> 6]) >> (g & 63)) & 1;
}

/* Whether ptr is a live block of the space, located into *loc: a small
 * block through its page map entry (as free's fast path finds it), else
 * as the publishing calls locate theirs. */
static inline bool block_live_at(struct pm_rt *rt, const struct pm_trec *rec, const void *ptr,
                                 struct pm_pubfree *loc)
{
    uint32_t c, n, run;
    if (PM_LIKELY(pm_locate_small(rt, rec, ptr, &loc->s, &loc->h, &c, &loc->idx, &n))) {
        loc->large = loc->local = false;
        loc->first = loc->last = 0;
        uint64_t bit = UINT64_C(1) << (loc->idx & 63);
        uint32_t w = loc->idx >> 6;
        if (!(pm_load_relaxed(&loc->h->bits[w]) & bit) ||
            (pm_load_relaxed(&loc->h->bits[((n + 63) >> 6) + w]) & bit))
            return false;
        run = loc->s;
    } else if (pub_free_locate(rt, ptr, loc) == 0 && pub_free_live(loc)) {
        run = loc->large ? (uint32_t)loc->first : loc->s;
    } else {
        return false;
    }
    /* the library's own blocks are marked, and counted in their run */
    return pm_load_relaxed(&rt->ctl[run].marks) == 0 ||
           !pm_own_block(rt, (uint64_t)((const char *)ptr - rt->base));
}

int persistent_tx_free(allocator_space_t *space, void *ptr)
{
    struct pm_rt *rt;
    struct pm_trec *rec;
    int err;
    struct pm_tx *tx = tx_open(space, &rt, &rec, "tx_free", &err);
    if (tx == NULL)
        return err;
    if (ptr == NULL)
        return 0;
    uintptr_t p = (uintptr_t)ptr, b = (uintptr_t)rt->base;
    struct pm_pubfree loc;
    if (p < b || p - b >= rt->reserve_size || !block_live_at(rt, rec, ptr, &loc)) {
        pm_misuse(rt, PERSISTENT_E_BAD_POINTER, ptr, "persistent_tx_free");
        return pm_err(-EINVAL, "tx_free: %p is not a live block", ptr);
    }
    uint64_t off = p - b;
    if (tx->automatic) {                    /* at once: its pages are caught */
        pm_vg_unuser(rt, ptr);
        int r = pm_free_block(rt, rec, ptr);    /* a refusal is reported */
        return r ? pm_err(-EINVAL, "tx_free: %s", persistent_strerror(r)) : 0;
    }
    /* a run none of whose blocks is marked holds none of this
     * transaction's either (they all are): no list to look through */
    uint32_t run = loc.large ? (uint32_t)loc.first : loc.s;
    int held = 0;
    bool mine = false;
    if (pm_load_relaxed(&rt->ctl[run].marks) != 0) {
        if (mark_bit(rt, rt->rootmark, off)) {
            held = PERSISTENT_E_ROOT_BLOCK;
        } else if (mark_bit(rt, rt->txmark, off)) {
            uint32_t f = tx_flags(tx, off);
            held = f & OSET_FREED    ? PERSISTENT_E_DOUBLE_FREE
                   : f & OSET_MARKED ? (mine = true, 0)
                                     : PERSISTENT_E_TX_BLOCK;
        }
    }
    if (held != 0) {
        pm_misuse(rt, held, ptr, "persistent_tx_free");
        return pm_err(-EINVAL, "tx_free: %s", persistent_strerror(held));
    }
    if (!tx_room(tx))
        return pm_err(-ENOMEM, "tx_free: out of memory");
    /* held against other frees until the free is done */
    if (!mine && !pm_mark_at(rt, rt->txmark, off, run)) {   /* another transaction's, just now */
        pm_misuse(rt, PERSISTENT_E_TX_BLOCK, ptr, "persistent_tx_free");
        return pm_err(-EINVAL, "tx_free: %s", persistent_strerror(PERSISTENT_E_TX_BLOCK));
    }
    /* another transaction's snapshot in it (looked at after the mark: a
     * block this one made or frees already is refused to the others') */
    if (!mine && tx_held_by_other(rt, tx, run, off)) {
        pm_unmark_at(rt, rt->txmark, off, run);
        pm_misuse(rt, PERSISTENT_E_TX_BLOCK, ptr, "persistent_tx_free");
        return pm_err(-EINVAL, "tx_free: %s", persistent_strerror(PERSISTENT_E_TX_BLOCK));
    }
    struct pm_txent *e = log_entry(rt, tx, ENT);
    if (e == NULL) {
        if (!mine)                          /* marked just now */
            pm_unmark_at(rt, rt->txmark, off, run);
        return pm_err(-ENOMEM, "tx_free: no room for the transaction log");
    }
    if (!mine)
        (void)vec_push(&tx->marks, off, run, NULL);     /* room made above */
    tx_note(tx, off, OSET_MARKED | OSET_FREED);
    entry_fill(e, tx->gen, tx->key, PM_TXE_FREE, off, 0, NULL);
    pm_flush(rt, e, ENT);                   /* the commit fences it */
    tx->floc[tx->frees.n] = loc;            /* where it is: the commit frees it there */
    (void)vec_push(&tx->frees, off, 0, NULL);
    return 0;
}

void *persistent_tx_realloc(allocator_space_t *space, void *ptr, size_t size)
{
    if (ptr == NULL)
        return persistent_tx_alloc(space, size);
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL) {
        errno = EINVAL;
        return NULL;
    }
    size_t old = pm_usable(rt, ptr);
    if (old == 0) {             /* reported as a plain realloc reports it */
        pm_misuse(rt, PERSISTENT_E_BAD_POINTER, ptr, "persistent_tx_realloc");
        errno = EINVAL;
        return NULL;
    }
    void *q = persistent_tx_alloc(space, size);
    if (q == NULL)
        return NULL;
    memcpy(q, ptr, old < size ? old : size);
    int e = persistent_tx_free(space, ptr);
    if (e != 0) {
        /* the old block's free refused (reported): q goes with the
         * transaction whether it commits or aborts */
        (void)persistent_tx_free(space, q);
        errno = -e;                         /* tx_free's codes are errnos */
        return NULL;
    }
    return q;
}

static void op_enter(struct pm_rt *rt, struct pm_trec *rec)
{
    pm_op_enter(rt, rec);
    if (pm_load_relaxed(&rec->revokes) != rec->seen_revokes)
        sb_owner_sync(rt, rec);
}

/* The frees of the last transaction that committed some may be reused:
 * the state word has moved past it.  Inside op_enter. */
static void held_finish(struct pm_rt *rt, struct pm_trec *rec, struct pm_tx *tx)
{
    for (size_t i = 0; i < tx->n_held; i++)
        pub_free_finish(rt, rec, &tx->held[i]);
    tx->n_held = 0;
    pm_store_release(&rec->tx_held, 0u);
    segs_release(rt, &tx->pend_segs);
}

/* The last commit's frees finished with no transaction open: their bits
 * durable, state IDLE, then the blocks reusable (thread exit, close, an
 * automatic transaction's begin). */
static void settle_state(struct pm_rt *rt, struct pm_tx *tx)
{
    pm_drain(rt);
    uint64_t gen = pm_load_acquire(&tx->log->state) >> 8;
    pm_store_release(&tx->log->state, (uint64_t)PM_TX_IDLE | gen << 8);
    pm_persist(rt, &tx->log->state, sizeof tx->log->state);
}

static void tx_settle(struct pm_rt *rt, struct pm_trec *rec, struct pm_tx *tx)
{
    if (tx->n_held == 0 || tx->depth > 0)
        return;
    settle_state(rt, tx);
    op_enter(rt, rec);
    held_finish(rt, rec, tx);
    pm_op_end(rec);
}

/* A malloc that found no room otherwise settles the frees its thread's
 * last commit holds (G5b: a freed block is not a full space), as the
 * thread's exit would.  Not with a transaction open: its begin (or first
 * entry) said the frees are pending, and a crash has recovery finish
 * them; nor inside a commit (written: its frees are on their way to
 * tx->held).  Another thread's held frees wait for that thread: the
 * state word that says they are pending is written by it alone. */
bool pm_tx_settle_own(struct pm_rt *rt, struct pm_trec *rec)
{
    struct pm_tx *tx = rec->tx;
    if (tx == NULL || tx->n_held == 0 || tx->depth > 0 || tx->written)
        return false;
    settle_state(rt, tx);
    held_finish(rt, rec, tx);          /* inside the caller's operation */
    return true;
}

static void auto_commit(struct pm_rt *rt, struct pm_tx *tx);

/* A commit's frees where nothing is fenced (PROCESS and SYNC durability:
 * stores reach the file in program order, and a kill keeps every one made
 * before it): done right after the commit point, the state word IDLE
 * after them, and only then the blocks reusable, all inside one operation
 * (no thief takes the thread's superblocks meanwhile).  A block of the
 * thread's own superblock is freed as its owner frees one (its allocation
 * bit, a plain store), not as another thread does (remote bit, summary and
 * n_pub: four atomic read-modify-writes, and a collection later), and
 * nothing is held for the next transaction.  A crash before IDLE leaves
 * COMMITTED, whose frees recovery finishes (clearing a bit twice is
 * harmless); after it, nothing is left to do.  PMEM durability keeps them
 * for the next commit's fence instead (docs/design.md "Order and
 * fences"). */
static void commit_frees_now(struct pm_rt *rt, struct pm_trec *rec, struct pm_tx *tx)
{
    op_enter(rt, rec);
    held_finish(rt, rec, tx);           /* none in these modes; for safety */
    for (size_t i = 0; i < tx->frees.n; i++)
        pm_vg_forget(rt, rt->base + tx->frees.v[i].off, 0);
    size_t n = 0;
    for (size_t i = 0; i < tx->frees.n; i++) {
        struct pm_pubfree *pf = &tx->held[n];
        *pf = tx->floc[i];                          /* located by tx_free */
        /* a run may have been resized in place since: where it ends now */
        if (pf->large && pub_free_locate(rt, rt->base + tx->frees.v[i].off, pf) != 0)
            continue;
        if (pub_free_prepare_at(rt, rec, pf) == 0) {
            pub_free_flush(rt, pf);
            n++;
        }
    }
    set_state(rt, tx, PM_TX_IDLE, true);
    tx_unmark(rt, tx);                  /* after the frees, before any reuse */
    for (size_t i = 0; i < n; i++)
        pub_free_finish(rt, rec, &tx->held[i]);
    pm_op_end(rec);
}

int persistent_tx_commit(allocator_space_t *space)
{
    struct pm_rt *rt;
    struct pm_trec *rec;
    int err;
    struct pm_tx *tx = tx_open(space, &rt, &rec, "tx_commit", &err);
    if (tx == NULL)
        return err;
    if (--tx->depth > 0)
        return 0;
    if (tx->automatic) {
        auto_commit(rt, tx);
        return 0;
    }
    if (!tx->written) {                     /* nothing written, nothing to do */
        tx_unmark(rt, tx);
        tx_reset(rt, tx);
        return 0;
    }
    for (size_t i = 0; i < tx->snaps.n; i++)
        pm_flush(rt, rt->base + tx->snaps.v[i].off, tx->snaps.v[i].len);
    for (size_t i = 0; i < tx->allocs.n && rt->flush != NULL; i++) {
        /* where the block ends now: a large block may have been resized
         * in place since persistent_tx_alloc (a plain realloc is not
         * refused for its mark), and the program may write all of it */
        void *b = rt->base + tx->allocs.v[i].off;
        size_t len = tx->allocs.v[i].len;
        if (len > rt->max_small && (len = lg_usable(rt, b)) == 0)
            len = tx->allocs.v[i].len;
        pm_flush(rt, b, len);
    }
    /* data, entries, allocation bits, the last commit's frees */
    pm_drain(rt);
    pm_hook(PM_HOOK_TX_COMMIT_POINT);
    set_state(rt, tx, tx->frees.n ? PM_TX_COMMITTED : PM_TX_IDLE, true);  /* the commit point */
    if (tx->frees.n && rt->durability != PM_DUR_PMEM) {
        commit_frees_now(rt, rec, tx);  /* unmarked there */
        tx_reset(rt, tx);
        return 0;
    }
    if (tx->n_held || tx->frees.n) {
        op_enter(rt, rec);
        held_finish(rt, rec, tx);
        /* this one's frees, not fenced (the next commit's first fence, or
         * an abort's, or a settle's, makes them durable before the state
         * word moves on) and out of reach until that has happened;
         * recovery finishes them from the entries kept in this stream */
        for (size_t i = 0; i < tx->frees.n; i++)
            pm_vg_forget(rt, rt->base + tx->frees.v[i].off, 0);
        for (size_t i = 0; i < tx->frees.n; i++) {
            struct pm_pubfree *pf = &tx->held[tx->n_held];
            *pf = tx->floc[i];                      /* located by tx_free */
            /* a run keeps its start but may have been resized in place
             * since (a realloc is not refused for its mark): where it
             * ends now */
            if (pf->large && pub_free_locate(rt, rt->base + tx->frees.v[i].off, pf) != 0)
                continue;
            if (pub_free_prepare_held_at(rt, rec, pf) == 0)
                pub_free_flush(rt, &tx->held[tx->n_held++]);
        }
        pm_store_release(&rec->tx_held, tx->n_held != 0 ? 1u : 0u);
        pm_op_end(rec);
        if (tx->frees.n) {
            struct vec v = tx->pend_segs;       /* empty */
            tx->pend_segs = tx->segs;
            tx->segs = v;
        }
    }
    tx_unmark(rt, tx);               /* after the frees: never late */
    tx_reset(rt, tx);
    return 0;
}

static void auto_abort(struct pm_rt *rt, struct pm_trec *rec, struct pm_tx *tx,
                       bool release);

static void tx_abort(struct pm_rt *rt, struct pm_trec *rec, struct pm_tx *tx)
{
    if (tx->automatic) {
        auto_abort(rt, rec, tx, true);
        return;
    }
    if (!tx->written) {                     /* nothing written, nothing to undo */
        tx_unmark(rt, tx);
        tx_reset(rt, tx);
        return;
    }
    for (size_t i = tx->snaps.n; i-- > 0;) {
        const struct range *r = &tx->snaps.v[i];
        memcpy(rt->base + r->off, r->ent + 1, r->len);
        pm_flush(rt, rt->base + r->off, r->len);
    }
    size_t n = 0;
    op_enter(rt, rec);
    for (size_t i = 0; i < tx->allocs.n; i++)
        pm_vg_forget(rt, rt->base + tx->allocs.v[i].off, 0);   /* as it is now */
    for (size_t i = 0; i < tx->allocs.n; i++)
        if (pub_free_prepare(rt, rec, rt->base + tx->allocs.v[i].off, &tx->pf[n]) == 0)
            pub_free_flush(rt, &tx->pf[n++]);
    tx_unmark(rt, tx);               /* its frees dropped */
    pm_drain(rt);                           /* restores, bits */
    set_state(rt, tx, PM_TX_IDLE, true);
    for (size_t i = 0; i < n; i++)          /* then reuse */
        pub_free_finish(rt, rec, &tx->pf[i]);
    held_finish(rt, rec, tx);
    pm_op_end(rec);
    tx_reset(rt, tx);
}

int persistent_tx_abort(allocator_space_t *space)
{
    struct pm_rt *rt;
    struct pm_trec *rec;
    int err;
    struct pm_tx *tx = tx_open(space, &rt, &rec, "tx_abort", &err);
    if (tx == NULL)
        return err;
    tx_abort(rt, rec, tx);
    return 0;
}

/* ---- automatic transactions ----
 *
 * For code that cannot call persistent_tx_add (a container's own code):
 * while one is open, every page of the space is read-only, and the first
 * write to each page faults; the fault handler snapshots the whole page
 * into the log (a PAGE entry, persisted) and makes it writable, and the
 * write goes ahead.  The allocator's metadata lives in the same pages and
 * is caught the same way, so the transaction's allocations and frees are
 * undone with the pages: an abort restores every page it touched, as a
 * crash's recovery does, and rebuilds the volatile runtime from them.
 *
 * What it requires of other threads, and how it is enforced: the space is
 * the transaction's while it is open.  Its begin fails (-EBUSY) while
 * another thread has a transaction open or is inside a call, and it takes
 * every superblock other threads own.  A call of another thread on the
 * space meanwhile waits at its first operation (pm_auto_gate), before it
 * changes anything, until the transaction ends, and then goes on, on the
 * heap as the commit or the abort left it: a page the transaction has
 * already written is writable, so a fault alone would not catch the
 * call's writes there, and an abort would silently undo them (a free
 * lost, a block handed out twice).  A write of another thread outside the
 * allocator's calls (the program's own data) faults at its page's first
 * write only: it is reported once through the error hook
 * (PERSISTENT_E_TX_AUTO) and waits until the transaction ends; after a
 * commit it goes on, but after an abort the heap it was working on is
 * gone, so the process stops (after the rollback is durable: the space is
 * whole when it is opened again).  Such a write to a page the transaction
 * has already written cannot be seen, and an abort undoes it: data two
 * threads share is theirs to synchronise (persistent_tx_begin).
 * Only one automatic transaction runs at a time in a process.  Writes by
 * the kernel into the space (read(2) into a block) fail with EFAULT while
 * their page is still read-only.
 *
 * The header's page is restored but for the state slots (open and close
 * write them) and the committed page count (growth is not undone: pages
 * past the old end are simply free). */

struct pm_rt *_Atomic pm_auto_rt;           /* the space one is open on */
static _Thread_local struct pm_tx *auto_tx PM_TLS_IE;  /* its owner's */
static pm_atomic_u32 auto_waiters, auto_reported;
/* Raised at each begin, when a close ends one (pm_tx_auto_close) and in
 * a child after fork; the owner's auto_tx counts only while auto_gen is
 * the one it began under.
 * A close from another thread cannot clear the owner's auto_tx, and a
 * review found it left behind: the next automatic transaction on any
 * space was refused for the rest of the process (pm_auto_rt still set),
 * and a call on a space opened at the closed one's address waited for
 * ever.  Had only pm_auto_rt been cleared, the old owner would have taken
 * the next transaction, another thread's, for its own. */
static pm_atomic_u64 auto_gen;
static _Thread_local uint64_t auto_tx_gen PM_TLS_IE;

/* The calling thread's open automatic transaction, or NULL. */
static struct pm_tx *auto_mine(void)
{
    return auto_tx != NULL && auto_tx_gen == pm_load_acquire(&auto_gen) ? auto_tx : NULL;
}

/* The bytes of a PAGE entry back where they were (see above for page 0). */
static void page_restore(struct pm_rt *rt, const struct pm_txent *e)
{
    uint64_t len = e->kind_len >> 8;
    const char *src = (const char *)(e + 1);
    /* judged again where it is used: another log's restores may have
     * rewritten it since (only a forged file does; the heap is verified
     * after the rollback) */
    uint64_t at = (uint64_t)(src - rt->base), off = e->off;     /* read once */
    if (len != page_of_os() || off % len != 0 || off > pm_data_limit(rt) - len ||
        !pm_in_data(rt, at, len))
        return;
    if (pm_image_sets_tail(rt, off, src, len) ||
        pm_in_bits_tail(&rt->fixed, pm_load_acquire(&rt->n_pages), off, len)) {
        /* only a forged log: a run bit past the committed pages, where the
         * file may hold a hole that a check skips, or an image of that
         * tail alone (no transaction writes there), whose hole a store
         * would back or, on a full disk, die of (rollback_steps refuses) */
        rt->tail_image = off + 1;
        return;
    }
    pm_vg_quiet(true);                  /* a whole page: free blocks too */
    /* it may hold a superblock's header and bits, and it moves runs
     * (recovery's copy of headers: all of it goes) */
    pm_snap_drop(rt);
    if (off != 0) {
        pm_copy_raw(rt->base + off, src, len);
    } else {
        size_t live = offsetof(struct pm_header, live);
        size_t keep = offsetof(struct pm_live, n_pages);    /* the words before it */
        pm_copy_raw(rt->base + live, src + live, keep);
        pm_copy_raw(rt->base + PM_HEADER_SIZE, src + PM_HEADER_SIZE, len - PM_HEADER_SIZE);
    }
    pm_vg_quiet(false);
    pm_flush(rt, rt->base + off, len);
}

static bool auto_snapshot(struct pm_rt *rt, struct pm_tx *tx, uint64_t off)
{
    struct pm_txent *e = log_entry(rt, tx, ENT + page_of_os());
    if (e == NULL)
        return false;
    pm_vg_quiet(true);                  /* a whole page: free blocks too */
    entry_fill(e, tx->gen, tx->key, PM_TXE_PAGE, off, page_of_os(), rt->base + off);
    pm_vg_quiet(false);
    pm_persist(rt, e, ENT + page_of_os());       /* before the write goes ahead */
    return os_protect(rt->base + off, page_of_os(), true) == 0;
}

/* Reported once per transaction, for a fault or a call alike. */
static void auto_report(struct pm_rt *rt, const void *addr, const char *what)
{
    uint32_t zero = 0;
    if (pm_cas_strong_acq_rel(&auto_reported, &zero, 1u))
        pm_misuse(rt, PERSISTENT_E_TX_AUTO, addr, what);
}

void pm_auto_wait_outside(struct pm_rt *rt)
{
    while (pm_load_acquire(&pm_auto_rt) == rt && auto_mine() == NULL) {
        auto_report(rt, NULL, "a call on the space during another thread's automatic "
                              "transaction (it waits for the end)");
        pm_hook(PM_HOOK_AUTO_WAIT);
        while (pm_load_acquire(&pm_auto_rt) == rt)
            os_sleep_us(200);
    }
}

/* The same inside an operation: the wait is outside it (the begin looks
 * at busy flags), and a transaction begun meanwhile is waited for too. */
void pm_auto_wait(struct pm_rt *rt, struct pm_trec *rec)
{
    /* the operation's flag again after the wait (PM_BUSY_NONE for a fill:
     * still nothing of the thread's superblocks; a class's slow path:
     * still that class's, its caller reading the revocation counter
     * after the gate) */
    uintptr_t b = pm_load_relaxed(&rec->busy);
    uintptr_t what = b == PM_BUSY_NONE || pm_busy_is_class(b) ? b : PM_BUSY_ANY;
    while (pm_load_acquire(&pm_auto_rt) == rt && auto_mine() == NULL) {
        pm_hook(PM_HOOK_AUTO_GATE);
        pm_op_end(rec);
        pm_auto_wait_outside(rt);
        pm_op_begin_as(rec, what);
    }
}

bool pm_auto_moved(struct pm_rt *rt, uint64_t seen)
{
    return (pm_load_acquire(&pm_auto_rt) == rt && auto_mine() == NULL) ||
           pm_load_acquire(&rt->auto_resets) != seen;
}

/* The fault handler (os_catch_faults): true when the fault was a write to
 * the space of the open automatic transaction, now allowed. */
static bool auto_fault(void *addr)
{
    struct pm_rt *rt = pm_load_acquire(&pm_auto_rt);
    if (rt == NULL)
        return false;
    uintptr_t a = (uintptr_t)addr, b = (uintptr_t)rt->base;
    if (a < b || a - b >= pm_data_limit(rt))
        return false;
    struct pm_tx *tx = auto_mine();
    if (tx != NULL && tx->automatic && tx->depth > 0) {
        if (!auto_snapshot(rt, tx, (a - b) & ~(uint64_t)(page_of_os() - 1)))
            os_fatal("persistent_mem: an automatic transaction has no room left for "
                     "its log; the process stops, and the next open of the space "
                     "rolls the transaction back\n");
        return true;
    }
    auto_report(rt, addr, "a write to the space during another thread's automatic "
                          "transaction (it waits for the end)");
    pm_fetch_add_acq_rel(&auto_waiters, 1u);
    while (pm_load_acquire(&pm_auto_rt) == rt)
        os_sleep_us(200);
    pm_fetch_sub_acq_rel(&auto_waiters, 1u);
    return true;
}

/* A begin that cannot go on after the transaction was made the space's
 * (pm_auto_rt, the state word, every page read-only): all of it undone,
 * nothing logged. */
static void auto_begin_undo(struct pm_rt *rt, struct pm_tx *tx)
{
    (void)os_protect(rt->base, pm_data_limit(rt), true);
    set_state(rt, tx, PM_TX_IDLE, true);
    depth_set(tx, 0);
    tx->written = false;
    tx->automatic = false;
    auto_tx = NULL;
    pm_store_release(&pm_auto_rt, (struct pm_rt *)NULL);
}

int persistent_tx_begin_auto(allocator_space_t *space)
{
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (rec == NULL)
        return pm_err(-errno, "tx_begin_auto: %s", persistent_strerror(-errno));
    if (tx_of(rec) == NULL)
        return pm_err(-ENOMEM, "tx_begin_auto: out of memory");
    struct pm_tx *tx = rec->tx;
    tx->rec = rec;
    if (tx->depth > 0) {
        if (!tx->automatic)
            return pm_err(-EINVAL, "tx_begin_auto: inside a transaction that is not "
                                   "automatic (an automatic one is the outermost)");
        tx->depth++;
        return 0;
    }
    int r = log_attach(rt, rec, tx);
    if (r == 0 && ((uintptr_t)tx->log % page_of_os() != 0 || tx->log->size % page_of_os() != 0))
        r = -EINVAL;                        /* a log from before: not page aligned */
    if (r < 0)
        return pm_err(r, "tx_begin_auto: no room for the transaction log");
    tx_settle(rt, rec, tx);                 /* the last commit's frees first */
    struct range *segs = vol_room(tx->segs.v, &tx->segs.cap, sizeof *segs, 1024);
    if (segs == NULL)
        return pm_err(-ENOMEM, "tx_begin_auto: out of memory");
    tx->segs.v = segs;
    r = os_catch_faults(auto_fault);
    if (r == -EBUSY)
        return pm_err(r, "tx_begin_auto: another thread is installing the fault handler "
                         "(try again)");
    if (r < 0)
        return pm_err(r, "tx_begin_auto: cannot catch faults: %s", persistent_strerror(r));
    /* the space alone */
    uint32_t n = pm_load_acquire(&rt->n_recs);
    for (uint32_t id = 1; id <= n && id < PM_MAX_RECS; id++) {
        const struct pm_trec *o = &rt->recs[id];
        if (id == rec->id || !pm_load_acquire(&o->in_use))
            continue;
        if (pm_load_acquire(&o->tx_open))
            return pm_err(-EBUSY, "tx_begin_auto: another thread has a transaction open");
        /* the frees of its last commit: done but not yet reusable, its log
         * still says so; an abort would rebuild the heap with them reusable
         * at once, and a crash would then have recovery free them again */
        if (pm_load_acquire(&o->tx_held))
            return pm_err(-EBUSY, "tx_begin_auto: another thread's last transaction freed "
                                  "blocks that its next one settles");
    }
    pm_hook(PM_HOOK_AUTO_BEGIN_LOOKED);
    struct pm_rt *none = NULL;
    if (!pm_cas_strong_acq_rel(&pm_auto_rt, &none, rt))
        return pm_err(-EBUSY, "tx_begin_auto: an automatic transaction is open already");
    pm_op_begin(rec);
    r = sb_revoke_all(rt, rec);
    pm_op_end(rec);
    /* every thread fenced after pm_auto_rt was set: one that raises its
     * busy flag from here on sees it (pm_auto_gate); one that raised it
     * before shows busy below (without membarrier, kernels before 4.14,
     * only where a superblock it owns says so: sb_revoke_all refuses) */
    bool fenced = false;
    if (r == 0 && os_membarrier_init() == 0) {
        r = os_membarrier();
        fenced = r == 0;
    }
    /* busy, or (a begin done since the look above: persistent_tx_begin
     * sets the depth inside its operation) a transaction open, or held
     * frees (a whole transaction committed since that look: a helper's
     * hunt stopped this begin there while another thread's PMEM commit
     * freed a block; the abort made it reusable, it became a root's, and
     * after a kill recovery freed it again under the root), or a thread
     * exit handing back (pm_thread_release) */
    uint32_t nr = pm_load_acquire(&rt->n_recs);
    for (uint32_t id = 1; r == 0 && id <= nr && id < PM_MAX_RECS; id++) {
        if (id == rec->id)
            continue;
        const struct pm_trec *o = &rt->recs[id];
        if (pm_load_acquire(&o->busy) != 0 || pm_load_acquire(&o->exiting) != 0 ||
            (pm_load_acquire(&o->in_use) &&
             (pm_load_acquire(&o->tx_open) || pm_load_acquire(&o->tx_held))))
            r = -EBUSY;
    }
    /* and every other thread outside a call owns no superblock: one that
     * took its superblocks back, or got new ones, in a call that passed
     * the gate before pm_auto_rt was set and saw this begin's revocation
     * (its counter then reads as seen) would use them on its fast paths,
     * which have no gate (a review: a malloc trying again for room took
     * one back and the abort stopped the process) */
    if (r == 0 && sb_others_own(rt, rec))
        r = -EBUSY;
    if (r < 0) {
        pm_store_release(&pm_auto_rt, (struct pm_rt *)NULL);
        return pm_err(r, "tx_begin_auto: another thread is inside a call on the space");
    }
    tx_start(rt, tx);
    /* a log short of one page's image (below) takes its continuation
     * from the pages free now: those the threads keep in their caches
     * are given back first, or the copy below would count them in use
     * and the begin refuse with free pages in the space (a review) */
    if ((uint64_t)(tx->end - tx->at) < ENT + page_of_os())
        (void)pg_cache_reclaim(rt);
    /* the pages in use now, the space alone: the log goes on in no other */
    uint64_t n0 = pm_load_acquire(&rt->n_pages);
    /* (the room kept from the last one) */
    uint64_t *f0 = vol_room(tx->free0, &tx->free0_words, sizeof *f0, (n0 + 63) / 64 + 1);
    if (f0 == NULL) {
        pm_store_release(&pm_auto_rt, (struct pm_rt *)NULL);
        return pm_err(-ENOMEM, "tx_begin_auto: out of memory");
    }
    tx->free0 = f0;
    for (uint64_t w = 0; w < (n0 + 63) / 64; w++)
        tx->free0[w] = pm_load_relaxed(&rt->used[w]);
    tx->n0 = n0;
    tx->seg_from = 0;
    tx->automatic = true;
    tx->fenced = fenced;
    set_state(rt, tx, PM_TX_ACTIVE, true);
    tx->written = true;
    pm_store_relaxed(&auto_reported, 0u);
    auto_tx_gen = pm_fetch_add_acq_rel(&auto_gen, 1u) + 1;
    auto_tx = tx;
    depth_set(tx, 1);
    /* every page read-only, but the log's */
    if (os_protect(rt->base, pm_data_limit(rt), false) != 0 ||
        os_protect(tx->log, tx->log->size, true) != 0) {
        int e = -errno;
        auto_begin_undo(rt, tx);
        return pm_err(e, "tx_begin_auto: mprotect failed");
    }
    /* room for the first page's image now, not at the first write: a log
     * the file left smaller than that (an earlier format's, or a lane's
     * log of a page or two, which pm_txlog_head_ok accepts) and no pages
     * to continue it in would make that write stop the process
     * (auto_fault); here the begin can refuse.  After the protection:
     * log_room_slow leaves a continuation it claims writable. */
    if ((uint64_t)(tx->end - tx->at) < ENT + page_of_os() &&
        !log_room_slow(rt, tx, ENT + page_of_os())) {
        auto_begin_undo(rt, tx);
        return pm_err(-ENOMEM, "tx_begin_auto: no room for the transaction log (its "
                               "first page's image)");
    }
    return 0;
}

/* Appends e to the list *v of n entries (room for *cap); false, with the
 * list freed, when out of memory. */
static bool ents_push(const struct pm_txent ***v, size_t *n, size_t *cap,
                      const struct pm_txent *e)
{
    const struct pm_txent **nv = vol_room(*v, cap, sizeof **v, *n + 1);
    if (nv == NULL) {
        os_vol_free(*v, *cap * sizeof **v);
        *v = NULL;
        return false;
    }
    *v = nv;
    (*v)[(*n)++] = e;
    return true;
}

/* The PAGE entries of the open automatic transaction, oldest first, in
 * *v (n of them, room for *cap: os_vol_free it); false when there is no
 * memory for the list. */
static bool auto_pages(struct pm_rt *rt, struct pm_tx *tx, const struct pm_txent ***v,
                       size_t *n, size_t *cap)
{
    struct pm_txit it;
    pm_txit_start(rt, tx->log, tx->gen, &it);
    const struct pm_txent *e;
    *v = NULL;
    *n = *cap = 0;
    while ((e = pm_txit_next(rt, &it)) != NULL)
        if ((e->kind_len & 0xff) == PM_TXE_PAGE && !ents_push(v, n, cap, e))
            return false;
    return true;
}

static void auto_end(struct pm_rt *rt, struct pm_tx *tx)
{
    (void)os_protect(rt->base, pm_data_limit(rt), true);
    tx->automatic = false;
    auto_tx = NULL;
    tx_unmark(rt, tx);
    tx_reset(rt, tx);
}

static void auto_commit(struct pm_rt *rt, struct pm_tx *tx)
{
    struct pm_txit it;
    pm_txit_start(rt, tx->log, tx->gen, &it);
    const struct pm_txent *e;
    while ((e = pm_txit_next(rt, &it)) != NULL)
        if ((e->kind_len & 0xff) == PM_TXE_PAGE)
            pm_flush(rt, rt->base + e->off, e->kind_len >> 8);
    /* pages the space grew by since the begin were never read-only (free
     * then: nothing to restore), so no fault tells which it wrote: every
     * one in use is written back (a review found a block there lost to a
     * power failure after the commit returned) */
    if (rt->flush != NULL) {
        uint64_t n = pm_load_acquire(&rt->n_pages);
        for (uint64_t p = tx->n0; p < n; p++)
            if (pg_bit(rt->used, p))
                pm_flush(rt, rt->data + (p << rt->page_shift), rt->page_size);
    }
    pm_drain(rt);
    set_state(rt, tx, PM_TX_IDLE, true);    /* the commit point */
    auto_end(rt, tx);
    pm_store_release(&pm_auto_rt, (struct pm_rt *)NULL);   /* waiters go on */
}

/* Whether a page the log continues in is among [off, off + len). */
static bool holds_log(const struct pm_tx *tx, struct pm_rt *rt, uint64_t off, uint64_t len)
{
    for (size_t i = 0; i < tx->segs.n; i++) {
        uint64_t s = rt->data_off + (tx->segs.v[i].off << rt->page_shift);
        uint64_t e = s + (tx->segs.v[i].len << rt->page_shift);
        if (off < e && s < off + len)
            return true;
    }
    return false;
}

/* release: pm_auto_rt cleared at the end (another automatic transaction
 * may begin from then on); pm_tx_auto_close clears it itself. */
static void auto_abort(struct pm_rt *rt, struct pm_trec *rec, struct pm_tx *tx,
                       bool release)
{
    size_t n, cap;
    const struct pm_txent **pages;
    if (!auto_pages(rt, tx, &pages, &n, &cap))
        os_fatal("persistent_mem: out of memory while aborting an automatic "
                 "transaction; the process stops, and the next open of the space "
                 "rolls it back\n");
    while (n-- > 0) {
        /* a page the log went on in since: what came before is durable
         * first, so a crash here can redo the rest from a shorter log */
        if (holds_log(tx, rt, pages[n]->off, pages[n]->kind_len >> 8))
            pm_drain(rt);
        page_restore(rt, pages[n]);
    }
    os_vol_free(pages, cap * sizeof *pages);
    pm_drain(rt);
    set_state(rt, tx, PM_TX_IDLE, true);
    /* Another thread's busy flag: after the begin's membarrier, a flag
     * raised since belongs to a call before its gate (pm_auto_gate), or
     * at it and about to lower the flag to wait outside, or to a fast
     * path on its way there (it finds its cache revoked: the begin took
     * every superblock); none has changed anything, and none does before
     * its gate, which holds it until the end.  So the abort goes on
     * beside them (it counted them as calls inside the space and stopped
     * the process: test_tx under qemu-user, now and then, a thread
     * preempted in that window).  Without the membarrier (kernels before
     * 4.14) a flag may be a call that passed its gate unseen: inside. */
    uint32_t busy = pm_load_acquire(&auto_waiters);
    uint32_t nr = pm_load_acquire(&rt->n_recs);
    for (uint32_t id = 1; !tx->fenced && id <= nr && id < PM_MAX_RECS; id++)
        if (id != rec->id && pm_load_acquire(&rt->recs[id].busy))
            busy++;
    if (busy)
        os_fatal("persistent_mem: another thread used the space during an automatic "
                 "transaction that aborted; its call cannot finish on the restored "
                 "heap, so the process stops (the space is whole: open it again)\n");
    auto_end(rt, tx);
    /* memory checkers: nothing marked before the rebuild reads the
     * headers put back (pm_vg_reset), what is free marked again after */
    pm_vg_reset(rt);
    pm_engine_reset(rt, rec);
    /* a lookup of another thread that ran meanwhile looks again
     * (pm_auto_moved) */
    pm_fetch_add_acq_rel(&rt->auto_resets, (uint64_t)1);
    pm_vg_open(rt);
    if (release)
        pm_store_release(&pm_auto_rt, (struct pm_rt *)NULL);
}

/* ---- thread exit, close, recovery ---- */

static void tx_free_volatile(struct pm_tx *tx)
{
    const struct vec *vecs[] = {&tx->snaps, &tx->allocs, &tx->frees, &tx->marks,
                                &tx->holds, &tx->segs, &tx->pend_segs};
    for (size_t i = 0; i < sizeof vecs / sizeof *vecs; i++)
        os_vol_free(vecs[i]->v, vecs[i]->cap * sizeof *vecs[i]->v);
    oset_free(&tx->mset);
    os_vol_free(tx->held, tx->held_cap * sizeof *tx->held);
    os_vol_free(tx->floc, tx->floc_cap * sizeof *tx->floc);
    os_vol_free(tx->pf, tx->pf_cap * sizeof *tx->pf);
    os_vol_free(tx->free0, tx->free0_words * sizeof *tx->free0);
}

bool pm_tx_auto_other(struct pm_rt *rt, struct pm_trec *rec)
{
    const struct pm_tx *tx = rec->tx;
    return pm_load_acquire(&pm_auto_rt) == rt &&
           (tx == NULL || !tx->automatic || tx->depth == 0);
}

void pm_tx_thread_release(struct pm_rt *rt, struct pm_trec *rec)
{
    struct pm_tx *tx = rec->tx;
    if (tx == NULL)
        return;
    if (tx->depth > 0)
        tx_abort(rt, rec, tx);
    tx_settle(rt, rec, tx);
    /* the structure stays with the record (as a new one, what tx_of
     * gives) for its next thread, as records do while the space is open;
     * no other thread reads it (tx_begin_auto reads rec->tx_open and
     * rec->tx_held) */
    tx_free_volatile(tx);
    memset(tx, 0, sizeof *tx);
}

/* At close: a transaction another thread left open stays in its log and
 * is rolled back by the next open; the frees of the last transaction of
 * every other thread are done (no thread uses the space any more). */
void pm_tx_close(struct pm_rt *rt)
{
    uint32_t n = pm_load_acquire(&rt->n_recs);
    for (uint32_t id = 1; id <= n && id < PM_MAX_RECS; id++) {
        struct pm_tx *tx = rt->recs[id].tx;
        if (tx == NULL)
            continue;
        tx_settle(rt, &rt->recs[id], tx);
        tx_free_volatile(tx);
        os_vol_free(tx, sizeof *tx);
        rt->recs[id].tx = NULL;
    }
}

/* A close of the space an automatic transaction is open on, before it
 * writes anything: the transaction is aborted here, on its owner's
 * behalf (its pages are read-only, and the close's own writes would
 * fault with nobody to take them; a review found the process's automatic
 * state left behind by a close: the next automatic transaction on any
 * space refused, a call on a space opened again at the same address
 * waiting for ever).  The owner's auto_tx no longer counts. */
void pm_tx_auto_close(struct pm_rt *rt)
{
    if (pm_load_acquire(&pm_auto_rt) != rt)
        return;
    uint32_t n = pm_load_acquire(&rt->n_recs);
    for (uint32_t id = 1; id <= n && id < PM_MAX_RECS; id++) {
        struct pm_tx *tx = rt->recs[id].tx;
        if (tx != NULL && tx->automatic && tx->depth > 0) {
            auto_abort(rt, &rt->recs[id], tx, false);
            break;
        }
    }
    /* the generation first: a begin in another thread once pm_auto_rt is
     * clear must not have its own generation overtaken (a review) */
    pm_fetch_add_acq_rel(&auto_gen, 1u);
    pm_store_release(&pm_auto_rt, (struct pm_rt *)NULL);
}

/* In a child after fork(): an automatic transaction the parent had open
 * is not the child's (its space is gone here); the child may begin its
 * own.  Called from the fork handler (space.c): atomic stores and an add,
 * no lock. */
void pm_tx_forget_after_fork(void)
{
    pm_fetch_add_acq_rel(&auto_gen, 1u);
    pm_store_relaxed(&auto_waiters, 0u);
    pm_store_relaxed(&pm_auto_rt, (struct pm_rt *)NULL);
}

/* Finishes the frees of generation gen in the log (recovery). */
static int redo_frees(struct pm_rt *rt, const struct pm_txlog *lg, uint64_t gen)
{
    struct pm_txit it;
    pm_txit_start(rt, lg, gen, &it);
    it.track = true;                    /* a JUMP cycle ends the walk */
    const struct pm_txent *e;
    while ((e = pm_txit_next(rt, &it)) != NULL)
        if ((e->kind_len & 0xff) == PM_TXE_FREE)
            pub_ensure(rt, e->off, false);
    bool oom = it.oom;                  /* the walk cut short: not IDLE */
    pm_txit_done(&it);
    return oom ? pm_err(-ENOMEM, "recovery: out of memory") : 0;
}

/* A writer's open, before the heap is verified: the page images of every
 * automatic transaction that did not end are put back, newest first, as
 * pm_tx_recover does again afterwards with the rest.  An abort or a
 * recovery cut short in its restores leaves pages from before the
 * transaction beside pages from inside it (a superblock's header freed
 * while the runs still name it), which no verification passes, while the
 * log still holds all it takes to finish: a review found such spaces
 * refused for writing.  Only entries that check out (the checksum over
 * their generation), each a whole page inside the space, are written;
 * verify.c judges the log and the heap afterwards, as at any open.  The
 * number of pages written, or an error. */
int pm_tx_restore_pages(struct pm_rt *rt)
{
    struct pm_lane *l;
    size_t restored = 0;
    pub_lanes_rescan(rt);
    for (uint32_t i = 0; (l = pub_lane_at(rt, i)) != NULL; i++) {
        uint64_t off = pm_load_acquire(&l->tx_off);
        if (off == 0 || !pm_txlog_head_ok(rt, off))
            continue;
        struct pm_txlog *lg = (struct pm_txlog *)(rt->base + off);
        uint64_t state = pm_load_acquire(&lg->state);
        if ((state & PM_TX_PHASE) != PM_TX_ACTIVE)
            continue;
        struct pm_txit it;
        pm_txit_start(rt, lg, state >> 8, &it);
        /* the run bits are half put back here, so a segment the log went
         * on in (free at the begin, in no run then) may look covered by a
         * run whose END is back as it was and whose START is not yet: a
         * review's sweep found the walk cut short there, the newer page
         * images never reached */
        it.loose = true;
        it.track = true;
        const struct pm_txent *e, **pages = NULL;
        size_t n = 0, cap = 0;
        while ((e = pm_txit_next(rt, &it)) != NULL) {
            uint64_t len = e->kind_len >> 8;
            if ((e->kind_len & 0xff) != PM_TXE_PAGE || len != page_of_os() ||
                e->off % len != 0 || e->off > pm_data_limit(rt) - len)
                continue;
            if (!pm_txit_clear(&it, e->off, len))
                break;                  /* over the log: verify.c refuses it */
            if (!ents_push(&pages, &n, &cap, e)) {
                pm_txit_done(&it);
                os_vol_free(pages, cap * sizeof *pages);
                return pm_err(-ENOMEM, "recovery: out of memory");
            }
        }
        bool oom = it.oom;
        pm_txit_done(&it);
        if (oom) {
            os_vol_free(pages, cap * sizeof *pages);
            return pm_err(-ENOMEM, "recovery: out of memory");
        }
        restored += n;
        while (n-- > 0) {
            pm_drain(rt);               /* a page the log goes on in: see above */
            page_restore(rt, pages[n]);
        }
        os_vol_free(pages, cap * sizeof *pages);
        pm_drain(rt);
    }
    return restored > INT32_MAX ? INT32_MAX : (int)restored;
}

bool pm_tx_rollback_pending(struct pm_rt *rt)
{
    struct pm_lane *l;
    for (uint32_t i = 0; (l = pub_lane_at(rt, i)) != NULL; i++) {
        uint64_t off = pm_load_acquire(&l->tx_off);
        if (off != 0 && pm_txlog_head_ok(rt, off) &&
            (pm_load_acquire(&((struct pm_txlog *)(rt->base + off))->state) & PM_TX_PHASE) ==
                PM_TX_ACTIVE)
            return true;
    }
    return false;
}

/* After a writer's recovery (every log idle, and durably so): fresh
 * salts for every fourth-format log, written back.  The entries a stream
 * holds -- a transaction's that a crash cut before its state word said
 * it was active (a power failure may land that line's words one by one),
 * or a forged file's for a generation its state word was rewound past --
 * are then no later transaction's, whatever generation it has (a review:
 * salts drawn by each transaction and written beside its state word
 * reached the file after the state, or not at all).  Both streams: the
 * first transaction after an open has no frees of the one before to
 * finish (PM_TX_PREV), which would read the other. */
void pm_tx_salt_logs(struct pm_rt *rt)
{
    struct pm_lane *l;
    for (uint32_t i = 0; (l = pub_lane_at(rt, i)) != NULL; i++) {
        uint64_t off = pm_load_acquire(&l->tx_off);
        if (off == 0 || !pm_txlog_head_ok(rt, off))
            continue;
        struct pm_txlog *lg = (struct pm_txlog *)(rt->base + off);
        if (lg->magic != PM_TXLOG_MAGIC ||
            (pm_load_acquire(&lg->state) & PM_TX_PHASE) != PM_TX_IDLE)
            continue;                   /* log_attach draws them for older ones */
        pm_snap_forget(rt, lg, sizeof *lg);
        salts_draw(lg);
        pm_persist(rt, lg->salt, sizeof lg->salt);
    }
}

int pm_tx_recover(struct pm_rt *rt)
{
    struct pm_lane *l;
    pub_lanes_rescan(rt);           /* as verified: after the page images */
    for (uint32_t i = 0; (l = pub_lane_at(rt, i)) != NULL; i++) {
        uint64_t off = pm_load_acquire(&l->tx_off);
        if (off == 0 || !pm_txlog_head_ok(rt, off))
            continue;                   /* pm_verify refused those */
        struct pm_txlog *lg = (struct pm_txlog *)(rt->base + off);
        uint64_t state = pm_load_acquire(&lg->state), gen = state >> 8;
        uint32_t phase = (uint32_t)(state & PM_TX_PHASE);
        if (phase == PM_TX_COMMITTED) {
            int r = redo_frees(rt, lg, gen);
            if (r < 0)
                return r;
        } else if (phase == PM_TX_ACTIVE) {
            if (state & PM_TX_PREV) {
                int r = redo_frees(rt, lg, (gen - 1) & PM_TX_GEN_MASK);    /* the other stream */
                if (r < 0)
                    return r;
            }
            struct pm_txit it;
            pm_txit_start(rt, lg, gen, &it);
            it.track = true;
            const struct pm_txent *e;
            size_t n = 0, cap = 0;
            const struct pm_txent **snaps = NULL;
            while ((e = pm_txit_next(rt, &it)) != NULL) {
                uint64_t kind = e->kind_len & 0xff;
                if (kind == PM_TXE_ALLOC) {
                    pub_ensure(rt, e->off, false);
                } else if (kind == PM_TXE_SNAPSHOT || kind == PM_TXE_PAGE) {
                    /* verify.c refused a log that restores over itself */
                    if (!pm_txit_clear(&it, e->off, e->kind_len >> 8))
                        break;
                    if (!ents_push(&snaps, &n, &cap, e)) {
                        pm_txit_done(&it);
                        os_vol_free(snaps, cap * sizeof *snaps);
                        return pm_err(-ENOMEM, "recovery: out of memory");
                    }
                }
            }
            bool oom = it.oom;
            pm_txit_done(&it);
            if (oom) {
                os_vol_free(snaps, cap * sizeof *snaps);
                return pm_err(-ENOMEM, "recovery: out of memory");
            }
            /* newest first, so a range snapshotted twice ends as it began;
             * a page the log goes on in waits for what came before to be
             * durable */
            while (n-- > 0) {
                const struct pm_txent *sn = snaps[n];
                uint64_t kind_len = sn->kind_len, len = kind_len >> 8, at = sn->off;
                if ((kind_len & 0xff) == PM_TXE_PAGE) {
                    pm_drain(rt);
                    page_restore(rt, sn);
                    continue;
                }
                if ((kind_len & 0xff) != PM_TXE_SNAPSHOT || !pm_in_data(rt, at, len) ||
                    !pm_in_data(rt, (uint64_t)((const char *)(sn + 1) - rt->base), len))
                    continue;       /* as page_restore: rewritten since */
                /* inside a live block (verify.c): no header in a verified
                 * heap, forgotten from the open's copy all the same */
                pm_snap_forget(rt, rt->base + at, len);
                memcpy(rt->base + at, sn + 1, len);
                pm_flush(rt, rt->base + at, len);
            }
            os_vol_free(snaps, cap * sizeof *snaps);
        } else {
            continue;
        }
        pm_drain(rt);
        pm_snap_forget(rt, &lg->state, sizeof lg->state);
        pm_store_release(&lg->state, (uint64_t)PM_TX_IDLE | gen << 8);
        pm_persist(rt, &lg->state, sizeof lg->state);
    }
    return 0;
}

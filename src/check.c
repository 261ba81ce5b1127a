/* persistent_check (a read-only full consistency check) and
 * persistent_stats_get (a walk that counts).  Both read only the file, so
 * they work on read-only and private (forensic) mappings; on a space other
 * threads are changing they see a moment that may be torn. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

struct run {
    uint64_t first, last;
    struct pm_sb_header *h;       /* NULL for a large run */
};

/* Calls fn for each live run in page order; stops at the first structural
 * defect, which it describes in *why and returns as a negative code. */
static int for_each_run(struct pm_rt *rt, int (*fn)(struct pm_rt *, const struct run *, void *),
                        void *arg, const char **why, uint64_t *where)
{
    uint64_t n = pm_load_acquire(&rt->n_pages);
    uint64_t p = 0, s;
    while (p < n && (s = pg_next_set(rt->start_bits, p, n)) != PG_NONE) {
        struct run r = {s, pg_next_set(rt->end_bits, s, n), NULL};
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
            r.h = sb_header(rt, (uint32_t)s);
            if (!sb_header_valid(rt, r.h, s) || s + r.h->n_pages - 1 != r.last) {
                *why = "superblock header is invalid";
                return PERSISTENT_E_CORRUPT;
            }
        }
        int rc = fn(rt, &r, arg);
        if (rc != 0)
            return rc;
        p = r.last + 1;
    }
    return 0;
}

/* ---- check ---- */

struct ck {
    struct persistent_check_report *rep;
};

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

static int check_run(struct pm_rt *rt, const struct run *r, void *arg)
{
    struct persistent_check_report *rep = ((struct ck *)arg)->rep;
    rep->runs++;
    if (r->h == NULL) {
        rep->large_runs++;
        rep->live_blocks++;
        rep->live_bytes += (r->last - r->first + 1) << rt->page_shift;
        for (uint64_t q = r->first + 1; q <= r->last; q++)
            if (pg_bit(rt->kind_bits, q))
                rep->orphan_bits++;
        return 0;
    }
    rep->superblocks++;
    const struct pm_sb_header *h = r->h;
    pm_atomic_u64 *al = r->h->bits, *rm = r->h->bits + h->n_words;
    for (uint32_t w = 0; w < h->n_words; w++) {
        uint64_t a = pm_load_relaxed(&al[w]), m = pm_load_relaxed(&rm[w]);
        uint64_t valid = w + 1 == h->n_words ? sb_last_mask(h) : ~UINT64_C(0);
        if ((a | m) & ~valid)
            bad(rep, "superblock at page %llu has bits past its last block",
                (unsigned long long)r->first);
        rep->pending_remote_frees += pm_popcount64(a & m);
        rep->orphan_bits += pm_popcount64(m & ~a);
        rep->live_blocks += pm_popcount64(a & ~m);
        rep->live_bytes += (uint64_t)pm_popcount64(a & ~m) * h->block_size;
    }
    return 0;
}

/* Whether off is the start of a live block, from the persistent bits. */
static bool block_live(struct pm_rt *rt, uint64_t off)
{
    uint64_t n = pm_load_acquire(&rt->n_pages);
    if (off < rt->data_off || off >= rt->data_off + (n << rt->page_shift))
        return false;
    uint64_t page = (off - rt->data_off) >> rt->page_shift;
    uint64_t s = pg_prev_set(rt->start_bits, page);
    if (s == PG_NONE)
        return false;
    if (pg_bit(rt->kind_bits, s)) {
        struct pm_sb_header *h = sb_header(rt, (uint32_t)s);
        if (!sb_header_valid(rt, h, s) || page >= s + h->n_pages)
            return false;
        uint64_t x = off - (rt->data_off + (s << rt->page_shift));
        if (x < h->data_start || (x - h->data_start) % h->block_size != 0)
            return false;
        uint64_t i = (x - h->data_start) / h->block_size;
        return i < h->n_blocks &&
               ((pm_load_relaxed(&h->bits[i >> 6]) >> (i & 63)) & 1);
    }
    return s == page && ((off - rt->data_off) & (rt->page_size - 1)) == 0;
}

static void check_roots(struct pm_rt *rt, struct persistent_check_report *rep)
{
    const struct pm_fixed *f = &rt->hdr->fixed;
    uint64_t v = pm_load_acquire(&rt->hdr->live.root0_val);
    if (v) {
        rep->roots++;
        if (!block_live(rt, v))
            bad(rep, "root 0 points at %#llx, not a live block", (unsigned long long)v);
    }
    struct pm_root_slot *slot = (struct pm_root_slot *)(rt->base + f->roots_off);
    uint64_t cap = f->roots_cap;
    pm_atomic_u64 *next = &rt->hdr->live.roots_next_off;
    for (int table = 0; table < 64; table++) {
        for (uint64_t i = 0; i < cap; i++) {
            uint64_t k = pm_load_acquire(&slot[i].key);
            uint64_t val = pm_load_acquire(&slot[i].val);
            if (k == 0 && val != 0)
                bad(rep, "root slot %llu has a block but no tag", (unsigned long long)i);
            if (k != 0 && val != 0) {
                rep->roots++;
                if (!block_live(rt, val))
                    bad(rep, "root %#llx points at %#llx, not a live block",
                        (unsigned long long)k, (unsigned long long)val);
            }
        }
        uint64_t off = pm_load_acquire(next);
        if (off == 0)
            return;
        if (!block_live(rt, off)) {
            bad(rep, "overflow root table at %#llx is not a live block",
                (unsigned long long)off);
            return;
        }
        struct pm_root_table *tb = (struct pm_root_table *)(rt->base + off);
        if (tb->magic != PM_ROOT_TABLE_MAGIC || tb->cap == 0 ||
            (tb->cap & (tb->cap - 1)) != 0) {
            bad(rep, "overflow root table at %#llx is damaged", (unsigned long long)off);
            return;
        }
        slot = tb->slot;
        cap = tb->cap;
        next = &tb->next_off;
    }
}

int persistent_check(allocator_space_t *space, struct persistent_check_report *rep)
{
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL || rep == NULL)
        return pm_err(-EINVAL, "not an open space");
    pm_follow(rt);
    memset(rep, 0, sizeof *rep);
    const struct pm_header *hd = rt->hdr;
    if (pm_fixed_checksum(&hd->fixed) != hd->fixed.checksum)
        bad(rep, "header checksum mismatch");
    const struct pm_state *st = &hd->state[rt->cur_slot];
    if (rt->mode == PM_MODE_WRITER && pm_state_checksum(st) != st->checksum)
        bad(rep, "current header state slot fails its checksum");

    /* bits past the pages in the file would be runs nobody can reach */
    uint64_t n = pm_load_acquire(&rt->n_pages);
    if (pg_next_set(rt->start_bits, n, rt->max_pages) != PG_NONE ||
        pg_next_set(rt->end_bits, n, rt->max_pages) != PG_NONE)
        bad(rep, "run bits set past the end of the file");

    struct ck ck = {rep};
    const char *why = NULL;
    uint64_t where = 0;
    if (for_each_run(rt, check_run, &ck, &why, &where) < 0)
        bad(rep, "page %llu: %s", (unsigned long long)where, why);

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
    check_roots(rt, rep);
    rep->in_flight_lanes = (uint64_t)pm_lanes_in_flight(rt);
    return rep->n_errors ? PERSISTENT_E_CORRUPT : 0;
}

/* ---- stats ---- */

static int stats_run(struct pm_rt *rt, const struct run *r, void *arg)
{
    struct persistent_stats *st = arg;
    uint64_t bytes = (r->last - r->first + 1) << rt->page_shift;
    if (r->h == NULL) {
        st->large_runs++;
        st->large_bytes += bytes;
        st->large_live_bytes += bytes;
        st->live_blocks++;
        return 0;
    }
    uint32_t c = r->h->cls;
    st->superblocks++;
    st->superblock_bytes += bytes;
    st->cls[c].superblocks++;
    pm_atomic_u64 *al = r->h->bits, *rm = r->h->bits + r->h->n_words;
    uint64_t sb_live = 0;
    for (uint32_t w = 0; w < r->h->n_words; w++)
        sb_live += pm_popcount64(pm_load_relaxed(&al[w]) & ~pm_load_relaxed(&rm[w]));
    st->cls[c].live_blocks += sb_live;
    st->live_blocks += sb_live;
    st->small_live_bytes += sb_live * r->h->block_size;
    st->empty_superblocks += sb_live == 0;
    return 0;
}

int persistent_stats_get(allocator_space_t *space, struct persistent_stats *st)
{
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL || st == NULL)
        return pm_err(-EINVAL, "not an open space");
    pm_follow(rt);
    memset(st, 0, sizeof *st);
    st->n_classes = rt->n_small;
    for (uint32_t c = 0; c < PM_N_CLASSES; c++)
        st->cls[c].block_size = pm_class_size(c);
    const char *why = NULL;
    uint64_t where = 0;
    int r = for_each_run(rt, stats_run, st, &why, &where);
    if (r < 0)
        return pm_err(r, "stats: page %llu: %s", (unsigned long long)where, why);
    uint64_t n = pm_load_acquire(&rt->n_pages);
    st->capacity = n << rt->page_shift;
    st->file_size = rt->data_off + st->capacity;
    st->live_bytes = st->small_live_bytes + st->large_live_bytes;
    st->free_bytes = st->capacity - st->superblock_bytes - st->large_bytes;
    return 0;
}

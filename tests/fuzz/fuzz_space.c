/* Structure-aware fuzzer for space files (guarantee G8).
 *
 * An input is a whole space file image.  Every input is written to a file
 * under /dev/shm and opened in turn
 *   (a) privately without recovery, (b) read-only, (c) privately with
 *   recovery (load_private_persistent_allocator), each exercising the calls
 *   that must work on any file, and the file must stay byte-identical;
 *   (d) for writing, on a copy: a refused open leaves the copy identical to
 *   the input; an accepted one leaves a heap that persistent_check calls
 *   consistent, before and after a few allocations and root calls, and
 *   after a close and a second writer open;
 *   (e) check and the writer judge alike: a file (a)'s check calls
 *   consistent is not refused as corrupt, by the writer or (c); one it
 *   calls damaged is not accepted by the writer (whose recovery must then
 *   leave it consistent, else the case is d-recovered-inconsistent).
 * A violation prints one line naming its case ("FUZZ FINDING [case]") and
 * aborts.  PM_FUZZ_IGNORE=case1,case2 reports those cases without aborting
 * (to keep fuzzing past a known finding; "all" for every case);
 * PM_FUZZ_IGNORE_MSG=text1|text2 does the same for findings whose message
 * contains one of the texts (a known root cause);
 * PM_FUZZ_VERBOSE=1 prints what
 * each open returned.
 *
 * The custom mutator (LLVMFuzzerCustomMutator) walks the format (header
 * offsets, run bitmaps, superblocks found by their START+KIND bits, root
 * and lane tables and their overflow chains), changes interior fields and
 * recomputes the checksums with the library's own functions, so most
 * mutants get past the header checks and reach the heap validation; a
 * fraction are plain libFuzzer byte mutations.  See README.md.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"   /* layout.h, pm_fixed_checksum, pm_state_checksum */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed);
size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t n1, const uint8_t *d2,
                                 size_t n2, uint8_t *out, size_t max_out,
                                 unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#define MAX_IMAGE (UINT64_C(4) << 20)   /* larger inputs are skipped */

/* ======================================================================== */
/* Small helpers                                                            */

struct rng {
    uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * UINT64_C(0x2545f4914f6cdd1d);
}

static uint64_t below(struct rng *r, uint64_t n)
{
    return n ? rnd(r) % n : 0;
}

static bool chance(struct rng *r, unsigned pct)
{
    return below(r, 100) < pct;
}

static uint64_t fnv(const uint8_t *d, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * UINT64_C(1099511628211);
    return h;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* ======================================================================== */
/* The image and its structure (used by the mutator and the harness)       */

#define MAX_RUNS 512
#define MAX_TABS 16

struct run {
    uint64_t first, last;
    bool sb;
};

struct img {
    uint8_t *d;
    size_t n, cap;
    bool hdr;                 /* at least a header's worth of bytes */
    struct pm_fixed f;
    uint32_t shift;           /* page_shift, clamped to 8..12 for walking */
    uint64_t page;
    uint64_t data_off, bits_size, max_pages, n_pages, img_pages;
    uint64_t bit_off[3];      /* START, END, KIND */
    bool bits_ok;
    int cur;                  /* state slot with the higher valid seq, or 0 */
    struct run run[MAX_RUNS];
    int n_runs, n_sb, n_large;
    uint64_t rtab[MAX_TABS];
    int n_rtab;
    uint64_t ltab[MAX_TABS];
    int n_ltab;
};

enum { B_START, B_END, B_KIND };

#define OFF_STATE(i)   (offsetof(struct pm_header, state) + (uint64_t)(i) * sizeof(struct pm_state))
#define OFF_LIVE       offsetof(struct pm_header, live)
#define OFF_ROOTS_NEXT (OFF_LIVE + offsetof(struct pm_live, roots_next_off))
#define OFF_ROOT0      (OFF_LIVE + offsetof(struct pm_live, root0_val))
#define OFF_LANES_NEXT (OFF_LIVE + offsetof(struct pm_live, lanes_next_off))
#define OFF_LIVE_PAGES (OFF_LIVE + offsetof(struct pm_live, n_pages))
#define OFF_CHUNK_LANE offsetof(struct pm_header, chunk_lane)

static bool in_img(const struct img *m, uint64_t off, uint64_t len)
{
    return off <= m->n && len <= m->n - off;
}

static uint64_t rd64(const struct img *m, uint64_t off)
{
    uint64_t v = 0;
    if (in_img(m, off, 8))
        memcpy(&v, m->d + off, 8);
    return v;
}

static uint32_t rd32(const struct img *m, uint64_t off)
{
    uint32_t v = 0;
    if (in_img(m, off, 4))
        memcpy(&v, m->d + off, 4);
    return v;
}

static void wr64(struct img *m, uint64_t off, uint64_t v)
{
    if (in_img(m, off, 8))
        memcpy(m->d + off, &v, 8);
}

static void wr32(struct img *m, uint64_t off, uint32_t v)
{
    if (in_img(m, off, 4))
        memcpy(m->d + off, &v, 4);
}

static void wr16(struct img *m, uint64_t off, uint16_t v)
{
    if (in_img(m, off, 2))
        memcpy(m->d + off, &v, 2);
}

static bool bit_get(const struct img *m, int which, uint64_t page)
{
    uint64_t byte = page >> 3;
    if (!m->bits_ok || byte >= m->bits_size || !in_img(m, m->bit_off[which] + byte, 1))
        return false;
    return (m->d[m->bit_off[which] + byte] >> (page & 7)) & 1;
}

static void bit_put(struct img *m, int which, uint64_t page, bool v)
{
    uint64_t byte = page >> 3;
    if (!m->bits_ok || byte >= m->bits_size || !in_img(m, m->bit_off[which] + byte, 1))
        return;
    uint8_t *b = &m->d[m->bit_off[which] + byte];
    if (v)
        *b = (uint8_t)(*b | (1u << (page & 7)));
    else
        *b = (uint8_t)(*b & ~(1u << (page & 7)));
}

static uint64_t bit_next(const struct img *m, int which, uint64_t from, uint64_t limit)
{
    for (uint64_t p = from; p < limit; p++) {
        if ((p & 63) == 0 && p + 64 <= limit) {
            uint64_t byte = p >> 3;
            if (byte + 8 <= m->bits_size && in_img(m, m->bit_off[which] + byte, 8) &&
                rd64(m, m->bit_off[which] + byte) == 0) {
                p += 63;
                continue;
            }
        }
        if (bit_get(m, which, p))
            return p;
    }
    return UINT64_MAX;
}

static uint64_t page_off(const struct img *m, uint64_t page)
{
    return m->data_off + (page << m->shift);
}

static int state_slot_of(const struct img *m)
{
    int best = -1;
    for (int i = 0; i < 2; i++) {
        struct pm_state s;
        if (!in_img(m, OFF_STATE(i), sizeof s))
            continue;
        memcpy(&s, m->d + OFF_STATE(i), sizeof s);
        if (s.seq != 0 && pm_state_checksum(&s) == s.checksum) {
            uint64_t bs = best < 0 ? 0 : rd64(m, OFF_STATE(best));
            if (best < 0 || s.seq > bs)
                best = i;
        }
    }
    return best < 0 ? 0 : best;
}

static void walk(struct img *m)
{
    m->hdr = m->n >= PM_HEADER_SIZE;
    m->n_runs = m->n_sb = m->n_large = m->n_rtab = m->n_ltab = 0;
    m->bits_ok = false;
    m->img_pages = m->n_pages = m->max_pages = 0;
    if (!m->hdr)
        return;
    memcpy(&m->f, m->d, sizeof m->f);
    m->shift = m->f.page_shift;
    if (m->shift < PM_MIN_PAGE_SHIFT || m->shift > PM_MAX_PAGE_SHIFT)
        m->shift = PM_MAX_PAGE_SHIFT;
    m->page = UINT64_C(1) << m->shift;
    m->data_off = m->f.data_off;
    m->bits_size = m->f.bits_size;
    m->bit_off[B_START] = m->f.start_bits_off;
    m->bit_off[B_END] = m->f.end_bits_off;
    m->bit_off[B_KIND] = m->f.kind_bits_off;
    m->cur = state_slot_of(m);
    m->n_pages = rd64(m, OFF_LIVE_PAGES);
    m->max_pages = m->f.max_pages;
    m->bits_ok = m->bits_size > 0 && m->bits_size <= m->n;
    for (int i = 0; i < 3 && m->bits_ok; i++)
        m->bits_ok = in_img(m, m->bit_off[i], m->bits_size);
    if (m->data_off < m->n && m->data_off >= PM_HEADER_SIZE)
        m->img_pages = (m->n - m->data_off) >> m->shift;
    if (!m->bits_ok)
        return;
    uint64_t limit = min64(min64(m->n_pages, m->img_pages), m->bits_size * 8);
    uint64_t p = 0;
    while (p < limit && m->n_runs < MAX_RUNS) {
        uint64_t s = bit_next(m, B_START, p, limit);
        if (s == UINT64_MAX)
            break;
        uint64_t e = bit_next(m, B_END, s, limit);
        if (e == UINT64_MAX)
            e = s;
        struct run *r = &m->run[m->n_runs++];
        r->first = s;
        r->last = e;
        r->sb = bit_get(m, B_KIND, s) && in_img(m, page_off(m, s), 64) &&
                rd32(m, page_off(m, s)) == PM_SB_MAGIC;
        if (r->sb)
            m->n_sb++;
        else
            m->n_large++;
        p = e + 1;
    }
    uint64_t off = rd64(m, OFF_ROOTS_NEXT);
    while (off != 0 && m->n_rtab < MAX_TABS && in_img(m, off, 32)) {
        bool seen = false;
        for (int i = 0; i < m->n_rtab; i++)
            seen |= m->rtab[i] == off;
        if (seen)
            break;
        m->rtab[m->n_rtab++] = off;
        off = rd64(m, off + offsetof(struct pm_root_table, next_off));
    }
    off = rd64(m, OFF_LANES_NEXT);
    while (off != 0 && m->n_ltab < MAX_TABS && in_img(m, off, 64)) {
        bool seen = false;
        for (int i = 0; i < m->n_ltab; i++)
            seen |= m->ltab[i] == off;
        if (seen)
            break;
        m->ltab[m->n_ltab++] = off;
        off = rd64(m, off + offsetof(struct pm_lane_table, next_off));
    }
}

/* ---- checksums, recomputed with the library's own functions ---- */

static void fix_fixed(struct img *m)
{
    if (m->n < sizeof(struct pm_fixed))
        return;
    struct pm_fixed f;
    memcpy(&f, m->d, sizeof f);
    f.checksum = pm_fixed_checksum(&f);
    memcpy(m->d, &f, sizeof f);
}

static void fix_state(struct img *m, int i)
{
    struct pm_state s;
    if (!in_img(m, OFF_STATE(i), sizeof s))
        return;
    memcpy(&s, m->d + OFF_STATE(i), sizeof s);
    s.checksum = pm_state_checksum(&s);
    memcpy(m->d + OFF_STATE(i), &s, sizeof s);
}

static void fix_sb_at(struct img *m, uint64_t off)
{
    struct pm_sb_header h;
    if (!in_img(m, off, sizeof h))
        return;
    memcpy(&h, m->d + off, sizeof h);
    h.check = pm_sb_check(&h);
    memcpy(m->d + off, &h, sizeof h);
}

/* Trees whose lane records carry a check of their fields (pm_lane_check
 * in layout.h, detected by meson): a record without it reads as idle. */
static void fix_lane_at(struct img *m, uint64_t off)
{
#ifdef PM_FUZZ_LANE_CHECK
    uint64_t op = rd64(m, off) & 0xff;
    if (op == PM_LANE_IDLE || !in_img(m, off, 40))
        return;
    wr64(m, off, op | pm_lane_check(op, rd64(m, off + 8), rd64(m, off + 16),
                                    rd64(m, off + 24), rd64(m, off + 32)) << 8);
#else
    (void)m, (void)off;
#endif
}

static void fix_lanes(struct img *m)
{
    uint64_t n = min64(m->f.n_lanes, 4096);
    for (uint64_t i = 0; i < n; i++)
        fix_lane_at(m, m->f.lanes_off + i * 64);
    for (int t = 0; t < m->n_ltab; t++)
        for (uint64_t i = 0; i < 64; i++)
            fix_lane_at(m, m->ltab[t] + 64 + i * 64);
    fix_lane_at(m, OFF_CHUNK_LANE);
}

static void fix_all(struct img *m, struct rng *r)
{
    if (!m->hdr)
        return;
    if (chance(r, 93))
        fix_fixed(m);
    for (int i = 0; i < 2; i++)
        if (chance(r, 92))
            fix_state(m, i);
    walk(m);
    for (int i = 0; i < m->n_runs; i++)
        if (m->run[i].sb && chance(r, 96))
            fix_sb_at(m, page_off(m, m->run[i].first));
    if (chance(r, 92))
        fix_lanes(m);
}

/* ---- picking places ---- */

static const struct run *pick_run(const struct img *m, struct rng *r, int want_sb)
{
    if (m->n_runs == 0)
        return NULL;
    for (int tries = 0; tries < 8; tries++) {
        const struct run *x = &m->run[below(r, (uint64_t)m->n_runs)];
        if (want_sb < 0 || (int)x->sb == want_sb)
            return x;
    }
    return NULL;
}

static uint64_t sb_hdr_field(const struct img *m, uint64_t sboff, size_t field, size_t w)
{
    return w == 2 ? (rd32(m, sboff + field) & 0xffffu) : rd32(m, sboff + field);
}

#define SBF(m, off, f) sb_hdr_field((m), (off), offsetof(struct pm_sb_header, f), \
                                     sizeof(((struct pm_sb_header *)0)->f))

/* A block's offset in a superblock run: block idx, per the header. */
static uint64_t sb_block_off(const struct img *m, uint64_t sboff, uint64_t idx)
{
    return sboff + SBF(m, sboff, data_start) + idx * SBF(m, sboff, block_size);
}

static bool sb_alloc_bit(const struct img *m, uint64_t sboff, uint64_t idx)
{
    uint64_t w = rd64(m, sboff + 64 + (idx >> 6) * 8);
    return (w >> (idx & 63)) & 1;
}

/* An offset that is interesting as a block, a table or a location. */
static uint64_t pick_off(const struct img *m, struct rng *r)
{
    const struct run *x;
    switch (below(r, 16)) {
    case 0:
        return 0;
    case 1:
    case 2:
        if ((x = pick_run(m, r, 0)) != NULL)
            return page_off(m, x->first);
        break;
    case 3:
    case 4:
        if ((x = pick_run(m, r, 1)) != NULL) {
            uint64_t sboff = page_off(m, x->first);
            uint64_t nb = SBF(m, sboff, n_blocks);
            uint64_t idx = below(r, nb ? nb : 1);
            for (int t = 0; t < 16 && nb && !sb_alloc_bit(m, sboff, idx); t++)
                idx = below(r, nb);
            return sb_block_off(m, sboff, idx);
        }
        break;
    case 5:
        if ((x = pick_run(m, r, 1)) != NULL) {
            uint64_t sboff = page_off(m, x->first);
            uint64_t nb = SBF(m, sboff, n_blocks);
            return sb_block_off(m, sboff, below(r, nb + 2));
        }
        break;
    case 6:
        if ((x = pick_run(m, r, -1)) != NULL)
            return page_off(m, x->first) + (below(r, 3) + 1) * 8;   /* interior */
        break;
    case 7:
        if (m->n_rtab && chance(r, 50))
            return m->rtab[below(r, (uint64_t)m->n_rtab)];
        if (m->n_ltab)
            return m->ltab[below(r, (uint64_t)m->n_ltab)];
        break;
    case 8: {
        static const uint64_t hdr_words[] = {OFF_ROOTS_NEXT, OFF_ROOT0, OFF_LANES_NEXT,
                                             OFF_LIVE_PAGES, OFF_STATE(0) + 8, 252, 16};
        if (chance(r, 40))
            return hdr_words[below(r, sizeof hdr_words / sizeof *hdr_words)];
        if (chance(r, 50))
            return m->f.roots_off + below(r, m->f.roots_cap + 1) * 16 + 8 * below(r, 2);
        return m->f.lanes_off + below(r, m->f.n_lanes + 1) * 64 + 8 * below(r, 4);
    }
    case 9:
        return page_off(m, below(r, m->n_pages + 2));
    case 10:
        return below(r, m->n + 1) & ~UINT64_C(7);
    case 11: {
        uint64_t v[] = {m->n, page_off(m, m->n_pages), page_off(m, m->max_pages),
                        page_off(m, m->n_pages) - 8, m->data_off - 8, m->data_off};
        return v[below(r, sizeof v / sizeof *v)];
    }
    case 12:
        return rnd(r);
    case 13:
        return (UINT64_C(1) << below(r, 64)) + below(r, 3) * 8;
    case 14:
        return pick_off(m, r) + 1 + below(r, 7);     /* misaligned */
    default:
        break;
    }
    return m->data_off + (below(r, m->img_pages + 1) << m->shift) + 16 * below(r, 8);
}

static uint64_t pick_page(const struct img *m, struct rng *r)
{
    const struct run *x;
    switch (below(r, 8)) {
    case 0:
        if ((x = pick_run(m, r, -1)) != NULL)
            return x->first;
        break;
    case 1:
        if ((x = pick_run(m, r, -1)) != NULL)
            return x->last + below(r, 3);
        break;
    case 2:
        /* past the committed end, inside the maximum */
        if (m->max_pages > m->n_pages)
            return m->n_pages + below(r, min64(m->max_pages - m->n_pages, 1u << 20));
        return m->n_pages + below(r, 64);
    case 3:
        return below(r, m->bits_size * 8 + 1);
    default:
        break;
    }
    return below(r, m->n_pages + 1);
}

/* A table link or a word of a lane record: the header's links, an
 * overflow table's next_off, a lane's tx_off (in the metadata, in a lane
 * table, the chunk lane's) or another field of one. */
static uint64_t pick_link(const struct img *m, struct rng *r)
{
    switch (below(r, 6)) {
    case 0:
        return chance(r, 50) ? OFF_LANES_NEXT : OFF_ROOTS_NEXT;
    case 1:
        if (m->n_ltab)
            return m->ltab[below(r, (uint64_t)m->n_ltab)] + 16;
        break;
    case 2:
        if (m->n_rtab)
            return m->rtab[below(r, (uint64_t)m->n_rtab)] + 16;
        break;
    case 3:
        if (m->n_ltab)
            return m->ltab[below(r, (uint64_t)m->n_ltab)] + 64 + below(r, 64) * 64 +
                   8 * below(r, 6);
        break;
    case 4:
        return OFF_CHUNK_LANE + 8 * below(r, 6);
    default:
        break;
    }
    return m->f.lanes_off + below(r, m->f.n_lanes ? m->f.n_lanes : 1) * 64 + 40;
}

/* A location a lane may name: a root value word, root 0, a word in a live
 * block, or something odd. */
static uint64_t pick_dest(const struct img *m, struct rng *r)
{
    switch (below(r, 6)) {
    case 0:
        return OFF_ROOT0;
    case 1:
        return m->f.roots_off + below(r, m->f.roots_cap) * 16 + 8;
    case 2:
        if (m->n_rtab) {
            uint64_t t = m->rtab[below(r, (uint64_t)m->n_rtab)];
            return t + 32 + below(r, 64) * 16 + 8;
        }
        break;
    case 3:
        return pick_off(m, r) + 8 * below(r, 4);
    case 4:
        if (chance(r, 50))
            return pick_link(m, r);
        break;
    default:
        break;
    }
    return pick_off(m, r);
}

/* ======================================================================== */
/* Mutations.  Each changes the image; fix_all() then recomputes checksums  */
/* (most of the time).  Size changes go through set_size().                */

static void set_size(struct img *m, uint64_t n)
{
    if (n > m->cap)
        n = m->cap;
    if (n > m->n)
        memset(m->d + m->n, 0, n - m->n);
    m->n = n;
}

static void set_state_pages(struct img *m, int slot, uint64_t np)
{
    uint64_t so = OFF_STATE(slot);
    wr64(m, so + offsetof(struct pm_state, n_pages), np);
    wr64(m, so + offsetof(struct pm_state, file_size), m->f.data_off + (np << m->shift));
}

static uint64_t page_unit(const struct img *m)
{
    return PM_DATA_ALIGN >> m->shift;
}

static void mut_live(struct img *m, struct rng *r)
{
    switch (below(r, 5)) {
    case 0: {
        uint64_t u = page_unit(m), np = m->n_pages;
        uint64_t st = rd64(m, OFF_STATE(m->cur) + offsetof(struct pm_state, n_pages));
        switch (below(r, 8)) {
        case 0: np = st; break;
        case 1: np = m->n_pages + u * (1 + below(r, 4)); break;
        case 2: np = m->n_pages > u ? m->n_pages - u : 0; break;
        case 3: np = m->max_pages; break;
        case 4: np = m->img_pages; break;
        case 5: np = rnd(r); break;
        case 6: np = m->n_pages + 1; break;
        default: np = below(r, m->max_pages + 2); break;
        }
        wr64(m, OFF_LIVE_PAGES, np);
        if (chance(r, 60)) {
            /* coherent: the file holds the pages; the state is not ahead */
            uint64_t want = m->f.data_off + (np << m->shift);
            if (np <= (UINT64_C(1) << 40) && want <= m->cap && want >= PM_HEADER_SIZE)
                set_size(m, want);
            if (np < st)
                set_state_pages(m, m->cur, np);
        }
        break;
    }
    case 1:
        wr64(m, OFF_ROOTS_NEXT, pick_off(m, r));
        break;
    case 2:
        wr64(m, OFF_LANES_NEXT, pick_off(m, r));
        break;
    case 3:
        wr64(m, OFF_ROOT0, pick_off(m, r));
        break;
    default:
        wr64(m, OFF_LIVE + offsetof(struct pm_live, reserved) + 8 * below(r, 12), rnd(r));
        break;
    }
}

static void mut_state(struct img *m, struct rng *r)
{
    int slot = chance(r, 75) ? m->cur : 1 - m->cur;
    uint64_t so = OFF_STATE(slot);
    switch (below(r, 12)) {
    case 0: {
        uint64_t other = rd64(m, OFF_STATE(1 - slot));
        uint64_t v[] = {other + 1, other, other - 1, 0, rnd(r), UINT64_MAX};
        wr64(m, so, v[below(r, 6)]);
        break;
    }
    case 1: {
        uint64_t np = chance(r, 50) ? m->n_pages : below(r, m->max_pages + 2);
        if (chance(r, 70))
            set_state_pages(m, slot, np);
        else
            wr64(m, so + offsetof(struct pm_state, n_pages), np);
        break;
    }
    case 2:
        wr64(m, so + offsetof(struct pm_state, file_size),
             chance(r, 50) ? m->n : rnd(r));
        break;
    case 3:
        wr32(m, so + offsetof(struct pm_state, clean), (uint32_t)below(r, 3));
        break;
    case 4:
        wr32(m, so + offsetof(struct pm_state, durability),
             chance(r, 80) ? (uint32_t)below(r, 5) : (uint32_t)rnd(r));
        break;
    case 5:
        wr32(m, so + offsetof(struct pm_state, n_bases),
             chance(r, 80) ? (uint32_t)below(r, PM_N_BASES + 2) : (uint32_t)rnd(r));
        break;
    case 6:
    case 7: {
        uint64_t i = below(r, PM_N_BASES);
        uint64_t ro = so + offsetof(struct pm_state, bases) + i * sizeof(struct pm_base_rec);
        uint64_t base;
        switch (below(r, 6)) {
        case 0: base = 0; break;
        case 1: base = (UINT64_C(0x7f0000000000) + (below(r, 1u << 20) << 21)); break;
        case 2: base = below(r, 64) << 21; break;
        case 3: base = rnd(r); break;
        case 4: base = UINT64_MAX - below(r, 1u << 20); break;
        default: base = (UINT64_C(0x500000000000) + (below(r, 1u << 16) << 21)); break;
        }
        uint64_t size;
        switch (below(r, 4)) {
        case 0: size = rnd(r); break;
        case 1: size = UINT64_MAX; break;
        case 2: size = m->n; break;
        default: size = page_off(m, m->max_pages); break;
        }
        if (chance(r, 70))
            wr64(m, ro, base);
        if (chance(r, 70))
            wr64(m, ro + 8, size);
        if (chance(r, 50))
            wr64(m, ro + 16, chance(r, 50) ? below(r, 20) : rnd(r));
        break;
    }
    case 8:
        wr64(m, so + offsetof(struct pm_state, hwm_pages),
             chance(r, 50) ? rnd(r) : below(r, m->max_pages + 8));
        break;
    case 9:
        wr64(m, so + offsetof(struct pm_state, generation), rnd(r) % 64);
        break;
    case 10:
        /* the other slot becomes a newer copy of this one */
        if (in_img(m, OFF_STATE(1), sizeof(struct pm_state))) {
            memmove(m->d + OFF_STATE(1 - slot), m->d + so, sizeof(struct pm_state));
            wr64(m, OFF_STATE(1 - slot), rd64(m, so) + 1);
        }
        break;
    default:
        wr32(m, so + offsetof(struct pm_state, n_opens), (uint32_t)rnd(r));
        break;
    }
}

/* Rare: the fixed header (whose checksum is recomputed), mostly values the
 * validation accepts, so that geometry changes reach the heap. */
static void mut_fixed(struct img *m, struct rng *r)
{
    switch (below(r, 9)) {
    case 0:
        wr32(m, offsetof(struct pm_fixed, flags), m->f.flags ^ PM_FLAG_GROWABLE);
        break;
    case 1: {
        uint64_t mp = chance(r, 60) ? below(r, m->bits_size * 8 + 1) : rnd(r);
        if (chance(r, 60))
            mp = mp / page_unit(m) * page_unit(m);
        wr64(m, offsetof(struct pm_fixed, max_pages), mp);
        break;
    }
    case 2: {
        uint32_t c = m->f.roots_cap;
        uint32_t v[] = {c / 2, c * 2, c + 1, c - 1, 1, 16};
        wr32(m, offsetof(struct pm_fixed, roots_cap), v[below(r, 6)]);
        break;
    }
    case 3: {
        uint32_t c = m->f.n_lanes;
        uint32_t v[] = {c / 2, c * 2, c + 1, c - 1, 1, 4096};
        wr32(m, offsetof(struct pm_fixed, n_lanes), v[below(r, 6)]);
        break;
    }
    case 4:
        wr32(m, offsetof(struct pm_fixed, sb_size),
             chance(r, 80) ? (uint32_t)1u << (8 + below(r, 13)) : (uint32_t)rnd(r));
        break;
    case 5:
        m->d[offsetof(struct pm_fixed, page_shift)] = (uint8_t)(7 + below(r, 7));
        break;
    case 6: {
        static const size_t offs[] = {
            offsetof(struct pm_fixed, start_bits_off), offsetof(struct pm_fixed, end_bits_off),
            offsetof(struct pm_fixed, kind_bits_off), offsetof(struct pm_fixed, roots_off),
            offsetof(struct pm_fixed, lanes_off), offsetof(struct pm_fixed, bits_size)};
        size_t o = offs[below(r, 6)];
        uint64_t v = rd64(m, o);
        uint64_t nv[] = {v + 8, v - 8, v + 64, v - 64, v * 2, rnd(r)};
        wr64(m, o, nv[below(r, 6)]);
        break;
    }
    case 7: {
        uint64_t v = m->f.data_off + (chance(r, 50) ? 4096 : -(uint64_t)4096);
        wr64(m, offsetof(struct pm_fixed, data_off), v);
        if (chance(r, 80))
            wr64(m, offsetof(struct pm_fixed, meta_size), v);
        break;
    }
    default:
        wr32(m, offsetof(struct pm_fixed, header_size), chance(r, 50) ? 1024 : (uint32_t)rnd(r));
        break;
    }
}

static void mut_bits(struct img *m, struct rng *r)
{
    int which = (int)below(r, 3);
    switch (below(r, 10)) {
    case 0:
    case 1: {
        uint64_t p = pick_page(m, r);
        bit_put(m, which, p, !bit_get(m, which, p));
        break;
    }
    case 2: {
        /* a new run over some pages, maybe a superblock */
        uint64_t p = pick_page(m, r), len = 1 + below(r, 16);
        bit_put(m, B_START, p, true);
        bit_put(m, B_END, p + len - 1, true);
        if (chance(r, 30))
            bit_put(m, B_KIND, p, true);
        break;
    }
    case 3: {
        const struct run *x = pick_run(m, r, -1);
        if (x) {
            /* free the run, or cut its end off, or move its end */
            int k = (int)below(r, 3);
            if (k == 0)
                bit_put(m, B_START, x->first, false);
            else if (k == 1)
                bit_put(m, B_END, x->last, false);
            else {
                bit_put(m, B_END, x->last, false);
                bit_put(m, B_END, x->first + below(r, (x->last - x->first) + 4), true);
            }
        }
        break;
    }
    case 4: {
        const struct run *x = pick_run(m, r, -1);
        if (x)
            bit_put(m, B_KIND, x->first, !x->sb);
        break;
    }
    case 5: {
        /* bits past the committed end */
        uint64_t hi = m->bits_size * 8;
        if (hi > m->n_pages) {
            uint64_t p = m->n_pages + below(r, min64(hi - m->n_pages, 256));
            bit_put(m, which, p, true);
            if (chance(r, 50))
                bit_put(m, B_END, p + below(r, 4), true);
        }
        break;
    }
    case 6: {
        /* a START inside another run (overlap) */
        const struct run *x = pick_run(m, r, -1);
        if (x && x->last > x->first)
            bit_put(m, B_START, x->first + 1 + below(r, x->last - x->first), true);
        break;
    }
    case 7: {
        uint64_t wi = below(r, m->bits_size / 8 + 1);
        uint64_t v[] = {0, ~UINT64_C(0), rnd(r), UINT64_C(1) << below(r, 64)};
        wr64(m, m->bit_off[which] + wi * 8, v[below(r, 4)]);
        break;
    }
    case 8: {
        /* an orphan END or KIND (crash leftovers, which recovery clears) */
        uint64_t p = below(r, m->n_pages + 1);
        bit_put(m, chance(r, 50) ? B_END : B_KIND, p, true);
        break;
    }
    default: {
        /* join two neighbouring runs: drop the END between them */
        if (m->n_runs >= 2) {
            int i = (int)below(r, (uint64_t)m->n_runs - 1);
            bit_put(m, B_END, m->run[i].last, false);
            bit_put(m, B_START, m->run[i + 1].first, chance(r, 50));
        }
        break;
    }
    }
}

static void mut_sb(struct img *m, struct rng *r)
{
    const struct run *x = pick_run(m, r, 1);
    if (x == NULL) {
        mut_bits(m, r);
        return;
    }
    uint64_t so = page_off(m, x->first);
    uint64_t nw = SBF(m, so, n_words), nb = SBF(m, so, n_blocks);
    switch (below(r, 12)) {
    case 0:
        wr16(m, so + offsetof(struct pm_sb_header, cls),
             (uint16_t)(chance(r, 70) ? SBF(m, so, cls) + below(r, 3) - 1 : rnd(r)));
        break;
    case 1:
        wr16(m, so + offsetof(struct pm_sb_header, n_words),
             (uint16_t)(chance(r, 70) ? nw + below(r, 3) - 1 : rnd(r)));
        break;
    case 2:
        wr32(m, so + offsetof(struct pm_sb_header, n_blocks),
             (uint32_t)(chance(r, 70) ? nb + below(r, 5) - 2 : rnd(r)));
        break;
    case 3:
        wr32(m, so + offsetof(struct pm_sb_header, block_size),
             (uint32_t)(chance(r, 60) ? SBF(m, so, block_size) + 16 * below(r, 3) - 16 : rnd(r)));
        break;
    case 4:
        wr32(m, so + offsetof(struct pm_sb_header, n_pages),
             (uint32_t)(chance(r, 70) ? SBF(m, so, n_pages) + below(r, 5) - 2 : rnd(r)));
        break;
    case 5:
        wr32(m, so + offsetof(struct pm_sb_header, data_start),
             (uint32_t)(chance(r, 70) ? SBF(m, so, data_start) + 16 * below(r, 5) - 32 : rnd(r)));
        break;
    case 6:
    case 7: {
        /* an allocation or remote bit, in or past the blocks */
        uint64_t idx = below(r, nb + 8);
        uint64_t wo = so + 64 + (chance(r, 60) ? 0 : nw * 8) + (idx >> 6) * 8;
        if (wo + 8 <= page_off(m, x->last + 1))
            wr64(m, wo, rd64(m, wo) ^ (UINT64_C(1) << (idx & 63)));
        break;
    }
    case 8: {
        /* bits past the last block in the last word */
        if (nw > 0 && nw < 4096) {
            uint64_t wo = so + 64 + (chance(r, 50) ? 0 : nw * 8) + (nw - 1) * 8;
            wr64(m, wo, rd64(m, wo) | (UINT64_C(1) << 63));
        }
        break;
    }
    case 9: {
        /* a remote-free bit on a live block: a pending cross-thread free */
        for (int t = 0; t < 16 && nb; t++) {
            uint64_t idx = below(r, nb);
            if (sb_alloc_bit(m, so, idx) || chance(r, 10)) {
                uint64_t wo = so + 64 + nw * 8 + (idx >> 6) * 8;
                wr64(m, wo, rd64(m, wo) | (UINT64_C(1) << (idx & 63)));
                break;
            }
        }
        break;
    }
    case 10: {
        /* the superblock cloned onto another run or onto free pages */
        uint64_t len = x->last - x->first + 1;
        uint64_t dst = chance(r, 50) && m->n_runs ? pick_run(m, r, -1)->first : pick_page(m, r);
        uint64_t src = so, doff = page_off(m, dst);
        if (dst != x->first && in_img(m, doff, len << m->shift)) {
            memmove(m->d + doff, m->d + src, len << m->shift);
            bit_put(m, B_START, dst, true);
            bit_put(m, B_KIND, dst, true);
            bit_put(m, B_END, dst + len - 1, true);
        }
        break;
    }
    default:
        wr32(m, so + offsetof(struct pm_sb_header, magic),
             chance(r, 50) ? PM_SB_MAGIC ^ 1u : (uint32_t)rnd(r));
        break;
    }
}

/* A root slot of table 0 or of an overflow table. */
static uint64_t pick_slot(const struct img *m, struct rng *r)
{
    if (m->n_rtab && chance(r, 35)) {
        uint64_t t = m->rtab[below(r, (uint64_t)m->n_rtab)];
        uint64_t cap = rd64(m, t + 8);
        return t + 32 + below(r, min64(cap ? cap : 1, 4096)) * 16;
    }
    return m->f.roots_off + below(r, m->f.roots_cap ? m->f.roots_cap : 1) * 16;
}

static void mut_roots(struct img *m, struct rng *r)
{
    uint64_t s = pick_slot(m, r);
    switch (below(r, 6)) {
    case 0:
        wr64(m, s + 8, pick_off(m, r));
        break;
    case 1: {
        uint64_t k[] = {0, 1, rnd(r), rd64(m, pick_slot(m, r)), below(r, 64)};
        wr64(m, s, k[below(r, 5)]);
        break;
    }
    case 2:
        /* a new root */
        wr64(m, s, 1 + below(r, 1000));
        wr64(m, s + 8, pick_off(m, r));
        break;
    case 3:
        /* two tags naming one block */
        wr64(m, s + 8, rd64(m, pick_slot(m, r) + 8));
        if (rd64(m, s) == 0)
            wr64(m, s, 5000 + below(r, 100));
        break;
    case 4:
        wr64(m, s, 0);
        wr64(m, s + 8, chance(r, 50) ? 0 : pick_off(m, r));
        break;
    default:
        wr64(m, OFF_ROOT0, pick_off(m, r));
        break;
    }
}

static void mut_rtab(struct img *m, struct rng *r)
{
    if (m->n_rtab == 0 || chance(r, 25)) {
        /* make a table: in a large run if there is one */
        const struct run *x = pick_run(m, r, 0);
        uint64_t off = x ? page_off(m, x->first) : pick_off(m, r) & ~UINT64_C(63);
        uint64_t room = in_img(m, off, 32) ? (m->n - off - 32) / 16 : 0;
        uint64_t cap = 4096;
        if (chance(r, 50))
            while (cap > room && cap > 1)
                cap /= 2;
        wr64(m, off, PM_ROOT_TABLE_MAGIC);
        wr64(m, off + 8, cap);
        wr64(m, off + 16, 0);
        if (chance(r, 50) && in_img(m, off + 32, 32)) {
            wr64(m, off + 32 + 16 * below(r, min64(cap, 64)), 7000 + below(r, 100));
        }
        uint64_t link = m->n_rtab && chance(r, 50) ? m->rtab[m->n_rtab - 1] + 16 : OFF_ROOTS_NEXT;
        wr64(m, link, off);
        return;
    }
    uint64_t t = m->rtab[below(r, (uint64_t)m->n_rtab)];
    switch (below(r, 5)) {
    case 0:
        wr64(m, t, chance(r, 50) ? PM_ROOT_TABLE_MAGIC : PM_ROOT_TABLE_MAGIC ^ 1);
        break;
    case 1: {
        uint64_t c = rd64(m, t + 8);
        uint64_t v[] = {0, 1, 3, c * 2, c * 4, c / 2, UINT64_C(1) << 40,
                        UINT64_C(1) << 62, UINT64_MAX, c + 1, 8192, 65536};
        wr64(m, t + 8, v[below(r, sizeof v / sizeof *v)]);
        break;
    }
    case 2: {
        /* cycles and self links */
        uint64_t v[] = {t, m->rtab[0], m->rtab[below(r, (uint64_t)m->n_rtab)], pick_off(m, r),
                        m->f.roots_off, OFF_ROOTS_NEXT - 16, m->n & ~UINT64_C(63),
                        (m->n - 32) & ~UINT64_C(63), page_off(m, m->max_pages),
                        page_off(m, m->n_pages) - 64, m->n_ltab ? m->ltab[0] : t,
                        t + 64, m->f.lanes_off};
        wr64(m, t + 16, v[below(r, sizeof v / sizeof *v)]);
        break;
    }
    case 3:
        wr64(m, t + 32 + 16 * below(r, 64) + 8, pick_off(m, r));
        break;
    default:
        wr64(m, t + 32 + 16 * below(r, 64), rnd(r));
        break;
    }
}

static uint64_t pick_lane(const struct img *m, struct rng *r)
{
    if (chance(r, 12))
        return OFF_CHUNK_LANE;
    if (m->n_ltab && chance(r, 35)) {
        uint64_t t = m->ltab[below(r, (uint64_t)m->n_ltab)];
        return t + 64 + below(r, 64) * 64;
    }
    return m->f.lanes_off + below(r, m->f.n_lanes ? m->f.n_lanes : 1) * 64;
}

static void mut_lanes(struct img *m, struct rng *r)
{
    uint64_t l = pick_lane(m, r);
    switch (below(r, 7)) {
    case 0:
    case 1: {
        /* a whole record that looks like a publishing call in flight */
        uint64_t op = 1 + below(r, 3);
        wr64(m, l + 8, pick_dest(m, r));
        wr64(m, l + 16, pick_off(m, r));
        wr64(m, l + 24, op == PM_LANE_REALLOC || chance(r, 20) ? pick_off(m, r) : 0);
        wr64(m, l + 32, below(r, 70000));
        wr64(m, l, op | (below(r, 1000) << 8));
        break;
    }
    case 2: {
        /* coherent: a root's value word and its block */
        uint64_t s = pick_slot(m, r);
        uint64_t v = rd64(m, s + 8);
        wr64(m, l + 8, s + 8);
        wr64(m, l + 16, chance(r, 60) && v ? v : pick_off(m, r));
        wr64(m, l + 24, pick_off(m, r));
        wr64(m, l, 1 + below(r, 3));
        break;
    }
    case 3: {
        uint64_t v[] = {0, 4, 5, 255, rnd(r), 0x100, 2};
        wr64(m, l, v[below(r, sizeof v / sizeof *v)]);
        break;
    }
    case 4:
        wr64(m, l + 8 * (1 + below(r, 3)), pick_off(m, r));
        break;
    case 5:
        /* dest pointing at header words that must never be written */
        wr64(m, l + 8, (uint64_t[]){OFF_LIVE_PAGES, OFF_STATE(0), 248, 0, OFF_ROOTS_NEXT,
                                    OFF_LANES_NEXT, m->f.start_bits_off,
                                    m->f.roots_off}[below(r, 8)]);
        wr64(m, l + 16, pick_off(m, r));
        wr64(m, l, 1 + below(r, 3));
        break;
    default: {
        /* an overflow lane table */
        if (m->n_ltab == 0 || chance(r, 30)) {
            const struct run *x = pick_run(m, r, 0);
            uint64_t off = x ? page_off(m, x->first) : pick_off(m, r) & ~UINT64_C(63);
            if (chance(r, 25) && (x = pick_run(m, r, -1)) != NULL) {
                /* linked before its commit (publish.c chunk_add_unlaned):
                 * in the pages after a run, free or not, at times with
                 * END and KIND bits of no run among them; or in a free
                 * block of a superblock */
                uint64_t p = x->last + 1 + below(r, 2);
                off = page_off(m, p);
                if (chance(r, 30))
                    bit_put(m, 1, p + below(r, 3), true);
                if (chance(r, 20))
                    bit_put(m, 2, p, true);
                if (x->sb && chance(r, 40)) {
                    uint64_t sboff = page_off(m, x->first);
                    uint64_t nb = SBF(m, sboff, n_blocks), idx = below(r, nb ? nb : 1);
                    for (int t = 0; t < 16 && nb && sb_alloc_bit(m, sboff, idx); t++)
                        idx = below(r, nb);
                    off = sb_block_off(m, sboff, idx);
                }
            }
            wr64(m, off, PM_LANE_TABLE_MAGIC);
            wr64(m, off + 8, chance(r, 80) ? 64 : rnd(r) % 200);
            wr64(m, off + 16, 0);
            uint64_t link = m->n_ltab && chance(r, 50) ? m->ltab[m->n_ltab - 1] + 16
                                                       : OFF_LANES_NEXT;
            wr64(m, link, off);
        } else {
            uint64_t t = m->ltab[below(r, (uint64_t)m->n_ltab)];
            switch (below(r, 3)) {
            case 0:
                wr64(m, t + 16, (uint64_t[]){t, m->ltab[0], pick_off(m, r), m->n & ~UINT64_C(63),
                                             page_off(m, m->n_pages), page_off(m, m->max_pages),
                                             m->n_rtab ? m->rtab[0] : t, t + 64,
                                             m->ltab[m->n_ltab - 1], t + 4096}[below(r, 10)]);
                break;
            case 1:
                wr64(m, t + 8, (uint64_t[]){0, 63, 65, 128, rnd(r)}[below(r, 5)]);
                break;
            default:
                wr64(m, t, PM_LANE_TABLE_MAGIC ^ (chance(r, 50) ? 1 : 0));
                break;
            }
        }
        break;
    }
    }
}

/* ---- transaction logs (tx.c): found from the lanes' tx_off ---- */

#define MAX_LOGS 16
#define MAX_ENTS 64
#define ENT_SIZE ((uint64_t)sizeof(struct pm_txent))

/* The logs the lanes name (heads inside the image), at most MAX_LOGS. */
static int find_logs(const struct img *m, uint64_t *logs, uint64_t *lanes)
{
    int n = 0;
    uint64_t nl = m->f.n_lanes < 4096 ? m->f.n_lanes : 4096;
    for (int t = -2; t < m->n_ltab && n < MAX_LOGS; t++) {
        uint64_t first = t == -2 ? OFF_CHUNK_LANE : t < 0 ? m->f.lanes_off : m->ltab[t] + 64;
        uint64_t count = t == -2 ? 1 : t < 0 ? nl : 64;
        for (uint64_t i = 0; i < count && n < MAX_LOGS; i++) {
            uint64_t l = first + i * sizeof(struct pm_lane);
            uint64_t at = l + offsetof(struct pm_lane, tx_off);
            if (!in_img(m, at, 8))
                break;
            uint64_t off = rd64(m, at);
            /* the library reads a log only at a multiple of 64 */
            if (off == 0 || off % 64 != 0 || !in_img(m, off, sizeof(struct pm_txlog)))
                continue;
            uint64_t magic = rd64(m, off);
            if (!pm_txlog_two_streams(magic) && magic != PM_TXLOG_MAGIC_V1)
                continue;
            lanes[n] = l;
            logs[n++] = off;
        }
    }
    return n;
}

/* The entries of generation gen in the log at off (JUMPs followed), that
 * check out and lie inside the image: their offsets in ents, at most
 * MAX_ENTS; *tail where the next one would go. */
static int log_entries(const struct img *m, uint64_t off, uint64_t gen, uint64_t *ents,
                       uint64_t *tail, uint64_t *tail_end)
{
    struct pm_txlog lg;
    memcpy(&lg, m->d + off, sizeof lg);
    uint64_t at, end;
    if (lg.size > m->n) {
        *tail = *tail_end = 0;
        return 0;
    }
    pm_txlog_stream(&lg, off, gen, &at, &end);
    int n = 0;
    for (int steps = 0; steps < 4 * MAX_ENTS && n < MAX_ENTS; steps++) {
        /* entries lie on 8 bytes in any log the library reads (a JUMP the
         * mutator aimed anywhere may say otherwise): the check below reads
         * words in place */
        if (at % 8 != 0 || at + ENT_SIZE > end || !in_img(m, at, ENT_SIZE))
            break;
        struct pm_txent e;
        memcpy(&e, m->d + at, sizeof e);
        uint64_t kind = e.kind_len & 0xff, len = e.kind_len >> 8;
        uint64_t words = kind == PM_TXE_SNAPSHOT || kind == PM_TXE_PAGE ? (len + 7) / 8 : 0;
        if (words > m->n / 8 || !in_img(m, at + ENT_SIZE, words * 8) ||
            at + ENT_SIZE + words * 8 > end ||
            e.check != pm_txent_check(gen, pm_txlog_key(&lg, off, gen), e.kind_len, e.off,
                                      (const uint64_t *)(const void *)(m->d + at + ENT_SIZE),
                                      words))
            break;
        ents[n++] = at;
        if (kind == PM_TXE_JUMP) {
            if (!in_img(m, e.off, len) || len < ENT_SIZE)
                break;
            at = e.off;
            end = e.off + len - ENT_SIZE;
            continue;
        }
        at += ENT_SIZE + words * 8;
    }
    *tail = at % 8 == 0 ? at : 0;
    *tail_end = end;
    return n;
}

/* Writes an entry's head at at with its check right over the words after
 * it (already in the image). */
static void put_entry(struct img *m, uint64_t at, uint64_t gen, uint64_t key, uint64_t kind,
                      uint64_t len, uint64_t off)
{
    uint64_t words = kind == PM_TXE_SNAPSHOT || kind == PM_TXE_PAGE ? (len + 7) / 8 : 0;
    if (at % 8 != 0 || !in_img(m, at, ENT_SIZE + words * 8))
        return;
    struct pm_txent e;
    memset(&e, 0, sizeof e);
    e.kind_len = kind | len << 8;
    e.off = off;
    e.check = pm_txent_check(gen, key, e.kind_len, off,
                             (const uint64_t *)(const void *)(m->d + at + ENT_SIZE), words);
    memcpy(m->d + at, &e, sizeof e);
}

/* A log's state, its entries (their kind, place, length and bytes, the
 * check made right again), a new entry at the end of its stream (a page
 * image of a metadata page changed, a snapshot over a block the library
 * keeps, an allocation, a free, a JUMP), or a lane naming a log. */
static void mut_txlog(struct img *m, struct rng *r)
{
    uint64_t logs[MAX_LOGS], lanes[MAX_LOGS];
    int nlogs = find_logs(m, logs, lanes);
    if (nlogs == 0) {
        if (chance(r, 30))
            wr64(m, m->f.lanes_off + offsetof(struct pm_lane, tx_off), pick_off(m, r));
        return;
    }
    int which = (int)below(r, (uint64_t)nlogs);
    uint64_t log = logs[which];
    uint64_t state_at = log + offsetof(struct pm_txlog, state);
    uint64_t state = rd64(m, state_at), gen = state >> 8;
    struct pm_txlog lg;
    memcpy(&lg, m->d + log, sizeof lg);
    uint64_t key = pm_txlog_key(&lg, log, gen);
    uint64_t ents[MAX_ENTS], tail, tail_end;
    int n = log_entries(m, log, gen, ents, &tail, &tail_end);
    uint64_t os_page = 4096;
    switch (below(r, 8)) {
    case 0: {
        uint64_t phase[] = {PM_TX_IDLE, PM_TX_ACTIVE, PM_TX_COMMITTED,
                            PM_TX_ACTIVE | PM_TX_PREV, PM_TX_COMMITTED | PM_TX_PREV, 3, 0x7f};
        uint64_t g = chance(r, 70) ? gen : gen + below(r, 3) - 1;
        wr64(m, state_at, phase[below(r, sizeof phase / sizeof *phase)] | g << 8);
        break;
    }
    case 1:
    case 2: {
        /* an entry's bytes (a page image: where a header would be) */
        if (n == 0)
            break;
        uint64_t at = ents[below(r, (uint64_t)n)];
        struct pm_txent e;
        memcpy(&e, m->d + at, sizeof e);
        uint64_t kind = e.kind_len & 0xff, len = e.kind_len >> 8;
        if ((kind != PM_TXE_SNAPSHOT && kind != PM_TXE_PAGE) || len == 0)
            break;
        uint64_t k = below(r, 4);
        uint64_t pos = k == 0 ? 0 : below(r, len);
        if (kind == PM_TXE_PAGE && k == 1) {
            /* where a superblock's header or a bitmap word would sit */
            uint64_t rel = (e.off >= m->data_off ? e.off - m->data_off : 0) & (m->page - 1);
            pos = (m->page - rel) % m->page;
            if (pos >= len)
                pos = 0;
            pos += below(r, 64);
        }
        if (pos + 8 <= len)
            wr64(m, at + ENT_SIZE + pos,
                 chance(r, 50) ? rnd(r) : rd64(m, at + ENT_SIZE + pos) ^ (UINT64_C(1) << below(r, 64)));
        put_entry(m, at, gen, key, kind, len, e.off);
        break;
    }
    case 3: {
        /* an entry's head: kind, place or length */
        if (n == 0)
            break;
        uint64_t at = ents[below(r, (uint64_t)n)];
        struct pm_txent e;
        memcpy(&e, m->d + at, sizeof e);
        uint64_t kind = e.kind_len & 0xff, len = e.kind_len >> 8, off = e.off;
        switch (below(r, 3)) {
        case 0:
            kind = 1 + below(r, 6);
            break;
        case 1:
            off = chance(r, 30) ? (uint64_t[]){0, OFF_LIVE, m->f.roots_off, m->f.lanes_off,
                                               log, m->bit_off[0]}[below(r, 6)]
                                : pick_off(m, r);
            break;
        default:
            len = (kind == PM_TXE_SNAPSHOT || kind == PM_TXE_PAGE)
                      ? (uint64_t[]){0, 8, len + 8, os_page, os_page * 2}[below(r, 5)] % (len + 1)
                      : (uint64_t[]){0, 16, os_page, rnd(r) % 100000}[below(r, 4)];
            break;
        }
        put_entry(m, at, gen, key, kind, len, off);
        break;
    }
    case 4:
    case 5: {
        /* a new entry at the end of the stream, the transaction active */
        if (tail == 0 || tail + ENT_SIZE * 2 > tail_end)
            break;
        uint64_t kind = 1 + below(r, 5), len = 0, off = pick_off(m, r);
        if (kind == PM_TXE_PAGE) {
            len = os_page;
            off = chance(r, 40) ? 0 : below(r, m->n / os_page + 1) * os_page;
            if (!in_img(m, off, len) || tail + ENT_SIZE + len > tail_end)
                break;
            memmove(m->d + tail + ENT_SIZE, m->d + off, len);       /* the page now */
            uint64_t pos = below(r, len / 8) * 8;
            wr64(m, tail + ENT_SIZE + pos, rd64(m, tail + ENT_SIZE + pos) ^
                                               (UINT64_C(1) << below(r, 64)));
        } else if (kind == PM_TXE_SNAPSHOT) {
            len = 8 * (1 + below(r, 8));
            if (chance(r, 40) && m->n_ltab)
                off = m->ltab[below(r, (uint64_t)m->n_ltab)] + 8 * below(r, 4);
            else if (chance(r, 40) && m->n_rtab)
                off = m->rtab[below(r, (uint64_t)m->n_rtab)] + 8 * below(r, 4);
            else if (chance(r, 40))
                off = logs[below(r, (uint64_t)nlogs)] + 8 * below(r, 3);
            if (tail + ENT_SIZE + len > tail_end || !in_img(m, tail + ENT_SIZE, len))
                break;
            for (uint64_t w = 0; w < len; w += 8)
                wr64(m, tail + ENT_SIZE + w, chance(r, 50) ? rnd(r) % 100000 : rnd(r));
        } else if (kind == PM_TXE_JUMP) {
            const struct run *x = pick_run(m, r, -1);
            off = x ? page_off(m, x->first) : below(r, m->img_pages + 1) * m->page + m->data_off;
            len = m->page * (1 + below(r, 3));
        }
        put_entry(m, tail, gen, key, kind, len, off);
        if (chance(r, 80))
            wr64(m, state_at, PM_TX_ACTIVE | gen << 8);
        break;
    }
    case 6: {
        /* the entries of the other stream (the previous transaction's) */
        wr64(m, state_at, (chance(r, 50) ? PM_TX_ACTIVE | PM_TX_PREV : PM_TX_COMMITTED) |
                              (gen + 1) << 8);
        break;
    }
    default:
        /* a lane naming a log: another lane's, a block, the header */
        wr64(m, lanes[below(r, (uint64_t)nlogs)] + offsetof(struct pm_lane, tx_off),
             chance(r, 50) ? logs[below(r, (uint64_t)nlogs)] : pick_off(m, r));
        break;
    }
}

/* ---- the header's chunk lane (publish.c chunk_add) ----
 *
 * The record a lane table is added through: ALLOC of a table into the
 * link at the chain's end, rolled forward (the link names it) or back.
 * Also: records of any kind there, a tx_off naming a log, a block another
 * lane or a table names, a destination that is a table link or a word of
 * a lane record (its own too). */
static void put_lane(struct img *m, uint64_t l, uint64_t op, uint64_t dest, uint64_t blk,
                     uint64_t old, uint64_t size)
{
    if (!in_img(m, l, 64))
        return;
    wr64(m, l + 8, dest);
    wr64(m, l + 16, blk);
    wr64(m, l + 24, old);
    wr64(m, l + 32, size);
    wr64(m, l, op);
    fix_lane_at(m, l);
}

static void mut_chunk(struct img *m, struct rng *r)
{
    const uint64_t cl = OFF_CHUNK_LANE;
    const uint64_t tsize = 64 + 64 * 64;
    switch (below(r, 9)) {
    case 0:
    case 1: {
        /* a table being added: ALLOC into the chain's end */
        const struct run *x = pick_run(m, r, 0);
        uint64_t blk = x && chance(r, 85) ? page_off(m, x->first) : pick_off(m, r) & ~UINT64_C(63);
        uint64_t link = m->n_ltab && chance(r, 60) ? m->ltab[m->n_ltab - 1] + 16 : OFF_LANES_NEXT;
        if (chance(r, 10))
            link = pick_link(m, r);
        if (chance(r, 75) && in_img(m, blk, 64)) {
            memset(m->d + blk, 0, (size_t)min64(tsize, m->n - blk));
            wr64(m, blk, PM_LANE_TABLE_MAGIC);
            wr64(m, blk + 8, chance(r, 90) ? 64 : (uint64_t[]){0, 63, 65, rnd(r)}[below(r, 4)]);
            if (chance(r, 15))
                wr64(m, blk + 16, (uint64_t[]){blk, OFF_LANES_NEXT, m->n_ltab ? m->ltab[0] : 0,
                                               pick_off(m, r)}[below(r, 4)]);
            if (chance(r, 30)) {
                /* a lane in flight in the new table */
                uint64_t l = blk + 64 + 64 * below(r, 64);
                put_lane(m, l, 1 + below(r, 3), pick_dest(m, r), pick_off(m, r),
                         chance(r, 50) ? pick_off(m, r) : 0, below(r, 5000));
            }
        }
        uint64_t cur = in_img(m, link, 8) ? rd64(m, link) : 0;
        if (chance(r, 50) && in_img(m, link, 8))
            wr64(m, link, blk);                 /* rolled forward */
        else if (chance(r, 50) && in_img(m, link, 8))
            wr64(m, link, 0);
        (void)cur;
        put_lane(m, cl, chance(r, 85) ? PM_LANE_ALLOC : 1 + below(r, 3), link, blk,
                 chance(r, 80) ? 0 : pick_off(m, r), chance(r, 80) ? tsize : below(r, 70000));
        break;
    }
    case 2: {
        /* any record */
        uint64_t op = 1 + below(r, 3);
        uint64_t dest = pick_dest(m, r), blk = pick_off(m, r);
        if (chance(r, 40) && in_img(m, dest, 8))
            wr64(m, dest, blk);                 /* the location names it */
        put_lane(m, cl, op, dest, blk, op == PM_LANE_REALLOC ? pick_off(m, r) : 0,
                 below(r, 70000));
        break;
    }
    case 3: {
        /* the chunk lane names a log, or something */
        uint64_t logs[MAX_LOGS], lanes[MAX_LOGS];
        int n = find_logs(m, logs, lanes);
        wr64(m, cl + 40, n && chance(r, 70) ? logs[below(r, (uint64_t)n)] : pick_off(m, r));
        break;
    }
    case 4: {
        /* two records naming one block: the chunk lane and another lane */
        uint64_t l = pick_lane(m, r);
        if (l == cl || !in_img(m, l, 64))
            break;
        if (chance(r, 50)) {
            uint64_t blk = rd64(m, l + 16);
            if (blk == 0)
                blk = pick_off(m, r);
            put_lane(m, cl, 1 + below(r, 3), chance(r, 50) ? rd64(m, l + 8) : pick_dest(m, r),
                     blk, chance(r, 50) ? rd64(m, l + 24) : 0, rd64(m, l + 32));
            if (chance(r, 50) && (rd64(m, l) & 0xff) == 0)
                put_lane(m, l, 1 + below(r, 3), rd64(m, cl + 8), blk, rd64(m, l + 24),
                         rd64(m, l + 32));
        } else {
            uint64_t blk = rd64(m, cl + 16);
            if (blk == 0)
                blk = m->n_ltab ? m->ltab[below(r, (uint64_t)m->n_ltab)] : pick_off(m, r);
            put_lane(m, l, 1 + below(r, 3), pick_dest(m, r), blk, 0, below(r, 5000));
        }
        break;
    }
    case 5: {
        /* the chunk lane's block: a table, a log, a root */
        uint64_t logs[MAX_LOGS], lanes[MAX_LOGS];
        int n = find_logs(m, logs, lanes);
        uint64_t v[] = {m->n_ltab ? m->ltab[below(r, (uint64_t)m->n_ltab)] : 0,
                        m->n_rtab ? m->rtab[below(r, (uint64_t)m->n_rtab)] : 0,
                        n ? logs[below(r, (uint64_t)n)] : 0,
                        rd64(m, m->f.roots_off + 8 * (1 + 2 * below(r, 4)))};
        uint64_t blk = v[below(r, 4)];
        uint64_t op = chance(r, 50) ? PM_LANE_FREE : 1 + below(r, 3);
        uint64_t dest = chance(r, 50) ? pick_link(m, r) : pick_dest(m, r);
        if (chance(r, 50) && in_img(m, dest, 8))
            wr64(m, dest, blk);
        put_lane(m, cl, op, dest, blk, op == PM_LANE_REALLOC ? pick_off(m, r) : 0, tsize);
        break;
    }
    case 6:
        /* torn, unknown op with a right check, the other words */
        if (chance(r, 50))
            wr64(m, cl, (uint64_t[]){1, 2, 3, 4, 0x55, rnd(r)}[below(r, 6)]);
        else
            put_lane(m, cl, 4 + below(r, 252), pick_dest(m, r), pick_off(m, r), 0, 0);
        if (chance(r, 30))
            wr64(m, cl + 48 + 8 * below(r, 2), rnd(r));
        break;
    case 7: {
        /* a log made in a block (a small one most of the time: what its
         * transactions write past its stream lands on the blocks after
         * it), in any format and of any size, named by a lane */
        uint64_t blk = pick_off(m, r) & ~UINT64_C(63);
        if (!in_img(m, blk, 64))
            break;
        uint64_t bs = 64;
        const struct run *x = pick_run(m, r, 1);
        if (x != NULL && chance(r, 70)) {
            uint64_t sboff = page_off(m, x->first);
            uint64_t nb = SBF(m, sboff, n_blocks);
            bs = SBF(m, sboff, block_size);
            blk = sb_block_off(m, sboff, below(r, nb ? nb : 1));
            if (blk % 64 != 0 || !in_img(m, blk, 64))
                break;
        }
        uint64_t magic = (uint64_t[]){PM_TXLOG_MAGIC_V1, PM_TXLOG_MAGIC_V2,
                                      PM_TXLOG_MAGIC_V3, PM_TXLOG_MAGIC}[below(r, 4)];
        uint64_t size = (uint64_t[]){128, 160, 191, 192, 200, 255, 256, bs, bs + 64,
                                     4096}[below(r, 10)];
        memset(m->d + blk, 0, 64);
        wr64(m, blk, magic);
        wr64(m, blk + 8, size);
        uint64_t gen = chance(r, 80) ? below(r, 10) : (UINT64_C(1) << 56) - 1 - below(r, 2);
        wr64(m, blk + 16, (chance(r, 80) ? PM_TX_IDLE : 1 + below(r, 2)) | gen << 8);
        uint64_t l = pick_lane(m, r);
        if (l == cl && chance(r, 80))
            l = m->f.lanes_off;
        if (in_img(m, l, 64))
            wr64(m, l + 40, blk);
        break;
    }
    default: {
        /* a log's format and size */
        uint64_t logs[MAX_LOGS], lanes[MAX_LOGS];
        int n = find_logs(m, logs, lanes);
        if (n == 0)
            break;
        uint64_t lg = logs[below(r, (uint64_t)n)];
        if (chance(r, 50)) {
            wr64(m, lg, (uint64_t[]){PM_TXLOG_MAGIC_V1, PM_TXLOG_MAGIC_V2,
                                     PM_TXLOG_MAGIC_V3, PM_TXLOG_MAGIC}[below(r, 4)]);
        } else {
            uint64_t sz = rd64(m, lg + 8);
            wr64(m, lg + 8, (uint64_t[]){0, 64, 64 + 64, 64 + 128, sz / 2, sz * 2, sz + 64,
                                         sz - 64, UINT64_MAX, m->n - lg}[below(r, 10)]);
        }
        break;
    }
    }
}

static void mut_size(struct img *m, struct rng *r)
{
    uint64_t n = m->n;
    switch (below(r, 6)) {
    case 0:
        n = m->data_off + (below(r, m->img_pages + 1) << m->shift);
        break;
    case 1:
        n = below(r, m->n + 1);
        break;
    case 2:
        n = below(r, PM_HEADER_SIZE + 64);
        break;
    case 3:
        n = m->n + (page_unit(m) << m->shift) * (1 + below(r, 4));
        break;
    case 4:
        n = m->n + 1 + below(r, 4096);
        break;
    default:
        n = m->n - min64(m->n, 1 + below(r, 64));
        break;
    }
    set_size(m, n);
}

/* libFuzzer's own byte mutation, on one structure */
static void mut_window(struct img *m, struct rng *r)
{
    uint64_t off = 0, len = 0;
    const struct run *x;
    switch (below(r, 7)) {
    case 0:
        off = 0, len = PM_HEADER_SIZE;
        break;
    case 1:
        off = OFF_STATE(m->cur), len = sizeof(struct pm_state);
        break;
    case 2:
        off = m->bit_off[below(r, 3)], len = m->bits_size;
        break;
    case 3:
        off = m->f.roots_off, len = (uint64_t)m->f.roots_cap * 16;
        break;
    case 4:
        off = m->f.lanes_off, len = (uint64_t)m->f.n_lanes * 64;
        break;
    case 5:
        if ((x = pick_run(m, r, 1)) != NULL)
            off = page_off(m, x->first), len = 64 + 16 * SBF(m, page_off(m, x->first), n_words);
        break;
    default:
        if ((x = pick_run(m, r, -1)) != NULL)
            off = page_off(m, x->first), len = (x->last - x->first + 1) << m->shift;
        break;
    }
    if (len == 0 || !in_img(m, off, 1))
        return;
    len = min64(len, m->n - off);
    len = min64(len, 4096);
    (void)LLVMFuzzerMutate(m->d + off, len, len);
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed)
{
    struct rng r = {(uint64_t)seed * UINT64_C(0x9e3779b97f4a7c15) + size + 1};
    struct img m;
    memset(&m, 0, sizeof m);
    m.d = data;
    m.n = size;
    m.cap = max_size;
    walk(&m);
    if (!m.hdr || chance(&r, 12)) {
        size_t n = LLVMFuzzerMutate(data, size, max_size);
        if (n >= PM_HEADER_SIZE && chance(&r, 50)) {
            m.n = n;
            walk(&m);
            fix_all(&m, &r);
            return m.n;
        }
        return n;
    }
    int rounds = 1 + (int)below(&r, chance(&r, 80) ? 2 : 6);
    for (int i = 0; i < rounds; i++) {
        uint64_t k = below(&r, 110);
        if (k >= 100)
            mut_chunk(&m, &r);
        else if (k < 9)
            mut_live(&m, &r);
        else if (k < 19)
            mut_state(&m, &r);
        else if (k < 22)
            mut_fixed(&m, &r);
        else if (k < 38)
            mut_bits(&m, &r);
        else if (k < 54)
            mut_sb(&m, &r);
        else if (k < 64)
            mut_roots(&m, &r);
        else if (k < 72)
            mut_rtab(&m, &r);
        else if (k < 80)
            mut_lanes(&m, &r);
        else if (k < 89)
            mut_txlog(&m, &r);
        else if (k < 92)
            mut_size(&m, &r);
        else
            mut_window(&m, &r);
        walk(&m);
    }
    fix_all(&m, &r);
    return m.n;
}

/* Crossover: a page-aligned stretch (or a header word range) of the second
 * image at the same place in the first, so same-geometry seeds trade runs,
 * tables and lanes. */
size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t n1, const uint8_t *d2,
                                 size_t n2, uint8_t *out, size_t max_out,
                                 unsigned int seed)
{
    struct rng r = {(uint64_t)seed * UINT64_C(0x9e3779b97f4a7c15) + n1 + n2 + 7};
    size_t n = n1 < max_out ? n1 : max_out;
    memcpy(out, d1, n);
    size_t common = n < n2 ? n : n2;
    if (common > 0) {
        uint64_t unit = chance(&r, 70) ? 4096 : 64;
        uint64_t off = below(&r, common / unit + 1) * unit;
        uint64_t len = unit * (1 + below(&r, 8));
        if (chance(&r, 15))
            off = PM_HEADER_SIZE, len = common;   /* all of the metadata and pages */
        if (off < common) {
            len = min64(len, common - off);
            memcpy(out + off, d2 + off, len);
        }
    }
    struct img m;
    memset(&m, 0, sizeof m);
    m.d = out;
    m.n = n;
    m.cap = max_out;
    walk(&m);
    fix_all(&m, &r);
    return m.n;
}

/* ======================================================================== */
/* The harness                                                              */

static char dir[256] = "/dev/shm";
static unsigned long counter;
static char path_a[512], path_w[512];
static bool verbose;
static char ignore_list[1024];
static uint64_t misuse_count;

static void silent_hook(allocator_space_t *s, int code, const void *ptr,
                        const char *msg, void *arg)
{
    (void)s, (void)code, (void)ptr, (void)msg, (void)arg;
    misuse_count++;
}

static char ignore_msgs[2048];

/* PM_FUZZ_IGNORE_MSG: '|'-separated substrings of known root causes */
static bool ignored_msg(const char *msg)
{
    const char *p = ignore_msgs;
    while (*p) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l > 0 && memmem(msg, strlen(msg), p, l) != NULL)
            return true;
        p += l + (e != NULL);
    }
    return false;
}

static bool ignored(const char *name)
{
    size_t l = strlen(name);
    if (strcmp(ignore_list, "all") == 0)
        return true;
    for (const char *p = ignore_list; (p = strstr(p, name)) != NULL; p += l)
        if ((p == ignore_list || p[-1] == ',') && (p[l] == ',' || p[l] == 0))
            return true;
    return false;
}

static void finding(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void finding(const char *name, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "FUZZ FINDING [%s]: %s\n", name, msg);
    if (ignored(name) || ignored_msg(msg))
        return;
    unlink(path_a);
    unlink(path_w);
    abort();
}

static void harness_fail(const char *what)
{
    fprintf(stderr, "fuzz harness: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void write_file(const char *p, const uint8_t *d, size_t n)
{
    int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        harness_fail(p);
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, d + done, n - done);
        if (w <= 0)
            harness_fail("write");
        done += (size_t)w;
    }
    close(fd);
}

/* The file holds exactly d[0, n). */
static bool file_is(const char *p, const uint8_t *d, size_t n)
{
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    bool same = fstat(fd, &st) == 0 && (uint64_t)st.st_size == n;
    uint8_t buf[65536];
    size_t off = 0;
    while (same && off < n) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k <= 0 || (size_t)k > n - off || memcmp(buf, d + off, (size_t)k) != 0)
            same = false;
        else
            off += (size_t)k;
    }
    close(fd);
    return same;
}

struct tags {
    uint64_t t[96];
    int n;
};

static void tag_add(struct tags *ts, uint64_t t)
{
    for (int i = 0; i < ts->n; i++)
        if (ts->t[i] == t)
            return;
    if (ts->n < (int)(sizeof ts->t / sizeof *ts->t))
        ts->t[ts->n++] = t;
}

/* Words of the input used as tags, offsets and raw pointers: the root keys
 * and values, lane fields and a few words at places derived from the data. */
struct derived {
    uint64_t w[64];
    int n;
};

static void derive(const uint8_t *data, size_t size, struct derived *dv, struct tags *ts)
{
    struct img m;
    memset(&m, 0, sizeof m);
    m.d = (uint8_t *)(uintptr_t)data;   /* walk only reads */
    m.n = m.cap = size;
    walk(&m);
    dv->n = 0;
    if (!m.hdr)
        return;
    uint64_t cap = min64(m.f.roots_cap, 64);
    for (uint64_t i = 0; i < cap; i++) {
        uint64_t k = rd64(&m, m.f.roots_off + i * 16), v = rd64(&m, m.f.roots_off + i * 16 + 8);
        if (k)
            tag_add(ts, k);
        if (v && dv->n < 48)
            dv->w[dv->n++] = v;
    }
    for (int t = 0; t < m.n_rtab; t++)
        for (uint64_t i = 0; i < 16; i++) {
            uint64_t k = rd64(&m, m.rtab[t] + 32 + i * 16);
            if (k)
                tag_add(ts, k);
        }
    uint64_t nl = min64(m.f.n_lanes, 8);
    for (uint64_t i = 0; i < nl && dv->n < 56; i++)
        if (rd64(&m, m.f.lanes_off + i * 64) & 0xff) {
            dv->w[dv->n++] = rd64(&m, m.f.lanes_off + i * 64 + 16);
            dv->w[dv->n++] = rd64(&m, m.f.lanes_off + i * 64 + 8);
        }
    dv->w[dv->n++] = rd64(&m, OFF_ROOT0);
    struct rng r = {fnv(data, min64(size, 4096)) | 1};
    while (dv->n < 64)
        dv->w[dv->n++] = size >= 8 ? rd64(&m, below(&r, size - 7)) : rnd(&r);
    for (int i = 0; i < 6; i++)
        tag_add(ts, rd64(&m, below(&r, size - 7)));
    tag_add(ts, 0);
    tag_add(ts, 1);
    tag_add(ts, 7);
}

static bool in_file(allocator_space_t *s, const char *p, uint64_t *fsz)
{
    const char *base = (const char *)s;
    if (p >= base && (uint64_t)(p - base) < *fsz)
        return true;
    struct persistent_info info;
    if (persistent_space_info(s, &info) == 0)
        *fsz = info.file_size;
    return p >= base && (uint64_t)(p - base) < *fsz;
}

/* The calls every open must answer on any file.  Returns check's verdict. */
static int explore(allocator_space_t *s, const char *cs, const struct derived *dv,
                   struct tags *ts, struct persistent_check_report *rep)
{
    int cr = persistent_check(s, rep);
    struct persistent_stats st;
    (void)persistent_stats_get(s, &st);
    struct persistent_info info;
    memset(&info, 0, sizeof info);
    if (persistent_space_info(s, &info) != 0)
        finding(cs, "persistent_space_info failed on an open space: %s",
                persistent_errormsg());
    char *base = (char *)s;
    uint64_t fsz = info.file_size;
    /* a pointer the library hands out must be inside the pages the file
     * holds (else touching it faults); a writer may have grown the space
     * meanwhile (root_get creates roots), so the size is read again */
#define IN_FILE(p) in_file(s, (const char *)(p), &fsz)

    struct persistent_root_iter it;
    memset(&it, 0, sizeof it);
    uint64_t tag;
    void *p;
    uint64_t bound = fsz / 16 + 64, n = 0;
    while (persistent_root_next(s, &it, &tag, &p) == 1) {
        if (++n > bound) {
            finding("root-iter-endless", "%s: persistent_root_next returned more than "
                    "%" PRIu64 " roots (a cyclic chain of root tables?)", cs, bound);
            break;
        }
        tag_add(ts, tag);
        if (p != NULL && !IN_FILE(p))
            finding("root-ptr-outside", "%s: persistent_root_next gave %p for tag %#" PRIx64
                    ", outside the file's pages", cs, p, tag);
        if (p) {
            (void)persistent_usable_size(s, p);
            (void)persistent_ptr(s, p);
            (void)persistent_space_of(p);
        }
    }
    for (int i = 0; i < ts->n; i++) {
        void *q = persistent_find_root(s, ts->t[i]);
        if (q != NULL && !IN_FILE(q))
            finding("root-ptr-outside", "%s: persistent_find_root(%#" PRIx64 ") gave %p, "
                    "outside the file's pages", cs, ts->t[i], q);
        if (q)
            (void)persistent_usable_size(s, q);
        if (i < 8) {
            bool created = false;
            void *g = persistent_root_get(s, ts->t[i], 32, &created);
            if (g && !IN_FILE(g))
                finding("root-ptr-outside", "%s: persistent_root_get gave %p, outside the "
                        "file's pages", cs, g);
            if (created && !(info.open_flags & PERSISTENT_OPEN_PRIVATE) &&
                (info.open_flags & PERSISTENT_OPEN_READONLY))
                finding("ro-created", "%s: persistent_root_get created a root on a "
                        "read-only space", cs);
        }
    }
    for (int i = 0; i < dv->n; i++) {
        uint64_t v = dv->w[i];
        (void)persistent_usable_size(s, base + (v % (fsz + 4096)));
        (void)persistent_usable_size(s, (void *)(uintptr_t)v);
        void *q = persistent_ptr(s, (void *)(uintptr_t)v);
        if (q && !IN_FILE(q))
            finding("ptr-outside", "%s: persistent_ptr(%#" PRIx64 ") = %p, outside the file",
                    cs, v, q);
        for (uint32_t b = 0; b < info.n_bases && b < 16 && i < 8; b++) {
            uint64_t pv = info.bases[b].base + (v % (fsz + 1));
            q = persistent_ptr(s, (void *)(uintptr_t)pv);
            if (q && !IN_FILE(q))
                finding("ptr-outside", "%s: persistent_ptr(%#" PRIx64 ") = %p, outside the "
                        "file", cs, pv, q);
            q = persistent_ptr_from(s, (void *)(uintptr_t)pv, info.bases[b].generation);
            if (q && !IN_FILE(q))
                finding("ptr-outside", "%s: persistent_ptr_from(%#" PRIx64 ", gen %" PRIu64
                        ") = %p, outside the file", cs, pv, info.bases[b].generation, q);
        }
        q = persistent_ptr_from(s, (void *)(uintptr_t)v, v % 8);
        if (q && !IN_FILE(q))
            finding("ptr-outside", "%s: persistent_ptr_from = %p, outside the file", cs, q);
    }
    (void)persistent_sync(s);
    if (info.open_flags & (PERSISTENT_OPEN_READONLY | PERSISTENT_OPEN_NO_RECOVER)) {
        void *q = persistent_malloc(s, 32);
        if (q != NULL)
            finding("ro-alloc", "%s: persistent_malloc succeeded on a space that cannot "
                    "allocate", cs);
    }
#undef IN_FILE
    return cr;
}

/* A few allocations, frees and root calls on a space that can allocate;
 * only blocks this function made are freed, and pointers the heap does
 * not call live are freed to check they change nothing. */
/* Transactions on the lanes' logs as the file left them (a log the open
 * accepted is reused by the next transaction of the thread that takes its
 * lane): an explicit one (a snapshot, an allocation, a free) and an
 * automatic one, each committed or aborted. */
/* alone: no other thread is using the space.  Beside others (lane_user)
 * an automatic transaction only commits: the others' plain writes to
 * their blocks (the memsets below) are caught while it is open and wait,
 * and after an abort the heap they were writing to is gone, so the
 * process stops by design (include/persistent_mem.h,
 * persistent_tx_begin_auto): that stop was this harness's, reported as a
 * deadly signal now and then (2026-12-06 and 2026-12-07). */
/* Whether to begin an automatic transaction here: each page it writes
 * takes a page image in its log, more log comes from free pages (or
 * growth), and a write that finds no room stops the process by design
 * (include/persistent_mem.h, persistent_tx_begin_auto).  That stop was
 * this harness's (2026-12-07, CI's fuzz-short: a fixed space with 8 KiB
 * of free pages, whose lane's log, as the file left it and the begin
 * reused, had no room for one page image, so that even a write of one
 * page stopped the process; since the same day the begin refuses that
 * case, -ENOMEM, but a second page may still find none).  Below this room
 * an automatic transaction writes nothing: its begin, commit and abort
 * still run. */
#define AUTO_ROOM (UINT64_C(256) << 10)
static bool auto_room(allocator_space_t *s)
{
    struct persistent_stats st;
    struct persistent_info in;
    if (persistent_stats_get(s, &st) != 0 || persistent_space_info(s, &in) != 0)
        return false;
    uint64_t grow = in.growable && in.max_capacity > in.capacity ? in.max_capacity - in.capacity : 0;
    return st.free_bytes + grow >= AUTO_ROOM;
}

static void churn_tx(allocator_space_t *s, struct rng *r, void *blk, bool alone)
{
    size_t bl = blk != NULL ? persistent_usable_size(s, blk) : 0;
    if (bl > 64)
        bl = 64;
    if (persistent_tx_begin(s) == 0) {
        if (bl != 0)
            (void)persistent_tx_add(s, blk, bl);
        char *n = persistent_tx_zalloc(s, 24 + below(r, 3000));
        if (n != NULL)
            memset(n, 0x33, 24);
        void *m = persistent_tx_alloc(s, 40);
        if (m != NULL && chance(r, 50))
            (void)persistent_tx_free(s, m);
        if (bl != 0)
            memset(blk, 0x77, bl);
        if (chance(r, 60))
            (void)persistent_tx_commit(s);
        else
            (void)persistent_tx_abort(s);
        if (persistent_tx_depth(s) > 0)
            (void)persistent_tx_abort(s);
    }
    bool roomy = auto_room(s);
    if (chance(r, 50) && persistent_tx_begin_auto(s) == 0) {
        if (roomy) {
            char *q = persistent_malloc(s, 16 + below(r, 500));
            if (q != NULL)
                memset(q, 0x44, 16);
            char *rt = persistent_root_get(s, UINT64_C(0xf023000000000000) + below(r, 4), 40,
                                           NULL);
            if (rt != NULL)
                rt[0]++;
        }
        if (!alone || chance(r, 50))
            (void)persistent_tx_commit(s);
        else
            (void)persistent_tx_abort(s);
        if (persistent_tx_depth(s) > 0)
            (void)persistent_tx_abort(s);
    }
}

/* Threads that hold lanes at once: past the lanes in the metadata, the
 * overflow tables' (and their logs) as the file left them. */
struct lane_arg {
    allocator_space_t *s;
    pthread_barrier_t *bar;
    uint64_t seed;
};

static void *lane_user(void *a)
{
    struct lane_arg *la = a;
    struct rng r = {la->seed | 1};
    persistent_offset_t *slot = persistent_root_get(la->s, UINT64_C(0xf024000000000000), 64, NULL);
    if (slot != NULL)
        (void)persistent_alloc_into(la->s, &slot[la->seed % 8], 32);
    pthread_barrier_wait(la->bar);
    void *b = persistent_malloc(la->s, 64);
    churn_tx(la->s, &r, b, false);
    persistent_free(la->s, b);
    if (slot != NULL)
        (void)persistent_free_from(la->s, &slot[la->seed % 8]);
    pthread_barrier_wait(la->bar);
    return NULL;
}

static void churn_lanes(allocator_space_t *s, uint64_t seed, unsigned n)
{
    pthread_barrier_t bar;
    pthread_t t[24];
    struct lane_arg a[24];
    if (n > 24)
        n = 24;
    pthread_barrier_init(&bar, NULL, n);
    unsigned made = 0;
    for (; made < n; made++) {
        a[made] = (struct lane_arg){s, &bar, seed + made};
        if (pthread_create(&t[made], NULL, lane_user, &a[made]) != 0)
            break;
    }
    if (made < n) {
        /* cannot happen often; without all of them the barrier never opens */
        harness_fail("pthread_create");
    }
    for (unsigned i = 0; i < made; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&bar);
}

static void churn(allocator_space_t *s, const struct derived *dv, uint64_t seed,
                  const struct tags *ts)
{
    struct rng r = {seed | 1};
    static const size_t sizes[] = {1, 16, 24, 48, 100, 130, 300, 700, 1000,
                                   2100, 4000, 9000, 17000, 40000};
    void *p[12];
    for (int i = 0; i < 12; i++) {
        size_t sz = sizes[below(&r, sizeof sizes / sizeof *sizes)];
        p[i] = persistent_malloc(s, sz);
        if (p[i])
            memset(p[i], 0xa5, sz);
    }
    for (int i = 0; i < 12; i += 2) {
        persistent_free(s, p[i]);
        p[i] = NULL;
    }
    if (p[1] && persistent_realloc(s, p[1], 2000))
        memset(p[1], 0x5a, 2000);
    void *a = persistent_aligned_alloc(s, 256, 300);
    void *c = persistent_calloc(s, 10, 30);
    /* frees of pointers that are not blocks: reported, nothing changed */
    for (int i = 0; i < dv->n && i < 12; i++) {
        void *q = (char *)s + dv->w[i] % (1u << 20);
        if (persistent_usable_size(s, q) == 0)
            persistent_free(s, q);
    }
    /* a root of our own, and publishing calls into it */
    uint64_t tag = UINT64_C(0xf022000000000000) + below(&r, 1000);
    bool created = false;
    persistent_offset_t *slots = persistent_root_get(s, tag, 64, &created);
    if (slots && created) {
        (void)persistent_alloc_into(s, &slots[0], 40);
        (void)persistent_alloc_into(s, &slots[1], 5000);
        (void)persistent_realloc_into(s, &slots[0], 400);
        (void)persistent_free_from(s, &slots[1]);
        (void)persistent_alloc_into(s, &slots[2], 24);
        if (chance(&r, 50)) {
            (void)persistent_free_from(s, &slots[0]);
            (void)persistent_free_from(s, &slots[2]);
            (void)persistent_root_remove(s, tag);
        }
    }
    for (int i = 0; i < ts->n && i < 4; i++)
        (void)persistent_find_root(s, ts->t[i]);
    churn_tx(s, &r, p[1], true);
    if (chance(&r, 20)) {
        /* with the main thread's, two more than the 8 lanes of the
         * metadata: the first overflow lane table's first lanes */
        churn_lanes(s, seed, 9);
    }
    persistent_free(s, a);
    persistent_free(s, c);
    for (int i = 0; i < 12; i++)
        if (chance(&r, 70))
            persistent_free(s, p[i]);
}

static const char *errname(int r)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%d (%s)", r, persistent_strerror(r));
    return buf;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *d = getenv("PM_FUZZ_DIR");
    struct stat st;
    if (d == NULL)
        d = stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s", d);
    const char *ig = getenv("PM_FUZZ_IGNORE");
    if (ig)
        snprintf(ignore_list, sizeof ignore_list, "%s", ig);
    const char *im = getenv("PM_FUZZ_IGNORE_MSG");
    if (im)
        snprintf(ignore_msgs, sizeof ignore_msgs, "%s", im);
    verbose = getenv("PM_FUZZ_VERBOSE") != NULL;
    persistent_error_hook_set(silent_hook, NULL);
    /* files left by fuzzing processes that crashed */
    DIR *dd = opendir(dir);
    if (dd) {
        struct dirent *e;
        while ((e = readdir(dd)) != NULL) {
            int pid;
            if (sscanf(e->d_name, "pmfuzz-%d-", &pid) == 1 && pid != getpid() &&
                kill(pid, 0) != 0 && errno == ESRCH) {
                char p[600];
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
        }
        closedir(dd);
    }
    return 0;
}

#define V(...) do { if (verbose) fprintf(stderr, __VA_ARGS__); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_IMAGE)
        return 0;
    counter++;
    snprintf(path_a, sizeof path_a, "%s/pmfuzz-%d-%lu-r.space", dir, (int)getpid(), counter);
    snprintf(path_w, sizeof path_w, "%s/pmfuzz-%d-%lu-w.space", dir, (int)getpid(), counter);
    write_file(path_a, data, size);

    struct tags ts = {.n = 0};
    struct derived dv;
    derive(data, size, &dv, &ts);
    struct persistent_check_report rep;
    char first_error[256] = "";

    /* (a) private, no recovery */
    int check_a = 1;          /* 1: not opened */
    struct persistent_options o;
    memset(&o, 0, sizeof o);
    o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
    allocator_space_t *s = NULL;
    int ra = persistent_space_open(path_a, &o, &s);
    V("(a) private/no-recover open: %s\n", errname(ra));
    if (ra == 0) {
        check_a = explore(s, "a-private-norecover", &dv, &ts, &rep);
        snprintf(first_error, sizeof first_error, "%s", rep.first_error);
        V("(a) check %s: %" PRIu64 " errors, %" PRIu64 " runs, %" PRIu64 " roots, %" PRIu64
          " lanes in flight, %" PRIu64 " orphan bits: %s\n", errname(check_a), rep.n_errors,
          rep.runs, rep.roots, rep.in_flight_lanes, rep.orphan_bits, rep.first_error);
        if ((check_a == 0) != (rep.n_errors == 0))
            finding("a-check-verdict", "check returned %d with %" PRIu64 " errors", check_a,
                    rep.n_errors);
        if (persistent_space_close(s) != 0)
            finding("a-close", "close of a private space failed: %s", persistent_errormsg());
    } else if (s != NULL) {
        finding("a-open-out", "failed open (%d) set *out", ra);
    }
    if (!file_is(path_a, data, size))
        finding("a-file-written", "private no-recover open (%s) changed the file", errname(ra));

    /* (b) read-only */
    memset(&o, 0, sizeof o);
    o.flags = PERSISTENT_OPEN_READONLY;
    s = NULL;
    int rb = persistent_space_open(path_a, &o, &s);
    V("(b) read-only open: %s\n", errname(rb));
    if (rb == 0) {
        struct persistent_check_report rep_b;
        int cb = explore(s, "b-readonly", &dv, &ts, &rep_b);
        if (ra == 0 && cb != check_a)
            finding("ab-check-differs", "check on the read-only open says %d (%s), on the "
                    "private one %d (%s)", cb, rep_b.first_error, check_a, first_error);
        persistent_space_close(s);
    }
    if ((ra == 0) != (rb == 0))
        finding("ab-open-differs", "private no-recover open %s, read-only open %d",
                errname(ra), rb);
    if (!file_is(path_a, data, size))
        finding("b-file-written", "read-only open (%s) changed the file", errname(rb));

    /* (c) private with recovery */
    s = load_private_persistent_allocator(path_a);
    int rc_errno = s ? 0 : errno;
    V("(c) load_private_persistent_allocator: %s (errno %d: %s)\n", s ? "ok" : "failed",
      rc_errno, persistent_errormsg());
    struct persistent_info info_c;
    memset(&info_c, 0, sizeof info_c);
    if (s != NULL && persistent_space_info(s, &info_c) == 0 &&
        (info_c.open_flags & PERSISTENT_OPEN_NO_RECOVER)) {
        /* the library found the file too damaged to recover and gives it
         * as it is, allocation disabled (newer trees): a refusal */
        char why_c[512];
        snprintf(why_c, sizeof why_c, "%s", persistent_errormsg());
        if (ra == 0 && check_a == 0)
            finding("e-private-refuses-consistent", "check calls the file consistent, the "
                    "private open with recovery skips recovery: %s", why_c);
        (void)explore(s, "c-private-recovery-skipped", &dv, &ts, &rep);
        destroy_persistent_allocator(s);
    } else if (s != NULL) {
        int c1 = persistent_check(s, &rep);
        if (c1 != 0)
            finding("c-recovered-inconsistent", "private open recovered the heap and check "
                    "says %s: %s", errname(c1), rep.first_error);
        (void)explore(s, "c-private-recovered", &dv, &ts, &rep);
        churn(s, &dv, fnv(data, min64(size, 256)), &ts);
        int c2 = persistent_check(s, &rep);
        if (c2 != 0 && c1 == 0)
            finding("c-churn-inconsistent", "after allocations on the privately recovered "
                    "heap check says %s: %s", errname(c2), rep.first_error);
        destroy_persistent_allocator(s);
    } else if (ra == 0 && check_a == 0 && rc_errno == EIO) {
        finding("e-private-refuses-consistent", "check calls the file consistent, the "
                "private open with recovery refuses it as corrupt: %s", persistent_errormsg());
    }
    if (!file_is(path_a, data, size))
        finding("c-file-written", "private open with recovery changed the file");

    /* (d) writer, on a copy */
    write_file(path_w, data, size);
    memset(&o, 0, sizeof o);
    s = NULL;
    int rd = persistent_space_open(path_w, &o, &s);
    char why_d[512];
    snprintf(why_d, sizeof why_d, "%s", persistent_errormsg());
    V("(d) writer open: %s %s\n", errname(rd), rd ? why_d : "");
    if (rd != 0) {
        if (!file_is(path_w, data, size))
            finding("d-refused-but-written", "writer open refused the file (%s: %s) but "
                    "changed it", errname(rd), why_d);
        /* (e) one judgement */
        if (ra == 0 && check_a == 0 && rd != PERSISTENT_E_BUSY)
            finding(rd == PERSISTENT_E_CORRUPT ? "e-writer-refuses-consistent"
                                               : "e-writer-refuses-consistent-other",
                    "check calls the file consistent, the writer refuses it: %s: %s",
                    errname(rd), why_d);
    } else {
        int c1 = persistent_check(s, &rep);
        if (c1 != 0)
            finding("d-recovered-inconsistent", "writer accepted the file (check before: "
                    "%d%s%s) and after its recovery check says %s: %s", check_a,
                    check_a ? ": " : "", check_a ? first_error : "", errname(c1),
                    rep.first_error);
        else if (ra == 0 && check_a != 0)
            finding("e-writer-accepts-corrupt", "check calls the file damaged (%s), the "
                    "writer opens it and its recovery leaves a heap check calls "
                    "consistent", first_error);
        (void)explore(s, "d-writer", &dv, &ts, &rep);
        churn(s, &dv, fnv(data, min64(size, 512)), &ts);
        int c2 = persistent_check(s, &rep);
        if (c2 != 0)
            finding("d-churn-inconsistent", "after allocations on the recovered heap check "
                    "says %s: %s", errname(c2), rep.first_error);
        if (persistent_space_close(s) != 0)
            finding("d-close", "writer close failed: %s", persistent_errormsg());
        s = NULL;
        int r2 = persistent_space_open(path_w, &o, &s);
        if (r2 != 0) {
            finding("d-reopen-refused", "the writer refuses a file it closed itself: %s: %s",
                    errname(r2), persistent_errormsg());
        } else {
            int c3 = persistent_check(s, &rep);
            if (c3 != 0)
                finding("d-reopen-inconsistent", "after a clean close and a reopen check "
                        "says %s: %s", errname(c3), rep.first_error);
            persistent_space_close(s);
        }
    }
    unlink(path_a);
    unlink(path_w);
    return 0;
}

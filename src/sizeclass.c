/* Size classes and the superblock geometry of each class in a space.
 *
 * Classes: 16..128 by 16, then four per doubling up to 64 KiB (44 in all),
 * so the waste inside a block is below 20% from 64 bytes up; below that the
 * 16-byte alignment granule dominates.
 *
 * A superblock of class c is a run of n_pages pages: a 64-byte header, the
 * allocation and remote-free bitmaps, then n_blocks blocks starting at a
 * multiple of the class's natural alignment (the largest power of two that
 * divides the block size, up to the page size), so a 4 KiB block is page
 * aligned and aligned allocation can pick a class.  n_pages, the preferred
 * length, is the smallest from the class's target up that wastes at most an
 * eighth of the run and holds two blocks or more.  The target is the
 * space's superblock size, or PM_SB_TARGET_BLOCKS blocks and their header
 * where that is longer, up to PM_SB_TARGET_MAX superblock sizes: with the
 * superblock size alone a class of 8 KiB or more had two to seven blocks a
 * superblock, and its owner went back to its refill every few mallocs
 * (docs/design.md, "Small blocks").  The classes above 16 KiB and the
 * longer superblocks come only while one superblock of every class takes
 * a sixteenth of the space at most (G5b: threads holding a block of every
 * class must leave the space most of its pages); below that, as before
 * them, a class is served where its superblock takes a quarter at most.
 *
 * Superblocks are carved in the lowest hole that holds min_pages (a
 * quarter of the preferred count of blocks), as long as the preferred
 * length or shorter: large blocks cannot be cut short, superblocks can, so
 * superblocks take the short holes and leave the long runs to large blocks.
 * Each header records its own geometry, and a header is judged by it from
 * floor_pages (two blocks) up: files written when the target was the
 * superblock size alone have superblocks cut shorter than today's minimum. */
#include "internal.h"

uint32_t pm_class_size(uint32_t c)
{
    if (c < 8)
        return 16u * (c + 1);
    uint32_t j = (c - 8) / 4, i = (c - 8) % 4;
    return (128u << j) + (i + 1) * (32u << j);
}

/* pm_size_class (internal.h) for sizes up to 1 KiB, by 16-byte granule */
const uint8_t pm_class_of_granule[65] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 9,
    10, 10, 11, 11, 12, 12, 12, 12, 13, 13, 13, 13, 14,
    14, 14, 14, 15, 15, 15, 15, 16, 16, 16, 16, 16, 16,
    16, 16, 17, 17, 17, 17, 17, 17, 17, 17, 18, 18, 18,
    18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19, 19,
};

static uint32_t round_up32(uint32_t x, uint32_t a)
{
    return (x + a - 1) / a * a;
}

static uint32_t data_start_for(uint32_t n, uint32_t align)
{
    uint32_t words = (n + 63) / 64;
    return round_up32((uint32_t)sizeof(struct pm_sb_header) + 16u * words,
                      align < 16 ? 16 : align);
}

/* Most blocks of size b that fit in bytes with their header. */
static uint32_t blocks_in(uint64_t bytes, uint32_t b, uint32_t align)
{
    if (bytes <= sizeof(struct pm_sb_header))
        return 0;
    uint64_t n = (bytes - sizeof(struct pm_sb_header)) / b;
    if (n > PM_SB_MAX_BLOCKS)
        n = PM_SB_MAX_BLOCKS;
    while (n > 0 && data_start_for((uint32_t)n, align) + n * b > bytes)
        n--;
    return (uint32_t)n;
}

/* The geometry of a superblock of class c that is n_pages long: false if
 * it holds fewer than two blocks.  Every superblock's header must agree
 * with this (recovery and check verify it). */
bool pm_sb_geometry(const struct pm_rt *rt, uint32_t c, uint32_t n_pages,
                    uint32_t *n_blocks, uint32_t *data_start)
{
    const struct pm_class *k = &rt->cls[c];
    if (n_pages == k->n_pages && k->n_blocks != 0) {
        /* the class's own length (most superblocks): worked out once, by
         * the same rule, at pm_classes_init; the search below costs up to
         * dozens of divisions, and an open judges every superblock twice */
        *n_blocks = k->n_blocks;
        *data_start = k->data_start;
        return true;
    }
    uint32_t n = blocks_in((uint64_t)n_pages << rt->page_shift, k->block_size, k->align);
    if (n < 2)
        return false;
    *n_blocks = n;
    *data_start = data_start_for(n, k->align);
    return true;
}

#ifndef PM_SB_MIN_FRACTION
#define PM_SB_MIN_FRACTION 4   /* a superblock may be cut to a quarter of its blocks */
#endif
#define PM_SB_TARGET_BLOCKS 16 /* blocks a superblock aims at ... */
#define PM_SB_TARGET_MAX    8  /* ... in at most 8 superblock sizes ... */
#define PM_SB_BUDGET        16 /* ... while one of every class takes a
                                  sixteenth of the space at most (each
                                  thread carves its own: four threads' in
                                  a quarter) */
#define PM_OLD_MAX_SMALL    16384u /* the largest class before 2026-12-02 */

/* The preferred length in pages of a superblock of blocks of b bytes, from
 * m_start pages up (0 if none holds two blocks); *n_out its blocks. */
static uint64_t preferred(uint64_t page, uint32_t b, uint32_t align, uint64_t m_start,
                          uint32_t *n_out)
{
    uint64_t best_m = 0;
    uint32_t best_n = 0;
    uint64_t m_end = m_start * 4 + (b + page - 1) / page + 1;
    for (uint64_t m = m_start; m <= m_end; m++) {
        uint64_t bytes = m * page;
        uint32_t n = blocks_in(bytes, b, align);
        if (n < 2)
            continue;
        uint64_t waste = bytes - (uint64_t)n * b;
        if (waste * 8 <= bytes) {
            best_m = m;
            best_n = n;
            break;
        }
        if (best_m == 0 ||
            waste * best_m * page < (best_m * page - (uint64_t)best_n * b) * bytes) {
            best_m = m;
            best_n = n;
        }
    }
    *n_out = best_n;
    return best_m;
}

void pm_classes_init(struct pm_rt *rt)
{
    uint64_t page = rt->page_size;
    uint64_t target = rt->fixed.sb_size;
    uint64_t max_bytes = rt->max_pages << rt->page_shift;
    uint64_t m_base = target / page ? target / page : 1;
    uint64_t len[PM_N_CLASSES];
    uint32_t nb[PM_N_CLASSES];

    /* First the rule of files written before 2026-12-02: a class is served
     * when its superblock from the space's superblock size takes a quarter
     * of the space at most (G5b: small spaces get small superblocks and
     * fewer classes), the classes up to PM_OLD_MAX_SMALL always so. */
    uint32_t n_small = 0;
    uint64_t total = 0;
    for (uint32_t c = 0; c < PM_N_CLASSES; c++) {
        struct pm_class *k = &rt->cls[c];
        uint32_t b = pm_class_size(c);
        uint32_t align = b & (~b + 1);
        if (align > page)
            align = (uint32_t)page;
        k->block_size = b;
        k->align = align;
        k->recip = pm_class_recip(b);
        k->inv = pm_class_inv(b);
        k->bshift = (uint32_t)__builtin_ctz(b);
        k->n_blocks = 0;
        len[c] = preferred(page, b, align, m_base, &nb[c]);
        if (len[c] == 0 || len[c] * page * 4 > max_bytes)
            len[c] = 0;
    }
    while (n_small < PM_N_CLASSES && pm_class_size(n_small) <= PM_OLD_MAX_SMALL &&
           len[n_small] != 0)
        total += len[n_small++] * page;
    /* Then, within a budget for one superblock of every class (a
     * sixteenth of the space): the classes above it, and the longer
     * superblocks of the big classes, class by class.  Without the budget
     * a 1 MiB space took 2.6 times its size in such superblocks, and a
     * thread holding one block of every class was refused the twelve
     * biggest; with a quarter, four such threads left a 16 MiB space no
     * block of 230 KiB (6 MiB before the new classes). */
    uint64_t budget = max_bytes / PM_SB_BUDGET;
    if (n_small > 0 && pm_class_size(n_small - 1) == PM_OLD_MAX_SMALL)
        while (n_small < PM_N_CLASSES && len[n_small] != 0 &&
               total + len[n_small] * page <= budget)
            total += len[n_small++] * page;
    for (uint32_t c = 0; c < n_small; c++) {
        const struct pm_class *k = &rt->cls[c];
        uint64_t want = (uint64_t)PM_SB_TARGET_BLOCKS * k->block_size +
                        data_start_for(PM_SB_TARGET_BLOCKS, k->align);
        if (want > PM_SB_TARGET_MAX * target)
            want = PM_SB_TARGET_MAX * target;
        if (want <= len[c] * page)
            continue;
        uint32_t n;
        uint64_t m = preferred(page, k->block_size, k->align, (want + page - 1) / page, &n);
        if (m > len[c] && total + (m - len[c]) * page <= budget) {
            total += (m - len[c]) * page;
            len[c] = m;
            nb[c] = n;
        }
    }

    for (uint32_t c = 0; c < n_small; c++) {
        struct pm_class *k = &rt->cls[c];
        uint64_t best_m = len[c];
        uint32_t best_n = nb[c];
        k->n_pages = (uint32_t)best_m;
        k->min_pages = (uint32_t)best_m;
        k->floor_pages = (uint32_t)best_m;
        uint32_t min_n = best_n / PM_SB_MIN_FRACTION > 2 ? best_n / PM_SB_MIN_FRACTION : 2;
        for (uint64_t m = best_m - 1; m >= 1; m--) {
            uint32_t n = blocks_in(m * page, k->block_size, k->align);
            if (n < 2)
                break;
            k->floor_pages = (uint32_t)m;
            if (n >= min_n)
                k->min_pages = (uint32_t)m;
        }
        k->n_blocks = best_n;
        k->n_words = (best_n + 63) / 64;
        k->data_start = data_start_for(best_n, k->align);
        k->last_mask = (best_n % 64) ? (UINT64_C(1) << (best_n % 64)) - 1 : ~UINT64_C(0);
    }
    rt->n_small = n_small;
    rt->max_small = n_small ? rt->cls[n_small - 1].block_size : 0;
    /* the runs a thread keeps (pages.c): the large blocks just above the
     * classes, up to four times the largest */
    uint64_t keep = ((uint64_t)rt->max_small * 4) >> rt->page_shift;
    rt->run_max = (uint32_t)(keep < 1 ? 1 : keep > PM_RUN_MAX_PAGES ? PM_RUN_MAX_PAGES : keep);
    /* the superblocks a thread empties and keeps (superblock.c) */
    uint64_t spare = PM_SPARE_BYTES >> rt->page_shift;
    rt->spare_max = (uint32_t)(spare < rt->max_pages / 16 ? spare : rt->max_pages / 16);
}

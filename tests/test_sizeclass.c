/* Size classes and superblock geometry, for spaces from 8 KiB to 1 TiB. */
#include "check.h"

#include "internal.h"

#include <stdio.h>
#include <string.h>

static void test_classes(void)
{
    CHECK_EQ(pm_class_size(0), 16);
    CHECK_EQ(pm_class_size(7), 128);
    CHECK_EQ(pm_class_size(8), 160);
    CHECK_EQ(pm_class_size(PM_N_CLASSES - 1), PM_MAX_SMALL);
    uint32_t prev = 0;
    for (uint32_t c = 0; c < PM_N_CLASSES; c++) {
        uint32_t b = pm_class_size(c);
        CHECK(b > prev);
        CHECK(b % 16 == 0);
        prev = b;
    }
    for (size_t n = 1; n <= PM_MAX_SMALL; n++) {
        uint32_t c = pm_size_class(n);
        REQUIRE(c < PM_N_CLASSES);
        uint32_t b = pm_class_size(c);
        CHECK(b >= n);
        CHECK(c == 0 || pm_class_size(c - 1) < n);      /* the smallest fit */
        if (n >= 64)
            CHECK((b - n) * 5 <= b);                     /* waste <= 20% */
    }
}

/* The rule of files written before 2026-12-02 (superblock length from the
 * space's superblock size alone, classes up to 16 KiB): the preferred
 * length and the shortest cut of class c, 0 when it was not served. */
static uint32_t old_rule(const struct pm_rt *rt, uint32_t c, uint32_t *min_pages)
{
    uint64_t page = rt->page_size, m_start = rt->hdr->fixed.sb_size / page;
    uint32_t b = pm_class_size(c), align = b & (~b + 1);
    if (m_start == 0)
        m_start = 1;
    if (align > page)
        align = (uint32_t)page;
    uint64_t best_m = 0, best_n = 0;
    for (uint64_t m = m_start; m <= m_start * 4 + (b + page - 1) / page + 1; m++) {
        uint32_t n, ds;
        if (!pm_sb_geometry(rt, c, (uint32_t)m, &n, &ds))
            continue;
        uint64_t bytes = m * page, waste = bytes - (uint64_t)n * b;
        if (waste * 8 <= bytes) {
            best_m = m;
            best_n = n;
            break;
        }
        if (best_m == 0 || waste * best_m * page < (best_m * page - best_n * b) * bytes) {
            best_m = m;
            best_n = n;
        }
    }
    if (best_m == 0 || best_m * page * 4 > (rt->max_pages << rt->page_shift))
        return 0;
    uint64_t min_n = best_n / 4 > 2 ? best_n / 4 : 2;
    *min_pages = (uint32_t)best_m;
    for (uint64_t m = 1; m < best_m; m++) {
        uint32_t n, ds;
        if (pm_sb_geometry(rt, c, (uint32_t)m, &n, &ds) && n >= min_n) {
            *min_pages = (uint32_t)m;
            break;
        }
    }
    return (uint32_t)best_m;
}

/* Whether a header of class c that is m pages long passes the open's
 * check (its fields made as a carve makes them). */
static bool header_accepted(struct pm_rt *rt, uint32_t c, uint32_t m)
{
    struct pm_sb_header h;
    memset(&h, 0, sizeof h);
    uint32_t nb = 0, ds = 0;
    (void)pm_sb_geometry(rt, c, m, &nb, &ds);
    h.magic = PM_SB_MAGIC;
    h.cls = (uint16_t)c;
    h.n_words = (uint16_t)((nb + 63) / 64);
    h.n_blocks = nb;
    h.block_size = pm_class_size(c);
    h.n_pages = m;
    h.data_start = ds;
    h.check = pm_sb_check(&h);
    return sb_header_valid(rt, &h, 0);
}

static void test_geometry(void)
{
    static const uint64_t sizes[] = {8192, 65536, 1u << 20, 4u << 20, 64u << 20,
                                     1ull << 30, 1ull << 40};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        struct pm_rt rt;
        struct pm_header hdr;
        memset(&rt, 0, sizeof rt);
        memset(&hdr, 0, sizeof hdr);
        uint64_t cap = sizes[i];
        uint64_t page = cap / 32 < 256 ? 256 : cap / 32 > 4096 ? 4096 : cap / 32;
        rt.page_size = page;
        rt.page_shift = (uint32_t)__builtin_ctzll(page);
        rt.max_pages = cap / page;
        pm_store_relaxed(&rt.n_pages, rt.max_pages);
        uint64_t sb = cap / 64 < page ? page : cap / 64 > 65536 ? 65536 : cap / 64;
        hdr.fixed.sb_size = (uint32_t)sb;
        rt.hdr = &hdr;
        rt.fixed = hdr.fixed;           /* what an open validated */
        pm_classes_init(&rt);
        CHECK(rt.n_small > 0);
        /* a file of the old rule still verifies: every class it served is
         * served, and its superblocks' lengths, from the shortest cut to
         * the preferred one, are lengths a header may say */
        uint64_t old_total = 0, total = 0;
        for (uint32_t c = 0; c < PM_N_CLASSES && pm_class_size(c) <= 16384; c++) {
            uint32_t old_min = 0, old_n = old_rule(&rt, c, &old_min);
            if (old_n == 0)
                break;
            old_total += (uint64_t)old_n * page;
            CHECK(c < rt.n_small);
            if (c >= rt.n_small)
                break;
            CHECK(rt.cls[c].floor_pages <= old_min);
            CHECK(rt.cls[c].n_pages >= old_n);
            for (uint32_t m = old_min; m <= old_n; m++)
                CHECK(header_accepted(&rt, c, m));
        }
        /* one superblock of every class: what the old rule took, or a
         * sixteenth of the space where the classes above 16 KiB and the
         * longer superblocks come in (G5b: four threads holding a block of
         * every class leave the space most of its pages) */
        for (uint32_t c = 0; c < rt.n_small; c++)
            total += (uint64_t)rt.cls[c].n_pages * page;
        CHECK(total <= (old_total > cap / 16 ? old_total : cap / 16));
        if (total > old_total)
            CHECK(total <= cap / 16);
        if (cap >= (4u << 20))
            CHECK(rt.n_small >= 36);                    /* every class of 16 KiB or less */
        if (cap >= (64u << 20))
            CHECK_EQ(rt.n_small, PM_N_CLASSES);         /* every class served */
        for (uint32_t c = 0; c < rt.n_small; c++) {
            const struct pm_class *k = &rt.cls[c];
            uint64_t bytes = (uint64_t)k->n_pages * page;
            CHECK(k->n_blocks >= 2 && k->n_blocks <= PM_SB_MAX_BLOCKS);
            CHECK_EQ(k->n_words, (k->n_blocks + 63) / 64);
            CHECK(k->data_start >= 64 + 16 * k->n_words);
            CHECK(k->data_start % k->align == 0);
            CHECK(k->block_size % k->align == 0);
            CHECK(k->data_start + (uint64_t)k->n_blocks * k->block_size <= bytes);
            CHECK(k->n_pages * page * 4 <= cap);
            /* a superblock holds 16 blocks or more, or is 8 times the
             * space's superblock size, where the budget has room for all */
            if (cap >= (1u << 30))
                CHECK(k->n_blocks >= 16 || k->n_pages * page >= 8 * sb);
            /* the floor: the shortest length that holds two blocks */
            CHECK(k->floor_pages >= 1 && k->floor_pages <= k->min_pages);
            {
                uint32_t nb, ds;
                CHECK(pm_sb_geometry(&rt, c, k->floor_pages, &nb, &ds) && nb >= 2);
                if (k->floor_pages > 1)
                    CHECK(!pm_sb_geometry(&rt, c, k->floor_pages - 1, &nb, &ds));
                CHECK(header_accepted(&rt, c, k->floor_pages));
                CHECK(header_accepted(&rt, c, k->n_pages));
                CHECK(!header_accepted(&rt, c, k->n_pages + 1));
            }
            /* waste of a superblock: at most an eighth once it is 8+ blocks */
            if (k->n_blocks >= 8)
                CHECK((bytes - (uint64_t)k->n_blocks * k->block_size) * 8 <= bytes);
            /* every shorter cut down to min_pages is a valid geometry with
             * a quarter of the blocks at least */
            CHECK(k->min_pages >= 1 && k->min_pages <= k->n_pages);
            for (uint32_t m = k->min_pages; m <= k->n_pages; m++) {
                uint32_t nb, ds;
                if (!pm_sb_geometry(&rt, c, m, &nb, &ds)) {
                    CHECK(!"geometry for a length between min and preferred");
                    continue;
                }
                uint32_t min_n = k->n_blocks / 4 > 2 ? k->n_blocks / 4 : 2;
                CHECK(nb >= min_n && nb <= k->n_blocks);
                CHECK(ds % k->align == 0 && ds >= 64 + 16 * ((nb + 63) / 64));
                /* the page map's geometry word holds it as it is */
                uint32_t g = pm_geom_make(c, nb, ds);
                CHECK(pm_geom_cls(g) == c && pm_geom_n_blocks(g) == nb &&
                      pm_geom_data_start(g) == ds);
                CHECK((uint64_t)ds + (uint64_t)nb * k->block_size <= (uint64_t)m * page);
            }
            {
                /* the class's own length is answered from the class, by
                 * the search's own result */
                static struct pm_rt searched;
                searched = rt;
                searched.cls[c].n_pages = 0;           /* no shortcut */
                uint32_t nb, ds, nb2 = 0, ds2 = 0;
                CHECK(pm_sb_geometry(&rt, c, k->n_pages, &nb, &ds));
                CHECK(pm_sb_geometry(&searched, c, k->n_pages, &nb2, &ds2));
                CHECK_EQ(nb, nb2);
                CHECK_EQ(ds, ds2);
                CHECK_EQ(nb, k->n_blocks);
            }
            if (k->min_pages > 1) {
                uint32_t nb, ds, min_n = k->n_blocks / 4 > 2 ? k->n_blocks / 4 : 2;
                CHECK(!pm_sb_geometry(&rt, c, k->min_pages - 1, &nb, &ds) || nb < min_n);
            }
            /* the reciprocal division is exact over the whole superblock */
            for (uint64_t x = 0; x < bytes; x += k->block_size) {
                CHECK_EQ((x * k->recip) >> 40, x / k->block_size);
                if (x + k->block_size - 1 < bytes)
                    CHECK_EQ(((x + k->block_size - 1) * k->recip) >> 40, x / k->block_size);
            }
        }
    }
}

/* The blocks each bitmap word has: the loops that look for free words
 * take them from sb_word_valid, which has no branch; a mask too wide hands
 * out blocks past the superblock's last, one too narrow hides blocks. */
static void test_word_valid(void)
{
    struct pm_sb_header h;
    memset(&h, 0, sizeof h);
    for (uint32_t n = 2; n <= PM_SB_MAX_BLOCKS; n++) {
        h.n_blocks = n;
        h.n_words = (uint16_t)((n + 63) / 64);
        for (uint32_t w = 0; w < h.n_words; w++) {
            uint32_t in_word = n - w * 64 < 64 ? n - w * 64 : 64;
            uint64_t want = in_word == 64 ? ~UINT64_C(0) : (UINT64_C(1) << in_word) - 1;
            if (sb_word_valid(&h, w) != want) {
                CHECK_EQ(sb_word_valid(&h, w), want);
                return;
            }
        }
        CHECK_EQ(sb_word_valid(&h, h.n_words - 1u), sb_last_mask(&h));
    }
}

/* pm_block_index, free's exact division: the quotient where the block
 * size divides the offset, and where it does not a number no block count
 * reaches (an interior pointer, or one before a superblock's first block,
 * whose offset wraps), for every class: each offset of the first 64
 * blocks, then random ones over the whole range. */
static void test_block_index(void)
{
    uint64_t r = 0x9e3779b97f4a7c15u;
    for (uint32_t c = 0; c < PM_N_CLASSES; c++) {
        uint32_t b = pm_class_size(c);
        uint64_t inv = pm_class_inv(b);
        uint32_t shift = (uint32_t)__builtin_ctz(b);
        REQUIRE(((uint64_t)b >> shift) * inv == 1);
        uint32_t bad = 0;
        for (uint64_t x = 0; x < 64u * b; x++) {
            uint64_t i = pm_block_index(x, inv, shift);
            bool start = x % b == 0;
            if (start ? i != x / b : i < PM_SB_MAX_BLOCKS)
                bad++;
            /* the same offsets below the first block (wrapped) */
            uint64_t below = (uint64_t)0 - 1 - x;
            if (pm_block_index(below, inv, shift) < PM_SB_MAX_BLOCKS)
                bad++;
        }
        for (int k = 0; k < 1000000; k++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            uint64_t x = r >> (r & 63);             /* every magnitude */
            uint64_t i = pm_block_index(x, inv, shift);
            bool in = x % b == 0 && x / b < PM_SB_MAX_BLOCKS;
            if ((i < PM_SB_MAX_BLOCKS) != in || (in && i != x / b))
                bad++;
        }
        if (bad != 0)
            fprintf(stderr, "class %u (%u bytes): %u offsets misjudged\n", c, b, bad);
        CHECK_EQ(bad, 0);
    }
}

int main(void)
{
    test_classes();
    test_geometry();
    test_word_valid();
    test_block_index();
    return t_done();
}

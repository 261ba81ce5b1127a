/* The page map carries each superblock's geometry (class, block count, data
 * start: internal.h pm_geom_make) so that a free reads neither the header
 * nor the control word before the bitmap.  A free trusts it as it would
 * the header, so it must say exactly what the header says on every page of
 * every superblock — after carving, and after an open rebuilt the map from
 * the file — and nothing on a page in no superblock.  A map that said less
 * would only send frees down the slow path (no other test would notice); one
 * that said something else would free the wrong block.
 *
 * Then every block is freed (a quarter by another thread and a quarter by
 * this one before the reopen, the same after it: the remote free's and the
 * owner's fast paths) and each one's pattern checked first, so a geometry
 * that sent a free to the wrong bit shows as a corrupted block, a misuse
 * report or a nonempty space. */
#include "check.h"

#include <pthread.h>

#include "internal.h"

#define SPACE (64u << 20)

static struct t_misuse mis;
static allocator_space_t *s;

struct map_check {
    uint64_t pages, wrong, sb_pages, next;
};

static void expect_none(struct pm_rt *rt, struct map_check *m, uint64_t from, uint64_t to)
{
    for (uint64_t p = from; p < to; p++) {
        m->pages++;
        m->wrong += pm_load_relaxed(&rt->pagemap[p]) != 0;
    }
}

static int see_run(struct pm_rt *rt, const struct pm_run *r, void *arg)
{
    struct map_check *m = arg;
    expect_none(rt, m, m->next, r->first);
    m->next = r->last + 1;
    if (r->h == NULL) {
        expect_none(rt, m, r->first, r->last + 1);
        return 0;
    }
    uint64_t want = pm_pagemap_entry((uint32_t)r->first,
                                     pm_geom_make(r->h->cls, r->h->n_blocks, r->h->data_start));
    /* what a free decodes, against the header's own fields */
    uint32_t g = pm_pagemap_geom(want);
    if (pm_geom_cls(g) != r->h->cls || pm_geom_n_blocks(g) != r->h->n_blocks ||
        pm_geom_data_start(g) != r->h->data_start)
        m->wrong++;
    for (uint64_t p = r->first; p <= r->last; p++) {
        m->pages++;
        m->sb_pages++;
        m->wrong += pm_load_relaxed(&rt->pagemap[p]) != want;
    }
    return 0;
}

/* Pages whose map entry is not what the file says; *sb_pages: pages in
 * superblocks seen. */
static uint64_t map_disagrees(allocator_space_t *sp, uint64_t *sb_pages)
{
    struct pm_rt *rt = pm_rt_of(sp);
    REQUIRE(rt != NULL);
    struct map_check m = {0, 0, 0, 0};
    const char *why = NULL;
    uint64_t where = 0;
    REQUIRE(pm_walk_runs(rt, see_run, &m, &why, &where) == 0);
    expect_none(rt, &m, m.next, pm_load_acquire(&rt->n_pages));
    *sb_pages = m.sb_pages;
    return m.wrong;
}

struct blk {
    uint64_t *p;
    size_t n;
};

static void fill(struct blk *b, uint64_t seed)
{
    for (size_t i = 0; i < b->n / 8; i++)
        b->p[i] = seed * 0x9e3779b97f4a7c15ull + i;
}

static int intact(const struct blk *b, uint64_t seed)
{
    for (size_t i = 0; i < b->n / 8; i++)
        if (b->p[i] != seed * 0x9e3779b97f4a7c15ull + i)
            return 0;
    return 1;
}

struct quarter {
    struct blk *b;
    size_t n, which;
    long bad;
};

/* Frees the blocks i with i % 4 == which, checking each first. */
static void *free_quarter(void *arg)
{
    struct quarter *q = arg;
    for (size_t i = q->which; i < q->n; i += 4) {
        q->bad += !intact(&q->b[i], i);
        persistent_free(s, q->b[i].p);
    }
    return NULL;
}

/* A quarter freed by another thread (remote frees), one by this thread. */
static long free_two_quarters(struct blk *b, size_t n, size_t elsewhere, size_t here)
{
    struct quarter other = {b, n, elsewhere, 0}, mine = {b, n, here, 0};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, free_quarter, &other) == 0);
    pthread_join(th, NULL);
    free_quarter(&mine);
    return other.bad + mine.bad;
}

int main(void)
{
    const char *path = t_path("pagemap");
    s = create_persistent_allocator(path, SPACE);
    REQUIRE(s != NULL);
    persistent_error_hook_set(t_misuse_hook, &mis);
    struct pm_rt *rt = pm_rt_of(s);
    REQUIRE(rt != NULL);
    uint32_t n_small = rt->n_small;
    REQUIRE(n_small > 8 && n_small <= 64);

    /* every small class, three superblocks' worth each, interleaved */
    size_t n = 0, rounds = 0;
    for (uint32_t c = 0; c < n_small; c++) {
        n += 2 * (size_t)rt->cls[c].n_blocks + 1;
        if (2 * (size_t)rt->cls[c].n_blocks + 1 > rounds)
            rounds = 2 * (size_t)rt->cls[c].n_blocks + 1;
    }
    struct blk *b = calloc(n, sizeof *b);
    REQUIRE(b != NULL);
    size_t i = 0;
    for (size_t r = 0; r < rounds; r++)
        for (uint32_t c = 0; c < n_small; c++) {
            if (r >= 2 * (size_t)rt->cls[c].n_blocks + 1)
                continue;
            size_t sz = rt->cls[c].block_size;
            b[i].n = sz - sz % 8;
            b[i].p = persistent_malloc(s, sz);
            REQUIRE(b[i].p != NULL);
            fill(&b[i], i);
            i++;
        }
    REQUIRE(i == n);
    uint64_t sb_pages = 0;
    CHECK_EQ(map_disagrees(s, &sb_pages), 0);
    printf("after carving: %llu pages in superblocks\n", (unsigned long long)sb_pages);
    CHECK(sb_pages > (uint64_t)n_small * 2);

    /* frees into superblocks this thread owns, and remote ones */
    long bad = free_two_quarters(b, n, 0, 1);
    CHECK_EQ(map_disagrees(s, &sb_pages), 0);

    /* an open rebuilds the map from the headers */
    uint64_t *base = (uint64_t *)(void *)s;
    REQUIRE(persistent_space_close(s) == 0);
    s = create_persistent_allocator(path, SPACE);
    REQUIRE(s != NULL);
    REQUIRE((uint64_t *)(void *)s == base);   /* the same mapping: raw pointers hold */
    uint64_t again = 0;
    CHECK_EQ(map_disagrees(s, &again), 0);
    CHECK(again > 0 && again <= sb_pages);       /* empty ones released */
    rt = pm_rt_of(s);
    REQUIRE(rt != NULL && rt->n_small == n_small);

    /* this thread takes some superblocks back (an allocation of each class
     * adopts one), then the rest is freed */
    void *fresh[64];
    for (uint32_t c = 0; c < n_small; c++)
        REQUIRE((fresh[c] = persistent_malloc(s, rt->cls[c].block_size)) != NULL);
    bad += free_two_quarters(b, n, 2, 3);
    for (uint32_t c = 0; c < n_small; c++)
        persistent_free(s, fresh[c]);
    CHECK_EQ(bad, 0);
    CHECK_EQ(mis.count, 0);
    CHECK_EQ(map_disagrees(s, &again), 0);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    CHECK_EQ(rep.live_blocks, 0);
    free(b);
    destroy_persistent_allocator(s);
    unlink(path);
    return t_done();
}

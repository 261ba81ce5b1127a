/* Roots: seed calls, create-if-absent races, publishing built blocks
 * (racing publishers, misuse), removal, iteration, many roots (overflow
 * tables), tag 0, survival across a reopen, and a read-only opener. */
#include "check.h"

#include <pthread.h>

#include "internal.h"

static void test_seed_roots(allocator_space_t *s)
{
    CHECK(persistent_find_root(s, 0x1234567890abcdefull) == NULL);
    char *r = persistent_malloc_root(s, 0x1234567890abcdefull, 128);
    REQUIRE(r != NULL);
    for (int i = 0; i < 128; i++)
        CHECK(r[i] == 0);                 /* zeroed */
    memset(r, 0x42, 128);
    CHECK(persistent_find_root(s, 0x1234567890abcdefull) == r);
    errno = 0;
    CHECK(persistent_malloc_root(s, 0x1234567890abcdefull, 16) == NULL);
    CHECK_EQ(errno, EEXIST);
    void *r1 = persistent_malloc_root(s, 1, 64);
    void *r2 = persistent_malloc_root(s, 2, 128);
    void *r3 = persistent_malloc_root(s, 3, 100000);      /* a large block */
    REQUIRE(r1 && r2 && r3);
    CHECK(r1 != r2 && r2 != r3);
    CHECK(persistent_find_root(s, 3) == r3);
    /* tag 0 is a tag like any other */
    void *r0 = persistent_malloc_root(s, 0, 8);
    REQUIRE(r0 != NULL);
    CHECK(persistent_find_root(s, 0) == r0);
    CHECK(persistent_usable_size(s, r3) >= 100000);
}

static void test_get_remove(allocator_space_t *s)
{
    bool created;
    uint64_t *a = persistent_root_get(s, 77, 32, &created);
    REQUIRE(a != NULL);
    CHECK(created);
    *a = 99;
    uint64_t *b = persistent_root_get(s, 77, 4096, &created);
    CHECK(b == a && !created && *b == 99);
    CHECK_EQ(persistent_root_remove(s, 77), 0);
    CHECK(persistent_find_root(s, 77) == NULL);
    CHECK_EQ(persistent_usable_size(s, a), 0);      /* the block was freed */
    CHECK_EQ(persistent_root_remove(s, 77), -ENOENT);
    CHECK_EQ(persistent_root_remove(s, 78), -ENOENT);
    /* the tag can be used again, and comes back zeroed */
    uint64_t *c = persistent_root_get(s, 77, 32, &created);
    REQUIRE(c != NULL);
    CHECK(created && *c == 0);
    CHECK_EQ(persistent_root_remove(s, 0), 0);
    CHECK(persistent_find_root(s, 0) == NULL);
}

struct racer {
    allocator_space_t *s;
    int id;
    pthread_barrier_t *bar;
    void *got[64];
    int created;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    for (int round = 0; round < 64; round++) {
        pthread_barrier_wait(r->bar);
        bool created = false;
        uint64_t *p = persistent_root_get(r->s, 1000 + (uint64_t)round, 256, &created);
        r->got[round] = p;
        if (p == NULL)
            continue;
        /* nobody may ever see a root before it is zeroed */
        for (int i = 0; i < 32; i++) {
            uint64_t v = __atomic_load_n(&p[i], __ATOMIC_RELAXED);
            if (i != r->id && v != 0 && v != (uint64_t)i + 1)
                r->got[round] = NULL;
        }
        __atomic_store_n(&p[r->id], (uint64_t)r->id + 1, __ATOMIC_RELAXED);
        r->created += created;
    }
    return NULL;
}

static void test_racing_creators(allocator_space_t *s)
{
    enum { T = 8 };
    pthread_t th[T];
    struct racer r[T];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, T);
    for (int i = 0; i < T; i++) {
        r[i] = (struct racer){.s = s, .id = i, .bar = &bar};
        pthread_create(&th[i], NULL, race, &r[i]);
    }
    int created = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        created += r[i].created;
    }
    CHECK_EQ(created, 64);                /* exactly one creator per tag */
    for (int round = 0; round < 64; round++) {
        void *p = persistent_find_root(s, 1000 + (uint64_t)round);
        CHECK(p != NULL);
        for (int i = 0; i < T; i++)
            CHECK(r[i].got[round] == p);  /* everybody got the same block */
        uint64_t *v = p;
        for (int i = 0; i < T; i++)
            CHECK_EQ(v[i], (uint64_t)i + 1);
    }
    pthread_barrier_destroy(&bar);
}

/* Racing publishers: each thread builds its own block for a tag, fills it
 * with its pattern and publishes it; the losers check the winner is whole
 * and free their own. */
struct publisher {
    allocator_space_t *s;
    int id;
    pthread_barrier_t *bar;
    void *got[64];
    int won, bad;
};

enum { PUB_WORDS = 40 };

static uint64_t pub_word(int id, int round, int i)
{
    return ((uint64_t)id << 40) ^ ((uint64_t)round << 20) ^ (uint64_t)i ^ 0x5a5a5a5aull;
}

static bool pub_whole(const uint64_t *p, int round)
{
    int id = (int)(p[0] >> 40);
    for (int i = 0; i < PUB_WORDS; i++)
        if (p[i] != pub_word(id, round, i))
            return false;
    return true;
}

static void *publish_race(void *arg)
{
    struct publisher *r = arg;
    for (int round = 0; round < 64; round++) {
        pthread_barrier_wait(r->bar);
        uint64_t *mine = persistent_malloc(r->s, PUB_WORDS * sizeof(uint64_t));
        if (mine == NULL) {
            r->bad++;
            continue;
        }
        for (int i = 0; i < PUB_WORDS; i++)
            mine[i] = pub_word(r->id, round, i);
        persistent_persist(mine, PUB_WORDS * sizeof(uint64_t));
        uint64_t *root = persistent_root_publish(r->s, 5000 + (uint64_t)round, mine);
        r->got[round] = root;
        if (root == NULL || !pub_whole(root, round))
            r->bad++;
        if (root == mine) {
            r->won++;
        } else {
            for (int i = 0; i < PUB_WORDS; i++)     /* still ours, untouched */
                if (mine[i] != pub_word(r->id, round, i))
                    r->bad++;
            persistent_free(r->s, mine);
        }
    }
    return NULL;
}

static void *alloc_64(void *arg)
{
    return persistent_malloc(arg, 64);
}

static void test_publish(allocator_space_t *s)
{
    struct persistent_stats st0, st1;
    REQUIRE(persistent_stats_get(s, &st0) == 0);
    enum { T = 8 };
    pthread_t th[T];
    struct publisher r[T];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, T);
    for (int i = 0; i < T; i++) {
        r[i] = (struct publisher){.s = s, .id = i, .bar = &bar};
        pthread_create(&th[i], NULL, publish_race, &r[i]);
    }
    int won = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        won += r[i].won;
        CHECK_EQ(r[i].bad, 0);
    }
    pthread_barrier_destroy(&bar);
    CHECK_EQ(won, 64);                    /* exactly one block per tag */
    for (int round = 0; round < 64; round++) {
        uint64_t *p = persistent_find_root(s, 5000 + (uint64_t)round);
        REQUIRE(p != NULL);
        CHECK(pub_whole(p, round));
        for (int i = 0; i < T; i++)
            CHECK(r[i].got[round] == p);
    }
    /* the losers' blocks are gone: one block per tag remains */
    REQUIRE(persistent_stats_get(s, &st1) == 0);
    CHECK_EQ(st1.live_blocks, st0.live_blocks + 64);

    /* a tag that names a root already: the caller keeps its block */
    void *spare = persistent_malloc(s, 64);
    REQUIRE(spare != NULL);
    CHECK(persistent_root_publish(s, 5000, spare) == persistent_find_root(s, 5000));
    persistent_free(s, spare);
    /* after removal the tag can be published again */
    CHECK_EQ(persistent_root_remove(s, 5001), 0);
    spare = persistent_malloc(s, 64);
    REQUIRE(spare != NULL);
    CHECK(persistent_root_publish(s, 5001, spare) == spare);
    CHECK(persistent_find_root(s, 5001) == spare);

    /* only live blocks of the space can be published */
    struct t_misuse mis = {0};
    persistent_error_hook_set(t_misuse_hook, &mis);
    errno = 0;
    CHECK(persistent_root_publish(s, 6000, NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    char *blk = persistent_malloc(s, 64);
    REQUIRE(blk != NULL);
    errno = 0;
    CHECK(persistent_root_publish(s, 6000, blk + 16) == NULL);   /* interior */
    CHECK_EQ(errno, EINVAL);
    uint64_t on_stack[8];
    errno = 0;
    CHECK(persistent_root_publish(s, 6000, on_stack) == NULL);
    CHECK_EQ(errno, EINVAL);
    persistent_free(s, blk);
    errno = 0;
    CHECK(persistent_root_publish(s, 6000, blk) == NULL);        /* freed */
    CHECK_EQ(errno, EINVAL);
    /* freed by a thread that is not its owner: the remote free is not yet
     * collected (the bits say alloc 1, remote 1), and it is freed all the
     * same -- published, the owner's next collection would free a root */
    pthread_t th1;
    void *other = NULL;
    pthread_create(&th1, NULL, alloc_64, s);
    pthread_join(th1, &other);
    REQUIRE(other != NULL);
    persistent_free(s, other);
    CHECK_EQ(persistent_usable_size(s, other), 0);
    errno = 0;
    CHECK(persistent_root_publish(s, 6000, other) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mis.count, 5);
    CHECK_EQ(mis.last_code, PERSISTENT_E_BAD_POINTER);
    persistent_error_hook_set(NULL, NULL);
    CHECK(persistent_find_root(s, 6000) == NULL);
    /* a large block publishes like a small one */
    void *big = persistent_malloc(s, 1u << 20);
    REQUIRE(big != NULL);
    CHECK(persistent_root_publish(s, 6001, big) == big);
    CHECK_EQ(persistent_root_remove(s, 6001), 0);
}

/* A read-only opener finds the roots (persistent_root_get included) and
 * cannot make new ones. */
static void test_readonly(const char *p)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_READONLY;
    allocator_space_t *ro = NULL;
    REQUIRE(persistent_space_open(p, &o, &ro) == 0);
    bool created = true;
    char *r = persistent_root_get(ro, 0x1234567890abcdefull, 16, &created);
    REQUIRE(r != NULL);
    CHECK(!created);
    CHECK(r == persistent_find_root(ro, 0x1234567890abcdefull));
    CHECK(r[0] == 0x42);
    errno = 0;
    CHECK(persistent_root_get(ro, 0x7777777777ull, 16, &created) == NULL);
    CHECK_EQ(errno, EROFS);
    CHECK(!created);
    errno = 0;
    CHECK(persistent_malloc_root(ro, 0x1234567890abcdefull, 16) == NULL);
    CHECK_EQ(errno, EEXIST);
    errno = 0;
    CHECK(persistent_root_publish(ro, 0x7777777777ull, r) == NULL);
    CHECK_EQ(errno, EROFS);
    CHECK(persistent_find_root(ro, 0x7777777777ull) == NULL);
    CHECK_EQ(persistent_space_close(ro), 0);
}

static void test_many(allocator_space_t *s)
{
    /* more roots than the table in the metadata holds */
    enum { N = 5000 };
    for (uint64_t i = 0; i < N; i++) {
        uint64_t *p = persistent_malloc_root(s, 0xabc000000ull + i * 7919, 16);
        REQUIRE(p != NULL);
        *p = i;
    }
    for (uint64_t i = 0; i < N; i++) {
        uint64_t *p = persistent_find_root(s, 0xabc000000ull + i * 7919);
        REQUIRE(p != NULL);
        CHECK_EQ(*p, i);
    }
    for (uint64_t i = 0; i < N; i += 3)
        CHECK_EQ(persistent_root_remove(s, 0xabc000000ull + i * 7919), 0);
    /* iteration sees each live root once */
    struct persistent_root_iter it = {0};
    uint64_t tag;
    void *ptr;
    int seen = 0, ours = 0;
    while (persistent_root_next(s, &it, &tag, &ptr) == 1) {
        seen++;
        CHECK(persistent_find_root(s, tag) == ptr);
        if (tag >= 0xabc000000ull && tag < 0xabc000000ull + N * 7919ull) {
            uint64_t i = *(uint64_t *)ptr;
            CHECK(i % 3 != 0);
            CHECK_EQ(tag, 0xabc000000ull + i * 7919);
            ours++;
        }
    }
    CHECK_EQ(ours, N - (N + 2) / 3);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    CHECK_EQ(rep.roots, (uint64_t)seen);
}

/* A root's block belongs to its root (issue 10, defect 6): freeing it,
 * moving it with realloc, freeing it from a location, or publishing it
 * under a second tag is misuse, reported to the hook with nothing changed;
 * after a root is removed its block is a plain block again.  Also across a
 * reopen (the marks are rebuilt from the roots). */
/* Every root table's slots, the header's and the overflow tables', copied
 * to buf; their size. */
static size_t root_tables(allocator_space_t *s, unsigned char *buf, size_t cap)
{
    struct pm_rt *rt = pm_rt_of(s);
    size_t n = rt->fixed.roots_cap * sizeof(struct pm_root_slot);
    REQUIRE(n <= cap);
    memcpy(buf, rt->base + rt->fixed.roots_off, n);
    for (uint64_t off = rt->hdr->live.roots_next_off; off != 0;) {
        const struct pm_root_table *t = (const void *)(rt->base + off);
        size_t k = t->cap * sizeof(struct pm_root_slot);
        REQUIRE(n + k <= cap);
        memcpy(buf + n, t->slot, k);
        n += k;
        off = t->next_off;
    }
    return n;
}

static void misuse_round(allocator_space_t *s, uint64_t tag, char *blk, size_t n,
                         persistent_offset_t *slot)
{
    struct t_misuse m = {0};
    persistent_error_hook_set(t_misuse_hook, &m);
    persistent_free(s, blk);
    CHECK_EQ(m.count, 1);
    CHECK_EQ(m.last_code, PERSISTENT_E_ROOT_BLOCK);
    CHECK(m.last_ptr == blk);
    CHECK(persistent_find_root(s, tag) == blk);
    CHECK(persistent_usable_size(s, blk) >= n);
    CHECK(t_verify(blk, n, tag));

    /* refused with nothing changed: no slot claimed for the tag either */
    static unsigned char tables[4u << 20];
    size_t tsz = root_tables(s, tables, sizeof tables);
    errno = 0;
    CHECK(persistent_root_publish(s, tag + 1, blk) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(m.count, 2);
    CHECK_EQ(m.last_code, PERSISTENT_E_ROOT_BLOCK);
    CHECK(persistent_find_root(s, tag + 1) == NULL);
    static unsigned char after[4u << 20];
    CHECK(root_tables(s, after, sizeof after) == tsz && memcmp(tables, after, tsz) == 0);
    /* the same tag again is no misuse: it is that tag's root */
    CHECK(persistent_root_publish(s, tag, blk) == blk);
    CHECK_EQ(m.count, 2);

    /* resizing works in place only (a large block may grow there); a
     * move would free the root's block */
    int want = 2;
    void *q = blk;
    if (!persistent_realloc(s, q, n * 64))
        want++;
    CHECK(q == blk);
    CHECK_EQ(m.count, want);
    void *r = persistent_reallocate(s, blk, n * 128);
    CHECK(r == NULL || r == blk);
    want += r == NULL;
    CHECK_EQ(m.count, want);
    if (n <= 65536)
        CHECK_EQ(want, 4);                  /* a small block always moves */

    *slot = ptr_to_persistent_offset(s, blk);
    CHECK(persistent_free_from(s, slot) < 0);
    CHECK_EQ(m.count, ++want);
    CHECK(*slot == ptr_to_persistent_offset(s, blk));
    int rr = persistent_realloc_into(s, slot, n * 256);
    CHECK(*slot == ptr_to_persistent_offset(s, blk));
    want += rr < 0;
    CHECK_EQ(m.count, want);
    if (n <= 65536)
        CHECK(rr < 0);
    *slot = 0;
    CHECK(persistent_find_root(s, tag) == blk);
    CHECK(t_verify(blk, n, tag));
    persistent_error_hook_set(NULL, NULL);
    t_check_clean(s, "after root-block misuse");
}

static void test_root_blocks(const char *p)
{
    allocator_space_t *s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    persistent_offset_t *slot = persistent_malloc_root(s, 0xb10c0000, 64);
    REQUIRE(slot != NULL);
    /* a small and a large block, created and published */
    static const size_t sizes[] = {100, 300000};
    for (int i = 0; i < 2; i++) {
        uint64_t tag = 0xb10c0010 + 16 * (uint64_t)i;
        char *c = persistent_root_get(s, tag, sizes[i], NULL);
        REQUIRE(c != NULL);
        t_fill(c, sizes[i], tag);
        misuse_round(s, tag, c, sizes[i], slot);
        char *b = persistent_malloc(s, sizes[i]);
        REQUIRE(b != NULL);
        t_fill(b, sizes[i], tag + 4);
        REQUIRE(persistent_root_publish(s, tag + 4, b) == b);
        misuse_round(s, tag + 4, b, sizes[i], slot);
    }
    destroy_persistent_allocator(s);
    s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    slot = persistent_find_root(s, 0xb10c0000);
    REQUIRE(slot != NULL);
    for (int i = 0; i < 2; i++) {
        uint64_t tag = 0xb10c0010 + 16 * (uint64_t)i;
        misuse_round(s, tag, persistent_find_root(s, tag), sizes[i], slot);
        misuse_round(s, tag + 4, persistent_find_root(s, tag + 4), sizes[i], slot);
        /* removed, a root's block is a plain block again */
        char *b = persistent_find_root(s, tag + 4);
        CHECK_EQ(persistent_root_remove(s, tag + 4), 0);
        CHECK(persistent_find_root(s, tag + 4) == NULL);
        char *again = persistent_malloc(s, sizes[i]);
        REQUIRE(again != NULL);
        REQUIRE(persistent_root_publish(s, tag + 8, again) == again);
        CHECK_EQ(persistent_root_remove(s, tag + 8), 0);
        (void)b;
    }
    t_check_clean(s, "after root removal");
    destroy_persistent_allocator(s);
}

int main(void)
{
    const char *p = t_path("roots");
    allocator_space_t *s = create_persistent_allocator(p, 32u << 20);
    REQUIRE(s != NULL);
    test_seed_roots(s);
    test_get_remove(s);
    test_racing_creators(s);
    test_publish(s);
    test_many(s);
    t_check_clean(s, "roots");
    struct persistent_check_report before;
    persistent_check(s, &before);
    destroy_persistent_allocator(s);

    /* everything is found again after a reopen */
    s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    char *r = persistent_find_root(s, 0x1234567890abcdefull);
    REQUIRE(r != NULL);
    CHECK(r[0] == 0x42 && r[127] == 0x42);
    uint64_t *q = persistent_find_root(s, 0xabc000000ull + 4 * 7919);
    CHECK(q != NULL && *q == 4);
    struct persistent_check_report after;
    CHECK_EQ(persistent_check(s, &after), 0);
    CHECK_EQ(after.roots, before.roots);
    CHECK_EQ(after.live_blocks, before.live_blocks);
    CHECK(persistent_find_root(s, 5001) != NULL);
    destroy_persistent_allocator(s);
    test_readonly(p);
    test_root_blocks(p);
    unlink(p);
    return t_done();
}

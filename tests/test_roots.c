/* Roots: seed calls, create-if-absent races, removal, iteration, many
 * roots (overflow tables), tag 0, and survival across a reopen. */
#include "check.h"

#include <pthread.h>

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

int main(void)
{
    const char *p = t_path("roots");
    allocator_space_t *s = create_persistent_allocator(p, 32u << 20);
    REQUIRE(s != NULL);
    test_seed_roots(s);
    test_get_remove(s);
    test_racing_creators(s);
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
    destroy_persistent_allocator(s);
    unlink(p);
    return t_done();
}

/* Publishing calls: arguments, semantics, racing frees of one location,
 * more threads than lanes, and the durability modes they run under. */
#include "check.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"               /* pm_test_hook */

static struct t_misuse mis;

static void test_basics(allocator_space_t *s)
{
    persistent_offset_t *slot = persistent_root_get(s, 1, 16 * sizeof *slot, NULL);
    REQUIRE(slot != NULL);
    persistent_offset_t outside = 0;
    CHECK_EQ(persistent_alloc_into(s, &outside, 10), -EINVAL);      /* not in it */
    CHECK_EQ(persistent_alloc_into(s, (persistent_offset_t *)((char *)s + 64), 10),
             -EINVAL);                                              /* metadata */
    CHECK_EQ(persistent_alloc_into(s, (persistent_offset_t *)((char *)slot + 3), 10),
             -EINVAL);                                              /* misaligned */
    CHECK_EQ(persistent_alloc_into(s, &slot[0], 0), -EINVAL);
    CHECK_EQ(persistent_alloc_into(s, NULL, 10), -EINVAL);
    /* words of the pages that are no live block's: a freed block, a
     * superblock's header, free pages, a freed run; each refused with
     * nothing written there */
    struct persistent_stats st0, st1;
    REQUIRE(persistent_stats_get(s, &st0) == 0);
    persistent_offset_t *gone = persistent_malloc(s, 64);
    persistent_offset_t *run = persistent_malloc(s, 200000);
    REQUIRE(gone != NULL && run != NULL);
    persistent_offset_t *hdr = (persistent_offset_t *)((uintptr_t)gone & ~(uintptr_t)4095);
    persistent_offset_t hdr_was = *hdr;
    gone[1] = run[1] = 0;
    persistent_free(s, gone);
    persistent_free(s, run);
    persistent_offset_t *stale[] = {&gone[1], &run[1], hdr};
    for (size_t i = 0; i < sizeof stale / sizeof *stale; i++) {
        CHECK_EQ(persistent_alloc_into(s, stale[i], 10), -EINVAL);
        CHECK_EQ(persistent_realloc_into(s, stale[i], 10), -EINVAL);
        CHECK_EQ(persistent_free_from(s, stale[i]), -EINVAL);
    }
#ifndef PM_ASAN                        /* freed: poisoned there */
    CHECK_EQ(gone[1], 0);
    CHECK_EQ(run[1], 0);
#endif
    CHECK_EQ(*hdr, hdr_was);
    REQUIRE(persistent_stats_get(s, &st1) == 0);
    CHECK_EQ(st1.live_blocks, st0.live_blocks);

    CHECK_EQ(persistent_alloc_into(s, &slot[0], 100), 0);
    REQUIRE(slot[0] != 0);
    char *p = persistent_offset_to_ptr(s, slot[0]);
    CHECK(persistent_usable_size(s, p) >= 100);
    strcpy(p, "published");
    CHECK_EQ(persistent_alloc_into(s, &slot[1], 300000), 0);         /* large */
    CHECK(persistent_usable_size(s, persistent_offset_to_ptr(s, slot[1])) >= 300000);

    /* realloc-into: in place, moved with contents, from 0 */
    persistent_offset_t before = slot[0];
    CHECK_EQ(persistent_realloc_into(s, &slot[0], 90), 0);
    CHECK_EQ(slot[0], before);
    CHECK_EQ(persistent_realloc_into(s, &slot[0], 5000), 0);
    CHECK(slot[0] != before);
    CHECK_EQ(persistent_usable_size(s, p), 0);                       /* old freed */
    CHECK(strcmp(persistent_offset_to_ptr(s, slot[0]), "published") == 0);
    CHECK_EQ(persistent_realloc_into(s, &slot[0], 200000), 0);
    CHECK(strcmp(persistent_offset_to_ptr(s, slot[0]), "published") == 0);
    before = slot[1];
    CHECK_EQ(persistent_realloc_into(s, &slot[1], 100000), 0);      /* shrinks */
    CHECK_EQ(slot[1], before);
    CHECK_EQ(persistent_realloc_into(s, &slot[2], 64), 0);
    CHECK(slot[2] != 0);
    CHECK_EQ(persistent_realloc_into(s, &slot[2], 0), -EINVAL);

    /* free-from: clears, and a second call has nothing to do */
    for (int i = 0; i < 3; i++) {
        void *q = persistent_offset_to_ptr(s, slot[i]);
        CHECK_EQ(persistent_free_from(s, &slot[i]), 0);
        CHECK_EQ(slot[i], 0);
        CHECK_EQ(persistent_usable_size(s, q), 0);
        CHECK_EQ(persistent_free_from(s, &slot[i]), 0);
    }
    /* a location holding something that is not a block */
    slot[3] = 12345;
    CHECK_EQ(persistent_free_from(s, &slot[3]), -EINVAL);
    CHECK_EQ(mis.count, 1);
    CHECK_EQ(slot[3], 12345);                                       /* untouched */
    mis = (struct t_misuse){0};
    slot[3] = 0;
    t_check_clean(s, "publish basics");
}

/* ---- racing frees of one location, and more threads than lanes ---- */

static allocator_space_t *S;
static persistent_offset_t *shared;
static pthread_barrier_t all_have_lanes;

static void *racer(void *arg)
{
    int id = (int)(intptr_t)arg;
    /* every thread holds a lane at once: more than the metadata has */
    persistent_offset_t *first = &shared[32 + id];
    REQUIRE(persistent_alloc_into(S, first, 8) == 0);
    REQUIRE(persistent_free_from(S, first) == 0);
    pthread_barrier_wait(&all_have_lanes);
    for (int round = 0; round < 200; round++) {
        int i = (round + id) % 8;
        if (id % 2)
            persistent_free_from(S, &shared[i]);
        else if (__atomic_load_n(&shared[i], __ATOMIC_ACQUIRE) == 0 &&
                 __atomic_load_n(&shared[8 + id], __ATOMIC_ACQUIRE) == 0)
            /* only into an empty slot of its own: alloc_into overwrites,
             * and a block not moved last round would leak (the count of
             * live blocks below found it, now and then) */
            persistent_alloc_into(S, &shared[8 + id], 24 + (size_t)round);
        if (id % 2 == 0) {
            /* move what we made into a shared location, if it is free */
            persistent_offset_t mine = __atomic_load_n(&shared[8 + id], __ATOMIC_ACQUIRE);
            persistent_offset_t zero = 0;
            if (mine && __atomic_compare_exchange_n(&shared[i], &zero, mine, false,
                                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                __atomic_store_n(&shared[8 + id], 0, __ATOMIC_RELEASE);
        }
    }
    return NULL;
}

static void test_races(void)
{
    const char *p = t_path("pubrace");
    S = create_persistent_allocator(p, 8u << 10 << 10);
    REQUIRE(S != NULL);
    shared = persistent_root_get(S, 2, 80 * sizeof *shared, NULL);
    REQUIRE(shared != NULL);
    enum { T = 40 };                     /* the space has 32 lanes in its metadata */
    pthread_barrier_init(&all_have_lanes, NULL, T);
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        pthread_create(&th[i], NULL, racer, (void *)(intptr_t)i);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(mis.count, 0);              /* no double free: one taker each */
    for (int i = 0; i < 80; i++)
        if (shared[i])
            CHECK_EQ(persistent_free_from(S, &shared[i]), 0);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(S, &rep), 0);
    CHECK_EQ(rep.in_flight_lanes, 0);
    /* the root and the overflow lane tables the threads needed */
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(S, &st) == 0);
    CHECK(st.live_blocks >= 2);           /* at least one overflow table */
    /* and nothing else: every block but the root is a table of the chain */
    CHECK_EQ(st.live_blocks, 1 + (uint64_t)pm_load_acquire(&pm_rt_of(S)->n_lane_chunks));
    destroy_persistent_allocator(S);
    /* the lane tables are found again and are idle */
    S = create_persistent_allocator(p, 0);
    REQUIRE(S != NULL);
    CHECK_EQ(persistent_check(S, &rep), 0);
    destroy_persistent_allocator(S);
    unlink(p);
}

static void test_modes(void)
{
    static const uint32_t modes[] = {PERSISTENT_DURABILITY_PROCESS,
                                     PERSISTENT_DURABILITY_PMEM,
                                     PERSISTENT_DURABILITY_SYNC};
    for (size_t m = 0; m < 3; m++) {
        const char *p = t_path("modes");
        struct persistent_options o = {0};
        o.flags = PERSISTENT_OPEN_CREATE;
        o.size = 4u << 20;
        o.durability = modes[m];
        allocator_space_t *s;
        REQUIRE(persistent_space_open(p, &o, &s) == 0);
        test_basics(s);
        for (int i = 0; i < 2000; i++)
            persistent_free(s, persistent_malloc(s, 1 + (size_t)i % 5000));
        CHECK_EQ(persistent_sync(s), 0);
        persistent_space_close(s);
        /* a default open keeps the recorded mode; a new file is PROCESS */
        o.flags = 0;
        o.durability = PERSISTENT_DURABILITY_DEFAULT;
        REQUIRE(persistent_space_open(p, &o, &s) == 0);
        struct persistent_info in;
        REQUIRE(persistent_space_info(s, &in) == 0);
        CHECK_EQ(in.durability, modes[m]);
        t_check_clean(s, "reopened");
        persistent_space_close(s);
        unlink(p);
    }
    const char *p = t_path("default");
    allocator_space_t *s = create_persistent_allocator(p, 1u << 20);
    REQUIRE(s != NULL);
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    CHECK_EQ(in.durability, PERSISTENT_DURABILITY_PROCESS);   /* not DAX */
    destroy_persistent_allocator(s);
    unlink(p);
}

/* realloc_into reserves its new block before it takes the old one out of
 * *dest; if the old block is freed by another thread in between (misuse),
 * the call fails and must give a reserved page run back.  In a fixed space
 * with room for one such run, a malloc of that size must then succeed
 * (before the fix the run stayed claimed until a reopen). */
static atomic_int rf_armed, rf_parked, rf_go;

static void rf_hook(int point)
{
    if (point != PM_HOOK_LARGE_CLAIM || !atomic_exchange(&rf_armed, 0))
        return;
    atomic_store(&rf_parked, 1);
    while (!atomic_load(&rf_go))
        usleep(100);
}

struct rf_arg {
    allocator_space_t *s;
    persistent_offset_t *slot;
    int r;
};

static void *rf_thread(void *arg)
{
    struct rf_arg *a = arg;
    a->r = persistent_realloc_into(a->s, a->slot, 10u << 20);
    return NULL;
}

static void test_realloc_into_old_freed(void)
{
#ifdef PM_ASAN
    /* the call copies the old block after the other thread freed it: ASan
     * rightly reports the program's misuse, which is all this would show */
    printf("realloc_into beside a free of its old block: not in an ASan build\n");
    return;
#endif
    const char *p = t_path("pubrf");
    allocator_space_t *s = create_persistent_allocator(p, 16u << 20);
    REQUIRE(s != NULL);
    void *probe = persistent_malloc(s, 10u << 20);
    REQUIRE(probe != NULL);                     /* one run of 10 MiB fits */
    persistent_free(s, probe);
    persistent_offset_t *slot = persistent_root_get(s, 3, sizeof *slot, NULL);
    REQUIRE(slot != NULL);
    REQUIRE(persistent_alloc_into(s, slot, 64) == 0);
    persistent_offset_t old = *slot;
    int before = mis.count;

    atomic_store(&rf_parked, 0);
    atomic_store(&rf_go, 0);
    atomic_store(&rf_armed, 1);
    pm_store_release(&pm_test_hook, rf_hook);
    struct rf_arg a = {s, slot, 1};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, rf_thread, &a) == 0);
    while (!atomic_load(&rf_parked))
        usleep(100);
    /* the new run is claimed; the old block goes behind the call's back */
    persistent_free(s, persistent_offset_to_ptr(s, old));
    atomic_store(&rf_go, 1);
    REQUIRE(pthread_join(t, NULL) == 0);
    pm_store_release(&pm_test_hook, (pm_hook_fn *)NULL);

    CHECK_EQ(a.r, -EINVAL);
    CHECK_EQ(*slot, old);                       /* *dest untouched */
    CHECK_EQ(mis.count, before + 1);            /* reported */
    void *again = persistent_malloc(s, 10u << 20);
    CHECK(again != NULL);                       /* the run was given back */
    if (again != NULL)
        persistent_free(s, again);
    *slot = 0;                                  /* it named a freed block */
    t_check_clean(s, "after a failed realloc_into");
    destroy_persistent_allocator(s);
    unlink(p);
}

/* A block a live lane names is never reused (publish.c, pins).  In a child,
 * thread P parks inside a publishing call with its lane naming block X:
 * a free_from that has written its lane but not yet taken X out of *dest,
 * or an alloc_into that has put X in *dest but not yet retired its lane.
 * The main thread then frees X from *dest itself and allocates blocks of
 * X's size into other slots; the child is SIGKILLed with P parked.
 * Recovery frees X by P's lane (*dest no longer names it), so X must not
 * be in any slot: before the pins it was (the main thread's next blocks
 * of that size took it back), and the reopened space had a slot naming a
 * free block. */
enum { PK_FREE_LANE = 1, PK_PUBLISHED = 2, PK_SLOTS = 64 };
static atomic_int pk_point, pk_parked, pk_go;
static _Thread_local bool pk_me;

static void pk_hook(int point)
{
    if (!pk_me || point != atomic_load(&pk_point))
        return;
    atomic_store(&pk_parked, 1);
    while (!atomic_load(&pk_go))
        usleep(100);
}

struct pk_arg {
    allocator_space_t *s;
    persistent_offset_t *dest;
    size_t size;
    int which;
};

static void *pk_thread(void *arg)
{
    struct pk_arg *a = arg;
    pk_me = true;
    if (a->which == PK_FREE_LANE)
        (void)persistent_free_from(a->s, a->dest);
    else
        (void)persistent_alloc_into(a->s, a->dest, a->size);
    return NULL;
}

static void parked_lane(int which, size_t size)
{
    const char *p = t_path("pubpark");
    unlink(p);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        allocator_space_t *s = create_persistent_allocator(p, 32u << 20);
        if (s == NULL)
            _exit(2);
        persistent_offset_t *r = persistent_root_get(s, 1, (PK_SLOTS + 1) * sizeof *r, NULL);
        if (r == NULL)
            _exit(3);
        if (which == PK_FREE_LANE && persistent_alloc_into(s, &r[0], size) != 0)
            _exit(4);
        atomic_store(&pk_parked, 0);
        atomic_store(&pk_go, 0);
        atomic_store(&pk_point, which == PK_FREE_LANE ? PM_HOOK_PUB_FREE_LANE
                                                      : PM_HOOK_PUB_PUBLISHED);
        pm_store_release(&pm_test_hook, pk_hook);
        struct pk_arg a = {s, &r[0], size, which};
        pthread_t t;
        if (pthread_create(&t, NULL, pk_thread, &a) != 0)
            _exit(5);
        for (int i = 0; !atomic_load(&pk_parked); i++) {
            if (i == 100000)
                _exit(9);               /* 10 s: the call never got there */
            usleep(100);
        }
        persistent_offset_t x = pm_load_acquire((pm_atomic_u64 *)&r[0]);
        if (x == 0 || persistent_free_from(s, &r[0]) != 0)
            _exit(6);
        int reused = 0;
        for (int i = 1; i <= PK_SLOTS; i++) {
            if (persistent_alloc_into(s, &r[i], size) != 0)
                _exit(7);
            reused += r[i] == x;
        }
        if (write(fds[1], &reused, sizeof reused) != sizeof reused)
            _exit(8);
        for (;;)
            pause();                    /* killed here, P still parked */
    }
    close(fds[1]);
    int reused = -1;
    /* a child that ended without an answer: its exit status says where */
    CHECK_EQ(read(fds[0], &reused, sizeof reused), (ssize_t)sizeof reused);
    close(fds[0]);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    CHECK_EQ(reused, 0);                /* X stayed out of reach */
    allocator_space_t *s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    persistent_offset_t *r = persistent_find_root(s, 1);
    REQUIRE(r != NULL);
    int dead = 0;
    for (int i = 1; i <= PK_SLOTS; i++)
        dead += r[i] == 0 || persistent_usable_size(s, persistent_offset_to_ptr(s, r[i])) == 0;
    if (dead != 0) {
        fprintf(stderr, "%s parked, %zu-byte blocks: %d of %d slots name no live block "
                "after recovery\n", which == PK_FREE_LANE ? "free_from" : "alloc_into", size,
                dead, PK_SLOTS);
        t_failures++;
    }
    /* and none is handed out again */
    void *fresh[PK_SLOTS];
    for (int i = 0; i < PK_SLOTS; i++) {
        fresh[i] = persistent_malloc(s, size);
        REQUIRE(fresh[i] != NULL);
        for (int j = 1; j <= PK_SLOTS; j++)
            if (persistent_offset_from_ptr(s, fresh[i]) == r[j]) {
                fprintf(stderr, "slot %d's block handed out again\n", j);
                t_failures++;
            }
    }
    for (int i = 0; i < PK_SLOTS; i++)
        persistent_free(s, fresh[i]);
    t_check_clean(s, "after a kill with a parked lane");
    destroy_persistent_allocator(s);
    unlink(p);
}

/* The same, but the parked thread goes on: its pin dropped, it finishes
 * the free the main thread left to it, and the block is reusable (a small
 * block's superblock no longer held: n_pub back to 0; a run's pages no
 * longer claimed once the thread is gone). */
static void resumed_lane(int which, size_t size)
{
    const char *p = t_path("pubresume");
    allocator_space_t *s = create_persistent_allocator(p, 32u << 20);
    REQUIRE(s != NULL);
    persistent_offset_t *r = persistent_root_get(s, 2, 8 * sizeof *r, NULL);
    REQUIRE(r != NULL);
    if (which == PK_FREE_LANE)
        REQUIRE(persistent_alloc_into(s, &r[0], size) == 0);
    atomic_store(&pk_parked, 0);
    atomic_store(&pk_go, 0);
    atomic_store(&pk_point, which == PK_FREE_LANE ? PM_HOOK_PUB_FREE_LANE
                                                  : PM_HOOK_PUB_PUBLISHED);
    pm_store_release(&pm_test_hook, pk_hook);
    struct pk_arg a = {s, &r[0], size, which};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, pk_thread, &a) == 0);
    while (!atomic_load(&pk_parked))
        usleep(100);
    persistent_offset_t x = pm_load_acquire((pm_atomic_u64 *)&r[0]);
    REQUIRE(x != 0);
    CHECK_EQ(persistent_free_from(s, &r[0]), 0);
    struct pm_rt *rt = pm_rt_of(s);
    uint32_t run = pm_run_first(rt, x);
    uint64_t page = (x - rt->data_off) >> rt->page_shift;
    bool small = size <= rt->max_small;
    if (small)
        CHECK(pm_load_acquire(&rt->ctl[run].n_pub) != 0);  /* held for the parked one */
    else
        CHECK(pg_bit(rt->used, page));
    atomic_store(&pk_go, 1);
    REQUIRE(pthread_join(t, NULL) == 0);
    pm_store_release(&pm_test_hook, (pm_hook_fn *)NULL);
    if (small)
        CHECK_EQ(pm_load_acquire(&rt->ctl[run].n_pub), 0u);
    else
        CHECK(!pg_bit(rt->used, page));         /* the thread's exit gave them back */
    t_check_clean(s, "after a resumed lane");
    destroy_persistent_allocator(s);
    unlink(p);
}

static void test_parked_lane_block_kept(void)
{
    resumed_lane(PK_FREE_LANE, 64);
    resumed_lane(PK_FREE_LANE, 100u << 10);
    resumed_lane(PK_PUBLISHED, 100u << 10);
    if (getenv("PM_UNDER_QEMU") != NULL) {
        /* parked_lane's forked child starts a thread: under qemu-user such
         * a child hung now and then (a fresh-clone CI's aarch64 stage,
         * 2026-12-06: 120 s, then killed), as test_tx's did; natively never */
        printf("a lane parked in a killed writer: skipped under qemu-user\n");
        return;
    }
    parked_lane(PK_FREE_LANE, 64);
    parked_lane(PK_FREE_LANE, 100u << 10);
    parked_lane(PK_PUBLISHED, 100u << 10);
}

/* free_from read *dest, then was stopped before it looked at the block;
 * meanwhile another thread freed the block from *dest and it was made a
 * root (malloc, root_publish).  The stale offset is no misuse: the call
 * must find *dest empty and return 0, not report "a root's block" (the
 * adversarial driver's shared slots, adv_park kill with a parked thread,
 * hit it as PERSISTENT_E_ROOT_BLOCK from free_from). */
static void *fr_thread(void *arg)
{
    struct pk_arg *a = arg;
    pk_me = true;
    intptr_t rc = persistent_free_from(a->s, a->dest);
    return (void *)rc;
}

static void test_free_from_stale_read(void)
{
    const char *p = t_path("pubstale");
    allocator_space_t *s = create_persistent_allocator(p, 8u << 20);
    REQUIRE(s != NULL);
    persistent_offset_t *r = persistent_root_get(s, 3, 8 * sizeof *r, NULL);
    REQUIRE(r != NULL);
    REQUIRE(persistent_alloc_into(s, &r[0], 64) == 0);
    persistent_offset_t x = r[0];
    atomic_store(&pk_parked, 0);
    atomic_store(&pk_go, 0);
    atomic_store(&pk_point, PM_HOOK_PUB_FREE_READ);
    pm_store_release(&pm_test_hook, pk_hook);
    struct pk_arg a = {s, &r[0], 64, 0};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fr_thread, &a) == 0);
    while (!atomic_load(&pk_parked))
        usleep(100);
    CHECK_EQ(persistent_free_from(s, &r[0]), 0);
    void *held[256];
    int nh = 0;
    void *b = NULL;
    while (nh < 256) {
        void *q = persistent_malloc(s, 64);
        REQUIRE(q != NULL);
        if (persistent_offset_from_ptr(s, q) == x) {
            b = q;
            break;
        }
        held[nh++] = q;
    }
    REQUIRE(b != NULL);                 /* X taken again */
    CHECK(persistent_root_publish(s, 4, b) == b);
    int before = mis.count;
    atomic_store(&pk_go, 1);
    void *rc;
    REQUIRE(pthread_join(t, &rc) == 0);
    pm_store_release(&pm_test_hook, (pm_hook_fn *)NULL);
    CHECK_EQ((intptr_t)rc, (intptr_t)0);
    CHECK_EQ(mis.count, before);            /* no misuse reported */
    CHECK(persistent_find_root(s, 4) == b && persistent_usable_size(s, b) >= 64);
    for (int i = 0; i < nh; i++)
        persistent_free(s, held[i]);
    t_check_clean(s, "after a stale free_from");
    destroy_persistent_allocator(s);
    unlink(p);
}

int main(void)
{
    persistent_error_hook_set(t_misuse_hook, &mis);
    test_modes();
    test_races();
    test_realloc_into_old_freed();
    test_parked_lane_block_kept();
    test_free_from_stale_read();
    return t_done();
}

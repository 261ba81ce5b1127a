/* G1 for growth: a thread stopped forever in the middle of growing the
 * space stops nobody, and another thread finishes its growth.
 *
 * A test hook sends the growing thread a signal at one step of the growth
 * (target chosen; file extended but not committed; committed but not
 * published), and the handler blocks until it is released: a debugger
 * stop, a slow page fault or preemption at the worst moment.  Meanwhile
 * other threads allocate far more than the space held when the grower
 * stopped, which needs new pages; each block is filled and checked.  Then
 * the grower is released, finishes its allocation, and the heap is checked
 * before and after a reopen. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

static _Thread_local int is_victim;
static _Atomic int park_point;
static _Atomic int parked;            /* 1 while the victim is stopped */
static _Atomic int release_victim;

static void stop_handler(int sig)
{
    (void)sig;
    atomic_store(&parked, 1);
    struct timespec ts = {0, 1000000};
    while (!atomic_load(&release_victim))
        nanosleep(&ts, NULL);       /* async-signal-safe */
    atomic_store(&parked, 2);
}

static void park_hook(int point)
{
    if (is_victim && point == atomic_load(&park_point))
        pthread_kill(pthread_self(), SIGUSR1);
}

struct blk {
    void *p;
    size_t n;
};

struct victim_arg {
    allocator_space_t *s;
    struct blk b[4096];
    int n;
};

static void *victim(void *arg)
{
    struct victim_arg *v = arg;
    is_victim = 1;
    /* allocate until the space must grow: the hook stops this thread */
    for (v->n = 0; v->n < 4096; v->n++) {
        size_t n = 4000 + (size_t)v->n % 7 * 1000;
        void *p = persistent_malloc(v->s, n);
        if (p == NULL)
            break;
        t_fill(p, n, 7000 + (uint64_t)v->n);
        v->b[v->n] = (struct blk){p, n};
        if (atomic_load(&parked) == 2) {
            v->n++;
            return NULL;            /* released: one more block is enough */
        }
    }
    atomic_store(&parked, -1);      /* the hook never fired */
    return NULL;
}

struct other_arg {
    allocator_space_t *s;
    int id;
    _Atomic long done;              /* blocks allocated so far */
    _Atomic int finished;
    struct blk *b;
    int n;
};

enum { OTHER_BLOCKS = 3000 };

static void *other(void *arg)
{
    struct other_arg *a = arg;
    uint64_t seed = 99 + (uint64_t)a->id;
    a->b = calloc(OTHER_BLOCKS, sizeof *a->b);
    for (a->n = 0; a->n < OTHER_BLOCKS; a->n++) {
        size_t n = 1 + t_rand(&seed) % (a->n % 40 == 0 ? 300000 : 9000);
        void *p = persistent_malloc(a->s, n);
        REQUIRE(p != NULL);
        t_fill(p, n, (uint64_t)a->id << 32 | (uint64_t)a->n);
        a->b[a->n] = (struct blk){p, n};
        atomic_store(&a->done, a->n + 1);
    }
    atomic_store(&a->finished, 1);
    return NULL;
}

static void run_point(int point, const char *name)
{
    const char *path = t_path("growpark");
    allocator_space_t *s = t_create(path, 256u << 10, 1u << 30);

    atomic_store(&parked, 0);
    atomic_store(&release_victim, 0);
    atomic_store(&park_point, point);
    static struct victim_arg va;
    memset(&va, 0, sizeof va);
    va.s = s;
    pthread_t vt;
    pthread_create(&vt, NULL, victim, &va);
    while (atomic_load(&parked) == 0)
        usleep(1000);
    REQUIRE(atomic_load(&parked) == 1);
    struct persistent_info at_park;
    REQUIRE(persistent_space_info(s, &at_park) == 0);

    enum { T = 3 };
    static struct other_arg oa[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        memset(&oa[i], 0, sizeof oa[i]);
        oa[i].s = s;
        oa[i].id = i;
        pthread_create(&th[i], NULL, other, &oa[i]);
    }
    uint64_t t0 = t_now_ns(), deadline = t0 + 60ull * 1000000000u;
    bool all = false;
    while (!all && t_now_ns() < deadline) {
        usleep(1000);
        all = true;
        for (int i = 0; i < T; i++)
            all = all && atomic_load(&oa[i].finished);
    }
    long total = 0;
    for (int i = 0; i < T; i++)
        total += atomic_load(&oa[i].done);
    struct persistent_info during;
    REQUIRE(persistent_space_info(s, &during) == 0);
    printf("%-10s: grower stopped; others made %ld allocations in %.1f ms, "
           "capacity %llu -> %llu KiB\n", name, total,
           (double)(t_now_ns() - t0) / 1e6,
           (unsigned long long)at_park.capacity >> 10,
           (unsigned long long)during.capacity >> 10);
    if (!all) {
        fprintf(stderr, "%s: other threads are blocked behind the stopped grower\n",
                name);
        t_cleanup();
        _exit(1);
    }
    CHECK_EQ(atomic_load(&parked), 1);        /* still stopped all along */
    CHECK(during.capacity >= at_park.capacity + (16u << 20));

    atomic_store(&release_victim, 1);
    pthread_join(vt, NULL);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(atomic_load(&parked), 2);
    for (int j = 0; j < va.n; j++)
        CHECK(t_verify(va.b[j].p, va.b[j].n, 7000 + (uint64_t)j));
    for (int i = 0; i < T; i++)
        for (int j = 0; j < oa[i].n; j++)
            CHECK(t_verify(oa[i].b[j].p, oa[i].b[j].n, (uint64_t)i << 32 | (uint64_t)j));
    t_check_clean(s, name);
    /* half of it freed, the rest must survive a reopen */
    for (int i = 0; i < T; i++)
        for (int j = 0; j < oa[i].n; j += 2)
            persistent_free(s, oa[i].b[j].p);
    REQUIRE(persistent_space_close(s) == 0);
    s = t_create(path, 256u << 10, 1u << 30);
    t_check_clean(s, "after reopen");
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    CHECK_EQ(st.live_blocks, (uint64_t)va.n + (uint64_t)T * OTHER_BLOCKS / 2);
    REQUIRE(persistent_space_close(s) == 0);
    for (int i = 0; i < T; i++)
        free(oa[i].b);
    unlink(path);
}

/* An in-place realloc that needs the space grown to its maximum, while two
 * other threads' growths stop for good after choosing their (smaller)
 * targets: the realloc's thread finishes each of them (G1) and must then
 * go on growing for itself.  A cap of two growths in claim_after made it
 * fail (ENOMEM) with the room there; the same call made again succeeded
 * (a helper's hunt, G5b). */
static _Atomic int rg_parked[3], rg_release, rg_commits;
static pthread_t rg_second;
static _Thread_local int rg_role;        /* 1, 2: the stopped growers */
static allocator_space_t *rg_space;
static size_t rg_size[3];

static void *rg_grower(void *arg)
{
    rg_role = (int)(intptr_t)arg;
    void *p = persistent_malloc(rg_space, rg_size[rg_role]);
    if (p != NULL)
        persistent_free(rg_space, p);
    return NULL;
}

static void rg_hook(int point)
{
    if (rg_role != 0 && point == PM_HOOK_GROW_TARGET && !atomic_load(&rg_parked[rg_role])) {
        atomic_store(&rg_parked[rg_role], 1);
        struct timespec ts = {0, 1000000};
        while (!atomic_load(&rg_release))
            nanosleep(&ts, NULL);
    }
    /* the realloc's thread has committed the first grower's growth: the
     * second asks for one now, and stops after choosing its target */
    if (rg_role == 0 && point == PM_HOOK_GROW_COMMITTED && atomic_load(&rg_parked[1]) &&
        atomic_fetch_add(&rg_commits, 1) == 0) {
        REQUIRE(pthread_create(&rg_second, NULL, rg_grower, (void *)(intptr_t)2) == 0);
        struct timespec ts = {0, 1000000};
        while (!atomic_load(&rg_parked[2]))
            nanosleep(&ts, NULL);
    }
}

static uint64_t rg_pages(allocator_space_t *s)
{
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    return in.capacity / in.page_size;
}

static void test_realloc_after_helped_growths(void)
{
    const char *path = t_path("growpark-realloc");
    unlink(path);
    allocator_space_t *s = t_create(path, 64u << 10, 2u << 20);
    rg_space = s;
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    uint64_t page = in.page_size;
    size_t half = (size_t)(in.max_capacity / 2);
    unsigned char *b = persistent_malloc(s, half);
    REQUIRE(b != NULL);
    memset(b, 0x5a, half);
    /* each grower asks for more pages than are free, fewer than the
     * eighth a growth adds: its target is the eighth */
    uint64_t n0 = rg_pages(s), n1 = n0 + n0 / 8;
    rg_size[1] = (size_t)((n0 - half / page + 4) * page);
    rg_size[2] = (size_t)((n1 - half / page + 4) * page);
    pm_store_release(&pm_test_hook, rg_hook);
    pthread_t t1;
    REQUIRE(pthread_create(&t1, NULL, rg_grower, (void *)(intptr_t)1) == 0);
    struct timespec ts = {0, 1000000};
    while (!atomic_load(&rg_parked[1]))
        nanosleep(&ts, NULL);
    /* the block to the whole capacity the maximum gives: it fits in
     * place (the pages before it are the space's first two) */
    size_t want = (size_t)in.max_capacity;
    void *bb = b;
    errno = 0;
    bool ok = persistent_realloc(s, bb, want);
    int e = errno;
    pm_store_release(&pm_test_hook, park_hook);
    CHECK(atomic_load(&rg_parked[2]) == 1);         /* the schedule happened */
    CHECK(rg_commits >= 1);
    if (!ok)
        fprintf(stderr, "realloc in place to %zu bytes failed: errno %d, space %llu pages\n",
                want, e, (unsigned long long)rg_pages(s));
    CHECK(ok);
    CHECK(bb == b);
    CHECK_EQ(rg_pages(s) * page, in.max_capacity);
    for (size_t i = 0; i < half; i += 4096)
        CHECK_EQ(b[i], 0x5a);
    /* both growers finish their calls before the space is closed */
    atomic_store(&rg_release, 1);
    REQUIRE(pthread_join(t1, NULL) == 0);
    if (atomic_load(&rg_parked[2]))
        REQUIRE(pthread_join(rg_second, NULL) == 0);
    t_check_clean(s, "after the realloc");
    persistent_free(s, bb);
    REQUIRE(persistent_space_close(s) == 0);
    unlink(path);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stop_handler;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
    pm_store_release(&pm_test_hook, park_hook);
    run_point(PM_HOOK_GROW_TARGET, "target");
    run_point(PM_HOOK_GROW_ALLOCATED, "extended");
    run_point(PM_HOOK_GROW_COMMITTED, "committed");
    test_realloc_after_helped_growths();
    return t_done();
}

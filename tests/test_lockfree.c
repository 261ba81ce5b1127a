/* G1: a thread stopped forever in the middle of an operation blocks nobody.
 *
 * For each interesting point (just after taking a superblock, in the middle
 * of a remote free, with pages claimed for a large run not yet committed,
 * with a root's key claimed and its block not yet published, in a refill
 * between its looks at the partial lists and its check for a scavenge's
 * move) a test hook parks one thread there for good.  Then other threads
 * must complete malloc, free (local and cross-thread), realloc, large
 * blocks and roots on every size class, each under a watchdog. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

static _Thread_local int is_victim;
static _Atomic int park_point;
static _Atomic int parked;

static void park_hook(int point)
{
    if (!is_victim || point != atomic_load(&park_point))
        return;
    atomic_store(&parked, 1);
    for (;;)
        pause();              /* stopped forever, inside the operation */
}

struct victim_arg {
    allocator_space_t *s;
    int point;
    void *remote_block;       /* allocated by another thread */
};

static void *victim(void *arg)
{
    struct victim_arg *v = arg;
    is_victim = 1;
    switch (v->point) {
    case PM_HOOK_SB_TAKEN:
        (void)persistent_malloc(v->s, 200);
        break;
    case PM_HOOK_REMOTE_PUSH:
        persistent_free(v->s, v->remote_block);
        break;
    case PM_HOOK_LARGE_CLAIM:
        (void)persistent_malloc(v->s, 3u << 20);
        break;
    case PM_HOOK_ROOT_INSERT:
        (void)persistent_root_get(v->s, 4242, 64, NULL);
        break;
    case PM_HOOK_POP_LOOKED:
        /* a new class: its refill finds both partial lists empty */
        (void)persistent_malloc(v->s, 3000);
        break;
    }
    /* reaching here means the hook did not fire */
    atomic_store(&parked, -1);
    return NULL;
}

struct others_arg {
    allocator_space_t *s;
    int id;
    void **shared;            /* blocks another thread frees */
    _Atomic int done;
};

static void *others(void *arg)
{
    struct others_arg *a = arg;
    allocator_space_t *s = a->s;
    for (int round = 0; round < 3; round++) {
        /* every size class, and large blocks */
        for (size_t n = 1; n <= (1u << 20); n = n < 256 ? n + 7 : n * 5 / 4) {
            char *p = persistent_malloc(s, n);
            REQUIRE(p != NULL);
            t_fill(p, n, n);
            char *old = p;
            REQUIRE(persistent_realloc(s, p, n + n / 3 + 1));
            CHECK(t_verify_as(p, n, old, n));
            /* cross-thread: trade with the other helper */
            void *theirs = __atomic_exchange_n(&a->shared[n % 64], p, __ATOMIC_ACQ_REL);
            if (theirs)
                persistent_free(s, theirs);
        }
        /* roots, including the one the victim is creating */
        bool created;
        uint64_t *r = persistent_root_get(s, 4242, 64, &created);
        REQUIRE(r != NULL);
        CHECK(persistent_find_root(s, 4242) == r);
        char *q = persistent_root_get(s, 5000 + (uint64_t)a->id, 32, NULL);
        REQUIRE(q != NULL);
    }
    atomic_store(&a->done, 1);
    return NULL;
}

static void run_point(int point, const char *name)
{
    const char *p = t_path("lockfree");
    allocator_space_t *s = create_persistent_allocator(p, 128u << 20);
    REQUIRE(s != NULL);
    void *remote = persistent_malloc(s, 96);
    REQUIRE(remote != NULL);

    atomic_store(&parked, 0);
    atomic_store(&park_point, point);
    static struct victim_arg va;
    va = (struct victim_arg){s, point, remote};
    pthread_t vt;
    pthread_create(&vt, NULL, victim, &va);
    pthread_detach(vt);
    while (atomic_load(&parked) == 0)
        usleep(1000);
    CHECK_EQ(atomic_load(&parked), 1);

    enum { T = 4 };
    static void *shared[64];
    memset(shared, 0, sizeof shared);
    static struct others_arg oa[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        oa[i].s = s;
        oa[i].id = i;
        oa[i].shared = shared;
        atomic_store(&oa[i].done, 0);
        pthread_create(&th[i], NULL, others, &oa[i]);
    }
    /* watchdog: a blocked helper would never finish */
    uint64_t deadline = t_now_ns() + 120ull * 1000000000u;
    for (int i = 0; i < T; i++) {
        while (!atomic_load(&oa[i].done) && t_now_ns() < deadline)
            usleep(1000);
        if (!atomic_load(&oa[i].done)) {
            fprintf(stderr, "%s: a thread is blocked behind the parked one\n", name);
            exit(1);
        }
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < 64; i++)
        if (shared[i])
            persistent_free(s, shared[i]);
    printf("parked at %-12s: %d threads completed every class\n", name, T);
    /* the parked thread is still inside the space: it stays open */
}

int main(void)
{
    pm_store_release(&pm_test_hook, park_hook);
    run_point(PM_HOOK_SB_TAKEN, "sb-taken");
    run_point(PM_HOOK_REMOTE_PUSH, "remote-free");
    run_point(PM_HOOK_LARGE_CLAIM, "large-claim");
    run_point(PM_HOOK_ROOT_INSERT, "root-insert");
    run_point(PM_HOOK_POP_LOOKED, "pop-looked");
    int r = t_done();
    /* parked threads never return; leave without closing their spaces */
    fflush(stdout);
    t_cleanup();
    _exit(r);
}

/* Revocation against the owner's own anchor moves (issue 10, defect 5).
 *
 * A thief revokes a superblock by moving its anchor OWNED(v) -> REVOKING(v),
 * fencing with membarrier and reading v's busy flag: busy means "give it
 * back".  An owner that met REVOKING in its own move (release, detach,
 * hand-back at thread exit, the re-validation at the start of an operation)
 * used to drop the superblock from its books; the thief, seeing the owner
 * busy, gave it back, and it stayed OWNED by a thread that no longer knew
 * it: never allocated from again, never listed for remote frees.
 *
 * Test hooks serialise the two threads at exactly that point: the owner
 * stops just before its k-th anchor access, the thief marks the owner's
 * superblocks REVOKING and stops before reading busy, the owner goes on
 * and stops right after that access, the thief decides (busy: give back)
 * and finishes, the owner finishes.  Every k is tried, in four scenarios,
 * until the owner's work has fewer anchor accesses than k.  Afterwards
 * every thread has exited: no superblock may be OWNED or REVOKING, and the
 * heap must check clean.  A second schedule lets the thief go first and
 * the owner meet REVOKING when it re-validates at the start of a malloc. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

static _Thread_local int role;           /* 1 owner, 2 thief */
static _Atomic int armed;
static _Atomic int target_k;             /* stop at the owner's k-th access */
static _Atomic int seen_k;
static _Atomic int stage;
static _Atomic int thief_first;

static void wait_stage(int want)
{
    uint64_t deadline = t_now_ns() + 30ull * 1000000000u;
    while (atomic_load(&stage) < want) {
        if (t_now_ns() > deadline) {
            fprintf(stderr, "schedule stuck waiting for stage %d (at %d)\n", want,
                    atomic_load(&stage));
            _exit(1);
        }
        sched_yield();
    }
}

static void hook(int point)
{
    if (!atomic_load(&armed))
        return;
    if (role == 1 && point == PM_HOOK_OWNER_ANCHOR && !atomic_load(&thief_first)) {
        if (atomic_fetch_add(&seen_k, 1) + 1 == atomic_load(&target_k)) {
            atomic_store(&stage, 1);      /* thief: revoke now */
            wait_stage(2);                /* REVOKING set, fenced */
        }
    } else if (role == 1 && point == PM_HOOK_OWNER_ANCHOR_DONE &&
               atomic_load(&stage) == 2) {
        atomic_store(&stage, 3);          /* thief: read busy now */
        wait_stage(4);
    } else if (role == 2 && point == PM_HOOK_REVOKE_DECIDE && atomic_load(&stage) == 1) {
        atomic_store(&stage, 2);
        wait_stage(3);
    }
}

struct ctx {
    allocator_space_t *s;
    int scenario;
    uint32_t n_blocks;                   /* per superblock of the class */
    void **blocks;
    int n;
};

enum { SC_RELEASE, SC_DETACH, SC_EXIT_LIVE, SC_EXIT_EMPTY, SC_SYNC, N_SC };
static const char *sc_name[N_SC] = {"release", "detach", "exit-live", "exit-empty",
                                    "sync"};
enum { SIZE = 1000 };

static void *owner(void *arg)
{
    struct ctx *c = arg;
    role = 1;
    switch (c->scenario) {
    case SC_RELEASE:
        /* three superblocks; the first, set aside, is emptied: release */
        for (c->n = 0; c->n < (int)(3 * c->n_blocks); c->n++)
            REQUIRE((c->blocks[c->n] = persistent_malloc(c->s, SIZE)) != NULL);
        atomic_store(&armed, 1);
        for (uint32_t i = 0; i < c->n_blocks; i++) {
            persistent_free(c->s, c->blocks[i]);
            c->blocks[i] = NULL;
        }
        break;
    case SC_DETACH:
        /* more full superblocks than the owned set holds: detaches */
        atomic_store(&armed, 1);
        for (c->n = 0; c->n < (int)((PM_OWNED_MAX + 3) * c->n_blocks); c->n++)
            REQUIRE((c->blocks[c->n] = persistent_malloc(c->s, SIZE)) != NULL);
        break;
    case SC_EXIT_LIVE:
    case SC_EXIT_EMPTY:
        /* one current superblock, handed back when the thread exits */
        for (c->n = 0; c->n < 3; c->n++)
            REQUIRE((c->blocks[c->n] = persistent_malloc(c->s, SIZE)) != NULL);
        if (c->scenario == SC_EXIT_EMPTY) {
            for (int i = 0; i < 3; i++)
                persistent_free(c->s, c->blocks[i]);
            c->n = 0;
        }
        atomic_store(&armed, 1);
        break;
    case SC_SYNC:
        for (c->n = 0; c->n < (int)(2 * c->n_blocks); c->n++)
            REQUIRE((c->blocks[c->n] = persistent_malloc(c->s, SIZE)) != NULL);
        atomic_store(&stage, 1);         /* thief: revoke now */
        wait_stage(2);
        /* the thief bumped our revokes: this malloc re-validates first */
        REQUIRE((c->blocks[c->n] = persistent_malloc(c->s, SIZE)) != NULL);
        c->n++;
        break;
    }
    return NULL;                         /* thread exit hands everything back */
}

static void *thief(void *arg)
{
    struct ctx *c = arg;
    role = 2;
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(c->s, &rt);
    REQUIRE(rec != NULL);
    /* wait for the owner to stop (or the run to end without stopping) */
    while (atomic_load(&stage) == 0)
        sched_yield();
    if (atomic_load(&stage) < 0)
        return NULL;
    pm_op_begin(rec);
    sb_scavenge(rt, rec);
    pm_op_end(rec);
    atomic_store(&stage, 4);
    return NULL;
}

/* No superblock is OWNED or REVOKING once every thread is gone; returns
 * how many are. */
static int stranded(allocator_space_t *s)
{
    struct pm_rt *rt = pm_rt_of(s);
    uint64_t n = pm_load_acquire(&rt->n_pages), p = 0;
    int bad = 0;
    while ((p = pg_next_set(rt->start_bits, p, n)) != PG_NONE) {
        if (pg_bit(rt->kind_bits, p)) {
            uint64_t a = pm_load_acquire(&rt->ctl[p].anchor);
            uint32_t st = pm_anchor_state(a);
            if (st == PM_SB_OWNED || st == PM_SB_REVOKING) {
                fprintf(stderr, "superblock at page %llu stranded: state %u owner %u\n",
                        (unsigned long long)p, st, pm_anchor_owner(a));
                bad++;
            }
        }
        p++;
    }
    return bad;
}

/* One schedule; false when the owner's work has fewer than k accesses. */
static bool run(int scenario, int k)
{
    const char *path = t_path("revoke");
    allocator_space_t *s = create_persistent_allocator(path, 32u << 20);
    REQUIRE(s != NULL);
    struct pm_rt *rt = pm_rt_of(s);
    static void *blocks[4096];
    memset(blocks, 0, sizeof blocks);
    struct ctx c = {s, scenario, rt->cls[pm_size_class(SIZE)].n_blocks, blocks, 0};
    REQUIRE(c.n_blocks > 0 && (PM_OWNED_MAX + 3) * c.n_blocks < 4096);
    atomic_store(&armed, 0);
    atomic_store(&seen_k, 0);
    atomic_store(&target_k, k);
    atomic_store(&stage, 0);
    atomic_store(&thief_first, scenario == SC_SYNC);
    if (scenario == SC_SYNC)
        atomic_store(&armed, 1);

    pthread_t to, tt;
    pthread_create(&tt, NULL, thief, &c);
    pthread_create(&to, NULL, owner, &c);
    pthread_join(to, NULL);              /* exited: its books are handed back */
    atomic_store(&armed, 0);
    int expected = 0;
    bool reached = atomic_load(&stage) > 0;
    if (!reached)
        atomic_store(&stage, -1);        /* release the waiting thief */
    pthread_join(tt, NULL);
    if (reached)
        CHECK_EQ(atomic_load(&stage), 4);

    int bad = stranded(s);
    CHECK_EQ(bad, expected);
    if (bad)
        fprintf(stderr, "%s, thief before the owner's anchor access %d\n",
                sc_name[scenario], k);
    /* the owner's blocks, freed from here (remote frees), come back */
    for (int i = 0; i < c.n; i++)
        if (blocks[i])
            persistent_free(s, blocks[i]);
    t_check_clean(s, sc_name[scenario]);
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    CHECK_EQ(st.live_blocks, 0);
    persistent_space_close(s);
    unlink(path);
    return reached;
}

int main(void)
{
    if (os_membarrier_init() != 0)
        t_skip("membarrier(2) is not available: no revocation to test");
    pm_store_release(&pm_test_hook, hook);
    for (int sc = 0; sc < N_SC; sc++) {
        int k = 1;
        while (run(sc, k) && sc != SC_SYNC)
            k++;
        printf("%-10s: thief revoked before each of the owner's %d anchor accesses\n",
               sc_name[sc], sc == SC_SYNC ? 1 : k - 1);
    }
    return t_done();
}

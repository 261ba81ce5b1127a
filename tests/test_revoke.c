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
 * heap must check clean.  Two more schedules let the thief go first and
 * the owner meet REVOKING when it re-validates at the start of a malloc
 * (sync) or a free (sync-free) that its fast path would otherwise serve
 * from the revoked superblock, or (sync-word) a malloc whose fast path
 * would move on to the next word of that superblock: the block's
 * superblock must be the owner's again (OWNED by it) when the call
 * returns.
 *
 * Two more schedules stop a thread at a hook and run another thread's
 * whole call there:
 *   - detach: a remote free lands in the owner's current superblock right
 *     as the owner detaches it (it read OWNED, so it does not list it); the
 *     owner's re-check of the remote summary after its detach must list
 *     it, or a superblock with a free block is left where nobody finds it;
 *   - busy: a thief revokes while the owner, inside a malloc, has just
 *     taken a superblock from the partial list; the owner is busy, so the
 *     thief must give it back, not collect and release it under the
 *     owner's plain stores. */
#include "check.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

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

enum { SC_RELEASE, SC_DETACH, SC_EXIT_LIVE, SC_EXIT_EMPTY, SC_SYNC, SC_SYNC_FREE,
       SC_SYNC_WORD, N_SC };
static const char *sc_name[N_SC] = {"release", "detach", "exit-live", "exit-empty",
                                    "sync", "sync-free", "sync-word"};
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
    case SC_SYNC_FREE:
    case SC_SYNC_WORD: {
        /* a full superblock set aside and a current one with a free block
         * in its cached word: the fast paths would use that one; or
         * (sync-word) a current superblock of small blocks whose first
         * word is used up, which malloc's fast path would leave for the
         * next word of the same superblock (malloc_next_word) */
        size_t size = SIZE;
        int before = (int)(2 * c->n_blocks - 1);
        if (c->scenario == SC_SYNC_WORD) {
            size = 16;
            before = 64;
        }
        for (c->n = 0; c->n < before; c->n++)
            REQUIRE((c->blocks[c->n] = persistent_malloc(c->s, size)) != NULL);
        if (c->scenario == SC_SYNC_WORD) {
            struct pm_rt *rt;
            struct pm_trec *rec = pm_thread_rec(c->s, &rt);
            struct pm_tcache *t = &rec->cls[pm_size_class(size)];
            REQUIRE(rt->cls[pm_size_class(size)].n_blocks > 64);
            CHECK(t->mask == 0 && t->freemap != 0);
        }
        atomic_store(&stage, 1);         /* thief: revoke now */
        wait_stage(2);
        /* the thief bumped our revokes: this malloc (or free) re-validates
         * first, which takes the superblock back before writing it */
        void *p;
        if (c->scenario != SC_SYNC_FREE) {
            p = persistent_malloc(c->s, size);
            REQUIRE(p != NULL);
            c->blocks[c->n++] = p;
        } else {
            p = c->blocks[--c->n];
            persistent_free(c->s, p);
        }
        struct pm_rt *rt;
        struct pm_trec *rec = pm_thread_rec(c->s, &rt);
        uint32_t sb, idx;
        struct pm_sb_header *h;
        REQUIRE(sb_locate(rt, p, &sb, &h, &idx) == 0);
        uint64_t a = pm_load_acquire(&rt->ctl[sb].anchor);
        CHECK(pm_anchor_state(a) == PM_SB_OWNED && pm_anchor_owner(a) == rec->id);
        break;
    }
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
    sb_scavenge(rt, rec, NULL);
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
    atomic_store(&thief_first, scenario >= SC_SYNC);
    if (scenario >= SC_SYNC)
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

/* ---- one thread's whole call at another's hook ---- */

static _Atomic int x_point;             /* the victim stops here, once */
static _Thread_local int x_victim;
static _Atomic int x_go, x_done;
static void (*x_call)(void);

static void x_hook(int point)
{
    if (!x_victim || point != atomic_load(&x_point))
        return;
    atomic_store(&x_point, 0);
    atomic_store(&x_go, 1);
    uint64_t deadline = t_now_ns() + 30ull * 1000000000u;
    while (!atomic_load(&x_done)) {
        if (t_now_ns() > deadline) {
            fprintf(stderr, "the helper's call never finished\n");
            _exit(1);
        }
        sched_yield();
    }
}

static void *x_helper(void *arg)
{
    (void)arg;
    while (atomic_load(&x_go) == 0)
        sched_yield();
    if (atomic_load(&x_go) > 0)
        x_call();
    atomic_store(&x_done, 1);
    return NULL;
}

static void x_arm(int point, void (*call)(void), pthread_t *helper)
{
    atomic_store(&x_go, 0);
    atomic_store(&x_done, 0);
    x_call = call;
    atomic_store(&x_point, point);
    pthread_create(helper, NULL, x_helper, NULL);
}

static void x_disarm(pthread_t helper)
{
    int zero = 0;
    atomic_compare_exchange_strong(&x_go, &zero, -1);   /* never fired */
    pthread_join(helper, NULL);
    atomic_store(&x_point, 0);
}

/* Superblocks in nobody's books (ORPHAN) that have a free block or a
 * remote free pending: nothing will ever find them (G5b). */
static int unreachable(allocator_space_t *s)
{
    struct pm_rt *rt = pm_rt_of(s);
    uint64_t n = pm_load_acquire(&rt->n_pages), p = 0;
    int bad = 0;
    while ((p = pg_next_set(rt->start_bits, p, n)) != PG_NONE) {
        if (pg_bit(rt->kind_bits, p) &&
            pm_anchor_state(pm_load_acquire(&rt->ctl[p].anchor)) == PM_SB_ORPHAN) {
            struct pm_sb_header *h = sb_header(rt, (uint32_t)p);
            for (uint32_t w = 0; w < h->n_words; w++) {
                uint64_t valid = w + 1 == h->n_words ? sb_last_mask(h) : ~UINT64_C(0);
                uint64_t a = pm_load_acquire(&h->bits[w]);
                uint64_t r = pm_load_acquire(&h->bits[h->n_words + w]);
                if ((~a | r) & valid) {
                    fprintf(stderr, "superblock at page %llu: ORPHAN with a free "
                            "block, in no list\n", (unsigned long long)p);
                    bad++;
                    break;
                }
            }
        }
        p++;
    }
    return bad;
}

static allocator_space_t *x_space;
static void **x_blocks;
static int x_n;
static void *x_freed;
static int x_freed_at;

static void free_freed(void)
{
    persistent_free(x_space, x_freed);         /* remote: not this thread's */
}

static void *detach_owner(void *arg)
{
    uint32_t per_sb = (uint32_t)(uintptr_t)arg;
    /* the current superblock and a full owned set, all full */
    for (x_n = 0; x_n < (int)((PM_OWNED_MAX + 1) * per_sb); x_n++)
        REQUIRE((x_blocks[x_n] = persistent_malloc(x_space, SIZE)) != NULL);
    x_freed_at = x_n - 1;
    x_freed = x_blocks[x_freed_at];             /* in the current one */
    x_victim = 1;
    pthread_t helper;
    x_arm(PM_HOOK_OWNER_ANCHOR, free_freed, &helper);
    /* the current one is full and the set is full: it is detached, and
     * the free lands right as that happens */
    REQUIRE((x_blocks[x_n] = persistent_malloc(x_space, SIZE)) != NULL);
    x_n++;
    CHECK(atomic_load(&x_done) == 1);
    x_disarm(helper);
    x_victim = 0;
    CHECK_EQ(unreachable(x_space), 0);
    return NULL;
}

/* The end of an x_ schedule: every block freed by now, the heap checks
 * clean with nothing live but kept blocks of the library's own; the space
 * closed and removed. */
static void x_finish_kept(const char *path, const char *name, const char *what,
                          uint64_t kept)
{
    t_check_clean(x_space, name);
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(x_space, &st) == 0);
    CHECK_EQ(st.live_blocks, kept);
    persistent_space_close(x_space);
    unlink(path);
    printf("%-10s: %s\n", name, what);
}

static void x_finish(const char *path, const char *name, const char *what)
{
    x_finish_kept(path, name, what, 0);
}

static void run_detach(void)
{
    const char *path = t_path("revoke-detach");
    x_space = create_persistent_allocator(path, 32u << 20);
    REQUIRE(x_space != NULL);
    struct pm_rt *rt = pm_rt_of(x_space);
    uint32_t per_sb = rt->cls[pm_size_class(SIZE)].n_blocks;
    static void *blocks[4096];
    x_blocks = blocks;
    REQUIRE(per_sb > 0 && (PM_OWNED_MAX + 2) * per_sb < 4096);
    pthread_t o;
    pthread_create(&o, NULL, detach_owner, (void *)(uintptr_t)per_sb);
    pthread_join(o, NULL);
    CHECK_EQ(unreachable(x_space), 0);
    for (int i = 0; i < x_n; i++)
        if (i != x_freed_at)
            persistent_free(x_space, blocks[i]);
    x_finish(path, "detach", "a remote free as its superblock is detached");
}

static void *fill_one(void *arg)
{
    (void)arg;
    for (x_n = 0; x_n < (int)pm_rt_of(x_space)->cls[pm_size_class(SIZE)].n_blocks; x_n++)
        REQUIRE((x_blocks[x_n] = persistent_malloc(x_space, SIZE)) != NULL);
    return NULL;                       /* exit: the full superblock is listed */
}

static void steal(void)
{
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(x_space, &rt);
    REQUIRE(rec != NULL);
    pm_op_begin(rec);
    sb_scavenge(rt, rec, NULL);              /* revokes what other threads own */
    pm_op_end(rec);
}

static void *busy_owner(void *arg)
{
    (void)arg;
    x_victim = 1;
    pthread_t helper;
    x_arm(PM_HOOK_SB_TAKEN, steal, &helper);
    /* takes the listed superblock (now empty but for remote bits) and,
     * still inside the malloc, is revoked */
    void *q = persistent_malloc(x_space, SIZE);
    CHECK(atomic_load(&x_done) == 1);
    x_disarm(helper);
    x_victim = 0;
    REQUIRE(q != NULL);
    CHECK_EQ(persistent_usable_size(x_space, q), pm_class_size(pm_size_class(SIZE)));
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(x_space, &st) == 0);
    CHECK_EQ(st.live_blocks, 1);
    persistent_free(x_space, q);
    return NULL;
}

static void run_busy(void)
{
    const char *path = t_path("revoke-busy");
    x_space = create_persistent_allocator(path, 32u << 20);
    REQUIRE(x_space != NULL);
    static void *blocks[4096];
    x_blocks = blocks;
    pthread_t t;
    pthread_create(&t, NULL, fill_one, NULL);
    pthread_join(t, NULL);
    for (int i = 0; i < x_n; i++)
        persistent_free(x_space, blocks[i]);   /* remote: all of them */
    pthread_create(&t, NULL, busy_owner, NULL);
    pthread_join(t, NULL);
    x_finish(path, "busy", "a thief revoking while the owner is inside a malloc");
}

/* stale: an owner's books are stale after a thief took its superblocks
 * while it was between calls; its next call that scavenges (a large
 * malloc, a lane's first log, a transaction's next log segment: none of
 * them re-validates first) must not collect a superblock it no longer
 * owns.  The owner A set S aside (full, then one block freed); a thief
 * revokes it and lists it; the thief allocates S's free block (S is its
 * own now); a third thread frees another block of S (a remote bit); with
 * the thief inside a call, A scavenges.  Before, A's look at its own
 * superblocks collected S under its new owner's plain stores (the remote
 * bit consumed, the allocation word written by two threads); now A syncs
 * first and S's remote free waits for its owner. */
static struct pm_trec *s_rec;
static void *s_y;

static void *stale_owner(void *arg)
{
    (void)arg;
    struct pm_rt *rt;
    s_rec = pm_thread_rec(x_space, &rt);
    REQUIRE(s_rec != NULL);
    int n = (int)rt->cls[pm_size_class(SIZE)].n_blocks;
    for (x_n = 0; x_n <= n; x_n++)       /* one superblock full, set aside */
        REQUIRE((x_blocks[x_n] = persistent_malloc(x_space, SIZE)) != NULL);
    persistent_free(x_space, x_blocks[0]);  /* its one free block */
    atomic_store(&stage, 1);
    wait_stage(2);
    pm_op_begin(s_rec);
    sb_scavenge(rt, s_rec, NULL);
    pm_op_end(s_rec);
    atomic_store(&stage, 3);
    wait_stage(4);
    return NULL;
}

static void *remote_freer(void *arg)
{
    (void)arg;
    persistent_free(x_space, s_y);
    return NULL;
}

static bool remote_bit(struct pm_rt *rt, uint32_t s, const void *p)
{
    struct pm_sb_header *h = sb_header(rt, s);
    uint64_t i = (uint64_t)((const char *)p - (const char *)h - h->data_start) / h->block_size;
    return (pm_load_acquire(&h->bits[h->n_words + i / 64]) >> (i % 64)) & 1;
}

static void run_stale(void)
{
    const char *path = t_path("revoke-stale");
    x_space = create_persistent_allocator(path, 32u << 20);
    REQUIRE(x_space != NULL);
    static void *blocks[4096], *mine[4096];
    x_blocks = blocks;
    atomic_store(&stage, 0);
    pthread_t a, t;
    pthread_create(&a, NULL, stale_owner, NULL);
    wait_stage(1);
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(x_space, &rt);
    REQUIRE(rec != NULL);
    uint32_t c = pm_size_class(SIZE);
    uint32_t s = pm_run_first(rt, (uint64_t)((char *)blocks[0] - rt->base));
    struct pm_tcache *at = &s_rec->cls[c];
    REQUIRE(at->n_owned == 1 && at->owned[0] == s);      /* set aside */
    pm_op_begin(rec);
    sb_scavenge(rt, rec, NULL);                          /* revokes A's */
    pm_op_end(rec);
    CHECK_EQ(pm_anchor_state(pm_load_acquire(&rt->ctl[s].anchor)), PM_SB_LISTED);
    int k = 0;
    do                                  /* until S's free block is this thread's */
        REQUIRE(k < 4096 && (mine[k++] = persistent_malloc(x_space, SIZE)) != NULL);
    while (mine[k - 1] != blocks[0]);
    uint64_t an = pm_load_acquire(&rt->ctl[s].anchor);
    REQUIRE(pm_anchor_state(an) == PM_SB_OWNED && pm_anchor_owner(an) == rec->id);
    REQUIRE(at->n_owned == 1 && at->owned[0] == s);      /* A's books: stale */
    s_y = blocks[1];
    pthread_create(&t, NULL, remote_freer, NULL);
    pthread_join(t, NULL);
    REQUIRE(remote_bit(rt, s, s_y));
    pm_op_begin(rec);                   /* inside a call: not to be revoked */
    atomic_store(&stage, 2);
    wait_stage(3);
    CHECK(remote_bit(rt, s, s_y));      /* the free is its owner's to collect */
    an = pm_load_acquire(&rt->ctl[s].anchor);
    CHECK(pm_anchor_state(an) == PM_SB_OWNED && pm_anchor_owner(an) == rec->id);
    CHECK_EQ(at->n_owned, 0);           /* A dropped it from its books */
    pm_op_end(rec);
    atomic_store(&stage, 4);
    pthread_join(a, NULL);
    for (int i = 0; i < k; i++)
        persistent_free(x_space, mine[i]);
    for (int i = 2; i < x_n; i++)
        persistent_free(x_space, blocks[i]);
    x_finish(path, "stale", "a scavenge by an owner whose superblock a thief took");
}

/* parked: a thread stopped for good inside a fast path's operation keeps
 * the one superblock that operation works on, not all of its own (G5b:
 * "a thread whose own superblocks are full takes from other threads'
 * partly free superblocks").  The owner fills a small space with blocks
 * of one class, frees every other block of the superblocks it owns, and
 * then mallocs and frees one block in a loop (the fast paths).  Signals
 * stop it, until one lands inside a fast path's operation (its busy flag
 * names a bitmap word); there it stays.  Another thread then allocates
 * blocks of the class until NULL: it must get every free block but those
 * of the stopped operation's superblock (until 2026-12-07 a busy owner
 * kept all of them, and its free blocks were out of reach until it went
 * on).  The same with the owner stopped inside a calloc's zeros, and
 * inside the remote free's fast path (freeing blocks of a thread that
 * stays between calls): those name none of its superblocks, and the
 * other thread gets every free block.  Every block carries a pattern,
 * checked before it is freed. */
enum { PK_SIZE = 64, PK_SPACE = 4u << 20 };
static _Atomic int pk_looping, pk_parked, pk_release, pk_stop;
enum { PK_FAST, PK_FILL, PK_REMOTE };
static int pk_mode;                     /* where the owner is stopped */
static const char *pk_name[] = {"parked", "parked-fill", "parked-remote"};
enum { PK_SUPPLY = 16384 };
static void **pk_supply;                /* PK_REMOTE: another thread's blocks */
static _Atomic int pk_supplier_go;
static _Atomic uintptr_t pk_busy;
static _Atomic uint64_t pk_signals;
static void **pk_blocks;
static int pk_n;
static struct pm_trec *pk_rec;          /* the owner's */

static void pk_handler(int sig)
{
    (void)sig;
    uintptr_t b = pm_load_relaxed(&pm_tls.rec->busy);
    /* a fast path's flag is a word's address (a multiple of 8) */
    if (pk_mode != PK_FAST ? b != PM_BUSY_NONE : b == 0 || (b & 7u) != 0) {
        atomic_fetch_add(&pk_signals, 1);
        return;                 /* not inside the operation wanted: go on */
    }
    atomic_store(&pk_busy, b);
    atomic_store(&pk_parked, 1);
    atomic_fetch_add(&pk_signals, 1);   /* after: the sender looks at parked */
    struct timespec ts = {0, 200000};
    while (!atomic_load(&pk_release))
        nanosleep(&ts, NULL);   /* async-signal-safe */
}

/* Once o is looping, SIGUSR1 until its handler parks it (*parked): each
 * signal waits for the handler's count before the next (a second one sent
 * while the first handler runs would wait, masked, for ever).  The count
 * of signals sent; 60 s without a park is a failure. */
static uint64_t park_by_signal(pthread_t o, _Atomic int *looping, _Atomic int *parked,
                               _Atomic uint64_t *signals)
{
    while (!atomic_load(looping))
        sched_yield();
    uint64_t deadline = t_now_ns() + 60ull * 1000000000u, sent = 0;
    while (!atomic_load(parked)) {
        REQUIRE(t_now_ns() < deadline);
        uint64_t before = atomic_load(signals);
        pthread_kill(o, SIGUSR1);
        sent++;
        while (atomic_load(signals) == before)
            sched_yield();
    }
    return sent;
}

static uint64_t pk_pattern(int i)
{
    return UINT64_C(0x9e3779b97f4a7c15) * (uint64_t)(i + 1);
}

/* Whether block p of the owner's is in a superblock the owner owns. */
static bool pk_owned(struct pm_rt *rt, struct pm_trec *rec, const void *p)
{
    uint64_t off = (uint64_t)((const char *)p - rt->data);
    uint32_t f1 = pm_pagemap_first1(pm_load_acquire(&rt->pagemap[off >> rt->page_shift]));
    uint64_t a = f1 != 0 ? pm_load_acquire(&rt->ctl[f1 - 1].anchor) : 0;
    return f1 != 0 && pm_anchor_state(a) == PM_SB_OWNED && pm_anchor_owner(a) == rec->id;
}

static void *parked_owner(void *arg)
{
    (void)arg;
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(x_space, &rt);
    REQUIRE(rec != NULL);
    pk_rec = rec;
    /* PK_REMOTE: a few superblocks' worth, the space not full (a fill
     * until NULL would take the supplier's superblocks: it is between
     * calls) */
    int limit = pk_mode == PK_REMOTE ? 4 * (int)rt->cls[pm_size_class(PK_SIZE)].n_blocks
                                     : (int)(PK_SPACE / PK_SIZE);
    void *p;
    while (pk_n < limit && (p = persistent_malloc(x_space, PK_SIZE)) != NULL) {
        *(uint64_t *)p = pk_pattern(pk_n);
        pk_blocks[pk_n++] = p;
    }
    /* every other block of the superblocks it owns (its current one and
     * the set-aside ones) */
    for (int i = 1; i < pk_n; i += 2)
        if (pk_owned(rt, rec, pk_blocks[i])) {
            CHECK_EQ(*(uint64_t *)pk_blocks[i], pk_pattern(i));
            persistent_free(x_space, pk_blocks[i]);
            pk_blocks[i] = NULL;
        }
    atomic_store(&pk_looping, 1);
    uint64_t k = 0;
    while (!atomic_load(&pk_stop) && pk_mode == PK_REMOTE) {
        /* remote frees, the fast path's (the supplier owns the blocks'
         * superblocks and waits between calls while they are freed), a
         * supply at a time */
        while (atomic_load(&pk_supplier_go) != 1 && !atomic_load(&pk_stop))
            sched_yield();
        for (int i = 0; i < PK_SUPPLY && !atomic_load(&pk_stop); i++) {
            CHECK_EQ(*(uint64_t *)pk_supply[i], ~pk_pattern(i));
            persistent_free(x_space, pk_supply[i]);
            pk_supply[i] = NULL;
        }
        if (!atomic_load(&pk_stop))
            atomic_store(&pk_supplier_go, 0);   /* another supply */
    }
    while (!atomic_load(&pk_stop)) {
        uint64_t *q = pk_mode == PK_FILL ? persistent_calloc(x_space, 1, PK_SIZE)
                                         : persistent_malloc(x_space, PK_SIZE);
        REQUIRE(q != NULL);
        *q = ~k;
        CHECK_EQ(*q, ~k);
        persistent_free(x_space, q);
        k++;
    }
    return NULL;
}

/* Free blocks of class c in the superblocks of the space: all, those of
 * the superblock holding the word at b, and those of superblocks owner
 * owns (b's excluded). */
static void pk_count(struct pm_rt *rt, uint32_t c, uint32_t owner, uintptr_t b,
                     uint64_t *all, uint64_t *at_b, uint64_t *owned_other)
{
    *all = *at_b = *owned_other = 0;
    uint64_t n = pm_load_acquire(&rt->n_pages), p = 0;
    while ((p = pg_next_set(rt->start_bits, p, n)) != PG_NONE) {
        if (pg_bit(rt->kind_bits, p)) {
            struct pm_sb_header *h = sb_header(rt, (uint32_t)p);
            if (h->cls == c) {
                uint64_t used = 0;       /* a remote free's block is free */
                for (uint32_t w = 0; w < h->n_words; w++)
                    used += (uint64_t)__builtin_popcountll(
                        pm_load_acquire(&h->bits[w]) &
                        ~pm_load_acquire(&h->bits[h->n_words + w]));
                uint64_t f = h->n_blocks - used;
                *all += f;
                if (b - (uintptr_t)h < ((uintptr_t)h->n_pages << rt->page_shift))
                    *at_b += f;
                else {
                    uint64_t a = pm_load_acquire(&rt->ctl[p].anchor);
                    if (pm_anchor_state(a) == PM_SB_OWNED && pm_anchor_owner(a) == owner)
                        *owned_other += f;
                }
            }
        }
        p++;
    }
}

/* PK_REMOTE: blocks for the owner to free, from a thread that stays
 * (its record, and so its ownership of their superblocks, with it)
 * between calls until the end. */
static void *pk_supplier(void *arg)
{
    (void)arg;
    for (;;) {
        for (int i = 0; i < PK_SUPPLY; i++) {
            void *p = persistent_malloc(x_space, PK_SIZE);
            REQUIRE(p != NULL);
            *(uint64_t *)p = ~pk_pattern(i);
            pk_supply[i] = p;
        }
        atomic_store(&pk_supplier_go, 1);
        int go;
        while ((go = atomic_load(&pk_supplier_go)) == 1)
            sched_yield();
        if (go == 2)
            return NULL;
    }
}

static void run_parked(int mode)
{
#if defined(__SANITIZE_THREAD__)
    printf("%-10s: skipped under ThreadSanitizer (it defers signals to its own "
           "points, never inside a fast path)\n", pk_name[mode]);
    return;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    printf("%-10s: skipped under ThreadSanitizer (it defers signals to its own "
           "points, never inside a fast path)\n", pk_name[mode]);
    return;
#endif
#endif
    if (mode == PK_REMOTE && PM_VG_ACTIVE) {
        /* free's fast paths step aside where memcheck or ASan watch the
         * blocks: a remote free goes the general way, which names all */
        printf("%-10s: skipped (free's fast paths are off under memcheck and ASan)\n",
               pk_name[mode]);
        return;
    }
    const char *path = t_path("revoke-parked");
    pk_mode = mode;
    pk_n = 0;
    atomic_store(&pk_supplier_go, 0);
    atomic_store(&pk_looping, 0);
    atomic_store(&pk_parked, 0);
    atomic_store(&pk_release, 0);
    atomic_store(&pk_stop, 0);
    x_space = create_persistent_allocator(path, PK_SPACE);
    REQUIRE(x_space != NULL);
    struct pm_rt *rt = pm_rt_of(x_space);
    uint32_t c = pm_size_class(PK_SIZE);
    pk_blocks = calloc(PK_SPACE / PK_SIZE, sizeof *pk_blocks);
    REQUIRE(pk_blocks != NULL);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pk_handler;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, &old) == 0);
    pthread_t o, sup;
    if (mode == PK_REMOTE) {
        pk_supply = calloc(PK_SUPPLY, sizeof *pk_supply);
        REQUIRE(pk_supply != NULL);
        pthread_create(&sup, NULL, pk_supplier, NULL);
        while (atomic_load(&pk_supplier_go) != 1)
            sched_yield();
    }
    pthread_create(&o, NULL, parked_owner, NULL);
    uint64_t sent = park_by_signal(o, &pk_looping, &pk_parked, &pk_signals);
    /* a fill and a remote free name no superblock: then the owner's
     * current one counts with its others, at_b is 0 */
    uintptr_t b = mode != PK_FAST ? (uintptr_t)pk_rec->cls[c].aword : atomic_load(&pk_busy);
    uint32_t owner = pk_rec->id;
    uint64_t all, at_b, owned_other, got = 0;
    void **mine = NULL;
    pk_count(rt, c, owner, mode != PK_FAST ? 0 : b, &all, &at_b, &owned_other);
    /* the scene holds what it is about: free blocks in superblocks the
     * stopped owner owns, besides its operation's */
    REQUIRE(owned_other >= rt->cls[c].n_blocks / 2);
    if (mode == PK_REMOTE) {
        /* the space is not full (the supplier's blocks are the owner's
         * others' to free): a thief's scavenge, as a malloc that found no
         * room makes it, must take every superblock of the owner's */
        steal();
        uint64_t left;
        pk_count(rt, c, owner, 0, &all, &at_b, &left);
        printf("%-10s: owner stopped inside a remote free's fast path after %llu signals; "
               "%llu free blocks in its superblocks before a thief's scavenge, %llu "
               "after\n",
               pk_name[mode], (unsigned long long)sent, (unsigned long long)owned_other,
               (unsigned long long)left);
        CHECK_EQ(left, 0);
        goto done;
    }
    /* this thread: every free block of the class but at_b (one more or
     * less: the stopped operation may be about to set or clear a bit) */
    mine = calloc(PK_SPACE / PK_SIZE, sizeof *mine);
    REQUIRE(mine != NULL);
    void *p;
    while ((p = persistent_malloc(x_space, PK_SIZE)) != NULL) {
        REQUIRE(got < PK_SPACE / PK_SIZE);
        *(uint64_t *)p = ~pk_pattern((int)got);
        mine[got++] = p;
    }
    printf("%-10s: owner stopped inside %s after %llu signals; %llu free "
           "blocks, %llu in its operation's superblock, %llu in its others; "
           "another thread got %llu\n",
           pk_name[mode],
           mode == PK_FILL     ? "a calloc's zeros"
           : mode == PK_REMOTE ? "a remote free's fast path"
                               : "a fast path",
           (unsigned long long)sent, (unsigned long long)all,
           (unsigned long long)at_b, (unsigned long long)owned_other,
           (unsigned long long)got);
    CHECK(got + at_b + 1 >= all);
    /* and none of the operation's own superblock, which it may be
     * writing (one more: the bit the operation may be about to clear) */
    CHECK(got <= all - at_b + 1);
done:
    atomic_store(&pk_stop, 1);
    atomic_store(&pk_release, 1);
    pthread_join(o, NULL);
    REQUIRE(sigaction(SIGUSR1, &old, NULL) == 0);
    if (mode == PK_REMOTE) {
        atomic_store(&pk_supplier_go, 2);
        pthread_join(sup, NULL);
        for (int i = 0; i < PK_SUPPLY; i++)
            if (pk_supply[i] != NULL) {
                CHECK_EQ(*(uint64_t *)pk_supply[i], ~pk_pattern(i));
                persistent_free(x_space, pk_supply[i]);
            }
        free(pk_supply);
    }
    for (uint64_t i = 0; i < got; i++) {
        CHECK_EQ(*(uint64_t *)mine[i], ~pk_pattern((int)i));
        persistent_free(x_space, mine[i]);
    }
    for (int i = 0; i < pk_n; i++)
        if (pk_blocks[i] != NULL) {
            CHECK_EQ(*(uint64_t *)pk_blocks[i], pk_pattern(i));
            persistent_free(x_space, pk_blocks[i]);
        }
    free(mine);
    free(pk_blocks);
    x_finish(path, pk_name[mode],
             mode == PK_FILL     ? "a thread stopped inside a calloc's zeros keeps no superblock"
             : mode == PK_REMOTE ? "a thread stopped inside a remote free keeps no superblock"
                                 : "a thread stopped inside a fast path keeps that superblock alone");
}

/* parked-aside, parked-malloc: the superblock a stopped fast path's
 * operation writes stays its owner's.  parked frees and mallocs in the
 * current superblock only, where the block's word, t->aword and the
 * current superblock are one superblock, and parks on any word: a free
 * that named the current word instead of its block's, or a malloc that
 * named none, passed it (and every other test).  Here the owner is stopped
 * inside a free's fast path of a block in a set-aside superblock
 * (parked-aside), or inside malloc's fast path with any flag but ANY
 * (parked-malloc); a thief scavenges; the freed block's superblock, or the
 * one holding t->aword, must still be OWNED by the owner. */
enum { PN_ASIDE, PN_MALLOC };
static int pn_mode;
static volatile sig_atomic_t pn_phase;  /* 1 inside the free, 2 the malloc */
static void *volatile pn_x;             /* the block being freed */
static _Atomic int pn_parked, pn_release, pn_stop, pn_looping;
static _Atomic uint64_t pn_signals;
static _Atomic uintptr_t pn_busy, pn_target;
static struct pm_trec *pn_rec;
static uint32_t pn_c;
static void **pn_blocks;
static int pn_n;

static uint32_t pn_sb_of(struct pm_rt *rt, uintptr_t p)
{
    uint64_t off = (uint64_t)(p - (uintptr_t)rt->data);
    uint32_t f1 = pm_pagemap_first1(pm_load_acquire(&rt->pagemap[off >> rt->page_shift]));
    return f1 ? f1 - 1 : UINT32_MAX;
}

static void pn_handler(int sig)
{
    (void)sig;
    uintptr_t b = pm_load_relaxed(&pm_tls.rec->busy);
    if (b == 0 || b == PM_BUSY_ANY || pn_phase != (pn_mode == PN_ASIDE ? 1 : 2)) {
        atomic_fetch_add(&pn_signals, 1);
        return;
    }
    atomic_store(&pn_busy, b);
    atomic_store(&pn_target, pn_mode == PN_ASIDE ? (uintptr_t)pn_x
                                                 : (uintptr_t)pm_tls.rec->cls[pn_c].aword);
    atomic_store(&pn_parked, 1);
    atomic_fetch_add(&pn_signals, 1);
    struct timespec ts = {0, 200000};
    while (!atomic_load(&pn_release))
        nanosleep(&ts, NULL);
}

static void *pn_owner(void *arg)
{
    (void)arg;
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(x_space, &rt);
    REQUIRE(rec != NULL);
    pn_rec = rec;
    uint32_t nb = rt->cls[pn_c].n_blocks;
    for (pn_n = 0; pn_n < (int)(3 * nb - nb / 2); pn_n++)
        REQUIRE((pn_blocks[pn_n] = persistent_malloc(x_space, PK_SIZE)) != NULL);
    struct pm_tcache *t = &rec->cls[pn_c];
    REQUIRE(t->n_owned >= 1);
    atomic_store(&pn_looping, 1);
    while (!atomic_load(&pn_stop)) {
        if (pn_mode == PN_MALLOC) {
            pn_phase = 2;
            void *q = persistent_malloc(x_space, PK_SIZE);
            pn_phase = 0;
            REQUIRE(q != NULL);
            persistent_free(x_space, q);
            continue;
        }
        /* the blocks of the set-aside superblocks (a word's last one goes
         * the general way, ANY), then malloc'd back */
        for (int i = 0; i < pn_n && !atomic_load(&pn_stop); i++) {
            if (pn_blocks[i] == NULL || pn_sb_of(rt, (uintptr_t)pn_blocks[i]) == t->sb)
                continue;
            pn_x = pn_blocks[i];
            pn_phase = 1;
            persistent_free(x_space, pn_blocks[i]);
            pn_phase = 0;
            pn_blocks[i] = NULL;
        }
        for (int i = 0; i < pn_n && !atomic_load(&pn_stop); i++)
            if (pn_blocks[i] == NULL)
                REQUIRE((pn_blocks[i] = persistent_malloc(x_space, PK_SIZE)) != NULL);
    }
    return NULL;
}

static void run_parked_named(int mode)
{
    const char *name = mode == PN_ASIDE ? "parked-aside" : "parked-malloc";
#if defined(__SANITIZE_THREAD__)
    printf("%-10s: skipped under ThreadSanitizer (signals)\n", name);
    return;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    printf("%-10s: skipped under ThreadSanitizer (signals)\n", name);
    return;
#endif
#endif
    if (mode == PN_ASIDE && PM_VG_ACTIVE) {
        printf("%-10s: skipped (free's fast paths are off under memcheck and ASan)\n", name);
        return;
    }
    const char *path = t_path("revoke-parked-named");
    pn_mode = mode;
    atomic_store(&pn_parked, 0);
    atomic_store(&pn_release, 0);
    atomic_store(&pn_stop, 0);
    atomic_store(&pn_looping, 0);
    x_space = create_persistent_allocator(path, 16u << 20);
    REQUIRE(x_space != NULL);
    struct pm_rt *rt = pm_rt_of(x_space);
    pn_c = pm_size_class(PK_SIZE);
    pn_blocks = calloc(3 * (size_t)rt->cls[pn_c].n_blocks, sizeof *pn_blocks);
    REQUIRE(pn_blocks != NULL);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pn_handler;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, &old) == 0);
    pthread_t o;
    pthread_create(&o, NULL, pn_owner, NULL);
    uint64_t sent = park_by_signal(o, &pn_looping, &pn_parked, &pn_signals);
    uint32_t ts = pn_sb_of(rt, atomic_load(&pn_target));
    steal();
    uint64_t a = pm_load_acquire(&rt->ctl[ts].anchor);
    bool kept = pm_anchor_state(a) == PM_SB_OWNED && pm_anchor_owner(a) == pn_rec->id;
    printf("%-10s: owner stopped inside %s after %llu signals; a thief's scavenge %s the "
           "superblock it writes\n",
           name, mode == PN_ASIDE ? "a free's fast path into a set-aside superblock"
                                  : "malloc's fast path",
           (unsigned long long)sent, kept ? "left it" : "TOOK");
    CHECK(kept);
    atomic_store(&pn_stop, 1);
    atomic_store(&pn_release, 1);
    pthread_join(o, NULL);
    REQUIRE(sigaction(SIGUSR1, &old, NULL) == 0);
    for (int i = 0; i < pn_n; i++)
        if (pn_blocks[i] != NULL)
            persistent_free(x_space, pn_blocks[i]);
    free(pn_blocks);
    x_finish(path, name, mode == PN_ASIDE
                             ? "a free stopped in a set-aside superblock keeps that one"
                             : "a malloc stopped in its fast path keeps its superblock");
}

/* parked-slow-malloc, parked-slow-free: a thread stopped inside the slow
 * half of a small malloc or of its own free keeps only the superblocks of
 * that call's class (PM_BUSY_CLASS).  The owner holds superblocks of two
 * classes: A (32 B) and B (64 B, filling the space until NULL, every
 * other block of those it owns freed again).  It is stopped at a hook
 * inside a call of class A: a malloc that has just taken a listed
 * superblock of A (PM_HOOK_SB_TAKEN; a thread that exited left it
 * listed), or a free on the general way (PM_HOOK_OWNER_FREE: the last
 * block of a word of a set-aside superblock).  Meanwhile another thread
 * allocates B until NULL: it must get every free block of the owner's B
 * superblocks (with a flag of ANY it got none of them), and the owner's
 * A superblock the call works on must still be the owner's.
 * parked-slow-reclaim: what such a call does past its class's books
 * widens its flag first.  The owner has a spare superblock of class C
 * (128 B: set aside, then emptied by its frees) and the space is full;
 * its malloc of A finds nothing of A and no room, and gives its spares
 * back before it grows the space; it is stopped there, having just taken
 * the spare in hand (PM_HOOK_OWNER_ANCHOR_DONE in hand_back's own), and
 * a thief's scavenge must leave the spare to it.
 * parked-sync-malloc, parked-sync-free: the same for a call of class A
 * that finds its revocation counter moved while another thread is about
 * to report ENOMEM (rt->pressure): it syncs every class's books and
 * gives its superblocks back (give_back), its class C one among them, and
 * is stopped there (hand_back's own of it); a thief's scavenge must leave
 * it to the owner.  The counter and the pressure are raised by the test,
 * as a thief that found the owner inside a call and a starving thread
 * would.
 * parked-slow-move: as parked-slow-free, the free of a realloc's move (a
 * block of A grown to 48 B: the old block freed by pm_free_block, its
 * class from the header sb_locate judged).
 * parked-large-malloc, parked-large-free, parked-large-shrink: a large
 * block's call names none of the thread's superblocks (PM_BUSY_NONE): the
 * owner, its space full as for parked-slow-*, is stopped inside a malloc
 * of 256 KiB that has claimed its pages (PM_HOOK_LARGE_CLAIM), inside the
 * free of such a block (PM_HOOK_LARGE_FREED) or inside a realloc that
 * halves it in place (PM_HOOK_LARGE_SHRUNK), and the other thread must
 * get every free block of its superblocks of B.  parked-fill-hook and
 * parked-remote-hook do the same inside a calloc's zeros
 * (PM_HOOK_FILL_PIECE) and inside the free of another thread's block
 * (PM_HOOK_REMOTE_PUSH; the general way's under ASan), whose flags name
 * none either: parked-fill and parked-remote stop there by signal, and
 * with a wrong flag found none to stop at within their deadline.  parked-large-reclaim: the same malloc
 * in a full space widens its flag before it gives a spare back, as
 * parked-slow-reclaim's does. */
enum { PS_MALLOC, PS_FREE, PS_RECLAIM, PS_SYNC_MALLOC, PS_SYNC_FREE, PS_LARGE_MALLOC,
       PS_LARGE_FREE, PS_LARGE_RECLAIM, PS_LARGE_SHRINK, PS_MOVE, PS_FILL, PS_REMOTE };
enum { PS_A = 32 };
enum { PS_C = 128 };
enum { PS_L = 256u << 10 };             /* a large block: pages */   /* below B: a fill of B that finds no room takes larger classes (take_larger), never A */
static int ps_mode;
static struct pm_trec *ps_rec;
static uint32_t ps_sa;                  /* the class A superblock the call touches */
static uint64_t ps_got, ps_all, ps_owned_b;
static bool ps_kept;
static void **ps_a;                     /* the owner's class A blocks */
static int ps_na;

static uint32_t ps_sb_of(const void *p)
{
    struct pm_rt *rt = pm_rt_of(x_space);
    uint64_t off = (uint64_t)((const char *)p - rt->data);
    uint32_t f1 = pm_pagemap_first1(pm_load_acquire(&rt->pagemap[off >> rt->page_shift]));
    REQUIRE(f1 != 0);
    return f1 - 1;
}

static bool ps_owned_by(uint32_t s, uint32_t id)
{
    uint64_t a = pm_load_acquire(&pm_rt_of(x_space)->ctl[s].anchor);
    return pm_anchor_state(a) == PM_SB_OWNED && pm_anchor_owner(a) == id;
}

/* x_call, at the owner's hook: class B until NULL */
static void ps_take_b(void)
{
    struct pm_rt *rt = pm_rt_of(x_space);
    uint32_t b = pm_size_class(PK_SIZE);
    uint64_t at_b;
    pk_count(rt, b, ps_rec->id, 0, &ps_all, &at_b, &ps_owned_b);
    void **got = calloc(PK_SPACE / PK_SIZE, sizeof *got);
    REQUIRE(got != NULL);
    void *p;
    ps_got = 0;
    while ((p = persistent_malloc(x_space, PK_SIZE)) != NULL) {
        REQUIRE(ps_got < PK_SPACE / PK_SIZE);
        *(uint64_t *)p = ~pk_pattern((int)ps_got);
        got[ps_got++] = p;
    }
    ps_kept = ps_owned_by(ps_sa, ps_rec->id);
    for (uint64_t i = 0; i < ps_got; i++) {
        CHECK_EQ(*(uint64_t *)got[i], ~pk_pattern((int)i));
        persistent_free(x_space, got[i]);
    }
    free(got);
}

/* x_call, at the owner's hook in PS_RECLAIM: a thief's scavenge */
static void ps_steal(void)
{
    steal();
    ps_kept = ps_owned_by(ps_sa, ps_rec->id);
}

/* PS_SYNC_*: x_hook at hand_back's own of the class C superblock alone
 * (give_back dropped it from the books first; the sync's own before it
 * found it current) */
static _Atomic int ps_sync_armed;
static void ps_sync_hook(int point)
{
    if (!x_victim || point != PM_HOOK_OWNER_ANCHOR_DONE || !atomic_load(&ps_sync_armed) ||
        ps_rec->cls[pm_size_class(PS_C)].sb != PM_NO_SB)
        return;
    atomic_store(&ps_sync_armed, 0);
    x_hook(point);
}

static void *ps_leaver(void *arg)
{
    (void)arg;
    /* a class A superblock with free blocks, listed at this thread's exit */
    void *q[8];
    for (int i = 0; i < 8; i++)
        REQUIRE((q[i] = persistent_malloc(x_space, PS_A)) != NULL);
    ps_sa = ps_sb_of(q[0]);
    for (int i = 1; i < 8; i++)
        persistent_free(x_space, q[i]);
    ps_a[ps_na++] = q[0];               /* freed at the end, remotely */
    return NULL;
}

static void *ps_owner(void *arg)
{
    (void)arg;
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(x_space, &rt);
    REQUIRE(rec != NULL);
    ps_rec = rec;
    uint32_t a = pm_size_class(PS_A);
    int first_a = ps_na;
    if (ps_mode == PS_SYNC_MALLOC || ps_mode == PS_SYNC_FREE) {
        uint32_t cc = pm_size_class(PS_C);
        void *pa = NULL;
        if (ps_mode == PS_SYNC_FREE)
            REQUIRE((pa = persistent_malloc(x_space, PS_A)) != NULL);
        for (int i = 0; i < 2; i++)
            REQUIRE((ps_a[ps_na++] = persistent_malloc(x_space, PS_C)) != NULL);
        ps_sa = rec->cls[cc].sb;
        REQUIRE(ps_sa != PM_NO_SB && ps_owned_by(ps_sa, rec->id));
        pm_fetch_add_acq_rel(&rt->pressure, 1u);
        pm_fetch_add_acq_rel(&rec->revokes, 1u);
        pthread_t helper;
        x_victim = 1;
        atomic_store(&ps_sync_armed, 1);
        pm_store_release(&pm_test_hook, ps_sync_hook);
        x_arm(PM_HOOK_OWNER_ANCHOR_DONE, ps_steal, &helper);
        if (ps_mode == PS_SYNC_MALLOC)
            REQUIRE((ps_a[ps_na++] = persistent_malloc(x_space, PS_A)) != NULL);
        else
            persistent_free(x_space, pa);
        CHECK(atomic_load(&x_done) == 1);
        x_disarm(helper);
        x_victim = 0;
        pm_store_release(&pm_test_hook, x_hook);
        pm_fetch_sub_acq_rel(&rt->pressure, 1u);
        return NULL;
    }
    bool reclaim = ps_mode == PS_RECLAIM || ps_mode == PS_LARGE_RECLAIM;
    bool large = ps_mode == PS_LARGE_MALLOC || ps_mode == PS_LARGE_FREE ||
                 ps_mode == PS_LARGE_SHRINK;
    size_t first_size = reclaim ? PS_C : PS_A;
    uint32_t first_c = pm_size_class(first_size);
    void *big = NULL, *moving = NULL;
    if (ps_mode == PS_FILL) {
        /* room for a block of A: its class's current superblock */
        REQUIRE((ps_a[ps_na++] = persistent_malloc(x_space, PS_A)) != NULL);
    } else if (ps_mode == PS_MOVE) {
        /* a block of A to move, and room for it in a class of 48 B (the
         * current superblock of that class) */
        REQUIRE(pm_size_class(48) != pm_size_class(PS_A) &&
                pm_size_class(48) != pm_size_class(PK_SIZE));
        REQUIRE((moving = persistent_malloc(x_space, PS_A)) != NULL);
        memset(moving, 0x5a, PS_A);
        REQUIRE((ps_a[ps_na++] = persistent_malloc(x_space, 48)) != NULL);
        ps_sa = ps_sb_of(moving);
    } else if (large) {
        REQUIRE(PS_L > rt->max_small);
        REQUIRE((big = persistent_malloc(x_space, PS_L)) != NULL);
    } else if (ps_mode == PS_FREE || reclaim) {
        /* one superblock of A (of C) full and set aside, a second one
         * current */
        int n = (int)rt->cls[first_c].n_blocks + 1;
        for (int i = 0; i < n; i++) {
            REQUIRE((ps_a[ps_na] = persistent_malloc(x_space, first_size)) != NULL);
            *(uint64_t *)ps_a[ps_na] = pk_pattern(ps_na);
            ps_na++;
        }
        ps_sa = ps_sb_of(ps_a[first_a]);
    }
    void *p;
    while (pk_n < (int)(PK_SPACE / PK_SIZE) &&
           (p = persistent_malloc(x_space, PK_SIZE)) != NULL) {
        *(uint64_t *)p = pk_pattern(pk_n);
        pk_blocks[pk_n++] = p;
    }
    for (int i = 1; i < pk_n && !reclaim; i += 2)
        if (pk_owned(rt, rec, pk_blocks[i])) {
            CHECK_EQ(*(uint64_t *)pk_blocks[i], pk_pattern(i));
            persistent_free(x_space, pk_blocks[i]);
            pk_blocks[i] = NULL;
        }
    pthread_t helper;
    x_victim = 1;
    if (large) {
        if (ps_mode == PS_LARGE_MALLOC) {
            persistent_free(x_space, big);  /* its pages, for the malloc */
            x_arm(PM_HOOK_LARGE_CLAIM, ps_take_b, &helper);
            REQUIRE((big = persistent_malloc(x_space, PS_L)) != NULL);
            ps_a[ps_na++] = big;
        } else if (ps_mode == PS_LARGE_FREE) {
            x_arm(PM_HOOK_LARGE_FREED, ps_take_b, &helper);
            persistent_free(x_space, big);
        } else {
            x_arm(PM_HOOK_LARGE_SHRUNK, ps_take_b, &helper);
            void *q = big;
            CHECK(persistent_realloc(x_space, q, PS_L / 2));
            CHECK(q == big);            /* in place */
            ps_a[ps_na++] = q;
        }
    } else if (reclaim) {
        /* the set-aside one of C emptied: a spare */
        int n = (int)rt->cls[first_c].n_blocks;
        for (int i = first_a; i < first_a + n; i++) {
            CHECK_EQ(*(uint64_t *)ps_a[i], pk_pattern(i));
            persistent_free(x_space, ps_a[i]);
            ps_a[i] = NULL;
        }
        struct pm_tcache *t = &rec->cls[first_c];
        uint32_t i = 0;
        while (i < t->n_owned && t->owned[i] != ps_sa)
            i++;
        REQUIRE(i < t->n_owned && (t->spare & (1u << i)) && ps_owned_by(ps_sa, rec->id));
        REQUIRE(rec->cls[a].sb == PM_NO_SB && rec->cls[a].n_owned == 0);
        x_arm(PM_HOOK_OWNER_ANCHOR_DONE, ps_steal, &helper);
        if (ps_mode == PS_RECLAIM) {
            REQUIRE((ps_a[ps_na] = persistent_malloc(x_space, PS_A)) != NULL);
            *(uint64_t *)ps_a[ps_na] = pk_pattern(ps_na);
            ps_na++;
        } else {
            /* the spare's pages may not be enough: NULL is no failure */
            ps_a[ps_na++] = persistent_malloc(x_space, PS_L);
        }
    } else if (ps_mode == PS_FILL) {
        x_arm(PM_HOOK_FILL_PIECE, ps_take_b, &helper);
        unsigned char *q = persistent_calloc(x_space, 1, PS_A);
        REQUIRE(q != NULL);
        for (int i = 0; i < PS_A; i++)
            CHECK_EQ(q[i], 0);
        ps_a[ps_na++] = q;
    } else if (ps_mode == PS_REMOTE) {
        /* the exited thread's block: its superblock is nobody's */
        REQUIRE(!ps_owned_by(ps_sb_of(ps_a[0]), rec->id));
        x_arm(PM_HOOK_REMOTE_PUSH, ps_take_b, &helper);
        persistent_free(x_space, ps_a[0]);
        ps_a[0] = NULL;
    } else if (ps_mode == PS_MOVE) {
        x_arm(PM_HOOK_OWNER_FREE, ps_take_b, &helper);
        void *q = moving;
        REQUIRE(persistent_realloc(x_space, q, 48));
        CHECK(q != moving);
        for (int i = 0; i < PS_A; i++)
            CHECK_EQ(((unsigned char *)q)[i], 0x5a);
        ps_a[ps_na++] = q;
    } else if (ps_mode == PS_MALLOC) {
        REQUIRE(rec->cls[a].sb == PM_NO_SB && rec->cls[a].n_owned == 0);
        x_arm(PM_HOOK_SB_TAKEN, ps_take_b, &helper);
        REQUIRE((ps_a[ps_na] = persistent_malloc(x_space, PS_A)) != NULL);
        *(uint64_t *)ps_a[ps_na] = pk_pattern(ps_na);
        ps_na++;
    } else {
        /* the set-aside one is still this thread's: its first word's
         * blocks freed, the last of them the general way */
        REQUIRE(ps_owned_by(ps_sa, rec->id) && rec->cls[a].sb != ps_sa);
        x_arm(PM_HOOK_OWNER_FREE, ps_take_b, &helper);
        for (int i = first_a; i < first_a + 64; i++) {
            CHECK_EQ(*(uint64_t *)ps_a[i], pk_pattern(i));
            persistent_free(x_space, ps_a[i]);
            ps_a[i] = NULL;
        }
    }
    CHECK(atomic_load(&x_done) == 1);
    x_disarm(helper);
    x_victim = 0;
    return NULL;
}

static void run_parked_slow(int mode)
{
    static const char *names[] = {"parked-slow-malloc",  "parked-slow-free",
                                  "parked-slow-reclaim", "parked-sync-malloc",
                                  "parked-sync-free",    "parked-large-malloc",
                                  "parked-large-free",   "parked-large-reclaim",
                                  "parked-large-shrink", "parked-slow-move",
                                  "parked-fill-hook",    "parked-remote-hook"};
    const char *name = names[mode];
    bool large = mode == PS_LARGE_MALLOC || mode == PS_LARGE_FREE || mode == PS_LARGE_SHRINK;
    bool none = mode == PS_FILL || mode == PS_REMOTE;
    const char *path = t_path("revoke-parked-slow");
    ps_mode = mode;
    pk_n = 0;
    ps_na = 0;
    x_space = create_persistent_allocator(path, PK_SPACE);
    REQUIRE(x_space != NULL);
    struct pm_rt *rt = pm_rt_of(x_space);
    REQUIRE(pm_size_class(PS_A) != pm_size_class(PK_SIZE));
    pk_blocks = calloc(PK_SPACE / PK_SIZE, sizeof *pk_blocks);
    ps_a = calloc(2 * (size_t)rt->cls[pm_size_class(PS_A)].n_blocks +
                      2 * (size_t)rt->cls[pm_size_class(PS_C)].n_blocks + 16,
                  sizeof *ps_a);
    REQUIRE(pk_blocks != NULL && ps_a != NULL);
    pthread_t t;
    if (mode == PS_MALLOC || mode == PS_REMOTE) {
        pthread_create(&t, NULL, ps_leaver, NULL);
        pthread_join(t, NULL);
    }
    pthread_create(&t, NULL, ps_owner, NULL);
    pthread_join(t, NULL);
    if (mode == PS_RECLAIM || mode == PS_LARGE_RECLAIM) {
        printf("%-10s: owner stopped giving its spare of class C back inside a malloc of "
               "%s; a thief's scavenge %s the spare\n",
               name, mode == PS_RECLAIM ? "class A" : "a large block",
               ps_kept ? "left it" : "TOOK");
        CHECK(ps_kept);
        goto done;
    }
    if (mode == PS_SYNC_MALLOC || mode == PS_SYNC_FREE) {
        printf("%-10s: owner stopped giving its class C superblock back under pressure "
               "inside a %s of class A; a thief's scavenge %s it\n",
               name, mode == PS_SYNC_MALLOC ? "malloc" : "free", ps_kept ? "left" : "TOOK");
        CHECK(ps_kept);
        goto done;
    }
    printf("%-10s: owner stopped inside %s; %llu free blocks of class B, "
           "%llu in the owner's superblocks; another thread got %llu",
           name,
           mode == PS_MALLOC   ? "a malloc's refill of class A"
           : mode == PS_FREE   ? "a free's general way of class A"
           : mode == PS_MOVE   ? "a realloc's move freeing its block of class A"
           : mode == PS_LARGE_MALLOC ? "a large malloc"
           : mode == PS_LARGE_FREE   ? "a large free"
           : mode == PS_FILL         ? "a calloc's zeros"
           : mode == PS_REMOTE       ? "the free of another thread's block"
                                     : "a realloc shrinking a large block in place",
           (unsigned long long)ps_all, (unsigned long long)ps_owned_b,
           (unsigned long long)ps_got);
    if (!large && !none)
        printf("; the owner's class A superblock %s", ps_kept ? "stayed its own" : "was TAKEN");
    printf("\n");
    /* the scene holds what it is about */
    REQUIRE(ps_owned_b >= rt->cls[pm_size_class(PK_SIZE)].n_blocks / 2);
    CHECK(ps_got >= ps_owned_b);
    /* (the tail a shrink released is free pages, which the other thread
     * carves into more) */
    CHECK(ps_got <= ps_all || mode == PS_LARGE_SHRINK);
    CHECK(ps_kept || large || none);
done:
    for (int i = 0; i < pk_n; i++)
        if (pk_blocks[i] != NULL) {
            CHECK_EQ(*(uint64_t *)pk_blocks[i], pk_pattern(i));
            persistent_free(x_space, pk_blocks[i]);
        }
    for (int i = 0; i < ps_na; i++)
        if (ps_a[i] != NULL)
            persistent_free(x_space, ps_a[i]);
    free(pk_blocks);
    free(ps_a);
    x_finish(path, name,
             mode == PS_MALLOC ? "a malloc stopped in its refill keeps only its class's superblocks"
             : mode == PS_FREE ? "a free stopped on its general way keeps only its class's "
                                 "superblocks"
             : mode == PS_MOVE ? "a realloc's move stopped in its free keeps only its class's "
                                 "superblocks"
             : large           ? "a large block's call keeps none of its superblocks"
             : mode == PS_FILL ? "a calloc stopped in its zeros keeps none of its superblocks"
             : mode == PS_REMOTE ? "a remote free keeps none of its superblocks"
                               : "a call past what its flag names widens it first");
}

/* parked-reuse (a review's schedule, 2026-12-07): a thief takes, and
 * releases, an empty superblock X1 of class C (a spare) from an owner
 * stopped inside a refill of class D (PM_BUSY_CLASS(D) names D only), at
 * the point where D's partial lists were found empty
 * (PM_HOOK_POP_LOOKED).  The owner, in the same operation, carves D's new
 * superblock from the pages just released, at X1's first page, OWNED by
 * it.  Its class C books still list X1 there, and the sync of its next
 * call kept the entry (the anchor said OWNED by this thread): one
 * superblock in two classes' books, and a malloc of C and one of D
 * handed out the same block (C = 32, D = 128), or a malloc of 128 B a
 * 32-byte block (parked-reuse-rev, C = 128, D = 32).  parked-reuse-auto:
 * the thief is another thread's automatic transaction's begin, refused
 * (the owner is inside a call) after its revocation took the rest, so no
 * shortage is needed.  Now own() refuses an entry whose superblock's
 * class is not its books'. */
static size_t ru_c, ru_d;
static int ru_auto;

static void ru_thief(void)
{
    if (ru_auto) {
        if (persistent_tx_begin_auto(x_space) == 0)
            (void)persistent_tx_commit(x_space);
    } else {
        steal();
    }
}

static bool ru_listed(struct pm_tcache *t, uint32_t s)
{
    for (uint32_t i = 0; i < t->n_owned; i++)
        if (t->owned[i] == s)
            return true;
    return t->sb == s;
}

static void *ru_owner(void *arg)
{
    (void)arg;
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(x_space, &rt);
    REQUIRE(rec != NULL);
    uint32_t c = pm_size_class(ru_c), d = pm_size_class(ru_d);
    int n = (int)rt->cls[c].n_blocks;
    void **a = calloc(2 * (size_t)n, sizeof *a);
    REQUIRE(a != NULL);
    /* class C: X1 full and set aside, X2 full and current; X1 emptied */
    for (int i = 0; i < 2 * n; i++) {
        REQUIRE((a[i] = persistent_malloc(x_space, ru_c)) != NULL);
        *(uint64_t *)a[i] = pk_pattern(i);
    }
    uint32_t x1 = ps_sb_of(a[0]);
    REQUIRE(x1 != ps_sb_of(a[n]) && rec->cls[c].sb == ps_sb_of(a[n]));
    for (int i = 0; i < n; i++)
        persistent_free(x_space, a[i]);
    REQUIRE(ru_listed(&rec->cls[c], x1) && rec->cls[c].spare != 0);
    REQUIRE(rec->cls[d].sb == PM_NO_SB && rec->cls[d].n_owned == 0);
    pthread_t helper;
    x_victim = 1;
    x_arm(PM_HOOK_POP_LOOKED, ru_thief, &helper);
    unsigned char *pd = persistent_malloc(x_space, ru_d);
    CHECK(atomic_load(&x_done) == 1);
    x_disarm(helper);
    x_victim = 0;
    REQUIRE(pd != NULL);
    memset(pd, 0xd1, ru_d);
    /* the next calls sync (the thief moved the counter) */
    unsigned char *pc = persistent_malloc(x_space, ru_c);
    REQUIRE(pc != NULL);
    memset(pc, 0xc1, ru_c);
    unsigned char *pd2 = persistent_malloc(x_space, ru_d);
    REQUIRE(pd2 != NULL);
    memset(pd2, 0xd2, ru_d);
    uint32_t sd = ps_sb_of(pd);
    printf("%-10s: class D's superblock at page %u (the stolen spare's was %u); class C's "
           "books list it after the sync: %s; mallocs of %zu and %zu B: %s\n",
           ru_auto ? "parked-reuse-auto" : ru_c < ru_d ? "parked-reuse" : "parked-reuse-rev",
           sd, x1, ru_listed(&rec->cls[c], sd) ? "YES" : "no", ru_c, ru_d,
           pc == pd2 ? "THE SAME BLOCK" : "two blocks");
    CHECK(!ru_listed(&rec->cls[c], sd));
    CHECK(pc != pd2);
    CHECK(persistent_usable_size(x_space, pc) >= ru_c);
    CHECK(persistent_usable_size(x_space, pd2) >= ru_d);
    for (size_t i = 0; i < ru_d; i++) {
        CHECK_EQ(pd[i], 0xd1);
        CHECK_EQ(pd2[i], 0xd2);
    }
    for (size_t i = 0; i < ru_c; i++)
        CHECK_EQ(pc[i], 0xc1);
    persistent_free(x_space, pd);
    persistent_free(x_space, pd2);
    persistent_free(x_space, pc);
    for (int i = n; i < 2 * n; i++) {
        CHECK_EQ(*(uint64_t *)a[i], pk_pattern(i));
        persistent_free(x_space, a[i]);
    }
    free(a);
    return NULL;
}

static void run_reuse(size_t c, size_t d, int automatic)
{
    const char *name = automatic ? "parked-reuse-auto" : c < d ? "parked-reuse" : "parked-reuse-rev";
    const char *path = t_path("revoke-reuse");
    ru_c = c;
    ru_d = d;
    ru_auto = automatic;
    x_space = create_persistent_allocator(path, PK_SPACE);
    REQUIRE(x_space != NULL);
    pthread_t t;
    pthread_create(&t, NULL, ru_owner, NULL);
    pthread_join(t, NULL);
    /* the automatic case keeps the library's own log block the thief's
     * transaction added, for the space's next one (a thread's first
     * transaction adds one; a later thread's reuses it) */
    x_finish_kept(path, name,
                  "a superblock stolen and carved again for another class leaves the "
                  "first class's books",
                  automatic ? 1 : 0);
}

int main(void)
{
    if (os_membarrier_init() != 0)
        t_skip("membarrier(2) is not available: no revocation to test");
    pm_store_release(&pm_test_hook, hook);
    for (int sc = 0; sc < N_SC; sc++) {
        int k = 1;
        while (run(sc, k) && sc < SC_SYNC)
            k++;
        printf("%-10s: thief revoked before each of the owner's %d anchor accesses\n",
               sc_name[sc], sc >= SC_SYNC ? 1 : k - 1);
    }
    pm_store_release(&pm_test_hook, x_hook);
    run_detach();
    run_busy();
    run_stale();
    /* the hooks' cases first: a wrong flag fails them at once, where the
     * signals' cases wait out their deadline for a flag to stop at */
    run_parked_slow(PS_MALLOC);
    run_parked_slow(PS_FREE);
    run_parked_slow(PS_RECLAIM);
    run_parked_slow(PS_SYNC_MALLOC);
    run_parked_slow(PS_SYNC_FREE);
    run_parked_slow(PS_LARGE_MALLOC);
    run_parked_slow(PS_LARGE_FREE);
    run_parked_slow(PS_LARGE_RECLAIM);
    run_parked_slow(PS_LARGE_SHRINK);
    run_parked_slow(PS_MOVE);
    run_parked_slow(PS_FILL);
    run_parked_slow(PS_REMOTE);
    run_reuse(32, 128, 0);
    run_reuse(128, 32, 0);
    run_reuse(32, 128, 1);
    run_parked(PK_FAST);
    run_parked(PK_FILL);
    run_parked(PK_REMOTE);
    run_parked_named(PN_ASIDE);
    run_parked_named(PN_MALLOC);
    return t_done();
}

/* A review's schedule fuzzer for G5b's narrow busy flags (2026-12-07).
 *
 * One owner thread makes random mallocs, callocs, reallocs and frees (its
 * own blocks, and some of a helper's: remote frees) in a small space.  At
 * the library's test hooks, inside its calls, it stops now and then; a
 * helper thread then acts while it is stopped: a scavenge (a thief's
 * revocation of what the owner's flag does not name), a refused or
 * committed automatic transaction, and mallocs and frees of its own,
 * which carve again the pages a thief released.  The owner resumes.
 *
 * Checked after every call: no two live blocks overlap (a block handed out
 * twice), every live block's bytes are as written, and the owner's books
 * list no superblock twice where own() would keep the entry.  At the end
 * persistent_check.  Arguments: SEED OPS [STOP_ONE_IN]. */
#include "check.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

#define MAX_LIVE 400
struct blk {
    unsigned char *p;
    size_t n;
    unsigned char tag;
};

static allocator_space_t *fz_space;
static struct blk own_live[MAX_LIVE], help_live[MAX_LIVE];
static int n_own, n_help;
static _Thread_local int fz_victim;
static _Thread_local uint64_t fz_rng;
static _Atomic int fz_go, fz_done, fz_quit;
static unsigned fz_one_in = 6;
static unsigned long fz_stops, fz_twice, fz_bad_bytes, fz_books_bad;
static unsigned long fz_stops_at[64];

static uint64_t rnd(void)
{
    fz_rng ^= fz_rng << 13;
    fz_rng ^= fz_rng >> 7;
    fz_rng ^= fz_rng << 17;
    return fz_rng;
}

static const size_t sizes[] = {16, 24, 32, 48, 64, 96, 128, 200, 256, 512,
                               1024, 2000, 4096, 9000, 20000, 70000};
#define N_SIZES (sizeof sizes / sizeof sizes[0])

static void fill(struct blk *b)
{
    memset(b->p, b->tag, b->n);
}

static bool intact(const struct blk *b)
{
    if (b->p == NULL)
        return true;
    for (size_t i = 0; i < b->n; i++)
        if (b->p[i] != b->tag)
            return false;
    return true;
}

static bool overlaps(const unsigned char *p, size_t n, const struct blk *set, int k, int skip)
{
    for (int i = 0; i < k; i++) {
        if (i == skip || set[i].p == NULL)
            continue;
        if (p < set[i].p + set[i].n && set[i].p < p + n)
            return true;
    }
    return false;
}

static void check_new(unsigned char *p, size_t n, struct blk *mine, int skip)
{
    if (overlaps(p, n, own_live, n_own, mine == own_live ? skip : -1) ||
        (fz_one_in != 0 && overlaps(p, n, help_live, n_help, mine == help_live ? skip : -1))) {
        fprintf(stderr, "block %p (%zu B) overlaps a live block: handed out twice\n",
                (void *)p, n);
        fz_twice++;
    }
}

/* The helper's mallocs (up to 5) and frees (up to max_free - 1) of its own
 * blocks; check: the new blocks against the owner's (only while the owner
 * is stopped: beside it, its table is changing). */
static void helper_churn(int max_free, bool check)
{
    int k = (int)(rnd() % 6);
    for (int i = 0; i < k && n_help < MAX_LIVE; i++) {
        size_t n = sizes[rnd() % (N_SIZES - 3)];
        unsigned char *p = persistent_malloc(fz_space, n);
        if (p == NULL)
            break;
        if (check)
            check_new(p, n, help_live, -1);
        struct blk *b = &help_live[n_help++];
        b->p = p;
        b->n = n;
        b->tag = (unsigned char)(rnd() | 1);
        fill(b);
    }
    k = (int)(rnd() % (uint64_t)max_free);
    for (int i = 0; i < k && n_help > 0; i++) {
        int j = (int)(rnd() % (uint64_t)n_help);
        if (!intact(&help_live[j])) {
            fprintf(stderr, "helper block %p changed under it\n", (void *)help_live[j].p);
            fz_bad_bytes++;
        }
        persistent_free(fz_space, help_live[j].p);
        help_live[j] = help_live[--n_help];
    }
}

/* The helper's turn, while the owner is stopped at a hook. */
static void helper_act(void)
{
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(fz_space, &rt);
    REQUIRE(rec != NULL);
    unsigned what = (unsigned)(rnd() % 8);
    if (what < 4) {
        pm_op_begin(rec);
        sb_scavenge(rt, rec, NULL);
        pm_op_end(rec);
    } else if (what == 4) {
        if (persistent_tx_begin_auto(fz_space) == 0)
            (void)persistent_tx_commit(fz_space);
    }
    /* mallocs that may carve the pages just released, and some frees */
    helper_churn(4, true);
}

/* STOP_ONE_IN 0: the helper runs beside the owner instead, scavenging,
 * mallocing and freeing its own blocks (no automatic transactions: the
 * owner's writes to its blocks would be caught), so that thefts land in
 * the fast paths too; a block handed out twice shows in the bytes. */
static void helper_concurrent(void)
{
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(fz_space, &rt);
    REQUIRE(rec != NULL);
    while (!atomic_load(&fz_quit)) {
        if (rnd() % 2 == 0) {
            pm_op_begin(rec);
            sb_scavenge(rt, rec, NULL);
            pm_op_end(rec);
        }
        helper_churn(7, false);
    }
}

static void *helper_main(void *arg)
{
    fz_rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15u | 1;
    if (fz_one_in == 0) {
        helper_concurrent();
        return NULL;
    }
    for (;;) {
        while (atomic_load(&fz_go) == 0 && !atomic_load(&fz_quit))
            sched_yield();
        if (atomic_load(&fz_go) == 0)
            break;
        atomic_store(&fz_go, 0);
        helper_act();
        atomic_store(&fz_done, 1);
    }
    return NULL;
}

/* A block handed out twice shows as a double free or a free of a block
 * that is not live when both holders free it. */
static _Atomic unsigned long fz_misuse;
static void fz_error(allocator_space_t *sp, int code, const void *ptr, const char *msg,
                     void *arg)
{
    (void)sp;
    (void)arg;
    if (code == PERSISTENT_E_DOUBLE_FREE || code == PERSISTENT_E_BAD_POINTER) {
        atomic_fetch_add(&fz_misuse, 1);
        fprintf(stderr, "misuse report: %s %p\n", msg, ptr);
    }
}

static void fz_hook(int point)
{
    if (!fz_victim || fz_one_in == 0 || point == PM_HOOK_REVOKE_DECIDE || point == PM_HOOK_AUTO_GATE ||
        point == PM_HOOK_AUTO_WAIT || point == PM_HOOK_AUTO_RESET ||
        point == PM_HOOK_AUTO_BEGIN_LOOKED)
        return;
    if (rnd() % fz_one_in != 0)
        return;
    fz_stops++;
    if (point >= 0 && point < 64)
        fz_stops_at[point]++;
    int v = fz_victim;
    fz_victim = 0;
    atomic_store(&fz_done, 0);
    atomic_store(&fz_go, 1);
    while (!atomic_load(&fz_done))
        sched_yield();
    fz_victim = v;
}

/* Entries own() would keep (the superblock's class is the books', its
 * anchor OWNED by the owner): none twice. */
static void check_books(struct pm_rt *rt, struct pm_trec *rec)
{
    uint32_t seen[PM_N_CLASSES * (PM_OWNED_MAX + 1)];
    uint32_t n = 0;
    for (uint32_t c = 0; c < rt->n_small; c++) {
        struct pm_tcache *t = &rec->cls[c];
        for (uint32_t i = 0; i <= t->n_owned; i++) {
            uint32_t s = i < t->n_owned ? t->owned[i] : t->sb;
            if (s == PM_NO_SB)
                continue;
            struct pm_sbctl *ctl = &rt->ctl[s];
            uint64_t a = pm_load_acquire(&ctl->anchor);
            if (pm_load_relaxed(&ctl->cls) != c || pm_anchor_state(a) != PM_SB_OWNED ||
                pm_anchor_owner(a) != rec->id)
                continue;               /* stale: the next sync drops it */
            for (uint32_t j = 0; j < n; j++)
                if (seen[j] == s) {
                    fprintf(stderr, "superblock %u twice in the books (class %u)\n", s, c);
                    fz_books_bad++;
                }
            seen[n++] = s;
        }
    }
}

static void owner_free(int j)
{
    if (!intact(&own_live[j])) {
        fprintf(stderr, "owner block %p (%zu B) changed under it\n", (void *)own_live[j].p,
                own_live[j].n);
        fz_bad_bytes++;
    }
    unsigned char *p = own_live[j].p;
    own_live[j] = own_live[--n_own];   /* out of the helper's view first */
    fz_victim = 1;
    persistent_free(fz_space, p);
    fz_victim = 0;
}

static void *owner_main(void *arg)
{
    long ops = ((long *)arg)[0];
    fz_rng = 0x2545f4914f6cdd1du ^ (uint64_t)((long *)arg)[1] * 0x9e3779b97f4a7c15u;
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(fz_space, &rt);
    REQUIRE(rec != NULL);
    for (long op = 0; op < ops; op++) {
        unsigned r = (unsigned)(rnd() % 100);
        fz_victim = 1;
        if (r < 45 && n_own < MAX_LIVE) {
            size_t n = sizes[rnd() % N_SIZES];
            unsigned char *p = (r < 6) ? persistent_calloc(fz_space, 1, n)
                                       : persistent_malloc(fz_space, n);
            fz_victim = 0;
            if (p != NULL) {
                check_new(p, n, own_live, -1);
                struct blk *b = &own_live[n_own++];
                b->p = p;
                b->n = n;
                b->tag = (unsigned char)((rnd() & 0xfe) | 2);
                fill(b);
            }
        } else if (r < 85 && n_own > 0) {
            fz_victim = 0;
            owner_free((int)(rnd() % (uint64_t)n_own));
        } else if (r < 92 && n_help > 0 && fz_one_in != 0) {
            /* a remote free of the helper's */
            int j = (int)(rnd() % (uint64_t)n_help);
            fz_victim = 0;
            if (!intact(&help_live[j]))
                fz_bad_bytes++;
            unsigned char *p = help_live[j].p;
            help_live[j] = help_live[--n_help];
            fz_victim = 1;
            persistent_free(fz_space, p);
            fz_victim = 0;
        } else if (n_own > 0) {
            int j = (int)(rnd() % (uint64_t)n_own);
            size_t n = sizes[rnd() % N_SIZES];
            unsigned char *old = own_live[j].p;
            own_live[j].p = NULL;       /* in flight: out of the helper's view */
            unsigned char *q = persistent_reallocate(fz_space, old, n);
            fz_victim = 0;
            own_live[j].p = q != NULL ? q : old;
            if (q != NULL) {
                size_t keep = n < own_live[j].n ? n : own_live[j].n;
                for (size_t i = 0; i < keep; i++)
                    if (q[i] != own_live[j].tag) {
                        fz_bad_bytes++;
                        fprintf(stderr, "realloc lost bytes\n");
                        break;
                    }
                own_live[j].p = q;
                own_live[j].n = n;
                check_new(q, n, own_live, j);
                fill(&own_live[j]);
            }
        }
        fz_victim = 0;
        check_books(rt, rec);
        if (op % 64 == 0)
            for (int i = 0; i < n_own; i++)
                if (!intact(&own_live[i])) {
                    fprintf(stderr, "op %ld: owner block %p changed\n", op, (void *)own_live[i].p);
                    fz_bad_bytes++;
                    own_live[i].tag = own_live[i].p[0];
                    memset(own_live[i].p, own_live[i].tag, own_live[i].n);
                }
    }
    while (n_own > 0)
        owner_free(n_own - 1);
    return NULL;
}

int main(int argc, char **argv)
{
    if (os_membarrier_init() != 0)
        t_skip("membarrier(2) is not available: no revocation to test");
    unsigned seed = argc > 1 ? (unsigned)atoi(argv[1]) : 1;
    long ops = argc > 2 ? atol(argv[2]) : 20000;
    if (argc > 3)
        fz_one_in = (unsigned)atoi(argv[3]);
    const char *path = t_path("revoke-fuzz");
    fz_space = create_persistent_allocator(path, 2u << 20);
    REQUIRE(fz_space != NULL);
    persistent_error_hook_set(fz_error, NULL);
    pm_store_release(&pm_test_hook, fz_hook);
    pthread_t h, o;
    long arg[2] = {ops, (long)seed};
    pthread_create(&h, NULL, helper_main, (void *)(uintptr_t)(seed + 7));
    pthread_create(&o, NULL, owner_main, arg);
    pthread_join(o, NULL);
    atomic_store(&fz_quit, 1);
    pthread_join(h, NULL);
    pm_store_release(&pm_test_hook, NULL);
    for (int i = 0; i < n_help; i++) {
        if (!intact(&help_live[i]))
            fz_bad_bytes++;
        persistent_free(fz_space, help_live[i].p);
    }
    t_check_clean(fz_space, "after the fuzz");
    printf("seed %u: %ld ops, %lu stops (", seed, ops, fz_stops);
    for (int i = 0; i < 64; i++)
        if (fz_stops_at[i])
            printf(" %d:%lu", i, fz_stops_at[i]);
    printf(" ); twice %lu, bytes changed %lu, books listing one twice %lu, misuse "
           "reports %lu\n", fz_twice, fz_bad_bytes, fz_books_bad, atomic_load(&fz_misuse));
    CHECK_EQ(atomic_load(&fz_misuse), 0);
    CHECK_EQ(fz_twice, 0);
    CHECK_EQ(fz_bad_bytes, 0);
    CHECK_EQ(fz_books_bad, 0);
    persistent_space_close(fz_space);
    unlink(path);
    return t_done();
}

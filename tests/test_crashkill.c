/* Random kills (G2):  test_crashkill KILLS [THREADS] [power]
 *
 * A forked child runs THREADS threads of seeded mixed work on a model
 * reachable from a root: publishing calls (alloc-into, realloc-into,
 * free-from), plain malloc/free, roots, scratch blocks, and cross-thread
 * hand-offs through mailboxes (the consumer verifies the block's pattern,
 * then frees it from another thread).  The parent SIGKILLs it at a random
 * moment, reopens the space (recovery) and checks:
 *   - persistent_check finds no error; recovery left nothing to do: no
 *     lane in flight, no crash leftover (orphan bits), no remote free
 *     pending, no superblock without a live block;
 *   - every published block is live and every sealed one intact;
 *   - the blocks the crash leaked are at most one per thread (the plain
 *     malloc or free each thread may have had in flight);
 *   - everything left in the space can be allocated and written without
 *     touching a published block.
 * Every 50 kills the file starts over.  Prints the leak per crash.
 *
 * With "power" (G3) the space is in PMEM durability and the child dies of
 * a simulated power failure instead (crashsim.c): at a random one of the
 * flushes and fences of all its threads, with every other thread's lines
 * flushed but not fenced landing torn and any dirty line maybe evicted; the
 * model's own stores are written back in the order a program on real
 * persistent memory must use. */
#include "check.h"

#include <pthread.h>

#include "internal.h"
#include "crash_harness.h"

#define MODEL_TAG 0x6b696c6cull
#define MAXT 16
#define NS 24            /* own slots per thread */
#define NMB 8            /* mailbox entries per thread */
#define SPACE (48u << 20)

struct entry {
    persistent_offset_t off;
    uint64_t size, gen, seal;
};

struct model {
    uint64_t magic;
    uint32_t threads;
    struct entry own[MAXT][NS];
    struct entry mbox[MAXT][NMB];
};

#define LD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define ST(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static bool power;

/* Writes back what a store just changed (power mode: the model's order of
 * durability is the program's business). */
static void P(const void *p, size_t n)
{
    if (power)
        persistent_persist(p, n);
}

static allocator_space_t *open_space(const char *path)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = SPACE;
    o.durability = power ? PERSISTENT_DURABILITY_PMEM : PERSISTENT_DURABILITY_PROCESS;
    allocator_space_t *s;
    return persistent_space_open(path, &o, &s) == 0 ? s : NULL;
}

/* ---- the child ---- */

static allocator_space_t *S;
static struct model *M;
static int n_threads;

static size_t pick(uint64_t *seed)
{
    uint64_t r = t_rand(seed);
    if (r % 100 < 85)
        return 1 + (size_t)(r >> 8) % 2000;
    return 2000 + (size_t)(r >> 8) % 150000;
}

static void seal_entry(struct entry *e, size_t n, uint64_t g)
{
    uint64_t off = LD(&e->off);
    unsigned char *p = persistent_offset_to_ptr(S, off);
    ch_fill(p, n, off, g);
    P(p, n);
    ST(&e->size, (uint64_t)n);
    ST(&e->gen, g);
    P(&e->size, 2 * sizeof e->size);
    ST(&e->seal, ch_seal_of(off, n, g));
    P(&e->seal, sizeof e->seal);
}

static void *child_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    uint64_t seed = ch_mix((uint64_t)getpid() * 131 + (uint64_t)t);
    uint64_t g = (uint64_t)t << 48 | (uint64_t)getpid() << 16;
    for (;;) {
        unsigned op = (unsigned)(t_rand(&seed) % 100);
        struct entry *e = &M->own[t][t_rand(&seed) % NS];
        if (op < 30) {                              /* publish / free-from */
            ST(&e->seal, 0);
            P(&e->seal, 8);
            if (LD(&e->off) == 0) {
                size_t n = pick(&seed);
                if (persistent_alloc_into(S, &e->off, n) == 0)
                    seal_entry(e, n < 64 ? n : 64, ++g);
            } else {
                persistent_free_from(S, &e->off);
            }
        } else if (op < 45) {                       /* realloc-into */
            if (LD(&e->off) == 0)
                continue;
            ST(&e->seal, 0);
            P(&e->seal, 8);
            size_t n = pick(&seed);
            if (persistent_realloc_into(S, &e->off, n) == 0)
                seal_entry(e, n < 64 ? n : 64, ++g);
        } else if (op < 60) {                       /* plain, may leak one */
            ST(&e->seal, 0);
            P(&e->seal, 8);
            if (LD(&e->off) == 0) {
                size_t n = pick(&seed);
                void *p = persistent_malloc(S, n);
                if (p) {
                    ST(&e->off, ptr_to_persistent_offset(S, p));
                    P(&e->off, 8);
                    seal_entry(e, n < 16 ? n : 16, ++g);
                }
            } else {
                void *p = persistent_offset_to_ptr(S, LD(&e->off));
                ST(&e->off, 0);
                P(&e->off, 8);
                persistent_free(S, p);
            }
        } else if (op < 75) {                       /* mailboxes */
            if (op & 1) {
                struct entry *m = &M->mbox[t][t_rand(&seed) % NMB];
                if (LD(&m->off) == 0) {
                    ST(&m->seal, 0);
                    P(&m->seal, 8);
                    size_t n = pick(&seed);
                    if (persistent_alloc_into(S, &m->off, n) == 0)
                        seal_entry(m, n < 48 ? n : 48, ++g);
                }
            } else {
                int u = (int)(t_rand(&seed) % (uint64_t)n_threads);
                struct entry *m = &M->mbox[u][t_rand(&seed) % NMB];
                uint64_t off = LD(&m->off), n = LD(&m->size), mg = LD(&m->gen);
                uint64_t sl = ch_seal_of(off, n, mg);
                /* claim it: of two consumers of one mailbox only one checks
                 * and frees (the other would read a block already freed) */
                if (u == t || off == 0 || LD(&m->seal) != sl ||
                    !__atomic_compare_exchange_n(&m->seal, &sl, 0, false,
                                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                    continue;
                P(&m->seal, 8);
                if (!ch_filled(persistent_offset_to_ptr(S, off), n, off, mg))
                    abort();                        /* verified before free */
                persistent_free_from(S, &m->off);   /* from another thread */
            }
        } else if (op < 82) {                       /* roots */
            uint64_t tag = 0x100000 + (uint64_t)t * 16 + t_rand(&seed) % 4;
            if (op & 1)
                (void)persistent_root_get(S, tag, 32 + t_rand(&seed) % 300, NULL);
            else
                (void)persistent_root_remove(S, tag);
        } else {                                    /* scratch, in flight */
            size_t n = pick(&seed);
            unsigned char *p = op & 1 ? persistent_calloc(S, 1, n)
                                      : persistent_malloc(S, n);
            if (p) {
                ch_fill(p, n < 256 ? n : 256, (uint64_t)(uintptr_t)p, g);
                persistent_free(S, p);
            }
        }
    }
    return NULL;
}

static void child(const char *path, int wfd, uint64_t power_at)
{
    if (power)
        pm_crash_arm(power_at, PM_CRASH_POWER_EVICT, power_at * 2654435761u + 1);
    S = open_space(path);
    if (S == NULL)
        _exit(3);
    M = persistent_find_root(S, MODEL_TAG);
    if (M == NULL)
        _exit(4);
    pthread_t th[MAXT];
    for (int t = 0; t < n_threads; t++)
        pthread_create(&th[t], NULL, child_thread, (void *)(intptr_t)t);
    char c = 'r';
    if (write(wfd, &c, 1) != 1)
        _exit(5);
    for (;;)
        pause();
}

/* ---- the parent ---- */

static uint64_t leaked_total, leaked_max, leaked_bytes_max, kills, failures;
static uint64_t prev_unreached, prev_unreached_bytes;

static void fail(int k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(int k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kill %d: ", k);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

static void verify(const char *path, int k)
{
    allocator_space_t *s = open_space(path);
    if (s == NULL) {
        fail(k, "reopen: %s", persistent_errormsg());
        return;
    }
    struct persistent_check_report rep;
    if (persistent_check(s, &rep) != 0)
        fail(k, "check: %s", rep.first_error);
    if (rep.in_flight_lanes)
        fail(k, "lanes in flight after recovery");
    if (rep.orphan_bits)
        fail(k, "%llu crash leftovers (orphan bits) after recovery",
             (unsigned long long)rep.orphan_bits);
    if (rep.pending_remote_frees)
        fail(k, "%llu remote frees pending after recovery",
             (unsigned long long)rep.pending_remote_frees);
    struct persistent_stats st;
    if (persistent_stats_get(s, &st) != 0)
        fail(k, "stats: %s", persistent_errormsg());
    else if (st.empty_superblocks)
        fail(k, "%llu superblocks without a live block after recovery",
             (unsigned long long)st.empty_superblocks);
    struct model *m = persistent_find_root(s, MODEL_TAG);
    if (m == NULL) {
        fail(k, "model lost");
        destroy_persistent_allocator(s);
        return;
    }
    uint64_t reached = 1, reached_bytes = persistent_usable_size(s, m);
    struct entry *all[MAXT * (NS + NMB)];
    int n_all = 0;
    for (int t = 0; t < MAXT; t++) {
        for (int i = 0; i < NS; i++)
            all[n_all++] = &m->own[t][i];
        for (int i = 0; i < NMB; i++)
            all[n_all++] = &m->mbox[t][i];
    }
    for (int i = 0; i < n_all; i++) {
        struct entry *e = all[i];
        if (e->off == 0)
            continue;
        unsigned char *p = persistent_offset_to_ptr(s, e->off);
        size_t us = persistent_usable_size(s, p);
        if (us == 0) {
            fail(k, "published block %#llx is not live", (unsigned long long)e->off);
            continue;
        }
        reached++;
        reached_bytes += us;
        if (e->seal == ch_seal_of(e->off, e->size, e->gen) &&
            (us < e->size || !ch_filled(p, e->size, e->off, e->gen)))
            fail(k, "sealed block %#llx damaged", (unsigned long long)e->off);
    }
    struct persistent_root_iter it = {0};
    uint64_t tag;
    void *rp;
    while (persistent_root_next(s, &it, &tag, &rp) == 1)
        if (tag != MODEL_TAG) {
            reached++;
            reached_bytes += persistent_usable_size(s, rp);
        }
    /* leaks: unreachable live blocks, counted against the previous kill */
    uint64_t unreached = rep.live_blocks - reached;
    uint64_t unreached_bytes = rep.live_bytes - reached_bytes;
    if (rep.live_blocks < reached)
        fail(k, "more reachable blocks (%llu) than live ones (%llu)",
             (unsigned long long)reached, (unsigned long long)rep.live_blocks);
    else {
        uint64_t leak = unreached - prev_unreached;
        if (unreached < prev_unreached || leak > (uint64_t)n_threads)
            fail(k, "this crash leaked %lld blocks (at most %d in flight)",
                 (long long)unreached - (long long)prev_unreached, n_threads);
        else {
            uint64_t bytes = unreached_bytes - prev_unreached_bytes;
            leaked_total += leak;
            leaked_max = leak > leaked_max ? leak : leaked_max;
            leaked_bytes_max = bytes > leaked_bytes_max ? bytes : leaked_bytes_max;
        }
        prev_unreached = unreached;
        prev_unreached_bytes = unreached_bytes;
    }
    /* everything that is left: nothing published may be overwritten */
    enum { MAXF = 1 << 16 };
    static void *got[MAXF];
    int n = 0;
    for (size_t sz = 1u << 20; sz >= 64 && n < MAXF; sz /= 4)
        while (n < MAXF && (got[n] = persistent_malloc(s, sz)) != NULL)
            memset(got[n++], 0xa5, sz);
    for (int i = 0; i < n_all; i++) {
        struct entry *e = all[i];
        if (e->off && e->seal == ch_seal_of(e->off, e->size, e->gen) &&
            !ch_filled(persistent_offset_to_ptr(s, e->off), e->size, e->off, e->gen))
            fail(k, "published block %#llx handed out again", (unsigned long long)e->off);
    }
    for (int i = 0; i < n; i++)
        persistent_free(s, got[i]);
    if (persistent_check(s, &rep) != 0)
        fail(k, "check after the fill: %s", rep.first_error);
    destroy_persistent_allocator(s);
}

static void fresh(const char *path)
{
    unlink(path);
    allocator_space_t *s = open_space(path);
    REQUIRE(s != NULL);
    struct model *m = persistent_malloc_root(s, MODEL_TAG, sizeof *m);
    REQUIRE(m != NULL);
    m->magic = 1;
    m->threads = (uint32_t)n_threads;
    destroy_persistent_allocator(s);
    prev_unreached = 0;
    prev_unreached_bytes = 0;
}

int main(int argc, char **argv)
{
    int n_kills = argc > 1 ? atoi(argv[1]) : 200;
    const char *scale = getenv("PM_STRESS_SCALE");      /* sanitizer builds */
    if (scale && atof(scale) > 0 && atof(scale) < 1 && n_kills > 100)
        n_kills = (int)(n_kills * atof(scale) < 50 ? 50 : n_kills * atof(scale));
    n_threads = argc > 2 ? atoi(argv[2]) : 4;
    if (n_threads < 2 || n_threads > MAXT)
        n_threads = 4;
    power = argc > 3 && strcmp(argv[3], "power") == 0;
    const char *path = t_path("crashkill");
    uint64_t seed = 12345;
    uint64_t t0 = t_now_ns();
    for (int k = 1; k <= n_kills; k++) {
        if (k % 50 == 1)
            fresh(path);
        int pfd[2];
        REQUIRE(pipe(pfd) == 0);
        /* power: the crash point, among the flushes and fences of all the
         * threads (a few thousand a second each under the simulation) */
        uint64_t power_at = 200 + t_rand(&seed) % 30000;
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            child(path, pfd[1], power_at);
        }
        close(pfd[1]);
        char c;
        /* power: the crash may come before the threads start (inside the
         * open, in recovery): a crash like any other */
        if (read(pfd[0], &c, 1) != 1 && !power) {
            int st = 0;
            waitpid(pid, &st, 0);
            if (WIFSIGNALED(st))
                fail(k, "child died of signal %d before it started", WTERMSIG(st));
            else
                fail(k, "child did not start (exit %d: 3 open, 4 model root, 5 pipe)",
                     WEXITSTATUS(st));
            close(pfd[0]);
            continue;
        }
        close(pfd[0]);
        if (!power) {
            usleep((useconds_t)(t_rand(&seed) % 30000));
            kill(pid, SIGKILL);
        }
        int st;
        waitpid(pid, &st, 0);
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
            fail(k, "child ended by itself (status %#x)", st);
            continue;
        }
        kills++;
        verify(path, k);
    }
    printf("%llu %s of %d threads in %.1f s: %llu failures; leaked per crash: "
           "%.2f blocks on average, at most %llu blocks / %llu bytes\n",
           (unsigned long long)kills, power ? "power failures" : "kills", n_threads,
           (double)(t_now_ns() - t0) / 1e9,
           (unsigned long long)failures, kills ? (double)leaked_total / (double)kills : 0.0,
           (unsigned long long)leaked_max, (unsigned long long)leaked_bytes_max);
    CHECK_EQ(failures, 0);
    unlink(path);
    return t_done();
}

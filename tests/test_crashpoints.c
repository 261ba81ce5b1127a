/* Deterministic crash points (G2) and simulated power failure (G3).
 *
 *   test_crashpoints MODE [SCENARIO...]     MODE: kill | power | evict
 *
 * Each scenario is a fixed single-threaded sequence of operations run on a
 * copy of a prepared space.  For k = 1, 2, ... a forked child arms crash
 * point k (every flush and every fence of the library, and of the
 * application's own persistent_persist, is one) and runs the scenario; it
 * dies by SIGKILL at point k.  The parent then reopens the file, which runs
 * recovery, and requires a G2 state:
 *   - persistent_check finds no error;
 *   - every block published in the model (a root) is live, and every one
 *     whose seal says its contents were complete still has them;
 *   - live blocks not reachable from the model number at most the
 *     scenario's in-flight bound (0 for publishing calls and roots, 1
 *     for a root built before it is published);
 *   - allocating everything that is left, and filling it, changes no
 *     published block (nothing live was handed out again).
 * The sweep ends at the first k the child survives.
 *
 * kill: the process dies, the page cache keeps every store (PROCESS mode).
 * power: PMEM mode on a private mapping, under crashsim.c's model: a
 *   fence makes durable the fencing thread's flushed lines (content from
 *   the flush or the fence); lines flushed and not fenced land torn, word
 *   by word; a file extension not synced may be undone.
 * evict: power, plus any dirty line never flushed, torn the same way. */
#include "check.h"

#include <pthread.h>

#include "internal.h"

#define MODEL_TAG 0x6d6f64656cull
#define NSLOT 32

struct model {
    uint64_t magic;
    persistent_offset_t slot[NSLOT];
    uint64_t size[NSLOT];
    uint64_t gen[NSLOT];
    uint64_t seal[NSLOT];
};

struct root_obj {
    uint64_t seal;
    uint64_t tag;
    unsigned char payload[200];
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    return x ^ (x >> 33);
}

static uint64_t seal_of(uint64_t off, uint64_t n, uint64_t g)
{
    return mix(off ^ mix(n ^ mix(g))) | 1;
}

static void fill_off(unsigned char *p, size_t n, uint64_t off, uint64_t g)
{
    uint64_t x = mix(off ^ g);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(mix(x + i / 8) >> (8 * (i % 8)));
}

static bool check_off(const unsigned char *p, size_t n, uint64_t off, uint64_t g)
{
    uint64_t x = mix(off ^ g);
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(mix(x + i / 8) >> (8 * (i % 8))))
            return false;
    return true;
}

/* ---- operations on the model ---- */

static allocator_space_t *S;
static struct model *M;
static uint64_t G;

static void persist(const void *p, size_t n)
{
    persistent_persist(p, n);
}

static void unseal(int i)
{
    M->seal[i] = 0;
    persist(&M->seal[i], 8);
}

static void seal(int i, size_t n)
{
    unsigned char *p = persistent_offset_to_ptr(S, M->slot[i]);
    uint64_t g = ++G;
    fill_off(p, n, M->slot[i], g);
    persist(p, n);
    M->size[i] = n;
    M->gen[i] = g;
    persist(&M->size[i], 8);
    persist(&M->gen[i], 8);
    M->seal[i] = seal_of(M->slot[i], n, g);
    persist(&M->seal[i], 8);
}

static void pub_alloc(int i, size_t n)
{
    unseal(i);
    REQUIRE(persistent_alloc_into(S, &M->slot[i], n) == 0);
    seal(i, n);
}

static void pub_realloc(int i, size_t n)
{
    unseal(i);
    REQUIRE(persistent_realloc_into(S, &M->slot[i], n) == 0);
    seal(i, n);
}

static void pub_free(int i)
{
    unseal(i);
    REQUIRE(persistent_free_from(S, &M->slot[i]) == 0);
}

static void plain_alloc(int i, size_t n)
{
    unseal(i);
    void *p = persistent_malloc(S, n);
    REQUIRE(p != NULL);
    M->slot[i] = ptr_to_persistent_offset(S, p);
    persist(&M->slot[i], 8);
    seal(i, n);
}

static void plain_free(int i)
{
    unseal(i);
    void *p = persistent_offset_to_ptr(S, M->slot[i]);
    M->slot[i] = 0;
    persist(&M->slot[i], 8);
    persistent_free(S, p);
}

static void root_new(uint64_t tag)
{
    bool created;
    struct root_obj *r = persistent_root_get(S, tag, sizeof *r, &created);
    REQUIRE(r != NULL);
    r->tag = tag;
    memset(r->payload, (int)(tag & 0xff), sizeof r->payload);
    persist(r, sizeof *r);
    r->seal = seal_of(tag, sizeof *r, 0);
    persist(&r->seal, 8);
}

/* A root built before it is published (tags from PUBLISHED_TAG on): its
 * contents are sealed and written back first, so a published one is
 * always whole. */
#define PUBLISHED_TAG 100u

static struct root_obj *root_build(uint64_t tag)
{
    struct root_obj *r = persistent_malloc(S, sizeof *r);
    REQUIRE(r != NULL);
    r->tag = tag;
    memset(r->payload, (int)(tag & 0xff), sizeof r->payload);
    r->seal = seal_of(tag, sizeof *r, 0);
    persist(r, sizeof *r);
    return r;
}

static void root_publish(uint64_t tag)
{
    struct root_obj *r = root_build(tag);
    REQUIRE(persistent_root_publish(S, tag, r) == r);
}

/* ---- scenarios ---- */

struct scenario {
    const char *name;
    uint64_t size, max_size;
    int max_leak;              /* blocks a crash may leave unreachable */
    void (*setup)(void);       /* on the template, not swept */
    void (*run)(void);         /* swept */
    bool two_threads;
};

static void sc_sb_run(void)
{
    /* 1-page superblocks: 24 allocations carve several; freeing them all
     * releases them */
    for (int i = 0; i < 24; i++)
        plain_alloc(i, 100);
    for (int i = 0; i < 24; i++)
        plain_free(i);
    plain_alloc(0, 40);
}

static void sc_publish_run(void)
{
    static const size_t sz[] = {24, 100, 700, 3000, 9000, 48, 200, 16000};
    for (int i = 0; i < 8; i++)
        pub_alloc(i, sz[i]);
    pub_realloc(0, 30);        /* in place */
    pub_realloc(1, 400);       /* moves to a bigger class */
    pub_realloc(2, 20000);     /* small to large */
    pub_realloc(4, 5000);      /* large shrinks */
    pub_free(3);
    pub_free(5);
    pub_alloc(9, 64);
}

static void sc_roots_run(void)
{
    for (uint64_t t = 1; t <= 4; t++)
        root_new(t);
    REQUIRE(persistent_root_remove(S, 2) == 0);
    REQUIRE(persistent_root_remove(S, 3) == 0);
    root_new(3);
    root_new(0);
}

/* One block may leak: built, not yet published (or lost to a root that
 * was there first, not yet freed). */
static void sc_root_publish_run(void)
{
    root_publish(PUBLISHED_TAG);
    root_publish(PUBLISHED_TAG + 1);
    struct root_obj *late = root_build(PUBLISHED_TAG);
    REQUIRE(persistent_root_publish(S, PUBLISHED_TAG, late) != late);
    persistent_free(S, late);
    REQUIRE(persistent_root_remove(S, PUBLISHED_TAG) == 0);
    root_publish(PUBLISHED_TAG);
    root_publish(PUBLISHED_TAG + 2);
}

/* The seed's realloc moves a block in two steps the caller cannot make
 * atomic; only the heap's consistency and the two blocks in flight are at
 * stake (publishing realloc-into is the crash-atomic one). */
static void sc_realloc_run(void)
{
    static const size_t sizes[] = {40, 100, 3000, 20000, 30000, 5000, 100, 8};
    unsigned char *p = persistent_malloc(S, 10);
    REQUIRE(p != NULL);
    fill_off(p, 10, 7, 7);
    persist(p, 10);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        REQUIRE(persistent_realloc(S, p, sizes[i]));
        REQUIRE(check_off(p, 8, 7, 7));
    }
    persistent_free(S, p);
}

static void sc_large_setup(void)
{
    pub_alloc(0, 8000);
    pub_alloc(1, 30000);
}

static void sc_large_run(void)
{
    pub_alloc(2, 20000);
    pub_realloc(2, 40000);     /* grows in place */
    pub_realloc(1, 12000);     /* shrinks in place */
    pub_free(0);
    plain_alloc(3, 24000);
    plain_free(3);
    pub_alloc(4, 60000);
}

static void sc_growth_run(void)
{
    for (int i = 0; i < 12; i++)
        pub_alloc(i, 40000);
    for (int i = 0; i < 12; i += 3)
        pub_free(i);
}

static void *remote_frees(void *arg)
{
    (void)arg;
    for (int i = 0; i < 6; i++)
        pub_free(i);           /* cross-thread, through lanes */
    for (int i = 6; i < 9; i++)
        plain_free(i);         /* cross-thread, plain */
    return NULL;
}

static void sc_remote_setup(void)
{
    for (int i = 0; i < 12; i++)
        pub_alloc(i, 100);
}

static void sc_remote_run(void)
{
    pthread_t t;
    pthread_create(&t, NULL, remote_frees, NULL);
    pthread_join(t, NULL);
    for (int i = 12; i < 20; i++)
        pub_alloc(i, 100);     /* the owner collects the remote frees */
}

static struct scenario scenarios[] = {
    {"superblock", 64u << 10, 0, 1, NULL, sc_sb_run, false},
    {"publish", 256u << 10, 0, 0, NULL, sc_publish_run, false},
    {"roots", 64u << 10, 0, 0, NULL, sc_roots_run, false},
    {"root-publish", 64u << 10, 0, 1, NULL, sc_root_publish_run, false},
    {"large", 256u << 10, 0, 1, sc_large_setup, sc_large_run, false},
    {"realloc", 256u << 10, 0, 2, NULL, sc_realloc_run, false},
    {"growth", 64u << 10, 2u << 20, 0, NULL, sc_growth_run, false},
    {"remote", 64u << 10, 0, 1, sc_remote_setup, sc_remote_run, true},
};

/* ---- the sweep ---- */

static int mode;
static const char *mode_name;

static allocator_space_t *open_space(const char *path, uint64_t size, uint64_t max)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = size;
    o.max_size = max;
    o.durability = mode == PM_CRASH_KILL ? PERSISTENT_DURABILITY_PROCESS
                                         : PERSISTENT_DURABILITY_PMEM;
    allocator_space_t *s;
    int r = persistent_space_open(path, &o, &s);
    return r == 0 ? s : NULL;
}

static void copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(in >= 0 && out >= 0);
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        REQUIRE(write(out, buf, (size_t)n) == n);
    close(in);
    close(out);
}

static void make_template(const struct scenario *sc, const char *path)
{
    S = open_space(path, sc->size, sc->max_size);
    REQUIRE(S != NULL);
    M = persistent_root_get(S, MODEL_TAG, sizeof *M, NULL);
    REQUIRE(M != NULL);
    M->magic = 0x4d4f44454cull;
    persist(M, sizeof *M);
    G = 1000;
    if (sc->setup)
        sc->setup();
    REQUIRE(persistent_space_close(S) == 0);
}

/* Runs the scenario in a child with crash point k armed (0: count only).
 * Returns the child's fate: 0 it finished, 1 it was killed. */
static int run_child(const struct scenario *sc, const char *path, uint64_t k,
                     uint64_t *points)
{
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        pm_crash_arm(k, k ? mode : PM_CRASH_KILL, k * 2654435761u + 17);
        S = open_space(path, sc->size, sc->max_size);
        if (S == NULL)
            _exit(3);
        M = persistent_find_root(S, MODEL_TAG);
        if (M == NULL)
            _exit(4);
        G = 100000 + k * 1000;
        if (sc->run)
            sc->run();
        persistent_space_close(S);
        uint64_t n = pm_crash_points();
        if (write(pfd[1], &n, sizeof n) != (ssize_t)sizeof n)
            _exit(5);
        _exit(0);
    }
    close(pfd[1]);
    int st;
    waitpid(pid, &st, 0);
    if (points && read(pfd[0], points, sizeof *points) != (ssize_t)sizeof *points)
        *points = 0;
    close(pfd[0]);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
        return 1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    fprintf(stderr, "%s/%s k=%llu: child ended with status %#x\n", sc->name,
            mode_name, (unsigned long long)k, st);
    exit(1);
}

/* The G2 state checks; returns the number of problems. */
static int verify(const struct scenario *sc, const char *path, uint64_t k)
{
    int bad = 0;
#define FAILV(...)                                                              \
    do {                                                                        \
        fprintf(stderr, "%s/%s k=%llu: ", sc->name, mode_name,                  \
                (unsigned long long)k);                                          \
        fprintf(stderr, __VA_ARGS__);                                           \
        fputc('\n', stderr);                                                    \
        bad++;                                                                  \
    } while (0)
    allocator_space_t *s = open_space(path, sc->size, sc->max_size);
    if (s == NULL) {
        FAILV("reopen failed: %s", persistent_errormsg());
        return bad;
    }
    struct persistent_check_report rep;
    if (persistent_check(s, &rep) != 0)
        FAILV("check: %s", rep.first_error);
    if (rep.in_flight_lanes != 0)
        FAILV("%llu lanes still in flight after recovery",
              (unsigned long long)rep.in_flight_lanes);
    struct model *m = persistent_find_root(s, MODEL_TAG);
    if (m == NULL || m->magic != 0x4d4f44454cull) {
        FAILV("model root lost");
        persistent_space_close(s);
        return bad;
    }
    uint64_t referenced = 1;   /* the model */
    for (int i = 0; i < NSLOT; i++) {
        if (m->slot[i] == 0)
            continue;
        unsigned char *p = persistent_offset_to_ptr(s, m->slot[i]);
        size_t us = persistent_usable_size(s, p);
        if (us == 0) {
            FAILV("slot %d: published block %#llx is not live", i,
                  (unsigned long long)m->slot[i]);
            continue;
        }
        referenced++;
        for (int j = 0; j < i; j++)
            if (m->slot[j] == m->slot[i])
                FAILV("slots %d and %d share a block", j, i);
        if (m->seal[i] == seal_of(m->slot[i], m->size[i], m->gen[i]) &&
            (us < m->size[i] || !check_off(p, m->size[i], m->slot[i], m->gen[i])))
            FAILV("slot %d: sealed contents damaged", i);
    }
    struct persistent_root_iter it = {0};
    uint64_t tag;
    void *rp;
    while (persistent_root_next(s, &it, &tag, &rp) == 1) {
        if (tag == MODEL_TAG)
            continue;
        referenced++;
        struct root_obj *r = rp;
        if (persistent_usable_size(s, r) < sizeof *r)
            FAILV("root %llu is not a live block of its size", (unsigned long long)tag);
        else if (r->seal == seal_of(tag, sizeof *r, 0) &&
                 (r->tag != tag || r->payload[199] != (unsigned char)(tag & 0xff)))
            FAILV("root %llu: sealed contents damaged", (unsigned long long)tag);
        else if (r->seal == 0 && r->tag != 0 && r->tag != tag)
            FAILV("root %llu: foreign contents", (unsigned long long)tag);
        else if (tag >= PUBLISHED_TAG && r->seal != seal_of(tag, sizeof *r, 0))
            FAILV("root %llu was published before its contents were durable",
                  (unsigned long long)tag);
    }
    if (rep.live_blocks < referenced || rep.live_blocks - referenced > (uint64_t)sc->max_leak)
        FAILV("%llu live blocks, %llu reachable (at most %d may leak)",
              (unsigned long long)rep.live_blocks, (unsigned long long)referenced,
              sc->max_leak);
    /* take everything that is left: none of it may be a published block */
    enum { MAXF = 4096 };
    static void *got[MAXF];
    int n = 0;
    for (size_t sz = 65536; sz >= 16 && n < MAXF; sz /= 2)
        while (n < MAXF && (got[n] = persistent_malloc(s, sz)) != NULL)
            memset(got[n++], 0xdb, sz);
    for (int i = 0; i < NSLOT; i++) {
        unsigned char *p = persistent_offset_to_ptr(s, m->slot[i]);
        if (m->slot[i] && m->seal[i] == seal_of(m->slot[i], m->size[i], m->gen[i]) &&
            persistent_usable_size(s, p) >= m->size[i] &&
            !check_off(p, m->size[i], m->slot[i], m->gen[i]))
            FAILV("slot %d was handed out again after recovery", i);
    }
    for (int i = 0; i < n; i++)
        persistent_free(s, got[i]);
    if (persistent_check(s, &rep) != 0)
        FAILV("check after the fill: %s", rep.first_error);
    persistent_space_close(s);
    return bad;
}

static uint64_t total_points, total_failures;

static void sweep(const struct scenario *sc)
{
    const char *tmpl = strdup(t_path("tmpl")), *work = strdup(t_path("work"));
    make_template(sc, tmpl);
    /* a counting run: how many crash points the scenario has */
    copy_file(tmpl, work);
    uint64_t expect = 0;
    REQUIRE(run_child(sc, work, 0, &expect) == 0);
    REQUIRE(verify(sc, work, 0) == 0);
    uint64_t k, failures = 0;
    for (k = 1;; k++) {
        copy_file(tmpl, work);
        uint64_t pts = 0;
        if (run_child(sc, work, k, &pts) == 0)
            break;
        failures += (uint64_t)verify(sc, work, k);
        if (k > expect + 100) {
            fprintf(stderr, "%s/%s: more crash points than the counting run saw\n",
                    sc->name, mode_name);
            failures++;
            break;
        }
    }
    printf("%-10s %-6s %5llu crash points, %llu failures\n", sc->name, mode_name,
           (unsigned long long)(k - 1), (unsigned long long)failures);
    fflush(stdout);
    total_points += k - 1;
    total_failures += failures;
    unlink(tmpl);
    unlink(work);
    free((void *)tmpl);
    free((void *)work);
}

/* Crash points inside recovery itself: the template is a space that died
 * in the middle of a publishing realloc with remote frees pending; the
 * sweep kills the process at every point of the recovering open. */
static void sweep_recovery(void)
{
    struct scenario sc = {"recovery", 64u << 10, 0, 1, sc_remote_setup, NULL, false};
    const char *tmpl = strdup(t_path("rtmpl")), *work = strdup(t_path("rwork"));
    make_template(&sc, tmpl);
    /* let the remote scenario die where it leaves recovery the most to
     * do: a publishing call in flight and remote frees not yet collected */
    struct scenario die = sc;
    die.run = sc_remote_run;
    uint64_t points = 0, best = 0, best_score = 0;
    copy_file(tmpl, work);
    REQUIRE(run_child(&die, work, 0, &points) == 0);
    int saved = mode;
    mode = PM_CRASH_KILL;
    for (uint64_t k = 1; k < points; k++) {
        copy_file(tmpl, work);
        REQUIRE(run_child(&die, work, k, NULL) == 1);
        struct persistent_options o = {0};
        o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
        allocator_space_t *s;
        REQUIRE(persistent_space_open(work, &o, &s) == 0);
        struct persistent_check_report rep;
        persistent_check(s, &rep);
        persistent_space_close(s);
        uint64_t score = (rep.in_flight_lanes ? 1000 : 0) + rep.pending_remote_frees;
        if (score > best_score) {
            best_score = score;
            best = k;
        }
    }
    REQUIRE(best_score >= 1000);
    copy_file(tmpl, work);
    REQUIRE(run_child(&die, work, best, NULL) == 1);
    mode = saved;
    copy_file(work, tmpl);                  /* the crashed file */
    uint64_t k, failures = 0;
    for (k = 1;; k++) {
        copy_file(tmpl, work);
        if (run_child(&sc, work, k, NULL) == 0)
            break;
        failures += (uint64_t)verify(&sc, work, k);
    }
    printf("%-10s %-6s %5llu crash points, %llu failures\n", "recovery", mode_name,
           (unsigned long long)(k - 1), (unsigned long long)failures);
    total_points += k - 1;
    total_failures += failures;
    unlink(tmpl);
    unlink(work);
    free((void *)tmpl);
    free((void *)work);
}

int main(int argc, char **argv)
{
    mode_name = argc > 1 ? argv[1] : "kill";
    mode = strcmp(mode_name, "power") == 0   ? PM_CRASH_POWER
           : strcmp(mode_name, "evict") == 0 ? PM_CRASH_POWER_EVICT
                                             : PM_CRASH_KILL;
    for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++) {
        bool pick = argc <= 2;
        for (int a = 2; a < argc; a++)
            pick = pick || strcmp(argv[a], scenarios[i].name) == 0;
        if (pick)
            sweep(&scenarios[i]);
    }
    bool pick = argc <= 2;
    for (int a = 2; a < argc; a++)
        pick = pick || strcmp(argv[a], "recovery") == 0;
    if (pick)
        sweep_recovery();
    printf("TOTAL %s: %llu crash points, %llu failures\n", mode_name,
           (unsigned long long)total_points, (unsigned long long)total_failures);
    CHECK_EQ(total_failures, 0);
    return t_done();
}

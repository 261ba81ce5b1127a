/* Shared support for the crash tests (test_crashpoints, test_txcrash,
 * test_crashkill): seals and patterns that say "this block's contents are
 * whole", the crash mode named on the command line, copies of a prepared
 * space, a child killed at crash point k, and the sweep over k.
 *
 * Include after check.h and internal.h; a test includes it once. */
#ifndef PM_TEST_CRASH_HARNESS_H
#define PM_TEST_CRASH_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ---- seals and patterns ---- */

/* A 64-bit finaliser: every input bit moves every output bit. */
static inline uint64_t ch_mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    return x ^ (x >> 33);
}

/* The seal a model stores after a block's n bytes of generation g, keyed
 * by key, are written: odd, so a zeroed seal never matches. */
static inline uint64_t ch_seal_of(uint64_t key, uint64_t n, uint64_t g)
{
    return ch_mix(key ^ ch_mix(n ^ ch_mix(g))) | 1;
}

/* The pattern of n bytes of generation g keyed by key (an offset, a slot
 * number: whatever the model says the block is). */
static inline void ch_fill(unsigned char *p, size_t n, uint64_t key, uint64_t g)
{
    uint64_t x = ch_mix(key ^ g);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(ch_mix(x + i / 8) >> (8 * (i % 8)));
}

static inline bool ch_filled(const unsigned char *p, size_t n, uint64_t key, uint64_t g)
{
    uint64_t x = ch_mix(key ^ g);
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(ch_mix(x + i / 8) >> (8 * (i % 8))))
            return false;
    return true;
}

/* ---- the mode ---- */

static int ch_mode = PM_CRASH_KILL;
static const char *ch_mode_name = "kill";

/* kill | power | evict (anything else: kill). */
static inline void ch_set_mode(const char *name)
{
    ch_mode_name = name;
    ch_mode = strcmp(name, "power") == 0   ? PM_CRASH_POWER
              : strcmp(name, "evict") == 0 ? PM_CRASH_POWER_EVICT
                                           : PM_CRASH_KILL;
}

/* A process that dies keeps the page cache (PROCESS durability); a power
 * failure keeps what was written back and fenced (PMEM). */
static inline enum persistent_durability ch_durability(void)
{
    return ch_mode == PM_CRASH_KILL ? PERSISTENT_DURABILITY_PROCESS
                                    : PERSISTENT_DURABILITY_PMEM;
}

/* Whether argv names what (no names after the mode: everything). */
static inline bool ch_picked(int argc, char **argv, const char *what)
{
    bool pick = argc <= 2;
    for (int a = 2; a < argc; a++)
        pick = pick || strcmp(argv[a], what) == 0;
    return pick;
}

/* ---- files ---- */

static inline void ch_copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(in >= 0 && out >= 0);
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        REQUIRE(write(out, buf, (size_t)n) == n);
    REQUIRE(n == 0);
    close(in);
    close(out);
}

/* A sweep's two files: the prepared space and the copy a child crashes. */
struct ch_files {
    char tmpl[512], work[512];
};

static inline void ch_files_init(struct ch_files *f, const char *name)
{
    char n[64];
    snprintf(n, sizeof n, "%s-tmpl", name);
    snprintf(f->tmpl, sizeof f->tmpl, "%s", t_path(n));
    snprintf(n, sizeof n, "%s-work", name);
    snprintf(f->work, sizeof f->work, "%s", t_path(n));
}

static inline void ch_files_remove(const struct ch_files *f)
{
    unlink(f->tmpl);
    unlink(f->work);
}

/* ---- a child at crash point k ---- */

/* Runs body(path, k, arg) in a forked child with crash point k armed in the
 * current mode (k == 0: no crash point, count them; the child then reports
 * how many it passed in *points).  body opens the space, runs, closes it;
 * it may _exit(3..6) for a set-up failure.  Returns 0 if the child finished,
 * 1 if it was killed; any other end fails the whole test, naming what. */
static inline int ch_run_child(const char *what, void (*body)(const char *, uint64_t, void *),
                               void *arg, const char *path, uint64_t k, uint64_t seed,
                               uint64_t *points)
{
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        pm_crash_arm(k, k ? ch_mode : PM_CRASH_KILL, k * 2654435761u + seed);
        body(path, k, arg);
        uint64_t n = pm_crash_points();
        if (write(pfd[1], &n, sizeof n) != (ssize_t)sizeof n)
            _exit(5);
        _exit(0);
    }
    close(pfd[1]);
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    if (points && read(pfd[0], points, sizeof *points) != (ssize_t)sizeof *points)
        *points = 0;
    close(pfd[0]);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
        return 1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    fprintf(stderr, "%s/%s k=%llu: child ended with status %#x\n", what, ch_mode_name,
            (unsigned long long)k, st);
    exit(1);
}

/* ---- verifying ---- */

/* A problem a verifier found in target name's file after crash point k:
 * said on stderr and counted in bad. */
#define CH_FAIL(bad, name, k, ...)                                                   \
    do {                                                                             \
        fprintf(stderr, "%s/%s k=%llu: ", (name), ch_mode_name,                      \
                (unsigned long long)(k));                                            \
        fprintf(stderr, __VA_ARGS__);                                                \
        fputc('\n', stderr);                                                         \
        (bad)++;                                                                     \
    } while (0)

/* Before any writer reopens it: the file a crash left, opened read-only
 * (a forensic reader of a dead process's file) and checked, is judged as
 * the recovery a writer's open would do will leave it: no error.  Returns
 * the number of problems. */
static inline int ch_check_unrecovered(const char *path, const char *name, uint64_t k)
{
    int bad = 0;
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_READONLY;
    allocator_space_t *v;
    if (persistent_space_open(path, &o, &v) != 0) {
        CH_FAIL(bad, name, k, "read-only open before recovery: %s", persistent_errormsg());
        return bad;
    }
    struct persistent_check_report rep;
    if (persistent_check(v, &rep) != 0)
        CH_FAIL(bad, name, k, "read-only check before recovery: %s", rep.first_error);
    persistent_space_close(v);
    return bad;
}

/* The first checks of a space reopened after a crash (its open ran
 * recovery): persistent_check finds no error, and recovery left nothing
 * for a later open -- no lane in flight, no crash leftover (orphan bits:
 * stray END/KIND bits, remote bits on free blocks, torn lanes), no remote
 * free pending, no transaction open, no superblock without a live block.
 * Returns the number of problems; the check's report is left in *rep. */
static inline int ch_check_recovered(allocator_space_t *s, const char *name, uint64_t k,
                                     struct persistent_check_report *out)
{
    int bad = 0;
    struct persistent_check_report rep;
    if (persistent_check(s, &rep) != 0)
        CH_FAIL(bad, name, k, "check: %s", rep.first_error);
    *out = rep;
    if (rep.in_flight_lanes != 0)
        CH_FAIL(bad, name, k, "%llu lanes still in flight after recovery",
                (unsigned long long)rep.in_flight_lanes);
    if (rep.orphan_bits != 0)
        CH_FAIL(bad, name, k, "%llu crash leftovers (orphan bits) after recovery",
                (unsigned long long)rep.orphan_bits);
    if (rep.pending_remote_frees != 0)
        CH_FAIL(bad, name, k, "%llu remote frees still pending after recovery",
                (unsigned long long)rep.pending_remote_frees);
    if (rep.open_transactions != 0)
        CH_FAIL(bad, name, k, "%llu transactions open after recovery",
                (unsigned long long)rep.open_transactions);
    struct persistent_stats st;
    if (persistent_stats_get(s, &st) != 0)
        CH_FAIL(bad, name, k, "stats: %s", persistent_errormsg());
    else if (st.empty_superblocks != 0)
        CH_FAIL(bad, name, k, "%llu superblocks without a live block after recovery",
                (unsigned long long)st.empty_superblocks);
    return bad;
}

/* ---- the sweep ---- */

static uint64_t ch_total_points, ch_total_failures;

/* One target of a sweep: the child's body and the verifier (the number of
 * problems in the file after a crash at point k; k == 0: the child ran to
 * its end). */
struct ch_target {
    const char *name;
    void (*body)(const char *path, uint64_t k, void *arg);
    int (*verify)(const char *path, uint64_t k, void *arg);
    void *arg;
    uint64_t seed;
};

static inline void ch_report(const char *name, uint64_t points, uint64_t failures)
{
    printf("%-10s %-6s %5llu crash points, %llu failures\n", name, ch_mode_name,
           (unsigned long long)points, (unsigned long long)failures);
    fflush(stdout);
    ch_total_points += points;
    ch_total_failures += failures;
}

/* For k = 1, 2, ...: copies f->tmpl to f->work, lets the child die at point k
 * and verifies the file, until a child survives.  With count, a first run
 * without a crash point counts the points and must verify clean, and a
 * sweep that goes on past that count by 100 is a failure (a crash point
 * that moves).  Without count the survivor's file is verified too (the
 * recovery sweeps: the last run is a whole, uninterrupted recovery). */
static inline void ch_sweep(const struct ch_target *t, const struct ch_files *f, bool count)
{
    const char *tmpl = f->tmpl, *work = f->work;
    uint64_t expect = UINT64_MAX - 200, k, failures = 0;
    if (count) {
        ch_copy_file(tmpl, work);
        REQUIRE(ch_run_child(t->name, t->body, t->arg, work, 0, t->seed, &expect) == 0);
        REQUIRE(t->verify(work, 0, t->arg) == 0);
    }
    for (k = 1;; k++) {
        ch_copy_file(tmpl, work);
        if (ch_run_child(t->name, t->body, t->arg, work, k, t->seed, NULL) == 0)
            break;
        failures += (uint64_t)t->verify(work, k, t->arg);
        if (k > expect + 100) {
            fprintf(stderr, "%s/%s: more crash points than the counting run saw\n",
                    t->name, ch_mode_name);
            failures++;
            break;
        }
    }
    if (!count)
        failures += (uint64_t)t->verify(work, 0, t->arg);
    ch_report(t->name, k - 1, failures);
}

/* The last line of a crash test, and its verdict. */
static inline int ch_done(void)
{
    printf("TOTAL %s: %llu crash points, %llu failures\n", ch_mode_name,
           (unsigned long long)ch_total_points, (unsigned long long)ch_total_failures);
    CHECK_EQ(ch_total_failures, 0);
    return t_done();
}

#endif

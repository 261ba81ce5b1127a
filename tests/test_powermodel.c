/* The simulated power failure itself (crashsim.c), property by property:
 * a crash test is only as good as the failures its model can produce.
 *
 * Each case runs in children, one per seed, on a file mapped privately and
 * attached to the simulation; the child does a few stores, flushes and
 * fences, then dies of a simulated power failure at its next crash point,
 * and the parent reads what reached the file.  Over the seeds:
 *   torn      a line flushed and not fenced lands word by word: some seeds
 *             give a mix of old and new 8-byte words, none gives anything
 *             else (a whole-line model never tears: the lane records'
 *             check exists because of this);
 *   own       a fence makes durable only the fencing thread's lines: a
 *             line another thread flushed and did not fence may still be
 *             lost (the old model wrote every pending line at any fence);
 *   moment    a fenced line holds its content from the flush or from the
 *             fence, both seen, never an older one or a mix;
 *   forward   a line written back never goes back: after a later fence of
 *             the newest content, an earlier flush cannot land its stale
 *             snapshot;
 *   size      a file extended and not synced may come back at its old size
 *             (growth must fsync before its header says the pages exist);
 *             synced, never.
 * Power failure with threads really running is test_crashkill's "power"
 * run; the crash-point sweeps run every scenario under this model. */
#include "check.h"

#include <pthread.h>
#include <sys/mman.h>

#include "internal.h"

#define LEN (64u << 10)
#define SEEDS 64

static const struct pm_flush_ops *ops;
static char *base;
static const char *path;
static int fd;

static uint64_t *word(uint64_t off, int i)
{
    return (uint64_t *)(void *)(base + off) + i;
}

/* A fresh file of LEN bytes, each word i of line L holding old_val(L, i). */
static uint64_t old_val(uint64_t off, int i)
{
    return 0x0100000000000000ull | off << 8 | (uint64_t)i;
}

static void make_file(void)
{
    static uint64_t buf[LEN / 8];
    for (uint64_t off = 0; off < LEN; off += 64)
        for (int i = 0; i < 8; i++)
            buf[off / 8 + (uint64_t)i] = old_val(off, i);
    int f = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    REQUIRE(f >= 0);
    REQUIRE(write(f, buf, sizeof buf) == (ssize_t)sizeof buf);
    close(f);
}

static void child_attach(uint64_t seed)
{
    fd = open(path, O_RDWR);
    REQUIRE(fd >= 0);
    base = mmap(NULL, LEN * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    REQUIRE(base != MAP_FAILED);
    pm_crash_arm(0, PM_CRASH_POWER, seed);      /* count only, for now */
    ops = pm_crash_wrap(NULL);
    pm_crash_attach(base, LEN, fd);
}

/* The power failure, at the next crash point. */
static void power_fail(uint64_t seed)
{
    pm_crash_arm(1, PM_CRASH_POWER, seed);
    ops->drain();
    _exit(99);                                  /* not reached */
}

static void read_file(uint64_t off, uint64_t *out, size_t n)
{
    int f = open(path, O_RDONLY);
    REQUIRE(f >= 0);
    REQUIRE(pread(f, out, n * 8, (off_t)off) == (ssize_t)(n * 8));
    close(f);
}

static void run(void (*body)(uint64_t), uint64_t seed)
{
    make_file();
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        child_attach(seed);
        body(seed);
        _exit(98);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    REQUIRE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static uint64_t new_val(uint64_t off, int i, int gen)
{
    return 0x0200000000000000ull * (uint64_t)gen | off << 8 | (uint64_t)i;
}

/* ---- torn ---- */

static void torn_body(uint64_t seed)
{
    for (int i = 0; i < 8; i++)
        *word(256, i) = new_val(256, i, 1);
    ops->flush(base + 256, 64);
    power_fail(seed);
}

static void test_torn(void)
{
    int mixed = 0, whole_new = 0, whole_old = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        run(torn_body, seed);
        uint64_t w[8];
        read_file(256, w, 8);
        int n_new = 0;
        for (int i = 0; i < 8; i++) {
            if (w[i] == new_val(256, i, 1))
                n_new++;
            else
                CHECK(w[i] == old_val(256, i));
        }
        mixed += n_new > 0 && n_new < 8;
        whole_new += n_new == 8;
        whole_old += n_new == 0;
    }
    printf("torn:    %d of %d seeds tore the line (%d all new, %d all old)\n", mixed,
           SEEDS, whole_new, whole_old);
    CHECK(mixed > SEEDS / 4);
}

/* ---- own ---- */

static void *other_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 8; i++)
        *word(1024, i) = new_val(1024, i, 1);
    ops->flush(base + 1024, 64);                /* not fenced by it */
    return NULL;
}

static void own_body(uint64_t seed)
{
    pthread_t t;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, NULL);
    for (int i = 0; i < 8; i++)
        *word(2048, i) = new_val(2048, i, 1);
    ops->flush(base + 2048, 64);
    ops->drain();                               /* this thread's line only */
    power_fail(seed);
}

static void test_own(void)
{
    int other_lost = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        run(own_body, seed);
        uint64_t mine[8], theirs[8];
        read_file(2048, mine, 8);
        read_file(1024, theirs, 8);
        for (int i = 0; i < 8; i++)
            CHECK(mine[i] == new_val(2048, i, 1));
        int n_new = 0;
        for (int i = 0; i < 8; i++)
            n_new += theirs[i] == new_val(1024, i, 1);
        other_lost += n_new < 8;
    }
    printf("own:     the fence kept the fencing thread's line in all %d seeds; the "
           "other thread's unfenced line was not whole in %d\n", SEEDS, other_lost);
    CHECK(other_lost > SEEDS / 4);
}

/* ---- moment ---- */

static void moment_body(uint64_t seed)
{
    for (int i = 0; i < 8; i++)
        *word(4096, i) = new_val(4096, i, 1);
    ops->flush(base + 4096, 64);
    for (int i = 0; i < 8; i++)
        *word(4096, i) = new_val(4096, i, 2);   /* after the flush */
    ops->drain();
    power_fail(seed);
}

static void test_moment(void)
{
    int first = 0, second = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        run(moment_body, seed);
        uint64_t w[8];
        read_file(4096, w, 8);
        int n1 = 0, n2 = 0;
        for (int i = 0; i < 8; i++) {
            n1 += w[i] == new_val(4096, i, 1);
            n2 += w[i] == new_val(4096, i, 2);
        }
        CHECK(n1 == 8 || n2 == 8);
        first += n1 == 8;
        second += n2 == 8;
    }
    printf("moment:  a fenced line held its flush-time content in %d seeds, the "
           "latest in %d, nothing else\n", first, second);
    CHECK(first > 0 && second > 0);
}

/* ---- forward ---- */

static void *late_flusher(void *arg)
{
    (void)arg;
    ops->flush(base + 8192, 64);                /* snapshot: generation 1 */
    return NULL;
}

static void forward_body(uint64_t seed)
{
    for (int i = 0; i < 8; i++)
        *word(8192, i) = new_val(8192, i, 1);
    pthread_t t;
    pthread_create(&t, NULL, late_flusher, NULL);
    pthread_join(t, NULL);
    for (int i = 0; i < 8; i++)
        *word(8192, i) = new_val(8192, i, 2);
    ops->flush(base + 8192, 64);
    ops->drain();                               /* generation 2 is durable */
    power_fail(seed);                           /* the other flush pending */
}

static void test_forward(void)
{
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        run(forward_body, seed);
        uint64_t w[8];
        read_file(8192, w, 8);
        for (int i = 0; i < 8; i++)
            CHECK(w[i] == new_val(8192, i, 2));
    }
    printf("forward: a stale snapshot never overwrote a later write-back (%d seeds)\n",
           SEEDS);
}

/* ---- size ---- */

static int synced;

static void size_body(uint64_t seed)
{
    REQUIRE(posix_fallocate(fd, 0, 2 * LEN) == 0);
    pm_crash_resize(base, 2 * LEN);
    if (synced) {
        REQUIRE(fdatasync(fd) == 0);
        pm_crash_synced(base);
    }
    power_fail(seed);
}

static void test_size(void)
{
    for (synced = 0; synced < 2; synced++) {
        int shrunk = 0;
        for (uint64_t seed = 1; seed <= SEEDS; seed++) {
            run(size_body, seed);
            struct stat st;
            REQUIRE(stat(path, &st) == 0);
            CHECK(st.st_size == LEN || st.st_size == 2 * LEN);
            shrunk += st.st_size == LEN;
        }
        printf("size:    %s, the extension was undone in %d of %d seeds\n",
               synced ? "synced" : "not synced", shrunk, SEEDS);
        if (synced)
            CHECK_EQ(shrunk, 0);
        else
            CHECK(shrunk > SEEDS / 4);
    }
}

int main(void)
{
    path = t_path("powermodel");
    test_torn();
    test_own();
    test_moment();
    test_forward();
    test_size();
    unlink(path);
    return t_done();
}

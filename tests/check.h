/* Minimal test support: checks that report file:line and keep going,
 * unique temporary space files, and the meson SKIP convention (exit 77). */
#ifndef PM_TEST_CHECK_H
#define PM_TEST_CHECK_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "persistent_mem.h"

static int t_failures;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__,          \
                    __LINE__, #cond);                                       \
            t_failures++;                                                   \
        }                                                                   \
    } while (0)

#define CHECK_EQ(a, b)                                                      \
    do {                                                                    \
        long long t_a = (long long)(a), t_b = (long long)(b);               \
        if (t_a != t_b) {                                                   \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n",       \
                    __FILE__, __LINE__, #a, #b, t_a, t_b);                  \
            t_failures++;                                                   \
        }                                                                   \
    } while (0)

/* A check whose failure makes everything after it meaningless. */
#define REQUIRE(cond)                                                       \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: REQUIRE(%s) failed (%s)\n", __FILE__,   \
                    __LINE__, #cond, persistent_errormsg());                \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

static inline int t_done(void)
{
    if (t_failures) {
        fprintf(stderr, "%d check(s) failed\n", t_failures);
        return 1;
    }
    return 0;
}

static inline void t_skip(const char *why)
{
    printf("SKIP: %s\n", why);
    exit(77);
}

/* Every path handed out is unlinked at exit, also when a REQUIRE fails
 * (PM_TEST_KEEP=1 keeps them for a post-mortem). */
static char t_paths[256][512];
static int t_n_paths;
static pid_t t_owner;

static void t_cleanup(void)
{
    /* a forked child inherits the handler but not the files */
    if (getenv("PM_TEST_KEEP") || getpid() != t_owner)
        return;
    for (int i = 0; i < t_n_paths && i < 256; i++)
        unlink(t_paths[i]);
}

/* A path for a space file that no other test uses; on /dev/shm when it
 * exists (tmpfs), else in TMPDIR or /tmp. */
static inline const char *t_path(const char *name)
{
    static char buf[8][512];
    static int n;
    static pid_t registered;
    const char *dir = getenv("PM_TEST_DIR");
    if (dir == NULL) {
        struct stat st;
        dir = stat("/dev/shm", &st) == 0 ? "/dev/shm" : getenv("TMPDIR");
        if (dir == NULL)
            dir = "/tmp";
    }
    char *b = buf[n++ % 8];
    snprintf(b, 512, "%s/pm-test-%s-%d-%d.space", dir, name, (int)getpid(), n);
    unlink(b);
    if (registered != getpid()) {     /* once per process, children too */
        registered = getpid();
        t_n_paths = 0;
        if (t_owner == 0)
            atexit(t_cleanup);
        t_owner = getpid();
    }
    if (t_n_paths < 256)
        memcpy(t_paths[t_n_paths++], b, 512);
    return b;
}

/* FNV-1a of a whole file: "the file is byte-for-byte unchanged". */
static inline uint64_t t_file_hash(const char *path)
{
    uint64_t h = 1469598103934665603ull;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        h = (h ^ (uint64_t)c) * 1099511628211ull;
    fclose(f);
    return h;
}

static inline uint64_t t_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: deterministic per seed. */
static inline uint64_t t_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Fills a block with a pattern derived from its address and a generation,
 * and checks it; the check names the first bad byte. */
static inline void t_fill(void *p, size_t n, uint64_t gen)
{
    unsigned char *b = p;
    uint64_t x = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull ^ gen;
    for (size_t i = 0; i < n; i++) {
        if ((i & 7) == 0)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
        b[i] = (unsigned char)(x >> ((i & 7) * 8));
    }
}

/* Checks p holds the pattern t_fill wrote at address at (a block that
 * realloc moved keeps its old pattern). */
static inline int t_verify_as(const void *p, size_t n, const void *at, uint64_t gen)
{
    const unsigned char *b = p;
    uint64_t x = (uint64_t)(uintptr_t)at * 0x9e3779b97f4a7c15ull ^ gen;
    for (size_t i = 0; i < n; i++) {
        if ((i & 7) == 0)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
        if (b[i] != (unsigned char)(x >> ((i & 7) * 8))) {
            fprintf(stderr, "pattern mismatch at %p+%zu (size %zu, gen %llu)\n",
                    p, i, n, (unsigned long long)gen);
            return 0;
        }
    }
    return 1;
}

static inline int t_verify(const void *p, size_t n, uint64_t gen)
{
    return t_verify_as(p, n, p, gen);
}

/* Whether this program can exec itself: not under qemu-user without a
 * binfmt_misc handler (the cross-built tests), where the exec'd file is
 * foreign to the kernel.  The probe's child exits at once (t_exec_probe). */
__attribute__((constructor)) static void t_exec_probe(void)
{
    if (getenv("PM_EXEC_PROBE") != NULL)
        _exit(0);
}

static inline int t_exec_works(const char *self)
{
    int pfd[2];
    if (pipe(pfd) != 0 || fcntl(pfd[1], F_SETFD, FD_CLOEXEC) != 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        setenv("PM_EXEC_PROBE", "1", 1);
        execl(self, self, (char *)NULL);
        int e = errno;
        if (write(pfd[1], &e, sizeof e) < 0)
            _exit(126);
        _exit(127);
    }
    close(pfd[1]);
    int e = 0, st = 0;
    ssize_t n = read(pfd[0], &e, sizeof e);
    close(pfd[0]);
    waitpid(pid, &st, 0);
    return n == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Waits for the child pid: whether it exited with 0; when not, says what
 * (fmt) and how it ended. */
__attribute__((format(printf, 2, 3))) static inline bool t_child_ok(pid_t pid,
                                                                     const char *fmt, ...)
{
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return true;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s %d\n", WIFEXITED(st) ? "exit" : "signal",
            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return false;
}

/* Creates the space at path (or opens it) with size bytes, growable up to
 * max (0: fixed), in the durability given (PERSISTENT_DURABILITY_*); a
 * test that cannot have it stops. */
static inline allocator_space_t *t_create_in(const char *path, uint64_t size, uint64_t max,
                                             uint32_t durability)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = size;
    o.max_size = max;
    o.durability = durability;
    allocator_space_t *s;
    REQUIRE(persistent_space_open(path, &o, &s) == 0);
    return s;
}

static inline allocator_space_t *t_create(const char *path, uint64_t size, uint64_t max)
{
    return t_create_in(path, size, max, PERSISTENT_DURABILITY_DEFAULT);
}

/* Counts misuse reports; install with persistent_error_hook_set. */
struct t_misuse {
    int count;
    int last_code;
    const void *last_ptr;
};
static inline void t_misuse_hook(allocator_space_t *s, int code, const void *ptr,
                                 const char *msg, void *arg)
{
    (void)s;
    (void)msg;
    struct t_misuse *m = arg;
    __atomic_add_fetch(&m->count, 1, __ATOMIC_SEQ_CST);
    /* atomic too: two threads may report at once (TSan saw two automatic
     * transactions' waiters do so in test_tx) */
    __atomic_store_n(&m->last_code, code, __ATOMIC_RELAXED);
    __atomic_store_n(&m->last_ptr, ptr, __ATOMIC_RELAXED);
}

static inline void t_check_clean(allocator_space_t *s, const char *when)
{
    struct persistent_check_report rep;
    int r = persistent_check(s, &rep);
    if (r != 0 || rep.n_errors != 0) {
        fprintf(stderr, "persistent_check %s: %d, %" PRIu64 " errors: %s\n",
                when, r, rep.n_errors, rep.first_error);
        t_failures++;
    }
}

#endif

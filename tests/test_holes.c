/* Huge frees punch holes: the file system gets the blocks back, they are
 * backed again when reused, a crash's leftover holes are filled by the
 * next writer's open, and on a full file system reusing them is a failed
 * allocation, never SIGBUS.  Lazy backing (PERSISTENT_OPEN_LAZY) trades
 * that: blocks are allocated when written, and a store on a full file
 * system is a SIGBUS.  A check reads no hole, so it neither backs one nor
 * dies of one, even on a full file system. */
#include "check.h"

#include <sched.h>
#include <signal.h>
#include <sys/mount.h>

static uint64_t blocks_of(const char *path)
{
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    return (uint64_t)st.st_blocks * 512;
}

static void test_punch_and_back(void)
{
    const char *p = t_path("holes");
    allocator_space_t *s = create_persistent_allocator(p, 64u << 20);
    REQUIRE(s != NULL);
    uint64_t full = blocks_of(p);
    char *big = persistent_malloc(s, 8u << 20);
    REQUIRE(big != NULL);
    memset(big, 0x5c, 8u << 20);
    persistent_free(s, big);
    uint64_t holed = blocks_of(p);
    CHECK(holed <= full - (7u << 20));      /* the 8 MiB went back */
    /* the same pages again: backed before they are handed out */
    char *again = persistent_malloc(s, 8u << 20);
    REQUIRE(again != NULL);
    CHECK(blocks_of(p) >= full - (64u << 10));
    memset(again, 0x6d, 8u << 20);
    persistent_free(s, again);
    /* growing a block in place over punched pages backs them too */
    char *a = persistent_malloc(s, 3u << 20);
    char *b = persistent_malloc(s, 3u << 20);
    REQUIRE(a && b);
    persistent_free(s, b);
    REQUIRE(persistent_realloc(s, a, 6u << 20));
    memset(a, 1, 6u << 20);
    persistent_free(s, a);
    t_check_clean(s, "after punching");
    destroy_persistent_allocator(s);

    /* holes left by a crash are filled by the next writer */
    pid_t pid = fork();
    if (pid == 0) {
        allocator_space_t *c = create_persistent_allocator(p, 0);
        void *x = c ? persistent_malloc(c, 16u << 20) : NULL;
        if (x)
            persistent_free(c, x);
        raise(SIGKILL);
        _exit(1);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(blocks_of(p) < full - (15u << 20));
    s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    CHECK(blocks_of(p) >= full);
    t_check_clean(s, "after a crash with holes");
    destroy_persistent_allocator(s);
    unlink(p);
}

/* Runs body(dir) in a child, in a private mount namespace with an 8 MiB
 * tmpfs at dir; returns the child's wait status, or -1 when no tmpfs can
 * be mounted (not root): the caller skips, saying what. */
static int in_small_tmpfs(const char *what, void (*body)(const char *dir))
{
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/pm-holes-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        printf("skipping %s: no temporary directory\n", what);
        return -1;
    }
    fflush(stdout);                     /* the child's exit flushes its copy */
    pid_t pid = fork();
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("tmpfs", dir, "tmpfs", 0, "size=8m") != 0)
            _exit(77);
        body(dir);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    rmdir(dir);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        printf("skipping %s: cannot mount a tmpfs (needs root)\n", what);
        return -1;
    }
    return st;
}

static void full_file_system(const char *dir)
{
    char path[256], filler[256];
    snprintf(path, sizeof path, "%s/space", dir);
    snprintf(filler, sizeof filler, "%s/filler", dir);
    allocator_space_t *s = create_persistent_allocator(path, 5u << 20);
    if (s == NULL)
        _exit(2);
    char *big = persistent_malloc(s, 3u << 20);
    if (big == NULL)
        _exit(3);
    persistent_free(s, big);               /* 3 MiB back to the tmpfs */
    /* someone else takes that room */
    int fd = open(filler, O_CREAT | O_RDWR, 0644);
    if (fd < 0 || posix_fallocate(fd, 0, 3u << 20) != 0)
        _exit(4);
    errno = 0;
    void *x = persistent_malloc(s, 3u << 20);   /* needs its pages back */
    if (x != NULL || errno != ENOMEM)
        _exit(5);
    close(fd);
    unlink(filler);
    x = persistent_malloc(s, 3u << 20);
    if (x == NULL)
        _exit(6);
    memset(x, 7, 3u << 20);
    struct persistent_check_report rep;
    if (persistent_check(s, &rep) != 0)
        _exit(7);
    destroy_persistent_allocator(s);
}

static void test_full_file_system(void)
{
    int st = in_small_tmpfs("the full file system part", full_file_system);
    if (st == -1)
        return;
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
}

static allocator_space_t *open_lazy(const char *p, uint64_t size, uint64_t max, uint32_t more)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE | more;
    o.size = size;
    o.max_size = max;
    allocator_space_t *s = NULL;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    return s;
}

static void test_lazy(void)
{
    /* a fixed space: the eager one is backed whole, the lazy one not */
    const char *pe = t_path("eager"), *p = t_path("lazy");
    allocator_space_t *s = open_lazy(pe, 32u << 20, 0, 0);
    CHECK(blocks_of(pe) >= 32u << 20);      /* small: /dev/shm may be too */
    destroy_persistent_allocator(s);
    unlink(pe);
    s = open_lazy(p, 256u << 20, 0, PERSISTENT_OPEN_LAZY);
    uint64_t b0 = blocks_of(p);
    CHECK(b0 < 4u << 20);
    /* a big block, a little of it written: only that is backed */
    char *big = persistent_malloc(s, 128u << 20);
    REQUIRE(big != NULL);
    t_fill(big, 8u << 20, 1);
    uint64_t b1 = blocks_of(p);
    printf("lazy: 256 MiB space %llu KiB on disk, with 8 of a 128 MiB block written %llu KiB\n",
           (unsigned long long)b0 >> 10, (unsigned long long)b1 >> 10);
    CHECK(b1 < 16u << 20);
    /* freed and taken again: not backed first either */
    persistent_free(s, big);
    big = persistent_malloc(s, 128u << 20);
    REQUIRE(big != NULL);
    CHECK(blocks_of(p) < 16u << 20);
    t_fill(big, 8u << 20, 2);
    t_check_clean(s, "lazy");
    void *was = big;           /* the pattern's key: where it was written */
    persistent_offset_t off = persistent_offset_from_ptr(s, big);
    destroy_persistent_allocator(s);

    /* reopened lazily: still holes; reopened eagerly: every hole backed */
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_LAZY;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    CHECK(blocks_of(p) < 16u << 20);
    CHECK(t_verify_as(persistent_offset_to_ptr(s, off), 8u << 20, was, 2));
    destroy_persistent_allocator(s);
    s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    struct stat st;
    REQUIRE(stat(p, &st) == 0);
    CHECK(blocks_of(p) >= (uint64_t)st.st_size);
    t_check_clean(s, "eager after lazy");
    destroy_persistent_allocator(s);
    unlink(p);

    /* growth: the file grows, its blocks do not */
    p = t_path("lazygrow");
    s = open_lazy(p, 1u << 20, 1u << 30, PERSISTENT_OPEN_LAZY);
    char *g = persistent_malloc(s, 300u << 20);
    REQUIRE(g != NULL);
    memset(g, 3, 4u << 20);
    REQUIRE(stat(p, &st) == 0);
    CHECK((uint64_t)st.st_size >= 300u << 20);
    CHECK(blocks_of(p) < 12u << 20);
    t_check_clean(s, "lazy growth");
    destroy_persistent_allocator(s);
    unlink(p);

    /* an eager space opened lazily grows with holes: the next eager open
     * backs them (the space says it may have some) */
    p = t_path("eagerlazy");
    s = open_lazy(p, 1u << 20, 1u << 30, 0);
    destroy_persistent_allocator(s);
    o.flags = PERSISTENT_OPEN_LAZY;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    REQUIRE(persistent_malloc(s, 200u << 20) != NULL);
    CHECK(blocks_of(p) < 12u << 20);
    destroy_persistent_allocator(s);
    s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    REQUIRE(stat(p, &st) == 0);
    CHECK((uint64_t)st.st_size >= 200u << 20);
    CHECK(blocks_of(p) >= (uint64_t)st.st_size);
    destroy_persistent_allocator(s);
    unlink(p);

    /* a writer's choice only; a scratch space may take it */
    o.flags = PERSISTENT_OPEN_LAZY | PERSISTENT_OPEN_READONLY;
    CHECK_EQ(persistent_space_open(p, &o, &s), -EINVAL);
    o.flags = PERSISTENT_OPEN_LAZY | PERSISTENT_OPEN_PRIVATE;
    CHECK_EQ(persistent_space_open(p, &o, &s), -EINVAL);
    o.flags = PERSISTENT_OPEN_SCRATCH | PERSISTENT_OPEN_LAZY;
    o.size = 512u << 20;
    REQUIRE(persistent_space_open(NULL, &o, &s) == 0);
    g = persistent_malloc(s, 400u << 20);
    REQUIRE(g != NULL);
    memset(g, 4, 1u << 20);
    REQUIRE(persistent_space_close(s) == 0);
}

/* The price of lazy backing: on a full file system a store into a page
 * never written is a SIGBUS (an 8 MiB tmpfs, a 16 MiB lazy space). */
static void lazy_full(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/space", dir);
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE | PERSISTENT_OPEN_LAZY;
    o.size = 16u << 20;
    allocator_space_t *s;
    if (persistent_space_open(path, &o, &s) != 0)
        _exit(2);                   /* the create must fit: holes */
    char *big = persistent_malloc(s, 12u << 20);
    if (big == NULL)
        _exit(3);                   /* and so must the malloc */
    signal(SIGBUS, SIG_DFL);        /* a sanitizer's handler would report it */
    memset(big, 1, 12u << 20);      /* more than the file system has */
    _exit(4);
}

static void test_lazy_full(void)
{
    int st = in_small_tmpfs("the lazy full file system part", lazy_full);
    if (st == -1)
        return;
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS);
    if (!WIFSIGNALED(st))
        fprintf(stderr, "lazy on a full file system: exit %d\n", WEXITSTATUS(st));
}

/* Any file is safe to inspect (G8), a lazy one on a full file system
 * too: a space with a 64 GiB maximum whose bitmaps past its first pages
 * are holes (lazy: nothing backs them), the file system then filled to
 * the last block, is checked by its writer, by a read-only view and by a
 * private one.  Reading the holes through the mapping, as checks did
 * until 2026-12-05, made each a page of the file (tmpfs backs a page a
 * read fault touches) and here a SIGBUS; a check finds them with
 * SEEK_DATA, as the writer's open does. */
static void inspect_full(const char *dir)
{
    char path[256], filler[256];
    snprintf(path, sizeof path, "%s/space", dir);
    snprintf(filler, sizeof filler, "%s/filler", dir);
    signal(SIGBUS, SIG_DFL);        /* a sanitizer's handler would report it */
    allocator_space_t *s = open_lazy(path, 1u << 20, UINT64_C(64) << 30, PERSISTENT_OPEN_LAZY);
    char *b = persistent_malloc(s, 100);
    if (b == NULL)
        _exit(2);
    memset(b, 9, 100);
    int fd = open(filler, O_CREAT | O_RDWR, 0644);
    if (fd < 0)
        _exit(3);
    /* every block the file system has left, down to its last page */
    for (uint64_t chunk = 1u << 20; chunk >= 4096; chunk /= 2) {
        struct stat st;
        while (fstat(fd, &st) == 0 && posix_fallocate(fd, st.st_size, (off_t)chunk) == 0)
            ;
    }
    close(fd);
    uint64_t before = blocks_of(path);
    struct persistent_check_report rep;
    if (persistent_check(s, &rep) != 0 || rep.live_blocks != 1)
        _exit(4);
    destroy_persistent_allocator(s);
    struct persistent_options o = {0};
    uint32_t views[2] = {PERSISTENT_OPEN_READONLY, PERSISTENT_OPEN_PRIVATE};
    for (int i = 0; i < 2; i++) {
        o.flags = views[i];
        if (persistent_space_open(path, &o, &s) != 0)
            _exit(5);
        memset(&rep, 0, sizeof rep);
        if (persistent_check(s, &rep) != 0 || rep.live_blocks != 1)
            _exit(6);
        persistent_space_close(s);
    }
    if (blocks_of(path) != before)
        _exit(7);                   /* nothing backed by the checks */
    printf("inspect_full: a lazy space of a 64 GiB maximum, %llu KiB on a full "
           "file system, checked three ways\n", (unsigned long long)before >> 10);
    fflush(stdout);
}

static void test_inspect_full(void)
{
    int st = in_small_tmpfs("the inspection on a full file system", inspect_full);
    if (st == -1)
        return;
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    if (!WIFEXITED(st))
        fprintf(stderr, "inspection on a full file system: signal %d\n", WTERMSIG(st));
}

int main(void)
{
    test_lazy();
    test_lazy_full();
    test_punch_and_back();
    test_full_file_system();
    test_inspect_full();
    return t_done();
}

/* Huge frees punch holes: the file system gets the blocks back, they are
 * backed again when reused, a crash's leftover holes are filled by the
 * next writer's open, and on a full file system reusing them is a failed
 * allocation, never SIGBUS.  Lazy backing (PERSISTENT_OPEN_LAZY) trades
 * that: blocks are allocated when written, and a store on a full file
 * system is a SIGBUS.  A check reads no hole, so it neither backs one nor
 * dies of one, even on a full file system. */
#include "check.h"

#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/vfs.h>

#include "internal.h"

static uint64_t blocks_of(const char *path)
{
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    return (uint64_t)st.st_blocks * 512;
}

/* A child opens the space at p, mallocs and frees 16 MiB (punched out of
 * the file) and is killed, its holes left for the next writer. */
static void punched_then_killed(const char *p)
{
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
    punched_then_killed(p);
    CHECK(blocks_of(p) < full - (15u << 20));
    s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    CHECK(blocks_of(p) >= full);
    t_check_clean(s, "after a crash with holes");
    destroy_persistent_allocator(s);
    unlink(p);
}

/* Runs body(dir) in a child, in a private mount namespace with a tmpfs of
 * mb MiB at dir; returns the child's wait status, or -1 when no tmpfs can
 * be mounted (not root): the caller skips, saying what. */
static int in_tmpfs(const char *what, unsigned mb, void (*body)(const char *dir))
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
        char opt[32];
        snprintf(opt, sizeof opt, "size=%um", mb);
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("tmpfs", dir, "tmpfs", 0, opt) != 0)
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

static int in_small_tmpfs(const char *what, void (*body)(const char *dir))
{
    return in_tmpfs(what, 8, body);
}

/* in_tmpfs, and the child must exit 0 (not die of a signal). */
static void passes_in_tmpfs(const char *what, unsigned mb, void (*body)(const char *dir))
{
    int st = in_tmpfs(what, mb, body);
    if (st == -1)
        return;
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    if (!WIFEXITED(st))
        fprintf(stderr, "%s: signal %d\n", what, WTERMSIG(st));
}

static void passes_in_small_tmpfs(const char *what, void (*body)(const char *dir))
{
    passes_in_tmpfs(what, 8, body);
}

/* Someone else takes every block the file system has left: a file at
 * filler as large as it gets; its descriptor (exits 4 when it cannot be
 * made), *got its size. */
static int fill_file_system(const char *filler, off_t *got)
{
    int fd = open(filler, O_CREAT | O_RDWR, 0644);
    if (fd < 0)
        _exit(4);
    off_t end = 0;
    for (off_t step = 1u << 20; step >= 4096; step /= 2)
        while (posix_fallocate(fd, end, step) == 0)
            end += step;
    *got = end;
    return fd;
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
    passes_in_small_tmpfs("the full file system part", full_file_system);
}

/* A full file system with a punched run below free pages still backed: a
 * request that fits in the backed ones takes them (the search once gave up
 * at the first run it could not back, ENOMEM with room in the file), for
 * a large block and for a superblock's carve alike. */
static void full_below_backed(const char *dir)
{
    char path[256], filler[256];
    snprintf(path, sizeof path, "%s/space", dir);
    snprintf(filler, sizeof filler, "%s/filler", dir);
    allocator_space_t *s = create_persistent_allocator(path, 5u << 20);
    if (s == NULL)
        _exit(2);
    char *big = persistent_malloc(s, 3u << 20);
    char *mid = persistent_malloc(s, 512u << 10);
    if (big == NULL || mid == NULL || mid < big)
        _exit(3);
    persistent_free(s, big);               /* punched: 3 MiB back to the tmpfs */
    persistent_free(s, mid);               /* too short to punch: still backed */
    /* someone else takes every page the file system has left */
    off_t end;
    int fd = fill_file_system(filler, &end);
    if (end < (3 << 20))
        _exit(4);
    char *x = persistent_malloc(s, 256u << 10);
    if (x == NULL || x < big + (3u << 20))
        _exit(5);
    memset(x, 7, 256u << 10);
    char *y = persistent_malloc(s, 3000);  /* a class with no superblock yet */
    uint32_t ys, yi;
    struct pm_sb_header *yh;
    if (y == NULL || y < big + (3u << 20))
        _exit(6);
    if (sb_locate(pm_rt_of(s), y, &ys, &yh, &yi) != 0)
        _exit(9);                          /* a run of pages: the carve failed */
    memset(y, 8, 3000);
    errno = 0;
    if (persistent_malloc(s, 3u << 20) != NULL || errno != ENOMEM)
        _exit(7);
    struct persistent_check_report rep;
    if (persistent_check(s, &rep) != 0)
        _exit(8);
    close(fd);
    unlink(filler);
    destroy_persistent_allocator(s);
}

static void test_full_below_backed(void)
{
    passes_in_small_tmpfs("the full file system with backed pages part", full_below_backed);
}

/* As full_below_backed, with more punched runs below the backed pages than
 * the carve once looked at: each one it could not back used one of its 64
 * tries, and a superblock became a run of pages (a 3000-byte block took a
 * page), or with no fallback, no block at all. */
static void many_holes_below_backed(const char *dir)
{
    char path[256], filler[256];
    snprintf(path, sizeof path, "%s/space", dir);
    snprintf(filler, sizeof filler, "%s/filler", dir);
    enum { HOLES = 80 };
    allocator_space_t *s = create_persistent_allocator(path, (HOLES * 2 + 12) << 20);
    if (s == NULL)
        _exit(2);
    char *hole[HOLES], *sep[HOLES];
    for (int i = 0; i < HOLES; i++) {
        hole[i] = persistent_malloc(s, 2u << 20);
        sep[i] = persistent_malloc(s, 100u << 10);      /* keeps the holes apart */
        if (hole[i] == NULL || sep[i] == NULL)
            _exit(3);
    }
    for (int i = 0; i < HOLES; i++)
        persistent_free(s, hole[i]);                    /* each one punched */
    off_t end;
    int fd = fill_file_system(filler, &end);
    if (end < (HOLES * 2) << 20)
        _exit(4);
    char *y = persistent_malloc(s, 3000);  /* a class with no superblock yet */
    uint32_t ys, yi;
    struct pm_sb_header *yh;
    if (y == NULL)
        _exit(5);
    if (sb_locate(pm_rt_of(s), y, &ys, &yh, &yi) != 0)
        _exit(6);                          /* a run of pages: the carve failed */
    memset(y, 8, 3000);
    struct persistent_check_report rep;
    if (persistent_check(s, &rep) != 0)
        _exit(7);
    close(fd);
    unlink(filler);
    destroy_persistent_allocator(s);
}

static void test_many_holes_below_backed(void)
{
    passes_in_tmpfs("the full file system with many holes part", 200, many_holes_below_backed);
}

/* A private open allocates over the holes huge frees punched, on a full
 * file system: its stores there were a SIGBUS (a store into a hole of a
 * private mapping of a tmpfs file needs the file's page first), now they
 * go to memory of its own; the file is not written. */
static void private_over_holes_in(const char *dir, bool tx_open)
{
    char path[256], filler[256];
    snprintf(path, sizeof path, "%s/space", dir);
    snprintf(filler, sizeof filler, "%s/filler", dir);
    allocator_space_t *s = create_persistent_allocator(path, 8u << 20);
    if (s == NULL)
        _exit(2);
    char *r = persistent_malloc_root(s, 1, 64);
    char *big = persistent_malloc(s, 6u << 20);
    if (r == NULL || big == NULL)
        _exit(3);
    strcpy(r, "root");
    memset(big, 7, 6u << 20);
    if (!tx_open) {
        persistent_free(s, big);            /* punched */
        destroy_persistent_allocator(s);
    } else {
        /* a writer killed inside a transaction, after the punch (a
         * writer's open fills the holes it finds): the private open tries
         * the rollback on a private mapping first and maps the file again
         * after it (and once had the holes back in its mapping) */
        persistent_offset_t bigoff = ptr_to_persistent_offset(s, big);
        destroy_persistent_allocator(s);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            s = create_persistent_allocator(path, 0);
            r = s ? persistent_find_root(s, 1) : NULL;
            if (r == NULL)
                _exit(1);
            persistent_free(s, persistent_offset_to_ptr(s, bigoff));  /* punched */
            if (persistent_tx_begin(s) != 0 || persistent_tx_add(s, r, 8) != 0)
                _exit(1);
            memcpy(r, "ROOT", 4);
            raise(SIGKILL);
            _exit(1);
        }
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFSIGNALED(st))
            _exit(10);
    }
    off_t end;
    int fd = fill_file_system(filler, &end);
    uint64_t before = t_file_hash(path);
    allocator_space_t *p = load_private_persistent_allocator(path);
    if (p == NULL)
        _exit(5);
    r = persistent_find_root(p, 1);
    if (r == NULL || strcmp(r, "root") != 0)
        _exit(6);
    int n = 0;
    char *b;
    while (n < 5000 && (b = persistent_malloc(p, 1000)) != NULL) {
        memset(b, 9, 1000);
        n++;
    }
    if (n < 5000)
        _exit(7);                           /* 5 MB of 6 in the holes */
    struct persistent_check_report rep;
    if (persistent_check(p, &rep) != 0)
        _exit(8);
    persistent_space_close(p);
    if (t_file_hash(path) != before)
        _exit(9);
    close(fd);
    unlink(filler);
}

static void private_over_holes(const char *dir)
{
    private_over_holes_in(dir, false);
}

static void private_over_holes_tx(const char *dir)
{
    private_over_holes_in(dir, true);
}

static void test_private_over_holes(void)
{
    passes_in_tmpfs("the private open over holes part", 16, private_over_holes);
    passes_in_tmpfs("the private open over holes, a transaction open, part", 16,
                    private_over_holes_tx);
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
    /* all of it but the run bitmaps' words of pages it does not have yet
     * (three bitmaps of a bit per page of the maximum) */
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    CHECK(blocks_of(p) + 3 * (in.max_capacity / in.page_size / 8) >= (uint64_t)st.st_size);
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

/* The space's and the filler's paths in dir (256 bytes each), and SIGBUS
 * left to kill the child: a sanitizer's handler would report it. */
static void full_fs_files(const char *dir, char *path, char *filler)
{
    snprintf(path, 256, "%s/space", dir);
    snprintf(filler, 256, "%s/filler", dir);
    signal(SIGBUS, SIG_DFL);
}

/* Takes every block the file system has left, down to its last page, in
 * the file filler (in a child of in_small_tmpfs). */
static void fill_up(const char *filler)
{
    int fd = open(filler, O_CREAT | O_RDWR, 0644);
    if (fd < 0)
        _exit(99);
    for (uint64_t chunk = 1u << 20; chunk >= 4096; chunk /= 2) {
        struct stat st;
        while (fstat(fd, &st) == 0 && posix_fallocate(fd, st.st_size, (off_t)chunk) == 0)
            ;
    }
    close(fd);
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
    full_fs_files(dir, path, filler);
    allocator_space_t *s = open_lazy(path, 1u << 20, UINT64_C(64) << 30, PERSISTENT_OPEN_LAZY);
    char *b = persistent_malloc(s, 100);
    if (b == NULL)
        _exit(2);
    memset(b, 9, 100);
    fill_up(filler);
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
    /* the same where the file cannot be opened again (no /proc): the
     * program's descriptor is read instead, and a writer's open too */
    pm_test_no_fd_again = true;
    uint32_t again[3] = {PERSISTENT_OPEN_LAZY, PERSISTENT_OPEN_READONLY, PERSISTENT_OPEN_PRIVATE};
    for (int i = 0; i < 3; i++) {
        o.flags = again[i];
        if (persistent_space_open(path, &o, &s) != 0)
            _exit(8);
        memset(&rep, 0, sizeof rep);
        if (persistent_check(s, &rep) != 0 || rep.live_blocks != 1)
            _exit(9);
        persistent_space_close(s);
    }
    pm_test_no_fd_again = false;
    if (blocks_of(path) != before)
        _exit(10);
    printf("inspect_full: a lazy space of a 64 GiB maximum, %llu KiB on a full "
           "file system, checked six ways\n", (unsigned long long)before >> 10);
    fflush(stdout);
}

static void test_inspect_full(void)
{
    passes_in_small_tmpfs("the inspection on a full file system", inspect_full);
}

/* A growable space holds no metadata for pages it does not have: the run
 * bitmaps, sized for the maximum (2 MiB each for 64 GiB), are holes past
 * the pages the space has, at create, after an open that backs punched
 * pages or a lazy writer's, and after growth, which backs its pages' words
 * before it reads them. */
static void test_sparse_bitmaps(void)
{
    const char *p = t_path("sparse");
    allocator_space_t *s = t_create(p, 1u << 20, UINT64_C(64) << 30);
    struct stat st;
    REQUIRE(stat(p, &st) == 0);
    CHECK((uint64_t)st.st_size > 7u << 20);
    CHECK(blocks_of(p) < 2u << 20);
    char *b = persistent_malloc(s, 300u << 20);
    REQUIRE(b != NULL);
    REQUIRE(stat(p, &st) == 0);
    uint64_t blocks = blocks_of(p);
    printf("sparse: a 1 MiB space of a 64 GiB maximum grown by 300 MiB: %llu KiB "
           "in a file of %llu KiB\n", (unsigned long long)blocks >> 10,
           (unsigned long long)st.st_size >> 10);
    CHECK(blocks >= 300u << 20);                /* eager: its pages backed */
    CHECK(blocks < (uint64_t)st.st_size - (5u << 20));
    t_check_clean(s, "sparse bitmaps");
    destroy_persistent_allocator(s);
    unlink(p);
}

/* The file's extents (FIEMAP: allocated, written or not; neither
 * SEEK_DATA nor st_blocks tells an unwritten block from a hole on every
 * file system), or NULL where the file system has no FIEMAP. */
static struct fiemap *extents_of(const char *path)
{
    enum { MAX = 512 };
    struct fiemap *fm = calloc(1, sizeof *fm + MAX * sizeof(struct fiemap_extent));
    REQUIRE(fm != NULL);
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    fm->fm_length = FIEMAP_MAX_OFFSET;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = MAX;
    int r = ioctl(fd, FS_IOC_FIEMAP, fm);
    close(fd);
    if (r != 0) {
        free(fm);
        return NULL;
    }
    if (fm->fm_mapped_extents >= MAX) {         /* too many to judge */
        free(fm);
        return NULL;
    }
    return fm;
}

/* Bytes of [a, b) that the extents cover. */
static uint64_t covered(const struct fiemap *fm, uint64_t a, uint64_t b)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < fm->fm_mapped_extents; i++) {
        uint64_t lo = fm->fm_extents[i].fe_logical, hi = lo + fm->fm_extents[i].fe_length;
        lo = lo > a ? lo : a;
        hi = hi < b ? hi : b;
        n += hi > lo ? hi - lo : 0;
    }
    return n;
}

/* What a space's file holds on a disk file system, where a read fault
 * backs nothing (tmpfs backs a page a read touches, hiding a missing
 * block until the file system is full): every byte of the header, the
 * three bitmaps' words of the pages it has, roots, lanes and data; none
 * of the bitmaps past them but the block their last word is in. */
static bool backed_exactly(const char *path, const char *when)
{
    struct pm_fixed f;
    struct pm_live live;
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, &f, sizeof f, 0) == (ssize_t)sizeof f);
    REQUIRE(pread(fd, &live, sizeof live, offsetof(struct pm_header, live)) ==
            (ssize_t)sizeof live);
    close(fd);
    struct fiemap *fm = extents_of(path);
    if (fm == NULL)
        return false;
    /* the library's unit: the memory page or the file system's block */
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    uint64_t blk = (uint64_t)sysconf(_SC_PAGESIZE), fsb = (uint64_t)st.st_blksize;
    if (fsb > blk && fsb <= 1u << 20 && (fsb & (fsb - 1)) == 0)
        blk = fsb;
    uint64_t n = live.n_pages, used = (n + 63) / 64 * 8;
    uint64_t offs[3] = {f.start_bits_off, f.end_bits_off, f.kind_bits_off};
    uint64_t end = f.data_off + (n << f.page_shift);
    CHECK_EQ(covered(fm, 0, f.start_bits_off), f.start_bits_off);
    CHECK_EQ(covered(fm, f.roots_off, end), end - f.roots_off);
    uint64_t tails = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(covered(fm, offs[i], offs[i] + used), used);
        uint64_t t0 = (offs[i] + used + blk - 1) / blk * blk;
        uint64_t t1 = (offs[i] + f.bits_size) / blk * blk;
        if (t1 > t0) {
            CHECK_EQ(covered(fm, t0, t1), 0);
            tails += t1 - t0;
        }
    }
    printf("backed: %s, %llu pages: every block but %llu KiB of bitmaps' tail\n", when,
           (unsigned long long)n, (unsigned long long)tails >> 10);
    free(fm);
    return true;
}

/* On a disk file system (/var/tmp when it is one), a space whose bitmaps'
 * words of its pages span blocks: created, grown, after a punch and a
 * crash, and after a lazy writer's growth. */
static void test_backed_exactly(void)
{
    struct statfs sfs;
    if (statfs("/var/tmp", &sfs) != 0 || sfs.f_type == 0x01021994 /* TMPFS_MAGIC */ ||
        access("/var/tmp", W_OK) != 0 || (uint64_t)sfs.f_bavail * sfs.f_bsize < UINT64_C(2) << 30) {
        printf("skipping the blocks of a space's file: /var/tmp is no disk file system "
               "with 2 GiB free\n");
        return;
    }
    const char *dir = getenv("PM_TEST_DIR");
    char saved[512] = {0};
    if (dir)
        snprintf(saved, sizeof saved, "%s", dir);
    REQUIRE(setenv("PM_TEST_DIR", "/var/tmp", 1) == 0);
    const char *p = t_path("backed");
    if (saved[0])
        setenv("PM_TEST_DIR", saved, 1);
    else
        unsetenv("PM_TEST_DIR");
    /* 70 MiB: 17,920 pages, their words 2,240 bytes in each bitmap */
    allocator_space_t *s = t_create(p, 70u << 20, UINT64_C(64) << 30);
    if (!backed_exactly(p, "created")) {
        printf("skipping the blocks of a space's file: no FIEMAP on /var/tmp (or too "
               "many extents)\n");
        destroy_persistent_allocator(s);
        unlink(p);
        return;
    }
    char *b = persistent_malloc(s, 300u << 20);     /* words in 2 more blocks */
    REQUIRE(b != NULL);
    CHECK(backed_exactly(p, "grown"));
    destroy_persistent_allocator(s);
    punched_then_killed(p);
    s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    CHECK(backed_exactly(p, "holes filled after a crash"));
    destroy_persistent_allocator(s);
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_LAZY;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    REQUIRE(persistent_malloc(s, 200u << 20) != NULL);
    destroy_persistent_allocator(s);
    s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    CHECK(backed_exactly(p, "backed after a lazy writer"));
    t_check_clean(s, "backed");
    destroy_persistent_allocator(s);
    unlink(p);
}

/* The same on a full file system (an 8 MiB tmpfs): a 1 MiB space of a
 * 64 GiB maximum takes 1.1 MiB (7.3 with its bitmaps whole), and all it
 * stores into is backed: blocks made and freed with the file system full
 * are no SIGBUS; an open after a punch or after a lazy writer backs what
 * the file may lack but those holes (else it runs out of room); a growth
 * the file system has no room for fails the malloc with ENOMEM, its
 * bitmaps' words included -- read before they are backed, they were a
 * SIGBUS. */
static void grow_full(const char *dir)
{
    char path[256], filler[256];
    full_fs_files(dir, path, filler);
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 1u << 20;
    o.max_size = UINT64_C(64) << 30;
    allocator_space_t *s;
    if (persistent_space_open(path, &o, &s) != 0)
        _exit(2);
    if (blocks_of(path) >= 2u << 20)
        _exit(3);
    /* what the space has is backed, its run bits too: blocks of a
     * superblock and a run are made and freed with no block to spare */
    fill_up(filler);
    char *keep = persistent_malloc(s, 100);
    char *mid = persistent_malloc(s, 64u << 10);
    char *run = persistent_malloc(s, 200u << 10);
    if (keep == NULL || mid == NULL || run == NULL)
        _exit(4);
    t_fill(keep, 100, 5);
    memset(mid, 6, 64u << 10);
    memset(run, 7, 200u << 10);
    persistent_free(s, mid);
    persistent_free(s, run);
    unlink(filler);
    char *big = persistent_malloc(s, 2u << 20);     /* grows, then punched */
    if (big == NULL)
        _exit(5);
    memset(big, 1, 2u << 20);
    persistent_free(s, big);
    persistent_offset_t at = persistent_offset_from_ptr(s, keep);
    void *was = keep;
    destroy_persistent_allocator(s);
    /* the punched pages backed again, and nothing more */
    o.flags = 0;
    if (persistent_space_open(path, &o, &s) != 0)
        _exit(6);
    if (blocks_of(path) >= 6u << 20)
        _exit(7);
    destroy_persistent_allocator(s);
    /* a lazy writer's growth, then an eager open: the same */
    o.flags = PERSISTENT_OPEN_LAZY;
    if (persistent_space_open(path, &o, &s) != 0)
        _exit(8);
    big = persistent_malloc(s, 3u << 20);
    if (big == NULL)
        _exit(9);
    memset(big, 2, 4096);
    destroy_persistent_allocator(s);
    o.flags = 0;
    if (persistent_space_open(path, &o, &s) != 0)
        _exit(10);
    if (!t_verify_as(persistent_offset_to_ptr(s, at), 100, was, 5))
        _exit(11);
    fill_up(filler);
    uint64_t before = blocks_of(path);
    errno = 0;
    if (persistent_malloc(s, 200u << 20) != NULL || errno != ENOMEM)
        _exit(13);
    struct persistent_check_report rep;
    if (persistent_check(s, &rep) != 0 || rep.live_blocks != 2)
        _exit(14);
    if (blocks_of(path) > before)
        _exit(15);
    unlink(filler);
    big = persistent_malloc(s, 2u << 20);   /* room again: it grows */
    if (big == NULL)
        _exit(16);
    memset(big, 3, 2u << 20);
    if (persistent_check(s, &rep) != 0 || rep.live_blocks != 3)
        _exit(17);
    destroy_persistent_allocator(s);
    printf("grow_full: a space of a 64 GiB maximum in an 8 MiB tmpfs, %llu KiB "
           "when the file system was full\n", (unsigned long long)before >> 10);
    fflush(stdout);
}

static void test_grow_full(void)
{
    passes_in_small_tmpfs("the growth on a full file system", grow_full);
}

int main(void)
{
    test_lazy();
    test_lazy_full();
    test_punch_and_back();
    test_full_file_system();
    test_full_below_backed();
    test_many_holes_below_backed();
    test_private_over_holes();
    test_inspect_full();
    test_sparse_bitmaps();
    test_backed_exactly();
    test_grow_full();
    return t_done();
}

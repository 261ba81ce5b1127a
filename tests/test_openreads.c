/* A writer's open reads the superblock headers with pread into a copy and
 * verifies and rebuilds from it (docs/design.md "Recovery"): it must not
 * map the superblocks' pages, and what it rebuilds from the copy must be
 * the heap on file.
 *
 *   clean   a space of many superblocks, closed cleanly and opened again:
 *           the open leaves far fewer pages of the space mapped than it
 *           has superblocks; every live block keeps its pattern, the freed
 *           ones are free, and as many new blocks as were freed land on
 *           no live block.
 *   killed  the same heap built by a child whose other thread freed a
 *           quarter of the blocks (remote frees, pending when the child
 *           is SIGKILLed): the open applies them to the file, the counts
 *           agree, nothing pending is left, and new blocks land on no
 *           live block.  The clean one closes with nothing pending, so
 *           that its open has no repair to write.
 *   fsize   the killed heap opened under a file size limit below the
 *           file's end: the open writes its repairs through the mapping
 *           (a pwrite past the limit would end the process, SIGXFSZ).
 *   pmem    the killed heap opened in PERSISTENT_DURABILITY_PMEM: its
 *           repairs go with pwrite too (no page of the space mapped for
 *           them) and are durable when the open returns (on a disk, no
 *           dirty page of the file in the page cache).
 *   rolled  a child whose other thread freed every eighth block past the
 *           thousandth (remote frees, pending), killed inside a
 *           transaction that rewrote twenty blocks (snapshotted first)
 *           and allocated 300 blocks of another class, in superblocks of
 *           their own: the open repairs the frees and rolls the
 *           transaction back (a trial on a private mapping, verified,
 *           then for real)
 *           and reads the headers no more than a clean open does: one
 *           pread each, no pass through the mapping (it took an open of a
 *           1 GiB space from 25 to 150 ms).  The patterns are back, the
 *           transaction's blocks and superblocks are gone.
 *   leftover  twelve opens and closes leave no address space mapped.
 *   shares  the number of readers an open takes (by the size and the
 *           CPUs, or as PERSISTENT_MEM_OPEN_THREADS says); the clean
 *           heap, with superblocks of 16- and 100-byte blocks beside
 *           it, opened with its headers read by 1, 2, 3, 4, 7 and 16
 *           threads (two a lane of the copy, from its two ends, taking
 *           runs of consecutive superblocks in turn), and again with the
 *           copy bounded to 128 KiB (the list stops after 120
 *           superblocks, the rest goes between the lanes' readers):
 *           every open makes one read a superblock
 *           and maps no more pages than one thread's, the heap verifies
 *           and every pattern holds; then with the header of a
 *           superblock three quarters in broken, every open (1 to 4
 *           threads) refuses the space and leaves the file as it was.
 *   hugepages  the open asks for huge pages (the mappings' VmFlags
 *           "hg") where its rebuild writes densely (the control words
 *           of 150 MiB of superblocks) and nowhere else (a space of
 *           large runs, 40 MiB of superblocks in a 256 MiB space, the
 *           second 256 MiB of a space with 10 MiB of superblocks
 *           there).
 *
 * Every block carries a pattern of its index, checked before it is freed
 * and after each open.  Run with both kinds of open in one process: the
 * space's mapping is new at each open. */
#include "check.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/vfs.h>

#include "internal.h"               /* PM_VG_MARKS */

#define TAG UINT64_C(0x6f70656e72656164)     /* "openread" */

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif
#define BLK 512
#define N_BLOCKS 60000

struct table {
    uint64_t n;
    persistent_offset_t off[N_BLOCKS];
};

/* a pattern of the block's offset and index, so that it holds wherever
 * the space is mapped */
static void fill(allocator_space_t *s, void *p, uint64_t i)
{
    uint64_t *w = p;
    uint64_t off = persistent_offset_from_ptr(s, p);
    for (size_t k = 0; k < BLK / 8; k++)
        w[k] = (off * UINT64_C(0x9e3779b97f4a7c15) ^ i) + k * UINT64_C(0x100000001b3);
}

static bool intact(allocator_space_t *s, const void *p, uint64_t i)
{
    const uint64_t *w = p;
    uint64_t off = persistent_offset_from_ptr(s, p);
    for (size_t k = 0; k < BLK / 8; k++)
        if (w[k] != ((off * UINT64_C(0x9e3779b97f4a7c15) ^ i) + k * UINT64_C(0x100000001b3)))
            return false;
    return true;
}

static struct table *table_of(allocator_space_t *s)
{
    struct table *t = persistent_find_root(s, TAG);
    REQUIRE(t != NULL);
    return t;
}

/* pages of the space's mapping in this process's page tables */
static long mapped_pages(allocator_space_t *s)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL)
        return -1;
    char line[512];
    bool in = false;
    long kb = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi;
        /* a mapping's first line: "lo-hi perms ..."; its fields end in kB */
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && strstr(line, "kB") == NULL) {
            in = lo == (unsigned long)(uintptr_t)s;
            continue;
        }
        if (in && strncmp(line, "Rss:", 4) == 0) {
            kb = atol(line + 4);
            break;
        }
    }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024 / sysconf(_SC_PAGESIZE);
}

static allocator_space_t *build(const char *path)
{
    remove(path);
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 64u << 20;
    allocator_space_t *s;
    REQUIRE(persistent_space_open(path, &o, &s) == 0);
    struct table *t = persistent_malloc_root(s, TAG, sizeof *t);
    REQUIRE(t != NULL);
    for (uint64_t i = 0; i < N_BLOCKS; i++) {
        void *p = persistent_malloc(s, BLK);
        REQUIRE(p != NULL);
        fill(s, p, i);
        t->off[i] = persistent_offset_from_ptr(s, p);
    }
    t->n = N_BLOCKS;
    return s;
}

/* frees every fourth block, checking its pattern first */
static void *free_quarter(void *arg)
{
    allocator_space_t *s = arg;
    struct table *t = table_of(s);
    int bad = 0;
    for (uint64_t i = 0; i < t->n; i += 4) {
        void *p = (char *)s + t->off[i];
        if (!intact(s, p, i))
            bad++;
        persistent_free(s, p);
    }
    CHECK_EQ(bad, 0);
    return NULL;
}

/* The reopened heap: patterns, counts, nothing pending, and new blocks on
 * no live one. */
static void judge(allocator_space_t *s, const char *what)
{
    struct table *t = table_of(s);
    REQUIRE(t->n == N_BLOCKS);
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    /* the live blocks: three quarters of the table, and the table */
    CHECK_EQ(st.live_blocks, N_BLOCKS - N_BLOCKS / 4 + 1);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    CHECK_EQ(rep.n_errors, 0);
    CHECK_EQ(rep.orphan_bits, 0);
    int bad = 0;
    for (uint64_t i = 0; i < N_BLOCKS; i++)
        if (i % 4 != 0)
            bad += !intact(s, (char *)s + t->off[i], i);
    CHECK_EQ(bad, 0);
    /* as many blocks as were freed, and then some: none may overlap a live
     * one, which its pattern would show */
    enum { MORE = N_BLOCKS / 4 + 256 };
    static void *more[MORE];
    for (int k = 0; k < MORE; k++) {
        more[k] = persistent_malloc(s, BLK);
        REQUIRE(more[k] != NULL);
        fill(s, more[k], UINT64_C(1) << 40 | (uint64_t)k);
    }
    bad = 0;
    for (uint64_t i = 0; i < N_BLOCKS; i++)
        if (i % 4 != 0)
            bad += !intact(s, (char *)s + t->off[i], i);
    for (int k = 0; k < MORE; k++) {
        bad += !intact(s, more[k], UINT64_C(1) << 40 | (uint64_t)k);
        persistent_free(s, more[k]);
    }
    CHECK_EQ(bad, 0);
    if (bad)
        fprintf(stderr, "%s: %d blocks lost their pattern\n", what, bad);
}

static void test_clean(void)
{
    const char *path = t_path("openreads-clean");
    allocator_space_t *s = build(path);
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    uint64_t sbs = st.superblocks;
    REQUIRE(sbs >= 200);
    struct persistent_check_report rep;
    REQUIRE(persistent_check(s, &rep) == 0);
    REQUIRE(rep.pending_remote_frees == 0);     /* no repair to write */
    REQUIRE(persistent_space_close(s) == 0);

    /* a first touch of each header maps it (and, reading, up to 15 pages
     * around it): 7,576 pages for 473 superblocks when the open read the
     * headers through the mapping, 16-30 when it reads them with pread */
    REQUIRE(persistent_space_open(path, NULL, &s) == 0);
    long pages = mapped_pages(s);
    printf("clean open: %llu superblocks, %ld pages of the space mapped\n",
           (unsigned long long)sbs, pages);
    /* the memory checkers' open walks every block (memcheck.c) */
    if (pages >= 0 && !PM_VG_MARKS)
        CHECK(pages < (long)sbs / 4);
    free_quarter(s);
    judge(s, "clean");
    REQUIRE(persistent_space_close(s) == 0);
    remove(path);
}

/* The killed heap: built by a child whose other thread freed a quarter of
 * the blocks, then SIGKILLed with those frees pending. */
/* persistent_check of the file as it is, through a read-only open */
static struct persistent_check_report check_on_file(const char *path)
{
    allocator_space_t *s;
    struct persistent_options ro = {0};
    ro.flags = PERSISTENT_OPEN_READONLY;
    REQUIRE(persistent_space_open(path, &ro, &s) == 0);
    struct persistent_check_report rep;
    REQUIRE(persistent_check(s, &rep) == 0);
    REQUIRE(persistent_space_close(s) == 0);
    return rep;
}

static void build_killed(const char *path)
{
    int failures_before = t_failures;
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        allocator_space_t *s = build(path);
        pthread_t th;
        if (pthread_create(&th, NULL, free_quarter, s) != 0)
            _exit(2);
        pthread_join(th, NULL);
        if (t_failures != failures_before)
            _exit(3);
        /* the remote bits are set, and nobody collected them */
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int wst;
    REQUIRE(waitpid(pid, &wst, 0) == pid);
    REQUIRE(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL);
}

static void test_killed(void)
{
    const char *path = t_path("openreads-killed");
    build_killed(path);

    /* the dead writer left remote frees pending: the file says so */
    struct persistent_check_report rep = check_on_file(path);
    printf("killed writer left %llu remote frees pending\n",
           (unsigned long long)rep.pending_remote_frees);
    CHECK(rep.pending_remote_frees > 0);

    allocator_space_t *s;
    REQUIRE(persistent_space_open(path, NULL, &s) == 0);
    struct persistent_info info;
    REQUIRE(persistent_space_info(s, &info) == 0);
    CHECK_EQ(info.recovered, 1);
    REQUIRE(persistent_check(s, &rep) == 0);
    /* applied by the open to the file (the shared mapping a check reads),
     * not only to its runtime */
    CHECK_EQ(rep.pending_remote_frees, 0);
    judge(s, "killed");
    REQUIRE(persistent_space_close(s) == 0);

    remove(path);
}

/* read system calls this process made so far (/proc/self/io), or -1 */
static long read_calls(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (f == NULL)
        return -1;
    char line[128];
    long n = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "syscr:", 6) == 0) {
            n = atol(line + 6);
            break;
        }
    fclose(f);
    return n;
}

/* An open of path as a writer, and what it cost: read system calls and
 * minor faults (each -1 where this system does not tell) */
static allocator_space_t *open_counted(const char *path, const struct persistent_options *o,
                                       long *reads, long *faults)
{
    struct rusage r0, r1;
    long c0 = read_calls();
    REQUIRE(getrusage(RUSAGE_SELF, &r0) == 0);
    allocator_space_t *s;
    REQUIRE(persistent_space_open(path, o, &s) == 0);
    REQUIRE(getrusage(RUSAGE_SELF, &r1) == 0);
    long c1 = read_calls();
    *reads = c0 < 0 || c1 < 0 ? -1 : c1 - c0;
    *faults = r1.ru_minflt - r0.ru_minflt;
    return s;
}

/* the blocks rolled's child frees from another thread (remote frees,
 * pending when it dies) */
static bool rolled_freed(uint64_t i)
{
    return i >= 1000 && (i - 1000) % 8 == 0;
}

static void *free_eighth(void *arg)
{
    allocator_space_t *s = arg;
    struct table *t = table_of(s);
    int bad = 0;
    for (uint64_t i = 0; i < t->n; i++)
        if (rolled_freed(i)) {
            void *p = (char *)s + t->off[i];
            bad += !intact(s, p, i);
            persistent_free(s, p);
        }
    CHECK_EQ(bad, 0);
    return NULL;
}

/* blocks asked for after an open of a heap whose N_BLOCKS are live but
 * those rolled's child freed: none may land on one, which its pattern
 * would show */
static void judge_all(allocator_space_t *s)
{
    struct table *t = table_of(s);
    enum { MORE = 4096 };
    static void *more[MORE];
    for (int k = 0; k < MORE; k++) {
        more[k] = persistent_malloc(s, k % 2 ? BLK : 3000);
        REQUIRE(more[k] != NULL);
        fill(s, more[k], UINT64_C(1) << 40 | (uint64_t)k);
    }
    int bad = 0;
    for (uint64_t i = 0; i < N_BLOCKS; i++)
        bad += !rolled_freed(i) && !intact(s, (char *)s + t->off[i], i);
    for (int k = 0; k < MORE; k++) {
        bad += !intact(s, more[k], UINT64_C(1) << 40 | (uint64_t)k);
        persistent_free(s, more[k]);
    }
    CHECK_EQ(bad, 0);
}

#define TAG_LIVE UINT64_C(0x726f6c6c6564)     /* "rolled" */
#define ROLLED_STRIDE 1
#define ROLLED_SNAPS 20
#define ROLLED_ALLOCS 300
#define ROLLED_SIZE 3000

static void test_rolled(void)
{
    const char *path = t_path("openreads-rolled");
    int failures_before = t_failures;
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        allocator_space_t *s = build(path);
        struct table *t = table_of(s);
        /* remote frees, left pending: the open repairs them as well */
        pthread_t th;
        if (pthread_create(&th, NULL, free_eighth, s) != 0)
            _exit(2);
        pthread_join(th, NULL);
        /* the live blocks before the transaction, its thread's log among
         * them (a first transaction makes it, and it stays) */
        if (persistent_tx_begin(s) != 0 || persistent_tx_commit(s) != 0)
            _exit(2);
        uint64_t *live = persistent_malloc_root(s, TAG_LIVE, sizeof *live);
        struct persistent_stats st;
        if (live == NULL || persistent_stats_get(s, &st) != 0)
            _exit(2);
        *live = st.live_blocks;
        if (persistent_tx_begin(s) != 0)
            _exit(2);
        for (uint64_t i = 0; i < ROLLED_SNAPS; i++) {
            void *p = (char *)s + t->off[i * ROLLED_STRIDE];
            if (persistent_tx_add(s, p, BLK) != 0)
                _exit(3);
            memset(p, 0xa5, BLK);
        }
        for (int k = 0; k < ROLLED_ALLOCS; k++) {
            void *p = persistent_tx_alloc(s, ROLLED_SIZE);
            if (p == NULL)
                _exit(4);
            memset(p, 0x5a, ROLLED_SIZE);
        }
        if (t_failures != failures_before)
            _exit(5);
        kill(getpid(), SIGKILL);        /* the transaction open */
        _exit(6);
    }
    int wst;
    REQUIRE(waitpid(pid, &wst, 0) == pid);
    REQUIRE(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL);

    /* the file says what the open has to do */
    struct persistent_check_report rep = check_on_file(path);
    CHECK_EQ(rep.pending_remote_frees, (N_BLOCKS - 1000 + 7) / 8);
    CHECK_EQ(rep.open_transactions, 1);

    long reads, faults;
    allocator_space_t *s = open_counted(path, NULL, &reads, &faults);
    struct persistent_info info;
    REQUIRE(persistent_space_info(s, &info) == 0);
    CHECK_EQ(info.recovered, 1);
    REQUIRE(persistent_check(s, &rep) == 0);
    CHECK_EQ(rep.n_errors, 0);
    CHECK_EQ(rep.orphan_bits, 0);
    CHECK_EQ(rep.open_transactions, 0);
    CHECK_EQ(rep.pending_remote_frees, 0);
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    /* the transaction's blocks are gone, and the superblocks it carved */
    uint64_t *live = persistent_find_root(s, TAG_LIVE);
    REQUIRE(live != NULL);
    CHECK_EQ(st.live_blocks, *live);
    CHECK_EQ(st.empty_superblocks, 0);
    uint64_t sbs = st.superblocks;
    struct table *t = table_of(s);
    int bad = 0;
    for (uint64_t i = 0; i < N_BLOCKS; i++)
        bad += !rolled_freed(i) && !intact(s, (char *)s + t->off[i], i);
    CHECK_EQ(bad, 0);
    REQUIRE(persistent_space_close(s) == 0);

    long clean_reads, clean_faults;
    s = open_counted(path, NULL, &clean_reads, &clean_faults);
    REQUIRE(persistent_space_info(s, &info) == 0);
    CHECK_EQ(info.recovered, 0);
    judge_all(s);
    REQUIRE(persistent_space_close(s) == 0);
    printf("rolled: %llu superblocks; the open that rolled back made %ld reads and %ld "
           "minor faults, a clean open %ld and %ld\n", (unsigned long long)sbs, reads,
           faults, clean_reads, clean_faults);
    /* one read a superblock in both, and no pass over the headers through
     * a mapping (the trial's verification read every one there, the real
     * open read them all again) */
    if (reads >= 0 && clean_reads >= 0)
        CHECK(reads < clean_reads + (long)sbs / 4);
    else
        printf("rolled: this system does not count read calls (/proc/self/io)\n");
    /* not where the memory checkers' open walks every block (memcheck.c),
     * under ThreadSanitizer (its shadow of each new mapping faults) nor
     * under qemu-user, whose faults are its own */
    if (getenv("PM_UNDER_QEMU") == NULL && !PM_VG_MARKS && !UNDER_TSAN)
        CHECK(faults < clean_faults + (long)sbs / 2);
    else
        printf("rolled: faults not judged here\n");
    remove(path);
}

/* Dirty pages of the file at path in the page cache (cachestat, Linux 6.5
 * and later), or -1 where the system does not tell. */
static long dirty_pages(const char *path)
{
#if defined(__x86_64__) || defined(__aarch64__)
    struct {
        uint64_t off, len;                      /* len 0: to the end */
    } range = {0, 0};
    struct {
        uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
    } cs;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long r = syscall(451 /* cachestat, the same number on both */, fd, &range, &cs, 0);
    close(fd);
    return r == 0 ? (long)cs.nr_dirty : -1;
#else
    (void)path;
    return -1;
#endif
}

/* A directory whose files the page cache writes back to a disk (not
 * tmpfs, whose pages stay dirty whatever is synced), or NULL. */
static const char *disk_dir(void)
{
    static const char *dirs[] = {"TMPDIR", "/var/tmp", "/tmp"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        const char *d = dirs[i][0] == '/' ? dirs[i] : getenv(dirs[i]);
        struct statfs sf;
        if (d != NULL && statfs(d, &sf) == 0 &&
            (unsigned long)sf.f_type != 0x01021994UL /* tmpfs */ &&
            (unsigned long)sf.f_type != 0x858458f6UL /* ramfs */ && access(d, W_OK) == 0)
            return d;
    }
    return NULL;
}

/* Whether cachestat tells dirty pages of files in dir: a page written to a
 * scratch file there must show (on overlayfs, say, it may not). */
static bool dirty_pages_told(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/pm-test-dirty-%d", dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    static const char page[4096] = {1};
    bool written = pwrite(fd, page, sizeof page, 0) == (ssize_t)sizeof page;
    close(fd);
    bool told = written && dirty_pages(path) >= 1;
    unlink(path);
    return told;
}

/* The killed heap opened with PERSISTENT_DURABILITY_PMEM, whose every
 * change is written back before the next: the repairs of the remote frees
 * go from the open's copy with pwrite too, each durable (RWF_DSYNC) before
 * the next is written.
 *   - The open maps no page of the space for them (through the mapping it
 *     was a page fault a superblock, 8-11 us each on this guest: 20 of the
 *     42 ms of a 1 GiB space's open after a SIGKILL).
 *   - On a file system with a disk behind it (where the page cache tells
 *     dirty pages: cachestat, Linux 6.5), the file has no dirty page after
 *     the open: what the open wrote is on the disk (a plain pwrite left
 *     the repaired headers' pages dirty).  Not with a flush instruction
 *     forced (PERSISTENT_MEM_FLUSH): the open's other writes are then
 *     written back to the page cache only.
 * The order of the two writes is not seen here: test_crashpoints
 * recovery-wide sweeps it (the kill model through these writes, the power
 * model through the mapping's path, which keeps the same order). */
static void test_killed_pmem(void)
{
    struct persistent_options pm = {0};
    pm.durability = PERSISTENT_DURABILITY_PMEM;
    const char *path = t_path("openreads-pmem");
    build_killed(path);
    struct persistent_check_report rep = check_on_file(path);
    CHECK(rep.pending_remote_frees > 0);
    allocator_space_t *s;
    REQUIRE(persistent_space_open(path, &pm, &s) == 0);
    long pages = mapped_pages(s);
    struct persistent_info info;
    REQUIRE(persistent_space_info(s, &info) == 0);
    CHECK_EQ(info.recovered, 1);
    REQUIRE(persistent_check(s, &rep) == 0);
    CHECK_EQ(rep.pending_remote_frees, 0);
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    uint64_t sbs = st.superblocks;
    printf("pmem: %llu superblocks; %ld pages of the space mapped by the open that "
           "repaired\n", (unsigned long long)sbs, pages);
    /* the memory checkers' open walks every block (memcheck.c) */
    if (pages >= 0 && !PM_VG_MARKS)
        CHECK(pages < (long)sbs / 4);
    judge(s, "killed, pmem");
    REQUIRE(persistent_space_close(s) == 0);
    remove(path);

    const char *dir = disk_dir();
    const char *forced = getenv("PERSISTENT_MEM_FLUSH");
    if (forced != NULL && forced[0] != '\0' && strcmp(forced, "auto") != 0 &&
        strcmp(forced, "msync") != 0) {
        printf("pmem: PERSISTENT_MEM_FLUSH=%s: durability of the repairs not checked\n",
               forced);
        return;
    }
    if (dir == NULL || !dirty_pages_told(dir)) {
        printf("pmem: no directory here whose dirty pages the page cache tells: durability "
               "of the repairs not checked\n");
        return;
    }
    const char *saved = getenv("PM_TEST_DIR");
    char keep[512];
    snprintf(keep, sizeof keep, "%s", saved != NULL ? saved : "");
    setenv("PM_TEST_DIR", dir, 1);
    path = t_path("openreads-pmem-disk");
    if (saved != NULL)
        setenv("PM_TEST_DIR", keep, 1);
    else
        unsetenv("PM_TEST_DIR");
    build_killed(path);
    /* everything the child left on the disk first */
    int fd = open(path, O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(fdatasync(fd) == 0);
    close(fd);
    CHECK_EQ(dirty_pages(path), 0);
    REQUIRE(persistent_space_open(path, &pm, &s) == 0);
    long dirty = dirty_pages(path);
    REQUIRE(persistent_check(s, &rep) == 0);
    CHECK_EQ(rep.pending_remote_frees, 0);
    printf("pmem: on %s, %ld dirty pages after the open that repaired\n", dir, dirty);
    CHECK_EQ(dirty, 0);
    /* judged on tmpfs above: here every change would be an msync to disk */
    REQUIRE(persistent_space_close(s) == 0);
    remove(path);
}

/* kB of this process's mappings that asked for huge pages (VmFlags "hg"):
 * what the library asked, whatever the system then gives */
static long asked_huge_kb(void)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL)
        return -1;
    char line[1024];
    long size = 0, kb = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "Size:", 5) == 0)
            size = atol(line + 5);
        else if (strncmp(line, "VmFlags:", 8) == 0 && strstr(line, " hg") != NULL)
            kb += size;
    }
    fclose(f);
    return kb;
}

/* A space of up to max_mb MiB (growable) of n_small blocks of 512 bytes,
 * then a large block of gap_mb MiB, then n_after blocks of 512 bytes and
 * n_classes blocks of as many other small classes, each after a large
 * block of 1 MiB; closed and opened again: the kB of mappings the open
 * asked huge pages for, while it is open. */
static long huge_after_open(const char *path, uint64_t max_mb, int n_small, int gap_mb,
                            int n_after, int n_classes)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 16u << 20;
    o.max_size = max_mb << 20;
    allocator_space_t *s;
    remove(path);
    REQUIRE(persistent_space_open(path, &o, &s) == 0);
    for (int i = 0; i < n_small; i++)
        REQUIRE(persistent_malloc(s, BLK) != NULL);
    if (gap_mb)
        REQUIRE(persistent_malloc(s, (size_t)gap_mb << 20) != NULL);
    for (int i = 0; i < n_after; i++)
        REQUIRE(persistent_malloc(s, BLK) != NULL);
    for (int i = 0; i < n_classes; i++) {
        REQUIRE(persistent_malloc(s, 1u << 20) != NULL);
        REQUIRE(persistent_malloc(s, 16 + (size_t)i * 24) != NULL);
    }
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    REQUIRE(persistent_space_close(s) == 0);
    long before = asked_huge_kb();
    REQUIRE(persistent_space_open(path, NULL, &s) == 0);
    long kb = asked_huge_kb() - before;
    struct persistent_info info;
    REQUIRE(persistent_space_info(s, &info) == 0);
    printf("hugepages: %llu MiB of %llu, %llu superblocks, %llu large runs: the open "
           "asked huge pages for %ld kB\n", (unsigned long long)(info.file_size >> 20),
           (unsigned long long)max_mb, (unsigned long long)st.superblocks,
           (unsigned long long)st.large_runs, kb);
    REQUIRE(persistent_space_close(s) == 0);
    remove(path);
    return kb;
}

/* The same under a file size limit below the file's end: the open's
 * repairs then go through the mapping (a pwrite past the limit is
 * SIGXFSZ, by default the end of the process), in a child that must exit
 * normally with the frees applied on file. */
static void test_killed_fsize_limit(void)
{
    const char *path = t_path("openreads-fsize");
    build_killed(path);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {1u << 20, 1u << 20};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(2);
        allocator_space_t *s;
        if (persistent_space_open(path, NULL, &s) != 0)
            _exit(3);
        struct persistent_check_report rep;
        if (persistent_check(s, &rep) != 0 || rep.pending_remote_frees != 0 ||
            rep.orphan_bits != 0)
            _exit(4);
        judge(s, "killed, file size limit");
        _exit(persistent_space_close(s) == 0 && t_failures == 0 ? 0 : 5);
    }
    int wst;
    REQUIRE(waitpid(pid, &wst, 0) == pid);
    if (WIFSIGNALED(wst))
        printf("file size limit: the open ended by signal %d\n", WTERMSIG(wst));
    CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    remove(path);
}

/* A "name: value" line of a /proc file, -1 if there is none. */
static long proc_value(const char *file, const char *name)
{
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(name);
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, name, n) == 0 && line[n] == ':') {
            v = atol(line + n + 1);
            break;
        }
    fclose(f);
    return v;
}

/* This process's address space, kB (VmSize) */
static long vm_size_kb(void)
{
    return proc_value("/proc/self/status", "VmSize");
}

/* Opens and closes leave no address space behind: the runtime's
 * reservation and the open's copy are 2 MiB aligned by mapping more and
 * unmapping the rest (os_vol_alloc), and a first version unmapped its tail
 * from an address off a page boundary, which failed and left up to 2 MiB
 * mapped at each open. */
static void test_no_leftover(void)
{
    const char *path = t_path("openreads-leftover");
    allocator_space_t *s = build(path);
    REQUIRE(persistent_space_close(s) == 0);
    long after2 = 0;
    for (int i = 0; i < 12; i++) {
        REQUIRE(persistent_space_open(path, NULL, &s) == 0);
        REQUIRE(persistent_space_close(s) == 0);
        if (i == 1)
            after2 = vm_size_kb();
    }
    long after12 = vm_size_kb();
    printf("leftover: %ld kB of address space after 2 opens, %ld after 12\n", after2, after12);
    if (after2 > 0)
        CHECK(after12 - after2 < 1024);
    remove(path);
}

/* Whether a request for huge pages shows in this process's smaps: not
 * without transparent huge pages in the kernel (madvise refuses it), nor
 * under qemu-user, which drops the advice (the cross-built tests). */
static bool huge_requests_visible(void)
{
    long before = asked_huge_kb();
    if (before < 0)
        return false;
    size_t len = 4u << 20;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    char *a = (char *)(((uintptr_t)p + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
    bool seen = madvise(a, 2u << 20, MADV_HUGEPAGE) == 0 && asked_huge_kb() - before >= 2048;
    munmap(p, len);
    return seen;
}

/* test_shares' other blocks: superblocks of other lengths of copy (16-byte
 * blocks fill a superblock's bitmaps, 100-byte ones part of them) */
#define TAG_EXTRA UINT64_C(0x6578747261)      /* "extra" */
#define N_EXTRA 16384
struct extra {
    uint64_t n;
    persistent_offset_t off[N_EXTRA];
};

static size_t extra_size(uint64_t i)
{
    return i % 4 == 3 ? 100 : 16;
}

static uint64_t extra_word(uint64_t off, uint64_t i)
{
    return off * UINT64_C(0xff51afd7ed558ccd) ^ i;
}

/* The heap of build and the extra blocks, opened with the headers read by
 * the readers PERSISTENT_MEM_OPEN_THREADS says: the reads and pages of
 * the open, and everything where it was. */
static void open_judged(const char *path, uint64_t sbs, uint64_t live, long *reads,
                        long *pages)
{
    long faults;
    allocator_space_t *s = open_counted(path, NULL, reads, &faults);
    *pages = mapped_pages(s);
    struct persistent_check_report rep;
    REQUIRE(persistent_check(s, &rep) == 0);
    CHECK_EQ(rep.n_errors, 0);
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    CHECK_EQ(st.superblocks, sbs);
    CHECK_EQ(st.live_blocks, live);
    struct table *t = table_of(s);
    int bad = 0;
    for (uint64_t i = 0; i < N_BLOCKS; i++)
        bad += !intact(s, (char *)s + t->off[i], i);
    struct extra *x = persistent_find_root(s, TAG_EXTRA);
    REQUIRE(x != NULL && x->n == N_EXTRA);
    for (uint64_t i = 0; i < N_EXTRA; i++) {
        const uint64_t *w = (const uint64_t *)((char *)s + x->off[i]);
        bad += w[0] != extra_word(x->off[i], i) || w[1] != ~extra_word(x->off[i], i);
    }
    CHECK_EQ(bad, 0);
    REQUIRE(persistent_space_close(s) == 0);
}

/* The clean heap, its headers read by several threads. */
static void test_shares(void)
{
    const char *path = t_path("openreads-shares");
    allocator_space_t *s = build(path);
    struct extra *x = persistent_malloc_root(s, TAG_EXTRA, sizeof *x);
    REQUIRE(x != NULL);
    for (uint64_t i = 0; i < N_EXTRA; i++) {
        uint64_t *w = persistent_malloc(s, extra_size(i));
        REQUIRE(w != NULL);
        x->off[i] = persistent_offset_from_ptr(s, w);
        w[0] = extra_word(x->off[i], i);
        w[1] = ~extra_word(x->off[i], i);
    }
    x->n = N_EXTRA;
    struct persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    uint64_t sbs = st.superblocks, live = st.live_blocks;
    CHECK_EQ(live, N_BLOCKS + N_EXTRA + 2);
    printf("shares: %llu superblocks, %llu live blocks\n", (unsigned long long)sbs,
           (unsigned long long)live);
    /* the superblock three quarters in: a later lane than the first */
    struct table *t = table_of(s);
    uint32_t first, idx;
    struct pm_sb_header *h;
    REQUIRE(sb_locate(pm_rt_of(s), (char *)s + t->off[N_BLOCKS * 3 / 4], &first, &h, &idx) == 0);
    uint64_t check_at = (uint64_t)((char *)&h->check - (char *)s);
    REQUIRE(persistent_space_close(s) == 0);

    /* the number of readers: by the size and the CPUs, unless the
     * environment says */
    const char *env = getenv("PERSISTENT_MEM_OPEN_THREADS");
    char saved[64] = "";
    if (env != NULL)
        snprintf(saved, sizeof saved, "%s", env);
    REQUIRE(unsetenv("PERSISTENT_MEM_OPEN_THREADS") == 0);
    unsigned cpus = os_ncpu();
    CHECK(cpus >= 1);
    CHECK_EQ(pm_snap_readers(0), 1);
    CHECK_EQ(pm_snap_readers(1023), 1);
    CHECK_EQ(pm_snap_readers(1024), cpus < 4 ? cpus : 4);
    CHECK_EQ(pm_snap_readers(1u << 20), cpus < 4 ? cpus : 4);
    REQUIRE(setenv("PERSISTENT_MEM_OPEN_THREADS", "3", 1) == 0);
    CHECK_EQ(pm_snap_readers(24), 3);
    CHECK_EQ(pm_snap_readers(23), 2);       /* a run of 8 each at least */
    CHECK_EQ(pm_snap_readers(5), 1);
    REQUIRE(setenv("PERSISTENT_MEM_OPEN_THREADS", "1", 1) == 0);
    CHECK_EQ(pm_snap_readers(1u << 20), 1);
    REQUIRE(setenv("PERSISTENT_MEM_OPEN_THREADS", "99", 1) == 0);
    CHECK_EQ(pm_snap_readers(1u << 20), 16);
    REQUIRE(setenv("PERSISTENT_MEM_OPEN_THREADS", "0", 1) == 0);
    CHECK_EQ(pm_snap_readers(1u << 20), cpus < 4 ? cpus : 4);
    REQUIRE(setenv("PERSISTENT_MEM_OPEN_THREADS", "two", 1) == 0);
    CHECK_EQ(pm_snap_readers(100), 1);

    /* 1 to 16 readers; then with the copy bounded to 128 KiB, so that the
     * list stops after 120 superblocks and the rest is copied into the
     * room the lanes leave between their readers */
    static const char *const threads[] = {"1", "2", "3", "4", "7", "16"};
    enum { N_THREADS = sizeof threads / sizeof threads[0] };
    long reads_one = -1, pages_one = -1;
    uint64_t arena_max = pm_snap_arena_max;
    for (size_t k = 0; k < 2 * N_THREADS; k++) {
        if (k == N_THREADS)
            pm_snap_arena_max = 128u << 10;
        REQUIRE(setenv("PERSISTENT_MEM_OPEN_THREADS", threads[k % N_THREADS], 1) == 0);
        long reads, pages;
        open_judged(path, sbs, live, &reads, &pages);
        printf("shares: %s threads%s: %ld reads, %ld pages of the space mapped\n",
               threads[k % N_THREADS], k < N_THREADS ? "" : ", 128 KiB of copy", reads,
               pages);
        if (k == 0) {
            reads_one = reads;
            pages_one = pages;
            continue;
        }
        /* the same reads and pages as one thread's: every copy made once
         * and kept, none read through the mapping instead (a little
         * slack, for nothing the threads change) */
        if (reads >= 0 && reads_one >= 0)
            CHECK(reads >= reads_one - 4 && reads <= reads_one + 4);
        if (pages >= 0 && pages_one >= 0 && !PM_VG_MARKS)
            CHECK(pages <= pages_one + 8);
    }
    /* bounded to 40 KiB: the room between the readers runs out, and the
     * superblocks past it are read through the mapping, as many with two
     * readers as with one (the room is the same, between the two ends) */
    pm_snap_arena_max = 40u << 10;
    long tight_reads[2], tight_pages[2];
    for (int k = 0; k < 2; k++) {
        REQUIRE(setenv("PERSISTENT_MEM_OPEN_THREADS", threads[k], 1) == 0);
        open_judged(path, sbs, live, &tight_reads[k], &tight_pages[k]);
        printf("shares: %s threads, 40 KiB of copy: %ld reads, %ld pages of the space "
               "mapped\n", threads[k], tight_reads[k], tight_pages[k]);
    }
    if (tight_reads[0] >= 0 && reads_one >= 0) {
        CHECK(tight_reads[0] < reads_one);
        CHECK(tight_reads[1] >= tight_reads[0] - 4 && tight_reads[1] <= tight_reads[0] + 4);
    }
    /* qemu-user's mapping of the space shows no pages in smaps (0 for
     * every open), so there the reads alone tell */
    if (getenv("PM_UNDER_QEMU") != NULL)
        printf("shares: pages not judged here\n");
    else if (tight_pages[0] >= 0 && pages_one >= 0 && !PM_VG_MARKS) {
        CHECK(tight_pages[0] > pages_one);
        CHECK(tight_pages[1] >= tight_pages[0] - 16 && tight_pages[1] <= tight_pages[0] + 16);
    }
    pm_snap_arena_max = arena_max;

    /* a header broken (its check) in a later lane: refused whatever the
     * readers (the front or the back reader of a lane finds it), and
     * nothing written */
    int fd = open(path, O_RDWR);
    REQUIRE(fd >= 0);
    uint32_t c;
    REQUIRE(pread(fd, &c, sizeof c, (off_t)check_at) == (ssize_t)sizeof c);
    c ^= 0x5a5a5a5au;
    REQUIRE(pwrite(fd, &c, sizeof c, (off_t)check_at) == (ssize_t)sizeof c);
    struct stat st0, st1;
    REQUIRE(fstat(fd, &st0) == 0);
    for (int k = 0; k < 4; k++) {
        REQUIRE(setenv("PERSISTENT_MEM_OPEN_THREADS", threads[k], 1) == 0);
        CHECK_EQ(persistent_space_open(path, NULL, &s), PERSISTENT_E_CORRUPT);
    }
    REQUIRE(fstat(fd, &st1) == 0);
    CHECK(st1.st_mtim.tv_sec == st0.st_mtim.tv_sec && st1.st_mtim.tv_nsec == st0.st_mtim.tv_nsec);
    close(fd);
    if (env != NULL)
        REQUIRE(setenv("PERSISTENT_MEM_OPEN_THREADS", saved, 1) == 0);
    else
        REQUIRE(unsetenv("PERSISTENT_MEM_OPEN_THREADS") == 0);
    remove(path);
}

static void test_hugepages(void)
{
    if (!huge_requests_visible()) {
        printf("hugepages: requests for huge pages do not show here (no transparent "
               "huge pages, or an emulator): not checked\n");
        return;
    }
    const char *path = t_path("openreads-huge");
    /* 256 MiB: the control words of its 65,536 pages are one huge page.
     * dense: 2,360 superblocks over 150 MiB write more than half of its
     * 4 KiB pages (one in 128 pages of the space) */
    CHECK_EQ(huge_after_open(path, 256, 300000, 0, 0, 0), 2048);
    /* packed: 630 superblocks over 40 MiB write a sixth of them */
    CHECK_EQ(huge_after_open(path, 256, 80000, 0, 0, 0), 0);
    /* sparse: 150 large runs, and a superblock of each of 26 classes */
    CHECK_EQ(huge_after_open(path, 256, 0, 0, 0, 150), 0);
    /* 512 MiB, control words in two huge pages, each judged alone: the
     * first as dense, the second (past a 120 MiB block) holds 160
     * superblocks over 10 MiB */
    CHECK_EQ(huge_after_open(path, 512, 300000, 120, 20000, 0), 2048);
}

int main(void)
{
    test_clean();
    test_killed();
    test_killed_fsize_limit();
    test_killed_pmem();
    test_rolled();
    test_no_leftover();
    test_shares();
    test_hugepages();
    return t_done();
}

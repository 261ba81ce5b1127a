/* Space lifecycle: create, open, close, sizes, the seed's calls, offsets,
 * info and sync. */
#include "check.h"

#include "internal.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static void test_create_and_sizes(void)
{
    const char *p = t_path("sizes");
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE | PERSISTENT_OPEN_EXCL;
    o.size = 1u << 20;
    allocator_space_t *s;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    CHECK_EQ(in.format_major, 2);
    CHECK_EQ(in.capacity, 1u << 20);
    CHECK_EQ(in.max_capacity, 1u << 20);
    CHECK_EQ(in.growable, 0);
    CHECK_EQ(in.page_size, 4096);
    /* metadata is a few pages, never a megabyte (G5b) */
    CHECK(in.meta_size <= 4 * 4096);
    CHECK_EQ(in.file_size, in.meta_size + in.capacity);
    struct stat st;
    REQUIRE(stat(p, &st) == 0);
    CHECK_EQ(st.st_size, in.file_size);
    /* the file's blocks are really allocated (posix_fallocate) */
    CHECK((uint64_t)st.st_blocks * 512 >= in.file_size);
    CHECK_EQ(in.clean_at_open, 1);
    CHECK_EQ(in.recovered, 0);
    CHECK_EQ(in.n_bases, 1);
    CHECK_EQ(in.bases[0].base, (uint64_t)(uintptr_t)s);
    CHECK_EQ(in.generation, 1);
    CHECK_EQ(in.durability, PERSISTENT_DURABILITY_PROCESS);
    CHECK((uintptr_t)s % (2u << 20) == 0);

    /* a second create with EXCL fails, without EXCL it opens (busy here) */
    allocator_space_t *s2;
    CHECK_EQ(persistent_space_open(p, &o, &s2), -EEXIST);
    CHECK_EQ(persistent_space_close(s), 0);

    /* reopening never re-initialises nor resizes */
    allocator_space_t *s3 = create_persistent_allocator(p, 123);
    REQUIRE(s3 != NULL);
    REQUIRE(persistent_space_info(s3, &in) == 0);
    CHECK_EQ(in.capacity, 1u << 20);
    CHECK_EQ(in.clean_at_open, 1);
    destroy_persistent_allocator(s3);
    unlink(p);
}

static void test_rounding(void)
{
    /* odd sizes round up to a page of data, plus a page or so of metadata */
    static const size_t sizes[] = {1, 8192, 10000, 65536 + 1, 300000, 5u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        const char *p = t_path("round");
        allocator_space_t *s = create_persistent_allocator(p, sizes[i]);
        REQUIRE(s != NULL);
        struct persistent_info in;
        REQUIRE(persistent_space_info(s, &in) == 0);
        CHECK(in.capacity >= sizes[i]);
        CHECK(in.capacity - sizes[i] < 4096);
        CHECK(in.file_size - sizes[i] <= 4096 + in.meta_size);
        CHECK(in.meta_size <= (sizes[i] < (1u << 20) ? 4096u : 16384u));
        destroy_persistent_allocator(s);
        unlink(p);
    }
}

static void test_tiny(void)
{
    /* an 8 KiB space opens, serves a few small blocks, then says no */
    const char *p = t_path("tiny");
    allocator_space_t *s = create_persistent_allocator(p, 8192);
    REQUIRE(s != NULL);
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    CHECK_EQ(in.capacity, 8192);
    CHECK(in.file_size <= 8192 + 4096);
    int n = 0;
    void *b[4096];
    while (n < 4096 && (b[n] = persistent_malloc(s, 32)) != NULL) {
        memset(b[n], 0x5a, 32);
        n++;
    }
    CHECK(n >= 16);
    CHECK(n * 32 <= 8192);
    CHECK_EQ(errno, ENOMEM);
    t_check_clean(s, "tiny full");
    for (int i = 0; i < n; i++)
        persistent_free(s, b[i]);
    /* everything is usable again, for a bigger size too */
    void *big = persistent_malloc(s, 4096);
    CHECK(big != NULL);
    persistent_free(s, big);
    t_check_clean(s, "tiny empty");
    destroy_persistent_allocator(s);
    unlink(p);
}

static void test_seed_calls(void)
{
    const char *p = t_path("seed");
    allocator_space_t *s = create_persistent_allocator(p, 1u << 20);
    REQUIRE(s != NULL);
    char *a = persistent_malloc(s, 100);
    REQUIRE(a != NULL);
    persistent_offset_t off = ptr_to_persistent_offset(s, a);
    CHECK(off != 0);
    CHECK(persistent_offset_to_ptr(s, off) == a);
    CHECK(persistent_persistent_offset_to_ptr(s, off) == a);
    CHECK_EQ(ptr_to_persistent_offset(s, NULL), 0);
    CHECK(persistent_offset_to_ptr(s, 0) == NULL);
    CHECK(sizeof(persistent_offset_t) == sizeof(void *));
    CHECK(persistent_ptr(s, a) == a);
    CHECK(persistent_ptr(s, NULL) == NULL);
    int local;
    CHECK(persistent_ptr(s, &local) == NULL);
    persistent_free(s, a);
    destroy_persistent_allocator(s);
    destroy_persistent_allocator(NULL);

    /* the seed's calls report failures through errno */
    errno = 0;
    CHECK(create_persistent_allocator("/nonexistent-dir/x.space", 4096) == NULL);
    CHECK_EQ(errno, ENOENT);
    CHECK(load_private_persistent_allocator(t_path("absent")) == NULL);
    CHECK_EQ(errno, ENOENT);
    unlink(p);
}

static void test_space_of_and_used(void)
{
    const char *p1 = t_path("of1"), *p2 = t_path("of2");
    allocator_space_t *a = create_persistent_allocator(p1, 1u << 20);
    allocator_space_t *b = create_persistent_allocator(p2, 1u << 20);
    REQUIRE(a && b);
    char *x = persistent_malloc(a, 10), *y = persistent_malloc(b, 100000);
    REQUIRE(x && y);
    CHECK(persistent_space_of(x) == a);
    CHECK(persistent_space_of(y + 99999) == b);
    CHECK(persistent_space_of(x) == a);          /* through the cache again */
    CHECK(persistent_space_of(a) == a);
    int local;
    CHECK(persistent_space_of(&local) == NULL);
    CHECK(persistent_space_of(NULL) == NULL);
    /* the ends of each reservation, and just outside both */
    struct persistent_info ia, ib;
    REQUIRE(persistent_space_info(a, &ia) == 0 && persistent_space_info(b, &ib) == 0);
    char *a0 = (char *)a, *a1 = a0 + ia.bases[0].size;
    char *b0 = (char *)b, *b1 = b0 + ib.bases[0].size;
    CHECK(persistent_space_of(a1 - 1) == a);
    CHECK(persistent_space_of(b1 - 1) == b);
    CHECK(persistent_space_of(a1) != a);
    CHECK(persistent_space_of(b1) != b);
    char *lo = a0 < b0 ? a0 : b0, *hi = a1 > b1 ? a1 : b1;
    CHECK(persistent_space_of(lo - 1) == NULL);
    CHECK(persistent_space_of(hi) == NULL);
    CHECK(persistent_space_of(x) == a);
    CHECK(persistent_space_of(hi + 4096) == NULL);  /* after a hit */
    struct persistent_info in;
    REQUIRE(persistent_space_info(b, &in) == 0);
    CHECK(in.used_size >= 100000);
    CHECK(in.used_size <= in.capacity);
    uint64_t used = in.used_size;
    destroy_persistent_allocator(a);
    CHECK(persistent_space_of(x) == NULL);       /* closed: no longer found */
    CHECK(persistent_space_of(y) == b);
    CHECK(persistent_space_of(a1 - 1) == NULL);
    destroy_persistent_allocator(b);
    CHECK(persistent_space_of(y) == NULL);
    CHECK(persistent_space_of(x) == NULL);
    /* the high-water mark is kept by the file */
    b = create_persistent_allocator(p2, 0);
    REQUIRE(b != NULL);
    REQUIRE(persistent_space_info(b, &in) == 0);
    CHECK_EQ(in.used_size, used);
    destroy_persistent_allocator(b);
    unlink(p1);
    unlink(p2);
}

static void test_bad_arguments(void)
{
    allocator_space_t *s;
    struct persistent_options o = {0};
    CHECK_EQ(persistent_space_open(NULL, &o, &s), -EINVAL);
    CHECK_EQ(persistent_space_open(t_path("x"), &o, NULL), -EINVAL);
    o.flags = 0x8000;
    CHECK_EQ(persistent_space_open(t_path("x"), &o, &s), -EINVAL);
    o.flags = PERSISTENT_OPEN_CREATE | PERSISTENT_OPEN_READONLY;
    CHECK_EQ(persistent_space_open(t_path("x"), &o, &s), -EINVAL);
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 0;
    CHECK_EQ(persistent_space_open(t_path("x"), &o, &s), -EINVAL);
    CHECK(strlen(persistent_errormsg()) > 0);
    o.size = (uint64_t)1 << 41;
    CHECK_EQ(persistent_space_open(t_path("x"), &o, &s), -EFBIG);
    o.size = 4096;
    o.durability = 99;
    CHECK_EQ(persistent_space_open(t_path("x"), &o, &s), -EINVAL);
    CHECK_EQ(persistent_space_close((allocator_space_t *)&o), -EINVAL);
    CHECK(persistent_malloc((allocator_space_t *)&o, 10) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(strcmp(persistent_strerror(PERSISTENT_E_BUSY), "space is open for writing elsewhere") == 0);
    CHECK(strcmp(persistent_strerror(-ENOENT), strerror(ENOENT)) == 0);
}

static void test_durability_recorded(void)
{
    const char *p = t_path("dur");
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 1u << 20;
    o.durability = PERSISTENT_DURABILITY_SYNC;
    allocator_space_t *s;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    char *a = persistent_malloc(s, 64);
    REQUIRE(a != NULL);
    strcpy(a, "durable");
    CHECK_EQ(persistent_sync(s), 0);
    REQUIRE(persistent_space_close(s) == 0);
    /* the mode is remembered: a default open gets it back */
    o.flags = 0;
    o.durability = 0;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    CHECK_EQ(in.durability, PERSISTENT_DURABILITY_SYNC);
    CHECK_EQ(in.clean_at_open, 1);
    persistent_space_close(s);
    unlink(p);
}

static void test_many_spaces(void)
{
    /* several spaces open at once in one thread, each its own heap */
    allocator_space_t *s[6];
    const char *paths[6];
    char *blk[6];
    for (int i = 0; i < 6; i++) {
        paths[i] = strdup(t_path("many"));
        s[i] = create_persistent_allocator(paths[i], 256u << 10);
        REQUIRE(s[i] != NULL);
        blk[i] = persistent_malloc(s[i], 48);
        REQUIRE(blk[i] != NULL);
        CHECK((char *)blk[i] > (char *)s[i]);
        snprintf(blk[i], 48, "space %d", i);
    }
    for (int i = 0; i < 6; i++) {
        char want[48];
        snprintf(want, sizeof want, "space %d", i);
        CHECK(strcmp(blk[i], want) == 0);
        CHECK(persistent_usable_size(s[i], blk[i]) >= 48);
        persistent_free(s[i], blk[i]);
        destroy_persistent_allocator(s[i]);
        unlink(paths[i]);
        free((void *)paths[i]);
    }
    /* closing and reopening at the same address gives a fresh cache */
    const char *p = t_path("again");
    for (int round = 0; round < 3; round++) {
        allocator_space_t *a = create_persistent_allocator(p, 256u << 10);
        REQUIRE(a != NULL);
        void *x = persistent_malloc(a, 100);
        CHECK(x != NULL);
        persistent_free(a, x);
        t_check_clean(a, "reopen round");
        destroy_persistent_allocator(a);
    }
    unlink(p);
}

/* Descriptors the process has open on files whose name contains what (a
 * scratch space's file must go at close). */
static int open_fds(const char *what)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++) {
        char proc[64], target[600];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(proc, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = 0;
        n += strstr(target, what) != NULL;
    }
    return n;
}

static int entries_in(const char *dir)
{
    DIR *d = opendir(dir);
    REQUIRE(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* Works as any space: blocks, growth, roots, a transaction, a check. */
static void use_scratch(allocator_space_t *s)
{
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    CHECK(in.growable);
    CHECK_EQ(in.capacity, 1u << 20);
    char *r = persistent_root_get(s, 7, 100, NULL);
    REQUIRE(r != NULL);
    strcpy(r, "scratch");
    enum { N = 3000 };
    static unsigned char *b[N];
    for (int i = 0; i < N; i++) {           /* 3 MB: it grows */
        b[i] = persistent_malloc(s, 1000);
        REQUIRE(b[i] != NULL);
        memset(b[i], (unsigned char)i, 1000);
    }
    REQUIRE(persistent_space_info(s, &in) == 0);
    CHECK(in.capacity > (1u << 20));
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_add(s, r, 8) == 0);
    memcpy(r, "changed", 8);
    REQUIRE(persistent_tx_abort(s) == 0);
    CHECK(strcmp(r, "scratch") == 0);
    for (int i = 0; i < N; i++) {
        CHECK(b[i][0] == (unsigned char)i && b[i][999] == (unsigned char)i);
        persistent_free(s, b[i]);
    }
    t_check_clean(s, "a scratch space");
}

static void test_scratch(void)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_SCRATCH;
    o.size = 1u << 20;
    o.max_size = 64u << 20;
    allocator_space_t *s;
    const char *mem = "memfd:persistent_mem scratch";
    /* in memory */
    REQUIRE(persistent_space_open(NULL, &o, &s) == 0);
    CHECK_EQ(open_fds(mem), 1);
    use_scratch(s);
    REQUIRE(persistent_space_close(s) == 0);
    CHECK_EQ(open_fds(mem), 0);
    /* an unnamed file in a directory: the directory stays empty */
    char dir[] = "/tmp/pm-test-scratch-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    REQUIRE(persistent_space_open(dir, &o, &s) == 0);
    CHECK_EQ(open_fds(dir), 1);
    use_scratch(s);
    CHECK_EQ(entries_in(dir), 0);
    REQUIRE(persistent_space_close(s) == 0);
    CHECK_EQ(entries_in(dir), 0);
    CHECK_EQ(open_fds(dir), 0);
    /* refused: other flags, no size, a path that is not a directory */
    o.flags = PERSISTENT_OPEN_SCRATCH | PERSISTENT_OPEN_CREATE;
    CHECK_EQ(persistent_space_open(NULL, &o, &s), -EINVAL);
    o.flags = PERSISTENT_OPEN_SCRATCH | PERSISTENT_OPEN_READONLY;
    CHECK_EQ(persistent_space_open(dir, &o, &s), -EINVAL);
    o.flags = PERSISTENT_OPEN_SCRATCH;
    o.size = 0;
    CHECK_EQ(persistent_space_open(NULL, &o, &s), -EINVAL);
    o.size = 1u << 20;
    char file[600];
    snprintf(file, sizeof file, "%s/f", dir);
    FILE *f = fopen(file, "w");
    REQUIRE(f != NULL);
    fclose(f);
    CHECK(persistent_space_open(file, &o, &s) < 0);
    unlink(file);
    CHECK(persistent_space_open("/nonexistent-dir-of-pm-tests", &o, &s) < 0);
    CHECK_EQ(open_fds(mem) + open_fds(dir), 0);
    rmdir(dir);
}

/* persistent_check_progress: called during the pass, done never past
 * total, and done == total at its end. */
struct prog {
    int calls, ends;
    uint64_t last, total;
    bool backwards;
};

static void on_progress(uint64_t done, uint64_t total, void *arg)
{
    struct prog *p = arg;
    if (done > total || (done < p->last && p->last != p->total))
        p->backwards = true;
    p->calls++;
    p->ends += done == total;
    p->last = done;
    p->total = total;
}

static void test_check_progress(void)
{
    const char *path = t_path("progress");
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 128u << 20;
    allocator_space_t *s;
    REQUIRE(persistent_space_open(path, &o, &s) == 0);
    for (int i = 0; i < 1200; i++)                   /* 1,200 runs */
        REQUIRE(persistent_malloc(s, 17 * 4096) != NULL);
    struct persistent_check_report rep;
    struct prog p = {0};
    CHECK_EQ(persistent_check_progress(s, &rep, on_progress, &p), 0);
    CHECK_EQ(rep.n_errors, 0);
    CHECK(p.calls >= 4);                            /* 1,200 / 256, and the end */
    CHECK(p.ends >= 1 && p.last == p.total && !p.backwards);
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    CHECK_EQ(p.total, in.capacity / in.page_size);
    int before = p.calls;
    CHECK_EQ(persistent_check(s, &rep), 0);         /* none without it */
    CHECK_EQ(p.calls, before);
    REQUIRE(persistent_space_close(s) == 0);
}

/* Threads that used a space exit (their records handed back by a
 * destructor, which pins the space without a lock) while the space is
 * closed, and opened again by the next round: the close waits for a
 * hand-back in progress, a thread that comes too late finds the space gone
 * and touches nothing of it (ASan and TSan run this). */
static allocator_space_t *exit_space;
static _Atomic int exit_go, exit_ready, exit_closed, exit_anchored;
static _Thread_local int exit_worker;

/* A worker's hand-back, once the workers are let go, lingers at its first
 * superblock until the close returns or 20 ms pass: a close that waits for
 * it takes the 20 ms; one that does not frees the space under it.  The
 * close is called only once a worker is in there (pinned), so the race is
 * forced in every round, however the threads are scheduled. */
static void slow_hand_back(int point)
{
    if (!exit_worker || point != PM_HOOK_OWNER_ANCHOR || !atomic_load(&exit_go))
        return;
    atomic_fetch_add(&exit_anchored, 1);
    for (int i = 0; i < 200 && !atomic_load(&exit_closed); i++)
        usleep(100);
}

static void *exiting_thread(void *arg)
{
    (void)arg;
    exit_worker = 1;
    void *p = persistent_malloc(exit_space, 64);
    if (p == NULL)
        return (void *)1;
    t_fill(p, 64, 3);
    int ok = t_verify(p, 64, 3);
    persistent_free(exit_space, p);
    atomic_fetch_add(&exit_ready, 1);
    while (!atomic_load(&exit_go))
        ;                               /* exit together with the close */
    return ok ? NULL : (void *)1;
}

static void test_close_while_threads_exit(void)
{
    const char *p = t_path("exitclose");
    enum { ROUNDS = 10, T = 3 };
    int bad = 0;
    pm_store_relaxed(&pm_test_hook, slow_hand_back);
    for (int r = 0; r < ROUNDS; r++) {
        exit_space = create_persistent_allocator(p, 1u << 20);
        REQUIRE(exit_space != NULL);
        atomic_store(&exit_go, 0);
        atomic_store(&exit_ready, 0);
        atomic_store(&exit_closed, 0);
        atomic_store(&exit_anchored, 0);
        pthread_t t[T];
        for (int i = 0; i < T; i++)
            REQUIRE(pthread_create(&t[i], NULL, exiting_thread, NULL) == 0);
        while (atomic_load(&exit_ready) < T)
            sched_yield();              /* each has its record */
        atomic_store(&exit_go, 1);
        while (atomic_load(&exit_anchored) == 0)
            sched_yield();              /* a hand-back is under way */
        REQUIRE(persistent_space_close(exit_space) == 0);
        atomic_store(&exit_closed, 1);
        for (int i = 0; i < T; i++) {
            void *res;
            pthread_join(t[i], &res);
            bad += res != NULL;
        }
        allocator_space_t *s = create_persistent_allocator(p, 0);
        REQUIRE(s != NULL);
        t_check_clean(s, "reopened after threads exited during close");
        destroy_persistent_allocator(s);
    }
    pm_store_relaxed(&pm_test_hook, (pm_hook_fn *)NULL);
    CHECK_EQ(bad, 0);
    unlink(p);
}

/* A view follows the mappings a writer records after it opened: a writer
 * that maps the file elsewhere (the view holds the preferred address)
 * stores raw pointers, and the view rewrites them, by persistent_ptr and
 * by generation (until 2026-12-06 it knew only its open's mappings: a
 * helper's hunt).  A private open without recovery follows alike. */
static void view_follows_bases(uint32_t view_flags)
{
    const char *path = t_path("view-bases");
    unlink(path);
    allocator_space_t *w = create_persistent_allocator(path, 1u << 20);
    REQUIRE(w != NULL);
    destroy_persistent_allocator(w);
    struct persistent_options o = {0};
    o.flags = view_flags;
    allocator_space_t *r;
    REQUIRE(persistent_space_open(path, &o, &r) == 0);
    struct persistent_info ri0;
    REQUIRE(persistent_space_info(r, &ri0) == 0);
    w = create_persistent_allocator(path, 0);
    REQUIRE(w != NULL);
    REQUIRE((void *)w != (void *)r);
    struct persistent_info wi;
    REQUIRE(persistent_space_info(w, &wi) == 0);
    CHECK(wi.generation > ri0.generation);
    char *blk = persistent_malloc(w, 64);
    REQUIRE(blk != NULL);
    strcpy(blk, "pointed to");
    void **root = persistent_malloc_root(w, 7, sizeof(void *));
    REQUIRE(root != NULL);
    *root = blk;                            /* a raw pointer of the writer's */
    void **rroot = persistent_find_root(r, 7);
    REQUIRE(rroot != NULL);
    char *q = persistent_ptr(r, *rroot);
    CHECK(q != NULL && strcmp(q, "pointed to") == 0);
    CHECK(persistent_ptr_from(r, *rroot, wi.generation) == q);
    struct persistent_info ri;
    REQUIRE(persistent_space_info(r, &ri) == 0);
    CHECK_EQ(ri.generation, wi.generation);
    CHECK_EQ(ri.n_bases, wi.n_bases);
    destroy_persistent_allocator(w);
    persistent_space_close(r);
    unlink(path);
}

static void test_view_follows_bases(void)
{
    view_follows_bases(PERSISTENT_OPEN_READONLY);
    view_follows_bases(PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER);
}

/* The lock-free scans of the open spaces -- persistent_space_of, and a
 * thread's look for a free entry of its table of spaces (is the space of
 * an entry still open?) -- read, in each slot, the runtime of a space that
 * another thread may be closing, and a close frees it: a use after free
 * (a review, under gdb; ASan names it here).  The hook closes the space of
 * the first slot the scan finds in use, at the moment it found it. */
static allocator_space_t *scan_victim;
static _Atomic int scan_armed;

static void scan_hook(int point)
{
    int one = 1;
    if (point == PM_HOOK_REGISTRY_SCAN && atomic_compare_exchange_strong(&scan_armed, &one, 0))
        CHECK(persistent_space_close(scan_victim) == 0);
}

static allocator_space_t *scan_open(void)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_SCRATCH;
    o.size = 256u << 10;
    allocator_space_t *s;
    REQUIRE(persistent_space_open(NULL, &o, &s) == 0);
    return s;
}

static void *scan_table_thread(void *arg)
{
    allocator_space_t **sp = arg;       /* victim, x, y */
    void *a = persistent_malloc(sp[1], 64);     /* x: the table's first entry */
    REQUIRE(a != NULL);
    scan_victim = sp[0];
    atomic_store(&scan_armed, 1);
    /* y: not in the table; is x's space still open? the scan meets the
     * victim's slot first */
    void *b = persistent_malloc(sp[2], 64);
    CHECK(b != NULL);
    CHECK_EQ(atomic_load(&scan_armed), 0);
    persistent_free(sp[1], a);
    persistent_free(sp[2], b);
    return NULL;
}

/* Threads that look up pointers and use one more space after another,
 * while one opens and closes spaces: for TSan. */
static _Atomic int scan_stop;

static void *scan_churn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        allocator_space_t *s = scan_open();
        void *p = persistent_malloc(s, 32);
        CHECK(p != NULL && persistent_space_of(p) == s);
        persistent_free(s, p);
        REQUIRE(persistent_space_close(s) == 0);
    }
    atomic_store(&scan_stop, 1);
    return NULL;
}

static void *scan_looker(void *arg)
{
    allocator_space_t *b = arg;
    char *p = persistent_malloc(b, 64);
    REQUIRE(p != NULL);
    while (!atomic_load(&scan_stop)) {
        CHECK(persistent_space_of(p) == b);
        CHECK(persistent_space_of(&scan_stop) == NULL);
        /* a thread new each time: its first call scans for a free entry */
        allocator_space_t *s = scan_open();
        void *q = persistent_malloc(s, 32);
        CHECK(q != NULL);
        persistent_free(s, q);
        REQUIRE(persistent_space_close(s) == 0);
    }
    persistent_free(b, p);
    return NULL;
}

static void test_scan_beside_close(void)
{
    /* a close first: the thread's cached answer of persistent_space_of
     * is stale, the next one scans */
    REQUIRE(persistent_space_close(scan_open()) == 0);
    /* the victim takes a lower slot than b: the scan meets it first */
    allocator_space_t *victim = scan_open(), *b = scan_open();
    char *p = persistent_malloc(b, 64);
    REQUIRE(p != NULL);
    pm_store_release(&pm_test_hook, scan_hook);
    scan_victim = victim;
    atomic_store(&scan_armed, 1);
    CHECK(persistent_space_of(p) == b);
    CHECK_EQ(atomic_load(&scan_armed), 0);
    persistent_free(b, p);

    allocator_space_t *sp[3] = {scan_open(), scan_open(), scan_open()};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, scan_table_thread, sp) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    pm_store_release(&pm_test_hook, (pm_hook_fn *)NULL);
    REQUIRE(persistent_space_close(sp[1]) == 0);
    REQUIRE(persistent_space_close(sp[2]) == 0);

    pthread_t c, l;
    atomic_store(&scan_stop, 0);
    REQUIRE(pthread_create(&l, NULL, scan_looker, b) == 0);
    REQUIRE(pthread_create(&c, NULL, scan_churn, NULL) == 0);
    REQUIRE(pthread_join(c, NULL) == 0);
    REQUIRE(pthread_join(l, NULL) == 0);
    REQUIRE(persistent_space_close(b) == 0);
    printf("scans of the open spaces beside closes: nothing freed read\n");
}

int main(void)
{
    test_close_while_threads_exit();
    test_create_and_sizes();
    test_rounding();
    test_tiny();
    test_seed_calls();
    test_space_of_and_used();
    test_bad_arguments();
    test_durability_recorded();
    test_many_spaces();
    test_scratch();
    test_view_follows_bases();
    test_check_progress();
    test_scan_beside_close();
    return t_done();
}

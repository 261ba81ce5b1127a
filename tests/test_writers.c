/* G6: one writer at a time (in this process or another), readers beside
 * it, and a private forensic open of a crashed space that never writes. */
#include "check.h"

#include <pthread.h>
#include <sys/file.h>

#include "internal.h"

static char self[4096];

static int run(const char *role, const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, role, path, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- roles run in another process ---- */

static int role_try_writer(const char *path)
{
    struct persistent_options o = {0};
    allocator_space_t *s;
    int r = persistent_space_open(path, &o, &s);
    if (r == PERSISTENT_E_BUSY)
        return 10;
    if (r == 0)
        persistent_space_close(s);
    return 11;
}

static int role_try_reader(const char *path)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_READONLY;
    allocator_space_t *s;
    if (persistent_space_open(path, &o, &s) != 0)
        return 11;
    char *r = persistent_find_root(s, 1);
    int ok = r != NULL && strcmp(r, "shared") == 0;
    persistent_space_close(s);
    return ok ? 10 : 12;
}

/* Writes something, then dies without closing. */
static int role_crash(const char *path)
{
    allocator_space_t *s = create_persistent_allocator(path, 1u << 20);
    if (s == NULL)
        return 11;
    char *r = persistent_malloc_root(s, 1, 64);
    strcpy(r, "before the crash");
    for (int i = 0; i < 1000; i++) {
        char *b = persistent_malloc(s, 24 + (size_t)(i % 300));
        if (i % 3 == 0)
            persistent_free(s, b);
    }
    raise(SIGKILL);
    return 12;
}

/* A reader opened before the writer grows the space: told to look (a byte
 * on stdin), it must see the writer's new pages, a root made in them, and
 * a clean check. */
static int role_follow(const char *path)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_READONLY;
    allocator_space_t *s;
    if (persistent_space_open(path, &o, &s) != 0)
        return 11;
    struct persistent_info in0, in1;
    persistent_space_info(s, &in0);
    if (write(1, "r", 1) != 1)
        return 12;
    char c;
    if (read(0, &c, 1) != 1)
        return 13;
    const char *r = persistent_find_root(s, 2);
    struct persistent_check_report rep;
    int cr = persistent_check(s, &rep);
    persistent_space_info(s, &in1);
    int ok = r != NULL && strcmp(r, "in the new pages") == 0 && cr == 0 &&
             in1.capacity > in0.capacity;
    if (!ok)
        fprintf(stderr, "follower: root %p, check %d (%s), capacity %llu -> %llu\n",
                (const void *)r, cr, rep.first_error,
                (unsigned long long)in0.capacity, (unsigned long long)in1.capacity);
    persistent_space_close(s);
    return ok ? 10 : 14;
}

/* ---- the test proper ---- */

static void test_two_writers(void)
{
    const char *p = t_path("writers");
    allocator_space_t *w = create_persistent_allocator(p, 1u << 20);
    REQUIRE(w != NULL);
    char *root = persistent_malloc_root(w, 1, 32);
    REQUIRE(root != NULL);
    strcpy(root, "shared");

    /* a second writer in this process */
    allocator_space_t *w2;
    struct persistent_options o = {0};
    CHECK_EQ(persistent_space_open(p, &o, &w2), PERSISTENT_E_BUSY);
    CHECK(strstr(persistent_errormsg(), "another writer") != NULL);
    errno = 0;
    CHECK(create_persistent_allocator(p, 1u << 20) == NULL);
    CHECK_EQ(errno, EBUSY);
    /* ... and in another process */
    CHECK_EQ(run("writer", p), 10);

    /* readers beside the writer, here and elsewhere */
    CHECK_EQ(run("reader", p), 10);
    o.flags = PERSISTENT_OPEN_READONLY;
    allocator_space_t *r;
    REQUIRE(persistent_space_open(p, &o, &r) == 0);
    CHECK(r != w);
    char *rr = persistent_find_root(r, 1);
    REQUIRE(rr != NULL);
    CHECK(strcmp(rr, "shared") == 0);
    /* the reader sees the writer's later stores: one file, shared pages */
    strcpy(root, "changed");
    CHECK(strcmp(rr, "changed") == 0);
    /* a reader cannot allocate or free */
    errno = 0;
    CHECK(persistent_malloc(r, 10) == NULL);
    CHECK_EQ(errno, EROFS);
    struct t_misuse m = {0};
    persistent_error_hook_set(t_misuse_hook, &m);
    persistent_free(r, rr);
    CHECK_EQ(m.count, 1);
    persistent_error_hook_set(NULL, NULL);
    t_check_clean(r, "reader");
    strcpy(root, "shared");
    persistent_space_close(r);

    /* after the writer closes, another can open */
    destroy_persistent_allocator(w);
    CHECK_EQ(run("writer", p), 11);
    unlink(p);
}

static void test_fork(void)
{
    const char *p = t_path("fork");
    allocator_space_t *s = create_persistent_allocator(p, 1u << 20);
    REQUIRE(s != NULL);
    char *r = persistent_malloc_root(s, 1, 16);
    REQUIRE(r != NULL);
    strcpy(r, "parent");
    pid_t pid = fork();
    if (pid == 0) {
        /* the parent's space is not the child's */
        int bad = 0;
        errno = 0;
        bad += persistent_malloc(s, 10) != NULL || errno != EINVAL;
        bad += persistent_find_root(s, 1) != NULL;
        struct persistent_options o = {0};
        allocator_space_t *s2;
        bad += persistent_space_open(p, &o, &s2) != PERSISTENT_E_BUSY;
        _exit(bad);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* the parent goes on as before */
    CHECK(strcmp(persistent_find_root(s, 1), "parent") == 0);
    void *x = persistent_malloc(s, 100);
    CHECK(x != NULL);
    persistent_free(s, x);
    t_check_clean(s, "after fork");
    destroy_persistent_allocator(s);
    unlink(p);
}

/* G6: read-only and forensic openers follow a writer's growth (issue 10,
 * defect 4: a reader kept its open-time size and check called the
 * writer's new runs corruption). */
static void test_readers_follow_growth(void)
{
    const char *p = t_path("follow");
    allocator_space_t *w = t_create(p, 64u << 10, 256u << 20);
    char *root = persistent_malloc_root(w, 1, 32);
    REQUIRE(root != NULL);
    strcpy(root, "shared");

    allocator_space_t *r, *f;
    struct persistent_options ro = {0};
    ro.flags = PERSISTENT_OPEN_READONLY;
    REQUIRE(persistent_space_open(p, &ro, &r) == 0);
    ro.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
    REQUIRE(persistent_space_open(p, &ro, &f) == 0);
    /* and one in another process, started before the growth */
    int to[2], from[2];
    REQUIRE(pipe(to) == 0 && pipe(from) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        execl(self, self, "follow", p, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    char c;
    REQUIRE(read(from[0], &c, 1) == 1);

    struct persistent_info before;
    REQUIRE(persistent_space_info(w, &before) == 0);
    for (int i = 0; i < 400; i++)
        REQUIRE(persistent_malloc(w, 100000) != NULL);
    char *late = persistent_malloc_root(w, 2, 3u << 20);
    REQUIRE(late != NULL);
    strcpy(late, "in the new pages");
    struct persistent_info wi;
    REQUIRE(persistent_space_info(w, &wi) == 0);
    CHECK(wi.capacity >= before.capacity + (40u << 20));
    CHECK((uint64_t)((char *)late - (char *)w) >= before.file_size);

    REQUIRE(write(to[1], "g", 1) == 1);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 10);
    close(to[1]);
    close(from[0]);

    struct persistent_stats ws;
    REQUIRE(persistent_stats_get(w, &ws) == 0);
    allocator_space_t *views[2] = {r, f};
    for (int v = 0; v < 2; v++) {
        const char *lr = persistent_find_root(views[v], 2);
        CHECK(lr != NULL && strcmp(lr, "in the new pages") == 0);
        t_check_clean(views[v], v ? "forensic view after growth" : "reader after growth");
        struct persistent_info ri;
        REQUIRE(persistent_space_info(views[v], &ri) == 0);
        CHECK_EQ(ri.capacity, wi.capacity);
        struct persistent_stats rs;
        REQUIRE(persistent_stats_get(views[v], &rs) == 0);
        CHECK_EQ(rs.live_blocks, ws.live_blocks);
        CHECK_EQ(rs.live_bytes, ws.live_bytes);
    }
    persistent_space_close(f);
    persistent_space_close(r);
    destroy_persistent_allocator(w);
    unlink(p);
}

/* A reader's open while the writer grows the space: the writer extends
 * the file, then commits the pages in the header.  An open that read the
 * file's size before the header, and the header after a growth, saw more
 * pages than the file it had measured and refused the space as truncated
 * (test_readcheck failed so, now and then, under load).  The hook grows
 * the space right between the two reads. */
static allocator_space_t *grow_w;
static int grow_hits;

static void grow_between(int point)
{
    if (point != PM_HOOK_OPEN_SIZED || grow_hits++ != 0)
        return;
    for (int i = 0; i < 40; i++)
        REQUIRE(persistent_malloc(grow_w, 100000) != NULL);
}

static void test_open_while_growing(void)
{
    const char *p = t_path("opengrow");
    grow_w = t_create(p, 64u << 10, 256u << 20);
    struct persistent_info w0, w1;
    REQUIRE(persistent_space_info(grow_w, &w0) == 0);
    struct persistent_options ro = {0};
    const uint32_t modes[] = {PERSISTENT_OPEN_READONLY,
                              PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER};
    for (int m = 0; m < 2; m++) {
        ro.flags = modes[m];
        grow_hits = 0;
        pm_store_relaxed(&pm_test_hook, grow_between);
        allocator_space_t *r = NULL;
        int rc = persistent_space_open(p, &ro, &r);
        pm_store_relaxed(&pm_test_hook, (pm_hook_fn *)NULL);
        if (rc != 0)
            fprintf(stderr, "open beside a growing writer: %s\n", persistent_errormsg());
        CHECK_EQ(rc, 0);
        CHECK(grow_hits >= 1);
        if (rc == 0) {
            t_check_clean(r, "a view opened while the writer grew");
            persistent_space_close(r);
        }
    }
    REQUIRE(persistent_space_info(grow_w, &w1) == 0);
    CHECK(w1.capacity > w0.capacity);
    destroy_persistent_allocator(grow_w);
    unlink(p);
}

static void test_private_of_crashed(void)
{
    const char *p = t_path("crashed");
    CHECK_EQ(run("crash", p), 128 + SIGKILL);
    REQUIRE(chmod(p, 0444) == 0);
    uint64_t before = t_file_hash(p);

    allocator_space_t *s = load_private_persistent_allocator(p);
    REQUIRE(s != NULL);
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    CHECK_EQ(in.clean_at_open, 0);
    CHECK_EQ(in.open_flags & PERSISTENT_OPEN_PRIVATE, PERSISTENT_OPEN_PRIVATE);
    char *r = persistent_find_root(s, 1);
    REQUIRE(r != NULL);
    CHECK(strcmp(r, "before the crash") == 0);
    t_check_clean(s, "private open of a crashed space");
    /* the private copy is a working heap; none of it reaches the file */
    strcpy(r, "scribbled in the private copy");
    for (int i = 0; i < 2000; i++) {
        void *b = persistent_malloc(s, 100);
        REQUIRE(b != NULL);
        memset(b, 0xee, 100);
    }
    CHECK_EQ(persistent_sync(s), 0);
    destroy_persistent_allocator(s);
    CHECK(t_file_hash(p) == before);

    /* forensic view without recovery */
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    r = persistent_find_root(s, 1);
    CHECK(r != NULL && strcmp(r, "before the crash") == 0);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    persistent_space_close(s);
    CHECK(t_file_hash(p) == before);

    /* a writer recovers it */
    REQUIRE(chmod(p, 0644) == 0);
    s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    REQUIRE(persistent_space_info(s, &in) == 0);
    CHECK_EQ(in.clean_at_open, 0);
    CHECK_EQ(in.recovered, 1);
    r = persistent_find_root(s, 1);
    CHECK(r != NULL && strcmp(r, "before the crash") == 0);
    t_check_clean(s, "after recovery");
    destroy_persistent_allocator(s);
    unlink(p);
}

/* A private open beside a live writer (a review): a private mapping is no
 * snapshot, the writer's later changes show through every page the view
 * has not written, so a private heap that allocated there handed out
 * blocks outside the space.  Now such an open is a view as on file,
 * allocation disabled (recovery_skipped), and a private open with no
 * writer, which allocates, keeps writers out while it is open. */
static void test_private_beside_writer(void)
{
    const char *p = t_path("privwriter");
    allocator_space_t *w = create_persistent_allocator(p, 8u << 20);
    REQUIRE(w != NULL);
    char *r = persistent_root_get(w, 1, 64, NULL);
    REQUIRE(r != NULL);
    strcpy(r, "the writer's");
    allocator_space_t *v = load_private_persistent_allocator(p);
    REQUIRE(v != NULL);
    struct persistent_info in;
    REQUIRE(persistent_space_info(v, &in) == 0);
    CHECK_EQ(in.recovery_skipped, 1);
    CHECK(in.open_flags & PERSISTENT_OPEN_NO_RECOVER);
    CHECK(persistent_malloc(v, 100) == NULL);
    for (int i = 0; i < 2000; i++) {           /* the writer goes on */
        void *b = persistent_malloc(w, 1942);
        REQUIRE(b != NULL);
        memset(b, 0x5c, 1942);
        if (i % 3 == 0)
            persistent_free(w, b);
    }
    r = persistent_find_root(v, 1);
    CHECK(r != NULL && strcmp(r, "the writer's") == 0);
    destroy_persistent_allocator(v);
    destroy_persistent_allocator(w);

    v = load_private_persistent_allocator(p);  /* no writer: a heap of its own */
    REQUIRE(v != NULL);
    REQUIRE(persistent_space_info(v, &in) == 0);
    CHECK_EQ(in.recovery_skipped, 0);
    void *b = persistent_malloc(v, 100);
    CHECK(b != NULL);
    CHECK_EQ(run("writer", p), 10);            /* busy while it is open */
    /* a child forked meanwhile lets the lock go (its copy of the mapping
     * held the description: a review found writers kept out for the
     * child's life after the parent closed the space) */
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        sleep(30);
        _exit(0);
    }
    REQUIRE(child > 0);
    destroy_persistent_allocator(v);
    CHECK_EQ(run("writer", p), 11);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    unlink(p);
}

/* A view's persistent_check that judges a rollback holds a shared lock on
 * the file for the trial (recover.c pm_rollback_judge): a writer's open
 * waits for it instead of calling the space busy; an exclusive lock (a
 * writer's) still makes it busy at once. */
static int judge_fd;

static void *judge_ends(void *arg)
{
    (void)arg;
    usleep(150 * 1000);
    flock(judge_fd, LOCK_UN);
    return NULL;
}

static void test_waits_for_judges(void)
{
    const char *p = t_path("judged");
    allocator_space_t *w = create_persistent_allocator(p, 1u << 20);
    REQUIRE(w != NULL);
    REQUIRE(persistent_space_close(w) == 0);
    judge_fd = open(p, O_RDONLY);
    REQUIRE(judge_fd >= 0);
    REQUIRE(flock(judge_fd, LOCK_SH) == 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, judge_ends, NULL) == 0);
    struct persistent_options o = {0};
    uint64_t t0 = t_now_ns();
    int r = persistent_space_open(p, &o, &w);
    uint64_t waited = t_now_ns() - t0;
    CHECK_EQ(r, 0);
    CHECK(waited >= 100 * 1000000ull);
    pthread_join(t, NULL);
    if (r == 0)
        persistent_space_close(w);
    REQUIRE(flock(judge_fd, LOCK_EX) == 0);     /* as a writer holds it */
    t0 = t_now_ns();
    CHECK_EQ(persistent_space_open(p, &o, &w), PERSISTENT_E_BUSY);
    CHECK(t_now_ns() - t0 < 500 * 1000000ull);
    close(judge_fd);
    unlink(p);
}

/* A view whose descriptor the program closed, the number reused by a
 * writer of the same file with a transaction open: the view's check used
 * to take and drop its shared lock on that descriptor, turning the
 * writer's exclusive lock into nothing, and a second writer then opened
 * the space and rolled the live transaction back (a review).  The judge
 * locks a description of its own. */
static void test_judge_own_description(void)
{
    const char *p = t_path("judge-fd");
    allocator_space_t *w = create_persistent_allocator(p, 1u << 20);
    REQUIRE(w != NULL);
    REQUIRE(persistent_space_close(w) == 0);
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_READONLY;
    allocator_space_t *v;
    REQUIRE(persistent_space_open(p, &o, &v) == 0);
    int vfd = pm_rt_of(v)->fd;
    close(vfd);                             /* behind the library's back */
    o.flags = 0;
    REQUIRE(persistent_space_open(p, &o, &w) == 0);
    REQUIRE(pm_rt_of(w)->fd == vfd);        /* the number, reused */
    uint64_t *r = persistent_root_get(w, 1, 64, NULL);
    REQUIRE(r != NULL);
    REQUIRE(persistent_tx_begin(w) == 0);
    REQUIRE(persistent_tx_add(w, r, 8) == 0);
    r[0] = 1;
    struct persistent_check_report rep;
    (void)persistent_check(v, &rep);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        allocator_space_t *w2;
        _exit(persistent_space_open(p, &o, &w2) == PERSISTENT_E_BUSY ? 0 : 1);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);   /* still the only writer */
    REQUIRE(persistent_tx_commit(w) == 0);
    persistent_space_close(w);
    persistent_space_close(v);
    unlink(p);
}

/* A child forked while the parent has the space open, alive after the
 * parent closed it: its copy of the writer's descriptor, and its mapping
 * of the file, held the description and with it the writer's flock, so
 * neither the parent nor the child (nor anybody) could open the space for
 * writing again while the child lived (the header says the child may).
 * The child reads the pages as before; what it writes there does not
 * reach the file. */
static void test_fork_then_close(void)
{
    const char *p = t_path("fork-close");
    allocator_space_t *s = create_persistent_allocator(p, 1u << 20);
    REQUIRE(s != NULL);
    char *r = persistent_malloc_root(s, 1, 16);
    REQUIRE(r != NULL);
    strcpy(r, "parent");
    int ready[2], go[2];
    REQUIRE(pipe(ready) == 0 && pipe(go) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = strcmp(r, "parent") != 0;        /* its pages read as before */
        strcpy(r, "child");                         /* its own */
        char c = 'r';
        bad += write(ready[1], &c, 1) != 1;
        bad += read(go[0], &c, 1) != 1;
        struct persistent_options o = {0};
        allocator_space_t *s2;
        int rc = persistent_space_open(p, &o, &s2);
        bad += rc != 0;
        if (rc == 0) {
            bad += strcmp(persistent_find_root(s2, 1), "parent") != 0;
            bad += persistent_space_close(s2) != 0;
        }
        _exit(bad);
    }
    REQUIRE(pid > 0);
    char c;
    REQUIRE(read(ready[0], &c, 1) == 1);            /* the child runs */
    CHECK(strcmp(r, "parent") == 0);
    REQUIRE(persistent_space_close(s) == 0);
    struct persistent_options o = {0};
    uint64_t t0 = t_now_ns();
    int rc = persistent_space_open(p, &o, &s);
    CHECK_EQ(rc, 0);                                /* while the child lives */
    CHECK(t_now_ns() - t0 < 1000 * 1000000ull);
    if (rc == 0) {
        CHECK(strcmp(persistent_find_root(s, 1), "parent") == 0);
        REQUIRE(persistent_space_close(s) == 0);
    }
    REQUIRE(write(go[1], &c, 1) == 1);              /* the child's turn */
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
    unlink(p);
}

/* The same after the program closed the space's descriptor behind the
 * library's back and opened another file under its number (a review):
 * the child kept the space's mapping, which holds the description and
 * its lock, and must not close the number, which is not the space's. */
static void test_fork_after_fd_lost(void)
{
    const char *p = t_path("fork-fdlost");
    const char *q = t_path("fork-fdlost-other");
    allocator_space_t *s = create_persistent_allocator(p, 1u << 20);
    REQUIRE(s != NULL);
    char *r = persistent_malloc_root(s, 1, 16);
    REQUIRE(r != NULL);
    strcpy(r, "parent");
    int fd = pm_rt_of(s)->fd;
    close(fd);                                      /* behind its back */
    int f = open(q, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(f >= 0);
    int other = f == fd ? f : dup2(f, fd);          /* the number, reused */
    REQUIRE(other == fd);
    if (f != fd)
        close(f);
    int ready[2], go[2];
    REQUIRE(pipe(ready) == 0 && pipe(go) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = fcntl(other, F_GETFD) < 0;        /* not closed: not the space's */
        char c = 'r';
        bad += write(ready[1], &c, 1) != 1;
        bad += read(go[0], &c, 1) != 1;
        _exit(bad);
    }
    REQUIRE(pid > 0);
    char c;
    REQUIRE(read(ready[0], &c, 1) == 1);
    persistent_space_close(s);
    struct persistent_options o = {0};
    int rc = persistent_space_open(p, &o, &s);
    CHECK_EQ(rc, 0);                                /* while the child lives */
    if (rc == 0) {
        CHECK(strcmp(persistent_find_root(s, 1), "parent") == 0);
        REQUIRE(persistent_space_close(s) == 0);
    }
    REQUIRE(write(go[1], &c, 1) == 1);
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(other);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
    unlink(q);
    unlink(p);
}

/* A child forked by another thread while an open was between its writer
 * lock and its registry entry (a review): the fork handler did not see
 * the space, and the child kept its lock for its life.  The fork now
 * waits for the open. */
static atomic_int fo_go;
static pid_t fo_pid;
static int fo_child[2], fo_ready[2];

static void fo_hook(int point)
{
    if (point != PM_HOOK_OPEN_SIZED || atomic_load(&fo_go) != 0)
        return;
    atomic_store(&fo_go, 1);
    usleep(100 * 1000);                 /* the fork would land here */
}

static void *fo_forker(void *arg)
{
    (void)arg;
    while (atomic_load(&fo_go) == 0)
        usleep(1000);
    fo_pid = fork();
    if (fo_pid == 0) {
        char c = 'r';                   /* its fork handler has run */
        if (write(fo_ready[1], &c, 1) != 1)
            _exit(1);
        _exit(read(fo_child[0], &c, 1) == 1 ? 0 : 1);
    }
    return NULL;
}

static void test_fork_during_open(void)
{
    const char *p = t_path("fork-open");
    allocator_space_t *s = create_persistent_allocator(p, 1u << 20);
    REQUIRE(s != NULL);
    REQUIRE(persistent_space_close(s) == 0);
    REQUIRE(pipe(fo_child) == 0 && pipe(fo_ready) == 0);
    atomic_store(&fo_go, 0);
    fflush(NULL);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fo_forker, NULL) == 0);
    pm_store_release(&pm_test_hook, fo_hook);
    struct persistent_options o = {0};
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    pm_store_release(&pm_test_hook, (pm_hook_fn *)NULL);
    REQUIRE(pthread_join(t, NULL) == 0);
    REQUIRE(fo_pid > 0);
    char c;
    REQUIRE(read(fo_ready[0], &c, 1) == 1);         /* the child runs */
    REQUIRE(persistent_space_close(s) == 0);
    int rc = persistent_space_open(p, &o, &s);
    CHECK_EQ(rc, 0);                    /* while the child lives */
    if (rc == 0)
        REQUIRE(persistent_space_close(s) == 0);
    c = 'g';
    REQUIRE(write(fo_child[1], &c, 1) == 1);
    int st;
    REQUIRE(waitpid(fo_pid, &st, 0) == fo_pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fo_child[0]);
    close(fo_child[1]);
    close(fo_ready[0]);
    close(fo_ready[1]);
    unlink(p);
}

/* A child forked while a view's check judged a rollback under its shared
 * lock: the judge only closed its descriptor, and the child's copy kept
 * the lock, so every writer waited two seconds and was turned away for as
 * long as the child lived.  The judge unlocks before it closes. */
static int jf_go[2];
static pid_t jf_pid;

static void jf_hook(int point)
{
    if (point != PM_HOOK_JUDGE_LOCKED || jf_pid != 0)
        return;
    fflush(NULL);
    jf_pid = fork();
    if (jf_pid == 0) {
        char c;
        _exit(read(jf_go[0], &c, 1) == 1 ? 0 : 1);
    }
}

static void test_judge_fork(void)
{
    const char *p = t_path("judge-fork");
    allocator_space_t *w = create_persistent_allocator(p, 1u << 20);
    REQUIRE(w != NULL);
    REQUIRE(persistent_space_close(w) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {                     /* dies inside a transaction */
        struct persistent_options o = {0};
        allocator_space_t *c;
        if (persistent_space_open(p, &o, &c) != 0)
            _exit(1);
        uint64_t *r = persistent_root_get(c, 1, 64, NULL);
        if (r == NULL || persistent_tx_begin(c) != 0 || persistent_tx_add(c, r, 8) != 0)
            _exit(1);
        r[0] = 1;
        raise(SIGKILL);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    REQUIRE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_READONLY;
    allocator_space_t *v;
    REQUIRE(persistent_space_open(p, &o, &v) == 0);
    REQUIRE(pipe(jf_go) == 0);
    jf_pid = 0;
    pm_store_release(&pm_test_hook, jf_hook);
    struct persistent_check_report rep;
    (void)persistent_check(v, &rep);
    pm_store_release(&pm_test_hook, (pm_hook_fn *)NULL);
    CHECK(jf_pid > 0);                  /* the judge ran, and a child was forked */
    o.flags = 0;
    uint64_t t0 = t_now_ns();
    int rc = persistent_space_open(p, &o, &w);
    CHECK_EQ(rc, 0);                    /* while that child lives */
    CHECK(t_now_ns() - t0 < 1000 * 1000000ull);
    if (rc == 0)
        REQUIRE(persistent_space_close(w) == 0);
    if (jf_pid > 0) {
        char c = 'g';
        REQUIRE(write(jf_go[1], &c, 1) == 1);
        REQUIRE(waitpid(jf_pid, &st, 0) == jf_pid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    close(jf_go[0]);
    close(jf_go[1]);
    persistent_space_close(v);
    unlink(p);
}

int main(int argc, char **argv)
{
    if (argc == 3) {
        if (strcmp(argv[1], "writer") == 0)
            return role_try_writer(argv[2]);
        if (strcmp(argv[1], "reader") == 0)
            return role_try_reader(argv[2]);
        if (strcmp(argv[1], "crash") == 0)
            return role_crash(argv[2]);
        if (strcmp(argv[1], "follow") == 0)
            return role_follow(argv[2]);
        return 2;
    }
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0);
    self[n] = '\0';
    if (!t_exec_works(self))
        t_skip("cannot exec itself here (emulated without binfmt_misc)");
    test_two_writers();
    test_waits_for_judges();
    test_judge_own_description();
    test_fork();
    test_fork_then_close();
    test_fork_after_fd_lost();
    test_fork_during_open();
    test_judge_fork();
    test_readers_follow_growth();
    test_open_while_growing();
    test_private_of_crashed();
    test_private_beside_writer();
    return t_done();
}

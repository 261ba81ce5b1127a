/* G8: any file is safe to inspect, and check and a writer judge alike.
 *
 * Spaces with a damaged interior (header checksums intact: what a fuzzer
 * that keeps them valid produces) are judged by every kind of opener, each
 * in a child process under an alarm, so a crash or a hang fails the test
 * instead of ending it:
 *   - a private open without recovery and a read-only open: check, root
 *     iteration, stats and info answer (check says corrupt), nothing is
 *     written;
 *   - the seed's private open (with recovery): opens anyway, without
 *     recovery (recovery_skipped), never writes;
 *   - a writer: refuses with PERSISTENT_E_CORRUPT and leaves the file byte
 *     for byte as it was.
 * A healthy space is judged first: clean everywhere, so the verdicts above
 * are about the damage.  (Issue 10, defect 6.) */
#include "check.h"

#include <pthread.h>
#include <sys/file.h>
#include <sys/vfs.h>
#include <stdatomic.h>

#include "internal.h"

static void patch(const char *path, uint64_t off, const void *buf, size_t len)
{
    int fd = open(path, O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(pwrite(fd, buf, len, (off_t)off) == (ssize_t)len);
    close(fd);
}

static void patch64(const char *path, uint64_t off, uint64_t v)
{
    patch(path, off, &v, sizeof v);
}

static uint64_t peek64(const char *path, uint64_t off)
{
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    uint64_t v = 0;
    REQUIRE(pread(fd, &v, sizeof v, (off_t)off) == (ssize_t)sizeof v);
    close(fd);
    return v;
}

static void read_header(const char *path, struct pm_header *h)
{
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, h, sizeof *h, 0) == (ssize_t)sizeof *h);
    close(fd);
}

/* A whole lane record (its check right) at off. */
static void set_lane(const char *path, uint64_t off, struct pm_lane *l, uint64_t op)
{
    pm_store_relaxed(&l->op, op | pm_lane_check(op, l->dest_off, l->block_off,
                                                 l->old_off, l->size) << 8);
    patch(path, off, l, sizeof *l);
}

/* ---- judges, each run in a child ---- */

enum { J_CLEAN = 0, J_CORRUPT = 1, J_REFUSED = 2, J_OTHER = 3 };

static int judge_view(const char *path, uint32_t flags)
{
    struct persistent_options o = {0};
    o.flags = flags;
    allocator_space_t *s;
    if (persistent_space_open(path, &o, &s) != 0)
        return J_OTHER;
    struct persistent_check_report rep;
    int r = persistent_check(s, &rep);
    struct persistent_root_iter it = {0, 0};
    uint64_t tag;
    void *ptr;
    int n = 0;
    while (persistent_root_next(s, &it, &tag, &ptr) == 1) {
        n++;
        (void)persistent_find_root(s, tag);
        (void)persistent_usable_size(s, ptr);
    }
    struct persistent_stats st;
    (void)persistent_stats_get(s, &st);
    struct persistent_info in;
    (void)persistent_space_info(s, &in);
    persistent_space_close(s);
    return r == 0 ? J_CLEAN : J_CORRUPT;
}

static int judge_private(const char *path)
{
    return judge_view(path, PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER);
}

static int judge_readonly(const char *path)
{
    return judge_view(path, PERSISTENT_OPEN_READONLY);
}

/* The seed's forensic open: J_CLEAN when it recovered, J_CORRUPT when it
 * fell back to the heap as on file (and then cannot allocate). */
static int judge_seed_private(const char *path)
{
    allocator_space_t *s = load_private_persistent_allocator(path);
    if (s == NULL)
        return J_OTHER;
    struct persistent_info in;
    persistent_space_info(s, &in);
    int r = J_CLEAN;
    if (in.recovery_skipped) {
        r = J_CORRUPT;
        if (persistent_malloc(s, 10) != NULL ||
            !(in.open_flags & PERSISTENT_OPEN_NO_RECOVER) ||
            strstr(persistent_errormsg(), "damaged") == NULL)
            r = J_OTHER;
    }
    destroy_persistent_allocator(s);
    return r;
}

static int judge_writer(const char *path)
{
    struct persistent_options o = {0};
    allocator_space_t *s;
    int r = persistent_space_open(path, &o, &s);
    if (r == PERSISTENT_E_CORRUPT)
        return J_REFUSED;
    if (r != 0)
        return J_OTHER;
    struct persistent_check_report rep;
    r = persistent_check(s, &rep);
    persistent_space_close(s);
    return r == 0 ? J_CLEAN : J_CORRUPT;
}

static int in_child(int (*fn)(const char *), const char *path)
{
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        alarm(20);
        _exit(fn(path));
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    if (WIFSIGNALED(st))
        return -WTERMSIG(st);
    return WEXITSTATUS(st);
}

static const char *verdict(int v)
{
    static char buf[32];
    switch (v) {
    case J_CLEAN: return "clean";
    case J_CORRUPT: return "corrupt";
    case J_REFUSED: return "refused";
    case J_OTHER: return "other error";
    }
    snprintf(buf, sizeof buf, "killed by signal %d", -v);
    return buf;
}

/* healthy: every judge clean; else every judge says damaged */
static void judge(const char *path, const char *what, bool healthy)
{
    uint64_t before = t_file_hash(path);
    struct {
        const char *who;
        int (*fn)(const char *);
        int want;
    } js[] = {
        {"private view", judge_private, healthy ? J_CLEAN : J_CORRUPT},
        {"read-only view", judge_readonly, healthy ? J_CLEAN : J_CORRUPT},
        {"seed private open", judge_seed_private, healthy ? J_CLEAN : J_CORRUPT},
        {"writer", judge_writer, healthy ? J_CLEAN : J_REFUSED},
    };
    for (size_t i = 0; i < sizeof js / sizeof *js; i++) {
        int got = in_child(js[i].fn, path);
        if (got != js[i].want) {
            fprintf(stderr, "%s: %s says %s, want %s\n", what, js[i].who, verdict(got),
                    verdict(js[i].want));
            t_failures++;
        }
        /* only a writer that accepted the file may change it */
        if (!(healthy && js[i].fn == judge_writer) && t_file_hash(path) != before) {
            fprintf(stderr, "%s: %s changed the file\n", what, js[i].who);
            t_failures++;
        }
    }
}

/* ---- spaces ---- */

/* A fixed 1 MiB space (64 root slots in the metadata) with nroots roots,
 * blocks of several sizes, some freed; closed cleanly. */
/* PERSISTENT_OPEN_LAZY for make_space and die_in's child, where a test
 * wants the file's holes kept */
static uint32_t space_lazy;

static void make_space(const char *path, int nroots, uint64_t max)
{
    struct persistent_options mo = {0};
    mo.flags = PERSISTENT_OPEN_CREATE | space_lazy;
    mo.size = 1u << 20;
    mo.max_size = max;
    allocator_space_t *s;
    REQUIRE(persistent_space_open(path, &mo, &s) == 0);
    for (int i = 1; i <= nroots; i++) {
        char *r = persistent_malloc_root(s, (uint64_t)i, 24);
        REQUIRE(r != NULL);
        snprintf(r, 24, "root %d", i);
    }
    void *b[200];
    for (int i = 0; i < 200; i++)
        REQUIRE((b[i] = persistent_malloc(s, 16 + (size_t)i * 11)) != NULL);
    for (int i = 0; i < 200; i += 3)
        persistent_free(s, b[i]);
    REQUIRE(persistent_malloc(s, 100000) != NULL);        /* a page run */
    REQUIRE(persistent_space_close(s) == 0);
}

/* The file offset of the value word of root tag, and of its slot's key. */
static uint64_t root_val_off(const char *path, uint64_t tag, uint64_t *key_off)
{
    allocator_space_t *s;
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
    REQUIRE(persistent_space_open(path, &o, &s) == 0);
    struct pm_rt *rt = pm_rt_of(s);
    const struct pm_fixed *f = &rt->hdr->fixed;
    struct pm_root_slot *slot = (struct pm_root_slot *)(rt->base + f->roots_off);
    uint64_t found = 0;
    for (uint32_t i = 0; i < f->roots_cap && !found; i++)
        if (pm_load_relaxed(&slot[i].key) == tag) {
            found = (uint64_t)((char *)&slot[i].val - rt->base);
            *key_off = (uint64_t)((char *)&slot[i].key - rt->base);
        }
    persistent_space_close(s);
    REQUIRE(found != 0);
    return found;
}

static void test_healthy(void)
{
    const char *p = t_path("healthy");
    make_space(p, 300, 0);
    struct pm_header h;
    read_header(p, &h);
    CHECK(pm_load_relaxed(&h.live.roots_next_off) != 0);   /* an overflow table */
    judge(p, "healthy space", true);
    unlink(p);
}

static void test_root_tables(void)
{
    /* an overflow root table whose capacity runs past the file (check
     * trusted it: SIGSEGV) */
    const char *p = t_path("root-cap");
    make_space(p, 300, 0);
    struct pm_header h;
    read_header(p, &h);
    uint64_t t = pm_load_relaxed(&h.live.roots_next_off);
    REQUIRE(t != 0);
    patch64(p, t + offsetof(struct pm_root_table, cap), UINT64_C(1) << 40);
    judge(p, "overflow root table capacity past the file", false);

    /* a capacity that fits but is not the chain's (check and the writer
     * used to disagree about such a table) */
    patch64(p, t + offsetof(struct pm_root_table, cap), 16);
    judge(p, "overflow root table of the wrong capacity", false);
    unlink(p);

    /* a chain that points back to itself (iteration never ended) */
    p = t_path("root-cycle");
    make_space(p, 300, 0);
    read_header(p, &h);
    t = pm_load_relaxed(&h.live.roots_next_off);
    patch64(p, t + offsetof(struct pm_root_table, next_off), t);
    judge(p, "overflow root table chained to itself", false);
    /* ... and to the header */
    patch64(p, t + offsetof(struct pm_root_table, next_off), 64);
    judge(p, "overflow root table chained into the header", false);
    unlink(p);
}

static void test_root_values(void)
{
    const char *p = t_path("root-vals");
    make_space(p, 20, 0);
    uint64_t k5, k6;
    uint64_t v5 = root_val_off(p, 5, &k5), v6 = root_val_off(p, 6, &k6);
    uint64_t blk5 = peek64(p, v5), blk6 = peek64(p, v6);

    patch64(p, v5, blk5 + 16);                      /* inside a block */
    judge(p, "root naming the inside of a block", false);
    patch64(p, v5, UINT64_C(0xfffffffffff00000));   /* far outside */
    judge(p, "root naming a place outside the file", false);
    patch64(p, v5, blk6);                           /* two tags, one block */
    judge(p, "two roots naming one block", false);
    patch64(p, v5, blk5);
    patch64(p, k5, 0);                              /* block, no tag */
    judge(p, "root slot with a block and no tag", false);
    patch64(p, k5, 5);
    judge(p, "repaired space", true);
    unlink(p);
}

/* Lanes judged as recovery will roll them (found by the fuzzer: check
 * passed these, and recovery then broke the heap). */
static void test_lanes_after_recovery(void)
{
    const char *p = t_path("lane-roll");
    make_space(p, 300, 0);
    struct pm_header h;
    read_header(p, &h);
    uint64_t l3 = h.fixed.lanes_off + 3 * sizeof(struct pm_lane);
    uint64_t table = pm_load_relaxed(&h.live.roots_next_off);
    REQUIRE(table != 0);

    /* an in-flight free of the overflow root table itself */
    struct pm_lane l = {0};
    l.dest_off = h.fixed.data_off + 8;
    l.block_off = table;
    set_lane(p, l3, &l, PM_LANE_FREE);
    judge(p, "lane freeing the overflow root table", false);

    /* a root whose allocation rolls forward onto a page no block starts */
    uint64_t k5, v5 = root_val_off(p, 5, &k5), blk5 = peek64(p, v5);
    uint64_t n = pm_load_relaxed(&h.live.n_pages);
    uint64_t free_page = h.fixed.data_off + ((n - 1) << h.fixed.page_shift);
    memset(&l, 0, sizeof l);
    l.dest_off = v5;
    l.block_off = free_page;
    set_lane(p, l3, &l, PM_LANE_ALLOC);
    patch64(p, v5, free_page);
    judge(p, "lane rolling a root forward onto a free page", false);
    /* the same lane rolled back is fine: the root keeps its block */
    patch64(p, v5, blk5);
    judge(p, "lane rolled back", true);
    unlink(p);
}

static void test_tail_bits(void)
{
    /* run bits past the end of a growable space: it opened, grew over
     * them and then could not be opened again */
    static const char *which[] = {"START", "END", "KIND"};
    for (int b = 0; b < 6; b++) {
        const char *p = t_path("tail");
        /* a maximum whose bitmaps span many pages, holes past the first */
        make_space(p, 4, b < 3 ? 64u << 20 : UINT64_C(64) << 30);
        struct pm_header h;
        read_header(p, &h);
        /* just past the end, and the last page of the maximum: an open
         * reads only what the file holds as data (the rest reads zeros),
         * so a bit far out in a bitmap of holes must be found too */
        uint64_t n = b < 3 ? pm_load_relaxed(&h.live.n_pages) + 3 : h.fixed.max_pages - 1;
        uint64_t off = (b % 3 == 0 ? h.fixed.start_bits_off
                        : b % 3 == 1 ? h.fixed.end_bits_off : h.fixed.kind_bits_off) +
                       n / 64 * 8;
        patch64(p, off, peek64(p, off) | UINT64_C(1) << (n % 64));
        char what[96];
        snprintf(what, sizeof what, "%s bit past the end of the space (page %llu)",
                 which[b % 3], (unsigned long long)n);
        /* the writer first: a check through a shared mapping backs the
         * holes it reads (tmpfs), after which there are none to skip */
        CHECK_EQ(in_child(judge_seed_private, p), J_CORRUPT);
        CHECK_EQ(in_child(judge_writer, p), J_REFUSED);
        judge(p, what, false);
        unlink(p);
    }
}

/* make_space, then a child opens it, runs work and dies without closing
 * (work returns nonzero for the child's exit status when it fails). */
static void die_in_max(const char *path, int (*work)(allocator_space_t *), uint64_t max)
{
    make_space(path, 4, max);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct persistent_options o = {0};
        o.flags = space_lazy;
        allocator_space_t *s;
        if (persistent_space_open(path, &o, &s) != 0)
            _exit(1);
        int r = work(s);
        if (r != 0)
            _exit(r);
        raise(SIGKILL);
    }
    int st;
    waitpid(pid, &st, 0);
    REQUIRE(WIFSIGNALED(st));
}

static void die_in(const char *path, int (*work)(allocator_space_t *))
{
    die_in_max(path, work, 0);
}

static int alloc_into_root(allocator_space_t *s)
{
    uint64_t *r = persistent_find_root(s, 1);
    for (int i = 0; i < 50; i++)
        persistent_alloc_into(s, (persistent_offset_t *)r, 100 + (size_t)i);
    return 0;
}

/* Writes, then dies without closing, with every lane's record kept. */
static void make_dirty(const char *path)
{
    die_in(path, alloc_into_root);
}

static void test_lanes(void)
{
    const char *p = t_path("lanes");
    make_dirty(p);
    judge(p, "dirty space", true);
    unlink(p);
    make_dirty(p);
    struct pm_header h;
    read_header(p, &h);
    uint64_t l3 = h.fixed.lanes_off + 3 * sizeof(struct pm_lane);
    struct pm_lane bad = {0};
    bad.dest_off = UINT64_C(0x123456789abc0);
    bad.block_off = h.fixed.data_off;
    set_lane(p, l3, &bad, PM_LANE_ALLOC);
    judge(p, "lane naming a location outside the file", false);

    bad.dest_off = h.fixed.data_off + 8;
    bad.block_off = h.fixed.data_off + 24;          /* no block starts there */
    set_lane(p, l3, &bad, PM_LANE_ALLOC);
    judge(p, "lane naming a place no block starts", false);

    bad.block_off = h.fixed.data_off;
    set_lane(p, l3, &bad, 7);
    judge(p, "lane with an unknown operation", false);

    /* a record caught half written by a power failure (its check fails):
     * its call never started, so it is idle, and a writer clears it */
    set_lane(p, l3, &bad, PM_LANE_FREE);
    patch64(p, l3 + offsetof(struct pm_lane, block_off), h.fixed.data_off + 4096);
    judge(p, "torn lane record", true);
    CHECK_EQ(peek64(p, l3 + offsetof(struct pm_lane, op)), PM_LANE_IDLE);

    /* an overflow lane table link that leads nowhere */
    memset(&bad, 0, sizeof bad);
    patch(p, l3, &bad, sizeof bad);
    patch64(p, offsetof(struct pm_header, live.lanes_next_off), h.fixed.data_off + 64);
    judge(p, "overflow lane table that is not one", false);
    unlink(p);
}

/* The same rule for the lanes of an overflow lane table, which live in
 * the heap (a review found a record naming one's tx_off accepted, since
 * any word of the pages may be a publishing call's location): every
 * header lane is held by a thread inside a transaction, so the main
 * thread's transaction makes its log in an overflow lane. */
static allocator_space_t *ov_space;
static _Atomic int ov_ready, ov_go;

static void *ov_holder(void *arg)
{
    (void)arg;
    REQUIRE(persistent_tx_begin(ov_space) == 0);
    atomic_fetch_add(&ov_ready, 1);
    while (!atomic_load(&ov_go))
        usleep(1000);
    REQUIRE(persistent_tx_commit(ov_space) == 0);
    return NULL;
}

static void forge_lane(struct pm_lane *at, uint64_t op, uint64_t dest, uint64_t blk)
{
    at->dest_off = dest;
    at->block_off = blk;
    at->old_off = 0;
    at->size = 64u << 10;
    pm_store_release(&at->op, op | pm_lane_check(op, dest, blk, 0, at->size) << 8);
}

static void test_lane_txlog_overflow(void)
{
    const char *p = t_path("ovlanes");
    ov_space = t_create(p, 4u << 20, 0);
    struct pm_rt *rt = pm_rt_of(ov_space);
    uint32_t nm = rt->hdr->fixed.n_lanes;
    pthread_t *t = calloc(nm, sizeof *t);
    REQUIRE(t != NULL);
    for (uint32_t i = 0; i < nm; i++)
        REQUIRE(pthread_create(&t[i], NULL, ov_holder, NULL) == 0);
    while (atomic_load(&ov_ready) < (int)nm)
        usleep(1000);
    REQUIRE(persistent_tx_begin(ov_space) == 0);
    REQUIRE(persistent_tx_commit(ov_space) == 0);
    struct pm_lane *ov = NULL, *l0 = pub_lane_at(rt, 0);
    for (uint32_t i = nm; pub_lane_at(rt, i) != NULL; i++)
        if (pm_load_acquire(&pub_lane_at(rt, i)->tx_off) != 0)
            ov = pub_lane_at(rt, i);
    REQUIRE(ov != NULL);
    uint64_t at = (uint64_t)((char *)&ov->tx_off - rt->base), log = ov->tx_off;
    struct persistent_check_report rep;
    forge_lane(ov, PM_LANE_ALLOC, at, log);        /* its own log, in flight */
    CHECK_EQ(persistent_check(ov_space, &rep), 0);
    pm_store_release(&ov->op, (uint64_t)PM_LANE_IDLE);
    forge_lane(l0, PM_LANE_ALLOC, at, log);        /* another lane's */
    CHECK_EQ(persistent_check(ov_space, &rep), PERSISTENT_E_CORRUPT);
    CHECK(strstr(rep.first_error, "invalid record") != NULL);
    pm_store_release(&l0->op, (uint64_t)PM_LANE_IDLE);
    CHECK_EQ(persistent_check(ov_space, &rep), 0);
    /* the overflow table and that log are the library's: a free of
     * either (a stale pointer) is refused, nothing changed */
    struct t_misuse mis = {0};
    persistent_error_hook_set(t_misuse_hook, &mis);
    uint64_t tab = pm_load_acquire(&rt->hdr->live.lanes_next_off);
    REQUIRE(tab != 0);
    persistent_free(ov_space, rt->base + tab);
    persistent_free(ov_space, rt->base + log);
    CHECK_EQ(mis.count, 2);
    CHECK_EQ(mis.last_code, PERSISTENT_E_BAD_POINTER);
    CHECK_EQ(persistent_usable_size(ov_space, rt->base + tab), 0);
    persistent_error_hook_set(NULL, NULL);
    CHECK_EQ(persistent_check(ov_space, &rep), 0);
    atomic_store(&ov_go, 1);
    for (uint32_t i = 0; i < nm; i++)
        pthread_join(t[i], NULL);
    free(t);
    REQUIRE(persistent_space_close(ov_space) == 0);
    unlink(p);
}

/* The header's chunk lane (publish.c chunk_add) is judged as the other
 * lanes are: a record recovery would act on that names no block is
 * damage the check reports (verify.c walk_lanes), found before a writer's
 * open writes a byte. */
static void test_chunk_lane_forged(void)
{
    const char *p = t_path("chunklane");
    allocator_space_t *s = t_create(p, 1u << 20, 0);
    struct pm_rt *rt = pm_rt_of(s);
    struct pm_lane *cl = &rt->hdr->chunk_lane;
    uint64_t link = (uint64_t)((char *)&rt->hdr->live.lanes_next_off - rt->base);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    forge_lane(cl, PM_LANE_ALLOC, link, 64);       /* a block in the header */
    CHECK_EQ(persistent_check(s, &rep), PERSISTENT_E_CORRUPT);
    CHECK(strstr(rep.first_error, "invalid record") != NULL);
    pm_store_release(&cl->op, (uint64_t)PM_LANE_IDLE);
    CHECK_EQ(persistent_check(s, &rep), 0);
    REQUIRE(persistent_space_close(s) == 0);
    unlink(p);
}

/* ---- run bitmaps ---- */

static void set_bit(const char *path, uint64_t area_off, uint64_t page, bool on)
{
    uint64_t off = area_off + page / 64 * 8, w = peek64(path, off);
    uint64_t bit = UINT64_C(1) << (page % 64);
    patch64(path, off, on ? w | bit : w & ~bit);
}

/* Runs of a space, read through a private view without recovery. */
struct runs_seen {
    uint64_t large_first, large_last;        /* a large run of 2+ pages */
    uint64_t sb_first, sb_last;              /* a superblock of 2+ pages */
    uint64_t sb_off, sb_words, sb_blocks;    /* whose last bitmap word is partial */
    uint64_t last;                           /* the last page of the last run */
    uint64_t n_pages;
};

static int see_run(struct pm_rt *rt, const struct pm_run *r, void *arg)
{
    struct runs_seen *v = arg;
    if (r->h == NULL && r->last > r->first && v->large_last == 0) {
        v->large_first = r->first;
        v->large_last = r->last;
    }
    if (r->h != NULL && r->last > r->first && r->h->n_blocks % 64 != 0 && v->sb_last == 0) {
        v->sb_first = r->first;
        v->sb_last = r->last;
        v->sb_off = rt->data_off + (r->first << rt->page_shift);
        v->sb_words = r->h->n_words;
        v->sb_blocks = r->h->n_blocks;
    }
    v->last = r->last;
    return 0;
}

static void see_runs(const char *path, struct runs_seen *v)
{
    memset(v, 0, sizeof *v);
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
    allocator_space_t *s;
    REQUIRE(persistent_space_open(path, &o, &s) == 0);
    struct pm_rt *rt = pm_rt_of(s);
    const char *why;
    uint64_t where;
    REQUIRE(pm_walk_runs(rt, see_run, v, &why, &where) == 0);
    v->n_pages = pm_load_acquire(&rt->n_pages);
    persistent_space_close(s);
    REQUIRE(v->large_last != 0 && v->sb_last != 0 && v->last + 4 < v->n_pages);
}

/* Each rule of the run bitmaps broken on its own (the mutation run found
 * no case for these): they are damage, never a crash leftover. */
static void test_runs(void)
{
    const char *p = t_path("runs");
    make_space(p, 0, 0);       /* no root: their rule would see a bad run too */
    struct pm_header h;
    read_header(p, &h);
    struct runs_seen v;
    see_runs(p, &v);
    /* two STARTs before one END */
    set_bit(p, h.fixed.start_bits_off, v.large_first + 1, true);
    judge(p, "a START inside a live run", false);
    set_bit(p, h.fixed.start_bits_off, v.large_first + 1, false);
    judge(p, "START removed again", true);
    see_runs(p, &v);           /* that writer released empty superblocks */
    /* a superblock's run a page shorter than its header says */
    set_bit(p, h.fixed.end_bits_off, v.sb_last, false);
    set_bit(p, h.fixed.end_bits_off, v.sb_last - 1, true);
    judge(p, "a superblock run shorter than its header", false);
    set_bit(p, h.fixed.end_bits_off, v.sb_last - 1, false);
    set_bit(p, h.fixed.end_bits_off, v.sb_last, true);
    judge(p, "END put back", true);
    see_runs(p, &v);
    /* an allocation bit past the last block */
    uint64_t w = v.sb_off + sizeof(struct pm_sb_header) + (v.sb_words - 1) * 8;
    uint64_t old = peek64(p, w);
    patch64(p, w, old | UINT64_C(1) << (v.sb_blocks % 64));
    judge(p, "an allocation bit past a superblock's last block", false);
    patch64(p, w, old);
    /* ... and a remote bit */
    w += v.sb_words * 8;
    old = peek64(p, w);
    patch64(p, w, old | UINT64_C(1) << 63);
    judge(p, "a remote bit past a superblock's last block", false);
    patch64(p, w, old);
    judge(p, "bitmap repaired", true);
    unlink(p);
}

/* Crash leftovers are not damage, and a writer's open clears every one:
 * END bits in a gap (on its first page and further on), a KIND bit in a
 * gap, remote bits on free blocks, a torn lane record. */
static void test_leftovers(void)
{
    const char *p = t_path("leftovers");
    make_space(p, 4, 0);
    struct pm_header h;
    read_header(p, &h);
    struct runs_seen v;
    see_runs(p, &v);
    set_bit(p, h.fixed.end_bits_off, v.last + 1, true);
    set_bit(p, h.fixed.end_bits_off, v.last + 3, true);
    set_bit(p, h.fixed.kind_bits_off, v.last + 2, true);
    /* a free block of the superblock with a remote bit: block 0 is live
     * (allocated first), so take the first clear allocation bit */
    uint64_t a0 = v.sb_off + sizeof(struct pm_sb_header);
    uint64_t a = peek64(p, a0);
    REQUIRE(~a != 0);
    uint64_t r0 = a0 + v.sb_words * 8;
    patch64(p, r0, peek64(p, r0) | (~a & -~a));
    struct pm_lane torn = {0};
    torn.dest_off = h.fixed.data_off + 8;
    torn.block_off = h.fixed.data_off;
    uint64_t l5 = h.fixed.lanes_off + 5 * sizeof(struct pm_lane);
    set_lane(p, l5, &torn, PM_LANE_FREE);
    patch64(p, l5 + offsetof(struct pm_lane, size), 99);    /* its check fails */

    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
    allocator_space_t *s;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    CHECK_EQ(rep.orphan_bits, 5);              /* 2 END, 1 KIND, 1 remote, 1 lane */
    persistent_space_close(s);

    o.flags = 0;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    CHECK_EQ(persistent_check(s, &rep), 0);
    CHECK_EQ(rep.orphan_bits, 0);
    CHECK_EQ(rep.pending_remote_frees, 0);
    CHECK_EQ(rep.in_flight_lanes, 0);
    persistent_space_close(s);
    unlink(p);
}

/* An overflow lane table of the right shape that is not a live block.
 * In pages no run holds it is what a kill leaves between its link and its
 * commit (publish.c chunk_add_unlaned, since 2026-12-07): healthy, and the
 * writer's open commits it.  With its first page the last of a live run
 * it is damage. */
static void lane_table_at(const char *p, uint64_t page)
{
    struct pm_header h;
    read_header(p, &h);
    uint64_t at = h.fixed.data_off + (page << h.fixed.page_shift);
    size_t size = sizeof(struct pm_lane_table) + PM_LANE_CHUNK * sizeof(struct pm_lane);
    struct pm_lane_table *t = calloc(1, size);
    REQUIRE(t != NULL);
    t->magic = PM_LANE_TABLE_MAGIC;
    t->n = PM_LANE_CHUNK;
    patch(p, at, t, size);
    free(t);
    patch64(p, offsetof(struct pm_header, live.lanes_next_off), at);
}

static void test_lane_table_not_live(void)
{
    const char *p = t_path("lane-table");
    make_space(p, 4, 0);
    struct runs_seen v;
    see_runs(p, &v);
    size_t size = sizeof(struct pm_lane_table) + PM_LANE_CHUNK * sizeof(struct pm_lane);
    struct pm_header h;
    read_header(p, &h);
    REQUIRE(v.last + 1 + (size >> h.fixed.page_shift) + 1 < v.n_pages);
    lane_table_at(p, v.last + 1);
    judge(p, "overflow lane table in pages no run holds (linked, not committed)", true);
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
    allocator_space_t *s;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    struct pm_rt *rt = pm_rt_of(s);
    CHECK(pm_block_live(rt, h.fixed.data_off + ((v.last + 1) << h.fixed.page_shift)) >= size);
    persistent_space_close(s);
    unlink(p);

    p = t_path("lane-table-in-run");
    make_space(p, 4, 0);
    see_runs(p, &v);
    lane_table_at(p, v.last);
    judge(p, "overflow lane table from the last page of a live run", false);
    unlink(p);

    /* two tables in free places whose bytes overlap (the second's head is
     * the first's last lane): each place is free, and the writer's open
     * committed both, runs over runs, then cleared the first one's last
     * lane as torn, which was the second's magic (a helper's review) */
    p = t_path("lane-tables-overlap");
    make_space(p, 4, 0);
    see_runs(p, &v);
    read_header(p, &h);
    uint64_t page = UINT64_C(1) << h.fixed.page_shift, pages = (size + page - 1) / page;
    REQUIRE(pages >= 2 && v.last + 1 + 2 * pages < v.n_pages);
    uint64_t one = h.fixed.data_off + ((v.last + 1) << h.fixed.page_shift);
    uint64_t two = h.fixed.data_off + ((v.last + pages) << h.fixed.page_shift);
    lane_table_at(p, v.last + 1);
    lane_table_at(p, v.last + pages);           /* over the first one's last lane */
    patch64(p, one + offsetof(struct pm_lane_table, next_off), two);
    patch64(p, offsetof(struct pm_header, live.lanes_next_off), one);
    judge(p, "two overflow lane tables in free places that overlap", false);
    unlink(p);
}

/* A check's cost is not the lanes times the tables times the distance to
 * the runs: 64 tables in free places at the end of a sparse 16 GiB space
 * whose runs are at its start, every lane holding an allocation in
 * flight.  Each record's destination was checked against the whole chain,
 * each table judged again by a look from each of its pages back to the
 * last START, a word at a time: 13.6 s for a view's check (64 live tables:
 * 0.04 s; a helper's review), 0.2 s now. */
static void test_lane_tables_far(void)
{
    const char *p = t_path("lane-tables-far");
    struct persistent_options mo = {0};
    mo.flags = PERSISTENT_OPEN_CREATE | PERSISTENT_OPEN_LAZY;
    mo.size = UINT64_C(16) << 30;
    allocator_space_t *s;
    REQUIRE(persistent_space_open(p, &mo, &s) == 0);
    persistent_offset_t *root = persistent_root_get(s, 1, 64, NULL);
    REQUIRE(root != NULL);
    struct pm_rt *rt = pm_rt_of(s);
    uint64_t n_pages = pm_load_acquire(&rt->n_pages);
    uint64_t dest = (uint64_t)((char *)root - rt->base);      /* holds 0: rolled back */
    REQUIRE(persistent_space_close(s) == 0);
    struct pm_header h;
    read_header(p, &h);
    size_t size = sizeof(struct pm_lane_table) + PM_LANE_CHUNK * sizeof(struct pm_lane);
    uint64_t page = UINT64_C(1) << h.fixed.page_shift, per = (size + page - 1) / page;
    uint64_t first = n_pages - 64 * per, blk = n_pages / 2;
    struct pm_lane_table *t = calloc(1, size);
    REQUIRE(t != NULL);
    for (uint64_t k = 0; k < 64; k++) {
        uint64_t at = h.fixed.data_off + ((first + k * per) << h.fixed.page_shift);
        memset(t, 0, size);
        t->magic = PM_LANE_TABLE_MAGIC;
        t->n = PM_LANE_CHUNK;
        pm_store_relaxed(&t->next_off, k < 63 ? at + (per << h.fixed.page_shift) : 0);
        for (uint32_t j = 0; j < PM_LANE_CHUNK; j++) {
            struct pm_lane *l = &t->lane[j];
            l->dest_off = dest;
            l->block_off = h.fixed.data_off + ((blk++) << h.fixed.page_shift);
            l->size = page;
            pm_store_relaxed(&l->op, PM_LANE_ALLOC | pm_lane_check(PM_LANE_ALLOC, l->dest_off,
                                                                   l->block_off, 0, l->size)
                                                         << 8);
        }
        patch(p, at, t, size);
    }
    free(t);
    patch64(p, offsetof(struct pm_header, live.lanes_next_off),
            h.fixed.data_off + (first << h.fixed.page_shift));
    uint64_t t0 = t_now_ns();
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    CHECK_EQ(rep.in_flight_lanes, 64 * PM_LANE_CHUNK + 64);   /* records, tables */
    uint64_t ms = (t_now_ns() - t0) / 1000000;
    persistent_space_close(s);
    printf("64 lane tables in free places at the end of a 16 GiB space, 4096 records in "
           "flight: a view's check %llu ms\n", (unsigned long long)ms);
    if (getenv("PM_UNDER_QEMU") == NULL)   /* emulated: tens of times slower */
        CHECK(ms < 4000);
    unlink(p);
}

/* A forged mapping-base record (state checksum recomputed) made
 * persistent_ptr return an address far outside the space. */
static void test_forged_base(void)
{
    const char *p = t_path("base");
    make_space(p, 2, 0);
    struct pm_header h;
    read_header(p, &h);
    int cur = h.state[1].seq > h.state[0].seq ? 1 : 0;
    struct pm_state st = h.state[cur];
    REQUIRE(st.n_bases >= 1);
    uint64_t fake = UINT64_C(0x100000000000);
    st.bases[1] = (struct pm_base_rec){fake, UINT64_C(1) << 60, 99};
    st.n_bases = 2;
    st.checksum = pm_state_checksum(&st);
    patch(p, offsetof(struct pm_header, state) + (uint64_t)cur * sizeof st, &st, sizeof st);

    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
    allocator_space_t *s;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    char *inside = (char *)(uintptr_t)(fake + h.fixed.data_off + 100);
    CHECK(persistent_ptr(s, inside) == (char *)s + h.fixed.data_off + 100);
    char *past = (char *)(uintptr_t)(fake + in.file_size);
    CHECK(persistent_ptr(s, past) == NULL);
    CHECK(persistent_ptr(s, (char *)(uintptr_t)(fake + (UINT64_C(1) << 45))) == NULL);
    CHECK(persistent_ptr_from(s, past, 99) == NULL);
    CHECK(persistent_ptr_from(s, inside, 99) == (char *)s + h.fixed.data_off + 100);
    persistent_space_close(s);
    unlink(p);
}

/* ---- transaction logs ---- */

/* Dies inside a transaction: root 1's bytes snapshotted and changed, a
 * block allocated in it.  The log's offset and generation in *log, *gen. */
static int open_tx(allocator_space_t *s)
{
    char *r = persistent_find_root(s, 1);
    if (r == NULL || persistent_tx_begin(s) != 0 || persistent_tx_add(s, r, 24) != 0)
        return 2;
    memset(r, 'x', 24);
    return persistent_tx_alloc(s, 100) == NULL ? 3 : 0;
}

/* The transaction log the first lane that has one names (the child's). */
static uint64_t lane_log(const char *path, const struct pm_header *h)
{
    uint64_t log = 0;
    for (uint32_t i = 0; i < h->fixed.n_lanes && log == 0; i++)
        log = peek64(path, h->fixed.lanes_off + i * sizeof(struct pm_lane) +
                               offsetof(struct pm_lane, tx_off));
    REQUIRE(log != 0);
    return log;
}

static void make_tx_dirty(const char *path, uint64_t *log, uint64_t *gen)
{
    die_in(path, open_tx);
    struct pm_header h;
    read_header(path, &h);
    *log = lane_log(path, &h);
    REQUIRE(peek64(path, *log + offsetof(struct pm_txlog, magic)) == PM_TXLOG_MAGIC);
    uint64_t state = peek64(path, *log + offsetof(struct pm_txlog, state));
    REQUIRE((state & 0xff) == PM_TX_ACTIVE);
    *gen = state >> 8;
}

static int pread_at(const char *path, void *buf, size_t len, uint64_t off)
{
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    ssize_t got = pread(fd, buf, len, (off_t)off);
    close(fd);
    return got == (ssize_t)len ? 0 : -1;
}

/* The record of the lane at lane_off (its tx_off kept) set to op on the
 * log at log, naming the word at dest. */
static void log_record(const char *p, uint64_t lane_off, uint64_t dest, uint64_t log,
                       uint64_t op)
{
    struct pm_lane rec;
    REQUIRE(pread_at(p, &rec, sizeof rec, lane_off) == 0);
    rec.dest_off = dest;
    rec.block_off = log;
    rec.old_off = 0;
    rec.size = op == PM_LANE_ALLOC ? 64u << 10 : 0;
    set_lane(p, lane_off, &rec, op);
}

/* A thread's transaction log is made through its own lane: a record that
 * allocates the log at the lane's tx_off, caught in flight, is a crash
 * leftover; a record that frees it, or that names another lane's tx_off,
 * is damage (recovery would drop a log it needs). */
/* The library's own blocks in a forged file (a helper's hunt): two lanes
 * naming one transaction log (two threads then wrote it, and a kill lost
 * one's rollback), and a root naming a log or an overflow root table (its
 * removal freed a block still in use).  Every judge refuses them. */
static void test_own_blocks_named(void)
{
    const char *p = t_path("ownnamed");
    uint64_t log, gen;
    make_tx_dirty(p, &log, &gen);
    struct pm_header h;
    read_header(p, &h);
    uint64_t free_lane = 0;
    for (uint32_t i = 0; i < h.fixed.n_lanes && free_lane == 0; i++) {
        uint64_t at = h.fixed.lanes_off + i * sizeof(struct pm_lane);
        if (peek64(p, at + offsetof(struct pm_lane, tx_off)) == 0)
            free_lane = at;
    }
    REQUIRE(free_lane != 0);
    patch64(p, free_lane + offsetof(struct pm_lane, tx_off), log);
    judge(p, "two lanes naming one transaction log", false);
    patch64(p, free_lane + offsetof(struct pm_lane, tx_off), 0);
    judge(p, "one lane naming the log again", true);
    unlink(p);

    make_tx_dirty(p, &log, &gen);
    uint64_t key_off, val = root_val_off(p, 1, &key_off);
    uint64_t was = peek64(p, val);
    patch64(p, val, log);
    judge(p, "a root naming a transaction log", false);
    patch64(p, val, was);
    unlink(p);

    make_space(p, 100, 0);                  /* 64 slots: an overflow table */
    read_header(p, &h);
    uint64_t table = h.live.roots_next_off;
    REQUIRE(table != 0);
    val = root_val_off(p, 1, &key_off);
    was = peek64(p, val);
    patch64(p, val, table);
    judge(p, "a root naming an overflow root table", false);
    patch64(p, val, was);
    judge(p, "the root put back", true);
    unlink(p);
}

static void test_lane_txlog(void)
{
    const char *p = t_path("lanelog");
    uint64_t log, gen;
    make_tx_dirty(p, &log, &gen);
    struct pm_header h;
    read_header(p, &h);
    uint64_t l0 = 0;
    for (uint32_t i = 0; i < h.fixed.n_lanes && l0 == 0; i++) {
        uint64_t at = h.fixed.lanes_off + i * sizeof(struct pm_lane);
        if (peek64(p, at + offsetof(struct pm_lane, tx_off)) == log)
            l0 = at;
    }
    REQUIRE(l0 != 0);
    uint64_t other = l0 == h.fixed.lanes_off ? l0 + sizeof(struct pm_lane) : h.fixed.lanes_off;
    uint64_t at = l0 + offsetof(struct pm_lane, tx_off);
    log_record(p, l0, at, log, PM_LANE_ALLOC);
    judge(p, "the log's own allocation in flight", true);
    CHECK_EQ(peek64(p, at), log);
    unlink(p);

    make_tx_dirty(p, &log, &gen);
    log_record(p, l0, at, log, PM_LANE_FREE);
    judge(p, "a lane record freeing its own transaction log", false);
    struct pm_lane idle = {0};
    patch(p, l0, &idle, offsetof(struct pm_lane, tx_off));
    log_record(p, other, at, log, PM_LANE_ALLOC);
    judge(p, "a lane record naming another lane's transaction log", false);
    unlink(p);
}

/* A whole entry (its check right) at off, with n_words of data after it. */
static void set_entry(const char *path, uint64_t off, uint64_t gen, uint64_t key,
                      uint64_t kind, uint64_t len, uint64_t at, uint64_t n_words)
{
    struct {
        struct pm_txent e;
        uint64_t data[8];
    } x;
    REQUIRE(n_words <= 8);
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, &x, sizeof x, (off_t)off) == (ssize_t)sizeof x);
    close(fd);
    x.e.kind_len = kind | len << 8;
    x.e.off = at;
    x.e.check = pm_txent_check(gen, key, x.e.kind_len, at, x.data, n_words);
    patch(path, off, &x.e, sizeof x.e);
}

/* The key of generation gen's entries in the log at log, as the file
 * says (pm_txlog_key: its offset, and the salt of the stream from the
 * fourth format on). */
static uint64_t log_key(const char *path, uint64_t log, uint64_t gen)
{
    struct pm_txlog lg;
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, &lg, sizeof lg, (off_t)log) == (ssize_t)sizeof lg);
    close(fd);
    return pm_txlog_key(&lg, log, gen);
}

/* A writer's open of an older format's log, of make_tx_dirty's open
 * transaction: rolled back (root 1 as it was), and the thread's next
 * transaction writes the log in the current format. */
static void rolled_back_then_new_format(const char *p, uint64_t log, const char *what)
{
    allocator_space_t *s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    char *r = persistent_find_root(s, 1);
    REQUIRE(r != NULL);
    CHECK(strcmp(r, "root 1") == 0);
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_add(s, r, 8) == 0);
    memcpy(r, "ROOT", 4);
    REQUIRE(persistent_tx_commit(s) == 0);
    destroy_persistent_allocator(s);
    CHECK(peek64(p, log + offsetof(struct pm_txlog, magic)) == PM_TXLOG_MAGIC);
    judge(p, what, true);
}

/* make_tx_dirty's open transaction with its log in an earlier format of
 * two streams (magic): the head says so, the salt words hold something,
 * the entries are signed with that format's key; rolled back, and the
 * next transaction writes the current format. */
static void two_stream_format(const char *p, uint64_t magic, const char *dirty,
                              const char *after)
{
    uint64_t log, gen, e1, end;
    make_tx_dirty(p, &log, &gen);
    struct pm_txlog lg;
    int fd = open(p, O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, &lg, sizeof lg, (off_t)log) == (ssize_t)sizeof lg);
    close(fd);
    pm_txlog_stream(&lg, log, gen, &e1, &end);
    uint64_t e2 = e1 + sizeof(struct pm_txent) + 24;
    uint64_t root = peek64(p, e1 + offsetof(struct pm_txent, off));
    uint64_t blk = peek64(p, e2 + offsetof(struct pm_txent, off));
    patch64(p, log + offsetof(struct pm_txlog, magic), magic);
    patch64(p, log + offsetof(struct pm_txlog, salt), UINT64_C(0x5a5a5a5a5a5a5a5b));
    patch64(p, log + offsetof(struct pm_txlog, salt) + 8, UINT64_C(0xa5a5a5a5a5a5a5a5));
    uint64_t key = pm_txlog_key_of(magic, log, 0);
    set_entry(p, e1, gen, key, PM_TXE_SNAPSHOT, 24, root, 3);
    set_entry(p, e2, gen, key, PM_TXE_ALLOC, 100, blk, 0);
    judge(p, dirty, true);
    rolled_back_then_new_format(p, log, after);
    unlink(p);
}

static void test_tx_logs(void)
{
    const char *p = t_path("txlog");
    uint64_t log, gen;
    make_tx_dirty(p, &log, &gen);
    judge(p, "killed in a transaction", true);
    unlink(p);

    make_tx_dirty(p, &log, &gen);
    struct pm_header h;
    read_header(p, &h);
    struct pm_txlog lg;
    int fd = open(p, O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, &lg, sizeof lg, (off_t)log) == (ssize_t)sizeof lg);
    close(fd);
    uint64_t e1, end;                                     /* the snapshot */
    pm_txlog_stream(&lg, log, gen, &e1, &end);
    uint64_t other, other_end;                            /* the other stream */
    pm_txlog_stream(&lg, log, gen - 1, &other, &other_end);
    REQUIRE(other != e1);
    uint64_t kl = peek64(p, e1 + offsetof(struct pm_txent, kind_len));
    REQUIRE(kl == (PM_TXE_SNAPSHOT | 24u << 8));
    uint64_t root = peek64(p, e1 + offsetof(struct pm_txent, off));
    uint64_t e2 = e1 + sizeof(struct pm_txent) + 24;      /* the allocation */
    REQUIRE((peek64(p, e2) & 0xff) == PM_TXE_ALLOC);
    uint64_t blk = peek64(p, e2 + offsetof(struct pm_txent, off));
    /* the first page of the root's run: its superblock's header */
    uint64_t page = UINT64_C(1) << h.fixed.page_shift;
    uint64_t sb = h.fixed.data_off + ((root - h.fixed.data_off) & ~(page - 1));
    while ((uint32_t)peek64(p, sb) != PM_SB_MAGIC) {
        REQUIRE(sb > h.fixed.data_off);
        sb -= page;
    }

    set_entry(p, e1, gen, log_key(p, log, gen), PM_TXE_SNAPSHOT, 24, sb, 3);
    judge(p, "a snapshot that would be restored over a superblock header", false);
    set_entry(p, e1, gen, log_key(p, log, gen), PM_TXE_SNAPSHOT, 24, blk - 8, 3);
    judge(p, "a snapshot across the start of a block", false);
    set_entry(p, e1, gen, log_key(p, log, gen), PM_TXE_PAGE, 24, page, 3);
    judge(p, "a page snapshot that is not a page", false);
    set_entry(p, e1, gen, log_key(p, log, gen), PM_TXE_SNAPSHOT, 24, root, 3);
    set_entry(p, e2, gen, log_key(p, log, gen), PM_TXE_ALLOC, 100, blk + 16, 0);
    judge(p, "an allocation where no block starts", false);
    set_entry(p, e2, gen, log_key(p, log, gen), PM_TXE_ALLOC, 100, blk, 0);
    patch64(p, log + offsetof(struct pm_txlog, state), gen << 8 | 7);
    judge(p, "a transaction log in an unknown state", false);
    patch64(p, log + offsetof(struct pm_txlog, state), gen << 8 | PM_TX_COMMITTED | PM_TX_PREV);
    judge(p, "a committed transaction log that says the one before has frees", false);
    /* the previous transaction's frees, read from the other stream */
    patch64(p, log + offsetof(struct pm_txlog, state), gen << 8 | PM_TX_ACTIVE | PM_TX_PREV);
    set_entry(p, other, gen - 1, log_key(p, log, gen - 1), PM_TXE_FREE, 0, blk + 16, 0);
    judge(p, "the previous transaction frees where no block starts", false);
    set_entry(p, other, gen - 2, log_key(p, log, gen - 2), PM_TXE_FREE, 0, blk + 16, 0);
    judge(p, "an entry of an older transaction in the other stream (not read)", true);
    patch64(p, log + offsetof(struct pm_txlog, state), gen << 8 | PM_TX_ACTIVE);
    patch64(p, log + offsetof(struct pm_txlog, state), gen << 8 | PM_TX_ACTIVE);
    patch64(p, log + offsetof(struct pm_txlog, magic), 0);
    judge(p, "a lane naming a transaction log that is not one", false);
    patch64(p, log + offsetof(struct pm_txlog, magic), PM_TXLOG_MAGIC);
    /* everything put back: a healthy dirty space again, rolled back */
    judge(p, "the transaction log put back", true);
    allocator_space_t *s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    char *r = persistent_find_root(s, 1);
    REQUIRE(r != NULL);
    CHECK(strcmp(r, "root 1") == 0);
    destroy_persistent_allocator(s);
    unlink(p);

    /* the third format's log (checks keyed by the log's offset alone; the
     * words where the fourth keeps its salts were reserved, and are not
     * read even when not zero): still rolled back, and it goes on in the
     * fourth (a review found no case of it once make_tx_dirty wrote the
     * fourth) */
    two_stream_format(p, PM_TXLOG_MAGIC_V3, "a third-format log of an open transaction",
                      "the third-format log in the new format");
    /* the second format's log (checks not keyed by the log): still rolled
     * back, and it goes on in the fourth */
    two_stream_format(p, PM_TXLOG_MAGIC_V2, "a second-format log of an open transaction",
                      "the second-format log in the new format");

    /* the first format's log (one stream from the head, checks not keyed
     * by the log): still rolled back */
    make_tx_dirty(p, &log, &gen);
    fd = open(p, O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, &lg, sizeof lg, (off_t)log) == (ssize_t)sizeof lg);
    pm_txlog_stream(&lg, log, gen, &e1, &end);
    char ents[2 * sizeof(struct pm_txent) + 24];
    REQUIRE(pread(fd, ents, sizeof ents, (off_t)e1) == (ssize_t)sizeof ents);
    REQUIRE(pwrite(fd, ents, sizeof ents, (off_t)(log + sizeof lg)) == (ssize_t)sizeof ents);
    root = ((const struct pm_txent *)(const void *)ents)->off;
    blk = ((const struct pm_txent *)(const void *)(ents + sizeof(struct pm_txent) + 24))->off;
    memset(ents, 0, sizeof ents);
    if (e1 != log + sizeof lg)
        REQUIRE(pwrite(fd, ents, sizeof ents, (off_t)e1) == (ssize_t)sizeof ents);
    close(fd);
    set_entry(p, log + sizeof lg, gen, 0, PM_TXE_SNAPSHOT, 24, root, 3);
    set_entry(p, log + sizeof lg + sizeof(struct pm_txent) + 24, gen, 0, PM_TXE_ALLOC, 100, blk,
              0);
    patch64(p, log + offsetof(struct pm_txlog, magic), PM_TXLOG_MAGIC_V1);
    patch64(p, log + offsetof(struct pm_txlog, state), gen << 8 | PM_TX_ACTIVE | PM_TX_PREV);
    judge(p, "a first-format log that says the one before has frees", false);
    patch64(p, log + offsetof(struct pm_txlog, state), gen << 8 | PM_TX_ACTIVE);
    judge(p, "a first-format log of an open transaction", true);
    rolled_back_then_new_format(p, log, "the log in the new format");
    unlink(p);
}

/* Dies inside an automatic transaction that changed root 1's bytes: their
 * page, with their superblock's header, is imaged in the log. */
static int open_auto_tx(allocator_space_t *s)
{
    char *r = persistent_find_root(s, 1);
    if (r == NULL || persistent_tx_begin_auto(s) != 0)
        return 2;
    memset(r, 'y', 24);
    return 0;
}

/* The file offset of the entry of generation gen in the stream from start
 * that images the page at page_off (0 if none). */
static uint64_t find_page_entry(const char *path, uint64_t start, uint64_t end,
                                uint64_t gen, uint64_t key, uint64_t page_off)
{
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    static uint64_t buf[(sizeof(struct pm_txent) + 65536) / 8];
    uint64_t found = 0;
    for (uint64_t at = start; at + sizeof(struct pm_txent) <= end && found == 0;) {
        struct pm_txent *e = (struct pm_txent *)buf;
        REQUIRE(pread(fd, e, sizeof *e, (off_t)at) == (ssize_t)sizeof *e);
        uint64_t kind = e->kind_len & 0xff, len = e->kind_len >> 8;
        uint64_t words = kind == PM_TXE_SNAPSHOT || kind == PM_TXE_PAGE ? (len + 7) / 8 : 0;
        if (words > 65536 / 8 || at + sizeof *e + words * 8 > end)
            break;
        REQUIRE(pread(fd, e + 1, words * 8, (off_t)(at + sizeof *e)) == (ssize_t)(words * 8));
        if (e->check != pm_txent_check(gen, key, e->kind_len, e->off, (uint64_t *)(e + 1),
                                       words) ||
            kind == PM_TXE_JUMP)
            break;                      /* the stream ends (or goes on elsewhere) */
        if (kind == PM_TXE_PAGE && e->off == page_off)
            found = at;
        at += sizeof *e + words * 8;
    }
    close(fd);
    return found;
}

/* What a rollback would write is judged before it is written: a log whose
 * entries are well formed (a page image of a page of the file, a snapshot
 * inside a live block) but whose bytes would leave a damaged heap: every
 * judge calls it damaged, as the writer does, and nothing writes.  Before,
 * the views called it clean, a writer wrote the bytes and then refused the
 * space (the file changed) or accepted it and left a log no open took
 * again, and a private open recovered into a damaged heap. */
static void test_rollback_judged(void)
{
    const char *p = t_path("rollback");
    /* an automatic transaction's page image with its superblock header
     * broken, its check made right */
    die_in(p, open_auto_tx);
    judge(p, "killed in an automatic transaction", true);
    unlink(p);
    die_in(p, open_auto_tx);
    struct pm_header h;
    read_header(p, &h);
    uint64_t log = lane_log(p, &h);
    struct pm_txlog lg;
    int fd = open(p, O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, &lg, sizeof lg, (off_t)log) == (ssize_t)sizeof lg);
    close(fd);
    REQUIRE((lg.state & PM_TX_PHASE) == PM_TX_ACTIVE);
    uint64_t gen = lg.state >> 8, start, end;
    pm_txlog_stream(&lg, log, gen, &start, &end);
    uint64_t key_off, root = peek64(p, root_val_off(p, 1, &key_off));
    uint64_t os_page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t page_off = root & ~(os_page - 1);
    uint64_t at = find_page_entry(p, start, end, gen, log_key(p, log, gen), page_off);
    REQUIRE(at != 0);
    uint64_t spage = UINT64_C(1) << h.fixed.page_shift;
    uint64_t sb = h.fixed.data_off + ((root - h.fixed.data_off) & ~(spage - 1));
    while ((uint32_t)peek64(p, sb) != PM_SB_MAGIC) {
        REQUIRE(sb > h.fixed.data_off);
        sb -= spage;
    }
    REQUIRE(sb >= page_off && sb < page_off + os_page);     /* in the image */
    static uint64_t img[65536 / 8];
    fd = open(p, O_RDWR);
    REQUIRE(fd >= 0);
    struct pm_txent e;
    REQUIRE(pread(fd, &e, sizeof e, (off_t)at) == (ssize_t)sizeof e);
    REQUIRE(pread(fd, img, os_page, (off_t)(at + sizeof e)) == (ssize_t)os_page);
    ((uint32_t *)img)[(sb - page_off) / 4] ^= 0x01010101u;  /* its magic */
    e.check = pm_txent_check(gen, log_key(p, log, gen), e.kind_len, e.off, img, os_page / 8);
    REQUIRE(pwrite(fd, img, os_page, (off_t)(at + sizeof e)) == (ssize_t)os_page);
    REQUIRE(pwrite(fd, &e, sizeof e, (off_t)at) == (ssize_t)sizeof e);
    close(fd);
    judge(p, "a page image that would put back a broken superblock header", false);
    /* the same image put back over the log's own first page: the entries
     * not yet restored would be read rewritten (the fuzzer found a copy
     * of 2^64 bytes made of one) */
    fd = open(p, O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, img, os_page, (off_t)(at + sizeof e)) == (ssize_t)os_page);
    ((uint32_t *)img)[(sb - page_off) / 4] ^= 0x01010101u;  /* as it was */
    REQUIRE(pwrite(fd, img, os_page, (off_t)(at + sizeof e)) == (ssize_t)os_page);
    close(fd);
    REQUIRE(log % os_page == 0);
    set_entry(p, at, gen, log_key(p, log, gen), PM_TXE_PAGE, os_page, log, 0);
    e.check = pm_txent_check(gen, log_key(p, log, gen), PM_TXE_PAGE | os_page << 8, log, img,
                             os_page / 8);
    patch(p, at + offsetof(struct pm_txent, check), &e.check, sizeof e.check);
    judge(p, "a page image that would be put back over the log itself", false);
    {
        /* refused for that, before anything is put back (the views alike) */
        allocator_space_t *w;
        CHECK(persistent_space_open(p, NULL, &w) == PERSISTENT_E_CORRUPT);
        CHECK(strstr(persistent_errormsg(), "over the log itself") != NULL);
        struct persistent_options o = {0};
        o.flags = PERSISTENT_OPEN_READONLY;
        REQUIRE(persistent_space_open(p, &o, &w) == 0);
        struct persistent_check_report rep;
        CHECK(persistent_check(w, &rep) == PERSISTENT_E_CORRUPT);
        CHECK(strstr(rep.first_error, "over the log itself") != NULL);
        persistent_space_close(w);
    }
    unlink(p);

    /* a page image that would put a run bit past the committed pages, into
     * the START bitmap's tail, which the file holds as a hole (a lazy
     * space's bitmaps are sized for its maximum and never backed there): a
     * check skips those holes, and where the copy-on-write of the
     * rollback's private mapping leaves the file's hole a hole (ext4's, not
     * tmpfs's, whose page is then backed and read), the views judged the
     * rolled back heap clean and a writer put the bit in the file (every
     * later open refused the space).  On a disk file system when there is
     * one (/var/tmp), else where the other tests are. */
    struct statfs sfs;
    const char *was = getenv("PM_TEST_DIR");
    char saved[512] = "";
    if (was != NULL)
        snprintf(saved, sizeof saved, "%s", was);
    if (statfs("/var/tmp", &sfs) == 0 && sfs.f_type != 0x01021994 /* TMPFS_MAGIC */ &&
        access("/var/tmp", W_OK) == 0)
        REQUIRE(setenv("PM_TEST_DIR", "/var/tmp", 1) == 0);
    p = t_path("tailimg");              /* removed at exit whatever happens */
    if (was != NULL)
        REQUIRE(setenv("PM_TEST_DIR", saved, 1) == 0);
    else
        REQUIRE(unsetenv("PM_TEST_DIR") == 0);
    /* the bit set, then an image of zeros: no genuine log holds an image
     * of the tail alone, and putting one back stores into the hole (a
     * SIGBUS on a full disk, before the open could fail) */
    for (int bit = 1; bit >= 0; bit--) {
        space_lazy = PERSISTENT_OPEN_LAZY;
        /* 8 GiB: a whole page of the START bitmap past the pages, 64 KiB ones too */
        die_in_max(p, open_auto_tx, UINT64_C(8) << 30);
        space_lazy = 0;
        read_header(p, &h);
        log = lane_log(p, &h);
        fd = open(p, O_RDONLY);
        REQUIRE(fd >= 0);
        REQUIRE(pread(fd, &lg, sizeof lg, (off_t)log) == (ssize_t)sizeof lg);
        close(fd);
        REQUIRE((lg.state & PM_TX_PHASE) == PM_TX_ACTIVE);
        gen = lg.state >> 8;
        pm_txlog_stream(&lg, log, gen, &start, &end);
        root = peek64(p, root_val_off(p, 1, &key_off));
        page_off = root & ~(os_page - 1);
        at = find_page_entry(p, start, end, gen, log_key(p, log, gen), page_off);
        REQUIRE(at != 0);
        uint64_t words = (h.live.n_pages + 63) / 64 * 8;
        uint64_t tail = (h.fixed.start_bits_off + words + os_page - 1) & ~(os_page - 1);
        REQUIRE(tail + os_page <= h.fixed.start_bits_off + h.fixed.bits_size);
        fd = open(p, O_RDWR);
        REQUIRE(fd >= 0);
        if (bit) {
            /* a page of a bitmap's last words of the pages (held by the file:
             * a tail bit there is seen by every check) of which the log has
             * no other image, so that the verdict is this one's: as it is,
             * but for the last bit of the page, far past the end */
            const uint64_t bits_at[3] = {h.fixed.start_bits_off, h.fixed.end_bits_off,
                                         h.fixed.kind_bits_off};
            tail = 0;
            for (int i = 0; i < 3 && tail == 0; i++) {
                uint64_t pg = (bits_at[i] + words) & ~(os_page - 1);
                if (pg != 0 && find_page_entry(p, start, end, gen, log_key(p, log, gen), pg) == 0)
                    tail = pg;
            }
            REQUIRE(tail != 0);
            REQUIRE(pread(fd, img, os_page, (off_t)tail) == (ssize_t)os_page);
            img[os_page / 8 - 1] |= UINT64_C(1) << 63;
        } else {
            memset(img, 0, os_page);    /* a page of the tail alone, zeros */
        }
        REQUIRE(pread(fd, &e, sizeof e, (off_t)at) == (ssize_t)sizeof e);
        e.off = tail;
        e.check = pm_txent_check(gen, log_key(p, log, gen), e.kind_len, e.off, img, os_page / 8);
        REQUIRE(pwrite(fd, img, os_page, (off_t)(at + sizeof e)) == (ssize_t)os_page);
        REQUIRE(pwrite(fd, &e, sizeof e, (off_t)at) == (ssize_t)sizeof e);
        close(fd);
        judge(p, bit ? "a page image that would set run bits past the end"
                     : "a page image of the run bitmaps' tail alone", false);
        {
            /* refused for the image itself, before it is put back */
            allocator_space_t *w;
            CHECK(persistent_space_open(p, NULL, &w) == PERSISTENT_E_CORRUPT);
            CHECK(strstr(persistent_errormsg(), "would write run bits past the end") != NULL);
            struct persistent_options o = {0};
            o.flags = PERSISTENT_OPEN_READONLY;
            REQUIRE(persistent_space_open(p, &o, &w) == 0);
            struct persistent_check_report rep;
            CHECK(persistent_check(w, &rep) == PERSISTENT_E_CORRUPT);
            CHECK(strstr(rep.first_error, "would write run bits past the end") != NULL);
            persistent_space_close(w);
        }
        unlink(p);
    }

    /* a snapshot of the log's own head (a live block the library keeps)
     * that would put back a size no log has */
    make_tx_dirty(p, &log, &gen);
    fd = open(p, O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, &lg, sizeof lg, (off_t)log) == (ssize_t)sizeof lg);
    close(fd);
    pm_txlog_stream(&lg, log, gen, &start, &end);
    REQUIRE(peek64(p, start + offsetof(struct pm_txent, kind_len)) ==
            (PM_TXE_SNAPSHOT | 24u << 8));
    uint64_t head[3] = {PM_TXLOG_MAGIC, 8, gen << 8 | PM_TX_ACTIVE};
    patch(p, start + sizeof(struct pm_txent), head, sizeof head);
    set_entry(p, start, gen, log_key(p, log, gen), PM_TXE_SNAPSHOT, 24, log, 3);
    judge(p, "a snapshot that would put back a log head of 8 bytes", false);
    unlink(p);
}


/* A crash image whose heap is whole only after the rollback a writer's
 * open will do (the page image of an automatic transaction puts back a
 * superblock header the file has broken): a view calls it clean, judging
 * it after that rollback.  While a writer waits for the space (a shared
 * lock held meanwhile: another view's judge, a copy) the view cannot try
 * the rollback, and judging the heap as it is called it corrupt (a
 * review); now it gives no verdict, and once the writer has recovered the
 * space, clean again. */
static void test_rollback_unjudged(void)
{
    const char *p = t_path("unjudged");
    die_in(p, open_auto_tx);
    struct pm_header h;
    read_header(p, &h);
    uint64_t key_off, root = peek64(p, root_val_off(p, 1, &key_off));
    uint64_t spage = UINT64_C(1) << h.fixed.page_shift;
    uint64_t sb = h.fixed.data_off + ((root - h.fixed.data_off) & ~(spage - 1));
    while ((uint32_t)peek64(p, sb) != PM_SB_MAGIC) {
        REQUIRE(sb > h.fixed.data_off);
        sb -= spage;
    }
    uint64_t magic = peek64(p, sb);
    patch64(p, sb, magic ^ 0x01010101u);            /* the image keeps it whole */
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_READONLY;
    allocator_space_t *v;
    REQUIRE(persistent_space_open(p, &o, &v) == 0);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(v, &rep), 0);
    int sh = open(p, O_RDONLY);
    REQUIRE(sh >= 0 && flock(sh, LOCK_SH) == 0);
    fflush(NULL);
    pid_t w = fork();
    if (w == 0) {
        allocator_space_t *s;
        _exit(persistent_space_open(p, NULL, &s) == 0 && persistent_space_close(s) == 0 ? 0 : 1);
    }
    usleep(100000);                                 /* the writer waits */
    int r = persistent_check(v, &rep);
    if (r != PERSISTENT_E_BUSY)
        fprintf(stderr, "check while a writer waits: %d %s\n", r, rep.first_error);
    CHECK_EQ(r, PERSISTENT_E_BUSY);
    REQUIRE(flock(sh, LOCK_UN) == 0);
    close(sh);
    int st;
    REQUIRE(waitpid(w, &st, 0) == w);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);  /* recovered it */
    CHECK_EQ(persistent_check(v, &rep), 0);
    CHECK_EQ(peek64(p, sb), magic);
    persistent_space_close(v);
    unlink(p);
}

/* A forged log whose stream JUMPs to a segment that JUMPs to itself, a
 * snapshot between: every walk used to go round until its budget (the
 * data's size / 32 entries) and, since the walks that restore keep the
 * segments they saw, scan all of them at each entry -- a check of an
 * 8 MiB space took 23 s (a review).  A segment walked again now ends the
 * walk; each judge runs under an alarm of 20 s. */
static int open_tx8(allocator_space_t *s)
{
    uint64_t *r = persistent_root_get(s, 1, 64, NULL);
    if (r == NULL || persistent_tx_begin(s) != 0 || persistent_tx_add(s, r, 8) != 0)
        return 2;
    r[0] = 42;
    return 0;
}

static void put_entry(int fd, uint64_t gen, uint64_t key, uint64_t at, uint64_t kind,
                      uint64_t len, uint64_t off, const void *data)
{
    struct pm_txent e;
    memset(&e, 0, sizeof e);
    e.kind_len = kind | len << 8;
    e.off = off;
    uint64_t words = kind == PM_TXE_SNAPSHOT ? (len + 7) / 8 : 0, buf[8] = {0};
    REQUIRE(words <= 8);
    if (words)
        memcpy(buf, data, len);
    e.check = pm_txent_check(gen, key, e.kind_len, off, buf, words);
    REQUIRE(pwrite(fd, &e, sizeof e, (off_t)at) == (ssize_t)sizeof e);
    if (words)
        REQUIRE(pwrite(fd, buf, words * 8, (off_t)(at + sizeof e)) == (ssize_t)(words * 8));
}

static void test_jump_cycle(void)
{
    const char *p = t_path("jumpcycle");
    allocator_space_t *s = t_create(p, 16u << 20, 0);
    uint64_t *r = persistent_root_get(s, 1, 64, NULL);
    REQUIRE(r != NULL);
    uint64_t roff = ptr_to_persistent_offset(s, r), val = r[0];
    REQUIRE(persistent_space_close(s) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (persistent_space_open(p, NULL, &s) != 0)
            _exit(1);
        _exit(open_tx8(s) != 0 ? 2 : 0);           /* dies with it open */
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct pm_header h;
    read_header(p, &h);
    uint64_t log = lane_log(p, &h);
    struct pm_txlog lg;
    int fd = open(p, O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, &lg, sizeof lg, (off_t)log) == (ssize_t)sizeof lg);
    REQUIRE((lg.state & PM_TX_PHASE) == PM_TX_ACTIVE);
    uint64_t gen = lg.state >> 8, start, end;
    pm_txlog_stream(&lg, log, gen, &start, &end);
    uint64_t page = UINT64_C(1) << h.fixed.page_shift;
    uint64_t x = h.fixed.data_off + (h.live.n_pages - 4) * page;   /* free pages */
    put_entry(fd, gen, log_key(p, log, gen), start, PM_TXE_JUMP, page, x, NULL);
    put_entry(fd, gen, log_key(p, log, gen), x, PM_TXE_SNAPSHOT, 8, roff, &val);
    put_entry(fd, gen, log_key(p, log, gen), x + sizeof(struct pm_txent) + 8, PM_TXE_JUMP, page,
              x, NULL);
    close(fd);
    uint64_t t0 = t_now_ns();
    judge(p, "a log whose segment jumps to itself", true);
    CHECK(t_now_ns() - t0 < 20 * UINT64_C(1000000000));
    unlink(p);

    /* the same cycle in a COMMITTED log (recovery finishes its frees), in
     * a space whose page count says 32 GiB (a sparse file): that walk kept
     * no segments and went round until its budget, a billion entries
     * here, was spent (a helper's hunt: 54 s at 64 GiB) */
    /* (a maximum just above it: sanitizers' shadow of the reservation is
     * set at close, 1/8 of it) */
    s = t_create(p, 1u << 20, (UINT64_C(1) << 35) + (1u << 20));
    r = persistent_root_get(s, 1, 64, NULL);
    REQUIRE(r != NULL);
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_add(s, r, 8) == 0);
    r[0] = 7;
    REQUIRE(persistent_tx_commit(s) == 0);
    REQUIRE(persistent_space_close(s) == 0);
    read_header(p, &h);
    log = lane_log(p, &h);
    fd = open(p, O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, &lg, sizeof lg, (off_t)log) == (ssize_t)sizeof lg);
    REQUIRE((lg.state & PM_TX_PHASE) == PM_TX_IDLE);
    gen = (lg.state >> 8) + 1;
    uint64_t state = PM_TX_COMMITTED | gen << 8;
    REQUIRE(pwrite(fd, &state, 8, (off_t)(log + offsetof(struct pm_txlog, state))) == 8);
    pm_txlog_stream(&lg, log, gen, &start, &end);
    page = UINT64_C(1) << h.fixed.page_shift;
    x = h.fixed.data_off + (h.live.n_pages + 10) * page;     /* past the pages */
    put_entry(fd, gen, log_key(p, log, gen), start, PM_TXE_JUMP, page, x, NULL);
    put_entry(fd, gen, log_key(p, log, gen), x, PM_TXE_JUMP, page, x, NULL);
    uint64_t n = UINT64_C(1) << (35 - h.fixed.page_shift);
    REQUIRE(pwrite(fd, &n, 8, (off_t)offsetof(struct pm_header, live.n_pages)) == 8);
    REQUIRE(ftruncate(fd, (off_t)(h.fixed.data_off + (n << h.fixed.page_shift))) == 0);
    close(fd);
    /* (judge hashes the file: 16 GiB, so the calls one by one) */
    t0 = t_now_ns();
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_READONLY;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    uint64_t view_ms = (t_now_ns() - t0) / 1000000;   /* the close not counted */
    persistent_space_close(s);
    t0 = t_now_ns();
    s = create_persistent_allocator(p, 0);
    uint64_t writer_ms = (t_now_ns() - t0) / 1000000;
    CHECK(s != NULL);
    if (s != NULL) {
        uint64_t *rr = persistent_find_root(s, 1);
        CHECK(rr != NULL && rr[0] == 7);
        t_check_clean(s, "a committed log whose segment jumps to itself");
        destroy_persistent_allocator(s);
    }
    printf("jump cycle in a committed log of a 32 GiB space: a view's check %llu ms, "
           "a writer's open %llu ms\n",
           (unsigned long long)view_ms, (unsigned long long)writer_ms);
    if (getenv("PM_UNDER_QEMU") == NULL)   /* emulated: tens of times slower */
        CHECK(view_ms < 4000 && writer_ms < 4000);
    unlink(p);
}

/* A check's cost is not the roots times the lanes' frees: a COMMITTED
 * log whose stream goes on through 4000 pages of FREE entries (half a
 * million) beside 8000 roots took a pass over every record for each root
 * (6 s here; a helper's hunt: 25 s for a forged file of 4 MB); the frees
 * are now sorted once and each root is a search. */
static void test_many_frees_many_roots(void)
{
    const char *p = t_path("manyfrees");
    allocator_space_t *s = t_create(p, 64u << 20, 0);
    for (uint64_t t = 1; t <= 8000; t++)
        REQUIRE(persistent_root_get(s, t, 24, NULL) != NULL);
    char *x = persistent_malloc(s, 64);
    REQUIRE(x != NULL);
    uint64_t xoff = ptr_to_persistent_offset(s, x);
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_add(s, persistent_find_root(s, 1), 8) == 0);
    REQUIRE(persistent_tx_commit(s) == 0);
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    REQUIRE(persistent_space_close(s) == 0);
    struct pm_header h;
    read_header(p, &h);
    uint64_t log = lane_log(p, &h);
    int fd = open(p, O_RDWR);
    REQUIRE(fd >= 0);
    struct pm_txlog lg;
    REQUIRE(pread(fd, &lg, sizeof lg, (off_t)log) == (ssize_t)sizeof lg);
    uint64_t gen = (lg.state >> 8) + 1, start, end;
    uint64_t state = PM_TX_COMMITTED | gen << 8;
    REQUIRE(pwrite(fd, &state, 8, (off_t)(log + offsetof(struct pm_txlog, state))) == 8);
    pm_txlog_stream(&lg, log, gen, &start, &end);
    uint64_t key = log_key(p, log, gen);
    uint64_t page = UINT64_C(1) << h.fixed.page_shift;
    enum { PAGES = 4000, PER = 127 };
    uint64_t first = h.fixed.data_off + in.used_size + 16 * page;  /* free pages */
    REQUIRE(first + (PAGES + 1) * page <= h.fixed.data_off + in.capacity);
    static struct pm_txent ents[PER + 1];
    ents[0].kind_len = PM_TXE_JUMP | page << 8;
    ents[0].off = first;
    ents[0].reserved = 0;
    ents[0].check = pm_txent_check(gen, key, ents[0].kind_len, first, NULL, 0);
    REQUIRE(pwrite(fd, ents, sizeof ents[0], (off_t)start) == (ssize_t)sizeof ents[0]);
    for (uint64_t i = 0; i < PAGES; i++) {
        for (int k = 0; k < PER; k++) {
            ents[k].kind_len = PM_TXE_FREE;
            ents[k].off = xoff;
            ents[k].reserved = 0;
            ents[k].check = pm_txent_check(gen, key, PM_TXE_FREE, xoff, NULL, 0);
        }
        uint64_t next = first + (i + 1) * page;
        ents[PER].kind_len = i + 1 < PAGES ? PM_TXE_JUMP | page << 8 : 0;
        ents[PER].off = next;
        ents[PER].reserved = 0;
        ents[PER].check = i + 1 < PAGES ? pm_txent_check(gen, key, ents[PER].kind_len, next,
                                                         NULL, 0)
                                        : 0;
        REQUIRE(pwrite(fd, ents, sizeof ents, (off_t)(first + i * page)) == (ssize_t)sizeof ents);
    }
    close(fd);
    uint64_t t0 = t_now_ns();
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_READONLY;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    CHECK_EQ(rep.roots, 8000);
    persistent_space_close(s);
    uint64_t ms = (t_now_ns() - t0) / 1000000;
    printf("many frees: 8000 roots beside %d FREE entries, a view's open and check %llu ms\n",
           PAGES * PER, (unsigned long long)ms);
    if (getenv("PM_UNDER_QEMU") == NULL)   /* emulated: tens of times slower */
        CHECK(ms < 3000);
    s = create_persistent_allocator(p, 0);   /* the frees finished */
    REQUIRE(s != NULL);
    CHECK(persistent_usable_size(s, persistent_offset_to_ptr(s, xoff)) == 0);
    t_check_clean(s, "after a log of half a million frees");
    destroy_persistent_allocator(s);
    unlink(p);
}

int main(void)
{
    test_healthy();
    test_root_tables();
    test_root_values();
    test_tail_bits();
    test_lanes();
    test_lane_txlog();
    test_own_blocks_named();
    test_lane_txlog_overflow();
    test_chunk_lane_forged();
    test_lanes_after_recovery();
    test_runs();
    test_leftovers();
    test_lane_table_not_live();
    test_lane_tables_far();
    test_forged_base();
    test_tx_logs();
    test_rollback_judged();
    test_rollback_unjudged();
    test_jump_cycle();
    test_many_frees_many_roots();
    return t_done();
}

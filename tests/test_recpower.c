/* Power failures after, and inside, an open's recovery; and what abort,
 * sync and a writer's open promise to make durable (G3, G7).
 *   test_recpower [tx-rollback|sync|state|abort|lanes|recovery|auto-log|run-end|
 *                  stale-salt]
 *
 * Each step runs in a child under the power model with no crash point
 * armed: the file then holds only what was written back and fenced, and
 * the child's _exit is the power failure.  The crash-point sweeps
 * (test_crashpoints, test_txcrash) fail the power once, in a call; these
 * fail it again after the recovery of that, or at each point of the
 * recovery itself, with several seeds for the lines in flight.  A
 * helper's hunt for write-backs no mutant had removed found eight whose
 * loss no suite noticed, each killed by a case here (or by the two races
 * race-lanelink and race-rootlink of test_crashpoints). */
#include "check.h"

#include <sys/mman.h>
#include <sys/wait.h>

#include "internal.h"
#include "crash_harness.h"

#define TAG 0x52454350ull

struct root {
    persistent_offset_t slot;
    uint64_t word;
    persistent_offset_t keep;
    uint64_t pad[5];
};

struct shared {
    uint64_t new_block;
    uint64_t abort_from;        /* auto-log: crash points before the abort */
};
static struct shared *sh;
static uint64_t space_size = 256u << 10;

static allocator_space_t *open_pmem(const char *path)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = space_size;
    o.durability = PERSISTENT_DURABILITY_PMEM;
    allocator_space_t *s;
    return persistent_space_open(path, &o, &s) == 0 ? s : NULL;
}

/* The space at path (made if absent) and its root, made if absent */
static struct root *root_in(const char *path, allocator_space_t **out)
{
    allocator_space_t *s = open_pmem(path);
    REQUIRE(s != NULL);
    struct root *r = persistent_root_get(s, TAG, sizeof *r, NULL);
    REQUIRE(r != NULL);
    *out = s;
    return r;
}

/* body(path) in a child under the power model; its end is a power
 * failure */
static void powered(const char *path, void (*body)(const char *))
{
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        pm_crash_arm(0, PM_CRASH_POWER, 7);
        body(path);
        _exit(0);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* tx-rollback: a transaction's allocation rolled back by the open, the
 * block's place reused and published, the power fails again: recovery
 * must not roll it back a second time */
static void die_in_tx(const char *path)
{
    allocator_space_t *s;
    struct root *r = root_in(path, &s);
    r->word = 1;
    persistent_persist(&r->word, 8);
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_add(s, &r->word, 8) == 0);
    r->word = 2;
    void *b = persistent_tx_alloc(s, 100);
    REQUIRE(b != NULL);
    memset(b, 0x5a, 100);
    persistent_persist(b, 100);
    persistent_persist(&r->word, 8);
}

static void recover_then_use(const char *path)
{
    allocator_space_t *s = open_pmem(path);
    REQUIRE(s != NULL);
    struct root *r = persistent_find_root(s, TAG);
    REQUIRE(r != NULL && r->word == 1);
    REQUIRE(persistent_alloc_into(s, &r->slot, 100) == 0);
    sh->new_block = r->slot;
    memset(persistent_offset_to_ptr(s, r->slot), 0xa5, 100);
    persistent_persist(persistent_offset_to_ptr(s, r->slot), 100);
    r->word = 3;
    persistent_persist(&r->word, 8);
}

static void case_tx_rollback(void)
{
    const char *path = t_path("recpower");
    unlink(path);
    powered(path, die_in_tx);
    powered(path, recover_then_use);
    allocator_space_t *s = open_pmem(path);
    REQUIRE(s != NULL);
    struct persistent_check_report rep;
    CHECK(persistent_check(s, &rep) == 0);
    struct root *r = persistent_find_root(s, TAG);
    REQUIRE(r != NULL);
    CHECK_EQ(r->slot, sh->new_block);
    CHECK(persistent_usable_size(s, persistent_offset_to_ptr(s, r->slot)) >= 100);
    void *n = persistent_malloc(s, 100);
    CHECK(n != NULL && ptr_to_persistent_offset(s, n) != r->slot);
    CHECK_EQ(r->word, 3);
    REQUIRE(persistent_space_close(s) == 0);
    unlink(path);
}

/* sync: persistent_flush, then persistent_sync, is durable (the sync
 * drains what was flushed) */
static void flush_then_sync(const char *path)
{
    allocator_space_t *s;
    struct root *r = root_in(path, &s);
    r->word = 42;
    persistent_flush(&r->word, 8);
    REQUIRE(persistent_sync(s) == 0);
}

/* The root's word on file once body has run in a fresh space at name
 * and the power failed (UINT64_MAX: no root) */
static uint64_t word_after(const char *name, void (*body)(const char *))
{
    const char *path = t_path(name);
    unlink(path);
    powered(path, body);
    allocator_space_t *s = open_pmem(path);
    REQUIRE(s != NULL);
    struct root *r = persistent_find_root(s, TAG);
    uint64_t w = r != NULL ? r->word : UINT64_MAX;
    REQUIRE(persistent_space_close(s) == 0);
    unlink(path);
    return w;
}

static void case_sync(void)
{
    CHECK_EQ(word_after("recpower-sync", flush_then_sync), 42);
}

/* state: a writer's open says durably that the space is in use, so the
 * open after a power failure recovers */
static void open_then_fail(const char *path)
{
    allocator_space_t *s = open_pmem(path);
    REQUIRE(s != NULL && persistent_malloc(s, 100) != NULL);
}

static void case_state(void)
{
    const char *path = t_path("recpower-state");
    unlink(path);
    allocator_space_t *s = open_pmem(path);
    REQUIRE(s != NULL && persistent_space_close(s) == 0);
    powered(path, open_then_fail);
    s = open_pmem(path);
    REQUIRE(s != NULL);
    struct persistent_info info;
    REQUIRE(persistent_space_info(s, &info) == 0);
    CHECK_EQ(info.clean_at_open, 0);
    CHECK_EQ(info.recovered, 1);
    REQUIRE(persistent_space_close(s) == 0);
    unlink(path);
}

/* abort: a change the program wrote back inside the transaction is
 * undone on file when the abort returns */
static void persist_then_abort(const char *path)
{
    allocator_space_t *s;
    struct root *r = root_in(path, &s);
    r->word = 1;
    persistent_persist(&r->word, 8);
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_add(s, &r->word, 8) == 0);
    r->word = 2;
    persistent_persist(&r->word, 8);
    REQUIRE(persistent_tx_abort(s) == 0);
}

static void case_abort(void)
{
    CHECK_EQ(word_after("recpower-abort", persist_then_abort), 1);
}

/* lanes: a publishing call cut at each of its points, the open's
 * recovery, *dest filled again, and the power fails.  4 MiB: superblocks
 * of 64 KiB, so a 16-byte block's allocation and remote words are lines
 * apart (in a smaller space one write-back took both, and hid the other's
 * loss). */
static int lane_op;
enum { FILLERS = 10 };

static void lane_body(const char *path, uint64_t k, void *arg)
{
    (void)k;
    (void)arg;
    allocator_space_t *s = open_pmem(path);
    if (s == NULL)
        _exit(3);
    struct root *r = persistent_find_root(s, TAG);
    if (r == NULL)
        _exit(4);
    if (lane_op == 0)
        REQUIRE(persistent_alloc_into(s, &r->slot, 16) == 0);
    else if (lane_op == 1)
        REQUIRE(persistent_free_from(s, &r->slot) == 0);
    else
        REQUIRE(persistent_realloc_into(s, &r->slot, 300) == 0);
    _exit(0);
}

static void open_and_reuse(const char *path)
{
    allocator_space_t *s = open_pmem(path);
    REQUIRE(s != NULL);
    struct root *r = persistent_find_root(s, TAG);
    REQUIRE(r != NULL);
    if (r->slot == 0)
        REQUIRE(persistent_alloc_into(s, &r->slot, 16) == 0);
}

static void lane_template(const char *path)
{
    allocator_space_t *s;
    struct root *r = root_in(path, &s);
    REQUIRE(persistent_alloc_into(s, &r->keep, 16) == 0);
    for (int i = 0; i < FILLERS; i++)
        REQUIRE(persistent_malloc(s, 16) != NULL);
    if (lane_op != 0)
        REQUIRE(persistent_alloc_into(s, &r->slot, 16) == 0);
    REQUIRE(persistent_space_close(s) == 0);
}

static void case_lanes(void)
{
    static const char *names[] = {"alloc_into", "free_from", "realloc_into"};
    const char *tmpl = t_path("recpower-lt"), *work = t_path("recpower-lw");
    ch_mode = PM_CRASH_POWER;
    ch_mode_name = "power";
    space_size = 4u << 20;
    for (lane_op = 0; lane_op < 3; lane_op++) {
        unlink(tmpl);
        lane_template(tmpl);
        int bad = 0;
        uint64_t k = 1;
        for (;; k++) {
            ch_copy_file(tmpl, work);
            if (ch_run_child(names[lane_op], lane_body, NULL, work, k, 11, NULL) == 0)
                break;
            powered(work, open_and_reuse);
            allocator_space_t *s = open_pmem(work);
            REQUIRE(s != NULL);
            struct persistent_check_report rep;
            if (persistent_check(s, &rep) != 0)
                CH_FAIL(bad, names[lane_op], k, "check: %s", rep.first_error);
            struct root *r = persistent_find_root(s, TAG);
            REQUIRE(r != NULL);
            uint64_t live = 2 + FILLERS;     /* the root, keep, the fillers */
            if (r->slot == 0) {
                CH_FAIL(bad, names[lane_op], k, "*dest is empty");
            } else {
                if (persistent_usable_size(s, persistent_offset_to_ptr(s, r->slot)) == 0)
                    CH_FAIL(bad, names[lane_op], k, "the block *dest names is not live");
                live++;
            }
            if (rep.live_blocks != live)
                CH_FAIL(bad, names[lane_op], k, "%llu live blocks, %llu reachable",
                        (unsigned long long)rep.live_blocks, (unsigned long long)live);
            REQUIRE(persistent_space_close(s) == 0);
        }
        printf("lanes: %-12s %3llu points, each recovered and refilled, then the power "
               "failed: %d failures\n", names[lane_op], (unsigned long long)k - 1, bad);
        CHECK_EQ(bad, 0);
    }
    unlink(tmpl);
    unlink(work);
    space_size = 256u << 10;
}

/* recovery: the power fails in a call, then at each point of the open
 * that recovers it; several seeds for the first failure (the model picks
 * which lines in flight land), twelve times as many for a large free,
 * whose two bits' order only some seeds test */
static int rs_op;
enum { SEEDS = 4 };
static const char *rs_names[] = {"large-alloc", "large-free", "new-class"};

static void rs_template(const char *path)
{
    allocator_space_t *s;
    struct root *r = root_in(path, &s);
    if (rs_op == 0) {
        void *a = persistent_malloc(s, 20000);
        REQUIRE(persistent_alloc_into(s, &r->keep, 20000) == 0);
        persistent_free(s, a);
    } else if (rs_op == 1) {
        REQUIRE(persistent_alloc_into(s, &r->slot, 20000) == 0);
        REQUIRE(persistent_alloc_into(s, &r->keep, 20000) == 0);
    } else {
        REQUIRE(persistent_alloc_into(s, &r->keep, 20000) == 0);
    }
    memset(persistent_offset_to_ptr(s, r->keep), 0x6b, 20000);
    persistent_persist(persistent_offset_to_ptr(s, r->keep), 20000);
    REQUIRE(persistent_space_close(s) == 0);
}

static void rs_body(const char *path, uint64_t k, void *arg)
{
    (void)k;
    (void)arg;
    allocator_space_t *s = open_pmem(path);
    if (s == NULL)
        _exit(3);
    struct root *r = persistent_find_root(s, TAG);
    if (r == NULL)
        _exit(4);
    if (rs_op == 0) {
        REQUIRE(persistent_alloc_into(s, &r->slot, 20000) == 0);
    } else if (rs_op == 1) {
        void *p = persistent_offset_to_ptr(s, r->slot);
        r->slot = 0;
        persistent_persist(&r->slot, 8);
        persistent_free(s, p);
    } else {
        REQUIRE(persistent_alloc_into(s, &r->slot, 3000) == 0);
    }
    _exit(0);
}

static void rs_open(const char *path, uint64_t k, void *arg)
{
    (void)k;
    (void)arg;
    (void)open_pmem(path);
    _exit(0);
}

static int rs_judge(const char *w2, uint64_t id)
{
    int bad = 0;
    allocator_space_t *s = open_pmem(w2);
    if (s == NULL) {
        CH_FAIL(bad, rs_names[rs_op], id, "reopen: %s", persistent_errormsg());
        return bad;
    }
    struct persistent_check_report rep;
    if (persistent_check(s, &rep) != 0)
        CH_FAIL(bad, rs_names[rs_op], id, "check: %s", rep.first_error);
    struct root *r = persistent_find_root(s, TAG);
    REQUIRE(r != NULL);
    unsigned char *kp = persistent_offset_to_ptr(s, r->keep);
    if (persistent_usable_size(s, kp) < 20000) {
        CH_FAIL(bad, rs_names[rs_op], id, "keep is not live");
    } else {
        for (int i = 0; i < 20000; i++)
            if (kp[i] != 0x6b) {
                CH_FAIL(bad, rs_names[rs_op], id, "keep damaged");
                break;
            }
    }
    if (r->slot != 0 && persistent_usable_size(s, persistent_offset_to_ptr(s, r->slot)) == 0)
        CH_FAIL(bad, rs_names[rs_op], id, "*dest is not live");
    void *n = persistent_malloc(s, 20000);
    uint64_t no = n ? (uint64_t)ptr_to_persistent_offset(s, n) : 0;
    if (n != NULL && no < r->keep + 20000 && r->keep < no + 20000)
        CH_FAIL(bad, rs_names[rs_op], id, "keep handed out again");
    REQUIRE(persistent_space_close(s) == 0);
    return bad;
}

static void case_recovery_sweep(void)
{
    const char *tmpl = t_path("recpower-rt"), *w1 = t_path("recpower-r1"),
               *w2 = t_path("recpower-r2");
    ch_mode = PM_CRASH_POWER;
    ch_mode_name = "power";
    for (rs_op = 0; rs_op < 3; rs_op++) {
        unlink(tmpl);
        rs_template(tmpl);
        int bad = 0;
        uint64_t runs = 0, k = 1;
        for (bool past = false; !past; k++) {
            uint64_t seeds = rs_op == 1 ? 12 * SEEDS : SEEDS;
            for (uint64_t seed = 0; seed < seeds && !past; seed++) {
                ch_copy_file(tmpl, w1);
                if (ch_run_child(rs_names[rs_op], rs_body, NULL, w1, k, 13 + seed * 101,
                                 NULL) == 0) {
                    past = true;
                    break;
                }
                bool done = false;
                for (uint64_t k2 = 1; !done; k2++) {
                    ch_copy_file(w1, w2);
                    done = ch_run_child(rs_names[rs_op], rs_open, NULL, w2, k2, 17, NULL) == 0;
                    bad += rs_judge(w2, k * 1000 + k2);
                    runs++;
                }
            }
        }
        printf("recovery: %-11s %3llu points of the call, %llu opens cut and judged: "
               "%d failures\n", rs_names[rs_op], (unsigned long long)k - 2,
               (unsigned long long)runs, bad);
        CHECK_EQ(bad, 0);
    }
    unlink(tmpl);
    unlink(w1);
    unlink(w2);
}

/* auto-log: an automatic transaction whose log goes on in a page it
 * also holds an image of.  The log takes only pages free at the begin
 * (seg_claim), so such a page is one the transaction wrote while it was
 * free at the begin (a block it allocated there: the first write leaves
 * a PAGE entry) and freed again before the log outgrew its block and
 * claimed it.  The restores go newest first, so that image is put back
 * after the images logged in the page itself, and it rewrites them: the
 * drain before it (pm_tx_restore_pages at an open; auto_abort's where
 * holds_log says the page holds the log) makes those restores durable
 * first.  Without it a power failure can land the page rewritten while
 * they are still in flight: the next open walks a log that ends at the
 * JUMP into that page and never makes them again.  Here the images
 * logged there are of a block the transaction overwrote and wrote back,
 * so a restore lost is seen as the transaction's bytes left in it.  The
 * power fails at each point of the open that recovers such a
 * transaction, or of its abort, with several seeds for which lines in
 * flight land.
 *
 * pm_tx_recover's drain before each image is not reached this way, nor
 * any other: the open has put every image back first (pm_tx_restore_pages,
 * which ends with a drain), and that rewrote the page and cut the log at
 * the JUMP into it, so what pm_tx_recover walks lies in no page it puts
 * back, and the images it puts back again are on file already (but for a
 * later image of page 0, a growth's, whose log the next open still has).
 * Where the open skipped pm_tx_restore_pages after its trial, the
 * recovery sweep below fails without that drain. */
enum { AL_KEEP_PAGES = 16, AL_SEEDS = 4 };
static const char *al_names[] = {"auto-log-recovery", "auto-log-abort"};
static int al_op;
static uint64_t al_page;

static void al_template(const char *path)
{
    allocator_space_t *s;
    struct root *r = root_in(path, &s);
    struct persistent_info info;
    REQUIRE(persistent_space_info(s, &info) == 0);
    al_page = info.page_size;
    REQUIRE(persistent_alloc_into(s, &r->keep, AL_KEEP_PAGES * al_page) == 0);
    unsigned char *kp = persistent_offset_to_ptr(s, r->keep);
    for (uint64_t i = 0; i < AL_KEEP_PAGES; i++)
        ch_fill(kp + i * al_page, al_page, r->keep + i * al_page, 1);
    persistent_persist(kp, AL_KEEP_PAGES * al_page);
    REQUIRE(persistent_space_close(s) == 0);
}

/* How many pages the open automatic transaction's log goes on in after
 * an image of the same page: the situation this case is about, which
 * depends on where the allocator puts the block and the log's segment */
static uint64_t al_log_in_imaged(allocator_space_t *s)
{
    struct pm_rt *rt = pm_rt_of(s);
    struct pm_lane *l;
    uint64_t found = 0;
    for (uint32_t i = 0; (l = pub_lane_at(rt, i)) != NULL; i++) {
        uint64_t off = pm_load_acquire(&l->tx_off);
        if (off == 0)
            continue;
        struct pm_txlog *lg = (struct pm_txlog *)(rt->base + off);
        uint64_t state = pm_load_acquire(&lg->state);
        if ((state & PM_TX_PHASE) != PM_TX_ACTIVE)
            continue;
        struct {
            uint64_t off, len;
        } img[64];
        unsigned n_img = 0;
        struct pm_txit it;
        pm_txit_start(rt, lg, state >> 8, &it);
        const struct pm_txent *e;
        while ((e = pm_txit_next(rt, &it)) != NULL) {
            uint64_t at = (uint64_t)((const char *)e - rt->base);
            for (unsigned j = 0; j < n_img; j++)
                if (at >= img[j].off && at - img[j].off < img[j].len) {
                    found++;
                    img[j].len = 0;             /* counted once */
                }
            if ((e->kind_len & 0xff) == PM_TXE_PAGE && n_img < 64) {
                img[n_img].off = e->off;
                img[n_img++].len = e->kind_len >> 8;
            }
        }
    }
    return found;
}

/* In an automatic transaction: a block allocated in pages free at the
 * begin (larger than a segment of the log, so that, freed, it has room
 * for one where seg_claim looks first), its first page written (its
 * image logged) and the block freed; then every page of keep
 * overwritten and written back (the power model keeps only what was),
 * whose images fill the log's block and go on in the pages the freed
 * block held.
 * Recovery: the power fails there.  Abort: the transaction aborts (and
 * the power fails at the crash point, if any), sh->abort_from the crash
 * points passed before it. */
static void al_body(const char *path, uint64_t k, void *arg)
{
    (void)k;
    (void)arg;
    allocator_space_t *s = open_pmem(path);
    if (s == NULL)
        _exit(3);
    struct root *r = persistent_find_root(s, TAG);
    if (r == NULL)
        _exit(4);
    unsigned char *kp = persistent_offset_to_ptr(s, r->keep);
    REQUIRE(persistent_tx_begin_auto(s) == 0);
    unsigned char *b = persistent_malloc(s, 4 * AL_KEEP_PAGES * al_page);
    REQUIRE(b != NULL);
    memset(b, 0x3c, 64);
    persistent_persist(b, 64);
    persistent_free(s, b);
    for (uint64_t i = 0; i < AL_KEEP_PAGES; i++) {
        memset(kp + i * al_page, 0xe1, al_page);
        persistent_persist(kp + i * al_page, al_page);
    }
    REQUIRE(al_log_in_imaged(s) > 0);
    if (al_op == 1) {
        sh->abort_from = pm_crash_points();
        REQUIRE(persistent_tx_abort(s) == 0);
    }
    _exit(0);
}

static void al_die(const char *path)
{
    al_body(path, 0, NULL);
}

/* The space at path opened (recovered) and judged; id: the crash point
 * times 100 plus the seed */
static int al_judge(const char *path, uint64_t id)
{
    int bad = 0;
    allocator_space_t *s = open_pmem(path);
    if (s == NULL) {
        CH_FAIL(bad, al_names[al_op], id, "reopen: %s", persistent_errormsg());
        return bad;
    }
    struct persistent_check_report rep;
    if (persistent_check(s, &rep) != 0)
        CH_FAIL(bad, al_names[al_op], id, "check: %s", rep.first_error);
    else if (rep.live_blocks != 3)              /* the root, keep, the log */
        CH_FAIL(bad, al_names[al_op], id, "%llu live blocks, 3 reachable",
                (unsigned long long)rep.live_blocks);
    struct root *r = persistent_find_root(s, TAG);
    REQUIRE(r != NULL);
    unsigned char *kp = persistent_offset_to_ptr(s, r->keep);
    if (persistent_usable_size(s, kp) < AL_KEEP_PAGES * al_page) {
        CH_FAIL(bad, al_names[al_op], id, "keep is not live");
    } else {
        for (uint64_t i = 0; i < AL_KEEP_PAGES; i++)
            if (!ch_filled(kp + i * al_page, al_page, r->keep + i * al_page, 1)) {
                CH_FAIL(bad, al_names[al_op], id, "page %llu of keep not restored",
                        (unsigned long long)i);
                break;
            }
    }
    REQUIRE(persistent_space_close(s) == 0);
    return bad;
}

static void case_auto_log(void)
{
    const char *tmpl = t_path("recpower-at"), *w1 = t_path("recpower-a1"),
               *w2 = t_path("recpower-a2");
    ch_mode = PM_CRASH_POWER;
    ch_mode_name = "power";
    space_size = 1u << 20;
    unlink(tmpl);
    al_template(tmpl);
    /* recovery: the transaction's log on file, then the open cut at each
     * of its points */
    al_op = 0;
    ch_copy_file(tmpl, w1);
    powered(w1, al_die);
    int bad = 0;
    uint64_t runs = 0, k = 1;
    for (bool done = false; !done; k++)
        for (uint64_t seed = 0; seed < AL_SEEDS && !done; seed++) {
            ch_copy_file(w1, w2);
            done = ch_run_child(al_names[al_op], rs_open, NULL, w2, k, 19 + seed * 101,
                                NULL) == 0;
            bad += al_judge(w2, k * 100 + seed);
            runs++;
        }
    printf("auto-log: recovery %3llu points of the open, %llu opens cut and judged: "
           "%d failures\n", (unsigned long long)k - 2, (unsigned long long)runs, bad);
    CHECK_EQ(bad, 0);
    /* abort: the power fails at each of its points */
    al_op = 1;
    ch_copy_file(tmpl, w1);
    REQUIRE(ch_run_child(al_names[al_op], al_body, NULL, w1, 0, 0, NULL) == 0);
    REQUIRE(al_judge(w1, 0) == 0);
    bad = 0;
    runs = 0;
    for (k = sh->abort_from + 1;; k++) {
        bool done = false;
        for (uint64_t seed = 0; seed < AL_SEEDS && !done; seed++) {
            ch_copy_file(tmpl, w1);
            done = ch_run_child(al_names[al_op], al_body, NULL, w1, k, 23 + seed * 101,
                                NULL) == 0;
            bad += al_judge(w1, k * 100 + seed);
            runs++;
        }
        if (done)
            break;
    }
    printf("auto-log: abort    %3llu points of the abort, %llu cut and judged: "
           "%d failures\n", (unsigned long long)(k - 1 - sh->abort_from),
           (unsigned long long)runs, bad);
    CHECK_EQ(bad, 0);
    unlink(tmpl);
    unlink(w1);
    unlink(w2);
    space_size = 256u << 10;
}

/* run-end: a transaction frees a run, the next one's commit makes it
 * reusable, a longer run is allocated from the same first page, its last
 * page written and persisted, and the power fails.  The freed run's
 * cleared end bit must have reached the file with the free (a commit's
 * frees write it back; its fence comes with the next commit), else the
 * longer run ends there after recovery, the pages past it free, and the
 * check calls that clean.  The two end bits are 600 pages apart, in
 * different lines of the bitmap, so the longer run's commit does not
 * write the stale one back by chance. */
enum { RE_OLD = 100, RE_NEW = 700 };

static void run_end_body(const char *path)
{
    allocator_space_t *s;
    struct root *r = root_in(path, &s);
    size_t pg = pm_rt_of(s)->page_size;
    /* the thread's log first, below the run */
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_add(s, &r->word, 8) == 0);
    r->word = 4;
    REQUIRE(persistent_tx_commit(s) == 0);
    void *x = persistent_malloc(s, RE_OLD * pg);
    REQUIRE(x != NULL);
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_free(s, x) == 0);
    REQUIRE(persistent_tx_commit(s) == 0);
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_add(s, &r->word, 8) == 0);
    r->word = 5;
    REQUIRE(persistent_tx_commit(s) == 0);
    unsigned char *y = persistent_malloc(s, RE_NEW * pg);
    if (y != x)                         /* the layout this case needs */
        fprintf(stderr, "run-end: the longer run starts %ld pages from the freed one\n",
                (long)(((char *)y - (char *)x) / (long)pg));
    REQUIRE(y == x);                    /* first fit: from the same page */
    memset(y + (RE_NEW - 1) * pg, 0x5a, pg);
    persistent_persist(y + (RE_NEW - 1) * pg, pg);
    r->keep = persistent_offset_from_ptr(s, y);
    persistent_persist(&r->keep, sizeof r->keep);
}

static void case_run_end(void)
{
    const char *path = t_path("recpower-runend");
    unlink(path);
    uint64_t was = space_size;
    space_size = 8u << 20;
    powered(path, run_end_body);
    allocator_space_t *s = open_pmem(path);
    REQUIRE(s != NULL);
    size_t pg = pm_rt_of(s)->page_size;
    struct root *r = persistent_find_root(s, TAG);
    REQUIRE(r != NULL && r->keep != 0);
    unsigned char *y = persistent_offset_to_ptr(s, r->keep);
    CHECK_EQ(persistent_usable_size(s, y), RE_NEW * pg);
    CHECK(y[(RE_NEW - 1) * pg] == 0x5a && y[RE_NEW * pg - 1] == 0x5a);
    struct persistent_check_report rep;
    CHECK(persistent_check(s, &rep) == 0);
    REQUIRE(persistent_space_close(s) == 0);
    unlink(path);
    space_size = was;
}

/* stale-salt: entries of a transaction cut before its state word said it
 * was active, read as a later one's (a review of the fourth log format,
 * its reproducer made a case).  A: a transaction's first tx_add (or
 * tx_alloc) loses the power at its entry's fence, the log head's line
 * landing torn (the power model lands a pending line word by word): the
 * entry whole, the state word still idle.  B: the program writes the
 * root's word 1 -> 2 and writes it back (or allocates a block into the
 * root).  C: the next transaction, of the same generation, loses the
 * power at its first write-back, the state word landing active.  D: the
 * open that recovers C must not take A's entry for C's: the word stays
 * 2, the root's block live.  Salts drawn by each transaction and written
 * beside the state word failed it at trial 30 (the state landed, the
 * salt not); salts drawn at each open, after recovery, and written back
 * (pm_tx_salt_logs) pass.  Mutant txlog-salts-not-drawn. */
static int stale_salt_step(const char *path, int which, bool alloc, uint64_t seed, uint64_t k)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        pm_crash_arm(0, which == 0 ? PM_CRASH_POWER : PM_CRASH_POWER_EVICT, seed);
        allocator_space_t *s = open_pmem(path);
        struct root *r = s != NULL ? persistent_root_get(s, TAG, sizeof *r, NULL) : NULL;
        if (r == NULL)
            _exit(3);
        if (which == 0) {               /* word 1, one transaction committed */
            r->word = 1;
            persistent_persist(&r->word, 8);
            if (persistent_tx_begin(s) != 0 || persistent_tx_add(s, &r->keep, 8) != 0)
                _exit(4);
            r->keep = 7;
            if (persistent_tx_commit(s) != 0 || persistent_space_close(s) != 0)
                _exit(5);
            _exit(0);
        }
        if (which == 2) {               /* B: a durable write */
            if (r->word != 1)
                _exit(6);
            r->word = 2;
            persistent_persist(&r->word, 8);
            if (alloc) {
                if (persistent_alloc_into(s, &r->slot, 100) != 0)
                    _exit(7);
                memset(persistent_offset_to_ptr(s, r->slot), 0xa5, 100);
                persistent_persist(persistent_offset_to_ptr(s, r->slot), 100);
            }
            _exit(persistent_space_close(s) == 0 ? 0 : 8);
        }
        /* A (1) or C (3): the power fails inside the first call */
        if (which == 1 && alloc)
            (void)persistent_malloc(s, 100);    /* a superblock cached */
        pm_crash_arm(k, PM_CRASH_POWER_EVICT, seed);
        (void)persistent_tx_begin(s);
        if (which == 1 && alloc)
            (void)persistent_tx_alloc(s, 100);
        else
            (void)persistent_tx_add(s, which == 1 ? (void *)&r->word : (void *)&r->keep, 8);
        _exit(9);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static void case_stale_salt(void)
{
    const char *p = t_path("recpower-salt");
    char path[256], keep[300];
    snprintf(path, sizeof path, "%s", p);
    snprintf(keep, sizeof keep, "%s.keep", path);
    int trials = 60, runs = 0, bad = 0;
    for (int alloc = 0; alloc < 2 && bad == 0; alloc++)
        for (int t = 0; t < trials && bad == 0; t++) {
            unlink(path);
            REQUIRE(stale_salt_step(path, 0, alloc, 1, 0) == 0);
            (void)stale_salt_step(path, 1, alloc, 1000 + (uint64_t)t, 3);     /* A */
            if (stale_salt_step(path, 2, alloc, 5, 0) != 0)                  /* B */
                continue;               /* A's state landed: rolled back, word 1 then */
            ch_copy_file(path, keep);
            for (int c = 0; c < 8 && bad == 0; c++) {
                ch_copy_file(keep, path);
                (void)stale_salt_step(path, 3, alloc, 77 * (uint64_t)t + (uint64_t)c, 1);  /* C */
                allocator_space_t *s = open_pmem(path);                        /* D */
                REQUIRE(s != NULL);
                struct root *r = persistent_find_root(s, TAG);
                REQUIRE(r != NULL);
                runs++;
                if (r->word != 2) {
                    fprintf(stderr, "stale-salt: %s trial %d seed %d: word %llu after recovery, "
                            "2 written back before\n", alloc ? "alloc" : "snapshot", t, c,
                            (unsigned long long)r->word);
                    bad++;
                } else if (alloc) {
                    struct persistent_check_report rep;
                    void *n = persistent_malloc(s, 100);
                    if (persistent_check(s, &rep) != 0 ||
                        (n != NULL && ptr_to_persistent_offset(s, n) == r->slot)) {
                        fprintf(stderr, "stale-salt: alloc trial %d seed %d: the root's "
                                "block freed by recovery\n", t, c);
                        bad++;
                    }
                }
                REQUIRE(persistent_space_close(s) == 0);
            }
        }
    CHECK_EQ(bad, 0);
    CHECK(runs > 0);
    printf("stale-salt: %d recoveries, %d took a cut transaction's entries\n", runs, bad);
    unlink(path);
    unlink(keep);
}

int main(int argc, char **argv)
{
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
#define PICK(n) (argc < 2 || strcmp(argv[1], (n)) == 0)
    if (PICK("tx-rollback"))
        case_tx_rollback();
    if (PICK("sync"))
        case_sync();
    if (PICK("state"))
        case_state();
    if (PICK("abort"))
        case_abort();
    if (PICK("lanes"))
        case_lanes();
    if (PICK("recovery"))
        case_recovery_sweep();
    if (PICK("auto-log"))
        case_auto_log();
    if (PICK("run-end"))
        case_run_end();
    if (PICK("stale-salt"))
        case_stale_salt();
    return t_done();
}

/* Transactions at every crash point (G7):  test_txcrash MODE [SCENARIO...]
 *
 * MODE is kill (PROCESS durability, the process dies at the point), power
 * or evict (PMEM durability under crashsim.c's power-failure model).  As
 * in test_crashpoints, each scenario is a fixed sequence run on a copy of a
 * prepared space, and for k = 1, 2, ... a child dies at crash point k; the
 * parent reopens the space (recovery) and requires:
 *   - persistent_check finds nothing, no transaction is left open;
 *   - the bank's invariant: the accounts sum to what they began with;
 *   - every transaction whose commit returned is there: the bank's
 *     sequence number, raised by each transaction, is at least the one
 *     the child saw after its last outermost commit (kept in memory the
 *     child shares with the parent);
 *   - every receipt the bank names is a live block of its size whose
 *     contents are whole (a committed transaction's blocks are durable);
 *   - the blob, changed by big transactions, is one version or the other,
 *     never a mix;
 *   - no block leaked: the live blocks are exactly the bank, the blob, the
 *     receipts and the transaction log;
 *   - everything left can be allocated and written without touching the
 *     bank's blocks.
 * The auto scenarios do the same in automatic transactions (plain writes,
 * plain malloc and free, explicit calls and manual transactions nested in
 * them, the publishing calls and resizes); auto-grow on a growable space
 * created small, which they grow for their blocks and log.  The recovery scenario dies in a transaction
 * first (manual, automatic, automatic that grew the space), then sweeps
 * the crash points of the open that rolls it back. */
#include "check.h"

#include <pthread.h>
#include <sys/mman.h>

#include "internal.h"
#include "crash_harness.h"

#define BANK_TAG 0x62616e6bull
#define BLOB_TAG 0x626c6f62ull
#define N 16
#define BLOB (96u << 10)        /* more than a log block holds */

struct bank {
    uint64_t magic;
    uint64_t seq;               /* raised by every transaction */
    int64_t acct[N];
    persistent_offset_t rec[N];
    uint64_t rec_size[N];
    uint64_t rec_gen[N];
    persistent_offset_t extra;  /* a plain allocation (reuse scenario) */
};

/* The pattern of a receipt or the blob's version g. */
static void fill(unsigned char *p, size_t n, uint64_t g)
{
    ch_fill(p, n, 0, g);
}

static bool filled(const unsigned char *p, size_t n, uint64_t g)
{
    return ch_filled(p, n, 0, g);
}

static allocator_space_t *S;
static struct bank *B;
static unsigned char *BL;
static uint64_t *committed;     /* shared: B->seq after the last commit that
                                   returned at depth 0 */

static void commit(void)
{
    REQUIRE(persistent_tx_commit(S) == 0);
    if (persistent_tx_depth(S) == 0)
        *committed = B->seq;
}

/* One transfer, with a receipt in slot k replacing the one there. */
static void transfer(int i, int j, int64_t amt, int k, size_t size, uint64_t g, bool abort_it)
{
    REQUIRE(persistent_tx_begin(S) == 0);
    REQUIRE(persistent_tx_add(S, &B->acct[i], 8) == 0);
    REQUIRE(persistent_tx_add(S, &B->acct[j], 8) == 0);
    REQUIRE(persistent_tx_add(S, &B->seq, 8) == 0);
    B->seq++;
    B->acct[i] -= amt;
    B->acct[j] += amt;
    REQUIRE(persistent_tx_add(S, &B->rec[k], 8) == 0);
    REQUIRE(persistent_tx_add(S, &B->rec_size[k], 8) == 0);
    REQUIRE(persistent_tx_add(S, &B->rec_gen[k], 8) == 0);
    if (B->rec[k] != 0)
        REQUIRE(persistent_tx_free(S, persistent_offset_to_ptr(S, B->rec[k])) == 0);
    unsigned char *r = persistent_tx_alloc(S, size);
    REQUIRE(r != NULL);
    fill(r, size, g);
    B->rec[k] = ptr_to_persistent_offset(S, r);
    B->rec_size[k] = size;
    B->rec_gen[k] = g;
    if (abort_it)
        REQUIRE(persistent_tx_abort(S) == 0);
    else
        commit();
}

/* A new version of the blob: a stamp at each end, the pattern between. */
static void blob_version(uint64_t v, bool abort_it)
{
    REQUIRE(persistent_tx_begin(S) == 0);
    REQUIRE(persistent_tx_add(S, BL, BLOB) == 0);
    REQUIRE(persistent_tx_add(S, &B->seq, 8) == 0);
    B->seq++;
    memcpy(BL, &v, 8);
    fill(BL + 8, BLOB - 16, v);
    memcpy(BL + BLOB - 8, &v, 8);
    if (abort_it)
        REQUIRE(persistent_tx_abort(S) == 0);
    else
        commit();
}

/* ---- scenarios ---- */

static void sc_transfers(void)
{
    static const size_t sizes[] = {40, 300, 3000, 16000, 70000, 100};   /* 70000: a page run */
    for (int n = 0; n < 12; n++)
        transfer(n % N, (n * 7 + 3) % N, 10 + n, n % 5, sizes[n % 6], 1000 + (uint64_t)n,
                 n % 4 == 3);
}

static void sc_blob(void)
{
    blob_version(2, false);
    blob_version(3, true);
    blob_version(4, false);
}

static void sc_nested(void)
{
    REQUIRE(persistent_tx_begin(S) == 0);
    transfer(1, 2, 5, 6, 200, 77, false);        /* nested: flattens */
    transfer(3, 4, 6, 7, 200, 78, false);
    commit();
    REQUIRE(persistent_tx_begin(S) == 0);
    transfer(5, 6, 7, 6, 200, 79, false);
    REQUIRE(persistent_tx_abort(S) == 0);         /* the whole of it */
}

/* Plain allocations between transactions that free blocks of their size:
 * a block a committed transaction freed must not be handed out while a
 * crash could still make recovery finish that free (it would free the
 * plain allocation under the program). */
static void sc_reuse(void)
{
    for (int n = 0; n < 7; n++) {
        int k = n % 5;
        size_t size = 64 + 100 * (size_t)k;     /* the size of slot k's receipt */
        transfer(k, (k + 3) % N, 2, k, size, 500 + (uint64_t)n, n == 4);
        if (B->extra != 0)
            REQUIRE(persistent_free_from(S, &B->extra) == 0);
        REQUIRE(persistent_alloc_into(S, &B->extra, size) == 0);
        memset(persistent_offset_to_ptr(S, B->extra), 0xe5, size);
    }
}

/* A transaction that makes more blocks than its lists look through (the
 * table of tx.c) and then writes into the first: a snapshot there must not
 * be logged, or an abort or a recovery stopped after freeing the block
 * leaves a log that names a range in no live block, and the space no
 * longer opens.  Aborted once; then committed with every block freed. */
enum { MANY = 70 };

static void many_body(unsigned char **t)
{
    REQUIRE(persistent_tx_begin(S) == 0);
    REQUIRE(persistent_tx_add(S, &B->seq, 8) == 0);
    B->seq++;
    for (int i = 0; i < MANY; i++)
        REQUIRE((t[i] = persistent_tx_alloc(S, 48 + (size_t)(i % 3) * 100)) != NULL);
    REQUIRE(persistent_tx_add(S, t[0], 40) == 0);
    memset(t[0], 0x5a, 40);
}

static void sc_many(void)
{
    unsigned char *t[MANY];
    many_body(t);
    REQUIRE(persistent_tx_abort(S) == 0);
    many_body(t);
    for (int i = 0; i < MANY; i++)
        REQUIRE(persistent_tx_free(S, t[i]) == 0);
    commit();
}

static void *bigfree_other(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2; i++) {
        REQUIRE(persistent_alloc_into(S, &B->extra, 90u << 10) == 0);
        char *p = persistent_offset_to_ptr(S, B->extra);
        memset(p, 0xa5, 90u << 10);
        persistent_persist(p, 90u << 10);
        REQUIRE(persistent_free_from(S, &B->extra) == 0);
    }
    return NULL;
}

/* Frees whose entries sit past the log's half, in pages the transaction
 * claimed (after a snapshot of the blob), then another transaction that
 * claims pages: the first one's pages must stay its own until its frees
 * are finished. */
static void sc_bigfree(void)
{
    for (int n = 0; n < 2; n++) {
        REQUIRE(persistent_tx_begin(S) == 0);
        REQUIRE(persistent_tx_add(S, BL, BLOB) == 0);
        uint64_t v = 10 + (uint64_t)n;
        memcpy(BL, &v, 8);
        fill(BL + 8, BLOB - 16, v);
        memcpy(BL + BLOB - 8, &v, 8);
        transfer(n, n + 8, 1, n, 64 + 100 * (size_t)n, 600 + (uint64_t)n, false);
        commit();
        /* another thread's allocations, which would take those pages if
         * they were free, and write them durably while this thread's
         * frees may not be durable yet (no fence since the commit) */
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, bigfree_other, NULL) == 0);
        REQUIRE(pthread_join(t, NULL) == 0);
    }
    transfer(3, 9, 1, 3, 300, 700, false);
}

/* ---- automatic transactions ---- */

/* A transfer in an automatic transaction: plain writes, and the receipt
 * replaced with plain persistent_free and persistent_malloc, which an
 * abort undoes as it does the writes; nothing snapshotted by hand. */
static void auto_transfer(int i, int j, int64_t amt, int k, size_t size, uint64_t g,
                          bool abort_it)
{
    REQUIRE(persistent_tx_begin_auto(S) == 0);
    B->seq++;
    B->acct[i] -= amt;
    B->acct[j] += amt;
    if (B->rec[k] != 0)
        persistent_free(S, persistent_offset_to_ptr(S, B->rec[k]));
    unsigned char *r = persistent_malloc(S, size);
    REQUIRE(r != NULL);
    fill(r, size, g);
    B->rec[k] = ptr_to_persistent_offset(S, r);
    B->rec_size[k] = size;
    B->rec_gen[k] = g;
    if (abort_it)
        REQUIRE(persistent_tx_abort(S) == 0);
    else
        commit();
}

/* A new version of the blob written in place in an automatic transaction:
 * every one of its pages snapshotted at its first write. */
static void auto_blob(uint64_t v, bool abort_it)
{
    REQUIRE(persistent_tx_begin_auto(S) == 0);
    B->seq++;
    memcpy(BL, &v, 8);
    fill(BL + 8, BLOB - 16, v);
    memcpy(BL + BLOB - 8, &v, 8);
    if (abort_it)
        REQUIRE(persistent_tx_abort(S) == 0);
    else
        commit();
}

/* Transfers (small blocks, a page run; every third aborted), then the
 * blob twice (the second aborted). */
static void sc_auto(void)
{
    static const size_t sizes[] = {40, 300, 70000, 3000};
    for (int n = 0; n < 6; n++)
        auto_transfer(n % N, (n * 5 + 1) % N, 3 + n, n % 5, sizes[n % 4], 2000 + (uint64_t)n,
                      n % 3 == 2);
    auto_blob(5, false);
    auto_blob(6, true);
}

/* The explicit calls inside an automatic transaction, and a manual
 * transaction nested in one (it flattens into it): committed once,
 * aborted once, then an automatic transaction nested in a manual one's
 * place inside another automatic one. */
static void sc_auto_mixed(void)
{
    for (int n = 0; n < 2; n++) {
        REQUIRE(persistent_tx_begin_auto(S) == 0);
        B->acct[3] -= 7;                                /* plain */
        B->acct[4] += 7;
        transfer(5, 6, 4, 6 + n, 200, 2100 + (uint64_t)n, false);  /* nested */
        REQUIRE(persistent_tx_add(S, &B->acct[7], 8) == 0);     /* covered twice */
        B->acct[7] -= 2;
        B->acct[8] += 2;
        unsigned char *r = persistent_tx_alloc(S, 500);
        REQUIRE(r != NULL);
        fill(r, 500, 2200 + (uint64_t)n);
        if (B->rec[9] != 0)
            REQUIRE(persistent_tx_free(S, persistent_offset_to_ptr(S, B->rec[9])) == 0);
        B->rec[9] = ptr_to_persistent_offset(S, r);
        B->rec_size[9] = 500;
        B->rec_gen[9] = 2200 + (uint64_t)n;
        if (n == 1)
            REQUIRE(persistent_tx_abort(S) == 0);
        else
            commit();
    }
    REQUIRE(persistent_tx_begin_auto(S) == 0);
    auto_transfer(10, 11, 9, 10, 90, 2300, false);      /* nested: flattens */
    auto_blob(7, false);
    commit();
}

/* The publishing calls and resizes inside automatic transactions: a
 * receipt replaced through alloc_into and free_from, another resized
 * with realloc_into (in place, then moved), one made with calloc, then a
 * page run grown and shrunk with persistent_reallocate; each refilled
 * with its new pattern; the third of four aborted. */
static void sc_auto_publish(void)
{
    static const size_t sizes[] = {200, 5000, 90, 40000};
    for (int n = 0; n < 4; n++) {
        REQUIRE(persistent_tx_begin_auto(S) == 0);
        B->seq++;
        B->acct[n] -= 1;
        B->acct[n + 1] += 1;
        int k = 10 + n % 2;
        uint64_t g = 2500 + 10 * (uint64_t)n;
        if (B->rec[k] != 0)
            REQUIRE(persistent_free_from(S, &B->rec[k]) == 0);
        REQUIRE(persistent_alloc_into(S, &B->rec[k], sizes[n]) == 0);
        fill(persistent_offset_to_ptr(S, B->rec[k]), sizes[n], g);
        B->rec_size[k] = sizes[n];
        B->rec_gen[k] = g;
        int j = n % 5;                              /* a receipt of the setup's */
        size_t grown = B->rec_size[j] + 24 + 3000 * (size_t)(n % 2);
        REQUIRE(persistent_realloc_into(S, &B->rec[j], grown) == 0);
        fill(persistent_offset_to_ptr(S, B->rec[j]), grown, g + 1);
        B->rec_size[j] = grown;
        B->rec_gen[j] = g + 1;
        unsigned char *z = persistent_calloc(S, 3, 100);
        REQUIRE(z != NULL);
        for (int i = 0; i < 300; i++)
            REQUIRE(z[i] == 0);
        fill(z, 300, g + 2);
        if (B->rec[12] != 0)
            persistent_free(S, persistent_offset_to_ptr(S, B->rec[12]));
        B->rec[12] = ptr_to_persistent_offset(S, z);
        B->rec_size[12] = 300;
        B->rec_gen[12] = g + 2;
        size_t big = n % 2 ? 30000 : 80000;         /* a page run, shrunk and grown */
        unsigned char *b = B->rec[13] ? persistent_offset_to_ptr(S, B->rec[13]) : NULL;
        b = persistent_reallocate(S, b, big);
        REQUIRE(b != NULL);
        fill(b, big, g + 3);
        B->rec[13] = ptr_to_persistent_offset(S, b);
        B->rec_size[13] = big;
        B->rec_gen[13] = g + 3;
        if (n == 2)
            REQUIRE(persistent_tx_abort(S) == 0);
        else
            commit();
    }
}

/* On a growable space created at its smallest: automatic transactions
 * whose blocks and log need the space to grow, the log's growth writing
 * the header's page a second time (snapshotted again); committed, then
 * aborted (the file stays grown, the pages free again). */
static void sc_auto_grow(void)
{
    for (int n = 0; n < 2; n++) {
        REQUIRE(persistent_tx_begin_auto(S) == 0);
        B->seq++;
        B->acct[12] -= 11;
        B->acct[13] += 11;
        unsigned char *r[3];
        for (int i = 0; i < 3; i++) {
            size_t size = i == 0 ? 600u << 10 : 3000;
            r[i] = persistent_malloc(S, size);
            REQUIRE(r[i] != NULL);
            fill(r[i], size, 2400 + (uint64_t)(3 * n + i));
            int k = 12 + i;
            if (B->rec[k] != 0)
                persistent_free(S, persistent_offset_to_ptr(S, B->rec[k]));
            B->rec[k] = ptr_to_persistent_offset(S, r[i]);
            B->rec_size[k] = size;
            B->rec_gen[k] = 2400 + (uint64_t)(3 * n + i);
        }
        uint64_t v = 20 + (uint64_t)n;
        memcpy(BL, &v, 8);
        fill(BL + 8, BLOB - 16, v);
        memcpy(BL + BLOB - 8, &v, 8);
        if (n == 1)
            REQUIRE(persistent_tx_abort(S) == 0);
        else
            commit();
    }
}

static void setup_bank(void)
{
    B = persistent_root_get(S, BANK_TAG, sizeof *B, NULL);
    REQUIRE(B != NULL);
    B->magic = 0x42414e4b;
    for (int i = 0; i < N; i++)
        B->acct[i] = 1000;
    persistent_persist(B, sizeof *B);
    BL = persistent_root_get(S, BLOB_TAG, BLOB, NULL);
    REQUIRE(BL != NULL);
    uint64_t v = 1;
    memcpy(BL, &v, 8);
    fill(BL + 8, BLOB - 16, 1);
    memcpy(BL + BLOB - 8, &v, 8);
    persistent_persist(BL, BLOB);
    /* the log, and receipts in some slots */
    for (int k = 0; k < 5; k++)
        transfer(k, k + 5, 1, k, 64 + 100 * (size_t)k, 10 + (uint64_t)k, false);
}

struct scenario {
    const char *name;
    void (*run)(void);
    bool grows;                 /* on a growable space (created small) */
};

/* A second thread's first transactions: its lane has no log yet, so the
 * first one makes it (a crash between the log's allocation and its lane
 * naming it leaked the block). */
static void *second_thread(void *arg)
{
    (void)arg;
    transfer(6, 7, 30, 9, 500, 300, false);
    transfer(7, 8, 20, 10, 40, 301, true);
    return NULL;
}

static void sc_second(void)
{
    transfer(9, 10, 15, 12, 100, 299, false);   /* this thread's lane first */
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, second_thread, NULL) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    transfer(8, 9, 10, 11, 300, 302, false);
}

/* A receipt made by persistent_tx_alloc and grown in place by a plain
 * realloc before the commit (a transaction's own block may be resized):
 * the commit must write back all of it, not the size it had at
 * persistent_tx_alloc (in PMEM mode the grown part was lost at a power
 * failure after the commit returned); then a transaction that does not
 * touch it. */
static void sc_grown(void)
{
    REQUIRE(persistent_tx_begin(S) == 0);
    REQUIRE(persistent_tx_add(S, &B->seq, 8) == 0);
    B->seq++;
    REQUIRE(persistent_tx_add(S, &B->rec[12], 8) == 0);
    REQUIRE(persistent_tx_add(S, &B->rec_size[12], 8) == 0);
    REQUIRE(persistent_tx_add(S, &B->rec_gen[12], 8) == 0);
    unsigned char *r = persistent_tx_alloc(S, 90000);
    REQUIRE(r != NULL);
    void *q = r;
    REQUIRE(persistent_realloc(S, q, 180000) && q == r);    /* in place */
    fill(r, 180000, 4000);
    B->rec[12] = ptr_to_persistent_offset(S, r);
    B->rec_size[12] = 180000;
    B->rec_gen[12] = 4000;
    commit();
    transfer(1, 2, 3, 13, 100, 4001, false);
}

static const struct scenario scenarios[] = {
    {"transfers", sc_transfers, false},
    {"blob", sc_blob, false},
    {"nested", sc_nested, false},
    {"reuse", sc_reuse, false},
    {"bigfree", sc_bigfree, false},
    {"many", sc_many, false},
    {"auto", sc_auto, false},
    {"auto-mixed", sc_auto_mixed, false},
    {"auto-publish", sc_auto_publish, false},
    {"auto-grow", sc_auto_grow, true},
    {"second", sc_second, false},
    {"grown", sc_grown, false},
};

/* ---- the sweep ---- */

static bool create_growable;   /* what open_space creates */

static allocator_space_t *open_space(const char *path)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = create_growable ? 256u << 10 : 1u << 20;
    o.max_size = create_growable ? 2u << 20 : 0;
    o.durability = ch_durability();
    allocator_space_t *s;
    return persistent_space_open(path, &o, &s) == 0 ? s : NULL;
}

/* The child of a sweep: opens the copy (recovery), runs the scenario (or
 * nothing: a recovery sweep), closes. */
static void child_body(const char *path, uint64_t k, void *arg)
{
    const struct scenario *sc = arg;
    (void)k;
    *committed = 0;
    S = open_space(path);
    if (S == NULL)
        _exit(3);
    B = persistent_find_root(S, BANK_TAG);
    BL = persistent_find_root(S, BLOB_TAG);
    if (B == NULL || BL == NULL)
        _exit(4);
    if (sc->run)
        sc->run();
    persistent_space_close(S);
}

/* The transaction logs the lanes name: one per lane a thread that ran a
 * transaction held (a log stays with its lane). */
static uint64_t named_logs(allocator_space_t *s)
{
    struct pm_rt *rt = pm_rt_of(s);
    uint64_t n = 0;
    struct pm_lane *l;
    for (uint32_t i = 0; (l = pub_lane_at(rt, i)) != NULL; i++)
        n += pm_load_acquire(&l->tx_off) != 0;
    return n;
}

static int verify(const char *path, uint64_t k, void *arg)
{
    const char *name = ((const struct scenario *)arg)->name;
    int bad = 0;
#define FAILV(...) CH_FAIL(bad, name, k, __VA_ARGS__)
    bad += ch_check_unrecovered(path, name, k);
    allocator_space_t *s = open_space(path);
    if (s == NULL) {
        FAILV("reopen failed: %s", persistent_errormsg());
        return bad;
    }
    struct persistent_check_report rep;
    bad += ch_check_recovered(s, name, k, &rep);
    struct bank *b = persistent_find_root(s, BANK_TAG);
    unsigned char *bl = persistent_find_root(s, BLOB_TAG);
    if (b == NULL || bl == NULL || b->magic != 0x42414e4b) {
        FAILV("bank lost");
        persistent_space_close(s);
        return bad;
    }
    int64_t sum = 0;
    for (int i = 0; i < N; i++)
        sum += b->acct[i];
    if (sum != 1000 * N)
        FAILV("the accounts sum to %lld", (long long)sum);
    if (b->seq < *committed)
        FAILV("a committed transaction was lost: sequence %llu, %llu committed",
              (unsigned long long)b->seq, (unsigned long long)*committed);
    uint64_t live = 2 + named_logs(s);      /* bank, blob, the logs */
    if (b->extra != 0) {
        if (persistent_usable_size(s, persistent_offset_to_ptr(s, b->extra)) == 0)
            FAILV("the plain allocation is not live (a late free took it)");
        else
            live++;
    }
    for (int k2 = 0; k2 < N; k2++) {
        if (b->rec[k2] == 0)
            continue;
        unsigned char *r = persistent_offset_to_ptr(s, b->rec[k2]);
        if (persistent_usable_size(s, r) < b->rec_size[k2]) {
            FAILV("receipt %d is not a live block of its size", k2);
            continue;
        }
        live++;
        if (!filled(r, b->rec_size[k2], b->rec_gen[k2]))
            FAILV("receipt %d: contents damaged", k2);
    }
    uint64_t v1, v2;
    memcpy(&v1, bl, 8);
    memcpy(&v2, bl + BLOB - 8, 8);
    if (v1 != v2 || !filled(bl + 8, BLOB - 16, v1))
        FAILV("the blob is a mix of versions (%llu, %llu)", (unsigned long long)v1,
              (unsigned long long)v2);
    if (rep.live_blocks != live)
        FAILV("%llu live blocks, %llu expected (a leak, or a block lost)",
              (unsigned long long)rep.live_blocks, (unsigned long long)live);
    enum { MAXF = 4096 };
    static void *got[MAXF];
    int n = 0;
    for (size_t sz = 65536; sz >= 16 && n < MAXF; sz /= 2)
        while (n < MAXF && (got[n] = persistent_malloc(s, sz)) != NULL)
            memset(got[n++], 0xdb, sz);
    for (int k2 = 0; k2 < N; k2++)
        if (b->rec[k2] && !filled(persistent_offset_to_ptr(s, b->rec[k2]), b->rec_size[k2],
                                  b->rec_gen[k2]))
            FAILV("receipt %d was handed out again", k2);
    if (!filled(bl + 8, BLOB - 16, v1))
        FAILV("the blob was handed out again");
    for (int i = 0; i < n; i++)
        persistent_free(s, got[i]);
    persistent_space_close(s);
    return bad;
}

static void make_template(const char *path)
{
    S = open_space(path);
    REQUIRE(S != NULL);
    setup_bank();
    REQUIRE(persistent_space_close(S) == 0);
}

static void sweep(const struct scenario *sc)
{
    struct ch_files f;
    ch_files_init(&f, "tx");
    create_growable = sc->grows;
    make_template(f.tmpl);
    create_growable = false;
    struct ch_target t = {sc->name, child_body, verify, (void *)sc, 5};
    ch_sweep(&t, &f, true);
    ch_files_remove(&f);
}

/* Killed in the middle of a big transaction, then killed again at every
 * point of the open that rolls it back. */
static void die_in_blob(void)
{
    REQUIRE(persistent_tx_begin(S) == 0);
    REQUIRE(persistent_tx_add(S, BL, BLOB) == 0);
    fill(BL + 8, BLOB - 16, 9);
    transfer(2, 3, 50, 8, 5000, 99, false);          /* nested */
    raise(SIGKILL);
}

/* Killed with many blocks made, one written after a snapshot request,
 * then killed again at every point of the open that rolls it back. */
static void die_in_many(void)
{
    unsigned char *t[MANY];
    many_body(t);
    raise(SIGKILL);
}

/* Killed in an automatic transaction that wrote the blob, freed and made
 * blocks and snapshotted by hand, then killed again at every point of the
 * open that puts its page images back and rolls it back. */
static void die_in_auto(void)
{
    REQUIRE(persistent_tx_begin_auto(S) == 0);
    B->seq++;
    fill(BL + 8, BLOB - 16, 9);
    transfer(2, 3, 50, 8, 5000, 99, false);          /* nested */
    auto_transfer(4, 5, 60, 1, 70000, 98, false);    /* nested */
    raise(SIGKILL);
}

/* The same on a growable space: the transaction grew it for its blocks
 * and its log, and snapshotted the header's page (the growth writes it). */
static void die_in_auto_grow(void)
{
    REQUIRE(persistent_tx_begin_auto(S) == 0);
    B->seq++;
    fill(BL + 8, BLOB - 16, 9);
    auto_transfer(6, 7, 70, 12, 600u << 10, 97, false);     /* nested */
    auto_transfer(8, 9, 80, 13, 3000, 96, false);
    raise(SIGKILL);
}

static void sweep_recovery(const char *name, void (*die)(void), bool grows)
{
    struct ch_files f;
    ch_files_init(&f, "txr");
    create_growable = grows;
    make_template(f.tmpl);
    create_growable = false;
    int saved = ch_mode;
    ch_mode = PM_CRASH_KILL;
    struct scenario d = {name, die, false}, rec = {name, NULL, false};
    REQUIRE(ch_run_child(d.name, child_body, &d, f.tmpl, 0, 5, NULL) == 1);
    ch_mode = saved;
    struct ch_target t = {rec.name, child_body, verify, &rec, 5};
    ch_sweep(&t, &f, false);
    ch_files_remove(&f);
}

/* Fences per transaction in PMEM durability, counted by the simulation
 * (each fence is one of its crash points). */
static uint64_t fences_of(void (*fn)(void))
{
    uint64_t f0 = pm_crash_fences();
    fn();
    return pm_crash_fences() - f0;
}

static char *F_blk, *F_old;

static void tx_snap_alloc(void)
{
    REQUIRE(persistent_tx_begin(S) == 0);
    REQUIRE(persistent_tx_add(S, F_blk, 64) == 0);
    memset(F_blk, 1, 64);
    char *n = persistent_tx_alloc(S, 100);
    REQUIRE(n != NULL);
    memset(n, 2, 100);
    REQUIRE(persistent_tx_commit(S) == 0);
}

static void tx_snap_alloc_free(void)
{
    REQUIRE(persistent_tx_begin(S) == 0);
    REQUIRE(persistent_tx_add(S, F_blk, 64) == 0);
    memset(F_blk, 3, 64);
    REQUIRE(persistent_tx_alloc(S, 100) != NULL);
    REQUIRE(persistent_tx_free(S, F_old) == 0);
    REQUIRE(persistent_tx_commit(S) == 0);
}

static void tx_snaps8(void)
{
    REQUIRE(persistent_tx_begin(S) == 0);
    for (int i = 0; i < 8; i++) {
        REQUIRE(persistent_tx_add(S, F_blk + 64 * i, 64) == 0);
        memset(F_blk + 64 * i, 4, 64);
    }
    REQUIRE(persistent_tx_commit(S) == 0);
}

static void tx_aborted(void)
{
    REQUIRE(persistent_tx_begin(S) == 0);
    REQUIRE(persistent_tx_add(S, F_blk, 64) == 0);
    memset(F_blk, 5, 64);
    REQUIRE(persistent_tx_alloc(S, 100) != NULL);
    REQUIRE(persistent_tx_abort(S) == 0);
}

/* The fences of a thread's exit after its last transaction, which freed
 * a block (arg non-NULL) or not: the exit settles a free, its bits made
 * durable (a fence) before the state word (another). */
static uint64_t exit_from;

static void *tx_thread(void *arg)
{
    REQUIRE(persistent_tx_begin(S) == 0);       /* makes the thread's log */
    REQUIRE(persistent_tx_commit(S) == 0);
    F_old = persistent_malloc(S, 100);
    tx_snap_alloc_free();
    if (arg != NULL) {
        F_old = persistent_malloc(S, 100);
        tx_snap_alloc_free();
    } else {
        tx_snap_alloc();
    }
    exit_from = pm_crash_fences();
    return NULL;
}

static uint64_t exit_fences(bool freed)
{
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, tx_thread, freed ? (void *)1 : NULL) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    return pm_crash_fences() - exit_from;
}

static void count_fences(void)
{
    const char *p = t_path("txfences");
    pm_crash_arm(0, PM_CRASH_KILL, 1);          /* count only */
    ch_mode = PM_CRASH_POWER;                   /* PMEM durability */
    S = open_space(p);
    REQUIRE(S != NULL);
    F_blk = persistent_malloc(S, 4096);
    REQUIRE(F_blk != NULL);
    REQUIRE(persistent_malloc(S, 100) != NULL);     /* the class's superblock */
    REQUIRE(persistent_tx_begin(S) == 0);       /* makes the thread's log */
    REQUIRE(persistent_tx_commit(S) == 0);
    uint64_t a = fences_of(tx_snap_alloc);
    F_old = persistent_malloc(S, 100);
    uint64_t b = fences_of(tx_snap_alloc_free);
    F_old = persistent_malloc(S, 100);
    uint64_t b2 = fences_of(tx_snap_alloc_free);    /* the last one's free done */
    uint64_t c = fences_of(tx_snaps8);
    uint64_t d = fences_of(tx_aborted);
    uint64_t x0 = exit_fences(false), x1 = exit_fences(true);
    printf("a thread's exit: %llu fences, %llu when its last transaction freed a block\n",
           (unsigned long long)x0, (unsigned long long)x1);
    CHECK_EQ(x1 - x0, 2);                       /* the settle: bits, then state */
    printf("fences per transaction (PMEM): 1 snapshot + 1 allocation + commit: %llu; "
           "+ 1 free: %llu (%llu after one that freed); 8 snapshots: %llu; 1 snapshot "
           "+ 1 allocation, aborted: %llu\n", (unsigned long long)a, (unsigned long long)b,
           (unsigned long long)b2, (unsigned long long)c, (unsigned long long)d);
    CHECK_EQ(a, 4);
    CHECK_EQ(b, 4);
    CHECK_EQ(b2, 4);
    CHECK_EQ(c, 10);
    CHECK_EQ(d, 4);
    REQUIRE(persistent_space_close(S) == 0);
    unlink(p);
}

int main(int argc, char **argv)
{
    committed = mmap(NULL, sizeof *committed, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(committed != MAP_FAILED);
    if (argc > 1 && strcmp(argv[1], "fences") == 0) {
        count_fences();
        return t_done();
    }
    ch_set_mode(argc > 1 ? argv[1] : "kill");
    for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++)
        if (ch_picked(argc, argv, scenarios[i].name))
            sweep(&scenarios[i]);
    if (ch_picked(argc, argv, "recovery")) {
        sweep_recovery("die-in-blob", die_in_blob, false);
        sweep_recovery("die-in-many", die_in_many, false);
        sweep_recovery("die-in-auto", die_in_auto, false);
        sweep_recovery("die-in-auto-grow", die_in_auto_grow, true);
    }
    return ch_done();
}

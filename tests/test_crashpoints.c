/* Deterministic crash points (G2) and simulated power failure (G3).
 *
 *   test_crashpoints MODE [SCENARIO...]     MODE: kill | power | evict
 *
 * Each scenario is a fixed sequence of operations run on a copy of a
 * prepared space.  For k = 1, 2, ... a forked child arms crash point k
 * (every flush and every fence of the library, and of the application's
 * own persistent_persist, is one) and runs the scenario; it dies by SIGKILL
 * at point k.  The parent then reopens the file, which runs recovery, and
 * requires a G2 state:
 *   - persistent_check finds no error;
 *   - recovery left nothing to do: no lane in flight, no crash leftover
 *     (orphan bits: stray END/KIND bits, remote bits on free blocks, torn
 *     lanes), no remote free pending, no superblock without a live block;
 *   - every block published in the model (a root) is live, and every one
 *     whose seal says its contents were complete still has them -- also
 *     across a realloc-into, which keeps the slot sealed for the bytes the
 *     old and the new block share (the pattern depends on the slot, not on
 *     where its block is), so the copy must be durable before *dest moves;
 *   - live blocks not reachable from the model (or the chains of overflow
 *     root and lane tables) number at most the scenario's in-flight bound
 *     (0 for publishing calls and roots, 1 for a plain malloc or free in
 *     flight), plus, where the scenario makes an overflow table, that one
 *     table (allocated, not yet linked: an internal allocation in flight);
 *   - allocating everything that is left, and filling it, changes no
 *     published block (nothing live was handed out again).
 * The sweep ends at the first k the child survives.
 *
 * kill: the process dies, the page cache keeps every store (PROCESS mode);
 *   recovery's repairs written with pwrite are crash points too.
 * power: PMEM mode on a private mapping, under crashsim.c's model: a
 *   fence makes durable the fencing thread's flushed lines (content from
 *   the flush or the fence); lines flushed and not fenced land torn, word
 *   by word; a file extension not synced may be undone.
 * evict: power, plus any dirty line never flushed, torn the same way.
 *
 * In power mode two races run as well: one thread is stopped by the test
 * right before one of its flushes (a wrapper around the space's flush
 * table) while another goes on, then the power fails -- what the stopped
 * thread stored but did not write back is lost, so the other one's
 * progress must not have depended on it. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"
#include "crash_harness.h"

#define MODEL_TAG 0x6d6f64656cull
#define NSLOT 32

struct model {
    uint64_t magic;
    persistent_offset_t slot[NSLOT];
    uint64_t size[NSLOT];
    uint64_t gen[NSLOT];
    uint64_t seal[NSLOT];
};

struct root_obj {
    uint64_t seal;
    uint64_t tag;
    unsigned char payload[200];
};

/* What a slot's seal and pattern are keyed by: the slot, not its block's
 * offset, so a block moved by realloc-into keeps showing its prefix. */
static uint64_t key_of(int i)
{
    return 0x736c6f7400000000ull + (uint64_t)i;
}

/* ---- operations on the model ---- */

static allocator_space_t *S;
static struct model *M;
static uint64_t G;

static void persist(const void *p, size_t n)
{
    persistent_persist(p, n);
}

static void unseal(int i)
{
    M->seal[i] = 0;
    persist(&M->seal[i], 8);
}

/* Slot i unsealed: fill its block, then seal it. */
static void seal(int i, size_t n)
{
    unsigned char *p = persistent_offset_to_ptr(S, M->slot[i]);
    uint64_t g = ++G;
    ch_fill(p, n, key_of(i), g);
    persist(p, n);
    M->size[i] = n;
    M->gen[i] = g;
    persist(&M->size[i], 8);
    persist(&M->gen[i], 8);
    M->seal[i] = ch_seal_of(key_of(i), n, g);
    persist(&M->seal[i], 8);
}

static bool sealed(const struct model *m, int i)
{
    return m->seal[i] == ch_seal_of(key_of(i), m->size[i], m->gen[i]);
}

static void pub_alloc(int i, size_t n)
{
    unseal(i);
    REQUIRE(persistent_alloc_into(S, &M->slot[i], n) == 0);
    seal(i, n);
}

/* The slot stays sealed across the call for the bytes the old and the
 * new block share (shrinking the sealed size first): a crash anywhere in
 * it must leave them in whichever block *dest names. */
static void pub_realloc(int i, size_t n)
{
    REQUIRE(sealed(M, i));
    if (n < M->size[i]) {
        unseal(i);
        M->size[i] = n;
        persist(&M->size[i], 8);
        M->seal[i] = ch_seal_of(key_of(i), n, M->gen[i]);
        persist(&M->seal[i], 8);
    }
    REQUIRE(persistent_realloc_into(S, &M->slot[i], n) == 0);
    unseal(i);
    seal(i, n);
}

static void pub_free(int i)
{
    unseal(i);
    REQUIRE(persistent_free_from(S, &M->slot[i]) == 0);
}

static void plain_alloc(int i, size_t n)
{
    unseal(i);
    void *p = persistent_malloc(S, n);
    REQUIRE(p != NULL);
    M->slot[i] = ptr_to_persistent_offset(S, p);
    persist(&M->slot[i], 8);
    seal(i, n);
}

static void plain_free(int i)
{
    unseal(i);
    void *p = persistent_offset_to_ptr(S, M->slot[i]);
    M->slot[i] = 0;
    persist(&M->slot[i], 8);
    persistent_free(S, p);
}

static void root_new(uint64_t tag)
{
    bool created;
    struct root_obj *r = persistent_root_get(S, tag, sizeof *r, &created);
    REQUIRE(r != NULL);
    r->tag = tag;
    memset(r->payload, (int)(tag & 0xff), sizeof r->payload);
    persist(r, sizeof *r);
    r->seal = ch_seal_of(tag, sizeof *r, 0);
    persist(&r->seal, 8);
}

/* A root built before it is published (tags from PUBLISHED_TAG on): its
 * contents are sealed and written back first, so a published one is
 * always whole. */
#define PUBLISHED_TAG 100u

static struct root_obj *root_build(uint64_t tag)
{
    struct root_obj *r = persistent_malloc(S, sizeof *r);
    REQUIRE(r != NULL);
    r->tag = tag;
    memset(r->payload, (int)(tag & 0xff), sizeof r->payload);
    r->seal = ch_seal_of(tag, sizeof *r, 0);
    persist(r, sizeof *r);
    return r;
}

static void root_publish(uint64_t tag)
{
    struct root_obj *r = root_build(tag);
    REQUIRE(persistent_root_publish(S, tag, r) == r);
}

/* ---- scenarios ---- */

struct scenario {
    const char *name;
    uint64_t size, max_size;
    int max_leak;              /* blocks a crash may leave unreachable */
    void (*setup)(void);       /* on the template, not swept */
    void (*run)(void);         /* swept */
};

static void sc_sb_run(void)
{
    /* 1-page superblocks: 24 allocations carve several; freeing them all
     * releases them */
    for (int i = 0; i < 24; i++)
        plain_alloc(i, 100);
    for (int i = 0; i < 24; i++)
        plain_free(i);
    plain_alloc(0, 40);
    /* a block freed from a location and taken again at once by a plain
     * malloc (the next free block of the class): the free's lane must be
     * retired durably, or recovery frees the block a second time */
    pub_alloc(1, 40);
    persistent_offset_t was = M->slot[1];
    pub_free(1);
    plain_alloc(2, 40);
    REQUIRE(M->slot[2] == was);
}

static void sc_publish_run(void)
{
    static const size_t sz[] = {24, 100, 700, 3000, 9000, 48, 200, 16000};
    for (int i = 0; i < 8; i++)
        pub_alloc(i, sz[i]);
    pub_realloc(0, 30);        /* in place */
    pub_realloc(1, 400);       /* moves to a bigger class */
    pub_realloc(2, 20000);     /* small to large */
    pub_realloc(4, 5000);      /* large shrinks */
    pub_free(3);
    pub_free(5);
    pub_alloc(9, 64);
}

/* Table 0 has 16 slots in this space (roots_cap, space.c plan()): the
 * model and tags 1-15 fill it, so tag 16 makes the first overflow table,
 * in the heap, and tags 16-17 live there.  Tags 12-17 are new keys in the
 * sweep: a slot's key must be durable before its value (a line can land
 * torn, 8 bytes at a time, with the value and not the key). */
static void sc_roots_setup(void)
{
    for (uint64_t t = 1; t <= 11; t++)
        root_new(t);
}

static void sc_roots_run(void)
{
    REQUIRE(persistent_root_remove(S, 2) == 0);
    REQUIRE(persistent_root_remove(S, 3) == 0);
    root_new(3);
    root_new(0);
    for (uint64_t t = 12; t <= 15; t++)
        root_new(t);
    REQUIRE(pm_load_acquire(&pm_rt_of(S)->hdr->live.roots_next_off) == 0);
    root_new(16);
    REQUIRE(pm_load_acquire(&pm_rt_of(S)->hdr->live.roots_next_off) != 0);
    root_new(17);
    REQUIRE(persistent_root_remove(S, 16) == 0);
    root_new(16);
}

/* One block may leak: built, not yet published (or lost to a root that
 * was there first, not yet freed). */
static void sc_root_publish_run(void)
{
    root_publish(PUBLISHED_TAG);
    root_publish(PUBLISHED_TAG + 1);
    struct root_obj *late = root_build(PUBLISHED_TAG);
    REQUIRE(persistent_root_publish(S, PUBLISHED_TAG, late) != late);
    persistent_free(S, late);
    REQUIRE(persistent_root_remove(S, PUBLISHED_TAG) == 0);
    root_publish(PUBLISHED_TAG);
    root_publish(PUBLISHED_TAG + 2);
}

/* The seed's realloc moves a block in two steps the caller cannot make
 * atomic; only the heap's consistency and the two blocks in flight are at
 * stake (publishing realloc-into is the crash-atomic one). */
static void sc_realloc_run(void)
{
    static const size_t sizes[] = {40, 100, 3000, 20000, 30000, 5000, 100, 8};
    unsigned char *p = persistent_malloc(S, 10);
    REQUIRE(p != NULL);
    ch_fill(p, 10, 7, 7);
    persist(p, 10);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        REQUIRE(persistent_realloc(S, p, sizes[i]));
        REQUIRE(ch_filled(p, 8, 7, 7));
    }
    persistent_free(S, p);
}

static void sc_large_setup(void)
{
    pub_alloc(0, 8000);
    pub_alloc(1, 30000);
}

static void sc_large_run(void)
{
    pub_alloc(2, 20000);
    persistent_offset_t at = M->slot[2];
    pub_realloc(2, 40000);     /* grows in place */
    REQUIRE(M->slot[2] == at);
    at = M->slot[1];
    /* shrinks in place: 8 pages to 5, more than the largest class (16 KiB
     * here) so it stays a page run (persistent_realloc_into) */
    pub_realloc(1, 20000);
    REQUIRE(M->slot[1] == at);
    pub_free(0);
    plain_alloc(3, 24000);
    plain_free(3);
    pub_alloc(4, 60000);
}

static void sc_growth_run(void)
{
    for (int i = 0; i < 12; i++)
        pub_alloc(i, 100000);      /* page runs: above the largest class */
    for (int i = 0; i < 12; i += 3)
        pub_free(i);
    /* the last block, at the end of the space, grows in place: the space
     * grows under it (large.c) */
    persistent_offset_t at = M->slot[11];
    pub_realloc(11, 300000);
    REQUIRE(M->slot[11] == at);
}

/* A superblock carved where a large block was, whose contents were
 * written back: its header and both bitmaps must be durable, as zeros,
 * before its START commits it.  The class of 16-byte blocks has 500
 * blocks in 8 KiB superblocks here, so the remote bitmap is a cache line
 * of its own. */
static void sc_sbreuse_setup(void)
{
    /* above the largest class: a page run, and longer than the runs a
     * thread keeps when it frees them (pages.c), so its pages go back */
    plain_alloc(0, 140000);
}

static void sc_sbreuse_run(void)
{
    persistent_offset_t was = M->slot[0];
    plain_free(0);
    for (int i = 1; i <= 3; i++)
        pub_alloc(i, 16);
    REQUIRE(M->slot[1] >= was && M->slot[1] < was + 140000);
}

/* More threads holding lanes at once than the metadata has (8 in this
 * space): the ninth makes an overflow lane table in the heap and
 * publishes through a lane there. */
enum { LANE_THREADS = 9 };
static _Atomic int lanes_done, lanes_end;

static void *lane_thread(void *arg)
{
    int i = (int)(intptr_t)arg;
    pub_alloc(i, 100 + 8 * (size_t)i);
    atomic_store(&lanes_done, i + 1);
    while (!atomic_load(&lanes_end))
        usleep(200);               /* keeps its lane while it lives */
    return NULL;
}

static void sc_lanes_run(void)
{
    pthread_t t[LANE_THREADS];
    for (int i = 0; i < LANE_THREADS; i++) {
        pthread_create(&t[i], NULL, lane_thread, (void *)(intptr_t)i);
        while (atomic_load(&lanes_done) < i + 1)
            usleep(200);           /* one at a time: the same points each run */
    }
    REQUIRE(pm_load_acquire(&pm_rt_of(S)->hdr->live.lanes_next_off) != 0);
    atomic_store(&lanes_end, 1);
    for (int i = 0; i < LANE_THREADS; i++)
        pthread_join(t[i], NULL);
}

/* The same with the header's chunk lane held (by a thread stopped for
 * good, as it were): the tables are added the way without a lane, linked
 * before they are committed, and no crash may leak one (until 2026-12-07
 * a crash between a table's allocation and its link leaked it) */
static void sc_lanes_busy_run(void)
{
    pm_store_release(&pm_rt_of(S)->chunk_lane_busy, 1u);
    sc_lanes_run();
    pm_store_release(&pm_rt_of(S)->chunk_lane_busy, 0u);
}

static void *remote_frees(void *arg)
{
    (void)arg;
    for (int i = 0; i < 6; i++)
        pub_free(i);           /* cross-thread, through lanes */
    for (int i = 6; i < 9; i++)
        plain_free(i);         /* cross-thread, plain */
    return NULL;
}

/* the size of the blocks the remote scenario frees (and the recovery
 * sweeps allocate again) */
static size_t remote_size = 100;

static void sc_remote_setup(void)
{
    for (int i = 0; i < 12; i++)
        pub_alloc(i, remote_size);
}

static void sc_remote_run(void)
{
    pthread_t t;
    pthread_create(&t, NULL, remote_frees, NULL);
    pthread_join(t, NULL);
    for (int i = 12; i < 20; i++)
        pub_alloc(i, 100);     /* the owner collects the remote frees */
}

/* Frees from locations of blocks another thread carved (remote bits),
 * nothing else in flight: none may leak.  The remote bit must be durable
 * before the lane is retired, or a power failure between them leaves a
 * block nobody names and nobody frees. */
static void *remote_pub_frees(void *arg)
{
    (void)arg;
    for (int i = 0; i < 6; i++)
        pub_free(i);
    return NULL;
}

static void sc_remote_pub_run(void)
{
    pthread_t t;
    pthread_create(&t, NULL, remote_pub_frees, NULL);
    pthread_join(t, NULL);
}

/* Frees and an allocation from locations by a thread that can get no
 * lane: every lane held (as by live threads that keep theirs), the space
 * full, so no lane table can be added.  They go through the header's
 * chunk lane (publish.c pub_lane_any), which recovery must finish as
 * any lane: none may leak, and a root removed is gone or whole. */
static void sc_lanes_full_setup(void)
{
    for (int i = 0; i < 4; i++)
        pub_alloc(i, 100);
    REQUIRE(persistent_root_get(S, 20, 300, NULL) != NULL);
    /* the rest in the slots left, then in roots the verifier knows as
     * unsealed (tags below PUBLISHED_TAG), until nothing of 256 bytes fits */
    int slot = 4;
    uint64_t tag = 21;
    for (size_t sz = 65536; sz >= 256; sz /= 2) {
        for (;;) {
            if (slot < NSLOT) {
                void *p = persistent_malloc(S, sz);
                if (p == NULL)
                    break;
                unseal(slot);
                M->slot[slot] = ptr_to_persistent_offset(S, p);
                persist(&M->slot[slot], 8);
                seal(slot++, sz);
            } else {
                REQUIRE(tag < PUBLISHED_TAG);
                if (persistent_root_get(S, tag, sz, NULL) == NULL)
                    break;
                tag++;
            }
        }
    }
}

static void *lanes_full_thread(void *arg)
{
    (void)arg;
    pub_free(0);
    pub_free(1);
    pub_alloc(0, 64);
    pub_realloc(2, 90);
    REQUIRE(persistent_root_remove(S, 20) == 0);
    return NULL;
}

static void sc_lanes_full_run(void)
{
    struct pm_rt *rt = pm_rt_of(S);
    uint32_t total = rt->fixed.n_lanes + pm_load_acquire(&rt->n_lane_chunks) * PM_LANE_CHUNK;
    for (uint32_t i = 0; i < total; i++) {
        uint32_t zero = 0;             /* a record id no thread has */
        pm_cas_strong_acq_rel(&rt->lane_owner[i], &zero, PM_MAX_RECS - 1);
    }
    pthread_t t;
    pthread_create(&t, NULL, lanes_full_thread, NULL);
    pthread_join(t, NULL);
    REQUIRE(pm_load_acquire(&rt->hdr->live.lanes_next_off) == 0);
}

static struct scenario scenarios[] = {
    {"superblock", 64u << 10, 0, 1, NULL, sc_sb_run},
    {"sbreuse", 512u << 10, 0, 1, sc_sbreuse_setup, sc_sbreuse_run},
    {"publish", 256u << 10, 0, 0, NULL, sc_publish_run},
    {"roots", 256u << 10, 0, 0, sc_roots_setup, sc_roots_run},
    {"root-publish", 64u << 10, 0, 1, NULL, sc_root_publish_run},
    {"large", 256u << 10, 0, 1, sc_large_setup, sc_large_run},
    {"realloc", 256u << 10, 0, 2, NULL, sc_realloc_run},
    {"growth", 64u << 10, 2u << 20, 0, NULL, sc_growth_run},
    {"remote", 64u << 10, 0, 1, sc_remote_setup, sc_remote_run},
    {"remote-pub", 64u << 10, 0, 0, sc_remote_setup, sc_remote_pub_run},
    {"lanes", 64u << 10, 0, 0, NULL, sc_lanes_run},
    {"lanes-busy", 64u << 10, 0, 0, NULL, sc_lanes_busy_run},
    /* the same where a lane table is a page run (48 KiB: no class holds
     * one), which recovery commits by the run bits */
    {"lanes-busy-run", 48u << 10, 0, 0, NULL, sc_lanes_busy_run},
    {"lanes-full", 256u << 10, 0, 0, sc_lanes_full_setup, sc_lanes_full_run},
};

/* ---- the sweep ---- */

static allocator_space_t *open_space(const char *path, uint64_t size, uint64_t max)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = size;
    o.max_size = max;
    o.durability = ch_durability();
    allocator_space_t *s;
    int r = persistent_space_open(path, &o, &s);
    return r == 0 ? s : NULL;
}

static void make_template(const struct scenario *sc, const char *path)
{
    S = open_space(path, sc->size, sc->max_size);
    REQUIRE(S != NULL);
    M = persistent_root_get(S, MODEL_TAG, sizeof *M, NULL);
    REQUIRE(M != NULL);
    M->magic = 0x4d4f44454cull;
    persist(M, sizeof *M);
    G = 1000;
    if (sc->setup)
        sc->setup();
    REQUIRE(persistent_space_close(S) == 0);
}

/* The child of a sweep: opens the copy (recovery), runs the scenario,
 * closes. */
static void child_body(const char *path, uint64_t k, void *arg)
{
    const struct scenario *sc = arg;
    S = open_space(path, sc->size, sc->max_size);
    if (S == NULL)
        _exit(3);
    M = persistent_find_root(S, MODEL_TAG);
    if (M == NULL)
        _exit(4);
    G = 100000 + k * 1000;
    if (sc->run)
        sc->run();
    persistent_space_close(S);
}

static int run_child(const struct scenario *sc, const char *path, uint64_t k,
                     uint64_t *points)
{
    return ch_run_child(sc->name, child_body, (void *)sc, path, k, 17, points);
}

/* Blocks the verifier reaches: the model, its slots, the roots, and the
 * overflow root and lane tables linked from the header. */
struct reached {
    uint64_t off[512];
    int n;
};

static void reach(struct reached *r, uint64_t off)
{
    if (r->n < 512)
        r->off[r->n++] = off;
}

static bool reached_at(const struct reached *r, uint64_t off)
{
    for (int i = 0; i < r->n; i++)
        if (r->off[i] == off)
            return true;
    return false;
}

/* Adds the overflow root and lane tables linked from the header (walked
 * by the rules of verify.c, which check has just passed); returns how
 * many there are. */
static int reach_tables(struct pm_rt *rt, struct reached *r)
{
    int n = 0;
    uint64_t cap = rt->hdr->fixed.roots_cap;
    for (uint64_t off = pm_load_acquire(&rt->hdr->live.roots_next_off); off != 0 && n < 64;) {
        cap = pm_root_next_cap(cap);
        struct pm_root_table *t = pm_root_table_at(rt, off, cap);
        if (t == NULL)
            break;
        reach(r, off);
        n++;
        off = pm_load_acquire(&t->next_off);
    }
    for (uint64_t off = pm_load_acquire(&rt->hdr->live.lanes_next_off); off != 0 && n < 128;) {
        struct pm_lane_table *t = pm_lane_table_at(rt, off, NULL);
        if (t == NULL)
            break;
        reach(r, off);
        n++;
        off = pm_load_acquire(&t->next_off);
    }
    return n;
}

/* Live blocks no one reaches. */
struct unreached {
    const struct reached *r;
    uint64_t n;
};

static void unreached_block(struct unreached *u, uint64_t off)
{
    if (!reached_at(u->r, off))
        u->n++;
}

static int walk_unreached(struct pm_rt *rt, const struct pm_run *run, void *arg)
{
    struct unreached *u = arg;
    uint64_t off = rt->data_off + (run->first << rt->page_shift);
    if (run->h == NULL) {
        unreached_block(u, off);
        return 0;
    }
    const struct pm_sb_header *h = run->h;
    for (uint32_t w = 0; w < h->n_words; w++) {
        uint64_t live = pm_load_acquire(&h->bits[w]) & ~pm_load_acquire(&h->bits[h->n_words + w]);
        for (; live; live &= live - 1)
            unreached_block(u, off + h->data_start +
                                   (uint64_t)(w * 64 + pm_ctz64(live)) * h->block_size);
    }
    return 0;
}

static struct unreached find_unreached(struct pm_rt *rt, const struct reached *r)
{
    struct unreached u = {r, 0};
    const char *why;
    uint64_t where;
    if (pm_walk_runs(rt, walk_unreached, &u, &why, &where) != 0)
        u.n = UINT64_MAX;
    return u;
}

/* The G2 state checks; returns the number of problems. */
static int verify(const char *path, uint64_t k, void *arg)
{
    const struct scenario *sc = arg;
    int bad = 0;
#define FAILV(...) CH_FAIL(bad, sc->name, k, __VA_ARGS__)
    bad += ch_check_unrecovered(path, sc->name, k);
    allocator_space_t *s = open_space(path, sc->size, sc->max_size);
    if (s == NULL) {
        FAILV("reopen failed: %s", persistent_errormsg());
        return bad;
    }
    struct persistent_check_report rep;
    bad += ch_check_recovered(s, sc->name, k, &rep);
    struct model *m = persistent_find_root(s, MODEL_TAG);
    if (m == NULL || m->magic != 0x4d4f44454cull) {
        FAILV("model root lost");
        persistent_space_close(s);
        return bad;
    }
    static struct reached r;
    r.n = 0;
    reach(&r, ptr_to_persistent_offset(s, m));
    for (int i = 0; i < NSLOT; i++) {
        if (m->slot[i] == 0)
            continue;
        unsigned char *p = persistent_offset_to_ptr(s, m->slot[i]);
        size_t us = persistent_usable_size(s, p);
        if (us == 0) {
            FAILV("slot %d: published block %#llx is not live", i,
                  (unsigned long long)m->slot[i]);
            continue;
        }
        reach(&r, m->slot[i]);
        for (int j = 0; j < i; j++)
            if (m->slot[j] == m->slot[i])
                FAILV("slots %d and %d share a block", j, i);
        if (sealed(m, i) && (us < m->size[i] || !ch_filled(p, m->size[i], key_of(i), m->gen[i])))
            FAILV("slot %d: sealed contents damaged", i);
    }
    struct persistent_root_iter it = {0};
    uint64_t tag;
    void *rp;
    while (persistent_root_next(s, &it, &tag, &rp) == 1) {
        if (tag == MODEL_TAG)
            continue;
        reach(&r, ptr_to_persistent_offset(s, rp));
        struct root_obj *ro = rp;
        if (persistent_usable_size(s, ro) < sizeof *ro)
            FAILV("root %llu is not a live block of its size", (unsigned long long)tag);
        else if (ro->seal == ch_seal_of(tag, sizeof *ro, 0) &&
                 (ro->tag != tag || ro->payload[199] != (unsigned char)(tag & 0xff)))
            FAILV("root %llu: sealed contents damaged", (unsigned long long)tag);
        else if (ro->seal == 0 && ro->tag != 0 && ro->tag != tag)
            FAILV("root %llu: foreign contents", (unsigned long long)tag);
        else if (tag >= PUBLISHED_TAG && ro->seal != ch_seal_of(tag, sizeof *ro, 0))
            FAILV("root %llu was published before its contents were durable",
                  (unsigned long long)tag);
    }
    struct pm_rt *rt = pm_rt_of(s);
    reach_tables(rt, &r);
    struct unreached u = find_unreached(rt, &r);
    if (u.n != rep.live_blocks - (uint64_t)r.n || u.n > (uint64_t)sc->max_leak)
        FAILV("%llu live blocks, %d reachable, %llu not (at most %d may leak)",
              (unsigned long long)rep.live_blocks, r.n, (unsigned long long)u.n,
              sc->max_leak);
    /* take everything that is left: none of it may be a published block */
    enum { MAXF = 4096 };
    static void *got[MAXF];
    int n = 0;
    for (size_t sz = 65536; sz >= 16 && n < MAXF; sz /= 2)
        while (n < MAXF && (got[n] = persistent_malloc(s, sz)) != NULL)
            memset(got[n++], 0xdb, sz);
    for (int i = 0; i < NSLOT; i++) {
        unsigned char *p = persistent_offset_to_ptr(s, m->slot[i]);
        if (m->slot[i] && sealed(m, i) && persistent_usable_size(s, p) >= m->size[i] &&
            !ch_filled(p, m->size[i], key_of(i), m->gen[i]))
            FAILV("slot %d was handed out again after recovery", i);
    }
    for (int i = 0; i < n; i++)
        persistent_free(s, got[i]);
    if (persistent_check(s, &rep) != 0)
        FAILV("check after the fill: %s", rep.first_error);
    persistent_space_close(s);
    return bad;
}

static void sweep(const struct scenario *sc)
{
    struct ch_files f;
    ch_files_init(&f, "sweep");
    make_template(sc, f.tmpl);
    struct ch_target t = {sc->name, child_body, verify, (void *)sc, 17};
    ch_sweep(&t, &f, true);
    ch_files_remove(&f);
}

/* After the recovering open: blocks of the size the remote frees freed,
 * published in slots of their own, so that they take the freed blocks
 * again.  A remote bit recovery cleared only in the cache would come back
 * at a power failure now and free one of them at the next open. */
static void sc_recovery_run(void)
{
    for (int i = 20; i < 28; i++)
        pub_alloc(i, remote_size);
}

/* Crash points inside recovery itself: the template is a space that died
 * in the middle of a publishing realloc with remote frees pending; the
 * sweep kills the process at every point of the recovering open and of
 * the publishing allocations that follow it.  name "recovery": blocks of
 * 100 bytes in a 64 KiB space, a superblock whose allocation and remote
 * words share a cache line; "recovery-wide": blocks of 16 bytes in a 512
 * KiB space, bitmaps of at least 8 words, so that the remote words are
 * lines of their own, which writing back the allocation words does not
 * write back. */
static void sweep_recovery(const char *name, uint64_t size, size_t blk, uint32_t min_words)
{
    struct scenario sc = {name, size, 0, 1, sc_remote_setup, sc_recovery_run};
    remote_size = blk;
    struct ch_files f;
    ch_files_init(&f, "r");
    make_template(&sc, f.tmpl);
    {
        /* the geometry the sweep is meant to have */
        S = open_space(f.tmpl, size, 0);
        REQUIRE(S != NULL);
        M = persistent_find_root(S, MODEL_TAG);
        REQUIRE(M != NULL);
        uint32_t first, idx;
        struct pm_sb_header *h;
        REQUIRE(sb_locate(pm_rt_of(S), persistent_offset_to_ptr(S, M->slot[0]), &first, &h,
                          &idx) == 0);
        REQUIRE(h->n_words >= min_words);
        REQUIRE(persistent_space_close(S) == 0);
    }
    /* let the remote scenario die where it leaves recovery the most to
     * do: a publishing call in flight and remote frees not yet collected */
    struct scenario die = sc;
    die.run = sc_remote_run;
    uint64_t points = 0, best = 0, best_score = 0;
    ch_copy_file(f.tmpl, f.work);
    REQUIRE(run_child(&die, f.work, 0, &points) == 0);
    int saved = ch_mode;
    ch_mode = PM_CRASH_KILL;
    for (uint64_t k = 1; k < points; k++) {
        ch_copy_file(f.tmpl, f.work);
        REQUIRE(run_child(&die, f.work, k, NULL) == 1);
        struct persistent_options o = {0};
        o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
        allocator_space_t *s;
        REQUIRE(persistent_space_open(f.work, &o, &s) == 0);
        struct persistent_check_report rep;
        persistent_check(s, &rep);
        persistent_space_close(s);
        uint64_t score = (rep.in_flight_lanes ? 1000 : 0) + rep.pending_remote_frees;
        if (score > best_score) {
            best_score = score;
            best = k;
        }
    }
    REQUIRE(best_score >= 1000);
    ch_copy_file(f.tmpl, f.work);
    REQUIRE(run_child(&die, f.work, best, NULL) == 1);
    ch_mode = saved;
    ch_copy_file(f.work, f.tmpl);                  /* the crashed file */
    struct ch_target t = {name, child_body, verify, &sc, 17};
    ch_sweep(&t, &f, false);
    ch_files_remove(&f);
    remote_size = 100;
}

/* ---- races under the power model ----
 *
 * A wrapper around the space's flush table stops one thread (the victim)
 * right before one of its flushes, for good; another thread goes on, then
 * the power fails (crash point armed at the next flush or fence).  The
 * victim's stores not yet written back are lost, so what the other thread
 * did may not have depended on them being durable. */
static const struct pm_flush_ops *race_inner;
static bool (*race_stop)(const void *addr, size_t len);
static _Thread_local bool race_victim;
static _Atomic int race_parked;
static uint64_t race_n0;

static void race_flush(const void *addr, size_t len)
{
    if (race_victim && !atomic_load(&race_parked) && race_stop(addr, len)) {
        atomic_store(&race_parked, 1);
        for (;;)
            sleep(1);              /* until the power fails */
    }
    race_inner->flush(addr, len);
}

static void race_drain(void)
{
    race_inner->drain();
}

static const struct pm_flush_ops race_ops = {"race", race_flush, race_drain};

static void race_wait_parked(void)
{
    uint64_t deadline = t_now_ns() + 20ull * 1000000000u;
    while (!atomic_load(&race_parked)) {
        if (t_now_ns() > deadline) {
            fprintf(stderr, "race: the victim never reached its stop\n");
            _exit(6);
        }
        usleep(200);
    }
}

static void race_power_failure(void)
{
    pm_crash_arm(1, PM_CRASH_POWER, 77);   /* the next flush or fence */
    persist(&M->magic, 8);
    _exit(7);                              /* not reached */
}

/* The owner collects while another thread's free-from into its superblock
 * is still in flight (block freed, lane not yet retired): the owner may not
 * reuse the block, since recovery of that lane frees it again (n_pub holds
 * collection off). */
static bool stop_at_lane_retire(const void *addr, size_t len)
{
    struct pm_rt *rt = pm_rt_of(S);
    const char *lanes = rt->base + rt->hdr->fixed.lanes_off;
    return len == sizeof(uint64_t) && (const char *)addr >= lanes &&
           (const char *)addr < lanes + rt->hdr->fixed.n_lanes * sizeof(struct pm_lane);
}

static void *race_remote_free(void *arg)
{
    (void)arg;
    race_victim = true;
    pub_free(5);
    return NULL;
}

static void race_npub_run(void)
{
    struct pm_rt *rt = pm_rt_of(S);
    uint32_t n = rt->cls[pm_size_class(100)].n_blocks;
    REQUIRE(n >= 6 && n < 20);
    for (int i = 0; i < (int)n; i++)
        pub_alloc(i, 100);        /* one superblock, full, this thread's */
    race_stop = stop_at_lane_retire;
    pthread_t t;
    pthread_create(&t, NULL, race_remote_free, NULL);
    race_wait_parked();
    pub_alloc(20, 100);           /* a refill: collect() meets the free */
    race_power_failure();
}

/* A grower stopped right after its commit of the page count (the CAS),
 * before it writes the count back: another thread that needs pages
 * publishes that commit, which it must make durable first -- and no page
 * may be handed out before it. */
static bool stop_at_count(const void *addr, size_t len)
{
    struct pm_rt *rt = pm_rt_of(S);
    (void)len;
    return addr == (const void *)&rt->hdr->live.n_pages &&
           pm_load_acquire(&rt->hdr->live.n_pages) > race_n0;
}

static void *race_grower(void *arg)
{
    (void)arg;
    race_victim = true;
    pub_alloc(1, 100000);         /* needs the space to grow */
    return NULL;
}

static void race_grow_run(void)
{
    struct pm_rt *rt = pm_rt_of(S);
    pub_alloc(0, 100000);         /* the pages the space had */
    race_n0 = pm_load_acquire(&rt->hdr->live.n_pages);
    race_stop = stop_at_count;
    pthread_t t;
    pthread_create(&t, NULL, race_grower, NULL);
    race_wait_parked();
    pub_alloc(2, 100000);         /* needs pages too */
    REQUIRE(pm_load_acquire(&rt->n_pages) > race_n0);
    race_power_failure();
}

/* A creator of a root stopped right after its claim of a slot (the CAS of
 * the key), before it writes the key back: another thread creating a root
 * whose probe starts at that slot goes past it to the next, which it
 * claims and writes back.  Power fails: a look for the second tag starts
 * at the first slot, so that one's claim must have been made durable by
 * the second creator before it used the next (else the second root, made
 * and sealed, is not found after the restart). */
static uint64_t race_tag_a, race_tag_b;

/* roots.c's hash of a tag (splitmix64's finaliser), to find two tags
 * whose probes start at one slot */
static uint64_t race_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static uint64_t race_tag_like(uint64_t a, uint64_t cap)
{
    for (uint64_t b = a + 1;; b++)
        if ((race_mix(b) & (cap - 1)) == (race_mix(a) & (cap - 1)))
            return b;
}

/* The first tag from 0x72616365 on whose probe starts at the last slot
 * of a cache line (else the next slot's write-back takes the first one's
 * key with it), and another tag whose probe starts there too. */
static void race_tags(struct pm_rt *rt)
{
    uint64_t cap = rt->fixed.roots_cap;
    const char *slots = rt->base + rt->fixed.roots_off;
    for (race_tag_a = 0x72616365u;; race_tag_a++) {
        uint64_t at = (uint64_t)(uintptr_t)(slots + (race_mix(race_tag_a) & (cap - 1)) *
                                                        sizeof(struct pm_root_slot));
        if (at % 64 == 64 - sizeof(struct pm_root_slot))
            break;
    }
    race_tag_b = race_tag_like(race_tag_a, cap);
}


static bool stop_at_root_key(const void *addr, size_t len)
{
    struct pm_rt *rt = pm_rt_of(S);
    const char *slots = rt->base + rt->fixed.roots_off;
    const char *a = addr;
    return len == sizeof(uint64_t) && a >= slots &&
           a < slots + rt->fixed.roots_cap * sizeof(struct pm_root_slot) &&
           (uint64_t)(a - slots) % sizeof(struct pm_root_slot) ==
               offsetof(struct pm_root_slot, key);
}

static void *race_root_creator(void *arg)
{
    (void)arg;
    race_victim = true;
    root_new(race_tag_a);
    return NULL;
}

static void race_root_run(void)
{
    race_stop = stop_at_root_key;
    pthread_t t;
    pthread_create(&t, NULL, race_root_creator, NULL);
    race_wait_parked();
    root_new(race_tag_b);
    race_power_failure();
}

/* A creator of a root that needs a new overflow table stopped right after
 * it linked the table, before it writes the link back: another thread
 * finds the table in the metadata full, follows the link and makes its
 * root there.  Power fails: that root is reached only through the link,
 * which the second creator must have made durable before it used it
 * (roots.c, the probe's write-back of the links it follows; a helper's
 * hunt for unmutated write-backs). */
static void race_rootlink_setup(void)
{
    for (uint64_t t = 1; t <= 15; t++)      /* the 16-slot table full */
        root_new(t);
}

static bool stop_at_root_link(const void *addr, size_t len)
{
    struct pm_rt *rt = pm_rt_of(S);
    (void)len;
    return addr == (const void *)&rt->hdr->live.roots_next_off &&
           pm_load_acquire(&rt->hdr->live.roots_next_off) != 0;
}

static void *race_rootlink_creator(void *arg)
{
    (void)arg;
    race_victim = true;
    root_new(200);
    return NULL;
}

static void race_rootlink_run(void)
{
    REQUIRE(pm_rt_of(S)->fixed.roots_cap == 16);
    REQUIRE(pm_load_acquire(&pm_rt_of(S)->hdr->live.roots_next_off) == 0);
    race_stop = stop_at_root_link;
    pthread_t t;
    pthread_create(&t, NULL, race_rootlink_creator, NULL);
    race_wait_parked();
    root_new(201);
    race_power_failure();
}

/* Every lane of the metadata held; a ninth thread makes an overflow lane
 * table and stops after linking it, before writing the link back; a
 * tenth links a second table after it and publishes through it.  Power
 * fails: both tables must still be reached from the header (publish.c,
 * chunks_discover's write-back of a link it finds). */
static void *race_lane_holder(void *arg)
{
    int i = (int)(intptr_t)arg;
    pub_alloc(i, 100);
    atomic_store(&lanes_done, i + 1);
    while (!atomic_load(&lanes_end))
        usleep(200);
    return NULL;
}

static bool stop_at_lane_link(const void *addr, size_t len)
{
    struct pm_rt *rt = pm_rt_of(S);
    (void)len;
    return addr == (const void *)&rt->hdr->live.lanes_next_off &&
           pm_load_acquire(&rt->hdr->live.lanes_next_off) != 0;
}

static void *race_lane_victim(void *arg)
{
    (void)arg;
    race_victim = true;
    pub_alloc(8, 100);
    return NULL;
}

static void race_lanelink_run(void)
{
    REQUIRE(pm_rt_of(S)->fixed.n_lanes == 8);
    pthread_t t[8], v;
    for (int i = 0; i < 8; i++) {
        pthread_create(&t[i], NULL, race_lane_holder, (void *)(intptr_t)i);
        while (atomic_load(&lanes_done) < i + 1)
            usleep(200);
    }
    race_stop = stop_at_lane_link;
    pthread_create(&v, NULL, race_lane_victim, NULL);
    race_wait_parked();
    pub_alloc(9, 100);
    race_power_failure();
}

/* Two creators of a root need the first overflow table at once: the
 * victim, held at the write-back of its lane record (an allocation into
 * the link), lets the other link its table first; it then commits its own,
 * loses the link's CAS and frees its table under the lane (publish.c
 * free_under_lane), and stops at the first write-back of that free.  Power
 * fails: the lane, still naming the table, has recovery free it; a lane
 * retired before the free was durable would leave the table allocated
 * and named by nobody, for good. */
static _Atomic int loser_stage;
static uint64_t loser_boff;

static bool stop_after_lost_link(const void *addr, size_t len)
{
    struct pm_rt *rt = pm_rt_of(S);
    const char *lanes = rt->base + rt->hdr->fixed.lanes_off;
    const char *a = addr;
    if (atomic_load(&loser_stage) == 0) {
        if (len != sizeof(struct pm_lane) || a < lanes ||
            a >= lanes + rt->hdr->fixed.n_lanes * sizeof(struct pm_lane))
            return false;
        const struct pm_lane *l = addr;
        if (l->dest_off != (uint64_t)((char *)&rt->hdr->live.roots_next_off - rt->base))
            return false;
        loser_boff = l->block_off;
        atomic_store(&loser_stage, 1);
        while (atomic_load(&loser_stage) == 1)
            usleep(200);          /* until the other table is linked */
        return false;
    }
    /* committed (live: its end bit may be written back before), then
     * freed: the first write-back of the free */
    bool live = pm_block_live(rt, loser_boff) != 0;
    if (atomic_load(&loser_stage) == 2 && live)
        atomic_store(&loser_stage, 3);
    return atomic_load(&loser_stage) == 3 && !live;
}

static void *race_loser_creator(void *arg)
{
    (void)arg;
    race_victim = true;
    root_new(200);
    return NULL;
}

static void race_rootloser_run(void)
{
    REQUIRE(pm_rt_of(S)->fixed.roots_cap == 16);
    REQUIRE(pm_load_acquire(&pm_rt_of(S)->hdr->live.roots_next_off) == 0);
    race_stop = stop_after_lost_link;
    pthread_t t;
    pthread_create(&t, NULL, race_loser_creator, NULL);
    uint64_t deadline = t_now_ns() + 20ull * 1000000000u;
    while (atomic_load(&loser_stage) == 0) {
        if (t_now_ns() > deadline) {
            fprintf(stderr, "race: the victim never wrote its lane\n");
            _exit(6);
        }
        usleep(200);
    }
    root_new(201);                /* links the first table */
    REQUIRE(pm_load_acquire(&pm_rt_of(S)->hdr->live.roots_next_off) != loser_boff);
    atomic_store(&loser_stage, 2);
    race_wait_parked();
    race_power_failure();
}

static void race(const struct scenario *sc)
{
    struct ch_files f;
    ch_files_init(&f, "rc");
    make_template(sc, f.tmpl);
    ch_copy_file(f.tmpl, f.work);
    if (sc->run == race_root_run) {
        allocator_space_t *s = open_space(f.work, sc->size, sc->max_size);
        REQUIRE(s != NULL);
        race_tags(pm_rt_of(s));
        REQUIRE(persistent_space_close(s) == 0);
    }
    pid_t pid = fork();
    if (pid == 0) {
        pm_crash_arm(0, PM_CRASH_POWER, 5);   /* the model, no crash point */
        S = open_space(f.work, sc->size, sc->max_size);
        if (S == NULL)
            _exit(3);
        M = persistent_find_root(S, MODEL_TAG);
        if (M == NULL)
            _exit(4);
        G = 100000;
        struct pm_rt *rt = pm_rt_of(S);
        race_inner = rt->flush;
        rt->flush = &race_ops;    /* no other thread yet */
        sc->run();
        _exit(5);
    }
    int st;
    waitpid(pid, &st, 0);
    uint64_t failures = 0;
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
        fprintf(stderr, "%s: child ended with status %#x\n", sc->name, st);
        failures++;
    } else {
        failures += (uint64_t)verify(f.work, 1, (void *)sc);
        if (sc->run == race_root_run || sc->run == race_rootlink_run ||
            sc->run == race_rootloser_run) {
            uint64_t tag = sc->run == race_root_run ? race_tag_b : 201;
            allocator_space_t *s = open_space(f.work, sc->size, sc->max_size);
            struct root_obj *r = s ? persistent_find_root(s, tag) : NULL;
            if (r == NULL || r->seal != ch_seal_of(tag, sizeof *r, 0)) {
                fprintf(stderr, "%s: the root made beside a stopped claim is %s\n", sc->name,
                        r == NULL ? "gone" : "not whole");
                failures++;
            }
            if (s != NULL)
                persistent_space_close(s);
        }
    }
    printf("%-12s power: one race, %llu failures\n", sc->name,
           (unsigned long long)failures);
    ch_total_failures += failures;
    ch_files_remove(&f);
}

static struct scenario races[] = {
    {"race-npub", 64u << 10, 0, 0, NULL, race_npub_run},
    {"race-grow", 64u << 10, 2u << 20, 0, NULL, race_grow_run},
    {"race-root", 64u << 10, 0, 0, NULL, race_root_run},
    {"race-lanelink", 64u << 10, 0, 0, NULL, race_lanelink_run},
    {"race-rootlink", 256u << 10, 0, 0, race_rootlink_setup, race_rootlink_run},
    {"race-rootloser", 256u << 10, 0, 0, race_rootlink_setup, race_rootloser_run},
};

int main(int argc, char **argv)
{
    ch_set_mode(argc > 1 ? argv[1] : "kill");
    for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++)
        if (ch_picked(argc, argv, scenarios[i].name))
            sweep(&scenarios[i]);
    if (ch_picked(argc, argv, "recovery"))
        sweep_recovery("recovery", 64u << 10, 100, 1);
    if (ch_picked(argc, argv, "recovery-wide"))
        sweep_recovery("recovery-wide", 512u << 10, 16, 8);
    for (size_t i = 0; ch_mode == PM_CRASH_POWER && i < sizeof races / sizeof *races; i++)
        if (ch_picked(argc, argv, races[i].name))
            race(&races[i]);
    return ch_done();
}

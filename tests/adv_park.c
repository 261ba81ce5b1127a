/* Adversarial driver: parks threads at random instants (G1, G5b), kills the
 * process at random moments (G2, G7), and follows a growing writer from a
 * read-only view (G6).
 *
 *   adv_park park  grow|small SEED [PARKS] [THREADS]
 *   adv_park kill  grow|small SEED [KILLS] [THREADS]
 *   adv_park reader SEED [SECONDS]
 *
 * Every block carries a pattern keyed by its offset (or its root tag) and a
 * generation; a model in a root records offsets, sizes and seals.
 * ADV_AUTO=1: thread 0 runs automatic transactions, the others paused at
 * an operation boundary (a parked thread counts as paused and stays parked
 * until the transaction ends); see op_auto and run_park_auto.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "persistent_mem.h"

#define MAXT 8
#define NS 24
#define NTX 8
#define NR 160
#define NSH 32
#define MODEL_TAG 0xAD000000ull
#define TX_TAG 0xAD100000ull
#define ROOT_TAG(t, k) (0xAE000000ull + (uint64_t)(t) * 1000 + (k))

struct entry {
    persistent_offset_t off;
    uint64_t size, gen, seal;
};

struct model {
    uint64_t magic;
    uint32_t threads, pad;
    struct entry own[MAXT][NS];
    uint64_t rsize[MAXT][NR], rgen[MAXT][NR], rseal[MAXT][NR];
    persistent_offset_t shared[NSH];
};

struct txblk {
    struct entry e[NTX];
};

static allocator_space_t *S;
static struct model *M;
static struct txblk *TXB[MAXT];
static int NT = 6;
static bool small_mode;
static bool kill_mode;
static const char *path;
static uint64_t g_seed;
static int no_tx, no_roots;

static _Atomic int stop;
static _Atomic uint64_t ops[MAXT];
static _Atomic int incall[MAXT];
static _Atomic uint64_t enomem[MAXT];
static _Atomic uint64_t findings;
static _Atomic uint64_t hook_reports;
static pthread_t tids[MAXT];

#define FIND(...)                                                           \
    do {                                                                    \
        fprintf(stderr, "FINDING: " __VA_ARGS__);                           \
        fputc('\n', stderr);                                                \
        atomic_fetch_add(&findings, 1);                                     \
    } while (0)

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    return x ^ (x >> 33);
}

static uint64_t seal_of(uint64_t key, uint64_t n, uint64_t g)
{
    return mix(key ^ mix(n ^ mix(g))) | 1;
}

static _Thread_local int my_t = -1;
static void fill_check(void *p, size_t n, uint64_t key);
static void fill(void *p, size_t n, uint64_t key, uint64_t g)
{
    if (my_t >= 0)
        fill_check(p, n, key);
    uint64_t x = mix(key ^ g), *w = p;
    size_t nw = n / 8;
    for (size_t i = 0; i < nw; i++)
        w[i] = x + i * 0x9e3779b97f4a7c15ull;
    unsigned char *c = p;
    for (size_t j = nw * 8; j < n; j++)
        c[j] = (unsigned char)(x >> (8 * (j % 8)));
}

static bool filled(const void *p, size_t n, uint64_t key, uint64_t g)
{
    uint64_t x = mix(key ^ g);
    const uint64_t *w = p;
    size_t nw = n / 8;
    for (size_t i = 0; i < nw; i++)
        if (w[i] != x + i * 0x9e3779b97f4a7c15ull)
            return false;
    const unsigned char *c = p;
    for (size_t j = nw * 8; j < n; j++)
        if (c[j] != (unsigned char)(x >> (8 * (j % 8))))
            return false;
    return true;
}

static uint64_t rnd(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull;
    return mix(*s);
}

static int auto_small;   /* thread 0 in a small space's automatic transaction */
static uint64_t auto_room = 128u << 10;   /* ADV_AUTO_ROOM (KiB) */
static size_t pick_size(uint64_t *r)
{
    /* each page it writes takes a page of log from the pages free at the
     * begin: small blocks keep it within the room op_auto asked for */
    if (auto_small)
        return 1 + rnd(r) % 4096;
    uint64_t x = rnd(r) % 1000;
    if (x < 600)
        return 1 + rnd(r) % 512;
    if (x < 850)
        return 513 + rnd(r) % 16384;
    if (x < 975)
        return 16384 + rnd(r) % (256 << 10);
    if (small_mode)
        return (64 << 10) + rnd(r) % (512 << 10);
    return (1u << 20) + rnd(r) % (4u << 20);
}

static void hook(allocator_space_t *s, int code, const void *ptr, const char *msg, void *arg)
{
    (void)s, (void)arg;
    atomic_fetch_add(&hook_reports, 1);
    char b[400];
    int n = snprintf(b, sizeof b, "FINDING: error hook code %d ptr %p: %s\n", code, ptr, msg);
    if (write(2, b, (size_t)n) < 0) {
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define IN(t) atomic_store(&incall[t], 1)
#define OUT(t) atomic_store(&incall[t], 0)

static void note_enomem(int t, size_t sz, const char *what)
{
    atomic_fetch_add(&enomem[t], 1);
    if (!small_mode)
        FIND("ENOMEM on growable space (1 GiB max): thread %d %s size %zu", t, what, sz);
}

/* ---- early duplicate check ---- */
static _Atomic uint64_t roff[MAXT][NR];
static _Atomic uint64_t transient[MAXT];   /* a plain block a thread holds */
static void dup_check(int t, const char *what, const void *p, const persistent_offset_t *excl)
{
    if (!p)
        return;
    uint64_t b = persistent_offset_from_ptr(S, p), us = persistent_usable_size(S, p);
    char who[80] = "";
    for (int u = 0; u < MAXT && !who[0]; u++)
        for (int i = 0; i < NS; i++) {
            if (&M->own[u][i].off == excl)
                continue;
            uint64_t o = __atomic_load_n(&M->own[u][i].off, __ATOMIC_ACQUIRE);
            if (o && o >= b && o < b + us) {
                snprintf(who, sizeof who, "own %d/%d", u, i);
                break;
            }
        }
    for (int i = 0; i < NSH && !who[0]; i++) {
        if (&M->shared[i] == excl)
            continue;
        uint64_t o = __atomic_load_n(&M->shared[i], __ATOMIC_ACQUIRE);
        if (o && o >= b && o < b + us)
            snprintf(who, sizeof who, "shared %d", i);
    }
    for (int u = 0; u < MAXT && !who[0]; u++)
        for (int k = 0; k < NR; k++) {
            uint64_t o = atomic_load(&roff[u][k]);
            if (o && o >= b && o < b + us) {
                snprintf(who, sizeof who, "root %d/%d", u, k);
                break;
            }
        }
    for (int u = 0; u < MAXT && !who[0]; u++) {
        uint64_t o = persistent_offset_from_ptr(S, TXB[u]);
        if (o >= b && o < b + us)
            snprintf(who, sizeof who, "txroot %d", u);
        for (int j = 0; j < NTX; j++) {
            o = __atomic_load_n(&TXB[u]->e[j].off, __ATOMIC_ACQUIRE);
            if (u != t && o && o >= b && o < b + us)
                snprintf(who, sizeof who, "tx %d/%d", u, j);
        }
    }
    for (int u = 0; u < MAXT && !who[0]; u++) {
        uint64_t o = atomic_load(&transient[u]);
        if (u != t && o && o >= b && o < b + us)
            snprintf(who, sizeof who, "transient of thread %d", u);
    }
    uint64_t mo = persistent_offset_from_ptr(S, M);
    if (!who[0] && mo >= b && mo < b + us)
        snprintf(who, sizeof who, "model");
    if (who[0] && excl && __atomic_load_n(excl, __ATOMIC_SEQ_CST) != b)
        return;                         /* freed from a shared slot meanwhile */
    if (who[0]) {
        FIND("seed %" PRIu64 " DUP thread %d %s got %" PRIu64 " (usable %" PRIu64 ") still named by %s (pid %d)",
             g_seed, t, what, b, us, who, (int)getpid());
        fflush(NULL);
        _exit(9);
    }
}

static int slots_bad(const char *when)
{
    int bad = 0;
    for (int u = 0; u < MAXT; u++)
        for (int i = 0; i < NS; i++) {
            struct entry *e = &M->own[u][i];
            if (!e->off || e->seal != seal_of(e->off, e->size, e->gen))
                continue;
            void *p = persistent_offset_to_ptr(S, e->off);
            size_t us = persistent_usable_size(S, p);
            if (us < e->size || !filled(p, e->size, e->off, e->gen)) {
                FIND("seed %" PRIu64 " %s: own slot %d/%d off %" PRIu64 " size %" PRIu64 " usable %zu bad (pid %d)",
                     g_seed, when, u, i, (uint64_t)e->off, e->size, us, (int)getpid());
                bad++;
            }
        }
    return bad;
}

static void fill_check(void *p, size_t n, uint64_t key)
{
    uint64_t b = persistent_offset_from_ptr(S, p);
    for (int u = 0; u < MAXT; u++)
        for (int i = 0; i < NS; i++) {
            struct entry *e = &M->own[u][i];
            uint64_t o = __atomic_load_n(&e->off, __ATOMIC_ACQUIRE), sz = e->size, g = e->gen, se = e->seal;
            if (!o || o == b || se != seal_of(o, sz, g))
                continue;
            if (b < o + sz && o < b + n) {
                FIND("seed %" PRIu64 " FILL thread %d fills [%" PRIu64 ",+%zu) key %" PRIu64 " usable %zu over sealed own %d/%d [%" PRIu64 ",+%" PRIu64 ") usable %zu (pid %d)",
                     g_seed, my_t, b, n, key, persistent_usable_size(S, p), u, i, o, sz,
                     persistent_usable_size(S, persistent_offset_to_ptr(S, o)), (int)getpid());
                fflush(NULL);
                _exit(9);
            }
        }
}

/* ---- the worker ---- */

static void op_own(int t, uint64_t *r)
{
    int i = (int)(rnd(r) % NS);
    struct entry *e = &M->own[t][i];
    if (e->off) {
        void *p = persistent_offset_to_ptr(S, e->off);
        if (e->seal == seal_of(e->off, e->size, e->gen) && !filled(p, e->size, e->off, e->gen)) {
            uint64_t x = mix(e->off ^ e->gen);
            size_t w = 0, nw = e->size / 8, nbad = 0, first = (size_t)-1;
            for (w = 0; w < nw; w++)
                if (((uint64_t *)p)[w] != x + w * 0x9e3779b97f4a7c15ull) {
                    nbad++;
                    if (first == (size_t)-1)
                        first = w;
                }
            FIND("seed %" PRIu64 " thread %d own slot %d pattern mismatch off %" PRIu64 " size %" PRIu64
                 " usable %zu: %zu of %zu words bad, first at byte %zu holds %016" PRIx64 " (pid %d)",
                 g_seed, t, i, (uint64_t)e->off, e->size, persistent_usable_size(S, p), nbad, nw, first * 8,
                 first != (size_t)-1 ? ((uint64_t *)p)[first] : 0, (int)getpid());
            _exit(9);
        }
        if (rnd(r) % 3 == 0) { /* resize */
            size_t n = pick_size(r);
            /* unsealed: a kill came between an earlier call's publication
             * and the seal, so size and gen are an older block's */
            bool sealed = e->seal == seal_of(e->off, e->size, e->gen);
            uint64_t was = e->off;
            e->seal = 0;
            IN(t);
            int rc = persistent_realloc_into(S, &e->off, n);
            OUT(t);
            if (rc == -ENOMEM) {
                note_enomem(t, n, "realloc_into");
                if (n < e->size)
                    FIND("shrinking realloc_into failed %" PRIu64 " -> %zu", e->size, n);
                void *p2 = persistent_offset_to_ptr(S, e->off);
                if (e->off != was)
                    FIND("seed %" PRIu64 " failed realloc_into moved slot %d/%d: %" PRIu64 " -> %" PRIu64,
                         g_seed, t, i, was, (uint64_t)e->off);
                else if (sealed && (persistent_usable_size(S, p2) < e->size ||
                                    !filled(p2, e->size, e->off, e->gen)))
                    FIND("seed %" PRIu64 " failed realloc_into changed slot %d/%d's block %" PRIu64
                         " (usable %zu, size %" PRIu64 ")",
                         g_seed, t, i, was, persistent_usable_size(S, p2), e->size);
                /* (until 2026-12-06 an unsealed slot was sealed here with
                 * the older block's size: the G2 "violation" that
                 * docs/design.md tells of was this driver's) */
                if (sealed)
                    e->seal = seal_of(e->off, e->size, e->gen);
                return;
            }
            if (rc != 0) {
                FIND("realloc_into %d", rc);
                return;
            }
            dup_check(t, "realloc_into", persistent_offset_to_ptr(S, e->off), &e->off);
            uint64_t g = e->gen + 1;
            e->size = n;
            e->gen = g;
            fill(persistent_offset_to_ptr(S, e->off), n, e->off, g);
            e->seal = seal_of(e->off, n, g);
            return;
        }
        e->seal = 0;
        IN(t);
        int rc = persistent_free_from(S, &e->off);
        OUT(t);
        if (rc != 0 || e->off != 0)
            FIND("free_from %d", rc);
    } else {
        size_t n = pick_size(r);
        IN(t);
        int rc = persistent_alloc_into(S, &e->off, n);
        OUT(t);
        if (rc == -ENOMEM) {
            note_enomem(t, n, "alloc_into");
            return;
        }
        if (rc != 0) {
            FIND("alloc_into %d", rc);
            return;
        }
        dup_check(t, "alloc_into", persistent_offset_to_ptr(S, e->off), &e->off);
        uint64_t g = rnd(r);
        e->size = n;
        e->gen = g;
        fill(persistent_offset_to_ptr(S, e->off), n, e->off, g);
        e->seal = seal_of(e->off, n, g);
    }
}

/* Slots every thread frees from (the CAS decides), only the slot's owner
 * allocates into: no contents, but liveness and no block named twice. */
static _Atomic uint64_t shared_frees, shared_allocs;
static void op_shared(int t, uint64_t *r)
{
    int i = (int)(rnd(r) % NSH);
    persistent_offset_t *d = &M->shared[i];
    if (__atomic_load_n(d, __ATOMIC_ACQUIRE)) {
        IN(t);
        int rc = persistent_free_from(S, d);
        OUT(t);
        if (rc != 0)
            FIND("shared free_from %d", rc);
        else
            atomic_fetch_add(&shared_frees, 1);
    } else if (i % NT == t) {
        size_t n = pick_size(r);
        IN(t);
        int rc = persistent_alloc_into(S, d, n);
        OUT(t);
        if (rc == -ENOMEM)
            note_enomem(t, n, "alloc_into(shared)");
        else if (rc)
            FIND("shared alloc_into %d", rc);
        else {
            uint64_t o = __atomic_load_n(d, __ATOMIC_ACQUIRE);
            if (o)
                dup_check(t, "alloc_into(shared)", persistent_offset_to_ptr(S, o), d);
            atomic_fetch_add(&shared_allocs, 1);
        }
    }
}

static void op_plain(int t, uint64_t *r)
{
    size_t n = pick_size(r);
    unsigned char *p;
    uint64_t g = rnd(r);
    int kind = (int)(rnd(r) % 3);
    size_t al = (size_t)1 << (4 + rnd(r) % 10);
    IN(t);
    if (kind == 0)
        p = persistent_malloc(S, n);
    else if (kind == 1)
        p = persistent_calloc(S, 1, n);
    else
        p = persistent_aligned_alloc(S, al, n);
    OUT(t);
    if (!p) {
        note_enomem(t, n, kind == 2 ? "aligned_alloc" : "malloc");
        return;
    }
    dup_check(t, kind == 0 ? "malloc" : kind == 1 ? "calloc" : "aligned_alloc", p, NULL);
    atomic_store(&transient[t], persistent_offset_from_ptr(S, p));
    if (kind == 2 && ((uintptr_t)p & (al - 1)))
        FIND("aligned_alloc(%zu) misaligned", al);
    if (kind == 1)
        for (size_t j = 0; j < n; j += 97)
            if (p[j]) {
                FIND("calloc not zeroed");
                break;
            }
    if (persistent_usable_size(S, p) < n)
        FIND("usable_size %zu < %zu", persistent_usable_size(S, p), n);
    fill(p, n, 55, g);
    if (!filled(p, n, 55, g))
        FIND("plain block pattern mismatch");
    atomic_store(&transient[t], 0);
    IN(t);
    persistent_free(S, p);
    OUT(t);
}

static void op_realloc_chain(int t, uint64_t *r)
{
    size_t n = pick_size(r);
    uint64_t g = rnd(r);
    IN(t);
    void *p = persistent_malloc(S, n);
    OUT(t);
    if (!p) {
        note_enomem(t, n, "malloc");
        return;
    }
    dup_check(t, "malloc(chain)", p, NULL);
    atomic_store(&transient[t], persistent_offset_from_ptr(S, p));
    fill(p, n, 77, g);
    for (int k = 0; k < 4; k++) {
        size_t n2 = pick_size(r);
        atomic_store(&transient[t], 0);
        IN(t);
        bool ok = persistent_realloc(S, p, n2);
        OUT(t);
        if (!ok) {
            atomic_store(&transient[t], persistent_offset_from_ptr(S, p));
            note_enomem(t, n2, "realloc");
            if (n2 <= n)
                FIND("shrink realloc failed %zu -> %zu", n, n2);
            continue;
        }
        dup_check(t, "realloc(chain)", p, NULL);
        atomic_store(&transient[t], persistent_offset_from_ptr(S, p));
        size_t m = n < n2 ? n : n2;
        if (!filled(p, m & ~(size_t)7, 77, g))
            FIND("realloc lost contents %zu -> %zu", n, n2);
        n = n2;
        fill(p, n, 77, g);
    }
    atomic_store(&transient[t], 0);
    IN(t);
    persistent_free(S, p);
    OUT(t);
}

static void op_root(int t, uint64_t *r)
{
    int k = (int)(rnd(r) % NR);
    uint64_t tag = ROOT_TAG(t, k);
    if (M->rseal[t][k]) {
        void *p = persistent_find_root(S, tag);
        if (!p) {
            FIND("sealed root %" PRIx64 " missing", tag);
            return;
        }
        if (M->rseal[t][k] == seal_of(tag, M->rsize[t][k], M->rgen[t][k]) &&
            !filled(p, M->rsize[t][k], tag, M->rgen[t][k]))
            FIND("root %" PRIx64 " pattern mismatch", tag);
        if (rnd(r) % 2) {
            M->rseal[t][k] = 0;
            atomic_store(&roff[t][k], 0);
            IN(t);
            int rc = persistent_root_remove(S, tag);
            OUT(t);
            if (rc != 0)
                FIND("root_remove %d", rc);
        }
        return;
    }
    void *old = persistent_find_root(S, tag);
    if (old) { /* left by a crash before its seal */
        atomic_store(&roff[t][k], 0);
        IN(t);
        int rc = persistent_root_remove(S, tag);
        OUT(t);
        if (rc != 0)
            FIND("root_remove (unsealed) %d", rc);
        return;
    }
    size_t n = 1 + rnd(r) % (small_mode ? 2048 : 8192);
    uint64_t g = rnd(r);
    void *p;
    if (rnd(r) % 2) {
        bool created = false;
        IN(t);
        p = persistent_root_get(S, tag, n, &created);
        OUT(t);
        if (!p) {
            note_enomem(t, n, "root_get");
            return;
        }
        if (!created)
            FIND("root_get of absent tag did not create");
        dup_check(t, "root_get", p, NULL);
        for (size_t j = 0; j < n; j += 61)
            if (((unsigned char *)p)[j]) {
                FIND("new root not zeroed");
                break;
            }
    } else {
        IN(t);
        void *b = persistent_malloc(S, n);
        OUT(t);
        if (!b) {
            note_enomem(t, n, "malloc(root)");
            return;
        }
        dup_check(t, "malloc(root)", b, NULL);
        fill(b, n, tag, g);
        IN(t);
        p = persistent_root_publish(S, tag, b);
        OUT(t);
        if (!p) {
            note_enomem(t, n, "root_publish");
            IN(t);
            persistent_free(S, b);
            OUT(t);
            return;
        }
        if (p != b)
            FIND("root_publish of absent tag returned another block");
    }
    M->rsize[t][k] = n;
    M->rgen[t][k] = g;
    fill(p, n, tag, g);
    M->rseal[t][k] = seal_of(tag, n, g);
    atomic_store(&roff[t][k], persistent_offset_from_ptr(S, p));
}

static void op_tx(int t, uint64_t *r)
{
    struct txblk *b = TXB[t];
    int j = (int)(rnd(r) % NTX);
    struct entry *e = &b->e[j], before = *e;
    if (e->off && (e->seal != seal_of(e->off, e->size, e->gen) ||
                   !filled(persistent_offset_to_ptr(S, e->off), e->size, e->off, e->gen)))
        FIND("tx slot pattern mismatch before tx");
    IN(t);
    int rc = persistent_tx_begin(S);
    if (rc) {
        OUT(t);
        if (rc == -ENOMEM)
            note_enomem(t, 0, "tx_begin");
        else
            FIND("tx_begin %d", rc);
        return;
    }
    if ((rc = persistent_tx_add(S, e, sizeof *e)) != 0) {
        persistent_tx_abort(S);
        OUT(t);
        if (rc == -ENOMEM)
            note_enomem(t, 0, "tx_add");
        else
            FIND("tx_add %d", rc);
        return;
    }
    if (e->off && (rc = persistent_tx_free(S, persistent_offset_to_ptr(S, e->off))) != 0) {
        if (rc == -ENOMEM) {
            note_enomem(t, 0, "tx_free");
            persistent_tx_abort(S);
            OUT(t);
            if (memcmp(e, &before, sizeof before) != 0)
                FIND("tx abort did not restore the entry");
            return;
        }
        FIND("tx_free %d", rc);
    }
    size_t n = pick_size(r);
    bool aborted = false;
    void *p = persistent_tx_alloc(S, n);
    OUT(t);
    if (!p) {
        note_enomem(t, n, "tx_alloc");
        IN(t);
        persistent_tx_abort(S);
        OUT(t);
        aborted = true;
    } else {
        dup_check(t, "tx_alloc", p, NULL);
        uint64_t g = rnd(r);
        persistent_offset_t off = persistent_offset_from_ptr(S, p);
        fill(p, n, off, g);
        e->off = off;
        e->size = n;
        e->gen = g;
        e->seal = seal_of(off, n, g);
        IN(t);
        if (rnd(r) % 4 == 0) {
            aborted = true;
            rc = persistent_tx_abort(S);
        } else
            rc = persistent_tx_commit(S);
        OUT(t);
        if (rc)
            FIND("tx end %d", rc);
    }
    if (aborted && memcmp(e, &before, sizeof before) != 0)
        FIND("tx abort did not restore the entry");
    if (e->off && !filled(persistent_offset_to_ptr(S, e->off), e->size, e->off, e->gen))
        FIND("tx slot pattern mismatch after tx (aborted %d)", aborted);
}

static _Atomic int pause_req;
/* Thread t waits in the pause loop.  Per thread, not a count: a thread
 * parked there must not be counted twice, and a parked thread outside it
 * is counted apart (others_paused). */
static _Atomic int pausing[MAXT];
/* Who asked for the pause: thread 0's op_auto (0) or the park mode's
 * probe from the main thread (MAXT); one pause at a time. */
static _Atomic int pause_owner = -1;
static _Atomic int park_at_boundary = -1;

static int use_auto, cycle_close, kill_park;
static _Atomic int auto_pending, scanning;
static _Atomic int in_auto;                 /* thread 0 is inside op_auto */
static uint64_t auto_done, auto_busy, auto_gaveway, auto_noroom, auto_short;

/* op_auto's count of the paused and the main thread's release of a parked
 * victim decide under this lock: once the count took the victim as
 * paused, the victim stays where it is until the transaction has ended. */
static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int parked, release_v;
/* park mode with ADV_AUTO (run_park_auto): how many children ran before
 * this one (0 for the first: its schedule is the seed's as without it) */
static uint64_t park_run_mix;

/* Every worker but t is paused: in the pause loop, or parked by the
 * driver (not yet let go: the main thread's park loop then keeps it
 * parked while auto_pending is up).  If so, raise auto_pending.  SIGUSR1
 * is blocked meanwhile: thread 0 parked with the lock held would hold
 * the main thread up at its release. */
static bool others_paused(int t)
{
    sigset_t m, old;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &m, &old);
    pthread_mutex_lock(&park_mu);
    int n = 0, p = atomic_load(&parked);
    for (int u = 0; u < NT; u++)
        if (u != t && (atomic_load(&pausing[u]) || (u == p && !atomic_load(&release_v))))
            n++;
    bool all = n == NT - 1;
    if (all)
        atomic_store(&auto_pending, 1);
    pthread_mutex_unlock(&park_mu);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return all;
}

static void auto_end(void)
{
    atomic_store(&auto_pending, 0);
    atomic_store(&pause_req, 0);
    atomic_store(&pause_owner, -1);
    atomic_store(&in_auto, 0);
}

/* What an automatic transaction's log could still go on in: it takes
 * 64 KiB segments of contiguous pages free at the begin (tx.c seg_claim),
 * so free pages in shorter runs do not count.  A lower bound from the
 * runs' length buckets: a run of 2^i pages or more holds 2^(i-4). */
static uint64_t log_room_now(struct persistent_frag *fr)
{
    if (persistent_frag_get(S, fr) != 0)
        return 0;
    uint64_t segs = 0;
    for (int i = 0; i < PERSISTENT_RUN_BUCKETS; i++)
        if (((uint64_t)fr->page_size << i) >= (64u << 10))
            segs += fr->free_runs[i] * (((uint64_t)fr->page_size << i) / (64u << 10));
    return segs * (64u << 10);
}

/* Thread 0 only: every other worker waits at an operation boundary (the
 * program's own synchronisation), then an automatic transaction runs plain
 * calls and plain stores, committed or aborted. */
static void op_auto(int t, uint64_t *r)
{
    /* the probe's pause first: thread 0 gives way and pauses for it at its
     * next boundary (waiting here, it would never pause) */
    int none = -1;
    atomic_store(&in_auto, 1);
    if (!atomic_compare_exchange_strong(&pause_owner, &none, t)) {
        auto_gaveway++;
        atomic_store(&in_auto, 0);
        return;
    }
    atomic_store(&pause_req, 1);
    double t0 = now();
    bool all;
    while (!(all = others_paused(t)) && now() - t0 < 10 && !atomic_load(&stop))
        usleep(100);
    if (!all) {
        if (!atomic_load(&stop))
            FIND("others did not pause for the automatic transaction");
        auto_end();
        return;
    }
    /* the kill mode's scanner calls the library too: keep it out (a call
     * during the transaction is reported through the hook, as documented);
     * others_paused raised auto_pending */
    while (atomic_load(&scanning))
        usleep(100);
    /* park mode, fixed space: a write whose page finds no log room stops
     * the process (by design; run_park_auto goes on after it), so begin
     * only with room for the log (the kill mode kills its child anyway) */
    struct persistent_frag fr;
    if (small_mode && !kill_mode && log_room_now(&fr) < auto_room) {
        auto_noroom++;
        auto_end();
        return;
    }
    int rc = -EBUSY;
    for (int i = 0; i < 50 && rc == -EBUSY; i++) {
        IN(t);
        rc = persistent_tx_begin_auto(S);
        OUT(t);
        if (rc == -EBUSY)
            usleep(1000);
    }
    if (rc) {
        if (rc == -EBUSY)
            auto_busy++;
        else if (rc == -ENOMEM)
            note_enomem(t, 0, "tx_begin_auto");  /* no room for its log */
        else
            FIND("tx_begin_auto %d", rc);
        auto_end();
        return;
    }
    int n = 1 + (int)(rnd(r) % 6);
    auto_small = small_mode && !kill_mode;
    for (int i = 0; i < n; i++) {
        /* and stop before the room is gone: an operation may take a new
         * superblock (32 KiB in a 3 MiB space) out of the same runs */
        if (auto_small && log_room_now(&fr) < auto_room) {
            auto_short++;
            break;
        }
        uint64_t x = rnd(r) % 3;
        if (x == 0)
            op_own(t, r);
        else if (x == 1 && !no_roots)
            op_root(t, r);
        else
            op_plain(t, r);
    }
    auto_small = 0;
    IN(t);
    rc = rnd(r) % 3 == 0 ? persistent_tx_abort(S) : persistent_tx_commit(S);
    OUT(t);
    if (rc)
        FIND("auto tx end %d", rc);
    /* an abort takes back the roots the transaction made or removed; the
     * volatile record of them (roff, for dup_check) follows the space */
    for (int k = 0; k < NR; k++) {
        void *rp = persistent_find_root(S, ROOT_TAG(t, k));
        atomic_store(&roff[t][k], rp ? persistent_offset_from_ptr(S, rp) : 0);
    }
    auto_done++;
    auto_end();
}

static double maxgap[MAXT];
static int maxgap_op[MAXT], maxgap_parked[MAXT];

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    my_t = t;
    double last = now();
    uint64_t r = mix(g_seed * 1000003 + (uint64_t)t) ^ park_run_mix;
    while (!atomic_load(&stop)) {
        /* a loop: a thread that saw the last pause end but had not yet
         * lowered pausing may have been counted for the next one already */
        bool waited = false;
        while (atomic_load(&pause_req) && !atomic_load(&stop)) {
            waited = true;
            atomic_store(&pausing[t], 1);
            while (atomic_load(&pause_req) && !atomic_load(&stop))
                usleep(200);
            atomic_store(&pausing[t], 0);
        }
        if (waited && atomic_load(&stop))
            break;
        if (atomic_load(&park_at_boundary) == t) {
            atomic_store(&park_at_boundary, -1);
            pthread_kill(pthread_self(), SIGUSR1);
        }
        uint64_t x = rnd(&r) % 100;
        int pk = atomic_load(&parked);
        double t0 = now();
        if (x < 25)
            op_own(t, &r);
        else if (x < 35)
            op_shared(t, &r);
        else if (x < 50)
            op_plain(t, &r);
        else if (x < 58)
            op_realloc_chain(t, &r);
        else if (x < 62 && use_auto && t == 0)
            op_auto(t, &r);
        else if (x < 78) {
            if (!no_roots)
                op_root(t, &r);
        } else if (!no_tx)
            op_tx(t, &r);
        atomic_fetch_add(&ops[t], 1);
        double t1 = now();
        if (t1 - t0 > maxgap[t]) {
            maxgap[t] = t1 - t0;
            maxgap_op[t] = (int)x;
            maxgap_parked[t] = pk >= 0 || atomic_load(&parked) >= 0;
        }
        (void)last;
    }
    return NULL;
}

/* ---- open / model ---- */

static allocator_space_t *open_space(bool create)
{
    struct persistent_options o = {0};
    o.flags = create ? PERSISTENT_OPEN_CREATE : 0;
    o.durability = PERSISTENT_DURABILITY_PROCESS;
    if (small_mode) {
        o.size = 3u << 20;
        o.max_size = 0;
    } else {
        o.size = 1u << 20;
        o.max_size = 1ull << 30;
    }
    allocator_space_t *s = NULL;
    int rc = persistent_space_open(path, &o, &s);
    if (rc) {
        fprintf(stderr, "open %s: %d %s\n", path, rc, persistent_errormsg());
        return NULL;
    }
    return s;
}

static void attach_model(void)
{
    bool created;
    M = persistent_root_get(S, MODEL_TAG, sizeof(struct model), &created);
    if (!M) {
        fprintf(stderr, "no model root\n");
        exit(3);
    }
    for (int t = 0; t < MAXT; t++) {
        TXB[t] = persistent_root_get(S, TX_TAG + (uint64_t)t, sizeof(struct txblk), &created);
        if (!TXB[t]) {
            fprintf(stderr, "no tx root\n");
            exit(3);
        }
    }
}


/* ---- park mode ---- */

static _Atomic int parked = -1;
static void report_gaps(void)
{
    for (int t = 0; t < NT; t++)
        printf("  thread %d: %" PRIu64 " ops, longest op %.3f s (op %d, a thread parked %d)\n", t,
               atomic_load(&ops[t]), maxgap[t], maxgap_op[t], maxgap_parked[t]);
}
static _Atomic int release_v;

static _Atomic int want_incall, missed;
static void park_handler(int sig)
{
    (void)sig;
    int me = -1;
    for (int t = 0; t < NT; t++)
        if (pthread_equal(tids[t], pthread_self()))
            me = t;
    if (atomic_load(&want_incall) && me >= 0 && !atomic_load(&incall[me])) {
        atomic_store(&missed, 1);
        return;
    }
    atomic_store(&parked, me);
    if (kill_mode && getenv("ADV_PARKBT")) {
        char b[80];
        int n = snprintf(b, sizeof b, "PARKED thread %d pid %d:\n", me, (int)getpid());
        if (write(2, b, (size_t)n) < 0) {
        }
        void *f[32];
        int nf = backtrace(f, 32);
        backtrace_symbols_fd(f, nf, 2);
    }
    struct timespec ts = {0, 200000};
    while (!atomic_load(&release_v))
        nanosleep(&ts, NULL);
    atomic_store(&parked, -1);
}

static void bt_handler(int sig)
{
    (void)sig;
    void *f[64];
    int n = backtrace(f, 64);
    backtrace_symbols_fd(f, n, 2);
}

/* Quiesce every worker but the victim; from the main thread (no superblocks
 * of its own) ask for a block of each class that has a free slot somewhere,
 * and for a page run where one is free. */
static uint64_t probes, probe_allocs, probes_skipped;
static bool others_pausing(int victim)
{
    for (int u = 0; u < NT; u++)
        if (u != victim && !atomic_load(&pausing[u]))
            return false;
    return true;
}
static void end_probe(void)
{
    atomic_store(&pause_req, 0);
    atomic_store(&pause_owner, -1);
}
static void false_enomem_probe(int victim, bool victim_incall)
{
    /* thread 0 has the pause for an automatic transaction (maybe parked in
     * it: the victim): no probe now, its calls would wait at their gate */
    int none = -1;
    if (!atomic_compare_exchange_strong(&pause_owner, &none, MAXT)) {
        probes_skipped++;
        return;
    }
    atomic_store(&pause_req, 1);
    double t0 = now();
    while (!others_pausing(victim) && now() - t0 < 5)
        usleep(500);
    if (!others_pausing(victim)) {
        FIND("workers did not reach a pause point within 5 s while thread %d parked", victim);
        end_probe();
        return;
    }
    probes++;
    struct persistent_frag fr;
    if (persistent_frag_get(S, &fr) != 0) {
        end_probe();
        return;
    }
    struct persistent_info info;
    persistent_space_info(S, &info);
    static void *held[4096];
    int nh = 0;
    if (fr.largest_free_run > 0 && !victim_incall) {
        size_t n = (size_t)fr.largest_free_run * fr.page_size;
        if (n > (size_t)info.superblock_size) {
            void *p = persistent_malloc(S, n - 64);
            probe_allocs++;
            if (!p)
                FIND("false ENOMEM: a free run of %" PRIu64 " pages exists, malloc(%zu) failed (victim in call %d)",
                     fr.largest_free_run, n - 64, victim_incall);
            else if (nh < 4096)
                held[nh++] = p;
        }
    }
    for (int i = 0; i < nh; i++)
        persistent_free(S, held[i]);
    nh = 0;
    for (uint32_t c = 0; c < fr.n_classes && c < PERSISTENT_N_CLASSES; c++) {
        if (fr.cls[c].capacity_blocks > fr.cls[c].live_blocks) {
            void *p = persistent_malloc(S, fr.cls[c].block_size);
            probe_allocs++;
            if (!p) {
                if (!victim_incall)
                    FIND("false ENOMEM: class %u (%u B) has %" PRIu64 " of %" PRIu64
                         " blocks live, malloc from a fresh thread failed (victim %d parked outside a call)",
                         c, fr.cls[c].block_size, fr.cls[c].live_blocks, fr.cls[c].capacity_blocks,
                         victim);
                else
                    fprintf(stderr, "note: class %u ENOMEM with victim parked in a call\n", c);
            } else if (nh < 4096)
                held[nh++] = p;
        }
    }
    for (int i = 0; i < nh; i++)
        persistent_free(S, held[i]);
    end_probe();
}

/* Lets the parked victim go on, but not while thread 0's automatic
 * transaction is pending or open, unless the victim is thread 0 itself:
 * op_auto counted the victim as paused, and a plain write of its own there
 * would be another thread's (after an abort the process stops, by
 * design).  The transaction ends without the victim (G1); 20 s is a
 * finding. */
static uint64_t release_waits;
static void release_victim(uint64_t seed, int k, int v)
{
    double t0 = now();
    for (bool waited = false;; waited = true) {
        pthread_mutex_lock(&park_mu);
        bool hold = v != 0 && atomic_load(&auto_pending);
        if (!hold)
            atomic_store(&release_v, 1);
        pthread_mutex_unlock(&park_mu);
        if (!hold) {
            release_waits += waited;
            break;
        }
        if (now() - t0 > 20) {
            FIND("seed %" PRIu64 " park %d: thread 0's automatic transaction did not end within 20 s while "
                 "thread %d parked; its stack:", seed, k, v);
            pthread_kill(tids[0], SIGUSR2);
            usleep(300000);
            fflush(NULL);
            _exit(9);     /* letting the victim go would make a second finding */
        }
        usleep(1000);
    }
    while (atomic_load(&parked) == v)
        usleep(100);
}

static char park_path[32];
static bool park_resume;
static _Atomic uint64_t *park_progress;
static int run_park(uint64_t seed, int parks)
{
    char tmpl[] = "/dev/shm/advpark-XXXXXX";
    if (park_path[0])
        path = park_path;  /* run_park_auto's */
    else {
        int fd = mkstemp(tmpl);
        close(fd);
        path = tmpl;
    }
    S = open_space(!park_resume);
    if (!S)
        return 2;
    if (park_resume) {
        /* after a stop by design: recovery rolled the transaction back */
        struct persistent_check_report rep;
        int rc = persistent_check(S, &rep);
        if (rc)
            FIND("seed %" PRIu64 " check after the stop's recovery: %d %s", seed, rc, rep.first_error);
    }
    attach_model();
    if (park_resume) {
        if (slots_bad("right after the stop's recovery"))
            return 1;
        for (int u = 0; u < MAXT; u++)
            for (int kk = 0; kk < NR; kk++) {
                void *rp = persistent_find_root(S, ROOT_TAG(u, kk));
                atomic_store(&roff[u][kk], rp ? persistent_offset_from_ptr(S, rp) : 0);
            }
    }
    struct sigaction sa = {0};
    sa.sa_handler = park_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = bt_handler;
    sigaction(SIGUSR2, &sa, NULL);
    {
        void *f[4];
        backtrace(f, 4);
    }
    for (int t = 0; t < NT; t++)
        pthread_create(&tids[t], NULL, worker, (void *)(intptr_t)t);
    uint64_t r = seed ^ park_run_mix;
    uint64_t stalls = 0, done = 0, incalls = 0, autoholds = 0;
    for (int k = 0; k < parks && !atomic_load(&findings); k++) {
        if (park_progress)
            atomic_store(park_progress, (uint64_t)k);
        usleep((useconds_t)(1000 + rnd(&r) % 200000));
        int v = (int)(rnd(&r) % (uint64_t)NT);
        atomic_store(&release_v, 0);
        double t0 = now();
        if (rnd(&r) % 3 == 0) {
            atomic_store(&want_incall, 0);
            atomic_store(&park_at_boundary, v);
        } else {
            /* two in three of these: only where the victim is inside a call */
            atomic_store(&want_incall, rnd(&r) % 3 != 0);
            for (int tries = 0; tries < 5000 && atomic_load(&parked) != v; tries++) {
                atomic_store(&missed, 0);
                pthread_kill(tids[v], SIGUSR1);
                while (atomic_load(&parked) != v && !atomic_load(&missed) && now() - t0 < 2)
                    usleep(20);
                if (atomic_load(&missed))
                    usleep((useconds_t)(rnd(&r) % 300));
            }
        }
        while (atomic_load(&parked) != v && now() - t0 < 2)
            usleep(100);
        if (atomic_load(&parked) != v) {
            atomic_store(&park_at_boundary, -1);
            release_victim(seed, k, v);     /* it may have parked just now */
            continue;
        }
        bool vin = atomic_load(&incall[v]);
        incalls += vin;
        uint64_t before[MAXT];
        for (int t = 0; t < NT; t++)
            before[t] = atomic_load(&ops[t]);
        /* every other thread must finish 3 operations within 6 s; but with
         * thread 0 parked inside op_auto (its automatic transaction open,
         * or its pause asked for) the others wait for it, by the design of
         * automatic transactions (the program keeps out of the space; a
         * call would wait at its gate): not a G1 stall.  There each must
         * reach the pause loop instead (in_auto cannot change while thread
         * 0 is parked). */
        bool autoheld = v == 0 && atomic_load(&in_auto);
        autoholds += autoheld;
        double dl = now() + 6;
        bool ok;
        do {
            usleep(2000);
            ok = true;
            for (int t = 0; t < NT; t++)
                if (t != v && atomic_load(&ops[t]) < before[t] + 3 && !(autoheld && atomic_load(&pausing[t])))
                    ok = false;
        } while (!ok && now() < dl);
        if (!ok) {
            stalls++;
            for (int t = 0; t < NT; t++)
                if (t != v && atomic_load(&ops[t]) < before[t] + 3 &&
                    !(autoheld && atomic_load(&pausing[t]))) {
                    FIND("seed %" PRIu64 " park %d: thread %d made %" PRIu64
                         " ops in 6 s while thread %d (in call %d%s) parked; its stack:",
                         seed, k, t, atomic_load(&ops[t]) - before[t], v, vin,
                         autoheld ? ", in op_auto: it did not pause either" : "");
                    pthread_kill(tids[t], SIGUSR2);
                    usleep(300000);
                }
        }
        if (small_mode && (rnd(&r) % 2))
            false_enomem_probe(v, vin);
        /* hold it a while longer: the others go on */
        double hold = now() + (double)(rnd(&r) % 1000) / 1000.0;
        uint64_t mid[MAXT];
        for (int t = 0; t < NT; t++)
            mid[t] = atomic_load(&ops[t]);
        while (now() < hold)
            usleep(5000);
        for (int t = 0; t < NT; t++)
            if (t != v && atomic_load(&ops[t]) == mid[t] && !atomic_load(&pause_req))
                fprintf(stderr, "note: thread %d made no op in the hold of park %d\n", t, k);
        release_victim(seed, k, v);
        done++;
    }
    if (parks == 0 && getenv("ADV_RUN_SECS"))
        sleep((unsigned)atoi(getenv("ADV_RUN_SECS")));
    atomic_store(&stop, 1);
    atomic_store(&release_v, 1);
    printf("auto transactions %" PRIu64 " (%" PRIu64 " busy)\n", auto_done, auto_busy);
    if (use_auto)
        printf("auto: %" PRIu64 " given way to a probe, %" PRIu64 " probes skipped for one, %" PRIu64
               " parks of thread 0 inside op_auto (the others paused for it), %" PRIu64 " not begun for want of log room, %" PRIu64 " ended early for it, %" PRIu64
               " releases held until its end\n",
               auto_gaveway, probes_skipped, autoholds, auto_noroom, auto_short, release_waits);
    for (int t = 0; t < NT; t++)
        pthread_join(tids[t], NULL);
    uint64_t tot = 0, en = 0;
    for (int t = 0; t < NT; t++)
        tot += ops[t], en += enomem[t];
    report_gaps();
    struct persistent_check_report rep;
    int rc = persistent_check(S, &rep);
    if (rc)
        FIND("seed %" PRIu64 " check after park run: %d %s", seed, rc, rep.first_error);
    struct persistent_info info;
    persistent_space_info(S, &info);
    persistent_space_close(S);
    S = open_space(false);
    if (S) {
        rc = persistent_check(S, &rep);
        if (rc)
            FIND("check after reopen: %d %s", rc, rep.first_error);
        persistent_space_close(S);
    } else
        FIND("reopen failed");
    unlink(path);
    printf("park %s seed %" PRIu64 ": %" PRIu64 " parks (%" PRIu64 " in a call), %" PRIu64
           " stalls, %" PRIu64 " ops, %" PRIu64 " enomem, %" PRIu64 " probes/%" PRIu64
           " allocs, capacity %" PRIu64 " MiB, findings %" PRIu64 "\n",
           small_mode ? "small" : "grow", seed, done, incalls, stalls, tot, en, probes,
           probe_allocs, info.capacity >> 20, atomic_load(&findings) + atomic_load(&hook_reports));
    return findings || hook_reports ? 1 : 0;
}

/* Park mode with automatic transactions runs in a child: a transaction
 * whose log finds no room (a fixed space full at the begin) stops the
 * process by design (persistent_mem.h), and so does an abort with another
 * thread inside the space -- which this driver never lets happen, so that
 * stop, like any other death, is a finding.  After a stop by design the
 * next child opens the space again (recovery rolls the transaction back;
 * checked right after the open) and goes on with the parks left. */
static int run_park_auto(uint64_t seed, int parks)
{
    strcpy(park_path, "/dev/shm/advpark-XXXXXX");
    int fd = mkstemp(park_path);
    if (fd < 0)
        return 2;
    close(fd);
    park_progress = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (park_progress == MAP_FAILED)
        return 2;
    int left = parks, rc = 0;
    uint64_t stops = 0;
    bool keep = false;
    for (;;) {
        int pfd[2];
        if (pipe(pfd))
            return 2;
        atomic_store(park_progress, 0);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            dup2(pfd[1], 2);
            close(pfd[1]);
            park_run_mix = stops ? mix(stops) : 0;
            park_resume = stops > 0;
            int c = run_park(seed, left);
            fflush(NULL);
            _exit(c);
        }
        close(pfd[1]);
        /* the child's stderr, passed on: which stop it was */
        bool log_full = false, other = false;
        char line[1024], buf[4096];
        size_t n = 0;
        ssize_t got;
        while ((got = read(pfd[0], buf, sizeof buf)) > 0) {
            if (write(2, buf, (size_t)got) < 0) {
            }
            for (ssize_t i = 0; i < got; i++) {
                if (n < sizeof line - 1)
                    line[n++] = buf[i];
                if (buf[i] == '\n') {
                    line[n] = 0;
                    log_full |= strstr(line, "has no room left for its log") != NULL;
                    other |= strstr(line, "during an automatic transaction that aborted") != NULL;
                    n = 0;
                }
            }
        }
        close(pfd[0]);
        int st;
        waitpid(pid, &st, 0);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && log_full && !other) {
            stops++;
            uint64_t d = atomic_load(park_progress);
            left -= d > 0 ? (int)d : 1;
            printf("auto: seed %" PRIu64 ": no room for the log, the process stopped (by design) in park %d, %d left\n",
                   seed, (int)d, left > 0 ? left : 0);
            if (left > 0)
                continue;
            /* the last stop: its recovery checked here */
            path = park_path;
            S = open_space(false);
            struct persistent_check_report rep;
            if (!S)
                FIND("seed %" PRIu64 " reopen after the stop failed", seed);
            else {
                if ((rc = persistent_check(S, &rep)) != 0)
                    FIND("seed %" PRIu64 " check after the stop's recovery: %d %s", seed, rc, rep.first_error);
                persistent_space_close(S);
            }
            rc = findings || hook_reports ? 1 : 0;
            break;
        }
        if (WIFEXITED(st)) {
            rc = WEXITSTATUS(st);
            break;
        }
        FIND("seed %" PRIu64 ": the park child died otherwise (status %x%s); space kept: %s", seed, st,
             other ? ", an abort with another thread inside the space" : "", park_path);
        keep = true;
        rc = 1;
        break;
    }
    printf("auto: seed %" PRIu64 ": %" PRIu64 " stops for a full log\n", seed, stops);
    if (!keep)
        unlink(park_path);
    return rc;
}

/* ---- kill mode ---- */

static uint64_t prev_unreached, early_kills, auto_stops;

static int verify(uint64_t seed, int k)
{
    S = open_space(false);
    if (!S) {
        FIND("seed %" PRIu64 " kill %d: reopen failed", seed, k);
        return 1;
    }
    struct persistent_check_report rep;
    int rc = persistent_check(S, &rep);
    if (rc)
        FIND("seed %" PRIu64 " kill %d: check %d: %s", seed, k, rc, rep.first_error);
    if (rep.in_flight_lanes || rep.orphan_bits || rep.pending_remote_frees || rep.open_transactions)
        FIND("seed %" PRIu64 " kill %d: after recovery lanes %" PRIu64 " orphans %" PRIu64
             " remote %" PRIu64 " tx %" PRIu64,
             seed, k, rep.in_flight_lanes, rep.orphan_bits, rep.pending_remote_frees,
             rep.open_transactions);
    M = persistent_find_root(S, MODEL_TAG);
    if (!M) {
        FIND("model root lost");
        persistent_space_close(S);
        return 1;
    }
    uint64_t reached = 0;
    for (int t = 0; t < MAXT; t++) {
        TXB[t] = persistent_find_root(S, TX_TAG + (uint64_t)t);
        if (!TXB[t]) {
            FIND("tx root %d lost", t);
            continue;
        }
        for (int j = 0; j < NTX; j++) {
            struct entry *e = &TXB[t]->e[j];
            if (!e->off)
                continue;
            reached++;
            void *p = persistent_offset_to_ptr(S, e->off);
            if (persistent_usable_size(S, p) < e->size)
                FIND("seed %" PRIu64 " kill %d: tx slot %d/%d block not live (usable %zu < %" PRIu64 ")",
                     seed, k, t, j, persistent_usable_size(S, p), e->size);
            else if (e->seal != seal_of(e->off, e->size, e->gen) || !filled(p, e->size, e->off, e->gen))
                FIND("seed %" PRIu64 " kill %d: tx slot %d/%d not intact (seal ok %d)", seed, k, t, j,
                     e->seal == seal_of(e->off, e->size, e->gen));
        }
        for (int i = 0; i < NS; i++) {
            struct entry *e = &M->own[t][i];
            if (!e->off)
                continue;
            reached++;
            void *p = persistent_offset_to_ptr(S, e->off);
            size_t us = persistent_usable_size(S, p);
            if (us == 0)
                FIND("seed %" PRIu64 " kill %d: own slot %d/%d block %" PRIu64 " not live", seed, k, t, i,
                     (uint64_t)e->off);
            else if (e->seal == seal_of(e->off, e->size, e->gen) &&
                     (us < e->size || !filled(p, e->size, e->off, e->gen)))
                FIND("seed %" PRIu64 " kill %d: own slot %d/%d sealed but pattern bad", seed, k, t, i);
        }
    }
    static struct { uint64_t a, b; } iv[MAXT * (NS + NTX) + NSH + 4096];
    int niv = 0;
    for (int t = 0; t < MAXT; t++)
        for (int i = 0; i < NS; i++)
            if (M->own[t][i].off) {
                iv[niv].a = M->own[t][i].off;
                iv[niv].b = iv[niv].a + persistent_usable_size(S, persistent_offset_to_ptr(S, M->own[t][i].off));
                niv++;
            }
    for (int t = 0; t < MAXT; t++)
        for (int j = 0; TXB[t] && j < NTX; j++)
            if (TXB[t]->e[j].off) {
                iv[niv].a = TXB[t]->e[j].off;
                iv[niv].b = iv[niv].a + persistent_usable_size(S, persistent_offset_to_ptr(S, TXB[t]->e[j].off));
                niv++;
            }
    for (int i = 0; i < NSH; i++) {
        persistent_offset_t off = M->shared[i];
        if (!off)
            continue;
        reached++;
        size_t us = persistent_usable_size(S, persistent_offset_to_ptr(S, off));
        if (!us)
            FIND("seed %" PRIu64 " kill %d: shared slot %d names %" PRIu64 ", not a live block", seed, k, i,
                 (uint64_t)off);
        iv[niv].a = off;
        iv[niv].b = off + us;
        niv++;
    }
    {
        struct persistent_root_iter it2 = {0};
        uint64_t tg;
        void *rp;
        while (persistent_root_next(S, &it2, &tg, &rp) == 1 && niv < (int)(sizeof iv / sizeof iv[0])) {
            iv[niv].a = persistent_offset_from_ptr(S, rp);
            iv[niv].b = iv[niv].a + persistent_usable_size(S, rp);
            niv++;
        }
    }
    for (int i = 0; i < niv; i++)
        for (int j = i + 1; j < niv; j++)
            if (iv[i].a < iv[j].b && iv[j].a < iv[i].b)
                FIND("seed %" PRIu64 " kill %d: two named blocks overlap: [%" PRIu64 ",%" PRIu64 ") [%" PRIu64
                     ",%" PRIu64 ")", seed, k, iv[i].a, iv[i].b, iv[j].a, iv[j].b);
    uint64_t nroots = 0;
    struct persistent_root_iter it = {0};
    uint64_t tag;
    void *p;
    while (persistent_root_next(S, &it, &tag, &p) == 1) {
        nroots++;
        if (persistent_find_root(S, tag) != p)
            FIND("root %" PRIx64 " iterates but find_root differs", tag);
        if (persistent_usable_size(S, p) == 0)
            FIND("root %" PRIx64 " block not live", tag);
        if (tag >= 0xAE000000ull) {
            uint64_t t = (tag - 0xAE000000ull) / 1000, kk = (tag - 0xAE000000ull) % 1000;
            if (t >= MAXT || kk >= NR) {
                FIND("unknown root tag %" PRIx64, tag);
                continue;
            }
            if (M->rseal[t][kk] == seal_of(tag, M->rsize[t][kk], M->rgen[t][kk]) &&
                (persistent_usable_size(S, p) < M->rsize[t][kk] ||
                 !filled(p, M->rsize[t][kk], tag, M->rgen[t][kk])))
                FIND("seed %" PRIu64 " kill %d: root %" PRIx64 " sealed but pattern bad", seed, k, tag);
        }
    }
    for (int t = 0; t < MAXT; t++)
        for (int kk = 0; kk < NR; kk++)
            if (M->rseal[t][kk] && !persistent_find_root(S, ROOT_TAG(t, kk)))
                FIND("seed %" PRIu64 " kill %d: sealed root %d/%d lost", seed, k, t, kk);
    if (nroots != rep.roots)
        FIND("iteration found %" PRIu64 " roots, check %" PRIu64, nroots, rep.roots);
    reached += nroots;
    if (rep.live_blocks < reached)
        FIND("seed %" PRIu64 " kill %d: %" PRIu64 " reached > %" PRIu64 " live", seed, k, reached,
             rep.live_blocks);
    else {
        uint64_t un = rep.live_blocks - reached;
        if (un < prev_unreached || un - prev_unreached > (uint64_t)(2 * NT))
            FIND("seed %" PRIu64 " kill %d: leak: unreached %" PRIu64 " (before %" PRIu64 ")", seed, k, un,
                 prev_unreached);
        else if (un - prev_unreached > (uint64_t)NT)
            fprintf(stderr, "note: kill %d leaked %" PRIu64 " (> threads)\n", k, un - prev_unreached);
        prev_unreached = un;
    }
    persistent_space_close(S);
    S = NULL;
    return 0;
}

static int run_kill(uint64_t seed, int kills)
{
    char tmpl[] = "/dev/shm/advkill-XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    path = tmpl;
    uint64_t r = seed;
    int fresh = 1, k;
    uint64_t maxcap = 0;
    for (k = 0; k < kills && !atomic_load(&findings) && !hook_reports; k++) {
        if (fresh) {
            unlink(tmpl);
            fd = open(tmpl, O_CREAT | O_RDWR, 0644);
            close(fd);
            S = open_space(true);
            if (!S)
                return 2;
            attach_model();
            persistent_space_close(S);
            prev_unreached = 0;
            fresh = 0;
        }
        int pfd[2];
        if (pipe(pfd))
            return 2;
        fflush(NULL);
        g_seed = seed * 7919 + (uint64_t)k;
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            S = open_space(false);
            if (!S)
                _exit(3);
            attach_model();
            if (slots_bad("child right after open"))
                _exit(9);
            for (int u = 0; u < MAXT; u++)
                for (int kk = 0; kk < NR; kk++) {
                    void *rp = persistent_find_root(S, ROOT_TAG(u, kk));
                    atomic_store(&roff[u][kk], rp ? persistent_offset_from_ptr(S, rp) : 0);
                }
            for (int t = 0; t < NT; t++)
                pthread_create(&tids[t], NULL, worker, (void *)(intptr_t)t);
            char c = 1;
            if (write(pfd[1], &c, 1) != 1)
                _exit(4);
            uint64_t cr = g_seed ^ 0x5555;
            if (kill_park) {
                /* one thread parked inside a call while the others go on
                 * until the kill (G2 with a long-stalled thread) */
                struct sigaction sa = {0};
                sa.sa_handler = park_handler;
                sigemptyset(&sa.sa_mask);
                sigaction(SIGUSR1, &sa, NULL);
                usleep((useconds_t)(rnd(&cr) % 50000));
                int v = (int)(rnd(&cr) % (uint64_t)NT);
                atomic_store(&want_incall, 1);
                for (int tries = 0; tries < 20000 && atomic_load(&parked) != v; tries++) {
                    atomic_store(&missed, 0);
                    pthread_kill(tids[v], SIGUSR1);
                    double t0 = now();
                    while (atomic_load(&parked) != v && !atomic_load(&missed) && now() - t0 < 1)
                        usleep(20);
                }
            }
            for (;;) {
                {
                    uint64_t left = rnd(&cr) % 100000;
                    while (left > 0) {
                        usleep(2000);
                        left = left > 2000 ? left - 2000 : 0;
                        atomic_store(&scanning, 1);
                        if (atomic_load(&auto_pending)) {
                            atomic_store(&scanning, 0);
                            continue;
                        }
                        for (int u = 0; u < NT; u++)
                            for (int i = 0; i < NS; i++) {
                                struct entry *e = &M->own[u][i];
                                struct entry ce = *e;
                                if (!ce.off || ce.seal != seal_of(ce.off, ce.size, ce.gen))
                                    continue;
                                void *p = persistent_offset_to_ptr(S, ce.off);
                                size_t us = persistent_usable_size(S, p);
                                if (us >= ce.size && filled(p, ce.size, ce.off, ce.gen))
                                    continue;
                                usleep(1000);
                                if (memcmp(e, &ce, sizeof ce) != 0)
                                    continue;
                                size_t us2 = persistent_usable_size(S, p);
                                if (us2 >= ce.size && filled(p, ce.size, ce.off, ce.gen))
                                    continue;
                                FIND("seed %" PRIu64 " SCAN: own %d/%d off %" PRIu64 " size %" PRIu64 " usable %zu then %zu, pattern %d (pid %d, parked %d)",
                                     g_seed, u, i, (uint64_t)ce.off, ce.size, us, us2, (int)filled(p, ce.size, ce.off, ce.gen), (int)getpid(), atomic_load(&parked));
                                fflush(NULL);
                                _exit(9);
                            }
                        atomic_store(&scanning, 0);
                    }
                }
                if (!cycle_close)
                    continue;
                /* close and open again: a kill may land in either */
                atomic_store(&stop, 1);
                for (int t = 0; t < NT; t++)
                    pthread_join(tids[t], NULL);
                if (persistent_space_close(S) != 0)
                    _exit(6);
                S = open_space(false);
                if (!S)
                    _exit(7);
                struct persistent_check_report rep;
                if (rnd(&cr) % 4 == 0 && persistent_check(S, &rep) != 0) {
                    fprintf(stderr, "FINDING: check in the child after a reopen: %s\n", rep.first_error);
                    _exit(8);
                }
                attach_model();
                atomic_store(&stop, 0);
                for (int t = 0; t < NT; t++)
                    pthread_create(&tids[t], NULL, worker, (void *)(intptr_t)t);
            }
        }
        close(pfd[1]);
        char c;
        if (rnd(&r) % 4 == 0) { /* anywhere: open, recovery, thread start */
            usleep((useconds_t)(rnd(&r) % 30000));
            early_kills++;
        } else if (read(pfd[0], &c, 1) != 1) {
            int st;
            waitpid(pid, &st, 0);
            FIND("seed %" PRIu64 " kill %d: child failed to start (status %x)", seed, k, st);
            close(pfd[0]);
            break;
        }
        else
            usleep((useconds_t)(rnd(&r) % (kill_park ? 800000 : 300000)));
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        close(pfd[0]);
        if (use_auto && WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT)
            auto_stops++;
        else if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
            FIND("seed %" PRIu64 " kill %d: child died otherwise (status %x)", seed, k, st);
            break;
        }
        verify(seed, k);
        if (!small_mode) {
            S = open_space(false);
            if (S) {
                struct persistent_info in;
                persistent_space_info(S, &in);
                if (in.capacity > maxcap)
                    maxcap = in.capacity;
                persistent_space_close(S);
            }
        }
        if ((k + 1) % 40 == 0)
            fresh = 1;
    }
    unlink(tmpl);
    printf("auto-tx stops (SIGABRT, log full) %" PRIu64 "\n", auto_stops);
    printf("kill %s seed %" PRIu64 ": %d kills (%" PRIu64 " early), max capacity %" PRIu64 " MiB, findings %" PRIu64 "\n",
           small_mode ? "small" : "grow", seed, k, early_kills, maxcap >> 20,
           atomic_load(&findings) + atomic_load(&hook_reports));
    return findings || hook_reports ? 1 : 0;
}

/* ---- reader mode (G6) ---- */

static sigjmp_buf jb;
static void bus_handler(int sig)
{
    (void)sig;
    siglongjmp(jb, 1);
}

static uint64_t file_hash(const char *fn)
{
    int fd = open(fn, O_RDONLY);
    if (fd < 0)
        return 0;
    static uint64_t buf[1 << 14];
    uint64_t h = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n / 8; i++)
            h = mix(h ^ buf[i]) + (uint64_t)i;
    close(fd);
    return h;
}

/* A private open of the crashed file: recovers in its copy, allocates
 * there, and writes nothing to the file (G8). */
static uint64_t private_opens;
static void private_probe(uint64_t seed)
{
    uint64_t h0 = file_hash(path);
    allocator_space_t *P = load_private_persistent_allocator(path);
    if (!P) {
        FIND("seed %" PRIu64 " private open of the crashed file failed: %s", seed, persistent_errormsg());
        return;
    }
    struct persistent_info in;
    persistent_space_info(P, &in);
    struct persistent_check_report rep;
    int rc = persistent_check(P, &rep);
    if (rc)
        FIND("seed %" PRIu64 " private view check %d: %s (recovery_skipped %u)", seed, rc, rep.first_error,
             in.recovery_skipped);
    if (!in.recovery_skipped) {
        for (int i = 0; i < 50; i++) {
            void *b = persistent_malloc(P, 100 + (size_t)i * 1000);
            if (b)
                memset(b, 0xee, 100 + (size_t)i * 1000);
        }
        struct model *m = persistent_find_root(P, MODEL_TAG);
        if (m)
            for (int i = 0; i < NS; i++)
                if (m->own[0][i].off)
                    persistent_free_from(P, &m->own[0][i].off);
    }
    destroy_persistent_allocator(P);
    private_opens++;
    if (file_hash(path) != h0)
        FIND("seed %" PRIu64 " a private open changed the file", seed);
}

static pid_t start_writer(uint64_t gs)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        g_seed = gs;
        S = open_space(false);
        if (!S)
            _exit(3);
        attach_model();
        for (int t = 0; t < NT; t++)
            pthread_create(&tids[t], NULL, worker, (void *)(intptr_t)t);
        for (;;)
            pause();
    }
    return pid;
}

/* A read-only view stays open while writers come and go: each is killed at
 * a random moment and the next one recovers the space.  The view checks,
 * walks the roots and touches every published block meanwhile. */
static int run_reader(uint64_t seed, int seconds)
{
    char tmpl[] = "/dev/shm/advread-XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    path = tmpl;
    g_seed = seed;
    S = open_space(true);
    if (!S)
        return 2;
    attach_model();
    persistent_space_close(S);
    uint64_t r = seed, writers = 1, quiet_checks = 0;
    pid_t pid = start_writer(seed);
    usleep(100000);
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_READONLY;
    allocator_space_t *R = NULL;
    int rc = persistent_space_open(path, &o, &R);
    if (rc) {
        FIND("read-only open: %d %s", rc, persistent_errormsg());
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        unlink(tmpl);
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = bus_handler;
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    uint64_t checks = 0, busy = 0, touched = 0, lastcap = 0, growths = 0;
    double end = now() + seconds, next_kill = now() + (double)(rnd(&r) % 2000) / 1000.0;
    while (now() < end) {
        if (pid > 0 && now() > next_kill) {
            kill(pid, SIGKILL);
            int st;
            waitpid(pid, &st, 0);
            pid = 0;
            /* no writer: the view of the crashed file must check clean */
            struct persistent_check_report rep;
            rc = persistent_check(R, &rep);
            quiet_checks++;
            if (rc)
                FIND("seed %" PRIu64 " reader: check of the killed writer's file (no writer): %d %s", seed,
                     rc, rep.first_error);
            if (rnd(&r) % 2)
                private_probe(seed);
            pid = start_writer(seed * 31 + writers++);
            next_kill = now() + (double)(rnd(&r) % 2000) / 1000.0;
        }
        struct persistent_check_report rep;
        rc = persistent_check(R, &rep);
        checks++;
        if (rc == PERSISTENT_E_BUSY)
            busy++;
        else if (rc)
            FIND("seed %" PRIu64 " reader: check %d: %s", seed, rc, rep.first_error);
        struct persistent_info in;
        persistent_space_info(R, &in);
        if (in.capacity != lastcap)
            growths++, lastcap = in.capacity;
        struct model *m = persistent_find_root(R, MODEL_TAG);
        if (!m) {
            FIND("reader: no model root");
            break;
        }
        if (sigsetjmp(jb, 1) == 0) {
            for (int t = 0; t < NT; t++)
                for (int i = 0; i < NS; i++) {
                    persistent_offset_t off = __atomic_load_n(&m->own[t][i].off, __ATOMIC_ACQUIRE);
                    uint64_t sz = m->own[t][i].size;
                    if (!off)
                        continue;
                    volatile unsigned char *p = persistent_offset_to_ptr(R, off);
                    (void)p[0];
                    if (sz > 1 && sz < (8u << 20))
                        (void)p[sz - 1];
                    touched++;
                }
        } else {
            FIND("seed %" PRIu64 " reader: SIGBUS/SIGSEGV touching a published block (capacity %" PRIu64 ")",
                 seed, in.capacity);
            break;
        }
        struct persistent_root_iter it = {0};
        uint64_t tag;
        void *p;
        while (persistent_root_next(R, &it, &tag, &p) == 1)
            ;
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    persistent_space_close(R);
    /* the last writer's crash: a writer's open recovers it */
    S = open_space(false);
    if (!S)
        FIND("reader: final reopen failed");
    else {
        struct persistent_check_report rep;
        if ((rc = persistent_check(S, &rep)) != 0)
            FIND("reader: final check %d %s", rc, rep.first_error);
        persistent_space_close(S);
    }
    unlink(tmpl);
    printf("reader seed %" PRIu64 ": %" PRIu64 " writers killed, %" PRIu64 " checks (%" PRIu64
           " busy, %" PRIu64 " with no writer), %" PRIu64 " blocks touched, %" PRIu64
           " capacities seen, %" PRIu64 " private opens, findings %" PRIu64 "\n",
           seed, writers, checks, busy, quiet_checks, touched, growths, private_opens, atomic_load(&findings));
    return findings ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s park|kill grow|small SEED [N] [THREADS] | reader SEED [SECONDS]\n",
                argv[0]);
        return 2;
    }
    persistent_error_hook_set(hook, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    no_tx = getenv("ADV_NO_TX") != NULL;
    no_roots = getenv("ADV_NO_ROOTS") != NULL;
    use_auto = getenv("ADV_AUTO") != NULL;
    if (getenv("ADV_AUTO_ROOM"))
        auto_room = strtoull(getenv("ADV_AUTO_ROOM"), NULL, 0) << 10;
    cycle_close = getenv("ADV_CYCLE") != NULL;
    kill_park = getenv("ADV_KILLPARK") != NULL;
    if (strcmp(argv[1], "reader") == 0) {
        uint64_t seed = strtoull(argv[2], NULL, 0);
        NT = 4;
        return run_reader(seed, argc > 3 ? atoi(argv[3]) : 5);
    }
    small_mode = strcmp(argv[2], "small") == 0;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 1;
    g_seed = seed;
    int n = argc > 4 ? atoi(argv[4]) : 20;
    NT = argc > 5 ? atoi(argv[5]) : 6;
    if (NT > MAXT)
        NT = MAXT;
    if (strcmp(argv[1], "park") == 0)
        return use_auto ? run_park_auto(seed, n) : run_park(seed, n);
    kill_mode = true;
    return run_kill(seed, n);
}

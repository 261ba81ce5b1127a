/* Writes the seed corpus of the space fuzzer: small valid spaces of many
 * shapes, each made by the library itself.
 *
 *   make_corpus OUT_DIR
 *
 * Fixed and growable spaces from 8 KiB to 256 KiB of pages; roots (enough
 * for an overflow root table), small blocks of several classes, large
 * blocks, some freed; cross-thread frees left pending; an overflow lane
 * table; PROCESS, PMEM and SYNC durability; and spaces left dirty by a
 * SIGKILL in a child, at deterministic crash points (pm_crash_arm) in the
 * middle of publishing calls, or after a delay; transaction logs, idle
 * and with a transaction (explicit or automatic) left open by a kill.
 * Each seed is opened again
 * (private without recovery, then as a writer on a copy) and its check
 * report printed, so a seed the library itself would call damaged shows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"   /* pm_crash_arm, PM_CRASH_KILL */

static char tmpdir[512];
static const char *outdir;
static int n_bad;

static void die(const char *what)
{
    fprintf(stderr, "make_corpus: %s: %s (%s)\n", what, strerror(errno),
            persistent_errormsg());
    exit(1);
}

static void quiet_hook(allocator_space_t *s, int code, const void *ptr, const char *msg,
                       void *arg)
{
    (void)s, (void)code, (void)ptr, (void)msg, (void)arg;
}

static allocator_space_t *open_space(const char *path, uint64_t size, uint64_t max,
                                     uint32_t durability)
{
    struct persistent_options o;
    memset(&o, 0, sizeof o);
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = size;
    o.max_size = max;
    o.durability = durability;
    allocator_space_t *s;
    int r = persistent_space_open(path, &o, &s);
    if (r != 0) {
        errno = -r;
        die(path);
    }
    return s;
}

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (in < 0 || out < 0)
        die(to);
    char buf[65536];
    ssize_t k;
    while ((k = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)k) != k)
            die("write");
    close(in);
    close(out);
}

/* ---- workloads (deterministic) ---- */

struct wl {
    int kind;
    int n;          /* a count, meaning depends on the kind */
};

enum {
    W_NONE,
    W_SMALL,        /* n small blocks of several classes, every third freed */
    W_LARGE,        /* large runs, some freed, some resized */
    W_ROOTS,        /* n roots of assorted sizes (>16: overflow table) */
    W_MIXED,        /* all of the above, smaller */
    W_PUBLISH,      /* publishing calls into a root's slots */
    W_REMOTE,       /* one thread allocates, another frees */
    W_REMOTE_KILL,  /* ... and the process dies with the frees pending */
    W_LANES,        /* n threads holding lanes at once: overflow lane table */
    W_FRAG,         /* fill, then free every other block of each size */
    W_TX,           /* n transactions on a list under a root: snapshots,
                       allocations, frees (some aborted); the last one
                       left open */
    W_TX_DONE,      /* the same, every one ended (an idle log) */
    W_TX_AUTO,      /* n automatic transactions changing roots and blocks
                       (page images in the log); the last one left open */
    W_TX_LONG,      /* one transaction whose snapshot outgrows its log
                       block (a JUMP to claimed pages), left open */
    W_ALL,          /* an overflow root table (n roots), a transaction
                       left open, then an overflow lane table */
    W_TXLANES,      /* a transaction left open, then an overflow lane table */
};

/* A node of W_TX's list: the offset of the next, a count, a payload. */
struct txnode {
    uint64_t next, n;
    char pay[48];
};

static void w_tx(allocator_space_t *s, int n, bool leave_open)
{
    uint64_t *head = persistent_root_get(s, 0x7878, 2 * sizeof(uint64_t), NULL);
    if (head == NULL)
        return;
    for (int i = 0; i < n; i++) {
        if (persistent_tx_begin(s) != 0)
            return;
        (void)persistent_tx_add(s, head, 2 * sizeof(uint64_t));
        struct txnode *nd = persistent_tx_zalloc(s, sizeof *nd + (size_t)(i % 4) * 40);
        if (nd != NULL) {
            nd->next = head[0];
            nd->n = (uint64_t)i;
            memset(nd->pay, 'a' + i % 26, sizeof nd->pay);
            head[0] = ptr_to_persistent_offset(s, nd);
            head[1]++;
        }
        if (i % 3 == 2 && nd != NULL && nd->next != 0) {
            /* unlink the one after it, freed at the commit */
            struct txnode *old = persistent_offset_to_ptr(s, nd->next);
            (void)persistent_tx_add(s, nd, sizeof *nd);
            nd->next = old->next;
            (void)persistent_tx_free(s, old);
        }
        if (i == n - 1 && leave_open)
            return;                     /* open: the caller may die in it */
        if (i % 5 == 4)
            (void)persistent_tx_abort(s);
        else
            (void)persistent_tx_commit(s);
    }
}

static void w_tx_auto(allocator_space_t *s, int n)
{
    for (int i = 0; i < n; i++) {
        if (persistent_tx_begin_auto(s) != 0)
            return;
        char *r = persistent_root_get(s, 0x4141 + (uint64_t)(i % 3), 40, NULL);
        if (r != NULL)
            snprintf(r, 40, "auto %d", i);
        char *b = persistent_malloc(s, 64 + (size_t)(i % 5) * 100);
        if (b != NULL)
            memset(b, 'A' + i % 26, 64);
        if (i % 2 == 1 && b != NULL)
            persistent_free(s, b);
        if (i == n - 1)
            return;
        if (i % 4 == 3)
            (void)persistent_tx_abort(s);
        else
            (void)persistent_tx_commit(s);
    }
}

static void w_tx_long(allocator_space_t *s, int n)
{
    char *big = persistent_malloc(s, (size_t)n);
    if (big == NULL)
        return;
    memset(big, 0x5a, (size_t)n);
    if (persistent_tx_begin(s) != 0 || persistent_tx_add(s, big, (size_t)n) != 0)
        return;
    memset(big, 0xa5, (size_t)n / 2);
    (void)persistent_tx_alloc(s, 100);
}

static void w_small(allocator_space_t *s, int n)
{
    static const size_t sz[] = {16, 32, 48, 64, 96, 128, 160, 256, 320, 512, 640, 1024};
    void *keep[512];
    int k = 0;
    for (int i = 0; i < n && k < 512; i++) {
        void *p = persistent_malloc(s, sz[i % 12]);
        if (p == NULL)
            break;
        memset(p, i & 0xff, sz[i % 12]);
        keep[k++] = p;
    }
    for (int i = 0; i < k; i += 3)
        persistent_free(s, keep[i]);
}

static void w_large(allocator_space_t *s, int n)
{
    void *p[32];
    int k = 0;
    for (int i = 0; i < n && k < 32; i++) {
        size_t sz = 2048 + (size_t)(i % 5) * 3000 + (i % 3 ? 0 : 17000);
        p[k] = persistent_malloc(s, sz);
        if (p[k] == NULL)
            break;
        memset(p[k], 0x33, sz);
        k++;
    }
    for (int i = 0; i < k; i++) {
        if (i % 3 == 0)
            persistent_free(s, p[i]);
        else if (i % 3 == 1)
            (void)persistent_realloc(s, p[i], 9000);
    }
    void *a = persistent_aligned_alloc(s, 4096, 5000);
    (void)a;
}

static void w_roots(allocator_space_t *s, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t tag = i == 0 ? 0 : UINT64_C(0x1000) + (uint64_t)i * 7919;
        char *r = persistent_root_get(s, tag, 16 + (size_t)(i % 7) * 40, NULL);
        if (r == NULL)
            break;
        snprintf(r, 16, "root %d", i);
    }
    if (n > 3) {
        (void)persistent_root_remove(s, UINT64_C(0x1000) + 2 * 7919);
        void *b = persistent_malloc(s, 200);
        if (b)
            (void)persistent_root_publish(s, 0xabcdef, b);
    }
}

static void w_publish(allocator_space_t *s, int n)
{
    persistent_offset_t *slot = persistent_root_get(s, 100, 32 * sizeof *slot, NULL);
    if (slot == NULL)
        return;
    for (int i = 0; i < n; i++) {
        persistent_offset_t *d = &slot[i % 32];
        switch (i % 6) {
        case 0: (void)persistent_alloc_into(s, d, 24 + (size_t)(i % 9) * 50); break;
        case 1: (void)persistent_realloc_into(s, d, 600 + (size_t)(i % 4) * 1500); break;
        case 2: (void)persistent_free_from(s, d); break;
        case 3: (void)persistent_root_get(s, 200 + (uint64_t)(i % 20), 48, NULL); break;
        case 4: (void)persistent_root_remove(s, 200 + (uint64_t)((i + 7) % 20)); break;
        default: {
            void *p = persistent_malloc(s, 64 + (size_t)(i % 13) * 100);
            if (i % 12 == 5)
                persistent_free(s, p);
            break;
        }
        }
    }
}

struct remote_arg {
    allocator_space_t *s;
    void **blocks;
    int n;
    pthread_barrier_t *bar;
    int id;
    int kill;
};

static void *remote_alloc(void *a)
{
    struct remote_arg *ra = a;
    for (int i = 0; i < ra->n; i++) {
        ra->blocks[i] = persistent_malloc(ra->s, 32 + (size_t)(i % 4) * 48);
        if (ra->blocks[i])
            memset(ra->blocks[i], 7, 32);
    }
    pthread_barrier_wait(ra->bar);      /* the other thread frees them */
    pthread_barrier_wait(ra->bar);      /* and this one lives on meanwhile */
    return NULL;
}

static void *remote_free(void *a)
{
    struct remote_arg *ra = a;
    pthread_barrier_wait(ra->bar);
    for (int i = 0; i < ra->n; i += 2)
        persistent_free(ra->s, ra->blocks[i]);
    if (ra->kill)                       /* the owner has not collected them */
        raise(SIGKILL);
    pthread_barrier_wait(ra->bar);
    return NULL;
}

static void w_remote(allocator_space_t *s, int n, int kill)
{
    void *blocks[256] = {0};
    if (n > 256)
        n = 256;
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    struct remote_arg a = {s, blocks, n, &bar, 0, kill}, b = a;
    pthread_t t1, t2;
    pthread_create(&t1, NULL, remote_alloc, &a);
    pthread_create(&t2, NULL, remote_free, &b);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_barrier_destroy(&bar);
}

static void *lane_thread(void *a)
{
    struct remote_arg *ra = a;
    persistent_offset_t *slot = persistent_find_root(ra->s, 300);
    if (slot)
        (void)persistent_alloc_into(ra->s, &slot[ra->id], 40 + (size_t)ra->id * 8);
    pthread_barrier_wait(ra->bar);      /* every thread holds a lane now */
    if (slot && ra->id % 2)
        (void)persistent_realloc_into(ra->s, &slot[ra->id], 900);
    pthread_barrier_wait(ra->bar);
    return NULL;
}

static void w_lanes(allocator_space_t *s, int n)
{
    if (n > 32)
        n = 32;
    if (persistent_root_get(s, 300, 32 * sizeof(persistent_offset_t), NULL) == NULL)
        return;
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)n);
    struct remote_arg a[32];
    pthread_t t[32];
    for (int i = 0; i < n; i++) {
        a[i] = (struct remote_arg){s, NULL, 0, &bar, i, 0};
        pthread_create(&t[i], NULL, lane_thread, &a[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&bar);
}

static void w_frag(allocator_space_t *s, int n)
{
    void *p[600];
    int k = 0;
    for (int i = 0; i < n && k < 600; i++) {
        p[k] = persistent_malloc(s, (size_t)16 << (i % 9));
        if (p[k] == NULL)
            break;
        k++;
    }
    for (int i = 0; i < k; i += 2)
        persistent_free(s, p[i]);
}

static void run_workload(allocator_space_t *s, struct wl w)
{
    switch (w.kind) {
    case W_SMALL: w_small(s, w.n); break;
    case W_LARGE: w_large(s, w.n); break;
    case W_ROOTS: w_roots(s, w.n); break;
    case W_MIXED:
        w_roots(s, w.n / 10 + 2);
        w_small(s, w.n);
        w_large(s, w.n / 20 + 1);
        w_publish(s, w.n / 4);
        break;
    case W_PUBLISH: w_publish(s, w.n); break;
    case W_REMOTE: w_remote(s, w.n, 0); break;
    case W_REMOTE_KILL: w_remote(s, w.n, 1); break;
    case W_LANES: w_lanes(s, w.n); break;
    case W_FRAG: w_frag(s, w.n); break;
    case W_TX: w_tx(s, w.n, true); break;
    case W_TX_DONE: w_tx(s, w.n, false); break;
    case W_TX_AUTO: w_tx_auto(s, w.n); break;
    case W_TX_LONG: w_tx_long(s, w.n); break;
    case W_ALL:
        w_roots(s, w.n);
        w_tx(s, 3, false);
        w_lanes(s, 12);
        w_tx(s, 2, true);
        break;
    case W_TXLANES:
        w_tx(s, 3, true);
        w_lanes(s, 12);
        break;
    default: break;
    }
}

/* ---- checking a seed ---- */

static void report(const char *name, const char *path)
{
    struct persistent_options o;
    memset(&o, 0, sizeof o);
    o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
    allocator_space_t *s;
    struct stat st;
    stat(path, &st);
    int r = persistent_space_open(path, &o, &s);
    if (r != 0) {
        printf("%-34s %7lld  OPEN FAILED %d %s\n", name, (long long)st.st_size, r,
               persistent_errormsg());
        n_bad++;
        return;
    }
    struct persistent_check_report rep;
    struct persistent_info info;
    int c = persistent_check(s, &rep);
    persistent_space_info(s, &info);
    persistent_space_close(s);
    char copy[600];
    snprintf(copy, sizeof copy, "%s.copy", path);
    copy_file(path, copy);
    memset(&o, 0, sizeof o);
    int w = persistent_space_open(copy, &o, &s);
    int cw = -1;
    struct persistent_check_report rep2;
    memset(&rep2, 0, sizeof rep2);
    if (w == 0) {
        cw = persistent_check(s, &rep2);
        persistent_space_close(s);
    }
    unlink(copy);
    printf("%-34s %7lld  %s runs %3" PRIu64 " sb %2" PRIu64 " roots %3" PRIu64
           " lanes %" PRIu64 " remote %2" PRIu64 " orphans %" PRIu64 " tx %" PRIu64
           " check %d writer %d/%d%s%s\n",
           name, (long long)st.st_size, info.clean_at_open ? "clean" : "DIRTY", rep.runs,
           rep.superblocks, rep.roots, rep.in_flight_lanes, rep.pending_remote_frees,
           rep.orphan_bits, rep.open_transactions, c, w, cw, c ? " " : "",
           c ? rep.first_error : "");
    if (c != 0 || w != 0 || cw != 0) {
        printf("    ^ the library judges its own seed: %s / %s\n", rep.first_error,
               w ? persistent_errormsg() : rep2.first_error);
        n_bad++;
    }
}

/* ---- making seeds ---- */

enum { CLEAN, KILL_AT, KILL_AFTER, KILL_SELF, KILL_SCAN };

/* KILL_SCAN: the first crash point (from 1 on) at which the file holds a
 * record in flight of this kind */
enum {
    SCAN_CHUNK = 1,  /* the header's chunk lane: a lane table being added */
    SCAN_ROOTS,      /* a lane whose record adds the first overflow root table */
    SCAN_TXLOG,      /* a lane whose record makes its own transaction log */
    SCAN_TXACTIVE,   /* the chunk lane in flight, and a log with an open transaction */
};

static bool lane_live(const struct pm_lane *l)
{
    return pm_lane_op(l, l->op) != PM_LANE_IDLE;
}

static bool scan_hit(const char *path, int what)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    struct stat st;
    fstat(fd, &st);
    char *d = malloc((size_t)st.st_size);
    bool hit = false;
    if (d != NULL && st.st_size >= (off_t)PM_HEADER_SIZE &&
        pread(fd, d, (size_t)st.st_size, 0) == st.st_size) {
        const struct pm_header *h = (const struct pm_header *)d;
        if (what == SCAN_CHUNK || what == SCAN_TXACTIVE) {
            hit = lane_live(&h->chunk_lane);
            if (hit && what == SCAN_TXACTIVE) {
                hit = false;
                for (uint32_t i = 0; i < h->fixed.n_lanes; i++) {
                    const struct pm_lane *l =
                        (const struct pm_lane *)(d + h->fixed.lanes_off) + i;
                    uint64_t t = l->tx_off;
                    if (t != 0 && t + 64 <= (uint64_t)st.st_size &&
                        (((const struct pm_txlog *)(d + t))->state & PM_TX_PHASE) != PM_TX_IDLE)
                        hit = true;
                }
            }
        } else {
            for (uint32_t i = 0; i < h->fixed.n_lanes; i++) {
                const struct pm_lane *l = (const struct pm_lane *)(d + h->fixed.lanes_off) + i;
                if (!lane_live(l))
                    continue;
                uint64_t want = what == SCAN_ROOTS
                                    ? offsetof(struct pm_header, live.roots_next_off)
                                    : h->fixed.lanes_off + i * sizeof *l +
                                          offsetof(struct pm_lane, tx_off);
                if (l->dest_off == want)
                    hit = true;
            }
        }
    }
    free(d);
    close(fd);
    return hit;
}

struct seed {
    const char *name;
    uint64_t size, max;
    uint32_t durability;
    struct wl prep;        /* made and closed cleanly first */
    struct wl work;        /* then, maybe in a child that is killed */
    int how;
    uint64_t arg;          /* KILL_AT: crash point; KILL_AFTER: microseconds */
};

static void make(const struct seed *sd)
{
    char path[600], out[1024];
    snprintf(path, sizeof path, "%s/%s.space", tmpdir, sd->name);
    unlink(path);
    allocator_space_t *s = open_space(path, sd->size, sd->max, sd->durability);
    run_workload(s, sd->prep);
    if (sd->how == CLEAN) {
        run_workload(s, sd->work);
        persistent_space_close(s);
    } else if (sd->how == KILL_SCAN) {
        persistent_space_close(s);
        char keep[700];
        snprintf(keep, sizeof keep, "%s.keep", path);
        copy_file(path, keep);
        uint64_t k;
        for (k = 1; k < 5000; k++) {
            copy_file(keep, path);
            fflush(stdout);
            pid_t pid = fork();
            if (pid < 0)
                die("fork");
            if (pid == 0) {
                pm_crash_arm(k, PM_CRASH_KILL, k * 2654435761u + 17);
                struct persistent_options o;
                memset(&o, 0, sizeof o);
                allocator_space_t *c;
                if (persistent_space_open(path, &o, &c) != 0)
                    _exit(3);
                run_workload(c, sd->work);
                persistent_space_close(c);
                _exit(0);
            }
            int st;
            waitpid(pid, &st, 0);
            if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
                printf("    (%s: no crash point of the kind found, %" PRIu64 " tried)\n",
                       sd->name, k);
                break;
            }
            if (scan_hit(path, (int)sd->arg))
                break;
        }
        printf("    (%s: crash point %" PRIu64 ")\n", sd->name, k);
        unlink(keep);
    } else {
        persistent_space_close(s);
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            if (sd->how == KILL_AT)
                pm_crash_arm(sd->arg, PM_CRASH_KILL, sd->arg * 2654435761u + 17);
            struct persistent_options o;
            memset(&o, 0, sizeof o);
            allocator_space_t *c;
            if (persistent_space_open(path, &o, &c) != 0)
                _exit(3);
            for (int round = 0; round < (sd->how == KILL_AFTER ? 1000000 : 1); round++)
                run_workload(c, sd->work);
            if (sd->how == KILL_SELF)
                raise(SIGKILL);
            persistent_space_close(c);
            _exit(0);
        }
        if (sd->how == KILL_AFTER) {
            struct timespec ts = {0, (long)sd->arg * 1000};
            nanosleep(&ts, NULL);
            kill(pid, SIGKILL);
        }
        int st;
        waitpid(pid, &st, 0);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
            printf("    (%s: the child was not killed, status %#x: a clean seed)\n",
                   sd->name, st);
    }
    snprintf(out, sizeof out, "%s/%s", outdir, sd->name);
    copy_file(path, out);
    report(sd->name, path);
    unlink(path);
}

#define K 1024u
#define DP PERSISTENT_DURABILITY_PMEM
#define DS PERSISTENT_DURABILITY_SYNC

static const struct seed seeds[] = {
    {"fixed-8k-empty", 8 * K, 0, 0, {W_NONE, 0}, {W_NONE, 0}, CLEAN, 0},
    {"fixed-8k-small", 8 * K, 0, 0, {W_SMALL, 40}, {W_NONE, 0}, CLEAN, 0},
    {"fixed-8k-roots", 8 * K, 0, 0, {W_ROOTS, 10}, {W_SMALL, 10}, CLEAN, 0},
    {"fixed-16k-classes", 16 * K, 0, 0, {W_SMALL, 120}, {W_NONE, 0}, CLEAN, 0},
    {"fixed-16k-mixed", 16 * K, 0, 0, {W_MIXED, 40}, {W_NONE, 0}, CLEAN, 0},
    {"fixed-32k-large", 32 * K, 0, 0, {W_LARGE, 8}, {W_NONE, 0}, CLEAN, 0},
    {"fixed-32k-frag", 32 * K, 0, 0, {W_FRAG, 200}, {W_NONE, 0}, CLEAN, 0},
    {"fixed-64k-mixed", 64 * K, 0, 0, {W_MIXED, 120}, {W_NONE, 0}, CLEAN, 0},
    {"fixed-64k-publish", 64 * K, 0, 0, {W_PUBLISH, 150}, {W_NONE, 0}, CLEAN, 0},
    {"fixed-128k-overflow-roots", 128 * K, 0, 0, {W_ROOTS, 40}, {W_SMALL, 30}, CLEAN, 0},
    {"grow-8k-64k-small", 8 * K, 64 * K, 0, {W_SMALL, 300}, {W_NONE, 0}, CLEAN, 0},
    {"grow-8k-128k-large", 8 * K, 128 * K, 0, {W_LARGE, 10}, {W_SMALL, 50}, CLEAN, 0},
    {"grow-16k-256k-overflow-roots", 16 * K, 256 * K, 0, {W_ROOTS, 60}, {W_MIXED, 30}, CLEAN, 0},
    {"grow-8k-256k-untouched", 8 * K, 256 * K, 0, {W_ROOTS, 3}, {W_NONE, 0}, CLEAN, 0},
    {"pmem-16k-mixed", 16 * K, 0, DP, {W_MIXED, 40}, {W_NONE, 0}, CLEAN, 0},
    {"pmem-grow-8k-64k-publish", 8 * K, 64 * K, DP, {W_PUBLISH, 80}, {W_NONE, 0}, CLEAN, 0},
    {"sync-16k-roots", 16 * K, 0, DS, {W_ROOTS, 12}, {W_SMALL, 20}, CLEAN, 0},
    {"remote-32k-clean", 32 * K, 0, 0, {W_NONE, 0}, {W_REMOTE, 60}, CLEAN, 0},
    {"remote-32k-killed", 32 * K, 0, 0, {W_SMALL, 10}, {W_REMOTE_KILL, 60}, KILL_SELF, 0},
    {"remote-grow-8k-64k-killed", 8 * K, 64 * K, 0, {W_ROOTS, 4}, {W_REMOTE_KILL, 150}, KILL_SELF, 0},
    {"lanes-32k-overflow", 32 * K, 0, 0, {W_NONE, 0}, {W_LANES, 12}, CLEAN, 0},
    {"lanes-64k-overflow-killed", 64 * K, 0, 0, {W_NONE, 0}, {W_LANES, 12}, KILL_SELF, 0},
    {"lanes-64k-overflow-crash120", 64 * K, 0, 0, {W_LANES, 12}, {W_LANES, 12}, KILL_AT, 120},
    {"crash-16k-publish-5", 16 * K, 0, 0, {W_SMALL, 20}, {W_PUBLISH, 400}, KILL_AT, 5},
    {"crash-16k-publish-23", 16 * K, 0, 0, {W_SMALL, 20}, {W_PUBLISH, 400}, KILL_AT, 23},
    {"crash-16k-publish-61", 16 * K, 0, 0, {W_SMALL, 20}, {W_PUBLISH, 400}, KILL_AT, 61},
    {"crash-16k-publish-140", 16 * K, 0, 0, {W_SMALL, 20}, {W_PUBLISH, 400}, KILL_AT, 140},
    {"crash-16k-publish-333", 16 * K, 0, 0, {W_SMALL, 20}, {W_PUBLISH, 400}, KILL_AT, 333},
    {"crash-16k-publish-777", 16 * K, 0, 0, {W_SMALL, 20}, {W_PUBLISH, 400}, KILL_AT, 777},
    {"crash-32k-mixed-47", 32 * K, 0, 0, {W_ROOTS, 5}, {W_MIXED, 60}, KILL_AT, 47},
    {"crash-32k-mixed-211", 32 * K, 0, 0, {W_ROOTS, 5}, {W_MIXED, 60}, KILL_AT, 211},
    {"crash-32k-mixed-290", 32 * K, 0, 0, {W_ROOTS, 5}, {W_MIXED, 60}, KILL_AT, 290},
    {"crash-grow-8k-64k-publish-90", 8 * K, 64 * K, 0, {W_NONE, 0}, {W_PUBLISH, 300}, KILL_AT, 90},
    {"crash-grow-8k-64k-publish-400", 8 * K, 64 * K, 0, {W_NONE, 0}, {W_PUBLISH, 300}, KILL_AT, 400},
    {"crash-pmem-16k-publish-77", 16 * K, 0, DP, {W_SMALL, 10}, {W_PUBLISH, 300}, KILL_AT, 77},
    {"crash-pmem-16k-publish-301", 16 * K, 0, DP, {W_SMALL, 10}, {W_PUBLISH, 300}, KILL_AT, 301},
    {"crash-128k-roots-overflow-150", 128 * K, 0, 0, {W_ROOTS, 20}, {W_ROOTS, 40}, KILL_AT, 150},
    {"killed-16k-publish-300us", 16 * K, 0, 0, {W_SMALL, 10}, {W_PUBLISH, 200}, KILL_AFTER, 300},
    {"killed-32k-mixed-1500us", 32 * K, 0, 0, {W_NONE, 0}, {W_MIXED, 40}, KILL_AFTER, 1500},
    {"killed-grow-8k-128k-5000us", 8 * K, 128 * K, 0, {W_NONE, 0}, {W_MIXED, 60}, KILL_AFTER, 5000},
    /* transaction logs: idle, an open transaction killed (explicit or
     * automatic), killed at crash points inside, a log gone on in claimed
     * pages */
    {"tx-128k-idle", 128 * K, 0, 0, {W_SMALL, 20}, {W_TX_DONE, 9}, CLEAN, 0},
    {"tx-128k-killed", 128 * K, 0, 0, {W_SMALL, 20}, {W_TX, 8}, KILL_SELF, 0},
    {"tx-grow-96k-256k-killed", 96 * K, 256 * K, 0, {W_ROOTS, 4}, {W_TX, 14}, KILL_SELF, 0},
    {"tx-pmem-128k-crash-40", 128 * K, 0, DP, {W_SMALL, 10}, {W_TX, 30}, KILL_AT, 40},
    {"tx-pmem-128k-crash-97", 128 * K, 0, DP, {W_SMALL, 10}, {W_TX, 30}, KILL_AT, 97},
    {"tx-128k-crash-23", 128 * K, 0, 0, {W_SMALL, 10}, {W_TX, 30}, KILL_AT, 23},
    {"tx-auto-160k-killed", 160 * K, 0, 0, {W_SMALL, 20}, {W_TX_AUTO, 5}, KILL_SELF, 0},
    {"tx-auto-grow-128k-512k-killed", 128 * K, 512 * K, 0, {W_ROOTS, 4}, {W_TX_AUTO, 3},
     KILL_SELF, 0},
    {"tx-auto-160k-crash-30", 160 * K, 0, 0, {W_SMALL, 10}, {W_TX_AUTO, 6}, KILL_AT, 30},
    {"tx-long-256k-killed", 256 * K, 0, 0, {W_NONE, 0}, {W_TX_LONG, 40000}, KILL_SELF, 0},
    /* the newest parts in flight, found by trying crash points in turn: a
     * lane table being added through the header's chunk lane, the first
     * overflow root table being linked, a log being made; and all the
     * tables and a live log in one file */
    {"scan-chunk-lane-64k", 64 * K, 0, 0, {W_NONE, 0}, {W_LANES, 12}, KILL_SCAN, SCAN_CHUNK},
    {"scan-chunk-lane-grow-16k-128k", 16 * K, 128 * K, 0, {W_ROOTS, 3}, {W_LANES, 12},
     KILL_SCAN, SCAN_CHUNK},
    {"scan-roots-link-128k", 128 * K, 0, 0, {W_ROOTS, 10}, {W_ROOTS, 40}, KILL_SCAN, SCAN_ROOTS},
    {"scan-txlog-create-128k", 128 * K, 0, 0, {W_SMALL, 10}, {W_TX, 3}, KILL_SCAN, SCAN_TXLOG},
    {"all-256k-killed", 256 * K, 0, 0, {W_NONE, 0}, {W_ALL, 40}, KILL_SELF, 0},
    {"all-grow-64k-512k-killed", 64 * K, 512 * K, 0, {W_NONE, 0}, {W_ALL, 40}, KILL_SELF, 0},
    {"scan-all-chunk-tx-256k", 256 * K, 0, 0, {W_ROOTS, 40}, {W_TXLANES, 0}, KILL_SCAN,
     SCAN_TXACTIVE},
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    mkdir(outdir, 0755);
    struct stat st;
    snprintf(tmpdir, sizeof tmpdir, "%s/pm-corpus-%d",
             stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
    if (mkdir(tmpdir, 0700) != 0)
        die(tmpdir);
    persistent_error_hook_set(quiet_hook, NULL);
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++)
        make(&seeds[i]);
    rmdir(tmpdir);
    printf("%zu seeds in %s, %d the library does not accept as consistent\n",
           sizeof seeds / sizeof *seeds, outdir, n_bad);
    return 0;
}

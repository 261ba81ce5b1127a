/* AddressSanitizer sees persistent blocks (a library built with ASan,
 * memcheck.c): free memory, the bytes past a block's usable size and freed
 * blocks are poisoned, so an overflow or a use after free of a persistent
 * block is an ASan report.  Each bug runs in a child, which must die with
 * the report; a clean child (every kind of call, a reopen) must not.
 * Skipped (77) in a build without ASan. */
#include "check.h"

#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#ifndef PM_ASAN
int main(void)
{
    printf("not an ASan build\n");
    return 77;
}
#else
static const char *path;

static allocator_space_t *open_space(void)
{
    return t_create(path, 4u << 20, 0);
}

static void clean(void)
{
    allocator_space_t *s = open_space();
    persistent_offset_t *r = persistent_root_get(s, 1, 64, NULL);
    REQUIRE(r != NULL);
    char *a = persistent_malloc(s, 100);
    memset(a, 1, persistent_usable_size(s, a));        /* all of it is ours */
    a = persistent_reallocate(s, a, 100000);
    REQUIRE(a != NULL && a[99] == 1);
    memset(a, 2, persistent_usable_size(s, a));
    persistent_free(s, a);
    REQUIRE(persistent_alloc_into(s, &r[0], 300) == 0);
    memset(persistent_offset_to_ptr(s, r[0]), 3, 300);
    REQUIRE(persistent_realloc_into(s, &r[0], 5000) == 0);
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_add(s, r, 64) == 0);
    char *t = persistent_tx_alloc(s, 70);
    memset(t, 4, 70);
    r[1] = ptr_to_persistent_offset(s, t);
    REQUIRE(persistent_tx_free(s, persistent_offset_to_ptr(s, r[0])) == 0);
    r[0] = 0;
    REQUIRE(persistent_tx_commit(s) == 0);
    REQUIRE(persistent_space_close(s) == 0);
    s = open_space();                   /* the same address, most likely */
    r = persistent_find_root(s, 1);
    REQUIRE(r != NULL && r[1] != 0);
    t = persistent_offset_to_ptr(s, r[1]);
    REQUIRE(t[69] == 4);
    persistent_free(s, t);
    char *b = persistent_malloc(s, 70);             /* may be t's again */
    memset(b, 5, 70);
    REQUIRE(persistent_space_close(s) == 0);
}

/* A large block shrunk in place while another thread takes the tail it
 * released: the tail is poisoned before its release, never after, or the
 * other thread's block would be unreadable (test_stress found it at 16
 * threads).  The shrinking thread parks just after the release
 * (PM_HOOK_LARGE_SHRUNK) until the other has the tail's pages. */
#define SH_PAGES 64u            /* the block, in pages ... */
#define SH_KEEP 24u             /* ... and what the shrink keeps */
static allocator_space_t *sh_space;
static char *sh_want, *sh_taken;
static size_t sh_tail;
static atomic_int sh_phase;     /* 1: tail released, 2: taken or given up */
static _Thread_local bool sh_shrinker;

static void shrink_hook(int point)
{
    if (point != PM_HOOK_LARGE_SHRUNK || !sh_shrinker)
        return;
    atomic_store(&sh_phase, 1);
    while (atomic_load(&sh_phase) != 2)
        sched_yield();
}

static void *tail_taker(void *arg)
{
    (void)arg;
    while (atomic_load(&sh_phase) != 1)
        sched_yield();
    char *got[32];
    int n = 0;
    while (n < 32 && (got[n] = persistent_malloc(sh_space, sh_tail)) != NULL &&
           got[n] != sh_want)
        n++;
    if (n < 32 && got[n] == sh_want) {
        sh_taken = got[n];
        memset(sh_taken, 6, sh_tail);
    }
    for (int i = 0; i < n; i++)
        persistent_free(sh_space, got[i]);
    atomic_store(&sh_phase, 2);
    return NULL;
}

static void clean_shrink(void)
{
    sh_space = open_space();
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    REQUIRE(pm_rt_of(sh_space)->page_size == page);
    REQUIRE((size_t)SH_KEEP * page > PM_MAX_SMALL);     /* a large block */
    char *x = persistent_malloc(sh_space, SH_PAGES * page);
    char *guard = persistent_malloc(sh_space, page);    /* the tail: a hole */
    REQUIRE(x != NULL && guard != NULL);
    memset(x, 5, SH_PAGES * page);
    sh_want = x + SH_KEEP * page;
    sh_tail = (SH_PAGES - SH_KEEP) * page;
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, tail_taker, NULL) == 0);
    pm_store_release(&pm_test_hook, shrink_hook);
    sh_shrinker = true;
    char *y = x;
    bool ok = persistent_realloc(sh_space, y, SH_KEEP * page);
    sh_shrinker = false;
    pm_store_release(&pm_test_hook, (pm_hook_fn *)NULL);
    REQUIRE(pthread_join(th, NULL) == 0);
    REQUIRE(ok && y == x);                              /* in place */
    REQUIRE(sh_taken == sh_want);                       /* the race was set up */
    for (size_t i = 0; i < sh_tail; i++)
        REQUIRE(((volatile char *)sh_taken)[i] == 6);
    REQUIRE(((volatile char *)y)[SH_KEEP * page - 1] == 5);
    persistent_free(sh_space, sh_taken);
    persistent_free(sh_space, y);
    persistent_free(sh_space, guard);
    persistent_space_close(sh_space);
}

static void overflow(void)
{
    allocator_space_t *s = open_space();
    char *p = persistent_malloc(s, 64);
    size_t u = persistent_usable_size(s, p);
    ((volatile char *)p)[u] = 1;                        /* one past the end */
    persistent_space_close(s);
}

static void use_after_free(void)
{
    allocator_space_t *s = open_space();
    char *p = persistent_malloc(s, 64);
    persistent_free(s, p);
    ((volatile char *)p)[3] = 1;
    persistent_space_close(s);
}

static void large_after_free(void)
{
    allocator_space_t *s = open_space();
    char *p = persistent_malloc(s, 200000);
    persistent_free(s, p);
    ((volatile char *)p)[100000] = 1;
    persistent_space_close(s);
}

static void freed_by_tx(void)
{
    allocator_space_t *s = open_space();
    char *p = persistent_malloc(s, 500);
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_free(s, p) == 0);
    REQUIRE(persistent_tx_commit(s) == 0);
    (void)((volatile char *)p)[10];
    persistent_space_close(s);
}

/* alloc_into's block freed from *dest by another thread before the call
 * returns (the moment *dest names it, it is the program's): it must stay
 * poisoned, which it did not when the call told memcheck of the block
 * after publishing it. */
static allocator_space_t *pp_space;
static atomic_int pp_phase;     /* 1: published, parked; 2: freed */

static void published_hook(int point)
{
    if (point != PM_HOOK_PUB_PUBLISHED)
        return;
    atomic_store(&pp_phase, 1);
    while (atomic_load(&pp_phase) != 2)
        sched_yield();
}

static void *publisher(void *arg)
{
    REQUIRE(persistent_alloc_into(pp_space, arg, 300) == 0);
    return NULL;
}

static void freed_while_published(void)
{
    pp_space = open_space();
    persistent_offset_t *r = persistent_root_get(pp_space, 1, 64, NULL);
    REQUIRE(r != NULL);
    pm_store_release(&pm_test_hook, published_hook);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, publisher, &r[0]) == 0);
    while (atomic_load(&pp_phase) != 1)
        sched_yield();
    char *blk = persistent_offset_to_ptr(pp_space, r[0]);
    REQUIRE(persistent_free_from(pp_space, &r[0]) == 0);
    atomic_store(&pp_phase, 2);
    REQUIRE(pthread_join(th, NULL) == 0);
    pm_store_release(&pm_test_hook, (pm_hook_fn *)NULL);
    (void)((volatile char *)blk)[0];
}

static int child(void (*fn)(void), char *err, size_t errlen)
{
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 2);
        close(pfd[0]);
        fn();
        _exit(0);
    }
    close(pfd[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < errlen && (k = read(pfd[0], err + n, errlen - 1 - n)) > 0)
        n += (size_t)k;
    err[n] = 0;
    close(pfd[0]);
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    unlink(path);
    return st;
}

/* An automatic transaction that releases a superblock, carves one for a
 * class with a shorter header in its pages and aborts: the rollback
 * writes the old header back, and the rebuild reads its bitmap words,
 * which the new superblock's free blocks had poisoned (the fuzzer found
 * it: an ASan report in rebuild, until the abort unpoisoned the space
 * before the rebuild).  The space is filled inside the transaction, so
 * that the carve must take the released pages. */
static void clean_abort_restored(void)
{
    allocator_space_t *s = open_space();
    static void *p[9000];
    for (int i = 0; i < 9000; i++)
        REQUIRE((p[i] = persistent_malloc(s, 16)) != NULL);    /* full superblocks */
    REQUIRE(persistent_tx_begin_auto(s) == 0);
    for (size_t sz = 1u << 20; sz >= 4096; sz /= 2)
        while (persistent_malloc(s, sz) != NULL)
            ;
    for (int i = 0; i < 8192; i++)
        persistent_free(s, p[i]);
    char *q[8];
    for (int i = 0; i < 8; i++)
        REQUIRE((q[i] = persistent_malloc(s, 48)) != NULL);
    size_t page = pm_rt_of(s)->page_size;
    /* the shape meant: the 48-byte blocks in the first 16-byte superblock's
     * first page, after a header shorter than that superblock's */
    REQUIRE((uintptr_t)q[0] / page == (uintptr_t)p[0] / page && q[0] < (char *)p[0]);
    REQUIRE(persistent_tx_abort(s) == 0);
    for (int i = 0; i < 9000; i++)
        REQUIRE(persistent_usable_size(s, p[i]) >= 16);         /* live again */
    for (int i = 0; i < 9000; i++)
        persistent_free(s, p[i]);
    struct persistent_check_report rep;
    REQUIRE(persistent_check(s, &rep) == 0);
    REQUIRE(persistent_space_close(s) == 0);
}

int main(void)
{
    path = t_path("asan");
    static char err[1 << 16];
    struct {
        const char *name;
        void (*fn)(void);
    } cleans[] = {{"clean use", clean},
                  {"shrink beside a taker of the tail", clean_shrink},
                  {"automatic transaction aborted over a superblock carved again",
                   clean_abort_restored}};
    int st;
    for (size_t i = 0; i < sizeof cleans / sizeof *cleans; i++) {
        st = child(cleans[i].fn, err, sizeof err);
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            fprintf(stderr, "%s ended with %#x:\n%s\n", cleans[i].name, st, err);
            t_failures++;
        } else {
            printf("%s: no report\n", cleans[i].name);
        }
    }
    struct {
        const char *name;
        void (*fn)(void);
    } bugs[] = {{"overflow", overflow},
                {"use after free", use_after_free},
                {"large block used after free", large_after_free},
                {"block a transaction freed, used", freed_by_tx},
                {"alloc_into's block freed from *dest before the call returned, used",
                 freed_while_published}};
    for (size_t i = 0; i < sizeof bugs / sizeof *bugs; i++) {
        st = child(bugs[i].fn, err, sizeof err);
        bool reported = strstr(err, "AddressSanitizer: use-after-poison") != NULL;
        if ((WIFEXITED(st) && WEXITSTATUS(st) == 0) || !reported) {
            fprintf(stderr, "%s: not reported (status %#x):\n%s\n", bugs[i].name, st, err);
            t_failures++;
        } else {
            printf("%s: reported\n", bugs[i].name);
        }
    }
    return t_done();
}
#endif

/* Valgrind memcheck sees persistent blocks (-Dvalgrind=enabled builds):
 *     test_memcheck MODE PATH        run by test_memcheck.py under valgrind
 * clean     every kind of call, a reopen, blocks from the file freed: no
 *           error, no leak
 * uninit    a branch on a fresh block's byte: an uninitialised value
 * overflow  a write one byte past a block's usable end: an invalid write
 * uaf       a read of a freed block: an invalid read in a block freed
 * leak      a block no root reaches at close: definitely lost, with the
 *           stack of leak_one()
 * auto      automatic transactions (their writes are caught by page
 *           faults): one that frees blocks, has superblocks carved again
 *           and aborts, one that commits: no error, the heap as it was
 *           or as committed (run with --px-default=allregs-at-mem-access,
 *           without which valgrind resumes a faulting store with a stale
 *           register: include/persistent_mem.h) */
#include "check.h"

#include <valgrind/memcheck.h>

static allocator_space_t *open_space(const char *path)
{
    return t_create(path, 4u << 20, 0);
}

struct rootrec {
    persistent_offset_t list, pub;
    char text[32];
};

static void clean(const char *path)
{
    allocator_space_t *s = open_space(path);
    struct rootrec *r = persistent_root_get(s, 1, sizeof *r, NULL);
    REQUIRE(r != NULL);
    strcpy(r->text, "kept");
    /* a list reached from the root through offsets */
    for (int i = 0; i < 50; i++) {
        uint64_t *n = persistent_malloc(s, 24 + (size_t)i * 40);
        REQUIRE(n != NULL);
        n[0] = r->list;
        n[1] = (uint64_t)i;
        r->list = ptr_to_persistent_offset(s, n);
    }
    char *c = persistent_calloc(s, 10, 10);
    REQUIRE(c != NULL && c[99] == 0);
    c = persistent_reallocate(s, c, 5000);
    REQUIRE(c != NULL && c[50] == 0);
    c = persistent_reallocate(s, c, 200000);          /* large */
    c[199999] = 1;
    persistent_free(s, c);
    REQUIRE(persistent_alloc_into(s, &r->pub, 100) == 0);
    memset(persistent_offset_to_ptr(s, r->pub), 7, 100);
    REQUIRE(persistent_realloc_into(s, &r->pub, 3000) == 0);
    REQUIRE(((char *)persistent_offset_to_ptr(s, r->pub))[99] == 7);
    REQUIRE(persistent_free_from(s, &r->pub) == 0);
    /* transactions: one committed, one aborted */
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_add(s, r, sizeof *r) == 0);
    uint64_t *t = persistent_tx_zalloc(s, 40);
    REQUIRE(t != NULL && t[4] == 0);
    t[0] = r->list;
    r->list = ptr_to_persistent_offset(s, t);
    REQUIRE(persistent_tx_commit(s) == 0);
    REQUIRE(persistent_tx_begin(s) == 0);
    REQUIRE(persistent_tx_add(s, r->text, 8) == 0);
    memcpy(r->text, "gone", 5);
    REQUIRE(persistent_tx_alloc(s, 500) != NULL);
    REQUIRE(persistent_tx_abort(s) == 0);
    REQUIRE(strcmp(r->text, "kept") == 0);
    REQUIRE(persistent_space_close(s) == 0);
    /* again: the blocks of the file, read and freed */
    s = open_space(path);
    r = persistent_find_root(s, 1);
    REQUIRE(r != NULL && strcmp(r->text, "kept") == 0);
    int n = 0;
    while (r->list) {
        uint64_t *x = persistent_offset_to_ptr(s, r->list);
        r->list = x[0];
        persistent_free(s, x);
        n++;
    }
    REQUIRE(n == 51);
    REQUIRE(persistent_space_close(s) == 0);
}

static void uninit(const char *path)
{
    allocator_space_t *s = open_space(path);
    volatile char *p = persistent_malloc(s, 64);
    REQUIRE(p != NULL);
    if (p[10] == 3)                                     /* never written */
        printf("three\n");
    persistent_free(s, (void *)p);
    persistent_space_close(s);
}

static void overflow(const char *path)
{
    allocator_space_t *s = open_space(path);
    char *p = persistent_malloc(s, 64);
    REQUIRE(p != NULL);
    size_t u = persistent_usable_size(s, p);
    memset(p, 1, u);
    ((volatile char *)p)[u] = 1;                        /* one past the end */
    persistent_free(s, p);
    persistent_space_close(s);
}

static void uaf(const char *path)
{
    allocator_space_t *s = open_space(path);
    char *p = persistent_malloc(s, 100);
    REQUIRE(p != NULL);
    memset(p, 2, 100);
    persistent_free(s, p);
    if (((volatile char *)p)[5] == 2)                   /* freed */
        printf("still two\n");
    persistent_space_close(s);
}

__attribute__((noinline)) static void leak_one(allocator_space_t *s)
{
    char *p = persistent_malloc(s, 333);
    REQUIRE(p != NULL);
    memset(p, 3, 333);                  /* its offset is kept nowhere */
}

static void leak(const char *path)
{
    allocator_space_t *s = open_space(path);
    uint64_t *r = persistent_root_get(s, 1, 64, NULL);
    REQUIRE(r != NULL);
    uint64_t *kept = persistent_malloc(s, 100);     /* reached: no report */
    REQUIRE(kept != NULL);
    r[0] = ptr_to_persistent_offset(s, kept);
    leak_one(s);
    persistent_space_close(s);
}

static void auto_tx(const char *path)
{
    allocator_space_t *s = open_space(path);
    static void *p[9000];
    for (int i = 0; i < 9000; i++) {
        REQUIRE((p[i] = persistent_malloc(s, 16)) != NULL);
        memset(p[i], i & 0xff, 16);
    }
    char *big = persistent_malloc(s, 256u << 10);
    REQUIRE(big != NULL);
    memset(big, 1, 256u << 10);
    REQUIRE(persistent_tx_begin_auto(s) == 0);
    for (size_t sz = 1u << 20; sz >= 4096; sz /= 2)
        while (persistent_malloc(s, sz) != NULL)
            ;
    for (int i = 0; i < 8192; i++)
        persistent_free(s, p[i]);
    for (int i = 0; i < 8; i++)
        REQUIRE(persistent_malloc(s, 48) != NULL);
    REQUIRE(persistent_tx_abort(s) == 0);
    for (int i = 0; i < 9000; i++) {
        REQUIRE(persistent_usable_size(s, p[i]) >= 16);     /* live again */
        REQUIRE(((unsigned char *)p[i])[15] == (i & 0xff));
    }
    /* 64 pages' images: the log grows by segments */
    REQUIRE(persistent_tx_begin_auto(s) == 0);
    memset(big, 2, 256u << 10);
    REQUIRE(persistent_tx_abort(s) == 0);
    REQUIRE(big[0] == 1 && big[(256u << 10) - 1] == 1);
    persistent_free(s, big);
    /* and one that commits */
    REQUIRE(persistent_tx_begin_auto(s) == 0);
    for (int i = 0; i < 4096; i++)
        persistent_free(s, p[i]);
    char *q = persistent_malloc(s, 300);
    REQUIRE(q != NULL);
    memset(q, 7, 300);
    REQUIRE(persistent_tx_commit(s) == 0);
    for (int i = 4096; i < 9000; i++)
        persistent_free(s, p[i]);
    persistent_free(s, q);
    struct persistent_check_report rep;
    REQUIRE(persistent_check(s, &rep) == 0);
    REQUIRE(rep.live_blocks == 1);                 /* the thread's transaction log */
    REQUIRE(persistent_space_close(s) == 0);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    if (!RUNNING_ON_VALGRIND) {
        printf("not under valgrind\n");
        return 77;
    }
    const char *m = argv[1], *path = argv[2];
    unlink(path);
    if (strcmp(m, "clean") == 0)
        clean(path);
    else if (strcmp(m, "uninit") == 0)
        uninit(path);
    else if (strcmp(m, "overflow") == 0)
        overflow(path);
    else if (strcmp(m, "uaf") == 0)
        uaf(path);
    else if (strcmp(m, "leak") == 0)
        leak(path);
    else if (strcmp(m, "auto") == 0)
        auto_tx(path);
    else
        return 2;
    unlink(path);
    return t_done();
}

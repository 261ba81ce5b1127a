/* AddressSanitizer sees persistent blocks (a library built with ASan,
 * memcheck.c): free memory, the bytes past a block's usable size and freed
 * blocks are poisoned, so an overflow or a use after free of a persistent
 * block is an ASan report.  Each bug runs in a child, which must die with
 * the report; a clean child (every kind of call, a reopen) must not.
 * Skipped (77) in a build without ASan. */
#include "check.h"

#include "internal.h"

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

int main(void)
{
    path = t_path("asan");
    static char err[1 << 16];
    int st = child(clean, err, sizeof err);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        fprintf(stderr, "clean use ended with %#x:\n%s\n", st, err);
        t_failures++;
    }
    struct {
        const char *name;
        void (*fn)(void);
    } bugs[] = {{"overflow", overflow},
                {"use after free", use_after_free},
                {"large block used after free", large_after_free},
                {"block a transaction freed, used", freed_by_tx}};
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

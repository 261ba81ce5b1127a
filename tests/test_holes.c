/* Huge frees punch holes: the file system gets the blocks back, they are
 * backed again when reused, a crash's leftover holes are filled by the
 * next writer's open, and on a full file system reusing them is a failed
 * allocation, never SIGBUS. */
#include "check.h"

#include <sched.h>
#include <sys/mount.h>

static uint64_t blocks_of(const char *path)
{
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    return (uint64_t)st.st_blocks * 512;
}

static void test_punch_and_back(void)
{
    const char *p = t_path("holes");
    allocator_space_t *s = create_persistent_allocator(p, 64u << 20);
    REQUIRE(s != NULL);
    uint64_t full = blocks_of(p);
    char *big = persistent_malloc(s, 8u << 20);
    REQUIRE(big != NULL);
    memset(big, 0x5c, 8u << 20);
    persistent_free(s, big);
    uint64_t holed = blocks_of(p);
    CHECK(holed <= full - (7u << 20));      /* the 8 MiB went back */
    /* the same pages again: backed before they are handed out */
    char *again = persistent_malloc(s, 8u << 20);
    REQUIRE(again != NULL);
    CHECK(blocks_of(p) >= full - (64u << 10));
    memset(again, 0x6d, 8u << 20);
    persistent_free(s, again);
    /* growing a block in place over punched pages backs them too */
    char *a = persistent_malloc(s, 3u << 20);
    char *b = persistent_malloc(s, 3u << 20);
    REQUIRE(a && b);
    persistent_free(s, b);
    REQUIRE(persistent_realloc(s, a, 6u << 20));
    memset(a, 1, 6u << 20);
    persistent_free(s, a);
    t_check_clean(s, "after punching");
    destroy_persistent_allocator(s);

    /* holes left by a crash are filled by the next writer */
    pid_t pid = fork();
    if (pid == 0) {
        allocator_space_t *c = create_persistent_allocator(p, 0);
        void *x = c ? persistent_malloc(c, 16u << 20) : NULL;
        if (x)
            persistent_free(c, x);
        raise(SIGKILL);
        _exit(1);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(blocks_of(p) < full - (15u << 20));
    s = create_persistent_allocator(p, 0);
    REQUIRE(s != NULL);
    CHECK(blocks_of(p) >= full);
    t_check_clean(s, "after a crash with holes");
    destroy_persistent_allocator(s);
    unlink(p);
}

static void test_full_file_system(void)
{
    char dir[128], path[256], filler[256];
    snprintf(dir, sizeof dir, "/tmp/pm-holes-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        printf("skipping the full file system part: no temporary directory\n");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* in a child: a private mount namespace with an 8 MiB tmpfs */
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("tmpfs", dir, "tmpfs", 0, "size=8m") != 0)
            _exit(77);
        snprintf(path, sizeof path, "%s/space", dir);
        snprintf(filler, sizeof filler, "%s/filler", dir);
        allocator_space_t *s = create_persistent_allocator(path, 5u << 20);
        if (s == NULL)
            _exit(2);
        char *big = persistent_malloc(s, 3u << 20);
        if (big == NULL)
            _exit(3);
        persistent_free(s, big);               /* 3 MiB back to the tmpfs */
        /* someone else takes that room */
        int fd = open(filler, O_CREAT | O_RDWR, 0644);
        if (fd < 0 || posix_fallocate(fd, 0, 3u << 20) != 0)
            _exit(4);
        errno = 0;
        void *x = persistent_malloc(s, 3u << 20);   /* needs its pages back */
        if (x != NULL || errno != ENOMEM)
            _exit(5);
        close(fd);
        unlink(filler);
        x = persistent_malloc(s, 3u << 20);
        if (x == NULL)
            _exit(6);
        memset(x, 7, 3u << 20);
        struct persistent_check_report rep;
        if (persistent_check(s, &rep) != 0)
            _exit(7);
        destroy_persistent_allocator(s);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    rmdir(dir);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        printf("skipping the full file system part: cannot mount a tmpfs (needs root)\n");
        return;
    }
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
}

int main(void)
{
    test_punch_and_back();
    test_full_file_system();
    return t_done();
}

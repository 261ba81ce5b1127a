/* A program that closes the space's descriptor behind the library's back
 * (daemonising, closefrom) and opens another file that gets the same
 * number must not have that file grown, punched, synced, mapped or closed
 * by the library (issue 10, defect 3: a 6-byte file became 227 MB of
 * heap).  The space reports PERSISTENT_E_FILE_LOST once through the error
 * hook and keeps working inside the pages it has. */
#include "check.h"

#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* The descriptor open on path's file (by inode: the space may have been
 * opened under a temporary name). */
static int fd_of(const char *path)
{
    struct stat want;
    REQUIRE(stat(path, &want) == 0);
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        t_skip("no /proc/self/fd");
    int found = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != dirfd(d) && fstat(fd, &st) == 0 &&
            st.st_dev == want.st_dev && st.st_ino == want.st_ino)
            found = fd;
    }
    closedir(d);
    return found;
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

/* how: 0 another file takes the number, 1 the space file itself is opened
 * again under it (the lock is gone all the same), 2 nothing does */
static void run(int how)
{
    static const char *names[] = {"another file", "the space file again", "nothing"};
    const char *sp = t_path("fdreuse");
    const char *other = t_path("victim-file");
    write_file(other, "hello\n");
    uint64_t other_hash = t_file_hash(other);

    allocator_space_t *s = t_create(sp, 1u << 20, 256u << 20);
    char *root = persistent_malloc_root(s, 1, 64);
    REQUIRE(root != NULL);
    strcpy(root, "kept");
    struct persistent_info in0;
    REQUIRE(persistent_space_info(s, &in0) == 0);

    int sfd = fd_of(sp);
    REQUIRE(sfd >= 0);
    REQUIRE(close(sfd) == 0);
    int ofd = -1;
    if (how != 2) {
        /* under the same number (the library keeps it high, where an
         * open would not land: dup2 there, as a shell's `exec N>` does) */
        int o = open(how == 0 ? other : sp, O_RDWR);
        REQUIRE(o >= 0);
        if (o != sfd) {
            REQUIRE(dup2(o, sfd) == sfd);
            close(o);
        }
        ofd = sfd;
    }

    struct t_misuse m = {0};
    persistent_error_hook_set(t_misuse_hook, &m);
    /* far more than the space holds: it would have to grow */
    int got = 0;
    void *last = NULL;
    while ((last = persistent_malloc(s, 100000)) != NULL)
        got++;
    CHECK(got > 0);                       /* what the pages it has hold */
    CHECK(got < 20);
    CHECK_EQ(m.count, 1);                 /* reported once */
    CHECK_EQ(m.last_code, PERSISTENT_E_FILE_LOST);
    CHECK(m.last_ptr == (const void *)s);
    CHECK(persistent_sync(s) == PERSISTENT_E_FILE_LOST);
    struct persistent_info in1;
    REQUIRE(persistent_space_info(s, &in1) == 0);
    CHECK_EQ(in1.capacity, in0.capacity);
    t_check_clean(s, names[how]);
    CHECK(strcmp(root, "kept") == 0);
    persistent_error_hook_set(NULL, NULL);
    CHECK_EQ(persistent_space_close(s), 0);

    /* the descriptor is still the program's, untouched */
    if (ofd >= 0) {
        CHECK(fcntl(ofd, F_GETFD) >= 0);
        close(ofd);
    }
    CHECK(t_file_hash(other) == other_hash);
    struct stat st;
    REQUIRE(stat(other, &st) == 0);
    CHECK_EQ(st.st_size, 6);
    /* and the space is whole */
    s = t_create(sp, 1u << 20, 256u << 20);
    t_check_clean(s, "reopened");
    root = persistent_find_root(s, 1);
    CHECK(root != NULL && strcmp(root, "kept") == 0);
    REQUIRE(persistent_space_close(s) == 0);
    printf("descriptor closed, then %s under its number: refused, file intact\n",
           names[how]);
    unlink(sp);
    unlink(other);
}

/* A check right after the number went to a FIFO with no writer (nothing
 * has noticed yet: no growth, no sync): a check that opened the number
 * again to look for the file's holes would wait for a writer for ever.
 * It reads no descriptor that is not the space's. */
static void fifo_check(void)
{
    const char *sp = t_path("fdfifo");
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s", t_path("fifo"));  /* removed at exit */
    allocator_space_t *s = t_create(sp, 1u << 20, UINT64_C(1) << 30);
    REQUIRE(persistent_malloc(s, 100) != NULL);
    int sfd = fd_of(sp);
    REQUIRE(sfd >= 0);
    REQUIRE(mkfifo(fifo, 0600) == 0);
    REQUIRE(close(sfd) == 0);
    int f = open(fifo, O_RDONLY | O_NONBLOCK);
    REQUIRE(f >= 0);
    int ffd = f == sfd ? f : dup2(f, sfd);
    REQUIRE(ffd == sfd);
    if (f != sfd)
        close(f);
    /* a hang is a failure (SIGALRM ends the test), not a stuck suite;
     * not in a child: a forked child cannot use the space */
    alarm(20);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    alarm(0);
    CHECK(rep.live_blocks >= 1);
    close(ffd);
    unlink(fifo);
    persistent_space_close(s);
    unlink(sp);
    printf("descriptor closed, then a FIFO under its number: a check ends\n");
}

/* A program's own descriptors at the low numbers -- a shell's `exec 3>file`
 * and the like dup2 onto 3-9 -- leave the space's alone: the library keeps
 * it at 64 or above when the limit allows.  Before, it was the lowest free
 * number (3 in a small program), and a bash script on the LD_PRELOAD
 * interposer lost its heap's descriptor: its next fork found the heap
 * unreadable, and the heap stopped growing. */
static void low_numbers(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur <= 64) {
        printf("descriptors above 63: skipped (the limit is %llu)\n",
               (unsigned long long)rl.rlim_cur);
        return;
    }
    const char *sp = t_path("fdlow");
    allocator_space_t *s = t_create(sp, 1u << 20, 256u << 20);
    char *root = persistent_malloc_root(s, 1, 64);
    REQUIRE(root != NULL);
    strcpy(root, "kept");
    int sfd = fd_of(sp);
    CHECK(sfd >= 64);
    /* every low number the program has not in use taken for its own */
    int nul = open("/dev/null", O_WRONLY);
    REQUIRE(nul >= 0);
    bool taken[64] = {false};
    for (int n = 3; n < 64; n++)
        if (n != nul && fcntl(n, F_GETFD) < 0 && dup2(nul, n) == n)
            taken[n] = true;
    struct t_misuse m = {0};
    persistent_error_hook_set(t_misuse_hook, &m);
    for (int i = 0; i < 30; i++)           /* 3 MB: the space grows */
        CHECK(persistent_malloc(s, 100000) != NULL);
    CHECK_EQ(m.count, 0);
    CHECK_EQ(persistent_sync(s), 0);
    persistent_error_hook_set(NULL, NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        _exit(strcmp(root, "kept") == 0 ? 0 : 1);   /* readable in a child */
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (int n = 3; n < 64; n++)
        if (taken[n])
            close(n);
    close(nul);
    t_check_clean(s, "low numbers taken");
    REQUIRE(persistent_space_close(s) == 0);
    unlink(sp);
    printf("the program's descriptors 3-63 taken: the space's stays (%d)\n", sfd);
}

/* A fork where the child cannot map the space's file again (how: 0 the
 * program closed the descriptor, 1 no /proc to open it by, as after a
 * chroot): the child reads the heap as it was, writes only its own copy,
 * and holds nothing of the file -- the parent closes the space and a
 * writer opens it while the child lives.  The child's range was made
 * unreadable instead, and a program on the LD_PRELOAD interposer died
 * copying its heap in the child (a helper's hunt: python after
 * os.closerange, or after os.chroot, then fork). */
static void fork_without_file_in(int how)
{
    const char *sp = t_path(how == 0 ? "forkclosed" : "forknoproc");
    allocator_space_t *s = t_create(sp, 1u << 20, 256u << 20);
    char *root = persistent_malloc_root(s, 1, 64);
    char *big = persistent_malloc(s, 3u << 20);     /* the space grows */
    if (root == NULL || big == NULL)
        _exit(2);
    strcpy(root, "kept");
    t_fill(big, 3u << 20, 42);
    if (how == 0) {
        int sfd = fd_of(sp);
        if (sfd < 0)
            _exit(3);
        close(sfd);
    } else if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
               mount("none", "/proc", "tmpfs", 0, "size=1m") != 0) {
        _exit(77);
    }
    int go[2], done[2];
    if (pipe(go) != 0 || pipe(done) != 0)
        _exit(4);
    pid_t pid = fork();
    if (pid < 0)
        _exit(5);
    if (pid == 0) {
        close(go[1]);
        close(done[0]);
        int bad = strcmp(root, "kept") != 0 || !t_verify(big, 3u << 20, 42);
        strcpy(root, "child");                      /* its own copy */
        char c = 1;
        if (write(done[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(9);
        _exit(bad || strcmp(root, "child") != 0 ? 8 : 0);
    }
    close(go[0]);
    close(done[1]);
    char c;
    if (read(done[0], &c, 1) != 1)
        _exit(6);
    if (strcmp(root, "kept") != 0)
        _exit(7);                                   /* the child's write is its own */
    persistent_space_close(s);
    s = create_persistent_allocator(sp, 0);         /* no lock left in the child */
    if (s == NULL || (root = persistent_find_root(s, 1)) == NULL || strcmp(root, "kept") != 0)
        _exit(10);
    destroy_persistent_allocator(s);
    if (write(go[1], &c, 1) != 1)
        _exit(11);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        _exit(12);
    unlink(sp);
    _exit(WEXITSTATUS(st));
}

static void fork_without_file(void)
{
    static const char *names[] = {"the descriptor closed", "no /proc"};
    for (int how = 0; how < 2; how++) {
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0)
            fork_without_file_in(how);
        int st;
        REQUIRE(waitpid(pid, &st, 0) == pid);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
            printf("a fork with %s: skipped (cannot mount over /proc)\n", names[how]);
            continue;
        }
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fprintf(stderr, "a fork with %s: %s %d\n", names[how],
                    WIFEXITED(st) ? "exit" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        else
            printf("a fork with %s: the child read its copy, and held no lock\n", names[how]);
    }
}

/* A pattern that depends on a byte's offset in its space, not on its
 * address: the same bytes seen through two mappings. */
static void k_fill(allocator_space_t *s, char *p, size_t n, unsigned gen)
{
    size_t off = (size_t)(p - (char *)s);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)((off + i) * 131u ^ gen * 77u);
}

static int k_verify(allocator_space_t *s, const char *p, size_t n, unsigned gen)
{
    size_t off = (size_t)(p - (const char *)s);
    for (size_t i = 0; i < n; i++)
        if (p[i] != (char)((off + i) * 131u ^ gen * 77u))
            return 0;
    return 1;
}

/* A fork, for each kind of open: the child reads the parent's bytes at
 * the same addresses, what it writes there is its own, and it holds no
 * lock of the file (the parent closes its space and a writer opens the
 * file while the child lives).  kind: 0 writer, 1 read-only view beside
 * the writer, 2 private open that recovered a killed writer's space (its
 * own heap, the shared lock), 3 private view without recovery.  The
 * child of a private open that recovered had the file mapped again over
 * its range, and lost its parent's private heap: the block the parent
 * changed showed the file's bytes, the one it allocated zeros (a
 * review). */
static void fork_kind(int kind)
{
    static const char *names[] = {"a writer", "a read-only view", "a private heap",
                                  "a private view"};
    const size_t n = 3000;
    const char *sp = t_path("forkkind");
    /* the file: a rooted block of pattern 1, the writer killed (kind 2)
     * or closed */
    fflush(NULL);
    pid_t w = fork();
    REQUIRE(w >= 0);
    if (w == 0) {
        allocator_space_t *s = t_create(sp, 1u << 20, 0);
        char *b = persistent_malloc_root(s, 1, n);
        if (b == NULL)
            _exit(2);
        k_fill(s, b, n, 1);
        if (kind == 2)
            _exit(0);                   /* no close: recovered at the next open */
        _exit(persistent_space_close(s) == 0 ? 0 : 3);
    }
    int st;
    REQUIRE(waitpid(w, &st, 0) == w && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    allocator_space_t *s = NULL, *wr = NULL;
    struct persistent_options o = {0};
    if (kind == 1) {
        REQUIRE(persistent_space_open(sp, &o, &wr) == 0);
        o.flags = PERSISTENT_OPEN_READONLY;
    } else if (kind >= 2) {
        o.flags = PERSISTENT_OPEN_PRIVATE | (kind == 3 ? PERSISTENT_OPEN_NO_RECOVER : 0u);
    }
    REQUIRE(persistent_space_open(sp, &o, &s) == 0);
    if (kind == 2) {
        struct persistent_info in;
        REQUIRE(persistent_space_info(s, &in) == 0);
        CHECK(in.recovered == 1 && in.recovery_skipped == 0);
    }
    char *b = persistent_find_root(s, 1);
    REQUIRE(b != NULL);
    REQUIRE(k_verify(s, b, n, 1));
    /* the parent's writes: through the writer for a view, else its own */
    char *wb = kind == 1 ? persistent_find_root(wr, 1) : b;
    REQUIRE(wb != NULL);
    k_fill(kind == 1 ? wr : s, wb, n, 2);
    char *nb = NULL;                    /* a block allocated after the open */
    if (kind != 3) {
        nb = persistent_malloc(kind == 1 ? wr : s, n);
        REQUIRE(nb != NULL);
        k_fill(kind == 1 ? wr : s, nb, n, 3);
        if (kind == 1)
            nb = (char *)s + (nb - (char *)wr);
    }
    int go[2], done[2];
    REQUIRE(pipe(go) == 0 && pipe(done) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        close(done[0]);
        int bad = !k_verify(s, b, n, 2) ? 1 : nb != NULL && !k_verify(s, nb, n, 3) ? 2 : 0;
        if (kind != 1) {                /* a read-only view stays read-only */
            k_fill(s, b, n, 9);            /* its own copy */
            bad = bad ? bad : !k_verify(s, b, n, 9) ? 3 : 0;
        }
        char c = 1;
        if (write(done[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(9);
        _exit(bad);
    }
    close(go[0]);
    close(done[1]);
    char c;
    REQUIRE(read(done[0], &c, 1) == 1);
    CHECK(k_verify(s, b, n, 2));           /* the child's write is its own */
    if (nb != NULL)
        CHECK(k_verify(s, nb, n, 3));
    /* the parent lets go of the file; a writer opens it while the child
     * lives: the child holds no lock */
    REQUIRE(persistent_space_close(s) == 0);
    if (wr != NULL)
        REQUIRE(persistent_space_close(wr) == 0);
    o.flags = 0;
    int r = persistent_space_open(sp, &o, &wr);
    CHECK_EQ(r, 0);
    if (r == 0) {
        char *fb = persistent_find_root(wr, 1);
        /* a private open never wrote the file */
        CHECK(fb != NULL && k_verify(wr, fb, n, kind >= 2 ? 1 : 2));
        CHECK_EQ(persistent_space_close(wr), 0);
    }
    REQUIRE(write(go[1], &c, 1) == 1);
    close(go[1]);
    close(done[0]);
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "a fork with %s open: child %s %d\n", names[kind],
                WIFEXITED(st) ? "exit" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    else
        printf("a fork with %s open: the child read the parent's bytes, and held no lock\n",
               names[kind]);
    unlink(sp);
}

/* Under a low limit on descriptors (`ulimit -n 20`) the space's goes as
 * high as the limit allows, not to the lowest free number: it stayed at
 * 3 where 64 was past the limit, and a shell's `exec 3>file` took it (a
 * helper's hunt). */
static void low_limit(void)
{
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(2);
        rl.rlim_cur = 20;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(3);
        const char *sp = t_path("fdlimit");
        allocator_space_t *s = t_create(sp, 1u << 20, 0);
        int sfd = fd_of(sp);
        printf("under a limit of 20 descriptors the space's is %d\n", sfd);
        fflush(stdout);
        destroy_persistent_allocator(s);
        unlink(sp);
        _exit(sfd >= 10 && sfd < 20 ? 0 : 4);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    low_numbers();
    low_limit();
    fork_without_file();
    for (int kind = 0; kind < 4; kind++)
        fork_kind(kind);
    run(0);
    run(1);
    run(2);
    fifo_check();
    return t_done();
}

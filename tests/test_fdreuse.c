/* A program that closes the space's descriptor behind the library's back
 * (daemonising, closefrom) and opens another file that gets the same
 * number must not have that file grown, punched, synced, mapped or closed
 * by the library (issue 10, defect 3: a 6-byte file became 227 MB of
 * heap).  The space reports PERSISTENT_E_FILE_LOST once through the error
 * hook and keeps working inside the pages it has. */
#include "check.h"

#include <dirent.h>
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

int main(void)
{
    low_numbers();
    run(0);
    run(1);
    run(2);
    fifo_check();
    return t_done();
}
